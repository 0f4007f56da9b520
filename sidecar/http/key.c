/*
 * key.c: cache-key normalization.
 *
 * Key layout: "<authority, normalized (key_authority)>\n<normalized path>[?<normalized query>]" followed, for each of the route's
 * key headers in config order, by "\n<name>:<value>" (value trimmed of SP/HTAB; an absent header gives an empty
 * value; the lookup gives every line of a repeated header, joined), then, on a `cookies: [names]` route, by
 * "\ncookies:<the listed crumbs in request order, joined with "; ">". There is no trailing newline.
 * - Path: "%XX" escapes of unreserved bytes (RFC 3986 2.3: ALPHA DIGIT - . _ ~) are decoded (but not a hex digit
 *   that would join a kept invalid escape into a new one: "%%66" stays), the hex digits of the remaining escapes are
 *   upper-cased, then dot-segments are removed (RFC 3986 5.2.4; "%2E" counts as '.', since
 *   decoding comes first). Nothing else is collapsed: "//" stays, invalid escapes such as "%zz" are kept verbatim.
 * - Query: split on '&', empty members dropped, each member normalized like a path segment (unreserved escapes
 *   decoded, other hex upper-cased), filtered by the route's key.query rule (a member's name is the bytes before its
 *   first '=', compared with the listed names after full percent-decoding: "pa%67e" is "page"), stable-sorted by the
 *   normalized bytes of the member's name (members of one name keep the order they came in: "a=2&a=1" stays so),
 *   joined with '&'; the '?' is omitted when nothing is left.
 *   The "path?query" part of the key is exactly what a fill asks the upstream for (flight.c), so a parameter the
 *   key ignores is never sent on a fill.
 * - Match form: what routes are matched on, is not a key: core/urlpath.c (cr_urlpath_match_form).
 *
 * Invariants: pure functions; no allocation, no locks, no global state. Output goes to the caller's buffer only.
 * Because '\n' separates the parts, any control byte in the authority, path, query or a header value makes the
 * request "malformed" (-1) so one key can never be forged to look like another.
 * Caution for callers: the key treats "/a/../b" and "/a/%2E%2E/b" as "/b". What is fetched from the upstream must
 * be what the key says (forward the normalized path), or an odd-looking request could fill the entry of a clean one.
 */
#include "corral/http/key.h"

#include <limits.h>

#include "corral/core/outbuf.h"

/* More kept query members than this and the request gets no key (it is passed through uncached). */
#define CR_KEY_MAX_QUERY_MEMBERS 256

typedef struct st_cr_key_span_t {
    const char *base;
    size_t len;
    size_t name_len; /* the bytes before the first '=' (all of them when there is none) */
} cr_key_span_t;

/*
 * May the escape of `d` be decoded here? Not when d is a hex digit and the output (since `floor`) ends in a '%' or a
 * '%' and one hex digit, which only an invalid escape kept verbatim leaves: decoding would make a new escape that was
 * not in the request ("%%66e" would become "%fe", then "%FE"), so the key would not be its own key and a fill would
 * ask for another resource. Such an escape is kept (hex upper-cased) instead.
 */
static int may_decode(unsigned char d, const char *out, size_t len, size_t floor)
{
    if (!cr_uri_is_unreserved(d))
        return 0;
    if (cr_hex_value((char)d) < 0)
        return 1;
    return !((len > floor && out[len - 1] == '%') || (len >= floor + 2 && out[len - 2] == '%' && cr_hex_value(out[len - 1]) >= 0));
}

/*
 * Appends the normalized form of path[0..len) (no query). The output is the stack of segments written so far; a
 * segment is written, then dropped if it turns out to be "." or "..". Fails (-1) when the path does not start with
 * '/', contains a control byte or a space, or does not fit.
 */
