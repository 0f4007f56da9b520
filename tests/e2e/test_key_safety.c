/*
 * test_key_safety.c: end-to-end tests that one user's page is never served to another (issue 10, section 2):
 * repeated header fields (HTTP/2 cookie crumbs, two Accept-Language lines), query names the key does not see,
 * unkeyed headers that reach the upstream, requests carrying Cookie with no explicit shareability, and route bypass
 * by path variants.
 *
 * Two suites, each with one upstream and one corral: "key safety" runs the default rules, "key safety (route
 * rules)" the route keys `forward_headers` and `cookies`. Every test checks what the client got, what the upstream
 * saw (the test upstream answers with a JSON description of the request), and the upstream's request count: a wrong
 * hit shows up as one request too few. Paths that libcurl would rewrite ("//x", "/x/.") go over a raw socket.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

static cr_proc_t up, corral, up2, corral2;

static const char *config_default = "threads: 2\n"
                                    "listen:\n"
                                    "  - address: 127.0.0.1:${PORT}\n"
                                    "upstream:\n"
                                    "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                    "  timeout: 5s\n"
                                    "admin:\n"
                                    "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                    "routes:\n"
                                    "  - match: { exact: /private }\n"
                                    "    cache: false\n"
                                    "  - match: { prefix: /secret }\n"
                                    "    cache: false\n"
                                    "  - match: { prefix: /q }\n"
                                    "    ttl: 60s\n"
                                    "    key: { query: [page, limit] }\n"
                                    "  - match: { prefix: /qnone }\n"
                                    "    ttl: 60s\n"
                                    "    key: { query: none }\n"
                                    "  - match: { prefix: /lang }\n"
                                    "    ttl: 60s\n"
                                    "    key: { headers: [accept-language] }\n"
                                    "  - match: { prefix: / }\n"
                                    "    ttl: 60s\n";

static const char *config_rules = "threads: 2\n"
                                  "listen:\n"
                                  "  - address: 127.0.0.1:${PORT}\n"
                                  "upstream:\n"
                                  "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                  "  timeout: 5s\n"
                                  "admin:\n"
                                  "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                  "routes:\n"
                                  "  - match: { prefix: /fwd }\n"
                                  "    ttl: 60s\n"
                                  "    forward_headers: [x-forwarded-host]\n"
                                  "  - match: { prefix: /ign }\n"
                                  "    ttl: 60s\n"
                                  "    cookies: ignore\n"
                                  "  - match: { prefix: /sess }\n"
                                  "    ttl: 60s\n"
                                  "    cookies: [session]\n"
                                  "  - match: { prefix: / }\n"
                                  "    ttl: 60s\n";

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, config_default);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

static int rules_init(void)
{
    return harness_start_pair(&up2, &corral2, config_rules);
}

static int rules_cleanup(void)
{
    return harness_stop_pair(&up2, &corral2);
}

#define CS_HAS(cs, s) CU_ASSERT_PTR_NOT_NULL(strstr((cs), (s)))
#define CS_HASNT(cs, s) CU_ASSERT_PTR_NULL(strstr((cs), (s)))
#define BODY_HAS(r, s) CU_ASSERT_PTR_NOT_NULL(strstr((r).body, (s)))
#define BODY_HASNT(r, s) CU_ASSERT_PTR_NULL(strstr((r).body, (s)))

/* One GET through corral `c`; fills cs with Cache-Status ("" when absent). */
static cr_resp_t get_on(const cr_proc_t *c, cr_proto_t proto, const char *path, const char *const *headers, char *cs, size_t cssize)
{
    cr_resp_t r;
    CU_ASSERT_EQUAL(http_get(&r, proto, url_of(c, path), headers), 0);
    if (resp_header(&r, "cache-status", cs, cssize) == NULL)
        cs[0] = '\0';
    return r;
}

/* One raw HTTP/1.1 GET of `target` as written (no client-side normalization) on a fresh connection. Returns the
 * status (0 when none) and copies the Cache-Status value into cs ("" when absent). Bounded by a 5 s receive timeout. */
