/*
 * test_shedding.c: end-to-end tests of load shedding and upstream health (issue 16), with the real corral, the test
 * upstream (tools/test-upstream.py) and h2load:
 *   - an upstream whose latency grows with its concurrency (loadlat=): with upstream.max_concurrency adaptive, its
 *     p99 service time under load stays within 2x of its unloaded latency while corral sheds the excess with 503 +
 *     Retry-After, and hits keep being answered (never shed); with no cap, the same load makes its p99 collapse;
 *   - the active check: while it fails, a request no stored object answers gets 503 upstream_down at once (and never
 *     reaches the upstream), a stale object answers with Cache-Status detail=upstream-down, /readyz is 503; the
 *     upstream killed and restarted: down, then up again, each change logged once;
 *   - the passive breaker without an active check: 5xx in a row open it (fail fast, /readyz 503, metrics), and a
 *     half-open probe after the backoff closes it once the upstream answers again.
 * Timing: the only time bounds are generous ones (a fail-fast answer well under the upstream's delay); the latency
 * comparison uses the upstream's own service times, measured after a warm-up, with the limits the issue names.
 */
#include <CUnit/CUnit.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

void cr_e2e_register_shedding(void);

static cr_proc_t up, corral;

/* /v1/stats' "upstream" object (the admin port on loopback needs no token when none is configured), or NULL */
static json_t *stats_upstream(json_t **root)
{
    cr_resp_t r;
    *root = NULL;
    if (http_get(&r, CR_H1, admin_url_of(&corral, "/v1/stats"), NULL) == 0 && r.status == 200)
        *root = json_loadb(r.body, r.body_len, 0, NULL);
    resp_free(&r);
    return *root != NULL ? json_object_get(*root, "upstream") : NULL;
}

static json_int_t stats_counter(json_t *root, const char *name)
{
    return json_integer_value(json_object_get(json_object_get(root, "counters"), name));
}

static void pace(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}


/* GETs path through c until it answers want (bounded, 50 ms apart); returns the last status. */
static long get_until(const cr_proc_t *c, const char *path, long want)
{
    long deadline = harness_now_ms() + 5000L * harness_time_scale(), status = -1;
    cr_resp_t r;
    while (status != want && harness_now_ms() < deadline) {
        status = http_get(&r, CR_H1, url_of(c, path), NULL) == 0 ? r.status : -1;
        resp_free(&r);
        if (status != want)
            pace(50);
    }
    return status;
}

/* The upstream's service-time percentile since the last call (which it clears), or -1. */
static long upstream_latency(const char *field, long *count)
{
    cr_resp_t r;
    long v = -1;
    if (http_get(&r, CR_H1, url_of(&up, "/__latency"), NULL) == 0 && r.status == 200) {
        json_get_long(r.body, field, &v);
        if (count != NULL)
            json_get_long(r.body, "count", count);
    }
    resp_free(&r);
    return v;
}

/* ---- shedding under a load that slows the upstream down ---- */

typedef struct {
    char url[512];
    int seconds;
    long ok, s503, total;
} load_t;

static void *load_main(void *arg)
{
    load_t *l = arg;
    char cmd[1024], line[512];
    FILE *fp;
    l->ok = l->s503 = l->total = -1;
    snprintf(cmd, sizeof(cmd), "h2load --h1 -c 24 -D %d -t 1 '%s' 2>&1", l->seconds, l->url);
    if ((fp = popen(cmd, "r")) == NULL)
        return NULL;
    while (fgets(line, sizeof(line), fp) != NULL) {
        long total, started, done, succ, s2, s3, s4, s5;
        if (sscanf(line, "requests: %ld total, %ld started, %ld done, %ld succeeded", &total, &started, &done, &succ) == 4)
            l->total = done;
        if (sscanf(line, "status codes: %ld 2xx, %ld 3xx, %ld 4xx, %ld 5xx", &s2, &s3, &s4, &s5) == 4) {
            l->ok = s2;
            l->s503 = s5;
        }
    }
    pclose(fp);
    return NULL;
}

static const char *shed_template = "threads: 2\n"
                                   "listen:\n"
                                   "  - address: 127.0.0.1:${PORT}\n"
                                   "upstream:\n"
                                   "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                   "  queue_timeout: 200ms\n"
                                   "%s"
                                   "admin:\n"
                                   "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                   "routes:\n"
                                   "  - match: { prefix: /shed/api }\n"
                                   "    cache: false\n"
                                   "  - match: { prefix: /shed/ }\n";

#define LOADLAT_PATH "/shed/api?delay=40&loadlat=10"

