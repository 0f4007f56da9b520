/*
 * test_h1_response.c: unit tests for h1_response.c, the strict upstream response-head parser: valid heads (whole
 * and fed one byte at a time), body framing per RFC 9112 §6.3, interim responses, keep-alive, and every malformed
 * form the parser must reject before any header reaches corral.
 */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/http/h1_response.h"

#define LIMIT 65536

static h2o_mem_pool_t pool;
static const char *why;

/* Parses `in` (len bytes) whole. */
static ssize_t parse_n(const char *in, size_t len, int is_head, cr_h1_head_t *head)
{
    cr_h1_parser_t p;
    cr_h1_parser_init(&p, LIMIT);
    why = NULL;
    return cr_h1_parse_response(&p, in, len, is_head, &pool, head, &why);
}

static ssize_t parse(const char *in, cr_h1_head_t *head)
{
    return parse_n(in, strlen(in), 0, head);
}

/* Feeds `in` one more byte at a time (the buffer grows, as a socket's input does); the result of the last call. */
static ssize_t parse_bytewise(const char *in, cr_h1_head_t *head, size_t *calls)
{
    cr_h1_parser_t p;
    size_t len = strlen(in), i;
    ssize_t r = -2;
    cr_h1_parser_init(&p, LIMIT);
    *calls = 0;
    for (i = 1; i <= len && r == -2; ++i, ++*calls)
        r = cr_h1_parse_response(&p, in, i, 0, &pool, head, &why);
    return r;
}

static const char *header(const cr_h1_head_t *h, const char *lname)
{
    static char buf[256];
    size_t i;
    for (i = 0; i != h->num_headers; ++i) {
        if (h->headers[i].name->len == strlen(lname) && memcmp(h->headers[i].name->base, lname, strlen(lname)) == 0) {
            snprintf(buf, sizeof(buf), "%.*s", (int)h->headers[i].value.len, h->headers[i].value.base);
            return buf;
        }
    }
    return NULL;
}

static size_t count_header(const cr_h1_head_t *h, const char *lname)
{
    size_t i, n = 0;
    for (i = 0; i != h->num_headers; ++i)
        n += h->headers[i].name->len == strlen(lname) && memcmp(h->headers[i].name->base, lname, strlen(lname)) == 0;
    return n;
}

