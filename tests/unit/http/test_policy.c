/*
 * test_policy.c: CUnit suite for sidecar/http/policy.c (RFC 9111 / RFC 5861 caching semantics).
 *
 * Invariants: every test uses a fake clock (the fixed instants below), never cr_now_ms(); each test builds its own
 * route / request / response on the stack from the helpers, so tests are independent and order does not matter.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/http/policy.h"

#define NOW 1700000000000ull /* 2023-11-14T22:13:20Z: the fake "response received" instant */
#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define DATE_1994_S 784111777ull /* Sun, 06 Nov 1994 08:49:37 GMT */

#define S(lit) cr_str((lit), strlen(lit))

#define ASSERT_REASON(d, r)                                                                                                 \
    do {                                                                                                                    \
        CU_ASSERT_EQUAL((d).storable, 0);                                                                                  \
        CU_ASSERT_PTR_NOT_NULL_FATAL((d).reason);                                                                          \
        CU_ASSERT_STRING_EQUAL((d).reason, (r));                                                                           \
    } while (0)

#define ASSERT_STORED(d, lifetime)                                                                                          \
    do {                                                                                                                    \
        CU_ASSERT_EQUAL((d).storable, 1);                                                                                  \
        CU_ASSERT_PTR_NULL((d).reason);                                                                                    \
        CU_ASSERT_EQUAL((d).lifetime_ms, (lifetime));                                                                      \
    } while (0)

/* --- helpers ------------------------------------------------------------------------------------------------------ */

static cr_cache_control_t cc_of(const char *value)
{
    cr_cache_control_t cc;
    cr_cc_init(&cc);
    cr_cc_parse(&cc, S(value));
    return cc;
}

static cr_route_config_t route_default(void)
{
    cr_route_config_t r;
    memset(&r, 0, sizeof(r));
    r.cache = 1;
    return r;
}

/* A 200 response received at NOW, Date = NOW, with the given Cache-Control (NULL: no Cache-Control header). */
static cr_response_info_t res_with(int status, const char *cache_control)
{
    cr_response_info_t ri;
    cr_response_info_init(&ri);
    ri.status = status;
    ri.has_date = 1;
    ri.date_ms = NOW;
    if (cache_control != NULL) {
        ri.has_cache_control = 1;
        cr_cc_parse(&ri.cc, S(cache_control));
    }
    return ri;
}

static cr_request_info_t req_with(const char *cache_control)
{
    cr_request_info_t qi;
    cr_request_info_init(&qi);
    if (cache_control != NULL) {
        qi.has_cache_control = 1;
        cr_cc_parse(&qi.cc, S(cache_control));
    }
    return qi;
}

/* Decides with request sent and response received both at NOW (no response delay). */
static cr_store_decision_t decide(const cr_route_config_t *route, const cr_request_info_t *req, const cr_response_info_t *res)
{
    cr_store_decision_t d;
    memset(&d, 0xa5, sizeof(d)); /* garbage: the function must fill every field */
    cr_policy_decide(route, req, res, NOW, NOW, &d);
    return d;
}

/* --- Cache-Control parsing ---------------------------------------------------------------------------------------- */

static void test_cc_init_defaults(void)
{
    cr_cache_control_t cc;
    memset(&cc, 0x5a, sizeof(cc));
    cr_cc_init(&cc);
    CU_ASSERT_EQUAL(cc.flags, 0);
    CU_ASSERT_EQUAL(cc.max_age, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.s_maxage, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.max_stale, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.min_fresh, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.stale_while_revalidate, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.stale_if_error, CR_CC_UNSET);
}

static void test_cc_parse_flags(void)
{
    cr_cache_control_t cc = cc_of("no-store, no-cache, private, public, must-revalidate, proxy-revalidate, no-transform, "
                                  "only-if-cached, immutable");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_NO_STORE | CR_CC_NO_CACHE | CR_CC_PRIVATE | CR_CC_PUBLIC | CR_CC_MUST_REVALIDATE |
                                  CR_CC_PROXY_REVALIDATE | CR_CC_NO_TRANSFORM | CR_CC_ONLY_IF_CACHED | CR_CC_IMMUTABLE);
    CU_ASSERT_EQUAL(cc.max_age, CR_CC_UNSET);

    cc = cc_of("public");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_PUBLIC);
    cc = cc_of("immutable");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_IMMUTABLE);
}

static void test_cc_parse_deltas(void)
{
    cr_cache_control_t cc =
        cc_of("max-age=60, s-maxage=120, max-stale=5, min-fresh=7, stale-while-revalidate=30, stale-if-error=86400");
    CU_ASSERT_EQUAL(cc.max_age, 60);
    CU_ASSERT_EQUAL(cc.s_maxage, 120);
    CU_ASSERT_EQUAL(cc.max_stale, 5);
    CU_ASSERT_EQUAL(cc.min_fresh, 7);
    CU_ASSERT_EQUAL(cc.stale_while_revalidate, 30);
    CU_ASSERT_EQUAL(cc.stale_if_error, 86400);
    CU_ASSERT_EQUAL(cc.flags, 0);

    cc = cc_of("max-age=0");
    CU_ASSERT_EQUAL(cc.max_age, 0);
}

static void test_cc_parse_case_insensitive(void)
{
    cr_cache_control_t cc = cc_of("No-Store, PUBLIC, Max-Age=30, S-MAXAGE=40, Stale-While-Revalidate=5, nO-cAcHe");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_NO_STORE | CR_CC_PUBLIC | CR_CC_NO_CACHE);
    CU_ASSERT_EQUAL(cc.max_age, 30);
    CU_ASSERT_EQUAL(cc.s_maxage, 40);
    CU_ASSERT_EQUAL(cc.stale_while_revalidate, 5);
}

static void test_cc_parse_whitespace_and_empty_members(void)
{
    cr_cache_control_t cc = cc_of("  ,, public ,\tmax-age = 60\t,  , s-maxage=\t90 ,");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_PUBLIC);
    CU_ASSERT_EQUAL(cc.max_age, 60);
    CU_ASSERT_EQUAL(cc.s_maxage, 90);

    cc = cc_of("");
    CU_ASSERT_EQUAL(cc.flags, 0);
    CU_ASSERT_EQUAL(cc.max_age, CR_CC_UNSET);
    cc = cc_of(" \t ");
    CU_ASSERT_EQUAL(cc.flags, 0);
}

