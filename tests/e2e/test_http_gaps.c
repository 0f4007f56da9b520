/*
 * test_http_gaps.c: end-to-end tests of the RFC details issue 17 closes, one test per item, each against the real
 * binary and the real test upstream (whose request count per path says whether the cache answered).
 *
 * One upstream and one corral serve the suite (started in its init, stopped by PID in its cleanup); every test uses
 * its own paths.
 */
#include <CUnit/CUnit.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

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
                                     "routes:\n"
                                     "  - match: { prefix: /nohost }\n"
                                     "    key: { host: false }\n"
                                     "  - match: { prefix: /slowfill }\n"
                                     "    coalesce: { timeout: 300ms }\n"
                                     "  - match: { prefix: / }\n";

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, config_template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* A GET with optional request headers; returns the status and fills cs with the Cache-Status ("" when absent). */
static int get(const char *path, const char *const *headers, char *cs, size_t cssize)
{
    cr_resp_t r;
    int status;
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&corral, path), headers, NULL, 0), 0);
    if (resp_header(&r, "cache-status", cs, cssize) == NULL)
        cs[0] = '\0';
    status = r.status;
    resp_free(&r);
    return status;
}

/* Sends path twice; returns how many times the upstream was asked for upstream_path. */
static long fetch_twice(const char *path, const char *upstream_path)
{
    char cs[256];
    CU_ASSERT_EQUAL(get(path, NULL, cs, sizeof(cs)), 200);
    CU_ASSERT_EQUAL(get(path, NULL, cs, sizeof(cs)), 200);
    return upstream_count(&up, upstream_path);
}

/* RFC 9111 5.1: a list-valued Age or repeated Age lines count by their first value; an Age too large to hold is
 * stale, never fresh; one that is not a number is ignored. max-age=3600 throughout. */
static void test_age_first_value_counts_and_never_freshens(void)
{
    /* two lines, the first 7200: stale at once, so the second request goes upstream again */
    CU_ASSERT_EQUAL(fetch_twice("/age/two-lines-old?cc=max-age%3D3600&hdr=Age:7200&hdr=Age:0", "/age/two-lines-old"), 2);
    /* two lines, the first 0: fresh */
    CU_ASSERT_EQUAL(fetch_twice("/age/two-lines-new?cc=max-age%3D3600&hdr=Age:0&hdr=Age:7200", "/age/two-lines-new"), 1);
    /* one line, a list: its first member */
    CU_ASSERT_EQUAL(fetch_twice("/age/list-old?cc=max-age%3D3600&hdr=Age:7200,%200", "/age/list-old"), 2);
    CU_ASSERT_EQUAL(fetch_twice("/age/list-new?cc=max-age%3D3600&hdr=Age:0,%207200", "/age/list-new"), 1);
    /* beyond 64 bits: saturated, stale */
    CU_ASSERT_EQUAL(fetch_twice("/age/huge?cc=max-age%3D3600&hdr=Age:99999999999999999999999", "/age/huge"), 2);
    /* a fraction keeps its whole seconds (7200.5 is 7200: stale) */
    CU_ASSERT_EQUAL(fetch_twice("/age/frac?cc=max-age%3D3600&hdr=Age:7200.5", "/age/frac"), 2);
    /* not a number: ignored, fresh by max-age */
    CU_ASSERT_EQUAL(fetch_twice("/age/word?cc=max-age%3D3600&hdr=Age:abc", "/age/word"), 1);
    CU_ASSERT_EQUAL(fetch_twice("/age/neg?cc=max-age%3D3600&hdr=Age:-7200", "/age/neg"), 1);
}

/* RFC 9111 4.1: the varied request headers are compared after normalizing whitespace and, for the case-insensitive
 * lists (Accept, Accept-Language, ...), case and order. */
