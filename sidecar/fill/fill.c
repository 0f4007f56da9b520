/*
 * fill.c: the leader's fill of a flight (see fill.h and flight.h): the upstream fetch, the outcome decision, the
 * store, and the codings. Making the stored object from the response is cache/objbuild.c's; the table, the waiters
 * and publication are flight.c's.
 *
 * Invariants: everything here runs on the flight's owner thread, on fill fields no other thread touches before
 * publication (flight_int.h). The only lock taken is the table mutex, through cr_flight_mark_fetched. The config is
 * the generation the fill started with (f->cfg, retained by cr_fill_prepare, released by cr_fill_dispose).
 * The one exception: the codings of a large result are made on the worker pool (core/workq.h), whose thread runs
 * cr_fill_object_coded_copy on the fields of f->codings_job only (see on_codings_timer); the store and publication
 * stay on the owner's loop.
 */
#include "flight_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "corral/cache/objbuild.h"
#include "corral/http/http.h"
#include "corral/http/invalidate.h"
#include "corral/core/log.h"
#include "corral/fill/upstream_head.h"
#include "corral/tier/inval_ring.h"
#include "corral/tier/tier.h"

int cr_fill_stale_may_answer_error(const cr_object_t *stale, uint64_t now)
{
    return stale != NULL && (cr_object_flags(stale) & CR_OBJ_MUST_REVALIDATE) == 0 && stale->sie_ms != 0 &&
           cr_object_age_ms(stale, now) <= (uint64_t)stale->lifetime_ms + stale->sie_ms;
}

int cr_fill_stale_may_answer_unreachable(const cr_object_t *stale, uint64_t now, uint64_t window)
{
    return stale != NULL && cr_object_may_serve_stale(stale) && window != 0 &&
           cr_object_age_ms(stale, now) <= (uint64_t)stale->lifetime_ms + window;
}

cr_fill_verdict_t cr_fill_decide(const cr_fill_inputs_t *in)
{
    if (in->too_large)
        return CR_FILL_PASS_ALL;
    if (in->failed) {
        if (in->upstream_down)
            return cr_fill_stale_may_answer_error(in->stale, in->now) ||
                           cr_fill_stale_may_answer_unreachable(in->stale, in->now, in->stale_when_down_ms)
                       ? CR_FILL_STALE_UPSTREAM_DOWN
                       : CR_FILL_ERROR;
        if (cr_fill_stale_may_answer_error(in->stale, in->now))
            return CR_FILL_STALE;
        if (in->unreachable && cr_fill_stale_may_answer_unreachable(in->stale, in->now, in->stale_if_unreachable_ms))
            return CR_FILL_STALE_ORIGIN_DOWN;
        return CR_FILL_ERROR;
    }
    /* stale-if-error also covers 500, 502, 503 and 504 answers */
    if ((in->status == 500 || in->status == 502 || in->status == 503 || in->status == 504) &&
        cr_fill_stale_may_answer_error(in->stale, in->now))
        return CR_FILL_STALE;
    if (in->decision->storable)
        return CR_FILL_STORE;
    if (in->status >= 500)
        return CR_FILL_SHARE; /* an error answer is shared by the whole herd: the failing upstream is asked once */
    /* unstorable because of this request (Authorization, Cookie): others may still be served */
    return in->decision->per_request ? CR_FILL_LEADER_ONLY_PER_REQUEST : CR_FILL_LEADER_ONLY;
}

/* Makes the stale copy the flight's answer (stale-if-error, or the origin is down: `why` is the Cache-Status detail). */
static void answer_with_stale_copy(cr_flight_t *f, const char *why)
{
    f->outcome = OUTCOME_SERVE_ALL;
    f->result = f->stale;
    f->stale = NULL;
    f->result_is_stale = 1;
    f->stale_detail = why;
}

