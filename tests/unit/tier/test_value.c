/*
 * test_value.c: unit tests for sidecar/tier/value.c, the shared-tier value format (protocol v1).
 *
 * Round trips of full and minimal objects (headers and their h2o tokens, Vary and the variant key, tags, the three
 * codings, the flags that cross pods and those that do not, the times: the age is carried, so decoding later gives
 * a larger age); the encoder's refusals (too big, unfit); and the reader's reasons, each from a crafted buffer: every
 * prefix of a valid value, every byte of one flipped, and values written here by hand after the README's layout
 * (tv_value_*, independent of the encoder) with a right checksum but a future version, another key, a bad field.
 * The allocation failures run on a second copy of value.c whose malloc fails on request. Run under ASan/LSan, a leak
 * or an overread fails the run.
 */
#include <CUnit/CUnit.h>
#include <h2o.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "corral/http/http.h"
#include "corral/http/invalidate.h"
#include "corral/tier/value.h"

void cr_test_register_value(void);

static const char tv_key[] = "example.com\n/a/b?c=1";
#define TV_KEYLEN (sizeof(tv_key) - 1)
#define TV_T0 1764658800000ull /* a wall-clock ms, the response time of the test objects */

static char *tv_dup(const char *s, size_t len)
{
    char *p = malloc(len != 0 ? len : 1);
    CU_ASSERT_FATAL(p != NULL);
    memcpy(p, s, len);
    return p;
}

static unsigned tv_token(const char *name)
{
    const h2o_token_t *t = h2o_lookup_token(name, strlen(name));
    return t != NULL ? cr_token_index(&t->buf) : 0;
}

/* A finished object with several headers (tokens as objbuild gives them), Vary, tags, the three codings. */
static cr_object_t *tv_full(void)
{
    cr_str_t vary[] = {CR_STR("X-Device"), CR_STR("accept-language")};
    cr_str_t tags[] = {CR_STR("product-7"), CR_STR("list"), CR_STR("t\xff\x01")};
    static const char vk[] = "x-device:phone\naccept-language:fr\n";
    cr_object_t *obj = cr_object_new(tv_key, TV_KEYLEN, 200);
    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, H2O_STRLIT("Content-Type"), H2O_STRLIT("text/html"), tv_token("content-type")), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, H2O_STRLIT("etag"), H2O_STRLIT("\"v1\""), tv_token("etag")), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, H2O_STRLIT("x-custom"), H2O_STRLIT(""), 0), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, H2O_STRLIT("cache-control"), H2O_STRLIT("public, max-age=60"), tv_token("cache-control")),
                    CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, H2O_STRLIT("x-custom"), H2O_STRLIT("second \x80 value"), 0), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary, 2, vk, sizeof(vk) - 1), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_tags(obj, tags, 3), CR_OK);
    cr_object_set_body(obj, CR_ENC_IDENTITY, tv_dup("<html>hello, hello, hello</html>", 32), 32);
    cr_object_set_body(obj, CR_ENC_GZIP, tv_dup("\x1f\x8b gz", 5), 5);
    cr_object_set_body(obj, CR_ENC_BR, tv_dup("\0br\0", 4), 4);
    obj->flags |= CR_OBJ_FORCED | CR_OBJ_MUST_REVALIDATE | CR_OBJ_NO_CACHE | CR_OBJ_SHAREABLE | CR_OBJ_CODINGS_PENDING;
    obj->path_hash = 42;
    obj = cr_object_finish(obj);
    obj->response_time_ms = TV_T0;
    obj->initial_age_ms = 5000;
    obj->lifetime_ms = 60000;
    obj->swr_ms = 10000;
    obj->sie_ms = 20000;
    return obj;
}

/* A finished object with nothing but a key, a status and freshness. */
static cr_object_t *tv_minimal(int status)
{
    cr_object_t *obj = cr_object_new(tv_key, TV_KEYLEN, status);
    CU_ASSERT_FATAL(obj != NULL);
    obj = cr_object_finish(obj);
    obj->response_time_ms = TV_T0;
    obj->lifetime_ms = 1000;
    return obj;
}

