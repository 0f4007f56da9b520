/*
 * store_retire.c: what the store unlinks waits here until no lock-free lookup can still see it (ebr.h). Part of the
 * store (store.c has the overview; store_internal.h the shared types).
 *
 * Two generations of retire lists: `fresh` (retired since the last epoch advance) and `waiting` (retired before the
 * advance that returned waiting_epoch, released once cr_ebr_safe(waiting_epoch)). Objects are chained through
 * st.path_next (free once an object is unlinked) and keep the store's reference (st_linked == 2) until released;
 * replaced key tables through retired_next. `retired` counts the objects on both lists (atomic).
 *
 * Locking: the lists are only touched under retire_lock, a leaf lock taken with no shard lock held. Objects and
 * tables are released after it is dropped, so no destructor runs under a lock.
 */
#include "store_internal.h"

#include "corral/core/ebr.h"

#include <stdlib.h>

/* ---- retiring and reclaiming ---- */

/* Moves everything `from` holds onto `to` (the order within the lists does not matter) and empties `from`. */
static void cr_store_leaving_move(cr_store_leaving_t *to, cr_store_leaving_t *from)
{
    while (from->objs != NULL) {
        cr_object_t *obj = from->objs;
        from->objs = obj->st.path_next;
        obj->st.path_next = to->objs;
        to->objs = obj;
    }
    while (from->tables != NULL) {
        cr_store_table_t *t = from->tables;
        from->tables = t->retired_next;
        t->retired_next = to->tables;
        to->tables = t;
    }
    to->num_objs += from->num_objs;
    from->num_objs = 0;
}

/* Appends what a critical section left behind to the fresh lists, then reclaims what it can. No shard lock held. */
void cr_store_retire(cr_store_t *store, cr_store_leaving_t *leaving)
{
    if (leaving->objs == NULL && leaving->tables == NULL)
        return;
    pthread_mutex_lock(&store->retire_lock);
    __atomic_add_fetch(&store->retired, leaving->num_objs, __ATOMIC_RELAXED);
    cr_store_leaving_move(&store->fresh, leaving);
    pthread_mutex_unlock(&store->retire_lock);
    cr_store_reclaim(store);
}

/* Moves the waiting lists to `gone` if no reader can still see them; then, if none are waiting, makes the fresh ones
 * wait for a new epoch (and takes them too if that epoch is already safe). retire_lock is held. */
static void cr_store_take_reclaimable(cr_store_t *store, cr_store_leaving_t *gone)
{
    int round;

    for (round = 0; round != 2; ++round) {
        if (store->waiting.objs != NULL || store->waiting.tables != NULL) {
            if (!cr_ebr_safe(store->waiting_epoch))
                return;
            cr_store_leaving_move(gone, &store->waiting);
        }
        if (store->fresh.objs == NULL && store->fresh.tables == NULL)
            return;
        store->waiting = store->fresh; /* the waiting lists are empty here */
        store->fresh = (cr_store_leaving_t){NULL, NULL, 0};
        store->waiting_epoch = cr_ebr_advance();
    }
}

/* Releases what cr_store_take_reclaimable() took (no lock held). */
static void cr_store_release_reclaimed(cr_store_t *store, cr_store_leaving_t *gone)
{
    while (gone->tables != NULL) {
        cr_store_table_t *t = gone->tables;
        gone->tables = t->retired_next;
        free(t);
    }
    while (gone->objs != NULL) {
        cr_object_t *obj = gone->objs;
        gone->objs = obj->st.path_next;
        obj->st.path_next = NULL;
        __atomic_store_n(&obj->st_linked, 0, __ATOMIC_RELAXED);
        cr_object_release(&obj); /* the store's reference */
    }
    if (gone->num_objs != 0)
        __atomic_sub_fetch(&store->retired, gone->num_objs, __ATOMIC_RELAXED);
}

/* Takes and releases what no reader can still see; `wait` 0 gives up at once when another thread holds the lock. */
static void cr_store_reclaim_some(cr_store_t *store, int wait)
{
    cr_store_leaving_t gone = {NULL, NULL, 0};

    if (wait)
        pthread_mutex_lock(&store->retire_lock);
    else if (pthread_mutex_trylock(&store->retire_lock) != 0)
        return;
    cr_store_take_reclaimable(store, &gone);
    pthread_mutex_unlock(&store->retire_lock);
    cr_store_release_reclaimed(store, &gone);
}

void cr_store_reclaim(cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    cr_store_reclaim_some(store, 1);
}

/* cr_store_reclaim() from a lookup: never waits for the lock (another thread is reclaiming already). */
void cr_store_reclaim_from_lookup(cr_store_t *store)
{
    cr_store_reclaim_some(store, 0);
}
