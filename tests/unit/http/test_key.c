/*
 * test_key.c: unit tests for sidecar/http/key.c (cache-key normalization).
 *
 * Routes are built by hand (a zeroed cr_route_config_t is "query: all, no key headers"); headers come from a small
 * fake lookup table. Every key is compared byte for byte.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/core/common.h"
#include "corral/conf/config.h"
#include "corral/http/key.h"

typedef struct st_fake_headers_t {
    const char *names[4];
    const char *values[4];
} fake_headers_t;

static int fake_lookup(void *ctx, const char *lname, size_t lnamelen, cr_str_t *value)
{
    const fake_headers_t *h = ctx;
    size_t i;
    for (i = 0; i != 4 && h->names[i] != NULL; ++i) {
        if (strlen(h->names[i]) == lnamelen && memcmp(h->names[i], lname, lnamelen) == 0) {
            *value = cr_str(h->values[i], strlen(h->values[i]));
            return 1;
        }
    }
    return 0;
}

static char keybuf[8192];

static const char *build(const cr_route_config_t *r, const char *authority, const char *pq, fake_headers_t *h)
{
    int n = cr_key_build(r, cr_str(authority, strlen(authority)), 80, cr_str(pq, strlen(pq)), h != NULL ? fake_lookup : NULL, h,
                         keybuf, sizeof(keybuf));
    if (n < 0)
        return NULL;
    CU_ASSERT_EQUAL((size_t)n, strlen(keybuf));
    return keybuf;
}

static void check_key(const cr_route_config_t *r, const char *pq, const char *expect, int line)
{
    const char *got = build(r, "h", pq, NULL);
    int ok = got != NULL && strcmp(got, expect) == 0;
    if (!ok)
        fprintf(stderr, "\n  test_key.c:%d: \"%s\": expected \"%s\", got \"%s\"\n", line, pq, expect, got != NULL ? got : "(-1)");
    CU_ASSERT(ok);
}
#define EXPECT_KEY(r, pq, expect) check_key((r), (pq), "h\n" expect, __LINE__)

static void check_path(const char *in, const char *expect, int line)
{
    char buf[256];
    int n = cr_key_normalize_path(cr_str(in, strlen(in)), buf, sizeof(buf));
    int ok = expect == NULL ? n == -1 : (n >= 0 && (size_t)n == strlen(expect) && strcmp(buf, expect) == 0);
    if (!ok)
        fprintf(stderr, "\n  test_key.c:%d: \"%s\": expected \"%s\", got \"%s\"\n", line, in, expect != NULL ? expect : "(-1)",
                n >= 0 ? buf : "(-1)");
    CU_ASSERT(ok);
}
#define EXPECT_PATH(in, expect) check_path((in), (expect), __LINE__)

static void test_basic(void)
{
    cr_route_config_t r = {0};
    const char *k = build(&r, "API.Example.COM:8081", "/v1/Users", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k, "api.example.com:8081\n/v1/Users"); /* authority lower-cased, path untouched */
    k = build(&r, "", "/", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k, "\n/");
    k = build(NULL, "h", "/a?b=1&a=2", NULL); /* no route: query all, no headers */
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k, "h\n/a?a=2&b=1");
}

static void test_query_all(void)
{
    cr_route_config_t r = {0};
    r.key_query = CR_KEY_QUERY_ALL;
    EXPECT_KEY(&r, "/p?b=2&a=1&c=3", "/p?a=1&b=2&c=3");
    EXPECT_KEY(&r, "/p?", "/p");                 /* empty query: no '?' */
    EXPECT_KEY(&r, "/p?&&", "/p");               /* only empty members */
    EXPECT_KEY(&r, "/p?&b&&a=&", "/p?a=&b");     /* empty members dropped, valueless kept */
    EXPECT_KEY(&r, "/p?a=2&a=1&a=2", "/p?a=2&a=1&a=2"); /* one name: the order sent */
    EXPECT_KEY(&r, "/p?x=%2f&x=%2F", "/p?x=%2F&x=%2F"); /* escapes normalized as in the path */
    EXPECT_KEY(&r, "/p?%61=%62&b=1", "/p?a=b&b=1");     /* unreserved escapes decoded, then sorted */
    EXPECT_KEY(&r, "/p?a=%zz&a=%4", "/p?a=%zz&a=%4");   /* invalid escapes kept verbatim */
    EXPECT_KEY(&r, "/p?a=%%66e&b=%4%42", "/p?a=%%66e&b=%4%42");
    EXPECT_KEY(&r, "/p?q=a+b", "/p?q=a+b");
}