static void test_cc_parse_quoted_values(void)
{
    cr_cache_control_t cc = cc_of("max-age=\"60\", s-maxage = \"70\"");
    CU_ASSERT_EQUAL(cc.max_age, 60);
    CU_ASSERT_EQUAL(cc.s_maxage, 70);

    /* qualified forms count as the unqualified ones; commas inside quotes do not start new directives */
    cc = cc_of("no-cache=\"Set-Cookie, public\", max-age=10");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_NO_CACHE);
    CU_ASSERT_EQUAL(cc.max_age, 10);
    cc = cc_of("private=\"X-Secret, no-store\"");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_PRIVATE);

    /* an escaped quote inside a quoted string does not end it */
    cc = cc_of("community=\"a\\\", public\", max-age=5");
    CU_ASSERT_EQUAL(cc.flags, 0);
    CU_ASSERT_EQUAL(cc.max_age, 5);
}

static void test_cc_parse_repeated_headers(void)
{
    cr_cache_control_t cc;
    cr_cc_init(&cc);
    cr_cc_parse(&cc, S("public"));
    cr_cc_parse(&cc, S("max-age=60"));
    cr_cc_parse(&cc, S("must-revalidate, stale-if-error=10"));
    CU_ASSERT_EQUAL(cc.flags, CR_CC_PUBLIC | CR_CC_MUST_REVALIDATE);
    CU_ASSERT_EQUAL(cc.max_age, 60);
    CU_ASSERT_EQUAL(cc.stale_if_error, 10);

    /* the same max-age twice is harmless; conflicting max-age / s-maxage means stale */
    cr_cc_parse(&cc, S("max-age=60"));
    CU_ASSERT_EQUAL(cc.max_age, 60);
    cr_cc_parse(&cc, S("max-age=120"));
    CU_ASSERT_EQUAL(cc.max_age, 0);
    cc = cc_of("s-maxage=10, s-maxage=20");
    CU_ASSERT_EQUAL(cc.s_maxage, 0);

    /* other deltas: the first occurrence wins */
    cr_cc_init(&cc);
    cr_cc_parse(&cc, S("stale-while-revalidate=5"));
    cr_cc_parse(&cc, S("stale-while-revalidate=50"));
    CU_ASSERT_EQUAL(cc.stale_while_revalidate, 5);
}

static void test_cc_parse_malformed_freshness_is_zero(void)
{
    static const char *const bad[] = {"max-age=abc", "max-age", "max-age=", "max-age=-5", "max-age=1.5", "max-age=60s",
                                      "max-age=\"60", "max-age=\"60\"x", "max-age=6 0", "max-age=\" 60\"",
                                      "max-age=+60", "max-age=0x10"};
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(bad); ++i) {
        cr_cache_control_t cc = cc_of(bad[i]);
        CU_ASSERT_EQUAL(cc.max_age, 0);
    }
    cr_cache_control_t cc = cc_of("s-maxage=never, max-age=30");
    CU_ASSERT_EQUAL(cc.s_maxage, 0);
    CU_ASSERT_EQUAL(cc.max_age, 30);
}

static void test_cc_parse_malformed_other_is_absent(void)
{
    cr_cache_control_t cc = cc_of("min-fresh=x, stale-while-revalidate=, stale-if-error=-1, max-stale=ten");
    CU_ASSERT_EQUAL(cc.min_fresh, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.stale_while_revalidate, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.stale_if_error, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.max_stale, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.flags & CR_CC_MAX_STALE_ANY, 0); /* a malformed value is not "any" */

    /* a later valid occurrence still counts */
    cc = cc_of("min-fresh=bad, min-fresh=9");
    CU_ASSERT_EQUAL(cc.min_fresh, 9);
}

static void test_cc_parse_overflow_saturates(void)
{
    cr_cache_control_t cc = cc_of("max-age=99999999999999999999999999");
    CU_ASSERT_EQUAL(cc.max_age, (int64_t)1 << 31);
    cc = cc_of("max-age=2147483648");
    CU_ASSERT_EQUAL(cc.max_age, (int64_t)1 << 31);
    cc = cc_of("max-age=2147483647");
    CU_ASSERT_EQUAL(cc.max_age, 2147483647);
    cc = cc_of("stale-if-error=18446744073709551617");
    CU_ASSERT_EQUAL(cc.stale_if_error, (int64_t)1 << 31);
    cc = cc_of("max-age=000000000000000000000000000030");
    CU_ASSERT_EQUAL(cc.max_age, 30);
}

static void test_cc_parse_max_stale(void)
{
    cr_cache_control_t cc = cc_of("max-stale");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_MAX_STALE_ANY);
    CU_ASSERT_EQUAL(cc.max_stale, CR_CC_UNSET);

    cc = cc_of("max-stale=30");
    CU_ASSERT_EQUAL(cc.flags & CR_CC_MAX_STALE_ANY, 0);
    CU_ASSERT_EQUAL(cc.max_stale, 30);

    cc = cc_of("MAX-STALE , min-fresh=1");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_MAX_STALE_ANY);
    CU_ASSERT_EQUAL(cc.min_fresh, 1);
}

static void test_cc_parse_unknown_directives_ignored(void)
{
    cr_cache_control_t cc = cc_of("community=\"UCI\", foo, bar=baz, max-agex=5, xmax-age=6, no-stores, s-maxage2=1");
    CU_ASSERT_EQUAL(cc.flags, 0);
    CU_ASSERT_EQUAL(cc.max_age, CR_CC_UNSET);
    CU_ASSERT_EQUAL(cc.s_maxage, CR_CC_UNSET);

    /* flag directives with a stray value still count */
    cc = cc_of("no-store=1");
    CU_ASSERT_EQUAL(cc.flags, CR_CC_NO_STORE);
}

/* --- dates -------------------------------------------------------------------------------------------------------- */

static void test_date_imf_fixdate(void)
{
    uint64_t ms = 1;
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, DATE_1994_S * 1000);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Thu, 01 Jan 1970 00:00:00 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, 0);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Tue, 14 Nov 2023 22:13:20 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, NOW);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("  Tue, 14 Nov 2023 22:13:20 GMT\t"), &ms), 0); /* OWS around the value */
    CU_ASSERT_EQUAL(ms, NOW);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Fri, 31 Dec 9999 23:59:59 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, 253402300799ull * 1000);
}

