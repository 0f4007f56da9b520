/*
 * test_client_framing.c: end-to-end tests of hostile client framing (RFC 9112 for HTTP/1.1, RFC 9113 8.3 for HTTP/2).
 *
 * HTTP/1.1 cases are written on raw sockets (every byte as given); HTTP/2 ones with tools/h2-attack.py (python3-h2
 * with header validation off, so pseudo-headers go out verbatim). For each malformed request the test asserts the
 * status corral answered (400, or 405 for CONNECT), that an HTTP/1.1 connection was closed after it, that the upstream
 * saw neither the request nor anything smuggled behind it (counted per path at tools/test-upstream.py), and that corral
 * still serves; the suite cleanup asserts a clean exit (no crash, no sanitizer report).
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static cr_proc_t up, corral;

static const char *template = "threads: 2\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "routes:\n"
                              "  - match: { prefix: /c/ }\n"
                              "    cache: true\n"
                              "    ttl: 60s\n"
                              "  - match: { prefix: / }\n"
                              "    cache: false\n";

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* Writes len bytes of req on a fresh connection and reads until the peer closes or 3 s pass. out gets what came
 * back (NUL-terminated); *closed is 1 when the peer closed (EOF or reset). Returns the bytes read, or -1. */
static long raw_exchange(const char *req, size_t len, char *out, size_t outsize, int *closed)
{
    int fd = harness_connect(corral.port);
    size_t got = 0, off = 0;
    long deadline = harness_now_ms() + 3000;
    *closed = 0;
    out[0] = '\0';
    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    while (harness_now_ms() < deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        n = recv(fd, out + got, outsize - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *closed = 1;
            break;
        }
        got += (size_t)n;
        out[got] = '\0';
        if (got == outsize - 1)
            break;
    }
    close(fd);
    return (long)got;
}

/* How many "HTTP/1.1 NNN" status lines are in out. */
static int count_responses(const char *out)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, "HTTP/1.1 ")) != NULL; p += 9)
        ++n;
    return n;
}

static void assert_still_serves(void)
{
    cr_resp_t r;
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/alive"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(kill(corral.pid, 0), 0);
}

/* A malformed HTTP/1.1 exchange: one answer, 400, the connection closed, none of the paths seen upstream. */
static void expect_h1_rejected(const char *req, const char *const *paths)
{
    char out[8192];
    int closed;
    long n = raw_exchange(req, strlen(req), out, sizeof(out), &closed);
    CU_ASSERT(n > 0);
    CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 400 ", 13), 0);
    CU_ASSERT_EQUAL(count_responses(out), 1);
    CU_ASSERT_EQUAL(closed, 1);
    for (; *paths != NULL; ++paths) {
        long c = upstream_count(&up, *paths);
        if (c != 0)
            fprintf(stderr, "\nupstream saw %s %ld times\n", *paths, c);
        CU_ASSERT_EQUAL(c, 0);
    }
    if (strncmp(out, "HTTP/1.1 400 ", 13) != 0 || !closed)
        fprintf(stderr, "\nrequest %.60s... got (closed %d): %.300s\n", req, closed, out);
    assert_still_serves();
}