static void test_valid(void)
{
    static const char *in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Custom:  spaced value \t\r\nContent-Length: 5\r\n\r\nhello";
    cr_h1_head_t h;
    size_t calls;
    ssize_t r = parse(in, &h);
    CU_ASSERT_EQUAL(r, (ssize_t)(strlen(in) - 5));
    CU_ASSERT_EQUAL(h.status, 200);
    CU_ASSERT_EQUAL(h.minor_version, 1);
    CU_ASSERT_EQUAL(h.reason.len, 2);
    CU_ASSERT_EQUAL(h.num_headers, 3);
    CU_ASSERT_PTR_EQUAL(h.headers[0].name, &H2O_TOKEN_CONTENT_TYPE->buf);
    CU_ASSERT_STRING_EQUAL(header(&h, "x-custom"), "spaced value");
    CU_ASSERT_EQUAL(memcmp(h.headers[1].orig_name, "X-Custom", 8), 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_LENGTH);
    CU_ASSERT_EQUAL(h.content_length, 5);
    CU_ASSERT(h.keep_alive);
    /* byte by byte: the same answer, at the first call that has the whole head */
    r = parse_bytewise(in, &h, &calls);
    CU_ASSERT_EQUAL(r, (ssize_t)(strlen(in) - 5));
    CU_ASSERT_EQUAL(calls, strlen(in) - 5);
    CU_ASSERT_EQUAL(h.status, 200);
    CU_ASSERT_EQUAL(h.content_length, 5);
    /* an empty reason, and a reason with obs-text */
    CU_ASSERT(parse("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.reason.len, 0);
    CU_ASSERT(parse("HTTP/1.1 200 \xc3\xa9t\xc3\xa9 ok\r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT(parse("HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.status, 200);
    /* incomplete */
    CU_ASSERT_EQUAL(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", &h), -2);
    CU_ASSERT_EQUAL(parse("", &h), -2);
    CU_ASSERT_EQUAL(parse("HTTP/1.1 200 OK\r\n\r", &h), -2);
}

static void test_framing(void)
{
    cr_h1_head_t h;
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_CHUNKED);
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_CHUNKED);
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding:  CHUNKED \r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_CHUNKED);
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_CLOSE);
    CU_ASSERT(!h.keep_alive);
    CU_ASSERT(parse("HTTP/1.1 204 No Content\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_NONE);
    CU_ASSERT(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_NONE);
    CU_ASSERT(h.has_content_length);
    CU_ASSERT(parse_n("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 39, 1, &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_NONE);
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_LENGTH);
    CU_ASSERT_EQUAL(h.content_length, 0);
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.content_length, 999999999999999999ull);
    /* repeated Content-Length with the same value: one field, canonical */
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.content_length, 5);
    CU_ASSERT_STRING_EQUAL(header(&h, "content-length"), "5");
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\ncontent-length: 5\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(count_header(&h, "content-length"), 1);
    CU_ASSERT_STRING_EQUAL(header(&h, "content-length"), "5");
    CU_ASSERT_EQUAL(h.num_headers, 2);
    /* keep-alive */
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT(!h.keep_alive);
    CU_ASSERT(parse("HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT(!h.keep_alive);
    CU_ASSERT(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT(!h.keep_alive);
    CU_ASSERT(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", &h) > 0);
    CU_ASSERT(h.keep_alive);
    CU_ASSERT(parse("HTTP/1.0 200 OK\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.body, CR_H1_BODY_CLOSE);
}

#define BAD(in) bad(in, sizeof(in) - 1, __LINE__)
static void bad(const char *in, size_t len, int line)
{
    cr_h1_head_t h;
    ssize_t r = parse_n(in, len, 0, &h);
    if (r != -1)
        fprintf(stderr, "\n  line %d: %zd for a malformed head\n", line, r);
    CU_ASSERT_EQUAL(r, -1);
    CU_ASSERT_PTR_NOT_NULL(why);
    if (why != NULL)
        CU_ASSERT_PTR_NULL(strchr(why, '\n'));
}

/* A status line that ends right after the code has an empty reason (nginx and Varnish take it). */
static void test_status_without_reason(void)
{
    static const char in[] = "HTTP/1.1 204\r\nX: y\r\n\r\n";
    cr_h1_head_t h;
    CU_ASSERT_EQUAL(parse(in, &h), (ssize_t)strlen(in));
    CU_ASSERT_EQUAL(h.status, 204);
    CU_ASSERT_EQUAL(h.reason.len, 0);
    CU_ASSERT_STRING_EQUAL(header(&h, "x"), "y");
}

static void test_malformed_status(void)
{
    BAD("HTTP/1.1 000 Zero\r\n\r\n");
    BAD("HTTP/1.1 099 Low\r\n\r\n");
    BAD("HTTP/1.1 600 High\r\n\r\n");
    BAD("HTTP/1.1 1000 Long\r\n\r\n");
    BAD("HTTP/1.1 20 Short\r\n\r\n");
    BAD("HTTP/1.1 2x0 Hex\r\n\r\n");
    BAD("HTTP/1.1 200X\r\n\r\n");
    BAD("HTTP/1.1  200 OK\r\n\r\n");
    BAD("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n");
    BAD("HTTP/2.0 200 OK\r\n\r\n");
    BAD("HTTP/1.x 200 OK\r\n\r\n");
    BAD("http/1.1 200 OK\r\n\r\n");
    BAD("ICY 200 OK\r\n\r\n");
    BAD("HTTP/1.1 200 O\x01K\r\n\r\n");
    BAD("HTTP/1.1 200 O\x7fK\r\n\r\n");
    BAD("HTTP/1.1 200 O\0K\r\n\r\n");
    BAD("\r\nHTTP/1.1 200 OK\r\n\r\n");
    BAD("\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n");
}

static void test_malformed_lines(void)
{
    BAD("HTTP/1.1 200 OK\nContent-Length: 0\n\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\n X: a\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX A: b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\n: b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX-A b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX(A): b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX-A: a\x01"
        "b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nX-A: a\x7f"
        "b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\n\x80X: b\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\r\n\r\n");
}

static void test_malformed_framing(void)
{
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked , x\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n");
    BAD("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: ,5\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 05x\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
    BAD("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
    /* also when the answer has no body (HEAD) */
    {
        static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n";
        cr_h1_head_t h;
        CU_ASSERT_EQUAL(parse_n(in, sizeof(in) - 1, 1, &h), -1);
    }
}

static void test_interim(void)
{
    cr_h1_head_t h;
    char buf[4096];
    size_t i, n = 0;
    CU_ASSERT(parse("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                    "Content-Length: 0\r\n\r\n",
                    &h) > 0);
    CU_ASSERT_EQUAL(h.status, 201);
    CU_ASSERT_EQUAL(h.num_headers, 1);
    CU_ASSERT_PTR_NULL(header(&h, "link"));
    /* an interim response is validated too */
    BAD("HTTP/1.1 100 Continue\r\nX: a\r\n b\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    /* bounded */
    for (i = 0; i != CR_H1_MAX_INTERIM + 1; ++i)
        n += (size_t)sprintf(buf + n, "HTTP/1.1 103 Early Hints\r\n\r\n");
    n += (size_t)sprintf(buf + n, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    CU_ASSERT_EQUAL(parse_n(buf, n, 0, &h), -1);
    n = 0;
    for (i = 0; i != CR_H1_MAX_INTERIM; ++i)
        n += (size_t)sprintf(buf + n, "HTTP/1.1 103 Early Hints\r\n\r\n");
    n += (size_t)sprintf(buf + n, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    CU_ASSERT_EQUAL(parse_n(buf, n, 0, &h), (ssize_t)n);
}

static void test_limit(void)
{
    cr_h1_parser_t p;
    cr_h1_head_t h;
    size_t len = 1 << 20, i, calls = 0, limit = 8192;
    char *buf = malloc(len);
    ssize_t r = -2;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memcpy(buf, "HTTP/1.1 200 OK\r\n", 17);
    for (i = 17; i + 8 <= len; i += 8)
        memcpy(buf + i, "X: abc\r\n", 8);
    /* an endless head fed 100 bytes at a time: rejected once it passes the limit, not at the end */
    cr_h1_parser_init(&p, limit);
    for (i = 100; i <= len && r == -2; i += 100, ++calls)
        r = cr_h1_parse_response(&p, buf, i, 0, &pool, &h, &why);
    CU_ASSERT_EQUAL(r, -1);
    CU_ASSERT(calls <= limit / 100 + 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "upstream_header_size"));
    /* a head just under the limit passes, one byte over fails */
    memcpy(buf + 8192 - 4 - 6, "X: ab\r\n\r\n", 9);
    cr_h1_parser_init(&p, limit);
    CU_ASSERT_EQUAL(cr_h1_parse_response(&p, buf, 8192 - 1, 0, &pool, &h, &why), 8192 - 1);
    cr_h1_parser_init(&p, limit - 2);
    CU_ASSERT_EQUAL(cr_h1_parse_response(&p, buf, 8192 - 1, 0, &pool, &h, &why), -1);
    free(buf);
}

/*
 * Mutated heads (a fixed pseudo-random sequence): every one is parsed whole and then as it would arrive in pieces,
 * each time from a heap buffer exactly as long as what came (so ASan sees any read past the end); both give the same
 * answer, and an accepted head has a status in 100..599 (the callbacks never see another).
 */
static void test_mutations(void)
{
    static const char *const seeds[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No\r\nConnection: keep-alive, close\r\nContent-Length: 5, 5\r\n\r\n",
        "HTTP/1.1 103 E\r\nLink: a\r\n\r\nHTTP/1.1 304 N\r\nTransfer-Encoding: Chunked\r\n\r\n",
    };
    uint32_t rnd = 12345;
    char buf[256];
    size_t it;
#define RND() (rnd = rnd * 1103515245u + 12345u, (rnd >> 16) & 0x7fff)
    for (it = 0; it != 20000; ++it) {
        const char *seed = seeds[RND() % 3];
        size_t len = strlen(seed), m, muts = RND() % 5, step = 1 + RND() % 16, n;
        ssize_t whole, pieces = -2;
        cr_h1_parser_t p;
        cr_h1_head_t h;
        char *b;
        memcpy(buf, seed, len);
        for (m = 0; m != muts; ++m) {
            size_t pos = RND() % len;
            switch (RND() % 3) {
            case 0:
                buf[pos] = (char)(RND() & 0xff);
                break;
            case 1:
                if (len < sizeof(buf) - 1) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = "\r\n :,0\t;"[RND() % 8];
                    ++len;
                }
                break;
            default:
                if (len > 1) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    --len;
                }
                break;
            }
        }
        b = malloc(len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        memcpy(b, buf, len);
        whole = parse_n(b, len, 0, &h);
        if (whole > 0 && (h.status < 200 || h.status > 599))
            CU_FAIL("a head with a status outside 200..599 was accepted");
        free(b);
        cr_h1_parser_init(&p, LIMIT);
        for (n = step; pieces == -2; n += step) {
            size_t have = n < len ? n : len;
            b = malloc(have != 0 ? have : 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(b);
            memcpy(b, buf, have);
            pieces = cr_h1_parse_response(&p, b, have, 0, &pool, &h, &why);
            free(b);
            if (have == len)
                break;
        }
        if (whole != pieces)
            fprintf(stderr, "\n  mutation %zu: whole %zd, in pieces of %zu %zd\n", it, whole, step, pieces);
        CU_ASSERT_EQUAL(whole, pieces);
        h2o_mem_clear_pool(&pool);
        h2o_mem_init_pool(&pool);
    }
#undef RND
}

static int suite_init(void)
{
    h2o_mem_init_pool(&pool);
    return 0;
}

static int suite_cleanup(void)
{
    h2o_mem_clear_pool(&pool);
    return 0;
}

void cr_test_register_h1_response(void)
{
    CU_pSuite s = CU_add_suite("h1_response", suite_init, suite_cleanup);
    CU_add_test(s, "valid heads", test_valid);
    CU_add_test(s, "body framing and keep-alive", test_framing);
    CU_add_test(s, "a status line without a reason", test_status_without_reason);
    CU_add_test(s, "malformed status lines", test_malformed_status);
    CU_add_test(s, "malformed lines", test_malformed_lines);
    CU_add_test(s, "malformed framing", test_malformed_framing);
    CU_add_test(s, "interim responses", test_interim);
    CU_add_test(s, "head size limit", test_limit);
    CU_add_test(s, "mutated heads, whole and in pieces", test_mutations);
}
