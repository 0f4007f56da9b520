/*
 * stats_json.c: GET /v1/stats (stats_json.h): one reading of the process's totals (cr_stats_view_collect) written as a
 * JSON object with jansson, bounded to CR_STATS_JSON_MAX bytes.
 *
 * Invariants: runs on the admin thread (or a unit test). Counters of other threads are read with relaxed loads only
 * (cr_stats_sum); the store, the upstream queue, the concurrency cap, the health state and the tier through their
 * accessors, which are safe from any thread.
 * Nothing is written, no lock is taken here. The fixed part of the object is a few KiB whatever the load; only the
 * route list grows with the config, and it is cut (in config order, "routes_truncated": true) so that the whole text
 * stays within the budget. Figures corral does not measure yet are JSON null, never 0: see the stats_json_* hooks
 * below, which are where they get wired.
 */
#include "corral/admin/stats_json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral/cache/store.h"
#include "corral/core/runtime.h"
#include "corral/fill/health.h"
#include "corral/fill/upstream.h"
#include "corral/http/json_error.h"
#include "admin_internal.h"

/* Room left for the closing of the object after the routes: "]" and "}" with some slack. */
#define CR_STATS_JSON_TAIL 16

uint64_t cr_stats_rss_bytes(void)
{
    unsigned long long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    FILE *fp = fopen("/proc/self/statm", "r");
    int n;
    if (fp == NULL)
        return 0;
    n = fscanf(fp, "%llu %llu", &size, &resident);
    fclose(fp);
    if (n != 2 || page <= 0)
        return 0;
    return (uint64_t)resident * (uint64_t)page;
}

void cr_stats_view_collect(cr_stats_view_t *v, cr_reqstats_t *req)
{
    memset(v, 0, sizeof(*v));
    if (req != NULL) {
        cr_reqstats_sum(req);
        v->req = req;
    }
    v->upstream_in_use = cr_upstream_connections_in_use();
    v->now_ms = cr_tier_wall_ms();
    v->uptime_ms = cr_now_ms() - cr_rt.started_at_ms;
    v->threads = cr_rt.nthreads;
    cr_stats_sum(&v->counters);
    v->connections_open = cr_connections_open();
    cr_upstream_queue_stats(&v->upstream_queued, &v->upstream_queued_peak, &v->upstream_busy);
    v->store_objects = cr_store_count(cr_rt.store);
    v->store_bytes = cr_store_bytes(cr_rt.store);
    v->store_limit = cr_store_limit(cr_rt.store);
    v->store_evictions = cr_store_evictions(cr_rt.store);
    v->store_variant_evictions = cr_store_variant_evictions(cr_rt.store);
    v->rss_bytes = cr_stats_rss_bytes();
    v->reloads_ok = __atomic_load_n(&cr_rt.reloads_ok, __ATOMIC_RELAXED);
    v->reloads_failed = __atomic_load_n(&cr_rt.reloads_failed, __ATOMIC_RELAXED);
    v->tier = cr_rt.tier;
    cr_upstream_concurrency_stats(&v->concurrency_limit, &v->concurrency_in_flight);
    v->upstream_healthy = cr_health_upstream_healthy();
    cr_health_breaker_stats(&v->breaker_open, &v->breaker_opens);
}

static json_t *num(uint64_t n)
{
    return json_integer(n > (uint64_t)LLONG_MAX ? LLONG_MAX : (json_int_t)n); /* json_int_t is long long */
}

/* A string of the config's bytes. Config strings come from libyaml (UTF-8), but a match form decodes escapes, so a
 * byte that is not UTF-8 is possible: then the bytes >= 0x80 are shown as '?' rather than the route left out. */
static json_t *str_of(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    char *copy;
    size_t i;
    if (j != NULL || (copy = malloc(len + 1)) == NULL)
        return j;
    for (i = 0; i != len; ++i)
        copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    j = json_stringn(copy, len);
    free(copy);
    return j;
}

/* Upstream latency, from the histogram of /metrics' corral_upstream_response_seconds: {"count", "sum_s",
 * "buckets": [[le_s, cumulative], ...]} (the last bucket's le is null: +Inf). The page draws each interval's mean. */
static json_t *stats_json_upstream_latency(const cr_stats_view_t *v)
{
    json_t *o, *b;
    uint64_t cum = 0;
    unsigned i;
    if (v->req == NULL)
        return json_null();
    if ((b = json_array()) == NULL)
        return NULL;
    for (i = 0; i <= CR_HIST_NUM_BOUNDS; ++i) {
        cum += v->req->upstream_latency.buckets[i];
        json_array_append_new(b, json_pack("[oI]", i < CR_HIST_NUM_BOUNDS ? json_real((double)cr_hist_bounds_us[i] / 1e6) : json_null(),
                                           (json_int_t)cum));
    }
    o = json_pack("{s:o,s:o,s:o}", "count", num(cum), "sum_s", json_real((double)v->req->upstream_latency.sum_us / 1e6),
                  "buckets", b);
    return o;
}

