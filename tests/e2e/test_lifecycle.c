/*
 * test_lifecycle.c: end-to-end tests of readiness, reload and drain (issue 14): the real corral binary, the real test
 * upstream, h2load and libcurl as clients.
 *   - reload: 20 reloads (SIGHUP and POST /v1/reload, alternating; changing a route's TTL and adding a route) under
 *     continuous h2load traffic lose no request; the new rules apply; what was cached before is still a hit. A
 *     broken file (YAML syntax, a bad value) is refused with its file:line:col (answer and log) and the old config
 *     keeps serving; a restart-only change (threads) is refused naming the key. Listeners: an added one is opened by
 *     every thread, a removed one closed, an address in use fails the reload, an unchanged one keeps its
 *     connections.
 *   - drain: SIGTERM with slow requests in flight answers every one 200, refuses new connections, answers /readyz 503
 *     on a new admin connection during the drain and exits 0; a background revalidation in flight is waited for; with
 *     a short drain_timeout and a request slower than it, the process exits within drain_timeout plus a margin.
 *   - readyz: 200 when ready; with upstream.health, 503 after unhealthy_after failed checks (a 503 from the check
 *     path, then the upstream stopped) and 200 again after healthy_after good ones.
 * Every process is started and stopped by PID; waits are bounded polls (the only fixed wait is for a 1 s TTL to pass).
 * Timing assertions are bounds that a slow machine only makes easier to meet (lower bounds), or generous margins.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static cr_proc_t up, corral;

/* The reload suite's config: route /lc/ttl's ttl and whether /lc/new exists vary. */
static void reload_conf(char *buf, size_t size, const char *threads, const char *ttl, int with_new, const char *extra)
{
    snprintf(buf, size,
             "threads: %s\n"
             "listen:\n"
             "  - address: 127.0.0.1:${PORT}\n"
             "upstream:\n"
             "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
             "  max_connections: 64\n"
             "admin:\n"
             "  address: 127.0.0.1:${ADMIN_PORT}\n"
             "  token_env: LC_ADMIN_TOKEN\n"
             "routes:\n"
             "  - match: { prefix: /lc/hot }\n"
             "    ttl: 60s\n"
             "  - match: { prefix: /lc/ttl }\n"
             "    ttl: %s\n"
             "%s"
             "  - match: { prefix: /lc/slow }\n"
             "    cache: false\n"
             "%s",
             threads, ttl, with_new ? "  - match: { prefix: /lc/new }\n    ttl: 60s\n" : "", extra);
}

/* Writes tmpl (placeholders as the harness substitutes them, with c's and u's ports) over c's config file, through a
 * rename so that a reload never reads half a file. */
