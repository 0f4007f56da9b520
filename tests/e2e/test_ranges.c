/*
 * test_ranges.c: end-to-end tests of byte ranges from the cache (issue 17, RFC 9110 14, RFC 9111 3.3-3.4), against
 * the real binary and the real test upstream, whose request count per path says whether the cache answered and
 * whose log says what a fill sent: one range, open-ended, suffix, several (multipart/byteranges, parsed and checked
 * byte for byte against the whole body), the whole 200 when that is smaller or the Range is ignored, 416, If-Range,
 * a range of a gzip representation, a range miss that fills the whole object once for a herd, and 206 answers of
 * the upstream passed through without a hit-for-pass marker. HTTP/1.1 and h2c.
 *
 * One upstream and one corral serve the suite (started in its init, stopped by PID in its cleanup); every test uses
 * its own paths.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static cr_proc_t up, corral;

static const char *config_template = "threads: 2\n"
                                     "listen:\n"
                                     "  - address: 127.0.0.1:${PORT}\n"
                                     "upstream:\n"
                                     "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                     "  timeout: 5s\n"
                                     "admin:\n"
                                     "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                     "cache:\n"
                                     "  memory: 64MiB\n"
                                     "  max_object_size: 64KiB\n"
                                     "routes:\n"
                                     "  - match: { prefix: /pass }\n"
                                     "    cache: false\n"
                                     "  - match: { prefix: / }\n";

static const cr_proto_t protos[] = {CR_H1, CR_H2C};
static const char *const proto_names[] = {"h1", "h2c"};

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, config_template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* GET path with up to two request headers (NULL: none). */
static void get2(cr_resp_t *r, cr_proto_t proto, const char *path, const char *h1, const char *h2)
{
    const char *hs[3] = {h1, h1 != NULL ? h2 : NULL, NULL};
    CU_ASSERT_EQUAL(http_request(r, proto, "GET", url_of(&corral, path), h1 != NULL ? hs : NULL, NULL, 0), 0);
}

static int has_header_value(const cr_resp_t *r, const char *name, const char *needle)
{
    char buf[1024];
    return resp_header(r, name, buf, sizeof(buf)) != NULL && strstr(buf, needle) != NULL;
}

/* The whole body of path (a fresh copy, malloc'ed, *len bytes), from a plain GET with optional Accept-Encoding. */
static char *whole_body(const char *path, const char *accept_encoding, size_t *len, long expect_status)
{
    cr_resp_t r;
    char *copy;
    get2(&r, CR_H1, path, accept_encoding, NULL);
    CU_ASSERT_EQUAL(r.status, expect_status);
    copy = malloc(r.body_len + 1);
    memcpy(copy, r.body, r.body_len + 1);
    *len = r.body_len;
    resp_free(&r);
    return copy;
}

/* Asserts r is a 206 holding exactly whole[first..last] of a `total`-byte representation. */
static void assert_single_part(const cr_resp_t *r, const char *whole, size_t first, size_t last, size_t total)
{
    char want[128], cr[128];
    CU_ASSERT_EQUAL(r->status, 206);
    snprintf(want, sizeof(want), "bytes %zu-%zu/%zu", first, last, total);
    CU_ASSERT_PTR_NOT_NULL(resp_header(r, "content-range", cr, sizeof(cr)));
    CU_ASSERT_STRING_EQUAL(cr, want);
    CU_ASSERT_EQUAL_FATAL(r->body_len, last - first + 1);
    CU_ASSERT(memcmp(r->body, whole + first, last - first + 1) == 0);
}

