/*
 * policy.c: RFC 9111 (HTTP caching) and RFC 5861 (stale-while-revalidate / stale-if-error) semantics for a shared
 * cache, as pure functions: Cache-Control parsing, the store/freshness verdict on an upstream response, request-side
 * freshness checks and If-None-Match evaluation. HTTP-dates (declared in policy.h too) are parsed and written by
 * http_date.c.
 *
 * Invariants:
 *  - nothing here allocates, locks, reads the clock or touches global state: every function is
 *    reentrant and thread-safe, and time comes in as arguments (ms since the epoch);
 *  - Cache-Control deltas stay in seconds (saturated at 2^31, RFC 9111 1.2.2); every derived time is milliseconds and
 *    all millisecond arithmetic saturates instead of wrapping;
 *  - input strings are borrowed cr_str_t values, never assumed NUL-terminated, and are never read past their length;
 *  - when in doubt the verdict is conservative: qualified no-cache / private act like the unqualified forms, a
 *    malformed or conflicting max-age / s-maxage means "stale", an invalid Expires means "already expired".
 */
#include "corral/http/policy.h"

#define CR_DELTA_MAX ((int64_t)1 << 31) /* RFC 9111 1.2.2: deltas too large to represent saturate at 2^31 */
#define CR_HEURISTIC_MAX_MS ((uint64_t)24 * 3600 * 1000)

/* --- small helpers ------------------------------------------------------------------------------------------------ */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* Seconds (a parsed, non-negative delta) to milliseconds. */
static uint64_t delta_to_ms(int64_t delta_s)
{
    return delta_s <= 0 ? 0 : sat_mul((uint64_t)delta_s, 1000);
}

/* --- header lists ------------------------------------------------------------------------------------------------- */

void cr_header_list_foreach(cr_str_t value, int (*cb)(void *ctx, cr_str_t member), void *ctx)
{
    size_t i = 0, start = 0;
    int in_quote = 0;

    assert(cb != NULL);
    assert(value.base != NULL || value.len == 0);
    if (value.len == 0)
        return;
    for (i = 0; i <= value.len; ++i) {
        if (i < value.len) {
            char c = value.base[i];
            if (in_quote) {
                if (c == '\\' && i + 1 < value.len)
                    ++i; /* quoted-pair: the next octet is literal, even a '"' or ',' */
                else if (c == '"')
                    in_quote = 0;
                continue;
            }
            if (c == '"') {
                in_quote = 1;
                continue;
            }
            if (c != ',')
                continue;
        }
        /* end of a member: a comma outside quotes, or the end of the value (an unterminated quote runs to the end) */
        cr_str_t member = cr_str_trim_ows(cr_str(value.base + start, i - start));
        if (member.len != 0 && cb(ctx, member) != 0)
            return;
        start = i + 1;
    }
}

/* --- Cache-Control ------------------------------------------------------------------------------------------------ */

void cr_cc_init(cr_cache_control_t *cc)
{
    assert(cc != NULL);
    cc->flags = 0;
    cc->max_age = CR_CC_UNSET;
    cc->s_maxage = CR_CC_UNSET;
    cc->max_stale = CR_CC_UNSET;
    cc->min_fresh = CR_CC_UNSET;
    cc->stale_while_revalidate = CR_CC_UNSET;
    cc->stale_if_error = CR_CC_UNSET;
}

/* Parses delta-seconds (1*DIGIT), saturating at 2^31. Returns the value, or -1 when `s` is empty or not all digits. */
static int64_t parse_delta(cr_str_t s)
{
    int64_t v = 0;
    size_t i;

    if (s.len == 0)
        return -1;
    for (i = 0; i != s.len; ++i) {
        if (s.base[i] < '0' || s.base[i] > '9')
            return -1;
        if (v < CR_DELTA_MAX)
            v = v * 10 + (s.base[i] - '0');
    }
    return v > CR_DELTA_MAX ? CR_DELTA_MAX : v;
}

