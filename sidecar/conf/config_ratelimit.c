/*
 * config_ratelimit.c: a route's `rate_limit` mapping (issue 16): `{rate: 100/s, burst: 50, by: none | client |
 * "header:NAME", applies_to: upstream | all, scope: pod | cluster, pods: N, serve_stale: bool}` into the route's
 * cr_ratelimit_config_t, with the numbers the hot path needs made once here (interval, tau, the name's hash). The
 * limiter itself is serve/ratelimit.c (and tier/ratelimit_tier.c for scope: cluster).
 *
 * Rules checked here: rate is "N/s", "N/m", "N/h" or a bare N (per second), 1 to 1e9; burst 1 to 1e9 (default: the
 * rate's N; for scope: cluster it sizes the fleet's counting window, cr_rl_cluster_window); `pods` only with
 * scope: cluster, which needs tier.memcached (read before the routes, config.c).
 * Invariants: pure parsing into the route (its header name is malloc'ed and attached at once, freed by
 * cr_config_free). No state, no locks.
 */
#include "config_parse.h"

#include <stdlib.h>
#include <string.h>

#define CR_RL_MAX 1000000000u

/* "100/s" -> 100 per 1000 ms. Returns 0 or -1. */
static int parse_rate(const char *s, uint64_t *rate, uint64_t *window_ms)
{
    const char *end;
    if (cr_conf_parse_digits(s, rate, &end) != 0 || *rate == 0 || *rate > CR_RL_MAX)
        return -1;
    if (*end == '\0' || strcmp(end, "/s") == 0)
        *window_ms = 1000;
    else if (strcmp(end, "/m") == 0)
        *window_ms = 60000;
    else if (strcmp(end, "/h") == 0)
        *window_ms = 3600000;
    else
        return -1;
    return 0;
}

/* scope: cluster: the fleet-wide window that holds `burst` tokens at `rate` per window_ms. The quota is min(burst,
 * rate) and the window quota * window_ms / rate, rounded up (so the fleet rate is never above the configured one);
 * a window under CR_RL_CLUSTER_MIN_WINDOW_MS grows to it, with the quota that many ms of the rate (rounded up, and the
 * window recomputed from it). A burst over the rate's count is held to it: one window is at most the rate's unit. */
void cr_rl_cluster_window(uint64_t rate, uint64_t window_ms, uint64_t burst, uint64_t *quota, uint64_t *cluster_window_ms)
{
    uint64_t q = burst < rate ? burst : rate, w = (window_ms * q + rate - 1) / rate;

    if (w < CR_RL_CLUSTER_MIN_WINDOW_MS) {
        q = (rate * CR_RL_CLUSTER_MIN_WINDOW_MS + window_ms - 1) / window_ms;
        w = (window_ms * q + rate - 1) / rate;
    }
    *quota = q;
    *cluster_window_ms = w;
}

/* `by`: none, client or header:NAME (NAME a header name, lower-cased). */
static int parse_by(cr_conf_parser_t *p, cr_ratelimit_config_t *rl, const cr_conf_map_t *m)
{
    const yaml_node_t *v = cr_conf_find(p, m, "by");
    const char *s;
    char name[128];

    if (v == NULL)
        return 0;
    cr_conf_join(name, sizeof(name), m->path, "by");
    if (cr_conf_expect_scalar(p, v, name) != 0)
        return -1;
    s = cr_conf_scalar_str(v);
    if (strcmp(s, "none") == 0) {
        rl->by = CR_RL_BY_NONE;
    } else if (strcmp(s, "client") == 0) {
        rl->by = CR_RL_BY_CLIENT;
    } else if (strncmp(s, "header:", 7) == 0 && s[7] != '\0') {
        rl->by = CR_RL_BY_HEADER;
        if ((rl->header = cr_conf_strdup(s + 7, strlen(s + 7))) == NULL)
            return cr_conf_fail(p, v, "out of memory");
        if (cr_conf_check_header_name(rl->header) != NULL)
            return cr_conf_fail(p, v, "%s: \"%s\" is not a header name", name, s + 7);
    } else {
        return cr_conf_fail(p, v, "%s: expected none, client or \"header:NAME\", found \"%s\"", name, s);
    }
    return 0;
}

