/*
 * server.c: listeners, worker threads, TLS, and the drain on SIGTERM.
 *
 * Start-up order: the store and flight table, then h2o's global configs (traffic and admin), then every listener
 * socket is opened in the main thread (so a port in use fails start-up with a clear message before any thread
 * runs; each address is first claimed for this process, see claim_address), then one worker per configured thread.
 * Each worker has its own evloop, h2o context, upstream pool and its own SO_REUSEPORT socket per listener (the
 * kernel spreads connections). The admin listener has a thread of its own (admin_main: its own loop and h2o
 * context, named corral-admin; workers are corral-w<N>), started before the workers. Accepted connections pass the
 * connection cap and get their header-timeout watch from conn_watch.c (which also raises RLIMIT_NOFILE and sets libh2o's own
 * timeouts before the workers start); an accept that fails for lack of descriptors pauses the listener (see on_accept).
 * Signals are blocked in every worker and taken by the main thread with sigwait(), once every worker has registered
 * its wake receiver and started its listeners (a signal that comes earlier waits); on SIGTERM/SIGINT it sets
 * cr_rt.stopping and wakes every loop (the admin thread's too); each worker closes its listeners and runs until its in-flight requests,
 * its pool jobs (codings, async L2 writes) and every background revalidation of the process are done (at most the
 * current generation's drain_timeout), drops its cached object references (pin.h) and exits. SIGHUP reloads the
 * configuration (conf/reload.h, as POST /v1/reload does); on_reloaded re-applies what was copied at start from a
 * reloadable key (the HPACK bound of limits.request_headers). Every CR_PIN_MAINTAIN_MS a
 * worker also lets go of the cached references of objects that left the store (its loop wakes at least that often,
 * so an idle worker does too). Per-thread state (loops, upstream pools, flight receivers, the guard) is not
 * torn down: background revalidations may still hold upstream connections at that point, and the process exits
 * right after the workers return. The admin thread keeps its listener during the drain (/readyz answers 503 to new
 * probes), serves until every worker has returned, and is joined last. The upstream health checker (fill/health.h)
 * starts after the signal mask and stops last. cr_rt and the per-thread timeouts are core/runtime.c's.
 * Config generations (conf/generation.h): cr_server_run installs the first one; each thread (workers and admin)
 * takes its own reference when it starts and drops it when its loop has stopped. What a worker sets up from its
 * first generation (upstream pool, guard budgets) stays until a restart; its listeners follow the reloadable
 * listener set (listen_set.h), which it checks after every loop turn.
 */
#include "corral/core/runtime.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "corral/admin/admin.h"
#include "corral/cache/store.h"
#include "corral/conf/config.h"
#include "corral/conf/generation.h"
#include "corral/fill/upstream.h"
#include "corral/conf/config_check.h"
#include "corral/server/conn_watch.h"
#include "corral/server/listeners.h"
#include "corral/server/listen_set.h"
#include "corral/fill/flight.h"
#include "corral/serve/guard.h"
#include "corral/serve/handler.h"
#include "corral/core/log.h"
#include "corral/core/accesslog.h"
#include "corral/cache/pin.h"
#include "corral/fill/invalidation.h"
#include "corral/tier/inval_sync.h"
#include "corral/tier/tier.h"
#include "corral/conf/reload.h"
#include "corral/fill/health.h"
#include "corral/fill/upstream_resolver.h"
#include "corral/http/hpack_bound.h"

static int admin_fd = -1;

static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    /* only used to break out of h2o_evloop_run; messages are NULL */
}

/* Workers that have registered their wake receiver and started their listeners. The main thread waits for all of
 * them before it takes signals: a SIGTERM that came earlier would wake a receiver that is not registered yet. */
static pthread_mutex_t workers_ready_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t workers_ready_cond = PTHREAD_COND_INITIALIZER;
static unsigned workers_ready;

