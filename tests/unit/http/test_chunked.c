/*
 * test_chunked.c: unit tests for chunked.c: valid bodies decoded whole and fed one byte at a time, the bytes after
 * the body handed back, and every malformed form the strict decoder rejects (where picohttpparser accepts some).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/http/chunked.h"

/* Decodes `in` whole. Returns the decoder's result; *out gets the decoded bytes then the leftover (NUL-ended). */
static ssize_t decode_all(const char *in, int consume_trailer, char *out, size_t *outlen)
{
    cr_chunked_t d;
    size_t len = strlen(in);
    ssize_t r;
    cr_chunked_init(&d, consume_trailer);
    memcpy(out, in, len + 1);
    *outlen = len;
    r = cr_chunked_decode(&d, out, outlen);
    if (r >= 0)
        out[*outlen + (size_t)r] = '\0';
    return r;
}

/* Feeds `in` one byte at a time; returns the final result and the decoded bytes. */
static ssize_t decode_bytewise(const char *in, int consume_trailer, char *out, size_t *outlen)
{
    cr_chunked_t d;
    size_t i, len = strlen(in);
    ssize_t r = -2;
    cr_chunked_init(&d, consume_trailer);
    *outlen = 0;
    for (i = 0; i != len && r == -2; ++i) {
        char b = in[i];
        size_t n = 1;
        r = cr_chunked_decode(&d, &b, &n);
        if (n == 1)
            out[(*outlen)++] = b;
    }
    out[*outlen] = '\0';
    return r;
}

static void test_valid(void)
{
    static const struct {
        const char *in, *body;
    } cases[] = {
        {"5\r\nhello\r\n0\r\n\r\n", "hello"},
        {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
        {"A\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
        {"5;name=value\r\nhello\r\n0\r\n\r\n", "hello"},
        {"5 ;ext\r\nhello\r\n0;x=\"q\"\r\n\r\n", "hello"},
        {"5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n", "hello"},
        {"0\r\n\r\n", ""},
        {"000005\r\nhello\r\n0\r\n\r\n", "hello"},
    };
    size_t i;
    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char out[256];
        size_t n;
        CU_ASSERT_EQUAL(decode_all(cases[i].in, 1, out, &n), 0);
        CU_ASSERT(n == strlen(cases[i].body) && memcmp(out, cases[i].body, n) == 0);
        CU_ASSERT_EQUAL(decode_bytewise(cases[i].in, 1, out, &n), 0);
        CU_ASSERT_STRING_EQUAL(out, cases[i].body);
    }
}

static void test_leftover(void)
{
    char out[256];
    size_t n;
    ssize_t r = decode_all("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 1, out, &n);
    CU_ASSERT_EQUAL(r, 16);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_STRING_EQUAL(out, "abcGET / HTTP/1.1\r\n");
    /* without consume_trailer the trailer section is left to the caller */
    r = decode_all("3\r\nabc\r\n0\r\nX: y\r\n\r\n", 0, out, &n);
    CU_ASSERT_EQUAL(r, 8);
    CU_ASSERT_STRING_EQUAL(out, "abcX: y\r\n\r\n");
}

static void test_incomplete(void)
{
    static const char *cases[] = {"", "5", "5\r", "5\r\nhel", "5\r\nhello", "5\r\nhello\r\n", "5\r\nhello\r\n0\r\n",
                                  "5\r\nhello\r\n0\r\nX: y\r\n"};
    size_t i;
    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char out[64];
        size_t n;
        CU_ASSERT_EQUAL(decode_all(cases[i], 1, out, &n), -2);
    }
}

static void test_malformed(void)
{
    static const char *cases[] = {
        "0x5\r\nhello\r\n0\r\n\r\n",         /* picohttpparser: a last chunk with extension "x5" */
        "5\nhello\r\n0\r\n\r\n",             /* bare LF after the size */
        "5\r\nhello\n0\r\n\r\n",             /* bare LF after the data */
        "5\r\nhelloX\r\n0\r\n\r\n",          /* data longer than its size */
        "\r\n5\r\nhello\r\n0\r\n\r\n",       /* empty size line */
        " 5\r\nhello\r\n0\r\n\r\n",          /* leading whitespace */
        "-5\r\nhello\r\n0\r\n\r\n",          /* sign */
        "5 \r\nhello\r\n0\r\n\r\n",          /* whitespace not followed by an extension */
        "1000000000000000\r\n",              /* 16 hex digits */
        "5;a\nb\r\nhello\r\n0\r\n\r\n",      /* LF inside an extension */
        "5;a\x01\r\nhello\r\n0\r\n\r\n",     /* control in an extension */
        "5\r\nhello\r\n0\r\n folded\r\n\r\n",/* obs-fold in trailers */
        "5\r\nhello\r\n0\r\n: v\r\n\r\n",    /* empty trailer name */
        "5\r\nhello\r\n0\r\nX y: v\r\n\r\n", /* space in a trailer name */
        "5\r\nhello\r\n0\r\nX: v\n\r\n",     /* bare LF in trailers */
        "5\r\nhello\r\n0\r\n\n",             /* bare LF ending the trailers */
        "5\r\r\nhello\r\n0\r\n\r\n",         /* CR CR LF */
    };
    size_t i;
    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char out[64];
        size_t n;
        ssize_t r = decode_all(cases[i], 1, out, &n);
        if (r != -1)
            fprintf(stderr, "\n  accepted malformed chunked body %zu (%zd)\n", i, r);
        CU_ASSERT_EQUAL(r, -1);
        CU_ASSERT_EQUAL(decode_bytewise(cases[i], 1, out, &n), -1);
    }
}

static void test_bounds(void)
{
    size_t big = CR_CHUNKED_MAX_EXT_LINE + 10, i;
    char *in = malloc(big + 64), out[64];
    size_t n;
    strcpy(in, "1;");
    for (i = 2; i != big; ++i)
        in[i] = 'e';
    strcpy(in + big, "\r\nx\r\n0\r\n\r\n");
    CU_ASSERT_EQUAL(decode_all(in, 1, in, &n), -1);
    free(in);

    big = CR_CHUNKED_MAX_TRAILERS + 10;
    in = malloc(big + 64);
    strcpy(in, "0\r\nX: ");
    for (i = 6; i != big; ++i)
        in[i] = 'v';
    strcpy(in + big, "\r\n\r\n");
    CU_ASSERT_EQUAL(decode_all(in, 1, in, &n), -1);
    free(in);
    (void)out;
}

void cr_test_register_chunked(void)
{
    CU_pSuite s = CU_add_suite("chunked", NULL, NULL);
    CU_add_test(s, "valid bodies, whole and byte by byte", test_valid);
    CU_add_test(s, "bytes after the body are handed back", test_leftover);
    CU_add_test(s, "incomplete input asks for more", test_incomplete);
    CU_add_test(s, "malformed framing is rejected", test_malformed);
    CU_add_test(s, "extension and trailer bounds", test_bounds);
}