/* Runs the load against corral for `seconds`, measuring the upstream's p99 over the last seconds - 2 of it, and
 * checking that hits answer all along. Returns the p99 (ms) or -1; *load gets h2load's counts. */
static long loaded_p99(load_t *load, int seconds, int *hits_ok, int *hits_total)
{
    pthread_t th;
    long p99, count = 0, end;

    snprintf(load->url, sizeof(load->url), "%s", url_of(&corral, LOADLAT_PATH));
    load->seconds = seconds;
    if (pthread_create(&th, NULL, load_main, load) != 0)
        return -1;
    /* the first 2 s are the limiter's warm-up: it starts at the limit, so its first answers are the slow ones */
    end = harness_now_ms() + 2000;
    *hits_ok = *hits_total = 0;
    while (harness_now_ms() < end) {
        long status = 0;
        int hit = harness_get_hit(&corral, "/shed/hit", &status, NULL, 0);
        ++*hits_total;
        if (hit == 1 && status == 200)
            ++*hits_ok;
        pace(20);
    }
    upstream_latency("p99", NULL); /* clears */
    end = harness_now_ms() + (seconds - 3) * 1000L;
    while (harness_now_ms() < end) {
        long status = 0;
        int hit = harness_get_hit(&corral, "/shed/hit", &status, NULL, 0);
        ++*hits_total;
        if (hit == 1 && status == 200)
            ++*hits_ok;
        pace(20);
    }
    p99 = upstream_latency("p99", &count);
    pthread_join(th, NULL);
    fprintf(stderr, "\n    load: %ld answers (%ld 2xx, %ld 5xx), upstream p99 %ld ms over %ld requests, hits %d/%d ok\n",
            load->total, load->ok, load->s503, p99, count, *hits_ok, *hits_total);
    return count >= 10 ? p99 : -1;
}

static long unloaded_p99(void)
{
    cr_resp_t r;
    int i;
    upstream_latency("p99", NULL);
    for (i = 0; i != 10; ++i) {
        http_get(&r, CR_H1, url_of(&corral, LOADLAT_PATH), NULL);
        resp_free(&r);
    }
    return upstream_latency("p99", NULL);
}

static void test_adaptive_limit_sheds_and_keeps_latency(void)
{
    char conf[2048];
    load_t load_on, load_off;
    long base, p99_on, p99_off, shed, limit;
    int hits_ok, hits_total;
    cr_resp_t r;
    char ra[64];

    snprintf(conf, sizeof(conf), shed_template, "  max_concurrency: { limit: 32, min: 1, adaptive: true }\n");
    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, conf), 0);
    {
        /* the admin listener, and the workers that set the cap up, may come up a moment after the traffic port */
        long deadline = harness_now_ms() + 5000, limit = -1;
        while ((limit = harness_metric(&corral, "corral_upstream_concurrency_limit")) <= 0 && harness_now_ms() < deadline)
            pace(20);
        if (limit != 32)
            fprintf(stderr, "\n    the limit at start: %ld\n", limit);
        CU_ASSERT_EQUAL(limit, 32); /* it starts at the limit */
    }
    CU_ASSERT_EQUAL(upstream_set(&up, "/shed/hit", "cc=max-age%3D600"), 0);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/shed/hit", NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/shed/hit", NULL, NULL, 0), 1);
    base = unloaded_p99();
    CU_ASSERT(base >= 40 && base < 200);

    p99_on = loaded_p99(&load_on, 8, &hits_ok, &hits_total);
    CU_ASSERT(p99_on > 0);
    CU_ASSERT(p99_on <= 2 * base); /* the bound, on the upstream's own service times */
    CU_ASSERT(hits_total > 10);
    CU_ASSERT_EQUAL(hits_ok, hits_total); /* hits are never shed */
    shed = harness_metric(&corral, "corral_upstream_shed_total");
    CU_ASSERT(shed > 0);
    CU_ASSERT(load_on.s503 > 0);
    CU_ASSERT(load_on.ok > 0);
    limit = harness_metric(&corral, "corral_upstream_concurrency_limit");
    fprintf(stderr, "    unloaded p99 %ld ms; with the limiter: p99 %ld ms, %ld shed, limit now %ld\n", base, p99_on, shed, limit);
    CU_ASSERT(limit >= 1 && limit < 32);
    {
        json_t *root, *u = stats_upstream(&root);
        json_int_t cap = json_integer_value(json_object_get(u, "concurrency_limit"));
        CU_ASSERT(cap >= 1 && cap < 32); /* /v1/stats has the cap /metrics has */
        CU_ASSERT(json_integer_value(json_object_get(u, "concurrency_in_flight")) <= cap);
        CU_ASSERT(stats_counter(root, "upstream_shed") >= shed);
        json_decref(root);
    }

    /* a shed answer: 503, Retry-After, JSON */
    {
        load_t l2;
        pthread_t th;
        long end;
        int seen = 0;
        snprintf(l2.url, sizeof(l2.url), "%s", url_of(&corral, LOADLAT_PATH));
        l2.seconds = 3;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, load_main, &l2), 0);
        pace(1000);
        end = harness_now_ms() + 1500;
        while (!seen && harness_now_ms() < end) {
            CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, LOADLAT_PATH), NULL), 0);
            if (r.status == 503) {
                seen = 1;
                CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "retry-after", ra, sizeof(ra)));
                CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"upstream_shed\""));
            }
            resp_free(&r);
        }
        pthread_join(th, NULL);
        CU_ASSERT(seen);
    }
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &corral), 0);

    /* the same load with no cap: the upstream takes it all and its latency collapses */
    snprintf(conf, sizeof(conf), shed_template, "");
    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, conf), 0);
    CU_ASSERT_EQUAL(upstream_set(&up, "/shed/hit", "cc=max-age%3D600"), 0);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/shed/hit", NULL, NULL, 0), 0);
    p99_off = loaded_p99(&load_off, 6, &hits_ok, &hits_total);
    fprintf(stderr, "    without the limiter: p99 %ld ms (unloaded %ld)\n", p99_off, base);
    CU_ASSERT(p99_off > 2 * base);
    CU_ASSERT(p99_off > p99_on * 3 / 2);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_shed_total"), 0);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &corral), 0);
}