static int tv_str_is(cr_str_t a, cr_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0) && a.base != NULL && a.base[a.len] == '\0';
}

/* Asserts that `got` holds everything of `want` that a value carries. */
static void tv_assert_same(const cr_object_t *want, const cr_object_t *got)
{
    unsigned carried = CR_OBJ_FORCED | CR_OBJ_MUST_REVALIDATE | CR_OBJ_NO_CACHE | CR_OBJ_SHAREABLE | CR_OBJ_ENCODED | CR_OBJ_KEEP_CODING;
    size_t i;
    int e;

    CU_ASSERT_FATAL(got != NULL);
    CU_ASSERT(got->cost != 0 && cr_object_is_packed(got));
    CU_ASSERT(tv_str_is(cr_object_key(got), cr_object_key(want)));
    CU_ASSERT_EQUAL(got->hash, want->hash);
    CU_ASSERT_EQUAL(got->status, want->status);
    CU_ASSERT_EQUAL(cr_object_flags(got), cr_object_flags(want) & carried);
    CU_ASSERT_EQUAL(got->response_time_ms, want->response_time_ms);
    CU_ASSERT_EQUAL(got->initial_age_ms, want->initial_age_ms);
    CU_ASSERT_EQUAL(got->lifetime_ms, want->lifetime_ms);
    CU_ASSERT_EQUAL(got->swr_ms, want->swr_ms);
    CU_ASSERT_EQUAL(got->sie_ms, want->sie_ms);
    CU_ASSERT_EQUAL(got->path_hash, 0);
    CU_ASSERT_EQUAL_FATAL(got->num_headers, want->num_headers);
    for (i = 0; i != want->num_headers; ++i) {
        CU_ASSERT(tv_str_is(cr_object_header_name(got, i), cr_object_header_name(want, i)));
        CU_ASSERT(tv_str_is(cr_object_header_value(got, i), cr_object_header_value(want, i)));
        CU_ASSERT_EQUAL(cr_object_header_token(got, i), cr_object_header_token(want, i));
    }
    CU_ASSERT_EQUAL(got->etag, want->etag);
    CU_ASSERT_EQUAL_FATAL(got->num_vary, want->num_vary);
    for (i = 0; i != want->num_vary; ++i)
        CU_ASSERT(tv_str_is(cr_object_vary_names(got)[i], cr_object_vary_names(want)[i]));
    CU_ASSERT(tv_str_is(cr_object_variant_key(got), cr_object_variant_key(want)));
    CU_ASSERT_EQUAL_FATAL(got->num_tags, want->num_tags);
    for (i = 0; i != want->num_tags; ++i) {
        CU_ASSERT(tv_str_is(got->tags[i].name, want->tags[i].name));
        CU_ASSERT_EQUAL(got->tags[i].hash, want->tags[i].hash);
        CU_ASSERT_PTR_EQUAL(got->tags[i].owner, got);
    }
    for (e = 0; e != CR_ENC_MAX; ++e) {
        cr_str_t a = cr_object_body(want, (cr_encoding_t)e), b = cr_object_body(got, (cr_encoding_t)e);
        CU_ASSERT_EQUAL(a.base == NULL, b.base == NULL);
        CU_ASSERT_EQUAL(a.len, b.len);
        if (a.base != NULL && b.base != NULL && a.len != 0)
            CU_ASSERT(memcmp(a.base, b.base, a.len) == 0);
    }
}

/* Encodes obj (at TV_T0, no size bound); the caller frees the value. */
static char *tv_encode(const cr_object_t *obj, size_t *len)
{
    char *v = NULL;
    CU_ASSERT_EQUAL_FATAL(cr_tier_value_encode(obj, TV_T0, 0, SIZE_MAX, &v, len), CR_OK);
    CU_ASSERT_FATAL(v != NULL);
    return v;
}

