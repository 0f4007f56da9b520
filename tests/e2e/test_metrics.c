/*
 * test_metrics.c: end-to-end tests of GET /metrics (issue 14): the labelled series against what the test sent.
 *
 * One suite, its own upstream and corral (threads: 2). h2load sends bounded load (a fixed request count, a deadline
 * after which it is killed by PID) while the test scrapes /metrics and runs `promtool check metrics` (Debian's
 * prometheus package, installed by tools/install-deps.sh) on each scrape: it must pass, lint included. Afterwards the
 * counters must equal what the test sent: N hits on a route give exactly N in corral_route_requests_total{route=R,
 * outcome="hit"}; misses, collapsed waiters, passes, bypasses, status classes and body bytes by coding are checked
 * exactly where the test controls them, and each histogram's _count against the requests it covers. Counters only
 * grow, and every request here goes through this suite alone, so each test compares values before and after its own
 * traffic. A request is counted when it ends (its pool is disposed), a moment after the client has its answer: reads
 * that expect a count poll for it (bounded) before asserting.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

void cr_e2e_register_metrics(void);

static cr_proc_t up, corral;

/* The first route's name has a quote and a backslash: its label value must come out escaped. */
static const char *template = "threads: 2\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "  max_connections: 64\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "routes:\n"
                              "  - match: { prefix: /m/hit }\n"
                              "    name: \"hits \\\"q\\\" \\\\ r\"\n"
                              "    ttl: 60s\n"
                              "  - match: { prefix: /m/pass }\n"
                              "    name: passes\n"
                              "    cache: false\n"
                              "  - match: { prefix: /m/default }\n"
                              "    ttl: 60s\n"
                              "  - match: { prefix: /m/gz }\n"
                              "    name: gz\n"
                              "    ttl: 60s\n";

#define HIT_ROUTE "hits \\\"q\\\" \\\\ r" /* as written in the label: hits \"q\" \\ r */

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The /metrics text (malloc'ed; free it), or NULL. */
static char *scrape(void)
{
    char url[128];
    cr_resp_t r;
    char *body = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", corral.admin_port);
    if (http_get(&r, CR_H1, url, NULL) == 0 && r.status == 200)
        body = strdup(r.body);
    resp_free(&r);
    return body;
}

/* The value of one series (name with its labels exactly as written, e.g. corral_x{a="b"}) in text, or -1. */
static double value_in(const char *text, const char *series)
{
    char needle[512];
    const char *at;
    snprintf(needle, sizeof(needle), "\n%s ", series);
    if (text == NULL || (at = strstr(text, needle)) == NULL)
        return -1;
    return strtod(at + strlen(needle), NULL);
}

static double metric(const char *series)
{
    char *text = scrape();
    double v = value_in(text, series);
    free(text);
    return v;
}

/* Polls read(arg) (at most 3 s, stretched for slow builds) until it reaches want; returns its last value. A request
 * is counted when it ends, a moment after its client has the answer. */
static double poll_until(double (*read)(const char *), const char *arg, double want)
{
    long deadline = harness_now_ms() + 3000L * harness_time_scale();
    double v = read(arg);
    while (v < want && harness_now_ms() < deadline) {
        sleep_ms(10);
        v = read(arg);
    }
    return v;
}

static double metric_wait(const char *series, double want)
{
    return poll_until(metric, series, want);
}

static double route_outcome(const char *route, const char *outcome)
{
    char s[256];
    snprintf(s, sizeof(s), "corral_route_requests_total{route=\"%s\",outcome=\"%s\"}", route, outcome);
    return metric(s);
}

static double route_outcome_wait(const char *route, const char *outcome, double want)
{
    char s[256];
    snprintf(s, sizeof(s), "corral_route_requests_total{route=\"%s\",outcome=\"%s\"}", route, outcome);
    return metric_wait(s, want);
}

static double route_code(const char *route, const char *code)
{
    char s[256];
    snprintf(s, sizeof(s), "corral_route_responses_total{route=\"%s\",code=\"%s\"}", route, code);
    return metric(s);
}

/* Runs promtool check metrics on text: 0 when it passed with nothing to say, else -1 (its output printed). */
static int promtool_check(const char *text)
{
    char in[256], out[256], cmd[700];
    FILE *f;
    char *said;
    int rc, ok;

    snprintf(in, sizeof(in), "/tmp/corral-e2e-metrics.%d.txt", (int)getpid());
    snprintf(out, sizeof(out), "/tmp/corral-e2e-metrics.%d.out", (int)getpid());
    if ((f = fopen(in, "w")) == NULL)
        return -1;
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "timeout 20 promtool check metrics < %s > %s 2>&1", in, out);
    rc = system(cmd);
    said = harness_read_file(out);
    ok = rc == 0 && said != NULL && said[0] == '\0';
    if (!ok)
        fprintf(stderr, "promtool check metrics (exit %d): %s\n", rc, said != NULL ? said : "(no output file)");
    free(said);
    unlink(in);
    unlink(out);
    return ok ? 0 : -1;
}