static void test_query_sorting(void)
{
    cr_route_config_t r = {0};
    /* sorted by the raw bytes of the name: a prefix first, then '-' (0x2d) < 'b' */
    EXPECT_KEY(&r, "/p?ab=1&a-b=1&a=1", "/p?a=1&a-b=1&ab=1");
    /* members of one name keep the order they were sent in: an API may read them in order */
    EXPECT_KEY(&r, "/p?s=b&t=1&s=a", "/p?s=b&s=a&t=1");
    EXPECT_KEY(&r, "/p?s=a&t=1&s=b", "/p?s=a&s=b&t=1");
    /* a prefix sorts first */
    EXPECT_KEY(&r, "/p?aa&a", "/p?a&aa");
    /* identical members keep their count (stable) */
    EXPECT_KEY(&r, "/p?z&y&z&y", "/p?y&y&z&z");
    /* bytes >= 0x80 sort after ASCII */
    EXPECT_KEY(&r, "/p?\xc3\xa9=1&z=1", "/p?z=1&\xc3\xa9=1");
}

static void test_query_none(void)
{
    cr_route_config_t r = {0};
    r.key_query = CR_KEY_QUERY_NONE;
    EXPECT_KEY(&r, "/p?b=2&a=1", "/p");
    EXPECT_KEY(&r, "/p", "/p");
    CU_ASSERT_PTR_NULL(build(&r, "h", "/p?a=\n", NULL)); /* still malformed */
}

static void test_query_list(void)
{
    char *names[] = {"limit", "page"};
    cr_route_config_t r = {0};
    r.key_query = CR_KEY_QUERY_LIST;
    r.key_query_names = names;
    r.num_key_query_names = 2;
    EXPECT_KEY(&r, "/u?page=2&utm_source=x&limit=10", "/u?limit=10&page=2");
    EXPECT_KEY(&r, "/u?utm=1", "/u");
    EXPECT_KEY(&r, "/u?pages=1&pag=1&page", "/u?page");
    EXPECT_KEY(&r, "/u?page=1=2&page=0", "/u?page=1=2&page=0"); /* the name stops at the first '=' */
    EXPECT_KEY(&r, "/u?PAGE=1", "/u");                         /* names are case-sensitive */
    /* names are compared after percent-decoding: the upstream reads "pa%67e" as "page" */
    EXPECT_KEY(&r, "/u?pa%67e=999", "/u?page=999");
    EXPECT_KEY(&r, "/u?%70%61%67%65=1&%6c%69mit=2", "/u?limit=2&page=1");
    EXPECT_KEY(&r, "/u?pag%2565=1", "/u");       /* "%2565" decodes once to "%65", not 'e' */
    EXPECT_KEY(&r, "/u?page%3D1=2", "/u");       /* the name is "page=1" */
    EXPECT_KEY(&r, "/u?pa+ge=1", "/u");          /* "pa ge" */
    EXPECT_KEY(&r, "/u?page%00=1", "/u");
    EXPECT_KEY(&r, "/u?page=%41%2f", "/u?page=A%2F"); /* values normalized like names */
    r.num_key_query_names = 0;
    EXPECT_KEY(&r, "/u?page=1", "/u"); /* query: [] keeps nothing */
}

