/*
 * object.c: building, measuring and refcounting cached responses (cr_object_t).
 *
 * Memory layout. Each object is a cr_object_impl_t (the public cr_object_t first) allocated together with its
 * NUL-terminated primary key; what only building needs lives in a separate cr_object_builder_t, freed at finish. While the object is being built, headers are appended to a growable
 * array and their names and values (each NUL-terminated) to one growable string arena; when the arena grows, the
 * header pointers are rebased onto the new copy, so headers are valid (and cr_object_find_header works) at every
 * step. cr_object_finish() compacts the array and the arena into one exact-size block. The Vary names array, their
 * strings and the variant key live in a second block. The tags (cr_object_tag_t array, which doubles as the
 * object's memberships in the store's tag index, followed by the NUL-terminated names) live in a third block.
 * Bodies are separate malloc'ed buffers owned by the object. A finished object therefore costs at most
 * 4 + CR_ENC_MAX allocations.
 *
 * Invariants:
 *  - `cost` is 0 until finish, then the bytes the object owns: the impl struct, the key, the header block, the
 *    Vary block, the tag block and the length of every body. It never changes afterwards.
 *  - after finish nothing but `refcnt`, the CR_OBJ_INVALIDATED bit of `flags` (atomic, see object.h) and the
 *    store-private `st` fields (the object's and each tag's) is written; any thread holding a reference may read the
 *    rest without locks.
 *  - tags are distinct and non-empty; tags[i].owner == the object.
 *  - before finish, bodies[e].base == NULL means "not set yet"; from finish on, bodies[CR_ENC_IDENTITY].base is never
 *    NULL (an empty body points at a static "", never freed) and other encodings have base == NULL when absent.
 *  - etag points into header storage (or is {NULL,0}).
 *
 * Locking: none. The builder functions are for the creating thread only, before the object is shared. The refcount
 * uses __atomic builtins: addref is RELAXED (the caller already holds a reference, so nothing needs ordering), release
 * is ACQ_REL so every thread's prior accesses happen-before the free by whichever thread drops the last reference.
 */
#include "corral/object.h"

#include <stdlib.h>

/* The static empty identity body: never freed. */
static char cr_object_empty_body[1] = "";

/* What only building needs: allocated by cr_object_new, freed by cr_object_finish (so a stored object does not carry
 * it). */
typedef struct st_cr_object_builder_t {
    size_t headers_cap;   /* slots in pub.headers while building */
    size_t headers_bytes; /* bytes allocated for pub.headers (the compacted block after finish) */
    char *arena;          /* header strings while building; NULL after a successful compaction */
    size_t arena_len, arena_cap;
    size_t vary_bytes;
    size_t tags_bytes; /* bytes of the block pub.tags points to (0 when NULL) */
} cr_object_builder_t;

typedef struct st_cr_object_impl_t {
    cr_object_t pub; /* must stay first: cr_object_t * and cr_object_impl_t * convert to each other */
    cr_object_builder_t *b; /* non-NULL until finish */
    void *vary_block;       /* vary_names array + names + variant key, or NULL */
    char *arena;            /* header strings kept past finish only when compaction ran out of memory, else NULL */
    char keybuf[];          /* the primary key plus NUL */
} cr_object_impl_t;

static inline cr_object_impl_t *cr_object_impl(cr_object_t *obj)
{
    return (cr_object_impl_t *)obj;
}

static inline char cr_object_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

cr_object_t *cr_object_new(const char *key, size_t keylen, int status)
{
    cr_object_impl_t *impl;

    if (keylen > SIZE_MAX - sizeof(*impl) - 1 || (impl = malloc(sizeof(*impl) + keylen + 1)) == NULL)
        return NULL;
    memset(impl, 0, sizeof(*impl));
    if ((impl->b = calloc(1, sizeof(*impl->b))) == NULL) {
        free(impl);
        return NULL;
    }
    if (keylen != 0)
        memcpy(impl->keybuf, key, keylen);
    impl->keybuf[keylen] = '\0';

    impl->pub.magic = CR_OBJECT_MAGIC;
    impl->pub.refcnt = 1;
    impl->pub.key = cr_str(impl->keybuf, keylen);
    impl->pub.hash = cr_hash(impl->keybuf, keylen);
    impl->pub.variant_key = cr_str(cr_object_empty_body, 0);
    impl->pub.status = status;
    /* bodies[] stay {NULL,0} until set, so a builder can tell whether it set the identity body yet */
    return &impl->pub;
}

/* Moves the arena into a new buffer of at least `need` bytes and rebases every header onto it. Returns CR_OK or
 * CR_ERROR (allocation; the object is unchanged). */
