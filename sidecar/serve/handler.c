/*
 * handler.c: the cache handler. For each admitted request (the guard's handler runs first, guard.c): pick the route,
 * build the key, look it up, then hit, fill (single-flight), or pass.
 *
 * Flow: on_req takes the config generation once and fills the request's cr_lookup_t; lookup_and_answer answers a
 * hit itself, and otherwise asks the flight table once (cr_flight_join, whose mode says what this lookup wants:
 * wait for a store, revalidate in background, refill, fill). A waiting request hears its flight's outcome through
 * cr_deliver (deliver.c), which may send it back here (cr_handler_lookup, cr_handler_restart).
 * Generations: the guard handler, registered ahead of this one, brings the thread's generation up to date once per
 * request (cr_thread_config, conf/generation.h), so on_req reads t->cfg and both see the same one. A hit answered
 * within on_req borrows the thread's reference: the thread swaps it only at the start of another request on this loop, and
 * cr_respond_object keeps no config or route pointer past its own call (respond.c). A request that waits on a
 * flight retains the generation when it starts waiting (join) and drops it when it is disposed; a pass holds its
 * own (pass.c).
 * Invariants: runs on the request's worker thread only. A hit takes one object reference that is tied to the
 * request's pool and dropped when the request is disposed, so the body is sent by reference (no copy) and an
 * eviction or purge during the send is harmless. The hit path takes no lock (the store's lookup is lock-free) and
 * writes nothing shared between threads: statistics are per thread, and the lookup's and the response's references
 * are pins of the thread (pin.h), released with cr_pin_release() on it.
 * Key safety: routes are matched on the path's match form (key.h) and a path an upstream could read two ways is
 * never cached; a request with Cookie on a `cookies: pass` route sees only objects stored from explicitly shareable
 * responses (CR_OBJ_SHAREABLE) and fills for itself alone.
 */
#include "corral/serve/purge.h"
#include "corral/serve/handler.h"

#include <stdio.h>

#include "corral/fill/flight.h"
#include "corral/serve/deliver.h"
#include "corral/serve/guard.h"
#include "corral/serve/key_memo.h"
#include "corral/http/http.h"
#include "corral/http/key.h"
#include "corral/core/log.h"
#include "corral/core/accesslog.h"
#include "corral/serve/pass.h"
#include "corral/serve/ratelimit.h"
#include "corral/serve/respond.h"
#include "corral/cache/pin.h"
#include "corral/conf/generation.h"
#include "corral/conf/route.h"
#include "corral/core/runtime.h"
#include "corral/cache/store.h"
#include "corral/serve/writethrough.h"

#define CR_MAX_KEY 8192

h2o_iovec_t cr_cache_status_fwd(h2o_req_t *req, const char *fwd, const char *extra)
{
    if (extra == NULL || extra[0] == '\0')
        return h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("corral; fwd=")), h2o_iovec_init(fwd, strlen(fwd)));
    return h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("corral; fwd=")), h2o_iovec_init(fwd, strlen(fwd)),
                      h2o_iovec_init(H2O_STRLIT("; ")), h2o_iovec_init(extra, strlen(extra)));
}


static int req_header_lookup(void *ctx, const char *lname, size_t lnamelen, cr_str_t *value)
{
    h2o_iovec_t v = cr_req_header_by_name(ctx, lname, lnamelen);
    if (v.base == NULL)
        return 0;
    *value = cr_str(v.base, v.len);
    return 1;
}

int cr_handler_variant_matches(void *_lk, const cr_object_t *obj)
{
    cr_lookup_t *lk = _lk;
    char buf[4096];
    size_t len;

    if (obj->num_vary == 0)
        return 1;
    len = cr_variant_key(cr_object_vary_names(obj), obj->num_vary, req_header_lookup, lk->fill.req, buf, sizeof(buf));
    return len != SIZE_MAX && len == cr_object_variant_key(obj).len && memcmp(buf, cr_object_variant_key(obj).base, len) == 0;
}

