/*
 * guard.c: the rapid-reset budget (see guard.h).
 *
 * Invariants: one table per worker thread, touched only by that thread. The table is direct-mapped on the
 * connection id: a collision simply replaces the older entry (a connection may then get a fresh budget, never a
 * smaller one), so memory is fixed and no entry ever needs freeing.
 */
#include "corral/guard.h"

#include <stdlib.h>

#define GUARD_SLOTS 4096 /* power of two */

typedef struct st_cr_guard_slot_t {
    uint64_t conn_id; /* 0: empty (h2o's connection ids start at 1) */
    uint64_t window_start;
    uint32_t cancels;
} cr_guard_slot_t;

struct st_cr_guard_t {
    cr_guard_slot_t slots[GUARD_SLOTS];
};

cr_guard_t *cr_guard_new(void)
{
    return calloc(1, sizeof(cr_guard_t));
}

static cr_guard_slot_t *slot_of(cr_guard_t *g, uint64_t conn_id)
{
    return &g->slots[(conn_id * 0x9E3779B97F4A7C15ull >> 40) & (GUARD_SLOTS - 1)];
}

int cr_guard_is_blocked(cr_guard_t *g, uint64_t conn_id, uint64_t now)
{
    cr_guard_slot_t *s = slot_of(g, conn_id);
    if (s->conn_id != conn_id)
        return 0;
    if (now - s->window_start >= CR_GUARD_WINDOW_MS) {
        s->window_start = now;
        s->cancels = 0;
        return 0;
    }
    return s->cancels >= CR_GUARD_BUDGET;
}

void cr_guard_note_cancel(cr_guard_t *g, uint64_t conn_id, uint64_t now)
{
    cr_guard_slot_t *s = slot_of(g, conn_id);
    if (s->conn_id != conn_id || now - s->window_start >= CR_GUARD_WINDOW_MS) {
        s->conn_id = conn_id;
        s->window_start = now;
        s->cancels = 0;
    }
    if (s->cancels != UINT32_MAX)
        ++s->cancels;
}
