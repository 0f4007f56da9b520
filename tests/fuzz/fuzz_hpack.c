/*
 * fuzz_hpack.c: corral's bounded HTTP/2 header-block decoder (hpack_bound.c) against libh2o's own.
 *
 * The target links libcorral's hpack_bound.o, so h2o_hpack_parse_headers here is corral's; libh2o's original is found
 * with dlsym(RTLD_NEXT), as hpack_bound.c does. Every block is decoded twice, on two dynamic tables that start as
 * libh2o's HTTP/2 connection sets its input table up (hpack_capacity = hpack_max_capacity = 4096): once by corral's
 * function into one request, once by libh2o's into another. The table is a type libh2o keeps in
 * h2o/http2_internal.h, which cannot be included (it needs khash.h, which Debian does not ship): its 2.2.5 layout is
 * copied below, completing the incomplete struct of hpack_bound.h.
 *
 * Input: one byte L, the bound (limits.request_headers = 1024 + 16 * L for L < 128, else 1024 + 256 * (L - 128): within
 * config.c's range, small so that the over-the-bound path is reached often, large enough for blocks of several
 * pieces under it), then blocks, each one flags byte F, a 2-byte big-endian length and that many
 * bytes (fewer at the end of the input). F & 1: the block is the trailers of the previous block's request (decoded
 * into the same request with no pseudo-header map and no digests, as libh2o's handle_trailing_headers does);
 * otherwise it starts a new request (pseudo-header map, cache digests, as handle_incoming_request does).
 *
 * Properties, per block, when libh2o decodes it without a hard error (0 or the soft INVALID_HEADER_CHAR), with T the
 * request's header list as hpack_bound.c counts it (name + value + 32 per field kept, pseudo-headers included, 32 per
 * field libh2o drops, Host and content-length, except for a block of at most 64 bytes, which is counted after one
 * call without those):
 *  - T <= bound: corral's request is not marked and equals libh2o's: return code, err_desc, content_length, the
 *    pseudo-header map, the pseudo-headers, the header list (names, token identity, values, in order), the digests;
 *  - T > bound: corral returns no hard error, its request ends with the marker (cr_hpack_oversized) and what precedes
 *    the marker is a prefix of libh2o's list, its pseudo-headers a subset of libh2o's (each equal), it was not cut
 *    before the bound (what it kept, plus 32 for every field of the request libh2o dropped, is over the bound), and
 *    what it kept is at most one piece (64 fields) beyond the bound: the pseudo-headers and all but the last 64 kept
 *    fields add up to at most the bound;
 *  - in both cases the two dynamic tables are identical afterwards: num_entries, hpack_size, hpack_capacity,
 *    hpack_max_capacity and every entry (name, token identity, value, recorded soft error), so later blocks decode
 *    the same.
 * When libh2o reports a hard error (which closes the connection): if corral's request is not marked, corral reports
 * the same code and err_desc with the same partial list; corral never reports a hard error where libh2o has none.
 * content_length is not compared then (nothing reads it; for a bad content-length in a later piece libh2o's one call
 * leaves SIZE_MAX where corral keeps an earlier piece's value). Corral may miss a hard error libh2o finds in a
 * representation past the bound that corral only scans (an indexed field, a literal without indexing: an invalid
 * index, a bad Huffman code, an upper-case name, a bad content-length or connection-specific field there), or report
 * another one found later in a representation that changes the table: the request is answered 431 and nothing of it
 * is used, and the table is still decoded exactly (the representations skipped do not change it); accepted, by
 * design. Then only the prefix is checked, and since libh2o's connection is over (its table stopped mid-block), the
 * input's later blocks are not compared.
 */
#include "fuzz_util.h"

#include <dlfcn.h>
#include <h2o.h>
#include <h2o/cache_digests.h>

#include "corral/http/hpack_bound.h"

/* libh2o 2.2.5 h2o/http2_internal.h (see the top comment) */
struct st_h2o_hpack_header_table_t {
    struct st_fz_hpack_entry_t {
        h2o_iovec_t *name;
        h2o_iovec_t *value;
        const char *err_desc;
    } *entries;
    size_t num_entries, entry_capacity, entry_start_index;
    size_t hpack_size, hpack_capacity, hpack_max_capacity;
};
typedef struct st_h2o_hpack_header_table_t fz_table_t;
void h2o_hpack_dispose_header_table(fz_table_t *header_table);
#define FZ_ERROR_INVALID_HEADER_CHAR -254 /* H2O_HTTP2_ERROR_INVALID_HEADER_CHAR, also in http2_internal.h */
#define FZ_PIECE_FIELDS 64                /* hpack_bound.c's CR_PIECE_FIELDS */

