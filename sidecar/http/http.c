/*
 * http.c: h2o glue shared by the cache path and the pass path (see http.h).
 *
 * Invariants: request heads are built in the request's pool and stay valid for the request's lifetime, which
 * outlives every upstream fetch made for it (fetches are cancelled from the request's dispose callbacks).
 * No locks; no global state.
 */
#include "corral/http/http.h"

#include "corral/http/key.h"
#include "corral/conf/config.h"

#include <stdio.h>

static const char *const hop_by_hop[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                                         "upgrade", "http2-settings", "proxy-authenticate", "proxy-authorization"};

int cr_list_contains(h2o_iovec_t list, h2o_iovec_t lname)
{
    const char *p = list.base, *end = list.base + list.len;
    while (p < end) {
        const char *s, *e;
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            ++p;
        s = p;
        while (p < end && *p != ',')
            ++p;
        e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            --e;
        if (e > s && cr_str_ieq(cr_str(s, e - s), lname.base, lname.len))
            return 1;
    }
    return 0;
}

int cr_is_hop_by_hop(h2o_iovec_t lname, h2o_iovec_t connection)
{
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(hop_by_hop); ++i)
        if (h2o_memis(lname.base, lname.len, hop_by_hop[i], strlen(hop_by_hop[i])))
            return 1;
    return connection.base != NULL && cr_list_contains(connection, lname);
}

int cr_is_surrogate_key_header(h2o_iovec_t lname, const cr_config_t *cfg)
{
    const char *h = cfg->cache.surrogate_key_header;
    return h != NULL && h2o_memis(lname.base, lname.len, h, strlen(h));
}

h2o_iovec_t cr_join_header(const h2o_header_t *headers, size_t num_headers, const h2o_token_t *token, char *buf, size_t bufsize)
{
    size_t i, len = 0;
    int found = 0;
    for (i = 0; i != num_headers; ++i) {
        const h2o_iovec_t *v = &headers[i].value;
        if (headers[i].name != &token->buf)
            continue;
        if (found && len + 2 <= bufsize) {
            memcpy(buf + len, ", ", 2);
            len += 2;
        }
        found = 1;
        if (len + v->len > bufsize)
            return h2o_iovec_init(buf, len); /* truncated at a member boundary: the rest is dropped */
        memcpy(buf + len, v->base, v->len);
        len += v->len;
    }
    return found ? h2o_iovec_init(buf, len) : h2o_iovec_init(NULL, 0);
}

_Static_assert(H2O_MAX_TOKENS < CR_OBJECT_MAX_TOKEN, "token indexes must fit an object's token");

unsigned cr_token_index(const h2o_iovec_t *name)
{
    return h2o_iovec_is_token(name) ? (unsigned)((const h2o_token_t *)name - h2o__tokens) + 1 : 0;
}

const h2o_token_t *cr_token_of(unsigned index)
{
    assert(index != 0 && index <= H2O_MAX_TOKENS);
    return &h2o__tokens[index - 1];
}

/* Every field line of a header from the first one (index `first`), joined in order (RFC 9110 5.3) with ", ", or
 * with "; " for Cookie (RFC 9113 8.2.3). One line is returned as it is (no copy): a request with no repeated header
 * costs one scan of its headers. Several are joined into the request's pool, whole: never truncated. The size is
 * bounded by the request head itself (libh2o's limits); the fixed buffers of keys and variant keys reject values
 * too long for them, so such requests are not cached. */
static h2o_iovec_t join_from(h2o_req_t *req, ssize_t first, int is_cookie, int (*same)(const h2o_header_t *, const void *),
                             const void *name)
{
    const h2o_headers_t *hs = &req->headers;
    size_t i, total = 0, n = 0;
    char *buf, *p;

    for (i = (size_t)first; i != hs->size; ++i)
        if (same(hs->entries + i, name)) {
            total += hs->entries[i].value.len + 2;
            ++n;
        }
    if (n == 1)
        return hs->entries[first].value;
    p = buf = h2o_mem_alloc_pool(&req->pool, total);
    for (i = (size_t)first; i != hs->size; ++i) {
        const h2o_iovec_t *v = &hs->entries[i].value;
        if (!same(hs->entries + i, name))
            continue;
        if (p != buf) {
            *p++ = is_cookie ? ';' : ',';
            *p++ = ' ';
        }
        if (v->len != 0)
            memcpy(p, v->base, v->len);
        p += v->len;
    }
    return h2o_iovec_init(buf, (size_t)(p - buf));
}

