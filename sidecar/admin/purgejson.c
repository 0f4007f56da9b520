/*
 * purgejson.c: parsing and validating admin purge bodies, and formatting purge answers, with jansson.
 *
 * Validation order (the first failure wins, so messages are deterministic): JSON syntax (duplicate object keys count
 * as syntax errors), the top level being an object, then each field in body order: known name, type, and for the lists
 * the running entry total (checked before the members, so a huge list fails fast); then each member of each list;
 * then "at least one non-empty list". Only a body that passed all of it is copied into the request.
 *
 * Invariants: no global state, no locks. Every string in a cr_purge_request_t is owned by it; on any failure the
 * request is left zeroed and nothing is leaked. Messages never contain control bytes (user-supplied field names are
 * sanitized and shortened) and are meant to be wrapped with cr_purge_error_json(), which escapes them.
 */
#include "corral/admin/purgejson.h"
#include "corral/fill/invalidation.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Longest piece of a user-supplied field name quoted in a message. */
#define CR_PURGE_MAX_QUOTED 64

static void purge_err(char *err, size_t errsize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes the message; control bytes become '?' here, whatever put them in (jansson's error text quotes the body
 * "near '...'" verbatim, newlines included). */
static void purge_err(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    char *p;
    if (err == NULL || errsize == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    for (p = err; *p != '\0'; ++p)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* Copies a user-supplied name for a message: control bytes become '?', long names are cut (on a UTF-8 boundary) and
 * end in "...". */
static void quote_name(const char *name, char *dst, size_t dstsize)
{
    size_t len = strlen(name), n = CR_MIN(len, CR_PURGE_MAX_QUOTED), i;

    assert(dstsize > CR_PURGE_MAX_QUOTED + 3);
    if (n < len)
        while (n != 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
            --n;
    for (i = 0; i != n; ++i)
        dst[i] = (unsigned char)name[i] < 0x20 || (unsigned char)name[i] == 0x7f ? '?' : name[i];
    if (n < len) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

/* Checks one list member. Returns NULL or what is wrong with it. */
static const char *check_member(const json_t *v, int is_tag)
{
    const char *s;
    size_t len, i;

    if (!json_is_string(v))
        return "must be a string";
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0)
        return "must not be empty";
    for (i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return "must not contain control characters";
        if (is_tag && (c == ' ' || c == ','))
            return "must not contain spaces or commas (they separate tags)";
    }
    return NULL;
}

/* Copies a validated list. Returns CR_OK or CR_ERROR (allocation; what was copied stays attached to *out). */
static int copy_list(const json_t *arr, char ***out, size_t *num)
{
    size_t n = json_array_size(arr), i;

    if (n == 0)
        return CR_OK;
    if ((*out = calloc(n, sizeof(char *))) == NULL)
        return CR_ERROR;
    for (i = 0; i != n; ++i) {
        const json_t *v = json_array_get(arr, i);
        size_t len = json_string_length(v);
        if (((*out)[i] = malloc(len + 1)) == NULL)
            return CR_ERROR;
        memcpy((*out)[i], json_string_value(v), len);
        (*out)[i][len] = '\0';
        ++*num;
    }
    return CR_OK;
}

static void free_list(char **list, size_t num)
{
    size_t i;
    for (i = 0; i != num; ++i)
        free(list[i]);
    free(list);
}

void cr_purge_request_free(cr_purge_request_t *req)
{
    if (req == NULL)
        return;
    free_list(req->keys, req->num_keys);
    free_list(req->prefixes, req->num_prefixes);
    free_list(req->tags, req->num_tags);
    memset(req, 0, sizeof(*req));
}

int cr_purge_parse(const char *body, size_t len, cr_purge_request_t *out, char *err, size_t errsize)
{
    static const char *const lists[] = {"keys", "prefixes", "tags"};
    const json_t *arrays[3] = {NULL, NULL, NULL};
    char quoted[CR_PURGE_MAX_QUOTED + 4];
    json_error_t jerr;
    json_t *root, *value;
    const char *field;
    size_t total = 0, i, j;
    int soft = 0, ret = CR_DECLINED;

    assert(out != NULL && (body != NULL || len == 0));
    memset(out, 0, sizeof(*out));
    if (err != NULL && errsize != 0)
        err[0] = '\0';

    if ((root = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            purge_err(err, errsize, "out of memory");
            return CR_ERROR;
        }
        purge_err(err, errsize, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return CR_DECLINED;
    }
    if (!json_is_object(root)) {
        purge_err(err, errsize, "the body must be a JSON object");
        goto Exit;
    }

    json_object_foreach(root, field, value) {
        for (i = 0; i != CR_ARRAY_SIZE(lists) && strcmp(field, lists[i]) != 0; ++i)
            ;
        if (i != CR_ARRAY_SIZE(lists)) {
            if (!json_is_array(value)) {
                purge_err(err, errsize, "%s: must be an array of strings", lists[i]);
                goto Exit;
            }
            total += json_array_size(value);
            if (total > CR_PURGE_MAX_ENTRIES) {
                purge_err(err, errsize, "%s: too many entries (at most %d in keys, prefixes and tags together)", lists[i],
                          CR_PURGE_MAX_ENTRIES);
                goto Exit;
            }
            arrays[i] = value;
        } else if (strcmp(field, "soft") == 0) {
            if (!json_is_boolean(value)) {
                purge_err(err, errsize, "soft: must be true or false");
                goto Exit;
            }
            soft = json_is_true(value);
        } else {
            quote_name(field, quoted, sizeof(quoted));
            purge_err(err, errsize, "unknown field \"%s\" (allowed: keys, prefixes, tags, soft)", quoted);
            goto Exit;
        }
    }
    for (i = 0; i != CR_ARRAY_SIZE(lists); ++i) {
        for (j = 0; arrays[i] != NULL && j != json_array_size(arrays[i]); ++j) {
            const char *why = check_member(json_array_get(arrays[i], j), i == 2);
            if (why != NULL) {
                purge_err(err, errsize, "%s[%zu]: %s", lists[i], j, why);
                goto Exit;
            }
        }
    }
    if (total == 0) {
        purge_err(err, errsize, "nothing to purge: at least one of keys, prefixes, tags must be a non-empty array");
        goto Exit;
    }

    if ((arrays[0] != NULL && copy_list(arrays[0], &out->keys, &out->num_keys) != CR_OK) ||
        (arrays[1] != NULL && copy_list(arrays[1], &out->prefixes, &out->num_prefixes) != CR_OK) ||
        (arrays[2] != NULL && copy_list(arrays[2], &out->tags, &out->num_tags) != CR_OK)) {
        cr_purge_request_free(out);
        purge_err(err, errsize, "out of memory");
        ret = CR_ERROR;
        goto Exit;
    }
    out->soft = soft;
    ret = CR_OK;

Exit:
    json_decref(root);
    return ret;
}

int cr_purge_result_json(const cr_purge_counts_t *counts, int soft, char *buf, size_t bufsize)
{
    cr_invalidate_counts_t c = {0};

    assert(counts != NULL);
    c.uris = counts->keys;
    c.prefixes = counts->prefixes;
    c.tags = counts->tags;
    c.objects = counts->objects;
    return cr_invalidate_result_json(&c, soft, buf, bufsize); /* the one shape every purge answers in */
}

int cr_purge_error_json(const char *message, char *buf, size_t bufsize)
{
    json_t *obj, *str;
    char *ascii = NULL;
    size_t n = 0, i;

    assert(message != NULL);
    if (buf == NULL || bufsize == 0)
        return -1;
    if ((str = json_string(message)) == NULL) {
        /* not valid UTF-8: keep the ASCII and mark the rest */
        size_t len = strlen(message);
        if ((ascii = malloc(len + 1)) == NULL)
            return -1;
        for (i = 0; i != len; ++i)
            ascii[i] = (unsigned char)message[i] < 0x80 ? message[i] : '?';
        ascii[len] = '\0';
        str = json_string(ascii);
        free(ascii);
        if (str == NULL)
            return -1;
    }
    if ((obj = json_object()) == NULL || json_object_set_new(obj, "error", str) != 0) {
        if (obj == NULL)
            json_decref(str);
        json_decref(obj);
        return -1;
    }
    n = json_dumpb(obj, buf, bufsize, JSON_ENSURE_ASCII);
    json_decref(obj);
    if (n == 0 || n >= bufsize)
        return -1;
    buf[n] = '\0';
    return (int)n;
}
