/*
 * test_operations.c: end-to-end tests of start-up and logging safety (issue 10, section 7):
 *   - a second corral (or any process with SO_REUSEPORT) on an address in use: exit 1 naming the address, and the
 *     first still serves;
 *   - `corral -t` checks what start-up checks (admin token file and variable, TLS files, a key that is not the
 *     certificate's), and start-up fails with the same file:line:col message;
 *   - every log line is one record, whatever bytes a client or a cache key brings (control bytes, newlines);
 *   - GET /v1/cache shows keys on one line and as fields;
 *   - a SIGTERM at any moment of start-up never crashes corral.
 * Processes are started by PID and stopped by PID; waits are bounded polls.
 */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

#define REQUIRE(cond)                                                                                                          \
    do {                                                                                                                       \
        CU_ASSERT_FATAL(cond);                                                                                                 \
    } while (0)

static char dir[64];

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/corral-e2e-ops.XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
    char cmd[128];
    if (getenv("CORRAL_E2E_KEEP") != NULL)
        return 0;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *bin(void)
{
    static char path[512];
    const char *env = getenv("CORRAL_BIN");
    if (env != NULL && *env != '\0')
        return env;
    snprintf(path, sizeof(path), "%s/build/corral", harness_repo_root());
    return path;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    REQUIRE(fp != NULL);
    fputs(text, fp);
    fclose(fp);
}

/* Runs corral [-t] -c conf with stderr+stdout into out; waits up to 10 s (then kills it). Returns the exit code,
 * -2 when it was still running (killed), -1 on error. */
static int run_corral(int test_only, const char *conf, char *out, size_t outsize)
{
    char log[128];
    int st = 0, fd;
    pid_t pid;
    long deadline = harness_now_ms() + 10000;
    snprintf(log, sizeof(log), "%s/run.log", dir);
    out[0] = '\0';
    if ((pid = fork()) == 0) {
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        if (test_only)
            execl(bin(), bin(), "-t", "-c", conf, (char *)NULL);
        else
            execl(bin(), bin(), "-c", conf, (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (harness_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            st = -2;
            break;
        }
        poll(NULL, 0, 10);
    }
    char *text = harness_read_file(log);
    if (text != NULL) {
        snprintf(out, outsize, "%s", text);
        free(text);
    }
    return st == -2 ? -2 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- a second process on the same address ---- */

static const char *pair_yaml = "threads: 2\n"
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

static void test_second_corral_refused(void)
{
    cr_proc_t up, c;
    cr_resp_t r;
    char out[8192], want[64];
    REQUIRE(harness_start_pair(&up, &c, pair_yaml) == 0);
    /* the same config again: same listen and admin addresses */
    CU_ASSERT_EQUAL(run_corral(0, c.conf_path, out, sizeof(out)), 1);
    snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%d: address already in use", c.port);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    if (strstr(out, want) == NULL)
        fprintf(stderr, "\nsecond corral said: %s\n", out);
    /* the first one still has the address and serves, every time (no second cache taking a share) */
    for (int i = 0; i != 20; ++i) {
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/c/second"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/c/second"), 1);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &c), 0);
}

/* After a stop, connections closed by corral linger in TIME_WAIT on its port: a restart on the same address must
 * still start (the probe sets SO_REUSEADDR, so only a listening socket counts as "in use"). */
static void test_restart_after_time_wait(void)
{
    cr_proc_t up, c;
    int st = 0;
    pid_t pid;
    REQUIRE(harness_start_pair(&up, &c, pair_yaml) == 0);
    for (int i = 0; i != 5; ++i) { /* HTTP/1.0: corral closes first, so the TIME_WAIT is on its side */
        int fd = harness_connect(c.port);
        char buf[4096];
        static const char req[] = "GET /tw HTTP/1.0\r\n\r\n";
        REQUIRE(fd >= 0);
        CU_ASSERT(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) > 0);
        for (long deadline = harness_now_ms() + 3000; harness_now_ms() < deadline;) {
            struct pollfd pfd = {fd, POLLIN, 0};
            if (poll(&pfd, 1, 50) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
                break;
        }
        close(fd);
    }
    CU_ASSERT_EQUAL(harness_stop(&c), 0);
    if ((pid = fork()) == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin(), bin(), "-c", c.conf_path, (char *)NULL);
        _exit(127);
    }
    REQUIRE(pid > 0);
    CU_ASSERT_EQUAL(harness_wait_port(c.port, 10000), 0);
    CU_ASSERT_EQUAL(waitpid(pid, &st, WNOHANG), 0); /* still running: it did not refuse */
    kill(pid, SIGTERM);
    for (int i = 0; i != 500 && waitpid(pid, &st, WNOHANG) == 0; ++i)
        poll(NULL, 0, 10);
    if (kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    harness_stop(&up);
}

