/*
 * listen_set.h: the traffic listeners as a set that a reload may change (listen_set.c), for server.c.
 *
 * The set is made at start from the first generation and again by a reload whose `listen` differs. Each worker keeps
 * its own SO_REUSEPORT socket per listener and makes its sockets match the current set on its own loop
 * (cr_listen_set_sync, after a wake-up), so unchanged listeners keep their sockets, added ones are opened and removed
 * ones closed by each thread for itself.
 */
#ifndef CORRAL_LISTEN_SET_H
#define CORRAL_LISTEN_SET_H

#include <stddef.h>

#include "corral/conf/config.h"
#include "corral/core/runtime.h"

/* At start, on the main thread, before the workers: claims every address, opens worker 0's sockets and makes the TLS
 * contexts. 0, or -1 (logged: "cannot listen on ADDRESS: ..."). */
int cr_listen_set_init(const cr_config_t *cfg);

/* On worker t: opens and closes t's listeners to match the current set. Cheap when nothing changed (one relaxed
 * load): called after every loop turn. */
void cr_listen_set_sync(cr_thread_t *t);

/* On worker t, at the drain: closes all of t's listeners. */
void cr_listen_set_close_all(cr_thread_t *t);

/* A reload's listener change (conf/reload.h's prepare hook, under the reload mutex): refuses a changed TLS file on an
 * unchanged address (-1, errbuf names listen[i].tls); claims and opens (for worker 0) each added address and makes
 * its TLS context (-2 with errbuf "cannot listen on ADDRESS: ..." when that fails). 0 when done; nothing changes
 * otherwise. */
int cr_listen_set_prepare(const cr_config_t *running, const cr_config_t *next, char *errbuf, size_t errbufsize);

/* After the new generation is published: installs the prepared set (if any), releases the claims of removed
 * addresses and logs the change. The caller then wakes every worker. */
void cr_listen_set_commit(void);

/* "listening on ..." for every listener of the current set. */
void cr_listen_set_log(void);

#endif
