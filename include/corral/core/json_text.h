/*
 * json_text.h: writing JSON text fast: strings escaped (UTF-8 kept, everything else \u00XX), unsigned numbers,
 * microseconds as seconds, and a UTC second. For the access log's hot path; no allocation.
 */
#ifndef CORRAL_CORE_JSON_TEXT_H
#define CORRAL_CORE_JSON_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* JSON-escapes src into dst (capacity cap) at *pos, whole characters only; stops (returns -1) at the first that
 * does not fit, else 0. Control bytes, '"', '\\' and DEL are escaped; invalid UTF-8 bytes become \u00XX. */
int cr_json_escape(char *dst, size_t *pos, size_t cap, const char *src, size_t len);

/* "YYYY-MM-DDTHH:MM:SS" (19 bytes and a NUL) for sec (UTC). */
void cr_json_fmt_second(char out[20], time_t sec);

/* "00".."99" */
extern const char cr_digit_pairs[201];

/* v in decimal at out (at most 20 bytes, no NUL); returns the length. */
static inline size_t cr_json_put_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof(tmp);
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        n -= 2;
        memcpy(tmp + n, cr_digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        n -= 2;
        memcpy(tmp + n, cr_digit_pairs + 2 * v, 2);
    } else
        tmp[--n] = (char)('0' + v);
    memcpy(out, tmp + n, sizeof(tmp) - n);
    return sizeof(tmp) - n;
}

/* seconds with 6 decimals */
static inline size_t cr_json_put_seconds(char *out, uint64_t us)
{
    size_t n = cr_json_put_u64(out, us / 1000000);
    unsigned frac = (unsigned)(us % 1000000);
    out[n] = '.';
    memcpy(out + n + 1, cr_digit_pairs + 2 * (frac / 10000), 2);
    memcpy(out + n + 3, cr_digit_pairs + 2 * (frac / 100 % 100), 2);
    memcpy(out + n + 5, cr_digit_pairs + 2 * (frac % 100), 2);
    return n + 7;
}

#endif
