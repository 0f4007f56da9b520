/*
 * test_inval_log.c: unit tests for sidecar/tier/inval_log.c, the invalidation log's entries (protocol v1).
 *
 * The keys; round trips (an empty entry, 4096 items with binary bytes, items and the entry at their maximum sizes);
 * the encoder's bytes against entries written here by hand after the README's layout (il_buf_*, independent of the
 * encoder); the encoder's TOO_BIG; the reader's reasons: every prefix of an entry, every byte flipped, and
 * hand-written entries with a right checksum but another version, reserved bits, lengths past the end, trailing
 * bytes, counts and lengths over the limits. The cover predicate is checked against the local purge itself:
 * real objects (cr_fill_object_new, the object builder) in a real store, purged by cr_invalidate with the entry's
 * lists (fill/ is above tier/, but the test must compare with the one entry point), and against a table written by
 * hand. Allocation failures run on a second copy of inval_log.c whose malloc fails on request.
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "corral/cache/objbuild.h"
#include "corral/fill/invalidation.h"
#include "corral/tier/inval_log.h"

void cr_test_register_inval_log(void);

/* ---- hand-written entries ---- */

typedef struct st_il_buf_t {
    unsigned char *p;
    size_t len, cap;
} il_buf_t;

static void il_put(il_buf_t *b, uint64_t v, size_t bytes)
{
    size_t i;
    if (b->len + bytes > b->cap) {
        b->cap = (b->len + bytes) * 2;
        CU_ASSERT_FATAL((b->p = realloc(b->p, b->cap)) != NULL);
    }
    for (i = 0; i != bytes; ++i)
        b->p[b->len++] = (unsigned char)(v >> (8 * i));
}

static void il_put_bytes(il_buf_t *b, const void *s, size_t len)
{
    size_t i;
    for (i = 0; i != len; ++i)
        il_put(b, ((const unsigned char *)s)[i], 1);
}

/* The header with a placeholder length and CRC, then pod_id, local_id, wall_ms and flags. */
static void il_start(il_buf_t *b, const char *magic, unsigned version, uint64_t pod, uint64_t local, uint64_t wall, unsigned flags)
{
    b->len = 0;
    il_put_bytes(b, magic, 4);
    il_put(b, version, 2);
    il_put(b, 0, 2);
    il_put(b, 0, 8);
    il_put(b, 0, 4);
    il_put(b, pod, 8);
    il_put(b, local, 8);
    il_put(b, wall, 8);
    il_put(b, flags, 1);
}

static void il_list(il_buf_t *b, const cr_str_t *items, size_t n)
{
    size_t i;
    il_put(b, n, 4);
    for (i = 0; i != n; ++i) {
        il_put(b, items[i].len, 4);
        il_put_bytes(b, items[i].base, items[i].len);
    }
}

/* Writes the total length (the buffer's) and the CRC of [0,16) + [20,end), as README says. */
static void il_seal(il_buf_t *b)
{
    uLong crc = crc32_z(0L, Z_NULL, 0);
    size_t i;
    for (i = 0; i != 8; ++i)
        b->p[8 + i] = (unsigned char)((uint64_t)b->len >> (8 * i));
    crc = crc32_z(crc, b->p, 16);
    crc = crc32_z(crc, b->p + 20, b->len - 20);
    for (i = 0; i != 4; ++i)
        b->p[16 + i] = (unsigned char)(crc >> (8 * i));
}

static cr_tier_value_error_t il_decode_why(const void *p, size_t len)
{
    cr_inval_entry_t *e = (cr_inval_entry_t *)1;
    cr_tier_value_error_t why = CR_TIER_VALUE_NUM_ERRORS;
    char *copy = malloc(len != 0 ? len : 1); /* exact size: ASan sees an overread */
    int rc;
    CU_ASSERT_FATAL(copy != NULL);
    if (len != 0)
        memcpy(copy, p, len);
    rc = cr_inval_entry_decode(copy, len, &e, &why);
    if (rc == CR_OK) {
        CU_ASSERT_EQUAL(why, CR_TIER_VALUE_OK);
        free(e);
    } else {
        CU_ASSERT_EQUAL(rc, CR_ERROR);
        CU_ASSERT_PTR_NULL(e);
    }
    free(copy);
    return why;
}

