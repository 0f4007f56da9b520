/*
 * histogram.c: the bucket table of every corral histogram and the shared-writer and reader halves (histogram.h).
 *
 * Invariants: no state besides the constant tables; no locks (relaxed atomics only).
 */
#include "corral/core/histogram.h"

#include <time.h>

const uint64_t cr_hist_bounds_us[CR_HIST_NUM_BOUNDS] = {500,    1000,   2500,    5000,    10000,   25000,   50000,
                                                        100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
const char *const cr_hist_bound_text[CR_HIST_NUM_BOUNDS] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                                            "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};

void cr_hist_observe_shared(cr_hist_t *h, uint64_t us)
{
    __atomic_add_fetch(&h->buckets[cr_hist_bucket(us)], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_us, us, __ATOMIC_RELAXED);
}

void cr_hist_add(cr_hist_t *dst, const cr_hist_t *src)
{
    unsigned i;
    for (i = 0; i != CR_HIST_NUM_BOUNDS + 1; ++i)
        dst->buckets[i] += __atomic_load_n(&src->buckets[i], __ATOMIC_RELAXED);
    dst->sum_us += __atomic_load_n(&src->sum_us, __ATOMIC_RELAXED);
}

uint64_t cr_hist_count(const cr_hist_t *h)
{
    uint64_t n = 0;
    unsigned i;
    for (i = 0; i != CR_HIST_NUM_BOUNDS + 1; ++i)
        n += h->buckets[i];
    return n;
}

uint64_t cr_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
