/*
 * value.c: encoding a finished object into a shared-tier value (protocol v1) and decoding one back (see value.h and
 * README "Shared tier protocol", which this file must match byte for byte).
 *
 * Layout, every integer little-endian, written and read byte by byte (no casts of unaligned memory):
 *     0  magic "CRTV"                      4 bytes
 *     4  format version (1)                u16
 *     6  reserved, 0                       u16
 *     8  total length of the value         u64 (== the memcached value's length)
 *    16  CRC-32 (zlib) of bytes [0,16) then [20,end)  u32
 *    20  key:      u32 length, bytes
 *        status    u16 (100..999);  flags u16 (bit 0 FORCED, 1 MUST_REVALIDATE, 2 NO_CACHE, 3 SHAREABLE, 4 ENCODED,
 *                                   5 KEEP_CODING; any other bit set: malformed)
 *        times     u64 response time (wall-clock ms since the epoch), u32 initial age, u32 lifetime, u32
 *                  stale-while-revalidate, u32 stale-if-error (ms)
 *        log pos   u64: the invalidation log position the writer's fill had seen when it began (0: none)
 *        headers   u16 count; each: u32 name length, u32 value length, name (lower-case tchars), value (no NUL,
 *                  CR or LF)
 *        vary      u8 count; each: u32 length, name (lower-case tchars); then u32 length, variant key (0 when no name)
 *        tags      u32 count (<= CR_SURROGATE_KEYS_MAX); each: u32 length, bytes (non-empty, distinct)
 *        bodies    u8 mask (bit 0 identity, always set; bit 1 gzip; bit 2 br); per bit in that order: u64 length, bytes
 *        end       the value ends exactly here
 *
 * Invariants: the reader checks in this order, so that each refusal has one reason: length < 20 (short), magic
 * (foreign), version (unknown), reserved and declared length (malformed, short), checksum (corrupt), then the payload
 * field by field (malformed, limit), the key (key), the times (expired), and only then builds the object (nomem).
 * Every length is compared with what is left before it is used; sums of lengths are made in size_t only after each
 * term was bounded by what is left, so none can wrap. What the encoder writes the decoder accepts (the encoder
 * refuses, as unfit, an object the decoder would call malformed).
 * Locking: none (pure functions; the encoder reads a possibly shared finished object, its flags atomically).
 */
#include "corral/tier/value.h"

#include "corral/tier/wire.h"

_Static_assert(CR_TIER_VALUE_HEADER_BYTES == CR_WIRE_HEADER_BYTES, "the value's header is the shared one (wire.h)");

#include <h2o.h>
#include <stdlib.h>

#include "corral/http/http.h"
#include "corral/http/invalidate.h"

static const unsigned char cr_tier_magic[4] = {'C', 'R', 'T', 'V'};

/* The object flags a value carries, by wire bit. */
static const unsigned cr_tier_flag_map[] = {CR_OBJ_FORCED,   CR_OBJ_MUST_REVALIDATE, CR_OBJ_NO_CACHE,
                                            CR_OBJ_SHAREABLE, CR_OBJ_ENCODED,         CR_OBJ_KEEP_CODING};

const char *cr_tier_value_error_name(cr_tier_value_error_t why)
{
    static const char *const names[CR_TIER_VALUE_NUM_ERRORS] = {"ok",        "short", "foreign", "version", "corrupt",
                                                                "key",       "malformed", "limit", "expired", "nomem"};
    return (unsigned)why < CR_TIER_VALUE_NUM_ERRORS ? names[why] : "unknown";
}

static uint64_t cr_tier_ttl(uint64_t response_time, uint32_t initial_age, uint32_t lifetime, uint32_t swr, uint32_t sie, uint64_t now)
{
    uint64_t age = (uint64_t)initial_age + (now > response_time ? now - response_time : 0), use = (uint64_t)lifetime + CR_MAX(swr, sie);
    return use > age ? use - age : 0;
}

uint64_t cr_tier_value_ttl_ms(const cr_object_t *obj, uint64_t now_ms)
{
    return cr_tier_ttl(obj->response_time_ms, obj->initial_age_ms, obj->lifetime_ms, obj->swr_ms, obj->sie_ms, now_ms);
}

static int cr_tier_is_lower_token(cr_str_t s)
{
    size_t i;
    if (s.len == 0)
        return 0;
    for (i = 0; i != s.len; ++i)
        if (!cr_is_tchar((unsigned char)s.base[i]) || (s.base[i] >= 'A' && s.base[i] <= 'Z'))
            return 0;
    return 1;
}

