/*
 * test_breaker.c: unit tests for sidecar/tier/breaker.c, the per-server circuit breaker, on a fake clock (plain
 * integers of ms passed to every call).
 *
 * The failure threshold (consecutive only: a success in between resets the count), the back-off from the base
 * doubling per failed probe up to the cap and back to the base after a success, exactly one probe in half-open until
 * it reports, late reports while open ignored, and the state-change indicator true exactly once per change.
 */
#include <CUnit/CUnit.h>

#include "corral/tier/breaker.h"

void cr_test_register_breaker(void);

/* Counts the changes the calls report, so every test can assert there was exactly one per transition. */
static unsigned tb_changes;

static bool tb_allow(cr_breaker_t *b, uint64_t now)
{
    bool changed = true;
    bool ok = cr_breaker_allow(b, now, &changed);
    tb_changes += changed;
    return ok;
}

static void tb_report(cr_breaker_t *b, uint64_t now, bool ok)
{
    tb_changes += cr_breaker_report(b, now, ok);
}

static void test_breaker_threshold(void)
{
    cr_breaker_t b;
    cr_breaker_init(&b, NULL);
    tb_changes = 0;
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(cr_breaker_backoff_ms(&b), CR_BREAKER_DEFAULT_BASE_MS);

    /* 4 failures, a success, 4 failures: still closed (the count is of consecutive failures) */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT(tb_allow(&b, 10));
        tb_report(&b, 10, false);
    }
    tb_report(&b, 11, true);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT(tb_allow(&b, 12));
        tb_report(&b, 12, false);
    }
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(tb_changes, 0);

    /* the 5th consecutive failure opens it, and says so once */
    CU_ASSERT(cr_breaker_report(&b, 100, false));
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_OPEN);
    /* late reports of requests sent before the opening change nothing */
    CU_ASSERT(!cr_breaker_report(&b, 101, false));
    CU_ASSERT(!cr_breaker_report(&b, 102, true));
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_OPEN);
    /* refused through the back-off (1 s from 100) */
    CU_ASSERT(!tb_allow(&b, 100));
    CU_ASSERT(!tb_allow(&b, 1099));
    CU_ASSERT_EQUAL(tb_changes, 0);
    cr_breaker_dispose(&b);

    /* a configured threshold of 2 */
    cr_breaker_conf_t conf = {.failures = 2};
    cr_breaker_init(&b, &conf);
    tb_report(&b, 0, false);
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_CLOSED);
    tb_report(&b, 0, false);
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_OPEN);
    CU_ASSERT_EQUAL(tb_changes, 1);
    cr_breaker_dispose(&b);
}

static void test_breaker_single_probe(void)
{
    cr_breaker_t b;
    cr_breaker_init(&b, NULL);
    for (int i = 0; i < 5; i++)
        cr_breaker_report(&b, 1000, false);
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_OPEN);
    tb_changes = 0;

    /* at the end of the back-off one caller gets the probe, and its call is the one that changed the state */
    bool changed = false;
    CU_ASSERT(cr_breaker_allow(&b, 2000, &changed));
    CU_ASSERT(changed);
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_HALF_OPEN);
    /* everybody else is refused while it is out, however late */
    for (int i = 0; i < 10; i++)
        CU_ASSERT(!tb_allow(&b, 2000 + (uint64_t)i * 10000));
    CU_ASSERT(cr_breaker_allow(&b, 99999, NULL) == false);
    CU_ASSERT_EQUAL(tb_changes, 0);

    /* the probe succeeds: closed, once; all allowed again */
    CU_ASSERT(cr_breaker_report(&b, 2005, true));
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_CLOSED);
    CU_ASSERT(!cr_breaker_report(&b, 2006, true));
    for (int i = 0; i < 3; i++)
        CU_ASSERT(tb_allow(&b, 2007));
    CU_ASSERT_EQUAL(tb_changes, 0);
    cr_breaker_dispose(&b);
}

