/*
 * test_hostile_upstream.c: corral in front of tools/hostile-upstream.py (issue 10, sections 1, 3 and 4).
 *
 * Every broken answer is asked twice through a cached route and through a pass route, over HTTP/1.1 and h2c:
 *   - a malformed head gets 502 with the JSON error body, on both routes, and nothing is stored (the upstream
 *     is asked both times);
 *   - a truncated body is never stored: a fill answers 502, a pass shows the truncation to the client (an
 *     HTTP/1.1 connection closed short, an HTTP/2 stream reset: libcurl reports a transport error);
 *   - borderline but valid answers (Transfer-Encoding: Chunked, Content-Length: 5, 5, 1xx interim answers, a
 *     close-delimited body ended by a FIN) are served and stored (asked once).
 * After each case corral still answers a normal request, and it exits cleanly at the end (the suite cleanup fails
 * otherwise). The poisoning cases send bytes after the end of an answer (a body after HEAD or 204, extra bytes after
 * a Content-Length or chunked body), at once or 300 ms later, and check that the next request on the upstream
 * connection (another key) is never answered or stored with them.
 */
#include <CUnit/CUnit.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static cr_proc_t up, corral;

static const char *template = "threads: 1\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "  max_connections: 4\n"
                              "  timeout: 5s\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "limits:\n"
                              "  upstream_header_size: 8KiB\n"
                              "routes:\n"
                              "  - match: { prefix: /pass }\n"
                              "    cache: false\n"
                              "  - match: { prefix: /cache }\n"
                              "    ttl: 60s\n";

