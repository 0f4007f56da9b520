/*
 * admin.c: the admin API: GET /healthz, GET /metrics (Prometheus text format), POST /v1/purge (keys, prefixes, tags;
 * soft or hard), DELETE /v1/cache (everything), GET /v1/cache?key= (inspect one path's stored objects).
 *
 * Invariants: served on worker 0's loop through its own h2o context, never on the traffic port; it reads other
 * threads' counters with relaxed atomic loads only (cr_stats_sum). Every path except /healthz requires the bearer
 * token when one is configured, and a loopback peer when none is.
 */
#include "corral/admin/admin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>

#include "corral/server/conn_watch.h"
#include "corral/http/http.h"
#include "corral/http/invalidate.h"
#include "corral/http/key.h"
#include "corral/core/log.h"
#include "corral/admin/purgejson.h"
#include "corral/http/reqcheck.h"
#include "corral/core/runtime.h"
#include "corral/serve/writethrough.h"

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
    size_t cap = 32768, queued, queued_peak;
    uint64_t busy;
    char *buf = h2o_mem_alloc_pool(&req->pool, cap);
    int n = 0;

    cr_stats_sum(&s);
/* past `cap` nothing more is written (and n keeps counting, so the check below sees it) */
#define ROOM() (buf + ((size_t)n < cap ? (size_t)n : cap)), ((size_t)n < cap ? cap - (size_t)n : 0)
#define COUNTER(name, help, v)                                                                                                      \
    n += snprintf(ROOM(), "# HELP corral_" name " " help "\n# TYPE corral_" name " counter\ncorral_" name " %llu\n",              \
                  (unsigned long long)(v))
#define GAUGE(name, help, fmt, v)                                                                                                   \
    n += snprintf(ROOM(), "# HELP corral_" name " " help "\n# TYPE corral_" name " gauge\ncorral_" name " " fmt "\n", (v))
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
    cr_upstream_queue_stats(&queued, &queued_peak, &busy);
    COUNTER("connections_refused_total", "Client connections closed at accept past limits.connections.", s.connections_refused);
    COUNTER("header_timeouts_total", "HTTP/2 connections closed for an unfinished frame or header block.", s.header_timeouts);
    COUNTER("accept_pauses_total", "100 ms listener pauses after accept ran out of descriptors.", s.accept_pauses);
    GAUGE("client_connections", "Client connections open (limits.connections).", "%zu", cr_conn_open());
    COUNTER("fills_dropped_total", "Fills cancelled before they were sent upstream: every waiter had gone.", s.fills_dropped);
    COUNTER("upstream_busy_total", "Fills and passes refused with 503: limits.queued_fills were waiting.", busy);
    GAUGE("upstream_queued", "Requests waiting for a free upstream connection.", "%zu", queued);
    GAUGE("upstream_queued_peak", "The most requests that waited for an upstream connection at once.", "%zu", queued_peak);
    COUNTER("store_evictions_total", "Objects evicted to stay under cache.memory.", cr_store_evictions(cr_rt.store));
    COUNTER("cache_variant_evictions_total", "Vary variants evicted to keep a key under limits.variants_per_key.",
            cr_store_variant_evictions(cr_rt.store));
    GAUGE("store_bytes", "Bytes charged to the store.", "%zu", cr_store_bytes(cr_rt.store));
    GAUGE("store_limit_bytes", "The store's byte limit (cache.memory).", "%zu", cr_store_limit(cr_rt.store));
    GAUGE("store_objects", "Objects in the store.", "%zu", cr_store_count(cr_rt.store));
    GAUGE("uptime_seconds", "Seconds since start.", "%llu", (unsigned long long)((cr_now_ms() - cr_rt.started_at_ms) / 1000));
#undef COUNTER
#undef GAUGE
#undef ROOM
    if ((size_t)n >= cap) { /* a new metric outgrew the buffer: say so rather than send a cut list */
        cr_log_error("admin: the metrics text (%d bytes) does not fit its %zu-byte buffer", n, cap);
        cr_send_json_error(req, 500, "Internal Server Error", "metrics_too_large", "the metrics text outgrew its buffer");
        return;
    }
    send_text(req, "text/plain; version=0.0.4; charset=utf-8", buf, n);
}

