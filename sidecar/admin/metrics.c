/*
 * metrics.c: GET /metrics: which series there are and where their figures come from (the text writer is
 * metrics_text.c, the process_* series metrics_process.c). README's "Metrics" section lists every series.
 *
 * Invariants: runs on the admin thread (or a unit test); reads other threads' counters with relaxed atomic loads only
 * (cr_stats_sum, cr_reqstats_sum), the store's, the upstream pool's and the tier's figures through their own
 * accessors, the connection count from core (cr_connections_open) and the current config generation (taken and
 * released once per scrape, for its route names), so nothing here reaches into serve/ or server/. Route label values
 * come from the route-name registry (core/route_slots.h), bounded by the configs loaded, never by request data. The
 * body handed to h2o is owned by the request's pool (a shared entry whose dispose frees it).
 */
#include "corral/admin/metrics.h"

#include "corral/tier/inval_ring.h"
#include "corral/tier/tier.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/cache/store.h"
#include "corral/conf/config.h"
#include "corral/conf/generation.h"
#include "corral/core/log.h"
#include "corral/core/reqstats.h"
#include "corral/core/runtime.h"
#include "corral/fill/health.h"
#include "corral/fill/upstream.h"
#include "corral/http/http.h"
#include "admin_internal.h"

/* The shared tier's series (only with a tier): its counters, refusals by reason, breaker states by server, the
 * cross-pod invalidation delay and the memcached call latency. */
static void write_tier(cr_metrics_t *m, cr_tier_t *tier)
{
    size_t i, open = 0;
    cr_hist_t h;

#define CR_TIER_METRIC(field, name, help) cr_metrics_single(m, name, CR_METRIC_COUNTER, help, CR_TIER_READ(tier, field));
    CR_TIER_COUNTERS(CR_TIER_METRIC)
#undef CR_TIER_METRIC
    cr_metrics_family(m, "tier_values_refused_by_reason_total", CR_METRIC_COUNTER,
                      "L2 values refused, by reason (covered: an invalidation this pod knows of covers it).");
    for (i = 1; i <= CR_TIER_VALUE_NUM_ERRORS; ++i) {
        const char *why = i == CR_TIER_VALUE_NUM_ERRORS ? "covered" : cr_tier_value_error_name((cr_tier_value_error_t)i);
        cr_metric_label_t l = {"reason", cr_str(why, strlen(why))};
        cr_metrics_sample(m, "tier_values_refused_by_reason_total", &l, 1,
                          i == CR_TIER_VALUE_NUM_ERRORS ? CR_TIER_READ(tier, refused_covered) : CR_TIER_READ(tier, refused_by[i]));
    }
    cr_metrics_family(m, "tier_breaker_state", CR_METRIC_GAUGE, "Each memcached server's breaker: 0 closed, 1 open, 2 half-open.");
    for (i = 0; i != cr_mc_num_servers(tier->mc); ++i) {
        cr_breaker_state_t st = cr_mc_breaker_state(tier->mc, i);
        const char *name = cr_mc_server_name(tier->mc, i);
        cr_metric_label_t l = {"server", cr_str(name, strlen(name))};
        open += st != CR_BREAKER_CLOSED;
        cr_metrics_sample(m, "tier_breaker_state", &l, 1, (uint64_t)st);
    }
    cr_metrics_single(m, "tier_breaker_open_servers", CR_METRIC_GAUGE, "memcached servers whose breaker is not closed.", open);
    cr_metrics_single(m, "tier_breaker_changes_total", CR_METRIC_COUNTER, "Breaker state changes, all servers.",
                      cr_mc_breaker_changes(tier->mc));
    cr_metrics_single(m, "tier_memcached_failures_total", CR_METRIC_COUNTER, "memcached calls that failed (timeout, connection, protocol).",
                      cr_mc_failures(tier->mc));
    cr_metrics_single(m, "tier_invalidation_log_position", CR_METRIC_GAUGE, "The last invalidation log entry this pod has seen.",
                      cr_inval_ring_top(tier->ring));
    memset(&h, 0, sizeof(h));
    cr_hist_add(&h, &tier->counters.inval_delay);
    cr_metrics_family(m, "tier_invalidation_delay_seconds", CR_METRIC_HISTOGRAM,
                      "Delay (the publisher's wall clock to here, 1 ms resolution) of the invalidations applied from other pods.");
    cr_metrics_histogram(m, "tier_invalidation_delay_seconds", NULL, 0, &h);
    cr_metrics_single_double(m, "tier_invalidation_delay_max_seconds", CR_METRIC_GAUGE, "The longest such delay.",
                             (double)CR_TIER_READ(tier, inval_delay_ms_max) / 1000.0);
    cr_mc_latency(tier->mc, &h);
    cr_metrics_family(m, "tier_memcached_call_duration_seconds", CR_METRIC_HISTOGRAM,
                      "memcached calls that reached a server (get, set, add, delete, incr), from the call to its answer or failure.");
    cr_metrics_histogram(m, "tier_memcached_call_duration_seconds", NULL, 0, &h);
}

