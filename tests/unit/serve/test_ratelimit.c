/*
 * test_ratelimit.c: unit tests for the rate limiter's buckets (serve/ratelimit_table.c) on a fake clock: the burst
 * then the rate, admitted counts over time (burst + rate * t), Retry-After and remaining, keys kept apart, eviction
 * of full buckets and of busy ones (fail open), the 2^44 wrap of the stored time; and the `rate_limit` config keys
 * with their errors; the fleet-wide batches' grant (tier/ratelimit_tier.c).
 * Each test uses its own small table (the process table is left alone).
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "corral/conf/config.h"
#include "corral/serve/ratelimit_table.h"
#include "corral/tier/ratelimit_tier.h"

void cr_test_register_ratelimit(void);

#define SETS 16
static uint64_t words[SETS * CR_RL_WAYS];
static cr_rl_table_t table = {words, SETS - 1};

static void reset(void)
{
    memset((void *)words, 0, sizeof(words));
}

/* key in set `set` with tag `tag` */
static uint64_t key(unsigned set, uint64_t tag)
{
    return (tag << CR_RL_TIME_BITS) | set;
}

static void test_burst_then_rate(void)
{
    cr_rl_verdict_t v;
    uint64_t now = 5000000, T = 10000; /* 100/s */
    int i, admitted = 0;

    reset();
    for (i = 0; i != 100; ++i)
        admitted += cr_rl_table_take(&table, key(1, 7), now, T, 50 * T, &v);
    CU_ASSERT_EQUAL(admitted, 50); /* burst 50 at once */
    CU_ASSERT_EQUAL(v.remaining, 0);
    CU_ASSERT_EQUAL(v.retry_us, T); /* the next token in 10 ms */
    CU_ASSERT_FALSE(cr_rl_table_take(&table, key(1, 7), now + T - 1, T, 50 * T, &v));
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(1, 7), now + T, T, 50 * T, &v));
    CU_ASSERT_EQUAL(v.remaining, 0);
}

/* 1000 requests a second offered for 10 s (at 1 ms steps, the loop clock's resolution): burst + rate * t admitted */
static void test_admitted_over_time(void)
{
    cr_rl_verdict_t v;
    uint64_t start = 77000000, T = 10000, t;
    unsigned admitted = 0;

    reset();
    for (t = 0; t <= 10000000; t += 1000)
        admitted += cr_rl_table_take(&table, key(2, 9), start + t, T, 50 * T, &v);
    CU_ASSERT_EQUAL(admitted, 50 + 100 * 10);
}

static void test_remaining_and_refill(void)
{
    cr_rl_verdict_t v;
    uint64_t now = 1000000, T = 100000; /* 10/s, burst 5 */
    int i;

    reset();
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(3, 1), now, T, 5 * T, &v));
    CU_ASSERT_EQUAL(v.remaining, 4);
    for (i = 0; i != 4; ++i)
        CU_ASSERT_TRUE(cr_rl_table_take(&table, key(3, 1), now, T, 5 * T, &v));
    CU_ASSERT_EQUAL(v.remaining, 0);
    CU_ASSERT_EQUAL(v.reset_us, 5 * T);
    /* half a second later the bucket is full again */
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(3, 1), now + 5 * T, T, 5 * T, &v));
    CU_ASSERT_EQUAL(v.remaining, 4);
}

static void test_keys_apart(void)
{
    cr_rl_verdict_t v;
    uint64_t now = 3000000, T = 1000000; /* 1/s, burst 1 */

    reset();
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(4, 1), now, T, T, &v));
    CU_ASSERT_FALSE(cr_rl_table_take(&table, key(4, 1), now, T, T, &v));
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(4, 2), now, T, T, &v)); /* same set, other tag */
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(5, 1), now, T, T, &v)); /* same tag, other set */
    CU_ASSERT_FALSE(cr_rl_table_take(&table, key(4, 2), now, T, T, &v));
}

static void test_eviction(void)
{
    cr_rl_verdict_t v;
    uint64_t now = 9000000, T = 1000000;
    unsigned i;

    reset();
    /* fill the set's 4 ways with busy keys, the first one least busy (its bucket refills first) */
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(6, 1), now, T, 10 * T, &v));
    for (i = 2; i <= CR_RL_WAYS; ++i) {
        int k;
        for (k = 0; k != 5; ++k)
            CU_ASSERT_TRUE(cr_rl_table_take(&table, key(6, i), now, T, 10 * T, &v));
    }
    /* a fifth key takes over the way of key 1 (nearest to full), and starts with a full bucket */
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(6, 5), now, T, 10 * T, &v));
    CU_ASSERT_EQUAL(v.remaining, 9);
    for (i = 2; i <= CR_RL_WAYS; ++i) { /* the busy ones kept their state */
        CU_ASSERT_TRUE(cr_rl_table_take(&table, key(6, i), now, T, 10 * T, &v));
        CU_ASSERT_EQUAL(v.remaining, 4);
    }
    /* 20 s later every bucket is full: any key may take any way, and finds a full bucket */
    for (i = 10; i != 30; ++i) {
        CU_ASSERT_TRUE(cr_rl_table_take(&table, key(6, i), now + 20 * T, T, 10 * T, &v));
        CU_ASSERT_EQUAL(v.remaining, 9);
    }
}

