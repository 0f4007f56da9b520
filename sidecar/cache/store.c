/*
 * store.c: the L1 in-memory object store: sharded hash tables, lock-free lookups, CLOCK eviction under one byte budget.
 *
 * Structure. CR_STORE_SHARDS shards, chosen by the top bits of the key hash. Each shard has a mutex that every writer
 * takes, a key table that lookups read without it, a path index and a tag index (both only under the mutex).
 *
 * The key table is open addressing with linear probing over an array of tagged words: 0 is empty, 1 a tombstone,
 * anything else an object pointer (its low 48 bits) with a 16-bit fingerprint of the key hash in the high 16 bits, so
 * a probe skips other keys without touching their objects. The home slot is hash & mask. All variants of a primary
 * key are separate objects in the same probe run. Writers keep at least a quarter of the slots empty (a table whose
 * live plus tombstone slots would pass 3/4 is rebuilt first, to twice its live count rounded up to a power of two),
 * so every probe ends at an empty slot; a table left less than 1/8 full by removals is rebuilt smaller. A rebuild
 * fills a new array and publishes it with one atomic store; the old one is retired (below), so a reader still
 * walking it sees a complete older snapshot.
 *
 * Lock-free lookups (ebr.h). A lookup enters a read section, loads the table and probes it with atomic loads, takes a
 * reference on the object it returns, and leaves. Writers change a slot with one atomic store: empty or tombstone ->
 * object (insert), object -> object (replacement of the same key and variant), object -> tombstone (removal), never
 * object -> empty, so a concurrent probe run is never cut short. An object is written completely before the store
 * that publishes it and is immutable afterwards (object.h), so a reader sees it whole. An unlinked object keeps the
 * store's reference, and a replaced table its memory, until every reader that might still hold a pointer to it has
 * left its read section: they go on the store's retire lists (objects chained through st.path_next, which is free
 * once unlinked) and are released by cr_store_reclaim(), which writers call after retiring and lookups call now and
 * then. So a lookup's reference is always taken on a live object, and a hit takes no lock and writes nothing shared
 * but the object's refcount and, once per CLOCK sweep, its referenced bit.
 *
 * Files, each calling only those after it (no cycle): this one (store.c) creates and frees the store and has the
 * lookups, inserts and statistics; store_purge.c the removals and the key / prefix / path / tag purges and
 * collections; store_evict.c the CLOCK eviction; store_table.c the key table, the path index and linking / unlinking;
 * store_tags.c the tag index; store_retire.c the retire lists and cr_store_reclaim(); store_internal.h the types and
 * the internal interface they share.
 *
 * Invariants (per shard, under its lock):
 *  - an object is linked (st_linked == 1) iff it is in exactly one slot of its shard's current table; it then carries
 *    exactly one reference owned by the store, and is in the path index iff path_hash != 0;
 *  - st_linked == 2 iff the object is on a retire list (it still carries the store's reference); it may not be
 *    inserted again until reclaimed (the insert is declined);
 *  - no two linked objects have equal key and variant_key, and no key has more than store->variants_per_key linked
 *    objects (an insert past it swaps the new variant into the slot of the key's lowest st.seq, the one linked
 *    first: st.seq comes from shard->link_seq, which only grows), so a probe run holds at most that many objects of
 *    one key and a hit walks at most that many;
 *  - `used` counts the table's non-empty slots and stays below 3/4 of them, or (when a rebuild found no memory)
 *    below all of them: at least one slot stays empty, so every probe ends;
 *  - shard->count / shard->bytes are the number of linked objects and the sum of their costs, plus the charges of the
 *    shard's tag entries, plus index_bytes: what the key table, path buckets and tag buckets have grown beyond their
 *    initial size (8 bytes a slot; the initial tables are a fixed cost, not charged). The
 *    store-wide `count` and `bytes` are atomic sums of the same, updated in the same critical section, so once
 *    threads are quiescent they are exact.
 *
 * Locking rules (memcached style): a function named do_*() expects the caller to hold the shard's lock. No code path
 * holds two shard locks at once, so there is no lock order to respect; retire_lock is only taken with no shard lock
 * held. The variant match callback runs inside a read section (or under the shard lock) and must not call back into
 * the store. Objects leaving the store are released only by cr_store_reclaim(), never under a shard lock, so
 * destructors (free of big bodies) never run under one; only tag entries and tables are allocated under it.
 *
 * Eviction. An insert that leaves `bytes` above the limit evicts one object at a time from shards chosen round-robin
 * by an atomic cursor. Each shard's CLOCK hand sweeps its table's slots: an object whose `referenced` bit is set (by
 * lookup) gets a second chance, and of the first CR_STORE_EVICT_SAMPLE unreferenced objects the hand passes, the
 * oldest (response_time_ms) goes, since slot order says nothing about age. Shards holding less than half of their
 * fair share of bytes are skipped on the first pass, which keeps shard sizes balanced (inserts land on random shards
 * while round-robin evicts evenly) and keeps a small shard's hot objects resident. An insert never evicts the object
 * it has just linked.
 *
 * Variant cap. Every variant of a key sits in the key's one probe run, so a lookup may walk all of them: an insert
 * that would give a key more than variants_per_key variants swaps the new one into the slot of the key's oldest
 * (one atomic store, as a replacement: a lookup sees one or the other) and counts it in variant_evictions. It costs
 * the insert nothing beyond the walk of the key's run it makes anyway, and a hit nothing at all; the unlinked variant
 * is retired like any other (EBR), and its bytes leave the budget in the same critical section.
 *
 * An object may be linked in at most one store at a time (st is a single set of links).
 *
 * Path index. Objects with path_hash != 0 are also chained through st.path_next in the shard's path buckets (doubled
 * when its count passes its bucket count), under the shard lock only.
 *
 * Tag index (store_tags.c). Each shard also indexes its linked objects by surrogate key, with no allocation per
 * object; its entries are charged to shard->bytes.
 *
 * Soft purges set CR_OBJ_INVALIDATED with an atomic OR (cr_object_invalidate): the object stays linked and other
 * threads read the bit without any lock (cr_object_is_fresh).
 *
 * Epochs (the fill race, see store.h and inval_epoch.h). Every purge notes what it covers in store->inval before it
 * locks any shard (path purges lock-free, key / prefix / tag purges and clears through the record ring), and
 * cr_store_insert_if_epoch() evaluates cr_inval_covers() under the shard lock: a purge either reached the shard after
 * the insert (and finds the object there) or was noted before it locked the shard, which happened before the insert
 * locked it after, so the insert sees the note. cr_inval_covers() takes no lock, so no lock order is added.
 */