static void test_breaker_backoff(void)
{
    cr_breaker_t b;
    cr_breaker_init(&b, NULL);
    tb_changes = 0;
    uint64_t now = 5000;
    for (int i = 0; i < 5; i++)
        tb_report(&b, now, false);
    CU_ASSERT_EQUAL(tb_changes, 1); /* closed -> open */

    /* each failed probe doubles the back-off: 1, 2, 4, 8, 16 s, then the cap of 30 s, and stays there */
    static const uint64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CU_ASSERT_EQUAL(cr_breaker_backoff_ms(&b), want[i]);
        CU_ASSERT(!tb_allow(&b, now + want[i] - 1));
        CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_OPEN);
        now += want[i];
        unsigned before = tb_changes;
        CU_ASSERT(tb_allow(&b, now)); /* open -> half-open */
        CU_ASSERT(!tb_allow(&b, now));
        tb_report(&b, now, false); /* half-open -> open */
        CU_ASSERT_EQUAL(tb_changes, before + 2);
        CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_OPEN);
    }
    CU_ASSERT_EQUAL(cr_breaker_backoff_ms(&b), 30000);

    /* a success resets it: closed, failure count 0, the next opening uses the base again */
    now += 30000;
    CU_ASSERT(tb_allow(&b, now));
    tb_report(&b, now, true);
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(cr_breaker_backoff_ms(&b), 1000);
    for (int i = 0; i < 4; i++)
        tb_report(&b, now, false);
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_CLOSED);
    tb_report(&b, now, false);
    CU_ASSERT_EQUAL(cr_breaker_state(&b), CR_BREAKER_OPEN);
    CU_ASSERT(!tb_allow(&b, now + 999));
    CU_ASSERT(tb_allow(&b, now + 1000));
    /* 1 + 8 * 2 + 2 (half-open, closed) + 1 (open) + 1 (half-open) */
    CU_ASSERT_EQUAL(tb_changes, 21);
    cr_breaker_dispose(&b);

    /* a configured base and cap; a cap under the base is raised to it; names */
    cr_breaker_conf_t conf = {.failures = 1, .base_ms = 300, .cap_ms = 1000};
    cr_breaker_init(&b, &conf);
    tb_report(&b, 0, false);
    CU_ASSERT_EQUAL(cr_breaker_backoff_ms(&b), 300);
    CU_ASSERT(tb_allow(&b, 300));
    tb_report(&b, 300, false);
    CU_ASSERT_EQUAL(cr_breaker_backoff_ms(&b), 600);
    CU_ASSERT(tb_allow(&b, 900));
    tb_report(&b, 900, false);
    CU_ASSERT_EQUAL(cr_breaker_backoff_ms(&b), 1000);
    cr_breaker_dispose(&b);
    conf = (cr_breaker_conf_t){.base_ms = 500, .cap_ms = 100};
    cr_breaker_init(&b, &conf);
    for (int i = 0; i < 5; i++)
        tb_report(&b, 0, false);
    CU_ASSERT(tb_allow(&b, 500));
    tb_report(&b, 500, false);
    CU_ASSERT_EQUAL(cr_breaker_backoff_ms(&b), 500);
    cr_breaker_dispose(&b);
    CU_ASSERT_STRING_EQUAL(cr_breaker_state_name(CR_BREAKER_CLOSED), "closed");
    CU_ASSERT_STRING_EQUAL(cr_breaker_state_name(CR_BREAKER_OPEN), "open");
    CU_ASSERT_STRING_EQUAL(cr_breaker_state_name(CR_BREAKER_HALF_OPEN), "half-open");
}

void cr_test_register_breaker(void)
{
    CU_pSuite suite = CU_add_suite("tier breaker", NULL, NULL);

    CU_add_test(suite, "consecutive failures open it; late reports ignored", test_breaker_threshold);
    CU_add_test(suite, "half-open lets exactly one probe through", test_breaker_single_probe);
    CU_add_test(suite, "back-off doubles to the cap; success resets", test_breaker_backoff);
}
