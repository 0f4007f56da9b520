/*
 * test_accesslog.c: end-to-end tests of the JSON access log, the request id and log.level (issue 14, logs):
 *   - corral logging to a file: a miss, a hit, a pass (cache: false), a request matching no route, a 404, a client's
 *     X-Request-Id, hostile ids (quotes, backslash, tab, bytes over 0x7f, 10 KB, two lines) and a hostile path over
 *     raw HTTP/2 (quotes, backslash, tab, a byte that is not UTF-8, U+2028; libh2o itself refuses other control bytes
 *     in :path with a 400 before any handler runs, so such a request has no line): every line is valid JSON with exactly the documented keys (tests/e2e/accesslog_lines.py reads them
 *     with Python's json module), and the fields are right (status, route, cache outcome, bytes, upstream_time null on
 *     a hit and a number on a miss or pass);
 *   - the upstream saw the request id: the client's valid one, or the generated one that replaced a hostile one
 *     (the test upstream's /__log records the headers it got);
 *   - generated ids are unique over 400 requests;
 *   - `log.access: off` writes no line; the default (stdout) does, beside the error log, and what is buffered at
 *     SIGTERM is written at exit; log.level: warn drops the info lines the default level prints;
 *   - a destination that cannot be opened, a relative path and an unknown level are `-t` errors at the value;
 *   - stdout to a pipe the test never reads, under load: every request is answered, and the lines that did not fit
 *     are dropped and counted: lines read afterwards + corral_access_log_dropped_total == requests sent.
 * Lines are written by each thread's 200 ms timer: the test polls the file (bounded) until the lines it expects are
 * there, never sleeps.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define REQUIRE(cond)                                                                                                          \
    do {                                                                                                                       \
        CU_ASSERT_FATAL(cond);                                                                                                 \
    } while (0)

#define UNIQUE_N 400
#define PIPE_N 3000

static cr_proc_t up, corral;
static char dir[128], log_path[256];

static const char *routes_yaml = "routes:\n"
                                 "  - match: { prefix: /c }\n"
                                 "    ttl: 60s\n"
                                 "  - match: { prefix: /p }\n"
                                 "    name: pass-route\n" /* a named route logs its name; the other its default one */
                                 "    cache: false\n";

static int suite_init(void)
{
    char yaml[2048];
    snprintf(dir, sizeof(dir), "/tmp/corral-al.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(log_path, sizeof(log_path), "%s/access.log", dir);
    snprintf(yaml, sizeof(yaml),
             "threads: 2\nlisten:\n  - address: 127.0.0.1:${PORT}\nupstream:\n  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
             "admin:\n  address: 127.0.0.1:${ADMIN_PORT}\nlog:\n  access: %s\n%s",
             log_path, routes_yaml);
    return harness_start_pair(&up, &corral, yaml);
}

static int suite_cleanup(void)
{
    int rc = harness_stop_pair(&up, &corral);
    if (getenv("CORRAL_E2E_KEEP") == NULL) {
        unlink(log_path);
        rmdir(dir);
    }
    return rc;
}

/* The summaries accesslog_lines.py prints for file (malloc'ed; "" when it has none), or NULL when it could not run. */
static char *summaries(const char *file)
{
    char cmd[1024], *out = malloc(1 << 20);
    size_t len = 0, n;
    FILE *f;
    if (out == NULL)
        return NULL;
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/tests/e2e/accesslog_lines.py' '%s'", getenv("CORRAL_ROOT"), file);
    if ((f = popen(cmd, "r")) == NULL) {
        free(out);
        return NULL;
    }
    while (len < (1 << 20) - 1 && (n = fread(out + len, 1, (1 << 20) - 1 - len, f)) != 0)
        len += n;
    out[len] = '\0';
    if (pclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* How many summary lines of s contain needle. */
static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    const char *line = s;
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char buf[4096];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) - 1 ? len : sizeof(buf) - 1), line);
        n += strstr(buf, needle) != NULL;
        line += len + (end != NULL);
    }
    return n;
}

/* The summary line of s that contains needle, copied into out; 1 when found. */
static int find_line(const char *s, const char *needle, char *out, size_t outsize)
{
    const char *at = strstr(s, needle), *start, *end;
    if (at == NULL)
        return 0;
    for (start = at; start != s && start[-1] != '\n'; --start)
        ;
    end = strchr(at, '\n');
    snprintf(out, outsize, "%.*s", (int)(end != NULL ? end - start : (long)strlen(start)), start);
    return 1;
}

