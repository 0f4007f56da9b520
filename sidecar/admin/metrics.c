/*
 * metrics.c: GET /metrics, and the Prometheus text writer behind it (metrics.h).
 *
 * Invariants: runs on the admin thread (or a unit test); reads other threads' counters with relaxed atomic loads only
 * (cr_stats_sum), the store's and the upstream pool's figures through their own accessors, and the connection count
 * from core (cr_connections_open), so nothing here reaches into serve/ or server/. The buffer grows by doubling;
 * after a failed allocation nothing more is written and `failed` stays set. The body handed to h2o is owned by the
 * request's pool (a shared entry whose dispose frees it).
 */
#include "corral/admin/metrics.h"

#include "corral/tier/inval_ring.h"
#include "corral/tier/tier.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/cache/store.h"
#include "corral/core/log.h"
#include "corral/core/runtime.h"
#include "corral/fill/upstream.h"
#include "corral/http/http.h"
#include "admin_internal.h"

#define CR_METRICS_INITIAL_CAP 4096

void cr_metrics_init(cr_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
}

void cr_metrics_dispose(cr_metrics_t *m)
{
    free(m->base);
    cr_metrics_init(m);
}

/* Room for `more` bytes plus a NUL; 0, or -1 (and `failed`) when memory ran out. */
static int reserve(cr_metrics_t *m, size_t more)
{
    size_t need, cap;
    char *p;
    if (m->failed)
        return -1;
    need = m->len + more + 1;
    if (need <= m->cap)
        return 0;
    cap = m->cap != 0 ? m->cap : CR_METRICS_INITIAL_CAP;
    while (cap < need)
        cap *= 2;
    if ((p = realloc(m->base, cap)) == NULL) {
        m->failed = 1;
        return -1;
    }
    m->base = p;
    m->cap = cap;
    return 0;
}

static void put(cr_metrics_t *m, const char *s, size_t n)
{
    if (reserve(m, n) != 0)
        return;
    memcpy(m->base + m->len, s, n);
    m->len += n;
    m->base[m->len] = '\0';
}

static void puts_(cr_metrics_t *m, const char *s)
{
    put(m, s, strlen(s));
}

/* Appends s with backslash and newline escaped, and double quotes too when `quotes` (label values). */
static void put_escaped(cr_metrics_t *m, cr_str_t s, int quotes)
{
    size_t i, from = 0;
    for (i = 0; i != s.len; ++i) {
        const char *esc = NULL;
        if (s.base[i] == '\\')
            esc = "\\\\";
        else if (s.base[i] == '\n')
            esc = "\\n";
        else if (quotes && s.base[i] == '"')
            esc = "\\\"";
        if (esc == NULL)
            continue;
        put(m, s.base + from, i - from);
        put(m, esc, 2);
        from = i + 1;
    }
    put(m, s.base + from, s.len - from);
}

void cr_metrics_family(cr_metrics_t *m, const char *name, cr_metric_type_t type, const char *help)
{
    puts_(m, "# HELP corral_");
    puts_(m, name);
    puts_(m, " ");
    put_escaped(m, cr_str(help, strlen(help)), 0);
    puts_(m, "\n# TYPE corral_");
    puts_(m, name);
    puts_(m, type == CR_METRIC_COUNTER ? " counter\n" : " gauge\n");
}

void cr_metrics_sample(cr_metrics_t *m, const char *name, const cr_metric_label_t *labels, size_t nlabels, uint64_t value)
{
    char num[32];
    size_t i;
    puts_(m, "corral_");
    puts_(m, name);
    if (nlabels != 0) {
        puts_(m, "{");
        for (i = 0; i != nlabels; ++i) {
            if (i != 0)
                puts_(m, ",");
            puts_(m, labels[i].name);
            puts_(m, "=\"");
            put_escaped(m, labels[i].value, 1);
            puts_(m, "\"");
        }
        puts_(m, "}");
    }
    put(m, num, (size_t)snprintf(num, sizeof(num), " %llu\n", (unsigned long long)value));
}

void cr_metrics_single(cr_metrics_t *m, const char *name, cr_metric_type_t type, const char *help, uint64_t value)
{
    cr_metrics_family(m, name, type, help);
    cr_metrics_sample(m, name, NULL, 0, value);
}

/* The shared tier's series (only with a tier): its counters, refusals by reason, breaker states by server. */
static void write_tier(cr_metrics_t *m, cr_tier_t *tier)
{
    size_t i, open = 0;

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
    cr_metrics_single(m, "tier_invalidation_delay_ms_sum", CR_METRIC_COUNTER,
                      "Sum of the delays (publisher's wall clock to here) of the invalidations applied from other pods, ms.",
                      CR_TIER_READ(tier, inval_delay_ms_sum));
    cr_metrics_single(m, "tier_invalidation_delay_ms_max", CR_METRIC_GAUGE, "The longest such delay, ms.",
                      CR_TIER_READ(tier, inval_delay_ms_max));
}

void cr_metrics_write_all(cr_metrics_t *m)
{
    cr_stats_t s;
    size_t i, queued, queued_peak;
    uint64_t busy;

    cr_stats_sum(&s);
    for (i = 0; i != cr_stats_num_descs; ++i) {
        const cr_stat_desc_t *d = cr_stats_descs + i;
        cr_metrics_single(m, d->name, d->type, d->help, cr_stats_get(&s, d));
    }
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
    if (cr_rt.tier != NULL)
        write_tier(m, cr_rt.tier);
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
