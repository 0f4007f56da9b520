/*
 * key_memo.c: the per-thread memo of routes and cache keys (key_memo.h).
 *
 * Layout: CR_KEY_MEMO_SLOTS entries, direct-mapped by a multiplicative hash of the path (the index only: a collision
 * costs a miss, never a wrong answer, since an entry is compared in full). An entry holds the
 * method, authority, path and key bytes back to back.
 * Invariants: thread-local, so no lock; an entry with seq 0 is empty (a loaded config's seq is never 0).
 */
#include "corral/serve/key_memo.h"

#include <string.h>

#include "corral/core/bytescan.h"

#define CR_KEY_MEMO_SLOTS 64 /* a power of 2 */

typedef struct st_cr_key_memo_entry_t {
    uint64_t seq; /* the generation's cr_config_t.seq; 0: empty */
    uint64_t hash;
    const cr_route_config_t *route;
    uint16_t default_port, method_len, authority_len, path_len, key_len;
    char bytes[CR_KEY_MEMO_BYTES + 1]; /* method, authority, path, key, NUL */
} cr_key_memo_entry_t;

static __thread cr_key_memo_entry_t memo[CR_KEY_MEMO_SLOTS];

#define CR_KEY_MEMO_MUL 0x9e3779b97f4a7c15ull

/* The slot of a path: a multiplicative hash of its words (the last one overlapping the one before, so no byte-wise
 * tail), and of its length. The authority and method are compared, not hashed: most requests share them. */
static cr_key_memo_entry_t *slot_of(cr_str_t path)
{
    uint64_t h = (uint64_t)path.len * CR_KEY_MEMO_MUL;
    size_t i;

    if (path.len >= 8) {
        for (i = 0; i + 8 < path.len; i += 8)
            h = (h ^ cr_bytes_load(path.base + i)) * CR_KEY_MEMO_MUL;
        h = (h ^ cr_bytes_load(path.base + path.len - 8)) * CR_KEY_MEMO_MUL;
    } else if (path.len != 0) {
        uint64_t w = 0;
        memcpy(&w, path.base, path.len);
        h = (h ^ w) * CR_KEY_MEMO_MUL;
    }
    return &memo[(h >> 32) & (CR_KEY_MEMO_SLOTS - 1)];
}

/* s equals the bytes at a (no call for an empty s, whose base may be NULL) */
static int same(const char *a, cr_str_t s)
{
    return s.len == 0 || memcmp(a, s.base, s.len) == 0;
}

/* copies s to b; returns the position after it */
static char *put(char *b, cr_str_t s)
{
    if (s.len != 0)
        memcpy(b, s.base, s.len);
    return b + s.len;
}

static int fits(cr_str_t method, cr_str_t authority, cr_str_t path, size_t keylen)
{
    return method.len + authority.len + path.len + keylen <= CR_KEY_MEMO_BYTES;
}

int cr_key_memo_find(const cr_config_t *cfg, cr_str_t method, cr_str_t authority, uint16_t default_port, cr_str_t path,
                     cr_key_memo_hit_t *hit)
{
    const cr_key_memo_entry_t *e;
    const char *b;

    if (cfg->seq == 0 || !fits(method, authority, path, 0))
        return 0;
    e = slot_of(path);
    if (e->seq != cfg->seq || e->path_len != path.len || e->authority_len != authority.len ||
        e->method_len != method.len || e->default_port != default_port)
        return 0;
    b = e->bytes;
    if (!same(b + e->method_len + e->authority_len, path) || !same(b, method) || !same(b + e->method_len, authority))
        return 0;
    hit->route = e->route;
    hit->key = b + e->method_len + e->authority_len + e->path_len;
    hit->keylen = e->key_len;
    hit->hash = e->hash;
    return 1;
}

void cr_key_memo_store(const cr_config_t *cfg, cr_str_t method, cr_str_t authority, uint16_t default_port, cr_str_t path,
                       const cr_route_config_t *route, const char *key, size_t keylen, uint64_t hash)
{
    cr_key_memo_entry_t *e;
    char *b;

    if (cfg->seq == 0 || !fits(method, authority, path, keylen))
        return;
    e = slot_of(path);
    e->seq = cfg->seq;
    e->hash = hash;
    e->route = route;
    e->default_port = default_port;
    e->method_len = (uint16_t)method.len;
    e->authority_len = (uint16_t)authority.len;
    e->path_len = (uint16_t)path.len;
    e->key_len = (uint16_t)keylen;
    b = e->bytes;
    b = put(put(put(b, method), authority), path);
    b = put(b, cr_str(key, keylen));
    *b = '\0';
}
