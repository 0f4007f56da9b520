/*
 * inval_epoch.c: the records of invalidations that fills in flight check before they are stored (see inval_epoch.h
 * for the rule, the two kinds of record and why a collision can only cost a store, never allow a wrong one).
 *
 * Layout. `paths[]` is indexed by a multiplicative hash of the path hash (its top bits); each word is
 * count << 24 | fragment, the fragment taken from other bits of the path hash. `ring[]` holds the coarse records;
 * record s lives in ring[s % CR_INVAL_RING], and `coarse` is the number of the last one published.
 *
 * Concurrency, and why the check cannot miss a covering invalidation noted before it (the store's shard lock orders
 * "noted" before "checked", see inval_epoch.h):
 *  - a path note replaces its slot's word with one compare-and-swap (count + 1, its own fragment); a snapshot and a
 *    check read the word with acquire loads. Two notes of one path cannot look like one note of another: the count
 *    says how many notes came;
 *  - coarse writers are serialized by note_lock. A writer clears the record's seq (0), writes kind/length and hash
 *    with release stores, sets seq to s (release), and only then publishes coarse = s (release). A reader that loaded
 *    coarse >= s (acquire) therefore sees at least that record in slot s % RING. It loads seq (acquire), the fields
 *    (acquire) and seq again: the fields belong to record s only if both loads of seq give s. Anything else (0: being
 *    rewritten; s + k * RING: overwritten) means the record is gone, and the check answers "covered" (the safe side);
 *  - a reader needs records snap+1 .. coarse; if more than RING were published since its snapshot, some are gone:
 *    "covered" at once.
 * No fence instructions are used (ThreadSanitizer does not model them): every access to shared fields is an atomic
 * load or store with the ordering named above.
 */
#include "corral/cache/inval_epoch.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>

#include "corral/http/invalidate.h"

#define CR_INVAL_MAGIC 0x1e90c4a1u

typedef enum en_cr_inval_kind_t {
    CR_INVAL_PATH_PREFIX = 0,
    CR_INVAL_KEY_PREFIX = 1,
    CR_INVAL_TAG = 2,
    CR_INVAL_KEY = 3,
    CR_INVAL_ALL = 4,
} cr_inval_kind_t;

#define CR_INVAL_KIND_BITS 3
#define CR_INVAL_FRAG_BITS 24
#define CR_INVAL_FRAG_MASK ((UINT64_C(1) << CR_INVAL_FRAG_BITS) - 1)

_Static_assert((CR_INVAL_RING & (CR_INVAL_RING - 1)) == 0, "the ring's size is a power of two");

typedef struct st_cr_inval_record_t {
    uint64_t seq;  /* atomic: the record's number, 0 while it is being written */
    uint64_t meta; /* atomic: kind in the low CR_INVAL_KIND_BITS bits, the prefix's, tag's or key's length above */
    uint64_t hash; /* atomic: cr_hash of the prefix or tag */
} cr_inval_record_t;

struct st_cr_inval_t {
    unsigned magic;
    pthread_mutex_t note_lock; /* serializes coarse writers */
    alignas(64) uint64_t coarse; /* atomic: number of the last published coarse record (0: none yet) */
    alignas(64) cr_inval_record_t ring[CR_INVAL_RING];
    uint64_t paths[CR_INVAL_SLOTS]; /* atomic: count << CR_INVAL_FRAG_BITS | fragment of the last path noted */
};

static inline size_t slot_of(uint64_t hash)
{
    return (size_t)((hash * 0x9e3779b97f4a7c15ull) >> (64 - CR_INVAL_SLOT_BITS));
}

/* Bits of the path hash other than those the slot mostly depends on. */
static inline uint64_t frag_of(uint64_t hash)
{
    return (hash ^ (hash >> 29)) & CR_INVAL_FRAG_MASK;
}

