/*
 * fuzz_inval_entry.c: the invalidation log's entry reader (tier/inval_log.c), which reads what any pod (or anything
 * else with access to memcached) wrote under an entry key.
 *
 * Input: byte 0 = mode: bit 0 set: the harness writes the right total length and CRC-32 into the entry before it is
 * read (so mutations reach the payload parser, which a checksum would otherwise hide). The rest is the entry.
 * Properties beyond "no crash, no leak, no overread":
 *  - a refusal leaves no entry and names a reason; a success names none;
 *  - what decodes re-encodes (the encoder accepts every entry the decoder makes) into exactly the bytes read (the
 *    format has one encoding per entry), and that decodes again to the same entry; its copy is the same entry too;
 *  - the cover predicate runs on the decoded entry against a fixed object (any bytes must be safe to match).
 */
#include "fuzz_util.h"

#include <zlib.h>

#include "corral/tier/inval_log.h"

static cr_object_t *fz_obj;

static const cr_object_t *fz_object(void)
{
    if (fz_obj == NULL) {
        static const char key[] = "a.example\n/v1/users/42?x=1";
        cr_str_t tags[] = {CR_STR("user-42"), CR_STR("list")};
        cr_object_t *obj = cr_object_new(key, sizeof(key) - 1, 200);
        FZ_CHECK(obj != NULL && cr_object_set_tags(obj, tags, 2) == CR_OK);
        fz_obj = cr_object_finish(obj);
    }
    return fz_obj;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    unsigned mode = fz_byte(&in);
    size_t len = in.len, len2 = 0;
    unsigned char *v = malloc(len != 0 ? len : 1); /* exact size (ASan sees an overread) and writable */
    cr_inval_entry_t *e = NULL, *again = NULL, *copy;
    cr_tier_value_error_t why = CR_TIER_VALUE_NUM_ERRORS, why2 = CR_TIER_VALUE_NUM_ERRORS;
    const cr_object_t *obj = fz_object();
    char *enc = NULL;
    int rc;

    FZ_CHECK(v != NULL);
    if (len != 0)
        memcpy(v, in.p, len);
    if ((mode & 1) != 0 && len >= CR_INVAL_HEADER_BYTES) {
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

    rc = cr_inval_entry_decode((const char *)v, len, &e, &why);
    FZ_CHECK((unsigned)why < CR_TIER_VALUE_NUM_ERRORS);
    if (rc != CR_OK) {
        FZ_CHECK(rc == CR_ERROR && e == NULL && why != CR_TIER_VALUE_OK);
        free(v);
        return 0;
    }
    FZ_CHECK(e != NULL && why == CR_TIER_VALUE_OK);
    FZ_CHECK(e->num_paths + e->num_prefixes + e->num_tags <= CR_INVAL_MAX_ITEMS);
    (void)cr_inval_entry_covers(e, obj);
    if (e->everything)
        FZ_CHECK(cr_inval_entry_covers(e, obj));

    rc = cr_inval_entry_encode(e, &enc, &len2);
    if (rc == CR_ERROR) { /* out of memory (allocator_may_return_null): nothing to compare */
        free(e);
        free(v);
        return 0;
    }
    FZ_CHECK(rc == CR_OK && enc != NULL);
    FZ_CHECK(len2 == len && memcmp(enc, v, len) == 0);
    rc = cr_inval_entry_decode(enc, len2, &again, &why2);
    FZ_CHECK(rc == CR_OK || why2 == CR_TIER_VALUE_NOMEM);
    if (rc == CR_OK)
        FZ_CHECK(cr_inval_entry_equal(e, again) && cr_inval_entry_covers(e, obj) == cr_inval_entry_covers(again, obj));
    if ((copy = cr_inval_entry_copy(e)) != NULL)
        FZ_CHECK(cr_inval_entry_equal(e, copy));

    free(copy);
    free(again);
    free(enc);
    free(e);
    free(v);
    return 0;
}
