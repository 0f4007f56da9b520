/*
 * test_config_reload.c: unit tests for config generations (cr_config_retain / cr_config_release in conf/config.c)
 * and for what a reload may change (cr_config_reload_check, conf/config_reload.c).
 *
 * Configs are loaded from strings: one base document, and for each restart key a copy with that key changed. Every
 * config is released or freed, so LeakSanitizer (`make SANITIZE=address,undefined unit`) sees a generation that the
 * last release failed to free.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/core/common.h"
#include "corral/conf/config.h"
#include "corral/http/encoding.h"

static char errbuf[512];

#define BASE_THREADS "threads: 2\n"
#define BASE_LISTEN "listen:\n  - address: 127.0.0.1:8081\n"
#define UPSTREAM(url, maxconn, connect, timeout, queue)                                                                            \
    "upstream: { url: '" url "', max_connections: " maxconn ", connect_timeout: " connect ", timeout: " timeout                    \
    ", queue_timeout: " queue " }\n"
#define BASE_UPSTREAM UPSTREAM("http://127.0.0.1:8080", "8", "1s", "30s", "5s")
#define BASE_ADMIN "admin: { address: '127.0.0.1:9091', token_env: CORRAL_ADMIN_TOKEN }\n"
#define BASE_CACHE "cache: { memory: 64MiB, max_object_size: 1MiB }\n"
#define BASE_LIMITS "limits: { request_headers: 64KiB, connections: 1000 }\n"
#define BASE_ROUTES "routes:\n  - match: { prefix: /v1 }\n    ttl: 60s\n"

static cr_config_t *load(const char *yaml)
{
    cr_config_t *cfg = cr_config_load_string("t.yaml", yaml, strlen(yaml), errbuf, sizeof(errbuf));
    if (cfg == NULL)
        fprintf(stderr, "\n  test_config_reload.c: did not load: %s\n", errbuf);
    return cfg;
}

static cr_config_t *load_base(void)
{
    return load(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES);
}

static void test_retain_release(void)
{
    cr_config_t *cfg = load_base();
    const cr_config_t *held, *loader;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->refs, 1);
    held = cr_config_retain(cfg);
    CU_ASSERT_PTR_EQUAL(held, cfg);
    CU_ASSERT_EQUAL(cfg->refs, 2);

    /* the loader's release: the retained generation survives it, intact */
    loader = cfg;
    cr_config_release(&loader);
    CU_ASSERT_PTR_NULL(loader);
    CU_ASSERT_EQUAL(held->refs, 1);
    CU_ASSERT_EQUAL(held->magic, CR_CONFIG_MAGIC);
    CU_ASSERT_EQUAL(held->num_routes, 1);
    CU_ASSERT_STRING_EQUAL(held->routes[0].match_path, "/v1");

    /* the last release frees it (a leak here fails under LeakSanitizer) */
    cr_config_release(&held);
    CU_ASSERT_PTR_NULL(held);

    /* NULL is accepted by both */
    CU_ASSERT_PTR_NULL(cr_config_retain(NULL));
    cr_config_release(NULL);
    held = NULL;
    cr_config_release(&held);
}

static void test_retain_many(void)
{
    cr_config_t *cfg = load_base();
    const cr_config_t *refs[16], *loader;
    size_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    for (i = 0; i != CR_ARRAY_SIZE(refs); ++i)
        refs[i] = cr_config_retain(cfg);
    CU_ASSERT_EQUAL(cfg->refs, 1 + CR_ARRAY_SIZE(refs));
    loader = cfg;
    cr_config_release(&loader);
    for (i = 0; i + 1 != CR_ARRAY_SIZE(refs); ++i) {
        cr_config_release(&refs[i]);
        CU_ASSERT_EQUAL(refs[CR_ARRAY_SIZE(refs) - 1]->refs, CR_ARRAY_SIZE(refs) - 1 - i);
    }
    cr_config_release(&refs[CR_ARRAY_SIZE(refs) - 1]);
    CU_ASSERT_PTR_NULL(refs[CR_ARRAY_SIZE(refs) - 1]);
}