static void test_vary_normalizes_lists(void)
{
    static const char *const en_de[] = {"Accept-Language: en, de", NULL}, *const de_en[] = {"Accept-Language: DE,en", NULL},
                             *const spaced[] = {"Accept-Language:   en ,   de  ", NULL},
                             *const two_lines[] = {"Accept-Language: de", "Accept-Language: en", NULL},
                             *const fr[] = {"Accept-Language: fr", NULL},
                             *const q1[] = {"Accept: text/html;q=0.9, application/json", NULL},
                             *const q2[] = {"Accept: application/json,text/html ; q=0.9", NULL},
                             *const q3[] = {"Accept: application/json,text/html;q=0.5", NULL};
    const char *lang = "/vary/lang?cc=max-age%3D600&vary=Accept-Language", *acc = "/vary/accept?cc=max-age%3D600&vary=Accept";
    char cs[256];

    CU_ASSERT_EQUAL(get(lang, en_de, cs, sizeof(cs)), 200);
    CU_ASSERT_EQUAL(get(lang, de_en, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(get(lang, spaced, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(get(lang, two_lines, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/vary/lang"), 1);
    CU_ASSERT_EQUAL(get(lang, fr, cs, sizeof(cs)), 200); /* a different language is a different variant */
    CU_ASSERT_PTR_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/vary/lang"), 2);

    CU_ASSERT_EQUAL(get(acc, q1, cs, sizeof(cs)), 200);
    CU_ASSERT_EQUAL(get(acc, q2, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/vary/accept"), 1);
    CU_ASSERT_EQUAL(get(acc, q3, cs, sizeof(cs)), 200); /* another q-value is another variant */
    CU_ASSERT_EQUAL(upstream_count(&up, "/vary/accept"), 2);
}

/* The key sorts query parameters by name; parameters of one name keep the order they were sent in, in the key and
 * in what the fill asks the upstream (an API may read `?s=b&s=a` differently from `?s=a&s=b`). */
static void test_repeated_query_parameters_keep_their_order(void)
{
    cr_resp_t r;
    char cs[256];
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&corral, "/query/order?t=1&s=b&cc=max-age%3D600&s=a"), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(r.body != NULL ? strstr(r.body, "\"target\": \"/query/order?cc=max-age%3D600&s=b&s=a&t=1\"") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&corral, "/query/order?s=a&cc=max-age%3D600&s=b&t=1"), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(r.body != NULL ? strstr(r.body, "\"target\": \"/query/order?cc=max-age%3D600&s=a&s=b&t=1\"") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/query/order"), 2);
    /* the same order again, other names moved: the first entry */
    CU_ASSERT_EQUAL(get("/query/order?cc=max-age%3D600&s=b&t=1&s=a", NULL, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/query/order"), 2);
}

/* Request no-store: a stored fresh object answers it (RFC 9111 5.2.1.5 forbids storing, not reusing); on a miss it
 * goes upstream and nothing is stored. The README says the same. */
static void test_request_no_store_is_answered_from_the_cache(void)
{
    static const char *const ns[] = {"Cache-Control: no-store", NULL};
    char cs[256];
    CU_ASSERT_EQUAL(get("/reqns/stored?cc=max-age%3D600", NULL, cs, sizeof(cs)), 200);
    CU_ASSERT_EQUAL(get("/reqns/stored?cc=max-age%3D600", ns, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/reqns/stored"), 1);
    /* a miss: passed, not stored */
    CU_ASSERT_EQUAL(get("/reqns/missing?cc=max-age%3D600", ns, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "detail=no-store"));
    CU_ASSERT_EQUAL(get("/reqns/missing?cc=max-age%3D600", NULL, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/reqns/missing"), 2);
}

/* The README's example of an upstream error body is what corral sends: a corral whose upstream port is closed. */
static void test_readme_upstream_error_body_is_what_corral_sends(void)
{
    cr_proc_t lone;
    cr_resp_t r;
    char path[4096], *readme = NULL;
    size_t len = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/README.md", harness_repo_root());
    CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(path, "r"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(readme = malloc(1 << 20));
    len = fread(readme, 1, (1 << 20) - 1, f);
    fclose(f);
    readme[len] = '\0';
    CU_ASSERT_EQUAL_FATAL(harness_start_corral(&lone, config_template, NULL), 0); /* upstream: 127.0.0.1:1, closed */
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&lone, "/down"), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 502);
    while (r.body_len != 0 && (r.body[r.body_len - 1] == '\n' || r.body[r.body_len - 1] == '\r'))
        r.body[--r.body_len] = '\0';
    CU_ASSERT(r.body_len > 10 && strstr(readme, r.body) != NULL);
    if (strstr(readme, r.body) == NULL)
        fprintf(stderr, "    corral sent %s, which the README does not show\n", r.body);
    resp_free(&r);
    CU_ASSERT_EQUAL(harness_stop(&lone), 0);
    free(readme);
}

/* coalesce.timeout sends waiters upstream on their own, never the fill's leader: an origin slower than the timeout is
 * asked once, its answer stored and served to the leader (it was asked twice, and the leader's answer came from its
 * own second fetch). */
static void test_slow_fill_leader_is_not_cut_off_by_coalesce_timeout(void)
{
    char cs[256];
    CU_ASSERT_EQUAL(get("/slowfill/a?cc=max-age%3D600&delay=900", NULL, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "stored"));
    CU_ASSERT_PTR_NULL(strstr(cs, "coalesce-timeout"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/slowfill/a"), 1);
    CU_ASSERT_EQUAL(get("/slowfill/a?cc=max-age%3D600&delay=900", NULL, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/slowfill/a"), 1);
}

/* Host in the key: normalized (case, default port, trailing dot), and dropped by `key.host: false`. */
static void test_host_is_normalized_and_can_be_dropped(void)
{
    static const char *const h1[] = {"Host: API.Example:80", NULL}, *const h2[] = {"Host: api.example.", NULL},
                             *const h3[] = {"Host: api.example:8080", NULL}, *const n1[] = {"Host: api", NULL},
                             *const n2[] = {"Host: api.ns.svc.cluster.local", NULL}, *const n3[] = {"Host: other:9000", NULL};
    char cs[256];

    CU_ASSERT_EQUAL(get("/host/a?cc=max-age%3D600", h1, cs, sizeof(cs)), 200);
    CU_ASSERT_EQUAL(get("/host/a?cc=max-age%3D600", h2, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/host/a"), 1);
    CU_ASSERT_EQUAL(get("/host/a?cc=max-age%3D600", h3, cs, sizeof(cs)), 200); /* another port: another origin */
    CU_ASSERT_PTR_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/host/a"), 2);

    CU_ASSERT_EQUAL(get("/nohost/a?cc=max-age%3D600", n1, cs, sizeof(cs)), 200);
    CU_ASSERT_EQUAL(get("/nohost/a?cc=max-age%3D600", n2, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(get("/nohost/a?cc=max-age%3D600", n3, cs, sizeof(cs)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/nohost/a"), 1);
}

/* A 304 from the origin updates every stored header it carries (RFC 9111 3.2), Content-Type included, and keeps the
 * rest; the body and its Content-Length stay. */
static void test_304_updates_every_header_it_carries(void)
{
    const char *p = "/rv/a?cc=max-age%3D1&etag=%22r1%22&ctype=text/plain&hdr=X-Kept:old&hdr=X-Rev:1"
                    "&hdr304=Content-Type:text/csv&hdr304=X-Rev:2";
    char cs[256], ctype[64], rev[16], kept[16];
    cr_resp_t r;
    long deadline = harness_now_ms() + 5000;
    int refreshed = 0;

    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&corral, p), NULL, NULL, 0), 0);
    CU_ASSERT(resp_header(&r, "content-type", ctype, sizeof(ctype)) != NULL && strcmp(ctype, "text/plain") == 0);
    resp_free(&r);
    while (!refreshed && harness_now_ms() < deadline) { /* stale after 1 s: the next request revalidates */
        CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&corral, p), NULL, NULL, 0), 0);
        if (resp_header(&r, "cache-status", cs, sizeof(cs)) != NULL && strstr(cs, "fwd=stale") != NULL) {
            refreshed = 1;
            CU_ASSERT(resp_header(&r, "content-type", ctype, sizeof(ctype)) != NULL && strcmp(ctype, "text/csv") == 0);
            CU_ASSERT(resp_header(&r, "x-rev", rev, sizeof(rev)) != NULL && strcmp(rev, "2") == 0);
            CU_ASSERT(resp_header(&r, "x-kept", kept, sizeof(kept)) != NULL && strcmp(kept, "old") == 0);
            CU_ASSERT(r.body_len > 0);
        }
        resp_free(&r);
        if (!refreshed)
            poll(NULL, 0, 100);
    }
    CU_ASSERT(refreshed);
    CU_ASSERT_EQUAL(upstream_count(&up, "/rv/a"), 2);
    /* and the refreshed object keeps it for hits */
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&corral, p), NULL, NULL, 0), 0);
    CU_ASSERT(resp_header(&r, "content-type", ctype, sizeof(ctype)) != NULL && strcmp(ctype, "text/csv") == 0);
    resp_free(&r);
}

/* RFC 9111 4.2.4: with the origin gone (its port closed), a stale object answers within stale_if_unreachable (60 s by
 * default) without any stale-if-error, but never one stored with must-revalidate or no-cache; a route with
 * stale_if_unreachable: 0 gets the error. Its own upstream and corral: the upstream is stopped mid-test. */
static void test_stale_when_the_origin_is_gone(void)
{
    static const char *const tmpl = "threads: 1\n"
                                    "listen:\n"
                                    "  - address: 127.0.0.1:${PORT}\n"
                                    "upstream:\n"
                                    "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                    "routes:\n"
                                    "  - match: { prefix: /off }\n"
                                    "    stale_if_unreachable: 0s\n"
                                    "  - match: { prefix: / }\n";
    static const char *const paths[] = {"/gone/a?cc=max-age%3D1", "/gone/mr?cc=max-age%3D1,must-revalidate",
                                        "/gone/nc?cc=no-cache,max-age%3D60&etag=%22n%22", "/off/a?cc=max-age%3D1"};
    cr_proc_t up2, c2;
    cr_resp_t r;
    char cs[256];
    size_t i;

    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up2, &c2, tmpl), 0);
    for (i = 0; i != 4; ++i) {
        CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, paths[i]), NULL, NULL, 0), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(harness_stop(&up2), 0);
    poll(NULL, 0, 1200); /* max-age=1 runs out (the objects are 1 s fresh; nothing else can make them stale) */
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, paths[0]), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(resp_header(&r, "cache-status", cs, sizeof(cs)) != NULL && strstr(cs, "fwd=stale; detail=origin-down") != NULL);
    resp_free(&r);
    for (i = 1; i != 4; ++i) {
        CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, paths[i]), NULL, NULL, 0), 0);
        CU_ASSERT_EQUAL(r.status, 502);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "upstream_unreachable"));
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(harness_stop(&c2), 0);
}

/* PURGE on the traffic port: off by default (an ordinary method, passed upstream); with cache.purge_from it purges
 * every object stored for the path from those networks and is refused from others. */
static void test_purge_method(void)
{
    static const char *const allowed = "threads: 1\n"
                                       "listen:\n"
                                       "  - address: 127.0.0.1:${PORT}\n"
                                       "upstream:\n"
                                       "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                       "cache:\n"
                                       "  purge_from: [10.0.0.0/8, 127.0.0.0/8]\n"
                                       "routes:\n"
                                       "  - match: { prefix: / }\n",
                             *const others = "threads: 1\n"
                                             "listen:\n"
                                             "  - address: 127.0.0.1:${PORT}\n"
                                             "upstream:\n"
                                             "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                             "cache:\n"
                                             "  purge_from: [10.0.0.0/8, \"::1/128\"]\n"
                                             "routes:\n"
                                             "  - match: { prefix: / }\n";
    cr_proc_t c2;
    cr_resp_t r;
    char cs[256];

    /* off (this suite's corral): PURGE goes upstream like any other method */
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "PURGE", url_of(&corral, "/purge/off"), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/purge/off"), 1);

    /* on, from an allowed network (127.0.0.0/8): every variant of the path goes, nothing reaches the upstream */
    CU_ASSERT_EQUAL_FATAL(harness_start_corral(&c2, allowed, &up), 0);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, "/purge/on?cc=max-age%3D600&v=1"), NULL, NULL, 0), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, "/purge/on?cc=max-age%3D600&v=2"), NULL, NULL, 0), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "PURGE", url_of(&c2, "/purge/on"), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "{\"purged\": {\"keys\": 1, \"prefixes\": 0, \"tags\": 0, \"objects\": 2}"));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/purge/on"), 2);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, "/purge/on?cc=max-age%3D600&v=1"), NULL, NULL, 0), 0);
    CU_ASSERT(resp_header(&r, "cache-status", cs, sizeof(cs)) != NULL && strstr(cs, "corral; hit") == NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/purge/on"), 3);
    CU_ASSERT_EQUAL(harness_stop(&c2), 0);

    /* on, but not for this client (127.0.0.1 is in neither network): 403, nothing purged, nothing sent upstream */
    CU_ASSERT_EQUAL_FATAL(harness_start_corral(&c2, others, &up), 0);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, "/purge/deny?cc=max-age%3D600"), NULL, NULL, 0), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "PURGE", url_of(&c2, "/purge/deny"), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"forbidden\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, "/purge/deny?cc=max-age%3D600"), NULL, NULL, 0), 0);
    CU_ASSERT(resp_header(&r, "cache-status", cs, sizeof(cs)) != NULL && strstr(cs, "corral; hit") != NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/purge/deny"), 1);
    CU_ASSERT_EQUAL(harness_stop(&c2), 0);
}

