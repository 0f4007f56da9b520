/*
 * objbuild.c: building the object a fill stores from the upstream's response (see objbuild.h).
 *
 * Invariants: the objects built here are not shared yet (not in the store, not sent), so plain writes to their
 * fields and flags are safe; `old` in cr_fill_object_refreshed is shared and only read (flags atomically).
 * Config: the generation arrives as an argument (the fill's own, which it retains); nothing here reads cr_rt.
 * Threads: nothing here keeps state or takes a lock; cr_fill_object_coded_copy (copy, compress, finish) touches only
 * the copy it makes and reads a finished object, so it is safe on a worker-pool thread (workq.h).
 */
#include "corral/cache/objbuild.h"

#include <stdlib.h>

#include "corral/http/date_send.h"
#include "corral/http/encoding.h"
#include "corral/http/invalidate.h"

cr_object_t *cr_fill_object_new(cr_str_t key, int status)
{
    cr_object_t *obj = cr_object_new(key.base, key.len, status);
    if (obj != NULL)
        obj->path_hash = cr_path_hash(key);
    return obj;
}

/* Headers corral sets itself or must not keep: never stored. */
static int is_stored_header_dropped(const cr_config_t *cfg, h2o_iovec_t lname, h2o_iovec_t connection)
{
    return (cr_is_surrogate_key_header(lname, cfg) && !cfg->cache.keep_surrogate_key) ||
           h2o_memis(lname.base, lname.len, H2O_STRLIT("content-length")) || h2o_memis(lname.base, lname.len, H2O_STRLIT("date")) ||
           h2o_memis(lname.base, lname.len, H2O_STRLIT("server")) || h2o_memis(lname.base, lname.len, H2O_STRLIT("age")) ||
           cr_is_hop_by_hop(lname, connection);
}

static int add_header(cr_object_t *obj, const h2o_header_t *h)
{
    return cr_object_add_header(obj, h->name->base, h->name->len, h->value.base, h->value.len, cr_token_index(h->name));
}

/* The response's first Date, when it parses, stored as IMF-fixdate (CR_DATE_LEN bytes: what a hit sends as its Date,
 * http/date_send.h); an unparsable one is not kept (the hit then gets corral's clock). Returns CR_OK or CR_ERROR. */
static int add_date(cr_object_t *obj, const h2o_header_t *headers, size_t num_headers)
{
    char buf[CR_DATE_LEN + 1];
    uint64_t ms;
    size_t i;
    for (i = 0; i != num_headers; ++i)
        if (headers[i].name == &H2O_TOKEN_DATE->buf) {
            if (cr_http_date_parse(cr_str(headers[i].value.base, headers[i].value.len), &ms) != 0)
                return CR_OK;
            cr_http_date_format(ms, buf);
            return cr_object_add_header(obj, H2O_STRLIT("date"), buf, CR_DATE_LEN, cr_token_index(&H2O_TOKEN_DATE->buf));
        }
    return CR_OK;
}

/* Sets the object's Vary fields from the response's Vary header(s), Accept-Encoding excepted. Returns CR_OK,
 * CR_ERROR when there are too many or too long names, or CR_DECLINED when the request's values of them do not fit a
 * variant key (this request's doing, not the response's). */
static int set_vary(cr_object_t *obj, const h2o_header_t *headers, size_t num_headers, cr_header_lookup_fn get, void *ctx)
{
    cr_str_t names[16];
    char namebuf[512], keybuf[4096];
    size_t num = 0, used = 0, i, keylen;

    for (i = 0; i != num_headers; ++i) {
        const char *p, *end;
        if (headers[i].name != &H2O_TOKEN_VARY->buf)
            continue;
        p = headers[i].value.base;
        end = p + headers[i].value.len;
        while (p < end) {
            const char *s;
            size_t len, j;
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                ++p;
            s = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                ++p;
            len = p - s;
            if (len == 0)
                continue;
            if (num == CR_ARRAY_SIZE(names) || used + len > sizeof(namebuf))
                return CR_ERROR;
            for (j = 0; j != len; ++j)
                namebuf[used + j] = (s[j] >= 'A' && s[j] <= 'Z') ? s[j] + 32 : s[j];
            /* corral negotiates content-codings itself from one stored object: keys never split on Accept-Encoding */
            if (cr_str_eq(cr_str(namebuf + used, len), H2O_STRLIT("accept-encoding")))
                continue;
            names[num++] = cr_str(namebuf + used, len);
            used += len;
        }
    }
    if (num == 0)
        return CR_OK;
    keylen = cr_variant_key(names, num, get, ctx, keybuf, sizeof(keybuf));
    if (keylen == SIZE_MAX)
        return CR_DECLINED;
    return cr_object_set_vary(obj, names, num, keybuf, keylen);
}

