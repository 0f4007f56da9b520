/*
 * flight_int.h: the flight's layout, shared by flight.c (table, waiters, publish, messages) and fill.c (the leader's
 * fetch, outcome, store, codings). Private to sidecar/fill.
 *
 * Locking (see flight.c's top comment): `table->mutex` guards the hash chains, `done`, `fetched`, `has_waiters[]` and
 * `num_waiters`; `waiters[i]` is touched only by thread i; the fill's fields only by the owner until publication,
 * after which the outcome fields are read-only; `codings_job` by a worker-pool thread while it is submitted (see
 * cr_codings_job_t).
 */
#ifndef CORRAL_FLIGHT_INT_H
#define CORRAL_FLIGHT_INT_H

#include <pthread.h>

#include "corral/fill/flight.h"
#include "corral/fill/fill.h"
#include "corral/fill/upstream.h"
#include "corral/cache/store.h"
#include "corral/core/workq.h"

#define CR_FLIGHT_MAGIC 0xf1197001u
#define CR_FLIGHT_TABLE_BUCKETS 4096 /* power of two */

typedef enum en_cr_outcome_t {
    OUTCOME_NONE = 0,
    OUTCOME_SERVE_ALL,    /* `result` answers every waiter whose variant it fits */
    OUTCOME_SERVE_LEADER, /* `result` answers the leader only; the others pass (response not storable) */
    OUTCOME_PASS_ALL,     /* everyone passes (object too large to buffer) */
    OUTCOME_ERROR,        /* everyone gets error_status */
} cr_outcome_t;

typedef struct st_cr_req_header_copy_t {
    cr_str_t name; /* lower-case */
    cr_str_t value;
} cr_req_header_copy_t;

typedef struct st_cr_flight_t cr_flight_t;

/* The codings of a large result, made on the worker pool (core/workq.h; fill.c). Between the submit and `done` the
 * pool thread reads `identity` and `route` and writes `coded`, and nothing else of the flight; the owner touches none
 * of these fields meanwhile. The job holds a reference to its flight. */
typedef struct st_cr_codings_job_t {
    cr_workq_job_t super;
    const cr_route_config_t *route; /* the fill's (its config generation is retained by the flight) */
    const cr_object_t *identity;    /* the flight's result, finished and shared (stored, being sent): read only */
    cr_object_t *coded;             /* the copy with its codings, finished (NULL: out of memory) */
} cr_codings_job_t;

struct st_cr_flight_t {
    unsigned magic;
    uint32_t refcnt; /* atomic */

    /* guarded by table->mutex */
    cr_flight_t *hash_next;
    int in_table;
    int done; /* written under the mutex; also read without it (atomic) by a thread whose last waiter left */
    int fetched; /* the answer is complete and the leader has it: only its codings are still being made */
    size_t num_waiters;
    unsigned char *has_waiters; /* [nthreads] */
    uint32_t live_waiters;      /* atomic; raised only under the mutex (see flight.c) */

    /* waiters[i] is touched only by thread i */
    h2o_linklist_t *waiters; /* [nthreads] of cr_waiter_t */

    /* immutable once the flight is in the table */
    char *key;
    size_t keylen;
    uint64_t hash;
    cr_thread_t *owner;
    int background; /* a stale-while-revalidate refresh: it runs without waiters, never dropped */

    /* set by cr_fill_prepare (owner thread) before the fetch starts; immutable afterwards */
    const cr_config_t *cfg; /* one reference: the generation of the request that started the fill */
    const cr_route_config_t *route;
    cr_request_info_t qi;
    cr_store_epoch_t epoch; /* taken when the fill began: a purge covering the answer since then means "do not store" */
    cr_req_header_copy_t *req_headers; /* the leader's request headers, for Vary */
    size_t num_req_headers;
    char *req_header_arena;

    /* the fill: owner thread only */
    cr_fetch_t fetch;
    char *reqhead;
    size_t reqhead_len;
    cr_object_t *stale; /* being revalidated, may be NULL */
    uint64_t request_time_ms;
    uint64_t response_time_ms;
    cr_store_decision_t decision;
    cr_object_t *building;
    char *body;
    size_t body_len, body_cap;
    int status;
    cr_encoding_t received_encoding; /* the upstream's Content-Encoding (identity unless CR_OBJ_ENCODED) */
    int refreshed;                   /* a 304 refreshed `stale`: `building` already holds its bodies */
    h2o_timeout_entry_t codings_timer; /* linked (zero timeout) while the leader has its answer and the codings wait */
    cr_codings_job_t codings_job;      /* on the worker pool from on_codings_timer until its done (large bodies only) */

