/*
 * object.h: one cached response, immutable once finished, shared across threads by an atomic refcount.
 *
 * Life cycle: cr_object_new() -> cr_object_add_header()* -> cr_object_set_vary()? -> cr_object_set_tags()? ->
 * cr_object_set_body()* -> obj = cr_object_finish(obj). Finish lays the object out in one block and may therefore
 * move it: it returns the object to use from then on (the old pointer is dead). After finish nothing in the object
 * changes except the refcount, the CR_OBJ_INVALIDATED bit of `flags` and the store's private fields (`st`,
 * `st_referenced`, `st_linked` and each tag's `st`, which only the store touches; see store.c), so any thread
 * holding a reference may read the rest without locks. The creator holds the first reference (and, until finish,
 * the only one); cr_object_release(&obj) drops one and frees on the last. The store holds one reference for as long
 * as the object is linked.
 *
 * Reading: the key, the headers, the Vary names, the variant key, the ETag and the bodies are read through the
 * accessors below (cr_object_key(), cr_object_header_name() ...), never by address arithmetic of one's own: where
 * they live depends on the layout (see object.c). Strings they return are NUL-terminated and stay valid for as long
 * as the caller holds a reference to a finished object; on an unfinished one, until the next builder call.
 *
 * Flags and threads: before the object is shared, its creator may set any flag with plain writes. Once it is shared
 * (inserted into the store, or handed to another thread), the only flags that still change are CR_OBJ_INVALIDATED,
 * which a soft purge sets with an atomic OR (cr_object_invalidate) from whatever thread purges, and
 * CR_OBJ_CODINGS_PENDING, which its flight clears with an atomic AND (cr_object_codings_done); every read of
 * `flags` on a shared object must therefore be atomic too: use cr_object_flags() (a relaxed atomic load), never
 * `obj->flags` directly. Relaxed is enough: the bit guards no other data, and a thread that looks the object up
 * after the purge returned reads it after the store's own synchronisation (a lookup's read section, see ebr.h).
 *
 * Freshness fields are milliseconds. lifetime_ms and initial_age_ms are clamped to UINT32_MAX (49.7 days) by whoever
 * sets them: a longer lifetime makes the object stale earlier than the origin allowed (RFC 9111 4.2.1 lets a cache
 * do that), and as both saturate alike an object that is stale is never taken for fresh.
 */
#ifndef CORRAL_OBJECT_H
#define CORRAL_OBJECT_H

#include "corral/core/common.h"

#define CR_OBJECT_MAGIC 0x0b1ec7a1u

enum {
    CR_OBJ_FORCED = 1u << 0,          /* force_ttl applied: send route's force_cache_control downstream */
    CR_OBJ_MUST_REVALIDATE = 1u << 1, /* never serve stale */
    CR_OBJ_NO_CACHE = 1u << 2,        /* stored, but every use must be revalidated */
    CR_OBJ_PASS = 1u << 3,            /* hit-for-pass marker: no response, requests go straight upstream */
    CR_OBJ_ENCODED = 1u << 5,         /* no identity body: the object holds only the upstream's own coding (gzip or br) */
    CR_OBJ_INVALIDATED = 1u << 4,     /* soft-purged: treat as stale; set atomically on shared objects (see above) */
    CR_OBJ_CODINGS_PENDING = 1u << 6, /* stored before its gzip/br were made (a miss answered first): a request that
                                       * finds it waits for the copy with the codings; cleared atomically if it stays */
    CR_OBJ_SHAREABLE = 1u << 7,       /* the response said public or s-maxage: it may answer requests with Cookie */
    CR_OBJ_KEEP_CODING = 1u << 8,     /* with CR_OBJ_ENCODED: not decodable within cache.max_object_size (a bomb) or
                                       * CR_DECODER_MEMORY, or corrupt: sent in its stored coding to every client */
};

/* Limits of what an object holds; the builder functions fail (CR_ERROR) beyond them. */
#define CR_OBJECT_MAX_HEADERS UINT16_MAX    /* headers per object */
#define CR_OBJECT_MAX_NAME 0xffffffu        /* bytes of one header name */
#define CR_OBJECT_MAX_HEADER_BYTES UINT32_MAX /* all header names and values, with a NUL after each */
#define CR_OBJECT_MAX_TOKEN 255u            /* header token (opaque to the object; 0 = none) */
#define CR_OBJECT_MAX_VARY UINT8_MAX        /* Vary names */
#define CR_OBJECT_MAX_KEY UINT32_MAX        /* bytes of the primary key */

