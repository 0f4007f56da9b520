/*
 * test_object.c: unit tests for sidecar/cache/object.c (building, the accessors in both layouts, packing at finish, exact
 * cost accounting, limits, refcounting) and the inline freshness helpers of object.h, driven by a fake clock. Frees
 * are verified by running under ASan/LSan: every test drops its last reference, so a leak or a use-after-free fails
 * the run. The allocation-failure paths are in test_object_oom.c.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "corral/cache/object.h"

void cr_test_register_object(void);

static char *test_dup(const char *s, size_t len)
{
    char *p = malloc(len != 0 ? len : 1);
    CU_ASSERT_FATAL(p != NULL);
    if (len != 0)
        memcpy(p, s, len);
    return p;
}

static char *test_body(size_t len, char fill)
{
    char *p = malloc(len != 0 ? len : 1);
    CU_ASSERT_FATAL(p != NULL);
    memset(p, fill, len);
    return p;
}

static size_t test_align(size_t off, size_t to)
{
    return (off + to - 1) / to * to;
}

/* What a packed object costs, by the layout object.c documents: the block, then the bodies. `strings` is the bytes
 * of the Vary names, the variant key and the tag names, each with its NUL. */
static size_t test_packed_cost(size_t keylen, size_t num_bodies, size_t body_bytes, size_t num_headers, size_t header_bytes,
                               size_t num_vary, size_t num_tags, size_t strings)
{
    size_t off = test_align(test_align(sizeof(cr_object_t) + keylen + 1, 8) + num_bodies * sizeof(cr_str_t), 4);
    off += num_headers * sizeof(cr_object_hdr_t) + header_bytes;
    if (num_vary != 0 || num_tags != 0)
        off = test_align(off, 8) + (num_vary != 0 ? (num_vary + 1) * sizeof(cr_str_t) : 0) + num_tags * sizeof(cr_object_tag_t) +
              strings;
    return off + body_bytes;
}

/* Checks header i against what was added (name lower-case), NUL-terminated both. */
static int test_header_is(const cr_object_t *obj, size_t i, const char *name, const char *value, unsigned token)
{
    cr_str_t n = cr_object_header_name(obj, i), v = cr_object_header_value(obj, i);
    return cr_str_eq(n, name, strlen(name)) && n.base[n.len] == '\0' && cr_str_eq(v, value, strlen(value)) &&
           v.base[v.len] == '\0' && cr_object_header_token(obj, i) == token;
}

