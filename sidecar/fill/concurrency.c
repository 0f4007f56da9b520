/*
 * concurrency.c: the gradient concurrency limiter's arithmetic (see concurrency.h for the rule).
 *
 * Invariants: min_limit <= limit <= max_limit after every call; the window's accumulators are reset when a window is
 * evaluated. The process's slots: `inflight` never stays over `cap` (a take that passes it undoes itself); `cap` 0
 * means no cap and never changes after init then. Locking: cr_conc_t has none; the slots' limiter is fed under
 * slots_mutex, `cap` and `inflight` are atomics (relaxed: counts, nothing is published through them).
 */
#include "corral/fill/concurrency.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "corral/core/histogram.h" /* cr_monotonic_us */

void cr_conc_init(cr_conc_t *c, unsigned max_limit, unsigned min_limit, int adaptive, uint64_t now_us)
{
    *c = (cr_conc_t){0};
    c->max_limit = max_limit != 0 ? max_limit : 1;
    c->min_limit = min_limit == 0 ? 1 : min_limit > c->max_limit ? c->max_limit : min_limit;
    c->adaptive = adaptive;
    c->limit = c->max_limit;
    c->window_start_us = now_us;
}

unsigned cr_conc_limit(const cr_conc_t *c)
{
    return (unsigned)c->limit;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The end of a window with enough samples: the baseline, then the limit. */
static void evaluate(cr_conc_t *c)
{
    double mean = (double)c->sum_us / c->count, limit = c->limit;
    unsigned kept = c->count < CR_CONC_MAX_KEPT ? c->count : CR_CONC_MAX_KEPT;
    uint64_t median;
    qsort(c->kept, kept, sizeof(c->kept[0]), cmp_u64);
    median = c->kept[kept / 2];
    if (c->base_us == 0 || median < c->base_us)
        c->base_us = median;
    else
        c->base_us += (median - c->base_us) / 1024; /* follows an upstream that became slower for good */
    if (mean > CR_CONC_TOLERANCE * (double)c->base_us) {
        double gradient = CR_CONC_TOLERANCE * (double)c->base_us / mean;
        limit *= gradient < 0.5 ? 0.5 : gradient;
    } else if ((double)c->max_inflight * 2 >= limit) {
        double step = sqrt(limit) / 2;
        limit += step < 1 ? 1 : step;
    }
    if (limit < c->min_limit)
        limit = c->min_limit;
    if (limit > c->max_limit)
        limit = c->max_limit;
    c->limit = floor(limit);
}

int cr_conc_sample(cr_conc_t *c, uint64_t rtt_us, size_t inflight, uint64_t now_us)
{
    unsigned before = cr_conc_limit(c);
    if (!c->adaptive)
        return 0;
    if (now_us - rtt_us < c->changed_us)
        return 0; /* started under the limit before the last change: says nothing of the new one */
    if (c->count < CR_CONC_MAX_KEPT)
        c->kept[c->count] = rtt_us;
    c->sum_us += rtt_us;
    ++c->count;
    if (inflight > c->max_inflight)
        c->max_inflight = inflight;
    if (now_us - c->window_start_us < CR_CONC_WINDOW_US || c->count < CR_CONC_MIN_SAMPLES)
        return 0;
    evaluate(c);
    c->window_start_us = now_us;
    c->sum_us = 0;
    c->count = 0;
    c->max_inflight = 0;
    if (cr_conc_limit(c) == before)
        return 0;
    c->changed_us = now_us;
    return 1;
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* the process's slots */

static unsigned cap;
static size_t inflight;
static int slots_adaptive, slots_ready;
static cr_conc_t slots_limiter;
static pthread_mutex_t slots_mutex = PTHREAD_MUTEX_INITIALIZER;

int cr_conc_slots_init(unsigned limit, unsigned min_limit, int adaptive)
{
    int did = 0;
    pthread_mutex_lock(&slots_mutex);
    if (!slots_ready) {
        slots_ready = did = 1;
        cr_conc_init(&slots_limiter, limit, min_limit, adaptive, cr_monotonic_us());
        slots_adaptive = limit != 0 && adaptive;
        __atomic_store_n(&cap, limit, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&slots_mutex);
    return did;
}

int cr_conc_slots_on(void)
{
    return __atomic_load_n(&cap, __ATOMIC_RELAXED) != 0;
}

int cr_conc_slot_take(void)
{
    unsigned c = __atomic_load_n(&cap, __ATOMIC_RELAXED);
    if (c == 0)
        return 1;
    if (__atomic_add_fetch(&inflight, 1, __ATOMIC_RELAXED) > c) {
        __atomic_sub_fetch(&inflight, 1, __ATOMIC_RELAXED);
        return 0;
    }
    return 1;
}

void cr_conc_slot_give(void)
{
    if (__atomic_load_n(&cap, __ATOMIC_RELAXED) != 0)
        __atomic_sub_fetch(&inflight, 1, __ATOMIC_RELAXED);
}

void cr_conc_slot_sample(uint64_t since_us)
{
    uint64_t now;
    if (!slots_adaptive)
        return;
    now = cr_monotonic_us();
    pthread_mutex_lock(&slots_mutex);
    if (cr_conc_sample(&slots_limiter, now - since_us, __atomic_load_n(&inflight, __ATOMIC_RELAXED), now))
        __atomic_store_n(&cap, cr_conc_limit(&slots_limiter), __ATOMIC_RELAXED);
    pthread_mutex_unlock(&slots_mutex);
}

void cr_upstream_concurrency_stats(unsigned *c, size_t *n)
{
    *c = __atomic_load_n(&cap, __ATOMIC_RELAXED);
    *n = __atomic_load_n(&inflight, __ATOMIC_RELAXED);
}