/* Decodes and returns the reason (the object, if any, released). */
static cr_tier_value_error_t tv_why(const char *v, size_t len, uint64_t now)
{
    cr_tier_value_error_t why = CR_TIER_VALUE_NUM_ERRORS;
    cr_object_t *obj = (cr_object_t *)(uintptr_t)1;
    int rc = cr_tier_value_decode(v, len, tv_key, TV_KEYLEN, now, &obj, &why, NULL);
    CU_ASSERT_EQUAL(rc == CR_OK, why == CR_TIER_VALUE_OK);
    CU_ASSERT_EQUAL(obj != NULL, rc == CR_OK);
    cr_object_release(&obj);
    return why;
}

static void test_value_round_trip(void)
{
    cr_object_t *obj = tv_full(), *got = NULL;
    cr_tier_value_error_t why;
    size_t len;
    char *v = tv_encode(obj, &len);

    /* decoded 30 s after the response: age 5 s + 30 s, on whatever pod reads it */
    CU_ASSERT_EQUAL(cr_tier_value_decode(v, len, tv_key, TV_KEYLEN, TV_T0 + 30000, &got, &why, NULL), CR_OK);
    CU_ASSERT_EQUAL(why, CR_TIER_VALUE_OK);
    tv_assert_same(obj, got);
    CU_ASSERT_EQUAL(cr_object_age_ms(got, TV_T0 + 30000), 35000);
    CU_ASSERT(cr_object_is_fresh(got, TV_T0 + 30000) == 0); /* NO_CACHE travels */
    CU_ASSERT_EQUAL(cr_object_flags(got) & CR_OBJ_CODINGS_PENDING, 0);
    CU_ASSERT(cr_str_eq(cr_object_etag(got), H2O_STRLIT("\"v1\"")));
    CU_ASSERT_EQUAL(cr_object_header_token(got, 0), tv_token("content-type"));
    CU_ASSERT_NOT_EQUAL(cr_object_header_token(got, 0), 0);
    {
        /* the writer's invalidation log position crosses with the value, all 64 bits of it */
        char *v2 = NULL;
        size_t len2;
        uint64_t pos = 0;
        cr_object_t *again = NULL;
        CU_ASSERT_EQUAL_FATAL(cr_tier_value_encode(obj, TV_T0, 0x0123456789abcdefull, SIZE_MAX, &v2, &len2), CR_OK);
        CU_ASSERT_EQUAL(len2, len);
        CU_ASSERT_EQUAL(cr_tier_value_decode(v2, len2, tv_key, TV_KEYLEN, TV_T0, &again, &why, &pos), CR_OK);
        CU_ASSERT_EQUAL(pos, 0x0123456789abcdefull);
        cr_object_release(&again);
        free(v2);
    }
    CU_ASSERT_EQUAL(cr_tier_value_ttl_ms(got, TV_T0 + 30000), 60000 + 20000 - 35000);
    cr_object_release(&got);
    cr_object_release(&obj);
    free(v);
}

static void test_value_encoded_and_minimal(void)
{
    cr_object_t *obj = cr_object_new(tv_key, TV_KEYLEN, 404), *got = NULL;
    cr_tier_value_error_t why;
    size_t len;
    char *v;

    /* held only in the upstream's gzip, marked undecodable: the identity body is empty and stays so */
    cr_object_set_body(obj, CR_ENC_GZIP, tv_dup("\x1f\x8b", 2), 2);
    obj->flags |= CR_OBJ_ENCODED | CR_OBJ_KEEP_CODING;
    obj = cr_object_finish(obj);
    obj->response_time_ms = TV_T0;
    obj->lifetime_ms = 1000;
    v = tv_encode(obj, &len);
    CU_ASSERT_EQUAL(cr_tier_value_decode(v, len, tv_key, TV_KEYLEN, TV_T0 + 500, &got, &why, NULL), CR_OK);
    tv_assert_same(obj, got);
    CU_ASSERT_PTR_NULL(cr_object_body(got, CR_ENC_BR).base);
    cr_object_release(&got);
    cr_object_release(&obj);
    free(v);

    obj = tv_minimal(301);
    v = tv_encode(obj, &len);
    CU_ASSERT_EQUAL(len, 20 + 4 + TV_KEYLEN + 4 + 24 + 8 + 2 + 1 + 4 + 4 + 1 + 8);
    CU_ASSERT_EQUAL(cr_tier_value_decode(v, len, tv_key, TV_KEYLEN, TV_T0, &got, &why, NULL), CR_OK);
    tv_assert_same(obj, got);
    CU_ASSERT(cr_object_is_fresh(got, TV_T0 + 999));
    cr_object_release(&got);
    cr_object_release(&obj);
    free(v);
}

