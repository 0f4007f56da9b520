/*
 * purge_api.c: the admin API's purge endpoints: POST /v1/purge (keys, prefixes, tags; soft or hard) and
 * DELETE /v1/cache (everything).
 *
 * Invariants: runs on the admin thread. A purge body is parsed and validated whole (purgejson.h, and every key and
 * prefix checked here) before anything is purged; the purge itself goes through the one invalidation entry point,
 * cr_invalidate (fill/invalidation.h), like write-through's. No locks of its own.
 */
#include <stdio.h>

#include "corral/admin/purgejson.h"
#include "corral/core/log.h"
#include "corral/core/runtime.h"
#include "corral/fill/invalidation.h"
#include "corral/http/http.h"
#include "corral/http/invalidate.h"
#include "corral/http/key.h"
#include "admin_internal.h"

/* POST /v1/purge {"keys": [...], "prefixes": [...], "tags": [...], "soft": false}: validated whole before anything
 * is purged. Keys are paths (a query is ignored: every variant of the path goes). */
void cr_admin_handle_purge(h2o_req_t *req)
{
    cr_purge_request_t pr;
    cr_purge_counts_t counts = {0};
    cr_invalidate_req_t inv = {NULL};
    cr_invalidate_counts_t done;
    cr_str_t *keys, *prefixes, *tags;
    char err[512], *out;
    int rc, n;
    size_t i;

    rc = cr_purge_parse(req->entity.base != NULL ? req->entity.base : "", req->entity.len, &pr, err, sizeof(err));
    if (rc == CR_ERROR) {
        cr_send_json_error(req, 500, "Internal Server Error", "no_memory", err);
        return;
    }
    if (rc != CR_OK) {
        cr_send_json_error(req, 400, "Bad Request", "invalid_purge", err);
        return;
    }
    for (i = 0; i != pr.num_keys; ++i) {
        char path[CR_INVALIDATE_MAX_PATH];
        if ((n = cr_key_normalize_uri_path(cr_str(pr.keys[i], strlen(pr.keys[i])), path, sizeof(path))) < 0) {
            snprintf(err, sizeof(err), "keys[%zu]: not a path (it must start with '/')", i);
            cr_purge_request_free(&pr);
            cr_send_json_error(req, 400, "Bad Request", "invalid_purge", err);
            return;
        }
    }
    for (i = 0; i != pr.num_prefixes; ++i) {
        if (pr.prefixes[i][0] != '/') {
            snprintf(err, sizeof(err), "prefixes[%zu]: not a path prefix (it must start with '/')", i);
            cr_purge_request_free(&pr);
            cr_send_json_error(req, 400, "Bad Request", "invalid_purge", err);
            return;
        }
    }
    keys = h2o_mem_alloc_pool(&req->pool, sizeof(*keys) * (pr.num_keys + 1));
    prefixes = h2o_mem_alloc_pool(&req->pool, sizeof(*prefixes) * (pr.num_prefixes + 1));
    tags = h2o_mem_alloc_pool(&req->pool, sizeof(*tags) * (pr.num_tags + 1));
    for (i = 0; i != pr.num_keys; ++i)
        keys[i] = cr_str(pr.keys[i], strlen(pr.keys[i])); /* every one normalizes (checked above) */
    for (i = 0; i != pr.num_prefixes; ++i)
        prefixes[i] = cr_str(pr.prefixes[i], strlen(pr.prefixes[i]));
    for (i = 0; i != pr.num_tags; ++i)
        tags[i] = cr_str(pr.tags[i], strlen(pr.tags[i]));
    inv.uris = keys;
    inv.num_uris = pr.num_keys;
    inv.prefixes = prefixes;
    inv.num_prefixes = pr.num_prefixes;
    inv.tags = tags;
    inv.num_tags = pr.num_tags;
    inv.soft = pr.soft;
    cr_invalidate(cr_rt.store, &inv, &done);
    CR_STAT_INC(cr_thread_of(req)->stats, purges);
    CR_STAT_ADD(cr_thread_of(req)->stats, purged_objects, done.objects);
    counts.keys = done.uris;
    counts.prefixes = done.prefixes;
    counts.tags = done.tags;
    counts.objects = done.objects;

    out = h2o_mem_alloc_pool(&req->pool, 512);
    n = cr_purge_result_json(&counts, pr.soft, out, 511);
    cr_log_info("admin purge: %zu keys, %zu prefixes, %zu tags, %s: %zu objects", counts.keys, counts.prefixes, counts.tags,
                pr.soft ? "soft" : "hard", counts.objects);
    cr_purge_request_free(&pr);
    assert(n > 0);
    out[n++] = '\n';
    cr_admin_send_json(req, 200, "OK", out, (size_t)n);
}

/* DELETE /v1/cache: everything, hard. Answered in POST /v1/purge's shape (no keys, prefixes or tags; the objects). */
void cr_admin_handle_clear(h2o_req_t *req)
{
    cr_invalidate_req_t inv = {NULL};
    cr_purge_counts_t counts = {0};
    char *out = h2o_mem_alloc_pool(&req->pool, 512);
    int n;
    inv.everything = 1;
    counts.objects = cr_invalidate(cr_rt.store, &inv, NULL);
    CR_STAT_INC(cr_thread_of(req)->stats, purges);
    CR_STAT_ADD(cr_thread_of(req)->stats, purged_objects, counts.objects);
    n = cr_purge_result_json(&counts, 0, out, 511);
    cr_log_info("admin purge: everything: %zu objects", counts.objects);
    assert(n > 0);
    out[n++] = '\n';
    cr_admin_send_json(req, 200, "OK", out, (size_t)n);
}
