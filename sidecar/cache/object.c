/*
 * object.c: building, packing, measuring and refcounting cached responses (cr_object_t).
 *
 * Two layouts; every accessor in object.h reads both (cr_object_is_packed() tells them apart: body_bits != 0).
 *
 * Loose layout, while building. One allocation holds a cr_object_builder_t, then the cr_object_t, then the key and
 * its NUL (cr_object_loose_t); the builder is found from the object by its fixed offset. The builder owns growable
 * parts: the header index (cr_object_hdr_t entries) and the header strings (each name and value NUL-terminated,
 * addressed by offset, so growing them moves nothing the object records), the Vary table (cr_str_t per name, then
 * the variant key, then their strings, in one block), the bodies; obj->tags points to the tag block
 * (cr_object_tag_t array, which doubles as the object's memberships in the store's tag index, then the names).
 *
 * Packed layout, what cr_object_finish() makes: one exact-size block, in this order (object.h's inline accessors
 * compute every position from the struct's counts and sizes, so the struct keeps no pointer into its own block):
 *     cr_object_t
 *     key, NUL        right after the struct, as in the loose layout (a lookup compares it at a fixed address)
 *     (pad to 8)      body table: cr_str_t per encoding present, in encoding order (bit e of body_bits: encoding e)
 *     (pad to 4)      header index: num_headers cr_object_hdr_t
 *                     header strings: header_bytes bytes
 *     (pad to 8)      only when there is a Vary or a tag: the Vary table (num_vary + 1 cr_str_t, the last one the
 *                     variant key), the tags (num_tags cr_object_tag_t), then the Vary names, the variant key and
 *                     the tag names, each NUL-terminated
 * Bodies stay separate malloc'ed buffers owned by the object (the table points at them); an empty identity body
 * points at a static "" never freed. Packing copies everything but the bodies into the new block and frees the loose
 * allocations; the object moves (finish returns it) and its tags' `owner` follow. When the block cannot be allocated,
 * the object stays loose for good: valid, complete, and counted exactly as it is.
 *
 * Invariants:
 *  - `cost` is 0 until finish, then the bytes the object allocated: the block (packed) or the loose allocation, the
 *    index and strings capacities, the Vary block and the tag block (loose), plus the length of every body. It never
 *    changes afterwards.
 *  - after finish nothing but `refcnt`, the CR_OBJ_INVALIDATED bit of `flags` (atomic, see object.h) and the
 *    store-private fields (the object's and each tag's) is written; any thread holding a reference may read the rest
 *    without locks.
 *  - body_bits is 0 while building and in a loose finished object; in a packed one it has the identity bit set.
 *  - the header index entries' offsets grow with the index (each name starts where the previous value's NUL ended),
 *    the first is 0, and header_bytes is where the last value's NUL ends.
 *  - etag is 0 or 1 + the index of the first header named "etag".
 *  - tags are distinct and non-empty; tags[i].owner == the object (where it is now).
 *  - before finish, a body with base == NULL is "not set yet"; from finish on, the identity body is never NULL and
 *    other encodings are NULL when absent.
 *
 * Locking: none. The builder functions are for the creating thread only, before the object is shared. The refcount
 * uses __atomic builtins: addref is RELAXED (the caller already holds a reference, so nothing needs ordering), release
 * is ACQ_REL so every thread's prior accesses happen-before the free by whichever thread drops the last reference.
 */
#include "corral/cache/object.h"

#include <stdlib.h>

/* The static empty identity body: never freed. */
static char cr_object_empty_body[1] = "";

/* What the loose layout owns besides the struct and the key. */
typedef struct st_cr_object_builder_t {
    cr_object_hdr_t *index; /* num_headers used */
    size_t index_cap;
    char *strings; /* obj->header_bytes used */
    size_t strings_cap;
    cr_str_t *vary; /* the Vary table (num_vary + 1 entries) followed by its strings; NULL when num_vary == 0 */
    size_t vary_bytes;
    size_t tags_bytes; /* bytes of the block obj->tags points to (0 when NULL) */
    cr_str_t bodies[CR_ENC_MAX];
} cr_object_builder_t;

/* The loose layout's allocation: the builder, the object, then the key (right after the struct, as in a packed block
 * with an empty body table). */
typedef struct st_cr_object_loose_t {
    cr_object_builder_t b;
    cr_object_t obj; /* must stay last */
} cr_object_loose_t;

