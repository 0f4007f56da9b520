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
#include "corral/store_internal.h"

#include "corral/ebr.h"

#include <stdlib.h>

/* ---- retiring and reclaiming ---- */

/* Appends what a critical section left behind to the fresh lists, then reclaims what it can. No shard lock held. */
void cr_store_retire(cr_store_t *store, cr_store_leaving_t *leaving)
{
    if (leaving->objs == NULL && leaving->tables == NULL)
        return;
    pthread_mutex_lock(&store->retire_lock);
    while (leaving->objs != NULL) {
        cr_object_t *obj = leaving->objs;
        leaving->objs = obj->st.path_next;
        obj->st.path_next = store->fresh_objs;
        store->fresh_objs = obj;
    }
    while (leaving->tables != NULL) {
        cr_store_table_t *t = leaving->tables;
        leaving->tables = t->retired_next;
        t->retired_next = store->fresh_tables;
        store->fresh_tables = t;
    }
    __atomic_add_fetch(&store->retired, leaving->num_objs, __ATOMIC_RELAXED);
    leaving->num_objs = 0;
    pthread_mutex_unlock(&store->retire_lock);
    cr_store_reclaim(store);
}

/* Takes the waiting lists out if no reader can still see them; then, if none are waiting, makes the fresh ones wait
 * for a new epoch (and takes them too if that epoch is already safe). retire_lock is held. */
static void cr_store_take_reclaimable(cr_store_t *store, cr_object_t **objs, cr_store_table_t **tables)
{
    int round;

    for (round = 0; round != 2; ++round) {
        if (store->waiting_objs != NULL || store->waiting_tables != NULL) {
            if (!cr_ebr_safe(store->waiting_epoch))
                return;
            while (store->waiting_objs != NULL) {
                cr_object_t *obj = store->waiting_objs;
                store->waiting_objs = obj->st.path_next;
                obj->st.path_next = *objs;
                *objs = obj;
            }
            while (store->waiting_tables != NULL) {
                cr_store_table_t *t = store->waiting_tables;
                store->waiting_tables = t->retired_next;
                t->retired_next = *tables;
                *tables = t;
            }
        }
        if (store->fresh_objs == NULL && store->fresh_tables == NULL)
            return;
        store->waiting_objs = store->fresh_objs;
        store->waiting_tables = store->fresh_tables;
        store->fresh_objs = NULL;
        store->fresh_tables = NULL;
        store->waiting_epoch = cr_ebr_advance();
    }
}

/* Releases what cr_store_take_reclaimable() returned (no lock held). */
static void cr_store_release_reclaimed(cr_store_t *store, cr_object_t *objs, cr_store_table_t *tables)
{
    size_t n = 0;

    while (tables != NULL) {
        cr_store_table_t *t = tables;
        tables = t->retired_next;
        free(t);
    }
    while (objs != NULL) {
        cr_object_t *obj = objs;
        objs = obj->st.path_next;
        obj->st.path_next = NULL;
        __atomic_store_n(&obj->st_linked, 0, __ATOMIC_RELAXED);
        cr_object_release(&obj); /* the store's reference */
        ++n;
    }
    if (n != 0)
        __atomic_sub_fetch(&store->retired, n, __ATOMIC_RELAXED);
}

void cr_store_reclaim(cr_store_t *store)
{
    cr_object_t *objs = NULL;
    cr_store_table_t *tables = NULL;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    pthread_mutex_lock(&store->retire_lock);
    cr_store_take_reclaimable(store, &objs, &tables);
    pthread_mutex_unlock(&store->retire_lock);
    cr_store_release_reclaimed(store, objs, tables);
}

/* cr_store_reclaim() from a lookup: never waits for the lock (another thread is reclaiming already). */
void cr_store_reclaim_from_lookup(cr_store_t *store)
{
    cr_object_t *objs = NULL;
    cr_store_table_t *tables = NULL;

    if (pthread_mutex_trylock(&store->retire_lock) != 0)
        return;
    cr_store_take_reclaimable(store, &objs, &tables);
    pthread_mutex_unlock(&store->retire_lock);
    cr_store_release_reclaimed(store, objs, tables);
}
