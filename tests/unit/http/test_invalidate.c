/*
 * test_invalidate.c: unit tests for sidecar/http/invalidate.c: template expansion for write-through invalidation (exact
 * paths, prefixes, {name} bindings, skipped templates, normalization, dedup, buffer limits), same-authority checks
 * for Location / Content-Location, surrogate-key splitting, and key slicing.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/http/invalidate.h"

void cr_test_register_invalidate(void);

/* Expands `entries` for `written` and compares with `expect`, a "|"-separated list where a prefix ends in '*'. */
static void check_expand(const char *const *entries, size_t n, const char *written, const char *expect, int srcline)
{
    cr_invalidation_t out[32];
    char buf[4096], got[4096];
    size_t glen = 0, i;
    int r = cr_invalidate_expand(entries, n, cr_str(written, strlen(written)), out, 32, buf, sizeof(buf));

    got[0] = '\0';
    for (i = 0; r > 0 && i != (size_t)r; ++i) {
        CU_ASSERT_EQUAL(out[i].path.base[out[i].path.len], '\0');
        glen += (size_t)snprintf(got + glen, sizeof(got) - glen, "%s%.*s%s", i == 0 ? "" : "|", (int)out[i].path.len,
                                 out[i].path.base, out[i].is_prefix ? "*" : "");
    }
    if (r < 0 || strcmp(got, expect) != 0)
        fprintf(stderr, "\n  test_invalidate.c:%d: %s: expected \"%s\", got %d \"%s\"\n", srcline, written, expect, r, got);
    CU_ASSERT(r >= 0 && strcmp(got, expect) == 0);
}
#define EXPECT_EXPAND(entries, written, expect) check_expand((entries), CR_ARRAY_SIZE(entries), (written), (expect), __LINE__)
#define EXPECT_ONE(entry, written, expect)                                                                                         \
    do {                                                                                                                           \
        const char *const one_[] = {entry};                                                                                        \
        EXPECT_EXPAND(one_, (written), (expect));                                                                                  \
    } while (0)

static void test_expand_issue_example(void)
{
    /* a write to /v1/users/42 under a route whose list names the collection, the item and everything below it */
    const char *const entries[] = {"/v1/users", "/v1/users/{id}", "/v1/users/{id}/*"};
    EXPECT_EXPAND(entries, "/v1/users/42", "/v1/users|/v1/users/42|/v1/users/42/*");
    EXPECT_EXPAND(entries, "/v1/users/42/avatar", "/v1/users|/v1/users/42|/v1/users/42/*");
    EXPECT_EXPAND(entries, "/v1/users/42?x=1", "/v1/users|/v1/users/42|/v1/users/42/*");
    /* nothing to bind {id} to: only the literal entry */
    EXPECT_EXPAND(entries, "/v1/users", "/v1/users");
    EXPECT_EXPAND(entries, "/v1/users/", "/v1/users");
    /* literals before the placeholder do not match: skipped */
    EXPECT_EXPAND(entries, "/v2/users/42", "/v1/users");
    EXPECT_EXPAND(entries, "/v1/groups/42", "/v1/users");
}

static void test_expand_literals_and_prefixes(void)
{
    EXPECT_ONE("/v1/users", "/anything", "/v1/users");
    EXPECT_ONE("/v1/users/*", "/x", "/v1/users/*");
    EXPECT_ONE("/v1/users*", "/x", "/v1/users*");
    EXPECT_ONE("/*", "/x", "/*");
    EXPECT_ONE("/", "/x", "/");
    /* entries are normalized like keys */
    EXPECT_ONE("/v1/./a/../users/%7e", "/x", "/v1/users/~");
    EXPECT_ONE("/v1/%41%2f/*", "/x", "/v1/A%2F/*");
    /* a prefix ending in a dot-segment would change meaning when normalized: skipped */
    EXPECT_ONE("/a/.*", "/x", "");
    EXPECT_ONE("/a/..*", "/x", "");
    EXPECT_ONE("/a/%2E*", "/x", "");
    EXPECT_ONE("/a/.b*", "/x", "/a/.b*");
    /* not paths: skipped */
    EXPECT_ONE("v1/users", "/x", "");
    EXPECT_ONE("", "/x", "");
    EXPECT_ONE("*", "/x", "");
    EXPECT_ONE("/a*b", "/x", "");
    EXPECT_ONE("/a b", "/x", "");
    EXPECT_ONE("/a?b", "/x", "");
}

