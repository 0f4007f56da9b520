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
 * Files: this one has the tables, lookups, inserts, eviction and the key / prefix / path purges; store_tags.c the
 * tag index; store_retire.c the retire lists and cr_store_reclaim(); store_internal.h the types they share.
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

static cr_store_table_t *cr_store_table_new(size_t slots)
{
    cr_store_table_t *t;

    if (slots > (SIZE_MAX - sizeof(*t)) / sizeof(uintptr_t) || (t = malloc(sizeof(*t) + slots * sizeof(uintptr_t))) == NULL)
        return NULL;
    t->retired_next = NULL;
    t->mask = slots - 1;
    memset(t->slots, 0, slots * sizeof(uintptr_t));
    return t;
}

/* Bytes charged for a shard's tables (key table, path and tag buckets): whatever they have grown beyond their initial
 * size. The shard's lock is held. */
void do_cr_store_recharge_index(cr_store_t *store, cr_store_shard_t *shard)
{
    size_t now = (shard->table->mask + 1 - CR_STORE_INITIAL_SLOTS + shard->path_mask + 1 - CR_STORE_INITIAL_SLOTS +
                  shard->tag_mask + 1 - CR_STORE_INITIAL_TAG_BUCKETS) *
                 sizeof(uintptr_t);

    if (now >= shard->index_bytes) {
        size_t d = now - shard->index_bytes;
        shard->bytes += d;
        __atomic_add_fetch(&store->bytes, d, __ATOMIC_RELAXED);
        __atomic_add_fetch(&store->index_bytes, d, __ATOMIC_RELAXED);
    } else {
        size_t d = shard->index_bytes - now;
        shard->bytes -= d;
        __atomic_sub_fetch(&store->bytes, d, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&store->index_bytes, d, __ATOMIC_RELAXED);
    }
    shard->index_bytes = now;
}

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

/* ---- the key table (all do_*: the shard's lock is held) ---- */

/* The slot holding obj in the current table (obj is linked). */
static size_t do_cr_store_slot_of(cr_store_shard_t *shard, const cr_object_t *obj)
{
    cr_store_table_t *t = shard->table;
    uintptr_t want = cr_store_slot_word(obj);
    size_t i;

    for (i = obj->hash & t->mask;; i = (i + 1) & t->mask) {
        assert(t->slots[i] != CR_STORE_SLOT_EMPTY);
        if (t->slots[i] == want)
            return i;
    }
}

/* The first empty or tombstone slot of obj's probe run in t. */
static size_t cr_store_free_slot(const cr_store_table_t *t, uint64_t hash)
{
    size_t i;
    for (i = hash & t->mask; t->slots[i] > CR_STORE_SLOT_TOMB; i = (i + 1) & t->mask)
        ;
    return i;
}

/* Replaces the table by one of `slots` slots holding the same objects and no tombstones, publishes it, and hands the
 * old one to `leaving`. Returns CR_OK, or CR_ERROR on allocation failure (nothing changes). */
static int do_cr_store_rebuild(cr_store_t *store, cr_store_shard_t *shard, size_t slots, cr_store_leaving_t *leaving)
{
    cr_store_table_t *old = shard->table, *t;
    size_t i;

    assert(slots >= CR_STORE_INITIAL_SLOTS && (slots & (slots - 1)) == 0 && shard->count < slots / 2 + 1);
    if ((t = cr_store_table_new(slots)) == NULL)
        return CR_ERROR;
    for (i = 0; i <= old->mask; ++i) {
        uintptr_t w = old->slots[i];
        if (w > CR_STORE_SLOT_TOMB)
            t->slots[cr_store_free_slot(t, cr_store_slot_object(w)->hash)] = w;
    }
    /* the new table is complete before lookups can load it */
    __atomic_store_n(&shard->table, t, __ATOMIC_SEQ_CST);
    shard->used = shard->count;
    shard->hand = (size_t)((uint64_t)shard->hand * slots / (old->mask + 1)) & t->mask;
    do_cr_store_recharge_index(store, shard);
    old->retired_next = leaving->tables;
    leaving->tables = old;
    return CR_OK;
}

/* The table size for `count` live objects: twice as many slots, rounded up to a power of two. */
static size_t cr_store_slots_for(size_t count)
{
    size_t slots = CR_STORE_INITIAL_SLOTS;
    while (slots < 2 * count && slots <= SIZE_MAX / 4)
        slots *= 2;
    return slots;
}

