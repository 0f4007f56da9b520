/*
 * ebr.c: reader slots and the global epoch behind ebr.h.
 *
 * State: `epoch` (starts at 1, only grows) and CR_EBR_MAX_READERS slots, each on its own cache line. A slot's `active`
 * is 0 while its thread is outside a read section, else the epoch the thread read when it entered. `owned` marks a
 * slot as handed to a thread (claimed with a compare-and-swap, given back by the thread-exit destructor).
 * `high_water` bounds the scan in cr_ebr_safe().
 *
 * Invariants: only the owning thread writes its slot's `active`; a slot is given back only with active == 0.
 * Locking: none; every shared field is accessed with __atomic builtins (see ebr.h for the ordering argument).
 */
#include "corral/core/ebr.h"

#include <pthread.h>
#include <stdalign.h>

typedef struct st_cr_ebr_slot_t {
    alignas(64) uint64_t active; /* 0, or the epoch read on enter */
    unsigned owned;
} cr_ebr_slot_t;

static uint64_t cr_ebr_epoch = 1;
static cr_ebr_slot_t cr_ebr_slots[CR_EBR_MAX_READERS];
static size_t cr_ebr_high_water;

static _Thread_local cr_ebr_slot_t *cr_ebr_mine;
static _Thread_local int cr_ebr_no_slot; /* 1 once a claim failed: don't rescan on every enter */
static pthread_key_t cr_ebr_key;
static pthread_once_t cr_ebr_once = PTHREAD_ONCE_INIT;

static void cr_ebr_thread_exit(void *p)
{
    cr_ebr_slot_t *slot = p;
    assert(__atomic_load_n(&slot->active, __ATOMIC_RELAXED) == 0);
    __atomic_store_n(&slot->owned, 0, __ATOMIC_RELEASE);
}

static void cr_ebr_init_key(void)
{
    if (pthread_key_create(&cr_ebr_key, cr_ebr_thread_exit) != 0)
        cr_ebr_key = (pthread_key_t)-1;
}

static cr_ebr_slot_t *cr_ebr_claim(void)
{
    size_t i;

    pthread_once(&cr_ebr_once, cr_ebr_init_key);
    for (i = 0; i != CR_EBR_MAX_READERS; ++i) {
        unsigned expected = 0;
        if (__atomic_compare_exchange_n(&cr_ebr_slots[i].owned, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            size_t hw = __atomic_load_n(&cr_ebr_high_water, __ATOMIC_RELAXED);
            while (hw < i + 1 && !__atomic_compare_exchange_n(&cr_ebr_high_water, &hw, i + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
                ;
            if (cr_ebr_key != (pthread_key_t)-1)
                pthread_setspecific(cr_ebr_key, &cr_ebr_slots[i]);
            return &cr_ebr_slots[i];
        }
    }
    cr_ebr_no_slot = 1;
    return NULL;
}

int cr_ebr_enter(void)
{
    cr_ebr_slot_t *slot = cr_ebr_mine;

    if (slot == NULL) {
        if (cr_ebr_no_slot || (slot = cr_ebr_mine = cr_ebr_claim()) == NULL)
            return 0;
    }
    assert(__atomic_load_n(&slot->active, __ATOMIC_RELAXED) == 0); /* no nesting */
    /* a stale (smaller) epoch only makes writers wait longer: safe */
    /* a sequentially consistent exchange (one locked instruction on x86): ordered before the walk's loads, which are
     * sequentially consistent too (plain loads on x86) */
    (void)__atomic_exchange_n(&slot->active, __atomic_load_n(&cr_ebr_epoch, __ATOMIC_RELAXED), __ATOMIC_SEQ_CST);
    return 1;
}

void cr_ebr_exit(void)
{
    assert(cr_ebr_mine != NULL && __atomic_load_n(&cr_ebr_mine->active, __ATOMIC_RELAXED) != 0);
    __atomic_store_n(&cr_ebr_mine->active, 0, __ATOMIC_RELEASE);
}

uint64_t cr_ebr_advance(void)
{
    return __atomic_add_fetch(&cr_ebr_epoch, 1, __ATOMIC_SEQ_CST);
}

int cr_ebr_safe(uint64_t w)
{
    size_t i, n;

    n = __atomic_load_n(&cr_ebr_high_water, __ATOMIC_SEQ_CST);
    for (i = 0; i != n; ++i) {
        /* at least acquire: a reader seen leaving (0) is done with everything it read */
        uint64_t a = __atomic_load_n(&cr_ebr_slots[i].active, __ATOMIC_SEQ_CST);
        if (a != 0 && a < w)
            return 0;
    }
    return 1;
}

size_t cr_ebr_readers(void)
{
    return __atomic_load_n(&cr_ebr_high_water, __ATOMIC_RELAXED);
}
