/*
 * inval_sync.h: invalidations across pods through memcached (inval_sync.c): this pod's invalidations written to the
 * shared log, and the other pods' read from it and applied here, by one thread of the tier's own ("corral-inval").
 *
 * The log (README "Shared tier protocol", "Invalidation log"): a counter bumped by `incr` gives each entry its
 * sequence number; the entry is `set` under its numbered key. Every pod reads the counter every
 * tier.invalidation.poll_interval and reads the entries it has not seen, in order; it applies the other pods' and
 * adds every entry to its seen ring (inval_ring.h), against which L2 values are checked.
 *
 * What a pod does when it cannot prove it saw every entry (the log overrun or reset, an entry missing for longer
 * than tier.invalidation.max_delay, the log unreachable for longer than max_delay): it drops its whole L1 (a local
 * purge of everything, counted and logged once per gap) and vouches only for entries after the gap (the ring's floor),
 * so it never serves silently what an invalidation it missed covered. While the log is unreachable it refuses every
 * L2 value (cr_inval_sync_log_known).
 *
 * Invariants: libmemcached runs only on the sync thread (never on an event loop). cr_inval_sync_publish may be called
 * from any thread; it copies the entry, adds it to the ring as pending (so this pod's own L2 reads honour it at once)
 * and wakes the thread; it never blocks on the network. An entry that cannot be written yet stays in a bounded outbox
 * and is retried; past the bound the oldest is dropped and counted, and every pod will see the gap by then anyway.
 * Locking: one mutex guards the outbox and the wake-up condition; it is never held during a memcached call.
 */
#ifndef CORRAL_TIER_INVAL_SYNC_H
#define CORRAL_TIER_INVAL_SYNC_H

#include "corral/tier/inval_log.h"
#include "corral/tier/tier.h"

typedef struct st_cr_inval_sync_t cr_inval_sync_t;

/* Applies another pod's entry to this pod's L1 (the server passes the local half of cr_invalidate). */
typedef void (*cr_inval_apply_fn)(void *ctx, const cr_inval_entry_t *e);

/* Starts the thread (it reads the log's position and the recent entries first). NULL when it cannot start. */
cr_inval_sync_t *cr_inval_sync_start(cr_tier_t *tier, cr_inval_apply_fn apply, void *ctx);
/* Writes what is still in the outbox (one try), stops and joins the thread, frees it. Accepts NULL. */
void cr_inval_sync_stop(cr_inval_sync_t **sync);

/* Queues this pod's invalidation for the log (see above). e's pod_id, local_id and wall_ms are filled in here. */
void cr_inval_sync_publish(cr_inval_sync_t *sync, const cr_inval_entry_t *e);

/* Does this pod know the log well enough to trust L2 values (read once since start, not in a long outage)? */
int cr_inval_sync_log_known(const cr_tier_t *tier);

#endif
