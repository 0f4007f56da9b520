/*
 * respond.c: answering a request from a stored object: content-coding negotiation, per-variant validators,
 * conditional requests (304), HEAD, and the on-the-fly decoder for objects held only in the upstream's coding. A GET
 * with Range is handed to respond_range.c (206 / 416) after every header of the whole 200 is set.
 *
 * Invariants: runs on the request's worker thread. The request holds one object reference, a pin of that thread
 * (pin.h: a hot object's hits write nothing shared), tied to its pool and dropped when it is disposed, so every stored byte is sent by reference: no copy, no allocation proportional to
 * the body, no lock held while sending. Only an object stored solely in a coding the client does not accept is
 * decoded: CR_DECODE_WINDOW of output per h2o_send, the next only when the client took it (proceed), so a slow
 * reader pins one decoder and one window, whatever the ratio (the decoder and its buffer live in the request's
 * pool). An object marked CR_OBJ_KEEP_CODING at store time (its decoded form would pass cache.max_object_size, or
 * it is corrupt) is never decoded: such a client gets the stored coding, or 406 when it refused that coding by name.
 * Validators: the ETag as received names the representation as received (identity, or the upstream's own coding);
 * every other representation gets a suffix inside the quotes ("-gz", "-br", or "-id" for a decoded one), so a
 * conditional request matches only the variant it would receive.
 * Config generation: cfg and route are read only during cr_respond_object, never after it returns, so a hit answered
 * within on_req may pass the thread's borrowed generation (handler.c). The one pointer into the route that the
 * response keeps, the forced Cache-Control value, is a header value that libh2o copies out when the response head
 * is written, which is in the first h2o_send, made before this returns (HTTP/1.1 flattens the head into the
 * request's pool, HTTP/2 HPACK-encodes it into the connection's buffer; corral registers no h2o filter that could
 * delay it). What a decoded or streamed body keeps past that (the decoder, the stored body) is held by the object
 * reference and the request's pool, not by the config.
 */
#include "corral/serve/respond.h"
#include "corral/serve/respond_range.h"

#include <stdio.h>

#include "corral/http/date_send.h"
#include "corral/http/encoding.h"
#include "corral/http/http.h"
#include "corral/http/targeted_cc.h"
#include "corral/cache/pin.h"
#include "corral/core/runtime.h"

/* Decoded bytes produced per h2o_send of the on-the-fly decoder (one more codec piece may come on top). */
#define CR_DECODE_WINDOW ((size_t)65536)

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 410: return "Gone";
    case 414: return "URI Too Long";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static const h2o_iovec_t cache_status_name = {H2O_STRLIT("cache-status")};

static void on_object_ref_dispose(void *p)
{
    cr_pin_release((cr_object_t **)p); /* disposed on the request's thread, which took the pin */
}

/* The coding the object's bodies were received in (identity unless the upstream sent it compressed). */
static cr_encoding_t received_encoding(const cr_object_t *obj)
{
    if ((cr_object_flags(obj) & CR_OBJ_ENCODED) == 0)
        return CR_ENC_IDENTITY;
    return cr_object_body(obj, CR_ENC_BR).base != NULL ? CR_ENC_BR : CR_ENC_GZIP;
}

/* Bit set of the representations the object can be sent in without work. */
static unsigned available_encodings(const cr_object_t *obj)
{
    unsigned bits = 0;
    int e;
    for (e = 0; e != CR_ENC_MAX; ++e)
        if (cr_object_body(obj, (cr_encoding_t)e).base != NULL)
            bits |= CR_ENC_BIT(e);
    if ((cr_object_flags(obj) & CR_OBJ_ENCODED) != 0)
        bits &= ~CR_ENC_BIT(CR_ENC_IDENTITY);
    return bits;
}

/* The ETag of the representation `enc` (see the file comment); in the request's pool when a suffix is added. */
static h2o_iovec_t variant_etag(h2o_req_t *req, const cr_object_t *obj, cr_encoding_t enc)
{
    static const char *const suffix[CR_ENC_MAX] = {"-id", "-gz", "-br"};
    cr_str_t e = cr_object_etag(obj);
    size_t slen;
    char *buf;

    if (e.base == NULL || enc == received_encoding(obj))
        return h2o_iovec_init(e.base, e.len);
    if (e.len < 2 || e.base[e.len - 1] != '"')
        return h2o_iovec_init(e.base, e.len); /* not a well-formed entity-tag: leave it alone */
    slen = strlen(suffix[enc]);
    buf = h2o_mem_alloc_pool(&req->pool, e.len + slen);
    memcpy(buf, e.base, e.len - 1);
    memcpy(buf + e.len - 1, suffix[enc], slen);
    buf[e.len - 1 + slen] = '"';
    return h2o_iovec_init(buf, e.len + slen);
}