typedef int (*fz_parse_fn)(h2o_req_t *, fz_table_t *, const uint8_t *, size_t, int *, size_t *, h2o_cache_digests_t **,
                           const char **);

/* One side of the comparison: the connection's input table and the current request. */
typedef struct st_fz_side_t {
    fz_table_t table;
    h2o_req_t req;
    h2o_cache_digests_t *digests;
    int in_request;
    size_t dropped; /* libh2o's side: fields of the request libh2o did not keep (Host, content-length) */
} fz_side_t;

static int is_hard(int ret)
{
    return ret != 0 && ret != FZ_ERROR_INVALID_HEADER_CHAR;
}

static int same_bytes(const h2o_iovec_t *a, const h2o_iovec_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->base, b->base, a->len) == 0);
}

/* Same name: the same token, or both not tokens with the same bytes. */
static int same_name(const h2o_iovec_t *a, const h2o_iovec_t *b)
{
    if (h2o_iovec_is_token(a) || h2o_iovec_is_token(b))
        return a == b;
    return same_bytes(a, b);
}

static int same_optional(const h2o_iovec_t *a, const h2o_iovec_t *b)
{
    return (a->base == NULL) == (b->base == NULL) && (a->base == NULL || same_bytes(a, b));
}

static const struct st_fz_hpack_entry_t *table_entry(const fz_table_t *t, size_t index)
{
    return t->entries + (index + t->entry_start_index) % t->entry_capacity;
}

static void check_same_table(const fz_table_t *a, const fz_table_t *b)
{
    size_t i;
    FZ_CHECK(a->num_entries == b->num_entries);
    FZ_CHECK(a->hpack_size == b->hpack_size);
    FZ_CHECK(a->hpack_capacity == b->hpack_capacity);
    FZ_CHECK(a->hpack_max_capacity == b->hpack_max_capacity);
    for (i = 0; i != a->num_entries; ++i) {
        const struct st_fz_hpack_entry_t *x = table_entry(a, i), *y = table_entry(b, i);
        FZ_CHECK(same_name(x->name, y->name));
        FZ_CHECK(same_bytes(x->value, y->value));
        FZ_CHECK(x->err_desc == y->err_desc);
    }
}

static size_t field_bytes(size_t name_len, size_t value_len)
{
    return name_len + value_len + CR_HEADER_FIELD_OVERHEAD;
}

/* The pseudo-headers a request holds: how many, and their bytes as hpack_bound.c counts them. */
static size_t pseudo_bytes(const h2o_req_t *req, size_t *count)
{
    size_t bytes = 0;
    *count = 0;
    if (req->input.method.base != NULL)
        bytes += field_bytes(sizeof(":method") - 1, req->input.method.len), ++*count;
    if (req->input.path.base != NULL)
        bytes += field_bytes(sizeof(":path") - 1, req->input.path.len), ++*count;
    if (req->input.authority.base != NULL)
        bytes += field_bytes(sizeof(":authority") - 1, req->input.authority.len), ++*count;
    if (req->input.scheme != NULL)
        bytes += field_bytes(sizeof(":scheme") - 1, req->input.scheme->name.len), ++*count;
    return bytes;
}

static size_t list_bytes(const h2o_headers_t *headers, size_t from, size_t to)
{
    size_t bytes = 0, i;
    for (i = from; i < to; ++i)
        bytes += field_bytes(headers->entries[i].name->len, headers->entries[i].value.len);
    return bytes;
}

/* An HPACK integer (RFC 7541 5.1; at most 4 octets after the prefix, as libh2o reads it); -1 when it does not end. */
static int64_t read_int(const uint8_t **p, const uint8_t *end, unsigned prefix_bits)
{
    int64_t value, max = (1 << prefix_bits) - 1;
    unsigned shift, octets = 0;
    if (*p >= end)
        return -1;
    if ((value = *(*p)++ & max) != max)
        return value;
    for (shift = 0; *p < end && octets != 4; shift += 7, ++octets) {
        uint8_t b = *(*p)++;
        value += (int64_t)(b & 127) << shift;
        if ((b & 128) == 0)
            return value;
    }
    return -1;
}

static int skip_string(const uint8_t **p, const uint8_t *end)
{
    int64_t len = read_int(p, end, 7);
    if (len < 0 || len > end - *p)
        return 0;
    *p += len;
    return 1;
}

