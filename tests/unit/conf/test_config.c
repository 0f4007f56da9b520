/*
 * test_config.c: unit tests for sidecar/conf/config.c (YAML configuration loading and validation).
 *
 * Every error class is checked for its exact "name:line:col: " prefix and a message substring. Configs are loaded
 * from strings, except one temp-file round trip and the shipped conf/corral.yaml and conf/corral-full.yaml (read
 * relative to the repository root, where `make unit` runs the tests). Each test frees what it loads, so
 * LeakSanitizer sees no leaks.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral/core/common.h"
#include "corral/conf/config.h"
#include "corral/conf/config_check.h"
#include "corral/http/encoding.h"

static char errbuf[1024];

static cr_config_t *load(const char *yaml)
{
    errbuf[0] = '\0';
    return cr_config_load_string("t.yaml", yaml, strlen(yaml), errbuf, sizeof(errbuf));
}

/* Asserts that `yaml` fails with a message starting with `prefix` ("t.yaml:L:C: ") and containing `needle`. */
static void check_error(const char *yaml, const char *prefix, const char *needle, int srcline)
{
    cr_config_t *cfg = load(yaml);
    int ok = cfg == NULL && strncmp(errbuf, prefix, strlen(prefix)) == 0 && strstr(errbuf, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n  test_config.c:%d: expected \"%s...%s\", got \"%s\"\n", srcline, prefix, needle,
                cfg != NULL ? "(loaded)" : errbuf);
    CU_ASSERT(ok);
    cr_config_free(&cfg);
}
#define EXPECT_ERROR(yaml, prefix, needle) check_error((yaml), (prefix), (needle), __LINE__)

/* Minimal valid head: routes or other sections are appended after it (lines 1-3). */
#define HEAD                                                                                                                       \
    "listen:\n"                                                                                                                    \
    "  - address: 127.0.0.1:8081\n"                                                                                                \
    "upstream: { url: 'http://127.0.0.1:8080' }\n"

static const char design_example[] =
    "threads: 2                          # default: number of CPUs\n"
    "listen:\n"
    "  - address: 127.0.0.1:8081         # HTTP/1.1 + h2c (prior knowledge and Upgrade)\n"
    "  - address: 0.0.0.0:8443\n"
    "    tls: { certificate: /etc/corral/tls.crt, key: /etc/corral/tls.key }   # h2 via ALPN\n"
    "upstream:\n"
    "  url: http://127.0.0.1:8080\n"
    "  max_connections: 64\n"
    "  connect_timeout: 1s\n"
    "  timeout: 30s\n"
    "admin:\n"
    "  address: 127.0.0.1:9091\n"
    "  token_file: /var/run/corral/admin-token   # or token_env: CORRAL_ADMIN_TOKEN\n"
    "cache:\n"
    "  memory: 256MiB                    # everything counted: keys, headers, bodies, encodings\n"
    "  max_object_size: 8MiB\n"
    "tier:\n"
    "  memcached:\n"
    "    servers: [127.0.0.1:11211]      # ketama over the list\n"
    "    timeout: 20ms\n"
    "routes:                             # first match wins\n"
    "  - match: { prefix: /v1/users, methods: [GET, HEAD] }\n"
    "    cache: true\n"
    "    ttl: 60s                        # only when the response itself gives no freshness\n"
    "    max_ttl: 1h\n"
    "    stale_while_revalidate: 30s\n"
    "    stale_if_error: 5m\n"
    "    key: { query: [page, limit], headers: [accept-language] }   # query: all | none | [names]\n"
    "    coalesce: { timeout: 5s }\n"
    "    compress: { types: [application/json, text/*], min_size: 256 }\n"
    "    invalidate: [/v1/users, '/v1/users/{id}']    # what a successful write under this route also invalidates\n"
    "  - match: { prefix: /v1/posts }\n"
    "    force_ttl: 10s                  # upstream says no-cache (Express default): cache anyway, send no-cache downstream\n"
    "  - match: { exact: /v1/health }\n"
    "    cache: false\n";

