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

#include <stdio.h>

#include "corral/cache/pathpurge.h"
#include "corral/http/invalidate.h"
#include "corral/http/key.h"
#include "corral/core/runtime.h"
#include "corral/tier/inval_sync.h"
#include "corral/tier/tier.h"

#include <stdlib.h>

static size_t apply_local(cr_store_t *store, const cr_invalidate_req_t *req, cr_invalidate_counts_t *counts)
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

/* The request as a log entry for the other pods: the uris normalized into exact paths, as applied here. */
static void publish(cr_inval_sync_t *sync, const cr_invalidate_req_t *req)
{
    cr_inval_entry_t e = {.everything = req->everything, .soft = req->soft};
    cr_str_t *paths = NULL;
    char *arena = NULL;
    size_t i, n = 0;

    if (!req->everything) {
        if ((paths = malloc((req->num_paths + req->num_uris + 1) * sizeof(*paths))) == NULL ||
            (req->num_uris != 0 && (arena = malloc(req->num_uris * CR_INVALIDATE_MAX_PATH)) == NULL)) {
            free(paths);
            e = (cr_inval_entry_t){.everything = 1}; /* no memory for the lists: the other pods drop everything */
            goto Publish;
        }
        for (i = 0; i != req->num_paths; ++i)
            paths[n++] = req->paths[i];
        for (i = 0; i != req->num_uris; ++i) {
            char *buf = arena + i * CR_INVALIDATE_MAX_PATH;
            int len = cr_key_normalize_uri_path(req->uris[i], buf, CR_INVALIDATE_MAX_PATH);
            if (len >= 0)
                paths[n++] = cr_str(buf, (size_t)len);
        }
        e.paths = paths;
        e.num_paths = n;
        e.prefixes = req->prefixes;
        e.num_prefixes = req->num_prefixes;
        e.tags = req->tags;
        e.num_tags = req->num_tags;
    }
Publish:
    cr_inval_sync_publish(sync, &e);
    free(paths);
    free(arena);
}

size_t cr_invalidate(cr_store_t *store, const cr_invalidate_req_t *req, cr_invalidate_counts_t *counts)
{
    size_t n = apply_local(store, req, counts);
    if (cr_rt.tier != NULL && cr_rt.tier->sync != NULL)
        publish(cr_rt.tier->sync, req);
    return n;
}

void cr_invalidate_apply_remote(void *ctx, const cr_inval_entry_t *e)
{
    cr_invalidate_req_t req = {.paths = e->paths,
                               .num_paths = e->num_paths,
                               .prefixes = e->prefixes,
                               .num_prefixes = e->num_prefixes,
                               .tags = e->tags,
                               .num_tags = e->num_tags,
                               .everything = e->everything,
                               .soft = e->soft};
    apply_local(ctx, &req, NULL);
}

int cr_invalidate_result_json(const cr_invalidate_counts_t *counts, int soft, char *buf, size_t bufsize)
{
    int n;
    if (buf == NULL || bufsize == 0)
        return -1;
    n = snprintf(buf, bufsize, "{\"purged\": {\"keys\": %zu, \"prefixes\": %zu, \"tags\": %zu, \"objects\": %zu}, \"soft\": %s}",
                 counts->uris + counts->paths, counts->prefixes, counts->tags, counts->objects, soft ? "true" : "false");
    return n >= 0 && (size_t)n < bufsize ? n : -1;
}
