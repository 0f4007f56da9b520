/*
 * config.c: reads the YAML configuration (libyaml document API) into an immutable cr_config_t.
 *
 * Invariants:
 * - Validation is complete: a config that loads is one the server can start with, except for what needs files, the
 *   environment or the network: TLS files and the admin token are checked by config_check.c (for -t and start-up
 *   alike, with the positions recorded here), bind failures by the server.
 * - Every allocation is attached to the cr_config_t under construction the moment it is made (arrays are
 *   zero-filled and their counts set before they are filled), so any error path frees everything with
 *   cr_config_free(). The libyaml document is always deleted before returning.
 * - The first error wins: it is written to errbuf as "file:line:col: message" (1-based, from libyaml's marks: the
 *   offending node, or for a missing key the mapping that lacks it) and loading stops.
 * - No global state; safe to call from any thread.
 */
#include "corral/conf/config.h"
#include "corral/core/common.h"
#include "corral/http/encoding.h"
#include "corral/core/urlpath.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define CR_CONFIG_MAX_FILE_SIZE (16u << 20)
#define CR_CONFIG_MIN_MEMORY ((size_t)1 << 20)
#define CR_CONFIG_MIN_UPSTREAM_HEADER_SIZE ((size_t)1 << 10)
#define CR_CONFIG_MAX_UPSTREAM_HEADER_SIZE ((size_t)1 << 20)
#define CR_CONFIG_MAX_THREADS 256
#define CR_CONFIG_MAX_CONNECTIONS 100000
#define CR_CONFIG_MAX_WAITERS 1000000

/* Compression candidates when a route does not list its own `compress.types` (pattern forms: encoding.h). The two
   suffix patterns cover image/svg+xml, application/ld+json, application/problem+json, application/xhtml+xml, ... */
static const char *const default_compress_types[] = {
    "text/*", "application/json", "application/javascript", "application/xml", "image/svg+xml", "*/*+json", "*/*+xml",
};

/* ---- the schema: which keys each mapping allows (also used to say where a misplaced key belongs) ---- */

static const char *const top_keys[] = {"threads", "listen", "upstream", "admin", "cache", "tier", "limits", "routes", NULL};
static const char *const listen_keys[] = {"address", "tls", NULL};
static const char *const tls_keys[] = {"certificate", "key", NULL};
static const char *const upstream_keys[] = {"url", "max_connections", "connect_timeout", "timeout", "queue_timeout", NULL};
static const char *const admin_keys[] = {"address", "token_file", "token_env", NULL};
static const char *const cache_keys[] = {"memory", "max_object_size", "surrogate_key_header", "keep_surrogate_key", NULL};
static const char *const tier_keys[] = {"memcached", NULL};
static const char *const limits_keys[] = {"request_headers",  "request_body",           "upstream_header_size",
                                          "admin_body",       "response_buffer",        "connections",
                                          "streams_per_connection", "variants_per_key", "queued_fills",
                                          "cancels_per_connection", "cancels_per_address", "header_timeout",
                                          NULL};
static const char *const memcached_keys[] = {"servers", "timeout", NULL};
static const char *const route_keys[] = {"match",
                                         "cache",
                                         "ttl",
                                         "max_ttl",
                                         "force_ttl",
                                         "ignore_no_store",
                                         "force_cache_control",
                                         "heuristic_freshness",
                                         "allow_set_cookie",
                                         "stale_while_revalidate",
                                         "stale_if_error",
                                         "key",
                                         "coalesce",
                                         "compress",
                                         "invalidate",
                                         "forward_headers",
                                         "cookies",
                                         NULL};
static const char *const match_keys[] = {"prefix", "exact", "methods", NULL};
static const char *const key_keys[] = {"query", "headers", NULL};
static const char *const coalesce_keys[] = {"timeout", "max_waiters", "pass_ttl", NULL};
static const char *const compress_keys[] = {"types", "min_size", "encodings", "brotli_quality", "gzip_level", NULL};

typedef enum en_cr_conf_section_t {
    SEC_TOP,
    SEC_LISTEN,
    SEC_TLS,
    SEC_UPSTREAM,
    SEC_ADMIN,
    SEC_CACHE,
    SEC_TIER,
    SEC_MEMCACHED,
    SEC_LIMITS,
    SEC_ROUTE,
    SEC_MATCH,
    SEC_KEY,
    SEC_COALESCE,
    SEC_COMPRESS,
} cr_conf_section_t;

static const struct {
    const char *where;
    const char *const *keys;
} sections[] = {
    [SEC_TOP] = {"the top level", top_keys},          [SEC_LISTEN] = {"listen[]", listen_keys},
    [SEC_TLS] = {"listen[].tls", tls_keys},            [SEC_UPSTREAM] = {"upstream", upstream_keys},
    [SEC_ADMIN] = {"admin", admin_keys},               [SEC_CACHE] = {"cache", cache_keys},
    [SEC_TIER] = {"tier", tier_keys},                  [SEC_MEMCACHED] = {"tier.memcached", memcached_keys},
    [SEC_LIMITS] = {"limits", limits_keys},
    [SEC_ROUTE] = {"routes[]", route_keys},            [SEC_MATCH] = {"routes[].match", match_keys},
    [SEC_KEY] = {"routes[].key", key_keys},            [SEC_COALESCE] = {"routes[].coalesce", coalesce_keys},
    [SEC_COMPRESS] = {"routes[].compress", compress_keys},
};

/* ---- parser state and error reporting ---- */

typedef struct st_cr_conf_parser_t {
    const char *name; /* file name used in messages */
    yaml_document_t *doc;
    char *errbuf;
    size_t errbufsize;
} cr_conf_parser_t;

/* A mapping being read and its dotted path for messages ("routes[2].match"; "" for the top level). */
typedef struct st_cr_conf_map_t {
    const yaml_node_t *node;
    const char *path;
} cr_conf_map_t;

/*
 * Writes "name:line:col: message" into errbuf. Messages quote values from the file, which may hold any byte (a
 * quoted YAML scalar can hold "\n" or a terminal escape): control bytes are written as \n, \t or \xHH, so the
 * message stays the one line `corral -t` and the reload log promise. Always returns -1 so callers can
 * `return conf_fail...`.
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

__attribute__((format(printf, 4, 5))) static int conf_fail_at(cr_conf_parser_t *p, size_t line, size_t col, const char *fmt,
                                                                ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_vfail_at(p, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reports an error located at `node` (its first character). Returns -1. */
