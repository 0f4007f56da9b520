/*
 * store_table.c: the store's key table (slots, rebuilds, shrinking), its path index and the linking and unlinking of
 * objects in both (and in the tag index, store_tags.c). Part of the store: store.c has the overview, the invariants
 * and the locking rules; store_internal.h the shared types.
 *
 * Locking: every do_*() here runs under the shard's lock. A replaced table and an unlinked object go on the caller's
 * `leaving` list, retired by the caller once it has dropped the lock (store_retire.c); nothing here frees what a
 * lock-free reader may still see. Calls only store_tags.c and store_internal.h's helpers.
 */
#include "store_internal.h"

#include <stdlib.h>

cr_store_table_t *cr_store_table_new(size_t slots)
{
    cr_store_table_t *t;

    if (slots > (SIZE_MAX - sizeof(*t)) / sizeof(uintptr_t) || (t = malloc(sizeof(*t) + slots * sizeof(uintptr_t))) == NULL)
        return NULL;
    t->retired_next = NULL;
    t->mask = slots - 1;
    memset(t->slots, 0, slots * sizeof(uintptr_t));
    return t;
}

/* ---- the key table (all do_*: the shard's lock is held) ---- */

/* The slot holding obj in the current table (obj is linked). */
static size_t do_cr_store_slot_of(cr_store_shard_t *shard, const cr_object_t *obj)
{
    cr_store_table_t *t = shard->table;
    uintptr_t want = cr_store_slot_word(obj);
    size_t i;

    for (i = obj->hash & t->mask;; i = (i + 1) & t->mask) {
        assert(t->slots[i] != CR_STORE_SLOT_EMPTY);
        if (t->slots[i] == want)
            return i;
    }
}

/* The first empty or tombstone slot of obj's probe run in t. */
static size_t cr_store_free_slot(const cr_store_table_t *t, uint64_t hash)
{
    size_t i;
    for (i = hash & t->mask; t->slots[i] > CR_STORE_SLOT_TOMB; i = (i + 1) & t->mask)
        ;
    return i;
}

/* Replaces the table by one of `slots` slots holding the same objects and no tombstones, publishes it, and hands the
 * old one to `leaving`. Returns CR_OK, or CR_ERROR on allocation failure (nothing changes). */
static int do_cr_store_rebuild(cr_store_t *store, cr_store_shard_t *shard, size_t slots, cr_store_leaving_t *leaving)
{
    cr_store_table_t *old = shard->table, *t;
    size_t i;

    assert(slots >= CR_STORE_INITIAL_SLOTS && (slots & (slots - 1)) == 0 && shard->count < slots / 2 + 1);
    if ((t = cr_store_table_new(slots)) == NULL)
        return CR_ERROR;
    for (i = 0; i <= old->mask; ++i) {
        uintptr_t w = old->slots[i];
        if (w > CR_STORE_SLOT_TOMB)
            t->slots[cr_store_free_slot(t, cr_store_slot_object(w)->hash)] = w;
    }
    /* the new table is complete before lookups can load it */
    __atomic_store_n(&shard->table, t, __ATOMIC_SEQ_CST);
    shard->used = shard->count;
    shard->hand = (size_t)((uint64_t)shard->hand * slots / (old->mask + 1)) & t->mask;
    do_cr_store_recharge_index(store, shard);
    old->retired_next = leaving->tables;
    leaving->tables = old;
    return CR_OK;
}

/* The table size for `count` live objects: twice as many slots, rounded up to a power of two. */
static size_t cr_store_slots_for(size_t count)
{
    size_t slots = CR_STORE_INITIAL_SLOTS;
    while (slots < 2 * count && slots <= SIZE_MAX / 4)
        slots *= 2;
    return slots;
}

/* Makes room for one more slot: rebuilds when used would pass 3/4 of the table. Returns CR_OK, or CR_ERROR when the
 * rebuild failed and no slot can be spared (one empty slot must always remain). */
int do_cr_store_reserve(cr_store_t *store, cr_store_shard_t *shard, cr_store_leaving_t *leaving)
{
    size_t slots = shard->table->mask + 1;

    if ((shard->used + 1) * 4 <= slots * 3)
        return CR_OK;
    if (do_cr_store_rebuild(store, shard, cr_store_slots_for(shard->count + 1), leaving) == CR_OK)
        return CR_OK;
    return shard->used + 2 <= slots ? CR_OK : CR_ERROR;
}

/* After removals: a table less than 1/8 full is rebuilt smaller (if that fails, it simply stays). */
void do_cr_store_maybe_shrink(cr_store_t *store, cr_store_shard_t *shard, cr_store_leaving_t *leaving)
{
    size_t slots = shard->table->mask + 1;

    if (slots > CR_STORE_INITIAL_SLOTS && shard->count * 8 < slots)
        do_cr_store_rebuild(store, shard, cr_store_slots_for(shard->count), leaving);
}

