/*
 * pin.c: the per-thread pin table behind pin.h.
 *
 * State (thread-local): CR_PIN_SLOTS slots, direct-mapped by the object's address. A slot with obj != NULL owns
 * exactly one shared reference to obj, and `count` pins of obj are out on top of it; `used` is set by every acquire
 * and cleared by cr_pin_maintain(). `outstanding` counts the pins out across all slots plus the shared references
 * handed out when the slot was busy (both are released through cr_pin_release()).
 *
 * Invariant: the references this thread holds on obj = (slot holds obj ? 1 : 0) + shared references handed out for
 * obj while its slot was busy; the pins out on obj = count + those. A release takes from `count` when its slot holds
 * obj with count > 0, else drops one shared reference; since references are fungible, both keep the sums right.
 * Locking: none (thread-local); the shared refcount is only touched through cr_object_addref/release.
 */
#include "corral/cache/pin.h"

typedef struct st_cr_pin_slot_t {
    cr_object_t *obj;
    uint32_t count;
    uint32_t used;
} cr_pin_slot_t;

static _Thread_local cr_pin_slot_t cr_pin_slots[CR_PIN_SLOTS];
static _Thread_local size_t cr_pin_out;

static inline cr_pin_slot_t *cr_pin_slot(const cr_object_t *obj)
{
    uintptr_t p = (uintptr_t)obj;
    return &cr_pin_slots[((p >> 4) ^ (p >> 12)) & (CR_PIN_SLOTS - 1)];
}

/* Empties a slot with no pin out, dropping its shared reference. */
static void cr_pin_evict(cr_pin_slot_t *slot)
{
    assert(slot->count == 0);
    cr_object_release(&slot->obj);
    slot->used = 0;
}

void cr_pin_acquire(cr_object_t *obj)
{
    cr_pin_slot_t *slot = cr_pin_slot(obj);

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    ++cr_pin_out;
    if (slot->obj == obj) {
        ++slot->count;
        slot->used = 1;
        return;
    }
    cr_object_addref(obj);
    if (slot->obj != NULL) {
        if (slot->count != 0)
            return; /* the slot is busy: this pin is a plain shared reference */
        cr_pin_evict(slot);
    }
    /* the reference just taken becomes the slot's own, and the pin is counted on it */
    slot->obj = obj;
    slot->count = 1;
    slot->used = 1;
}

void cr_pin_release(cr_object_t **objp)
{
    cr_object_t *obj = *objp;
    cr_pin_slot_t *slot;

    if (obj == NULL)
        return;
    *objp = NULL;
    assert(cr_pin_out != 0);
    --cr_pin_out;
    slot = cr_pin_slot(obj);
    if (slot->obj == obj && slot->count != 0) {
        --slot->count;
        return;
    }
    cr_object_release(&obj);
}

void cr_pin_maintain(void)
{
    size_t i;

    for (i = 0; i != CR_PIN_SLOTS; ++i) {
        cr_pin_slot_t *slot = &cr_pin_slots[i];
        if (slot->obj == NULL || slot->count != 0)
            continue;
        if (!slot->used || __atomic_load_n(&slot->obj->st_linked, __ATOMIC_RELAXED) != 1 ||
            (cr_object_flags(slot->obj) & CR_OBJ_INVALIDATED) != 0)
            cr_pin_evict(slot);
        else
            slot->used = 0;
    }
}

size_t cr_pin_drop_all(void)
{
    size_t i;

    for (i = 0; i != CR_PIN_SLOTS; ++i)
        if (cr_pin_slots[i].obj != NULL && cr_pin_slots[i].count == 0)
            cr_pin_evict(&cr_pin_slots[i]);
    return cr_pin_out;
}

size_t cr_pin_outstanding(void)
{
    return cr_pin_out;
}

size_t cr_pin_cached(void)
{
    size_t i, n = 0;

    for (i = 0; i != CR_PIN_SLOTS; ++i)
        n += cr_pin_slots[i].obj != NULL;
    return n;
}
