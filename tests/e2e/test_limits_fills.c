/*
 * test_limits_fills.c: end-to-end tests of the bounds on cache fills under abuse (issue 11, "rapid reset over many
 * connections"): a fill whose waiters all went away before it had an upstream connection is dropped, the requests
 * waiting for an upstream connection are bounded (limits.queued_fills, 503 upstream_busy past it, for every waiter
 * of the refused fill), a fill already sent goes on and is stored, and the rapid-reset guard counts cancels per
 * client address as well as per connection.
 *
 * The flood comes from tools/h2-attack.py --flood bound to 127.0.0.2, so that corral sees the attacker and the normal
 * client (libcurl, 127.0.0.1) as two addresses. Exact cases use raw HTTP/2 frames written here (HEADERS, RST_STREAM)
 * and a single upstream connection (threads: 1, max_connections: 1), held busy by a slow request, so that what is
 * queued and what is sent is known; every wait is a bounded poll on the upstream's counters or corral's metrics.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define QUEUED_FILLS 4         /* suite "exact" */
#define FLOOD_QUEUED_FILLS 64  /* suite "flood" */
#define FLOOD_PER_ADDRESS 3000 /* suite "flood": cancels per address per 10 s */
#define FLOOD_CONNS 100
#define FLOOD_PER_CONN 190 /* under the per-connection budget (200) */
#define FLOOD_DELAY_MS 500
#define FLOOD_MAX_CONNECTIONS 8

static cr_proc_t up, corral;

static const char *exact_template = "threads: 1\n"
                                    "listen:\n"
                                    "  - address: 127.0.0.1:${PORT}\n"
                                    "upstream:\n"
                                    "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                    "  max_connections: 1\n"
                                    "admin:\n"
                                    "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                    "limits:\n"
                                    "  queued_fills: 4\n"
                                    "routes:\n"
                                    "  - match: { prefix: /c }\n"
                                    "    cache: true\n"
                                    "    ttl: 60s\n"
                                    "  - match: { prefix: /p }\n"
                                    "    cache: false\n";

static const char *flood_template = "threads: 2\n"
                                    "listen:\n"
                                    "  - address: 127.0.0.1:${PORT}\n"
                                    "upstream:\n"
                                    "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                    "  max_connections: 8\n"
                                    "admin:\n"
                                    "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                    "limits:\n"
                                    "  queued_fills: 64\n"
                                    "  cancels_per_address: 3000\n"
                                    "routes:\n"
                                    "  - match: { prefix: /c }\n"
                                    "    cache: true\n"
                                    "    ttl: 60s\n";

static int exact_init(void)
{
    return harness_start_pair(&up, &corral, exact_template);
}

