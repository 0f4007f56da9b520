/*
 * test_coalesce.c: end-to-end tests of origin protection: single-flight across threads, hit-for-pass, shared errors,
 * waiter timeouts and disconnects, stale-while-revalidate and stale-if-error (RFC 5861), must-revalidate.
 *
 * Two suites, each with its own upstream and corral (threads: 2). The herd tests use h2load (many HTTP/2 connections,
 * many streams each) and libcurl in parallel. Exact upstream counts are the assertion: any extra origin request fails
 * a test. Waiting for expiry or for a background revalidation is bounded polling, never a fixed sleep.
 */
#include <CUnit/CUnit.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static cr_proc_t up, corral;

static const char *template = "threads: 2\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "  max_connections: 256\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "routes:\n"
                              "  - match: { prefix: /co/nocoalesce }\n"
                              "    ttl: 60s\n"
                              "    coalesce: false\n"
                              "  - match: { prefix: /co/few }\n"
                              "    ttl: 60s\n"
                              "    coalesce: { max_waiters: 5 }\n"
                              "  - match: { prefix: /co/short }\n"
                              "    ttl: 60s\n"
                              "    coalesce: { timeout: 500ms }\n"
                              "  - match: { prefix: /co/swr }\n"
                              "    stale_while_revalidate: 30s\n"
                              "  - match: { prefix: /co }\n"
                              "    ttl: 60s\n";

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void pace(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs h2load against url; returns the number of 2xx answers (or -1), and sets *succeeded. */
static long run_h2load(const char *args, const char *url, long *succeeded)
{
    char cmd[1024], line[512];
    long ok = -1;
    FILE *fp;
    snprintf(cmd, sizeof(cmd), "h2load %s '%s' 2>&1", args, url);
    *succeeded = -1;
    if ((fp = popen(cmd, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        long total, started, done, succ;
        if (sscanf(line, "requests: %ld total, %ld started, %ld done, %ld succeeded", &total, &started, &done, &succ) == 4)
            *succeeded = succ;
        if (strncmp(line, "status codes: ", 14) == 0)
            ok = atol(line + 14);
    }
    pclose(fp);
    return ok;
}

static int count_with(cr_resp_t *rs, size_t n, const char *needle)
{
    size_t i;
    int c = 0;
    for (i = 0; i != n; ++i) {
        char cs[256];
        if (resp_header(&rs[i], "cache-status", cs, sizeof(cs)) != NULL && strstr(cs, needle) != NULL)
            ++c;
    }
    return c;
}

static void free_all(cr_resp_t *rs, size_t n)
{
    size_t i;
    for (i = 0; i != n; ++i)
        resp_free(&rs[i]);
}

static void test_1000_concurrent_requests_make_one_upstream_fetch(void)
{
    long succeeded, ok = run_h2load("-n 1000 -c 100 -m 10 -t 2", url_of(&corral, "/co/herd?cc=max-age%3D60&delay=200"), &succeeded);
    CU_ASSERT_EQUAL(succeeded, 1000);
    CU_ASSERT_EQUAL(ok, 1000);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/herd"), 1);
}

static void test_herd_gets_one_body_and_says_collapsed(void)
{
    cr_resp_t rs[60];
    size_t i;
    long misses = harness_metric(&corral, "corral_cache_misses_total"),
         coalesced = harness_metric(&corral, "corral_coalesced_total");
    CU_ASSERT_EQUAL(http_parallel_get(rs, 60, CR_H1, url_of(&corral, "/co/body?cc=max-age%3D60&delay=300"), NULL, 60), 0);
    /* the counters agree: 60 misses, 59 of them answered by the leader's fill */
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_cache_misses_total") - misses, 60);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_coalesced_total") - coalesced, 59);
    for (i = 0; i != 60; ++i) {
        CU_ASSERT_EQUAL(rs[i].status, 200);
        CU_ASSERT(rs[i].body_len == rs[0].body_len && memcmp(rs[i].body, rs[0].body, rs[0].body_len) == 0);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(rs[0].body, "\"n\": 1"));
    CU_ASSERT_EQUAL(count_with(rs, 60, "stored"), 1);
    CU_ASSERT_EQUAL(count_with(rs, 60, "fwd=uri-miss; collapsed"), 59);
    free_all(rs, 60);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/body"), 1);
}

static void test_unstorable_leader_sends_waiters_upstream_then_marker_passes(void)
{
    cr_resp_t rs[20], r;
    char cs[256];
    CU_ASSERT_EQUAL(http_parallel_get(rs, 20, CR_H1, url_of(&corral, "/co/private?cc=private&delay=300"), NULL, 20), 0);
    CU_ASSERT_EQUAL(count_with(rs, 20, "detail=private"), 20);
    free_all(rs, 20);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/private"), 20);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/co/private?cc=private&delay=300"), NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "cache-status", cs, sizeof(cs)));
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "fwd=bypass; detail=hit-for-pass"));
    CU_ASSERT(r.total_ms < 1000);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/private"), 21);
}

