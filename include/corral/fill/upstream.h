/*
 * upstream.h: HTTP/1.1 requests to the configured upstream, over a per-thread keep-alive pool with a hard cap.
 *
 * corral's own HTTP/1.1 client (upstream.c), on h2o_socket_t: libh2o 2.2.5's h2o_http1client asserts on some
 * response heads and takes truncated bodies for complete ones, so it is not used. Each worker thread owns one
 * cr_upstream_t; nothing in it is shared with other threads (per-thread cap is max(1, upstream.max_connections /
 * threads), so the process never holds more than max_connections, give or take rounding up to one per thread). A
 * fetch over the cap waits in a FIFO queue for at most upstream.queue_timeout. The queues of all threads together
 * hold at most limits.queued_fills fetches (one atomic count shared by the process, touched only when a fetch is
 * queued or leaves the queue): past it a fetch is not queued but fails at once with CR_FETCH_ERR_BUSY. A request that fails before any
 * response byte on a reused keep-alive connection is retried once on a new connection when its method is
 * idempotent (the upstream may close idle connections at any time).
 *
 * What the client guarantees (see upstream.c and h1_response.h): a malformed response head fails the fetch with
 * CR_FETCH_ERR_PROTOCOL before any header reaches on_head; a body is complete (on_body with is_eos) only when its
 * framing says so (last chunk, full Content-Length, clean FIN of a close-delimited body), anything else is on_error
 * with head_seen = 1; a connection is reused only when its response was framed by Content-Length or chunked coding,
 * ended exactly there, and no byte waits on it (never after a HEAD, a 204 or a 304).
 *
 * Callbacks run on the owning thread's loop, never from inside cr_fetch_start. After on_error, an on_body or on_head
 * with is_eos, or a callback that returned nonzero, the fetch is finished and the caller may free it (even inside
 * that callback), and must not cancel it. cr_fetch_cancel() may be called at any time before that; no callback runs
 * after it.
 */
#ifndef CORRAL_UPSTREAM_H
#define CORRAL_UPSTREAM_H

#include <h2o.h>
#include "corral/http/chunked.h"
#include "corral/core/common.h"
#include "corral/conf/config.h"
#include "corral/http/h1_response.h"

typedef struct st_cr_upstream_t cr_upstream_t;
typedef struct st_cr_fetch_t cr_fetch_t;

typedef enum en_cr_fetch_error_t {
    CR_FETCH_ERR_CONNECT = 1, /* refused / unreachable: 502 */
    CR_FETCH_ERR_TIMEOUT,     /* connect, I/O or queue timeout: 504 */
    CR_FETCH_ERR_PROTOCOL,    /* garbage, truncated body, reset mid-response: 502 */
    CR_FETCH_ERR_BUSY,        /* limits.queued_fills fetches already wait for a connection: 503, nothing was sent */
    CR_FETCH_ERR_CLOSED,      /* reset or closed before a byte of the answer (the origin is gone, not wrong): 502 */
} cr_fetch_error_t;

typedef struct st_cr_fetch_callbacks_t {
    /* The response head. headers are valid only during the call (copy what you keep). is_eos: no body follows.
     * Return 0 to continue, or nonzero to abort the fetch (no further callback). */
    int (*on_head)(cr_fetch_t *fetch, int status, h2o_iovec_t reason, h2o_header_t *headers, size_t num_headers, int is_eos);
    /* Body bytes are in *input (consume what you use with h2o_buffer_consume, or take the buffer whole). is_eos: the
     * body is complete and the fetch finished. Return 0 to continue, nonzero to abort. */
    int (*on_body)(cr_fetch_t *fetch, h2o_buffer_t **input, int is_eos);
    /* Failure: before the head (head_seen == 0) or in the body. The fetch is finished. */
    void (*on_error)(cr_fetch_t *fetch, cr_fetch_error_t err, const char *msg, int head_seen);
} cr_fetch_callbacks_t;

struct st_cr_fetch_t {
    /* set by the caller before cr_fetch_start */
    const cr_fetch_callbacks_t *cb;
    void *data;
    h2o_iovec_t reqbufs[2]; /* request head (and body); must stay valid until the fetch finishes */
    size_t num_reqbufs;
    int is_head;       /* the request method is HEAD (no response body) */
    int is_idempotent; /* may be retried once on a dead keep-alive connection */
    /* set by the client: 1 + the microseconds from cr_fetch_start to the response head; 0 while no head came (the
     * access log's upstream_time) */
    uint64_t head_after_us;

    /* private */
    cr_upstream_t *_up;
    h2o_socket_t *_sock; /* the connection, while connecting or exchanging */
    h2o_linklist_t _queue_link;
    h2o_timeout_entry_t _timer; /* queue wait, connect or I/O */
    cr_h1_parser_t _parser;
    cr_chunked_t _chunked;
    uint64_t _body_left; /* CR_H1_BODY_LENGTH: bytes still to come */
    unsigned _state;
    unsigned _attempts;
    uint8_t _body;       /* cr_h1_body_t of the response */
    uint8_t _keep_alive; /* the response head allows reusing the connection */
    uint8_t _extra;      /* bytes came after the end of the response */
    uint8_t _reused;     /* the connection came from the idle list */
    uint8_t _head_seen;  /* on_head was called */
    uint8_t _paused;
    uint64_t _started_us; /* cr_monotonic_us() at cr_fetch_start: the upstream latency histogram (core/reqstats.h) */
};

/* Initialises a thread's upstream on its loop. */
void cr_upstream_init(cr_upstream_t **up, h2o_loop_t *loop, const cr_config_t *cfg, unsigned nthreads);

/* Starts (or queues) a fetch. No callback fires from inside this call. */
void cr_fetch_start(cr_upstream_t *up, cr_fetch_t *fetch);
/* Cancels an unfinished fetch: no callback fires afterwards. Safe to call on a finished fetch (no-op). */
void cr_fetch_cancel(cr_fetch_t *fetch);
/* Is the fetch still waiting for a connection (queued, or refused and not reported yet)? Nothing of its request has
 * gone anywhere then, and cr_fetch_cancel only frees its queue place. */
int cr_fetch_is_waiting(const cr_fetch_t *f);
/* The process-wide queue: fetches waiting for a connection now, the most at once since start, and the fetches refused
 * because limits.queued_fills were waiting. Any thread. */
void cr_upstream_queue_stats(size_t *queued, size_t *peak, uint64_t *refused);
/* Fetches holding an upstream connection now (connecting, sending or reading), all threads. Any thread. */
size_t cr_upstream_connections_in_use(void);
/* Stops / resumes reading the response body (backpressure). */
void cr_fetch_pause(cr_fetch_t *fetch);
void cr_fetch_resume(cr_fetch_t *fetch);


#endif
