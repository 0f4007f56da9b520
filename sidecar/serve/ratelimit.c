/*
 * ratelimit.c: a request against its route's `rate_limit` (ratelimit.h): the bucket's key, the interval and burst
 * (a pod's share for scope: cluster), and the 429 answer with its headers.
 *
 * Keys: a per-process random seed mixed with the route name's hash (made at load) and the `by` kind, continued with
 * FNV-1a over the value (the client's address bytes, or the header's value; a request without the header shares
 * the route's "no value" bucket), then a 64-bit finalizer. Neither the value nor its hash is stored whole, logged or sent.
 * scope: cluster: the fleet-wide count (tier/ratelimit_tier.h), with a hash every pod computes alike (no per-process
 * seed: the memcached key holds hash bits only, never the value); when it cannot be used, this pod's share (rate /
 * pods, burst / pods, at least 1: the interval and tau made at load) in the pod-scope table.
 * Invariants: on the request's thread; reads only the route (held by the request) and the shared table.
 */
#include "corral/serve/ratelimit.h"

#include <stdio.h>
#include <sys/random.h>

#include "corral/core/common.h"
#include "corral/core/log.h"
#include "corral/core/reqstats.h"
#include "corral/http/http.h"
#include "corral/http/json_error.h"
#include "corral/core/runtime.h"
#include "corral/tier/ratelimit_tier.h"

static uint64_t process_seed;

__attribute__((constructor)) static void init_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
        s = (uint64_t)(uintptr_t)&s ^ cr_now_ms();
    process_seed = s | 1;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

#define CLUSTER_SEED 0x636f7272616c726cull /* "corralrl" */

static uint64_t bucket_hash(h2o_req_t *req, const cr_ratelimit_config_t *rl, uint64_t seed)
{
    uint64_t h = (seed ^ rl->name_hash) + (uint64_t)rl->by;

    if (rl->by == CR_RL_BY_CLIENT && req->conn->callbacks->get_peername != NULL) {
        struct sockaddr_storage ss;
        socklen_t len = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
        if (len != 0 && ss.ss_family == AF_INET)
            h = cr_hash_more(h, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        else if (len != 0 && ss.ss_family == AF_INET6)
            h = cr_hash_more(h, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    } else if (rl->by == CR_RL_BY_HEADER) {
        h2o_iovec_t v = cr_req_header_by_name(req, rl->header, rl->header_len);
        if (v.base != NULL)
            h = cr_hash_more(h ^ 0x9e3779b97f4a7c15ull, v.base, v.len);
    }
    return mix(h);
}

int cr_ratelimit_take(h2o_req_t *req, const cr_route_config_t *route, cr_rl_verdict_t *v)
{
    const cr_ratelimit_config_t *rl = &route->rate_limit;
    uint64_t now_ms = h2o_now(req->conn->ctx->loop);

    if (rl->cluster) {
        /* every pod must name the same bucket: the key's hash is not seeded per process here */
        uint64_t remaining, retry_ms;
        int rc = cr_rl_cluster_take(cr_thread_of(req), rl, bucket_hash(req, rl, CLUSTER_SEED), now_ms, &remaining, &retry_ms);
        if (rc >= 0) {
            v->remaining = remaining;
            v->reset_us = v->retry_us = retry_ms * 1000;
            return rc;
        }
    }
    return cr_rl_table_take(cr_rl_table_process(), bucket_hash(req, rl, process_seed), now_ms * 1000, rl->interval_us, rl->tau_us, v);
}

static uint64_t ceil_s(uint64_t us)
{
    return (us + 999999) / 1000000;
}

void cr_ratelimit_reject(h2o_req_t *req, const cr_route_config_t *route, const cr_rl_verdict_t *v)
{
    const cr_ratelimit_config_t *rl = &route->rate_limit;
    uint64_t retry = ceil_s(v->retry_us);
    char *buf = h2o_mem_alloc_pool(&req->pool, 160);
    int n;

    if (retry == 0)
        retry = 1;
    n = snprintf(buf, 24, "%llu", (unsigned long long)retry);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, buf, (size_t)n);
    buf += n + 1;
    n = snprintf(buf, 72, "\"default\";q=%llu;w=%llu", (unsigned long long)rl->rate, (unsigned long long)(rl->window_ms / 1000));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit-policy"), 0, NULL, buf, (size_t)n);
    buf += n + 1;
    n = snprintf(buf, 48, "\"default\";r=0;t=%llu", (unsigned long long)retry);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit"), 0, NULL, buf, (size_t)n);
    cr_reqstats_rate_limited(route->stat_slot);
    cr_send_json_error(req, 429, "Too Many Requests", "rate_limited", "over the route's rate limit; retry after Retry-After seconds");
}