/* The store lookup's filter: the variant fits, and a request with Cookie on a `cookies: pass` route sees only
 * objects whose response was explicitly shareable (or a hit-for-pass marker). A flight's answer to its own leader is
 * not filtered so: it was fetched for that request. */
static int lookup_matches(void *_lk, const cr_object_t *obj)
{
    cr_lookup_t *lk = _lk;
    if (lk->cookie_pass && (cr_object_flags(obj) & (CR_OBJ_SHAREABLE | CR_OBJ_PASS)) == 0)
        return 0; /* cacheable only by the route's ttl, a heuristic or max-age: never for a request with Cookie */
    return cr_handler_variant_matches(lk, obj);
}

static h2o_iovec_t hit_status(h2o_req_t *req, const cr_object_t *obj, uint64_t now)
{
    int64_t left = (int64_t)obj->lifetime_ms - (int64_t)cr_object_age_ms(obj, now);
    /* stale by any amount shows a negative ttl, also at the very millisecond it turns stale (left == 0) */
    int64_t ttl = left > 0 ? left / 1000 : left == 0 ? -1 : -((-left + 999) / 1000);
    char *buf = h2o_mem_alloc_pool(&req->pool, 48);
    memcpy(buf, "corral; hit; ttl=", 17);
    return h2o_iovec_init(buf, 17 + cr_i64toa(ttl, buf + 17));
}

static void pass_with_status(h2o_req_t *req, const cr_config_t *cfg, const char *fwd, const char *extra)
{
    cr_pass_start(req, cfg, NULL, cr_cache_status_fwd(req, fwd, extra), NULL);
}

static void on_generation_dispose(void *p)
{
    cr_config_release((const cr_config_t **)p); /* any thread may free a generation: the count is atomic */
}

void cr_lookup_hold_generation(cr_lookup_t *lk)
{
    const cr_config_t **slot;

    if (lk->holds_cfg)
        return;
    slot = h2o_mem_alloc_shared(&lk->fill.req->pool, sizeof(*slot), on_generation_dispose);
    *slot = cr_config_retain(lk->fill.cfg);
    lk->holds_cfg = 1;
}

/* Whether a stored object may answer a request over its route's rate limit (serve_stale): any age, unless it was
 * stored with must-revalidate / proxy-revalidate / no-cache (stale, it may never be served unvalidated). */
static int stale_answers_limit(const cr_route_config_t *route, const cr_object_t *obj, uint64_t now)
{
    return obj != NULL && route->rate_limit.serve_stale &&
           (cr_object_is_fresh(obj, now) || cr_object_may_serve_stale(obj));
}

/* The answer to a request over its route's limit: from obj when stale_answers_limit allows it (labelled stale when
 * stat is given), else 429. */
static void answer_over_limit(h2o_req_t *req, const cr_config_t *cfg, const cr_route_config_t *route, cr_object_t *obj,
                              const cr_rl_verdict_t *v, cr_reqstat_t *stat)
{
    if (stale_answers_limit(route, obj, h2o_now(cr_thread_of(req)->ctx.loop))) {
        cr_reqstats_rate_limited(route->stat_slot);
        if (stat != NULL)
            cr_reqstat_outcome(stat, CR_OUTCOME_STALE);
        cr_respond_object(req, cfg, route, obj, cr_cache_status_fwd(req, "stale", "detail=rate-limited"));
        return;
    }
    cr_ratelimit_reject(req, route, v);
}

/* The route's rate limit where the request would reach the API (upstream: 1) or as it is matched (0): returns 1
 * when it is over the limit and has been answered (answer_over_limit), 0 to go on. */
static int limited(h2o_req_t *req, const cr_config_t *cfg, const cr_route_config_t *route, cr_object_t *obj, int upstream)
{
    cr_rl_verdict_t v;

    if (!cr_ratelimit_applies(route, upstream) || cr_ratelimit_take(req, route, &v))
        return 0;
    answer_over_limit(req, cfg, route, obj, &v, NULL);
    return 1;
}

/* A bypass (to the API, not stored) from where the route's limits apply: over `applies_to: all` (over_us: the
 * verdict's retry time, nonzero) or over an upstream limit, 429. */
