/*
 * test_stats_json.c: unit tests for sidecar/admin/stats_json.c, the GET /v1/stats object: every figure of a view
 * written under its documented name with its value (each counter of stats.h's table, by field name), null for what
 * is unknown (RSS unreadable, no tier, latency and per-route totals not measured), the configured routes in config
 * order with their match and methods, the CR_STATS_JSON_MAX bound on the text (routes cut, "routes_truncated"), and
 * a match path that is not UTF-8 still listed. The output is parsed back with jansson, never compared as text.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "corral/admin/stats_json.h"
#include "corral/conf/config.h"

void cr_test_register_stats_json(void);

static const char *base_yaml = "listen:\n"
                               "  - address: 127.0.0.1:18081\n"
                               "upstream:\n"
                               "  url: http://127.0.0.1:18080\n"
                               "routes:\n"
                               "  - match: { prefix: /v1/users, methods: [GET, HEAD] }\n"
                               "    ttl: 60s\n"
                               "  - match: { exact: /v1/health }\n"
                               "    cache: false\n"
                               "  - match: { prefix: /v1/posts, methods: [POST, DELETE] }\n";

static cr_config_t *load(const char *yaml)
{
    char err[512];
    cr_config_t *cfg = cr_config_load_string("test.yaml", yaml, strlen(yaml), err, sizeof(err));
    if (cfg == NULL)
        fprintf(stderr, "test_stats_json: %s\n", err);
    return cfg;
}

/* The object written compactly and parsed back; *len gets the text's length. */
static json_t *roundtrip(json_t *built, size_t *len)
{
    char *text = json_dumps(built, JSON_COMPACT);
    json_error_t e;
    json_t *j;
    json_decref(built);
    if (text == NULL)
        return NULL;
    *len = strlen(text);
    j = json_loads(text, 0, &e);
    free(text);
    return j;
}

static json_int_t geti(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b != NULL)
        v = json_object_get(v, b);
    CU_ASSERT(json_is_integer(v));
    return json_integer_value(v);
}

static void fill_view(cr_stats_view_t *v)
{
    uint64_t *c = (uint64_t *)&v->counters;
    size_t i;
    memset(v, 0, sizeof(*v));
    for (i = 0; i != sizeof(v->counters) / sizeof(uint64_t); ++i)
        c[i] = 1000 + i; /* every counter its own value */
    v->now_ms = 1796230000123ull;
    v->uptime_ms = 65432;
    v->threads = 3;
    v->connections_open = 12;
    v->upstream_queued = 4;
    v->upstream_queued_peak = 9;
    v->upstream_busy = 2;
    v->concurrency_limit = 48;
    v->concurrency_in_flight = 7;
    v->upstream_healthy = 0;
    v->breaker_open = 1;
    v->breaker_opens = 3;
    v->store_objects = 77;
    v->store_bytes = 123456;
    v->store_limit = 1 << 20;
    v->store_evictions = 5;
    v->store_variant_evictions = 6;
    v->rss_bytes = 50ull << 20;
    v->reloads_ok = 7;
    v->reloads_failed = 8;
    v->upstream_in_use = SIZE_MAX; /* not known: null */
}