void cr_fill_fail(cr_flight_t *f, int status, const char *code, const char *msg)
{
    cr_fill_inputs_t in = {.failed = 1, .stale = f->stale, .now = h2o_now(f->owner->ctx.loop), .unreachable = f->unreachable,
                           .stale_if_unreachable_ms = f->route->stale_if_unreachable_ms,
                           .upstream_down = f->upstream_down, .stale_when_down_ms = f->route->serve_stale_when_down_ms};
    switch (cr_fill_decide(&in)) {
    case CR_FILL_STALE_UPSTREAM_DOWN:
        answer_with_stale_copy(f, f->upstream_down == CR_FILL_DOWN_SHED ? "detail=shed" : "detail=upstream-down");
        CR_STAT_INC(f->owner->stats, upstream_down_stale);
        return;
    case CR_FILL_STALE:
        answer_with_stale_copy(f, "detail=stale-if-error");
        return;
    case CR_FILL_STALE_ORIGIN_DOWN:
        answer_with_stale_copy(f, "detail=origin-down");
        return;
    default:
        break;
    }
    f->outcome = OUTCOME_ERROR;
    f->error_status = status;
    f->error_code = code;
    snprintf(f->error_msg, sizeof(f->error_msg), "%s", msg);
}

static void fail_and_publish(cr_flight_t *f, int status, const char *code, const char *msg)
{
    cr_fill_fail(f, status, code, msg);
    cr_flight_publish(f);
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
    CR_STAT_INC(f->owner->stats, pass_markers);
}

/* Too large to buffer: everyone passes, and a hit-for-pass marker sends the next ones straight to the upstream. */
static void pass_all_and_publish(cr_flight_t *f, uint64_t now)
{
    f->outcome = OUTCOME_PASS_ALL;
    insert_pass_marker(f, now);
    cr_flight_publish(f);
}

/* Offers the result to the store (a storable answer) and notes how that went. Returns CR_OK (stored), CR_DECLINED
 * (an invalidation came first) or CR_ERROR (the store refused it: too large, or no memory for its tags). */
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

/*
 * Identity bodies of at least this many bytes get their codings made on the worker pool (core/workq.h), smaller
 * ones on the loop. The codings cost about 10 ms per MiB of typical text (brotli at quality 5, then gzip at level 6)
 * and up to 65 ms per MiB of random letters (measured by tests/e2e/test_codings_offload.c): under 64 KiB that is
 * 0.6 to 4 ms of loop time, while a round trip through the pool (its queue lock, a wake-up of the loop through its
 * h2o_multithread queue, two thread switches, the body read on another core) costs tens of microseconds and one more
 * loop iteration before the store, and most fills are small: below it, the pool would mostly add hops.
 */
#define CR_FILL_CODINGS_POOL_MIN ((size_t)64 << 10)

/* The copy with the codings (`full`, NULL when it could not be made) is stored and every other waiter answered from
 * it: the end of the codings window, on the owner's loop. */
