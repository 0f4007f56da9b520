/*
 * reload.h: reloading the configuration file while the process runs (SIGHUP in server.c's signal loop, POST
 * /v1/reload on the admin thread). One function both callers share, in conf/ so that neither calls up the layers:
 * load the running generation's file again, run the checks start-up runs (config_check.h, without reading the token),
 * refuse restart-only changes (cr_config_reload_check_ex), let the server prepare what may still fail (the prepare
 * hook: listeners), publish the new generation (generation.h) and let the server re-apply what it copied from the
 * config outside the generations (the applied hook). Both hooks are server.c's.
 *
 * Locking: reloads are serialized by one mutex (a second caller waits for the first to finish). The hook runs under
 * it, on the caller's thread. Nothing here runs on a traffic worker.
 */
#ifndef CORRAL_RELOAD_H
#define CORRAL_RELOAD_H

#include <stddef.h>

#include "corral/conf/config.h"

typedef enum en_cr_reload_result_t {
    CR_RELOAD_OK = 0,
    CR_RELOAD_INVALID, /* the file does not load or does not pass the start-up checks: "file:line:col: message" */
    CR_RELOAD_REFUSED, /* a restart-only key changed: the message names it */
    CR_RELOAD_FAILED,  /* the server could not apply it (an added listener's address in use, or draining): nothing changed */
} cr_reload_result_t;

/* Called before a checked generation is published, under the reload mutex: the server's part that may still fail
 * (opening added listeners). 0, or with errbuf and nothing changed: -1 a change that needs a restart (refused), -2
 * one that failed (an address in use). With this hook set, `listen`
 * is the server's to check (cr_config_reload_check_ex with listeners_live). */
typedef int (*cr_reload_prepare_fn)(const cr_config_t *running, const cr_config_t *next, char *errbuf, size_t errbufsize);
/* Called after a new generation is published, under the reload mutex, with the new generation (borrowed). */
typedef void (*cr_reload_applied_fn)(const cr_config_t *next);

/* Sets the hooks (NULL: none). Before the first reload can run (at start-up, before signals and the admin thread). */
void cr_reload_set_hooks(cr_reload_prepare_fn prepare, cr_reload_applied_fn applied);

/*
 * Reloads the running generation's file. `origin` names the caller in the log ("SIGHUP", "POST /v1/reload"). On
 * CR_RELOAD_OK, errbuf gets a short summary ("generation 3, 4 routes"); otherwise the error, which is also logged.
 * Counts cr_rt.reloads_ok / reloads_failed. Any thread but a traffic worker (it reads a file).
 */
cr_reload_result_t cr_config_reload(const char *origin, char *errbuf, size_t errbufsize);

#endif
