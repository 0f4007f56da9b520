/*
 * store_purge.c: removing objects from the store: one object, a key, a key prefix, a match callback, a path, a path
 * prefix, a tag (surrogate key), everything (cr_store_clear); and the collections by path and by tag that the admin's
 * inspection uses. Part of the store: store.c has the overview, the invariants and the locking rules.
 *
 * Every purge notes what it covers in store->inval before it locks any shard (the fill race: store.c, "Epochs"),
 * takes one shard lock at a time, and retires what it unlinked once that lock is dropped. A soft purge marks objects
 * (cr_object_invalidate) and unlinks nothing. Calls only store_table.c, store_tags.c and store_retire.c
 * (and pathpurge.c's path-prefix predicate, a pure function of the key).
 */
#include "store_internal.h"

#include <pthread.h>

#include "corral/cache/pathpurge.h"

/* ---- removing and purging ---- */

int cr_store_remove_object(cr_store_t *store, cr_object_t *obj)
{
    cr_store_leaving_t leaving = {NULL, NULL, 0};
    cr_store_shard_t *shard;
    int removed = 0;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    shard = cr_store_shard(store, obj->hash);
    pthread_mutex_lock(&shard->lock);
    if (cr_store_linked_state(obj) == 1) {
        do_cr_store_unlink(store, shard, obj, &leaving);
        do_cr_store_maybe_shrink(store, shard, &leaving);
        removed = 1;
    }
    pthread_mutex_unlock(&shard->lock);
    cr_store_retire(store, &leaving); /* the store's reference; the caller's own is untouched */
    return removed;
}

size_t cr_store_purge_key(cr_store_t *store, const char *key, size_t keylen, uint64_t hash, int soft)
{
    cr_store_leaving_t leaving = {NULL, NULL, 0};
    cr_store_shard_t *shard;
    cr_store_table_t *t;
    cr_object_t *obj;
    size_t total = 0, i;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    shard = cr_store_shard(store, hash);
    cr_inval_note_key(store->inval, key, keylen);
    pthread_mutex_lock(&shard->lock);
    t = shard->table;
    for (i = hash & t->mask; (obj = do_cr_store_next_of_key(t, &i, key, keylen, hash)) != NULL; i = (i + 1) & t->mask) {
        if (soft)
            cr_object_invalidate(obj);
        else
            do_cr_store_unlink_at(store, shard, i, 1, &leaving); /* a tombstone: the probe run goes on */
        ++total;
    }
    do_cr_store_maybe_shrink(store, shard, &leaving);
    pthread_mutex_unlock(&shard->lock);
    cr_store_retire(store, &leaving);
    return total;
}

/* Purges every object for which match() says yes (it runs under the shard lock: no locking, no blocking), one lock
 * hold per shard. The caller noted what it covers. Returns the count. */
static size_t cr_store_purge_matching(cr_store_t *store, cr_store_match_fn match, void *ctx, int soft)
{
    size_t total = 0, s;

    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_leaving_t leaving = {NULL, NULL, 0};
        cr_store_shard_t *shard = &store->shards[s];
        cr_store_table_t *t;
        size_t i;
        pthread_mutex_lock(&shard->lock);
        t = shard->table;
        for (i = 0; i <= t->mask && shard->count != 0; ++i) {
            cr_object_t *obj;
            if (t->slots[i] <= CR_STORE_SLOT_TOMB)
                continue;
            obj = cr_store_slot_object(t->slots[i]);
            if (!match(ctx, obj))
                continue;
            if (soft)
                cr_object_invalidate(obj);
            else
                do_cr_store_unlink_at(store, shard, i, 1, &leaving);
            ++total;
        }
        do_cr_store_maybe_shrink(store, shard, &leaving);
        pthread_mutex_unlock(&shard->lock);
        cr_store_retire(store, &leaving);
    }
    return total;
}

typedef struct st_cr_store_prefix_t {
    const char *prefix;
    size_t len;
} cr_store_prefix_t;

static int key_has_prefix(void *ctx, const cr_object_t *obj)
{
    const cr_store_prefix_t *p = ctx;
    cr_str_t k = cr_object_key(obj);
    return k.len >= p->len && (p->len == 0 || memcmp(k.base, p->prefix, p->len) == 0);
}

size_t cr_store_purge_prefix(cr_store_t *store, const char *prefix, size_t prefixlen, int soft)
{
    cr_store_prefix_t p = {prefix, prefixlen};
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(prefix != NULL || prefixlen == 0);
    cr_inval_note_key_prefix(store->inval, prefix, prefixlen);
    return cr_store_purge_matching(store, key_has_prefix, &p, soft);
}

size_t cr_store_purge_if(cr_store_t *store, cr_store_match_fn match, void *ctx, int soft)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    cr_inval_note_all(store->inval); /* the predicate cannot be recorded */
    return cr_store_purge_matching(store, match, ctx, soft);
}

