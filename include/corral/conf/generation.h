/*
 * generation.h: the process's current config generation and each thread's cached copy of it (the slots are in
 * core/runtime.h: cr_rt.cfg and cr_rt.cfg_generation, cr_thread_t.cfg and cfg_generation).
 *
 * Why here and not in core/runtime.c: installing and taking a generation retains and releases it, and the reference
 * count is conf's (cr_config_retain/release); core/ cannot call up into conf/.
 *
 * Rules:
 * - cr_rt.cfg is written only by cr_rt_config_publish and read only through cr_rt_config_acquire, both under one
 *   mutex (generation.c), so a reader never retains a generation that a concurrent publish has just released.
 *   cr_rt.cfg_generation counts publishes; it is written under that mutex and read by the threads with a relaxed load.
 * - A thread (traffic worker or admin) holds one reference, t->cfg, taken when it starts (cr_thread_config_init)
 *   and swapped only by cr_thread_config() at the start of a request on its own loop, when the counter moved. The
 *   hit path therefore costs one relaxed load and a compare: no lock, no atomic read-modify-write.
 * - Code running synchronously inside a request's on_req may borrow t->cfg without retaining it: the thread's
 *   reference changes only at the start of another request on the same loop, after the current call has returned.
 *   Whatever keeps the generation past that call (a request waiting on a flight, a pass, a flight, a background
 *   fill) retains it and releases it when done.
 * - Publish is rare (start-up, a later reload) and off the hot path; acquire runs at thread start and when a
 *   thread saw the counter move.
 */
#ifndef CORRAL_GENERATION_H
#define CORRAL_GENERATION_H

#include "corral/core/runtime.h"
#include "corral/conf/config.h"

/* Installs `next` (may be NULL) as the current generation, taking over the caller's reference to it, releases the
 * process's reference to the one it replaces and bumps cr_rt.cfg_generation. Any thread. */
void cr_rt_config_publish(const cr_config_t *next);

/* The current generation, retained (the caller releases it with cr_config_release), or NULL when none is
 * installed. When `generation` is not NULL it receives the counter value that goes with the returned generation.
 * Any thread. */
const cr_config_t *cr_rt_config_acquire(uint64_t *generation);

/* Takes the thread's first reference (the current generation). On thread t, before its loop serves anything. */
void cr_thread_config_init(cr_thread_t *t);
/* Drops the thread's reference. On thread t, when its loop has stopped. */
void cr_thread_config_fini(cr_thread_t *t);
/* Replaces t->cfg with the current generation (acquire the new, release the old). On thread t. */
void cr_thread_config_refresh(cr_thread_t *t);

/* The thread's generation, swapped first when a publish happened since it was taken. Call at the start of a
 * request, on the request's thread; the result is valid until the thread's next call (see the rules above). */
static inline const cr_config_t *cr_thread_config(cr_thread_t *t)
{
    if (__builtin_expect(__atomic_load_n(&cr_rt.cfg_generation, __ATOMIC_RELAXED) != t->cfg_generation, 0))
        cr_thread_config_refresh(t);
    return t->cfg;
}

#endif
