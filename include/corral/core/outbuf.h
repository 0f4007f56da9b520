/*
 * outbuf.h: a bounded writer into a caller's buffer, for the string builders of cache keys (http/key.c) and path
 * match forms (core/urlpath.c), plus the URI character classes both use. Inline: these run on every request.
 *
 * Invariant: len <= cap, and cap leaves one byte for the NUL that cr_outbuf_finish writes. A writer that would pass
 * cap writes nothing and returns -1; the caller then gives up on the whole string.
 */
#ifndef CORRAL_OUTBUF_H
#define CORRAL_OUTBUF_H

#include <limits.h>
#include <string.h>

#include "corral/core/bytescan.h"
#include "corral/core/common.h"

typedef struct st_cr_outbuf_t {
    char *buf;
    size_t cap; /* bytes available for characters (the NUL is extra) */
    size_t len;
} cr_outbuf_t;

/* 0, or -1 for a NULL or empty buffer. At most INT_MAX characters, so that cr_outbuf_finish's int cannot wrap. */
static inline int cr_outbuf_init(cr_outbuf_t *o, char *buf, size_t bufsize)
{
    if (buf == NULL || bufsize == 0)
        return -1;
    o->buf = buf;
    o->cap = CR_MIN(bufsize - 1, (size_t)INT_MAX);
    o->len = 0;
    return 0;
}

static inline int cr_outbuf_byte(cr_outbuf_t *o, char c)
{
    if (o->len >= o->cap)
        return -1;
    o->buf[o->len++] = c;
    return 0;
}

static inline int cr_outbuf_bytes(cr_outbuf_t *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        return -1;
    if (n != 0)
        memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* NUL-terminates and returns the length. */
static inline int cr_outbuf_finish(cr_outbuf_t *o)
{
    o->buf[o->len] = '\0';
    return (int)o->len;
}

/* RFC 3986 unreserved characters; control characters (C0 and DEL). */
static inline int cr_uri_is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

static inline int cr_uri_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Does s[0..len) hold a control byte (C0, DEL) or a space? Eight bytes at a time (bytescan.h: a word that may hold
 * one is looked at byte by byte, so the answer is exact). */
static inline int cr_uri_has_ctl_or_space(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = cr_bytes_load(s + i);
        if ((cr_bytes_below(w, 0x21) | cr_bytes_equal(w, 0x7f)) != 0)
            break;
    }
    for (; i != len; ++i)
        if (cr_uri_is_ctl((unsigned char)s[i]) || s[i] == ' ')
            return 1;
    return 0;
}

static inline char cr_ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

#endif