/* ---- sample entries ---- */

static const cr_str_t il_paths[] = {CR_STR("/v1/users/42"), CR_STR("/a%2Fb"), CR_STR("")};
static const cr_str_t il_prefixes[] = {CR_STR("/v1/users/")};
static const cr_str_t il_tags[] = {CR_STR("user-42"), {"t\0\xff\n", 4}, CR_STR("\x80")};

static cr_inval_entry_t il_sample(void)
{
    cr_inval_entry_t e = {0};
    e.pod_id = 0x0123456789abcdefull;
    e.local_id = 7;
    e.wall_ms = 1764658800123ull;
    e.soft = 1;
    e.paths = il_paths;
    e.num_paths = CR_ARRAY_SIZE(il_paths);
    e.prefixes = il_prefixes;
    e.num_prefixes = CR_ARRAY_SIZE(il_prefixes);
    e.tags = il_tags;
    e.num_tags = CR_ARRAY_SIZE(il_tags);
    return e;
}

static char *il_encode(const cr_inval_entry_t *e, size_t *len)
{
    char *v = NULL;
    CU_ASSERT_FATAL(cr_inval_entry_encode(e, &v, len) == CR_OK);
    CU_ASSERT_FATAL(v != NULL);
    return v;
}

/* Encodes, checks the bytes against the hand-written ones, decodes, checks the entry is the same. */
static void il_round_trip(const cr_inval_entry_t *e)
{
    il_buf_t b = {NULL, 0, 0};
    cr_inval_entry_t *got = NULL;
    cr_tier_value_error_t why = CR_TIER_VALUE_NUM_ERRORS;
    size_t len, i;
    char *v = il_encode(e, &len);

    il_start(&b, "CRIL", 1, e->pod_id, e->local_id, e->wall_ms, (e->everything ? 1u : 0u) | (e->soft ? 2u : 0u));
    il_list(&b, e->paths, e->num_paths);
    il_list(&b, e->prefixes, e->num_prefixes);
    il_list(&b, e->tags, e->num_tags);
    il_seal(&b);
    CU_ASSERT_EQUAL(len, b.len);
    CU_ASSERT(len == b.len && memcmp(v, b.p, len) == 0);

    CU_ASSERT_EQUAL_FATAL(cr_inval_entry_decode(v, len, &got, &why), CR_OK);
    CU_ASSERT_EQUAL(why, CR_TIER_VALUE_OK);
    memset(v, 0, len); /* the decoded entry holds its own bytes */
    free(v);
    CU_ASSERT(cr_inval_entry_equal(e, got));
    CU_ASSERT_EQUAL(got->num_paths, e->num_paths);
    CU_ASSERT_EQUAL(got->num_tags, e->num_tags);
    CU_ASSERT_EQUAL(got->everything, e->everything != 0);
    CU_ASSERT_EQUAL(got->soft, e->soft != 0);
    CU_ASSERT((got->paths == NULL) == (got->num_paths == 0));
    CU_ASSERT((got->prefixes == NULL) == (got->num_prefixes == 0));
    CU_ASSERT((got->tags == NULL) == (got->num_tags == 0));
    for (i = 0; i != got->num_tags; ++i)
        CU_ASSERT_EQUAL(got->tags[i].base[got->tags[i].len], '\0');
    for (i = 0; i != got->num_paths; ++i)
        CU_ASSERT_EQUAL(got->paths[i].base[got->paths[i].len], '\0');
    free(got);
    free(b.p);
}

/* ---- tests ---- */

static void test_inval_keys(void)
{
    char k[CR_INVAL_KEY_MAX + 1];

    CU_ASSERT_STRING_EQUAL(CR_INVAL_SEQ_KEY, "corral:v1:inval:seq");
    CU_ASSERT_EQUAL(cr_inval_entry_key(0, k, sizeof(k)), 17);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:inval:0");
    CU_ASSERT_EQUAL(cr_inval_entry_key(1234567, k, sizeof(k)), 23);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:inval:1234567");
    CU_ASSERT_EQUAL(cr_inval_entry_key(UINT64_MAX, k, sizeof(k)), CR_INVAL_KEY_MAX);
    CU_ASSERT_STRING_EQUAL(k, "corral:v1:inval:18446744073709551615");
    CU_ASSERT_EQUAL(CR_INVAL_KEY_MAX, 36);
    /* one byte short: nothing but "" */
    CU_ASSERT_EQUAL(cr_inval_entry_key(UINT64_MAX, k, CR_INVAL_KEY_MAX), 0);
    CU_ASSERT_STRING_EQUAL(k, "");
    CU_ASSERT_EQUAL(cr_inval_entry_key(10, k, 19), 19 - 1);
    CU_ASSERT_EQUAL(cr_inval_entry_key(100, k, 19), 0);
    CU_ASSERT_EQUAL(cr_inval_entry_key(5, NULL, 0), 0);
}

