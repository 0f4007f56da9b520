/*
 * test_route.c: unit tests for sidecar/conf/route.c (first-match route selection).
 *
 * The routes come from a real config string so the tests also cover what config.c hands to route.c.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/core/common.h"
#include "corral/conf/config.h"
#include "corral/conf/route.h"

static const char routes_yaml[] = "listen: [{ address: '127.0.0.1:8081' }]\n"
                                  "upstream: { url: 'http://127.0.0.1:8080' }\n"
                                  "routes:\n"
                                  "  - match: { exact: /v1/users/me }\n"                    /* 0 */
                                  "  - match: { prefix: /v1/users, methods: [GET, HEAD] }\n" /* 1 */
                                  "  - match: { prefix: /v1/users }\n"                       /* 2 */
                                  "  - match: { prefix: /static/ }\n"                        /* 3 */
                                  "  - match: { exact: /v1/health, methods: [GET] }\n"       /* 4 */
                                  "  - match: { prefix: /v1/posts, methods: [DELETE] }\n"    /* 5 */
                                  "  - match: { prefix: /v2 }\n"                             /* 6 */
                                  "  - match: { prefix: /, methods: [GET] }\n";              /* 7 */

static cr_config_t *cfg;

static int suite_init(void)
{
    char err[256];
    cfg = cr_config_load_string("routes.yaml", routes_yaml, sizeof(routes_yaml) - 1, err, sizeof(err));
    if (cfg == NULL)
        fprintf(stderr, "%s\n", err);
    return cfg == NULL;
}

static int suite_clean(void)
{
    cr_config_free(&cfg);
    return 0;
}

/* Index of the matching route, or -1 for none. */
static int match(const char *method, const char *path)
{
    const cr_route_config_t *r = cr_route_match(cfg, cr_str(method, strlen(method)), cr_str(path, strlen(path)));
    return r == NULL ? -1 : (int)(r - cfg->routes);
}

static void test_first_match_wins(void)
{
    CU_ASSERT_EQUAL(match("GET", "/v1/users/me"), 0); /* exact before the broader prefix */
    CU_ASSERT_EQUAL(match("GET", "/v1/users/42"), 1);
    CU_ASSERT_EQUAL(match("POST", "/v1/users/42"), 2); /* route 1 is GET/HEAD only */
    CU_ASSERT_EQUAL(match("GET", "/anything"), 7);
}

static void test_prefix_segment_boundary(void)
{
    CU_ASSERT_EQUAL(match("GET", "/v1/users"), 1);
    CU_ASSERT_EQUAL(match("GET", "/v1/users/"), 1);
    CU_ASSERT_EQUAL(match("GET", "/v1/users?page=2"), 1);
    CU_ASSERT_EQUAL(match("GET", "/v1/usersX"), 7);
    CU_ASSERT_EQUAL(match("POST", "/v1/usersX"), -1);
    CU_ASSERT_EQUAL(match("GET", "/v1/user"), 7);
    CU_ASSERT_EQUAL(match("POST", "/v2"), 6);
    CU_ASSERT_EQUAL(match("POST", "/v2/x/y"), 6);
    CU_ASSERT_EQUAL(match("POST", "/v20"), -1);
    CU_ASSERT_EQUAL(match("POST", "/v2?x=1"), 6);
    CU_ASSERT_EQUAL(match("POST", "/V2"), -1); /* case-sensitive */
    /* a trailing '/' is not significant, in the route or the request */
    CU_ASSERT_EQUAL(match("PUT", "/static/app.js"), 3);
    CU_ASSERT_EQUAL(match("PUT", "/static/"), 3);
    CU_ASSERT_EQUAL(match("PUT", "/static"), 3);
    CU_ASSERT_EQUAL(match("PUT", "/staticX"), -1);
    /* "/" matches everything */
    CU_ASSERT_EQUAL(match("GET", "/"), 7);
    CU_ASSERT_EQUAL(match("GET", "/?q"), 7);
}

static void test_exact(void)
{
    CU_ASSERT_EQUAL(match("GET", "/v1/health"), 4);
    CU_ASSERT_EQUAL(match("GET", "/v1/health?verbose=1"), 4); /* query ignored */
    CU_ASSERT_EQUAL(match("GET", "/v1/health/"), 4); /* match form: no trailing '/' */
    CU_ASSERT_EQUAL(match("GET", "/v1/healthz"), 7);
    CU_ASSERT_EQUAL(match("GET", "/v1/users/me/"), 0);
    CU_ASSERT_EQUAL(match("DELETE", "/v1/users/me"), 0); /* no methods = all methods */
}