static void test_date_rfc850(void)
{
    uint64_t ms = 1;
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Sunday, 06-Nov-94 08:49:37 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, DATE_1994_S * 1000);
    /* two-digit years: 70..99 are 19xx, 00..69 are 20xx */
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Thursday, 01-Jan-70 00:00:00 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, 0);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Tuesday, 01-Jan-69 00:00:00 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, 3124224000ull * 1000);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Tuesday, 14-Nov-23 22:13:20 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, NOW);
    /* the short weekday name is not RFC 850 */
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Sun, 06-Nov-94 08:49:37 GMT"), &ms), -1);
}

static void test_date_asctime(void)
{
    uint64_t ms = 1;
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Sun Nov  6 08:49:37 1994"), &ms), 0);
    CU_ASSERT_EQUAL(ms, DATE_1994_S * 1000);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Tue Nov 14 22:13:20 2023"), &ms), 0);
    CU_ASSERT_EQUAL(ms, NOW);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Sun Nov 6 08:49:37 1994"), &ms), -1); /* day needs a pad space */
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Sun Nov  6 08:49:37 1994 GMT"), &ms), -1);
}

static void test_date_garbage(void)
{
    static const char *const bad[] = {
        "", "yesterday", "0", "1700000000", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMTx", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nox 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 32 Jan 1994 08:49:37 GMT",
        "Sun, 00 Jan 1994 08:49:37 GMT", "Sun, 31 Apr 1994 08:49:37 GMT", "Sun, 29 Feb 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT", "Sun, 06 Nov 1969 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 8:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06 Nov 94 08:49:37 GMT", "Sun Nov  6 08:49:37 94", "Sun, 06 Nov 1994 08:49:37 GMT, x",
    };
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(bad); ++i) {
        uint64_t ms = 12345;
        int rc = cr_http_date_parse(S(bad[i]), &ms);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_EQUAL(ms, 12345); /* untouched on failure */
        if (rc != -1)
            fprintf(stderr, "\n  accepted garbage date: \"%s\"\n", bad[i]);
    }
    /* not NUL-terminated: a valid date followed by bytes outside the length is fine, a truncated one is not */
    uint64_t ms = 0;
    const char buf[] = "Sun, 06 Nov 1994 08:49:37 GMTjunk";
    CU_ASSERT_EQUAL(cr_http_date_parse(cr_str(buf, 29), &ms), 0);
    CU_ASSERT_EQUAL(ms, DATE_1994_S * 1000);
    CU_ASSERT_EQUAL(cr_http_date_parse(cr_str(buf, 28), &ms), -1);
}

static void test_date_leap_years_and_leap_second(void)
{
    uint64_t ms = 0;
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Tue, 29 Feb 2000 12:00:00 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, 951825600ull * 1000);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Thu, 29 Feb 2024 23:59:59 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, 1709251199ull * 1000);
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Mon, 29 Feb 2100 00:00:00 GMT"), &ms), -1);
    /* a leap second is accepted and rolls into the next minute */
    CU_ASSERT_EQUAL(cr_http_date_parse(S("Sat, 31 Dec 2016 23:59:60 GMT"), &ms), 0);
    CU_ASSERT_EQUAL(ms, 1483228800ull * 1000);
}

static void test_date_format(void)
{
    char buf[32];
    memset(buf, 'x', sizeof(buf));
    cr_http_date_format(0, buf);
    CU_ASSERT_STRING_EQUAL(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_http_date_format(DATE_1994_S * 1000 + 999, buf); /* sub-second part is dropped */
    CU_ASSERT_STRING_EQUAL(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_http_date_format(NOW, buf);
    CU_ASSERT_STRING_EQUAL(buf, "Tue, 14 Nov 2023 22:13:20 GMT");
    CU_ASSERT_EQUAL(strlen(buf), 29);
    cr_http_date_format(951825600ull * 1000, buf);
    CU_ASSERT_STRING_EQUAL(buf, "Tue, 29 Feb 2000 12:00:00 GMT");
    cr_http_date_format(UINT64_MAX, buf); /* clamped, still 29 chars */
    CU_ASSERT_STRING_EQUAL(buf, "Fri, 31 Dec 9999 23:59:59 GMT");
}

static void test_date_roundtrip(void)
{
    uint64_t s, failures = 0;
    /* every ~1.3 days over 1970..2110 plus leap-day boundaries: format then parse gives the second back */
    for (s = 0; s < 4400000000ull; s += 113777) {
        char buf[32];
        uint64_t ms = 0;
        cr_http_date_format(s * 1000 + 500, buf);
        if (strlen(buf) != 29 || cr_http_date_parse(cr_str(buf, 29), &ms) != 0 || ms != s * 1000)
            ++failures;
    }
    CU_ASSERT_EQUAL(failures, 0);
}

/* --- storability -------------------------------------------------------------------------------------------------- */

static void test_decide_max_age_basic(void)
{
    cr_route_config_t route = route_default();
    cr_request_info_t req = req_with(NULL);
    cr_response_info_t res = res_with(200, "max-age=60");
    cr_store_decision_t d = decide(&route, &req, &res);
    ASSERT_STORED(d, 60 * SEC);
    CU_ASSERT_EQUAL(d.forced, 0);
    CU_ASSERT_EQUAL(d.initial_age_ms, 0);
    CU_ASSERT_EQUAL(d.swr_ms, 0);
    CU_ASSERT_EQUAL(d.sie_ms, 0);
    CU_ASSERT_EQUAL(d.must_revalidate, 0);
    CU_ASSERT_EQUAL(d.requires_revalidation, 0);

    /* a NULL request is accepted (no Authorization) */
    cr_policy_decide(&route, NULL, &res, NOW, NOW, &d);
    ASSERT_STORED(d, 60 * SEC);
}

static void test_decide_route_disabled(void)
{
    cr_route_config_t route = route_default();
    cr_request_info_t req = req_with(NULL);
    cr_response_info_t res = res_with(200, "public, max-age=600");
    route.cache = 0;
    route.ttl_ms = 10 * SEC;
    route.force_ttl_ms = 10 * SEC;
    cr_store_decision_t d = decide(&route, &req, &res);
    ASSERT_REASON(d, "route");
    CU_ASSERT_EQUAL(d.lifetime_ms, 0);
    CU_ASSERT_EQUAL(d.forced, 0);
}

static void test_decide_status_cacheable_by_default(void)
{
    static const int yes[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
    static const int no[] = {0, 100, 101, 199, 201, 202, 206, 302, 303, 304, 307, 400, 403, 500, 502, 503, 504, 600};
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(yes); ++i)
        CU_ASSERT_EQUAL(cr_policy_status_cacheable_by_default(yes[i]), 1);
    for (i = 0; i != CR_ARRAY_SIZE(no); ++i)
        CU_ASSERT_EQUAL(cr_policy_status_cacheable_by_default(no[i]), 0);

    /* each default status is stored on route ttl alone */
    cr_route_config_t route = route_default();
    route.ttl_ms = 5 * SEC;
    for (i = 0; i != CR_ARRAY_SIZE(yes); ++i) {
        cr_response_info_t res = res_with(yes[i], NULL);
        cr_store_decision_t d = decide(&route, NULL, &res);
        ASSERT_STORED(d, 5 * SEC);
    }
}

static void test_decide_other_status_needs_explicit_freshness(void)
{
    cr_route_config_t route = route_default();
    route.ttl_ms = 5 * SEC;
    route.heuristic_freshness = 1;

    /* route ttl and heuristics do not make a 302 / 500 storable */
    cr_response_info_t res = res_with(302, NULL);
    res.has_last_modified = 1;
    res.last_modified_ms = NOW - DAY;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "status");
    res = res_with(500, "public");
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "status");

    /* explicit freshness does */
    res = res_with(302, "max-age=10");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 10 * SEC);
    res = res_with(500, "s-maxage=3");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 3 * SEC);
    res = res_with(503, NULL);
    res.has_expires = 1;
    res.expires_valid = 1;
    res.expires_ms = NOW + 20 * SEC;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 20 * SEC);
}