static int key_path(cr_outbuf_t *o, const char *path, size_t len)
{
    size_t i = 0, start = o->len;

    if (len == 0 || path[0] != '/')
        return -1;
    while (i < len) {
        size_t seg = o->len, seglen;
        ++i; /* the '/' */
        if (cr_outbuf_byte(o, '/') != 0)
            return -1;
        while (i < len && path[i] != '/') {
            unsigned char c = (unsigned char)path[i];
            int hi, lo;
            if (cr_uri_is_ctl(c) || c == ' ')
                return -1;
            if (c == '%' && i + 2 < len && (hi = cr_hex_value(path[i + 1])) >= 0 && (lo = cr_hex_value(path[i + 2])) >= 0) {
                unsigned char d = (unsigned char)(hi * 16 + lo);
                if (may_decode(d, o->buf, o->len, seg)) {
                    if (cr_outbuf_byte(o, (char)d) != 0)
                        return -1;
                } else if (cr_outbuf_byte(o, '%') != 0 || cr_outbuf_byte(o, cr_ascii_upper(path[i + 1])) != 0 ||
                           cr_outbuf_byte(o, cr_ascii_upper(path[i + 2])) != 0) {
                    return -1;
                }
                i += 3;
            } else {
                if (cr_outbuf_byte(o, (char)c) != 0)
                    return -1;
                ++i;
            }
        }
        seglen = o->len - seg - 1;
        if (seglen == 1 && o->buf[seg + 1] == '.') {
            o->len = seg;
        } else if (seglen == 2 && o->buf[seg + 1] == '.' && o->buf[seg + 2] == '.') {
            /* drop this segment and the one before it (never above the root) */
            o->len = seg;
            while (o->len > start && o->buf[o->len - 1] != '/')
                --o->len;
            if (o->len > start)
                --o->len;
        } else {
            continue;
        }
        /* a trailing "." or ".." leaves a directory: "/a/b/.." is "/a/" */
        if (i >= len && cr_outbuf_byte(o, '/') != 0)
            return -1;
    }
    return 0;
}

/* Orders query members by name only (the bytes before the first '='): members of one name keep the order they were
 * sent in, since an API may read `?sort=a&sort=b` differently from `?sort=b&sort=a`. */
static size_t name_len(const char *member, size_t len)
{
    const char *eq = memchr(member, '=', len);
    return eq != NULL ? (size_t)(eq - member) : len;
}

static int span_less(const cr_key_span_t *a, const cr_key_span_t *b)
{
    size_t alen = a->name_len, blen = b->name_len;
    int c = memcmp(a->base, b->base, CR_MIN(alen, blen));
    return c < 0 || (c == 0 && alen < blen);
}

/*
 * Appends the normalized form of one query member (the same rule as a path segment: unreserved escapes decoded, the
 * hex of the others upper-cased, invalid escapes kept). Fails (-1) when it does not fit.
 */
static int out_normalized(cr_outbuf_t *o, const char *s, size_t len)
{
    size_t i = 0, floor = o->len;
    while (i < len) {
        int hi, lo;
        const char *pct = memchr(s + i, '%', len - i);
        size_t run = pct != NULL ? (size_t)(pct - (s + i)) : len - i;
        if (run != 0) { /* the bytes up to the next escape are kept as they are */
            if (cr_outbuf_bytes(o, s + i, run) != 0)
                return -1;
            i += run;
            continue;
        }
        if (s[i] == '%' && i + 2 < len && (hi = cr_hex_value(s[i + 1])) >= 0 && (lo = cr_hex_value(s[i + 2])) >= 0) {
            unsigned char d = (unsigned char)(hi * 16 + lo);
            if (may_decode(d, o->buf, o->len, floor) ? cr_outbuf_byte(o, (char)d) != 0
                                 : cr_outbuf_byte(o, '%') != 0 || cr_outbuf_byte(o, cr_ascii_upper(s[i + 1])) != 0 || cr_outbuf_byte(o, cr_ascii_upper(s[i + 2])) != 0)
                return -1;
            i += 3;
        } else {
            if (cr_outbuf_byte(o, s[i]) != 0)
                return -1;
            ++i;
        }
    }
    return 0;
}

/* Is the (normalized) member's name, fully percent-decoded, one of the route's key.query names? The upstream decodes
 * names before it reads them, so "pa%67e" and "page" are one name. */
static int query_name_listed(const cr_route_config_t *route, const char *member, size_t len)
{
    const char *eq = memchr(member, '=', len);
    size_t namelen = eq != NULL ? (size_t)(eq - member) : len, i, j, k;
    for (i = 0; i != route->num_key_query_names; ++i) {
        const char *n = route->key_query_names[i];
        for (j = 0, k = 0; j != namelen && n[k] != '\0'; ++k) {
            int hi, lo;
            unsigned char c = (unsigned char)member[j];
            if (c == '%' && j + 2 < namelen && (hi = cr_hex_value(member[j + 1])) >= 0 && (lo = cr_hex_value(member[j + 2])) >= 0) {
                c = (unsigned char)(hi * 16 + lo);
                j += 3;
            } else {
                ++j;
            }
            if (c != (unsigned char)n[k])
                break;
        }
        if (j == namelen && n[k] == '\0')
            return 1;
    }
    return 0;
}

/* Bytes of normalized kept members a query may have (the key holds them all, so this is no real limit). */
#define CR_KEY_MAX_QUERY_BYTES 8192

/*
 * Appends "?<members>" (or nothing): each member normalized, kept when the route's rule keeps its (decoded) name,
 * then stable-sorted by its normalized name (same-name members keep their order). This is also the query a fill sends (what the key ignores, a fill never
 * sends). Fails on a control byte, more than CR_KEY_MAX_QUERY_MEMBERS members, or overflow.
 */
