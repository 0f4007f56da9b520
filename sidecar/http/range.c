/*
 * range.c: byte ranges (RFC 9110 14, see range.h): parsing Range against a body length, If-Range, and the text of a
 * multipart/byteranges body. serve/respond_range.c sends what these decide.
 *
 * Invariants: pure functions; no allocation, no locks, no clock, no global state. Input strings are never read past
 * their length. A range handed out always lies within the body it was parsed against (first <= last < len), and at
 * most `max` (<= CR_RANGE_MAX_PARTS) are handed out; numbers are accumulated with saturation, never wrapping.
 * Choices (RFC 9110 14.2 lets a server ignore Range): more than `max` ranges, or satisfiable ranges whose lengths
 * add up past the body's length (overlaps, or a request for about everything), give CR_RANGE_WHOLE; so does an
 * empty body (no byte range of it can be sent).
 */
#include "corral/http/range.h"

#include "corral/http/policy.h"

#define LIT(s) (s), sizeof(s) - 1

/* Reads digits at *p (at least one) into *v, saturating at UINT64_MAX. Returns 0, or -1 when there is no digit. */
static int read_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;

    while (*p != end && **p >= '0' && **p <= '9') {
        unsigned d = (unsigned)(**p - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
        ++*p;
    }
    *v = x;
    return *p != s ? 0 : -1;
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p != end && cr_is_ows(*p))
        ++p;
    return p;
}

cr_range_verdict_t cr_range_parse(cr_str_t value, uint64_t len, cr_byte_range_t *out, size_t max, size_t *n)
{
    const char *p = value.base, *end = value.base + value.len;
    size_t specs = 0, got = 0;
    uint64_t total = 0;

    assert(max >= 1 && max <= CR_RANGE_MAX_PARTS);
    *n = 0;
    if (value.base == NULL)
        return CR_RANGE_WHOLE;
    p = skip_ows(p, end);
    if (end - p < 6 || !cr_str_ieq(cr_str(p, 5), LIT("bytes")) || p[5] != '=')
        return CR_RANGE_WHOLE;
    p += 6;
    for (;;) {
        uint64_t first = 0, last = 0;
        int suffix = 0, open = 0;

        p = skip_ows(p, end);
        if (p == end)
            break;
        if (*p == ',') { /* an empty list member (RFC 9110 5.6.1) */
            ++p;
            continue;
        }
        if (++specs > max)
            return CR_RANGE_WHOLE;
        if (*p == '-') {
            ++p;
            suffix = 1;
            if (read_u64(&p, end, &last) != 0)
                return CR_RANGE_WHOLE;
        } else {
            if (read_u64(&p, end, &first) != 0 || p == end || *p != '-')
                return CR_RANGE_WHOLE;
            ++p;
            if (p != end && *p >= '0' && *p <= '9') {
                read_u64(&p, end, &last);
                if (last < first)
                    return CR_RANGE_WHOLE; /* an invalid range-spec makes the whole field invalid */
            } else {
                open = 1;
            }
        }
        p = skip_ows(p, end);
        if (p != end && *p != ',')
            return CR_RANGE_WHOLE;
        /* resolve against the body; unsatisfiable specs are dropped (14.1.1) */
        if (suffix) {
            if (last == 0 || len == 0)
                continue; /* a zero-length suffix is not satisfiable */
            first = last >= len ? 0 : len - last;
            last = len - 1;
        } else {
            if (first >= len)
                continue;
            if (open || last >= len)
                last = len - 1;
        }
        total += last - first + 1; /* each at most len, and at most max of them: cannot wrap */
        if (total > len)
            return CR_RANGE_WHOLE;
        out[got].first = first;
        out[got].last = last;
        ++got;
    }
    if (specs == 0 || len == 0)
        return CR_RANGE_WHOLE;
    if (got == 0)
        return CR_RANGE_UNSATISFIABLE;
    *n = got;
    return CR_RANGE_PARTIAL;
}

int cr_if_range_holds(cr_str_t cond, cr_str_t etag, cr_str_t last_modified, uint64_t date_ms)
{
    uint64_t cond_ms, lm_ms;

    cond = cr_str_trim_ows(cond);
    if (cond.len == 0)
        return 0;
    if (cond.base[0] == '"' || (cond.len >= 2 && cond.base[0] == 'W' && cond.base[1] == '/')) {
        /* strong comparison (RFC 9110 8.8.3.2): neither is weak, and they are the same octets */
        if (etag.base == NULL)
            return 0;
        etag = cr_str_trim_ows(etag);
        return cond.base[0] == '"' && cond.len >= 2 && cond.base[cond.len - 1] == '"' && etag.len == cond.len &&
               memcmp(etag.base, cond.base, cond.len) == 0;
    }
    if (last_modified.base == NULL || date_ms == 0)
        return 0;
    if (cr_http_date_parse(cond, &cond_ms) != 0 || cr_http_date_parse(last_modified, &lm_ms) != 0)
        return 0;
    /* 8.8.2.2: a Last-Modified is strong when the response's Date is at least one second after it */
    return date_ms >= lm_ms && date_ms - lm_ms >= 1000 && cond_ms == lm_ms;
}

void cr_range_boundary(char *buf, uint64_t seed)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t x = seed;
    size_t i;

    for (i = 0; i != CR_RANGE_BOUNDARY_LEN; ++i) {
        if (i % 8 == 0) { /* splitmix64: every 8 letters from a fresh, well-mixed word */
            uint64_t z = (x += UINT64_C(0x9e3779b97f4a7c15));
            z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
            seed = z ^ (z >> 31);
        }
        buf[i] = alphabet[seed % 36];
        seed /= 36;
    }
}

/* A position or length in decimal (bodies are in memory: below 2^63; larger ones would print as 2^63 - 1). */
static size_t put_u64(char *buf, uint64_t v)
{
    return cr_i64toa(v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v, buf);
}

static size_t put(char *buf, const char *s, size_t len)
{
    memcpy(buf, s, len);
    return len;
}

size_t cr_range_content_range(char *buf, const cr_byte_range_t *r, uint64_t len)
{
    size_t n = put(buf, LIT("bytes "));
    if (r == NULL) {
        buf[n++] = '*';
    } else {
        n += put_u64(buf + n, r->first);
        buf[n++] = '-';
        n += put_u64(buf + n, r->last);
    }
    buf[n++] = '/';
    return n + put_u64(buf + n, len);
}

size_t cr_range_part_head(char *buf, cr_str_t boundary, cr_str_t ctype, const cr_byte_range_t *r, uint64_t len)
{
    size_t n = put(buf, LIT("\r\n--"));
    n += put(buf + n, boundary.base, boundary.len);
    n += put(buf + n, LIT("\r\n"));
    if (ctype.len != 0) {
        n += put(buf + n, LIT("Content-Type: "));
        n += put(buf + n, ctype.base, ctype.len);
        n += put(buf + n, LIT("\r\n"));
    }
    n += put(buf + n, LIT("Content-Range: "));
    n += cr_range_content_range(buf + n, r, len);
    return n + put(buf + n, LIT("\r\n\r\n"));
}

size_t cr_range_multipart_tail(char *buf, cr_str_t boundary)
{
    size_t n = put(buf, LIT("\r\n--"));
    n += put(buf + n, boundary.base, boundary.len);
    return n + put(buf + n, LIT("--\r\n"));
}
