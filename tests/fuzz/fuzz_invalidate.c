/*
 * fuzz_invalidate.c: write-through invalidation (invalidate.c): a route's `invalidate` templates expanded for a
 * written path, Location / Content-Location against the request's authority, Surrogate-Key splitting, and the key
 * slices the store's path index is built on.
 *
 * Input: fields separated by "\n--\n": the written path (request target), a Location value, the request's
 * authority, a Surrogate-Key value, then the route's invalidate entries (only those config.c's check_invalidate
 * would accept: the same rules, repeated below). Properties beyond "no crash":
 *  - every expansion is a normalized path (cr_key_normalize_path gives it back unchanged), NUL-terminated, with no
 *    duplicates, at most one per entry;
 *  - a Location on the same authority gives a "/path[?query]" without controls or spaces, in the caller's buffer;
 *  - tags are non-empty and hold no space, tab or comma; CR_DECLINED exactly when they were cut at the maximum;
 *  - the path index reaches a key from its path: cr_path_hash(key) == cr_path_hash_of_path(normalized path), and
 *    the key slices are prefixes of the key.
 */
#include "fuzz_util.h"

#include "corral/http/invalidate.h"
#include "corral/http/key.h"

#define FZ_MAX_ENTRIES 16

/* config.c check_invalidate: "/..." without controls, spaces, '?' or '#'; '*' only last; {name} with [A-Za-z0-9_]+. */
static int entry_ok(const char *s)
{
    const char *q;
    if (s[0] != '/')
        return 0;
    for (q = s; *q != '\0'; ++q) {
        unsigned char c = (unsigned char)*q;
        if (c <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '}' || (c == '*' && q[1] != '\0'))
            return 0;
        if (c == '{') {
            const char *name = ++q;
            while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_')
                ++q;
            if (*q != '}' || q == name)
                return 0;
        }
    }
    return 1;
}

static void check_expand(const char *const *entries, size_t n, cr_str_t written)
{
    static char buf[FZ_MAX_ENTRIES * (CR_INVALIDATE_MAX_PATH + 1)], again[CR_INVALIDATE_MAX_PATH + 1];
    cr_invalidation_t out[FZ_MAX_ENTRIES];
    int r = cr_invalidate_expand(entries, n, written, out, FZ_MAX_ENTRIES, buf, sizeof(buf)), i, j;
    FZ_CHECK(r >= -1 && r <= (int)n);
    for (i = 0; i < r; ++i) {
        int len;
        FZ_CHECK(out[i].path.base >= buf && out[i].path.base + out[i].path.len < buf + sizeof(buf));
        FZ_CHECK(out[i].path.base[out[i].path.len] == '\0' && strlen(out[i].path.base) == out[i].path.len);
        FZ_CHECK(out[i].path.len != 0 && out[i].path.base[0] == '/');
        len = cr_key_normalize_path(out[i].path, again, sizeof(again));
        if (len != (int)out[i].path.len || memcmp(again, out[i].path.base, out[i].path.len) != 0) {
            fprintf(stderr, "expansion \"%s\" normalizes to \"%.*s\"\n", out[i].path.base, len < 0 ? 4 : len, len < 0 ? "(-1)" : again);
            FZ_CHECK(!"an expansion is a normalized path");
        }
        for (j = 0; j < i; ++j)
            FZ_CHECK(!(out[j].is_prefix == out[i].is_prefix && out[j].path.len == out[i].path.len &&
                       memcmp(out[j].path.base, out[i].path.base, out[i].path.len) == 0));
    }
}

static void check_location(cr_str_t location, cr_str_t authority, cr_str_t path)
{
    static char buf[CR_INVALIDATE_MAX_PATH];
    cr_str_t out = {NULL, 0};
    size_t i;
    if (!cr_same_authority_path(location, authority, path, buf, sizeof(buf), &out))
        return;
    FZ_CHECK(out.base == buf && out.len < sizeof(buf) && buf[out.len] == '\0');
    FZ_CHECK(out.len != 0 && out.base[0] == '/');
    for (i = 0; i != out.len; ++i)
        FZ_CHECK((unsigned char)out.base[i] > 0x20 && out.base[i] != 0x7f && out.base[i] != '#');
}

static void check_tags(cr_str_t value)
{
    cr_str_t tags[8];
    size_t num = 0, i, j;
    int r = cr_surrogate_keys_parse(value, tags, CR_ARRAY_SIZE(tags), &num);
    FZ_CHECK(r == CR_OK || r == CR_DECLINED);
    FZ_CHECK(num <= CR_ARRAY_SIZE(tags));
    if (r == CR_DECLINED)
        FZ_CHECK(num == CR_ARRAY_SIZE(tags));
    for (i = 0; i != num; ++i) {
        FZ_CHECK(tags[i].len != 0 && tags[i].base >= value.base && tags[i].base + tags[i].len <= value.base + value.len);
        for (j = 0; j != tags[i].len; ++j)
            FZ_CHECK(tags[i].base[j] != ' ' && tags[i].base[j] != '\t' && tags[i].base[j] != ',');
    }
}

static void check_key_slices(cr_str_t authority, cr_str_t written)
{
    static char key[16384], path[16384];
    int klen = cr_key_build(NULL, authority, 80, written, NULL, NULL, key, sizeof(key)), plen;
    cr_str_t k, uri, p, tag;
    if (klen < 0)
        return;
    k = cr_str(key, (size_t)klen);
    uri = cr_invalidate_key_uri(k);
    p = cr_invalidate_key_path(k);
    FZ_CHECK(uri.base == key && uri.len <= k.len && p.base == key && p.len <= uri.len);
    plen = cr_key_normalize_path(written, path, sizeof(path));
    FZ_CHECK(plen >= 0);
    tag = cr_path_tag(k);
    FZ_CHECK(tag.len == (size_t)plen + 1 && tag.base[0] == '\n' && memcmp(tag.base + 1, path, (size_t)plen) == 0);
    FZ_CHECK(cr_path_hash(k) == cr_path_hash_of_path(cr_str(path, (size_t)plen)));
    FZ_CHECK(cr_path_hash(k) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    static char entry_buf[FZ_MAX_ENTRIES][512];
    const char *entries[FZ_MAX_ENTRIES];
    size_t n = 0;
    cr_str_t written = fz_next(&in, "\n--\n"), location = fz_next(&in, "\n--\n"), authority = fz_next(&in, "\n--\n"),
             surrogate = fz_next(&in, "\n--\n");

    while (in.len != 0 && n != FZ_MAX_ENTRIES) {
        cr_str_t e = fz_next(&in, "\n--\n");
        if (e.len >= sizeof(entry_buf[0]) || memchr(e.base, '\0', e.len) != NULL)
            continue;
        memcpy(entry_buf[n], e.base, e.len);
        entry_buf[n][e.len] = '\0';
        if (entry_ok(entry_buf[n])) {
            entries[n] = entry_buf[n];
            ++n;
        }
    }
    check_expand(entries, n, written);
    check_location(location, authority, written);
    check_tags(surrogate);
    check_key_slices(authority, written);
    return 0;
}