static void test_inval_round_trips(void)
{
    cr_inval_entry_t e = {0}, s = il_sample();
    static cr_str_t items[CR_INVAL_MAX_ITEMS];
    static char bytes[CR_INVAL_MAX_ITEMS][8];
    size_t i, len;
    char *v;

    /* empty: the smallest entry */
    il_round_trip(&e);
    v = il_encode(&e, &len);
    CU_ASSERT_EQUAL(len, CR_INVAL_MIN_BYTES);
    CU_ASSERT_EQUAL(CR_INVAL_MIN_BYTES, 57);
    free(v);
    e.everything = 5; /* any true value is written as 1 */
    e.pod_id = UINT64_MAX;
    il_round_trip(&e);
    il_round_trip(&s);

    /* 4096 items in all, binary bytes (NUL, 0xff, CR LF) and varied lengths, over the three lists */
    for (i = 0; i != CR_INVAL_MAX_ITEMS; ++i) {
        size_t n = i % 8, j;
        for (j = 0; j != n; ++j)
            bytes[i][j] = (char)(i * 31 + j * 7);
        items[i] = cr_str(bytes[i], n);
    }
    memset(&e, 0, sizeof(e));
    e.local_id = 99;
    e.paths = items;
    e.num_paths = 1000;
    e.prefixes = items + 1000;
    e.num_prefixes = 1;
    e.tags = items + 1001;
    e.num_tags = CR_INVAL_MAX_ITEMS - 1001;
    il_round_trip(&e);
}

static void test_inval_max_sizes(void)
{
    static char big[CR_INVAL_MAX_PATH + 1];
    cr_str_t tags[32], one;
    cr_inval_entry_t e = {0};
    size_t i, len;
    char *v = (char *)1;

    memset(big, '/', sizeof(big));
    one = cr_str(big, CR_INVAL_MAX_PATH);
    e.paths = &one;
    e.num_paths = 1;
    il_round_trip(&e);
    e.paths = NULL;
    e.num_paths = 0;
    e.prefixes = &one;
    e.num_prefixes = 1;
    il_round_trip(&e);
    e.prefixes = NULL;
    e.num_prefixes = 0;

    /* exactly CR_INVAL_ENTRY_MAX_BYTES: 31 tags of 8192 bytes (8196 each with the length) and one of 8007 */
    _Static_assert(CR_INVAL_MAX_TAG <= sizeof(big), "big holds the longest tag");
    for (i = 0; i != 31; ++i)
        tags[i] = cr_str(big, CR_INVAL_MAX_TAG);
    tags[31] = cr_str(big, CR_INVAL_ENTRY_MAX_BYTES - CR_INVAL_MIN_BYTES - 31 * (4 + CR_INVAL_MAX_TAG) - 4);
    CU_ASSERT_EQUAL(tags[31].len, 8007);
    e.tags = tags;
    e.num_tags = 32;
    il_round_trip(&e);
    v = il_encode(&e, &len);
    CU_ASSERT_EQUAL(len, CR_INVAL_ENTRY_MAX_BYTES);
    free(v);
    /* one byte more is too big, and nothing is allocated */
    ++tags[31].len;
    v = (char *)1;
    len = 1;
    CU_ASSERT_EQUAL(cr_inval_entry_encode(&e, &v, &len), CR_TIER_VALUE_TOO_BIG);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(len, 0);
}