static void write_conf(const cr_proc_t *c, const cr_proc_t *u, const char *tmpl)
{
    char out[8192], tmp[300], num[16];
    size_t o = 0;
    const char *s = tmpl;
    FILE *fp;

    while (*s != '\0' && o < sizeof(out) - 16) {
        const char *val = NULL;
        size_t skip = 0;
        if (strncmp(s, "${PORT}", 7) == 0)
            snprintf(num, sizeof(num), "%d", c->port), val = num, skip = 7;
        else if (strncmp(s, "${ADMIN_PORT}", 13) == 0)
            snprintf(num, sizeof(num), "%d", c->admin_port), val = num, skip = 13;
        else if (strncmp(s, "${UPSTREAM_PORT}", 16) == 0)
            snprintf(num, sizeof(num), "%d", u->port), val = num, skip = 16;
        if (val != NULL) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", val);
            s += skip;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    snprintf(tmp, sizeof(tmp), "%s.new", c->conf_path);
    fp = fopen(tmp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(out, fp);
    fclose(fp);
    CU_ASSERT_EQUAL(rename(tmp, c->conf_path), 0);
}

#define LC_TOKEN "lc-secret-token"

/* POST /v1/reload (with the reload suite's token, and a body that must change nothing); returns the status, the body
 * in body (bounded). */
static long post_reload(const cr_proc_t *c, char *body, size_t bodysize)
{
    static const char *const auth[] = {"Authorization: Bearer " LC_TOKEN, "Content-Type: application/json", NULL};
    cr_resp_t r;
    long status = -1;
    if (http_request(&r, CR_H1, "POST", admin_url_of(c, "/v1/reload"), auth, "{\"listen\": [1,2,3], \"threads\": 9}",
                     strlen("{\"listen\": [1,2,3], \"threads\": 9}")) == 0)
        status = r.status;
    if (body != NULL)
        snprintf(body, bodysize, "%s", r.body != NULL ? r.body : "");
    resp_free(&r);
    return status;
}

/* Polls (10 ms steps) until needle occurs at least n times in path; returns 0, or -1 after timeout_ms. */
static int wait_log(const char *path, const char *needle, int n, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms * harness_time_scale();
    while (harness_count_in_file(path, needle) < n) {
        if (harness_now_ms() >= deadline)
            return -1;
        usleep(10000);
    }
    return 0;
}

/* GET path twice; 1 when the second is a hit. The hit's ttl= goes to *ttl (or -1). */
static int second_is_hit(const cr_proc_t *c, const char *path, long *ttl)
{
    cr_resp_t r;
    char cs[256];
    const char *t;
    int hit = 0;
    harness_get_hit(c, path, NULL, NULL, 0);
    *ttl = -1;
    if (http_get(&r, CR_H1, url_of(c, path), NULL) == 0 && resp_header(&r, "cache-status", cs, sizeof(cs)) != NULL) {
        hit = strstr(cs, "; hit") != NULL;
        if ((t = strstr(cs, "ttl=")) != NULL)
            *ttl = atol(t + 4);
    }
    resp_free(&r);
    return hit;
}

/* ---- h2load in a thread ---- */

typedef struct {
    char cmd[1024];
    long total, succeeded, failed, errored, s2xx;
    volatile int done;
} load_t;

static void *load_main(void *arg)
{
    load_t *l = arg;
    char line[512];
    FILE *fp;
    l->total = l->succeeded = l->failed = l->errored = l->s2xx = -1;
    if ((fp = popen(l->cmd, "r")) != NULL) {
        while (fgets(line, sizeof(line), fp) != NULL) {
            long total, started, done, succ, failed, errored;
            if (sscanf(line, "requests: %ld total, %ld started, %ld done, %ld succeeded, %ld failed, %ld errored", &total,
                       &started, &done, &succ, &failed, &errored) == 6) {
                l->total = total;
                l->succeeded = succ;
                l->failed = failed;
                l->errored = errored;
            }
            if (strncmp(line, "status codes: ", 14) == 0)
                l->s2xx = atol(line + 14);
        }
        pclose(fp);
    }
    __atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- reload suite ---- */

static int reload_init(void)
{
    char conf[4096];
    setenv("LC_ADMIN_TOKEN", LC_TOKEN, 1); /* corral inherits it */
    reload_conf(conf, sizeof(conf), "2", "60s", 0, "");
    return harness_start_pair(&up, &corral, conf);
}

static int reload_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

static void test_reloads_under_load(void)
{
    char conf[4096], body[2048], needle[64];
    pthread_t th;
    load_t load;
    long ttl, hot_fills;
    int i, still_loading;

    CU_ASSERT_EQUAL(second_is_hit(&corral, "/lc/hot/1", &ttl), 1);
    hot_fills = upstream_count(&up, "/lc/hot/1");
    CU_ASSERT_EQUAL(hot_fills, 1);
    CU_ASSERT_EQUAL(second_is_hit(&corral, "/lc/new/before", &ttl), 0); /* no such route yet: passed uncached */

    memset(&load, 0, sizeof(load));
    snprintf(load.cmd, sizeof(load.cmd), "timeout 120 h2load -n 6000 -c 8 -m 1 -t 1 '%s' '%s' 2>&1",
             url_of(&corral, "/lc/hot/1"), url_of(&corral, "/lc/slow/x?delay=5"));
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, load_main, &load), 0);
    for (i = 0; i != 1000 && upstream_count(&up, "/lc/slow/x") < 20; ++i)
        usleep(10000);
    CU_ASSERT(upstream_count(&up, "/lc/slow/x") >= 20);

    for (i = 0; i != 20; ++i) {
        reload_conf(conf, sizeof(conf), "2", i % 2 == 0 ? "45s" : "30s", i >= 10, "");
        write_conf(&corral, &up, conf);
        if (i % 2 == 0) {
            CU_ASSERT_EQUAL(harness_kill(&corral, SIGHUP), 0);
        } else {
            long st = post_reload(&corral, body, sizeof(body));
            CU_ASSERT_EQUAL(st, 200);
            CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"reloaded\":true"));
        }
        snprintf(needle, sizeof(needle), "loaded: generation %d,", i + 2);
        CU_ASSERT_EQUAL(wait_log(corral.log_path, needle, 1, 5000), 0); /* one at a time: each is in place */
        usleep(20000);
    }
    still_loading = !__atomic_load_n(&load.done, __ATOMIC_ACQUIRE);
    CU_ASSERT(still_loading); /* the reloads happened under load */
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(load.total, 6000);
    CU_ASSERT_EQUAL(load.succeeded, 6000);
    CU_ASSERT_EQUAL(load.failed, 0);
    CU_ASSERT_EQUAL(load.errored, 0);
    CU_ASSERT_EQUAL(load.s2xx, 6000);

    /* the last generation's rules: /lc/new is cached, /lc/ttl's TTL is 30s; the cache was kept */
    CU_ASSERT_EQUAL(second_is_hit(&corral, "/lc/new/after", &ttl), 1);
    CU_ASSERT_EQUAL(second_is_hit(&corral, "/lc/ttl/fresh", &ttl), 1);
    CU_ASSERT(ttl >= 0 && ttl <= 30);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/lc/hot/1", NULL, NULL, 0), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lc/hot/1"), hot_fills);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "reload (SIGHUP): "), 10);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "reload (POST /v1/reload): "), 10);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "[error]"), 0);
}