static int cr_tier_is_field_value(cr_str_t s)
{
    return memchr(s.base, '\0', s.len) == NULL && memchr(s.base, '\r', s.len) == NULL && memchr(s.base, '\n', s.len) == NULL;
}

/* The checks both sides share on the flags and bodies: an encoded object holds gzip or br and an empty identity
 * body; KEEP_CODING only with ENCODED. */
static int cr_tier_codings_ok(unsigned flags, unsigned mask, size_t identity_len)
{
    if ((flags & CR_OBJ_KEEP_CODING) != 0 && (flags & CR_OBJ_ENCODED) == 0)
        return 0;
    if ((flags & CR_OBJ_ENCODED) != 0 && ((mask & (CR_ENC_BIT(CR_ENC_GZIP) | CR_ENC_BIT(CR_ENC_BR))) == 0 || identity_len != 0))
        return 0;
    return 1;
}

/* ---- writing ---- */

/* Adds n to *size; returns 0 when the sum passes `max` (no wrap: max <= SIZE_MAX). */
static int cr_tier_grow(size_t *size, size_t n, size_t max)
{
    if (n > max - *size)
        return 0;
    *size += n;
    return 1;
}

/* The value's size, or 0 when it passes max_bytes; CR_TIER_VALUE_UNFIT in *rc when a field cannot be carried. */
static size_t cr_tier_size(const cr_object_t *obj, size_t max_bytes, int *rc)
{
    size_t size = 0, i;
    int e;

    *rc = CR_OK;
    if (!cr_tier_grow(&size, CR_TIER_VALUE_HEADER_BYTES + 4 + obj->key_len + 4 + 24 + 8 + 2, max_bytes))
        return 0;
    for (i = 0; i != obj->num_headers; ++i) {
        cr_str_t n = cr_object_header_name(obj, i), v = cr_object_header_value(obj, i);
        if (!cr_tier_is_lower_token(n) || !cr_tier_is_field_value(v))
            goto Unfit;
        if (!cr_tier_grow(&size, 8 + n.len, max_bytes) || !cr_tier_grow(&size, v.len, max_bytes))
            return 0;
    }
    if (!cr_tier_grow(&size, 1 + 4 + cr_object_variant_key(obj).len, max_bytes) || cr_object_variant_key(obj).len > UINT32_MAX)
        return 0;
    for (i = 0; i != obj->num_vary; ++i) {
        cr_str_t n = cr_object_vary_names(obj)[i];
        if (!cr_tier_is_lower_token(n) || n.len > UINT32_MAX)
            goto Unfit;
        if (!cr_tier_grow(&size, 4 + n.len, max_bytes))
            return 0;
    }
    if (obj->num_tags > CR_SURROGATE_KEYS_MAX)
        goto Unfit;
    if (!cr_tier_grow(&size, 4, max_bytes))
        return 0;
    for (i = 0; i != obj->num_tags; ++i) {
        if (obj->tags[i].name.len == 0 || obj->tags[i].name.len > UINT32_MAX)
            goto Unfit;
        if (!cr_tier_grow(&size, 4 + obj->tags[i].name.len, max_bytes))
            return 0;
    }
    if (!cr_tier_grow(&size, 1, max_bytes))
        return 0;
    for (e = 0; e != CR_ENC_MAX; ++e) {
        cr_str_t b = cr_object_body(obj, (cr_encoding_t)e);
        if (b.base != NULL && (!cr_tier_grow(&size, 8, max_bytes) || !cr_tier_grow(&size, b.len, max_bytes)))
            return 0;
    }
    return size;
Unfit:
    *rc = CR_TIER_VALUE_UNFIT;
    return 0;
}

