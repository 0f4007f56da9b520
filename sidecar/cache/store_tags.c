/*
 * store_tags.c: the store's tag index (surrogate keys). Part of the store (store.c has the overview; store_internal.h
 * the shared types). Tag purges and collections, which walk it, are in store_purge.c.
 *
 * Each shard has a hash table of cr_store_tag_t entries (chained through hash_next, doubled when its count passes its
 * bucket count), one per distinct tag among the shard's linked objects. An entry heads a doubly linked list of
 * memberships: the cr_object_tag_t array inside each tagged object (tag->st.entry/prev/next), so indexing allocates
 * nothing per object.
 *
 * Invariants, per shard under its lock: an object is linked iff each of its tags is a member of its shard's entry for
 * that tag; entry->num_members is the length of its list and never 0 (an entry is freed when its last member leaves);
 * tag_count and tag_bytes count the entries and their charges (cr_store_tag_charge()), which are included in
 * shard->bytes and the store's bytes. A tag purge looks the tag up in each shard (O(1) each) and walks only its
 * members. An insert creates the entries it needs before changing anything else (do_cr_store_tags_prepare), so an
 * allocation failure declines it cleanly; the new object then joins the tag lists before the object it replaces
 * leaves them, so an entry both carry is never freed in between.
 *
 * Locking: every do_*() runs under the shard's lock (store.c's rules). The bottom of the store: calls nothing of
 * store_table.c or store.c, only store_internal.h's helpers (do_cr_store_recharge_index).
 */
#include "store_internal.h"

#include <stdlib.h>

size_t cr_store_tag_charge(size_t taglen)
{
    return sizeof(cr_store_tag_t) + taglen + 1;
}

/* ---- tag index (all do_*: the shard's lock is held) ---- */

cr_store_tag_t *do_cr_store_tag_find(cr_store_shard_t *shard, const char *name, size_t len, uint64_t hash)
{
    cr_store_tag_t *e;
    for (e = shard->tag_buckets[hash & shard->tag_mask]; e != NULL; e = e->hash_next)
        if (e->hash == hash && e->len == len && (len == 0 || memcmp(e->name, name, len) == 0))
            return e;
    return NULL;
}

/* Doubles the tag table. On allocation failure the table keeps its size (chains just get longer). */
static void do_cr_store_tag_grow(cr_store_t *store, cr_store_shard_t *shard)
{
    size_t newmask = shard->tag_mask * 2 + 1, i;
    cr_store_tag_t **newbuckets;

    if (newmask > SIZE_MAX / sizeof(*newbuckets) - 1 || (newbuckets = calloc(newmask + 1, sizeof(*newbuckets))) == NULL)
        return;
    for (i = 0; i <= shard->tag_mask; ++i) {
        cr_store_tag_t *e = shard->tag_buckets[i], *next;
        for (; e != NULL; e = next) {
            cr_store_tag_t **slot = &newbuckets[e->hash & newmask];
            next = e->hash_next;
            e->hash_next = *slot;
            *slot = e;
        }
    }
    free(shard->tag_buckets);
    shard->tag_buckets = newbuckets;
    shard->tag_mask = newmask;
    do_cr_store_recharge_index(store, shard);
}

/* Creates an entry with no members yet (the caller adds one at once, or frees it) and charges it. Returns NULL on
 * allocation failure (nothing changes). */
static cr_store_tag_t *do_cr_store_tag_new(cr_store_t *store, cr_store_shard_t *shard, const cr_object_tag_t *t)
{
    size_t charge = cr_store_tag_charge(t->name.len);
    cr_store_tag_t *e, **slot;

    if (t->name.len > SIZE_MAX - sizeof(*e) - 1 || (e = malloc(sizeof(*e) + t->name.len + 1)) == NULL)
        return NULL;
    memcpy(e->name, t->name.base, t->name.len);
    e->name[t->name.len] = '\0';
    e->len = t->name.len;
    e->hash = t->hash;
    e->members = NULL;
    e->num_members = 0;
    slot = &shard->tag_buckets[e->hash & shard->tag_mask];
    e->hash_next = *slot;
    *slot = e;
    ++shard->tag_count;
    shard->tag_bytes += charge;
    shard->bytes += charge;
    __atomic_add_fetch(&store->tag_count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&store->tag_bytes, charge, __ATOMIC_RELAXED);
    __atomic_add_fetch(&store->bytes, charge, __ATOMIC_RELAXED);
    if (shard->tag_count > shard->tag_mask + 1)
        do_cr_store_tag_grow(store, shard);
    return e;
}

