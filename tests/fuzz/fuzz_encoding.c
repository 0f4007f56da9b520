/*
 * fuzz_encoding.c: Accept-Encoding negotiation, Content-Encoding and Content-Type checks, and the decoders that
 * serve an upstream's gzip or br body to a client that does not accept it (encoding.c).
 *
 * Input: byte 0 = the available codings (low 3 bits) and the body's coding (bits 3-4: identity, gzip, br); byte 1 =
 * a split point (in 1/256ths of the body); then, separated by "\n--\n": Accept-Encoding (absent when the input ends
 * before it), Content-Type, a compress.types pattern, Content-Encoding, the body. Properties beyond "no crash":
 *  - negotiation gives -1, an available coding, or identity (identity "decode the stored one" when not available);
 *    an absent header gives identity; an empty one gives identity when it is available;
 *  - a pattern that cr_media_pattern_check accepts is usable by cr_media_type_compressible;
 *  - the streaming decoder, fed the body in two pieces, agrees with the one-shot decoder: both fail, or both give
 *    the same bytes; neither gives more than its bound;
 *  - compressing the body and decoding it gives the body back.
 */
#include "fuzz_util.h"

#include "corral/core/media_pattern.h"
#include "corral/http/encoding.h"

#define FZ_MAX_OUT ((size_t)1 << 20)

typedef struct st_fz_sink_t {
    char *buf;
    size_t len;
} fz_sink_t;

static int emit(void *ctx, const void *buf, size_t len)
{
    fz_sink_t *s = ctx;
    FZ_CHECK(len <= CR_CODEC_CHUNK || len == 0 || s != NULL);
    FZ_CHECK(s->len + len <= FZ_MAX_OUT);
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    return CR_OK;
}

static void check_negotiation(cr_str_t ae, unsigned available)
{
    int r = cr_negotiate_encoding(ae, available);
    FZ_CHECK(r == -1 || r == CR_ENC_IDENTITY || r == CR_ENC_GZIP || r == CR_ENC_BR);
    if (r > CR_ENC_IDENTITY)
        FZ_CHECK(available & CR_ENC_BIT(r));
    if (ae.base == NULL)
        FZ_CHECK(r == CR_ENC_IDENTITY);
    if (ae.base != NULL && ae.len == 0 && (available & CR_ENC_BIT(CR_ENC_IDENTITY)))
        FZ_CHECK(r == CR_ENC_IDENTITY);
}

static void check_decoders(cr_encoding_t enc, cr_str_t body, size_t split)
{
    static char out[FZ_MAX_OUT];
    fz_sink_t sink = {out, 0};
    cr_decoder_t *d = cr_decoder_new(enc, FZ_MAX_OUT);
    char *whole = NULL;
    size_t whole_len = 0;
    int rs, rw;

    FZ_CHECK(d != NULL);
    rs = cr_decoder_feed(d, body.base, split, 0, emit, &sink);
    if (rs == CR_OK)
        rs = cr_decoder_feed(d, body.base + split, body.len - split, 1, emit, &sink);
    cr_decoder_free(&d);
    FZ_CHECK(d == NULL);
    rw = cr_decode_whole(enc, body.base, body.len, FZ_MAX_OUT, &whole, &whole_len);
    FZ_CHECK((rw == CR_OK) == (rs == CR_OK));
    if (rw == CR_OK) {
        FZ_CHECK(whole != NULL && whole_len <= FZ_MAX_OUT);
        FZ_CHECK(whole_len == sink.len && memcmp(whole, out, whole_len) == 0);
    } else {
        FZ_CHECK(whole == NULL && whole_len == 0);
    }
    free(whole);
}

static void check_round_trip(cr_str_t body)
{
    char *enc = NULL, *dec = NULL;
    size_t enc_len, dec_len;
    if (body.len > 4096)
        return;
    FZ_CHECK(cr_encode_gzip(body.base, body.len, 1, &enc, &enc_len) == CR_OK);
    FZ_CHECK(cr_decode_whole(CR_ENC_GZIP, enc, enc_len, 0, &dec, &dec_len) == CR_OK);
    FZ_CHECK(dec_len == body.len && memcmp(dec, body.base, body.len) == 0);
    free(enc), free(dec);
    FZ_CHECK(cr_encode_br(body.base, body.len, 1, 1, &enc, &enc_len) == CR_OK);
    FZ_CHECK(cr_decode_whole(CR_ENC_BR, enc, enc_len, 0, &dec, &dec_len) == CR_OK);
    FZ_CHECK(dec_len == body.len && memcmp(dec, body.base, body.len) == 0);
    free(enc), free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    unsigned sel = fz_byte(&in), split8 = fz_byte(&in), available = sel & 7;
    cr_encoding_t enc = (cr_encoding_t)((sel >> 3) % 3);
    cr_str_t ae = in.len != 0 ? fz_next(&in, "\n--\n") : cr_str(NULL, 0);
    cr_str_t content_type = fz_next(&in, "\n--\n"), pattern = fz_next(&in, "\n--\n"), content_encoding = fz_next(&in, "\n--\n");
    cr_str_t body = cr_str((const char *)in.p, in.len);
    char pat[256];
    int ce;

    check_negotiation(ae, available);

    /* a pattern the config would accept (it keeps them lower-case) */
    if (pattern.len < sizeof(pat)) {
        size_t i;
        char *pats[1] = {pat};
        for (i = 0; i != pattern.len; ++i)
            pat[i] = (char)(pattern.base[i] >= 'A' && pattern.base[i] <= 'Z' ? pattern.base[i] - 'A' + 'a' : pattern.base[i]);
        pat[pattern.len] = '\0';
        if (strlen(pat) == pattern.len && cr_media_pattern_check(pat) == NULL)
            FZ_CHECK(cr_media_type_compressible(content_type, pats, 1) <= 1);
    }

    ce = cr_encoding_parse(content_encoding);
    FZ_CHECK(ce == -1 || ce == CR_ENC_IDENTITY || ce == CR_ENC_GZIP || ce == CR_ENC_BR);
    if (ce >= 0)
        FZ_CHECK(cr_str_ieq(cr_str_trim_ows(content_encoding), cr_encoding_name((cr_encoding_t)ce).base,
                            cr_encoding_name((cr_encoding_t)ce).len) ||
                 content_encoding.len == 0 || ce == CR_ENC_GZIP || ce == CR_ENC_IDENTITY);

    check_decoders(enc, body, body.len * split8 / 256);
    check_round_trip(body);
    return 0;
}
