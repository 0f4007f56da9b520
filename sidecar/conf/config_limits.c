/*
 * config_limits.c: the `limits:` section, one table row per key (its kind, where it lives in cfg->limits, its
 * default and its range). The README's "Limits" table lists the same rows.
 *
 * Invariants: the table is constant; no state, no locks. Every field of cfg->limits has a row, so every limit has
 * a default (cr_conf_set_limit_defaults) and a value out of range is a config error. A row's `restart` reason marks
 * a limit the server copies once at start (server.c, conn_watch.c, upstream.c, guard.c): a reload may not change it
 * (cr_conf_limits_restart_diff, for config_reload.c).
 */
#include "config_parse.h"

#include <stddef.h>

#define CR_CONFIG_MIN_UPSTREAM_HEADER_SIZE ((size_t)1 << 10)
#define CR_CONFIG_MAX_UPSTREAM_HEADER_SIZE ((size_t)1 << 20)

typedef enum en_cr_limit_kind_t { LIMIT_SIZE, LIMIT_COUNT, LIMIT_DURATION } cr_limit_kind_t;

static const struct {
    const char *key;
    cr_limit_kind_t kind;
    size_t offset;
    uint64_t def, min, max;
    const char *range;   /* for the message */
    const char *restart; /* why a change needs a restart (the value is copied once at start), or NULL: reloadable */
} limit_rows[] = {
#define LIMIT_ROW(key, kind, field, def, min, max, range, restart)                                                                 \
    {key, kind, offsetof(cr_config_t, limits.field), def, min, max, range, restart}
    LIMIT_ROW("request_headers", LIMIT_SIZE, request_headers, 64 << 10, 1 << 10, 1 << 20, "1KiB to 1MiB", NULL),
    LIMIT_ROW("request_body", LIMIT_SIZE, request_body, 16 << 20, 1 << 10, 1 << 30, "1KiB to 1GiB",
              "h2o's max_request_entity_size is set from it at start"),
    LIMIT_ROW("upstream_header_size", LIMIT_SIZE, upstream_header_size, 64 << 10, CR_CONFIG_MIN_UPSTREAM_HEADER_SIZE,
              CR_CONFIG_MAX_UPSTREAM_HEADER_SIZE, "1KiB to 1MiB", "each thread's upstream copies it at start"),
    LIMIT_ROW("admin_body", LIMIT_SIZE, admin_body, 1 << 20, 1 << 10, 64 << 20, "1KiB to 64MiB",
              "the admin listener's h2o configuration is set from it at start"),
    LIMIT_ROW("response_buffer", LIMIT_SIZE, response_buffer, 1 << 20, 16 << 10, 64 << 20, "16KiB to 64MiB",
              "each thread's upstream sizes its sockets' receive buffers from it at start"),
    LIMIT_ROW("connections", LIMIT_COUNT, connections, 10000, 16, 1000000, "16 to 1000000",
              "the connection cap is set from it at start"),
    LIMIT_ROW("streams_per_connection", LIMIT_COUNT, streams_per_connection, 100, 1, 1000, "1 to 1000",
              "h2o's HTTP/2 stream limit is set from it at start"),
    LIMIT_ROW("variants_per_key", LIMIT_COUNT, variants_per_key, 32, 1, 1024, "1 to 1024", "the store is made with it at start"),
    LIMIT_ROW("queued_fills", LIMIT_COUNT, queued_fills, 1024, 1, 1000000, "1 to 1000000",
              "each thread's upstream copies it at start"),
    LIMIT_ROW("cancels_per_connection", LIMIT_COUNT, cancels_per_connection, 200, 1, 1000000, "1 to 1000000",
              "each thread's guard copies it at start"),
    LIMIT_ROW("cancels_per_address", LIMIT_COUNT, cancels_per_address, 1000, 1, 10000000, "1 to 10000000",
              "each thread's guard copies it at start"),
    LIMIT_ROW("header_timeout", LIMIT_DURATION, header_timeout_ms, 10000, 100, 600000, "100ms to 10m",
              "h2o's timeouts and the connection watch are set from it at start"),
#undef LIMIT_ROW
};

void cr_conf_set_limit_defaults(cr_config_t *cfg)
{
    for (size_t i = 0; i != sizeof(limit_rows) / sizeof(limit_rows[0]); ++i) {
        char *field = (char *)cfg + limit_rows[i].offset;
        if (limit_rows[i].kind == LIMIT_SIZE)
            *(size_t *)field = (size_t)limit_rows[i].def;
        else
            *(uint64_t *)field = limit_rows[i].def;
    }
}

int cr_conf_parse_limits(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "limits"};

    if (cr_conf_check_mapping(p, n, SEC_LIMITS, "limits", "limits") != 0)
        return -1;
    for (size_t i = 0; i != sizeof(limit_rows) / sizeof(limit_rows[0]); ++i) {
        const yaml_node_t *vn = cr_conf_find(p, &m, limit_rows[i].key);
        char *field = (char *)cfg + limit_rows[i].offset;
        uint64_t v;
        size_t sz;
        if (vn == NULL)
            continue;
        switch (limit_rows[i].kind) {
        case LIMIT_SIZE:
            if (cr_conf_opt_size(p, &m, limit_rows[i].key, &sz) != 0)
                return -1;
            v = sz;
            break;
        case LIMIT_COUNT:
            if (cr_conf_opt_uint(p, &m, limit_rows[i].key, 0, UINT64_MAX, &v) != 0)
                return -1;
            break;
        default:
            if (cr_conf_opt_duration(p, &m, limit_rows[i].key, 0, &v) != 0)
                return -1;
            break;
        }
        if (v < limit_rows[i].min || v > limit_rows[i].max)
            return cr_conf_fail(p, vn, "limits.%s: %s is out of range (%s)", limit_rows[i].key, cr_conf_scalar_str(vn),
                                limit_rows[i].range);
        if (limit_rows[i].kind == LIMIT_SIZE)
            *(size_t *)field = (size_t)v;
        else
            *(uint64_t *)field = v;
    }
    return 0;
}

const char *cr_conf_limits_restart_diff(const cr_config_t *running, const cr_config_t *next, const char **why)
{
    for (size_t i = 0; i != sizeof(limit_rows) / sizeof(limit_rows[0]); ++i) {
        const char *a = (const char *)running + limit_rows[i].offset, *b = (const char *)next + limit_rows[i].offset;
        int same = limit_rows[i].kind == LIMIT_SIZE ? *(const size_t *)a == *(const size_t *)b
                                                    : *(const uint64_t *)a == *(const uint64_t *)b;
        if (limit_rows[i].restart != NULL && !same) {
            *why = limit_rows[i].restart;
            return limit_rows[i].key;
        }
    }
    return NULL;
}