_Static_assert(sizeof(cr_object_loose_t) == offsetof(cr_object_loose_t, obj) + sizeof(cr_object_t),
               "the key must follow the object directly");
_Static_assert(sizeof(cr_object_t) % _Alignof(cr_str_t) == 0, "the body table must be aligned");
_Static_assert(_Alignof(cr_str_t) >= _Alignof(cr_object_tag_t), "the tags follow the Vary table");

static inline cr_object_loose_t *cr_object_loose(const cr_object_t *obj)
{
    assert(!cr_object_is_packed(obj));
    return (cr_object_loose_t *)(void *)((char *)(uintptr_t)obj - offsetof(cr_object_loose_t, obj));
}

static inline char cr_object_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static inline size_t cr_object_align(size_t off, size_t to)
{
    return (off + (to - 1)) & ~(to - 1);
}

static void cr_object_free_body(cr_str_t *body)
{
    if (body->base != NULL && body->base != cr_object_empty_body)
        free((char *)body->base);
    *body = cr_str(NULL, 0);
}

/* Asserts the object is one being built. */
static inline cr_object_builder_t *cr_object_building(cr_object_t *obj)
{
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(obj->cost == 0);
    return &cr_object_loose(obj)->b;
}

cr_object_t *cr_object_new(const char *key, size_t keylen, int status)
{
    cr_object_loose_t *loose;
    char *keybuf;

    assert(status >= 0 && status <= 999);
    if (keylen > CR_OBJECT_MAX_KEY || (loose = malloc(sizeof(*loose) + keylen + 1)) == NULL)
        return NULL;
    memset(loose, 0, sizeof(*loose));
    keybuf = (char *)(&loose->obj + 1);
    if (keylen != 0)
        memcpy(keybuf, key, keylen);
    keybuf[keylen] = '\0';

    loose->obj.magic = CR_OBJECT_MAGIC;
    loose->obj.refcnt = 1;
    loose->obj.status = (uint16_t)status;
    loose->obj.key_len = (uint32_t)keylen;
    loose->obj.hash = cr_hash(keybuf, keylen);
    /* bodies stay {NULL,0} until set, so a builder can tell whether it set the identity body yet */
    return &loose->obj;
}

/* The capacity a growable buffer of `cap` units needs to hold `len` + 1 of them (doubling from `initial`), or 0 on
 * overflow. */
static size_t cr_object_grown(size_t cap, size_t len, size_t initial, size_t unit)
{
    size_t newcap = cap != 0 ? cap : initial;
    while (newcap < len + 1) {
        if (newcap > SIZE_MAX / 2 / unit)
            return 0;
        newcap *= 2;
    }
    return newcap;
}

int cr_object_add_header(cr_object_t *obj, const char *name, size_t namelen, const char *value, size_t valuelen, unsigned token)
{
    cr_object_builder_t *b = cr_object_building(obj);
    size_t need, i;
    cr_object_hdr_t *h;
    char *dst;

    if (obj->num_headers == CR_OBJECT_MAX_HEADERS || namelen > CR_OBJECT_MAX_NAME || token > CR_OBJECT_MAX_TOKEN ||
        valuelen > CR_OBJECT_MAX_HEADER_BYTES)
        return CR_ERROR;
    need = namelen + 1 + valuelen + 1;
    if (need > CR_OBJECT_MAX_HEADER_BYTES - obj->header_bytes)
        return CR_ERROR;
    if (obj->header_bytes + need > b->strings_cap) {
        size_t cap = cr_object_grown(b->strings_cap, obj->header_bytes + need - 1, 256, 1);
        char *p;
        if (cap == 0 || (p = realloc(b->strings, cap)) == NULL)
            return CR_ERROR;
        b->strings = p;
        b->strings_cap = cap;
    }
    if (obj->num_headers == b->index_cap) {
        size_t cap = cr_object_grown(b->index_cap, obj->num_headers, 16, sizeof(*b->index));
        cr_object_hdr_t *p;
        if (cap == 0 || (p = realloc(b->index, cap * sizeof(*p))) == NULL)
            return CR_ERROR;
        b->index = p;
        b->index_cap = cap;
    }

    dst = b->strings + obj->header_bytes;
    for (i = 0; i != namelen; ++i)
        dst[i] = cr_object_lower(name[i]);
    dst[namelen] = '\0';
    if (valuelen != 0)
        memcpy(dst + namelen + 1, value, valuelen);
    dst[namelen + 1 + valuelen] = '\0';

    h = &b->index[obj->num_headers++];
    h->off = obj->header_bytes;
    h->len_token = (uint32_t)namelen | (uint32_t)token << 24;
    obj->header_bytes += (uint32_t)need;
    if (obj->etag == 0 && cr_str_eq(cr_str(dst, namelen), "etag", 4))
        obj->etag = obj->num_headers;
    return CR_OK;
}

