/*
 * objbuild.h: turning an upstream response into the object a fill stores.
 *
 * Which headers are kept, the Vary variant key, the surrogate-key tags, the received content coding (and whether it
 * may be decoded for clients), the gzip and brotli variants made once at store time, the freshness fields, and the
 * object a 304 makes of a stored one.
 * Everything here runs on the fill's owner thread on objects nobody else sees yet; no locks, no I/O. The config
 * generation (`cfg`: cache.max_object_size, the surrogate-key header and keep_surrogate_key) is an argument.
 * One exception: cr_fill_object_coded_copy is pure CPU on memory only it writes (the copy) and reads a finished
 * object and a route, both immutable; it may run on any thread (fill.c runs large ones on the worker pool, workq.h).
 */
#ifndef CORRAL_OBJBUILD_H
#define CORRAL_OBJBUILD_H

#include <h2o.h>
#include "corral/conf/config.h"
#include "corral/http/http.h"
#include "corral/cache/object.h"
#include "corral/http/policy.h"

/* A new object for `key`, indexed by path in the store (writes and purges by path find it). NULL when out of memory. */
cr_object_t *cr_fill_object_new(cr_str_t key, int status);

/*
 * The object for an upstream response, all but its body: the end-to-end headers that are not corral's own to set
 * (Content-Length, Date, Server, Age, hop-by-hop ones, and the surrogate-key header unless cache.keep_surrogate_key),
 * the Vary variant key from the request headers that `get` reads (Accept-Encoding excepted: corral serves every
 * coding from one object), the surrogate-key tags, and the received coding (*received; the object is marked
 * CR_OBJ_ENCODED when the upstream compressed it). Returns NULL when out of memory. *unstorable is set to a reason
 * ("vary-too-complex", "vary-too-long": the request's
 * values of the varied headers do not fit a variant key, "content-encoding", "too-many-tags") when the response must not be stored, else to NULL.
 */
cr_object_t *cr_fill_object_from_response(const cr_config_t *cfg, cr_str_t key, int status, const h2o_header_t *headers, size_t num_headers,
                                          cr_header_lookup_fn get, void *get_ctx, const char **unstorable,
                                          cr_encoding_t *received);

/*
 * What a 304 to a revalidation makes of the stored object `old` (RFC 9111 4.3.4): its headers updated with the
 * 304's, its bodies, Vary and tags kept. *ri describes the merged headers (with the 304's Date and Age) for the new
 * freshness decision. Returns NULL when out of memory.
 */
cr_object_t *cr_fill_object_refreshed(const cr_config_t *cfg, const cr_object_t *old, const h2o_header_t *headers, size_t num_headers,
                                      cr_response_info_t *ri);

/* A copy of a finished object (headers, Vary, tags, bodies; not finished, no freshness fields yet), to be given
 * more bodies before it is finished. NULL when out of memory. */
cr_object_t *cr_fill_object_copy(const cr_object_t *obj);

/* Would cr_fill_object_compress make a coding of this object (route, type, size, no-transform)? Cheap. */
int cr_fill_object_compressible(const cr_route_config_t *route, const cr_object_t *obj);

/*
 * Compresses the identity body once into every coding the route allows, keeping each variant only when smaller.
 * Skipped for types the route does not list, bodies under compress.min_size, and no-transform responses. Costs
 * about 10 ms per MiB of typical text (brotli at quality 5, then gzip), up to 65 ms for random letters; `obj` is not
 * shared yet (any thread, see cr_fill_object_coded_copy). Failing to compress is not an error.
 */
void cr_fill_object_compress(const cr_route_config_t *route, cr_object_t *obj);

/*
 * The codings of the finished object `obj`, made into a copy of it (cr_fill_object_copy, then
 * cr_fill_object_compress, then cr_object_finish): the copy is finished but has no freshness fields yet
 * (cr_fill_object_set_freshness, on the fill's owner thread, before it is shared). `obj` may be shared (stored,
 * being sent): it is only read, as any thread holding a reference may. Any thread: no locks, no h2o, no config but
 * `route`. NULL when out of memory.
 */
cr_object_t *cr_fill_object_coded_copy(const cr_route_config_t *route, const cr_object_t *obj);

/*
 * For an object held only in the upstream's coding (CR_OBJ_ENCODED): decodes it once, keeping nothing (memory: one
 * decoder, at most CR_DECODER_MEMORY; output: counted and dropped, stopped past cache.max_object_size), and marks it
 * CR_OBJ_KEEP_CODING when the decoded body would pass cache.max_object_size, the decoder would need more memory, or
 * the body is corrupt: such an object is sent in its stored coding even to clients that do not list it (a gzip bomb
 * is never inflated per client). Costs one decode of at most max_object_size of output (zlib: about 2 ms per MiB).
 * Objects already marked, and objects not encoded, are left alone.
 */
void cr_fill_object_check_decoding(cr_object_t *obj, size_t max_object_size);

/* Freshness fields (clamped, see object.h) and flags from the store decision, and cr_fill_object_check_decoding;
 * call on the finished object before it is shared. */
void cr_fill_object_set_freshness(const cr_config_t *cfg, cr_object_t *obj, const cr_store_decision_t *d, uint64_t response_time_ms);

#endif
