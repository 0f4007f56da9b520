/*
 * invalidate.c: write-through template expansion, same-authority checks for Location / Content-Location, surrogate-key
 * splitting and key slicing (see invalidate.h for the contracts).
 *
 * Template expansion works on normalized paths only: the written path and each entry's body (the entry without its
 * trailing '*') are normalized with cr_key_normalize_path first, then walked segment by segment in lockstep (segment
 * i of the template against segment i of the written path), then the substituted result is normalized once more into
 * the caller's buffer. Because both inputs passed normalization, the result can contain no control byte, space or
 * dot-segment introduced by a binding; the last normalization only keeps the promise that what comes out is exactly
 * what cr_key_build would produce for that path.
 *
 * Invariants: pure functions; no allocation, no locks, no global state. Scratch space is on the stack, bounded by
 * CR_INVALIDATE_MAX_PATH (three buffers of it per cr_invalidate_expand call).
 */
#include "corral/http/invalidate.h"

#include "corral/http/key.h"

/* Most placeholders one template may hold; a template with more is skipped. */
#define CR_INVALIDATE_MAX_BINDINGS 16

typedef struct st_cr_inv_binding_t {
    cr_str_t name;
    cr_str_t value;
} cr_inv_binding_t;

/* Segment iterator over a path that starts with '/': *pos is at a '/' or at len. Returns 0 when exhausted. */
static int next_segment(cr_str_t path, size_t *pos, cr_str_t *seg)
{
    const char *slash;
    size_t start;

    if (*pos >= path.len)
        return 0;
    assert(path.base[*pos] == '/');
    start = *pos + 1;
    slash = start < path.len ? memchr(path.base + start, '/', path.len - start) : NULL;
    *pos = slash != NULL ? (size_t)(slash - path.base) : path.len;
    *seg = cr_str(path.base + start, *pos - start);
    return 1;
}

