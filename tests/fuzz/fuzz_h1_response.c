/*
 * fuzz_h1_response.c: the upstream response head check (h1_response.c).
 *
 * Input: byte 0 bit 0 = the request was HEAD; byte 1 = the head limit (64 << (b % 11) bytes); the rest is what the
 * upstream sent. Properties beyond "no crash":
 *  - fed as it arrives (the buffer growing by the input's own step sizes, the parser keeping its state), the parse
 *    gives the same outcome as one call on all of it, -2 (incomplete) before that;
 *  - a valid head round-trips: written out again as "HTTP/1.x status reason", its fields as "name: value", it
 *    parses to the same status, fields, body framing and length;
 *  - the framing is consistent: CR_H1_BODY_LENGTH exactly when a Content-Length applies, NONE for HEAD, 1xx, 204,
 *    304; the status is 100..599 and never 101.
 */
#include "fuzz_util.h"

#include "corral/http/h1_response.h"

static ssize_t parse_all(const char *buf, size_t len, int is_head, size_t max_head, h2o_mem_pool_t *pool, cr_h1_head_t *head)
{
    cr_h1_parser_t p;
    const char *why = NULL;
    ssize_t r;
    cr_h1_parser_init(&p, max_head);
    r = cr_h1_parse_response(&p, buf, len, is_head, pool, head, &why);
    FZ_CHECK(r == -1 || r == -2 || (r > 0 && (size_t)r <= len));
    if (r == -1)
        FZ_CHECK(why != NULL && strchr(why, '\n') == NULL);
    return r;
}

static void check_head(const cr_h1_head_t *h, int is_head)
{
    size_t i, n_cl = 0;
    FZ_CHECK(h->status >= 100 && h->status <= 599 && h->status != 101);
    FZ_CHECK(h->minor_version >= 0 && h->minor_version <= 9);
    if (is_head || h->status == 204 || h->status == 304)
        FZ_CHECK(h->body == CR_H1_BODY_NONE);
    if (h->body != CR_H1_BODY_LENGTH)
        FZ_CHECK(h->content_length == 0);
    for (i = 0; i != h->num_headers; ++i) {
        const h2o_header_t *f = h->headers + i;
        size_t j;
        FZ_CHECK(f->name->len != 0);
        for (j = 0; j != f->name->len; ++j)
            FZ_CHECK(!(f->name->base[j] >= 'A' && f->name->base[j] <= 'Z'));
        n_cl += h2o_memis(f->name->base, f->name->len, H2O_STRLIT("content-length"));
    }
    FZ_CHECK(n_cl <= 1);
    FZ_CHECK(h->has_content_length == (n_cl == 1));
}

/* "HTTP/1.x SSS reason\r\n" + "name: value\r\n"... + "\r\n" into a malloc'ed buffer. */
static char *write_head(const cr_h1_head_t *h, size_t *len)
{
    size_t cap = 32 + h->reason.len, i, n;
    char *out, *p;
    for (i = 0; i != h->num_headers; ++i)
        cap += h->headers[i].name->len + h->headers[i].value.len + 4;
    FZ_CHECK((out = malloc(cap)) != NULL);
    p = out + sprintf(out, "HTTP/1.%d %03d ", h->minor_version, h->status);
    memcpy(p, h->reason.base, h->reason.len);
    p += h->reason.len;
    *p++ = '\r', *p++ = '\n';
    for (i = 0; i != h->num_headers; ++i) {
        const h2o_header_t *f = h->headers + i;
        memcpy(p, f->name->base, f->name->len);
        p += f->name->len;
        *p++ = ':', *p++ = ' ';
        memcpy(p, f->value.base, f->value.len);
        p += f->value.len;
        *p++ = '\r', *p++ = '\n';
    }
    *p++ = '\r', *p++ = '\n';
    n = (size_t)(p - out);
    FZ_CHECK(n <= cap);
    *len = n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    int is_head = (int)(fz_byte(&in) & 1);
    size_t max_head = (size_t)64 << (fz_byte(&in) % 11), len = in.len, i;
    const char *buf = (const char *)in.p;
    h2o_mem_pool_t pool;
    cr_h1_head_t head, inc, again;
    cr_h1_parser_t p;
    ssize_t r, ri = -2;

    h2o_mem_init_pool(&pool);
    r = parse_all(buf, len, is_head, max_head, &pool, &head);

    /* as it arrives: step sizes from the bytes themselves (1..16), the buffer's start fixed */
    cr_h1_parser_init(&p, max_head);
    for (i = 0; ri == -2 && i < len;) {
        const char *why = NULL;
        i += 1 + ((unsigned char)buf[i] & 15);
        if (i > len)
            i = len;
        ri = cr_h1_parse_response(&p, buf, i, is_head, &pool, &inc, &why);
        if (ri == -2)
            continue;
        FZ_CHECK(ri == r || (r > 0 && ri > 0));
    }
    if (len == 0)
        ri = r;
    FZ_CHECK(ri == r);

    if (r > 0) {
        size_t wlen;
        char *w;
        check_head(&head, is_head);
        FZ_CHECK(inc.status == head.status && inc.num_headers == head.num_headers && inc.body == head.body);
        w = write_head(&head, &wlen);
        if (parse_all(w, wlen, is_head, wlen + 64, &pool, &again) != (ssize_t)wlen) {
            fprintf(stderr, "round trip failed on: %.*s\n", (int)wlen, w);
            FZ_CHECK(!"a parsed head written out parses again");
        }
        FZ_CHECK(again.status == head.status && again.minor_version == head.minor_version);
        FZ_CHECK(again.reason.len == head.reason.len && memcmp(again.reason.base, head.reason.base, head.reason.len) == 0);
        FZ_CHECK(again.body == head.body && again.content_length == head.content_length && again.keep_alive == head.keep_alive);
        FZ_CHECK(again.num_headers == head.num_headers);
        for (i = 0; i != head.num_headers; ++i) {
            FZ_CHECK(h2o_memis(again.headers[i].name->base, again.headers[i].name->len, head.headers[i].name->base,
                               head.headers[i].name->len));
            FZ_CHECK(h2o_memis(again.headers[i].value.base, again.headers[i].value.len, head.headers[i].value.base,
                               head.headers[i].value.len));
        }
        free(w);
    }
    h2o_mem_clear_pool(&pool);
    return 0;
}