/* How many field representations a block holds (size updates are not fields). Only used on a block libh2o decoded
 * without a hard error, where everything parses. */
static size_t count_fields(const uint8_t *p, const uint8_t *end)
{
    size_t n = 0;
    while (p < end) {
        uint8_t b = *p;
        if (b >= 0x80) {
            if (read_int(&p, end, 7) < 0)
                break;
        } else if (b >= 0x20 && b < 0x40) {
            if (read_int(&p, end, 5) < 0)
                break;
            continue;
        } else {
            unsigned prefix = b >= 0x40 ? 6 : 4;
            int64_t index = read_int(&p, end, prefix);
            if (index < 0 || (index == 0 && !skip_string(&p, end)) || !skip_string(&p, end))
                break;
        }
        ++n;
    }
    return n;
}

static void start_request(fz_side_t *s)
{
    h2o_init_request(&s->req, NULL, NULL);
    s->digests = NULL;
    s->in_request = 1;
    s->dropped = 0;
}

static void end_request(fz_side_t *s)
{
    if (!s->in_request)
        return;
    if (s->digests != NULL)
        h2o_cache_digests_destroy(s->digests);
    h2o_mem_clear_pool(&s->req.pool);
    s->in_request = 0;
}

static void check_same_digests(const h2o_cache_digests_t *a, const h2o_cache_digests_t *b)
{
    FZ_CHECK((a == NULL) == (b == NULL));
    if (a != NULL) {
        FZ_CHECK(a->fresh.url_only.size == b->fresh.url_only.size);
        FZ_CHECK(a->fresh.url_and_etag.size == b->fresh.url_and_etag.size);
        FZ_CHECK(a->fresh.complete == b->fresh.complete);
    }
}

/* corral's request (marked or not) against libh2o's: its pseudo-headers are libh2o's or absent, and its first `kept`
 * headers are libh2o's first `kept`. */
static void check_prefix(const h2o_req_t *c, const h2o_req_t *l, size_t kept)
{
    size_t i;
    FZ_CHECK(c->input.method.base == NULL || same_bytes(&c->input.method, &l->input.method));
    FZ_CHECK(c->input.path.base == NULL || same_bytes(&c->input.path, &l->input.path));
    FZ_CHECK(c->input.authority.base == NULL || same_bytes(&c->input.authority, &l->input.authority));
    FZ_CHECK(c->input.scheme == NULL || c->input.scheme == l->input.scheme);
    FZ_CHECK(kept <= l->headers.size);
    for (i = 0; i != kept; ++i) {
        FZ_CHECK(same_name(c->headers.entries[i].name, l->headers.entries[i].name));
        FZ_CHECK(same_bytes(&c->headers.entries[i].value, &l->headers.entries[i].value));
    }
}

static void check_same_request(const h2o_req_t *c, const h2o_req_t *l)
{
    FZ_CHECK(!cr_hpack_oversized(c));
    FZ_CHECK(c->headers.size == l->headers.size);
    FZ_CHECK(same_optional(&c->input.method, &l->input.method));
    FZ_CHECK(same_optional(&c->input.path, &l->input.path));
    FZ_CHECK(same_optional(&c->input.authority, &l->input.authority));
    FZ_CHECK(c->input.scheme == l->input.scheme);
    check_prefix(c, l, c->headers.size);
}

