/*
 * writethrough.h: invalidation after writes. What a write invalidates is applied through the one invalidation
 * entry point, cr_invalidate (fill/invalidation.h), which the admin purge API uses too; purges by path live in
 * cache/pathpurge.h. Every purge is noted for the fills in flight (inval_epoch.h), so a fill that it covers is not
 * stored; fills of anything else are.
 */
#ifndef CORRAL_WRITETHROUGH_H
#define CORRAL_WRITETHROUGH_H

#include <h2o.h>
#include "corral/core/common.h"
#include "corral/cache/object.h"
#include "corral/conf/config.h"

/*
 * The pass's head callback for unsafe methods (POST, PUT, PATCH, DELETE, unknown): on a 2xx or 3xx answer,
 * invalidates the request's path, the same-authority Location and Content-Location paths (RFC 9111 4.4), and what
 * the route's `invalidate` list (of the pass's generation `cfg`) names for this path. Error answers invalidate nothing.
 */
void cr_writethrough_on_head(h2o_req_t *req, const cr_config_t *cfg, int status, const h2o_header_t *headers,
                             size_t num_headers);

#endif