static void test_object_build(void)
{
    static const char key[] = "example.com\n/a?b=1\n";
    cr_str_t vary[] = {CR_STR("Accept-Encoding"), CR_STR("x-device")};
    cr_object_t *obj = cr_object_new(key, sizeof(key) - 1, 200);
    cr_str_t v;

    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(obj->magic, CR_OBJECT_MAGIC);
    CU_ASSERT_EQUAL(obj->refcnt, 1);
    CU_ASSERT_EQUAL(obj->status, 200);
    CU_ASSERT(!cr_object_is_packed(obj));
    CU_ASSERT(cr_object_key(obj).base != key);
    CU_ASSERT(cr_str_eq(cr_object_key(obj), key, sizeof(key) - 1));
    CU_ASSERT_EQUAL(cr_object_key(obj).base[sizeof(key) - 1], '\0');
    CU_ASSERT_EQUAL(obj->hash, cr_hash(key, sizeof(key) - 1));
    CU_ASSERT_EQUAL(cr_object_variant_key(obj).len, 0);
    CU_ASSERT_PTR_NOT_NULL(cr_object_variant_key(obj).base);
    CU_ASSERT_EQUAL(obj->num_vary, 0);

    CU_ASSERT_EQUAL(cr_object_add_header(obj, "Content-Type", 12, "text/html", 9, 7), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "ETag", 4, "\"v1\"", 4, 0), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "Last-Modified", 13, "Sun, 06 Nov 1994 08:49:37 GMT", 29, 0), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "x-multi", 7, "one", 3, 255), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "X-Multi", 7, "two", 3, 255), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "x-empty", 7, "", 0, 1), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "etag", 4, "\"second\"", 8, 0), CR_OK);
    /* readable before finish too (the loose layout) */
    CU_ASSERT(cr_str_eq(cr_object_find_header(obj, "content-type", 12), "text/html", 9));
    CU_ASSERT(test_header_is(obj, 3, "x-multi", "one", 255));
    CU_ASSERT(cr_str_eq(cr_object_etag(obj), "\"v1\"", 4));

    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary, 2, "accept-encoding:gzip\nx-device:mobile\n", 37), CR_OK);
    CU_ASSERT(cr_str_eq(cr_object_variant_key(obj), "accept-encoding:gzip\nx-device:mobile\n", 37));
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("hello world", 11), 11);
    cr_object_set_body(obj, CR_ENC_BR, test_dup("br", 2), 2);
    CU_ASSERT(cr_str_eq(cr_object_body(obj, CR_ENC_BR), "br", 2));
    CU_ASSERT_PTR_NULL(cr_object_body(obj, CR_ENC_GZIP).base);
    CU_ASSERT_EQUAL(obj->cost, 0);
    obj = cr_object_finish(obj);

    CU_ASSERT(cr_object_is_packed(obj));
    CU_ASSERT_EQUAL(obj->magic, CR_OBJECT_MAGIC);
    CU_ASSERT_EQUAL(obj->refcnt, 1);
    CU_ASSERT_EQUAL(obj->status, 200);
    CU_ASSERT(cr_str_eq(cr_object_key(obj), key, sizeof(key) - 1));
    CU_ASSERT_EQUAL(cr_object_key(obj).base[sizeof(key) - 1], '\0');
    CU_ASSERT_EQUAL(obj->hash, cr_hash(key, sizeof(key) - 1));
    CU_ASSERT_EQUAL(obj->num_headers, 7);
    CU_ASSERT(test_header_is(obj, 0, "content-type", "text/html", 7));
    CU_ASSERT(test_header_is(obj, 1, "etag", "\"v1\"", 0));
    CU_ASSERT(test_header_is(obj, 2, "last-modified", "Sun, 06 Nov 1994 08:49:37 GMT", 0));
    CU_ASSERT(test_header_is(obj, 3, "x-multi", "one", 255));
    CU_ASSERT(test_header_is(obj, 4, "x-multi", "two", 255));
    CU_ASSERT(test_header_is(obj, 5, "x-empty", "", 1));
    CU_ASSERT(test_header_is(obj, 6, "etag", "\"second\"", 0)); /* the last header: its value ends the strings */

    v = cr_object_find_header(obj, "x-multi", 7);
    CU_ASSERT(cr_str_eq(v, "one", 3)); /* the first one */
    v = cr_object_find_header(obj, "x-empty", 7);
    CU_ASSERT_PTR_NOT_NULL(v.base);
    CU_ASSERT_EQUAL(v.len, 0);
    v = cr_object_find_header(obj, "x-missing", 9);
    CU_ASSERT_PTR_NULL(v.base);
    CU_ASSERT_EQUAL(v.len, 0);
    v = cr_object_find_header(obj, "Content-Type", 12); /* names are looked up lower-case only */
    CU_ASSERT_PTR_NULL(v.base);
    CU_ASSERT_PTR_EQUAL(cr_object_find_header(obj, "last-modified", 13).base, cr_object_header_value(obj, 2).base);

    CU_ASSERT(cr_str_eq(cr_object_etag(obj), "\"v1\"", 4)); /* the first ETag */
    CU_ASSERT_PTR_EQUAL(cr_object_etag(obj).base, cr_object_header_value(obj, 1).base);

    CU_ASSERT_EQUAL(obj->num_vary, 2);
    CU_ASSERT(cr_str_eq(cr_object_vary_names(obj)[0], "accept-encoding", 15));
    CU_ASSERT(cr_str_eq(cr_object_vary_names(obj)[1], "x-device", 8));
    CU_ASSERT_EQUAL(cr_object_vary_names(obj)[1].base[8], '\0');
    CU_ASSERT(cr_str_eq(cr_object_variant_key(obj), "accept-encoding:gzip\nx-device:mobile\n", 37));
    CU_ASSERT_EQUAL(cr_object_variant_key(obj).base[37], '\0');

    CU_ASSERT(cr_str_eq(cr_object_body(obj, CR_ENC_IDENTITY), "hello world", 11));
    CU_ASSERT_PTR_NULL(cr_object_body(obj, CR_ENC_GZIP).base);
    CU_ASSERT(cr_str_eq(cr_object_body(obj, CR_ENC_BR), "br", 2));

    /* key 19; 7 headers: names and values 12+9 4+4 13+29 7+3 7+3 7+0 4+8 with 2 NULs each; Vary: 16 + 9 + 38 */
    CU_ASSERT_EQUAL(obj->cost, test_packed_cost(19, 2, 13, 7, 110 + 14, 2, 0, 16 + 9 + 38));
    cr_object_release(&obj);
    CU_ASSERT_PTR_NULL(obj);
}

