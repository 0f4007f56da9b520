/*
 * test_range.c: unit tests for http/range.c: Range parsing against a body length (single, open-ended, suffix,
 * several, unsatisfiable, malformed, bounds and overflow), If-Range (strong ETag, dates and their strength), the
 * multipart/byteranges text, and a fuzz-ish pass of random strings whose results must always lie within the body.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/http/range.h"

#define S(lit) cr_str((lit), strlen(lit))

static cr_byte_range_t r[CR_RANGE_MAX_PARTS];
static size_t n;

static cr_range_verdict_t parse(const char *v, uint64_t len)
{
    return cr_range_parse(S(v), len, r, CR_RANGE_MAX_PARTS, &n);
}

#define ASSERT_ONE(v, len, f, l)                                                                                            \
    do {                                                                                                                    \
        CU_ASSERT_EQUAL_FATAL(parse(v, len), CR_RANGE_PARTIAL);                                                            \
        CU_ASSERT_EQUAL(n, 1);                                                                                              \
        CU_ASSERT_EQUAL(r[0].first, (f));                                                                                   \
        CU_ASSERT_EQUAL(r[0].last, (l));                                                                                    \
    } while (0)

static void test_single(void)
{
    ASSERT_ONE("bytes=0-4", 100, 0, 4);
    ASSERT_ONE("bytes=5-", 100, 5, 99);       /* open-ended */
    ASSERT_ONE("bytes=-5", 100, 95, 99);      /* suffix */
    ASSERT_ONE("bytes=-500", 100, 0, 99);     /* a suffix longer than the body is all of it */
    ASSERT_ONE("bytes=90-200", 100, 90, 99);  /* last-pos past the end is clipped */
    ASSERT_ONE("bytes=99-99", 100, 99, 99);
    ASSERT_ONE("bytes=0-0", 1, 0, 0);
    ASSERT_ONE("BYTES=1-2", 100, 1, 2);       /* the unit is case-insensitive */
    ASSERT_ONE("  bytes=1-2  ", 100, 1, 2);
    ASSERT_ONE("bytes=1-2 ,", 100, 1, 2);     /* empty list members are allowed */
    ASSERT_ONE("bytes=,,1-2", 100, 1, 2);
    ASSERT_ONE("bytes=0-18446744073709551615", 10, 0, 9);
    ASSERT_ONE("bytes=0-99999999999999999999999999999", 10, 0, 9); /* past 2^64: saturated, clipped */
    ASSERT_ONE("bytes=-99999999999999999999999999999", 10, 0, 9);
}

static void test_several(void)
{
    CU_ASSERT_EQUAL_FATAL(parse("bytes=0-1, 5-6,-2", 100), CR_RANGE_PARTIAL);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT(r[0].first == 0 && r[0].last == 1);
    CU_ASSERT(r[1].first == 5 && r[1].last == 6);
    CU_ASSERT(r[2].first == 98 && r[2].last == 99);
    /* unsatisfiable members are dropped, the rest kept in order */
    CU_ASSERT_EQUAL_FATAL(parse("bytes=500-600,10-19,200-", 100), CR_RANGE_PARTIAL);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(r[0].first == 10 && r[0].last == 19);
    /* 16 ranges pass, 17 are ignored */
    CU_ASSERT_EQUAL(parse("bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,10-10,11-11,12-12,13-13,14-14,15-15", 100),
                    CR_RANGE_PARTIAL);
    CU_ASSERT_EQUAL(n, 16);
    CU_ASSERT_EQUAL(parse("bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,10-10,11-11,12-12,13-13,14-14,15-15,16-16", 100),
                    CR_RANGE_WHOLE);
    /* 17 unsatisfiable ones too: the count is of what was asked */
    CU_ASSERT_EQUAL(parse("bytes=200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-", 100),
                    CR_RANGE_WHOLE);
    /* overlapping ranges adding up past the body: the whole 200 */
    CU_ASSERT_EQUAL(parse("bytes=0-,0-", 100), CR_RANGE_WHOLE);
    CU_ASSERT_EQUAL(parse("bytes=0-60,40-99", 100), CR_RANGE_WHOLE);
    /* overlapping but within the body's length: served as asked */
    CU_ASSERT_EQUAL(parse("bytes=0-10,5-15", 100), CR_RANGE_PARTIAL);
    CU_ASSERT_EQUAL(n, 2);
    /* the whole body in two parts adds up to exactly its length: allowed (the sender compares sizes) */
    CU_ASSERT_EQUAL(parse("bytes=0-49,50-99", 100), CR_RANGE_PARTIAL);
    /* a smaller max */
    CU_ASSERT_EQUAL(cr_range_parse(S("bytes=0-1,2-3"), 100, r, 1, &n), CR_RANGE_WHOLE);
    CU_ASSERT_EQUAL(n, 0);
}

