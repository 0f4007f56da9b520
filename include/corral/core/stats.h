/*
 * stats.h: the per-thread counters, declared once in one X-macro table (CR_STATS_TABLE).
 *
 * Each row is X(field, name, type, help): the cr_stats_t field, the Prometheus name without its "corral_" prefix, the
 * Prometheus type (counter or gauge, as a bare word) and the HELP text. The table generates the struct below, the
 * field-by-field sum (cr_stats_add) and the rows of the metrics output (admin/metrics.c walks cr_stats_descs), so a
 * new counter is one new row. Rows are in the order /metrics writes them.
 *
 * Labels. The labelled series (by route, outcome, status class, content coding; the latency histograms) are not in
 * this table: they are per-thread arrays indexed by the label's value, in core/reqstats.h, and admin/metrics.c writes
 * them. This table keeps the unlabelled process-wide counters.
 *
 * Invariants: a thread writes only its own cr_stats_t (CR_STAT_INC); other threads read it with relaxed atomic loads
 * only (cr_stats_add), so the hot path touches no shared cache line and takes no lock.
 */
#ifndef CORRAL_STATS_H
#define CORRAL_STATS_H

#include <stddef.h>
#include <stdint.h>

/* clang-format off */
#define CR_STATS_TABLE(X) \
    X(requests, "requests_total", counter, "Requests received on the traffic listeners.") \
    X(hits, "cache_hits_total", counter, "Requests answered fresh from the store.") \
    X(misses, "cache_misses_total", counter, "Cacheable requests that needed the upstream.") \
    X(stale, "cache_stale_served_total", counter, "Stale objects served (max-stale or stale-while-revalidate).") \
    X(passes, "passes_total", counter, "Requests passed to the upstream uncached.") \
    X(coalesced, "coalesced_total", counter, "Requests answered by another request's fill.") \
    /* waiters that gave up on a fill and went upstream themselves */ \
    X(coalesce_timeouts, "coalesce_timeouts_total", counter, \
      "Waiters that gave up on a fill after coalesce.timeout and went upstream.") \
    X(stored, "stored_total", counter, "Objects stored.") \
    X(not_stored, "not_stored_total", counter, "Fills whose response could not be stored.") \
    /* 304 from upstream refreshed an object */ \
    X(revalidated, "revalidated_total", counter, "Stale objects refreshed by a 304 from the upstream.") \
    /* 304 sent to clients */ \
    X(not_modified, "not_modified_total", counter, "304 answers sent to clients from the store.") \
    X(upstream_requests, "upstream_requests_total", counter, "Requests sent to the upstream.") \
    X(upstream_errors, "upstream_errors_total", counter, "Upstream requests that failed (refused, timeout, protocol).") \
    /* requests refused by the rapid-reset guard */ \
    X(guard_rejections, "guard_rejections_total", counter, \
      "Requests refused because their connection cancelled too many (rapid reset).") \
    X(invalidations, "invalidations_total", counter, "Write-through invalidations.") \
    /* client connections closed at accept: over limits.connections (conn_watch.h) */ \
    X(connections_refused, "connections_refused_total", counter, \
      "Client connections closed at accept past limits.connections.") \
    /* HTTP/2 connections closed for an unfinished frame or header block */ \
    X(header_timeouts, "header_timeouts_total", counter, "HTTP/2 connections closed for an unfinished frame or header block.") \
    /* 100 ms listener pauses after accept ran out of descriptors or memory */ \
    X(accept_pauses, "accept_pauses_total", counter, "100 ms listener pauses after accept ran out of descriptors.") \
    /* fills cancelled before they were sent: every waiter had gone */ \
    X(fills_dropped, "fills_dropped_total", counter, "Fills cancelled before they were sent upstream: every waiter had gone.") \
    /* hit-for-pass markers stored: a response that could not be stored sends the key's next requests upstream */ \
    X(pass_markers, "hit_for_pass_markers_total", counter, \
      "Hit-for-pass markers stored (coalesce.pass_ttl): later requests for the key bypass the cache.") \
    /* admin purges (POST /v1/purge, DELETE /v1/cache) and what they removed or marked stale */ \
    X(purges, "purges_total", counter, "Admin purges (POST /v1/purge and DELETE /v1/cache).") \
    X(purged_objects, "purged_objects_total", counter, "Objects removed or marked stale by admin purges.") \
    /* access-log lines dropped: the destination was full or failing (accesslog.h) */ \
    X(access_log_dropped, "access_log_dropped_total", counter, "Access-log lines dropped because the destination was full or failing.")
/* clang-format on */

/* Per-thread counters; each written only by its own thread. */
typedef struct st_cr_stats_t {
#define CR_STATS_FIELD(field, name, type, help) uint64_t field;
    CR_STATS_TABLE(CR_STATS_FIELD)
#undef CR_STATS_FIELD
} cr_stats_t;

/* Counts one event in a thread's own counters. Only the owning thread writes them; the store is atomic (relaxed, a
 * plain move on x86) so that other threads' relaxed loads in cr_stats_add() are not a data race. */
#define CR_STAT_INC(stats, field) __atomic_store_n(&(stats).field, (stats).field + 1, __ATOMIC_RELAXED)
/* The same, by n. */
#define CR_STAT_ADD(stats, field, n) __atomic_store_n(&(stats).field, (stats).field + (n), __ATOMIC_RELAXED)

typedef enum en_cr_metric_type_t { CR_METRIC_COUNTER, CR_METRIC_GAUGE, CR_METRIC_HISTOGRAM } cr_metric_type_t;

/* One row of the table, for writers that walk it (admin/metrics.c). */
typedef struct st_cr_stat_desc_t {
    size_t offset; /* of the uint64_t in cr_stats_t */
    const char *name; /* Prometheus name without "corral_" */
    cr_metric_type_t type;
    const char *help;
} cr_stat_desc_t;

extern const cr_stat_desc_t cr_stats_descs[];
extern const size_t cr_stats_num_descs;

/* The value of one row in s (a relaxed load). */
static inline uint64_t cr_stats_get(const cr_stats_t *s, const cr_stat_desc_t *d)
{
    return __atomic_load_n((const uint64_t *)((const char *)s + d->offset), __ATOMIC_RELAXED);
}

/* Adds every counter of src (relaxed loads: src may be another thread's, being written) to dst, field by field. */
void cr_stats_add(cr_stats_t *dst, const cr_stats_t *src);

/* Sums every thread's counters (the traffic workers' and the admin thread's) into out. Any thread. */
void cr_stats_sum(cr_stats_t *out);

#endif