/* Polls (bounded, 10 s) until the log's summaries have at least `lines` lines containing needle; returns them. */
static char *wait_lines(const char *file, const char *needle, int lines)
{
    long deadline = harness_now_ms() + 10000;
    char *s = NULL;
    for (;;) {
        free(s);
        s = summaries(file);
        if (s != NULL && count_lines(s, needle) >= lines)
            return s;
        if (harness_now_ms() > deadline)
            return s;
        poll(NULL, 0, 20);
    }
}

static void get_with_id(const char *path, const char *id, long expect_status)
{
    char hdr[256];
    const char *hdrs[] = {hdr, NULL};
    cr_resp_t r;
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", id);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), hdrs), 0);
    CU_ASSERT_EQUAL(r.status, expect_status);
    resp_free(&r);
}

/* "L\t<id>\t<status>\t<route>\t<cache>\t<upstream>\t<bytes>\t..." for the line with this id, or fails */
static void check_line(const char *s, const char *id, const char *expect_prefix)
{
    char needle[300], line[4096];
    snprintf(needle, sizeof(needle), "L\t%s\t", id);
    CU_ASSERT_FATAL(find_line(s, needle, line, sizeof(line)));
    if (strncmp(line, expect_prefix, strlen(expect_prefix)) != 0)
        fprintf(stderr, "accesslog: line %s\n  expected to start with %s\n", line, expect_prefix);
    CU_ASSERT_EQUAL(strncmp(line, expect_prefix, strlen(expect_prefix)), 0);
}

static void test_fields(void)
{
    char *s;
    CU_ASSERT_EQUAL(upstream_reset(&up), 0);
    get_with_id("/c/fields", "t-miss", 200);
    get_with_id("/c/fields", "t-hit", 200);
    get_with_id("/p/fields", "t-pass", 200);
    get_with_id("/elsewhere", "t-noroute", 200);
    get_with_id("/c/nf?status=404", "t-404", 404);
    get_with_id("/c/ns?cc=no-store", "t-nostore", 200);
    get_with_id("/c/ns?cc=no-store", "t-bypass", 200);
    s = wait_lines(log_path, "\tt-", 7);
    REQUIRE(s != NULL);
    CU_ASSERT_EQUAL(count_lines(s, "BAD"), 0);
    check_line(s, "t-miss", "L\tt-miss\t200\tprefix:/c\tmiss\tnum\t");
    check_line(s, "t-hit", "L\tt-hit\t200\tprefix:/c\thit\tnull\t");
    check_line(s, "t-pass", "L\tt-pass\t200\tpass-route\tpass\tnum\t");
    check_line(s, "t-noroute", "L\tt-noroute\t200\tNone\tpass\tnum\t");
    check_line(s, "t-404", "L\tt-404\t404\tprefix:/c\tmiss\tnum\t");
    check_line(s, "t-nostore", "L\tt-nostore\t200\tprefix:/c\tmiss\tnum\t");
    check_line(s, "t-bypass", "L\tt-bypass\t200\tprefix:/c\tbypass\tnum\t");
    {
        /* bytes: the body the client got (the hit's and the miss's are the same object) */
        char line[4096];
        long bytes_miss = -1, bytes_hit = -2;
        cr_resp_t r;
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/c/fields"), NULL), 0);
        if (find_line(s, "L\tt-miss\t", line, sizeof(line)))
            sscanf(line, "L\tt-miss\t200\tprefix:/c\tmiss\tnum\t%ld", &bytes_miss);
        if (find_line(s, "L\tt-hit\t", line, sizeof(line)))
            sscanf(line, "L\tt-hit\t200\tprefix:/c\thit\tnull\t%ld", &bytes_hit);
        CU_ASSERT_EQUAL(bytes_miss, (long)r.body_len);
        CU_ASSERT_EQUAL(bytes_hit, (long)r.body_len);
        resp_free(&r);
    }
    free(s);
}

/* The upstream's log for path contains the header value? */
static int upstream_saw(const char *path, const char *value)
{
    char *log = upstream_log(&up, path);
    int saw = log != NULL && strstr(log, value) != NULL;
    free(log);
    return saw;
}

/* The generated (32 hex digits) id logged for path; 1 when found. */
static int generated_id_of(const char *s, const char *path_json, char id[33])
{
    char line[4096], *p, *q;
    if (!find_line(s, path_json, line, sizeof(line)))
        return 0;
    p = line + 2;
    q = strchr(p, '\t');
    if (q == NULL || q - p != 32)
        return 0;
    memcpy(id, p, 32);
    id[32] = '\0';
    return strspn(id, "0123456789abcdef") == 32;
}

