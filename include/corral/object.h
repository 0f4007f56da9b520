/*
 * object.h: one cached response, immutable once finished, shared across threads by an atomic refcount.
 *
 * Life cycle: cr_object_new() -> cr_object_add_header()* -> cr_object_set_vary()? -> cr_object_set_tags()? ->
 * cr_object_set_body() -> cr_object_finish(). After finish nothing in the object changes except the refcount, the
 * CR_OBJ_INVALIDATED bit of `flags` and the store's private fields (`st` and each tag's `st`, which only the store
 * touches, under its shard lock), so any thread holding a reference may read the rest without locks. The creator
 * holds the first reference; cr_object_release(&obj) drops one and frees on the last. The store holds one reference
 * for as long as the object is linked.
 *
 * Flags and threads: before the object is shared, its creator may set any flag with plain writes. Once it is shared
 * (inserted into the store, or handed to another thread), the only flag that still changes is CR_OBJ_INVALIDATED,
 * which a soft purge sets with an atomic OR (cr_object_invalidate) from whatever thread purges; every read of
 * `flags` on a shared object must therefore be atomic too: use cr_object_flags() (a relaxed atomic load), never
 * `obj->flags` directly. Relaxed is enough: the bit guards no other data, and a thread that looks the object up
 * after the purge returned sees it through the store's shard lock.
 */
#ifndef CORRAL_OBJECT_H
#define CORRAL_OBJECT_H

#include "corral/common.h"

#define CR_OBJECT_MAGIC 0x0b1ec7a1u

enum {
    CR_OBJ_FORCED = 1u << 0,          /* force_ttl applied: send route's force_cache_control downstream */
    CR_OBJ_MUST_REVALIDATE = 1u << 1, /* never serve stale */
    CR_OBJ_NO_CACHE = 1u << 2,        /* stored, but every use must be revalidated */
    CR_OBJ_PASS = 1u << 3,            /* hit-for-pass marker: no response, requests go straight upstream */
    CR_OBJ_ENCODED = 1u << 5,         /* no identity body: the object holds only the upstream's own coding (gzip or br) */
    CR_OBJ_INVALIDATED = 1u << 4,     /* soft-purged: treat as stale; set atomically on shared objects (see above) */
};

/* Body encodings an object may hold (issue 4 fills the non-identity ones). */
typedef enum en_cr_encoding_t {
    CR_ENC_IDENTITY = 0,
    CR_ENC_GZIP,
    CR_ENC_BR,
    CR_ENC_MAX,
} cr_encoding_t;

typedef struct st_cr_object_header_t {
    cr_str_t name;     /* lower-case */
    cr_str_t value;
    const void *token; /* opaque, set by the creator (the handler stores h2o's token pointer); may be NULL */
} cr_object_header_t;

typedef struct st_cr_object_t cr_object_t;
struct st_cr_store_tag_t; /* store.c's tag index entry, opaque here */

/*
 * One surrogate key (tag) of an object, and the object's membership in the store's tag index. `name`, `hash` and
 * `owner` are set by cr_object_set_tags() and never change; `st` is store-private (touched only by store.c under the
 * owning shard's lock). The memberships are part of the object's allocation and cost, so the store never allocates
 * per object to index tags.
 */
typedef struct st_cr_object_tag_t {
    cr_str_t name;      /* owned, NUL-terminated, exact bytes (tags are case-sensitive) */
    uint64_t hash;      /* cr_hash(name) */
    cr_object_t *owner; /* the object this tag belongs to */
    struct {
        struct st_cr_store_tag_t *entry;         /* the index entry this membership hangs on, NULL when unlinked */
        struct st_cr_object_tag_t *prev, *next; /* the entry's member list */
    } st;
} cr_object_tag_t;

struct st_cr_object_t {
    unsigned magic;
    uint32_t refcnt; /* atomic (__atomic builtins) */
    unsigned flags;  /* CR_OBJ_*; once shared, read with cr_object_flags() only (CR_OBJ_INVALIDATED is set atomically) */
    int status;

    /* identity */
    cr_str_t key; /* primary key, owned */
    uint64_t hash; /* cr_hash(key) */
    uint64_t path_hash; /* set by the creator before insert: indexes the object by path in the store; 0 = not indexed */
    cr_str_t variant_key; /* "name:value\n" per Vary'd request header, in vary_names order; empty when no Vary */
    cr_str_t *vary_names; /* lower-case header names from the response's Vary, owned */
    cr_object_tag_t *tags; /* surrogate keys, owned, distinct, none empty; NULL when num_tags == 0 */
    cr_object_header_t *headers; /* as received from upstream, hop-by-hop headers already removed, owned */
    uint32_t num_vary;
    uint32_t num_tags;
    uint32_t num_headers;

