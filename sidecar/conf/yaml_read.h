/*
 * yaml_read.h: the private reader of typed YAML scalars shared by the files of conf/ (yaml_read.c). Not for use
 * outside conf/.
 *
 * Every function that reports returns -1 after writing "file:line:col: message" into the parser's errbuf (the first
 * error wins: callers stop at the first -1). `name` arguments are the dotted key path used in messages
 * ("routes[2].match.prefix"). No global state, no locks.
 */
#ifndef CORRAL_CONF_YAML_READ_H
#define CORRAL_CONF_YAML_READ_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "corral/conf/config.h"
#include "corral/core/common.h"

/* The document being read and where its first error goes. */
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

/* Validates (and may rewrite in place, never lengthening) one string value; returns NULL or a reason. */
typedef const char *(*cr_conf_check_fn)(char *s);

/* ---- errors ---- */

/* Reports an error at line:col (1-based). Returns -1. */
__attribute__((format(printf, 4, 5))) int cr_conf_fail_at(cr_conf_parser_t *p, size_t line, size_t col, const char *fmt, ...);
/* Reports an error located at `node` (its first character; 1:1 when NULL). Returns -1. */
__attribute__((format(printf, 3, 4))) int cr_conf_fail(cr_conf_parser_t *p, const yaml_node_t *node, const char *fmt, ...);
/* Reports libyaml's own error (bad syntax, bad encoding, undefined alias, out of memory). */
void cr_conf_fail_yaml(cr_conf_parser_t *p, const yaml_parser_t *parser, const char *src, size_t srclen);
/* "missing required key" for `key` in m, located at the mapping. Returns -1. */
int cr_conf_fail_missing(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key);
/* Where node's value starts, for checks made after loading (config_check.c); {0, 0} for NULL. */
cr_conf_pos_t cr_conf_pos_of(const yaml_node_t *node);

/* ---- nodes ---- */

const yaml_node_t *cr_conf_node(cr_conf_parser_t *p, yaml_node_item_t idx);
const char *cr_conf_scalar_str(const yaml_node_t *n);
/* An empty plain scalar, "~" or "null": what YAML gives for `key:` with nothing after it. */
int cr_conf_node_is_null(const yaml_node_t *n);
/* "a scalar", "an empty value", "a list", "a mapping": for "found ..." in messages. */
const char *cr_conf_node_kind(const yaml_node_t *n);
/* Builds "prefix.key" (or "key" at the top level) into buf; returns buf. */
const char *cr_conf_join(char *buf, size_t size, const char *prefix, const char *key);
int cr_conf_expect_mapping(cr_conf_parser_t *p, const yaml_node_t *n, const char *name);
int cr_conf_expect_list(cr_conf_parser_t *p, const yaml_node_t *n, const char *name);
/* A scalar usable as a C string: not a list or mapping, not empty, no NUL bytes inside. */
int cr_conf_expect_scalar(cr_conf_parser_t *p, const yaml_node_t *n, const char *name);
/* The value (or the key node) for `key` in a mapping checked by cr_conf_check_mapping, or NULL when absent. */
const yaml_node_t *cr_conf_find(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key);
const yaml_node_t *cr_conf_find_key(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key);

/* ---- memory ---- */

/* A NUL-terminated copy of s[0..len), or NULL (out of memory, not reported). */
char *cr_conf_strdup(const char *s, size_t len);
/* calloc of at least one element; reports "out of memory" at n on failure. */
void *cr_conf_calloc(cr_conf_parser_t *p, const yaml_node_t *n, size_t count, size_t size);

/* ---- typed readers: absent keys keep the caller's default ---- */

/* Decimal digits only, no sign; fails on overflow. *end gets the first non-digit. */
int cr_conf_parse_digits(const char *s, uint64_t *out, const char **end);
int cr_conf_opt_uint(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, uint64_t min, uint64_t max, uint64_t *out);
/* `positive`: zero is rejected (timeouts). */
int cr_conf_opt_duration(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int positive, uint64_t *out);
int cr_conf_opt_size(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, size_t *out);
int cr_conf_parse_bool_node(cr_conf_parser_t *p, const yaml_node_t *n, const char *name, int *out);
int cr_conf_opt_bool(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int *out);
/* A string (replacing *out); `required`: absence is an error. `check` may be NULL. */
int cr_conf_opt_string(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int required, cr_conf_check_fn check,
                       char **out);
/*
 * Reads a list of strings. The array is attached to *out and *num before it is filled, so the caller's config owns
 * it on failure. `nonempty`: an empty list is an error. Duplicates are errors (after `check` normalized them).
 */
int cr_conf_opt_string_list(cr_conf_parser_t *p, const cr_conf_map_t *m, const char *key, int nonempty, cr_conf_check_fn check,
                            char ***out, size_t *num);

/* ---- string validators shared by several sections ---- */

void cr_conf_lowercase(char *s);
int cr_conf_has_ctl_or_space(const char *s);
/* A header name (tchars; may be empty), lower-cased in place. */
const char *cr_conf_check_header_name(char *s);

#endif
