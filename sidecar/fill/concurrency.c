/*
 * concurrency.c: the gradient concurrency limiter's arithmetic (see concurrency.h for the rule).
 *
 * Invariants: min_limit <= limit <= max_limit after every call; the window's accumulators are reset when a window is
 * evaluated. Locking: none; the caller serialises (upstream.c).
 */
#include "corral/fill/concurrency.h"

#include <math.h>

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

/* The end of a window with enough samples: the baseline, then the limit. */
static void evaluate(cr_conc_t *c)
{
    double mean = (double)c->sum_us / c->count, limit = c->limit;
    if (c->base_us == 0 || c->win_min_us < c->base_us)
        c->base_us = c->win_min_us;
    else
        c->base_us += (c->win_min_us - c->base_us) / 256; /* follows an upstream that became slower for good */
    if (mean > CR_CONC_TOLERANCE * (double)c->base_us) {
        double gradient = CR_CONC_TOLERANCE * (double)c->base_us / mean;
        limit *= gradient < 0.5 ? 0.5 : gradient;
    } else if ((double)c->max_inflight * 2 >= limit) {
        double step = sqrt(limit);
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
    if (c->count == 0 || rtt_us < c->win_min_us)
        c->win_min_us = rtt_us;
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
    return cr_conc_limit(c) != before;
}
