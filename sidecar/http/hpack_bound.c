/*
 * hpack_bound.c: bounds the header list libh2o decodes from one HTTP/2 header block (the HPACK bomb).
 *
 * The attack: one HEADERS block (with CONTINUATION, up to libh2o's H2O_MAX_REQLEN, about 408 KiB) puts a 4000-byte
 * field in the dynamic table and refers to it at one byte per reference. libh2o 2.2.5's h2o_hpack_parse_headers
 * shares the value (no copy) but adds one h2o_header_t, one vector slot and one shared-link entry in the request's
 * pool per reference (about 100 bytes), and everything downstream that walks or copies the list (key building,
 * upstream heads) multiplies the 4000 bytes: 104 KB sent gave 1.6 GB RSS. Nothing in libh2o bounds the list.
 *
 * Mechanism: libh2o-evloop calls h2o_hpack_parse_headers through its PLT (from lib/http2/connection.c, for request
 * heads and trailers), so this definition, linked into the corral binary, takes the place of libh2o's exactly as
 * h1_interpose.c's phr_* do (h1_interpose.c's start-up check covers this name too). It cuts the block into pieces of
 * at most CR_PIECE_FIELDS field representations (a normal request is one piece: one call) at representation
 * boundaries, decodes each with libh2o's own function (found with dlsym(RTLD_NEXT)), and adds up what each piece added
 * to the request: name + value + CR_HEADER_FIELD_OVERHEAD per field, pseudo-headers included, and the overhead alone
 * for a field libh2o does not keep (Host, content-length). Once that passes the bound (`limits.request_headers`, given
 * by cr_hpack_bound_set_limit; 64 KiB, the key's default, until then), the request
 * gets the marker field (hpack_bound.h) and keeps nothing more. The rest of the block still goes through libh2o's
 * decoder where it changes the dynamic table (literals with incremental indexing, size updates), into a scratch
 * request whose pool is cleared after every piece, or the connection's later blocks would decode wrongly; the
 * representations that change nothing (indexed fields, literals without indexing: the bomb's million references) are
 * only scanned, a few instructions each. The handler answers a marked request 431 before it reads anything else of
 * it. What a request can hold is the bound plus one piece. A block of at most CR_PIECE_FIELDS bytes (a repeat
 * request, mostly table references) is one piece by its length alone: it is decoded in one call, without the scan.
 *
 * libh2o's contract is kept: the same return codes (0, H2O_HTTP2_ERROR_INVALID_HEADER_CHAR when a soft error was
 * seen, any other code at once on the first hard error), *content_length set from the last content-length field
 * (SIZE_MAX when none), and a pseudo-header after a regular field is still a protocol error across pieces (each piece
 * after the first regular field is decoded with a NULL pseudo-header map). The boundary scanner reads integers and
 * string lengths exactly as libh2o's decode_int/decode_string do; where it cannot parse, the rest of the block goes to
 * libh2o as one piece and libh2o reports the error.
 *
 * No shared state but the resolved function pointer (written once before main) and the bound (an atomic, set at start
 * and read once per header block with a relaxed load: a plain load on x86-64); thread-safe. Reads no cr_rt.
 */
#include "corral/http/hpack_bound.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#define CR_PIECE_FIELDS 64
#define CR_DEFAULT_HEADER_LIMIT (64 << 10)

typedef int (*cr_hpack_parse_fn)(h2o_req_t *, struct st_h2o_hpack_header_table_t *, const uint8_t *, size_t, int *, size_t *,
                                 h2o_cache_digests_t **, const char **);

h2o_iovec_t cr_hpack_oversize_name = {H2O_STRLIT("Corral-Request-Headers-Too-Large")};

static cr_hpack_parse_fn libh2o_parse;

static _Atomic size_t header_limit = CR_DEFAULT_HEADER_LIMIT;

void cr_hpack_bound_set_limit(size_t bytes)
{
    atomic_store_explicit(&header_limit, bytes, memory_order_relaxed);
}

__attribute__((constructor)) static void resolve_libh2o_parse(void)
{
    libh2o_parse = (cr_hpack_parse_fn)dlsym(RTLD_NEXT, "h2o_hpack_parse_headers");
}

/* An HPACK integer with the given prefix as libh2o's decode_int reads it (at most 4 octets after the prefix). Returns
 * the position after it, or NULL when it is truncated or too long. */
static const uint8_t *scan_int(const uint8_t *p, const uint8_t *end, unsigned prefix_bits, int32_t *value)
{
    int32_t prefix_max = (1 << prefix_bits) - 1, mult;
    const uint8_t *limit;

    if (p >= end)
        return NULL;
    *value = *p++ & prefix_max;
    if (*value != prefix_max)
        return p;
    limit = end - p > 4 ? p + 4 : end;
    for (mult = 1;; mult *= 128) {
        if (p >= limit)
            return NULL;
        *value += (*p & 127) * mult;
        if ((*p++ & 128) == 0)
            return p;
    }
}

