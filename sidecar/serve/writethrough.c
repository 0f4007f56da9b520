/*
 * writethrough.c: write-through invalidation (writethrough.h).
 *
 * Invariants: runs on the worker thread of the write; gathers what a successful write invalidates into one
 * cr_invalidate_req_t and applies it through the one invalidation entry point (fill/invalidation.h), which takes no
 * lock of its own. Paths are normalized with cr_key_normalize_uri_path (by cr_invalidate) exactly as keys are built,
 * so a purge names the same bytes a stored key holds.
 */
#include "corral/serve/writethrough.h"

#include "corral/http/invalidate.h"
#include "corral/http/key.h"
#include "corral/core/log.h"
#include "corral/conf/config.h"
#include "corral/conf/route.h"
#include "corral/core/runtime.h"
#include "corral/fill/invalidation.h"

#define CR_MAX_INVALIDATIONS 64

/* The route whose `invalidate` list applies: the one matching the write, else the one a GET of the path matches
 * (routes often match reads only: `methods: [GET, HEAD]`). */
static const cr_route_config_t *invalidating_route(h2o_req_t *req, const cr_config_t *cfg)
{
    cr_str_t path = cr_str(req->input.path.base, req->input.path.len);
    const cr_route_config_t *r = cr_route_match(cfg, cr_str(req->input.method.base, req->input.method.len), path);
    if (r != NULL && r->num_invalidate != 0)
        return r;
    r = cr_route_match(cfg, CR_STR("GET"), path);
    return r != NULL && r->num_invalidate != 0 ? r : NULL;
}

void cr_writethrough_on_head(h2o_req_t *req, const cr_config_t *cfg, int status, const h2o_header_t *headers,
                             size_t num_headers)
{
    cr_thread_t *t = cr_thread_of(req);
    cr_str_t authority = cr_str(req->input.authority.base, req->input.authority.len),
             path = cr_str(req->input.path.base, req->input.path.len);
    cr_str_t paths[CR_MAX_INVALIDATIONS], prefixes[CR_MAX_INVALIDATIONS], *uris;
    cr_invalidate_req_t inv_req = {NULL};
    const cr_route_config_t *route;
    size_t i;

    if (status < 200 || status >= 400)
        return;
    CR_STAT_INC(t->stats, invalidations);
    /* the request's own path, then the same-authority Location and Content-Location targets */
    uris = h2o_mem_alloc_pool(&req->pool, sizeof(*uris) * (1 + num_headers));
    uris[inv_req.num_uris++] = path;
    for (i = 0; i != num_headers; ++i) {
        char buf[CR_INVALIDATE_MAX_PATH];
        cr_str_t target;
        if (headers[i].name != &H2O_TOKEN_LOCATION->buf && headers[i].name != &H2O_TOKEN_CONTENT_LOCATION->buf)
            continue;
        if (cr_same_authority_path(cr_str(headers[i].value.base, headers[i].value.len), authority, path, buf, sizeof(buf),
                                   &target)) {
            h2o_iovec_t copy = h2o_strdup(&req->pool, target.base, target.len);
            uris[inv_req.num_uris++] = cr_str(copy.base, copy.len);
        }
    }
    inv_req.uris = uris;
    /* and what the route's `invalidate` list names for this path */
    if ((route = invalidating_route(req, cfg)) != NULL) {
        cr_invalidation_t inv[CR_MAX_INVALIDATIONS];
        static __thread char buf[CR_MAX_INVALIDATIONS * 256];
        int n = cr_invalidate_expand((const char *const *)route->invalidate, CR_MIN(route->num_invalidate, CR_MAX_INVALIDATIONS),
                                     path, inv, CR_MAX_INVALIDATIONS, buf, sizeof(buf));
        if (n < 0)
            cr_log_warn("invalidate list of the route at line %u could not be expanded for %.*s", route->line, (int)path.len,
                        path.base);
        for (i = 0; n > 0 && i != (size_t)n; ++i) {
            if (inv[i].is_prefix)
                prefixes[inv_req.num_prefixes++] = inv[i].path;
            else
                paths[inv_req.num_paths++] = inv[i].path;
        }
        inv_req.paths = paths;
        inv_req.prefixes = prefixes;
    }
    cr_invalidate(cr_rt.store, &inv_req, NULL);
}
