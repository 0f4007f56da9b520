/*
 * route_slots.c: the route-name registry (route_slots.h): an append-only array of names, looked up linearly at
 * config load (at most CR_ROUTE_SLOTS_MAX names, a few per load).
 *
 * Invariants: names[0] is "(none)" and names[CR_ROUTE_SLOT_OTHER] "(other)", constant; names[1..used) were each
 * written once, before `used` was raised past them with a release store, and never change. Locking: `lock` orders
 * writers (intern); readers take no lock (acquire load of `used`).
 */
#include "corral/core/route_slots.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *names[CR_ROUTE_SLOTS] = {[CR_ROUTE_SLOT_NONE] = "(none)", [CR_ROUTE_SLOT_OTHER] = "(other)"};
static unsigned used = 1; /* slot 0 is taken */

unsigned cr_route_slot_intern(const char *name, size_t len)
{
    unsigned i, n, slot = CR_ROUTE_SLOT_OTHER;
    char *copy;

    pthread_mutex_lock(&lock);
    n = used;
    for (i = 1; i != n; ++i)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) {
            slot = i;
            goto done;
        }
    if (n == CR_ROUTE_SLOTS_MAX + 1 || (copy = malloc(len + 1)) == NULL)
        goto done;
    memcpy(copy, name, len);
    copy[len] = '\0';
    names[n] = copy;
    __atomic_store_n(&used, n + 1, __ATOMIC_RELEASE);
    slot = n;
done:
    pthread_mutex_unlock(&lock);
    return slot;
}

unsigned cr_route_slots_used(void)
{
    return __atomic_load_n(&used, __ATOMIC_ACQUIRE);
}

const char *cr_route_slot_name(unsigned slot)
{
    if (slot == CR_ROUTE_SLOT_OTHER || slot < cr_route_slots_used())
        return names[slot];
    return NULL;
}