static int suite_init(void)
{
    if (harness_start_hostile_upstream(&up) != 0)
        return -1;
    if (harness_start_corral(&corral, template, &up) != 0) {
        harness_stop(&up);
        return -1;
    }
    return 0;
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

typedef enum { BAD_HEAD, TRUNCATED, GOOD } expect_t;

static const struct {
    const char *mode;
    expect_t expect;
} cases[] = {
    {"te_Chunked", GOOD},          {"te_gzip_chunked", BAD_HEAD}, {"te_chunked_x", BAD_HEAD},
    {"te_identity", BAD_HEAD},     {"te_twice", BAD_HEAD},        {"te_empty", BAD_HEAD},
    {"cl_neg", BAD_HEAD},          {"cl_abc", BAD_HEAD},          {"cl_plus", BAD_HEAD},
    {"cl_huge", BAD_HEAD},         {"cl_empty", BAD_HEAD},        {"cl_list_same", GOOD},
    {"cl_list_diff", BAD_HEAD},    {"cl_lines_same", GOOD},       {"cl_lines_diff", BAD_HEAD},
    {"cl_te", BAD_HEAD},           {"status_000", BAD_HEAD},      {"status_099", BAD_HEAD},
    {"status_600", BAD_HEAD},      {"status_1000", BAD_HEAD},     {"status_20", BAD_HEAD},
    {"status_101", BAD_HEAD},      {"status_noreason_nosp", GOOD}, {"version_2", BAD_HEAD},
    {"reason_ctl", BAD_HEAD},      {"interim_100", GOOD},         {"interim_many", BAD_HEAD},
    {"head_endless", BAD_HEAD},    {"obs_fold", BAD_HEAD},        {"bare_lf", BAD_HEAD},
    {"bare_lf_one", BAD_HEAD},     {"bare_cr", BAD_HEAD},         {"nul_value", BAD_HEAD},
    {"ctl_value", BAD_HEAD},       {"space_name", BAD_HEAD},      {"space_colon", BAD_HEAD},
    {"empty_name", BAD_HEAD},      {"no_colon", BAD_HEAD},        {"chunk_no_last", TRUNCATED},
    {"chunk_mid", TRUNCATED},      {"chunk_bad", TRUNCATED},      {"chunk_hex0x", TRUNCATED},
    {"chunk_rst", TRUNCATED},      {"cl_short", TRUNCATED},       {"cl_short_rst", TRUNCATED},
    {"close_rst", TRUNCATED},      {"close_fin", GOOD},           {"http10_fin", GOOD},
};

/* corral answers a normal request with the upstream's complete body */
static void check_still_serves(cr_proto_t proto, const char *tag)
{
    static unsigned seq;
    char path[128];
    cr_resp_t r;
    snprintf(path, sizeof(path), "/cache/ok/alive-%s-%u", tag, ++seq);
    CU_ASSERT_EQUAL_FATAL(http_get(&r, proto, url_of(&corral, path), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
}

static int is_json_error(const cr_resp_t *r)
{
    char ct[64];
    return resp_header(r, "content-type", ct, sizeof(ct)) != NULL && strcmp(ct, "application/json") == 0 &&
           strstr(r->body, "\"error\":\"upstream_error\"") != NULL;
}

static void run_case(size_t i, cr_proto_t proto, int cached)
{
    const char *mode = cases[i].mode, *pname = proto == CR_H1 ? "h1" : "h2c";
    char path[160];
    int k;

    snprintf(path, sizeof(path), "/%s/%s/%s", cached ? "cache" : "pass", mode, pname);
    for (k = 0; k < 2; ++k) {
        cr_resp_t r;
        int rc = http_get(&r, proto, url_of(&corral, path), NULL);
        switch (cases[i].expect) {
        case BAD_HEAD:
            if (rc != 0 || r.status != 502 || !is_json_error(&r))
                fprintf(stderr, "  %s: rc %d status %ld body %.200s (%s)\n", path, rc, r.status, r.body, http_last_error());
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_EQUAL(r.status, 502);
            CU_ASSERT(is_json_error(&r));
            break;
        case TRUNCATED:
            if (cached) {
                if (rc != 0 || r.status != 502)
                    fprintf(stderr, "  %s: rc %d status %ld body %.200s\n", path, rc, r.status, r.body);
                CU_ASSERT_EQUAL(rc, 0);
                CU_ASSERT_EQUAL(r.status, 502);
                CU_ASSERT(is_json_error(&r));
            } else {
                /* the status went out before the body broke: the client must see a transport error */
                if (rc != -1)
                    fprintf(stderr, "  %s: rc %d status %ld body %.200s\n", path, rc, r.status, r.body);
                CU_ASSERT_EQUAL(rc, -1);
                CU_ASSERT(r.status == 200 || r.status == 0);
            }
            break;
        case GOOD:
            if (rc != 0 || r.status != 200 || strcmp(r.body, "hello") != 0)
                fprintf(stderr, "  %s: rc %d status %ld body %.200s (%s)\n", path, rc, r.status, r.body, http_last_error());
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_EQUAL(r.status, 200);
            CU_ASSERT_STRING_EQUAL(r.body, "hello");
            break;
        }
        resp_free(&r);
    }
    /* nothing incomplete or malformed was stored: the upstream was asked both times (a good answer, once) */
    long n = upstream_count(&up, path);
    if (n != (cases[i].expect == GOOD && cached ? 1 : 2))
        fprintf(stderr, "  %s: upstream asked %ld times\n", path, n);
    CU_ASSERT_EQUAL(n, cases[i].expect == GOOD && cached ? 1 : 2);
    check_still_serves(proto, mode);
}

static void run_all(cr_proto_t proto, int cached)
{
    size_t i;
    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        run_case(i, proto, cached);
}

static void test_cached_h1(void)
{
    run_all(CR_H1, 1);
}
static void test_cached_h2c(void)
{
    run_all(CR_H2C, 1);
}
static void test_pass_h1(void)
{
    run_all(CR_H1, 0);
}
static void test_pass_h2c(void)
{
    run_all(CR_H2C, 0);
}

/* One malformed head: one error log line naming the request (and nothing that looks like a crash). */
static void test_one_log_line(void)
{
    cr_resp_t r;
    char *log;
    const char *p;
    int lines = 0;

    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/pass/te_gzip_chunked/logged"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 502);
    resp_free(&r);
    check_still_serves(CR_H1, "log");
    log = harness_read_file(corral.log_path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    for (p = log; (p = strstr(p, "/pass/te_gzip_chunked/logged")) != NULL; ++p)
        ++lines;
    /* the log is rate-limited per call site (log.h): when this suite's earlier errors used the pass error's burst
     * this second, the line is counted in that site's summary instead, written within about a second */
    for (long deadline = harness_now_ms() + 3000; lines == 0 && strstr(log, "upstream %s for %.*s %.*s: %s (") == NULL &&
                                                  harness_now_ms() < deadline;) {
        poll(NULL, 0, 10); /* a bounded poll of the log file, 10 ms steps */
        free(log);
        log = harness_read_file(corral.log_path);
        CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    }
    CU_ASSERT(lines == 1 || strstr(log, "upstream %s for %.*s %.*s: %s (") != NULL);
    CU_ASSERT_PTR_NULL(strstr(log, "Assertion"));
    CU_ASSERT_PTR_NULL(strstr(log, "AddressSanitizer"));
    free(log);
}

/* Waiters coalesced on a fill whose body is cut: every one gets 502 (never a partial body), and nothing is stored. */
static void test_coalesced_truncation(void)
{
    cr_resp_t resps[6], r;
    size_t i;
    long before;
    CU_ASSERT_EQUAL(http_parallel_get(resps, 6, CR_H2C_UPGRADE, url_of(&corral, "/cache/slow_chunk_no_last/x"), NULL, 0), 0);
    for (i = 0; i != 6; ++i) {
        if (resps[i].status != 502)
            fprintf(stderr, "  waiter %zu: status %ld body %.100s\n", i, resps[i].status, resps[i].body);
        CU_ASSERT_EQUAL(resps[i].status, 502);
        CU_ASSERT(is_json_error(&resps[i]));
        resp_free(&resps[i]);
    }
    before = upstream_count(&up, "/cache/slow_chunk_no_last/x");
    CU_ASSERT(before >= 1 && before <= 6);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/cache/slow_chunk_no_last/x"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 502);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/cache/slow_chunk_no_last/x"), before + 1);
    check_still_serves(CR_H1, "coalesced");
}

/* Polls the upstream's /__sent for path until it is at least 1 (bounded: 5 s). */
static int wait_sent(const char *path)
{
    char url[256];
    struct timespec ts = {0, 10 * 1000 * 1000};
    int i;
    for (i = 0; i < 500; ++i) {
        cr_resp_t r;
        long v = 0;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/__sent?path=%s", up.port, path);
        if (http_get(&r, CR_H1, url, NULL) == 0 && r.status == 200 && json_get_long(r.body, "count", &v) == 0 && v >= 1) {
            resp_free(&r);
            return 0;
        }
        resp_free(&r);
        nanosleep(&ts, NULL); /* a polling step, not a synchronisation sleep */
    }
    return -1;
}

/* The victim key is asked twice after the attempt: its own answer both times, stored once, never POISONED!. */
static void check_victim(const char *victim)
{
    char expect[200];
    int k;
    snprintf(expect, sizeof(expect), "victim %s", victim);
    for (k = 0; k < 2; ++k) {
        cr_resp_t r;
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, victim), NULL), 0);
        if (r.status != 200 || strcmp(r.body, expect) != 0)
            fprintf(stderr, "  %s: status %ld body %.200s\n", victim, r.status, r.body);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_STRING_EQUAL(r.body, expect);
        CU_ASSERT_PTR_NULL(strstr(r.body, "POISONED"));
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, victim), 1);
}

