/*
 * test_encoding.c: unit tests for sidecar/http/encoding.c (gzip and brotli coding, streaming decoder and encoder,
 * Accept-Encoding negotiation, compressible media types).
 *
 * Bodies are generated from fixed seeds (xorshift64), so every run sees the same bytes: "text" is JSON-like and
 * compresses well, "random" does not compress at all. Every round trip is compared byte for byte. Streaming tests
 * collect output through an emit callback that also checks the CR_CODEC_CHUNK bound on each piece. Each test frees
 * what it allocates, so LeakSanitizer sees no leaks.
 */
#include <CUnit/CUnit.h>
#include <brotli/decode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/core/common.h"
#include "corral/conf/config.h"
#include "corral/core/media_pattern.h"
#include "corral/http/encoding.h"

#define ALL (CR_ENC_BIT(CR_ENC_IDENTITY) | CR_ENC_BIT(CR_ENC_GZIP) | CR_ENC_BIT(CR_ENC_BR))
#define ID CR_ENC_BIT(CR_ENC_IDENTITY)
#define GZ CR_ENC_BIT(CR_ENC_GZIP)
#define BR CR_ENC_BIT(CR_ENC_BR)

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static char *make_random(size_t len, uint64_t seed)
{
    char *p = malloc(len != 0 ? len : 1);
    size_t i;
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (i = 0; i != len; ++i)
        p[i] = (char)(rng_next(&seed) >> 56);
    return p;
}

static char *make_text(size_t len, uint64_t seed)
{
    static const char *const words[] = {"{\"id\": ", "\"name\": \"", "alice", "bob", "\", ", "\"email\": \"", "@example.com",
                                        "\"tags\": [", "\"admin\"", "], ", "true", "false", "null", "}\n", "corral ",
                                        "cache ", "über ", "日本 "};
    char *p = malloc(len != 0 ? len : 1);
    size_t i = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    while (i < len) {
        const char *w = words[rng_next(&seed) % CR_ARRAY_SIZE(words)];
        size_t n = CR_MIN(strlen(w), len - i);
        memcpy(p + i, w, n);
        i += n;
    }
    return p;
}

/* Collects emitted output; counts pieces and records the largest. `fail_after`: return CR_AGAIN on that piece. */
typedef struct st_sink_t {
    char *base;
    size_t len, cap;
    size_t pieces, max_piece, fail_after;
} sink_t;

static int sink_emit(void *ctx, const void *buf, size_t len)
{
    sink_t *s = ctx;
    CU_ASSERT(len != 0);
    ++s->pieces;
    if (s->fail_after != 0 && s->pieces == s->fail_after)
        return CR_AGAIN;
    if (len > s->max_piece)
        s->max_piece = len;
    if (s->cap - s->len < len) {
        size_t cap = s->cap != 0 ? s->cap : 1024;
        while (cap - s->len < len)
            cap *= 2;
        s->base = realloc(s->base, cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s->base);
        s->cap = cap;
    }
    memcpy(s->base + s->len, buf, len);
    s->len += len;
    return CR_OK;
}

static void sink_free(sink_t *s)
{
    free(s->base);
    memset(s, 0, sizeof(*s));
}

static int same(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int encode(cr_encoding_t enc, const void *in, size_t len, int level, char **out, size_t *outlen)
{
    return enc == CR_ENC_GZIP ? cr_encode_gzip(in, len, level, out, outlen) : cr_encode_br(in, len, level, 1, out, outlen);
}

/* Feeds `in` to a fresh decoder in pieces chosen by `seed` (0: one byte at a time); returns feed's final result. */
static int stream_decode(cr_encoding_t enc, const char *in, size_t len, size_t max_output, uint64_t seed, size_t maxchunk,
                         sink_t *out)
{
    cr_decoder_t *d = cr_decoder_new(enc, max_output);
    size_t off = 0;
    int rc = CR_OK;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while (rc == CR_OK && off < len) {
        size_t n = seed == 0 ? 1 : (size_t)(rng_next(&seed) % (maxchunk + 1)); /* zero-length feeds included */
        n = CR_MIN(n, len - off);
        rc = cr_decoder_feed(d, in + off, n, 0, sink_emit, out);
        off += n;
    }
    if (rc == CR_OK)
        rc = cr_decoder_feed(d, NULL, 0, 1, sink_emit, out);
    if (rc == CR_OK)
        CU_ASSERT_EQUAL(cr_decoder_total_out(d), out->len);
    cr_decoder_free(&d);
    CU_ASSERT_PTR_NULL(d);
    return rc;
}

/* ---- names ---- */

static void test_names(void)
{
    CU_ASSERT(cr_str_eq(cr_encoding_name(CR_ENC_IDENTITY), "identity", 8));
    CU_ASSERT(cr_str_eq(cr_encoding_name(CR_ENC_GZIP), "gzip", 4));
    CU_ASSERT(cr_str_eq(cr_encoding_name(CR_ENC_BR), "br", 2));
    CU_ASSERT_EQUAL(cr_encoding_name(CR_ENC_MAX).len, 0);

    CU_ASSERT_EQUAL(cr_encoding_parse(cr_str(NULL, 0)), CR_ENC_IDENTITY);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR("")), CR_ENC_IDENTITY);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR("Identity")), CR_ENC_IDENTITY);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR("gzip")), CR_ENC_GZIP);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR(" X-GZIP ")), CR_ENC_GZIP);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR("br")), CR_ENC_BR);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR("BR\t")), CR_ENC_BR);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR("deflate")), -1);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR("gzip, br")), -1);
    CU_ASSERT_EQUAL(cr_encoding_parse(CR_STR("zstd")), -1);
}

/* ---- one-shot round trips ---- */

