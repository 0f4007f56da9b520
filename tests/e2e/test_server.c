/*
 * test_server.c: end-to-end tests of corral as a server and a pass-through proxy, everything but caching semantics.
 *
 * Covers:
 *   - protocols: the same GET over HTTP/1.1, h2c prior knowledge and h2c Upgrade (101) on a `cache: false` route;
 *   - TLS: a second listener with a self-signed certificate made by the openssl CLI at test time; h2 via ALPN and
 *     HTTP/1.1 over https, the configured certificate is the one served, X-Forwarded-Proto: https upstream;
 *   - pass-through: X-Forwarded-For / X-Forwarded-Proto / Via reach the upstream, hop-by-hop request headers
 *     (Connection-named, Keep-Alive, TE, Upgrade, Transfer-Encoding) do not, hop-by-hop response headers are not
 *     relayed, upstream statuses (4xx, 5xx, 204, 302), HEAD and repeated headers pass unchanged, request bodies (0, 10,
 *     300000 bytes; chunked) arrive intact, 5 MB and chunked responses stream through intact over h1 and h2c;
 *   - upstream errors: nothing listening (502 JSON; corral recovers once an upstream appears), a restarted upstream
 *     (stale pooled connections), timeout (504 JSON; a body stalling past it is never a complete success),
 *     fail=garbage and fail=reset (502), fail=truncate (never a complete success); a normal request works after each;
 *   - the upstream connection cap (max_connections, measured by the test upstream's /__concurrency gauge) with one
 *     and with two threads, queue_timeout (504), and an h2 client going away releasing its upstream slot;
 *   - the command line: --version, --help, -t -c on valid and invalid files (file:line:col: for four error classes),
 *     a missing file, unknown options (exit 2);
 *   - drain: SIGTERM while slow h1 and h2c requests are in flight: both complete, the process exits 0 within 5 s;
 *     SIGTERM and SIGINT when idle exit 0;
 *   - admin: /healthz, /metrics, bearer token from token_env or token_file (401 + WWW-Authenticate without or with a
 *     wrong token), and the traffic port passing /metrics to the upstream.
 *
 * Multiplexed h2c requests (several streams on one connection) go through h2c Upgrade, not prior knowledge: Debian 12's
 * libcurl 7.88.1 fails every transfer that reuses a prior-knowledge connection with "Error in the HTTP2 framing layer"
 * before sending it (curl/curl#10634, fixed in curl 8.0 by #10643), whatever the server.
 *
 * Invariants: every test starts its own upstream and corral (threads: 2 unless the test is about one loop's cap)
 * and stops them by PID on every path out (REQUIRE jumps to the test's `out:` label; no CU_ASSERT_FATAL while a
 * child runs). No sleeps for synchronisation: waits are bounded polling loops. Each request of a test uses its own
 * path, so the upstream's per-path counts and logs tell the requests apart.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <CUnit/CUnit.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- assertions that leave the test (through its `out:` label) so children are always stopped ---- */

#define REQUIRE(cond)                                                                                                       \
    do {                                                                                                                    \
        int req_ok_ = (cond) ? 1 : 0;                                                                                       \
        CU_assertImplementation(req_ok_ ? CU_TRUE : CU_FALSE, __LINE__, "REQUIRE(" #cond ")", __FILE__, "", CU_FALSE);       \
        if (!req_ok_)                                                                                                       \
            goto out;                                                                                                       \
    } while (0)

/* A JSON error answer from corral itself: status, application/json, an "error" member. */
#define ASSERT_JSON_ERROR(r, st)                                                                                            \
    do {                                                                                                                    \
        char ct_[128];                                                                                                      \
        CU_ASSERT_EQUAL((r)->status, (st));                                                                                 \
        CU_ASSERT(resp_header((r), "Content-Type", ct_, sizeof(ct_)) != NULL && strstr(ct_, "application/json") != NULL);   \
        CU_ASSERT_PTR_NOT_NULL(strstr((r)->body, "\"error\""));                                                             \
    } while (0)

/* ---- configurations ---- */

#define YAML_LISTEN                                                                                                         \
    "listen:\n"                                                                                                             \
    "  - address: 127.0.0.1:${PORT}\n"

#define YAML_PASS_ROUTES                                                                                                    \
    "routes:\n"                                                                                                             \
    "  - match: { prefix: / }\n"                                                                                            \
    "    cache: false\n"

/* Two threads, everything passed through uncached. */
static const char yaml_pass[] = "threads: 2\n" YAML_LISTEN "upstream:\n"
                                "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                "  timeout: 5s\n" YAML_PASS_ROUTES;

/* ---- small helpers ---- */

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void poll_pause(void)
{
    struct timespec ts = {0, 10 * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Failures recorded when the current test started its children; stop_all prints the corral log when this grew. */
static unsigned failures_at_start;

static int start_both(cr_proc_t *up, cr_proc_t *c, const char *yaml)
{
    failures_at_start = CU_get_number_of_failures();
    if (harness_start_upstream(up) != 0)
        return -1;
    return harness_start_corral(c, yaml, up);
}

static void print_tail(const char *what, const char *path)
{
    char *text = harness_read_file(path);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    const char *start = len > 6000 ? text + len - 6000 : text;
    fprintf(stderr, "\n---- %s log (%s), last %zu bytes ----\n%s---- end ----\n", what, path, strlen(start), start);
    free(text);
}

/* Stops corral (asserting a clean exit when `expect_clean`) and the upstream; prints corral's log when the test failed. */
static void stop_all(cr_proc_t *c, cr_proc_t *up, int expect_clean)
{
    if (c != NULL && c->pid > 0) {
        int st = harness_stop(c);
        if (expect_clean) {
            CU_ASSERT_EQUAL(st, 0);
            if (st != 0)
                fprintf(stderr, "\ncorral (config %s) stopped with status %d, want 0\n", c->conf_path, st);
        }
    }
    if (up != NULL && up->pid > 0)
        harness_stop(up);
    if (c != NULL && c->log_path[0] != '\0' && CU_get_number_of_failures() > failures_at_start)
        print_tail("corral", c->log_path);
}

/* 1 when GET path through corral completes with a 200 and a body, else 0 (and says why on stderr). */
static int get_ok(const cr_proc_t *c, cr_proto_t proto, const char *path)
{
    cr_resp_t r;
    int rc = http_get(&r, proto, url_of(c, path), NULL);
    int ok = rc == 0 && r.status == 200 && r.body_len > 0;
    if (!ok)
        fprintf(stderr, "\nGET %s (proto %d): rc %d status %ld: %s\n", path, (int)proto, rc, r.status, http_last_error());
    resp_free(&r);
    return ok;
}

/* The value of request header `name` (lower case) in the upstream's JSON log text: the first `"name": "value"` whose
 * key starts an object member. Copies it into buf (unescaped only for \" and \\) and returns buf, or NULL. */
static const char *log_header(const char *log, const char *name, char *buf, size_t bufsize)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "\"%s\": \"", name);
    for (const char *p = log ? strstr(log, pat) : NULL; p != NULL; p = strstr(p + 1, pat)) {
        if (p == log || (p[-1] != '{' && p[-1] != ' '))
            continue;
        const char *v = p + strlen(pat);
        size_t n = 0;
        while (*v && *v != '"' && n + 1 < bufsize) {
            if (*v == '\\' && v[1])
                v++;
            buf[n++] = *v++;
        }
        buf[n] = '\0';
        return buf;
    }
    return NULL;
}

/* The test upstream's concurrency gauge. 0 and *cur, *max set, or -1. */
static int upstream_concurrency(const cr_proc_t *up, long *cur, long *max)
{
    char url[128];
    cr_resp_t r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__concurrency", up->port);
    int rc = http_get(&r, CR_H1, url, NULL) == 0 && r.status == 200 && json_get_long(r.body, "current", cur) == 0 &&
                     json_get_long(r.body, "max", max) == 0
                 ? 0
                 : -1;
    resp_free(&r);
    return rc;
}

/* Waits (polling) until the upstream has counted `want` requests for path; 0, or -1 after timeout_ms. */
static int wait_upstream_count(const cr_proc_t *up, const char *path, long want, int timeout_ms)
{
    double deadline = wall_ms() + timeout_ms;
    for (;;) {
        if (upstream_count(up, path) >= want)
            return 0;
        if (wall_ms() >= deadline)
            return -1;
        poll_pause();
    }
}

/* How many sockets listen on 127.0.0.1:port (from /proc/net/tcp; one per corral thread with SO_REUSEPORT), or -1. */
static int count_listeners(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    int n = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned addr, lport, st;
        if (sscanf(line, " %*d: %8X:%4X %*8X:%*4X %2X", &addr, &lport, &st) == 3 && (int)lport == port && st == 0x0A)
            n++;
    }
    fclose(f);
    return n;
}

/* Waits (polling) until at least n sockets listen on port; 0, or -1 after timeout_ms. */
static int wait_listeners(int port, int n, int timeout_ms)
{
    double deadline = wall_ms() + timeout_ms;
    for (;;) {
        if (count_listeners(port) >= n)
            return 0;
        if (wall_ms() >= deadline)
            return -1;
        poll_pause();
    }
}

