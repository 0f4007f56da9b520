/*
 * route.h: picking the rule that applies to a request.
 *
 * Routes are tried in config order and the first whose path matcher and method set both match wins. Matching
 * reads only the immutable config, so it is lock-free and safe from any thread.
 */
#ifndef CORRAL_ROUTE_H
#define CORRAL_ROUTE_H

#include "corral/common.h"
#include "corral/config.h"

/*
 * Returns the first route matching `path` (the request path, query string allowed: matching stops at '?')
 * and `method`, or NULL when none does. A prefix "/v1/users" matches "/v1/users", "/v1/users/..." and
 * "/v1/users?x", but not "/v1/usersX" (segment boundary), unless the prefix itself ends in '/'. "/" matches all.
 * An exact path matches only that path (query ignored).
 */
const cr_route_config_t *cr_route_match(const cr_config_t *cfg, cr_str_t method, cr_str_t path);

#endif
