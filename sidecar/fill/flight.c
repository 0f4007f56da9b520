/*
 * flight.c: single-flight cache fills shared by all threads (see flight.h for the model): the flight table, the
 * waiters and their wake-up, the upstream fetch of a fill, and the choice of outcome (store, share, pass, error,
 * stale-if-error). Making the stored object from the response is fill_object.c's.
 *
 * Locking: `table->mutex` guards the hash chains, `done`, `fetched`, `has_waiters[]` and `num_waiters` of every flight
 * in the table. Nothing else takes it, and no callback or I/O runs while it is held. `waiters[i]` is touched only by
 * thread i. Fields of the fill (fetch, building, body, decision) are touched only by the owner thread until the
 * flight is published; after publication the outcome fields are read-only and `done` is 1.
 * Answer order: when the object is to be stored with codings and the leader still waits, the leader is answered from
 * the finished identity-only result first, and the codings are made from the owner's zero timeout, after h2o has the
 * leader's answer: into a copy, which is what gets stored and what every other waiter gets. The stored object always
 * holds its codings; the flight stays in the table and keeps the fill's reference until then, and a request that
 * comes meanwhile and finds no fresh object waits for the store and looks up again (cr_flight_await_store), so that
 * nothing but the leader's own answer comes before the store.
 * Reference counting: the table link and the running fetch share one reference (dropped at publish, or when the
 * fill is dropped); each waiter and each cross-thread message holds one. The last release frees the flight, on
 * whichever thread that happens.
 * Dropping: `live_waiters` counts the waiters still linked (or joining: it is raised under the mutex, by do_join or
 * the leader's creation, and lowered without it when a waiter leaves: answered, timed out, or its request gone).
 * When the last one leaves a flight that is not a background revalidation and has not published, the owner (at once,
 * or from a drop-check message when the last waiter was on another thread) drops the fill if it still waits for an
 * upstream connection (cr_fetch_is_waiting): the fetch is cancelled, its queue place freed, the flight unlinked and
 * marked done without an outcome. A fill that has a connection (being made, or its request on the wire) goes on and
 * is stored for the next client, as Varnish and nginx (proxy_cache) finish a fetch they started: the upstream does
 * the work anyway, at most upstream.max_connections fills run at once, and closing connections still being made
 * would turn each cancelled request into a connect and close at the upstream (measured: 57,000 in 5 s swamped it).
 */
#include "corral/fill/flight.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "corral/cache/objbuild.h"
#include "corral/http/http.h"
#include "corral/http/invalidate.h"
#include "corral/core/log.h"
#include "corral/cache/store.h"
#include "corral/conf/config.h"
#include "corral/fill/upstream.h"
#include "corral/fill/upstream_head.h"
#include "corral/serve/pass.h"

#define CR_FLIGHT_MAGIC 0xf1197001u
#define TABLE_BUCKETS 4096 /* power of two */

typedef enum en_cr_outcome_t {
    OUTCOME_NONE = 0,
    OUTCOME_SERVE_ALL,    /* `result` answers every waiter whose variant it fits */
    OUTCOME_SERVE_LEADER, /* `result` answers the leader only; the others pass (response not storable) */
    OUTCOME_PASS_ALL,     /* everyone passes (object too large to buffer) */
    OUTCOME_ERROR,        /* everyone gets error_status */
} cr_outcome_t;

typedef struct st_cr_flight_t cr_flight_t;

typedef struct st_cr_req_header_copy_t {
    cr_str_t name; /* lower-case */
    cr_str_t value;
} cr_req_header_copy_t;

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
    uint32_t live_waiters;      /* atomic; raised only under the mutex (see the top of the file) */

    /* waiters[i] is touched only by thread i */
    h2o_linklist_t *waiters; /* [nthreads] of cr_waiter_t */

    cr_store_epoch_t epoch; /* taken when the fill began: a purge covering the answer since then means "do not store" */

    /* immutable after creation */
    char *key;
    size_t keylen;
    uint64_t hash;
    cr_thread_t *owner;
    int background; /* a stale-while-revalidate refresh: it runs without waiters, never dropped */
    const cr_route_config_t *route;
    cr_request_info_t qi;
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

    /* the outcome: written by the owner before publication, read-only afterwards */
    cr_outcome_t outcome;
    cr_object_t *result;
    int stored;
    int result_is_stale; /* stale served because the upstream failed (stale-if-error) */
    int error_status;
    const char *error_code;
    char error_msg[128];
    const char *not_stored_reason;
};

typedef struct st_cr_waiter_t {
    h2o_linklist_t link; /* in flight->waiters[thread] */
    cr_flight_t *flight; /* one reference */
    cr_lookup_t *lk;
    cr_thread_t *thread;
    h2o_timeout_entry_t timer;
    int is_leader;
    int after_fetch; /* joined once the answer was fetched (the codings window): looks up again at publication */
} cr_waiter_t;

