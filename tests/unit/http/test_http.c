/*
 * test_http.c: unit tests for http.c: numeric peer addresses (the X-Forwarded-For value), comma-separated header
 * lists, request headers with several field lines (a bare h2o_req_t with only a pool and headers); variant keys
 * (variant_key.c).
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "corral/cache/object.h"
#include "corral/http/http.h"

/* http.c cannot see cache/object.h (a layer above): the token index it hands out must fit an object's. */
_Static_assert(H2O_MAX_TOKENS < CR_OBJECT_MAX_TOKEN, "token indexes must fit an object's token");

static void test_numeric_host(void)
{
    static const char *const v4[] = {"127.0.0.1", "0.0.0.0", "10.1.2.3", "255.255.255.255", "192.168.100.9", "1.20.199.90"};
    struct sockaddr_storage ss;
    char buf[NI_MAXHOST];
    size_t i, n;
    for (i = 0; i != sizeof(v4) / sizeof(v4[0]); ++i) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        memset(&ss, 0, sizeof(ss));
        sin->sin_family = AF_INET;
        CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, v4[i], &sin->sin_addr), 1);
        n = cr_numeric_host(&ss, sizeof(*sin), buf);
        CU_ASSERT(n == strlen(v4[i]) && memcmp(buf, v4[i], n) == 0);
    }
    {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        memset(&ss, 0, sizeof(ss));
        sin6->sin6_family = AF_INET6;
        CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET6, "2001:db8::7", &sin6->sin6_addr), 1);
        n = cr_numeric_host(&ss, sizeof(*sin6), buf);
        CU_ASSERT(n == strlen("2001:db8::7") && memcmp(buf, "2001:db8::7", n) == 0);
    }
}

static void test_list_contains(void)
{
    CU_ASSERT_TRUE(cr_list_contains(h2o_iovec_init(H2O_STRLIT("Accept-Language, Accept-Encoding")),
                                    h2o_iovec_init(H2O_STRLIT("accept-encoding"))));
    CU_ASSERT_TRUE(cr_list_contains(h2o_iovec_init(H2O_STRLIT(" keep-alive ,close")), h2o_iovec_init(H2O_STRLIT("close"))));
    CU_ASSERT_FALSE(cr_list_contains(h2o_iovec_init(H2O_STRLIT("accept-encodings")), h2o_iovec_init(H2O_STRLIT("accept-encoding"))));
    CU_ASSERT_FALSE(cr_list_contains(h2o_iovec_init(NULL, 0), h2o_iovec_init(H2O_STRLIT("accept-encoding"))));
}

static void test_repeated_request_headers(void)
{
    h2o_req_t req;
    h2o_iovec_t v;

    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_ACCEPT_LANGUAGE, NULL, H2O_STRLIT("en"));
    h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_COOKIE, NULL, H2O_STRLIT("theme=dark"));
    h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_ACCEPT, NULL, H2O_STRLIT("*/*"));
    h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_ACCEPT_LANGUAGE, NULL, H2O_STRLIT("fr"));
    h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_COOKIE, NULL, H2O_STRLIT("session=a"));
    h2o_add_header_by_str(&req.pool, &req.headers, H2O_STRLIT("x-tenant"), 1, NULL, H2O_STRLIT("t1"));
    h2o_add_header_by_str(&req.pool, &req.headers, H2O_STRLIT("x-tenant"), 1, NULL, H2O_STRLIT(""));
    h2o_add_header_by_str(&req.pool, &req.headers, H2O_STRLIT("x-tenant"), 1, NULL, H2O_STRLIT("t2"));

    v = cr_req_header(&req, H2O_TOKEN_ACCEPT_LANGUAGE); /* RFC 9110 5.3: in order, ", " */
    CU_ASSERT(h2o_memis(v.base, v.len, H2O_STRLIT("en, fr")));
    v = cr_req_header(&req, H2O_TOKEN_COOKIE); /* RFC 9113 8.2.3: "; " */
    CU_ASSERT(h2o_memis(v.base, v.len, H2O_STRLIT("theme=dark; session=a")));
    v = cr_req_header_by_name(&req, H2O_STRLIT("cookie"));
    CU_ASSERT(h2o_memis(v.base, v.len, H2O_STRLIT("theme=dark; session=a")));
    v = cr_req_header_by_name(&req, H2O_STRLIT("x-tenant"));
    CU_ASSERT(h2o_memis(v.base, v.len, H2O_STRLIT("t1, , t2")));
    /* a single line is returned as it is, not copied */
    v = cr_req_header(&req, H2O_TOKEN_ACCEPT);
    CU_ASSERT(v.base == req.headers.entries[2].value.base && v.len == 3);
    v = cr_req_header(&req, H2O_TOKEN_AUTHORIZATION);
    CU_ASSERT_PTR_NULL(v.base);
    v = cr_req_header_by_name(&req, H2O_STRLIT("x-absent"));
    CU_ASSERT_PTR_NULL(v.base);
    h2o_mem_clear_pool(&req.pool);
}