/* The upstream's surrogate keys (cache.surrogate_key_header) as tags. Returns CR_OK, CR_DECLINED when there are more
 * than CR_SURROGATE_KEYS_MAX (a purge of a dropped tag would miss the object), or CR_ERROR when out of memory. */
static int set_tags(const cr_config_t *cfg, cr_object_t *obj, const h2o_header_t *headers, size_t num_headers)
{
    cr_str_t tags[CR_SURROGATE_KEYS_MAX];
    size_t num = 0, i;
    int ret = CR_OK;

    for (i = 0; i != num_headers && ret == CR_OK; ++i)
        if (cr_is_surrogate_key_header(*headers[i].name, cfg))
            ret = cr_surrogate_keys_parse(cr_str(headers[i].value.base, headers[i].value.len), tags, CR_SURROGATE_KEYS_MAX, &num);
    if (num != 0 && cr_object_set_tags(obj, tags, num) != CR_OK)
        return CR_ERROR;
    return ret;
}

cr_object_t *cr_fill_object_from_response(const cr_config_t *cfg, cr_str_t key, int status, const h2o_header_t *headers, size_t num_headers,
                                          cr_header_lookup_fn get, void *get_ctx, const char **unstorable,
                                          cr_encoding_t *received)
{
    char connbuf[1024];
    h2o_iovec_t connection = cr_join_header(headers, num_headers, H2O_TOKEN_CONNECTION, connbuf, sizeof(connbuf)), ce = {NULL, 0};
    cr_object_t *obj;
    size_t i;
    int enc, rc;

    *unstorable = NULL;
    *received = CR_ENC_IDENTITY;
    if ((obj = cr_fill_object_new(key, status)) == NULL)
        return NULL;
    for (i = 0; i != num_headers; ++i)
        if (!is_stored_header_dropped(cfg, *headers[i].name, connection) && add_header(obj, headers + i) != CR_OK)
            goto NoMemory;
    if (add_date(obj, headers, num_headers) != CR_OK)
        goto NoMemory;
    if ((rc = set_vary(obj, headers, num_headers, get, get_ctx)) != CR_OK)
        *unstorable = rc == CR_DECLINED ? "vary-too-long" : "vary-too-complex";
    for (i = 0; i != num_headers && ce.base == NULL; ++i)
        if (headers[i].name == &H2O_TOKEN_CONTENT_ENCODING->buf)
            ce = headers[i].value;
    if ((enc = cr_encoding_parse(cr_str(ce.base, ce.len))) < 0) {
        /* a coding corral cannot decode (deflate, a list of codings): relayed, never stored */
        *unstorable = "content-encoding";
    } else if (enc != CR_ENC_IDENTITY) {
        /* already compressed by the upstream: stored as it is, decoded on the fly for clients that refuse it */
        obj->flags |= CR_OBJ_ENCODED;
        *received = (cr_encoding_t)enc;
    }
    if ((rc = set_tags(cfg, obj, headers, num_headers)) == CR_ERROR)
        goto NoMemory;
    if (rc != CR_OK)
        *unstorable = "too-many-tags";
    return obj;
NoMemory:
    cr_object_release(&obj);
    return NULL;
}

