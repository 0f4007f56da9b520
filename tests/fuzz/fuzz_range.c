/*
 * fuzz_range.c: the byte-range rules (http/range.c): a client's Range and If-Range against a stored body.
 *
 * Input: fields separated by "\n--\n": the body's length in decimal (empty or junk: 0; taken modulo 2^40), the
 * Range value, the If-Range value, then the stored ETag and Last-Modified. Properties beyond "no crash":
 *  - a partial answer has 1..max ranges, each first <= last < length, adding up to at most the length; any other
 *    verdict hands out none;
 *  - every part head and Content-Range fits the bound range.h gives;
 *  - If-Range never holds without the validator it names (no ETag stored for an entity-tag, no Last-Modified for a
 *    date).
 */
#include "fuzz_util.h"

#include "corral/http/range.h"

static uint64_t body_length(cr_str_t s)
{
    uint64_t v = 0;
    size_t i;
    for (i = 0; i != s.len && s.base[i] >= '0' && s.base[i] <= '9' && i != 18; ++i)
        v = v * 10 + (uint64_t)(s.base[i] - '0');
    return v & ((UINT64_C(1) << 40) - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    cr_str_t len_s = fz_next(&in, "\n--\n"), range = fz_next(&in, "\n--\n"), if_range = fz_next(&in, "\n--\n"),
             etag = fz_next(&in, "\n--\n"), lm = fz_next(&in, "\n--\n");
    uint64_t len = body_length(len_s), total = 0;
    cr_byte_range_t r[CR_RANGE_MAX_PARTS];
    size_t n, i, max = 1 + (size % CR_RANGE_MAX_PARTS);
    char head[CR_RANGE_PART_HEAD_FIXED + CR_RANGE_BOUNDARY_LEN + 64], boundary[CR_RANGE_BOUNDARY_LEN];
    cr_range_verdict_t v = cr_range_parse(range, len, r, max, &n);

    if (v != CR_RANGE_PARTIAL) {
        FZ_CHECK(n == 0);
    } else {
        FZ_CHECK(n >= 1 && n <= max);
        cr_range_boundary(boundary, len);
        for (i = 0; i != n; ++i) {
            FZ_CHECK(r[i].first <= r[i].last && r[i].last < len);
            total += r[i].last - r[i].first + 1;
            FZ_CHECK(cr_range_part_head(head, cr_str(boundary, sizeof(boundary)), cr_str("text/plain", 10), r + i, len) <=
                     CR_RANGE_PART_HEAD_FIXED + sizeof(boundary) + 10);
            FZ_CHECK(cr_range_content_range(head, r + i, len) <= 64);
        }
        FZ_CHECK(total <= len);
    }
    FZ_CHECK(!cr_if_range_holds(if_range, cr_str(NULL, 0), cr_str(NULL, 0), 1000000000000));
    (void)cr_if_range_holds(if_range, etag, lm, 1000000000000);
    (void)cr_if_range_holds(if_range, etag, lm, 0);
    return 0;
}
