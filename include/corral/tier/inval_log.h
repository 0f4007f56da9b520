/*
 * inval_log.h: the shared tier's invalidation log, protocol v1: what one log entry says, its wire format (entry codec),
 * its memcached keys, and the cover predicate (inval_log.c). README "Shared tier protocol", "Invalidation log", is the
 * byte-by-byte description other pods must match. The seen ring that keeps entries a pod has read is inval_ring.h.
 *
 * Every invalidation a pod applies (cr_invalidate, fill/invalidation.h) is published as one entry: the counter
 * CR_INVAL_SEQ_KEY is bumped with memcached `incr` and the entry stored under cr_inval_entry_key(new value); every pod
 * polls the keys above its last one and applies what it reads. The memcached client and the poller are elsewhere.
 *
 * Invariants:
 *  - an entry is self-checking like a stored value (value.h): magic, format version, total length, CRC-32; a reader
 *    trusts no length in it, reads nothing past `len`, and refuses (with a cr_tier_value_error_t reason) what it cannot
 *    prove whole and within the limits below. What the encoder writes the decoder accepts: the encoder refuses
 *    (CR_TIER_VALUE_TOO_BIG) every entry the decoder would refuse for a limit.
 *  - item bytes are carried as they are (no check of their form): the cover predicate then treats a remote entry
 *    exactly as the local purge treats the same request, whatever bytes it holds.
 *  - cr_inval_entry_covers applies the local purge's own rules (cache/pathpurge.h for paths and prefixes, exact bytes
 *    for tags as the store's tag index, every object for `everything`); soft or hard does not change what is covered.
 *  - pure code: no I/O, no locks, no globals; any thread. A decoded or copied entry is one malloc'ed block (free()).
 */
#ifndef CORRAL_TIER_INVAL_LOG_H
#define CORRAL_TIER_INVAL_LOG_H

#include "corral/core/common.h"
#include "corral/cache/object.h"
#include "corral/http/invalidate.h"
#include "corral/tier/value.h"

/* The entry format this build writes and the only one it reads. */
#define CR_INVAL_FORMAT_VERSION 1u
/* The largest entry either side handles (memcached's default item size is 1 MiB). */
#define CR_INVAL_ENTRY_MAX_BYTES ((size_t)256 << 10)
/* The fixed header: magic (4), version (2), reserved (2), total length (8), CRC-32 (4); as in value.h. */
#define CR_INVAL_HEADER_BYTES 20u
/* The smallest entry: the header, pod_id, local_id, wall_ms (8 each), flags (1), three list counts (4 each). */
#define CR_INVAL_MIN_BYTES (CR_INVAL_HEADER_BYTES + 24u + 1u + 12u)
/* Most items (paths + prefixes + tags) one entry holds. */
#define CR_INVAL_MAX_ITEMS 4096u
/* Longest path or prefix: the bound of the purge paths (invalidate.h). */
#define CR_INVAL_MAX_PATH CR_INVALIDATE_MAX_PATH
/* Longest tag. The purge API has no bound of its own on one tag (only limits.admin_body on the whole body); tags come
 * from a response header, and 8 KiB is far past any surrogate key in use (Fastly allows 1 KiB). */
#define CR_INVAL_MAX_TAG 8192u

/* keys (memcached), protocol v1: counter "corral:v1:inval:seq"; entry N: "corral:v1:inval:" + decimal N */
#define CR_INVAL_SEQ_KEY "corral:v1:inval:seq"
#define CR_INVAL_ENTRY_KEY_PREFIX "corral:v1:inval:"
/* The longest entry key (20 digits of a uint64_t), without the NUL; a buffer needs CR_INVAL_KEY_MAX + 1. */
#define CR_INVAL_KEY_MAX (sizeof(CR_INVAL_ENTRY_KEY_PREFIX) - 1 + 20)

/* Writes "corral:v1:inval:<seq>" (decimal, no leading zeros) into out, NUL-terminated, and returns its length; returns
 * 0 (out holding "" when outsize != 0) when it does not fit outsize (CR_INVAL_KEY_MAX + 1 always suffices). */
size_t cr_inval_entry_key(uint64_t seq, char *out, size_t outsize);

typedef struct st_cr_inval_entry_t {
    uint64_t pod_id;   /* the publishing pod (random at its start) */
    uint64_t local_id; /* that pod's own counter of its publications (1, 2, ...) */
    uint64_t wall_ms;  /* publisher's wall clock (ms since epoch) when it applied it locally: for a delay metric only */
    int everything;    /* every object */
    int soft;          /* mark stale instead of removing (ignored with everything) */
    const cr_str_t *paths;    size_t num_paths;    /* normalized exact paths, no query: every variant, any query */
    const cr_str_t *prefixes; size_t num_prefixes; /* normalized path prefixes */
    const cr_str_t *tags;     size_t num_tags;     /* surrogate keys, exact bytes */
} cr_inval_entry_t;

/*
 * Encodes the entry into a malloc'ed buffer (*out, *outlen; the caller frees it). Returns CR_OK,
 * CR_TIER_VALUE_TOO_BIG (nothing allocated) when the entry would pass CR_INVAL_ENTRY_MAX_BYTES or a limit the decoder
 * enforces (more than CR_INVAL_MAX_ITEMS items, a path or prefix over CR_INVAL_MAX_PATH bytes, a tag over
 * CR_INVAL_MAX_TAG): such an entry is split by the caller, or an item that alone is too long cannot be published;
 * or CR_ERROR (no memory). *out is NULL unless CR_OK. `everything` and `soft` are written as 0 or 1.
 */
int cr_inval_entry_encode(const cr_inval_entry_t *e, char **out, size_t *outlen);

/*
 * Decodes into ONE malloc'ed block (*out; free() it) holding the entry and all its strings (each NUL-terminated; the
 * lists are NULL when empty). Strict: every length checked against len; limits (paths and prefixes at most
 * CR_INVAL_MAX_PATH bytes each, tags at most CR_INVAL_MAX_TAG, at most CR_INVAL_MAX_ITEMS items in all, the entry at
 * most CR_INVAL_ENTRY_MAX_BYTES); CRC. Reasons: SHORT (truncated), FOREIGN (magic), VERSION (not 1), CORRUPT (CRC),
 * MALFORMED (reserved bits, a length past the end, a trailing byte), LIMIT, NOMEM. Returns CR_OK (*why =
 * CR_TIER_VALUE_OK) or CR_ERROR with *why set and *out NULL. buf is only read and need not be aligned.
 */
int cr_inval_entry_decode(const char *buf, size_t len, cr_inval_entry_t **out, cr_tier_value_error_t *why);

/* A copy of the entry in one malloc'ed block, laid out as the decoder's (free() it); NULL when out of memory. */
cr_inval_entry_t *cr_inval_entry_copy(const cr_inval_entry_t *e);

/* Do the two entries say the same (ids, time, flags as booleans, every list item by item)? */
int cr_inval_entry_equal(const cr_inval_entry_t *a, const cr_inval_entry_t *b);

/* Does the entry cover this finished object (same rule as the local purge: its path, prefix, tags, everything)? Only
 * the object's key and tags are read (any thread holding a reference). */
int cr_inval_entry_covers(const cr_inval_entry_t *e, const cr_object_t *obj);

#endif
