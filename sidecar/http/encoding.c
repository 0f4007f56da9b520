/*
 * encoding.c: gzip (zlib) and brotli (libbrotlienc/libbrotlidec) coding: streaming, and whole-body decoding (whole-body
 * encoding, a stored object's codings, is encode_whole.c). The names of
 * the codings, Accept-Encoding negotiation and compressible media types are in negotiate.c. The API and its choices
 * are documented in include/corral/http/encoding.h.
 *
 * Invariants:
 * - No global state, no h2o: every function is thread-safe, and a stream object is used by one thread at a time.
 * - zlib's counters are 32-bit (uInt): every call into zlib is given at most UINT_MAX bytes of input and output,
 *   and the loops around it carry the rest, so bodies of any size_t length work.
 * - A stream object owns exactly its codec state and one CR_CODEC_CHUNK output buffer; output never accumulates in
 *   it. `state` only moves forward: RUNNING -> FINISHED (final feed done) or RUNNING -> FAILED; a stream that is not
 *   RUNNING refuses further feeds with CR_ERROR.
 * - Decoders count their output before emitting it, so a bomb is stopped at max_output, not after. A feed with a
 *   budget stops once that much was emitted (the rest of the input stays with the caller), so a caller decodes only
 *   as fast as its client takes the output. libbrotlidec allocates through br_alloc, which caps what one decoder
 *   holds at CR_DECODER_MEMORY (zlib's inflate needs a fixed 7 KiB plus its 32 KiB window).
 */
#include "corral/http/encoding.h"
#include "codec_internal.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CR_DECODER_MAGIC 0xdec0de01u
#define CR_ENCODER_MAGIC 0xe4c0de01u


enum { CR_STREAM_RUNNING = 0, CR_STREAM_FINISHED, CR_STREAM_FAILED };

/* Window of the streaming brotli encoder: 256 KiB. Its memory is about window + hash table (1 MiB at quality 5):
 * 1.4 MB per stream, where the default 4 MiB window made 9 MB per slow reader of a compressed pass. */
#define CR_STREAM_BROTLI_LGWIN 18

/* Internal: a budgeted decode stopped at its budget (never an emit's value, which fails the stream whatever it is). */
#define CR_BUDGET_SPENT 1

/* ---- streaming decoder ---- */

struct st_cr_decoder_t {
    unsigned magic;
    cr_encoding_t enc;
    int state;
    int at_member_end; /* gzip: the last member ended and no new one has started */
    int z_ready;       /* gzip: inflateInit2 succeeded (inflateEnd is due) */
    size_t max_output; /* 0: no bound */
    size_t br_memory;  /* br: bytes libbrotlidec holds now (its allocations, each counted with its size header) */
    uint64_t total_in, total_out;
    z_stream z;
    BrotliDecoderState *br;
    unsigned char buf[CR_CODEC_CHUNK];
};

/* libbrotlidec's allocator: every block carries its size in front, so the decoder's memory is counted and capped
 * (the ring buffer is as large as the stream's window, up to 16 MiB, unless the stream is known to be shorter). */
typedef union {
    size_t size;
    max_align_t align;
} cr_br_block_t;

static void *br_alloc(void *opaque, size_t size)
{
    cr_decoder_t *d = opaque;
    cr_br_block_t *b;
    if (size > CR_DECODER_MEMORY || d->br_memory + size + sizeof(*b) > CR_DECODER_MEMORY || (b = malloc(sizeof(*b) + size)) == NULL)
        return NULL;
    b->size = size + sizeof(*b);
    d->br_memory += b->size;
    return b + 1;
}

static void br_free(void *opaque, void *p)
{
    cr_decoder_t *d = opaque;
    cr_br_block_t *b;
    if (p == NULL)
        return;
    b = (cr_br_block_t *)p - 1;
    d->br_memory -= b->size;
    free(b);
}

cr_decoder_t *cr_decoder_new(cr_encoding_t enc, size_t max_output)
{
    cr_decoder_t *d;

    if (enc != CR_ENC_IDENTITY && enc != CR_ENC_GZIP && enc != CR_ENC_BR)
        return NULL;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return NULL;
    d->magic = CR_DECODER_MAGIC;
    d->enc = enc;
    d->max_output = max_output;
    switch (enc) {
    case CR_ENC_GZIP:
        if (inflateInit2(&d->z, CR_GZIP_WBITS) != Z_OK)
            goto Error;
        d->z_ready = 1;
        break;
    case CR_ENC_BR:
        if ((d->br = BrotliDecoderCreateInstance(br_alloc, br_free, d)) == NULL)
            goto Error;
        break;
    default:
        break;
    }
    return d;

Error:
    cr_decoder_free(&d);
    return NULL;
}

