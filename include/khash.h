/*
 * khash.h: a stand-in for klib's khash.h, which libh2o 2.2.5's installed <h2o/http2_internal.h> includes but Debian's
 * libh2o-evloop-dev does not ship. Only conn_watch.c includes that header (for h2o_http2_conn_t's layout).
 *
 * It declares just enough for the header to compile: the stream hash stays an incomplete type (corral never looks
 * streams up; conn->streams is only a pointer, so every offset in h2o_http2_conn_t is libh2o's own), and the
 * accessors used by the header's unused inline h2o_http2_conn_get_stream are declared, never defined: calling that
 * function from corral fails to link, on purpose. If a later package ships khash.h beside http2_internal.h, that
 * one is found first (a quoted include searches the includer's directory before -I).
 */
#ifndef CORRAL_KHASH_STANDIN_H
#define CORRAL_KHASH_STANDIN_H

#include <stdint.h>

typedef uint32_t khint_t;
typedef khint_t khiter_t;

#define khash_t(name) kh_##name##_t
#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                                  \
    typedef struct kh_##name##_s kh_##name##_t;                                                                              \
    khint_t cr_khash_standin_get_##name(const kh_##name##_t *h, uint64_t key);

khint_t cr_khash_standin_end(const void *h);
void *cr_khash_standin_val(const void *h, khint_t i);

#define kh_get(name, h, k) cr_khash_standin_get_##name((h), (k))
#define kh_end(h) cr_khash_standin_end(h)
#define kh_val(h, i) cr_khash_standin_val((h), (i))

#endif