static void test_inval_too_big(void)
{
    static cr_str_t items[CR_INVAL_MAX_ITEMS + 1];
    static char big[CR_INVAL_MAX_PATH + 1];
    cr_inval_entry_t e = {0};
    cr_str_t one = cr_str(big, CR_INVAL_MAX_PATH + 1);
    size_t len, i;
    char *v;

    for (i = 0; i != CR_INVAL_MAX_ITEMS + 1; ++i)
        items[i] = CR_STR("/x");
    /* 4097 items, however split */
    e.paths = items;
    e.num_paths = CR_INVAL_MAX_ITEMS + 1;
    CU_ASSERT_EQUAL(cr_inval_entry_encode(&e, &v, &len), CR_TIER_VALUE_TOO_BIG);
    CU_ASSERT_PTR_NULL(v);
    e.num_paths = 2000;
    e.tags = items;
    e.num_tags = CR_INVAL_MAX_ITEMS + 1 - 2000;
    CU_ASSERT_EQUAL(cr_inval_entry_encode(&e, &v, &len), CR_TIER_VALUE_TOO_BIG);
    --e.num_tags; /* 4096 */
    CU_ASSERT_EQUAL(cr_inval_entry_encode(&e, &v, &len), CR_OK);
    free(v);

    /* one item over its bound */
    memset(&e, 0, sizeof(e));
    memset(big, 'a', sizeof(big));
    e.paths = &one;
    e.num_paths = 1;
    CU_ASSERT_EQUAL(cr_inval_entry_encode(&e, &v, &len), CR_TIER_VALUE_TOO_BIG);
    e.num_paths = 0;
    e.prefixes = &one;
    e.num_prefixes = 1;
    CU_ASSERT_EQUAL(cr_inval_entry_encode(&e, &v, &len), CR_TIER_VALUE_TOO_BIG);
    e.num_prefixes = 0;
    one.len = CR_INVAL_MAX_TAG + 1;
    e.tags = &one;
    e.num_tags = 1;
    CU_ASSERT_EQUAL(cr_inval_entry_encode(&e, &v, &len), CR_TIER_VALUE_TOO_BIG);
    one.len = CR_INVAL_MAX_TAG;
    CU_ASSERT_EQUAL(cr_inval_entry_encode(&e, &v, &len), CR_OK);
    free(v);
}

static void test_inval_prefixes_and_flips(void)
{
    cr_inval_entry_t s = il_sample();
    size_t len, i;
    char *v = il_encode(&s, &len);
    unsigned bit;

    for (i = 0; i != len; ++i)
        CU_ASSERT_EQUAL(il_decode_why(v, i), CR_TIER_VALUE_SHORT);
    CU_ASSERT_EQUAL(il_decode_why(v, len), CR_TIER_VALUE_OK);
    /* each byte, with each of two masks: the reason follows the field hit */
    for (bit = 0; bit != 2; ++bit) {
        unsigned char mask = bit == 0 ? 0x01 : 0xff;
        for (i = 0; i != len; ++i) {
            cr_tier_value_error_t why, want;
            v[i] ^= (char)mask;
            why = il_decode_why(v, len);
            v[i] ^= (char)mask;
            if (i < 4)
                want = CR_TIER_VALUE_FOREIGN;
            else if (i < 6)
                want = CR_TIER_VALUE_VERSION;
            else if (i < 8)
                want = CR_TIER_VALUE_MALFORMED;
            else if (i < 16) /* a longer declared length is a truncation, a shorter one a malformed entry */
                want = (((unsigned char)v[i] ^ mask) > (unsigned char)v[i]) ? CR_TIER_VALUE_SHORT : CR_TIER_VALUE_MALFORMED;
            else
                want = CR_TIER_VALUE_CORRUPT;
            CU_ASSERT_EQUAL(why, want);
        }
    }
    free(v);
    /* another magic, short or not (a stored value read as an entry is foreign) */
    CU_ASSERT_EQUAL(il_decode_why("CRTV", 4), CR_TIER_VALUE_FOREIGN);
    CU_ASSERT_EQUAL(il_decode_why("CRI", 3), CR_TIER_VALUE_SHORT);
    CU_ASSERT_EQUAL(il_decode_why("", 0), CR_TIER_VALUE_SHORT);
}

