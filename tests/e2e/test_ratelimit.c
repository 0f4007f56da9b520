/*
 * test_ratelimit.c: the "ratelimit" suite (issue 16): routes' `rate_limit` through the real corral and the test
 * upstream. Bucket accuracy (requests offered faster than the rate: admitted within burst + rate * t), per-key
 * isolation (header:x-api-key), `applies_to: upstream` leaving hits unlimited while misses are limited (the upstream's
 * own count shows what reached it), `applies_to: all` limiting hits too, the 429's headers and JSON body, the metric
 * by route, serve_stale answering from a stored object, and `scope: cluster` with memcached unreachable (each pod
 * admits its share, and says so once in the log).
 *
 * Invariants: one corral and one upstream for the suite (a second corral for the cluster test, stopped by PID in the
 * test); each test has its own route, so buckets never carry over; most limits are per minute so that nothing
 * refills during a test (no timing in the assertions), and the accuracy test's bounds allow for a slow machine.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <sys/time.h>

#include "harness.h"
#include "mc_harness.h"
#include "tier_util.h"

void cr_e2e_register_ratelimit(void);

static cr_proc_t up, corral;

static const char *const conf = "threads: 2\n"
                                "listen:\n"
                                "  - address: 127.0.0.1:${PORT}\n"
                                "upstream:\n"
                                "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                "admin:\n"
                                "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                "routes:\n"
                                "  - match: { prefix: /acc }\n"
                                "    name: acc\n"
                                "    cache: false\n"
                                "    rate_limit: { rate: 50/s, burst: 10 }\n"
                                "  - match: { prefix: /key }\n"
                                "    name: key\n"
                                "    rate_limit: { rate: 3/m, by: \"header:x-api-key\", applies_to: all }\n"
                                "  - match: { prefix: /up }\n"
                                "    name: up\n"
                                "    rate_limit: { rate: 5/m, burst: 5, applies_to: upstream }\n"
                                "  - match: { prefix: /all }\n"
                                "    name: all\n"
                                "    rate_limit: { rate: 3/m, applies_to: all }\n"
                                "  - match: { prefix: /stale }\n"
                                "    name: stale\n"
                                "    stale_if_unreachable: 0s\n"
                                "    rate_limit: { rate: 1/m, burst: 1, serve_stale: true }\n";

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, conf);
}

static int suite_clean(void)
{
    return harness_stop_pair(&up, &corral);
}

static long get(const char *path, const char *const *headers, cr_resp_t *r)
{
    if (http_get(r, CR_H1, url_of(&corral, path), headers) != 0)
        fprintf(stderr, "GET %s: %s\n", path, http_last_error());
    return r->status;
}

static long get_status(const char *path, const char *const *headers)
{
    cr_resp_t r;
    long s = get(path, headers, &r);
    resp_free(&r);
    return s;
}

/* 50/s, burst 10, offered as fast as one client can for 2 s: admitted <= burst + rate * elapsed (+1 for the clock's
 * millisecond), and not far below it (the bucket holds 200 ms of tokens, so only a stall longer than that loses any) */
static void test_bucket_accuracy(void)
{
    long start = harness_now_ms(), end = start, ok = 0, refused = 0, other = 0, n = 0;
    double elapsed_s, ceiling;

    while ((end = harness_now_ms()) - start < 2000 && n < 20000) {
        long s = get_status("/acc/x", NULL);
        ok += s == 200;
        refused += s == 429;
        other += s != 200 && s != 429;
        ++n;
    }
    elapsed_s = (end - start) / 1000.0;
    ceiling = 10 + 50 * elapsed_s + 1;
    fprintf(stderr, "\n  accuracy: %ld requests in %.2f s: %ld admitted (ceiling %.1f), %ld refused\n", n, elapsed_s, ok, ceiling,
            refused);
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT(ok <= (long)ceiling);
    CU_ASSERT(refused > 0);
    if (n > 4 * ceiling) /* offered well over the rate all along: the floor holds */
        CU_ASSERT(ok >= (long)(0.8 * (10 + 50 * elapsed_s)));
    CU_ASSERT_EQUAL(upstream_count(&up, "/acc/x"), ok);
}