/*
 * Splits a directive's argument into its content: a token is returned as is; a quoted-string loses its quotes (escapes
 * are left in place, so a delta containing one is rejected as non-digits). Returns 0, or -1 for an unterminated quoted
 * string or junk after the closing quote.
 */
static int directive_value(cr_str_t raw, cr_str_t *out)
{
    size_t i;

    if (raw.len == 0 || raw.base[0] != '"') {
        *out = raw;
        return 0;
    }
    for (i = 1; i < raw.len; ++i) {
        if (raw.base[i] == '\\') {
            ++i;
        } else if (raw.base[i] == '"') {
            if (i + 1 != raw.len) /* raw is already trimmed: anything after the closing quote is junk */
                return -1;
            *out = cr_str(raw.base + 1, i - 1);
            return 0;
        }
    }
    return -1;
}

/* Stores a max-age / s-maxage: malformed means 0 (stale); a second, different occurrence also means 0 (RFC 9111 4.2.1
 * lets a cache treat conflicting duplicates as stale, which is the conservative choice for a shared cache). */
static void set_freshness_delta(int64_t *slot, int has_value, cr_str_t value)
{
    int64_t v = has_value ? parse_delta(value) : -1;
    if (v < 0)
        v = 0;
    if (*slot == CR_CC_UNSET || *slot == v)
        *slot = v;
    else
        *slot = 0;
}

/* Stores any other delta directive: malformed means absent, and the first valid occurrence wins. */
static void set_other_delta(int64_t *slot, int has_value, cr_str_t value)
{
    int64_t v = has_value ? parse_delta(value) : -1;
    if (v >= 0 && *slot == CR_CC_UNSET)
        *slot = v;
}

static int cc_member(void *ctx, cr_str_t member)
{
    static const struct {
        const char *name;
        size_t len;
        unsigned flag;
    } flag_directives[] = {
#define D(lit, flag) {lit, sizeof(lit) - 1, flag}
        D("no-store", CR_CC_NO_STORE),
        D("no-cache", CR_CC_NO_CACHE), /* a qualified no-cache="field" is treated as unqualified (conservative) */
        D("private", CR_CC_PRIVATE),   /* likewise private="field" */
        D("public", CR_CC_PUBLIC),
        D("must-revalidate", CR_CC_MUST_REVALIDATE),
        D("proxy-revalidate", CR_CC_PROXY_REVALIDATE),
        D("no-transform", CR_CC_NO_TRANSFORM),
        D("only-if-cached", CR_CC_ONLY_IF_CACHED),
        D("immutable", CR_CC_IMMUTABLE),
#undef D
    };
    cr_cache_control_t *cc = ctx;
    cr_str_t name = member, value = {NULL, 0};
    int has_value = 0;
    const char *eq = memchr(member.base, '=', member.len);
    size_t i;

    if (eq != NULL) {
        name = cr_str_trim_ows(cr_str(member.base, (size_t)(eq - member.base)));
        cr_str_t raw = cr_str_trim_ows(cr_str(eq + 1, member.len - (size_t)(eq + 1 - member.base)));
        has_value = directive_value(raw, &value) == 0;
    }

    for (i = 0; i != CR_ARRAY_SIZE(flag_directives); ++i) {
        if (cr_str_ieq(name, flag_directives[i].name, flag_directives[i].len)) {
            cc->flags |= flag_directives[i].flag;
            return 0;
        }
    }
    if (cr_str_ieq(name, "max-age", 7)) {
        set_freshness_delta(&cc->max_age, has_value, value);
    } else if (cr_str_ieq(name, "s-maxage", 8)) {
        set_freshness_delta(&cc->s_maxage, has_value, value);
    } else if (cr_str_ieq(name, "max-stale", 9)) {
        if (eq == NULL)
            cc->flags |= CR_CC_MAX_STALE_ANY;
        else
            set_other_delta(&cc->max_stale, has_value, value);
    } else if (cr_str_ieq(name, "min-fresh", 9)) {
        set_other_delta(&cc->min_fresh, has_value, value);
    } else if (cr_str_ieq(name, "stale-while-revalidate", 22)) {
        set_other_delta(&cc->stale_while_revalidate, has_value, value);
    } else if (cr_str_ieq(name, "stale-if-error", 14)) {
        set_other_delta(&cc->stale_if_error, has_value, value);
    }
    /* unknown directives (cache extensions) are ignored, RFC 9111 5.2.3 */
    return 0;
}

