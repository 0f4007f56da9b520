/*
 * purge.c: the PURGE method on the traffic port (purge.h).
 *
 * Invariants: runs on the request's worker; reads the request's config generation only; the purge itself goes through
 * cr_invalidate (any thread, no lock of its own). The method check is one integer and a memcmp, so the hit path pays
 * nothing when the list is empty.
 */
#include "corral/serve/purge.h"

#include <stdio.h>

#include "corral/core/cidr.h"
#include "corral/core/log.h"
#include "corral/core/runtime.h"
#include "corral/fill/invalidation.h"
#include "corral/http/json_error.h"

int cr_purge_method_try(h2o_req_t *req, const cr_config_t *cfg)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    cr_invalidate_req_t inv = {NULL};
    cr_invalidate_counts_t counts;
    cr_str_t uri;
    char *out;
    int n;

    if (cfg->cache.num_purge_from == 0 || !h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("PURGE")))
        return 0;
    memset(&ss, 0, sizeof(ss));
    sslen = req->conn->callbacks->get_peername != NULL ? req->conn->callbacks->get_peername(req->conn, (void *)&ss) : 0;
    if (sslen == 0 || !cr_cidr_list_contains(cfg->cache.purge_from, cfg->cache.num_purge_from, (struct sockaddr *)&ss)) {
        cr_send_json_error(req, 403, "Forbidden", "forbidden", "PURGE is not allowed from this address (cache.purge_from)");
        return 1;
    }
    if (req->input.path.len == 0 || req->input.path.base[0] != '/') {
        cr_send_json_error(req, 400, "Bad Request", "bad_request", "PURGE needs a path");
        return 1;
    }
    uri = cr_str(req->input.path.base, req->input.path.len);
    inv.uris = &uri;
    inv.num_uris = 1;
    cr_invalidate(cr_rt.store, &inv, &counts);
    cr_log_info("PURGE %.*s: %zu objects", (int)CR_MIN(req->input.path.len, 200), req->input.path.base, counts.objects);
    out = h2o_mem_alloc_pool(&req->pool, 256);
    if ((n = cr_invalidate_result_json(&counts, 0, out, 255)) < 0) {
        cr_send_json_error(req, 500, "Internal Server Error", "internal_error", "could not write the answer");
        return 1;
    }
    out[n++] = '\n';
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, out, (size_t)n);
    return 1;
}