static int flood_init(void)
{
    return harness_start_pair(&up, &corral, flood_template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* ---- raw HTTP/2 ---- */

static size_t reset_frame(unsigned char *buf, uint32_t stream)
{
    size_t off = harness_h2_frame_header(buf, 4, 0x3, 0x0, stream);
    buf[off++] = 0;
    buf[off++] = 0;
    buf[off++] = 0;
    buf[off++] = 0x8; /* CANCEL */
    return off;
}

static int write_all(int fd, const void *p, size_t len)
{
    while (len != 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0)
            return -1;
        p = (const char *)p + w;
        len -= (size_t)w;
    }
    return 0;
}

/* A connection to corral with the preface and an empty SETTINGS sent, or -1. */
static int h2_open(void)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    unsigned char settings[9];
    int fd = harness_connect(corral.port);
    if (fd < 0)
        return -1;
    if (write_all(fd, preface, sizeof(preface) - 1) != 0 || write_all(fd, settings, harness_h2_frame_header(settings, 0, 0x4, 0, 0)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static const char *authority(void)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "127.0.0.1:%d", corral.port);
    return buf;
}

/* ---- waits ---- */

static int wait_upstream_count(const char *path, long want, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;
    do {
        if (upstream_count(&up, path) >= want)
            return 0;
        poll(NULL, 0, 10);
    } while (harness_now_ms() < deadline);
    return -1;
}

static int wait_metric(const char *name, long want, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;
    do {
        if (harness_metric(&corral, name) >= want)
            return 0;
        poll(NULL, 0, 10);
    } while (harness_now_ms() < deadline);
    return -1;
}

/* Sends an HTTP/1.1 GET on a new connection without reading the answer: the caller reads it (read_status). */
static int h1_send(const char *path)
{
    char req[512];
    int fd = harness_connect(corral.port), n;
    if (fd < 0)
        return -1;
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, authority());
    if (write_all(fd, req, (size_t)n) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The status of the HTTP/1.1 answer on fd (the head is read within timeout_ms; body bytes after it are kept in
 * body, NUL-terminated), or -1. Closes fd. */
static int h1_read_status(int fd, int timeout_ms, char *body, size_t bodysize)
{
    char buf[8192];
    size_t got = 0;
    long deadline = harness_now_ms() + timeout_ms;
    int status = -1;
    char *eoh = NULL;

    while (harness_now_ms() < deadline && got < sizeof(buf) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 50) <= 0)
            continue;
        if ((r = read(fd, buf + got, sizeof(buf) - 1 - got)) <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        if ((eoh = strstr(buf, "\r\n\r\n")) != NULL && (body == NULL || strchr(eoh + 4, '}') != NULL))
            break;
    }
    buf[got] = '\0';
    if (got > 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0)
        status = atoi(buf + 9);
    if (body != NULL) {
        snprintf(body, bodysize, "%s", eoh != NULL ? eoh + 4 : "");
    }
    close(fd);
    return status;
}

/* Holds the suite's single upstream connection with a slow miss (delay_ms) and returns its fd once the upstream has
 * the request (the caller reads the answer), or -1. */
static int hold_upstream(const char *path, int delay_ms)
{
    char q[64], key[128];
    int fd;
    snprintf(q, sizeof(q), "delay=%d", delay_ms);
    snprintf(key, sizeof(key), "%s", path);
    *strchr(key, '?') = '\0';
    if (upstream_set(&up, key, q) != 0)
        return -1;
    long before = upstream_count(&up, key);
    if ((fd = h1_send(path)) < 0)
        return -1;
    if (wait_upstream_count(key, before + 1, 5000) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the exact cases (one upstream connection) ---- */

static void test_unsent_fill_is_dropped(void)
{
    unsigned char buf[512];
    size_t len;
    long dropped = harness_metric(&corral, "corral_fills_dropped_total"), requests;
    int hold, fd;
    cr_resp_t r;

    CU_ASSERT_FATAL(dropped >= 0);
    CU_ASSERT_FATAL((hold = hold_upstream("/c/hold?n=1", 2000)) >= 0);
    /* the only connection is busy: this fill is queued, and its only waiter cancels at once */
    CU_ASSERT_FATAL((fd = h2_open()) >= 0);
    requests = harness_metric(&corral, "corral_requests_total");
    len = harness_h2_get_headers(buf, 1, "/c/dropme?k=1", authority());
    len += reset_frame(buf + len, 1);
    CU_ASSERT_EQUAL(write_all(fd, buf, len), 0);
    CU_ASSERT_EQUAL(wait_metric("corral_requests_total", requests + 1, 5000), 0);
    CU_ASSERT_EQUAL(wait_metric("corral_fills_dropped_total", dropped + 1, 5000), 0);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_queued"), 0); /* its queue place is free */
    close(fd);

    CU_ASSERT_EQUAL(h1_read_status(hold, 5000, NULL, 0), 200);
    /* a miss after it goes through the same connection: a queued fill would have been sent before it */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/c/after?n=1"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/c/dropme"), 0);

    /* the key is not stuck behind the dropped flight: a new request fills it */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/c/dropme?k=1"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/c/dropme"), 1);
    CU_ASSERT_EQUAL(kill(corral.pid, 0), 0);
}