typedef struct st_cr_flight_message_t {
    h2o_multithread_message_t super;
    cr_flight_t *flight; /* one reference */
    int drop_check;      /* to the owner: the last waiter left, drop the fill if it is not sent yet */
} cr_flight_message_t;

struct st_cr_flight_table_t {
    pthread_mutex_t mutex;
    unsigned nthreads;
    cr_flight_t *buckets[TABLE_BUCKETS];
};

static void flight_addref(cr_flight_t *f)
{
    __atomic_fetch_add(&f->refcnt, 1, __ATOMIC_RELAXED);
}

static void flight_release(cr_flight_t **fp)
{
    cr_flight_t *f = *fp;
    *fp = NULL;
    if (f == NULL)
        return;
    CR_CHECK_OBJ_NOTNULL(f, CR_FLIGHT_MAGIC);
    if (__atomic_sub_fetch(&f->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    assert(!f->in_table);
    cr_object_release(&f->stale);
    cr_object_release(&f->building);
    cr_object_release(&f->result);
    free(f->body);
    free(f->reqhead);
    free(f->req_headers);
    free(f->req_header_arena);
    free(f->has_waiters);
    free(f->waiters);
    free(f->key);
    f->magic = 0;
    free(f);
}

cr_flight_table_t *cr_flight_table_new(unsigned nthreads)
{
    cr_flight_table_t *table = calloc(1, sizeof(*table));
    if (table == NULL)
        return NULL;
    pthread_mutex_init(&table->mutex, NULL);
    table->nthreads = nthreads;
    return table;
}

/* caller holds the table mutex */
static cr_flight_t *do_find(cr_flight_table_t *table, const char *key, size_t keylen, uint64_t hash)
{
    cr_flight_t *f;
    for (f = table->buckets[hash & (TABLE_BUCKETS - 1)]; f != NULL; f = f->hash_next)
        if (f->hash == hash && f->keylen == keylen && memcmp(f->key, key, keylen) == 0)
            return f;
    return NULL;
}

/* caller holds the table mutex */
static void do_unlink(cr_flight_table_t *table, cr_flight_t *f)
{
    cr_flight_t **slot = &table->buckets[f->hash & (TABLE_BUCKETS - 1)];
    while (*slot != f)
        slot = &(*slot)->hash_next;
    *slot = f->hash_next;
    f->hash_next = NULL;
    f->in_table = 0;
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* answering waiters */

static void send_message(cr_flight_t *f, unsigned thread_idx, int drop_check)
{
    cr_flight_message_t *msg = malloc(sizeof(*msg));
    assert(msg != NULL);
    msg->super = (h2o_multithread_message_t){{NULL, NULL}};
    flight_addref(f);
    msg->flight = f;
    msg->drop_check = drop_check;
    h2o_multithread_send_message(&cr_rt.threads[thread_idx].flight_receiver, &msg->super);
}

/* Owner thread: the last waiter left. Drops the fill while it still waits for an upstream connection (see the top of
 * the file); otherwise leaves it running. */
static void drop_if_waiting(cr_flight_t *f)
{
    cr_flight_table_t *table = cr_rt.flights;
    int drop = 0;

    if (f->background || !cr_fetch_is_waiting(&f->fetch))
        return;
    pthread_mutex_lock(&table->mutex);
    if (!f->done && __atomic_load_n(&f->live_waiters, __ATOMIC_ACQUIRE) == 0) {
        if (f->in_table)
            do_unlink(table, f);
        __atomic_store_n(&f->done, 1, __ATOMIC_RELAXED);
        drop = 1;
    }
    pthread_mutex_unlock(&table->mutex);
    if (!drop)
        return; /* someone joined meanwhile */
    cr_fetch_cancel(&f->fetch); /* frees its queue place; no callback follows */
    CR_STAT_INC(f->owner->stats, fills_dropped);
    flight_release(&f); /* the fill's */
}

/* A waiter of `f` on thread t stopped waiting (answered, timed out, or its request is gone). */
static void waiter_left(cr_flight_t *f, cr_thread_t *t)
{
    if (__atomic_sub_fetch(&f->live_waiters, 1, __ATOMIC_ACQ_REL) != 0 || f->background ||
        __atomic_load_n(&f->done, __ATOMIC_RELAXED))
        return;
    if (t == f->owner)
        drop_if_waiting(f);
    else
        send_message(f, f->owner->idx, 1);
}

static void waiter_detach(cr_waiter_t *w)
{
    if (h2o_timeout_is_linked(&w->timer))
        h2o_timeout_unlink(&w->timer);
    if (h2o_linklist_is_linked(&w->link)) {
        h2o_linklist_unlink(&w->link);
        waiter_left(w->flight, w->thread);
    }
}

static void on_waiter_dispose(void *p)
{
    cr_waiter_t *w = p;
    waiter_detach(w);
    flight_release(&w->flight);
}

static void answer_waiter(cr_waiter_t *w)
{
    cr_flight_t *f = w->flight;
    cr_lookup_t *lk = w->lk;
    h2o_req_t *req = lk->req;
    char extra[160];

    if (w->after_fetch) {
        /* it came after the answer was fetched (while the codings were made): it is answered as if it had come
         * after the store, by the same lookup (a hit, stale, no-cache, ...) */
        cr_handler_lookup(lk);
        return;
    }
    switch (f->outcome) {
    case OUTCOME_SERVE_ALL:
        if (f->result_is_stale) {
            cr_respond_object(req, lk->route, f->result, cr_cache_status_fwd(req, "stale", "detail=stale-if-error"));
            return;
        }
        if (f->result->num_vary != 0 && !cr_handler_variant_matches(lk, f->result)) {
            cr_handler_restart(lk);
            return;
        }
        if (w->is_leader) {
            if (f->stored)
                snprintf(extra, sizeof(extra), "stored");
            else
                snprintf(extra, sizeof(extra), "detail=%s", f->not_stored_reason != NULL ? f->not_stored_reason : "not-stored");
        } else {
            CR_STAT_INC(w->thread->stats, coalesced);
            snprintf(extra, sizeof(extra), "collapsed");
        }
        cr_respond_object(req, lk->route, f->result, cr_cache_status_fwd(req, lk->fwd, h2o_strdup(&req->pool, extra, SIZE_MAX).base));
        return;
    case OUTCOME_SERVE_LEADER:
        if (w->is_leader) {
            snprintf(extra, sizeof(extra), "detail=%s", f->not_stored_reason);
            cr_respond_object(req, lk->route, f->result, cr_cache_status_fwd(req, lk->fwd, h2o_strdup(&req->pool, extra, SIZE_MAX).base));
        } else {
            snprintf(extra, sizeof(extra), "detail=%s", f->not_stored_reason);
            cr_pass_start(req, lk->route, cr_cache_status_fwd(req, lk->fwd, h2o_strdup(&req->pool, extra, SIZE_MAX).base), NULL);
        }
        return;
    case OUTCOME_PASS_ALL:
        cr_pass_start(req, lk->route, cr_cache_status_fwd(req, lk->fwd, "detail=too-large"), NULL);
        return;
    case OUTCOME_ERROR:
        cr_send_json_error(req, f->error_status,
                           f->error_status == 504   ? "Gateway Timeout"
                           : f->error_status == 503 ? "Service Unavailable"
                                                    : "Bad Gateway",
                           f->error_code, f->error_msg);
        return;
    case OUTCOME_NONE:
        break;
    }
    assert(!"flight published without an outcome");
}

/* Answers every waiter of this thread; runs on thread t. */
static void answer_thread_waiters(cr_thread_t *t, cr_flight_t *f)
{
    h2o_linklist_t *anchor = &f->waiters[t->idx];
    while (!h2o_linklist_is_empty(anchor)) {
        cr_waiter_t *w = H2O_STRUCT_FROM_MEMBER(cr_waiter_t, link, anchor->next);
        waiter_detach(w); /* the waiter's reference is dropped when its request is disposed */
        answer_waiter(w);
    }
}

static void on_flight_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    cr_thread_t *t = H2O_STRUCT_FROM_MEMBER(cr_thread_t, flight_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        cr_flight_message_t *msg = H2O_STRUCT_FROM_MEMBER(cr_flight_message_t, super.link, messages->next);
        h2o_linklist_unlink(&msg->super.link);
        if (msg->drop_check)
            drop_if_waiting(msg->flight);
        else
            answer_thread_waiters(t, msg->flight);
        flight_release(&msg->flight);
        free(msg);
    }
}

void cr_flight_thread_init(cr_thread_t *t)
{
    h2o_multithread_register_receiver(t->ctx.queue, &t->flight_receiver, on_flight_messages);
}

/* Owner thread: removes the flight from the table and wakes every thread that has waiters. Drops the fill's ref. */
static void publish(cr_flight_t *f)
{
    cr_flight_table_t *table = cr_rt.flights;
    unsigned i, n = table->nthreads;
    unsigned char *notify = alloca(n);

    assert(f->outcome != OUTCOME_NONE);
    pthread_mutex_lock(&table->mutex);
    if (f->in_table)
        do_unlink(table, f);
    __atomic_store_n(&f->done, 1, __ATOMIC_RELAXED);
    memcpy(notify, f->has_waiters, n);
    pthread_mutex_unlock(&table->mutex);

    for (i = 0; i != n; ++i) {
        if (!notify[i])
            continue;
        if (i == f->owner->idx)
            answer_thread_waiters(f->owner, f);
        else
            send_message(f, i, 0);
    }
    flight_release(&f);
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* the fill */

static h2o_iovec_t flight_req_header(void *ctx, const char *lname, size_t lnamelen)
{
    cr_flight_t *f = ctx;
    size_t i;
    for (i = 0; i != f->num_req_headers; ++i)
        if (f->req_headers[i].name.len == lnamelen && memcmp(f->req_headers[i].name.base, lname, lnamelen) == 0)
            return h2o_iovec_init(f->req_headers[i].value.base, f->req_headers[i].value.len);
    return h2o_iovec_init(NULL, 0);
}

/* stale-if-error (RFC 5861): may the stale copy being revalidated answer for a failed upstream? If so, makes it the
 * flight's answer and returns 1. must-revalidate forbids it; the window runs from the end of freshness. */
static int answer_with_stale_copy(cr_flight_t *f)
{
    uint64_t now = h2o_now(f->owner->ctx.loop);
    if (f->stale == NULL || (cr_object_flags(f->stale) & CR_OBJ_MUST_REVALIDATE) != 0 || f->stale->sie_ms == 0 ||
        cr_object_age_ms(f->stale, now) > (uint64_t)f->stale->lifetime_ms + f->stale->sie_ms)
        return 0;
    f->outcome = OUTCOME_SERVE_ALL;
    f->result = f->stale;
    f->stale = NULL;
    f->result_is_stale = 1;
    return 1;
}

static void fail_flight(cr_flight_t *f, int status, const char *code, const char *msg)
{
    if (answer_with_stale_copy(f))
        return;
    f->outcome = OUTCOME_ERROR;
    f->error_status = status;
    f->error_code = code;
    snprintf(f->error_msg, sizeof(f->error_msg), "%s", msg);
}

static void insert_pass_marker(cr_flight_t *f, uint64_t now)
{
    cr_object_t *marker = cr_fill_object_new(cr_str(f->key, f->keylen), 0);
    if (marker == NULL)
        return;
    marker->flags |= CR_OBJ_PASS;
    marker->response_time_ms = now;
    marker->lifetime_ms = cr_object_clamp_ms(f->route->coalesce_pass_ttl_ms);
    cr_object_set_body(marker, CR_ENC_IDENTITY, NULL, 0);
    marker = cr_object_finish(marker);
    cr_store_insert(cr_rt.store, marker);
    cr_object_release(&marker);
}

/* Offers the result to the store (a storable answer) and notes how that went. Owner thread. Returns CR_OK (stored),
 * CR_DECLINED (an invalidation came first) or CR_ERROR (the store refused it: too large, or no memory for its tags). */
static int store_result(cr_flight_t *f)
{
    f->not_stored_reason = NULL;
    if (cr_store_insert_if_epoch(cr_rt.store, f->result, &f->epoch) == CR_OK) {
        f->stored = 1;
        CR_STAT_INC(f->owner->stats, stored);
        return CR_OK;
    }
    if (cr_store_epoch_moved(cr_rt.store, &f->epoch, f->result)) {
        /* an invalidation landed while this fill was in flight: its answer is served, never stored as fresh */
        f->not_stored_reason = "invalidated";
        return CR_DECLINED;
    }
    f->not_stored_reason = "too-large";
    return CR_ERROR;
}

/* The leader's waiter if it still waits (it may have gone away, or passed after its coalesce timeout). It was
 * linked first on the owner's list, so this is one step. */
static cr_waiter_t *find_leader(cr_flight_t *f)
{
    h2o_linklist_t *anchor = &f->waiters[f->owner->idx], *node;
    for (node = anchor->next; node != anchor; node = node->next) {
        cr_waiter_t *w = H2O_STRUCT_FROM_MEMBER(cr_waiter_t, link, node);
        if (w->is_leader)
            return w;
    }
    return NULL;
}

/* Answers the leader from the result, which has no codings yet; they are made once the answer is on its way. */
static void answer_leader_first(cr_flight_t *f, cr_waiter_t *w)
{
    h2o_req_t *req = w->lk->req;
    cr_str_t vary = cr_object_find_header(f->result, H2O_STRLIT("vary"));

    waiter_detach(w); /* its reference is dropped when its request is disposed */
    /* the stored object will hold codings and every answer from it varies on Accept-Encoding: so does this one */
    if (!cr_list_contains(h2o_iovec_init(vary.base, vary.len), h2o_iovec_init(H2O_STRLIT("accept-encoding"))))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("accept-encoding"));
    cr_respond_object(req, w->lk->route, f->result, cr_cache_status_fwd(req, w->lk->fwd, "stored"));
}

/*
 * Runs from the owner's zero timeout, after the leader's answer was handed to h2o (an HTTP/1.1 answer is written by
 * then, and an HTTP/2 one is flushed by h2o's own zero-timeout entry, linked before this one): makes the codings
 * into a copy of the result, stores the copy, and answers every other waiter from it.
 */
static void on_codings_timer(h2o_timeout_entry_t *entry)
{
    cr_flight_t *f = H2O_STRUCT_FROM_MEMBER(cr_flight_t, codings_timer, entry);
    cr_object_t *identity_only = f->result, *full = cr_fill_object_copy(identity_only);

    if (full != NULL) {
        cr_fill_object_compress(f->route, full);
        full = cr_object_finish(full);
        cr_fill_object_set_freshness(full, &f->decision, f->response_time_ms);
        f->result = full;
    }
    if (store_result(f) == CR_ERROR && full != NULL) {
        /* too large with its codings: the leader was told "stored", so what it got is stored (it is already) */
        f->result = identity_only;
        identity_only = full;
        store_result(f);
    }
    /* whatever stays stored without codings no longer makes requests wait (the copy, when stored, replaced it) */
    cr_object_codings_done(f->result);
    if (identity_only != f->result)
        cr_object_release(&identity_only);
    publish(f);
}

/*
 * Makes the finished object, stores it (or not) and picks the outcome. Owner thread. Returns CR_OK when the flight
 * is ready to publish, or CR_AGAIN when the leader was answered first and the codings, the store and the other
 * waiters follow from the zero timeout (on_codings_timer publishes).
 */
static int complete(cr_flight_t *f)
{
    cr_object_t *obj = f->building;
    cr_waiter_t *leader = NULL;
    uint64_t now = h2o_now(f->owner->ctx.loop);
    int status = f->status;

    f->building = NULL;
    if (!f->refreshed) {
        /* the body as received; a refreshed object already holds the stored one, with its variants. A body of
         * unknown length (chunked, close-delimited) grew in steps of at least 4 KiB: give the slack back, as the
         * store charges the object for body_len bytes only */
        if (f->body_cap > f->body_len && f->body_len != 0) {
            char *fit = realloc(f->body, f->body_len);
            if (fit != NULL)
                f->body = fit;
        }
        cr_object_set_body(obj, (obj->flags & CR_OBJ_ENCODED) != 0 ? f->received_encoding : CR_ENC_IDENTITY, f->body, f->body_len);
        f->body = NULL;
        f->body_len = f->body_cap = 0;
        if (f->decision.storable && (obj->flags & CR_OBJ_ENCODED) == 0 && cr_fill_object_compressible(f->route, obj)) {
            /* compressing takes longer than the rest of a miss: the leader, when it still waits, is not kept waiting
             * for it. Not when nothing will be stored (an invalidation came first), nor for a private flight (not in
             * the table, so a request that comes meanwhile could not wait for the store: cr_flight_await_store) */
            if (f->in_table && status < 500 && !cr_store_epoch_moved(cr_rt.store, &f->epoch, obj))
                leader = find_leader(f);
            if (leader == NULL)
                cr_fill_object_compress(f->route, obj);
        }
    }
    obj = cr_object_finish(obj);
    cr_fill_object_set_freshness(obj, &f->decision, f->response_time_ms);

    /* stale-if-error also covers 500, 502, 503 and 504 answers */
    if ((status == 500 || status == 502 || status == 503 || status == 504) && answer_with_stale_copy(f)) {
        cr_object_release(&obj);
        return CR_OK;
    }

    f->result = obj;
    if (f->decision.storable) {
        f->outcome = OUTCOME_SERVE_ALL;
        if (leader != NULL) {
            pthread_mutex_lock(&cr_rt.flights->mutex);
            f->fetched = 1;
            pthread_mutex_unlock(&cr_rt.flights->mutex);
            /* stored now, without codings and marked so, before the leader is answered: a request that comes
             * before the copy with codings is stored finds this answer (never an older one) and waits for the copy */
            obj->flags |= CR_OBJ_CODINGS_PENDING;
            if (cr_store_insert_if_epoch(cr_rt.store, obj, &f->epoch) != CR_OK)
                obj->flags &= (uint16_t)~CR_OBJ_CODINGS_PENDING; /* not shared: a plain write */
            answer_leader_first(f, leader);
            f->codings_timer.cb = on_codings_timer;
            h2o_timeout_link(f->owner->ctx.loop, &f->owner->ctx.zero_timeout, &f->codings_timer);
            return CR_AGAIN;
        }
        store_result(f);
        return CR_OK;
    }
    CR_STAT_INC(f->owner->stats, not_stored);
    f->not_stored_reason = f->decision.reason != NULL ? f->decision.reason : "not-storable";
    if (status >= 500) {
        /* an error answer is shared by the whole herd: the failing upstream is asked once */
        f->outcome = OUTCOME_SERVE_ALL;
        if (f->stale != NULL)
            cr_store_remove_object(cr_rt.store, f->stale);
        return CR_OK;
    }
    f->outcome = OUTCOME_SERVE_LEADER;
    if (f->decision.per_request)
        return CR_OK; /* unstorable because of this request (Authorization, Cookie): others may still be served */
    if (f->stale != NULL)
        cr_store_remove_object(cr_rt.store, f->stale);
    insert_pass_marker(f, now);
    return CR_OK;
}

/* The fill's response is complete: the outcome, then (now or after the codings) everyone's answer. */
static void finish_fill(cr_flight_t *f)
{
    if (complete(f) != CR_AGAIN)
        publish(f);
}

static int on_fill_head(cr_fetch_t *fetch, int status, h2o_iovec_t reason, h2o_header_t *headers, size_t num_headers, int is_eos)
{
    cr_flight_t *f = fetch->data;
    const char *unstorable = NULL;
    cr_response_info_t ri;

    f->response_time_ms = h2o_now(f->owner->ctx.loop);
    f->status = status;

    if (status == 304 && f->stale != NULL) {
        /* the stored headers updated with the 304's, the body kept (RFC 9111 4.3.4) */
        if ((f->building = cr_fill_object_refreshed(f->stale, headers, num_headers, &ri)) == NULL) {
            fail_flight(f, 502, "internal_error", "could not build the refreshed object");
            publish(f);
            return -1;
        }
        cr_policy_decide(f->route, &f->qi, &ri, f->request_time_ms, f->response_time_ms, &f->decision);
        f->status = f->stale->status;
        f->refreshed = 1;
        CR_STAT_INC(f->owner->stats, revalidated);
        finish_fill(f);
        return is_eos ? 0 : -1;
    }

    cr_response_info_from_headers(status, headers, num_headers, &ri);
    cr_policy_decide(f->route, &f->qi, &ri, f->request_time_ms, f->response_time_ms, &f->decision);
    if (ri.has_content_length && ri.content_length > cr_rt.cfg->cache.max_object_size) {
        f->outcome = OUTCOME_PASS_ALL;
        insert_pass_marker(f, f->response_time_ms);
        publish(f);
        return -1;
    }
    if ((f->building = cr_fill_object_from_response(cr_str(f->key, f->keylen), status, headers, num_headers, flight_req_header,
                                                    f, &unstorable, &f->received_encoding)) == NULL)
        goto NoMemory;
    if (unstorable != NULL) {
        f->decision.storable = 0;
        f->decision.reason = unstorable;
        f->decision.per_request = strcmp(unstorable, "vary-too-long") == 0; /* leaves no hit-for-pass for the others */
    }
    if (ri.has_content_length && ri.content_length != 0) {
        if ((f->body = malloc(ri.content_length)) == NULL)
            goto NoMemory;
        f->body_cap = ri.content_length;
    }
    if (is_eos) {
        finish_fill(f);
    }
    return 0;

NoMemory:
    fail_flight(f, 502, "internal_error", "out of memory");
    publish(f);
    return -1;
}

static int on_fill_body(cr_fetch_t *fetch, h2o_buffer_t **input, int is_eos)
{
    cr_flight_t *f = fetch->data;
    size_t n = (*input)->size;

    if (n != 0) {
        if (f->body_len + n > cr_rt.cfg->cache.max_object_size) {
            f->outcome = OUTCOME_PASS_ALL;
            insert_pass_marker(f, h2o_now(f->owner->ctx.loop));
            publish(f);
            return -1;
        }
        if (f->body_len + n > f->body_cap) {
            size_t cap = f->body_cap * 2 > f->body_len + n ? f->body_cap * 2 : f->body_len + n + 4096;
            char *nb = realloc(f->body, cap);
            if (nb == NULL) {
                fail_flight(f, 502, "internal_error", "out of memory");
                publish(f);
                return -1;
            }
            f->body = nb;
            f->body_cap = cap;
        }
        memcpy(f->body + f->body_len, (*input)->bytes, n);
        f->body_len += n;
        h2o_buffer_consume(input, n);
    }
    if (is_eos) {
        finish_fill(f);
    }
    return 0;
}

static void on_fill_error(cr_fetch_t *fetch, cr_fetch_error_t err, const char *msg, int head_seen)
{
    cr_flight_t *f = fetch->data;
    if (err == CR_FETCH_ERR_BUSY) {
        /* nothing was sent: not an upstream error, and counted (corral_upstream_busy_total) rather than logged */
        fail_flight(f, 503, "upstream_busy", msg);
        publish(f);
        return;
    }
    CR_STAT_INC(f->owner->stats, upstream_errors);
    cr_log_error("upstream %s while filling %.*s: %s", err == CR_FETCH_ERR_TIMEOUT ? "timeout" : "error", (int)f->keylen, f->key,
                 msg);
    if (err == CR_FETCH_ERR_TIMEOUT)
        fail_flight(f, 504, "upstream_timeout", msg);
    else
        fail_flight(f, 502, err == CR_FETCH_ERR_CONNECT ? "upstream_unreachable" : "upstream_error", msg);
    publish(f);
}

static const cr_fetch_callbacks_t fill_callbacks = {on_fill_head, on_fill_body, on_fill_error};

/* Copies the leader's request headers (for Vary) into one arena owned by the flight, one entry per name: the field
 * lines of a repeated header joined in order with ", " ("; " for Cookie), as cr_req_header does. Quadratic in the
 * number of header lines, which libh2o bounds (100 for HTTP/1.1); this runs once per fill. */
static int copy_req_headers(cr_flight_t *f, h2o_req_t *req)
{
    size_t i, j, total = 0, n = 0;
    char *p;
    for (i = 0; i != req->headers.size; ++i)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 2;
    if ((f->req_headers = calloc(req->headers.size + 1, sizeof(*f->req_headers))) == NULL ||
        (f->req_header_arena = malloc(total + 1)) == NULL)
        return CR_ERROR;
    p = f->req_header_arena;
    for (i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        int is_cookie = h->name == &H2O_TOKEN_COOKIE->buf;
        for (j = 0; j != i && !h2o_memis(req->headers.entries[j].name->base, req->headers.entries[j].name->len, h->name->base,
                                         h->name->len);
             ++j)
            ;
        if (j != i)
            continue; /* joined into the entry of its first line */
        memcpy(p, h->name->base, h->name->len);
        f->req_headers[n].name = cr_str(p, h->name->len);
        p += h->name->len;
        f->req_headers[n].value.base = p;
        for (j = i; j != req->headers.size; ++j) {
            const h2o_header_t *hj = req->headers.entries + j;
            if (!h2o_memis(hj->name->base, hj->name->len, h->name->base, h->name->len))
                continue;
            if (j != i) {
                *p++ = is_cookie ? ';' : ',';
                *p++ = ' ';
            }
            if (hj->value.len != 0)
                memcpy(p, hj->value.base, hj->value.len);
            p += hj->value.len;
        }
        f->req_headers[n].value.len = (size_t)(p - f->req_headers[n].value.base);
        ++n;
    }
    f->num_req_headers = n;
    return CR_OK;
}

static cr_flight_t *flight_new(cr_thread_t *t, cr_lookup_t *lk, cr_object_t *stale)
{
    unsigned n = cr_rt.nthreads, i;
    cr_flight_t *f = calloc(1, sizeof(*f));
    h2o_iovec_t head;

    if (f == NULL)
        return NULL;
    f->magic = CR_FLIGHT_MAGIC;
    f->refcnt = 1; /* the fill's (and table link's) reference */
    f->has_waiters = calloc(n, 1);
    f->waiters = calloc(n, sizeof(*f->waiters));
    f->key = malloc(lk->keylen + 1);
    if (f->has_waiters == NULL || f->waiters == NULL || f->key == NULL || copy_req_headers(f, lk->req) != CR_OK)
        goto Error;
    for (i = 0; i != n; ++i)
        h2o_linklist_init_anchor(&f->waiters[i]);
    memcpy(f->key, lk->key, lk->keylen + 1);
    f->keylen = lk->keylen;
    f->hash = lk->hash;
    /* before the upstream is asked: an invalidation noted earlier concerns a write it has finished */
    cr_store_fill_epoch(cr_rt.store, cr_path_hash(cr_str(f->key, f->keylen)), &f->epoch);
    f->owner = t;
    f->route = lk->route;
    f->qi = lk->qi;
    if (stale != NULL) {
        cr_object_addref(stale);
        f->stale = stale;
    }
    {
        /* the key's path and query ("authority\npath?query[\n...]"): what the key ignores, a fill never sends */
        const char *t = memchr(lk->key, '\n', lk->keylen), *te;
        cr_fill_request_t fill = {lk->route, h2o_iovec_init(NULL, 0), stale};
        assert(t != NULL);
        ++t;
        te = memchr(t, '\n', lk->keylen - (size_t)(t - lk->key));
        fill.target = h2o_iovec_init(t, (size_t)((te != NULL ? te : lk->key + lk->keylen) - t));
        head = cr_build_upstream_head(lk->req, &fill);
    }
    if ((f->reqhead = malloc(head.len)) == NULL)
        goto Error;
    memcpy(f->reqhead, head.base, head.len);
    f->reqhead_len = head.len;
    return f;
Error:
    flight_release(&f);
    return NULL;
}

static void start_fill(cr_thread_t *t, cr_flight_t *f)
{
    f->fetch.cb = &fill_callbacks;
    f->fetch.data = f;
    f->fetch.reqbufs[0] = h2o_iovec_init(f->reqhead, f->reqhead_len);
    f->fetch.num_reqbufs = 1;
    f->fetch.is_head = 0;
    f->fetch.is_idempotent = 1;
    f->request_time_ms = h2o_now(t->ctx.loop);
    CR_STAT_INC(t->stats, upstream_requests);
    cr_fetch_start(t->upstream, &f->fetch);
}

static void on_waiter_timeout(h2o_timeout_entry_t *entry)
{
    cr_waiter_t *w = H2O_STRUCT_FROM_MEMBER(cr_waiter_t, timer, entry);
    waiter_detach(w);
    CR_STAT_INC(w->thread->stats, coalesce_timeouts);
    cr_pass_start(w->lk->req, w->lk->route,
                  cr_cache_status_fwd(w->lk->req, w->lk->fwd != NULL ? w->lk->fwd : "uri-miss", "detail=coalesce-timeout"), NULL);
}

/* Registers lk->req as a waiter of `f` (the caller holds the waiter's reference). Before the fetch starts: its
 * callbacks may run synchronously. */
static void add_waiter(cr_thread_t *t, cr_flight_t *f, cr_lookup_t *lk, int is_leader, int after_fetch)
{
    cr_waiter_t *w = h2o_mem_alloc_shared(&lk->req->pool, sizeof(*w), on_waiter_dispose);
    memset(w, 0, sizeof(*w));
    w->flight = f;
    w->lk = lk;
    w->thread = t;
    w->is_leader = is_leader;
    w->after_fetch = after_fetch;
    w->timer.cb = on_waiter_timeout;
    h2o_linklist_insert(&f->waiters[t->idx], &w->link);
    h2o_timeout_link(t->ctx.loop, cr_thread_timeout(t, lk->route->coalesce_timeout_ms), &w->timer);
}

/* caller holds the table mutex: joins `f` unless it has max_waiters already. Returns CR_OK or CR_DECLINED. */
static int do_join(cr_flight_t *f, cr_thread_t *t, const cr_lookup_t *lk)
{
    if (f->num_waiters >= lk->route->coalesce_max_waiters)
        return CR_DECLINED;
    ++f->num_waiters;
    __atomic_add_fetch(&f->live_waiters, 1, __ATOMIC_ACQ_REL);
    f->has_waiters[t->idx] = 1;
    flight_addref(f); /* the waiter's */
    return CR_OK;
}

int cr_flight_await_store(cr_thread_t *t, cr_lookup_t *lk)
{
    cr_flight_table_t *table = cr_rt.flights;
    cr_flight_t *f;
    int ret = CR_DECLINED;

    pthread_mutex_lock(&table->mutex);
    if ((f = do_find(table, lk->key, lk->keylen, lk->hash)) != NULL && f->fetched)
        ret = do_join(f, t, lk);
    pthread_mutex_unlock(&table->mutex);
    if (ret == CR_OK)
        add_waiter(t, f, lk, 0, 1);
    return ret;
}

int cr_flight_wait(cr_thread_t *t, cr_lookup_t *lk, cr_object_t *stale, int shared)
{
    cr_flight_table_t *table = cr_rt.flights;
    cr_flight_t *f = NULL, *created = NULL;
    int is_leader = 0, after_fetch = 0;

    if (shared) {
        pthread_mutex_lock(&table->mutex);
        f = do_find(table, lk->key, lk->keylen, lk->hash);
        if (f != NULL && do_join(f, t, lk) != CR_OK) {
            pthread_mutex_unlock(&table->mutex);
            CR_STAT_INC(t->stats, misses);
            return CR_DECLINED;
        }
        after_fetch = f != NULL && f->fetched;
        pthread_mutex_unlock(&table->mutex);
    }
    if (f == NULL) {
        if ((created = flight_new(t, lk, stale)) == NULL) {
            CR_STAT_INC(t->stats, misses);
            cr_send_json_error(lk->req, 503, "Service Unavailable", "no_memory", "out of memory");
            return CR_OK;
        }
        f = created;
        is_leader = 1;
        f->num_waiters = 1;
        f->live_waiters = 1; /* not shared yet */
        f->has_waiters[t->idx] = 1;
        flight_addref(f); /* the waiter's */
        if (shared) {
            pthread_mutex_lock(&table->mutex);
            {
                cr_flight_t *race = do_find(table, lk->key, lk->keylen, lk->hash);
                if (race == NULL) {
                    cr_flight_t **slot = &table->buckets[f->hash & (TABLE_BUCKETS - 1)];
                    f->hash_next = *slot;
                    *slot = f;
                    f->in_table = 1;
                } else {
                    /* another thread started one meanwhile: join it and drop ours */
                    ++race->num_waiters;
                    __atomic_add_fetch(&race->live_waiters, 1, __ATOMIC_ACQ_REL);
                    race->has_waiters[t->idx] = 1;
                    after_fetch = race->fetched;
                    flight_addref(race);
                }
                pthread_mutex_unlock(&table->mutex);
                if (race != NULL) {
                    flight_release(&f); /* waiter ref */
                    flight_release(&created);
                    f = race;
                    is_leader = 0;
                }
            }
        }
    }

    add_waiter(t, f, lk, is_leader, after_fetch);
    if (!after_fetch)
        CR_STAT_INC(t->stats, misses); /* one that came after the fetch is counted by its second lookup */
    if (is_leader)
        start_fill(t, f);
    return CR_OK;
}

void cr_flight_revalidate_background(cr_thread_t *t, cr_lookup_t *lk, cr_object_t *stale)
{
    cr_flight_table_t *table = cr_rt.flights;
    cr_flight_t *f;
    int started = 0;

    pthread_mutex_lock(&table->mutex);
    f = do_find(table, lk->key, lk->keylen, lk->hash);
    pthread_mutex_unlock(&table->mutex);
    if (f != NULL)
        return;
    if ((f = flight_new(t, lk, stale)) == NULL)
        return;
    f->background = 1;
    pthread_mutex_lock(&table->mutex);
    if (do_find(table, lk->key, lk->keylen, lk->hash) == NULL) {
        cr_flight_t **slot = &table->buckets[f->hash & (TABLE_BUCKETS - 1)];
        f->hash_next = *slot;
        *slot = f;
        f->in_table = 1;
        started = 1;
    }
    pthread_mutex_unlock(&table->mutex);
    if (!started) {
        flight_release(&f);
        return;
    }
    start_fill(t, f);
}