static void check_design_example(const cr_config_t *cfg)
{
    const struct sockaddr_in *sin;
    const cr_route_config_t *r;

    CU_ASSERT_EQUAL(cfg->magic, CR_CONFIG_MAGIC);
    CU_ASSERT_EQUAL(cfg->threads, 2);

    CU_ASSERT_EQUAL_FATAL(cfg->num_listens, 2);
    CU_ASSERT_STRING_EQUAL(cfg->listens[0].address, "127.0.0.1:8081");
    sin = (const struct sockaddr_in *)&cfg->listens[0].addr;
    CU_ASSERT_EQUAL(sin->sin_family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(sin->sin_port), 8081);
    CU_ASSERT_EQUAL(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
    CU_ASSERT_EQUAL(cfg->listens[0].addrlen, sizeof(struct sockaddr_in));
    CU_ASSERT_PTR_NULL(cfg->listens[0].tls_certificate);
    CU_ASSERT_PTR_NULL(cfg->listens[0].tls_key);
    CU_ASSERT_STRING_EQUAL(cfg->listens[1].address, "0.0.0.0:8443");
    sin = (const struct sockaddr_in *)&cfg->listens[1].addr;
    CU_ASSERT_EQUAL(ntohs(sin->sin_port), 8443);
    CU_ASSERT_EQUAL(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    CU_ASSERT_STRING_EQUAL(cfg->listens[1].tls_certificate, "/etc/corral/tls.crt");
    CU_ASSERT_STRING_EQUAL(cfg->listens[1].tls_key, "/etc/corral/tls.key");

    CU_ASSERT_STRING_EQUAL(cfg->upstream.url, "http://127.0.0.1:8080");
    CU_ASSERT_STRING_EQUAL(cfg->upstream.host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->upstream.port, 8080);
    sin = (const struct sockaddr_in *)&cfg->upstream.addr;
    CU_ASSERT_EQUAL(sin->sin_family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(sin->sin_port), 8080);
    CU_ASSERT_EQUAL(cfg->upstream.addrlen, sizeof(struct sockaddr_in));
    CU_ASSERT_EQUAL(cfg->upstream.max_connections, 64);
    CU_ASSERT_EQUAL(cfg->upstream.connect_timeout_ms, 1000);
    CU_ASSERT_EQUAL(cfg->upstream.timeout_ms, 30000);
    CU_ASSERT_EQUAL(cfg->upstream.queue_timeout_ms, 5000);

    CU_ASSERT_STRING_EQUAL(cfg->admin.address, "127.0.0.1:9091");
    sin = (const struct sockaddr_in *)&cfg->admin.addr;
    CU_ASSERT_EQUAL(ntohs(sin->sin_port), 9091);
    CU_ASSERT_EQUAL(cfg->admin.addrlen, sizeof(struct sockaddr_in));
    CU_ASSERT_STRING_EQUAL(cfg->admin.token_file, "/var/run/corral/admin-token");
    CU_ASSERT_PTR_NULL(cfg->admin.token_env);

    CU_ASSERT_EQUAL(cfg->cache.memory, (size_t)256 << 20);
    CU_ASSERT_EQUAL(cfg->cache.max_object_size, (size_t)8 << 20);

    CU_ASSERT_EQUAL_FATAL(cfg->tier.num_memcached_servers, 1);
    CU_ASSERT_STRING_EQUAL(cfg->tier.memcached_servers[0], "127.0.0.1:11211");
    CU_ASSERT_EQUAL(cfg->tier.memcached_timeout_ms, 20);

    CU_ASSERT_EQUAL_FATAL(cfg->num_routes, 3);
    r = &cfg->routes[0];
    CU_ASSERT_EQUAL(r->line, 22);
    CU_ASSERT_EQUAL(r->match_kind, CR_MATCH_PREFIX);
    CU_ASSERT_STRING_EQUAL(r->match_path, "/v1/users");
    CU_ASSERT_EQUAL(r->match_path_len, 9);
    CU_ASSERT_EQUAL(r->methods, CR_METHOD_GET | CR_METHOD_HEAD);
    CU_ASSERT_EQUAL(r->cache, 1);
    CU_ASSERT_EQUAL(r->ttl_ms, 60000);
    CU_ASSERT_EQUAL(r->max_ttl_ms, 3600000);
    CU_ASSERT_EQUAL(r->force_ttl_ms, 0);
    CU_ASSERT_EQUAL(r->ignore_no_store, 0);
    CU_ASSERT_STRING_EQUAL(r->force_cache_control, "no-cache");
    CU_ASSERT_EQUAL(r->heuristic_freshness, 0);
    CU_ASSERT_EQUAL(r->allow_set_cookie, 0);
    CU_ASSERT_EQUAL(r->stale_while_revalidate_ms, 30000);
    CU_ASSERT_EQUAL(r->stale_if_error_ms, 300000);
    CU_ASSERT_EQUAL(r->key_query, CR_KEY_QUERY_LIST);
    CU_ASSERT_EQUAL_FATAL(r->num_key_query_names, 2);
    CU_ASSERT_STRING_EQUAL(r->key_query_names[0], "limit"); /* sorted */
    CU_ASSERT_STRING_EQUAL(r->key_query_names[1], "page");
    CU_ASSERT_EQUAL_FATAL(r->num_key_headers, 1);
    CU_ASSERT_STRING_EQUAL(r->key_headers[0], "accept-language");
    CU_ASSERT_EQUAL(r->coalesce, 1);
    CU_ASSERT_EQUAL(r->coalesce_timeout_ms, 5000);
    CU_ASSERT_EQUAL(r->coalesce_max_waiters, 10000);
    CU_ASSERT_EQUAL(r->coalesce_pass_ttl_ms, 10000);
    CU_ASSERT_EQUAL(r->compress, 1);
    CU_ASSERT_EQUAL_FATAL(r->num_compress_types, 2);
    CU_ASSERT_STRING_EQUAL(r->compress_types[0], "application/json");
    CU_ASSERT_STRING_EQUAL(r->compress_types[1], "text/*");
    CU_ASSERT_EQUAL(r->compress_min_size, 256);
    CU_ASSERT_EQUAL_FATAL(r->num_invalidate, 2);
    CU_ASSERT_STRING_EQUAL(r->invalidate[0], "/v1/users");
    CU_ASSERT_STRING_EQUAL(r->invalidate[1], "/v1/users/{id}");

    r = &cfg->routes[1];
    CU_ASSERT_EQUAL(r->line, 32);
    CU_ASSERT_EQUAL(r->match_kind, CR_MATCH_PREFIX);
    CU_ASSERT_STRING_EQUAL(r->match_path, "/v1/posts");
    CU_ASSERT_EQUAL(r->methods, CR_METHOD_ALL);
    CU_ASSERT_EQUAL(r->force_ttl_ms, 10000);
    CU_ASSERT_EQUAL(r->ttl_ms, 0);
    CU_ASSERT_EQUAL(r->cache, 1);
    CU_ASSERT_EQUAL(r->key_query, CR_KEY_QUERY_ALL);
    CU_ASSERT_EQUAL(r->num_key_headers, 0);

    r = &cfg->routes[2];
    CU_ASSERT_EQUAL(r->line, 34);
    CU_ASSERT_EQUAL(r->match_kind, CR_MATCH_EXACT);
    CU_ASSERT_STRING_EQUAL(r->match_path, "/v1/health");
    CU_ASSERT_EQUAL(r->cache, 0);
    CU_ASSERT_EQUAL(r->compress, 0); /* compression defaults to on only for cached routes */
}

static void test_design_example(void)
{
    cr_config_t *cfg = load(design_example);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->path, "t.yaml");
    check_design_example(cfg);
    cr_config_free(&cfg);
    CU_ASSERT_PTR_NULL(cfg);
    cr_config_free(&cfg); /* NULL is accepted */
    cr_config_free(NULL);
}

static void test_defaults(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cr_config_t *cfg = load(HEAD "routes:\n  - match: { prefix: / }\n");
    const cr_route_config_t *r;
    size_t i;
    int has_json = 0, has_text = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->threads, (unsigned)CR_MAX(1, CR_MIN(cpus, 256)));
    CU_ASSERT_EQUAL(cfg->num_listens, 1);
    CU_ASSERT_PTR_NULL(cfg->listens[0].tls_certificate);
    CU_ASSERT_EQUAL(cfg->upstream.max_connections, 64);
    CU_ASSERT_EQUAL(cfg->upstream.connect_timeout_ms, 1000);
    CU_ASSERT_EQUAL(cfg->upstream.timeout_ms, 30000);
    CU_ASSERT_EQUAL(cfg->upstream.queue_timeout_ms, 5000);
    CU_ASSERT_PTR_NULL(cfg->admin.address);
    CU_ASSERT_PTR_NULL(cfg->admin.token_file);
    CU_ASSERT_PTR_NULL(cfg->admin.token_env);
    CU_ASSERT_EQUAL(cfg->admin.addrlen, 0);
    CU_ASSERT_EQUAL(cfg->cache.memory, (size_t)256 << 20);
    CU_ASSERT_EQUAL(cfg->cache.max_object_size, (size_t)8 << 20);
    CU_ASSERT_EQUAL(cfg->tier.num_memcached_servers, 0);
    CU_ASSERT_PTR_NULL(cfg->tier.memcached_servers);
    CU_ASSERT_EQUAL(cfg->tier.memcached_timeout_ms, 20);
    CU_ASSERT_EQUAL(cfg->limits.upstream_header_size, (size_t)64 << 10);

    CU_ASSERT_EQUAL_FATAL(cfg->num_routes, 1);
    r = &cfg->routes[0];
    CU_ASSERT_EQUAL(r->line, 5);
    CU_ASSERT_STRING_EQUAL(r->match_path, "/");
    CU_ASSERT_EQUAL(r->methods, CR_METHOD_ALL);
    CU_ASSERT_EQUAL(r->cache, 1);
    CU_ASSERT_EQUAL(r->ttl_ms, 0);
    CU_ASSERT_EQUAL(r->max_ttl_ms, 0);
    CU_ASSERT_EQUAL(r->force_ttl_ms, 0);
    CU_ASSERT_EQUAL(r->ignore_no_store, 0);
    CU_ASSERT_STRING_EQUAL(r->force_cache_control, "no-cache");
    CU_ASSERT_EQUAL(r->heuristic_freshness, 0);
    CU_ASSERT_EQUAL(r->allow_set_cookie, 0);
    CU_ASSERT_EQUAL(r->stale_while_revalidate_ms, 0);
    CU_ASSERT_EQUAL(r->stale_if_error_ms, 0);
    CU_ASSERT_EQUAL(r->key_query, CR_KEY_QUERY_ALL);
    CU_ASSERT_EQUAL(r->num_key_query_names, 0);
    CU_ASSERT_EQUAL(r->num_key_headers, 0);
    CU_ASSERT_EQUAL(r->coalesce, 1);
    CU_ASSERT_EQUAL(r->coalesce_timeout_ms, 5000);
    CU_ASSERT_EQUAL(r->coalesce_max_waiters, 10000);
    CU_ASSERT_EQUAL(r->coalesce_pass_ttl_ms, 10000);
    CU_ASSERT_EQUAL(r->compress, 1);
    CU_ASSERT_EQUAL(r->compress_min_size, 256);
    CU_ASSERT(r->num_compress_types > 2);
    for (i = 0; i != r->num_compress_types; ++i) {
        has_json |= strcmp(r->compress_types[i], "application/json") == 0;
        has_text |= strcmp(r->compress_types[i], "text/*") == 0;
    }
    CU_ASSERT(has_json && has_text);
    CU_ASSERT_EQUAL(r->num_invalidate, 0);
    cr_config_free(&cfg);

    /* no routes at all: everything passes */
    cfg = load(HEAD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->num_routes, 0);
    CU_ASSERT_PTR_NULL(cfg->routes);
    cr_config_free(&cfg);

    /* a small cache lowers the default max_object_size to fit */
    cfg = load(HEAD "cache: { memory: 2MiB }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->cache.memory, (size_t)2 << 20);
    CU_ASSERT_EQUAL(cfg->cache.max_object_size, (size_t)2 << 20);
    cr_config_free(&cfg);
}

static void test_all_route_keys(void)
{
    cr_config_t *cfg = load(HEAD "routes:\n"
                                 "  - match: { exact: /a, methods: [POST, PUT, PATCH, DELETE, OPTIONS] }\n"
                                 "    force_ttl: 1500ms\n"
                                 "    ignore_no_store: yes\n"
                                 "    force_cache_control: 'max-age=0, must-revalidate'\n"
                                 "    heuristic_freshness: on\n"
                                 "    allow_set_cookie: True\n"
                                 "    key: { query: none, headers: [Accept-Encoding, X-Tenant] }\n"
                                 "    coalesce: { timeout: 250ms, max_waiters: 7, pass_ttl: 0 }\n"
                                 "    compress: { min_size: 1KiB }\n"
                                 "    invalidate: ['/b/*', '/c/{id}/d']\n"
                                 "  - match: { prefix: /b }\n"
                                 "    cache: off\n"
                                 "    coalesce: false\n"
                                 "    compress: true\n"
                                 "    key: { query: all }\n"
                                 "  - match: { prefix: /c }\n"
                                 "    key: { query: [] }\n"
                                 "    compress: no\n");
    const cr_route_config_t *r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cfg->num_routes, 3);
    r = &cfg->routes[0];
    CU_ASSERT_EQUAL(r->methods, CR_METHOD_POST | CR_METHOD_PUT | CR_METHOD_PATCH | CR_METHOD_DELETE | CR_METHOD_OPTIONS);
    CU_ASSERT_EQUAL(r->force_ttl_ms, 1500);
    CU_ASSERT_EQUAL(r->ignore_no_store, 1);
    CU_ASSERT_STRING_EQUAL(r->force_cache_control, "max-age=0, must-revalidate");
    CU_ASSERT_EQUAL(r->heuristic_freshness, 1);
    CU_ASSERT_EQUAL(r->allow_set_cookie, 1);
    CU_ASSERT_EQUAL(r->key_query, CR_KEY_QUERY_NONE);
    CU_ASSERT_EQUAL_FATAL(r->num_key_headers, 2);
    CU_ASSERT_STRING_EQUAL(r->key_headers[0], "accept-encoding"); /* lower-cased, config order */
    CU_ASSERT_STRING_EQUAL(r->key_headers[1], "x-tenant");
    CU_ASSERT_EQUAL(r->coalesce, 1);
    CU_ASSERT_EQUAL(r->coalesce_timeout_ms, 250);
    CU_ASSERT_EQUAL(r->coalesce_max_waiters, 7);
    CU_ASSERT_EQUAL(r->coalesce_pass_ttl_ms, 0);
    CU_ASSERT_EQUAL(r->compress, 1);
    CU_ASSERT_EQUAL(r->compress_min_size, 1024);
    CU_ASSERT(r->num_compress_types > 2); /* the default list */
    CU_ASSERT_EQUAL_FATAL(r->num_invalidate, 2);
    CU_ASSERT_STRING_EQUAL(r->invalidate[0], "/b/*");
    CU_ASSERT_STRING_EQUAL(r->invalidate[1], "/c/{id}/d");
    r = &cfg->routes[1];
    CU_ASSERT_EQUAL(r->cache, 0);
    CU_ASSERT_EQUAL(r->coalesce, 0);
    CU_ASSERT_EQUAL(r->compress, 1);
    CU_ASSERT_EQUAL(r->key_query, CR_KEY_QUERY_ALL);
    r = &cfg->routes[2];
    CU_ASSERT_EQUAL(r->key_query, CR_KEY_QUERY_LIST);
    CU_ASSERT_EQUAL(r->num_key_query_names, 0);
    CU_ASSERT_EQUAL(r->compress, 0);
    cr_config_free(&cfg);
}

