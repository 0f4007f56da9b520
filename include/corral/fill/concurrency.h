/*
 * concurrency.h: the upstream concurrency limiter's arithmetic (upstream.max_concurrency, issue 16), a pure state
 * machine on a caller-given clock so that it can be tested on a fake one (concurrency.c).
 *
 * A gradient limiter in the style of Netflix's concurrency-limits: the response times of upstream requests (from the
 * moment a request got its slot to its response head) are collected in windows of CR_CONC_WINDOW_US. At the end of a
 * window with at least CR_CONC_MIN_SAMPLES samples, its mean is compared with the baseline, the lowest window
 * median seen (a median, not the minimum, so that a few fast answers of a cheap endpoint do not pin the baseline
 * under what the API's usual requests take; it drifts up by 1/1024 of the gap per window, so a permanently slower
 * upstream is followed):
 *   mean > CR_CONC_TOLERANCE x baseline: the limit shrinks by the gradient, limit *= max(0.5, tolerance x base / mean);
 *   otherwise, when the window used at least half the limit: the limit grows by max(1, sqrt(limit) / 2);
 * Samples of requests that started before the last change of the limit are left out (they measure the old one: without
 * this, the window after a change still sees the old latency and the limit overshoots).
 * always bounded to [min, max]. Not adaptive: the limit stays at max. A window with fewer samples carries over.
 *
 * Invariants: min_limit >= 1, min_limit <= limit <= max_limit. Locking: cr_conc_t has none; the caller serialises
 * calls (the process's slots below hold one mutex around cr_conc_sample and publish the limit in an atomic).
 */
#ifndef CORRAL_CONCURRENCY_H
#define CORRAL_CONCURRENCY_H

#include <stddef.h>
#include <stdint.h>

#define CR_CONC_WINDOW_US 100000 /* 100 ms */
#define CR_CONC_MIN_SAMPLES 5
#define CR_CONC_TOLERANCE 1.3 /* the mean may be this much over the baseline: leaves room for the tail under 2x */
#define CR_CONC_MAX_KEPT 64 /* samples of a window kept for its median (the first ones; all count in the mean) */

typedef struct st_cr_conc_t {
    unsigned max_limit, min_limit;
    int adaptive;
    double limit;
    uint64_t window_start_us;
    uint64_t sum_us;
    uint64_t kept[CR_CONC_MAX_KEPT];
    unsigned count;
    size_t max_inflight;
    uint64_t base_us; /* 0: none yet */
    uint64_t changed_us; /* when the limit last changed: samples of requests started before it are left out */
} cr_conc_t;

/* max_limit >= 1; min_limit is clamped to [1, max_limit]. The limit starts at max_limit. */
void cr_conc_init(cr_conc_t *c, unsigned max_limit, unsigned min_limit, int adaptive, uint64_t now_us);
/* One upstream response time, with the requests in flight when it ended. Returns 1 when the limit changed. */
int cr_conc_sample(cr_conc_t *c, uint64_t rtt_us, size_t inflight, uint64_t now_us);
/* The current limit (an integer in [min_limit, max_limit]). */
unsigned cr_conc_limit(const cr_conc_t *c);

/*
 * The process's slots (upstream.max_concurrency), shared by every worker's upstream client (fill/upstream.c says why
 * one count rather than per-thread shares): an atomic count of the requests in flight under an atomic cap, which the
 * adaptive limiter above moves (fed under one mutex, on the miss path only). Lock-free except for the sample.
 */
/* Sets the cap up once per process; later calls do nothing. Returns 1 for the call that did it, else 0. */
int cr_conc_slots_init(unsigned limit, unsigned min_limit, int adaptive);
/* Is there a cap? */
int cr_conc_slots_on(void);
/* Takes a slot: 1, or 0 when the cap is reached. Always 1 without a cap. */
int cr_conc_slot_take(void);
/* Gives back a slot taken with cr_conc_slot_take. */
void cr_conc_slot_give(void);
/* A response time (slot at since_us, cr_monotonic_us(), to the head or a timeout) for the adaptive cap. */
void cr_conc_slot_sample(uint64_t since_us);
/* The cap now (0: none) and the requests holding a slot. Any thread. */
void cr_upstream_concurrency_stats(unsigned *cap, size_t *inflight);

#endif
