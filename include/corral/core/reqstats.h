/*
 * reqstats.h: the labelled per-request statistics: requests by route and cache outcome, responses by route and
 * status class, latency histograms by outcome, body bytes sent by content coding, and the upstream's latency
 * histogram and errors by kind. admin/metrics.c writes them; cr_reqstats_route_totals gives per-route totals to
 * other readers (the status page).
 *
 * A request carries one cr_reqstat_t (in the guard's per-request tracker, serve/guard.c): the guard begins it, the
 * cache handler sets its route slot (core/route_slots.h) and outcome as it decides (serve/handler.c, deliver.c), and
 * the guard's dispose ends it (cr_reqstat_end), which counts everything in one go, once per admitted request.
 *
 * Invariants and locking: each thread writes only its own cr_reqstats_t block, found through a thread-local pointer
 * and created on the thread's first use (one calloc and a mutex, once per thread); every write is a relaxed load and
 * store (no read-modify-write, no lock, no system call: the hit path's cost is a few adds). Blocks are linked into one
 * list under a mutex and never freed, so a reader (cr_reqstats_sum, any thread) walks them under that mutex with
 * relaxed loads. Counters never go down.
 */
#ifndef CORRAL_REQSTATS_H
#define CORRAL_REQSTATS_H

#include <h2o.h>
#include <stdint.h>

#include "corral/core/histogram.h"
#include "corral/core/route_slots.h"

/* How the cache handled a request (label `outcome`); see the README's metrics section for each. */
typedef enum en_cr_outcome_t {
    CR_OUTCOME_PASS = 0, /* no route, an uncached route, a method other than GET/HEAD, a no-store request's miss */
    CR_OUTCOME_HIT,
    CR_OUTCOME_MISS,
    CR_OUTCOME_STALE,
    CR_OUTCOME_COLLAPSED,
    CR_OUTCOME_BYPASS,
    CR_OUTCOME_L2_HIT,
    CR_OUTCOME_MAX
} cr_outcome_t;

/* Status classes (label `code`): 1xx..5xx, and "none" for no status sent (the client left before the answer). */
enum { CR_CODE_CLASS_NONE = 5, CR_CODE_CLASS_MAX = 6 };
/* Content codings of the bytes sent (label `encoding`). */
enum { CR_BODY_IDENTITY = 0, CR_BODY_GZIP, CR_BODY_BR, CR_BODY_OTHER, CR_BODY_MAX };
/* Upstream failures (label `kind`), in cr_fetch_error_t order less one. */
enum { CR_UPSTREAM_ERR_CONNECT = 0, CR_UPSTREAM_ERR_TIMEOUT, CR_UPSTREAM_ERR_PROTOCOL, CR_UPSTREAM_ERR_BUSY, CR_UPSTREAM_ERR_MAX };

extern const char *const cr_outcome_names[CR_OUTCOME_MAX];
extern const char *const cr_code_class_names[CR_CODE_CLASS_MAX];
extern const char *const cr_body_encoding_names[CR_BODY_MAX];
extern const char *const cr_upstream_error_names[CR_UPSTREAM_ERR_MAX];

typedef struct st_cr_reqstats_t {
    uint64_t requests[CR_ROUTE_SLOTS][CR_OUTCOME_MAX];
    uint64_t codes[CR_ROUTE_SLOTS][CR_CODE_CLASS_MAX];
    cr_hist_t latency[CR_OUTCOME_MAX];
    uint64_t body_bytes[CR_BODY_MAX];
    cr_hist_t upstream_latency;
    uint64_t upstream_errors[CR_UPSTREAM_ERR_MAX];
    uint64_t rate_limited[CR_ROUTE_SLOTS]; /* requests refused or answered stale by the route's rate_limit (issue 16) */
    struct st_cr_reqstats_t *next; /* every thread's block (reqstats.c) */
} cr_reqstats_t;

/* One request's labels, until it ends. */
typedef struct st_cr_reqstat_t {
    const h2o_req_t *req;
    uint16_t slot;   /* route slot; CR_ROUTE_SLOT_NONE until a route matched */
    uint8_t outcome; /* cr_outcome_t; CR_OUTCOME_PASS until the handler decides */
    uint8_t ended;
} cr_reqstat_t;

/* The calling thread's block (created on first use; a discarded static block if memory ran out). */
cr_reqstats_t *cr_reqstats_self(void);

/* Starts rs for req and makes it the thread's current record, for cr_reqstat_take within the same call chain. */
void cr_reqstat_begin(cr_reqstat_t *rs, const h2o_req_t *req);
/* The current record when it is req's (and clears it), else NULL. On the request's thread, synchronously after
 * cr_reqstat_begin (the guard handler runs right before the cache handler). */
cr_reqstat_t *cr_reqstat_take(const h2o_req_t *req);

/* The handler's decisions; rs may be NULL (the request is then not labelled). */
static inline void cr_reqstat_route(cr_reqstat_t *rs, unsigned slot)
{
    if (rs != NULL)
        rs->slot = (uint16_t)(slot < CR_ROUTE_SLOTS ? slot : CR_ROUTE_SLOT_OTHER);
}
static inline void cr_reqstat_outcome(cr_reqstat_t *rs, cr_outcome_t o)
{
    if (rs != NULL)
        rs->outcome = (uint8_t)o;
}

/* Counts the finished request once (later calls do nothing): route x outcome, route x status class, latency by
 * outcome (h2o's request begin to response end timestamps: about 1 ms resolution), body bytes by the response's
 * Content-Encoding. req must still be valid (called from a dispose of its pool). */
void cr_reqstat_end(cr_reqstat_t *rs, h2o_req_t *req);

/* The status class index of an HTTP status (0..4 for 1xx..5xx, CR_CODE_CLASS_NONE otherwise). */
static inline unsigned cr_code_class(int status)
{
    return status >= 100 && status <= 599 ? (unsigned)(status / 100 - 1) : CR_CODE_CLASS_NONE;
}

/* The upstream client's events (fill/upstream.c), on the fetch's thread. */
void cr_reqstats_upstream_head(uint64_t us); /* a response head arrived `us` after the fetch started */
void cr_reqstats_upstream_error(unsigned kind);

/* A request over its route's rate limit (serve/ratelimit.c), on the request's thread. */
void cr_reqstats_rate_limited(unsigned slot);

/* *out = the sum of every thread's block (out's `next` is NULL). Any thread. */
void cr_reqstats_sum(cr_reqstats_t *out);

/* Per-route totals, for the status page. */
typedef struct st_cr_route_total_t {
    const char *name; /* valid for the life of the process */
    uint64_t requests;
    uint64_t by_outcome[CR_OUTCOME_MAX];
    uint64_t by_code[CR_CODE_CLASS_MAX];
} cr_route_total_t;

/* Fills out[0..max) with every route slot that has counted a request (in slot order: "(none)" first, "(other)"
 * last) and returns how many there were (may be more than max: only max are written). Sums every thread's block
 * (a heap block the size of cr_reqstats_t); returns 0 when memory ran out. Any thread. */
size_t cr_reqstats_route_totals(cr_route_total_t *out, size_t max);

#endif