/* The message's "FILE:LINE:COL: " prefix, FILE being the config's path; 1 when it is there. */
static int has_position(const char *msg, const char *path)
{
    const char *p = strstr(msg, path);
    int line = 0, col = 0;
    return p != NULL && sscanf(p + strlen(path), ":%d:%d:", &line, &col) == 2 && line > 0 && col > 0;
}

static void test_broken_configs_refused(void)
{
    char good[4096], conf[4096], body[2048];
    long ttl;
    int before;

    reload_conf(good, sizeof(good), "2", "60s", 1, "");
    write_conf(&corral, &up, good);
    CU_ASSERT_EQUAL(post_reload(&corral, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(second_is_hit(&corral, "/lc/new/kept", &ttl), 1);

    /* YAML syntax error */
    reload_conf(conf, sizeof(conf), "2", "60s", 0, "  - match: { prefix: /lc/broken\n");
    write_conf(&corral, &up, conf);
    CU_ASSERT_EQUAL(post_reload(&corral, body, sizeof(body)), 422);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"error\":\"invalid_config\""));
    CU_ASSERT(has_position(body, corral.conf_path));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "YAML"));
    CU_ASSERT_EQUAL(wait_log(corral.log_path, "reload (POST /v1/reload) failed", 1, 2000), 0);
    /* the old generation (with /lc/new) keeps serving */
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/lc/new/kept", NULL, NULL, 0), 1);

    /* a bad value, also through SIGHUP */
    reload_conf(conf, sizeof(conf), "2", "banana", 0, "");
    write_conf(&corral, &up, conf);
    CU_ASSERT_EQUAL(post_reload(&corral, body, sizeof(body)), 422);
    CU_ASSERT(has_position(body, corral.conf_path));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "ttl"));
    before = harness_count_in_file(corral.log_path, "reload (SIGHUP) failed");
    CU_ASSERT_EQUAL(harness_kill(&corral, SIGHUP), 0);
    CU_ASSERT_EQUAL(wait_log(corral.log_path, "reload (SIGHUP) failed", before + 1, 2000), 0);
    {
        char *log = harness_read_file(corral.log_path), *p = log != NULL ? strstr(log, "reload (SIGHUP) failed") : NULL;
        CU_ASSERT(p != NULL && has_position(p, corral.conf_path));
        free(log);
    }
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/lc/new/kept", NULL, NULL, 0), 1);

    /* restart-only keys: named */
    reload_conf(conf, sizeof(conf), "3", "60s", 1, "");
    write_conf(&corral, &up, conf);
    CU_ASSERT_EQUAL(post_reload(&corral, body, sizeof(body)), 422);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"error\":\"restart_required\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "threads"));
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/lc/new/kept", NULL, NULL, 0), 1);

    /* only POST, only with the token; /readyz needs none */
    {
        static const char *const auth[] = {"Authorization: Bearer " LC_TOKEN, NULL};
        cr_resp_t r;
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&corral, "/v1/reload"), auth), 0);
        CU_ASSERT_EQUAL(r.status, 405);
        resp_free(&r);
        CU_ASSERT_EQUAL(http_request(&r, CR_H1, "POST", admin_url_of(&corral, "/v1/reload"), NULL, "", 0), 0);
        CU_ASSERT_EQUAL(r.status, 401);
        resp_free(&r);
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&corral, "/readyz"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    write_conf(&corral, &up, good);
    CU_ASSERT_EQUAL(post_reload(&corral, body, sizeof(body)), 200);
}

