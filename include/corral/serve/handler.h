/*
 * handler.h: the request handler: route, key, lookup, and the choice between hit, fill (flight), and pass.
 *
 * A cr_lookup_t carries what the handler worked out for one cacheable request; it lives in the request's pool. Its
 * first part (cr_fill_req_t) is what a flight needs; a flight's outcome comes back through cr_deliver (deliver.h).
 * Functions here run on the request's own worker thread.
 */
#ifndef CORRAL_HANDLER_H
#define CORRAL_HANDLER_H

#include <h2o.h>
#include "corral/core/common.h"
#include "corral/core/reqstats.h"
#include "corral/conf/config.h"
#include "corral/cache/object.h"
#include "corral/http/policy.h"
#include "corral/fill/flight.h"

typedef struct st_cr_lookup_t {
    cr_fill_req_t fill; /* what a flight needs: the request, config, route, key, hash, request info, the callback */
    unsigned restarts;  /* lookups redone after a flight answered another variant */
    const char *fwd;    /* why it went forward: "uri-miss", "vary-miss", "stale", "request" */
    int cookie_pass;    /* the request carries Cookie on a `cookies: pass` route: it sees only CR_OBJ_SHAREABLE objects,
                           and its fills are its own (never shared with a waiter, no background revalidation) */
    int holds_cfg;      /* fill.cfg is retained until the request is disposed (cr_lookup_hold_generation) */
    uint64_t rl_over_us; /* over an `applies_to: all` rate limit with serve_stale: a stored object answers, or 429
                            (Retry-After from this: the microseconds until a token); 0: not over */
    cr_reqstat_t *stat; /* the request's metrics labels (core/reqstats.h; in the guard's tracker), or NULL */
} cr_lookup_t;

/* Makes the request hold fill.cfg (one reference, released when its pool is disposed); a no-op when it does
 * already. The handler calls it when the request starts waiting on a flight. On the request's thread. */
void cr_lookup_hold_generation(cr_lookup_t *lk);

/* Registers the traffic handler on the host config. */
void cr_handler_register(h2o_hostconf_t *hostconf);

/* Builds a Cache-Status value in the request's pool: "corral; fwd=<fwd>[; <extra>]". */
h2o_iovec_t cr_cache_status_fwd(h2o_req_t *req, const char *fwd, const char *extra);

/* Looks the request up again and answers it (hit, stale, fill, ...), as on_req did; counts it. */
void cr_handler_lookup(cr_lookup_t *lk);

/* Redoes the lookup after a flight's response did not fit this request's variant (bounded: passes after one). */
void cr_handler_restart(cr_lookup_t *lk);

/* Does the stored object's variant fit the request in `lk`? (cr_variant_match_fn) */
int cr_handler_variant_matches(void *lk, const cr_object_t *obj);

#endif
