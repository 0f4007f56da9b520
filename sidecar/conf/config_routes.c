/*
 * config_routes.c: the `routes:` section, one cr_route_config_t per entry, in config order: match (a path in match
 * form, core/urlpath.h, and a method set), caching and freshness, key, coalescing, compression, forwarded headers
 * and cookies, write-through invalidation, and the route's name (the metrics' `route` label: unique, and mapped to
 * its slot in the process's route-name registry, core/route_slots.h, once every route is read). Also the validator
 * only routes use, cr_method_bit (compress.types patterns are checked by core/media_pattern.c, the one copy).
 *
 * Invariants: no state, no locks. A route's defaults are set before its mapping is read, and every string list is
 * attached to the route before it is filled (cr_config_free frees a half-read route).
 */
#include "config_parse.h"

#include <stdlib.h>
#include <string.h>

#include "corral/core/media_pattern.h"
#include "corral/core/route_slots.h"
#include "corral/core/urlpath.h"

#define CR_CONFIG_MAX_WAITERS 1000000
#define CR_ROUTE_NAME_MAX 128 /* bytes */

/* Compression candidates when a route does not list its own `compress.types` (pattern forms: encoding.h). The two
   suffix patterns cover image/svg+xml, application/ld+json, application/problem+json, application/xhtml+xml, ... */
static const char *const default_compress_types[] = {
    "text/*", "application/json", "application/javascript", "application/xml", "image/svg+xml", "*/*+json", "*/*+xml",
};

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

static const char *check_query_name(char *s)
{
    if (cr_conf_has_ctl_or_space(s) || strpbrk(s, "&=#?") != NULL)
        return "a query parameter name must not contain spaces, control characters, '&', '=', '#' or '?'";
    return NULL;
}

/* A compress.types pattern in one of the forms cr_media_type_compressible() matches (encoding.h); lower-cased. */
static const char *check_media_type(char *s)
{
    cr_conf_lowercase(s);
    return cr_media_pattern_check(s);
}