static void roundtrip(cr_encoding_t enc, int level, const char *body, size_t len, int expect_smaller, const char *what)
{
    char *c = NULL, *d = NULL;
    size_t clen = 0, dlen = 0;
    int ok;

    CU_ASSERT_EQUAL_FATAL(encode(enc, body, len, level, &c, &clen), CR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(clen > 0); /* even an empty body has a header */
    if (expect_smaller)
        CU_ASSERT(clen < len / 2);
    CU_ASSERT_EQUAL(cr_decode_whole(enc, c, clen, len, &d, &dlen), CR_OK);
    ok = d != NULL && same(d, dlen, body, len);
    if (!ok)
        fprintf(stderr, "\n  round trip %s %s level %d, %zu bytes: %zu back\n", cr_encoding_name(enc).base, what, level, len,
                dlen);
    CU_ASSERT(ok);
    free(c);
    free(d);
}

static void test_roundtrip(void)
{
    /* 1008/1009, 2032/2033: around the brotli windows fitted to the input ((1 << lgwin) - 16 bytes) */
    static const size_t sizes[] = {0, 1, 2, 100, 1008, 1009, 2032, 2033, 4096, 16384, 16385, 65537, 1u << 20};
    size_t i;

    for (i = 0; i != CR_ARRAY_SIZE(sizes); ++i) {
        size_t n = sizes[i];
        char *text = make_text(n, 0x1234 + i), *rnd = make_random(n, 0x9876 + i);
        int small = n <= 65537;
        roundtrip(CR_ENC_GZIP, 6, text, n, n >= 4096, "text");
        roundtrip(CR_ENC_GZIP, 6, rnd, n, 0, "random");
        roundtrip(CR_ENC_BR, 5, text, n, n >= 4096, "text");
        roundtrip(CR_ENC_BR, 5, rnd, n, 0, "random");
        if (small) {
            roundtrip(CR_ENC_GZIP, 1, text, n, n >= 4096, "text");
            roundtrip(CR_ENC_GZIP, 9, rnd, n, 0, "random");
            roundtrip(CR_ENC_BR, 0, text, n, 0, "text");
            roundtrip(CR_ENC_BR, 11, text, n, n >= 4096, "text");
            roundtrip(CR_ENC_BR, 11, rnd, n, 0, "random");
        }
        free(text);
        free(rnd);
    }
    {
        /* past the largest window brotli is given (the default, 4 MiB - 16); decoded by libbrotlidec itself, since
         * corral's decoder holds at most CR_DECODER_MEMORY */
        size_t n = (4u << 20) + 4096, clen = 0, dlen = n + 1;
        char *text = make_text(n, 0x4242), *c = NULL, *d = malloc(n + 1);
        CU_ASSERT_EQUAL_FATAL(cr_encode_br(text, n, 5, 1, &c, &clen), CR_OK);
        CU_ASSERT(clen < n / 2);
        CU_ASSERT_EQUAL(BrotliDecoderDecompress(clen, (const uint8_t *)c, &dlen, (uint8_t *)d), BROTLI_DECODER_RESULT_SUCCESS);
        CU_ASSERT(same(d, dlen, text, n));
        free(c);
        free(d);
        free(text);
    }
}

static void test_generic_mode_and_identity(void)
{
    char *text = make_text(10000, 7), *c = NULL, *d = NULL;
    size_t clen, dlen;

    CU_ASSERT_EQUAL_FATAL(cr_encode_br(text, 10000, 5, 0, &c, &clen), CR_OK);
    CU_ASSERT_EQUAL(cr_decode_whole(CR_ENC_BR, c, clen, 0, &d, &dlen), CR_OK);
    CU_ASSERT(same(d, dlen, text, 10000));
    free(c);
    free(d);
    /* identity "decodes" by copying, and honours max_out */
    CU_ASSERT_EQUAL(cr_decode_whole(CR_ENC_IDENTITY, text, 10000, 10000, &d, &dlen), CR_OK);
    CU_ASSERT(same(d, dlen, text, 10000));
    free(d);
    CU_ASSERT_EQUAL(cr_decode_whole(CR_ENC_IDENTITY, text, 10000, 9999, &d, &dlen), CR_ERROR);
    CU_ASSERT_PTR_NULL(d);
    CU_ASSERT_EQUAL(cr_decode_whole(CR_ENC_IDENTITY, "", 0, 0, &d, &dlen), CR_OK);
    CU_ASSERT_PTR_NOT_NULL(d);
    CU_ASSERT_EQUAL(dlen, 0);
    free(d);
    free(text);
}

static void test_bad_parameters(void)
{
    char *c = (char *)"x";
    size_t clen = 99;

    CU_ASSERT_EQUAL(cr_encode_gzip("abc", 3, 0, &c, &clen), CR_ERROR);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(clen, 0);
    CU_ASSERT_EQUAL(cr_encode_gzip("abc", 3, 10, &c, &clen), CR_ERROR);
    CU_ASSERT_EQUAL(cr_encode_br("abc", 3, -1, 1, &c, &clen), CR_ERROR);
    CU_ASSERT_EQUAL(cr_encode_br("abc", 3, 12, 1, &c, &clen), CR_ERROR);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(cr_decode_whole(CR_ENC_MAX, "abc", 3, 0, &c, &clen), CR_ERROR);
    CU_ASSERT_PTR_NULL(cr_decoder_new(CR_ENC_MAX, 0));
    CU_ASSERT_PTR_NULL(cr_encoder_new(CR_ENC_IDENTITY, 5));
    CU_ASSERT_PTR_NULL(cr_encoder_new(CR_ENC_MAX, 5));
    CU_ASSERT_PTR_NULL(cr_encoder_new(CR_ENC_GZIP, 0));
    CU_ASSERT_PTR_NULL(cr_encoder_new(CR_ENC_GZIP, 10));
    CU_ASSERT_PTR_NULL(cr_encoder_new(CR_ENC_BR, -1));
    CU_ASSERT_PTR_NULL(cr_encoder_new(CR_ENC_BR, 12));
    cr_decoder_free(NULL);
    cr_encoder_free(NULL);
}

/* ---- streaming decoder ---- */

static void test_decoder_byte_at_a_time(void)
{
    static const cr_encoding_t encs[] = {CR_ENC_GZIP, CR_ENC_BR};
    size_t n = 60000, i;
    char *text = make_text(n, 42);

    for (i = 0; i != CR_ARRAY_SIZE(encs); ++i) {
        char *c;
        size_t clen;
        sink_t s = {0};
        CU_ASSERT_EQUAL_FATAL(encode(encs[i], text, n, 6, &c, &clen), CR_OK);
        CU_ASSERT_EQUAL(stream_decode(encs[i], c, clen, 0, 0, 0, &s), CR_OK);
        CU_ASSERT(same(s.base, s.len, text, n));
        CU_ASSERT(s.max_piece <= CR_CODEC_CHUNK);
        free(c);
        sink_free(&s);
    }
    free(text);
}

static void test_decoder_random_chunks(void)
{
    static const cr_encoding_t encs[] = {CR_ENC_GZIP, CR_ENC_BR};
    static const size_t maxchunks[] = {7, 300, 5000, 70000};
    size_t n = 1u << 20, i, j;
    char *body = make_text(n, 5);

    {
        /* text with an incompressible last quarter */
        char *rnd = make_random(n / 4, 77);
        memcpy(body + n - n / 4, rnd, n / 4);
        free(rnd);
    }
    for (i = 0; i != CR_ARRAY_SIZE(encs); ++i) {
        char *c;
        size_t clen;
        CU_ASSERT_EQUAL_FATAL(encode(encs[i], body, n, encs[i] == CR_ENC_GZIP ? 6 : 5, &c, &clen), CR_OK);
        for (j = 0; j != CR_ARRAY_SIZE(maxchunks); ++j) {
            sink_t s = {0};
            CU_ASSERT_EQUAL(stream_decode(encs[i], c, clen, n, 1000 + j, maxchunks[j], &s), CR_OK);
            CU_ASSERT(same(s.base, s.len, body, n));
            CU_ASSERT(s.max_piece <= CR_CODEC_CHUNK);
            CU_ASSERT(s.pieces >= n / CR_CODEC_CHUNK);
            sink_free(&s);
        }
        free(c);
    }
    free(body);
}

static void test_decoder_identity(void)
{
    cr_decoder_t *d = cr_decoder_new(CR_ENC_IDENTITY, 10);
    sink_t s = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(cr_decoder_feed(d, "hello", 5, 0, sink_emit, &s), CR_OK);
    CU_ASSERT_EQUAL(cr_decoder_feed(d, "", 0, 0, sink_emit, &s), CR_OK);
    CU_ASSERT_EQUAL(cr_decoder_feed(d, "world", 5, 1, sink_emit, &s), CR_OK);
    CU_ASSERT(same(s.base, s.len, "helloworld", 10));
    CU_ASSERT_EQUAL(cr_decoder_feed(d, "!", 1, 1, sink_emit, &s), CR_ERROR); /* after the final feed */
    cr_decoder_free(&d);
    sink_free(&s);

    d = cr_decoder_new(CR_ENC_IDENTITY, 10);
    CU_ASSERT_EQUAL(cr_decoder_feed(d, "hello world", 11, 1, sink_emit, &s), CR_ERROR); /* over max_output */
    CU_ASSERT_EQUAL(s.len, 0);
    cr_decoder_free(&d);
    sink_free(&s);
}

static void test_decoder_gzip_members(void)
{
    char *a, *b, *both;
    size_t alen, blen;
    sink_t s = {0};

    CU_ASSERT_EQUAL_FATAL(cr_encode_gzip("first,", 6, 6, &a, &alen), CR_OK);
    CU_ASSERT_EQUAL_FATAL(cr_encode_gzip("second", 6, 6, &b, &blen), CR_OK);
    both = malloc(alen + blen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(both);
    memcpy(both, a, alen);
    memcpy(both + alen, b, blen);
    CU_ASSERT_EQUAL(stream_decode(CR_ENC_GZIP, both, alen + blen, 0, 0, 0, &s), CR_OK);
    CU_ASSERT(same(s.base, s.len, "first,second", 12));
    sink_free(&s);
    CU_ASSERT_EQUAL(stream_decode(CR_ENC_GZIP, both, alen + blen, 0, 3, 9, &s), CR_OK);
    CU_ASSERT(same(s.base, s.len, "first,second", 12));
    sink_free(&s);
    /* a second member cut short is truncation */
    CU_ASSERT_EQUAL(stream_decode(CR_ENC_GZIP, both, alen + blen - 1, 0, 0, 0, &s), CR_ERROR);
    sink_free(&s);
    free(a);
    free(b);
    free(both);
}

static void test_decoder_empty(void)
{
    static const cr_encoding_t encs[] = {CR_ENC_GZIP, CR_ENC_BR};
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(encs); ++i) {
        cr_decoder_t *d = cr_decoder_new(encs[i], 0);
        sink_t s = {0};
        char *c, *out;
        size_t clen, outlen;
        /* a body of zero bytes (a bodiless response that still says Content-Encoding) decodes to nothing */
        CU_ASSERT_EQUAL(cr_decoder_feed(d, NULL, 0, 1, sink_emit, &s), CR_OK);
        CU_ASSERT_EQUAL(s.pieces, 0);
        cr_decoder_free(&d);
        CU_ASSERT_EQUAL(cr_decode_whole(encs[i], "", 0, 0, &out, &outlen), CR_OK);
        CU_ASSERT_EQUAL(outlen, 0);
        free(out);
        /* the encoding of an empty body decodes to nothing too */
        CU_ASSERT_EQUAL_FATAL(encode(encs[i], "", 0, 5, &c, &clen), CR_OK);
        CU_ASSERT_EQUAL(stream_decode(encs[i], c, clen, 1, 0, 0, &s), CR_OK);
        CU_ASSERT_EQUAL(s.len, 0);
        free(c);
        sink_free(&s);
    }
}

/* Decodes `c` whole and expects an error. */
static void expect_corrupt(cr_encoding_t enc, const char *c, size_t clen, const char *what)
{
    char *out = (char *)"x";
    size_t outlen = 1;
    int rc = cr_decode_whole(enc, c, clen, 0, &out, &outlen);
    if (rc != CR_ERROR)
        fprintf(stderr, "\n  %s %s: decoded without error\n", cr_encoding_name(enc).base, what);
    CU_ASSERT_EQUAL(rc, CR_ERROR);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(outlen, 0);
}

static void test_corrupt(void)
{
    size_t n = 20000;
    char *text = make_text(n, 11), *g, *b, *bad;
    size_t glen, blen, i;
    sink_t s = {0};

    CU_ASSERT_EQUAL_FATAL(cr_encode_gzip(text, n, 6, &g, &glen), CR_OK);
    CU_ASSERT_EQUAL_FATAL(cr_encode_br(text, n, 5, 1, &b, &blen), CR_OK);
    bad = malloc(CR_MAX(glen, blen) + 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);

    /* gzip: bad magic, bad method, corrupt CRC, corrupt length, truncated, trailing garbage, not gzip at all */
    memcpy(bad, g, glen);
    bad[0] = 0x1e;
    expect_corrupt(CR_ENC_GZIP, bad, glen, "magic");
    memcpy(bad, g, glen);
    bad[2] = 7;
    expect_corrupt(CR_ENC_GZIP, bad, glen, "method");
    memcpy(bad, g, glen);
    bad[glen - 8] ^= 0x01;
    expect_corrupt(CR_ENC_GZIP, bad, glen, "crc");
    memcpy(bad, g, glen);
    bad[glen - 1] ^= 0x01;
    expect_corrupt(CR_ENC_GZIP, bad, glen, "isize");
    expect_corrupt(CR_ENC_GZIP, g, glen - 1, "truncated by one");
    expect_corrupt(CR_ENC_GZIP, g, glen / 2, "truncated by half");
    expect_corrupt(CR_ENC_GZIP, g, 5, "header only");
    memcpy(bad, g, glen);
    memcpy(bad + glen, "garbage!", 8);
    expect_corrupt(CR_ENC_GZIP, bad, glen + 8, "trailing garbage");
    memset(bad + glen, 0, 8);
    expect_corrupt(CR_ENC_GZIP, bad, glen + 8, "trailing zeros");
    expect_corrupt(CR_ENC_GZIP, text, 100, "plain text");
    expect_corrupt(CR_ENC_GZIP, b, blen, "brotli data");

    /* brotli: truncated, trailing garbage, flipped bits in the body, not brotli at all */
    expect_corrupt(CR_ENC_BR, b, blen - 1, "truncated by one");
    expect_corrupt(CR_ENC_BR, b, blen / 2, "truncated by half");
    memcpy(bad, b, blen);
    memcpy(bad + blen, "garbage!", 8);
    expect_corrupt(CR_ENC_BR, bad, blen + 8, "trailing garbage");
    expect_corrupt(CR_ENC_BR, g, glen, "gzip data");
    expect_corrupt(CR_ENC_BR, "\xff\xff\xff\xff", 4, "0xff");
    {
        /* brotli carries no checksum: a flipped bit either breaks the stream or decodes to other bytes, never to
           the original (gzip's CRC-32 catches the second kind, see "crc" above) */
        int failures = 0;
        for (i = 0; i != 16; ++i) {
            char *out;
            size_t outlen;
            memcpy(bad, b, blen);
            bad[(i * 7919) % blen] ^= (char)(1u << (i % 8));
            if (cr_decode_whole(CR_ENC_BR, bad, blen, 0, &out, &outlen) != CR_OK) {
                ++failures;
            } else {
                CU_ASSERT(!same(out, outlen, text, n));
                free(out);
            }
        }
        CU_ASSERT(failures > 0);
    }

    /* streaming: the error comes on the bad piece; the decoder then refuses everything */
    {
        cr_decoder_t *d = cr_decoder_new(CR_ENC_GZIP, 0);
        memcpy(bad, g, glen);
        bad[0] = 0;
        CU_ASSERT_EQUAL(cr_decoder_feed(d, bad, 10, 0, sink_emit, &s), CR_ERROR);
        CU_ASSERT_EQUAL(cr_decoder_feed(d, g, glen, 1, sink_emit, &s), CR_ERROR);
        cr_decoder_free(&d);
        d = cr_decoder_new(CR_ENC_BR, 0);
        CU_ASSERT_EQUAL(cr_decoder_feed(d, b, blen - 3, 0, sink_emit, &s), CR_OK); /* not an error until final */
        CU_ASSERT_EQUAL(cr_decoder_feed(d, NULL, 0, 1, sink_emit, &s), CR_ERROR);
        CU_ASSERT_EQUAL(cr_decoder_feed(d, b + blen - 3, 3, 1, sink_emit, &s), CR_ERROR);
        cr_decoder_free(&d);
        sink_free(&s);
    }
    free(bad);
    free(g);
    free(b);
    free(text);
}

static void test_bomb(void)
{
    static const cr_encoding_t encs[] = {CR_ENC_GZIP, CR_ENC_BR};
    size_t n = 16u << 20, i;
    char *zeros = calloc(1, n);

    CU_ASSERT_PTR_NOT_NULL_FATAL(zeros);
    for (i = 0; i != CR_ARRAY_SIZE(encs); ++i) {
        char *c, *out;
        size_t clen, outlen;
        cr_decoder_t *d;
        sink_t s = {0};
        int rc;

        CU_ASSERT_EQUAL_FATAL(encode(encs[i], zeros, n, encs[i] == CR_ENC_GZIP ? 9 : 5, &c, &clen), CR_OK);
        CU_ASSERT(clen < n / 500); /* a real bomb: tiny input, 16 MiB out */
        /* the limit stops it: no more than max_output bytes ever reach emit */
        d = cr_decoder_new(encs[i], 1u << 20);
        rc = cr_decoder_feed(d, c, clen, 1, sink_emit, &s);
        CU_ASSERT_EQUAL(rc, CR_ERROR);
        CU_ASSERT(s.len <= (1u << 20));
        CU_ASSERT(cr_decoder_total_out(d) <= (1u << 20));
        CU_ASSERT_EQUAL(cr_decoder_feed(d, NULL, 0, 1, sink_emit, &s), CR_ERROR);
        cr_decoder_free(&d);
        sink_free(&s);
        if (encs[i] == CR_ENC_BR) {
            /* 16 MiB in one stream with a 4 MiB window: its ring buffer would pass CR_DECODER_MEMORY */
            CU_ASSERT_EQUAL(cr_decode_whole(encs[i], c, clen, 0, &out, &outlen), CR_ERROR);
            CU_ASSERT_PTR_NULL(out);
            free(c);
            /* a bomb that fits the memory cap: 1 MiB of zeros */
            CU_ASSERT_EQUAL_FATAL(encode(encs[i], zeros, 1u << 20, 5, &c, &clen), CR_OK);
        }
        /* the limit is inclusive */
        {
            size_t m = encs[i] == CR_ENC_BR ? 1u << 20 : n;
            CU_ASSERT_EQUAL(cr_decode_whole(encs[i], c, clen, m - 1, &out, &outlen), CR_ERROR);
            CU_ASSERT_EQUAL(cr_decode_whole(encs[i], c, clen, m, &out, &outlen), CR_OK);
            CU_ASSERT(same(out, outlen, zeros, m));
        }
        free(out);
        free(c);
    }
    free(zeros);
}

/* A budgeted decode emits at most budget + one piece per call, takes input only as it goes, and yields the same
 * bytes as an unbudgeted one; CR_AGAIN with all input taken means output is still pending. */
static void test_decoder_budget(void)
{
    static const cr_encoding_t encs[] = {CR_ENC_IDENTITY, CR_ENC_GZIP, CR_ENC_BR};
    size_t n = 1u << 20, i, budgets[] = {1, 1000, 65536}; /* br: within CR_DECODER_MEMORY */
    char *text = make_text(n, 7), *zeros = calloc(1, 1u << 20);

    CU_ASSERT_PTR_NOT_NULL_FATAL(zeros);
    for (i = 0; i != CR_ARRAY_SIZE(encs); ++i) {
        size_t b;
        for (b = 0; b != CR_ARRAY_SIZE(budgets); ++b) {
            int bomb;
            for (bomb = 0; bomb != 2; ++bomb) {
                const char *plain = bomb ? zeros : text;
                size_t plen = bomb ? 1u << 20 : n, clen, off = 0, calls = 0;
                char *c;
                cr_decoder_t *d = cr_decoder_new(encs[i], 0);
                sink_t s = {0};
                int rc;
                if (encs[i] == CR_ENC_IDENTITY) {
                    c = malloc(plen);
                    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
                    memcpy(c, plain, plen);
                    clen = plen;
                } else {
                    CU_ASSERT_EQUAL_FATAL(encode(encs[i], plain, plen, encs[i] == CR_ENC_GZIP ? 6 : 5, &c, &clen), CR_OK);
                }
                do {
                    size_t before = s.len, used;
                    rc = cr_decoder_feed_some(d, c + off, clen - off, 1, budgets[b], &used, sink_emit, &s);
                    CU_ASSERT(s.len - before <= budgets[b] + CR_CODEC_CHUNK);
                    off += used;
                    CU_ASSERT(off <= clen);
                    ++calls;
                } while (rc == CR_AGAIN && calls < 10000000);
                CU_ASSERT_EQUAL(rc, CR_OK);
                CU_ASSERT_EQUAL(off, clen);
                CU_ASSERT(same(s.base, s.len, plain, plen));
                CU_ASSERT(calls >= plen / (budgets[b] + CR_CODEC_CHUNK));
                CU_ASSERT_EQUAL(cr_decoder_feed(d, NULL, 0, 1, sink_emit, &s), CR_ERROR); /* finished */
                cr_decoder_free(&d);
                sink_free(&s);
                free(c);
            }
        }
    }
    free(zeros);
    free(text);
}

static void test_accept_encoding_refuses(void)
{
    static const struct {
        const char *ae;
        int gzip, br;
    } cases[] = {
        {"", 0, 0},           {"identity", 0, 0},       {"gzip;q=0", 1, 0},          {"x-gzip; q=0.000", 1, 0},
        {"*;q=0", 1, 1},      {"*;q=0, gzip", 0, 1},    {"gzip;q=0.5, *;q=0", 0, 1}, {"br;q=0, gzip;q=1", 0, 1},
        {"gzip;q=0, gzip", 1, 0}, {"gzip;q=bad", 0, 0}, {"deflate;q=0", 0, 0},
    };
    size_t i;
    CU_ASSERT_EQUAL(cr_accept_encoding_refuses(cr_str(NULL, 0), CR_ENC_GZIP), 0);
    for (i = 0; i != CR_ARRAY_SIZE(cases); ++i) {
        cr_str_t ae = cr_str(cases[i].ae, strlen(cases[i].ae));
        CU_ASSERT_EQUAL(cr_accept_encoding_refuses(ae, CR_ENC_GZIP), cases[i].gzip);
        CU_ASSERT_EQUAL(cr_accept_encoding_refuses(ae, CR_ENC_BR), cases[i].br);
        if (cr_accept_encoding_refuses(ae, CR_ENC_GZIP) != cases[i].gzip || cr_accept_encoding_refuses(ae, CR_ENC_BR) != cases[i].br)
            fprintf(stderr, "refuses: %s\n", cases[i].ae);
    }
}

static void test_emit_abort(void)
{
    char *text = make_text(100000, 3), *c;
    size_t clen;
    cr_decoder_t *d;
    cr_encoder_t *e;
    sink_t s = {0};

    CU_ASSERT_EQUAL_FATAL(cr_encode_gzip(text, 100000, 6, &c, &clen), CR_OK);
    d = cr_decoder_new(CR_ENC_GZIP, 0);
    s.fail_after = 2;
    CU_ASSERT_EQUAL(cr_decoder_feed(d, c, clen, 1, sink_emit, &s), CR_AGAIN); /* emit's own value comes back */
    CU_ASSERT_EQUAL(s.pieces, 2);
    CU_ASSERT_EQUAL(cr_decoder_feed(d, NULL, 0, 1, sink_emit, &s), CR_ERROR);
    cr_decoder_free(&d);
    sink_free(&s);

    e = cr_encoder_new(CR_ENC_BR, 5);
    s.fail_after = 1;
    CU_ASSERT_EQUAL(cr_encoder_feed(e, text, 100000, 0, sink_emit, &s), CR_AGAIN);
    CU_ASSERT_EQUAL(cr_encoder_feed(e, NULL, 0, 1, sink_emit, &s), CR_ERROR);
    cr_encoder_free(&e);
    CU_ASSERT_PTR_NULL(e);
    sink_free(&s);
    free(c);
    free(text);
}

/* ---- streaming encoder ---- */

/* Forwards encoder output into a decoder, so the test can see what a client could decode at each point. */
typedef struct st_chain_t {
    cr_decoder_t *d;
    sink_t *plain;
    size_t compressed;
} chain_t;

static int chain_emit(void *ctx, const void *buf, size_t len)
{
    chain_t *ch = ctx;
    CU_ASSERT(len <= CR_CODEC_CHUNK);
    ch->compressed += len;
    return cr_decoder_feed(ch->d, buf, len, 0, sink_emit, ch->plain);
}

static void encoder_roundtrip(cr_encoding_t enc, int level, const char *body, size_t n, uint64_t seed, size_t maxchunk)
{
    cr_encoder_t *e = cr_encoder_new(enc, level);
    sink_t plain = {0};
    chain_t ch = {cr_decoder_new(enc, 0), &plain, 0};
    size_t off = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ch.d);
    while (off < n) {
        size_t k = (size_t)(rng_next(&seed) % (maxchunk + 1));
        k = CR_MIN(k, n - off);
        CU_ASSERT_EQUAL_FATAL(cr_encoder_feed(e, body + off, k, 0, chain_emit, &ch), CR_OK);
        off += k;
        /* flushed: everything fed so far has come out the other side */
        if (plain.len != off)
            fprintf(stderr, "\n  %s level %d: %zu fed, %zu decoded\n", cr_encoding_name(enc).base, level, off, plain.len);
        CU_ASSERT_EQUAL_FATAL(plain.len, off);
    }
    CU_ASSERT_EQUAL(cr_encoder_feed(e, NULL, 0, 1, chain_emit, &ch), CR_OK);
    CU_ASSERT_EQUAL(cr_decoder_feed(ch.d, NULL, 0, 1, sink_emit, &plain), CR_OK); /* the stream ended properly */
    if (!same(plain.base, plain.len, body, n))
        fprintf(stderr, "\n  %s level %d: %zu in, %zu out\n", cr_encoding_name(enc).base, level, n, plain.len);
    CU_ASSERT(same(plain.base, plain.len, body, n));
    CU_ASSERT_EQUAL(cr_encoder_feed(e, "x", 1, 1, chain_emit, &ch), CR_ERROR); /* after the final feed */
    cr_encoder_free(&e);
    cr_decoder_free(&ch.d);
    sink_free(&plain);
}

