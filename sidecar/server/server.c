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
 * cr_rt.stopping and wakes every loop (the admin thread's too); each worker closes its listeners and runs until its in-flight requests are
 * done (at most CR_DRAIN_MS), drops its cached object references (pin.h) and exits. Every CR_PIN_MAINTAIN_MS a
 * worker also lets go of the cached references of objects that left the store (its loop wakes at least that often,
 * so an idle worker does too). Per-thread state (loops, upstream pools, flight receivers, the guard) is not
 * torn down: background revalidations may still hold upstream connections at that point, and the process exits
 * right after the workers return. The admin thread closes its listener at SIGTERM too, serves its open connections
 * until every worker has returned, and is joined last. cr_rt and the per-thread timeouts are core/runtime.c's.
 * Config generations (conf/generation.h): cr_server_run installs the first one; each thread (workers and admin)
 * takes its own reference when it starts and drops it when its loop has stopped. What a worker sets up from its
 * first generation (upstream pool, guard budgets, listeners) stays until a restart.
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
#include "corral/fill/flight.h"
#include "corral/serve/guard.h"
#include "corral/serve/handler.h"
#include "corral/core/log.h"
#include "corral/core/accesslog.h"
#include "corral/cache/pin.h"
#include "corral/fill/invalidation.h"
#include "corral/tier/inval_sync.h"
#include "corral/tier/tier.h"

#define CR_DRAIN_MS 10000

static SSL_CTX **ssl_ctxs; /* per listener, NULL without tls */
static int *first_fds;     /* per listener, opened by the main thread for worker 0 */
static int admin_fd = -1;

/* Opens a listening socket; returns the fd or -1 with errno set. */
static int open_listener(const struct sockaddr_storage *addr, socklen_t addrlen)
{
    int fd, on = 1;
    if ((fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 || bind(fd, (const void *)addr, addrlen) != 0 ||
        listen(fd, H2O_SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    return fd;
}

/*
 * SO_REUSEPORT would let a second corral (or any process of the same user that sets it) bind an address this one
 * serves, and the kernel would split the traffic between two caches. Before the first listening socket of an address
 * is opened, claim it twice:
 *   - a lock that exists while this process lives: an abstract-namespace unix socket named after the address (bound
 *     by one process at a time, released by the kernel when the process dies), so two corrals starting at the same
 *     moment cannot both pass;
 *   - a probe: a TCP socket bound to the address WITHOUT SO_REUSEPORT (SO_REUSEADDR, so connections in TIME_WAIT from
 *     an earlier run do not count) fails with EADDRINUSE while any other socket listens there (also a wildcard
 *     address on the same port), and is closed at once, before corral's own per-thread sockets are opened.
 * Returns 0, or -1 after logging "cannot listen on ADDRESS: address already in use by another process" (the words
 * "in use" are what the e2e harness looks for to retry on another port).
 */
static int claim_address(const struct sockaddr_storage *addr, socklen_t addrlen, const char *address, const char *what)
{
    struct sockaddr_un un;
    char host[NI_MAXHOST];
    int fd, on = 1, len, saved;

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    if (getnameinfo((const void *)addr, addrlen, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(host, sizeof(host), "%s", address);
    len = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "corral-listen %s %d", host, h2o_socket_getport((void *)addr));
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        bind(fd, (void *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len)) != 0) {
        saved = errno;
        if (fd != -1)
            close(fd);
        if (saved == EADDRINUSE) {
            cr_log_error("cannot listen on %s%s: address already in use by another corral process", address, what);
            return -1;
        }
        cr_log_warn("%s%s: cannot take the per-address lock (%s); checking the address only", address, what, strerror(saved));
    }
    /* else fd stays open (and bound) until the process exits */

    if ((fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
        cr_log_error("cannot listen on %s%s: %s", address, what, strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 || bind(fd, (const void *)addr, addrlen) != 0) {
        saved = errno;
        close(fd);
        if (saved == EADDRINUSE)
            cr_log_error("cannot listen on %s%s: address already in use by another process", address, what);
        else
            cr_log_error("cannot listen on %s%s: %s", address, what, strerror(saved));
        return -1;
    }
    close(fd);
    return 0;
}

/*
 * A listener and its accept loop. Each accepted socket goes through cr_conn_admit (the connection cap; a refused one
 * is closed at once) before h2o_accept. When accept fails for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM, or an error that is not about one connection) the pending connection stays in the kernel's queue, and the
 * level-triggered poll would report the listener readable again at once: the listener stops reading for
 * CR_ACCEPT_PAUSE_MS instead and then tries again (nginx does the same). An episode lasts until the listener has
 * emptied its queue (accept says EAGAIN), so a descriptor freed now and then does not end it; an episode's accept loop
 * that stops at its batch size looks again from a zero timeout, since an emptied queue would never poll readable to
 * show that EAGAIN. One warning when the
 * first listener of the process enters an episode, one info line when the last one leaves it; pauses are counted.
 */
#define CR_ACCEPT_PAUSE_MS 100

typedef struct st_cr_listener_t {
    h2o_socket_t *sock;
    h2o_accept_ctx_t *accept_ctx;
    cr_thread_t *thread;
    int counted;                 /* a traffic listener: its connections count toward limits.connections */
    int in_episode;              /* accept failed for lack of resources and the queue has not been emptied since */
    uint64_t episode_started_ms;
    uint64_t pauses;             /* in this episode */
    h2o_timeout_entry_t resume;  /* linked while paused */
    h2o_timeout_entry_t recheck; /* linked when an episode's accept loop stopped at its batch size (see on_accept) */
} cr_listener_t;

static unsigned listeners_in_episode; /* atomic, process-wide */

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_resume_accept(h2o_timeout_entry_t *entry)
{
    cr_listener_t *l = H2O_STRUCT_FROM_MEMBER(cr_listener_t, resume, entry);
    h2o_socket_read_start(l->sock, on_accept);
    /* try at once: with SO_REUSEPORT this listener's own queue may stay empty (the kernel gave the new connections to
     * another thread's), and only an accept that says EAGAIN ends its episode (and the process-wide one) */
    on_accept(l->sock, NULL);
}

static void on_recheck_accept(h2o_timeout_entry_t *entry)
{
    cr_listener_t *l = H2O_STRUCT_FROM_MEMBER(cr_listener_t, recheck, entry);
    if (h2o_socket_is_reading(l->sock))
        on_accept(l->sock, NULL);
}

static void pause_listener(cr_listener_t *l, int err)
{
    h2o_loop_t *loop = l->thread->ctx.loop;
    CR_STAT_INC(l->thread->stats, accept_pauses);
    if (!l->in_episode) {
        l->in_episode = 1;
        l->episode_started_ms = h2o_now(loop);
        l->pauses = 0;
        if (__atomic_fetch_add(&listeners_in_episode, 1, __ATOMIC_ACQ_REL) == 0)
            cr_log_warn("accept: %s (%zu client connections open); pausing the listeners for %d ms at a time until "
                        "a connection can be accepted",
                        strerror(err), cr_connections_open(), CR_ACCEPT_PAUSE_MS);
    }
    ++l->pauses;
    h2o_socket_read_stop(l->sock);
    h2o_timeout_link(loop, cr_thread_timeout(l->thread, CR_ACCEPT_PAUSE_MS), &l->resume);
}

static void end_episode(cr_listener_t *l)
{
    l->in_episode = 0;
    if (__atomic_sub_fetch(&listeners_in_episode, 1, __ATOMIC_ACQ_REL) == 0)
        cr_log_info("accept: accepting connections again after %llu ms (%llu pauses of %d ms)",
                    (unsigned long long)(h2o_now(l->thread->ctx.loop) - l->episode_started_ms), (unsigned long long)l->pauses,
                    CR_ACCEPT_PAUSE_MS);
}

/* accept(2) errors that concern one connection only (accept(2), "Error handling"): take the next one. */
static int accept_error_is_transient(int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return 1;
    default:
        return 0;
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    cr_listener_t *l = listener->data;
    h2o_socket_t *sock;
    int i;
    if (err != NULL)
        return;
    for (i = 0; i != 32; ++i) {
        if ((sock = h2o_evloop_socket_accept(listener)) == NULL) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (l->in_episode) /* the queue is empty: the shortage is over (one fd freed now and then is not) */
                    end_episode(l);
                break;
            }
            if (accept_error_is_transient(errno))
                continue;
            pause_listener(l, errno);
            return;
        }
        if (cr_conn_admit(l->thread, sock, l->counted) != 0) {
            h2o_socket_close(sock);
            continue;
        }
        h2o_accept(l->accept_ctx, sock);
    }
    /* A full batch says nothing about the queue. Were it empty now, the level-triggered poll would not call back and
     * an episode could never see the EAGAIN that ends it: look again from the next loop turn. */
    if (i == 32 && l->in_episode && !h2o_timeout_is_linked(&l->recheck))
        h2o_timeout_link(l->thread->ctx.loop, cr_thread_timeout(l->thread, 0), &l->recheck);
}

static h2o_socket_t *start_listener(cr_thread_t *t, int fd, h2o_accept_ctx_t *accept_ctx, int counted)
{
    cr_listener_t *l = calloc(1, sizeof(*l));
    assert(l != NULL);
    l->sock = h2o_evloop_socket_create(t->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->accept_ctx = accept_ctx;
    l->thread = t;
    l->counted = counted;
    l->resume.cb = on_resume_accept;
    l->recheck.cb = on_recheck_accept;
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
    return l->sock;
}

/* Closes the listener in *slot (if any) and clears it; a pending resume is cancelled first. */
static void stop_listener(h2o_socket_t **slot)
{
    cr_listener_t *l;
    if (*slot == NULL)
        return;
    l = (*slot)->data;
    h2o_timeout_unlink(&l->resume);
    h2o_timeout_unlink(&l->recheck);
    if (l->in_episode)
        __atomic_sub_fetch(&listeners_in_episode, 1, __ATOMIC_ACQ_REL);
    if (h2o_socket_is_reading(l->sock))
        h2o_socket_read_stop(l->sock);
    h2o_socket_close(l->sock);
    free(l);
    *slot = NULL;
}

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
    size_t i;

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

    t->num_listeners = cfg->num_listens;
    t->accept_ctxs = calloc(cfg->num_listens, sizeof(*t->accept_ctxs));
    t->listeners = calloc(cfg->num_listens, sizeof(*t->listeners));
    for (i = 0; i != cfg->num_listens; ++i) {
        int fd = t->idx == 0 ? first_fds[i] : open_listener(&cfg->listens[i].addr, cfg->listens[i].addrlen);
        if (fd == -1) {
            cr_log_error("worker %u: cannot listen on %s: %s", t->idx, cfg->listens[i].address, strerror(errno));
            continue;
        }
        t->accept_ctxs[i].ctx = &t->ctx;
        t->accept_ctxs[i].hosts = cr_rt.globalconf.hosts;
        t->accept_ctxs[i].ssl_ctx = ssl_ctxs[i];
        t->accept_ctxs[i].expect_proxy_line = 0;
        t->listeners[i] = start_listener(t, fd, &t->accept_ctxs[i], 1);
    }
    watch = cr_conn_watch_start(t);
    worker_is_ready();

    last_maintain = h2o_now(loop);
    while (!cr_rt.stopping) {
        h2o_evloop_run(loop, CR_PIN_MAINTAIN_MS);
        if (h2o_now(loop) - last_maintain >= CR_PIN_MAINTAIN_MS) {
            cr_pin_maintain(); /* the thread's cached object references (pin.h) */
            last_maintain = h2o_now(loop);
        }
    }

    /* drain: stop accepting, let the requests in progress finish */
    for (i = 0; i != t->num_listeners; ++i)
        stop_listener(&t->listeners[i]);
    deadline = h2o_now(loop) + CR_DRAIN_MS;
    while ((t->inflight != 0 || t->workq_owner.in_flight != 0) && h2o_now(loop) < deadline) /* pool jobs come back here */
        h2o_evloop_run(loop, 50);
    if (t->inflight != 0)
        cr_log_warn("worker %u: %zu requests still in progress after the drain period", t->idx, t->inflight);
    cr_conn_watch_stop(&watch);
    cr_pin_drop_all();
    cr_thread_config_fini(t);
    return NULL;
}

/*
 * The admin thread: its own loop and h2o context (admin globalconf) serving the admin listener, so a slow admin
 * request (an O(objects) purge) never holds up a traffic loop. Its connections are admitted and watched by
 * conn_watch like any client's (not counted toward limits.connections, as before). On SIGTERM it closes its listener
 * and goes on answering the admin connections already open until every worker has drained (cr_rt.workers_done), as
 * the admin did when it shared worker 0's loop.
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
    t->listeners[0] = start_listener(t, admin_fd, &t->accept_ctxs[0], 0);
    watch = cr_conn_watch_start(t);
    worker_is_ready();

    last_maintain = h2o_now(loop);
    while (!cr_rt.stopping) {
        h2o_evloop_run(loop, CR_PIN_MAINTAIN_MS);
        if (h2o_now(loop) - last_maintain >= CR_PIN_MAINTAIN_MS) {
            cr_pin_maintain(); /* the admin takes no pins; kept so no thread is an exception to pin.h's rules */
            last_maintain = h2o_now(loop);
        }
    }
    stop_listener(&t->listeners[0]);
    while (!cr_rt.workers_done)
        h2o_evloop_run(loop, 50);
    cr_conn_watch_stop(&watch);
    cr_pin_drop_all();
    cr_thread_config_fini(t);
    return NULL;
}

/* The listener's TLS context (config_check.c, the same checks -t makes) with h2 and http/1.1 by ALPN, or NULL. */
static SSL_CTX *create_ssl_ctx(const cr_config_t *cfg, size_t index)
{
    char errbuf[1024];
    SSL_CTX *ctx = cr_config_tls_ctx_new(cfg, index, errbuf, sizeof(errbuf));
    if (ctx == NULL) {
        cr_log_error("%s", errbuf);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
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
    ssl_ctxs = calloc(cfg->num_listens, sizeof(*ssl_ctxs));
    first_fds = calloc(cfg->num_listens, sizeof(*first_fds));
    for (i = 0; i != cfg->num_listens; ++i) {
        const cr_listen_config_t *l = cfg->listens + i;
        if (l->tls_certificate != NULL && (ssl_ctxs[i] = create_ssl_ctx(cfg, i)) == NULL)
            return 1;
        if (claim_address(&l->addr, l->addrlen, l->address, "") != 0)
            return 1;
        if ((first_fds[i] = open_listener(&l->addr, l->addrlen)) == -1) {
            cr_log_error("cannot listen on %s: %s", l->address, strerror(errno));
            return 1;
        }
    }
    if (cfg->admin.address != NULL && claim_address(&cfg->admin.addr, cfg->admin.addrlen, cfg->admin.address, " (admin)") != 0)
        return 1;
    if (cfg->admin.address != NULL && (admin_fd = open_listener(&cfg->admin.addr, cfg->admin.addrlen)) == -1) {
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
    for (i = 0; i != cfg->num_listens; ++i)
        cr_log_info("listening on %s (%s)", cfg->listens[i].address, ssl_ctxs[i] != NULL ? "h2 + http/1.1 over TLS" : "http/1.1 + h2c");
    if (admin_fd != -1)
        cr_log_info("admin listening on %s%s", cfg->admin.address,
                    cr_rt.admin_token == NULL ? " (no token configured: loopback clients only)" : "");
    cr_log_info("corral %s started: %u threads, upstream %s, cache %zu bytes", CR_VERSION, cfg->threads, cfg->upstream.url,
                cfg->cache.memory);

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            cr_log_warn("SIGHUP: configuration reload is not supported yet; restart to apply changes");
            continue;
        }
        break;
    }
    cr_log_info("signal %d: draining", sig);
    cr_rt.stopping = 1;
    for (i = 0; i != cfg->threads; ++i)
        h2o_multithread_send_message(&cr_rt.threads[i].wake_receiver, NULL);
    if (cr_rt.admin_thread != NULL)
        h2o_multithread_send_message(&cr_rt.admin_thread->wake_receiver, NULL);
    for (i = 0; i != cfg->threads; ++i)
        pthread_join(cr_rt.threads[i].tid, NULL);
    cr_accesslog_flush_all(); /* what the workers buffered since their last tick */
    if (cr_rt.workq != NULL) /* the workers waited for their jobs (as for requests, at most CR_DRAIN_MS) */
        cr_workq_stop(cr_rt.workq);
    if (cr_rt.admin_thread != NULL) { /* it answered open admin connections during the drain; now it stops */
        cr_rt.workers_done = 1;
        h2o_multithread_send_message(&cr_rt.admin_thread->wake_receiver, NULL);
        pthread_join(cr_rt.admin_thread->tid, NULL);
    }
    if (cr_rt.tier != NULL) /* after every thread that invalidates: it writes what is in its outbox once more */
        cr_inval_sync_stop(&cr_rt.tier->sync);
    cr_log_info("stopped");
    return ret;
}