/* One range, open-ended and suffix on a hit: 206 with the right bytes, the 200's validators, and no upstream request. */
static void test_single_ranges_on_a_hit(void)
{
    const char *path = "/one/a?size=1000&cc=max-age%3D600&etag=%22v1%22";
    size_t len, i;
    char *whole = whole_body(path, NULL, &len, 200);
    char etag[128];

    CU_ASSERT_EQUAL_FATAL(len, 1000);
    for (i = 0; i != CR_ARRAY_SIZE(protos); ++i) {
        cr_resp_t r;
        get2(&r, protos[i], path, "Range: bytes=0-4", NULL);
        assert_single_part(&r, whole, 0, 4, 1000);
        CU_ASSERT(has_header_value(&r, "cache-status", "corral; hit"));
        CU_ASSERT(resp_header(&r, "etag", etag, sizeof(etag)) != NULL && strcmp(etag, "\"v1\"") == 0);
        CU_ASSERT_EQUAL(resp_header_count(&r, "content-encoding"), 0);
        resp_free(&r);
        get2(&r, protos[i], path, "Range: bytes=5-", NULL);
        assert_single_part(&r, whole, 5, 999, 1000);
        resp_free(&r);
        get2(&r, protos[i], path, "Range: bytes=-5", NULL);
        assert_single_part(&r, whole, 995, 999, 1000);
        resp_free(&r);
        get2(&r, protos[i], path, "Range: bytes=990-5000", NULL); /* last-pos past the end */
        assert_single_part(&r, whole, 990, 999, 1000);
        resp_free(&r);
        get2(&r, protos[i], path, "Range: bytes=-5000", NULL); /* a suffix longer than the body */
        assert_single_part(&r, whole, 0, 999, 1000);
        resp_free(&r);
        if (CU_get_number_of_failures() != 0)
            fprintf(stderr, "ranges: failures so far after %s\n", proto_names[i]);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/one/a"), 1);
    free(whole);
}

/* A HEAD ignores Range (it is defined for GET only); a malformed Range or another unit gets the whole 200. */
static void test_ignored_ranges_get_the_whole_200(void)
{
    static const char *const ignored[] = {"Range: bytes=5-4", "Range: items=0-1", "Range: bytes=x", "Range: bytes=0-1;2-3",
                                          "Range: bytes=,", "Range: bytes=0-,0-", /* overlapping past the length */
                                          ("Range: bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,10-10,11-11,12-12,13-13,"
                                           "14-14,15-15,16-16") /* 17 ranges */};
    const char *path = "/ignored/a?size=3000&cc=max-age%3D600";
    size_t len, i;
    char *whole = whole_body(path, NULL, &len, 200);
    cr_resp_t r;
    const char *hs[] = {"Range: bytes=0-4", NULL};

    for (i = 0; i != CR_ARRAY_SIZE(ignored); ++i) {
        get2(&r, CR_H1, path, ignored[i], NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(r.body_len == len && memcmp(r.body, whole, len) == 0);
        CU_ASSERT_EQUAL(resp_header_count(&r, "content-range"), 0);
        if (r.status != 200)
            fprintf(stderr, "ranges: \"%s\" got %ld\n", ignored[i], r.status);
        resp_free(&r);
    }
    /* Range on two lines is no valid Range */
    get2(&r, CR_H1, path, "Range: bytes=0-4", "Range: bytes=5-9");
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, len);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "HEAD", url_of(&corral, path), hs, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(resp_header_count(&r, "content-range"), 0);
    CU_ASSERT(has_header_value(&r, "content-length", "3000"));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ignored/a"), 1);
    free(whole);
}

/* Checks a multipart/byteranges body part by part against the whole body: each part's Content-Type and
 * Content-Range, its bytes, the delimiters and the closing one, and nothing after it. Returns the parts seen. */
static int check_multipart(const cr_resp_t *r, const char *whole, size_t total, const char *part_type)
{
    char ct[256], delim[300], closing[300];
    const char *b, *p = r->body, *end = r->body + r->body_len;
    int parts = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(resp_header(r, "content-type", ct, sizeof(ct)));
    CU_ASSERT_FATAL(strncmp(ct, "multipart/byteranges; boundary=", 31) == 0);
    b = ct + 31;
    CU_ASSERT_FATAL(strlen(b) >= 8 && strlen(b) <= 70);
    snprintf(delim, sizeof(delim), "\r\n--%s\r\n", b);
    snprintf(closing, sizeof(closing), "\r\n--%s--\r\n", b);
    for (;;) {
        const char *head_end, *line;
        size_t first, last, len;
        int saw_type = 0, saw_range = 0;

        if ((size_t)(end - p) == strlen(closing) && memcmp(p, closing, strlen(closing)) == 0)
            return parts;
        CU_ASSERT_FATAL((size_t)(end - p) > strlen(delim) && memcmp(p, delim, strlen(delim)) == 0);
        p += strlen(delim);
        head_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        CU_ASSERT_PTR_NOT_NULL_FATAL(head_end);
        for (line = p; line < head_end;) {
            const char *eol = memmem(line, (size_t)(head_end + 2 - line), "\r\n", 2);
            char field[256];
            size_t flen = (size_t)(eol - line);
            CU_ASSERT_FATAL(flen < sizeof(field));
            memcpy(field, line, flen);
            field[flen] = '\0';
            if (strncasecmp(field, "content-type: ", 14) == 0) {
                CU_ASSERT_STRING_EQUAL(field + 14, part_type);
                saw_type = 1;
            } else if (strncasecmp(field, "content-range: ", 15) == 0) {
                CU_ASSERT_EQUAL_FATAL(sscanf(field + 15, "bytes %zu-%zu/%zu", &first, &last, &len), 3);
                CU_ASSERT_EQUAL(len, total);
                saw_range = 1;
            }
            line = eol + 2;
        }
        CU_ASSERT(saw_type);
        CU_ASSERT_FATAL(saw_range);
        p = head_end + 4;
        CU_ASSERT_FATAL(first <= last && last < total && (size_t)(end - p) >= last - first + 1);
        CU_ASSERT(memcmp(p, whole + first, last - first + 1) == 0);
        p += last - first + 1;
        ++parts;
    }
}

/* Several ranges: multipart/byteranges, byte for byte, in the order asked; the whole 200 when that is smaller. */
static void test_several_ranges_multipart(void)
{
    const char *path = "/multi/a?size=5000&cc=max-age%3D600", *tiny = "/multi/tiny?size=100&cc=max-age%3D600";
    size_t len, tlen, i;
    char *whole = whole_body(path, NULL, &len, 200), *twhole = whole_body(tiny, NULL, &tlen, 200);

    CU_ASSERT_EQUAL_FATAL(len, 5000);
    for (i = 0; i != CR_ARRAY_SIZE(protos); ++i) {
        cr_resp_t r;
        char cl[32];
        get2(&r, protos[i], path, "Range: bytes=0-9, 100-199,-50, 4000-", NULL);
        CU_ASSERT_EQUAL(r.status, 206);
        CU_ASSERT_EQUAL(resp_header_count(&r, "content-range"), 0);
        CU_ASSERT(has_header_value(&r, "cache-status", "corral; hit"));
        CU_ASSERT_EQUAL(check_multipart(&r, whole, 5000, "application/json"), 4);
        CU_ASSERT(resp_header(&r, "content-length", cl, sizeof(cl)) == NULL || (size_t)atol(cl) == r.body_len);
        CU_ASSERT(r.body_len < 5000);
        resp_free(&r);
        /* the most ranges taken: 16 parts (33 buffers in one send) */
        get2(&r, protos[i], path,
             "Range: bytes=0-0,300-310,20-20,30-30,40-40,50-50,60-60,70-70,80-80,90-90,100-100,110-110,120-120,130-130,"
             "140-140,-1",
             NULL);
        CU_ASSERT_EQUAL(r.status, 206);
        CU_ASSERT_EQUAL(check_multipart(&r, whole, 5000, "application/json"), 16);
        resp_free(&r);
        /* a small body: the multipart would be larger than the whole 200 */
        get2(&r, protos[i], tiny, "Range: bytes=0-1,5-6", NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(r.body_len == tlen && memcmp(r.body, twhole, tlen) == 0);
        resp_free(&r);
        /* one satisfiable range among unsatisfiable ones is a single part */
        get2(&r, protos[i], path, "Range: bytes=9000-,10-19", NULL);
        assert_single_part(&r, whole, 10, 19, 5000);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/multi/a"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/multi/tiny"), 1);
    free(whole);
    free(twhole);
}

/* No range overlaps the body: 416 with Content-Range: bytes * /len (no space), never cacheable downstream. */
static void test_unsatisfiable_gets_416(void)
{
    const char *path = "/unsat/a?size=2000&cc=max-age%3D600";
    size_t len, i;
    char *whole = whole_body(path, NULL, &len, 200);

    for (i = 0; i != CR_ARRAY_SIZE(protos); ++i) {
        cr_resp_t r;
        char cr[64];
        get2(&r, protos[i], path, "Range: bytes=2000-", NULL);
        CU_ASSERT_EQUAL(r.status, 416);
        CU_ASSERT(resp_header(&r, "content-range", cr, sizeof(cr)) != NULL && strcmp(cr, "bytes */2000") == 0);
        CU_ASSERT(has_header_value(&r, "cache-control", "no-store"));
        CU_ASSERT(has_header_value(&r, "cache-status", "corral; hit"));
        CU_ASSERT_EQUAL(resp_header_count(&r, "etag"), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "range_not_satisfiable"));
        resp_free(&r);
        get2(&r, protos[i], path, "Range: bytes=5000-6000, -0", NULL);
        CU_ASSERT_EQUAL(r.status, 416);
        resp_free(&r);
    }
    /* a plain GET afterwards still gets the stored 200 */
    {
        size_t len2;
        char *again = whole_body(path, NULL, &len2, 200);
        CU_ASSERT(len2 == len && memcmp(again, whole, len) == 0);
        free(again);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/unsat/a"), 1);
    free(whole);
}

#define LM_PARAM "lm=Sun,%2006%20Nov%201994%2008:49:37%20GMT"
#define LM_VALUE "Sun, 06 Nov 1994 08:49:37 GMT"

/* If-Range: a strong ETag or the exact Last-Modified gets the range; anything else the whole 200. A conditional
 * request's If-None-Match is answered first (304). */
static void test_if_range(void)
{
    const char *path = "/ifrange/a?size=1000&cc=max-age%3D600&etag=%22v1%22&" LM_PARAM;
    static const char *const whole_conds[] = {"If-Range: \"v2\"", "If-Range: W/\"v1\"", "If-Range: \"v1-gz\"",
                                              "If-Range: Sun, 06 Nov 1994 08:49:38 GMT", "If-Range: yesterday"};
    size_t len, i, j;
    char *whole = whole_body(path, NULL, &len, 200);

    for (i = 0; i != CR_ARRAY_SIZE(protos); ++i) {
        cr_resp_t r;
        get2(&r, protos[i], path, "Range: bytes=0-9", "If-Range: \"v1\"");
        assert_single_part(&r, whole, 0, 9, 1000);
        resp_free(&r);
        get2(&r, protos[i], path, "Range: bytes=0-9", "If-Range: " LM_VALUE);
        assert_single_part(&r, whole, 0, 9, 1000);
        resp_free(&r);
        for (j = 0; j != CR_ARRAY_SIZE(whole_conds); ++j) {
            get2(&r, protos[i], path, "Range: bytes=0-9", whole_conds[j]);
            CU_ASSERT_EQUAL(r.status, 200);
            CU_ASSERT(r.body_len == len && memcmp(r.body, whole, len) == 0);
            if (r.status != 200)
                fprintf(stderr, "ranges: %s got %ld\n", whole_conds[j], r.status);
            resp_free(&r);
        }
        get2(&r, protos[i], path, "Range: bytes=0-9", "If-None-Match: \"v1\"");
        CU_ASSERT_EQUAL(r.status, 304);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/ifrange/a"), 1);
    free(whole);
}

/* Ranges of the coding the client gets: the stored gzip body's bytes, its Content-Encoding and its own ETag. */
static void test_range_of_the_gzip_representation(void)
{
    const char *path = "/coded/a?size=6000&cc=max-age%3D600&etag=%22v1%22";
    size_t len, glen, i;
    char *whole = whole_body(path, NULL, &len, 200), *gz = whole_body(path, "Accept-Encoding: gzip", &glen, 200);
    char buf[128];

    CU_ASSERT_EQUAL_FATAL(len, 6000);
    CU_ASSERT_FATAL(glen > 20 && glen < len);
    for (i = 0; i != CR_ARRAY_SIZE(protos); ++i) {
        cr_resp_t r;
        get2(&r, protos[i], path, "Range: bytes=0-9", "Accept-Encoding: gzip");
        assert_single_part(&r, gz, 0, 9, glen);
        CU_ASSERT(resp_header(&r, "content-encoding", buf, sizeof(buf)) != NULL && strcmp(buf, "gzip") == 0);
        CU_ASSERT(resp_header(&r, "etag", buf, sizeof(buf)) != NULL && strcmp(buf, "\"v1-gz\"") == 0);
        CU_ASSERT(has_header_value(&r, "vary", "ccept-encoding"));
        resp_free(&r);
        get2(&r, protos[i], path, "Range: bytes=-10", "Accept-Encoding: gzip");
        assert_single_part(&r, gz, glen - 10, glen - 1, glen);
        resp_free(&r);
        /* If-Range with the gzip representation's ETag holds; the identity one's does not */
        {
            const char *hs[] = {"Range: bytes=0-9", "Accept-Encoding: gzip", "If-Range: \"v1-gz\"", NULL};
            CU_ASSERT_EQUAL(http_request(&r, protos[i], "GET", url_of(&corral, path), hs, NULL, 0), 0);
            assert_single_part(&r, gz, 0, 9, glen);
            resp_free(&r);
        }
        {
            const char *hs[] = {"Range: bytes=0-9", "Accept-Encoding: gzip", "If-Range: \"v1\"", NULL};
            CU_ASSERT_EQUAL(http_request(&r, protos[i], "GET", url_of(&corral, path), hs, NULL, 0), 0);
            CU_ASSERT_EQUAL(r.status, 200);
            CU_ASSERT(r.body_len == glen && memcmp(r.body, gz, glen) == 0);
            resp_free(&r);
        }
        /* several ranges of a coded representation: the whole (coded) 200 */
        get2(&r, protos[i], path, "Range: bytes=0-1,10-11", "Accept-Encoding: gzip");
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(r.body_len == glen && memcmp(r.body, gz, glen) == 0);
        resp_free(&r);
        /* identity ranges of the same object are the identity bytes */
        get2(&r, protos[i], path, "Range: bytes=100-199", "Accept-Encoding: identity");
        assert_single_part(&r, whole, 100, 199, 6000);
        CU_ASSERT(resp_header(&r, "etag", buf, sizeof(buf)) != NULL && strcmp(buf, "\"v1\"") == 0);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/coded/a"), 1);
    free(whole);
    free(gz);

    /* stored only as the upstream's gzip: its bytes for a client that takes gzip (the ETag as received); a client
     * that does not is sent the whole body decoded on the fly, never a range of it */
    {
        const char *upath = "/coded/upstream-gzip?size=3000&gzip=1&cc=max-age%3D600&etag=%22u1%22";
        size_t ulen, dlen;
        char *ugz = whole_body(upath, "Accept-Encoding: gzip", &ulen, 200),
             *dec = whole_body(upath, "Accept-Encoding: identity", &dlen, 200);
        cr_resp_t r;
        CU_ASSERT_EQUAL(dlen, 3000);
        get2(&r, CR_H2C, upath, "Range: bytes=2-5", "Accept-Encoding: gzip");
        assert_single_part(&r, ugz, 2, 5, ulen);
        CU_ASSERT(resp_header(&r, "etag", buf, sizeof(buf)) != NULL && strcmp(buf, "\"u1\"") == 0);
        resp_free(&r);
        get2(&r, CR_H1, upath, "Range: bytes=2-5", "Accept-Encoding: identity");
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(r.body_len == dlen && memcmp(r.body, dec, dlen) == 0);
        resp_free(&r);
        CU_ASSERT_EQUAL(upstream_count(&up, "/coded/upstream-gzip"), 1);
        free(ugz);
        free(dec);
    }
}

/* A miss for a Range request fills the whole object (the upstream sees no Range), answers the range from it, and a
 * herd of range misses is one fill. */
static void test_range_miss_fills_the_whole_object(void)
{
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(protos); ++i) {
        char path[128], upath[64];
        cr_resp_t r;
        size_t len;
        char *whole, *log;

        snprintf(upath, sizeof(upath), "/miss/%s", proto_names[i]);
        snprintf(path, sizeof(path), "%s?cc=max-age%%3D600", upath);
        get2(&r, protos[i], path, "Range: bytes=10-19", "If-Range: \"whatever\""); /* If-Range fails: whole 200 */
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(has_header_value(&r, "cache-status", "fwd=uri-miss; stored"));
        resp_free(&r);
        whole = whole_body(path, NULL, &len, 200); /* a hit: the upstream's JSON, with the headers of the fill */
        CU_ASSERT_PTR_NULL(strstr(whole, "\"range\""));
        CU_ASSERT_PTR_NULL(strstr(whole, "\"if-range\""));
        CU_ASSERT_PTR_NOT_NULL(strstr(whole, "\"n\": 1"));
        free(whole);

        /* now a real range miss: another path */
        snprintf(upath, sizeof(upath), "/miss2/%s", proto_names[i]);
        snprintf(path, sizeof(path), "%s?cc=max-age%%3D600", upath);
        get2(&r, protos[i], path, "Range: bytes=10-19", NULL);
        CU_ASSERT(has_header_value(&r, "cache-status", "fwd=uri-miss; stored"));
        whole = whole_body(path, NULL, &len, 200);
        assert_single_part(&r, whole, 10, 19, len);
        resp_free(&r);
        CU_ASSERT_PTR_NULL(strstr(whole, "\"range\""));
        free(whole);
        log = upstream_log(&up, upath);
        CU_ASSERT_PTR_NOT_NULL_FATAL(log);
        CU_ASSERT_PTR_NULL(strstr(log, "\"range\""));
        free(log);
        CU_ASSERT_EQUAL(upstream_count(&up, upath), 1);
    }
    /* a herd of range misses on a slow upstream: one fill, every answer the right bytes */
    {
        const char *path = "/miss/herd?cc=max-age%3D600&delay=400&size=4000";
        const char *hs[] = {"Range: bytes=100-149", NULL};
        cr_resp_t rs[8];
        size_t len;
        char *whole;
        CU_ASSERT_EQUAL(http_parallel_get(rs, CR_ARRAY_SIZE(rs), CR_H1, url_of(&corral, path), hs, 0), 0);
        whole = whole_body(path, NULL, &len, 200);
        CU_ASSERT_EQUAL_FATAL(len, 4000);
        for (i = 0; i != CR_ARRAY_SIZE(rs); ++i) {
            assert_single_part(&rs[i], whole, 100, 149, 4000);
            resp_free(&rs[i]);
        }
        CU_ASSERT_EQUAL(upstream_count(&up, "/miss/herd"), 1);
        free(whole);
    }
}

/* An upstream 206 reaches its client as sent and leaves no hit-for-pass marker: the next plain GET is a normal
 * miss, stored. Too large to store: the client's Range goes upstream (a pass) and the upstream's 206 comes back. */
static void test_upstream_206_passes_through(void)
{
    cr_resp_t r;
    char buf[128];

    /* a 206 nobody asked for (fills send no Range) */
    CU_ASSERT_EQUAL_FATAL(upstream_set(&up, "/p206/a", "status=206&hdr=Content-Range:bytes%200-9/100&cc=max-age%3D600"), 0);
    get2(&r, CR_H1, "/p206/a", NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 206);
    CU_ASSERT(resp_header(&r, "content-range", buf, sizeof(buf)) != NULL && strcmp(buf, "bytes 0-9/100") == 0);
    CU_ASSERT(has_header_value(&r, "cache-status", "fwd=uri-miss"));
    CU_ASSERT(has_header_value(&r, "cache-status", "detail=partial-content"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"n\": 1")); /* the upstream's body, as sent */
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(upstream_set(&up, "/p206/a", "cc=max-age%3D600"), 0);
    get2(&r, CR_H1, "/p206/a", NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(has_header_value(&r, "cache-status", "fwd=uri-miss; stored"));
    CU_ASSERT_FALSE(has_header_value(&r, "cache-status", "hit-for-pass"));
    resp_free(&r);
    get2(&r, CR_H2C, "/p206/a", "Range: bytes=0-3", NULL);
    CU_ASSERT_EQUAL(r.status, 206);
    CU_ASSERT(has_header_value(&r, "cache-status", "corral; hit"));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/p206/a"), 2);

    /* too large to store (max_object_size 64KiB): passed with the client's Range, the upstream's 206 relayed */
    {
        size_t i;
        for (i = 0; i != CR_ARRAY_SIZE(protos); ++i) {
            get2(&r, protos[i], "/big/a?size=100000&ranges=1&cc=max-age%3D600", "Range: bytes=70000-70009", NULL);
            CU_ASSERT_EQUAL(r.status, 206);
            CU_ASSERT(resp_header(&r, "content-range", buf, sizeof(buf)) != NULL &&
                      strcmp(buf, "bytes 70000-70009/100000") == 0);
            CU_ASSERT_EQUAL(r.body_len, 10);
            resp_free(&r);
        }
        CU_ASSERT_EQUAL(upstream_count(&up, "/big/a"), (long)CR_ARRAY_SIZE(protos) + 1); /* the fill, then each pass */
    }
    /* a cache: false route passes Range and the 206 as they are */
    get2(&r, CR_H2C, "/pass/a?size=1000&ranges=1", "Range: bytes=-10", NULL);
    CU_ASSERT_EQUAL(r.status, 206);
    CU_ASSERT(resp_header(&r, "content-range", buf, sizeof(buf)) != NULL && strcmp(buf, "bytes 990-999/1000") == 0);
    CU_ASSERT_EQUAL(r.body_len, 10);
    CU_ASSERT_EQUAL(resp_header_count(&r, "cache-status"), 0);
    resp_free(&r);
}

void cr_e2e_register_ranges(void)
{
    CU_pSuite s = CU_add_suite("ranges", suite_init, suite_cleanup);
    CU_add_test(s, "one range, open-ended, suffix on a hit: 206, nothing asked upstream", test_single_ranges_on_a_hit);
    CU_add_test(s, "malformed, overlapping, too many, HEAD, two lines: the whole 200", test_ignored_ranges_get_the_whole_200);
    CU_add_test(s, "several ranges: multipart/byteranges byte for byte, or the smaller whole 200",
                test_several_ranges_multipart);
    CU_add_test(s, "unsatisfiable: 416 with Content-Range bytes */len", test_unsatisfiable_gets_416);
    CU_add_test(s, "If-Range: strong ETag or exact date, else the whole 200; If-None-Match first", test_if_range);
    CU_add_test(s, "ranges of the gzip representation, with its ETag", test_range_of_the_gzip_representation);
    CU_add_test(s, "a range miss fills the whole object once, without Range", test_range_miss_fills_the_whole_object);
    CU_add_test(s, "an upstream 206 passes through and leaves no hit-for-pass marker", test_upstream_206_passes_through);
}