/* The body test-upstream.py sends for size=N is this line repeated and cut at N bytes. */
static const char filler[] = "{\"seq\":0,\"filler\":\"abcdefghijklmnopqrstuvwxyz0123456789\",\"more\":[1,2,3,4,5,6,7,8,9]}\n";

static int is_filler(const char *body, size_t len, size_t want)
{
    size_t flen = sizeof(filler) - 1;
    if (len != want)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (body[i] != filler[i % flen])
            return 0;
    return 1;
}

/* Value of a Prometheus sample "name value" at the start of a line, or -1. */
static long metric_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = text; line != NULL && *line;) {
        if (strncmp(line, name, n) == 0 && line[n] == ' ')
            return strtol(line + n + 1, NULL, 10);
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    return -1;
}

static const char *corral_bin(void)
{
    static char bin[PATH_MAX];
    const char *env = getenv("CORRAL_BIN");
    if (env && *env)
        snprintf(bin, sizeof(bin), "%s", env);
    else
        snprintf(bin, sizeof(bin), "%s/build/corral", harness_repo_root());
    return bin;
}

/* The directory of a harness temp file (configs, logs) into dir. */
static void dir_of(const char *path, char *dir, size_t dirsize)
{
    snprintf(dir, dirsize, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
}

/* Reads from fd into b (NUL-terminated, truncated to size-1, the rest discarded); 0 at EOF, 1 while open. */
static int drain_fd(int fd, char *b, size_t size, size_t *len)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 1;
    if (n <= 0)
        return 0;
    size_t take = (size_t)n;
    if (b != NULL && size > 0) {
        if (take > size - 1 - *len)
            take = size - 1 - *len;
        memcpy(b + *len, chunk, take);
        *len += take;
        b[*len] = '\0';
    }
    return 1;
}

/* Runs argv (argv[0] searched in PATH) with stdin from /dev/null, collecting stdout into out and stderr into err
 * (either may be NULL; NUL-terminated, truncated) for at most timeout_ms, then kills it. Returns the exit code,
 * 128+N when killed by signal N, or -1 when it could not be run or timed out. */
static int run_cmd(char *const argv[], char *out, size_t outsize, char *err, size_t errsize, int timeout_ms)
{
    int po[2], pe[2];
    size_t olen = 0, elen = 0;
    if (out && outsize)
        out[0] = '\0';
    if (err && errsize)
        err[0] = '\0';
    if (pipe2(po, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(126);
        execvp(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    double deadline = wall_ms() + timeout_ms;
    int open_o = 1, open_e = 1, timed_out = 0;
    while (open_o || open_e) {
        struct pollfd fds[2] = {{open_o ? po[0] : -1, POLLIN, 0}, {open_e ? pe[0] : -1, POLLIN, 0}};
        int left = (int)(deadline - wall_ms());
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        if (poll(fds, 2, left > 100 ? 100 : left) < 0 && errno != EINTR)
            break;
        if (open_o && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            open_o = drain_fd(po[0], out, outsize, &olen);
        if (open_e && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            open_e = drain_fd(pe[0], err, errsize, &elen);
    }
    close(po[0]);
    close(pe[0]);
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (timed_out || wall_ms() >= deadline) {
            fprintf(stderr, "run_cmd: %s did not finish in %d ms; killing it\n", argv[0], timeout_ms);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        poll_pause();
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Starts tools/test-upstream.py on exactly `port` (logging into dir) and waits up to 10 s for it; p->pid is 0 when it
 * could not start. Stop it with harness_stop (it is our child). */
static void start_upstream_at(cr_proc_t *p, int port, const char *dir)
{
    char script[PATH_MAX + 32], port_s[16];
    memset(p, 0, sizeof(*p));
    snprintf(script, sizeof(script), "%s/tools/test-upstream.py", harness_repo_root());
    snprintf(port_s, sizeof(port_s), "%d", port);
    if (snprintf(p->log_path, sizeof(p->log_path), "%.200s/upstream-at-%d.log", dir, port) >= (int)sizeof(p->log_path))
        return;
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(126);
        closefrom(3);
        execlp("python3", "python3", script, "--port", port_s, (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    p->port = port;
    if (harness_wait_port(port, 10000) != 0) {
        harness_stop(p);
        print_tail("upstream", p->log_path);
    }
}

/* ---- 1. protocols ---- */

static void test_protocols(void)
{
    static const struct {
        cr_proto_t proto;
        const char *path;
        int version;
        const char *via;
    } cases[] = {
        {CR_H1, "/proto/h1", 11, "1.1 corral"},
        {CR_H2C, "/proto/h2c", 20, "2 corral"},
        {CR_H2C_UPGRADE, "/proto/upgrade", 20, NULL},
    };
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char buf[256], want[64];
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL(http_get(&r, cases[i].proto, url_of(&c, cases[i].path), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.http_version, cases[i].version);
        snprintf(want, sizeof(want), "\"path\": \"%s\"", cases[i].path);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, want));
        if (cases[i].proto == CR_H2C_UPGRADE)
            CU_ASSERT_PTR_NOT_NULL(strstr(r.headers_raw, "HTTP/1.1 101"));
        resp_free(&r);
        CU_ASSERT_EQUAL(upstream_count(&up, cases[i].path), 1);
        char *log = upstream_log(&up, cases[i].path);
        CU_ASSERT_PTR_NOT_NULL(log);
        if (cases[i].via != NULL) {
            CU_ASSERT(log_header(log, "via", buf, sizeof(buf)) != NULL && strcmp(buf, cases[i].via) == 0);
        } else {
            CU_ASSERT(log_header(log, "via", buf, sizeof(buf)) != NULL && strstr(buf, "corral") != NULL);
        }
        /* the h2c Upgrade machinery is hop-by-hop: none of it reaches the upstream */
        CU_ASSERT_PTR_NULL(log_header(log, "upgrade", buf, sizeof(buf)));
        CU_ASSERT_PTR_NULL(log_header(log, "http2-settings", buf, sizeof(buf)));
        CU_ASSERT(log_header(log, "connection", buf, sizeof(buf)) == NULL || strcasestr(buf, "upgrade") == NULL);
        free(log);
    }
    CU_ASSERT_EQUAL(upstream_total(&up), 3);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

/* ---- 2. TLS ---- */

typedef struct {
    char *p;
    size_t len, cap;
} grow_t;

static size_t grow_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    grow_t *g = ud;
    size_t n = size * nmemb;
    if (g->len + n + 1 > g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        while (cap < g->len + n + 1)
            cap *= 2;
        char *p = realloc(g->p, cap);
        if (p == NULL)
            return 0;
        g->p = p;
        g->cap = cap;
    }
    memcpy(g->p + g->len, data, n);
    g->len += n;
    g->p[g->len] = '\0';
    return n;
}

/* GET url with libcurl: `version` is a CURL_HTTP_VERSION_*; for https, cafile NULL = no verification, else verify the
 * peer (as 127.0.0.1) against it; the whole transfer is bounded to timeout_ms. r is initialised as by http_get.
 * Returns the CURLcode (CURLE_OK = 0 when the exchange completed); quiet = do not report errors on stderr.
 * The receive buffer is 512 KiB: with libcurl 7.88.1's default 16 KiB, an HTTP/2 response without Content-Length
 * sometimes never completes although every DATA frame, END_STREAM included, has arrived (a client bug: seen on the
 * wire with strace; nghttp and a larger buffer never stall). */
static int curl_fetch(cr_resp_t *r, const char *url, long version, const char *cafile, long timeout_ms, int quiet)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    grow_t body = {0}, hdrs = {0};
    long code = 0, got = 0;
    memset(r, 0, sizeof(*r));
    CURL *h = curl_easy_init();
    CURLcode rc = CURLE_FAILED_INIT;
    if (h != NULL) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, version);
        curl_easy_setopt(h, CURLOPT_PROXY, "");
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)CURL_MAX_READ_SIZE);
        curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, grow_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &hdrs);
        if (cafile == NULL) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        } else {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
            curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
        }
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &got);
        curl_easy_cleanup(h);
    }
    r->status = code;
    r->http_version = got == CURL_HTTP_VERSION_1_0 ? 10 : got == CURL_HTTP_VERSION_1_1 ? 11 : got == CURL_HTTP_VERSION_2_0 ? 20 : 0;
    r->body_len = body.len;
    r->body = body.p ? body.p : calloc(1, 1);
    r->headers_raw = hdrs.p ? hdrs.p : calloc(1, 1);
    if (rc != CURLE_OK && !quiet)
        fprintf(stderr, "\nGET %s: %s: %s\n", url, curl_easy_strerror(rc), errbuf);
    return (int)rc;
}

/* GET https://127.0.0.1:port/path (see curl_fetch); 0, or -1 on a transport error. */
static int https_get(cr_resp_t *r, long version, int port, const char *path, const char *cafile)
{
    char url[512];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
    return curl_fetch(r, url, version, cafile, 10000L, 0) == CURLE_OK ? 0 : -1;
}

