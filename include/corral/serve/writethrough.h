/*
 * writethrough.h: invalidation after writes, and purges by path (shared by the write path and the admin API).
 *
 * Every stored object is indexed by its path in the store (cr_path_hash), so invalidating a path reaches all its
 * variants (query strings, key headers, Vary values, codings, authorities) at O(matches). Path prefixes have
 * no index: they scan the store. Every purge is noted for the fills in flight (inval_epoch.h), so a fill that it
 * covers is not stored; fills of anything else are.
 */
#ifndef CORRAL_WRITETHROUGH_H
#define CORRAL_WRITETHROUGH_H

#include <h2o.h>
#include "corral/core/common.h"
#include "corral/cache/object.h"

/* Purges every object stored for this path (normalized, no query). Returns how many. */
size_t cr_purge_path(cr_str_t path, int soft);
/* References to up to max objects stored for this path (the caller releases them); returns how many there are. */
size_t cr_collect_path(cr_str_t path, cr_object_t **out, size_t max);
/* Purges every object whose normalized path starts with `prefix`. O(objects). Returns how many. */
size_t cr_purge_path_prefix(cr_str_t prefix, int soft);

/*
 * The pass's head callback for unsafe methods (POST, PUT, PATCH, DELETE, unknown): on a 2xx or 3xx answer,
 * invalidates the request's path, the same-authority Location and Content-Location paths (RFC 9111 4.4), and what
 * the route's `invalidate` list names for this path. Error answers invalidate nothing.
 */
void cr_writethrough_on_head(h2o_req_t *req, int status, const h2o_header_t *headers, size_t num_headers);

#endif