static void test_decide_never_storable_statuses(void)
{
    static const int never[] = {100, 101, 103, 304, 0, 99, 600, 999, -1};
    cr_route_config_t route = route_default();
    size_t i;
    route.ttl_ms = 5 * SEC;
    for (i = 0; i != CR_ARRAY_SIZE(never); ++i) {
        cr_response_info_t res = res_with(never[i], "public, max-age=60");
        cr_store_decision_t d = decide(&route, NULL, &res);
        ASSERT_REASON(d, "status");
    }
}

/* A 206 (a fill sends no Range, so an origin sent it unasked) is never stored and leaves no hit-for-pass marker. */
static void test_decide_partial_content(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(206, "public, max-age=60");
    cr_store_decision_t d;
    route.ttl_ms = 5 * SEC;
    route.force_ttl_ms = 5 * SEC;
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "partial-content");
    CU_ASSERT_EQUAL(d.per_request, 1);
}

static void test_decide_no_store(void)
{
    cr_route_config_t route = route_default();
    route.ttl_ms = 5 * SEC;
    cr_response_info_t res = res_with(200, "max-age=60, no-store");
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-store");
    CU_ASSERT_EQUAL(d.lifetime_ms, 0);

    /* ignore_no_store without force_ttl does nothing */
    route.ignore_no_store = 1;
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-store");
}

static void test_decide_private(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, "private, max-age=60");
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "private");
    res = res_with(200, "private=\"X-User\", max-age=60");
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "private");
    res = res_with(200, "public, max-age=60");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 60 * SEC);
}

static void test_decide_vary_star(void)
{
    cr_route_config_t route = route_default();
    route.force_ttl_ms = 10 * SEC;
    route.ignore_no_store = 1;
    cr_response_info_t res = res_with(200, "public, max-age=60");
    res.vary_star = 1;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "vary-star");
}

static void test_decide_set_cookie(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, "public, max-age=60");
    res.has_set_cookie = 1;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "set-cookie");
    route.allow_set_cookie = 1;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 60 * SEC);
}

static void test_decide_authorization(void)
{
    cr_route_config_t route = route_default();
    cr_request_info_t req = req_with(NULL);
    req.has_authorization = 1;

    cr_response_info_t res = res_with(200, "max-age=60");
    cr_store_decision_t d = decide(&route, &req, &res);
    ASSERT_REASON(d, "authorization");

    route.ttl_ms = 5 * SEC;
    res = res_with(200, NULL);
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "authorization");

    res = res_with(200, "public, max-age=60");
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 60 * SEC);
    res = res_with(200, "s-maxage=30");
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 30 * SEC);
    res = res_with(200, "must-revalidate, max-age=20");
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 20 * SEC);
    /* proxy-revalidate alone is not enough */
    res = res_with(200, "proxy-revalidate, max-age=20");
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "authorization");
}

/* `cookies: pass` (the default): a request with Cookie stores only what the response says is shareable. */
static void test_decide_cookie(void)
{
    cr_route_config_t route = route_default();
    cr_request_info_t req = req_with(NULL);
    cr_response_info_t res;
    cr_store_decision_t d;

    req.has_cookie = 1;
    route.ttl_ms = 5 * SEC;
    res = res_with(200, NULL);
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "cookie");
    CU_ASSERT_EQUAL(d.per_request, 1); /* no hit-for-pass marker for everyone else */
    res = res_with(200, "max-age=60");
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "cookie");
    res = res_with(200, "must-revalidate, max-age=60"); /* enough for Authorization, not for Cookie */
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "cookie");
    res = res_with(200, "public, max-age=60");
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 60 * SEC);
    CU_ASSERT_EQUAL(d.shareable, 1);
    res = res_with(200, "public");
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 5 * SEC); /* public with the route's ttl is explicitly shareable */
    res = res_with(200, "s-maxage=30");
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 30 * SEC);
    CU_ASSERT_EQUAL(d.shareable, 1);
    /* a route that says how to treat cookies */
    route.cookies = CR_COOKIES_IGNORE;
    res = res_with(200, NULL);
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 5 * SEC);
    CU_ASSERT_EQUAL(d.shareable, 0);
    route.cookies = CR_COOKIES_LIST;
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 5 * SEC);
    /* without Cookie nothing changes, and shareable says what the response said */
    route.cookies = CR_COOKIES_PASS;
    req.has_cookie = 0;
    d = decide(&route, &req, &res);
    ASSERT_STORED(d, 5 * SEC);
    CU_ASSERT_EQUAL(d.shareable, 0);
    /* Authorization is per request too */
    req.has_authorization = 1;
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "authorization");
    CU_ASSERT_EQUAL(d.per_request, 1);
}

static void test_decide_no_freshness(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, NULL);
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-freshness");
    res = res_with(200, "public");
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-freshness");
    /* Last-Modified without heuristic_freshness is not freshness */
    res.has_last_modified = 1;
    res.last_modified_ms = NOW - DAY;
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-freshness");
    CU_ASSERT_EQUAL(d.lifetime_ms, 0);
}

