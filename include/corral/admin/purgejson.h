/*
 * purgejson.h: the admin purge API's JSON, parsed and formatted with jansson (no h2o, no store).
 *
 * Request body (POST /v1/purge): {"keys": [...], "prefixes": [...], "tags": [...], "soft": false}. Every field is
 * optional, but at least one of keys / prefixes / tags must be non-empty. Validation is all-or-nothing: a request
 * that fails it yields no cr_purge_request_t at all, so nothing can be purged from a half-valid body.
 */
#ifndef CORRAL_PURGEJSON_H
#define CORRAL_PURGEJSON_H

#include "corral/core/common.h"

/* Most entries (keys + prefixes + tags) one request may hold. */
#define CR_PURGE_MAX_ENTRIES 10000
/* Largest body the admin API should read before answering 413 (enforced by the caller; the parser takes any size). */
#define CR_PURGE_MAX_BODY ((size_t)1 << 20)

typedef struct st_cr_purge_request_t {
    char **keys; /* owned, NUL-terminated, non-empty, no control bytes */
    size_t num_keys;
    char **prefixes; /* same */
    size_t num_prefixes;
    char **tags; /* same, and no spaces or commas (they separate tags in the header, so no stored tag has one) */
    size_t num_tags;
    int soft; /* default 0 */
} cr_purge_request_t;

typedef struct st_cr_purge_counts_t {
    size_t keys, prefixes, tags; /* entries processed */
    size_t objects;              /* objects removed (or, soft, marked) */
} cr_purge_counts_t;

/*
 * Parses and validates a purge body. Returns CR_OK with *out filled (free it with cr_purge_request_free), or
 *  - CR_DECLINED: the body is invalid (answer 400); err holds a one-line message naming the field, e.g.
 *    "keys[2]: must be a string", "unknown field \"key\"", "invalid JSON at line 1, column 9: ...";
 *  - CR_ERROR: out of memory (answer 500); err says so.
 * On failure *out is left empty (zeroed). err may be NULL when errsize is 0.
 */
int cr_purge_parse(const char *body, size_t len, cr_purge_request_t *out, char *err, size_t errsize);

/* Frees what a successful cr_purge_parse() stored and zeroes *req. Accepts a zeroed request. */
void cr_purge_request_free(cr_purge_request_t *req);

/*
 * Writes {"purged": {"keys": N, "prefixes": N, "tags": N, "objects": N}, "soft": true|false} (no newline) into buf,
 * NUL-terminated. Returns the length, or -1 when it does not fit.
 */
int cr_purge_result_json(const cr_purge_counts_t *counts, int soft, char *buf, size_t bufsize);

/*
 * Writes {"error": "<message>"} into buf with the message JSON-escaped (it may quote user input), NUL-terminated.
 * Returns the length, or -1 when it does not fit or memory runs out.
 */
int cr_purge_error_json(const char *message, char *buf, size_t bufsize);

#endif