/* Which route slots to write: "(none)", those the current generation names (even before their first request) and
 * any other that has counted a request (a route renamed or removed by a reload, "(other)"). */
static void route_slots_to_write(const cr_reqstats_t *rs, unsigned char *want)
{
    uint64_t gen;
    const cr_config_t *cfg = cr_rt_config_acquire(&gen);
    unsigned slot, k;
    size_t i;

    memset(want, 0, CR_ROUTE_SLOTS);
    want[CR_ROUTE_SLOT_NONE] = 1;
    for (i = 0; cfg != NULL && i != cfg->num_routes; ++i)
        if (cfg->routes[i].stat_slot < CR_ROUTE_SLOTS)
            want[cfg->routes[i].stat_slot] = 1;
    cr_config_release(&cfg);
    for (slot = 0; slot != CR_ROUTE_SLOTS; ++slot)
        for (k = 0; k != CR_OUTCOME_MAX && !want[slot]; ++k)
            want[slot] = rs->requests[slot][k] != 0;
    for (slot = cr_route_slots_used(); slot != CR_ROUTE_SLOTS; ++slot)
        want[slot] = want[slot] && slot == CR_ROUTE_SLOT_OTHER; /* never a slot without a name */
}

/* A family of counters by route and one more label: values[slot * nkeys + k] for the label value keys[k]; label NULL
 * (nkeys 1): by route alone. */
static void write_by_route(cr_metrics_t *m, const char *name, const char *help, const unsigned char *want, const char *label,
                           const char *const *keys, unsigned nkeys, const uint64_t *values)
{
    unsigned slot, k;

    cr_metrics_family(m, name, CR_METRIC_COUNTER, help);
    for (slot = 0; slot != CR_ROUTE_SLOTS; ++slot)
        for (k = 0; want[slot] && k != nkeys; ++k) {
            const char *route = cr_route_slot_name(slot);
            cr_metric_label_t l[] = {{"route", cr_str(route, strlen(route))}, {label, cr_str(NULL, 0)}};
            if (label != NULL)
                l[1].value = cr_str(keys[k], strlen(keys[k]));
            cr_metrics_sample(m, name, l, label != NULL ? 2 : 1, values[slot * nkeys + k]);
        }
}