/* Makes room for one more slot: rebuilds when used would pass 3/4 of the table. Returns CR_OK, or CR_ERROR when the
 * rebuild failed and no slot can be spared (one empty slot must always remain). */
static int do_cr_store_reserve(cr_store_t *store, cr_store_shard_t *shard, cr_store_leaving_t *leaving)
{
    size_t slots = shard->table->mask + 1;

    if ((shard->used + 1) * 4 <= slots * 3)
        return CR_OK;
    if (do_cr_store_rebuild(store, shard, cr_store_slots_for(shard->count + 1), leaving) == CR_OK)
        return CR_OK;
    return shard->used + 2 <= slots ? CR_OK : CR_ERROR;
}

/* After removals: a table less than 1/8 full is rebuilt smaller (if that fails, it simply stays). */
void do_cr_store_maybe_shrink(cr_store_t *store, cr_store_shard_t *shard, cr_store_leaving_t *leaving)
{
    size_t slots = shard->table->mask + 1;

    if (slots > CR_STORE_INITIAL_SLOTS && shard->count * 8 < slots)
        do_cr_store_rebuild(store, shard, cr_store_slots_for(shard->count), leaving);
}

/* ---- the path index (all do_*: the shard's lock is held) ---- */

/* Doubles the path buckets. On allocation failure they keep their size (chains just get longer). */
static void do_cr_store_path_grow(cr_store_t *store, cr_store_shard_t *shard)
{
    size_t newmask = shard->path_mask * 2 + 1, i;
    cr_object_t **newbuckets;

    if (newmask > SIZE_MAX / sizeof(*newbuckets) - 1 || (newbuckets = calloc(newmask + 1, sizeof(*newbuckets))) == NULL)
        return;
    for (i = 0; i <= shard->path_mask; ++i) {
        cr_object_t *obj = shard->path_buckets[i], *next;
        for (; obj != NULL; obj = next) {
            cr_object_t **slot = &newbuckets[obj->path_hash & newmask];
            next = obj->st.path_next;
            obj->st.path_next = *slot;
            *slot = obj;
        }
    }
    free(shard->path_buckets);
    shard->path_buckets = newbuckets;
    shard->path_mask = newmask;
    do_cr_store_recharge_index(store, shard);
}

static void do_cr_store_path_link(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    cr_object_t **slot = &shard->path_buckets[obj->path_hash & shard->path_mask];

    obj->st.path_next = *slot;
    *slot = obj;
    if (++shard->path_count > shard->path_mask + 1)
        do_cr_store_path_grow(store, shard);
}

static void do_cr_store_path_unlink(cr_store_shard_t *shard, cr_object_t *obj)
{
    cr_object_t **slot = &shard->path_buckets[obj->path_hash & shard->path_mask];

    while (*slot != obj) {
        assert(*slot != NULL);
        slot = &(*slot)->st.path_next;
    }
    *slot = obj->st.path_next;
    obj->st.path_next = NULL;
    --shard->path_count;
}

/* ---- linking ---- */

/* Links obj (whose reference the store now owns, and whose tag memberships do_cr_store_tags_link() already added)
 * into slot i of the table and the path index, and charges it. Slot i is an empty or tombstone slot of obj's probe
 * run, or holds the object obj replaces, which do_cr_store_unlink_at(..., 0, ...) already unlinked: one atomic store
 * then swaps them, so a lookup finds one or the other, never neither. Never fails. */
static void do_cr_store_link(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj, size_t i)
{
    cr_store_table_t *t = shard->table;

    if (t->slots[i] == CR_STORE_SLOT_EMPTY)
        ++shard->used;
    else
        assert(t->slots[i] == CR_STORE_SLOT_TOMB || cr_store_linked_state(cr_store_slot_object(t->slots[i])) == 2);
    __atomic_store_n(&obj->st_referenced, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&obj->st_linked, 1, __ATOMIC_RELAXED);
    obj->st.seq = ++shard->link_seq;
    if (obj->path_hash != 0)
        do_cr_store_path_link(store, shard, obj);
    ++shard->count;
    shard->bytes += obj->cost;
    __atomic_add_fetch(&store->count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&store->bytes, obj->cost, __ATOMIC_RELAXED);
    /* publish: everything above, and the object itself, before a lookup can see it */
    __atomic_store_n(&t->slots[i], cr_store_slot_word(obj), __ATOMIC_SEQ_CST);
}

/* Unlinks the linked object in slot i (path index, tag index and, with `tombstone`, the table: otherwise the caller
 * links its replacement into the slot at once) and uncharges it. The store's reference goes to `leaving` (retired
 * once the caller drops the lock). */
