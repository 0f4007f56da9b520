/*
 * h1_request.c: the strict HTTP/1.1 head parsers and syntax predicates (see h1_request.h for the contract and what is
 * rejected).
 *
 * Invariants: every call parses from the start of buf (the head is small: libh2o caps a request head at
 * H2O_MAX_REQLEN); a byte is never skipped: each grammar position accepts a fixed set and anything else is -1 at
 * once, or -2 when the bytes end before a decision. No allocation, no global state.
 */
#include "corral/http/h1_request.h"

#include "corral/core/bytescan.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#define INCOMPLETE (-2)
#define MALFORMED (-1)

/* ---- character classes ---- */

/* One byte table for every class: each check is a load and a test (these run on every request, HTTP/2 ones
 * included, see reqcheck.c). Filled once, before main() runs (a constructor: no thread can read it earlier). */
enum {
    C_TCHAR = 1,     /* RFC 9110 5.6.2 tchar */
    C_HEX = 2,       /* HEXDIG */
    C_UNRES_SUB = 4, /* RFC 3986 unreserved or sub-delims */
    C_VALUE = 8,     /* RFC 9110 5.5 field-value byte: VCHAR, obs-text, SP, HTAB */
    C_TARGET = 16,   /* a request-target byte: VCHAR but '#' */
};
static uint8_t cls[256];

__attribute__((constructor)) static void init_classes(void)
{
    unsigned c;
    for (c = 0; c != 256; ++c) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        uint8_t v = 0;
        if (alnum || (c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL))
            v |= C_TCHAR;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            v |= C_HEX;
        if (alnum || (c != 0 && strchr("-._~!$&'()*+,;=", (int)c) != NULL))
            v |= C_UNRES_SUB;
        if (c == '\t' || (c >= 0x20 && c != 0x7f))
            v |= C_VALUE;
        if (c > 0x20 && c < 0x7f && c != '#')
            v |= C_TARGET;
        cls[c] = v;
    }
}

static int is_tchar(unsigned char c)
{
    return (cls[c] & C_TCHAR) != 0;
}

static int is_hex(unsigned char c)
{
    return (cls[c] & C_HEX) != 0;
}

static int is_unreserved_or_subdelim(unsigned char c)
{
    return (cls[c] & C_UNRES_SUB) != 0;
}

/* a byte allowed in a field value (RFC 9110 5.5: VCHAR, obs-text, SP, HTAB) */
static int is_value_byte(unsigned char c)
{
    return (cls[c] & C_VALUE) != 0;
}

