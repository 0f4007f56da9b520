/*
 * deliver.c: the client's answer from a flight's outcome (see deliver.h): respond, pass, JSON error, Cache-Status
 * text, a second lookup.
 *
 * Invariants: runs on the request's thread, from the flight's callback; the outcome's object is valid during the
 * call only (cr_respond_object takes its own reference). A variant that does not fit sends the request back through
 * the lookup (cr_handler_restart, bounded there); nothing here enters the flight table but through that lookup.
 * Config: lk->fill.cfg (and the route in it) is held by the request since it started waiting (handler.c, join:
 * cr_lookup_hold_generation), until the request is disposed, so a generation published meanwhile does not free it.
 */
#include "corral/serve/deliver.h"

#include "corral/serve/handler.h"
#include "corral/serve/pass.h"
#include "corral/serve/respond.h"
#include "corral/http/http.h"
#include "corral/core/runtime.h"
#include "corral/core/accesslog.h"

/* "detail=<reason>", NUL-terminated, in the request's pool */
static h2o_iovec_t detail(h2o_req_t *req, const char *reason)
{
    size_t len = strlen(reason);
    char *buf = h2o_mem_alloc_pool(&req->pool, sizeof("detail=") + len);
    memcpy(buf, "detail=", 7);
    memcpy(buf + 7, reason, len + 1);
    return h2o_iovec_init(buf, 7 + len);
}

static const char *error_reason_phrase(int status)
{
    return status == 504 ? "Gateway Timeout" : status == 503 ? "Service Unavailable" : "Bad Gateway";
}

void cr_deliver(void *_lk, const cr_flight_outcome_t *o)
{
    cr_lookup_t *lk = _lk;
    h2o_req_t *req = lk->fill.req;
    const cr_route_config_t *route = lk->fill.route;
    h2o_iovec_t extra;

    if (o->upstream_us != 0)
        cr_accesslog_note_upstream(req, o->upstream_us - 1);
    switch (o->answer) {
    case CR_FLIGHT_SERVE:
        if (o->shared && o->obj->num_vary != 0 && !cr_handler_variant_matches(lk, o->obj)) {
            cr_handler_restart(lk);
            return;
        }
        if (o->codings_pending) {
            /* the stored object will hold codings and every answer from it varies on Accept-Encoding: so does this */
            cr_str_t vary = cr_object_find_header(o->obj, H2O_STRLIT("vary"));
            if (!cr_list_contains(h2o_iovec_init(vary.base, vary.len), h2o_iovec_init(H2O_STRLIT("accept-encoding"))))
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("accept-encoding"));
        }
        cr_reqstat_outcome(lk->stat, !o->is_leader ? CR_OUTCOME_COLLAPSED : o->l2_hit ? CR_OUTCOME_L2_HIT : CR_OUTCOME_MISS);
        if (o->l2_hit) {
            /* another pod's fill, from the shared tier: for the leader and its herd alike */
            if (!o->is_leader)
                CR_STAT_INC(cr_thread_of(req)->stats, coalesced);
            extra = o->is_leader ? h2o_iovec_init(H2O_STRLIT("detail=l2-hit")) : h2o_iovec_init(H2O_STRLIT("collapsed; detail=l2-hit"));
        } else if (o->is_leader) {
            extra = o->stored ? h2o_iovec_init(H2O_STRLIT("stored")) : detail(req, o->reason != NULL ? o->reason : "not-stored");
        } else {
            CR_STAT_INC(cr_thread_of(req)->stats, coalesced);
            extra = h2o_iovec_init(H2O_STRLIT("collapsed"));
        }
        cr_respond_object(req, lk->fill.cfg, route, o->obj, cr_cache_status_fwd(req, lk->fwd, extra.base));
        return;
    case CR_FLIGHT_SERVE_STALE:
        cr_reqstat_outcome(lk->stat, CR_OUTCOME_STALE);
        cr_respond_object(req, lk->fill.cfg, route, o->obj,
                          cr_cache_status_fwd(req, "stale", o->reason != NULL ? o->reason : "detail=stale-if-error"));
        return;
    case CR_FLIGHT_PASS:
        cr_reqstat_outcome(lk->stat, CR_OUTCOME_BYPASS);
        cr_pass_start(req, lk->fill.cfg, route, cr_cache_status_fwd(req, lk->fwd, detail(req, o->reason).base), NULL);
        return;
    case CR_FLIGHT_ERROR:
        cr_send_json_error(req, o->error_status, error_reason_phrase(o->error_status), o->error_code, o->error_msg);
        return;
    case CR_FLIGHT_TIMEOUT:
        cr_reqstat_outcome(lk->stat, CR_OUTCOME_MISS);
        cr_pass_start(req, lk->fill.cfg, route, cr_cache_status_fwd(req, lk->fwd != NULL ? lk->fwd : "uri-miss", "detail=coalesce-timeout"), NULL);
        return;
    case CR_FLIGHT_LOOKUP_AGAIN:
        cr_handler_lookup(lk);
        return;
    }
}