static void test_unsatisfiable(void)
{
    CU_ASSERT_EQUAL(parse("bytes=100-", 100), CR_RANGE_UNSATISFIABLE);
    CU_ASSERT_EQUAL(parse("bytes=100-200", 100), CR_RANGE_UNSATISFIABLE);
    CU_ASSERT_EQUAL(parse("bytes=-0", 100), CR_RANGE_UNSATISFIABLE);
    CU_ASSERT_EQUAL(parse("bytes=18446744073709551615-", 100), CR_RANGE_UNSATISFIABLE);
    CU_ASSERT_EQUAL(parse("bytes=99999999999999999999999-", 100), CR_RANGE_UNSATISFIABLE);
    CU_ASSERT_EQUAL(parse("bytes=100-,-0,200-300", 100), CR_RANGE_UNSATISFIABLE);
    CU_ASSERT_EQUAL(n, 0);
}

static void test_ignored(void)
{
    static const char *const bad[] = {
        "", "bytes", "bytes=", "bytes= ", "bytes=,", "bytes =0-1", "bytes= 0-1x", "bytes=a-b", "bytes=5", "bytes=-",
        "bytes=--5", "bytes=5-4", "bytes=0-1;2-3", "bytes=0-1 2-3", "items=0-1", "byte=0-1", "bytesx=0-1", "bytes=0x1-2",
        "bytes=+1-2", "bytes=-5-", "bytes=1-2-3", "bytes=\"0-1\"", "bytes=0-1,x", "bytes=1 -2", "bytes=1- 2",
        "bytes=\t", "=0-1", "bytes=0-1\r\n", "bytes=-1,5-4",
    };
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(bad); ++i) {
        CU_ASSERT_EQUAL(parse(bad[i], 100), CR_RANGE_WHOLE);
        if (n != 0)
            fprintf(stderr, "range: \"%s\" was not ignored\n", bad[i]);
    }
    /* NULL value, an empty body */
    CU_ASSERT_EQUAL(cr_range_parse(cr_str(NULL, 0), 100, r, CR_RANGE_MAX_PARTS, &n), CR_RANGE_WHOLE);
    CU_ASSERT_EQUAL(parse("bytes=0-4", 0), CR_RANGE_WHOLE);
    CU_ASSERT_EQUAL(parse("bytes=-5", 0), CR_RANGE_WHOLE);
    /* never read past the value's length: "bytes=0-4" cut after "bytes=0-" is open-ended */
    CU_ASSERT_EQUAL(cr_range_parse(cr_str("bytes=0-4", 8), 100, r, CR_RANGE_MAX_PARTS, &n), CR_RANGE_PARTIAL);
    CU_ASSERT(n == 1 && r[0].first == 0 && r[0].last == 99);
    CU_ASSERT_EQUAL(cr_range_parse(cr_str("bytes=0-4", 5), 100, r, CR_RANGE_MAX_PARTS, &n), CR_RANGE_WHOLE);
}

