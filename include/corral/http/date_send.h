/*
 * date_send.h: sending a response head with a given Date (the origin's, kept with a stored object) instead of
 * libh2o's clock, so that exactly one Date goes out on HTTP/1.1 and HTTP/2 alike (date_send.c says how).
 */
#ifndef CORRAL_HTTP_DATE_SEND_H
#define CORRAL_HTTP_DATE_SEND_H

#include <h2o.h>

/* Length of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"): the only Date form cr_send_dated sends. */
#define CR_DATE_LEN 29

/* h2o_send(req, bufs, bufcnt, state), with `date` (exactly CR_DATE_LEN bytes of IMF-fixdate; {NULL,0} or any other
 * length: libh2o's own Date) as the head's Date. Only the call that writes the head needs it: the request's first
 * h2o_send that carries data or ends the response (libh2o's h2o_ostream_send_next defers an empty in-progress send
 * without writing the head). Later calls may go straight to h2o_send. Costs one pool allocation and a copy. */
void cr_send_dated(h2o_req_t *req, h2o_iovec_t date, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state);

#endif
