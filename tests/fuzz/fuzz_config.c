/*
 * fuzz_config.c: the config loader (conf/config*.c and yaml_read.c, libyaml underneath) and route matching on what
 * it loaded (route.c).
 *
 * Input: a YAML document. Properties beyond "no crash" (and no leak: every config is freed):
 *  - a refused document yields NULL and one message "fuzz.yaml:LINE:COL: ..." without a newline or any other control
 *    byte (values quoted in it are escaped);
 *  - a loaded config has at least one listener and the limits inside their documented ranges' obvious bounds
 *    (non-zero); every route's match path is its own match form (cr_urlpath_match_form), so a request path in match
 *    form can equal it; each route matches its own path (unless a route before it does) for a method it allows.
 */
#include "fuzz_util.h"

#include "corral/conf/config.h"
#include "corral/core/urlpath.h"
#include "corral/conf/route.h"

static const char *method_of(unsigned methods)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{CR_METHOD_GET, "GET"}, {CR_METHOD_HEAD, "HEAD"}, {CR_METHOD_POST, "POST"}, {CR_METHOD_PUT, "PUT"},
                 {CR_METHOD_DELETE, "DELETE"}, {CR_METHOD_PATCH, "PATCH"}, {CR_METHOD_OPTIONS, "OPTIONS"}};
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(names); ++i)
        if (methods & names[i].bit)
            return names[i].name;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024], buf[8192];
    cr_config_t *cfg;
    size_t i;

    err[0] = '\0';
    cfg = cr_config_load_string("fuzz.yaml", (const char *)data, size, err, sizeof(err));
    if (cfg == NULL) {
        FZ_CHECK(strncmp(err, "fuzz.yaml:", 10) == 0);
        for (i = 0; err[i] != '\0'; ++i)
            FZ_CHECK((unsigned char)err[i] >= 0x20 && err[i] != 0x7f);
        return 0;
    }
    FZ_CHECK(cfg->num_listens >= 1 && cfg->threads >= 1);
    FZ_CHECK(cfg->limits.request_headers != 0 && cfg->limits.connections != 0 && cfg->limits.variants_per_key != 0);
    for (i = 0; i != cfg->num_routes; ++i) {
        const cr_route_config_t *r = cfg->routes + i;
        const char *m;
        int amb, n;
        FZ_CHECK(r->match_path != NULL && strlen(r->match_path) == r->match_path_len);
        n = cr_urlpath_match_form(cr_str(r->match_path, r->match_path_len), buf, sizeof(buf), &amb);
        FZ_CHECK(n == (int)r->match_path_len && memcmp(buf, r->match_path, r->match_path_len) == 0);
        if ((m = method_of(r->methods)) != NULL && !amb) {
            const cr_route_config_t *hit = cr_route_match(cfg, cr_str(m, strlen(m)), cr_str(r->match_path, r->match_path_len));
            FZ_CHECK(hit != NULL && hit <= r);
        }
    }
    /* a few request paths of every shape against the routes */
    {
        static const char *const paths[] = {"/", "/v1/users", "/v1/users/42?page=1", "//v1//users/", "/v1/users/..%2F..",
                                            "/v1/users;x=1", "/v1/health", "/%2e%2e/admin"};
        for (i = 0; i != CR_ARRAY_SIZE(paths); ++i) {
            int amb;
            (void)cr_route_match_ex(cfg, CR_STR("GET"), cr_str(paths[i], strlen(paths[i])), &amb);
        }
    }
    cr_config_free(&cfg);
    FZ_CHECK(cfg == NULL);
    return 0;
}