static void test_value_encoder_refusals(void)
{
    cr_object_t *obj = tv_full();
    size_t len, len2;
    char *v = tv_encode(obj, &len), *v2 = (char *)1;

    CU_ASSERT_EQUAL(cr_tier_value_encode(obj, TV_T0, 0, len - 1, &v2, &len2), CR_TIER_VALUE_TOO_BIG);
    CU_ASSERT_PTR_NULL(v2);
    CU_ASSERT_EQUAL(cr_tier_value_encode(obj, TV_T0, 0, 10, &v2, &len2), CR_TIER_VALUE_TOO_BIG);
    CU_ASSERT_EQUAL(cr_tier_value_encode(obj, TV_T0, 0, len, &v2, &len2), CR_OK);
    CU_ASSERT(len2 == len && memcmp(v, v2, len) == 0);
    free(v2);
    /* past lifetime + max(swr, sie) - initial age: of no use to anyone */
    CU_ASSERT_EQUAL(cr_tier_value_ttl_ms(obj, TV_T0 + 75000 - 1), 1);
    CU_ASSERT_EQUAL(cr_tier_value_ttl_ms(obj, TV_T0 + 75000), 0);
    CU_ASSERT_EQUAL(cr_tier_value_encode(obj, TV_T0 + 75000, 0, SIZE_MAX, &v2, &len2), CR_TIER_VALUE_UNFIT);
    CU_ASSERT_EQUAL(tv_why(v, len, TV_T0 + 75000 - 1), CR_TIER_VALUE_OK);
    CU_ASSERT_EQUAL(tv_why(v, len, TV_T0 + 75000), CR_TIER_VALUE_EXPIRED);
    /* a response time ahead of the reader's clock (skew): age is the initial age */
    CU_ASSERT_EQUAL(tv_why(v, len, TV_T0 - 3600000), CR_TIER_VALUE_OK);
    cr_object_invalidate(obj);
    CU_ASSERT_EQUAL(cr_tier_value_encode(obj, TV_T0, 0, SIZE_MAX, &v2, &len2), CR_TIER_VALUE_UNFIT);
    CU_ASSERT_PTR_NULL(v2);
    cr_object_release(&obj);
    free(v);

    obj = tv_minimal(200);
    obj->flags |= CR_OBJ_PASS;
    CU_ASSERT_EQUAL(cr_tier_value_encode(obj, TV_T0, 0, SIZE_MAX, &v2, &len2), CR_TIER_VALUE_UNFIT);
    cr_object_release(&obj);
    obj = tv_minimal(99);
    CU_ASSERT_EQUAL(cr_tier_value_encode(obj, TV_T0, 0, SIZE_MAX, &v2, &len2), CR_TIER_VALUE_UNFIT);
    cr_object_release(&obj);
    obj = tv_minimal(200);
    obj->flags |= CR_OBJ_ENCODED; /* encoded without a coding: not a real object, refused rather than sent */
    CU_ASSERT_EQUAL(cr_tier_value_encode(obj, TV_T0, 0, SIZE_MAX, &v2, &len2), CR_TIER_VALUE_UNFIT);
    cr_object_release(&obj);
}