static void test_expand_bindings(void)
{
    /* literal segments after the last placeholder are copied, not matched */
    EXPECT_ONE("/v1/users/{id}/posts", "/v1/users/42/avatar", "/v1/users/42/posts");
    EXPECT_ONE("/v1/users/{id}/posts", "/v1/users/42", "/v1/users/42/posts");
    /* several placeholders */
    EXPECT_ONE("/orgs/{org}/users/{id}", "/orgs/acme/users/7/x", "/orgs/acme/users/7");
    EXPECT_ONE("/orgs/{org}/users/{id}", "/orgs/acme/teams/7", "");
    EXPECT_ONE("/orgs/{org}/users/{id}", "/orgs/acme", "");
    EXPECT_ONE("/{a}/{b}/*", "/x/y/z", "/x/y/*");
    /* a name used twice must bind the same value */
    EXPECT_ONE("/pair/{v}/{v}", "/pair/1/1", "/pair/1/1");
    EXPECT_ONE("/pair/{v}/{v}", "/pair/1/2", "");
    /* literal text around a placeholder inside one segment */
    EXPECT_ONE("/files/{name}.json", "/files/report.json", "/files/report.json");
    EXPECT_ONE("/files/{name}.json/meta", "/files/report.json", "/files/report.json/meta");
    EXPECT_ONE("/files/v{n}", "/files/v2", "/files/v2");
    EXPECT_ONE("/files/v{n}", "/files/v", "");      /* empty value */
    EXPECT_ONE("/files/{name}.json", "/files/.json", ""); /* empty value */
    EXPECT_ONE("/files/{name}.json", "/files/report.xml", "");
    EXPECT_ONE("/files/{a}{b}", "/files/xy", ""); /* two placeholders in one segment cannot be split */
    EXPECT_ONE("/files/{}", "/files/xy", "");
    EXPECT_ONE("/files/{a", "/files/xy", "");
    EXPECT_ONE("/files/a}", "/files/xy", "");
    /* placeholder at the first segment, and values taken from the normalized written path */
    EXPECT_ONE("/{tenant}/cache/*", "/acme/x/../y", "/acme/cache/*");
    EXPECT_ONE("/v1/users/{id}", "/v1/users/%34%32", "/v1/users/42");
    EXPECT_ONE("/v1/users/{id}", "/v1/users/a%2fb", "/v1/users/a%2Fb");
    EXPECT_ONE("/v1/users/{id}", "/v1//users/42", "");
    EXPECT_ONE("/v1/users/{id}", "/v1/users//42", "");
    /* the value of a trailing-slash segment */
    EXPECT_ONE("/v1/users/{id}/*", "/v1/users/42/", "/v1/users/42/*");
    EXPECT_ONE("/v1/{x}", "/v1/", "");
}