static void *poster_main(void *arg)
{
    long *ok = arg;
    int i;
    for (i = 0; i != 3; ++i)
        if (post_reload(&corral, NULL, 0) == 200)
            ++*ok;
    return NULL;
}

/* Writes the reload config with `extra` routes and reloads it through POST /v1/reload; 1 when it was taken. */
static int reload_with(const char *extra)
{
    char conf[4096], body[2048];
    reload_conf(conf, sizeof(conf), "2", "60s", 1, extra);
    write_conf(&corral, &up, conf);
    return post_reload(&corral, body, sizeof(body)) == 200 && strstr(body, "\"reloaded\":true") != NULL;
}

/* A reload that changes a route's key or its caching applies at once to a URL both threads answered just before:
 * the per-thread memo of routes and keys (serve/key_memo.h) is per generation, so no thread keeps the old key. */
static void test_reload_changes_key_of_recent_url(void)
{
    static const char *const path = "/lc/key/a?x=1&y=2";
    long fills;
    int i, hits;

    CU_ASSERT_TRUE_FATAL(reload_with("  - match: { prefix: /lc/key }\n    ttl: 60s\n"));
    for (i = 0, hits = 0; i != 8; ++i) /* a new connection each: both threads answer it and memoize it */
        hits += harness_get_hit(&corral, path, NULL, NULL, 0) == 1;
    CU_ASSERT_EQUAL(hits, 7);
    fills = upstream_count(&up, "/lc/key/a");
    CU_ASSERT_EQUAL(fills, 1);

    /* keyed on x alone: another key, so one miss and its fill, then hits, shared by any y */
    CU_ASSERT_TRUE_FATAL(reload_with("  - match: { prefix: /lc/key }\n    ttl: 60s\n    key: { query: [x] }\n"));
    CU_ASSERT_EQUAL(harness_get_hit(&corral, path, NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lc/key/a"), fills + 1);
    for (i = 0, hits = 0; i != 8; ++i)
        hits += harness_get_hit(&corral, path, NULL, NULL, 0) == 1;
    CU_ASSERT_EQUAL(hits, 8);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/lc/key/a?y=3&x=1", NULL, NULL, 0), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lc/key/a"), fills + 1);

    /* not cached any more: every request goes upstream */
    CU_ASSERT_TRUE_FATAL(reload_with("  - match: { prefix: /lc/key }\n    cache: false\n"));
    for (i = 0, hits = 0; i != 4; ++i)
        hits += harness_get_hit(&corral, path, NULL, NULL, 0) == 1;
    CU_ASSERT_EQUAL(hits, 0);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lc/key/a"), fills + 5);
}

/* Four clients POST three reloads each while SIGHUPs come: one at a time, each its own generation. */
static void test_concurrent_reloads_serialized(void)
{
    pthread_t th[4];
    long ok[4] = {0, 0, 0, 0};
    char needle[64];
    int base = harness_count_in_file(corral.log_path, "loaded: generation ") + 1, i, k;
    int errors = harness_count_in_file(corral.log_path, "[error]");

    CU_ASSERT_FATAL(base > 0);
    for (i = 0; i != 4; ++i)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, poster_main, &ok[i]), 0);
    for (i = 0; i != 4; ++i) {
        CU_ASSERT_EQUAL(harness_kill(&corral, SIGHUP), 0);
        usleep(5000);
    }
    for (i = 0; i != 4; ++i) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(ok[i], 3);
    }
    /* SIGHUPs that came while one was pending merge (signals do not queue): at least one ran, at most four */
    snprintf(needle, sizeof(needle), "loaded: generation %d,", base + 12);
    CU_ASSERT_EQUAL(wait_log(corral.log_path, needle, 1, 5000), 0);
    for (k = base + 1; k <= base + 12; ++k) {
        snprintf(needle, sizeof(needle), "loaded: generation %d,", k);
        CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, needle), 1);
    }
    usleep(100000);
    CU_ASSERT(harness_count_in_file(corral.log_path, "loaded: generation ") >= base - 1 + 13);
    CU_ASSERT(harness_count_in_file(corral.log_path, "loaded: generation ") <= base - 1 + 16);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "[error]"), errors);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/lc/hot/1", NULL, NULL, 0), 1);
}

