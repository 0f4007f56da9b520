/*
 * fuzz_reqcheck.c: the HTTP/2 request checks (reqcheck.c) and what follows them: the upstream request heads that
 * fill/upstream_head.c writes for a pass and for a fill, and the cache key.
 *
 * An HTTP/2 request is what libh2o's HPACK decoder leaves: pseudo-header values and fields taken verbatim. Here one
 * is built in a pool (a bare h2o_req_t, a connection with only get_sockname / get_peername, an output stream that
 * records the answer), as libh2o would hand it to the handler.
 *
 * Input: fields separated by "\n--\n": method, :path, :authority (empty: absent), then "name:value" fields (names
 * as sent; names that are h2o tokens become tokens, as the HPACK decoder makes them). Properties beyond "no crash":
 *  - a refused request has been answered (400, or 405 for CONNECT) and nothing else was done;
 *  - for an accepted one, the upstream head of a pass and of a fill (target: the key's path and query) parse with
 *    the strict HTTP/1.1 parser (h1_request.c) as one complete head of exactly their length, with the fields
 *    written, a Host equal to the authority and the request's method and target: no request smuggling or header
 *    injection through an HTTP/2 request.
 */
#include "fuzz_util.h"

#include <arpa/inet.h>
#include <h2o.h>

#include "corral/conf/config.h"
#include "corral/fill/upstream_head.h"
#include "corral/http/h1_request.h"
#include "corral/http/http.h"
#include "corral/http/key.h"
#include "corral/http/reqcheck.h"

#define FZ_MAX_FIELDS 256

static socklen_t get_addr(h2o_conn_t *conn, struct sockaddr *sa)
{
    struct sockaddr_in *sin = (void *)sa;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(8081);
    sin->sin_addr.s_addr = htonl(0x7f000001);
    return sizeof(*sin);
}

static int answered;

static void on_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    FZ_CHECK(state == H2O_SEND_STATE_FINAL);
    ++answered;
}

static int lookup(void *ctx, const char *lname, size_t lnamelen, cr_str_t *value)
{
    h2o_iovec_t v = cr_req_header_by_name(ctx, lname, lnamelen);
    if (v.base == NULL)
        return 0;
    *value = cr_str(v.base, v.len);
    return 1;
}

/* The head parses strictly as one complete request with the request's method, target and authority. */
static void check_upstream_head(h2o_req_t *req, h2o_iovec_t head, h2o_iovec_t method, h2o_iovec_t target)
{
    cr_h1_request_t parsed;
    cr_h1_field_t fields[FZ_MAX_FIELDS + 16];
    size_t num = CR_ARRAY_SIZE(fields), i, hosts = 0;
    const char *err = NULL;
    int r = cr_h1_parse_request(head.base, head.len, &parsed, fields, &num, 0, &err);
    if (r != (int)head.len) {
        fprintf(stderr, "upstream head (%d, %s):\n%.*s\n", r, err != NULL ? err : "-", (int)head.len, head.base);
        FZ_CHECK(!"the upstream head is one valid HTTP/1.1 request head");
    }
    FZ_CHECK(h2o_memis(parsed.method, parsed.method_len, method.base, method.len));
    FZ_CHECK(h2o_memis(parsed.target, parsed.target_len, target.base, target.len));
    for (i = 0; i != num; ++i) {
        if (h2o_lcstris(fields[i].name, fields[i].name_len, H2O_STRLIT("host"))) {
            ++hosts;
            FZ_CHECK(h2o_memis(fields[i].value, fields[i].value_len, req->input.authority.base, req->input.authority.len));
        }
    }
    FZ_CHECK(hosts == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static h2o_conn_callbacks_t callbacks = {get_addr, get_addr};
    static h2o_pathconf_t pathconf; /* no filters */
    static char *key_headers[] = {"accept-language"};
    fz_input_t in = {data, size};
    h2o_conn_t conn;
    h2o_req_t req;
    h2o_ostream_t ostr;
    cr_str_t method, path, authority;

    memset(&conn, 0, sizeof(conn));
    conn.callbacks = &callbacks;
    h2o_init_request(&req, &conn, NULL);
    memset(&ostr, 0, sizeof(ostr));
    ostr.do_send = on_send;
    req._ostr_top = &ostr;
    req.pathconf = &pathconf;
    req.version = 0x200;
    req.input.scheme = &H2O_URL_SCHEME_HTTP;
    answered = 0;

    method = fz_next(&in, "\n--\n");
    path = fz_next(&in, "\n--\n");
    authority = fz_next(&in, "\n--\n");
    req.input.method = req.method = h2o_strdup(&req.pool, method.base, method.len);
    req.input.path = req.path = h2o_strdup(&req.pool, path.base, path.len);
    if (authority.len != 0)
        req.input.authority = req.authority = h2o_strdup(&req.pool, authority.base, authority.len);
    while (in.len != 0 && req.headers.size < FZ_MAX_FIELDS) {
        cr_str_t f = fz_next(&in, "\n--\n");
        const char *colon = f.len > 1 ? memchr(f.base + 1, ':', f.len - 1) : NULL;
        h2o_iovec_t name, value;
        const h2o_token_t *token;
        if (colon == NULL)
            continue;
        name = h2o_strdup(&req.pool, f.base, (size_t)(colon - f.base));
        value = h2o_strdup(&req.pool, colon + 1, (size_t)(f.base + f.len - (colon + 1)));
        if ((token = h2o_lookup_token(name.base, name.len)) != NULL)
            h2o_add_header(&req.pool, &req.headers, token, NULL, value.base, value.len);
        else
            h2o_add_header_by_str(&req.pool, &req.headers, name.base, name.len, 0, NULL, value.base, value.len);
    }

    if (cr_reqcheck(&req) != CR_OK) {
        FZ_CHECK(answered == 1 && (req.res.status == 400 || req.res.status == 405));
    } else {
        cr_route_config_t route;
        cr_fill_request_t fill;
        cr_request_info_t qi;
        char key[16384];
        int klen;

        FZ_CHECK(answered == 0);
        FZ_CHECK(req.input.authority.len != 0 && cr_h1_is_authority(req.input.authority.base, req.input.authority.len));
        cr_request_info_from_req(&req, &qi);
        check_upstream_head(&req, cr_build_upstream_head(&req, NULL), req.input.method, req.input.path);

        memset(&route, 0, sizeof(route));
        route.key_headers = key_headers;
        route.num_key_headers = 1;
        route.cookies = (path.len & 1) ? CR_COOKIES_IGNORE : CR_COOKIES_PASS;
        klen = cr_key_build(&route, cr_str(req.input.authority.base, req.input.authority.len), 80,
                            cr_str(req.input.path.base, req.input.path.len), lookup, &req, key, sizeof(key));
        if (klen > 0) {
            const char *pq = memchr(key, '\n', (size_t)klen) + 1, *end = memchr(pq, '\n', (size_t)(key + klen - pq));
            memset(&fill, 0, sizeof(fill));
            fill.route = &route;
            fill.target = h2o_iovec_init(pq, (size_t)(end - pq));
            check_upstream_head(&req, cr_build_upstream_head(&req, &fill), h2o_iovec_init(H2O_STRLIT("GET")), fill.target);
        }
    }
    h2o_mem_clear_pool(&req.pool);
    return 0;
}