static void test_cookie_filter(void)
{
    char *names[] = {"session", "lang"};
    cr_route_config_t r = {0};
    char buf[64];
    size_t n;
    fake_headers_t h = {{"cookie"}, {" theme=dark; session=a ;x=1;lang=en;session=b"}};
    fake_headers_t none = {{NULL}, {NULL}};
    r.cookies = CR_COOKIES_LIST;
    r.cookie_names = names;
    r.num_cookie_names = 2;
    n = cr_key_cookie_filter(&r, cr_str(h.values[0], strlen(h.values[0])), buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, strlen("session=a; lang=en; session=b"));
    CU_ASSERT(n != SIZE_MAX && memcmp(buf, "session=a; lang=en; session=b", n) == 0);
    CU_ASSERT_EQUAL(cr_key_cookie_filter(&r, CR_STR("Session=a; sessionx=1; =2; ;"), buf, sizeof(buf)), 0); /* case-sensitive */
    CU_ASSERT_EQUAL(cr_key_cookie_filter(&r, cr_str(NULL, 0), buf, sizeof(buf)), 0); /* absent (fuzz_key found NULL + 0) */
    CU_ASSERT_EQUAL(cr_key_cookie_filter(&r, CR_STR("session=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), buf,
                                         sizeof(buf)),
                    SIZE_MAX);
    /* the listed cookies join the key, in the request's order; others do not */
    CU_ASSERT_STRING_EQUAL(build(&r, "h", "/p", &h), "h\n/p\ncookies:session=a; lang=en; session=b");
    CU_ASSERT_STRING_EQUAL(build(&r, "h", "/p", &none), "h\n/p\ncookies:");
    r.cookies = CR_COOKIES_IGNORE;
    CU_ASSERT_STRING_EQUAL(build(&r, "h", "/p", &h), "h\n/p");
}

static void test_dot_segments(void)
{
    /* RFC 3986 5.2.4 and 5.4 examples, plus edges */
    EXPECT_PATH("/a/b/c/./../../g", "/a/g");
    EXPECT_PATH("/mid/content=5/../6", "/mid/6");
    EXPECT_PATH("/a/./b", "/a/b");
    EXPECT_PATH("/a/../b", "/b");
    EXPECT_PATH("/../a", "/a");
    EXPECT_PATH("/../../a/../../b", "/b");
    EXPECT_PATH("/a/b/.", "/a/b/");
    EXPECT_PATH("/a/b/..", "/a/");
    EXPECT_PATH("/a/b/./", "/a/b/");
    EXPECT_PATH("/a/b/../", "/a/");
    EXPECT_PATH("/.", "/");
    EXPECT_PATH("/..", "/");
    EXPECT_PATH("/./", "/");
    EXPECT_PATH("/", "/");
    EXPECT_PATH("/a//b", "/a//b");   /* nothing else is collapsed */
    EXPECT_PATH("/a//../b", "/a/b"); /* ".." drops the empty segment */
    EXPECT_PATH("/a/.b/..c/...", "/a/.b/..c/...");
    EXPECT_PATH("/a/b?x=/../", "/a/b"); /* the query is not part of the path */
    EXPECT_PATH("a/b", NULL);
    EXPECT_PATH("", NULL);
    EXPECT_PATH("*", NULL);
    EXPECT_PATH("/a b", NULL);
    EXPECT_PATH("/a\r\nX: y", NULL);
    EXPECT_PATH("/\x7f", NULL);
}

static void test_percent(void)
{
    EXPECT_PATH("/%7euser", "/~user"); /* unreserved: decoded */
    EXPECT_PATH("/%41%62%30%2d%2E%5F%7E", "/Ab0-._~");
    EXPECT_PATH("/a%2fb", "/a%2Fb"); /* reserved: kept, hex upper-cased */
    EXPECT_PATH("/a%2Fb", "/a%2Fb");
    EXPECT_PATH("/%e2%82%ac", "/%E2%82%AC");
    EXPECT_PATH("/%20", "/%20");
    EXPECT_PATH("/%zz/%4/%", "/%zz/%4/%"); /* invalid escapes kept verbatim */
    /* decoding never joins a kept invalid escape into a new one (fuzz_key: "%%66e" gave "%fe", whose key is "%FE") */
    EXPECT_PATH("/a/%%66e/%4%42/%%34%31", "/a/%%66e/%4%42/%%341");
    EXPECT_PATH("/%%41", "/%%41"); /* not "/%A": a hex digit after a kept '%' stays escaped */
    EXPECT_PATH("/a/%2E%2E/b", "/b"); /* decoding comes before dot-segment removal */
    EXPECT_PATH("/a/%2e/b", "/a/b");
    EXPECT_PATH("/a/.%2E", "/");
    EXPECT_PATH("/\xc3\xa9", "/\xc3\xa9"); /* raw non-ASCII bytes kept */
}

static void test_headers(void)
{
    char *hdrs[] = {"accept-language", "x-tenant", "x-absent"};
    cr_route_config_t r = {0};
    fake_headers_t h = {{"x-tenant", "accept-language"}, {"  acme\t", "\tde-CH, en;q=0.5 "}};
    const char *k;

    r.key_headers = hdrs;
    r.num_key_headers = 3;
    k = build(&r, "H", "/p?b&a", &h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k, "h\n/p?a&b\naccept-language:de-CH, en;q=0.5\nx-tenant:acme\nx-absent:");
    k = build(&r, "h", "/p", NULL); /* no lookup: every header absent */
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k, "h\n/p\naccept-language:\nx-tenant:\nx-absent:");
    h.values[0] = "   ";
    k = build(&r, "h", "/p", &h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k, "h\n/p\naccept-language:de-CH, en;q=0.5\nx-tenant:\nx-absent:");
    h.values[0] = "a\nx-absent:b";
    CU_ASSERT_PTR_NULL(build(&r, "h", "/p", &h)); /* a key cannot be forged through a header */
    h.values[0] = "a\tb";
    k = build(&r, "h", "/p", &h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k, "h\n/p\naccept-language:de-CH, en;q=0.5\nx-tenant:a\tb\nx-absent:");
}