/* The reload config with one more listener on port p after the first. */
static void conf_with_listener(char *buf, size_t size, int p)
{
    char conf[4096];
    char *at;
    reload_conf(conf, sizeof(conf), "2", "60s", 1, "");
    at = strstr(conf, "upstream:\n");
    snprintf(buf, size, "%.*s  - address: 127.0.0.1:%d\n%s", (int)(at - conf), conf, p, at);
}

/* Polls until connecting to port succeeds (want 1) or is refused (want 0); returns 0 when it did, -1 after 3 s. */
static int wait_connectable(int port, int want)
{
    long deadline = harness_now_ms() + 3000L * harness_time_scale();
    for (;;) {
        int fd = harness_connect(port);
        if (fd != -1)
            close(fd);
        if ((fd != -1) == want)
            return 0;
        if (harness_now_ms() >= deadline)
            return -1;
        usleep(10000);
    }
}

/* GET on an already open connection; 1 when it is answered 200. */
static int raw_get_ok(int fd, const char *path)
{
    char req[256], buf[8192];
    size_t got = 0;
    long deadline = harness_now_ms() + 5000;
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        return 0;
    /* the whole response (head and Content-Length body), so the next request on the connection reads its own */
    while (got < sizeof(buf) - 1 && harness_now_ms() < deadline) {
        const char *end, *cl;
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL &&
            ((cl = strcasestr(buf, "\r\ncontent-length:")) == NULL || cl > end ||
             got >= (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10)))
            break;
    }
    buf[got] = '\0';
    return strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

