/*
 * config_tier.c: the `tier` section (the shared memcached tier): servers, timeouts, item size, the cross-pod lease,
 * the invalidation log's timing. Every key is restart-only (config_reload.c). Defaults are set with the others in
 * config.c.
 *
 * Invariants: pure parsing into cfg->tier; no state, no locks.
 */
#include "config_parse.h"

int cr_conf_parse_tier(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "tier"}, mm = {NULL, "tier.memcached"}, lm = {NULL, "tier.lease"}, im = {NULL, "tier.invalidation"};

    if (cr_conf_check_mapping(p, n, SEC_TIER, "tier", "tier") != 0)
        return -1;
    if ((mm.node = cr_conf_find(p, &m, "memcached")) == NULL)
        return 0;
    if (cr_conf_check_mapping(p, mm.node, SEC_MEMCACHED, mm.path, mm.path) != 0)
        return -1;
    if (cr_conf_find(p, &mm, "servers") == NULL)
        return cr_conf_fail_missing(p, &mm, "servers");
    if (cr_conf_opt_string_list(p, &mm, "servers", 1, cr_conf_check_server, &cfg->tier.memcached_servers,
                                &cfg->tier.num_memcached_servers) != 0)
        return -1;
    if (cr_conf_opt_duration(p, &mm, "timeout", 1, &cfg->tier.memcached_timeout_ms) != 0 ||
        cr_conf_opt_size(p, &mm, "max_item_size", &cfg->tier.max_item_size) != 0)
        return -1;
    if (cfg->tier.max_item_size < 4096)
        return cr_conf_fail(p, mm.node, "tier.memcached.max_item_size: at least 4k (memcached's smallest -I is 1k; corral's values need room)");
    if ((lm.node = cr_conf_find(p, &m, "lease")) != NULL) {
        if (cr_conf_check_mapping(p, lm.node, SEC_LEASE, lm.path, lm.path) != 0 ||
            cr_conf_opt_duration(p, &lm, "ttl", 1, &cfg->tier.lease_ttl_ms) != 0 ||
            cr_conf_opt_duration(p, &lm, "poll_interval", 1, &cfg->tier.lease_poll_ms) != 0)
            return -1;
        if (cfg->tier.lease_ttl_ms % 1000 != 0 || cfg->tier.lease_ttl_ms > 60000)
            return cr_conf_fail(p, lm.node, "tier.lease.ttl: whole seconds from 1s to 60s (memcached expires keys by the second)");
    }
    if ((im.node = cr_conf_find(p, &m, "invalidation")) != NULL) {
        if (cr_conf_check_mapping(p, im.node, SEC_TIER_INVAL, im.path, im.path) != 0 ||
            cr_conf_opt_duration(p, &im, "max_delay", 1, &cfg->tier.inval_max_delay_ms) != 0 ||
            cr_conf_opt_duration(p, &im, "poll_interval", 1, &cfg->tier.inval_poll_ms) != 0)
            return -1;
        if (cfg->tier.inval_poll_ms >= cfg->tier.inval_max_delay_ms)
            return cr_conf_fail(p, im.node, "tier.invalidation.poll_interval: must be shorter than max_delay");
    }
    return 0;
}

