/*
 * test_status_page.c: end-to-end tests of the admin listener's GET /v1/stats and its status page (GET /), against a
 * real corral (admin token configured) and the test upstream:
 *   - /v1/stats is JSON (parsed with jansson) with every documented field, whose counters moved by exactly what the
 *     test sent (N requests of one path: N requests, N-1 hits, 1 miss, 1 upstream request), its configured routes
 *     (name and match) from the config, an RSS near what /proc says, and a current timestamp;
 *   - /v1/stats needs the token (401 with WWW-Authenticate without it or with a wrong one); / does not, and is
 *     self-contained HTML sent with a Content-Security-Policy that loads nothing from elsewhere;
 *   - hostile methods and paths on the admin port get clear answers (405 / 404 / 401 / 431), never the page or the
 *     figures by mistake;
 *   - with the shared tier (a real memcached) and no token, a loopback client gets /v1/stats with the tier's counters;
 *   - headless Chromium (tests/browser/status_page.mjs, playwright-core driving /usr/bin/chromium) loads the page
 *     while a thread sends load through corral: the charts are drawn and the numbers change between two readings, and
 *     the page's script throws nothing. The script's screenshot is checked to be a PNG (and copied to
 *     $CORRAL_STATUS_SCREENSHOT when that is set: how docs/status-page.png was made).
 * Nothing is skipped: a missing node, Chromium or playwright-core (tools/install-deps.sh installs them) fails the test.
 * Every process started here is stopped by PID (node's process group, and Chromium by the PID the script reports);
 * every loop is bounded in count and time.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tier_util.h"

#define SP_TOKEN "sp-token-42"
#define SP_BROWSER_DEADLINE_MS 150000
#define SP_LOAD_MAX_REQUESTS 200000
#define SP_LOAD_MAX_MS 200000

static const char *yaml = "threads: 2\n"
                          "listen:\n"
                          "  - address: 127.0.0.1:${PORT}\n"
                          "upstream:\n"
                          "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                          "admin:\n"
                          "  address: 127.0.0.1:${ADMIN_PORT}\n"
                          "  token_env: CORRAL_E2E_SP_TOKEN\n"
                          "routes:\n"
                          "  - match: { prefix: /sp/items, methods: [GET, HEAD] }\n"
                          "    ttl: 60s\n"
                          "  - match: { exact: /sp/health }\n"
                          "    cache: false\n"
                          "  - match: { prefix: / }\n"
                          "    ttl: 10s\n";

static cr_proc_t up, corral;

static int suite_init(void)
{
    setenv("CORRAL_E2E_SP_TOKEN", SP_TOKEN, 1);
    return harness_start_pair(&up, &corral, yaml);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* An admin request (HTTP/1.1); token NULL: none. Fills r (resp_free it). Returns the status, or -1. */
static long admin_req(cr_resp_t *r, const char *method, const char *path, const char *token)
{
    char url[512], auth[128];
    const char *headers[2] = {NULL, NULL};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", corral.admin_port, path);
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers[0] = auth;
    }
    if (http_request(r, CR_H1, method, url, headers, NULL, 0) != 0)
        return -1;
    return r->status;
}

/* GET /v1/stats with the token, parsed; NULL (and a failed assertion) when it is not a 200 JSON object. */
static json_t *get_stats(void)
{
    cr_resp_t r;
    json_error_t err;
    json_t *j = NULL;
    char ctype[128];
    if (admin_req(&r, "GET", "/v1/stats", SP_TOKEN) == 200) {
        CU_ASSERT(resp_header(&r, "content-type", ctype, sizeof(ctype)) != NULL && strcmp(ctype, "application/json") == 0);
        j = json_loadb(r.body, r.body_len, 0, &err);
        if (j == NULL)
            fprintf(stderr, "status_page: /v1/stats is not JSON (%s at %d:%d): %.200s\n", err.text, err.line, err.column, r.body);
    }
    CU_ASSERT(j != NULL && json_is_object(j));
    resp_free(&r);
    return j != NULL && json_is_object(j) ? j : NULL;
}