static void test_object_minimal(void)
{
    cr_object_t *obj = cr_object_new(NULL, 0, 404);

    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_IDENTITY, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL(cr_object_body(obj, CR_ENC_IDENTITY).base); /* set, empty */
    obj = cr_object_finish(obj);
    CU_ASSERT(cr_object_is_packed(obj));
    CU_ASSERT_EQUAL(obj->status, 404);
    CU_ASSERT_EQUAL(cr_object_key(obj).len, 0);
    CU_ASSERT_PTR_NOT_NULL(cr_object_key(obj).base);
    CU_ASSERT_EQUAL(cr_object_key(obj).base[0], '\0');
    CU_ASSERT_EQUAL(obj->num_headers, 0);
    CU_ASSERT_PTR_NULL(cr_object_etag(obj).base);
    CU_ASSERT_PTR_NULL(cr_object_find_header(obj, "last-modified", 13).base);
    CU_ASSERT_PTR_NOT_NULL(cr_object_body(obj, CR_ENC_IDENTITY).base);
    CU_ASSERT_EQUAL(cr_object_body(obj, CR_ENC_IDENTITY).len, 0);
    CU_ASSERT_PTR_NULL(cr_object_body(obj, CR_ENC_GZIP).base);
    CU_ASSERT_PTR_NULL(cr_object_body(obj, CR_ENC_BR).base);
    CU_ASSERT_EQUAL(obj->num_vary, 0);
    CU_ASSERT_PTR_NULL(cr_object_vary_names(obj));
    CU_ASSERT_EQUAL(cr_object_variant_key(obj).len, 0);
    CU_ASSERT_PTR_NULL(obj->tags);
    CU_ASSERT_EQUAL(obj->cost, test_packed_cost(0, 1, 0, 0, 0, 0, 0, 0));
    cr_object_release(&obj);

    /* no set_body at all: identity is still an empty, non-NULL body */
    obj = cr_object_new("k", 1, 204);
    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_PTR_NULL(cr_object_body(obj, CR_ENC_IDENTITY).base); /* "not set yet" is visible to the builder */
    obj = cr_object_finish(obj);
    CU_ASSERT_PTR_NOT_NULL(cr_object_body(obj, CR_ENC_IDENTITY).base);
    CU_ASSERT_EQUAL(cr_object_body(obj, CR_ENC_IDENTITY).len, 0);
    cr_object_release(&obj);

    /* only a coded body (an upstream-compressed response): identity becomes the empty body, the coded one is kept */
    obj = cr_object_new("k", 1, 200);
    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_GZIP, test_dup("gzipped", 7), 7);
    obj = cr_object_finish(obj);
    CU_ASSERT_EQUAL(cr_object_body(obj, CR_ENC_IDENTITY).len, 0);
    CU_ASSERT_PTR_NOT_NULL(cr_object_body(obj, CR_ENC_IDENTITY).base);
    CU_ASSERT(cr_str_eq(cr_object_body(obj, CR_ENC_GZIP), "gzipped", 7));
    CU_ASSERT_PTR_NULL(cr_object_body(obj, CR_ENC_BR).base);
    CU_ASSERT(cr_str_eq(cr_object_key(obj), "k", 1)); /* right after the struct, before a two-entry body table */
    CU_ASSERT_EQUAL(obj->cost, test_packed_cost(1, 2, 7, 0, 0, 0, 0, 0));
    cr_object_release(&obj);

    /* releasing NULL is a no-op */
    cr_object_release(&obj);
    CU_ASSERT_PTR_NULL(obj);
}

