/*
 * store.c: the L1 in-memory object store: sharded hash tables with CLOCK eviction under one byte budget.
 *
 * Structure. CR_STORE_SHARDS shards, chosen by the top bits of the key hash. Each shard has a mutex, an open hash table
 * (power-of-two buckets chosen by the low hash bits, chained through obj->st.hash_next, doubled when the load factor
 * passes 1) and a CLOCK ring (circular, doubly linked through obj->st.clock_prev/next, `hand` = next candidate, new
 * objects enter just behind the hand). All variants of a primary key are separate objects in the same chain.
 *
 * Invariants (per shard, under its lock):
 *  - an object is linked (st_linked == 1) iff it is in exactly one bucket chain and in the ring; it then carries
 *    exactly one reference owned by the store;
 *  - no two linked objects have equal key and variant_key;
 *  - shard->count / shard->bytes are the number of linked objects and the sum of their charges, where
 *    charge = obj->cost + cr_store_entry_overhead(), plus the charges of the shard's tag entries (below). The
 *    store-wide `count` and `bytes` are atomic sums of the same, updated in the same critical section as the link /
 *    unlink, so once threads are quiescent they are exact.
 *
 * Locking rules (memcached style): a function named do_*() expects the caller to hold the shard's lock. No code path
 * holds two shard locks at once, so there is no lock order to respect. The variant match callback runs under the
 * shard lock and must not call back into the store. Objects leaving the store (evicted, replaced, removed) are
 * released only after the shard lock is dropped, so destructors (free of big bodies) never run under a lock; only
 * tag entries (small, store-owned) are allocated and freed under it.
 *
 * Eviction. An insert that leaves `bytes` above the limit evicts one object at a time from shards chosen round-robin
 * by an atomic cursor: CLOCK gives each object whose `referenced` bit is set (by lookup) a second chance. Shards
 * holding less than half of their fair share of bytes are skipped on the first pass, which keeps shard sizes balanced
 * (inserts land on random shards while round-robin evicts evenly) and keeps a small shard's hot objects resident.
 * An insert never evicts the object it has just linked (it would be the only victim in an otherwise empty shard).
 *
 * Entry overhead. The store's only per-object memory outside cr_object_t is its bucket slot; a table doubles when its
 * count exceeds its bucket count, so it has fewer than 2 slots per object at its high-water mark (tables never
 * shrink; the initial 16 buckets per shard are a fixed cost not charged), for the key table and the path table:
 * CR_STORE_ENTRY_OVERHEAD = 3 pointers.
 *
 * An object may be linked in at most one store at a time (st is a single set of links).
 *
 * Tag index. Each shard also has a hash table of cr_store_tag_t entries (chained through hash_next, grown like the key
 * table), one per distinct tag among the shard's linked objects. An entry heads a doubly linked list of memberships:
 * the cr_object_tag_t array inside each tagged object (tag->st.entry/prev/next), so indexing allocates nothing per
 * object. Invariants, per shard under its lock: an object is linked iff each of its tags is a member of its shard's
 * entry for that tag; entry->num_members is the length of its list and never 0 (an entry is freed when its last
 * member leaves); tag_count and tag_bytes count the entries and their charges (cr_store_tag_charge()), which are
 * included in shard->bytes and the store's bytes. A tag purge looks the tag up in each shard (O(1) each) and walks
 * only its members. An insert creates the entries it needs before changing anything else, so an allocation failure
 * declines it cleanly; the new object then joins the tag lists before the object it replaces leaves them, so an
 * entry both carry is never freed in between.
 *
 * Soft purges set CR_OBJ_INVALIDATED with an atomic OR (cr_object_invalidate): the object stays linked and other
 * threads read the bit without the shard lock (cr_object_is_fresh). Everything else in the index is under the lock.
 *
 * Epochs (the fill race, see store.h). `epoch` (store-wide) moves at the start of every prefix / tag purge and clear,
 * before any shard is visited; each shard's epochs[] slot for a key moves under the shard lock in the same critical
 * section as that key's purge. A key's epoch is epoch + its slot: both only grow, so the sum changes iff either does.
 * cr_store_insert_if_epoch() compares under the shard lock: a purge either reached the shard after the insert (and
 * finds the object there) or moved the epoch before unlocking the shard (and the insert, locking after it, sees it).
 */