/* Starts h2load (stdout and stderr to out_path) by fork and exec; rps: requests per second per client ("0": as
 * fast as it can). Its PID, or -1. */
static pid_t start_h2load(const char *n, const char *c, const char *m, const char *rps, const char *url, const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *o = freopen(out_path, "w", stdout);
        if (o == NULL || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        if (strcmp(rps, "0") != 0)
            execlp("h2load", "h2load", "-n", n, "-c", c, "-m", m, "--rps", rps, url, (char *)NULL);
        else
            execlp("h2load", "h2load", "-n", n, "-c", c, "-m", m, url, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits for h2load (killing it by PID past deadline_ms) unless it was reaped already, and returns the "succeeded"
 * count of its report, or -1. */
static long finish_h2load(pid_t pid, int reaped, const char *out_path, long deadline_ms)
{
    int status;
    long succ = -1;
    char *report, *at;
    while (!reaped && waitpid(pid, &status, WNOHANG) == 0) {
        if (harness_now_ms() > deadline_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    if ((report = harness_read_file(out_path)) != NULL && (at = strstr(report, " done, ")) != NULL)
        succ = atol(at + 7);
    free(report);
    unlink(out_path);
    return succ;
}

/* Load on one cached object while /metrics is scraped: every scrape passes promtool; afterwards, exactly the hits
 * sent, one miss, 2xx for all of them, and the hit histogram's count equal to every hit counted. */
static void test_counts_under_load(void)
{
    char out_path[128], rps[32], *text;
    const long N = 3000;
    double hits0 = route_outcome(HIT_ROUTE, "hit"), ok0 = route_code(HIT_ROUTE, "2xx");
    long succ, deadline, scrapes = 0, scrapes_during = 0;
    int reaped = 0;
    pid_t pid;
    cr_resp_t r;

    CU_ASSERT_EQUAL(hits0, 0);
    CU_ASSERT_EQUAL(route_outcome(HIT_ROUTE, "miss"), 0);
    /* the miss that stores it */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/m/hit/load"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(route_outcome_wait(HIT_ROUTE, "miss", 1), 1);

    snprintf(out_path, sizeof(out_path), "/tmp/corral-e2e-h2load.%d.out", (int)getpid());
    /* the load lasts at least 3 s and at least 8 checked scrapes as long as one takes here (timed first: under ASan
     * on a loaded 2-CPU machine one took over a second), so that several land during it on any machine */
    {
        long t0 = harness_now_ms(), load_ms;
        text = scrape();
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT_EQUAL(promtool_check(text), 0);
        free(text);
        load_ms = 8 * (harness_now_ms() - t0);
        if (load_ms < 3000)
            load_ms = 3000;
        snprintf(rps, sizeof(rps), "%ld", N / 4 * 1000 / load_ms > 0 ? N / 4 * 1000 / load_ms : 1); /* per client, 4 clients */
    }
    pid = start_h2load("3000", "4", "4", rps, url_of(&corral, "/m/hit/load"), out_path);
    CU_ASSERT_FATAL(pid > 0);
    deadline = harness_now_ms() + 60000L * harness_time_scale();
    /* scrape and check until h2load has finished (each waitpid that sees it gone reaps it) */
    while (!reaped && scrapes < 1000 && harness_now_ms() < deadline) {
        int status;
        text = scrape();
        CU_ASSERT_PTR_NOT_NULL(text);
        if (text == NULL)
            break;
        reaped = waitpid(pid, &status, WNOHANG) == pid;
        if (!reaped)
            ++scrapes_during; /* still running after the scrape: it was taken during the load */
        CU_ASSERT_EQUAL(promtool_check(text), 0);
        free(text);
        ++scrapes;
    }
    succ = finish_h2load(pid, reaped, out_path, deadline);
    if (scrapes_during < 3)
        fprintf(stderr, "\n    scrapes: %ld, %ld of them during the load (%s requests/s per client)\n", scrapes,
                scrapes_during, rps);
    CU_ASSERT(scrapes_during >= 3);
    CU_ASSERT_EQUAL(succ, N);
    /* exactly the requests sent, every one a hit, and the upstream asked once */
    CU_ASSERT_EQUAL(route_outcome_wait(HIT_ROUTE, "hit", hits0 + N), hits0 + N);
    CU_ASSERT_EQUAL(route_outcome(HIT_ROUTE, "miss"), 1);
    CU_ASSERT_EQUAL(route_code(HIT_ROUTE, "2xx"), ok0 + N + 1);
    CU_ASSERT_EQUAL(route_code(HIT_ROUTE, "5xx"), 0);
    CU_ASSERT_EQUAL(upstream_count(&up, "/m/hit/load"), 1);
    /* the hit histogram counts every hit of every route: this suite's hits are all on this route so far */
    CU_ASSERT_EQUAL(metric("corral_request_duration_seconds_count{outcome=\"hit\"}"), hits0 + N);
    CU_ASSERT_EQUAL(metric("corral_request_duration_seconds_bucket{outcome=\"hit\",le=\"+Inf\"}"), hits0 + N);
    /* the final scrape passes too, now with every series populated */
    text = scrape();
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(promtool_check(text), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\ncorral_build_info{version=\""));
    CU_ASSERT(value_in(text, "process_resident_memory_bytes") > 0);
    CU_ASSERT(value_in(text, "process_open_fds") > 0);
    CU_ASSERT(value_in(text, "process_start_time_seconds") > 1.6e9);
    CU_ASSERT_EQUAL(value_in(text, "corral_config_reloads_total{result=\"ok\"}"), 0);
    CU_ASSERT_EQUAL(value_in(text, "corral_config_reloads_total{result=\"failed\"}"), 0);
    free(text);
}

/* A herd on a slow miss: one miss, the rest collapsed onto it. */
static void test_collapsed(void)
{
    char out_path[128];
    double col0 = route_outcome(HIT_ROUTE, "collapsed"), miss0 = route_outcome(HIT_ROUTE, "miss");
    long succ;
    pid_t pid;

    snprintf(out_path, sizeof(out_path), "/tmp/corral-e2e-h2load-herd.%d.out", (int)getpid());
    pid = start_h2load("20", "20", "1", "0", url_of(&corral, "/m/hit/herd?delay=400"), out_path);
    CU_ASSERT_FATAL(pid > 0);
    succ = finish_h2load(pid, 0, out_path, harness_now_ms() + 30000L * harness_time_scale());
    CU_ASSERT_EQUAL(succ, 20);
    CU_ASSERT_EQUAL(upstream_count(&up, "/m/hit/herd"), 1);
    CU_ASSERT_EQUAL(route_outcome_wait(HIT_ROUTE, "collapsed", col0 + 19), col0 + 19);
    CU_ASSERT_EQUAL(route_outcome(HIT_ROUTE, "miss"), miss0 + 1);
}

/* An uncached route: passes, by status class; a request matching no route: route="(none)". */
static void test_pass_and_status_classes(void)
{
    double pass0 = route_outcome("passes", "pass"), c4 = route_code("passes", "4xx"), c2 = route_code("passes", "2xx"),
           c5 = route_code("passes", "5xx"), none0 = route_outcome("(none)", "pass");
    int i;
    cr_resp_t r;

    for (i = 0; i != 3; ++i) {
        CU_ASSERT_EQUAL(http_get(&r, i == 0 ? CR_H2C : CR_H1, url_of(&corral, "/m/pass/ok"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    for (i = 0; i != 2; ++i) {
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/m/pass/missing?status=404"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 404);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/m/pass/broken?status=503"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/elsewhere"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);

    CU_ASSERT_EQUAL(route_outcome_wait("passes", "pass", pass0 + 6), pass0 + 6);
    CU_ASSERT_EQUAL(route_code("passes", "2xx"), c2 + 3);
    CU_ASSERT_EQUAL(route_code("passes", "4xx"), c4 + 2);
    CU_ASSERT_EQUAL(route_code("passes", "5xx"), c5 + 1);
    CU_ASSERT_EQUAL(route_outcome("passes", "hit"), 0);
    CU_ASSERT_EQUAL(route_outcome_wait("(none)", "pass", none0 + 1), none0 + 1);
}

/* A route without a name is labelled by its match; a no-store answer leaves a hit-for-pass marker and the next
 * request is a bypass. */
static void test_default_name_and_bypass(void)
{
    double markers0 = metric("corral_hit_for_pass_markers_total");
    cr_resp_t r;
    int i;

    CU_ASSERT_EQUAL(route_outcome("prefix:/m/default", "miss"), 0);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/m/default/a"), NULL), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(route_outcome_wait("prefix:/m/default", "miss", 1), 1);
    CU_ASSERT_EQUAL(route_code("prefix:/m/default", "2xx"), 1);

    for (i = 0; i != 2; ++i) {
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/m/default/nostore?cc=no-store"), NULL), 0);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(route_outcome_wait("prefix:/m/default", "bypass", 1), 1);
    CU_ASSERT_EQUAL(route_outcome("prefix:/m/default", "miss"), 2);
    CU_ASSERT_EQUAL(metric("corral_hit_for_pass_markers_total"), markers0 + 1);
}

/* Every request counted on a route, all outcomes (one scrape). */
static double route_total(const char *route)
{
    static const char *const outcomes[] = {"pass", "hit", "miss", "stale", "collapsed", "bypass", "l2-hit"};
    char *text = scrape(), s[256];
    double sum = 0;
    size_t i;
    for (i = 0; i != sizeof(outcomes) / sizeof(outcomes[0]); ++i) {
        snprintf(s, sizeof(s), "corral_route_requests_total{route=\"%s\",outcome=\"%s\"}", route, outcomes[i]);
        sum += value_in(text, s);
    }
    free(text);
    return sum;
}

/* Polls until the route has counted n requests; returns the last total. */
static double route_total_wait(const char *route, double n)
{
    return poll_until(route_total, route, n);
}

static double gz_sent; /* requests sent on route gz so far */

/* One hit's body bytes counted under the coding it was sent in, exactly (curl does not decode). Every earlier
 * request on the route is counted first, so nothing else lands between the two reads. */
static void one_coded_hit(cr_proto_t proto, const char *accept, const char *encoding, const char *want_ce)
{
    char series[128], ce[64];
    const char *h[] = {accept, NULL};
    double before;
    cr_resp_t r;

    snprintf(series, sizeof(series), "corral_response_body_bytes_total{encoding=\"%s\"}", encoding);
    CU_ASSERT_EQUAL(route_total_wait("gz", gz_sent), gz_sent);
    before = metric(series);
    ++gz_sent;
    CU_ASSERT_EQUAL(http_get(&r, proto, url_of(&corral, "/m/gz/doc?size=3000&ctype=application/json"), h), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    if (want_ce != NULL) {
        CU_ASSERT_STRING_EQUAL(resp_header(&r, "content-encoding", ce, sizeof(ce)) != NULL ? ce : "(none)", want_ce);
    } else {
        CU_ASSERT_PTR_NULL(resp_header(&r, "content-encoding", ce, sizeof(ce)));
    }
    CU_ASSERT(r.body_len > 0);
    CU_ASSERT_EQUAL(route_total_wait("gz", gz_sent), gz_sent);
    CU_ASSERT_EQUAL(metric(series), before + (double)r.body_len);
    resp_free(&r);
}

static void test_bytes_by_encoding(void)
{
    const char *h[] = {"Accept-Encoding: gzip", NULL};
    long deadline = harness_now_ms() + 5000L * harness_time_scale();
    int stored = 0;
    cr_resp_t r;

    /* store it, and wait until a hit is served with its codings made */
    while (!stored && harness_now_ms() < deadline) {
        char cs[128] = "", ce[32] = "";
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/m/gz/doc?size=3000&ctype=application/json"), h), 0);
        ++gz_sent;
        resp_header(&r, "cache-status", cs, sizeof(cs));
        resp_header(&r, "content-encoding", ce, sizeof(ce));
        stored = strstr(cs, "hit") != NULL && strcmp(ce, "gzip") == 0;
        resp_free(&r);
        if (!stored)
            sleep_ms(10);
    }
    CU_ASSERT_FATAL(stored);
    one_coded_hit(CR_H1, "Accept-Encoding: gzip", "gzip", "gzip");
    one_coded_hit(CR_H2C, "Accept-Encoding: br", "br", "br");
    one_coded_hit(CR_H1, "Accept-Encoding: identity", "identity", NULL);
    one_coded_hit(CR_H2C, "Accept-Encoding: identity", "identity", NULL);
}

/* Every upstream request started is in the upstream latency histogram once its head came; none failed here. */
static void test_upstream_series(void)
{
    char *text = scrape();
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(value_in(text, "corral_upstream_requests_total") > 0);
    CU_ASSERT_EQUAL(value_in(text, "corral_upstream_response_seconds_count"), value_in(text, "corral_upstream_requests_total"));
    CU_ASSERT_EQUAL(value_in(text, "corral_upstream_failures_total{kind=\"connect\"}"), 0);
    CU_ASSERT_EQUAL(value_in(text, "corral_upstream_failures_total{kind=\"timeout\"}"), 0);
    CU_ASSERT_EQUAL(value_in(text, "corral_upstream_connections_in_use"), 0);
    /* each outcome's histogram count is the sum of that outcome over the routes */
    {
        static const char *const outcomes[] = {"hit", "miss", "pass", "collapsed", "bypass"};
        static const char *const routes[] = {HIT_ROUTE, "passes", "prefix:/m/default", "gz", "(none)"};
        size_t i, j;
        for (i = 0; i != sizeof(outcomes) / sizeof(outcomes[0]); ++i) {
            char s[256];
            double sum = 0;
            for (j = 0; j != sizeof(routes) / sizeof(routes[0]); ++j) {
                snprintf(s, sizeof(s), "corral_route_requests_total{route=\"%s\",outcome=\"%s\"}", routes[j], outcomes[i]);
                CU_ASSERT(value_in(text, s) >= 0);
                sum += value_in(text, s);
            }
            snprintf(s, sizeof(s), "corral_request_duration_seconds_count{outcome=\"%s\"}", outcomes[i]);
            CU_ASSERT_EQUAL(value_in(text, s), sum);
        }
    }
    free(text);
}

/* An admin purge is counted, with the objects it removed (as its answer says). */
static void test_purges(void)
{
    double purges0 = metric("corral_purges_total"), objects0 = metric("corral_purged_objects_total");
    const char *h[] = {"Content-Type: application/json", NULL};
    char url[128];
    long objects = -1;
    cr_resp_t r;
    const char *at, *body = "{\"keys\": [\"/m/gz/doc\"]}";

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/purge", corral.admin_port);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "POST", url, h, body, strlen(body)), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    if ((at = strstr(r.body, "\"objects\": ")) != NULL || (at = strstr(r.body, "\"objects\":")) != NULL)
        objects = atol(strchr(at, ':') + 1);
    resp_free(&r);
    CU_ASSERT(objects >= 1); /* the object of test_bytes_by_encoding */
    CU_ASSERT_EQUAL(metric("corral_purges_total"), purges0 + 1);
    CU_ASSERT_EQUAL(metric("corral_purged_objects_total"), objects0 + (double)objects);
}

/* A duplicate or bad route name is a config error with its position; a good name is accepted. Each case: the routes
 * (after a fixed head of 3 lines), the exit code of `corral -t`, and what its message must hold. */
static void test_name_errors(void)
{
    static const char *head = "listen: [{ address: '127.0.0.1:${PORT}' }]\nupstream: { url: 'http://127.0.0.1:1' }\nroutes:\n";
    static const struct {
        const char *routes;
        int rc;
        const char *says;
    } cases[] = {
        {"  - match: { prefix: /a }\n    name: api\n  - match: { prefix: /b }\n    name: api\n", 1,
         ":7:11: routes[1].name: \"api\" is already the name of routes[0] (line 4)"},
        /* two default names alike (same match, same methods), reported at the later route */
        {"  - match: { prefix: /a }\n  - match: { prefix: /a/ }\n", 1,
         ":5:5: routes[1].name: \"prefix:/a\" is already the name of routes[0] (line 4); give one of them a name"},
        /* the same match with other methods has another default name */
        {"  - match: { prefix: /a, methods: [GET, HEAD] }\n  - match: { prefix: /a }\n", 0, ""},
        {"  - match: { prefix: /a }\n    name: \"a\\tb\"\n", 1, ":5:11: routes[0].name: a route name must not contain control characters"},
        {"  - match: { prefix: /a }\n    name: \"\"\n", 1, ":5:11: routes[0].name"},
        /* not UTF-8: libyaml refuses the file */
        {"  - match: { prefix: /a }\n    name: caf\xe9\n", 1, ":5:"},
        {"  - match: { prefix: /a }\n    name: \"caf\xc3\xa9 \\\"x\\\"\"\n", 0, ""},
    };
    char yaml[1024], out[1024];
    size_t i;

    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        snprintf(yaml, sizeof(yaml), "%s%s", head, cases[i].routes);
        CU_ASSERT_EQUAL(harness_run_corral_check(yaml, out, sizeof(out)), cases[i].rc);
        if (strstr(out, cases[i].says) == NULL)
            fprintf(stderr, "case %zu: \"%s\" not in: %s\n", i, cases[i].says, out);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].says));
    }
}

void cr_e2e_register_metrics(void)
{
    CU_pSuite s = CU_add_suite("metrics", suite_init, suite_cleanup);
    CU_add_test(s, "counts under load, promtool on scrapes during it", test_counts_under_load);
    CU_add_test(s, "a herd: one miss, the rest collapsed", test_collapsed);
    CU_add_test(s, "passes by status class; no route", test_pass_and_status_classes);
    CU_add_test(s, "default route name; hit-for-pass then bypass", test_default_name_and_bypass);
    CU_add_test(s, "body bytes by content coding, h1 and h2", test_bytes_by_encoding);
    CU_add_test(s, "upstream series; histogram counts match the routes", test_upstream_series);
    CU_add_test(s, "admin purges", test_purges);
    CU_add_test(s, "route name errors", test_name_errors);
}