static int key_query(cr_outbuf_t *o, const cr_route_config_t *route, const char *q, size_t len)
{
    cr_key_span_t spans[CR_KEY_MAX_QUERY_MEMBERS];
    char scratch[CR_KEY_MAX_QUERY_BYTES];
    cr_outbuf_t so;
    size_t n = 0, i, j;
    const char *end = q + len, *p = q;

    if (cr_uri_has_ctl_or_space(q, len))
        return -1;
    if (route != NULL && route->key_query == CR_KEY_QUERY_NONE)
        return 0;
    so.buf = scratch;
    so.cap = sizeof(scratch);
    so.len = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t mlen = (size_t)((amp != NULL ? amp : end) - p), start = so.len;
        if (mlen != 0) {
            if (out_normalized(&so, p, mlen) != 0)
                return -1;
            if (route == NULL || route->key_query != CR_KEY_QUERY_LIST ||
                query_name_listed(route, scratch + start, so.len - start)) {
                cr_key_span_t s = {scratch + start, so.len - start, name_len(scratch + start, so.len - start)};
                if (n == CR_KEY_MAX_QUERY_MEMBERS)
                    return -1;
                /* insertion sort; equal members keep their order (stable) */
                for (j = n; j != 0 && span_less(&s, &spans[j - 1]); --j)
                    spans[j] = spans[j - 1];
                spans[j] = s;
                ++n;
            } else {
                so.len = start; /* not kept: dropped from the key and from fills */
            }
        }
        p += mlen + 1;
    }
    for (i = 0; i != n; ++i)
        if (cr_outbuf_byte(o, i == 0 ? '?' : '&') != 0 || cr_outbuf_bytes(o, spans[i].base, spans[i].len) != 0)
            return -1;
    return 0;
}

static cr_str_t trim_ows(cr_str_t v)
{
    while (v.len != 0 && (v.base[0] == ' ' || v.base[0] == '\t'))
        ++v.base, --v.len;
    while (v.len != 0 && (v.base[v.len - 1] == ' ' || v.base[v.len - 1] == '\t'))
        --v.len;
    return v;
}

size_t cr_key_cookie_filter(const cr_route_config_t *route, cr_str_t cookie, char *buf, size_t cap)
{
    const char *p = cookie.base, *end = p;
    size_t len = 0, i;

    if (cookie.len != 0) /* an absent Cookie is {NULL, 0}, and NULL + 0 is undefined in C */
        end += cookie.len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        cr_str_t crumb = trim_ows(cr_str(p, (size_t)((semi != NULL ? semi : end) - p)));
        const char *eq = crumb.len != 0 ? memchr(crumb.base, '=', crumb.len) : NULL;
        cr_str_t name = trim_ows(cr_str(crumb.base, eq != NULL ? (size_t)(eq - crumb.base) : crumb.len));
        p += (semi != NULL ? (size_t)(semi - p) : (size_t)(end - p)) + 1;
        for (i = 0; i != route->num_cookie_names; ++i)
            if (strlen(route->cookie_names[i]) == name.len && memcmp(route->cookie_names[i], name.base, name.len) == 0)
                break;
        if (crumb.len == 0 || i == route->num_cookie_names)
            continue;
        if (len + (len != 0 ? 2 : 0) + crumb.len > cap)
            return SIZE_MAX;
        if (len != 0) {
            memcpy(buf + len, "; ", 2);
            len += 2;
        }
        memcpy(buf + len, crumb.base, crumb.len);
        len += crumb.len;
    }
    return len;
}

/* Appends the authority's normal form: lower-cased; the port dropped when empty or default_port (its digits compared
 * as a number, so ":080" is 80); the host's trailing dots dropped ("api.ns." is "api.ns"). Both rules are applied
 * until nothing changes, so the form is a fixed point ("a.:80" and "a:80." are "a"; a second pass changes nothing).
 * An IPv6 literal ("[::1]:8080") keeps its brackets. Fails (-1) on a control byte or a space, or when it does not
 * fit. */