static void test_inval_crafted(void)
{
    static const cr_str_t two[] = {CR_STR("/a"), CR_STR("/b")};
    static char big[CR_INVAL_MAX_PATH + 1];
    cr_str_t over = cr_str(big, CR_INVAL_MAX_PATH + 1), at = cr_str(big, CR_INVAL_MAX_PATH);
    il_buf_t b = {NULL, 0, 0};
    size_t i;
    int l;

    memset(big, 'p', sizeof(big));
    /* the hand-written sample decodes */
    il_start(&b, "CRIL", 1, 1, 2, 3, 0);
    il_list(&b, two, 2);
    il_list(&b, NULL, 0);
    il_list(&b, NULL, 0);
    il_seal(&b);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_OK);

    /* foreign, other versions (older and newer), reserved bits, unknown flags: right checksum each time */
    il_start(&b, "CRTV", 1, 1, 2, 3, 0);
    il_list(&b, NULL, 0), il_list(&b, NULL, 0), il_list(&b, NULL, 0);
    il_seal(&b);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_FOREIGN);
    for (i = 0; i != 3; ++i) {
        il_start(&b, "CRIL", i == 0 ? 2 : i == 1 ? 0 : 0xffff, 1, 2, 3, 0);
        il_list(&b, NULL, 0), il_list(&b, NULL, 0), il_list(&b, NULL, 0);
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_VERSION);
    }
    il_start(&b, "CRIL", 1, 1, 2, 3, 0);
    il_list(&b, NULL, 0), il_list(&b, NULL, 0), il_list(&b, NULL, 0);
    b.p[7] = 0x80;
    il_seal(&b);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_MALFORMED);
    il_start(&b, "CRIL", 1, 1, 2, 3, 4);
    il_list(&b, NULL, 0), il_list(&b, NULL, 0), il_list(&b, NULL, 0);
    il_seal(&b);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_MALFORMED);

    /* whole and checksummed but too small for the fixed fields; or a list missing */
    il_start(&b, "CRIL", 1, 1, 2, 3, 0);
    b.len = 20;
    il_seal(&b);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_MALFORMED);
    il_start(&b, "CRIL", 1, 1, 2, 3, 0);
    il_list(&b, NULL, 0), il_list(&b, NULL, 0);
    il_seal(&b);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_MALFORMED);

    /* lengths and counts past the end, in each list; a trailing byte */
    for (l = 0; l != 3; ++l) {
        size_t at_len;
        il_start(&b, "CRIL", 1, 1, 2, 3, 0);
        for (i = 0; i != 3; ++i)
            il_list(&b, i == (size_t)l ? two : NULL, i == (size_t)l ? 2 : 0);
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_OK);
        /* the first item's length: 45 + 4 (count) + 4 * l (earlier empty counts) */
        at_len = 45 + 4 * (size_t)l + 4;
        b.p[at_len] = 0xff;
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_MALFORMED);
        b.p[at_len] = 2;
        b.p[at_len + 3] = 0x80; /* 2^31 + 2: past the end, and past the item bound */
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_MALFORMED);
        b.p[at_len + 3] = 0;
        b.p[at_len - 4] = 3; /* three items, two there */
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_MALFORMED);
        b.p[at_len - 4] = 2;
        il_put(&b, 0, 1);
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_MALFORMED);
    }

    /* over the limits: counts (one list, and the sum), an item's length, the entry's size */
    for (l = 0; l != 3; ++l) {
        il_start(&b, "CRIL", 1, 1, 2, 3, 0);
        for (i = 0; i != 3; ++i)
            il_put(&b, i == (size_t)l ? CR_INVAL_MAX_ITEMS + 1 : 0, 4);
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_LIMIT);
        il_start(&b, "CRIL", 1, 1, 2, 3, 0);
        for (i = 0; i != 3; ++i)
            il_put(&b, i == (size_t)l ? UINT32_MAX : 0, 4);
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_LIMIT);
        /* the longest item passes, one byte more does not */
        il_start(&b, "CRIL", 1, 1, 2, 3, 0);
        for (i = 0; i != 3; ++i)
            il_list(&b, &at, i == (size_t)l ? 1 : 0);
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_OK);
        il_start(&b, "CRIL", 1, 1, 2, 3, 0);
        for (i = 0; i != 3; ++i)
            il_list(&b, &over, i == (size_t)l ? 1 : 0);
        il_seal(&b);
        CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_LIMIT);
    }
    il_start(&b, "CRIL", 1, 1, 2, 3, 0);
    il_put(&b, 2048, 4); /* 2048 + 0 + 2049 items: the sum is over */
    for (i = 0; i != 2048; ++i)
        il_put(&b, 0, 4);
    il_put(&b, 0, 4);
    il_put(&b, 2049, 4);
    for (i = 0; i != 2049; ++i)
        il_put(&b, 0, 4);
    il_seal(&b);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_LIMIT);
    b.p[b.len - 4 * 2049 - 4] = 0x00; /* 2048 + 0 + (2049 - 1) = 4096 items... */
    b.p[b.len - 4 * 2049 - 3] = 0x08;
    b.len -= 4; /* ...with one item fewer written */
    il_seal(&b);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_OK);
    /* an entry over CR_INVAL_ENTRY_MAX_BYTES, each item within its bound */
    il_start(&b, "CRIL", 1, 1, 2, 3, 0);
    il_list(&b, NULL, 0), il_list(&b, NULL, 0);
    il_put(&b, 32, 4);
    for (i = 0; i != 32; ++i) {
        il_put(&b, 8192, 4);
        il_put_bytes(&b, big, 8192);
    }
    il_seal(&b);
    CU_ASSERT(b.len > CR_INVAL_ENTRY_MAX_BYTES);
    CU_ASSERT_EQUAL(il_decode_why(b.p, b.len), CR_TIER_VALUE_LIMIT);
    free(b.p);
}

