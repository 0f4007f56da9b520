/*
 * key.h: cache-key normalization.
 *
 * A primary key is "<authority>\n<path>?<normalized query>\n<name>:<value>\n..." for the route's key headers. The
 * authority is normalized (RFC 3986 6.2.2-6.2.3): lower-cased, one trailing '.' of the host removed, the port removed
 * when it is empty or the scheme's default; a route with `key.host: false` leaves it out (the key starts with '\n').
 * GET and HEAD share a key (HEAD is answered from a stored GET). The path is percent-decoded where the
 * byte is unreserved (RFC 3986 2.3), dot-segments are removed, and hex digits of remaining escapes upper-cased;
 * the query is split on '&', filtered by the route's `key.query` rule, and sorted by name (stable: one name's
 * members keep their order).
 * Pure functions: no locks, no global state.
 */
#ifndef CORRAL_KEY_H
#define CORRAL_KEY_H

#include "corral/core/common.h"
#include "corral/conf/config.h"


/*
 * Writes the normalized key into buf (at most bufsize bytes, NUL-terminated).
 * Returns the key length, or -1 when it does not fit or the path is malformed (not starting with '/').
 * `default_port` is the request scheme's (80 for http, 443 for https): that port in the authority is dropped.
 * `lookup` may be NULL when the route has no key headers.
 */
int cr_key_build(const cr_route_config_t *route, cr_str_t authority, uint16_t default_port, cr_str_t path_and_query,
                 cr_header_lookup_fn lookup, void *lookup_ctx, char *buf, size_t bufsize);

/*
 * The filtered Cookie value of a `cookies: [names]` route: the crumbs of `cookie` (";"-separated, trimmed) whose name
 * is listed, in the request's order, joined with "; ". Returns its length, or SIZE_MAX when it does not fit cap.
 */
size_t cr_key_cookie_filter(const cr_route_config_t *route, cr_str_t cookie, char *buf, size_t cap);

/* The match form of a path, which routes are matched on, is core/urlpath.h (cr_urlpath_match_form). */

/* Normalizes only the path part (no query) into buf; returns length or -1. Used by invalidation. */
int cr_key_normalize_path(cr_str_t path, char *buf, size_t bufsize);
/* Same, for a "path[?query]": the query is dropped first. */
int cr_key_normalize_uri_path(cr_str_t uri, char *buf, size_t bufsize);

#endif