static void store_codings_and_publish(cr_flight_t *f, cr_object_t *full)
{
    cr_object_t *identity_only = f->result;

    if (full != NULL) {
        cr_fill_object_set_freshness(f->cfg, full, &f->decision, f->response_time_ms);
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
    cr_flight_publish(f);
}

/* On a pool thread: the copy and its codings, from the job's fields only (cr_codings_job_t). */
static void run_codings_job(cr_workq_job_t *job)
{
    cr_codings_job_t *cj = H2O_STRUCT_FROM_MEMBER(cr_codings_job_t, super, job);
    cj->coded = cr_fill_object_coded_copy(cj->route, cj->identity);
}

/* On the owner's loop: the job came back (ran, or was cancelled by cr_workq_stop: then the codings are made here). */
static void on_codings_job_done(cr_workq_job_t *job, int status)
{
    cr_flight_t *f = H2O_STRUCT_FROM_MEMBER(cr_flight_t, codings_job.super, job);
    cr_object_t *full = f->codings_job.coded;

    f->codings_job.coded = NULL;
    if (status != CR_OK)
        full = cr_fill_object_coded_copy(f->route, f->result);
    store_codings_and_publish(f, full); /* drops the fill's reference */
    cr_flight_release(&f);              /* the job's */
}

/*
 * Runs from the owner's zero timeout, after the leader's answer was handed to h2o (an HTTP/1.1 answer is written by
 * then, and an HTTP/2 one is flushed by h2o's own zero-timeout entry, linked before this one): makes the codings
 * into a copy of the result, stores the copy, and answers every other waiter from it. A large body's codings are
 * made on the worker pool, and the store and the answers follow when the job comes back to this loop
 * (on_codings_job_done); meanwhile the flight stays in the table, as it does while they are made here. When the pool
 * refuses the job (queue full, stopping) or there is none, they are made here.
 */
static void on_codings_timer(h2o_timeout_entry_t *entry)
{
    cr_flight_t *f = H2O_STRUCT_FROM_MEMBER(cr_flight_t, codings_timer, entry);
    cr_workq_owner_t *pool = &f->owner->workq_owner;

    if (pool->workq != NULL && cr_object_body(f->result, CR_ENC_IDENTITY).len >= CR_FILL_CODINGS_POOL_MIN) {
        f->codings_job.route = f->route;
        f->codings_job.identity = f->result;
        f->codings_job.coded = NULL;
        if (cr_workq_submit(pool, &f->codings_job.super, run_codings_job, on_codings_job_done) == CR_OK) {
            /* the job's reference (the fill's own is dropped by the publish in its done); taken after the submit,
             * as done runs on this thread only, never before this returns */
            cr_flight_addref(f);
            return;
        }
    }
    store_codings_and_publish(f, cr_fill_object_coded_copy(f->route, f->result));
}

/*
 * Makes the finished object, stores it (or not) and picks the outcome. Returns CR_OK when the flight is ready to
 * publish, or CR_AGAIN when the leader was answered first and the codings, the store and the other waiters follow
 * from the zero timeout (on_codings_timer publishes).
 */
static int complete(cr_flight_t *f)
{
    cr_object_t *obj = f->building;
    cr_waiter_t *leader = NULL;
    uint64_t now = h2o_now(f->owner->ctx.loop);
    int status = f->status;
    cr_fill_inputs_t in = {.status = status, .decision = &f->decision, .stale = f->stale, .now = now};
    cr_fill_verdict_t verdict;

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
             * the table, so a request that comes meanwhile could not wait for the store: CR_FLIGHT_AWAIT_STORE) */
            if (f->in_table && status < 500 && !cr_store_epoch_moved(cr_rt.store, &f->epoch, obj))
                leader = cr_flight_find_leader(f);
            if (leader == NULL)
                cr_fill_object_compress(f->route, obj);
        }
    }
    obj = cr_object_finish(obj);
    cr_fill_object_set_freshness(f->cfg, obj, &f->decision, f->response_time_ms);

    switch (verdict = cr_fill_decide(&in)) {
    case CR_FILL_STALE:
        answer_with_stale_copy(f, "detail=stale-if-error");
        cr_object_release(&obj);
        return CR_OK;
    case CR_FILL_STORE:
        f->result = obj;
        f->outcome = OUTCOME_SERVE_ALL;
        if (leader != NULL) {
            cr_flight_mark_fetched(f);
            /* stored now, without codings and marked so, before the leader is answered: a request that comes
             * before the copy with codings is stored finds this answer (never an older one) and waits for the copy */
            obj->flags |= CR_OBJ_CODINGS_PENDING;
            if (cr_store_insert_if_epoch(cr_rt.store, obj, &f->epoch) != CR_OK)
                obj->flags &= (uint16_t)~CR_OBJ_CODINGS_PENDING; /* not shared: a plain write */
            cr_flight_answer_leader_first(f, leader);
            f->codings_timer.cb = on_codings_timer;
            h2o_timeout_link(f->owner->ctx.loop, &f->owner->ctx.zero_timeout, &f->codings_timer);
            return CR_AGAIN;
        }
        store_result(f);
        return CR_OK;
    case CR_FILL_SHARE:
    case CR_FILL_LEADER_ONLY:
    case CR_FILL_LEADER_ONLY_PER_REQUEST:
        break;
    case CR_FILL_PASS_ALL:
    case CR_FILL_ERROR:
    case CR_FILL_STALE_ORIGIN_DOWN:
    case CR_FILL_STALE_UPSTREAM_DOWN:
        assert(!"not a verdict for a complete response");
        break;
    }
    f->result = obj;
    CR_STAT_INC(f->owner->stats, not_stored);
    f->not_stored_reason = f->decision.reason != NULL ? f->decision.reason : "not-storable";
    switch (verdict) {
    case CR_FILL_SHARE:
        f->outcome = OUTCOME_SERVE_ALL;
        if (f->stale != NULL)
            cr_store_remove_object(cr_rt.store, f->stale);
        break;
    case CR_FILL_LEADER_ONLY:
        f->outcome = OUTCOME_SERVE_LEADER;
        if (f->stale != NULL)
            cr_store_remove_object(cr_rt.store, f->stale);
        insert_pass_marker(f, now);
        break;
    default:
        f->outcome = OUTCOME_SERVE_LEADER;
        break;
    }
    return CR_OK;
}

