/*
 * encoding.h: content codings (gzip via zlib, br via libbrotlienc/libbrotlidec), Accept-Encoding negotiation
 * (RFC 9110 12.5.3) and the "is this media type worth compressing" test. Pure functions and self-contained
 * stream objects: nothing here knows about h2o, the store or the event loop. The codecs are in encoding.c; names,
 * negotiation and media types in negotiate.c.
 *
 * Invariants:
 * - Every function is thread-safe; a cr_decoder_t / cr_encoder_t belongs to one thread at a time.
 * - One-shot functions return CR_OK with a malloc'ed *out (never NULL on success, even for zero bytes: free() it), or
 *   CR_ERROR with *out == NULL and *outlen == 0.
 * - Stream objects hold bounded memory: the codec's own state (a brotli decoder at most CR_DECODER_MEMORY) plus one
 *   CR_CODEC_CHUNK output buffer. Output is handed to an `emit` callback in pieces of at most CR_CODEC_CHUNK bytes
 *   (the identity decoder passes its input through unchanged); the buffer is only valid during the call.
 * - After a stream function returns anything but CR_OK (or CR_AGAIN from cr_decoder_feed_some) the stream is failed:
 *   every later feed returns CR_ERROR.
 */
#ifndef CORRAL_ENCODING_H
#define CORRAL_ENCODING_H

#include "corral/core/common.h"
#include "corral/core/common.h" /* cr_encoding_t: CR_ENC_IDENTITY, CR_ENC_GZIP, CR_ENC_BR */

/* Size of the output pieces the stream objects emit. */
#define CR_CODEC_CHUNK ((size_t)16384)

/* Most memory a brotli decoder may allocate (its ring buffer is the stream's window, up to 16 MiB, or less when the
 * stream says it is shorter). A stream that needs more fails to decode (CR_ERROR), as corrupt input does. */
#define CR_DECODER_MEMORY ((size_t)2 << 20)

/* Bit of an encoding in an "available" / "encodings" bit set. */


/* "identity", "gzip" or "br" (static storage); {"", 0} for a value outside cr_encoding_t. */
cr_str_t cr_encoding_name(cr_encoding_t enc);

/*
 * Maps a response's Content-Encoding value to a coding corral can store and decode: absent (base NULL), empty or
 * "identity" -> CR_ENC_IDENTITY; "gzip" / "x-gzip" -> CR_ENC_GZIP; "br" -> CR_ENC_BR (case-insensitive, surrounding
 * whitespace ignored). Returns -1 for anything else, including a list of several codings ("gzip, br") and
 * "deflate": the caller should then neither store variants of it nor decode it.
 */
int cr_encoding_parse(cr_str_t content_encoding);

/* ---- one-shot compression (store time) ---- */

/*
 * Compresses `in` into a gzip member (RFC 1952) at zlib `level` (CR_GZIP_LEVEL_MIN..MAX). *out is malloc'ed and
 * sized exactly. Fails (CR_ERROR) on a level out of range or out of memory.
 */
int cr_encode_gzip(const void *in, size_t len, int level, char **out, size_t *outlen);

/*
 * Compresses `in` into a brotli stream (RFC 7932) at `quality` (CR_BROTLI_QUALITY_MIN..MAX), window 4 MiB. `text`
 * non-zero selects BROTLI_MODE_TEXT (UTF-8 text), zero the generic mode; either decodes the same way. *out is
 * malloc'ed and sized exactly. Fails (CR_ERROR) on a quality out of range, an input too large for brotli, or out of
 * memory.
 */
int cr_encode_br(const void *in, size_t len, int quality, int text, char **out, size_t *outlen);

/*
 * Decodes a whole body (tests, small bodies). `max_out` bounds the decoded size (0 = no bound). CR_ENC_IDENTITY
 * copies. Fails (CR_ERROR) on corrupt or truncated input, trailing garbage, output over max_out, or out of memory.
 */
