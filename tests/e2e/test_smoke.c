/*
 * test_smoke.c: the "smoke" suite: checks the e2e harness and the test upstream (tools/test-upstream.py) on their own,
 * so later suites can trust them. Never starts the real corral binary: the corral process helpers are exercised with
 * a throw-away shell script standing in for it (via CORRAL_BIN), which is restored afterwards.
 *
 * Invariants: one upstream serves the whole suite (started in the suite init, stopped in its cleanup); every test
 * begins with upstream_reset, so counts and per-path settings never leak between tests. Each test uses its own paths.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static cr_proc_t up;

static int suite_init(void)
{
    return harness_start_upstream(&up) == 0 ? 0 : -1;
}

static int suite_clean(void)
{
    return harness_stop(&up) == 0 ? 0 : -1;
}

static void reset(void)
{
    CU_ASSERT_EQUAL_FATAL(upstream_reset(&up), 0);
}

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* GET path on the upstream over HTTP/1.1; asserts the exchange completed; returns the status. */
static long get_status(const char *path, const char *const *headers, cr_resp_t *r)
{
    int rc = http_get(r, CR_H1, url_of(&up, path), headers);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        fprintf(stderr, "GET %s: %s\n", path, http_last_error());
    return r->status;
}

static int send_all(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads from fd until EOF or timeout_ms; returns the bytes read (NUL-terminated in buf). */
static size_t read_until_eof(int fd, char *buf, size_t size, int timeout_ms)
{
    size_t len = 0;
    double deadline = wall_ms() + timeout_ms;
    while (len + 1 < size) {
        int left = (int)(deadline - wall_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

static int count_occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- pure helpers ---- */

static void test_json_get_long(void)
{
    long v = 0;
    const char *j = "{\"path\": \"/x\", \"headers\": {\"n\": \"7\", \"count\": 9}, \"list\": [1, {\"n\": 3}], "
                    "\"target\": \"/x?\\\"n\\\": 5\", \"n\": 42, \"neg\":-3, \"f\": 1.5, \"s\": \"12\"}";
    CU_ASSERT_EQUAL(json_get_long(j, "n", &v), 0);
    CU_ASSERT_EQUAL(v, 42);
    CU_ASSERT_EQUAL(json_get_long(j, "neg", &v), 0);
    CU_ASSERT_EQUAL(v, -3);
    CU_ASSERT_EQUAL(json_get_long(j, "count", &v), -1); /* only nested */
    CU_ASSERT_EQUAL(json_get_long(j, "f", &v), -1);
    CU_ASSERT_EQUAL(json_get_long(j, "s", &v), -1);
    CU_ASSERT_EQUAL(json_get_long(j, "missing", &v), -1);
    CU_ASSERT_EQUAL(json_get_long("[1]", "n", &v), -1);
    CU_ASSERT_EQUAL(json_get_long("{\"count\":0}", "count", &v), 0);
    CU_ASSERT_EQUAL(v, 0);
}

static void test_ports_and_urls(void)
{
    int a = harness_free_port(), b = harness_free_port();
    CU_ASSERT(a > 0 && a < 65536);
    CU_ASSERT(b > 0 && b < 65536);
    CU_ASSERT_EQUAL(harness_wait_port(up.port, 1000), 0);
    cr_proc_t p = {.port = 8123};
    char *u1 = url_of(&p, "/a?b=1");
    char *u2 = url_of(&p, "/c");
    CU_ASSERT_STRING_EQUAL(u1, "http://127.0.0.1:8123/a?b=1");
    CU_ASSERT_STRING_EQUAL(u2, "http://127.0.0.1:8123/c");
}

static void test_resp_header_parsing(void)
{
    char raw[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"
                 "HTTP/2 200\r\ncontent-type: text/plain\r\nx-dup: a\r\nX-Dup:  b \r\n\r\n";
    cr_resp_t r = {.headers_raw = raw};
    char buf[64];
    CU_ASSERT_PTR_NULL(resp_header(&r, "Upgrade", buf, sizeof(buf)));
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Type", buf, sizeof(buf)), "text/plain");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "x-dup", buf, sizeof(buf)), "a, b");
    CU_ASSERT_EQUAL(resp_header_count(&r, "X-DUP"), 2);
    CU_ASSERT_EQUAL(resp_header_count(&r, "X-Du"), 0);
    char tiny[4];
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "content-type", tiny, sizeof(tiny)), "tex");
}

/* ---- upstream behaviour ---- */

static void test_counts_per_path(void)
{
    cr_resp_t r;
    long n = 0;
    reset();
    CU_ASSERT_EQUAL(get_status("/count/a?x=1", NULL, &r), 200);
    CU_ASSERT_EQUAL(json_get_long(r.body, "n", &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/count/a?x=2", NULL, &r), 200);
    CU_ASSERT_EQUAL(json_get_long(r.body, "n", &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"target\": \"/count/a?x=2\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"path\": \"/count/a\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/count/b", NULL, &r), 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/count/c%20d", NULL, &r), 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "DELETE", url_of(&up, "/count/b"), NULL, NULL, 0), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"method\": \"DELETE\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/count/a"), 2);
    CU_ASSERT_EQUAL(upstream_count(&up, "/count/b"), 2);
    CU_ASSERT_EQUAL(upstream_count(&up, "/count/c%20d"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/count/c d"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/count/none"), 0);
    CU_ASSERT_EQUAL(upstream_total(&up), 5); /* control calls are not counted */
    reset();
    CU_ASSERT_EQUAL(upstream_count(&up, "/count/a"), 0);
    CU_ASSERT_EQUAL(upstream_total(&up), 0);
}

static void test_response_headers_from_query(void)
{
    cr_resp_t r;
    char buf[256];
    reset();
    CU_ASSERT_EQUAL(get_status("/hdrs?status=201&cc=public%2C%20max-age%3D30&vary=Accept-Encoding&ctype=text/plain"
                               "&etag=%22e1%22&lm=Wed,%2021%20Oct%202015%2007:28:00%20GMT&expires=Thu,%2001%20Jan%202037"
                               "%2000:00:00%20GMT&age=5&date=Tue,%2001%20Jan%202030%2000:00:00%20GMT&pragma=no-cache"
                               "&setcookie=1&hdr=X-One:1&hdr=X-Dup:a&hdr=X-Dup:b&location=/elsewhere"
                               "&content_location=/cl&version=v7",
                               NULL, &r),
                    201);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "cache-control", buf, sizeof(buf)), "public, max-age=30");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Vary", buf, sizeof(buf)), "Accept-Encoding");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Type", buf, sizeof(buf)), "text/plain");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "ETag", buf, sizeof(buf)), "\"e1\"");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Last-Modified", buf, sizeof(buf)), "Wed, 21 Oct 2015 07:28:00 GMT");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Expires", buf, sizeof(buf)), "Thu, 01 Jan 2037 00:00:00 GMT");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Age", buf, sizeof(buf)), "5");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Date", buf, sizeof(buf)), "Tue, 01 Jan 2030 00:00:00 GMT");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Pragma", buf, sizeof(buf)), "no-cache");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Set-Cookie", buf, sizeof(buf)), "a=b");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-One", buf, sizeof(buf)), "1");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Dup", buf, sizeof(buf)), "a, b");
    CU_ASSERT_EQUAL(resp_header_count(&r, "x-dup"), 2);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Location", buf, sizeof(buf)), "/elsewhere");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Location", buf, sizeof(buf)), "/cl");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"version\": \"v7\""));
    CU_ASSERT_EQUAL(r.http_version, 11);
    resp_free(&r);

    CU_ASSERT_EQUAL(get_status("/hdrs/default", NULL, &r), 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Type", buf, sizeof(buf)), "application/json");
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "Date", buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(resp_header(&r, "Cache-Control", buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(resp_header(&r, "Set-Cookie", buf, sizeof(buf)));
    CU_ASSERT_EQUAL(r.body[0], '{');
    resp_free(&r);

    CU_ASSERT_EQUAL(get_status("/hdrs/size?size=12345", NULL, &r), 200);
    CU_ASSERT_EQUAL(r.body_len, 12345);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Length", buf, sizeof(buf)), "12345");
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/hdrs/empty?size=0&status=404", NULL, &r), 404);
    CU_ASSERT_EQUAL(r.body_len, 0);
    resp_free(&r);
}

static void test_set_overrides_and_reset(void)
{
    cr_resp_t r;
    char buf[128];
    reset();
    const char *path = "/set/x?cc=max-age%3D10&version=1";
    CU_ASSERT_EQUAL(get_status(path, NULL, &r), 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Cache-Control", buf, sizeof(buf)), "max-age=10");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"version\": \"1\""));
    resp_free(&r);

    CU_ASSERT_EQUAL(upstream_set(&up, "/set/x", "cc=no-store&version=2&hdr=X-Set:yes"), 0);
    CU_ASSERT_EQUAL(get_status(path, NULL, &r), 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Cache-Control", buf, sizeof(buf)), "no-store");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Set", buf, sizeof(buf)), "yes");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"version\": \"2\""));
    resp_free(&r);

    /* another path is unaffected; a second set replaces the first entirely */
    CU_ASSERT_EQUAL(get_status("/set/y?cc=max-age%3D3", NULL, &r), 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Cache-Control", buf, sizeof(buf)), "max-age=3");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_set(&up, "/set/x", "status=503"), 0);
    CU_ASSERT_EQUAL(get_status(path, NULL, &r), 503);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Cache-Control", buf, sizeof(buf)), "max-age=10");
    CU_ASSERT_PTR_NULL(resp_header(&r, "X-Set", buf, sizeof(buf)));
    resp_free(&r);

    /* an empty set clears */
    CU_ASSERT_EQUAL(upstream_set(&up, "/set/x", ""), 0);
    CU_ASSERT_EQUAL(get_status(path, NULL, &r), 200);
    resp_free(&r);

    /* reset clears settings and counts */
    CU_ASSERT_EQUAL(upstream_set(&up, "/set/x", "status=500"), 0);
    CU_ASSERT_EQUAL(upstream_count(&up, "/set/x"), 4);
    reset();
    CU_ASSERT_EQUAL(upstream_count(&up, "/set/x"), 0);
    CU_ASSERT_EQUAL(get_status(path, NULL, &r), 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/set/x"), 1);
}

static void test_conditional_etag(void)
{
    static const struct {
        const char *inm;
        long status;
    } cases[] = {
        {"If-None-Match: \"v1\"", 304},  {"If-None-Match: W/\"v1\"", 304},   {"If-None-Match: *", 304},
        {"If-None-Match: \"x\", \"v1\"", 304}, {"If-None-Match: \"v2\"", 200},
    };
    char buf[128];
    reset();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_resp_t r;
        const char *hdrs[] = {cases[i].inm, NULL};
        CU_ASSERT_EQUAL(get_status("/cond/etag?etag=%22v1%22&cc=max-age%3D5", hdrs, &r), cases[i].status);
        CU_ASSERT_STRING_EQUAL(resp_header(&r, "ETag", buf, sizeof(buf)), "\"v1\"");
        CU_ASSERT_STRING_EQUAL(resp_header(&r, "Cache-Control", buf, sizeof(buf)), "max-age=5");
        if (cases[i].status == 304)
            CU_ASSERT_EQUAL(r.body_len, 0);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/etag"), 5); /* 304s count too */
}

static void test_conditional_last_modified(void)
{
    static const struct {
        const char *ims;
        long status;
    } cases[] = {
        {"If-Modified-Since: Wed, 21 Oct 2015 07:28:00 GMT", 304},
        {"If-Modified-Since: Thu, 22 Oct 2015 07:28:00 GMT", 304},
        {"If-Modified-Since: Tue, 20 Oct 2015 07:28:00 GMT", 200},
        {"If-Modified-Since: not a date", 200},
    };
    reset();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_resp_t r;
        const char *hdrs[] = {cases[i].ims, NULL};
        CU_ASSERT_EQUAL(get_status("/cond/lm?lm=Wed,%2021%20Oct%202015%2007:28:00%20GMT", hdrs, &r), cases[i].status);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/lm"), 4);
}

static void test_fail_modes(void)
{
    cr_resp_t r;
    reset();
    int rc = http_get(&r, CR_H1, url_of(&up, "/fail/reset?fail=reset"), NULL);
    CU_ASSERT(rc == -1 || r.status >= 500);
    resp_free(&r);
    rc = http_get(&r, CR_H1, url_of(&up, "/fail/garbage?fail=garbage"), NULL);
    CU_ASSERT(rc == -1 || r.status >= 500);
    resp_free(&r);
    rc = http_get(&r, CR_H1, url_of(&up, "/fail/truncate?fail=truncate&size=100"), NULL);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(r.body_len == 100);
    CU_ASSERT(strlen(http_last_error()) > 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/fail/reset"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/fail/garbage"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/fail/truncate"), 1);
    /* a failure through /__set, and the server still serves afterwards */
    CU_ASSERT_EQUAL(upstream_set(&up, "/fail/set", "fail=reset"), 0);
    rc = http_get(&r, CR_H1, url_of(&up, "/fail/set"), NULL);
    CU_ASSERT(rc == -1 || r.status >= 500);
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/fail/after", NULL, &r), 200);
    resp_free(&r);
}

static void test_fail_hang(void)
{
    reset();
    int fd = harness_connect(up.port);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, "GET /fail/hang?fail=hang HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CU_ASSERT_EQUAL(poll(&pfd, 1, 300), 0); /* neither data nor EOF */
    close(fd);
    CU_ASSERT_EQUAL(upstream_count(&up, "/fail/hang"), 1);
}

static void test_chunked_response(void)
{
    cr_resp_t r;
    char buf[64];
    long n = 0;
    reset();
    CU_ASSERT_EQUAL(get_status("/chunked/big?chunked=1&size=10000", NULL, &r), 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Transfer-Encoding", buf, sizeof(buf)), "chunked");
    CU_ASSERT_PTR_NULL(resp_header(&r, "Content-Length", buf, sizeof(buf)));
    CU_ASSERT_EQUAL(r.body_len, 10000);
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/chunked/json?chunked=1", NULL, &r), 200);
    CU_ASSERT_EQUAL(json_get_long(r.body, "n", &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/chunked/empty?chunked=1&size=0", NULL, &r), 200);
    CU_ASSERT_EQUAL(r.body_len, 0);
    resp_free(&r);
}

static void test_request_bodies(void)
{
    cr_resp_t r;
    long n = 0;
    char big[5000];
    memset(big, 'z', sizeof(big));
    reset();
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "POST", url_of(&up, "/body/cl"), NULL, "hello world", 11), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(json_get_long(r.body, "body_len", &n), 0);
    CU_ASSERT_EQUAL(n, 11);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"method\": \"POST\""));
    resp_free(&r);

    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "PUT", url_of(&up, "/body/chunked"), chunked, big, sizeof(big)), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(json_get_long(r.body, "body_len", &n), 0);
    CU_ASSERT_EQUAL(n, (long)sizeof(big));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"transfer-encoding\": \"chunked\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"method\": \"PUT\""));
    resp_free(&r);

    /* a body sent with Expect: 100-continue is answered after the interim response */
    const char *expect[] = {"Expect: 100-continue", NULL};
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "POST", url_of(&up, "/body/expect"), expect, big, sizeof(big)), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(json_get_long(r.body, "body_len", &n), 0);
    CU_ASSERT_EQUAL(n, (long)sizeof(big));
    resp_free(&r);
}