/* One of compress.encodings: "br" or "gzip" (any case; lower-cased in place). */
static const char *check_encoding(char *s)
{
    cr_conf_lowercase(s);
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
    if (cr_conf_has_ctl_or_space(s) || strpbrk(s, "?#") != NULL)
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
    if (cr_conf_has_ctl_or_space(s) || strpbrk(s, "?#") != NULL)
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

/* A route name: 1 to CR_ROUTE_NAME_MAX bytes without control characters (libyaml has checked that it is UTF-8). */
static const char *check_route_name(char *s)
{
    const unsigned char *q;
    if (s[0] == '\0' || strlen(s) > CR_ROUTE_NAME_MAX)
        return "a route name must have 1 to 128 bytes";
    for (q = (const unsigned char *)s; *q != '\0'; ++q)
        if (*q < 0x20 || *q == 0x7f)
            return "a route name must not contain control characters";
    return NULL;
}

/* The route's name, or its default: "prefix:<path>" or "exact:<path>" with the match path in match form, followed by
 * " GET,HEAD" (its methods, in CR_METHOD_* order) when `match.methods` is set. */
static int parse_name(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *m)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    const char *kind = r->match_kind == CR_MATCH_PREFIX ? "prefix:" : "exact:";
    size_t klen = strlen(kind), len, i;

    if (cr_conf_opt_string(p, m, "name", 0, check_route_name, &r->name) != 0)
        return -1;
    if (r->name != NULL)
        return 0;
    if ((r->name = malloc(klen + r->match_path_len + 64)) == NULL) /* 64: room for every method name */
        return cr_conf_fail(p, m->node, "out of memory");
    memcpy(r->name, kind, klen);
    memcpy(r->name + klen, r->match_path, r->match_path_len);
    len = klen + r->match_path_len;
    for (i = 0; r->methods != CR_METHOD_ALL && i != CR_ARRAY_SIZE(methods); ++i)
        if ((r->methods & (1u << i)) != 0) {
            r->name[len] = len == klen + r->match_path_len ? ' ' : ',';
            ++len;
            memcpy(r->name + len, methods[i], strlen(methods[i]));
            len += strlen(methods[i]);
        }
    r->name[len] = '\0';
    return 0;
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_match(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *rm)
{
    char path[96], name[128];
    cr_conf_map_t m = {cr_conf_find(p, rm, "match"), path};
    const yaml_node_t *prefix, *exact, *methods;
    const yaml_node_item_t *it;
    size_t i;

    if (m.node == NULL)
        return cr_conf_fail_missing(p, rm, "match");
    cr_conf_join(path, sizeof(path), rm->path, "match");
    if (cr_conf_check_mapping(p, m.node, SEC_MATCH, path, path) != 0)
        return -1;
    prefix = cr_conf_find(p, &m, "prefix");
    exact = cr_conf_find(p, &m, "exact");
    if (prefix != NULL && exact != NULL) {
        const yaml_node_t *pk = cr_conf_find_key(p, &m, "prefix"), *ek = cr_conf_find_key(p, &m, "exact");
        return cr_conf_fail(p, pk->start_mark.index > ek->start_mark.index ? pk : ek,
                            "%s: both prefix and exact are set; use exactly one", path);
    }
    if (prefix == NULL && exact == NULL)
        return cr_conf_fail(p, m.node, "%s: one of prefix or exact is required", path);
    r->match_kind = prefix != NULL ? CR_MATCH_PREFIX : CR_MATCH_EXACT;
    if (cr_conf_opt_string(p, &m, prefix != NULL ? "prefix" : "exact", 1, check_match_path, &r->match_path) != 0)
        return -1;
    r->match_path_len = strlen(r->match_path);

    if ((methods = cr_conf_find(p, &m, "methods")) == NULL)
        return 0;
    cr_conf_join(name, sizeof(name), path, "methods");
    if (cr_conf_expect_list(p, methods, name) != 0)
        return -1;
    if (methods->data.sequence.items.top == methods->data.sequence.items.start)
        return cr_conf_fail(p, methods, "%s: the list must not be empty", name);
    r->methods = 0;
    for (i = 0, it = methods->data.sequence.items.start; it < methods->data.sequence.items.top; ++i, ++it) {
        const yaml_node_t *e = cr_conf_node(p, *it);
        char ename[160];
        unsigned bit;
        snprintf(ename, sizeof(ename), "%s[%zu]", name, i);
        if (cr_conf_expect_scalar(p, e, ename) != 0)
            return -1;
        if ((bit = cr_method_bit(cr_conf_scalar_str(e), e->data.scalar.length)) == CR_METHOD_OTHER)
            return cr_conf_fail(p, e, "%s: unknown method \"%s\" (allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)", ename,
                                cr_conf_scalar_str(e));
        r->methods |= bit;
    }
    return 0;
}

static int parse_key(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *rm)
{
    char path[96];
    cr_conf_map_t m = {cr_conf_find(p, rm, "key"), path};
    const yaml_node_t *q;
    int host = 1;

    if (m.node == NULL)
        return 0;

    cr_conf_join(path, sizeof(path), rm->path, "key");
    if (cr_conf_check_mapping(p, m.node, SEC_KEY, path, path) != 0 || cr_conf_opt_bool(p, &m, "host", &host) != 0)
        return -1;
    r->key_ignore_host = !host;
    if ((q = cr_conf_find(p, &m, "query")) != NULL) {
        if (q->type == YAML_SEQUENCE_NODE) {
            r->key_query = CR_KEY_QUERY_LIST;
            if (cr_conf_opt_string_list(p, &m, "query", 0, check_query_name, &r->key_query_names, &r->num_key_query_names) != 0)
                return -1;
            qsort(r->key_query_names, r->num_key_query_names, sizeof(char *), strcmp_ptr);
        } else if (q->type == YAML_SCALAR_NODE && strcmp(cr_conf_scalar_str(q), "all") == 0) {
            r->key_query = CR_KEY_QUERY_ALL;
        } else if (q->type == YAML_SCALAR_NODE && strcmp(cr_conf_scalar_str(q), "none") == 0) {
            r->key_query = CR_KEY_QUERY_NONE;
        } else if (q->type == YAML_SCALAR_NODE && !cr_conf_node_is_null(q)) {
            return cr_conf_fail(p, q, "%s.query: expected all, none or a list of parameter names, found \"%s\"", path,
                                cr_conf_scalar_str(q));
        } else {
            return cr_conf_fail(p, q, "%s.query: expected all, none or a list of parameter names, found %s", path,
                                cr_conf_node_kind(q));
        }
    }
    return cr_conf_opt_string_list(p, &m, "headers", 0, cr_conf_check_header_name, &r->key_headers, &r->num_key_headers);
}

/* `coalesce: bool` or `coalesce: {timeout, max_waiters, pass_ttl}` (a mapping turns coalescing on). */
static int parse_coalesce(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *rm)
{
    char path[96];
    cr_conf_map_t m = {cr_conf_find(p, rm, "coalesce"), path};
    uint64_t waiters = r->coalesce_max_waiters;

    if (m.node == NULL)
        return 0;
    cr_conf_join(path, sizeof(path), rm->path, "coalesce");
    if (m.node->type != YAML_MAPPING_NODE) {
        if (m.node->type != YAML_SCALAR_NODE || cr_conf_node_is_null(m.node))
            return cr_conf_fail(p, m.node, "%s: expected true, false or a mapping, found %s", path, cr_conf_node_kind(m.node));
        return cr_conf_parse_bool_node(p, m.node, path, &r->coalesce);
    }
    if (cr_conf_check_mapping(p, m.node, SEC_COALESCE, path, path) != 0)
        return -1;
    r->coalesce = 1;
    if (cr_conf_opt_duration(p, &m, "timeout", 1, &r->coalesce_timeout_ms) != 0 ||
        cr_conf_opt_uint(p, &m, "max_waiters", 1, CR_CONFIG_MAX_WAITERS, &waiters) != 0 ||
        cr_conf_opt_duration(p, &m, "pass_ttl", 0, &r->coalesce_pass_ttl_ms) != 0)
        return -1;
    r->coalesce_max_waiters = (size_t)waiters;
    return 0;
}

/* `compress.encodings`: a non-empty list of distinct "br" / "gzip" into the route's bit set. Returns 0 or -1. */
static int parse_compress_encodings(cr_conf_parser_t *p, cr_route_config_t *r, const cr_conf_map_t *m)
{
    char **names = NULL;
    size_t num = 0, i;
    int rc = cr_conf_opt_string_list(p, m, "encodings", 1, check_encoding, &names, &num);

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
    cr_conf_map_t m = {cr_conf_find(p, rm, "compress"), path};
    uint64_t quality = (uint64_t)r->brotli_quality, level = (uint64_t)r->gzip_level;

    if (m.node == NULL)
        return 0;
    cr_conf_join(path, sizeof(path), rm->path, "compress");
    if (m.node->type != YAML_MAPPING_NODE) {
        if (m.node->type != YAML_SCALAR_NODE || cr_conf_node_is_null(m.node))
            return cr_conf_fail(p, m.node, "%s: expected true, false or a mapping, found %s", path, cr_conf_node_kind(m.node));
        return cr_conf_parse_bool_node(p, m.node, path, &r->compress);
    }
    if (cr_conf_check_mapping(p, m.node, SEC_COMPRESS, path, path) != 0)
        return -1;
    r->compress = 1;
    if (cr_conf_find(p, &m, "types") != NULL) {
        size_t i;
        for (i = 0; i != r->num_compress_types; ++i)
            free(r->compress_types[i]);
        free(r->compress_types);
        r->compress_types = NULL;
        r->num_compress_types = 0;
        if (cr_conf_opt_string_list(p, &m, "types", 1, check_media_type, &r->compress_types, &r->num_compress_types) != 0)
            return -1;
    }
    if (cr_conf_opt_size(p, &m, "min_size", &r->compress_min_size) != 0 || parse_compress_encodings(p, r, &m) != 0 ||
        cr_conf_opt_uint(p, &m, "brotli_quality", CR_BROTLI_QUALITY_MIN, CR_BROTLI_QUALITY_MAX, &quality) != 0 ||
        cr_conf_opt_uint(p, &m, "gzip_level", CR_GZIP_LEVEL_MIN, CR_GZIP_LEVEL_MAX, &level) != 0)
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
    const yaml_node_t *c = cr_conf_find(p, m, "cookies");
    size_t i, j;

    if (cr_conf_opt_string_list(p, m, "forward_headers", 0, cr_conf_check_header_name, &r->forward_headers,
                                &r->num_forward_headers) != 0)
        return -1;
    for (i = 0; i != r->num_forward_headers; ++i) {
        char **kh;
        if (strcmp(r->forward_headers[i], "cookie") == 0)
            return cr_conf_fail(p, cr_conf_find(p, m, "forward_headers"),
                                "%s.forward_headers: cookie is set with cookies:, not here", m->path);
        for (j = 0; j != r->num_key_headers && strcmp(r->key_headers[j], r->forward_headers[i]) != 0; ++j)
            ;
        if (j != r->num_key_headers)
            continue;
        if ((kh = realloc(r->key_headers, (r->num_key_headers + 1) * sizeof(char *))) == NULL)
            return cr_conf_fail(p, m->node, "out of memory");
        r->key_headers = kh;
        if ((kh[r->num_key_headers] = cr_conf_strdup(r->forward_headers[i], strlen(r->forward_headers[i]))) == NULL)
            return cr_conf_fail(p, m->node, "out of memory");
        ++r->num_key_headers;
    }
    if (c == NULL)
        return 0;
    if (c->type == YAML_SEQUENCE_NODE) {
        r->cookies = CR_COOKIES_LIST;
        return cr_conf_opt_string_list(p, m, "cookies", 1, check_cookie_name, &r->cookie_names, &r->num_cookie_names);
    }
    if (c->type == YAML_SCALAR_NODE && strcmp(cr_conf_scalar_str(c), "pass") == 0)
        r->cookies = CR_COOKIES_PASS;
    else if (c->type == YAML_SCALAR_NODE && strcmp(cr_conf_scalar_str(c), "ignore") == 0)
        r->cookies = CR_COOKIES_IGNORE;
    else
        return cr_conf_fail(p, c, "%s.cookies: expected pass, ignore or a list of cookie names, found %s%s%s", m->path,
                            c->type == YAML_SCALAR_NODE && !cr_conf_node_is_null(c) ? "\"" : "",
                            c->type == YAML_SCALAR_NODE && !cr_conf_node_is_null(c) ? cr_conf_scalar_str(c) : cr_conf_node_kind(c),
                            c->type == YAML_SCALAR_NODE && !cr_conf_node_is_null(c) ? "\"" : "");
    return 0;
}

static int parse_route(cr_conf_parser_t *p, const cr_config_t *cfg, cr_route_config_t *r, const yaml_node_t *n, size_t index)
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
    r->stale_if_unreachable_ms = 60000;
    r->coalesce = 1;
    r->coalesce_timeout_ms = 5000;
    r->coalesce_max_waiters = 10000;
    r->coalesce_pass_ttl_ms = 10000;
    r->compress_min_size = 256;
    r->compress_encodings = CR_ENC_BIT(CR_ENC_GZIP) | CR_ENC_BIT(CR_ENC_BR);
    r->brotli_quality = 5;
    r->gzip_level = 6;
    if ((r->force_cache_control = cr_conf_strdup("no-cache", 8)) == NULL)
        return cr_conf_fail(p, n, "out of memory");
    if ((r->compress_types = cr_conf_calloc(p, n, CR_ARRAY_SIZE(default_compress_types), sizeof(char *))) == NULL)
        return -1;
    r->num_compress_types = CR_ARRAY_SIZE(default_compress_types);
    for (i = 0; i != r->num_compress_types; ++i)
        if ((r->compress_types[i] = cr_conf_strdup(default_compress_types[i], strlen(default_compress_types[i]))) == NULL)
            return cr_conf_fail(p, n, "out of memory");

    if (cr_conf_check_mapping(p, n, SEC_ROUTE, path, path) != 0)
        return -1;
    if (parse_match(p, r, &m) != 0 || parse_name(p, r, &m) != 0)
        return -1;
    if (cr_conf_opt_bool(p, &m, "cache", &r->cache) != 0)
        return -1;
    r->compress = r->cache;
    if (cr_conf_opt_duration(p, &m, "ttl", 0, &r->ttl_ms) != 0 || cr_conf_opt_duration(p, &m, "max_ttl", 0, &r->max_ttl_ms) != 0 ||
        cr_conf_opt_duration(p, &m, "force_ttl", 0, &r->force_ttl_ms) != 0 ||
        cr_conf_opt_bool(p, &m, "ignore_no_store", &r->ignore_no_store) != 0 ||
        cr_conf_opt_string(p, &m, "force_cache_control", 0, check_header_value, &r->force_cache_control) != 0 ||
        cr_conf_opt_bool(p, &m, "heuristic_freshness", &r->heuristic_freshness) != 0 ||
        cr_conf_opt_bool(p, &m, "allow_set_cookie", &r->allow_set_cookie) != 0 ||
        cr_conf_opt_duration(p, &m, "stale_while_revalidate", 0, &r->stale_while_revalidate_ms) != 0 ||
        cr_conf_opt_duration(p, &m, "stale_if_error", 0, &r->stale_if_error_ms) != 0 ||
        cr_conf_opt_duration(p, &m, "stale_if_unreachable", 0, &r->stale_if_unreachable_ms) != 0 ||
        cr_conf_opt_duration(p, &m, "serve_stale_when_down", 0, &r->serve_stale_when_down_ms) != 0)
        return -1;
    if (r->force_ttl_ms == 0) {
        if (r->ignore_no_store && (v = cr_conf_find(p, &m, "ignore_no_store")) != NULL)
            return cr_conf_fail(p, v, "%s.ignore_no_store: only applies with force_ttl, which is not set", path);
        if ((v = cr_conf_find(p, &m, "force_cache_control")) != NULL)
            return cr_conf_fail(p, v, "%s.force_cache_control: only applies with force_ttl, which is not set", path);
    }
    if (parse_key(p, r, &m) != 0 || parse_coalesce(p, r, &m) != 0 || parse_compress(p, r, &m) != 0 ||
        parse_forward_and_cookies(p, r, &m) != 0 || cr_conf_parse_ratelimit(p, cfg, r, &m) != 0)
        return -1;
    return cr_conf_opt_string_list(p, &m, "invalidate", 0, check_invalidate, &r->invalidate, &r->num_invalidate);
}

