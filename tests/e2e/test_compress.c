/*
 * test_compress.c: end-to-end tests of compression: gzip and brotli variants made once when an object is stored,
 * Accept-Encoding negotiation per request, per-variant validators, HEAD, upstream-compressed bodies, and on-the-fly
 * compression on an uncached route.
 *
 * Bodies are decoded here with zlib and libbrotlidec directly (not with corral's own code), and compared byte for
 * byte with the identity body. The upstream's request counts prove that one stored object serves every coding.
 */
#include <CUnit/CUnit.h>
#include <brotli/decode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "harness.h"

static cr_proc_t up, corral;

static const char *template = "threads: 2\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "routes:\n"
                              "  - match: { prefix: /stream }\n"
                              "    cache: false\n"
                              "    compress: true\n"
                              "  - match: { prefix: /plain }\n"
                              "    cache: false\n"
                              "  - match: { prefix: /slowbr }\n"
                              "    ttl: 60s\n"
                              "    compress: { brotli_quality: 11 }\n"
                              "  - match: { prefix: /gzonly }\n"
                              "    ttl: 60s\n"
                              "    compress: { encodings: [gzip] }\n"
                              "  - match: { prefix: / }\n"
                              "    ttl: 60s\n";

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* Decodes a gzip body into a malloc'ed buffer; returns its length or -1. */
static long gunzip_body(const char *in, size_t len, char **out)
{
    z_stream zs;
    size_t cap = 1 << 22;
    long n;
    memset(&zs, 0, sizeof(zs));
    *out = malloc(cap);
    if (*out == NULL || inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return -1;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)*out;
    zs.avail_out = (uInt)cap;
    n = inflate(&zs, Z_FINISH) == Z_STREAM_END ? (long)zs.total_out : -1;
    inflateEnd(&zs);
    return n;
}

static long unbrotli_body(const char *in, size_t len, char **out)
{
    size_t cap = 1 << 22;
    *out = malloc(cap);
    if (*out == NULL ||
        BrotliDecoderDecompress(len, (const uint8_t *)in, &cap, (uint8_t *)*out) != BROTLI_DECODER_RESULT_SUCCESS)
        return -1;
    return (long)cap;
}

static cr_resp_t get_ae(cr_proto_t proto, const char *method, const char *path, const char *ae, const char *extra)
{
    char h1[256], h2[256];
    const char *headers[3] = {NULL, NULL, NULL};
    cr_resp_t r;
    int n = 0;
    if (ae != NULL) {
        snprintf(h1, sizeof(h1), "Accept-Encoding: %s", ae);
        headers[n++] = h1;
    }
    if (extra != NULL) {
        snprintf(h2, sizeof(h2), "%s", extra);
        headers[n++] = h2;
    }
    CU_ASSERT_EQUAL(http_request(&r, proto, method, url_of(&corral, path), headers, NULL, 0), 0);
    return r;
}

static const char *hdr(const cr_resp_t *r, const char *name, char *buf, size_t size)
{
    const char *v = resp_header(r, name, buf, size);
    return v != NULL ? v : "";
}

static void test_variants_decode_to_the_identity_body(void)
{
    const char *p = "/v/json?size=20000";
    char ce[64], vary[64];
    char *dec;
    long n;
    cr_resp_t id = get_ae(CR_H1, "GET", p, NULL, NULL), gz = get_ae(CR_H2C, "GET", p, "gzip", NULL),
              br = get_ae(CR_H1, "GET", p, "br", NULL);
    CU_ASSERT_EQUAL(id.body_len, 20000);
    CU_ASSERT_STRING_EQUAL(hdr(&id, "content-encoding", ce, sizeof(ce)), "");
    CU_ASSERT_STRING_EQUAL(hdr(&gz, "content-encoding", ce, sizeof(ce)), "gzip");
    CU_ASSERT_STRING_EQUAL(hdr(&br, "content-encoding", ce, sizeof(ce)), "br");
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&gz, "vary", vary, sizeof(vary)), "accept-encoding"));
    CU_ASSERT(gz.body_len < id.body_len && br.body_len < id.body_len);
    n = gunzip_body(gz.body, gz.body_len, &dec);
    CU_ASSERT(n == (long)id.body_len && memcmp(dec, id.body, id.body_len) == 0);
    free(dec);
    n = unbrotli_body(br.body, br.body_len, &dec);
    CU_ASSERT(n == (long)id.body_len && memcmp(dec, id.body, id.body_len) == 0);
    free(dec);
    resp_free(&id);
    resp_free(&gz);
    resp_free(&br);
    CU_ASSERT_EQUAL(upstream_count(&up, "/v/json"), 1);
}

