/*
 * mc.h: the memcached client of the shared tier (mc.c): libmemcached behind blocking calls with tight timeouts, one
 * circuit breaker per server (breaker.h), keys spread with ketama consistent hashing.
 *
 * Where it runs: NEVER on an event loop. Its callers are the worker pool's threads (core/workq.h: the L2 lookups,
 * stores and leases of fill/l2fill.c) and the tier's own invalidation thread (tier/inval_sync.c). Every call blocks
 * for at most about two timeouts (tier.memcached.timeout, 20 ms by default, for connect and for each poll).
 *
 * Invariants:
 *  - a key is hashed to one server (ketama, libketama-compatible: MD5 points weighted alike), and a server whose
 *    breaker is open is skipped, not replaced: its keys are misses (CR_TIER_SKIPPED) until it is back, so a flapping
 *    server never moves keys around the ring;
 *  - every call that reached a server reports to its breaker exactly once: an answer (found, not found, not stored,
 *    exists) is a success, anything else (timeout, refused, reset, a protocol error) a failure; a state change is
 *    logged once and counted (cr_mc_breaker_changes);
 *  - values are bounded: a get whose value is over max_value_bytes is a failure of that call (never kept).
 * Locking: a libmemcached handle is used by one thread at a time: each call takes one from the client's idle list
 * (one mutex) and gives it back; the breakers have their own mutexes. Counters are atomics.
 */
#ifndef CORRAL_TIER_MC_H
#define CORRAL_TIER_MC_H

#include <stddef.h>
#include <stdint.h>

#include "corral/core/histogram.h"
#include "corral/tier/breaker.h"

typedef enum en_cr_mc_result_t {
    CR_MC_OK = 0,   /* found, stored, deleted, incremented */
    CR_MC_MISS,     /* not found (get, delete, incr), not stored (add: the key exists) */
    CR_MC_SKIPPED,  /* the key's server has its breaker open: nothing was sent */
    CR_MC_FAILED,   /* timeout, connection failure, protocol error, out of memory */
} cr_mc_result_t;

typedef struct st_cr_mc_conf_t {
    const char *const *servers; /* "host:port" */
    size_t num_servers;
    uint64_t timeout_ms;        /* connect and poll; 0: 20 */
    size_t max_value_bytes;     /* the largest value read or written; 0: 1 MiB */
    unsigned handles;           /* idle libmemcached handles kept (one per thread that calls at once); 0: 4 */
    cr_breaker_conf_t breaker;
} cr_mc_conf_t;

typedef struct st_cr_mc_t cr_mc_t;

/* NULL (with a logged reason) when a server string cannot be used or memory is short. Connects lazily. */
cr_mc_t *cr_mc_new(const cr_mc_conf_t *conf);
void cr_mc_free(cr_mc_t **mc);

/* *val is malloc'ed (the caller frees it) on CR_MC_OK only. */
cr_mc_result_t cr_mc_get(cr_mc_t *mc, const char *key, size_t keylen, char **val, size_t *vallen);
cr_mc_result_t cr_mc_set(cr_mc_t *mc, const char *key, size_t keylen, const char *val, size_t vallen, uint32_t exptime_s);
/* CR_MC_MISS: the key exists already. */
cr_mc_result_t cr_mc_add(cr_mc_t *mc, const char *key, size_t keylen, const char *val, size_t vallen, uint32_t exptime_s);
cr_mc_result_t cr_mc_delete(cr_mc_t *mc, const char *key, size_t keylen);
/* Increments by 1; creates the counter at 1 when absent (add of "0" then incr). *out gets the new value. */
cr_mc_result_t cr_mc_incr(cr_mc_t *mc, const char *key, size_t keylen, uint64_t *out);
/* The same by delta; a counter it creates expires after exptime_s (0: never). The rate limiter's windows. */
cr_mc_result_t cr_mc_incr_by(cr_mc_t *mc, const char *key, size_t keylen, uint32_t delta, uint32_t exptime_s, uint64_t *out);

/* The index in conf->servers a key hashes to. */
size_t cr_mc_server_of(cr_mc_t *mc, const char *key, size_t keylen);
size_t cr_mc_num_servers(const cr_mc_t *mc);
const char *cr_mc_server_name(const cr_mc_t *mc, size_t idx);
cr_breaker_state_t cr_mc_breaker_state(cr_mc_t *mc, size_t idx);
/* Breaker state changes since the start, all servers. */
uint64_t cr_mc_breaker_changes(const cr_mc_t *mc);
/* Calls that failed (CR_MC_FAILED) since the start. */
uint64_t cr_mc_failures(const cr_mc_t *mc);
/* *out = the latency of every memcached call that reached a server (from the call to its answer or failure). */
void cr_mc_latency(const cr_mc_t *mc, cr_hist_t *out);

/* Seconds for a memcached expiry covering ms (rounded up, at least 1, at most 30 days: memcached's relative limit). */
uint32_t cr_mc_expiry_s(uint64_t ms);

#endif