/* More than 255 headers (any 8-bit count or index would wrap): the index and the strings grow many times. */
static void test_object_many_headers(void)
{
    cr_object_t *obj = cr_object_new("many", 4, 200);
    char name[32], value[300];
    size_t i, header_bytes = 0;

    CU_ASSERT_FATAL(obj != NULL);
    for (i = 0; i != 500; ++i) {
        int nlen = snprintf(name, sizeof(name), "X-Header-%zu", i);
        size_t vlen = i % 257;
        memset(value, 'a' + (int)(i % 26), vlen);
        CU_ASSERT_EQUAL_FATAL(cr_object_add_header(obj, name, (size_t)nlen, value, vlen, (unsigned)(i % 256)), CR_OK);
        header_bytes += (size_t)nlen + vlen + 2;
        if (i == 250)
            CU_ASSERT_EQUAL(cr_object_find_header(obj, "x-header-7", 10).len, 7);
    }
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "etag", 4, "W/\"x\"", 5, 0), CR_OK);
    header_bytes += 4 + 5 + 2;
    obj = cr_object_finish(obj);
    CU_ASSERT_EQUAL(obj->num_headers, 501);
    CU_ASSERT_EQUAL(obj->header_bytes, header_bytes);
    for (i = 0; i != 500; ++i) {
        int nlen = snprintf(name, sizeof(name), "x-header-%zu", i);
        cr_str_t v = cr_object_find_header(obj, name, (size_t)nlen);
        size_t j, ok = 1;
        CU_ASSERT_EQUAL(v.len, i % 257);
        for (j = 0; j != v.len; ++j)
            ok &= v.base[j] == 'a' + (int)(i % 26);
        CU_ASSERT(ok);
        CU_ASSERT_EQUAL(v.base[v.len], '\0');
        CU_ASSERT(cr_str_eq(cr_object_header_name(obj, i), name, (size_t)nlen));
        CU_ASSERT_EQUAL(cr_object_header_token(obj, i), i % 256);
        CU_ASSERT_PTR_EQUAL(cr_object_header_value(obj, i).base, v.base);
    }
    CU_ASSERT(cr_str_eq(cr_object_etag(obj), "W/\"x\"", 5));
    CU_ASSERT_PTR_EQUAL(cr_object_etag(obj).base, cr_object_header_value(obj, 500).base);
    CU_ASSERT_EQUAL(obj->etag, 501);
    CU_ASSERT_EQUAL(obj->cost, test_packed_cost(4, 1, 0, 501, header_bytes, 0, 0, 0));
    cr_object_release(&obj);
}

/* Names and values longer than 16 bits can count, and a long key. */
static void test_object_long_parts(void)
{
    size_t keylen = 100000, namelen = 70000, valuelen = 200000;
    char *key = test_body(keylen, 'k'), *name = test_body(namelen, 'N'), *value = test_body(valuelen, 'v');
    cr_object_t *obj = cr_object_new(key, keylen, 200);
    cr_str_t n, v;
    size_t i, ok = 1;

    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "a", 1, "1", 1, 0), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, name, namelen, value, valuelen, 3), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "b", 1, value, valuelen, 0), CR_OK);
    obj = cr_object_finish(obj);
    CU_ASSERT(cr_str_eq(cr_object_key(obj), key, keylen));
    n = cr_object_header_name(obj, 1);
    v = cr_object_header_value(obj, 1);
    CU_ASSERT_EQUAL(n.len, namelen);
    CU_ASSERT_EQUAL(v.len, valuelen);
    for (i = 0; i != namelen; ++i)
        ok &= n.base[i] == 'n'; /* lower-cased */
    CU_ASSERT(ok);
    CU_ASSERT(memcmp(v.base, value, valuelen) == 0);
    CU_ASSERT_EQUAL(cr_object_header_token(obj, 1), 3);
    CU_ASSERT(test_header_is(obj, 0, "a", "1", 0));
    CU_ASSERT_EQUAL(cr_object_header_value(obj, 2).len, valuelen);
    CU_ASSERT_EQUAL(obj->cost, test_packed_cost(keylen, 1, 0, 3, 4 + namelen + 2 * valuelen + 5, 0, 0, 0));
    cr_object_release(&obj);
    free(key);
    free(name);
    free(value);
}

/* The builder's limits: each refusal leaves the object as it was. */
static void test_object_limits(void)
{
    cr_str_t names[CR_OBJECT_MAX_VARY + 1];
    cr_object_t *obj = cr_object_new("lim", 3, 200);
    char *huge;
    size_t i;

    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "a", 1, "b", 1, CR_OBJECT_MAX_TOKEN + 1), CR_ERROR);
    CU_ASSERT_EQUAL(obj->num_headers, 0);
    CU_ASSERT_FATAL((huge = calloc(1, (size_t)CR_OBJECT_MAX_NAME + 1)) != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, huge, (size_t)CR_OBJECT_MAX_NAME + 1, "b", 1, 0), CR_ERROR);
    CU_ASSERT_EQUAL(obj->num_headers, 0);
    CU_ASSERT_EQUAL(obj->header_bytes, 0);
    free(huge);

    for (i = 0; i != CR_OBJECT_MAX_HEADERS; ++i)
        if (cr_object_add_header(obj, "h", 1, "v", 1, 0) != CR_OK)
            break;
    CU_ASSERT_EQUAL(i, CR_OBJECT_MAX_HEADERS);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "etag", 4, "x", 1, 0), CR_ERROR);
    CU_ASSERT_EQUAL(obj->num_headers, CR_OBJECT_MAX_HEADERS);
    CU_ASSERT_EQUAL(obj->etag, 0);

    for (i = 0; i != CR_ARRAY_SIZE(names); ++i)
        names[i] = CR_STR("x");
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, names, 1, "x:1\n", 4), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, names, CR_ARRAY_SIZE(names), "", 0), CR_ERROR); /* too many names */
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, names, 0, "x:1\n", 4), CR_ERROR);               /* a key without names */
    CU_ASSERT_EQUAL(obj->num_vary, 1);
    CU_ASSERT(cr_str_eq(cr_object_variant_key(obj), "x:1\n", 4));
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, names, CR_OBJECT_MAX_VARY, "", 0), CR_OK);
    CU_ASSERT_EQUAL(obj->num_vary, CR_OBJECT_MAX_VARY);

    obj = cr_object_finish(obj);
    CU_ASSERT_EQUAL(obj->num_headers, CR_OBJECT_MAX_HEADERS);
    CU_ASSERT(test_header_is(obj, CR_OBJECT_MAX_HEADERS - 1, "h", "v", 0));
    CU_ASSERT_EQUAL(obj->num_vary, CR_OBJECT_MAX_VARY);
    CU_ASSERT(cr_str_eq(cr_object_vary_names(obj)[CR_OBJECT_MAX_VARY - 1], "x", 1));
    CU_ASSERT_EQUAL(cr_object_variant_key(obj).len, 0);
    cr_object_release(&obj);
}