static void pass_limited(h2o_req_t *req, const cr_config_t *cfg, const cr_route_config_t *route, uint64_t over_us, const char *extra)
{
    cr_rl_verdict_t v = {0, 0, over_us};

    if (over_us != 0)
        cr_ratelimit_reject(req, route, &v);
    else if (!limited(req, cfg, route, NULL, 1))
        pass_with_status(req, cfg, "bypass", extra);
}

/* cr_flight_join; a request that waits (its answer comes later, through cr_deliver) holds its generation until it
 * is disposed. A fill or refill (a miss: it nearly always waits, and its flight may answer it within the call)
 * takes the reference before the call. The other modes are a hit's way (a stale hit asks whether a fresher copy is
 * being stored) and nearly always declined: they take it only when the request does wait, after the call, while the
 * thread's reference still covers it (such a wait is answered later, from the loop, never within the call). */
static int join(cr_thread_t *t, cr_lookup_t *lk, cr_object_t *stale, cr_flight_mode_t mode, int shared)
{
    int rc;

    if (mode == CR_FLIGHT_FILL || mode == CR_FLIGHT_REFILL)
        cr_lookup_hold_generation(lk);
    rc = cr_flight_join(t, &lk->fill, stale, mode, shared);
    if (rc == CR_OK || rc == CR_AGAIN)
        cr_lookup_hold_generation(lk);
    return rc;
}

/* After cr_flight_join for a fill: CR_OK or CR_AGAIN (the request waits), or what it gets when the flight would not
 * take it. */
static void fill_refused(cr_lookup_t *lk, int rc)
{
    if (rc == CR_DECLINED) {
        cr_reqstat_outcome(lk->stat, CR_OUTCOME_BYPASS);
        pass_with_status(lk->fill.req, lk->fill.cfg, lk->fwd, "detail=too-many-waiters");
    } else if (rc == CR_ERROR)
        cr_send_json_error(lk->fill.req, 503, "Service Unavailable", "no_memory", "out of memory");
}

