/*
 * yaml_read.c: the private reader of typed YAML scalars under conf/ (config.c, config_limits.c, config_routes.c and
 * config_schema.c read the document through it).
 *
 * Owns: error reporting with positions ("file:line:col: message", control bytes escaped, the first error wins),
 * node lookup in checked mappings, the scalar parsers (integers, durations, sizes, booleans, strings, string lists)
 * and the small string validators several sections share. Also the public cr_parse_duration_ms and cr_parse_size.
 *
 * Invariants: no global state, no locks. Every reader returns 0 or -1 with the error already written to the parser's
 * errbuf; an absent optional key keeps the caller's default. What a reader allocates is attached to the caller's
 * config before anything else can fail (see config.c), so cr_config_free frees it on any error path.
 */
#include "yaml_read.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Writes "name:line:col: message" into errbuf. Messages quote values from the file, which may hold any byte (a
 * quoted YAML scalar can hold "\n" or a terminal escape): control bytes are written as \n, \t or \xHH, so the
 * message stays the one line `corral -t` and the reload log promise. Always returns -1 so callers can
 * `return cr_conf_fail...`.
 */
__attribute__((format(printf, 4, 0))) static int conf_vfail_at(cr_conf_parser_t *p, size_t line, size_t col, const char *fmt,
                                                               va_list ap)
{
    char msg[1024];
    size_t i, o;
    int n;
    if (p->errbuf == NULL || p->errbufsize == 0)
        return -1;
    n = snprintf(p->errbuf, p->errbufsize, "%s:%zu:%zu: ", p->name, line, col);
    if (n < 0 || (size_t)n >= p->errbufsize)
        return -1;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    for (i = 0, o = (size_t)n; msg[i] != '\0' && o + 1 < p->errbufsize; ++i) {
        unsigned char c = (unsigned char)msg[i];
        char esc[5];
        size_t elen = 1;
        if (c == '\n' || c == '\t')
            esc[0] = '\\', esc[1] = c == '\n' ? 'n' : 't', elen = 2;
        else if (c < 0x20 || c == 0x7f)
            elen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c);
        else
            esc[0] = (char)c;
        if (o + elen >= p->errbufsize)
            break;
        memcpy(p->errbuf + o, esc, elen);
        o += elen;
    }
    p->errbuf[o] = '\0';
    return -1;
}

