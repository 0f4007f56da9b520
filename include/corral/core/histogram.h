/*
 * histogram.h: fixed-bucket latency histograms (Prometheus histograms in seconds), kept in microseconds.
 *
 * Every histogram in corral has the same bucket bounds (cr_hist_bounds_us, 0.5 ms to 10 s, and +Inf), so a bucket is
 * chosen with a few compares and the text writer names them from one table (cr_hist_bound_text). Buckets are not
 * cumulative here; the writer adds them up. The count is the sum of the buckets.
 *
 * Invariants and locking: two ways to write. cr_hist_observe is for a histogram only one thread writes (a per-thread
 * block, core/reqstats.h): relaxed loads and stores, no read-modify-write, no lock. cr_hist_observe_shared is for one
 * written by several threads (the tier's worker threads): relaxed atomic adds. Readers (cr_hist_add) use relaxed
 * loads, so a scrape may see a bucket and the sum from slightly different moments; each value is never torn.
 */
#ifndef CORRAL_HISTOGRAM_H
#define CORRAL_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define CR_HIST_NUM_BOUNDS 14

typedef struct st_cr_hist_t {
    uint64_t buckets[CR_HIST_NUM_BOUNDS + 1]; /* [i]: observations <= bound i and > bound i-1; the last: +Inf */
    uint64_t sum_us;
} cr_hist_t;

/* Upper bounds of the buckets, in microseconds, ascending; and the same as Prometheus `le` texts in seconds. */
extern const uint64_t cr_hist_bounds_us[CR_HIST_NUM_BOUNDS];
extern const char *const cr_hist_bound_text[CR_HIST_NUM_BOUNDS];

/* The bucket of an observation of `us` microseconds: the first bound >= us, or CR_HIST_NUM_BOUNDS (+Inf). */
static inline unsigned cr_hist_bucket(uint64_t us)
{
    unsigned i = 0;
    while (i != CR_HIST_NUM_BOUNDS && us > cr_hist_bounds_us[i])
        ++i;
    return i;
}

#define CR_HIST_BUMP_(p, n) __atomic_store_n((p), __atomic_load_n((p), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

/* Records one observation in a histogram only the calling thread writes. */
static inline void cr_hist_observe(cr_hist_t *h, uint64_t us)
{
    CR_HIST_BUMP_(&h->buckets[cr_hist_bucket(us)], 1);
    CR_HIST_BUMP_(&h->sum_us, us);
}

/* Records one observation in a histogram several threads write. */
void cr_hist_observe_shared(cr_hist_t *h, uint64_t us);

/* dst += src, bucket by bucket (relaxed loads of src, which may be another thread's). */
void cr_hist_add(cr_hist_t *dst, const cr_hist_t *src);

/* The number of observations (the sum of the buckets). */
uint64_t cr_hist_count(const cr_hist_t *h);

/* A monotonic clock in microseconds (CLOCK_MONOTONIC through the vDSO: no system call). */
uint64_t cr_monotonic_us(void);

#endif