static int same_token(const h2o_header_t *h, const void *token)
{
    return h->name == &((const h2o_token_t *)token)->buf;
}

static int same_str(const h2o_header_t *h, const void *lname)
{
    const h2o_iovec_t *n = lname;
    return h2o_memis(h->name->base, h->name->len, n->base, n->len);
}

h2o_iovec_t cr_req_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : join_from(req, i, token == H2O_TOKEN_COOKIE, same_token, token);
}

h2o_iovec_t cr_req_header_by_name(h2o_req_t *req, const char *lname, size_t lnamelen)
{
    const h2o_token_t *token = h2o_lookup_token(lname, lnamelen);
    h2o_iovec_t name = h2o_iovec_init(lname, lnamelen);
    ssize_t i;
    if (token != NULL)
        return cr_req_header(req, token);
    i = h2o_find_header_by_str(&req->headers, lname, lnamelen, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : join_from(req, i, 0, same_str, &name);
}

/*
 * Request headers that make an upstream serve another URL, host, scheme or method than the request line says
 * (framework "override" and proxy-forwarding headers). They are not part of the key, so a fill drops them unless
 * the route keys on them (forward_headers puts them in key.headers). X-Forwarded-For, X-Forwarded-Proto and Via
 * are corral's own (replaced or appended), so they are not here.
 */
static const char *const unkeyed_headers[] = {
    "x-forwarded-host",   "x-forwarded-server",     "x-forwarded-port",  "x-forwarded-prefix", "x-forwarded-scheme",
    "x-forwarded-ssl",    "x-forwarded-uri",        "x-forwarded-path",  "forwarded",          "x-host",
    "x-original-host",    "x-original-url",         "x-original-uri",    "x-rewrite-url",      "x-override-url",
    "x-http-method-override", "x-http-method",      "x-method-override", "x-url-scheme",       "front-end-https",
    "x-proxy-url",        "x-http-host-override",   "x-forwarded-protocol",
};

/* Does a (lower-case) header name equal a list entry when '_' counts as '-'? CGI-style servers (WSGI, PHP, Rack)
 * read "x_forwarded_host" as "x-forwarded-host". */
static int name_eq_dash(const h2o_iovec_t *name, const char *entry)
{
    size_t i;
    for (i = 0; i != name->len; ++i)
        if (entry[i] == '\0' || (name->base[i] != entry[i] && !(name->base[i] == '_' && entry[i] == '-')))
            return 0;
    return entry[i] == '\0';
}

/* Is this (lower-case) name one of the unkeyed headers (or a spelling of one with '_') that a fill of `route` drops?
 * Not when the route keys on it under exactly that name (key.headers, forward_headers). */
static int is_unkeyed_dropped(const h2o_iovec_t *name, const cr_route_config_t *route)
{
    size_t i;
    if (name->len < 6 || (name->base[0] != 'x' && name->base[0] != 'f'))
        return 0;
    for (i = 0; i != CR_ARRAY_SIZE(unkeyed_headers); ++i)
        if (name_eq_dash(name, unkeyed_headers[i]))
            break;
    if (i == CR_ARRAY_SIZE(unkeyed_headers))
        return 0;
    for (i = 0; route != NULL && i != route->num_key_headers; ++i)
        if (h2o_memis(name->base, name->len, route->key_headers[i], strlen(route->key_headers[i])))
            return 0;
    return 1;
}

/* A fill asks for the plain representation: corral makes and negotiates the codings itself, and the stored object
 * must not depend on one client's validators or Range. */
static int is_fill_dropped(const h2o_iovec_t *name)
{
    return name == &H2O_TOKEN_ACCEPT_ENCODING->buf || name == &H2O_TOKEN_IF_NONE_MATCH->buf || name == &H2O_TOKEN_IF_MODIFIED_SINCE->buf ||
           name == &H2O_TOKEN_IF_MATCH->buf || name == &H2O_TOKEN_IF_UNMODIFIED_SINCE->buf || name == &H2O_TOKEN_RANGE->buf ||
           name == &H2O_TOKEN_IF_RANGE->buf;
}

size_t cr_numeric_host(const struct sockaddr_storage *ss, socklen_t sslen, char *buf)
{
    if (ss->ss_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr.s_addr;
        char *p = buf;
        int i;
        for (i = 0; i != 4; ++i) {
            if (i != 0)
                *p++ = '.';
            if (a[i] >= 100)
                *p++ = '0' + a[i] / 100;
            if (a[i] >= 10)
                *p++ = '0' + a[i] / 10 % 10;
            *p++ = '0' + a[i] % 10;
        }
        return p - buf;
    }
    return h2o_socket_getnumerichost((struct sockaddr *)ss, sslen, buf);
}

#define APPEND(p, s, l)                                                                                                             \
    do {                                                                                                                            \
        memcpy((p), (s), (l));                                                                                                      \
        (p) += (l);                                                                                                                 \
    } while (0)
#define APPEND_LIT(p, lit) APPEND(p, lit, sizeof(lit) - 1)

h2o_iovec_t cr_build_upstream_head(h2o_req_t *req, const cr_fill_request_t *fill)
{
    const cr_object_t *revalidate = fill != NULL ? fill->revalidate : NULL;
    const cr_route_config_t *route = fill != NULL ? fill->route : NULL;
    h2o_iovec_t method = fill != NULL ? h2o_iovec_init(H2O_STRLIT("GET")) : req->method,
                target = fill != NULL && fill->target.base != NULL ? fill->target : req->input.path, cookie = {NULL, 0};
    cr_str_t last_modified = revalidate != NULL ? cr_object_find_header(revalidate, H2O_STRLIT("last-modified")) : cr_str(NULL, 0),
             etag = revalidate != NULL ? cr_object_etag(revalidate) : cr_str(NULL, 0);
    char peer[NI_MAXHOST], clbuf[32], connbuf[1024];
    h2o_iovec_t connection = cr_join_header(req->headers.entries, req->headers.size, H2O_TOKEN_CONNECTION, connbuf,
                                            sizeof(connbuf)),
                xff = {NULL, 0}, via = {NULL, 0};
    size_t peerlen = 0, cap, i;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char *buf, *p;

    if ((sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss)) != 0) {
        size_t l = cr_numeric_host(&ss, sslen, peer);
        if (l != SIZE_MAX)
            peerlen = l;
    }

    cap = method.len + target.len + req->input.authority.len + peerlen + 256;
    for (i = 0; i != req->headers.size; ++i)
        cap += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (revalidate != NULL)
        cap += etag.len + last_modified.len + 64;
    p = buf = h2o_mem_alloc_pool(&req->pool, cap);

    APPEND(p, method.base, method.len);
    *p++ = ' ';
    APPEND(p, target.base, target.len);
    APPEND_LIT(p, " HTTP/1.1\r\nhost: ");
    APPEND(p, req->input.authority.base, req->input.authority.len);
    APPEND_LIT(p, "\r\nconnection: keep-alive\r\n");

    for (i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h->name == &H2O_TOKEN_HOST->buf || h->name == &H2O_TOKEN_CONTENT_LENGTH->buf ||
            h->name == &H2O_TOKEN_EXPECT->buf || cr_is_hop_by_hop(*h->name, connection))
            continue;
        if (h->name == &H2O_TOKEN_X_FORWARDED_FOR->buf) {
            /* several lines are one list (RFC 9110 5.3): joined, in order */
            xff = xff.base == NULL ? h->value : h2o_concat(&req->pool, xff, h2o_iovec_init(H2O_STRLIT(", ")), h->value);
            continue;
        }
        if (h->name == &H2O_TOKEN_VIA->buf) {
            via = via.base == NULL ? h->value : h2o_concat(&req->pool, via, h2o_iovec_init(H2O_STRLIT(", ")), h->value);
            continue;
        }
        if (h2o_memis(h->name->base, h->name->len, H2O_STRLIT("x-forwarded-proto")))
            continue;
        if (h->name == &H2O_TOKEN_COOKIE->buf) {
            /* one line, crumbs joined with "; " (RFC 9113 8.2.3): an HTTP/2 client sends each crumb as its own field */
            if (cookie.base == NULL)
                cookie = cr_req_header(req, H2O_TOKEN_COOKIE);
            continue;
        }
        if (fill != NULL && (is_fill_dropped(h->name) || is_unkeyed_dropped(h->name, route)))
            continue;
        APPEND(p, h->name->base, h->name->len);
        APPEND_LIT(p, ": ");
        APPEND(p, h->value.base, h->value.len);
        APPEND_LIT(p, "\r\n");
    }
    if (cookie.base != NULL && route != NULL && route->cookies != CR_COOKIES_PASS) {
        /* a fill of a route that says how to treat cookies: none (ignore), or the listed ones, as in the key */
        size_t n = route->cookies == CR_COOKIES_LIST ? cr_key_cookie_filter(route, cr_str(cookie.base, cookie.len), p + 8, cookie.len)
                                                     : 0;
        cookie = h2o_iovec_init(NULL, 0);
        if (n != 0 && n != SIZE_MAX) {
            APPEND_LIT(p, "cookie: "); /* the filtered crumbs were written right after it */
            p += n;
            APPEND_LIT(p, "\r\n");
        }
    }
    if (cookie.base != NULL) {
        APPEND_LIT(p, "cookie: ");
        APPEND(p, cookie.base, cookie.len);
        APPEND_LIT(p, "\r\n");
    }
    if (revalidate != NULL) {
        if (etag.len != 0) {
            APPEND_LIT(p, "if-none-match: ");
            APPEND(p, etag.base, etag.len);
            APPEND_LIT(p, "\r\n");
        }
        if (last_modified.len != 0) {
            APPEND_LIT(p, "if-modified-since: ");
            APPEND(p, last_modified.base, last_modified.len);
            APPEND_LIT(p, "\r\n");
        }
    }
    APPEND_LIT(p, "x-forwarded-for: ");
    if (xff.len != 0) {
        APPEND(p, xff.base, xff.len);
        APPEND_LIT(p, ", ");
    }
    APPEND(p, peer, peerlen);
    APPEND_LIT(p, "\r\nx-forwarded-proto: ");
    APPEND(p, req->input.scheme->name.base, req->input.scheme->name.len);
    APPEND_LIT(p, "\r\nvia: ");
    if (via.len != 0) {
        APPEND(p, via.base, via.len);
        APPEND_LIT(p, ", ");
    }
    if (req->version >= 0x200)
        APPEND_LIT(p, "2 corral\r\n");
    else
        APPEND_LIT(p, "1.1 corral\r\n");
    if (fill == NULL && req->entity.base != NULL) {
        int n = snprintf(clbuf, sizeof(clbuf), "content-length: %zu\r\n", req->entity.len);
        APPEND(p, clbuf, (size_t)n);
    }
    APPEND_LIT(p, "\r\n");
    assert((size_t)(p - buf) <= cap);
    return h2o_iovec_init(buf, p - buf);
}