/* Requests by route and outcome, and by route and status class; latency by outcome; body bytes by coding. */
static void write_requests(cr_metrics_t *m, const cr_reqstats_t *rs)
{
    unsigned char want[CR_ROUTE_SLOTS];
    unsigned k;

    route_slots_to_write(rs, want);
    write_by_route(m, "route_requests_total",
                   "Requests admitted on the traffic listeners, by route (routes[].name; \"(none)\": no route matched) and "
                   "cache outcome, counted when they end.",
                   want, "outcome", cr_outcome_names, CR_OUTCOME_MAX, &rs->requests[0][0]);
    write_by_route(m, "route_responses_total",
                   "Requests by route and the class of the status sent (\"none\": the client left before any status).", want,
                   "code", cr_code_class_names, CR_CODE_CLASS_MAX, &rs->codes[0][0]);
    write_by_route(m, "route_rate_limited_total",
                   "Requests over their route's rate_limit (answered 429, or from a stored object with serve_stale).", want,
                   NULL, NULL, 1, rs->rate_limited);
    cr_metrics_family(m, "request_duration_seconds", CR_METRIC_HISTOGRAM,
                      "Time from a request's arrival to the end of its response, by cache outcome (h2o's loop clock: about 1 ms "
                      "resolution).");
    for (k = 0; k != CR_OUTCOME_MAX; ++k) {
        cr_metric_label_t l = {"outcome", cr_str(cr_outcome_names[k], strlen(cr_outcome_names[k]))};
        cr_metrics_histogram(m, "request_duration_seconds", &l, 1, &rs->latency[k]);
    }
    cr_metrics_family(m, "response_body_bytes_total", CR_METRIC_COUNTER,
                      "Response body bytes sent to clients, by content coding (\"other\": a coding the upstream chose, relayed).");
    for (k = 0; k != CR_BODY_MAX; ++k) {
        cr_metric_label_t l = {"encoding", cr_str(cr_body_encoding_names[k], strlen(cr_body_encoding_names[k]))};
        cr_metrics_sample(m, "response_body_bytes_total", &l, 1, rs->body_bytes[k]);
    }
}

/* issue 16: the concurrency cap (upstream.max_concurrency) and the upstream's health (check and breaker). */
static void write_upstream_protection(cr_metrics_t *m)
{
    unsigned cap;
    size_t inflight;
    uint64_t opens;
    int open;

    cr_upstream_concurrency_stats(&cap, &inflight);
    cr_health_breaker_stats(&open, &opens);
    cr_metrics_single(m, "upstream_concurrency_limit", CR_METRIC_GAUGE,
                      "The upstream.max_concurrency cap now (adaptive: it follows upstream latency); 0: no cap.", cap);
    cr_metrics_single(m, "upstream_concurrency_in_flight", CR_METRIC_GAUGE,
                      "Upstream requests holding a max_concurrency slot now, all threads.", inflight);
    cr_metrics_single(m, "upstream_healthy", CR_METRIC_GAUGE,
                      "1 while the upstream is taken as healthy (active check and breaker), else 0.",
                      (uint64_t)cr_health_upstream_healthy());
    cr_metrics_single(m, "upstream_breaker_open", CR_METRIC_GAUGE, "1 while the upstream breaker is open.", (uint64_t)open);
    cr_metrics_single(m, "upstream_breaker_opens_total", CR_METRIC_COUNTER, "Times the upstream breaker opened.", opens);
}

/* The upstream client: latency to the response head, failures by kind, connections in use. */
static void write_upstream(cr_metrics_t *m, const cr_reqstats_t *rs)
{
    unsigned k;

    cr_metrics_family(m, "upstream_response_seconds", CR_METRIC_HISTOGRAM,
                      "Time from starting an upstream request (fill or pass; a wait for a free connection included) to its "
                      "response head.");
    cr_metrics_histogram(m, "upstream_response_seconds", NULL, 0, &rs->upstream_latency);
    cr_metrics_family(m, "upstream_failures_total", CR_METRIC_COUNTER,
                      "Upstream requests that failed, by kind (connect: refused or unreachable; timeout: connect, I/O or queue; "
                      "protocol: a malformed or cut response; busy: refused at once past limits.queued_fills).");
    for (k = 0; k != CR_UPSTREAM_ERR_MAX; ++k) {
        cr_metric_label_t l = {"kind", cr_str(cr_upstream_error_names[k], strlen(cr_upstream_error_names[k]))};
        cr_metrics_sample(m, "upstream_failures_total", &l, 1, rs->upstream_errors[k]);
    }
    cr_metrics_single(m, "upstream_connections_in_use", CR_METRIC_GAUGE,
                      "Upstream connections in use now (connecting, sending or reading a response), all threads.",
                      cr_upstream_connections_in_use());
    write_upstream_protection(m);
}