static json_t *stats_json_upstream_in_use(const cr_stats_view_t *v)
{
    return v->upstream_in_use != SIZE_MAX ? num(v->upstream_in_use) : json_null();
}

/* "upstream": the queue, connections and latency, and origin protection: the concurrency cap and its slots held,
 * health and the breaker (what shedding and failing fast did is in "counters": upstream_shed, upstream_fail_fast,
 * upstream_down_stale). */
static json_t *stats_json_upstream(const cr_stats_view_t *v)
{
    return json_pack("{s:o?, s:o?, s:o?, s:o?, s:o?, s:o?, s:o?, s:b, s:b, s:o?}", "queued", num(v->upstream_queued),
                     "queued_peak", num(v->upstream_queued_peak), "busy", num(v->upstream_busy), "connections_in_use",
                     stats_json_upstream_in_use(v), "latency", stats_json_upstream_latency(v), "concurrency_limit",
                     num(v->concurrency_limit), "concurrency_in_flight", num(v->concurrency_in_flight), "healthy",
                     v->upstream_healthy, "breaker_open", v->breaker_open, "breaker_opens", num(v->breaker_opens));
}

/*
 * Per-route totals of route `idx` of cfg, from the labelled counters of /metrics (its route-name slot: routes of
 * one name, across reloads, share them): {"requests", "hits", "misses", "stale", "passes", "coalesced", "bypass",
 * "l2_hits", "codes": {"2xx": N, ...}}. null when the counters are not known.
 */
static json_t *stats_json_route_totals(const cr_stats_view_t *v, const cr_config_t *cfg, size_t idx)
{
    const cr_route_config_t *r = cfg->routes + idx;
    const uint64_t *req, *codes;
    uint64_t total = 0;
    json_t *c;
    unsigned i;
    if (v->req == NULL || r->stat_slot >= CR_ROUTE_SLOTS)
        return json_null();
    req = v->req->requests[r->stat_slot];
    codes = v->req->codes[r->stat_slot];
    for (i = 0; i != CR_OUTCOME_MAX; ++i)
        total += req[i];
    if ((c = json_object()) == NULL)
        return NULL;
    for (i = 0; i != CR_CODE_CLASS_MAX; ++i)
        json_object_set_new(c, cr_code_class_names[i], num(codes[i]));
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "requests", num(total), "hits", num(req[CR_OUTCOME_HIT]),
                     "misses", num(req[CR_OUTCOME_MISS]), "stale", num(req[CR_OUTCOME_STALE]), "passes",
                     num(req[CR_OUTCOME_PASS]), "coalesced", num(req[CR_OUTCOME_COLLAPSED]), "bypass",
                     num(req[CR_OUTCOME_BYPASS]), "l2_hits", num(req[CR_OUTCOME_L2_HIT]), "codes", c);
}

/* The name a route is known by: its `name` (default: its match, as in /metrics' route label). */
static json_t *stats_json_route_name(const cr_route_config_t *r)
{
    if (r->name != NULL)
        return str_of(r->name, strlen(r->name));
    return str_of(r->match_path, r->match_path_len);
}

static json_t *route_methods(unsigned bits)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{CR_METHOD_GET, "GET"},       {CR_METHOD_HEAD, "HEAD"},     {CR_METHOD_POST, "POST"},
                 {CR_METHOD_PUT, "PUT"},       {CR_METHOD_PATCH, "PATCH"},   {CR_METHOD_DELETE, "DELETE"},
                 {CR_METHOD_OPTIONS, "OPTIONS"}, {CR_METHOD_OTHER, "other"}};
    json_t *a = json_array();
    size_t i;
    for (i = 0; a != NULL && i != sizeof(names) / sizeof(names[0]); ++i)
        if ((bits & names[i].bit) != 0)
            json_array_append_new(a, json_string(names[i].name));
    return a;
}

static json_t *route_json(const cr_stats_view_t *v, const cr_config_t *cfg, size_t idx)
{
    const cr_route_config_t *r = cfg->routes + idx;
    json_t *o = json_object(), *match = json_object();
    if (o == NULL || match == NULL) {
        json_decref(o);
        json_decref(match);
        return NULL;
    }
    json_object_set_new(match, r->match_kind == CR_MATCH_EXACT ? "exact" : "prefix", str_of(r->match_path, r->match_path_len));
    if ((r->methods & CR_METHOD_ALL) != CR_METHOD_ALL)
        json_object_set_new(match, "methods", route_methods(r->methods));
    json_object_set_new(o, "name", stats_json_route_name(r));
    json_object_set_new(o, "match", match);
    json_object_set_new(o, "cache", json_boolean(r->cache));
    json_object_set_new(o, "totals", stats_json_route_totals(v, cfg, idx));
    return o;
}

/* The configured routes of cfg (its generation, in config order), as many as fit in `room` bytes of compact text
 * (commas included). *truncated is set when some were left out. NULL when memory ran out. */