static void test_encoder(void)
{
    size_t n = 1u << 20;
    char *text = make_text(n, 99), *rnd = make_random(200000, 98);

    encoder_roundtrip(CR_ENC_GZIP, 6, text, n, 1, 40000);
    encoder_roundtrip(CR_ENC_BR, 5, text, n, 2, 40000);
    encoder_roundtrip(CR_ENC_GZIP, 1, rnd, 200000, 3, 20000);
    encoder_roundtrip(CR_ENC_BR, 11, text, 100000, 4, 20000);
    encoder_roundtrip(CR_ENC_BR, 0, rnd, 200000, 5, 20000);
    encoder_roundtrip(CR_ENC_GZIP, 9, text, 3000, 6, 3); /* tiny pieces, each flushed */
    encoder_roundtrip(CR_ENC_BR, 5, text, 3000, 7, 3);
    encoder_roundtrip(CR_ENC_GZIP, 6, text, 0, 8, 10); /* nothing but the final feed */
    encoder_roundtrip(CR_ENC_BR, 5, text, 0, 9, 10);
    free(text);
    free(rnd);
}

static void test_encoder_whole_feed(void)
{
    /* one feed with is_final: a single compressed stream, which the one-shot decoder reads */
    static const cr_encoding_t encs[] = {CR_ENC_GZIP, CR_ENC_BR};
    size_t n = 300000, i;
    char *text = make_text(n, 17);

    for (i = 0; i != CR_ARRAY_SIZE(encs); ++i) {
        cr_encoder_t *e = cr_encoder_new(encs[i], 6);
        sink_t s = {0};
        char *out;
        size_t outlen;
        CU_ASSERT_EQUAL(cr_encoder_feed(e, text, n, 1, sink_emit, &s), CR_OK);
        CU_ASSERT(s.max_piece <= CR_CODEC_CHUNK);
        CU_ASSERT(s.len < n / 3);
        CU_ASSERT_EQUAL(cr_decode_whole(encs[i], s.base, s.len, 0, &out, &outlen), CR_OK);
        CU_ASSERT(same(out, outlen, text, n));
        free(out);
        cr_encoder_free(&e);
        sink_free(&s);
    }
    free(text);
}