static void test_fields(void)
{
    cr_stats_view_t v;
    cr_config_t *cfg = load(base_yaml);
    json_t *j, *routes, *r, *m;
    size_t len;
    CU_ASSERT_FATAL(cfg != NULL);
    fill_view(&v);
    CU_ASSERT_FATAL((j = roundtrip(cr_stats_json_build(&v, cfg, CR_STATS_JSON_MAX), &len)) != NULL);

    CU_ASSERT_EQUAL(geti(j, "version", NULL), 1);
    CU_ASSERT_EQUAL(geti(j, "timestamp_ms", NULL), 1796230000123ll);
    CU_ASSERT_EQUAL(geti(j, "uptime_ms", NULL), 65432);
    CU_ASSERT_EQUAL(geti(j, "threads", NULL), 3);
#define CHECK_COUNTER(field, name, type, help) CU_ASSERT_EQUAL(geti(j, "counters", #field), (json_int_t)v.counters.field);
    CR_STATS_TABLE(CHECK_COUNTER)
#undef CHECK_COUNTER
    CU_ASSERT_EQUAL(json_object_size(json_object_get(j, "counters")), sizeof(cr_stats_t) / sizeof(uint64_t));
    CU_ASSERT_EQUAL(geti(j, "counters", "hits"), (json_int_t)v.counters.hits); /* the names the page reads */
    CU_ASSERT_EQUAL(geti(j, "counters", "upstream_requests"), (json_int_t)v.counters.upstream_requests);
    CU_ASSERT_EQUAL(geti(j, "connections", "open"), 12);
    CU_ASSERT_EQUAL(geti(j, "upstream", "queued"), 4);
    CU_ASSERT_EQUAL(geti(j, "upstream", "queued_peak"), 9);
    CU_ASSERT_EQUAL(geti(j, "upstream", "busy"), 2);
    CU_ASSERT(json_is_null(json_object_get(json_object_get(j, "upstream"), "latency")));
    CU_ASSERT(json_is_null(json_object_get(json_object_get(j, "upstream"), "connections_in_use")));
    CU_ASSERT_EQUAL(geti(j, "upstream", "concurrency_limit"), 48);
    CU_ASSERT_EQUAL(geti(j, "upstream", "concurrency_in_flight"), 7);
    CU_ASSERT_EQUAL(geti(j, "upstream", "breaker_opens"), 3);
    CU_ASSERT(json_is_false(json_object_get(json_object_get(j, "upstream"), "healthy")));
    CU_ASSERT(json_is_true(json_object_get(json_object_get(j, "upstream"), "breaker_open")));
    CU_ASSERT_EQUAL(geti(j, "store", "objects"), 77);
    CU_ASSERT_EQUAL(geti(j, "store", "bytes"), 123456);
    CU_ASSERT_EQUAL(geti(j, "store", "limit_bytes"), 1 << 20);
    CU_ASSERT_EQUAL(geti(j, "store", "evictions"), 5);
    CU_ASSERT_EQUAL(geti(j, "store", "variant_evictions"), 6);
    CU_ASSERT_EQUAL(geti(j, "memory", "rss_bytes"), 50ll << 20);
    CU_ASSERT_EQUAL(geti(j, "memory", "store_bytes"), 123456);
    CU_ASSERT_EQUAL(geti(j, "reloads", "ok"), 7);
    CU_ASSERT_EQUAL(geti(j, "reloads", "failed"), 8);
    CU_ASSERT(json_is_null(json_object_get(j, "tier")));

    routes = json_object_get(j, "routes");
    CU_ASSERT_FATAL(json_is_array(routes) && json_array_size(routes) == 3);
    CU_ASSERT_EQUAL(geti(j, "routes_total", NULL), 3);
    CU_ASSERT(json_is_false(json_object_get(j, "routes_truncated")));
    r = json_array_get(routes, 0);
    m = json_object_get(r, "match");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "name")), cfg->routes[0].name); /* /metrics' route label */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "prefix")), "/v1/users");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(m, "methods"), 0)), "GET");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(m, "methods"), 1)), "HEAD");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(m, "methods")), 2);
    CU_ASSERT(json_is_true(json_object_get(r, "cache")));
    CU_ASSERT(json_is_null(json_object_get(r, "totals")));
    r = json_array_get(routes, 1);
    m = json_object_get(r, "match");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "exact")), "/v1/health");
    CU_ASSERT_PTR_NULL(json_object_get(m, "methods")); /* all methods: no list */
    CU_ASSERT_PTR_NULL(json_object_get(m, "prefix"));
    CU_ASSERT(json_is_false(json_object_get(r, "cache")));
    m = json_object_get(json_array_get(routes, 2), "match");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(m, "methods"), 0)), "POST");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(m, "methods"), 1)), "DELETE");
    json_decref(j);

    /* unknown RSS is null, not 0; no config: no routes */
    v.rss_bytes = 0;
    CU_ASSERT_FATAL((j = roundtrip(cr_stats_json_build(&v, NULL, CR_STATS_JSON_MAX), &len)) != NULL);
    CU_ASSERT(json_is_null(json_object_get(json_object_get(j, "memory"), "rss_bytes")));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "routes")), 0);
    CU_ASSERT_EQUAL(geti(j, "routes_total", NULL), 0);
    json_decref(j);
    cr_config_free(&cfg);
}

