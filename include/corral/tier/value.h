/*
 * value.h: the stored-value format of the shared tier (L2, memcached), protocol v1: a finished object turned into
 * one memcached value and back (value.c). README "Shared tier protocol" is the byte-by-byte description.
 *
 * Invariants:
 *  - a value is self-checking: magic, format version, total length and a CRC-32 over all of it; a reader trusts no
 *    length in it, reads nothing past `len`, and refuses (a miss, with a reason) anything it cannot prove whole: too
 *    short, foreign (magic), another format version (older or newer: it knows only v1), corrupt (checksum), written
 *    for another key, malformed, over the object limits, or past its freshness and both stale windows.
 *  - what crosses pods is what another pod needs to serve the object as the writer would: key, status, headers,
 *    Vary names and variant key, tags, the flags FORCED, MUST_REVALIDATE, NO_CACHE, SHAREABLE, ENCODED, KEEP_CODING,
 *    every stored coding, and the times (response time as wall-clock ms since the epoch, initial age, lifetime and
 *    the two stale windows). Not carried: INVALIDATED and PASS (such objects are refused by the encoder),
 *    CODINGS_PENDING (pod-local), h2o token indexes (recomputed by the reader from the name, so pods linked with
 *    different libh2o builds agree), path_hash (the reader's caller sets it, as objbuild does), store-private fields.
 *  - pure code: no I/O, no locks, no globals; any thread. The object given to the encoder is only read (finished,
 *    possibly shared: flags are read atomically); the decoder's object is new, finished, and not shared yet.
 */
#ifndef CORRAL_TIER_VALUE_H
#define CORRAL_TIER_VALUE_H

#include "corral/core/common.h"
#include "corral/cache/object.h"

/* The format this build writes and the only one it reads. */
#define CR_TIER_FORMAT_VERSION 1u
/* The fixed header before the payload: magic (4), version (2), reserved (2), total length (8), CRC-32 (4). */
#define CR_TIER_VALUE_HEADER_BYTES 20u

/* Encoder results besides CR_OK and CR_ERROR (out of memory). */
#define CR_TIER_VALUE_TOO_BIG (-10) /* the value would exceed max_bytes: the object stays in L1 only */
#define CR_TIER_VALUE_UNFIT (-11)   /* a hit-for-pass marker, a soft-purged object, or one already past all use */

/* Why a value was refused (each is a counted miss for the caller). */
typedef enum en_cr_tier_value_error_t {
    CR_TIER_VALUE_OK = 0,
    CR_TIER_VALUE_SHORT,     /* shorter than its header or than the length it declares (truncated) */
    CR_TIER_VALUE_FOREIGN,   /* not corral's magic: another writer's value */
    CR_TIER_VALUE_VERSION,   /* a format version this build does not know (older or newer) */
    CR_TIER_VALUE_CORRUPT,   /* checksum mismatch */
    CR_TIER_VALUE_KEY,       /* whole and valid, but for another key (a hash collision of memcached keys) */
    CR_TIER_VALUE_MALFORMED, /* checksum right but the payload does not parse (a buggy or hostile writer) */
    CR_TIER_VALUE_LIMIT,     /* a field over what an object may hold (object.h, CR_SURROGATE_KEYS_MAX) */
    CR_TIER_VALUE_EXPIRED,   /* past its freshness and both stale windows at `now` */
    CR_TIER_VALUE_NOMEM,     /* out of memory while building the object */
    CR_TIER_VALUE_NUM_ERRORS
} cr_tier_value_error_t;

/* A short lower-case name of a reason ("short", "foreign", ...), for logs and metrics labels. */
const char *cr_tier_value_error_name(cr_tier_value_error_t why);

/* How long from `now` the object is of any use (fresh or within a stale window): lifetime + max(swr, sie) - age,
 * or 0 when it is past that. The writer's memcached expiry; the reader's EXPIRED rule. */
uint64_t cr_tier_value_ttl_ms(const cr_object_t *obj, uint64_t now_ms);

/*
 * Encodes the finished object `obj` into a malloc'ed value (*out, *outlen; the caller frees it). max_bytes bounds the
 * whole value (the caller passes memcached's item size less the key and the item overhead). Returns CR_OK,
 * CR_TIER_VALUE_TOO_BIG (nothing allocated: such objects are kept in L1 only), CR_TIER_VALUE_UNFIT (PASS or
 * INVALIDATED set, or cr_tier_value_ttl_ms(obj, now_ms) == 0), or CR_ERROR (out of memory). *out is NULL unless CR_OK.
 * log_pos is the invalidation log position the writer's fill had seen when it began (tier/inval_log.h), carried so
 * that a reader can refuse a value an invalidation it knows of covers.
 */
int cr_tier_value_encode(const cr_object_t *obj, uint64_t now_ms, uint64_t log_pos, size_t max_bytes, char **out, size_t *outlen);

/*
 * Decodes a value read for the primary key `expect_key` into a new finished object (one reference, *out), or fails:
 * returns CR_OK (*why = CR_TIER_VALUE_OK) or CR_ERROR with *why set and *out NULL. `buf` is only read, never past
 * `len`, and need not be aligned. The object's path_hash is 0 (the caller indexes it by path, as cr_fill_object_new
 * does) and its header tokens are h2o's for its names. *log_pos (may be NULL) gets the writer's log position.
 */
int cr_tier_value_decode(const char *buf, size_t len, const char *expect_key, size_t keylen, uint64_t now_ms, cr_object_t **out,
                         cr_tier_value_error_t *why, uint64_t *log_pos);

#endif
