/*
 * upstream_head.h: the HTTP/1.1 request head corral sends its upstream, for a pass and for a cache fill
 * (upstream_head.c).
 *
 * Hop-by-hop headers are removed and X-Forwarded-For / X-Forwarded-Proto / Via added. A fill asks for the plain
 * representation of the key's target, without what would make the stored object depend on one client. Runs on the
 * request's thread; allocates only from the request's pool.
 */
#ifndef CORRAL_UPSTREAM_HEAD_H
#define CORRAL_UPSTREAM_HEAD_H

#include <h2o.h>
#include "corral/core/common.h"
#include "corral/conf/config.h"
#include "corral/cache/object.h"

/* What makes an upstream request a cache fill (or a background revalidation). */
typedef struct st_cr_fill_request_t {
    const cr_route_config_t *route; /* its forward_headers and cookies rules apply */
    h2o_iovec_t target;             /* the normalized path and query the key was made from; {NULL,0}: the request's */
    const cr_object_t *revalidate;  /* a stored object whose ETag / Last-Modified are sent, or NULL */
} cr_fill_request_t;

/*
 * Builds the upstream request head for `req` into its pool. Several Cookie lines are sent as one, joined with "; ".
 * With `fill` == NULL (a pass): the request's method, target and headers as received (hop-by-hop removed), with
 * Content-Length from req->entity when it has a body. With `fill`: a GET of fill->target, without the client's
 * validators, Range and Accept-Encoding, without the unkeyed headers (X-Forwarded-Host, X-Original-URL, ... see
 * upstream_head.c) unless the route's forward_headers lists them, without Cookie under `cookies: ignore` and with
 * only the listed cookies under `cookies: [names]`; with fill->revalidate, its ETag / Last-Modified as
 * If-None-Match / If-Modified-Since. Never fails (the pool aborts when out of memory).
 */
h2o_iovec_t cr_build_upstream_head(h2o_req_t *req, const cr_fill_request_t *fill);

#endif