void cr_request_info_from_req(h2o_req_t *req, cr_request_info_t *qi)
{
    size_t i;
    cr_request_info_init(qi);
    for (i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h->name == &H2O_TOKEN_CACHE_CONTROL->buf) {
            qi->has_cache_control = 1;
            cr_cc_parse(&qi->cc, cr_str(h->value.base, h->value.len));
        } else if (h->name == &H2O_TOKEN_AUTHORIZATION->buf) {
            qi->has_authorization = 1;
        } else if (h->name == &H2O_TOKEN_COOKIE->buf) {
            qi->has_cookie = 1;
        } else if (h2o_memis(h->name->base, h->name->len, H2O_STRLIT("pragma"))) {
            if (cr_list_contains(h->value, h2o_iovec_init(H2O_STRLIT("no-cache"))))
                qi->pragma_no_cache = 1;
        }
    }
    if (qi->pragma_no_cache && !qi->has_cache_control)
        qi->cc.flags |= CR_CC_NO_CACHE;
}

void cr_response_info_add(cr_response_info_t *ri, cr_str_t n, cr_str_t v)
{
    h2o_iovec_t hv = h2o_iovec_init(v.base, v.len);
    if (cr_str_eq(n, H2O_STRLIT("cache-control"))) {
        ri->has_cache_control = 1;
        cr_cc_parse(&ri->cc, v);
    } else if (cr_str_eq(n, H2O_STRLIT("expires"))) {
        ri->has_expires = 1;
        ri->expires_valid = cr_http_date_parse(v, &ri->expires_ms) == 0;
    } else if (cr_str_eq(n, H2O_STRLIT("date"))) {
        ri->has_date = cr_http_date_parse(v, &ri->date_ms) == 0;
    } else if (cr_str_eq(n, H2O_STRLIT("last-modified"))) {
        ri->has_last_modified = cr_http_date_parse(v, &ri->last_modified_ms) == 0;
    } else if (cr_str_eq(n, H2O_STRLIT("age"))) {
        size_t age = h2o_strtosize(v.base, v.len);
        if (age != SIZE_MAX) {
            ri->has_age = 1;
            ri->age_s = age;
        }
    } else if (cr_str_eq(n, H2O_STRLIT("set-cookie"))) {
        ri->has_set_cookie = 1;
    } else if (cr_str_eq(n, H2O_STRLIT("vary"))) {
        if (cr_list_contains(hv, h2o_iovec_init(H2O_STRLIT("*"))))
            ri->vary_star = 1;
    } else if (cr_str_eq(n, H2O_STRLIT("etag"))) {
        ri->has_etag = 1;
    } else if (cr_str_eq(n, H2O_STRLIT("content-length"))) {
        size_t cl = h2o_strtosize(v.base, v.len);
        if (cl != SIZE_MAX) {
            ri->has_content_length = 1;
            ri->content_length = cl;
        }
    } else if (cr_str_eq(n, H2O_STRLIT("pragma"))) {
        if (cr_list_contains(hv, h2o_iovec_init(H2O_STRLIT("no-cache"))))
            ri->pragma_no_cache = 1;
    }
}

