/*
 * common.h: small helpers shared by every corral module.
 *
 * Invariants: asserts stay on in release builds (the Makefile never defines NDEBUG). Shared structs start with
 * `unsigned magic;` and are checked with CR_CHECK_OBJ_NOTNULL at the top of the functions that take them.
 * Time is milliseconds since the epoch (uint64_t) everywhere; callers pass `now` in so tests can use a fake clock.
 */
#ifndef CORRAL_COMMON_H
#define CORRAL_COMMON_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CR_VERSION "0.1.0"

#define CR_OK 0
#define CR_ERROR (-1)
#define CR_DECLINED (-2)
#define CR_AGAIN (-3)

#define CR_CHECK_OBJ_NOTNULL(p, m)                                                                                                  \
    do {                                                                                                                            \
        assert((p) != NULL);                                                                                                        \
        assert((p)->magic == (m));                                                                                                  \
    } while (0)

#define CR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* A borrowed byte string; not necessarily NUL-terminated. */
typedef struct st_cr_str_t {
    const char *base;
    size_t len;
} cr_str_t;

#define CR_STR(lit) ((cr_str_t){(lit), sizeof(lit) - 1})
static inline cr_str_t cr_str(const char *base, size_t len)
{
    return (cr_str_t){base, len};
}
static inline int cr_str_eq(cr_str_t a, const char *lit, size_t litlen)
{
    return a.len == litlen && memcmp(a.base, lit, litlen) == 0;
}
/* ASCII case-insensitive equality against a lower-case literal. */
int cr_str_ieq(cr_str_t a, const char *lower, size_t lowerlen);

/* Optional whitespace (RFC 9110 5.6.3): space or tab. */
static inline int cr_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The value of a hex digit, or -1. */
static inline int cr_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 9110 5.6.2 tchar: a byte of a token (a field name, a method, a coding). */
static inline int cr_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}
/* s without leading and trailing OWS. */
cr_str_t cr_str_trim_ows(cr_str_t s);

/* 64-bit FNV-1a; good enough for hash tables keyed by normalized cache keys. cr_hash_more continues a hash, so
 * cr_hash(a + b) == cr_hash_more(cr_hash(a), b): pieces hash like their concatenation. */
#define CR_HASH_INIT 1469598103934665603ull
uint64_t cr_hash(const void *p, size_t len);
uint64_t cr_hash_more(uint64_t h, const void *p, size_t len);

/* Writes the decimal form of v (with a '-' when negative) to buf, which must hold 21 bytes; returns the length. No
 * NUL is written. Used on the hit path instead of snprintf. */
size_t cr_i64toa(int64_t v, char *buf);

/* Wall-clock milliseconds since the epoch. */
uint64_t cr_now_ms(void);

/* Appends len bytes to an h2o buffer (h2o_buffer_t, declared here without h2o's headers). Returns CR_OK, or
 * CR_ERROR when the buffer cannot grow. */
struct st_h2o_buffer_t;
int cr_buffer_append(struct st_h2o_buffer_t **buf, const void *p, size_t len);

/* The content codings a body can be held and sent in: the identity, and the two corral makes at store time. */
typedef enum en_cr_encoding_t {
    CR_ENC_IDENTITY = 0,
    CR_ENC_GZIP,
    CR_ENC_BR,
    CR_ENC_MAX,
} cr_encoding_t;

#define CR_ENC_BIT(e) (1u << (unsigned)(e))

/* The gzip levels and brotli qualities corral compresses at (a route's compress.gzip_level and brotli_quality). */
#define CR_GZIP_LEVEL_MIN 1
#define CR_GZIP_LEVEL_MAX 9
#define CR_BROTLI_QUALITY_MIN 0
#define CR_BROTLI_QUALITY_MAX 11

/* Looks up a request header value by lower-case name; returns 1 and sets *value when present, 0 when absent. The one
 * header-getter shape: cache keys (http/key.h), Vary variant keys (http/http.h) and fills (cache/objbuild.h). */
typedef int (*cr_header_lookup_fn)(void *ctx, const char *lname, size_t lnamelen, cr_str_t *value);

#endif
