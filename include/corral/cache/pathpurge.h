/*
 * pathpurge.h: purging and collecting the objects stored for a path, on top of the store's path index.
 *
 * Every stored object is indexed by the hash of its key's normalized path (cr_path_hash, invalidate.h), so one path
 * reaches all its variants (query strings, key headers, Vary values, codings, authorities) at O(matches); the exact
 * path is compared on each candidate, so hash collisions are told apart. Path prefixes have no index: they scan the
 * store, O(objects). Every purge is noted for the fills in flight (inval_epoch.h) by the store.
 *
 * Invariants: paths are normalized (cr_key_normalize_uri_path) and carry no query. Any thread; no lock of its own
 * (the store locks one shard at a time).
 */
#ifndef CORRAL_PATHPURGE_H
#define CORRAL_PATHPURGE_H

#include "corral/core/common.h"
#include "corral/cache/object.h"
#include "corral/cache/store.h"

/* Purges every object stored for exactly this path (hard, or soft: marked stale). Returns how many. */
size_t cr_pathpurge_exact(cr_store_t *store, cr_str_t path, int soft);
/* Purges every object whose normalized path starts with prefix. O(objects). Returns how many. */
size_t cr_pathpurge_prefix(cr_store_t *store, cr_str_t prefix, int soft);
/* References to up to max objects stored for exactly this path (the caller releases them); returns how many there
 * are (which may exceed max). Purges nothing. */
size_t cr_pathpurge_collect(cr_store_t *store, cr_str_t path, cr_object_t **out, size_t max);

#endif