static void test_head(void)
{
    cr_resp_t r;
    char buf[64];
    reset();
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "HEAD", url_of(&up, "/head?size=777&cc=max-age%3D9"), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Length", buf, sizeof(buf)), "777");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Cache-Control", buf, sizeof(buf)), "max-age=9");
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/head?size=777", NULL, &r), 200);
    CU_ASSERT_EQUAL(r.body_len, 777);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/head"), 2);
}

static void test_delays(void)
{
    cr_resp_t r;
    reset();
    CU_ASSERT_EQUAL(get_status("/delay/head?delay=150", NULL, &r), 200);
    CU_ASSERT(r.total_ms >= 150);
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/delay/body?body_delay=150&size=10", NULL, &r), 200);
    CU_ASSERT(r.total_ms >= 150);
    CU_ASSERT_EQUAL(r.body_len, 10);
    resp_free(&r);
}

static void test_keepalive_pipelining(void)
{
    char buf[8192];
    reset();
    int fd = harness_connect(up.port);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, "GET /ka/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                 "GET /ka/2?size=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                    0);
    read_until_eof(fd, buf, sizeof(buf), 5000);
    close(fd);
    CU_ASSERT_EQUAL(count_occurrences(buf, "HTTP/1.1 200 OK\r\n"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "Connection: close\r\n"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/ka/1"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ka/2"), 1);

    fd = harness_connect(up.port);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, "GET /ka/10 HTTP/1.0\r\n\r\n"), 0);
    read_until_eof(fd, buf, sizeof(buf), 5000); /* HTTP/1.0 without keep-alive: the server closes */
    close(fd);
    CU_ASSERT_EQUAL(count_occurrences(buf, "HTTP/1.1 200 OK\r\n"), 1);

    fd = harness_connect(up.port);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, "NONSENSE\r\n\r\n"), 0);
    read_until_eof(fd, buf, sizeof(buf), 5000);
    close(fd);
    CU_ASSERT_EQUAL(strncmp(buf, "HTTP/1.1 400 ", 13), 0);
}