static int str_equal(cr_str_t a, cr_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* A template segment split around its placeholder. Returns 1 with the parts, 0 when the segment has no placeholder,
 * -1 when it has more than one or a malformed one. */
static int parse_placeholder(cr_str_t seg, cr_str_t *pre, cr_str_t *name, cr_str_t *post)
{
    const char *open = seg.len != 0 ? memchr(seg.base, '{', seg.len) : NULL, *close, *end = seg.base + seg.len;

    if (open == NULL)
        return seg.len != 0 && memchr(seg.base, '}', seg.len) != NULL ? -1 : 0;
    if ((close = memchr(open, '}', (size_t)(end - open))) == NULL || close == open + 1)
        return -1;
    if (memchr(seg.base, '}', (size_t)(open - seg.base)) != NULL || memchr(close + 1, '{', (size_t)(end - close - 1)) != NULL ||
        memchr(close + 1, '}', (size_t)(end - close - 1)) != NULL)
        return -1;
    *pre = cr_str(seg.base, (size_t)(open - seg.base));
    *name = cr_str(open + 1, (size_t)(close - open - 1));
    *post = cr_str(close + 1, (size_t)(end - close - 1));
    return 1;
}

static int append(char *dst, size_t cap, size_t *len, cr_str_t s)
{
    if (s.len > cap - *len)
        return -1;
    if (s.len != 0)
        memcpy(dst + *len, s.base, s.len);
    *len += s.len;
    return 0;
}

/* 1 when the prefix body's last (partial) segment is a dot-segment, which normalization would drop. */
static int ends_in_dot_segment(cr_str_t body)
{
    char tmp[16], norm[16];
    size_t start = body.len;
    int len;

    while (start != 0 && body.base[start - 1] != '/')
        --start;
    if (start == body.len || body.len - start > 6) /* "%2E%2E" is the longest spelling */
        return 0;
    tmp[0] = '/';
    memcpy(tmp + 1, body.base + start, body.len - start);
    len = cr_key_normalize_path(cr_str(tmp, body.len - start + 1), norm, sizeof(norm));
    return len == 1;
}

/*
 * Substitutes one normalized template `tpl` against the normalized written path `w` into obuf. Returns the length,
 * 0 when the template does not apply (skipped), or -1 when the result exceeds the scratch buffer.
 */
static int expand_one(cr_str_t tpl, cr_str_t w, char *obuf, size_t obufsize)
{
    cr_inv_binding_t binds[CR_INVALIDATE_MAX_BINDINGS];
    size_t nbinds = 0, last = SIZE_MAX, i, tpos = 0, wpos = 0, olen = 0, b;
    cr_str_t tseg, wseg = {NULL, 0}, pre, name, post;
    int have_w = 1, r;

    /* index of the last placeholder segment */
    for (i = 0; next_segment(tpl, &tpos, &tseg); ++i) {
        if ((r = parse_placeholder(tseg, &pre, &name, &post)) < 0)
            return 0;
        if (r == 1)
            last = i;
    }
    tpos = 0;
    for (i = 0; next_segment(tpl, &tpos, &tseg); ++i) {
        if (have_w)
            have_w = next_segment(w, &wpos, &wseg);
        if (parse_placeholder(tseg, &pre, &name, &post) == 1) {
            cr_str_t value;
            if (!have_w || wseg.len <= pre.len + post.len || memcmp(wseg.base, pre.base, pre.len) != 0 ||
                memcmp(wseg.base + wseg.len - post.len, post.base, post.len) != 0)
                return 0;
            value = cr_str(wseg.base + pre.len, wseg.len - pre.len - post.len);
            for (b = 0; b != nbinds && !str_equal(binds[b].name, name); ++b)
                ;
            if (b != nbinds) {
                if (!str_equal(binds[b].value, value))
                    return 0;
            } else {
                if (nbinds == CR_INVALIDATE_MAX_BINDINGS)
                    return 0;
                binds[nbinds].name = name;
                binds[nbinds++].value = value;
            }
            if (append(obuf, obufsize, &olen, CR_STR("/")) != 0 || append(obuf, obufsize, &olen, pre) != 0 ||
                append(obuf, obufsize, &olen, value) != 0 || append(obuf, obufsize, &olen, post) != 0)
                return -1;
        } else {
            /* a literal: before the last placeholder it must match the written path */
            if (last != SIZE_MAX && i < last && (!have_w || !str_equal(tseg, wseg)))
                return 0;
            if (append(obuf, obufsize, &olen, CR_STR("/")) != 0 || append(obuf, obufsize, &olen, tseg) != 0)
                return -1;
        }
    }
    return (int)olen;
}

int cr_invalidate_expand(const char *const *entries, size_t n, cr_str_t written_path, cr_invalidation_t *out, size_t max, char *buf,
                         size_t bufsize)
{
    char wbuf[CR_INVALIDATE_MAX_PATH + 1], tbuf[CR_INVALIDATE_MAX_PATH + 1], obuf[CR_INVALIDATE_MAX_PATH];
    size_t count = 0, used = 0, e, k;
    int wlen;

    assert(entries != NULL || n == 0);
    if ((wlen = cr_key_normalize_path(written_path, wbuf, sizeof(wbuf))) < 0)
        return -1;
    for (e = 0; e != n; ++e) {
        const char *entry = entries[e];
        size_t elen = strlen(entry);
        int is_prefix = elen != 0 && entry[elen - 1] == '*', tlen, olen, plen;
        cr_str_t body = cr_str(entry, is_prefix ? elen - 1 : elen);

        if (body.len == 0 || body.base[0] != '/' || memchr(body.base, '*', body.len) != NULL ||
            memchr(body.base, '?', body.len) != NULL || (is_prefix && ends_in_dot_segment(body)))
            continue;
        if (body.len > CR_INVALIDATE_MAX_PATH)
            return -1;
        if ((tlen = cr_key_normalize_path(body, tbuf, sizeof(tbuf))) < 0)
            continue; /* control bytes or spaces: not a path */
        if ((olen = expand_one(cr_str(tbuf, (size_t)tlen), cr_str(wbuf, (size_t)wlen), obuf, sizeof(obuf))) < 0)
            return -1;
        if (olen == 0)
            continue;
        if (count == max || used >= bufsize ||
            (plen = cr_key_normalize_path(cr_str(obuf, (size_t)olen), buf + used, bufsize - used)) < 0)
            return -1;
        for (k = 0; k != count; ++k)
            if (out[k].is_prefix == is_prefix && str_equal(out[k].path, cr_str(buf + used, (size_t)plen)))
                break;
        if (k != count)
            continue; /* a duplicate: its bytes in buf are overwritten by the next result */
        out[count].path = cr_str(buf + used, (size_t)plen);
        out[count++].is_prefix = is_prefix;
        used += (size_t)plen + 1;
    }
    return (int)count;
}

/* ---- Location / Content-Location ---- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int ieq(cr_str_t a, cr_str_t b)
{
    size_t i;
    if (a.len != b.len)
        return 0;
    for (i = 0; i != a.len; ++i)
        if (lower(a.base[i]) != lower(b.base[i]))
            return 0;
    return 1;
}

/* Splits "host[:port]" (host may be "[v6]") and resolves the port, `dflt` when absent or empty. Returns 0, or -1 when
 * the authority is empty, holds userinfo, or has a bad port. */
static int split_authority(cr_str_t a, unsigned dflt, cr_str_t *host, unsigned *port)
{
    size_t hostlen, i;
    unsigned p = 0;

    if (a.len == 0 || memchr(a.base, '@', a.len) != NULL)
        return -1;
    if (a.base[0] == '[') {
        const char *close = memchr(a.base, ']', a.len);
        if (close == NULL)
            return -1;
        hostlen = (size_t)(close - a.base) + 1;
    } else {
        const char *colon = memchr(a.base, ':', a.len);
        hostlen = colon != NULL ? (size_t)(colon - a.base) : a.len;
    }
    if (hostlen == 0)
        return -1;
    *host = cr_str(a.base, hostlen);
    if (hostlen == a.len || (hostlen + 1 == a.len && a.base[hostlen] == ':')) {
        *port = dflt;
        return 0;
    }
    if (a.base[hostlen] != ':')
        return -1;
    for (i = hostlen + 1; i != a.len; ++i) {
        if (a.base[i] < '0' || a.base[i] > '9')
            return -1;
        p = p * 10 + (unsigned)(a.base[i] - '0');
        if (p > 65535)
            return -1;
    }
    *port = p;
    return 0;
}

static int same_authority(cr_str_t loc, cr_str_t req, unsigned dflt)
{
    cr_str_t lh, rh;
    unsigned lp, rp;
    return split_authority(loc, dflt, &lh, &lp) == 0 && split_authority(req, dflt, &rh, &rp) == 0 && lp == rp && ieq(lh, rh);
}

static int emit(char *buf, size_t bufsize, cr_str_t a, cr_str_t b, cr_str_t *path_out)
{
    if (bufsize == 0 || a.len >= bufsize || b.len >= bufsize - a.len)
        return 0;
    if (a.len != 0)
        memcpy(buf, a.base, a.len);
    if (b.len != 0)
        memcpy(buf + a.len, b.base, b.len);
    buf[a.len + b.len] = '\0';
    *path_out = cr_str(buf, a.len + b.len);
    return 1;
}

int cr_same_authority_path(cr_str_t location, cr_str_t request_authority, cr_str_t request_path, char *buf, size_t bufsize,
                           cr_str_t *path_out)
{
    cr_str_t ref = location, rest;
    unsigned dflt = 80;
    size_t i;
    const char *hash;

    assert(path_out != NULL);
    while (ref.len != 0 && (ref.base[0] == ' ' || ref.base[0] == '\t'))
        ++ref.base, --ref.len;
    while (ref.len != 0 && (ref.base[ref.len - 1] == ' ' || ref.base[ref.len - 1] == '\t'))
        --ref.len;
    if (ref.len != 0 && (hash = memchr(ref.base, '#', ref.len)) != NULL)
        ref.len = (size_t)(hash - ref.base);
    if (ref.len == 0)
        return 0;
    for (i = 0; i != ref.len; ++i)
        if ((unsigned char)ref.base[i] <= 0x20 || (unsigned char)ref.base[i] == 0x7f)
            return 0;

    /* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" before any '/', '?' */
    if (is_alpha(ref.base[0])) {
        for (i = 1; i != ref.len && (is_alpha(ref.base[i]) || (ref.base[i] >= '0' && ref.base[i] <= '9') || ref.base[i] == '+' ||
                                     ref.base[i] == '-' || ref.base[i] == '.');
             ++i)
            ;
        if (i != ref.len && ref.base[i] == ':') {
            cr_str_t scheme = cr_str(ref.base, i);
            if (ieq(scheme, CR_STR("http")))
                dflt = 80;
            else if (ieq(scheme, CR_STR("https")))
                dflt = 443;
            else
                return 0;
            ref.base += i + 1;
            ref.len -= i + 1;
            if (ref.len < 2 || ref.base[0] != '/' || ref.base[1] != '/')
                return 0; /* "http:path": no authority, not something a server sends */
        }
    }

    if (ref.len >= 2 && ref.base[0] == '/' && ref.base[1] == '/') {
        /* authority, then path-abempty [ "?" query ] */
        size_t end = 2;
        while (end != ref.len && ref.base[end] != '/' && ref.base[end] != '?')
            ++end;
        if (!same_authority(cr_str(ref.base + 2, end - 2), request_authority, dflt))
            return 0;
        rest = cr_str(ref.base + end, ref.len - end);
        if (rest.len == 0 || rest.base[0] == '?')
            return emit(buf, bufsize, CR_STR("/"), rest, path_out);
        return emit(buf, bufsize, rest, cr_str(NULL, 0), path_out);
    }
    if (ref.base[0] == '/')
        return emit(buf, bufsize, ref, cr_str(NULL, 0), path_out);

    /* a relative-path reference (or a query alone): merge with the request's path (RFC 3986 5.2.2, 5.2.3) */
    {
        const char *q = request_path.len != 0 ? memchr(request_path.base, '?', request_path.len) : NULL;
        cr_str_t base = cr_str(request_path.base, q != NULL ? (size_t)(q - request_path.base) : request_path.len);
        if (base.len == 0 || base.base[0] != '/')
            return 0;
        for (i = 0; i != base.len; ++i) /* the result holds no control byte, space or '#' from either side */
            if ((unsigned char)base.base[i] <= 0x20 || (unsigned char)base.base[i] == 0x7f || base.base[i] == '#')
                return 0;
        if (ref.base[0] == '?')
            return emit(buf, bufsize, base, ref, path_out);
        while (base.base[base.len - 1] != '/')
            --base.len;
        return emit(buf, bufsize, base, ref, path_out);
    }
}

/* ---- surrogate keys ---- */

int cr_surrogate_keys_parse(cr_str_t value, cr_str_t *out, size_t max, size_t *num)
{
    size_t i = 0;

    assert(num != NULL && *num <= max);
    while (i < value.len) {
        size_t start;
        while (i < value.len && (value.base[i] == ' ' || value.base[i] == '\t' || value.base[i] == ','))
            ++i;
        if (i == value.len)
            break;
        start = i;
        while (i < value.len && value.base[i] != ' ' && value.base[i] != '\t' && value.base[i] != ',')
            ++i;
        if (*num == max)
            return CR_DECLINED;
        out[(*num)++] = cr_str(value.base + start, i - start);
    }
    return CR_OK;
}

/* ---- key slices ---- */

cr_str_t cr_invalidate_key_uri(cr_str_t key)
{
    const char *nl = key.len != 0 ? memchr(key.base, '\n', key.len) : NULL, *nl2;
    if (nl == NULL)
        return key;
    nl2 = memchr(nl + 1, '\n', key.len - (size_t)(nl + 1 - key.base));
    return nl2 != NULL ? cr_str(key.base, (size_t)(nl2 - key.base)) : key;
}

cr_str_t cr_invalidate_key_path(cr_str_t key)
{
    cr_str_t uri = cr_invalidate_key_uri(key);
    const char *nl = uri.len != 0 ? memchr(uri.base, '\n', uri.len) : NULL, *q;
    if (nl == NULL)
        return uri;
    q = memchr(nl + 1, '?', uri.len - (size_t)(nl + 1 - uri.base));
    return q != NULL ? cr_str(uri.base, (size_t)(q - uri.base)) : uri;
}

cr_str_t cr_path_tag(cr_str_t key)
{
    cr_str_t path = cr_invalidate_key_path(key);
    const char *nl = path.len != 0 ? memchr(path.base, '\n', path.len) : NULL;
    if (nl == NULL)
        return path;
    return cr_str(nl, path.len - (size_t)(nl - path.base));
}

uint64_t cr_path_hash_of_path(cr_str_t path)
{
    uint64_t h = cr_hash_more(cr_hash("\n", 1), path.base, path.len);
    return h != 0 ? h : 1;
}

uint64_t cr_path_hash(cr_str_t key)
{
    cr_str_t tag = cr_path_tag(key);
    if (tag.len == 0 || tag.base[0] != '\n')
        return cr_path_hash_of_path(tag);
    return cr_path_hash_of_path(cr_str(tag.base + 1, tag.len - 1));
}