static void do_cr_store_unlink_at(cr_store_t *store, cr_store_shard_t *shard, size_t i, int tombstone, cr_store_leaving_t *leaving)
{
    cr_object_t *obj = cr_store_slot_object(shard->table->slots[i]);

    assert(cr_store_linked_state(obj) == 1);
    if (tombstone)
        __atomic_store_n(&shard->table->slots[i], CR_STORE_SLOT_TOMB, __ATOMIC_SEQ_CST);
    if (obj->path_hash != 0)
        do_cr_store_path_unlink(shard, obj);
    do_cr_store_tags_unlink(store, shard, obj);
    __atomic_store_n(&obj->st_linked, 2, __ATOMIC_RELAXED);

    assert(shard->count != 0 && shard->bytes >= obj->cost);
    --shard->count;
    shard->bytes -= obj->cost;
    __atomic_sub_fetch(&store->count, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&store->bytes, obj->cost, __ATOMIC_RELAXED);

    obj->st.path_next = leaving->objs;
    leaving->objs = obj;
    ++leaving->num_objs;
}

void do_cr_store_unlink(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj, cr_store_leaving_t *leaving)
{
    do_cr_store_unlink_at(store, shard, do_cr_store_slot_of(shard, obj), 1, leaving);
}

/* ---- eviction ---- */

/* Runs the CLOCK hand over the table (clearing referenced bits on the way) until it has seen CR_STORE_EVICT_SAMPLE
 * unreferenced objects other than `spare`, or a whole sweep found some, and unlinks the oldest of them (by
 * response_time_ms: slots are in no particular order, so the hand alone would evict a new object as readily as an
 * old one). Returns 1 if it unlinked one, 0 when the shard holds nothing else than `spare`, or only objects that
 * lookups kept marking referenced through two sweeps. */
static int do_cr_store_evict_one(cr_store_t *store, cr_store_shard_t *shard, const cr_object_t *spare, cr_store_leaving_t *leaving)
{
    cr_store_table_t *t = shard->table;
    size_t steps, best = SIZE_MAX, sampled = 0;
    uint64_t best_time = UINT64_MAX;

    if (shard->count == 0 || (shard->count == 1 && cr_store_linked_state(spare) == 1 &&
                              cr_store_shard(store, spare->hash) == shard))
        return 0;
    /* two sweeps at most: the first may only clear referenced bits */
    for (steps = 0; steps != 2 * (t->mask + 1) + 1; ++steps) {
        size_t i = shard->hand;
        uintptr_t w = t->slots[i];
        cr_object_t *obj;
        if (best != SIZE_MAX && steps > t->mask)
            break; /* a whole sweep: take the oldest found */
        shard->hand = (i + 1) & t->mask;
        if (w <= CR_STORE_SLOT_TOMB)
            continue;
        obj = cr_store_slot_object(w);
        if (__atomic_load_n(&obj->st_referenced, __ATOMIC_RELAXED)) {
            __atomic_store_n(&obj->st_referenced, 0, __ATOMIC_RELAXED);
            continue;
        }
        if (obj == spare)
            continue;
        if (best == SIZE_MAX || obj->response_time_ms < best_time) {
            best = i;
            best_time = obj->response_time_ms;
        }
        if (++sampled == CR_STORE_EVICT_SAMPLE)
            break;
    }
    if (best == SIZE_MAX)
        return 0;
    do_cr_store_unlink_at(store, shard, best, 1, leaving);
    return 1;
}

/* Evicts until bytes <= limit, never choosing `spare` (the object just inserted). Gives up, leaving the store over its
 * limit, only after two full rounds of shards without a victim, which needs other threads racing to empty the store
 * (or a store holding nothing but `spare` and its index, which cannot exceed the limit on their own). */