int cr_tier_value_encode(const cr_object_t *obj, uint64_t now_ms, uint64_t log_pos, size_t max_bytes, char **out, size_t *outlen)
{
    unsigned flags = cr_object_flags(obj), wire = 0, mask = 0, i;
    unsigned char *v, *p;
    size_t size, n;
    int e, rc;

    CR_CHECK_OBJ_NOTNULL(obj, CR_OBJECT_MAGIC);
    assert(obj->cost != 0); /* finished */
    *out = NULL;
    *outlen = 0;
    for (e = 0; e != CR_ENC_MAX; ++e)
        if (cr_object_body(obj, (cr_encoding_t)e).base != NULL)
            mask |= CR_ENC_BIT(e);
    if ((flags & (CR_OBJ_PASS | CR_OBJ_INVALIDATED)) != 0 || obj->status < 100 || obj->status > 999 ||
        !cr_tier_codings_ok(flags, mask, cr_object_body(obj, CR_ENC_IDENTITY).len) || cr_tier_value_ttl_ms(obj, now_ms) == 0)
        return CR_TIER_VALUE_UNFIT;
    for (i = 0; i != CR_ARRAY_SIZE(cr_tier_flag_map); ++i)
        if ((flags & cr_tier_flag_map[i]) != 0)
            wire |= 1u << i;
    if ((size = cr_tier_size(obj, max_bytes, &rc)) == 0)
        return rc != CR_OK ? rc : CR_TIER_VALUE_TOO_BIG;
    if ((v = malloc(size)) == NULL)
        return CR_ERROR;

    p = v;
    cr_wire_put_bytes(&p, cr_tier_magic, 4);
    cr_wire_put(&p, CR_TIER_FORMAT_VERSION, 2);
    cr_wire_put(&p, 0, 2);
    cr_wire_put(&p, size, 8);
    cr_wire_put(&p, 0, 4); /* the checksum, filled in last */
    cr_wire_put(&p, obj->key_len, 4);
    cr_wire_put_bytes(&p, cr_object_key(obj).base, obj->key_len);
    cr_wire_put(&p, obj->status, 2);
    cr_wire_put(&p, wire, 2);
    cr_wire_put(&p, obj->response_time_ms, 8);
    cr_wire_put(&p, obj->initial_age_ms, 4);
    cr_wire_put(&p, obj->lifetime_ms, 4);
    cr_wire_put(&p, obj->swr_ms, 4);
    cr_wire_put(&p, obj->sie_ms, 4);
    cr_wire_put(&p, log_pos, 8);
    cr_wire_put(&p, obj->num_headers, 2);
    for (n = 0; n != obj->num_headers; ++n) {
        cr_str_t name = cr_object_header_name(obj, n), value = cr_object_header_value(obj, n);
        cr_wire_put(&p, name.len, 4);
        cr_wire_put(&p, value.len, 4);
        cr_wire_put_bytes(&p, name.base, name.len);
        cr_wire_put_bytes(&p, value.base, value.len);
    }
    cr_wire_put(&p, obj->num_vary, 1);
    for (n = 0; n != obj->num_vary; ++n) {
        cr_str_t name = cr_object_vary_names(obj)[n];
        cr_wire_put(&p, name.len, 4);
        cr_wire_put_bytes(&p, name.base, name.len);
    }
    cr_wire_put(&p, cr_object_variant_key(obj).len, 4);
    cr_wire_put_bytes(&p, cr_object_variant_key(obj).base, cr_object_variant_key(obj).len);
    cr_wire_put(&p, obj->num_tags, 4);
    for (n = 0; n != obj->num_tags; ++n) {
        cr_wire_put(&p, obj->tags[n].name.len, 4);
        cr_wire_put_bytes(&p, obj->tags[n].name.base, obj->tags[n].name.len);
    }
    cr_wire_put(&p, mask, 1);
    for (e = 0; e != CR_ENC_MAX; ++e) {
        cr_str_t b = cr_object_body(obj, (cr_encoding_t)e);
        if (b.base == NULL)
            continue;
        cr_wire_put(&p, b.len, 8);
        cr_wire_put_bytes(&p, b.base, b.len);
    }
    assert((size_t)(p - v) == size);
    p = v + 16;
    cr_wire_put(&p, cr_wire_crc(v, size), 4);
    *out = (char *)v;
    *outlen = size;
    return CR_OK;
}

/* ---- reading ---- */

/* A length-prefixed string (u32 length). */
static cr_str_t cr_tier_get_str(cr_wire_reader_t *r)
{
    return cr_wire_get_bytes(r, cr_wire_get(r, 4));
}

/* Everything of a value the reader checks before it builds the object; strings point into the value. */
typedef struct st_cr_tier_fields_t {
    cr_str_t key;
    unsigned status, flags;
    uint64_t response_time;
    uint32_t initial_age, lifetime, swr, sie;
    uint64_t log_pos;
    size_t num_headers;
    const unsigned char *headers; /* where the headers start (read again while building) */
    size_t num_vary;
    cr_str_t vary[CR_OBJECT_MAX_VARY];
    cr_str_t variant_key;
    size_t num_tags;
    cr_str_t tags[CR_SURROGATE_KEYS_MAX];
    unsigned mask;
    cr_str_t bodies[CR_ENC_MAX];
} cr_tier_fields_t;