/* An integer at a path of object keys ("counters", "hits", NULL), or -1 when absent or not an integer. */
static long long jint(json_t *j, ...)
{
    va_list ap;
    const char *k;
    va_start(ap, j);
    while (j != NULL && (k = va_arg(ap, const char *)) != NULL)
        j = json_object_get(j, k);
    va_end(ap);
    return json_is_integer(j) ? json_integer_value(j) : -1;
}

/* routes[idx].totals.field of a /v1/stats answer, or -1. */
static long long route_total(json_t *j, size_t idx, const char *field)
{
    json_t *v = json_object_get(json_object_get(json_array_get(json_object_get(j, "routes"), idx), "totals"), field);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* This corral's resident set size from /proc/<pid>/statm, bytes; 0 when unreadable. */
static long long proc_rss(pid_t pid)
{
    char path[64];
    unsigned long long size, resident;
    FILE *fp;
    int n;
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    if ((fp = fopen(path, "r")) == NULL)
        return 0;
    n = fscanf(fp, "%llu %llu", &size, &resident);
    fclose(fp);
    return n == 2 ? (long long)(resident * (unsigned long long)sysconf(_SC_PAGESIZE)) : 0;
}

static void test_stats_json(void)
{
    static const char *const counters[] = {"requests", "hits", "misses", "stale", "passes", "coalesced",
                                           "coalesce_timeouts", "upstream_requests", "upstream_errors"};
    static const char *const objects[] = {"counters", "connections", "upstream", "store", "memory", "reloads"};
    json_t *a, *b, *routes, *r;
    struct timeval tv;
    long long now_ms, rss;
    size_t i;
    long status;
    const int n = 7;

    CU_ASSERT_FATAL((a = get_stats()) != NULL);
    for (i = 0; i != (size_t)n; ++i) {
        CU_ASSERT_EQUAL(harness_get_hit(&corral, "/sp/items/one", &status, NULL, 0), i != 0);
        CU_ASSERT_EQUAL(status, 200);
    }
    CU_ASSERT_FATAL((b = get_stats()) != NULL);

    CU_ASSERT_EQUAL(jint(b, "version", NULL), 1);
    for (i = 0; i != sizeof(objects) / sizeof(objects[0]); ++i)
        CU_ASSERT(json_is_object(json_object_get(b, objects[i])));
    for (i = 0; i != sizeof(counters) / sizeof(counters[0]); ++i)
        CU_ASSERT(jint(b, "counters", counters[i], NULL) >= 0);
    /* exactly what this test sent between the readings (the suite runs alone; nothing else talks to this corral) */
    CU_ASSERT_EQUAL(jint(b, "counters", "requests", NULL) - jint(a, "counters", "requests", NULL), n);
    CU_ASSERT_EQUAL(jint(b, "counters", "hits", NULL) - jint(a, "counters", "hits", NULL), n - 1);
    CU_ASSERT_EQUAL(jint(b, "counters", "misses", NULL) - jint(a, "counters", "misses", NULL), 1);
    CU_ASSERT_EQUAL(jint(b, "counters", "upstream_requests", NULL) - jint(a, "counters", "upstream_requests", NULL), 1);
    CU_ASSERT_EQUAL(jint(b, "store", "objects", NULL) - jint(a, "store", "objects", NULL), 1);
    CU_ASSERT(jint(b, "store", "bytes", NULL) > jint(a, "store", "bytes", NULL));
    CU_ASSERT_EQUAL(jint(b, "store", "bytes", NULL), jint(b, "memory", "store_bytes", NULL));
    CU_ASSERT_EQUAL(jint(b, "store", "limit_bytes", NULL), 256LL << 20); /* cache.memory's default */
    CU_ASSERT(jint(b, "store", "evictions", NULL) == 0);
    CU_ASSERT(jint(b, "upstream", "queued", NULL) >= 0 && jint(b, "upstream", "busy", NULL) == 0);
    /* the upstream latency histogram of /metrics: its count includes this test's one fetch */
    CU_ASSERT(jint(b, "upstream", "latency", "count", NULL) >= 1);
    CU_ASSERT(jint(b, "upstream", "connections_in_use", NULL) >= 0);
    CU_ASSERT(json_is_null(json_object_get(b, "tier")));                              /* no tier configured */
    CU_ASSERT_EQUAL(jint(b, "threads", NULL), 2);
    CU_ASSERT(jint(b, "uptime_ms", NULL) >= jint(a, "uptime_ms", NULL) && jint(b, "uptime_ms", NULL) < 3600 * 1000);
    gettimeofday(&tv, NULL);
    now_ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    CU_ASSERT(llabs(jint(b, "timestamp_ms", NULL) - now_ms) < 60000);
    rss = proc_rss(corral.pid);
    CU_ASSERT(rss > 0 && jint(b, "memory", "rss_bytes", NULL) > rss / 2 && jint(b, "memory", "rss_bytes", NULL) < rss * 2);

    /* the routes of the config, in its order */
    routes = json_object_get(b, "routes");
    CU_ASSERT_FATAL(json_is_array(routes) && json_array_size(routes) == 3);
    CU_ASSERT_EQUAL(jint(b, "routes_total", NULL), 3);
    CU_ASSERT(json_is_false(json_object_get(b, "routes_truncated")));
    r = json_array_get(routes, 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "name")), "prefix:/sp/items GET,HEAD"); /* /metrics' label */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(r, "match"), "prefix")), "/sp/items");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(json_object_get(r, "match"), "methods")), 2);
    CU_ASSERT(json_is_true(json_object_get(r, "cache")));
    /* the route's totals: this test's 7 requests, 6 hits (a request is counted when it ends: a bounded poll) */
    {
        long long hits0 = route_total(a, 0, "hits"), deadline = harness_now_ms() + 3000, hits = 0;
        json_t *c = NULL;
        while (harness_now_ms() < deadline) {
            json_decref(c);
            CU_ASSERT_FATAL((c = get_stats()) != NULL);
            hits = route_total(c, 0, "hits");
            if (hits - hits0 >= n - 1)
                break;
            poll(NULL, 0, 20);
        }
        CU_ASSERT_EQUAL(hits - hits0, n - 1);
        CU_ASSERT(route_total(c, 0, "requests") - route_total(a, 0, "requests") >= n - 1);
        json_decref(c);
    }
    r = json_array_get(routes, 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(r, "match"), "exact")), "/sp/health");
    CU_ASSERT(json_object_get(json_object_get(r, "match"), "methods") == NULL); /* all methods */
    CU_ASSERT(json_is_false(json_object_get(r, "cache")));
    json_decref(a);
    json_decref(b);
}