static void test_expand_dedup_and_limits(void)
{
    const char *const dup[] = {"/a", "/a/", "/a", "/b/{x}", "/b/1", "/a*", "/a/../a"};
    const char *const many[] = {"/1", "/2", "/3"};
    cr_invalidation_t out[8];
    char buf[64], longp[CR_INVALIDATE_MAX_PATH + 16];
    const char *const longe[] = {longp};
    int r;

    EXPECT_EXPAND(dup, "/b/1", "/a|/a/|/b/1|/a*");

    r = cr_invalidate_expand(many, 3, CR_STR("/x"), out, 3, buf, sizeof(buf));
    CU_ASSERT_EQUAL(r, 3);
    CU_ASSERT(cr_str_eq(out[2].path, "/3", 2));
    /* too few slots, too little buffer: refused, never silently truncated */
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 3, CR_STR("/x"), out, 2, buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 3, CR_STR("/x"), out, 8, buf, 8), -1);
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 3, CR_STR("/x"), out, 8, buf, 9), 3); /* "/1\0/2\0/3\0" */
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 3, CR_STR("/x"), out, 8, buf, 0), -1);
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 0, CR_STR("/x"), out, 0, buf, 0), 0);
    CU_ASSERT_EQUAL(cr_invalidate_expand(NULL, 0, CR_STR("/x"), NULL, 0, NULL, 0), 0);
    /* a malformed written path */
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 3, CR_STR("x"), out, 8, buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 3, CR_STR(""), out, 8, buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 3, CR_STR("/a\nb"), out, 8, buf, sizeof(buf)), -1);
    /* longer than CR_INVALIDATE_MAX_PATH */
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    CU_ASSERT_EQUAL(cr_invalidate_expand(longe, 1, CR_STR("/x"), out, 8, buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(cr_invalidate_expand(many, 1, cr_str(longp, strlen(longp)), out, 8, buf, sizeof(buf)), -1);
}

/* ---- same authority ---- */

static void check_same(const char *loc, const char *authority, const char *reqpath, const char *expect, int srcline)
{
    char buf[256];
    cr_str_t out = {NULL, 0};
    int r = cr_same_authority_path(cr_str(loc, strlen(loc)), cr_str(authority, strlen(authority)), cr_str(reqpath, strlen(reqpath)),
                                   buf, sizeof(buf), &out);
    int ok = expect == NULL ? r == 0 : r == 1 && cr_str_eq(out, expect, strlen(expect)) && out.base[out.len] == '\0';
    if (!ok)
        fprintf(stderr, "\n  test_invalidate.c:%d: \"%s\" vs %s: expected %s, got %d \"%.*s\"\n", srcline, loc, authority,
                expect != NULL ? expect : "(no)", r, r ? (int)out.len : 0, r ? out.base : "");
    CU_ASSERT(ok);
}
#define SAME(loc, auth, reqpath, expect) check_same((loc), (auth), (reqpath), (expect), __LINE__)

static void test_same_authority(void)
{
    /* absolute paths */
    SAME("/v1/users/43", "api.example", "/v1/users", "/v1/users/43");
    SAME("  /v1/users/43?x=1#frag \t", "api.example", "/v1/users", "/v1/users/43?x=1");
    /* absolute URIs: authority compared case-insensitively with default ports */
    SAME("http://api.example/v1/users/43", "api.example", "/", "/v1/users/43");
    SAME("HTTP://API.Example/v1/users/43", "api.example", "/", "/v1/users/43");
    SAME("http://api.example:80/x", "api.example", "/", "/x");
    SAME("http://api.example/x", "api.example:80", "/", "/x");
    SAME("http://api.example:080/x", "API.EXAMPLE:80", "/", "/x");
    SAME("http://api.example:/x", "api.example", "/", "/x");
    SAME("http://api.example:8080/x", "api.example:8080", "/", "/x");
    SAME("https://api.example/x", "api.example", "/", "/x");
    SAME("https://api.example:443/x", "api.example", "/", "/x");
    SAME("https://api.example/x", "api.example:443", "/", "/x");
    SAME("http://api.example", "api.example", "/", "/");
    SAME("http://api.example?q=1", "api.example", "/", "/?q=1");
    SAME("http://api.example#f", "api.example", "/", "/");
    SAME("http://[::1]:8080/x", "[::1]:8080", "/", "/x");
    SAME("http://[::1]/x", "[::1]", "/", "/x");
    SAME("//api.example/x", "api.example", "/", "/x");
    SAME("//api.example:80/x", "api.example", "/", "/x");
    /* other authorities, ports, schemes, malformed values */
    SAME("http://other.example/x", "api.example", "/", NULL);
    SAME("http://api.example.evil/x", "api.example", "/", NULL);
    SAME("http://api.example:8080/x", "api.example", "/", NULL);
    SAME("http://api.example/x", "api.example:8080", "/", NULL);
    SAME("https://api.example/x", "api.example:80", "/", NULL);
    SAME("https://api.example:80/x", "api.example", "/", NULL);
    SAME("http://[::1]:8080/x", "[::2]:8080", "/", NULL);
    SAME("http://user@api.example/x", "api.example", "/", NULL);
    SAME("ftp://api.example/x", "api.example", "/", NULL);
    SAME("mailto:a@api.example", "api.example", "/", NULL);
    SAME("http:/x", "api.example", "/", NULL);
    SAME("http://api.example:99999/x", "api.example:99999", "/", NULL);
    SAME("http://api.example:8a/x", "api.example", "/", NULL);
    SAME("http:///x", "api.example", "/", NULL);
    SAME("//api.example/x", "", "/", NULL);
    SAME("/a b", "api.example", "/", NULL);
    SAME("/a\x01", "api.example", "/", NULL);
    SAME("", "api.example", "/", NULL);
    SAME("   ", "api.example", "/", NULL);
    SAME("#frag", "api.example", "/", NULL);
    /* relative-path references resolve against the request's path */
    SAME("43", "api.example", "/v1/users/42", "/v1/users/43");
    SAME("43", "api.example", "/v1/users/", "/v1/users/43");
    SAME("43/x?y", "api.example", "/v1/users?page=2", "/v1/43/x?y");
    SAME("../x", "api.example", "/v1/users/42", "/v1/users/../x");
    SAME("?page=3", "api.example", "/v1/users?page=2", "/v1/users?page=3");
    SAME("a:b", "api.example", "/v1/users", NULL); /* a scheme "a" */
    SAME("43", "api.example", "", NULL);
    SAME("43", "api.example", "v1/users", NULL);
    {
        char small[4];
        cr_str_t out;
        CU_ASSERT_EQUAL(cr_same_authority_path(CR_STR("/abc"), CR_STR("h"), CR_STR("/"), small, sizeof(small), &out), 0);
        CU_ASSERT_EQUAL(cr_same_authority_path(CR_STR("/ab"), CR_STR("h"), CR_STR("/"), small, sizeof(small), &out), 1);
        CU_ASSERT_EQUAL(cr_same_authority_path(CR_STR("/ab"), CR_STR("h"), CR_STR("/"), small, 0, &out), 0);
        /* a relative reference merged with a request path that holds a control byte (fuzz_invalidate) */
        CU_ASSERT_EQUAL(cr_same_authority_path(CR_STR("x"), CR_STR("h"), CR_STR("/a\n/b"), small, sizeof(small), &out), 0);
    }
}

/* ---- surrogate keys and key slices ---- */

static void test_surrogate_keys(void)
{
    cr_str_t tags[4];
    size_t n = 0;

    CU_ASSERT_EQUAL(cr_surrogate_keys_parse(CR_STR("  user-42, post-7\tall ,,"), tags, 4, &n), CR_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT(cr_str_eq(tags[0], "user-42", 7));
    CU_ASSERT(cr_str_eq(tags[1], "post-7", 6));
    CU_ASSERT(cr_str_eq(tags[2], "all", 3));
    /* a second header line appends */
    CU_ASSERT_EQUAL(cr_surrogate_keys_parse(CR_STR("Case"), tags, 4, &n), CR_OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT(cr_str_eq(tags[3], "Case", 4));
    CU_ASSERT_EQUAL(cr_surrogate_keys_parse(CR_STR(" , "), tags, 4, &n), CR_OK);
    CU_ASSERT_EQUAL(cr_surrogate_keys_parse(CR_STR(""), tags, 4, &n), CR_OK);
    /* one more than fits: declined, the first ones kept */
    CU_ASSERT_EQUAL(cr_surrogate_keys_parse(CR_STR("x"), tags, 4, &n), CR_DECLINED);
    CU_ASSERT_EQUAL(n, 4);
    n = 0;
    CU_ASSERT_EQUAL(cr_surrogate_keys_parse(CR_STR("a b c"), tags, 2, &n), CR_DECLINED);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(cr_str_eq(tags[1], "b", 1));
}

static void test_key_slices(void)
{
    CU_ASSERT(cr_str_eq(cr_invalidate_key_uri(CR_STR("h\n/p?q=1\naccept-language:en")), "h\n/p?q=1", 8));
    CU_ASSERT(cr_str_eq(cr_invalidate_key_path(CR_STR("h\n/p?q=1\naccept-language:en")), "h\n/p", 4));
    CU_ASSERT(cr_str_eq(cr_invalidate_key_uri(CR_STR("h\n/p?q=1")), "h\n/p?q=1", 8));
    CU_ASSERT(cr_str_eq(cr_invalidate_key_path(CR_STR("h\n/p?q=1")), "h\n/p", 4));
    CU_ASSERT(cr_str_eq(cr_invalidate_key_path(CR_STR("h\n/p\nx:a?b")), "h\n/p", 4));
    CU_ASSERT(cr_str_eq(cr_invalidate_key_path(CR_STR("h\n/p")), "h\n/p", 4));
    CU_ASSERT(cr_str_eq(cr_invalidate_key_path(CR_STR("nokey")), "nokey", 5));
    CU_ASSERT_EQUAL(cr_invalidate_key_path(CR_STR("")).len, 0);
}

void cr_test_register_invalidate(void)
{
    CU_pSuite suite = CU_add_suite("invalidate", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "the issue's example", test_expand_issue_example);
    CU_add_test(suite, "literal paths and prefixes", test_expand_literals_and_prefixes);
    CU_add_test(suite, "template bindings", test_expand_bindings);
    CU_add_test(suite, "dedup and limits", test_expand_dedup_and_limits);
    CU_add_test(suite, "same authority (Location, Content-Location)", test_same_authority);
    CU_add_test(suite, "surrogate keys", test_surrogate_keys);
    CU_add_test(suite, "key slices", test_key_slices);
}
