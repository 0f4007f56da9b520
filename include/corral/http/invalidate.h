/*
 * invalidate.h: pure building blocks for invalidation (issue 5): expanding a route's `invalidate` entries for a
 * written path, deciding whether a Location / Content-Location names the same authority (RFC 9111 4.4), splitting
 * a surrogate-key header into tags, and slicing cache keys for path-level invalidation.
 *
 * Everything here is a pure function: no allocation, no locks, no global state, no h2o. Outputs go to caller buffers
 * or point into the inputs, as each function says.
 */
#ifndef CORRAL_INVALIDATE_H
#define CORRAL_INVALIDATE_H

#include "corral/core/common.h"

/* Longest path (normalized or template) the expansion handles; longer ones make it fail. */
#define CR_INVALIDATE_MAX_PATH 8192
/* Most tags one response may carry (see cr_surrogate_keys_parse). */
#define CR_SURROGATE_KEYS_MAX 256

/* One concrete invalidation: an exact normalized path, or (is_prefix) every path starting with these bytes. */
typedef struct st_cr_invalidation_t {
    cr_str_t path; /* normalized (cr_key_normalize_path), NUL-terminated, inside the caller's buffer */
    int is_prefix;
} cr_invalidation_t;

/*
 * Expands `entries` (a route's `invalidate` list, as the config validated it) for a write to `written_path` (a path,
 * optionally with a query, which is ignored; it is normalized first). Each entry is
 *  - an exact path ("/v1/users"),
 *  - a prefix: anything ending in '*' ("/v1/users/" then '*' gives the prefix "/v1/users/"),
 *  - a template with {name} placeholders, exact or prefix ("/v1/users/{id}", or "/v1/users/{id}/" then '*').
 * Binding is by position: a placeholder takes the value of the written path's segment at the same position (a
 * segment may add literal text around one placeholder: "/files/{name}.json" binds "a" from "/files/a.json"). A
 * template is used only if every literal segment before its last placeholder equals the written path's, every
 * placeholder binds to a non-empty value, and a name used twice binds the same value each time; literal segments
 * after the last placeholder are copied ("/v1/users/{id}/posts" from "/v1/users/42/avatar" gives
 * "/v1/users/42/posts"). Other templates are skipped (that is not an error), as are prefixes whose last partial
 * segment is a dot-segment ("/a/." then '*'), and entries that are not paths.
 *
 * Writes up to `max` results to out, their paths (NUL-terminated) to buf, without duplicates, in entry order.
 * Returns how many, or -1 when the written path is malformed (cr_key_normalize_path refuses it) or a result does
 * not fit in out, buf, or CR_INVALIDATE_MAX_PATH. max >= n always suffices for out; bufsize >= n *
 * (CR_INVALIDATE_MAX_PATH + 1) always suffices for buf (so does much less in practice: each result's length + 1).
 */
int cr_invalidate_expand(const char *const *entries, size_t n, cr_str_t written_path, cr_invalidation_t *out, size_t max, char *buf,
                         size_t bufsize);

/*
 * Location / Content-Location (RFC 9111 4.4): returns 1 when `location` refers to the request's own authority and
 * writes its "path[?query]" (fragment dropped, not normalized: pass it to cr_key_build) to buf, NUL-terminated, and
 * sets *path_out to it. Accepted:
 *  - absolute URIs with scheme http or https whose authority equals `request_authority`: host compared ASCII
 *    case-insensitively, ports compared as numbers with a missing port meaning the URI scheme's default (80 / 443;
 *    the request's missing port counts as that same default);
 *  - network-path references ("//host/path"), compared the same way with the http default;
 *  - absolute-path references ("/path");
 *  - relative-path references ("43", "../x", "?q"), resolved against `request_path` (RFC 3986 5.2.3; only when
 *    request_path starts with '/'; its query is ignored).
 * Returns 0 otherwise: another authority, another scheme, userinfo, control bytes or spaces, an empty value, or a
 * result that does not fit in buf.
 */
int cr_same_authority_path(cr_str_t location, cr_str_t request_authority, cr_str_t request_path, char *buf, size_t bufsize,
                           cr_str_t *path_out);

/*
 * Splits a surrogate-key header value (tags separated by spaces, tabs or commas) and appends the tags to
 * out[*num ..], advancing *num; call once per header line. The tags point into `value`. Returns CR_OK, or CR_DECLINED
 * when the value holds more tags than fit below `max` (out then holds the first ones and *num == max): a response
 * whose tags were cut short must not be stored, or purging a dropped tag would miss it. Duplicates are kept
 * (cr_object_set_tags drops them).
 */
int cr_surrogate_keys_parse(cr_str_t value, cr_str_t *out, size_t max, size_t *num);

/*
 * Slices a primary key (cr_key_build's layout, "authority\npath[?query][\nheader:value...]"):
 *  - cr_invalidate_key_uri: "authority\npath[?query]", i.e. without the route's key headers;
 *  - cr_invalidate_key_path: "authority\npath", also without the query.
 * Both point into `key`. Tagging each object with these (they hold a '\n', which no header tag can, so they never
 * collide with upstream tags) lets an invalidation reach every query string / key-header variant of a path with
 * cr_store_purge_tag(), at O(matches), instead of a prefix scan.
 */
cr_str_t cr_invalidate_key_uri(cr_str_t key);
cr_str_t cr_invalidate_key_path(cr_str_t key);

/*
 * The path part of a key as corral indexes it: "\n" + the normalized path (no authority, no query), pointing into
 * `key`. cr_path_hash(key) is its hash, and cr_path_hash_of_path(path) the same hash from a bare normalized path:
 * the store's path-index key (never 0). Writes and admin purges by path reach every variant of a path through it
 * (every query string, key header, Vary value and authority: over-invalidation across authorities is the safe side).
 */
cr_str_t cr_path_tag(cr_str_t key);
uint64_t cr_path_hash(cr_str_t key);
uint64_t cr_path_hash_of_path(cr_str_t path);

#endif
