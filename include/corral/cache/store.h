/*
 * store.h: the L1 in-memory store, byte-bounded, safe across threads.
 *
 * Objects are grouped by primary key; one primary key may hold several variants (Vary), at most
 * variants_per_key of them (the oldest gives way). The store is split into
 * shards, each with its own mutex, key table and CLOCK hand; writers (insert, remove, purge, eviction) take the shard's
 * mutex, and no function ever holds two shard locks at once. Lookups take no lock at all: they read the key table
 * inside an epoch-based read section (ebr.h) and take a reference on what they return, and whatever writers unlink is
 * released only once no lookup can still be looking at it (cr_store_reclaim). The byte total is a single atomic
 * counter, and an insert that pushes it over the limit evicts (CLOCK, second chance) from the shards in round-robin
 * order until it is under again. Linked objects carry one reference owned by the store; lookups return a new
 * reference, so evicting or purging an object being sent is safe.
 *
 * Invalidation. Objects may carry surrogate keys (tags, cr_object_set_tags); each shard indexes its objects by tag,
 * so purging a tag costs O(shards + objects carrying it), never a scan of the cache. Every purge is hard (objects are
 * unlinked) or soft (objects stay, marked CR_OBJ_INVALIDATED, so they count as stale and can still serve
 * stale-while-revalidate / stale-if-error while a refresh happens).
 *
 * The fill race. A fill takes cr_store_fill_epoch() before it asks the upstream and stores its result with
 * cr_store_insert_if_epoch(), which refuses when an invalidation that covers the object was noted in between, so a
 * purge that lands while a fill is in flight is never undone by that fill. Every purge notes what it covers before it
 * visits any shard (inval_epoch.h): a key purge its key, a path purge its path, a prefix purge its prefix, a tag purge
 * its tag, a clear (and cr_store_purge_if, whose predicate cannot be recorded) everything; the check runs under the
 * insert's shard lock. So a fill is declined only by an invalidation that covers its key, its path, a prefix of either,
 * or one of its tags (or that shares a slot or a hash with one, or when more coarse purges than the record ring holds
 * came during the fill): fills of other keys racing a write are stored.
 */
#ifndef CORRAL_STORE_H
#define CORRAL_STORE_H

#include "corral/core/common.h"
#include "corral/cache/inval_epoch.h"
#include "corral/cache/object.h"

typedef struct st_cr_store_t cr_store_t;

/* Decides whether a stored variant fits the current request: returns 1 on a match. */
typedef int (*cr_variant_match_fn)(void *ctx, const cr_object_t *obj);

/* The variant cap of a store made by cr_store_new() (limits.variants_per_key's default). */
#define CR_STORE_VARIANTS_PER_KEY_DEFAULT 32

/*
 * memory_limit: bytes (everything counted: object costs plus the store's own index, see cr_store_index_bytes()).
 * variants_per_key: at most this many variants (Vary) are linked under one primary key; inserting a new variant
 * into a key that holds that many unlinks the key's oldest (the one linked longest ago), so a lookup walks at most
 * that many objects of its key. 0 means CR_STORE_VARIANTS_PER_KEY_DEFAULT. Returns NULL on allocation failure.
 */
cr_store_t *cr_store_new_bounded(size_t memory_limit, size_t variants_per_key);
/* cr_store_new_bounded(memory_limit, CR_STORE_VARIANTS_PER_KEY_DEFAULT). */
cr_store_t *cr_store_new(size_t memory_limit);
void cr_store_free(cr_store_t **store);

/*
 * Returns a referenced object with this primary key for which match(ctx, obj) returns 1 (match may be NULL: any
 * variant), or NULL. When num_variants is not NULL it is set to how many variants the key holds if NULL is returned,
 * and to a number from 1 to that count otherwise (the search stops at the first match). Marks the object referenced
 * for CLOCK. Takes no lock: match runs on objects other threads may be unlinking at the same time (they stay valid
 * until the lookup returns) and must not call into the store. The caller releases the reference with
 * cr_object_release().
 */
