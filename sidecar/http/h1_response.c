/*
 * h1_response.c: the strict HTTP/1.1 response-head parser (see h1_response.h for what is malformed).
 *
 * Two steps: scan() finds the end of a head (the empty line) from where the last call stopped, rejecting a bare LF
 * and an over-long head as soon as it sees them; parse_head() then validates the complete head once, line by line,
 * and works out the body framing. Invariants: nothing is read at or past `len`; a complete head is parsed exactly
 * once; the output points into the caller's buffer (values, reason, original-case names) and into the pool (the
 * lower-case names and the header array). No allocation but from the pool, no global state.
 */
#include "corral/http/h1_response.h"

#include "corral/core/common.h"

#include <string.h>

/* A byte allowed in a field value or a reason phrase: HTAB, SP, VCHAR, obs-text. */
static int is_text(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int ieq(const char *s, size_t len, const char *lower)
{
    size_t i;
    if (strlen(lower) != len)
        return 0;
    for (i = 0; i != len; ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        if (c != lower[i])
            return 0;
    }
    return 1;
}

void cr_h1_parser_init(cr_h1_parser_t *p, size_t max_head)
{
    assert(max_head > 0);
    memset(p, 0, sizeof(*p));
    p->max_head = max_head;
}

/* Looks for the end of the head that starts at p->head_start. Returns the offset just past its empty line, 0 when
 * more bytes are needed, or -1 (with *why) when what came is already malformed. */
static ssize_t scan(cr_h1_parser_t *p, const char *buf, size_t len, const char **why)
{
    while (p->scanned < len) {
        const char *lf = memchr(buf + p->scanned, '\n', len - p->scanned);
        size_t i;
        if (lf == NULL) {
            p->scanned = len;
            break;
        }
        i = (size_t)(lf - buf);
        p->scanned = i + 1;
        if (i == p->line_start || buf[i - 1] != '\r') {
            *why = "a line of the response head ends with a bare LF";
            return -1;
        }
        if (i + 1 > p->max_head) {
            *why = "the response head is larger than limits.upstream_header_size";
            return -1;
        }
        if (i - 1 == p->line_start) {
            /* an empty line: the end of the head, unless it is the first one */
            if (p->line_start == p->head_start) {
                *why = "the response starts with an empty line";
                return -1;
            }
            p->line_start = i + 1;
            return (ssize_t)(i + 1);
        }
        p->line_start = i + 1;
    }
    if (len > p->max_head) {
        *why = "the response head is larger than limits.upstream_header_size";
        return -1;
    }
    return 0;
}

/* The status line "HTTP/1.x SP 3DIGIT SP reason" of [s, e) (CRLF excluded); a line that ends right after the code
 * has an empty reason (minimal origins send "HTTP/1.1 200", and nginx and Varnish take it). 0 or -1. */
static int parse_status_line(const char *s, const char *e, cr_h1_head_t *head, const char **why)
{
    const char *r;
    if (e - s < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !(s[7] >= '0' && s[7] <= '9') || s[8] != ' ') {
        *why = "the status line does not start with HTTP/1.x and a space";
        return -1;
    }
    if (!(s[9] >= '0' && s[9] <= '9') || !(s[10] >= '0' && s[10] <= '9') || !(s[11] >= '0' && s[11] <= '9') || (e - s > 12 && s[12] != ' ')) {
        *why = "the status code is not three digits followed by a space";
        return -1;
    }
    head->minor_version = s[7] - '0';
    head->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (head->status < 100 || head->status > 599) {
        *why = "the status code is outside 100..599";
        return -1;
    }
    if (e - s == 12) {
        head->reason = h2o_iovec_init(e, 0);
        return 0;
    }
    for (r = s + 13; r < e; ++r) {
        if (!is_text((unsigned char)*r)) {
            *why = "the reason phrase has a control character";
            return -1;
        }
    }
    head->reason = h2o_iovec_init(s + 13, (size_t)(e - (s + 13)));
    return 0;
}

typedef struct st_framing_t {
    size_t te_codings;   /* Transfer-Encoding codings over all lines */
    int te_chunked;      /* the only one is chunked */
    int has_cl;
    uint64_t cl;
    ssize_t cl_index;    /* the header kept for Content-Length */
    int conn_close;
    int conn_keep_alive;
} framing_t;

/* The elements of a comma list in [s, e), OWS trimmed, empty ones skipped; fn returns 0 or -1 to stop. */
static int each_element(const char *s, const char *e, int (*fn)(const char *, size_t, void *), void *ctx)
{
    while (s < e) {
        const char *a = s, *b;
        while (s < e && *s != ',')
            ++s;
        b = s;
        while (a < b && is_ows(*a))
            ++a;
        while (b > a && is_ows(b[-1]))
            --b;
        if (b > a && fn(a, (size_t)(b - a), ctx) != 0)
            return -1;
        if (s < e)
            ++s; /* the comma */
    }
    return 0;
}

static int on_te_coding(const char *s, size_t len, void *ctx)
{
    framing_t *f = ctx;
    ++f->te_codings;
    f->te_chunked = ieq(s, len, "chunked");
    return f->te_chunked && f->te_codings == 1 ? 0 : -1;
}

static int on_connection_token(const char *s, size_t len, void *ctx)
{
    framing_t *f = ctx;
    if (ieq(s, len, "close"))
        f->conn_close = 1;
    else if (ieq(s, len, "keep-alive"))
        f->conn_keep_alive = 1;
    return 0;
}

typedef struct st_cl_ctx_t {
    framing_t *f;
    const char *first; /* the digits of the first value seen */
    size_t first_len;
} cl_ctx_t;

static int on_cl_value(const char *s, size_t len, void *_ctx)
{
    cl_ctx_t *ctx = _ctx;
    uint64_t v = 0;
    size_t i;
    if (len > CR_H1_MAX_CONTENT_LENGTH_DIGITS)
        return -1;
    for (i = 0; i != len; ++i) {
        if (!(s[i] >= '0' && s[i] <= '9'))
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (ctx->f->has_cl && v != ctx->f->cl)
        return -1;
    if (!ctx->f->has_cl) {
        ctx->first = s;
        ctx->first_len = len;
    }
    ctx->f->has_cl = 1;
    ctx->f->cl = v;
    return 0;
}

/* Validates the head [s, e) (its final empty line included) and fills *head. 0, or -1 with *why. */
static int parse_head(const char *s, const char *e, int is_head_request, h2o_mem_pool_t *pool, cr_h1_head_t *head,
                      const char **why)
{
    framing_t f = {0};
    cl_ctx_t cl = {&f, NULL, 0};
    const char *line = s, *eol;
    size_t nlines = 0, n = 0;
    const char *p;

    f.cl_index = -1;
    memset(head, 0, sizeof(*head));
    eol = memchr(line, '\r', (size_t)(e - line));
    if (eol == NULL || eol + 1 >= e || eol[1] != '\n') {
        *why = "the status line ends with a bare CR";
        return -1;
    }
    if (parse_status_line(line, eol, head, why) != 0)
        return -1;
    line = eol + 2;
    for (p = line; p < e; ++p)
        nlines += *p == '\n';
    head->headers = h2o_mem_alloc_pool(pool, sizeof(*head->headers) * (nlines + 1));
    while (line < e) {
        const char *colon, *v, *ve;
        if ((eol = memchr(line, '\r', (size_t)(e - line))) == NULL || eol + 1 >= e || eol[1] != '\n') {
            *why = "a header line has a CR that is not followed by LF";
            return -1;
        }
        if (eol == line)
            break; /* the empty line */
        if (is_ows(*line)) {
            *why = "a header line is folded (obs-fold)";
            return -1;
        }
        for (colon = line; colon < eol && *colon != ':'; ++colon) {
            if (!cr_is_tchar((unsigned char)*colon)) {
                *why = "a header name has a character that is not a tchar";
                return -1;
            }
        }
        if (colon == eol || colon == line) {
            *why = colon == line ? "a header line has an empty name" : "a header line has no colon";
            return -1;
        }
        for (v = colon + 1; v < eol; ++v) {
            if (!is_text((unsigned char)*v)) {
                *why = "a header value has a control character (NUL, CR, LF, DEL or another)";
                return -1;
            }
        }
        v = colon + 1;
        ve = eol;
        while (v < ve && is_ows(*v))
            ++v;
        while (ve > v && is_ows(ve[-1]))
            --ve;
        {
            size_t nlen = (size_t)(colon - line);
            if (ieq(line, nlen, "transfer-encoding")) {
                if (each_element(v, ve, on_te_coding, &f) != 0) {
                    *why = "Transfer-Encoding is not exactly chunked";
                    return -1;
                }
                if (f.te_codings == 0) {
                    *why = "Transfer-Encoding is empty";
                    return -1;
                }
            } else if (ieq(line, nlen, "content-length")) {
                int had = f.has_cl;
                if (v == ve || memchr(v, ',', (size_t)(ve - v)) != NULL) {
                    /* a list: every element must be there and the same */
                    const char *q = v;
                    for (;;) {
                        const char *a = q, *b;
                        while (q < ve && *q != ',')
                            ++q;
                        b = q;
                        while (a < b && is_ows(*a))
                            ++a;
                        while (b > a && is_ows(b[-1]))
                            --b;
                        if (a == b || on_cl_value(a, (size_t)(b - a), &cl) != 0) {
                            *why = "Content-Length is not one non-negative decimal number";
                            return -1;
                        }
                        if (q == ve)
                            break;
                        ++q;
                    }
                } else if (on_cl_value(v, (size_t)(ve - v), &cl) != 0) {
                    *why = "Content-Length is not one non-negative decimal number";
                    return -1;
                }
                if (had) {
                    line = eol + 2;
                    continue; /* the same value again: one field is kept */
                }
                f.cl_index = (ssize_t)n;
            } else if (ieq(line, nlen, "connection")) {
                each_element(v, ve, on_connection_token, &f);
            }
            {
                h2o_header_t *h = head->headers + n++;
                char *lower = h2o_mem_alloc_pool(pool, nlen + 1);
                const h2o_token_t *token;
                size_t i;
                for (i = 0; i != nlen; ++i)
                    lower[i] = (line[i] >= 'A' && line[i] <= 'Z') ? line[i] + 32 : line[i];
                lower[nlen] = '\0';
                if ((token = h2o_lookup_token(lower, nlen)) != NULL) {
                    h->name = (h2o_iovec_t *)&token->buf;
                } else {
                    h2o_iovec_t *name = h2o_mem_alloc_pool(pool, sizeof(*name));
                    *name = h2o_iovec_init(lower, nlen);
                    h->name = name;
                }
                h->orig_name = line;
                h->value = h2o_iovec_init(v, (size_t)(ve - v));
            }
        }
        line = eol + 2;
    }
    head->num_headers = n;
    if (f.cl_index >= 0) /* "5, 5" is relayed and stored as "5" */
        head->headers[f.cl_index].value = h2o_iovec_init(cl.first, cl.first_len);

    if (head->status == 101) {
        *why = "101 Switching Protocols to a request that did not ask to upgrade";
        return -1;
    }
    if (f.te_codings != 0 && f.has_cl) {
        *why = "both Content-Length and Transfer-Encoding";
        return -1;
    }
    if (f.te_codings != 0 && head->minor_version == 0) {
        *why = "Transfer-Encoding in an HTTP/1.0 response";
        return -1;
    }
    head->has_content_length = f.has_cl;
    head->keep_alive = !f.conn_close && (head->minor_version >= 1 || f.conn_keep_alive);
    if (is_head_request || head->status < 200 || head->status == 204 || head->status == 304) {
        head->body = CR_H1_BODY_NONE;
    } else if (f.te_codings != 0) {
        head->body = CR_H1_BODY_CHUNKED;
    } else if (f.has_cl) {
        head->body = CR_H1_BODY_LENGTH;
        head->content_length = f.cl;
    } else {
        head->body = CR_H1_BODY_CLOSE;
        head->keep_alive = 0;
    }
    return 0;
}

ssize_t cr_h1_parse_response(cr_h1_parser_t *p, const char *buf, size_t len, int is_head_request, h2o_mem_pool_t *pool,
                             cr_h1_head_t *head, const char **why)
{
    for (;;) {
        ssize_t end = scan(p, buf, len, why);
        if (end <= 0)
            return end < 0 ? -1 : -2;
        /* a complete head, parsed once; an interim one is validated and skipped */
        if (parse_head(buf + p->head_start, buf + end, is_head_request, pool, head, why) != 0)
            return -1;
        if (head->status >= 200)
            return end;
        if (++p->interim > CR_H1_MAX_INTERIM) {
            *why = "too many interim (1xx) responses";
            return -1;
        }
        p->head_start = (size_t)end;
    }
}
