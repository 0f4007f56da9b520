/*
 * test_invalidate.c: end-to-end tests of invalidation: write-through on unsafe methods (target, Location,
 * Content-Location, route templates), the write-during-fill race, surrogate-key tags, and the admin purge API with
 * its bearer token and input validation.
 *
 * The upstream's per-path settings (/__set) change the version it serves, so "the next GET sees the new version" is
 * checked on the body, and the upstream's counts prove which requests reached it.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define TOKEN "s3cret-token"

static cr_proc_t up, corral;

static const char *template = "threads: 2\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "  token_env: CORRAL_E2E_ADMIN_TOKEN\n"
                              "routes:\n"
                              "  - match: { prefix: /tpl/users, methods: [GET, HEAD] }\n"
                              "    ttl: 60s\n"
                              "    invalidate: [/tpl/users, '/tpl/users/{id}', '/tpl/users/{id}/*', '/tpl/teams/*']\n"
                              "  - match: { prefix: /swr }\n"
                              "    ttl: 60s\n"
                              "    stale_while_revalidate: 30s\n"
                              "  - match: { prefix: / }\n"
                              "    ttl: 60s\n";

static int suite_init(void)
{
    setenv("CORRAL_E2E_ADMIN_TOKEN", TOKEN, 1);
    return harness_start_pair(&up, &corral, template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* GET path; returns 1 when it was a hit, 0 otherwise; copies the body's "version" into ver (may be NULL). */
static int get_is_hit(const char *path, char *ver, size_t versize);

/* Fills the cache for `path` and returns once the object is stored: a miss's own answer may leave before its object
 * (made with its codings) is in the store, and an invalidation or an admin request in between would not see it. The
 * hit that follows is answered from the store. */
static void prime(const char *path)
{
    get_is_hit(path, NULL, 0);
    CU_ASSERT_TRUE(get_is_hit(path, NULL, 0));
}

static int get_is_hit(const char *path, char *ver, size_t versize)
{
    int hit = harness_get_hit(&corral, path, NULL, ver, versize);
    CU_ASSERT_FATAL(hit >= 0);
    return hit;
}

static long write_req(const char *method, const char *path_and_query)
{
    long status = harness_write(&corral, method, path_and_query);
    CU_ASSERT_FATAL(status >= 0);
    return status;
}

static void test_unsafe_methods_invalidate_the_target(void)
{
    static const char *methods[] = {"PUT", "PATCH", "POST", "DELETE"};
    size_t i;
    for (i = 0; i != 4; ++i) {
        char path[64], ver[32];
        snprintf(path, sizeof(path), "/w/%s", methods[i]);
        upstream_set(&up, path, "version=1");
        get_is_hit(path, NULL, 0);
        CU_ASSERT_TRUE(get_is_hit(path, ver, sizeof(ver)));
        CU_ASSERT_STRING_EQUAL(ver, "1");
        upstream_set(&up, path, "version=2");
        CU_ASSERT_EQUAL(write_req(methods[i], path), 200);
        CU_ASSERT_FALSE(get_is_hit(path, ver, sizeof(ver)));
        CU_ASSERT_STRING_EQUAL(ver, "2");
        CU_ASSERT_EQUAL(upstream_count(&up, path), 3);
    }
}

static void test_write_invalidates_every_variant_of_the_path(void)
{
    static const char *const fr[] = {"Accept-Language: fr", NULL};
    cr_resp_t r;
    char cs[256];
    get_is_hit("/wv/x?cc=max-age%3D60&vary=Accept-Language&page=1", NULL, 0);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/wv/x?cc=max-age%3D60&vary=Accept-Language&page=1"), fr), 0);
    resp_free(&r);
    get_is_hit("/wv/x?cc=max-age%3D60&page=2", NULL, 0);
    CU_ASSERT_EQUAL(upstream_count(&up, "/wv/x"), 3);
    CU_ASSERT_EQUAL(write_req("POST", "/wv/x"), 200);
    CU_ASSERT_FALSE(get_is_hit("/wv/x?cc=max-age%3D60&vary=Accept-Language&page=1", NULL, 0));
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/wv/x?cc=max-age%3D60&vary=Accept-Language&page=1"), fr), 0);
    resp_header(&r, "cache-status", cs, sizeof(cs));
    CU_ASSERT_PTR_NULL(strstr(cs, "corral; hit"));
    resp_free(&r);
    CU_ASSERT_FALSE(get_is_hit("/wv/x?cc=max-age%3D60&page=2", NULL, 0));
}