__attribute__((format(printf, 3, 4))) static int conf_fail(cr_conf_parser_t *p, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    size_t line = node != NULL ? node->start_mark.line + 1 : 1, col = node != NULL ? node->start_mark.column + 1 : 1;
    va_start(ap, fmt);
    conf_vfail_at(p, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

/* Where node's value starts, for checks made after loading (config_check.c). */
static cr_conf_pos_t pos_of(const yaml_node_t *node)
{
    cr_conf_pos_t pos = {0, 0};
    if (node != NULL) {
        pos.line = (unsigned)node->start_mark.line + 1;
        pos.col = (unsigned)node->start_mark.column + 1;
    }
    return pos;
}

/* Reports libyaml's own error (bad syntax, bad encoding, undefined alias, out of memory). */
static void conf_fail_yaml(cr_conf_parser_t *p, const yaml_parser_t *parser, const char *src, size_t srclen)
{
    const char *problem = parser->problem != NULL ? parser->problem : "unknown error";
    size_t line, col, i;

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        conf_fail_at(p, 1, 1, "out of memory while parsing YAML");
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
        conf_fail_at(p, line, col, "YAML syntax error: %s", problem);
        return;
    default:
        line = parser->problem_mark.line + 1;
        col = parser->problem_mark.column + 1;
        if (parser->context != NULL) {
            conf_fail_at(p, line, col, "YAML syntax error: %s (%s at line %zu, column %zu)", problem, parser->context,
                         parser->context_mark.line + 1, parser->context_mark.column + 1);
        } else {
            conf_fail_at(p, line, col, "YAML syntax error: %s", problem);
        }
        return;
    }
}

/* ---- node helpers ---- */

static const yaml_node_t *conf_node(cr_conf_parser_t *p, yaml_node_item_t idx)
{
    return yaml_document_get_node(p->doc, idx);
}

static const char *scalar_str(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* An empty plain scalar, "~" or "null": what YAML gives for `key:` with nothing after it. */
static int node_is_null(const yaml_node_t *n)
{
    const char *s;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    s = scalar_str(n);
    return n->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return node_is_null(n) ? "an empty value" : "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* Builds "prefix.key" (or "key" at the top level) into buf. */
static const char *conf_join(char *buf, size_t size, const char *prefix, const char *key)
{
    snprintf(buf, size, "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
    return buf;
}

static int expect_mapping(cr_conf_parser_t *p, const yaml_node_t *n, const char *name)
{
    if (n->type != YAML_MAPPING_NODE)
        return conf_fail(p, n, "%s: mapping expected, found %s", name, node_kind(n));
    return 0;
}

static int expect_list(cr_conf_parser_t *p, const yaml_node_t *n, const char *name)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return conf_fail(p, n, "%s: list expected, found %s", name, node_kind(n));
    return 0;
}

/* A scalar usable as a C string: not a list or mapping, not empty, no NUL bytes inside. */
static int expect_scalar(cr_conf_parser_t *p, const yaml_node_t *n, const char *name)
{
    if (n->type != YAML_SCALAR_NODE)
        return conf_fail(p, n, "%s: scalar expected, found %s", name, node_kind(n));
    if (node_is_null(n) || n->data.scalar.length == 0)
        return conf_fail(p, n, "%s: a value is required", name);
    if (strlen(scalar_str(n)) != n->data.scalar.length)
        return conf_fail(p, n, "%s: value contains a NUL byte", name);
    return 0;
}

static int key_in(const char *const *keys, const char *key)
{
    for (; *keys != NULL; ++keys)
        if (strcmp(*keys, key) == 0)
            return 1;
    return 0;
}

static void append(char *buf, size_t size, size_t *len, const char *s)
{
    int n;
    if (*len >= size)
        return;
    n = snprintf(buf + *len, size - *len, "%s", s);
    if (n > 0)
        *len += (size_t)n;
}

/* Unknown key: lists what the mapping allows and, when the key is valid elsewhere, where it belongs. */
static int conf_fail_unknown_key(cr_conf_parser_t *p, const yaml_node_t *keynode, cr_conf_section_t sec, const char *where)
{
    char allowed[512], places[256];
    size_t alen = 0, plen = 0, i;
    const char *key = scalar_str(keynode);

    allowed[0] = '\0';
    for (i = 0; sections[sec].keys[i] != NULL; ++i) {
        append(allowed, sizeof(allowed), &alen, i != 0 ? ", " : "");
        append(allowed, sizeof(allowed), &alen, sections[sec].keys[i]);
    }
    places[0] = '\0';
    for (i = 0; i != CR_ARRAY_SIZE(sections); ++i) {
        if (i == (size_t)sec || !key_in(sections[i].keys, key))
            continue;
        append(places, sizeof(places), &plen, plen != 0 ? ", " : "");
        append(places, sizeof(places), &plen, sections[i].where);
    }
    if (plen != 0)
        return conf_fail(p, keynode, "unknown key \"%s\" %s%s (allowed there: %s); \"%s\" belongs in %s", key,
                         sec == SEC_TOP ? "at " : "in ", where, allowed, key, places);
    return conf_fail(p, keynode, "unknown key \"%s\" %s%s (allowed there: %s)", key, sec == SEC_TOP ? "at " : "in ", where,
                     allowed);
}

/*
 * Checks that `n` is a mapping whose keys are distinct scalars from the section's schema.
 * Fails on a non-mapping, a non-scalar key, an unknown key or a duplicate key.
 */
static int check_mapping(cr_conf_parser_t *p, const yaml_node_t *n, cr_conf_section_t sec, const char *name, const char *where)
{
    const yaml_node_pair_t *pair, *prev;

    if (expect_mapping(p, n, name) != 0)
        return -1;
    for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; ++pair) {
        const yaml_node_t *k = conf_node(p, pair->key);
        if (k->type != YAML_SCALAR_NODE)
            return conf_fail(p, k, "keys %s %s must be scalars, found %s", sec == SEC_TOP ? "at" : "in", where, node_kind(k));
        if (!key_in(sections[sec].keys, scalar_str(k)))
            return conf_fail_unknown_key(p, k, sec, where);
        for (prev = n->data.mapping.pairs.start; prev < pair; ++prev) {
            const yaml_node_t *pk = conf_node(p, prev->key);
            if (strcmp(scalar_str(pk), scalar_str(k)) == 0)
                return conf_fail(p, k, "duplicate key \"%s\" %s %s (first at line %zu)", scalar_str(k),
                                 sec == SEC_TOP ? "at" : "in", where,
                                 (size_t)pk->start_mark.line + 1);
        }
    }
    return 0;
}

/* The value for `key` in a checked mapping, or NULL when absent. */
static const yaml_node_t *conf_find(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key)
{
    const yaml_node_pair_t *pair;
    for (pair = m->node->data.mapping.pairs.start; pair < m->node->data.mapping.pairs.top; ++pair)
        if (strcmp(scalar_str(conf_node(p, pair->key)), key) == 0)
            return conf_node(p, pair->value);
    return NULL;
}

/* The key node for `key` in a checked mapping, or NULL when absent (errors about the key itself point here). */
static const yaml_node_t *conf_find_key(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key)
{
    const yaml_node_pair_t *pair;
    for (pair = m->node->data.mapping.pairs.start; pair < m->node->data.mapping.pairs.top; ++pair)
        if (strcmp(scalar_str(conf_node(p, pair->key)), key) == 0)
            return conf_node(p, pair->key);
    return NULL;
}

static int conf_fail_missing(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key)
{
    if (m->path[0] == '\0')
        return conf_fail(p, m->node, "missing required key \"%s\" at the top level", key);
    return conf_fail(p, m->node, "missing required key \"%s\" in %s", key, m->path);
}

static char *conf_strdup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static void *conf_calloc(cr_conf_parser_t *p, const yaml_node_t *n, size_t count, size_t size)
{
    void *v = calloc(count != 0 ? count : 1, size);
    if (v == NULL)
        conf_fail(p, n, "out of memory");
    return v;
}

/* ---- scalar parsers (public ones first) ---- */

/* Decimal digits only, no sign; fails on overflow. *end gets the first non-digit. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
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

    if (s == NULL || parse_digits(s, &n, &u) != 0)
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

    if (s == NULL || parse_digits(s, &n, &u) != 0)
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

unsigned cr_method_bit(const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t len;
        unsigned bit;
    } methods[] = {{"GET", 3, CR_METHOD_GET},     {"HEAD", 4, CR_METHOD_HEAD},     {"POST", 4, CR_METHOD_POST},
                   {"PUT", 3, CR_METHOD_PUT},     {"PATCH", 5, CR_METHOD_PATCH},   {"DELETE", 6, CR_METHOD_DELETE},
                   {"OPTIONS", 7, CR_METHOD_OPTIONS}};
    size_t i;
    for (i = 0; i != CR_ARRAY_SIZE(methods); ++i)
        if (len == methods[i].len && memcmp(name, methods[i].name, len) == 0)
            return methods[i].bit;
    return CR_METHOD_OTHER;
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

static int opt_uint(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    const yaml_node_t *n = conf_find(p, m, key);
    const char *end;
    uint64_t v;
    char name[160];

    if (n == NULL)
        return 0;
    conf_join(name, sizeof(name), m->path, key);
    if (expect_scalar(p, n, name) != 0)
        return -1;
    if (parse_digits(scalar_str(n), &v, &end) != 0 || *end != '\0')
        return conf_fail(p, n, "%s: bad integer \"%s\"", name, scalar_str(n));
    if (v < min || v > max)
        return conf_fail(p, n, "%s: %s is out of range (%llu..%llu)", name, scalar_str(n), (unsigned long long)min,
                         (unsigned long long)max);
    *out = v;
    return 0;
}

/* `positive`: zero is rejected (timeouts). */
static int opt_duration(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int positive, uint64_t *out)
{
    const yaml_node_t *n = conf_find(p, m, key);
    uint64_t v;
    char name[160];

    if (n == NULL)
        return 0;
    conf_join(name, sizeof(name), m->path, key);
    if (expect_scalar(p, n, name) != 0)
        return -1;
    if (cr_parse_duration_ms(scalar_str(n), &v) != 0)
        return conf_fail(p, n, "%s: bad duration \"%s\" (expected a number with ms, s, m or h, e.g. 1500ms, 30s, 5m, 1h)", name,
                         scalar_str(n));
    if (positive && v == 0)
        return conf_fail(p, n, "%s: must be greater than 0", name);
    *out = v;
    return 0;
}

static int opt_size(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, size_t *out)
{
    const yaml_node_t *n = conf_find(p, m, key);
    size_t v;
    char name[160];

    if (n == NULL)
        return 0;
    conf_join(name, sizeof(name), m->path, key);
    if (expect_scalar(p, n, name) != 0)
        return -1;
    if (cr_parse_size(scalar_str(n), &v) != 0)
        return conf_fail(p, n, "%s: bad size \"%s\" (expected a number with B, KiB, MiB or GiB, e.g. 512KiB, 8MiB)", name,
                         scalar_str(n));
    *out = v;
    return 0;
}

static int parse_bool_node(cr_conf_parser_t *p, const yaml_node_t *n, const char *name, int *out)
{
    if (expect_scalar(p, n, name) != 0)
        return -1;
    if (parse_bool(scalar_str(n), out) != 0)
        return conf_fail(p, n, "%s: bad boolean \"%s\" (use true/false, yes/no or on/off)", name, scalar_str(n));
    return 0;
}

static int opt_bool(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int *out)
{
    const yaml_node_t *n = conf_find(p, m, key);
    char name[160];
    if (n == NULL)
        return 0;
    return parse_bool_node(p, n, conf_join(name, sizeof(name), m->path, key), out);
}

/* Validates (and may rewrite in place, never lengthening) one string value; returns NULL or a reason. */
typedef const char *(*cr_conf_check_fn)(char *s);

static int opt_string(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int required, cr_conf_check_fn check,
                      char **out)
{
    const yaml_node_t *n = conf_find(p, m, key);
    const char *why;
    char name[160];

    if (n == NULL)
        return required ? conf_fail_missing(p, m, key) : 0;
    conf_join(name, sizeof(name), m->path, key);
    if (expect_scalar(p, n, name) != 0)
        return -1;
    free(*out);
    if ((*out = conf_strdup(scalar_str(n), n->data.scalar.length)) == NULL)
        return conf_fail(p, n, "out of memory");
    if (check != NULL && (why = check(*out)) != NULL)
        return conf_fail(p, n, "%s: %s (\"%s\")", name, why, scalar_str(n));
    return 0;
}

/*
 * Reads a list of strings. The array is attached to *out and *num before it is filled, so the caller's config owns
 * it on failure. `nonempty`: an empty list is an error. Duplicates are errors (after `check` normalized them).
 */
static int opt_string_list(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int nonempty, cr_conf_check_fn check,
                           char ***out, size_t *num)
{
    const yaml_node_t *n = conf_find(p, m, key);
    const yaml_node_item_t *it;
    size_t count, i, j;
    char name[160], ename[192];
    const char *why;

    if (n == NULL)
        return 0;
    conf_join(name, sizeof(name), m->path, key);
    if (expect_list(p, n, name) != 0)
        return -1;
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (nonempty && count == 0)
        return conf_fail(p, n, "%s: the list must not be empty", name);
    if ((*out = conf_calloc(p, n, count, sizeof(char *))) == NULL)
        return -1;
    *num = count;
    for (i = 0, it = n->data.sequence.items.start; i != count; ++i, ++it) {
        const yaml_node_t *e = conf_node(p, *it);
        snprintf(ename, sizeof(ename), "%s[%zu]", name, i);
        if (expect_scalar(p, e, ename) != 0)
            return -1;
        if (((*out)[i] = conf_strdup(scalar_str(e), e->data.scalar.length)) == NULL)
            return conf_fail(p, e, "out of memory");
        if (check != NULL && (why = check((*out)[i])) != NULL)
            return conf_fail(p, e, "%s: %s (\"%s\")", ename, why, scalar_str(e));
        for (j = 0; j != i; ++j)
            if (strcmp((*out)[j], (*out)[i]) == 0)
                return conf_fail(p, e, "%s: duplicate entry \"%s\"", ename, scalar_str(e));
    }
    return 0;
}

/* ---- string validators ---- */

static void lowercase(char *s)
{
    for (; *s != '\0'; ++s)
        if (*s >= 'A' && *s <= 'Z')
            *s += 'a' - 'A';
}

static int has_ctl_or_space(const char *s)
{
    for (; *s != '\0'; ++s)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return 1;
    return 0;
}

static const char *check_header_name(char *s)
{
    const char *q;
    for (q = s; *q != '\0'; ++q)
        if (!cr_is_tchar((unsigned char)*q))
            return "not a valid header name";
    lowercase(s);
    return NULL;
}

static const char *check_query_name(char *s)
{
    if (has_ctl_or_space(s) || strpbrk(s, "&=#?") != NULL)
        return "a query parameter name must not contain spaces, control characters, '&', '=', '#' or '?'";
    return NULL;
}

/* A compress.types pattern in one of the forms cr_media_type_compressible() matches (encoding.h); lower-cased. */
static const char *check_media_type(char *s)
{
    lowercase(s);
    return cr_media_pattern_check(s);
}

/* One of compress.encodings: "br" or "gzip" (any case; lower-cased in place). */
static const char *check_encoding(char *s)
{
    lowercase(s);
    if (strcmp(s, "br") != 0 && strcmp(s, "gzip") != 0)
        return "unknown encoding (expected br or gzip)";
    return NULL;
}

/* A route's path, rewritten in place to the match form requests are compared in (cr_urlpath_match_form: "/a/" is "/a"). */
static const char *check_match_path(char *s)
{
    char buf[4096];
    int ambiguous, n;

    if (s[0] != '/')
        return "a path must start with '/'";
    if (has_ctl_or_space(s) || strpbrk(s, "?#") != NULL)
        return "a path must not contain spaces, control characters, '?' or '#'";
    if ((n = cr_urlpath_match_form(cr_str(s, strlen(s)), buf, sizeof(buf), &ambiguous)) < 0)
        return "the path is too long";
    if (ambiguous)
        return "a path must not contain \"..\", backslashes, or invalid or double escapes";
    memcpy(s, buf, (size_t)n + 1); /* never longer than the input */
    return NULL;
}

/* A path, a prefix ending in '*', or a template with {name} placeholders. */
static const char *check_invalidate(char *s)
{
    const char *q;
    if (s[0] != '/')
        return "a path must start with '/'";
    if (has_ctl_or_space(s) || strpbrk(s, "?#") != NULL)
        return "a path must not contain spaces, control characters, '?' or '#'";
    for (q = s; *q != '\0'; ++q) {
        if (*q == '*' && q[1] != '\0')
            return "'*' is only allowed at the end";
        if (*q == '}')
            return "unbalanced '}'";
        if (*q == '{') {
            const char *name = ++q;
            while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_')
                ++q;
            if (*q != '}' || q == name)
                return "a placeholder is {name} with letters, digits and '_'";
        }
    }
    return NULL;
}

static const char *check_header_value(char *s)
{
    for (; *s != '\0'; ++s)
        if (((unsigned char)*s < 0x20 && *s != '\t') || (unsigned char)*s == 0x7f)
            return "a header value must not contain control characters";
    return NULL;
}

static const char *check_env_name(char *s)
{
    const char *q;
    for (q = s; *q != '\0'; ++q)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_'))
            return "an environment variable name has only letters, digits and '_'";
    return NULL;
}

/* ---- addresses ---- */

/*
 * Parses "host:port", "[v6]:port" (or, with `default_port` != 0, without ":port") into a numeric sockaddr using
 * inet_pton only; "localhost" is 127.0.0.1. With `allow_names`, any DNS-like host name is accepted and not resolved
 * (ss may then be left zeroed). Copies the bare host (no brackets) into hostbuf. Returns NULL or the reason.
 */
static const char *parse_hostport(const char *s, size_t len, uint16_t default_port, int allow_names, char *hostbuf,
                                  size_t hostbufsize, struct sockaddr_storage *ss, socklen_t *sslen, uint16_t *portout)
{
    const char *host, *hostend, *rest, *end = s + len, *pend;
    uint64_t port = default_port;
    size_t hostlen, i;
    char hbuf[INET6_ADDRSTRLEN + 1], pbuf[8];

    if (len != 0 && s[0] == '[') {
        host = s + 1;
        if ((hostend = memchr(host, ']', (size_t)(end - host))) == NULL)
            return "missing ']' after an IPv6 address";
        rest = hostend + 1;
    } else {
        host = s;
        hostend = memchr(s, ':', len);
        if (hostend == NULL)
            hostend = end;
        else if (memchr(hostend + 1, ':', (size_t)(end - hostend - 1)) != NULL)
            return "an IPv6 address must be written in brackets, e.g. [::1]:8081";
        rest = hostend;
    }
    if ((hostlen = (size_t)(hostend - host)) == 0)
        return "the host is empty";
    if (rest == end) {
        if (default_port == 0)
            return "expected host:port";
    } else {
        if (*rest != ':' || (size_t)(end - rest - 1) >= sizeof(pbuf) || rest + 1 == end)
            return "expected host:port with a numeric port";
        memcpy(pbuf, rest + 1, (size_t)(end - rest - 1));
        pbuf[end - rest - 1] = '\0';
        if (parse_digits(pbuf, &port, &pend) != 0 || *pend != '\0')
            return "expected host:port with a numeric port";
        if (port < 1 || port > 65535)
            return "port out of range (1..65535)";
    }
    if (hostlen >= hostbufsize)
        return "the host is too long";
    memcpy(hostbuf, host, hostlen);
    hostbuf[hostlen] = '\0';
    *portout = (uint16_t)port;

    memset(ss, 0, sizeof(*ss));
    *sslen = 0;
    if (hostlen < sizeof(hbuf)) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        memcpy(hbuf, host, hostlen);
        hbuf[hostlen] = '\0';
        if (s[0] == '[') {
            if (inet_pton(AF_INET6, hbuf, &sin6->sin6_addr) != 1)
                return "not a numeric IPv6 address inside the brackets";
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)port);
            *sslen = sizeof(*sin6);
            return NULL;
        }
        if (strcmp(hbuf, "localhost") == 0)
            strcpy(hbuf, "127.0.0.1");
        if (inet_pton(AF_INET, hbuf, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)port);
            *sslen = sizeof(*sin);
            return NULL;
        }
    } else if (s[0] == '[') {
        return "not a numeric IPv6 address inside the brackets";
    }
    if (!allow_names)
        return "the host must be a numeric IPv4 address, a bracketed IPv6 address or localhost";
    for (i = 0; i != hostlen; ++i) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return "not a valid host name";
    }
    return NULL;
}

