/*
 * store.h: the L1 in-memory store, byte-bounded, safe across threads.
 *
 * Objects are grouped by primary key; one primary key may hold several variants (Vary). The store is split into
 * shards, each with its own mutex, hash table and CLOCK ring; no function ever holds two shard locks at once. The
 * byte total is a single atomic counter, and an insert that pushes it over the limit evicts (CLOCK, second chance)
 * from the shards in round-robin order until it is under again. Linked objects carry one reference owned by the
 * store; lookups return a new reference, so evicting or purging an object being sent is safe.
 */
#ifndef CORRAL_STORE_H
#define CORRAL_STORE_H

#include "corral/common.h"
#include "corral/object.h"

typedef struct st_cr_store_t cr_store_t;

/* Decides whether a stored variant fits the current request: returns 1 on a match. */
typedef int (*cr_variant_match_fn)(void *ctx, const cr_object_t *obj);

/* memory_limit: bytes (everything counted: object cost plus the store's own per-entry overhead). */
cr_store_t *cr_store_new(size_t memory_limit);
void cr_store_free(cr_store_t **store);

/*
 * Returns a referenced object with this primary key for which match(ctx, obj) returns 1 (match may be NULL: any
 * variant), or NULL. Sets *num_variants (when not NULL) to how many variants the key holds. Marks the object
 * referenced for CLOCK. The caller releases the reference with cr_object_release().
 */
cr_object_t *cr_store_lookup(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
                             void *ctx, size_t *num_variants);

/*
 * Links a finished object (the store takes its own reference; the caller keeps its own). An existing object with the
 * same key and variant_key is replaced (unlinked and released). Evicts to stay under the limit.
 * Returns CR_OK, or CR_DECLINED when the object alone is larger than the limit (nothing changes).
 */
int cr_store_insert(cr_store_t *store, cr_object_t *obj);

/* Unlinks this exact object if it is still linked (e.g. found expired and useless). Returns 1 if it was. */
int cr_store_remove_object(cr_store_t *store, cr_object_t *obj);

/* Removes every variant under a primary key. Returns how many objects were removed. */
size_t cr_store_remove_key(cr_store_t *store, const char *key, size_t keylen, uint64_t hash);

/* Removes every object whose primary key starts with prefix. O(objects). Returns the count. */
size_t cr_store_remove_prefix(cr_store_t *store, const char *prefix, size_t prefixlen);

/* Removes everything. Returns the count. */
size_t cr_store_clear(cr_store_t *store);

/* Bytes currently charged, the limit, and the number of linked objects. */
size_t cr_store_bytes(const cr_store_t *store);
size_t cr_store_limit(const cr_store_t *store);
size_t cr_store_count(const cr_store_t *store);
/* Objects evicted to make room since creation. */
uint64_t cr_store_evictions(const cr_store_t *store);

/* Per-object bytes the store itself adds on top of cr_object_t::cost (hash chain, ring), for accounting tests. */
size_t cr_store_entry_overhead(void);

#endif
