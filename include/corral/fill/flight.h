/*
 * flight.h: single-flight cache fills, one per key across all threads.
 *
 * The table is shared by every worker and guarded by one mutex, held only to find, insert or unlink a flight
 * (never during I/O). A flight is driven by the thread that created it (the owner): it fetches from the upstream,
 * builds the object, stores it, then publishes the outcome. Waiters sit on per-thread lists inside the flight that
 * only their own thread touches; the owner wakes each other thread with one h2o_multithread message, and that
 * thread answers its own waiters. Flights are refcounted atomically: the table's link, the owner's fetch, every
 * waiter and every message in transit each hold one reference. A fill whose waiters have all left while it still
 * waits for an upstream connection is dropped (never sent); one that has a connection runs on and is stored; a
 * background revalidation has no waiter and always runs (flight.c).
 */
#ifndef CORRAL_FLIGHT_H
#define CORRAL_FLIGHT_H

#include "corral/serve/handler.h"
#include "corral/core/runtime.h"

cr_flight_table_t *cr_flight_table_new(unsigned nthreads);

/* Registers the per-thread receiver that answers waiters woken by other threads. */
void cr_flight_thread_init(cr_thread_t *t);

/*
 * Makes `lk->req` wait for a fill of lk->key: joins the flight in progress or starts one. `stale` (may be NULL; the
 * flight takes its own reference) is an object to revalidate with its validators. With `shared` == 0 the flight is
 * private to this request (coalescing off, or a marker said so). Counts the request as a miss, except when the flight
 * it joins has its answer already and only makes its codings: then the request is looked up again once the object
 * is stored (cr_handler_lookup), as if it had come a moment later, and that lookup counts it. Returns CR_OK, or
 * CR_DECLINED when the flight already has the route's max_waiters (the caller passes the request instead).
 */
int cr_flight_wait(cr_thread_t *t, cr_lookup_t *lk, cr_object_t *stale, int shared);

/*
 * For a lookup that found no fresh object: when a flight for lk->key has its answer already and only makes its
 * codings (the leader was answered first, see flight.c), makes lk->req wait for the store and then look up again
 * (cr_handler_lookup), as if it had come a moment later, and returns CR_OK. Returns CR_DECLINED otherwise (no such
 * flight, or it has max_waiters): the caller goes on as usual.
 */
int cr_flight_await_store(cr_thread_t *t, cr_lookup_t *lk);

/* Starts a background revalidation of `stale` unless one is already in flight for the key (no waiter). */
void cr_flight_revalidate_background(cr_thread_t *t, cr_lookup_t *lk, cr_object_t *stale);

#endif