/* Builds a standard object, with `grow` extra bytes added to the part selected by `what`. */
enum { GROW_KEY, GROW_NAME, GROW_VALUE, GROW_VARY_NAME, GROW_VARIANT_KEY, GROW_TAG, GROW_BODY, GROW_GZIP, GROW_BR, GROW_MAX };

static size_t test_cost_of(int what, size_t grow)
{
    char buf[4096];
    size_t base = 20, i, cost, len[GROW_MAX];
    cr_str_t vary[2], tags[2];
    cr_object_t *obj;

    assert(base + grow <= sizeof(buf));
    memset(buf, 'x', sizeof(buf));
    for (i = 0; i != GROW_MAX; ++i)
        len[i] = (i == GROW_TAG ? base + 1 : i == GROW_BR ? 0 : base) + ((int)i == what ? grow : 0);
    obj = cr_object_new(buf, len[GROW_KEY], 200);
    CU_ASSERT_FATAL(obj != NULL);
    for (i = 0; i != 10; ++i)
        CU_ASSERT(cr_object_add_header(obj, buf, i == 3 ? len[GROW_NAME] : base, buf, i == 7 ? len[GROW_VALUE] : base, 0) == CR_OK);
    vary[0] = cr_str(buf, base);
    vary[1] = cr_str(buf, len[GROW_VARY_NAME]);
    CU_ASSERT(cr_object_set_vary(obj, vary, 2, buf, len[GROW_VARIANT_KEY]) == CR_OK);
    tags[0] = cr_str(buf, base);
    tags[1] = cr_str(buf, len[GROW_TAG]); /* longer: distinct from the first */
    CU_ASSERT(cr_object_set_tags(obj, tags, 2) == CR_OK);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_body(len[GROW_BODY], 'b'), len[GROW_BODY]);
    cr_object_set_body(obj, CR_ENC_GZIP, test_body(len[GROW_GZIP], 'g'), len[GROW_GZIP]);
    if (len[GROW_BR] != 0)
        cr_object_set_body(obj, CR_ENC_BR, test_body(len[GROW_BR], 'r'), len[GROW_BR]);
    obj = cr_object_finish(obj);
    CU_ASSERT(cr_object_is_packed(obj));
    cost = obj->cost;
    /* exactly the documented layout */
    CU_ASSERT_EQUAL(cost, test_packed_cost(len[GROW_KEY], len[GROW_BR] != 0 ? 3 : 2,
                                           len[GROW_BODY] + len[GROW_GZIP] + len[GROW_BR], 10,
                                           8 * (2 * base + 2) + len[GROW_NAME] + len[GROW_VALUE] + base + base + 4, 2, 2,
                                           base + 1 + len[GROW_VARY_NAME] + 1 + len[GROW_VARIANT_KEY] + 1 + base + 1 +
                                               len[GROW_TAG] + 1));
    cr_object_release(&obj);
    return cost;
}