/* Parses and checks the payload into f (the header is already checked). Returns CR_TIER_VALUE_OK or the reason. */
static cr_tier_value_error_t cr_tier_parse(cr_wire_reader_t *r, cr_tier_fields_t *f)
{
    uint64_t header_bytes = 0;
    unsigned wire, i;
    size_t n, j;
    int e;

    f->key = cr_tier_get_str(r);
    f->status = (unsigned)cr_wire_get(r, 2);
    wire = (unsigned)cr_wire_get(r, 2);
    f->response_time = cr_wire_get(r, 8);
    f->initial_age = (uint32_t)cr_wire_get(r, 4);
    f->lifetime = (uint32_t)cr_wire_get(r, 4);
    f->swr = (uint32_t)cr_wire_get(r, 4);
    f->sie = (uint32_t)cr_wire_get(r, 4);
    f->log_pos = cr_wire_get(r, 8);
    if (r->bad || f->status < 100 || f->status > 999 || (wire >> CR_ARRAY_SIZE(cr_tier_flag_map)) != 0)
        return CR_TIER_VALUE_MALFORMED;
    for (f->flags = 0, i = 0; i != CR_ARRAY_SIZE(cr_tier_flag_map); ++i)
        if ((wire & (1u << i)) != 0)
            f->flags |= cr_tier_flag_map[i];

    f->num_headers = (size_t)cr_wire_get(r, 2);
    f->headers = r->p;
    for (n = 0; n != f->num_headers; ++n) {
        uint64_t nlen = cr_wire_get(r, 4), vlen = cr_wire_get(r, 4);
        cr_str_t name = cr_wire_get_bytes(r, nlen), value = cr_wire_get_bytes(r, vlen);
        if (r->bad || !cr_tier_is_lower_token(name) || !cr_tier_is_field_value(value))
            return CR_TIER_VALUE_MALFORMED;
        if (nlen > CR_OBJECT_MAX_NAME)
            return CR_TIER_VALUE_LIMIT;
        header_bytes += nlen + vlen + 2; /* each term is below the value's length: no wrap */
    }
    if (header_bytes > CR_OBJECT_MAX_HEADER_BYTES)
        return CR_TIER_VALUE_LIMIT;

    f->num_vary = (size_t)cr_wire_get(r, 1);
    for (n = 0; n != f->num_vary; ++n)
        if (!cr_tier_is_lower_token(f->vary[n] = cr_tier_get_str(r)))
            return CR_TIER_VALUE_MALFORMED;
    f->variant_key = cr_tier_get_str(r);
    if (r->bad || (f->num_vary == 0 && f->variant_key.len != 0))
        return CR_TIER_VALUE_MALFORMED;

    f->num_tags = (size_t)cr_wire_get(r, 4);
    if (r->bad)
        return CR_TIER_VALUE_MALFORMED;
    if (f->num_tags > CR_SURROGATE_KEYS_MAX)
        return CR_TIER_VALUE_LIMIT;
    for (n = 0; n != f->num_tags; ++n) {
        f->tags[n] = cr_tier_get_str(r);
        if (r->bad || f->tags[n].len == 0)
            return CR_TIER_VALUE_MALFORMED;
        for (j = 0; j != n; ++j)
            if (f->tags[j].len == f->tags[n].len && memcmp(f->tags[j].base, f->tags[n].base, f->tags[n].len) == 0)
                return CR_TIER_VALUE_MALFORMED;
    }

    f->mask = (unsigned)cr_wire_get(r, 1);
    if (r->bad || (f->mask & 1u) == 0 || (f->mask >> CR_ENC_MAX) != 0)
        return CR_TIER_VALUE_MALFORMED;
    for (e = 0; e != CR_ENC_MAX; ++e) {
        f->bodies[e] = cr_str(NULL, 0);
        if ((f->mask & CR_ENC_BIT(e)) != 0)
            f->bodies[e] = cr_wire_get_bytes(r, cr_wire_get(r, 8));
    }
    if (r->bad || r->left != 0 || !cr_tier_codings_ok(f->flags, f->mask, f->bodies[CR_ENC_IDENTITY].len))
        return CR_TIER_VALUE_MALFORMED;
    return CR_TIER_VALUE_OK;
}

