/*
 * pass.c: uncached requests, streamed to the upstream and back (see pass.h).
 *
 * Invariants: one cr_pass_t per passed request, in the request's pool; it holds a reference to the request's config
 * generation (its route and the surrogate-key header are read from it after cr_pass_start returned), dropped
 * when the request is disposed. `fetch_done` becomes 1 exactly once (end of
 * body, error, or cancel); after it no fetch callback runs. At most one h2o_send is outstanding
 * (sending.bytes_inflight != 0 until proceed).
 *
 * Memory: what a response holds is `held` (the doublebuffer's sending side, which libh2o references until the
 * client's socket took it: HTTP/1.1 calls proceed when the write completed, HTTP/2 when the connection's write
 * buffer holding the copied DATA frames was written; plus the receiving side: the upstream socket's input, or the
 * encoder's output). Reading from the upstream pauses once held reaches half of limits.response_buffer and resumes
 * in proceed when it is below that again. One socket read drains whatever the kernel queued (h2o's evloop reads
 * until EAGAIN), so upstream.c caps each upstream socket's SO_RCVBUF at a quarter of response_buffer (the kernel
 * doubles it): a read adds less than half, and held stays under response_buffer. One h2o_send hands libh2o at most
 * a quarter of response_buffer, which bounds its copies: over TLS the encrypted copy of what is in flight, over
 * HTTP/2 the connection's 80 KiB write buffer and the one being written (per connection). The client socket's
 * kernel send buffer is kernel memory (tcp_wmem), not the process's.
 */
#include "corral/serve/pass.h"

#include "corral/http/encoding.h"
#include "corral/http/http.h"
#include "corral/http/targeted_cc.h"
#include "corral/http/date_send.h"
#include "corral/fill/upstream_head.h"
#include "corral/core/log.h"
#include "corral/core/accesslog.h"
#include "corral/core/runtime.h"
#include "corral/conf/config.h"
#include "corral/fill/upstream.h"
#include "corral/fill/health.h"
#include "corral/core/histogram.h"

typedef struct st_cr_pass_t {
    h2o_generator_t super;
    h2o_req_t *req;
    cr_fetch_t fetch;
    h2o_doublebuffer_t sending;
    h2o_buffer_t **receiving; /* the fetch's input while the fetch runs */
    h2o_buffer_t *rest;       /* what was left when the fetch finished */
    h2o_iovec_t cache_status;
    cr_pass_head_cb on_head;
    const cr_config_t *cfg; /* the request's generation, retained until the pass is disposed (route lives in it) */
    const cr_route_config_t *route;
    cr_encoder_t *encoder; /* on-the-fly compression (uncached routes with compress on), or NULL */
    h2o_buffer_t *encoded; /* the encoder's output, the doublebuffer's receiving side while it runs */
    size_t pause_at;       /* limits.response_buffer / 2: held bytes at which the upstream read pauses */
    h2o_iovec_t date; /* the upstream's Date (IMF-fixdate, request pool), until the send that writes the head */
    int fetch_done;
    int had_error;
    int started; /* h2o_start_response was called */
} cr_pass_t;

/* Bytes of the response in corral's buffers, not yet taken by the client's socket (see the file comment). */
static size_t held(const cr_pass_t *self)
{
    size_t n = self->sending.buf->size;
    if (self->receiving != NULL)
        n += (*self->receiving)->size;
    return n;
}

static void do_send(cr_pass_t *self)
{
    h2o_iovec_t vec;
    h2o_send_state_t state;
    size_t cnt;

    assert(self->sending.bytes_inflight == 0);
    vec = h2o_doublebuffer_prepare(&self->sending, self->fetch_done ? &self->rest : self->receiving,
                                   CR_MIN(self->req->preferred_chunk_size, self->pause_at / 2));
    if (self->fetch_done && vec.len == self->sending.buf->size && self->rest->size == 0) {
        cnt = vec.len != 0 ? 1 : 0;
        state = self->had_error ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL;
    } else {
        if (vec.len == 0)
            return;
        cnt = 1;
        state = H2O_SEND_STATE_IN_PROGRESS;
    }
    if (self->date.base != NULL) { /* the first send with data or the end: it writes the head (date_send.h) */
        h2o_iovec_t date = self->date;
        self->date = h2o_iovec_init(NULL, 0);
        cr_send_dated(self->req, date, &vec, cnt, state);
        return;
    }
    h2o_send(self->req, &vec, cnt, state);
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    cr_pass_t *self = (void *)generator;
    h2o_doublebuffer_consume(&self->sending);
    do_send(self);
    if (!self->fetch_done && held(self) < self->pause_at)
        cr_fetch_resume(&self->fetch);
}