static void test_object_cost(void)
{
    static const size_t grows[] = {1, 7, 100, 1000, 3000};
    size_t base_cost = test_cost_of(GROW_MAX, 0), g;
    int what;

    /* key 20; 10 headers x (20 + 20 + 2 NULs); Vary: 2 names x 21 and a variant key of 21; tags 21 + 22; bodies 2 x 20 */
    CU_ASSERT_EQUAL(base_cost, test_packed_cost(20, 2, 40, 10, 10 * 42, 2, 2, 2 * 21 + 21 + 21 + 22));
    CU_ASSERT_EQUAL(test_cost_of(GROW_MAX, 0), base_cost); /* deterministic */
    for (what = 0; what != GROW_MAX; ++what) {
        for (g = 0; g != CR_ARRAY_SIZE(grows); ++g) {
            size_t c = test_cost_of(what, grows[g]);
            size_t extra = what == GROW_BR ? sizeof(cr_str_t) : 0; /* a third body takes a body table entry */
            /* the bytes added, give or take what the alignment of the parts after them takes (at most 3 + 7) */
            CU_ASSERT(c + 10 >= base_cost + grows[g] + extra);
            CU_ASSERT(c <= base_cost + grows[g] + extra + 10);
        }
    }
}

/* Vary and tags together, and the tags' owner following the object when finish moves it. */
static void test_object_vary_and_tags(void)
{
    cr_str_t vary[] = {CR_STR("X-Tenant")}, tags[] = {CR_STR("user-1"), CR_STR("all"), CR_STR("user-1")};
    cr_object_t *obj = cr_object_new("vt", 2, 200);
    size_t i;

    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "content-type", 12, "application/json", 16, 0), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary, 1, "x-tenant:acme\n", 14), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_tags(obj, tags, 3), CR_OK);
    CU_ASSERT_EQUAL(obj->num_tags, 2);
    CU_ASSERT_PTR_EQUAL(obj->tags[0].owner, obj);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("{}", 2), 2);
    obj = cr_object_finish(obj);

    CU_ASSERT(cr_object_is_packed(obj));
    CU_ASSERT_EQUAL(obj->num_tags, 2);
    for (i = 0; i != obj->num_tags; ++i) {
        CU_ASSERT_PTR_EQUAL(obj->tags[i].owner, obj);
        CU_ASSERT_PTR_NULL(obj->tags[i].st.entry);
        CU_ASSERT_EQUAL(obj->tags[i].hash, cr_hash(obj->tags[i].name.base, obj->tags[i].name.len));
        CU_ASSERT_EQUAL(obj->tags[i].name.base[obj->tags[i].name.len], '\0');
        /* inside the object's one block */
        CU_ASSERT((const char *)&obj->tags[i] > (const char *)obj && (const char *)&obj->tags[i] < (const char *)obj + obj->cost);
        CU_ASSERT(obj->tags[i].name.base > (const char *)obj && obj->tags[i].name.base < (const char *)obj + obj->cost);
    }
    CU_ASSERT(cr_str_eq(obj->tags[0].name, "user-1", 6));
    CU_ASSERT(cr_str_eq(obj->tags[1].name, "all", 3));
    CU_ASSERT_EQUAL((uintptr_t)obj->tags % _Alignof(cr_object_tag_t), 0);
    CU_ASSERT_EQUAL(obj->num_vary, 1);
    CU_ASSERT(cr_str_eq(cr_object_vary_names(obj)[0], "x-tenant", 8));
    CU_ASSERT(cr_str_eq(cr_object_variant_key(obj), "x-tenant:acme\n", 14));
    CU_ASSERT(test_header_is(obj, 0, "content-type", "application/json", 0));
    CU_ASSERT(cr_str_eq(cr_object_body(obj, CR_ENC_IDENTITY), "{}", 2));
    CU_ASSERT_EQUAL(obj->cost, test_packed_cost(2, 1, 2, 1, 12 + 16 + 2, 1, 2, 9 + 15 + 7 + 4));
    cr_object_release(&obj);
}