static const uint8_t *scan_string(const uint8_t *p, const uint8_t *end)
{
    int32_t len;
    if ((p = scan_int(p, end, 7, &len)) == NULL || len > end - p)
        return NULL;
    return p + len;
}

/* The end of the field representation at p (with any dynamic table size updates before it, which libh2o reads as
 * part of the next field), or NULL when it does not parse. */
static const uint8_t *scan_field(const uint8_t *p, const uint8_t *end)
{
    int32_t index;
    for (;;) {
        if (p >= end)
            return NULL;
        if (*p >= 128)
            return scan_int(p, end, 7, &index); /* indexed field */
        if (*p >= 64 || *p < 32)
            break;
        if ((p = scan_int(p, end, 5, &index)) == NULL) /* size update */
            return NULL;
    }
    if ((*p >= 64 && *p != 64) || (*p < 32 && (*p & 0xf) != 0)) {
        if ((p = scan_int(p, end, *p >= 64 ? 6 : 4, &index)) == NULL) /* indexed name */
            return NULL;
    } else if ((p = scan_string(p + 1, end)) == NULL) { /* literal name */
        return NULL;
    }
    return scan_string(p, end); /* value */
}

/* The end of the next piece: at most CR_PIECE_FIELDS representations, or the rest of the block when a
 * representation does not parse. *fields is how many fields the piece holds (an unparsed rest counts as one). */
static const uint8_t *next_piece(const uint8_t *p, const uint8_t *end, size_t *fields)
{
    const uint8_t *q;
    for (*fields = 0; *fields != CR_PIECE_FIELDS && p != end; ++*fields) {
        if ((q = scan_field(p, end)) == NULL) {
            ++*fields;
            return end;
        }
        p = q;
    }
    return p;
}

/* After the bound: the next piece of representations that change the dynamic table (literals with incremental
 * indexing, size updates), skipping those that do not (indexed fields, literals without indexing): libh2o would only
 * add them to a list that is thrown away. *src moves to the piece's start; returns its end (== *src at the end). A
 * representation that does not parse starts a piece holding the rest, for libh2o to report. */
static const uint8_t *next_table_piece(const uint8_t **src, const uint8_t *end)
{
    const uint8_t *p = *src, *q;
    size_t n = 0;
    while (p != end && (*p >= 128 || *p < 32)) {
        if (*p >= 128 && *p != 255) { /* the common case, the bomb's: one-byte indexed fields, 8 at a time */
            ++p;
            while (end - p >= 8) {
                uint64_t w, ones = 0x0101010101010101u, highs = 0x8080808080808080u;
                memcpy(&w, p, 8);
                if ((w & highs) != highs || (((~w) - ones) & w & highs) != 0) /* a byte < 128, or 255 (~w has a 0) */
                    break;
                p += 8;
            }
            continue;
        }
        if ((q = scan_field(p, end)) == NULL) {
            *src = p;
            return end;
        }
        p = q;
    }
    *src = p;
    while (p != end && n++ != CR_PIECE_FIELDS && *p >= 32 && *p < 128) {
        if ((q = scan_field(p, end)) == NULL)
            return end;
        p = q;
    }
    return p;
}

typedef struct st_cr_pseudo_seen_t {
    const char *method, *path, *authority;
    const h2o_url_scheme_t *scheme;
} cr_pseudo_seen_t;

static void pseudo_snapshot(const h2o_req_t *req, cr_pseudo_seen_t *s)
{
    s->method = req->input.method.base;
    s->path = req->input.path.base;
    s->authority = req->input.authority.base;
    s->scheme = req->input.scheme;
}

/* Bytes (RFC 9113 accounting) of the pseudo-headers that appeared since the snapshot; *count says how many. */
static size_t pseudo_added(const h2o_req_t *req, const cr_pseudo_seen_t *s, size_t *count)
{
    size_t bytes = 0;
    *count = 0;
    if (s->method == NULL && req->input.method.base != NULL)
        bytes += sizeof(":method") - 1 + req->input.method.len + CR_HEADER_FIELD_OVERHEAD, ++*count;
    if (s->path == NULL && req->input.path.base != NULL)
        bytes += sizeof(":path") - 1 + req->input.path.len + CR_HEADER_FIELD_OVERHEAD, ++*count;
    if (s->authority == NULL && req->input.authority.base != NULL)
        bytes += sizeof(":authority") - 1 + req->input.authority.len + CR_HEADER_FIELD_OVERHEAD, ++*count;
    if (s->scheme == NULL && req->input.scheme != NULL)
        bytes += sizeof(":scheme") - 1 + req->input.scheme->name.len + CR_HEADER_FIELD_OVERHEAD, ++*count;
    return bytes;
}

static void add_marker(h2o_req_t *req)
{
    h2o_vector_reserve(&req->pool, &req->headers, req->headers.size + 1);
    memset(req->headers.entries + req->headers.size, 0, sizeof(req->headers.entries[0]));
    req->headers.entries[req->headers.size].name = &cr_hpack_oversize_name;
    req->headers.entries[req->headers.size].value = h2o_iovec_init(H2O_STRLIT(""));
    ++req->headers.size;
}