/* The fill's response is complete: the outcome, then (now or after the codings) everyone's answer. */
static void finish_fill(cr_flight_t *f)
{
    if (complete(f) != CR_AGAIN)
        cr_flight_publish(f);
}

static int flight_req_header(void *ctx, const char *lname, size_t lnamelen, cr_str_t *value)
{
    cr_flight_t *f = ctx;
    size_t i;
    for (i = 0; i != f->num_req_headers; ++i)
        if (f->req_headers[i].name.len == lnamelen && memcmp(f->req_headers[i].name.base, lname, lnamelen) == 0) {
            *value = f->req_headers[i].value;
            return 1;
        }
    return 0;
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
        if ((f->building = cr_fill_object_refreshed(f->cfg, f->stale, headers, num_headers, &ri)) == NULL) {
            fail_and_publish(f, 502, "internal_error", "could not build the refreshed object");
            return -1;
        }
        cr_policy_decide(f->route, &f->qi, &ri, f->request_time_ms, f->response_time_ms, &f->decision);
        f->status = f->stale->status;
        f->refreshed = 1;
        CR_STAT_INC(f->owner->stats, revalidated);
        finish_fill(f);
        return is_eos ? 0 : -1;
    }

    cr_response_info_from_headers(f->cfg, status, headers, num_headers, &ri);
    cr_policy_decide(f->route, &f->qi, &ri, f->request_time_ms, f->response_time_ms, &f->decision);
    if (ri.has_content_length && ri.content_length > f->cfg->cache.max_object_size) {
        pass_all_and_publish(f, f->response_time_ms);
        return -1;
    }
    if ((f->building = cr_fill_object_from_response(f->cfg, cr_str(f->key, f->keylen), status, headers, num_headers,
                                                    flight_req_header, f, &unstorable, &f->received_encoding)) == NULL)
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
    fail_and_publish(f, 502, "internal_error", "out of memory");
    return -1;
}

