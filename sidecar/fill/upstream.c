/*
 * upstream.c: corral's HTTP/1.1 client for the upstream, on h2o_socket_t, with a per-thread connection cap, a FIFO
 * queue and an idle-connection list (see upstream.h for the contract).
 *
 * A fetch is in exactly one state:
 *   IDLE        not started, or finished (no socket, no timer);
 *   QUEUED      linked in `queue`, the queue timer armed;
 *   REFUSED     the queue was full (limits.queued_fills): the zero timer reports CR_FETCH_ERR_BUSY;
 *   CONNECTING  holds a socket being connected (connect timer), or waits for the zero timer that reports a socket
 *               that could not even be created;
 *   SENDING     the request is being written (I/O timer);
 *   HEAD        reading the response head (I/O timer): the bytes stay in the socket's input until the head is
 *               complete, and cr_h1_parse_response validates it before anything reaches the callbacks;
 *   BODY        reading the body (I/O timer, also while paused): the socket's input holds only decoded body bytes the
 *               user has not consumed yet (chunked framing is decoded in place as bytes arrive; bytes past the end of
 *               the framing are cut off and mark the connection as not reusable).
 * Invariants: everything here belongs to one thread's loop; no locks. `active` counts fetches in CONNECTING..BODY and
 * never exceeds `cap`; a new connection is made only when no idle one is usable, so open connections never exceed
 * `cap` either. `queued_total` (shared by every thread, atomic) counts the fetches in QUEUED in the whole process and
 * never exceeds `queue_limit`: a fetch that would pass it is REFUSED instead of queued. A body is complete only when its framing says so: the last chunk and its trailers, the whole
 * Content-Length, or a clean FIN (h2o_socket_error_closed) for a close-delimited body; a reset (h2o_socket_error_io)
 * or an early FIN is an error. A connection goes back to the idle list only when the response was framed by
 * Content-Length or chunked coding, ended exactly there, no byte followed, and the head allowed keep-alive; otherwise
 * it is closed. After a HEAD, a 204 or a 304 it is always closed: a buggy origin may send a body there later, when
 * the next request is already on the connection, and nothing could tell that body from the next answer. An idle
 * connection is watched: any byte, FIN or error while idle closes it, as does the 2 s idle timeout, and it is
 * checked again (MSG_PEEK) when it is taken. Callbacks to the user run last in each path, after the
 * fetch's own state is settled (and the socket detached from it), so the user may free the fetch inside them; no
 * callback runs from inside cr_fetch_start.
 * Over 600 lines: it is one state machine (the states above), whose transitions share the fetch's timer, the
 * connection cap, the queue and the idle list; split in two, each half would reach into the other's statics.
 * The process-wide concurrency cap (upstream.max_concurrency): a fetch starts only when its thread is under its
 * connection cap AND it takes one of the process's slots (fill/concurrency.h: one atomic count); a slot is
 * held from start_client to release_slot, exactly like `active`. The cap is shared through one atomic count rather
 * than split into per-thread shares because the load is not even across threads (HTTP/2 connections stick to one
 * worker): a share would shed on a busy thread while an idle one holds unused slots, and an adaptive limit of a
 * few slots could not be divided at all. A thread that released a slot starts its own queued fetches; a thread whose
 * queue waits while another thread holds the slots looks again every CR_CONC_POLL_MS (its poll timer is linked only
 * while its queue is not empty and the cap is on). The adaptive limit (fill/concurrency.h) is fed the time from
 * slot to response head of every fetch (the miss path only; hits never come here). With the cap on, a fetch that
 * waited queue_timeout is shed (CR_FETCH_ERR_SHED) rather than timed out.
 * Passive health (fill/health.h): every response head and connect failure is reported; a fetch the health state
 * does not admit fails at once with CR_FETCH_ERR_DOWN (from the zero timer, like a refusal), before any slot.
 */
#include "corral/fill/upstream.h"
#include "corral/fill/upstream_resolver.h"
#include "corral/core/reqstats.h"
#include "corral/fill/concurrency.h"
#include "corral/fill/health.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

enum { ST_IDLE = 0, ST_QUEUED, ST_REFUSED, ST_CONNECTING, ST_SENDING, ST_HEAD, ST_BODY };