/* Loads `yaml`, checks it against the base and expects `prefix` at the start of the message (NULL: accepted). */
static void check_reload(const char *yaml, const char *prefix, int srcline)
{
    cr_config_t *running = load_base(), *next = load(yaml);
    int rc, ok;

    CU_ASSERT_PTR_NOT_NULL_FATAL(running);
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    strcpy(errbuf, "untouched");
    rc = cr_config_reload_check(running, next, errbuf, sizeof(errbuf));
    ok = prefix == NULL ? rc == 0 && errbuf[0] == '\0'
                        : rc == -1 && strncmp(errbuf, prefix, strlen(prefix)) == 0 && strstr(errbuf, "needs a restart") != NULL &&
                              strchr(errbuf, '\n') == NULL;
    if (!ok)
        fprintf(stderr, "\n  test_config_reload.c:%d: expected %s%s%s, got %d \"%s\"\n", srcline, prefix ? "\"" : "",
                prefix ? prefix : "0", prefix ? "...\"" : "", rc, errbuf);
    CU_ASSERT(ok);
    cr_config_free(&next);
    cr_config_free(&running);
}
#define EXPECT_RELOAD_OK(yaml) check_reload((yaml), NULL, __LINE__)
#define EXPECT_RESTART(yaml, prefix) check_reload((yaml), (prefix), __LINE__)

static void test_reload_check_accepts(void)
{
    /* the same document; the same one spelled differently */
    EXPECT_RELOAD_OK(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES);
    EXPECT_RELOAD_OK(BASE_THREADS
                     "listen:\n  - address: localhost:8081\n" BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES);
    /* routes: a TTL, a new route, none at all */
    EXPECT_RELOAD_OK(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS
                     "routes:\n  - match: { prefix: /v1 }\n    ttl: 5m\n");
    EXPECT_RELOAD_OK(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS
                     "routes:\n  - match: { exact: /health }\n    cache: false\n  - match: { prefix: /v1 }\n    ttl: 60s\n");
    EXPECT_RELOAD_OK(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS);
    /* the keys read from the generation a request holds */
    EXPECT_RELOAD_OK(
        BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN
        "cache: { memory: 64MiB, max_object_size: 2MiB, surrogate_key_header: X-Tags, keep_surrogate_key: true }\n" BASE_LIMITS
            BASE_ROUTES);
    EXPECT_RELOAD_OK(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE
                     "limits: { request_headers: 32KiB, connections: 1000 }\n" BASE_ROUTES);
    /* drain_timeout and upstream.health are read when they are used (server.c's drain, fill/health.c) */
    EXPECT_RELOAD_OK(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES "drain_timeout: 30s\n");
    EXPECT_RELOAD_OK(BASE_THREADS BASE_LISTEN
                     "upstream: { url: 'http://127.0.0.1:8080', max_connections: 8, connect_timeout: 1s, timeout: 30s, "
                     "queue_timeout: 5s, health: { path: /healthz } }\n" BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES);
}

/* With listeners_live (the server follows listener changes), listen is not compared; the other keys still are. */
static void test_reload_check_live_listeners(void)
{
    cr_config_t *running = load_base(), *next = load(BASE_THREADS "listen:\n  - address: 127.0.0.1:8082\n  - address: "
                                                                   "127.0.0.1:8083\n" BASE_UPSTREAM BASE_ADMIN BASE_CACHE
                                                                       BASE_LIMITS BASE_ROUTES),
                *threads = load("threads: 3\n" BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES);
    CU_ASSERT_PTR_NOT_NULL_FATAL(running);
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    CU_ASSERT_PTR_NOT_NULL_FATAL(threads);
    CU_ASSERT_EQUAL(cr_config_reload_check(running, next, errbuf, sizeof(errbuf)), -1);
    CU_ASSERT_EQUAL(cr_config_reload_check_ex(running, next, 1, errbuf, sizeof(errbuf)), 0);
    CU_ASSERT_EQUAL(cr_config_reload_check_ex(running, threads, 1, errbuf, sizeof(errbuf)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "threads: "));
    cr_config_free(&running);
    cr_config_free(&next);
    cr_config_free(&threads);
}

