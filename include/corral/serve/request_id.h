/*
 * request_id.h: the request id (X-Request-Id). A client's id is kept when it is valid (1..CR_REQUEST_ID_MAX bytes of
 * token characters: RFC 9110 tchar plus '/', '=', ':' and '@', enough for UUIDs, base64 and trace ids); otherwise
 * (absent, empty, too long, another byte, sent on more than one line) the request gets a generated one in its place.
 * The id is set in the request's headers, so every upstream request made for it (a pass, a fill it leads) carries
 * it; the access log records it. It is not echoed to the client (as nginx and Envoy by default).
 *
 * Generated ids are 32 lower-case hex digits: a random 64-bit prefix drawn once per process, the thread index (16
 * bits) and a per-thread counter (48 bits): unique within a process, and across processes but for a 2^-64 chance.
 */
#ifndef CORRAL_REQUEST_ID_H
#define CORRAL_REQUEST_ID_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#define CR_REQUEST_ID_MAX 128
#define CR_REQUEST_ID_GEN_LEN 32

/* Is s[0..len) a request id corral keeps? Pure. */
int cr_request_id_valid(const char *s, size_t len);
/* Writes the generated id for (prefix, thread, counter) into out (CR_REQUEST_ID_GEN_LEN bytes, no NUL). Pure. */
void cr_request_id_format(char *out, uint64_t prefix, unsigned thread, uint64_t counter);
/* Validates or generates the request's id, on its thread (a per-thread counter; no lock); returns it (in the request's
 * headers or pool, valid as long as the request). A kept id, or one generated in place of invalid ones, is in the
 * headers already; when the request had no X-Request-Id, *to_add is set to 1 and the caller adds it with
 * cr_request_id_add (after its own header checks, which need not read corral's own value). *to_add is left alone
 * otherwise. */
h2o_iovec_t cr_request_id_take(h2o_req_t *req, unsigned thread, int *to_add);
void cr_request_id_add(h2o_req_t *req, h2o_iovec_t id);

#endif