static void test_methods(void)
{
    CU_ASSERT_EQUAL(match("HEAD", "/v1/users/1"), 1);
    CU_ASSERT_EQUAL(match("HEAD", "/v1/health"), -1); /* route 4 is GET only and nothing else matches HEAD there */
    CU_ASSERT_EQUAL(match("DELETE", "/v1/posts/9"), 5);
    CU_ASSERT_EQUAL(match("GET", "/v1/posts/9"), 7);
    CU_ASSERT_EQUAL(match("PATCH", "/v1/posts/9"), -1);
    CU_ASSERT_EQUAL(match("PROPFIND", "/v2/x"), 6); /* unknown methods match routes without a method list */
    CU_ASSERT_EQUAL(match("PROPFIND", "/v1/posts"), -1);
    CU_ASSERT_EQUAL(match("get", "/x"), -1); /* methods are case-sensitive */
}

/* The variants an upstream may read as the same resource match the same route (issue 10). */
static void test_path_variants(void)
{
    static const char *const same[] = {"/v1/health",   "//v1/health",     "/v1//health",   "/v1/health/",  "/v1/health;jsessionid=1",
                                       "/v1;x/health", "/v1/health%2F",   "/v1%2Fhealth",  "/%761/health", "/v1/./health",
                                       "/v1/health/.", "/v1/health%3Bx",  "/v1/health?x"};
    size_t i;
    int amb;
    for (i = 0; i != sizeof(same) / sizeof(same[0]); ++i) {
        const cr_route_config_t *r = cr_route_match_ex(cfg, CR_STR("GET"), cr_str(same[i], strlen(same[i])), &amb);
        if (r != cfg->routes + 4 || amb)
            fprintf(stderr, "\n  %s: route %d, ambiguous %d\n", same[i], r == NULL ? -1 : (int)(r - cfg->routes), amb);
        CU_ASSERT(r == cfg->routes + 4 && !amb);
    }
    /* "..;" and friends: matched as resolved, and flagged so that the handler does not cache them */
    CU_ASSERT_PTR_EQUAL(cr_route_match_ex(cfg, CR_STR("GET"), CR_STR("/x/..;/v1/health"), &amb), cfg->routes + 4);
    CU_ASSERT_EQUAL(amb, 1);
    CU_ASSERT_PTR_EQUAL(cr_route_match_ex(cfg, CR_STR("GET"), CR_STR("/v1\\health"), &amb), cfg->routes + 4);
    CU_ASSERT_EQUAL(amb, 1);
    CU_ASSERT_PTR_EQUAL(cr_route_match_ex(cfg, CR_STR("GET"), CR_STR("/V1/health"), &amb), cfg->routes + 7); /* case kept */
    CU_ASSERT_EQUAL(amb, 0);
    CU_ASSERT_PTR_NULL(cr_route_match_ex(cfg, CR_STR("GET"), CR_STR("no-slash"), &amb));
    CU_ASSERT_EQUAL(amb, 1);
    /* prefixes: the same rules at the boundary */
    CU_ASSERT_EQUAL(match("PUT", "/v2;x/y"), 6);
    CU_ASSERT_EQUAL(match("PUT", "//v2"), 6);
    CU_ASSERT_EQUAL(match("PUT", "/v2%2Fy"), 6);
    CU_ASSERT_EQUAL(match("PUT", "/v2x"), -1);
}

static void test_no_routes(void)
{
    static const char yaml[] = "listen: [{ address: '127.0.0.1:8081' }]\nupstream: { url: 'http://127.0.0.1:8080' }\n";
    char err[256];
    cr_config_t *empty = cr_config_load_string("t.yaml", yaml, sizeof(yaml) - 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(empty);
    CU_ASSERT_PTR_NULL(cr_route_match(empty, CR_STR("GET"), CR_STR("/")));
    CU_ASSERT_PTR_NULL(cr_route_match(empty, CR_STR("GET"), cr_str(NULL, 0)));
    cr_config_free(&empty);
    CU_ASSERT_EQUAL(match("GET", ""), -1); /* an empty path matches no prefix, not even "/" */
}

void cr_test_register_route(void)
{
    CU_pSuite s = CU_add_suite("route", suite_init, suite_clean);
    CU_add_test(s, "first match wins", test_first_match_wins);
    CU_add_test(s, "prefix segment boundary", test_prefix_segment_boundary);
    CU_add_test(s, "exact", test_exact);
    CU_add_test(s, "methods", test_methods);
    CU_add_test(s, "path variants", test_path_variants);
    CU_add_test(s, "no routes", test_no_routes);
}