/* A lookup over one fixed value for every name (ctx: the value, NULL for absent). */
static int one_value(void *ctx, const char *lname, size_t lnamelen, cr_str_t *value)
{
    if (ctx == NULL)
        return 0;
    *value = cr_str(ctx, strlen(ctx));
    return 1;
}

static const char *variant(const char *name, const char *value, char *buf, size_t cap)
{
    cr_str_t n = cr_str(name, strlen(name));
    size_t len = cr_variant_key(&n, 1, one_value, (void *)value, buf, cap);
    if (len == SIZE_MAX)
        return NULL;
    buf[len] = '\0';
    return buf;
}

static void test_variant_key_normal_form(void)
{
    char buf[512], big[2048];
    size_t i;

    CU_ASSERT_STRING_EQUAL(variant("accept-language", "en, DE", buf, sizeof(buf)), "accept-language:de,en\n");
    CU_ASSERT_STRING_EQUAL(variant("accept-language", " , en,,  de ,", buf, sizeof(buf)), "accept-language:de,en\n");
    CU_ASSERT_STRING_EQUAL(variant("accept", "text/html ; q=0.9 , application/json", buf, sizeof(buf)),
                           "accept:application/json,text/html;q=0.9\n");
    /* other fields: trimmed and re-joined, case and order kept */
    CU_ASSERT_STRING_EQUAL(variant("x-tenant", "B ,  a", buf, sizeof(buf)), "x-tenant:B,a\n");
    CU_ASSERT_STRING_EQUAL(variant("x-tenant", "a   b", buf, sizeof(buf)), "x-tenant:a b\n");
    /* a comma inside a quoted string does not split, and its case is kept */
    CU_ASSERT_STRING_EQUAL(variant("accept", "a;x=\"B, c\", A", buf, sizeof(buf)), "accept:a,a;x=\"B, c\"\n");
    /* absent and empty are one variant */
    CU_ASSERT_STRING_EQUAL(variant("accept", NULL, buf, sizeof(buf)), "accept:\n");
    CU_ASSERT_STRING_EQUAL(variant("accept", "  ", buf, sizeof(buf)), "accept:\n");
    /* an unterminated quote runs to the end, never past it */
    CU_ASSERT_STRING_EQUAL(variant("accept", "a, \"b\\", buf, sizeof(buf)), "accept:\"b\\,a\n");
    /* more members than are sorted: kept as sent, trimmed */
    for (i = 0; i != 40; ++i)
        memcpy(big + 2 * i, i == 39 ? "z " : "z,", 2);
    big[80] = '\0';
    CU_ASSERT_EQUAL(strlen(variant("accept", big, buf, sizeof(buf))), strlen("accept:") + 79 + 1);
    /* "accept-language:de,en,fr\n" is 25 bytes: refused below that, at every cap, and never written past the cap (a
     * heap buffer of exactly cap bytes, for ASan); near the end the check may refuse a few bytes early */
    for (i = 0; i != 40; ++i) {
        char *exact = malloc(i + 1); /* + 1: variant() writes the terminator for the test's own comparison */
        const char *got = variant("accept-language", "en, de, fr", exact, i);
        if (i < 25)
            CU_ASSERT_PTR_NULL(got);
        if (i >= 30)
            CU_ASSERT(got != NULL && strcmp(got, "accept-language:de,en,fr\n") == 0);
        free(exact);
    }
}

void cr_test_register_http(void)
{
    CU_pSuite s = CU_add_suite("http", NULL, NULL);
    CU_add_test(s, "numeric peer address", test_numeric_host);
    CU_add_test(s, "comma-separated lists", test_list_contains);
    CU_add_test(s, "repeated request headers are joined", test_repeated_request_headers);
    CU_add_test(s, "variant keys: the normal form of varied values", test_variant_key_normal_form);
}
