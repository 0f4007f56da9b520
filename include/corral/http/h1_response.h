/*
 * h1_response.h: a strict parser and validator for HTTP/1.1 response heads from the upstream (RFC 9112), and the
 * body framing they announce (RFC 9112 §6.3). Pure: no socket, no global state; the upstream client (upstream.c)
 * feeds it the bytes it has read.
 *
 * What is malformed (the whole response is rejected, the connection must be closed):
 *   - a status line other than `HTTP/1.<digit> SP 3DIGIT SP reason CRLF`; a status outside 100..599; a 101 (corral
 *     never asks to upgrade); a reason with control characters (HTAB, SP, VCHAR and obs-text only);
 *   - any line ending other than CRLF (a bare LF, a CR not followed by LF); a line that starts with SP or HTAB
 *     (obs-fold); a field name that is not 1*tchar directly followed by ":"; a field value with NUL, CR, LF, DEL or
 *     another control character (HTAB excepted);
 *   - Transfer-Encoding other than exactly one coding `chunked` (case-insensitive) over all its lines; Transfer-
 *     Encoding in an HTTP/1.0 response; Content-Length that is not 1*DIGIT (at most 18 digits), or, repeated over
 *     several lines or as a comma list, not the same value everywhere; both Content-Length and Transfer-Encoding;
 *   - more than CR_H1_MAX_INTERIM interim (1xx) responses before the final one; a head (all of them together,
 *     interim ones included) longer than the limit given to cr_h1_parser_init.
 * Interim responses (1xx but 101) are skipped. The parser keeps where it stopped searching for the end of the head,
 * so bytes that arrive one by one are each looked at once (no re-scan from the start on every read).
 */
#ifndef CORRAL_H1_RESPONSE_H
#define CORRAL_H1_RESPONSE_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#define CR_H1_MAX_INTERIM 16
#define CR_H1_MAX_CONTENT_LENGTH_DIGITS 18

typedef enum en_cr_h1_body_t {
    CR_H1_BODY_NONE = 0, /* HEAD request, 204, 304: the response ends with its head */
    CR_H1_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
    CR_H1_BODY_LENGTH,   /* Content-Length */
    CR_H1_BODY_CLOSE,    /* neither: the body ends with the connection (a clean FIN) */
} cr_h1_body_t;

/* Where a parse stopped; zeroed by cr_h1_parser_init, private to h1_response.c. */
typedef struct st_cr_h1_parser_t {
    size_t max_head;   /* limit on the head's bytes, interim responses included */
    size_t head_start; /* offset of the head being looked for (after the interim ones skipped) */
    size_t line_start; /* offset of the line being scanned */
    size_t scanned;    /* bytes already scanned for line ends */
    unsigned interim;  /* interim responses skipped */
} cr_h1_parser_t;

typedef struct st_cr_h1_head_t {
    int minor_version;
    int status;
    h2o_iovec_t reason;
    h2o_header_t *headers; /* lower-case names (h2o tokens where there is one); one Content-Length at most, canonical */
    size_t num_headers;
    cr_h1_body_t body;
    uint64_t content_length; /* CR_H1_BODY_LENGTH: the body's size; otherwise 0 */
    int has_content_length;  /* a Content-Length field was present (also on HEAD, 204 and 304 answers) */
    int keep_alive;          /* the head allows reusing the connection (HTTP/1.1 without close, or 1.0 with keep-alive) */
} cr_h1_head_t;

/* Starts a parse of a new response. max_head: the head size limit in bytes (> 0). */
void cr_h1_parser_init(cr_h1_parser_t *p, size_t max_head);

/*
 * Parses the response at buf[0..len): call again with the same buffer grown (its start never moves between calls)
 * until it returns something else than -2. is_head_request: the request was HEAD (no body follows any status).
 * Returns:
 *   > 0  the final head is complete and valid: that many bytes (interim responses included) are the head; *head is
 *        filled, its strings point into buf (which must stay until they are used) and into pool;
 *   -2   incomplete;
 *   -1   malformed: *why says what (a static string, no newline).
 */
ssize_t cr_h1_parse_response(cr_h1_parser_t *p, const char *buf, size_t len, int is_head_request, h2o_mem_pool_t *pool,
                             cr_h1_head_t *head, const char **why);

#endif