/* ---- the cover predicate, against the local purge ---- */

/* Objects as fills store them: keys in cr_key_build's layout (authority, path and query, key headers), tags. */
#define IL_S(lit) {(lit), sizeof(lit) - 1}
static const struct {
    const char *key;
    cr_str_t tags[2];
    size_t num_tags;
} il_objs[] = {
    {"a.example\n/v1/users/42", {IL_S("user-42"), IL_S("list")}, 2},
    {"a.example\n/v1/users/42?page=2&z=1", {{NULL, 0}}, 0},
    {"a.example\n/v1/users/42\naccept-language:de\n", {IL_S("user-42")}, 1}, /* and a Vary variant */
    {"b.example:8080\n/v1/users/42", {{NULL, 0}}, 0},
    {"a.example\n/v1/users/420", {IL_S("user-420")}, 1},
    {"a.example\n/v1/users/4", {IL_S("t\0\xff")}, 1},
    {"a.example\n/v1/users", {IL_S("USER-42")}, 1},
    {"a.example\n/v1/usersX/1", {{NULL, 0}}, 0},
    {"a.example\n/v2/x?/v1/users/42", {{NULL, 0}}, 0},
};
#define IL_NOBJS CR_ARRAY_SIZE(il_objs)

static cr_object_t *il_object(size_t i)
{
    cr_object_t *obj = cr_fill_object_new(cr_str(il_objs[i].key, strlen(il_objs[i].key)), 200);
    CU_ASSERT_FATAL(obj != NULL);
    if (i == 2) {
        cr_str_t vary[] = {CR_STR("accept-encoding")};
        CU_ASSERT_FATAL(cr_object_set_vary(obj, vary, 1, "accept-encoding:br\n", 19) == CR_OK);
    }
    CU_ASSERT_FATAL(cr_object_set_tags(obj, il_objs[i].tags, il_objs[i].num_tags) == CR_OK);
    CU_ASSERT_FATAL(obj->num_tags == il_objs[i].num_tags);
    cr_object_set_body(obj, CR_ENC_IDENTITY, NULL, 0);
    obj = cr_object_finish(obj);
    obj->lifetime_ms = 60000;
    return obj;
}

/* Checks cr_inval_entry_covers against the hand-written mask (bit i: object i) and against what cr_invalidate does
 * with the same lists to a store holding the objects: soft (each object's mark), then hard (the count). */