/* A listen/admin address: numeric only. Fails with the reason at the node. */
static int parse_address_node(cr_conf_parser_t *p, const yaml_node_t *n, const char *name, struct sockaddr_storage *ss,
                              socklen_t *sslen)
{
    char host[256];
    uint16_t port;
    const char *why;
    if (expect_scalar(p, n, name) != 0)
        return -1;
    if ((why = parse_hostport(scalar_str(n), n->data.scalar.length, 0, 0, host, sizeof(host), ss, sslen, &port)) != NULL)
        return conf_fail(p, n, "%s: bad address \"%s\": %s", name, scalar_str(n), why);
    return 0;
}

static int sockaddr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

/* ---- sections ---- */

static int parse_listens(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    const yaml_node_item_t *it;
    size_t count, i, j;
    char path[64], name[96];

    if (expect_list(p, n, "listen") != 0)
        return -1;
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return conf_fail(p, n, "listen: at least one listener is required");
    if ((cfg->listens = conf_calloc(p, n, count, sizeof(*cfg->listens))) == NULL)
        return -1;
    cfg->num_listens = count;

    for (i = 0, it = n->data.sequence.items.start; i != count; ++i, ++it) {
        cr_listen_config_t *l = cfg->listens + i;
        cr_conf_map_t m = {conf_node(p, *it), path};
        const yaml_node_t *addr, *tls;

        snprintf(path, sizeof(path), "listen[%zu]", i);
        if (check_mapping(p, m.node, SEC_LISTEN, path, path) != 0)
            return -1;
        if (opt_string(p, &m, "address", 1, NULL, &l->address) != 0)
            return -1;
        addr = conf_find(p, &m, "address");
        if (parse_address_node(p, addr, conf_join(name, sizeof(name), path, "address"), &l->addr, &l->addrlen) != 0)
            return -1;
        for (j = 0; j != i; ++j)
            if (sockaddr_same(&cfg->listens[j].addr, &l->addr))
                return conf_fail(p, addr, "%s: duplicate listen address \"%s\" (same as listen[%zu], \"%s\")", name, l->address,
                                 j, cfg->listens[j].address);
        if ((tls = conf_find(p, &m, "tls")) != NULL) {
            char tpath[80];
            cr_conf_map_t tm = {tls, tpath};
            conf_join(tpath, sizeof(tpath), path, "tls");
            if (check_mapping(p, tls, SEC_TLS, tpath, tpath) != 0)
                return -1;
            if (opt_string(p, &tm, "certificate", 1, NULL, &l->tls_certificate) != 0 ||
                opt_string(p, &tm, "key", 1, NULL, &l->tls_key) != 0)
                return -1;
            l->tls_certificate_pos = pos_of(conf_find(p, &tm, "certificate"));
            l->tls_key_pos = pos_of(conf_find(p, &tm, "key"));
        }
    }
    return 0;
}

