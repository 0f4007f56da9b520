/*
 * test_limits_variants.c: end-to-end tests of limits.variants_per_key (issue 11): a real upstream answers one path with
 * Vary: Accept-Language for many distinct languages; corral keeps at most the cap of them (the inspect endpoint and
 * the corral_store_objects gauge say so), counts the rest in corral_cache_variant_evictions_total, still answers a
 * kept variant from the store (a hit, and no extra upstream request), and fetches an evicted one again. Run with the
 * configured cap (8) and with the default (32).
 * Processes are started and stopped by PID; no sleeps.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define REQUIRE(cond)                                                                                                          \
    do {                                                                                                                       \
        CU_ASSERT_FATAL(cond);                                                                                                 \
    } while (0)

#define VARIANT_PATH "/v/lang"
#define VARIANT_URI VARIANT_PATH "?vary=accept-language"

static const char *capped_yaml = "threads: 2\n"
                                 "listen:\n"
                                 "  - address: 127.0.0.1:${PORT}\n"
                                 "upstream:\n"
                                 "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                 "admin:\n"
                                 "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                 "limits: { variants_per_key: 8 }\n"
                                 "routes:\n"
                                 "  - match: { prefix: /v/ }\n"
                                 "    cache: true\n"
                                 "    ttl: 60s\n";

static const char *default_yaml = "threads: 2\n"
                                  "listen:\n"
                                  "  - address: 127.0.0.1:${PORT}\n"
                                  "upstream:\n"
                                  "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                  "admin:\n"
                                  "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                  "routes:\n"
                                  "  - match: { prefix: /v/ }\n"
                                  "    cache: true\n"
                                  "    ttl: 60s\n";

/* GET VARIANT_URI with Accept-Language: l<n>. Returns 1 on a hit, 0 on a 200 that was not one, -1 otherwise. */
static int get_lang(const cr_proc_t *c, int n)
{
    char lang[64], cs[256] = "";
    const char *headers[] = {lang, NULL};
    cr_resp_t r;
    int ret = -1;
    snprintf(lang, sizeof(lang), "Accept-Language: l%d", n);
    if (http_get(&r, CR_H1, url_of(c, VARIANT_URI), headers) == 0 && r.status == 200) {
        resp_header(&r, "cache-status", cs, sizeof(cs));
        ret = strstr(cs, "corral; hit") != NULL;
    }
    resp_free(&r);
    return ret;
}

/* How many stored objects GET /v1/cache?key=VARIANT_URI lists (its "variant" fields), or -1. */
static long inspected_variants(const cr_proc_t *c)
{
    char url[256];
    const char *p;
    cr_resp_t r;
    long n = -1;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/cache?key=" VARIANT_PATH "%%3Fvary%%3Daccept-language", c->admin_port);
    if (http_get(&r, CR_H1, url, NULL) == 0 && r.status == 200)
        for (n = 0, p = r.body; (p = strstr(p, "\"variant\":\"accept-language:l")) != NULL; ++p)
            ++n;
    resp_free(&r);
    return n;
}

/* Fills `langs` variants of one key through a corral capped at `cap` and checks what the cap promises. */
static void check_cap(const char *yaml, int cap, int langs)
{
    cr_proc_t up, c;
    int i, fails = 0;

    REQUIRE(cap < langs);
    REQUIRE(harness_start_pair(&up, &c, yaml) == 0);
    for (i = 0; i != langs; ++i)
        fails += get_lang(&c, i) != 0; /* each a miss, stored */
    CU_ASSERT_EQUAL(fails, 0);
    CU_ASSERT_EQUAL(upstream_count(&up, VARIANT_PATH), langs);
    CU_ASSERT_EQUAL(harness_metric(&c, "corral_cache_variant_evictions_total"), langs - cap);
    CU_ASSERT_EQUAL(harness_metric(&c, "corral_store_objects"), cap);
    CU_ASSERT_EQUAL(harness_metric(&c, "corral_store_evictions_total"), 0); /* not a memory eviction */
    CU_ASSERT_EQUAL(inspected_variants(&c), cap);

    /* the newest `cap` are kept: each a hit, without asking the upstream */
    for (i = langs - cap, fails = 0; i != langs; ++i)
        fails += get_lang(&c, i) != 1;
    CU_ASSERT_EQUAL(fails, 0);
    CU_ASSERT_EQUAL(upstream_count(&up, VARIANT_PATH), langs);

    /* an evicted one is fetched again, and takes the place of the oldest kept one */
    CU_ASSERT_EQUAL(get_lang(&c, 0), 0);
    CU_ASSERT_EQUAL(upstream_count(&up, VARIANT_PATH), langs + 1);
    CU_ASSERT_EQUAL(get_lang(&c, 0), 1);
    CU_ASSERT_EQUAL(harness_metric(&c, "corral_cache_variant_evictions_total"), langs - cap + 1);
    CU_ASSERT_EQUAL(inspected_variants(&c), cap);
    CU_ASSERT_EQUAL(get_lang(&c, langs - 1), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, VARIANT_PATH), langs + 1);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &c), 0);
}

static void test_variants_configured_cap(void)
{
    check_cap(capped_yaml, 8, 40);
}

static void test_variants_default_cap(void)
{
    check_cap(default_yaml, 32, 100);
}

void cr_e2e_register_limits_variants(void)
{
    CU_pSuite s = CU_add_suite("limits_variants", NULL, NULL);
    CU_add_test(s, "limits.variants_per_key 8: 40 languages keep the newest 8, 32 evictions counted, kept ones hit",
                test_variants_configured_cap);
    CU_add_test(s, "default cap 32: 100 languages keep the newest 32, 68 evictions counted, kept ones hit",
                test_variants_default_cap);
}