static void test_error_answers_invalidate_nothing(void)
{
    get_is_hit("/w4/x", NULL, 0);
    CU_ASSERT_EQUAL(write_req("PUT", "/w4/x?status=409"), 409);
    CU_ASSERT_EQUAL(write_req("DELETE", "/w4/x?status=500"), 500);
    CU_ASSERT_TRUE(get_is_hit("/w4/x", NULL, 0));
    CU_ASSERT_EQUAL(upstream_count(&up, "/w4/x"), 3);
}

static void test_location_and_content_location_are_invalidated(void)
{
    char loc[128];
    prime("/loc/items/7");
    prime("/loc/items/8");
    prime("/loc/items/9");
    CU_ASSERT_EQUAL(write_req("POST", "/loc/items?status=201&location=/loc/items/7&content_location=items/8"), 201);
    CU_ASSERT_FALSE(get_is_hit("/loc/items/7", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/loc/items/8", NULL, 0)); /* relative: resolved against /loc/items (RFC 3986 5.2) */
    /* another authority is not ours to invalidate */
    snprintf(loc, sizeof(loc), "/loc/items?status=201&location=http://elsewhere.example/loc/items/9");
    CU_ASSERT_EQUAL(write_req("POST", loc), 201);
    CU_ASSERT_TRUE(get_is_hit("/loc/items/9", NULL, 0));
}

static void test_route_templates(void)
{
    prime("/tpl/users");
    prime("/tpl/users/42");
    prime("/tpl/users/42/avatar");
    prime("/tpl/users/43");
    prime("/tpl/teams/a");
    CU_ASSERT_EQUAL(write_req("PUT", "/tpl/users/42"), 200);
    CU_ASSERT_FALSE(get_is_hit("/tpl/users", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/tpl/users/42", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/tpl/users/42/avatar", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/tpl/teams/a", NULL, 0));
    CU_ASSERT_TRUE(get_is_hit("/tpl/users/43", NULL, 0));
}

typedef struct {
    const char *url;
    char version[32];
} slow_get_t;

static void *slow_get(void *arg)
{
    slow_get_t *g = arg;
    cr_resp_t r;
    if (http_get(&r, CR_H1, g->url, NULL) == 0) {
        const char *v = strstr(r.body, "\"version\": \"");
        snprintf(g->version, sizeof(g->version), "%.*s", v != NULL ? (int)strcspn(v + 12, "\"") : 0, v != NULL ? v + 12 : "");
    }
    resp_free(&r);
    return NULL;
}

static void test_write_during_a_fill_is_not_undone(void)
{
    slow_get_t g = {NULL, ""};
    pthread_t tid;
    char ver[32];
    int i;
    char url[256];
    snprintf(url, sizeof(url), "%s", url_of(&corral, "/race/x?delay=600"));
    g.url = url;
    upstream_set(&up, "/race/x", "version=old");
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tid, NULL, slow_get, &g), 0);
    for (i = 0; i != 500 && upstream_count(&up, "/race/x") < 1; ++i) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL); /* bounded poll until the fill has reached the upstream */
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/race/x"), 1);
    upstream_set(&up, "/race/x", "version=new");
    CU_ASSERT_EQUAL(write_req("PUT", "/race/x"), 200);
    pthread_join(tid, NULL);
    CU_ASSERT_STRING_EQUAL(g.version, "old"); /* the fill's own answer was served to its waiter */
    CU_ASSERT_FALSE(get_is_hit("/race/x?delay=600", ver, sizeof(ver)));
    CU_ASSERT_STRING_EQUAL(ver, "new");
    CU_ASSERT_EQUAL(upstream_count(&up, "/race/x"), 3);
}

/* An admin request; returns the status and copies the body (when body_out != NULL). */
static long admin(const char *method, const char *path, const char *token, const char *body, char *body_out, size_t outsize,
                  char *www, size_t wwwsize)
{
    char url[256], auth[128];
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
    cr_resp_t r;
    long status;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", corral.admin_port, path);
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers[1] = auth;
    }
    CU_ASSERT_EQUAL_FATAL(http_request(&r, CR_H1, method, url, headers, body, body != NULL ? strlen(body) : 0), 0);
    status = r.status;
    if (body_out != NULL)
        snprintf(body_out, outsize, "%s", r.body);
    if (www != NULL && resp_header(&r, "www-authenticate", www, wwwsize) == NULL)
        www[0] = '\0';
    resp_free(&r);
    return status;
}

