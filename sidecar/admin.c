/*
 * admin.c: the admin API: GET /healthz, GET /metrics (Prometheus text format).
 *
 * Invariants: served on worker 0's loop through its own h2o context, never on the traffic port; it reads other
 * threads' counters with relaxed atomic loads only (cr_stats_sum). Every path except /healthz requires the bearer
 * token when one is configured, and a loopback peer when none is.
 */
#include "corral/admin.h"

#include <arpa/inet.h>
#include <stdio.h>

#include "corral/http.h"
#include "corral/runtime.h"

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

static void send_text(h2o_req_t *req, const char *ctype, char *body, size_t len)
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

static void send_metrics(h2o_req_t *req)
{
    cr_stats_t s;
    size_t cap = 8192;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap);
    int n = 0;

    cr_stats_sum(&s);
#define COUNTER(name, help, v)                                                                                                      \
    n += snprintf(buf + n, cap - n, "# HELP corral_" name " " help "\n# TYPE corral_" name " counter\ncorral_" name " %llu\n",      \
                  (unsigned long long)(v))
#define GAUGE(name, help, fmt, v)                                                                                                   \
    n += snprintf(buf + n, cap - n, "# HELP corral_" name " " help "\n# TYPE corral_" name " gauge\ncorral_" name " " fmt "\n", (v))
    COUNTER("requests_total", "Requests received on the traffic listeners.", s.requests);
    COUNTER("cache_hits_total", "Requests answered fresh from the store.", s.hits);
    COUNTER("cache_misses_total", "Cacheable requests that needed the upstream.", s.misses);
    COUNTER("cache_stale_served_total", "Stale objects served (max-stale or stale-while-revalidate).", s.stale);
    COUNTER("passes_total", "Requests passed to the upstream uncached.", s.passes);
    COUNTER("coalesced_total", "Requests answered by another request's fill.", s.coalesced);
    COUNTER("coalesce_timeouts_total", "Waiters that gave up on a fill after coalesce.timeout and went upstream.",
            s.coalesce_timeouts);
    COUNTER("stored_total", "Objects stored.", s.stored);
    COUNTER("not_stored_total", "Fills whose response could not be stored.", s.not_stored);
    COUNTER("revalidated_total", "Stale objects refreshed by a 304 from the upstream.", s.revalidated);
    COUNTER("not_modified_total", "304 answers sent to clients from the store.", s.not_modified);
    COUNTER("upstream_requests_total", "Requests sent to the upstream.", s.upstream_requests);
    COUNTER("upstream_errors_total", "Upstream requests that failed (refused, timeout, protocol).", s.upstream_errors);
    COUNTER("guard_rejections_total", "Requests refused because their connection cancelled too many (rapid reset).",
            s.guard_rejections);
    COUNTER("invalidations_total", "Write-through invalidations.", s.invalidations);
    COUNTER("store_evictions_total", "Objects evicted to stay under cache.memory.", cr_store_evictions(cr_rt.store));
    GAUGE("store_bytes", "Bytes charged to the store.", "%zu", cr_store_bytes(cr_rt.store));
    GAUGE("store_limit_bytes", "The store's byte limit (cache.memory).", "%zu", cr_store_limit(cr_rt.store));
    GAUGE("store_objects", "Objects in the store.", "%zu", cr_store_count(cr_rt.store));
    GAUGE("uptime_seconds", "Seconds since start.", "%llu", (unsigned long long)((cr_now_ms() - cr_rt.started_at_ms) / 1000));
#undef COUNTER
#undef GAUGE
    assert(n < (int)cap);
    send_text(req, "text/plain; version=0.0.4; charset=utf-8", buf, n);
}

static int on_admin_req(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        send_text(req, "text/plain", (char *)"ok\n", 3);
        return 0;
    }
    if (!authorize(req))
        return 0;
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        send_metrics(req);
        return 0;
    }
    cr_send_json_error(req, 404, "Not Found", "not_found", "no such admin endpoint");
    return 0;
}

void cr_admin_register(h2o_hostconf_t *hostconf)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_admin_req;
}