static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    cr_pass_t *self = (void *)generator;
    if (!self->fetch_done) {
        self->fetch_done = 1;
        cr_fetch_cancel(&self->fetch);
    }
}

static void on_dispose(void *p)
{
    cr_pass_t *self = p;
    if (!self->fetch_done) {
        self->fetch_done = 1;
        cr_fetch_cancel(&self->fetch);
    }
    h2o_doublebuffer_dispose(&self->sending);
    h2o_buffer_dispose(&self->rest);
    if (self->encoded != NULL)
        h2o_buffer_dispose(&self->encoded);
    cr_encoder_free(&self->encoder);
    cr_config_release(&self->cfg);
}

static int on_encoded(void *ctx, const void *buf, size_t len)
{
    cr_pass_t *self = ctx;
    return cr_buffer_append(&self->encoded, buf, len);
}

/*
 * On an uncached route with compress on: picks the coding for this response (200, no Content-Encoding, a listed
 * type, not smaller than min_size when the length is known, no no-transform, a client that accepts it), or -1.
 */
static int choose_stream_encoding(cr_pass_t *self, int status, const h2o_header_t *headers, size_t num_headers)
{
    const cr_route_config_t *route = self->route;
    h2o_iovec_t ae;
    size_t i;
    int chosen;

    if (route == NULL || route->cache || !route->compress || status != 200 || self->fetch.is_head)
        return -1;
    for (i = 0; i != num_headers; ++i) {
        const h2o_header_t *h = headers + i;
        cr_str_t v = cr_str(h->value.base, h->value.len);
        if (h->name == &H2O_TOKEN_CONTENT_ENCODING->buf)
            return -1;
        if (h->name == &H2O_TOKEN_CONTENT_TYPE->buf && !cr_media_type_compressible(v, route->compress_types, route->num_compress_types))
            return -1;
        if (h->name == &H2O_TOKEN_CONTENT_LENGTH->buf && h2o_strtosize(v.base, v.len) < route->compress_min_size)
            return -1;
        if (h->name == &H2O_TOKEN_CACHE_CONTROL->buf) {
            cr_cache_control_t cc;
            cr_cc_init(&cc);
            cr_cc_parse(&cc, v);
            if ((cc.flags & CR_CC_NO_TRANSFORM) != 0)
                return -1;
        }
    }
    if (h2o_find_header(&self->req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1) == -1)
        return -1;
    ae = cr_req_header(self->req, H2O_TOKEN_ACCEPT_ENCODING);
    chosen = cr_negotiate_encoding(cr_str(ae.base, ae.len), CR_ENC_BIT(CR_ENC_IDENTITY) | route->compress_encodings);
    return chosen > CR_ENC_IDENTITY ? chosen : -1;
}

void cr_relay_response_header(h2o_req_t *req, const cr_config_t *cfg, const h2o_header_t *h, h2o_iovec_t connection)
{
    h2o_iovec_t value;
    if (h->name == &H2O_TOKEN_CONTENT_LENGTH->buf || h->name == &H2O_TOKEN_DATE->buf || h->name == &H2O_TOKEN_SERVER->buf ||
        cr_is_hop_by_hop(*h->name, connection) || (cr_is_surrogate_key_header(*h->name, cfg) && !cfg->cache.keep_surrogate_key) ||
        cr_targeted_cc_hidden(cfg, cr_str(h->name->base, h->name->len)))
        return;
    value = h2o_strdup(&req->pool, h->value.base, h->value.len);
    if (h2o_iovec_is_token(h->name)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_STRUCT_FROM_MEMBER(h2o_token_t, buf, h->name), h->orig_name,
                       value.base, value.len);
    } else {
        h2o_iovec_t name = h2o_strdup(&req->pool, h->name->base, h->name->len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 0, h->orig_name, value.base, value.len);
    }
}

