/*
 * route.c: picks the route that applies to a request.
 *
 * Invariants: reads only the immutable config, allocates nothing and keeps no state, so it is lock-free and safe from
 * any thread. Routes are tried in config order; the first whose method set and path matcher both match wins.
 * Matching is on raw bytes of the path up to '?': callers that want "/a/../b" to match like "/b" pass the
 * normalized path (cr_key_normalize_path).
 */
#include "corral/route.h"

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

/* Never fails: returns the first matching route or NULL (pass through). */
const cr_route_config_t *cr_route_match(const cr_config_t *cfg, cr_str_t method, cr_str_t path)
{
    const char *q;
    unsigned bit;
    size_t i;

    CR_CHECK_OBJ_NOTNULL(cfg, CR_CONFIG_MAGIC);
    if (path.len != 0 && (q = memchr(path.base, '?', path.len)) != NULL)
        path.len = (size_t)(q - path.base);
    bit = cr_method_bit(method.base, method.len);
    for (i = 0; i != cfg->num_routes; ++i) {
        const cr_route_config_t *r = cfg->routes + i;
        if ((r->methods & bit) != 0 && route_path_matches(r, path.base, path.len))
            return r;
    }
    return NULL;
}