static void test_token_rules(void)
{
    cr_resp_t r;
    char v[512];
    CU_ASSERT_EQUAL(admin_req(&r, "GET", "/v1/stats", NULL), 401);
    CU_ASSERT(resp_header(&r, "www-authenticate", v, sizeof(v)) != NULL && strstr(v, "Bearer") != NULL);
    CU_ASSERT(strstr(r.body, "\"unauthorized\"") != NULL);
    CU_ASSERT(strstr(r.body, "\"requests\"") == NULL); /* no figure leaks */
    resp_free(&r);
    CU_ASSERT_EQUAL(admin_req(&r, "GET", "/v1/stats", "wrong"), 401);
    resp_free(&r);
    CU_ASSERT_EQUAL(admin_req(&r, "GET", "/v1/stats", SP_TOKEN "x"), 401);
    resp_free(&r);
    CU_ASSERT_EQUAL(admin_req(&r, "GET", "/v1/stats", SP_TOKEN), 200);
    resp_free(&r);

    /* the page is public, static and self-contained */
    CU_ASSERT_EQUAL(admin_req(&r, "GET", "/", NULL), 200);
    CU_ASSERT(resp_header(&r, "content-type", v, sizeof(v)) != NULL && strncmp(v, "text/html", 9) == 0);
    CU_ASSERT(resp_header(&r, "content-security-policy", v, sizeof(v)) != NULL && strstr(v, "default-src 'none'") != NULL &&
              strstr(v, "connect-src 'self'") != NULL);
    CU_ASSERT(resp_header(&r, "cache-control", v, sizeof(v)) != NULL && strcmp(v, "no-store") == 0);
    CU_ASSERT(strncmp(r.body, "<!doctype html>", 15) == 0 && strstr(r.body, "</html>") != NULL);
    CU_ASSERT(strstr(r.body, "<canvas") != NULL && strstr(r.body, "/v1/stats") != NULL);
    CU_ASSERT(strstr(r.body, "src=\"http") == NULL && strstr(r.body, "href=\"http") == NULL); /* no external asset */
    CU_ASSERT(strstr(r.body, SP_TOKEN) == NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(admin_req(&r, "GET", "/?x=1", NULL), 200); /* the query does not change the path */
    resp_free(&r);
}

static void test_hostile(void)
{
    static const struct {
        const char *method, *path, *token;
        long status;
    } cases[] = {
        {"POST", "/", NULL, 405},           {"DELETE", "/", SP_TOKEN, 405},     {"PUT", "/v1/stats", SP_TOKEN, 405},
        {"DELETE", "/v1/stats", SP_TOKEN, 405}, {"POST", "/v1/stats", NULL, 401}, {"GET", "/v1/stats/x", SP_TOKEN, 404},
        {"GET", "/v1/statsx", SP_TOKEN, 404}, {"GET", "/index.html", SP_TOKEN, 404}, {"GET", "/index.html", NULL, 401},
        {"GET", "/v1/../v1/stats", NULL, 401}, {"GET", "/%2e%2e/v1/stats", NULL, 401}, {"GET", "//v1/stats", NULL, 401},
        {"FOO", "/", NULL, 405},
    };
    size_t i;
    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        cr_resp_t r;
        long st = admin_req(&r, cases[i].method, cases[i].path, cases[i].token);
        if (st != cases[i].status)
            fprintf(stderr, "status_page: %s %s: %ld, expected %ld\n", cases[i].method, cases[i].path, st, cases[i].status);
        CU_ASSERT_EQUAL(st, cases[i].status);
        CU_ASSERT(strstr(r.body, "\"error\"") != NULL); /* a JSON error, not the page nor the figures */
        resp_free(&r);
    }
    /* a header list over limits.request_headers: 431 on the page too */
    {
        char url[128], *big = malloc(70 * 1024 + 16);
        const char *headers[2] = {big, NULL};
        cr_resp_t r;
        CU_ASSERT_FATAL(big != NULL);
        memcpy(big, "X-Big: ", 7);
        memset(big + 7, 'a', 70 * 1024);
        big[7 + 70 * 1024] = '\0';
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", corral.admin_port);
        CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url, headers, NULL, 0), 0);
        CU_ASSERT_EQUAL(r.status, 431);
        resp_free(&r);
        free(big);
    }
    {
        cr_resp_t r; /* still serving */
        CU_ASSERT_EQUAL(admin_req(&r, "GET", "/healthz", NULL), 200);
        resp_free(&r);
    }
}

