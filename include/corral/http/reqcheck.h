/*
 * reqcheck.h: checks of a request's head that libh2o leaves to the application, made before anything of the request
 * reaches the route, the key or the upstream (mostly for HTTP/2, whose HPACK decoder takes pseudo-header values
 * verbatim; HTTP/1.1 heads were already checked by the strict parser, h1_request.h).
 */
#ifndef CORRAL_REQCHECK_H
#define CORRAL_REQCHECK_H

#include <h2o.h>

/*
 * CR_OK when the request may go on (a request without Host or :authority, which HTTP/1.0 and HTTP/2 allow, gets the
 * listener's authority: the local address:port the client connected to). Else the answer (400 with the JSON error
 * body, or 405 for CONNECT) has been sent and CR_ERROR is returned: the handler must do nothing more with req.
 * 400 for: a :method that is not a token; a :path that is not origin-form as h1_request.h defines it (absolute-form,
 * "*" except for OPTIONS, SP, controls, '#', non-ASCII bytes, a broken %-escape in the path); an :authority that is not host[:port] ('/', '?', '#', '@',
 * whitespace, controls); a field name that is not a lower-case token; a field value with a control character but HTAB.
 */
int cr_reqcheck(h2o_req_t *req);

/*
 * CR_OK when the request's header list is at most limit bytes, counted as RFC 9113 counts SETTINGS_MAX_HEADER_LIST_SIZE:
 * name + value + 32 for every field, pseudo-headers included (for HTTP/1.x the method and the target count as :method
 * and :path). Else a 431 with the JSON error body has been sent and CR_ERROR is returned: the handler must do nothing
 * more with req. HTTP/2 costs one compare: hpack_bound.c counted while decoding and marked an oversized request
 * (nothing past the limit was kept); HTTP/1.x costs one pass over the fields libh2o kept (at most 100).
 */
int cr_reqcheck_size(h2o_req_t *req, size_t limit);

#endif
