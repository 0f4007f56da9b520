/*
 * inval_ring.h: the seen ring (inval_ring.c): the last `capacity` invalidation log entries (inval_log.h) this pod has
 * seen, plus its own publications not yet seen back in the log, so that a pod can decide whether an object it reads
 * from the shared tier (L2) is covered by an invalidation it knows of and must be refused.
 *
 * The rule: a fill records `since`, the top of its pod's ring when it starts, with the object it writes to L2. A
 * reader refuses that object when an invalidation the writer's fill may not have seen covers it: an entry with seq >
 * since, or one of the reader's own pending publications (not ordered against the log yet). The ring can vouch only
 * for seq numbers above its floor; an object with since < floor is refused (nothing proves it clean).
 *
 * Invariants:
 *  - floor <= top; every entry held has floor < seq <= top, in increasing seq; floor and top never decrease.
 *  - a seq in (floor, top] that is not held had no entry (the poller skipped it as proved empty): an entry leaves the
 *    ring only when the floor rises to or past its seq (eviction, set_floor, pending overflow, a failure below).
 *  - every failure (no memory, overflow, an out-of-order add) raises the floor instead of losing an entry: the ring
 *    errs only towards refusing.
 * Locking: one mutex inside guards everything; cr_inval_ring_top is a lock-free atomic load (acquire) of a copy of
 * top that is stored (release) under the mutex after the entry it names is in the ring, so a thread that read top = S
 * and then asks the ring sees entry S. Any thread may call any function; entries are copied in, never shared out.
 */
#ifndef CORRAL_TIER_INVAL_RING_H
#define CORRAL_TIER_INVAL_RING_H

#include "corral/core/common.h"
#include "corral/cache/object.h"
#include "corral/tier/inval_log.h"

/* Most own publications waiting to be seen back in the log. */
#define CR_INVAL_PENDING_MAX 1024u

typedef struct st_cr_inval_ring_t cr_inval_ring_t;

/* A ring holding up to `capacity` entries (0 holds none: every add just raises the floor). NULL when out of memory. */
cr_inval_ring_t *cr_inval_ring_new(size_t capacity);
/* Frees the ring and every entry it holds; sets *ring to NULL. Accepts NULL and *ring == NULL. */
void cr_inval_ring_free(cr_inval_ring_t **ring);

/*
 * The poller adds entries in increasing seq order (the entry is copied). A seq that was skipped without set_floor is
 * taken as "no entry": the poller only skips seq numbers it proved empty, or calls set_floor. Adding also removes the
 * pending publication with the same (pod_id, local_id), if any. Out of order:
 *  - seq <= floor: nothing is kept (the floor already refuses every object such an entry could matter for), the
 *    pending one is still removed;
 *  - floor < seq <= top and an entry with that seq is held: a re-read, nothing changes (but the pending removal);
 *  - floor < seq <= top otherwise (a caller bug): the floor is raised to seq.
 * Returns CR_OK, or CR_ERROR when the copy cannot be allocated: the floor is then raised to seq (and top with it).
 */
int cr_inval_ring_add(cr_inval_ring_t *ring, uint64_t seq, const cr_inval_entry_t *e);

/* The ring can vouch only for seq numbers > floor: entries with seq <= floor may be missing. Evicting the oldest
 * entry on overflow raises the floor to that entry's seq. The poller calls set_floor(S) when it learns entries up
 * to S were lost (log overrun, outage) and at start (floor = the first seq it could not read). A floor at or below
 * the current one changes nothing; a higher one drops the entries it passes and raises top to it when above. */
void cr_inval_ring_set_floor(cr_inval_ring_t *ring, uint64_t floor);

/* top: the highest seq added or set as floor (atomic read: no lock, called on every cache miss). */
uint64_t cr_inval_ring_top(const cr_inval_ring_t *ring);
/* The current floor (under the mutex; for metrics and tests). */
uint64_t cr_inval_ring_floor(cr_inval_ring_t *ring);

/*
 * Own publications not yet seen back in the log: added by cr_invalidate before it returns (any thread), removed when
 * the poller adds an entry with the same (pod_id, local_id), or by cr_inval_ring_forget_pending. A pending entry
 * covers regardless of `since`. Bounded (CR_INVAL_PENDING_MAX); past it the oldest pending is dropped AND the floor is
 * raised to top (the pod can no longer vouch: conservative). Returns CR_OK, or CR_ERROR when the copy cannot be
 * allocated: the floor is then raised to top too.
 */
int cr_inval_ring_add_pending(cr_inval_ring_t *ring, const cr_inval_entry_t *e);
/* Drops the pending publication (pod_id, local_id). Returns 1 when there was one, else 0. The floor does not move:
 * call it when the entry is known to be in the log at a seq the ring holds or that is at most the floor (giving up
 * on an entry that never reached the log is the caller's to make conservative, e.g. set_floor(top)). */
int cr_inval_ring_forget_pending(cr_inval_ring_t *ring, uint64_t pod_id, uint64_t local_id);
/* How many publications are pending (for metrics and tests). */
size_t cr_inval_ring_num_pending(cr_inval_ring_t *ring);

/*
 * Is an L2 object written by a fill that had seen the log up to `since` (its writer's top at the fill's start)
 * covered by something this pod knows: since < floor (cannot prove -> 1), or an entry with seq > since that covers
 * it, or a pending one that covers it? 1 = refuse the L2 copy, 0 = usable. Soft entries refuse as hard ones do.
 * O(entries above since + pending) cover checks, under the mutex.
 */
int cr_inval_ring_refuses(cr_inval_ring_t *ring, uint64_t since, const cr_object_t *obj);

#endif
