/*
 * test_concurrency.c: unit tests for the gradient concurrency limiter (sidecar/fill/concurrency.c) on a fake clock:
 * it stays put when not adaptive, shrinks when latency rises over the baseline (never below min, never by more than
 * half a window), grows back when latency returns to it (never past max), does not grow while the upstream is not
 * using the limit, and waits for enough samples before judging a window.
 */
#include <CUnit/CUnit.h>

#include "corral/fill/concurrency.h"

void cr_test_register_concurrency(void);

/* Feeds `n` samples of rtt_us spread over one window, with `inflight` in flight; returns the clock after it. */
static uint64_t window(cr_conc_t *c, uint64_t now, unsigned n, uint64_t rtt_us, size_t inflight)
{
    unsigned i;
    for (i = 0; i != n; ++i)
        cr_conc_sample(c, rtt_us, inflight, now + (uint64_t)(i + 1) * CR_CONC_WINDOW_US / n);
    return now + CR_CONC_WINDOW_US;
}

static void test_not_adaptive(void)
{
    cr_conc_t c;
    uint64_t now = 1000;
    int i;
    cr_conc_init(&c, 64, 4, 0, now);
    for (i = 0; i != 20; ++i)
        now = window(&c, now, 10, i < 2 ? 1000 : 50000, 64);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 64);
}

static void test_shrinks_and_recovers(void)
{
    cr_conc_t c;
    uint64_t now = 0;
    unsigned prev;
    int i;
    cr_conc_init(&c, 64, 2, 1, now);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 64);
    /* the baseline: 10 ms, unloaded */
    now = window(&c, now, 10, 10000, 64);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 64);
    /* latency 3x the baseline: each window shrinks, by at most half */
    prev = cr_conc_limit(&c);
    now = window(&c, now, 10, 30000, 64);
    CU_ASSERT(cr_conc_limit(&c) < prev);
    CU_ASSERT(cr_conc_limit(&c) >= prev / 2);
    for (i = 0; i != 30; ++i)
        now = window(&c, now, 10, 30000, 64);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 2); /* the floor */
    /* under the tolerance (1.2x): it grows back while the limit is used, up to max */
    prev = cr_conc_limit(&c);
    now = window(&c, now, 10, 12000, 64);
    CU_ASSERT(cr_conc_limit(&c) > prev);
    for (i = 0; i != 100; ++i)
        now = window(&c, now, 10, 10000, 64);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 64);
}

static void test_app_limited_does_not_grow(void)
{
    cr_conc_t c;
    uint64_t now = 0;
    int i;
    cr_conc_init(&c, 64, 1, 1, now);
    now = window(&c, now, 10, 10000, 64);
    now = window(&c, now, 10, 40000, 64); /* 4x: halved */
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 32);
    for (i = 0; i != 10; ++i)
        now = window(&c, now, 10, 10000, 3); /* fast again, but only 3 in flight: no reason to grow */
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 32);
}

static void test_needs_samples(void)
{
    cr_conc_t c;
    uint64_t now = 0;
    cr_conc_init(&c, 16, 1, 1, now);
    now = window(&c, now, 10, 10000, 16);
    /* a window of 2 samples is not judged, however slow: it carries over */
    now = window(&c, now, 2, 100000, 16);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 16);
    now = window(&c, now, CR_CONC_MIN_SAMPLES, 100000, 16);
    CU_ASSERT(cr_conc_limit(&c) < 16);
}

static void test_baseline_follows_slowly(void)
{
    cr_conc_t c;
    uint64_t now = 0;
    int i;
    cr_conc_init(&c, 32, 1, 1, now);
    now = window(&c, now, 10, 10000, 32);
    /* the upstream becomes 2x slower for good: the limit first drops, and the baseline drifts up to the new normal,
     * after which the limit grows back to max */
    for (i = 0; i != 2000; ++i)
        now = window(&c, now, 10, 20000, 32);
    CU_ASSERT(c.base_us > 15000);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 32);
}

/* A few fast answers (a cheap endpoint) in a window of usual ones do not become the baseline: the median does. */
static void test_baseline_is_a_median(void)
{
    cr_conc_t c;
    uint64_t now = 0;
    int i;
    cr_conc_init(&c, 16, 1, 1, now);
    for (i = 0; i != 2; ++i)
        cr_conc_sample(&c, 1000, 16, now + 10);
    for (i = 0; i != 5; ++i)
        cr_conc_sample(&c, 50000, 16, now + CR_CONC_WINDOW_US);
    CU_ASSERT_EQUAL(c.base_us, 50000);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 16); /* mean 36 ms: under 1.3x */
    now += CR_CONC_WINDOW_US;
    now = window(&c, now, 10, 60000, 16); /* 1.2x: grows, or stays at max */
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 16);
    now = window(&c, now, 10, 100000, 16); /* 2x: shrinks */
    CU_ASSERT(cr_conc_limit(&c) < 16);
}

static void test_bounds(void)
{
    cr_conc_t c;
    cr_conc_init(&c, 0, 0, 1, 0);
    CU_ASSERT_EQUAL(cr_conc_limit(&c), 1);
    cr_conc_init(&c, 8, 20, 1, 0);
    CU_ASSERT_EQUAL(c.min_limit, 8);
}

void cr_test_register_concurrency(void)
{
    CU_pSuite s = CU_add_suite("concurrency", NULL, NULL);
    CU_add_test(s, "not adaptive: fixed", test_not_adaptive);
    CU_add_test(s, "shrinks over the baseline, recovers", test_shrinks_and_recovers);
    CU_add_test(s, "no growth while the limit is not used", test_app_limited_does_not_grow);
    CU_add_test(s, "a window needs samples", test_needs_samples);
    CU_add_test(s, "baseline follows a slower upstream", test_baseline_follows_slowly);
    CU_add_test(s, "bounds", test_bounds);
    CU_add_test(s, "the baseline is a median", test_baseline_is_a_median);
}