int cr_object_set_vary(cr_object_t *obj, const cr_str_t *names, size_t num_names, const char *variant_key, size_t variant_keylen)
{
    cr_object_builder_t *b = cr_object_building(obj);
    size_t bytes, i, j;
    cr_str_t *table;
    char *dst;

    if (num_names > CR_OBJECT_MAX_VARY || variant_keylen > SIZE_MAX / 4 || (num_names == 0 && variant_keylen != 0))
        return CR_ERROR;
    if (num_names == 0) {
        free(b->vary);
        b->vary = NULL;
        b->vary_bytes = 0;
        obj->num_vary = 0;
        return CR_OK;
    }
    bytes = (num_names + 1) * sizeof(cr_str_t) + variant_keylen + 1;
    for (i = 0; i != num_names; ++i) {
        if (names[i].len >= SIZE_MAX / 4 - bytes)
            return CR_ERROR;
        bytes += names[i].len + 1;
    }
    if ((table = malloc(bytes)) == NULL)
        return CR_ERROR;

    dst = (char *)(table + num_names + 1);
    for (i = 0; i != num_names; ++i) {
        for (j = 0; j != names[i].len; ++j)
            dst[j] = cr_object_lower(names[i].base[j]);
        dst[names[i].len] = '\0';
        table[i] = cr_str(dst, names[i].len);
        dst += names[i].len + 1;
    }
    if (variant_keylen != 0)
        memcpy(dst, variant_key, variant_keylen);
    dst[variant_keylen] = '\0';
    table[num_names] = cr_str(dst, variant_keylen);

    free(b->vary);
    b->vary = table;
    b->vary_bytes = bytes;
    obj->num_vary = (uint8_t)num_names;
    return CR_OK;
}

/* Returns 1 if tags[0..n) already holds a tag equal to t. */
static int cr_object_has_tag(const cr_str_t *tags, const uint64_t *hashes, size_t n, cr_str_t t, uint64_t hash)
{
    size_t i;
    for (i = 0; i != n; ++i)
        if (hashes[i] == hash && tags[i].len == t.len && memcmp(tags[i].base, t.base, t.len) == 0)
            return 1;
    return 0;
}

/* Deduplication is quadratic in n; callers bound n (cr_surrogate_keys_parse caps it at CR_SURROGATE_KEYS_MAX). */
int cr_object_set_tags(cr_object_t *obj, const cr_str_t *tags, size_t n)
{
    cr_object_builder_t *b = cr_object_building(obj);
    cr_str_t *uniq = NULL;
    uint64_t *hashes = NULL;
    cr_object_tag_t *arr = NULL;
    size_t num = 0, bytes, i;
    char *dst;
    int ret = CR_ERROR;

    assert(tags != NULL || n == 0);

    if (n > SIZE_MAX / 4 / sizeof(cr_object_tag_t) || n > UINT32_MAX)
        return CR_ERROR;
    if (n != 0 && ((uniq = malloc(n * sizeof(*uniq))) == NULL || (hashes = malloc(n * sizeof(*hashes))) == NULL))
        goto Exit;
    for (i = 0; i != n; ++i) {
        uint64_t h;
        if (tags[i].len == 0)
            continue;
        h = cr_hash(tags[i].base, tags[i].len);
        if (cr_object_has_tag(uniq, hashes, num, tags[i], h))
            continue;
        uniq[num] = tags[i];
        hashes[num++] = h;
    }

    bytes = num * sizeof(cr_object_tag_t);
    for (i = 0; i != num; ++i) {
        if (uniq[i].len >= SIZE_MAX / 4 - bytes)
            goto Exit;
        bytes += uniq[i].len + 1;
    }
    if (num != 0) {
        if ((arr = malloc(bytes)) == NULL)
            goto Exit;
        dst = (char *)(arr + num);
        for (i = 0; i != num; ++i) {
            memcpy(dst, uniq[i].base, uniq[i].len);
            dst[uniq[i].len] = '\0';
            arr[i].name = cr_str(dst, uniq[i].len);
            arr[i].hash = hashes[i];
            arr[i].owner = obj;
            arr[i].st.entry = NULL;
            arr[i].st.prev = arr[i].st.next = NULL;
            dst += uniq[i].len + 1;
        }
    }
    free(obj->tags);
    obj->tags = arr;
    obj->num_tags = (uint32_t)num;
    b->tags_bytes = num != 0 ? bytes : 0;
    ret = CR_OK;
Exit:
    free(uniq);
    free(hashes);
    return ret;
}

