/*
 * policy.h: RFC 9111 caching semantics as pure functions.
 *
 * Nothing here allocates, locks or reads the clock: `now` (ms since epoch) is always passed in, so unit tests use
 * a fake clock. Deltas in Cache-Control are seconds in HTTP and are kept as seconds in cr_cache_control_t; every
 * derived time is milliseconds.
 */
#ifndef CORRAL_POLICY_H
#define CORRAL_POLICY_H

#include "corral/core/common.h"
#include "corral/conf/config.h"

enum {
    CR_CC_NO_STORE = 1u << 0,
    CR_CC_NO_CACHE = 1u << 1,
    CR_CC_PRIVATE = 1u << 2,
    CR_CC_PUBLIC = 1u << 3,
    CR_CC_MUST_REVALIDATE = 1u << 4,
    CR_CC_PROXY_REVALIDATE = 1u << 5,
    CR_CC_NO_TRANSFORM = 1u << 6,
    CR_CC_ONLY_IF_CACHED = 1u << 7,
    CR_CC_IMMUTABLE = 1u << 8,
    CR_CC_MAX_STALE_ANY = 1u << 9, /* request "max-stale" with no value: any staleness is acceptable */
};

#define CR_CC_UNSET (-1)

/* Parsed Cache-Control. Delta fields are seconds, CR_CC_UNSET when absent (or malformed: treated as absent, except
 * that a malformed max-age / s-maxage is treated as 0, i.e. stale, per RFC 9111 4.2.1 / 1.2.2). */
typedef struct st_cr_cache_control_t {
    unsigned flags;
    int64_t max_age;
    int64_t s_maxage;
    int64_t max_stale;
    int64_t min_fresh;
    int64_t stale_while_revalidate;
    int64_t stale_if_error;
} cr_cache_control_t;

void cr_cc_init(cr_cache_control_t *cc);
/* Parses one Cache-Control field value and merges it into cc (call once per header line). Tolerates whitespace,
 * quoted values (`max-age="60"`), unknown directives and empty members. Never fails. */
void cr_cc_parse(cr_cache_control_t *cc, cr_str_t value);

/* RFC 9110 5.6.7 HTTP-date (http_date.c) (IMF-fixdate, and the obsolete RFC 850 and asctime forms). Returns 0 and sets *ms, or -1. */
int cr_http_date_parse(cr_str_t s, uint64_t *ms);
/* Writes an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", 29 chars) plus NUL into buf (at least 30 bytes). */
void cr_http_date_format(uint64_t ms, char *buf);

/* What the handler gathered from an upstream response's header block (before any body). */
typedef struct st_cr_response_info_t {
    int status;
    cr_cache_control_t cc;
    int pragma_no_cache;   /* Pragma: no-cache (only meaningful when Cache-Control is absent) */
    int has_cache_control; /* any Cache-Control header present */
    int has_expires;       /* Expires header present */
    int expires_valid;     /* and parsed; an invalid Expires means "already expired" */
    uint64_t expires_ms;
    int has_date;
    uint64_t date_ms;
    int has_last_modified;
    uint64_t last_modified_ms;
    int has_age;  /* the first Age line parsed (cr_response_info_add) */
    int age_seen; /* an Age line was seen: later ones are ignored */
    uint64_t age_s;
    int has_set_cookie;
    int vary_star;     /* Vary contains "*" */
    int has_etag;
    int has_content_length;
    uint64_t content_length;
    /* targeted Cache-Control (RFC 9213, http/targeted_cc.h): the fields listed by `targeted_cfg` (NULL: none), parsed
     * by cr_response_info_add, one per list position; cr_response_info_apply_targeted puts the winner in `cc` */
    const cr_config_t *targeted_cfg;
    unsigned targeted_present; /* bit i: a valid line of field i was seen */
    unsigned targeted_bad;     /* bit i: an invalid line of field i was seen (the whole field is ignored) */
    int targeted_applied;      /* index of the field that replaced Cache-Control, or -1 */
    cr_cache_control_t targeted_cc[CR_TARGETED_CC_MAX];
} cr_response_info_t;

void cr_response_info_init(cr_response_info_t *ri);
/* Makes cr_response_info_add collect cfg's targeted Cache-Control fields (call after init; cfg may be NULL). */
void cr_response_info_set_targeted(cr_response_info_t *ri, const cr_config_t *cfg);

/* What the handler gathered from the client's request. */
typedef struct st_cr_request_info_t {
    cr_cache_control_t cc;
    int has_cache_control;
    int pragma_no_cache;   /* Pragma: no-cache with no Cache-Control: treated as request no-cache */
    int has_authorization;
    int has_cookie;
} cr_request_info_t;