static int cr_object_grow_arena(cr_object_impl_t *impl, size_t need)
{
    size_t newcap = impl->b->arena_cap != 0 ? impl->b->arena_cap : 256, i;
    char *newarena;

    while (newcap < need) {
        if (newcap > SIZE_MAX / 2)
            return CR_ERROR;
        newcap *= 2;
    }
    if ((newarena = malloc(newcap)) == NULL)
        return CR_ERROR;
    if (impl->b->arena_len != 0)
        memcpy(newarena, impl->b->arena, impl->b->arena_len);
    /* rebase while the old arena is still allocated, so the pointer arithmetic stays within one object */
    for (i = 0; i != impl->pub.num_headers; ++i) {
        cr_object_header_t *h = &impl->pub.headers[i];
        h->name.base = newarena + (h->name.base - impl->b->arena);
        h->value.base = newarena + (h->value.base - impl->b->arena);
    }
    free(impl->b->arena);
    impl->b->arena = newarena;
    impl->b->arena_cap = newcap;
    return CR_OK;
}

int cr_object_add_header(cr_object_t *obj, const char *name, size_t namelen, const char *value, size_t valuelen, const void *token)
{
    cr_object_impl_t *impl = cr_object_impl(obj);
    cr_object_header_t *h;
    char *dst;
    size_t need, i;

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(impl->b != NULL);

    if (namelen > SIZE_MAX / 4 || valuelen > SIZE_MAX / 4 || impl->b->arena_len > SIZE_MAX / 4)
        return CR_ERROR;
    need = namelen + 1 + valuelen + 1;
    if (impl->b->arena_len + need > impl->b->arena_cap && cr_object_grow_arena(impl, impl->b->arena_len + need) != CR_OK)
        return CR_ERROR;
    if (obj->num_headers == impl->b->headers_cap) {
        size_t newcap = impl->b->headers_cap != 0 ? impl->b->headers_cap * 2 : 16;
        cr_object_header_t *newheaders;
        if (newcap > SIZE_MAX / sizeof(*newheaders) || (newheaders = realloc(obj->headers, newcap * sizeof(*newheaders))) == NULL)
            return CR_ERROR;
        obj->headers = newheaders;
        impl->b->headers_cap = newcap;
        impl->b->headers_bytes = newcap * sizeof(*newheaders);
    }

    dst = impl->b->arena + impl->b->arena_len;
    h = &obj->headers[obj->num_headers++];
    for (i = 0; i != namelen; ++i)
        dst[i] = cr_object_lower(name[i]);
    dst[namelen] = '\0';
    h->name = cr_str(dst, namelen);
    dst += namelen + 1;
    if (valuelen != 0)
        memcpy(dst, value, valuelen);
    dst[valuelen] = '\0';
    h->value = cr_str(dst, valuelen);
    h->token = token;
    impl->b->arena_len += need;
    return CR_OK;
}

int cr_object_set_vary(cr_object_t *obj, const cr_str_t *names, size_t num_names, const char *variant_key, size_t variant_keylen)
{
    cr_object_impl_t *impl = cr_object_impl(obj);
    size_t bytes, i, j;
    cr_str_t *arr;
    char *dst;
    void *block;

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(impl->b != NULL);

    if (num_names > SIZE_MAX / 4 / sizeof(cr_str_t) || variant_keylen > SIZE_MAX / 4)
        return CR_ERROR;
    bytes = num_names * sizeof(cr_str_t) + variant_keylen + 1;
    for (i = 0; i != num_names; ++i) {
        if (names[i].len >= SIZE_MAX - bytes)
            return CR_ERROR;
        bytes += names[i].len + 1;
    }
    if ((block = malloc(bytes)) == NULL)
        return CR_ERROR;

    arr = block;
    dst = (char *)block + num_names * sizeof(cr_str_t);
    for (i = 0; i != num_names; ++i) {
        for (j = 0; j != names[i].len; ++j)
            dst[j] = cr_object_lower(names[i].base[j]);
        dst[names[i].len] = '\0';
        arr[i] = cr_str(dst, names[i].len);
        dst += names[i].len + 1;
    }
    if (variant_keylen != 0)
        memcpy(dst, variant_key, variant_keylen);
    dst[variant_keylen] = '\0';

    free(impl->vary_block);
    impl->vary_block = block;
    impl->b->vary_bytes = bytes;
    obj->vary_names = num_names != 0 ? arr : NULL;
    obj->num_vary = num_names;
    obj->variant_key = cr_str(dst, variant_keylen);
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
    cr_object_impl_t *impl = cr_object_impl(obj);
    cr_str_t *uniq = NULL;
    uint64_t *hashes = NULL;
    cr_object_tag_t *arr = NULL;
    size_t num = 0, bytes, i;
    char *dst;
    int ret = CR_ERROR;

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(impl->b != NULL);
    assert(tags != NULL || n == 0);

    if (n > SIZE_MAX / 4 / sizeof(cr_object_tag_t))
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
    obj->num_tags = num;
    impl->b->tags_bytes = num != 0 ? bytes : 0;
    ret = CR_OK;
Exit:
    free(uniq);
    free(hashes);
    return ret;
}