int cr_decode_whole(cr_encoding_t enc, const void *in, size_t len, size_t max_out, char **out, size_t *outlen);

/* ---- streaming ---- */

/*
 * Receives output. Returns CR_OK to go on; any other value stops the feed, which returns that value (the stream is
 * then failed).
 */
typedef int (*cr_codec_emit_cb)(void *ctx, const void *buf, size_t len);

typedef struct st_cr_decoder_t cr_decoder_t;
typedef struct st_cr_encoder_t cr_encoder_t;

/*
 * A decoder for serving an upstream-compressed body to a client that does not accept its coding. `max_output`
 * bounds the total decoded size (0 = no bound): a decompression bomb fails once it gets there, whatever the
 * ratio. gzip accepts concatenated members (RFC 1952 2.2). Returns NULL on an unknown coding or out of memory.
 */
cr_decoder_t *cr_decoder_new(cr_encoding_t enc, size_t max_output);

/*
 * Decodes `in` (any split of the stream, including zero bytes) and emits what it yields. `is_final` non-zero says
 * the input is complete: the stream must then end exactly there. Returns CR_OK; CR_ERROR on corrupt input, data
 * after the end of the stream, a stream that is incomplete when is_final is set, output over max_output, out of
 * memory, or a feed after the final one; or the non-CR_OK value an emit returned.
 */
int cr_decoder_feed(cr_decoder_t *d, const void *in, size_t len, int is_final, cr_codec_emit_cb emit, void *ctx);

/*
 * cr_decoder_feed with a bound on the output of this call: decoding stops once `budget` bytes were emitted (the
 * last piece may pass it by less than CR_CODEC_CHUNK), leaving the rest of `in` untaken. *consumed is the input
 * taken. Returns CR_OK when all of `in` was taken and everything it yields was emitted (with is_final: the stream
 * ended exactly there); CR_AGAIN when it stopped at the budget: call again with the input from *consumed on (which
 * may be nothing: output can be pending); otherwise the errors of cr_decoder_feed (the stream is failed). Here an
 * emit must not return CR_AGAIN (it would fail the stream, yet read as "call again").
 */
int cr_decoder_feed_some(cr_decoder_t *d, const void *in, size_t len, int is_final, size_t budget, size_t *consumed,
                         cr_codec_emit_cb emit, void *ctx);

/* Total bytes emitted so far. */
uint64_t cr_decoder_total_out(const cr_decoder_t *d);

/* Frees the decoder and sets *d to NULL. Accepts NULL and *d == NULL. */
void cr_decoder_free(cr_decoder_t **d);

/*
 * An encoder for on-the-fly compression of pass-through responses. `level` is the gzip level or brotli quality, in
 * the ranges above (brotli uses text mode and a 256 KiB window, so one stream holds about 1.4 MB at quality 5; gzip
 * about 270 KiB). CR_ENC_IDENTITY is not a coding to encode to. Returns NULL on a bad
 * coding or level, or out of memory.
 */
cr_encoder_t *cr_encoder_new(cr_encoding_t enc, int level);

/*
 * Compresses `in` and emits what the compressor yields. A non-final feed with input ends with a flush (zlib
 * Z_SYNC_FLUSH, brotli BROTLI_OPERATION_FLUSH): everything fed so far is decodable from what was emitted, so a
 * slow upstream never leaves bytes stuck in the compressor. Feeding tiny pieces therefore costs ratio; callers
 * pass whole upstream reads. `is_final` non-zero finishes the stream (trailer included). Returns CR_OK; CR_ERROR on
 * a codec failure, out of memory or a feed after the final one; or the non-CR_OK value an emit returned.
 */
int cr_encoder_feed(cr_encoder_t *e, const void *in, size_t len, int is_final, cr_codec_emit_cb emit, void *ctx);

/* Frees the encoder and sets *e to NULL. Accepts NULL and *e == NULL. */
void cr_encoder_free(cr_encoder_t **e);

/* ---- negotiation ---- */