static void test_parallel_200(void)
{
    enum { N = 200 };
    cr_resp_t *rs = calloc(N, sizeof(*rs));
    CU_ASSERT_FATAL(rs != NULL);
    reset();
    int failed = http_parallel_get(rs, N, CR_H1, url_of(&up, "/parallel/200?delay=20"), NULL, 50);
    CU_ASSERT_EQUAL(failed, 0);
    if (failed)
        fprintf(stderr, "parallel: %d failed: %s\n", failed, http_last_error());
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += rs[i].status == 200 && rs[i].body_len > 0;
        resp_free(&rs[i]);
    }
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT_EQUAL(upstream_count(&up, "/parallel/200"), N);
    free(rs);
}

static void test_parallel_1000_connections(void)
{
    enum { N = 1000 };
    cr_resp_t *rs = calloc(N, sizeof(*rs));
    CU_ASSERT_FATAL(rs != NULL);
    reset();
    double t0 = wall_ms();
    /* every request waits 500 ms at the origin, so finishing well under N * 500 ms needs them all open at once */
    int failed = http_parallel_get(rs, N, CR_H1, url_of(&up, "/parallel/1000?delay=500&size=64"), NULL, N);
    double elapsed = wall_ms() - t0;
    CU_ASSERT_EQUAL(failed, 0);
    if (failed)
        fprintf(stderr, "parallel: %d failed: %s\n", failed, http_last_error());
    CU_ASSERT(elapsed < 30000);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += rs[i].status == 200 && rs[i].body_len == 64;
        resp_free(&rs[i]);
    }
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT_EQUAL(upstream_count(&up, "/parallel/1000"), N);
    free(rs);
}

