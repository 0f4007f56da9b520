/*
 * inval_epoch.h: which invalidations a fill in flight has missed, so that the fill is stored unless one of them covers
 * what it fetched (the fill race; issue 10, section 5).
 *
 * The rule. A fill takes a snapshot (cr_inval_snapshot) before it asks the upstream. Its answer may be stored only
 * if no invalidation that may cover the object was noted after the snapshot (cr_inval_covers). Every invalidation is
 * noted (cr_inval_note_*) before it visits any store shard, and the store evaluates cr_inval_covers under the shard
 * lock of the insert; so an invalidation either reached the shard after the insert (and finds the object there to
 * purge) or was noted before the insert looked (and the insert is declined). An invalidation noted before the
 * snapshot concerns a write the upstream had finished before the fill's request left, so its answer is current.
 *
 * Two kinds of record, chosen for what the fill knows when it starts:
 *  - paths (every invalidation a write makes, and admin purges by key, name exact normalized paths): one of
 *    CR_INVAL_SLOTS 64-bit words, indexed by the path's hash, holds a count of the notes made to it (high 40 bits) and
 *    a 24-bit fragment of the hash of the last path noted there. The snapshot holds the fill's word. At the check, an
 *    unchanged word means no note; a word moved by exactly one note whose fragment differs from the fill's means that
 *    one note was of another path (equal paths have equal fragments); anything else (two or more notes, or an equal
 *    fragment) counts as covering. So a fill loses its store to other paths only when two of their notes land in its
 *    slot during the fill (about (n / CR_INVAL_SLOTS)^2 / 2 for n path notes during it) or one does with an equal
 *    fragment (1 in 2^24 of that); it never stores past a note of its own path. The count wraps after 2^40 notes to
 *    one slot: a fill would have to last through that many (weeks at any rate corral can serve) to be fooled.
 *  - coarse (a path prefix, a key prefix, a tag, one primary key, everything): a sequence number moves and the record
 *    (kind, length and 64-bit hash of the prefix, tag or key) goes into a ring of the last CR_INVAL_RING ones. The
 *    snapshot holds the sequence number; the check walks the records after it: the object's path (or key) starts with
 *    a purged prefix (the hash of its slice of the same length is compared), one of its tags (known only once the
 *    response came) has a purged tag's hash and length, its key has the purged key's, or everything was purged. When
 *    the ring has been overwritten past the snapshot, the check says "covered". Hash collisions (equal hashes of
 *    unequal strings) only cause false non-stores.
 *
 * Invariants: path words' counts and the sequence only grow; a record's slot holds its sequence number exactly while
 * it holds that record's fields (a seqlock: 0 while being written); the sequence is published only after its record
 * is complete. Memory is fixed at creation (CR_INVAL_SLOTS * 8 + CR_INVAL_RING * 24 bytes, about 262 KiB).
 *
 * Locking: snapshots, path notes (a compare-and-swap) and checks take no lock. Coarse notes take one mutex among
 * themselves (they are rare: admin purges by prefix or tag, prefix entries of a route's `invalidate` list), never
 * held while anything else is locked; checks never take it, so calling cr_inval_covers under a store shard lock adds
 * no lock order.
 */
#ifndef CORRAL_INVAL_EPOCH_H
#define CORRAL_INVAL_EPOCH_H

#include "corral/core/common.h"
#include "corral/cache/object.h"

#define CR_INVAL_SLOT_BITS 15
#define CR_INVAL_SLOTS (1u << CR_INVAL_SLOT_BITS)
#define CR_INVAL_RING 256 /* power of two */

typedef struct st_cr_inval_t cr_inval_t;

/* What a fill remembers when it starts. */
typedef struct st_cr_inval_snapshot_t {
    uint64_t path_hash; /* the path hash the snapshot was taken for (the object's path_hash must be the same) */
    uint64_t path;      /* the word of the path's slot */
    uint64_t coarse;    /* the coarse sequence number */
} cr_inval_snapshot_t;

/* A new, empty record set, or NULL when out of memory. */
cr_inval_t *cr_inval_new(void);
/* Frees it and clears *inv (NULL is fine). No thread may still use it. */
void cr_inval_free(cr_inval_t **inv);

/* Takes a fill's snapshot for the path hash its objects will carry (cr_path_hash(key)). Lock-free; never fails. */
void cr_inval_snapshot(const cr_inval_t *inv, uint64_t path_hash, cr_inval_snapshot_t *out);

/* Notes an invalidation, before it visits the store. Never fail.
 *  - note_path (lock-free): every object whose path_hash is this one. */
void cr_inval_note_path(cr_inval_t *inv, uint64_t path_hash);
/* Coarse ones (take the notes' mutex briefly):
 *  - note_key: one primary key (exact bytes);
 *  - note_path_prefix: every object whose normalized path (cr_inval_key_path) starts with these bytes;
 *  - note_key_prefix: every object whose primary key starts with these bytes (length 0: everything);
 *  - note_tag: every object carrying this tag (exact bytes);
 *  - note_all: everything (also for purges whose predicate cannot be recorded). */
void cr_inval_note_key(cr_inval_t *inv, const char *key, size_t len);
void cr_inval_note_path_prefix(cr_inval_t *inv, const char *prefix, size_t len);
void cr_inval_note_key_prefix(cr_inval_t *inv, const char *prefix, size_t len);
void cr_inval_note_tag(cr_inval_t *inv, const char *tag, size_t len);
void cr_inval_note_all(cr_inval_t *inv);

/*
 * 1 when an invalidation noted after `snap` may cover obj (its key, path_hash, path, or tags; obj need not be
 * finished, but its key, path_hash (snap->path_hash) and tags are set), or when that cannot be told any more (the ring overflowed);
 * 0 when none can. Lock-free: O(coarse records since the snapshot, at most CR_INVAL_RING), each costing a hash of at
 * most the prefix's length or a look at the object's tags. Never fails.
 */
int cr_inval_covers(const cr_inval_t *inv, const cr_inval_snapshot_t *snap, const cr_object_t *obj);

/* The slot a path hash's notes go to (for tests: two paths sharing one are what a false non-store needs). */
size_t cr_inval_slot_of(uint64_t path_hash);

/* The normalized path of a primary key as path prefixes see it: cr_path_tag(key) without its leading '\n' (points
 * into key). */
cr_str_t cr_inval_key_path(cr_str_t key);

#endif