/* ---- negotiation ---- */

typedef struct st_neg_case_t {
    const char *header; /* NULL: absent */
    unsigned available;
    int expect;
} neg_case_t;

static const neg_case_t neg_cases[] = {
    /* absent and empty */
    {NULL, ALL, CR_ENC_IDENTITY},
    {"", ALL, CR_ENC_IDENTITY},
    {"  ", ALL, CR_ENC_IDENTITY},
    /* plain lists */
    {"gzip", ALL, CR_ENC_GZIP},
    {"br", ALL, CR_ENC_BR},
    {"gzip, br", ALL, CR_ENC_BR},
    {"br, gzip", ALL, CR_ENC_BR},
    {"gzip, deflate, br, zstd", ALL, CR_ENC_BR},
    {"identity", ALL, CR_ENC_IDENTITY},
    {"deflate", ALL, CR_ENC_IDENTITY},
    {"deflate, gzip;q=0.8", ALL, CR_ENC_GZIP},
    /* q-values */
    {"gzip;q=1, br;q=0.5", ALL, CR_ENC_GZIP},
    {"gzip;q=0.5, br;q=0.9", ALL, CR_ENC_BR},
    {"br;q=0.5, gzip;q=0.5", ALL, CR_ENC_BR},
    {"gzip;q=0.5, br;q=0.50", ALL, CR_ENC_BR},
    {"identity;q=0.5, gzip;q=0.5", ALL, CR_ENC_GZIP},
    {"br;q=0.9, identity;q=1", ALL, CR_ENC_IDENTITY},
    {"gzip;q=0.001", ALL, CR_ENC_GZIP}, /* any listed q>0 beats implicit identity */
    {"gzip;q=1.000", ALL, CR_ENC_GZIP},
    {"gzip;q=1., br;q=0.", ALL, CR_ENC_GZIP},
    /* q=0 excludes */
    {"br;q=0", ALL, CR_ENC_IDENTITY}, /* gzip is not listed and there is no "*": not acceptable (RFC 9110 12.5.3) */
    {"br;q=0, gzip", ALL, CR_ENC_GZIP},
    {"*, br;q=0", ALL, CR_ENC_GZIP},
    {"gzip;q=0, gzip", ALL, CR_ENC_IDENTITY}, /* the first member for a coding counts */
    {"identity;q=0", ALL, -1},
    {"identity;q=0, gzip", ALL, CR_ENC_GZIP},
    {"identity;q=0, *;q=0", ALL, -1},
    {"*;q=0", ALL, -1},
    {"*;q=0, identity", ALL, CR_ENC_IDENTITY},
    {"*;q=0, gzip", ALL, CR_ENC_GZIP},
    {"br;q=0, gzip;q=0, identity;q=0", ALL, -1},
    /* "*" */
    {"*", ALL, CR_ENC_BR},
    {"*;q=0.5", ALL, CR_ENC_BR},
    {"*;q=0.5, gzip;q=0.8", ALL, CR_ENC_GZIP},
    {"*;q=0.5, identity;q=0.8", ALL, CR_ENC_IDENTITY},
    /* spelling */
    {"GZIP", ALL, CR_ENC_GZIP},
    {"x-gzip", ALL, CR_ENC_GZIP},
    {"X-Gzip;Q=0.3, Identity;q=0.2", ALL, CR_ENC_GZIP},
    {"Br;Q=1, GZip", ALL, CR_ENC_BR},
    {" gzip ;q=0.7 ,\tbr ; q=0.6 ", ALL, CR_ENC_GZIP},
    {",, gzip ,,", ALL, CR_ENC_GZIP},
    /* malformed members are ignored */
    {"gzip;q=abc", ALL, CR_ENC_IDENTITY},
    {"gzip;q=1.5, br;q=0.2", ALL, CR_ENC_BR},
    {"gzip;q=1.001", ALL, CR_ENC_IDENTITY},
    {"gzip;q=0.1234, br;q=0.1", ALL, CR_ENC_BR},
    {"gzip;q=.5", ALL, CR_ENC_IDENTITY},
    {"gzip;q=", ALL, CR_ENC_IDENTITY},
    {"gzip;q = 0.5", ALL, CR_ENC_IDENTITY},
    {"gzip;", ALL, CR_ENC_IDENTITY},
    {"gzip;level=1, br;q=0.1", ALL, CR_ENC_BR},
    {"gzip;q=0.5, br;q=0.5;foo=bar", ALL, CR_ENC_GZIP},
    {"g\"zip, br", ALL, CR_ENC_BR},
    {"gzip;q=0.9;q=0.1, br;q=0.2", ALL, CR_ENC_BR},
    {"identity;q=x, *;q=0", ALL, -1}, /* the malformed identity member does not protect identity */
    /* only some codings stored (route restricted, or variant not smaller) */
    {"br", ID | GZ, CR_ENC_IDENTITY},
    {"gzip, br", ID | GZ, CR_ENC_GZIP},
    {"*", ID | GZ, CR_ENC_GZIP},
    {"gzip", ID, CR_ENC_IDENTITY},
    {"br;q=1, identity;q=0", ID | GZ, -1},
    /* object without identity (upstream sent it compressed): IDENTITY means decode on the fly */
    {"gzip", GZ, CR_ENC_GZIP},
    {"br", GZ, CR_ENC_IDENTITY},
    {"br, identity;q=0", GZ, -1},
    {NULL, GZ, CR_ENC_IDENTITY},
    {"", BR, CR_ENC_IDENTITY},
    {"identity;q=1, gzip;q=0.1", GZ, CR_ENC_GZIP}, /* stored bytes win over decoding */
    {"gzip;q=0", GZ, CR_ENC_IDENTITY},
    {"*", BR, CR_ENC_BR},
    {"*;q=0", GZ, -1},
    {"*;q=0, identity", GZ, CR_ENC_IDENTITY},
    {"gzip;q=0.5, br;q=0.9", GZ | BR, CR_ENC_BR},
    {"gzip, br;q=0", BR, CR_ENC_IDENTITY},
};