static void worker_is_ready(void)
{
    pthread_mutex_lock(&workers_ready_mutex);
    ++workers_ready;
    pthread_cond_broadcast(&workers_ready_cond);
    pthread_mutex_unlock(&workers_ready_mutex);
}

static void wait_for_workers(unsigned n)
{
    pthread_mutex_lock(&workers_ready_mutex);
    while (workers_ready < n)
        pthread_cond_wait(&workers_ready_cond, &workers_ready_mutex);
    pthread_mutex_unlock(&workers_ready_mutex);
}

static void *worker_main(void *arg)
{
    cr_thread_t *t = arg;
    const cr_config_t *cfg;
    h2o_loop_t *loop = h2o_evloop_create();
    uint64_t deadline, last_maintain;
    cr_conn_watch_t *watch;
    char name[16];

    snprintf(name, sizeof(name), "corral-w%u", t->idx);
    pthread_setname_np(pthread_self(), name);
    h2o_context_init(&t->ctx, loop, &cr_rt.globalconf);
    h2o_linklist_init_anchor(&t->timeout_slots);
    cr_thread_config_init(t); /* the thread's generation; what is set up here from it stays until a restart */
    cfg = t->cfg;
    t->guard = cr_guard_new_with(cfg);
    assert(t->guard != NULL);
    cr_upstream_init(&t->upstream, loop, cfg, cr_rt.nthreads);
    cr_flight_thread_init(t);
    h2o_multithread_register_receiver(t->ctx.queue, &t->wake_receiver, on_wake);
    if (cr_rt.workq != NULL)
        cr_workq_owner_init(&t->workq_owner, cr_rt.workq, t->ctx.queue);

    cr_listen_set_sync(t); /* the listeners (listen_set.c: a reload may add or remove some; each loop follows) */
    watch = cr_conn_watch_start(t);
    worker_is_ready();

    last_maintain = h2o_now(loop);
    while (!cr_rt.stopping) {
        h2o_evloop_run(loop, CR_PIN_MAINTAIN_MS);
        if (h2o_now(loop) - last_maintain >= CR_PIN_MAINTAIN_MS) {
            cr_pin_maintain(); /* the thread's cached object references (pin.h) */
            last_maintain = h2o_now(loop);
        }
        cr_listen_set_sync(t); /* one relaxed load unless a reload changed the listeners (it wakes this loop) */
    }

    /* drain: stop accepting, let the requests in progress, the pool jobs (they come back here) and the background
     * revalidations (on whichever loop owns them: every loop runs until none is left) finish, within drain_timeout
     * of the current generation */
    cr_listen_set_close_all(t);
    cr_thread_config_refresh(t);
    deadline = h2o_now(loop) + t->cfg->drain_timeout_ms;
    while ((t->inflight != 0 || t->workq_owner.in_flight != 0 || cr_flight_background_live() != 0) && h2o_now(loop) < deadline)
        h2o_evloop_run(loop, 10);
    if (t->inflight != 0 || t->workq_owner.in_flight != 0)
        cr_log_warn("worker %u: %zu requests and %zu pool jobs still in progress after drain_timeout (%llu ms)", t->idx,
                    t->inflight, (size_t)t->workq_owner.in_flight, (unsigned long long)t->cfg->drain_timeout_ms);
    cr_conn_watch_stop(&watch);
    cr_pin_drop_all();
    cr_thread_config_fini(t);
    return NULL;
}

/*
 * The admin thread: its own loop and h2o context (admin globalconf) serving the admin listener, so a slow admin
 * request (an O(objects) purge) never holds up a traffic loop. Its connections are admitted and watched by
 * conn_watch like any client's (not counted toward limits.connections, as before). On SIGTERM it keeps its listener
 * and goes on answering (new probes of /readyz get 503 "draining") until every worker has drained
 * (cr_rt.workers_done); then it closes the listener and stops.
 */