/* The request fields an answer from the cache reads, found in one pass over the request's headers: the index of
 * each one's first line (-1: absent) and whether it came on more than one line. */
enum { F_AE, F_INM, F_IMS, F_RANGE, F_NUM };

typedef struct st_cr_hit_fields_t {
    ssize_t at[F_NUM];
    unsigned repeated; /* bit F_x */
} cr_hit_fields_t;

static void find_fields(const h2o_req_t *req, cr_hit_fields_t *f)
{
    size_t i;
    int k;

    f->at[F_AE] = f->at[F_INM] = f->at[F_IMS] = f->at[F_RANGE] = -1;
    f->repeated = 0;
    for (i = 0; i != req->headers.size; ++i) {
        const h2o_iovec_t *name = req->headers.entries[i].name;
        if (name == &H2O_TOKEN_ACCEPT_ENCODING->buf)
            k = F_AE;
        else if (name == &H2O_TOKEN_IF_NONE_MATCH->buf)
            k = F_INM;
        else if (name == &H2O_TOKEN_IF_MODIFIED_SINCE->buf)
            k = F_IMS;
        else if (name == &H2O_TOKEN_RANGE->buf)
            k = F_RANGE;
        else
            continue;
        if (f->at[k] == -1)
            f->at[k] = (ssize_t)i;
        else
            f->repeated |= 1u << k;
    }
}

/* The field's value as cr_req_header gives it (several lines joined), without a second search for one line. */
static h2o_iovec_t field_value(h2o_req_t *req, const cr_hit_fields_t *f, int k, const h2o_token_t *token)
{
    if (f->at[k] == -1)
        return h2o_iovec_init(NULL, 0);
    if ((f->repeated & (1u << k)) != 0)
        return cr_req_header(req, token);
    return req->headers.entries[f->at[k]].value;
}

/* If-None-Match against the variant's ETag, else If-Modified-Since (RFC 9110 13.2.2) against Last-Modified, or the
 * stored Date when there is none. The date is parsed here, only for a request that carries If-Modified-Since (no
 * object keeps it parsed). */
static int is_not_modified(h2o_req_t *req, const cr_hit_fields_t *f, const cr_object_t *obj, h2o_iovec_t etag)
{
    h2o_iovec_t inm, ims;
    cr_str_t lm;
    uint64_t ims_ms, lm_ms;

    if (obj->status != 200)
        return 0;
    if ((inm = field_value(req, f, F_INM, H2O_TOKEN_IF_NONE_MATCH)).base != NULL)
        return etag.base != NULL && cr_policy_etag_matches(cr_str(inm.base, inm.len), cr_str(etag.base, etag.len));
    if ((ims = field_value(req, f, F_IMS, H2O_TOKEN_IF_MODIFIED_SINCE)).base == NULL)
        return 0;
    /* no Last-Modified: the stored response's Date stands for it (RFC 9111 4.3.2, RFC 9110 13.1.3) */
    if ((lm = cr_object_find_header(obj, H2O_STRLIT("last-modified"))).base == NULL &&
        (lm = cr_object_find_header(obj, H2O_STRLIT("date"))).base == NULL)
        return 0;
    if (cr_http_date_parse(lm, &lm_ms) != 0 || lm_ms == 0 || cr_http_date_parse(cr_str(ims.base, ims.len), &ims_ms) != 0)
        return 0;
    return lm_ms <= ims_ms;
}

static int is_304_header(cr_str_t n)
{
    return cr_str_eq(n, H2O_STRLIT("cache-control")) || cr_str_eq(n, H2O_STRLIT("content-location")) ||
           cr_str_eq(n, H2O_STRLIT("expires")) || cr_str_eq(n, H2O_STRLIT("vary")) || cr_str_eq(n, H2O_STRLIT("last-modified"));
}

static int is_forced_override(cr_str_t n)
{
    return cr_str_eq(n, H2O_STRLIT("cache-control")) || cr_str_eq(n, H2O_STRLIT("pragma")) ||
           cr_str_eq(n, H2O_STRLIT("expires"));
}

static int mentions_accept_encoding(cr_str_t v)
{
    size_t i;
    for (i = 0; i + 15 <= v.len; ++i)
        if (cr_str_ieq(cr_str(v.base + i, 15), H2O_STRLIT("accept-encoding")))
            return 1;
    return 0;
}

