/*
 * test_h1_request.c: unit tests for h1_request.c: valid request and response heads (whole, and fed one byte at a
 * time with last_len as libh2o passes it), every malformed form the strict parser rejects where picohttpparser
 * accepts it, the framing rules (Host, Content-Length, Transfer-Encoding), and the syntax predicates.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/http/h1_interpose.h"
#include "corral/http/h1_request.h"

#define MAXF 16

static int parse(const char *s, cr_h1_request_t *req, cr_h1_field_t *f, size_t *n, const char **err)
{
    *n = MAXF;
    return cr_h1_parse_request(s, strlen(s), req, f, n, 0, err);
}

/* Feeds s growing by one byte, as libh2o does with last_len = the previous length; the result of the last call. */
static int parse_bytewise(const char *s, size_t *n_out)
{
    cr_h1_request_t req;
    cr_h1_field_t f[MAXF];
    size_t len = strlen(s), i, last = 0, n = 0;
    int r = -2;
    for (i = 1; i <= len && r == -2; ++i) {
        n = MAXF;
        r = cr_h1_parse_request(s, i, &req, f, &n, last, NULL);
        last = i;
    }
    if (n_out != NULL)
        *n_out = n;
    return r;
}

static void test_valid_request(void)
{
    static const char s[] = "GET /a/b?c=d&e=%41 HTTP/1.1\r\nHost: example.com:8080\r\nX-A:  v 1 \t\r\nAccept:\r\n\r\nBODY";
    cr_h1_request_t req;
    cr_h1_field_t f[MAXF];
    size_t n;
    const char *err;
    int r = parse(s, &req, f, &n, &err);
    CU_ASSERT_EQUAL(r, (int)(strlen(s) - 4));
    CU_ASSERT_EQUAL(req.minor_version, 1);
    CU_ASSERT_EQUAL(req.method_len, 3);
    CU_ASSERT_EQUAL(memcmp(req.method, "GET", 3), 0);
    CU_ASSERT_EQUAL(req.target_len, strlen("/a/b?c=d&e=%41"));
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(f[1].name_len, 3);
    CU_ASSERT_EQUAL(f[1].value_len, 3); /* "v 1": OWS trimmed on both sides */
    CU_ASSERT_EQUAL(memcmp(f[1].value, "v 1", 3), 0);
    CU_ASSERT_EQUAL(f[2].value_len, 0);
    CU_ASSERT_EQUAL(parse_bytewise(s, &n), (int)(strlen(s) - 4));
    CU_ASSERT_EQUAL(n, 3);

    /* HTTP/1.0 without Host; one leading CRLF; OPTIONS *; CONNECT authority-form (reqcheck answers it 405) */
    CU_ASSERT(parse("GET / HTTP/1.0\r\n\r\n", &req, f, &n, &err) > 0);
    CU_ASSERT_EQUAL(req.minor_version, 0);
    CU_ASSERT(parse("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &req, f, &n, &err) > 0);
    CU_ASSERT(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &req, f, &n, &err) > 0);
    CU_ASSERT(parse("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", &req, f, &n, &err) > 0);
    CU_ASSERT(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &req, f, &n, &err) > 0); /* empty Host is allowed */
    CU_ASSERT(parse("GET / HTTP/1.1\r\nHost: [::1]:80\r\nX: caf\xc3\xa9\r\n\r\n", &req, f, &n, &err) > 0);
    /* what browsers send unescaped (WHATWG URL) is accepted; a broken escape is only refused in the path */
    CU_ASSERT(parse("GET /a|b/[c]?page[size]=10&q={x}^`\\&p=100% HTTP/1.1\r\nHost: a\r\n\r\n", &req, f, &n, &err) > 0);
}

static void test_incomplete(void)
{
    cr_h1_request_t req;
    cr_h1_field_t f[MAXF];
    size_t n;
    const char *err;
    CU_ASSERT_EQUAL(parse("", &req, f, &n, &err), -2);
    CU_ASSERT_EQUAL(parse("GE", &req, f, &n, &err), -2);
    CU_ASSERT_EQUAL(parse("GET /a HTT", &req, f, &n, &err), -2);
    CU_ASSERT_EQUAL(parse("GET /a HTTP/1.1\r", &req, f, &n, &err), -2);
    CU_ASSERT_EQUAL(parse("GET /a HTTP/1.1\r\nHost: a\r\n", &req, f, &n, &err), -2);
    CU_ASSERT_EQUAL(parse("GET /a HTTP/1.1\r\nHost: a\r\n\r", &req, f, &n, &err), -2);
    /* the HTTP/2 preface is -1 by its 12th byte, so libh2o can switch to HTTP/2 */
    CU_ASSERT_EQUAL(parse("PRI * HTTP/", &req, f, &n, &err), -2);
    CU_ASSERT_EQUAL(parse("PRI * HTTP/2", &req, f, &n, &err), -1);
}