/*
 * One entry of the header index (internal: read headers through the accessors). The header's name starts `off` bytes
 * into the header strings and is followed by its NUL, its value and the value's NUL; the next header's name (or the
 * end of the strings, `header_bytes`) follows, which is how the value's length is known.
 */
typedef struct st_cr_object_hdr_t {
    uint32_t off;
    uint32_t len_token; /* name length (low 24 bits) | token << 24 */
} cr_object_hdr_t;

typedef struct st_cr_object_t cr_object_t;
struct st_cr_store_tag_t; /* store.c's tag index entry, opaque here */

/*
 * One surrogate key (tag) of an object, and the object's membership in the store's tag index. `name`, `hash` and
 * `owner` are set by cr_object_set_tags() (owner again by finish, which may move the object) and never change
 * afterwards; `st` is store-private (touched only by store.c under the owning shard's lock). The memberships are part
 * of the object's allocation and cost, so the store never allocates per object to index tags.
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
    /* first cache line: everything a lookup and a freshness check read (the key bytes follow the struct) */
    unsigned magic;
    uint32_t refcnt;      /* atomic (__atomic builtins) */
    uint16_t flags;       /* CR_OBJ_*; once shared, read with cr_object_flags() only (CR_OBJ_INVALIDATED is set atomically) */
    uint16_t status;
    uint16_t num_headers; /* as received from upstream, hop-by-hop headers already removed */
    uint16_t etag;        /* 1 + index of the first ETag header, 0 when there is none: read with cr_object_etag() */
    uint64_t hash;        /* cr_hash(key) */
    uint32_t key_len;     /* the key follows the struct (see object.c) */
    /* store-private, atomic: st_referenced is set by lock-free lookups and cleared by the CLOCK hand; st_linked is 0
     * (not in a store), 1 (linked) or 2 (unlinked, the store's reference waiting for lock-free readers to leave) */
    uint8_t st_referenced;
    uint8_t st_linked;
    uint8_t num_vary;
    uint8_t body_bits; /* packed layout: bit e set when the block's body table holds encoding e; 0 in the loose layout */
    /* freshness, ms (see the top comment for the clamps) */
    uint64_t response_time_ms;
    uint32_t initial_age_ms;
    uint32_t lifetime_ms;
    uint32_t swr_ms;
    uint32_t sie_ms;
    uint64_t path_hash; /* set by the creator before insert: indexes the object by path in the store; 0 = not indexed */

    size_t cost; /* bytes charged to the store: every byte the object allocated (its block or blocks, bodies
                  * included; malloc's own chunk headers not); 0 until finish, then fixed */
    cr_object_tag_t *tags; /* surrogate keys, owned, distinct, none empty; NULL when num_tags == 0 */
    uint32_t header_bytes; /* header names and values, a NUL after each */
    uint32_t num_tags;

    /* store-private: touched only by store.c under the owning shard's lock (or, once unlinked, its retire lock) */
    struct {
        cr_object_t *path_next; /* chain in the path index's bucket while linked; the store's retire list after */
        uint64_t seq;           /* when it was linked: its shard's link counter (the oldest variant of a key goes first) */
    } st;
};

/* Creates an unfinished object with one reference. key is copied. Returns NULL on allocation failure or when keylen
 * exceeds CR_OBJECT_MAX_KEY. status is 0..999. */
cr_object_t *cr_object_new(const char *key, size_t keylen, int status);
/* Copies a header (name lower-cased). `token` is an opaque small integer kept with it (0..CR_OBJECT_MAX_TOKEN; the
 * handler stores h2o's token index, 0 for none). Returns CR_OK, or CR_ERROR (allocation, or a limit above exceeded;
 * the object is then unchanged). Not allowed after finish. */
int cr_object_add_header(cr_object_t *obj, const char *name, size_t namelen, const char *value, size_t valuelen, unsigned token);
/* Copies the Vary names (lower-cased) and the request's variant key, replacing any set before; num_names == 0 clears
 * them (variant_keylen must then be 0). Returns CR_OK, or CR_ERROR (allocation, more than CR_OBJECT_MAX_VARY names,
 * a variant key without names; the object keeps its previous Vary). Not allowed after finish. */
int cr_object_set_vary(cr_object_t *obj, const cr_str_t *names, size_t num_names, const char *variant_key, size_t variant_keylen);
/*
 * Copies the object's surrogate keys (tags), replacing any set before. Empty tags are skipped and duplicates kept
 * once, so num_tags may end up smaller than n. Not allowed after finish. Returns CR_OK, or CR_ERROR on allocation
 * failure or overflow (the object keeps its previous tags).
 */