static void test_time_wrap(void)
{
    cr_rl_verdict_t v;
    uint64_t wrap = 1ull << CR_RL_TIME_BITS, T = 1000000;

    reset();
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(7, 3), wrap - 1, T, T, &v));
    CU_ASSERT_FALSE(cr_rl_table_take(&table, key(7, 3), wrap + 10, T, T, &v)); /* still 1 s minus 11 us to wait */
    CU_ASSERT_EQUAL(v.retry_us, T - 11);
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(7, 3), wrap - 1 + T, T, T, &v));
    /* a word from long ago that the modulo makes look far ahead counts as a full bucket */
    CU_ASSERT_TRUE(cr_rl_table_take(&table, key(7, 3), wrap - 1 + T + wrap / 2 + 5, T, T, &v));
}

static void test_gcra_math(void)
{
    cr_rl_verdict_t v;
    uint64_t next = 0;

    CU_ASSERT_TRUE(cr_rl_gcra(0, 1000, 10, 30, &next, &v));
    CU_ASSERT_EQUAL(next, 1010);
    CU_ASSERT_EQUAL(v.remaining, 2);
    CU_ASSERT_TRUE(cr_rl_gcra(1020, 1000, 10, 30, &next, &v));
    CU_ASSERT_EQUAL(next, 1030);
    CU_ASSERT_EQUAL(v.remaining, 0);
    CU_ASSERT_FALSE(cr_rl_gcra(1030, 1000, 10, 30, &next, &v));
    CU_ASSERT_EQUAL(v.retry_us, 10);
}

/* scope: cluster: what a batch gets from the window's memcached counter */
static void test_cluster_grant(void)
{
    CU_ASSERT_EQUAL(cr_rl_cluster_grant(3, 3, 100), 3);     /* the first batch of the window */
    CU_ASSERT_EQUAL(cr_rl_cluster_grant(100, 3, 100), 3);   /* the last tokens exactly */
    CU_ASSERT_EQUAL(cr_rl_cluster_grant(101, 3, 100), 2);   /* straddles the quota: the part under it */
    CU_ASSERT_EQUAL(cr_rl_cluster_grant(103, 3, 100), 0);   /* all over */
    CU_ASSERT_EQUAL(cr_rl_cluster_grant(5000, 3, 100), 0);
}

/* scope: cluster: the window holds the burst at the rate, 100 ms to the rate's unit, never a faster fleet rate */
static void test_cluster_window(void)
{
    static const struct {
        uint64_t rate, unit_ms, burst, quota, window_ms;
    } cases[] = {
        {100, 1000, 100, 100, 1000},        /* the default burst: the rate's unit */
        {100, 1000, 500, 100, 1000},        /* a burst over the rate's count is held to it */
        {100, 1000, 50, 50, 500},           /* the example */
        {100, 1000, 1, 10, 100},            /* under 100 ms: grown to it */
        {7, 1000, 2, 2, 286},               /* rounded up: 6.99/s, not 7.02/s */
        {1000000000, 1000, 5, 100000000, 100},
        {6, 60000, 1, 1, 10000},
        {1000, 3600000, 10, 10, 36000},
    };
    size_t i;

    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        uint64_t q = 0, w = 0;
        cr_rl_cluster_window(cases[i].rate, cases[i].unit_ms, cases[i].burst, &q, &w);
        CU_ASSERT_EQUAL(q, cases[i].quota);
        CU_ASSERT_EQUAL(w, cases[i].window_ms);
        CU_ASSERT(w >= CR_RL_CLUSTER_MIN_WINDOW_MS && w <= cases[i].unit_ms);
        CU_ASSERT(q * cases[i].unit_ms <= cases[i].rate * w); /* never faster than the rate */
        if (q != cases[i].quota || w != cases[i].window_ms)
            fprintf(stderr, "\ncase %zu: %llu per %llu ms\n", i, (unsigned long long)q, (unsigned long long)w);
    }
}

static cr_config_t *load(const char *yaml, char *err, size_t errsize)
{
    return cr_config_load_string("t.yaml", yaml, strlen(yaml), err, errsize);
}