static int parse_upstream(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "upstream"};
    const yaml_node_t *urln;
    const char *url, *auth, *authend, *why;
    char host[256];
    uint64_t maxconn = cfg->upstream.max_connections;

    if (check_mapping(p, n, SEC_UPSTREAM, "upstream", "upstream") != 0)
        return -1;
    if (opt_string(p, &m, "url", 1, NULL, &cfg->upstream.url) != 0)
        return -1;
    urln = conf_find(p, &m, "url");
    url = cfg->upstream.url;
    if (strncasecmp(url, "https://", 8) == 0)
        return conf_fail(p, urln, "upstream.url: https is not supported for the upstream; use http:// (\"%s\")", url);
    if (strncasecmp(url, "http://", 7) != 0)
        return conf_fail(p, urln, "upstream.url: must start with http:// (\"%s\")", url);
    auth = url + 7;
    authend = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(authend - auth)) != NULL)
        return conf_fail(p, urln, "upstream.url: user information is not allowed (\"%s\")", url);
    if (*authend != '\0' && strcmp(authend, "/") != 0)
        return conf_fail(p, urln, "upstream.url: must not have a path, query or fragment (\"%s\")", url);
    if ((why = parse_hostport(auth, (size_t)(authend - auth), 80, 0, host, sizeof(host), &cfg->upstream.addr,
                              &cfg->upstream.addrlen, &cfg->upstream.port)) != NULL)
        return conf_fail(p, urln, "upstream.url: bad address in \"%s\": %s", url, why);
    if ((cfg->upstream.host = conf_strdup(host, strlen(host))) == NULL)
        return conf_fail(p, urln, "out of memory");

    if (opt_uint(p, &m, "max_connections", 1, CR_CONFIG_MAX_CONNECTIONS, &maxconn) != 0)
        return -1;
    cfg->upstream.max_connections = (size_t)maxconn;
    if (maxconn < cfg->threads) {
        /* the cap is split over the threads, each of which needs at least one connection */
        const yaml_node_t *mc = conf_find(p, &m, "max_connections");
        return conf_fail(p, mc != NULL ? mc : n,
                         "upstream.max_connections (%llu) is less than threads (%u): each thread needs at least one "
                         "connection; raise max_connections or lower threads",
                         (unsigned long long)maxconn, cfg->threads);
    }
    if (opt_duration(p, &m, "connect_timeout", 1, &cfg->upstream.connect_timeout_ms) != 0 ||
        opt_duration(p, &m, "timeout", 1, &cfg->upstream.timeout_ms) != 0 ||
        opt_duration(p, &m, "queue_timeout", 1, &cfg->upstream.queue_timeout_ms) != 0)
        return -1;
    return 0;
}

