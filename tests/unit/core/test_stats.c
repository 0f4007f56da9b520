/*
 * test_stats.c: unit tests for sidecar/core/stats.c: the counter table (one row per cr_stats_t field, names unique),
 * the field-by-field sum, and cr_stats_sum over the traffic workers and the admin thread.
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "corral/core/runtime.h"
#include "corral/core/stats.h"

void cr_test_register_stats(void);

static void test_stats_table(void)
{
    size_t i, j;
    CU_ASSERT_EQUAL(cr_stats_num_descs * sizeof(uint64_t), sizeof(cr_stats_t));
    for (i = 0; i != cr_stats_num_descs; ++i) {
        CU_ASSERT_EQUAL(cr_stats_descs[i].offset, i * sizeof(uint64_t));
        CU_ASSERT(cr_stats_descs[i].help[0] != '\0');
        for (j = 0; j != i; ++j)
            CU_ASSERT(strcmp(cr_stats_descs[i].name, cr_stats_descs[j].name) != 0);
    }
    CU_ASSERT_STRING_EQUAL(cr_stats_descs[0].name, "requests_total");
    CU_ASSERT_EQUAL(cr_stats_descs[0].type, CR_METRIC_COUNTER);
}

static void test_stats_sum(void)
{
    cr_thread_t threads[3], admin;
    cr_runtime_t saved = cr_rt;
    cr_stats_t sum;
    size_t i;
    memset(threads, 0, sizeof(threads));
    memset(&admin, 0, sizeof(admin));
    for (i = 0; i != 3; ++i) {
        CR_STAT_INC(threads[i].stats, hits);
        CR_STAT_INC(threads[i].stats, accept_pauses);
    }
    threads[2].stats.requests = 10;
    admin.stats.accept_pauses = 100;
    admin.stats.header_timeouts = 2;
    cr_rt.threads = threads;
    cr_rt.nthreads = 3;
    cr_rt.admin_thread = NULL;
    cr_stats_sum(&sum);
    CU_ASSERT_EQUAL(sum.hits, 3);
    CU_ASSERT_EQUAL(sum.requests, 10);
    CU_ASSERT_EQUAL(sum.accept_pauses, 3);
    CU_ASSERT_EQUAL(sum.header_timeouts, 0);
    cr_rt.admin_thread = &admin;
    cr_stats_sum(&sum);
    CU_ASSERT_EQUAL(sum.accept_pauses, 103);
    CU_ASSERT_EQUAL(sum.header_timeouts, 2);
    CU_ASSERT_EQUAL(sum.misses, 0);
    for (i = 0; i != cr_stats_num_descs; ++i) /* cr_stats_get reads the row's field */
        if (strcmp(cr_stats_descs[i].name, "accept_pauses_total") == 0)
            CU_ASSERT_EQUAL(cr_stats_get(&sum, cr_stats_descs + i), 103);
    cr_rt = saved;
}

void cr_test_register_stats(void)
{
    CU_pSuite suite = CU_add_suite("stats", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "one row per counter", test_stats_table);
    CU_add_test(suite, "sums over the workers and the admin thread", test_stats_sum);
}
