/*
 * ratelimit.h: a route's `rate_limit` applied to a request (issue 16; ratelimit.c): which bucket it takes from (the
 * route, the client's address or a header's value, hashed with a per-process random seed), and the 429 answer.
 *
 * Where it is asked (serve/handler.c): `applies_to: all` once per request when its route is matched;
 * `applies_to: upstream` (the default) once where the request is about to reach the API: before a fill or refill
 * joins its flight, before a background revalidation, before a pass. A request that then waits on another's flight
 * has already taken its token (counting is conservative: it never lets more through than the rate). Hits never ask.
 * Invariants: on the request's thread; no lock and no system call (the buckets: ratelimit_table.h); the clock is the
 * loop's (h2o_now, milliseconds), advanced by whole intervals so that a coarse clock loses no tokens.
 */
#ifndef CORRAL_SERVE_RATELIMIT_H
#define CORRAL_SERVE_RATELIMIT_H

#include <h2o.h>

#include "corral/conf/config.h"
#include "corral/serve/ratelimit_table.h"

/* Takes a token for req under the route's limit: 1 admitted, 0 over the limit (nothing sent; v says why). */
int cr_ratelimit_take(h2o_req_t *req, const cr_route_config_t *route, cr_rl_verdict_t *v);

/* Whether the route's limit is asked at this point: `upstream` 1 where the request would go upstream, 0 when the
 * route is matched. Inline: a route without a limit costs a load and a compare. */
static inline int cr_ratelimit_applies(const cr_route_config_t *route, int upstream)
{
    return route != NULL && route->rate_limit.rate != 0 && route->rate_limit.all != upstream;
}

/* The over-the-limit answer: 429 with Retry-After, RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-
 * headers-10's structured fields) and a JSON body; counted by route (route_rate_limited_total). */
void cr_ratelimit_reject(h2o_req_t *req, const cr_route_config_t *route, const cr_rl_verdict_t *v);

#endif