static void test_value_prefixes_and_flips(void)
{
    cr_object_t *obj = tv_full();
    size_t len, i, m;
    char *v = tv_encode(obj, &len), *w = malloc(len);
    static const unsigned char masks[] = {0x01, 0x80, 0xff};

    CU_ASSERT_FATAL(w != NULL);
    for (i = 0; i != len; ++i) {
        char *prefix = tv_dup(v, i); /* an exact-size copy, so ASan sees a read past the prefix */
        CU_ASSERT_EQUAL(tv_why(prefix, i, TV_T0), CR_TIER_VALUE_SHORT);
        free(prefix);
    }
    for (i = 0; i != len; ++i) {
        for (m = 0; m != sizeof(masks); ++m) {
            cr_tier_value_error_t why, want = i < 4 ? CR_TIER_VALUE_FOREIGN : i < 6 ? CR_TIER_VALUE_VERSION
                                                  : i < 8 ? CR_TIER_VALUE_MALFORMED : CR_TIER_VALUE_CORRUPT;
            memcpy(w, v, len);
            w[i] ^= (char)masks[m];
            why = tv_why(w, len, TV_T0);
            if (i >= 8 && i < 16) { /* the declared length: longer than the value (short) or shorter (malformed) */
                CU_ASSERT(why == CR_TIER_VALUE_SHORT || why == CR_TIER_VALUE_MALFORMED);
            } else {
                CU_ASSERT_EQUAL(why, want);
            }
        }
    }
    CU_ASSERT_EQUAL(tv_why(v, len, TV_T0), CR_TIER_VALUE_OK);
    /* the key is checked */
    {
        cr_object_t *got = (cr_object_t *)1;
        cr_tier_value_error_t why;
        CU_ASSERT_EQUAL(cr_tier_value_decode(v, len, tv_key, TV_KEYLEN - 1, TV_T0, &got, &why, NULL), CR_ERROR);
        CU_ASSERT_EQUAL(why, CR_TIER_VALUE_KEY);
        CU_ASSERT_PTR_NULL(got);
        CU_ASSERT_EQUAL(cr_tier_value_decode(v, len, "example.com\n/a/b?c=2", TV_KEYLEN, TV_T0, &got, &why, NULL), CR_ERROR);
        CU_ASSERT_EQUAL(why, CR_TIER_VALUE_KEY);
    }
    free(w);
    free(v);
    cr_object_release(&obj);
}

/* ---- values written by hand after the README's layout ---- */

typedef struct {
    unsigned char b[4096];
    size_t len;
} tv_value_t;

static void tv_put(tv_value_t *t, uint64_t v, size_t bytes)
{
    size_t i;
    CU_ASSERT_FATAL(t->len + bytes <= sizeof(t->b));
    for (i = 0; i != bytes; ++i)
        t->b[t->len++] = (unsigned char)(v >> (8 * i));
}

static void tv_put_bytes(tv_value_t *t, const void *p, size_t len)
{
    CU_ASSERT_FATAL(t->len + len <= sizeof(t->b));
    memcpy(t->b + t->len, p, len);
    t->len += len;
}

static void tv_put_str(tv_value_t *t, const char *s)
{
    tv_put(t, strlen(s), 4);
    tv_put_bytes(t, s, strlen(s));
}

/* The header and everything up to the headers' count: key, status, flags, times (response TV_T0, lifetime 60 s). */
static void tv_value_start(tv_value_t *t, unsigned version, const char *key, unsigned status, unsigned wire_flags)
{
    t->len = 0;
    tv_put_bytes(t, "CRTV", 4);
    tv_put(t, version, 2);
    tv_put(t, 0, 2);
    tv_put(t, 0, 8);  /* length, set by tv_value_end */
    tv_put(t, 0, 4);  /* checksum, likewise */
    tv_put_str(t, key);
    tv_put(t, status, 2);
    tv_put(t, wire_flags, 2);
    tv_put(t, TV_T0, 8);
    tv_put(t, 0, 4);
    tv_put(t, 60000, 4);
    tv_put(t, 0, 4);
    tv_put(t, 0, 4);
    tv_put(t, 0, 8); /* log position */
}

/* Sets the length and the checksum (CRC-32 of bytes [0,16) and [20,end)). */
static void tv_value_end(tv_value_t *t)
{
    uLong crc;
    size_t i;
    for (i = 0; i != 8; ++i)
        t->b[8 + i] = (unsigned char)((uint64_t)t->len >> (8 * i));
    crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, t->b, 16);
    crc = crc32(crc, t->b + 20, (uInt)(t->len - 20));
    for (i = 0; i != 4; ++i)
        t->b[16 + i] = (unsigned char)(crc >> (8 * i));
}