static void test_q_values_choose_the_coding(void)
{
    static const struct {
        const char *ae;
        long status;
        const char *ce;
    } cases[] = {
        {"gzip;q=1, br;q=0.5", 200, "gzip"}, {"br;q=0", 200, ""},      {"br;q=0, gzip", 200, "gzip"}, {"gzip, br", 200, "br"},
        {"*", 200, "br"},                    {"identity;q=0, *;q=0", 406, ""}, {"GZIP", 200, "gzip"}, {"br;q=0.5, gzip;q=0.5", 200, "br"},
    };
    size_t i;
    cr_resp_t r = get_ae(CR_H1, "GET", "/q/x?size=5000", NULL, NULL);
    resp_free(&r);
    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char ce[64];
        r = get_ae(CR_H1, "GET", "/q/x?size=5000", cases[i].ae, NULL);
        CU_ASSERT_EQUAL(r.status, cases[i].status);
        if (r.status == 200)
            CU_ASSERT_STRING_EQUAL(hdr(&r, "content-encoding", ce, sizeof(ce)), cases[i].ce);
        if (r.status != cases[i].status || (r.status == 200 && strcmp(hdr(&r, "content-encoding", ce, sizeof(ce)), cases[i].ce) != 0))
            fprintf(stderr, "Accept-Encoding '%s': %ld '%s'\n", cases[i].ae, r.status, hdr(&r, "content-encoding", ce, sizeof(ce)));
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/q/x"), 1);
}

static void test_binary_and_small_bodies_are_not_compressed(void)
{
    char ce[64];
    cr_resp_t r = get_ae(CR_H1, "GET", "/bin/x?size=5000&ctype=image/png", NULL, NULL);
    resp_free(&r);
    r = get_ae(CR_H1, "GET", "/bin/x?size=5000&ctype=image/png", "br, gzip", NULL);
    CU_ASSERT_EQUAL(r.body_len, 5000);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "content-encoding", ce, sizeof(ce)), "");
    resp_free(&r);
    r = get_ae(CR_H1, "GET", "/small/x?size=100", NULL, NULL);
    resp_free(&r);
    r = get_ae(CR_H1, "GET", "/small/x?size=100", "br, gzip", NULL);
    CU_ASSERT_EQUAL(r.body_len, 100);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "content-encoding", ce, sizeof(ce)), "");
    resp_free(&r);
}

static void test_route_can_restrict_encodings(void)
{
    char ce[64];
    cr_resp_t r = get_ae(CR_H1, "GET", "/gzonly/x?size=5000", "br, gzip", NULL);
    resp_free(&r);
    r = get_ae(CR_H1, "GET", "/gzonly/x?size=5000", "br, gzip", NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "content-encoding", ce, sizeof(ce)), "gzip");
    resp_free(&r);
}