static void test_object_replace_parts(void)
{
    cr_str_t vary1[] = {CR_STR("a"), CR_STR("b")}, vary2[] = {CR_STR("C")}, tags[] = {CR_STR("t")};
    cr_object_t *obj = cr_object_new("k", 1, 200);

    CU_ASSERT_FATAL(obj != NULL);
    /* setting a body, Vary or tags twice frees the first (ASan would report the leak) */
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("first", 5), 5);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("second", 6), 6);
    cr_object_set_body(obj, CR_ENC_BR, test_dup("br1", 3), 3);
    cr_object_set_body(obj, CR_ENC_BR, test_dup("br22", 4), 4);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary1, 2, "a:1\nb:2\n", 8), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary2, 1, "c:3\n", 4), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_tags(obj, tags, 1), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_tags(obj, NULL, 0), CR_OK);
    CU_ASSERT_EQUAL(obj->num_tags, 0);
    CU_ASSERT_PTR_NULL(obj->tags);
    obj = cr_object_finish(obj);
    CU_ASSERT(cr_str_eq(cr_object_body(obj, CR_ENC_IDENTITY), "second", 6));
    CU_ASSERT(cr_str_eq(cr_object_body(obj, CR_ENC_BR), "br22", 4));
    CU_ASSERT_EQUAL(obj->num_vary, 1);
    CU_ASSERT(cr_str_eq(cr_object_vary_names(obj)[0], "c", 1));
    CU_ASSERT(cr_str_eq(cr_object_variant_key(obj), "c:3\n", 4));
    CU_ASSERT_PTR_NULL(obj->tags);
    CU_ASSERT_EQUAL(obj->cost, test_packed_cost(1, 2, 10, 0, 0, 1, 0, 2 + 5));
    cr_object_release(&obj);

    /* clearing Vary */
    obj = cr_object_new("k", 1, 200);
    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary1, 2, "a:1\nb:2\n", 8), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, NULL, 0, NULL, 0), CR_OK);
    obj = cr_object_finish(obj);
    CU_ASSERT_EQUAL(obj->num_vary, 0);
    CU_ASSERT_PTR_NULL(cr_object_vary_names(obj));
    CU_ASSERT_EQUAL(cr_object_variant_key(obj).len, 0);
    CU_ASSERT_EQUAL(obj->cost, test_packed_cost(1, 1, 0, 0, 0, 0, 0, 0));
    cr_object_release(&obj);

    /* an unfinished object can be released (error paths in the handler) */
    obj = cr_object_new("unfinished", 10, 200);
    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "a", 1, "b", 1, 0), CR_OK);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("body", 4), 4);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary1, 2, "a:1\nb:2\n", 8), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_tags(obj, tags, 1), CR_OK);
    cr_object_release(&obj);
    CU_ASSERT_PTR_NULL(obj);
}

static void test_object_refcount(void)
{
    cr_object_t *obj = cr_object_new("rc", 2, 200), *r1, *r2;

    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("payload", 7), 7);
    obj = cr_object_finish(obj);
    r1 = obj;
    cr_object_addref(r1);
    r2 = obj;
    cr_object_addref(r2);
    CU_ASSERT_EQUAL(obj->refcnt, 3);
    cr_object_release(&r1);
    CU_ASSERT_PTR_NULL(r1);
    CU_ASSERT_EQUAL(obj->refcnt, 2);
    cr_object_release(&obj);
    CU_ASSERT_PTR_NULL(obj);
    /* still readable through the last reference */
    CU_ASSERT_EQUAL(r2->refcnt, 1);
    CU_ASSERT(cr_str_eq(cr_object_body(r2, CR_ENC_IDENTITY), "payload", 7));
    cr_object_release(&r2); /* frees: ASan/LSan report a leak or a double free otherwise */
    CU_ASSERT_PTR_NULL(r2);
}

#define TEST_RC_THREADS 4
#define TEST_RC_ITERS 50000

static void *test_refcount_thread(void *arg)
{
    cr_object_t *obj = arg;
    int i;
    for (i = 0; i != TEST_RC_ITERS; ++i) {
        cr_object_t *ref = obj;
        cr_object_addref(ref);
        if (cr_object_body(ref, CR_ENC_IDENTITY).len != 4)
            abort();
        cr_object_release(&ref);
    }
    cr_object_release(&obj); /* the reference the main thread gave this thread */
    return NULL;
}

static void test_object_refcount_threads(void)
{
    pthread_t threads[TEST_RC_THREADS];
    cr_object_t *obj = cr_object_new("mt", 2, 200);
    int i;

    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("data", 4), 4);
    obj = cr_object_finish(obj);
    for (i = 0; i != TEST_RC_THREADS; ++i) {
        cr_object_addref(obj);
        CU_ASSERT_FATAL(pthread_create(&threads[i], NULL, test_refcount_thread, obj) == 0);
    }
    for (i = 0; i != TEST_RC_THREADS; ++i)
        pthread_join(threads[i], NULL);
    CU_ASSERT_EQUAL(obj->refcnt, 1);
    cr_object_release(&obj);

    /* the last release happening on a worker thread frees there */
    obj = cr_object_new("mt2", 3, 200);
    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("data", 4), 4);
    obj = cr_object_finish(obj);
    for (i = 0; i != TEST_RC_THREADS; ++i) {
        cr_object_addref(obj);
        CU_ASSERT_FATAL(pthread_create(&threads[i], NULL, test_refcount_thread, obj) == 0);
    }
    cr_object_release(&obj);
    for (i = 0; i != TEST_RC_THREADS; ++i)
        pthread_join(threads[i], NULL);
}