/* The rest of a small valid value after the times: one header, no Vary, `num_tags` tags, an identity body. */
static void tv_value_rest(tv_value_t *t, const char *hname, size_t num_tags, unsigned mask)
{
    size_t i;
    tv_put(t, 1, 2);
    tv_put(t, strlen(hname), 4);
    tv_put(t, 3, 4);
    tv_put_bytes(t, hname, strlen(hname));
    tv_put_bytes(t, "abc", 3);
    tv_put(t, 0, 1);
    tv_put(t, 0, 4);
    tv_put(t, num_tags, 4);
    for (i = 0; i != num_tags; ++i) {
        char tag[24];
        snprintf(tag, sizeof(tag), "t%zu", i);
        tv_put_str(t, tag);
    }
    tv_put(t, mask, 1);
    tv_put(t, 2, 8);
    tv_put_bytes(t, "hi", 2);
    if (mask & 2) {
        tv_put(t, 1, 8);
        tv_put_bytes(t, "z", 1);
    }
}

static cr_tier_value_error_t tv_crafted(unsigned version, const char *key, unsigned status, unsigned flags, const char *hname,
                                        size_t num_tags, unsigned mask, size_t trailing)
{
    tv_value_t t;
    tv_value_start(&t, version, key, status, flags);
    tv_value_rest(&t, hname, num_tags, mask);
    while (trailing-- != 0)
        tv_put(&t, 0, 1);
    tv_value_end(&t);
    return tv_why((const char *)t.b, t.len, TV_T0 + 1000);
}