static void test_leader_503_is_shared_by_the_herd(void)
{
    cr_resp_t rs[30], r;
    size_t i;
    CU_ASSERT_EQUAL(http_parallel_get(rs, 30, CR_H1, url_of(&corral, "/co/err?status=503&delay=300"), NULL, 30), 0);
    for (i = 0; i != 30; ++i)
        CU_ASSERT_EQUAL(rs[i].status, 503);
    free_all(rs, 30);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/err"), 1);
    /* the next request starts a new flight */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/co/err?status=503&delay=300"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/err"), 2);
}

static void test_leader_transport_error_is_shared(void)
{
    cr_resp_t rs[30];
    size_t i;
    CU_ASSERT_EQUAL(http_parallel_get(rs, 30, CR_H1, url_of(&corral, "/co/reset?fail=reset&delay=300"), NULL, 30), 0);
    for (i = 0; i != 30; ++i)
        CU_ASSERT_EQUAL(rs[i].status, 502);
    free_all(rs, 30);
    /* one fetch (plus at most one retry when the pooled connection it used turned out to be dead) */
    CU_ASSERT(upstream_count(&up, "/co/reset") >= 1 && upstream_count(&up, "/co/reset") <= 2);
}

static void test_waiters_time_out_and_fetch_for_themselves(void)
{
    cr_resp_t rs[5];
    size_t i;
    CU_ASSERT_EQUAL(http_parallel_get(rs, 5, CR_H1, url_of(&corral, "/co/short/slow?cc=max-age%3D60&delay=1500"), NULL, 5), 0);
    for (i = 0; i != 5; ++i)
        CU_ASSERT_EQUAL(rs[i].status, 200);
    /* the leader waits for its own fetch (coalesce.timeout never cuts it off) and stores it; the other four time out */
    CU_ASSERT_EQUAL(count_with(rs, 5, "detail=coalesce-timeout"), 4);
    CU_ASSERT_EQUAL(count_with(rs, 5, "fwd=uri-miss; stored"), 1);
    free_all(rs, 5);
    /* the flight's own fetch plus one per timed-out waiter */
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/short/slow"), 5);
}

static int get_with_timeout(cr_proto_t proto, const char *url, long ms)
{
    CURL *h = curl_easy_init();
    FILE *devnull = fopen("/dev/null", "w");
    int rc;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
    if (proto == CR_H2C)
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    fclose(devnull);
    return rc;
}

