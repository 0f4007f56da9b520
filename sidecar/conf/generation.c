/*
 * generation.c: publishing the process's config generation and taking it (generation.h).
 *
 * Locking: one mutex, held for (swap + counter bump) in publish and for (read + retain + counter read) in acquire,
 * so a generation is never retained after the process released it, and the counter a thread stores always goes
 * with the generation it took. The old generation is released after the mutex is dropped (its free may be long).
 * The thread-side functions touch only their own thread's cr_thread_t.
 */
#include "corral/conf/generation.h"

#include <pthread.h>

#include "corral/core/log.h"

static pthread_mutex_t generation_mutex = PTHREAD_MUTEX_INITIALIZER;

void cr_rt_config_publish(const cr_config_t *next)
{
    const cr_config_t *old;

    pthread_mutex_lock(&generation_mutex);
    old = cr_rt.cfg;
    cr_rt.cfg = next;
    __atomic_store_n(&cr_rt.cfg_generation, cr_rt.cfg_generation + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&generation_mutex);
    if (next != NULL)
        cr_log_set_level((cr_log_level_t)next->log.level); /* log.level is reloadable: each generation sets it */
    cr_config_release(&old);
}

const cr_config_t *cr_rt_config_acquire(uint64_t *generation)
{
    const cr_config_t *cfg;

    pthread_mutex_lock(&generation_mutex);
    cfg = cr_config_retain(cr_rt.cfg);
    if (generation != NULL)
        *generation = cr_rt.cfg_generation;
    pthread_mutex_unlock(&generation_mutex);
    return cfg;
}

void cr_thread_config_init(cr_thread_t *t)
{
    assert(t->cfg == NULL);
    t->cfg = cr_rt_config_acquire(&t->cfg_generation);
}

void cr_thread_config_fini(cr_thread_t *t)
{
    cr_config_release(&t->cfg);
}

void cr_thread_config_refresh(cr_thread_t *t)
{
    const cr_config_t *old = t->cfg;
    t->cfg = cr_rt_config_acquire(&t->cfg_generation);
    cr_config_release(&old);
}