/* Counts `n` decoded bytes against max_output, then emits them. Returns CR_OK, CR_ERROR (bomb) or emit's value. */
static int decoder_emit(cr_decoder_t *d, const void *buf, size_t n, cr_codec_emit_cb emit, void *ctx)
{
    if (n == 0)
        return CR_OK;
    if (d->max_output != 0 && (d->total_out + n > d->max_output || d->total_out + n < d->total_out))
        return CR_ERROR;
    d->total_out += n;
    return emit(ctx, buf, n);
}

/*
 * Inflates `in`, across gzip member boundaries, until it is used up or `budget` bytes were emitted. *consumed: the
 * input taken. Returns CR_OK (all input taken, all output emitted), CR_BUDGET_SPENT or an error (see
 * cr_decoder_feed).
 */
static int decode_gzip(cr_decoder_t *d, const unsigned char *in, size_t len, size_t budget, size_t *consumed,
                       cr_codec_emit_cb emit, void *ctx)
{
    size_t left = len, emitted = 0;
    int rc, erc;

    for (;;) {
        uInt ai;
        size_t produced;
        *consumed = len - left;
        if (emitted >= budget)
            return CR_BUDGET_SPENT;
        if (d->at_member_end) {
            if (left == 0)
                return CR_OK;
            /* another member follows (RFC 1952 2.2); garbage fails in inflate's header check */
            if (inflateReset(&d->z) != Z_OK)
                return CR_ERROR;
            d->at_member_end = 0;
        }
        ai = zlib_cap(left);
        d->z.next_in = (Bytef *)(uintptr_t)in;
        d->z.avail_in = ai;
        d->z.next_out = d->buf;
        d->z.avail_out = (uInt)sizeof(d->buf);
        rc = inflate(&d->z, Z_NO_FLUSH);
        in += ai - d->z.avail_in;
        left -= ai - d->z.avail_in;
        *consumed = len - left;
        produced = sizeof(d->buf) - d->z.avail_out;
        switch (rc) {
        case Z_STREAM_END:
            d->at_member_end = 1;
            break;
        case Z_OK:
            break;
        case Z_BUF_ERROR: /* no progress possible: only legitimate when the input is used up */
            if (left != 0)
                return CR_ERROR;
            break;
        default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR, Z_STREAM_ERROR */
            return CR_ERROR;
        }
        if ((erc = decoder_emit(d, d->buf, produced, emit, ctx)) != CR_OK)
            return erc;
        emitted += produced;
        /* input used up and inflate had room to spare: it holds nothing more until the next feed */
        if (!d->at_member_end && left == 0 && (rc == Z_BUF_ERROR || d->z.avail_out != 0))
            return CR_OK;
    }
}

/* decode_gzip for brotli. */
static int decode_br(cr_decoder_t *d, const unsigned char *in, size_t len, size_t budget, size_t *consumed,
                     cr_codec_emit_cb emit, void *ctx)
{
    size_t avail_in = len, emitted = 0;
    const uint8_t *next_in = in;
    int erc;

    for (;;) {
        size_t avail_out = sizeof(d->buf);
        uint8_t *next_out = d->buf;
        BrotliDecoderResult r;

        *consumed = len - avail_in;
        if (emitted >= budget)
            return CR_BUDGET_SPENT;
        if (BrotliDecoderIsFinished(d->br))
            return avail_in == 0 ? CR_OK : CR_ERROR; /* data after the end of the stream */
        r = BrotliDecoderDecompressStream(d->br, &avail_in, &next_in, &avail_out, &next_out, NULL);
        *consumed = len - avail_in;
        if (r == BROTLI_DECODER_RESULT_ERROR)
            return CR_ERROR; /* corrupt, or more memory than CR_DECODER_MEMORY */
        if ((erc = decoder_emit(d, d->buf, sizeof(d->buf) - avail_out, emit, ctx)) != CR_OK)
            return erc;
        emitted += sizeof(d->buf) - avail_out;
        /* NEEDS_MORE_INPUT with a full buffer still holds output: libbrotlidec pushes its ring buffer out before it
           asks for input, and says "more input" even when that push filled our buffer */
        if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT && avail_out != 0)
            return CR_OK;
        /* SUCCESS: loop once more to check for trailing data; NEEDS_MORE_OUTPUT or a full buffer: go on */
    }
}

