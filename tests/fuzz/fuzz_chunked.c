/*
 * fuzz_chunked.c: the strict chunked decoder (chunked.c), as libh2o's request side and upstream.c's response side
 * call it: each call decodes the bytes just read, in place.
 *
 * Input: byte 0 bit 0 = consume_trailer; bytes 1-2 = a split point (little-endian, modulo the body's length); the
 * rest is the chunked body. Properties beyond "no crash":
 *  - decoding never makes bytes: the decoded length is at most the input's;
 *  - a complete body leaves its trailing bytes, unchanged, right after the decoded data;
 *  - split at any point, the same input decodes to the same bytes with the same outcome (complete with as many
 *    bytes left over, incomplete, or malformed), so the result does not depend on how the socket read it.
 */
#include "fuzz_util.h"

#include "corral/http/chunked.h"

/* Decodes a copy of in[0..len); *out gets the malloc'ed decoded bytes. */
static ssize_t decode(cr_chunked_t *d, const uint8_t *in, size_t len, char **out, size_t *outlen)
{
    char *buf = malloc(len + 1);
    size_t sz = len;
    ssize_t r;
    FZ_CHECK(buf != NULL);
    if (len != 0)
        memcpy(buf, in, len);
    r = cr_chunked_decode(d, buf, &sz);
    FZ_CHECK(r == -1 || r == -2 || r >= 0);
    if (r != -1) {
        FZ_CHECK(sz <= len);
        if (r >= 0) {
            FZ_CHECK((size_t)r <= len - sz);
            /* what follows the body is moved to just after the decoded data, unchanged */
            FZ_CHECK(r == 0 || memcmp(buf + sz, in + len - (size_t)r, (size_t)r) == 0);
        }
    }
    *out = buf;
    *outlen = sz;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    int consume_trailer = (int)(fz_byte(&in) & 1);
    size_t split = fz_byte(&in), len, w_len, a_len, b_len;
    cr_chunked_t whole, parts;
    char *w, *a, *b;
    ssize_t rw, ra, rb;

    split |= (size_t)fz_byte(&in) << 8;
    len = in.len;
    split = len != 0 ? split % (len + 1) : 0;

    cr_chunked_init(&whole, consume_trailer);
    rw = decode(&whole, in.p, len, &w, &w_len);

    cr_chunked_init(&parts, consume_trailer);
    ra = decode(&parts, in.p, split, &a, &a_len);
    if (ra == -1) {
        FZ_CHECK(rw == -1);
    } else if (ra >= 0) {
        /* complete within the first part: the rest is left over */
        FZ_CHECK(rw >= 0 && (size_t)rw == (size_t)ra + (len - split));
        FZ_CHECK(w_len == a_len && memcmp(w, a, a_len) == 0);
    } else {
        rb = decode(&parts, in.p + split, len - split, &b, &b_len);
        FZ_CHECK(rb == rw);
        if (rw != -1)
            FZ_CHECK(w_len == a_len + b_len && memcmp(w, a, a_len) == 0 && memcmp(w + a_len, b, b_len) == 0);
        free(b);
    }
    free(a);
    free(w);
    return 0;
}