#include "store_internal.h"

#include "corral/core/ebr.h"
#include "corral/cache/inval_epoch.h"
#include "corral/cache/pin.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>

static _Thread_local unsigned cr_store_lookups_since_reclaim;

cr_store_t *cr_store_new(size_t memory_limit)
{
    return cr_store_new_bounded(memory_limit, CR_STORE_VARIANTS_PER_KEY_DEFAULT);
}

cr_store_t *cr_store_new_bounded(size_t memory_limit, size_t variants_per_key)
{
    cr_store_t *store;
    size_t i;

    if ((store = aligned_alloc(alignof(cr_store_t), sizeof(*store))) == NULL) /* sizeof is a multiple of alignof */
        return NULL;
    memset(store, 0, sizeof(*store));
    if (pthread_mutex_init(&store->retire_lock, NULL) != 0) {
        free(store);
        return NULL;
    }
    if ((store->inval = cr_inval_new()) == NULL) {
        pthread_mutex_destroy(&store->retire_lock);
        free(store);
        return NULL;
    }
    store->magic = CR_STORE_MAGIC;
    store->limit = memory_limit;
    store->variants_per_key = variants_per_key != 0 ? variants_per_key : CR_STORE_VARIANTS_PER_KEY_DEFAULT;
    for (i = 0; i != CR_STORE_SHARDS; ++i) {
        cr_store_shard_t *shard = &store->shards[i];
        if ((shard->table = cr_store_table_new(CR_STORE_INITIAL_SLOTS)) == NULL ||
            (shard->path_buckets = calloc(CR_STORE_INITIAL_SLOTS, sizeof(*shard->path_buckets))) == NULL ||
            (shard->tag_buckets = calloc(CR_STORE_INITIAL_TAG_BUCKETS, sizeof(*shard->tag_buckets))) == NULL ||
            pthread_mutex_init(&shard->lock, NULL) != 0) {
            free(shard->table);
            free(shard->path_buckets);
            free(shard->tag_buckets);
            while (i-- != 0) {
                pthread_mutex_destroy(&store->shards[i].lock);
                free(store->shards[i].table);
                free(store->shards[i].path_buckets);
                free(store->shards[i].tag_buckets);
            }
            pthread_mutex_destroy(&store->retire_lock);
            cr_inval_free(&store->inval);
            free(store);
            return NULL;
        }
        shard->path_mask = CR_STORE_INITIAL_SLOTS - 1;
        shard->tag_mask = CR_STORE_INITIAL_TAG_BUCKETS - 1;
    }
    return store;
}