static void test_log_shows_headers(void)
{
    cr_resp_t r;
    reset();
    const char *hdrs[] = {"X-Test: hello", "Accept-Encoding: gzip", NULL};
    CU_ASSERT_EQUAL(get_status("/log/me?q=1", hdrs, &r), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"x-test\": \"hello\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(get_status("/log/other", NULL, &r), 200);
    resp_free(&r);
    char *log = upstream_log(&up, "/log/me");
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_EQUAL(log[0], '[');
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"x-test\": \"hello\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"accept-encoding\": \"gzip\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"target\": \"/log/me?q=1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"method\": \"GET\""));
    CU_ASSERT_PTR_NULL(strstr(log, "/log/other"));
    free(log);
    log = upstream_log(&up, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "/log/other"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "/log/me"));
    CU_ASSERT_PTR_NULL(strstr(log, "/__")); /* control calls are not logged */
    free(log);
}

/* ---- process control ---- */

static void test_process_stop_and_kill(void)
{
    cr_proc_t p;
    cr_resp_t r;
    CU_ASSERT_FATAL(harness_start_upstream(&p) == 0);
    CU_ASSERT(p.pid > 0);
    CU_ASSERT(p.port != up.port);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&p, "/second"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(harness_wait_exit(&p, 0), -2);
    CU_ASSERT_EQUAL(harness_stop(&p), 0); /* SIGTERM: clean exit */
    CU_ASSERT_EQUAL(p.pid, 0);
    CU_ASSERT_EQUAL(harness_stop(&p), -1);
    CU_ASSERT_EQUAL(harness_kill(&p, SIGTERM), -1);

    CU_ASSERT_FATAL(harness_start_upstream(&p) == 0);
    CU_ASSERT_EQUAL(harness_kill(&p, SIGKILL), 0);
    CU_ASSERT_EQUAL(harness_wait_exit(&p, 5000), 128 + SIGKILL);
    CU_ASSERT_EQUAL(p.pid, 0);
}

