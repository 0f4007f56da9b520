/*
 * store_evict.c: the store's CLOCK eviction under its byte budget (store.c's top comment, "Eviction", has the policy).
 *
 * Locking: cr_store_evict() runs with no lock held and takes one shard lock at a time (do_cr_store_evict_one under
 * it); what it unlinks is retired after the lock is dropped. Calls only store_table.c and store_retire.c.
 */
#include "store_internal.h"

#include <pthread.h>

/* ---- eviction ---- */

/* Runs the CLOCK hand over the table (clearing referenced bits on the way) until it has seen CR_STORE_EVICT_SAMPLE
 * unreferenced objects other than `spare`, or a whole sweep found some, and unlinks the oldest of them (by
 * response_time_ms: slots are in no particular order, so the hand alone would evict a new object as readily as an
 * old one). Returns 1 if it unlinked one, 0 when the shard holds nothing else than `spare`, or only objects that
 * lookups kept marking referenced through two sweeps. */
static int do_cr_store_evict_one(cr_store_t *store, cr_store_shard_t *shard, const cr_object_t *spare, cr_store_leaving_t *leaving)
{
    cr_store_table_t *t = shard->table;
    size_t steps, best = SIZE_MAX, sampled = 0;
    uint64_t best_time = UINT64_MAX;

    if (shard->count == 0 || (shard->count == 1 && cr_store_linked_state(spare) == 1 &&
                              cr_store_shard(store, spare->hash) == shard))
        return 0;
    /* two sweeps at most: the first may only clear referenced bits */
    for (steps = 0; steps != 2 * (t->mask + 1) + 1; ++steps) {
        size_t i = shard->hand;
        uintptr_t w = t->slots[i];
        cr_object_t *obj;
        if (best != SIZE_MAX && steps > t->mask)
            break; /* a whole sweep: take the oldest found */
        shard->hand = (i + 1) & t->mask;
        if (w <= CR_STORE_SLOT_TOMB)
            continue;
        obj = cr_store_slot_object(w);
        if (__atomic_load_n(&obj->st_referenced, __ATOMIC_RELAXED)) {
            __atomic_store_n(&obj->st_referenced, 0, __ATOMIC_RELAXED);
            continue;
        }
        if (obj == spare)
            continue;
        if (best == SIZE_MAX || obj->response_time_ms < best_time) {
            best = i;
            best_time = obj->response_time_ms;
        }
        if (++sampled == CR_STORE_EVICT_SAMPLE)
            break;
    }
    if (best == SIZE_MAX)
        return 0;
    do_cr_store_unlink_at(store, shard, best, 1, leaving);
    return 1;
}

/* Evicts until bytes <= limit, never choosing `spare` (the object just inserted). Gives up, leaving the store over its
 * limit, only after two full rounds of shards without a victim, which needs other threads racing to empty the store
 * (or a store holding nothing but `spare` and its index, which cannot exceed the limit on their own). */
void cr_store_evict(cr_store_t *store, const cr_object_t *spare)
{
    cr_store_leaving_t leaving = {NULL, NULL, 0};
    unsigned idle = 0;
    size_t bytes;

    while ((bytes = __atomic_load_n(&store->bytes, __ATOMIC_RELAXED)) > store->limit && idle < 2 * CR_STORE_SHARDS) {
        cr_store_shard_t *shard = &store->shards[__atomic_fetch_add(&store->cursor, 1, __ATOMIC_RELAXED) % CR_STORE_SHARDS];
        int evicted = 0;

        pthread_mutex_lock(&shard->lock);
        /* first round: skip shards holding under half their fair share */
        if (idle >= CR_STORE_SHARDS || shard->bytes >= bytes / CR_STORE_SHARDS / 2) {
            evicted = do_cr_store_evict_one(store, shard, spare, &leaving);
            if (evicted)
                do_cr_store_maybe_shrink(store, shard, &leaving);
        }
        pthread_mutex_unlock(&shard->lock);

        if (evicted) {
            __atomic_add_fetch(&store->evictions, 1, __ATOMIC_RELAXED);
            idle = 0;
        } else {
            ++idle;
        }
        if (leaving.num_objs >= 64)
            cr_store_retire(store, &leaving);
    }
    cr_store_retire(store, &leaving);
}
