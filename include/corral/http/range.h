/*
 * range.h: byte ranges (RFC 9110 14) as pure functions (range.c): the Range field parsed against a body length,
 * If-Range evaluated, and the framing text of a multipart/byteranges body (14.6).
 *
 * Nothing here allocates, locks or reads the clock; inputs are borrowed strings never read past their length.
 * Every range handed out lies within the body it was parsed against (first <= last < length).
 */
#ifndef CORRAL_RANGE_H
#define CORRAL_RANGE_H

#include "corral/core/common.h"

/* At most this many ranges per request: more and the Range field is ignored (the whole 200). */
#define CR_RANGE_MAX_PARTS 16

/* One satisfiable range of a body, inclusive: first <= last < the body's length. */
typedef struct st_cr_byte_range_t {
    uint64_t first, last;
} cr_byte_range_t;

typedef enum en_cr_range_verdict_t {
    CR_RANGE_WHOLE,         /* ignore Range (RFC 9110 14.2 allows it): malformed, not "bytes", more than `max`
                               ranges, ranges adding up past the body's length, or an empty body */
    CR_RANGE_PARTIAL,       /* 206: the satisfiable ranges, in the order asked (unsatisfiable ones dropped) */
    CR_RANGE_UNSATISFIABLE, /* 416: well formed, but no range overlaps the body */
} cr_range_verdict_t;

/*
 * Parses a Range field value (`bytes=0-4`, `bytes=5-`, `bytes=-5`, `bytes=0-0, 10-20`; the unit is
 * case-insensitive, OWS around commas and empty list members are allowed) against a body of `len` bytes. On
 * CR_RANGE_PARTIAL, out[0..*n) (1 <= *n <= max) hold the ranges; otherwise *n is 0. Numbers of any length are read
 * with overflow checks (a position past 2^64 is just very large). A last-pos below its first-pos, a suffix or
 * position without digits, or anything after the numbers makes the whole field malformed: CR_RANGE_WHOLE.
 * `max` must be between 1 and CR_RANGE_MAX_PARTS.
 */
cr_range_verdict_t cr_range_parse(cr_str_t value, uint64_t len, cr_byte_range_t *out, size_t max, size_t *n);

/*
 * Does the If-Range condition `cond` hold for the representation (RFC 9110 13.1.5)? An entity-tag (it starts with
 * `"` or `W/`) holds when it is strong and equals `etag` (strong comparison: neither weak, byte for byte). Otherwise
 * it is an HTTP-date, which holds when `last_modified` is a strong validator (the response's `date_ms` at least one
 * second after it; 0: unknown, never strong) and the two name exactly the same second. `etag` and `last_modified`
 * may be {NULL, 0} (absent): the condition then does not hold.
 */
int cr_if_range_holds(cr_str_t cond, cr_str_t etag, cr_str_t last_modified, uint64_t date_ms);

/* A multipart boundary of CR_RANGE_BOUNDARY_LEN letters and digits from `seed` (any 64-bit value: the caller mixes a
 * counter, the clock, an address), written into buf (not NUL-terminated). */
#define CR_RANGE_BOUNDARY_LEN 24
void cr_range_boundary(char *buf, uint64_t seed);

/* The bytes cr_range_part_head writes at most, beside the boundary and the content type. */
#define CR_RANGE_PART_HEAD_FIXED 128

/*
 * The delimiter and header of one part of a multipart/byteranges body, into buf (at least
 * CR_RANGE_PART_HEAD_FIXED + boundary.len + ctype.len bytes): "\r\n--B\r\nContent-Type: T\r\nContent-Range: bytes
 * F-L/LEN\r\n\r\n" (no Content-Type line when ctype is empty). Returns the length written.
 */
size_t cr_range_part_head(char *buf, cr_str_t boundary, cr_str_t ctype, const cr_byte_range_t *r, uint64_t len);
/* The closing delimiter "\r\n--B--\r\n" into buf (boundary.len + 8 bytes). Returns its length. */
size_t cr_range_multipart_tail(char *buf, cr_str_t boundary);

/* A Content-Range value into buf (at least 64 bytes): "bytes F-L/LEN" for one part, or (r == NULL, for a 416) the
 * unsatisfied form: "bytes ", a star, a slash and LEN. Returns the length. */
size_t cr_range_content_range(char *buf, const cr_byte_range_t *r, uint64_t len);

#endif