static void test_per_key_isolation(void)
{
    const char *const a[] = {"x-api-key: alpha", NULL}, *const b[] = {"x-api-key: beta", NULL};
    int i;

    for (i = 0; i != 3; ++i)
        CU_ASSERT_EQUAL(get_status("/key/1?cc=max-age=60", a), 200);
    CU_ASSERT_EQUAL(get_status("/key/1?cc=max-age=60", a), 429);
    CU_ASSERT_EQUAL(get_status("/key/2?cc=max-age=60", a), 429); /* the key's bucket, whatever the path */
    for (i = 0; i != 3; ++i)
        CU_ASSERT_EQUAL(get_status("/key/1?cc=max-age=60", b), 200);
    CU_ASSERT_EQUAL(get_status("/key/1?cc=max-age=60", b), 429);
    for (i = 0; i != 3; ++i) /* no header: one more bucket, shared by every request without it */
        CU_ASSERT_EQUAL(get_status("/key/1?cc=max-age=60", NULL), 200);
    CU_ASSERT_EQUAL(get_status("/key/1?cc=max-age=60", NULL), 429);
}

static void test_upstream_only_leaves_hits(void)
{
    int i, ok = 0, refused = 0;
    char path[64];

    CU_ASSERT_EQUAL(get_status("/up/hot?cc=max-age=60", NULL), 200); /* a miss: 1 token of 5 */
    for (i = 0; i != 50; ++i) {
        long hit = -1, s = 0;
        hit = harness_get_hit(&corral, "/up/hot?cc=max-age=60", &s, NULL, 0);
        CU_ASSERT_EQUAL(s, 200);
        CU_ASSERT_EQUAL(hit, 1);
    }
    for (i = 0; i != 10; ++i) {
        long s;
        snprintf(path, sizeof(path), "/up/cold%d?cc=max-age=60", i);
        s = get_status(path, NULL);
        ok += s == 200;
        refused += s == 429;
    }
    CU_ASSERT_EQUAL(ok, 4);
    CU_ASSERT_EQUAL(refused, 6);
    CU_ASSERT_EQUAL(upstream_count(&up, "/up/hot"), 1);
    for (i = 0, ok = 0; i != 10; ++i) {
        snprintf(path, sizeof(path), "/up/cold%d", i);
        ok += (int)upstream_count(&up, path);
    }
    CU_ASSERT_EQUAL(ok, 4); /* the refused ones never reached it */
    /* the hot object is still served: hits stay unlimited after the bucket ran dry */
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/up/hot?cc=max-age=60", NULL, NULL, 0), 1);
    CU_ASSERT_EQUAL(harness_metric(&corral, "corral_route_rate_limited_total{route=\"up\"}"), 6);
}

static void test_all_limits_hits(void)
{
    CU_ASSERT_EQUAL(get_status("/all/x?cc=max-age=60", NULL), 200);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/all/x?cc=max-age=60", NULL, NULL, 0), 1);
    CU_ASSERT_EQUAL(harness_get_hit(&corral, "/all/x?cc=max-age=60", NULL, NULL, 0), 1);
    CU_ASSERT_EQUAL(get_status("/all/x?cc=max-age=60", NULL), 429);
    CU_ASSERT_EQUAL(upstream_count(&up, "/all/x"), 1);
}

static void test_429_headers_and_body(void)
{
    cr_resp_t r;
    char buf[256];
    long retry;

    CU_ASSERT_EQUAL(get("/up/never?cc=max-age=60", NULL, &r), 429); /* a miss; the bucket is dry (test above) */
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "retry-after", buf, sizeof(buf)));
    retry = atol(buf);
    CU_ASSERT(retry >= 1 && retry <= 12); /* 5/m: a token every 12 s */
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "ratelimit-policy", buf, sizeof(buf)));
    CU_ASSERT_STRING_EQUAL(buf, "\"default\";q=5;w=60");
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "ratelimit", buf, sizeof(buf)));
    CU_ASSERT(strncmp(buf, "\"default\";r=0;t=", 16) == 0 && atol(buf + 16) == retry);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "content-type", buf, sizeof(buf)));
    CU_ASSERT_STRING_EQUAL(buf, "application/json");
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "cache-control", buf, sizeof(buf)));
    CU_ASSERT_STRING_EQUAL(buf, "no-store");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"rate_limited\""));
    resp_free(&r);
}

/* 1/m, serve_stale: the first fetch takes the token; once the object is stale, the refill is over the limit and the
 * stored object answers (Cache-Status says why) instead of 429; a key never stored gets 429. */
static void test_serve_stale(void)
{
    cr_resp_t r;
    char cs[256] = "";
    long deadline = harness_now_ms() + 5000 * harness_time_scale();
    int served_stale = 0;

    CU_ASSERT_EQUAL(get_status("/stale/x?cc=max-age=1", NULL), 200);
    while (!served_stale && harness_now_ms() < deadline) {
        CU_ASSERT_EQUAL(get("/stale/x?cc=max-age=1", NULL, &r), 200);
        cs[0] = '\0';
        resp_header(&r, "cache-status", cs, sizeof(cs));
        served_stale = strstr(cs, "detail=rate-limited") != NULL;
        resp_free(&r);
        if (!served_stale)
            harness_wait_port(corral.port, 50); /* a bounded pause: returns at once, the port is open */
    }
    CU_ASSERT_TRUE(served_stale);
    CU_ASSERT_EQUAL(upstream_count(&up, "/stale/x"), 1);
    CU_ASSERT_EQUAL(get_status("/stale/other", NULL), 429);
}

