/*
 * admin.c: the admin API's front: routing, authorization and limits, and the reply helpers the endpoints share
 * (admin_internal.h). Endpoints: GET /healthz (here), GET /metrics (metrics.c), POST /v1/purge and DELETE /v1/cache
 * (purge_api.c), GET /v1/cache?key= (inspect.c), GET /v1/stats (stats_json.c), GET / (the status page,
 * status_page.c).
 *
 * Invariants: served on the admin thread's own loop and h2o context (server.c), never on a traffic worker nor on the
 * traffic port. Every path except /healthz, /readyz (probes carry no token) and / (a static page that holds no data)
 * requires the bearer token when one is configured (compared in constant time), and a loopback peer when none is;
 * request headers are bounded by limits.request_headers (431) and any body by limits.admin_body (413) before an
 * endpoint sees the request. The limits come from the admin thread's config generation, taken at the start of each
 * request (cr_thread_config). No locks of its own.
 */
#include "corral/admin/admin.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <stdio.h>

#include "corral/admin/metrics.h"
#include "corral/admin/stats_json.h"
#include "corral/admin/status_page.h"
#include "corral/conf/config.h"
#include "corral/conf/generation.h"
#include "corral/core/runtime.h"
#include "corral/http/http.h"
#include "corral/http/reqcheck.h"
#include "admin_internal.h"

static int const_time_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    size_t i, n = alen < blen ? alen : blen;
    for (i = 0; i != n; ++i)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static int is_loopback_peer(h2o_req_t *req)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    if (len == 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* Returns 1 when the request may use the admin API; otherwise answers it (401/403) and returns 0. */
static int authorize(h2o_req_t *req)
{
    h2o_iovec_t auth;
    if (cr_rt.admin_token == NULL) {
        if (is_loopback_peer(req))
            return 1;
        cr_send_json_error(req, 403, "Forbidden", "forbidden", "no admin token is configured: only loopback clients are served");
        return 0;
    }
    auth = cr_req_header(req, H2O_TOKEN_AUTHORIZATION);
    if (auth.len > 7 && h2o_lcstris(auth.base, 7, H2O_STRLIT("bearer ")) &&
        const_time_eq(auth.base + 7, auth.len - 7, cr_rt.admin_token, strlen(cr_rt.admin_token)))
        return 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer realm=\"corral\""));
    cr_send_json_error(req, 401, "Unauthorized", "unauthorized", "a valid bearer token is required");
    return 0;
}

void cr_admin_send_text(h2o_req_t *req, const char *ctype, char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void cr_admin_send_json(h2o_req_t *req, int status, const char *reason, char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void cr_admin_send_json_value(h2o_req_t *req, int status, const char *reason, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (text == NULL) {
        cr_send_json_error(req, 500, "Internal Server Error", "no_memory", "out of memory");
        return;
    }
    {
        size_t len = strlen(text);
        char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
        memcpy(copy, text, len);
        copy[len] = '\n';
        free(text);
        cr_admin_send_json(req, status, reason, copy, len + 1);
    }
}

static int is_method(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static int on_admin_req(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    const cr_config_t *cfg = cr_thread_config(cr_thread_of(req)); /* the admin thread's generation (generation.h) */
    if (cr_reqcheck_size(req, cfg->limits.request_headers) != CR_OK) /* answered 431, as on the traffic port */
        return 0;
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        cr_admin_send_text(req, "text/plain", (char *)"ok\n", 3);
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/readyz"))) {
        cr_admin_handle_readyz(req);
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/"))) { /* the status page: public and static (status_page.h) */
        cr_admin_handle_status_page(req);
        return 0;
    }
    if (!authorize(req))
        return 0;
    if (req->entity.len > cfg->limits.admin_body) { /* any endpoint: nothing of a longer body is parsed */
        cr_send_json_error(req, 413, "Payload Too Large", "body_too_large", "the request body is longer than limits.admin_body");
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        cr_admin_send_metrics(req);
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/reload"))) {
        if (is_method(req, "POST"))
            cr_admin_handle_reload(req);
        else
            cr_send_json_error(req, 405, "Method Not Allowed", "method_not_allowed", "use POST");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/stats"))) {
        if (is_method(req, "GET"))
            cr_admin_handle_stats(req, cfg);
        else
            cr_send_json_error(req, 405, "Method Not Allowed", "method_not_allowed", "use GET");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/purge"))) {
        if (is_method(req, "POST"))
            cr_admin_handle_purge(req);
        else
            cr_send_json_error(req, 405, "Method Not Allowed", "method_not_allowed", "use POST");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/cache"))) {
        if (is_method(req, "DELETE"))
            cr_admin_handle_clear(req);
        else if (is_method(req, "GET"))
            cr_admin_handle_inspect(req);
        else
            cr_send_json_error(req, 405, "Method Not Allowed", "method_not_allowed", "use GET or DELETE");
    } else {
        cr_send_json_error(req, 404, "Not Found", "not_found", "no such admin endpoint");
    }
    return 0;
}

void cr_admin_register(h2o_hostconf_t *hostconf)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_admin_req;
}