static void *admin_main(void *arg)
{
    cr_thread_t *t = arg;
    h2o_loop_t *loop = h2o_evloop_create();
    uint64_t last_maintain;
    cr_conn_watch_t *watch;

    pthread_setname_np(pthread_self(), "corral-admin");
    h2o_context_init(&t->ctx, loop, &cr_rt.admin_globalconf);
    h2o_linklist_init_anchor(&t->timeout_slots);
    cr_thread_config_init(t);
    h2o_multithread_register_receiver(t->ctx.queue, &t->wake_receiver, on_wake);

    t->num_listeners = 1;
    t->accept_ctxs = calloc(1, sizeof(*t->accept_ctxs));
    t->listeners = calloc(1, sizeof(*t->listeners));
    assert(t->accept_ctxs != NULL && t->listeners != NULL);
    t->accept_ctxs[0].ctx = &t->ctx;
    t->accept_ctxs[0].hosts = cr_rt.admin_globalconf.hosts;
    t->listeners[0] = cr_listener_start(t, admin_fd, &t->accept_ctxs[0], 0);
    watch = cr_conn_watch_start(t);
    worker_is_ready();

    last_maintain = h2o_now(loop);
    while (!cr_rt.workers_done) {
        h2o_evloop_run(loop, CR_PIN_MAINTAIN_MS);
        if (h2o_now(loop) - last_maintain >= CR_PIN_MAINTAIN_MS) {
            cr_pin_maintain(); /* the admin takes no pins; kept so no thread is an exception to pin.h's rules */
            last_maintain = h2o_now(loop);
        }
    }
    cr_listener_stop(&t->listeners[0]);
    cr_conn_watch_stop(&watch);
    cr_pin_drop_all();
    cr_thread_config_fini(t);
    return NULL;
}

/* After a reload published a new generation (conf/reload.h; under its mutex, on the reloading thread): what was set
 * at start from a reloadable key. Every other reloadable key is read from the generation a request holds. */
static void on_reloaded(const cr_config_t *next)
{
    unsigned i;
    cr_hpack_bound_set_limit(next->limits.request_headers);
    cr_listen_set_commit(); /* listeners added or removed: every worker follows on its own loop once woken */
    for (i = 0; i != cr_rt.nthreads; ++i)
        h2o_multithread_send_message(&cr_rt.threads[i].wake_receiver, NULL);
}

/* The current generation, retained, for the upstream health checker (fill/health.h). */
static const cr_config_t *current_config(void)
{
    return cr_rt_config_acquire(NULL);
}