static void cr_object_free_body(cr_str_t *body)
{
    if (body->base != NULL && body->base != cr_object_empty_body)
        free((char *)body->base);
    *body = cr_str(NULL, 0);
}

void cr_object_set_body(cr_object_t *obj, cr_encoding_t enc, char *base, size_t len)
{
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(cr_object_impl(obj)->b != NULL);
    assert((unsigned)enc < CR_ENC_MAX);
    assert(base != NULL || len == 0);

    cr_object_free_body(&obj->bodies[enc]);
    if (base == NULL && enc == CR_ENC_IDENTITY)
        base = cr_object_empty_body;
    obj->bodies[enc] = cr_str(base, len);
}

/* Replaces the build array + arena with one exact-size block. On allocation failure the build buffers stay (they are
 * valid, just not tight) and are what `cost` counts. */
static void cr_object_compact_headers(cr_object_impl_t *impl)
{
    cr_object_t *obj = &impl->pub;
    size_t arraybytes = obj->num_headers * sizeof(cr_object_header_t), i;
    char *block, *strings;

    if (obj->num_headers == 0) {
        free(obj->headers);
        free(impl->b->arena);
        obj->headers = NULL;
        impl->b->arena = NULL;
        impl->b->headers_bytes = impl->b->headers_cap = impl->b->arena_cap = impl->b->arena_len = 0;
        return;
    }
    if ((block = malloc(arraybytes + impl->b->arena_len)) == NULL)
        return;
    strings = block + arraybytes;
    memcpy(strings, impl->b->arena, impl->b->arena_len);
    memcpy(block, obj->headers, arraybytes);
    for (i = 0; i != obj->num_headers; ++i) {
        cr_object_header_t *h = &((cr_object_header_t *)(void *)block)[i];
        h->name.base = strings + (h->name.base - impl->b->arena);
        h->value.base = strings + (h->value.base - impl->b->arena);
    }
    free(obj->headers);
    free(impl->b->arena);
    obj->headers = (cr_object_header_t *)(void *)block;
    impl->b->arena = NULL;
    impl->b->headers_cap = obj->num_headers;
    impl->b->headers_bytes = arraybytes + impl->b->arena_len;
    impl->b->arena_cap = 0;
}

void cr_object_finish(cr_object_t *obj)
{
    cr_object_impl_t *impl = cr_object_impl(obj);
    size_t cost;
    int i;

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(impl->b != NULL);

    if (obj->bodies[CR_ENC_IDENTITY].base == NULL)
        obj->bodies[CR_ENC_IDENTITY] = cr_str(cr_object_empty_body, 0);
    cr_object_compact_headers(impl);
    obj->etag = cr_object_find_header(obj, "etag", 4);

    cost = sizeof(*impl) + obj->key.len + 1 + impl->b->headers_bytes + impl->b->arena_cap + impl->b->vary_bytes + impl->b->tags_bytes;
    for (i = 0; i != CR_ENC_MAX; ++i)
        cost += obj->bodies[i].len;
    obj->cost = cost;
    /* the builder goes; an arena that compaction could not replace (out of memory) still holds the header strings */
    impl->arena = impl->b->arena;
    free(impl->b);
    impl->b = NULL;
}

cr_str_t cr_object_find_header(const cr_object_t *obj, const char *lname, size_t lnamelen)
{
    size_t i;

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    for (i = 0; i != obj->num_headers; ++i) {
        const cr_object_header_t *h = &obj->headers[i];
        if (h->name.len == lnamelen && memcmp(h->name.base, lname, lnamelen) == 0)
            return h->value;
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

static void cr_object_destroy(cr_object_impl_t *impl)
{
    size_t t;
    int i;

    assert(!impl->pub.st_linked);
    for (t = 0; t != impl->pub.num_tags; ++t)
        assert(impl->pub.tags[t].st.entry == NULL);
    for (i = 0; i != CR_ENC_MAX; ++i)
        cr_object_free_body(&impl->pub.bodies[i]);
    free(impl->pub.headers);
    if (impl->b != NULL) { /* released before finish */
        free(impl->b->arena);
        free(impl->b);
    }
    free(impl->arena);
    free(impl->vary_block);
    free(impl->pub.tags);
    impl->pub.magic = 0;
    free(impl);
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
        cr_object_destroy(cr_object_impl(obj));
}