#include "corral/store.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>

#define CR_STORE_MAGIC 0x57013e11u
#define CR_STORE_SHARD_BITS 6
#define CR_STORE_SHARDS (1u << CR_STORE_SHARD_BITS)
#define CR_STORE_INITIAL_BUCKETS 16
#define CR_STORE_ENTRY_OVERHEAD (3 * sizeof(void *))
#define CR_STORE_INITIAL_TAG_BUCKETS 16
/* Key-epoch slots per shard, chosen by hash bits 32.. (the shard uses the top bits, the buckets the low ones). */
#define CR_STORE_EPOCH_SLOTS 64
/* How many leaving objects a removal batches under one lock hold before dropping it to release them. */
#define CR_STORE_BATCH 64

/* One tag of the shard's index: the list of its members (memberships inside the tagged objects). */
typedef struct st_cr_store_tag_t {
    struct st_cr_store_tag_t *hash_next;
    uint64_t hash;
    cr_object_tag_t *members; /* head; linked through cr_object_tag_t::st.prev/next */
    size_t num_members;       /* never 0 while the entry exists */
    size_t len;
    char name[]; /* len bytes + NUL */
} cr_store_tag_t;

typedef struct st_cr_store_shard_t {
    alignas(64) pthread_mutex_t lock;
    cr_object_t **buckets;
    cr_object_t **path_buckets; /* the path index: objects with path_hash != 0, chained through st.path_next */
    size_t mask; /* number of buckets - 1 (both tables) */
    cr_object_t *hand; /* CLOCK hand: next object examined for eviction, NULL when the shard is empty */
    size_t count;
    size_t bytes; /* objects' charges plus tag entries' charges */
    cr_store_tag_t **tag_buckets;
    size_t tag_mask;
    size_t tag_count;
    size_t tag_bytes;
    uint64_t epochs[CR_STORE_EPOCH_SLOTS]; /* atomic; written under the lock */
} cr_store_shard_t;

struct st_cr_store_t {
    unsigned magic;
    size_t limit;
    size_t bytes;       /* atomic */
    size_t count;       /* atomic */
    size_t tag_count;   /* atomic */
    size_t tag_bytes;   /* atomic */
    uint64_t evictions; /* atomic */
    uint64_t epoch;     /* atomic: moved by every prefix / tag purge and clear */
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

size_t cr_store_tag_charge(size_t taglen)
{
    return sizeof(cr_store_tag_t) + taglen + 1 + CR_STORE_ENTRY_OVERHEAD;
}

static inline cr_store_shard_t *cr_store_shard(cr_store_t *store, uint64_t hash)
{
    return &store->shards[hash >> (64 - CR_STORE_SHARD_BITS)];
}

static inline uint64_t *cr_store_epoch_slot(cr_store_shard_t *shard, uint64_t hash)
{
    return &shard->epochs[(hash >> 32) & (CR_STORE_EPOCH_SLOTS - 1)];
}

static inline int cr_store_key_eq(const cr_object_t *obj, const char *key, size_t keylen, uint64_t hash)
{
    cr_str_t k = cr_object_key(obj);
    return obj->hash == hash && k.len == keylen && (keylen == 0 || memcmp(k.base, key, keylen) == 0);
}

static inline int cr_store_variant_eq(const cr_object_t *a, const cr_object_t *b)
{
    cr_str_t va = cr_object_variant_key(a), vb = cr_object_variant_key(b);
    return va.len == vb.len && (va.len == 0 || memcmp(va.base, vb.base, va.len) == 0);
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
            (shard->path_buckets = calloc(CR_STORE_INITIAL_BUCKETS, sizeof(*shard->path_buckets))) == NULL ||
            (shard->tag_buckets = calloc(CR_STORE_INITIAL_TAG_BUCKETS, sizeof(*shard->tag_buckets))) == NULL ||
            pthread_mutex_init(&shard->lock, NULL) != 0) {
            free(shard->buckets);
            free(shard->path_buckets);
            free(shard->tag_buckets);
            while (i-- != 0) {
                pthread_mutex_destroy(&store->shards[i].lock);
                free(store->shards[i].buckets);
                free(store->shards[i].path_buckets);
                free(store->shards[i].tag_buckets);
            }
            free(store);
            return NULL;
        }
        shard->mask = CR_STORE_INITIAL_BUCKETS - 1;
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
    for (i = 0; i != CR_STORE_SHARDS; ++i) {
        assert(store->shards[i].count == 0 && store->shards[i].hand == NULL);
        assert(store->shards[i].tag_count == 0 && store->shards[i].tag_bytes == 0 && store->shards[i].bytes == 0);
        pthread_mutex_destroy(&store->shards[i].lock);
        free(store->shards[i].buckets);
        free(store->shards[i].path_buckets);
        free(store->shards[i].tag_buckets);
    }
    store->magic = 0;
    free(store);
}