/* With the shared tier (one real memcached) and no admin token: /v1/stats serves a loopback client without one, and
 * "tier" holds the tier's counters, which move with a fill (an L2 miss, then the value written to L2). */
static void test_stats_tier(void)
{
    tier_env_t e;
    cr_proc_t c;
    cr_resp_t r;
    char url[128];
    json_t *j = NULL, *tier;
    long deadline;
    memset(&e, 0, sizeof(e));
    CU_ASSERT_FATAL(tier_env_start(&e, 1) == 0);
    if (tier_start_corral(&c, &e, NULL, 1) != 0) {
        tier_env_stop(&e);
        CU_FAIL_FATAL("corral with the tier did not start");
    }
    CU_ASSERT_EQUAL(tier_get(&c, "/sp/tier/a", NULL), TIER_MISS);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/stats", c.admin_port);
    for (deadline = harness_now_ms() + 5000; harness_now_ms() < deadline; poll(NULL, 0, 20)) { /* the L2 write is async */
        json_decref(j);
        j = NULL;
        if (http_get(&r, CR_H1, url, NULL) == 0 && r.status == 200)
            j = json_loadb(r.body, r.body_len, 0, NULL);
        resp_free(&r);
        if (j == NULL || jint(j, "tier", "l2_sets", NULL) >= 1)
            break;
    }
    CU_ASSERT_FATAL(j != NULL);
    tier = json_object_get(j, "tier");
    CU_ASSERT(json_is_object(tier));
    CU_ASSERT_EQUAL(jint(j, "tier", "servers", NULL), 1);
    CU_ASSERT_EQUAL(jint(j, "tier", "breaker_open_servers", NULL), 0);
    CU_ASSERT_EQUAL(jint(j, "tier", "l2_misses", NULL), 1);
    CU_ASSERT_EQUAL(jint(j, "tier", "l2_sets", NULL), 1);
    CU_ASSERT_EQUAL(jint(j, "tier", "l2_hits", NULL), 0);
    CU_ASSERT(jint(j, "tier", "inval_applied", NULL) >= 0 && jint(j, "tier", "failures", NULL) >= 0);
    json_decref(j);
    CU_ASSERT_EQUAL(harness_stop(&c), 0);
    tier_env_stop(&e);
}

