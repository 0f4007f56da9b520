/*
 * conn_watch.c: the connection cap and the HTTP/2 header timeout (conn_watch.h).
 *
 * Cap. cr_conn_admit counts each traffic connection in one process-wide atomic counter and refuses (the caller
 * closes the socket at once) past the effective cap; the count goes down in the socket's on_close callback, which
 * libh2o calls when it disposes of the socket. One warning opens an episode of refusals, one info line (with the
 * number refused) closes it when the count is back at 90% of the cap, so a client hammering the boundary cannot make
 * a line per connection.
 *
 * Header timeout. libh2o 2.2.5 re-arms its HTTP/2 idle timeout on every read, so one byte now and then keeps a
 * connection with a never-finished frame open forever. Each HTTP/2 connection's read callback is wrapped (by the
 * worker's sweep, which finds new connections in ctx->http2._conns: libh2o installs its on_read once per connection,
 * from paths corral cannot hook: h2c prior knowledge, Upgrade, ALPN). After libh2o's callback returns, the wrapper
 * looks at what is left: bytes in sock->input (the start of a frame, or of the preface) or an open header block
 * (conn->_headers_unparsed: HEADERS or CONTINUATION without END_HEADERS), and keeps `since`, when that unfinished unit
 * began: a frame's clock starts at the read that left it partial and restarts whenever a read completes a frame and
 * leaves the start of another; a header block's clock runs from its HEADERS frame to END_HEADERS whatever arrives in
 * between. Over TLS, a read that decrypted nothing (a partial TLS record) counts as unfinished too. The same sweep
 * closes a connection whose `since` is older than header_timeout, by shutdown(2) of its descriptor: libh2o then sees
 * the end of the stream on its next read and closes the connection itself, so no libh2o internals are called.
 * Idle connections (nothing unfinished) and bodies that arrive frame by frame, however slowly, are never touched:
 * idleness is libh2o's idle timeout's business. A single frame must arrive within header_timeout (16 KiB frames at
 * 10 s: 1.6 KiB/s at least).
 * Cost per read on an HTTP/2 connection: one extra indirect call, two flag stores, two compares on the socket, one
 * load of input->size and of conn->_headers_unparsed, and at most one store of `since`. Nothing per request; HTTP/1.1
 * sockets are not wrapped (libh2o's http1 req_timeout, set from the same limit, is not re-armed by reads).
 *
 * Memory safety: libh2o may close the connection inside its own read callback. For a plain socket that disposes of
 * it at once and calls on_close (which would free our record); for TLS it frees the h2 connection and starts the TLS
 * shutdown with another read callback. So the record is never freed while the wrapper runs (on_close only marks it;
 * the wrapper frees it afterwards), and the wrapper reads the h2 connection only when its own callback is still the
 * socket's (a live h2 connection never changes its read callback except to stop reading when it closes). The
 * socket's memory itself stays valid until the loop's next poll (evloop frees disposed sockets in update_status).
 *
 * Locking: the open count (cr_rt.connections_open, read by the admin through cr_connections_open()), the cap episode flag and its refusal count are atomics shared by all threads; records and
 * watches belong to one worker thread.
 */
#include "corral/server/conn_watch.h"

#include <errno.h>
#include <stdio.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "corral/core/log.h"

/* descriptors kept free for what is not a client or upstream connection: listeners, epoll and wake-up descriptors,
 * logs, temporary files, admin clients, the memcached tier */
#define CR_FD_RESERVE_BASE 64
#define CR_FD_RESERVE_PER_THREAD 8
#define CR_SWEEP_MIN_MS 50
#define CR_SWEEP_MAX_MS 1000
#define CR_TIMEOUT_LOG_EVERY_MS 10000

typedef struct st_cr_conn_t {
    h2o_socket_cb inner_read; /* libh2o's HTTP/2 read callback, once wrapped */
    uint64_t since;           /* loop time (ms) the unfinished frame or header block began; 0: nothing unfinished */
    uint8_t counted;          /* counts toward the cap */
    uint8_t in_read;          /* the wrapper is inside inner_read: on_close must not free */
    uint8_t closed;           /* on_close ran inside inner_read: the wrapper frees */
    uint8_t in_block;         /* since belongs to a header block */
    uint8_t timed_out;        /* shut down by the sweep; libh2o closes it on its next read */
} cr_conn_t;

struct st_cr_conn_watch_t {
    cr_thread_t *thread;
    h2o_timeout_t *every;
    h2o_timeout_entry_t entry;
    uint64_t timeout_ms;
    uint64_t unlogged;     /* connections closed since the last log line */
    uint64_t last_log_ms;
};