void cr_e2e_register_http_gaps(void)
{
    CU_pSuite s = CU_add_suite("http_gaps", suite_init, suite_cleanup);
    CU_add_test(s, "Age: the first value counts; too large is stale; not a number is ignored",
                test_age_first_value_counts_and_never_freshens);
    CU_add_test(s, "Vary: whitespace, case and order of list members are normalized", test_vary_normalizes_lists);
    CU_add_test(s, "query: parameters of one name keep their order, in the key and upstream",
                test_repeated_query_parameters_keep_their_order);
    CU_add_test(s, "request no-store: answered from the cache, a miss is not stored",
                test_request_no_store_is_answered_from_the_cache);
    CU_add_test(s, "README: the upstream error body shown is the one sent", test_readme_upstream_error_body_is_what_corral_sends);
    CU_add_test(s, "coalesce.timeout never cuts off the fill's leader", test_slow_fill_leader_is_not_cut_off_by_coalesce_timeout);
    CU_add_test(s, "Host in the key: normalized, or dropped by key.host: false", test_host_is_normalized_and_can_be_dropped);
    CU_add_test(s, "a 304 updates every stored header it carries, Content-Type too", test_304_updates_every_header_it_carries);
    CU_add_test(s, "stale when the origin is gone: stale_if_unreachable", test_stale_when_the_origin_is_gone);
    CU_add_test(s, "PURGE on the traffic port: off by default, from cache.purge_from only", test_purge_method);
}