static void test_waiters_that_disconnect_are_removed_without_harm(void)
{
    int i;
    cr_resp_t r;
    char cs[256];
    for (i = 0; i != 6; ++i)
        CU_ASSERT_EQUAL(get_with_timeout(i % 2 ? CR_H2C : CR_H1, url_of(&corral, "/co/gone?cc=max-age%3D60&delay=700"), 100),
                        CURLE_OPERATION_TIMEDOUT);
    CU_ASSERT_EQUAL(kill(corral.pid, 0), 0);
    /* the leader's fetch completes and is stored: poll until it is a hit */
    for (i = 0; i != 100; ++i) {
        CU_ASSERT_EQUAL_FATAL(http_get(&r, CR_H2C, url_of(&corral, "/co/gone?cc=max-age%3D60&delay=700"), NULL), 0);
        resp_header(&r, "cache-status", cs, sizeof(cs));
        resp_free(&r);
        if (strstr(cs, "corral; hit") != NULL)
            break;
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/gone"), 1);
}

static void test_coalescing_can_be_turned_off(void)
{
    cr_resp_t rs[10];
    CU_ASSERT_EQUAL(http_parallel_get(rs, 10, CR_H1, url_of(&corral, "/co/nocoalesce/x?cc=max-age%3D60&delay=300"), NULL, 10),
                    0);
    free_all(rs, 10);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/nocoalesce/x"), 10);
}

static void test_max_waiters_passes_the_overflow(void)
{
    cr_resp_t rs[20];
    size_t i;
    long n;
    CU_ASSERT_EQUAL(http_parallel_get(rs, 20, CR_H1, url_of(&corral, "/co/few/x?cc=max-age%3D60&delay=300"), NULL, 20), 0);
    for (i = 0; i != 20; ++i)
        CU_ASSERT_EQUAL(rs[i].status, 200);
    CU_ASSERT(count_with(rs, 20, "detail=too-many-waiters") >= 1);
    free_all(rs, 20);
    n = upstream_count(&up, "/co/few/x");
    CU_ASSERT(n > 1 && n <= 16);
}

/* Polls until only-if-cached no longer gets a fresh hit for path. */
static int wait_until_stale(const char *path)
{
    static const char *const oic[] = {"Cache-Control: only-if-cached", NULL};
    double start = now_ms();
    while (now_ms() - start < 5000) {
        cr_resp_t r;
        char cs[256] = "";
        int fresh;
        if (http_get(&r, CR_H1, url_of(&corral, path), oic) != 0)
            return -1;
        resp_header(&r, "cache-status", cs, sizeof(cs));
        fresh = r.status == 200 && strstr(cs, "corral; hit") != NULL && strstr(cs, "ttl=-") == NULL;
        resp_free(&r);
        if (!fresh)
            return 0;
        pace(50);
    }
    return -1;
}

static void test_stale_while_revalidate_answers_at_once_and_revalidates_once(void)
{
    const char *p = "/co/swr/x?cc=max-age%3D1";
    cr_resp_t r, rs[10];
    char cs[256];
    double start;
    int i;

    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, p), NULL), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(wait_until_stale(p), 0);
    upstream_set(&up, "/co/swr/x", "delay=500&version=2");

    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, p), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "cache-status", cs, sizeof(cs)));
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "fwd=stale"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "stale-while-revalidate"));
    CU_ASSERT(r.total_ms < 250); /* not waiting for the 500 ms upstream */
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"n\": 1"));
    resp_free(&r);
    /* more stale hits while the revalidation is in flight do not start another */
    CU_ASSERT_EQUAL(http_parallel_get(rs, 10, CR_H1, url_of(&corral, p), NULL, 10), 0);
    CU_ASSERT_EQUAL(count_with(rs, 10, "stale-while-revalidate"), 10);
    free_all(rs, 10);

    start = now_ms();
    for (i = 0; now_ms() - start < 5000; ++i) {
        CU_ASSERT_EQUAL_FATAL(http_get(&r, CR_H1, url_of(&corral, p), NULL), 0);
        resp_header(&r, "cache-status", cs, sizeof(cs));
        if (strstr(cs, "corral; hit") != NULL)
            break;
        resp_free(&r);
        pace(50);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "corral; hit"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"version\": \"2\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/swr/x"), 2);
}

static void test_must_revalidate_forbids_stale(void)
{
    const char *p = "/co/swr/mr?cc=max-age%3D1,must-revalidate";
    cr_resp_t r;
    char cs[256];
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, p), NULL), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(wait_until_stale(p), 0);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, p), NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "cache-status", cs, sizeof(cs)));
    CU_ASSERT_PTR_NULL(strstr(cs, "stale-while-revalidate"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"n\": 2"));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/co/swr/mr"), 2);
}

