/*
 * stats_json.h: GET /v1/stats, the process's current totals as one JSON object (stats_json.c), read by the status
 * page (status_page.h) and by anyone who wants numbers without parsing the Prometheus text.
 *
 * Shape (version 1; every count is a total since start, a rate is the client's difference of two readings):
 *   {"version": 1, "timestamp_ms": wall ms, "uptime_ms": N, "threads": N,
 *    "counters": {one field per row of stats.h's table, by its field name: "requests", "hits", "misses", "stale",
 *                 "passes", "coalesced", "coalesce_timeouts", "upstream_requests", "upstream_errors", ...},
 *    "connections": {"open": N},
 *    "upstream": {"queued", "queued_peak", "busy", "connections_in_use": N,
 *                 "latency": {"count", "sum_s", "buckets": [[le_s or null for +Inf, cumulative], ...]}},
 *    "store": {"objects", "bytes", "limit_bytes", "evictions", "variant_evictions"},
 *    "memory": {"rss_bytes": N or null, "store_bytes": N},
 *    "reloads": {"ok", "failed"},
 *    "tier": null, or {one field per tier counter (tier.h), "servers", "breaker_open_servers", "failures",
 *                      "invalidation_delay_ms_max"},
 *    "routes": [{"name" (the route label of /metrics), "match": {"prefix"|"exact": path, "methods": [...] (absent:
 *                all)}, "cache": bool, "totals": {"requests", "hits", "misses", "stale", "passes", "coalesced",
 *                "bypass", "l2_hits", "codes": {"1xx".."5xx", "none"}}}, ...],
 *    "routes_total": N, "routes_truncated": bool}
 * A null is a figure that could not be read (memory ran out for the sum of the labelled counters), never a made-up 0.
 * Route totals are those of the route's name (core/route_slots.h), so they survive a reload that keeps the name.
 *
 * Bound: the text is at most CR_STATS_JSON_MAX bytes. The fixed part is small; routes are added in config order
 * while they fit, and the rest are left out with "routes_truncated": true ("routes_total" still counts them all).
 *
 * Invariants: runs on the admin thread (or a unit test); reads other threads' counters with relaxed loads only
 * (cr_stats_sum), the store, upstream queue and tier through their own accessors. No locks of its own.
 */
#ifndef CORRAL_ADMIN_STATS_JSON_H
#define CORRAL_ADMIN_STATS_JSON_H

#include <h2o.h>
#include <jansson.h>

#include "corral/conf/config.h"
#include "corral/core/reqstats.h"
#include "corral/core/stats.h"
#include "corral/tier/tier.h"

#define CR_STATS_JSON_MAX ((size_t)256 * 1024)

/* One reading of everything /v1/stats reports but the routes (which come from a config generation). */
typedef struct st_cr_stats_view_t {
    uint64_t now_ms;    /* wall clock, ms since the epoch */
    uint64_t uptime_ms;
    unsigned threads;   /* traffic workers */
    cr_stats_t counters; /* every thread's, summed */
    size_t connections_open;
    size_t upstream_queued, upstream_queued_peak;
    uint64_t upstream_busy;
    size_t store_objects, store_bytes, store_limit;
    uint64_t store_evictions, store_variant_evictions;
    uint64_t rss_bytes; /* 0: unknown (written as null) */
    uint64_t reloads_ok, reloads_failed;
    cr_tier_t *tier;    /* NULL: no tier ("tier": null) */
    const cr_reqstats_t *req; /* the labelled counters, every thread's summed (core/reqstats.h): per-route totals and
                                 the upstream latency; NULL: not known ("totals" and "latency" are null) */
    size_t upstream_in_use;   /* upstream connections in use, all threads; SIZE_MAX: not known (null) */
    /* origin protection (issue 16): the max_concurrency cap now (0: none) and the slots held, the upstream's health
     * (active check and breaker) and the breaker's state and opens */
    unsigned concurrency_limit;
    size_t concurrency_in_flight;
    int upstream_healthy, breaker_open;
    uint64_t breaker_opens;
} cr_stats_view_t;

/* Fills v from the running process (cr_rt, /proc/self/statm). Any thread; cr_rt.store must be set. v->req points
 * into `req`, which the caller keeps while v is used (a large block: on the heap). req may be NULL. */
void cr_stats_view_collect(cr_stats_view_t *v, cr_reqstats_t *req);

/* The resident set size from /proc/self/statm, in bytes, or 0 when it cannot be read. */
uint64_t cr_stats_rss_bytes(void);

/* The JSON object for v and cfg's routes (cfg may be NULL: no routes), its text at most `budget` bytes once written
 * compactly. Returns a new reference, or NULL when memory ran out. */
json_t *cr_stats_json_build(const cr_stats_view_t *v, const cr_config_t *cfg, size_t budget);

/* GET /v1/stats: collects, builds with CR_STATS_JSON_MAX and answers 200 (500 when memory runs out). cfg: the admin
 * thread's generation for this request. */
void cr_admin_handle_stats(h2o_req_t *req, const cr_config_t *cfg);

#endif
