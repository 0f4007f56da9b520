/*
 * chunked.h: a strict decoder for HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), for request bodies (through the
 * picohttpparser interface libh2o calls) and for upstream response bodies.
 *
 * It follows picohttpparser's phr_decode_chunked contract so that it can stand in for it: the data is decoded in
 * place, *bufsz becomes the number of decoded bytes at the front of buf, and the return value is
 *   >= 0  complete: that many bytes after the chunked body are left undecoded, moved to just after the decoded data;
 *   -2    incomplete: call again with the next bytes (the decoder keeps its state);
 *   -1    malformed: the body must be rejected and the connection closed (no byte of it can be trusted).
 * The struct has picohttpparser's size and puts `consume_trailer` where phr_chunked_decoder does, so libh2o's own
 * initialisation (memset to 0, then consume_trailer = 1) is valid for it.
 *
 * What is malformed, unlike picohttpparser (which takes `0x5` as a last chunk with extension `x5`, and bare LF):
 *   - a chunk-size that is not 1*HEXDIG directly followed by CRLF, ";" (an extension) or BWS then ";";
 *     more than 15 hex digits (no size over 2^60 fits anywhere);
 *   - any line ending other than CRLF, after the size line, after the data, in trailers;
 *   - control characters (but HTAB) in an extension or a trailer, an extension line over 4 KiB, trailers over 16 KiB
 *     in all, a trailer line that starts with whitespace (obs-fold) or has no "name:".
 * Trailers are checked and dropped when consume_trailer is set (as picohttpparser does); without it the decoder is
 * complete after the last-chunk's line and leaves the trailer section to the caller.
 *
 * Stateless apart from the decoder struct; thread-safe for distinct decoders.
 */
#ifndef CORRAL_CHUNKED_H
#define CORRAL_CHUNKED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct st_cr_chunked_t {
    size_t left;          /* bytes left in the current chunk's data */
    char consume_trailer; /* at picohttpparser's offset: check and drop the trailer section */
    uint8_t state;        /* private */
    uint8_t hex_count;    /* private */
    uint8_t _pad;
    uint32_t line_len;    /* private: bytes of the current extension or trailer line, then of all trailers */
} cr_chunked_t;

#define CR_CHUNKED_MAX_EXT_LINE 4096
#define CR_CHUNKED_MAX_TRAILERS 16384

/* Zeroes the decoder; consume_trailer as given. */
void cr_chunked_init(cr_chunked_t *d, int consume_trailer);

/* Decodes buf[0..*bufsz) in place. Returns as described at the top of this file. */
ssize_t cr_chunked_decode(cr_chunked_t *d, char *buf, size_t *bufsz);

/* 1 while the decoder is inside a chunk's data (picohttpparser's phr_decode_chunked_is_in_data). */
int cr_chunked_in_data(const cr_chunked_t *d);

#endif