static void test_negotiate(void)
{
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(neg_cases); ++i) {
        const neg_case_t *c = neg_cases + i;
        cr_str_t h = c->header != NULL ? cr_str(c->header, strlen(c->header)) : cr_str(NULL, 0);
        int got = cr_negotiate_encoding(h, c->available);
        if (got != c->expect)
            fprintf(stderr, "\n  negotiate \"%s\" available 0x%x: expected %d, got %d\n", c->header ? c->header : "(absent)",
                    c->available, c->expect, got);
        CU_ASSERT_EQUAL(got, c->expect);
    }
    CU_ASSERT(CR_ARRAY_SIZE(neg_cases) >= 25);
}

static void test_negotiate_not_nul_terminated(void)
{
    /* the header is a (base, len) slice: bytes after it are not read */
    const char buf[] = "gzip;q=0.5, br;q=0";
    CU_ASSERT_EQUAL(cr_negotiate_encoding(cr_str(buf, 4), ALL), CR_ENC_GZIP);
    CU_ASSERT_EQUAL(cr_negotiate_encoding(cr_str(buf, 17), ALL), CR_ENC_GZIP); /* "...br;q=": malformed, ignored */
    CU_ASSERT_EQUAL(cr_negotiate_encoding(cr_str(buf, 14), ALL), CR_ENC_BR);   /* "...br" */
    CU_ASSERT_EQUAL(cr_negotiate_encoding(cr_str(buf, 18), ALL), CR_ENC_GZIP); /* the whole value: br;q=0 */
    CU_ASSERT_EQUAL(cr_negotiate_encoding(cr_str(buf, 0), ALL), CR_ENC_IDENTITY);
}