static void test_one_upstream_request_for_three_accept_encodings(void)
{
    const char *aes[] = {"br", "gzip", NULL, "br, gzip", "identity"};
    size_t i;
    for (i = 0; i != sizeof(aes) / sizeof(aes[0]); ++i) {
        cr_resp_t r = get_ae(i % 2 ? CR_H2C : CR_H1, "GET", "/three/x?size=8000", aes[i], NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/three/x"), 1);
    {
        /* the fill did not forward any client's Accept-Encoding: the stored object is the plain one */
        char *log = upstream_log(&up, "/three/x");
        CU_ASSERT_PTR_NOT_NULL_FATAL(log);
        CU_ASSERT_PTR_NULL(strstr(log, "accept-encoding"));
        free(log);
    }
}

static void test_etag_and_304_per_variant(void)
{
    const char *p = "/etag/x?size=5000&etag=%22v7%22";
    char etag[64];
    cr_resp_t r = get_ae(CR_H1, "GET", p, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "etag", etag, sizeof(etag)), "\"v7\"");
    resp_free(&r);
    r = get_ae(CR_H1, "GET", p, "gzip", NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "etag", etag, sizeof(etag)), "\"v7-gz\"");
    resp_free(&r);
    r = get_ae(CR_H1, "GET", p, "br", NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "etag", etag, sizeof(etag)), "\"v7-br\"");
    resp_free(&r);
    /* If-None-Match matches the variant the request would get, and only that one */
    r = get_ae(CR_H1, "GET", p, "gzip", "If-None-Match: \"v7-gz\"");
    CU_ASSERT_EQUAL(r.status, 304);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "etag", etag, sizeof(etag)), "\"v7-gz\"");
    resp_free(&r);
    r = get_ae(CR_H1, "GET", p, "gzip", "If-None-Match: \"v7\"");
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    r = get_ae(CR_H1, "GET", p, "br", "If-None-Match: \"v7-gz\"");
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    r = get_ae(CR_H1, "GET", p, NULL, "If-None-Match: \"v7\"");
    CU_ASSERT_EQUAL(r.status, 304);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/etag/x"), 1);
}

/* The requester whose miss fetched the object is answered before the codings are made (identity, but with the Vary
 * every later answer carries); the stored object has them all the same: the next request gets br from it. */
static void test_first_answer_does_not_wait_for_the_codings(void)
{
    static const cr_proto_t protos[] = {CR_H1, CR_H2C};
    size_t i;
    for (i = 0; i != 2; ++i) {
        char p[96], path[32], ce[32], vary[64], cs[128];
        char *dec = NULL;
        long n;
        cr_resp_t first, second;
        snprintf(path, sizeof(path), "/first/%zu", i);
        snprintf(p, sizeof(p), "%s?size=20000", path);
        first = get_ae(protos[i], "GET", p, "br, gzip", NULL);
        second = get_ae(protos[i], "GET", p, "br, gzip", NULL);
        CU_ASSERT_EQUAL(first.status, 200);
        CU_ASSERT_EQUAL(first.body_len, 20000);
        CU_ASSERT_STRING_EQUAL(hdr(&first, "content-encoding", ce, sizeof(ce)), "");
        CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&first, "vary", vary, sizeof(vary)), "accept-encoding"));
        CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&first, "cache-status", cs, sizeof(cs)), "fwd=uri-miss; stored"));
        CU_ASSERT_EQUAL(second.status, 200);
        CU_ASSERT_STRING_EQUAL(hdr(&second, "content-encoding", ce, sizeof(ce)), "br");
        CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&second, "cache-status", cs, sizeof(cs)), "corral; hit"));
        n = unbrotli_body(second.body, second.body_len, &dec);
        CU_ASSERT(n == (long)first.body_len && memcmp(dec, first.body, first.body_len) == 0);
        free(dec);
        resp_free(&first);
        resp_free(&second);
        CU_ASSERT_EQUAL(upstream_count(&up, path), 1);
    }
}

/* Requests that come while a miss's codings are made (its leader has its answer already) are answered as if they
 * had come after the store: a hit in the coding they ask for, only-if-cached served, no-cache forwarded. 12 KB of
 * random letters at brotli quality 11 keep that window open for a few milliseconds, so that they land in it (the
 * body fits a new connection's send buffer: all of it reaches the client before the codings are made). */
static void test_requests_during_the_codings_see_the_store(void)
{
    const char *p = "/slowbr/x?size=12000&random=1";
    char ce[32], cs[128];
    cr_resp_t first = get_ae(CR_H1, "GET", p, NULL, NULL);
    cr_resp_t oic = get_ae(CR_H2C, "GET", p, "br", "Cache-Control: only-if-cached");
    cr_resp_t nc = get_ae(CR_H1, "GET", p, "gzip", "Cache-Control: no-cache");
    CU_ASSERT_EQUAL(first.status, 200);
    CU_ASSERT_EQUAL(first.body_len, 12000);
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&first, "cache-status", cs, sizeof(cs)), "stored"));
    CU_ASSERT_EQUAL(oic.status, 200);
    CU_ASSERT_STRING_EQUAL(hdr(&oic, "content-encoding", ce, sizeof(ce)), "br");
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&oic, "cache-status", cs, sizeof(cs)), "corral; hit"));
    CU_ASSERT_EQUAL(nc.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&nc, "cache-status", cs, sizeof(cs)), "fwd=request"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/slowbr/x"), 2);
    resp_free(&first);
    resp_free(&oic);
    resp_free(&nc);
}