static void test_addresses(void)
{
    cr_config_t *cfg = load("listen:\n"
                            "  - address: localhost:8081\n"
                            "  - address: '[::1]:8082'\n"
                            "  - address: '[::]:8083'\n"
                            "upstream: { url: 'http://[::1]:9000/' }\n"
                            "admin: { address: '0.0.0.0:9091', token_env: CORRAL_ADMIN_TOKEN }\n"
                            "tier: { memcached: { servers: ['10.0.0.1:11211', 'memcached-0.cache:11211', '[::1]:11211'] } }\n");
    const struct sockaddr_in *sin;
    const struct sockaddr_in6 *sin6;
    struct in6_addr loop6 = IN6ADDR_LOOPBACK_INIT;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    sin = (const struct sockaddr_in *)&cfg->listens[0].addr;
    CU_ASSERT_EQUAL(sin->sin_family, AF_INET);
    CU_ASSERT_EQUAL(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
    CU_ASSERT_STRING_EQUAL(cfg->listens[0].address, "localhost:8081"); /* as written */
    sin6 = (const struct sockaddr_in6 *)&cfg->listens[1].addr;
    CU_ASSERT_EQUAL(sin6->sin6_family, AF_INET6);
    CU_ASSERT_EQUAL(ntohs(sin6->sin6_port), 8082);
    CU_ASSERT(memcmp(&sin6->sin6_addr, &loop6, sizeof(loop6)) == 0);
    CU_ASSERT_EQUAL(cfg->listens[1].addrlen, sizeof(struct sockaddr_in6));
    CU_ASSERT_STRING_EQUAL(cfg->upstream.host, "::1");
    CU_ASSERT_EQUAL(cfg->upstream.port, 9000);
    CU_ASSERT_EQUAL(cfg->upstream.addr.ss_family, AF_INET6);
    CU_ASSERT_STRING_EQUAL(cfg->admin.token_env, "CORRAL_ADMIN_TOKEN");
    CU_ASSERT_PTR_NULL(cfg->admin.token_file);
    CU_ASSERT_EQUAL(cfg->tier.num_memcached_servers, 3);
    cr_config_free(&cfg);

    /* upstream without a port is port 80; localhost resolves to 127.0.0.1 */
    cfg = load("listen: [{ address: '127.0.0.1:1' }]\nupstream: { url: 'HTTP://localhost' }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->upstream.host, "localhost");
    CU_ASSERT_EQUAL(cfg->upstream.port, 80);
    sin = (const struct sockaddr_in *)&cfg->upstream.addr;
    CU_ASSERT_EQUAL(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
    CU_ASSERT_EQUAL(ntohs(sin->sin_port), 80);
    cr_config_free(&cfg);
}

static void test_parse_duration(void)
{
    uint64_t v = 0;
    CU_ASSERT(cr_parse_duration_ms("1500ms", &v) == 0 && v == 1500);
    CU_ASSERT(cr_parse_duration_ms("30s", &v) == 0 && v == 30000);
    CU_ASSERT(cr_parse_duration_ms("5m", &v) == 0 && v == 300000);
    CU_ASSERT(cr_parse_duration_ms("1h", &v) == 0 && v == 3600000);
    CU_ASSERT(cr_parse_duration_ms("7", &v) == 0 && v == 7000);
    CU_ASSERT(cr_parse_duration_ms("0", &v) == 0 && v == 0);
    CU_ASSERT(cr_parse_duration_ms("10 s", &v) == 0 && v == 10000);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("s", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("-1s", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("1.5s", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("10d", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("10S", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("5h ", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("99999999999999999999s", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_duration_ms("18446744073709551615s", &v), -1); /* overflows once in ms */
    CU_ASSERT_EQUAL(cr_parse_duration_ms(NULL, &v), -1);
}

static void test_parse_size(void)
{
    size_t v = 0;
    CU_ASSERT(cr_parse_size("100B", &v) == 0 && v == 100);
    CU_ASSERT(cr_parse_size("100", &v) == 0 && v == 100);
    CU_ASSERT(cr_parse_size("512KiB", &v) == 0 && v == 512 * 1024);
    CU_ASSERT(cr_parse_size("8MiB", &v) == 0 && v == (size_t)8 << 20);
    CU_ASSERT(cr_parse_size("1GiB", &v) == 0 && v == (size_t)1 << 30);
    CU_ASSERT(cr_parse_size("2KB", &v) == 0 && v == 2000);
    CU_ASSERT(cr_parse_size("3MB", &v) == 0 && v == 3000000);
    CU_ASSERT(cr_parse_size("1GB", &v) == 0 && v == 1000000000);
    CU_ASSERT(cr_parse_size("256 MiB", &v) == 0 && v == (size_t)256 << 20);
    CU_ASSERT_EQUAL(cr_parse_size("", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_size("MiB", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_size("1mib", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_size("1K", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_size("-1", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_size("1.5MiB", &v), -1);
    CU_ASSERT_EQUAL(cr_parse_size("99999999999999GiB", &v), -1);
}

static void test_method_bit(void)
{
    CU_ASSERT_EQUAL(cr_method_bit("GET", 3), CR_METHOD_GET);
    CU_ASSERT_EQUAL(cr_method_bit("HEAD", 4), CR_METHOD_HEAD);
    CU_ASSERT_EQUAL(cr_method_bit("POST", 4), CR_METHOD_POST);
    CU_ASSERT_EQUAL(cr_method_bit("PUT", 3), CR_METHOD_PUT);
    CU_ASSERT_EQUAL(cr_method_bit("PATCH", 5), CR_METHOD_PATCH);
    CU_ASSERT_EQUAL(cr_method_bit("DELETE", 6), CR_METHOD_DELETE);
    CU_ASSERT_EQUAL(cr_method_bit("OPTIONS", 7), CR_METHOD_OPTIONS);
    CU_ASSERT_EQUAL(cr_method_bit("GETX", 3), CR_METHOD_GET); /* length-delimited */
    CU_ASSERT_EQUAL(cr_method_bit("get", 3), CR_METHOD_OTHER);  /* methods are case-sensitive */
    CU_ASSERT_EQUAL(cr_method_bit("PROPFIND", 8), CR_METHOD_OTHER);
    CU_ASSERT_EQUAL(cr_method_bit("", 0), CR_METHOD_OTHER);
}

static void test_load_file(void)
{
    char path[] = "/tmp/corral-test-config-XXXXXX", expect[128];
    int fd = mkstemp(path);
    FILE *fp;
    cr_config_t *cfg;

    CU_ASSERT_FATAL(fd >= 0);
    fp = fdopen(fd, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(design_example, fp);
    fclose(fp);
    cfg = cr_config_load(path, errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NOT_NULL(cfg);
    if (cfg != NULL) {
        CU_ASSERT_STRING_EQUAL(cfg->path, path);
        check_design_example(cfg);
    }
    cr_config_free(&cfg);

    /* messages carry the file name */
    fp = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(HEAD "threads: lots\n", fp);
    fclose(fp);
    cfg = cr_config_load(path, errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NULL(cfg);
    snprintf(expect, sizeof(expect), "%s:4:10: threads: bad integer \"lots\"", path);
    CU_ASSERT_STRING_EQUAL(errbuf, expect);
    cr_config_free(&cfg);
    unlink(path);

    cfg = cr_config_load(path, errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NULL(cfg);
    snprintf(expect, sizeof(expect), "%s:1:1: cannot open: ", path);
    CU_ASSERT(strncmp(errbuf, expect, strlen(expect)) == 0);
}

static void test_shipped_files(void)
{
    cr_config_t *cfg = cr_config_load("conf/corral.yaml", errbuf, sizeof(errbuf));
    const cr_route_config_t *last;

    if (cfg == NULL)
        fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->num_listens, 1);
    CU_ASSERT_STRING_EQUAL(cfg->listens[0].address, "127.0.0.1:8081");
    CU_ASSERT_STRING_EQUAL(cfg->upstream.url, "http://127.0.0.1:8080");
    CU_ASSERT_STRING_EQUAL(cfg->admin.address, "127.0.0.1:9091");
    CU_ASSERT_STRING_EQUAL(cfg->admin.token_env, "CORRAL_ADMIN_TOKEN");
    CU_ASSERT_EQUAL(cfg->tier.num_memcached_servers, 0);
    CU_ASSERT_EQUAL(cfg->cache.memory, (size_t)256 << 20);
    CU_ASSERT_FATAL(cfg->num_routes >= 4);
    last = &cfg->routes[cfg->num_routes - 1];
    CU_ASSERT_STRING_EQUAL(last->match_path, "/");
    CU_ASSERT_EQUAL(last->cache, 1);
    CU_ASSERT_EQUAL(last->ttl_ms, 30000);
    cr_config_free(&cfg);

    cfg = cr_config_load("conf/corral-full.yaml", errbuf, sizeof(errbuf));
    if (cfg == NULL)
        fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->limits.upstream_header_size, (size_t)64 << 10);
    CU_ASSERT_EQUAL(cfg->num_listens, 2);
    CU_ASSERT_STRING_EQUAL(cfg->listens[1].tls_certificate, "/etc/corral/tls.crt");
    CU_ASSERT_EQUAL(cfg->tier.num_memcached_servers, 1);
    CU_ASSERT_EQUAL(cfg->num_routes, 3);
    cr_config_free(&cfg);
}

static void test_limits(void)
{
    cr_config_t *cfg = load(HEAD "limits: { upstream_header_size: 8KiB }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->limits.upstream_header_size, 8192);
    cr_config_free(&cfg);
    cfg = load(HEAD "limits:\n  upstream_header_size: 1MiB\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->limits.upstream_header_size, (size_t)1 << 20);
    cr_config_free(&cfg);
    cfg = load(HEAD "limits: {}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->limits.upstream_header_size, (size_t)64 << 10);
    cr_config_free(&cfg);
    EXPECT_ERROR(HEAD "limits: { upstream_header_size: 1023B }\n", "t.yaml:4:33: ",
                 "limits.upstream_header_size: 1023B is out of range (1KiB to 1MiB)");
    EXPECT_ERROR(HEAD "limits: { upstream_header_size: 2MiB }\n", "t.yaml:4:33: ",
                 "limits.upstream_header_size: 2MiB is out of range (1KiB to 1MiB)");
    EXPECT_ERROR(HEAD "limits: { upstream_header_size: big }\n", "t.yaml:4:33: ", "limits.upstream_header_size: bad size");
    EXPECT_ERROR(HEAD "limits: { header_size: 8KiB }\n", "t.yaml:4:11: ", "unknown key \"header_size\" in limits");
    EXPECT_ERROR(HEAD "limits: 8KiB\n", "t.yaml:4:9: ", "limits: mapping expected");
}

/* Every limit: its default, both ends of its range accepted, one past each end refused with the range named. */
static void test_limit_table(void)
{
    static const struct {
        const char *key;
        size_t offset;
        int is_size;
        uint64_t def;
        const char *min, *max, *below, *above;
        uint64_t min_v, max_v;
    } rows[] = {
#define ROW(key, field, is_size, def, min, max, below, above, min_v, max_v)                                                   \
    {key, offsetof(cr_config_t, limits.field), is_size, def, min, max, below, above, min_v, max_v}
        ROW("request_headers", request_headers, 1, 64 << 10, "1KiB", "1MiB", "1023", "1025KiB", 1024, 1 << 20),
        ROW("request_body", request_body, 1, 16 << 20, "1KiB", "1GiB", "1000B", "1025MiB", 1024, 1 << 30),
        ROW("upstream_header_size", upstream_header_size, 1, 64 << 10, "1KiB", "1MiB", "1023B", "2MiB", 1024, 1 << 20),
        ROW("admin_body", admin_body, 1, 1 << 20, "1KiB", "64MiB", "1000", "65MiB", 1024, 64 << 20),
        ROW("response_buffer", response_buffer, 1, 1 << 20, "16KiB", "64MiB", "15KiB", "65MiB", 16 << 10, 64 << 20),
        ROW("connections", connections, 0, 10000, "16", "1000000", "15", "1000001", 16, 1000000),
        ROW("streams_per_connection", streams_per_connection, 0, 100, "1", "1000", "0", "1001", 1, 1000),
        ROW("variants_per_key", variants_per_key, 0, 32, "1", "1024", "0", "1025", 1, 1024),
        ROW("queued_fills", queued_fills, 0, 1024, "1", "1000000", "0", "1000001", 1, 1000000),
        ROW("cancels_per_connection", cancels_per_connection, 0, 200, "1", "1000000", "0", "1000001", 1, 1000000),
        ROW("cancels_per_address", cancels_per_address, 0, 1000, "1", "10000000", "0", "10000001", 1, 10000000),
        ROW("header_timeout", header_timeout_ms, 0, 10000, "100ms", "10m", "99ms", "601s", 100, 600000),
#undef ROW
    };
    char yaml[512], want[256];

    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i) {
        const char *bounds[2] = {rows[i].min, rows[i].max};
        const uint64_t expect[2] = {rows[i].min_v, rows[i].max_v};
        cr_config_t *cfg = load(HEAD "limits: {}\n");
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
#define FIELD(c) (rows[i].is_size ? (uint64_t) * (size_t *)((char *)(c) + rows[i].offset) : *(uint64_t *)((char *)(c) + rows[i].offset))
        CU_ASSERT_EQUAL(FIELD(cfg), rows[i].def);
        cr_config_free(&cfg);
        for (int b = 0; b != 2; ++b) {
            snprintf(yaml, sizeof(yaml), HEAD "limits:\n  %s: %s\n", rows[i].key, bounds[b]);
            cfg = load(yaml);
            CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
            CU_ASSERT_EQUAL(FIELD(cfg), expect[b]);
            cr_config_free(&cfg);
        }
#undef FIELD
        snprintf(yaml, sizeof(yaml), HEAD "limits:\n  %s: %s\n", rows[i].key, rows[i].below);
        snprintf(want, sizeof(want), "limits.%s: %s is out of range", rows[i].key, rows[i].below);
        EXPECT_ERROR(yaml, "t.yaml:5:", want);
        snprintf(yaml, sizeof(yaml), HEAD "limits:\n  %s: %s\n", rows[i].key, rows[i].above);
        snprintf(want, sizeof(want), "limits.%s: %s is out of range", rows[i].key, rows[i].above);
        EXPECT_ERROR(yaml, "t.yaml:5:", want);
        snprintf(yaml, sizeof(yaml), HEAD "limits:\n  %s: -1\n", rows[i].key);
        EXPECT_ERROR(yaml, "t.yaml:5:", "limits.");
    }
}

static void test_yaml_syntax_errors(void)
{
    EXPECT_ERROR("threads: 2\nlisten: [a, b\n", "t.yaml:3:1: ", "YAML syntax error: did not find expected ',' or ']'");
    EXPECT_ERROR("threads: 2\n  listen: x\n", "t.yaml:2:9: ", "YAML syntax error: mapping values are not allowed");
    EXPECT_ERROR("threads: 2\nlisten:\n\t- a\n", "t.yaml:3:1: ", "YAML syntax error: found character that cannot start");
    EXPECT_ERROR("threads: *nope\n", "t.yaml:1:10: ", "YAML syntax error: found undefined alias");
    EXPECT_ERROR("threads: 2\nx: \"\xff\"\n", "t.yaml:2:5: ", "YAML syntax error: invalid leading UTF-8 octet");
    /* braces are flow indicators: a template inside [...] must be quoted (DESIGN.md's example forgot) */
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    invalidate: [/v1/users, /v1/users/{id}]\n", "t.yaml:6:39: ",
                 "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 6, column 17)");
    EXPECT_ERROR(HEAD "---\nthreads: 2\n", "t.yaml:5:1: ", "only one YAML document is allowed");
    EXPECT_ERROR("", "t.yaml:1:1: ", "missing required key \"listen\"");
    EXPECT_ERROR("# just a comment\n", "t.yaml:1:1: ", "missing required key \"listen\"");
    EXPECT_ERROR("- a\n- b\n", "t.yaml:1:1: ", "the configuration must be a mapping, found a list");
}

static void test_unknown_keys(void)
{
    EXPECT_ERROR(HEAD "ttl: 5s\n", "t.yaml:4:1: ",
                 "unknown key \"ttl\" at the top level (allowed there: threads, listen, upstream, admin, cache, tier, limits, "
                 "routes, drain_timeout, log); "
                 "\"ttl\" belongs in tier.lease, routes[]");
    EXPECT_ERROR(HEAD "upstream2: {}\n", "t.yaml:4:1: ", "unknown key \"upstream2\" at the top level (allowed there: threads");
    EXPECT_ERROR("listen:\n  - address: 127.0.0.1:1\n    tsl: {}\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:3:5: ",
                 "unknown key \"tsl\" in listen[0] (allowed there: address, tls)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    timeout: 5s\n", "t.yaml:6:5: ",
                 "unknown key \"timeout\" in routes[0] (allowed there: match, cache, ttl");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    timeout: 5s\n", "t.yaml:6:5: ",
                 "\"timeout\" belongs in upstream, tier.memcached, routes[].coalesce");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a, method: [GET] }\n", "t.yaml:5:26: ",
                 "unknown key \"method\" in routes[0].match (allowed there: prefix, exact, methods)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { query: all, header: [x] }\n", "t.yaml:6:24: ",
                 "unknown key \"header\" in routes[0].key");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    coalesce: { wait: 1s }\n", "t.yaml:6:17: ",
                 "unknown key \"wait\" in routes[0].coalesce (allowed there: timeout, max_waiters, pass_ttl)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { level: 5 }\n", "t.yaml:6:17: ",
                 "unknown key \"level\" in routes[0].compress (allowed there: types, min_size, encodings, brotli_quality, "
                 "gzip_level)");
    EXPECT_ERROR(HEAD "upstream2:\n", "t.yaml:4:1: ", "unknown key \"upstream2\"");
    EXPECT_ERROR(HEAD "cache: { size: 1MiB }\n", "t.yaml:4:10: ",
                 "unknown key \"size\" in cache (allowed there: memory, max_object_size, surrogate_key_header, "
                 "keep_surrogate_key, purge_from, targeted_cache_control, forward_targeted)");
    EXPECT_ERROR(HEAD "tier: { redis: {} }\n", "t.yaml:4:9: ", "unknown key \"redis\" in tier (allowed there: memcached, lease, invalidation)");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: ['a:1'], ttl: 1s } }\n", "t.yaml:4:40: ",
                 "unknown key \"ttl\" in tier.memcached (allowed there: servers, timeout, max_item_size); \"ttl\" belongs in "
                 "tier.lease, routes[]");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: ['a:1'] }, lease: { ttl: 1500ms } }\n", "t.yaml:4:",
                 "tier.lease.ttl: whole seconds from 1s to 60s");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: ['a:1'] }, invalidation: { max_delay: 10ms, poll_interval: 10ms } }\n",
                 "t.yaml:4:", "tier.invalidation.poll_interval: must be shorter than max_delay");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: ['a:1'], max_item_size: 100 } }\n", "t.yaml:4:",
                 "tier.memcached.max_item_size: at least 4k");
    EXPECT_ERROR(HEAD "admin: { address: '127.0.0.1:9', token: x }\n", "t.yaml:4:34: ", "unknown key \"token\" in admin");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1', tls: { cert: a, key: b } }]\nupstream: { url: 'http://127.0.0.1:2' }\n",
                 "t.yaml:1:43: ", "unknown key \"cert\" in listen[0].tls (allowed there: certificate, key)");
    EXPECT_ERROR(HEAD "upstream_url: x\n", "t.yaml:4:1: ", "unknown key \"upstream_url\"");
    EXPECT_ERROR(HEAD "? [a, b]\n: c\n", "t.yaml:4:3: ", "keys at the top level must be scalars, found a list");
}

