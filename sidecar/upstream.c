/*
 * upstream.c: requests to the upstream over h2o_http1client, with a per-thread connection cap and FIFO queue.
 *
 * Invariants: everything here belongs to one thread's loop; no locks. `active` counts fetches that hold an
 * h2o_http1client (connecting or exchanging); it never exceeds `cap`. A fetch is in exactly one state:
 * IDLE (not started or finished), QUEUED (linked in `queue`, queue timer armed), or CLIENT (holds `_client`; the
 * connect timer is armed until the connection is ready). Callbacks to the user run last in each path, after the
 * fetch's own state is settled, so the user may free the fetch inside them.
 */
#include "corral/upstream.h"

#include <stdlib.h>

enum { ST_IDLE = 0, ST_QUEUED, ST_CLIENT };

struct st_cr_upstream_t {
    h2o_loop_t *loop;
    h2o_socketpool_t pool;
    h2o_http1client_ctx_t client_ctx;
    h2o_multithread_receiver_t *getaddr_receiver; /* unused: the upstream address is numeric */
    h2o_timeout_t io_timeout;
    h2o_timeout_t connect_timeout;
    h2o_timeout_t queue_timeout;
    size_t cap;
    size_t active;
    size_t queued;
    h2o_linklist_t queue;
};

static void start_client(cr_fetch_t *f);

void cr_upstream_init(cr_upstream_t **_up, h2o_loop_t *loop, const cr_config_t *cfg, unsigned nthreads)
{
    cr_upstream_t *up = calloc(1, sizeof(*up));
    assert(up != NULL);
    up->loop = loop;
    h2o_socketpool_init_by_address(&up->pool, (struct sockaddr *)&cfg->upstream.addr, cfg->upstream.addrlen, 0, SIZE_MAX);
    /* idle keep-alive sockets are dropped after 2 s, well under common upstream idle timeouts (Node.js: 5 s) */
    h2o_socketpool_set_timeout(&up->pool, loop, 2000);
    h2o_timeout_init(loop, &up->io_timeout, cfg->upstream.timeout_ms);
    h2o_timeout_init(loop, &up->connect_timeout, cfg->upstream.connect_timeout_ms);
    h2o_timeout_init(loop, &up->queue_timeout, cfg->upstream.queue_timeout_ms);
    up->client_ctx.loop = loop;
    up->client_ctx.getaddr_receiver = NULL;
    up->client_ctx.io_timeout = &up->io_timeout;
    up->cap = cfg->upstream.max_connections / (nthreads ? nthreads : 1);
    if (up->cap == 0)
        up->cap = 1;
    h2o_linklist_init_anchor(&up->queue);
    *_up = up;
}

/* Lets the next queued fetch take the slot a finished one left. */
static void release_slot(cr_upstream_t *up)
{
    assert(up->active > 0);
    --up->active;
    while (up->active < up->cap && !h2o_linklist_is_empty(&up->queue)) {
        cr_fetch_t *next = H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _queue_link, up->queue.next);
        h2o_linklist_unlink(&next->_queue_link);
        --up->queued;
        h2o_timeout_unlink(&next->_timer);
        next->_state = ST_IDLE;
        start_client(next);
    }
}

/* Moves the fetch to IDLE once its client is gone (closed, or about to be closed by http1client). The slot is
 * released by the caller with release_slot() after the user's callback, which may free the fetch. */
static cr_upstream_t *finish(cr_fetch_t *f)
{
    assert(f->_state == ST_CLIENT);
    f->_client = NULL;
    f->_state = ST_IDLE;
    f->_saved_read_cb = NULL;
    if (h2o_timeout_is_linked(&f->_timer))
        h2o_timeout_unlink(&f->_timer);
    return f->_up;
}

static cr_fetch_error_t classify(const char *errstr)
{
    if (strcmp(errstr, "connection timeout") == 0 || strcmp(errstr, "I/O timeout") == 0)
        return CR_FETCH_ERR_TIMEOUT;
    if (errstr == h2o_socket_error_conn_fail || strcmp(errstr, "socket create error") == 0)
        return CR_FETCH_ERR_CONNECT;
    return CR_FETCH_ERR_PROTOCOL;
}

