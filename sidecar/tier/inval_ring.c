/*
 * inval_ring.c: the seen ring of the invalidation log (see inval_ring.h for the rule it decides).
 *
 * Layout: `slots` is a circular array of `capacity` (seq, entry copy) pairs, oldest at `head`, `count` of them, seq
 * increasing from head on; `pending` a circular array of CR_INVAL_PENDING_MAX entry copies, oldest at `pending_head`.
 * Entry copies are cr_inval_entry_copy blocks, owned by the ring and freed when they leave it.
 *
 * Invariants: floor <= top; every held seq is in (floor, top], increasing from head; whatever leaves the ring other
 * than by a pending entry being seen back in the log raises the floor to cover it, so the ring never vouches for a
 * seq it lost. `top_atomic` equals top; it is stored (release) under the mutex after the change it names, and read
 * (acquire) without it.
 * Locking: `lock` guards every field but top_atomic (and capacity, fixed at creation). While it is held, nothing but
 * free() and cover checks (pure reads of an entry and of the object the caller holds a reference to) is called; entry
 * copies are made before it is taken.
 */
#include "corral/tier/inval_ring.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct st_cr_inval_slot_t {
    uint64_t seq;
    cr_inval_entry_t *e;
} cr_inval_slot_t;

struct st_cr_inval_ring_t {
    pthread_mutex_t lock;
    uint64_t floor;      /* seq <= floor may be missing */
    uint64_t top;        /* the highest seq added or set as floor */
    uint64_t top_atomic; /* a copy of top for lock-free readers (__atomic) */
    size_t capacity, head, count;
    cr_inval_slot_t *slots;
    size_t pending_head, num_pending;
    cr_inval_entry_t *pending[CR_INVAL_PENDING_MAX];
};

cr_inval_ring_t *cr_inval_ring_new(size_t capacity)
{
    cr_inval_ring_t *ring;

    if (capacity > SIZE_MAX / sizeof(cr_inval_slot_t) || (ring = calloc(1, sizeof(*ring))) == NULL)
        return NULL;
    if (capacity != 0 && (ring->slots = calloc(capacity, sizeof(cr_inval_slot_t))) == NULL) {
        free(ring);
        return NULL;
    }
    ring->capacity = capacity;
    pthread_mutex_init(&ring->lock, NULL);
    return ring;
}

void cr_inval_ring_free(cr_inval_ring_t **ring)
{
    cr_inval_ring_t *r;
    size_t i;

    if (ring == NULL || (r = *ring) == NULL)
        return;
    for (i = 0; i != r->count; ++i)
        free(r->slots[(r->head + i) % r->capacity].e);
    for (i = 0; i != r->num_pending; ++i)
        free(r->pending[(r->pending_head + i) % CR_INVAL_PENDING_MAX]);
    free(r->slots);
    pthread_mutex_destroy(&r->lock);
    free(r);
    *ring = NULL;
}

static void do_cr_inval_set_top(cr_inval_ring_t *ring, uint64_t top)
{
    if (top <= ring->top)
        return;
    ring->top = top;
    __atomic_store_n(&ring->top_atomic, top, __ATOMIC_RELEASE);
}

/* Raises the floor to `floor` (and top with it if needed), dropping the entries it passes. */
static void do_cr_inval_raise_floor(cr_inval_ring_t *ring, uint64_t floor)
{
    if (floor <= ring->floor)
        return;
    ring->floor = floor;
    while (ring->count != 0 && ring->slots[ring->head].seq <= floor) {
        free(ring->slots[ring->head].e);
        ring->slots[ring->head].e = NULL;
        ring->head = (ring->head + 1) % ring->capacity;
        --ring->count;
    }
    do_cr_inval_set_top(ring, floor);
}

/* Removes pending entry i (0 = oldest), keeping the order of the others. */
static void do_cr_inval_pending_remove(cr_inval_ring_t *ring, size_t i)
{
    free(ring->pending[(ring->pending_head + i) % CR_INVAL_PENDING_MAX]);
    for (; i + 1 < ring->num_pending; ++i)
        ring->pending[(ring->pending_head + i) % CR_INVAL_PENDING_MAX] = ring->pending[(ring->pending_head + i + 1) % CR_INVAL_PENDING_MAX];
    --ring->num_pending;
}

static int do_cr_inval_pending_forget(cr_inval_ring_t *ring, uint64_t pod_id, uint64_t local_id)
{
    size_t i;
    for (i = 0; i != ring->num_pending; ++i) {
        const cr_inval_entry_t *p = ring->pending[(ring->pending_head + i) % CR_INVAL_PENDING_MAX];
        if (p->pod_id == pod_id && p->local_id == local_id) {
            do_cr_inval_pending_remove(ring, i);
            return 1;
        }
    }
    return 0;
}