int cr_object_set_tags(cr_object_t *obj, const cr_str_t *tags, size_t n);
/* Takes ownership of a malloc'ed body for the given encoding (base may be NULL when len is 0 for identity), freeing
 * one set before. Not allowed after finish. */
void cr_object_set_body(cr_object_t *obj, cr_encoding_t enc, char *base, size_t len);
/*
 * Finishes the object: lays it out in one exact-size block (the packed layout), sets `cost`, and returns the object
 * to use from now on; `obj` itself is freed when the object moved, so use only the returned pointer. The creator must
 * hold the only reference. Never fails: when the block cannot be allocated, the object stays where it is in the loose
 * layout (valid and complete, just in several allocations, all counted in `cost`) and `obj` is returned.
 */
__attribute__((warn_unused_result)) cr_object_t *cr_object_finish(cr_object_t *obj);

/* Finds a header by lower-case name; returns the first value or {NULL,0}. */
cr_str_t cr_object_find_header(const cr_object_t *obj, const char *lname, size_t lnamelen);

/* ---- accessors (inline: the packed layout is read here, the loose one through object.c) ---- */

/* The parts of the header index: the entries and the strings their offsets point into. */
typedef struct st_cr_object_header_index_t {
    const cr_object_hdr_t *entries;
    const char *strings;
} cr_object_header_index_t;

cr_object_header_index_t cr_object__loose_header_index(const cr_object_t *obj);
const cr_str_t *cr_object__loose_vary(const cr_object_t *obj);
cr_str_t cr_object__loose_body(const cr_object_t *obj, cr_encoding_t enc);

/* Is the object in the packed layout (one block, what a successful finish makes)? */
static inline int cr_object_is_packed(const cr_object_t *obj)
{
    return obj->body_bits != 0;
}
/* How many of the CR_ENC_MAX body bits are set (inline: __builtin_popcount is a libgcc call without -mpopcnt, and
 * this runs on every hit). */
_Static_assert(CR_ENC_MAX == 3, "cr_object__bits counts three bits");
static inline unsigned cr_object__bits(unsigned b)
{
    return (b & 1u) + ((b >> 1) & 1u) + ((b >> 2) & 1u);
}
/* Bytes of the packed block's body table (0 in the loose layout). */
static inline size_t cr_object__body_table_bytes(const cr_object_t *obj)
{
    return (size_t)cr_object__bits(obj->body_bits) * sizeof(cr_str_t);
}
/* Offset from the object of the packed block's body table: after the key and its NUL, aligned for pointers. */
static inline size_t cr_object__body_table_offset(const cr_object_t *obj)
{
    size_t off = sizeof(cr_object_t) + obj->key_len + 1;
    return (off + (_Alignof(cr_str_t) - 1)) & ~(size_t)(_Alignof(cr_str_t) - 1);
}
/* Offset from the object of the header index in the packed layout: after the body table. */
static inline size_t cr_object__index_offset(const cr_object_t *obj)
{
    size_t off = cr_object__body_table_offset(obj) + cr_object__body_table_bytes(obj);
    return (off + (_Alignof(cr_object_hdr_t) - 1)) & ~(size_t)(_Alignof(cr_object_hdr_t) - 1);
}
/* Offset from the object of the Vary table in the packed layout: after the header strings, aligned for pointers. */
static inline size_t cr_object__vary_offset(const cr_object_t *obj)
{
    size_t off = cr_object__index_offset(obj) + obj->num_headers * sizeof(cr_object_hdr_t) + obj->header_bytes;
    return (off + (_Alignof(cr_str_t) - 1)) & ~(size_t)(_Alignof(cr_str_t) - 1);
}
static inline cr_object_header_index_t cr_object__header_index(const cr_object_t *obj)
{
    cr_object_header_index_t ix;
    if (!cr_object_is_packed(obj))
        return cr_object__loose_header_index(obj);
    ix.entries = (const cr_object_hdr_t *)(const void *)((const char *)obj + cr_object__index_offset(obj));
    ix.strings = (const char *)(ix.entries + obj->num_headers);
    return ix;
}
/* The Vary table: num_vary names then the variant key; only when num_vary != 0. */
static inline const cr_str_t *cr_object__vary(const cr_object_t *obj)
{
    if (!cr_object_is_packed(obj))
        return cr_object__loose_vary(obj);
    return (const cr_str_t *)(const void *)((const char *)obj + cr_object__vary_offset(obj));
}

/* The primary key (NUL-terminated). The key lies right after the struct in both layouts, at an address a lookup
 * knows before it reads the object, so the key and the struct's first line are fetched at once. */