static void test_malformed(void)
{
    cr_route_config_t r = {0};
    CU_ASSERT_PTR_NULL(build(&r, "h", "", NULL));
    CU_ASSERT_PTR_NULL(build(&r, "h", "p?x", NULL));
    CU_ASSERT_PTR_NULL(build(&r, "h", "?x", NULL));
    CU_ASSERT_PTR_NULL(build(&r, "h", "http://h/p", NULL));
    CU_ASSERT_PTR_NULL(build(&r, "h\n/x", "/p", NULL));
    CU_ASSERT_PTR_NULL(build(&r, "h", "/p?a=1\r\n", NULL));
    CU_ASSERT_PTR_NULL(build(&r, "h", "/p?a b", NULL));
    CU_ASSERT_EQUAL(cr_key_build(&r, CR_STR("h"), 80, cr_str(NULL, 0), NULL, NULL, keybuf, sizeof(keybuf)), -1);
}

static void test_overflow(void)
{
    char *hdrs[] = {"x-a"};
    cr_route_config_t r = {0};
    fake_headers_t h = {{"x-a"}, {"12345"}};
    const char *expect = "host\n/a/b?x=1&y=2\nx-a:12345";
    size_t len = strlen(expect), size;
    char buf[64];
    int n;

    r.key_headers = hdrs;
    r.num_key_headers = 1;
    n = cr_key_build(&r, CR_STR("HOST"), 80, CR_STR("/a/./b?y=2&x=1"), fake_lookup, &h, buf, len + 1);
    CU_ASSERT_EQUAL(n, (int)len);
    CU_ASSERT_STRING_EQUAL(buf, expect);
    /* every smaller buffer fails, whichever part overflows, and never writes past its end */
    for (size = 0; size <= len; ++size) {
        memset(buf, 'Z', sizeof(buf));
        n = cr_key_build(&r, CR_STR("HOST"), 80, CR_STR("/a/./b?y=2&x=1"), fake_lookup, &h, buf, size);
        CU_ASSERT_EQUAL(n, -1);
        CU_ASSERT_EQUAL(buf[size], 'Z');
    }
    CU_ASSERT_EQUAL(cr_key_build(&r, CR_STR("h"), 80, CR_STR("/"), NULL, NULL, NULL, 0), -1);
    CU_ASSERT_EQUAL(cr_key_normalize_path(CR_STR("/abc"), buf, 5), 4);
    CU_ASSERT_EQUAL(cr_key_normalize_path(CR_STR("/abc"), buf, 4), -1);
    CU_ASSERT_EQUAL(cr_key_normalize_path(CR_STR("/abc/.."), buf, 7), -1); /* the unreduced form must fit too */
    CU_ASSERT_EQUAL(cr_key_normalize_path(CR_STR("/abc/.."), buf, 8), 1);
    CU_ASSERT_STRING_EQUAL(buf, "/");
}