static void test_value_crafted(void)
{
    tv_value_t t;

    /* the layout as the README gives it decodes, with a token looked up from the name */
    tv_value_start(&t, 1, tv_key, 200, 1u << 3);
    tv_value_rest(&t, "content-type", 2, 1);
    tv_value_end(&t);
    {
        cr_object_t *got = NULL;
        cr_tier_value_error_t why;
        CU_ASSERT_EQUAL_FATAL(cr_tier_value_decode((const char *)t.b, t.len, tv_key, TV_KEYLEN, TV_T0, &got, &why, NULL), CR_OK);
        CU_ASSERT_EQUAL(cr_object_flags(got), CR_OBJ_SHAREABLE);
        CU_ASSERT_EQUAL(cr_object_header_token(got, 0), tv_token("content-type"));
        CU_ASSERT(cr_str_eq(cr_object_header_value(got, 0), H2O_STRLIT("abc")));
        CU_ASSERT_EQUAL(got->num_tags, 2);
        CU_ASSERT(cr_str_eq(cr_object_body(got, CR_ENC_IDENTITY), H2O_STRLIT("hi")));
        CU_ASSERT_EQUAL(got->lifetime_ms, 60000);
        cr_object_release(&got);
    }
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "x-a", 0, 1 | 2, 0), CR_TIER_VALUE_OK); /* identity + gzip */
    /* a later (or earlier) format, with its checksum right: unknown, whatever follows */
    CU_ASSERT_EQUAL(tv_crafted(2, tv_key, 200, 0, "x-a", 0, 1, 0), CR_TIER_VALUE_VERSION);
    CU_ASSERT_EQUAL(tv_crafted(0, tv_key, 200, 0, "x-a", 0, 1, 0), CR_TIER_VALUE_VERSION);
    CU_ASSERT_EQUAL(tv_crafted(1, "example.com\n/other", 200, 0, "x-a", 0, 1, 0), CR_TIER_VALUE_KEY);
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 1u << 6, "x-a", 0, 1, 0), CR_TIER_VALUE_MALFORMED); /* unknown flag */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 1u << 5, "x-a", 0, 1, 0), CR_TIER_VALUE_MALFORMED); /* keep-coding alone */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 1u << 4, "x-a", 0, 1, 0), CR_TIER_VALUE_MALFORMED); /* encoded, no coding */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 99, 0, "x-a", 0, 1, 0), CR_TIER_VALUE_MALFORMED);
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 1000, 0, "x-a", 0, 1, 0), CR_TIER_VALUE_MALFORMED);
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "X-A", 0, 1, 0), CR_TIER_VALUE_MALFORMED);  /* not lower-case */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "x a", 0, 1, 0), CR_TIER_VALUE_MALFORMED);  /* not a token */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "", 0, 1, 0), CR_TIER_VALUE_MALFORMED);     /* empty name */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "x-a", 0, 2, 0), CR_TIER_VALUE_MALFORMED);  /* no identity */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "x-a", 0, 9, 0), CR_TIER_VALUE_MALFORMED);  /* unknown coding */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "x-a", 0, 1, 1), CR_TIER_VALUE_MALFORMED);  /* trailing byte */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "x-a", CR_SURROGATE_KEYS_MAX, 1, 0), CR_TIER_VALUE_OK);
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "x-a", CR_SURROGATE_KEYS_MAX + 1, 1, 0), CR_TIER_VALUE_LIMIT);

    /* a header value with CR LF (header injection downstream) and a duplicate tag */
    tv_value_start(&t, 1, tv_key, 200, 0);
    tv_put(&t, 1, 2);
    tv_put(&t, 3, 4);
    tv_put(&t, 4, 4);
    tv_put_bytes(&t, "x-ab\r\nc", 7);
    tv_put(&t, 0, 1);
    tv_put(&t, 0, 4);
    tv_put(&t, 0, 4);
    tv_put(&t, 1, 1);
    tv_put(&t, 0, 8);
    tv_value_end(&t);
    CU_ASSERT_EQUAL(tv_why((const char *)t.b, t.len, TV_T0), CR_TIER_VALUE_MALFORMED);
    tv_value_start(&t, 1, tv_key, 200, 0);
    tv_put(&t, 0, 2);
    tv_put(&t, 0, 1);
    tv_put(&t, 0, 4);
    tv_put(&t, 2, 4);
    tv_put_str(&t, "dup");
    tv_put_str(&t, "dup");
    tv_put(&t, 1, 1);
    tv_put(&t, 0, 8);
    tv_value_end(&t);
    CU_ASSERT_EQUAL(tv_why((const char *)t.b, t.len, TV_T0), CR_TIER_VALUE_MALFORMED);
    /* a variant key without Vary names; a length that points past the end (checksum right) */
    tv_value_start(&t, 1, tv_key, 200, 0);
    tv_put(&t, 0, 2);
    tv_put(&t, 0, 1);
    tv_put_str(&t, "k:v\n");
    tv_put(&t, 0, 4);
    tv_put(&t, 1, 1);
    tv_put(&t, 0, 8);
    tv_value_end(&t);
    CU_ASSERT_EQUAL(tv_why((const char *)t.b, t.len, TV_T0), CR_TIER_VALUE_MALFORMED);
    tv_value_start(&t, 1, tv_key, 200, 0);
    tv_put(&t, 0, 2);
    tv_put(&t, 0, 1);
    tv_put(&t, 0, 4);
    tv_put(&t, 0, 4);
    tv_put(&t, 1, 1);
    tv_put(&t, UINT64_MAX, 8);
    tv_value_end(&t);
    CU_ASSERT_EQUAL(tv_why((const char *)t.b, t.len, TV_T0), CR_TIER_VALUE_MALFORMED);
    /* expired: lifetime 60 s and no stale window */
    CU_ASSERT_EQUAL(tv_crafted(1, tv_key, 200, 0, "x-a", 0, 1, 0), CR_TIER_VALUE_OK);
    tv_value_start(&t, 1, tv_key, 200, 0);
    tv_value_rest(&t, "x-a", 0, 1);
    tv_value_end(&t);
    CU_ASSERT_EQUAL(tv_why((const char *)t.b, t.len, TV_T0 + 60000), CR_TIER_VALUE_EXPIRED);
}