cr_inval_t *cr_inval_new(void)
{
    cr_inval_t *inv;

    if ((inv = aligned_alloc(alignof(cr_inval_t), sizeof(*inv))) == NULL) /* sizeof is a multiple of alignof */
        return NULL;
    memset(inv, 0, sizeof(*inv));
    if (pthread_mutex_init(&inv->note_lock, NULL) != 0) {
        free(inv);
        return NULL;
    }
    inv->magic = CR_INVAL_MAGIC;
    return inv;
}

void cr_inval_free(cr_inval_t **inv)
{
    if (*inv == NULL)
        return;
    CR_CHECK_OBJ_NOTNULL(*inv, CR_INVAL_MAGIC);
    pthread_mutex_destroy(&(*inv)->note_lock);
    (*inv)->magic = 0;
    free(*inv);
    *inv = NULL;
}

void cr_inval_snapshot(const cr_inval_t *inv, uint64_t path_hash, cr_inval_snapshot_t *out)
{
    CR_CHECK_OBJ_NOTNULL(inv, CR_INVAL_MAGIC);
    out->path_hash = path_hash;
    out->path = __atomic_load_n(&inv->paths[slot_of(path_hash)], __ATOMIC_ACQUIRE);
    out->coarse = __atomic_load_n(&inv->coarse, __ATOMIC_ACQUIRE);
}

