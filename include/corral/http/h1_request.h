/*
 * h1_request.h: strict HTTP/1.1 message-head parsers (RFC 9112) with picohttpparser's calling contract, so that
 * h1_interpose.c can put them in place of the lenient parser bundled in libh2o, and the syntax predicates that the
 * request checks (reqcheck.h) share with them.
 *
 * Return values, as picohttpparser's: > 0 the head is complete and is that many bytes long; -2 incomplete (call
 * again with more bytes, the same start and last_len = the previous len); -1 malformed: the head must be answered
 * with 400 and the connection closed. On -1, *error says why (a static
 * string). `last_len` (the length given to the previous call, 0 at first) lets a call that adds no end-of-head
 * return -2 without re-parsing, as picohttpparser does against slowloris; bytes before last_len were already checked.
 *
 * What is malformed (everything picohttpparser accepts beyond the grammar):
 *   - any line ending but CRLF (a bare LF or CR), obs-fold (a field line starting with SP/HTAB), whitespace between a
 *     field name and its colon, a field name that is not a token, a field value with a control character other than
 *     HTAB (NUL, CR, LF, DEL included);
 *   - request line: method not a token, not exactly one SP between its parts, a version other than HTTP/1.0 or
 *     HTTP/1.1, a request-target with a control, SP, DEL, '#' or a byte >= 0x80, a broken %-escape in its path
 *     (the query is passed on as it is); the printable characters RFC 3986 leaves out but browsers send unescaped
 *     ('[', ']', '{', '}', '|', '^', '`', '\\', as in "?page[size]=10") are accepted, as nginx and Varnish do;
 *     a target that is not origin-form ("/..."), except
 *     "*" for OPTIONS and authority-form for CONNECT. absolute-form ("http://h/p") is refused: corral is a sidecar
 *     that is never addressed as a proxy (RFC 9112 3.2.2 would have a server accept it);
 *   - request framing: a Host line missing in HTTP/1.1, more than one Host line, a Host value that is not
 *     host[:port]; Content-Length that is not 1*DIGIT (or a list of them) or has differing values (identical repeats
 *     are accepted, RFC 9112 6.3: a list such as "5, 5" is reported to the caller as its first member); more than one
 *     Transfer-Encoding line or one that is not exactly "chunked" (case-insensitive); Transfer-Encoding together with
 *     Content-Length; Transfer-Encoding in an HTTP/1.0 request;
 *   - more fields than *num_fields (the caller's array size), or a head longer than INT_MAX.
 * A single empty line (CRLF) before a request line is skipped, as RFC 9112 2.2 recommends.
 *
 * Pure functions: no allocation, no global state, thread-safe. The field array points into buf.
 */
#ifndef CORRAL_H1_REQUEST_H
#define CORRAL_H1_REQUEST_H

#include <stddef.h>

/* One field line; the layout of picohttpparser's struct phr_header (h1_interpose.c asserts it). */
typedef struct st_cr_h1_field_t {
    const char *name;
    size_t name_len;
    const char *value; /* without leading and trailing whitespace */
    size_t value_len;
} cr_h1_field_t;

typedef struct st_cr_h1_request_t {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor_version; /* 0 or 1 */
} cr_h1_request_t;

/* Parses a request head. fields holds *num_fields entries; on success *num_fields is the number used. */
int cr_h1_parse_request(const char *buf, size_t len, cr_h1_request_t *req, cr_h1_field_t *fields, size_t *num_fields,
                        size_t last_len, const char **error);


/* Parses a field section alone (trailers, CGI heads) up to and including its empty line. */
int cr_h1_parse_fields(const char *buf, size_t len, cr_h1_field_t *fields, size_t *num_fields, size_t last_len,
                       const char **error);

/* ---- syntax predicates (1 yes, 0 no) ---- */

/* token = 1*tchar (RFC 9110 5.6.2) */
int cr_h1_is_token(const char *s, size_t len);
/* a field value: no control character but HTAB (obs-text allowed) */
int cr_h1_is_field_value(const char *s, size_t len);
/* origin-form: "/" then printable ASCII but '#' (no SP, controls, DEL, bytes >= 0x80), %-escapes valid in the path */
int cr_h1_is_origin_form(const char *s, size_t len);
/* uri-host [":" port] (RFC 9110 7.2); no userinfo, no path, no whitespace; not empty */
int cr_h1_is_authority(const char *s, size_t len);

#endif