/* The predicate cr_inval_covers() applies to path-prefix records, exactly (it compares hashes); pathpurge.c holds it,
 * so that the shared tier's invalidation log applies the same one. */
static int path_has_prefix(void *ctx, const cr_object_t *obj)
{
    const cr_store_prefix_t *p = ctx;
    return cr_pathpurge_key_has_prefix(cr_object_key(obj), cr_str(p->prefix, p->len));
}

size_t cr_store_purge_path_prefix(cr_store_t *store, const char *prefix, size_t prefixlen, int soft)
{
    cr_store_prefix_t p = {prefix, prefixlen};
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(prefix != NULL || prefixlen == 0);
    cr_inval_note_path_prefix(store->inval, prefix, prefixlen);
    return cr_store_purge_matching(store, path_has_prefix, &p, soft);
}

size_t cr_store_purge_path(cr_store_t *store, uint64_t path_hash, cr_store_match_fn match, void *ctx, int soft)
{
    size_t total = 0, s;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(path_hash != 0);
    cr_inval_note_path(store->inval, path_hash);
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_leaving_t leaving = {NULL, NULL, 0};
        cr_store_shard_t *shard = &store->shards[s];
        cr_object_t *obj, *next;
        pthread_mutex_lock(&shard->lock);
        for (obj = shard->path_buckets[path_hash & shard->path_mask]; obj != NULL; obj = next) {
            next = obj->st.path_next; /* unlinking reuses path_next for the retire list */
            if (obj->path_hash != path_hash || !match(ctx, obj))
                continue;
            if (soft)
                cr_object_invalidate(obj);
            else
                do_cr_store_unlink(store, shard, obj, &leaving);
            ++total;
        }
        do_cr_store_maybe_shrink(store, shard, &leaving);
        pthread_mutex_unlock(&shard->lock);
        cr_store_retire(store, &leaving);
    }
    return total;
}

size_t cr_store_collect_path(cr_store_t *store, uint64_t path_hash, cr_store_match_fn match, void *ctx, cr_object_t **out,
                             size_t max)
{
    size_t n = 0, s;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_shard_t *shard = &store->shards[s];
        cr_object_t *obj;
        pthread_mutex_lock(&shard->lock);
        for (obj = shard->path_buckets[path_hash & shard->path_mask]; obj != NULL; obj = obj->st.path_next) {
            if (obj->path_hash != path_hash || !match(ctx, obj))
                continue;
            if (n < max) {
                cr_object_addref(obj);
                out[n] = obj;
            }
            ++n;
        }
        pthread_mutex_unlock(&shard->lock);
    }
    return n;
}

size_t cr_store_clear(cr_store_t *store)
{
    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    return cr_store_purge_prefix(store, "", 0, 0);
}

/* ---- tags ---- */

size_t cr_store_collect_tag(cr_store_t *store, const char *tag, size_t taglen, cr_object_t **out, size_t max)
{
    uint64_t hash = cr_hash(tag, taglen);
    size_t n = 0, s;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_shard_t *shard = &store->shards[s];
        cr_store_tag_t *e;
        cr_object_tag_t *m;
        pthread_mutex_lock(&shard->lock);
        e = do_cr_store_tag_find(shard, tag, taglen, hash);
        for (m = e != NULL ? e->members : NULL; m != NULL; m = m->st.next) {
            if (n < max) {
                cr_object_addref(m->owner);
                out[n] = m->owner;
            }
            ++n;
        }
        pthread_mutex_unlock(&shard->lock);
    }
    return n;
}

/* Hard: unlinks the tag's members (the entry is freed with its last one). Soft: marks them. One lock hold per shard. */
size_t cr_store_purge_tag(cr_store_t *store, const char *tag, size_t taglen, int soft)
{
    uint64_t hash = cr_hash(tag, taglen);
    size_t total = 0, s;

    CR_CHECK_OBJ_NOTNULL(store, CR_STORE_MAGIC);
    assert(tag != NULL || taglen == 0);
    cr_inval_note_tag(store->inval, tag, taglen);
    for (s = 0; s != CR_STORE_SHARDS; ++s) {
        cr_store_leaving_t leaving = {NULL, NULL, 0};
        cr_store_shard_t *shard = &store->shards[s];
        cr_store_tag_t *e;
        pthread_mutex_lock(&shard->lock);
        e = do_cr_store_tag_find(shard, tag, taglen, hash);
        if (soft) {
            cr_object_tag_t *m;
            for (m = e != NULL ? e->members : NULL; m != NULL; m = m->st.next) {
                cr_object_invalidate(m->owner);
                ++total;
            }
        } else {
            while (e != NULL) {
                cr_object_t *obj = e->members->owner;
                if (e->num_members == 1)
                    e = NULL; /* unlinking its last member frees the entry */
                do_cr_store_unlink(store, shard, obj, &leaving);
                ++total;
            }
            do_cr_store_maybe_shrink(store, shard, &leaving);
        }
        pthread_mutex_unlock(&shard->lock);
        cr_store_retire(store, &leaving);
    }
    return total;
}
