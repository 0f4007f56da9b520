/*
 * test_tier_key.c: unit tests for sidecar/tier/tier_key.c, the memcached keys of the shared tier (protocol v1).
 *
 * Known vectors (SHA-256 of "" and "abc" from FIPS 180-2, and of a URL key computed once with sha256sum) assert the
 * exact strings, so a change of hash, prefix or hex case fails here; every key is at most 250 bytes of [a-z0-9:];
 * keys with spaces, newlines, NULs, 8-bit bytes and 1 MiB long work; different keys differ; value and lease keys
 * share their hex digits.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/tier/tier_key.h"

void cr_test_register_tier_key(void);

static void tk_assert_valid(const char *k, size_t n)
{
    CU_ASSERT(n > 0 && n <= 250);
    CU_ASSERT(n <= CR_TIER_KEY_MAX);
    CU_ASSERT_EQUAL(strlen(k), n);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == ':');
}

static void test_tier_key_vectors(void)
{
    char k[CR_TIER_KEY_MAX + 1];

    CU_ASSERT_EQUAL(cr_tier_key("", 0, k), 42);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:e3b0c44298fc1c149afbf4c8996fb924");
    CU_ASSERT_EQUAL(cr_tier_key(NULL, 0, k), 42);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:e3b0c44298fc1c149afbf4c8996fb924");
    CU_ASSERT_EQUAL(cr_tier_key("abc", 3, k), 42);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:ba7816bf8f01cfea414140de5dae2223");
    CU_ASSERT_EQUAL(cr_tier_lease_key("abc", 3, k), 48);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:lease:ba7816bf8f01cfea414140de5dae2223");
    static const char url[] = "example.com\n/a/b?c=1";
    CU_ASSERT_EQUAL(cr_tier_key(url, sizeof(url) - 1, k), 42);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:e0782468258a3fa09f7fb3a0366cc3e7");
    CU_ASSERT_EQUAL(cr_tier_lease_key(url, sizeof(url) - 1, k), 48);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:lease:e0782468258a3fa09f7fb3a0366cc3e7");
    CU_ASSERT_EQUAL(CR_TIER_KEY_MAX, 48);
}

static void test_tier_key_awkward_inputs(void)
{
    char k[CR_TIER_KEY_MAX + 1], l[CR_TIER_KEY_MAX + 1];
    static const char spaced[] = "host name\r\n/path with spaces\t\x01\x7f";
    static const char bytes8[] = "h\x80\xff\xfe/\xc3\xa9t\xc3\xa9";
    static const char nul[] = "a\0b";

    size_t n = cr_tier_key(spaced, sizeof(spaced) - 1, k);
    tk_assert_valid(k, n);
    n = cr_tier_lease_key(spaced, sizeof(spaced) - 1, l);
    tk_assert_valid(l, n);
    CU_ASSERT_STRING_EQUAL(l + strlen(CR_TIER_LEASE_KEY_PREFIX), k + strlen(CR_TIER_KEY_PREFIX));
    n = cr_tier_key(bytes8, sizeof(bytes8) - 1, k);
    tk_assert_valid(k, n);
    /* the NUL is hashed: "a\0b" differs from "a" */
    n = cr_tier_key(nul, 3, k);
    tk_assert_valid(k, n);
    cr_tier_key(nul, 1, l);
    CU_ASSERT(strcmp(k, l) != 0);

    size_t big = 1u << 20;
    char *p = malloc(big);
    CU_ASSERT_FATAL(p != NULL);
    for (size_t i = 0; i < big; i++)
        p[i] = (char)(i * 131 + 7);
    n = cr_tier_key(p, big, k);
    tk_assert_valid(k, n);
    CU_ASSERT_EQUAL(n, 42);
    n = cr_tier_lease_key(p, big, l);
    tk_assert_valid(l, n);
    CU_ASSERT_EQUAL(n, 48);
    /* one flipped last byte of 1 MiB gives another key; the same bytes give the same key */
    p[big - 1] ^= 1;
    cr_tier_key(p, big, l);
    CU_ASSERT(strcmp(k, l) != 0);
    p[big - 1] ^= 1;
    cr_tier_key(p, big, l);
    CU_ASSERT_STRING_EQUAL(k, l);
    free(p);
}

static int tk_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_tier_key_distinct(void)
{
    /* 4096 URL keys that differ in a digit or two: all keys distinct, and the first hex digit spread over 16 values */
    enum { N = 4096 };
    char(*keys)[CR_TIER_KEY_MAX + 1] = malloc(sizeof(*keys) * N);
    unsigned first[16] = {0};
    CU_ASSERT_FATAL(keys != NULL);
    for (int i = 0; i < N; i++) {
        char url[64];
        int len = snprintf(url, sizeof(url), "example.com\n/item/%d", i);
        size_t n = cr_tier_key(url, (size_t)len, keys[i]);
        tk_assert_valid(keys[i], n);
        char c = keys[i][strlen(CR_TIER_KEY_PREFIX)];
        first[c <= '9' ? c - '0' : c - 'a' + 10]++;
    }
    qsort(keys, N, sizeof(*keys), tk_cmp);
    for (int i = 1; i < N; i++)
        CU_ASSERT(strcmp(keys[i - 1], keys[i]) != 0);
    for (int d = 0; d < 16; d++)
        CU_ASSERT(first[d] > N / 16 / 2 && first[d] < N / 16 * 2);
    free(keys);
}

void cr_test_register_tier_key(void)
{
    CU_pSuite suite = CU_add_suite("tier key", NULL, NULL);

    CU_add_test(suite, "known vectors: exact value and lease keys", test_tier_key_vectors);
    CU_add_test(suite, "spaces, control and 8-bit bytes, NUL, 1 MiB keys", test_tier_key_awkward_inputs);
    CU_add_test(suite, "similar keys give distinct, spread keys", test_tier_key_distinct);
}