static int raw_get(const cr_proc_t *c, const char *target, char *cs, size_t cssize)
{
    char req[2048], buf[65536], *p, *e;
    size_t len = 0;
    struct timeval tv = {5, 0};
    int fd = harness_connect(c->port), status = 0, n;
    ssize_t r;

    cs[0] = '\0';
    CU_ASSERT_FATAL(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target);
    CU_ASSERT_EQUAL(write(fd, req, (size_t)n), n);
    while (len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return 0;
    if ((p = strcasestr(buf, "\r\ncache-status: ")) != NULL && (e = strstr(p + 2, "\r\n")) != NULL) {
        p += 16;
        snprintf(cs, cssize, "%.*s", (int)(e - p), p);
    }
    return status;
}

/* ---- 1. repeated header fields ---- */

/* Two users share theme=dark but not their session; over h2 each cookie crumb is its own field. */
static void test_h2_cookie_crumbs_are_one_vary_value(void)
{
    static const char *const alice[] = {"Cookie: theme=dark", "Cookie: session=a", NULL};
    static const char *const bob[] = {"Cookie: theme=dark", "Cookie: session=b", NULL};
    const char *path = "/vc/page?vary=cookie&cc=public,max-age%3D60";
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral, CR_H2C, path, alice, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.http_version, 20);
    CS_HAS(cs, "stored");
    /* the upstream saw one Cookie line, crumbs joined with "; " (RFC 9113 8.2.3) */
    BODY_HAS(r, "\"cookie\": \"theme=dark; session=a\"");
    resp_free(&r);

    r = get_on(&corral, CR_H2C, path, bob, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    CS_HASNT(cs, "corral; hit");
    BODY_HAS(r, "session=b");
    BODY_HASNT(r, "session=a");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/vc/page"), 2);

    r = get_on(&corral, CR_H2C, path, alice, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    BODY_HAS(r, "session=a");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/vc/page"), 2);
    /* a pass route sends one Cookie line too */
    r = get_on(&corral, CR_H2C, "/secret/ck", alice, cs, sizeof(cs));
    BODY_HAS(r, "\"cookie\": \"theme=dark; session=a\"");
    resp_free(&r);
}

/* A header the client names in Connection is for its hop only: the fill never sends it, so the key and Vary must not
 * see it either, or the upstream's answer to "no header" is stored under the header's value. */
static void test_connection_nominated_headers_are_not_keyed(void)
{
    static const char *const nominated[] = {"Accept-Language: de", "Connection: keep-alive, accept-language", NULL};
    static const char *const plain[] = {"Accept-Language: de", NULL};
    static const char *const paths[] = {"/lang/conn", "/vl/conn?vary=accept-language"};
    size_t i;
    for (i = 0; i != 2; ++i) {
        char cs[256], counted[64];
        cr_resp_t r = get_on(&corral, CR_H1, paths[i], nominated, cs, sizeof(cs));
        BODY_HASNT(r, "\"de\""); /* the upstream never saw it */
        resp_free(&r);
        r = get_on(&corral, CR_H1, paths[i], plain, cs, sizeof(cs));
        CS_HASNT(cs, "corral; hit"); /* not the answer fetched without it */
        BODY_HAS(r, "\"de\"");
        resp_free(&r);
        snprintf(counted, sizeof(counted), "%.*s", (int)strcspn(paths[i], "?"), paths[i]);
        CU_ASSERT_EQUAL(upstream_count(&up, counted), 2);
    }
}

/* Two Accept-Language lines over HTTP/1.1, for Vary and for key.headers. */
static void test_h1_repeated_lines_are_one_value(void)
{
    static const char *const a[] = {"Accept-Language: en", "Accept-Language: fr", NULL};
    static const char *const b[] = {"Accept-Language: en", "Accept-Language: de", NULL};
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral, CR_H1, "/vl/page?vary=accept-language", a, cs, sizeof(cs));
    CS_HAS(cs, "stored");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/vl/page?vary=accept-language", b, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    BODY_HAS(r, "de");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/vl/page?vary=accept-language", a, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/vl/page"), 2);

    r = get_on(&corral, CR_H1, "/lang/page", a, cs, sizeof(cs));
    CS_HAS(cs, "stored");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/lang/page", b, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/lang/page", a, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lang/page"), 2);
}

/* Joined values too long for a key are passed uncached, never truncated into a key shared with another value. */
static void test_huge_joined_header_is_passed(void)
{
    char *l1 = malloc(6100), *l2 = malloc(6100), *l3 = malloc(6100), cs[256];
    const char *a[] = {l1, l2, NULL}, *b[] = {l1, l3, NULL};
    cr_resp_t r;

    snprintf(l1, 6100, "Accept-Language: %06000d", 1);
    snprintf(l2, 6100, "Accept-Language: x%05999d", 2);
    snprintf(l3, 6100, "Accept-Language: y%05999d", 3);
    r = get_on(&corral, CR_H1, "/lang/huge", a, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    CS_HASNT(cs, "stored");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/lang/huge", b, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    CS_HASNT(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lang/huge"), 2);
    /* Vary on it: never stored, never matched, and no hit-for-pass left for requests with a plain value */
    r = get_on(&corral, CR_H1, "/vl/huge?vary=accept-language", a, cs, sizeof(cs));
    CS_HASNT(cs, "stored");
    CS_HAS(cs, "detail=vary-too-long");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/vl/huge?vary=accept-language", b, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/vl/huge"), 2);
    r = get_on(&corral, CR_H1, "/vl/huge?vary=accept-language", NULL, cs, sizeof(cs));
    CS_HAS(cs, "stored");
    resp_free(&r);
    free(l1);
    free(l2);
    free(l3);
    r = get_on(&corral, CR_H1, "/vl/after", NULL, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
}

