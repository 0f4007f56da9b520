/*
 * test_targeted_cc.c: CUnit suite for sidecar/http/targeted_cc.c (RFC 8941 Dictionary validation, the configured
 * field list) and the targeted Cache-Control selection of http.c (cr_response_info_add / _apply_targeted).
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "corral/http/http.h"
#include "corral/http/targeted_cc.h"

#define S(lit) cr_str((lit), strlen(lit))

static void test_sf_dictionary_valid(void)
{
    static const char *const good[] = {"max-age=60", "no-store", "max-age=60, stale-while-revalidate=30", "  private  ",
                                       "no-cache=\"set-cookie\"", "a=?1,b=?0", "x=1.5;p=tok", "k=:aGVsbG8=:", "*x=foo/bar",
                                       "max-age=60,s-maxage=10"};
    static const char *const bad[] = {"", "   ", "max-age=60,", "Max-Age=60", "max-age=\"60", "max-age=abc def", "=60",
                                      "max-age=1234567890123456", "a=1.2345", "a=(1 2)", "a=?2", "a;=1", ",a"};
    size_t i;
    for (i = 0; i != sizeof(good) / sizeof(good[0]); ++i) {
        CU_ASSERT(cr_sf_dictionary_valid(S(good[i])));
        if (!cr_sf_dictionary_valid(S(good[i])))
            fprintf(stderr, "refused: %s\n", good[i]);
    }
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        CU_ASSERT(!cr_sf_dictionary_valid(S(bad[i])));
        if (cr_sf_dictionary_valid(S(bad[i])))
            fprintf(stderr, "accepted: %s\n", bad[i]);
    }
    CU_ASSERT(!cr_sf_dictionary_valid(cr_str("max-age=6", 8))); /* never reads past the length: "max-age=" */
}

static void test_targeted_selection(void)
{
    char *names[] = {"corral-cache-control", "cdn-cache-control"};
    cr_config_t cfg;
    cr_response_info_t ri;

    memset(&cfg, 0, sizeof(cfg));
    cfg.cache.targeted_cc = names;
    cfg.cache.num_targeted_cc = 2;
    CU_ASSERT_EQUAL(cr_targeted_cc_index(&cfg, S("cdn-cache-control")), 1);
    CU_ASSERT_EQUAL(cr_targeted_cc_index(&cfg, S("cdn-cache-contro")), -1);
    CU_ASSERT(cr_targeted_cc_hidden(&cfg, S("corral-cache-control")));
    CU_ASSERT(!cr_targeted_cc_hidden(NULL, S("corral-cache-control")));

    /* the second listed field, valid, replaces Cache-Control and Expires; the first is invalid on one line */
    cr_response_info_init(&ri);
    cr_response_info_set_targeted(&ri, &cfg);
    cr_response_info_add(&ri, S("cache-control"), S("no-store"));
    cr_response_info_add(&ri, S("expires"), S("Thu, 01 Jan 2099 00:00:00 GMT"));
    cr_response_info_add(&ri, S("cdn-cache-control"), S("max-age=60"));
    cr_response_info_add(&ri, S("corral-cache-control"), S("max-age=5"));
    cr_response_info_add(&ri, S("corral-cache-control"), S("max-age=\"5"));
    cr_response_info_apply_targeted(&ri);
    CU_ASSERT_EQUAL(ri.targeted_applied, 1);
    CU_ASSERT_EQUAL(ri.cc.max_age, 60);
    CU_ASSERT_EQUAL(ri.cc.flags & CR_CC_NO_STORE, 0);
    CU_ASSERT_EQUAL(ri.has_expires, 0);

    /* without the list: Cache-Control as it is */
    cr_response_info_init(&ri);
    cr_response_info_set_targeted(&ri, NULL);
    cr_response_info_add(&ri, S("cache-control"), S("no-store"));
    cr_response_info_add(&ri, S("cdn-cache-control"), S("max-age=60"));
    cr_response_info_apply_targeted(&ri);
    CU_ASSERT_EQUAL(ri.targeted_applied, -1);
    CU_ASSERT_NOT_EQUAL(ri.cc.flags & CR_CC_NO_STORE, 0);
}

void cr_test_register_targeted_cc(void)
{
    CU_pSuite s = CU_add_suite("targeted_cc", NULL, NULL);
    CU_add_test(s, "RFC 8941 dictionaries: valid and invalid values", test_sf_dictionary_valid);
    CU_add_test(s, "the first valid listed field replaces Cache-Control", test_targeted_selection);
}
