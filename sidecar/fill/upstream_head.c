/*
 * upstream_head.c: cr_build_upstream_head (see upstream_head.h), for the pass path and for fills.
 *
 * Invariants: request heads are built in the request's pool and stay valid for the request's lifetime, which
 * outlives every upstream fetch made for it (fetches are cancelled from the request's dispose callbacks). The
 * head's size is bounded before writing (cap), and asserted after. No locks; no global state.
 */
#include "corral/fill/upstream_head.h"

#include "corral/http/http.h"
#include "corral/http/key.h"

#include <stdio.h>

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