/* ---- media types ---- */

typedef struct st_type_case_t {
    const char *content_type;
    int expect;
} type_case_t;

static void check_types(char *const *patterns, size_t num, const type_case_t *cases, size_t ncases, const char *what)
{
    size_t i;
    for (i = 0; i != ncases; ++i) {
        int got = cr_media_type_compressible(cr_str(cases[i].content_type, strlen(cases[i].content_type)), patterns, num);
        if (got != cases[i].expect)
            fprintf(stderr, "\n  %s: \"%s\": expected %d\n", what, cases[i].content_type, cases[i].expect);
        CU_ASSERT_EQUAL(got, cases[i].expect);
    }
}

static const type_case_t default_cases[] = {
    {"text/html; charset=utf-8", 1},
    {"text/html;charset=UTF-8", 1},
    {"TEXT/HTML", 1},
    {"text/plain", 1},
    {"text/css", 1},
    {"application/json", 1},
    {" application/json ; charset=utf-8", 1},
    {"Application/JSON", 1},
    {"application/javascript", 1},
    {"application/xml", 1},
    {"application/vnd.api+json", 1},
    {"application/ld+json", 1},
    {"application/problem+json; charset=utf-8", 1},
    {"application/atom+xml", 1},
    {"image/svg+xml", 1},
    {"application/VND.FOO+JSON", 1},
    {"image/png", 0},
    {"image/jpeg", 0},
    {"application/octet-stream", 0},
    {"video/mp4", 0},
    {"application/gzip", 0},
    {"application/jsonx", 0},
    {"application/json-seq", 0},
    {"application/+json", 0},
    {"application/json+zip", 0},
    {"", 0},
    {"text", 0},
    {"text/", 0},
    {"/json", 0},
    {"application/json garbage", 0},
    {"application / json", 0},
};