/* ---- the active check: fail fast, stale with detail=upstream-down, kill and restart ---- */

static const char *health_template = "threads: 1\n"
                                     "listen:\n"
                                     "  - address: 127.0.0.1:${PORT}\n"
                                     "upstream:\n"
                                     "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                     "  timeout: 10s\n"
                                     "  health: { path: /sh/health, interval: 100ms, timeout: 100ms, unhealthy_after: 2,"
                                     " healthy_after: 1 }\n"
                                     "admin:\n"
                                     "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                     "routes:\n"
                                     "  - match: { prefix: /sh/ }\n"
                                     "    stale_if_unreachable: 0s\n"
                                     "    serve_stale_when_down: 60s\n";

static void test_unhealthy_fails_fast_and_serves_stale(void)
{
    char body[512], cs[256], ra[64];
    cr_resp_t r;

    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, health_template), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    /* an object that is stale one second later */
    CU_ASSERT_EQUAL(upstream_set(&up, "/sh/obj", "cc=max-age%3D1"), 0);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/sh/obj", NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/sh/obj", NULL, NULL, 0), 1);
    CU_ASSERT_EQUAL(upstream_set(&up, "/sh/slow", "delay=5000"), 0);

    /* the check fails: unhealthy */
    CU_ASSERT_EQUAL(upstream_set(&up, "/sh/health", "status=503"), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 503, body, sizeof(body)), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "upstream_unhealthy"));
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_healthy"), 0);

    /* no stored object: 503 at once, never sent (the upstream would take 5 s) */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/sh/slow"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(r.total_ms < 2000);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "retry-after", ra, sizeof(ra)));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"upstream_down\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/sh/slow"), 0);

    /* the stale object answers (wait until it is stale: max-age=1) */
    pace(1100);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/sh/obj"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "cache-status", cs, sizeof(cs)));
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "fwd=stale"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "detail=upstream-down"));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/sh/obj"), 1);
    CU_ASSERT(harness_metric(&corral, "corral_upstream_fail_fast_total") >= 2);
    CU_ASSERT(harness_metric(&corral, "corral_upstream_down_stale_total") >= 1);
    {
        json_t *root, *u = stats_upstream(&root);
        CU_ASSERT_PTR_NOT_NULL(u);
        CU_ASSERT(json_is_false(json_object_get(u, "healthy")));
        CU_ASSERT(json_is_false(json_object_get(u, "breaker_open")));
        CU_ASSERT(stats_counter(root, "upstream_fail_fast") >= 2);
        CU_ASSERT(stats_counter(root, "upstream_down_stale") >= 1);
        json_decref(root);
    }

    /* healthy again: requests go through */
    CU_ASSERT_EQUAL(upstream_set(&up, "/sh/health", ""), 0);
    CU_ASSERT_EQUAL(upstream_set(&up, "/sh/slow", ""), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/sh/slow"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);

    /* killed: down; restarted: up; each change logged once */
    CU_ASSERT_EQUAL(harness_stop(&up), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 503, body, sizeof(body)), 503);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/sh/other"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"upstream_down\""));
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(harness_restart_upstream(&up), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_healthy"), 1);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/sh/other"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, ": unhealthy, /readyz answers 503"), 2);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "healthy again"), 2);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &corral), 0);
}