/* scope: cluster with the only memcached server unreachable: 10/m over 2 pods, so this pod admits its share, 5 (and
 * the one request it let through while its first batch was being asked for); logged once */
static void test_cluster_fallback(void)
{
    cr_proc_t c;
    char yaml[1024];
    int i, ok = 0;
    int dead = harness_free_port();

    snprintf(yaml, sizeof(yaml),
             "threads: 1\nlisten:\n  - address: 127.0.0.1:${PORT}\nupstream:\n  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
             "tier:\n  memcached: { servers: [\"127.0.0.1:%d\"], timeout: 20ms }\n"
             "routes:\n  - match: { prefix: /fleet }\n    cache: false\n"
             "    rate_limit: { rate: 10/m, scope: cluster, pods: 2 }\n",
             dead);
    CU_ASSERT_EQUAL_FATAL(harness_start_corral(&c, yaml, &up), 0);
    for (i = 0; i != 12; ++i) {
        cr_resp_t r;
        ok += http_get(&r, CR_H1, url_of(&c, "/fleet/x"), NULL) == 0 && r.status == 200;
        resp_free(&r);
    }
    CU_ASSERT(ok >= 5 && ok <= 6);
    CU_ASSERT_EQUAL(harness_stop(&c), 0);
    CU_ASSERT_EQUAL(harness_count_in_file(c.log_path, "memcached did not answer; each pod admits its share"), 1);
}

/* One client hammering one corral for the fleet test: requests until end_ms (wall clock), pausing pause_ms between. */
typedef struct {
    cr_proc_t *corral;
    long pause_ms, end_ms;
    long ok, refused, other, sent;
} fleet_client_t;

static long wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec * 1000L + tv.tv_usec / 1000;
}

static void *fleet_client(void *_c)
{
    fleet_client_t *c = _c;
    while (wall_ms() < c->end_ms && c->sent < 100000) {
        cr_resp_t r;
        long s = http_get(&r, CR_H1, url_of(c->corral, "/fleet/x"), NULL) == 0 ? r.status : 0;
        resp_free(&r);
        c->ok += s == 200;
        c->refused += s == 429;
        c->other += s != 200 && s != 429;
        ++c->sent;
        if (c->pause_ms != 0)
            tier_pause_ms((int)c->pause_ms);
    }
    return NULL;
}

/* corral.yaml for a scope: cluster test: `threads` workers, the one memcached at mc_port, an uncached route on
 * `prefix` with the rate_limit mapping's inside `limit` */
static void cluster_yaml(char *yaml, size_t size, int threads, int mc_port, const char *prefix, const char *limit)
{
    snprintf(yaml, size,
             "threads: %d\nlisten:\n  - address: 127.0.0.1:${PORT}\nupstream:\n  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
             "tier:\n  memcached: { servers: [\"127.0.0.1:%d\"], timeout: 50ms }\n"
             "routes:\n  - match: { prefix: %s }\n    cache: false\n"
             "    rate_limit: { %s }\n",
             threads, mc_port, prefix, limit);
}

/* 100/s fleet-wide over 3 corrals and one memcached, under uneven load (one client unpaced, one every 2 ms, one every
 * 25 ms), for 10 whole windows (seconds, aligned to the wall clock as corral's windows are): the fleet admits
 * 1000 +- 5%, and exactly what it admitted reached the upstream. */
