/*
 * test_key_memo.c: unit tests for key_memo.c: a stored entry is found only with the same generation (by seq: a
 * second config loaded from the same text is another generation) and the same method, authority, default port and
 * path, byte for byte; one differing byte anywhere, a longer or shorter input, or another generation is a miss. An
 * entry found gives back the route, key and hash stored. Inputs too long for an entry are never memoized; entries
 * sharing a slot replace each other without mixing.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/serve/key_memo.h"

static const char yaml[] = "listen:\n  - address: 127.0.0.1:1\nupstream:\n  url: http://127.0.0.1:2\n"
                           "routes:\n  - match: { prefix: /a }\n    cache: true\n  - match: { prefix: / }\n    cache: true\n";

static cr_config_t *load(void)
{
    char err[256] = "";
    cr_config_t *cfg = cr_config_load_string("memo.yaml", yaml, sizeof(yaml) - 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    return cfg;
}

#define S(lit) cr_str(lit, sizeof(lit) - 1)

static int found(const cr_config_t *cfg, cr_str_t m, cr_str_t a, uint16_t port, cr_str_t p, cr_key_memo_hit_t *hit)
{
    return cr_key_memo_find(cfg, m, a, port, p, hit);
}

static void test_exact_inputs_only(void)
{
    cr_config_t *cfg = load(), *next = load();
    const cr_route_config_t *route = cfg->routes + 1;
    static const char key[] = "api.example\n/x/y?a=1&b=2";
    cr_key_memo_hit_t hit;

    CU_ASSERT(cfg->seq != 0 && next->seq != 0 && cfg->seq != next->seq);
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1"), &hit));
    cr_key_memo_store(cfg, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1"), route, key, sizeof(key) - 1, 12345);
    memset(&hit, 0, sizeof(hit));
    CU_ASSERT_TRUE_FATAL(found(cfg, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1"), &hit));
    CU_ASSERT_PTR_EQUAL(hit.route, route);
    CU_ASSERT_EQUAL(hit.keylen, sizeof(key) - 1);
    CU_ASSERT_EQUAL(memcmp(hit.key, key, sizeof(key)), 0); /* with its NUL */
    CU_ASSERT_EQUAL(hit.hash, 12345);

    /* every input counts, and the generation by seq */
    CU_ASSERT_FALSE(found(next, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("HEAD"), S("api.example"), 80, S("/x/y?b=2&a=1"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.examplf"), 80, S("/x/y?b=2&a=1"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("API.example"), 80, S("/x/y?b=2&a=1"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.example:80"), 80, S("/x/y?b=2&a=1"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.example"), 443, S("/x/y?b=2&a=1"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=2"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1&"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.example"), 80, S("/x/y?b=2&a="), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.example"), 80, S("/X/y?b=2&a=1"), &hit));
    CU_ASSERT_FALSE(found(cfg, S("GET"), cr_str(NULL, 0), 80, S("/x/y?b=2&a=1"), &hit));
    /* still there for the exact inputs */
    CU_ASSERT_TRUE(found(cfg, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1"), &hit));

    /* the new generation's own entry replaces the old one in the slot; the old generation no longer finds it */
    cr_key_memo_store(next, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1"), next->routes, "k2", 2, 7);
    CU_ASSERT_TRUE(found(next, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1"), &hit));
    CU_ASSERT_PTR_EQUAL(hit.route, next->routes);
    CU_ASSERT_EQUAL(hit.keylen, 2);
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("api.example"), 80, S("/x/y?b=2&a=1"), &hit));
    cr_config_release((const cr_config_t **)&cfg);
    cr_config_release((const cr_config_t **)&next);
}

static void test_many_entries_never_mix(void)
{
    cr_config_t *cfg = load();
    char path[64], key[64];
    cr_key_memo_hit_t hit;
    int i, hits = 0;

    /* more paths than slots: whatever is found is the path's own key */
    for (i = 0; i != 500; ++i) {
        int n = snprintf(path, sizeof(path), "/item/%d", i), k = snprintf(key, sizeof(key), "h\n/item/%d", i);
        cr_key_memo_store(cfg, S("GET"), S("h"), 80, cr_str(path, (size_t)n), cfg->routes + 1, key, (size_t)k, (uint64_t)i);
    }
    for (i = 0; i != 500; ++i) {
        int n = snprintf(path, sizeof(path), "/item/%d", i), k = snprintf(key, sizeof(key), "h\n/item/%d", i);
        if (!found(cfg, S("GET"), S("h"), 80, cr_str(path, (size_t)n), &hit))
            continue;
        ++hits;
        CU_ASSERT_EQUAL(hit.keylen, (size_t)k);
        CU_ASSERT_EQUAL(memcmp(hit.key, key, (size_t)k), 0);
        CU_ASSERT_EQUAL(hit.hash, (uint64_t)i);
    }
    CU_ASSERT(hits > 0 && hits <= 64);
    cr_config_release((const cr_config_t **)&cfg);
}

static void test_too_long_is_not_memoized(void)
{
    cr_config_t *cfg = load();
    static char path[CR_KEY_MEMO_BYTES + 8];
    cr_key_memo_hit_t hit;

    memset(path, 'p', sizeof(path));
    path[0] = '/';
    cr_key_memo_store(cfg, S("GET"), S("h"), 80, cr_str(path, sizeof(path)), cfg->routes, "k", 1, 1);
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("h"), 80, cr_str(path, sizeof(path)), &hit));
    /* a path that fits with a key that does not */
    cr_key_memo_store(cfg, S("GET"), S("h"), 80, cr_str(path, 100), cfg->routes, path, CR_KEY_MEMO_BYTES, 1);
    CU_ASSERT_FALSE(found(cfg, S("GET"), S("h"), 80, cr_str(path, 100), &hit));
    cr_config_release((const cr_config_t **)&cfg);
}

void cr_test_register_key_memo(void)
{
    CU_pSuite s = CU_add_suite("key_memo", NULL, NULL);
    CU_add_test(s, "found only for the same generation and the same bytes", test_exact_inputs_only);
    CU_add_test(s, "more entries than slots never mix keys", test_many_entries_never_mix);
    CU_add_test(s, "inputs too long for an entry are not memoized", test_too_long_is_not_memoized);
}