static size_t conn_cap = 10000;
static size_t conn_low_water = 9000;
static uint64_t header_timeout_ms = 10000;
static int at_cap;              /* atomic: an episode of refusals is open */
static uint64_t refused_in_episode; /* atomic */

size_t cr_conn_cap(void)
{
    return conn_cap;
}

static void set_cap(size_t cap)
{
    size_t margin = cap / 10 != 0 ? cap / 10 : 1;
    conn_cap = cap;
    conn_low_water = cap > margin ? cap - margin : 0;
}

void cr_conn_limits_init(const cr_config_t *cfg, h2o_globalconf_t *traffic, h2o_globalconf_t *admin)
{
    struct rlimit rl;
    /* the admin thread, when there is one, has its own loop and wake-up descriptors like a worker */
    uint64_t reserve = CR_FD_RESERVE_BASE + (uint64_t)cfg->threads * (CR_FD_RESERVE_PER_THREAD + cfg->num_listens) +
                       (cfg->admin.address != NULL ? CR_FD_RESERVE_PER_THREAD + 1 : 0);
    uint64_t others = reserve + cfg->upstream.max_connections, cap = cfg->limits.connections;

    header_timeout_ms = cfg->limits.header_timeout_ms;
    traffic->http1.req_timeout = header_timeout_ms;
    traffic->handshake_timeout = header_timeout_ms;
    if (admin != NULL) {
        admin->http1.req_timeout = header_timeout_ms;
        admin->handshake_timeout = header_timeout_ms;
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        cr_log_warn("getrlimit(RLIMIT_NOFILE): %s; limits.connections stays %llu", strerror(errno), (unsigned long long)cap);
        set_cap((size_t)cap);
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            cr_log_warn("cannot raise the open-file limit from %llu to %llu: %s", (unsigned long long)was,
                        (unsigned long long)rl.rlim_max, strerror(errno));
            rl.rlim_cur = was;
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY && cap + others > (uint64_t)rl.rlim_cur) {
        uint64_t fit = (uint64_t)rl.rlim_cur > others + 16 ? (uint64_t)rl.rlim_cur - others : 16;
        cr_log_warn("limits.connections %llu + upstream.max_connections %zu + %llu reserved exceed the open-file limit "
                    "%llu: accepting at most %llu client connections (raise the limit with ulimit -n or LimitNOFILE=)",
                    (unsigned long long)cap, cfg->upstream.max_connections, (unsigned long long)reserve,
                    (unsigned long long)rl.rlim_cur, (unsigned long long)fit);
        cap = fit;
    }
    set_cap((size_t)cap);
}

static void on_conn_close(void *data)
{
    cr_conn_t *c = data;
    if (c->counted) {
        size_t n = __atomic_sub_fetch(&cr_rt.connections_open, 1, __ATOMIC_RELAXED);
        if (n <= conn_low_water && __atomic_load_n(&at_cap, __ATOMIC_RELAXED) && __atomic_exchange_n(&at_cap, 0, __ATOMIC_ACQ_REL))
            cr_log_info("client connections below limits.connections again (%zu open of %zu): %llu refused while at the limit",
                        n, conn_cap, (unsigned long long)__atomic_exchange_n(&refused_in_episode, 0, __ATOMIC_RELAXED));
    }
    if (c->in_read)
        c->closed = 1;
    else
        free(c);
}

static void refuse(cr_thread_t *t)
{
    CR_STAT_INC(t->stats, connections_refused);
    __atomic_add_fetch(&refused_in_episode, 1, __ATOMIC_RELAXED);
    if (!__atomic_exchange_n(&at_cap, 1, __ATOMIC_ACQ_REL))
        cr_log_warn("client connections at limits.connections (%zu open): refusing new ones until they fall to %zu", conn_cap,
                    conn_low_water);
}

int cr_conn_admit(cr_thread_t *t, h2o_socket_t *sock, int counted)
{
    cr_conn_t *c;
    if (counted && __atomic_add_fetch(&cr_rt.connections_open, 1, __ATOMIC_RELAXED) > conn_cap) {
        __atomic_sub_fetch(&cr_rt.connections_open, 1, __ATOMIC_RELAXED);
        refuse(t);
        return -1;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) { /* counted as refused; no episode (the cap was not reached) */
        if (counted)
            __atomic_sub_fetch(&cr_rt.connections_open, 1, __ATOMIC_RELAXED);
        CR_STAT_INC(t->stats, connections_refused);
        return -1;
    }
    c->counted = (uint8_t)(counted != 0);
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = c;
    return 0;
}

