/*
 * config_parse.h: what the files of conf/ that build a cr_config_t share besides the YAML reader (yaml_read.h): the
 * schema's sections (config_schema.c), the limits table (config_limits.c) and the routes (config_routes.c). Private
 * to conf/.
 *
 * Every parse function fills its part of the config under construction, attaching each allocation at once so that
 * cr_config_free frees everything on an error path, and returns 0 or -1 with the error reported.
 */
#ifndef CORRAL_CONF_CONFIG_PARSE_H
#define CORRAL_CONF_CONFIG_PARSE_H

#include "yaml_read.h"

/* The mappings of the schema (config_schema.c). */
typedef enum en_cr_conf_section_t {
    SEC_TOP,
    SEC_LISTEN,
    SEC_TLS,
    SEC_UPSTREAM,
    SEC_ADMIN,
    SEC_CACHE,
    SEC_TIER,
    SEC_MEMCACHED,
    SEC_LEASE,
    SEC_TIER_INVAL,
    SEC_LIMITS,
    SEC_ROUTE,
    SEC_MATCH,
    SEC_KEY,
    SEC_COALESCE,
    SEC_COMPRESS,
    SEC_HEALTH,
    SEC_RATELIMIT,
    SEC_LOG,
    SEC_CONCURRENCY,
    SEC_BREAKER,
} cr_conf_section_t;

/*
 * Checks that `n` is a mapping whose keys are distinct scalars from the section's schema. Fails on a non-mapping, a
 * non-scalar key, an unknown key or a duplicate key. `name` names the node in "mapping expected" messages, `where`
 * names the mapping in key messages.
 */
int cr_conf_check_mapping(cr_conf_parser_t *p, const yaml_node_t *n, cr_conf_section_t sec, const char *name, const char *where);

/* limits: (config_limits.c). Defaults are set before the document is read; the section may be absent. */
void cr_conf_set_limit_defaults(cr_config_t *cfg);
int cr_conf_parse_limits(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n);
/* The first limit (table order) marked restart-only whose value differs between the two, with *why set to the
   reason; NULL when none does. */
const char *cr_conf_limits_restart_diff(const cr_config_t *running, const cr_config_t *next, const char **why);

/* routes: (config_routes.c). */
/* config_purge.c: cache.purge_from (m: the cache section) */
int cr_conf_parse_purge_from(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *m);
/* config_targeted.c: the default (before the document is read), then cache.targeted_cache_control and
 * cache.forward_targeted (m: the cache section) */
int cr_conf_set_targeted_defaults(cr_config_t *cfg);
int cr_conf_parse_targeted(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *m);
/* config_tier.c; the server check is config.c's */
int cr_conf_parse_tier(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n);
const char *cr_conf_check_server(char *s);

int cr_conf_parse_routes(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n);
/* routes[].rate_limit (config_ratelimit.c; rm: the route's mapping; the tier section is read before the routes) */
int cr_conf_parse_ratelimit(cr_conf_parser_t *p, const cr_config_t *cfg, cr_route_config_t *r, const cr_conf_map_t *rm);

/* drain_timeout and upstream.health (config_lifecycle.c): defaults (before the document is read), then each key. */
void cr_conf_set_lifecycle_defaults(cr_config_t *cfg);
int cr_conf_parse_drain_timeout(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *top);
int cr_conf_parse_health(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *upstream);
/* log: (config_log.c). Defaults first (-1: out of memory). */
int cr_conf_set_log_defaults(cr_config_t *cfg);
int cr_conf_parse_log(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n);
/* upstream.max_concurrency and upstream.breaker (config_upstream.c). */
int cr_conf_parse_upstream_protection(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *upstream);

#endif