#define CR_UPSTREAM_IDLE_TIMEOUT_MS 2000 /* well under common upstream idle timeouts (Node.js: 5 s) */
#define CR_CONC_POLL_MS 5 /* how often a thread's queue blocked by the process-wide cap looks for a free slot */

typedef struct st_cr_upconn_t {
    h2o_socket_t *sock;
    cr_upstream_t *up;
    h2o_linklist_t link; /* in up->idle */
    h2o_timeout_entry_t timer;
} cr_upconn_t;

struct st_cr_upstream_t {
    h2o_loop_t *loop;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t addr_version; /* of addr, as cr_upstream_resolver_refresh counts (0: the config's) */
    size_t max_head;
    int rcvbuf; /* SO_RCVBUF of new connections: limits.response_buffer / 4 (pass.c: one read stays under half) */
    h2o_timeout_t io_timeout;
    h2o_timeout_t connect_timeout;
    h2o_timeout_t queue_timeout;
    h2o_timeout_t idle_timeout;
    h2o_timeout_t zero_timeout;
    h2o_timeout_t conc_poll_timeout;
    h2o_timeout_entry_t conc_poll; /* linked while the queue waits and the process-wide cap is on */
    size_t cap;
    size_t active;
    size_t queued;
    size_t queue_limit; /* limits.queued_fills: fetches in QUEUED in the whole process */
    size_t num_idle;
    h2o_linklist_t queue;
    h2o_linklist_t idle; /* cr_upconn_t, the most recently used first */
};

static void start_client(cr_fetch_t *f);
static void on_read(h2o_socket_t *sock, const char *err);

/* process-wide, every thread's (atomic, relaxed: they are counts, nothing is published through them) */
static size_t queued_total;
static size_t queued_peak;
static uint64_t refused_total;
static size_t active_total; /* every thread's `active` */

size_t cr_upstream_connections_in_use(void)
{
    return __atomic_load_n(&active_total, __ATOMIC_RELAXED);
}

void cr_upstream_queue_stats(size_t *queued, size_t *peak, uint64_t *refused)
{
    *queued = __atomic_load_n(&queued_total, __ATOMIC_RELAXED);
    *peak = __atomic_load_n(&queued_peak, __ATOMIC_RELAXED);
    *refused = __atomic_load_n(&refused_total, __ATOMIC_RELAXED);
}