int cr_decoder_feed_some(cr_decoder_t *d, const void *in, size_t len, int is_final, size_t budget, size_t *consumed,
                         cr_codec_emit_cb emit, void *ctx)
{
    int rc;

    CR_CHECK_OBJ_NOTNULL(d, CR_DECODER_MAGIC);
    assert(in != NULL || len == 0);
    *consumed = 0;
    if (d->state != CR_STREAM_RUNNING)
        return CR_ERROR;
    if (in == NULL)
        in = ""; /* no arithmetic on NULL below */
    if (budget == 0)
        budget = 1;
    switch (d->enc) {
    case CR_ENC_GZIP:
        rc = decode_gzip(d, in, len, budget, consumed, emit, ctx);
        break;
    case CR_ENC_BR:
        rc = decode_br(d, in, len, budget, consumed, emit, ctx);
        break;
    default:
        *consumed = CR_MIN(len, budget);
        rc = decoder_emit(d, in, *consumed, emit, ctx);
        if (rc == CR_OK && *consumed != len)
            rc = CR_BUDGET_SPENT;
        break;
    }
    d->total_in += *consumed;
    if (rc == CR_OK && is_final && d->total_in != 0) {
        /* the stream must be complete exactly here (a body of zero bytes decodes to zero bytes) */
        if (d->enc == CR_ENC_GZIP && !d->at_member_end)
            rc = CR_ERROR;
        else if (d->enc == CR_ENC_BR && !BrotliDecoderIsFinished(d->br))
            rc = CR_ERROR;
    }
    if (rc == CR_BUDGET_SPENT)
        return CR_AGAIN;
    if (rc != CR_OK)
        d->state = CR_STREAM_FAILED;
    else if (is_final)
        d->state = CR_STREAM_FINISHED;
    return rc;
}

int cr_decoder_feed(cr_decoder_t *d, const void *in, size_t len, int is_final, cr_codec_emit_cb emit, void *ctx)
{
    size_t consumed;
    /* no budget: CR_AGAIN can only be an emit's own value (and the stream is failed) */
    return cr_decoder_feed_some(d, in, len, is_final, SIZE_MAX, &consumed, emit, ctx);
}

uint64_t cr_decoder_total_out(const cr_decoder_t *d)
{
    CR_CHECK_OBJ_NOTNULL(d, CR_DECODER_MAGIC);
    return d->total_out;
}

void cr_decoder_free(cr_decoder_t **dp)
{
    cr_decoder_t *d;
    if (dp == NULL || (d = *dp) == NULL)
        return;
    CR_CHECK_OBJ_NOTNULL(d, CR_DECODER_MAGIC);
    if (d->z_ready)
        inflateEnd(&d->z);
    if (d->br != NULL)
        BrotliDecoderDestroyInstance(d->br);
    d->magic = 0;
    free(d);
    *dp = NULL;
}

/* ---- whole-body decoding ---- */

typedef struct st_cr_growbuf_t {
    char *base;
    size_t len, cap;
} cr_growbuf_t;

static int growbuf_append(void *ctx, const void *p, size_t n)
{
    cr_growbuf_t *g = ctx;
    if (g->cap - g->len < n) {
        size_t cap = g->cap != 0 ? g->cap : 4096;
        char *nb;
        while (cap - g->len < n) {
            if (cap > SIZE_MAX / 2)
                return CR_ERROR;
            cap *= 2;
        }
        if ((nb = realloc(g->base, cap)) == NULL)
            return CR_ERROR;
        g->base = nb;
        g->cap = cap;
    }
    memcpy(g->base + g->len, p, n);
    g->len += n;
    return CR_OK;
}

int cr_decode_whole(cr_encoding_t enc, const void *in, size_t len, size_t max_out, char **out, size_t *outlen)
{
    cr_decoder_t *d;
    cr_growbuf_t g = {NULL, 0, 0};
    int rc;

    *out = NULL;
    *outlen = 0;
    if ((d = cr_decoder_new(enc, max_out)) == NULL)
        return CR_ERROR;
    rc = cr_decoder_feed(d, in, len, 1, growbuf_append, &g);
    cr_decoder_free(&d);
    if (rc == CR_OK && g.base == NULL && (g.base = malloc(1)) == NULL)
        rc = CR_ERROR;
    if (rc != CR_OK) {
        free(g.base);
        return CR_ERROR;
    }
    *out = shrink(g.base, g.len);
    *outlen = g.len;
    return CR_OK;
}

/* ---- streaming encoder ---- */

struct st_cr_encoder_t {
    unsigned magic;
    cr_encoding_t enc;
    int state;
    int z_ready; /* gzip: deflateInit2 succeeded (deflateEnd is due) */
    z_stream z;
    BrotliEncoderState *br;
    unsigned char buf[CR_CODEC_CHUNK];
};