void cr_object_set_body(cr_object_t *obj, cr_encoding_t enc, char *base, size_t len)
{
    cr_object_builder_t *b = cr_object_building(obj);

    assert((unsigned)enc < CR_ENC_MAX);
    assert(base != NULL || len == 0);

    cr_object_free_body(&b->bodies[enc]);
    if (base == NULL && enc == CR_ENC_IDENTITY)
        base = cr_object_empty_body;
    b->bodies[enc] = cr_str(base, len);
}

/* Copies a NUL-terminated string to *dst (advancing it) and returns the copy. */
static cr_str_t cr_object_copy_str(char **dst, cr_str_t s)
{
    cr_str_t copy = cr_str(*dst, s.len);
    memcpy(*dst, s.base, s.len + 1);
    *dst += s.len + 1;
    return copy;
}

/* Builds the packed block of a loose object (see the top comment) and frees the loose allocations. Returns the
 * packed object, or NULL (allocation; the loose object is untouched). */
static cr_object_t *cr_object_pack(cr_object_t *obj)
{
    cr_object_loose_t *loose = cr_object_loose(obj);
    cr_object_builder_t *b = &loose->b;
    size_t vary_table = obj->num_vary != 0 ? (obj->num_vary + 1u) * sizeof(cr_str_t) : 0,
           tag_table = obj->num_tags * sizeof(cr_object_tag_t), index_bytes = obj->num_headers * sizeof(cr_object_hdr_t),
           table_off, index_off, vary_off, size, cost, i;
    unsigned bits = 0;
    cr_object_t *packed;
    cr_str_t *table;
    char *block, *dst;
    int e;

    for (e = 0; e != CR_ENC_MAX; ++e)
        if (b->bodies[e].base != NULL)
            bits |= 1u << e;
    assert((bits & 1u) != 0); /* identity */

    table_off = cr_object_align(sizeof(*obj) + obj->key_len + 1, _Alignof(cr_str_t));
    index_off = cr_object_align(table_off + (size_t)cr_object__bits(bits) * sizeof(cr_str_t), _Alignof(cr_object_hdr_t));
    size = vary_off = index_off + index_bytes + obj->header_bytes;
    if (vary_table != 0 || tag_table != 0) {
        vary_off = cr_object_align(vary_off, _Alignof(cr_str_t));
        size = vary_off + vary_table + tag_table + (b->vary_bytes - vary_table) + (b->tags_bytes - tag_table);
    }
    if ((block = malloc(size)) == NULL)
        return NULL;

    /* the struct and the body table */
    packed = (cr_object_t *)(void *)block;
    *packed = *obj;
    packed->body_bits = (uint8_t)bits;
    /* the key, right after the struct */
    memcpy(packed + 1, obj + 1, obj->key_len + 1);
    memset((char *)(packed + 1) + obj->key_len + 1, 0, table_off - sizeof(*obj) - obj->key_len - 1);
    assert(cr_object__body_table_offset(packed) == table_off);
    table = (cr_str_t *)(void *)(block + table_off);
    cost = size;
    for (e = 0; e != CR_ENC_MAX; ++e) {
        if (b->bodies[e].base != NULL) {
            *table++ = b->bodies[e];
            cost += b->bodies[e].len;
        }
    }
    /* the header index and strings */
    assert(cr_object__index_offset(packed) == index_off);
    if (index_bytes != 0) {
        memcpy(block + index_off, b->index, index_bytes);
        memcpy(block + index_off + index_bytes, b->strings, obj->header_bytes);
    }
    /* the Vary table, the tags, their strings */
    dst = block + vary_off + vary_table + tag_table;
    if (vary_table != 0) {
        cr_str_t *vary = (cr_str_t *)(void *)(block + vary_off);
        assert(cr_object__vary_offset(packed) == vary_off);
        for (i = 0; i != obj->num_vary + 1u; ++i)
            vary[i] = cr_object_copy_str(&dst, b->vary[i]);
    }
    if (tag_table != 0) {
        cr_object_tag_t *tags = (cr_object_tag_t *)(void *)(block + vary_off + vary_table);
        for (i = 0; i != obj->num_tags; ++i) {
            assert(obj->tags[i].st.entry == NULL);
            tags[i] = obj->tags[i];
            tags[i].name = cr_object_copy_str(&dst, obj->tags[i].name);
            tags[i].owner = packed;
        }
        packed->tags = tags;
    }
    assert(dst == block + size);
    packed->cost = cost;

    /* the loose object is gone: its bodies now belong to the packed one */
    free(b->index);
    free(b->strings);
    free(b->vary);
    free(obj->tags);
    obj->magic = 0;
    free(loose);
    return packed;
}

