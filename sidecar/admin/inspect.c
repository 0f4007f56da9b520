/*
 * inspect.c: the admin API's GET /v1/cache?key=/path[?query]: every object stored for that path (and query, when one
 * is given), as JSON: key (readable and in parts), variant, codings and their sizes, age, ttl, tags and size.
 *
 * Invariants: runs on the admin thread; reads the store through references it takes (cr_pathpurge_collect) and
 * releases before it answers; changes nothing. No locks of its own.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "corral/cache/object.h"
#include "corral/cache/pathpurge.h"
#include "corral/core/runtime.h"
#include "corral/http/http.h"
#include "corral/http/invalidate.h"
#include "corral/http/key.h"
#include "admin_internal.h"

/* The value of query parameter `name`, percent-decoded into the pool, or NULL. */
static char *query_param(h2o_req_t *req, const char *name)
{
    size_t nlen = strlen(name);
    const char *q, *end;
    if (req->query_at == SIZE_MAX)
        return NULL;
    q = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (q < end) {
        const char *amp = memchr(q, '&', end - q);
        if (amp == NULL)
            amp = end;
        if ((size_t)(amp - q) > nlen && memcmp(q, name, nlen) == 0 && q[nlen] == '=') {
            const char *v = q + nlen + 1;
            char *out = h2o_mem_alloc_pool(&req->pool, (amp - v) + 1), *o = out;
            while (v < amp) {
                if (*v == '%' && amp - v >= 3 && isxdigit((unsigned char)v[1]) && isxdigit((unsigned char)v[2])) {
                    char hex[3] = {v[1], v[2], 0};
                    *o++ = (char)strtol(hex, NULL, 16);
                    v += 3;
                } else {
                    *o++ = *v == '+' ? ' ' : *v;
                    ++v;
                }
            }
            *o = '\0';
            return out;
        }
        q = amp + 1;
    }
    return NULL;
}

static json_t *json_str(cr_str_t s)
{
    return json_stringn(s.base != NULL ? s.base : "", s.len);
}

/* A cache key (key.h: "authority\npath?query\nname:value...") for people: its parts joined with " | " on one line
 * (JSON-escaped by jansson like any string). */
static json_t *key_readable(cr_str_t key)
{
    char *buf = malloc(key.len * 3 + 1), *p = buf;
    size_t i;
    json_t *j;
    if (buf == NULL)
        return json_str(key);
    for (i = 0; i != key.len; ++i) {
        if (key.base[i] == '\n') {
            memcpy(p, " | ", 3);
            p += 3;
        } else {
            *p++ = key.base[i];
        }
    }
    j = json_stringn(buf, (size_t)(p - buf));
    free(buf);
    return j;
}

/* The same key as fields: {"authority": ..., "uri": ..., "headers": {name: value, ...}}. */
static json_t *key_parts(cr_str_t key)
{
    json_t *o = json_object(), *headers = json_object();
    const char *p = key.base, *end = key.base + key.len;
    unsigned part = 0;
    while (p <= end && key.base != NULL) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl != NULL ? nl : end, *colon;
        if (part == 0) {
            json_object_set_new(o, "authority", json_stringn(p, (size_t)(e - p)));
        } else if (part == 1) {
            json_object_set_new(o, "uri", json_stringn(p, (size_t)(e - p)));
        } else if ((colon = memchr(p, ':', (size_t)(e - p))) != NULL) {
            char name[256];
            size_t nlen = CR_MIN((size_t)(colon - p), sizeof(name) - 1);
            memcpy(name, p, nlen);
            name[nlen] = '\0';
            json_object_set_new(headers, name, json_stringn(colon + 1, (size_t)(e - colon - 1)));
        }
        ++part;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    json_object_set_new(o, "headers", headers);
    return o;
}

