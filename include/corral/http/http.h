/*
 * http.h: header helpers between h2o's request/response structures and corral's pure modules (http.c).
 *
 * Header lists and hop-by-hop fields, request header getters, h2o token indexes, and cr_request_info_t /
 * cr_response_info_t filled from header lists. The upstream request head is built by fill/upstream_head.h.
 * Everything here runs on a worker thread and allocates only from the request's pool or the caller's buffers.
 */
#ifndef CORRAL_HTTP_H
#define CORRAL_HTTP_H

#include <h2o.h>
#include "corral/core/common.h"
#include "corral/http/json_error.h" /* cr_send_json_error was declared here: its callers still find it */
#include "corral/http/policy.h"

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
/* Appends a header whose name is a lower-case h2o_iovec_t that outlives the request (a static one, not an h2o token):
 * the name is neither copied nor looked up. libh2o copies what it keeps of a name past the request (HPACK). */
void cr_add_header_static_name(h2o_mem_pool_t *pool, h2o_headers_t *headers, const h2o_iovec_t *name, h2o_iovec_t value);
/* cr_token_index() of a token known at compile time (H2O_TOKEN_ETAG): a constant, no call. */
#define CR_TOKEN_INDEX(token) ((unsigned)((token) - h2o__tokens) + 1)
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
/* Once every header was added: the first targeted Cache-Control field present with a valid value (see targeted_cc.h)
 * replaces Cache-Control, Expires and Pragma in ri (sets ri->targeted_applied). Harmless when none applies. */
void cr_response_info_apply_targeted(cr_response_info_t *ri);
/* init, set_targeted(cfg), add of each header, apply_targeted. cfg may be NULL (no targeted fields). */
void cr_response_info_from_headers(const cr_config_t *cfg, int status, const h2o_header_t *headers, size_t num_headers,
                                   cr_response_info_t *ri);

/* Writes the variant key ("name:value\n" per name) into buf; returns its length or SIZE_MAX when it does not fit.
 * Values are normalized (variant_key.c): list members trimmed of whitespace, empty members dropped; for the
 * case-insensitive lists (accept, accept-charset, accept-encoding, accept-language) members are lower-cased and
 * sorted, so "en, de" and "DE,en" are one variant. */
size_t cr_variant_key(const cr_str_t *names, size_t num_names, cr_header_lookup_fn lookup, void *ctx, char *buf, size_t cap);

#endif