static void test_listeners_reload(void)
{
    char conf[4096], body[2048];
    cr_resp_t r;
    int p2 = harness_free_port(), kept;

    CU_ASSERT_FATAL(p2 > 0);
    kept = harness_connect(corral.port); /* a connection on the listener that stays */
    CU_ASSERT_FATAL(kept != -1);
    CU_ASSERT_EQUAL(raw_get_ok(kept, "/lc/hot/1"), 1);
    CU_ASSERT_EQUAL(harness_connect(p2), -1);

    /* added: opened by every thread, serving */
    conf_with_listener(conf, sizeof(conf), p2);
    write_conf(&corral, &up, conf);
    CU_ASSERT_EQUAL(post_reload(&corral, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(wait_connectable(p2, 1), 0);
    {
        char url[128];
        int i, ok = 0;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/lc/hot/1", p2);
        for (i = 0; i != 8; ++i) { /* new connections: the kernel spreads them over the threads' sockets */
            if (http_get(&r, CR_H1, url, NULL) == 0 && r.status == 200)
                ++ok;
            resp_free(&r);
        }
        CU_ASSERT_EQUAL(ok, 8);
    }
    CU_ASSERT_EQUAL(raw_get_ok(kept, "/lc/hot/1"), 1);

    /* an address in use (by the upstream) fails the reload; nothing changes */
    {
        char two[4096], *at;
        conf_with_listener(two, sizeof(two), p2);
        at = strstr(two, "upstream:\n");
        snprintf(conf, sizeof(conf), "%.*s  - address: 127.0.0.1:%d\n%s", (int)(at - two), two, up.port, at);
    }
    write_conf(&corral, &up, conf);
    CU_ASSERT_EQUAL(post_reload(&corral, body, sizeof(body)), 409);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "in use"));
    CU_ASSERT_EQUAL(wait_connectable(p2, 1), 0);
    CU_ASSERT_EQUAL(upstream_total(&up) >= 0, 1); /* the upstream kept its port */

    /* removed: closed by every thread */
    reload_conf(conf, sizeof(conf), "2", "60s", 1, "");
    write_conf(&corral, &up, conf);
    CU_ASSERT_EQUAL(post_reload(&corral, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(wait_connectable(p2, 0), 0);
    CU_ASSERT_EQUAL(raw_get_ok(kept, "/lc/hot/1"), 1); /* the unchanged listener's connection lives on */
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/lc/hot/1", NULL, NULL, 0), 1);
    close(kept);
}

/* ---- drain suite (each test starts its own pair) ---- */

static const char *drain_template = "threads: 2\n"
                                    "listen:\n"
                                    "  - address: 127.0.0.1:${PORT}\n"
                                    "upstream:\n"
                                    "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                    "admin:\n"
                                    "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                    "drain_timeout: %s\n"
                                    "routes:\n"
                                    "  - match: { prefix: /lc/swr }\n"
                                    "    ttl: 1s\n"
                                    "    stale_while_revalidate: 60s\n"
                                    "  - match: { prefix: /lc/slow }\n"
                                    "    cache: false\n";

typedef struct {
    const char *url;
    size_t n;
    cr_resp_t resps[8];
    int failed;
} slow_t;

static void *slow_main(void *arg)
{
    slow_t *s = arg;
    s->failed = http_parallel_get(s->resps, s->n, CR_H1, s->url, NULL, 0);
    return NULL;
}

static void test_sigterm_finishes_in_flight(void)
{
    char conf[2048], body[512];
    slow_t s;
    pthread_t th;
    long deadline, st = -1;
    size_t i;
    int refused = 0;

    snprintf(conf, sizeof(conf), drain_template, "10s");
    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, conf), 0);
    deadline = harness_now_ms() + 5000;
    while ((st = harness_readyz(&corral, body, sizeof(body))) != 200 && harness_now_ms() < deadline) /* "starting" first */
        usleep(10000);
    CU_ASSERT_EQUAL(st, 200);
    memset(&s, 0, sizeof(s));
    s.n = 6;
    s.url = url_of(&corral, "/lc/slow/drain?delay=1000");
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, slow_main, &s), 0);
    for (i = 0; i != 1000 && upstream_count(&up, "/lc/slow/drain") < 6; ++i)
        usleep(10000);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lc/slow/drain"), 6); /* all six in flight */
    CU_ASSERT_EQUAL(harness_kill(&corral, SIGTERM), 0);

    deadline = harness_now_ms() + 2000;
    while (harness_now_ms() < deadline && (st = harness_readyz(&corral, body, sizeof(body))) != 503)
        usleep(10000);
    CU_ASSERT_EQUAL(st, 503); /* a new admin connection during the drain */
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"reason\":\"draining\""));
    while (harness_now_ms() < deadline && !refused) {
        int fd = harness_connect(corral.port);
        if (fd == -1)
            refused = 1;
        else
            close(fd), usleep(10000);
    }
    CU_ASSERT(refused);

    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(s.failed, 0);
    for (i = 0; i != s.n; ++i) {
        CU_ASSERT_EQUAL(s.resps[i].status, 200);
        resp_free(&s.resps[i]);
    }
    CU_ASSERT_EQUAL(harness_wait_exit(&corral, 10000), 0);
    harness_stop(&up);
}

static void test_sigterm_waits_for_background_revalidation(void)
{
    char conf[2048];
    long t0, t_exit;
    int hit;

    snprintf(conf, sizeof(conf), drain_template, "10s");
    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, conf), 0);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/lc/swr/k", NULL, NULL, 0), 0); /* stored */
    usleep(1100000);                                                         /* the 1 s TTL passes */
    CU_ASSERT_EQUAL(upstream_set(&up, "/lc/swr/k", "delay=1500"), 0);
    t0 = harness_now_ms();
    hit = harness_get_hit(&corral, "/lc/swr/k", NULL, NULL, 0); /* stale at once; the refresh runs in background */
    CU_ASSERT(hit >= 0);
    CU_ASSERT(harness_now_ms() - t0 < 1000);
    CU_ASSERT_EQUAL(harness_kill(&corral, SIGTERM), 0);
    CU_ASSERT_EQUAL(harness_wait_exit(&corral, 10000), 0);
    t_exit = harness_now_ms();
    /* the upstream answers the refresh 1.5 s after it arrived (after t0): an exit before that did not wait for it */
    CU_ASSERT(t_exit - t0 >= 1500);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lc/swr/k"), 2);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "still in progress"), 0);
    harness_stop(&up);
}

