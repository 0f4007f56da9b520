/*
 * encoding.c: gzip (zlib) and brotli (libbrotlienc/libbrotlidec) coding, whole-body and streaming; Accept-Encoding
 * negotiation (RFC 9110 12.5.3); compressible media type matching. The API and its choices are documented in
 * include/corral/encoding.h.
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

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CR_DECODER_MAGIC 0xdec0de01u
#define CR_ENCODER_MAGIC 0xe4c0de01u

/* zlib window bits for a gzip wrapper (15-bit window + 16). */
#define CR_GZIP_WBITS (15 + 16)

enum { CR_STREAM_RUNNING = 0, CR_STREAM_FINISHED, CR_STREAM_FAILED };

/* Window of the streaming brotli encoder: 256 KiB. Its memory is about window + hash table (1 MiB at quality 5):
 * 1.4 MB per stream, where the default 4 MiB window made 9 MB per slow reader of a compressed pass. */
#define CR_STREAM_BROTLI_LGWIN 18

/* Internal: a budgeted decode stopped at its budget (never an emit's value, which fails the stream whatever it is). */
#define CR_BUDGET_SPENT 1

/* ---- names ---- */

cr_str_t cr_encoding_name(cr_encoding_t enc)
{
    switch (enc) {
    case CR_ENC_IDENTITY:
        return CR_STR("identity");
    case CR_ENC_GZIP:
        return CR_STR("gzip");
    case CR_ENC_BR:
        return CR_STR("br");
    default:
        return CR_STR("");
    }
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

int cr_encoding_parse(cr_str_t content_encoding)
{
    cr_str_t v;
    if (content_encoding.base == NULL)
        return CR_ENC_IDENTITY;
    v = cr_str_trim_ows(content_encoding);
    if (v.len == 0 || cr_str_ieq(v, "identity", 8))
        return CR_ENC_IDENTITY;
    if (cr_str_ieq(v, "gzip", 4) || cr_str_ieq(v, "x-gzip", 6))
        return CR_ENC_GZIP;
    if (cr_str_ieq(v, "br", 2))
        return CR_ENC_BR;
    return -1;
}

/* ---- one-shot compression ---- */

static uInt zlib_cap(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/* Shrinks a finished output buffer to its length (keeps the old one if realloc fails: it is still valid). */
static char *shrink(char *buf, size_t len)
{
    char *n = realloc(buf, len != 0 ? len : 1);
    return n != NULL ? n : buf;
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

int cr_encode_br(const void *in, size_t len, int quality, int text, char **out, size_t *outlen)
{
    size_t bound, n;
    char *buf;

    *out = NULL;
    *outlen = 0;
    if (quality < CR_BROTLI_QUALITY_MIN || quality > CR_BROTLI_QUALITY_MAX)
        return CR_ERROR;
    if (in == NULL)
        in = "";
    if ((bound = BrotliEncoderMaxCompressedSize(len)) == 0 || (buf = malloc(bound)) == NULL)
        return CR_ERROR;
    n = bound;
    if (!BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, text ? BROTLI_MODE_TEXT : BROTLI_MODE_GENERIC, len, in, &n,
                               (uint8_t *)buf)) {
        free(buf);
        return CR_ERROR;
    }
    *out = shrink(buf, n);
    *outlen = n;
    return CR_OK;
}

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

/* ---- Accept-Encoding negotiation ---- */

/* Slots of the parsed header; a coding corral does not make maps to NEG_OTHER. */
enum { NEG_IDENTITY = CR_ENC_IDENTITY, NEG_GZIP = CR_ENC_GZIP, NEG_BR = CR_ENC_BR, NEG_STAR, NEG_SLOTS, NEG_OTHER = -1 };

/* "0", "0.", "0.5", "0.125", "1", "1.", "1.000" -> thousandths. Returns 0, or -1 when malformed. */
static int parse_qvalue(cr_str_t s, int *q)
{
    size_t i;
    int v = 0, scale = 100;

    if (s.len == 0 || (s.base[0] != '0' && s.base[0] != '1'))
        return -1;
    if (s.len > 1 && (s.base[1] != '.' || s.len > 5))
        return -1;
    for (i = 2; i < s.len; ++i) {
        if (s.base[i] < '0' || s.base[i] > '9' || (s.base[0] == '1' && s.base[i] != '0'))
            return -1;
        v += (s.base[i] - '0') * scale;
        scale /= 10;
    }
    *q = s.base[0] == '1' ? 1000 : v;
    return 0;
}

/*
 * One list member `coding [ OWS ";" OWS "q=" qvalue ]` (already trimmed of OWS). Sets *slot (NEG_OTHER for codings
 * corral ignores) and *q in thousandths. Returns 0, or -1 when the member is malformed (then it is ignored).
 */
static int parse_member(cr_str_t m, int *slot, int *q)
{
    cr_str_t coding, w;
    size_t i = 0;

    while (i != m.len && cr_is_tchar((unsigned char)m.base[i]))
        ++i;
    if (i == 0)
        return -1;
    coding = cr_str(m.base, i);
    w = cr_str_trim_ows(cr_str(m.base + i, m.len - i));
    if (w.len == 0) {
        *q = 1000;
    } else {
        if (w.base[0] != ';')
            return -1;
        w = cr_str_trim_ows(cr_str(w.base + 1, w.len - 1));
        if (w.len < 2 || lower(w.base[0]) != 'q' || w.base[1] != '=')
            return -1;
        if (parse_qvalue(cr_str(w.base + 2, w.len - 2), q) != 0)
            return -1;
    }
    if (cr_str_ieq(coding, "br", 2))
        *slot = NEG_BR;
    else if (cr_str_ieq(coding, "gzip", 4) || cr_str_ieq(coding, "x-gzip", 6))
        *slot = NEG_GZIP;
    else if (cr_str_ieq(coding, "identity", 8))
        *slot = NEG_IDENTITY;
    else if (cr_str_eq(coding, "*", 1))
        *slot = NEG_STAR;
    else
        *slot = NEG_OTHER;
    return 0;
}

/* listed[s] for each slot: q in thousandths of the first well-formed member naming it, -1 when none does. */
static void parse_accept_encoding(cr_str_t accept_encoding, int listed[NEG_SLOTS])
{
    const char *p = accept_encoding.base, *end = p + accept_encoding.len;
    int slot, q, i;

    for (i = 0; i != NEG_SLOTS; ++i)
        listed[i] = -1;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *mend = comma != NULL ? comma : end;
        cr_str_t m = cr_str_trim_ows(cr_str(p, (size_t)(mend - p)));
        if (m.len != 0 && parse_member(m, &slot, &q) == 0 && slot != NEG_OTHER && listed[slot] < 0)
            listed[slot] = q;
        p = comma != NULL ? comma + 1 : end;
    }
}

int cr_accept_encoding_refuses(cr_str_t accept_encoding, cr_encoding_t enc)
{
    int listed[NEG_SLOTS];

    if (accept_encoding.base == NULL || (unsigned)enc >= CR_ENC_MAX)
        return 0;
    parse_accept_encoding(accept_encoding, listed);
    return listed[enc] == 0 || (listed[enc] < 0 && listed[NEG_STAR] == 0);
}

int cr_negotiate_encoding(cr_str_t accept_encoding, unsigned available)
{
    /* listed[s]: q in thousandths of the first well-formed member for slot s, -1 when not listed */
    int listed[NEG_SLOTS];
    /* rank[e]: -1 not acceptable; 0 identity implicitly acceptable (least preferred); 1..1000 the q */
    int rank[CR_ENC_MAX];
    static const cr_encoding_t preference[] = {CR_ENC_BR, CR_ENC_GZIP}; /* then identity */
    int best = -1, best_rank = -1;
    size_t i;

    if (accept_encoding.base == NULL)
        return CR_ENC_IDENTITY;
    parse_accept_encoding(accept_encoding, listed);

    for (i = 0; i != CR_ARRAY_SIZE(preference); ++i) {
        int s = (int)preference[i], eff = listed[s] >= 0 ? listed[s] : listed[NEG_STAR] >= 0 ? listed[NEG_STAR] : 0;
        rank[s] = eff > 0 ? eff : -1;
    }
    if (listed[NEG_IDENTITY] >= 0)
        rank[CR_ENC_IDENTITY] = listed[NEG_IDENTITY] > 0 ? listed[NEG_IDENTITY] : -1;
    else if (listed[NEG_STAR] >= 0)
        rank[CR_ENC_IDENTITY] = listed[NEG_STAR] > 0 ? listed[NEG_STAR] : -1;
    else
        rank[CR_ENC_IDENTITY] = 0;

    if ((available & CR_ENC_BIT(CR_ENC_IDENTITY)) == 0) {
        /* held only in other codings: any acceptable one beats decoding on the fly */
        for (i = 0; i != CR_ARRAY_SIZE(preference); ++i) {
            cr_encoding_t e = preference[i];
            if ((available & CR_ENC_BIT(e)) != 0 && rank[e] > 0 && rank[e] > best_rank) {
                best = (int)e;
                best_rank = rank[e];
            }
        }
        if (best >= 0)
            return best;
        return rank[CR_ENC_IDENTITY] >= 0 ? CR_ENC_IDENTITY : -1;
    }

    /* visit br, gzip, then identity; only a strictly higher rank replaces, so equal q keeps the preferred coding */
    for (i = 0; i != CR_ARRAY_SIZE(preference); ++i) {
        cr_encoding_t e = preference[i];
        if ((available & CR_ENC_BIT(e)) != 0 && rank[e] > 0 && rank[e] > best_rank) {
            best = (int)e;
            best_rank = rank[e];
        }
    }
    if (rank[CR_ENC_IDENTITY] >= 0 && rank[CR_ENC_IDENTITY] > best_rank)
        best = CR_ENC_IDENTITY;
    return best;
}

/* ---- compressible media types ---- */

/* Case-insensitive equality of a str and a NUL-free pattern piece of known length. */
static int piece_ieq(cr_str_t a, const char *b, size_t blen)
{
    size_t i;
    if (a.len != blen)
        return 0;
    for (i = 0; i != blen; ++i)
        if (lower(a.base[i]) != lower(b[i]))
            return 0;
    return 1;
}

/* Whether `sub` (a subtype) ends with `suffix` ("+json") and has at least one character before it. */
static int has_suffix(cr_str_t sub, const char *suffix, size_t suffixlen)
{
    return sub.len > suffixlen && piece_ieq(cr_str(sub.base + sub.len - suffixlen, suffixlen), suffix, suffixlen);
}

static int pattern_matches(cr_str_t type, cr_str_t sub, const char *pat)
{
    const char *slash;
    size_t plen = strlen(pat);

    if (pat[0] == '+')
        return has_suffix(sub, pat, plen);
    if ((slash = strchr(pat, '/')) == NULL)
        return 0;
    if (!(slash - pat == 1 && pat[0] == '*') && !piece_ieq(type, pat, (size_t)(slash - pat)))
        return 0;
    ++slash;
    if (slash[0] == '*') {
        if (slash[1] == '\0')
            return pat[0] != '*'; /* "type/" + "*"; a bare "*" + "/" + "*" is not a valid pattern */
        return slash[1] == '+' && has_suffix(sub, slash + 1, strlen(slash + 1));
    }
    return pat[0] != '*' && piece_ieq(sub, slash, strlen(slash));
}

int cr_media_type_compressible(cr_str_t content_type, char *const *patterns, size_t num_patterns)
{
    cr_str_t ct, type, sub;
    size_t i = 0, j;

    if (content_type.base == NULL)
        return 0;
    ct = cr_str_trim_ows(content_type);
    while (i != ct.len && cr_is_tchar((unsigned char)ct.base[i]))
        ++i;
    if (i == 0 || i == ct.len || ct.base[i] != '/')
        return 0;
    type = cr_str(ct.base, i);
    j = ++i;
    while (i != ct.len && cr_is_tchar((unsigned char)ct.base[i]))
        ++i;
    if (i == j)
        return 0;
    sub = cr_str(ct.base + j, i - j);
    while (i != ct.len && cr_is_ows(ct.base[i]))
        ++i;
    if (i != ct.len && ct.base[i] != ';')
        return 0;
    for (i = 0; i != num_patterns; ++i)
        if (patterns[i] != NULL && pattern_matches(type, sub, patterns[i]))
            return 1;
    return 0;
}

/* Whether [s, end) is a non-empty run of tchars without '*'; `allow_plus` admits '+' (as in "svg+xml"). */
static int plain_token(const char *s, const char *end, int allow_plus)
{
    if (s == end)
        return 0;
    for (; s != end; ++s)
        if (!cr_is_tchar((unsigned char)*s) || *s == '*' || (!allow_plus && *s == '+'))
            return 0;
    return 1;
}

const char *cr_media_pattern_check(const char *pat)
{
    static const char why[] = "expected a media type like application/json, text/* or */*+json";
    const char *slash, *end = pat + strlen(pat);

    if (pat[0] == '+')
        return plain_token(pat + 1, end, 0) ? NULL : why;
    if ((slash = strchr(pat, '/')) == NULL)
        return why;
    if (slash - pat == 1 && pat[0] == '*') {
        /* any type: only with a suffix */
        return slash[1] == '*' && slash[2] == '+' && plain_token(slash + 3, end, 0) ? NULL : why;
    }
    if (!plain_token(pat, slash, 1))
        return why;
    if (slash[1] == '*') {
        if (slash[2] == '\0')
            return NULL;
        return slash[2] == '+' && plain_token(slash + 3, end, 0) ? NULL : why;
    }
    return plain_token(slash + 1, end, 1) ? NULL : why;
}
