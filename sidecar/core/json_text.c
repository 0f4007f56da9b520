/*
 * json_text.c: the JSON text writers (json_text.h): string escaping and the UTC second.
 *
 * Invariants: cr_json_escape writes whole characters only and never past cap; the tables are constant.
 * Locking: none (pure functions).
 */
#include "corral/core/json_text.h"

#include <string.h>

#include "corral/core/bytescan.h"
#include "corral/core/log.h"

/* bytes written as they are: printable ASCII but '"' and '\\' */
static const unsigned char plain[256] = {
    [0x20 ... 0x21] = 1, /* '"' is 0x22 */
    [0x23 ... 0x5b] = 1, /* '\\' is 0x5c */
    [0x5d ... 0x7e] = 1,
};

/* Does the 8-byte word hold only plain bytes (0x20..0x7e but '"' and '\\')? */
static inline int word_is_plain(uint64_t w)
{
    return (cr_bytes_below(w, 0x20) | cr_bytes_above(w, 0x7e) | cr_bytes_equal(w, '"') | cr_bytes_equal(w, '\\')) == 0;
}

/* The end of the run of plain bytes that starts at s[i] (plain), at most len. */
static inline size_t plain_run_end(const unsigned char *s, size_t i, size_t len)
{
    size_t j = i + 1;
    for (; j + 8 <= len && word_is_plain(cr_bytes_load(s + j)); j += 8)
        ;
    while (j < len && plain[s[j]])
        ++j;
    return j;
}

int cr_json_escape(char *dst, size_t *pos, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, n, p = *pos;

    /* the usual string (a path, a route, a Cache-Status) is one run of plain bytes: one copy */
    if (p + len <= cap && (len == 0 || (plain[s[0]] && plain_run_end(s, 0, len) == len))) {
        memcpy(dst + p, s, len);
        *pos = p + len;
        return 0;
    }
    while (i < len) {
        unsigned char c = s[i];
        if (plain[c]) {
            /* a run of plain bytes, copied at once (the usual path: most of a path, all of an id) */
            size_t j = plain_run_end(s, i, len);
            if (p + (j - i) > cap) {
                j = i + (cap - p); /* as many as fit */
                memcpy(dst + p, s + i, j - i);
                p += j - i;
                goto full;
            }
            memcpy(dst + p, s + i, j - i);
            p += j - i;
            i = j;
        } else if (c == '"' || c == '\\') {
            if (p + 2 > cap)
                goto full;
            dst[p++] = '\\';
            dst[p++] = (char)c;
            ++i;
        } else if (c >= 0x80 && (n = cr_utf8_seq(s + i, len - i)) != 0) {
            if (p + n > cap)
                goto full;
            memcpy(dst + p, s + i, n);
            p += n;
            i += n;
        } else {
            /* a control byte, DEL, or a byte that is not UTF-8 (shown as the code point of the same value) */
            if (p + 6 > cap)
                goto full;
            memcpy(dst + p, "\\u00", 4);
            dst[p + 4] = hex[c >> 4];
            dst[p + 5] = hex[c & 15];
            p += 6;
            ++i;
        }
    }
    *pos = p;
    return 0;
full:
    *pos = p;
    return -1;
}

static void put2(char *out, int v)
{
    out[0] = (char)('0' + v / 10 % 10);
    out[1] = (char)('0' + v % 10);
}

void cr_json_fmt_second(char out[20], time_t sec)
{
    struct tm tm;
    int y;
    gmtime_r(&sec, &tm);
    y = (tm.tm_year + 1900) % 10000;
    put2(out, y / 100);
    put2(out + 2, y % 100);
    out[4] = '-';
    put2(out + 5, tm.tm_mon + 1);
    out[7] = '-';
    put2(out + 8, tm.tm_mday);
    out[10] = 'T';
    put2(out + 11, tm.tm_hour);
    out[13] = ':';
    put2(out + 14, tm.tm_min);
    out[16] = ':';
    put2(out + 17, tm.tm_sec);
    out[19] = '\0';
}

const char cr_digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                 "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                 "8081828384858687888990919293949596979899";