/* ---- the browser test ---- */

typedef struct {
    int stop; /* __atomic builtins: the test sets it, the load thread reads it */
    long sent, failed;
} sp_load_t;

/* Sends GETs through corral until told to stop (at most SP_LOAD_MAX_REQUESTS, SP_LOAD_MAX_MS): 50 paths that become
 * hits, every seventh request a new path (a miss), every 25th one to the pass route. */
static void *load_main(void *arg)
{
    sp_load_t *l = arg;
    long start = harness_now_ms(), i;
    char path[64];
    for (i = 0; !__atomic_load_n(&l->stop, __ATOMIC_RELAXED) && i != SP_LOAD_MAX_REQUESTS && harness_now_ms() - start < SP_LOAD_MAX_MS;
         ++i) {
        cr_resp_t r;
        if (i % 25 == 0)
            snprintf(path, sizeof(path), "/sp/health");
        else if (i % 7 == 0)
            snprintf(path, sizeof(path), "/sp/items/new-%ld", i);
        else
            snprintf(path, sizeof(path), "/sp/items/%ld", i % 50);
        if (http_get(&r, CR_H1, url_of(&corral, path), NULL) != 0 || r.status != 200)
            ++l->failed;
        ++l->sent;
        resp_free(&r);
        /* paced (under 1000 a second): the requests last until the browser has read twice, however slowly it
         * starts (unpaced, a fast corral answered all of them before Chromium's first reading in CI) */
        usleep(1000);
    }
    return NULL;
}

/* The first number after "chromium-pid " in text, or 0. */
static pid_t reported_pid(const char *text)
{
    const char *p = text != NULL ? strstr(text, "chromium-pid ") : NULL;
    return p != NULL ? (pid_t)atol(p + 13) : 0;
}

/* Kills pid by PID when it is still a Chromium process (its command line says so); the script normally closed it. */
static void kill_chromium(pid_t pid)
{
    char path[64], cmd[256] = "";
    FILE *fp;
    size_t n;
    if (pid <= 1)
        return;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    if ((fp = fopen(path, "r")) == NULL)
        return;
    n = fread(cmd, 1, sizeof(cmd) - 1, fp);
    fclose(fp);
    cmd[n] = '\0';
    if (strstr(cmd, "chromium") != NULL)
        kill(pid, SIGKILL);
}

static int is_png(const char *path, long *size)
{
    unsigned char sig[8];
    struct stat st;
    FILE *fp = fopen(path, "rb");
    int ok;
    *size = 0;
    if (fp == NULL)
        return 0;
    ok = fread(sig, 1, 8, fp) == 8 && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0;
    fclose(fp);
    if (stat(path, &st) == 0)
        *size = (long)st.st_size;
    return ok;
}

static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    size_t n;
    int ok = 1;
    FILE *in = fopen(from, "rb"), *out = in != NULL ? fopen(to, "wb") : NULL;
    if (out == NULL) {
        if (in != NULL)
            fclose(in);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) != 0)
        ok &= fwrite(buf, 1, n, out) == n;
    fclose(in);
    return fclose(out) == 0 && ok ? 0 : -1;
}

