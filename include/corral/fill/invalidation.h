/*
 * invalidation.h: the one entry point for invalidations (cr_invalidate): the admin purge API and write-through both
 * describe what goes in a cr_invalidate_req_t and call it; nothing else purges the store.
 *
 * It applies the invalidation locally (the store, and through it the fills in flight: inval_epoch.h). It is also the
 * one place a shared tier will publish invalidations from (to the other pods), so everything an invalidation names
 * is in the request, in a form that can be sent as it is: normalized paths, prefixes, tags, "everything", soft/hard.
 *
 * Invariants: any thread (a worker for write-through, the admin thread for purges); no lock of its own (the store
 * locks one shard at a time). Never fails (the store's purges do not).
 */
#ifndef CORRAL_INVALIDATION_H
#define CORRAL_INVALIDATION_H

#include "corral/core/common.h"
#include "corral/cache/store.h"
#include "corral/tier/inval_log.h"

typedef struct st_cr_invalidate_req_t {
    const cr_str_t *uris; /* "path[?query]": normalized here (cr_key_normalize_uri_path), the query dropped, then
                             purged as an exact path; one that is not a path ('/' first) is skipped */
    size_t num_uris;
    const cr_str_t *paths; /* normalized paths without a query, purged exactly (every variant) */
    size_t num_paths;
    const cr_str_t *prefixes; /* normalized path prefixes: O(objects) each */
    size_t num_prefixes;
    const cr_str_t *tags; /* surrogate keys, exact bytes */
    size_t num_tags;
    int everything; /* clear the whole store (always hard); the lists are then ignored */
    int soft;       /* mark stale instead of removing (not for `everything`) */
} cr_invalidate_req_t;

typedef struct st_cr_invalidate_counts_t {
    size_t objects;  /* objects purged */
    size_t uris;     /* entries applied, per list (a skipped uri is not counted) */
    size_t paths;
    size_t prefixes;
    size_t tags;
} cr_invalidate_counts_t;

/* Applies req to store: uris, then paths, prefixes and tags, in list order (or everything). Fills *counts (may be
 * NULL) and returns the number of objects purged. With the shared tier on, it then queues the same invalidation for
 * the other pods (tier/inval_sync.h: never blocks on the network). */
size_t cr_invalidate(cr_store_t *store, const cr_invalidate_req_t *req, cr_invalidate_counts_t *counts);

/* The answer's JSON for an applied invalidation, the one shape every purge answers in (POST /v1/purge, DELETE
 * /v1/cache, PURGE): {"purged": {"keys": K, "prefixes": P, "tags": T, "objects": N}, "soft": S} with K the uris and
 * paths applied. NUL-terminated; returns its length, or -1 when it does not fit. */
int cr_invalidate_result_json(const cr_invalidate_counts_t *counts, int soft, char *buf, size_t bufsize);

/* Applies another pod's invalidation to this pod's store (ctx): the local half of cr_invalidate, never published
 * again. The tier's log thread calls it (cr_inval_apply_fn). */
void cr_invalidate_apply_remote(void *ctx, const cr_inval_entry_t *e);

#endif