static inline cr_str_t cr_object_key(const cr_object_t *obj)
{
    return cr_str((const char *)(obj + 1), obj->key_len);
}
/* "name:value\n" per Vary'd request header, in the order of cr_object_vary_names(); empty ("") when no Vary. */
static inline cr_str_t cr_object_variant_key(const cr_object_t *obj)
{
    return obj->num_vary != 0 ? cr_object__vary(obj)[obj->num_vary] : cr_str("", 0);
}
/* The lower-case header names from the response's Vary (num_vary of them), or NULL when num_vary == 0. */
static inline const cr_str_t *cr_object_vary_names(const cr_object_t *obj)
{
    return obj->num_vary != 0 ? cr_object__vary(obj) : NULL;
}

/* Header i (< num_headers), in the order added: its lower-case name, its value, its token (0 = none). */
static inline cr_str_t cr_object_header_name(const cr_object_t *obj, size_t i)
{
    cr_object_header_index_t ix = cr_object__header_index(obj);
    assert(i < obj->num_headers);
    return cr_str(ix.strings + ix.entries[i].off, ix.entries[i].len_token & CR_OBJECT_MAX_NAME);
}
static inline cr_str_t cr_object_header_value(const cr_object_t *obj, size_t i)
{
    cr_object_header_index_t ix = cr_object__header_index(obj);
    uint32_t start, end;
    assert(i < obj->num_headers);
    start = ix.entries[i].off + (ix.entries[i].len_token & CR_OBJECT_MAX_NAME) + 1;
    end = i + 1 < obj->num_headers ? ix.entries[i + 1].off : obj->header_bytes; /* past the value's NUL */
    return cr_str(ix.strings + start, end - start - 1);
}
static inline unsigned cr_object_header_token(const cr_object_t *obj, size_t i)
{
    cr_object_header_index_t ix = cr_object__header_index(obj);
    assert(i < obj->num_headers);
    return ix.entries[i].len_token >> 24;
}
/* The value of the first ETag header, or {NULL,0}. */
static inline cr_str_t cr_object_etag(const cr_object_t *obj)
{
    return obj->etag != 0 ? cr_object_header_value(obj, obj->etag - 1u) : cr_str(NULL, 0);
}
/* The body held in encoding `enc`, or {NULL,0} when absent. A finished object always has an identity body (maybe
 * empty, never NULL); before finish, an identity body not set yet reads as absent. */
static inline cr_str_t cr_object_body(const cr_object_t *obj, cr_encoding_t enc)
{
    unsigned bit = 1u << enc;
    if (!cr_object_is_packed(obj))
        return cr_object__loose_body(obj, enc);
    if ((obj->body_bits & bit) == 0)
        return cr_str(NULL, 0);
    return ((const cr_str_t *)(const void *)((const char *)obj + cr_object__body_table_offset(obj)))
        [cr_object__bits(obj->body_bits & (bit - 1))];
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
    return (__atomic_fetch_or(&obj->flags, (uint16_t)CR_OBJ_INVALIDATED, __ATOMIC_RELAXED) & CR_OBJ_INVALIDATED) == 0;
}
/* Clears CR_OBJ_CODINGS_PENDING, atomically (the object stays stored without codings). */
static inline void cr_object_codings_done(cr_object_t *obj)
{
    __atomic_fetch_and(&obj->flags, (uint16_t)~CR_OBJ_CODINGS_PENDING, __ATOMIC_RELAXED);
}
/* May the object be served stale without a revalidation (stale-while-revalidate, an unreachable origin, a rate
 * limit's serve_stale)? Not when it was stored with no-cache, or with must-revalidate / proxy-revalidate / s-maxage
 * (CR_OBJ_MUST_REVALIDATE). stale-if-error's own rule is only the latter (fill/fill.h). */
static inline int cr_object_may_serve_stale(const cr_object_t *obj)
{
    return (cr_object_flags(obj) & (CR_OBJ_MUST_REVALIDATE | CR_OBJ_NO_CACHE)) == 0;
}
static inline int cr_object_is_fresh(const cr_object_t *obj, uint64_t now)
{
    return (cr_object_flags(obj) & (CR_OBJ_NO_CACHE | CR_OBJ_INVALIDATED)) == 0 && cr_object_age_ms(obj, now) < obj->lifetime_ms;
}
/* A freshness value in ms clamped to what the object keeps (see the top comment). */
static inline uint32_t cr_object_clamp_ms(uint64_t ms)
{
    return ms < UINT32_MAX ? (uint32_t)ms : UINT32_MAX;
}

/* Takes another reference (atomic). */
void cr_object_addref(cr_object_t *obj);
/* Drops one reference and sets *objp to NULL; frees on the last one. Accepts *objp == NULL. */
void cr_object_release(cr_object_t **objp);

#endif