/* Doubles both bucket arrays. On allocation failure the tables keep their size (chains just get longer). */
static void do_cr_store_grow(cr_store_shard_t *shard)
{
    size_t newmask = shard->mask * 2 + 1, i;
    cr_object_t **newbuckets, **newpath;

    if (newmask > SIZE_MAX / sizeof(*newbuckets) - 1 || (newbuckets = calloc(newmask + 1, sizeof(*newbuckets))) == NULL)
        return;
    if ((newpath = calloc(newmask + 1, sizeof(*newpath))) == NULL) {
        free(newbuckets);
        return;
    }
    for (i = 0; i <= shard->mask; ++i) {
        cr_object_t *obj = shard->buckets[i], *next;
        for (; obj != NULL; obj = next) {
            cr_object_t **slot = &newbuckets[obj->hash & newmask];
            next = obj->st.hash_next;
            obj->st.hash_next = *slot;
            *slot = obj;
            if (obj->path_hash != 0) {
                slot = &newpath[obj->path_hash & newmask];
                obj->st.path_next = *slot;
                *slot = obj;
            }
        }
    }
    free(shard->buckets);
    free(shard->path_buckets);
    shard->buckets = newbuckets;
    shard->path_buckets = newpath;
    shard->mask = newmask;
}

/* ---- tag index (all do_*: the shard's lock is held) ---- */

static cr_store_tag_t *do_cr_store_tag_find(cr_store_shard_t *shard, const char *name, size_t len, uint64_t hash)
{
    cr_store_tag_t *e;
    for (e = shard->tag_buckets[hash & shard->tag_mask]; e != NULL; e = e->hash_next)
        if (e->hash == hash && e->len == len && (len == 0 || memcmp(e->name, name, len) == 0))
            return e;
    return NULL;
}

/* Doubles the tag table. On allocation failure the table keeps its size (chains just get longer). */
static void do_cr_store_tag_grow(cr_store_shard_t *shard)
{
    size_t newmask = shard->tag_mask * 2 + 1, i;
    cr_store_tag_t **newbuckets;

    if (newmask > SIZE_MAX / sizeof(*newbuckets) - 1 || (newbuckets = calloc(newmask + 1, sizeof(*newbuckets))) == NULL)
        return;
    for (i = 0; i <= shard->tag_mask; ++i) {
        cr_store_tag_t *e = shard->tag_buckets[i], *next;
        for (; e != NULL; e = next) {
            cr_store_tag_t **slot = &newbuckets[e->hash & newmask];
            next = e->hash_next;
            e->hash_next = *slot;
            *slot = e;
        }
    }
    free(shard->tag_buckets);
    shard->tag_buckets = newbuckets;
    shard->tag_mask = newmask;
}

/* Creates an entry with no members yet (the caller adds one at once, or frees it) and charges it. Returns NULL on
 * allocation failure (nothing changes). */
static cr_store_tag_t *do_cr_store_tag_new(cr_store_t *store, cr_store_shard_t *shard, const cr_object_tag_t *t)
{
    size_t charge = cr_store_tag_charge(t->name.len);
    cr_store_tag_t *e, **slot;

    if (t->name.len > SIZE_MAX - sizeof(*e) - 1 || (e = malloc(sizeof(*e) + t->name.len + 1)) == NULL)
        return NULL;
    memcpy(e->name, t->name.base, t->name.len);
    e->name[t->name.len] = '\0';
    e->len = t->name.len;
    e->hash = t->hash;
    e->members = NULL;
    e->num_members = 0;
    slot = &shard->tag_buckets[e->hash & shard->tag_mask];
    e->hash_next = *slot;
    *slot = e;
    ++shard->tag_count;
    shard->tag_bytes += charge;
    shard->bytes += charge;
    __atomic_add_fetch(&store->tag_count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&store->tag_bytes, charge, __ATOMIC_RELAXED);
    __atomic_add_fetch(&store->bytes, charge, __ATOMIC_RELAXED);
    if (shard->tag_count > shard->tag_mask + 1)
        do_cr_store_tag_grow(shard);
    return e;
}