static void test_tls_listener(void)
{
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char dir[256], crt[320], key[320], yaml[2048], out[4096];
    int tls_port;
    failures_at_start = CU_get_number_of_failures();
    REQUIRE(harness_start_upstream(&up) == 0);
    dir_of(up.log_path, dir, sizeof(dir));
    snprintf(crt, sizeof(crt), "%s/tls-cert.pem", dir);
    snprintf(key, sizeof(key), "%s/tls-key.pem", dir);
    {
        char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=corral-e2e",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", NULL};
        int st = run_cmd(argv, NULL, 0, out, sizeof(out), 30000);
        if (st != 0)
            fprintf(stderr, "\nopenssl req exited %d:\n%s\n", st, out);
        REQUIRE(st == 0);
    }
    tls_port = harness_free_port();
    REQUIRE(tls_port > 0);
    snprintf(yaml, sizeof(yaml),
             "threads: 2\n"
             "listen:\n"
             "  - address: 127.0.0.1:${PORT}\n"
             "  - address: 127.0.0.1:%d\n"
             "    tls: { certificate: %s, key: %s }\n"
             "upstream:\n"
             "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
             "  timeout: 5s\n" YAML_PASS_ROUTES,
             tls_port, crt, key);
    REQUIRE(harness_start_corral(&c, yaml, &up) == 0);
    REQUIRE(harness_wait_port(tls_port, 10000) == 0);

    /* h2 via ALPN */
    CU_ASSERT_EQUAL(https_get(&r, CURL_HTTP_VERSION_2TLS, tls_port, "/tls/h2", NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.http_version, 20);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"path\": \"/tls/h2\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"x-forwarded-proto\": \"https\""));
    resp_free(&r);

    /* HTTP/1.1 over TLS (ALPN http/1.1) */
    CU_ASSERT_EQUAL(https_get(&r, CURL_HTTP_VERSION_1_1, tls_port, "/tls/h1", NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.http_version, 11);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"path\": \"/tls/h1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"x-forwarded-proto\": \"https\""));
    resp_free(&r);

    /* the certificate served is the one configured: verification against it succeeds */
    CU_ASSERT_EQUAL(https_get(&r, CURL_HTTP_VERSION_2TLS, tls_port, "/tls/verified", crt), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.http_version, 20);
    resp_free(&r);

    /* a large body over h2 + TLS */
    CU_ASSERT_EQUAL(https_get(&r, CURL_HTTP_VERSION_2TLS, tls_port, "/tls/big?size=2000000", NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(is_filler(r.body, r.body_len, 2000000));
    resp_free(&r);

    /* the plain listener of the same process still speaks cleartext, with X-Forwarded-Proto: http */
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&c, "/tls/plain"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"x-forwarded-proto\": \"http\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/tls/h2"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/tls/h1"), 1);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

/* ---- 3. pass-through ---- */

static void test_pass_request_headers(void)
{
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char buf[512], host[64];
    char *log = NULL;
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    snprintf(host, sizeof(host), "127.0.0.1:%d", c.port);

    /* no forwarding headers from the client: corral adds its own */
    REQUIRE(get_ok(&c, CR_H1, "/hdr/plain"));
    log = upstream_log(&up, "/hdr/plain");
    REQUIRE(log != NULL);
    CU_ASSERT(log_header(log, "x-forwarded-for", buf, sizeof(buf)) != NULL && strcmp(buf, "127.0.0.1") == 0);
    CU_ASSERT(log_header(log, "x-forwarded-proto", buf, sizeof(buf)) != NULL && strcmp(buf, "http") == 0);
    CU_ASSERT(log_header(log, "via", buf, sizeof(buf)) != NULL && strstr(buf, "corral") != NULL);
    CU_ASSERT(log_header(log, "host", buf, sizeof(buf)) != NULL && strcmp(buf, host) == 0);
    free(log);
    log = NULL;

    /* forwarding headers from the client: X-Forwarded-For and Via are appended to, X-Forwarded-Proto is replaced;
     * hop-by-hop headers (always, or named by Connection) are dropped; end-to-end ones pass */
    {
        const char *hdrs[] = {"X-Forwarded-For: 10.1.2.3",
                              "X-Forwarded-Proto: https",
                              "Via: 1.0 edge",
                              "X-Keep: yes",
                              "Connection: keep-alive, X-Foo",
                              "X-Foo: 1",
                              "Keep-Alive: timeout=5",
                              "TE: trailers",
                              "Proxy-Connection: keep-alive",
                              NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/hdr/hop"), hdrs), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
        log = upstream_log(&up, "/hdr/hop");
        REQUIRE(log != NULL);
        CU_ASSERT(log_header(log, "x-forwarded-for", buf, sizeof(buf)) != NULL && strcmp(buf, "10.1.2.3, 127.0.0.1") == 0);
        CU_ASSERT(log_header(log, "x-forwarded-proto", buf, sizeof(buf)) != NULL && strcmp(buf, "http") == 0);
        CU_ASSERT(log_header(log, "via", buf, sizeof(buf)) != NULL && strncmp(buf, "1.0 edge, ", 10) == 0 &&
                  strstr(buf, "corral") != NULL);
        CU_ASSERT(log_header(log, "x-keep", buf, sizeof(buf)) != NULL && strcmp(buf, "yes") == 0);
        CU_ASSERT_PTR_NULL(log_header(log, "x-foo", buf, sizeof(buf)));
        CU_ASSERT_PTR_NULL(log_header(log, "keep-alive", buf, sizeof(buf)));
        CU_ASSERT_PTR_NULL(log_header(log, "te", buf, sizeof(buf)));
        CU_ASSERT_PTR_NULL(log_header(log, "proxy-connection", buf, sizeof(buf)));
        CU_ASSERT(log_header(log, "connection", buf, sizeof(buf)) == NULL || strcasestr(buf, "x-foo") == NULL);
        free(log);
        log = NULL;
    }

    /* the request target goes upstream as sent: percent-encoding and query untouched */
    {
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/hdr/raw%2Fpath/a%20b?q=1&r=%2F&q=0"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"target\": \"/hdr/raw%2Fpath/a%20b?q=1&r=%2F&q=0\""));
        resp_free(&r);
    }

    /* an HTTP/1.1 Upgrade request (not h2c): served as a plain request, Upgrade not forwarded */
    {
        const char *hdrs[] = {"Connection: Upgrade", "Upgrade: foo/1", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/hdr/upgrade"), hdrs), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
        log = upstream_log(&up, "/hdr/upgrade");
        REQUIRE(log != NULL);
        CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"target\": \"/hdr/upgrade\""));
        CU_ASSERT_PTR_NULL(log_header(log, "upgrade", buf, sizeof(buf)));
        CU_ASSERT(log_header(log, "connection", buf, sizeof(buf)) == NULL || strcasestr(buf, "upgrade") == NULL);
        free(log);
        log = NULL;
    }

    /* over h2c: TE and Connection-less forwarding still apply; Via says 2 */
    {
        const char *hdrs[] = {"TE: trailers", "X-Keep: h2", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&c, "/hdr/h2c"), hdrs), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.http_version, 20);
        resp_free(&r);
        log = upstream_log(&up, "/hdr/h2c");
        REQUIRE(log != NULL);
        CU_ASSERT(log_header(log, "x-keep", buf, sizeof(buf)) != NULL && strcmp(buf, "h2") == 0);
        CU_ASSERT_PTR_NULL(log_header(log, "te", buf, sizeof(buf)));
        CU_ASSERT(log_header(log, "x-forwarded-for", buf, sizeof(buf)) != NULL && strcmp(buf, "127.0.0.1") == 0);
        CU_ASSERT(log_header(log, "host", buf, sizeof(buf)) != NULL && strcmp(buf, host) == 0);
        free(log);
        log = NULL;
    }
out:
    free(log);
    resp_free(&r);
    stop_all(&c, &up, 1);
}

