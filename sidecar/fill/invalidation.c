/*
 * invalidation.c: the one entry point for invalidations (invalidation.h), used by write-through (serve/writethrough.c)
 * and the admin purge API (admin/purge_api.c).
 *
 * This is the one place a shared tier will publish invalidations from: once the local purge below is done, the same
 * request (already normalized: paths, prefixes, tags, everything, soft) goes to the tier, so every pod applies what
 * this one applied. Nothing else in corral purges the store.
 *
 * Invariants: any thread; takes no lock itself (the store locks one shard at a time and notes each purge for the
 * fills in flight, so a fill is declined only by a purge covering it: see inval_epoch.h).
 */
#include "corral/fill/invalidation.h"

#include "corral/cache/pathpurge.h"
#include "corral/http/invalidate.h"
#include "corral/http/key.h"

size_t cr_invalidate(cr_store_t *store, const cr_invalidate_req_t *req, cr_invalidate_counts_t *counts)
{
    cr_invalidate_counts_t c = {0};
    size_t i;

    if (req->everything) {
        c.objects = cr_store_clear(store);
        goto done;
    }
    for (i = 0; i != req->num_uris; ++i) {
        char buf[CR_INVALIDATE_MAX_PATH];
        int n;
        if ((n = cr_key_normalize_uri_path(req->uris[i], buf, sizeof(buf))) < 0)
            continue;
        c.objects += cr_pathpurge_exact(store, cr_str(buf, (size_t)n), req->soft);
        ++c.uris;
    }
    for (i = 0; i != req->num_paths; ++i) {
        c.objects += cr_pathpurge_exact(store, req->paths[i], req->soft);
        ++c.paths;
    }
    for (i = 0; i != req->num_prefixes; ++i) {
        c.objects += cr_pathpurge_prefix(store, req->prefixes[i], req->soft);
        ++c.prefixes;
    }
    for (i = 0; i != req->num_tags; ++i) {
        c.objects += cr_store_purge_tag(store, req->tags[i].base, req->tags[i].len, req->soft);
        ++c.tags;
    }
done:
    if (counts != NULL)
        *counts = c;
    return c.objects;
}