cr_object_t *cr_store_lookup(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
                             void *ctx, size_t *num_variants);

/* cr_store_lookup(), but the reference returned is a pin of the calling thread (pin.h): released with
 * cr_pin_release() on this thread, and a hot object's hits then write nothing shared. */
cr_object_t *cr_store_lookup_pinned(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
                                    void *ctx, size_t *num_variants);

/*
 * Fills out[0 .. min(n, max)) with referenced objects stored under this primary key (every variant, in chain order)
 * and returns n, the number of variants the key holds (which may exceed max). Does not mark them referenced for
 * CLOCK: meant for inspection (the admin view). The caller releases each reference. Never fails.
 */
size_t cr_store_lookup_all(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_object_t **out, size_t max);

/*
 * Links a finished object (the store takes its own reference; the caller keeps its own). An existing object with the
 * same key and variant_key is replaced (unlinked and released); otherwise, when the key already holds
 * variants_per_key variants, its oldest is unlinked in the object's favour (counted by
 * cr_store_variant_evictions()). The object's tags are indexed. Evicts to stay under the limit. Returns CR_OK, or CR_DECLINED (nothing changes) when the object alone is larger than the limit or
 * when memory for a new tag index entry could not be allocated (an object the tag index does not know about could
 * not be purged by tag, so it is not stored).
 */
int cr_store_insert(cr_store_t *store, cr_object_t *obj);

/* What a fill remembers when it starts (see "The fill race" above). */
typedef cr_inval_snapshot_t cr_store_epoch_t;

/*
 * Takes a fill's epoch for a primary key whose objects will carry path_hash (cr_path_hash(key); 0 for objects outside
 * the path index). Take it before asking the upstream and pass it to cr_store_insert_if_epoch() with an object of
 * that path_hash. Lock-free; never fails.
 */
void cr_store_fill_epoch(cr_store_t *store, uint64_t path_hash, cr_store_epoch_t *out);

/*
 * 1 when an invalidation noted since `epoch` may cover obj (its key, path, or tags; obj need not be finished), else
 * 0. Lock-free and without the shard lock, so only a hint (an invalidation may come right after): the decision is
 * cr_store_insert_if_epoch()'s. Once it says 1 it says 1 for good. Never fails.
 */
int cr_store_epoch_moved(cr_store_t *store, const cr_store_epoch_t *epoch, const cr_object_t *obj);

/*
 * cr_store_insert(), but only if no invalidation noted since `epoch` covers obj (checked under the shard lock, so an
 * invalidation either was noted before this check or finds the object linked and purges it). Returns CR_OK, or
 * CR_DECLINED when one does (nothing changes), or as cr_store_insert() does.
 */
int cr_store_insert_if_epoch(cr_store_t *store, cr_object_t *obj, const cr_store_epoch_t *epoch);

/* Unlinks this exact object if it is still linked (e.g. found expired and useless). Not an invalidation: epochs do
 * not move. Returns 1 if it was linked. */
int cr_store_remove_object(cr_store_t *store, cr_object_t *obj);

/*
 * Purges every variant under a primary key: unlinks them, or with `soft` marks them CR_OBJ_INVALIDATED. Notes the
 * key even when nothing is stored (a fill may be in flight). Returns how many objects were purged (soft:
 * how many are now marked, including any already marked). Never fails.
 */
size_t cr_store_purge_key(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, int soft);

/* Purges (as above) every object whose primary key starts with prefix (all of them when prefixlen is 0). Scans the
 * whole cache: O(objects). Notes the prefix. Returns the count. Never fails. */
size_t cr_store_purge_prefix(cr_store_t *store, const char *prefix, size_t prefixlen, int soft);

