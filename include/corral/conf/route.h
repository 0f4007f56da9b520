/*
 * route.h: picking the rule that applies to a request.
 *
 * Routes are tried in config order and the first whose path matcher and method set both match wins. Matching
 * reads only the immutable config, so it is lock-free and safe from any thread.
 */
#ifndef CORRAL_ROUTE_H
#define CORRAL_ROUTE_H

#include "corral/core/common.h"
#include "corral/conf/config.h"

/*
 * Returns the first route matching `path` (the request path, query string allowed: matching stops at '?') and
 * `method`, or NULL when none does. Both sides are in match form (cr_urlpath_match_form): "//a", "/a/", "/a;x", "/%61"
 * and "/a%2F" are "/a". A prefix "/v1/users" matches "/v1/users", "/v1/users/..." and "/v1/users?x", but not
 * "/v1/usersX" (segment boundary); "/" matches all. An exact path matches only that path (query ignored). Case is
 * significant. A path that is malformed or too long matches nothing. Never fails.
 */
const cr_route_config_t *cr_route_match(const cr_config_t *cfg, cr_str_t method, cr_str_t path);

/* Same; *ambiguous (not NULL) is set to 1 when an upstream could read the path in more than one way (see
 * cr_urlpath_match_form) or it could not be put in match form: such a request must not be cached. */
const cr_route_config_t *cr_route_match_ex(const cr_config_t *cfg, cr_str_t method, cr_str_t path, int *ambiguous);

/* What logs call the route (the access log's "route"): its name, the same as the metrics' `route` label (`name`,
 * by default "prefix:<path>" / "exact:<path>"). {NULL, 0} for no route. Lives as long as the route's generation. */
static inline cr_str_t cr_route_label(const cr_route_config_t *route)
{
    return route != NULL ? cr_str(route->name, strlen(route->name)) : cr_str(NULL, 0);
}

#endif