/*
 * Picks the coding of the response from the request's Accept-Encoding (RFC 9110 12.5.3). Several header lines are
 * joined with ", " by the caller. `accept_encoding.base == NULL` means the header is absent.
 *
 * `available` holds CR_ENC_BIT(e) for each coding the response can be sent in without work (stored variants, or
 * for on-the-fly compression every coding the encoder can make). Normally CR_ENC_BIT(CR_ENC_IDENTITY) is among them.
 *
 * Parsing: members are `coding [ OWS ";" OWS "q=" qvalue ]`, case-insensitive, empty members skipped. qvalue is 0 or
 * 1 with at most three decimals ("1.000", "0.5", "0."). A member with a malformed qvalue or any other parameter is
 * ignored as a whole; when a coding appears twice, its first well-formed member counts. "x-gzip" is gzip. Codings
 * corral does not make (deflate, zstd, ...) are read and otherwise ignored.
 *
 * Acceptability, per coding c: q(c) if listed, else q(*) if "*" is listed, else not acceptable (q=0). identity is
 * the exception: unlisted and not excluded by "*;q=0", it is acceptable with the lowest possible preference (it
 * loses to any coding the client listed with q>0). q=0 always means "not acceptable".
 *
 * Choice: among the acceptable available codings, the highest q; at equal q, br over gzip over identity.
 *
 * - Absent header: CR_ENC_IDENTITY (corral does not guess what a silent client can decode).
 * - Empty header value: identity only (nothing is listed, identity is implicitly acceptable): CR_ENC_IDENTITY.
 * - Identity not in `available` (the object is stored only as the upstream's gzip or br): an acceptable stored
 *   coding is returned whenever there is one, whatever identity's q (sending stored bytes costs nothing).
 *   Otherwise, when identity is acceptable, CR_ENC_IDENTITY is returned and means "decode the stored coding on
 *   the fly" (cr_decoder_t). The caller tells the two identity cases apart by its own `available`.
 * - Nothing acceptable (e.g. `identity;q=0, *;q=0`, or `br;q=0, identity;q=0` for an object held as gzip and
 *   identity): returns -1. RFC 9110 lets a server either ignore the header and send identity or answer 406; corral
 *   answers 406 Not Acceptable, so a client that forbids every coding we have is told so rather than sent bytes it
 *   said it cannot use.
 */
int cr_negotiate_encoding(cr_str_t accept_encoding, unsigned available);

/*
 * Whether Accept-Encoding explicitly refuses `enc`: lists it (x-gzip for gzip) with q=0, or does not list it and
 * lists "*;q=0". An absent header, or a coding merely not listed, is not a refusal. Parsed as cr_negotiate_encoding
 * does. For an object that cannot be decoded for a client (CR_OBJ_KEEP_CODING): sent in its coding unless refused.
 */
int cr_accept_encoding_refuses(cr_str_t accept_encoding, cr_encoding_t enc);

/* ---- compressible media types ---- */

// Whether a Content-Type value matches one of `patterns` (the route's compress.types, lower-case, as validated by
// cr_media_pattern_check, core/media_pattern.h). Parameters (";charset=utf-8") and surrounding whitespace are ignored, comparison is
// case-insensitive. (Line comments here: the patterns themselves contain comment delimiters.) Pattern forms:
//   "type/subtype"             exactly that type ("application/json")
//   "type/*"                   any subtype of the type ("text/*")
//   "type/*+suffix"            any subtype of the type with that structured-syntax suffix ("application/*+json")
//   "*/*+suffix" or "+suffix"  any type with that suffix: "image/svg+xml" and "application/ld+json" match "*/*+xml"
//                              and "*/*+json"
// A suffix pattern needs at least one character before the '+' in the subtype. Returns 1 on a match; 0 otherwise,
// including for an absent, empty or malformed Content-Type.
int cr_media_type_compressible(cr_str_t content_type, char *const *patterns, size_t num_patterns);

#endif