static void test_decide_reason_precedence(void)
{
    cr_route_config_t route = route_default();
    cr_request_info_t req = req_with(NULL);
    req.has_authorization = 1;
    cr_response_info_t res = res_with(500, "no-store, private");
    res.vary_star = 1;
    res.has_set_cookie = 1;
    cr_store_decision_t d = decide(&route, &req, &res);
    ASSERT_REASON(d, "status");
    res.status = 200;
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "no-store");
    res.cc.flags &= ~(unsigned)CR_CC_NO_STORE;
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "private");
    res.cc.flags &= ~(unsigned)CR_CC_PRIVATE;
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "vary-star");
    res.vary_star = 0;
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "set-cookie");
    res.has_set_cookie = 0;
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "authorization");
    req.has_authorization = 0;
    d = decide(&route, &req, &res);
    ASSERT_REASON(d, "no-freshness");
}

/* --- freshness sources -------------------------------------------------------------------------------------------- */

static void test_decide_s_maxage_beats_max_age(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, "max-age=60, s-maxage=300");
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 300 * SEC);
    res = res_with(200, "max-age=600, s-maxage=30");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 30 * SEC);
    res = res_with(200, "max-age=600, s-maxage=0");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
}

static void test_decide_max_age_beats_expires(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, "max-age=60");
    res.has_expires = 1;
    res.expires_valid = 1;
    res.expires_ms = NOW + HOUR;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 60 * SEC);
    /* max-age=0 beats a future Expires too */
    res.cc = cc_of("max-age=0");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    /* and an invalid Expires does not matter with max-age */
    res.cc = cc_of("max-age=60");
    res.expires_valid = 0;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 60 * SEC);
}

static void test_decide_expires_minus_date(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, NULL);
    res.has_expires = 1;
    res.expires_valid = 1;
    /* the origin's clock is 10 minutes behind ours: Expires - Date is what counts, not Expires - now */
    res.date_ms = NOW - 10 * MIN;
    res.expires_ms = res.date_ms + HOUR;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, HOUR);
    CU_ASSERT_EQUAL(d.initial_age_ms, 10 * MIN);
}

static void test_decide_expires_without_date(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, NULL);
    cr_store_decision_t d;
    res.has_date = 0;
    res.has_expires = 1;
    res.expires_valid = 1;
    res.expires_ms = NOW + 90 * SEC;
    cr_policy_decide(&route, NULL, &res, NOW - 2 * SEC, NOW, &d);
    ASSERT_STORED(d, 90 * SEC);
    CU_ASSERT_EQUAL(d.initial_age_ms, 2 * SEC); /* response delay only */
}

static void test_decide_expires_past_or_invalid(void)
{
    cr_route_config_t route = route_default();
    route.ttl_ms = 5 * MIN; /* an Expires is freshness info: ttl must not replace it */
    cr_response_info_t res = res_with(200, NULL);
    res.has_expires = 1;
    res.expires_valid = 1;
    res.expires_ms = NOW - HOUR;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    res.expires_ms = NOW; /* Expires == Date */
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    res.expires_valid = 0; /* e.g. "Expires: 0" */
    res.expires_ms = NOW + HOUR;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    CU_ASSERT_EQUAL(d.forced, 0);
}

static void test_decide_route_ttl_only_without_response_freshness(void)
{
    cr_route_config_t route = route_default();
    route.ttl_ms = 45 * SEC;
    cr_response_info_t res = res_with(200, NULL);
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 45 * SEC);
    CU_ASSERT_EQUAL(d.forced, 0);
    res = res_with(200, "public");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 45 * SEC);
    res = res_with(200, "max-age=600");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 600 * SEC);
    res = res_with(200, "max-age=0");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    res = res_with(200, "max-age=bogus"); /* malformed max-age is 0, not absent */
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
}

static void test_decide_heuristic(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, NULL);
    res.has_last_modified = 1;
    res.last_modified_ms = NOW - 10 * HOUR;

    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-freshness"); /* off by default */

    route.heuristic_freshness = 1;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, HOUR);

    /* capped at 24h */
    res.last_modified_ms = NOW - 365 * DAY;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, DAY);

    /* without Date the response time is the base */
    res.has_date = 0;
    res.last_modified_ms = NOW - 100 * MIN;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 10 * MIN);

    /* Last-Modified in the future: stored stale */
    res.has_date = 1;
    res.last_modified_ms = NOW + HOUR;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);

    /* no Last-Modified: nothing to go on */
    res.has_last_modified = 0;
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-freshness");
}

static void test_decide_route_ttl_beats_heuristic(void)
{
    cr_route_config_t route = route_default();
    route.heuristic_freshness = 1;
    route.ttl_ms = 7 * SEC;
    cr_response_info_t res = res_with(200, NULL);
    res.has_last_modified = 1;
    res.last_modified_ms = NOW - 10 * HOUR;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 7 * SEC);
    /* and explicit freshness beats the heuristic */
    res.cc = cc_of("max-age=2");
    res.has_cache_control = 1;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 2 * SEC);
}

static void test_decide_max_ttl_cap(void)
{
    cr_route_config_t route = route_default();
    route.max_ttl_ms = 30 * SEC;
    cr_response_info_t res = res_with(200, "s-maxage=3600");
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 30 * SEC);
    res = res_with(200, "max-age=10");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 10 * SEC);
    res = res_with(200, NULL);
    res.has_expires = 1;
    res.expires_valid = 1;
    res.expires_ms = NOW + DAY;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 30 * SEC);

    route.ttl_ms = HOUR;
    res = res_with(200, NULL);
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 30 * SEC);

    route.ttl_ms = 0;
    route.heuristic_freshness = 1;
    res.has_last_modified = 1;
    res.last_modified_ms = NOW - 100 * DAY;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 30 * SEC);

    route.force_ttl_ms = HOUR;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 30 * SEC);
    CU_ASSERT_EQUAL(d.forced, 1);

    /* a huge max-age saturates sanely before the cap */
    route = route_default();
    res = res_with(200, "max-age=99999999999999999999");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, ((uint64_t)1 << 31) * SEC);
}