#define HEAD "listen: [{ address: 127.0.0.1:1 }]\nupstream: { url: \"http://127.0.0.1:9\" }\nroutes:\n  - match: { prefix: /a }\n"

static void test_config(void)
{
    char err[512];
    cr_config_t *cfg = load(HEAD "    rate_limit: { rate: 100/s, burst: 50, by: \"header:X-Api-Key\", applies_to: all }\n", err,
                            sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.rate, 100);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.window_ms, 1000);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.burst, 50);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.by, CR_RL_BY_HEADER);
    CU_ASSERT_STRING_EQUAL(cfg->routes[0].rate_limit.header, "x-api-key");
    CU_ASSERT_TRUE(cfg->routes[0].rate_limit.all);
    CU_ASSERT_FALSE(cfg->routes[0].rate_limit.cluster);
    cr_config_free(&cfg);

    cfg = load(HEAD "    rate_limit: { rate: 6/m }\n", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.window_ms, 60000);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.burst, 6); /* default: the rate's count */
    CU_ASSERT_FALSE(cfg->routes[0].rate_limit.all);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.by, CR_RL_BY_NONE);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.cluster_window_ms, 0); /* scope: pod */
    cr_config_free(&cfg);

    cfg = load("listen: [{ address: 127.0.0.1:1 }]\nupstream: { url: \"http://127.0.0.1:9\" }\n"
               "tier: { memcached: { servers: [\"127.0.0.1:1\"] } }\nroutes:\n  - match: { prefix: /a }\n"
               "    rate_limit: { rate: 100/s, burst: 20, scope: cluster, pods: 2 }\n",
               err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.cluster_quota, 20);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.cluster_window_ms, 200);
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.interval_us, 20000); /* the share: 50/s */
    CU_ASSERT_EQUAL(cfg->routes[0].rate_limit.tau_us, 10 * 20000); /* and burst / pods */
    cr_config_free(&cfg);
}

static void test_config_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {HEAD "    rate_limit: { burst: 5 }\n", "t.yaml:5:17: "},
        {HEAD "    rate_limit: { rate: 10/d }\n", "routes[0].rate_limit.rate: expected N/s"},
        {HEAD "    rate_limit: { rate: 0/s }\n", "routes[0].rate_limit.rate: expected N/s"},
        {HEAD "    rate_limit: { rate: 10, by: ip }\n", "expected none, client or \"header:NAME\", found \"ip\""},
        {HEAD "    rate_limit: { rate: 10, by: \"header:a b\" }\n", "is not a header name"},
        {HEAD "    rate_limit: { rate: 10, applies_to: hits }\n", "applies_to: expected upstream or all"},
        {HEAD "    rate_limit: { rate: 10, pods: 3 }\n", "pods: only applies with scope: cluster"},
        {HEAD "    rate_limit: { rate: 10, scope: cluster }\n", "cluster needs the shared tier"},
        {HEAD "    rate_limit: { rate: 10, rates: 3 }\n", "unknown key \"rates\""},
        {HEAD "    cache: false\n    rate_limit: { rate: 10, serve_stale: true }\n", "serve_stale: the route does not cache"},
    };
    size_t i;

    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char err[512] = "";
        cr_config_t *cfg = load(cases[i].yaml, err, sizeof(err));
        CU_ASSERT_PTR_NULL(cfg);
        if (strstr(err, cases[i].want) == NULL) {
            fprintf(stderr, "\ncase %zu: \"%s\" not in \"%s\"\n", i, cases[i].want, err);
            CU_FAIL("message");
        }
        cr_config_free(&cfg);
    }
}

void cr_test_register_ratelimit(void)
{
    CU_pSuite s = CU_add_suite("ratelimit", NULL, NULL);
    CU_add_test(s, "burst, then the rate", test_burst_then_rate);
    CU_add_test(s, "admitted over 10 s: burst + rate * t", test_admitted_over_time);
    CU_add_test(s, "remaining, reset and refill", test_remaining_and_refill);
    CU_add_test(s, "keys kept apart", test_keys_apart);
    CU_add_test(s, "eviction: full buckets first, then the nearest to full", test_eviction);
    CU_add_test(s, "the stored time wraps at 2^44 us", test_time_wrap);
    CU_add_test(s, "GCRA math", test_gcra_math);
    CU_add_test(s, "scope: cluster grants", test_cluster_grant);
    CU_add_test(s, "scope: cluster window from burst and rate", test_cluster_window);
    CU_add_test(s, "rate_limit config", test_config);
    CU_add_test(s, "rate_limit config errors", test_config_errors);
}
