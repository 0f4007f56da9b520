/*
 * fill.h: the leader's fill (fill.c): fetching the key from the upstream, deciding what the answer is for everyone
 * waiting, storing it, and making its codings. The fill itself is driven through the flight (flight.h); what is
 * public here is the outcome decision, a pure function of its inputs (no clock, no store, no config) so it can be
 * tested on its own.
 */
#ifndef CORRAL_FILL_H
#define CORRAL_FILL_H

#include <stdint.h>
#include "corral/cache/object.h"
#include "corral/http/policy.h"

typedef enum en_cr_fill_verdict_t {
    CR_FILL_PASS_ALL,    /* too large to buffer: every waiter passes, a hit-for-pass marker is stored */
    CR_FILL_STALE,       /* the upstream failed (an error, or 500/502/503/504) and the stale copy answers everyone */
    CR_FILL_STALE_ORIGIN_DOWN, /* the origin could not be reached (refused, reset, closed before answering): the stale
                                  copy answers everyone within the route's stale_if_unreachable window */
    CR_FILL_STALE_UPSTREAM_DOWN, /* the fetch was not sent (the upstream is unhealthy, or the request was shed): the
                                    stale copy answers within stale-if-error or the route's serve_stale_when_down */
    CR_FILL_ERROR,       /* the upstream failed and nothing may stand in: everyone gets the error */
    CR_FILL_STORE,       /* storable: stored, and it answers every waiter whose variant it fits */
    CR_FILL_SHARE,       /* a 5xx that is not storable: it answers everyone (the failing upstream is asked once), the
                            stale copy is removed */
    CR_FILL_LEADER_ONLY, /* not storable: it answers the leader, the others pass; the stale copy is removed and a
                            hit-for-pass marker stored */
    CR_FILL_LEADER_ONLY_PER_REQUEST, /* not storable because of the leader's request (Authorization, Cookie, Vary
                                        values too long): it answers the leader, the others pass, nothing else */
} cr_fill_verdict_t;

typedef struct st_cr_fill_inputs_t {
    int failed;      /* no response: the fetch failed (or out of memory) */
    int too_large;   /* the response is over cache.max_object_size */
    int status;      /* the response's status (the stored one for a 304 that refreshed it) */
    const cr_store_decision_t *decision; /* the store policy's (storable, per_request); unused when failed */
    const cr_object_t *stale;            /* the copy being revalidated, or NULL */
    uint64_t now;                        /* ms, the owner loop's clock */
    int unreachable;                     /* with failed: refused, reset or closed before any answer */
    uint64_t stale_if_unreachable_ms;    /* the route's window past freshness for that case; 0: off */
    int upstream_down;                   /* with failed: not sent, CR_FILL_DOWN_UNHEALTHY or CR_FILL_DOWN_SHED; 0: sent */
    uint64_t stale_when_down_ms;         /* the route's serve_stale_when_down window past freshness; 0: off */
} cr_fill_inputs_t;

enum { CR_FILL_DOWN_UNHEALTHY = 1, CR_FILL_DOWN_SHED };

/* stale-if-error (RFC 5861): may `stale` (may be NULL) answer for a failed upstream at `now`? Not under
 * must-revalidate; the window runs from the end of freshness. */
int cr_fill_stale_may_answer_error(const cr_object_t *stale, uint64_t now);
/* RFC 9111 4.2.4: may `stale` answer while the origin cannot be reached, `window` ms past its freshness? Never for an
 * object stored with no-cache, must-revalidate, proxy-revalidate or s-maxage (CR_OBJ_NO_CACHE, _MUST_REVALIDATE). */
int cr_fill_stale_may_answer_unreachable(const cr_object_t *stale, uint64_t now, uint64_t window);

/* What the fill's answer is for everyone waiting. */
cr_fill_verdict_t cr_fill_decide(const cr_fill_inputs_t *in);

#endif