/* ---- 2. query names the key does not see ---- */

static void test_encoded_query_name_is_keyed_as_decoded(void)
{
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral, CR_H1, "/q/enc?pa%67e=999", NULL, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    BODY_HAS(r, "\"target\": \"/q/enc?page=999\"");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/q/enc", NULL, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    BODY_HAS(r, "\"target\": \"/q/enc\"");
    BODY_HASNT(r, "=999"); /* (not a bare "999": a random port in the body may hold it) */
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/q/enc?page=999", NULL, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/q/enc"), 2);
}

/* What the key ignores, a fill never sends: unlisted parameters are dropped, listed ones sorted. */
static void test_fill_sends_the_keyed_query(void)
{
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral, CR_H1, "/q/drop?x=1&limit=5&pag%65=2&evil=%70age", NULL, cs, sizeof(cs));
    BODY_HAS(r, "\"target\": \"/q/drop?limit=5&page=2\"");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/q/drop?page=2&limit=5", NULL, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/q/drop"), 1);

    r = get_on(&corral, CR_H1, "/qnone/x?page=7", NULL, cs, sizeof(cs));
    BODY_HAS(r, "\"target\": \"/qnone/x\"");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/all/x?b=2&%61=1", NULL, cs, sizeof(cs));
    BODY_HAS(r, "\"target\": \"/all/x?a=1&b=2\"");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/all/x?a=1&b=2", NULL, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/all/x"), 1);
    /* pass routes forward the query as received */
    r = get_on(&corral, CR_H1, "/secret/x?b=2&%61=1", NULL, cs, sizeof(cs));
    BODY_HAS(r, "\"target\": \"/secret/x?b=2&%61=1\"");
    resp_free(&r);
}

/* ---- 3. unkeyed headers ---- */

static void test_unkeyed_headers_are_not_sent_on_fills(void)
{
    static const char *const evil[] = {"X-Forwarded-Host: evil.example", "X-Original-URL: /admin", "X-Rewrite-URL: /admin",
                                       "X-HTTP-Method-Override: DELETE", "X-Host: evil.example", "X-Forwarded-Scheme: nothttps",
                                       "X-Forwarded-Server: evil.example", "X-Forwarded-Port: 1", "X-Forwarded-Prefix: /evil",
                                       "Forwarded: host=evil.example", "X-Original-Host: evil.example", "X-Override-URL: /admin",
                                       "X-Method-Override: DELETE", "X-HTTP-Method: DELETE", "X_Forwarded_Host: evil.example",
                                       "X-Forwarded-Host: evil.example", NULL};
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral, CR_H1, "/unk/page", evil, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    CS_HAS(cs, "stored");
    BODY_HASNT(r, "evil");
    BODY_HASNT(r, "admin");
    BODY_HASNT(r, "DELETE");
    BODY_HASNT(r, "nothttps");
    BODY_HASNT(r, "forwarded\": ");
    BODY_HASNT(r, "x-forwarded-port");
    BODY_HAS(r, "x-forwarded-for"); /* corral's own are kept */
    BODY_HAS(r, "\"via\"");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/unk/page", NULL, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    BODY_HASNT(r, "evil");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/unk/page"), 1);
    /* a pass route forwards them as received */
    r = get_on(&corral, CR_H1, "/secret/unk", evil, cs, sizeof(cs));
    BODY_HAS(r, "evil.example");
    resp_free(&r);
}

static void test_forward_headers_join_the_key(void)
{
    static const char *const a[] = {"X-Forwarded-Host: a.example", "X-Original-URL: /admin", NULL};
    static const char *const b[] = {"X-Forwarded-Host: b.example", "X_Forwarded_Host: c.example", NULL};
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral2, CR_H1, "/fwd/page", a, cs, sizeof(cs));
    CS_HAS(cs, "stored");
    BODY_HAS(r, "\"x-forwarded-host\": \"a.example\"");
    BODY_HASNT(r, "admin");
    resp_free(&r);
    r = get_on(&corral2, CR_H1, "/fwd/page", b, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    BODY_HAS(r, "b.example");
    BODY_HASNT(r, "c.example"); /* another spelling is not the keyed header: dropped */
    resp_free(&r);
    r = get_on(&corral2, CR_H1, "/fwd/page", NULL, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    BODY_HASNT(r, ".example");
    resp_free(&r);
    r = get_on(&corral2, CR_H1, "/fwd/page", a, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    BODY_HAS(r, "a.example");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up2, "/fwd/page"), 3);
}