#define LM "Sun, 06 Nov 1994 08:49:37 GMT"
#define LM_MS UINT64_C(784111777000)

static void test_if_range(void)
{
    cr_str_t none = cr_str(NULL, 0);
    /* strong entity-tags, compared byte for byte */
    CU_ASSERT_TRUE(cr_if_range_holds(S("\"v1\""), S("\"v1\""), none, 0));
    CU_ASSERT_TRUE(cr_if_range_holds(S(" \"v1\" "), S("\"v1\""), none, 0));
    CU_ASSERT_FALSE(cr_if_range_holds(S("\"v1\""), S("\"v2\""), none, 0));
    CU_ASSERT_FALSE(cr_if_range_holds(S("\"v1\""), S("\"v1-gz\""), none, 0)); /* another coding's tag */
    CU_ASSERT_FALSE(cr_if_range_holds(S("\"v1\""), S("W/\"v1\""), none, 0));  /* the stored one is weak */
    CU_ASSERT_FALSE(cr_if_range_holds(S("W/\"v1\""), S("W/\"v1\""), none, 0)); /* weak never matches */
    CU_ASSERT_FALSE(cr_if_range_holds(S("\"v1\""), none, S(LM), LM_MS + 5000)); /* no ETag stored */
    CU_ASSERT_FALSE(cr_if_range_holds(S("\"v1"), S("\"v1"), none, 0));         /* not an entity-tag */
    CU_ASSERT_FALSE(cr_if_range_holds(S(""), S("\"v1\""), S(LM), LM_MS + 5000));
    /* dates: an exact match with a strong Last-Modified */
    CU_ASSERT_TRUE(cr_if_range_holds(S(LM), S("\"v1\""), S(LM), LM_MS + 1000));
    CU_ASSERT_TRUE(cr_if_range_holds(S("Sunday, 06-Nov-94 08:49:37 GMT"), none, S(LM), LM_MS + 60000)); /* RFC 850 */
    CU_ASSERT_FALSE(cr_if_range_holds(S("Sun, 06 Nov 1994 08:49:38 GMT"), none, S(LM), LM_MS + 60000)); /* later */
    CU_ASSERT_FALSE(cr_if_range_holds(S("Sun, 06 Nov 1994 08:49:36 GMT"), none, S(LM), LM_MS + 60000)); /* earlier */
    CU_ASSERT_FALSE(cr_if_range_holds(S(LM), none, S(LM), LM_MS + 999)); /* weak: Date within a second */
    CU_ASSERT_FALSE(cr_if_range_holds(S(LM), none, S(LM), LM_MS - 5000)); /* Date before Last-Modified */
    CU_ASSERT_FALSE(cr_if_range_holds(S(LM), none, S(LM), 0));            /* Date unknown */
    CU_ASSERT_FALSE(cr_if_range_holds(S(LM), none, none, LM_MS + 5000));  /* no Last-Modified */
    CU_ASSERT_FALSE(cr_if_range_holds(S("yesterday"), none, S(LM), LM_MS + 5000));
    CU_ASSERT_FALSE(cr_if_range_holds(S(LM), none, S("garbage"), LM_MS + 5000));
}