/* One of two words for `key`; *out = 1 for `one`, 0 for `zero`, unchanged when absent. */
static int parse_choice(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, const char *zero, const char *one, int *out)
{
    const yaml_node_t *v = cr_conf_find(p, m, key);
    char name[128];

    if (v == NULL)
        return 0;
    cr_conf_join(name, sizeof(name), m->path, key);
    if (cr_conf_expect_scalar(p, v, name) != 0)
        return -1;
    if (strcmp(cr_conf_scalar_str(v), zero) == 0)
        *out = 0;
    else if (strcmp(cr_conf_scalar_str(v), one) == 0)
        *out = 1;
    else
        return cr_conf_fail(p, v, "%s: expected %s or %s, found \"%s\"", name, zero, one, cr_conf_scalar_str(v));
    return 0;
}

int cr_conf_parse_ratelimit(cr_conf_parser_t *p, const cr_config_t *cfg, cr_route_config_t *r, const cr_conf_map_t *rm)
{
    char path[96], name[128];
    cr_conf_map_t m = {cr_conf_find(p, rm, "rate_limit"), path};
    cr_ratelimit_config_t *rl = &r->rate_limit;
    const yaml_node_t *v;
    uint64_t burst = 0, share_burst;

    if (m.node == NULL)
        return 0;
    cr_conf_join(path, sizeof(path), rm->path, "rate_limit");
    if (cr_conf_check_mapping(p, m.node, SEC_RATELIMIT, path, path) != 0)
        return -1;
    if ((v = cr_conf_find(p, &m, "rate")) == NULL)
        return cr_conf_fail_missing(p, &m, "rate");
    cr_conf_join(name, sizeof(name), path, "rate");
    if (cr_conf_expect_scalar(p, v, name) != 0)
        return -1;
    if (parse_rate(cr_conf_scalar_str(v), &rl->rate, &rl->window_ms) != 0)
        return cr_conf_fail(p, v, "%s: expected N/s, N/m or N/h with N from 1 to 1000000000, found \"%s\"", name,
                            cr_conf_scalar_str(v));
    rl->pods = 1;
    if (cr_conf_opt_uint(p, &m, "burst", 1, CR_RL_MAX, &burst) != 0 || parse_by(p, rl, &m) != 0 ||
        parse_choice(p, &m, "applies_to", "upstream", "all", &rl->all) != 0 ||
        parse_choice(p, &m, "scope", "pod", "cluster", &rl->cluster) != 0 ||
        cr_conf_opt_uint(p, &m, "pods", 1, 10000, &rl->pods) != 0 || cr_conf_opt_bool(p, &m, "serve_stale", &rl->serve_stale) != 0)
        return -1;
    rl->burst = burst != 0 ? burst : rl->rate;
    share_burst = rl->cluster ? rl->burst / rl->pods : rl->burst;
    rl->interval_us = rl->window_ms * 1000 * (rl->cluster ? rl->pods : 1) / rl->rate;
    if (rl->interval_us == 0)
        rl->interval_us = 1;
    rl->tau_us = (share_burst != 0 ? share_burst : 1) * rl->interval_us; /* at most 1e9 * 3.6e12: no overflow */
    if (rl->cluster)
        cr_rl_cluster_window(rl->rate, rl->window_ms, rl->burst, &rl->cluster_quota, &rl->cluster_window_ms);
    rl->name_hash = cr_hash(r->name, strlen(r->name));
    rl->header_len = rl->header != NULL ? strlen(rl->header) : 0;
    if (!rl->cluster && (v = cr_conf_find(p, &m, "pods")) != NULL)
        return cr_conf_fail(p, v, "%s.pods: only applies with scope: cluster", path);
    if (rl->cluster && cfg->tier.num_memcached_servers == 0)
        return cr_conf_fail(p, cr_conf_find(p, &m, "scope"), "%s.scope: cluster needs the shared tier (tier.memcached.servers)", path);
    if (!r->cache && rl->serve_stale)
        return cr_conf_fail(p, cr_conf_find(p, &m, "serve_stale"), "%s.serve_stale: the route does not cache (cache: false)", path);
    return 0;
}
