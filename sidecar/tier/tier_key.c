/*
 * tier_key.c: the memcached keys of the shared tier, protocol v1 (see tier_key.h and README "Shared tier protocol").
 *
 * Hash: SHA-256 from OpenSSL's libcrypto (already linked for TLS), truncated to its first 16 bytes, written as 32
 * lower-case hex digits, first byte first. Why not cr_hash (core/common.h): it is 64-bit FNV-1a, unseeded and so
 * stable, but 64 bits and FNV's weak mixing of similar keys (URLs that differ in a last digit) spread worse than we
 * want across ketama's continuum; two FNV variants would not be independent. SHA-256 is fixed by its standard, so
 * every pod, CPU and build computes the same bytes, and 128 bits make a collision negligible (and harmless: the
 * value's stored key catches it). Its cost is paid on an L1 miss only, next to a
 * memcached round trip (not measured here).
 *
 * Invariants: pure function of the bytes; output only [a-z0-9:], at most CR_TIER_KEY_MAX bytes, NUL-terminated. No
 * locks, no state; any thread (SHA256() keeps no shared state).
 */
#include "corral/tier/tier_key.h"

#include <openssl/sha.h>
#include <string.h>

#include "corral/tier/value.h"

/* The "v1" in the prefixes is the protocol version: a new value format gets new keys (README version rule). */
_Static_assert(CR_TIER_FORMAT_VERSION == 1, "CR_TIER_KEY_PREFIX and CR_TIER_LEASE_KEY_PREFIX must say the new version");

static size_t tier_key_with(const char *prefix, size_t plen, const void *key, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    static const unsigned char empty = 0;
    unsigned char md[SHA256_DIGEST_LENGTH];

    if (SHA256(len != 0 ? (const unsigned char *)key : &empty, len, md) == NULL) {
        out[0] = '\0';
        return 0;
    }
    memcpy(out, prefix, plen);
    for (size_t i = 0; i < CR_TIER_KEY_HEX_DIGITS / 2; i++) {
        out[plen + 2 * i] = hex[md[i] >> 4];
        out[plen + 2 * i + 1] = hex[md[i] & 0xf];
    }
    out[plen + CR_TIER_KEY_HEX_DIGITS] = '\0';
    return plen + CR_TIER_KEY_HEX_DIGITS;
}

size_t cr_tier_key(const void *key, size_t len, char out[CR_TIER_KEY_MAX + 1])
{
    return tier_key_with(CR_TIER_KEY_PREFIX, sizeof(CR_TIER_KEY_PREFIX) - 1, key, len, out);
}

size_t cr_tier_lease_key(const void *key, size_t len, char out[CR_TIER_KEY_MAX + 1])
{
    return tier_key_with(CR_TIER_LEASE_KEY_PREFIX, sizeof(CR_TIER_LEASE_KEY_PREFIX) - 1, key, len, out);
}