static void test_wrong_types(void)
{
    EXPECT_ERROR(HEAD "threads: [1]\n", "t.yaml:4:10: ", "threads: scalar expected, found a list");
    EXPECT_ERROR(HEAD "threads: { n: 1 }\n", "t.yaml:4:10: ", "threads: scalar expected, found a mapping");
    EXPECT_ERROR(HEAD "threads:\n", "t.yaml:4:9: ", "threads: a value is required");
    EXPECT_ERROR("listen: 127.0.0.1:8081\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:1:9: ",
                 "listen: list expected, found a scalar");
    EXPECT_ERROR("listen:\n  address: 127.0.0.1:8081\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:2:3: ",
                 "listen: list expected, found a mapping");
    EXPECT_ERROR("listen: ['127.0.0.1:8081']\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:1:10: ",
                 "listen[0]: mapping expected, found a scalar");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream: http://127.0.0.1:2\n", "t.yaml:2:11: ",
                 "upstream: mapping expected, found a scalar");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream:\n", "t.yaml:2:10: ",
                 "upstream: mapping expected, found an empty value");
    EXPECT_ERROR(HEAD "admin: [a]\n", "t.yaml:4:8: ", "admin: mapping expected, found a list");
    EXPECT_ERROR(HEAD "routes: { match: {} }\n", "t.yaml:4:9: ", "routes: list expected, found a mapping");
    EXPECT_ERROR(HEAD "routes:\n  - match: /a\n", "t.yaml:5:12: ", "routes[0].match: mapping expected, found a scalar");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: [/a] }\n", "t.yaml:5:22: ",
                 "routes[0].match.prefix: scalar expected, found a list");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a, methods: GET }\n", "t.yaml:5:35: ",
                 "routes[0].match.methods: list expected, found a scalar");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { headers: accept }\n", "t.yaml:6:21: ",
                 "routes[0].key.headers: list expected, found a scalar");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { headers: [[a]] }\n", "t.yaml:6:22: ",
                 "routes[0].key.headers[0]: scalar expected, found a list");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { query: some }\n", "t.yaml:6:19: ",
                 "routes[0].key.query: expected all, none or a list of parameter names, found \"some\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { query: { a: 1 } }\n", "t.yaml:6:19: ",
                 "routes[0].key.query: expected all, none or a list of parameter names, found a mapping");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    coalesce: [1]\n", "t.yaml:6:15: ",
                 "routes[0].coalesce: expected true, false or a mapping, found a list");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: sometimes\n", "t.yaml:6:15: ",
                 "routes[0].compress: bad boolean \"sometimes\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    invalidate: /a\n", "t.yaml:6:17: ",
                 "routes[0].invalidate: list expected, found a scalar");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: '127.0.0.1:11211' } }\n", "t.yaml:4:31: ",
                 "tier.memcached.servers: list expected, found a scalar");
    EXPECT_ERROR(HEAD "routes:\n  - /a\n", "t.yaml:5:5: ", "routes[0]: mapping expected, found a scalar");
    EXPECT_ERROR(HEAD "admin: { address: \"127.0.0.1:9\\0\" }\n", "t.yaml:4:19: ", "admin.address: value contains a NUL byte");
}