static void test_value_foreign_and_names(void)
{
    static const char plain[] = "a value some other program stored under this key";
    CU_ASSERT_EQUAL(tv_why(plain, sizeof(plain) - 1, TV_T0), CR_TIER_VALUE_FOREIGN);
    CU_ASSERT_EQUAL(tv_why("abcd", 4, TV_T0), CR_TIER_VALUE_FOREIGN);
    CU_ASSERT_EQUAL(tv_why("CRTV", 4, TV_T0), CR_TIER_VALUE_SHORT);
    CU_ASSERT_EQUAL(tv_why("CR", 2, TV_T0), CR_TIER_VALUE_SHORT);
    CU_ASSERT_EQUAL(tv_why(NULL, 0, TV_T0), CR_TIER_VALUE_SHORT);
    CU_ASSERT_STRING_EQUAL(cr_tier_value_error_name(CR_TIER_VALUE_OK), "ok");
    CU_ASSERT_STRING_EQUAL(cr_tier_value_error_name(CR_TIER_VALUE_CORRUPT), "corrupt");
    CU_ASSERT_STRING_EQUAL(cr_tier_value_error_name(CR_TIER_VALUE_NOMEM), "nomem");
    CU_ASSERT_STRING_EQUAL(cr_tier_value_error_name(CR_TIER_VALUE_NUM_ERRORS), "unknown");
}

/* ---- allocation failures: value.c compiled a second time with a malloc that fails on request (the technique of
 * test_object_oom.c; its external names get an oom_ prefix so the copy lives beside the library's) ---- */

static int tv_fail_at = -1; /* the allocation of value.c (0 = the next one) that fails; -1: none */

static void *tv_malloc(size_t n)
{
    if (tv_fail_at >= 0 && tv_fail_at-- == 0)
        return NULL;
    return malloc(n);
}

#define malloc(n) tv_malloc(n)
#define cr_tier_value_error_name oom_cr_tier_value_error_name
#define cr_tier_value_ttl_ms oom_cr_tier_value_ttl_ms
#define cr_tier_value_encode oom_cr_tier_value_encode
#define cr_tier_value_decode oom_cr_tier_value_decode
#include "../../../sidecar/tier/value.c"
#undef malloc
#undef cr_tier_value_error_name
#undef cr_tier_value_ttl_ms
#undef cr_tier_value_encode
#undef cr_tier_value_decode

static void test_value_oom(void)
{
    cr_object_t *obj = tv_full(), *got;
    cr_tier_value_error_t why;
    size_t len, len2;
    char *v = tv_encode(obj, &len), *v2 = (char *)1;
    int k, rc = CR_ERROR;

    tv_fail_at = 0;
    CU_ASSERT_EQUAL(oom_cr_tier_value_encode(obj, TV_T0, 0, SIZE_MAX, &v2, &len2), CR_ERROR);
    CU_ASSERT_PTR_NULL(v2);
    /* each of the decoder's own allocations in turn (its fields, then one per body): a clean NOMEM, nothing leaked
     * (the object half built is released: LSan checks it), until none fails */
    for (k = 0; k != 10 && rc != CR_OK; ++k) {
        got = (cr_object_t *)1;
        tv_fail_at = k;
        rc = oom_cr_tier_value_decode(v, len, tv_key, TV_KEYLEN, TV_T0, &got, &why, NULL);
        if (rc != CR_OK) {
            CU_ASSERT_EQUAL(why, CR_TIER_VALUE_NOMEM);
            CU_ASSERT_PTR_NULL(got);
        }
    }
    tv_fail_at = -1;
    CU_ASSERT_EQUAL(rc, CR_OK);
    CU_ASSERT_EQUAL(k, 5); /* the fields, three bodies (identity, gzip, br), then success */
    tv_assert_same(obj, got);
    cr_object_release(&got);
    cr_object_release(&obj);
    free(v);
}

void cr_test_register_value(void)
{
    CU_pSuite suite = CU_add_suite("tier value", NULL, NULL);

    CU_add_test(suite, "a full object round-trips, its age carried", test_value_round_trip);
    CU_add_test(suite, "an encoded-only and a minimal object round-trip", test_value_encoded_and_minimal);
    CU_add_test(suite, "the encoder refuses too big and unfit objects", test_value_encoder_refusals);
    CU_add_test(suite, "every prefix is short, every flipped byte refused", test_value_prefixes_and_flips);
    CU_add_test(suite, "hand-written values: version, key, fields, limits", test_value_crafted);
    CU_add_test(suite, "foreign values; reason names", test_value_foreign_and_names);
    CU_add_test(suite, "allocation failures are clean misses", test_value_oom);
}
