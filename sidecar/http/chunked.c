/*
 * chunked.c: the strict chunked-coding decoder (see chunked.h for the contract and what is rejected).
 *
 * Invariants: one pass over the input, never reading past *bufsz; decoded data only moves towards the front of the
 * buffer (dst <= src); the state machine has one state per grammar position, so a byte that the grammar does not
 * allow there is an error, never skipped. No allocation, no global state.
 */
#include "corral/http/chunked.h"

#include "corral/core/common.h"

#include <string.h>

_Static_assert(sizeof(cr_chunked_t) == 16, "cr_chunked_t must have picohttpparser's phr_chunked_decoder size");
_Static_assert(offsetof(cr_chunked_t, consume_trailer) == sizeof(size_t), "consume_trailer at phr_chunked_decoder's offset");

enum {
    ST_SIZE = 0,    /* chunk-size hex digits (0 so that a zeroed decoder starts here) */
    ST_SIZE_BWS,    /* whitespace after the size: only ";" may follow */
    ST_EXT,         /* chunk-ext up to CR */
    ST_SIZE_LF,     /* the LF of the size line */
    ST_DATA,        /* chunk data */
    ST_DATA_CR,     /* the CRLF after the data */
    ST_DATA_LF,
    ST_TR_START,    /* start of a trailer line, or the CR of the empty line that ends the trailers */
    ST_TR_NAME,     /* field-name */
    ST_TR_VALUE,    /* field-value up to CR */
    ST_TR_LF,       /* the LF of a trailer line */
    ST_TR_END_LF,   /* the LF of the final empty line */
};

/* A byte allowed inside an extension or a field value: VCHAR, SP, HTAB, obs-text. */
static int is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

void cr_chunked_init(cr_chunked_t *d, int consume_trailer)
{
    memset(d, 0, sizeof(*d));
    d->consume_trailer = consume_trailer ? 1 : 0;
}

int cr_chunked_in_data(const cr_chunked_t *d)
{
    return d->state == ST_DATA;
}

ssize_t cr_chunked_decode(cr_chunked_t *d, char *buf, size_t *bufsz)
{
    size_t src = 0, dst = 0, len = *bufsz;
    ssize_t ret = -2;

    while (src < len) {
        unsigned char c = (unsigned char)buf[src];
        switch (d->state) {
        case ST_SIZE: {
            int v = cr_hex_value((char)c);
            if (v >= 0) {
                if (d->hex_count == 15)
                    goto Error;
                d->left = d->left * 16 + (size_t)v;
                ++d->hex_count;
                ++src;
                continue;
            }
            if (d->hex_count == 0)
                goto Error;
            if (c == '\r')
                d->state = ST_SIZE_LF;
            else if (c == ';')
                d->state = ST_EXT, d->line_len = 0;
            else if (c == ' ' || c == '\t')
                d->state = ST_SIZE_BWS;
            else
                goto Error;
            ++src;
            continue;
        }
        case ST_SIZE_BWS:
            if (c == ';')
                d->state = ST_EXT, d->line_len = 0;
            else if (c != ' ' && c != '\t')
                goto Error;
            ++src;
            continue;
        case ST_EXT:
            if (c == '\r') {
                d->state = ST_SIZE_LF;
            } else if (!is_field_byte(c) || ++d->line_len > CR_CHUNKED_MAX_EXT_LINE) {
                goto Error;
            }
            ++src;
            continue;
        case ST_SIZE_LF:
            if (c != '\n')
                goto Error;
            ++src;
            d->hex_count = 0;
            if (d->left != 0) {
                d->state = ST_DATA;
            } else if (d->consume_trailer) {
                d->state = ST_TR_START;
                d->line_len = 0;
            } else {
                goto Complete;
            }
            continue;
        case ST_DATA: {
            size_t n = len - src;
            if (n > d->left)
                n = d->left;
            if (dst != src)
                memmove(buf + dst, buf + src, n);
            src += n;
            dst += n;
            d->left -= n;
            if (d->left == 0)
                d->state = ST_DATA_CR;
            continue;
        }
        case ST_DATA_CR:
            if (c != '\r')
                goto Error;
            d->state = ST_DATA_LF;
            ++src;
            continue;
        case ST_DATA_LF:
            if (c != '\n')
                goto Error;
            d->state = ST_SIZE;
            ++src;
            continue;
        default:
            break;
        }
        /* the trailer section: every byte counts towards its bound */
        if (++d->line_len > CR_CHUNKED_MAX_TRAILERS)
            goto Error;
        switch (d->state) {
        case ST_TR_START:
            if (c == '\r')
                d->state = ST_TR_END_LF;
            else if (cr_is_tchar(c))
                d->state = ST_TR_NAME;
            else
                goto Error; /* obs-fold, an empty name, a bare LF, a control */
            break;
        case ST_TR_NAME:
            if (c == ':')
                d->state = ST_TR_VALUE;
            else if (!cr_is_tchar(c))
                goto Error;
            break;
        case ST_TR_VALUE:
            if (c == '\r')
                d->state = ST_TR_LF;
            else if (!is_field_byte(c))
                goto Error;
            break;
        case ST_TR_LF:
            if (c != '\n')
                goto Error;
            d->state = ST_TR_START;
            break;
        case ST_TR_END_LF:
            if (c != '\n')
                goto Error;
            ++src;
            goto Complete;
        default:
            goto Error; /* a corrupt decoder */
        }
        ++src;
    }
    goto Exit;

Complete:
    ret = (ssize_t)(len - src);
    d->state = ST_SIZE;
    d->left = 0;
    d->hex_count = 0;
    goto Exit;
Error:
    ret = -1;
    src = len; /* nothing after an error is handed back */
Exit:
    if (ret >= 0 && dst != src)
        memmove(buf + dst, buf + src, len - src);
    *bufsz = dst;
    return ret;
}