void cr_e2e_register_coalesce(void)
{
    CU_pSuite s = CU_add_suite("coalesce", suite_init, suite_cleanup);
    CU_add_test(s, "1000 concurrent h2 requests make one upstream fetch", test_1000_concurrent_requests_make_one_upstream_fetch);
    CU_add_test(s, "the herd gets one body and says collapsed", test_herd_gets_one_body_and_says_collapsed);
    CU_add_test(s, "unstorable leader: waiters go upstream, then hit-for-pass",
                test_unstorable_leader_sends_waiters_upstream_then_marker_passes);
    CU_add_test(s, "leader 503 is shared by the herd", test_leader_503_is_shared_by_the_herd);
    CU_add_test(s, "leader transport error is shared", test_leader_transport_error_is_shared);
    CU_add_test(s, "waiters time out and fetch for themselves", test_waiters_time_out_and_fetch_for_themselves);
    CU_add_test(s, "waiters that disconnect are removed", test_waiters_that_disconnect_are_removed_without_harm);
    CU_add_test(s, "coalesce: false", test_coalescing_can_be_turned_off);
    CU_add_test(s, "max_waiters passes the overflow", test_max_waiters_passes_the_overflow);
    CU_add_test(s, "stale-while-revalidate answers at once, revalidates once",
                test_stale_while_revalidate_answers_at_once_and_revalidates_once);
    CU_add_test(s, "must-revalidate forbids stale", test_must_revalidate_forbids_stale);
}

/* ---- stale-if-error: its own upstream, which the test kills ---- */

static cr_proc_t sie_up, sie;

static const char *sie_template = "threads: 2\n"
                                  "listen:\n"
                                  "  - address: 127.0.0.1:${PORT}\n"
                                  "upstream:\n"
                                  "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                  "  connect_timeout: 500ms\n"
                                  "routes:\n"
                                  "  - match: { prefix: /sie }\n"
                                  "    stale_if_error: 2s\n"
                                  /* stale-if-error's own window is tested here: the default 60 s for an
                                   * unreachable origin (test_http_gaps.c) would outlast it */
                                  "    stale_if_unreachable: 0s\n";

static int sie_init(void)
{
    return harness_start_pair(&sie_up, &sie, sie_template);
}

static int sie_cleanup(void)
{
    return harness_stop_pair(&sie_up, &sie);
}

static void test_stale_if_error_inside_the_window_then_502(void)
{
    cr_resp_t r;
    char cs[256];
    double start;
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&sie, "/sie/x?cc=max-age%3D1"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    /* wait until it has gone stale once and been refreshed by the live upstream */
    start = now_ms();
    for (;;) {
        CU_ASSERT_EQUAL_FATAL(http_get(&r, CR_H1, url_of(&sie, "/sie/x?cc=max-age%3D1"), NULL), 0);
        resp_header(&r, "cache-status", cs, sizeof(cs));
        resp_free(&r);
        if (strstr(cs, "corral; hit") == NULL || now_ms() - start > 5000)
            break;
        pace(50);
    }
    /* now kill the upstream: once the object is stale again, the failure is answered with the stale copy */
    CU_ASSERT_EQUAL(harness_stop(&sie_up), 0);
    start = now_ms();
    for (;;) {
        CU_ASSERT_EQUAL_FATAL(http_get(&r, CR_H1, url_of(&sie, "/sie/x?cc=max-age%3D1"), NULL), 0);
        resp_header(&r, "cache-status", cs, sizeof(cs));
        if (strstr(cs, "corral; hit") == NULL)
            break;
        resp_free(&r);
        pace(50);
        if (now_ms() - start > 5000)
            break;
    }
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "stale-if-error"));
    resp_free(&r);
    /* after the window (max-age 1 s + stale_if_error 2 s) the error shows */
    start = now_ms();
    for (;;) {
        CU_ASSERT_EQUAL_FATAL(http_get(&r, CR_H1, url_of(&sie, "/sie/x?cc=max-age%3D1"), NULL), 0);
        if (r.status != 200 || now_ms() - start > 6000)
            break;
        resp_free(&r);
        pace(100);
    }
    CU_ASSERT_EQUAL(r.status, 502);
    resp_free(&r);
    CU_ASSERT_EQUAL(kill(sie.pid, 0), 0);
}

void cr_e2e_register_stale_if_error(void)
{
    CU_pSuite s = CU_add_suite("stale-if-error", sie_init, sie_cleanup);
    CU_add_test(s, "stale inside the window, 502 after it", test_stale_if_error_inside_the_window_then_502);
}