/* ---- the on-the-fly decoder: an object held only as gzip/br, for a client that accepts neither ---- */

typedef struct st_cr_decode_gen_t {
    h2o_generator_t super;
    cr_decoder_t *decoder;
    cr_str_t input;   /* the stored coded body (kept alive by the request's object reference) */
    size_t consumed;
    h2o_buffer_t *out; /* decoded bytes of the current h2o_send: at most CR_DECODE_WINDOW + CR_CODEC_CHUNK */
    h2o_iovec_t date;  /* the stored Date, until the send that writes the head (date_send.h) */
} cr_decode_gen_t;

static int on_decoded(void *ctx, const void *buf, size_t len)
{
    cr_decode_gen_t *self = ctx;
    return cr_buffer_append(&self->out, buf, len);
}

/* Decodes the next window of output (only once the client took the previous one: proceed) and sends it. */
static void decode_and_send(cr_decode_gen_t *self, h2o_req_t *req)
{
    h2o_iovec_t vec, date;
    size_t n;
    int rc;

    h2o_buffer_consume(&self->out, self->out->size);
    rc = cr_decoder_feed_some(self->decoder, self->input.base + self->consumed, self->input.len - self->consumed, 1,
                              CR_DECODE_WINDOW, &n, on_decoded, self);
    self->consumed += n;
    if (rc != CR_OK && rc != CR_AGAIN) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    vec = h2o_iovec_init(self->out->bytes, self->out->size);
    date = self->date;
    if (vec.len != 0 || rc == CR_OK)
        self->date = h2o_iovec_init(NULL, 0); /* this send writes the head */
    cr_send_dated(req, date, &vec, vec.len != 0 ? 1 : 0, rc == CR_OK ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_decode_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    decode_and_send((cr_decode_gen_t *)generator, req);
}

static void on_decode_gen_dispose(void *p)
{
    cr_decode_gen_t *self = p;
    cr_decoder_free(&self->decoder);
    h2o_buffer_dispose(&self->out);
}

/* Starts a decoded response; the caller has set status and headers. */
static void send_decoded(h2o_req_t *req, const cr_config_t *cfg, const cr_object_t *obj, cr_encoding_t coded, h2o_iovec_t date)
{
    cr_decode_gen_t *self = h2o_mem_alloc_shared(&req->pool, sizeof(*self), on_decode_gen_dispose);
    memset(self, 0, sizeof(*self));
    self->super.proceed = on_decode_proceed;
    self->input = cr_object_body(obj, coded);
    h2o_buffer_init(&self->out, &h2o_socket_buffer_prototype);
    /* a decoded body can be no larger than max_object_size allowed, times a generous ratio: a bomb is cut short */
    self->decoder = cr_decoder_new(coded, (size_t)cfg->cache.max_object_size * 64 + 1024 * 1024);
    h2o_start_response(req, &self->super);
    if (self->decoder == NULL) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    self->date = date;
    decode_and_send(self, req);
}

void cr_respond_object(h2o_req_t *req, const cr_config_t *cfg, const cr_route_config_t *route, cr_object_t *obj,
                       h2o_iovec_t cache_status)
{
    static h2o_generator_t generator = {NULL, NULL}; /* the whole body goes in one h2o_send */
    cr_thread_t *t = cr_thread_of(req);
    uint64_t now = h2o_now(t->ctx.loop);
    unsigned flags = cr_object_flags(obj), available = available_encodings(obj);
    int forced = (flags & CR_OBJ_FORCED) != 0, has_variants = available != CR_ENC_BIT(CR_ENC_IDENTITY), chosen = CR_ENC_IDENTITY,
        not_modified, vary_done = 0, is_head,
        hide_targeted = cfg->cache.num_targeted_cc != 0 && !cfg->cache.forward_targeted; /* targeted_cc.h */
    cr_encoding_t coded = received_encoding(obj);
    h2o_iovec_t etag, body, date = {NULL, 0};
    cr_str_t stored;
    cr_hit_fields_t fields;
    cr_object_t **slot;
    char *agebuf;
    size_t i;

    find_fields(req, &fields);
    if (has_variants) {
        h2o_iovec_t ae = field_value(req, &fields, F_AE, H2O_TOKEN_ACCEPT_ENCODING);
        chosen = cr_negotiate_encoding(cr_str(ae.base, ae.len), available);
        if (chosen == CR_ENC_IDENTITY && (flags & CR_OBJ_KEEP_CODING) != 0)
            /* never decoded for a client (a bomb, or too large decoded): the stored coding, unless refused outright */
            chosen = cr_accept_encoding_refuses(cr_str(ae.base, ae.len), coded) ? -1 : (int)coded;
        if (chosen < 0) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("accept-encoding"));
            cr_send_json_error(req, 406, "Not Acceptable", "not_acceptable",
                               "no content-coding this resource is available in is acceptable (Accept-Encoding)");
            return;
        }
    }
    etag = variant_etag(req, obj, chosen);
    not_modified = is_not_modified(req, &fields, obj, etag);

    /* the request holds a reference until it is disposed: the body is sent by reference */
    cr_pin_acquire(obj);
    slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_object_ref_dispose);
    *slot = obj;

    req->res.status = not_modified ? 304 : obj->status;
    req->res.reason = reason_phrase(req->res.status);
    /* room for every header added below at once (libh2o would grow the vector 4, 8, 16, copying each time) */
    h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + obj->num_headers + 6);
    for (i = 0; i != obj->num_headers; ++i) {
        cr_str_t name = cr_object_header_name(obj, i), value = cr_object_header_value(obj, i);
        unsigned token = cr_object_header_token(obj, i);
        /* stored names that are h2o tokens carry their token (objbuild.c, tier/value.c): compared as numbers; a
         * name stored without one is compared as a string */
        if (token == CR_TOKEN_INDEX(H2O_TOKEN_DATE)) { /* the origin's, sent by cr_send_dated instead of libh2o's own */
            date = h2o_iovec_init(value.base, value.len);
            continue;
        }
        if (token != 0 ? token == CR_TOKEN_INDEX(H2O_TOKEN_ETAG) || token == CR_TOKEN_INDEX(H2O_TOKEN_CONTENT_ENCODING)
                       : cr_str_eq(name, H2O_STRLIT("etag")) || cr_str_eq(name, H2O_STRLIT("content-encoding")))
            continue;
        if (not_modified && !is_304_header(name))
            continue;
        if (forced && is_forced_override(name))
            continue;
        if (token == 0 && hide_targeted && cr_targeted_cc_index(cfg, name) >= 0) /* no targeted field is a token */
            continue;
        if (has_variants && (token != 0 ? token == CR_TOKEN_INDEX(H2O_TOKEN_VARY) : cr_str_eq(name, H2O_STRLIT("vary"))) &&
            mentions_accept_encoding(value))
            vary_done = 1;
        if (token != 0)
            h2o_add_header(&req->pool, &req->res.headers, cr_token_of(token), NULL, value.base, value.len);
        else
            h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 0, NULL, value.base, value.len);
    }
    if (etag.base != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag.base, etag.len);
    if (has_variants && !vary_done)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("accept-encoding"));
    if (forced) {
        const char *cc = route != NULL && route->force_cache_control != NULL ? route->force_cache_control : "no-cache";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cc, strlen(cc));
    }
    agebuf = h2o_mem_alloc_pool(&req->pool, 24);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_AGE, NULL, agebuf,
                   cr_i64toa((int64_t)(cr_object_age_ms(obj, now) / 1000), agebuf));
    if (cache_status.base != NULL)
        cr_add_header_static_name(&req->pool, &req->res.headers, &cache_status_name, cache_status);
    if (not_modified) {
        CR_STAT_INC(t->stats, not_modified);
        h2o_start_response(req, &generator);
        cr_send_dated(req, date, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    if (chosen != CR_ENC_IDENTITY) {
        cr_str_t name = cr_encoding_name(chosen);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, name.base, name.len);
    }
    is_head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    if (chosen == CR_ENC_IDENTITY && coded != CR_ENC_IDENTITY) {
        /* stored only in the upstream's coding and the client accepts none we hold: decode while sending */
        if (is_head) {
            h2o_start_response(req, &generator);
            cr_send_dated(req, date, NULL, 0, H2O_SEND_STATE_FINAL);
        } else {
            send_decoded(req, cfg, obj, coded, date);
        }
        return;
    }
    stored = cr_object_body(obj, (cr_encoding_t)chosen);
    body = h2o_iovec_init(stored.base, stored.len);
    if (fields.at[F_RANGE] != -1 && !is_head && obj->status == 200 &&
        cr_respond_range(req, obj, body, etag, chosen != CR_ENC_IDENTITY, cache_status))
        return; /* 206 or 416 (respond_range.c) */
    req->res.content_length = body.len;
    h2o_start_response(req, &generator);
    if (is_head || body.len == 0)
        cr_send_dated(req, date, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        cr_send_dated(req, date, &body, 1, H2O_SEND_STATE_FINAL);
}
