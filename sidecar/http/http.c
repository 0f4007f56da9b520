/*
 * http.c: the header helpers of http.h, shared by the cache path and the pass path: header lists, hop-by-hop
 * fields, request header getters, request and response summaries, variant keys. (The upstream request head is
 * built in fill/upstream_head.c; JSON errors are sent by json_error.c.)
 *
 * Invariants: joined values are allocated in the request's pool or written into the caller's buffers. No locks; no
 * global state.
 */
#include "corral/http/http.h"

#include "corral/conf/config.h"
#include "corral/http/targeted_cc.h"

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

/* An object keeps the index in a byte (CR_OBJECT_MAX_TOKEN, 255, in cache/object.h, a layer above: the unit test
 * test_http.c checks the two against each other). */
_Static_assert(H2O_MAX_TOKENS < 255u, "token indexes must fit an object's token");

unsigned cr_token_index(const h2o_iovec_t *name)
{
    return h2o_iovec_is_token(name) ? (unsigned)((const h2o_token_t *)name - h2o__tokens) + 1 : 0;
}

void cr_add_header_static_name(h2o_mem_pool_t *pool, h2o_headers_t *headers, const h2o_iovec_t *name, h2o_iovec_t value)
{
    h2o_header_t *h;
    h2o_vector_reserve(pool, headers, headers->size + 1);
    h = headers->entries + headers->size++;
    h->name = (h2o_iovec_t *)name; /* h2o's own type has no const; nothing writes through it */
    h->orig_name = NULL;
    h->value = value;
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

/* An Age value (RFC 9111 5.1): its first list member as delta-seconds. Digits followed by anything but OWS or ','
 * still count for their digits ("7200.5" is 7200: an Age is never read younger than it says); a value too large
 * saturates at 2^31 (RFC 9111 1.2.2), which is stale for any lifetime; no leading digit (empty, "-5", "abc") is
 * no Age at all (the field is ignored, as 5.1 says). */
static int parse_age(cr_str_t v, uint64_t *age_s)
{
    size_t i = 0;
    uint64_t age = 0;
    while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t'))
        ++i;
    if (i == v.len || v.base[i] < '0' || v.base[i] > '9')
        return 0;
    for (; i < v.len && v.base[i] >= '0' && v.base[i] <= '9'; ++i)
        if ((age = age * 10 + (uint64_t)(v.base[i] - '0')) >= (UINT64_C(1) << 31))
            age = UINT64_C(1) << 31; /* stays saturated: the next digit cannot bring it back below */
    *age_s = age;
    return 1;
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
        if (!ri->age_seen) { /* RFC 9111 5.1: the first Age line, and in it the first member, counts */
            ri->age_seen = 1;
            ri->has_age = parse_age(v, &ri->age_s);
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
    } else if (ri->targeted_cfg != NULL) {
        int k = cr_targeted_cc_index(ri->targeted_cfg, n);
        if (k < 0 || k >= CR_TARGETED_CC_MAX)
            return;
        if (cr_sf_dictionary_valid(v)) {
            ri->targeted_present |= 1u << k;
            cr_cc_parse(ri->targeted_cc + k, v);
        } else {
            ri->targeted_bad |= 1u << k;
        }
    }
}

void cr_response_info_apply_targeted(cr_response_info_t *ri)
{
    unsigned usable = ri->targeted_present & ~ri->targeted_bad;
    int k;
    if (usable == 0)
        return;
    k = __builtin_ctz(usable); /* the lowest bit is the first listed field */
    ri->cc = ri->targeted_cc[k];
    ri->has_cache_control = 1;
    ri->has_expires = 0; /* RFC 9213 2.1: Cache-Control and Expires are ignored */
    ri->pragma_no_cache = 0;
    ri->targeted_applied = k;
}

void cr_response_info_from_headers(const cr_config_t *cfg, int status, const h2o_header_t *headers, size_t num_headers,
                                   cr_response_info_t *ri)
{
    size_t i;
    cr_response_info_init(ri);
    cr_response_info_set_targeted(ri, cfg);
    ri->status = status;
    for (i = 0; i != num_headers; ++i)
        cr_response_info_add(ri, cr_str(headers[i].name->base, headers[i].name->len),
                             cr_str(headers[i].value.base, headers[i].value.len));
    cr_response_info_apply_targeted(ri);
}