/* Decides whether a stored object is purged by cr_store_purge_if(); runs under a shard lock (must not block). */
typedef int (*cr_store_match_fn)(void *ctx, const cr_object_t *obj);
/* Purges (as above) every object for which match(ctx, obj) returns 1. Scans the whole cache: O(objects). Notes
 * "everything" (fills in flight are not stored). Returns the count. Never fails. */
size_t cr_store_purge_if(cr_store_t *store, cr_store_match_fn match, void *ctx, int soft);

/* Purges (as above) every object whose normalized path (cr_inval_key_path of its key: no authority, no query) starts
 * with prefix (all of them when prefixlen is 0). Scans the whole cache: O(objects). Notes the prefix. Returns the count. Never fails. */
size_t cr_store_purge_path_prefix(cr_store_t *store, const char *prefix, size_t prefixlen, int soft);

/*
 * The path index: objects whose creator set path_hash (corral sets the hash of the key's path part, see cr_path_tag)
 * are also chained by it, so every variant of a path (query strings, key headers, Vary values) is found in
 * O(shards + objects of that path), at one pointer per object. match() tells hash collisions apart.
 * cr_store_purge_path purges them (hard or soft; notes path_hash) and returns how many;
 * cr_store_collect_path fills out[0 .. min(n, max)) with references (the caller releases them) and returns n.
 */
size_t cr_store_purge_path(cr_store_t *store, uint64_t path_hash, cr_store_match_fn match, void *ctx, int soft);
size_t cr_store_collect_path(cr_store_t *store, uint64_t path_hash, cr_store_match_fn match, void *ctx, cr_object_t **out,
                             size_t max);

/* Fills out[0 .. min(n, max)) with referenced objects carrying this tag and returns n, how many carry it (which may
 * exceed max). O(shards + objects carrying it). For inspection; the caller releases each reference. */
size_t cr_store_collect_tag(cr_store_t *store, const char *tag, size_t taglen, cr_object_t **out, size_t max);

/* Purges (as above) every object carrying this tag (exact bytes). O(shards + objects carrying it). Notes the tag.
 * Returns the count. Never fails. */
size_t cr_store_purge_tag(cr_store_t *store, const char *tag, size_t taglen, int soft);


/* Removes everything (a hard purge of every object; notes everything). Returns the count. */
size_t cr_store_clear(cr_store_t *store);

/* Bytes currently charged, the limit, and the number of linked objects. */
size_t cr_store_bytes(const cr_store_t *store);
size_t cr_store_limit(const cr_store_t *store);
size_t cr_store_count(const cr_store_t *store);
/* Objects evicted to make room since creation. */
uint64_t cr_store_evictions(const cr_store_t *store);
/* The variant cap (see cr_store_new_bounded), and the variants unlinked by it since creation (not in evictions). */
size_t cr_store_variants_per_key(const cr_store_t *store);
uint64_t cr_store_variant_evictions(const cr_store_t *store);

/* Bytes the store charges for its own index: what its tables (key table, path and tag buckets) have grown beyond their
 * initial size, included in cr_store_bytes(). */
size_t cr_store_index_bytes(const cr_store_t *store);

/* Objects unlinked but not yet released: their store reference waits until no lookup can still see them. */
size_t cr_store_retired(const cr_store_t *store);
/* Releases whatever retired objects and tables no lookup can still see. Writers and lookups call it on their own;
 * callable from any thread that is not inside a lookup. Never fails. */
void cr_store_reclaim(cr_store_t *store);

/*
 * The tag index: each shard holds one entry per distinct tag among its linked objects, charged to the store's bytes
 * as cr_store_tag_charge(taglen) while it exists (the per-object memberships are part of cr_object_t::cost). So, once
 * threads are quiescent, bytes == sum(obj->cost) + sum over entries of their charge + cr_store_index_bytes().
 */
size_t cr_store_tag_charge(size_t taglen);
/* Number of tag index entries across shards, and the bytes they are charged (both exact once threads are quiescent). */
size_t cr_store_tag_entries(const cr_store_t *store);
size_t cr_store_tag_bytes(const cr_store_t *store);

#endif