void cr_cc_parse(cr_cache_control_t *cc, cr_str_t value)
{
    assert(cc != NULL);
    cr_header_list_foreach(value, cc_member, cc);
}

/* --- the store verdict -------------------------------------------------------------------------------------------- */

void cr_response_info_init(cr_response_info_t *ri)
{
    assert(ri != NULL);
    memset(ri, 0, sizeof(*ri));
    cr_cc_init(&ri->cc);
    ri->targeted_applied = -1;
}

void cr_response_info_set_targeted(cr_response_info_t *ri, const cr_config_t *cfg)
{
    size_t i;
    ri->targeted_cfg = cfg != NULL && cfg->cache.num_targeted_cc != 0 ? cfg : NULL;
    for (i = 0; i != CR_TARGETED_CC_MAX; ++i)
        cr_cc_init(ri->targeted_cc + i);
}

void cr_request_info_init(cr_request_info_t *qi)
{
    assert(qi != NULL);
    memset(qi, 0, sizeof(*qi));
    cr_cc_init(&qi->cc);
}

int cr_policy_status_cacheable_by_default(int status)
{
    switch (status) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
        return 1;
    default:
        return 0;
    }
}

/* Explicit freshness (RFC 9111 4.2.1): s-maxage, then max-age, then Expires minus Date (or the response time when
 * Date is absent); an invalid Expires is already expired. Returns 1 and sets *lifetime_ms, or 0 when none applies. */
static int explicit_lifetime(const cr_response_info_t *res, uint64_t response_time_ms, uint64_t *lifetime_ms)
{
    if (res->cc.s_maxage != CR_CC_UNSET) {
        *lifetime_ms = delta_to_ms(res->cc.s_maxage);
    } else if (res->cc.max_age != CR_CC_UNSET) {
        *lifetime_ms = delta_to_ms(res->cc.max_age);
    } else if (res->has_expires) {
        uint64_t base = res->has_date ? res->date_ms : response_time_ms;
        *lifetime_ms = res->expires_valid && res->expires_ms > base ? res->expires_ms - base : 0;
    } else {
        return 0;
    }
    return 1;
}

/* RFC 9111 4.2.3 initial age: max(apparent_age, age_value + response_delay), in ms, saturating. */
static uint64_t initial_age(const cr_response_info_t *res, uint64_t request_time_ms, uint64_t response_time_ms)
{
    uint64_t apparent = res->has_date && response_time_ms > res->date_ms ? response_time_ms - res->date_ms : 0;
    uint64_t age_value = res->has_age ? sat_mul(res->age_s, 1000) : 0;
    uint64_t delay = response_time_ms > request_time_ms ? response_time_ms - request_time_ms : 0;
    uint64_t corrected = sat_add(age_value, delay);
    return CR_MAX(apparent, corrected);
}

static void not_storable(cr_store_decision_t *out, const char *reason)
{
    out->storable = 0;
    out->reason = reason;
    out->forced = 0;
    out->lifetime_ms = 0;
    out->requires_revalidation = 0;
}

/*
 * Fills *out; never fails. When out->storable is 0, out->reason says why and lifetime_ms / forced /
 * requires_revalidation are 0 (initial_age_ms, swr_ms, sie_ms and must_revalidate are still filled, for logs).
 * Interpretations beyond policy.h's comment:
 *  - force_ttl never applies to statuses that are not cacheable by default: those are stored on their own explicit
 *    freshness only;
 *  - "max-age=0 / s-maxage=0 / expired Expires" means the governing explicit lifetime is 0 (so `s-maxage=60,
 *    max-age=0` is not forced: the shared cache follows s-maxage);
 *  - when ignore_no_store lets a no-store or private response in, the response is forced as well: its own freshness
 *    was not meant for a shared cache.
 */
