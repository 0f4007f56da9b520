/*
 * ebr.h: epoch-based reclamation, so readers can walk shared structures without taking a lock.
 *
 * Readers bracket each lock-free walk with cr_ebr_enter() / cr_ebr_exit() and keep nothing they found past the exit
 * unless they took a reference of their own (the store's lookup takes an object reference before it exits). Writers,
 * still serialised among themselves by their own locks, unlink what they remove and defer freeing it: the memory of
 * anything unlinked before cr_ebr_advance() returned W may be reused once cr_ebr_safe(W) returns 1, because every
 * reader that could still see it has left its read section by then.
 *
 * Cost for a reader: one exchange on its own cache line (a full barrier) on enter and one store on exit; it reads the global
 * epoch, which only writers move (once per batch they retire), so a hit path touches no shared lock and writes no
 * shared counter.
 *
 * Threads. A thread gets a reader slot lazily on its first cr_ebr_enter() and gives it back when it exits (a pthread
 * key destructor). There are CR_EBR_MAX_READERS slots; a thread that finds none free gets 0 from cr_ebr_enter() and
 * must fall back to the writers' lock for that walk (correct, only slower). Read sections do not nest.
 *
 * Ordering (the Dekker pattern). A reader publishes its epoch with a sequentially consistent exchange and then reads
 * the structure with sequentially consistent loads; a writer unlinks (sequentially consistent stores), advances the
 * epoch (a sequentially consistent read-modify-write) and then reads the readers' slots (sequentially consistent
 * loads). Either the writer sees the reader's slot (and waits for it), or the reader entered after the advance and
 * cannot see what was unlinked before it. No fences, so ThreadSanitizer models all of it.
 */
#ifndef CORRAL_EBR_H
#define CORRAL_EBR_H

#include "corral/core/common.h"

#define CR_EBR_MAX_READERS 256

/* Starts a read section on the calling thread. Returns 1, or 0 when no reader slot is free (then the caller must not
 * walk lock-free; it must not call cr_ebr_exit either). */
int cr_ebr_enter(void);
/* Ends the calling thread's read section. */
void cr_ebr_exit(void);

/* Moves the global epoch and returns its new value W: everything unlinked before this call may be freed once
 * cr_ebr_safe(W) is 1. For writers (any thread, any lock held). */
uint64_t cr_ebr_advance(void);
/* 1 when no reader is inside a read section it entered before the epoch reached W. */
int cr_ebr_safe(uint64_t w);

/* Number of reader slots ever handed out (high-water mark), for tests. */
size_t cr_ebr_readers(void);

#endif