static int lc_eq(const char *s, size_t len, const char *lit)
{
    size_t i;
    if (strlen(lit) != len)
        return 0;
    for (i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

int cr_h1_is_token(const char *s, size_t len)
{
    size_t i;
    if (len == 0)
        return 0;
    for (i = 0; i != len; ++i)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Can the 8 bytes be accepted whole as field-value bytes? No control byte (HTAB and CR included: their word goes
 * byte by byte) and no DEL. */
static int value_word_clean(uint64_t w)
{
    return (cr_bytes_below(w, 0x20) | cr_bytes_equal(w, 0x7f)) == 0;
}

int cr_h1_is_field_value(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len && value_word_clean(cr_bytes_load(s + i)); i += 8)
        ;
    for (; i != len; ++i)
        if (!is_value_byte((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Can the 8 bytes be accepted whole? Target bytes only; before the query, no '?' or '%' either (those change the
 * state or start an escape, so their word goes byte by byte). */
static int target_word_clean(uint64_t w, int in_query)
{
    uint64_t bad = cr_bytes_below(w, 0x21) | cr_bytes_above(w, 0x7e) | cr_bytes_equal(w, '#');
    if (!in_query)
        bad |= cr_bytes_equal(w, '?') | cr_bytes_equal(w, '%');
    return bad == 0;
}

int cr_h1_is_origin_form(const char *s, size_t len)
{
    size_t i = 0, end;
    int in_query = 0;

    if (len == 0 || s[0] != '/')
        return 0;
    while (i != len) {
        if (i + 8 <= len && target_word_clean(cr_bytes_load(s + i), in_query)) {
            i += 8;
            continue;
        }
        for (end = i + 8 < len ? i + 8 : len; i != end; ++i) { /* this word, byte by byte */
            unsigned char c = (unsigned char)s[i];
            if ((cls[c] & C_TARGET) == 0)
                return 0; /* a control, SP, DEL, '#' or a byte >= 0x80 */
            if (c == '?')
                in_query = 1;
            else if (c == '%' && !in_query && (len - i < 3 || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2])))
                return 0;
        }
    }
    return 1;
}

int cr_h1_is_authority(const char *s, size_t len)
{
    size_t i = 0, host_end, digits;
    if (len == 0)
        return 0;
    if (s[0] == '[') { /* IP-literal: IPv6address (hex digits, ':' and '.'); IPvFuture is not supported */
        for (i = 1; i != len && s[i] != ']'; ++i)
            if (!is_hex((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
                return 0;
        if (i == len || i == 1)
            return 0;
        host_end = ++i;
    } else {
        for (; i != len && s[i] != ':'; ++i) {
            unsigned char c = (unsigned char)s[i];
            if (c == '%') {
                if (len - i < 3 || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
                    return 0;
                i += 2;
            } else if (!is_unreserved_or_subdelim(c)) {
                return 0;
            }
        }
        host_end = i;
        if (host_end == 0)
            return 0;
    }
    if (host_end == len)
        return 1;
    if (s[host_end] != ':')
        return 0;
    for (i = host_end + 1, digits = 0; i != len; ++i, ++digits)
        if (s[i] < '0' || s[i] > '9' || digits == 5)
            return 0;
    return 1;
}

/* ---- the head scanner ---- */

/* With last_len != 0: does buf hold an end of head (an LF followed by CRLF or LF) or a bare LF (an error to report)
 * after what the previous call saw? When not, the caller answers -2 without parsing again. */
static int may_be_complete(const char *buf, size_t len, size_t last_len)
{
    size_t i = last_len < 3 ? 0 : last_len - 3;
    for (; i < len; ++i) {
        if (buf[i] != '\n')
            continue;
        if (i == 0 || buf[i - 1] != '\r')
            return 1; /* bare LF */
        if (i + 1 < len && buf[i + 1] == '\n')
            return 1;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return 1;
    }
    return 0;
}

/* Expects CRLF at *pos. 0 (and *pos past it), INCOMPLETE, or MALFORMED. */
static int expect_crlf(const char *buf, size_t len, size_t *pos, const char **error)
{
    if (*pos == len)
        return INCOMPLETE;
    if (buf[*pos] != '\r') {
        *error = buf[*pos] == '\n' ? "bare LF line ending" : "garbage at the end of a line";
        return MALFORMED;
    }
    if (*pos + 1 == len)
        return INCOMPLETE;
    if (buf[*pos + 1] != '\n') {
        *error = "CR not followed by LF";
        return MALFORMED;
    }
    *pos += 2;
    return 0;
}

/* Parses field lines from *pos up to and including the empty line. 0, INCOMPLETE or MALFORMED. */
static int parse_fields(const char *buf, size_t len, size_t *pos, cr_h1_field_t *fields, size_t *num_fields, const char **error)
{
    size_t max = *num_fields, n = 0, p = *pos;
    int r;

    *num_fields = 0;
    for (;;) {
        size_t name_start, value_start, value_end;
        if (p == len)
            return INCOMPLETE;
        if (buf[p] == '\r' || buf[p] == '\n') {
            if ((r = expect_crlf(buf, len, &p, error)) != 0)
                return r;
            break;
        }
        if (buf[p] == ' ' || buf[p] == '\t') {
            *error = "obs-fold or whitespace at the start of a field line";
            return MALFORMED;
        }
        if (n == max) {
            *error = "too many header fields";
            return MALFORMED;
        }
        name_start = p;
        while (p != len && buf[p] != ':') {
            if (!is_tchar((unsigned char)buf[p])) {
                *error = buf[p] == ' ' || buf[p] == '\t' ? "whitespace before the colon of a field"
                                                         : "a field name that is not a token";
                return MALFORMED;
            }
            ++p;
        }
        if (p == len)
            return INCOMPLETE;
        if (p == name_start) {
            *error = "an empty field name";
            return MALFORMED;
        }
        fields[n].name = buf + name_start;
        fields[n].name_len = p - name_start;
        ++p;
        while (p != len && (buf[p] == ' ' || buf[p] == '\t'))
            ++p;
        value_start = p;
        for (;;) {
            while (len - p >= 8 && value_word_clean(cr_bytes_load(buf + p))) /* whole words, up to the CR */
                p += 8;
            if (p == len || buf[p] == '\r')
                break;
            if (!is_value_byte((unsigned char)buf[p])) {
                *error = buf[p] == '\n' ? "bare LF line ending" : "a control character in a field value";
                return MALFORMED;
            }
            ++p;
        }
        value_end = p;
        if ((r = expect_crlf(buf, len, &p, error)) != 0)
            return r;
        while (value_end > value_start && (buf[value_end - 1] == ' ' || buf[value_end - 1] == '\t'))
            --value_end;
        fields[n].value = buf + value_start;
        fields[n].value_len = value_end - value_start;
        *num_fields = ++n;
    }
    *pos = p;
    return 0;
}

/* Parses "HTTP/1.<0|1>" at *pos; rejects other versions as soon as a byte differs. */
static int parse_version(const char *buf, size_t len, size_t *pos, int *minor_version, const char **error)
{
    static const char prefix[] = "HTTP/1.";
    size_t i;
    for (i = 0; i != sizeof(prefix) - 1; ++i) {
        if (*pos + i == len)
            return INCOMPLETE;
        if (buf[*pos + i] != prefix[i]) {
            *error = "not HTTP/1.0 or HTTP/1.1";
            return MALFORMED;
        }
    }
    if (*pos + i == len)
        return INCOMPLETE;
    if (buf[*pos + i] != '0' && buf[*pos + i] != '1') {
        *error = "not HTTP/1.0 or HTTP/1.1";
        return MALFORMED;
    }
    *minor_version = buf[*pos + i] - '0';
    *pos += i + 1;
    return 0;
}

/* Content-Length: 1*DIGIT, or a list of identical ones; *value_len is cut to the first member. Sets *cl (or keeps
 * a value seen on an earlier line and checks it is the same). 0 or MALFORMED. */
static int check_content_length(cr_h1_field_t *f, int *seen, uint64_t *cl, const char **error)
{
    size_t i = 0, first_len = 0;
    int member = 0;
    while (i < f->value_len) {
        uint64_t v = 0;
        size_t start = i;
        while (i < f->value_len && f->value[i] >= '0' && f->value[i] <= '9') {
            if (i - start == 18) {
                *error = "Content-Length too large";
                return MALFORMED;
            }
            v = v * 10 + (uint64_t)(f->value[i] - '0');
            ++i;
        }
        if (i == start) {
            *error = "Content-Length is not a number";
            return MALFORMED;
        }
        if (member++ == 0)
            first_len = i;
        if (*seen && v != *cl) {
            *error = "differing Content-Length values";
            return MALFORMED;
        }
        *seen = 1;
        *cl = v;
        while (i < f->value_len && (f->value[i] == ' ' || f->value[i] == '\t'))
            ++i;
        if (i == f->value_len)
            break;
        if (f->value[i] != ',') {
            *error = "Content-Length is not a number";
            return MALFORMED;
        }
        ++i;
        while (i < f->value_len && (f->value[i] == ' ' || f->value[i] == '\t'))
            ++i;
        if (i == f->value_len) {
            *error = "Content-Length is not a number";
            return MALFORMED;
        }
    }
    if (member == 0) {
        *error = "Content-Length is empty";
        return MALFORMED;
    }
    f->value_len = first_len;
    return 0;
}

/* The framing fields of a request: Content-Length, Transfer-Encoding and Host. */
static int check_framing(cr_h1_field_t *fields, size_t n, int minor_version, const char **error)
{
    size_t i, hosts = 0, tes = 0;
    int have_cl = 0;
    uint64_t cl = 0;

    for (i = 0; i != n; ++i) {
        cr_h1_field_t *f = fields + i;
        if (lc_eq(f->name, f->name_len, "content-length")) {
            if (check_content_length(f, &have_cl, &cl, error) != 0)
                return MALFORMED;
        } else if (lc_eq(f->name, f->name_len, "transfer-encoding")) {
            if (++tes > 1) {
                *error = "more than one Transfer-Encoding line";
                return MALFORMED;
            }
            if (!lc_eq(f->value, f->value_len, "chunked")) {
                *error = "a Transfer-Encoding other than chunked";
                return MALFORMED;
            }
        } else if (lc_eq(f->name, f->name_len, "host")) {
            if (++hosts > 1) {
                *error = "more than one Host line";
                return MALFORMED;
            }
            if (f->value_len != 0 && !cr_h1_is_authority(f->value, f->value_len)) {
                *error = "a Host that is not host[:port]";
                return MALFORMED;
            }
        }
    }
    if (have_cl && tes != 0) {
        *error = "both Content-Length and Transfer-Encoding";
        return MALFORMED;
    }
    if (tes != 0 && minor_version == 0) {
        *error = "Transfer-Encoding in an HTTP/1.0 request";
        return MALFORMED;
    }
    if (hosts == 0 && minor_version == 1) {
        *error = "no Host in an HTTP/1.1 request";
        return MALFORMED;
    }
    return 0;
}

static int check_target(const cr_h1_request_t *req, const char **error)
{
    const char *m = req->method;
    size_t mlen = req->method_len;
    if (mlen == 7 && memcmp(m, "OPTIONS", 7) == 0 && req->target_len == 1 && req->target[0] == '*')
        return 0;
    if (mlen == 7 && memcmp(m, "CONNECT", 7) == 0) {
        if (cr_h1_is_authority(req->target, req->target_len))
            return 0;
        *error = "CONNECT without an authority-form target";
        return MALFORMED;
    }
    if (req->target_len != 0 && req->target[0] != '/') {
        *error = req->target[0] == '*' ? "an asterisk-form target on a method other than OPTIONS"
                                       : "a request-target that is not origin-form (absolute-form is not supported)";
        return MALFORMED;
    }
    if (!cr_h1_is_origin_form(req->target, req->target_len)) {
        *error = "a control, SP, DEL, '#', non-ASCII byte or broken %-escape in the request-target";
        return MALFORMED;
    }
    return 0;
}

static int finish(size_t pos, const char **error)
{
    if (pos > INT_MAX) {
        *error = "head too long";
        return MALFORMED;
    }
    return (int)pos;
}

int cr_h1_parse_request(const char *buf, size_t len, cr_h1_request_t *req, cr_h1_field_t *fields, size_t *num_fields,
                        size_t last_len, const char **error)
{
    size_t pos = 0, max = *num_fields, start;
    const char *dummy;
    int r;

    if (error == NULL)
        error = &dummy;
    *error = NULL;
    memset(req, 0, sizeof(*req));
    req->minor_version = -1;
    *num_fields = 0;
    if (last_len != 0 && !may_be_complete(buf, len, last_len))
        return INCOMPLETE;

    /* one empty line before the request line is ignored (RFC 9112 2.2) */
    if (len != 0 && (buf[0] == '\r' || buf[0] == '\n')) {
        if ((r = expect_crlf(buf, len, &pos, error)) != 0)
            return r;
    }
    /* method SP */
    for (start = pos; pos != len && buf[pos] != ' '; ++pos) {
        if (!is_tchar((unsigned char)buf[pos])) {
            *error = "a method that is not a token";
            return MALFORMED;
        }
    }
    if (pos == len)
        return INCOMPLETE;
    if (pos == start) {
        *error = "an empty method";
        return MALFORMED;
    }
    req->method = buf + start;
    req->method_len = pos - start;
    /* request-target SP: only printable bytes; the form is checked once the line is complete */
    for (start = ++pos; pos != len && buf[pos] != ' '; ++pos) {
        unsigned char c;
        /* whole words of 0x21..0x7e (a SP ends the target: its word goes byte by byte) */
        while (len - pos >= 8 && (cr_bytes_below(cr_bytes_load(buf + pos), 0x21) | cr_bytes_above(cr_bytes_load(buf + pos), 0x7e)) == 0)
            pos += 8;
        if (pos == len || buf[pos] == ' ')
            break;
        c = (unsigned char)buf[pos];
        if (c < 0x21 || c >= 0x7f) {
            *error = c == '\r' || c == '\n' ? "a request line without a version" : "a control or non-ASCII byte in the request-target";
            return MALFORMED;
        }
    }
    if (pos == len)
        return INCOMPLETE;
    if (pos == start) {
        *error = "an empty request-target or more than one SP";
        return MALFORMED;
    }
    req->target = buf + start;
    req->target_len = pos - start;
    ++pos;
    if ((r = parse_version(buf, len, &pos, &req->minor_version, error)) != 0 || (r = expect_crlf(buf, len, &pos, error)) != 0)
        return r;
    if (check_target(req, error) != 0)
        return MALFORMED;

    *num_fields = max;
    if ((r = parse_fields(buf, len, &pos, fields, num_fields, error)) != 0)
        return r;
    if (check_framing(fields, *num_fields, req->minor_version, error) != 0)
        return MALFORMED;
    return finish(pos, error);
}

int cr_h1_parse_fields(const char *buf, size_t len, cr_h1_field_t *fields, size_t *num_fields, size_t last_len,
                       const char **error)
{
    size_t pos = 0;
    const char *dummy;
    int r;

    if (error == NULL)
        error = &dummy;
    *error = NULL;
    if (last_len != 0 && !(len != 0 && (buf[0] == '\r' || buf[0] == '\n')) && !may_be_complete(buf, len, last_len)) {
        *num_fields = 0;
        return INCOMPLETE;
    }
    if ((r = parse_fields(buf, len, &pos, fields, num_fields, error)) != 0)
        return r;
    return finish(pos, error);
}
