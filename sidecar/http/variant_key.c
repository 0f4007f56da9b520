/*
 * variant_key.c: the variant key of a stored response (cr_variant_key, http.h): for each name the response's Vary
 * lists, the request's value of that header in a normal form, so that requests a server cannot tell apart share
 * one variant (RFC 9111 4.1: "normalizing ... whitespace, ... case-insensitive ... list").
 *
 * The normal form: the value is split into comma-separated members (quoted strings are not split), each trimmed of
 * spaces and tabs, with the whitespace around ';' and '=' inside it removed and any other run of it made one space
 * (outside quoted strings); empty members are dropped; the
 * members are joined with ",". For the fields whose members are case-insensitive tokens and whose order carries no
 * meaning beyond their q-values (accept, accept-charset, accept-encoding, accept-language) members are also
 * lower-cased and sorted. More than CR_VARIANT_MAX_MEMBERS members are kept in their order (still trimmed).
 *
 * Invariants: pure; writes only the caller's buffer, never past cap. Runs on the hit path for objects with Vary:
 * no allocation, linear in the value's length (the sort is over at most CR_VARIANT_MAX_MEMBERS members).
 */
#include "corral/http/http.h"

#include <string.h>

#define CR_VARIANT_MAX_MEMBERS 32

typedef struct st_member_t {
    const char *base;
    size_t len;
} member_t;

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int folds_members(cr_str_t name)
{
    return cr_str_eq(name, H2O_STRLIT("accept")) || cr_str_eq(name, H2O_STRLIT("accept-charset")) ||
           cr_str_eq(name, H2O_STRLIT("accept-encoding")) || cr_str_eq(name, H2O_STRLIT("accept-language"));
}

/* Splits v into trimmed, non-empty members (commas inside quoted strings do not split); returns how many were found,
 * which may exceed max (only the first max are stored). */
static size_t split_members(cr_str_t v, member_t *out, size_t max)
{
    size_t n = 0, i = 0;
    while (i < v.len) {
        size_t s, e;
        int quoted = 0;
        while (i < v.len && (is_ows(v.base[i]) || v.base[i] == ','))
            ++i;
        s = i;
        for (; i < v.len && (quoted || v.base[i] != ','); ++i) {
            if (v.base[i] == '"')
                quoted = !quoted;
            else if (quoted && v.base[i] == '\\' && i + 1 < v.len)
                ++i;
        }
        e = i;
        while (e > s && is_ows(v.base[e - 1]))
            --e;
        if (e > s) {
            if (n < max)
                out[n] = (member_t){v.base + s, e - s};
            ++n;
        }
    }
    return n;
}

/* Copies one member without the whitespace around ';' and '=' (outside quoted strings), lower-cased when fold. */
static size_t write_member(member_t m, int fold, char *out)
{
    size_t i, len = 0;
    int quoted = 0;
    for (i = 0; i != m.len; ++i) {
        char c = m.base[i];
        if (!quoted && is_ows(c)) {
            size_t j = i;
            while (j < m.len && is_ows(m.base[j]))
                ++j;
            i = j - 1; /* a run of whitespace: dropped next to ';' and '=', else one space */
            if (!(m.base[j] == ';' || m.base[j] == '=' || (len != 0 && (out[len - 1] == ';' || out[len - 1] == '='))))
                out[len++] = ' ';
            continue;
        }
        if (c == '"')
            quoted = !quoted;
        out[len++] = fold && !quoted ? lower(c) : c;
    }
    return len;
}

static int member_icmp(member_t a, member_t b)
{
    size_t i, n = a.len < b.len ? a.len : b.len;
    for (i = 0; i != n; ++i) {
        char x = lower(a.base[i]), y = lower(b.base[i]);
        if (x != y)
            return (unsigned char)x < (unsigned char)y ? -1 : 1;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

/* Appends v's normal form at buf + len; returns the new length or SIZE_MAX when it does not fit in cap. */
static size_t append_value(cr_str_t name, cr_str_t v, char *buf, size_t len, size_t cap)
{
    member_t members[CR_VARIANT_MAX_MEMBERS];
    size_t n = split_members(v, members, CR_VARIANT_MAX_MEMBERS), i, j;
    int fold = folds_members(name);

    if (n > CR_VARIANT_MAX_MEMBERS) { /* too many to sort: one member, the whole value trimmed (still bounded) */
        fold = 0;
        n = 0;
        while (v.len != 0 && is_ows(v.base[0]))
            ++v.base, --v.len;
        while (v.len != 0 && is_ows(v.base[v.len - 1]))
            --v.len;
        if (v.len != 0)
            members[n++] = (member_t){v.base, v.len};
    } else if (fold) { /* insertion sort: n is small */
        for (i = 1; i < n; ++i) {
            member_t m = members[i];
            for (j = i; j != 0 && member_icmp(m, members[j - 1]) < 0; --j)
                members[j] = members[j - 1];
            members[j] = m;
        }
    }
    for (i = 0; i != n; ++i) {
        if (len + members[i].len + 1 > cap) /* a member only shrinks when written */
            return SIZE_MAX;
        if (i != 0)
            buf[len++] = ',';
        len += write_member(members[i], fold, buf + len);
    }
    return len;
}

size_t cr_variant_key(const cr_str_t *names, size_t num_names, cr_header_lookup_fn lookup, void *ctx, char *buf, size_t cap)
{
    size_t i, len = 0;
    for (i = 0; i != num_names; ++i) {
        cr_str_t v = {NULL, 0}; /* absent and empty give the same key */
        if (!lookup(ctx, names[i].base, names[i].len, &v))
            v.len = 0;
        if (len + names[i].len + 2 > cap)
            return SIZE_MAX;
        memcpy(buf + len, names[i].base, names[i].len);
        len += names[i].len;
        buf[len++] = ':';
        if ((len = append_value(names[i], v, buf, len, cap)) == SIZE_MAX || len + 1 > cap)
            return SIZE_MAX;
        buf[len++] = '\n';
    }
    return len;
}