static void test_malformed_request(void)
{
    static const char *const bad[] = {
        /* line endings */
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "GET / HTTP/1.1\r\nHost: a\n\n",
        "GET / HTTP/1.1\rHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        /* obs-fold and whitespace */
        "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: b\x01\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: b\x7f\r\n\r\n",
        /* request line */
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET /\r\nHost: a\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET a HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a% HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n",
        /* framing */
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a?\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    size_t i;
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        cr_h1_request_t req;
        cr_h1_field_t f[MAXF];
        size_t n;
        const char *err = NULL;
        int r = parse(bad[i], &req, f, &n, &err), rb = parse_bytewise(bad[i], NULL);
        if (r != -1 || rb != -1)
            fprintf(stderr, "\naccepted (%d, bytewise %d): %s\n", r, rb, bad[i]);
        CU_ASSERT_EQUAL(r, -1);
        CU_ASSERT_EQUAL(rb, -1);
        CU_ASSERT_PTR_NOT_NULL(err);
    }
}

static void test_framing_accepted(void)
{
    cr_h1_request_t req;
    cr_h1_field_t f[MAXF];
    size_t n;
    const char *err;
    /* identical Content-Length repeats are one value; a list is reported as its first member */
    CU_ASSERT(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n", &req, f, &n, &err) > 0);
    CU_ASSERT(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 , 5,5\r\n\r\n", &req, f, &n, &err) > 0);
    CU_ASSERT_EQUAL(f[1].value_len, 1);
    CU_ASSERT(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", &req, f, &n, &err) > 0);
}

static void test_field_limit(void)
{
    cr_h1_request_t req;
    cr_h1_field_t f[2];
    size_t n = 2;
    static const char ok[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n", over[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n";
    CU_ASSERT(cr_h1_parse_request(ok, strlen(ok), &req, f, &n, 0, NULL) > 0);
    CU_ASSERT_EQUAL(n, 2);
    n = 2;
    CU_ASSERT_EQUAL(cr_h1_parse_request(over, strlen(over), &req, f, &n, 0, NULL), -1);
}

/* as picohttpparser.h declares it; h1_interpose.c defines it */
struct phr_header;
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);

/* Response heads are corral's own client's (h1_response.c); the interposed phr_parse_response takes none. */
static void test_response_fails_closed(void)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    cr_h1_field_t f[MAXF];
    size_t n = MAXF, rlen = 0;
    int minor = 0, status = 0;
    const char *reason = NULL;
    CU_ASSERT_EQUAL(phr_parse_response(ok, strlen(ok), &minor, &status, &reason, &rlen, (struct phr_header *)f, &n, 0), -1);
    CU_ASSERT_EQUAL(n, 0);
}

static void test_fields_alone(void)
{
    cr_h1_field_t f[MAXF];
    size_t n = MAXF;
    CU_ASSERT_EQUAL(cr_h1_parse_fields("\r\n", 2, f, &n, 0, NULL), 2);
    CU_ASSERT_EQUAL(n, 0);
    n = MAXF;
    CU_ASSERT_EQUAL(cr_h1_parse_fields("A: b\r\n\r\n", 8, f, &n, 0, NULL), 8);
    CU_ASSERT_EQUAL(n, 1);
    n = MAXF;
    CU_ASSERT_EQUAL(cr_h1_parse_fields("A: b\r\n c\r\n\r\n", 12, f, &n, 0, NULL), -1);
    n = MAXF;
    CU_ASSERT_EQUAL(cr_h1_parse_fields("A: b\n\n", 6, f, &n, 0, NULL), -1);
    n = MAXF;
    CU_ASSERT_EQUAL(cr_h1_parse_fields("A: b\r\n", 6, f, &n, 0, NULL), -2);
}

static void test_predicates(void)
{
    CU_ASSERT_TRUE(cr_h1_is_authority("a.example", 9));
    CU_ASSERT_TRUE(cr_h1_is_authority("a.example:80", 12));
    CU_ASSERT_TRUE(cr_h1_is_authority("[::1]:8080", 10));
    CU_ASSERT_TRUE(cr_h1_is_authority("127.0.0.1", 9));
    CU_ASSERT_FALSE(cr_h1_is_authority("", 0));
    CU_ASSERT_FALSE(cr_h1_is_authority("a/b", 3));
    CU_ASSERT_FALSE(cr_h1_is_authority("a?b", 3));
    CU_ASSERT_FALSE(cr_h1_is_authority("a#b", 3));
    CU_ASSERT_FALSE(cr_h1_is_authority("u@a", 3));
    CU_ASSERT_FALSE(cr_h1_is_authority("a b", 3));
    CU_ASSERT_FALSE(cr_h1_is_authority("a\tb", 3));
    CU_ASSERT_FALSE(cr_h1_is_authority(":80", 3));
    CU_ASSERT_FALSE(cr_h1_is_authority("a:123456", 8));
    CU_ASSERT_FALSE(cr_h1_is_authority("[::1", 4));
    CU_ASSERT_FALSE(cr_h1_is_authority("[]", 2));
    CU_ASSERT_FALSE(cr_h1_is_authority("[::1]x", 6));
    CU_ASSERT_TRUE(cr_h1_is_origin_form("/", 1));
    CU_ASSERT_TRUE(cr_h1_is_origin_form("/a:b@c/d?e=f&g=%2F;h", 20));
    CU_ASSERT_FALSE(cr_h1_is_origin_form("*", 1));
    CU_ASSERT_FALSE(cr_h1_is_origin_form("/a b", 4));
    CU_ASSERT_FALSE(cr_h1_is_origin_form("http://a/", 9));
    CU_ASSERT_FALSE(cr_h1_is_origin_form("", 0));
    CU_ASSERT_FALSE(cr_h1_is_origin_form("/a%2", 4));
    CU_ASSERT_TRUE(cr_h1_is_origin_form("/a?b=%2", 7));
    CU_ASSERT_FALSE(cr_h1_is_origin_form("/a\x80", 3));
    CU_ASSERT_FALSE(cr_h1_is_origin_form("/a\x7f", 3));
    CU_ASSERT_TRUE(cr_h1_is_token("GET", 3));
    CU_ASSERT_FALSE(cr_h1_is_token("G T", 3));
    CU_ASSERT_FALSE(cr_h1_is_token("", 0));
    CU_ASSERT_TRUE(cr_h1_is_field_value("a\tb \x80", 5));
    CU_ASSERT_FALSE(cr_h1_is_field_value("a\rb", 3));
    CU_ASSERT_FALSE(cr_h1_is_field_value("a\nb", 3));
    CU_ASSERT_FALSE(cr_h1_is_field_value("a\0b", 3));
}

/* This test binary links libh2o-evloop too: its PLT slots for every phr_* must hold corral's functions. */
static void test_interposed(void)
{
    const char *which = cr_h1_interpose_active();
    if (which != NULL)
        fprintf(stderr, "\n%s is not interposed\n", which);
    CU_ASSERT_PTR_NULL(which);
}


/* The predicates read 8 bytes at a time where they can: every byte value, at every offset of a long value, gets the
 * same verdict as it gets alone (checked against the byte classes spelled out here). */
static int value_byte_ok(unsigned c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int target_byte_ok(unsigned c)
{
    return c > 0x20 && c < 0x7f && c != '#';
}

static void test_predicates_any_offset(void)
{
    char buf[40];
    unsigned c;
    size_t at;
    int bad_value = 0, bad_target = 0;
    for (c = 0; c != 256; ++c)
        for (at = 1; at != sizeof(buf); ++at) {
            memset(buf, 'a', sizeof(buf));
            buf[0] = '/';
            buf[at] = (char)c;
            bad_value += cr_h1_is_field_value(buf, sizeof(buf)) != value_byte_ok(c);
            /* '%' must start an escape outside the query: followed by "aa" it is one, at the end it is not */
            bad_target += cr_h1_is_origin_form(buf, sizeof(buf)) !=
                          (target_byte_ok(c) && (c != '%' || at + 2 < sizeof(buf)));
        }
    CU_ASSERT_EQUAL(bad_value, 0);
    CU_ASSERT_EQUAL(bad_target, 0);
    /* after a '?', a lone '%' anywhere is allowed; before it, not */
    memset(buf, 'b', sizeof(buf));
    buf[0] = '/';
    buf[20] = '?';
    buf[30] = '%';
    buf[31] = 'z';
    CU_ASSERT_TRUE(cr_h1_is_origin_form(buf, sizeof(buf)));
    buf[20] = 'b';
    CU_ASSERT_FALSE(cr_h1_is_origin_form(buf, sizeof(buf)));
}

void cr_test_register_h1_request(void)
{
    CU_pSuite s = CU_add_suite("h1_request", NULL, NULL);
    CU_add_test(s, "valid request heads, whole and byte by byte", test_valid_request);
    CU_add_test(s, "incomplete heads are -2", test_incomplete);
    CU_add_test(s, "malformed request heads are -1", test_malformed_request);
    CU_add_test(s, "identical Content-Length repeats and chunked in any case", test_framing_accepted);
    CU_add_test(s, "the caller's field limit", test_field_limit);
    CU_add_test(s, "libh2o's response parser fails closed", test_response_fails_closed);
    CU_add_test(s, "field sections alone", test_fields_alone);
    CU_add_test(s, "syntax predicates", test_predicates);
    CU_add_test(s, "syntax predicates: any byte at any offset", test_predicates_any_offset);
    CU_add_test(s, "libh2o's phr_* calls are bound to corral's parser", test_interposed);
}
