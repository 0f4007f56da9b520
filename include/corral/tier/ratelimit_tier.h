/*
 * ratelimit_tier.h: fleet-wide rate limits (`rate_limit.scope: cluster`, issue 16) through the shared tier's
 * memcached (ratelimit_tier.c).
 *
 * Counting: fixed windows on the wall clock, so every pod names the same window; a window holds the route's burst at
 * its rate (Q = min(burst, N) tokens in Q/N of the rate's unit, at least 100 ms: cr_rl_cluster_window), so with the
 * default burst (N) it is the rate's unit (1 s for N/s, 1 min for N/m, 1 h for N/h). The fleet admits at most Q per
 * window (plus what pods borrowed, below). Pods take tokens in batches of max(1, Q / (40 * pods)) with one `incr` of
 * memcached key corral:v1:rl:<route hash>:<key hash>:<window number> (expiring after two windows, at least 2 s), on
 * the worker pool, never on a loop;
 * a grant is the part of the batch still under N. The hot path is local: a token is one atomic decrement, and when
 * a pod's tokens run low it asks for the next batch in the background. A pod whose tokens are gone while a batch is
 * on its way may borrow up to one batch (paid from the grant), so a pod below its share never waits on memcached;
 * at most pods * batch (2.5% of Q) more than Q per window can pass that way, and grants left unused at a window's
 * end are lost (the same bound, below Q).
 * memcached down (a failed incr): every cluster limit of this pod falls back to its share (rate / pods, the pod-scope
 * buckets) for a second at a time, then tries again; the change is logged once each way.
 * Invariants and locking: a fixed table of 4096 keys (direct-mapped by the key's hash); a key that finds its slot
 * held by another key in the same window uses its share instead. Every field is an atomic; no lock. A batch's job
 * is malloc'ed, runs on the pool and finishes on the submitting loop (core/workq.h).
 */
#ifndef CORRAL_TIER_RATELIMIT_TIER_H
#define CORRAL_TIER_RATELIMIT_TIER_H

#include <stdint.h>

#include "corral/conf/config.h"
#include "corral/core/runtime.h"

/* Takes a fleet-wide token for bucket `hash` of the route's limit at wall time now_ms, on thread t's loop. Returns 1
 * (admitted) or 0 (refused), with *remaining and *retry_ms for the headers; -1 when the fleet count cannot be used
 * (no tier or worker pool, memcached down, the slot held by another key): the caller uses this pod's share. */
int cr_rl_cluster_take(cr_thread_t *t, const cr_ratelimit_config_t *rl, uint64_t hash, uint64_t now_ms, uint64_t *remaining,
                       uint64_t *retry_ms);

/* The tokens a batch of `batch` gets when the window's counter is `total` after its incr: the part of
 * [total - batch, total) under quota. */
uint64_t cr_rl_cluster_grant(uint64_t total, uint64_t batch, uint64_t quota);

#endif
