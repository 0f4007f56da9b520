/*
 * log.c: the error log. Each line is built in a stack buffer and written with a single write(2) to stderr, so
 * lines from different threads never interleave. Lines longer than the buffer are truncated.
 *
 * Invariant: one call is one line. The formatted message is escaped here, in the one place every caller goes
 * through: a control byte (< 0x20, including CR and LF, and DEL) and a byte that is not part of valid UTF-8 are
 * written as \xNN, so no value that reaches a log line (a cache key with its internal newlines, a request path or
 * header from a client, an upstream's reason phrase) can end the line early or forge another record.
 */
#include "corral/log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CR_LOG_LINE 2048

/* The length of the valid UTF-8 sequence (2..4 bytes) that starts at s, or 0 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    size_t n, i;
    unsigned char lo = 0x80, hi = 0xbf;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i != n; ++i)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* Appends src[0..len) to dst at *pos (capacity cap), escaped; stops before what does not fit whole. */
static void append_escaped(char *dst, size_t *pos, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, n;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f) {
            if (*pos + 1 > cap)
                return;
            dst[(*pos)++] = (char)c;
            ++i;
        } else if (c >= 0x80 && (n = utf8_seq(s + i, len - i)) != 0) {
            if (*pos + n > cap)
                return;
            for (; n != 0; --n)
                dst[(*pos)++] = (char)s[i++];
        } else {
            if (*pos + 4 > cap)
                return;
            dst[(*pos)++] = '\\';
            dst[(*pos)++] = 'x';
            dst[(*pos)++] = hex[c >> 4];
            dst[(*pos)++] = hex[c & 15];
            ++i;
        }
    }
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char msg[CR_LOG_LINE], buf[CR_LOG_LINE];
    struct timeval tv;
    struct tm tm;
    int n, m;
    size_t pos;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s] ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), level);
    if (n < 0 || n >= (int)sizeof(buf))
        n = 0;
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (m < 0)
        m = 0;
    if (m >= (int)sizeof(msg))
        m = sizeof(msg) - 1;
    pos = (size_t)n;
    append_escaped(buf, &pos, sizeof(buf) - 1, msg, (size_t)m);
    buf[pos++] = '\n';
    if (write(2, buf, pos) < 0) {
        /* nothing sensible to do when stderr is gone */
    }
}

void cr_log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("error", fmt, ap);
    va_end(ap);
}

void cr_log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("warn", fmt, ap);
    va_end(ap);
}

void cr_log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("info", fmt, ap);
    va_end(ap);
}