static void test_request_id(void)
{
    static char hostile[12000];
    const char *hdrs_hostile[] = {hostile, NULL};
    const char *hdrs_two[] = {"X-Request-Id: one", "X-Request-Id: two", NULL};
    const char *hdrs_space[] = {"X-Request-Id: has space", NULL};
    char *s, id[33];
    cr_resp_t r;
    size_t n;

    CU_ASSERT_EQUAL(upstream_reset(&up), 0);
    get_with_id("/p/idfwd", "client-id-0123", 200);
    CU_ASSERT(upstream_saw("/p/idfwd", "client-id-0123"));
    get_with_id("/c/idfill", "fill-id-4567", 200);
    CU_ASSERT(upstream_saw("/c/idfill", "fill-id-4567"));

    /* quotes, backslash, a tab, bytes over 0x7f and 10 KB: replaced by a generated id */
    n = (size_t)snprintf(hostile, sizeof(hostile), "X-Request-Id: a\"b\\c\td\xff\xfe");
    memset(hostile + n, 'x', 10240);
    hostile[n + 10240] = '\0';
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/p/hostile-id"), hdrs_hostile), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/p/two-ids"), hdrs_two), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/p/space-id"), hdrs_space), 0);
    resp_free(&r);

    /* each worker flushes its own buffer: wait for every request's line, not only the last one sent */
    {
        static const char *const needles[] = {"client-id-0123", "\"/p/hostile-id\"", "\"/p/two-ids\""};
        size_t i;
        for (i = 0; i != sizeof(needles) / sizeof(needles[0]); ++i) {
            s = wait_lines(log_path, needles[i], 1);
            REQUIRE(s != NULL);
            free(s);
        }
    }
    s = wait_lines(log_path, "\"/p/space-id\"", 1);
    REQUIRE(s != NULL);
    CU_ASSERT_EQUAL(count_lines(s, "BAD"), 0);
    CU_ASSERT(find_line(s, "L\tclient-id-0123\t200\tpass-route\t", id, 1)); /* the client's valid id is kept */
    CU_ASSERT(generated_id_of(s, "\"/p/hostile-id\"", id));
    CU_ASSERT(upstream_saw("/p/hostile-id", id));   /* the upstream got the generated id ... */
    CU_ASSERT(!upstream_saw("/p/hostile-id", "a\\\"b")); /* ... and not the hostile one */
    CU_ASSERT(generated_id_of(s, "\"/p/two-ids\"", id));
    CU_ASSERT(upstream_saw("/p/two-ids", id));
    CU_ASSERT(!upstream_saw("/p/two-ids", "\"one\""));
    CU_ASSERT(generated_id_of(s, "\"/p/space-id\"", id));
    free(s);
}

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len != 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A hostile :path over raw HTTP/2 (quotes, backslash, a tab, a byte that is not UTF-8, U+2028): its line is valid
 * JSON, and the path comes back as sent (0xff as U+00FF, the code point of the same value). */
static void test_hostile_path(void)
{
    static const char path[] = "/c/\"q\"\\b\t\xff\xc3\xa9/\u2028";
    unsigned char buf[1024];
    size_t off = 0;
    char *s;
    int fd = harness_connect(corral.port);

    REQUIRE(fd >= 0);
    memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    off = 24;
    off += harness_h2_frame_header(buf + off, 0, 4, 0, 0); /* SETTINGS */
    off += harness_h2_get_headers(buf + off, 1, path, "localhost");
    CU_ASSERT_EQUAL(send_all(fd, buf, off), 0);
    s = wait_lines(log_path, "\\\"q\\\"", 1);
    close(fd);
    REQUIRE(s != NULL);
    CU_ASSERT_EQUAL(count_lines(s, "BAD"), 0);
    /* Python's json.dumps of the path: the quote and backslash escaped, control bytes and 0xff as \u00XX */
    CU_ASSERT(count_lines(s, "\"/c/\\\"q\\\"\\\\b\\t\\u00ff\\u00e9/\\u2028\"") == 1);
    free(s);
}