static void test_decide_no_cache(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, "no-cache");
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    CU_ASSERT_EQUAL(d.requires_revalidation, 1);
    CU_ASSERT_EQUAL(d.forced, 0);

    res = res_with(200, "no-cache, max-age=60");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 60 * SEC);
    CU_ASSERT_EQUAL(d.requires_revalidation, 1);

    res = res_with(200, "no-cache=\"Set-Cookie\"");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    CU_ASSERT_EQUAL(d.requires_revalidation, 1);

    route.ttl_ms = 9 * SEC;
    res = res_with(200, "no-cache");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 9 * SEC);
    CU_ASSERT_EQUAL(d.requires_revalidation, 1);

    /* no-cache does not override no-store */
    res = res_with(200, "no-cache, no-store");
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-store");
}

static void test_decide_pragma_no_cache(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, NULL);
    res.pragma_no_cache = 1;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    CU_ASSERT_EQUAL(d.requires_revalidation, 1);

    /* with Cache-Control present, Pragma is ignored */
    res = res_with(200, "max-age=60");
    res.pragma_no_cache = 1;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 60 * SEC);
    CU_ASSERT_EQUAL(d.requires_revalidation, 0);
    res = res_with(200, "public");
    res.pragma_no_cache = 1;
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-freshness");
}

/* --- force_ttl ---------------------------------------------------------------------------------------------------- */

static void test_decide_force_ttl_triggers(void)
{
    static const char *const ccs[] = {"no-cache", "max-age=0", "s-maxage=0", "max-age=60, s-maxage=0", "public",
                                      "no-cache, max-age=600", "max-age=junk"};
    cr_route_config_t route = route_default();
    route.force_ttl_ms = 2 * MIN;
    route.ttl_ms = 10 * SEC;
    size_t i;

    for (i = 0; i != CR_ARRAY_SIZE(ccs); ++i) {
        cr_response_info_t res = res_with(200, ccs[i]);
        cr_store_decision_t d = decide(&route, NULL, &res);
        ASSERT_STORED(d, 2 * MIN);
        CU_ASSERT_EQUAL(d.forced, 1);
        CU_ASSERT_EQUAL(d.requires_revalidation, 0);
    }

    /* no Cache-Control at all, Pragma, expired and invalid Expires */
    cr_response_info_t res = res_with(404, NULL);
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 2 * MIN);
    CU_ASSERT_EQUAL(d.forced, 1);
    res.pragma_no_cache = 1;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 2 * MIN);
    CU_ASSERT_EQUAL(d.forced, 1);
    CU_ASSERT_EQUAL(d.requires_revalidation, 0);
    res.pragma_no_cache = 0;
    res.has_expires = 1;
    res.expires_valid = 1;
    res.expires_ms = NOW - SEC;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 2 * MIN);
    CU_ASSERT_EQUAL(d.forced, 1);
    res.expires_valid = 0;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 2 * MIN);
    CU_ASSERT_EQUAL(d.forced, 1);
}

static void test_decide_force_ttl_not_applied_to_fresh_responses(void)
{
    cr_route_config_t route = route_default();
    route.force_ttl_ms = 2 * MIN;
    cr_response_info_t res = res_with(200, "max-age=5");
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 5 * SEC);
    CU_ASSERT_EQUAL(d.forced, 0);
    /* the shared cache follows s-maxage, so max-age=0 next to it is not a trigger */
    res = res_with(200, "s-maxage=60, max-age=0");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 60 * SEC);
    CU_ASSERT_EQUAL(d.forced, 0);
    res = res_with(200, NULL);
    res.has_expires = 1;
    res.expires_valid = 1;
    res.expires_ms = NOW + HOUR;
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, HOUR);
    CU_ASSERT_EQUAL(d.forced, 0);
}

static void test_decide_force_ttl_no_store_and_private(void)
{
    cr_route_config_t route = route_default();
    route.force_ttl_ms = 2 * MIN;
    cr_response_info_t ns = res_with(200, "no-store");
    cr_response_info_t pv = res_with(200, "private, max-age=600");
    cr_store_decision_t d = decide(&route, NULL, &ns);
    ASSERT_REASON(d, "no-store");
    CU_ASSERT_EQUAL(d.forced, 0);
    d = decide(&route, NULL, &pv);
    ASSERT_REASON(d, "private");

    route.ignore_no_store = 1;
    d = decide(&route, NULL, &ns);
    ASSERT_STORED(d, 2 * MIN);
    CU_ASSERT_EQUAL(d.forced, 1);
    d = decide(&route, NULL, &pv);
    ASSERT_STORED(d, 2 * MIN);
    CU_ASSERT_EQUAL(d.forced, 1);

    /* ignore_no_store does not lift Set-Cookie, Vary: * or Authorization */
    ns.has_set_cookie = 1;
    d = decide(&route, NULL, &ns);
    ASSERT_REASON(d, "set-cookie");
    cr_request_info_t req = req_with(NULL);
    req.has_authorization = 1;
    d = decide(&route, &req, &pv);
    ASSERT_REASON(d, "authorization");
}

static void test_decide_force_ttl_status(void)
{
    cr_route_config_t route = route_default();
    route.force_ttl_ms = 2 * MIN;
    route.ignore_no_store = 1;
    cr_response_info_t res = res_with(500, NULL);
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "status");
    res = res_with(502, "no-cache");
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "status");
    /* non-default status with explicit freshness: stored on its own terms, never forced */
    res = res_with(500, "max-age=0");
    d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 0);
    CU_ASSERT_EQUAL(d.forced, 0);
    res = res_with(302, "no-store, max-age=60");
    d = decide(&route, NULL, &res);
    ASSERT_REASON(d, "no-store");
}

static void test_decide_force_beats_route_ttl_and_heuristic(void)
{
    cr_route_config_t route = route_default();
    route.ttl_ms = 10 * SEC;
    route.heuristic_freshness = 1;
    route.force_ttl_ms = 3 * MIN;
    cr_response_info_t res = res_with(200, NULL);
    res.has_last_modified = 1;
    res.last_modified_ms = NOW - 10 * HOUR;
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 3 * MIN);
    CU_ASSERT_EQUAL(d.forced, 1);
}

/* --- age ---------------------------------------------------------------------------------------------------------- */