/* Decodes one block on both sides and checks the properties; returns 0 when the connection is over. */
static int one_block(fz_side_t *corral, fz_side_t *libh2o, fz_parse_fn libh2o_parse, const uint8_t *block, size_t len,
                     int trailers, size_t limit)
{
    int cmap = 0, lmap = 0, cret, lret, was_marked;
    size_t clen = 12345, llen = 12345, before, corral_before, npseudo, t, kept;
    const char *cerr = NULL, *lerr = NULL;

    if (!trailers || !corral->in_request) {
        end_request(corral);
        end_request(libh2o);
        start_request(corral);
        start_request(libh2o);
        trailers = 0;
    }
    was_marked = cr_hpack_oversized(&corral->req);
    before = libh2o->req.headers.size;
    corral_before = corral->req.headers.size;

    cret = h2o_hpack_parse_headers(&corral->req, &corral->table, block, len, trailers ? NULL : &cmap, &clen,
                                   trailers ? NULL : &corral->digests, &cerr);
    lret = libh2o_parse(&libh2o->req, &libh2o->table, block, len, trailers ? NULL : &lmap, &llen,
                        trailers ? NULL : &libh2o->digests, &lerr);

    FZ_CHECK(!is_hard(cret) || is_hard(lret)); /* corral makes up no hard error */
    if (is_hard(lret)) {
        if (!cr_hpack_oversized(&corral->req)) {
            FZ_CHECK(cret == lret);
            FZ_CHECK(cerr == lerr);
            check_same_request(&corral->req, &libh2o->req);
        } else {
            check_prefix(&corral->req, &libh2o->req, corral->req.headers.size - 1);
        }
        return 0;
    }

    /* T as hpack_bound.c counts it (the request's earlier list, if trailers, included) */
    t = pseudo_bytes(&libh2o->req, &npseudo) + list_bytes(&libh2o->req.headers, 0, libh2o->req.headers.size);
    {
        size_t fields = count_fields(block, block + len), new_kept = libh2o->req.headers.size - before;
        if (!trailers)
            new_kept += npseudo;
        FZ_CHECK(fields >= new_kept);
        libh2o->dropped += fields - new_kept;
        if (len > FZ_PIECE_FIELDS || was_marked)
            t += (fields - new_kept) * CR_HEADER_FIELD_OVERHEAD;
    }

    if (was_marked) {
        /* trailers of a request already cut short: nothing more is kept, the marker stays last */
        FZ_CHECK(cr_hpack_oversized(&corral->req));
        FZ_CHECK(corral->req.headers.size == corral_before);
        FZ_CHECK(!is_hard(cret));
    } else if (t <= limit) {
        FZ_CHECK(cret == lret);
        FZ_CHECK(cerr == lerr);
        FZ_CHECK(clen == llen);
        FZ_CHECK(cmap == lmap);
        check_same_request(&corral->req, &libh2o->req);
        check_same_digests(corral->digests, libh2o->digests);
    } else {
        FZ_CHECK(!is_hard(cret));
        FZ_CHECK(cr_hpack_oversized(&corral->req));
        FZ_CHECK((cmap & ~lmap) == 0);
        kept = corral->req.headers.size - 1;
        check_prefix(&corral->req, &libh2o->req, kept);
        /* and not cut before the bound: what it kept and every field dropped (at most) went over it */
        FZ_CHECK(pseudo_bytes(&corral->req, &npseudo) + list_bytes(&corral->req.headers, 0, kept) +
                     libh2o->dropped * CR_HEADER_FIELD_OVERHEAD >
                 limit);
        if (kept > FZ_PIECE_FIELDS) {
            /* the last piece holds at most 64 fields and holds no pseudo-header then (they come first, in the
             * first piece of the head); everything before it was within the bound */
            FZ_CHECK(pseudo_bytes(&corral->req, &npseudo) + list_bytes(&corral->req.headers, 0, kept - FZ_PIECE_FIELDS) <=
                     limit);
        }
    }
    check_same_table(&corral->table, &libh2o->table);
    return 1;
}

static void init_side(fz_side_t *s)
{
    memset(s, 0, sizeof(*s));
    s->table.hpack_capacity = s->table.hpack_max_capacity = 4096; /* H2O_HTTP2_SETTINGS_DEFAULT.header_table_size */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_parse_fn libh2o_parse;
    fz_input_t in = {data, size};
    fz_side_t corral, libh2o;
    size_t limit;

    if (libh2o_parse == NULL) {
        libh2o_parse = (fz_parse_fn)dlsym(RTLD_NEXT, "h2o_hpack_parse_headers");
        FZ_CHECK(libh2o_parse != NULL && libh2o_parse != (fz_parse_fn)h2o_hpack_parse_headers);
    }
    limit = fz_byte(&in);
    limit = (limit & 0x80) != 0 ? 1024 + (limit & 0x7f) * 256 : 1024 + limit * 16;
    cr_hpack_bound_set_limit(limit);

    init_side(&corral);
    init_side(&libh2o);
    while (in.len != 0) {
        unsigned flags = fz_byte(&in);
        size_t len = fz_byte(&in) << 8;
        const uint8_t *block;
        len |= fz_byte(&in);
        if (len > in.len)
            len = in.len;
        block = in.p;
        in.p += len;
        in.len -= len;
        if (!one_block(&corral, &libh2o, libh2o_parse, block, len, flags & 1, limit))
            break;
    }
    end_request(&corral);
    end_request(&libh2o);
    h2o_hpack_dispose_header_table(&corral.table);
    h2o_hpack_dispose_header_table(&libh2o.table);
    return 0;
}