/* After a read: what is left unfinished on conn, and since when (see the top of the file). */
static void note_input(cr_conn_t *c, h2o_http2_conn_t *conn, size_t before, size_t after, int decrypted_nothing)
{
    uint64_t now = h2o_now(conn->super.ctx->loop);
    if (conn->_headers_unparsed != NULL) {
        if (!c->in_block) {
            c->in_block = 1;
            c->since = now;
        }
        return;
    }
    c->in_block = 0;
    if (after == 0 && !decrypted_nothing)
        c->since = 0;
    else if (c->since == 0 || after < before)
        c->since = now;
}

static void on_h2_read(h2o_socket_t *sock, const char *err)
{
    cr_conn_t *c = sock->on_close.data;
    size_t before = sock->input->size;
    int decrypted_nothing = sock->ssl != NULL && sock->bytes_read == 0;

    c->in_read = 1;
    c->inner_read(sock, err);
    if (c->closed) { /* disposed inside: sock->input is gone, and so is the h2 connection */
        free(c);
        return;
    }
    c->in_read = 0;
    if (sock->_cb.read != on_h2_read) /* the h2 connection stopped reading or is gone (TLS shutdown) */
        return;
    note_input(c, sock->data, before, sock->input->size, err == NULL && decrypted_nothing);
}

static void sweep_context(cr_conn_watch_t *w, h2o_context_t *ctx, uint64_t now)
{
    h2o_linklist_t *node;
    for (node = ctx->http2._conns.next; node != &ctx->http2._conns; node = node->next) {
        h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
        h2o_socket_t *sock = conn->sock;
        cr_conn_t *c;
        if (sock == NULL || conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING || sock->on_close.cb != on_conn_close)
            continue;
        c = sock->on_close.data;
        if (sock->_cb.read != on_h2_read) {
            if (sock->_cb.read == NULL)
                continue;
            assert(sock->data == conn); /* h2o_http2_conn_t's layout is the one this was built against */
            c->inner_read = sock->_cb.read;
            sock->_cb.read = on_h2_read;
            c->in_block = conn->_headers_unparsed != NULL;
            c->since = c->in_block || sock->input->size != 0 ? now : 0;
            continue;
        }
        if (c->since != 0 && !c->timed_out && now - c->since >= w->timeout_ms) {
            c->timed_out = 1;
            shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
            CR_STAT_INC(w->thread->stats, header_timeouts);
            ++w->unlogged;
        }
    }
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    cr_conn_watch_t *w = H2O_STRUCT_FROM_MEMBER(cr_conn_watch_t, entry, entry);
    cr_thread_t *t = w->thread;
    uint64_t now = h2o_now(t->ctx.loop);

    sweep_context(w, &t->ctx, now); /* the traffic context, or the admin context on the admin thread */
    if (w->unlogged != 0 && now - w->last_log_ms >= CR_TIMEOUT_LOG_EVERY_MS) {
        char who[32];
        if (t->is_admin)
            snprintf(who, sizeof(who), "admin");
        else
            snprintf(who, sizeof(who), "worker %u", t->idx);
        cr_log_warn("%s: closed %llu HTTP/2 connections that left a frame or header block unfinished for "
                    "limits.header_timeout (%llu ms)",
                    who, (unsigned long long)w->unlogged, (unsigned long long)w->timeout_ms);
        w->unlogged = 0;
        w->last_log_ms = now;
    }
    h2o_timeout_link(t->ctx.loop, w->every, &w->entry);
}

cr_conn_watch_t *cr_conn_watch_start(cr_thread_t *t)
{
    cr_conn_watch_t *w = calloc(1, sizeof(*w));
    uint64_t every = header_timeout_ms / 10;
    assert(w != NULL);
    if (every < CR_SWEEP_MIN_MS)
        every = CR_SWEEP_MIN_MS;
    if (every > CR_SWEEP_MAX_MS)
        every = CR_SWEEP_MAX_MS;
    w->thread = t;
    w->timeout_ms = header_timeout_ms;
    w->every = cr_thread_timeout(t, every);
    w->entry.cb = on_sweep;
    w->last_log_ms = h2o_now(t->ctx.loop) - CR_TIMEOUT_LOG_EVERY_MS;
    h2o_timeout_link(t->ctx.loop, w->every, &w->entry);
    return w;
}

void cr_conn_watch_stop(cr_conn_watch_t **w)
{
    if (*w == NULL)
        return;
    h2o_timeout_unlink(&(*w)->entry);
    free(*w);
    *w = NULL;
}
