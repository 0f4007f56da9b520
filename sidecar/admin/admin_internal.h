/*
 * admin_internal.h: what the admin API's files share (private to sidecar/admin/): the reply helpers (admin.c) and
 * the endpoint handlers (metrics.h for /metrics, purge_api.c, inspect.c) that admin.c routes to.
 *
 * Invariants: everything here runs on the admin thread, for a request that admin.c has already authorized and whose
 * body is within limits.admin_body.
 */
#ifndef CORRAL_ADMIN_INTERNAL_H
#define CORRAL_ADMIN_INTERNAL_H

#include <h2o.h>
#include <jansson.h>

/* 200 with this body and Content-Type, Cache-Control: no-store. body must live as long as the request. */
void cr_admin_send_text(h2o_req_t *req, const char *ctype, char *body, size_t len);
/* status with an application/json body (no-store). body must live as long as the request. */
void cr_admin_send_json(h2o_req_t *req, int status, const char *reason, char *body, size_t len);
/* status with v written compactly plus a newline; takes v's reference (500 when memory runs out). */
void cr_admin_send_json_value(h2o_req_t *req, int status, const char *reason, json_t *v);

/* POST /v1/purge (purge_api.c). */
void cr_admin_handle_purge(h2o_req_t *req);
/* DELETE /v1/cache (purge_api.c). */
void cr_admin_handle_clear(h2o_req_t *req);
/* GET /v1/cache?key= (inspect.c). */
void cr_admin_handle_inspect(h2o_req_t *req);
/* GET /readyz (lifecycle.c): no authorization, like /healthz (probes carry no token). */
void cr_admin_handle_readyz(h2o_req_t *req);
/* POST /v1/reload (lifecycle.c). */
void cr_admin_handle_reload(h2o_req_t *req);

#endif