static void test_sent_fill_is_stored(void)
{
    unsigned char buf[512];
    size_t len;
    /* The previous test's last fill is stored from a zero timeout after its client has the answer (fill.c), and the
     * admin runs on its own thread: read now, the counter could miss that store and the wait below count it instead
     * of this test's. A request answered by the one worker after it comes after that timeout. */
    int settled = harness_get_hit(&corral, "/c/dropme?k=1", NULL, NULL, 0);
    long stored = harness_metric(&corral, "corral_stored_total");
    long dropped = harness_metric(&corral, "corral_fills_dropped_total");
    int fd;
    long status = 0;

    CU_ASSERT_FATAL(settled >= 0 && stored >= 0 && dropped >= 0);
    CU_ASSERT_FATAL(upstream_set(&up, "/c/sent", "delay=500") == 0);
    CU_ASSERT_FATAL((fd = h2_open()) >= 0);
    len = harness_h2_get_headers(buf, 1, "/c/sent?k=1", authority());
    CU_ASSERT_EQUAL(write_all(fd, buf, len), 0);
    /* on the wire: the upstream has it; now its only waiter goes */
    CU_ASSERT_EQUAL(wait_upstream_count("/c/sent", 1, 5000), 0);
    len = reset_frame(buf, 1);
    CU_ASSERT_EQUAL(write_all(fd, buf, len), 0);
    CU_ASSERT_EQUAL(wait_metric("corral_stored_total", stored + 1, 5000), 0);
    close(fd);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/c/sent?k=1", &status, NULL, 0), 1);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(upstream_count(&up, "/c/sent"), 1);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_fills_dropped_total"), dropped);
}

/* Runs tools/h2-attack.py with args (NULL-terminated, after --port); its JSON line into out. Does not wait for it
 * when pid != NULL (then *pid and *outfd are set: read with collect()). Returns its exit status, 0 when not waited
 * for, or -1. */
