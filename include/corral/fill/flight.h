/*
 * flight.h: single-flight cache fills, one per key across all threads, and how a waiting request hears the outcome.
 *
 * The table is shared by every worker and guarded by one mutex, held only to find, insert or unlink a flight
 * (never during I/O). A flight is driven by the thread that created it (the owner): it fetches from the upstream,
 * builds the object, stores it, then publishes the outcome (fill.c). Waiters sit on per-thread lists inside the
 * flight that only their own thread touches; the owner wakes each other thread with one h2o_multithread message, and
 * that thread answers its own waiters. Flights are refcounted atomically: the table's link, the owner's fetch, every
 * waiter and every message in transit each hold one reference. A fill whose waiters have all left while it still
 * waits for an upstream connection is dropped (never sent); one that has a connection runs on and is stored; a
 * background revalidation has no waiter and always runs (flight.c).
 *
 * A waiter is told its outcome once, through the callback it registered (cr_fill_req_t.on_answer), on its own
 * thread; fill/ does nothing else with the request. What the client then gets (an object, a pass, a JSON error, the
 * Cache-Status text, a second lookup) is the callback's business (serve/deliver.c).
 */
#ifndef CORRAL_FLIGHT_H
#define CORRAL_FLIGHT_H

#include <h2o.h>
#include "corral/core/runtime.h"
#include "corral/cache/object.h"
#include "corral/http/policy.h"

typedef enum en_cr_flight_answer_t {
    CR_FLIGHT_SERVE,        /* answer from `obj` */
    CR_FLIGHT_SERVE_STALE,  /* answer from `obj`, the stale copy, because the upstream failed (stale-if-error) */
    CR_FLIGHT_PASS,         /* go to the upstream uncached; `reason` says why ("too-large", the not-stored reason) */
    CR_FLIGHT_ERROR,        /* answer error_status with error_code and error_msg */
    CR_FLIGHT_TIMEOUT,      /* waited longer than the route's coalesce_timeout: the waiter left the flight */
    CR_FLIGHT_LOOKUP_AGAIN, /* it came while the answer's codings were made: look up again, the object is stored now */
} cr_flight_answer_t;

typedef struct st_cr_flight_outcome_t {
    cr_flight_answer_t answer;
    cr_object_t *obj;    /* SERVE, SERVE_STALE: valid during the callback (take a reference to keep it) */
    int is_leader;       /* the request whose miss started the fill */
    int shared;          /* SERVE: fetched for the whole herd, so it may not fit this request's variant (check it) */
    int codings_pending; /* SERVE: the leader, answered before the stored copy's codings were made (it will vary on
                            Accept-Encoding) */
    int stored;          /* SERVE: the answer was stored */
    int l2_hit;          /* SERVE: the answer came from the shared tier (L2), not the upstream */
    uint64_t upstream_us; /* the leader of a fill that asked the upstream: 1 + microseconds to its response head; else 0 */
    const char *reason;  /* SERVE not stored, PASS: why (NULL: none known) */
    int error_status;    /* ERROR: 502, 503 or 504 */
    const char *error_code, *error_msg;
} cr_flight_outcome_t;

/* Told the outcome, once, on the waiter's thread. */
typedef void (*cr_flight_answer_cb)(void *ctx, const cr_flight_outcome_t *outcome);

/* What a flight needs of the request that waits for it or starts it; lives in the request's pool. */
typedef struct st_cr_fill_req_t {
    h2o_req_t *req; /* its headers are copied (Vary, the upstream request); its pool holds the waiter */
    const cr_config_t *cfg; /* the generation the request started with: a flight it starts retains it */
    const cr_route_config_t *route;
    char *key;
    size_t keylen;
    uint64_t hash;
    cr_request_info_t qi;
    cr_flight_answer_cb on_answer;
    void *ctx; /* on_answer's */
} cr_fill_req_t;

/* What a request asks of the flight table (one find, under the mutex once). */
typedef enum en_cr_flight_mode_t {
    /* Only a flight in its codings window (it has its answer, the leader was answered first, the stored copy is
     * being made): wait for its store, then look up again (CR_FLIGHT_LOOKUP_AGAIN). Else CR_DECLINED, nothing done. */
    CR_FLIGHT_AWAIT_STORE,
    /* A miss: join the key's flight (as AWAIT_STORE when it is in its codings window) or start one. */
    CR_FLIGHT_FILL,
    /* A stale or no-cache hit: as AWAIT_STORE first (also for a private fill), else as CR_FLIGHT_FILL. */
    CR_FLIGHT_REFILL,
    /* A stale hit served while revalidating (stale-while-revalidate): as AWAIT_STORE first; else starts a background
     * revalidation of `stale` unless a flight is running for the key, and returns CR_DECLINED (serve the stale). */
    CR_FLIGHT_REVALIDATE,
    /* A conditional miss (serve/handler.c): join the key's running flight (as AWAIT_STORE in its codings window) as
     * CR_FLIGHT_FILL would, but never start one: CR_DECLINED when there is none (or it is full), nothing done. */
    CR_FLIGHT_JOIN,
} cr_flight_mode_t;

cr_flight_table_t *cr_flight_table_new(unsigned nthreads);

/* Registers the per-thread receiver that answers waiters woken by other threads. */
void cr_flight_thread_init(cr_thread_t *t);
/* Background revalidations (stale-while-revalidate) started and not yet finished, process-wide: the drain on
 * SIGTERM waits until it is 0 (or drain_timeout). Any thread. */
size_t cr_flight_background_live(void);

/*
 * Makes fr->req wait for a fill of fr->key, per `mode` (above). `stale` (may be NULL; the flight takes its own
 * reference) is an object to revalidate with its validators. With `shared` == 0 a fill started is private to this
 * request (coalescing off, or a marker said so). Counts the request as a miss, except when it waits for a store: then
 * its second lookup counts it.
 * Returns CR_OK (it waits for a fill's answer: fr->on_answer will be called, possibly before this returns), CR_AGAIN
 * (it waits for a store: on_answer will say CR_FLIGHT_LOOKUP_AGAIN, or time out), CR_DECLINED (not waiting: for FILL
 * and REFILL, the flight already has the route's max_waiters and the caller passes; for AWAIT_STORE, go on as usual;
 * for REVALIDATE, serve the stale copy), or CR_ERROR (out of memory: the caller answers 503).
 */
int cr_flight_join(cr_thread_t *t, cr_fill_req_t *fr, cr_object_t *stale, cr_flight_mode_t mode, int shared);

#endif
