/*
 * store_internal.h: the store's private types and internal interface, shared by store.c (lifecycle, lookups, inserts,
 * statistics), store_purge.c (removals and purges), store_evict.c (eviction), store_table.c (key table, path index,
 * linking), store_tags.c (the tag index) and store_retire.c (retire lists). Nothing outside those files includes it.
 * The invariants and locking rules are in store.c's top comment; a function named do_*() expects the caller to hold
 * the shard's lock.
 */
#ifndef CORRAL_STORE_INTERNAL_H
#define CORRAL_STORE_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>

#include "corral/cache/inval_epoch.h"
#include "corral/cache/store.h"

#define CR_STORE_MAGIC 0x57013e11u
#define CR_STORE_SHARD_BITS 6
#define CR_STORE_SHARDS (1u << CR_STORE_SHARD_BITS)
#define CR_STORE_INITIAL_SLOTS 16
#define CR_STORE_INITIAL_TAG_BUCKETS 16
/* Tagged table words. */
#define CR_STORE_SLOT_EMPTY ((uintptr_t)0)
#define CR_STORE_SLOT_TOMB ((uintptr_t)1)
#define CR_STORE_PTR_MASK ((((uintptr_t)1) << 48) - 1)
/* Eviction picks the oldest of this many unreferenced objects the CLOCK hand passes (sampled LRU within CLOCK). */
#define CR_STORE_EVICT_SAMPLE 8
/* A lookup runs cr_store_reclaim() (if anything waits) once every this many lookups on its thread. */
#define CR_STORE_RECLAIM_EVERY 64

_Static_assert(sizeof(uintptr_t) == 8, "the key table packs a 16-bit fingerprint above 48-bit pointers");

/* The key table: its slots, and its link on the retire list once replaced. */
typedef struct st_cr_store_table_t {
    struct st_cr_store_table_t *retired_next;
    size_t mask; /* slots - 1 */
    uintptr_t slots[];
} cr_store_table_t;

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
    cr_store_table_t *table; /* atomic: lookups load it without the lock */
    size_t used;             /* non-empty slots of table (live + tombstones) */
    size_t hand;             /* CLOCK hand: the next slot examined for eviction */
    cr_object_t **path_buckets; /* the path index: objects with path_hash != 0, chained through st.path_next */
    size_t path_mask;
    size_t path_count;
    size_t count;
    size_t bytes;       /* objects' costs plus tag entries' charges plus index_bytes */
    size_t index_bytes; /* slots of the key table and path buckets beyond the initial ones, 8 bytes each */
    cr_store_tag_t **tag_buckets;
    size_t tag_mask;
    size_t tag_count;
    size_t tag_bytes;
    uint64_t link_seq; /* objects linked so far: the next one's st.seq */
} cr_store_shard_t;

/* Objects and tables on their way out: what one critical section unlinked or replaced (retired once the lock is
 * dropped), and the store's retire lists (store_retire.c). */
typedef struct st_cr_store_leaving_t {
    cr_object_t *objs; /* chained through st.path_next */
    cr_store_table_t *tables;
    size_t num_objs;
} cr_store_leaving_t;

struct st_cr_store_t {
    unsigned magic;
    size_t limit;
    size_t bytes;       /* atomic */
    size_t count;       /* atomic */
    size_t tag_count;   /* atomic */
    size_t tag_bytes;   /* atomic */
    size_t index_bytes; /* atomic */
    size_t retired;     /* atomic: objects on the retire lists */
    uint64_t evictions; /* atomic */
    size_t variants_per_key;    /* at most this many linked variants under one primary key (>= 1) */
    uint64_t variant_evictions; /* atomic: variants unlinked to keep their key under variants_per_key */
    cr_inval_t *inval;  /* what purges noted, for fills in flight (inval_epoch.h) */
    unsigned cursor;    /* atomic: round-robin eviction shard */
    pthread_mutex_t retire_lock;
    cr_store_leaving_t fresh, waiting; /* under retire_lock (store_retire.c) */
    uint64_t waiting_epoch;
    cr_store_shard_t shards[CR_STORE_SHARDS];
};

static inline cr_store_shard_t *cr_store_shard(cr_store_t *store, uint64_t hash)
{
    return &store->shards[hash >> (64 - CR_STORE_SHARD_BITS)];
}

static inline uintptr_t cr_store_fingerprint(uint64_t hash)
{
    return (uintptr_t)((hash >> 40) & 0xffff) << 48;
}

static inline uintptr_t cr_store_slot_word(const cr_object_t *obj)
{
    return cr_store_fingerprint(obj->hash) | (uintptr_t)obj;
}

static inline cr_object_t *cr_store_slot_object(uintptr_t word)
{
    return (cr_object_t *)(word & CR_STORE_PTR_MASK);
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

static inline unsigned cr_store_linked_state(const cr_object_t *obj)
{
    return __atomic_load_n(&obj->st_linked, __ATOMIC_RELAXED);
}

/* Bytes charged for a shard's tables (key table, path and tag buckets): whatever they have grown beyond their initial
 * size. The shard's lock is held. */
static inline void do_cr_store_recharge_index(cr_store_t *store, cr_store_shard_t *shard)
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

/* Under the shard lock: the next object of the key in t's probe run from slot *i on (start at hash & t->mask), its
 * slot left in *i (step past it with *i = (*i + 1) & t->mask), or NULL at the end of the run. */
static inline cr_object_t *do_cr_store_next_of_key(const cr_store_table_t *t, size_t *i, const char *key, size_t keylen, uint64_t hash)
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

/* store_table.c */
cr_store_table_t *cr_store_table_new(size_t slots);
int do_cr_store_reserve(cr_store_t *store, cr_store_shard_t *shard, cr_store_leaving_t *leaving);
void do_cr_store_maybe_shrink(cr_store_t *store, cr_store_shard_t *shard, cr_store_leaving_t *leaving);
void do_cr_store_link(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj, size_t i);
void do_cr_store_unlink_at(cr_store_t *store, cr_store_shard_t *shard, size_t i, int tombstone, cr_store_leaving_t *leaving);
void do_cr_store_unlink(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj, cr_store_leaving_t *leaving);

/* store_evict.c (no lock held) */
void cr_store_evict(cr_store_t *store, const cr_object_t *spare);

/* store_tags.c */
cr_store_tag_t *do_cr_store_tag_find(cr_store_shard_t *shard, const char *name, size_t len, uint64_t hash);
int do_cr_store_tags_prepare(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj);
void do_cr_store_tags_link(cr_object_t *obj);
void do_cr_store_tags_unlink(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj);

/* store_retire.c */
void cr_store_retire(cr_store_t *store, cr_store_leaving_t *leaving);
void cr_store_reclaim_from_lookup(cr_store_t *store);

#endif