static void test_browser(void)
{
    char dir[256], script[512], modules[512], shot[320], out[320], pidfile[320], admin[64], deadline[32];
    const char *root = getenv("CORRAL_ROOT"), *keep = getenv("CORRAL_STATUS_SCREENSHOT");
    sp_load_t load = {0, 0, 0};
    pthread_t th;
    struct stat st;
    char *text;
    pid_t pid, chromium;
    int status = -1, done = 0;
    long deadline_at, png_size;

    CU_ASSERT_FATAL(root != NULL);
    snprintf(script, sizeof(script), "%s/tests/browser/status_page.mjs", root);
    snprintf(modules, sizeof(modules), "%s/tests/browser/node_modules/playwright-core/package.json", root);
    if (stat(modules, &st) != 0)
        fprintf(stderr, "status_page: %s is missing: run tools/install-deps.sh (it runs npm ci in tests/browser)\n", modules);
    CU_ASSERT_FATAL(stat(modules, &st) == 0);
    if (stat("/usr/bin/chromium", &st) != 0)
        fprintf(stderr, "status_page: /usr/bin/chromium is missing: run tools/install-deps.sh\n");
    CU_ASSERT_FATAL(stat("/usr/bin/chromium", &st) == 0);

    /* files beside corral's log, in the run's temp directory */
    snprintf(dir, sizeof(dir), "%s", corral.log_path);
    *strrchr(dir, '/') = '\0';
    snprintf(shot, sizeof(shot), "%s/status-page.png", dir);
    snprintf(out, sizeof(out), "%s/status-page.out", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/status-page.chromium-pid", dir);
    snprintf(admin, sizeof(admin), "http://127.0.0.1:%d", corral.admin_port);
    snprintf(deadline, sizeof(deadline), "%d", SP_BROWSER_DEADLINE_MS - 10000);

    CU_ASSERT_FATAL(pthread_create(&th, NULL, load_main, &load) == 0);
    pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), in = open("/dev/null", O_RDONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0); /* its own group: stopped as one below, by its ID */
        if (fd < 0 || in < 0 || chdir(dir) != 0)
            _exit(126);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("node", "node", script, "--admin", admin, "--token", SP_TOKEN, "--screenshot", shot, "--pid-file", pidfile,
               "--deadline-ms", deadline, (char *)NULL);
        dprintf(2, "status-page: FAIL exec node: %s\n", strerror(errno));
        _exit(127);
    }
    CU_ASSERT(pid > 0);
    deadline_at = harness_now_ms() + SP_BROWSER_DEADLINE_MS;
    while (pid > 0 && !done) {
        int st2;
        pid_t w = waitpid(pid, &st2, WNOHANG);
        if (w == pid) {
            status = WIFEXITED(st2) ? WEXITSTATUS(st2) : 128 + WTERMSIG(st2);
            done = 1;
        } else if (w < 0 && errno != EINTR) {
            done = 1;
        } else if (harness_now_ms() > deadline_at) {
            fprintf(stderr, "status_page: the browser test did not finish in %d ms; killed\n", SP_BROWSER_DEADLINE_MS);
            kill(-pid, SIGKILL);
            waitpid(pid, &st2, 0);
            done = 1;
        } else {
            poll(NULL, 0, 50);
        }
    }
    __atomic_store_n(&load.stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);

    text = harness_read_file(out);
    chromium = reported_pid(text);
    kill_chromium(chromium); /* node's own group was killed above if it overran; once reaped, its ID is not reused here */
    if (status != 0 || text == NULL || strstr(text, "status-page: ok ") == NULL)
        fprintf(stderr, "status_page: node exited %d:\n%s\n", status, text != NULL ? text : "(no output)");
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT(text != NULL && strstr(text, "status-page: ok ") != NULL && strstr(text, "status-page: FAIL") == NULL);
    CU_ASSERT(chromium > 0);
    free(text);

    CU_ASSERT(load.sent > 0);
    CU_ASSERT_EQUAL(load.failed, 0);
    CU_ASSERT(is_png(shot, &png_size) && png_size > 20000);
    if (keep != NULL && *keep != '\0' && status == 0)
        CU_ASSERT(copy_file(shot, keep) == 0);
}

void cr_e2e_register_status_page(void)
{
    CU_pSuite s = CU_add_suite("status_page", suite_init, suite_cleanup);
    if (s == NULL)
        return;
    CU_add_test(s, "/v1/stats: JSON with the totals, the routes and memory", test_stats_json);
    CU_add_test(s, "/v1/stats needs the token; / is public, static, self-contained", test_token_rules);
    CU_add_test(s, "hostile methods and paths get clear errors", test_hostile);
    CU_add_test(s, "/v1/stats with the shared tier, loopback without a token", test_stats_tier);
    CU_add_test(s, "headless Chromium: charts drawn, numbers live, no script error", test_browser);
}
