/*
 * targeted_cc.c: the targeted Cache-Control helpers of targeted_cc.h: the configured field list and an RFC 8941
 * Dictionary validator (keys, bare items: integers, decimals, strings, tokens, byte sequences, booleans; parameters).
 *
 * Invariants: pure functions over borrowed bytes, never reading past a length; no allocation, no locks, no state.
 */
#include "corral/http/targeted_cc.h"

#include <string.h>

int cr_targeted_cc_index(const cr_config_t *cfg, cr_str_t lname)
{
    size_t i;
    for (i = 0; i != cfg->cache.num_targeted_cc; ++i) {
        const char *n = cfg->cache.targeted_cc[i];
        if (strlen(n) == lname.len && memcmp(n, lname.base, lname.len) == 0)
            return (int)i;
    }
    return -1;
}

static int is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return is_lcalpha(c) || (c >= 'A' && c <= 'Z');
}

static int is_tchar(char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_base64(char c)
{
    return is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=';
}

/* A key at *i (RFC 8941 3.1.2): ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ). */
static int parse_key(cr_str_t v, size_t *i)
{
    if (*i == v.len || !(is_lcalpha(v.base[*i]) || v.base[*i] == '*'))
        return 0;
    for (++*i; *i < v.len; ++*i) {
        char c = v.base[*i];
        if (!(is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '*'))
            break;
    }
    return 1;
}

/* A bare item at *i (RFC 8941 3.3). */
static int parse_bare_item(cr_str_t v, size_t *i)
{
    char c;
    if (*i == v.len)
        return 0;
    c = v.base[*i];
    if (c == '-' || is_digit(c)) { /* integer (15 digits) or decimal (12.3 digits) */
        size_t digits = 0, frac = 0;
        int dot = 0;
        if (c == '-')
            ++*i;
        for (; *i < v.len; ++*i) {
            c = v.base[*i];
            if (is_digit(c)) {
                if (dot)
                    ++frac;
                else
                    ++digits;
            } else if (c == '.' && !dot && digits != 0) {
                dot = 1;
            } else {
                break;
            }
        }
        if (digits == 0)
            return 0;
        return dot ? digits <= 12 && frac >= 1 && frac <= 3 : digits <= 15;
    }
    if (c == '"') { /* string: printable ASCII, \" and \\ escapes */
        for (++*i; *i < v.len; ++*i) {
            c = v.base[*i];
            if (c == '\\') {
                if (++*i == v.len || (v.base[*i] != '"' && v.base[*i] != '\\'))
                    return 0;
            } else if (c == '"') {
                ++*i;
                return 1;
            } else if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f) {
                return 0;
            }
        }
        return 0;
    }
    if (c == ':') { /* byte sequence */
        for (++*i; *i < v.len && is_base64(v.base[*i]); ++*i)
            ;
        if (*i == v.len || v.base[*i] != ':')
            return 0;
        ++*i;
        return 1;
    }
    if (c == '?') { /* boolean */
        if (*i + 1 >= v.len || (v.base[*i + 1] != '0' && v.base[*i + 1] != '1'))
            return 0;
        *i += 2;
        return 1;
    }
    if (is_alpha(c) || c == '*') { /* token */
        for (++*i; *i < v.len && (is_tchar(v.base[*i]) || v.base[*i] == ':' || v.base[*i] == '/'); ++*i)
            ;
        return 1;
    }
    return 0;
}

/* Parameters at *i (RFC 8941 3.1.2): *( ";" *SP key [ "=" bare-item ] ). */
static int parse_params(cr_str_t v, size_t *i)
{
    while (*i < v.len && v.base[*i] == ';') {
        for (++*i; *i < v.len && v.base[*i] == ' '; ++*i)
            ;
        if (!parse_key(v, i))
            return 0;
        if (*i < v.len && v.base[*i] == '=') {
            ++*i;
            if (!parse_bare_item(v, i))
                return 0;
        }
    }
    return 1;
}

static size_t skip_ows(cr_str_t v, size_t i)
{
    while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t'))
        ++i;
    return i;
}

int cr_sf_dictionary_valid(cr_str_t v)
{
    size_t i = skip_ows(v, 0);
    if (i == v.len)
        return 0; /* empty: not "present with a value" (RFC 9213 2.1 asks for a non-empty dictionary) */
    for (;;) {
        if (!parse_key(v, &i))
            return 0;
        if (i < v.len && v.base[i] == '=') {
            ++i;
            if (!parse_bare_item(v, &i)) /* inner lists are not cache directives: refused */
                return 0;
        }
        if (!parse_params(v, &i))
            return 0;
        i = skip_ows(v, i);
        if (i == v.len)
            return 1;
        if (v.base[i] != ',')
            return 0;
        i = skip_ows(v, i + 1);
        if (i == v.len)
            return 0; /* a trailing comma */
    }
}
