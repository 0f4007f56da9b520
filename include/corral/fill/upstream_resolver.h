/*
 * upstream_resolver.h: a host-name upstream.url, re-resolved every CR_UPSTREAM_RESOLVE_MS on a thread of its own
 * (never on an event loop). The config load resolved it once (the generation's upstream.addr); the resolver
 * publishes later answers process-wide. A failing resolution keeps the last good address and is logged once (until
 * it resolves again). A numeric upstream.url starts no thread and nothing here changes its address.
 */
#ifndef CORRAL_FILL_UPSTREAM_RESOLVER_H
#define CORRAL_FILL_UPSTREAM_RESOLVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "corral/conf/config.h"

#define CR_UPSTREAM_RESOLVE_MS 30000

/* Starts the thread when cfg's upstream is a host name (copies host, port and address). 0, or -1 (logged). */
int cr_upstream_resolver_start(const cr_config_t *cfg);
/* Stops and joins the thread (a no-op when none runs). */
void cr_upstream_resolver_stop(void);

/* When the published address changed since *version (0: the config's), copies it into *ss / *sslen and updates
 * *version. One relaxed atomic load when nothing changed (an upstream connect: fill/upstream.c). Any thread. */
void cr_upstream_resolver_refresh(struct sockaddr_storage *ss, socklen_t *sslen, uint64_t *version);

/* What one round made of a resolution (for logs and unit tests). */
typedef enum en_cr_resolve_event_t {
    CR_RESOLVE_SAME,       /* resolved to the address already published */
    CR_RESOLVE_CHANGED,    /* resolved to another address: published */
    CR_RESOLVE_RECOVERED,  /* resolved again after failures (published when it changed) */
    CR_RESOLVE_FAILED,     /* the first failure of a streak: logged, the last good address kept */
    CR_RESOLVE_STILL_FAILING, /* a later failure of the streak: not logged again */
} cr_resolve_event_t;
/* One round's result applied to the published state (rc 0: *ss / sslen hold the answer). Logs as the event says. */
cr_resolve_event_t cr_upstream_resolver_apply(int rc, const struct sockaddr_storage *ss, socklen_t sslen, const char *why);

#endif