void cr_store_free(cr_store_t **storep)
{
    cr_store_t *store = *storep;
    size_t i;

    if (store == NULL)
        return;
    *storep = NULL;
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    cr_store_clear(store);
    /* no lookups may run any more (the caller's contract), so whatever waits for readers can go */
    while (__atomic_load_n(&store->retired, __ATOMIC_RELAXED) != 0 || store->fresh.tables != NULL || store->waiting.tables != NULL)
        cr_store_reclaim(store);
    for (i = 0; i != CR_STORE_SHARDS; ++i) {
        cr_store_shard_t *shard = &store->shards[i];
        assert(shard->count == 0 && shard->tag_count == 0 && shard->tag_bytes == 0);
        assert(shard->bytes == shard->index_bytes);
        pthread_mutex_destroy(&shard->lock);
        free(shard->table);
        free(shard->path_buckets);
        free(shard->tag_buckets);
    }
    pthread_mutex_destroy(&store->retire_lock);
    cr_inval_free(&store->inval);
    store->magic = 0;
    free(store);
}

/* ---- lookups ---- */

/* Probes t for key; returns the first variant match() accepts, or NULL. *n counts the key's variants seen: all of them
 * when NULL is returned, those up to the match otherwise.
 * Runs inside a read section or under the shard lock. */
static cr_object_t *cr_store_probe(const cr_store_table_t *t, const char *key, size_t keylen, uint64_t hash,
                                   cr_variant_match_fn match, void *ctx, size_t *n)
{
    uintptr_t fp = cr_store_fingerprint(hash);
    size_t i;

    *n = 0;
    for (i = hash & t->mask;; i = (i + 1) & t->mask) {
        uintptr_t w = __atomic_load_n(&t->slots[i], __ATOMIC_SEQ_CST); /* see ebr.h: plain loads on x86 */
        cr_object_t *obj;
        if (w == CR_STORE_SLOT_EMPTY)
            break;
        if (w == CR_STORE_SLOT_TOMB || (w & ~CR_STORE_PTR_MASK) != fp)
            continue;
        obj = cr_store_slot_object(w);
        if (!cr_store_key_eq(obj, key, keylen, hash))
            continue;
        ++*n;
        if (match == NULL || match(ctx, obj) == 1)
            return obj; /* a hit need not count the rest */
    }
    return NULL;
}

/* Takes the reference a lookup returns: a plain one, or a pin (pin.h). The object is alive during the call. */
static inline void cr_store_take(cr_object_t *obj, int pinned)
{
    if (pinned)
        cr_pin_acquire(obj);
    else
        cr_object_addref(obj);
}

