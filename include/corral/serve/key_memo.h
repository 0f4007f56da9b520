/*
 * key_memo.h: a per-thread memo of what a cacheable request's method, authority and path give under one config
 * generation: its route, its cache key and the key's hash. A hot object is asked for with the same bytes over and
 * over; the memo spares those requests the route match, the key's normalization and its hash (handler.c).
 *
 * Soundness: the route (conf/route.c, cr_route_match_ex) is a function of the generation, the method and the path;
 * the key (http/key.c, cr_key_build) of the route, the authority, the scheme's default port and the path, plus
 * request headers only on a route with key.headers or a cookie list, which the caller never memoizes. An entry is
 * used only when every one of these inputs equals, byte for byte, what it was made from, and the generation by its
 * seq (cr_config_t.seq, never reused; a freed config's address may be). Nothing else is cached: the caller still
 * checks everything that depends on the rest of the request.
 *
 * Invariants: the memo belongs to the calling thread (thread-local storage: no lock, nothing shared); a found key
 * stays valid until the thread's next cr_key_memo_store. What does not fit an entry is not memoized.
 */
#ifndef CORRAL_SERVE_KEY_MEMO_H
#define CORRAL_SERVE_KEY_MEMO_H

#include <stddef.h>
#include <stdint.h>

#include "corral/conf/config.h"
#include "corral/core/common.h"

/* Bytes an entry holds for the method, authority, path and key together */
#define CR_KEY_MEMO_BYTES 480

typedef struct st_cr_key_memo_hit_t {
    const cr_route_config_t *route; /* in the generation the lookup was made with */
    const char *key;                /* keylen bytes, then a NUL */
    size_t keylen;
    uint64_t hash; /* cr_hash(key, keylen) */
} cr_key_memo_hit_t;

/* The memo of these inputs under cfg, on this thread: 1 and *hit set, or 0. */
int cr_key_memo_find(const cr_config_t *cfg, cr_str_t method, cr_str_t authority, uint16_t default_port, cr_str_t path,
                     cr_key_memo_hit_t *hit);
/* Remembers route, key and hash for these inputs under cfg (replacing whatever shared the slot); does nothing when
 * they do not fit or cfg has no seq. The caller vouches that route's key reads no request header. */
void cr_key_memo_store(const cr_config_t *cfg, cr_str_t method, cr_str_t authority, uint16_t default_port, cr_str_t path,
                       const cr_route_config_t *route, const char *key, size_t keylen, uint64_t hash);

#endif