/* ---- 4. cookies with no freshness ---- */

static void test_cookie_request_is_passed_without_explicit_shareability(void)
{
    static const char *const alice[] = {"Cookie: session=alice", NULL};
    static const char *const bob[] = {"Cookie: session=bob", NULL};
    char cs[256];
    cr_resp_t r;

    /* cacheable only by the route's ttl: alice's page is not stored */
    r = get_on(&corral, CR_H1, "/ck/page", alice, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    CS_HASNT(cs, "stored");
    BODY_HAS(r, "session=alice");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/ck/page", NULL, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    BODY_HASNT(r, "alice");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ck/page"), 2);
    /* the anonymous page is stored, but a cookie request is not served it */
    r = get_on(&corral, CR_H2C, "/ck/page", bob, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    BODY_HAS(r, "session=bob");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ck/page"), 3);
    r = get_on(&corral, CR_H1, "/ck/page", NULL, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    BODY_HASNT(r, "session=");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ck/page"), 3);
}

/* Vary: Cookie on a response that is not explicitly shareable: fetched once for the cookie request, not stored. */
static void test_cookie_request_with_vary_is_fetched_once(void)
{
    static const char *const alice[] = {"Cookie: session=alice", NULL};
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral, CR_H1, "/ck/vary?vary=cookie", alice, cs, sizeof(cs));
    CU_ASSERT_EQUAL(r.status, 200);
    CS_HAS(cs, "detail=cookie");
    BODY_HAS(r, "session=alice");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ck/vary"), 1);
    r = get_on(&corral, CR_H1, "/ck/vary?vary=cookie", NULL, cs, sizeof(cs));
    CS_HAS(cs, "stored"); /* no hit-for-pass marker was left behind */
    BODY_HASNT(r, "alice");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ck/vary"), 2);
}

static void test_cookie_request_uses_explicitly_shareable_objects(void)
{
    static const char *const alice[] = {"Cookie: session=alice", NULL};
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral, CR_H1, "/ck/pub?cc=public,max-age%3D60", alice, cs, sizeof(cs));
    CS_HAS(cs, "stored");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/ck/pub?cc=public,max-age%3D60", NULL, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/ck/sm?cc=s-maxage%3D60", NULL, cs, sizeof(cs));
    CS_HAS(cs, "stored");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/ck/sm?cc=s-maxage%3D60", alice, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ck/pub"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ck/sm"), 1);
    /* max-age alone is not explicitly shareable */
    r = get_on(&corral, CR_H1, "/ck/ma?cc=max-age%3D60", alice, cs, sizeof(cs));
    CS_HASNT(cs, "stored");
    resp_free(&r);
    r = get_on(&corral, CR_H1, "/ck/ma?cc=max-age%3D60", NULL, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ck/ma"), 2);
}

static void test_cookies_ignore_strips_them(void)
{
    static const char *const alice[] = {"Cookie: session=alice", NULL};
    static const char *const bob[] = {"Cookie: session=bob", NULL};
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral2, CR_H1, "/ign/page", alice, cs, sizeof(cs));
    CS_HAS(cs, "stored");
    BODY_HASNT(r, "alice");
    BODY_HASNT(r, "\"cookie\"");
    resp_free(&r);
    r = get_on(&corral2, CR_H1, "/ign/page", bob, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up2, "/ign/page"), 1);
}

static void test_cookie_list_joins_the_key(void)
{
    static const char *const a[] = {"Cookie: theme=dark", "Cookie: session=a; tracking=1", NULL};
    static const char *const a2[] = {"Cookie: theme=light; session=a", NULL};
    static const char *const b[] = {"Cookie: theme=dark; session=b", NULL};
    char cs[256];
    cr_resp_t r;

    r = get_on(&corral2, CR_H2C, "/sess/page", a, cs, sizeof(cs));
    CS_HAS(cs, "stored");
    BODY_HAS(r, "\"cookie\": \"session=a\"");
    resp_free(&r);
    r = get_on(&corral2, CR_H1, "/sess/page", a2, cs, sizeof(cs));
    CS_HAS(cs, "corral; hit");
    BODY_HAS(r, "session=a");
    resp_free(&r);
    r = get_on(&corral2, CR_H1, "/sess/page", b, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    BODY_HAS(r, "\"cookie\": \"session=b\"");
    resp_free(&r);
    r = get_on(&corral2, CR_H1, "/sess/page", NULL, cs, sizeof(cs));
    CS_HASNT(cs, "corral; hit");
    BODY_HASNT(r, "session=");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up2, "/sess/page"), 3);
    /* the default route still passes cookie requests */
    r = get_on(&corral2, CR_H1, "/other", b, cs, sizeof(cs));
    CS_HASNT(cs, "stored");
    resp_free(&r);
}