void cr_inval_note_path(cr_inval_t *inv, uint64_t path_hash)
{
    uint64_t *word, old, next;

    CR_CHECK_OBJ_NOTNULL(inv, CR_INVAL_MAGIC);
    word = &inv->paths[slot_of(path_hash)];
    old = __atomic_load_n(word, __ATOMIC_RELAXED);
    do {
        next = (((old >> CR_INVAL_FRAG_BITS) + 1) << CR_INVAL_FRAG_BITS) | frag_of(path_hash); /* the count wraps */
    } while (!__atomic_compare_exchange_n(word, &old, next, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
}

/* May the notes made to the snapshot's path slot since then cover its path? */
static int path_moved(const cr_inval_t *inv, const cr_inval_snapshot_t *snap)
{
    uint64_t now = __atomic_load_n(&inv->paths[slot_of(snap->path_hash)], __ATOMIC_ACQUIRE), notes;

    if (now == snap->path)
        return 0;
    notes = ((now >> CR_INVAL_FRAG_BITS) - (snap->path >> CR_INVAL_FRAG_BITS)) & ((UINT64_C(1) << (64 - CR_INVAL_FRAG_BITS)) - 1);
    /* exactly one note, of a path with another fragment: another path */
    return !(notes == 1 && (now & CR_INVAL_FRAG_MASK) != frag_of(snap->path_hash));
}

/* Publishes one coarse record. */
static void note_coarse(cr_inval_t *inv, cr_inval_kind_t kind, const char *s, size_t len)
{
    uint64_t hash = kind == CR_INVAL_ALL ? 0 : cr_hash(s, len), seq;
    cr_inval_record_t *rec;

    CR_CHECK_OBJ_NOTNULL(inv, CR_INVAL_MAGIC);
    assert(s != NULL || len == 0);
    assert(len < ((uint64_t)1 << (64 - CR_INVAL_KIND_BITS)));
    pthread_mutex_lock(&inv->note_lock);
    seq = __atomic_load_n(&inv->coarse, __ATOMIC_RELAXED) + 1; /* only writers, under note_lock, change it */
    rec = &inv->ring[seq & (CR_INVAL_RING - 1)];
    __atomic_store_n(&rec->seq, 0, __ATOMIC_RELAXED);
    /* release: a reader that sees either new field also sees seq == 0 (or later) on its second load of seq */
    __atomic_store_n(&rec->meta, (uint64_t)kind | ((uint64_t)len << CR_INVAL_KIND_BITS), __ATOMIC_RELEASE);
    __atomic_store_n(&rec->hash, hash, __ATOMIC_RELEASE);
    __atomic_store_n(&rec->seq, seq, __ATOMIC_RELEASE);
    __atomic_store_n(&inv->coarse, seq, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&inv->note_lock);
}

void cr_inval_note_key(cr_inval_t *inv, const char *key, size_t len)
{
    note_coarse(inv, CR_INVAL_KEY, key, len);
}

void cr_inval_note_path_prefix(cr_inval_t *inv, const char *prefix, size_t len)
{
    note_coarse(inv, len != 0 ? CR_INVAL_PATH_PREFIX : CR_INVAL_ALL, prefix, len);
}

void cr_inval_note_key_prefix(cr_inval_t *inv, const char *prefix, size_t len)
{
    note_coarse(inv, len != 0 ? CR_INVAL_KEY_PREFIX : CR_INVAL_ALL, prefix, len);
}

void cr_inval_note_tag(cr_inval_t *inv, const char *tag, size_t len)
{
    note_coarse(inv, CR_INVAL_TAG, tag, len);
}

void cr_inval_note_all(cr_inval_t *inv)
{
    note_coarse(inv, CR_INVAL_ALL, NULL, 0);
}

size_t cr_inval_slot_of(uint64_t path_hash)
{
    return slot_of(path_hash);
}

cr_str_t cr_inval_key_path(cr_str_t key)
{
    cr_str_t path = cr_path_tag(key);
    if (path.len != 0 && path.base[0] == '\n')
        return cr_str(path.base + 1, path.len - 1);
    return path;
}

static int has_prefix_hash(cr_str_t s, size_t len, uint64_t hash)
{
    return s.len >= len && cr_hash(s.base, len) == hash;
}

/* May this record cover obj? (Equal hashes of unequal strings say yes: the safe side.) */
static int record_covers(uint64_t meta, uint64_t hash, const cr_object_t *obj)
{
    size_t len = (size_t)(meta >> CR_INVAL_KIND_BITS), i;

    switch ((cr_inval_kind_t)(meta & ((1u << CR_INVAL_KIND_BITS) - 1))) {
    case CR_INVAL_PATH_PREFIX:
        return has_prefix_hash(cr_inval_key_path(cr_object_key(obj)), len, hash);
    case CR_INVAL_KEY_PREFIX:
        return has_prefix_hash(cr_object_key(obj), len, hash);
    case CR_INVAL_TAG:
        for (i = 0; i != obj->num_tags; ++i)
            if (obj->tags[i].hash == hash && obj->tags[i].name.len == len)
                return 1;
        return 0;
    case CR_INVAL_KEY:
        return obj->hash == hash && obj->key_len == len;
    case CR_INVAL_ALL:
        break;
    }
    return 1;
}

int cr_inval_covers(const cr_inval_t *inv, const cr_inval_snapshot_t *snap, const cr_object_t *obj)
{
    uint64_t last, s;

    CR_CHECK_OBJ_NOTNULL(inv, CR_INVAL_MAGIC);
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(obj->path_hash == snap->path_hash);
    if (path_moved(inv, snap))
        return 1;
    last = __atomic_load_n(&inv->coarse, __ATOMIC_ACQUIRE);
    assert(last >= snap->coarse);
    if (last - snap->coarse > CR_INVAL_RING)
        return 1; /* records after the snapshot were overwritten */
    for (s = snap->coarse + 1; s <= last; ++s) {
        const cr_inval_record_t *rec = &inv->ring[s & (CR_INVAL_RING - 1)];
        uint64_t meta, hash;
        if (__atomic_load_n(&rec->seq, __ATOMIC_ACQUIRE) != s)
            return 1;
        meta = __atomic_load_n(&rec->meta, __ATOMIC_ACQUIRE);
        hash = __atomic_load_n(&rec->hash, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&rec->seq, __ATOMIC_RELAXED) != s)
            return 1; /* being rewritten: the fields may not be record s's */
        if (record_covers(meta, hash, obj))
            return 1;
    }
    return 0;
}
