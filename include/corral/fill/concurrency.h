/*
 * concurrency.h: the upstream concurrency limiter's arithmetic (upstream.max_concurrency, issue 16), a pure state
 * machine on a caller-given clock so that it can be tested on a fake one (concurrency.c).
 *
 * A gradient limiter in the style of Netflix's concurrency-limits: the response times of upstream requests (from the
 * moment a request got its slot to its response head) are collected in windows of CR_CONC_WINDOW_US. At the end of a
 * window with at least CR_CONC_MIN_SAMPLES samples, its mean is compared with the baseline, the lowest window
 * minimum seen (which drifts up by 1/256 of the gap per window, so a permanently slower upstream is followed):
 *   mean > CR_CONC_TOLERANCE x baseline: the limit shrinks by the gradient, limit *= max(0.5, tolerance x base / mean);
 *   otherwise, when the window used at least half the limit: the limit grows by max(1, sqrt(limit)) (additive);
 * always bounded to [min, max]. Not adaptive: the limit stays at max. A window with fewer samples carries over.
 *
 * Invariants: min_limit >= 1, min_limit <= limit <= max_limit. Locking: none here; the caller serialises calls
 * (upstream.c holds one mutex around cr_conc_sample and publishes the limit in an atomic).
 */
#ifndef CORRAL_CONCURRENCY_H
#define CORRAL_CONCURRENCY_H

#include <stddef.h>
#include <stdint.h>

#define CR_CONC_WINDOW_US 100000 /* 100 ms */
#define CR_CONC_MIN_SAMPLES 5
#define CR_CONC_TOLERANCE 1.5

typedef struct st_cr_conc_t {
    unsigned max_limit, min_limit;
    int adaptive;
    double limit;
    uint64_t window_start_us;
    uint64_t sum_us, win_min_us;
    unsigned count;
    size_t max_inflight;
    uint64_t base_us; /* 0: none yet */
} cr_conc_t;

/* max_limit >= 1; min_limit is clamped to [1, max_limit]. The limit starts at max_limit. */
void cr_conc_init(cr_conc_t *c, unsigned max_limit, unsigned min_limit, int adaptive, uint64_t now_us);
/* One upstream response time, with the requests in flight when it ended. Returns 1 when the limit changed. */
int cr_conc_sample(cr_conc_t *c, uint64_t rtt_us, size_t inflight, uint64_t now_us);
/* The current limit (an integer in [min_limit, max_limit]). */
unsigned cr_conc_limit(const cr_conc_t *c);

#endif