/* A request (method, path) whose answer leaves bytes behind, then the victim: at once (the late bytes arrive while
 * the victim's request is on the upstream connection) or, with wait_late, once the late bytes were sent (they wait
 * on an idle pooled connection). */
static void poison_case(const char *method, const char *path, long status, const char *victim, int wait_late)
{
    cr_resp_t r;
    int rc = http_request(&r, CR_H1, method, url_of(&corral, path), NULL, NULL, 0);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(r.status, status);
    CU_ASSERT_PTR_NULL(strstr(r.body, "POISONED"));
    resp_free(&r);
    if (wait_late)
        CU_ASSERT_EQUAL(wait_sent(path), 0);
    check_victim(victim);
}

static void test_poison_head_body(void)
{
    poison_case("HEAD", "/pass/head_body/1", 200, "/cache/victim/head-body", 0);
}
static void test_poison_head_late_race(void)
{
    poison_case("HEAD", "/pass/head_late/1", 200, "/cache/victim/head-late-race", 0);
}
static void test_poison_head_late_idle(void)
{
    poison_case("HEAD", "/pass/head_late/2", 200, "/cache/victim/head-late-idle", 1);
}
static void test_poison_204_body(void)
{
    poison_case("GET", "/pass/n204_body/1", 204, "/cache/victim/204-body", 0);
}
static void test_poison_204_late_race(void)
{
    poison_case("GET", "/pass/n204_late/1", 204, "/cache/victim/204-late-race", 0);
}
static void test_poison_204_late_idle(void)
{
    poison_case("GET", "/pass/n204_late/2", 204, "/cache/victim/204-late-idle", 1);
}
static void test_poison_304_body(void)
{
    poison_case("GET", "/pass/n304_body/1", 304, "/cache/victim/304-body", 0);
}
static void test_poison_304_late_race(void)
{
    poison_case("GET", "/pass/n304_late/1", 304, "/cache/victim/304-late-race", 0);
}
static void test_poison_cl_late_idle(void)
{
    poison_case("GET", "/cache/cl_late/1", 200, "/cache/victim/cl-late-idle", 1);
}
static void test_poison_cl_extra(void)
{
    poison_case("GET", "/cache/cl_extra/1", 200, "/cache/victim/cl-extra", 0);
}
static void test_poison_chunk_extra(void)
{
    poison_case("GET", "/cache/chunk_extra/1", 200, "/cache/victim/chunk-extra", 0);
}
static void test_poison_conn_close(void)
{
    poison_case("GET", "/pass/conn_close_extra/1", 200, "/cache/victim/conn-close", 0);
}