/* An error before any response byte on a reused keep-alive socket: the upstream closed it while idle. */
static int should_retry(cr_fetch_t *f, const char *errstr)
{
    return f->_reused && !f->_head_seen && f->is_idempotent && f->_attempts < 2 && classify(errstr) == CR_FETCH_ERR_PROTOCOL;
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    cr_fetch_t *f = client->data;
    cr_upstream_t *up;

    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        /* http1client closes the client after we return */
        up = finish(f);
        f->cb->on_error(f, classify(errstr), errstr, 1);
        release_slot(up);
        return -1;
    }
    if (errstr == h2o_http1client_error_is_eos) {
        /* the input buffer is still the client's until we return: the user consumes it now */
        up = finish(f);
        f->cb->on_body(f, &client->sock->input, 1);
        release_slot(up);
        return 0;
    }
    up = f->_up;
    if (f->cb->on_body(f, &client->sock->input, 0) != 0) {
        /* the fetch is finished and may be freed already: only the slot is left to release */
        release_slot(up);
        return -1;
    }
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    cr_fetch_t *f = client->data;
    cr_upstream_t *up;

    /* whatever we return, http1client closes this client itself when we return NULL or at end of stream */
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        int retry = should_retry(f, errstr);
        up = finish(f);
        if (retry) {
            release_slot(up);
            start_client(f);
            return NULL;
        }
        f->cb->on_error(f, classify(errstr), errstr, 0);
        release_slot(up);
        return NULL;
    }
    f->_head_seen = 1;
    if (errstr == h2o_http1client_error_is_eos) {
        up = finish(f);
        f->cb->on_head(f, status, msg, headers, num_headers, 1);
        release_slot(up);
        return NULL;
    }
    up = f->_up;
    if (f->cb->on_head(f, status, msg, headers, num_headers, 0) != 0) {
        /* the fetch is finished and may be freed already: only the slot is left to release */
        release_slot(up);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    cr_fetch_t *f = client->data;

    if (h2o_timeout_is_linked(&f->_timer))
        h2o_timeout_unlink(&f->_timer);
    if (errstr != NULL) {
        cr_upstream_t *up = finish(f);
        f->cb->on_error(f, classify(errstr), errstr, 0);
        release_slot(up);
        return NULL;
    }
    f->_reused = f->_connect_sync;
    *reqbufs = f->reqbufs;
    *reqbufcnt = f->num_reqbufs;
    *method_is_head = f->is_head;
    return on_head;
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    cr_fetch_t *f = H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _timer, entry);
    assert(f->_state == ST_CLIENT);
    cr_upstream_t *up;
    h2o_http1client_cancel(f->_client);
    up = finish(f);
    f->cb->on_error(f, CR_FETCH_ERR_TIMEOUT, "upstream connect timeout", 0);
    release_slot(up);
}

static void start_client(cr_fetch_t *f)
{
    cr_upstream_t *up = f->_up;

    assert(f->_state == ST_IDLE);
    ++up->active;
    ++f->_attempts;
    f->_state = ST_CLIENT;
    f->_reused = 0;
    f->_timer.cb = on_connect_timeout;
    h2o_timeout_link(up->loop, &up->connect_timeout, &f->_timer);
    /* on_connect may run synchronously (a pooled socket): register everything before this call */
    f->_connect_sync = 1;
    h2o_http1client_connect_with_pool(&f->_client, f, &up->client_ctx, &up->pool, on_connect);
    f->_connect_sync = 0;
}

static void on_queue_timeout(h2o_timeout_entry_t *entry)
{
    cr_fetch_t *f = H2O_STRUCT_FROM_MEMBER(cr_fetch_t, _timer, entry);
    assert(f->_state == ST_QUEUED);
    h2o_linklist_unlink(&f->_queue_link);
    --f->_up->queued;
    f->_state = ST_IDLE;
    f->cb->on_error(f, CR_FETCH_ERR_TIMEOUT, "no upstream connection became free in time", 0);
}

void cr_fetch_start(cr_upstream_t *up, cr_fetch_t *f)
{
    assert(f->cb != NULL && f->num_reqbufs >= 1);
    f->_up = up;
    f->_client = NULL;
    f->_state = ST_IDLE;
    f->_attempts = 0;
    f->_head_seen = 0;
    f->_saved_read_cb = NULL;
    f->_queue_link = (h2o_linklist_t){NULL, NULL};
    f->_timer = (h2o_timeout_entry_t){0};
    if (up->active >= up->cap) {
        f->_state = ST_QUEUED;
        h2o_linklist_insert(&up->queue, &f->_queue_link);
        ++up->queued;
        f->_timer.cb = on_queue_timeout;
        h2o_timeout_link(up->loop, &up->queue_timeout, &f->_timer);
        return;
    }
    start_client(f);
}

void cr_fetch_cancel(cr_fetch_t *f)
{
    switch (f->_state) {
    case ST_QUEUED:
        h2o_linklist_unlink(&f->_queue_link);
        --f->_up->queued;
        h2o_timeout_unlink(&f->_timer);
        f->_state = ST_IDLE;
        break;
    case ST_CLIENT:
        h2o_http1client_cancel(f->_client);
        release_slot(finish(f));
        break;
    default:
        break;
    }
}

/*
 * h2o 2.2.5's http1client has no pause: stopping the socket's read loses the client's read callback, so it is kept
 * here and given back on resume. While paused the client's I/O timeout still runs.
 */
void cr_fetch_pause(cr_fetch_t *f)
{
    h2o_socket_t *sock;
    if (f->_state != ST_CLIENT || f->_client == NULL || (sock = f->_client->sock) == NULL || f->_saved_read_cb != NULL)
        return;
    if (!h2o_socket_is_reading(sock))
        return;
    f->_saved_read_cb = sock->_cb.read;
    h2o_socket_read_stop(sock);
}

void cr_fetch_resume(cr_fetch_t *f)
{
    h2o_socket_cb cb = f->_saved_read_cb;
    if (cb == NULL)
        return;
    f->_saved_read_cb = NULL;
    if (f->_state == ST_CLIENT && f->_client != NULL && f->_client->sock != NULL)
        h2o_socket_read_start(f->_client->sock, cb);
}