static void test_decide_initial_age(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, "max-age=600");
    cr_store_decision_t d;

    /* corrected age wins: Age 30s plus 2s response delay */
    res.has_age = 1;
    res.age_s = 30;
    res.date_ms = NOW - 5 * SEC;
    cr_policy_decide(&route, NULL, &res, NOW - 2 * SEC, NOW, &d);
    CU_ASSERT_EQUAL(d.initial_age_ms, 32 * SEC);
    CU_ASSERT_EQUAL(d.lifetime_ms, 600 * SEC); /* age is separate from lifetime */

    /* apparent age wins: Date 100s old, small Age */
    res.age_s = 1;
    res.date_ms = NOW - 100 * SEC;
    cr_policy_decide(&route, NULL, &res, NOW - 2 * SEC, NOW, &d);
    CU_ASSERT_EQUAL(d.initial_age_ms, 100 * SEC);

    /* Date in the future: apparent age is 0, not negative */
    res.has_age = 0;
    res.date_ms = NOW + HOUR;
    cr_policy_decide(&route, NULL, &res, NOW - 250, NOW, &d);
    CU_ASSERT_EQUAL(d.initial_age_ms, 250);

    /* no Date, no Age, response time before request time (clock step): 0 */
    res.has_date = 0;
    cr_policy_decide(&route, NULL, &res, NOW + 5, NOW, &d);
    CU_ASSERT_EQUAL(d.initial_age_ms, 0);

    /* an absurd Age saturates instead of wrapping */
    res.has_age = 1;
    res.age_s = UINT64_MAX / 10;
    cr_policy_decide(&route, NULL, &res, NOW - SEC, NOW, &d);
    CU_ASSERT_EQUAL(d.initial_age_ms, UINT64_MAX);
}

/* --- stale-while-revalidate / stale-if-error ---------------------------------------------------------------------- */

static void test_decide_swr_sie_from_response(void)
{
    cr_route_config_t route = route_default();
    cr_response_info_t res = res_with(200, "max-age=60, stale-while-revalidate=30, stale-if-error=86400");
    cr_store_decision_t d = decide(&route, NULL, &res);
    ASSERT_STORED(d, 60 * SEC);
    CU_ASSERT_EQUAL(d.swr_ms, 30 * SEC);
    CU_ASSERT_EQUAL(d.sie_ms, DAY);
    CU_ASSERT_EQUAL(d.must_revalidate, 0);
}

static void test_decide_swr_sie_from_route(void)
{
    cr_route_config_t route = route_default();
    route.stale_while_revalidate_ms = 15 * SEC;
    route.stale_if_error_ms = 5 * MIN;
    cr_response_info_t res = res_with(200, "max-age=60");
    cr_store_decision_t d = decide(&route, NULL, &res);
    CU_ASSERT_EQUAL(d.swr_ms, 15 * SEC);
    CU_ASSERT_EQUAL(d.sie_ms, 5 * MIN);

    /* the response's own directive wins, even when it is 0 */
    res = res_with(200, "max-age=60, stale-while-revalidate=0, stale-if-error=7");
    d = decide(&route, NULL, &res);
    CU_ASSERT_EQUAL(d.swr_ms, 0);
    CU_ASSERT_EQUAL(d.sie_ms, 7 * SEC);

    /* a malformed directive counts as absent: the route applies */
    res = res_with(200, "max-age=60, stale-while-revalidate=soon");
    d = decide(&route, NULL, &res);
    CU_ASSERT_EQUAL(d.swr_ms, 15 * SEC);
}

static void test_decide_must_revalidate_suppresses_stale(void)
{
    static const char *const ccs[] = {"max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=30",
                                      "max-age=60, proxy-revalidate, stale-while-revalidate=30, stale-if-error=30",
                                      "s-maxage=60, stale-while-revalidate=30, stale-if-error=30"};
    cr_route_config_t route = route_default();
    route.stale_while_revalidate_ms = 15 * SEC;
    route.stale_if_error_ms = 5 * MIN;
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(ccs); ++i) {
        cr_response_info_t res = res_with(200, ccs[i]);
        cr_store_decision_t d = decide(&route, NULL, &res);
        ASSERT_STORED(d, 60 * SEC);
        CU_ASSERT_EQUAL(d.must_revalidate, 1);
        CU_ASSERT_EQUAL(d.swr_ms, 0);
        CU_ASSERT_EQUAL(d.sie_ms, 0);
    }
}

/* --- request side ------------------------------------------------------------------------------------------------- */

static void test_request_accepts_fresh_basic(void)
{
    cr_request_info_t req = req_with(NULL);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 0, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 60 * SEC - 1, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 60 * SEC, 60 * SEC), 0);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 0, 0), 0);
    /* no-cache and max-stale do not change freshness itself */
    req = req_with("no-cache, max-stale");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 10, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 61 * SEC, 60 * SEC), 0);
}

static void test_request_accepts_fresh_max_age(void)
{
    cr_request_info_t req = req_with("max-age=10");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 10 * SEC, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 10 * SEC + 1, 60 * SEC), 0);
    req = req_with("max-age=0");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 0, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 1, 60 * SEC), 0);
}

static void test_request_accepts_fresh_min_fresh(void)
{
    cr_request_info_t req = req_with("min-fresh=20");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 40 * SEC, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 40 * SEC + 1, 60 * SEC), 0);
    req = req_with("min-fresh=20, max-age=5");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 5 * SEC, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 6 * SEC, 60 * SEC), 0);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_fresh(&req, 1 * SEC, 20 * SEC), 0);
}

static void test_request_accepts_stale(void)
{
    cr_request_info_t req = req_with(NULL);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 70 * SEC, 60 * SEC), 0);

    req = req_with("max-stale");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 70 * SEC, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 100 * DAY, 0), 1);

    req = req_with("max-stale=10");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 70 * SEC, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 70 * SEC + 1, 60 * SEC), 0);
    req = req_with("max-stale=0");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 60 * SEC, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 60 * SEC + 1, 60 * SEC), 0);

    /* the client's max-age still bounds the age */
    req = req_with("max-stale, max-age=65");
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 65 * SEC, 60 * SEC), 1);
    CU_ASSERT_EQUAL(cr_policy_request_accepts_stale(&req, 66 * SEC, 60 * SEC), 0);
}

static void test_request_no_cache(void)
{
    cr_request_info_t req = req_with(NULL);
    CU_ASSERT_EQUAL(cr_policy_request_no_cache(&req), 0);
    req = req_with("No-Cache");
    CU_ASSERT_EQUAL(cr_policy_request_no_cache(&req), 1);
    req = req_with(NULL);
    req.pragma_no_cache = 1;
    CU_ASSERT_EQUAL(cr_policy_request_no_cache(&req), 1);
    req = req_with("max-age=5");
    req.pragma_no_cache = 1; /* Cache-Control present: Pragma ignored */
    CU_ASSERT_EQUAL(cr_policy_request_no_cache(&req), 0);
}