#define PATHS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_cl_and_te(void)
{
    expect_h1_rejected("POST /f/clte HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "0\r\n\r\nGET /f/smuggled-clte HTTP/1.1\r\nHost: a\r\n\r\n",
                       PATHS("/f/clte", "/f/smuggled-clte"));
    expect_h1_rejected("POST /f/tecl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
                       "0\r\n\r\nGET /f/smuggled-tecl HTTP/1.1\r\nHost: a\r\n\r\n",
                       PATHS("/f/tecl", "/f/smuggled-tecl"));
    expect_h1_rejected("POST /f/te-list HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                       PATHS("/f/te-list"));
    expect_h1_rejected("POST /f/te-10 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", PATHS("/f/te-10"));
}

static void test_two_content_lengths(void)
{
    expect_h1_rejected("POST /f/cl2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 46\r\n\r\n"
                       "helloGET /f/smuggled-cl2 HTTP/1.1\r\nHost: a\r\n\r\n",
                       PATHS("/f/cl2", "/f/smuggled-cl2"));
    expect_h1_rejected("POST /f/cl-list HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 46\r\n\r\nhello", PATHS("/f/cl-list"));
    expect_h1_rejected("POST /f/cl-sign HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", PATHS("/f/cl-sign"));
}

static void test_identical_content_lengths_accepted(void)
{
    char out[8192];
    int closed;
    static const char req[] = "POST /f/cl-same HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    raw_exchange(req, strlen(req), out, sizeof(out), &closed);
    CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 200 ", 13), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"body_len\": 5"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/f/cl-same"), 1);
}

static void test_chunk_size_0x(void)
{
    expect_h1_rejected("POST /f/hex HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
                       PATHS("/f/hex"));
    expect_h1_rejected("POST /f/hex-big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
                       PATHS("/f/hex-big"));
    expect_h1_rejected("POST /f/hex-sign HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
                       PATHS("/f/hex-sign"));
    expect_h1_rejected("POST /f/hex-long HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n",
                       PATHS("/f/hex-long"));
    expect_h1_rejected("POST /f/tr-fold HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n",
                       PATHS("/f/tr-fold"));
}

static void test_bare_lf(void)
{
    expect_h1_rejected("GET /f/lf HTTP/1.1\nHost: a\n\n", PATHS("/f/lf"));
    expect_h1_rejected("GET /f/lf2 HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", PATHS("/f/lf2"));
    expect_h1_rejected("GET /f/lf3 HTTP/1.1\r\nHost: a\r\n\n", PATHS("/f/lf3"));
    expect_h1_rejected("POST /f/lf-chunk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
                       PATHS("/f/lf-chunk"));
    expect_h1_rejected("POST /f/lf-chunk2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
                       PATHS("/f/lf-chunk2"));
}

static void test_obs_fold(void)
{
    expect_h1_rejected("GET /f/fold HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", PATHS("/f/fold"));
    expect_h1_rejected("GET /f/fold2 HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tTransfer-Encoding: chunked\r\n\r\n", PATHS("/f/fold2"));
    expect_h1_rejected("GET /f/sp-colon HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", PATHS("/f/sp-colon"));
    expect_h1_rejected("GET /f/ctl HTTP/1.1\r\nHost: a\r\nX-A: b\x01" "c\r\n\r\n", PATHS("/f/ctl"));
}

static void test_request_line(void)
{
    expect_h1_rejected("GET http://a/f/abs HTTP/1.1\r\nHost: a\r\n\r\n", PATHS("/f/abs"));
    expect_h1_rejected("GET * HTTP/1.1\r\nHost: a\r\n\r\n", PATHS("*"));
    expect_h1_rejected("GET /f/v12 HTTP/1.2\r\nHost: a\r\n\r\n", PATHS("/f/v12"));
    expect_h1_rejected("GET  /f/two-sp HTTP/1.1\r\nHost: a\r\n\r\n", PATHS("/f/two-sp"));
    expect_h1_rejected("GET /f/frag#x HTTP/1.1\r\nHost: a\r\n\r\n", PATHS("/f/frag"));
    expect_h1_rejected("CONNECT /f/connect HTTP/1.1\r\nHost: a\r\n\r\n", PATHS("/f/connect"));
    {
        /* CONNECT in authority-form parses, and corral, which does not tunnel, answers 405 itself */
        char out[8192];
        int closed;
        long before = upstream_total(&up);
        static const char req[] = "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n";
        raw_exchange(req, strlen(req), out, sizeof(out), &closed);
        CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 405 ", 13), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"error\":\"method_not_allowed\""));
        CU_ASSERT_EQUAL(upstream_total(&up), before);
    }
    {
        /* OPTIONS * is the one asterisk-form request, and is passed on as it is */
        char out[8192];
        int closed;
        static const char req[] = "OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        raw_exchange(req, strlen(req), out, sizeof(out), &closed);
        CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 200 ", 13), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"target\": \"*\""));
    }
}

static void test_host_rules(void)
{
    char out[8192], want[64];
    int closed;
    static const char h10[] = "GET /f/h10 HTTP/1.0\r\n\r\n";
    /* HTTP/1.1 without Host, with two, with a path in it: 400 */
    expect_h1_rejected("GET /f/nohost HTTP/1.1\r\n\r\n", PATHS("/f/nohost"));
    expect_h1_rejected("GET /f/twohosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", PATHS("/f/twohosts"));
    expect_h1_rejected("GET /f/hostpath HTTP/1.1\r\nHost: a/b\r\n\r\n", PATHS("/f/hostpath"));
    expect_h1_rejected("GET /f/hostat HTTP/1.1\r\nHost: u@a\r\n\r\n", PATHS("/f/hostat"));
    /* HTTP/1.0 without Host: served, the upstream is told the listener's address */
    raw_exchange(h10, strlen(h10), out, sizeof(out), &closed);
    CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 200 ", 13), 0);
    snprintf(want, sizeof(want), "\"host\": \"127.0.0.1:%d\"", corral.port);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NULL(strstr(out, "\"host\": \"default\""));
    if (strstr(out, want) == NULL)
        fprintf(stderr, "\nHTTP/1.0 without Host: %.400s\n", out);
}

