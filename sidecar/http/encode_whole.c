/*
 * encode_whole.c: whole-body gzip and brotli encoding (cr_encode_gzip, cr_encode_br in encoding.h), as a miss's
 * codings are made once when an object is stored.
 *
 * Invariants: no global state but the calling thread's kept blocks (core/thread_blocks.h), from which the codecs'
 * state is allocated and to which it goes back within one call; thread-safe. Every call into zlib is given at most
 * UINT_MAX bytes of input and output (zlib_cap). The output buffer is malloc'ed and shrunk to its length.
 */
#include "corral/http/encoding.h"
#include "codec_internal.h"

#include <brotli/encode.h>
#include <stdint.h>
#include <string.h>

#include "corral/core/thread_blocks.h"

/* The one-shot encoders' state comes from the thread's kept blocks (core/thread_blocks.h): allocated and freed
 * within one call, on one thread. */
static voidpf z_block_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    if (size != 0 && items > SIZE_MAX / size)
        return Z_NULL;
    return cr_thread_blocks_alloc((size_t)items * size);
}

static void z_block_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    cr_thread_blocks_free(p);
}

static void *br_block_alloc(void *opaque, size_t size)
{
    (void)opaque;
    return cr_thread_blocks_alloc(size);
}

static void br_block_free(void *opaque, void *p)
{
    (void)opaque;
    cr_thread_blocks_free(p);
}

int cr_encode_gzip(const void *in, size_t len, int level, char **out, size_t *outlen)
{
    z_stream z;
    char *buf = NULL;
    size_t bound, in_left = len, out_left;
    int rc, ret = CR_ERROR;

    *out = NULL;
    *outlen = 0;
    if (level < CR_GZIP_LEVEL_MIN || level > CR_GZIP_LEVEL_MAX)
        return CR_ERROR;
    if (in == NULL)
        in = "";
    memset(&z, 0, sizeof(z));
    z.zalloc = z_block_alloc;
    z.zfree = z_block_free;
    if (deflateInit2(&z, level, Z_DEFLATED, CR_GZIP_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return CR_ERROR;
    bound = deflateBound(&z, (uLong)len);
    if (bound < len || (buf = malloc(bound)) == NULL)
        goto Exit;
    out_left = bound;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.next_out = (Bytef *)buf;
    for (;;) {
        uInt ai = zlib_cap(in_left), ao = zlib_cap(out_left);
        z.avail_in = ai;
        z.avail_out = ao;
        /* Z_FINISH once the rest of the input fits in this call (and on every call after that) */
        rc = deflate(&z, in_left == ai ? Z_FINISH : Z_NO_FLUSH);
        in_left -= ai - z.avail_in;
        out_left -= ao - z.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if ((rc != Z_OK && rc != Z_BUF_ERROR) || out_left == 0)
            goto Exit;
    }
    *outlen = bound - out_left;
    *out = shrink(buf, *outlen);
    buf = NULL;
    ret = CR_OK;

Exit:
    deflateEnd(&z);
    free(buf);
    return ret;
}

/* The smallest brotli window that holds the whole input ((1 << lgwin) - 16 bytes, RFC 7932 9.1), at most the
 * default. A one-shot encoder's memory follows the window: for a small object the default 4 MiB window and its hash
 * tables are megabytes to allocate and clear per call (page faults on every miss, since freed memory is trimmed),
 * while its output cannot be smaller than with a window as large as the input itself. */
static int br_window_for(size_t len)
{
    int lgwin = BROTLI_MIN_WINDOW_BITS;
    while (lgwin < BROTLI_DEFAULT_WINDOW && ((size_t)1 << lgwin) - 16 < len)
        ++lgwin;
    return lgwin;
}

int cr_encode_br(const void *in, size_t len, int quality, int text, char **out, size_t *outlen)
{
    size_t bound, avail_in = len, avail_out, n;
    const uint8_t *next_in;
    uint8_t *next_out;
    BrotliEncoderState *br;
    char *buf;
    int ok;

    *out = NULL;
    *outlen = 0;
    if (quality < CR_BROTLI_QUALITY_MIN || quality > CR_BROTLI_QUALITY_MAX)
        return CR_ERROR;
    if (in == NULL)
        in = "";
    if ((bound = BrotliEncoderMaxCompressedSize(len)) == 0 || (buf = malloc(bound)) == NULL)
        return CR_ERROR;
    if ((br = BrotliEncoderCreateInstance(br_block_alloc, br_block_free, NULL)) == NULL) {
        free(buf);
        return CR_ERROR;
    }
    /* what BrotliEncoderCompress sets, with the window fitted to the input (br_window_for) */
    ok = BrotliEncoderSetParameter(br, BROTLI_PARAM_QUALITY, (uint32_t)quality) &&
         BrotliEncoderSetParameter(br, BROTLI_PARAM_LGWIN, (uint32_t)br_window_for(len)) &&
         BrotliEncoderSetParameter(br, BROTLI_PARAM_MODE, text ? BROTLI_MODE_TEXT : BROTLI_MODE_GENERIC) &&
         BrotliEncoderSetParameter(br, BROTLI_PARAM_SIZE_HINT, len > (1u << 30) ? (1u << 30) : (uint32_t)len);
    next_in = in;
    next_out = (uint8_t *)buf;
    avail_out = bound;
    /* the output has room for the whole result: each call makes progress until the stream is finished; a call
     * that leaves no room and no end is a failure (the object is then kept without this coding) */
    while (ok && !BrotliEncoderIsFinished(br)) {
        size_t before = avail_out + avail_in;
        ok = BrotliEncoderCompressStream(br, BROTLI_OPERATION_FINISH, &avail_in, &next_in, &avail_out, &next_out, NULL) &&
             (BrotliEncoderIsFinished(br) || (avail_out != 0 && avail_out + avail_in != before));
    }
    BrotliEncoderDestroyInstance(br);
    if (!ok) {
        free(buf);
        return CR_ERROR;
    }
    n = bound - avail_out;
    *out = shrink(buf, n);
    *outlen = n;
    return CR_OK;
}

