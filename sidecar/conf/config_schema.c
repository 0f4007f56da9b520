/*
 * config_schema.c: the configuration's schema, which keys each mapping allows, and the check every mapping passes
 * before its values are read (cr_conf_check_mapping: a mapping of distinct, known scalar keys). An unknown key's
 * message lists what the mapping allows and, when the key is valid elsewhere, where it belongs.
 *
 * Keys marked "restart" below are copied once when the server starts (server.c, main.c), so a new generation can
 * not change them in place: cr_config_reload_check (config_reload.c) refuses a reload that does. Everything else,
 * and every key under routes, is read from the generation a request holds.
 *
 * Invariants: constant tables only; no state, no locks.
 */
#include "config_parse.h"

#include <string.h>

/* restart: threads, and every key of listen, upstream and admin */
static const char *const top_keys[] = {"threads", "listen", "upstream", "admin", "cache", "tier", "limits", "routes",
                                       "drain_timeout", "log", NULL};
static const char *const listen_keys[] = {"address", "tls", NULL};
static const char *const tls_keys[] = {"certificate", "key", NULL};
/* (upstream.health is reloadable: config_lifecycle.c) */
static const char *const upstream_keys[] = {"url", "max_connections", "connect_timeout", "timeout", "queue_timeout", "health",
                                           "max_concurrency", "breaker", NULL};
static const char *const concurrency_keys[] = {"limit", "min", "adaptive", NULL};
static const char *const breaker_keys[] = {"failures", "backoff", "max_backoff", NULL};
static const char *const health_keys[] = {"path", "interval", "timeout", "unhealthy_after", "healthy_after", NULL};
static const char *const admin_keys[] = {"address", "token_file", "token_env", NULL};
/* restart: cache.memory */
static const char *const cache_keys[] = {"memory", "max_object_size", "surrogate_key_header", "keep_surrogate_key", "purge_from",
                                         "targeted_cache_control", "forward_targeted", NULL};
/* restart: every key of tier (the client, its threads and the invalidation thread are made once, at start) */
static const char *const tier_keys[] = {"memcached", "lease", "invalidation", NULL};
/* restart: all but request_headers (config_limits.c gives each row's reason) */
static const char *const limits_keys[] = {"request_headers",  "request_body",           "upstream_header_size",
                                          "admin_body",       "response_buffer",        "connections",
                                          "streams_per_connection", "variants_per_key", "queued_fills",
                                          "cancels_per_connection", "cancels_per_address", "header_timeout",
                                          NULL};
static const char *const memcached_keys[] = {"servers", "timeout", "max_item_size", NULL};
static const char *const lease_keys[] = {"ttl", "poll_interval", NULL};
static const char *const tier_inval_keys[] = {"max_delay", "poll_interval", NULL};
static const char *const route_keys[] = {"match",
                                         "cache",
                                         "ttl",
                                         "max_ttl",
                                         "force_ttl",
                                         "ignore_no_store",
                                         "force_cache_control",
                                         "heuristic_freshness",
                                         "allow_set_cookie",
                                         "stale_while_revalidate",
                                         "stale_if_error",
                                         "stale_if_unreachable",
                                         "serve_stale_when_down",
                                         "key",
                                         "coalesce",
                                         "compress",
                                         "invalidate",
                                         "forward_headers",
                                         "cookies",
                                         "name",
                                         "rate_limit",
                                         NULL};
static const char *const match_keys[] = {"prefix", "exact", "methods", NULL};
static const char *const key_keys[] = {"host", "query", "headers", NULL};
static const char *const coalesce_keys[] = {"timeout", "max_waiters", "pass_ttl", NULL};
static const char *const ratelimit_keys[] = {"rate", "burst", "by", "applies_to", "scope", "pods", "serve_stale", NULL};
/* restart: log.access (the destination is opened once); log.level is reloadable */
static const char *const log_keys[] = {"access", "level", NULL};
static const char *const compress_keys[] = {"types", "min_size", "encodings", "brotli_quality", "gzip_level", NULL};

