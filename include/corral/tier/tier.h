/*
 * tier.h: the shared tier of one process (tier.c): its memcached client, the invalidation log's seen ring, its
 * settings and its counters. cr_rt.tier points at it when tier.memcached.servers is configured, else it is NULL and
 * nothing of the tier runs.
 *
 * Invariants: made by the server before the threads start and freed after they are joined; the fields are constant
 * in between, except the counters (atomics, relaxed: statistics only). Any thread may read it.
 */
#ifndef CORRAL_TIER_TIER_H
#define CORRAL_TIER_TIER_H

#include <stddef.h>
#include <stdint.h>

#include "corral/tier/mc.h"
#include "corral/tier/value.h"

struct st_cr_inval_ring_t;
struct st_cr_inval_sync_t;

/* clang-format off */
#define CR_TIER_COUNTERS(X) \
    X(l2_hits, "tier_l2_hits_total", "Fills answered from the shared tier (L2) instead of the upstream.") \
    X(l2_misses, "tier_l2_misses_total", "L2 lookups that found nothing usable (absent, refused, skipped or failed).") \
    X(l2_errors, "tier_l2_errors_total", "L2 calls that failed (timeout, connection) or were skipped by an open breaker.") \
    X(l2_sets, "tier_l2_sets_total", "Objects written to L2.") \
    X(l2_set_errors, "tier_l2_set_errors_total", "L2 writes that failed, were skipped, or found no room on the worker pool.") \
    X(l2_too_big, "tier_l2_too_big_total", "Objects kept in L1 only: their value is over tier.memcached.max_item_size.") \
    X(values_refused, "tier_values_refused_total", "L2 values refused: corrupt, foreign, another format, another key, covered by an invalidation.") \
    X(leases_taken, "tier_leases_taken_total", "Cross-pod fill leases this pod took.") \
    X(lease_waits, "tier_lease_waits_total", "Fills that waited for another pod's lease holder.") \
    X(lease_served, "tier_lease_served_total", "Fills that waited on a lease and were then answered from L2.") \
    X(lease_gave_up, "tier_lease_gave_up_total", "Fills that stopped waiting on a lease (timeout, no-store marker) and went upstream.") \
    X(inval_published, "tier_invalidations_published_total", "Invalidations this pod wrote to the shared log.") \
    X(inval_publish_errors, "tier_invalidation_publish_errors_total", "Invalidations that could not be written to the log yet (retried).") \
    X(inval_applied, "tier_invalidations_applied_total", "Invalidations from other pods applied to this pod's L1.") \
    X(inval_gaps, "tier_invalidation_gaps_total", "Times this pod could not prove it saw every invalidation and dropped its L1.")
/* clang-format on */

typedef struct st_cr_tier_counters_t {
#define CR_TIER_COUNTER_FIELD(field, name, help) uint64_t field;
    CR_TIER_COUNTERS(CR_TIER_COUNTER_FIELD)
#undef CR_TIER_COUNTER_FIELD
    uint64_t refused_by[CR_TIER_VALUE_NUM_ERRORS]; /* values refused, by reason */
    uint64_t refused_covered;                     /* values refused: covered by an invalidation, or the log unknown */
    cr_hist_t inval_delay;                        /* wall-clock delay of applied entries (publisher's time to here) */
    uint64_t inval_delay_ms_max;
} cr_tier_counters_t;

typedef struct st_cr_tier_t {
    cr_mc_t *mc;
    struct st_cr_inval_ring_t *ring; /* the invalidation log seen so far (tier/inval_ring.h) */
    struct st_cr_inval_sync_t *sync; /* the log's thread (tier/inval_sync.h); set by the server once it runs */
    uint64_t pod_id;                 /* random at start: this pod in the invalidation log */
    size_t max_value_bytes;          /* tier.memcached.max_item_size less a key and memcached's item overhead */
    uint64_t lease_ttl_ms;
    uint64_t lease_poll_ms;
    uint64_t inval_max_delay_ms;
    uint64_t inval_poll_ms;
    cr_tier_counters_t counters;
} cr_tier_t;

#define CR_TIER_COUNT(tier, field) __atomic_add_fetch(&(tier)->counters.field, 1, __ATOMIC_RELAXED)
#define CR_TIER_READ(tier, field) __atomic_load_n(&(tier)->counters.field, __ATOMIC_RELAXED)

typedef struct st_cr_tier_conf_t {
    cr_mc_conf_t mc;
    size_t max_item_size;
    uint64_t lease_ttl_ms, lease_poll_ms, inval_max_delay_ms, inval_poll_ms;
} cr_tier_conf_t;

/* NULL (logged) when the client cannot be made. */
cr_tier_t *cr_tier_new(const cr_tier_conf_t *conf);
void cr_tier_free(cr_tier_t **tier);

/* Counts a refused value by its reason (and in values_refused); CR_TIER_VALUE_NUM_ERRORS: covered by an
 * invalidation (refused_covered). */
void cr_tier_count_refused(cr_tier_t *tier, cr_tier_value_error_t why);

/* Wall-clock ms since the epoch (values and log entries carry wall-clock times). */
uint64_t cr_tier_wall_ms(void);

#endif