/* A refresh answered before its codings are made (a no-cache request) is what the very next request gets: the
 * newer answer is stored at once, marked as waiting for its codings, so a request in that window waits for the copy
 * with them instead of being served the older object still stored. The upstream's X-Version header tells them
 * apart; a slow brotli keeps the window open. */
static void test_a_refresh_is_what_the_next_request_gets(void)
{
    const char *p = "/slowbr/refresh?size=300000&random=1";
    char ce[32], cs[128], v[16];
    cr_resp_t first, second, nc, after;
    upstream_set(&up, "/slowbr/refresh", "hdr=X-Version:1");
    first = get_ae(CR_H1, "GET", p, NULL, NULL);
    second = get_ae(CR_H1, "GET", p, "br", NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&second, "x-version", v, sizeof(v)), "1");
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&second, "cache-status", cs, sizeof(cs)), "corral; hit"));
    upstream_set(&up, "/slowbr/refresh", "hdr=X-Version:2");
    nc = get_ae(CR_H1, "GET", p, NULL, "Cache-Control: no-cache");
    after = get_ae(CR_H2C, "GET", p, "br", NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&nc, "x-version", v, sizeof(v)), "2");
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&nc, "cache-status", cs, sizeof(cs)), "fwd=request; stored"));
    CU_ASSERT_STRING_EQUAL(hdr(&after, "x-version", v, sizeof(v)), "2");
    CU_ASSERT_STRING_EQUAL(hdr(&after, "content-encoding", ce, sizeof(ce)), "br");
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&after, "cache-status", cs, sizeof(cs)), "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/slowbr/refresh"), 2);
    upstream_set(&up, "/slowbr/refresh", "");
    resp_free(&first);
    resp_free(&second);
    resp_free(&nc);
    resp_free(&after);
}

static void test_head_matches_get(void)
{
    const char *p = "/head/x?size=6000";
    char ce1[32], ce2[32], cl1[32], cl2[32];
    cr_resp_t first = get_ae(CR_H1, "GET", p, "br, gzip", NULL); /* the miss: answered before the codings exist */
    cr_resp_t g = get_ae(CR_H1, "GET", p, "br, gzip", NULL), h = get_ae(CR_H1, "HEAD", p, "br, gzip", NULL);
    resp_free(&first);
    CU_ASSERT_STRING_EQUAL(hdr(&g, "content-encoding", ce1, sizeof(ce1)), hdr(&h, "content-encoding", ce2, sizeof(ce2)));
    CU_ASSERT_STRING_EQUAL(hdr(&g, "content-length", cl1, sizeof(cl1)), hdr(&h, "content-length", cl2, sizeof(cl2)));
    CU_ASSERT_STRING_EQUAL(ce1, "br");
    CU_ASSERT_EQUAL(h.body_len, 0);
    resp_free(&g);
    resp_free(&h);
}

static void test_no_transform_is_respected(void)
{
    char ce[32];
    cr_resp_t r = get_ae(CR_H1, "GET", "/nt/x?size=5000&cc=max-age%3D60,no-transform", "gzip", NULL);
    resp_free(&r);
    r = get_ae(CR_H1, "GET", "/nt/x?size=5000&cc=max-age%3D60,no-transform", "gzip", NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "content-encoding", ce, sizeof(ce)), "");
    CU_ASSERT_EQUAL(r.body_len, 5000);
    resp_free(&r);
}

