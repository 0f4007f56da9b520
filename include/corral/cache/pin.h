/*
 * pin.h: per-thread cached object references ("pins"), so hits on a hot object do not write its shared refcount.
 *
 * An object's refcount is one atomic counter; when every worker thread serves the same hot object, each hit's
 * reference and release would move that cache line between cores. A pin is a reference counted on the calling
 * thread instead: the thread keeps a small direct-mapped table of objects it holds one shared reference to, with a
 * thread-local count of the pins handed out on top of it. The first pin of an object on a thread takes a shared
 * reference; later ones, and every release, only touch the thread's own table, so a stream of hits on a hot object
 * writes nothing shared.
 *
 * Rules: a pin is released with cr_pin_release() on the thread that took it (never with cr_object_release()). A
 * table slot whose count fell to 0 keeps its shared reference cached for the next hit; cr_pin_maintain() drops the
 * cached references of objects that left the store or went unused since the previous call, so a worker calls it
 * every CR_PIN_MAINTAIN_MS or so (an idle thread keeps at most CR_PIN_SLOTS objects alive for two such periods), and
 * cr_pin_drop_all() before it exits. References are fungible, so a release that finds no count on its object's slot
 * (the object was pinned while another one held the slot) simply drops a shared reference.
 *
 * Threads: everything here is the calling thread's; no locks.
 */
#ifndef CORRAL_PIN_H
#define CORRAL_PIN_H

#include "corral/cache/object.h"

#define CR_PIN_SLOTS 1024
#define CR_PIN_MAINTAIN_MS 500

/* Takes a pin on obj for the calling thread. obj must stay alive during the call (the caller holds a reference, or
 * is inside a store read section). Never fails. */
void cr_pin_acquire(cr_object_t *obj);
/* Releases a pin the calling thread took, and sets *objp to NULL. Accepts *objp == NULL. */
void cr_pin_release(cr_object_t **objp);
/* Drops the thread's cached references (slots with no pin out) whose object is no longer linked in a store, is
 * invalidated, or was not pinned since the previous call. */
void cr_pin_maintain(void);
/* Drops every cached reference of the thread (slots with no pin out); returns how many pins are still out. */
size_t cr_pin_drop_all(void);
/* Pins the calling thread has out, and shared references its table holds (for tests). */
size_t cr_pin_outstanding(void);
size_t cr_pin_cached(void);

#endif