    /* freshness windows, ms (clamped to 49 days) */
    uint32_t swr_ms;
    uint32_t sie_ms;

    /* store-private (packed here, beside the windows), atomic: st_referenced is set by lock-free lookups and cleared
     * by the CLOCK hand; st_linked is 0 (not in a store), 1 (linked) or 2 (unlinked, the store's reference waiting for
     * lock-free readers to leave) */
    uint8_t st_referenced;
    uint8_t st_linked;

    /* response */
    cr_str_t bodies[CR_ENC_MAX]; /* bodies[CR_ENC_IDENTITY] always set (may be empty); others base == NULL if absent */
    cr_str_t etag;          /* points into headers, or {NULL,0} */
    uint64_t last_modified_ms; /* parsed, 0 if absent */

    /* freshness, ms */
    uint64_t response_time_ms;
    uint64_t initial_age_ms;
    uint64_t lifetime_ms;

    size_t cost; /* bytes charged to the store: the object, key, headers, Vary block, tags (with their index
                  * memberships), bodies; fixed at finish */

    /* store-private: touched only by store.c under the owning shard's lock (or, once unlinked, its retire lock) */
    struct {
        cr_object_t *path_next; /* chain in the path index's bucket while linked; the store's retire list after */
    } st;
};

/* Creates an unfinished object with one reference. key is copied. Returns NULL on allocation failure. */
cr_object_t *cr_object_new(const char *key, size_t keylen, int status);
/* Copies a header (name lower-cased). Returns CR_OK or CR_ERROR (allocation). Not allowed after finish. */
int cr_object_add_header(cr_object_t *obj, const char *name, size_t namelen, const char *value, size_t valuelen, const void *token);
/* Copies the Vary names and the request's variant key. */
int cr_object_set_vary(cr_object_t *obj, const cr_str_t *names, size_t num_names, const char *variant_key, size_t variant_keylen);
/*
 * Copies the object's surrogate keys (tags), replacing any set before. Empty tags are skipped and duplicates kept
 * once, so num_tags may end up smaller than n. Not allowed after finish. Returns CR_OK, or CR_ERROR on allocation
 * failure or overflow (the object keeps its previous tags).
 */
int cr_object_set_tags(cr_object_t *obj, const cr_str_t *tags, size_t n);
/* Takes ownership of a malloc'ed body for the given encoding (base may be NULL when len is 0 for identity). */
void cr_object_set_body(cr_object_t *obj, cr_encoding_t enc, char *base, size_t len);
/* Computes cost, etag and last_modified pointers; after this the object is immutable. */
void cr_object_finish(cr_object_t *obj);

/* Finds a header by lower-case name; returns the first value or {NULL,0}. */
cr_str_t cr_object_find_header(const cr_object_t *obj, const char *lname, size_t lnamelen);

/* The primary key and the variant key (read through these: the fields behind them may change layout). */
static inline cr_str_t cr_object_key(const cr_object_t *obj)
{
    return obj->key;
}
static inline cr_str_t cr_object_variant_key(const cr_object_t *obj)
{
    return obj->variant_key;
}

/* Current age (RFC 9111 4.2.3) at `now`. */
static inline uint64_t cr_object_age_ms(const cr_object_t *obj, uint64_t now)
{
    uint64_t resident = now > obj->response_time_ms ? now - obj->response_time_ms : 0;
    return obj->initial_age_ms + resident;
}
/* The object's flags, safe on a shared object while another thread soft-purges it (relaxed atomic load). */
static inline unsigned cr_object_flags(const cr_object_t *obj)
{
    return __atomic_load_n(&obj->flags, __ATOMIC_RELAXED);
}
/* Marks the object invalidated (soft purge: stale from now on), atomically. Returns 1 if this call set the bit, 0 if
 * it was already set. Any thread holding a reference may call it; the store calls it under the shard lock. */
static inline int cr_object_invalidate(cr_object_t *obj)
{
    return (__atomic_fetch_or(&obj->flags, (unsigned)CR_OBJ_INVALIDATED, __ATOMIC_RELAXED) & CR_OBJ_INVALIDATED) == 0;
}
static inline int cr_object_is_fresh(const cr_object_t *obj, uint64_t now)
{
    return (cr_object_flags(obj) & (CR_OBJ_NO_CACHE | CR_OBJ_INVALIDATED)) == 0 && cr_object_age_ms(obj, now) < obj->lifetime_ms;
}

/* Takes another reference (atomic). */
void cr_object_addref(cr_object_t *obj);
/* Drops one reference and sets *objp to NULL; frees on the last one. Accepts *objp == NULL. */
void cr_object_release(cr_object_t **objp);

#endif
