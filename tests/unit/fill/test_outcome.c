/*
 * test_outcome.c: unit tests for the fill's outcome decision (cr_fill_decide, cr_fill_stale_may_answer_error in
 * sidecar/fill/fill.c), driven by a fake clock: fresh, stale, not storable (per response and per request), 5xx,
 * stale-if-error windows and must-revalidate, failed fetches, too large.
 */
#include <CUnit/CUnit.h>

#include "corral/fill/fill.h"
#include "fixtures.h"

void cr_test_register_outcome(void);

#define T0 1000000 /* the fake clock's start, ms */

/* A stored copy: response at T0, fresh for lifetime_ms, stale-if-error for sie_ms after that. */
static cr_object_t *stale_copy(uint32_t lifetime_ms, uint32_t sie_ms, unsigned flags)
{
    cr_object_t *obj = ts_make("example.com\n/a", NULL, 10, 'x');
    obj->response_time_ms = T0;
    obj->lifetime_ms = lifetime_ms;
    obj->sie_ms = sie_ms;
    obj->flags |= (uint16_t)flags;
    return obj;
}

static cr_fill_verdict_t decide(int status, int storable, int per_request, const cr_object_t *stale, uint64_t now)
{
    cr_store_decision_t d = {.storable = storable, .per_request = per_request};
    cr_fill_inputs_t in = {.status = status, .decision = &d, .stale = stale, .now = now};
    return cr_fill_decide(&in);
}

static void test_storable_and_not(void)
{
    CU_ASSERT_EQUAL(decide(200, 1, 0, NULL, T0), CR_FILL_STORE);
    CU_ASSERT_EQUAL(decide(404, 1, 0, NULL, T0), CR_FILL_STORE);
    /* not storable by the response (no-store, private, Set-Cookie): the others pass, a marker is left */
    CU_ASSERT_EQUAL(decide(200, 0, 0, NULL, T0), CR_FILL_LEADER_ONLY);
    /* not storable because of the leader's request (Authorization, Cookie): nothing is left for the others */
    CU_ASSERT_EQUAL(decide(200, 0, 1, NULL, T0), CR_FILL_LEADER_ONLY_PER_REQUEST);
    /* a 5xx nobody may store is still shared by the herd */
    CU_ASSERT_EQUAL(decide(500, 0, 0, NULL, T0), CR_FILL_SHARE);
    CU_ASSERT_EQUAL(decide(503, 0, 1, NULL, T0), CR_FILL_SHARE);
    CU_ASSERT_EQUAL(decide(599, 0, 0, NULL, T0), CR_FILL_SHARE);
    /* a storable 5xx (explicit freshness) is stored */
    CU_ASSERT_EQUAL(decide(502, 1, 0, NULL, T0), CR_FILL_STORE);
}

static void test_stale_if_error_window(void)
{
    cr_object_t *s = stale_copy(60000, 30000, 0);

    /* inside the window (freshness 60 s, then 30 s): 500, 502, 503, 504 are answered from the stale copy */
    CU_ASSERT_EQUAL(decide(500, 0, 0, s, T0 + 70000), CR_FILL_STALE);
    CU_ASSERT_EQUAL(decide(502, 1, 0, s, T0 + 70000), CR_FILL_STALE);
    CU_ASSERT_EQUAL(decide(503, 0, 0, s, T0 + 90000), CR_FILL_STALE); /* its last millisecond */
    CU_ASSERT_EQUAL(decide(504, 0, 0, s, T0 + 1), CR_FILL_STALE);
    /* other 5xx are not covered */
    CU_ASSERT_EQUAL(decide(501, 0, 0, s, T0 + 70000), CR_FILL_SHARE);
    CU_ASSERT_EQUAL(decide(505, 1, 0, s, T0 + 70000), CR_FILL_STORE);
    /* past the window */
    CU_ASSERT_EQUAL(decide(503, 0, 0, s, T0 + 90001), CR_FILL_SHARE);
    /* a good answer wins over the stale copy */
    CU_ASSERT_EQUAL(decide(200, 1, 0, s, T0 + 70000), CR_FILL_STORE);
    CU_ASSERT_EQUAL(decide(200, 0, 0, s, T0 + 70000), CR_FILL_LEADER_ONLY);
    cr_object_release(&s);

    /* initial age counts: a copy already 50 s old when stored has 40 s left at T0 */
    s = stale_copy(60000, 30000, 0);
    s->initial_age_ms = 50000;
    CU_ASSERT_TRUE(cr_fill_stale_may_answer_error(s, T0 + 40000));
    CU_ASSERT_FALSE(cr_fill_stale_may_answer_error(s, T0 + 40001));
    cr_object_release(&s);
}

static void test_stale_if_error_forbidden(void)
{
    cr_object_t *s = stale_copy(60000, 30000, CR_OBJ_MUST_REVALIDATE);
    CU_ASSERT_FALSE(cr_fill_stale_may_answer_error(s, T0 + 70000));
    CU_ASSERT_EQUAL(decide(502, 0, 0, s, T0 + 70000), CR_FILL_SHARE);
    cr_object_release(&s);

    s = stale_copy(60000, 0, 0); /* no stale-if-error window */
    CU_ASSERT_FALSE(cr_fill_stale_may_answer_error(s, T0 + 1));
    CU_ASSERT_EQUAL(decide(504, 0, 0, s, T0 + 1), CR_FILL_SHARE);
    cr_object_release(&s);

    CU_ASSERT_FALSE(cr_fill_stale_may_answer_error(NULL, T0));
}

