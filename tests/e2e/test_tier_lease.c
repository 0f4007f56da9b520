/*
 * test_tier_lease.c: the suite "tier_lease": what the other tier suites leave out. A lease holder whose answer is
 * not storable marks the lease "nostore", so a pod waiting on it goes upstream at once instead of waiting out the
 * lease; a soft purge and a purge of everything at one corral reach the other; a corral whose memcached servers are
 * all down still answers every request (no tier errors reach clients).
 *
 * Invariants: as in tier_util.h (real memcached, corral and upstream processes by PID, one Host for all corrals,
 * bounded polls). Timing bounds are correctness bounds (a wait that the lease would make last seconds), with
 * harness_time_scale() for sanitizer builds.
 */
#include <CUnit/CUnit.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tier_util.h"

static tier_env_t env;

static int suite_init(void)
{
    return tier_env_start(&env, 3);
}

static int suite_clean(void)
{
    tier_env_stop(&env);
    return 0;
}

typedef struct {
    const cr_proc_t *c;
    const char *path;
    int delay_ms;
    tier_class_t cls;
    tier_resp_t r;
    long took_ms;
} tl_get_t;

static void *tl_get_thread(void *arg)
{
    tl_get_t *g = arg;
    long t0;
    tier_pause_ms(g->delay_ms);
    t0 = harness_now_ms();
    g->cls = tier_get(g->c, g->path, &g->r);
    g->took_ms = harness_now_ms() - t0;
    return NULL;
}

/* A at t=0 and B at t=50 ms miss one cold key whose 400 ms answer is no-store: A holds the lease, B waits on it; A's
 * answer cannot be stored, so the lease says "nostore" and B goes upstream at once: B's wait is about A's fetch and
 * its own, far below the lease ttl (2 s) plus the one second a missing value would cost. */