static void send_json(h2o_req_t *req, int status, const char *reason, char *body, size_t len)
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

static void send_json_value(h2o_req_t *req, int status, const char *reason, json_t *v)
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
        send_json(req, status, reason, copy, len + 1);
    }
}

/* POST /v1/purge {"keys": [...], "prefixes": [...], "tags": [...], "soft": false}: validated whole before anything
 * is purged. Keys are paths (a query is ignored: every variant of the path goes). */
static void handle_purge(h2o_req_t *req)
{
    cr_purge_request_t pr;
    cr_purge_counts_t counts = {0};
    char err[512], *out;
    int rc, n;
    size_t i;

    rc = cr_purge_parse(req->entity.base != NULL ? req->entity.base : "", req->entity.len, &pr, err, sizeof(err));
    if (rc == CR_ERROR) {
        cr_send_json_error(req, 500, "Internal Server Error", "no_memory", err);
        return;
    }
    if (rc != CR_OK) {
        cr_send_json_error(req, 400, "Bad Request", "invalid_purge", err);
        return;
    }
    for (i = 0; i != pr.num_keys; ++i) {
        char path[CR_INVALIDATE_MAX_PATH];
        if ((n = cr_key_normalize_uri_path(cr_str(pr.keys[i], strlen(pr.keys[i])), path, sizeof(path))) < 0) {
            snprintf(err, sizeof(err), "keys[%zu]: not a path (it must start with '/')", i);
            cr_purge_request_free(&pr);
            cr_send_json_error(req, 400, "Bad Request", "invalid_purge", err);
            return;
        }
    }
    for (i = 0; i != pr.num_prefixes; ++i) {
        if (pr.prefixes[i][0] != '/') {
            snprintf(err, sizeof(err), "prefixes[%zu]: not a path prefix (it must start with '/')", i);
            cr_purge_request_free(&pr);
            cr_send_json_error(req, 400, "Bad Request", "invalid_purge", err);
            return;
        }
    }
    for (i = 0; i != pr.num_keys; ++i) {
        char path[CR_INVALIDATE_MAX_PATH];
        n = cr_key_normalize_uri_path(cr_str(pr.keys[i], strlen(pr.keys[i])), path, sizeof(path));
        counts.objects += cr_purge_path(cr_str(path, (size_t)n), pr.soft);
        ++counts.keys;
    }
    for (i = 0; i != pr.num_prefixes; ++i) {
        counts.objects += cr_purge_path_prefix(cr_str(pr.prefixes[i], strlen(pr.prefixes[i])), pr.soft);
        ++counts.prefixes;
    }
    for (i = 0; i != pr.num_tags; ++i) {
        counts.objects += cr_store_purge_tag(cr_rt.store, pr.tags[i], strlen(pr.tags[i]), pr.soft);
        ++counts.tags;
    }
    out = h2o_mem_alloc_pool(&req->pool, 512);
    n = cr_purge_result_json(&counts, pr.soft, out, 511);
    cr_log_info("admin purge: %zu keys, %zu prefixes, %zu tags, %s: %zu objects", counts.keys, counts.prefixes, counts.tags,
                pr.soft ? "soft" : "hard", counts.objects);
    cr_purge_request_free(&pr);
    assert(n > 0);
    out[n++] = '\n';
    send_json(req, 200, "OK", out, (size_t)n);
}

static void handle_clear(h2o_req_t *req)
{
    size_t n = cr_store_clear(cr_rt.store);
    json_t *v = json_pack("{s:{s:I}}", "purged", "objects", (json_int_t)n);
    cr_log_info("admin purge: everything: %zu objects", n);
    send_json_value(req, 200, "OK", v);
}

