/*
 * respond_range.h: 206 and 416 answers from a stored complete response (respond_range.c), for the GETs that carry
 * Range. Runs on the request's worker thread; takes no lock.
 */
#ifndef CORRAL_RESPOND_RANGE_H
#define CORRAL_RESPOND_RANGE_H

#include <h2o.h>
#include "corral/cache/object.h"

/*
 * Answers a GET of a 200 object whose request carries Range, from `body`: the stored body of the representation the
 * client gets (`coded`: not identity), whose validator is `etag` ({NULL,0}: none). The caller has set the status and
 * every header of the whole 200 and holds the object (and so `body`) until the request is disposed; nothing was sent
 * yet. Returns 1 when it answered: 206 (one range; several as multipart/byteranges, when smaller than the whole
 * body and the representation is identity), keeping the caller's headers (Content-Type becomes the multipart's), or
 * 416 with the unsatisfied Content-Range ("bytes", a star, "/LEN"), which drops them but for `cache_status`. Returns 0 when the
 * caller is to send the whole 200: no single valid Range line, If-Range does not hold, or the range is ignored
 * (http/range.h says when).
 */
int cr_respond_range(h2o_req_t *req, const cr_object_t *obj, h2o_iovec_t body, h2o_iovec_t etag, int coded,
                     h2o_iovec_t cache_status);

#endif