/* Config reloads and the build. */
static void write_config(cr_metrics_t *m)
{
    cr_metric_label_t ok = {"result", CR_STR("ok")}, failed = {"result", CR_STR("failed")},
                      version = {"version", CR_STR(CR_VERSION)};
    cr_metrics_family(m, "config_reloads_total", CR_METRIC_COUNTER, "Configuration reloads (SIGHUP, POST /v1/reload), by result.");
    cr_metrics_sample(m, "config_reloads_total", &ok, 1, __atomic_load_n(&cr_rt.reloads_ok, __ATOMIC_RELAXED));
    cr_metrics_sample(m, "config_reloads_total", &failed, 1, __atomic_load_n(&cr_rt.reloads_failed, __ATOMIC_RELAXED));
    cr_metrics_family(m, "build_info", CR_METRIC_GAUGE, "Always 1; the version of this corral.");
    cr_metrics_sample(m, "build_info", &version, 1, 1);
}

void cr_metrics_write_all(cr_metrics_t *m)
{
    cr_stats_t s;
    cr_reqstats_t *rs;
    size_t i, queued, queued_peak;
    uint64_t busy;

    cr_stats_sum(&s);
    for (i = 0; i != cr_stats_num_descs; ++i) {
        const cr_stat_desc_t *d = cr_stats_descs + i;
        cr_metrics_single(m, d->name, d->type, d->help, cr_stats_get(&s, d));
    }
    if ((rs = malloc(sizeof(*rs))) == NULL) {
        m->failed = 1;
        return;
    }
    cr_reqstats_sum(rs);
    write_requests(m, rs);
    write_upstream(m, rs);
    free(rs);
    cr_upstream_queue_stats(&queued, &queued_peak, &busy);
    cr_metrics_single(m, "client_connections", CR_METRIC_GAUGE, "Client connections open (limits.connections).",
                      cr_connections_open());
    cr_metrics_single(m, "upstream_busy_total", CR_METRIC_COUNTER,
                      "Fills and passes refused with 503: limits.queued_fills were waiting.", busy);
    cr_metrics_single(m, "upstream_queued", CR_METRIC_GAUGE, "Requests waiting for a free upstream connection.", queued);
    cr_metrics_single(m, "upstream_queued_peak", CR_METRIC_GAUGE,
                      "The most requests that waited for an upstream connection at once.", queued_peak);
    cr_metrics_single(m, "store_evictions_total", CR_METRIC_COUNTER, "Objects evicted to stay under cache.memory.",
                      cr_store_evictions(cr_rt.store));
    cr_metrics_single(m, "cache_variant_evictions_total", CR_METRIC_COUNTER,
                      "Vary variants evicted to keep a key under limits.variants_per_key.",
                      cr_store_variant_evictions(cr_rt.store));
    cr_metrics_single(m, "store_bytes", CR_METRIC_GAUGE, "Bytes charged to the store.", cr_store_bytes(cr_rt.store));
    cr_metrics_single(m, "store_limit_bytes", CR_METRIC_GAUGE, "The store's byte limit (cache.memory).",
                      cr_store_limit(cr_rt.store));
    cr_metrics_single(m, "store_objects", CR_METRIC_GAUGE, "Objects in the store.", cr_store_count(cr_rt.store));
    cr_metrics_single(m, "uptime_seconds", CR_METRIC_GAUGE, "Seconds since start.", (cr_now_ms() - cr_rt.started_at_ms) / 1000);
    write_config(m);
    if (cr_rt.tier != NULL)
        write_tier(m, cr_rt.tier);
    cr_metrics_write_process(m);
}

static void free_body(void *p)
{
    free(*(char **)p);
}

void cr_admin_send_metrics(h2o_req_t *req)
{
    cr_metrics_t m;
    char **owner;

    cr_metrics_init(&m);
    cr_metrics_write_all(&m);
    if (m.failed || m.base == NULL) {
        cr_metrics_dispose(&m);
        cr_log_error("admin: out of memory writing the metrics text");
        cr_send_json_error(req, 500, "Internal Server Error", "no_memory", "out of memory");
        return;
    }
    owner = h2o_mem_alloc_shared(&req->pool, sizeof(*owner), free_body); /* freed with the request's pool */
    *owner = m.base;
    cr_admin_send_text(req, "text/plain; version=0.0.4; charset=utf-8", m.base, m.len);
}