static void test_failed_fetch(void)
{
    cr_object_t *s = stale_copy(1000, 5000, 0);
    cr_fill_inputs_t in = {.failed = 1, .now = T0 + 3000};

    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR); /* no stale copy: the error */
    in.stale = s;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_STALE);
    in.now = T0 + 6001;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR); /* the window has passed */
    cr_object_release(&s);
}

/* RFC 9111 4.2.4 (issue 17): an origin that cannot be reached lets a stale copy answer within stale_if_unreachable,
 * without stale-if-error, but never one stored with no-cache or must-revalidate (proxy-revalidate and s-maxage set it
 * too); a failure after the origin answered (a timeout, garbage) does not. */
static void test_origin_unreachable(void)
{
    cr_object_t *s = stale_copy(1000, 0, 0), *nc = stale_copy(1000, 0, CR_OBJ_NO_CACHE), *mr = stale_copy(1000, 0, CR_OBJ_MUST_REVALIDATE);
    cr_fill_inputs_t in = {.failed = 1, .now = T0 + 3000, .stale = s, .stale_if_unreachable_ms = 60000};

    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR); /* failed, but the origin answered something */
    in.unreachable = 1;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_STALE_ORIGIN_DOWN);
    in.now = T0 + 61000; /* the end of the window: 1 s of freshness + 60 s */
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_STALE_ORIGIN_DOWN);
    in.now = T0 + 61001;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR);
    in.now = T0 + 3000;
    in.stale_if_unreachable_ms = 0; /* turned off */
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR);
    in.stale_if_unreachable_ms = 60000;
    in.stale = nc;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR);
    in.stale = mr;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR);
    in.stale = NULL;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR);
    cr_object_release(&s);
    cr_object_release(&nc);
    cr_object_release(&mr);
    /* stale-if-error, when it covers the moment, is the reason given */
    s = stale_copy(1000, 5000, 0);
    in.stale = s;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_STALE);
    cr_object_release(&s);
}

/* issue 16: a fetch that was not sent (the upstream unhealthy, or shed) lets a stale copy answer within stale-if-error
 * or the route's serve_stale_when_down window (never under no-cache or must-revalidate); stale_if_unreachable does
 * not apply (nothing was tried). */
static void test_upstream_down(void)
{
    cr_object_t *s = stale_copy(1000, 0, 0), *sie = stale_copy(1000, 5000, 0), *mr = stale_copy(1000, 0, CR_OBJ_MUST_REVALIDATE);
    cr_fill_inputs_t in = {.failed = 1, .now = T0 + 3000, .stale = s, .upstream_down = CR_FILL_DOWN_UNHEALTHY,
                           .stale_if_unreachable_ms = 60000};

    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR); /* no window: not stale_if_unreachable's */
    in.stale_when_down_ms = 10000;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_STALE_UPSTREAM_DOWN);
    in.upstream_down = CR_FILL_DOWN_SHED;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_STALE_UPSTREAM_DOWN);
    in.now = T0 + 11000; /* 1 s fresh + 10 s */
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_STALE_UPSTREAM_DOWN);
    in.now = T0 + 11001;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR);
    in.stale = NULL;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR);
    in.now = T0 + 3000;
    in.stale = mr;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_ERROR);
    /* stale-if-error alone is enough */
    in.stale_when_down_ms = 0;
    in.stale = sie;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_STALE_UPSTREAM_DOWN);
    cr_object_release(&s);
    cr_object_release(&sie);
    cr_object_release(&mr);
}

static void test_too_large(void)
{
    cr_object_t *s = stale_copy(1000, 5000, 0);
    cr_store_decision_t d = {.storable = 1};
    cr_fill_inputs_t in = {.too_large = 1, .status = 200, .decision = &d, .stale = s, .now = T0 + 2000};

    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_PASS_ALL); /* never stale-if-error, never stored */
    in.status = 503;
    CU_ASSERT_EQUAL(cr_fill_decide(&in), CR_FILL_PASS_ALL);
    cr_object_release(&s);
}

void cr_test_register_outcome(void)
{
    CU_pSuite s = CU_add_suite("fill outcome", NULL, NULL);
    CU_add_test(s, "storable, not storable, per request, 5xx", test_storable_and_not);
    CU_add_test(s, "stale-if-error window on a fake clock", test_stale_if_error_window);
    CU_add_test(s, "an unreachable origin: stale within stale_if_unreachable", test_origin_unreachable);
    CU_add_test(s, "stale-if-error: must-revalidate, no window", test_stale_if_error_forbidden);
    CU_add_test(s, "failed fetch: error or stale copy", test_failed_fetch);
    CU_add_test(s, "too large: everyone passes", test_too_large);
    CU_add_test(s, "not sent (unhealthy, shed): stale within stale-if-error or serve_stale_when_down", test_upstream_down);
}
