/*
 * pass.h: streaming a request to the upstream and its response back, uncached.
 *
 * The response body streams with backpressure (reading from the upstream pauses while more than a high-water
 * mark waits for the client). h2o 2.2.5 hands handlers the request body already read whole (req->entity, bounded
 * by h2o's max_request_entity_size), so request bodies are forwarded from that buffer.
 * Everything lives in the request's pool; the upstream fetch is cancelled if the client goes away.
 */
#ifndef CORRAL_PASS_H
#define CORRAL_PASS_H

#include <h2o.h>
#include "corral/core/common.h"
#include "corral/conf/config.h"

/* Called with the upstream response head of a pass (status and headers valid during the call); `cfg` is the pass's
 * config generation (held by the pass). */
typedef void (*cr_pass_head_cb)(h2o_req_t *req, const cr_config_t *cfg, int status, const h2o_header_t *headers,
                                size_t num_headers);

/*
 * Starts a pass with the request's config generation `cfg` (limits.response_buffer, the surrogate-key header). `route` (may be NULL) is the matched route: on an uncached route with compress on, responses are
 * compressed on the fly for clients that accept it. `cache_status` (may be {NULL,0}) is added as the Cache-Status
 * header. `on_head` (may be NULL) is told of the upstream's answer before it is relayed (write-through uses it).
 */
void cr_pass_start(h2o_req_t *req, const cr_config_t *cfg, const cr_route_config_t *route, h2o_iovec_t cache_status,
                   cr_pass_head_cb on_head);

/* Copies an upstream response header to the client response unless it is hop-by-hop or one corral sets itself
 * (content-length, date, server), or the surrogate-key header of `cfg` unless it keeps it. Values are duplicated into
 * the request's pool. */
void cr_relay_response_header(h2o_req_t *req, const cr_config_t *cfg, const h2o_header_t *h, h2o_iovec_t connection);

/* 503 with Retry-After and the JSON error body: a fill or pass that was not sent (shed, upstream down, queue full).
 * Retry-After is whole seconds, 1 to 3600: for code "upstream_down" the least time until the upstream may be asked
 * again (cr_health_retry_after_ms, rounded up), else 1 (a shed or a full queue clears as requests finish). */
void cr_send_unavailable(h2o_req_t *req, const char *code, const char *msg);

#endif