static void test_bad_values(void)
{
    EXPECT_ERROR(HEAD "threads: two\n", "t.yaml:4:10: ", "threads: bad integer \"two\"");
    EXPECT_ERROR(HEAD "threads: -1\n", "t.yaml:4:10: ", "threads: bad integer \"-1\"");
    EXPECT_ERROR(HEAD "threads: 2.5\n", "t.yaml:4:10: ", "threads: bad integer \"2.5\"");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream:\n  url: http://127.0.0.1:2\n  timeout: 30 seconds\n",
                 "t.yaml:4:12: ", "upstream.timeout: bad duration \"30 seconds\" (expected a number with ms, s, m or h");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream:\n  url: http://127.0.0.1:2\n  connect_timeout: 0s\n",
                 "t.yaml:4:20: ", "upstream.connect_timeout: must be greater than 0");
    EXPECT_ERROR(HEAD "cache:\n  memory: 256M\n", "t.yaml:5:11: ",
                 "cache.memory: bad size \"256M\" (expected a number with B, KiB");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    cache: maybe\n", "t.yaml:6:12: ",
                 "routes[0].cache: bad boolean \"maybe\" (use true/false, yes/no or on/off)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    ttl: 1d\n", "t.yaml:6:10: ", "routes[0].ttl: bad duration \"1d\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    stale_if_error: soon\n", "t.yaml:6:21: ",
                 "routes[0].stale_if_error: bad duration \"soon\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    coalesce: { max_waiters: many }\n", "t.yaml:6:30: ",
                 "routes[0].coalesce.max_waiters: bad integer \"many\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    coalesce: { timeout: 0ms }\n", "t.yaml:6:26: ",
                 "routes[0].coalesce.timeout: must be greater than 0");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { min_size: big }\n", "t.yaml:6:27: ",
                 "routes[0].compress.min_size: bad size \"big\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { types: [json] }\n", "t.yaml:6:25: ",
                 "routes[0].compress.types[0]: expected a media type like application/json, text/* or */*+json (\"json\")");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { types: [] }\n", "t.yaml:6:24: ",
                 "routes[0].compress.types: the list must not be empty");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: a }\n", "t.yaml:5:22: ", "routes[0].match.prefix: a path must start with '/'");
    EXPECT_ERROR(HEAD "routes:\n  - match: { exact: '/a?b' }\n", "t.yaml:5:21: ",
                 "routes[0].match.exact: a path must not contain spaces, control characters, '?' or '#'");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { headers: ['accept language'] }\n", "t.yaml:6:22: ",
                 "routes[0].key.headers[0]: not a valid header name");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { headers: [x-a, X-A] }\n", "t.yaml:6:27: ",
                 "routes[0].key.headers[1]: duplicate entry \"X-A\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { query: ['a=b'] }\n", "t.yaml:6:20: ",
                 "routes[0].key.query[0]: a query parameter name must not contain");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    invalidate: [/a/*/b]\n", "t.yaml:6:18: ",
                 "routes[0].invalidate[0]: '*' is only allowed at the end");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    invalidate: ['/a/{id']\n", "t.yaml:6:18: ",
                 "routes[0].invalidate[0]: a placeholder is {name}");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    invalidate: [a]\n", "t.yaml:6:18: ",
                 "routes[0].invalidate[0]: a path must start with '/'");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    ignore_no_store: true\n", "t.yaml:6:22: ",
                 "routes[0].ignore_no_store: only applies with force_ttl");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    force_cache_control: no-store\n", "t.yaml:6:26: ",
                 "routes[0].force_cache_control: only applies with force_ttl");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    force_ttl: 1s\n    force_cache_control: \"a\\nb\"\n",
                 "t.yaml:7:26: ",
                 "routes[0].force_cache_control: a header value must not contain control characters");
    EXPECT_ERROR(HEAD "admin: { address: '127.0.0.1:9', token_env: 'MY-TOKEN' }\n", "t.yaml:4:45: ",
                 "admin.token_env: an environment variable name has only letters, digits and '_'");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: ['a:1', 'a:1'] } }\n", "t.yaml:4:39: ",
                 "tier.memcached.servers[1]: duplicate entry \"a:1\"");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: [] } }\n", "t.yaml:4:31: ",
                 "tier.memcached.servers: the list must not be empty");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: ['mc_1:11211'] } }\n", "t.yaml:4:32: ",
                 "tier.memcached.servers[0]: not a valid host name (\"mc_1:11211\")");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: ['mc:0'] } }\n", "t.yaml:4:32: ",
                 "tier.memcached.servers[0]: port out of range (1..65535)");
    EXPECT_ERROR(HEAD "tier: { memcached: { servers: ['a:1'], timeout: 0 } }\n", "t.yaml:4:49: ",
                 "tier.memcached.timeout: must be greater than 0");
}

static void test_out_of_range(void)
{
    EXPECT_ERROR(HEAD "threads: 0\n", "t.yaml:4:10: ", "threads: 0 is out of range (1..256)");
    EXPECT_ERROR(HEAD "threads: 257\n", "t.yaml:4:10: ", "threads: 257 is out of range (1..256)");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream: { url: 'http://127.0.0.1:2', max_connections: 0 }\n",
                 "t.yaml:2:57: ", "upstream.max_connections: 0 is out of range (1..100000)");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream: { url: 'http://127.0.0.1:2', max_connections: 100001 }\n",
                 "t.yaml:2:57: ", "upstream.max_connections: 100001 is out of range (1..100000)");
    EXPECT_ERROR("threads: 4\nlisten: [{ address: '127.0.0.1:1' }]\nupstream: { url: 'http://127.0.0.1:2', max_connections: 2 }\n",
                 "t.yaml:3:57: ", "upstream.max_connections (2) is less than threads (4)");
    EXPECT_ERROR(HEAD "cache: { memory: 512KiB }\n", "t.yaml:4:18: ", "cache.memory: 512KiB is out of range (at least 1MiB)");
    EXPECT_ERROR(HEAD "cache:\n  memory: 16MiB\n  max_object_size: 32MiB\n", "t.yaml:6:20: ",
                 "cache.max_object_size: 32MiB is out of range (at most cache.memory");
    EXPECT_ERROR(HEAD "cache:\n  max_object_size: 512MiB\n", "t.yaml:5:20: ", "cache.max_object_size: 512MiB is out of range");
    EXPECT_ERROR(HEAD "cache:\n  max_object_size: 0\n", "t.yaml:5:20: ", "cache.max_object_size: must be greater than 0");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:0' }]\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:1:21: ",
                 "listen[0].address: bad address \"127.0.0.1:0\": port out of range (1..65535)");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:65536' }]\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:1:21: ",
                 "port out of range (1..65535)");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream: { url: 'http://127.0.0.1:70000' }\n", "t.yaml:2:18: ",
                 "upstream.url: bad address in \"http://127.0.0.1:70000\": port out of range (1..65535)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    coalesce: { max_waiters: 0 }\n", "t.yaml:6:30: ",
                 "routes[0].coalesce.max_waiters: 0 is out of range");
}

static void test_duplicates(void)
{
    EXPECT_ERROR("listen:\n  - address: 127.0.0.1:8081\n  - address: 0.0.0.0:8443\n  - address: localhost:8081\n"
                 "upstream: { url: 'http://127.0.0.1:2' }\n",
                 "t.yaml:4:14: ",
                 "listen[2].address: duplicate listen address \"localhost:8081\" (same as listen[0], \"127.0.0.1:8081\")");
    EXPECT_ERROR("listen:\n  - address: '[::1]:80'\n  - address: '[0:0::1]:80'\nupstream: { url: 'http://127.0.0.1:2' }\n",
                 "t.yaml:3:14: ", "duplicate listen address");
    EXPECT_ERROR(HEAD "admin: { address: 'localhost:8081' }\n", "t.yaml:4:19: ",
                 "admin.address: \"localhost:8081\" is already used by listen[0]");
    EXPECT_ERROR(HEAD "threads: 2\nthreads: 3\n", "t.yaml:5:1: ", "duplicate key \"threads\" at the top level (first at line 4)");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream:\n  url: http://127.0.0.1:2\n  timeout: 1s\n  timeout: 2s\n",
                 "t.yaml:5:3: ", "duplicate key \"timeout\" in upstream (first at line 4)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    ttl: 1s\n    ttl: 2s\n", "t.yaml:7:5: ",
                 "duplicate key \"ttl\" in routes[0] (first at line 6)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n  - match: { prefix: /b, prefix: /c }\n", "t.yaml:6:26: ",
                 "duplicate key \"prefix\" in routes[1].match (first at line 6)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    invalidate: [/a, /b, /a]\n", "t.yaml:6:26: ",
                 "routes[0].invalidate[2]: duplicate entry \"/a\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    key: { query: [b, a, b] }\n", "t.yaml:6:26: ",
                 "routes[0].key.query[2]: duplicate entry \"b\"");
}

static void test_missing_required(void)
{
    EXPECT_ERROR("threads: 2\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:1:1: ",
                 "missing required key \"listen\" at the top level");
    EXPECT_ERROR("threads: 2\nlisten: [{ address: '127.0.0.1:1' }]\n", "t.yaml:1:1: ",
                 "missing required key \"upstream\" at the top level");
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream:\n  max_connections: 5\n", "t.yaml:3:3: ",
                 "missing required key \"url\" in upstream");
    EXPECT_ERROR("listen: []\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:1:9: ",
                 "listen: at least one listener is required");
    EXPECT_ERROR("listen:\n  - tls: { certificate: a, key: b }\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:2:5: ",
                 "missing required key \"address\" in listen[0]");
    EXPECT_ERROR("listen:\n  - address: 127.0.0.1:1\n    tls: { certificate: /c }\nupstream: { url: 'http://127.0.0.1:2' }\n",
                 "t.yaml:3:10: ", "missing required key \"key\" in listen[0].tls");
    EXPECT_ERROR(HEAD "admin: { token_env: X }\n", "t.yaml:4:8: ", "missing required key \"address\" in admin");
    EXPECT_ERROR(HEAD "tier: { memcached: { timeout: 5ms } }\n", "t.yaml:4:20: ",
                 "missing required key \"servers\" in tier.memcached");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n  - cache: true\n", "t.yaml:6:5: ",
                 "missing required key \"match\" in routes[1]");
    EXPECT_ERROR(HEAD "routes:\n  - match: { methods: [GET] }\n", "t.yaml:5:12: ",
                 "routes[0].match: one of prefix or exact is required");
}

static void test_conflicts(void)
{
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a, exact: /b }\n", "t.yaml:5:26: ",
                 "routes[0].match: both prefix and exact are set; use exactly one");
    EXPECT_ERROR(HEAD "admin:\n  address: 127.0.0.1:9091\n  token_file: /x\n  token_env: X\n", "t.yaml:7:3: ",
                 "admin: both token_file and token_env are set; use at most one");
}

static void test_bad_addresses(void)
{
#define LISTEN_ERR(addr, needle)                                                                                                   \
    EXPECT_ERROR("listen:\n  - address: '" addr "'\nupstream: { url: 'http://127.0.0.1:2' }\n", "t.yaml:2:14: ", needle)
    LISTEN_ERR("example.com:80", "listen[0].address: bad address \"example.com:80\": the host must be a numeric IPv4 address, "
                                 "a bracketed IPv6 address or localhost");
    LISTEN_ERR("127.0.0.1", "bad address \"127.0.0.1\": expected host:port");
    LISTEN_ERR("127.0.0.1:http", "expected host:port with a numeric port");
    LISTEN_ERR("127.0.0.1:", "expected host:port with a numeric port");
    LISTEN_ERR(":8080", "the host is empty");
    LISTEN_ERR("::1:8080", "an IPv6 address must be written in brackets");
    LISTEN_ERR("[::1:8080", "missing ']'");
    LISTEN_ERR("[127.0.0.1]:80", "not a numeric IPv6 address inside the brackets");
    LISTEN_ERR("256.0.0.1:80", "the host must be a numeric IPv4 address");
    LISTEN_ERR("[::1]8080", "expected host:port with a numeric port");
#undef LISTEN_ERR
    EXPECT_ERROR(HEAD "admin: { address: 'admin:9091' }\n", "t.yaml:4:19: ", "admin.address: bad address \"admin:9091\": the host");

#define UPSTREAM_ERR(url, needle)                                                                                                  \
    EXPECT_ERROR("listen: [{ address: '127.0.0.1:1' }]\nupstream:\n  url: '" url "'\n", "t.yaml:3:8: ", needle)
    UPSTREAM_ERR("https://127.0.0.1:8443", "upstream.url: https is not supported for the upstream; use http://");
    UPSTREAM_ERR("127.0.0.1:8080", "upstream.url: must start with http://");
    UPSTREAM_ERR("http://api_internal:8080", /* a host name is resolved (issue 17), but it must be one */
                 "upstream.url: bad address in \"http://api_internal:8080\": not a valid host name");
    UPSTREAM_ERR("http://127.0.0.1:8080/api", "upstream.url: must not have a path, query or fragment");
    UPSTREAM_ERR("http://127.0.0.1:8080?x", "upstream.url: must not have a path, query or fragment");
    UPSTREAM_ERR("http://u:p@127.0.0.1:8080", "upstream.url: user information is not allowed");
    UPSTREAM_ERR("http://", "the host is empty");
