/*
 * conn_watch.h: bounds on client connections: how many may be open (limits.connections, lowered to fit the
 * open-file limit), and how long one may leave an HTTP/2 frame or header block unfinished (limits.header_timeout).
 *
 * Invariants: cr_conn_limits_init runs once in the main thread before any worker starts; every other function runs
 * on the worker thread that owns the socket or the watch. Every accepted client socket that cr_conn_admit lets in
 * carries a small record in sock->on_close (corral owns on_close for client sockets; libh2o does not use it for
 * them); the record is freed when libh2o disposes of the socket. The open-connection count is process-wide
 * (atomic, cr_rt.connections_open: cr_connections_open() in runtime.h reads it); everything else is per thread.
 */
#ifndef CORRAL_CONN_WATCH_H
#define CORRAL_CONN_WATCH_H

#include <h2o.h>
#include "corral/core/runtime.h"
#include "corral/conf/config.h"

typedef struct st_cr_conn_watch_t cr_conn_watch_t;

/* Start-up (main thread, before the workers): raises the soft RLIMIT_NOFILE to the hard limit, lowers the effective
 * connection cap (one warning) when limits.connections + upstream.max_connections + a reserve would not fit in it,
 * and sets libh2o's own timeouts from limits.header_timeout in each globalconf (admin may be NULL): http1.req_timeout
 * (an HTTP/1.1 request, and the keep-alive wait before it) and handshake_timeout (TLS). */
void cr_conn_limits_init(const cr_config_t *cfg, h2o_globalconf_t *traffic, h2o_globalconf_t *admin);

/* The effective cap on counted client connections (after cr_conn_limits_init). */
size_t cr_conn_cap(void);

/* Called for each socket a listener accepted, before h2o_accept. counted: a traffic listener's connection (counts
 * toward the cap); admin connections are watched but never counted or refused. Returns 0 when the connection may
 * proceed, or -1 when it is refused (over the cap, or out of memory): the caller closes it at once. The first refusal
 * of an episode logs one line; the episode ends (one line) once the count falls to 90% of the cap. */
int cr_conn_admit(cr_thread_t *t, h2o_socket_t *sock, int counted);

/* Starts the worker's watch over the HTTP/2 connections of its contexts (its traffic context, or the admin context on the admin thread):
 * a timer every header_timeout/10 (50 ms to 1 s) that closes any connection whose unfinished frame or header block
 * is older than limits.header_timeout. Never fails (asserts on out of memory at start-up). */
cr_conn_watch_t *cr_conn_watch_start(cr_thread_t *t);

/* Stops the timer and frees the watch; *w becomes NULL. Connections keep their records. */
void cr_conn_watch_stop(cr_conn_watch_t **w);

#endif