static void test_compressible_defaults(void)
{
    static const char yaml[] = "listen:\n  - address: 127.0.0.1:8081\nupstream: { url: 'http://127.0.0.1:8080' }\n"
                               "routes:\n  - match: { prefix: /a }\n";
    char err[256];
    cr_config_t *cfg = cr_config_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));
    const cr_route_config_t *r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    r = &cfg->routes[0];
    check_types(r->compress_types, r->num_compress_types, default_cases, CR_ARRAY_SIZE(default_cases), "defaults");
    CU_ASSERT_EQUAL(cr_media_type_compressible(cr_str(NULL, 0), r->compress_types, r->num_compress_types), 0);
    CU_ASSERT_EQUAL(cr_media_type_compressible(CR_STR("text/html"), NULL, 0), 0);
    cr_config_free(&cfg);
}

static void test_compressible_patterns(void)
{
    static char *const type_suffix[] = {"application/*+json"};
    static const type_case_t type_suffix_cases[] = {{"application/ld+json", 1},
                                                    {"Application/Vnd.X+JSON", 1},
                                                    {"application/json", 0},
                                                    {"text/x+json", 0},
                                                    {"image/svg+xml", 0}};
    static char *const shorthand[] = {"+xml"};
    static const type_case_t shorthand_cases[] = {
        {"image/svg+xml", 1}, {"application/rss+xml", 1}, {"application/xml", 0}, {"text/xml", 0}, {"application/+xml", 0}};
    static char *const exact[] = {"text/plain", "application/json"};
    static const type_case_t exact_cases[] = {
        {"text/plain", 1}, {"text/html", 0}, {"application/json", 1}, {"application/ld+json", 0}, {"text/plainx", 0}};
    static char *const whole[] = {"image/*"};
    static const type_case_t whole_cases[] = {{"image/png", 1}, {"IMAGE/x-icon", 1}, {"imagex/png", 0}, {"text/image", 0}};
    /* invalid patterns never match anything, even if a caller skipped validation */
    static char *const invalid[] = {"*/*", "*/json", "json", "text/*json", "+"};
    static const type_case_t invalid_cases[] = {{"application/json", 0}, {"text/json", 0}, {"text/plain", 0}};

    check_types(type_suffix, 1, type_suffix_cases, CR_ARRAY_SIZE(type_suffix_cases), "application/*+json");
    check_types(shorthand, 1, shorthand_cases, CR_ARRAY_SIZE(shorthand_cases), "+xml");
    check_types(exact, 2, exact_cases, CR_ARRAY_SIZE(exact_cases), "exact");
    check_types(whole, 1, whole_cases, CR_ARRAY_SIZE(whole_cases), "image/*");
    check_types(invalid, CR_ARRAY_SIZE(invalid), invalid_cases, CR_ARRAY_SIZE(invalid_cases), "invalid");
}

