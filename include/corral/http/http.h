/*
 * http.h: the glue between h2o's request/response structures and corral's pure modules.
 *
 * Builds upstream request heads (hop-by-hop headers removed, X-Forwarded-For / X-Forwarded-Proto / Via added),
 * filters upstream response headers, and fills cr_request_info_t / cr_response_info_t from header lists.
 * Everything here runs on a worker thread and allocates only from the request's pool or the caller's buffers.
 */
#ifndef CORRAL_HTTP_H
#define CORRAL_HTTP_H

#include <h2o.h>
#include "corral/core/common.h"
#include "corral/cache/object.h"
#include "corral/http/policy.h"

/* What makes an upstream request a cache fill (or a background revalidation). */
typedef struct st_cr_fill_request_t {
    const cr_route_config_t *route; /* its forward_headers and cookies rules apply */
    h2o_iovec_t target;             /* the normalized path and query the key was made from; {NULL,0}: the request's */
    const cr_object_t *revalidate;  /* a stored object whose ETag / Last-Modified are sent, or NULL */
} cr_fill_request_t;

/*
 * Builds the upstream request head for `req` into its pool. Several Cookie lines are sent as one, joined with "; ".
 * With `fill` == NULL (a pass): the request's method, target and headers as received (hop-by-hop removed), with
 * Content-Length from req->entity when it has a body. With `fill`: a GET of fill->target, without the client's
 * validators, Range and Accept-Encoding, without the unkeyed headers (X-Forwarded-Host, X-Original-URL, ... see
 * http.c) unless the route's forward_headers lists them, without Cookie under `cookies: ignore` and with only the
 * listed cookies under `cookies: [names]`; with fill->revalidate, its ETag / Last-Modified as If-None-Match /
 * If-Modified-Since. Never fails (the pool aborts when out of memory).
 */
h2o_iovec_t cr_build_upstream_head(h2o_req_t *req, const cr_fill_request_t *fill);

/* Does a comma-separated header value (e.g. Connection, Vary) hold this token (case-insensitive)? */
int cr_list_contains(h2o_iovec_t list, h2o_iovec_t token);

/* Is this (lower-case) response or request header hop-by-hop, either always (RFC 9110 7.6.1) or because the
 * message's Connection header names it (`connection` is that header's value, or {NULL,0})? */
int cr_is_hop_by_hop(h2o_iovec_t lname, h2o_iovec_t connection);

/* A socket address as numeric text into buf (NI_MAXHOST bytes, not NUL-terminated): IPv4 formatted here (printf cost
 * more than building the rest of an upstream request head), others by h2o. Returns the length, or SIZE_MAX. */
size_t cr_numeric_host(const struct sockaddr_storage *ss, socklen_t sslen, char *buf);

/* Is this (lower-case) name the configured surrogate-key header (cache.surrogate_key_header)? */
int cr_is_surrogate_key_header(h2o_iovec_t lname, const cr_config_t *cfg);

/* Every value of a header (by token) among h2o_header_t's, joined with ", " into buf (members that do not fit are
 * dropped), or {NULL,0} when absent. Used for Connection, whose tokens may be spread over several lines. */
h2o_iovec_t cr_join_header(const h2o_header_t *headers, size_t num_headers, const h2o_token_t *token, char *buf, size_t bufsize);

/* The small integer an object keeps for a header name (cr_object_add_header's `token`): 1 + the index of h2o's
 * token, or 0 when the name is not one of h2o's tokens. */
unsigned cr_token_index(const h2o_iovec_t *name);
/* The h2o token behind a non-zero cr_token_index(). */
const h2o_token_t *cr_token_of(unsigned index);

/* Every value of a request header by token, joined in order with ", " ("; " for Cookie), or {NULL,0} when absent.
 * A single line is returned as it is; several are joined, whole, in the request's pool. */
h2o_iovec_t cr_req_header(h2o_req_t *req, const h2o_token_t *token);
/* The same by lower-case name (tokens and non-tokens). */
h2o_iovec_t cr_req_header_by_name(h2o_req_t *req, const char *lname, size_t lnamelen);

void cr_request_info_from_req(h2o_req_t *req, cr_request_info_t *qi);
/* Adds one response header (lower-case name) to a response summary. */
void cr_response_info_add(cr_response_info_t *ri, cr_str_t lname, cr_str_t value);
void cr_response_info_from_headers(int status, const h2o_header_t *headers, size_t num_headers, cr_response_info_t *ri);

/* Looks up a request header value by lower-case name; {NULL,0} when absent. */
typedef h2o_iovec_t (*cr_header_getter_fn)(void *ctx, const char *lname, size_t lnamelen);
/* Writes the variant key ("name:value\n" per name, values trimmed) into buf; returns its length or SIZE_MAX when
 * it does not fit. */
size_t cr_variant_key(const cr_str_t *names, size_t num_names, cr_header_getter_fn get, void *ctx, char *buf, size_t cap);

/* Appends len bytes to an h2o buffer. Returns CR_OK, or CR_ERROR when the buffer cannot grow. */
int cr_buffer_append(h2o_buffer_t **buf, const void *p, size_t len);

/* Sends a short JSON error ({"error": code, "message": msg}) with the given status. */
void cr_send_json_error(h2o_req_t *req, int status, const char *reason, const char *code, const char *msg);

#endif
