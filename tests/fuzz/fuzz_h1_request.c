/*
 * fuzz_h1_request.c: the strict HTTP/1.1 request parser (h1_request.c) and its field-section parser.
 *
 * Input: byte 0 = the caller's field array size (1..64); the rest is what the client sent. Properties beyond
 * "no crash":
 *  - fed as it arrives (the buffer growing by the input's own step sizes, last_len = the previous length), the parse
 *    gives the same outcome as one call on all of it, -2 before that (or -2 where one call finds an error before
 *    the head has ended: with last_len, the parser looks again only once an end of head has arrived);
 *  - a valid head round-trips: written out as "METHOD SP target SP HTTP/1.x", fields as "name: value", it parses
 *    to the same method, target, version and fields;
 *  - what it accepts satisfies the predicates reqcheck.c applies to HTTP/2: the method is a token, the target is
 *    origin-form (or "*" / authority-form), names are tokens and values field values.
 */
#include "fuzz_util.h"

#include <h2o.h>

#include "corral/http/h1_request.h"

#define FZ_MAX_FIELDS 64

static int parse(const char *buf, size_t len, cr_h1_request_t *req, cr_h1_field_t *fields, size_t max_fields, size_t *num,
                 size_t last_len)
{
    const char *err = NULL;
    int r;
    *num = max_fields;
    r = cr_h1_parse_request(buf, len, req, fields, num, last_len, &err);
    FZ_CHECK(r == -1 || r == -2 || (r > 0 && (size_t)r <= len));
    if (r == -1)
        FZ_CHECK(err != NULL);
    if (r > 0)
        FZ_CHECK(*num <= max_fields);
    return r;
}

static char *write_head(const cr_h1_request_t *req, const cr_h1_field_t *f, size_t n, size_t *len)
{
    size_t cap = req->method_len + req->target_len + 32, i;
    char *out, *p;
    for (i = 0; i != n; ++i)
        cap += f[i].name_len + f[i].value_len + 4;
    FZ_CHECK((out = malloc(cap)) != NULL);
    p = out;
    memcpy(p, req->method, req->method_len), p += req->method_len, *p++ = ' ';
    memcpy(p, req->target, req->target_len), p += req->target_len;
    p += sprintf(p, " HTTP/1.%d\r\n", req->minor_version);
    for (i = 0; i != n; ++i) {
        memcpy(p, f[i].name, f[i].name_len), p += f[i].name_len;
        *p++ = ':', *p++ = ' ';
        memcpy(p, f[i].value, f[i].value_len), p += f[i].value_len;
        *p++ = '\r', *p++ = '\n';
    }
    *p++ = '\r', *p++ = '\n';
    *len = (size_t)(p - out);
    FZ_CHECK(*len <= cap);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    size_t max_fields = 1 + fz_byte(&in) % FZ_MAX_FIELDS, len = in.len, n, ni, i, last = 0;
    const char *buf = (const char *)in.p;
    cr_h1_request_t req, inc;
    cr_h1_field_t fields[FZ_MAX_FIELDS], finc[FZ_MAX_FIELDS];
    int r, ri = -2;

    r = parse(buf, len, &req, fields, max_fields, &n, 0);

    for (i = 0; ri == -2 && i < len;) {
        i += 1 + ((unsigned char)buf[i] & 15);
        if (i > len)
            i = len;
        ri = parse(buf, i, &inc, finc, max_fields, &ni, last);
        last = i;
    }
    if (len == 0)
        ri = r;
    /* with last_len, an error before the end of the head is found once the head ends (picohttpparser's contract) */
    FZ_CHECK(ri == r || (r == -1 && ri == -2));

    if (r > 0) {
        cr_h1_request_t again;
        cr_h1_field_t fa[FZ_MAX_FIELDS];
        size_t wlen, na;
        char *w;
        int star = h2o_memis(req.target, req.target_len, H2O_STRLIT("*")),
            connect = h2o_memis(req.method, req.method_len, H2O_STRLIT("CONNECT"));
        FZ_CHECK(ni == n);
        FZ_CHECK(req.minor_version == 0 || req.minor_version == 1);
        FZ_CHECK(cr_h1_is_token(req.method, req.method_len));
        FZ_CHECK(cr_h1_is_origin_form(req.target, req.target_len) || star || (connect && cr_h1_is_authority(req.target, req.target_len)));
        for (i = 0; i != n; ++i) {
            FZ_CHECK(cr_h1_is_token(fields[i].name, fields[i].name_len));
            FZ_CHECK(cr_h1_is_field_value(fields[i].value, fields[i].value_len));
        }
        w = write_head(&req, fields, n, &wlen);
        if (parse(w, wlen, &again, fa, max_fields, &na, 0) != (int)wlen) {
            fprintf(stderr, "round trip failed on: %.*s\n", (int)wlen, w);
            FZ_CHECK(!"a parsed head written out parses again");
        }
        FZ_CHECK(again.minor_version == req.minor_version && na == n);
        FZ_CHECK(h2o_memis(again.method, again.method_len, req.method, req.method_len));
        FZ_CHECK(h2o_memis(again.target, again.target_len, req.target, req.target_len));
        for (i = 0; i != n; ++i) {
            FZ_CHECK(h2o_memis(fa[i].name, fa[i].name_len, fields[i].name, fields[i].name_len));
            FZ_CHECK(h2o_memis(fa[i].value, fa[i].value_len, fields[i].value, fields[i].value_len));
        }
        free(w);
    }

    /* the same bytes as a field section alone (trailers) */
    {
        const char *err = NULL;
        int rf;
        n = max_fields;
        rf = cr_h1_parse_fields(buf, len, fields, &n, 0, &err);
        FZ_CHECK(rf == -1 || rf == -2 || (rf > 0 && (size_t)rf <= len && n <= max_fields));
        for (i = 0; rf > 0 && i != n; ++i)
            FZ_CHECK(cr_h1_is_token(fields[i].name, fields[i].name_len) && cr_h1_is_field_value(fields[i].value, fields[i].value_len));
    }
    return 0;
}