static void test_object_freshness(void)
{
    uint64_t t0 = 1700000000000ull; /* fake clock */
    cr_object_t *obj = cr_object_new("fresh", 5, 200);

    CU_ASSERT_FATAL(obj != NULL);
    obj = cr_object_finish(obj);
    obj->response_time_ms = t0;
    obj->initial_age_ms = 5000;
    obj->lifetime_ms = 60000;

    CU_ASSERT_EQUAL(cr_object_age_ms(obj, t0), 5000);
    CU_ASSERT_EQUAL(cr_object_age_ms(obj, t0 + 1234), 6234);
    CU_ASSERT_EQUAL(cr_object_age_ms(obj, t0 - 1000), 5000); /* clock went backwards: no negative residence */
    CU_ASSERT(cr_object_is_fresh(obj, t0));
    CU_ASSERT(cr_object_is_fresh(obj, t0 + 54999)); /* age 59999 < 60000 */
    CU_ASSERT(!cr_object_is_fresh(obj, t0 + 55000)); /* age == lifetime: stale */
    CU_ASSERT(!cr_object_is_fresh(obj, t0 + 3600000));

    obj->flags = CR_OBJ_NO_CACHE;
    CU_ASSERT(!cr_object_is_fresh(obj, t0));
    obj->flags = CR_OBJ_INVALIDATED;
    CU_ASSERT(!cr_object_is_fresh(obj, t0));
    obj->flags = CR_OBJ_MUST_REVALIDATE | CR_OBJ_FORCED;
    CU_ASSERT(cr_object_is_fresh(obj, t0));
    CU_ASSERT_EQUAL(cr_object_invalidate(obj), 1);
    CU_ASSERT_EQUAL(cr_object_invalidate(obj), 0);
    CU_ASSERT_EQUAL(cr_object_flags(obj), CR_OBJ_MUST_REVALIDATE | CR_OBJ_FORCED | CR_OBJ_INVALIDATED);

    obj->flags = 0;
    obj->lifetime_ms = 0; /* stored stale */
    CU_ASSERT(!cr_object_is_fresh(obj, t0));
    obj->initial_age_ms = 0;
    CU_ASSERT(!cr_object_is_fresh(obj, t0));

    /* clamped windows: a lifetime beyond 49.7 days saturates, and an initial age that saturated too stays stale */
    CU_ASSERT_EQUAL(cr_object_clamp_ms(60000), 60000);
    CU_ASSERT_EQUAL(cr_object_clamp_ms((uint64_t)UINT32_MAX + 5), UINT32_MAX);
    CU_ASSERT_EQUAL(cr_object_clamp_ms(UINT64_MAX), UINT32_MAX);
    obj->lifetime_ms = cr_object_clamp_ms(365ull * 86400 * 1000);
    obj->initial_age_ms = 0;
    CU_ASSERT(cr_object_is_fresh(obj, t0 + 40ull * 86400 * 1000));
    CU_ASSERT(!cr_object_is_fresh(obj, t0 + 50ull * 86400 * 1000)); /* stale earlier than a year: allowed */
    obj->initial_age_ms = cr_object_clamp_ms(400ull * 86400 * 1000);
    CU_ASSERT(!cr_object_is_fresh(obj, t0));
    /* windows add up in 64 bits (handler.c and flight.c compare age against lifetime + window) */
    obj->swr_ms = UINT32_MAX;
    CU_ASSERT((uint64_t)obj->lifetime_ms + obj->swr_ms > UINT32_MAX);
    cr_object_release(&obj);
}

void cr_test_register_object(void)
{
    CU_pSuite suite = CU_add_suite("object", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "build", test_object_build);
    CU_add_test(suite, "minimal", test_object_minimal);
    CU_add_test(suite, "many headers", test_object_many_headers);
    CU_add_test(suite, "long key, names and values", test_object_long_parts);
    CU_add_test(suite, "limits", test_object_limits);
    CU_add_test(suite, "cost counts every part, exactly", test_object_cost);
    CU_add_test(suite, "vary and tags, finish moves the owner", test_object_vary_and_tags);
    CU_add_test(suite, "replace parts", test_object_replace_parts);
    CU_add_test(suite, "refcount", test_object_refcount);
    CU_add_test(suite, "refcount threads", test_object_refcount_threads);
    CU_add_test(suite, "freshness (fake clock)", test_object_freshness);
}