int cr_conf_fail_at(cr_conf_parser_t *p, size_t line, size_t col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_vfail_at(p, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reports an error located at `node` (its first character). Returns -1. */
int cr_conf_fail(cr_conf_parser_t *p, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    size_t line = node != NULL ? node->start_mark.line + 1 : 1, col = node != NULL ? node->start_mark.column + 1 : 1;
    va_start(ap, fmt);
    conf_vfail_at(p, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

/* Where node's value starts, for checks made after loading (config_check.c). */
cr_conf_pos_t cr_conf_pos_of(const yaml_node_t *node)
{
    cr_conf_pos_t pos = {0, 0};
    if (node != NULL) {
        pos.line = (unsigned)node->start_mark.line + 1;
        pos.col = (unsigned)node->start_mark.column + 1;
    }
    return pos;
}

/* Reports libyaml's own error (bad syntax, bad encoding, undefined alias, out of memory). */
void cr_conf_fail_yaml(cr_conf_parser_t *p, const yaml_parser_t *parser, const char *src, size_t srclen)
{
    const char *problem = parser->problem != NULL ? parser->problem : "unknown error";
    size_t line, col, i;

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        cr_conf_fail_at(p, 1, 1, "out of memory while parsing YAML");
        return;
    case YAML_READER_ERROR:
        /* reader errors carry a byte offset, not a mark */
        line = 1;
        col = 1;
        for (i = 0; i < parser->problem_offset && i < srclen; ++i) {
            if (src[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        cr_conf_fail_at(p, line, col, "YAML syntax error: %s", problem);
        return;
    default:
        line = parser->problem_mark.line + 1;
        col = parser->problem_mark.column + 1;
        if (parser->context != NULL) {
            cr_conf_fail_at(p, line, col, "YAML syntax error: %s (%s at line %zu, column %zu)", problem, parser->context,
                            parser->context_mark.line + 1, parser->context_mark.column + 1);
        } else {
            cr_conf_fail_at(p, line, col, "YAML syntax error: %s", problem);
        }
        return;
    }
}

/* ---- node helpers ---- */

const yaml_node_t *cr_conf_node(cr_conf_parser_t *p, yaml_node_item_t idx)
{
    return yaml_document_get_node(p->doc, idx);
}

const char *cr_conf_scalar_str(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* An empty plain scalar, "~" or "null": what YAML gives for `key:` with nothing after it. */
int cr_conf_node_is_null(const yaml_node_t *n)
{
    const char *s;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    s = cr_conf_scalar_str(n);
    return n->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

const char *cr_conf_node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return cr_conf_node_is_null(n) ? "an empty value" : "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* Builds "prefix.key" (or "key" at the top level) into buf. */
const char *cr_conf_join(char *buf, size_t size, const char *prefix, const char *key)
{
    snprintf(buf, size, "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
    return buf;
}

int cr_conf_expect_mapping(cr_conf_parser_t *p, const yaml_node_t *n, const char *name)
{
    if (n->type != YAML_MAPPING_NODE)
        return cr_conf_fail(p, n, "%s: mapping expected, found %s", name, cr_conf_node_kind(n));
    return 0;
}

int cr_conf_expect_list(cr_conf_parser_t *p, const yaml_node_t *n, const char *name)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return cr_conf_fail(p, n, "%s: list expected, found %s", name, cr_conf_node_kind(n));
    return 0;
}

/* A scalar usable as a C string: not a list or mapping, not empty, no NUL bytes inside. */
int cr_conf_expect_scalar(cr_conf_parser_t *p, const yaml_node_t *n, const char *name)
{
    if (n->type != YAML_SCALAR_NODE)
        return cr_conf_fail(p, n, "%s: scalar expected, found %s", name, cr_conf_node_kind(n));
    if (cr_conf_node_is_null(n) || n->data.scalar.length == 0)
        return cr_conf_fail(p, n, "%s: a value is required", name);
    if (strlen(cr_conf_scalar_str(n)) != n->data.scalar.length)
        return cr_conf_fail(p, n, "%s: value contains a NUL byte", name);
    return 0;
}

/* The value for `key` in a checked mapping, or NULL when absent. */
const yaml_node_t *cr_conf_find(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key)
{
    const yaml_node_pair_t *pair;
    for (pair = m->node->data.mapping.pairs.start; pair < m->node->data.mapping.pairs.top; ++pair)
        if (strcmp(cr_conf_scalar_str(cr_conf_node(p, pair->key)), key) == 0)
            return cr_conf_node(p, pair->value);
    return NULL;
}

/* The key node for `key` in a checked mapping, or NULL when absent (errors about the key itself point here). */
const yaml_node_t *cr_conf_find_key(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key)
{
    const yaml_node_pair_t *pair;
    for (pair = m->node->data.mapping.pairs.start; pair < m->node->data.mapping.pairs.top; ++pair)
        if (strcmp(cr_conf_scalar_str(cr_conf_node(p, pair->key)), key) == 0)
            return cr_conf_node(p, pair->key);
    return NULL;
}

int cr_conf_fail_missing(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key)
{
    if (m->path[0] == '\0')
        return cr_conf_fail(p, m->node, "missing required key \"%s\" at the top level", key);
    return cr_conf_fail(p, m->node, "missing required key \"%s\" in %s", key, m->path);
}

char *cr_conf_strdup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

void *cr_conf_calloc(cr_conf_parser_t *p, const yaml_node_t *n, size_t count, size_t size)
{
    void *v = calloc(count != 0 ? count : 1, size);
    if (v == NULL)
        cr_conf_fail(p, n, "out of memory");
    return v;
}

/* ---- scalar parsers (public ones first) ---- */

/* Decimal digits only, no sign; fails on overflow. *end gets the first non-digit. */
int cr_conf_parse_digits(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *q = s;
    for (; *q >= '0' && *q <= '9'; ++q) {
        unsigned d = (unsigned)(*q - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (q == s)
        return -1;
    *out = v;
    *end = q;
    return 0;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b != 0 && a > UINT64_MAX / b)
        return -1;
    *out = a * b;
    return 0;
}

int cr_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t n;
    const char *u;
    size_t i;

    if (s == NULL || cr_conf_parse_digits(s, &n, &u) != 0)
        return -1;
    while (*u == ' ')
        ++u;
    for (i = 0; i != CR_ARRAY_SIZE(units); ++i)
        if (strcmp(u, units[i].unit) == 0)
            return mul_checked(n, units[i].ms, out);
    return -1;
}

int cr_parse_size(const char *s, size_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", 1ull << 10},
                 {"MiB", 1ull << 20},
                 {"GiB", 1ull << 30},
                 {"KB", 1000ull},
                 {"MB", 1000ull * 1000},
                 {"GB", 1000ull * 1000 * 1000}};
    uint64_t n, v;
    const char *u;
    size_t i;

    if (s == NULL || cr_conf_parse_digits(s, &n, &u) != 0)
        return -1;
    while (*u == ' ')
        ++u;
    for (i = 0; i != CR_ARRAY_SIZE(units); ++i) {
        if (strcmp(u, units[i].unit) == 0) {
            if (mul_checked(n, units[i].mult, &v) != 0 || v > SIZE_MAX)
                return -1;
            *out = (size_t)v;
            return 0;
        }
    }
    return -1;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(yes); ++i) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* ---- typed field readers: absent keys keep the caller's default; each returns 0 or -1 (error reported) ---- */

int cr_conf_opt_uint(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    const yaml_node_t *n = cr_conf_find(p, m, key);
    const char *end;
    uint64_t v;
    char name[160];

    if (n == NULL)
        return 0;
    cr_conf_join(name, sizeof(name), m->path, key);
    if (cr_conf_expect_scalar(p, n, name) != 0)
        return -1;
    if (cr_conf_parse_digits(cr_conf_scalar_str(n), &v, &end) != 0 || *end != '\0')
        return cr_conf_fail(p, n, "%s: bad integer \"%s\"", name, cr_conf_scalar_str(n));
    if (v < min || v > max)
        return cr_conf_fail(p, n, "%s: %s is out of range (%llu..%llu)", name, cr_conf_scalar_str(n), (unsigned long long)min,
                            (unsigned long long)max);
    *out = v;
    return 0;
}

/* `positive`: zero is rejected (timeouts). */
int cr_conf_opt_duration(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int positive, uint64_t *out)
{
    const yaml_node_t *n = cr_conf_find(p, m, key);
    uint64_t v;
    char name[160];

    if (n == NULL)
        return 0;
    cr_conf_join(name, sizeof(name), m->path, key);
    if (cr_conf_expect_scalar(p, n, name) != 0)
        return -1;
    if (cr_parse_duration_ms(cr_conf_scalar_str(n), &v) != 0)
        return cr_conf_fail(p, n, "%s: bad duration \"%s\" (expected a number with ms, s, m or h, e.g. 1500ms, 30s, 5m, 1h)", name,
                            cr_conf_scalar_str(n));
    if (positive && v == 0)
        return cr_conf_fail(p, n, "%s: must be greater than 0", name);
    *out = v;
    return 0;
}

int cr_conf_opt_size(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, size_t *out)
{
    const yaml_node_t *n = cr_conf_find(p, m, key);
    size_t v;
    char name[160];

    if (n == NULL)
        return 0;
    cr_conf_join(name, sizeof(name), m->path, key);
    if (cr_conf_expect_scalar(p, n, name) != 0)
        return -1;
    if (cr_parse_size(cr_conf_scalar_str(n), &v) != 0)
        return cr_conf_fail(p, n, "%s: bad size \"%s\" (expected a number with B, KiB, MiB or GiB, e.g. 512KiB, 8MiB)", name,
                            cr_conf_scalar_str(n));
    *out = v;
    return 0;
}

int cr_conf_parse_bool_node(cr_conf_parser_t *p, const yaml_node_t *n, const char *name, int *out)
{
    if (cr_conf_expect_scalar(p, n, name) != 0)
        return -1;
    if (parse_bool(cr_conf_scalar_str(n), out) != 0)
        return cr_conf_fail(p, n, "%s: bad boolean \"%s\" (use true/false, yes/no or on/off)", name, cr_conf_scalar_str(n));
    return 0;
}

int cr_conf_opt_bool(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int *out)
{
    const yaml_node_t *n = cr_conf_find(p, m, key);
    char name[160];
    if (n == NULL)
        return 0;
    return cr_conf_parse_bool_node(p, n, cr_conf_join(name, sizeof(name), m->path, key), out);
}

int cr_conf_opt_string(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int required, cr_conf_check_fn check,
                       char **out)
{
    const yaml_node_t *n = cr_conf_find(p, m, key);
    const char *why;
    char name[160];

    if (n == NULL)
        return required ? cr_conf_fail_missing(p, m, key) : 0;
    cr_conf_join(name, sizeof(name), m->path, key);
    if (cr_conf_expect_scalar(p, n, name) != 0)
        return -1;
    free(*out);
    if ((*out = cr_conf_strdup(cr_conf_scalar_str(n), n->data.scalar.length)) == NULL)
        return cr_conf_fail(p, n, "out of memory");
    if (check != NULL && (why = check(*out)) != NULL)
        return cr_conf_fail(p, n, "%s: %s (\"%s\")", name, why, cr_conf_scalar_str(n));
    return 0;
}

/*
 * Reads a list of strings. The array is attached to *out and *num before it is filled, so the caller's config owns
 * it on failure. `nonempty`: an empty list is an error. Duplicates are errors (after `check` normalized them).
 */
int cr_conf_opt_string_list(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int nonempty, cr_conf_check_fn check,
                            char ***out, size_t *num)
{
    const yaml_node_t *n = cr_conf_find(p, m, key);
    const yaml_node_item_t *it;
    size_t count, i, j;
    char name[160], ename[192];
    const char *why;

    if (n == NULL)
        return 0;
    cr_conf_join(name, sizeof(name), m->path, key);
    if (cr_conf_expect_list(p, n, name) != 0)
        return -1;
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (nonempty && count == 0)
        return cr_conf_fail(p, n, "%s: the list must not be empty", name);
    if ((*out = cr_conf_calloc(p, n, count, sizeof(char *))) == NULL)
        return -1;
    *num = count;
    for (i = 0, it = n->data.sequence.items.start; i != count; ++i, ++it) {
        const yaml_node_t *e = cr_conf_node(p, *it);
        snprintf(ename, sizeof(ename), "%s[%zu]", name, i);
        if (cr_conf_expect_scalar(p, e, ename) != 0)
            return -1;
        if (((*out)[i] = cr_conf_strdup(cr_conf_scalar_str(e), e->data.scalar.length)) == NULL)
            return cr_conf_fail(p, e, "out of memory");
        if (check != NULL && (why = check((*out)[i])) != NULL)
            return cr_conf_fail(p, e, "%s: %s (\"%s\")", ename, why, cr_conf_scalar_str(e));
        for (j = 0; j != i; ++j)
            if (strcmp((*out)[j], (*out)[i]) == 0)
                return cr_conf_fail(p, e, "%s: duplicate entry \"%s\"", ename, cr_conf_scalar_str(e));
    }
    return 0;
}

/* ---- string validators ---- */

void cr_conf_lowercase(char *s)
{
    for (; *s != '\0'; ++s)
        if (*s >= 'A' && *s <= 'Z')
            *s += 'a' - 'A';
}

int cr_conf_has_ctl_or_space(const char *s)
{
    for (; *s != '\0'; ++s)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return 1;
    return 0;
}

const char *cr_conf_check_header_name(char *s)
{
    const char *q;
    for (q = s; *q != '\0'; ++q)
        if (!cr_is_tchar((unsigned char)*q))
            return "not a valid header name";
    cr_conf_lowercase(s);
    return NULL;
}