static int parse_admin(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "admin"};
    const yaml_node_t *addr, *env, *file;
    size_t i;

    if (check_mapping(p, n, SEC_ADMIN, "admin", "admin") != 0)
        return -1;
    if (opt_string(p, &m, "address", 1, NULL, &cfg->admin.address) != 0)
        return -1;
    addr = conf_find(p, &m, "address");
    if (parse_address_node(p, addr, "admin.address", &cfg->admin.addr, &cfg->admin.addrlen) != 0)
        return -1;
    for (i = 0; i != cfg->num_listens; ++i)
        if (sockaddr_same(&cfg->listens[i].addr, &cfg->admin.addr))
            return conf_fail(p, addr, "admin.address: \"%s\" is already used by listen[%zu]", cfg->admin.address, i);
    if ((env = conf_find_key(p, &m, "token_env")) != NULL && (file = conf_find_key(p, &m, "token_file")) != NULL)
        return conf_fail(p, env->start_mark.index > file->start_mark.index ? env : file,
                         "admin: both token_file and token_env are set; use at most one");
    if (opt_string(p, &m, "token_file", 0, NULL, &cfg->admin.token_file) != 0 ||
        opt_string(p, &m, "token_env", 0, check_env_name, &cfg->admin.token_env) != 0)
        return -1;
    cfg->admin.token_file_pos = pos_of(conf_find(p, &m, "token_file"));
    cfg->admin.token_env_pos = pos_of(conf_find(p, &m, "token_env"));
    return 0;
}

/* A non-empty header name, lower-cased in place. */
static const char *check_surrogate_key_header(char *s)
{
    if (s[0] == '\0')
        return "not a valid header name";
    return check_header_name(s);
}

static int parse_cache(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "cache"};
    const yaml_node_t *mem, *maxobj;

    if (check_mapping(p, n, SEC_CACHE, "cache", "cache") != 0)
        return -1;
    if (opt_size(p, &m, "memory", &cfg->cache.memory) != 0 || opt_size(p, &m, "max_object_size", &cfg->cache.max_object_size) != 0)
        return -1;
    if (opt_string(p, &m, "surrogate_key_header", 0, check_surrogate_key_header, &cfg->cache.surrogate_key_header) != 0 ||
        opt_bool(p, &m, "keep_surrogate_key", &cfg->cache.keep_surrogate_key) != 0)
        return -1;
    mem = conf_find(p, &m, "memory");
    maxobj = conf_find(p, &m, "max_object_size");
    if (cfg->cache.memory < CR_CONFIG_MIN_MEMORY)
        return conf_fail(p, mem, "cache.memory: %s is out of range (at least 1MiB)", scalar_str(mem));
    if (maxobj == NULL) {
        /* the default must not exceed a small explicit memory */
        cfg->cache.max_object_size = CR_MIN(cfg->cache.max_object_size, cfg->cache.memory);
    } else if (cfg->cache.max_object_size == 0) {
        return conf_fail(p, maxobj, "cache.max_object_size: must be greater than 0");
    } else if (cfg->cache.max_object_size > cfg->cache.memory) {
        return conf_fail(p, maxobj, "cache.max_object_size: %s is out of range (at most cache.memory, %zu bytes)",
                         scalar_str(maxobj), cfg->cache.memory);
    }
    return 0;
}

static const char *check_server(char *s)
{
    char host[256];
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint16_t port;
    return parse_hostport(s, strlen(s), 0, 1, host, sizeof(host), &ss, &sslen, &port);
}

static int parse_tier(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "tier"}, mm = {NULL, "tier.memcached"};

    if (check_mapping(p, n, SEC_TIER, "tier", "tier") != 0)
        return -1;
    if ((mm.node = conf_find(p, &m, "memcached")) == NULL)
        return 0;
    if (check_mapping(p, mm.node, SEC_MEMCACHED, mm.path, mm.path) != 0)
        return -1;
    if (conf_find(p, &mm, "servers") == NULL)
        return conf_fail_missing(p, &mm, "servers");
    if (opt_string_list(p, &mm, "servers", 1, check_server, &cfg->tier.memcached_servers, &cfg->tier.num_memcached_servers) != 0)
        return -1;
    return opt_duration(p, &mm, "timeout", 1, &cfg->tier.memcached_timeout_ms);
}

/*
 * limits: bounds on what corral accepts from its peers. One row per key: its kind, where it lives in cfg->limits, its
 * default and its range. The README's "Limits" table lists the same rows.
 */
typedef enum en_cr_limit_kind_t { LIMIT_SIZE, LIMIT_COUNT, LIMIT_DURATION } cr_limit_kind_t;

static const struct {
    const char *key;
    cr_limit_kind_t kind;
    size_t offset;
    uint64_t def, min, max;
    const char *range; /* for the message */
} limit_rows[] = {
#define LIMIT_ROW(key, kind, field, def, min, max, range) {key, kind, offsetof(cr_config_t, limits.field), def, min, max, range}
    LIMIT_ROW("request_headers", LIMIT_SIZE, request_headers, 64 << 10, 1 << 10, 1 << 20, "1KiB to 1MiB"),
    LIMIT_ROW("request_body", LIMIT_SIZE, request_body, 16 << 20, 1 << 10, 1 << 30, "1KiB to 1GiB"),
    LIMIT_ROW("upstream_header_size", LIMIT_SIZE, upstream_header_size, 64 << 10, CR_CONFIG_MIN_UPSTREAM_HEADER_SIZE,
              CR_CONFIG_MAX_UPSTREAM_HEADER_SIZE, "1KiB to 1MiB"),
    LIMIT_ROW("admin_body", LIMIT_SIZE, admin_body, 1 << 20, 1 << 10, 64 << 20, "1KiB to 64MiB"),
    LIMIT_ROW("response_buffer", LIMIT_SIZE, response_buffer, 1 << 20, 16 << 10, 64 << 20, "16KiB to 64MiB"),
    LIMIT_ROW("connections", LIMIT_COUNT, connections, 10000, 16, 1000000, "16 to 1000000"),
    LIMIT_ROW("streams_per_connection", LIMIT_COUNT, streams_per_connection, 100, 1, 1000, "1 to 1000"),
    LIMIT_ROW("variants_per_key", LIMIT_COUNT, variants_per_key, 32, 1, 1024, "1 to 1024"),
    LIMIT_ROW("queued_fills", LIMIT_COUNT, queued_fills, 1024, 1, 1000000, "1 to 1000000"),
    LIMIT_ROW("cancels_per_connection", LIMIT_COUNT, cancels_per_connection, 200, 1, 1000000, "1 to 1000000"),
    LIMIT_ROW("cancels_per_address", LIMIT_COUNT, cancels_per_address, 1000, 1, 10000000, "1 to 10000000"),
    LIMIT_ROW("header_timeout", LIMIT_DURATION, header_timeout_ms, 10000, 100, 600000, "100ms to 10m"),
#undef LIMIT_ROW
};

static void set_limit_defaults(cr_config_t *cfg)
{
    for (size_t i = 0; i != sizeof(limit_rows) / sizeof(limit_rows[0]); ++i) {
        char *field = (char *)cfg + limit_rows[i].offset;
        if (limit_rows[i].kind == LIMIT_SIZE)
            *(size_t *)field = (size_t)limit_rows[i].def;
        else
            *(uint64_t *)field = limit_rows[i].def;
    }
}