cr_object_t *cr_fill_object_refreshed(const cr_config_t *cfg, const cr_object_t *old, const h2o_header_t *headers, size_t num_headers,
                                      cr_response_info_t *ri)
{
    char connbuf[1024];
    h2o_iovec_t connection = cr_join_header(headers, num_headers, H2O_TOKEN_CONNECTION, connbuf, sizeof(connbuf));
    cr_object_t *obj;
    size_t i, j;
    int e;

    if ((obj = cr_fill_object_new(cr_object_key(old), old->status)) == NULL)
        return NULL;
    obj->flags |= cr_object_flags(old) & (CR_OBJ_ENCODED | CR_OBJ_KEEP_CODING);
    /* stored headers not replaced by the 304 (RFC 9111 3.2: every field the 304 carries replaces the stored one,
     * except Content-Length and Content-Encoding, which describe the body kept here) */
    for (i = 0; i != old->num_headers; ++i) {
        cr_str_t name = cr_object_header_name(old, i), value = cr_object_header_value(old, i);
        int replaced = 0;
        for (j = 0; j != num_headers; ++j) {
            if (headers[j].name->len == name.len && memcmp(headers[j].name->base, name.base, name.len) == 0 &&
                !h2o_memis(name.base, name.len, H2O_STRLIT("content-length")) &&
                !h2o_memis(name.base, name.len, H2O_STRLIT("content-encoding"))) {
                replaced = 1;
                break;
            }
        }
        if (!replaced &&
            cr_object_add_header(obj, name.base, name.len, value.base, value.len, cr_object_header_token(old, i)) != CR_OK)
            goto Error;
    }
    for (j = 0; j != num_headers; ++j) {
        const h2o_header_t *h = headers + j;
        if (is_stored_header_dropped(cfg, *h->name, connection) || h->name == &H2O_TOKEN_CONTENT_ENCODING->buf)
            continue;
        if (add_header(obj, h) != CR_OK)
            goto Error;
    }
    if (add_date(obj, headers, num_headers) != CR_OK) /* the 304's Date replaced the stored one (loop above) */
        goto Error;
    if (old->num_vary != 0 && cr_object_set_vary(obj, cr_object_vary_names(old), old->num_vary, cr_object_variant_key(old).base,
                                                 cr_object_variant_key(old).len) != CR_OK)
        goto Error;
    if (old->num_tags != 0) {
        cr_str_t tags[CR_SURROGATE_KEYS_MAX];
        size_t n = CR_MIN(old->num_tags, CR_ARRAY_SIZE(tags));
        for (i = 0; i != n; ++i)
            tags[i] = old->tags[i].name;
        if (cr_object_set_tags(obj, tags, n) != CR_OK)
            goto Error;
    }
    for (e = 0; e != CR_ENC_MAX; ++e) {
        cr_str_t body = cr_object_body(old, (cr_encoding_t)e);
        if (body.base != NULL || e == CR_ENC_IDENTITY) {
            char *copy = NULL;
            if (body.len != 0) {
                if ((copy = malloc(body.len)) == NULL)
                    goto Error;
                memcpy(copy, body.base, body.len);
            }
            cr_object_set_body(obj, (cr_encoding_t)e, copy, body.len);
        }
    }
    /* freshness from the merged header set (the 304's Date and Age are those of the revalidation) */
    cr_response_info_init(ri);
    cr_response_info_set_targeted(ri, cfg); /* the stored targeted field still governs (it is kept, not sent) */
    for (i = 0; i != obj->num_headers; ++i)
        cr_response_info_add(ri, cr_object_header_name(obj, i), cr_object_header_value(obj, i));
    for (j = 0; j != num_headers; ++j)
        if (headers[j].name == &H2O_TOKEN_DATE->buf || headers[j].name == &H2O_TOKEN_AGE->buf)
            cr_response_info_add(ri, cr_str(headers[j].name->base, headers[j].name->len),
                                 cr_str(headers[j].value.base, headers[j].value.len));
    cr_response_info_apply_targeted(ri);
    ri->status = old->status;
    return obj;
Error:
    cr_object_release(&obj);
    return NULL;
}

cr_object_t *cr_fill_object_copy(const cr_object_t *obj)
{
    cr_response_info_t unused;
    /* a 304 that brings no header changes nothing: its merge is a copy */
    return cr_fill_object_refreshed(NULL, obj, NULL, 0, &unused); /* no header: no config is read */
}

