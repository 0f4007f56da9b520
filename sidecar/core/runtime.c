/*
 * runtime.c: the process-wide state cr_rt and the per-thread timeout slots (runtime.h).
 *
 * Invariants: cr_thread_timeout runs on the thread that owns t (the slots list is that thread's); it allocates a
 * slot once per distinct duration and never frees it (threads live as long as the process). No locks.
 */
#include "corral/core/runtime.h"

#include <stdlib.h>

cr_runtime_t cr_rt;

h2o_timeout_t *cr_thread_timeout(cr_thread_t *t, uint64_t ms)
{
    h2o_linklist_t *n;
    cr_timeout_slot_t *slot;
    for (n = t->timeout_slots.next; n != &t->timeout_slots; n = n->next) {
        slot = H2O_STRUCT_FROM_MEMBER(cr_timeout_slot_t, link, n);
        if (slot->ms == ms)
            return &slot->timeout;
    }
    slot = calloc(1, sizeof(*slot));
    assert(slot != NULL);
    slot->ms = ms;
    h2o_timeout_init(t->ctx.loop, &slot->timeout, ms);
    h2o_linklist_insert(&t->timeout_slots, &slot->link);
    return &slot->timeout;
}