static int parse_limits(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "limits"};

    if (check_mapping(p, n, SEC_LIMITS, "limits", "limits") != 0)
        return -1;
    for (size_t i = 0; i != sizeof(limit_rows) / sizeof(limit_rows[0]); ++i) {
        const yaml_node_t *vn = conf_find(p, &m, limit_rows[i].key);
        char *field = (char *)cfg + limit_rows[i].offset;
        uint64_t v;
        size_t sz;
        if (vn == NULL)
            continue;
        switch (limit_rows[i].kind) {
        case LIMIT_SIZE:
            if (opt_size(p, &m, limit_rows[i].key, &sz) != 0)
                return -1;
            v = sz;
            break;
        case LIMIT_COUNT:
            if (opt_uint(p, &m, limit_rows[i].key, 0, UINT64_MAX, &v) != 0)
                return -1;
            break;
        default:
            if (opt_duration(p, &m, limit_rows[i].key, 0, &v) != 0)
                return -1;
            break;
        }
        if (v < limit_rows[i].min || v > limit_rows[i].max)
            return conf_fail(p, vn, "limits.%s: %s is out of range (%s)", limit_rows[i].key, scalar_str(vn), limit_rows[i].range);
        if (limit_rows[i].kind == LIMIT_SIZE)
            *(size_t *)field = (size_t)v;
        else
            *(uint64_t *)field = v;
    }
    return 0;
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_match(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *rm)
{
    char path[96], name[128];
    cr_conf_map_t m = {conf_find(p, rm, "match"), path};
    const yaml_node_t *prefix, *exact, *methods;
    const yaml_node_item_t *it;
    size_t i;

    if (m.node == NULL)
        return conf_fail_missing(p, rm, "match");
    conf_join(path, sizeof(path), rm->path, "match");
    if (check_mapping(p, m.node, SEC_MATCH, path, path) != 0)
        return -1;
    prefix = conf_find(p, &m, "prefix");
    exact = conf_find(p, &m, "exact");
    if (prefix != NULL && exact != NULL) {
        const yaml_node_t *pk = conf_find_key(p, &m, "prefix"), *ek = conf_find_key(p, &m, "exact");
        return conf_fail(p, pk->start_mark.index > ek->start_mark.index ? pk : ek,
                         "%s: both prefix and exact are set; use exactly one", path);
    }
    if (prefix == NULL && exact == NULL)
        return conf_fail(p, m.node, "%s: one of prefix or exact is required", path);
    r->match_kind = prefix != NULL ? CR_MATCH_PREFIX : CR_MATCH_EXACT;
    if (opt_string(p, &m, prefix != NULL ? "prefix" : "exact", 1, check_match_path, &r->match_path) != 0)
        return -1;
    r->match_path_len = strlen(r->match_path);

    if ((methods = conf_find(p, &m, "methods")) == NULL)
        return 0;
    conf_join(name, sizeof(name), path, "methods");
    if (expect_list(p, methods, name) != 0)
        return -1;
    if (methods->data.sequence.items.top == methods->data.sequence.items.start)
        return conf_fail(p, methods, "%s: the list must not be empty", name);
    r->methods = 0;
    for (i = 0, it = methods->data.sequence.items.start; it < methods->data.sequence.items.top; ++i, ++it) {
        const yaml_node_t *e = conf_node(p, *it);
        char ename[160];
        unsigned bit;
        snprintf(ename, sizeof(ename), "%s[%zu]", name, i);
        if (expect_scalar(p, e, ename) != 0)
            return -1;
        if ((bit = cr_method_bit(scalar_str(e), e->data.scalar.length)) == CR_METHOD_OTHER)
            return conf_fail(p, e, "%s: unknown method \"%s\" (allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)", ename,
                             scalar_str(e));
        r->methods |= bit;
    }
    return 0;
}

static int parse_key(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *rm)
{
    char path[96];
    cr_conf_map_t m = {conf_find(p, rm, "key"), path};
    const yaml_node_t *q;

    if (m.node == NULL)
        return 0;
    conf_join(path, sizeof(path), rm->path, "key");
    if (check_mapping(p, m.node, SEC_KEY, path, path) != 0)
        return -1;
    if ((q = conf_find(p, &m, "query")) != NULL) {
        if (q->type == YAML_SEQUENCE_NODE) {
            r->key_query = CR_KEY_QUERY_LIST;
            if (opt_string_list(p, &m, "query", 0, check_query_name, &r->key_query_names, &r->num_key_query_names) != 0)
                return -1;
            qsort(r->key_query_names, r->num_key_query_names, sizeof(char *), strcmp_ptr);
        } else if (q->type == YAML_SCALAR_NODE && strcmp(scalar_str(q), "all") == 0) {
            r->key_query = CR_KEY_QUERY_ALL;
        } else if (q->type == YAML_SCALAR_NODE && strcmp(scalar_str(q), "none") == 0) {
            r->key_query = CR_KEY_QUERY_NONE;
        } else if (q->type == YAML_SCALAR_NODE && !node_is_null(q)) {
            return conf_fail(p, q, "%s.query: expected all, none or a list of parameter names, found \"%s\"", path, scalar_str(q));
        } else {
            return conf_fail(p, q, "%s.query: expected all, none or a list of parameter names, found %s", path, node_kind(q));
        }
    }
    return opt_string_list(p, &m, "headers", 0, check_header_name, &r->key_headers, &r->num_key_headers);
}

/* `coalesce: bool` or `coalesce: {timeout, max_waiters, pass_ttl}` (a mapping turns coalescing on). */
static int parse_coalesce(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *rm)
{
    char path[96];
    cr_conf_map_t m = {conf_find(p, rm, "coalesce"), path};
    uint64_t waiters = r->coalesce_max_waiters;

    if (m.node == NULL)
        return 0;
    conf_join(path, sizeof(path), rm->path, "coalesce");
    if (m.node->type != YAML_MAPPING_NODE) {
        if (m.node->type != YAML_SCALAR_NODE || node_is_null(m.node))
            return conf_fail(p, m.node, "%s: expected true, false or a mapping, found %s", path, node_kind(m.node));
        return parse_bool_node(p, m.node, path, &r->coalesce);
    }
    if (check_mapping(p, m.node, SEC_COALESCE, path, path) != 0)
        return -1;
    r->coalesce = 1;
    if (opt_duration(p, &m, "timeout", 1, &r->coalesce_timeout_ms) != 0 ||
        opt_uint(p, &m, "max_waiters", 1, CR_CONFIG_MAX_WAITERS, &waiters) != 0 ||
        opt_duration(p, &m, "pass_ttl", 0, &r->coalesce_pass_ttl_ms) != 0)
        return -1;
    r->coalesce_max_waiters = (size_t)waiters;
    return 0;
}

/* `compress.encodings`: a non-empty list of distinct "br" / "gzip" into the route's bit set. Returns 0 or -1. */
static int parse_compress_encodings(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *m)
{
    char **names = NULL;
    size_t num = 0, i;
    int rc = opt_string_list(p, m, "encodings", 1, check_encoding, &names, &num);

    if (rc == 0 && names != NULL) {
        r->compress_encodings = 0;
        for (i = 0; i != num; ++i)
            r->compress_encodings |= CR_ENC_BIT(strcmp(names[i], "br") == 0 ? CR_ENC_BR : CR_ENC_GZIP);
    }
    for (i = 0; i != num; ++i)
        free(names[i]);
    free(names);
    return rc;
}

