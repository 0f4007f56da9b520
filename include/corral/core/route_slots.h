/*
 * route_slots.h: the process-wide registry of route names, the `route` label of the labelled metrics.
 *
 * Each distinct route name (routes[].name, or its default, conf/config_routes.c) gets one slot, for the life of the
 * process: a config generation maps its routes to slots when it is loaded (cr_route_config_t.stat_slot), so a
 * per-thread counter indexed by slot (core/reqstats.h) keeps counting across a reload for every route whose name
 * stays, and a renamed route starts a new series. Label values are bounded by the config, never by request data:
 * at most CR_ROUTE_SLOTS_MAX names; names past that share the overflow slot, "(other)". Slot 0 is "(none)", the
 * requests that matched no route.
 *
 * Invariants and locking: slots are only added (never freed or reused) under one mutex, at config load (off the hot
 * path). A slot's name is written before the count that publishes it (release store); readers load the count with
 * acquire and may then read names below it without a lock, from any thread.
 */
#ifndef CORRAL_ROUTE_SLOTS_H
#define CORRAL_ROUTE_SLOTS_H

#include <stddef.h>

#define CR_ROUTE_SLOTS_MAX 256
#define CR_ROUTE_SLOT_NONE 0u                             /* "(none)": no route matched */
#define CR_ROUTE_SLOT_OTHER (CR_ROUTE_SLOTS_MAX + 1u)     /* "(other)": names past CR_ROUTE_SLOTS_MAX */
#define CR_ROUTE_SLOTS (CR_ROUTE_SLOTS_MAX + 2u)          /* every slot, for arrays indexed by slot */

/* The slot of `name` (len bytes, no NUL needed), added when new; CR_ROUTE_SLOT_OTHER when the registry is full or
 * memory ran out. Any thread. */
unsigned cr_route_slot_intern(const char *name, size_t len);

/* Slots in use now, including "(none)" and (always) "(other)" at CR_ROUTE_SLOT_OTHER: names are at 1..n-1 where
 * n = cr_route_slots_used(); a writer walks 0..n-1 and then CR_ROUTE_SLOT_OTHER. Any thread. */
unsigned cr_route_slots_used(void);

/* The name of a slot below cr_route_slots_used(), or of CR_ROUTE_SLOT_NONE / CR_ROUTE_SLOT_OTHER; NUL-terminated,
 * valid for the life of the process. NULL for a slot not in use. */
const char *cr_route_slot_name(unsigned slot);

#endif