#undef UPSTREAM_ERR
}

static void test_methods(void)
{
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a, methods: [GET, FETCH] }\n", "t.yaml:5:41: ",
                 "routes[0].match.methods[1]: unknown method \"FETCH\" (allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a, methods: [get] }\n", "t.yaml:5:36: ", "unknown method \"get\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a, methods: [] }\n", "t.yaml:5:35: ",
                 "routes[0].match.methods: the list must not be empty");
}

static void test_route_lines(void)
{
    cr_config_t *cfg = load(HEAD "routes:\n"
                                 "\n"
                                 "  - match: { prefix: /a }\n"
                                 "  -\n"
                                 "    match: { exact: /b }\n"
                                 "  - { match: { prefix: /c } }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cfg->num_routes, 3);
    CU_ASSERT_EQUAL(cfg->routes[0].line, 6);
    CU_ASSERT_EQUAL(cfg->routes[1].line, 8);
    CU_ASSERT_EQUAL(cfg->routes[2].line, 9);
    cr_config_free(&cfg);
}

static void test_surrogate_keys(void)
{
    cr_config_t *cfg = load(HEAD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->cache.surrogate_key_header, "surrogate-key");
    CU_ASSERT_EQUAL(cfg->cache.keep_surrogate_key, 0);
    cr_config_free(&cfg);
    cfg = load(HEAD "cache: { memory: 64MiB }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->cache.surrogate_key_header, "surrogate-key");
    cr_config_free(&cfg);
    cfg = load(HEAD "cache: { surrogate_key_header: Cache-Tag, keep_surrogate_key: true }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->cache.surrogate_key_header, "cache-tag");
    CU_ASSERT_EQUAL(cfg->cache.keep_surrogate_key, 1);
    cr_config_free(&cfg);
    EXPECT_ERROR(HEAD "cache: { surrogate_key_header: 'Cache Tag' }\n", "t.yaml:4:32: ",
                 "cache.surrogate_key_header: not a valid header name");
    EXPECT_ERROR(HEAD "cache: { surrogate_key_header: '' }\n", "t.yaml:4:32: ", "cache.surrogate_key_header: a value is required");
    EXPECT_ERROR(HEAD "cache: { surrogate_key_header: [a] }\n", "t.yaml:4:32: ", "cache.surrogate_key_header");
    EXPECT_ERROR(HEAD "cache: { keep_surrogate_key: maybe }\n", "t.yaml:4:30: ", "cache.keep_surrogate_key");
}

/* compress.encodings / brotli_quality / gzip_level (issue 4) and the media-type pattern forms. */
static void test_compress_keys(void)
{
    cr_config_t *cfg = load(HEAD "routes:\n"
                                 "  - match: { prefix: /a }\n"
                                 "  - match: { prefix: /b }\n"
                                 "    compress: { encodings: [br], brotli_quality: 11, gzip_level: 1,\n"
                                 "                types: ['*/*+json', 'application/*+xml', '+yaml', TEXT/*] }\n"
                                 "  - match: { prefix: /c }\n"
                                 "    compress: { encodings: [GZIP, br], brotli_quality: 0, gzip_level: 9 }\n"
                                 "  - match: { prefix: /d }\n"
                                 "    cache: false\n"
                                 "    compress: { encodings: [gzip] }\n");
    const cr_route_config_t *r;
    int has_json = 0, has_xml = 0;
    size_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cfg->num_routes, 4);
    r = &cfg->routes[0];
    CU_ASSERT_EQUAL(r->compress, 1);
    CU_ASSERT_EQUAL(r->compress_encodings, CR_ENC_BIT(CR_ENC_GZIP) | CR_ENC_BIT(CR_ENC_BR));
    CU_ASSERT_EQUAL(r->brotli_quality, 5);
    CU_ASSERT_EQUAL(r->gzip_level, 6);
    for (i = 0; i != r->num_compress_types; ++i) {
        has_json |= strcmp(r->compress_types[i], "*/*+json") == 0;
        has_xml |= strcmp(r->compress_types[i], "*/*+xml") == 0;
    }
    CU_ASSERT(has_json && has_xml); /* the default list covers any +json / +xml type */
    r = &cfg->routes[1];
    CU_ASSERT_EQUAL(r->compress_encodings, CR_ENC_BIT(CR_ENC_BR));
    CU_ASSERT_EQUAL(r->brotli_quality, 11);
    CU_ASSERT_EQUAL(r->gzip_level, 1);
    CU_ASSERT_EQUAL_FATAL(r->num_compress_types, 4);
    CU_ASSERT_STRING_EQUAL(r->compress_types[0], "*/*+json");
    CU_ASSERT_STRING_EQUAL(r->compress_types[1], "application/*+xml");
    CU_ASSERT_STRING_EQUAL(r->compress_types[2], "+yaml");
    CU_ASSERT_STRING_EQUAL(r->compress_types[3], "text/*"); /* lower-cased */
    r = &cfg->routes[2];
    CU_ASSERT_EQUAL(r->compress_encodings, CR_ENC_BIT(CR_ENC_GZIP) | CR_ENC_BIT(CR_ENC_BR));
    CU_ASSERT_EQUAL(r->brotli_quality, 0);
    CU_ASSERT_EQUAL(r->gzip_level, 9);
    r = &cfg->routes[3];
    CU_ASSERT_EQUAL(r->cache, 0);
    CU_ASSERT_EQUAL(r->compress, 1); /* on-the-fly compression of the passed-through response */
    CU_ASSERT_EQUAL(r->compress_encodings, CR_ENC_BIT(CR_ENC_GZIP));
    cr_config_free(&cfg);

    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { encodings: [zstd] }\n", "t.yaml:6:29: ",
                 "routes[0].compress.encodings[0]: unknown encoding (expected br or gzip) (\"zstd\")");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { encodings: [] }\n", "t.yaml:6:28: ",
                 "routes[0].compress.encodings: the list must not be empty");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { encodings: [br, BR] }\n", "t.yaml:6:33: ",
                 "routes[0].compress.encodings[1]: duplicate entry \"BR\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { encodings: br }\n", "t.yaml:6:28: ",
                 "routes[0].compress.encodings: list expected");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { brotli_quality: 12 }\n", "t.yaml:6:33: ",
                 "routes[0].compress.brotli_quality: 12 is out of range (0..11)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { brotli_quality: -1 }\n", "t.yaml:6:33: ",
                 "routes[0].compress.brotli_quality: bad integer \"-1\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { gzip_level: 0 }\n", "t.yaml:6:29: ",
                 "routes[0].compress.gzip_level: 0 is out of range (1..9)");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    compress: { types: ['*/*'] }\n", "t.yaml:6:25: ",
                 "routes[0].compress.types[0]: expected a media type like application/json, text/* or */*+json");
}