static void test_upstream_gzip_is_stored_as_is_and_decoded_for_identity_clients(void)
{
    const char *p = "/pre/x?size=30000&gzip=1";
    char ce[32], *dec;
    long n;
    cr_resp_t gz = get_ae(CR_H1, "GET", p, "gzip", NULL), id, br;
    CU_ASSERT_STRING_EQUAL(hdr(&gz, "content-encoding", ce, sizeof(ce)), "gzip");
    n = gunzip_body(gz.body, gz.body_len, &dec);
    CU_ASSERT_EQUAL(n, 30000);
    /* an identity client gets it decoded on the fly; a br client gets the stored gzip (no second compression) */
    id = get_ae(CR_H2C, "GET", p, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&id, "content-encoding", ce, sizeof(ce)), "");
    CU_ASSERT(id.body_len == 30000 && n == 30000 && memcmp(id.body, dec, 30000) == 0);
    br = get_ae(CR_H1, "GET", p, "br", NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&br, "content-encoding", ce, sizeof(ce)), "");
    CU_ASSERT_EQUAL(br.body_len, 30000);
    free(dec);
    resp_free(&gz);
    resp_free(&id);
    resp_free(&br);
    {
        cr_resp_t again = get_ae(CR_H1, "GET", p, "gzip, br", NULL);
        CU_ASSERT_STRING_EQUAL(hdr(&again, "content-encoding", ce, sizeof(ce)), "gzip");
        resp_free(&again);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/pre/x"), 1);
}

static void test_uncached_routes_compress_on_the_fly_only_when_asked(void)
{
    char ce[32], *dec;
    long n;
    cr_resp_t plain = get_ae(CR_H1, "GET", "/plain/x?size=50000", "gzip", NULL),
              gz = get_ae(CR_H1, "GET", "/stream/x?size=50000&chunked=1", "gzip", NULL),
              /* h1: Debian's libcurl 7.88.1 can stall on an h2 body without Content-Length (see test_server.c) */
              br = get_ae(CR_H1, "GET", "/stream/x?size=50000", "br", NULL),
              id = get_ae(CR_H1, "GET", "/stream/x?size=50000", NULL, NULL);
    CU_ASSERT_STRING_EQUAL(hdr(&plain, "content-encoding", ce, sizeof(ce)), "");
    CU_ASSERT_EQUAL(plain.body_len, 50000);
    CU_ASSERT_STRING_EQUAL(hdr(&gz, "content-encoding", ce, sizeof(ce)), "gzip");
    n = gunzip_body(gz.body, gz.body_len, &dec);
    CU_ASSERT(n == 50000 && memcmp(dec, plain.body, 50000) == 0);
    free(dec);
    CU_ASSERT_STRING_EQUAL(hdr(&br, "content-encoding", ce, sizeof(ce)), "br");
    n = unbrotli_body(br.body, br.body_len, &dec);
    CU_ASSERT(n == 50000 && memcmp(dec, plain.body, 50000) == 0);
    free(dec);
    CU_ASSERT_STRING_EQUAL(hdr(&id, "content-encoding", ce, sizeof(ce)), "");
    CU_ASSERT_EQUAL(id.body_len, 50000);
    resp_free(&plain);
    resp_free(&gz);
    resp_free(&br);
    resp_free(&id);
}

void cr_e2e_register_compress(void)
{
    CU_pSuite s = CU_add_suite("compress", suite_init, suite_cleanup);
    CU_add_test(s, "gzip and br variants decode to the identity body", test_variants_decode_to_the_identity_body);
    CU_add_test(s, "q-values choose the coding", test_q_values_choose_the_coding);
    CU_add_test(s, "binary and small bodies are not compressed", test_binary_and_small_bodies_are_not_compressed);
    CU_add_test(s, "a route can restrict the encodings", test_route_can_restrict_encodings);
    CU_add_test(s, "one upstream request for several Accept-Encodings", test_one_upstream_request_for_three_accept_encodings);
    CU_add_test(s, "ETag and 304 per variant", test_etag_and_304_per_variant);
    CU_add_test(s, "the first answer does not wait for the codings", test_first_answer_does_not_wait_for_the_codings);
    CU_add_test(s, "requests during the codings see the store", test_requests_during_the_codings_see_the_store);
    CU_add_test(s, "a refresh answered before its codings is what the next request gets", test_a_refresh_is_what_the_next_request_gets);
    CU_add_test(s, "HEAD matches GET", test_head_matches_get);
    CU_add_test(s, "no-transform is respected", test_no_transform_is_respected);
    CU_add_test(s, "upstream gzip stored as is, decoded for identity clients",
                test_upstream_gzip_is_stored_as_is_and_decoded_for_identity_clients);
    CU_add_test(s, "uncached routes compress on the fly only when asked", test_uncached_routes_compress_on_the_fly_only_when_asked);
}