static void il_check_cover(const cr_inval_entry_t *e, unsigned want)
{
    cr_invalidate_req_t req = {NULL};
    cr_object_t *objs[IL_NOBJS];
    cr_store_t *store;
    unsigned got = 0, marked = 0;
    size_t i, want_n = 0;
    int soft;

    for (soft = 1; soft >= 0; --soft) {
        CU_ASSERT_FATAL((store = cr_store_new(1 << 20)) != NULL);
        for (i = 0; i != IL_NOBJS; ++i) {
            objs[i] = il_object(i);
            CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
        }
        CU_ASSERT_EQUAL(cr_store_count(store), IL_NOBJS);
        req.paths = e->paths;
        req.num_paths = e->num_paths;
        req.prefixes = e->prefixes;
        req.num_prefixes = e->num_prefixes;
        req.tags = e->tags;
        req.num_tags = e->num_tags;
        req.everything = e->everything;
        req.soft = soft;
        if (soft) {
            cr_invalidate(store, &req, NULL);
            for (i = 0; i != IL_NOBJS; ++i) {
                if (cr_inval_entry_covers(e, objs[i]))
                    got |= 1u << i;
                if ((cr_object_flags(objs[i]) & CR_OBJ_INVALIDATED) != 0 || e->everything) /* everything is always hard */
                    marked |= 1u << i;
            }
            for (i = 0; i != IL_NOBJS; ++i)
                want_n += (want >> i) & 1u;
        } else {
            CU_ASSERT_EQUAL(cr_invalidate(store, &req, NULL), want_n);
            CU_ASSERT_EQUAL(cr_store_count(store), IL_NOBJS - want_n);
        }
        for (i = 0; i != IL_NOBJS; ++i)
            cr_object_release(&objs[i]);
        cr_store_free(&store);
    }
    CU_ASSERT_EQUAL(got, want);
    CU_ASSERT_EQUAL(marked, want);
}

static void test_inval_covers(void)
{
    static const cr_str_t path42[] = {CR_STR("/v1/users/42")}, path4[] = {CR_STR("/v1/users/4/")}, nothing[] = {CR_STR("/nothing")};
    static const cr_str_t pre4[] = {CR_STR("/v1/users/4")}, preusers[] = {CR_STR("/v1/users")}, preall[] = {CR_STR("/")},
                          preusers_slash[] = {CR_STR("/v1/users/")};
    static const cr_str_t tag42[] = {CR_STR("user-42")}, tagbin[] = {{"t\0\xff", 3}}, tagmiss[] = {CR_STR("user-4"), CR_STR("t")};
    cr_inval_entry_t e = {0};

    il_check_cover(&e, 0); /* covers nothing */
    e.paths = path42; /* every variant, any query, key headers, another authority (the local purge ignores it) */
    e.num_paths = 1;
    il_check_cover(&e, 0x00f);
    e.paths = path4; /* exact: a trailing '/' is another path */
    il_check_cover(&e, 0);
    e.paths = nothing;
    il_check_cover(&e, 0);
    e.num_paths = 0;
    e.prefixes = pre4; /* on a segment boundary: /v1/users/4, not /v1/users/42 or /v1/users/420 */
    e.num_prefixes = 1;
    il_check_cover(&e, 0x020);
    e.prefixes = preusers; /* /v1/users and below, not /v1/usersX/1 */
    il_check_cover(&e, 0x07f);
    e.prefixes = preusers_slash; /* only below /v1/users/ */
    il_check_cover(&e, 0x03f);
    e.prefixes = preall;
    il_check_cover(&e, 0x1ff);
    e.num_prefixes = 0;
    e.tags = tag42; /* exact bytes, case-sensitive */
    e.num_tags = 1;
    il_check_cover(&e, 0x005);
    e.tags = tagbin;
    il_check_cover(&e, 0x020);
    e.tags = tagmiss;
    e.num_tags = 2;
    il_check_cover(&e, 0);
    e.paths = nothing; /* lists together: any one covering is enough */
    e.num_paths = 1;
    e.tags = tag42;
    e.num_tags = 1;
    e.prefixes = preusers + 0;
    e.num_prefixes = 0;
    il_check_cover(&e, 0x005);
    e.num_prefixes = 1;
    il_check_cover(&e, 0x07f);
    memset(&e, 0, sizeof(e));
    e.everything = 1;
    il_check_cover(&e, 0x1ff);
}

/* ---- copies and allocation failures ---- */