/* Takes one place in the process-wide queue. Returns 1, or 0 (counted as refused) when queue_limit are taken. */
static int queue_place_take(cr_upstream_t *up)
{
    size_t n = __atomic_add_fetch(&queued_total, 1, __ATOMIC_RELAXED), peak;
    if (n > up->queue_limit) {
        __atomic_sub_fetch(&queued_total, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&refused_total, 1, __ATOMIC_RELAXED);
        return 0;
    }
    peak = __atomic_load_n(&queued_peak, __ATOMIC_RELAXED);
    while (n > peak && !__atomic_compare_exchange_n(&queued_peak, &peak, n, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    ++up->queued;
    return 1;
}

/* Takes a QUEUED fetch out of the queue (its timer stays for the caller) and gives its place back. */
static void queue_remove(cr_fetch_t *f)
{
    assert(f->_state == ST_QUEUED);
    h2o_linklist_unlink(&f->_queue_link);
    --f->_up->queued;
    __atomic_sub_fetch(&queued_total, 1, __ATOMIC_RELAXED);
    f->_state = ST_IDLE;
}

void cr_upstream_init(cr_upstream_t **_up, h2o_loop_t *loop, const cr_config_t *cfg, unsigned nthreads)
{
    cr_upstream_t *up = calloc(1, sizeof(*up));
    assert(up != NULL);
    up->loop = loop;
    assert(cfg->upstream.addrlen <= sizeof(up->addr));
    memcpy(&up->addr, &cfg->upstream.addr, cfg->upstream.addrlen);
    up->addrlen = cfg->upstream.addrlen;
    up->max_head = cfg->limits.upstream_header_size != 0 ? cfg->limits.upstream_header_size : (size_t)64 << 10;
    up->rcvbuf = (int)CR_MIN(CR_MAX(cfg->limits.response_buffer / 4, (size_t)4096), (size_t)INT_MAX);
    h2o_timeout_init(loop, &up->io_timeout, cfg->upstream.timeout_ms);
    h2o_timeout_init(loop, &up->connect_timeout, cfg->upstream.connect_timeout_ms);
    h2o_timeout_init(loop, &up->queue_timeout, cfg->upstream.queue_timeout_ms);
    h2o_timeout_init(loop, &up->idle_timeout, CR_UPSTREAM_IDLE_TIMEOUT_MS);
    h2o_timeout_init(loop, &up->zero_timeout, 0);
    h2o_timeout_init(loop, &up->conc_poll_timeout, CR_CONC_POLL_MS);
    if (cr_conc_slots_init(cfg->upstream.max_concurrency, cfg->upstream.min_concurrency, cfg->upstream.concurrency_adaptive))
        cr_health_breaker_init(cfg->upstream.breaker_failures, cfg->upstream.breaker_backoff_ms,
                               cfg->upstream.breaker_max_backoff_ms); /* once per process, by the first thread */
    up->queue_limit = cfg->limits.queued_fills != 0 ? cfg->limits.queued_fills : 1024;
    up->cap = cfg->upstream.max_connections / (nthreads ? nthreads : 1);
    if (up->cap == 0)
        up->cap = 1;
    h2o_linklist_init_anchor(&up->queue);
    h2o_linklist_init_anchor(&up->idle);
    *_up = up;
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* idle connections */

static void idle_close(cr_upconn_t *c)
{
    h2o_linklist_unlink(&c->link);
    if (h2o_timeout_is_linked(&c->timer))
        h2o_timeout_unlink(&c->timer);
    --c->up->num_idle;
    h2o_socket_close(c->sock);
    free(c);
}

/* Any byte, FIN or error on an idle connection: it can never carry a clean answer again. */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    idle_close(sock->data);
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    idle_close(H2O_STRUCT_FROM_MEMBER(cr_upconn_t, timer, entry));
}

/* Puts a connection whose last response ended cleanly on the idle list (or closes it when out of memory). */
static void pool_socket(cr_upstream_t *up, h2o_socket_t *sock)
{
    cr_upconn_t *c;
    if (sock->input->size != 0)
        h2o_buffer_consume(&sock->input, sock->input->size); /* decoded body bytes the user left: they are done */
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        h2o_socket_close(sock);
        return;
    }
    c->sock = sock;
    c->up = up;
    sock->data = c;
    h2o_socket_read_start(sock, on_idle_read);
    h2o_linklist_insert(up->idle.next, &c->link);
    c->timer.cb = on_idle_timeout;
    h2o_timeout_link(up->loop, &up->idle_timeout, &c->timer);
    ++up->num_idle;
}

/* The most recently used idle connection that has nothing waiting on it, or NULL. */
static h2o_socket_t *take_idle(cr_upstream_t *up)
{
    while (!h2o_linklist_is_empty(&up->idle)) {
        cr_upconn_t *c = H2O_STRUCT_FROM_MEMBER(cr_upconn_t, link, up->idle.next);
        h2o_socket_t *sock = c->sock;
        char b;
        ssize_t r;
        h2o_linklist_unlink(&c->link);
        h2o_timeout_unlink(&c->timer);
        --up->num_idle;
        free(c);
        h2o_socket_read_stop(sock);
        /* the watcher may not have run yet for bytes that came during this loop iteration */
        r = recv(h2o_socket_get_fd(sock), &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) && sock->input->size == 0)
            return sock;
        h2o_socket_close(sock);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* the fetch's own state */

static void on_conc_poll(h2o_timeout_entry_t *entry);

/* Starts queued fetches while this thread and the process have slots; keeps the poll timer while some still wait on
 * the process-wide cap. */
static void drain_queue(cr_upstream_t *up)
{
    while (up->active < up->cap && !h2o_linklist_is_empty(&up->queue) && cr_conc_slot_take()) {
        cr_fetch_t *next = H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _queue_link, up->queue.next);
        queue_remove(next);
        h2o_timeout_unlink(&next->_timer);
        start_client(next);
    }
    if (!h2o_linklist_is_empty(&up->queue) && cr_conc_slots_on() &&
        !h2o_timeout_is_linked(&up->conc_poll)) {
        up->conc_poll.cb = on_conc_poll;
        h2o_timeout_link(up->loop, &up->conc_poll_timeout, &up->conc_poll);
    }
}

static void on_conc_poll(h2o_timeout_entry_t *entry)
{
    drain_queue(H2O_STRUCT_FROM_MEMBER(cr_upstream_t, conc_poll, entry));
}

/* Lets the next queued fetches take the slot a finished one left. */
static void release_slot(cr_upstream_t *up)
{
    assert(up->active > 0);
    --up->active;
    __atomic_sub_fetch(&active_total, 1, __ATOMIC_RELAXED);
    cr_conc_slot_give();
    drain_queue(up);
}

static void unlink_timer(cr_fetch_t *f)
{
    if (h2o_timeout_is_linked(&f->_timer))
        h2o_timeout_unlink(&f->_timer);
}

static void link_timer(cr_fetch_t *f, h2o_timeout_t *t, h2o_timeout_cb cb)
{
    unlink_timer(f);
    f->_timer.cb = cb;
    h2o_timeout_link(f->_up->loop, t, &f->_timer);
}

/* Takes the socket away from a fetch that is finishing (the caller closes or pools it) and makes the fetch IDLE. */
static h2o_socket_t *detach(cr_fetch_t *f)
{
    h2o_socket_t *sock = f->_sock;
    f->_sock = NULL;
    f->_state = ST_IDLE;
    f->_paused = 0;
    unlink_timer(f);
    return sock;
}

/* Ends the fetch with an error: the connection is closed (never pooled), then on_error, then the slot goes. */
static void fail(cr_fetch_t *f, cr_fetch_error_t err, const char *msg)
{
    cr_upstream_t *up = f->_up;
    int head_seen = f->_head_seen;
    int state = (int)f->_state;
    h2o_socket_t *sock = detach(f);
    if (sock != NULL)
        h2o_socket_close(sock);
    cr_reqstats_upstream_error((unsigned)err - 1);
    if (err == CR_FETCH_ERR_TIMEOUT)
        cr_conc_slot_sample(f->_slot_us); /* a timeout is the slowest answer there is */
    if (!head_seen && (err == CR_FETCH_ERR_CONNECT || err == CR_FETCH_ERR_CLOSED ||
                       (err == CR_FETCH_ERR_TIMEOUT && state == ST_CONNECTING)))
        cr_health_passive_result(0, cr_monotonic_us() / 1000);
    f->cb->on_error(f, err, msg, head_seen);
    release_slot(up);
}

/* An error before any response byte on a reused connection of an idempotent request: retried once. */
static int should_retry(cr_fetch_t *f)
{
    return f->_reused && !f->_head_seen && f->is_idempotent && f->_attempts < 2 &&
           (f->_sock == NULL || f->_sock->input->size == 0);
}

static void on_io_timeout(h2o_timeout_entry_t *entry)
{
    cr_fetch_t *f = H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _timer, entry);
    fail(f, CR_FETCH_ERR_TIMEOUT, f->_state == ST_BODY ? "upstream I/O timeout (body)" : "upstream I/O timeout");
}

