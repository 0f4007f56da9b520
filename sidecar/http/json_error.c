/*
 * json_error.c: cr_send_json_error (see json_error.h).
 *
 * Invariants: everything is allocated in the request's pool; the generator is a shared constant (the whole body
 * is sent at once, so it has no callbacks). No locks; no global state beyond that constant.
 */
#include "corral/http/json_error.h"

#include <stdio.h>
#include <string.h>

void cr_send_json_error(h2o_req_t *req, int status, const char *reason, const char *code, const char *msg)
{
    static h2o_generator_t generator = {NULL, NULL};
    size_t cap = strlen(code) + strlen(msg) * 2 + 64, i;
    char *body = h2o_mem_alloc_pool(&req->pool, cap), *p = body;
    h2o_iovec_t buf;

    p += sprintf(p, "{\"error\":\"%s\",\"message\":\"", code);
    for (i = 0; msg[i] != '\0'; ++i) {
        if (msg[i] == '"' || msg[i] == '\\')
            *p++ = '\\';
        *p++ = (unsigned char)msg[i] < 0x20 ? ' ' : msg[i];
    }
    p += sprintf(p, "\"}\n");
    buf = h2o_iovec_init(body, p - body);
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = buf.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}