static void test_unique_ids(void)
{
    static cr_resp_t resps[UNIQUE_N];
    char *s, *ids, line_id[40];
    const char *p;
    int i, n = 0, dup = 0;

    CU_ASSERT_EQUAL(http_parallel_get(resps, UNIQUE_N, CR_H1, url_of(&corral, "/c/unique"), NULL, 16), 0);
    for (i = 0; i != UNIQUE_N; ++i) {
        CU_ASSERT_EQUAL(resps[i].status, 200);
        resp_free(&resps[i]);
    }
    s = wait_lines(log_path, "\"/c/unique\"", UNIQUE_N);
    REQUIRE(s != NULL);
    CU_ASSERT_EQUAL(count_lines(s, "\"/c/unique\""), UNIQUE_N);
    /* collect the ids of the /c/unique lines and look for a repeat */
    ids = calloc(UNIQUE_N + 1, 40);
    REQUIRE(ids != NULL);
    for (p = s; (p = strstr(p, "L\t")) != NULL; p += 2) {
        const char *tab = strchr(p + 2, '\t'), *eol = strchr(p, '\n');
        if (tab == NULL || eol == NULL || tab - (p + 2) >= 40)
            continue;
        if (memmem(p, (size_t)(eol - p), "\"/c/unique\"", 11) == NULL)
            continue;
        snprintf(line_id, sizeof(line_id), "%.*s", (int)(tab - (p + 2)), p + 2);
        for (i = 0; i != n; ++i)
            dup += strcmp(ids + (size_t)i * 40, line_id) == 0;
        if (n <= UNIQUE_N)
            snprintf(ids + (size_t)n++ * 40, 40, "%s", line_id);
    }
    CU_ASSERT_EQUAL(n, UNIQUE_N);
    CU_ASSERT_EQUAL(dup, 0);
    free(ids);
    free(s);
}

/* ---- off, stdout, log.level ---- */

static int logged_lines(const char *file, const char *path_json)
{
    char *s = summaries(file);
    int n = s != NULL ? count_lines(s, path_json) : -1;
    free(s);
    return n;
}

static char *yaml_with(const char *log_section)
{
    static char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "threads: 1\nlisten:\n  - address: 127.0.0.1:${PORT}\nupstream:\n  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
             "admin:\n  address: 127.0.0.1:${ADMIN_PORT}\n%s%s",
             log_section, routes_yaml);
    return yaml;
}

static void test_off_stdout_level(void)
{
    cr_proc_t c;
    cr_resp_t r;
    char *text, *s;

    /* off: the child's stdout (its log file) gets no access line */
    REQUIRE(harness_start_corral(&c, yaml_with("log:\n  access: off\n"), &up) == 0);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/p/off"), NULL), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(harness_stop(&c), 0);
    CU_ASSERT_EQUAL(logged_lines(c.log_path, "\"/p/off\""), 0);
    text = harness_read_file(c.log_path);
    CU_ASSERT(text != NULL && strstr(text, "[info] listening on") != NULL); /* the default level is info */
    CU_ASSERT(text != NULL && strstr(text, "\n{") == NULL);
    free(text);

    /* the default: stdout, beside the error log (which is stderr: both go to the child's log file here) */
    REQUIRE(harness_start_corral(&c, yaml_with("log:\n  level: warn\n"), &up) == 0);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/p/stdout"), NULL), 0);
    resp_free(&r);
    s = wait_lines(c.log_path, "\"/p/stdout\"", 1);
    CU_ASSERT(s != NULL && count_lines(s, "\"/p/stdout\"") == 1 && count_lines(s, "BAD") == 0);
    free(s);
    /* a line still in a thread's buffer when SIGTERM comes is written at exit */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/p/at-exit"), NULL), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(harness_stop(&c), 0);
    CU_ASSERT_EQUAL(logged_lines(c.log_path, "\"/p/at-exit\""), 1);
    text = harness_read_file(c.log_path);
    CU_ASSERT(text != NULL && strstr(text, "[info]") == NULL); /* log.level: warn */
    free(text);
}

static void test_bad_destinations(void)
{
    char out[2048];
    CU_ASSERT_EQUAL(harness_run_corral_check(yaml_with("log:\n  access: /nonexistent-dir/corral/access.log\n"), out, sizeof(out)), 1);
    CU_ASSERT(strstr(out, ":9:11: log.access: cannot open /nonexistent-dir/corral/access.log: No such file or directory") != NULL);
    CU_ASSERT_EQUAL(harness_run_corral_check(yaml_with("log:\n  access: /\n"), out, sizeof(out)), 1);
    CU_ASSERT(strstr(out, "log.access: cannot open /") != NULL);
    CU_ASSERT_EQUAL(harness_run_corral_check(yaml_with("log:\n  access: relative.log\n"), out, sizeof(out)), 1);
    CU_ASSERT(strstr(out, ":9:11:") != NULL && strstr(out, "a file path") != NULL);
    CU_ASSERT_EQUAL(harness_run_corral_check(yaml_with("log:\n  level: verbose\n"), out, sizeof(out)), 1);
    CU_ASSERT(strstr(out, ":9:10:") != NULL && strstr(out, "debug, info, warn, error") != NULL);
    CU_ASSERT_EQUAL(harness_run_corral_check(yaml_with("log:\n  level: debug\n  access: off\n"), out, sizeof(out)), 0);
}