/* What a loose object allocated. */
static size_t cr_object_loose_cost(const cr_object_t *obj)
{
    const cr_object_builder_t *b = &cr_object_loose(obj)->b;
    size_t cost = sizeof(cr_object_loose_t) + obj->key_len + 1 + b->index_cap * sizeof(*b->index) + b->strings_cap +
                  b->vary_bytes + b->tags_bytes;
    int e;

    for (e = 0; e != CR_ENC_MAX; ++e)
        cost += b->bodies[e].len;
    return cost;
}

cr_object_t *cr_object_finish(cr_object_t *obj)
{
    cr_object_builder_t *b = cr_object_building(obj);
    cr_object_t *packed;

    assert(obj->refcnt == 1 && !obj->st_linked);

    if (b->bodies[CR_ENC_IDENTITY].base == NULL)
        b->bodies[CR_ENC_IDENTITY] = cr_str(cr_object_empty_body, 0);
    if ((packed = cr_object_pack(obj)) != NULL)
        return packed;
    /* out of memory: stay loose (everything is in place already) */
    obj->cost = cr_object_loose_cost(obj);
    return obj;
}

cr_object_header_index_t cr_object__loose_header_index(const cr_object_t *obj)
{
    const cr_object_builder_t *b = &cr_object_loose(obj)->b;
    cr_object_header_index_t ix = {b->index, b->strings};
    return ix;
}

const cr_str_t *cr_object__loose_vary(const cr_object_t *obj)
{
    return cr_object_loose(obj)->b.vary;
}

cr_str_t cr_object__loose_body(const cr_object_t *obj, cr_encoding_t enc)
{
    assert((unsigned)enc < CR_ENC_MAX);
    return cr_object_loose(obj)->b.bodies[enc];
}

cr_str_t cr_object_find_header(const cr_object_t *obj, const char *lname, size_t lnamelen)
{
    cr_object_header_index_t ix;
    size_t i;

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    ix = cr_object__header_index(obj);
    for (i = 0; i != obj->num_headers; ++i) {
        const cr_object_hdr_t *h = &ix.entries[i];
        if ((h->len_token & CR_OBJECT_MAX_NAME) == lnamelen && memcmp(ix.strings + h->off, lname, lnamelen) == 0)
            return cr_object_header_value(obj, i);
    }
    return cr_str(NULL, 0);
}

void cr_object_addref(cr_object_t *obj)
{
    uint32_t old;

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    old = __atomic_fetch_add(&obj->refcnt, 1, __ATOMIC_RELAXED);
    assert(old != 0 && old != UINT32_MAX);
    (void)old;
}

static void cr_object_destroy(cr_object_t *obj)
{
    size_t t;
    int e;

    assert(!obj->st_linked);
    for (t = 0; t != obj->num_tags; ++t)
        assert(obj->tags[t].st.entry == NULL);
    if (cr_object_is_packed(obj)) {
        cr_str_t *table = (cr_str_t *)(void *)((char *)obj + cr_object__body_table_offset(obj));
        for (e = 0; e != (int)cr_object__bits(obj->body_bits); ++e)
            cr_object_free_body(&table[e]);
        obj->magic = 0;
        free(obj);
    } else {
        cr_object_loose_t *loose = cr_object_loose(obj);
        for (e = 0; e != CR_ENC_MAX; ++e)
            cr_object_free_body(&loose->b.bodies[e]);
        free(loose->b.index);
        free(loose->b.strings);
        free(loose->b.vary);
        free(obj->tags);
        obj->magic = 0;
        free(loose);
    }
}

void cr_object_release(cr_object_t **objp)
{
    cr_object_t *obj = *objp;
    uint32_t old;

    if (obj == NULL)
        return;
    *objp = NULL;
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    old = __atomic_fetch_sub(&obj->refcnt, 1, __ATOMIC_ACQ_REL);
    assert(old != 0);
    if (old == 1)
        cr_object_destroy(obj);
}