static cr_object_t *cr_store_lookup_take(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
                                         void *ctx, size_t *num_variants, int pinned)
{
    cr_store_shard_t *shard;
    cr_object_t *found;
    size_t n;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    shard = cr_store_shard(store, hash);
    if (cr_ebr_enter()) {
        found = cr_store_probe(__atomic_load_n(&shard->table, __ATOMIC_SEQ_CST), key, keylen, hash, match, ctx, &n);
        if (found != NULL)
            cr_store_take(found, pinned); /* the store's reference keeps it alive until we leave */
        cr_ebr_exit();
    } else {
        /* no reader slot for this thread: the writers' lock instead */
        pthread_mutex_lock(&shard->lock);
        found = cr_store_probe(shard->table, key, keylen, hash, match, ctx, &n);
        if (found != NULL)
            cr_store_take(found, pinned);
        pthread_mutex_unlock(&shard->lock);
    }
    /* CLOCK: write the bit only when it is clear, so hits on a hot object do not bounce its cache line */
    if (found != NULL && !__atomic_load_n(&found->st_referenced, __ATOMIC_RELAXED))
        __atomic_store_n(&found->st_referenced, 1, __ATOMIC_RELAXED);
    if (++cr_store_lookups_since_reclaim >= CR_STORE_RECLAIM_EVERY) {
        cr_store_lookups_since_reclaim = 0;
        if (__atomic_load_n(&store->retired, __ATOMIC_RELAXED) != 0)
            cr_store_reclaim_from_lookup(store);
    }
    if (num_variants != NULL)
        *num_variants = n;
    return found;
}

cr_object_t *cr_store_lookup(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
                             void *ctx, size_t *num_variants)
{
    return cr_store_lookup_take(store, key, keylen, hash, match, ctx, num_variants, 0);
}

cr_object_t *cr_store_lookup_pinned(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
                                    void *ctx, size_t *num_variants)
{
    return cr_store_lookup_take(store, key, keylen, hash, match, ctx, num_variants, 1);
}

size_t cr_store_lookup_all(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_object_t **out, size_t max)
{
    cr_store_shard_t *shard;
    cr_store_table_t *t;
    cr_object_t *obj;
    size_t n = 0, i;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(out != NULL || max == 0);
    shard = cr_store_shard(store, hash);
    pthread_mutex_lock(&shard->lock);
    t = shard->table;
    for (i = hash & t->mask; (obj = do_cr_store_next_of_key(t, &i, key, keylen, hash)) != NULL; i = (i + 1) & t->mask) {
        if (n < max) {
            cr_object_addref(obj);
            out[n] = obj;
        }
        ++n;
    }
    pthread_mutex_unlock(&shard->lock);
    return n;
}

void cr_store_fill_epoch(cr_store_t *store, uint64_t path_hash, cr_store_epoch_t *out)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    cr_inval_snapshot(store->inval, path_hash, out);
}

int cr_store_epoch_moved(cr_store_t *store, const cr_store_epoch_t *epoch, const cr_object_t *obj)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(epoch != NULL);
    return cr_inval_covers(store->inval, epoch, obj);
}

/* ---- inserting ---- */

/* cr_store_insert, conditional on no invalidation since `epoch` covering obj when epoch != NULL. Takes the shard's
 * lock itself. */
