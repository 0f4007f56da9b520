/*
 * hpack_bound.h: corral's h2o_hpack_parse_headers, which takes the place of libh2o's by symbol interposition (as
 * h1_interpose.c does for phr_*) and bounds the header list one HTTP/2 header block decodes into: an HPACK bomb (one
 * large entry in the dynamic table referred to at one byte per reference) is cut off at `limits.request_headers`
 * instead of growing to hundreds of megabytes per request (the bound is given by cr_hpack_bound_set_limit). See
 * hpack_bound.c.
 */
#ifndef CORRAL_HPACK_BOUND_H
#define CORRAL_HPACK_BOUND_H

#include <stddef.h>

#include <h2o.h>
#include <h2o/cache_digests.h>

/* h2o/http2_internal.h cannot be included (it needs khash.h, which Debian does not ship); the table is only passed
 * through, so its type stays incomplete here. */
struct st_h2o_hpack_header_table_t;

/* Per decoded field on top of its name and value: RFC 9113 (and RFC 7541 4.1) count 32. */
#define CR_HEADER_FIELD_OVERHEAD 32

/* Bytes of headers->entries[from ..] as RFC 9113 counts a header list: name + value + CR_HEADER_FIELD_OVERHEAD each. */
static inline size_t cr_header_fields_size(const h2o_headers_t *headers, size_t from)
{
    size_t bytes = 0, i;
    for (i = from; i < headers->size; ++i)
        bytes += headers->entries[i].name->len + headers->entries[i].value.len + CR_HEADER_FIELD_OVERHEAD;
    return bytes;
}

/* The name of the marker field hpack_bound.c appends (last) to a request whose header list went over the bound: it
 * cannot come from a client (HPACK names with upper-case letters are protocol errors, HTTP/1.1 names are lower-cased by
 * libh2o). Compare the pointer: a request carries the marker iff its last header's name == &cr_hpack_oversize_name. */
extern h2o_iovec_t cr_hpack_oversize_name;

/* Did the HTTP/2 decoder cut this request's header list short (the handler answers 431)? O(1). */
static inline int cr_hpack_oversized(const h2o_req_t *req)
{
    return req->headers.size != 0 && req->headers.entries[req->headers.size - 1].name == &cr_hpack_oversize_name;
}

/* Sets the bound on one request's header list (the configuration's limits.request_headers, in bytes as
 * cr_header_fields_size counts them). Until it is called: 64 KiB, that key's default. Takes effect for the header
 * blocks decoded after it; main calls it once the configuration is loaded, before any connection. */
void cr_hpack_bound_set_limit(size_t bytes);

/* The interposed decoder: libh2o 2.2.5's prototype exactly (h2o/http2_internal.h), same contract; see hpack_bound.c. */
int h2o_hpack_parse_headers(h2o_req_t *req, struct st_h2o_hpack_header_table_t *header_table, const uint8_t *src, size_t len,
                            int *pseudo_header_exists_map, size_t *content_length, h2o_cache_digests_t **digests,
                            const char **err_desc);

#endif
