/*
 * lifecycle.c: the admin endpoints of the process's life cycle: GET /readyz (readiness, fill/health.h) and POST
 * /v1/reload (the configuration reload, conf/reload.h).
 *
 * /readyz: 200 {"ready":true} or 503 {"ready":false,"reason":"draining"|"starting"|"upstream_unhealthy","detail":..}.
 * /v1/reload: 200 {"reloaded":true,"detail":"generation N, M routes"}; a file that does not load or check is 422
 * invalid_config with its "file:line:col: message"; a restart-only change is 422 restart_required naming the key;
 * one the server could not apply (an added listener's address in use) is 409 reload_failed.
 * The request body is never read (whatever it holds changes nothing). The reload reads the file on the admin thread
 * (a few milliseconds; never on a traffic worker) and waits for a concurrent SIGHUP reload to finish.
 *
 * Invariants: on the admin thread, for a request admin.c has routed (and, for /v1/reload, authorized). No locks of
 * its own.
 */
#include <stdio.h>

#include "corral/conf/reload.h"
#include "corral/fill/health.h"
#include "corral/http/json_error.h"
#include "admin_internal.h"

void cr_admin_handle_readyz(h2o_req_t *req)
{
    const char *reason;
    char detail[256];
    json_t *v;

    if (cr_health_ready(&reason, detail, sizeof(detail))) {
        cr_admin_send_json_value(req, 200, "OK", json_pack("{s:b}", "ready", 1));
        return;
    }
    v = json_pack("{s:b,s:s,s:s}", "ready", 0, "reason", reason, "detail", detail);
    cr_admin_send_json_value(req, 503, "Service Unavailable", v);
}

void cr_admin_handle_reload(h2o_req_t *req)
{
    char msg[1024];

    switch (cr_config_reload("POST /v1/reload", msg, sizeof(msg))) {
    case CR_RELOAD_OK:
        cr_admin_send_json_value(req, 200, "OK", json_pack("{s:b,s:s}", "reloaded", 1, "detail", msg));
        break;
    case CR_RELOAD_INVALID:
        cr_send_json_error(req, 422, "Unprocessable Entity", "invalid_config", msg);
        break;
    case CR_RELOAD_REFUSED:
        cr_send_json_error(req, 422, "Unprocessable Entity", "restart_required", msg);
        break;
    case CR_RELOAD_FAILED:
        cr_send_json_error(req, 409, "Conflict", "reload_failed", msg);
        break;
    }
}