static int cr_store_insert_unless_covered(cr_store_t *store, cr_object_t *obj, const cr_store_epoch_t *epoch)
{
    cr_store_leaving_t leaving = {NULL, NULL, 0};
    cr_store_shard_t *shard;
    cr_store_table_t *t;
    cr_str_t key = cr_object_key(obj);
    uintptr_t fp = cr_store_fingerprint(obj->hash);
    size_t i, slot = SIZE_MAX, same = SIZE_MAX, oldest = SIZE_MAX, siblings = 0;
    uint64_t oldest_seq = UINT64_MAX;
    int ret = CR_OK;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(obj->cost != 0); /* finished */
    assert(obj->hash == cr_hash(key.base, key.len));

    if (obj->cost > store->limit || ((uintptr_t)obj & ~CR_STORE_PTR_MASK) != 0 || ((uintptr_t)obj & 1) != 0)
        return CR_DECLINED;

    shard = cr_store_shard(store, obj->hash);
    pthread_mutex_lock(&shard->lock);
    if (epoch != NULL && cr_inval_covers(store->inval, epoch, obj)) {
        ret = CR_DECLINED;
        goto Unlock;
    }
    switch (cr_store_linked_state(obj)) {
    case 1: /* already in this store (inserted twice): nothing to do */
        goto Unlock;
    case 2: /* unlinked a moment ago and still waiting for readers to leave */
        ret = CR_DECLINED;
        goto Unlock;
    }
    if (do_cr_store_reserve(store, shard, &leaving) != CR_OK || do_cr_store_tags_prepare(store, shard, obj) != CR_OK) {
        ret = CR_DECLINED;
        goto Unlock;
    }
    /* obj's memberships first: an entry that the replaced object shares with obj then never drops to 0 members (and
     * is freed under obj's resolved pointer) while the replaced object leaves */
    do_cr_store_tags_link(obj);
    /* the key's run: the variant obj replaces, or else its siblings and the oldest of them */
    t = shard->table;
    for (i = obj->hash & t->mask; t->slots[i] != CR_STORE_SLOT_EMPTY; i = (i + 1) & t->mask) {
        cr_object_t *cur;
        if (t->slots[i] == CR_STORE_SLOT_TOMB) {
            if (slot == SIZE_MAX)
                slot = i;
            continue;
        }
        if ((t->slots[i] & ~CR_STORE_PTR_MASK) != fp)
            continue;
        cur = cr_store_slot_object(t->slots[i]);
        if (!cr_store_key_eq(cur, key.base, key.len, obj->hash))
            continue;
        if (cr_store_variant_eq(cur, obj)) {
            same = i;
            break;
        }
        ++siblings;
        if (cur->st.seq < oldest_seq) {
            oldest = i;
            oldest_seq = cur->st.seq;
        }
    }
    if (same != SIZE_MAX) {
        do_cr_store_unlink_at(store, shard, same, 0, &leaving); /* the link below swaps obj in */
        slot = same;
    } else if (siblings >= store->variants_per_key) {
        assert(siblings == store->variants_per_key && oldest != SIZE_MAX);
        do_cr_store_unlink_at(store, shard, oldest, 0, &leaving); /* likewise: obj takes the oldest variant's slot */
        slot = oldest;
        __atomic_add_fetch(&store->variant_evictions, 1, __ATOMIC_RELAXED);
    } else if (slot == SIZE_MAX) {
        slot = i;
    }
    cr_object_addref(obj);
    do_cr_store_link(store, shard, obj, slot);
Unlock:
    pthread_mutex_unlock(&shard->lock);
    if (ret == CR_OK)
        cr_store_evict(store, obj); /* first: keep the time the store spends over its limit short */
    cr_store_retire(store, &leaving);
    return ret;
}

int cr_store_insert(cr_store_t *store, cr_object_t *obj)
{
    return cr_store_insert_unless_covered(store, obj, NULL);
}

int cr_store_insert_if_epoch(cr_store_t *store, cr_object_t *obj, const cr_store_epoch_t *epoch)
{
    assert(epoch != NULL);
    return cr_store_insert_unless_covered(store, obj, epoch);
}

/* ---- statistics ---- */

size_t cr_store_bytes(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->bytes, __ATOMIC_RELAXED);
}

size_t cr_store_limit(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return store->limit;
}

size_t cr_store_count(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->count, __ATOMIC_RELAXED);
}

uint64_t cr_store_evictions(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->evictions, __ATOMIC_RELAXED);
}

size_t cr_store_variants_per_key(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return store->variants_per_key;
}

uint64_t cr_store_variant_evictions(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->variant_evictions, __ATOMIC_RELAXED);
}

size_t cr_store_index_bytes(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->index_bytes, __ATOMIC_RELAXED);
}

size_t cr_store_retired(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->retired, __ATOMIC_RELAXED);
}
