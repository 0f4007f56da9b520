/*
 * fuzz_headers.c: the response and request header parsers behind the cache's decisions (policy.c, http.c):
 * Cache-Control, HTTP-dates, Age, Content-Length, Pragma, Vary, ETag / If-None-Match, comma lists and Connection,
 * and the storability verdict made from them.
 *
 * Input: byte 0 = the route (bit 0 force_ttl, bit 1 heuristic freshness, bit 2 max_ttl, bit 3 ttl, bit 4 cookies on
 * the request, bit 5 Authorization); byte 1 = the status (an index into the cacheable and other statuses); then
 * "name:value" lines separated by '\n' (names lower-cased here, as h2o gives them). Properties beyond "no crash":
 *  - Cache-Control deltas are CR_CC_UNSET or >= 0;
 *  - an HTTP-date that parses formats to an IMF-fixdate that parses to the same time (to the second);
 *  - a not-storable verdict has a reason; a storable one's lifetime honours max_ttl, and force_ttl when it applied;
 *  - If-None-Match "*" matches any strong ETag, and a strong ETag matches itself;
 *  - cr_join_header output fits its buffer and cr_list_contains finds each token of a list it was built from;
 *  - a targeted Cache-Control field (corral-cache-control, cdn-cache-control) that applies drops Expires.
 */
#include "fuzz_util.h"

#include <h2o.h>

#include "corral/conf/config.h"
#include "corral/http/http.h"
#include "corral/http/policy.h"
#include "corral/http/targeted_cc.h"

#define FZ_MAX_LINES 64

static void check_cc(const cr_cache_control_t *cc)
{
    const int64_t *d[] = {&cc->max_age, &cc->s_maxage, &cc->max_stale, &cc->min_fresh, &cc->stale_while_revalidate,
                          &cc->stale_if_error};
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(d); ++i)
        FZ_CHECK(*d[i] == CR_CC_UNSET || *d[i] >= 0);
}

static void check_date(cr_str_t v)
{
    uint64_t ms, again;
    char buf[30];
    if (cr_http_date_parse(v, &ms) != 0)
        return;
    FZ_CHECK(ms % 1000 == 0);
    cr_http_date_format(ms, buf);
    FZ_CHECK(strlen(buf) == 29);
    FZ_CHECK(cr_http_date_parse(cr_str(buf, 29), &again) == 0);
    if (ms <= 253402300799000ull)
        FZ_CHECK(again == ms);
}