int cr_fill_object_compressible(const cr_route_config_t *route, const cr_object_t *obj)
{
    cr_str_t body = cr_object_body(obj, CR_ENC_IDENTITY), ctype = cr_object_find_header(obj, H2O_STRLIT("content-type")),
             cc = cr_object_find_header(obj, H2O_STRLIT("cache-control"));
    cr_cache_control_t parsed;

    if (!route->compress || (route->compress_encodings & (CR_ENC_BIT(CR_ENC_BR) | CR_ENC_BIT(CR_ENC_GZIP))) == 0 ||
        body.len < route->compress_min_size || body.len == 0 || ctype.base == NULL ||
        !cr_media_type_compressible(ctype, route->compress_types, route->num_compress_types))
        return 0;
    cr_cc_init(&parsed);
    if (cc.base != NULL)
        cr_cc_parse(&parsed, cc);
    return (parsed.flags & CR_CC_NO_TRANSFORM) == 0;
}

void cr_fill_object_compress(const cr_route_config_t *route, cr_object_t *obj)
{
    cr_str_t body = cr_object_body(obj, CR_ENC_IDENTITY);
    char *out;
    size_t outlen;

    if (!cr_fill_object_compressible(route, obj))
        return;
    if ((route->compress_encodings & CR_ENC_BIT(CR_ENC_BR)) != 0 &&
        cr_encode_br(body.base, body.len, route->brotli_quality, 1, &out, &outlen) == CR_OK) {
        if (outlen < body.len)
            cr_object_set_body(obj, CR_ENC_BR, out, outlen);
        else
            free(out);
    }
    if ((route->compress_encodings & CR_ENC_BIT(CR_ENC_GZIP)) != 0 &&
        cr_encode_gzip(body.base, body.len, route->gzip_level, &out, &outlen) == CR_OK) {
        if (outlen < body.len)
            cr_object_set_body(obj, CR_ENC_GZIP, out, outlen);
        else
            free(out);
    }
}

cr_object_t *cr_fill_object_coded_copy(const cr_route_config_t *route, const cr_object_t *obj)
{
    cr_object_t *copy = cr_fill_object_copy(obj);

    if (copy == NULL)
        return NULL;
    cr_fill_object_compress(route, copy);
    return cr_object_finish(copy);
}

/* Emit callback of the store-time decode: the output is only counted (by the decoder), never kept. */
static int discard_decoded(void *ctx, const void *buf, size_t len)
{
    return CR_OK;
}

void cr_fill_object_check_decoding(cr_object_t *obj, size_t max_object_size)
{
    cr_encoding_t enc;
    cr_str_t body;
    cr_decoder_t *d;
    int rc = CR_ERROR;

    if ((obj->flags & (CR_OBJ_ENCODED | CR_OBJ_KEEP_CODING)) != CR_OBJ_ENCODED)
        return;
    enc = cr_object_body(obj, CR_ENC_BR).base != NULL ? CR_ENC_BR : CR_ENC_GZIP;
    body = cr_object_body(obj, enc);
    if ((d = cr_decoder_new(enc, max_object_size)) != NULL)
        rc = cr_decoder_feed(d, body.base, body.len, 1, discard_decoded, NULL);
    cr_decoder_free(&d);
    if (rc != CR_OK)
        obj->flags |= CR_OBJ_KEEP_CODING;
}

void cr_fill_object_set_freshness(const cr_config_t *cfg, cr_object_t *obj, const cr_store_decision_t *d, uint64_t response_time_ms)
{
    cr_fill_object_check_decoding(obj, cfg->cache.max_object_size); /* the last step of every fill before its object is shared */
    obj->response_time_ms = response_time_ms;
    obj->initial_age_ms = cr_object_clamp_ms(d->initial_age_ms);
    obj->lifetime_ms = cr_object_clamp_ms(d->lifetime_ms);
    obj->swr_ms = cr_object_clamp_ms(d->swr_ms);
    obj->sie_ms = cr_object_clamp_ms(d->sie_ms);
    if (d->forced)
        obj->flags |= CR_OBJ_FORCED;
    if (d->must_revalidate)
        obj->flags |= CR_OBJ_MUST_REVALIDATE;
    if (d->shareable)
        obj->flags |= CR_OBJ_SHAREABLE;
    if (d->requires_revalidation && !d->forced)
        obj->flags |= CR_OBJ_NO_CACHE;
}
