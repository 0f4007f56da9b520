/*
 * json_error.h: corral's own error responses, a short JSON body (json_error.c).
 *
 * Used by every layer that answers a client itself (request checks, handler, pass, admin). Needs only h2o.
 */
#ifndef CORRAL_JSON_ERROR_H
#define CORRAL_JSON_ERROR_H

#include <h2o.h>

/* Sends a short JSON error ({"error": code, "message": msg}) with the given status, Cache-Control: no-store, and no
 * body to a HEAD. The body is built in the request's pool; control characters of msg become spaces. */
void cr_send_json_error(h2o_req_t *req, int status, const char *reason, const char *code, const char *msg);

#endif