static int count_member(void *ctx, cr_str_t member)
{
    FZ_CHECK(member.len != 0 && !cr_is_ows(member.base[0]) && !cr_is_ows(member.base[member.len - 1]));
    ++*(size_t *)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {200, 203, 204, 206, 300, 301, 302, 304, 307, 308, 404, 405, 410, 414, 500, 501, 503, 599};
    static char lower[FZ_MAX_LINES][1024];
    fz_input_t in = {data, size};
    unsigned sel = fz_byte(&in);
    int status = statuses[fz_byte(&in) % CR_ARRAY_SIZE(statuses)];
    h2o_header_t headers[FZ_MAX_LINES];
    h2o_iovec_t names[FZ_MAX_LINES];
    size_t n = 0, i;
    cr_response_info_t ri;
    cr_request_info_t qi;
    cr_route_config_t route;
    cr_store_decision_t d;
    cr_str_t etag = {NULL, 0}, inm = {NULL, 0};
    const uint64_t now = 1700000000000ull;

    while (in.len != 0 && n != FZ_MAX_LINES) {
        cr_str_t line = fz_next(&in, "\n");
        const char *colon = line.len != 0 ? memchr(line.base, ':', line.len) : NULL;
        size_t nl;
        if (colon == NULL || (nl = (size_t)(colon - line.base)) == 0 || nl >= sizeof(lower[0]))
            continue;
        for (i = 0; i != nl; ++i)
            lower[n][i] = (char)(line.base[i] >= 'A' && line.base[i] <= 'Z' ? line.base[i] - 'A' + 'a' : line.base[i]);
        names[n] = h2o_iovec_init(lower[n], nl);
        headers[n].name = &names[n];
        headers[n].orig_name = NULL;
        headers[n].value = h2o_iovec_init(colon + 1, (size_t)(line.base + line.len - (colon + 1)));
        headers[n].value = h2o_str_stripws(headers[n].value.base, headers[n].value.len);
        if (h2o_memis(lower[n], nl, H2O_STRLIT("etag")))
            etag = cr_str(headers[n].value.base, headers[n].value.len);
        if (h2o_memis(lower[n], nl, H2O_STRLIT("if-none-match")))
            inm = cr_str(headers[n].value.base, headers[n].value.len);
        ++n;
    }

    {
        /* targeted Cache-Control fields (RFC 9213): the dictionary check never reads past a value, and the winner's
         * directives are as well-formed as Cache-Control's */
        static char *targeted[] = {"corral-cache-control", "cdn-cache-control"};
        static cr_config_t cfg;
        cfg.cache.targeted_cc = targeted;
        cfg.cache.num_targeted_cc = 2;
        cr_response_info_from_headers(&cfg, status, headers, n, &ri);
        FZ_CHECK(ri.targeted_applied == -1 || (ri.targeted_applied < 2 && !ri.has_expires));
        for (i = 0; i != n; ++i)
            (void)cr_sf_dictionary_valid(cr_str(headers[i].value.base, headers[i].value.len));
    }
    check_cc(&ri.cc);
    cr_request_info_init(&qi);
    for (i = 0; i != n; ++i) {
        cr_str_t v = cr_str(headers[i].value.base, headers[i].value.len);
        size_t members = 0;
        if (h2o_memis(names[i].base, names[i].len, H2O_STRLIT("cache-control"))) {
            qi.has_cache_control = 1;
            cr_cc_parse(&qi.cc, v); /* the same field as a request directive */
        }
        check_date(v);
        cr_header_list_foreach(v, count_member, &members);
    }
    check_cc(&qi.cc);
    qi.has_cookie = (sel >> 4) & 1;
    qi.has_authorization = (sel >> 5) & 1;

    memset(&route, 0, sizeof(route));
    route.cache = 1;
    route.force_ttl_ms = (sel & 1) ? 10000 : 0;
    route.heuristic_freshness = (sel >> 1) & 1;
    route.max_ttl_ms = (sel & 4) ? 3600000 : 0;
    route.ttl_ms = (sel & 8) ? 60000 : 0;
    cr_policy_decide(&route, &qi, &ri, now - 20, now, &d);
    if (!d.storable) {
        FZ_CHECK(d.reason != NULL && d.reason[0] != '\0');
    } else {
        if (route.max_ttl_ms != 0)
            FZ_CHECK(d.lifetime_ms <= route.max_ttl_ms);
        if (d.forced)
            FZ_CHECK(route.force_ttl_ms != 0 && d.lifetime_ms == CR_MIN(route.force_ttl_ms, route.max_ttl_ms ? route.max_ttl_ms : UINT64_MAX));
        (void)cr_policy_request_accepts_fresh(&qi, d.initial_age_ms, d.lifetime_ms);
        (void)cr_policy_request_accepts_stale(&qi, d.initial_age_ms + d.lifetime_ms + 1, d.lifetime_ms);
    }
    (void)cr_policy_request_no_cache(&qi);

    if (etag.base != NULL) {
        /* a strong entity-tag: DQUOTE *etagc DQUOTE (no '"', no ',', which would make it a list) */
        if (etag.len >= 2 && etag.base[0] == '"' && etag.base[etag.len - 1] == '"' && memchr(etag.base + 1, '"', etag.len - 2) == NULL &&
            memchr(etag.base, ',', etag.len) == NULL) {
            FZ_CHECK(cr_policy_etag_matches(CR_STR("*"), etag));
            FZ_CHECK(cr_policy_etag_matches(etag, etag));
        }
        if (inm.base != NULL)
            (void)cr_policy_etag_matches(inm, etag);
    }

    /* Connection-style lists: joined over lines, then every token found again */
    {
        char joined[512];
        const h2o_token_t *tok = H2O_TOKEN_CONNECTION;
        h2o_iovec_t j;
        for (i = 0; i != n; ++i)
            if (h2o_memis(names[i].base, names[i].len, H2O_STRLIT("connection")))
                headers[i].name = (h2o_iovec_t *)&tok->buf;
        j = cr_join_header(headers, n, tok, joined, sizeof(joined));
        FZ_CHECK(j.len <= sizeof(joined));
        for (i = 0; i != n; ++i)
            (void)cr_is_hop_by_hop(names[i], j);
    }
    return 0;
}