/* Unchains, uncharges and frees an entry that has no members left. */
static void do_cr_store_tag_free(cr_store_t *store, cr_store_shard_t *shard, cr_store_tag_t *e)
{
    cr_store_tag_t **slot = &shard->tag_buckets[e->hash & shard->tag_mask];
    size_t charge = cr_store_tag_charge(e->len);

    assert(e->num_members == 0 && e->members == NULL);
    while (*slot != e) {
        assert(*slot != NULL);
        slot = &(*slot)->hash_next;
    }
    *slot = e->hash_next;
    assert(shard->tag_count != 0 && shard->tag_bytes >= charge && shard->bytes >= charge);
    --shard->tag_count;
    shard->tag_bytes -= charge;
    shard->bytes -= charge;
    __atomic_sub_fetch(&store->tag_count, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&store->tag_bytes, charge, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&store->bytes, charge, __ATOMIC_RELAXED);
    free(e);
}

/* Points each of obj's tags at its shard entry, creating missing entries (memberless until do_cr_store_tags_link).
 * Returns CR_OK, or CR_ERROR on allocation failure, after undoing what it did (entries it created are freed). */
int do_cr_store_tags_prepare(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    size_t i;

    for (i = 0; i != obj->num_tags; ++i) {
        cr_object_tag_t *t = &obj->tags[i];
        assert(t->owner == obj && t->st.entry == NULL);
        if ((t->st.entry = do_cr_store_tag_find(shard, t->name.base, t->name.len, t->hash)) == NULL &&
            (t->st.entry = do_cr_store_tag_new(store, shard, t)) == NULL) {
            /* entries without members were created just now, for this object (tags are distinct) */
            while (i-- != 0) {
                t = &obj->tags[i];
                if (t->st.entry->num_members == 0)
                    do_cr_store_tag_free(store, shard, t->st.entry);
                t->st.entry = NULL;
            }
            return CR_ERROR;
        }
    }
    return CR_OK;
}

/* Adds obj's memberships to the entries do_cr_store_tags_prepare() chose. Never fails. */
void do_cr_store_tags_link(cr_object_t *obj)
{
    size_t i;

    for (i = 0; i != obj->num_tags; ++i) {
        cr_object_tag_t *t = &obj->tags[i];
        cr_store_tag_t *e = t->st.entry;
        assert(e != NULL);
        t->st.prev = NULL;
        t->st.next = e->members;
        if (e->members != NULL)
            e->members->st.prev = t;
        e->members = t;
        ++e->num_members;
    }
}

/* Removes obj's memberships, freeing entries left empty. Never fails. */
void do_cr_store_tags_unlink(cr_store_t *store, cr_store_shard_t *shard, cr_object_t *obj)
{
    size_t i;

    for (i = 0; i != obj->num_tags; ++i) {
        cr_object_tag_t *t = &obj->tags[i];
        cr_store_tag_t *e = t->st.entry;
        assert(e != NULL && e->num_members != 0);
        if (t->st.prev != NULL)
            t->st.prev->st.next = t->st.next;
        else
            e->members = t->st.next;
        if (t->st.next != NULL)
            t->st.next->st.prev = t->st.prev;
        t->st.entry = NULL;
        t->st.prev = t->st.next = NULL;
        if (--e->num_members == 0)
            do_cr_store_tag_free(store, shard, e);
    }
}

size_t cr_store_tag_entries(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->tag_count, __ATOMIC_RELAXED);
}

size_t cr_store_tag_bytes(const cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return __atomic_load_n(&store->tag_bytes, __ATOMIC_RELAXED);
}