static void test_cluster_fleet(void)
{
    mc_proc_t mc;
    cr_proc_t c[3];
    fleet_client_t cl[3];
    pthread_t th[3];
    char yaml[1024];
    long start, ok = 0, refused = 0, other = 0;
    int i, started = 0;

    memset(c, 0, sizeof(c));
    CU_ASSERT_EQUAL_FATAL(mc_start(&mc, 0), 0);
    cluster_yaml(yaml, sizeof(yaml), 2, mc.port, "/fleet", "rate: 100/s, scope: cluster, pods: 3");
    for (i = 0; i != 3; ++i)
        if (harness_start_corral(&c[i], yaml, &up) == 0)
            ++started;
    CU_ASSERT_EQUAL(started, 3);
    if (started == 3) {
        upstream_reset(&up);
        start = (wall_ms() / 1000 + 2) * 1000; /* a window boundary, a second or two ahead */
        tier_pause_ms((int)(start - wall_ms()));
        for (i = 0; i != 3; ++i) {
            memset(&cl[i], 0, sizeof(cl[i]));
            cl[i].corral = &c[i];
            cl[i].pause_ms = i == 0 ? 0 : i == 1 ? 2 : 25;
            cl[i].end_ms = start + 10000;
            CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, fleet_client, &cl[i]), 0);
        }
        for (i = 0; i != 3; ++i) {
            pthread_join(th[i], NULL);
            fprintf(stderr, "\n  pod %d: %ld sent, %ld admitted, %ld refused", i, cl[i].sent, cl[i].ok, cl[i].refused);
            ok += cl[i].ok;
            refused += cl[i].refused;
            other += cl[i].other;
        }
        fprintf(stderr, "\n  fleet: %ld admitted over 10 s at 100/s (goal 1000 +- 50)\n", ok);
        CU_ASSERT_EQUAL(other, 0);
        CU_ASSERT(refused > 0);
        CU_ASSERT(ok >= 950 && ok <= 1050);
        CU_ASSERT_EQUAL(upstream_count(&up, "/fleet/x"), ok);
    }
    for (i = 0; i != 3; ++i)
        if (c[i].pid != 0)
            CU_ASSERT_EQUAL(harness_stop(&c[i]), 0);
    mc_stop(&mc);
}

/* scope: cluster honours burst: 100/s with burst 10 is counted in 100 ms windows of 10 tokens (one pod, one
 * memcached), so one unpaced client over a second, from a window boundary on, is admitted about 10 per 100 ms
 * throughout: at most 3 windows' worth (and what it borrowed) in the first 250 ms, where a per-second count would
 * admit the whole 100, and tokens still in the last 500 ms. */
static void test_cluster_burst(void)
{
    mc_proc_t mc;
    cr_proc_t c;
    char yaml[1024];
    long start, t, ok = 0, early = 0, late = 0, other = 0, sent = 0;

    CU_ASSERT_EQUAL_FATAL(mc_start(&mc, 0), 0);
    cluster_yaml(yaml, sizeof(yaml), 1, mc.port, "/burst", "rate: 100/s, burst: 10, scope: cluster");
    if (harness_start_corral(&c, yaml, &up) == 0) {
        upstream_reset(&up);
        start = (wall_ms() / 1000 + 1) * 1000;
        tier_pause_ms((int)(start - wall_ms()));
        while ((t = wall_ms() - start) < 1000 && sent < 100000) {
            cr_resp_t r;
            long st = http_get(&r, CR_H1, url_of(&c, "/burst/x"), NULL) == 0 ? r.status : 0;
            resp_free(&r);
            ++sent;
            other += st != 200 && st != 429;
            if (st == 200) {
                ++ok;
                early += t < 250;
                late += t >= 500;
            }
        }
        fprintf(stderr, "\n  %ld sent, %ld admitted (%ld in the first 250 ms, %ld in the last 500 ms)\n", sent, ok, early, late);
        CU_ASSERT_EQUAL(other, 0);
        CU_ASSERT(sent > 200); /* offered well over the rate */
        CU_ASSERT(ok >= 85 && ok <= 120);
        CU_ASSERT(early <= 40); /* 3 windows of 10 and 1 borrowed; a whole-second window lets ~100 through here */
        CU_ASSERT(late >= 35);
        CU_ASSERT_EQUAL(upstream_count(&up, "/burst/x"), ok);
        CU_ASSERT_EQUAL(harness_stop(&c), 0);
    } else {
        CU_FAIL("corral did not start");
    }
    mc_stop(&mc);
}

void cr_e2e_register_ratelimit(void)
{
    CU_pSuite s = CU_add_suite("ratelimit", suite_init, suite_clean);
    CU_add_test(s, "bucket accuracy: admitted within burst + rate * t", test_bucket_accuracy);
    CU_add_test(s, "per-key isolation (header:x-api-key)", test_per_key_isolation);
    CU_add_test(s, "applies_to: upstream leaves hits unlimited", test_upstream_only_leaves_hits);
    CU_add_test(s, "applies_to: all limits hits too", test_all_limits_hits);
    CU_add_test(s, "429: Retry-After, RateLimit, RateLimit-Policy, JSON body", test_429_headers_and_body);
    CU_add_test(s, "serve_stale: a stored object instead of 429", test_serve_stale);
    CU_add_test(s, "scope: cluster with memcached down: this pod's share", test_cluster_fallback);
    CU_add_test(s, "scope: cluster: 3 pods, uneven load, within 5% of the fleet rate", test_cluster_fleet);
    CU_add_test(s, "scope: cluster: burst sizes the fleet's windows", test_cluster_burst);
}
