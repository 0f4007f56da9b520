/*
 * respond_range.c: 206 and 416 answers from a stored complete response (see respond_range.h); the parsing and the
 * multipart text are http/range.c's.
 *
 * Invariants: runs on the request's worker thread, called by cr_respond_object only for a GET of a 200 object
 * whose request carries Range (requests without Range never get here). Every range lies within the stored body
 * (range.c), and the body is sent by reference: the request holds the object until it is disposed (respond.c), so
 * a 206 costs a few pool allocations (the part heads of a multipart body), never a copy of the body. Bounded: at most
 * CR_RANGE_MAX_PARTS parts, so at most 2 * 16 + 1 buffers in the one h2o_send. No lock, no syscall.
 * Choices: Range on more than one field line is ignored (it is not a list field); a multipart body is sent only when
 * it is smaller than the whole body and only for an identity representation (a Content-Encoding on a multipart
 * message would name the multipart body's coding, not its parts'); otherwise the whole 200 goes, as RFC 9110 14.2
 * allows. If-Range is compared with the validators of the representation sent (the coding's own ETag).
 */
#include "corral/serve/respond_range.h"

#include "corral/http/date_send.h"
#include "corral/http/http.h"
#include "corral/http/range.h"

static __thread uint64_t boundary_counter;

/* The stored Date (IMF-fixdate, objbuild.c), which a 206 sends as its Date like every answer from the cache
 * (http/date_send.h), or {NULL,0}. */
static h2o_iovec_t stored_date(const cr_object_t *obj)
{
    cr_str_t d = cr_object_find_header(obj, H2O_STRLIT("date"));
    return h2o_iovec_init(d.base, d.len);
}

/* The response's Date for If-Range's strength test: the stored Date when the object keeps one, else when corral
 * received the response (never earlier than the origin's Date). */
static uint64_t object_date_ms(const cr_object_t *obj)
{
    h2o_iovec_t d = stored_date(obj);
    uint64_t ms;
    if (d.base != NULL && cr_http_date_parse(cr_str(d.base, d.len), &ms) == 0)
        return ms;
    return obj->response_time_ms;
}

static void send_unsatisfiable(h2o_req_t *req, uint64_t len, h2o_iovec_t cache_status)
{
    char *cr = h2o_mem_alloc_pool(&req->pool, 64);

    req->res.headers = (h2o_headers_t){NULL, 0, 0}; /* none of the whole response's: this is not that representation */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr, cr_range_content_range(cr, NULL, len));
    if (cache_status.base != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("cache-status"), 0, NULL, cache_status.base,
                              cache_status.len);
    cr_send_json_error(req, 416, "Range Not Satisfiable", "range_not_satisfiable",
                       "no range of the Range header overlaps the representation");
}

/* multipart/byteranges: 0 when the whole body would be smaller (the caller sends it) */
static int send_multipart(h2o_req_t *req, h2o_generator_t *generator, h2o_iovec_t body, const cr_byte_range_t *r, size_t n,
                          h2o_iovec_t date)
{
    static const char mp[] = "multipart/byteranges; boundary=";
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    h2o_iovec_t ctv = ct != -1 ? req->res.headers.entries[ct].value : h2o_iovec_init(NULL, 0), *bufs, mct;
    cr_str_t ctype = cr_str(ctv.base, ctv.len), b;
    char *boundary;
    uint64_t total = 0;
    size_t i;

    bufs = h2o_mem_alloc_pool(&req->pool, sizeof(*bufs) * (2 * n + 1));
    mct.len = sizeof(mp) - 1 + CR_RANGE_BOUNDARY_LEN;
    mct.base = h2o_mem_alloc_pool(&req->pool, mct.len);
    memcpy(mct.base, mp, sizeof(mp) - 1);
    boundary = mct.base + sizeof(mp) - 1; /* the boundary is written once, inside the Content-Type value */
    b = cr_str(boundary, CR_RANGE_BOUNDARY_LEN);

    cr_range_boundary(boundary, ++boundary_counter ^ ((uint64_t)(uintptr_t)req << 16) ^ h2o_now(req->conn->ctx->loop));
    for (i = 0; i != n; ++i) {
        char *head = h2o_mem_alloc_pool(&req->pool, CR_RANGE_PART_HEAD_FIXED + b.len + ctype.len);
        bufs[2 * i] = h2o_iovec_init(head, cr_range_part_head(head, b, ctype, r + i, body.len));
        bufs[2 * i + 1] = h2o_iovec_init(body.base + r[i].first, (size_t)(r[i].last - r[i].first + 1));
        total += bufs[2 * i].len + bufs[2 * i + 1].len;
    }
    bufs[2 * n].base = h2o_mem_alloc_pool(&req->pool, b.len + 8);
    bufs[2 * n].len = cr_range_multipart_tail(bufs[2 * n].base, b);
    total += bufs[2 * n].len;
    if (total >= body.len)
        return 0;

    if (ct != -1)
        req->res.headers.entries[ct].value = mct;
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, mct.base, mct.len);
    req->res.status = 206;
    req->res.reason = "Partial Content";
    req->res.content_length = (size_t)total;
    h2o_start_response(req, generator);
    cr_send_dated(req, date, bufs, 2 * n + 1, H2O_SEND_STATE_FINAL);
    return 1;
}

int cr_respond_range(h2o_req_t *req, const cr_object_t *obj, h2o_iovec_t body, h2o_iovec_t etag, int coded,
                     h2o_iovec_t cache_status)
{
    static h2o_generator_t generator = {NULL, NULL}; /* the whole answer goes in one h2o_send */
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_RANGE, -1);
    cr_byte_range_t r[CR_RANGE_MAX_PARTS];
    h2o_iovec_t ifr, slice;
    size_t n;
    char *cr;

    if (at == -1 || obj->status != 200 || !h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("GET")))
        return 0;
    if (h2o_find_header(&req->headers, H2O_TOKEN_RANGE, at) != -1)
        return 0; /* Range on two lines is no valid Range: ignored */
    if ((ifr = cr_req_header(req, H2O_TOKEN_IF_RANGE)).base != NULL &&
        !cr_if_range_holds(cr_str(ifr.base, ifr.len), cr_str(etag.base, etag.len),
                           cr_object_find_header(obj, H2O_STRLIT("last-modified")), object_date_ms(obj)))
        return 0; /* the client's copy is another one: it gets the whole representation (RFC 9110 13.1.5) */

    switch (cr_range_parse(cr_str(req->headers.entries[at].value.base, req->headers.entries[at].value.len), body.len, r,
                           CR_RANGE_MAX_PARTS, &n)) {
    case CR_RANGE_WHOLE:
        return 0;
    case CR_RANGE_UNSATISFIABLE:
        send_unsatisfiable(req, body.len, cache_status);
        return 1;
    case CR_RANGE_PARTIAL:
        break;
    }
    if (n > 1)
        return !coded && send_multipart(req, &generator, body, r, n, stored_date(obj));

    cr = h2o_mem_alloc_pool(&req->pool, 64);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr, cr_range_content_range(cr, r, body.len));
    slice = h2o_iovec_init(body.base + r[0].first, (size_t)(r[0].last - r[0].first + 1));
    req->res.status = 206;
    req->res.reason = "Partial Content";
    req->res.content_length = slice.len;
    h2o_start_response(req, &generator);
    cr_send_dated(req, stored_date(obj), &slice, 1, H2O_SEND_STATE_FINAL);
    return 1;
}