/* Builds the finished object from checked fields. NULL when out of memory. */
static cr_object_t *cr_tier_build(cr_tier_fields_t *f)
{
    cr_wire_reader_t r = {f->headers, SIZE_MAX, 0}; /* the headers were bounds-checked by cr_tier_parse */
    cr_object_t *obj;
    size_t n;
    int e;

    if ((obj = cr_object_new(f->key.base, f->key.len, (int)f->status)) == NULL)
        return NULL;
    for (n = 0; n != f->num_headers; ++n) {
        uint64_t nlen = cr_wire_get(&r, 4), vlen = cr_wire_get(&r, 4);
        cr_str_t name = cr_wire_get_bytes(&r, nlen), value = cr_wire_get_bytes(&r, vlen);
        const h2o_token_t *token = h2o_lookup_token(name.base, name.len);
        if (cr_object_add_header(obj, name.base, name.len, value.base, value.len, token != NULL ? cr_token_index(&token->buf) : 0) !=
            CR_OK)
            goto Error;
    }
    if (f->num_vary != 0 && cr_object_set_vary(obj, f->vary, f->num_vary, f->variant_key.base, f->variant_key.len) != CR_OK)
        goto Error;
    if (f->num_tags != 0 && cr_object_set_tags(obj, f->tags, f->num_tags) != CR_OK)
        goto Error;
    for (e = 0; e != CR_ENC_MAX; ++e) {
        char *copy = NULL;
        if ((f->mask & CR_ENC_BIT(e)) == 0)
            continue;
        if ((f->bodies[e].len != 0 || e != CR_ENC_IDENTITY) && (copy = malloc(f->bodies[e].len != 0 ? f->bodies[e].len : 1)) == NULL)
            goto Error;
        if (f->bodies[e].len != 0)
            memcpy(copy, f->bodies[e].base, f->bodies[e].len);
        cr_object_set_body(obj, (cr_encoding_t)e, copy, f->bodies[e].len);
    }
    obj->flags = (uint16_t)f->flags;
    obj->response_time_ms = f->response_time;
    obj->initial_age_ms = f->initial_age;
    obj->lifetime_ms = f->lifetime;
    obj->swr_ms = f->swr;
    obj->sie_ms = f->sie;
    return cr_object_finish(obj);
Error:
    cr_object_release(&obj);
    return NULL;
}

int cr_tier_value_decode(const char *buf, size_t len, const char *expect_key, size_t keylen, uint64_t now_ms, cr_object_t **out,
                         cr_tier_value_error_t *why, uint64_t *log_pos)
{
    const unsigned char *v = (const unsigned char *)buf;
    cr_wire_reader_t r = {v, len, 0};
    cr_tier_fields_t *f = NULL;
    uint64_t total;
    uint32_t crc;

    *out = NULL;
    if (len < CR_TIER_VALUE_HEADER_BYTES) {
        *why = len >= 4 && memcmp(v, cr_tier_magic, 4) != 0 ? CR_TIER_VALUE_FOREIGN : CR_TIER_VALUE_SHORT;
        return CR_ERROR;
    }
    r.p += 4;
    r.left -= 4;
    if (memcmp(v, cr_tier_magic, 4) != 0) {
        *why = CR_TIER_VALUE_FOREIGN;
        return CR_ERROR;
    }
    if (cr_wire_get(&r, 2) != CR_TIER_FORMAT_VERSION) {
        *why = CR_TIER_VALUE_VERSION;
        return CR_ERROR;
    }
    if (cr_wire_get(&r, 2) != 0) {
        *why = CR_TIER_VALUE_MALFORMED;
        return CR_ERROR;
    }
    total = cr_wire_get(&r, 8);
    crc = (uint32_t)cr_wire_get(&r, 4);
    if (total != len) {
        *why = total > len ? CR_TIER_VALUE_SHORT : CR_TIER_VALUE_MALFORMED;
        return CR_ERROR;
    }
    if (cr_wire_crc(v, len) != crc) {
        *why = CR_TIER_VALUE_CORRUPT;
        return CR_ERROR;
    }
    if ((f = malloc(sizeof(*f))) == NULL) {
        *why = CR_TIER_VALUE_NOMEM;
        return CR_ERROR;
    }
    if ((*why = cr_tier_parse(&r, f)) != CR_TIER_VALUE_OK)
        goto Exit;
    if (f->key.len != keylen || (keylen != 0 && memcmp(f->key.base, expect_key, keylen) != 0)) {
        *why = CR_TIER_VALUE_KEY;
        goto Exit;
    }
    if (cr_tier_ttl(f->response_time, f->initial_age, f->lifetime, f->swr, f->sie, now_ms) == 0) {
        *why = CR_TIER_VALUE_EXPIRED;
        goto Exit;
    }
    if ((*out = cr_tier_build(f)) == NULL)
        *why = CR_TIER_VALUE_NOMEM;
    else if (log_pos != NULL)
        *log_pos = f->log_pos;
Exit:
    free(f);
    return *why == CR_TIER_VALUE_OK ? CR_OK : CR_ERROR;
}
