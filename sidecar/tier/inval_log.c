/*
 * inval_log.c: the invalidation log's entry codec, its keys and the cover predicate (see inval_log.h and README
 * "Shared tier protocol", "Invalidation log", which this file must match byte for byte).
 *
 * Layout, every integer little-endian, written and read byte by byte (no casts of unaligned memory):
 *     0  magic "CRIL"                      4 bytes
 *     4  format version (1)                u16
 *     6  reserved, 0                       u16
 *     8  total length of the entry         u64 (== the memcached value's length)
 *    16  CRC-32 (zlib) of bytes [0,16) then [20,end)  u32
 *    20  pod_id u64, local_id u64, wall_ms u64
 *    44  flags u8 (bit 0 everything, bit 1 soft; any other bit set: malformed)
 *    45  paths, then prefixes, then tags: each a u32 count, then per item a u32 length and the bytes
 *        end: the entry ends exactly here
 *
 * Invariants: the reader checks in this order, so that each refusal has one reason: length < 20 (short, or foreign
 * when the magic is there to be wrong), magic (foreign), version, reserved (malformed), declared length (short when
 * it passes len, malformed when below), the entry bound (limit), checksum (corrupt), then the payload field by field:
 * each count against the items left (limit), each length against the bytes left (malformed), then against the item
 * bound (limit), nothing after the tags (malformed); only then it allocates (nomem). Every length is compared with
 * what is left before it is used, so no sum can wrap; the decoded block's size is below len + 4096 * (16 + 1) +
 * sizeof(entry). Decoding reads the payload twice: once to check and size, once to copy into the block.
 * Locking: none (pure functions).
 */
#include "corral/tier/inval_log.h"

#include "corral/tier/wire.h"

#include <stdio.h>
#include <stdlib.h>

#include "corral/cache/pathpurge.h"

/* The "v1" of the keys is the shared tier's protocol version (README version rule). */
_Static_assert(CR_TIER_FORMAT_VERSION == 1 && CR_INVAL_FORMAT_VERSION == 1, "CR_INVAL_SEQ_KEY and the entry keys must say the new version");
_Static_assert(CR_INVAL_HEADER_BYTES == CR_WIRE_HEADER_BYTES, "entries and values share the header's shape (wire.h)");

static const unsigned char cr_inval_magic[4] = {'C', 'R', 'I', 'L'};

#define CR_INVAL_FLAG_EVERYTHING 1u
#define CR_INVAL_FLAG_SOFT 2u