static void cr_store_evict(cr_store_t *store, const cr_object_t *spare)
{
    cr_store_leaving_t leaving = {NULL, NULL, 0};
    unsigned idle = 0;
    size_t bytes;

    while ((bytes = __atomic_load_n(&store->bytes, __ATOMIC_RELAXED)) > store->limit && idle < 2 * CR_STORE_SHARDS) {
        cr_store_shard_t *shard = &store->shards[__atomic_fetch_add(&store->cursor, 1, __ATOMIC_RELAXED) % CR_STORE_SHARDS];
        int evicted = 0;

        pthread_mutex_lock(&shard->lock);
        /* first round: skip shards holding under half their fair share */
        if (idle >= CR_STORE_SHARDS || shard->bytes >= bytes / CR_STORE_SHARDS / 2) {
            evicted = do_cr_store_evict_one(store, shard, spare, &leaving);
            if (evicted)
                do_cr_store_maybe_shrink(store, shard, &leaving);
        }
        pthread_mutex_unlock(&shard->lock);

        if (evicted) {
            __atomic_add_fetch(&store->evictions, 1, __ATOMIC_RELAXED);
            idle = 0;
        } else {
            ++idle;
        }
        if (leaving.num_objs >= 64)
            cr_store_retire(store, &leaving);
    }
    cr_store_retire(store, &leaving);
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

/* Under the shard lock: the next object of the key in t's probe run from slot *i on (start at hash & t->mask), its
 * slot left in *i (step past it with *i = (*i + 1) & t->mask), or NULL at the end of the run. */
static cr_object_t *do_cr_store_next_of_key(const cr_store_table_t *t, size_t *i, const char *key, size_t keylen, uint64_t hash)
{
    for (; t->slots[*i] != CR_STORE_SLOT_EMPTY; *i = (*i + 1) & t->mask) {
        cr_object_t *obj;
        if (t->slots[*i] == CR_STORE_SLOT_TOMB)
            continue;
        obj = cr_store_slot_object(t->slots[*i]);
        if (cr_store_key_eq(obj, key, keylen, hash))
            return obj;
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

static cr_object_t *cr_store_do_lookup(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
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
    return cr_store_do_lookup(store, key, keylen, hash, match, ctx, num_variants, 0);
}

cr_object_t *cr_store_lookup_pinned(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
                                    void *ctx, size_t *num_variants)
{
    return cr_store_do_lookup(store, key, keylen, hash, match, ctx, num_variants, 1);
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

/* cr_store_insert, conditional on no invalidation since `epoch` covering obj when epoch != NULL. */
static int cr_store_do_insert(cr_store_t *store, cr_object_t *obj, const cr_store_epoch_t *epoch)
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
    return cr_store_do_insert(store, obj, NULL);
}

int cr_store_insert_if_epoch(cr_store_t *store, cr_object_t *obj, const cr_store_epoch_t *epoch)
{
    assert(epoch != NULL);
    return cr_store_do_insert(store, obj, epoch);
}

/* ---- removing and purging ---- */

int cr_store_remove_object(cr_store_t *store, cr_object_t *obj)
{
    cr_store_leaving_t leaving = {NULL, NULL, 0};
    cr_store_shard_t *shard;
    int removed = 0;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    shard = cr_store_shard(store, obj->hash);
    pthread_mutex_lock(&shard->lock);
    if (cr_store_linked_state(obj) == 1) {
        do_cr_store_unlink(store, shard, obj, &leaving);
        do_cr_store_maybe_shrink(store, shard, &leaving);
        removed = 1;
    }
    pthread_mutex_unlock(&shard->lock);
    cr_store_retire(store, &leaving); /* the store's reference; the caller's own is untouched */
    return removed;
}

size_t cr_store_purge_key(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, int soft)
{
    cr_store_leaving_t leaving = {NULL, NULL, 0};
    cr_store_shard_t *shard;
    cr_store_table_t *t;
    cr_object_t *obj;
    size_t total = 0, i;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    shard = cr_store_shard(store, hash);
    cr_inval_note_key(store->inval, key, keylen);
    pthread_mutex_lock(&shard->lock);
    t = shard->table;
    for (i = hash & t->mask; (obj = do_cr_store_next_of_key(t, &i, key, keylen, hash)) != NULL; i = (i + 1) & t->mask) {
        if (soft)
            cr_object_invalidate(obj);
        else
            do_cr_store_unlink_at(store, shard, i, 1, &leaving); /* a tombstone: the probe run goes on */
        ++total;
    }
    do_cr_store_maybe_shrink(store, shard, &leaving);
    pthread_mutex_unlock(&shard->lock);
    cr_store_retire(store, &leaving);
    return total;
}

/* Purges every object for which match() says yes (it runs under the shard lock: no locking, no blocking), one lock
 * hold per shard. The caller noted what it covers. Returns the count. */
static size_t cr_store_purge_matching(cr_store_t *store, cr_store_match_fn match, void *ctx, int soft)
{
    size_t total = 0, s;

    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_leaving_t leaving = {NULL, NULL, 0};
        cr_store_shard_t *shard = &store->shards[s];
        cr_store_table_t *t;
        size_t i;
        pthread_mutex_lock(&shard->lock);
        t = shard->table;
        for (i = 0; i <= t->mask && shard->count != 0; ++i) {
            cr_object_t *obj;
            if (t->slots[i] <= CR_STORE_SLOT_TOMB)
                continue;
            obj = cr_store_slot_object(t->slots[i]);
            if (!match(ctx, obj))
                continue;
            if (soft)
                cr_object_invalidate(obj);
            else
                do_cr_store_unlink_at(store, shard, i, 1, &leaving);
            ++total;
        }
        do_cr_store_maybe_shrink(store, shard, &leaving);
        pthread_mutex_unlock(&shard->lock);
        cr_store_retire(store, &leaving);
    }
    return total;
}

typedef struct st_cr_store_prefix_t {
    const char *prefix;
    size_t len;
} cr_store_prefix_t;

static int key_has_prefix(void *ctx, const cr_object_t *obj)
{
    const cr_store_prefix_t *p = ctx;
    cr_str_t k = cr_object_key(obj);
    return k.len >= p->len && (p->len == 0 || memcmp(k.base, p->prefix, p->len) == 0);
}

size_t cr_store_purge_prefix(cr_store_t *store, const char *prefix, size_t prefixlen, int soft)
{
    cr_store_prefix_t p = {prefix, prefixlen};
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(prefix != NULL || prefixlen == 0);
    cr_inval_note_key_prefix(store->inval, prefix, prefixlen);
    return cr_store_purge_matching(store, key_has_prefix, &p, soft);
}

size_t cr_store_purge_if(cr_store_t *store, cr_store_match_fn match, void *ctx, int soft)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    cr_inval_note_all(store->inval); /* the predicate cannot be recorded */
    return cr_store_purge_matching(store, match, ctx, soft);
}

/* The predicate cr_inval_covers() applies to path-prefix records, exactly (it compares hashes). */
static int path_has_prefix(void *ctx, const cr_object_t *obj)
{
    const cr_store_prefix_t *p = ctx;
    cr_str_t path = cr_inval_key_path(cr_object_key(obj));
    return path.len >= p->len && (p->len == 0 || memcmp(path.base, p->prefix, p->len) == 0);
}

size_t cr_store_purge_path_prefix(cr_store_t *store, const char *prefix, size_t prefixlen, int soft)
{
    cr_store_prefix_t p = {prefix, prefixlen};
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(prefix != NULL || prefixlen == 0);
    cr_inval_note_path_prefix(store->inval, prefix, prefixlen);
    return cr_store_purge_matching(store, path_has_prefix, &p, soft);
}

size_t cr_store_purge_path(cr_store_t *store, uint64_t path_hash, cr_store_match_fn match, void *ctx, int soft)
{
    size_t total = 0, s;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(path_hash != 0);
    cr_inval_note_path(store->inval, path_hash);
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_leaving_t leaving = {NULL, NULL, 0};
        cr_store_shard_t *shard = &store->shards[s];
        cr_object_t *obj, *next;
        pthread_mutex_lock(&shard->lock);
        for (obj = shard->path_buckets[path_hash & shard->path_mask]; obj != NULL; obj = next) {
            next = obj->st.path_next; /* unlinking reuses path_next for the retire list */
            if (obj->path_hash != path_hash || !match(ctx, obj))
                continue;
            if (soft)
                cr_object_invalidate(obj);
            else
                do_cr_store_unlink(store, shard, obj, &leaving);
            ++total;
        }
        do_cr_store_maybe_shrink(store, shard, &leaving);
        pthread_mutex_unlock(&shard->lock);
        cr_store_retire(store, &leaving);
    }
    return total;
}

size_t cr_store_collect_path(cr_store_t *store, uint64_t path_hash, cr_store_match_fn match, void *ctx, cr_object_t **out,
                             size_t max)
{
    size_t n = 0, s;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_shard_t *shard = &store->shards[s];
        cr_object_t *obj;
        pthread_mutex_lock(&shard->lock);
        for (obj = shard->path_buckets[path_hash & shard->path_mask]; obj != NULL; obj = obj->st.path_next) {
            if (obj->path_hash != path_hash || !match(ctx, obj))
                continue;
            if (n < max) {
                cr_object_addref(obj);
                out[n] = obj;
            }
            ++n;
        }
        pthread_mutex_unlock(&shard->lock);
    }
    return n;
}

size_t cr_store_clear(cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return cr_store_purge_prefix(store, "", 0, 0);
}

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