static void test_admin_requires_the_token(void)
{
    char body[512], www[128];
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", NULL, "{\"tags\":[\"x\"]}", body, sizeof(body), www, sizeof(www)), 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(www, "Bearer"));
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "wrong", "{\"tags\":[\"x\"]}", body, sizeof(body), www, sizeof(www)), 401);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN "x", "{\"tags\":[\"x\"]}", NULL, 0, NULL, 0), 401);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"tags\":[\"x\"]}", body, sizeof(body), NULL, 0), 200);
    CU_ASSERT_EQUAL(admin("GET", "/metrics", NULL, NULL, NULL, 0, NULL, 0), 401);
    CU_ASSERT_EQUAL(admin("GET", "/healthz", NULL, NULL, NULL, 0, NULL, 0), 200);
}

static void test_tag_purge(void)
{
    char body[512];
    cr_resp_t r;
    char sk[64];
    prime("/tag/a?hdr=Surrogate-Key:user-42%20list");
    prime("/tag/b?hdr=Surrogate-Key:user-42");
    prime("/tag/c?hdr=Surrogate-Key:user-43");
    /* the header is indexed and not shown to clients */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/tag/a?hdr=Surrogate-Key:user-42%20list"), NULL), 0);
    CU_ASSERT_PTR_NULL(resp_header(&r, "surrogate-key", sk, sizeof(sk)));
    resp_free(&r);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"tags\": [\"user-42\"]}", body, sizeof(body), NULL, 0), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"objects\": 2"));
    CU_ASSERT_FALSE(get_is_hit("/tag/a?hdr=Surrogate-Key:user-42%20list", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/tag/b?hdr=Surrogate-Key:user-42", NULL, 0));
    CU_ASSERT_TRUE(get_is_hit("/tag/c?hdr=Surrogate-Key:user-43", NULL, 0));
}

static void test_prefix_and_key_purge(void)
{
    char body[512];
    prime("/pfx/users/1");
    prime("/pfx/users/2?page=3");
    prime("/pfx/usersX");
    prime("/pfx/teams/1");
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"prefixes\": [\"/pfx/users/\"], \"keys\": [\"/pfx/teams/1\"]}", body,
                          sizeof(body), NULL, 0),
                    200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"objects\": 3"));
    CU_ASSERT_FALSE(get_is_hit("/pfx/users/1", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/pfx/users/2?page=3", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/pfx/teams/1", NULL, 0));
    CU_ASSERT_TRUE(get_is_hit("/pfx/usersX", NULL, 0));
}

/* A prefix without a trailing '/' matches on a segment boundary, as a route prefix does: the path itself and what is
 * under it, never a longer name (issue 17: it once also removed /seg/usersX). */