static int on_fill_body(cr_fetch_t *fetch, h2o_buffer_t **input, int is_eos)
{
    cr_flight_t *f = fetch->data;
    size_t n = (*input)->size;

    if (n != 0) {
        if (f->body_len + n > f->cfg->cache.max_object_size) {
            pass_all_and_publish(f, h2o_now(f->owner->ctx.loop));
            return -1;
        }
        if (f->body_len + n > f->body_cap) {
            size_t cap = f->body_cap * 2 > f->body_len + n ? f->body_cap * 2 : f->body_len + n + 4096;
            char *nb = realloc(f->body, cap);
            if (nb == NULL) {
                fail_and_publish(f, 502, "internal_error", "out of memory");
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
    if (err == CR_FETCH_ERR_SHED || err == CR_FETCH_ERR_DOWN) {
        /* nothing was sent: a stale copy may stand in (cr_fill_decide), else 503 with Retry-After (serve/deliver.c) */
        f->upstream_down = err == CR_FETCH_ERR_SHED ? CR_FILL_DOWN_SHED : CR_FILL_DOWN_UNHEALTHY;
        if (err == CR_FETCH_ERR_SHED)
            CR_STAT_INC(f->owner->stats, upstream_shed);
        else
            CR_STAT_INC(f->owner->stats, upstream_fail_fast);
        fail_and_publish(f, 503, err == CR_FETCH_ERR_SHED ? "upstream_shed" : "upstream_down", msg);
        return;
    }
    if (err == CR_FETCH_ERR_BUSY) {
        /* nothing was sent: not an upstream error, and counted (corral_upstream_busy_total) rather than logged */
        fail_and_publish(f, 503, "upstream_busy", msg);
        return;
    }
    CR_STAT_INC(f->owner->stats, upstream_errors);
    /* refused, reset or closed before any answer: the origin is gone, and a stale copy may stand in (cr_fill_decide) */
    f->unreachable = !head_seen && (err == CR_FETCH_ERR_CONNECT || err == CR_FETCH_ERR_CLOSED);
    cr_log_error("upstream %s while filling %.*s: %s", err == CR_FETCH_ERR_TIMEOUT ? "timeout" : "error", (int)f->keylen, f->key,
                 msg);
    if (err == CR_FETCH_ERR_TIMEOUT)
        fail_and_publish(f, 504, "upstream_timeout", msg);
    else
        fail_and_publish(f, 502, err == CR_FETCH_ERR_CONNECT ? "upstream_unreachable" : "upstream_error", msg);
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

int cr_fill_prepare(cr_flight_t *f, const cr_fill_req_t *fr, cr_object_t *stale)
{
    h2o_iovec_t head;

    f->cfg = cr_config_retain(fr->cfg);
    f->route = fr->route;
    f->qi = fr->qi;
    if (stale != NULL) {
        cr_object_addref(stale);
        f->stale = stale;
    }
    if (copy_req_headers(f, fr->req) != CR_OK)
        return CR_ERROR;
    /* before the upstream is asked: an invalidation noted earlier concerns a write it has finished */
    cr_store_fill_epoch(cr_rt.store, cr_path_hash(cr_str(f->key, f->keylen)), &f->epoch);
    /* likewise across pods: what this pod has seen of the invalidation log when the fill began travels with an L2
     * copy of its answer, so a pod that knows a later invalidation covering it refuses the copy */
    f->log_pos = cr_rt.tier != NULL ? cr_inval_ring_top(cr_rt.tier->ring) : 0;
    {
        /* the key's path and query ("authority\npath?query[\n...]"): what the key ignores, a fill never sends */
        const char *t = memchr(f->key, '\n', f->keylen), *te;
        cr_fill_request_t fill = {fr->route, h2o_iovec_init(NULL, 0), stale};
        assert(t != NULL);
        ++t;
        te = memchr(t, '\n', f->keylen - (size_t)(t - f->key));
        fill.target = h2o_iovec_init(t, (size_t)((te != NULL ? te : f->key + f->keylen) - t));
        head = cr_build_upstream_head(fr->req, &fill);
    }
    if ((f->reqhead = malloc(head.len)) == NULL)
        return CR_ERROR;
    memcpy(f->reqhead, head.base, head.len);
    f->reqhead_len = head.len;
    return CR_OK;
}

void cr_fill_start(cr_thread_t *t, cr_flight_t *f)
{
    /* the shared tier first, when it applies (l2fill.c); it fetches from the upstream itself when L2 has nothing */
    if (cr_l2_begin(t, f) != CR_OK)
        cr_fill_fetch(t, f);
}

void cr_fill_fetch(cr_thread_t *t, cr_flight_t *f)
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

void cr_fill_dispose(cr_flight_t *f)
{
    cr_object_release(&f->stale);
    cr_object_release(&f->building);
    cr_object_release(&f->result);
    cr_object_release(&f->codings_job.coded); /* NULL: a job's done always takes it */
    free(f->body);
    free(f->reqhead);
    free(f->req_headers);
    free(f->req_header_arena);
    cr_config_release(&f->cfg);
}
