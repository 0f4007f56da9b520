/*
 * date_send.c: the origin's Date on responses answered from the cache (date_send.h).
 *
 * libh2o 2.2.5 writes its own Date into every response head, whatever req->res.headers hold: HTTP/1.1 in
 * lib/http1.c flatten_headers ("Date: %s" from ts.str->rfc1123), HTTP/2 in lib/http2/hpack.c
 * h2o_hpack_flatten_response (a Date header from the same string, H2O_TIMESTR_RFC1123_LEN bytes). Both take the
 * string from h2o_get_timestamp(), an inline function of h2o.h that returns ctx->_timestamp_cache.value unless the
 * loop's clock (h2o_now) moved since the cache was filled. Both write the head synchronously inside the first
 * h2o_send of the request (http1.c finalostream_send, http2/stream.c finalostream_send -> send_headers), and the
 * loop's clock only moves in the event loop itself (evloop.c update_now), never inside h2o_send. So this file:
 *   1. refreshes the cache first (h2o_get_timestamp with no output), so that no refresh can happen inside h2o_send
 *      (a refresh would release the value installed here as if it were the context's);
 *   2. installs a timestamp string of its own holding the origin's Date: a shared-refcounted entry as libh2o expects
 *      (the head's writer links one more reference to the request's pool), laid out in the request's pool (below);
 *   3. calls h2o_send and puts the context's value back.
 * The swap is visible to nothing else: one thread owns the context and nothing else runs during the call.
 * Invariants: the Date given is exactly CR_DATE_LEN bytes (HTTP/2 copies that many); anything else is ignored.
 * Relies on libh2o 2.2.5's struct h2o_context_t (the package corral builds against; see DESIGN.md).
 */
#include "corral/http/date_send.h"

#include <stddef.h>
#include <string.h>

_Static_assert(CR_DATE_LEN == H2O_TIMESTR_RFC1123_LEN, "libh2o's Date length");

void cr_send_dated(h2o_req_t *req, h2o_iovec_t date, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    h2o_context_t *ctx = req->conn->ctx;
    struct st_h2o_mem_pool_shared_entry_t *entry;
    h2o_timestamp_string_t *mine, *saved;

    if (date.base == NULL || date.len != CR_DATE_LEN) {
        h2o_send(req, bufs, bufcnt, state);
        return;
    }
    (void)h2o_get_timestamp(ctx, NULL, NULL); /* 1. */
    /* a shared entry (h2o_mem_link_shared's kind) placed in the request's pool instead of malloc'ed: it holds one
     * reference nobody releases, so the head writer's link (released when the pool is cleared, before its chunks are
     * freed) never brings it to 0 and it is never free()d; it goes with the pool. No malloc per hit. */
    entry = h2o_mem_alloc_pool(&req->pool, offsetof(struct st_h2o_mem_pool_shared_entry_t, bytes) + sizeof(*mine));
    entry->refcnt = 1;
    entry->dispose = NULL;
    mine = (h2o_timestamp_string_t *)(void *)entry->bytes;
    memcpy(mine->rfc1123, date.base, CR_DATE_LEN);
    mine->rfc1123[CR_DATE_LEN] = '\0';
    memcpy(mine->log, ctx->_timestamp_cache.value->log, sizeof(mine->log)); /* logs keep the time of the response */
    saved = ctx->_timestamp_cache.value;
    ctx->_timestamp_cache.value = mine; /* 2. */
    h2o_send(req, bufs, bufcnt, state);
    ctx->_timestamp_cache.value = saved; /* 3. */
}
