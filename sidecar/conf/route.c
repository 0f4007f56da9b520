/*
 * route.c: picks the route that applies to a request.
 *
 * Invariants: reads only the immutable config, allocates nothing and keeps no state, so it is lock-free and safe from
 * any thread. Routes are tried in config order; the first whose method set and path matcher both match wins.
 * Matching is on the match form of the path (cr_urlpath_match_form: "//a", "/a/", "/a;x" and "/%61" are all "/a"), and
 * the config holds its paths in that form, so a request cannot leave a route through a spelling the upstream reads
 * as the same resource. A path longer than CR_ROUTE_MAX_PATH matches no route (it is passed through uncached).
 */
#include "corral/conf/route.h"

#include "corral/core/urlpath.h"

#define CR_ROUTE_MAX_PATH 8192

static int route_path_matches(const cr_route_config_t *r, const char *path, size_t len)
{
    size_t plen = r->match_path_len;

    if (r->match_kind == CR_MATCH_EXACT)
        return len == plen && memcmp(path, r->match_path, len) == 0;
    if (len < plen || memcmp(path, r->match_path, plen) != 0)
        return 0;
    /* segment boundary: "/v1/users" matches "/v1/users" and "/v1/users/x", never "/v1/usersX" */
    return len == plen || (plen != 0 && r->match_path[plen - 1] == '/') || path[plen] == '/';
}

const cr_route_config_t *cr_route_match_ex(const cr_config_t *cfg, cr_str_t method, cr_str_t path, int *ambiguous)
{
    char buf[CR_ROUTE_MAX_PATH];
    unsigned bit;
    size_t i;
    int n;

    CR_CHECK_OBJ_NOTNULL(cfg, CR_CONFIG_MAGIC);
    if ((n = cr_urlpath_match_form(path, buf, sizeof(buf), ambiguous)) < 0) {
        if (ambiguous != NULL)
            *ambiguous = 1;
        return NULL;
    }
    bit = cr_method_bit(method.base, method.len);
    for (i = 0; i != cfg->num_routes; ++i) {
        const cr_route_config_t *r = cfg->routes + i;
        if ((r->methods & bit) != 0 && route_path_matches(r, buf, (size_t)n))
            return r;
    }
    return NULL;
}

const cr_route_config_t *cr_route_match(const cr_config_t *cfg, cr_str_t method, cr_str_t path)
{
    return cr_route_match_ex(cfg, method, path, NULL);
}