/* Unchains, uncharges and frees an entry that has no members left. */
static void do_cr_store_tag_free(cr_store_t *store, cr_store_shard_t *shard, cr_store_tag_t *e)
{
    cr_store_tag_t **slot = &shard->tag_buckets[e->hash & shard->tag_mask];
    size_t charge = cr_store_tag_charge(e->len);

    assert(e->num_members == 0 && e->members == NULL);
    while (*slot != e) {
        assert(*slot != NULL);
        slot = &(*slot)->hash_next;
    }
    *slot = e->hash_next;
    assert(shard->tag_count != 0 && shard->tag_bytes >= charge && shard->bytes >= charge);
    --shard->tag_count;
    shard->tag_bytes -= charge;
    shard->bytes -= charge;
    __atomic_sub_fetch(&store->tag_count, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&store->tag_bytes, charge, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&store->bytes, charge, __ATOMIC_RELAXED);
    free(e);
}

/* Points each of obj's tags at its shard entry, creating missing entries (memberless until do_cr_store_tags_link).
 * Returns CR_OK, or CR_ERROR on allocation failure, after undoing what it did (entries it created are freed). */
static int do_cr_store_tags_prepare(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    size_t i;

    for (i = 0; i != obj->num_tags; ++i) {
        cr_object_tag_t *t = &obj->tags[i];
        assert(t->owner == obj && t->st.entry == NULL);
        if ((t->st.entry = do_cr_store_tag_find(shard, t->name.base, t->name.len, t->hash)) == NULL &&
            (t->st.entry = do_cr_store_tag_new(store, shard, t)) == NULL) {
            /* entries without members were created just now, for this object (tags are distinct) */
            while (i-- != 0) {
                t = &obj->tags[i];
                if (t->st.entry->num_members == 0)
                    do_cr_store_tag_free(store, shard, t->st.entry);
                t->st.entry = NULL;
            }
            return CR_ERROR;
        }
    }
    return CR_OK;
}

/* Adds obj's memberships to the entries do_cr_store_tags_prepare() chose. Never fails. */
static void do_cr_store_tags_link(cr_object_t *obj)
{
    size_t i;

    for (i = 0; i != obj->num_tags; ++i) {
        cr_object_tag_t *t = &obj->tags[i];
        cr_store_tag_t *e = t->st.entry;
        assert(e != NULL);
        t->st.prev = NULL;
        t->st.next = e->members;
        if (e->members != NULL)
            e->members->st.prev = t;
        e->members = t;
        ++e->num_members;
    }
}

/* Removes obj's memberships, freeing entries left empty. Never fails. */
static void do_cr_store_tags_unlink(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    size_t i;

    for (i = 0; i != obj->num_tags; ++i) {
        cr_object_tag_t *t = &obj->tags[i];
        cr_store_tag_t *e = t->st.entry;
        assert(e != NULL && e->num_members != 0);
        if (t->st.prev != NULL)
            t->st.prev->st.next = t->st.next;
        else
            e->members = t->st.next;
        if (t->st.next != NULL)
            t->st.next->st.prev = t->st.prev;
        t->st.entry = NULL;
        t->st.prev = t->st.next = NULL;
        if (--e->num_members == 0)
            do_cr_store_tag_free(store, shard, e);
    }
}

/* ---- linking ---- */

/* Links obj (whose reference the store now owns, and whose tag memberships do_cr_store_tags_link() already added)
 * into the shard's chain and ring, and charges it. Never fails. */
static void do_cr_store_link(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    cr_object_t **slot = &shard->buckets[obj->hash & shard->mask];
    size_t charge = cr_store_charge(obj);

    obj->st.hash_next = *slot;
    *slot = obj;
    if (obj->path_hash != 0) {
        slot = &shard->path_buckets[obj->path_hash & shard->mask];
        obj->st.path_next = *slot;
        *slot = obj;
    }
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
    obj->st_referenced = 0;
    obj->st_linked = 1;
    ++shard->count;
    shard->bytes += charge;
    __atomic_add_fetch(&store->count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&store->bytes, charge, __ATOMIC_RELAXED);
    if (shard->count > shard->mask + 1)
        do_cr_store_grow(shard);
}

