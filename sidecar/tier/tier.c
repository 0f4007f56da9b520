/*
 * tier.c: the process's shared tier object (see tier.h): made once from the config, freed at exit.
 *
 * Invariants: the fields are written here only, before any thread uses the tier; the counters are atomics.
 */
#include "corral/tier/tier.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "corral/core/common.h"
#include "corral/core/log.h"
#include "corral/tier/inval_ring.h"

/* What memcached needs of an item besides the value: its header, the key (at most CR_TIER_KEY_MAX + 1), the CAS and
 * the suffix; 256 bytes covers memcached 1.6's item header with room to spare. */
#define CR_TIER_ITEM_OVERHEAD 256u
/* Log entries the ring keeps: an L2 value written by a fill that began before the oldest of them is refused. */
#define CR_TIER_RING_CAPACITY 4096u

uint64_t cr_tier_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

cr_tier_t *cr_tier_new(const cr_tier_conf_t *conf)
{
    cr_tier_t *tier = calloc(1, sizeof(*tier));
    cr_mc_conf_t mc = conf->mc;

    if (tier == NULL)
        return NULL;
    tier->max_value_bytes = conf->max_item_size > CR_TIER_ITEM_OVERHEAD ? conf->max_item_size - CR_TIER_ITEM_OVERHEAD : 0;
    mc.max_value_bytes = conf->max_item_size;
    tier->lease_ttl_ms = conf->lease_ttl_ms;
    tier->lease_poll_ms = conf->lease_poll_ms;
    tier->inval_max_delay_ms = conf->inval_max_delay_ms;
    tier->inval_poll_ms = conf->inval_poll_ms;
    if (getrandom(&tier->pod_id, sizeof(tier->pod_id), 0) != (ssize_t)sizeof(tier->pod_id))
        tier->pod_id = ((uint64_t)getpid() << 32) ^ cr_tier_wall_ms();
    if (tier->pod_id == 0)
        tier->pod_id = 1;
    if ((tier->mc = cr_mc_new(&mc)) == NULL || (tier->ring = cr_inval_ring_new(CR_TIER_RING_CAPACITY)) == NULL) {
        cr_log_error("tier: could not start the memcached client");
        cr_tier_free(&tier);
        return NULL;
    }
    return tier;
}

void cr_tier_free(cr_tier_t **tierp)
{
    cr_tier_t *tier = *tierp;
    *tierp = NULL;
    if (tier == NULL)
        return;
    cr_mc_free(&tier->mc);
    cr_inval_ring_free(&tier->ring);
    free(tier);
}

void cr_tier_count_refused(cr_tier_t *tier, cr_tier_value_error_t why)
{
    CR_TIER_COUNT(tier, values_refused);
    if ((unsigned)why < CR_TIER_VALUE_NUM_ERRORS)
        __atomic_add_fetch(&tier->counters.refused_by[why], 1, __ATOMIC_RELAXED);
    else
        __atomic_add_fetch(&tier->counters.refused_covered, 1, __ATOMIC_RELAXED);
}