static void test_errbuf_edges(void)
{
    char small[12];
    const char *yaml = HEAD "threads: 0\n";
    cr_config_t *cfg = cr_config_load_string("t.yaml", yaml, strlen(yaml), small, sizeof(small));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_STRING_EQUAL(small, "t.yaml:4:10"); /* truncated, NUL-terminated */
    cfg = cr_config_load_string(NULL, yaml, strlen(yaml), NULL, 0);
    CU_ASSERT_PTR_NULL(cfg);
    cfg = cr_config_load_string(NULL, yaml, strlen(yaml), errbuf, sizeof(errbuf));
    CU_ASSERT(strncmp(errbuf, "<string>:4:10: ", 15) == 0);
    /* a quoted value with control bytes stays on one line in the message (fuzz_config found the raw newline) */
    EXPECT_ERROR("listen:\n  - address: 127.0.0.1:8081\nupstream: { url: \"x\\ny\\t\\e\" }\n", "t.yaml:3:18: ",
                 "x\\ny\\t\\x1b");
    /* the length is honoured: the bad tail is not read */
    cfg = cr_config_load_string("t.yaml", yaml, strlen(HEAD), errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NOT_NULL(cfg);
    cr_config_free(&cfg);
}

static void test_forward_headers_cookies_paths(void)
{
    cr_config_t *cfg = load(HEAD "routes:\n"
                                 "  - match: { prefix: /a/ }\n"
                                 "    key: { headers: [x-tenant, X-Forwarded-Host] }\n"
                                 "    forward_headers: [X-Forwarded-Host, x-original-url]\n"
                                 "    cookies: [session, Lang]\n"
                                 "  - match: { exact: '//b;x/./' }\n"
                                 "    cookies: ignore\n"
                                 "  - match: { prefix: / }\n"
                                 "    cookies: pass\n");
    const cr_route_config_t *r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    r = &cfg->routes[0];
    CU_ASSERT_STRING_EQUAL(r->match_path, "/a"); /* match form */
    CU_ASSERT_EQUAL_FATAL(r->num_forward_headers, 2);
    CU_ASSERT_STRING_EQUAL(r->forward_headers[0], "x-forwarded-host");
    CU_ASSERT_STRING_EQUAL(r->forward_headers[1], "x-original-url");
    /* forwarded headers join the key, once */
    CU_ASSERT_EQUAL_FATAL(r->num_key_headers, 3);
    CU_ASSERT_STRING_EQUAL(r->key_headers[0], "x-tenant");
    CU_ASSERT_STRING_EQUAL(r->key_headers[1], "x-forwarded-host");
    CU_ASSERT_STRING_EQUAL(r->key_headers[2], "x-original-url");
    CU_ASSERT_EQUAL(r->cookies, CR_COOKIES_LIST);
    CU_ASSERT_EQUAL_FATAL(r->num_cookie_names, 2);
    CU_ASSERT_STRING_EQUAL(r->cookie_names[1], "Lang"); /* cookie names are case-sensitive */
    CU_ASSERT_STRING_EQUAL(cfg->routes[1].match_path, "/b");
    CU_ASSERT_EQUAL(cfg->routes[1].cookies, CR_COOKIES_IGNORE);
    CU_ASSERT_EQUAL(cfg->routes[2].cookies, CR_COOKIES_PASS);
    CU_ASSERT_STRING_EQUAL(cfg->routes[2].match_path, "/");
    cr_config_free(&cfg);

    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    cookies: sometimes\n", "t.yaml:6:14: ",
                 "routes[0].cookies: expected pass, ignore or a list of cookie names, found \"sometimes\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    cookies: { a: 1 }\n", "t.yaml:6:14: ",
                 "routes[0].cookies: expected pass, ignore or a list of cookie names, found a mapping");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    cookies: []\n", "t.yaml:6:14: ", "the list must not be empty");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    cookies: [a, 'b c']\n", "t.yaml:6:18: ",
                 "routes[0].cookies[1]: not a valid cookie name");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    cookies: [a, a]\n", "t.yaml:6:18: ", "duplicate entry");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    forward_headers: [x-forwarded-host, 'a b']\n", "t.yaml:6:41: ",
                 "routes[0].forward_headers[1]: not a valid header name");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    forward_headers: x-forwarded-host\n", "t.yaml:6:22: ",
                 "routes[0].forward_headers");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: /a }\n    forward_headers: [Cookie]\n", "t.yaml:6:22: ",
                 "cookie is set with cookies:");
    EXPECT_ERROR(HEAD "routes:\n  - match: { prefix: '/a/..;/b' }\n", "t.yaml:5:22: ", "must not contain \"..\"");
    EXPECT_ERROR(HEAD "routes:\n  - match: { exact: '/a\\\\b' }\n", "t.yaml:5:21: ", "backslashes");
}