static json_t *stats_json_routes(const cr_stats_view_t *v, const cr_config_t *cfg, size_t room, int *truncated)
{
    json_t *a = json_array();
    size_t i, used = 0;
    *truncated = 0;
    for (i = 0; a != NULL && cfg != NULL && i != cfg->num_routes; ++i) {
        json_t *r = route_json(v, cfg, i);
        size_t len = r != NULL ? json_dumpb(r, NULL, 0, JSON_COMPACT) : 0;
        if (r == NULL) {
            json_decref(a);
            return NULL;
        }
        if (used + len + 1 > room) {
            json_decref(r);
            *truncated = 1;
            break;
        }
        used += len + 1;
        json_array_append_new(a, r);
    }
    return a;
}

static json_t *counters_json(const cr_stats_t *s)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
#define CR_STATS_JSON_FIELD(field, name, type, help) json_object_set_new(o, #field, num(s->field));
    CR_STATS_TABLE(CR_STATS_JSON_FIELD)
#undef CR_STATS_JSON_FIELD
    return o;
}

static json_t *tier_json(cr_tier_t *tier)
{
    json_t *o;
    size_t i, open = 0;
    if (tier == NULL)
        return json_null();
    if ((o = json_object()) == NULL)
        return NULL;
#define CR_STATS_JSON_TIER(field, name, help) json_object_set_new(o, #field, num(CR_TIER_READ(tier, field)));
    CR_TIER_COUNTERS(CR_STATS_JSON_TIER)
#undef CR_STATS_JSON_TIER
    for (i = 0; i != cr_mc_num_servers(tier->mc); ++i)
        open += cr_mc_breaker_state(tier->mc, i) != CR_BREAKER_CLOSED;
    json_object_set_new(o, "servers", num(cr_mc_num_servers(tier->mc)));
    json_object_set_new(o, "breaker_open_servers", num(open));
    json_object_set_new(o, "failures", num(cr_mc_failures(tier->mc)));
    json_object_set_new(o, "invalidation_delay_ms_max", num(CR_TIER_READ(tier, inval_delay_ms_max)));
    return o;
}

/* json_pack with "o" steals each value; "o?" writes null for a NULL one, so an allocation failure inside shows as a
 * missing figure instead of a crash, and the object itself NULL only when it could not be made at all. */
json_t *cr_stats_json_build(const cr_stats_view_t *v, const cr_config_t *cfg, size_t budget)
{
    json_t *root, *routes;
    size_t fixed;
    int truncated;

    root = json_pack("{s:i, s:o?, s:o?, s:I, s:o?, s:{s:o?}, s:o?, s:{s:o?, s:o?, s:o?, s:o?, s:o?},"
                     " s:{s:o?, s:o?}, s:{s:o?, s:o?}, s:o?, s:o?, s:b}",
                     "version", 1, "timestamp_ms", num(v->now_ms), "uptime_ms", num(v->uptime_ms), "threads",
                     (json_int_t)v->threads, "counters", counters_json(&v->counters), "connections", "open",
                     num(v->connections_open), "upstream", stats_json_upstream(v), "store", "objects",
                     num(v->store_objects), "bytes", num(v->store_bytes), "limit_bytes", num(v->store_limit),
                     "evictions", num(v->store_evictions), "variant_evictions", num(v->store_variant_evictions),
                     "memory", "rss_bytes", v->rss_bytes != 0 ? num(v->rss_bytes) : json_null(), "store_bytes",
                     num(v->store_bytes), "reloads", "ok", num(v->reloads_ok), "failed", num(v->reloads_failed),
                     "tier", tier_json(v->tier), "routes_total", num(cfg != NULL ? cfg->num_routes : 0),
                     "routes_truncated", 0);
    if (root == NULL)
        return NULL;
    fixed = json_dumpb(root, NULL, 0, JSON_COMPACT) + sizeof(",\"routes\":[]") + CR_STATS_JSON_TAIL;
    routes = stats_json_routes(v, cfg, budget > fixed ? budget - fixed : 0, &truncated);
    if (routes == NULL) {
        json_decref(root);
        return NULL;
    }
    json_object_set_new(root, "routes", routes);
    json_object_set_new(root, "routes_truncated", json_boolean(truncated));
    return root;
}

void cr_admin_handle_stats(h2o_req_t *req, const cr_config_t *cfg)
{
    cr_stats_view_t v;
    cr_reqstats_t *sum = malloc(sizeof(*sum)); /* NULL: the labelled figures are null in this answer */
    json_t *root;
    cr_stats_view_collect(&v, sum);
    root = cr_stats_json_build(&v, cfg, CR_STATS_JSON_MAX);
    free(sum);
    if (root == NULL) {
        cr_send_json_error(req, 500, "Internal Server Error", "no_memory", "out of memory");
        return;
    }
    cr_admin_send_json_value(req, 200, "OK", root);
}
