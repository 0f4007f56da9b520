/*
 * store.c: the L1 in-memory object store: sharded hash tables with CLOCK eviction under one byte budget.
 *
 * Structure. CR_STORE_SHARDS shards, chosen by the top bits of the key hash. Each shard has a mutex, an open hash table
 * (power-of-two buckets chosen by the low hash bits, chained through obj->st.hash_next, doubled when the load factor
 * passes 1) and a CLOCK ring (circular, doubly linked through obj->st.clock_prev/next, `hand` = next candidate, new
 * objects enter just behind the hand). All variants of a primary key are separate objects in the same chain.
 *
 * Invariants (per shard, under its lock):
 *  - an object is linked (st.linked == 1) iff it is in exactly one bucket chain and in the ring; it then carries
 *    exactly one reference owned by the store;
 *  - no two linked objects have equal key and variant_key;
 *  - shard->count / shard->bytes are the number of linked objects and the sum of their charges, where
 *    charge = obj->cost + cr_store_entry_overhead(). The store-wide `count` and `bytes` are atomic sums of the same,
 *    updated in the same critical section as the link / unlink, so once threads are quiescent they are exact.
 *
 * Locking rules (memcached style): a function named do_*() expects the caller to hold the shard's lock. No code path
 * holds two shard locks at once, so there is no lock order to respect. The variant match callback runs under the
 * shard lock and must not call back into the store. Objects leaving the store (evicted, replaced, removed) are
 * released only after the shard lock is dropped, so destructors (free of big bodies) never run under a lock.
 *
 * Eviction. An insert that leaves `bytes` above the limit evicts one object at a time from shards chosen round-robin
 * by an atomic cursor: CLOCK gives each object whose `referenced` bit is set (by lookup) a second chance. Shards
 * holding less than half of their fair share of bytes are skipped on the first pass, which keeps shard sizes balanced
 * (inserts land on random shards while round-robin evicts evenly) and keeps a small shard's hot objects resident.
 * An insert never evicts the object it has just linked (it would be the only victim in an otherwise empty shard).
 *
 * Entry overhead. The store's only per-object memory outside cr_object_t is its bucket slot; a table doubles when its
 * count exceeds its bucket count, so it has fewer than 2 slots per object at its high-water mark (tables never
 * shrink; the initial 16 buckets per shard are a fixed cost not charged): CR_STORE_ENTRY_OVERHEAD = 2 pointers.
 *
 * An object may be linked in at most one store at a time (st is a single set of links).
 */
#include "corral/store.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>

#define CR_STORE_MAGIC 0x57013e11u
#define CR_STORE_SHARD_BITS 6
#define CR_STORE_SHARDS (1u << CR_STORE_SHARD_BITS)
#define CR_STORE_INITIAL_BUCKETS 16
#define CR_STORE_ENTRY_OVERHEAD (2 * sizeof(void *))
/* How many leaving objects a removal batches under one lock hold before dropping it to release them. */
#define CR_STORE_BATCH 64

typedef struct st_cr_store_shard_t {
    alignas(64) pthread_mutex_t lock;
    cr_object_t **buckets;
    size_t mask; /* number of buckets - 1 */
    cr_object_t *hand; /* CLOCK hand: next object examined for eviction, NULL when the shard is empty */
    size_t count;
    size_t bytes;
} cr_store_shard_t;

struct st_cr_store_t {
    unsigned magic;
    size_t limit;
    size_t bytes;       /* atomic */
    size_t count;       /* atomic */
    uint64_t evictions; /* atomic */
    unsigned cursor;    /* atomic: round-robin eviction shard */
    cr_store_shard_t shards[CR_STORE_SHARDS];
};

/* Objects unlinked under a lock, released once it is dropped. */
typedef struct st_cr_store_batch_t {
    size_t n;
    cr_object_t *objs[CR_STORE_BATCH];
} cr_store_batch_t;

size_t cr_store_entry_overhead(void)
{
    return CR_STORE_ENTRY_OVERHEAD;
}

static inline size_t cr_store_charge(const cr_object_t *obj)
{
    return obj->cost + CR_STORE_ENTRY_OVERHEAD;
}

static inline cr_store_shard_t *cr_store_shard(cr_store_t *store, uint64_t hash)
{
    return &store->shards[hash >> (64 - CR_STORE_SHARD_BITS)];
}