/* ---- config_check.c: what -t and start-up check beyond the syntax (files, environment) ---- */

static char check_dir[64];

/* Makes a key and a self-signed certificate with the openssl CLI: <dir>/<name>.key and <dir>/<name>.crt. */
static int make_cert(const char *name)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=corral-test "
             "-keyout %s/%s.key -out %s/%s.crt >/dev/null 2>&1",
             check_dir, name, check_dir, name);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *name, const char *text)
{
    char path[128];
    FILE *fp;
    snprintf(path, sizeof(path), "%s/%s", check_dir, name);
    CU_ASSERT_FATAL((fp = fopen(path, "w")) != NULL);
    fputs(text, fp);
    fclose(fp);
}

/* Loads yaml (with %s = check_dir substituted everywhere) and runs cr_config_check; returns its result. */
static int check_yaml(const char *tmpl, char **token)
{
    char yaml[2048], *p = yaml;
    const char *t;
    cr_config_t *cfg;
    int r;
    for (t = tmpl; *t != '\0' && p < yaml + sizeof(yaml) - 80; ++t) {
        if (t[0] == '%' && t[1] == 's') {
            p += sprintf(p, "%s", check_dir);
            ++t;
        } else {
            *p++ = *t;
        }
    }
    *p = '\0';
    cfg = load(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    errbuf[0] = '\0';
    r = cr_config_check(cfg, token, errbuf, sizeof(errbuf));
    cr_config_free(&cfg);
    return r;
}

#define CHECK_HEAD "listen:\n  - address: 127.0.0.1:8081\n  - address: 127.0.0.1:8443\n"
#define CHECK_TAIL "upstream: { url: 'http://127.0.0.1:8080' }\n"

static void test_check_admin_token(void)
{
    char *token = NULL;
    write_text("token", "s3cret \n");
    write_text("empty", " \n\n");
    CU_ASSERT_EQUAL(check_yaml(CHECK_HEAD CHECK_TAIL "admin:\n  address: 127.0.0.1:9091\n  token_file: %s/token\n", &token), 0);
    CU_ASSERT_PTR_NOT_NULL(token);
    if (token != NULL)
        CU_ASSERT_STRING_EQUAL(token, "s3cret");
    free(token);
    token = NULL;
    /* missing: the message points at the value (line 7, column 15) */
    CU_ASSERT_EQUAL(check_yaml(CHECK_HEAD CHECK_TAIL "admin:\n  address: 127.0.0.1:9091\n  token_file: %s/missing\n", &token), -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:7:15: admin.token_file: cannot read", 42), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "No such file"));
    CU_ASSERT_PTR_NULL(token);
    CU_ASSERT_EQUAL(check_yaml(CHECK_HEAD CHECK_TAIL "admin:\n  address: 127.0.0.1:9091\n  token_file: %s/empty\n", NULL), -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:7:15: admin.token_file:", 30), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "is empty"));
    /* a directory is not readable as a file */
    CU_ASSERT_EQUAL(check_yaml(CHECK_HEAD CHECK_TAIL "admin:\n  address: 127.0.0.1:9091\n  token_file: %s\n", NULL), -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:7:15: admin.token_file: cannot read", 42), 0);
    /* token_env naming an unset variable is an error */
    unsetenv("CORRAL_UNIT_NO_SUCH_TOKEN");
    CU_ASSERT_EQUAL(check_yaml(CHECK_HEAD CHECK_TAIL "admin:\n  address: 127.0.0.1:9091\n  token_env: CORRAL_UNIT_NO_SUCH_TOKEN\n", NULL),
                    -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:7:14: admin.token_env:", 29), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "CORRAL_UNIT_NO_SUCH_TOKEN is not set"));
    setenv("CORRAL_UNIT_TOKEN", "envtoken", 1);
    CU_ASSERT_EQUAL(check_yaml(CHECK_HEAD CHECK_TAIL "admin:\n  address: 127.0.0.1:9091\n  token_env: CORRAL_UNIT_TOKEN\n", &token), 0);
    if (token != NULL)
        CU_ASSERT_STRING_EQUAL(token, "envtoken");
    free(token);
    unsetenv("CORRAL_UNIT_TOKEN");
    /* no admin token configured: fine, no token */
    token = (char *)"x";
    CU_ASSERT_EQUAL(check_yaml(CHECK_HEAD CHECK_TAIL, &token), 0);
    CU_ASSERT_PTR_NULL(token);
}

#define TLS_YAML(cert, key)                                                                                                  \
    "listen:\n  - address: 127.0.0.1:8081\n  - address: 127.0.0.1:8443\n    tls:\n      certificate: " cert "\n      key: " key \
    "\n" CHECK_TAIL

static void test_check_tls(void)
{
    CU_ASSERT_FATAL(make_cert("a") == 0 && make_cert("b") == 0);
    write_text("garbage.crt", "not a certificate\n");
    CU_ASSERT_EQUAL(check_yaml(TLS_YAML("%s/a.crt", "%s/a.key"), NULL), 0);
    /* missing certificate: line 5, column 20 */
    CU_ASSERT_EQUAL(check_yaml(TLS_YAML("%s/none.crt", "%s/a.key"), NULL), -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:5:20: listen[1].tls.certificate: cannot read", 51), 0);
    /* missing key: line 6, column 12 */
    CU_ASSERT_EQUAL(check_yaml(TLS_YAML("%s/a.crt", "%s/none.key"), NULL), -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:6:12: listen[1].tls.key: cannot read", 43), 0);
    CU_ASSERT_EQUAL(check_yaml(TLS_YAML("%s/garbage.crt", "%s/a.key"), NULL), -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:5:20: listen[1].tls.certificate: cannot load", 51), 0);
    CU_ASSERT_EQUAL(check_yaml(TLS_YAML("%s/a.crt", "%s/garbage.crt"), NULL), -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:6:12: listen[1].tls.key: cannot load", 43), 0);
    /* a key that is not the certificate's */
    CU_ASSERT_EQUAL(check_yaml(TLS_YAML("%s/a.crt", "%s/b.key"), NULL), -1);
    CU_ASSERT_EQUAL(strncmp(errbuf, "t.yaml:6:12: listen[1].tls.key:", 31), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "does not match the certificate"));
    if (strstr(errbuf, "does not match") == NULL)
        fprintf(stderr, "\nmismatch: %s\n", errbuf);
}

static int check_suite_init(void)
{
    snprintf(check_dir, sizeof(check_dir), "/tmp/corral-unit-check.XXXXXX");
    return mkdtemp(check_dir) != NULL ? 0 : -1;
}

static int check_suite_cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", check_dir);
    return system(cmd) == 0 ? 0 : -1;
}

void cr_test_register_config(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    CU_add_test(s, "design example", test_design_example);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "all route keys", test_all_route_keys);
    CU_add_test(s, "addresses", test_addresses);
    CU_add_test(s, "parse duration", test_parse_duration);
    CU_add_test(s, "parse size", test_parse_size);
    CU_add_test(s, "method bit", test_method_bit);
    CU_add_test(s, "load file", test_load_file);
    CU_add_test(s, "shipped conf files", test_shipped_files);
    CU_add_test(s, "limits", test_limits);
    CU_add_test(s, "yaml syntax errors", test_yaml_syntax_errors);
    CU_add_test(s, "unknown keys", test_unknown_keys);
    CU_add_test(s, "wrong types", test_wrong_types);
    CU_add_test(s, "bad values", test_bad_values);
    CU_add_test(s, "out of range", test_out_of_range);
    CU_add_test(s, "duplicates", test_duplicates);
    CU_add_test(s, "missing required", test_missing_required);
    CU_add_test(s, "conflicts", test_conflicts);
    CU_add_test(s, "bad addresses", test_bad_addresses);
    CU_add_test(s, "methods", test_methods);
    CU_add_test(s, "route lines", test_route_lines);
    CU_add_test(s, "errbuf edges", test_errbuf_edges);
    CU_add_test(s, "every limit: default and range", test_limit_table);
    CU_add_test(s, "compress keys", test_compress_keys);
    CU_add_test(s, "surrogate keys", test_surrogate_keys);
    CU_add_test(s, "forward_headers, cookies and match paths", test_forward_headers_cookies_paths);
    s = CU_add_suite("config_check", check_suite_init, check_suite_cleanup);
    CU_add_test(s, "admin token file and environment", test_check_admin_token);
    CU_add_test(s, "TLS certificate and key", test_check_tls);
}
