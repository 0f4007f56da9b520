/*
 * reqcheck.c: the request-head checks of reqcheck.h. Everything checked here is later written into the upstream's
 * HTTP/1.1 request line or head (fill/upstream_head.c cr_build_upstream_head) or into the cache key, so a value that would change
 * that message's framing never gets that far.
 *
 * Invariants: runs on the request's thread at the start of the handler; rewrites only req->input.authority and
 * req->authority (to a string in the request's pool), and removes the fields Connection names from req->headers. No global state. HTTP/1.x requests only get the missing-Host
 * and CONNECT handling: their heads were checked byte by byte by the strict parser, so the hit path pays nothing
 * twice. cr_reqcheck_size runs first of all, before anything of the request is read.
 */
#include "corral/http/reqcheck.h"

#include "corral/core/common.h"
#include "corral/http/h1_request.h"
#include "corral/http/hpack_bound.h"
#include "corral/http/http.h"
#include "corral/http/json_error.h"

static int bad(h2o_req_t *req, const char *msg)
{
    cr_send_json_error(req, 400, "Bad Request", "bad_request", msg);
    return CR_ERROR;
}

/* The local address:port of the connection ("127.0.0.1:8081", "[::1]:8081"), or "localhost" when unknown. */
static h2o_iovec_t listener_authority(h2o_req_t *req)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char host[NI_MAXHOST];
    size_t hlen;
    int port;
    char *buf;

    if ((sslen = req->conn->callbacks->get_sockname(req->conn, (void *)&ss)) == 0 ||
        (hlen = cr_numeric_host(&ss, sslen, host)) == SIZE_MAX || (port = h2o_socket_getport((void *)&ss)) == -1)
        return h2o_iovec_init(H2O_STRLIT("localhost"));
    buf = h2o_mem_alloc_pool(&req->pool, hlen + 16);
    if (ss.ss_family == AF_INET6)
        return h2o_iovec_init(buf, (size_t)sprintf(buf, "[%.*s]:%d", (int)hlen, host, port));
    return h2o_iovec_init(buf, (size_t)sprintf(buf, "%.*s:%d", (int)hlen, host, port));
}

static int is_lower_token(const h2o_iovec_t *name)
{
    size_t i;
    for (i = 0; i != name->len; ++i)
        if (name->base[i] >= 'A' && name->base[i] <= 'Z')
            return 0;
    return cr_h1_is_token(name->base, name->len);
}

/*
 * RFC 9110 7.6.1: the fields a client names in Connection are for this hop only, and the upstream head never carries
 * them (http.c). They are removed here, before the route, the key or Vary read the request, so that what the key
 * sees is what a fill sends: otherwise "Accept-Language: de" with "Connection: accept-language" would store the
 * upstream's answer to no Accept-Language as the "de" variant (Varnish also strips them before hashing).
 */
static void drop_connection_nominated(h2o_req_t *req)
{
    h2o_iovec_t connection;
    size_t i;
    if (h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, -1) == -1)
        return;
    connection = cr_req_header(req, H2O_TOKEN_CONNECTION); /* every Connection line, joined */
    for (i = 0; i < req->headers.size;) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h->name != &H2O_TOKEN_CONNECTION->buf && cr_list_contains(connection, *h->name))
            h2o_delete_header(&req->headers, (ssize_t)i);
        else
            ++i;
    }
}

int cr_reqcheck_size(h2o_req_t *req, size_t limit)
{
    if (req->version >= 0x200) {
        /* hpack_bound.c counted while decoding and stopped keeping fields at the limit */
        if (!cr_hpack_oversized(req))
            return CR_OK;
    } else {
        /* libh2o bounds an HTTP/1.x head to H2O_MAX_REQLEN bytes and 100 fields: one pass over what it kept */
        size_t total = sizeof(":method:path") - 1 + req->input.method.len + req->input.path.len + 2 * CR_HEADER_FIELD_OVERHEAD +
                       cr_header_fields_size(&req->headers, 0);
        if (total <= limit)
            return CR_OK;
    }
    cr_send_json_error(req, 431, "Request Header Fields Too Large", "request_headers_too_large",
                       "the request's header fields are longer than limits.request_headers allows");
    return CR_ERROR;
}

int cr_reqcheck(h2o_req_t *req)
{
    h2o_iovec_t m = req->input.method, path = req->input.path, auth = req->input.authority;
    size_t i;

    /* an HTTP/1.x head was parsed by h1_request.c, which checked all of this already (main.c makes sure libh2o
     * calls it); the checks here are for HTTP/2, whose HPACK decoder leaves pseudo-header values unchecked */
    int checked = req->version < 0x200;

    if (!checked && !cr_h1_is_token(m.base, m.len))
        return bad(req, "the method is not a token");
    if (h2o_memis(m.base, m.len, H2O_STRLIT("CONNECT"))) {
        cr_send_json_error(req, 405, "Method Not Allowed", "method_not_allowed", "corral does not tunnel (CONNECT)");
        return CR_ERROR;
    }
    if (!checked && !(h2o_memis(m.base, m.len, H2O_STRLIT("OPTIONS")) && h2o_memis(path.base, path.len, H2O_STRLIT("*"))) &&
        !cr_h1_is_origin_form(path.base, path.len))
        return bad(req, "the request-target is not origin-form (\"/path?query\" without SP, controls, '#' or non-ASCII bytes)");

    /* h2o gives a request without Host (HTTP/1.0) or :authority the host config's name ("default") */
    if (auth.base == NULL || auth.len == 0 || (req->hostconf != NULL && auth.base == req->hostconf->authority.hostport.base)) {
        req->input.authority = req->authority = listener_authority(req);
    } else if (!checked && !cr_h1_is_authority(auth.base, auth.len)) {
        return bad(req, "the authority is not host[:port]");
    }

    for (i = 0; !checked && i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (!h2o_iovec_is_token(h->name) && !is_lower_token(h->name)) /* h2o's token names are lower-case tokens */
            return bad(req, "a header name that is not a token");
        if (!cr_h1_is_field_value(h->value.base, h->value.len))
            return bad(req, "a header value with a control character");
    }
    drop_connection_nominated(req);
    return CR_OK;
}
