/*
 * config_lifecycle.c: the keys of the process's life cycle: `drain_timeout` (how long SIGTERM waits for requests in
 * flight and background fills, server.c) and `upstream.health` (the active upstream check behind /readyz,
 * fill/health.c). Both are reloadable: the drain and the checker read the current generation when they run.
 *
 * Invariants: pure parsing into cfg; no state, no locks.
 */
#include "config_parse.h"

#include <string.h>

#define CR_CONFIG_MAX_DRAIN_MS (3600u * 1000u)
#define CR_CONFIG_MAX_HEALTH_COUNT 100

void cr_conf_set_lifecycle_defaults(cr_config_t *cfg)
{
    cfg->drain_timeout_ms = 10000;
    cfg->upstream.health_path = NULL;
    cfg->upstream.health_interval_ms = 2000;
    cfg->upstream.health_timeout_ms = 500;
    cfg->upstream.health_unhealthy_after = 3;
    cfg->upstream.health_healthy_after = 2;
}

int cr_conf_parse_drain_timeout(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *top)
{
    if (cr_conf_opt_duration(p, top, "drain_timeout", 0, &cfg->drain_timeout_ms) != 0)
        return -1;
    if (cfg->drain_timeout_ms > CR_CONFIG_MAX_DRAIN_MS)
        return cr_conf_fail(p, cr_conf_find(p, top, "drain_timeout"), "drain_timeout: at most 1h");
    return 0;
}

/* An origin-form path: starts with '/', no control bytes or spaces (it goes on the request line as is). */
static const char *check_health_path(char *s)
{
    if (s[0] != '/')
        return "must start with /";
    if (cr_conf_has_ctl_or_space(s))
        return "must not contain spaces or control characters";
    return NULL;
}

int cr_conf_parse_health(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *upstream)
{
    cr_conf_map_t hm = {NULL, "upstream.health"};
    uint64_t unhealthy = cfg->upstream.health_unhealthy_after, healthy = cfg->upstream.health_healthy_after;

    if ((hm.node = cr_conf_find(p, upstream, "health")) == NULL)
        return 0;
    if (cr_conf_check_mapping(p, hm.node, SEC_HEALTH, hm.path, hm.path) != 0 ||
        cr_conf_opt_string(p, &hm, "path", 1, check_health_path, &cfg->upstream.health_path) != 0 ||
        cr_conf_opt_duration(p, &hm, "interval", 1, &cfg->upstream.health_interval_ms) != 0 ||
        cr_conf_opt_duration(p, &hm, "timeout", 1, &cfg->upstream.health_timeout_ms) != 0 ||
        cr_conf_opt_uint(p, &hm, "unhealthy_after", 1, CR_CONFIG_MAX_HEALTH_COUNT, &unhealthy) != 0 ||
        cr_conf_opt_uint(p, &hm, "healthy_after", 1, CR_CONFIG_MAX_HEALTH_COUNT, &healthy) != 0)
        return -1;
    cfg->upstream.health_unhealthy_after = (unsigned)unhealthy;
    cfg->upstream.health_healthy_after = (unsigned)healthy;
    if (cfg->upstream.health_timeout_ms > cfg->upstream.health_interval_ms)
        return cr_conf_fail(p, cr_conf_find(p, &hm, "timeout"), "upstream.health.timeout: must not be longer than interval");
    return 0;
}
