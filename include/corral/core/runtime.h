/*
 * runtime.h: the process-wide state (cr_rt) and the per-thread context (cr_thread_t) of the traffic workers and the
 * admin thread. Defined in runtime.c; filled in and run by server/server.c.
 *
 * Invariants: `cr_rt` is filled by the server before any thread starts and only `stopping`, `workers_done`,
 * `connections_open` (atomics) and the config generation (`cfg`, `cfg_generation`) change afterwards. store is a
 * shared read-only pointer (store does its own locking). `cfg` is the process's current config generation: it is
 * installed by cr_rt_config_publish and taken by cr_rt_config_acquire (conf/generation.h, which also says why the
 * functions live in conf/); nothing else reads it. Each thread caches one generation (`cfg` in cr_thread_t) and
 * polls `cfg_generation` at the start of a request. A cr_thread_t belongs to its thread: nothing in it is touched by
 * other threads except `flight_receiver`, `wake_receiver` and `workq_owner.receiver`, which are only passed to
 * h2o_multithread_send_message(), and `stats`, which other threads read with relaxed loads (cr_stats_sum, stats.h),
 * so the hot path touches no shared counter. `workq` (the worker pool) is created before the threads and stopped
 * after they are joined.
 *
 * Threads: cr_rt.threads[0..nthreads) are the traffic workers (each an h2o context on the traffic globalconf);
 * cr_rt.admin_thread, when an admin listener is configured, is one more cr_thread_t whose ctx is the admin context
 * on its own loop. It has no upstream, flight receiver or guard (the admin API never fills or passes).
 *
 * This header names the config, store and upstream types only by forward declaration (core/ is below them).
 */
#ifndef CORRAL_RUNTIME_H
#define CORRAL_RUNTIME_H

#include <h2o.h>
#include <pthread.h>
#include <signal.h>
#include "corral/core/common.h"
#include "corral/core/stats.h"
#include "corral/core/workq.h"

#define CR_THREAD_MAGIC 0x7e4dd001u

/* Forward declarations (conf/config.h, cache/store.h, fill/upstream.h, fill/flight.h, serve/guard.h repeat these
 * typedefs; C11 allows the repetition). */
typedef struct st_cr_config_t cr_config_t;
typedef struct st_cr_store_t cr_store_t;
typedef struct st_cr_upstream_t cr_upstream_t;
typedef struct st_cr_flight_table_t cr_flight_table_t;
typedef struct st_cr_tier_t cr_tier_t;

typedef struct st_cr_timeout_slot_t {
    h2o_linklist_t link;
    uint64_t ms;
    h2o_timeout_t timeout;
} cr_timeout_slot_t;

typedef struct st_cr_thread_t {
    unsigned magic;
    unsigned idx; /* 0..nthreads-1 for workers; nthreads for the admin thread */
    int is_admin;
    pthread_t tid;
    h2o_context_t ctx; /* the traffic context on a worker, the admin context on the admin thread */
    cr_upstream_t *upstream; /* NULL on the admin thread */
    h2o_multithread_receiver_t flight_receiver;
    h2o_multithread_receiver_t wake_receiver;
    h2o_linklist_t timeout_slots; /* cr_timeout_slot_t, one per distinct duration in use */
    h2o_accept_ctx_t *accept_ctxs; /* one per listener */
    h2o_socket_t **listeners;
    size_t num_listeners;
    size_t inflight; /* requests being handled on this thread, for the drain on SIGTERM */
    struct st_cr_guard_t *guard; /* rapid-reset budget per connection (guard.h); NULL on the admin thread */
    cr_stats_t stats;
    const cr_config_t *cfg;  /* the thread's config generation (retained; conf/generation.h: cr_thread_config) */
    uint64_t cfg_generation; /* cr_rt.cfg_generation when cfg was taken */
    cr_workq_owner_t workq_owner; /* this loop's end of cr_rt.workq (workq == NULL: none, jobs run inline) */
} cr_thread_t;

typedef struct st_cr_runtime_t {
    const cr_config_t *cfg;  /* the current generation: only conf/generation.c reads or writes it (under its mutex) */
    uint64_t cfg_generation; /* atomic: counts publishes of cfg; threads poll it with a relaxed load */
    cr_store_t *store;
    cr_flight_table_t *flights;
    cr_workq_t *workq; /* the worker pool (core/workq.h); NULL when it could not be started */
    cr_tier_t *tier;   /* the shared tier (tier/tier.h); NULL without tier.memcached.servers */
    cr_thread_t *threads; /* the traffic workers */
    unsigned nthreads;
    cr_thread_t *admin_thread; /* NULL without an admin listener */
    h2o_globalconf_t globalconf;
    h2o_globalconf_t admin_globalconf;
    char *admin_token; /* NULL: loopback-only admin */
    _Atomic int stopping;     /* written by the main thread after sigwait, read by every loop */
    _Atomic int workers_done; /* written by the main thread once every worker has drained: the admin thread exits */
    size_t connections_open;  /* atomic: counted client connections open (server/conn_watch.c keeps it) */
    uint64_t started_at_ms;
    /* config reloads (SIGHUP, POST /v1/reload): atomics, bumped with __atomic_add_fetch by the reload code (server/),
     * read by the metrics writer as corral_config_reloads_total{result="ok"|"failed"} */
    uint64_t reloads_ok;
    uint64_t reloads_failed;
} cr_runtime_t;

extern cr_runtime_t cr_rt;

static inline cr_thread_t *cr_thread_of(h2o_req_t *req)
{
    cr_thread_t *t = H2O_STRUCT_FROM_MEMBER(cr_thread_t, ctx, req->conn->ctx);
    CR_CHECK_OBJ_NOTNULL(t, CR_THREAD_MAGIC);
    return t;
}

/* Counted client connections open now, all threads (a relaxed load; for metrics and logs). */
static inline size_t cr_connections_open(void)
{
    return __atomic_load_n(&cr_rt.connections_open, __ATOMIC_RELAXED);
}

/* A per-thread h2o_timeout_t of the given duration, created on first use (h2o 2.2 timeouts have fixed durations).
 * On the thread t only. */
h2o_timeout_t *cr_thread_timeout(cr_thread_t *t, uint64_t ms);

/* Server life cycle (server/server.c). cr_server_run blocks until SIGTERM/SIGINT and the drain finish. Returns the
 * exit code. It installs `cfg` as the first config generation with a reference of its own; the caller's reference
 * stays valid for the whole run. */
int cr_server_run(const cr_config_t *cfg);

#endif