/* One stored object as JSON: its key, variant, codings and their sizes, age, ttl, tags and size. */
static json_t *describe(const cr_object_t *obj, uint64_t now)
{
    static const char *const names[CR_ENC_MAX] = {"identity", "gzip", "br"};
    json_t *o = json_object(), *enc = json_object(), *tags = json_array(), *vary = json_array();
    unsigned flags = cr_object_flags(obj);
    uint64_t age = cr_object_age_ms(obj, now);
    size_t i;
    int e;

    json_object_set_new(o, "key", key_readable(cr_object_key(obj)));
    json_object_set_new(o, "key_parts", key_parts(cr_object_key(obj)));
    json_object_set_new(o, "status", json_integer(obj->status));
    for (i = 0; i != obj->num_vary; ++i)
        json_array_append_new(vary, json_str(cr_object_vary_names(obj)[i]));
    json_object_set_new(o, "vary", vary);
    {
        cr_str_t variant = cr_object_variant_key(obj); /* "name:value\n" per Vary header */
        if (variant.len != 0 && variant.base[variant.len - 1] == '\n')
            --variant.len;
        json_object_set_new(o, "variant", key_readable(variant));
    }
    for (e = 0; e != CR_ENC_MAX; ++e) {
        cr_str_t body = cr_object_body(obj, (cr_encoding_t)e);
        if (body.base != NULL && !(e == CR_ENC_IDENTITY && (flags & CR_OBJ_ENCODED) != 0))
            json_object_set_new(enc, names[e], json_integer((json_int_t)body.len));
    }
    json_object_set_new(o, "encodings", enc);
    json_object_set_new(o, "age", json_integer((json_int_t)(age / 1000)));
    json_object_set_new(o, "ttl", json_integer(((json_int_t)obj->lifetime_ms - (json_int_t)age) / 1000));
    json_object_set_new(o, "fresh", json_boolean(cr_object_is_fresh(obj, now)));
    json_object_set_new(o, "invalidated", json_boolean((flags & CR_OBJ_INVALIDATED) != 0));
    json_object_set_new(o, "hit_for_pass", json_boolean((flags & CR_OBJ_PASS) != 0));
    for (i = 0; i != obj->num_tags; ++i)
        json_array_append_new(tags, json_str(obj->tags[i].name));
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "size", json_integer((json_int_t)obj->cost));
    return o;
}

/* GET /v1/cache?key=/path[?query]: every stored object for that path (and query, when one is given). */
void cr_admin_handle_inspect(h2o_req_t *req)
{
    char *key = query_param(req, "key"), path[CR_INVALIDATE_MAX_PATH];
    cr_object_t *objs[256];
    const char *query;
    json_t *entries;
    size_t n, i;
    int plen;

    if (key == NULL || (plen = cr_key_normalize_uri_path(cr_str(key, strlen(key)), path, sizeof(path))) < 0) {
        cr_send_json_error(req, 400, "Bad Request", "invalid_key", "give ?key=/path[?query] (percent-encoded)");
        return;
    }
    query = strchr(key, '?');
    n = cr_pathpurge_collect(cr_rt.store, cr_str(path, (size_t)plen), objs, CR_ARRAY_SIZE(objs));
    entries = json_array();
    for (i = 0; i != CR_MIN(n, CR_ARRAY_SIZE(objs)); ++i) {
        cr_str_t uri = cr_invalidate_key_uri(cr_object_key(objs[i]));
        const char *q = memchr(uri.base, '?', uri.len);
        int same_query = query == NULL || (q != NULL && (size_t)(uri.base + uri.len - q) == strlen(query) &&
                                           memcmp(q, query, strlen(query)) == 0);
        if (same_query)
            json_array_append_new(entries, describe(objs[i], cr_now_ms()));
        cr_object_release(&objs[i]);
    }
    if (json_array_size(entries) == 0) {
        json_decref(entries);
        cr_send_json_error(req, 404, "Not Found", "not_stored", "nothing is stored for this key");
        return;
    }
    cr_admin_send_json_value(req, 200, "OK", json_pack("{s:s,s:o}", "key", key, "entries", entries));
}