/* Unlinks a linked object (chain, ring, tag index) and uncharges it. The store's reference passes to the caller, who
 * must release it after dropping the lock. */
static void do_cr_store_unlink(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    cr_object_t **slot = &shard->buckets[obj->hash & shard->mask];
    size_t charge = cr_store_charge(obj);

    assert(obj->st_linked);
    while (*slot != obj) {
        assert(*slot != NULL);
        slot = &(*slot)->st.hash_next;
    }
    *slot = obj->st.hash_next;
    obj->st.hash_next = NULL;
    if (obj->path_hash != 0) {
        slot = &shard->path_buckets[obj->path_hash & shard->mask];
        while (*slot != obj) {
            assert(*slot != NULL);
            slot = &(*slot)->st.path_next;
        }
        *slot = obj->st.path_next;
        obj->st.path_next = NULL;
    }

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
    do_cr_store_tags_unlink(store, shard, obj);
    obj->st_linked = 0;

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
        if (obj->st_referenced) {
            obj->st_referenced = 0;
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
        found->st_referenced = 1;
    }
    pthread_mutex_unlock(&shard->lock);

    if (num_variants != NULL)
        *num_variants = n;
    return found;
}

size_t cr_store_lookup_all(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, cr_object_t **out, size_t max)
{
    cr_store_shard_t *shard;
    cr_object_t *obj;
    size_t n = 0;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(out != NULL || max == 0);
    shard = cr_store_shard(store, hash);
    pthread_mutex_lock(&shard->lock);
    for (obj = shard->buckets[hash & shard->mask]; obj != NULL; obj = obj->st.hash_next) {
        if (!cr_store_key_eq(obj, key, keylen, hash))
            continue;
        if (n < max) {
            cr_object_addref(obj);
            out[n] = obj;
        }
        ++n;
    }
    pthread_mutex_unlock(&shard->lock);
    return n;
}

/* The key's epoch; see the file comment. Callers without the shard lock get a value at least as old as the truth. */
static inline uint64_t cr_store_epoch_of(cr_store_t *store, cr_store_shard_t *shard, uint64_t hash)
{
    return __atomic_load_n(&store->epoch, __ATOMIC_ACQUIRE) + __atomic_load_n(cr_store_epoch_slot(shard, hash), __ATOMIC_ACQUIRE);
}

uint64_t cr_store_key_epoch(cr_store_t *store, const char *key, size_t keylen, uint64_t hash)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(hash == cr_hash(key, keylen));
    (void)key;
    (void)keylen;
    return cr_store_epoch_of(store, cr_store_shard(store, hash), hash);
}

/* Moves the epoch of every key (before a prefix / tag purge or a clear visits any shard). */
static void cr_store_bump_global_epoch(cr_store_t *store)
{
    __atomic_add_fetch(&store->epoch, 1, __ATOMIC_SEQ_CST);
}

/* cr_store_insert, optionally conditional on the key's epoch (check_epoch). */
static int cr_store_do_insert(cr_store_t *store, cr_object_t *obj, int check_epoch, uint64_t epoch)
{
    cr_store_shard_t *shard;
    cr_object_t *cur, *replaced = NULL;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(obj->cost != 0); /* finished */
    assert(obj->hash == cr_hash(cr_object_key(obj).base, cr_object_key(obj).len));

    if (obj->cost > store->limit || cr_store_charge(obj) > store->limit)
        return CR_DECLINED;

    shard = cr_store_shard(store, obj->hash);
    pthread_mutex_lock(&shard->lock);
    if (check_epoch && cr_store_epoch_of(store, shard, obj->hash) != epoch) {
        pthread_mutex_unlock(&shard->lock);
        return CR_DECLINED;
    }
    if (obj->st_linked) {
        /* already in this store (inserted twice): nothing to do */
        pthread_mutex_unlock(&shard->lock);
        return CR_OK;
    }
    if (do_cr_store_tags_prepare(store, shard, obj) != CR_OK) {
        pthread_mutex_unlock(&shard->lock);
        return CR_DECLINED;
    }
    for (cur = shard->buckets[obj->hash & shard->mask]; cur != NULL; cur = cur->st.hash_next) {
        if (cr_store_key_eq(cur, cr_object_key(obj).base, cr_object_key(obj).len, obj->hash) && cr_store_variant_eq(cur, obj)) {
            replaced = cur;
            break;
        }
    }
    /* obj's memberships first: an entry that `replaced` shares with obj then never drops to 0 members (and is freed
     * under obj's resolved pointer) while `replaced` leaves */
    do_cr_store_tags_link(obj);
    if (replaced != NULL)
        do_cr_store_unlink(store, shard, replaced);
    cr_object_addref(obj);
    do_cr_store_link(store, shard, obj);
    pthread_mutex_unlock(&shard->lock);

    cr_object_release(&replaced);
    cr_store_evict(store, obj);
    return CR_OK;
}

