/*
 * codec_internal.h: what encoding.c and encode_whole.c share: zlib's window bits for gzip, the 32-bit cap of a zlib
 * call, and shrinking a finished output buffer. Internal to sidecar/http.
 */
#ifndef CORRAL_HTTP_CODEC_INTERNAL_H
#define CORRAL_HTTP_CODEC_INTERNAL_H

#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

/* zlib window bits for a gzip wrapper (15-bit window + 16). */
#define CR_GZIP_WBITS (15 + 16)

static inline uInt zlib_cap(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/* Shrinks a finished output buffer to its length (keeps the old one if realloc fails: it is still valid). */
static inline char *shrink(char *buf, size_t len)
{
    char *n = realloc(buf, len != 0 ? len : 1);
    return n != NULL ? n : buf;
}

#endif