static void on_write(h2o_socket_t *sock, const char *err);

static void send_request(cr_fetch_t *f)
{
    f->_state = ST_SENDING;
    f->_head_seen = 0;
    f->_extra = 0;
    f->_paused = 0;
    cr_h1_parser_init(&f->_parser, f->_up->max_head);
    f->_sock->data = f;
    h2o_socket_write(f->_sock, f->reqbufs, f->num_reqbufs, on_write);
    link_timer(f, &f->_up->io_timeout, on_io_timeout);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    cr_fetch_t *f = sock->data;
    assert(f->_state == ST_CONNECTING && f->_sock == sock);
    unlink_timer(f);
    if (err != NULL) {
        fail(f, CR_FETCH_ERR_CONNECT, "upstream connection failed");
        return;
    }
    send_request(f);
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    fail(H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _timer, entry), CR_FETCH_ERR_TIMEOUT, "upstream connect timeout");
}

static void on_socket_create_error(h2o_timeout_entry_t *entry)
{
    fail(H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _timer, entry), CR_FETCH_ERR_CONNECT,
         "upstream connection failed (the socket could not be created or connect failed at once)");
}

/* Opens a new connection for the fetch (its slot is already counted). */
static void connect_new(cr_fetch_t *f)
{
    cr_upstream_t *up = f->_up;
    f->_state = ST_CONNECTING;
    f->_reused = 0;
    cr_upstream_resolver_refresh(&up->addr, &up->addrlen, &up->addr_version); /* a host name re-resolved */
    if ((f->_sock = h2o_socket_connect(up->loop, (struct sockaddr *)&up->addr, up->addrlen, on_connect)) == NULL) {
        /* reported from the loop, not from inside cr_fetch_start or release_slot */
        link_timer(f, &up->zero_timeout, on_socket_create_error);
        return;
    }
    f->_sock->data = f;
    /* before any response byte: the kernel never queues more than about twice this for one read to drain */
    setsockopt(h2o_socket_get_fd(f->_sock), SOL_SOCKET, SO_RCVBUF, &up->rcvbuf, sizeof(up->rcvbuf));
    link_timer(f, &up->connect_timeout, on_connect_timeout);
}