static void test_inval_copy_and_equal(void)
{
    cr_inval_entry_t s = il_sample(), t = il_sample(), *c = cr_inval_entry_copy(&s);
    static const cr_str_t other[] = {CR_STR("/v1/users/43")};

    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT(cr_inval_entry_equal(&s, c));
    CU_ASSERT(c->paths != s.paths && c->paths[0].base != s.paths[0].base);
    free(c);
    CU_ASSERT(cr_inval_entry_equal(&s, &t));
    t.local_id = 8;
    CU_ASSERT(!cr_inval_entry_equal(&s, &t));
    t = il_sample();
    t.soft = 0;
    CU_ASSERT(!cr_inval_entry_equal(&s, &t));
    t = il_sample();
    t.paths = other;
    t.num_paths = 1;
    CU_ASSERT(!cr_inval_entry_equal(&s, &t));
    t = il_sample();
    t.tags = il_tags + 1;
    t.num_tags = 2;
    CU_ASSERT(!cr_inval_entry_equal(&s, &t));
}

static int il_fail_at = -1; /* the allocation of inval_log.c (0 = the next one) that fails; -1: none */

static void *il_malloc(size_t n)
{
    if (il_fail_at >= 0 && il_fail_at-- == 0)
        return NULL;
    return malloc(n);
}

#define malloc(n) il_malloc(n)
#define cr_inval_entry_key oom_cr_inval_entry_key
#define cr_inval_entry_encode oom_cr_inval_entry_encode
#define cr_inval_entry_decode oom_cr_inval_entry_decode
#define cr_inval_entry_copy oom_cr_inval_entry_copy
#define cr_inval_entry_equal oom_cr_inval_entry_equal
#define cr_inval_entry_covers oom_cr_inval_entry_covers
#include "../../../sidecar/tier/inval_log.c"
#undef malloc
#undef cr_inval_entry_key
#undef cr_inval_entry_encode
#undef cr_inval_entry_decode
#undef cr_inval_entry_copy
#undef cr_inval_entry_equal
#undef cr_inval_entry_covers

static void test_inval_oom(void)
{
    cr_inval_entry_t s = il_sample(), *got = (cr_inval_entry_t *)1;
    cr_tier_value_error_t why = CR_TIER_VALUE_OK;
    size_t len, len2 = 1;
    char *v = il_encode(&s, &len), *v2 = (char *)1;

    il_fail_at = 0;
    CU_ASSERT_EQUAL(oom_cr_inval_entry_encode(&s, &v2, &len2), CR_ERROR);
    CU_ASSERT_PTR_NULL(v2);
    CU_ASSERT_EQUAL(len2, 0);
    il_fail_at = 0;
    CU_ASSERT_EQUAL(oom_cr_inval_entry_decode(v, len, &got, &why), CR_ERROR);
    CU_ASSERT_EQUAL(why, CR_TIER_VALUE_NOMEM);
    CU_ASSERT_PTR_NULL(got);
    il_fail_at = 0;
    CU_ASSERT_PTR_NULL(oom_cr_inval_entry_copy(&s));
    /* a refusal for a reason before the allocation is that reason, not nomem */
    il_fail_at = 0;
    CU_ASSERT_EQUAL(oom_cr_inval_entry_decode(v, len - 1, &got, &why), CR_ERROR);
    CU_ASSERT_EQUAL(why, CR_TIER_VALUE_SHORT);
    il_fail_at = -1;
    CU_ASSERT_EQUAL(oom_cr_inval_entry_decode(v, len, &got, &why), CR_OK);
    CU_ASSERT(got != NULL && cr_inval_entry_equal(&s, got));
    free(got);
    free(v);
}

void cr_test_register_inval_log(void)
{
    CU_pSuite suite = CU_add_suite("tier inval log", NULL, NULL);

    CU_add_test(suite, "entry keys and the counter key", test_inval_keys);
    CU_add_test(suite, "entries round-trip: empty, 4096 binary items", test_inval_round_trips);
    CU_add_test(suite, "the longest items and the largest entry round-trip", test_inval_max_sizes);
    CU_add_test(suite, "the encoder refuses what the decoder would", test_inval_too_big);
    CU_add_test(suite, "every prefix is short, every flipped byte refused", test_inval_prefixes_and_flips);
    CU_add_test(suite, "hand-written entries: version, fields, lengths, limits", test_inval_crafted);
    CU_add_test(suite, "covers exactly what the local purge purges", test_inval_covers);
    CU_add_test(suite, "copies and comparisons", test_inval_copy_and_equal);
    CU_add_test(suite, "allocation failures", test_inval_oom);
}