size_t cr_inval_entry_key(uint64_t seq, char *out, size_t outsize)
{
    int n = snprintf(out, outsize, CR_INVAL_ENTRY_KEY_PREFIX "%llu", (unsigned long long)seq);
    if (n < 0 || (size_t)n >= outsize) {
        if (outsize != 0)
            out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

/* ---- the three lists, by index ---- */

#define CR_INVAL_NUM_LISTS 3

static void cr_inval_lists(const cr_inval_entry_t *e, const cr_str_t *lists[CR_INVAL_NUM_LISTS], size_t counts[CR_INVAL_NUM_LISTS])
{
    lists[0] = e->paths;
    counts[0] = e->num_paths;
    lists[1] = e->prefixes;
    counts[1] = e->num_prefixes;
    lists[2] = e->tags;
    counts[2] = e->num_tags;
}

static size_t cr_inval_item_max(int list)
{
    return list == 2 ? CR_INVAL_MAX_TAG : CR_INVAL_MAX_PATH;
}

/* ---- writing ---- */

int cr_inval_entry_encode(const cr_inval_entry_t *e, char **out, size_t *outlen)
{
    const cr_str_t *lists[CR_INVAL_NUM_LISTS];
    size_t counts[CR_INVAL_NUM_LISTS], size = CR_INVAL_MIN_BYTES, items = 0, i;
    unsigned char *v, *p;
    int l;

    *out = NULL;
    *outlen = 0;
    cr_inval_lists(e, lists, counts);
    for (l = 0; l != CR_INVAL_NUM_LISTS; ++l) {
        if (counts[l] > CR_INVAL_MAX_ITEMS - items)
            return CR_TIER_VALUE_TOO_BIG;
        items += counts[l];
        for (i = 0; i != counts[l]; ++i) {
            /* size stays below CR_INVAL_ENTRY_MAX_BYTES before each addition, and an item is at most 8 KiB: no wrap */
            if (lists[l][i].len > cr_inval_item_max(l))
                return CR_TIER_VALUE_TOO_BIG;
            size += 4 + lists[l][i].len;
            if (size > CR_INVAL_ENTRY_MAX_BYTES)
                return CR_TIER_VALUE_TOO_BIG;
        }
    }
    if ((v = malloc(size)) == NULL)
        return CR_ERROR;

    p = v;
    memcpy(p, cr_inval_magic, 4);
    p += 4;
    cr_wire_put(&p, CR_INVAL_FORMAT_VERSION, 2);
    cr_wire_put(&p, 0, 2);
    cr_wire_put(&p, size, 8);
    cr_wire_put(&p, 0, 4); /* the checksum, filled in last */
    cr_wire_put(&p, e->pod_id, 8);
    cr_wire_put(&p, e->local_id, 8);
    cr_wire_put(&p, e->wall_ms, 8);
    cr_wire_put(&p, (e->everything ? CR_INVAL_FLAG_EVERYTHING : 0) | (e->soft ? CR_INVAL_FLAG_SOFT : 0), 1);
    for (l = 0; l != CR_INVAL_NUM_LISTS; ++l) {
        cr_wire_put(&p, counts[l], 4);
        for (i = 0; i != counts[l]; ++i) {
            cr_wire_put(&p, lists[l][i].len, 4);
            if (lists[l][i].len != 0)
                memcpy(p, lists[l][i].base, lists[l][i].len);
            p += lists[l][i].len;
        }
    }
    assert((size_t)(p - v) == size);
    p = v + 16;
    cr_wire_put(&p, cr_wire_crc(v, size), 4);
    *out = (char *)v;
    *outlen = size;
    return CR_OK;
}

/* ---- the one-block layout (decoder and copy) ---- */

/* The block: the entry, then its cr_str_t items (paths, prefixes, tags, back to back), then their bytes, each followed
 * by a NUL. cr_str_t is aligned like the entry (pointers and size_t), so the items need no padding. */
_Static_assert(sizeof(cr_inval_entry_t) % _Alignof(cr_str_t) == 0, "the items follow the entry without padding");

static size_t cr_inval_block_size(size_t items, size_t bytes)
{
    return sizeof(cr_inval_entry_t) + items * sizeof(cr_str_t) + bytes + items;
}

/* Points the entry's lists at the block's item array (the items' strings are set by the caller). */
static cr_str_t *cr_inval_block_lists(cr_inval_entry_t *e, const size_t counts[CR_INVAL_NUM_LISTS])
{
    cr_str_t *items = (cr_str_t *)(void *)(e + 1);
    e->num_paths = counts[0];
    e->paths = counts[0] != 0 ? items : NULL;
    e->num_prefixes = counts[1];
    e->prefixes = counts[1] != 0 ? items + counts[0] : NULL;
    e->num_tags = counts[2];
    e->tags = counts[2] != 0 ? items + counts[0] + counts[1] : NULL;
    return items;
}

/* Copies one string to *strings (with a NUL after it) and returns it as a cr_str_t into the block. */
static cr_str_t cr_inval_block_put(char **strings, const char *base, size_t len)
{
    cr_str_t s = cr_str(*strings, len);
    if (len != 0)
        memcpy(*strings, base, len);
    (*strings)[len] = '\0';
    *strings += len + 1;
    return s;
}

cr_inval_entry_t *cr_inval_entry_copy(const cr_inval_entry_t *e)
{
    const cr_str_t *lists[CR_INVAL_NUM_LISTS];
    size_t counts[CR_INVAL_NUM_LISTS], bytes = 0, items, i;
    cr_inval_entry_t *copy;
    cr_str_t *item;
    char *strings;
    int l;

    cr_inval_lists(e, lists, counts);
    items = counts[0] + counts[1] + counts[2];
    for (l = 0; l != CR_INVAL_NUM_LISTS; ++l)
        for (i = 0; i != counts[l]; ++i)
            bytes += lists[l][i].len;
    if ((copy = malloc(cr_inval_block_size(items, bytes))) == NULL)
        return NULL;
    *copy = *e;
    copy->everything = e->everything != 0;
    copy->soft = e->soft != 0;
    item = cr_inval_block_lists(copy, counts);
    strings = (char *)(item + items);
    for (l = 0; l != CR_INVAL_NUM_LISTS; ++l)
        for (i = 0; i != counts[l]; ++i)
            *item++ = cr_inval_block_put(&strings, lists[l][i].base, lists[l][i].len);
    return copy;
}

/* ---- reading ---- */

/* Checks the payload (after the header): each count, each length, nothing trailing. Sets counts and the items'
 * total bytes; returns CR_TIER_VALUE_OK or the reason. */
static cr_tier_value_error_t cr_inval_check(cr_wire_reader_t r, size_t counts[CR_INVAL_NUM_LISTS], size_t *bytes)
{
    size_t items = 0, i;
    unsigned flags;
    int l;

    *bytes = 0;
    r.p += 24; /* pod_id, local_id, wall_ms: any value */
    r.left -= 24;
    flags = (unsigned)cr_wire_get(&r, 1);
    if ((flags & ~(CR_INVAL_FLAG_EVERYTHING | CR_INVAL_FLAG_SOFT)) != 0)
        return CR_TIER_VALUE_MALFORMED;
    for (l = 0; l != CR_INVAL_NUM_LISTS; ++l) {
        uint64_t n = cr_wire_get(&r, 4);
        if (r.bad)
            return CR_TIER_VALUE_MALFORMED;
        if (n > CR_INVAL_MAX_ITEMS - items)
            return CR_TIER_VALUE_LIMIT;
        counts[l] = (size_t)n;
        items += counts[l];
        for (i = 0; i != counts[l]; ++i) {
            uint64_t len = cr_wire_get(&r, 4);
            if (r.bad || len > r.left)
                return CR_TIER_VALUE_MALFORMED;
            if (len > cr_inval_item_max(l))
                return CR_TIER_VALUE_LIMIT;
            r.p += len;
            r.left -= (size_t)len;
            *bytes += (size_t)len;
        }
    }
    return r.left == 0 ? CR_TIER_VALUE_OK : CR_TIER_VALUE_MALFORMED;
}

int cr_inval_entry_decode(const char *buf, size_t len, cr_inval_entry_t **out, cr_tier_value_error_t *why)
{
    const unsigned char *v = (const unsigned char *)buf;
    cr_wire_reader_t r = {v, len, 0};
    size_t counts[CR_INVAL_NUM_LISTS], bytes, i;
    cr_inval_entry_t *e;
    cr_str_t *item;
    char *strings;
    uint64_t total;
    uint32_t crc;
    unsigned flags;
    int l;

    *out = NULL;
    if (len < CR_INVAL_HEADER_BYTES) {
        *why = len >= 4 && memcmp(v, cr_inval_magic, 4) != 0 ? CR_TIER_VALUE_FOREIGN : CR_TIER_VALUE_SHORT;
        return CR_ERROR;
    }
    if (memcmp(v, cr_inval_magic, 4) != 0) {
        *why = CR_TIER_VALUE_FOREIGN;
        return CR_ERROR;
    }
    r.p += 4;
    r.left -= 4;
    if (cr_wire_get(&r, 2) != CR_INVAL_FORMAT_VERSION) {
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
    if (len > CR_INVAL_ENTRY_MAX_BYTES) {
        *why = CR_TIER_VALUE_LIMIT;
        return CR_ERROR;
    }
    if (cr_wire_crc(v, len) != crc) {
        *why = CR_TIER_VALUE_CORRUPT;
        return CR_ERROR;
    }
    if (len < CR_INVAL_MIN_BYTES) { /* a whole, checksummed entry without room for its fixed fields */
        *why = CR_TIER_VALUE_MALFORMED;
        return CR_ERROR;
    }
    if ((*why = cr_inval_check(r, counts, &bytes)) != CR_TIER_VALUE_OK)
        return CR_ERROR;

    /* checked: read again, without bounds worries, into the block */
    if ((e = malloc(cr_inval_block_size(counts[0] + counts[1] + counts[2], bytes))) == NULL) {
        *why = CR_TIER_VALUE_NOMEM;
        return CR_ERROR;
    }
    e->pod_id = cr_wire_get(&r, 8);
    e->local_id = cr_wire_get(&r, 8);
    e->wall_ms = cr_wire_get(&r, 8);
    flags = (unsigned)cr_wire_get(&r, 1);
    e->everything = (flags & CR_INVAL_FLAG_EVERYTHING) != 0;
    e->soft = (flags & CR_INVAL_FLAG_SOFT) != 0;
    item = cr_inval_block_lists(e, counts);
    strings = (char *)(item + counts[0] + counts[1] + counts[2]);
    for (l = 0; l != CR_INVAL_NUM_LISTS; ++l) {
        (void)cr_wire_get(&r, 4); /* the count, checked */
        for (i = 0; i != counts[l]; ++i) {
            size_t n = (size_t)cr_wire_get(&r, 4);
            *item++ = cr_inval_block_put(&strings, (const char *)r.p, n);
            r.p += n;
            r.left -= n;
        }
    }
    assert(!r.bad && r.left == 0);
    *out = e;
    return CR_OK;
}

/* ---- comparing and covering ---- */

static int cr_inval_same_list(const cr_str_t *a, const cr_str_t *b, size_t n)
{
    size_t i;
    for (i = 0; i != n; ++i)
        if (a[i].len != b[i].len || (a[i].len != 0 && memcmp(a[i].base, b[i].base, a[i].len) != 0))
            return 0;
    return 1;
}

int cr_inval_entry_equal(const cr_inval_entry_t *a, const cr_inval_entry_t *b)
{
    return a->pod_id == b->pod_id && a->local_id == b->local_id && a->wall_ms == b->wall_ms && !a->everything == !b->everything &&
           !a->soft == !b->soft && a->num_paths == b->num_paths && a->num_prefixes == b->num_prefixes && a->num_tags == b->num_tags &&
           cr_inval_same_list(a->paths, b->paths, a->num_paths) && cr_inval_same_list(a->prefixes, b->prefixes, a->num_prefixes) &&
           cr_inval_same_list(a->tags, b->tags, a->num_tags);
}

int cr_inval_entry_covers(const cr_inval_entry_t *e, const cr_object_t *obj)
{
    cr_str_t key = cr_object_key(obj);
    size_t i, j;

    if (e->everything)
        return 1;
    for (i = 0; i != e->num_paths; ++i)
        if (cr_pathpurge_key_is(key, e->paths[i]))
            return 1;
    for (i = 0; i != e->num_prefixes; ++i)
        if (cr_pathpurge_key_has_prefix(key, e->prefixes[i]))
            return 1;
    for (i = 0; i != e->num_tags; ++i) /* the store's tag index: exact bytes (store_tags.c) */
        for (j = 0; j != obj->num_tags; ++j)
            if (obj->tags[j].name.len == e->tags[i].len &&
                (e->tags[i].len == 0 || memcmp(obj->tags[j].name.base, e->tags[i].base, e->tags[i].len) == 0))
                return 1;
    return 0;
}