static void test_pipelined_smuggling(void)
{
    char out[16384];
    int closed;
    static const char req[] = "GET /f/pipe1 HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /f/pipe2 HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "0\r\n\r\nGET /f/smuggled-pipe HTTP/1.1\r\nHost: a\r\n\r\n";
    raw_exchange(req, strlen(req), out, sizeof(out), &closed);
    CU_ASSERT_EQUAL(strncmp(out, "HTTP/1.1 200 ", 13), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "HTTP/1.1 400 "));
    CU_ASSERT_EQUAL(count_responses(out), 2);
    CU_ASSERT_EQUAL(closed, 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/f/pipe1"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/f/pipe2"), 0);
    CU_ASSERT_EQUAL(upstream_count(&up, "/f/smuggled-pipe"), 0);
    assert_still_serves();
}

/* ---- HTTP/2 ---- */

/* Runs tools/h2-attack.py with the given --h pairs (NULL-terminated name, value, name, value, ...) and --then
 * /alive; its JSON line into out. Returns its exit status or -1. */
static int h2_attack(char *out, size_t outsize, const char *const *hv)
{
    char script[1024], port[16];
    const char *argv[64];
    int n = 0, pfd[2], st;
    size_t got = 0;
    pid_t pid;
    long deadline = harness_now_ms() + 10000;

    snprintf(script, sizeof(script), "%s/tools/h2-attack.py", harness_repo_root());
    snprintf(port, sizeof(port), "%d", corral.port);
    argv[n++] = "/usr/bin/python3";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--then";
    argv[n++] = "/alive";
    for (; *hv != NULL && n < 60; hv += 2) {
        argv[n++] = "--h";
        argv[n++] = hv[0];
        argv[n++] = hv[1];
    }
    argv[n] = NULL;
    out[0] = '\0';
    if (pipe(pfd) != 0)
        return -1;
    if ((pid = fork()) == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    while (got < outsize - 1 && harness_now_ms() < deadline) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((r = read(pfd[0], out + got, outsize - 1 - got)) <= 0)
            break;
        got += (size_t)r;
        out[got] = '\0';
    }
    close(pfd[0]);
    if (waitpid(pid, &st, WNOHANG) == 0) {
        for (int i = 0; i != 500 && waitpid(pid, &st, WNOHANG) == 0; ++i)
            poll(NULL, 0, 10);
        if (waitpid(pid, &st, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* An HTTP/2 request answered by corral itself with `status` and its JSON error, nothing of it upstream, and the
 * next stream on the same connection served. */
static void expect_h2_rejected(int status, const char *path_counted, const char *const *hv)
{
    char out[8192], want[32];
    long before = upstream_total(&up);
    int rc = h2_attack(out, sizeof(out), hv);
    snprintf(want, sizeof(want), "\"status\": %d,", status);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\\\"error\\\":\\\"")); /* corral's JSON error body, not the upstream's */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"then_status\": 200"));
    if (strstr(out, want) == NULL || strstr(out, "\\\"error\\\":\\\"") == NULL)
        fprintf(stderr, "\nh2 %s %s: rc %d: %.400s\n", hv[0], hv[1], rc, out);
    if (path_counted != NULL)
        CU_ASSERT_EQUAL(upstream_count(&up, path_counted), 0);
    CU_ASSERT_EQUAL(upstream_total(&up), before + 1); /* only the clean GET /alive that followed on the connection */
    assert_still_serves();
}