int cr_store_insert(cr_store_t *store, cr_object_t *obj)
{
    return cr_store_do_insert(store, obj, 0, 0);
}

int cr_store_insert_if_epoch(cr_store_t *store, cr_object_t *obj, uint64_t epoch)
{
    return cr_store_do_insert(store, obj, 1, epoch);
}

int cr_store_remove_object(cr_store_t *store, cr_object_t *obj)
{
    cr_store_shard_t *shard;
    int removed = 0;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    shard = cr_store_shard(store, obj->hash);
    pthread_mutex_lock(&shard->lock);
    if (obj->st_linked) {
        do_cr_store_unlink(store, shard, obj);
        removed = 1;
    }
    pthread_mutex_unlock(&shard->lock);

    if (removed)
        cr_object_release(&obj); /* the store's reference; the caller's own is untouched */
    return removed;
}

size_t cr_store_purge_key(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, int soft)
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
        /* every pass moves the epoch: harmless, and the first one is before anything is purged */
        __atomic_add_fetch(cr_store_epoch_slot(shard, hash), 1, __ATOMIC_RELEASE);
        slot = &shard->buckets[hash & shard->mask];
        while ((obj = *slot) != NULL && batch.n != CR_STORE_BATCH) {
            if (!cr_store_key_eq(obj, key, keylen, hash)) {
                slot = &obj->st.hash_next;
            } else if (soft) {
                cr_object_invalidate(obj);
                ++total;
                slot = &obj->st.hash_next;
            } else {
                do_cr_store_unlink(store, shard, obj); /* *slot now holds the next object */
                batch.objs[batch.n++] = obj;
            }
        }
        pthread_mutex_unlock(&shard->lock);
        total += batch.n;
        cr_store_batch_release(&batch);
    } while (obj != NULL); /* the batch filled up: rescan the chain */
    return total;
}

/* Purges every object for which match() says yes (it runs under the shard lock: no locking, no blocking). Returns the
 * count. When a
 * batch fills up, the lock is dropped to release it and the scan resumes at the same bucket (or at bucket 0 if the
 * table grew meanwhile and objects moved; objects a soft purge already marked are then counted again, so a soft
 * count may exceed the number of matching objects only when inserts race the purge). */