/* ---- 5. route bypass by path variants ---- */

static void test_path_variants_do_not_escape_a_pass_route(void)
{
    static const char *const variants[] = {"/private",   "//private",      "/private/", "/private;x", "/private%2F",
                                           "/%70rivate", "/private/.",     "/./private", "/private//", "/private;x/",
                                           "/secret//a", "/secret;x/a",    "/x/..;/secret/a", "/secret%2Fa", "/private%2f",
                                           "/public/..;/private", "/secret\\a", "/private#x",
                                           "/private%C0%AF", "/secret%5Ca", "/secret%2570"};
    size_t i;
    long before = upstream_total(&up), forwarded = 0;

    for (i = 0; i != sizeof(variants) / sizeof(variants[0]); ++i) {
        char cs[256];
        int k;
        for (k = 0; k != 2; ++k) {
            int status = raw_get(&corral, variants[i], cs, sizeof(cs));
            CU_ASSERT(status != 0);
            /* the strict request parser refuses some spellings outright (a raw '#'): they reach nothing */
            if (status != 400)
                ++forwarded;
            if (strstr(cs, "corral; hit") != NULL || strstr(cs, "stored") != NULL)
                fprintf(stderr, "\n  %s was cached: %s\n", variants[i], cs);
            CS_HASNT(cs, "corral; hit");
            CS_HASNT(cs, "stored");
        }
    }
    /* every one that was not refused reached the upstream, each time (none was answered from the cache) */
    CU_ASSERT(forwarded >= 2 * (long)(sizeof(variants) / sizeof(variants[0])) - 4);
    CU_ASSERT_EQUAL(upstream_total(&up) - before, forwarded);
    {
        char cs[256];
        /* a different case is a different path: cached by the catch-all */
        raw_get(&corral, "/PRIVATE", cs, sizeof(cs));
        raw_get(&corral, "/PRIVATE", cs, sizeof(cs));
        CS_HAS(cs, "corral; hit");
    }
}

void cr_e2e_register_key_safety(void)
{
    CU_pSuite s = CU_add_suite("key safety", suite_init, suite_cleanup);
    CU_add_test(s, "h2 cookie crumbs are one Vary value and one upstream line", test_h2_cookie_crumbs_are_one_vary_value);
    CU_add_test(s, "repeated h1 lines are one value for Vary and key.headers", test_h1_repeated_lines_are_one_value);
    CU_add_test(s, "a huge joined header is passed, never truncated into a key", test_huge_joined_header_is_passed);
    CU_add_test(s, "headers named in Connection are neither keyed nor sent", test_connection_nominated_headers_are_not_keyed);
    CU_add_test(s, "an encoded query name is keyed as its decoded name", test_encoded_query_name_is_keyed_as_decoded);
    CU_add_test(s, "a fill sends the query the key was made from", test_fill_sends_the_keyed_query);
    CU_add_test(s, "unkeyed headers are not sent on fills", test_unkeyed_headers_are_not_sent_on_fills);
    CU_add_test(s, "a cookie request is passed unless the response is public/s-maxage",
                test_cookie_request_is_passed_without_explicit_shareability);
    CU_add_test(s, "a cookie request uses explicitly shareable objects", test_cookie_request_uses_explicitly_shareable_objects);
    CU_add_test(s, "a cookie request to a Vary: Cookie page is fetched once", test_cookie_request_with_vary_is_fetched_once);
    CU_add_test(s, "path variants do not escape a cache: false route", test_path_variants_do_not_escape_a_pass_route);
    s = CU_add_suite("key safety (route rules)", rules_init, rules_cleanup);
    CU_add_test(s, "forward_headers are forwarded and join the key", test_forward_headers_join_the_key);
    CU_add_test(s, "cookies: ignore strips them from fills", test_cookies_ignore_strips_them);
    CU_add_test(s, "cookies: [names] forwards only those and keys on them", test_cookie_list_joins_the_key);
}