static void test_nostore_marker_releases_waiters(void)
{
    cr_proc_t a, b;
    pthread_t ta, tb;
    const char *path = "/tl/nostore?delay=400&cc=no-store";
    tl_get_t ga = {&a, path, 0}, gb = {&b, path, 50};
    long bound = 1500L * harness_time_scale();

    CU_ASSERT_EQUAL_FATAL(tier_env_reset(&env), 0);
    CU_ASSERT_EQUAL_FATAL(tier_start_corral(&a, &env, NULL, 3), 0);
    if (tier_start_corral(&b, &env, NULL, 3) != 0) {
        harness_stop(&a);
        CU_FAIL_FATAL("corral B did not start");
    }
    pthread_create(&ta, NULL, tl_get_thread, &ga);
    pthread_create(&tb, NULL, tl_get_thread, &gb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CU_ASSERT_EQUAL(ga.r.status, 200);
    CU_ASSERT_EQUAL(gb.r.status, 200);
    CU_ASSERT_EQUAL(ga.cls, TIER_MISS);
    CU_ASSERT_EQUAL(gb.cls, TIER_MISS);
    CU_ASSERT_EQUAL(upstream_count(&env.up, "/tl/nostore"), 2); /* each asked once: nothing was storable */
    /* one of them held the lease and the other waited on it, then gave up on "nostore" */
    CU_ASSERT_EQUAL(harness_metric(&a, "corral_tier_leases_taken_total") + harness_metric(&b, "corral_tier_leases_taken_total"), 1);
    CU_ASSERT_EQUAL(harness_metric(&a, "corral_tier_lease_gave_up_total") + harness_metric(&b, "corral_tier_lease_gave_up_total"), 1);
    CU_ASSERT(gb.took_ms < bound);
    fprintf(stderr, "\n    [tier] no-store under a lease: A %ld ms, B %ld ms (bound %ld)\n", ga.took_ms, gb.took_ms, bound);
    CU_ASSERT_EQUAL(harness_stop(&a), 0);
    CU_ASSERT_EQUAL(harness_stop(&b), 0);
}

static size_t tl_discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* B holds path in L1 (it answers "corral; hit"); after `act` at A, B stops answering it from L1 within
 * max_delay and the upstream is asked again. Returns the ms it took, or -1. */
static long tl_until_not_hit(const cr_proc_t *b, const char *path)
{
    long t0 = harness_now_ms(), deadline = t0 + 3000L * harness_time_scale();
    while (harness_now_ms() < deadline) {
        tier_resp_t r;
        if (tier_get(b, path, &r) != TIER_L1_HIT)
            return harness_now_ms() - t0;
        tier_pause_ms(2);
    }
    return -1;
}

static void test_soft_purge_and_purge_all_reach_the_other(void)
{
    cr_proc_t a, b;
    long before, ms_soft, ms_all, status;
    tier_resp_t r;
    CURL *h;

    CU_ASSERT_EQUAL_FATAL(tier_env_reset(&env), 0);
    CU_ASSERT_EQUAL_FATAL(tier_start_corral(&a, &env, NULL, 3), 0);
    if (tier_start_corral(&b, &env, NULL, 3) != 0) {
        harness_stop(&a);
        CU_FAIL_FATAL("corral B did not start");
    }
    /* soft: B's copy becomes stale (no stale window here), so B asks the upstream again */
    CU_ASSERT_EQUAL(tier_get(&b, "/tl/soft", &r), TIER_MISS);
    CU_ASSERT_EQUAL(tier_get(&b, "/tl/soft", &r), TIER_L1_HIT);
    before = upstream_count(&env.up, "/tl/soft");
    CU_ASSERT_EQUAL(tier_admin_purge(&a, "{\"keys\": [\"/tl/soft\"], \"soft\": true}"), 200);
    ms_soft = tl_until_not_hit(&b, "/tl/soft");
    CU_ASSERT(ms_soft >= 0 && ms_soft <= TIER_MAX_DELAY_MS * harness_time_scale());
    CU_ASSERT_EQUAL(upstream_count(&env.up, "/tl/soft"), before + 1);

    /* everything: DELETE /v1/cache at A empties B's L1 too */
    CU_ASSERT_EQUAL(tier_get(&b, "/tl/all", &r), TIER_MISS);
    CU_ASSERT_EQUAL(tier_get(&b, "/tl/all", &r), TIER_L1_HIT);
    before = upstream_count(&env.up, "/tl/all");
    h = curl_easy_init();
    {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/cache", a.admin_port);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tl_discard);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
        CU_ASSERT_EQUAL(curl_easy_perform(h), CURLE_OK);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        CU_ASSERT_EQUAL(status, 200);
    }
    curl_easy_cleanup(h);
    ms_all = tl_until_not_hit(&b, "/tl/all");
    CU_ASSERT(ms_all >= 0 && ms_all <= TIER_MAX_DELAY_MS * harness_time_scale());
    CU_ASSERT_EQUAL(upstream_count(&env.up, "/tl/all"), before + 1);
    fprintf(stderr, "\n    [tier] B stopped hitting after A's soft purge in %ld ms, after A's purge of everything in %ld ms\n",
            ms_soft, ms_all);
    CU_ASSERT_EQUAL(harness_stop(&a), 0);
    CU_ASSERT_EQUAL(harness_stop(&b), 0);
}

/* Every server down from the start: misses go upstream, hits hit, no client sees an error, nothing is waited on. */
static void test_all_servers_down(void)
{
    cr_proc_t c;
    tier_resp_t r;
    int i, errors = 0;

    CU_ASSERT_EQUAL_FATAL(tier_env_reset(&env), 0);
    for (i = 0; i != env.n_mc; ++i)
        CU_ASSERT_EQUAL(mc_stop(&env.mc[i]), 0);
    CU_ASSERT_EQUAL_FATAL(tier_start_corral(&c, &env, NULL, 3), 0);
    for (i = 0; i != 40; ++i) {
        char path[64];
        snprintf(path, sizeof(path), "/tl/down/%d", i % 20);
        if (tier_get(&c, path, &r) == TIER_ERR || r.status != 200)
            ++errors;
    }
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(upstream_count(&env.up, "/tl/down/3"), 1); /* the second GET of each was an L1 hit */
    CU_ASSERT(harness_metric(&c, "corral_tier_l2_errors_total") > 0);
    CU_ASSERT_EQUAL(harness_metric(&c, "corral_tier_l2_hits_total"), 0);
    CU_ASSERT_EQUAL(harness_stop(&c), 0);
    for (i = 0; i != env.n_mc; ++i)
        CU_ASSERT_EQUAL(mc_start(&env.mc[i], env.mc[i].port), 0);
}

void cr_e2e_register_tier_lease(void)
{
    CU_pSuite s = CU_add_suite("tier_lease", suite_init, suite_clean);
    CU_add_test(s, "a no-store answer under a lease releases the other pod at once", test_nostore_marker_releases_waiters);
    CU_add_test(s, "a soft purge and a purge of everything reach the other corral", test_soft_purge_and_purge_all_reach_the_other);
    CU_add_test(s, "every memcached down: no client errors, misses go upstream", test_all_servers_down);
}