static void test_reuseport_holder_refused(void)
{
    int on = 1, port = harness_free_port(), fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {0};
    char conf[128], yaml[512], out[8192], want[64];
    REQUIRE(port > 0 && fd >= 0);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == 0);
    REQUIRE(bind(fd, (void *)&sin, sizeof(sin)) == 0 && listen(fd, 8) == 0);
    snprintf(conf, sizeof(conf), "%s/holder.yaml", dir);
    snprintf(yaml, sizeof(yaml), "threads: 1\nlisten:\n  - address: 127.0.0.1:%d\nupstream: { url: 'http://127.0.0.1:1' }\n", port);
    write_text(conf, yaml);
    CU_ASSERT_EQUAL(run_corral(0, conf, out, sizeof(out)), 1);
    snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%d: address already in use", port);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    close(fd);
}

/* ---- -t checks what start-up checks ---- */

/* Writes a config around `admin_and_tls` (listen 127.0.0.1 on free ports) to dir/name.yaml; returns its path. */
static const char *conf_with(const char *name, const char *tls, const char *admin)
{
    static char path[128];
    char yaml[2048];
    int p1 = harness_free_port(), p2 = harness_free_port(), p3 = harness_free_port();
    snprintf(path, sizeof(path), "%s/%s.yaml", dir, name);
    snprintf(yaml, sizeof(yaml),
             "threads: 1\n"
             "listen:\n"
             "  - address: 127.0.0.1:%d\n"
             "  - address: 127.0.0.1:%d\n"
             "%s"
             "upstream: { url: 'http://127.0.0.1:1' }\n"
             "admin:\n"
             "  address: 127.0.0.1:%d\n"
             "%s",
             p1, p2, tls, p3, admin);
    write_text(path, yaml);
    return path;
}

/* -t and start-up both exit 1 with `needle` in the output, at path:line:col. */
static void expect_both_fail(const char *conf, const char *where, const char *needle)
{
    char out_t[4096], out_run[4096], prefix[256];
    snprintf(prefix, sizeof(prefix), "%s:%s: %s", conf, where, needle);
    CU_ASSERT_EQUAL(run_corral(1, conf, out_t, sizeof(out_t)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_t, prefix));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_t, "test failed"));
    CU_ASSERT_EQUAL(run_corral(0, conf, out_run, sizeof(out_run)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_run, prefix));
    if (strstr(out_t, prefix) == NULL || strstr(out_run, prefix) == NULL)
        fprintf(stderr, "\nwanted %s\n -t: %s\n run: %s\n", prefix, out_t, out_run);
}

static void test_check_admin_token(void)
{
    char admin[256], empty[128], out[4096];
    snprintf(empty, sizeof(empty), "%s/empty-token", dir);
    write_text(empty, "\n");
    snprintf(admin, sizeof(admin), "  token_file: %s/no-such-token\n", dir);
    expect_both_fail(conf_with("tok-missing", "", admin), "8:15", "admin.token_file: cannot read");
    snprintf(admin, sizeof(admin), "  token_file: %s\n", empty);
    expect_both_fail(conf_with("tok-empty", "", admin), "8:15", "admin.token_file:");
    unsetenv("CORRAL_E2E_UNSET_TOKEN");
    expect_both_fail(conf_with("tok-env", "", "  token_env: CORRAL_E2E_UNSET_TOKEN\n"), "8:14",
                     "admin.token_env: the environment variable CORRAL_E2E_UNSET_TOKEN is not set");
    /* and a good token file passes -t */
    write_text(empty, "tok\n");
    snprintf(admin, sizeof(admin), "  token_file: %s\n", empty);
    CU_ASSERT_EQUAL(run_corral(1, conf_with("tok-ok", "", admin), out, sizeof(out)), 0);
}