static int key_authority(cr_outbuf_t *o, cr_str_t authority, uint16_t default_port)
{
    size_t i, end = authority.len, portlen = 0;
    const char *port = NULL;
    int changed;

    if (cr_uri_has_ctl_or_space(authority.base, authority.len))
        return -1;
    do {
        changed = 0;
        while (end != 0 && authority.base[end - 1] == '.')
            --end, changed = 1;
        if (port != NULL)
            continue; /* a port that stays: only the host's dots are left to drop */
        /* the port: the digits after the last ':', when only digits follow it (so not inside an IPv6 literal) */
        for (i = end; i != 0 && authority.base[i - 1] >= '0' && authority.base[i - 1] <= '9'; --i)
            ;
        if (i != 0 && authority.base[i - 1] == ':') {
            unsigned long n = 0;
            size_t j;
            for (j = i; j != end && n <= 65535; ++j)
                n = n * 10 + (unsigned long)(authority.base[j] - '0');
            if (i != end && n != default_port) {
                port = authority.base + i;
                portlen = end - i;
            }
            end = i - 1;
            changed = 1;
        }
    } while (changed);
    if (end > o->cap - o->len)
        return -1;
    for (i = 0; i != end; ++i) {
        char c = authority.base[i];
        o->buf[o->len + i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    o->len += end;
    if (port != NULL && (cr_outbuf_byte(o, ':') != 0 || cr_outbuf_bytes(o, port, portlen) != 0))
        return -1;
    return 0;
}

/* Returns the key length, or -1 (malformed path, control bytes, too many query members, does not fit). */
int cr_key_build(const cr_route_config_t *route, cr_str_t authority, uint16_t default_port, cr_str_t path_and_query,
                 cr_header_lookup_fn lookup, void *lookup_ctx, char *buf, size_t bufsize)
{
    cr_outbuf_t o;
    const char *qmark;
    size_t i, pathlen;

    if (cr_outbuf_init(&o, buf, bufsize) != 0)
        return -1;
    if (route != NULL && route->key_ignore_host) {
        if (cr_uri_has_ctl_or_space(authority.base, authority.len)) /* still refused when it could not be a header value */
            return -1;
    } else if (key_authority(&o, authority, default_port) != 0) {
        return -1;
    }
    if (cr_outbuf_byte(&o, '\n') != 0)
        return -1;

    qmark = path_and_query.len != 0 ? memchr(path_and_query.base, '?', path_and_query.len) : NULL;
    pathlen = qmark != NULL ? (size_t)(qmark - path_and_query.base) : path_and_query.len;
    if (key_path(&o, path_and_query.base, pathlen) != 0)
        return -1;
    if (qmark != NULL && key_query(&o, route, qmark + 1, path_and_query.len - pathlen - 1) != 0)
        return -1;

    for (i = 0; route != NULL && i != route->num_key_headers; ++i) {
        const char *name = route->key_headers[i];
        size_t namelen = strlen(name), j;
        cr_str_t v = {NULL, 0};
        if (lookup == NULL || !lookup(lookup_ctx, name, namelen, &v))
            v = cr_str(NULL, 0);
        while (v.len != 0 && (v.base[0] == ' ' || v.base[0] == '\t')) {
            ++v.base;
            --v.len;
        }
        while (v.len != 0 && (v.base[v.len - 1] == ' ' || v.base[v.len - 1] == '\t'))
            --v.len;
        for (j = 0; j != v.len; ++j)
            if (cr_uri_is_ctl((unsigned char)v.base[j]) && v.base[j] != '\t')
                return -1;
        if (cr_outbuf_byte(&o, '\n') != 0 || cr_outbuf_bytes(&o, name, namelen) != 0 || cr_outbuf_byte(&o, ':') != 0 ||
            cr_outbuf_bytes(&o, v.base, v.len) != 0)
            return -1;
    }
    if (route != NULL && route->cookies == CR_COOKIES_LIST) {
        /* the listed cookies, in the order the request gives them: what a fill forwards */
        cr_str_t v = {NULL, 0};
        size_t n;
        if (lookup == NULL || !lookup(lookup_ctx, "cookie", 6, &v))
            v = cr_str(NULL, 0);
        for (i = 0; i != v.len; ++i)
            if (cr_uri_is_ctl((unsigned char)v.base[i]) && v.base[i] != '\t')
                return -1;
        if (cr_outbuf_bytes(&o, "\ncookies:", 9) != 0 ||
            (n = cr_key_cookie_filter(route, v, o.buf + o.len, o.cap - o.len)) == SIZE_MAX)
            return -1;
        o.len += n;
    }
    return cr_outbuf_finish(&o);
}

/* Normalizes the path up to the first '?' (anything after it is ignored). Returns the length or -1 as above. */
int cr_key_normalize_path(cr_str_t path, char *buf, size_t bufsize)
{
    cr_outbuf_t o;
    const char *qmark = path.len != 0 ? memchr(path.base, '?', path.len) : NULL;

    if (cr_outbuf_init(&o, buf, bufsize) != 0)
        return -1;
    if (key_path(&o, path.base, qmark != NULL ? (size_t)(qmark - path.base) : path.len) != 0)
        return -1;
    return cr_outbuf_finish(&o);
}

int cr_key_normalize_uri_path(cr_str_t uri, char *buf, size_t bufsize)
{
    size_t plen = 0;
    while (plen != uri.len && uri.base[plen] != '?')
        ++plen;
    return cr_key_normalize_path(cr_str(uri.base, plen), buf, bufsize);
}