/* ---- the path index (all do_*: the shard's lock is held) ---- */

/* Doubles the path buckets. On allocation failure they keep their size (chains just get longer). */
static void do_cr_store_path_grow(cr_store_t *store, cr_store_shard_t *shard)
{
    size_t newmask = shard->path_mask * 2 + 1, i;
    cr_object_t **newbuckets;

    if (newmask > SIZE_MAX / sizeof(*newbuckets) - 1 || (newbuckets = calloc(newmask + 1, sizeof(*newbuckets))) == NULL)
        return;
    for (i = 0; i <= shard->path_mask; ++i) {
        cr_object_t *obj = shard->path_buckets[i], *next;
        for (; obj != NULL; obj = next) {
            cr_object_t **slot = &newbuckets[obj->path_hash & newmask];
            next = obj->st.path_next;
            obj->st.path_next = *slot;
            *slot = obj;
        }
    }
    free(shard->path_buckets);
    shard->path_buckets = newbuckets;
    shard->path_mask = newmask;
    do_cr_store_recharge_index(store, shard);
}

static void do_cr_store_path_link(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    cr_object_t **slot = &shard->path_buckets[obj->path_hash & shard->path_mask];

    obj->st.path_next = *slot;
    *slot = obj;
    if (++shard->path_count > shard->path_mask + 1)
        do_cr_store_path_grow(store, shard);
}

static void do_cr_store_path_unlink(cr_store_shard_t *shard, cr_object_t *obj)
{
    cr_object_t **slot = &shard->path_buckets[obj->path_hash & shard->path_mask];

    while (*slot != obj) {
        assert(*slot != NULL);
        slot = &(*slot)->st.path_next;
    }
    *slot = obj->st.path_next;
    obj->st.path_next = NULL;
    --shard->path_count;
}

/* ---- linking ---- */

/* Links obj (whose reference the store now owns, and whose tag memberships do_cr_store_tags_link() already added)
 * into slot i of the table and the path index, and charges it. Slot i is an empty or tombstone slot of obj's probe
 * run, or holds the object obj replaces, which do_cr_store_unlink_at(..., 0, ...) already unlinked: one atomic store
 * then swaps them, so a lookup finds one or the other, never neither. Never fails. */
void do_cr_store_link(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj, size_t i)
{
    cr_store_table_t *t = shard->table;

    if (t->slots[i] == CR_STORE_SLOT_EMPTY)
        ++shard->used;
    else
        assert(t->slots[i] == CR_STORE_SLOT_TOMB || cr_store_linked_state(cr_store_slot_object(t->slots[i])) == 2);
    __atomic_store_n(&obj->st_referenced, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&obj->st_linked, 1, __ATOMIC_RELAXED);
    obj->st.seq = ++shard->link_seq;
    if (obj->path_hash != 0)
        do_cr_store_path_link(store, shard, obj);
    ++shard->count;
    shard->bytes += obj->cost;
    __atomic_add_fetch(&store->count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&store->bytes, obj->cost, __ATOMIC_RELAXED);
    /* publish: everything above, and the object itself, before a lookup can see it */
    __atomic_store_n(&t->slots[i], cr_store_slot_word(obj), __ATOMIC_SEQ_CST);
}

/* Unlinks the linked object in slot i (path index, tag index and, with `tombstone`, the table: otherwise the caller
 * links its replacement into the slot at once) and uncharges it. The store's reference goes to `leaving` (retired
 * once the caller drops the lock). */
void do_cr_store_unlink_at(cr_store_t *store, cr_store_shard_t *shard, size_t i, int tombstone, cr_store_leaving_t *leaving)
{
    cr_object_t *obj = cr_store_slot_object(shard->table->slots[i]);

    assert(cr_store_linked_state(obj) == 1);
    if (tombstone)
        __atomic_store_n(&shard->table->slots[i], CR_STORE_SLOT_TOMB, __ATOMIC_SEQ_CST);
    if (obj->path_hash != 0)
        do_cr_store_path_unlink(shard, obj);
    do_cr_store_tags_unlink(store, shard, obj);
    __atomic_store_n(&obj->st_linked, 2, __ATOMIC_RELAXED);

    assert(shard->count != 0 && shard->bytes >= obj->cost);
    --shard->count;
    shard->bytes -= obj->cost;
    __atomic_sub_fetch(&store->count, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&store->bytes, obj->cost, __ATOMIC_RELAXED);

    obj->st.path_next = leaving->objs;
    leaving->objs = obj;
    ++leaving->num_objs;
}

void do_cr_store_unlink(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj, cr_store_leaving_t *leaving)
{
    do_cr_store_unlink_at(store, shard, do_cr_store_slot_of(shard, obj), 1, leaving);
}