static int make_cert(const char *name)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=corral-e2e "
             "-keyout %s/%s.key -out %s/%s.crt >/dev/null 2>&1",
             dir, name, dir, name);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_check_tls(void)
{
    char tls[512], out[4096];
    REQUIRE(make_cert("a") == 0 && make_cert("b") == 0);
    snprintf(tls, sizeof(tls), "    tls:\n      certificate: %s/a.crt\n      key: %s/a.key\n", dir, dir);
    CU_ASSERT_EQUAL(run_corral(1, conf_with("tls-ok", tls, ""), out, sizeof(out)), 0);
    snprintf(tls, sizeof(tls), "    tls:\n      certificate: %s/none.crt\n      key: %s/a.key\n", dir, dir);
    expect_both_fail(conf_with("tls-nocert", tls, ""), "6:20", "listen[1].tls.certificate: cannot read");
    snprintf(tls, sizeof(tls), "    tls:\n      certificate: %s/a.crt\n      key: %s/none.key\n", dir, dir);
    expect_both_fail(conf_with("tls-nokey", tls, ""), "7:12", "listen[1].tls.key: cannot read");
    snprintf(tls, sizeof(tls), "    tls:\n      certificate: %s/a.crt\n      key: %s/b.key\n", dir, dir);
    expect_both_fail(conf_with("tls-mismatch", tls, ""), "7:12", "listen[1].tls.key:");
    CU_ASSERT_EQUAL(run_corral(1, conf_with("tls-mismatch2", tls, ""), out, sizeof(out)), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "does not match the certificate"));
}

/* ---- the log ---- */

/* 1 when every line of text starts like one of corral's records ("2026-12-01T20:32:39.285Z [info] "). */
static int every_line_is_a_record(const char *text, int *lines)
{
    const char *p = text;
    *lines = 0;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        /* a line starting with '{' is the access log's (stdout; test_accesslog.c checks its JSON): no control byte either */
        if (p[0] != '{' && (len < 30 || p[4] != '-' || p[10] != 'T' || p[23] != 'Z' || p[24] != ' ' || p[25] != '[')) {
            fprintf(stderr, "\nnot a log record: %.*s\n", (int)(len < 200 ? len : 200), p);
            return 0;
        }
        for (size_t i = 0; i != len; ++i) {
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
                fprintf(stderr, "\ncontrol byte in a log record: %.*s\n", (int)(len < 200 ? len : 200), p);
                return 0;
            }
        }
        ++*lines;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return 1;
}

static void raw_send(int port, const char *req)
{
    int fd = harness_connect(port);
    char buf[4096];
    long deadline = harness_now_ms() + 3000;
    if (fd < 0)
        return;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
        close(fd);
        return;
    }
    while (harness_now_ms() < deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
            break;
    }
    close(fd);
}

static void test_log_lines_are_records(void)
{
    cr_proc_t up, c;
    cr_resp_t r;
    char *log;
    int lines;
    REQUIRE(harness_start_pair(&up, &c, pair_yaml) == 0);
    /* a rejected request is logged with its request line: a control byte, DEL, invalid UTF-8 and a CR in it */
    raw_send(c.port, "GET /log/x\x01\x7f\xff HTTP/1.1\r\nHost: a\r\nAuthorization: secret-credential\r\n\r\n");
    raw_send(c.port, "GET /log/y\r2026-01-01T00:00:00.000Z [error] forged HTTP/1.1\r\nHost: a\r\n\r\n");
    /* an upstream error while filling a cache key (the key has internal newlines) */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/c/logkey?fail=reset"), NULL), 0);
    CU_ASSERT(r.status >= 500);
    resp_free(&r);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &c), 0);
    REQUIRE((log = harness_read_file(c.log_path)) != NULL);
    CU_ASSERT_TRUE(every_line_is_a_record(log, &lines));
    CU_ASSERT(lines >= 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "client request rejected (400)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "GET /log/x\\x01\\x7f\\xff HTTP/1.1\\x0d\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "GET /log/y\\x0d2026-01-01T00:00:00.000Z [error] forged"));
    CU_ASSERT_PTR_NULL(strstr(log, "secret-credential")); /* fields are never logged */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "while filling 127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\\x0a/c/logkey"));
    free(log);
}

/* ---- GET /v1/cache shows keys readably ---- */

static const char *vary_yaml = "threads: 1\n"
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
                               "    key: { headers: [accept-language] }\n";