/* The value of query parameter `name`, percent-decoded into the pool, or NULL. */
static char *query_param(h2o_req_t *req, const char *name)
{
    size_t nlen = strlen(name);
    const char *q, *end;
    if (req->query_at == SIZE_MAX)
        return NULL;
    q = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (q < end) {
        const char *amp = memchr(q, '&', end - q);
        if (amp == NULL)
            amp = end;
        if ((size_t)(amp - q) > nlen && memcmp(q, name, nlen) == 0 && q[nlen] == '=') {
            const char *v = q + nlen + 1;
            char *out = h2o_mem_alloc_pool(&req->pool, (amp - v) + 1), *o = out;
            while (v < amp) {
                if (*v == '%' && amp - v >= 3 && isxdigit((unsigned char)v[1]) && isxdigit((unsigned char)v[2])) {
                    char hex[3] = {v[1], v[2], 0};
                    *o++ = (char)strtol(hex, NULL, 16);
                    v += 3;
                } else {
                    *o++ = *v == '+' ? ' ' : *v;
                    ++v;
                }
            }
            *o = '\0';
            return out;
        }
        q = amp + 1;
    }
    return NULL;
}

static json_t *json_str(cr_str_t s)
{
    return json_stringn(s.base != NULL ? s.base : "", s.len);
}

/* A cache key (key.h: "authority\npath?query\nname:value...") for people: its parts joined with " | " on one line
 * (JSON-escaped by jansson like any string). */
static json_t *key_readable(cr_str_t key)
{
    char *buf = malloc(key.len * 3 + 1), *p = buf;
    size_t i;
    json_t *j;
    if (buf == NULL)
        return json_str(key);
    for (i = 0; i != key.len; ++i) {
        if (key.base[i] == '\n') {
            memcpy(p, " | ", 3);
            p += 3;
        } else {
            *p++ = key.base[i];
        }
    }
    j = json_stringn(buf, (size_t)(p - buf));
    free(buf);
    return j;
}

/* The same key as fields: {"authority": ..., "uri": ..., "headers": {name: value, ...}}. */
static json_t *key_parts(cr_str_t key)
{
    json_t *o = json_object(), *headers = json_object();
    const char *p = key.base, *end = key.base + key.len;
    unsigned part = 0;
    while (p <= end && key.base != NULL) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl != NULL ? nl : end, *colon;
        if (part == 0) {
            json_object_set_new(o, "authority", json_stringn(p, (size_t)(e - p)));
        } else if (part == 1) {
            json_object_set_new(o, "uri", json_stringn(p, (size_t)(e - p)));
        } else if ((colon = memchr(p, ':', (size_t)(e - p))) != NULL) {
            char name[256];
            size_t nlen = CR_MIN((size_t)(colon - p), sizeof(name) - 1);
            memcpy(name, p, nlen);
            name[nlen] = '\0';
            json_object_set_new(headers, name, json_stringn(colon + 1, (size_t)(e - colon - 1)));
        }
        ++part;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    json_object_set_new(o, "headers", headers);
    return o;
}