void cr_response_info_from_headers(int status, const h2o_header_t *headers, size_t num_headers, cr_response_info_t *ri)
{
    size_t i;
    cr_response_info_init(ri);
    ri->status = status;
    for (i = 0; i != num_headers; ++i)
        cr_response_info_add(ri, cr_str(headers[i].name->base, headers[i].name->len),
                             cr_str(headers[i].value.base, headers[i].value.len));
}

size_t cr_variant_key(const cr_str_t *names, size_t num_names, cr_header_getter_fn get, void *ctx, char *buf, size_t cap)
{
    size_t i, len = 0;
    for (i = 0; i != num_names; ++i) {
        h2o_iovec_t v = get(ctx, names[i].base, names[i].len);
        while (v.len != 0 && (v.base[0] == ' ' || v.base[0] == '\t'))
            ++v.base, --v.len;
        while (v.len != 0 && (v.base[v.len - 1] == ' ' || v.base[v.len - 1] == '\t'))
            --v.len;
        if (len + names[i].len + v.len + 2 > cap)
            return SIZE_MAX;
        memcpy(buf + len, names[i].base, names[i].len);
        len += names[i].len;
        buf[len++] = ':';
        if (v.len != 0)
            memcpy(buf + len, v.base, v.len);
        len += v.len;
        buf[len++] = '\n';
    }
    return len;
}

int cr_buffer_append(h2o_buffer_t **buf, const void *p, size_t len)
{
    h2o_iovec_t dst = h2o_buffer_reserve(buf, len);
    if (dst.base == NULL)
        return CR_ERROR;
    memcpy(dst.base, p, len);
    (*buf)->size += len;
    return CR_OK;
}

void cr_send_json_error(h2o_req_t *req, int status, const char *reason, const char *code, const char *msg)
{
    static h2o_generator_t generator = {NULL, NULL};
    size_t cap = strlen(code) + strlen(msg) * 2 + 64, i;
    char *body = h2o_mem_alloc_pool(&req->pool, cap), *p = body;
    h2o_iovec_t buf;

    p += sprintf(p, "{\"error\":\"%s\",\"message\":\"", code);
    for (i = 0; msg[i] != '\0'; ++i) {
        if (msg[i] == '"' || msg[i] == '\\')
            *p++ = '\\';
        *p++ = (unsigned char)msg[i] < 0x20 ? ' ' : msg[i];
    }
    p += sprintf(p, "\"}\n");
    buf = h2o_iovec_init(body, p - body);
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = buf.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}
