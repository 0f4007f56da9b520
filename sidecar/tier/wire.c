/*
 * wire.c: little-endian integers, a bounded reader and the header-skipping CRC shared by the shared tier's value
 * format and invalidation log entries (see wire.h).
 *
 * Invariants: pure functions; no state, no locks.
 */
#include "corral/tier/wire.h"

#include <string.h>
#include <zlib.h>

void cr_wire_put(unsigned char **p, uint64_t v, size_t bytes)
{
    size_t i;
    for (i = 0; i != bytes; ++i)
        (*p)[i] = (unsigned char)(v >> (8 * i));
    *p += bytes;
}

void cr_wire_put_bytes(unsigned char **p, const void *src, size_t len)
{
    if (len != 0)
        memcpy(*p, src, len);
    *p += len;
}

uint32_t cr_wire_crc(const unsigned char *v, size_t len)
{
    uLong crc = crc32_z(0L, Z_NULL, 0);
    crc = crc32_z(crc, v, 16);
    return (uint32_t)crc32_z(crc, v + CR_WIRE_HEADER_BYTES, len - CR_WIRE_HEADER_BYTES);
}

uint64_t cr_wire_get(cr_wire_reader_t *r, size_t bytes)
{
    uint64_t v = 0;
    size_t i;
    if (r->bad || r->left < bytes) {
        r->bad = 1;
        return 0;
    }
    for (i = 0; i != bytes; ++i)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    r->left -= bytes;
    return v;
}

cr_str_t cr_wire_get_bytes(cr_wire_reader_t *r, uint64_t len)
{
    cr_str_t s = cr_str("", 0);
    if (r->bad || len > r->left) {
        r->bad = 1;
        return s;
    }
    s = cr_str((const char *)r->p, (size_t)len);
    r->p += len;
    r->left -= (size_t)len;
    return s;
}