/* One stored object as JSON: its key, variant, codings and their sizes, age, ttl, tags and size. */
static json_t *describe(const cr_object_t *obj, uint64_t now)
{
    static const char *const names[CR_ENC_MAX] = {"identity", "gzip", "br"};
    json_t *o = json_object(), *enc = json_object(), *tags = json_array(), *vary = json_array();
    unsigned flags = cr_object_flags(obj);
    uint64_t age = cr_object_age_ms(obj, now);
    size_t i;
    int e;

    json_object_set_new(o, "key", key_readable(cr_object_key(obj)));
    json_object_set_new(o, "key_parts", key_parts(cr_object_key(obj)));
    json_object_set_new(o, "status", json_integer(obj->status));
    for (i = 0; i != obj->num_vary; ++i)
        json_array_append_new(vary, json_str(cr_object_vary_names(obj)[i]));
    json_object_set_new(o, "vary", vary);
    {
        cr_str_t variant = cr_object_variant_key(obj); /* "name:value\n" per Vary header */
        if (variant.len != 0 && variant.base[variant.len - 1] == '\n')
            --variant.len;
        json_object_set_new(o, "variant", key_readable(variant));
    }
    for (e = 0; e != CR_ENC_MAX; ++e) {
        cr_str_t body = cr_object_body(obj, (cr_encoding_t)e);
        if (body.base != NULL && !(e == CR_ENC_IDENTITY && (flags & CR_OBJ_ENCODED) != 0))
            json_object_set_new(enc, names[e], json_integer((json_int_t)body.len));
    }
    json_object_set_new(o, "encodings", enc);
    json_object_set_new(o, "age", json_integer((json_int_t)(age / 1000)));
    json_object_set_new(o, "ttl", json_integer(((json_int_t)obj->lifetime_ms - (json_int_t)age) / 1000));
    json_object_set_new(o, "fresh", json_boolean(cr_object_is_fresh(obj, now)));
    json_object_set_new(o, "invalidated", json_boolean((flags & CR_OBJ_INVALIDATED) != 0));
    json_object_set_new(o, "hit_for_pass", json_boolean((flags & CR_OBJ_PASS) != 0));
    for (i = 0; i != obj->num_tags; ++i)
        json_array_append_new(tags, json_str(obj->tags[i].name));
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "size", json_integer((json_int_t)obj->cost));
    return o;
}

/* GET /v1/cache?key=/path[?query]: every stored object for that path (and query, when one is given). */
static void handle_inspect(h2o_req_t *req)
{
    char *key = query_param(req, "key"), path[CR_INVALIDATE_MAX_PATH];
    cr_object_t *objs[256];
    const char *query;
    json_t *entries;
    size_t n, i;
    int plen;

    if (key == NULL || (plen = cr_key_normalize_uri_path(cr_str(key, strlen(key)), path, sizeof(path))) < 0) {
        cr_send_json_error(req, 400, "Bad Request", "invalid_key", "give ?key=/path[?query] (percent-encoded)");
        return;
    }
    query = strchr(key, '?');
    n = cr_collect_path(cr_str(path, (size_t)plen), objs, CR_ARRAY_SIZE(objs));
    entries = json_array();
    for (i = 0; i != CR_MIN(n, CR_ARRAY_SIZE(objs)); ++i) {
        cr_str_t uri = cr_invalidate_key_uri(cr_object_key(objs[i]));
        const char *q = memchr(uri.base, '?', uri.len);
        int same_query = query == NULL || (q != NULL && (size_t)(uri.base + uri.len - q) == strlen(query) &&
                                           memcmp(q, query, strlen(query)) == 0);
        if (same_query)
            json_array_append_new(entries, describe(objs[i], cr_now_ms()));
        cr_object_release(&objs[i]);
    }
    if (json_array_size(entries) == 0) {
        json_decref(entries);
        cr_send_json_error(req, 404, "Not Found", "not_stored", "nothing is stored for this key");
        return;
    }
    send_json_value(req, 200, "OK", json_pack("{s:s,s:o}", "key", key, "entries", entries));
}

static int is_method(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static int on_admin_req(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    if (cr_reqcheck_size(req, cr_rt.cfg->limits.request_headers) != CR_OK) /* answered 431, as on the traffic port */
        return 0;
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        send_text(req, "text/plain", (char *)"ok\n", 3);
        return 0;
    }
    if (!authorize(req))
        return 0;
    if (req->entity.len > cr_rt.cfg->limits.admin_body) { /* any endpoint: nothing of a longer body is parsed */
        cr_send_json_error(req, 413, "Payload Too Large", "body_too_large", "the request body is longer than limits.admin_body");
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        send_metrics(req);
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/purge"))) {
        if (is_method(req, "POST"))
            handle_purge(req);
        else
            cr_send_json_error(req, 405, "Method Not Allowed", "method_not_allowed", "use POST");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/v1/cache"))) {
        if (is_method(req, "DELETE"))
            handle_clear(req);
        else if (is_method(req, "GET"))
            handle_inspect(req);
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