    /* the shared tier step before the fetch (l2fill.c): owner thread only; the job's fields see cr_l2_job_t */
    uint64_t log_pos;           /* the invalidation log position seen when the fill began (0: no tier) */
    struct st_cr_l2_job_t *l2_job; /* a lookup or a lease poll on the worker pool, or NULL */
    h2o_timeout_entry_t l2_timer;  /* the pause between two looks at another pod's lease */
    uint64_t lease_deadline;       /* when waiting on another pod's lease ends (owner's loop clock, ms) */
    int l2_hit;                    /* the result came from L2 (Cache-Status detail=l2-hit) */
    int lease_held;                /* this fill holds the key's lease: it writes the value or a no-store marker */

    /* the outcome: written by the owner before publication, read-only afterwards */
    cr_outcome_t outcome;
    cr_object_t *result;
    int stored;
    int result_is_stale; /* stale served because the upstream failed (stale-if-error, or the origin is down) */
    const char *stale_detail; /* with result_is_stale: the Cache-Status detail ("detail=stale-if-error", ...) */
    int unreachable;          /* the fetch failed before any answer, refused, reset or closed (cr_fill_fail reads it) */
    int upstream_down;        /* the fetch was not sent: CR_FILL_DOWN_UNHEALTHY or _SHED (cr_fill_fail reads it) */
    int error_status;
    const char *error_code;
    char error_msg[128];
    const char *not_stored_reason;
};

typedef struct st_cr_waiter_t {
    h2o_linklist_t link; /* in flight->waiters[thread] */
    cr_flight_t *flight; /* one reference */
    cr_fill_req_t *fr;
    cr_thread_t *thread;
    h2o_timeout_entry_t timer;
    int is_leader;
    int after_fetch; /* joined once the answer was fetched (the codings window): looks up again at publication */
} cr_waiter_t;

struct st_cr_flight_table_t {
    pthread_mutex_t mutex;
    unsigned nthreads;
    cr_flight_t *buckets[CR_FLIGHT_TABLE_BUCKETS];
};

/* flight.c */
/* A flight's table fields in one block (has_waiters, waiters and the key follow the struct), for `owner` and
 * fr's key: refcount one (the fill's and table link's), no waiter, not in a table. NULL when out of memory. */
cr_flight_t *cr_flight_shell_new(cr_thread_t *owner, unsigned nthreads, const cr_fill_req_t *fr);
/* The table's primitives; the caller holds table->mutex. */
cr_flight_t *cr_flight_do_find(cr_flight_table_t *table, const char *key, size_t keylen, uint64_t hash);
void cr_flight_do_insert(cr_flight_table_t *table, cr_flight_t *f);
void cr_flight_do_unlink(cr_flight_table_t *table, cr_flight_t *f);
/* Counts thread t's waiter in (a reference, live_waiters) unless `f` has fr->route's max_waiters: CR_OK or
 * CR_DECLINED. */
int cr_flight_do_join(cr_flight_t *f, cr_thread_t *t, const cr_fill_req_t *fr);
void cr_flight_addref(cr_flight_t *f);
void cr_flight_release(cr_flight_t **fp);
/* Owner thread: removes the flight from the table and answers every waiter (outcome set). Drops the fill's ref. */
void cr_flight_publish(cr_flight_t *f);
/* The leader's waiter if it still waits, else NULL. Owner thread. */
cr_waiter_t *cr_flight_find_leader(cr_flight_t *f);
/* Notes, under the table mutex, that the answer is complete and the leader is answered first (the codings window). */
void cr_flight_mark_fetched(cr_flight_t *f);
/* Answers the leader from the result, which has no codings yet (CR_FLIGHT_SERVE with codings_pending). */
void cr_flight_answer_leader_first(cr_flight_t *f, cr_waiter_t *leader);

/* l2fill.c */
/* Starts the tier step of a fill (an L2 lookup, then a lease), or returns CR_DECLINED when the tier does not apply:
 * then the caller fetches at once. Owner thread. */
int cr_l2_begin(cr_thread_t *t, cr_flight_t *f);
/* At publication: writes a stored result to L2 (not one that came from it), or releases the fill's lease (a
 * no-store marker). Never delays the publication: the writes run on the worker pool. Owner thread. */
void cr_l2_on_publish(cr_flight_t *f);

/* fill.c */
/* Everything the fetch needs, from the request that starts it: config, route, request info, epoch, a copy of its
 * headers, the upstream request head; `stale` (may be NULL) gets a reference. Owner thread. CR_OK or CR_ERROR. */
int cr_fill_prepare(cr_flight_t *f, const cr_fill_req_t *fr, cr_object_t *stale);
/* Sends the fill's request upstream. Its callbacks may run before this returns. */
void cr_fill_start(cr_thread_t *t, cr_flight_t *f);
/* Sends the fill's request upstream now (after the tier step). Its callbacks may run before this returns. */
void cr_fill_fetch(cr_thread_t *t, cr_flight_t *f);
/* Frees what cr_fill_prepare and the fetch left (the flight's last reference is gone). */
void cr_fill_dispose(cr_flight_t *f);
/* The flight's outcome is the error (status, code, msg), or its stale copy under stale-if-error. */
void cr_fill_fail(cr_flight_t *f, int status, const char *code, const char *msg);

#endif
