/*
 * fuzz_util.h: what the libFuzzer targets share: splitting one input into fields and a check that aborts (so that
 * libFuzzer saves the input) when a property beyond "no crash" fails.
 *
 * Inputs are split on a separator line "\n--\n" or on a single byte, as each target says; the seed corpora are
 * written that way so that a human can read them. Nothing here allocates.
 */
#ifndef CORRAL_FUZZ_UTIL_H
#define CORRAL_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/core/common.h"

/* Fails the run: prints what was violated and aborts. */
#define FZ_CHECK(cond)                                                                                                              \
    do {                                                                                                                            \
        if (!(cond)) {                                                                                                              \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);                                          \
            abort();                                                                                                                \
        }                                                                                                                           \
    } while (0)

typedef struct st_fz_input_t {
    const uint8_t *p;
    size_t len;
} fz_input_t;

/* The next field up to `sep` (not included; the separator is consumed), or the rest of the input. */
static inline cr_str_t fz_next(fz_input_t *in, const char *sep)
{
    size_t seplen = strlen(sep), i;
    cr_str_t out = {(const char *)in->p, in->len};
    for (i = 0; i + seplen <= in->len; ++i) {
        if (memcmp(in->p + i, sep, seplen) == 0) {
            out.len = i;
            in->p += i + seplen;
            in->len -= i + seplen;
            return out;
        }
    }
    in->p += in->len;
    in->len = 0;
    return out;
}

/* One byte of the input (0 when it is used up). */
static inline unsigned fz_byte(fz_input_t *in)
{
    unsigned b;
    if (in->len == 0)
        return 0;
    b = in->p[0];
    ++in->p;
    --in->len;
    return b;
}

#endif
