/*
 * pathpurge.h: purging and collecting the objects stored for a path, on top of the store's path index.
 *
 * Every stored object is indexed by the hash of its key's normalized path (cr_path_hash, invalidate.h), so one path
 * reaches all its variants (query strings, key headers, Vary values, codings, authorities) at O(matches); the exact
 * path is compared on each candidate, so hash collisions are told apart. Path prefixes have no index: they scan the
 * store, O(objects). Every purge is noted for the fills in flight (inval_epoch.h) by the store.
 *
 * The two match rules are functions of the key's bytes alone (cr_pathpurge_key_is, cr_pathpurge_key_has_prefix), so
 * that whatever else decides "does this purge cover that object" (the shared tier's invalidation log,
 * tier/inval_log.h) applies exactly the rule the local purge applies.
 *
 * Invariants: paths are normalized (cr_key_normalize_uri_path) and carry no query. Any thread; no lock of its own
 * (the store locks one shard at a time).
 */
#ifndef CORRAL_PATHPURGE_H
#define CORRAL_PATHPURGE_H

#include "corral/core/common.h"
#include "corral/cache/object.h"
#include "corral/cache/store.h"

/* Is `key` (a primary key) stored for exactly this path? Its normalized path (cr_path_tag without the '\n') is
 * compared byte for byte; the authority, the query and the key headers are ignored, so every variant matches. */
int cr_pathpurge_key_is(cr_str_t key, cr_str_t path);
/* Does `key`'s normalized path (cr_inval_key_path) start with this prefix on a segment boundary, as a route prefix
 * does? "/v1/users" covers "/v1/users" and "/v1/users/..." but not "/v1/usersX"; "/v1/users/" covers only what is
 * under it; "/" and the empty prefix cover every key. The rule of cr_pathpurge_prefix (the store's path-prefix purge
 * calls it). */
int cr_pathpurge_key_has_prefix(cr_str_t key, cr_str_t prefix);

/* Purges every object stored for exactly this path (hard, or soft: marked stale). Returns how many. */
size_t cr_pathpurge_exact(cr_store_t *store, cr_str_t path, int soft);
/* Purges every object whose normalized path starts with prefix. O(objects). Returns how many. */
size_t cr_pathpurge_prefix(cr_store_t *store, cr_str_t prefix, int soft);
/* References to up to max objects stored for exactly this path (the caller releases them); returns how many there
 * are (which may exceed max). Purges nothing. */
size_t cr_pathpurge_collect(cr_store_t *store, cr_str_t path, cr_object_t **out, size_t max);

#endif