int cr_server_run(const cr_config_t *cfg)
{
    h2o_hostconf_t *hostconf;
    sigset_t sigs;
    unsigned i;
    int sig, ret = 0;

    /* the first generation: the process's reference is a new one, the caller's stays with this function (cfg is read
     * below until the end, whatever a later publish installs) */
    cr_rt_config_publish(cr_config_retain(cfg));
    cr_rt.nthreads = cfg->threads;
    cr_rt.started_at_ms = cr_now_ms();
    if ((cr_rt.store = cr_store_new_bounded(cfg->cache.memory, cfg->limits.variants_per_key)) == NULL || (cr_rt.flights = cr_flight_table_new(cfg->threads)) == NULL) {
        cr_log_error("out of memory at start-up");
        return 1;
    }

    h2o_config_init(&cr_rt.globalconf);
    cr_rt.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("corral"));
    /* libh2o reads request bodies whole before the handler runs: past this it answers 413 (HTTP/1.1) or resets the
     * stream (HTTP/2), so no body beyond limits.request_body is ever buffered (nor spilled to its /tmp mmap files) */
    cr_rt.globalconf.max_request_entity_size = cfg->limits.request_body;
    /* and maps a socket buffer onto an (unlinked) /tmp file once its capacity reaches this threshold (32 MiB): a
     * buffer holding a body within the limit doubles to at most about twice it, so such bodies stay in memory */
    if (h2o_socket_buffer_mmap_settings.threshold < 4 * cfg->limits.request_body)
        h2o_socket_buffer_mmap_settings.threshold = 4 * cfg->limits.request_body;
    /* requests of one HTTP/2 connection handled at once; libh2o queues the others (its SETTINGS still say 100) */
    cr_rt.globalconf.http2.max_concurrent_requests_per_connection = cfg->limits.streams_per_connection;
    hostconf = h2o_config_register_host(&cr_rt.globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    cr_handler_register(hostconf);

    h2o_config_init(&cr_rt.admin_globalconf);
    cr_rt.admin_globalconf.server_name = h2o_iovec_init(H2O_STRLIT("corral"));
    /* bodies over limits.admin_body get admin.c's JSON 413; libh2o itself refuses (plain text) past twice that */
    cr_rt.admin_globalconf.max_request_entity_size = 2 * cfg->limits.admin_body;
    hostconf = h2o_config_register_host(&cr_rt.admin_globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    cr_admin_register(hostconf);

    cr_conn_limits_init(cfg, &cr_rt.globalconf, &cr_rt.admin_globalconf); /* before the workers' h2o contexts */
    SSL_load_error_strings();
    SSL_library_init();
    if (cr_listen_set_init(cfg) != 0) /* claims, worker 0's sockets, TLS contexts (logged) */
        return 1;
    if (cfg->admin.address != NULL) {
        char errbuf[512];
        if (cr_listener_claim(&cfg->admin.addr, cfg->admin.addrlen, cfg->admin.address, " (admin)", errbuf, sizeof(errbuf)) == -2) {
            cr_log_error("%s", errbuf);
            return 1;
        }
    }
    if (cfg->admin.address != NULL && (admin_fd = cr_listener_open(&cfg->admin.addr, cfg->admin.addrlen)) == -1) {
        cr_log_error("cannot listen on %s (admin): %s", cfg->admin.address, strerror(errno));
        return 1;
    }

    /* workers inherit this mask: only the main thread takes signals */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    cr_reload_set_hooks(cr_listen_set_prepare, on_reloaded); /* before the admin thread, which may reload */
    (void)cr_upstream_resolver_start(cfg); /* a host-name upstream.url: re-resolved off the loops */
    if (cr_health_start(current_config) != 0)
        cr_log_warn("cannot start the upstream health checker: upstream.health is not checked");
    /* the shared tier's client, before the pool whose threads call it */
    if (cfg->tier.num_memcached_servers != 0) {
        cr_tier_conf_t tc = {.mc = {.servers = (const char *const *)cfg->tier.memcached_servers,
                                    .num_servers = cfg->tier.num_memcached_servers,
                                    .timeout_ms = cfg->tier.memcached_timeout_ms,
                                    .handles = CR_WORKQ_TIER_THREADS + 2},
                             .max_item_size = cfg->tier.max_item_size,
                             .lease_ttl_ms = cfg->tier.lease_ttl_ms,
                             .lease_poll_ms = cfg->tier.lease_poll_ms,
                             .inval_max_delay_ms = cfg->tier.inval_max_delay_ms,
                             .inval_poll_ms = cfg->tier.inval_poll_ms};
        if ((cr_rt.tier = cr_tier_new(&tc)) == NULL)
            return 1;
    }
    /* the worker pool (core/workq.h), after the mask (its threads inherit it), before the workers that use it. With
     * the tier, more threads: theirs mostly wait on memcached (at most a few timeouts each), beside the codings */
    if ((cr_rt.workq = cr_workq_new(cr_rt.tier != NULL ? CR_WORKQ_TIER_THREADS : CR_WORKQ_DEFAULT_THREADS, 0)) == NULL) {
        cr_log_warn("cannot start the worker pool: the codings of large fills are made on the event loops");
        if (cr_rt.tier != NULL) {
            cr_log_error("tier: the shared tier needs the worker pool (libmemcached never runs on an event loop)");
            return 1;
        }
    }
    if (cr_rt.tier != NULL) {
        if ((cr_rt.tier->sync = cr_inval_sync_start(cr_rt.tier, cr_invalidate_apply_remote, cr_rt.store)) == NULL) {
            cr_log_error("tier: cannot start the invalidation log thread");
            return 1;
        }
        cr_log_info("tier: %zu memcached servers, timeout %llu ms, lease %llu ms, invalidation max delay %llu ms",
                    cfg->tier.num_memcached_servers, (unsigned long long)cfg->tier.memcached_timeout_ms,
                    (unsigned long long)cfg->tier.lease_ttl_ms, (unsigned long long)cfg->tier.inval_max_delay_ms);
    }

    cr_rt.threads = calloc(cfg->threads, sizeof(*cr_rt.threads));
    for (i = 0; i != cfg->threads; ++i) {
        cr_rt.threads[i].magic = CR_THREAD_MAGIC;
        cr_rt.threads[i].idx = i;
    }
    if (admin_fd != -1) { /* the admin thread first: it is up before any traffic worker reports ready */
        cr_rt.admin_thread = calloc(1, sizeof(*cr_rt.admin_thread));
        assert(cr_rt.admin_thread != NULL);
        cr_rt.admin_thread->magic = CR_THREAD_MAGIC;
        cr_rt.admin_thread->idx = cfg->threads;
        cr_rt.admin_thread->is_admin = 1;
        h2o_multithread_create_thread(&cr_rt.admin_thread->tid, NULL, admin_main, cr_rt.admin_thread);
        wait_for_workers(1);
    }
    for (i = 0; i != cfg->threads; ++i)
        h2o_multithread_create_thread(&cr_rt.threads[i].tid, NULL, worker_main, cr_rt.threads + i);
    wait_for_workers(cfg->threads + (cr_rt.admin_thread != NULL));
    cr_listen_set_log();
    if (admin_fd != -1)
        cr_log_info("admin listening on %s%s", cfg->admin.address,
                    cr_rt.admin_token == NULL ? " (no token configured: loopback clients only)" : "");
    cr_log_info("corral %s started: %u threads, upstream %s, cache %zu bytes", CR_VERSION, cfg->threads, cfg->upstream.url,
                cfg->cache.memory);
    cr_health_set_serving(1); /* /readyz: every listener is up */

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            cr_config_reload("SIGHUP", NULL, 0); /* logs its outcome */
            continue;
        }
        break;
    }
    {
        const cr_config_t *now = cr_rt_config_acquire(NULL);
        cr_log_info("signal %d: draining (at most %llu ms)", sig, (unsigned long long)now->drain_timeout_ms);
        cr_config_release(&now);
    }
    cr_rt.stopping = 1;
    for (i = 0; i != cfg->threads; ++i)
        h2o_multithread_send_message(&cr_rt.threads[i].wake_receiver, NULL);
    if (cr_rt.admin_thread != NULL)
        h2o_multithread_send_message(&cr_rt.admin_thread->wake_receiver, NULL);
    for (i = 0; i != cfg->threads; ++i)
        pthread_join(cr_rt.threads[i].tid, NULL);
    cr_accesslog_flush_all(); /* what the workers buffered since their last tick */
    if (cr_rt.workq != NULL) /* the workers waited for their jobs (as for requests, at most drain_timeout) */
        cr_workq_stop(cr_rt.workq);
    if (cr_rt.admin_thread != NULL) { /* it answered open admin connections during the drain; now it stops */
        cr_rt.workers_done = 1;
        h2o_multithread_send_message(&cr_rt.admin_thread->wake_receiver, NULL);
        pthread_join(cr_rt.admin_thread->tid, NULL);
    }
    if (cr_rt.tier != NULL) /* after every thread that invalidates: it writes what is in its outbox once more */
        cr_inval_sync_stop(&cr_rt.tier->sync);
    cr_health_stop();
    cr_upstream_resolver_stop();
    cr_log_info("stopped");
    return ret;
}