static int on_head(cr_fetch_t *fetch, int status, h2o_iovec_t reason, h2o_header_t *headers, size_t num_headers, int is_eos)
{
    cr_pass_t *self = fetch->data;
    h2o_req_t *req = self->req;
    char connbuf[1024];
    h2o_iovec_t connection = cr_join_header(headers, num_headers, H2O_TOKEN_CONNECTION, connbuf, sizeof(connbuf));
    size_t i;

    if (self->on_head != NULL)
        self->on_head(req, self->cfg, status, headers, num_headers);
    cr_accesslog_note_upstream(req, fetch->head_after_us - 1);
    req->res.status = status;
    req->res.reason = h2o_strdup(&req->pool, reason.base, reason.len).base;
    for (i = 0; i != num_headers; ++i) {
        if (headers[i].name == &H2O_TOKEN_CONTENT_LENGTH->buf)
            req->res.content_length = h2o_strtosize(headers[i].value.base, headers[i].value.len);
        if (headers[i].name == &H2O_TOKEN_DATE->buf && self->date.base == NULL) {
            /* the origin's Date goes to the client (normalized), not libh2o's clock: a proxy keeps it */
            uint64_t ms;
            if (cr_http_date_parse(cr_str(headers[i].value.base, headers[i].value.len), &ms) == 0) {
                char *d = h2o_mem_alloc_pool(&req->pool, CR_DATE_LEN + 1);
                cr_http_date_format(ms, d);
                self->date = h2o_iovec_init(d, CR_DATE_LEN);
            }
        }
        cr_relay_response_header(req, self->cfg, headers + i, connection);
    }
    if (self->cache_status.base != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("cache-status"), 0, NULL, self->cache_status.base,
                              self->cache_status.len);
    if (!is_eos) {
        int enc = choose_stream_encoding(self, status, headers, num_headers);
        if (enc > 0 && (self->encoder = cr_encoder_new(enc, enc == CR_ENC_BR ? self->route->brotli_quality
                                                                               : self->route->gzip_level)) != NULL) {
            cr_str_t name = cr_encoding_name(enc);
            ssize_t etag = h2o_find_header(&req->res.headers, H2O_TOKEN_ETAG, -1);
            if (etag != -1) /* another representation: a weak validator (RFC 9110 8.8.1) */
                req->res.headers.entries[etag].value =
                    h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("W/")), req->res.headers.entries[etag].value);
            req->res.content_length = SIZE_MAX;
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, name.base, name.len);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("accept-encoding"));
            h2o_buffer_init(&self->encoded, &h2o_socket_buffer_prototype);
        }
    }
    self->started = 1;
    h2o_start_response(req, &self->super);
    if (is_eos) {
        self->fetch_done = 1;
        do_send(self);
    }
    return 0;
}

static int on_body(cr_fetch_t *fetch, h2o_buffer_t **input, int is_eos)
{
    cr_pass_t *self = fetch->data;

    if (self->encoder != NULL) {
        if (cr_encoder_feed(self->encoder, (*input)->bytes, (*input)->size, is_eos, on_encoded, self) != CR_OK) {
            self->had_error = 1;
            is_eos = 1;
        }
        h2o_buffer_consume(input, (*input)->size);
        input = &self->encoded;
    }
    if (is_eos) {
        /* take the remaining bytes: the input buffer goes away with the upstream client */
        h2o_buffer_t *tmp = self->rest;
        self->rest = *input;
        *input = tmp;
        /* bytes still in the doublebuffer's receiving side were already swapped out, nothing else to move */
        self->fetch_done = 1;
        self->receiving = NULL;
    } else {
        self->receiving = input;
    }
    if (self->sending.bytes_inflight == 0)
        do_send(self);
    if (!is_eos && held(self) >= self->pause_at)
        cr_fetch_pause(fetch);
    return self->had_error ? -1 : 0;
}