void cr_policy_decide(const cr_route_config_t *route, const cr_request_info_t *req, const cr_response_info_t *res,
                      uint64_t request_time_ms, uint64_t response_time_ms, cr_store_decision_t *out)
{
    const cr_cache_control_t *cc;
    int no_cache, default_status, has_explicit, force_enabled, override_no_store, forced = 0;
    uint64_t lifetime = 0;

    assert(route != NULL);
    assert(res != NULL);
    assert(out != NULL);
    memset(out, 0, sizeof(*out));
    cc = &res->cc;

    no_cache = (cc->flags & CR_CC_NO_CACHE) != 0 || (res->pragma_no_cache && !res->has_cache_control);
    default_status = cr_policy_status_cacheable_by_default(res->status);
    has_explicit = explicit_lifetime(res, response_time_ms, &lifetime);
    force_enabled = route->force_ttl_ms > 0 && default_status;
    override_no_store = force_enabled && route->ignore_no_store;

    out->initial_age_ms = initial_age(res, request_time_ms, response_time_ms);
    out->must_revalidate =
        (cc->flags & (CR_CC_MUST_REVALIDATE | CR_CC_PROXY_REVALIDATE)) != 0 || cc->s_maxage != CR_CC_UNSET;
    if (!out->must_revalidate) {
        out->swr_ms = cc->stale_while_revalidate != CR_CC_UNSET ? delta_to_ms(cc->stale_while_revalidate)
                                                                 : route->stale_while_revalidate_ms;
        out->sie_ms = cc->stale_if_error != CR_CC_UNSET ? delta_to_ms(cc->stale_if_error) : route->stale_if_error_ms;
    }

    /* storability, first failing rule wins */
    if (!route->cache) {
        not_storable(out, "route");
        return;
    }
    if (res->status == 206) {
        /* a part of a response (one the fill did not ask for: fills send no Range) is never stored, and it says
         * nothing about the complete response: no hit-for-pass marker, the next request is a normal miss */
        not_storable(out, "partial-content");
        out->per_request = 1;
        return;
    }
    if (!default_status && (res->status < 200 || res->status > 599 || res->status == 206 || res->status == 304 ||
                            !has_explicit)) {
        not_storable(out, "status");
        return;
    }
    if ((cc->flags & CR_CC_NO_STORE) != 0 && !override_no_store) {
        not_storable(out, "no-store");
        return;
    }
    if ((cc->flags & CR_CC_PRIVATE) != 0 && !override_no_store) {
        not_storable(out, "private");
        return;
    }
    if (res->vary_star) {
        not_storable(out, "vary-star");
        return;
    }
    if (res->has_set_cookie && !route->allow_set_cookie) {
        not_storable(out, "set-cookie");
        return;
    }
    out->shareable = (cc->flags & CR_CC_PUBLIC) != 0 || cc->s_maxage != CR_CC_UNSET;
    if (req != NULL && req->has_authorization &&
        (cc->flags & (CR_CC_PUBLIC | CR_CC_MUST_REVALIDATE)) == 0 && cc->s_maxage == CR_CC_UNSET) {
        not_storable(out, "authorization");
        out->per_request = 1;
        return;
    }
    if (req != NULL && req->has_cookie && route->cookies == CR_COOKIES_PASS && !out->shareable) {
        not_storable(out, "cookie");
        out->per_request = 1;
        return;
    }

    /* freshness */
    if (force_enabled && (no_cache || !has_explicit || lifetime == 0 ||
                          (cc->flags & (CR_CC_NO_STORE | CR_CC_PRIVATE)) != 0)) {
        forced = 1;
        lifetime = route->force_ttl_ms;
    } else if (has_explicit) {
        /* lifetime already set */
    } else if (route->ttl_ms > 0) {
        lifetime = route->ttl_ms;
    } else if (route->heuristic_freshness && res->has_last_modified) {
        uint64_t base = res->has_date ? res->date_ms : response_time_ms;
        lifetime = base > res->last_modified_ms ? (base - res->last_modified_ms) / 10 : 0;
        lifetime = CR_MIN(lifetime, CR_HEURISTIC_MAX_MS);
    } else if (no_cache) {
        lifetime = 0; /* stored stale: every use revalidates anyway */
    } else {
        not_storable(out, "no-freshness");
        return;
    }
    if (route->max_ttl_ms > 0 && lifetime > route->max_ttl_ms)
        lifetime = route->max_ttl_ms;

    out->storable = 1;
    out->reason = NULL;
    out->forced = forced;
    out->lifetime_ms = lifetime;
    out->requires_revalidation = no_cache && !forced;
}