/* The single retry: the reused connection was dead; a new one is made (the slot is kept). */
static void retry(cr_fetch_t *f)
{
    h2o_socket_t *sock = detach(f);
    if (sock != NULL)
        h2o_socket_close(sock);
    ++f->_attempts;
    connect_new(f);
}

static void on_write(h2o_socket_t *sock, const char *err)
{
    cr_fetch_t *f = sock->data;
    assert(f->_state == ST_SENDING && f->_sock == sock);
    unlink_timer(f);
    if (err != NULL) {
        if (should_retry(f))
            retry(f);
        else
            fail(f, CR_FETCH_ERR_CLOSED, "I/O error sending the request to the upstream");
        return;
    }
    f->_state = ST_HEAD;
    h2o_socket_read_start(sock, on_read);
    link_timer(f, &f->_up->io_timeout, on_io_timeout);
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* the response */

/* The whole response has arrived (reuse: the connection may go back to the idle list). */
static void complete_on_body(cr_fetch_t *f, int reuse)
{
    cr_upstream_t *up = f->_up;
    h2o_socket_t *sock = detach(f);
    /* the input is the user's during the call: it consumes it or takes the buffer */
    f->cb->on_body(f, &sock->input, 1);
    if (reuse)
        pool_socket(up, sock);
    else
        h2o_socket_close(sock);
    release_slot(up);
}

/*
 * Handles `nnew` bytes that arrived at the end of the socket's input in BODY state (and err from the read): decodes
 * them in place, cuts off what follows the end of the framing, and tells the user.
 */
static void on_body_bytes(cr_fetch_t *f, size_t nnew, const char *err)
{
    h2o_socket_t *sock = f->_sock;
    h2o_buffer_t *in = sock->input;
    size_t decoded = nnew;
    int complete = 0;

    switch (f->_body) {
    case CR_H1_BODY_LENGTH:
        if (nnew >= f->_body_left) {
            if (nnew > f->_body_left) {
                in->size -= nnew - (size_t)f->_body_left;
                f->_extra = 1;
            }
            decoded = (size_t)f->_body_left;
            f->_body_left = 0;
            complete = 1;
        } else {
            f->_body_left -= nnew;
        }
        break;
    case CR_H1_BODY_CHUNKED:
        if (nnew != 0) {
            size_t start = in->size - nnew;
            ssize_t r = cr_chunked_decode(&f->_chunked, in->bytes + start, &decoded);
            in->size = start + decoded;
            if (r == -1) {
                fail(f, CR_FETCH_ERR_PROTOCOL, "malformed chunked body from the upstream");
                return;
            }
            if (r >= 0) {
                complete = 1;
                if (r > 0)
                    f->_extra = 1;
            }
        }
        break;
    default: /* CR_H1_BODY_CLOSE */
        break;
    }

    if (!complete && err != NULL) {
        if (f->_body == CR_H1_BODY_CLOSE && err == h2o_socket_error_closed) {
            complete = 1; /* a clean FIN ends a close-delimited body */
        } else {
            fail(f, CR_FETCH_ERR_PROTOCOL,
                 f->_body == CR_H1_BODY_CLOSE    ? "the upstream connection was reset before the end of the body"
                 : f->_body == CR_H1_BODY_LENGTH ? "the upstream connection ended before the end of the body (Content-Length)"
                                                 : "the upstream connection ended before the last chunk of the body");
            return;
        }
    }
    if (complete) {
        complete_on_body(f, f->_keep_alive && !f->_extra && err == NULL && f->_body != CR_H1_BODY_CLOSE);
        return;
    }
    if (decoded != 0) {
        cr_upstream_t *up = f->_up;
        if (f->cb->on_body(f, &sock->input, 0) != 0) {
            /* the fetch is finished and may be freed already: the connection and the slot are left */
            h2o_socket_close(sock);
            release_slot(up);
            return;
        }
        if (f->_state != ST_BODY || f->_sock != sock)
            return; /* cancelled from inside the callback */
    }
    link_timer(f, &f->_up->io_timeout, on_io_timeout);
}

/* Bytes (or an error) in HEAD state: waits for a complete head, validates it, then hands it to the user. */
static void on_head_bytes(cr_fetch_t *f, const char *err)
{
    h2o_socket_t *sock = f->_sock;
    cr_upstream_t *up = f->_up;
    h2o_mem_pool_t pool;
    cr_h1_head_t head;
    const char *why = NULL;
    ssize_t r;

    h2o_mem_init_pool(&pool);
    r = cr_h1_parse_response(&f->_parser, sock->input->bytes, sock->input->size, f->is_head, &pool, &head, &why);
    if (r == -1) {
        char msg[160];
        snprintf(msg, sizeof(msg), "malformed response head from the upstream: %s", why);
        h2o_mem_clear_pool(&pool);
        fail(f, CR_FETCH_ERR_PROTOCOL, msg);
        return;
    }
    if (r == -2) {
        h2o_mem_clear_pool(&pool);
        if (err == NULL) {
            link_timer(f, &up->io_timeout, on_io_timeout);
        } else if (should_retry(f)) {
            retry(f);
        } else {
            if (sock->input->size == 0)
                fail(f, CR_FETCH_ERR_CLOSED, "the upstream closed the connection without answering");
            else
                fail(f, CR_FETCH_ERR_PROTOCOL, "the upstream closed the connection in the response head");
        }
        return;
    }

    f->_head_seen = 1;
    f->head_after_us = cr_monotonic_us() - f->_started_us + 1;
    cr_reqstats_upstream_head(f->head_after_us - 1);
    cr_conc_slot_sample(f->_slot_us);
    cr_health_passive_result(head.status < 500, cr_monotonic_us() / 1000);
    f->_body = (uint8_t)head.body;
    f->_keep_alive = head.keep_alive != 0;
    if (head.body == CR_H1_BODY_NONE || (head.body == CR_H1_BODY_LENGTH && head.content_length == 0)) {
        /* the response ends with its head. Reused only when nothing followed it, and never after a HEAD, a 204 or a
         * 304: a buggy origin may send a body there later, when the next request is already on the connection */
        int reuse = head.keep_alive && err == NULL && sock->input->size == (size_t)r && head.body != CR_H1_BODY_NONE;
        sock = detach(f);
        f->cb->on_head(f, head.status, head.reason, head.headers, head.num_headers, 1);
        h2o_mem_clear_pool(&pool);
        if (reuse) {
            h2o_buffer_consume(&sock->input, (size_t)r);
            pool_socket(up, sock);
        } else {
            h2o_socket_close(sock);
        }
        release_slot(up);
        return;
    }
    f->_state = ST_BODY;
    f->_body_left = head.content_length;
    cr_chunked_init(&f->_chunked, 1);
    if (f->cb->on_head(f, head.status, head.reason, head.headers, head.num_headers, 0) != 0) {
        /* the fetch is finished and may be freed already: the connection and the slot are left */
        h2o_mem_clear_pool(&pool);
        h2o_socket_close(sock);
        release_slot(up);
        return;
    }
    h2o_mem_clear_pool(&pool);
    if (f->_state != ST_BODY || f->_sock != sock)
        return; /* cancelled from inside the callback */
    h2o_buffer_consume(&sock->input, (size_t)r);
    on_body_bytes(f, sock->input->size, err);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    cr_fetch_t *f = sock->data;
    assert(f->_sock == sock);
    unlink_timer(f);
    if (f->_state == ST_HEAD) {
        on_head_bytes(f, err);
    } else {
        assert(f->_state == ST_BODY);
        on_body_bytes(f, sock->bytes_read, err);
    }
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* the API */

static void start_client(cr_fetch_t *f)
{
    cr_upstream_t *up = f->_up;
    h2o_socket_t *sock;

    assert(f->_state == ST_IDLE);
    ++up->active;
    __atomic_add_fetch(&active_total, 1, __ATOMIC_RELAXED);
    ++f->_attempts;
    f->_slot_us = cr_monotonic_us();
    if ((sock = take_idle(up)) != NULL) {
        f->_sock = sock;
        f->_reused = 1;
        send_request(f);
        return;
    }
    connect_new(f);
}

static void on_queue_timeout(h2o_timeout_entry_t *entry)
{
    cr_fetch_t *f = H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _timer, entry);
    queue_remove(f);
    if (cr_conc_slots_on()) {
        /* shed: nothing was sent, and the upstream is not to blame (the caller counts it as shed, not as a failure) */
        f->cb->on_error(f, CR_FETCH_ERR_SHED, "shed: no upstream slot became free within upstream.queue_timeout "
                                              "(upstream.max_concurrency)", 0);
        return;
    }
    cr_reqstats_upstream_error(CR_UPSTREAM_ERR_TIMEOUT);
    f->cb->on_error(f, CR_FETCH_ERR_TIMEOUT, "no upstream connection became free in time", 0);
}

static void on_refused(h2o_timeout_entry_t *entry)
{
    cr_fetch_t *f = H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _timer, entry);
    assert(f->_state == ST_REFUSED);
    f->_state = ST_IDLE;
    if (f->_down) {
        f->cb->on_error(f, CR_FETCH_ERR_DOWN, "the upstream is unhealthy (health check or breaker): failing fast", 0);
        return;
    }
    cr_reqstats_upstream_error(CR_UPSTREAM_ERR_BUSY);
    f->cb->on_error(f, CR_FETCH_ERR_BUSY, "too many requests wait for an upstream connection (limits.queued_fills)", 0);
}

