/*
 * tier_util.h: what the shared-tier suites (test_tier.c, test_tier_faults.c) share: a fleet of memcached servers and
 * one test upstream, corrals configured with a chosen subset of those servers, requests with one fixed Host (so every
 * corral computes the same primary key whatever port it listens on), the Cache-Status classes of the tier, and the
 * listing of corral's value keys on each server.
 *
 * Invariants: every process is started and stopped by PID through harness.h / mc_harness.h; every wait is a
 * bounded poll; nothing here knows corral's internals beyond README ("Shared tier protocol": the key format), the
 * config keys of the tier and the invalidation log's counter key (below). Not thread-safe: tier_server_of and
 * tier_wait_new_value_key use static buffers; tier_get is safe on any thread.
 */
#ifndef CORRAL_E2E_TIER_UTIL_H
#define CORRAL_E2E_TIER_UTIL_H

#include <stddef.h>

#include "harness.h"
#include "mc_harness.h"

#define TIER_HOST "tier.test"
#define TIER_MAX_MC 4
#define TIER_VALUE_PREFIX "corral:v1:"
#define TIER_MAX_DELAY_MS 150 /* tier.invalidation.max_delay in every config below */
#define TIER_LEASE_TTL_S 2    /* tier.lease.ttl */
/* The invalidation log's counter (include/corral/tier/inval_log.h; not yet in README): its server holds the log. */
#define TIER_INVAL_SEQ_KEY "corral:v1:inval:seq"

typedef struct {
    mc_proc_t mc[TIER_MAX_MC];
    int n_mc;
    cr_proc_t up;
} tier_env_t;

/* Starts the upstream and n memcached servers (n <= TIER_MAX_MC). 0, or -1 after stopping what started. */
int tier_env_start(tier_env_t *e, int n);
/* Stops everything still running, by PID. */
void tier_env_stop(tier_env_t *e);
/* Restarts every server on its port (empty, curr_items 0) and /__reset on the upstream, between tests. 0 or -1. */
int tier_env_reset(tier_env_t *e);

/* Starts a corral (threads: 2, route / with ttl 60s, the tier config of the brief) in front of e->up that uses the
 * servers e->mc[idx[0]], ..., e->mc[idx[n-1]] in that order (idx NULL: the first n). 0 or -1. */
int tier_start_corral(cr_proc_t *c, const tier_env_t *e, const int *idx, int n);

typedef enum { TIER_ERR = -1, TIER_L1_HIT = 0, TIER_L2_HIT, TIER_MISS } tier_class_t;

typedef struct {
    long status;
    char cache_status[256];
    char version[64]; /* the upstream JSON's "version" ("" when absent) */
    long n;           /* the upstream JSON's "n" (its count for the path when it answered), or -1 */
    double ms;
} tier_resp_t;

/* GET path through c over HTTP/1.1 with Host: TIER_HOST. Returns the class of its Cache-Status ("corral; hit" is
 * an L1 hit, "detail=l2-hit" an L2 hit, anything else a miss), TIER_ERR on a transport error. out may be NULL. */
tier_class_t tier_get(const cr_proc_t *c, const char *path, tier_resp_t *out);

/* POST /v1/purge with body json on c's admin port (no token: loopback). The status, or -1. */
long tier_admin_purge(const cr_proc_t *c, const char *json);

/* Waits up to timeout_ms until harness_metric(c, name) >= target. Returns the last value read (-1 when unreadable). */
long tier_wait_metric(const cr_proc_t *c, const char *name, long target, int timeout_ms);

/* 1 when key is a value key of protocol v1: "corral:v1:" and exactly 32 lower-case hex digits. */
int tier_is_value_key(const char *key);

/* The number of value keys on server port (-1 on error); when keys != NULL, also copies up to cap of them (each
 * 42 bytes + NUL). */
long tier_value_keys(int port, char (*keys)[43], size_t cap);

/* The index in e->mc of the running server holding memcached key key, or -1 (none, or an error). */
int tier_server_of(const tier_env_t *e, const char *key);

/* Waits up to timeout_ms for a value key that is not in before[0..nbefore) to appear on any running server of e;
 * copies it into key (43 bytes) and returns the server index, or -1. */
int tier_wait_new_value_key(const tier_env_t *e, char (*before)[43], size_t nbefore, char *key, int timeout_ms);

/* Every value key on every running server of e (at most cap) into keys; the count, or -1. */
long tier_all_value_keys(const tier_env_t *e, char (*keys)[43], size_t cap);

/* The memcached key corral documents for primary key bytes pk (README "Key format"): "corral:v1:" and the first 16
 * bytes of SHA-256(pk) in hex, computed with sha256sum(1). 0 or -1. */
int tier_expected_key(const char *pk, size_t pklen, char out[43]);

/* Sleeps ms milliseconds (for pacing a polling loop, never for synchronisation). */
void tier_pause_ms(int ms);

#endif