static void test_inspect_readable(void)
{
    cr_proc_t up, c;
    cr_resp_t r;
    char url[256], want[128];
    static const char *const lang[] = {"Accept-Language: de", NULL};
    REQUIRE(harness_start_pair(&up, &c, vary_yaml) == 0);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&c, "/c/insp?b=2&a=1&vary=accept-language"), lang), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/cache?key=/c/insp", c.admin_port);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url, NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    snprintf(want, sizeof(want), "\"key\":\"127.0.0.1:%d | /c/insp?a=1&b=2&vary=accept-language | accept-language:de\"", c.port);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, want));
    if (strstr(r.body, want) == NULL)
        fprintf(stderr, "\nwanted %s in: %s\n", want, r.body);
    snprintf(want, sizeof(want), "\"authority\":\"127.0.0.1:%d\"", c.port);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"uri\":\"/c/insp?a=1&b=2&vary=accept-language\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"accept-language\":\"de\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"variant\":\"accept-language:de\""));
    CU_ASSERT_PTR_NULL(strstr(r.body, "\\n"));
    if (strstr(r.body, "\\n") != NULL || strstr(r.body, "\"uri\"") == NULL)
        fprintf(stderr, "\ninspect: %s\n", r.body);
    resp_free(&r);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &c), 0);
}

/* ---- a stop signal at any moment of start-up ---- */

/* Threads of a process (entries of /proc/PID/task), or 0. */
static int task_count(pid_t pid)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    int n = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* SIGTERM at 0..39 ms after exec (even rounds) or as soon as the first worker thread exists (odd rounds), through every stage of start-up (re-exec for huge pages, config, listeners, the
 * workers' loops): corral either had not blocked the signal yet (killed by it) or drains and exits 0; it never
 * crashes (a signal before every worker had registered its wake receiver used to abort it). */
static void test_sigterm_during_startup(void)
{
    char conf[128], yaml[512];
    int round, crashes = 0, clean = 0;
    snprintf(conf, sizeof(conf), "%s/early-term.yaml", dir);
    for (round = 0; round != 40; ++round) {
        int st = 0;
        long deadline;
        pid_t pid;
        snprintf(yaml, sizeof(yaml),
                 "threads: 2\nlisten:\n  - address: 127.0.0.1:%d\nupstream:\n  url: http://127.0.0.1:1\n"
                 "admin:\n  address: 127.0.0.1:%d\n",
                 harness_free_port(), harness_free_port());
        write_text(conf, yaml);
        if ((pid = fork()) == 0) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            dup2(fd, 2);
            execl(bin(), bin(), "-c", conf, (char *)NULL);
            _exit(127);
        }
        REQUIRE(pid > 0);
        if (round % 2 == 0) {
            poll(NULL, 0, round * (harness_under_tsan() ? 20 : 1)); /* an arbitrary moment of start-up (TSan's takes
                                                                          hundreds of ms) */
        } else {
            /* the moment the first worker thread exists: before it can have registered its wake receiver */
            long until = harness_now_ms() + 5000;
            while (task_count(pid) < 2 && harness_now_ms() < until)
                ;
        }
        kill(pid, SIGTERM);
        deadline = harness_now_ms() + 10000;
        while (waitpid(pid, &st, WNOHANG) == 0) {
            if (harness_now_ms() > deadline) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                break;
            }
            poll(NULL, 0, 5);
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ++clean;
        else if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM)) {
            ++crashes;
            fprintf(stderr, "\n  round %d: status %#x\n", round, st);
        }
    }
    CU_ASSERT_EQUAL(crashes, 0);
    CU_ASSERT(clean > 0); /* the later rounds reached the drain */
}

void cr_e2e_register_operations(void)
{
    CU_pSuite s = CU_add_suite("operations", suite_init, suite_cleanup);
    CU_add_test(s, "a second corral on a held address exits 1 naming it; the first keeps serving", test_second_corral_refused);
    CU_add_test(s, "an address held by another process with SO_REUSEPORT is refused", test_reuseport_holder_refused);
    CU_add_test(s, "a restart on the same address right after a stop starts (TIME_WAIT is not in use)", test_restart_after_time_wait);
    CU_add_test(s, "-t and start-up: admin token file missing or empty, token_env unset", test_check_admin_token);
    CU_add_test(s, "-t and start-up: TLS files missing, key not the certificate's", test_check_tls);
    CU_add_test(s, "every log line is one record (control bytes and key newlines escaped)", test_log_lines_are_records);
    CU_add_test(s, "GET /v1/cache shows keys on one line and as fields", test_inspect_readable);
    CU_add_test(s, "SIGTERM at any moment of start-up: killed or a clean drain, never a crash", test_sigterm_during_startup);
}