/* --- request side ------------------------------------------------------------------------------------------------- */

int cr_policy_request_accepts_fresh(const cr_request_info_t *req, uint64_t age_ms, uint64_t lifetime_ms)
{
    assert(req != NULL);
    if (age_ms >= lifetime_ms)
        return 0;
    if (req->cc.max_age != CR_CC_UNSET && age_ms > delta_to_ms(req->cc.max_age))
        return 0;
    if (req->cc.min_fresh != CR_CC_UNSET && lifetime_ms - age_ms < delta_to_ms(req->cc.min_fresh))
        return 0;
    return 1;
}

/* Returns 1 only when the request carries max-stale (any, or covering the staleness); a request max-age still bounds
 * the age (RFC 9111 5.2.1.1: max-stale relaxes freshness, not the client's age limit). */
int cr_policy_request_accepts_stale(const cr_request_info_t *req, uint64_t age_ms, uint64_t lifetime_ms)
{
    uint64_t staleness = age_ms > lifetime_ms ? age_ms - lifetime_ms : 0;

    assert(req != NULL);
    if (req->cc.max_age != CR_CC_UNSET && age_ms > delta_to_ms(req->cc.max_age))
        return 0;
    if ((req->cc.flags & CR_CC_MAX_STALE_ANY) != 0)
        return 1;
    if (req->cc.max_stale != CR_CC_UNSET && staleness <= delta_to_ms(req->cc.max_stale))
        return 1;
    return 0;
}

int cr_policy_request_no_cache(const cr_request_info_t *req)
{
    assert(req != NULL);
    return (req->cc.flags & CR_CC_NO_CACHE) != 0 || (req->pragma_no_cache && !req->has_cache_control);
}

/* --- conditional requests ----------------------------------------------------------------------------------------- */

static cr_str_t strip_weak(cr_str_t tag)
{
    if (tag.len >= 2 && tag.base[0] == 'W' && tag.base[1] == '/')
        return cr_str(tag.base + 2, tag.len - 2);
    return tag;
}

struct etag_match_ctx {
    cr_str_t etag; /* already stripped of W/ */
    int matched;
};

static int etag_member(void *ctx, cr_str_t member)
{
    struct etag_match_ctx *m = ctx;
    cr_str_t tag = strip_weak(member);
    if (cr_str_eq(member, "*", 1) || (tag.len == m->etag.len && memcmp(tag.base, m->etag.base, tag.len) == 0)) {
        m->matched = 1;
        return 1;
    }
    return 0;
}

int cr_policy_etag_matches(cr_str_t if_none_match, cr_str_t etag)
{
    struct etag_match_ctx m;

    if (etag.base == NULL || if_none_match.base == NULL)
        return 0;
    etag = cr_str_trim_ows(etag);
    m.etag = strip_weak(etag);
    m.matched = 0;
    if (etag.len == 0 || m.etag.len == 0)
        return 0;
    cr_header_list_foreach(if_none_match, etag_member, &m);
    return m.matched;
}