/* A stand-in for corral: "-t -c FILE" echoes FILE to stderr and exits 3; "-c FILE" runs the test upstream on the
 * port written as "listen: N" in FILE. */
static const char fake_corral[] = "#!/bin/sh\n"
                                  "if [ \"$1\" = \"-t\" ]; then cat \"$3\" >&2; echo to-stdout; exit 3; fi\n"
                                  "port=$(sed -n 's/^listen: *//p' \"$2\")\n"
                                  "echo \"fake corral on $port\"\n"
                                  "exec python3 \"$CORRAL_ROOT/tools/test-upstream.py\" --port \"$port\"\n";

static void test_corral_helpers_with_fake_binary(void)
{
    char script[] = "/tmp/corral-fake-XXXXXX";
    int fd = mkstemp(script);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, fake_corral, strlen(fake_corral)) == (ssize_t)strlen(fake_corral));
    close(fd);
    chmod(script, 0755);
    const char *old = getenv("CORRAL_BIN");
    char *saved = old ? strdup(old) : NULL;
    setenv("CORRAL_BIN", script, 1);

    const char *tmpl = "listen: ${PORT}\nadmin: ${ADMIN_PORT}\nupstream: 127.0.0.1:${UPSTREAM_PORT}\nkeep: ${OTHER}\n";
    cr_proc_t c;
    cr_resp_t r;
    if (harness_start_corral(&c, tmpl, &up) == 0) {
        char *conf = harness_read_file(c.conf_path);
        char expect[256];
        snprintf(expect, sizeof(expect), "listen: %d\nadmin: %d\nupstream: 127.0.0.1:%d\nkeep: ${OTHER}\n", c.port,
                 c.admin_port, up.port);
        CU_ASSERT_PTR_NOT_NULL(conf);
        if (conf)
            CU_ASSERT_STRING_EQUAL(conf, expect);
        free(conf);
        CU_ASSERT(c.admin_port > 0 && c.admin_port != c.port);
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/via-fake"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
        CU_ASSERT_EQUAL(harness_stop(&c), 0);
        char *log = harness_read_file(c.log_path);
        CU_ASSERT(log != NULL && strstr(log, "fake corral on") != NULL);
        free(log);
    } else {
        CU_FAIL("harness_start_corral with the fake binary failed");
    }

    char out[512];
    CU_ASSERT_EQUAL(harness_run_corral_check(tmpl, out, sizeof(out)), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "upstream: 127.0.0.1:1\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "${PORT}"));
    CU_ASSERT_PTR_NULL(strstr(out, "to-stdout"));

    /* a binary that exits at once fails fast */
    setenv("CORRAL_BIN", "/bin/false", 1);
    fprintf(stderr, "\n(an expected startup failure report follows)\n");
    double t0 = wall_ms();
    CU_ASSERT_EQUAL(harness_start_corral(&c, tmpl, NULL), -1);
    CU_ASSERT(wall_ms() - t0 < 5000);
    CU_ASSERT_EQUAL(c.pid, 0);
    CU_ASSERT_EQUAL(harness_run_corral_check(tmpl, out, sizeof(out)), 1);

    if (saved) {
        setenv("CORRAL_BIN", saved, 1);
        free(saved);
    } else {
        unsetenv("CORRAL_BIN");
    }
    unlink(script);
}

