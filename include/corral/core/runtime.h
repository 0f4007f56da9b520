/*
 * runtime.h: the process-wide state and the per-thread worker context.
 *
 * Invariants: `cr_rt` is filled by main() before any worker starts and only `stopping` changes afterwards (set by
 * the signal thread, read by workers). cfg and store are shared read-only pointers (store does its own locking).
 * A cr_thread_t belongs to its worker thread: nothing in it is touched by other threads except `flight_receiver`,
 * which is only passed to h2o_multithread_send_message(). Statistics are per-thread and summed (relaxed loads)
 * by the admin thread, so the hot path touches no shared counter.
 */
#ifndef CORRAL_RUNTIME_H
#define CORRAL_RUNTIME_H

#include <h2o.h>
#include <pthread.h>
#include <signal.h>
#include "corral/core/common.h"
#include "corral/conf/config.h"
#include "corral/cache/store.h"
#include "corral/fill/upstream.h"

#define CR_THREAD_MAGIC 0x7e4dd001u

typedef struct st_cr_flight_table_t cr_flight_table_t;

/* Per-thread counters; each written only by its own thread. */
typedef struct st_cr_stats_t {
    uint64_t requests;
    uint64_t hits;
    uint64_t misses;
    uint64_t stale;
    uint64_t passes;
    uint64_t coalesced;
    uint64_t coalesce_timeouts; /* waiters that gave up on a fill and went upstream themselves */
    uint64_t stored;
    uint64_t not_stored;
    uint64_t revalidated;    /* 304 from upstream refreshed an object */
    uint64_t not_modified;   /* 304 sent to clients */
    uint64_t upstream_requests;
    uint64_t upstream_errors;
    uint64_t invalidations;
    uint64_t guard_rejections; /* requests refused by the rapid-reset guard */
    uint64_t fills_dropped;    /* fills cancelled before they were sent: every waiter had gone */
    uint64_t connections_refused; /* client connections closed at accept: over limits.connections (conn_watch.h) */
    uint64_t header_timeouts;     /* HTTP/2 connections closed for an unfinished frame or header block */
    uint64_t accept_pauses;       /* 100 ms listener pauses after accept ran out of descriptors or memory */
} cr_stats_t;

/* Counts one event in a thread's own counters. Only the owning thread writes them; the store is atomic (relaxed, a
 * plain move on x86) so that the admin thread's relaxed loads in cr_stats_sum() are not a data race. */
#define CR_STAT_INC(stats, field) __atomic_store_n(&(stats).field, (stats).field + 1, __ATOMIC_RELAXED)

typedef struct st_cr_timeout_slot_t {
    h2o_linklist_t link;
    uint64_t ms;
    h2o_timeout_t timeout;
} cr_timeout_slot_t;

typedef struct st_cr_thread_t {
    unsigned magic;
    unsigned idx;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_context_t admin_ctx; /* only on thread 0 when an admin listener is configured */
    int has_admin;
    cr_upstream_t *upstream;
    h2o_multithread_receiver_t flight_receiver;
    h2o_multithread_receiver_t wake_receiver;
    h2o_linklist_t timeout_slots; /* cr_timeout_slot_t, one per distinct duration in use */
    h2o_accept_ctx_t *accept_ctxs; /* one per listener */
    h2o_socket_t **listeners;
    size_t num_listeners;
    h2o_accept_ctx_t admin_accept_ctx;
    h2o_socket_t *admin_listener;
    size_t inflight; /* requests being handled on this thread, for the drain on SIGTERM */
    struct st_cr_guard_t *guard; /* rapid-reset budget per connection (guard.h) */
    cr_stats_t stats;
} cr_thread_t;

typedef struct st_cr_runtime_t {
    const cr_config_t *cfg;
    cr_store_t *store;
    cr_flight_table_t *flights;
    cr_thread_t *threads;
    unsigned nthreads;
    h2o_globalconf_t globalconf;
    h2o_globalconf_t admin_globalconf;
    char *admin_token; /* NULL: loopback-only admin */
    _Atomic int stopping; /* written by the main thread after sigwait, read by every worker loop */
    uint64_t started_at_ms;
} cr_runtime_t;

extern cr_runtime_t cr_rt;

static inline cr_thread_t *cr_thread_of(h2o_req_t *req)
{
    cr_thread_t *t = H2O_STRUCT_FROM_MEMBER(cr_thread_t, ctx, req->conn->ctx);
    CR_CHECK_OBJ_NOTNULL(t, CR_THREAD_MAGIC);
    return t;
}

/* A per-thread h2o_timeout_t of the given duration, created on first use (h2o 2.2 timeouts have fixed durations). */
h2o_timeout_t *cr_thread_timeout(cr_thread_t *t, uint64_t ms);

/* Sums every thread's counters into out. */
void cr_stats_sum(cr_stats_t *out);

/* Server life cycle (server.c). cr_server_run blocks until SIGTERM/SIGINT and the drain finish. Returns exit code. */
int cr_server_run(const cr_config_t *cfg);

#endif
