/*
 * fuzz_tier_value.c: the shared-tier value reader (tier/value.c), which reads what any writer put in memcached.
 *
 * Input: byte 0 = mode: bit 0 set: the harness writes the right total length and CRC-32 into the value before it is
 * read (so mutations reach the payload parser, which a checksum would otherwise hide); bit 1 set: the expected key is
 * the one the value names (when its key field is in bounds), else "fuzz-key". Byte 1 = the reader's clock, in
 * seconds since the epoch. The rest is the value. Properties beyond "no crash, no leak, no overread":
 *  - a refusal leaves no object and names a reason; a success names none;
 *  - what decodes re-encodes (the encoder accepts every object the decoder makes, at the same clock) into exactly
 *    the bytes read: the format has one encoding per object, so nothing is lost or invented on the way;
 *  - and that encoding decodes again to an object with the same fields.
 */
#include "fuzz_util.h"

#include <zlib.h>

#include "corral/tier/value.h"

static void same_object(const cr_object_t *a, const cr_object_t *b)
{
    size_t i;
    int e;
    FZ_CHECK(a->key_len == b->key_len && memcmp(cr_object_key(a).base, cr_object_key(b).base, a->key_len) == 0);
    FZ_CHECK(a->status == b->status && cr_object_flags(a) == cr_object_flags(b));
    FZ_CHECK(a->response_time_ms == b->response_time_ms && a->initial_age_ms == b->initial_age_ms);
    FZ_CHECK(a->lifetime_ms == b->lifetime_ms && a->swr_ms == b->swr_ms && a->sie_ms == b->sie_ms);
    FZ_CHECK(a->num_headers == b->num_headers && a->etag == b->etag);
    for (i = 0; i != a->num_headers; ++i) {
        cr_str_t an = cr_object_header_name(a, i), bn = cr_object_header_name(b, i);
        cr_str_t av = cr_object_header_value(a, i), bv = cr_object_header_value(b, i);
        FZ_CHECK(an.len == bn.len && memcmp(an.base, bn.base, an.len) == 0);
        FZ_CHECK(av.len == bv.len && memcmp(av.base, bv.base, av.len) == 0);
        FZ_CHECK(cr_object_header_token(a, i) == cr_object_header_token(b, i));
    }
    FZ_CHECK(a->num_vary == b->num_vary);
    for (i = 0; i != a->num_vary; ++i)
        FZ_CHECK(cr_object_vary_names(a)[i].len == cr_object_vary_names(b)[i].len &&
                 memcmp(cr_object_vary_names(a)[i].base, cr_object_vary_names(b)[i].base, cr_object_vary_names(a)[i].len) == 0);
    FZ_CHECK(cr_object_variant_key(a).len == cr_object_variant_key(b).len &&
             memcmp(cr_object_variant_key(a).base, cr_object_variant_key(b).base, cr_object_variant_key(a).len) == 0);
    FZ_CHECK(a->num_tags == b->num_tags);
    for (i = 0; i != a->num_tags; ++i)
        FZ_CHECK(a->tags[i].name.len == b->tags[i].name.len &&
                 memcmp(a->tags[i].name.base, b->tags[i].name.base, a->tags[i].name.len) == 0);
    for (e = 0; e != CR_ENC_MAX; ++e) {
        cr_str_t x = cr_object_body(a, (cr_encoding_t)e), y = cr_object_body(b, (cr_encoding_t)e);
        FZ_CHECK((x.base == NULL) == (y.base == NULL) && x.len == y.len);
        FZ_CHECK(x.len == 0 || memcmp(x.base, y.base, x.len) == 0);
    }
}

static uint64_t get_le(const unsigned char *p, size_t bytes)
{
    uint64_t v = 0;
    size_t i;
    for (i = 0; i != bytes; ++i)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    unsigned mode = fz_byte(&in);
    uint64_t now = (uint64_t)fz_byte(&in) * 1000;
    unsigned char *v = malloc(in.len != 0 ? in.len : 1); /* exact size (ASan sees an overread) and writable */
    const char *key = "fuzz-key";
    size_t keylen = 8, len = in.len, len2 = 0;
    cr_object_t *obj = NULL, *again = NULL;
    cr_tier_value_error_t why = CR_TIER_VALUE_NUM_ERRORS, why2;
    char *enc = NULL;
    int rc;

    FZ_CHECK(v != NULL);
    if (len != 0)
        memcpy(v, in.p, len);
    if ((mode & 1) != 0 && len >= CR_TIER_VALUE_HEADER_BYTES) {
        uLong crc;
        size_t i;
        for (i = 0; i != 8; ++i)
            v[8 + i] = (unsigned char)((uint64_t)len >> (8 * i));
        crc = crc32_z(0L, Z_NULL, 0);
        crc = crc32_z(crc, v, 16);
        crc = crc32_z(crc, v + 20, len - 20);
        for (i = 0; i != 4; ++i)
            v[16 + i] = (unsigned char)(crc >> (8 * i));
    }
    if ((mode & 2) != 0 && len >= 24 && get_le(v + 20, 4) <= len - 24) {
        keylen = (size_t)get_le(v + 20, 4);
        key = (const char *)v + 24;
    }

    rc = cr_tier_value_decode((const char *)v, len, key, keylen, now, &obj, &why, NULL);
    FZ_CHECK((unsigned)why < CR_TIER_VALUE_NUM_ERRORS && cr_tier_value_error_name(why) != NULL);
    if (rc != CR_OK) {
        FZ_CHECK(rc == CR_ERROR && obj == NULL && why != CR_TIER_VALUE_OK);
        free(v);
        return 0;
    }
    FZ_CHECK(obj != NULL && why == CR_TIER_VALUE_OK && obj->cost != 0);
    FZ_CHECK(cr_tier_value_ttl_ms(obj, now) != 0);

    rc = cr_tier_value_encode(obj, now, 0, SIZE_MAX, &enc, &len2);
    if (rc == CR_ERROR) { /* out of memory (allocator_may_return_null): nothing to compare */
        cr_object_release(&obj);
        free(v);
        return 0;
    }
    FZ_CHECK(rc == CR_OK && enc != NULL);
    FZ_CHECK(len2 == len && memcmp(enc, v, len) == 0);
    rc = cr_tier_value_decode(enc, len2, key, keylen, now, &again, &why2, NULL);
    FZ_CHECK(rc == CR_OK || why2 == CR_TIER_VALUE_NOMEM);
    if (rc == CR_OK)
        same_object(obj, again);

    cr_object_release(&again);
    cr_object_release(&obj);
    free(enc);
    free(v);
    return 0;
}