/* Looks the key up and answers: hit, stale hit with background revalidation, or a fill. */
static void lookup_and_answer(cr_thread_t *t, cr_lookup_t *lk)
{
    h2o_req_t *req = lk->fill.req;
    const cr_config_t *cfg = lk->fill.cfg;
    const cr_route_config_t *route = lk->fill.route;
    uint64_t now = h2o_now(t->ctx.loop);
    size_t num_variants = 0;
    cr_object_t *obj =
        cr_store_lookup_pinned(cr_rt.store, lk->fill.key, lk->fill.keylen, lk->fill.hash, lookup_matches, lk, &num_variants);
    const cr_request_info_t *qi = &lk->fill.qi;
    int shared = route->coalesce && !lk->cookie_pass, rc;

    cr_reqstat_outcome(lk->stat, CR_OUTCOME_MISS); /* unless answered from the store or passed below */

    if (obj != NULL && (cr_object_flags(obj) & CR_OBJ_PASS) != 0) {
        if (cr_object_age_ms(obj, now) < obj->lifetime_ms) {
            cr_pin_release(&obj);
            cr_reqstat_outcome(lk->stat, CR_OUTCOME_BYPASS);
            pass_limited(req, cfg, route, lk->rl_over_us, "detail=hit-for-pass");
            return;
        }
        cr_store_remove_object(cr_rt.store, obj);
        cr_pin_release(&obj);
        num_variants = 0;
    }
    if (lk->rl_over_us != 0) { /* applies_to: all, over the limit, serve_stale: whatever is stored, else 429 */
        cr_rl_verdict_t v = {0, 0, lk->rl_over_us};
        answer_over_limit(req, cfg, route, obj, &v, lk->stat);
        cr_pin_release(&obj);
        return;
    }

    if (obj != NULL) {
        uint64_t age = cr_object_age_ms(obj, now);
        int request_no_cache = (qi->cc.flags & CR_CC_NO_CACHE) != 0;
        if (!request_no_cache && cr_object_is_fresh(obj, now) && cr_policy_request_accepts_fresh(qi, age, obj->lifetime_ms)) {
            /* stored a moment ago by a miss answered before its codings were made: wait for the copy with them */
            if ((cr_object_flags(obj) & CR_OBJ_CODINGS_PENDING) != 0 &&
                join(t, lk, NULL, CR_FLIGHT_AWAIT_STORE, 0) == CR_AGAIN) {
                cr_pin_release(&obj);
                return;
            }
            CR_STAT_INC(t->stats, hits);
            cr_reqstat_outcome(lk->stat, CR_OUTCOME_HIT);
            cr_respond_object(req, cfg, route, obj, hit_status(req, obj, now));
            cr_pin_release(&obj);
            return;
        }
        /* what this lookup does unless a fresher answer is being stored this moment (then it waits for that store
         * and looks up again): one call into the flight table decides both */
        if (!request_no_cache && cr_object_may_serve_stale(obj)) {
            /* stale: the client may accept it (max-stale), or stale-while-revalidate allows it once in background */
            if (cr_policy_request_accepts_stale(qi, age, obj->lifetime_ms)) {
                if (join(t, lk, NULL, CR_FLIGHT_AWAIT_STORE, 0) == CR_DECLINED) {
                    CR_STAT_INC(t->stats, stale);
                    cr_reqstat_outcome(lk->stat, CR_OUTCOME_STALE);
                    cr_respond_object(req, cfg, route, obj, hit_status(req, obj, now));
                }
                cr_pin_release(&obj);
                return;
            }
            if (obj->swr_ms != 0 && !lk->cookie_pass && age < (uint64_t)obj->lifetime_ms + obj->swr_ms && (qi->cc.flags & CR_CC_ONLY_IF_CACHED) == 0 &&
                qi->cc.max_age == CR_CC_UNSET && qi->cc.min_fresh == CR_CC_UNSET) {
                cr_rl_verdict_t v;
                /* declined: not waiting, and a background revalidation runs (started now, or already in flight); over
                 * an upstream rate limit the stale answer goes out without one */
                if ((cr_ratelimit_applies(route, 1) && !cr_ratelimit_take(req, route, &v)) ||
                    join(t, lk, obj, CR_FLIGHT_REVALIDATE, 1) == CR_DECLINED) {
                    CR_STAT_INC(t->stats, stale);
                    cr_reqstat_outcome(lk->stat, CR_OUTCOME_STALE);
                    cr_respond_object(req, cfg, route, obj, cr_cache_status_fwd(req, "stale", "detail=stale-while-revalidate"));
                }
                cr_pin_release(&obj);
                return;
            }
        }
        if ((qi->cc.flags & CR_CC_ONLY_IF_CACHED) != 0) {
            if (join(t, lk, NULL, CR_FLIGHT_AWAIT_STORE, 0) == CR_DECLINED)
                cr_send_json_error(req, 504, "Gateway Timeout", "only_if_cached", "no fresh stored response");
            cr_pin_release(&obj);
            return;
        }
        if (limited(req, cfg, route, obj, 1)) {
            cr_pin_release(&obj);
            return;
        }
        rc = join(t, lk, obj, CR_FLIGHT_REFILL, shared);
        cr_pin_release(&obj);
        if (rc != CR_AGAIN) /* one waiting for a store goes forward, if it does, from its second lookup */
            lk->fwd = request_no_cache ? "request" : "stale";
        fill_refused(lk, rc);
        return;
    }

    /* an answer fetched a moment ago may be having its codings made: these would otherwise not wait for its store */
    if ((qi->cc.flags & (CR_CC_ONLY_IF_CACHED | CR_CC_NO_STORE)) != 0 &&
        join(t, lk, NULL, CR_FLIGHT_AWAIT_STORE, 0) == CR_AGAIN)
        return;
    if ((qi->cc.flags & CR_CC_ONLY_IF_CACHED) != 0) {
        cr_send_json_error(req, 504, "Gateway Timeout", "only_if_cached", "nothing stored for this request");
        return;
    }
    lk->fwd = num_variants != 0 ? "vary-miss" : "uri-miss";
    if (limited(req, cfg, route, NULL, 1))
        return;
    if ((qi->cc.flags & CR_CC_NO_STORE) != 0) {
        cr_reqstat_outcome(lk->stat, CR_OUTCOME_PASS);
        pass_with_status(req, cfg, "request", "detail=no-store");
        return;
    }
    if (cr_req_header(req, H2O_TOKEN_IF_NONE_MATCH).base != NULL || cr_req_header(req, H2O_TOKEN_IF_MODIFIED_SINCE).base != NULL) {
        /* a conditional miss: a running fill answers it (a 304 from the stored object, respond.c); else it goes
         * upstream alone with its validators and a 304 comes back as it is. It never leads a shared fill, which
         * carries no client's validators, so nothing but full responses is stored (Varnish passes these too) */
        if (shared && (rc = join(t, lk, NULL, CR_FLIGHT_JOIN, 1)) != CR_DECLINED) {
            fill_refused(lk, rc);
            return;
        }
        cr_reqstat_outcome(lk->stat, CR_OUTCOME_PASS);
        pass_with_status(req, cfg, lk->fwd, "detail=conditional");
        return;
    }
    fill_refused(lk, join(t, lk, NULL, CR_FLIGHT_FILL, shared));
}