void cr_e2e_register_hostile_upstream(void)
{
    CU_pSuite s = CU_add_suite("hostile_upstream", suite_init, suite_cleanup);
    CU_add_test(s, "malformed heads and truncated bodies, cached route, HTTP/1.1", test_cached_h1);
    CU_add_test(s, "malformed heads and truncated bodies, cached route, h2c", test_cached_h2c);
    CU_add_test(s, "malformed heads and truncated bodies, pass route, HTTP/1.1", test_pass_h1);
    CU_add_test(s, "malformed heads and truncated bodies, pass route, h2c", test_pass_h2c);
    CU_add_test(s, "a malformed head is logged once", test_one_log_line);
    CU_add_test(s, "coalesced waiters of a truncated fill all get 502", test_coalesced_truncation);
    CU_add_test(s, "poisoning: a body after a HEAD answer", test_poison_head_body);
    CU_add_test(s, "poisoning: a late body after a HEAD answer, next request at once", test_poison_head_late_race);
    CU_add_test(s, "poisoning: a late body after a HEAD answer, on an idle connection", test_poison_head_late_idle);
    CU_add_test(s, "poisoning: a body after a 204", test_poison_204_body);
    CU_add_test(s, "poisoning: a late body after a 204, next request at once", test_poison_204_late_race);
    CU_add_test(s, "poisoning: a late body after a 204, on an idle connection", test_poison_204_late_idle);
    CU_add_test(s, "poisoning: a body after a 304", test_poison_304_body);
    CU_add_test(s, "poisoning: a late body after a 304, next request at once", test_poison_304_late_race);
    CU_add_test(s, "poisoning: late bytes after a Content-Length body, on an idle connection", test_poison_cl_late_idle);
    CU_add_test(s, "poisoning: bytes after a Content-Length body", test_poison_cl_extra);
    CU_add_test(s, "poisoning: bytes after a chunked body", test_poison_chunk_extra);
    CU_add_test(s, "poisoning: bytes after a Connection: close answer", test_poison_conn_close);
}