/* drain_timeout and upstream.health: defaults, values, errors at their position. */
static void test_lifecycle_keys(void)
{
#define HEALTH(h)                                                                                                                  \
    BASE_THREADS BASE_LISTEN "upstream: { url: 'http://127.0.0.1:8080', health: " h " }\n" BASE_ROUTES
    cr_config_t *cfg = load_base();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->drain_timeout_ms, 10000);
    CU_ASSERT_PTR_NULL(cfg->upstream.health_path);
    cr_config_free(&cfg);

    cfg = load(HEALTH("{ path: /hz, interval: 1s, timeout: 200ms, unhealthy_after: 4, healthy_after: 1 }") "drain_timeout: 0\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->upstream.health_path, "/hz");
    CU_ASSERT_EQUAL(cfg->upstream.health_interval_ms, 1000);
    CU_ASSERT_EQUAL(cfg->upstream.health_timeout_ms, 200);
    CU_ASSERT_EQUAL(cfg->upstream.health_unhealthy_after, 4);
    CU_ASSERT_EQUAL(cfg->upstream.health_healthy_after, 1);
    CU_ASSERT_EQUAL(cfg->drain_timeout_ms, 0);
    cr_config_free(&cfg);

    cfg = load(HEALTH("{ path: /hz }"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->upstream.health_interval_ms, 2000);
    CU_ASSERT_EQUAL(cfg->upstream.health_timeout_ms, 500);
    CU_ASSERT_EQUAL(cfg->upstream.health_unhealthy_after, 3);
    CU_ASSERT_EQUAL(cfg->upstream.health_healthy_after, 2);
    cr_config_free(&cfg);

    {
        static const struct {
            const char *yaml, *needle;
        } bad[] = {
            {HEALTH("{ interval: 1s }"), "t.yaml:4:"},
            {HEALTH("{ path: hz }"), "must start with /"},
            {HEALTH("{ path: '/a b' }"), "spaces"},
            {HEALTH("{ path: /hz, timeout: 3s }"), "upstream.health.timeout: must not be longer than interval"},
            {HEALTH("{ path: /hz, unhealthy_after: 0 }"), "unhealthy_after"},
            {HEALTH("{ path: /hz, every: 1s }"), "unknown key \"every\" in upstream.health"},
            {BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ROUTES "drain_timeout: 2h\n", "t.yaml:8:16: drain_timeout: at most 1h"},
            {BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ROUTES "drain_timeout: soon\n", "t.yaml:8:16: drain_timeout: bad duration"},
        };
        size_t i;
        for (i = 0; i != CR_ARRAY_SIZE(bad); ++i) {
            cfg = cr_config_load_string("t.yaml", bad[i].yaml, strlen(bad[i].yaml), errbuf, sizeof(errbuf));
            CU_ASSERT_PTR_NULL(cfg);
            if (strstr(errbuf, bad[i].needle) == NULL) {
                fprintf(stderr, "\n  test_config_reload.c: case %zu: expected \"%s\" in \"%s\"\n", i, bad[i].needle, errbuf);
                CU_FAIL("lifecycle key error");
            }
            cr_config_free(&cfg);
        }
    }
#undef HEALTH
}

static void test_reload_check_refuses(void)
{
    EXPECT_RESTART("threads: 3\n" BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES, "threads: ");
    EXPECT_RESTART(BASE_THREADS
                   "listen:\n  - address: 127.0.0.1:8082\n" BASE_UPSTREAM BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "listen[0].address: changing listeners needs a restart");
    EXPECT_RESTART(BASE_THREADS "listen:\n  - address: 127.0.0.1:8081\n  - address: 127.0.0.1:8082\n" BASE_UPSTREAM BASE_ADMIN
                       BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "listen: changing listeners needs a restart");
    EXPECT_RESTART(BASE_THREADS
                   "listen:\n  - address: 127.0.0.1:8081\n    tls: { certificate: /c.pem, key: /k.pem }\n" BASE_UPSTREAM BASE_ADMIN
                       BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "listen[0].tls: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN UPSTREAM("http://127.0.0.1:8090", "8", "1s", "30s", "5s")
                       BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "upstream.url: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN UPSTREAM("http://127.0.0.1:8080", "16", "1s", "30s", "5s")
                       BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "upstream.max_connections: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN UPSTREAM("http://127.0.0.1:8080", "8", "2s", "30s", "5s")
                       BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "upstream.connect_timeout: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN UPSTREAM("http://127.0.0.1:8080", "8", "1s", "31s", "5s")
                       BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "upstream.timeout: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN UPSTREAM("http://127.0.0.1:8080", "8", "1s", "30s", "6s")
                       BASE_ADMIN BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "upstream.queue_timeout: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN BASE_UPSTREAM
                   "admin: { address: '127.0.0.1:9092', token_env: CORRAL_ADMIN_TOKEN }\n" BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "admin.address: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_CACHE BASE_LIMITS BASE_ROUTES, "admin.address: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN BASE_UPSTREAM
                   "admin: { address: '127.0.0.1:9091', token_env: OTHER_TOKEN }\n" BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "admin.token_env: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN BASE_UPSTREAM
                   "admin: { address: '127.0.0.1:9091', token_file: /run/token }\n" BASE_CACHE BASE_LIMITS BASE_ROUTES,
                   "admin.token_file: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN
                   "cache: { memory: 128MiB, max_object_size: 1MiB }\n" BASE_LIMITS BASE_ROUTES,
                   "cache.memory: ");
    EXPECT_RESTART(BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE
                   "limits: { request_headers: 64KiB, connections: 2000 }\n" BASE_ROUTES,
                   "limits.connections: ");
}

/* Every limit but request_headers is copied once at start: a change to any of them is refused, by name. */
static void test_reload_check_limits(void)
{
    static const struct {
        const char *key, *value;
    } changes[] = {{"request_body", "1MiB"},    {"upstream_header_size", "32KiB"}, {"admin_body", "2MiB"},
                   {"response_buffer", "2MiB"}, {"streams_per_connection", "50"},  {"variants_per_key", "16"},
                   {"queued_fills", "10"},      {"cancels_per_connection", "100"}, {"cancels_per_address", "500"},
                   {"header_timeout", "5s"}};
    char yaml[1024], prefix[64];
    size_t i;

    for (i = 0; i != CR_ARRAY_SIZE(changes); ++i) {
        snprintf(yaml, sizeof(yaml),
                 BASE_THREADS BASE_LISTEN BASE_UPSTREAM BASE_ADMIN BASE_CACHE
                 "limits: { request_headers: 64KiB, connections: 1000, "
                 "%s: %s }\n" BASE_ROUTES,
                 changes[i].key, changes[i].value);
        snprintf(prefix, sizeof(prefix), "limits.%s: changing it needs a restart (", changes[i].key);
        check_reload(yaml, prefix, __LINE__);
    }
}

void cr_test_register_config_reload(void)
{
    CU_pSuite s = CU_add_suite("config generations and reload check", NULL, NULL);
    CU_add_test(s, "retain and release", test_retain_release);
    CU_add_test(s, "many references", test_retain_many);
    CU_add_test(s, "reload check accepts", test_reload_check_accepts);
    CU_add_test(s, "reload check refuses restart keys", test_reload_check_refuses);
    CU_add_test(s, "reload check refuses restart limits", test_reload_check_limits);
    CU_add_test(s, "drain_timeout and upstream.health", test_lifecycle_keys);
    CU_add_test(s, "reload check with live listeners", test_reload_check_live_listeners);
}