static inline int cr_store_key_eq(const cr_object_t *obj, const char *key, size_t keylen, uint64_t hash)
{
    return obj->hash == hash && obj->key.len == keylen && (keylen == 0 || memcmp(obj->key.base, key, keylen) == 0);
}

static inline int cr_store_variant_eq(const cr_object_t *a, const cr_object_t *b)
{
    return a->variant_key.len == b->variant_key.len &&
           (a->variant_key.len == 0 || memcmp(a->variant_key.base, b->variant_key.base, a->variant_key.len) == 0);
}

static void cr_store_batch_release(cr_store_batch_t *batch)
{
    size_t i;
    for (i = 0; i != batch->n; ++i)
        cr_object_release(&batch->objs[i]);
    batch->n = 0;
}

cr_store_t *cr_store_new(size_t memory_limit)
{
    cr_store_t *store;
    size_t i;

    if ((store = aligned_alloc(alignof(cr_store_t), sizeof(*store))) == NULL) /* sizeof is a multiple of alignof */
        return NULL;
    memset(store, 0, sizeof(*store));
    store->magic = CR_STORE_MAGIC;
    store->limit = memory_limit;
    for (i = 0; i != CR_STORE_SHARDS; ++i) {
        cr_store_shard_t *shard = &store->shards[i];
        if ((shard->buckets = calloc(CR_STORE_INITIAL_BUCKETS, sizeof(*shard->buckets))) == NULL ||
            pthread_mutex_init(&shard->lock, NULL) != 0) {
            free(shard->buckets);
            while (i-- != 0) {
                pthread_mutex_destroy(&store->shards[i].lock);
                free(store->shards[i].buckets);
            }
            free(store);
            return NULL;
        }
        shard->mask = CR_STORE_INITIAL_BUCKETS - 1;
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
    for (i = 0; i != CR_STORE_SHARDS; ++i) {
        assert(store->shards[i].count == 0 && store->shards[i].hand == NULL);
        pthread_mutex_destroy(&store->shards[i].lock);
        free(store->shards[i].buckets);
    }
    store->magic = 0;
    free(store);
}

/* Doubles the bucket array. On allocation failure the table keeps its size (chains just get longer). */
static void do_cr_store_grow(cr_store_shard_t *shard)
{
    size_t newmask = shard->mask * 2 + 1, i;
    cr_object_t **newbuckets;

    if (newmask > SIZE_MAX / sizeof(*newbuckets) - 1 || (newbuckets = calloc(newmask + 1, sizeof(*newbuckets))) == NULL)
        return;
    for (i = 0; i <= shard->mask; ++i) {
        cr_object_t *obj = shard->buckets[i], *next;
        for (; obj != NULL; obj = next) {
            cr_object_t **slot = &newbuckets[obj->hash & newmask];
            next = obj->st.hash_next;
            obj->st.hash_next = *slot;
            *slot = obj;
        }
    }
    free(shard->buckets);
    shard->buckets = newbuckets;
    shard->mask = newmask;
}

/* Links obj (whose reference the store now owns) into the shard's chain and ring and charges it. Never fails. */
static void do_cr_store_link(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    cr_object_t **slot = &shard->buckets[obj->hash & shard->mask];
    size_t charge = cr_store_charge(obj);

    obj->st.hash_next = *slot;
    *slot = obj;
    if (shard->hand == NULL) {
        obj->st.clock_prev = obj->st.clock_next = obj;
        shard->hand = obj;
    } else {
        /* just behind the hand: the last object the hand reaches */
        obj->st.clock_next = shard->hand;
        obj->st.clock_prev = shard->hand->st.clock_prev;
        obj->st.clock_prev->st.clock_next = obj;
        shard->hand->st.clock_prev = obj;
    }
    obj->st.referenced = 0;
    obj->st.linked = 1;
    ++shard->count;
    shard->bytes += charge;
    __atomic_add_fetch(&store->count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&store->bytes, charge, __ATOMIC_RELAXED);
    if (shard->count > shard->mask + 1)
        do_cr_store_grow(shard);
}

/* Unlinks a linked object and uncharges it. The store's reference passes to the caller, who must release it after
 * dropping the lock. */
static void do_cr_store_unlink(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    cr_object_t **slot = &shard->buckets[obj->hash & shard->mask];
    size_t charge = cr_store_charge(obj);

    assert(obj->st.linked);
    while (*slot != obj) {
        assert(*slot != NULL);
        slot = &(*slot)->st.hash_next;
    }
    *slot = obj->st.hash_next;
    obj->st.hash_next = NULL;

    if (obj->st.clock_next == obj) {
        assert(shard->hand == obj && shard->count == 1);
        shard->hand = NULL;
    } else {
        if (shard->hand == obj)
            shard->hand = obj->st.clock_next;
        obj->st.clock_prev->st.clock_next = obj->st.clock_next;
        obj->st.clock_next->st.clock_prev = obj->st.clock_prev;
    }
    obj->st.clock_prev = obj->st.clock_next = NULL;
    obj->st.linked = 0;

    assert(shard->count != 0 && shard->bytes >= charge);
    --shard->count;
    shard->bytes -= charge;
    __atomic_sub_fetch(&store->count, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&store->bytes, charge, __ATOMIC_RELAXED);
}

/* Runs the CLOCK hand to the first unreferenced object other than `spare` (clearing referenced bits on the way) and
 * unlinks it. Returns the victim (the caller releases it after unlocking), or NULL when the shard holds nothing but
 * `spare` (kept alive by the inserting caller's own reference). */
static cr_object_t *do_cr_store_evict_one(cr_store_t *store, cr_store_shard_t *shard, const cr_object_t *spare)
{
    cr_object_t *obj;

    while ((obj = shard->hand) != NULL) {
        if (obj->st.referenced) {
            obj->st.referenced = 0;
        } else if (obj != spare) {
            do_cr_store_unlink(store, shard, obj);
            return obj;
        } else if (shard->count == 1) {
            return NULL;
        }
        shard->hand = obj->st.clock_next;
    }
    return NULL;
}

/* Evicts until bytes <= limit, never choosing `spare` (the object just inserted). Gives up, leaving the store over its
 * limit, only after two full rounds of shards without a victim, which needs other threads racing to empty the store
 * (or a store holding nothing but `spare`, which cannot exceed the limit on its own). */
static void cr_store_evict(cr_store_t *store, const cr_object_t *spare)
{
    unsigned idle = 0;
    size_t bytes;

    while ((bytes = __atomic_load_n(&store->bytes, __ATOMIC_RELAXED)) > store->limit && idle < 2 * CR_STORE_SHARDS) {
        cr_store_shard_t *shard = &store->shards[__atomic_fetch_add(&store->cursor, 1, __ATOMIC_RELAXED) % CR_STORE_SHARDS];
        cr_object_t *victim = NULL;

        pthread_mutex_lock(&shard->lock);
        /* first round: skip shards holding under half their fair share */
        if (idle >= CR_STORE_SHARDS || shard->bytes >= bytes / CR_STORE_SHARDS / 2)
            victim = do_cr_store_evict_one(store, shard, spare);
        pthread_mutex_unlock(&shard->lock);

        if (victim != NULL) {
            __atomic_add_fetch(&store->evictions, 1, __ATOMIC_RELAXED);
            cr_object_release(&victim);
            idle = 0;
        } else {
            ++idle;
        }
    }
}

cr_object_t *cr_store_lookup(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_variant_match_fn match,
                             void *ctx, size_t *num_variants)
{
    cr_store_shard_t *shard;
    cr_object_t *obj, *found = NULL;
    size_t n = 0;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    shard = cr_store_shard(store, hash);
    pthread_mutex_lock(&shard->lock);
    for (obj = shard->buckets[hash & shard->mask]; obj != NULL; obj = obj->st.hash_next) {
        if (!cr_store_key_eq(obj, key, keylen, hash))
            continue;
        ++n;
        if (found == NULL && (match == NULL || match(ctx, obj) == 1))
            found = obj;
    }
    if (found != NULL) {
        cr_object_addref(found);
        found->st.referenced = 1;
    }
    pthread_mutex_unlock(&shard->lock);

    if (num_variants != NULL)
        *num_variants = n;
    return found;
}

int cr_store_insert(cr_store_t *store, cr_object_t *obj)
{
    cr_store_shard_t *shard;
    cr_object_t *cur, *replaced = NULL;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(obj->cost != 0); /* finished */
    assert(obj->hash == cr_hash(obj->key.base, obj->key.len));

    if (obj->cost > store->limit || cr_store_charge(obj) > store->limit)
        return CR_DECLINED;

    shard = cr_store_shard(store, obj->hash);
    pthread_mutex_lock(&shard->lock);
    if (obj->st.linked) {
        /* already in this store (inserted twice): nothing to do */
        pthread_mutex_unlock(&shard->lock);
        return CR_OK;
    }
    for (cur = shard->buckets[obj->hash & shard->mask]; cur != NULL; cur = cur->st.hash_next) {
        if (cr_store_key_eq(cur, obj->key.base, obj->key.len, obj->hash) && cr_store_variant_eq(cur, obj)) {
            replaced = cur;
            do_cr_store_unlink(store, shard, replaced);
            break;
        }
    }
    cr_object_addref(obj);
    do_cr_store_link(store, shard, obj);
    pthread_mutex_unlock(&shard->lock);

    cr_object_release(&replaced);
    cr_store_evict(store, obj);
    return CR_OK;
}

int cr_store_remove_object(cr_store_t *store, cr_object_t *obj)
{
    cr_store_shard_t *shard;
    int removed = 0;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    shard = cr_store_shard(store, obj->hash);
    pthread_mutex_lock(&shard->lock);
    if (obj->st.linked) {
        do_cr_store_unlink(store, shard, obj);
        removed = 1;
    }
    pthread_mutex_unlock(&shard->lock);

    if (removed)
        cr_object_release(&obj); /* the store's reference; the caller's own is untouched */
    return removed;
}

size_t cr_store_remove_key(cr_store_t *store, const char *key, size_t keylen, uint64_t hash)
{
    cr_store_shard_t *shard;
    cr_store_batch_t batch;
    cr_object_t **slot, *obj;
    size_t total = 0;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    shard = cr_store_shard(store, hash);
    batch.n = 0;
    do {
        pthread_mutex_lock(&shard->lock);
        slot = &shard->buckets[hash & shard->mask];
        while ((obj = *slot) != NULL && batch.n != CR_STORE_BATCH) {
            if (cr_store_key_eq(obj, key, keylen, hash)) {
                do_cr_store_unlink(store, shard, obj); /* *slot now holds the next object */
                batch.objs[batch.n++] = obj;
            } else {
                slot = &obj->st.hash_next;
            }
        }
        pthread_mutex_unlock(&shard->lock);
        total += batch.n;
        cr_store_batch_release(&batch);
    } while (obj != NULL); /* the batch filled up: rescan the chain */
    return total;
}

/* Removes every object whose key starts with prefix (every object when prefixlen == 0). Returns the count. When a
 * batch fills up, the lock is dropped to release it and the scan resumes at the same bucket (or at bucket 0 if the
 * table grew meanwhile and objects moved). */
static size_t cr_store_remove_matching(cr_store_t *store, const char *prefix, size_t prefixlen)
{
    cr_store_batch_t batch;
    size_t total = 0, s;

    batch.n = 0;
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_shard_t *shard = &store->shards[s];
        size_t b = 0;
        pthread_mutex_lock(&shard->lock);
        while (b <= shard->mask) {
            cr_object_t **slot = &shard->buckets[b], *obj;
            size_t mask;
            while ((obj = *slot) != NULL && batch.n != CR_STORE_BATCH) {
                if (obj->key.len >= prefixlen && (prefixlen == 0 || memcmp(obj->key.base, prefix, prefixlen) == 0)) {
                    do_cr_store_unlink(store, shard, obj); /* *slot now holds the next object */
                    batch.objs[batch.n++] = obj;
                } else {
                    slot = &obj->st.hash_next;
                }
            }
            if (obj == NULL) {
                ++b;
                continue;
            }
            mask = shard->mask;
            pthread_mutex_unlock(&shard->lock);
            total += batch.n;
            cr_store_batch_release(&batch);
            pthread_mutex_lock(&shard->lock);
            if (shard->mask != mask)
                b = 0;
        }
        pthread_mutex_unlock(&shard->lock);
        total += batch.n;
        cr_store_batch_release(&batch);
    }
    return total;
}

size_t cr_store_remove_prefix(cr_store_t *store, const char *prefix, size_t prefixlen)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return cr_store_remove_matching(store, prefix, prefixlen);
}

size_t cr_store_clear(cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return cr_store_remove_matching(store, NULL, 0);
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
