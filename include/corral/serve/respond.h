/*
 * respond.h: answering a request from a stored object (respond.c): coding negotiation, validators, 304, HEAD, and
 * the on-the-fly decoder. Runs on the request's worker thread; takes no lock.
 */
#ifndef CORRAL_RESPOND_H
#define CORRAL_RESPOND_H

#include <h2o.h>
#include "corral/conf/config.h"
#include "corral/cache/object.h"

/* Answers the request from `obj` (takes its own reference) under the request's config generation `cfg` (the
 * decoder's bound: cache.max_object_size). `cache_status` is the Cache-Status value. */
void cr_respond_object(h2o_req_t *req, const cr_config_t *cfg, const cr_route_config_t *route, cr_object_t *obj,
                       h2o_iovec_t cache_status);

#endif