/* `compress: bool` or `compress: {types, min_size, encodings, brotli_quality, gzip_level}` (a mapping turns it on). */
static int parse_compress(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *rm)
{
    char path[96];
    cr_conf_map_t m = {conf_find(p, rm, "compress"), path};
    uint64_t quality = (uint64_t)r->brotli_quality, level = (uint64_t)r->gzip_level;

    if (m.node == NULL)
        return 0;
    conf_join(path, sizeof(path), rm->path, "compress");
    if (m.node->type != YAML_MAPPING_NODE) {
        if (m.node->type != YAML_SCALAR_NODE || node_is_null(m.node))
            return conf_fail(p, m.node, "%s: expected true, false or a mapping, found %s", path, node_kind(m.node));
        return parse_bool_node(p, m.node, path, &r->compress);
    }
    if (check_mapping(p, m.node, SEC_COMPRESS, path, path) != 0)
        return -1;
    r->compress = 1;
    if (conf_find(p, &m, "types") != NULL) {
        size_t i;
        for (i = 0; i != r->num_compress_types; ++i)
            free(r->compress_types[i]);
        free(r->compress_types);
        r->compress_types = NULL;
        r->num_compress_types = 0;
        if (opt_string_list(p, &m, "types", 1, check_media_type, &r->compress_types, &r->num_compress_types) != 0)
            return -1;
    }
    if (opt_size(p, &m, "min_size", &r->compress_min_size) != 0 || parse_compress_encodings(p, r, &m) != 0 ||
        opt_uint(p, &m, "brotli_quality", CR_BROTLI_QUALITY_MIN, CR_BROTLI_QUALITY_MAX, &quality) != 0 ||
        opt_uint(p, &m, "gzip_level", CR_GZIP_LEVEL_MIN, CR_GZIP_LEVEL_MAX, &level) != 0)
        return -1;
    r->brotli_quality = (int)quality;
    r->gzip_level = (int)level;
    return 0;
}

/* A cookie name (RFC 6265 4.1.1 cookie-name is a token); kept as written (names are case-sensitive). */
static const char *check_cookie_name(char *s)
{
    const char *q;
    if (s[0] == '\0')
        return "not a valid cookie name";
    for (q = s; *q != '\0'; ++q)
        if (!cr_is_tchar((unsigned char)*q))
            return "not a valid cookie name";
    return NULL;
}

/* `forward_headers: [names]` (each also joins key_headers) and `cookies: pass | ignore | [names]`. Returns 0 or -1. */
static int parse_forward_and_cookies(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *m)
{
    const yaml_node_t *c = conf_find(p, m, "cookies");
    size_t i, j;

    if (opt_string_list(p, m, "forward_headers", 0, check_header_name, &r->forward_headers, &r->num_forward_headers) != 0)
        return -1;
    for (i = 0; i != r->num_forward_headers; ++i) {
        char **kh;
        if (strcmp(r->forward_headers[i], "cookie") == 0)
            return conf_fail(p, conf_find(p, m, "forward_headers"), "%s.forward_headers: cookie is set with cookies:, not here",
                             m->path);
        for (j = 0; j != r->num_key_headers && strcmp(r->key_headers[j], r->forward_headers[i]) != 0; ++j)
            ;
        if (j != r->num_key_headers)
            continue;
        if ((kh = realloc(r->key_headers, (r->num_key_headers + 1) * sizeof(char *))) == NULL)
            return conf_fail(p, m->node, "out of memory");
        r->key_headers = kh;
        if ((kh[r->num_key_headers] = conf_strdup(r->forward_headers[i], strlen(r->forward_headers[i]))) == NULL)
            return conf_fail(p, m->node, "out of memory");
        ++r->num_key_headers;
    }
    if (c == NULL)
        return 0;
    if (c->type == YAML_SEQUENCE_NODE) {
        r->cookies = CR_COOKIES_LIST;
        return opt_string_list(p, m, "cookies", 1, check_cookie_name, &r->cookie_names, &r->num_cookie_names);
    }
    if (c->type == YAML_SCALAR_NODE && strcmp(scalar_str(c), "pass") == 0)
        r->cookies = CR_COOKIES_PASS;
    else if (c->type == YAML_SCALAR_NODE && strcmp(scalar_str(c), "ignore") == 0)
        r->cookies = CR_COOKIES_IGNORE;
    else
        return conf_fail(p, c, "%s.cookies: expected pass, ignore or a list of cookie names, found %s%s%s", m->path,
                         c->type == YAML_SCALAR_NODE && !node_is_null(c) ? "\"" : "",
                         c->type == YAML_SCALAR_NODE && !node_is_null(c) ? scalar_str(c) : node_kind(c),
                         c->type == YAML_SCALAR_NODE && !node_is_null(c) ? "\"" : "");
    return 0;
}

static int parse_route(cr_conf_parser_t *p, cr_route_config_t *r, const yaml_node_t *n, size_t index)
{
    char path[48];
    cr_conf_map_t m = {n, path};
    const yaml_node_t *v;
    size_t i;

    snprintf(path, sizeof(path), "routes[%zu]", index);
    r->line = (unsigned)n->start_mark.line + 1;
    r->methods = CR_METHOD_ALL;
    r->cache = 1;
    r->key_query = CR_KEY_QUERY_ALL;
    r->coalesce = 1;
    r->coalesce_timeout_ms = 5000;
    r->coalesce_max_waiters = 10000;
    r->coalesce_pass_ttl_ms = 10000;
    r->compress_min_size = 256;
    r->compress_encodings = CR_ENC_BIT(CR_ENC_GZIP) | CR_ENC_BIT(CR_ENC_BR);
    r->brotli_quality = 5;
    r->gzip_level = 6;
    if ((r->force_cache_control = conf_strdup("no-cache", 8)) == NULL)
        return conf_fail(p, n, "out of memory");
    if ((r->compress_types = conf_calloc(p, n, CR_ARRAY_SIZE(default_compress_types), sizeof(char *))) == NULL)
        return -1;
    r->num_compress_types = CR_ARRAY_SIZE(default_compress_types);
    for (i = 0; i != r->num_compress_types; ++i)
        if ((r->compress_types[i] = conf_strdup(default_compress_types[i], strlen(default_compress_types[i]))) == NULL)
            return conf_fail(p, n, "out of memory");

    if (check_mapping(p, n, SEC_ROUTE, path, path) != 0)
        return -1;
    if (parse_match(p, r, &m) != 0)
        return -1;
    if (opt_bool(p, &m, "cache", &r->cache) != 0)
        return -1;
    r->compress = r->cache;
    if (opt_duration(p, &m, "ttl", 0, &r->ttl_ms) != 0 || opt_duration(p, &m, "max_ttl", 0, &r->max_ttl_ms) != 0 ||
        opt_duration(p, &m, "force_ttl", 0, &r->force_ttl_ms) != 0 ||
        opt_bool(p, &m, "ignore_no_store", &r->ignore_no_store) != 0 ||
        opt_string(p, &m, "force_cache_control", 0, check_header_value, &r->force_cache_control) != 0 ||
        opt_bool(p, &m, "heuristic_freshness", &r->heuristic_freshness) != 0 ||
        opt_bool(p, &m, "allow_set_cookie", &r->allow_set_cookie) != 0 ||
        opt_duration(p, &m, "stale_while_revalidate", 0, &r->stale_while_revalidate_ms) != 0 ||
        opt_duration(p, &m, "stale_if_error", 0, &r->stale_if_error_ms) != 0)
        return -1;
    if (r->force_ttl_ms == 0) {
        if (r->ignore_no_store && (v = conf_find(p, &m, "ignore_no_store")) != NULL)
            return conf_fail(p, v, "%s.ignore_no_store: only applies with force_ttl, which is not set", path);
        if ((v = conf_find(p, &m, "force_cache_control")) != NULL)
            return conf_fail(p, v, "%s.force_cache_control: only applies with force_ttl, which is not set", path);
    }
    if (parse_key(p, r, &m) != 0 || parse_coalesce(p, r, &m) != 0 || parse_compress(p, r, &m) != 0 ||
        parse_forward_and_cookies(p, r, &m) != 0)
        return -1;
    return opt_string_list(p, &m, "invalidate", 0, check_invalidate, &r->invalidate, &r->num_invalidate);
}

static int parse_routes(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    const yaml_node_item_t *it;
    size_t count, i;

    if (expect_list(p, n, "routes") != 0)
        return -1;
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return 0;
    if ((cfg->routes = conf_calloc(p, n, count, sizeof(*cfg->routes))) == NULL)
        return -1;
    cfg->num_routes = count;
    for (i = 0, it = n->data.sequence.items.start; i != count; ++i, ++it)
        if (parse_route(p, cfg->routes + i, conf_node(p, *it), i) != 0)
            return -1;
    return 0;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CR_CONFIG_MAX_THREADS ? CR_CONFIG_MAX_THREADS : (unsigned)n;
}