static void test_multipart_text(void)
{
    char buf[CR_RANGE_PART_HEAD_FIXED + 64 + 64], b[CR_RANGE_BOUNDARY_LEN], b2[CR_RANGE_BOUNDARY_LEN];
    cr_byte_range_t x = {5, 9}, big = {UINT64_MAX - 1, UINT64_MAX - 1};
    size_t len, i;

    len = cr_range_part_head(buf, S("BND"), S("text/plain"), &x, 100);
    CU_ASSERT_EQUAL(len, strlen("\r\n--BND\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-9/100\r\n\r\n"));
    CU_ASSERT(memcmp(buf, "\r\n--BND\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-9/100\r\n\r\n", len) == 0);
    len = cr_range_part_head(buf, S("BND"), cr_str(NULL, 0), &x, 100);
    CU_ASSERT(len == strlen("\r\n--BND\r\nContent-Range: bytes 5-9/100\r\n\r\n") &&
              memcmp(buf, "\r\n--BND\r\nContent-Range: bytes 5-9/100\r\n\r\n", len) == 0);
    /* the fixed part's bound holds for the longest numbers */
    len = cr_range_part_head(buf, S("B"), S("t"), &big, UINT64_MAX);
    CU_ASSERT(len <= CR_RANGE_PART_HEAD_FIXED + 2);
    len = cr_range_multipart_tail(buf, S("BND"));
    CU_ASSERT(len == 11 && memcmp(buf, "\r\n--BND--\r\n", 11) == 0);
    len = cr_range_content_range(buf, NULL, 1234);
    CU_ASSERT(len == 12 && memcmp(buf, "bytes */1234", 12) == 0);
    len = cr_range_content_range(buf, &x, 10);
    CU_ASSERT(len == 12 && memcmp(buf, "bytes 5-9/10", 12) == 0);
    /* boundaries: letters and digits, different for different seeds */
    cr_range_boundary(b, 1);
    cr_range_boundary(b2, 2);
    CU_ASSERT(memcmp(b, b2, sizeof(b)) != 0);
    for (i = 0; i != sizeof(b); ++i)
        CU_ASSERT((b[i] >= '0' && b[i] <= '9') || (b[i] >= 'a' && b[i] <= 'z'));
}

/* Random strings made of the bytes a Range value is built from: never a crash, every result within the body, never
 * more than max ranges, never more bytes than the body. */
static void test_fuzz(void)
{
    static const char alphabet[] = "0123456789-,= \tbytesBYTES=-,-,,9999999999999999999999x";
    char buf[96];
    unsigned seed = 12345;
    int i, partial = 0, unsat = 0;

    for (i = 0; i != 200000; ++i) {
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf)), j, k, max = 1 + (size_t)(rand_r(&seed) % CR_RANGE_MAX_PARTS);
        uint64_t body = (uint64_t)(rand_r(&seed) % 4) == 0 ? (uint64_t)rand_r(&seed) : (uint64_t)(rand_r(&seed) % 200);
        uint64_t total = 0;
        cr_range_verdict_t v;

        j = 0;
        if (rand_r(&seed) % 2 == 0 && len >= 6) {
            memcpy(buf, "bytes=", 6);
            j = 6;
        }
        for (; j < len; ++j)
            buf[j] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        v = cr_range_parse(cr_str(buf, len), body, r, max, &n);
        if (v != CR_RANGE_PARTIAL) {
            CU_ASSERT_EQUAL(n, 0);
            unsat += v == CR_RANGE_UNSATISFIABLE;
            continue;
        }
        ++partial;
        CU_ASSERT(n >= 1 && n <= max);
        for (k = 0; k != n; ++k) {
            CU_ASSERT(r[k].first <= r[k].last && r[k].last < body);
            total += r[k].last - r[k].first + 1;
        }
        CU_ASSERT(total <= body);
    }
    /* the generator reaches all three verdicts */
    CU_ASSERT(partial > 100);
    CU_ASSERT(unsat > 10);
}

void cr_test_register_range(void)
{
    CU_pSuite s = CU_add_suite("range", NULL, NULL);
    CU_add_test(s, "one range: first-last, open-ended, suffix, clipped", test_single);
    CU_add_test(s, "several ranges; at most 16; overlaps past the body's length", test_several);
    CU_add_test(s, "unsatisfiable ranges", test_unsatisfiable);
    CU_add_test(s, "malformed or other units: ignored", test_ignored);
    CU_add_test(s, "If-Range: strong entity-tags, exact strong dates", test_if_range);
    CU_add_test(s, "multipart/byteranges text and Content-Range", test_multipart_text);
    CU_add_test(s, "random strings: no crash, results within the body", test_fuzz);
}
