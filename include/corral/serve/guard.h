/*
 * guard.h: protection against HTTP/2 Rapid Reset (CVE-2023-44487) and similar abuse, per connection and per client
 * address.
 *
 * libh2o 2.2.5 has no reset budget: a client can open a stream and cancel it at once, over and over, and every such
 * stream still reaches corral's handler (and could start an upstream request). corral counts the requests that were
 * disposed before their response began (the client cancelled them), per connection (limits.cancels_per_connection)
 * and per client address summed over all its connections on every thread (limits.cancels_per_address; IPv4 by
 * address, IPv6 by /64, an IPv4-mapped IPv6 address as IPv4), each per 10 s window. Past either budget, further
 * requests on that connection, or from that address, are answered 429 without any upstream work until the window
 * passes.
 * State: the per-connection budget is per thread (a connection lives on one thread), in a small fixed table keyed
 * by h2o's connection id, no locks; the per-address budget is one fixed table shared by every thread, updated with
 * relaxed atomics, only when a request is cancelled. The per-request check is a few loads and compares.
 */
#ifndef CORRAL_GUARD_H
#define CORRAL_GUARD_H

#include <h2o.h>
#include "corral/conf/config.h"

#define CR_GUARD_WINDOW_MS 10000

typedef struct st_cr_guard_t cr_guard_t;

/* What a request carries from its check to its disposal (copied into the request's own state). */
typedef struct st_cr_guard_ticket_t {
    uint64_t conn_id;
    uint64_t addr_tag; /* the address (or /64) it came from; meaningful when has_addr */
    int has_addr;
} cr_guard_ticket_t;

/* A thread's guard, with the budgets of `cfg` (limits.cancels_per_connection, cancels_per_address; NULL: the
 * defaults, 200 and 1000). */
cr_guard_t *cr_guard_new_with(const cr_config_t *cfg);

/*
 * Registers the admission handler on `pathconf`; call it before the cache handler is registered, so it runs first.
 * For each request it counts it, answers an oversized head (431, limits.request_headers), a connection or address
 * over its cancel budget (429) and a head unsafe to forward or key on (400); it then starts the request's in-flight
 * count (the drain waits for it) and its cancel watch, and lets the next handler run.
 */
void cr_guard_register(h2o_pathconf_t *pathconf);

/* Returns 1 when this connection or its client address is over its budget (the caller answers 429), else 0 and
 * fills *ticket for cr_guard_note_cancel. */
int cr_guard_check(cr_guard_t *g, h2o_conn_t *conn, uint64_t now, cr_guard_ticket_t *ticket);
/* Records that a request checked with this ticket was cancelled before its response began. */
void cr_guard_note_cancel(cr_guard_t *g, const cr_guard_ticket_t *ticket, uint64_t now);

/* The address tag of sa (IPv4 address; IPv6 /64; IPv4-mapped IPv6 as IPv4). Returns 1, or 0 for another family. */
int cr_guard_addr_tag(const struct sockaddr *sa, uint64_t *tag);

#endif