/* Fills cfg from the document root. Returns 0, or -1 with the error reported. */
static int parse_root(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *root)
{
    cr_conf_map_t m = {root, ""};
    const yaml_node_t *n;
    uint64_t threads = default_threads();

    cfg->threads = (unsigned)threads;
    cfg->upstream.max_connections = 64;
    cfg->upstream.connect_timeout_ms = 1000;
    cfg->upstream.timeout_ms = 30000;
    cfg->upstream.queue_timeout_ms = 5000;
    cfg->cache.memory = (size_t)256 << 20;
    cfg->cache.max_object_size = (size_t)8 << 20;
    if ((cfg->cache.surrogate_key_header = conf_strdup("surrogate-key", 13)) == NULL)
        return conf_fail_at(p, 1, 1, "out of memory");
    cfg->tier.memcached_timeout_ms = 20;
    set_limit_defaults(cfg);

    if (root == NULL)
        return conf_fail_at(p, 1, 1, "missing required key \"listen\" at the top level (the file is empty)");
    if (root->type != YAML_MAPPING_NODE)
        return conf_fail(p, root, "the configuration must be a mapping, found %s", node_kind(root));
    if (check_mapping(p, root, SEC_TOP, "the top level", "the top level") != 0)
        return -1;
    if (opt_uint(p, &m, "threads", 1, CR_CONFIG_MAX_THREADS, &threads) != 0)
        return -1;
    cfg->threads = (unsigned)threads;
    if ((n = conf_find(p, &m, "listen")) == NULL)
        return conf_fail_missing(p, &m, "listen");
    if (parse_listens(p, cfg, n) != 0)
        return -1;
    if ((n = conf_find(p, &m, "upstream")) == NULL)
        return conf_fail_missing(p, &m, "upstream");
    if (parse_upstream(p, cfg, n) != 0)
        return -1;
    if ((n = conf_find(p, &m, "admin")) != NULL && parse_admin(p, cfg, n) != 0)
        return -1;
    if ((n = conf_find(p, &m, "cache")) != NULL && parse_cache(p, cfg, n) != 0)
        return -1;
    if ((n = conf_find(p, &m, "tier")) != NULL && parse_tier(p, cfg, n) != 0)
        return -1;
    if ((n = conf_find(p, &m, "limits")) != NULL && parse_limits(p, cfg, n) != 0)
        return -1;
    if ((n = conf_find(p, &m, "routes")) != NULL && parse_routes(p, cfg, n) != 0)
        return -1;
    return 0;
}

/* ---- public API ---- */

cr_config_t *cr_config_load_string(const char *name, const char *yaml, size_t len, char *errbuf, size_t errbufsize)
{
    cr_conf_parser_t p = {name != NULL ? name : "<string>", NULL, errbuf, errbufsize};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    const yaml_node_t *extra_root;
    cr_config_t *cfg = NULL;
    int have_doc = 0;

    if (errbuf != NULL && errbufsize != 0)
        errbuf[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        conf_fail_at(&p, 1, 1, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        conf_fail_yaml(&p, &parser, yaml, len);
        goto Exit;
    }
    have_doc = 1;
    p.doc = &doc;

    /* a second document would be silently ignored: refuse it */
    if (!yaml_parser_load(&parser, &extra)) {
        conf_fail_yaml(&p, &parser, yaml, len);
        goto Exit;
    }
    if ((extra_root = yaml_document_get_root_node(&extra)) != NULL) {
        conf_fail_at(&p, extra_root->start_mark.line + 1, extra_root->start_mark.column + 1,
                     "only one YAML document is allowed in a configuration file");
        yaml_document_delete(&extra);
        goto Exit;
    }
    yaml_document_delete(&extra);

    if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
        conf_fail_at(&p, 1, 1, "out of memory");
        goto Exit;
    }
    cfg->magic = CR_CONFIG_MAGIC;
    cfg->refs = 1;
    if ((cfg->path = conf_strdup(p.name, strlen(p.name))) == NULL) {
        conf_fail_at(&p, 1, 1, "out of memory");
        cr_config_free(&cfg);
        goto Exit;
    }
    if (parse_root(&p, cfg, yaml_document_get_root_node(&doc)) != 0)
        cr_config_free(&cfg);

Exit:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return cfg;
}

cr_config_t *cr_config_load(const char *path, char *errbuf, size_t errbufsize)
{
    cr_conf_parser_t p = {path, NULL, errbuf, errbufsize};
    FILE *fp;
    char *buf = NULL, *nbuf;
    size_t len = 0, cap = 0, n;
    cr_config_t *cfg = NULL;

    if ((fp = fopen(path, "rb")) == NULL) {
        conf_fail_at(&p, 1, 1, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CR_CONFIG_MAX_FILE_SIZE) {
                conf_fail_at(&p, 1, 1, "file too large (more than %u bytes)", CR_CONFIG_MAX_FILE_SIZE);
                goto Exit;
            }
            cap = cap == 0 ? 8192 : cap * 2;
            if ((nbuf = realloc(buf, cap)) == NULL) {
                conf_fail_at(&p, 1, 1, "out of memory");
                goto Exit;
            }
            buf = nbuf;
        }
        n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0) {
            if (ferror(fp)) {
                conf_fail_at(&p, 1, 1, "read error: %s", strerror(errno));
                goto Exit;
            }
            break;
        }
    }
    cfg = cr_config_load_string(path, buf != NULL ? buf : "", len, errbuf, errbufsize);

Exit:
    fclose(fp);
    free(buf);
    return cfg;
}

static void free_strv(char **v, size_t n)
{
    size_t i;
    if (v == NULL)
        return;
    for (i = 0; i != n; ++i)
        free(v[i]);
    free(v);
}

void cr_config_free(cr_config_t **cfgp)
{
    cr_config_t *cfg;
    size_t i;

    if (cfgp == NULL || (cfg = *cfgp) == NULL)
        return;
    CR_CHECK_OBJ_NOTNULL(cfg, CR_CONFIG_MAGIC);
    for (i = 0; i != cfg->num_listens; ++i) {
        free(cfg->listens[i].address);
        free(cfg->listens[i].tls_certificate);
        free(cfg->listens[i].tls_key);
    }
    free(cfg->listens);
    free(cfg->upstream.url);
    free(cfg->upstream.host);
    free(cfg->admin.address);
    free(cfg->admin.token_file);
    free(cfg->admin.token_env);
    free(cfg->cache.surrogate_key_header);
    free_strv(cfg->tier.memcached_servers, cfg->tier.num_memcached_servers);
    for (i = 0; i != cfg->num_routes; ++i) {
        cr_route_config_t *r = cfg->routes + i;
        free(r->match_path);
        free(r->force_cache_control);
        free_strv(r->key_query_names, r->num_key_query_names);
        free_strv(r->key_headers, r->num_key_headers);
        free_strv(r->forward_headers, r->num_forward_headers);
        free_strv(r->cookie_names, r->num_cookie_names);
        free_strv(r->compress_types, r->num_compress_types);
        free_strv(r->invalidate, r->num_invalidate);
    }
    free(cfg->routes);
    free(cfg->path);
    cfg->magic = 0;
    free(cfg);
    *cfgp = NULL;
}

const cr_config_t *cr_config_retain(const cr_config_t *cfg)
{
    if (cfg != NULL) {
        CR_CHECK_OBJ_NOTNULL(cfg, CR_CONFIG_MAGIC);
        unsigned before = __atomic_fetch_add(&((cr_config_t *)cfg)->refs, 1, __ATOMIC_RELAXED);
        assert(before != 0); /* retaining a freed generation */
    }
    return cfg;
}

void cr_config_release(const cr_config_t **cfgp)
{
    cr_config_t *cfg;

    if (cfgp == NULL || (cfg = (cr_config_t *)*cfgp) == NULL)
        return;
    *cfgp = NULL;
    CR_CHECK_OBJ_NOTNULL(cfg, CR_CONFIG_MAGIC);
    if (__atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
        cr_config_free(&cfg);
}