static h2o_req_t *start_scratch(h2o_req_t *scratch)
{
    memset(scratch, 0, sizeof(*scratch));
    h2o_mem_init_pool(&scratch->pool);
    return scratch;
}

int h2o_hpack_parse_headers(h2o_req_t *req, struct st_h2o_hpack_header_table_t *header_table, const uint8_t *src, size_t len,
                            int *pseudo_header_exists_map, size_t *content_length, h2o_cache_digests_t **digests,
                            const char **err_desc)
{
    const uint8_t *end = src + len, *piece_end;
    size_t limit = atomic_load_explicit(&header_limit, memory_order_relaxed), total, fields;
    int regular_seen = pseudo_header_exists_map == NULL, ret;
    h2o_req_t scratch_req, *scratch = NULL; /* where the rest of an oversized block is decoded to */
    cr_pseudo_seen_t seen;

    if (libh2o_parse == NULL)
        h2o_fatal("corral: libh2o's h2o_hpack_parse_headers not found (dlsym RTLD_NEXT)");
    if (len <= CR_PIECE_FIELDS && !cr_hpack_oversized(req)) {
        /* the common case (a repeat request is a few bytes of table references): a block this short holds at most
         * CR_PIECE_FIELDS fields, one piece, so libh2o decodes it in one call with the caller's own arguments and
         * only the sum is checked after (the overhead of fields libh2o drops, Host and content-length, is not
         * counted here: at most CR_PIECE_FIELDS * 32 bytes) */
        ret = libh2o_parse(req, header_table, src, len, pseudo_header_exists_map, content_length, digests, err_desc);
        if ((ret == 0 || ret == H2O_HTTP2_ERROR_INVALID_HEADER_CHAR) &&
            cr_header_fields_size(&req->headers, 0) + pseudo_added(req, &(cr_pseudo_seen_t){NULL, NULL, NULL, NULL}, &fields) > limit)
            add_marker(req);
        return ret;
    }
    *content_length = SIZE_MAX;
    /* trailers (or a second call) add to what the request already holds */
    pseudo_snapshot(req, &seen);
    total = cr_header_fields_size(&req->headers, 0) + pseudo_added(req, &(cr_pseudo_seen_t){NULL, NULL, NULL, NULL}, &fields);
    if (cr_hpack_oversized(req)) /* trailers of a request already cut short: the marker stays last */
        scratch = start_scratch(&scratch_req);

    while (src != end) {
        size_t piece_length = SIZE_MAX, before = req->headers.size, npseudo, added;

        if (scratch != NULL) {
            /* past the bound: only what keeps the dynamic table right; a soft error there does not matter (the
             * request is answered 431), a hard one still ends the connection as libh2o would */
            const char *ignored = NULL;
            if ((piece_end = next_table_piece(&src, end)) == src)
                break;
            ret = libh2o_parse(scratch, header_table, src, (size_t)(piece_end - src), NULL, &piece_length, NULL, &ignored);
            src = piece_end;
            h2o_mem_clear_pool(&scratch->pool);
            memset(&scratch->headers, 0, sizeof(scratch->headers));
            memset(&scratch->input, 0, sizeof(scratch->input));
            if (ret != 0 && ret != H2O_HTTP2_ERROR_INVALID_HEADER_CHAR) {
                *err_desc = ignored;
                goto Exit;
            }
            continue;
        }
        piece_end = next_piece(src, end, &fields);
        pseudo_snapshot(req, &seen);
        ret = libh2o_parse(req, header_table, src, (size_t)(piece_end - src), regular_seen ? NULL : pseudo_header_exists_map,
                           &piece_length, digests, err_desc);
        src = piece_end;
        if (piece_length != SIZE_MAX)
            *content_length = piece_length;
        if (ret != 0 && ret != H2O_HTTP2_ERROR_INVALID_HEADER_CHAR) /* a hard error ends the block (libh2o: the connection) */
            goto Exit;
        added = pseudo_added(req, &seen, &npseudo);
        total += added + cr_header_fields_size(&req->headers, before);
        if (fields > npseudo + (req->headers.size - before)) {
            /* fields libh2o did not keep (Host, content-length) or a regular field: count their overhead; a
             * pseudo-header after any of them is a protocol error */
            total += (fields - npseudo - (req->headers.size - before)) * CR_HEADER_FIELD_OVERHEAD;
            regular_seen = 1;
        } else if (req->headers.size != before) {
            regular_seen = 1;
        }
        if (total > limit) {
            add_marker(req);
            scratch = start_scratch(&scratch_req);
        }
    }
    ret = *err_desc != NULL ? H2O_HTTP2_ERROR_INVALID_HEADER_CHAR : 0; /* a soft error anywhere, as libh2o says */
Exit:
    if (scratch != NULL)
        h2o_mem_clear_pool(&scratch->pool);
    return ret;
}
