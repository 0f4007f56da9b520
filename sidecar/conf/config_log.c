/*
 * config_log.c: the `log` section: log.access (stdout, off or a file path; restart: the destination is opened once,
 * at start) and log.level (debug, info, warn, error; reloadable: conf/generation.c sets it from each published
 * generation). Defaults (stdout, info) are set here before the section is read.
 *
 * Invariants: pure parsing into cfg->log; no state, no locks.
 */
#include "config_parse.h"

#include <stdlib.h>
#include <string.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static const char *check_access(char *s)
{
    if (strcmp(s, "stdout") == 0 || strcmp(s, "off") == 0)
        return NULL;
    if (s[0] != '/' && s[0] != '.')
        return "stdout, off, or a file path (absolute, or starting with ./)";
    return cr_conf_has_ctl_or_space(s) ? "a file path without spaces or control characters" : NULL;
}

static const char *check_level(char *s)
{
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(level_names); ++i)
        if (strcmp(s, level_names[i]) == 0)
            return NULL;
    return "one of debug, info, warn, error";
}

int cr_conf_set_log_defaults(cr_config_t *cfg)
{
    cfg->log.level = 1; /* info */
    return (cfg->log.access = cr_conf_strdup("stdout", 6)) != NULL ? 0 : -1;
}

int cr_conf_parse_log(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "log"};
    char *level = NULL;
    size_t i;

    if (cr_conf_check_mapping(p, n, SEC_LOG, "log", "log") != 0)
        return -1;
    if (cr_conf_opt_string(p, &m, "access", 0, check_access, &cfg->log.access) != 0)
        return -1;
    cfg->log.access_pos = cr_conf_pos_of(cr_conf_find(p, &m, "access"));
    if (cr_conf_opt_string(p, &m, "level", 0, check_level, &level) != 0) {
        free(level);
        return -1;
    }
    for (i = 0; level != NULL && i != CR_ARRAY_SIZE(level_names); ++i)
        if (strcmp(level, level_names[i]) == 0)
            cfg->log.level = (int)i;
    free(level);
    return 0;
}