/* ---- stdout to a pipe nobody reads ---- */

static void test_undrained_pipe(void)
{
    char conf[256], errlog[256], *yaml, buf[65536], *argv[4];
    int fds[2], port = harness_free_port(), admin = harness_free_port(), i, failed, st = -1;
    long dropped, lines = 0, deadline;
    cr_proc_t c;
    FILE *f;
    static cr_resp_t resps[PIPE_N];
    ssize_t n;

    REQUIRE(port > 0 && admin > 0 && port != admin);
    snprintf(conf, sizeof(conf), "%s/pipe.yaml", dir);
    snprintf(errlog, sizeof(errlog), "%s/pipe.err", dir);
    yaml = yaml_with("");
    REQUIRE((f = fopen(conf, "w")) != NULL);
    /* the template's placeholders, by hand (harness_start_corral would send stdout to a file) */
    for (const char *p = yaml; *p != '\0';) {
        if (strncmp(p, "${PORT}", 7) == 0)
            fprintf(f, "%d", port), p += 7;
        else if (strncmp(p, "${ADMIN_PORT}", 13) == 0)
            fprintf(f, "%d", admin), p += 13;
        else if (strncmp(p, "${UPSTREAM_PORT}", 16) == 0)
            fprintf(f, "%d", up.port), p += 16;
        else
            fputc(*p++, f);
    }
    fclose(f);
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    fcntl(fds[0], F_SETPIPE_SZ, 4096); /* a small pipe: it is full after a dozen lines */
    memset(&c, 0, sizeof(c));
    c.port = port;
    c.admin_port = admin;
    snprintf(c.log_path, sizeof(c.log_path), "%s", errlog);
    fflush(stdout);
    fflush(stderr);
    if ((c.pid = fork()) == 0) {
        int err = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        dup2(err, 2);
        argv[0] = getenv("CORRAL_BIN") != NULL ? getenv("CORRAL_BIN") : "build/corral";
        argv[1] = "-c";
        argv[2] = conf;
        argv[3] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    REQUIRE(c.pid > 0);
    if (harness_wait_port(port, 10000) != 0) {
        harness_stop(&c);
        close(fds[0]);
        CU_FAIL_FATAL("corral did not start");
    }

    /* the load, with nobody reading: every request is answered */
    failed = http_parallel_get(resps, PIPE_N, CR_H1, url_of(&c, "/c/pipe"), NULL, 16);
    CU_ASSERT_EQUAL(failed, 0);
    for (i = 0; i != PIPE_N; ++i) {
        CU_ASSERT_EQUAL(resps[i].status, 200);
        resp_free(&resps[i]);
    }
    dropped = harness_metric(&c, "corral_access_log_dropped_total");
    CU_ASSERT(dropped > 0);

    /* now read: the lines that were kept come through (each thread's timer writes what it still holds), and with
     * the dropped ones they add up to what was sent; bounded */
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    deadline = harness_now_ms() + 10000;
    while (harness_now_ms() < deadline) {
        while ((n = read(fds[0], buf, sizeof(buf))) > 0)
            for (i = 0; i != n; ++i)
                lines += buf[i] == '\n';
        dropped = harness_metric(&c, "corral_access_log_dropped_total");
        if (lines + dropped >= PIPE_N)
            break;
        poll(NULL, 0, 20);
    }
    CU_ASSERT_EQUAL(lines + dropped, PIPE_N);
    CU_ASSERT(lines > 0);
    st = harness_stop(&c);
    CU_ASSERT_EQUAL(st, 0);
    close(fds[0]);
}

void cr_e2e_register_accesslog(void)
{
    CU_pSuite s = CU_add_suite("accesslog", suite_init, suite_cleanup);
    CU_add_test(s, "fields of a miss, a hit, a pass, no route, a 404, a bypass", test_fields);
    CU_add_test(s, "request ids: kept, forwarded, hostile ones replaced", test_request_id);
    CU_add_test(s, "a hostile path over HTTP/2 is escaped", test_hostile_path);
    CU_add_test(s, "generated ids are unique", test_unique_ids);
    CU_add_test(s, "off, stdout, log.level", test_off_stdout_level);
    CU_add_test(s, "a destination that cannot be opened is a -t error", test_bad_destinations);
    CU_add_test(s, "stdout to a pipe nobody reads: answered, dropped and counted", test_undrained_pipe);
}