cr_encoder_t *cr_encoder_new(cr_encoding_t enc, int level)
{
    cr_encoder_t *e;

    if (enc == CR_ENC_GZIP) {
        if (level < CR_GZIP_LEVEL_MIN || level > CR_GZIP_LEVEL_MAX)
            return NULL;
    } else if (enc == CR_ENC_BR) {
        if (level < CR_BROTLI_QUALITY_MIN || level > CR_BROTLI_QUALITY_MAX)
            return NULL;
    } else {
        return NULL;
    }
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    e->magic = CR_ENCODER_MAGIC;
    e->enc = enc;
    if (enc == CR_ENC_GZIP) {
        if (deflateInit2(&e->z, level, Z_DEFLATED, CR_GZIP_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            goto Error;
        e->z_ready = 1;
    } else {
        if ((e->br = BrotliEncoderCreateInstance(NULL, NULL, NULL)) == NULL ||
            !BrotliEncoderSetParameter(e->br, BROTLI_PARAM_QUALITY, (uint32_t)level) ||
            !BrotliEncoderSetParameter(e->br, BROTLI_PARAM_LGWIN, CR_STREAM_BROTLI_LGWIN) ||
            !BrotliEncoderSetParameter(e->br, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT))
            goto Error;
    }
    return e;

Error:
    cr_encoder_free(&e);
    return NULL;
}

static int encode_gzip(cr_encoder_t *e, const unsigned char *in, size_t len, int is_final, cr_codec_emit_cb emit, void *ctx)
{
    size_t left = len;
    int rc, erc;

    /* one pass per UINT_MAX of input; only the last one flushes or finishes */
    do {
        uInt ai = zlib_cap(left);
        int flush = left != ai ? Z_NO_FLUSH : is_final ? Z_FINISH : Z_SYNC_FLUSH;
        e->z.next_in = (Bytef *)(uintptr_t)in;
        e->z.avail_in = ai;
        do {
            e->z.next_out = e->buf;
            e->z.avail_out = (uInt)sizeof(e->buf);
            rc = deflate(&e->z, flush);
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
                return CR_ERROR;
            if ((erc = emit(ctx, e->buf, sizeof(e->buf) - e->z.avail_out)) != CR_OK)
                return erc;
        } while (e->z.avail_out == 0);
        if (e->z.avail_in != 0 || (flush == Z_FINISH && rc != Z_STREAM_END))
            return CR_ERROR; /* deflate stopped with room to spare: cannot happen with a sane zlib */
        in += ai;
        left -= ai;
    } while (left != 0);
    return CR_OK;
}

static int encode_br(cr_encoder_t *e, const unsigned char *in, size_t len, int is_final, cr_codec_emit_cb emit, void *ctx)
{
    BrotliEncoderOperation op = is_final ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    size_t avail_in = len;
    const uint8_t *next_in = in;
    int erc;

    for (;;) {
        size_t avail_out = sizeof(e->buf);
        uint8_t *next_out = e->buf;
        if (!BrotliEncoderCompressStream(e->br, op, &avail_in, &next_in, &avail_out, &next_out, NULL))
            return CR_ERROR;
        if (avail_out != sizeof(e->buf) && (erc = emit(ctx, e->buf, sizeof(e->buf) - avail_out)) != CR_OK)
            return erc;
        if (avail_in == 0 && !BrotliEncoderHasMoreOutput(e->br) && (!is_final || BrotliEncoderIsFinished(e->br)))
            return CR_OK;
    }
}

/* Calls emit only for non-empty output (zlib's loop may produce zero bytes on its last round). */
typedef struct st_cr_nonempty_emit_t {
    cr_codec_emit_cb emit;
    void *ctx;
} cr_nonempty_emit_t;

static int nonempty_emit(void *ctx, const void *buf, size_t len)
{
    cr_nonempty_emit_t *ne = ctx;
    return len != 0 ? ne->emit(ne->ctx, buf, len) : CR_OK;
}

int cr_encoder_feed(cr_encoder_t *e, const void *in, size_t len, int is_final, cr_codec_emit_cb emit, void *ctx)
{
    cr_nonempty_emit_t ne = {emit, ctx};
    int rc;

    CR_CHECK_OBJ_NOTNULL(e, CR_ENCODER_MAGIC);
    assert(in != NULL || len == 0);
    if (e->state != CR_STREAM_RUNNING)
        return CR_ERROR;
    if (in == NULL)
        in = ""; /* no arithmetic on NULL below */
    if (len == 0 && !is_final)
        return CR_OK; /* nothing new to flush */
    if (e->enc == CR_ENC_GZIP)
        rc = encode_gzip(e, in, len, is_final, nonempty_emit, &ne);
    else
        rc = encode_br(e, in, len, is_final, emit, ctx);
    if (rc != CR_OK)
        e->state = CR_STREAM_FAILED;
    else if (is_final)
        e->state = CR_STREAM_FINISHED;
    return rc;
}

void cr_encoder_free(cr_encoder_t **ep)
{
    cr_encoder_t *e;
    if (ep == NULL || (e = *ep) == NULL)
        return;
    CR_CHECK_OBJ_NOTNULL(e, CR_ENCODER_MAGIC);
    if (e->z_ready)
        deflateEnd(&e->z);
    if (e->br != NULL)
        BrotliEncoderDestroyInstance(e->br);
    e->magic = 0;
    free(e);
    *ep = NULL;
}
