/*
 * reload.c: the configuration reload (reload.h): load, check, refuse restart-only changes, publish, re-apply.
 *
 * Invariants: the running generation is never replaced by one that failed any check; a failed reload leaves
 * everything as it was (the new config is freed). Requests in flight keep the generation they hold (generation.h),
 * and the cache (cr_rt.store) is not touched.
 * Locking: reload_mutex serializes whole reloads (SIGHUP on the main thread, POST /v1/reload on the admin thread);
 * the generation mutex is taken inside it by acquire and publish only.
 */
#include "corral/conf/reload.h"

#include <pthread.h>
#include <stdio.h>

#include "corral/conf/config_check.h"
#include "corral/conf/generation.h"
#include "corral/core/log.h"
#include "corral/core/runtime.h"

static pthread_mutex_t reload_mutex = PTHREAD_MUTEX_INITIALIZER;
static cr_reload_prepare_fn prepare_hook;
static cr_reload_applied_fn applied_hook;

void cr_reload_set_hooks(cr_reload_prepare_fn prepare, cr_reload_applied_fn applied)
{
    prepare_hook = prepare;
    applied_hook = applied;
}

static cr_reload_result_t do_reload(const char *origin, char *errbuf, size_t errbufsize)
{
    const cr_config_t *running = cr_rt_config_acquire(NULL);
    cr_config_t *next = NULL;
    cr_reload_result_t r = CR_RELOAD_INVALID;
    uint64_t generation;
    int prep;

    if (running == NULL) {
        snprintf(errbuf, errbufsize, "no configuration is running yet");
        return CR_RELOAD_INVALID;
    }
    if (cr_rt.stopping) { /* the workers are leaving: nothing would follow a new generation */
        snprintf(errbuf, errbufsize, "corral is draining (SIGTERM): not reloading");
        r = CR_RELOAD_FAILED;
        goto Exit;
    }
    if ((next = cr_config_load(running->path, errbuf, errbufsize)) == NULL)
        goto Exit;
    if (cr_config_check(next, NULL, errbuf, errbufsize) != 0)
        goto Exit;
    if (cr_config_reload_check_ex(running, next, prepare_hook != NULL, errbuf, errbufsize) != 0) {
        r = CR_RELOAD_REFUSED;
        goto Exit;
    }
    if (prepare_hook != NULL && (prep = prepare_hook(running, next, errbuf, errbufsize)) != 0) {
        r = prep == -1 ? CR_RELOAD_REFUSED : CR_RELOAD_FAILED;
        goto Exit;
    }
    cr_rt_config_publish(next); /* takes over next's reference */
    generation = __atomic_load_n(&cr_rt.cfg_generation, __ATOMIC_ACQUIRE);
    if (applied_hook != NULL)
        applied_hook(next); /* still alive: the process holds it, and only a reload (serialized here) replaces it */
    snprintf(errbuf, errbufsize, "generation %llu, %zu routes", (unsigned long long)generation, next->num_routes);
    next = NULL;
    r = CR_RELOAD_OK;
Exit:
    if (r == CR_RELOAD_OK) {
        __atomic_add_fetch(&cr_rt.reloads_ok, 1, __ATOMIC_RELAXED);
        cr_log_info("reload (%s): %s loaded: %s", origin, running->path, errbuf);
    } else {
        __atomic_add_fetch(&cr_rt.reloads_failed, 1, __ATOMIC_RELAXED);
        cr_log_error("reload (%s) %s, the running configuration is kept: %s", origin,
                     r == CR_RELOAD_REFUSED ? "refused" : "failed", errbuf);
    }
    cr_config_free(&next);
    cr_config_release(&running);
    return r;
}

cr_reload_result_t cr_config_reload(const char *origin, char *errbuf, size_t errbufsize)
{
    cr_reload_result_t r;
    char local[1024];

    if (errbuf == NULL || errbufsize == 0) {
        errbuf = local;
        errbufsize = sizeof(local);
    }
    errbuf[0] = '\0';
    pthread_mutex_lock(&reload_mutex);
    r = do_reload(origin, errbuf, errbufsize);
    pthread_mutex_unlock(&reload_mutex);
    return r;
}