static int do_cr_inval_holds(const cr_inval_ring_t *ring, uint64_t seq)
{
    size_t i;
    for (i = 0; i != ring->count; ++i)
        if (ring->slots[(ring->head + i) % ring->capacity].seq == seq)
            return 1;
    return 0;
}

int cr_inval_ring_add(cr_inval_ring_t *ring, uint64_t seq, const cr_inval_entry_t *e)
{
    cr_inval_entry_t *copy = ring->capacity != 0 ? cr_inval_entry_copy(e) : NULL; /* outside the lock */
    int rc = CR_OK;

    pthread_mutex_lock(&ring->lock);
    do_cr_inval_pending_forget(ring, e->pod_id, e->local_id);
    if (seq <= ring->floor) {
        /* nothing to keep */
    } else if (seq <= ring->top) {
        if (!do_cr_inval_holds(ring, seq))
            do_cr_inval_raise_floor(ring, seq); /* out of order: the ring may have vouched for seq as empty */
    } else if (copy == NULL) {
        do_cr_inval_raise_floor(ring, seq); /* cannot keep it: vouch for nothing up to it */
        rc = ring->capacity != 0 ? CR_ERROR : CR_OK;
    } else {
        if (ring->count == ring->capacity)
            do_cr_inval_raise_floor(ring, ring->slots[ring->head].seq); /* evicts the oldest */
        ring->slots[(ring->head + ring->count) % ring->capacity] = (cr_inval_slot_t){seq, copy};
        ++ring->count;
        copy = NULL;
        do_cr_inval_set_top(ring, seq);
    }
    pthread_mutex_unlock(&ring->lock);
    free(copy); /* not kept */
    return rc;
}

void cr_inval_ring_set_floor(cr_inval_ring_t *ring, uint64_t floor)
{
    pthread_mutex_lock(&ring->lock);
    do_cr_inval_raise_floor(ring, floor);
    pthread_mutex_unlock(&ring->lock);
}

uint64_t cr_inval_ring_top(const cr_inval_ring_t *ring)
{
    return __atomic_load_n(&ring->top_atomic, __ATOMIC_ACQUIRE);
}

uint64_t cr_inval_ring_floor(cr_inval_ring_t *ring)
{
    uint64_t floor;
    pthread_mutex_lock(&ring->lock);
    floor = ring->floor;
    pthread_mutex_unlock(&ring->lock);
    return floor;
}

int cr_inval_ring_add_pending(cr_inval_ring_t *ring, const cr_inval_entry_t *e)
{
    cr_inval_entry_t *copy = cr_inval_entry_copy(e);

    pthread_mutex_lock(&ring->lock);
    if (copy == NULL) {
        do_cr_inval_raise_floor(ring, ring->top); /* an invalidation this pod cannot remember: vouch for nothing old */
    } else {
        if (ring->num_pending == CR_INVAL_PENDING_MAX) {
            do_cr_inval_pending_remove(ring, 0);
            do_cr_inval_raise_floor(ring, ring->top);
        }
        ring->pending[(ring->pending_head + ring->num_pending) % CR_INVAL_PENDING_MAX] = copy;
        ++ring->num_pending;
    }
    pthread_mutex_unlock(&ring->lock);
    return copy != NULL ? CR_OK : CR_ERROR;
}

int cr_inval_ring_forget_pending(cr_inval_ring_t *ring, uint64_t pod_id, uint64_t local_id)
{
    int found;
    pthread_mutex_lock(&ring->lock);
    found = do_cr_inval_pending_forget(ring, pod_id, local_id);
    pthread_mutex_unlock(&ring->lock);
    return found;
}

size_t cr_inval_ring_num_pending(cr_inval_ring_t *ring)
{
    size_t n;
    pthread_mutex_lock(&ring->lock);
    n = ring->num_pending;
    pthread_mutex_unlock(&ring->lock);
    return n;
}

int cr_inval_ring_refuses(cr_inval_ring_t *ring, uint64_t since, const cr_object_t *obj)
{
    int refuse = 0;
    size_t i;

    pthread_mutex_lock(&ring->lock);
    if (since < ring->floor)
        refuse = 1;
    for (i = ring->count; !refuse && i != 0; --i) { /* newest first, down to since */
        const cr_inval_slot_t *s = &ring->slots[(ring->head + i - 1) % ring->capacity];
        if (s->seq <= since)
            break;
        refuse = cr_inval_entry_covers(s->e, obj);
    }
    for (i = 0; !refuse && i != ring->num_pending; ++i)
        refuse = cr_inval_entry_covers(ring->pending[(ring->pending_head + i) % CR_INVAL_PENDING_MAX], obj);
    pthread_mutex_unlock(&ring->lock);
    return refuse;
}