static void test_prefix_purge_stops_at_segment_boundary(void)
{
    char body[512];
    prime("/seg/users");
    prime("/seg/users/1");
    prime("/seg/users?page=2");
    prime("/seg/usersX");
    prime("/seg/usersX/1");
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"prefixes\": [\"/seg/users\"]}", body, sizeof(body), NULL, 0), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"objects\": 3"));
    CU_ASSERT_FALSE(get_is_hit("/seg/users", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/seg/users/1", NULL, 0));
    CU_ASSERT_FALSE(get_is_hit("/seg/users?page=2", NULL, 0));
    CU_ASSERT_TRUE(get_is_hit("/seg/usersX", NULL, 0));
    CU_ASSERT_TRUE(get_is_hit("/seg/usersX/1", NULL, 0));
}

static void test_soft_purge_then_stale_while_revalidate(void)
{
    char body[512], ver[32];
    cr_resp_t r;
    char cs[256];
    int i;
    upstream_set(&up, "/swr/soft", "version=1&etag=%22s1%22");
    prime("/swr/soft");
    upstream_set(&up, "/swr/soft", "version=2&etag=%22s2%22&delay=400");
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"keys\": [\"/swr/soft\"], \"soft\": true}", body, sizeof(body), NULL, 0),
                    200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"soft\": true"));
    /* still there, stale: answered at once, refreshed in the background */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, "/swr/soft"), NULL), 0);
    resp_header(&r, "cache-status", cs, sizeof(cs));
    CU_ASSERT_PTR_NOT_NULL(strstr(cs, "stale-while-revalidate"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"version\": \"1\""));
    CU_ASSERT(r.total_ms < 300);
    resp_free(&r);
    for (i = 0; i != 100; ++i) {
        if (get_is_hit("/swr/soft", ver, sizeof(ver)) && strcmp(ver, "2") == 0)
            break;
        {
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    CU_ASSERT_STRING_EQUAL(ver, "2");
    CU_ASSERT_EQUAL(upstream_count(&up, "/swr/soft"), 2);
}

static void test_bad_purge_input_purges_nothing(void)
{
    char body[512], *big;
    size_t i;
    prime("/bad/x?hdr=Surrogate-Key:keepme");
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"tags\": [\"keepme\"", body, sizeof(body), NULL, 0), 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "JSON"));
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"tags\": [\"keepme\"], \"bogus\": 1}", body, sizeof(body), NULL, 0), 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "bogus"));
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"tags\": [\"keepme\", 7]}", body, sizeof(body), NULL, 0), 400);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "{\"keys\": [\"/bad/x\"], \"soft\": \"yes\"}", body, sizeof(body), NULL, 0),
                    400);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, "[]", body, sizeof(body), NULL, 0), 400);
    /* over limits.admin_body (1 MiB) but under libh2o's own cap (twice that), so corral reads it and answers 413
     * itself: a body past libh2o's cap is refused while curl may still be sending it, a transport error at times */
    big = malloc(1536 * 1024 + 64);
    strcpy(big, "{\"tags\": [\"keepme\"], \"pad\": \"");
    for (i = strlen(big); i != 1536 * 1024; ++i)
        big[i] = 'a';
    strcpy(big + i, "\"}");
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", TOKEN, big, body, sizeof(body), NULL, 0), 413);
    free(big);
    CU_ASSERT_TRUE(get_is_hit("/bad/x?hdr=Surrogate-Key:keepme", NULL, 0));
    CU_ASSERT_EQUAL(admin("GET", "/v1/purge", TOKEN, NULL, body, sizeof(body), NULL, 0), 405);
}

static void test_inspect_and_purge_everything(void)
{
    char body[2048];
    prime("/insp/x?size=3000&hdr=Surrogate-Key:t1%20t2");
    CU_ASSERT_EQUAL(admin("GET", "/v1/cache?key=/insp/x", TOKEN, NULL, body, sizeof(body), NULL, 0), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"encodings\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"gzip\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"t1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"ttl\""));
    CU_ASSERT_EQUAL(admin("GET", "/v1/cache?key=/insp/none", TOKEN, NULL, body, sizeof(body), NULL, 0), 404);
    CU_ASSERT_EQUAL(admin("DELETE", "/v1/cache", TOKEN, NULL, body, sizeof(body), NULL, 0), 200);
    /* the shape of POST /v1/purge's answer (issue 17) */
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "{\"purged\": {\"keys\": 0, \"prefixes\": 0, \"tags\": 0, \"objects\": "));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "}, \"soft\": false}"));
    CU_ASSERT_PTR_NULL(strstr(body, "\"objects\": 0"));
    CU_ASSERT_FALSE(get_is_hit("/insp/x?size=3000&hdr=Surrogate-Key:t1%20t2", NULL, 0));
}

void cr_e2e_register_invalidate(void)
{
    CU_pSuite s = CU_add_suite("invalidate", suite_init, suite_cleanup);
    CU_add_test(s, "PUT, PATCH, POST, DELETE invalidate the target", test_unsafe_methods_invalidate_the_target);
    CU_add_test(s, "a write invalidates every variant of the path", test_write_invalidates_every_variant_of_the_path);
    CU_add_test(s, "error answers invalidate nothing", test_error_answers_invalidate_nothing);
    CU_add_test(s, "Location and Content-Location", test_location_and_content_location_are_invalidated);
    CU_add_test(s, "route templates", test_route_templates);
    CU_add_test(s, "a write during a fill is not undone by it", test_write_during_a_fill_is_not_undone);
    CU_add_test(s, "admin requires the token", test_admin_requires_the_token);
    CU_add_test(s, "tag purge", test_tag_purge);
    CU_add_test(s, "prefix and key purge", test_prefix_and_key_purge);
    CU_add_test(s, "a prefix purge stops at a segment boundary", test_prefix_purge_stops_at_segment_boundary);
    CU_add_test(s, "soft purge then stale-while-revalidate", test_soft_purge_then_stale_while_revalidate);
    CU_add_test(s, "bad purge input purges nothing", test_bad_purge_input_purges_nothing);
    CU_add_test(s, "inspect, and purge everything", test_inspect_and_purge_everything);
}