void cr_fetch_start(cr_upstream_t *up, cr_fetch_t *f)
{
    assert(f->cb != NULL && f->num_reqbufs >= 1);
    f->_up = up;
    f->_sock = NULL;
    f->_state = ST_IDLE;
    f->_attempts = 0;
    f->_head_seen = 0;
    f->_reused = 0;
    f->_paused = 0;
    f->_extra = 0;
    f->_queue_link = (h2o_linklist_t){NULL, NULL};
    f->_timer = (h2o_timeout_entry_t){0};
    f->_started_us = cr_monotonic_us();
    f->head_after_us = 0;
    f->_down = 0;
    if (!cr_health_admit(f->_started_us / 1000)) {
        /* fail fast, reported from the loop like a refusal: no slot, no queue place, nothing sent */
        f->_down = 1;
        f->_state = ST_REFUSED;
        link_timer(f, &up->zero_timeout, on_refused);
        return;
    }
    if (up->active >= up->cap || !cr_conc_slot_take()) {
        if (!queue_place_take(up)) {
            /* reported from the loop, not from inside this call */
            f->_state = ST_REFUSED;
            link_timer(f, &up->zero_timeout, on_refused);
            return;
        }
        f->_state = ST_QUEUED;
        h2o_linklist_insert(&up->queue, &f->_queue_link);
        link_timer(f, &up->queue_timeout, on_queue_timeout);
        drain_queue(up); /* only arms the poll timer: this thread is at its cap or the process at its own */
        return;
    }
    start_client(f);
}

void cr_fetch_cancel(cr_fetch_t *f)
{
    h2o_socket_t *sock;
    switch (f->_state) {
    case ST_IDLE:
        break;
    case ST_QUEUED:
        queue_remove(f);
        unlink_timer(f);
        break;
    case ST_REFUSED:
        unlink_timer(f);
        f->_state = ST_IDLE;
        break;
    default:
        /* mid-exchange: the connection cannot be reused */
        if ((sock = detach(f)) != NULL)
            h2o_socket_close(sock);
        release_slot(f->_up);
        break;
    }
}

int cr_fetch_is_waiting(const cr_fetch_t *f)
{
    return f->_state == ST_QUEUED || f->_state == ST_REFUSED;
}

/* Stops reading the body (backpressure); the I/O timeout keeps running. */
void cr_fetch_pause(cr_fetch_t *f)
{
    if (f->_state != ST_BODY || f->_paused || f->_sock == NULL)
        return;
    f->_paused = 1;
    h2o_socket_read_stop(f->_sock);
}

void cr_fetch_resume(cr_fetch_t *f)
{
    if (!f->_paused)
        return;
    f->_paused = 0;
    if (f->_state == ST_BODY && f->_sock != NULL)
        h2o_socket_read_start(f->_sock, on_read);
}