/* Retry-After on a fail-fast 503 says when the upstream may be asked again: with a check every 1 s that needs 3 good
 * answers in a row, 3 s while no check has passed (a fixed 1 s would have clients retry into the same 503) */
static void test_retry_after_while_down(void)
{
    static const char *tmpl = "threads: 1\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "  health: { path: /ra/health, interval: 1s, timeout: 500ms, unhealthy_after: 1,"
                              " healthy_after: 3 }\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "routes:\n"
                              "  - match: { prefix: /ra/ }\n";
    char body[512], ra[64];
    cr_resp_t r;

    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, tmpl), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(upstream_set(&up, "/ra/health", "status=503"), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 503, body, sizeof(body)), 503);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/ra/x"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"upstream_down\""));
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "retry-after", ra, sizeof(ra)));
    CU_ASSERT_STRING_EQUAL(ra, "3");
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ra/x"), 0);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &corral), 0);
}

/* ---- the passive breaker, no active check ---- */

static const char *breaker_template = "threads: 1\n"
                                      "listen:\n"
                                      "  - address: 127.0.0.1:${PORT}\n"
                                      "upstream:\n"
                                      "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                      "  breaker: { failures: 3, backoff: 300ms, max_backoff: 1s }\n"
                                      "admin:\n"
                                      "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                      "routes:\n"
                                      "  - match: { prefix: /br/ }\n"
                                      "    cache: false\n";

static void test_breaker_opens_and_probe_closes(void)
{
    char body[512];
    cr_resp_t r;
    int i;

    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up, &corral, breaker_template), 0);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(upstream_set(&up, "/br/x", "status=502"), 0);
    for (i = 0; i != 3; ++i) {
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/br/x"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 502); /* the upstream's own answer, relayed */
        resp_free(&r);
    }
    /* open: fails fast, not sent */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/br/y"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"upstream_down\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/br/y"), 0);
    CU_ASSERT_EQUAL(harness_readyz(&corral, body, sizeof(body)), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "breaker"));
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_breaker_open"), 1);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_breaker_opens_total"), 1);
    {
        json_t *root, *u = stats_upstream(&root);
        CU_ASSERT(json_is_true(json_object_get(u, "breaker_open")));
        CU_ASSERT(json_is_false(json_object_get(u, "healthy")));
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(u, "breaker_opens")), 1);
        json_decref(root);
    }
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "upstream breaker: open after 3"), 1);

    /* the upstream answers again: a half-open probe after the backoff closes the breaker */
    CU_ASSERT_EQUAL(upstream_set(&up, "/br/x", ""), 0);
    CU_ASSERT_EQUAL(get_until(&corral, "/br/x", 200), 200);
    CU_ASSERT_EQUAL(harness_readyz(&corral, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_upstream_breaker_open"), 0);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "upstream breaker: closed"), 1);

    /* the upstream killed: connect errors open it too; restarted: a probe closes it */
    CU_ASSERT_EQUAL(harness_stop(&up), 0);
    for (i = 0; i != 3; ++i) {
        CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/br/x"), NULL), 0);
        CU_ASSERT_EQUAL(r.status, 502);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(harness_readyz(&corral, body, sizeof(body)), 503);
    CU_ASSERT_EQUAL_FATAL(harness_restart_upstream(&up), 0);
    CU_ASSERT_EQUAL(get_until(&corral, "/br/x", 200), 200);
    CU_ASSERT_EQUAL(harness_readyz_until(&corral, 200, body, sizeof(body)), 200);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "upstream breaker: open after"), 2);
    CU_ASSERT_EQUAL(harness_count_in_file(corral.log_path, "upstream breaker: closed"), 2);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &corral), 0);
}

void cr_e2e_register_shedding(void)
{
    CU_pSuite s = CU_add_suite("shedding", NULL, NULL);
    CU_add_test(s, "unhealthy: fail fast 503 (not sent), stale with detail=upstream-down, kill and restart",
                test_unhealthy_fails_fast_and_serves_stale);
    CU_add_test(s, "Retry-After while down: the good checks still needed times the interval", test_retry_after_while_down);
    CU_add_test(s, "breaker: 5xx or connect errors in a row open it, a half-open probe closes it",
                test_breaker_opens_and_probe_closes);
    CU_add_test(s, "adaptive max_concurrency: upstream p99 within 2x unloaded, excess shed, hits never; collapse without",
                test_adaptive_limit_sheds_and_keeps_latency);
}
