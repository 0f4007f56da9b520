/*
 * test_config_upstream.c: unit tests for upstream.max_concurrency, upstream.breaker and routes[].serve_stale_when_down
 * (sidecar/conf/config_upstream.c, issue 16): defaults (off), values, `breaker: {}` with its defaults, and the errors
 * (missing limit, min over limit, bad backoffs, unknown keys), and that a reload may not change them.
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "corral/conf/config.h"
#include "corral/conf/config_check.h"

void cr_test_register_config_upstream(void);

#define HEAD "listen:\n  - address: 127.0.0.1:8080\nupstream:\n  url: http://127.0.0.1:9000\n"

static char errbuf[1024];

static cr_config_t *load(const char *yaml)
{
    errbuf[0] = '\0';
    return cr_config_load_string("t.yaml", yaml, strlen(yaml), errbuf, sizeof(errbuf));
}

static void test_defaults_off(void)
{
    cr_config_t *cfg = load(HEAD "routes:\n  - match: { prefix: / }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->upstream.max_concurrency, 0);
    CU_ASSERT_EQUAL(cfg->upstream.breaker_failures, 0);
    CU_ASSERT_EQUAL(cfg->routes[0].serve_stale_when_down_ms, 0);
    cr_config_free(&cfg);
}

static void test_values(void)
{
    cr_config_t *cfg = load(HEAD "  max_concurrency: { limit: 64, adaptive: true }\n  breaker: {}\n"
                                 "routes:\n  - match: { prefix: / }\n    serve_stale_when_down: 5m\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->upstream.max_concurrency, 64);
    CU_ASSERT_EQUAL(cfg->upstream.min_concurrency, 4); /* limit / 16 */
    CU_ASSERT_EQUAL(cfg->upstream.concurrency_adaptive, 1);
    CU_ASSERT_EQUAL(cfg->upstream.breaker_failures, 5);
    CU_ASSERT_EQUAL(cfg->upstream.breaker_backoff_ms, 1000);
    CU_ASSERT_EQUAL(cfg->upstream.breaker_max_backoff_ms, 30000);
    CU_ASSERT_EQUAL(cfg->routes[0].serve_stale_when_down_ms, 300000);
    cr_config_free(&cfg);
    cfg = load(HEAD "  max_concurrency: { limit: 10, min: 2 }\n  breaker: { failures: 3, backoff: 200ms, max_backoff: 2s }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->upstream.max_concurrency, 10);
    CU_ASSERT_EQUAL(cfg->upstream.min_concurrency, 2);
    CU_ASSERT_EQUAL(cfg->upstream.concurrency_adaptive, 0);
    CU_ASSERT_EQUAL(cfg->upstream.breaker_failures, 3);
    CU_ASSERT_EQUAL(cfg->upstream.breaker_backoff_ms, 200);
    CU_ASSERT_EQUAL(cfg->upstream.breaker_max_backoff_ms, 2000);
    cr_config_free(&cfg);
}

static void check_error(const char *yaml, const char *needle)
{
    cr_config_t *cfg = load(yaml);
    CU_ASSERT_PTR_NULL(cfg);
    if (strstr(errbuf, needle) == NULL)
        fprintf(stderr, "\n    expected \"%s\" in \"%s\"\n", needle, errbuf);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, needle));
    cr_config_free(&cfg);
}

static void test_errors(void)
{
    check_error(HEAD "  max_concurrency: { adaptive: true }\n", "limit");
    check_error(HEAD "  max_concurrency: { limit: 0 }\n", "limit");
    check_error(HEAD "  max_concurrency: { limit: 8, min: 9 }\n", "is over limit");
    check_error(HEAD "  max_concurrency: { limit: 8, max: 9 }\n", "unknown key \"max\"");
    check_error(HEAD "  max_concurrency: 64\n", "max_concurrency");
    check_error(HEAD "  breaker: { backoff: 10s, max_backoff: 1s }\n", "must not be longer than max_backoff");
    check_error(HEAD "  breaker: { threshold: 3 }\n", "unknown key \"threshold\"");
    check_error(HEAD "  breaker: { failures: -1 }\n", "failures");
    check_error(HEAD "routes:\n  - match: { prefix: / }\n    serve_stale_when_down: soon\n", "serve_stale_when_down");
}

static void test_reload_refuses_changes(void)
{
    cr_config_t *a = load(HEAD "  max_concurrency: { limit: 64 }\n"), *b = load(HEAD "  max_concurrency: { limit: 32 }\n"),
                *c = load(HEAD "  max_concurrency: { limit: 64 }\n  breaker: {}\n");
    char err[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_NOT_EQUAL(cr_config_reload_check(a, b, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "upstream.max_concurrency"));
    CU_ASSERT_NOT_EQUAL(cr_config_reload_check(a, c, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "upstream.breaker"));
    CU_ASSERT_EQUAL(cr_config_reload_check(a, a, err, sizeof(err)), 0);
    cr_config_free(&a);
    cr_config_free(&b);
    cr_config_free(&c);
}

void cr_test_register_config_upstream(void)
{
    CU_pSuite s = CU_add_suite("config upstream protection", NULL, NULL);
    CU_add_test(s, "off by default", test_defaults_off);
    CU_add_test(s, "values and defaults", test_values);
    CU_add_test(s, "errors", test_errors);
    CU_add_test(s, "a reload may not change them", test_reload_refuses_changes);
}