static void test_many_query_members(void)
{
    static char pq[8192];
    cr_route_config_t r = {0};
    size_t len = 0;
    int i;

    len += (size_t)snprintf(pq + len, sizeof(pq) - len, "/p?");
    for (i = 255; i >= 0; --i)
        len += (size_t)snprintf(pq + len, sizeof(pq) - len, "k%03d&", i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(build(&r, "h", pq, NULL)); /* 256 members: the limit */
    CU_ASSERT(strncmp(keybuf, "h\n/p?k000&k001&k002&", 20) == 0);
    CU_ASSERT(strcmp(keybuf + strlen(keybuf) - 10, "&k254&k255") == 0);
    snprintf(pq + len, sizeof(pq) - len, "k999");
    CU_ASSERT_PTR_NULL(build(&r, "h", pq, NULL)); /* 257: no key, the request is passed */
    r.key_query = CR_KEY_QUERY_NONE;
    CU_ASSERT_PTR_NOT_NULL(build(&r, "h", pq, NULL)); /* dropped members do not count */
}

/* The authority's normal form (RFC 3986 6.2.2-6.2.3), against the default port of the scheme. */
static void check_authority(const char *in, uint16_t default_port, const char *expect, int line)
{
    char buf[256], again[256];
    int n = cr_key_build(NULL, cr_str(in, strlen(in)), default_port, CR_STR("/"), NULL, NULL, buf, sizeof(buf)), m;
    int ok = n >= 0 && strncmp(buf, expect, strlen(expect)) == 0 && buf[strlen(expect)] == '\n';
    if (!ok)
        fprintf(stderr, "\n  test_key.c:%d: authority \"%s\": expected \"%s\", got \"%s\"\n", line, in, expect, n >= 0 ? buf : "(-1)");
    CU_ASSERT(ok);
    /* a fixed point: the normal form of the normal form is itself */
    if (n >= 0) {
        m = cr_key_build(NULL, cr_str(buf, (size_t)(strchr(buf, '\n') - buf)), default_port, CR_STR("/"), NULL, NULL, again,
                         sizeof(again));
        CU_ASSERT(m == n && strcmp(again, buf) == 0);
    }
}
#define EXPECT_AUTHORITY(in, port, expect) check_authority((in), (port), (expect), __LINE__)

static void test_authority_normal_form(void)
{
    cr_route_config_t r = {0};
    EXPECT_AUTHORITY("API.Example", 80, "api.example");
    EXPECT_AUTHORITY("api.example:80", 80, "api.example");
    EXPECT_AUTHORITY("api.example:080", 80, "api.example");
    EXPECT_AUTHORITY("api.example:", 80, "api.example");
    EXPECT_AUTHORITY("api.example:443", 80, "api.example:443");
    EXPECT_AUTHORITY("api.example:443", 443, "api.example");
    EXPECT_AUTHORITY("api.example:8080", 80, "api.example:8080");
    EXPECT_AUTHORITY("api.ns.svc.cluster.local.", 80, "api.ns.svc.cluster.local");
    EXPECT_AUTHORITY("api.ns.:80", 80, "api.ns");
    EXPECT_AUTHORITY("api.ns.:8080", 80, "api.ns:8080");
    EXPECT_AUTHORITY("a:80.", 80, "a");
    EXPECT_AUTHORITY("a:8080:80", 80, "a:8080");
    EXPECT_AUTHORITY("[::1]:80", 80, "[::1]");
    EXPECT_AUTHORITY("[::1]:8080", 80, "[::1]:8080");
    EXPECT_AUTHORITY("[::1]", 80, "[::1]");
    EXPECT_AUTHORITY("a:99999999999999999999", 80, "a:99999999999999999999");
    EXPECT_AUTHORITY("", 80, "");
    EXPECT_AUTHORITY("...", 80, "");
    CU_ASSERT_PTR_NULL(build(NULL, "a b", "/", NULL));
    CU_ASSERT_PTR_NULL(build(NULL, "a\x01", "/", NULL));
    /* key.host: false: no authority at all, and a bad one is still refused */
    r.key_ignore_host = 1;
    CU_ASSERT_STRING_EQUAL(build(&r, "api.ns:8080", "/x", NULL), "\n/x");
    CU_ASSERT_STRING_EQUAL(build(&r, "api", "/x", NULL), "\n/x");
    CU_ASSERT_PTR_NULL(build(&r, "a\r", "/x", NULL));
}

void cr_test_register_key(void)
{
    CU_pSuite s = CU_add_suite("key", NULL, NULL);
    CU_add_test(s, "basic", test_basic);
    CU_add_test(s, "the authority's normal form; key.host: false", test_authority_normal_form);
    CU_add_test(s, "query all", test_query_all);
    CU_add_test(s, "query sorting", test_query_sorting);
    CU_add_test(s, "query none", test_query_none);
    CU_add_test(s, "query list", test_query_list);
    CU_add_test(s, "cookie filter and cookies in the key", test_cookie_filter);
    CU_add_test(s, "dot segments", test_dot_segments);
    CU_add_test(s, "percent encoding", test_percent);
    CU_add_test(s, "headers", test_headers);
    CU_add_test(s, "malformed", test_malformed);
    CU_add_test(s, "overflow", test_overflow);
    CU_add_test(s, "many query members", test_many_query_members);
}