void cr_handler_lookup(cr_lookup_t *lk)
{
    lookup_and_answer(cr_thread_of(lk->fill.req), lk);
}

void cr_handler_restart(cr_lookup_t *lk)
{
    cr_thread_t *t = cr_thread_of(lk->fill.req);
    if (lk->restarts++ >= 1) {
        cr_reqstat_outcome(lk->stat, CR_OUTCOME_BYPASS);
        pass_with_status(lk->fill.req, lk->fill.cfg, "vary-miss", "detail=variant-changed");
        return;
    }
    lookup_and_answer(t, lk);
}

static int is_method(h2o_iovec_t m, const char *lit, size_t len)
{
    return h2o_memis(m.base, m.len, lit, len);
}

/* Does the key's path part (cr_key_build's "authority\npath[?query]...") equal the request's raw path part? Not when
 * the request path was not in normalized form ("/a/../b", "%2E", "%7e"). */
static int key_path_is_request_path(const char *key, size_t keylen, h2o_iovec_t path)
{
    const char *p = memchr(key, '\n', keylen), *end = key + keylen, *q;
    size_t plen = 0;

    if (p == NULL)
        return 0;
    for (q = ++p; q != end && *q != '?' && *q != '\n'; ++q)
        ;
    while (plen != path.len && path.base[plen] != '?')
        ++plen;
    return (size_t)(q - p) == plen && memcmp(p, path.base, plen) == 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    cr_thread_t *t = cr_thread_of(req);
    const cr_config_t *cfg = t->cfg; /* taken for this request by the guard handler, which runs first (cr_handler_register) */
    h2o_iovec_t m = req->input.method;
    const cr_route_config_t *route;
    cr_lookup_t *lk;
    char keybuf[CR_MAX_KEY];
    const char *key;
    int keylen, ambiguous;
    cr_reqstat_t *stat = cr_reqstat_take(req); /* begun by the guard handler, which ran just before */
    uint64_t rl_over_us = 0, hash;
    cr_rl_verdict_t v;
    cr_str_t method = cr_str(m.base, m.len), authority = cr_str(req->input.authority.base, req->input.authority.len),
             path = cr_str(req->input.path.base, req->input.path.len);
    uint16_t default_port = req->scheme->default_port;
    cr_key_memo_hit_t memo;
    int memoized;

    if (cr_purge_method_try(req, cfg))
        return 0;
    /* a request this thread saw a moment ago under this generation: its route and key from the memo (key_memo.h) */
    if ((memoized = cr_key_memo_find(cfg, method, authority, default_port, path, &memo))) {
        route = memo.route;
        ambiguous = 0;
    } else {
        route = cr_route_match_ex(cfg, method, path, &ambiguous);
    }
    cr_reqstat_route(stat, route != NULL ? route->stat_slot : CR_ROUTE_SLOT_NONE); /* outcome: pass until said otherwise */
    cr_accesslog_note_route(req, cr_route_label(route).base, cr_route_label(route).len);
    if (cr_ratelimit_applies(route, 0) && !cr_ratelimit_take(req, route, &v)) {
        /* applies_to: all: a cached GET or HEAD on a serve_stale route may still be answered from the store */
        if (!route->rate_limit.serve_stale || !route->cache ||
            (!is_method(m, H2O_STRLIT("GET")) && !is_method(m, H2O_STRLIT("HEAD")))) {
            cr_ratelimit_reject(req, route, &v);
            return 0;
        }
        rl_over_us = v.retry_us;
    }
    if (route == NULL || !route->cache) {
        if (!limited(req, cfg, route, NULL, 1))
            cr_pass_start(req, cfg, route, h2o_iovec_init(NULL, 0), NULL);
        return 0;
    }
    if (!is_method(m, H2O_STRLIT("GET")) && !is_method(m, H2O_STRLIT("HEAD"))) {
        int safe = is_method(m, H2O_STRLIT("OPTIONS")) || is_method(m, H2O_STRLIT("TRACE"));
        if (!limited(req, cfg, route, NULL, 1))
            cr_pass_start(req, cfg, route, cr_cache_status_fwd(req, "method", NULL), safe ? NULL : cr_writethrough_on_head);
        return 0;
    }

    cr_reqstat_outcome(stat, CR_OUTCOME_BYPASS); /* until the lookup says more */
    if (ambiguous) {
        /* "..;", "%2F..", a backslash, a double escape: the upstream may read it as a path another route covers */
        pass_limited(req, cfg, route, rl_over_us, "detail=ambiguous-path");
        return 0;
    }
    if (memoized) {
        keylen = (int)memo.keylen;
        key = memo.key;
        hash = memo.hash;
    } else {
        keylen = cr_key_build(route, authority, default_port, path, req_header_lookup, req, keybuf, sizeof(keybuf));
        if (keylen < 0) {
            pass_limited(req, cfg, route, rl_over_us, "detail=key-too-long");
            return 0;
        }
        if (!key_path_is_request_path(keybuf, (size_t)keylen, req->input.path)) {
            /* the key would name another path than the one the upstream is asked for: never store such answers */
            pass_limited(req, cfg, route, rl_over_us, "detail=unnormalized-path");
            return 0;
        }
        key = keybuf;
        hash = cr_hash(keybuf, keylen);
        if (route->num_key_headers == 0 && route->cookies != CR_COOKIES_LIST) /* a key of these inputs alone */
            cr_key_memo_store(cfg, method, authority, default_port, path, route, keybuf, (size_t)keylen, hash);
    }
    lk = h2o_mem_alloc_pool(&req->pool, sizeof(*lk));
    memset(lk, 0, sizeof(*lk));
    lk->fill.req = req;
    lk->fill.cfg = cfg;
    lk->fill.route = route;
    lk->fill.key = h2o_mem_alloc_pool(&req->pool, keylen + 1);
    memcpy(lk->fill.key, key, keylen + 1);
    lk->fill.keylen = keylen;
    lk->fill.hash = hash;
    cr_request_info_from_req(req, &lk->fill.qi);
    lk->fill.on_answer = cr_deliver;
    lk->fill.ctx = lk;
    lk->cookie_pass = lk->fill.qi.has_cookie && route->cookies == CR_COOKIES_PASS;
    lk->stat = stat;
    lk->rl_over_us = rl_over_us;
    lookup_and_answer(t, lk);
    return 0;
}

void cr_handler_register(h2o_hostconf_t *hostconf)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler;

    cr_guard_register(pathconf); /* first: sizes, the rapid-reset budget, head checks, the in-flight count */
    cr_accesslog_register(pathconf); /* a logger: one access-log line when each request is disposed */
    handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
}
