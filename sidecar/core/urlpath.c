/*
 * urlpath.c: the match form of a request path (cr_urlpath_match_form), moved here from http/key.c so that conf/
 * (route paths in the config, route matching) does not reach up into http/.
 *
 * Invariants: pure functions; no allocation, no locks, no global state. Output goes to the caller's buffer only; the
 * result is NUL-terminated.
 */
#include "corral/core/urlpath.h"

#include <limits.h>

#include "corral/core/outbuf.h"

/*
 * The match form: what routes are matched on. Built so that a request cannot escape a route through a spelling the
 * upstream may read as the same resource:
 *   - escapes are decoded when the byte is unreserved, '/' (%2F) or ';' (%3B); other escapes keep their hex upper-cased;
 *   - each segment loses its ";params" (Tomcat, Jetty and Spring read "/a;x" as "/a");
 *   - empty segments are dropped ("//a" and "/a/" are "/a"); "." segments are dropped;
 *   - ".." (after the above, e.g. "..;x" or "%2F..%2F") pops a segment, and makes the path ambiguous: whether it
 *     applies before or after "//" merging depends on the upstream;
 *   - a backslash (raw or %5C: Windows servers read it as '/'), an encoded control byte, "%25" followed by two hex
 *     digits (a double-decoding upstream reads it as that escape; also when decoding made it, as in "%252%42"), a 0xC0 or 0xC1 byte (overlong UTF-8, raw or
 *     escaped), a raw '#' (a fragment to many servers) or an invalid escape also make it ambiguous; a backslash
 *     is read as '/'.
 * Case is kept. The result has no trailing '/' except for the root "/".
 */
/* Is the path (up to its query) already its own match form: "/" or segments of unreserved bytes, none empty, none
 * starting with '.', no trailing '/'? Most request paths are; they are copied as they are. */
static int is_plain_match_path(const char *p, size_t len)
{
    size_t i;
    if (len == 0 || p[0] != '/' || (len > 1 && p[len - 1] == '/'))
        return 0;
    for (i = 1; i < len; ++i) {
        unsigned char c = (unsigned char)p[i];
        if (c == '/' || c == '.') {
            if (p[i - 1] == '/')
                return 0;
        } else if (!cr_uri_is_unreserved(c)) {
            return 0;
        }
    }
    return 1;
}

/* Does s hold "%25" and two hex digits, which a double-decoding upstream reads as another escape? */
static int holds_double_escape(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i + 5 <= len; ++i)
        if (s[i] == '%' && s[i + 1] == '2' && s[i + 2] == '5' && cr_hex_value(s[i + 3]) >= 0 && cr_hex_value(s[i + 4]) >= 0)
            return 1;
    return 0;
}

int cr_urlpath_match_form(cr_str_t path, char *buf, size_t bufsize, int *ambiguous)
{
    cr_outbuf_t o;
    size_t i = 0, len = path.len;
    int amb = 0;

    if (path.base != NULL && len != 0) {
        const char *qmark = memchr(path.base, '?', len);
        if (qmark != NULL)
            len = (size_t)(qmark - path.base);
    }
    if (ambiguous != NULL)
        *ambiguous = 0;
    if (cr_outbuf_init(&o, buf, bufsize) != 0 || len == 0 || path.base[0] != '/')
        return -1;
    if (is_plain_match_path(path.base, len)) {
        if (cr_outbuf_bytes(&o, path.base, len) != 0)
            return -1;
        return cr_outbuf_finish(&o);
    }
    while (i < len) {
        size_t seg = o.len, seglen;
        int in_params = 0;
        if (cr_outbuf_byte(&o, '/') != 0)
            return -1;
        ++i; /* the separator: '/', "%2F" (its other two bytes were skipped below) or '\\' */
        while (i < len) {
            unsigned char c = (unsigned char)path.base[i];
            int hi = -1, lo = -1, width = 1;
            if (cr_uri_is_ctl(c) || c == ' ')
                return -1;
            if (c == '%') {
                if (i + 2 < len && (hi = cr_hex_value(path.base[i + 1])) >= 0 && (lo = cr_hex_value(path.base[i + 2])) >= 0) {
                    c = (unsigned char)(hi * 16 + lo);
                    width = 3;
                    if (cr_uri_is_ctl(c) || c == '\\' || c == 0xc0 || c == 0xc1 ||
                        (c == '%' && i + 4 < len && cr_hex_value(path.base[i + 3]) >= 0 && cr_hex_value(path.base[i + 4]) >= 0))
                        amb = 1;
                } else {
                    amb = 1; /* an invalid escape: kept as it is */
                }
            } else if (c == '\\' || c == 0xc0 || c == 0xc1 || c == '#') {
                amb = 1; /* 0xC0 and 0xC1 only start overlong UTF-8 ("%C0%AF" is '/' to some decoders); many servers
                            cut a raw '#' and what follows as a fragment */
            }
            if (c == '/' || c == '\\') {
                if (width == 3)
                    i += 2; /* the loop above steps over the separator's first byte */
                break;
            }
            i += (size_t)width;
            if (c == ';')
                in_params = 1;
            if (in_params)
                continue;
            if (width == 1 || cr_uri_is_unreserved(c)) {
                if (cr_outbuf_byte(&o, (char)c) != 0)
                    return -1;
            } else if (cr_outbuf_byte(&o, '%') != 0 || cr_outbuf_byte(&o, cr_ascii_upper(path.base[i - 2])) != 0 ||
                       cr_outbuf_byte(&o, cr_ascii_upper(path.base[i - 1])) != 0) {
                return -1;
            }
        }
        seglen = o.len - seg - 1;
        if (seglen == 0 || (seglen == 1 && o.buf[seg + 1] == '.')) {
            o.len = seg;
        } else if (seglen == 2 && o.buf[seg + 1] == '.' && o.buf[seg + 2] == '.') {
            amb = 1;
            o.len = seg;
            while (o.len != 0 && o.buf[o.len - 1] != '/')
                --o.len;
            if (o.len != 0)
                --o.len;
        }
    }
    if (o.len == 0 && cr_outbuf_byte(&o, '/') != 0)
        return -1;
    if (!amb && holds_double_escape(o.buf, o.len))
        amb = 1; /* made by decoding: "%252%42" is "%252B" */
    if (ambiguous != NULL)
        *ambiguous = amb;
    return cr_outbuf_finish(&o);
}