void cr_e2e_register_smoke(void)
{
    CU_pSuite s = CU_add_suite("smoke", suite_init, suite_clean);
    if (s == NULL)
        return;
    CU_add_test(s, "json_get_long", test_json_get_long);
    CU_add_test(s, "ports and url_of", test_ports_and_urls);
    CU_add_test(s, "resp_header parsing", test_resp_header_parsing);
    CU_add_test(s, "upstream counts per path", test_counts_per_path);
    CU_add_test(s, "upstream response headers from query", test_response_headers_from_query);
    CU_add_test(s, "upstream /__set overrides and /__reset", test_set_overrides_and_reset);
    CU_add_test(s, "upstream 304 on If-None-Match", test_conditional_etag);
    CU_add_test(s, "upstream 304 on If-Modified-Since", test_conditional_last_modified);
    CU_add_test(s, "upstream fail=reset|garbage|truncate", test_fail_modes);
    CU_add_test(s, "upstream fail=hang", test_fail_hang);
    CU_add_test(s, "upstream chunked responses", test_chunked_response);
    CU_add_test(s, "upstream request bodies", test_request_bodies);
    CU_add_test(s, "upstream HEAD", test_head);
    CU_add_test(s, "upstream delay and body_delay", test_delays);
    CU_add_test(s, "upstream keep-alive, pipelining, HTTP/1.0, bad request", test_keepalive_pipelining);
    CU_add_test(s, "parallel GET x200", test_parallel_200);
    CU_add_test(s, "parallel GET x1000 on 1000 connections", test_parallel_1000_connections);
    CU_add_test(s, "upstream_log shows request headers", test_log_shows_headers);
    CU_add_test(s, "process stop and kill", test_process_stop_and_kill);
    CU_add_test(s, "corral helpers with a fake binary", test_corral_helpers_with_fake_binary);
}