static void test_pass_response_hop_by_hop(void)
{
    static const char path[] = "/hop/resp?hdr=Keep-Alive:timeout%3D5&hdr=X-Hop:1&hdr=Connection:X-Hop&hdr=X-Other:2";
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char buf[256];
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);

    /* sanity: the upstream itself sends them */
    {
        char url[512];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", up.port, path);
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url, NULL), 0);
        CU_ASSERT_EQUAL(resp_header_count(&r, "X-Hop"), 1);
        CU_ASSERT_EQUAL(resp_header_count(&r, "Keep-Alive"), 1);
        resp_free(&r);
    }

    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, path), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(resp_header(&r, "X-Other", buf, sizeof(buf)) != NULL && strcmp(buf, "2") == 0);
    CU_ASSERT_EQUAL(resp_header_count(&r, "X-Hop"), 0);
    CU_ASSERT_EQUAL(resp_header_count(&r, "Keep-Alive"), 0);
    CU_ASSERT(resp_header(&r, "Connection", buf, sizeof(buf)) == NULL || strcasestr(buf, "x-hop") == NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"path\": \"/hop/resp\""));
    resp_free(&r);

    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&c, path), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.http_version, 20);
    CU_ASSERT(resp_header(&r, "X-Other", buf, sizeof(buf)) != NULL && strcmp(buf, "2") == 0);
    CU_ASSERT_EQUAL(resp_header_count(&r, "X-Hop"), 0);
    CU_ASSERT_EQUAL(resp_header_count(&r, "Keep-Alive"), 0);
    CU_ASSERT_EQUAL(resp_header_count(&r, "Connection"), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/hop/resp"), 3);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

/* A header field sent on several lines is one comma-separated list (RFC 9110 5.3): every line counts. */
static void test_pass_repeated_header_lines(void)
{
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char buf[512];
    char *log = NULL;
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);

    /* request: the X-Forwarded-For and Via chains keep every line; a second Connection line names hop-by-hop too */
    {
        const char *hdrs[] = {"X-Forwarded-For: 10.0.0.1", "X-Forwarded-For: 10.0.0.2", "Via: 1.0 a", "Via: 1.1 b",
                              "Connection: keep-alive", "Connection: X-Bar", "X-Bar: 1", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/hdr/lines"), hdrs), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
        log = upstream_log(&up, "/hdr/lines");
        REQUIRE(log != NULL);
        CU_ASSERT(log_header(log, "x-forwarded-for", buf, sizeof(buf)) != NULL &&
                  strcmp(buf, "10.0.0.1, 10.0.0.2, 127.0.0.1") == 0);
        if (log_header(log, "x-forwarded-for", buf, sizeof(buf)) != NULL && strcmp(buf, "10.0.0.1, 10.0.0.2, 127.0.0.1") != 0)
            fprintf(stderr, "\ntwo X-Forwarded-For lines: upstream got \"%s\"\n", buf);
        CU_ASSERT(log_header(log, "via", buf, sizeof(buf)) != NULL && strcmp(buf, "1.0 a, 1.1 b, 1.1 corral") == 0);
        if (log_header(log, "via", buf, sizeof(buf)) != NULL && strcmp(buf, "1.0 a, 1.1 b, 1.1 corral") != 0)
            fprintf(stderr, "\ntwo Via lines: upstream got \"%s\"\n", buf);
        CU_ASSERT_PTR_NULL(log_header(log, "x-bar", buf, sizeof(buf)));
        if (log_header(log, "x-bar", buf, sizeof(buf)) != NULL)
            fprintf(stderr, "\nX-Bar, named by a second Connection line, reached the upstream\n");
        free(log);
        log = NULL;
    }

    /* response: the upstream names its hop-by-hop header on a second Connection line: still not relayed */
    for (int p = 0; p < 2; p++) {
        static const char lines[] = "/hop/lines?hdr=Connection:keep-alive&hdr=Connection:X-Hop2&hdr=X-Hop2:1&hdr=X-Other:3";
        CU_ASSERT_EQUAL(http_get(&r, p == 0 ? CR_H1 : CR_H2C, url_of(&c, lines), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(resp_header(&r, "X-Other", buf, sizeof(buf)) != NULL && strcmp(buf, "3") == 0);
        CU_ASSERT_EQUAL(resp_header_count(&r, "X-Hop2"), 0);
        if (resp_header_count(&r, "X-Hop2") != 0)
            fprintf(stderr, "\nX-Hop2, named by the upstream's second Connection line, was relayed (proto %d)\n", p);
        resp_free(&r);
    }
out:
    free(log);
    resp_free(&r);
    stop_all(&c, &up, 1);
}

static void test_pass_statuses_and_head(void)
{
    static const struct {
        const char *path;
        long status;
    } cases[] = {{"/st/404?status=404", 404}, {"/st/500?status=500", 500}, {"/st/503?status=503", 503},
                 {"/st/302?status=302&location=/elsewhere", 302}, {"/st/204?status=204", 204}};
    static const cr_proto_t protos[] = {CR_H1, CR_H2C};
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char buf[256];
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    for (size_t p = 0; p < 2; p++) {
        /* the upstream's own statuses and bodies pass unchanged: an upstream 5xx is not corral's 502 */
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            CU_ASSERT_EQUAL(http_get(&r, protos[p], url_of(&c, cases[i].path), NULL), 0);
            CU_ASSERT_EQUAL(r.status, cases[i].status);
            if (cases[i].status == 204) {
                CU_ASSERT_EQUAL(r.body_len, 0);
            } else {
                CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"path\": \"/st/"));
                CU_ASSERT_PTR_NULL(strstr(r.body, "\"error\""));
            }
            if (cases[i].status == 302)
                CU_ASSERT(resp_header(&r, "Location", buf, sizeof(buf)) != NULL && strcmp(buf, "/elsewhere") == 0);
            resp_free(&r);
        }
        /* HEAD: the length of the GET, no body */
        CU_ASSERT_EQUAL(http_request(&r, protos[p], "HEAD", url_of(&c, "/st/head?size=777"), NULL, NULL, 0), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.body_len, 0);
        CU_ASSERT(resp_header(&r, "Content-Length", buf, sizeof(buf)) != NULL && strcmp(buf, "777") == 0);
        resp_free(&r);
        /* repeated response headers stay separate */
        CU_ASSERT_EQUAL(http_get(&r, protos[p], url_of(&c, "/st/cookies?hdr=Set-Cookie:a%3D1&hdr=Set-Cookie:b%3D2"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(resp_header_count(&r, "Set-Cookie"), 2);
        CU_ASSERT(resp_header(&r, "Set-Cookie", buf, sizeof(buf)) != NULL && strcmp(buf, "a=1, b=2") == 0);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/st/head"), 2);
    CU_ASSERT_EQUAL(upstream_count(&up, "/st/503"), 2);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

static void test_pass_request_bodies(void)
{
    static const struct {
        cr_proto_t proto;
        const char *method;
        const char *path;
        size_t len;
        int mode; /* 0: Content-Length, 1: chunked, 2: Expect: 100-continue */
    } cases[] = {
        {CR_H1, "POST", "/body/h1-0", 0, 0},           {CR_H1, "POST", "/body/h1-10", 10, 0},
        {CR_H1, "POST", "/body/h1-300000", 300000, 0}, {CR_H2C, "POST", "/body/h2c-10", 10, 0},
        {CR_H2C, "POST", "/body/h2c-300000", 300000, 0}, {CR_H1, "PUT", "/body/h1-chunked", 50000, 1},
        {CR_H1, "POST", "/body/h1-expect", 300000, 2},
    };
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char *body = malloc(300000);
    char want[128], buf[64];
    REQUIRE(body != NULL);
    for (size_t i = 0; i < 300000; i++)
        body[i] = (char)('a' + i % 26);
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *chunked[] = {"Transfer-Encoding: chunked", "Content-Type: application/octet-stream", NULL};
        const char *plain[] = {"Content-Type: application/octet-stream", NULL};
        const char *expect[] = {"Expect: 100-continue", "Content-Type: application/octet-stream", NULL};
        const char *const *hdrs = cases[i].mode == 1 ? chunked : cases[i].mode == 2 ? expect : plain;
        long n = -1;
        int rc = http_request(&r, cases[i].proto, cases[i].method, url_of(&c, cases[i].path), hdrs, body, cases[i].len);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(json_get_long(r.body, "body_len", &n), 0);
        CU_ASSERT_EQUAL(n, (long)cases[i].len);
        if (n != (long)cases[i].len)
            fprintf(stderr, "\n%s %s: upstream saw body_len %ld, sent %zu\n", cases[i].method, cases[i].path, n, cases[i].len);
        snprintf(want, sizeof(want), "\"method\": \"%s\"", cases[i].method);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, want));
        if (cases[i].mode == 2) {
            /* corral answered the expectation itself (curl would send the body anyway after 1 s) */
            CU_ASSERT_PTR_NOT_NULL(strstr(r.headers_raw, " 100 "));
            CU_ASSERT(r.total_ms < 900);
        }
        resp_free(&r);
        if (cases[i].mode == 1) {
            /* Transfer-Encoding is hop-by-hop: the upstream gets the body with a length of its own */
            char *log = upstream_log(&up, cases[i].path);
            CU_ASSERT_PTR_NOT_NULL(log);
            CU_ASSERT_PTR_NULL(log_header(log, "transfer-encoding", buf, sizeof(buf)));
            free(log);
        }
        if (cases[i].mode == 2) {
            /* the expectation was met hop by hop: the upstream is not asked again */
            char *log = upstream_log(&up, cases[i].path);
            CU_ASSERT_PTR_NOT_NULL(log);
            CU_ASSERT_PTR_NULL(log_header(log, "expect", buf, sizeof(buf)));
            free(log);
        }
        CU_ASSERT_EQUAL(upstream_count(&up, cases[i].path), 1);
    }
out:
    free(body);
    resp_free(&r);
    stop_all(&c, &up, 1);
}

static void test_pass_large_responses(void)
{
    static const struct {
        cr_proto_t proto;
        const char *path;
        size_t size;
    } cases[] = {
        {CR_H1, "/big/h1?size=5000000", 5000000},
        {CR_H2C, "/big/h2c?size=5000000", 5000000},
        {CR_H1, "/big/chunked-h1?chunked=1&size=300000", 300000},
        {CR_H2C, "/big/chunked-h2c?chunked=1&size=300000", 300000},
        {CR_H2C_UPGRADE, "/big/upgrade?size=1000000", 1000000},
    };
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char buf[64];
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        if (cases[i].proto == CR_H2C && strstr(cases[i].path, "chunked") != NULL) {
            /* no Content-Length over h2: curl_fetch's larger buffer avoids a libcurl 7.88.1 stall (see there) */
            int cc = curl_fetch(&r, url_of(&c, cases[i].path), CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, NULL, 10000L, 0);
            rc = cc == CURLE_OK ? 0 : -1;
            CU_ASSERT_EQUAL(r.http_version, 20);
        } else {
            rc = http_get(&r, cases[i].proto, url_of(&c, cases[i].path), NULL);
        }
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.body_len, cases[i].size);
        CU_ASSERT(is_filler(r.body, r.body_len, cases[i].size));
        if (rc != 0 || r.body_len != cases[i].size)
            fprintf(stderr, "\nGET %s (proto %d): rc %d, status %ld, %zu bytes of %zu after %.0f ms: %s\n", cases[i].path,
                    (int)cases[i].proto, rc, r.status, r.body_len, cases[i].size, r.total_ms, http_last_error());
        if (cases[i].proto == CR_H1 && strstr(cases[i].path, "chunked") == NULL)
            CU_ASSERT(resp_header(&r, "Content-Length", buf, sizeof(buf)) != NULL && strtoul(buf, NULL, 10) == cases[i].size);
        resp_free(&r);
    }
    /* several large responses at once on one h2c connection (Upgrade: see the top of the file) */
    {
        enum { N = 4 };
        cr_resp_t rs[N];
        int failed = http_parallel_get(rs, N, CR_H2C_UPGRADE, url_of(&c, "/big/parallel?size=2000000"), NULL, 1);
        CU_ASSERT_EQUAL(failed, 0);
        for (int i = 0; i < N; i++) {
            CU_ASSERT_EQUAL(rs[i].status, 200);
            CU_ASSERT(is_filler(rs[i].body, rs[i].body_len, 2000000));
            resp_free(&rs[i]);
        }
        CU_ASSERT_EQUAL(upstream_count(&up, "/big/parallel"), N);
    }
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

/* ---- 4. upstream errors ---- */

static void test_upstream_down(void)
{
    cr_proc_t fake = {0}, c = {0}, late = {0};
    cr_resp_t r = {0};
    char dir[256];
    failures_at_start = CU_get_number_of_failures();
    fake.port = harness_free_port();
    REQUIRE(fake.port > 0);
    REQUIRE(harness_start_corral(&c, yaml_pass, &fake) == 0);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/down/h1"), NULL), 0);
        ASSERT_JSON_ERROR(&r, 502);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&c, "/down/h2c"), NULL), 0);
    ASSERT_JSON_ERROR(&r, 502);
    resp_free(&r);
    /* a POST too */
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "POST", url_of(&c, "/down/post"), NULL, "x=1", 3), 0);
    ASSERT_JSON_ERROR(&r, 502);
    resp_free(&r);
    CU_ASSERT_EQUAL(kill(c.pid, 0), 0);

    /* an upstream appears on that port: the next request goes through */
    dir_of(c.conf_path, dir, sizeof(dir));
    start_upstream_at(&late, fake.port, dir);
    REQUIRE(late.pid > 0);
    CU_ASSERT(get_ok(&c, CR_H1, "/down/after"));
    CU_ASSERT(get_ok(&c, CR_H2C, "/down/after"));
    CU_ASSERT_EQUAL(upstream_count(&late, "/down/after"), 2);
    CU_ASSERT_EQUAL(upstream_count(&late, "/down/h1"), 0);
