/*
 * tier_key.h: the memcached keys of the shared tier (L2), protocol v1 (tier_key.c). README "Shared tier protocol",
 * "Key format", is the description other pods must match.
 *
 *     value key:  "corral:v1:"       + 32 lower-case hex digits
 *     lease key:  "corral:v1:lease:" + the same 32 hex digits
 *
 * The hex digits are the first 16 bytes of SHA-256 (OpenSSL libcrypto) of the primary cache key's bytes, as given
 * (any bytes, any length, no terminator).
 *
 * Invariants:
 *  - a key is a pure function of the primary key's bytes: the same on every pod, CPU, build and run (no seed, no
 *    endianness, no process state), so pods agree on where an object lives.
 *  - a key is at most CR_TIER_KEY_MAX bytes (42 for the value key, 48 for the lease key; memcached allows 250) and
 *    holds only [a-z0-9:], so no primary key, however long or whatever bytes it holds, makes an invalid memcached key.
 *  - the "v1" is the protocol version: it changes with CR_TIER_FORMAT_VERSION (a static assert in tier_key.c), so two
 *    generations of pods never overwrite each other's values during a rolling deploy.
 *  - a collision of two primary keys on one memcached key is not a wrong answer: the value stores its primary key and
 *    the reader refuses another (CR_TIER_VALUE_KEY). The hash needs only to spread well and be stable.
 *  - pure code: no locks, no globals written; any thread. out is written NUL-terminated.
 */
#ifndef CORRAL_TIER_TIER_KEY_H
#define CORRAL_TIER_TIER_KEY_H

#include <stddef.h>

#define CR_TIER_KEY_PREFIX "corral:v1:"
#define CR_TIER_LEASE_KEY_PREFIX "corral:v1:lease:"
/* Hex digits after the prefix: 128 bits of the hash. */
#define CR_TIER_KEY_HEX_DIGITS 32u
/* The longest key either function writes (the lease key), without the NUL; a buffer needs CR_TIER_KEY_MAX + 1. */
#define CR_TIER_KEY_MAX (sizeof(CR_TIER_LEASE_KEY_PREFIX) - 1 + CR_TIER_KEY_HEX_DIGITS)

/* Writes the value key for the primary key (key, len) into out (CR_TIER_KEY_MAX + 1 bytes), NUL-terminated.
 * Returns its length (42), or 0 when libcrypto fails (out of memory); then out holds "". key may be NULL if len is 0. */
size_t cr_tier_key(const void *key, size_t len, char out[CR_TIER_KEY_MAX + 1]);

/* The same for the lease key of that primary key (length 48). */
size_t cr_tier_lease_key(const void *key, size_t len, char out[CR_TIER_KEY_MAX + 1]);

#endif