static const struct {
    const char *where;
    const char *const *keys;
} sections[] = {
    [SEC_TOP] = {"the top level", top_keys},          [SEC_LISTEN] = {"listen[]", listen_keys},
    [SEC_TLS] = {"listen[].tls", tls_keys},            [SEC_UPSTREAM] = {"upstream", upstream_keys},
    [SEC_ADMIN] = {"admin", admin_keys},               [SEC_CACHE] = {"cache", cache_keys},
    [SEC_TIER] = {"tier", tier_keys},                  [SEC_MEMCACHED] = {"tier.memcached", memcached_keys},
    [SEC_LEASE] = {"tier.lease", lease_keys},          [SEC_TIER_INVAL] = {"tier.invalidation", tier_inval_keys},
    [SEC_LIMITS] = {"limits", limits_keys},
    [SEC_ROUTE] = {"routes[]", route_keys},            [SEC_MATCH] = {"routes[].match", match_keys},
    [SEC_KEY] = {"routes[].key", key_keys},            [SEC_COALESCE] = {"routes[].coalesce", coalesce_keys},
    [SEC_COMPRESS] = {"routes[].compress", compress_keys},
    [SEC_HEALTH] = {"upstream.health", health_keys},
    [SEC_RATELIMIT] = {"routes[].rate_limit", ratelimit_keys},
    [SEC_LOG] = {"log", log_keys},
    [SEC_CONCURRENCY] = {"upstream.max_concurrency", concurrency_keys},
    [SEC_BREAKER] = {"upstream.breaker", breaker_keys},
};

static int key_in(const char *const *keys, const char *key)
{
    for (; *keys != NULL; ++keys)
        if (strcmp(*keys, key) == 0)
            return 1;
    return 0;
}

static void append(char *buf, size_t size, size_t *len, const char *s)
{
    int n;
    if (*len >= size)
        return;
    n = snprintf(buf + *len, size - *len, "%s", s);
    if (n > 0)
        *len += (size_t)n;
}

/* Unknown key: lists what the mapping allows and, when the key is valid elsewhere, where it belongs. */
static int conf_fail_unknown_key(cr_conf_parser_t *p, const yaml_node_t *keynode, cr_conf_section_t sec, const char *where)
{
    char allowed[512], places[256];
    size_t alen = 0, plen = 0, i;
    const char *key = cr_conf_scalar_str(keynode);

    allowed[0] = '\0';
    for (i = 0; sections[sec].keys[i] != NULL; ++i) {
        append(allowed, sizeof(allowed), &alen, i != 0 ? ", " : "");
        append(allowed, sizeof(allowed), &alen, sections[sec].keys[i]);
    }
    places[0] = '\0';
    for (i = 0; i != CR_ARRAY_SIZE(sections); ++i) {
        if (i == (size_t)sec || !key_in(sections[i].keys, key))
            continue;
        append(places, sizeof(places), &plen, plen != 0 ? ", " : "");
        append(places, sizeof(places), &plen, sections[i].where);
    }
    if (plen != 0)
        return cr_conf_fail(p, keynode, "unknown key \"%s\" %s%s (allowed there: %s); \"%s\" belongs in %s", key,
                            sec == SEC_TOP ? "at " : "in ", where, allowed, key, places);
    return cr_conf_fail(p, keynode, "unknown key \"%s\" %s%s (allowed there: %s)", key, sec == SEC_TOP ? "at " : "in ", where,
                        allowed);
}

/*
 * Checks that `n` is a mapping whose keys are distinct scalars from the section's schema.
 * Fails on a non-mapping, a non-scalar key, an unknown key or a duplicate key.
 */
int cr_conf_check_mapping(cr_conf_parser_t *p, const yaml_node_t *n, cr_conf_section_t sec, const char *name, const char *where)
{
    const yaml_node_pair_t *pair, *prev;

    if (cr_conf_expect_mapping(p, n, name) != 0)
        return -1;
    for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; ++pair) {
        const yaml_node_t *k = cr_conf_node(p, pair->key);
        if (k->type != YAML_SCALAR_NODE)
            return cr_conf_fail(p, k, "keys %s %s must be scalars, found %s", sec == SEC_TOP ? "at" : "in", where,
                                cr_conf_node_kind(k));
        if (!key_in(sections[sec].keys, cr_conf_scalar_str(k)))
            return conf_fail_unknown_key(p, k, sec, where);
        for (prev = n->data.mapping.pairs.start; prev < pair; ++prev) {
            const yaml_node_t *pk = cr_conf_node(p, prev->key);
            if (strcmp(cr_conf_scalar_str(pk), cr_conf_scalar_str(k)) == 0)
                return cr_conf_fail(p, k, "duplicate key \"%s\" %s %s (first at line %zu)", cr_conf_scalar_str(k),
                                    sec == SEC_TOP ? "at" : "in", where, (size_t)pk->start_mark.line + 1);
        }
    }
    return 0;
}