static void test_short_drain_timeout_bounds_exit(void)
{
    char conf[2048];
    slow_t s;
    pthread_t th;
    long t0, elapsed;
    size_t i;

    snprintf(conf, sizeof(conf), drain_template, "300ms");
    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, conf), 0);
    memset(&s, 0, sizeof(s));
    s.n = 1;
    s.url = url_of(&corral, "/lc/slow/long?delay=6000");
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, slow_main, &s), 0);
    for (i = 0; i != 1000 && upstream_count(&up, "/lc/slow/long") < 1; ++i)
        usleep(10000);
    CU_ASSERT_EQUAL(upstream_count(&up, "/lc/slow/long"), 1);
    t0 = harness_now_ms();
    CU_ASSERT_EQUAL(harness_kill(&corral, SIGTERM), 0);
    CU_ASSERT_EQUAL(harness_wait_exit(&corral, 8000), 0);
    elapsed = harness_now_ms() - t0;
    CU_ASSERT(elapsed >= 300);                                   /* it did drain */
    CU_ASSERT(elapsed < 300 + 2500L * harness_time_scale());    /* within drain_timeout + a margin */
    CU_ASSERT_EQUAL(wait_log(corral.log_path, "still in progress after drain_timeout", 1, 100), 0);
    pthread_join(th, NULL);
    for (i = 0; i != s.n; ++i)
        resp_free(&s.resps[i]);
    harness_stop(&up);
}

/* ---- readyz with upstream.health ---- */

static const char *health_template = "threads: 1\n"
                                     "listen:\n"
                                     "  - address: 127.0.0.1:${PORT}\n"
                                     "upstream:\n"
                                     "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                     "  health: { path: /lc/health, interval: 100ms, timeout: 100ms, unhealthy_after: 3,"
                                     " healthy_after: 2 }\n"
                                     "admin:\n"
                                     "  address: 127.0.0.1:${ADMIN_PORT}\n";

static void test_readyz_follows_upstream_health(void)
{
    char body[512];
    cr_resp_t r;

    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, health_template), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"ready\":true"));

    /* the check path answers 503 */
    CU_ASSERT_EQUAL(upstream_set(&up, "/lc/health", "status=503"), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 503, body, sizeof(body)), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"reason\":\"upstream_unhealthy\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "status 503"));
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "GET /lc/health failed 3 times in a row (status 503): unhealthy"), 1);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, admin_url_of(&corral, "/healthz"), NULL), 0); /* liveness is not readiness */
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_set(&up, "/lc/health", ""), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "GET /lc/health answered 2 times in a row: healthy again"), 1);

    /* the upstream stopped, then back on its port */
    CU_ASSERT_EQUAL(harness_stop(&up), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 503, body, sizeof(body)), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "connect"));
    CU_ASSERT_EQUAL_FATAL(harness_restart_upstream(&up), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "healthy again"), 2);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, ": unhealthy, /readyz answers 503"), 2); /* logged once per change */
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &corral), 0);
}

void cr_e2e_register_lifecycle(void)
{
    CU_pSuite s = CU_add_suite("lifecycle reload", reload_init, reload_cleanup);
    CU_add_test(s, "20 reloads (SIGHUP and POST) under h2load: no failed request, new rules apply, cache kept",
                test_reloads_under_load);
    CU_add_test(s, "a broken config or a restart-only change is refused with file:line:col or the key; old one serves",
                test_broken_configs_refused);
    CU_add_test(s, "concurrent reloads (POSTs and SIGHUPs at once) run one at a time", test_concurrent_reloads_serialized);
    CU_add_test(s, "a reload that changes a route's key or caching applies at once to URLs every thread just answered",
                test_reload_changes_key_of_recent_url);
    CU_add_test(s, "listeners: an added one opens, a removed one closes, an unchanged one keeps its connections",
                test_listeners_reload);
    s = CU_add_suite("lifecycle drain", NULL, NULL);
    CU_add_test(s, "SIGTERM: requests in flight finish 200, new connections refused, /readyz 503, exit 0",
                test_sigterm_finishes_in_flight);
    CU_add_test(s, "SIGTERM waits for a background revalidation", test_sigterm_waits_for_background_revalidation);
    CU_add_test(s, "a short drain_timeout bounds the exit when a request is slower", test_short_drain_timeout_bounds_exit);
    s = CU_add_suite("lifecycle readyz", NULL, NULL);
    CU_add_test(s, "/readyz: 503 after unhealthy_after failed checks, 200 after healthy_after good ones",
                test_readyz_follows_upstream_health);
}