void cr_send_unavailable(h2o_req_t *req, const char *code, const char *msg)
{
    uint64_t s = strcmp(code, "upstream_down") == 0 ? (cr_health_retry_after_ms(cr_monotonic_us() / 1000) + 999) / 1000 : 1;
    char *v = h2o_mem_alloc_pool(&req->pool, 8);
    int n = snprintf(v, 8, "%u", (unsigned)(s < 1 ? 1 : s > 3600 ? 3600 : s));

    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v, (size_t)n);
    cr_send_json_error(req, 503, "Service Unavailable", code, msg);
}

static void on_error(cr_fetch_t *fetch, cr_fetch_error_t err, const char *msg, int head_seen)
{
    cr_pass_t *self = fetch->data;
    h2o_req_t *req = self->req;
    cr_thread_t *t = cr_thread_of(req);

    self->fetch_done = 1;
    self->receiving = NULL;
    if (err == CR_FETCH_ERR_BUSY) { /* nothing was sent: counted (corral_upstream_busy_total), not an upstream error */
        cr_send_unavailable(req, "upstream_busy", msg);
        return;
    }
    if (err == CR_FETCH_ERR_SHED || err == CR_FETCH_ERR_DOWN) { /* nothing was sent: fail fast, counted, not logged */
        if (err == CR_FETCH_ERR_SHED)
            CR_STAT_INC(t->stats, upstream_shed);
        else
            CR_STAT_INC(t->stats, upstream_fail_fast);
        cr_send_unavailable(req, err == CR_FETCH_ERR_SHED ? "upstream_shed" : "upstream_down", msg);
        return;
    }
    CR_STAT_INC(t->stats, upstream_errors);
    cr_log_error("upstream %s for %.*s %.*s: %s", err == CR_FETCH_ERR_TIMEOUT ? "timeout" : "error", (int)req->input.method.len,
                 req->input.method.base, (int)req->input.path.len, req->input.path.base, msg);
    if (!self->started) {
        if (err == CR_FETCH_ERR_TIMEOUT)
            cr_send_json_error(req, 504, "Gateway Timeout", "upstream_timeout", msg);
        else
            cr_send_json_error(req, 502, "Bad Gateway", err == CR_FETCH_ERR_CONNECT ? "upstream_unreachable" : "upstream_error",
                               msg);
        return;
    }
    self->had_error = 1;
    if (self->sending.bytes_inflight == 0)
        do_send(self);
}

static const cr_fetch_callbacks_t pass_callbacks = {on_head, on_body, on_error};

void cr_pass_start(h2o_req_t *req, const cr_config_t *cfg, const cr_route_config_t *route, h2o_iovec_t cache_status,
                   cr_pass_head_cb on_head_cb)
{
    cr_thread_t *t = cr_thread_of(req);
    cr_pass_t *self = h2o_mem_alloc_shared(&req->pool, sizeof(*self), on_dispose);
    h2o_iovec_t m = req->input.method;

    memset(self, 0, sizeof(*self));
    self->super.proceed = on_proceed;
    self->super.stop = on_stop;
    self->req = req;
    self->cache_status = cache_status;
    self->on_head = on_head_cb;
    self->cfg = cr_config_retain(cfg); /* the caller's may be borrowed (the thread's): the pass outlives the call */
    self->route = route;
    self->pause_at = CR_MAX(cfg->limits.response_buffer, (size_t)16384) / 2;
    h2o_doublebuffer_init(&self->sending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&self->rest, &h2o_socket_buffer_prototype);

    self->fetch.cb = &pass_callbacks;
    self->fetch.data = self;
    self->fetch.reqbufs[0] = cr_build_upstream_head(req, NULL);
    self->fetch.num_reqbufs = 1;
    if (req->entity.base != NULL && req->entity.len != 0) {
        self->fetch.reqbufs[1] = req->entity;
        self->fetch.num_reqbufs = 2;
    }
    self->fetch.is_head = h2o_memis(m.base, m.len, H2O_STRLIT("HEAD"));
    self->fetch.is_idempotent = self->fetch.is_head || h2o_memis(m.base, m.len, H2O_STRLIT("GET")) ||
                                h2o_memis(m.base, m.len, H2O_STRLIT("OPTIONS"));
    CR_STAT_INC(t->stats, passes);
    CR_STAT_INC(t->stats, upstream_requests);
    cr_fetch_start(t->upstream, &self->fetch);
}
