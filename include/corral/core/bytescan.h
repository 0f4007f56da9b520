/*
 * bytescan.h: eight bytes at a time, for the byte-class scans every request runs (field values, request targets, the
 * access log's JSON strings). Pure inline functions on a 64-bit word loaded from any address.
 *
 * Invariants: each test may report a byte next to a matching one as matching too (a borrow or carry crosses into
 * the byte above), but never misses one; so a "no" is exact and a "yes" only means "look at these bytes one by one".
 * Callers use them that way: a word that tests clean is accepted whole, any other goes through the byte-wise check.
 */
#ifndef CORRAL_CORE_BYTESCAN_H
#define CORRAL_CORE_BYTESCAN_H

#include <stdint.h>
#include <string.h>

#define CR_BYTES_ONES 0x0101010101010101ull
#define CR_BYTES_HIGHS 0x8080808080808080ull

static inline uint64_t cr_bytes_load(const void *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    return w;
}

/* the high bit of each byte below n (n <= 128) may be set; none is set when every byte is >= n */
static inline uint64_t cr_bytes_below(uint64_t w, unsigned n)
{
    return (w - CR_BYTES_ONES * n) & ~w & CR_BYTES_HIGHS;
}

/* ... of each byte above n (n < 128) */
static inline uint64_t cr_bytes_above(uint64_t w, unsigned n)
{
    return ((w + CR_BYTES_ONES * (127 - n)) | w) & CR_BYTES_HIGHS;
}

/* ... of each byte equal to c */
static inline uint64_t cr_bytes_equal(uint64_t w, unsigned char c)
{
    uint64_t x = w ^ (CR_BYTES_ONES * c);
    return (x - CR_BYTES_ONES) & ~x & CR_BYTES_HIGHS;
}

#endif