#define H2(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_h2_path(void)
{
    expect_h2_rejected(400, "/f/h2 space", H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/f/h2 space"));
    expect_h2_rejected(400, "/f/h2abs",
                       H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "http://127.0.0.1/f/h2abs"));
    expect_h2_rejected(400, NULL, H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "*"));
    expect_h2_rejected(400, "/f/h2rel", H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "f/h2rel"));
    expect_h2_rejected(400, "/f/h2smuggle",
                       H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/f/h2smuggle HTTP/1.1"));
    expect_h2_rejected(400, "/f/h2frag", H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/f/h2frag#x"));
}

static void test_h2_method_and_authority(void)
{
    expect_h2_rejected(400, "/f/h2m", H2(":method", "GET /f/h2m", ":scheme", "http", ":authority", "a", ":path", "/f/h2m"));
    expect_h2_rejected(400, "/f/h2auth", H2(":method", "GET", ":scheme", "http", ":authority", "a/b", ":path", "/f/h2auth"));
    expect_h2_rejected(400, "/f/h2auth2", H2(":method", "GET", ":scheme", "http", ":authority", "u@a", ":path", "/f/h2auth2"));
    expect_h2_rejected(400, "/f/h2auth3", H2(":method", "GET", ":scheme", "http", ":authority", "a b", ":path", "/f/h2auth3"));
    expect_h2_rejected(400, "/f/h2auth4", H2(":method", "GET", ":scheme", "http", ":authority", "a?x", ":path", "/f/h2auth4"));
    expect_h2_rejected(405, NULL, H2(":method", "CONNECT", ":scheme", "http", ":authority", "a:443", ":path", "/f/h2connect"));
}

static void test_h2_fields(void)
{
    char out[8192];
    CU_ASSERT_EQUAL(h2_attack(out, sizeof(out), H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/f/h2f",
                                                   "x-a", "b\\r\\nx-smuggled: 1")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"status\": 400,"));
    CU_ASSERT_EQUAL(h2_attack(out, sizeof(out), H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/f/h2f",
                                                   "x-a", "b\\x00c")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"status\": 400,"));
    CU_ASSERT_EQUAL(h2_attack(out, sizeof(out), H2(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/f/h2f",
                                                   "x a", "b")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"status\": 400,"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/f/h2f"), 0);
    assert_still_serves();
}

static void test_h2_without_authority(void)
{
    char out[8192], want[64];
    CU_ASSERT_EQUAL(h2_attack(out, sizeof(out), H2(":method", "GET", ":scheme", "http", ":path", "/f/h2noauth")), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"status\": 200,"));
    if (strstr(out, "\"then_status\"") != NULL)
        *strstr(out, "\"then_status\"") = '\0'; /* look at the first stream's answer only */
    snprintf(want, sizeof(want), "\\\"host\\\": \\\"127.0.0.1:%d\\\"", corral.port);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    if (strstr(out, want) == NULL)
        fprintf(stderr, "\nh2 without :authority: %.400s\n", out);
}

void cr_e2e_register_client_framing(void)
{
    CU_pSuite s = CU_add_suite("client framing", suite_init, suite_cleanup);
    CU_add_test(s, "h1: Content-Length with Transfer-Encoding, TE lists, TE on HTTP/1.0: 400 + close", test_cl_and_te);
    CU_add_test(s, "h1: two different Content-Length values: 400 + close", test_two_content_lengths);
    CU_add_test(s, "h1: identical Content-Length repeats are one value", test_identical_content_lengths_accepted);
    CU_add_test(s, "h1: chunk size 0x5: 400 + close", test_chunk_size_0x);
    CU_add_test(s, "h1: bare LF in the head and in chunk lines: 400 + close", test_bare_lf);
    CU_add_test(s, "h1: obs-fold, space before colon, control bytes: 400 + close", test_obs_fold);
    CU_add_test(s, "h1: absolute-form, asterisk, bad versions and spacing: 400 + close", test_request_line);
    CU_add_test(s, "h1: Host rules (1.1 without Host 400; 1.0 without Host gets the listener's)", test_host_rules);
    CU_add_test(s, "h1: a smuggled request behind a pipelined one never reaches the upstream", test_pipelined_smuggling);
    CU_add_test(s, "h2: :path with SP, absolute-form, asterisk, fragment: 400", test_h2_path);
    CU_add_test(s, "h2: :method not a token, :authority with / @ SP ?: 400; CONNECT 405", test_h2_method_and_authority);
    CU_add_test(s, "h2: field values with CR LF NUL, names with SP: 400", test_h2_fields);
    CU_add_test(s, "h2: no :authority gets the listener's", test_h2_without_authority);
}
