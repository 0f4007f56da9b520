/*
 * wire.h: the byte-level pieces both shared-tier formats use (wire.c): the stored value (value.c) and the
 * invalidation log entry (inval_log.c). Little-endian integers written and read byte by byte (no casts of unaligned
 * memory), a bounded reader, and the CRC-32 of a value whose 20-byte header holds the checksum at bytes 16-19.
 *
 * Invariants: a reader never reads past `left`; its first overrun latches `bad`, after which every read returns 0
 * or an empty string, so a parser may read on and check `bad` once. Pure code: no state, no locks; any thread.
 */
#ifndef CORRAL_TIER_WIRE_H
#define CORRAL_TIER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "corral/core/common.h"

/* The header both formats share: magic (4), version (2), reserved (2), total length (8), CRC-32 (4). */
#define CR_WIRE_HEADER_BYTES 20u

/* Writes the low `bytes` bytes of v at *p, little-endian, and advances *p. */
void cr_wire_put(unsigned char **p, uint64_t v, size_t bytes);
/* Copies len bytes (src may be NULL when len is 0) and advances *p. */
void cr_wire_put_bytes(unsigned char **p, const void *src, size_t len);

/* CRC-32 (zlib) of bytes [0,16) then [20,len) of v (len >= CR_WIRE_HEADER_BYTES): the checksum field left out. */
uint32_t cr_wire_crc(const unsigned char *v, size_t len);

typedef struct st_cr_wire_reader_t {
    const unsigned char *p;
    size_t left;
    int bad;
} cr_wire_reader_t;

/* A little-endian integer of `bytes` bytes (at most 8), or 0 once `bad`. */
uint64_t cr_wire_get(cr_wire_reader_t *r, size_t bytes);
/* The next len bytes, in place, or "" once `bad`. */
cr_str_t cr_wire_get_bytes(cr_wire_reader_t *r, uint64_t len);

#endif
