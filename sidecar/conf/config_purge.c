/*
 * config_purge.c: `cache.purge_from`, the client networks that may send PURGE on the traffic port (serve/purge.c).
 * A list of "ADDRESS[/BITS]" strings (core/cidr.h); absent or empty: PURGE stays an ordinary method. Reloadable.
 *
 * Invariants: pure parsing into cfg->cache.purge_from (malloc'ed, freed by cr_config_free). No state, no locks.
 */
#include "config_parse.h"

#include <stdlib.h>

#include "corral/core/cidr.h"

static const char *check_network(char *s)
{
    cr_cidr_t c;
    return cr_cidr_parse(s, &c) == 0 ? NULL : "not a client network (ADDRESS or ADDRESS/BITS, host bits 0: 10.0.0.0/8, ::1/128)";
}

int cr_conf_parse_purge_from(cr_conf_parser_t *p, cr_config_t *cfg, const cr_conf_map_t *m)
{
    char **nets = NULL;
    size_t n = 0, i;
    int rc = 0;

    if (cr_conf_opt_string_list(p, m, "purge_from", 0, check_network, &nets, &n) != 0) {
        rc = -1; /* what was read so far is ours to free */
    } else if (n != 0) {
        if ((cfg->cache.purge_from = calloc(n, sizeof(*cfg->cache.purge_from))) == NULL) {
            rc = cr_conf_fail(p, cr_conf_find(p, m, "purge_from"), "cache.purge_from: out of memory");
        } else {
            for (i = 0; i != n; ++i)
                (void)cr_cidr_parse(nets[i], cfg->cache.purge_from + i); /* each one was checked */
            cfg->cache.num_purge_from = n;
        }
    }
    for (i = 0; nets != NULL && i != n; ++i)
        free(nets[i]);
    free(nets);
    return rc;
}