/* 3000 routes of ~200-byte paths (about 1.3 MB of routes): the text stays within the bound, the routes are cut in
 * config order and say so; a tight budget keeps the fixed part and drops every route. */
static void test_bound(void)
{
    enum { N = 3000 };
    size_t cap = 256 + (size_t)N * 300, used, i, len, kept;
    char *yaml = malloc(cap), path[256];
    cr_stats_view_t v;
    cr_config_t *cfg;
    json_t *j, *routes;
    CU_ASSERT_FATAL(yaml != NULL);
    used = (size_t)snprintf(yaml, cap, "listen:\n  - address: 127.0.0.1:18081\nupstream:\n  url: http://127.0.0.1:18080\nroutes:\n");
    memset(path, 'p', 200);
    path[200] = '\0';
    for (i = 0; i != N; ++i)
        used += (size_t)snprintf(yaml + used, cap - used, "  - match: { exact: /r%zu/%s }\n", i, path);
    cfg = load(yaml);
    free(yaml);
    CU_ASSERT_FATAL(cfg != NULL);
    fill_view(&v);

    CU_ASSERT_FATAL((j = roundtrip(cr_stats_json_build(&v, cfg, CR_STATS_JSON_MAX), &len)) != NULL);
    CU_ASSERT(len + 1 <= CR_STATS_JSON_MAX); /* + the newline the handler adds */
    CU_ASSERT(len > CR_STATS_JSON_MAX - 1024); /* filled, not cut early */
    routes = json_object_get(j, "routes");
    kept = json_array_size(routes);
    CU_ASSERT(kept > 100 && kept < N);
    CU_ASSERT(json_is_true(json_object_get(j, "routes_truncated")));
    CU_ASSERT_EQUAL(geti(j, "routes_total", NULL), N);
    CU_ASSERT(strncmp(json_string_value(json_object_get(json_object_get(json_array_get(routes, 0), "match"), "exact")), "/r0/", 4) == 0);
    snprintf(path, sizeof(path), "/r%zu/", kept - 1);
    CU_ASSERT(strncmp(json_string_value(json_object_get(json_object_get(json_array_get(routes, kept - 1), "match"), "exact")), path,
                      strlen(path)) == 0);
    json_decref(j);

    CU_ASSERT_FATAL((j = roundtrip(cr_stats_json_build(&v, cfg, 1024), &len)) != NULL);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "routes")), 0);
    CU_ASSERT(json_is_true(json_object_get(j, "routes_truncated")));
    CU_ASSERT_EQUAL(geti(j, "counters", "requests"), (json_int_t)v.counters.requests);
    json_decref(j);
    cr_config_free(&cfg);
}

/* With the labelled counters known: per-route totals by the route's name slot, the upstream latency histogram, and
 * the connections in use. */
