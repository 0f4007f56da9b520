/*
 * writethrough.h: invalidation after writes, and purges by path (shared by the write path and the admin API).
 *
 * Every stored object carries corral's path tag ("\n" + normalized path, cr_path_tag), so invalidating a path reaches
 * all its variants (query strings, key headers, Vary values, codings, authorities) at O(matches). Path prefixes have
 * no index: they scan the store. Every purge moves the store's epochs, so a fill in flight is not stored as fresh.
 */
#ifndef CORRAL_WRITETHROUGH_H
#define CORRAL_WRITETHROUGH_H

#include <h2o.h>
#include "corral/common.h"

/* Purges every object stored for this path (normalized, no query). Returns how many. */
size_t cr_purge_path(cr_str_t path, int soft);
/* Purges every object whose normalized path starts with `prefix`. O(objects). Returns how many. */
size_t cr_purge_path_prefix(cr_str_t prefix, int soft);

/*
 * The pass's head callback for unsafe methods (POST, PUT, PATCH, DELETE, unknown): on a 2xx or 3xx answer,
 * invalidates the request's path, the same-authority Location and Content-Location paths (RFC 9111 4.4), and what
 * the route's `invalidate` list names for this path. Error answers invalidate nothing.
 */
void cr_writethrough_on_head(h2o_req_t *req, int status, const h2o_header_t *headers, size_t num_headers);

#endif
