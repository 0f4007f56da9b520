/*
 * config_upstream.c: the upstream's protection keys (issue 16): `upstream.max_concurrency: {limit, min, adaptive}`
 * (the process-wide cap on requests in flight to the upstream, fill/upstream.c and fill/concurrency.h) and
 * `upstream.breaker: {failures, backoff, max_backoff}` (passive health: connect errors or 5xx in a row open a
 * breaker, fill/health.c). Both are restart-only (config_reload.c): fill/ copies them once at start.
 *
 * Without the keys both are off. `breaker: {}` turns the breaker on with its defaults (5 failures, 1s, 30s).
 * Invariants: pure parsing into cfg; no state, no locks.
 */
#include "config_parse.h"

#define CR_CONFIG_MAX_CONCURRENCY 65536
#define CR_CONFIG_MAX_BREAKER_FAILURES 1000
#define CR_CONFIG_MAX_BREAKER_BACKOFF_MS (3600u * 1000u)

static int parse_max_concurrency(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *upstream)
{
    cr_conf_map_t m = {NULL, "upstream.max_concurrency"};
    uint64_t limit = 0, min = 0;

    if ((m.node = cr_conf_find(p, upstream, "max_concurrency")) == NULL)
        return 0;
    if (cr_conf_check_mapping(p, m.node, SEC_CONCURRENCY, m.path, m.path) != 0)
        return -1;
    if (cr_conf_find(p, &m, "limit") == NULL)
        return cr_conf_fail_missing(p, &m, "limit");
    if (cr_conf_opt_uint(p, &m, "limit", 1, CR_CONFIG_MAX_CONCURRENCY, &limit) != 0 ||
        cr_conf_opt_uint(p, &m, "min", 1, CR_CONFIG_MAX_CONCURRENCY, &min) != 0 ||
        cr_conf_opt_bool(p, &m, "adaptive", &cfg->upstream.concurrency_adaptive) != 0)
        return -1;
    if (min > limit)
        return cr_conf_fail(p, cr_conf_find(p, &m, "min"), "upstream.max_concurrency.min (%llu) is over limit (%llu)",
                            (unsigned long long)min, (unsigned long long)limit);
    cfg->upstream.max_concurrency = (unsigned)limit;
    cfg->upstream.min_concurrency = min != 0 ? (unsigned)min : (unsigned)(limit / 16 != 0 ? limit / 16 : 1);
    return 0;
}

static int parse_breaker(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *upstream)
{
    cr_conf_map_t m = {NULL, "upstream.breaker"};
    uint64_t failures = 5;

    cfg->upstream.breaker_backoff_ms = 1000;
    cfg->upstream.breaker_max_backoff_ms = 30000;
    if ((m.node = cr_conf_find(p, upstream, "breaker")) == NULL)
        return 0;
    if (cr_conf_node_is_null(m.node)) {
        cfg->upstream.breaker_failures = (unsigned)failures;
        return 0;
    }
    if (cr_conf_check_mapping(p, m.node, SEC_BREAKER, m.path, m.path) != 0 ||
        cr_conf_opt_uint(p, &m, "failures", 0, CR_CONFIG_MAX_BREAKER_FAILURES, &failures) != 0 ||
        cr_conf_opt_duration(p, &m, "backoff", 1, &cfg->upstream.breaker_backoff_ms) != 0 ||
        cr_conf_opt_duration(p, &m, "max_backoff", 1, &cfg->upstream.breaker_max_backoff_ms) != 0)
        return -1;
    if (cfg->upstream.breaker_max_backoff_ms > CR_CONFIG_MAX_BREAKER_BACKOFF_MS)
        return cr_conf_fail(p, cr_conf_find(p, &m, "max_backoff"), "upstream.breaker.max_backoff: at most 1h");
    if (cfg->upstream.breaker_backoff_ms > cfg->upstream.breaker_max_backoff_ms)
        return cr_conf_fail(p, cr_conf_find(p, &m, "backoff"), "upstream.breaker.backoff: must not be longer than max_backoff");
    cfg->upstream.breaker_failures = (unsigned)failures;
    return 0;
}

int cr_conf_parse_upstream_protection(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *upstream)
{
    if (parse_max_concurrency(p, cfg, upstream) != 0)
        return -1;
    return parse_breaker(p, cfg, upstream);
}