out:
    resp_free(&r);
    stop_all(&c, &late, 1);
}

static void test_upstream_restart(void)
{
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char dir[256];
    long n = -1;
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    /* leave idle keep-alive connections in corral's pools (both threads, most likely) */
    for (int i = 0; i < 6; i++)
        CU_ASSERT(get_ok(&c, i % 2 ? CR_H2C : CR_H1, "/restart/before"));
    /* the upstream restarts on the same port: every pooled connection is now dead */
    int port = up.port;
    CU_ASSERT_EQUAL(harness_stop(&up), 0);
    dir_of(c.conf_path, dir, sizeof(dir));
    start_upstream_at(&up, port, dir);
    REQUIRE(up.pid > 0);
    for (int i = 0; i < 6; i++)
        CU_ASSERT(get_ok(&c, i % 2 ? CR_H2C : CR_H1, "/restart/after"));
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "POST", url_of(&c, "/restart/post"), NULL, "0123456789", 10), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(json_get_long(r.body, "body_len", &n) == 0 && n == 10);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/restart/after"), 6);
    CU_ASSERT_EQUAL(upstream_count(&up, "/restart/post"), 1);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

static void test_upstream_timeout(void)
{
    static const char yaml[] = "threads: 2\n" YAML_LISTEN "upstream:\n"
                               "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                               "  timeout: 500ms\n" YAML_PASS_ROUTES;
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    REQUIRE(start_both(&up, &c, yaml) == 0);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/slow/h1?delay=2000"), NULL), 0);
    ASSERT_JSON_ERROR(&r, 504);
    CU_ASSERT(r.total_ms >= 450 && r.total_ms < 1800);
    fprintf(stderr, "[504 after %.0f ms] ", r.total_ms);
    resp_free(&r);
    CU_ASSERT(get_ok(&c, CR_H1, "/slow/after-h1"));

    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&c, "/slow/h2c?delay=2000"), NULL), 0);
    ASSERT_JSON_ERROR(&r, 504);
    CU_ASSERT(r.total_ms >= 450 && r.total_ms < 1800);
    resp_free(&r);
    CU_ASSERT(get_ok(&c, CR_H2C, "/slow/after-h2c"));

    /* the head comes in time but the body stalls past the timeout: never a complete success */
    for (int p = 0; p < 2; p++) {
        int rc = http_get(&r, p == 0 ? CR_H1 : CR_H2C, url_of(&c, "/slow/body?body_delay=2000&size=100"), NULL);
        int complete_success = rc == 0 && r.status == 200;
        CU_ASSERT_FALSE(complete_success);
        if (complete_success)
            fprintf(stderr, "\nstalled body, proto %d: a complete 200 with %zu bytes\n", p, r.body_len);
        CU_ASSERT(r.total_ms < 1800);
        resp_free(&r);
        CU_ASSERT(get_ok(&c, p == 0 ? CR_H1 : CR_H2C, "/slow/after-body"));
    }

    /* a response under the timeout is fine */
    CU_ASSERT(get_ok(&c, CR_H1, "/slow/ok?delay=200"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/slow/h1"), 1);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

static void test_upstream_fail_modes(void)
{
    static const char *const modes[] = {"garbage", "reset"};
    static const cr_proto_t protos[] = {CR_H1, CR_H2C};
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char path[128];
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        for (size_t p = 0; p < 2; p++) {
            /* warm the pool first, so the failure also happens on a reused keep-alive connection */
            snprintf(path, sizeof(path), "/fail/warm-%s-%zu", modes[m], p);
            CU_ASSERT(get_ok(&c, protos[p], path));
            snprintf(path, sizeof(path), "/fail/%s-%zu?fail=%s", modes[m], p, modes[m]);
            CU_ASSERT_EQUAL(http_get(&r, protos[p], url_of(&c, path), NULL), 0);
            ASSERT_JSON_ERROR(&r, 502);
            if (r.status != 502)
                fprintf(stderr, "\nfail=%s proto %d: status %ld %s\n", modes[m], (int)protos[p], r.status, http_last_error());
            resp_free(&r);
            snprintf(path, sizeof(path), "/fail/after-%s-%zu", modes[m], p);
            CU_ASSERT(get_ok(&c, protos[p], path));
        }
    }
    /* truncated body: the head was relayed already, so the client must see the failure in the transfer */
    for (size_t p = 0; p < 2; p++) {
        snprintf(path, sizeof(path), "/fail/truncate-%zu?fail=truncate&size=20000", p);
        int rc = http_get(&r, protos[p], url_of(&c, path), NULL);
        int complete_success = rc == 0 && r.status == 200;
        CU_ASSERT_FALSE(complete_success);
        if (complete_success)
            fprintf(stderr, "\nfail=truncate proto %d: a complete 200 with %zu bytes\n", (int)protos[p], r.body_len);
        CU_ASSERT(r.body_len <= 20000);
        resp_free(&r);
        snprintf(path, sizeof(path), "/fail/after-truncate-%zu", p);
        CU_ASSERT(get_ok(&c, protos[p], path));
    }
    CU_ASSERT_EQUAL(kill(c.pid, 0), 0);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

/* ---- 5. the upstream connection cap ---- */

static void test_connection_cap(void)
{
    static const char yaml[] = "threads: 1\n" YAML_LISTEN "upstream:\n"
                               "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                               "  max_connections: 2\n"
                               "  queue_timeout: 2s\n"
                               "  timeout: 5s\n" YAML_PASS_ROUTES;
    enum { N = 8 };
    /* h1: 8 client connections; h2c: 8 streams on one connection (Upgrade: see the top of the file) */
    static const cr_proto_t protos[] = {CR_H1, CR_H2C_UPGRADE};
    cr_proc_t up = {0}, c = {0};
    cr_resp_t rs[N];
    memset(rs, 0, sizeof(rs));
    REQUIRE(start_both(&up, &c, yaml) == 0);
    for (size_t p = 0; p < 2; p++) {
        long cur = -1, max = -1;
        REQUIRE(upstream_reset(&up) == 0);
        double t0 = wall_ms();
        int failed = http_parallel_get(rs, N, protos[p], url_of(&c, "/cap?delay=300"), NULL, protos[p] == CR_H1 ? N : 1);
        double elapsed = wall_ms() - t0;
        CU_ASSERT_EQUAL(failed, 0);
        int ok = 0;
        for (int i = 0; i < N; i++) {
            ok += rs[i].status == 200;
            if (rs[i].status != 200)
                fprintf(stderr, "\ncap proto %d #%d: status %ld body %.200s\n", (int)protos[p], i, rs[i].status, rs[i].body);
            resp_free(&rs[i]);
        }
        CU_ASSERT_EQUAL(ok, N);
        CU_ASSERT_EQUAL(upstream_count(&up, "/cap"), N);
        CU_ASSERT_EQUAL(upstream_concurrency(&up, &cur, &max), 0);
        fprintf(stderr, "[proto %d: upstream max concurrency %ld, %.0f ms] ", (int)protos[p], max, elapsed);
        CU_ASSERT(max >= 1 && max <= 2);
        CU_ASSERT_EQUAL(cur, 0);
        /* 8 requests of 300 ms over at most 2 connections take at least 4 rounds */
        CU_ASSERT(elapsed >= 4 * 300 - 50);
    }
out:
    for (int i = 0; i < N; i++)
        resp_free(&rs[i]);
    stop_all(&c, &up, 1);
}

static void test_queue_timeout(void)
{
    static const char yaml[] = "threads: 1\n" YAML_LISTEN "upstream:\n"
                               "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                               "  max_connections: 1\n"
                               "  queue_timeout: 200ms\n"
                               "  timeout: 5s\n" YAML_PASS_ROUTES;
    enum { N = 3 };
    cr_proc_t up = {0}, c = {0};
    cr_resp_t rs[N];
    long cur = -1, max = -1;
    memset(rs, 0, sizeof(rs));
    REQUIRE(start_both(&up, &c, yaml) == 0);
    http_parallel_get(rs, N, CR_H1, url_of(&c, "/queue?delay=1000"), NULL, N);
    int n200 = 0, n504 = 0;
    for (int i = 0; i < N; i++) {
        if (rs[i].status == 200) {
            n200++;
        } else if (rs[i].status == 504) {
            n504++;
            ASSERT_JSON_ERROR(&rs[i], 504);
            /* answered when the queue wait ran out, not when the slow request finished */
            CU_ASSERT(rs[i].total_ms < 900);
        } else {
            fprintf(stderr, "\nqueue #%d: status %ld body %.200s\n", i, rs[i].status, rs[i].body);
        }
    }
    fprintf(stderr, "[%d x 200, %d x 504] ", n200, n504);
    CU_ASSERT(n504 >= 1);
    CU_ASSERT(n200 >= 1);
    CU_ASSERT_EQUAL(n200 + n504, N);
    CU_ASSERT_EQUAL(upstream_concurrency(&up, &cur, &max), 0);
    CU_ASSERT(max == 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/queue"), n200);
    /* the slot is free again afterwards */
    CU_ASSERT(get_ok(&c, CR_H1, "/queue/after"));
out:
    for (int i = 0; i < N; i++)
        resp_free(&rs[i]);
    stop_all(&c, &up, 1);
}

/* max_connections is for the whole process, whatever the number of threads. A configuration that cannot honour it
 * (fewer connections than threads) may be rejected up front instead. */
static void test_connection_cap_two_threads(void)
{
    enum { N = 8 };
    static const int caps[] = {2, 1};
    cr_proc_t up = {0}, c = {0};
    cr_resp_t rs[N];
    char yaml[1024];
    memset(rs, 0, sizeof(rs));
    for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
        long cur = -1, max = -1;
        char err[2048];
        snprintf(yaml, sizeof(yaml),
                 "threads: 2\n" YAML_LISTEN "upstream:\n"
                 "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                 "  max_connections: %d\n"
                 "  queue_timeout: 5s\n"
                 "  timeout: 5s\n" YAML_PASS_ROUTES,
                 caps[k]);
        if (harness_run_corral_check(yaml, err, sizeof(err)) == 1 && strstr(err, "max_connections") != NULL) {
            fprintf(stderr, "[max_connections %d with 2 threads rejected: ok] ", caps[k]);
            continue;
        }
        REQUIRE(start_both(&up, &c, yaml) == 0);
        /* both threads listen (the harness only waits for the first), so SO_REUSEPORT spreads the 8 client
         * connections over both */
        REQUIRE(wait_listeners(c.port, 2, 5000) == 0);
        int failed = http_parallel_get(rs, N, CR_H1, url_of(&c, "/cap2?delay=300"), NULL, N);
        CU_ASSERT_EQUAL(failed, 0);
        int ok = 0;
        for (int i = 0; i < N; i++) {
            ok += rs[i].status == 200;
            resp_free(&rs[i]);
        }
        CU_ASSERT_EQUAL(ok, N);
        CU_ASSERT_EQUAL(upstream_concurrency(&up, &cur, &max), 0);
        fprintf(stderr, "[max_connections %d, 2 threads: upstream max concurrency %ld] ", caps[k], max);
        CU_ASSERT(max >= 1 && max <= caps[k]);
        stop_all(&c, &up, 1);
    }
out:
    for (int i = 0; i < N; i++)
        resp_free(&rs[i]);
    stop_all(&c, &up, 1);
}

/* An h2 client that goes away while its request waits for the upstream gives the upstream connection back at once. */
static void test_client_abort_frees_slot(void)
{
    static const char yaml[] = "threads: 1\n" YAML_LISTEN "upstream:\n"
                               "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                               "  max_connections: 1\n"
                               "  queue_timeout: 500ms\n"
                               "  timeout: 10s\n" YAML_PASS_ROUTES;
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    REQUIRE(start_both(&up, &c, yaml) == 0);
    /* the client gives up after 300 ms on a request the upstream holds for 5 s */
    int rc = curl_fetch(&r, url_of(&c, "/abort?delay=5000"), CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, NULL, 300, 1);
    CU_ASSERT_EQUAL(rc, CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/abort"), 1);
    /* with the only slot still taken, this would wait 500 ms in the queue and get a 504 */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/abort/after"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(r.total_ms < 400);
    resp_free(&r);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

/* ---- 6. command line ---- */

/* Runs corral with args (NULL-terminated, after argv[0]). */
static int run_corral(const char *const *args, char *out, size_t outsize, char *err, size_t errsize)
{
    char *argv[16];
    size_t n = 0;
    argv[n++] = (char *)corral_bin();
    for (; args && *args && n < 15; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    return run_cmd(argv, out, outsize, err, errsize, 10000);
}

static void test_cli_version_help_options(void)
{
    char out[4096], err[4096];
    const char *version[] = {"--version", NULL};
    CU_ASSERT_EQUAL(run_corral(version, out, sizeof(out), err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "corral"));
    const char *vshort[] = {"-v", NULL};
    CU_ASSERT_EQUAL(run_corral(vshort, out, sizeof(out), err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "corral"));

    const char *help[] = {"--help", NULL};
    CU_ASSERT_EQUAL(run_corral(help, out, sizeof(out), err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strcasestr(out, "usage"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "-c"));

    const char *bogus[] = {"--bogus", NULL};
    CU_ASSERT_EQUAL(run_corral(bogus, out, sizeof(out), err, sizeof(err)), 2);
    CU_ASSERT_PTR_NOT_NULL(strcasestr(err, "usage"));
    const char *x[] = {"-x", NULL};
    CU_ASSERT_EQUAL(run_corral(x, out, sizeof(out), err, sizeof(err)), 2);
    const char *noarg[] = {"-c", NULL};
    CU_ASSERT_EQUAL(run_corral(noarg, out, sizeof(out), err, sizeof(err)), 2);
    const char *stray[] = {"-t", "-c", "/dev/null", "extra", NULL};
    CU_ASSERT_EQUAL(run_corral(stray, out, sizeof(out), err, sizeof(err)), 2);
}

static void test_cli_config_check(void)
{
    static const char valid[] = "threads: 2\n" YAML_LISTEN "upstream:\n"
                                "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                "  max_connections: 4\n"
                                "  timeout: 5s\n"
                                "admin:\n"
                                "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                "  token_env: CORRAL_TEST_TOKEN\n" YAML_PASS_ROUTES;
    static const struct {
        const char *what;
        const char *yaml;
        unsigned line;
        const char *message;
    } bad[] = {
        {"unknown key",
         "threads: 2\n"                                  /* 1 */
         "listen:\n"                                     /* 2 */
         "  - address: 127.0.0.1:${PORT}\n"              /* 3 */
         "upstream:\n"                                   /* 4 */
         "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"    /* 5 */
         "  bogus_key: 1\n",                             /* 6 */
         6, "unknown key"},
        {"bad duration",
         "threads: 2\n"                                  /* 1 */
         "listen:\n"                                     /* 2 */
         "  - address: 127.0.0.1:${PORT}\n"              /* 3 */
         "upstream:\n"                                   /* 4 */
         "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"    /* 5 */
         "  connect_timeout: 1s\n"                       /* 6 */
         "  timeout: 5 parsecs\n",                       /* 7 */
         7, "duration"},
        {"duplicate listener",
         "threads: 2\n"                                  /* 1 */
         "listen:\n"                                     /* 2 */
         "  - address: 127.0.0.1:${PORT}\n"              /* 3 */
         "  - address: 127.0.0.1:${ADMIN_PORT}\n"        /* 4 */
         "  - address: 127.0.0.1:${PORT}\n"              /* 5 */
         "upstream:\n"                                   /* 6 */
         "  url: http://127.0.0.1:${UPSTREAM_PORT}\n",   /* 7 */
         5, "duplicate"},
        {"wrong type",
         "threads: 2\n"                                  /* 1 */
         "listen:\n"                                     /* 2 */
         "  - address: 127.0.0.1:${PORT}\n"              /* 3 */
         "upstream:\n"                                   /* 4 */
         "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"    /* 5 */
         "routes:\n"                                     /* 6 */
         "  - match: { prefix: / }\n"                    /* 7 */
         "    cache: false\n"                            /* 8 */
         "  - match: { prefix: /x }\n"                   /* 9 */
         "    ttl: [1, 2]\n",                            /* 10 */
         10, "expected"},
        {"wrong type (mapping for a list)",
         "threads: 2\n"                                  /* 1 */
         "listen:\n"                                     /* 2 */
         "  address: 127.0.0.1:${PORT}\n"                /* 3 */
         "upstream:\n"                                   /* 4 */
         "  url: http://127.0.0.1:${UPSTREAM_PORT}\n",   /* 5 */
         3, "expected"},
    };
    char err[4096];

    setenv("CORRAL_TEST_TOKEN", "s3cret-e2e-token", 1); /* -t checks that token_env is set, as start-up does */
    CU_ASSERT_EQUAL(harness_run_corral_check(valid, err, sizeof(err)), 0);
    unsetenv("CORRAL_TEST_TOKEN");
    if (err[0])
        CU_ASSERT_PTR_NULL(strstr(err, "error"));

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = harness_run_corral_check(bad[i].yaml, err, sizeof(err));
        unsigned line = 0, col = 0;
        const char *loc = strstr(err, ".yaml:");
        int parsed = loc != NULL && sscanf(loc + 6, "%u:%u: ", &line, &col) == 2;
        CU_ASSERT_EQUAL(st, 1);
        CU_ASSERT(parsed);
        CU_ASSERT_EQUAL(line, bad[i].line);
        CU_ASSERT(col >= 1);
        CU_ASSERT(err[0] == '/'); /* starts with the file name */
        CU_ASSERT_PTR_NOT_NULL(strcasestr(err, bad[i].message));
        if (st != 1 || !parsed || line != bad[i].line || strcasestr(err, bad[i].message) == NULL)
            fprintf(stderr, "\n%s: exit %d, stderr: %s\n", bad[i].what, st, err);
    }

    /* a file that is not YAML at all */
    {
        int st = harness_run_corral_check("listen: [\n  - address: 127.0.0.1:${PORT}\nupstream: {\n", err, sizeof(err));
        unsigned line = 0, col = 0;
        const char *loc = strstr(err, ".yaml:");
        CU_ASSERT_EQUAL(st, 1);
        CU_ASSERT(loc != NULL && sscanf(loc + 6, "%u:%u: ", &line, &col) == 2 && line >= 1 && col >= 1);
    }

    /* the shipped demo configuration is valid */
    {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/conf/corral.yaml", harness_repo_root());
        const char *args[] = {"-t", "-c", path, NULL};
        setenv("CORRAL_ADMIN_TOKEN", "demo-token", 1); /* as tools/run-demo.sh sets it */
        CU_ASSERT_EQUAL(run_corral(args, NULL, 0, err, sizeof(err)), 0);
        unsetenv("CORRAL_ADMIN_TOKEN");
    }
}

static void test_cli_bad_file_without_t(void)
{
    char err[4096];
    /* missing file, with and without -t */
    const char *missing = "/nonexistent-corral-dir/corral.yaml";
    const char *args1[] = {"-c", missing, NULL};
    CU_ASSERT_EQUAL(run_corral(args1, NULL, 0, err, sizeof(err)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, missing));
    CU_ASSERT_PTR_NOT_NULL(strcasestr(err, "cannot open"));
    CU_ASSERT_PTR_NOT_NULL(strcasestr(err, "no such file"));
    const char *args2[] = {"-t", "-c", missing, NULL};
    CU_ASSERT_EQUAL(run_corral(args2, NULL, 0, err, sizeof(err)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, missing));

    /* an invalid file given to the server itself: exits 1 with the location, does not start */
    char path[] = "/tmp/corral-e2e-bad-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    CU_ASSERT_FATAL(fd >= 0);
    static const char text[] = "threads: 2\nlisten:\n  - address: 127.0.0.1:1\nupstream:\n  url: http://127.0.0.1:2\nnope: 1\n";
    CU_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    const char *args3[] = {"-c", path, NULL};
    CU_ASSERT_EQUAL(run_corral(args3, NULL, 0, err, sizeof(err)), 1);
    char want[128];
    snprintf(want, sizeof(want), "%s:6:1:", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    unlink(path);
}

/* ---- 7. drain on SIGTERM ---- */

typedef struct {
    cr_proto_t proto;
    char *url;
    cr_resp_t r;
    int rc;
    char err[256];
} bg_get_t;

static void *bg_get(void *arg)
{
    bg_get_t *b = arg;
    b->rc = http_get(&b->r, b->proto, b->url, NULL);
    snprintf(b->err, sizeof(b->err), "%s", http_last_error());
    return NULL;
}

static void test_drain_on_sigterm(void)
{
    cr_proc_t up = {0}, c = {0};
    bg_get_t bg[2] = {{.proto = CR_H1}, {.proto = CR_H2C}};
    pthread_t th[2];
    int started[2] = {0, 0};
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    bg[0].url = strdup(url_of(&c, "/drain/h1?delay=800"));
    bg[1].url = strdup(url_of(&c, "/drain/h2c?delay=800"));
    REQUIRE(bg[0].url != NULL && bg[1].url != NULL);
    for (int i = 0; i < 2; i++) {
        REQUIRE(pthread_create(&th[i], NULL, bg_get, &bg[i]) == 0);
        started[i] = 1;
    }
    /* both requests are at the upstream (in flight) before the signal */
    REQUIRE(wait_upstream_count(&up, "/drain/h1", 1, 5000) == 0);
    REQUIRE(wait_upstream_count(&up, "/drain/h2c", 1, 5000) == 0);
    double t0 = wall_ms();
    REQUIRE(harness_kill(&c, SIGTERM) == 0);
    int st = harness_wait_exit(&c, 5000);
    double took = wall_ms() - t0;
    fprintf(stderr, "[exit %d after %.0f ms] ", st, took);
    CU_ASSERT_EQUAL(st, 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        started[i] = 0;
        CU_ASSERT_EQUAL(bg[i].rc, 0);
        CU_ASSERT_EQUAL(bg[i].r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(bg[i].r.body, "\"path\": \"/drain/"));
        if (bg[i].rc != 0 || bg[i].r.status != 200)
            fprintf(stderr, "\ndrain proto %d: rc %d status %ld: %s\n", (int)bg[i].proto, bg[i].rc, bg[i].r.status, bg[i].err);
    }
    /* it waited for them: the upstream held each request for 800 ms */
    CU_ASSERT(took >= 300);
    /* and it is gone: the port no longer accepts */
    CU_ASSERT(harness_connect(c.port) < 0);
out:
    stop_all(&c, &up, 0);
    for (int i = 0; i < 2; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        resp_free(&bg[i].r);
        free(bg[i].url);
    }
}

static void test_sigterm_idle_exits_zero(void)
{
    cr_proc_t up = {0}, c = {0};
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    CU_ASSERT(get_ok(&c, CR_H1, "/idle"));
    /* SIGHUP (reload) never stops the server */
    REQUIRE(harness_kill(&c, SIGHUP) == 0);
    CU_ASSERT(get_ok(&c, CR_H1, "/idle/after-hup"));
    CU_ASSERT(get_ok(&c, CR_H2C, "/idle/after-hup"));
    CU_ASSERT_EQUAL(harness_wait_exit(&c, 0), -2);
    REQUIRE(harness_kill(&c, SIGTERM) == 0);
    CU_ASSERT_EQUAL(harness_wait_exit(&c, 5000), 0);
    /* SIGINT drains the same way */
    REQUIRE(harness_start_corral(&c, yaml_pass, &up) == 0);
    CU_ASSERT(get_ok(&c, CR_H2C, "/idle"));
    REQUIRE(harness_kill(&c, SIGINT) == 0);
    CU_ASSERT_EQUAL(harness_wait_exit(&c, 5000), 0);
out:
    stop_all(&c, &up, 0);
}

/* Reads /proc/<pid>/environ and says whether it holds `needle` as one whole variable. */
static int environ_has(pid_t pid, const char *needle)
{
    char path[64], buf[65536];
    size_t n, off;
    FILE *fp;
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    for (off = 0; off < n; off += strlen(buf + off) + 1)
        if (strcmp(buf + off, needle) == 0)
            return 1;
    return 0;
}

/* 1 when the kernel offers transparent huge pages to madvise'd memory (what corral checks before re-executing). */
static int thp_available(void)
{
    char buf[128] = "";
    FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (fp == NULL)
        return 0;
    buf[fread(buf, 1, sizeof(buf) - 1, fp)] = '\0';
    fclose(fp);
    return strstr(buf, "[always]") != NULL || strstr(buf, "[madvise]") != NULL;
}

/* corral re-executes itself once with glibc's malloc on transparent huge pages: same PID, still serving; and not when
 * CORRAL_HUGEPAGES=0 says no. */
static void test_hugepages_reexec(void)
{
    cr_proc_t up = {0}, c = {0};
    REQUIRE(start_both(&up, &c, yaml_pass) == 0);
    CU_ASSERT(get_ok(&c, CR_H1, "/thp"));
    CU_ASSERT_EQUAL(environ_has(c.pid, "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"), thp_available());
    harness_stop(&c);
    REQUIRE(setenv("CORRAL_HUGEPAGES", "0", 1) == 0);
    REQUIRE(harness_start_corral(&c, yaml_pass, &up) == 0);
    unsetenv("CORRAL_HUGEPAGES");
    CU_ASSERT(get_ok(&c, CR_H2C, "/thp"));
    CU_ASSERT_EQUAL(environ_has(c.pid, "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"), 0);
out:
    unsetenv("CORRAL_HUGEPAGES");
    stop_all(&c, &up, 0);
}

/* ---- 8. admin ---- */

static void test_admin_open(void)
{
    static const char yaml[] = "threads: 2\n" YAML_LISTEN "upstream:\n"
                               "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                               "  timeout: 5s\n"
                               "admin:\n"
                               "  address: 127.0.0.1:${ADMIN_PORT}\n" YAML_PASS_ROUTES;
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    REQUIRE(start_both(&up, &c, yaml) == 0);
    REQUIRE(harness_wait_port(c.admin_port, 5000) == 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT(get_ok(&c, i == 1 ? CR_H2C : CR_H1, "/admin/traffic"));
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/healthz"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    /* no token configured: loopback clients may read metrics */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/metrics"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "corral_requests_total"));
    CU_ASSERT(metric_value(r.body, "corral_requests_total") >= 3);
    resp_free(&r);
    /* the admin port does not proxy */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/admin/traffic"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/admin/traffic"), 3);
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

static void test_admin_token(void)
{
    static const char yaml[] = "threads: 2\n" YAML_LISTEN "upstream:\n"
                               "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                               "  timeout: 5s\n"
                               "admin:\n"
                               "  address: 127.0.0.1:${ADMIN_PORT}\n"
                               "  token_env: CORRAL_TEST_TOKEN\n" YAML_PASS_ROUTES;
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char buf[256];
    setenv("CORRAL_TEST_TOKEN", "s3cret-e2e-token", 1);
    int started = start_both(&up, &c, yaml) == 0;
    unsetenv("CORRAL_TEST_TOKEN");
    REQUIRE(started);
    REQUIRE(harness_wait_port(c.admin_port, 5000) == 0);

    CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/healthz"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);

    CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/metrics"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 401);
    CU_ASSERT(resp_header(&r, "WWW-Authenticate", buf, sizeof(buf)) != NULL && strncasecmp(buf, "Bearer", 6) == 0);
    CU_ASSERT_PTR_NULL(strstr(r.body, "corral_requests_total"));
    resp_free(&r);

    {
        const char *wrong[] = {"Authorization: Bearer s3cret-e2e-tokeX", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/metrics"), wrong), 0);
        CU_ASSERT_EQUAL(r.status, 401);
        CU_ASSERT_PTR_NULL(strstr(r.body, "corral_requests_total"));
        resp_free(&r);
        const char *prefix[] = {"Authorization: Bearer s3cret", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/metrics"), prefix), 0);
        CU_ASSERT_EQUAL(r.status, 401);
        resp_free(&r);
        const char *basic[] = {"Authorization: Basic czNjcmV0LWUyZS10b2tlbg==", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/metrics"), basic), 0);
        CU_ASSERT_EQUAL(r.status, 401);
        resp_free(&r);
    }
    {
        const char *right[] = {"Authorization: Bearer s3cret-e2e-token", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/metrics"), right), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "corral_requests_total"));
        CU_ASSERT(metric_value(r.body, "corral_requests_total") >= 0);
        resp_free(&r);
        CU_ASSERT_EQUAL(http_get(&r, CR_H2C, admin_url_of(&c, "/metrics"), right), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "corral_requests_total"));
        resp_free(&r);
    }

    /* the traffic port is not the admin API: /metrics goes to the upstream like any other path */
    {
        const char *right[] = {"Authorization: Bearer s3cret-e2e-token", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/metrics"), right), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"path\": \"/metrics\""));
        CU_ASSERT_PTR_NULL(strstr(r.body, "corral_requests_total"));
        resp_free(&r);
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/healthz"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"path\": \"/healthz\""));
        resp_free(&r);
        CU_ASSERT_EQUAL(upstream_count(&up, "/metrics"), 1);
        CU_ASSERT_EQUAL(upstream_count(&up, "/healthz"), 1);
    }
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

static void test_admin_token_file(void)
{
    cr_proc_t up = {0}, c = {0};
    cr_resp_t r = {0};
    char dir[256], path[320], yaml[1024];
    failures_at_start = CU_get_number_of_failures();
    REQUIRE(harness_start_upstream(&up) == 0);
    dir_of(up.log_path, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/admin-token", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("file-token-42\n", f); /* the trailing newline is not part of the token */
    fclose(f);
    snprintf(yaml, sizeof(yaml),
             "threads: 2\n" YAML_LISTEN "upstream:\n"
             "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
             "admin:\n"
             "  address: 127.0.0.1:${ADMIN_PORT}\n"
             "  token_file: %s\n" YAML_PASS_ROUTES,
             path);
    REQUIRE(harness_start_corral(&c, yaml, &up) == 0);
    REQUIRE(harness_wait_port(c.admin_port, 5000) == 0);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/metrics"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 401);
    resp_free(&r);
    {
        const char *right[] = {"Authorization: Bearer file-token-42", NULL};
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&c, "/metrics"), right), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "corral_requests_total"));
        resp_free(&r);
    }
out:
    resp_free(&r);
    stop_all(&c, &up, 1);
}

void cr_e2e_register_server(void)
{
    CU_pSuite s = CU_add_suite("server", NULL, NULL);
    if (s == NULL)
        return;
    CU_add_test(s, "h1, h2c and h2c Upgrade on a pass route", test_protocols);
    CU_add_test(s, "TLS listener: h2 via ALPN and HTTP/1.1", test_tls_listener);
    CU_add_test(s, "pass: forwarding and hop-by-hop request headers", test_pass_request_headers);
    CU_add_test(s, "pass: hop-by-hop response headers are not relayed", test_pass_response_hop_by_hop);
    CU_add_test(s, "pass: header fields repeated on several lines", test_pass_repeated_header_lines);
    CU_add_test(s, "pass: upstream statuses, HEAD, several Set-Cookie", test_pass_statuses_and_head);
    CU_add_test(s, "pass: request bodies 0, 10, 300000 bytes and chunked", test_pass_request_bodies);
    CU_add_test(s, "pass: 5 MB and chunked responses over h1 and h2c", test_pass_large_responses);
    CU_add_test(s, "upstream down: 502, then recovery", test_upstream_down);
    CU_add_test(s, "upstream restart: stale pooled connections", test_upstream_restart);
    CU_add_test(s, "upstream timeout: 504", test_upstream_timeout);
    CU_add_test(s, "upstream garbage, reset, truncate", test_upstream_fail_modes);
    CU_add_test(s, "max_connections caps upstream concurrency", test_connection_cap);
    CU_add_test(s, "queue_timeout answers 504", test_queue_timeout);
    CU_add_test(s, "max_connections holds across two threads", test_connection_cap_two_threads);
    CU_add_test(s, "an h2 client going away frees its upstream slot", test_client_abort_frees_slot);
    CU_add_test(s, "cli: --version, --help, unknown options", test_cli_version_help_options);
    CU_add_test(s, "cli: -t -c on valid and invalid files", test_cli_config_check);
    CU_add_test(s, "cli: missing or invalid file without -t", test_cli_bad_file_without_t);
    CU_add_test(s, "drain: SIGTERM with requests in flight", test_drain_on_sigterm);
    CU_add_test(s, "SIGHUP keeps serving; SIGTERM and SIGINT when idle exit 0", test_sigterm_idle_exits_zero);
    CU_add_test(s, "re-executes once with malloc on huge pages, same PID", test_hugepages_reexec);
    CU_add_test(s, "admin: healthz and metrics without a token", test_admin_open);
    CU_add_test(s, "admin: bearer token from token_env", test_admin_token);
    CU_add_test(s, "admin: bearer token from token_file", test_admin_token_file);
}