static int attack_start(const char *const *args, pid_t *pid, int *outfd)
{
    static char script[1024], port[16];
    const char *argv[48];
    int n = 0, pfd[2];

    snprintf(script, sizeof(script), "%s/tools/h2-attack.py", harness_repo_root());
    snprintf(port, sizeof(port), "%d", corral.port);
    argv[n++] = "/usr/bin/python3";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = port;
    for (; *args != NULL && n < 46; ++args)
        argv[n++] = *args;
    argv[n] = NULL;
    if (pipe(pfd) != 0)
        return -1;
    if ((*pid = fork()) == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    if (*pid < 0) {
        close(pfd[0]);
        return -1;
    }
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    *outfd = pfd[0];
    return 0;
}

/* Reads what the attack printed so far (non-blocking); returns 1 once it has exited (status in *rc). */
static int attack_poll(pid_t pid, int outfd, char *out, size_t outsize, size_t *got, int *rc)
{
    int st;
    ssize_t r;
    while (*got < outsize - 1 && (r = read(outfd, out + *got, outsize - 1 - *got)) > 0)
        *got += (size_t)r;
    out[*got] = '\0';
    if (waitpid(pid, &st, WNOHANG) != pid)
        return 0;
    while (*got < outsize - 1 && (r = read(outfd, out + *got, outsize - 1 - *got)) > 0)
        *got += (size_t)r;
    out[*got] = '\0';
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return 1;
}

/* Waits (bounded) for the attack to end; kills it past the deadline. Returns its exit status or -1. */
static int attack_wait(pid_t pid, int outfd, char *out, size_t outsize, size_t *got, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;
    int rc = -1;
    while (!attack_poll(pid, outfd, out, outsize, got, &rc)) {
        if (harness_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            rc = -1;
            break;
        }
        poll(NULL, 0, 10);
    }
    close(outfd);
    return rc;
}

/* The count of status `code` in the attack's "statuses" object, or 0. */
static long status_count(const char *out, const char *code)
{
    char want[32];
    const char *p;
    snprintf(want, sizeof(want), "\"%s\": ", code);
    return (p = strstr(out, want)) != NULL ? atol(p + strlen(want)) : 0;
}

static void test_queue_is_bounded(void)
{
    int hold, fds[QUEUED_FILLS + 6], i, n503 = 0, n200 = 0, rc;
    long busy = harness_metric(&corral, "corral_upstream_busy_total"), t0, refused_ms = 0;
    char path[64], body[1024], out[4096];
    size_t got = 0;
    pid_t pid;
    int outfd;
    const char *burst[] = {"--flood", "1", "--per-conn", "2", "--burst", "2", "--no-reset", "--same-path",
                           "--path", "/c/herd?k=1", "--linger-ms", "3000", NULL};

    CU_ASSERT_FATAL(busy >= 0);
    CU_ASSERT_FATAL((hold = hold_upstream("/c/hold?n=2", 3000)) >= 0);
    /* the connection is busy: QUEUED_FILLS misses queue, the rest are refused at once */
    t0 = harness_now_ms();
    for (i = 0; i != QUEUED_FILLS + 6; ++i) {
        snprintf(path, sizeof(path), "/c/q?k=%d", i);
        CU_ASSERT_FATAL((fds[i] = h1_send(path)) >= 0);
        if (i < QUEUED_FILLS) /* in order: each is queued before the next is sent */
            CU_ASSERT_EQUAL(wait_metric("corral_upstream_queued", i + 1, 5000), 0);
    }
    CU_ASSERT_EQUAL(wait_metric("corral_upstream_busy_total", busy + 6, 5000), 0);
    for (i = QUEUED_FILLS; i != QUEUED_FILLS + 6; ++i) {
        rc = h1_read_status(fds[i], 5000, body, sizeof(body));
        n503 += rc == 503;
        CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"upstream_busy\""));
    }
    refused_ms = harness_now_ms() - t0;
    CU_ASSERT_EQUAL(n503, 6);
    CU_ASSERT(refused_ms < 1000); /* at once, not after the held request */
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_queued_peak"), QUEUED_FILLS);

    /* a pass is refused the same way while the queue is full */
    CU_ASSERT_FATAL((i = h1_send("/p/refused")) >= 0);
    rc = h1_read_status(i, 5000, body, sizeof(body));
    CU_ASSERT_EQUAL(rc, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"upstream_busy\""));
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_busy_total"), busy + 7);
    CU_ASSERT_EQUAL(upstream_count(&up, "/p/refused"), 0);

    /* a refused fill's waiters all get its answer: two streams of one key in one write share one refused fill */
    busy = harness_metric(&corral, "corral_upstream_busy_total");
    CU_ASSERT_EQUAL_FATAL(attack_start(burst, &pid, &outfd), 0);
    CU_ASSERT_EQUAL(attack_wait(pid, outfd, out, sizeof(out), &got, 10000), 0);
    CU_ASSERT_EQUAL(status_count(out, "503"), 2);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_busy_total"), busy + 1);
    if (status_count(out, "503") != 2)
        fprintf(stderr, "\n  herd: %s\n", out);

    CU_ASSERT_EQUAL(h1_read_status(hold, 5000, NULL, 0), 200);
    for (i = 0; i != QUEUED_FILLS; ++i)
        n200 += h1_read_status(fds[i], 5000, body, sizeof(body)) == 200;
    CU_ASSERT_EQUAL(n200, QUEUED_FILLS);
    CU_ASSERT_EQUAL(upstream_count(&up, "/c/q"), QUEUED_FILLS);
    CU_ASSERT_EQUAL(upstream_count(&up, "/c/herd"), 0);
    CU_ASSERT(harness_metric(&corral, "corral_upstream_queued_peak") <= QUEUED_FILLS);
}

/* ---- the flood (many connections from one address) ---- */

