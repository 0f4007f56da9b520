/*
 * guard.h: per-connection protection against HTTP/2 Rapid Reset (CVE-2023-44487) and similar abuse.
 *
 * libh2o 2.2.5 has no reset budget: a client can open a stream and cancel it at once, over and over, and every such
 * stream still reaches corral's handler (and could start an upstream request). corral counts, per connection, the
 * requests that were disposed before their response began (the client cancelled them). Past a budget within a
 * window, further requests on that connection are answered 429 without any upstream work, until the window passes.
 * State is per thread (a connection lives on one thread), in a small fixed table keyed by h2o's connection id;
 * no locks.
 */
#ifndef CORRAL_GUARD_H
#define CORRAL_GUARD_H

#include <h2o.h>

#define CR_GUARD_BUDGET 200     /* cancelled requests allowed per connection per window */
#define CR_GUARD_WINDOW_MS 10000

typedef struct st_cr_guard_t cr_guard_t;

cr_guard_t *cr_guard_new(void);

/* Returns 1 when this connection is over its budget (the caller answers 429), else 0. */
int cr_guard_is_blocked(cr_guard_t *g, uint64_t conn_id, uint64_t now);
/* Records that a request of this connection was cancelled before its response began. */
void cr_guard_note_cancel(cr_guard_t *g, uint64_t conn_id, uint64_t now);

#endif
