/*
 * writethrough.c: write-through invalidation and purges by path (see writethrough.h).
 *
 * Invariants: runs on a worker thread (writes) or the admin thread (purges); takes no lock itself (the store locks
 * one shard at a time, and notes each purge for the fills in flight, so a fill is declined only by a purge covering
 * it: see inval_epoch.h). Paths are normalized with cr_key_normalize_path before they are turned into tags, exactly as
 * keys are built, so a purge names the same bytes a stored key holds.
 */
#include "corral/serve/writethrough.h"

#include "corral/http/invalidate.h"
#include "corral/http/key.h"
#include "corral/core/log.h"
#include "corral/conf/route.h"
#include "corral/core/runtime.h"

#define CR_MAX_INVALIDATIONS 64

/* Does the object's key name exactly this path (tells path-hash collisions apart)? */
static int key_path_is(void *ctx, const cr_object_t *obj)
{
    const cr_str_t *path = ctx;
    cr_str_t tag = cr_path_tag(cr_object_key(obj)); /* "\n/path" */
    return tag.len == path->len + 1 && memcmp(tag.base + 1, path->base, path->len) == 0;
}

size_t cr_purge_path(cr_str_t path, int soft)
{
    return cr_store_purge_path(cr_rt.store, cr_path_hash_of_path(path), key_path_is, &path, soft);
}

size_t cr_collect_path(cr_str_t path, cr_object_t **out, size_t max)
{
    return cr_store_collect_path(cr_rt.store, cr_path_hash_of_path(path), key_path_is, &path, out, max);
}

size_t cr_purge_path_prefix(cr_str_t prefix, int soft)
{
    return cr_store_purge_path_prefix(cr_rt.store, prefix.base, prefix.len, soft);
}

/* Normalizes "path[?query]" (the query is dropped) and purges it. */
static size_t purge_uri(cr_str_t uri)
{
    char buf[CR_INVALIDATE_MAX_PATH];
    int n;
    if ((n = cr_key_normalize_uri_path(uri, buf, sizeof(buf))) < 0)
        return 0;
    return cr_purge_path(cr_str(buf, (size_t)n), 0);
}

/* The route whose `invalidate` list applies: the one matching the write, else the one a GET of the path matches
 * (routes often match reads only: `methods: [GET, HEAD]`). */
static const cr_route_config_t *invalidating_route(h2o_req_t *req)
{
    cr_str_t path = cr_str(req->input.path.base, req->input.path.len);
    const cr_route_config_t *r = cr_route_match(cr_rt.cfg, cr_str(req->input.method.base, req->input.method.len), path);
    if (r != NULL && r->num_invalidate != 0)
        return r;
    r = cr_route_match(cr_rt.cfg, CR_STR("GET"), path);
    return r != NULL && r->num_invalidate != 0 ? r : NULL;
}

void cr_writethrough_on_head(h2o_req_t *req, int status, const h2o_header_t *headers, size_t num_headers)
{
    cr_thread_t *t = cr_thread_of(req);
    cr_str_t authority = cr_str(req->input.authority.base, req->input.authority.len),
             path = cr_str(req->input.path.base, req->input.path.len);
    const cr_route_config_t *route;
    size_t i, purged = 0;

    if (status < 200 || status >= 400)
        return;
    CR_STAT_INC(t->stats, invalidations);
    purged += purge_uri(path);
    for (i = 0; i != num_headers; ++i) {
        char buf[CR_INVALIDATE_MAX_PATH];
        cr_str_t target;
        if (headers[i].name != &H2O_TOKEN_LOCATION->buf && headers[i].name != &H2O_TOKEN_CONTENT_LOCATION->buf)
            continue;
        if (cr_same_authority_path(cr_str(headers[i].value.base, headers[i].value.len), authority, path, buf, sizeof(buf),
                                   &target))
            purged += purge_uri(target);
    }
    if ((route = invalidating_route(req)) != NULL) {
        cr_invalidation_t inv[CR_MAX_INVALIDATIONS];
        static __thread char buf[CR_MAX_INVALIDATIONS * 256];
        int n = cr_invalidate_expand((const char *const *)route->invalidate, CR_MIN(route->num_invalidate, CR_MAX_INVALIDATIONS),
                                     path, inv, CR_MAX_INVALIDATIONS, buf, sizeof(buf));
        if (n < 0)
            cr_log_warn("invalidate list of the route at line %u could not be expanded for %.*s", route->line, (int)path.len,
                        path.base);
        for (i = 0; n > 0 && i != (size_t)n; ++i)
            purged += inv[i].is_prefix ? cr_purge_path_prefix(inv[i].path, 0) : cr_purge_path(inv[i].path, 0);
    }
    (void)purged;
}
