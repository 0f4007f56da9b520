/*
 * pathpurge.c: purges and look-ups by exact path or path prefix (pathpurge.h).
 *
 * Invariants: takes no lock itself (the store locks one shard at a time and notes each purge for the fills in flight,
 * inval_epoch.h); the match callback runs under a shard lock and only compares bytes of the object's key.
 */
#include "corral/cache/pathpurge.h"

#include <string.h>

#include "corral/cache/inval_epoch.h"
#include "corral/http/invalidate.h"

int cr_pathpurge_key_is(cr_str_t key, cr_str_t path)
{
    cr_str_t tag = cr_path_tag(key); /* "\n/path" */
    return tag.len == path.len + 1 && memcmp(tag.base + 1, path.base, path.len) == 0;
}

int cr_pathpurge_key_has_prefix(cr_str_t key, cr_str_t prefix)
{
    cr_str_t path = cr_inval_key_path(key);
    if (prefix.len == 0)
        return 1;
    if (path.len < prefix.len || memcmp(path.base, prefix.base, prefix.len) != 0)
        return 0;
    /* segment boundary, as route prefixes: "/v1/users" covers "/v1/users" and "/v1/users/1", never "/v1/usersX" */
    return path.len == prefix.len || prefix.base[prefix.len - 1] == '/' || path.base[prefix.len] == '/';
}

/* Does the object's key name exactly this path (tells path-hash collisions apart)? */
static int key_path_is(void *ctx, const cr_object_t *obj)
{
    const cr_str_t *path = ctx;
    return cr_pathpurge_key_is(cr_object_key(obj), *path);
}

size_t cr_pathpurge_exact(cr_store_t *store, cr_str_t path, int soft)
{
    return cr_store_purge_path(store, cr_path_hash_of_path(path), key_path_is, &path, soft);
}

size_t cr_pathpurge_prefix(cr_store_t *store, cr_str_t prefix, int soft)
{
    return cr_store_purge_path_prefix(store, prefix.base, prefix.len, soft);
}

size_t cr_pathpurge_collect(cr_store_t *store, cr_str_t path, cr_object_t **out, size_t max)
{
    return cr_store_collect_path(store, cr_path_hash_of_path(path), key_path_is, &path, out, max);
}