static size_t cr_store_purge_matching(cr_store_t *store, cr_store_match_fn match, void *ctx, int soft)
{
    cr_store_batch_t batch;
    size_t total = 0, s;

    cr_store_bump_global_epoch(store);
    batch.n = 0;
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_shard_t *shard = &store->shards[s];
        size_t b = 0;
        pthread_mutex_lock(&shard->lock);
        while (b <= shard->mask) {
            cr_object_t **slot = &shard->buckets[b], *obj;
            size_t mask;
            while ((obj = *slot) != NULL && batch.n != CR_STORE_BATCH) {
                if (!match(ctx, obj)) {
                    slot = &obj->st.hash_next;
                } else if (soft) {
                    cr_object_invalidate(obj);
                    ++total;
                    slot = &obj->st.hash_next;
                } else {
                    do_cr_store_unlink(store, shard, obj); /* *slot now holds the next object */
                    batch.objs[batch.n++] = obj;
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
    return cr_store_purge_matching(store, key_has_prefix, &p, soft);
}

size_t cr_store_purge_if(cr_store_t *store, cr_store_match_fn match, void *ctx, int soft)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return cr_store_purge_matching(store, match, ctx, soft);
}

/* Hard: unlinks the matching objects of the path chain a batch at a time (collected first, then unlinked, since
 * unlinking edits the chain being walked). Soft: marks them under one lock hold per shard (path chains are short). */
size_t cr_store_purge_path(cr_store_t *store, uint64_t path_hash, cr_store_match_fn match, void *ctx, int soft)
{
    cr_store_batch_t batch;
    size_t total = 0, s, i;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(path_hash != 0);
    cr_store_bump_global_epoch(store);
    batch.n = 0;
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_shard_t *shard = &store->shards[s];
        int full;
        do {
            cr_object_t *obj;
            full = 0;
            pthread_mutex_lock(&shard->lock);
            for (obj = shard->path_buckets[path_hash & shard->mask]; obj != NULL; obj = obj->st.path_next) {
                if (obj->path_hash != path_hash || !match(ctx, obj))
                    continue;
                if (soft) {
                    cr_object_invalidate(obj);
                    ++total;
                } else if (batch.n == CR_STORE_BATCH) {
                    full = 1;
                    break;
                } else {
                    batch.objs[batch.n++] = obj;
                }
            }
            for (i = 0; i != batch.n; ++i)
                do_cr_store_unlink(store, shard, batch.objs[i]);
            pthread_mutex_unlock(&shard->lock);
            total += batch.n;
            cr_store_batch_release(&batch);
        } while (full);
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
        for (obj = shard->path_buckets[path_hash & shard->mask]; obj != NULL; obj = obj->st.path_next) {
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

size_t cr_store_collect_tag(cr_store_t *store, const char *tag, size_t taglen, cr_object_t **out, size_t max)
{
    uint64_t hash = cr_hash(tag, taglen);
    size_t n = 0, s;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_shard_t *shard = &store->shards[s];
        cr_store_tag_t *e;
        cr_object_tag_t *m;
        pthread_mutex_lock(&shard->lock);
        e = do_cr_store_tag_find(shard, tag, taglen, hash);
        for (m = e != NULL ? e->members : NULL; m != NULL; m = m->st.next) {
            if (n < max) {
                cr_object_addref(m->owner);
                out[n] = m->owner;
            }
            ++n;
        }
        pthread_mutex_unlock(&shard->lock);
    }
    return n;
}

/* Hard: unlinks the tag's members a batch at a time, looking the entry up again after each lock drop (it is freed
 * with its last member). Soft: marks members a batch at a time too, walking the list again after each lock drop. */
size_t cr_store_purge_tag(cr_store_t *store, const char *tag, size_t taglen, int soft)
{
    uint64_t hash = cr_hash(tag, taglen);
    cr_store_batch_t batch;
    size_t total = 0, s;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(tag != NULL || taglen == 0);
    cr_store_bump_global_epoch(store);
    batch.n = 0;
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_shard_t *shard = &store->shards[s];
        cr_store_tag_t *e;
        do {
            pthread_mutex_lock(&shard->lock);
            e = do_cr_store_tag_find(shard, tag, taglen, hash);
            if (soft) {
                /* at most CR_STORE_BATCH new marks per lock hold, so hits on this shard never wait long; the pass
                 * that marks nothing new has seen every member, and its count is the result */
                cr_object_tag_t *m;
                size_t seen = 0, marked = 0;
                for (m = e != NULL ? e->members : NULL; m != NULL && marked != CR_STORE_BATCH; m = m->st.next) {
                    ++seen;
                    marked += (size_t)cr_object_invalidate(m->owner);
                }
                if (marked != CR_STORE_BATCH || m == NULL) {
                    total += seen;
                    e = NULL;
                }
            } else {
                while (e != NULL && batch.n != CR_STORE_BATCH) {
                    cr_object_t *obj = e->members->owner;
                    if (e->num_members == 1)
                        e = NULL; /* unlinking its last member frees the entry */
                    do_cr_store_unlink(store, shard, obj);
                    batch.objs[batch.n++] = obj;
                }
            }
            pthread_mutex_unlock(&shard->lock);
            total += batch.n;
            cr_store_batch_release(&batch);
        } while (e != NULL); /* the batch filled up with members left */
    }
    return total;
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

size_t cr_store_tag_entries(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->tag_count, __ATOMIC_RELAXED);
}

size_t cr_store_tag_bytes(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->tag_bytes, __ATOMIC_RELAXED);
}