/* Route names are unique (a default one too: two routes with the same match need a `name`); then each gets its
 * registry slot. Reported at the later route's `name` (or the route, for a default name). */
static int check_names(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    size_t i, j;

    for (i = 0; i != cfg->num_routes; ++i) {
        for (j = 0; j != i && strcmp(cfg->routes[j].name, cfg->routes[i].name) != 0; ++j)
            ;
        if (j != i) {
            char path[48];
            cr_conf_map_t m = {cr_conf_node(p, n->data.sequence.items.start[i]), path};
            const yaml_node_t *at = cr_conf_find(p, &m, "name");
            snprintf(path, sizeof(path), "routes[%zu]", i);
            return cr_conf_fail(p, at != NULL ? at : m.node, "%s.name: \"%s\" is already the name of routes[%zu] (line %u)%s", path,
                                cfg->routes[i].name, j, cfg->routes[j].line, at != NULL ? "" : "; give one of them a name");
        }
    }
    for (i = 0; i != cfg->num_routes; ++i)
        cfg->routes[i].stat_slot = cr_route_slot_intern(cfg->routes[i].name, strlen(cfg->routes[i].name));
    return 0;
}

int cr_conf_parse_routes(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    const yaml_node_item_t *it;
    size_t count, i;

    if (cr_conf_expect_list(p, n, "routes") != 0)
        return -1;
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return 0;
    if ((cfg->routes = cr_conf_calloc(p, n, count, sizeof(*cfg->routes))) == NULL)
        return -1;
    cfg->num_routes = count;
    for (i = 0, it = n->data.sequence.items.start; i != count; ++i, ++it)
        if (parse_route(p, cfg, cfg->routes + i, cr_conf_node(p, *it), i) != 0)
            return -1;
    return check_names(p, cfg, n);
}