static void test_labelled_figures(void)
{
    cr_stats_view_t v;
    cr_config_t *cfg = load(base_yaml);
    cr_reqstats_t *rq = calloc(1, sizeof(*rq));
    json_t *j, *t, *lat, *b;
    unsigned slot;
    size_t len;
    CU_ASSERT_FATAL(cfg != NULL && rq != NULL);
    fill_view(&v);
    slot = cfg->routes[0].stat_slot;
    CU_ASSERT_FATAL(slot < CR_ROUTE_SLOTS);
    rq->requests[slot][CR_OUTCOME_HIT] = 40;
    rq->requests[slot][CR_OUTCOME_MISS] = 2;
    rq->requests[slot][CR_OUTCOME_COLLAPSED] = 5;
    rq->codes[slot][1] = 46; /* 2xx */
    rq->codes[slot][4] = 1;  /* 5xx */
    rq->upstream_latency.buckets[0] = 3;
    rq->upstream_latency.buckets[CR_HIST_NUM_BOUNDS] = 1; /* +Inf */
    rq->upstream_latency.sum_us = 2500000;
    v.req = rq;
    v.upstream_in_use = 3;
    CU_ASSERT_FATAL((j = roundtrip(cr_stats_json_build(&v, cfg, CR_STATS_JSON_MAX), &len)) != NULL);
    CU_ASSERT_EQUAL(geti(j, "upstream", "connections_in_use"), 3);
    lat = json_object_get(json_object_get(j, "upstream"), "latency");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(lat, "count")), 4);
    CU_ASSERT_DOUBLE_EQUAL(json_real_value(json_object_get(lat, "sum_s")), 2.5, 1e-9);
    b = json_object_get(lat, "buckets");
    CU_ASSERT_EQUAL(json_array_size(b), CR_HIST_NUM_BOUNDS + 1);
    CU_ASSERT_EQUAL(json_integer_value(json_array_get(json_array_get(b, 0), 1)), 3);
    CU_ASSERT(json_is_null(json_array_get(json_array_get(b, CR_HIST_NUM_BOUNDS), 0)));
    CU_ASSERT_EQUAL(json_integer_value(json_array_get(json_array_get(b, CR_HIST_NUM_BOUNDS), 1)), 4);
    t = json_object_get(json_array_get(json_object_get(j, "routes"), 0), "totals");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(t, "requests")), 47);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(t, "hits")), 40);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(t, "misses")), 2);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(t, "coalesced")), 5);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(t, "codes"), "2xx")), 46);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(t, "codes"), "5xx")), 1);
    json_decref(j);
    free(rq);
    cr_config_free(&cfg);
}

/* A match path with a byte that is not UTF-8 (possible after decoding escapes) is listed with '?' for it. */
static void test_not_utf8(void)
{
    cr_stats_view_t v;
    cr_config_t *cfg = load(base_yaml);
    char bad[] = "/caf\xff";
    char *saved_path;
    size_t saved_len, len;
    json_t *j, *r;
    CU_ASSERT_FATAL(cfg != NULL);
    fill_view(&v);
    saved_path = cfg->routes[0].match_path;
    saved_len = cfg->routes[0].match_path_len;
    cfg->routes[0].match_path = bad;
    cfg->routes[0].match_path_len = strlen(bad);
    j = roundtrip(cr_stats_json_build(&v, cfg, CR_STATS_JSON_MAX), &len);
    cfg->routes[0].match_path = saved_path;
    cfg->routes[0].match_path_len = saved_len;
    CU_ASSERT_FATAL(j != NULL);
    r = json_array_get(json_object_get(j, "routes"), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(r, "match"), "prefix")), "/caf?");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "routes")), 3);
    json_decref(j);
    cr_config_free(&cfg);
}

static void test_rss(void)
{
    uint64_t rss = cr_stats_rss_bytes();
    CU_ASSERT(rss > 100 * 1024 && rss < (64ull << 30)); /* this test process: some resident memory */
}

void cr_test_register_stats_json(void)
{
    CU_pSuite suite = CU_add_suite("stats_json", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "every figure under its name, null when unknown, the routes", test_fields);
    CU_add_test(suite, "the text stays within CR_STATS_JSON_MAX", test_bound);
    CU_add_test(suite, "with the labelled counters: route totals, upstream latency and connections", test_labelled_figures);
    CU_add_test(suite, "a match path that is not UTF-8", test_not_utf8);
    CU_add_test(suite, "RSS from /proc/self/statm", test_rss);
}