static void test_flood_from_one_address(void)
{
    char conns[16], per_conn[16], out[4096];
    const char *args[] = {"--flood", conns, "--per-conn", per_conn, "--burst", "10", "--interval-ms", "100", "--linger-ms", "500",
                          "--source", "127.0.0.2", "--path", "/c/flood?k=", NULL};
    size_t got = 0;
    pid_t pid;
    int outfd, rc = -1, done = 0, i = 0, normal_ok = 0;
    long t0, worst_ms = 0, peak, flood_seen, sent, rejected429, dropped, elapsed_ms;
    double sum_ms = 0;
    cr_resp_t r;
    char path[64];
    const char *p;

    snprintf(conns, sizeof(conns), "%d", FLOOD_CONNS);
    snprintf(per_conn, sizeof(per_conn), "%d", FLOOD_PER_CONN);
    CU_ASSERT_FATAL(upstream_set(&up, "/c/flood", "delay=500") == 0);
    t0 = harness_now_ms();
    CU_ASSERT_EQUAL_FATAL(attack_start(args, &pid, &outfd), 0);
    /* a normal client's misses on other keys while the flood runs */
    poll(NULL, 0, 300);
    while (!done && harness_now_ms() - t0 < 15000) {
        snprintf(path, sizeof(path), "/c/normal?i=%d", i++);
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        normal_ok += r.status == 200;
        sum_ms += r.total_ms;
        if ((long)r.total_ms > worst_ms)
            worst_ms = (long)r.total_ms;
        resp_free(&r);
        CU_ASSERT(harness_metric(&corral, "corral_upstream_queued") <= FLOOD_QUEUED_FILLS);
        done = attack_poll(pid, outfd, out, sizeof(out), &got, &rc);
        if (!done)
            poll(NULL, 0, 100);
    }
    if (!done)
        rc = attack_wait(pid, outfd, out, sizeof(out), &got, 10000);
    else
        close(outfd);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(i >= 3);
    CU_ASSERT_EQUAL(normal_ok, i);
    CU_ASSERT(worst_ms < 2000);

    sent = (p = strstr(out, "\"sent\": ")) != NULL ? atol(p + 8) : -1;
    elapsed_ms = (p = strstr(out, "\"elapsed_ms\": ")) != NULL ? atol(p + 14) : -1;
    rejected429 = status_count(out, "429");
    CU_ASSERT_EQUAL(sent, FLOOD_CONNS * FLOOD_PER_CONN);
    CU_ASSERT(elapsed_ms > 0);
    /* each connection stays under its own budget (190 < 200), yet the address is cut off past its budget: at most
     * two windows' worth of cancels (the flood may straddle a window boundary) go through */
    CU_ASSERT(rejected429 >= sent - 2 * FLOOD_PER_ADDRESS - FLOOD_CONNS);
    CU_ASSERT(harness_metric(&corral, "corral_guard_rejections_total") >= rejected429);

    /* let the fills that were sent finish, then count what the upstream saw */
    poll(NULL, 0, FLOOD_DELAY_MS + 200);
    flood_seen = upstream_count(&up, "/c/flood");
    peak = harness_metric(&corral, "corral_upstream_queued_peak");
    dropped = harness_metric(&corral, "corral_fills_dropped_total");
    /* the upstream sees at most what max_connections carry at FLOOD_DELAY_MS each (plus one round) */
    CU_ASSERT(flood_seen >= 0);
    CU_ASSERT(flood_seen <= (long)FLOOD_MAX_CONNECTIONS * (elapsed_ms / FLOOD_DELAY_MS + 2));
    CU_ASSERT(flood_seen * 10 < sent - rejected429);
    CU_ASSERT(peak >= 0 && peak <= FLOOD_QUEUED_FILLS);
    CU_ASSERT(dropped > 0);
    CU_ASSERT_EQUAL(kill(corral.pid, 0), 0);
    fprintf(stderr,
            "\n  flood: %ld HEADERS+RST from one address over %d connections in %ld ms: %ld answered 429, upstream saw "
            "%ld, %ld fills dropped, queue peak %ld; normal misses: %d, worst %ld ms, mean %.1f ms\n",
            sent, FLOOD_CONNS, elapsed_ms, rejected429, flood_seen, dropped, peak, i, worst_ms, i ? sum_ms / i : 0.0);

    /* another address is served at once */
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&corral, "/c/after-flood?x=1"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
}

void cr_e2e_register_limits_fills(void)
{
    CU_pSuite s = CU_add_suite("limits: fills (one upstream connection)", exact_init, suite_cleanup);
    CU_add_test(s, "a fill whose only waiter cancels while it is queued is never sent", test_unsent_fill_is_dropped);
    CU_add_test(s, "a fill already sent when its waiter cancels is stored", test_sent_fill_is_stored);
    CU_add_test(s, "queued fills are bounded: past queued_fills a miss gets 503 at once, with every waiter",
                test_queue_is_bounded);
    s = CU_add_suite("limits: fills under a rapid-reset flood", flood_init, suite_cleanup);
    CU_add_test(s, "many connections from one address: bounded upstream work, guard per address, normal misses served",
                test_flood_from_one_address);
}