void cr_request_info_init(cr_request_info_t *qi);

/* The verdict on an upstream response. */
typedef struct st_cr_store_decision_t {
    int storable;          /* may be stored at all */
    const char *reason;    /* when not storable: short token for logs and Cache-Status detail, e.g. "no-store" */
    int forced;            /* force_ttl applied: serve fresh for force_ttl, send route's force_cache_control downstream */
    uint64_t lifetime_ms;  /* freshness lifetime (0 = stored stale: must be revalidated before use) */
    uint64_t initial_age_ms; /* corrected initial age (RFC 9111 4.2.3) */
    uint64_t swr_ms;       /* stale-while-revalidate window (response directive, else route) */
    uint64_t sie_ms;       /* stale-if-error window (response directive, else route) */
    int must_revalidate;   /* must-revalidate / proxy-revalidate / s-maxage: never serve stale (no swr/sie) */
    int requires_revalidation; /* no-cache: store, but every use must revalidate (ignored when forced) */
    int shareable;         /* public or s-maxage: may serve requests that carry Cookie (`cookies: pass`) */
    int per_request;       /* not storable because of this request (Authorization, Cookie) or a 206: no hit-for-pass marker */
} cr_store_decision_t;

/*
 * Decides storability and freshness of a response to a GET, per RFC 9111 3 and 4.2, under `route`:
 *  - status must be final and cacheable by default (200 203 204 206? no: 200 203 204 300 301 308 404 405 410 414 501),
 *    or have explicit freshness (max-age, s-maxage, Expires) for other final statuses except 206 and 304;
 *  - no-store, private (shared cache), Vary: *, and Set-Cookie (unless route->allow_set_cookie) are not storable;
 *    with force_ttl + ignore_no_store, no-store and private are overridden;
 *  - a request with Authorization is storable only with public, s-maxage or must-revalidate in the response;
 *  - on a `cookies: pass` route (the default), a request with Cookie is storable only with public or s-maxage
 *    (Varnish passes every such request; corral still stores and shares what the response says is shareable);
 *    `shareable` records public / s-maxage for the object, so that only those serve later Cookie requests;
 *  - freshness: s-maxage, then max-age, then Expires - Date (or - response time), less nothing (age is separate);
 *    else route->ttl_ms; else heuristic (10% of Date - Last-Modified, capped at 24h) when the route allows it;
 *    else not storable ("no-freshness"). Lifetime is capped by route->max_ttl_ms when set;
 *  - force_ttl: when the route sets it, lifetime = force_ttl whenever the response says no-cache, max-age=0,
 *    s-maxage=0, Pragma: no-cache, an expired/invalid Expires, or gives no freshness at all.
 * `request_time_ms` / `response_time_ms` are when the request was sent upstream and the head came back.
 */
void cr_policy_decide(const cr_route_config_t *route, const cr_request_info_t *req, const cr_response_info_t *res,
                      uint64_t request_time_ms, uint64_t response_time_ms, cr_store_decision_t *out);

/* Is the status cacheable by default (RFC 9110 15.1)? */
int cr_policy_status_cacheable_by_default(int status);

/*
 * Can a stored response with `age_ms` current age and `lifetime_ms` freshness satisfy this request as fresh,
 * honouring the request's max-age and min-fresh? Returns 1 when yes.
 */
int cr_policy_request_accepts_fresh(const cr_request_info_t *req, uint64_t age_ms, uint64_t lifetime_ms);
/* Does the request's max-stale allow serving this stale response (age beyond lifetime)? */
int cr_policy_request_accepts_stale(const cr_request_info_t *req, uint64_t age_ms, uint64_t lifetime_ms);

/* Does the request ask not to be served from cache without revalidation (no-cache, or Pragma: no-cache with no
 * Cache-Control)? The two functions above do not look at it; the caller decides. Returns 1 when yes. */
int cr_policy_request_no_cache(const cr_request_info_t *req);

/* If-None-Match evaluation (weak comparison, RFC 9110 13.1.2): 1 when `etag` matches one of the list, or list is "*". */
int cr_policy_etag_matches(cr_str_t if_none_match, cr_str_t etag);

/* Splits a comma-separated header value; calls cb for each trimmed, non-empty member. Stops when cb returns nonzero. */
void cr_header_list_foreach(cr_str_t value, int (*cb)(void *ctx, cr_str_t member), void *ctx);

#endif
