/*
 * config_targeted.c: `cache.targeted_cache_control`, the targeted Cache-Control fields corral obeys (RFC 9213), first
 * listed first (default [cdn-cache-control]; an empty list turns the feature off), and `cache.forward_targeted`
 * (default false: those fields are stored but never sent to clients). Reloadable.
 *
 * Invariants: pure parsing into cfg->cache (malloc'ed, freed by cr_config_free). At most CR_TARGETED_CC_MAX names.
 * A name may not be one of libh2o's header tokens (cache-control, expires ...): the hit path recognizes a targeted
 * field by its name only among headers that have no token (serve/respond.c). No state, no locks.
 */
#include "config_parse.h"

#include <h2o.h>
#include <stdlib.h>
#include <string.h>

static const char *check_targeted_name(char *s)
{
    const char *err;
    if (s[0] == '\0')
        return "not a valid header name";
    if ((err = cr_conf_check_header_name(s)) != NULL)
        return err;
    if (h2o_lookup_token(s, strlen(s)) != NULL)
        return "a standard header cannot be a targeted Cache-Control field";
    return NULL;
}

int cr_conf_set_targeted_defaults(cr_config_t *cfg)
{
    if ((cfg->cache.targeted_cc = calloc(1, sizeof(char *))) == NULL ||
        (cfg->cache.targeted_cc[0] = strdup("cdn-cache-control")) == NULL)
        return -1;
    cfg->cache.num_targeted_cc = 1;
    return 0;
}

int cr_conf_parse_targeted(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *m)
{
    const yaml_node_t *n = cr_conf_find(p, m, "targeted_cache_control");
    size_t i;

    if (cr_conf_opt_bool(p, m, "forward_targeted", &cfg->cache.forward_targeted) != 0)
        return -1;
    if (n == NULL)
        return 0;
    for (i = 0; i != cfg->cache.num_targeted_cc; ++i)
        free(cfg->cache.targeted_cc[i]);
    free(cfg->cache.targeted_cc);
    cfg->cache.targeted_cc = NULL;
    cfg->cache.num_targeted_cc = 0;
    if (cr_conf_opt_string_list(p, m, "targeted_cache_control", 0, check_targeted_name, &cfg->cache.targeted_cc,
                                &cfg->cache.num_targeted_cc) != 0)
        return -1;
    if (cfg->cache.num_targeted_cc > CR_TARGETED_CC_MAX)
        return cr_conf_fail(p, n, "cache.targeted_cache_control: at most %d fields", CR_TARGETED_CC_MAX);
    return 0;
}