/* --- ETags and header lists --------------------------------------------------------------------------------------- */

static void test_etag_weak_comparison(void)
{
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"abc\""), S("\"abc\"")), 1);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("W/\"abc\""), S("\"abc\"")), 1);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"abc\""), S("W/\"abc\"")), 1);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("W/\"abc\""), S("W/\"abc\"")), 1);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"abc\""), S("\"abd\"")), 0);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"ABC\""), S("\"abc\"")), 0); /* case-sensitive */
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"ab\""), S("\"abc\"")), 0);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"abc\""), S("abc")), 0); /* quotes are part of the tag */
}

static void test_etag_list_and_star(void)
{
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"x\", W/\"y\" ,\t\"abc\""), S("\"abc\"")), 1);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"x\", \"y\""), S("\"abc\"")), 0);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"a,b\""), S("\"a,b\"")), 1); /* comma inside the tag */
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("\"a,b\""), S("\"a\"")), 0);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("*"), S("\"anything\"")), 1);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S(" * "), S("W/\"anything\"")), 1);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("*"), S("")), 0); /* no representation */
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S(""), S("\"abc\"")), 0);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(cr_str(NULL, 0), S("\"abc\"")), 0);
    CU_ASSERT_EQUAL(cr_policy_etag_matches(S("W/"), S("W/")), 0);
}

struct collect {
    char items[8][32];
    size_t n;
    size_t stop_after;
};

static int collect_cb(void *ctx, cr_str_t member)
{
    struct collect *c = ctx;
    if (c->n < 8 && member.len < 32) {
        memcpy(c->items[c->n], member.base, member.len);
        c->items[c->n][member.len] = '\0';
    }
    ++c->n;
    return c->stop_after != 0 && c->n >= c->stop_after;
}

static void test_header_list_foreach(void)
{
    struct collect c;

    memset(&c, 0, sizeof(c));
    cr_header_list_foreach(S(" a ,b,\t\"c, d\" ,, e=\"x\\\",y\" ,"), collect_cb, &c);
    CU_ASSERT_EQUAL_FATAL(c.n, 4);
    CU_ASSERT_STRING_EQUAL(c.items[0], "a");
    CU_ASSERT_STRING_EQUAL(c.items[1], "b");
    CU_ASSERT_STRING_EQUAL(c.items[2], "\"c, d\"");
    CU_ASSERT_STRING_EQUAL(c.items[3], "e=\"x\\\",y\"");

    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    cr_header_list_foreach(S("1,2,3,4"), collect_cb, &c);
    CU_ASSERT_EQUAL(c.n, 2);

    memset(&c, 0, sizeof(c));
    cr_header_list_foreach(S(" , ,\t"), collect_cb, &c);
    CU_ASSERT_EQUAL(c.n, 0);
    cr_header_list_foreach(cr_str(NULL, 0), collect_cb, &c);
    CU_ASSERT_EQUAL(c.n, 0);

    /* an unterminated quote runs to the end of the value */
    memset(&c, 0, sizeof(c));
    cr_header_list_foreach(S("a, \"b, c"), collect_cb, &c);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT_STRING_EQUAL(c.items[1], "\"b, c");
}

/* --- registration ------------------------------------------------------------------------------------------------- */

void cr_test_register_policy(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
#define T(f) {#f, f}
        T(test_cc_init_defaults),
        T(test_cc_parse_flags),
        T(test_cc_parse_deltas),
        T(test_cc_parse_case_insensitive),
        T(test_cc_parse_whitespace_and_empty_members),
        T(test_cc_parse_quoted_values),
        T(test_cc_parse_repeated_headers),
        T(test_cc_parse_malformed_freshness_is_zero),
        T(test_cc_parse_malformed_other_is_absent),
        T(test_cc_parse_overflow_saturates),
        T(test_cc_parse_max_stale),
        T(test_cc_parse_unknown_directives_ignored),
        T(test_date_imf_fixdate),
        T(test_date_rfc850),
        T(test_date_asctime),
        T(test_date_garbage),
        T(test_date_leap_years_and_leap_second),
        T(test_date_format),
        T(test_date_roundtrip),
        T(test_decide_max_age_basic),
        T(test_decide_route_disabled),
        T(test_decide_status_cacheable_by_default),
        T(test_decide_other_status_needs_explicit_freshness),
        T(test_decide_never_storable_statuses),
        T(test_decide_partial_content),
        T(test_decide_no_store),
        T(test_decide_private),
        T(test_decide_vary_star),
        T(test_decide_set_cookie),
        T(test_decide_authorization),
        T(test_decide_cookie),
        T(test_decide_no_freshness),
        T(test_decide_reason_precedence),
        T(test_decide_s_maxage_beats_max_age),
        T(test_decide_max_age_beats_expires),
        T(test_decide_expires_minus_date),
        T(test_decide_expires_without_date),
        T(test_decide_expires_past_or_invalid),
        T(test_decide_route_ttl_only_without_response_freshness),
        T(test_decide_heuristic),
        T(test_decide_route_ttl_beats_heuristic),
        T(test_decide_max_ttl_cap),
        T(test_decide_no_cache),
        T(test_decide_pragma_no_cache),
        T(test_decide_force_ttl_triggers),
        T(test_decide_force_ttl_not_applied_to_fresh_responses),
        T(test_decide_force_ttl_no_store_and_private),
        T(test_decide_force_ttl_status),
        T(test_decide_force_beats_route_ttl_and_heuristic),
        T(test_decide_initial_age),
        T(test_decide_swr_sie_from_response),
        T(test_decide_swr_sie_from_route),
        T(test_decide_must_revalidate_suppresses_stale),
        T(test_request_accepts_fresh_basic),
        T(test_request_accepts_fresh_max_age),
        T(test_request_accepts_fresh_min_fresh),
        T(test_request_accepts_stale),
        T(test_request_no_cache),
        T(test_etag_weak_comparison),
        T(test_etag_list_and_star),
        T(test_header_list_foreach),
#undef T
    };
    CU_pSuite suite = CU_add_suite("policy", NULL, NULL);
    size_t i;

    if (suite == NULL)
        return;
    for (i = 0; i != CR_ARRAY_SIZE(tests); ++i)
        if (CU_add_test(suite, tests[i].name, tests[i].fn) == NULL)
            return;
}
