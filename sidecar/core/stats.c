/*
 * stats.c: what the counter table (stats.h) generates beyond the struct: the row descriptors and the sums.
 *
 * Invariants: reads other threads' counters with relaxed atomic loads only; writes only the caller's `out`.
 * No locks.
 */
#include "corral/core/stats.h"

#include <string.h>

#include "corral/core/runtime.h"

#define CR_STATS_DESC(field, name, type, help) {offsetof(cr_stats_t, field), name, CR_METRIC_##type, help},
#define CR_METRIC_counter CR_METRIC_COUNTER
#define CR_METRIC_gauge CR_METRIC_GAUGE
const cr_stat_desc_t cr_stats_descs[] = {CR_STATS_TABLE(CR_STATS_DESC)};
#undef CR_STATS_DESC
const size_t cr_stats_num_descs = sizeof(cr_stats_descs) / sizeof(cr_stats_descs[0]);

void cr_stats_add(cr_stats_t *dst, const cr_stats_t *src)
{
#define CR_STATS_ADD(field, name, type, help) dst->field += __atomic_load_n(&src->field, __ATOMIC_RELAXED);
    CR_STATS_TABLE(CR_STATS_ADD)
#undef CR_STATS_ADD
}

void cr_stats_sum(cr_stats_t *out)
{
    unsigned i;
    memset(out, 0, sizeof(*out));
    for (i = 0; i != cr_rt.nthreads; ++i)
        cr_stats_add(out, &cr_rt.threads[i].stats);
    if (cr_rt.admin_thread != NULL)
        cr_stats_add(out, &cr_rt.admin_thread->stats);
}
