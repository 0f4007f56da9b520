/*
 * test_common.c: unit tests for common.c: integer formatting, hashing (and hashing in pieces), case-insensitive
 * comparison.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "corral/core/common.h"

static void test_i64toa(void)
{
    static const int64_t values[] = {0, 1, 9, 10, 42, -1, -59, 1000000007, INT64_MAX, INT64_MIN, -100};
    size_t i;
    for (i = 0; i != sizeof(values) / sizeof(values[0]); ++i) {
        char got[24], want[24];
        size_t n = cr_i64toa(values[i], got);
        int wn = snprintf(want, sizeof(want), "%" PRId64, values[i]);
        CU_ASSERT_EQUAL(n, (size_t)wn);
        CU_ASSERT(n == (size_t)wn && memcmp(got, want, n) == 0);
    }
}

static void test_hash_in_pieces(void)
{
    const char *s = "127.0.0.1:8081\n/v1/users/42?page=2";
    size_t len = strlen(s), cut;
    for (cut = 0; cut <= len; ++cut)
        CU_ASSERT_EQUAL(cr_hash_more(cr_hash(s, cut), s + cut, len - cut), cr_hash(s, len));
    CU_ASSERT_NOT_EQUAL(cr_hash("a", 1), cr_hash("b", 1));
    CU_ASSERT_EQUAL(cr_hash("", 0), CR_HASH_INIT);
}

static void test_str_ieq(void)
{
    CU_ASSERT_TRUE(cr_str_ieq(CR_STR("Accept-Encoding"), "accept-encoding", 15));
    CU_ASSERT_FALSE(cr_str_ieq(CR_STR("Accept-Encodin"), "accept-encoding", 15));
    CU_ASSERT_FALSE(cr_str_ieq(CR_STR("Accept_Encoding"), "accept-encoding", 15));
}

void cr_test_register_common(void)
{
    CU_pSuite s = CU_add_suite("common", NULL, NULL);
    CU_add_test(s, "cr_i64toa matches printf", test_i64toa);
    CU_add_test(s, "hashing in pieces equals hashing the whole", test_hash_in_pieces);
    CU_add_test(s, "case-insensitive comparison", test_str_ieq);
}