static void test_pattern_check(void)
{
    static const char *const good[] = {"text/*", "application/json", "image/svg+xml", "*/*+json", "application/*+json",
                                       "+json", "TEXT/*", "application/vnd.api+json"};
    static const char *const bad[] = {"json",  "*/*",        "*/json",         "text/", "/json",
                                      "+",     "text/*json", "text/**",        "*/*+",  "application/*+",
                                      "a b/c", "text/*+js*n", "*+json",        "",      "text/html;charset=utf-8",
                                      "+js/on", "te*t/html"};
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(good); ++i) {
        if (cr_media_pattern_check(good[i]) != NULL)
            fprintf(stderr, "\n  pattern \"%s\" rejected\n", good[i]);
        CU_ASSERT_PTR_NULL(cr_media_pattern_check(good[i]));
    }
    for (i = 0; i != CR_ARRAY_SIZE(bad); ++i) {
        if (cr_media_pattern_check(bad[i]) == NULL)
            fprintf(stderr, "\n  pattern \"%s\" accepted\n", bad[i]);
        CU_ASSERT_PTR_NOT_NULL(cr_media_pattern_check(bad[i]));
    }
}

void cr_test_register_encoding(void)
{
    CU_pSuite s = CU_add_suite("encoding", NULL, NULL);
    CU_add_test(s, "names", test_names);
    CU_add_test(s, "one-shot round trips", test_roundtrip);
    CU_add_test(s, "generic mode and identity", test_generic_mode_and_identity);
    CU_add_test(s, "bad parameters", test_bad_parameters);
    CU_add_test(s, "decoder one byte at a time", test_decoder_byte_at_a_time);
    CU_add_test(s, "decoder random chunks", test_decoder_random_chunks);
    CU_add_test(s, "decoder identity", test_decoder_identity);
    CU_add_test(s, "decoder gzip members", test_decoder_gzip_members);
    CU_add_test(s, "decoder empty", test_decoder_empty);
    CU_add_test(s, "corrupt input", test_corrupt);
    CU_add_test(s, "decompression bomb", test_bomb);
    CU_add_test(s, "decoder output budget", test_decoder_budget);
    CU_add_test(s, "emit abort", test_emit_abort);
    CU_add_test(s, "encoder streaming", test_encoder);
    CU_add_test(s, "encoder whole feed", test_encoder_whole_feed);
    CU_add_test(s, "negotiate", test_negotiate);
    CU_add_test(s, "negotiate slice", test_negotiate_not_nul_terminated);
    CU_add_test(s, "accept-encoding refusals", test_accept_encoding_refuses);
    CU_add_test(s, "compressible defaults", test_compressible_defaults);
    CU_add_test(s, "compressible patterns", test_compressible_patterns);
    CU_add_test(s, "pattern check", test_pattern_check);
}
