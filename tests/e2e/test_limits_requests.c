/*
 * test_limits_requests.c: end-to-end tests of the request-size bounds: limits.request_headers (the HPACK bomb, an
 * HTTP/1.1 head over the limit), limits.request_body (HTTP/1.1 Content-Length and chunked, HTTP/2),
 * limits.admin_body and limits.streams_per_connection.
 *
 * HTTP/2 attacks come from tools/h2-hpack-bomb.py (python3-h2), HTTP/1.1 ones from raw sockets, normal traffic from
 * libcurl. One corral (threads: 1, so the attacker and the normal client share the one event loop) in front of the
 * counting test upstream; every "the upstream saw nothing" is an exact count. corral's memory is read from
 * /proc/PID/status (VmHWM, the peak resident set since start).
 */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static cr_proc_t up, corral;

static const char *template = "threads: 1\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "limits:\n"
                              "  admin_body: 8KiB\n"
                              "  streams_per_connection: 4\n"
                              "routes:\n"
                              "  - match: { prefix: /c }\n"
                              "    ttl: 60s\n"
                              "  - match: { prefix: /pass }\n"
                              "    cache: false\n";

static int suite_init(void)
{
    /* under AddressSanitizer (make SANITIZE=...), freed memory waits in a 256 MB quarantine and counts in RSS: this
     * corral gets a small one, so that its RSS still shows what it holds */
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved = asan != NULL ? strdup(asan) : NULL, opts[1024];
    int rc;
    if (saved != NULL) {
        snprintf(opts, sizeof(opts), "%s:quarantine_size_mb=4:thread_local_quarantine_size_kb=64", saved);
        setenv("ASAN_OPTIONS", opts, 1);
    }
    rc = harness_start_pair(&up, &corral, template);
    if (saved != NULL) {
        setenv("ASAN_OPTIONS", saved, 1);
        free(saved);
    }
    return rc;
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* A kB field of /proc/PID/status ("VmHWM", "VmRSS"), or -1. */
static long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    long kb = -1;
    size_t flen = strlen(field);
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, flen) == 0 && line[flen] == ':')
            kb = strtol(line + flen + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* ---- tools/h2-hpack-bomb.py as a child ---- */

typedef struct {
    pid_t pid;
    int fd;     /* its stdout */
    int reaped; /* tool_running saw it exit; status holds its wait status */
    int status;
} tool_t;

/* Starts the tool with args (NULL-terminated, after --port). 0 or -1. */
static int tool_start(tool_t *t, const char *const *args)
{
    char script[1024], port[16];
    const char *argv[48];
    int n = 0, pfd[2];

    snprintf(script, sizeof(script), "%s/tools/h2-hpack-bomb.py", harness_repo_root());
    snprintf(port, sizeof(port), "%d", corral.port);
    argv[n++] = "/usr/bin/python3";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = port;
    for (; *args != NULL && n < 46; ++args)
        argv[n++] = *args;
    argv[n] = NULL;
    t->reaped = 0;
    if (pipe(pfd) != 0)
        return -1;
    if ((t->pid = fork()) == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    t->fd = pfd[0];
    return t->pid > 0 ? 0 : -1;
}

static int tool_running(tool_t *t)
{
    if (!t->reaped && waitpid(t->pid, &t->status, WNOHANG) == t->pid)
        t->reaped = 1;
    return !t->reaped;
}

/* Collects the tool's JSON line into out and reaps it (killed after timeout_ms). Returns its exit status or -1. */
static int tool_finish(tool_t *t, char *out, size_t outsize, long timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;
    size_t got = 0;
    int st = 0;
    pid_t w;

    out[0] = '\0';
    while (got < outsize - 1 && harness_now_ms() < deadline) {
        struct pollfd p = {t->fd, POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((r = read(t->fd, out + got, outsize - 1 - got)) <= 0)
            break;
        got += (size_t)r;
        out[got] = '\0';
    }
    close(t->fd);
    if (t->reaped)
        return WIFEXITED(t->status) ? WEXITSTATUS(t->status) : -1;
    while ((w = waitpid(t->pid, &st, WNOHANG)) == 0 && harness_now_ms() < deadline)
        poll(NULL, 0, 10);
    if (w == 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &st, 0);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_tool(char *out, size_t outsize, const char *const *args)
{
    tool_t t;
    if (tool_start(&t, args) != 0)
        return -1;
    return tool_finish(&t, out, outsize, 60000);
}

/* A count in the tool's output: "statuses": {"431": 4} is count_of(out, "statuses", "431"); 0 when absent. */
static long count_of(const char *json, const char *group, const char *key)
{
    char pat[64];
    const char *g, *end, *k;
    snprintf(pat, sizeof(pat), "\"%s\": {", group);
    if ((g = strstr(json, pat)) == NULL || (end = strchr(g, '}')) == NULL)
        return 0;
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    if ((k = strstr(g, pat)) == NULL || k > end)
        return 0;
    return strtol(k + strlen(pat), NULL, 10);
}

static long field_of(const char *json, const char *field)
{
    long v = -1;
    return json_get_long(json, field, &v) == 0 ? v : -1;
}

/* ---- normal traffic ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define NORMAL_HITS 200

/* NORMAL_HITS sequential hits of a cached path; their p99 in ms (or -1 when any failed or was not a hit). */
static double p99_of_hits(const char *path)
{
    double ms[NORMAL_HITS];
    int i;
    for (i = 0; i != NORMAL_HITS; ++i) {
        cr_resp_t r;
        char cs[128];
        if (http_get(&r, CR_H1, url_of(&corral, path), NULL) != 0 || r.status != 200 ||
            resp_header(&r, "cache-status", cs, sizeof(cs)) == NULL || strstr(cs, "hit") == NULL) {
            resp_free(&r);
            return -1;
        }
        ms[i] = r.total_ms;
        resp_free(&r);
    }
    qsort(ms, NORMAL_HITS, sizeof(ms[0]), cmp_double);
    return ms[NORMAL_HITS * 99 / 100 - 1];
}

/* ---- limits.request_headers ---- */

/* 3 s of bombs of block_size bytes, 4 streams per connection, pause_ms between connections ("0": back to back). */
static void bomb_and_check(const char *block_size, const char *pause_ms, double p99_base, long *hwm_out)
{
    const char *args[] = {"--path", "/c/bomb", "--block-size", block_size, "--streams", "4", "--duration", "3",
                          "--pause-ms", pause_ms, NULL};
    char out[4096];
    tool_t t;
    double p99;
    long streams, total_before = upstream_total(&up), hwm;
    int rc;

    CU_ASSERT_FATAL(tool_start(&t, args) == 0);
    poll(NULL, 0, 200); /* the first rounds are under way */
    p99 = p99_of_hits("/c/hot");
    CU_ASSERT(tool_running(&t)); /* the hits were measured during the attack */
    rc = tool_finish(&t, out, sizeof(out), 60000);
    CU_ASSERT_EQUAL(rc, 0);
    streams = field_of(out, "streams");
    fprintf(stderr, "\n    bomb %s B x 4 streams for 3 s, %s ms between connections: %s\n"
                    "    normal hits p99: %.2f ms unattacked, %.2f ms during the attack\n",
            block_size, pause_ms, out, p99_base, p99);
    CU_ASSERT(streams >= 4);
    /* every bombed request got 431, or its stream or connection an error: never an answer from the upstream */
    CU_ASSERT_EQUAL(count_of(out, "statuses", "431") + field_of(out, "ended_by_connection") +
                        count_of(out, "resets", "1") + count_of(out, "resets", "7"),
                    streams);
    CU_ASSERT(count_of(out, "statuses", "431") >= 4);
    CU_ASSERT_EQUAL(upstream_count(&up, "/c/bomb"), 0);
    CU_ASSERT_EQUAL(upstream_total(&up), total_before); /* the hits are hits */
    CU_ASSERT(p99 >= 0);
    CU_ASSERT(p99 < (10 * p99_base + 50) * harness_time_scale()); /* generous: the attacker shares the one event loop */
    hwm = proc_status_kb(corral.pid, "VmHWM");
    CU_ASSERT(hwm > 0);
    *hwm_out = hwm;
}

static void test_hpack_bomb(void)
{
    long rss_before = proc_status_kb(corral.pid, "VmRSS"), hwm_small = 0, hwm_large = 0;
    cr_resp_t r;
    double p99_base;

    CU_ASSERT_FATAL(http_get(&r, CR_H1, url_of(&corral, "/c/hot"), NULL) == 0); /* the fill */
    resp_free(&r);
    p99_base = p99_of_hits("/c/hot");
    CU_ASSERT_FATAL(p99_base >= 0);
    bomb_and_check("104000", "10", p99_base, &hwm_small);
    bomb_and_check("409000", "10", p99_base, &hwm_large);
    fprintf(stderr, "    corral VmRSS before %ld kB, VmHWM after the ~100 KB bombs %ld kB, after the ~400 KB bombs %ld kB\n",
            rss_before, hwm_small, hwm_large);
    CU_ASSERT(hwm_large - rss_before < 100 * 1024); /* the bound of the issue: under 100 MB */
    /* the connection-level HPACK state stayed right: a normal HTTP/2 request still works */
    CU_ASSERT(http_get(&r, CR_H2C, url_of(&corral, "/c/hot"), NULL) == 0 && r.status == 200);
    resp_free(&r);
}

static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A head with one 70 KiB field gets 431 with the JSON error (the limit is 64 KiB), one with 60 KiB passes. */
static void test_h1_headers_over_limit(void)
{
    char *big = filled(70 * 1024, 'v'), *ok = filled(60 * 1024, 'v');
    char *hbig = malloc(80 * 1024), *hok = malloc(80 * 1024);
    const char *hv_big[] = {hbig, NULL}, *hv_ok[] = {hok, NULL};
    cr_resp_t r;

    snprintf(hbig, 80 * 1024, "X-Big: %s", big);
    snprintf(hok, 80 * 1024, "X-Big: %s", ok);
    CU_ASSERT(http_get(&r, CR_H1, url_of(&corral, "/pass/h1big"), hv_big) == 0);
    CU_ASSERT_EQUAL(r.status, 431);
    CU_ASSERT(strstr(r.body, "\"error\":\"request_headers_too_large\"") != NULL);
    resp_free(&r);
    {   /* the admin port applies the same bound */
        char aurl[96];
        snprintf(aurl, sizeof(aurl), "http://127.0.0.1:%d/healthz", corral.admin_port);
        CU_ASSERT(http_get(&r, CR_H1, aurl, hv_big) == 0);
        CU_ASSERT_EQUAL(r.status, 431);
        resp_free(&r);
        CU_ASSERT(http_get(&r, CR_H1, aurl, hv_ok) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/h1big"), 0);
    /* HTTP/2: one plain 70 KB literal field (no bomb; curl's nghttp2 will not send it, the tool does) */
    {
        const char *args[] = {"--path", "/pass/h1big", "--block-size", "0", "--value-size", "71680", "--streams", "1", NULL};
        char out[4096];
        CU_ASSERT_EQUAL(run_tool(out, sizeof(out), args), 0);
        CU_ASSERT_EQUAL(count_of(out, "statuses", "431"), 1);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/h1big"), 0);
    /* a short block (under 64 bytes: hpack_bound.c decodes it in one call, without its scan) that refers 40 times
     * to a 4000-byte field the connection's first request put in the table: 160 KB decoded, 431 all the same */
    {
        const char *args[] = {"--path", "/pass/h1short", "--block-size", "60", "--value-size", "4000", "--streams", "2", NULL};
        char out[4096];
        CU_ASSERT_EQUAL(run_tool(out, sizeof(out), args), 0);
        CU_ASSERT_EQUAL(count_of(out, "statuses", "431"), 1);
        CU_ASSERT_EQUAL(count_of(out, "statuses", "200"), 1); /* the first: one 4000-byte field, under the limit */
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/h1short"), 1);
    /* under the limit, both protocols pass */
    CU_ASSERT(http_get(&r, CR_H1, url_of(&corral, "/pass/h1ok"), hv_ok) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT(http_get(&r, CR_H2C, url_of(&corral, "/pass/h1ok"), hv_ok) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/h1ok"), 2);
    free(big);
    free(ok);
    free(hbig);
    free(hok);
}

/* ---- limits.request_body ---- */

#define OVER_BODY (17u << 20)

/* Does corral hold a libh2o buffer file (/tmp/h2o.b.XXXXXX, unlinked at once) open or mapped? */
static int holds_buffer_file(pid_t pid)
{
    char path[64], link[512];
    struct dirent *de;
    DIR *d;
    int found = 0;
    char *maps;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if ((d = opendir(path)) != NULL) {
        while (!found && (de = readdir(d)) != NULL) {
            char fdpath[600];
            ssize_t n;
            snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
            if ((n = readlink(fdpath, link, sizeof(link) - 1)) > 0) {
                link[n] = '\0';
                found = strstr(link, "h2o.b.") != NULL;
            }
        }
        closedir(d);
    }
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    if (!found && (maps = harness_read_file(path)) != NULL) {
        found = strstr(maps, "h2o.b.") != NULL;
        free(maps);
    }
    return found;
}

/* Reads the status code of the response on fd (waits up to 10 s), or 0. */
static int read_status(int fd)
{
    char buf[4096];
    size_t got = 0;
    long deadline = harness_now_ms() + 10000;
    while (got < sizeof(buf) - 1 && harness_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((r = read(fd, buf + got, sizeof(buf) - 1 - got)) <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n") != NULL)
            break;
    }
    buf[got] = '\0';
    return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n != 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void test_body_over_limit_h1(void)
{
    char head[512];
    int fd, status, seen_file = 0;
    size_t sent = 0, step = 1u << 20;
    char *chunk = filled(step, 'b');
    long hwm;

    /* Content-Length over the limit: 413 from the head alone, before any of the body is sent */
    CU_ASSERT_FATAL((fd = harness_connect(corral.port)) >= 0);
    snprintf(head, sizeof(head), "POST /pass/body HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n", OVER_BODY);
    CU_ASSERT(write_all(fd, head, strlen(head)) == 0);
    CU_ASSERT_EQUAL(read_status(fd), 413);
    close(fd);

    /* chunked: 1 MiB chunks until corral answers; it must answer 413 after about 16 MiB, never buffer more */
    CU_ASSERT_FATAL((fd = harness_connect(corral.port)) >= 0);
    snprintf(head, sizeof(head), "POST /pass/body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    CU_ASSERT(write_all(fd, head, strlen(head)) == 0);
    status = 0;
    while (sent < OVER_BODY) {
        struct pollfd p = {fd, POLLIN, 0};
        snprintf(head, sizeof(head), "%zx\r\n", step);
        if (write_all(fd, head, strlen(head)) != 0 || write_all(fd, chunk, step) != 0 || write_all(fd, "\r\n", 2) != 0)
            break; /* corral closed after its 413 */
        sent += step;
        seen_file |= holds_buffer_file(corral.pid);
        if (poll(&p, 1, 0) == 1)
            break;
    }
    status = read_status(fd);
    close(fd);
    CU_ASSERT_EQUAL(status, 413);
    CU_ASSERT(sent <= OVER_BODY);
    CU_ASSERT_EQUAL(seen_file, 0); /* the body never went to a /tmp buffer file */
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/body"), 0);
    hwm = proc_status_kb(corral.pid, "VmHWM");
    fprintf(stderr, "\n    chunked upload answered %d after %zu bytes; corral VmHWM %ld kB\n", status, sent, hwm);
    free(chunk);
}

static void test_body_over_limit_h2(void)
{
    char size[32], out[4096];
    const char *args[] = {"--path", "/pass/body2", "--body-size", size, NULL};
    int rc;

    snprintf(size, sizeof(size), "%u", OVER_BODY);
    rc = run_tool(out, sizeof(out), args);
    CU_ASSERT_EQUAL(rc, 0);
    fprintf(stderr, "\n    h2 17 MiB upload: %s\n", out);
    /* libh2o resets the stream (REFUSED_STREAM) once the buffered DATA would pass the limit; a 413 would do too */
    CU_ASSERT_EQUAL(count_of(out, "resets", "7") + count_of(out, "statuses", "413"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/body2"), 0);
    CU_ASSERT_EQUAL(holds_buffer_file(corral.pid), 0);
}

static void test_body_within_limit(void)
{
    size_t n = 1u << 20;
    char *body = filled(n, 'p'), size[32], out[4096], want[64];
    const char *args[] = {"--path", "/pass/up2", "--body-size", size, NULL};
    cr_resp_t r;

    snprintf(want, sizeof(want), "\"body_len\": %zu", n);
    CU_ASSERT(http_request(&r, CR_H1, "POST", url_of(&corral, "/pass/up"), NULL, body, n) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strstr(r.body, want) != NULL);
    resp_free(&r);
    snprintf(size, sizeof(size), "%zu", n);
    CU_ASSERT_EQUAL(run_tool(out, sizeof(out), args), 0);
    CU_ASSERT_EQUAL(count_of(out, "statuses", "200"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/up"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/up2"), 1);
    free(body);
}

/* ---- limits.admin_body (8 KiB here) ---- */

static void test_admin_body(void)
{
    char url[128], *big = filled(9 * 1024, ' '), *huge = filled(40 * 1024, ' ');
    const char *json = "{\"keys\": [\"/c/none\"]}";
    cr_resp_t r;

    memcpy(big, json, strlen(json)); /* valid JSON padded with spaces past the limit */
    memcpy(huge, json, strlen(json));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/purge", corral.admin_port);
    CU_ASSERT(http_request(&r, CR_H1, "POST", url, NULL, json, strlen(json)) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT(http_request(&r, CR_H1, "POST", url, NULL, big, strlen(big)) == 0);
    CU_ASSERT_EQUAL(r.status, 413);
    CU_ASSERT(strstr(r.body, "\"error\":\"body_too_large\"") != NULL);
    resp_free(&r);
    /* far over (past twice the limit) libh2o itself refuses before buffering it */
    CU_ASSERT(http_request(&r, CR_H1, "POST", url, NULL, huge, strlen(huge)) == 0);
    CU_ASSERT_EQUAL(r.status, 413);
    resp_free(&r);
    free(big);
    free(huge);
}

/* ---- limits.streams_per_connection (4 here) ---- */

static void test_streams_per_connection(void)
{
    char out[4096];
    const char *args[] = {"--path", "/pass/slow?delay=300", "--concurrent", "12", NULL};
    char *conc;
    long max = -1;

    CU_ASSERT_FATAL(upstream_reset(&up) == 0);
    CU_ASSERT_EQUAL(run_tool(out, sizeof(out), args), 0);
    fprintf(stderr, "\n    12 streams at once, limit 4: %s\n", out);
    CU_ASSERT_EQUAL(count_of(out, "statuses", "200"), 12);
    /* 12 requests of 300 ms, 4 at a time: three rounds */
    CU_ASSERT(field_of(out, "elapsed_ms") >= 3 * 300);
    {
        cr_resp_t r;
        CU_ASSERT(http_get(&r, CR_H1, url_of(&up, "/__concurrency"), NULL) == 0);
        conc = r.body;
        CU_ASSERT(json_get_long(conc, "max", &max) == 0);
        resp_free(&r);
    }
    CU_ASSERT(max >= 1 && max <= 4);
    CU_ASSERT_EQUAL(upstream_count(&up, "/pass/slow"), 12);
}

void cr_e2e_register_limits_requests(void)
{
    CU_pSuite s = CU_add_suite("limits: request sizes", suite_init, suite_cleanup);
    CU_add_test(s, "HPACK bomb: 431 or a stream error, RSS bounded, nothing upstream, hits keep their latency", test_hpack_bomb);
    CU_add_test(s, "a request head over limits.request_headers gets 431, one under passes (HTTP/1.1, h2c)", test_h1_headers_over_limit);
    CU_add_test(s, "HTTP/1.1 body over limits.request_body: 413 (Content-Length, chunked), nothing buffered to /tmp", test_body_over_limit_h1);
    CU_add_test(s, "HTTP/2 body over limits.request_body: the stream is refused, nothing upstream", test_body_over_limit_h2);
    CU_add_test(s, "a 1 MiB upload to a pass route works (HTTP/1.1, h2c)", test_body_within_limit);
    CU_add_test(s, "admin bodies over limits.admin_body get 413", test_admin_body);
    CU_add_test(s, "limits.streams_per_connection: at most that many requests of a connection at once", test_streams_per_connection);
}
