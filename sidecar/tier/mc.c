/*
 * mc.c: the shared tier's memcached client (see mc.h): libmemcached handles kept idle between calls, ketama
 * hashing, tight timeouts, and a circuit breaker per server in front of every call.
 *
 * Invariants: never called on an event loop (mc.h); a handle is held by one thread for one call; every call that
 * the breaker let through reports to it once (end()). The breaker alone decides when a server is tried again: a
 * handle whose call failed is thrown away and replaced by a fresh clone of the master, because libmemcached marks a
 * failed server disabled for whole seconds (its retry timeout has a granularity of one second, and 0 does not turn
 * it off), which would fail the breaker's probes.
 * Locking: `mutex` while a handle is taken, given back or cloned; each breaker's mutex; atomics for the counters. No
 * lock is held while a call waits on the network.
 */
#include "corral/tier/mc.h"

#include <libmemcached/memcached.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corral/core/common.h"
#include "corral/core/log.h"

#define CR_MC_DEFAULT_TIMEOUT_MS 20u
#define CR_MC_DEFAULT_MAX_VALUE ((size_t)1 << 20)
#define CR_MC_DEFAULT_HANDLES 4u
#define CR_MC_MAX_EXPIRY_S (30u * 24 * 3600)

struct st_cr_mc_t {
    memcached_st *master;     /* configured once; only cloned from (under `mutex`) */
    pthread_mutex_t mutex;    /* guards `idle` and the cloning */
    memcached_st **idle;      /* [max_handles] handles not in use */
    size_t num_idle, max_handles;
    size_t num_servers;
    char **names;           /* [num_servers] "host:port", in conf order (the ring's order) */
    cr_breaker_t *breakers; /* [num_servers] */
    size_t max_value_bytes;
    int mutex_ready;
    uint64_t breaker_changes; /* atomic */
    uint64_t failures;        /* atomic */
    cr_hist_t latency;        /* every call that reached a server (atomic adds: any worker thread) */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t cr_mc_expiry_s(uint64_t ms)
{
    uint64_t s = (ms + 999) / 1000;
    if (s == 0)
        s = 1;
    return s > CR_MC_MAX_EXPIRY_S ? CR_MC_MAX_EXPIRY_S : (uint32_t)s;
}

/* "host:port" (the config checked its shape) added to the master handle. */
static int add_server(memcached_st *m, const char *spec)
{
    const char *colon = strrchr(spec, ':');
    char host[256];
    size_t hlen;
    long port;
    char *end;

    if (colon == NULL || (hlen = (size_t)(colon - spec)) == 0 || hlen >= sizeof(host))
        return CR_ERROR;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return CR_ERROR;
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') { /* "[::1]:11211" */
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    return memcached_server_add(m, host, (in_port_t)port) == MEMCACHED_SUCCESS ? CR_OK : CR_ERROR;
}

cr_mc_t *cr_mc_new(const cr_mc_conf_t *conf)
{
    cr_mc_t *mc = calloc(1, sizeof(*mc));
    uint64_t timeout = conf->timeout_ms != 0 ? conf->timeout_ms : CR_MC_DEFAULT_TIMEOUT_MS;
    size_t i;

    if (mc == NULL || conf->num_servers == 0)
        goto Error;
    mc->num_servers = conf->num_servers;
    mc->max_value_bytes = conf->max_value_bytes != 0 ? conf->max_value_bytes : CR_MC_DEFAULT_MAX_VALUE;
    if ((mc->names = calloc(conf->num_servers, sizeof(*mc->names))) == NULL ||
        (mc->breakers = calloc(conf->num_servers, sizeof(*mc->breakers))) == NULL || (mc->master = memcached_create(NULL)) == NULL)
        goto Error;
    for (i = 0; i != conf->num_servers; ++i)
        cr_breaker_init(&mc->breakers[i], &conf->breaker);
    for (i = 0; i != conf->num_servers; ++i) {
        if ((mc->names[i] = strdup(conf->servers[i])) == NULL)
            goto Error;
        if (add_server(mc->master, conf->servers[i]) != CR_OK) {
            cr_log_error("tier: memcached server \"%s\" cannot be used", conf->servers[i]);
            goto Error;
        }
    }
    /* libketama-compatible consistent hashing (MD5 points), so a server added moves about 1/N of the keys */
    memcached_behavior_set(mc->master, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
    memcached_behavior_set(mc->master, MEMCACHED_BEHAVIOR_NO_BLOCK, 1);
    memcached_behavior_set(mc->master, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    memcached_behavior_set(mc->master, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, timeout);
    memcached_behavior_set(mc->master, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, timeout);
    memcached_behavior_set(mc->master, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, timeout * 1000);
    memcached_behavior_set(mc->master, MEMCACHED_BEHAVIOR_SND_TIMEOUT, timeout * 1000);
    mc->max_handles = conf->handles != 0 ? conf->handles : CR_MC_DEFAULT_HANDLES;
    if ((mc->idle = calloc(mc->max_handles, sizeof(*mc->idle))) == NULL)
        goto Error;
    pthread_mutex_init(&mc->mutex, NULL);
    mc->mutex_ready = 1;
    return mc;

Error:
    cr_mc_free(&mc);
    return NULL;
}

void cr_mc_free(cr_mc_t **mcp)
{
    cr_mc_t *mc = *mcp;
    size_t i;

    *mcp = NULL;
    if (mc == NULL)
        return;
    if (mc->idle != NULL)
        for (i = 0; i != mc->num_idle; ++i)
            memcached_free(mc->idle[i]);
    free(mc->idle);
    if (mc->mutex_ready)
        pthread_mutex_destroy(&mc->mutex);
    if (mc->master != NULL)
        memcached_free(mc->master);
    if (mc->breakers != NULL)
        for (i = 0; i != mc->num_servers; ++i)
            cr_breaker_dispose(&mc->breakers[i]);
    if (mc->names != NULL)
        for (i = 0; i != mc->num_servers; ++i)
            free(mc->names[i]);
    free(mc->names);
    free(mc->breakers);
    free(mc);
}

size_t cr_mc_num_servers(const cr_mc_t *mc)
{
    return mc->num_servers;
}

const char *cr_mc_server_name(const cr_mc_t *mc, size_t idx)
{
    return idx < mc->num_servers ? mc->names[idx] : "";
}

cr_breaker_state_t cr_mc_breaker_state(cr_mc_t *mc, size_t idx)
{
    return cr_breaker_state(&mc->breakers[idx]);
}

uint64_t cr_mc_breaker_changes(const cr_mc_t *mc)
{
    return __atomic_load_n(&mc->breaker_changes, __ATOMIC_RELAXED);
}

void cr_mc_latency(const cr_mc_t *mc, cr_hist_t *out)
{
    memset(out, 0, sizeof(*out));
    cr_hist_add(out, &mc->latency);
}

uint64_t cr_mc_failures(const cr_mc_t *mc)
{
    return __atomic_load_n(&mc->failures, __ATOMIC_RELAXED);
}

/* An idle handle, or a new clone of the master. NULL when out of memory. */
static memcached_st *take_handle(cr_mc_t *mc)
{
    memcached_st *m;
    pthread_mutex_lock(&mc->mutex);
    m = mc->num_idle != 0 ? mc->idle[--mc->num_idle] : memcached_clone(NULL, mc->master);
    pthread_mutex_unlock(&mc->mutex);
    return m;
}

/* Gives a handle back; one whose call failed (`broken`) is freed, its connection and libmemcached's failure marks
 * with it. More handles than max_handles (more callers at once than configured) are freed too. */
static void give_handle(cr_mc_t *mc, memcached_st *m, int broken)
{
    pthread_mutex_lock(&mc->mutex);
    if (!broken && mc->num_idle != mc->max_handles) {
        mc->idle[mc->num_idle++] = m;
        m = NULL;
    }
    pthread_mutex_unlock(&mc->mutex);
    if (m != NULL)
        memcached_free(m);
}

/* One call's hold on a handle and its server's breaker. */
typedef struct st_cr_mc_call_t {
    memcached_st *m;
    size_t server;
    uint64_t start_us;
} cr_mc_call_t;

static void note_change(cr_mc_t *mc, size_t server)
{
    cr_breaker_t *b = &mc->breakers[server];
    __atomic_add_fetch(&mc->breaker_changes, 1, __ATOMIC_RELAXED);
    cr_breaker_state_t st = cr_breaker_state(b);
    /* an opened breaker is an operator's concern (warn); trying again and closing are its follow-up (info) */
    if (st == CR_BREAKER_OPEN)
        cr_log_warn("tier: memcached %s breaker %s (back-off %llu ms)", mc->names[server], cr_breaker_state_name(st),
                    (unsigned long long)cr_breaker_backoff_ms(b));
    else
        cr_log_info("tier: memcached %s breaker %s (back-off %llu ms)", mc->names[server], cr_breaker_state_name(st),
                    (unsigned long long)cr_breaker_backoff_ms(b));
}

/* Takes a handle and asks the key's breaker. CR_MC_OK (the call may go), CR_MC_SKIPPED or CR_MC_FAILED (no handle). */
static cr_mc_result_t begin(cr_mc_t *mc, const char *key, size_t keylen, cr_mc_call_t *call)
{
    bool changed = false;

    if ((call->m = take_handle(mc)) == NULL) {
        __atomic_add_fetch(&mc->failures, 1, __ATOMIC_RELAXED);
        return CR_MC_FAILED;
    }
    call->server = memcached_generate_hash(call->m, key, keylen);
    if (call->server >= mc->num_servers)
        call->server = 0;
    if (!cr_breaker_allow(&mc->breakers[call->server], mono_ms(), &changed)) {
        give_handle(mc, call->m, 0);
        return CR_MC_SKIPPED;
    }
    if (changed)
        note_change(mc, call->server);
    call->start_us = cr_monotonic_us();
    return CR_MC_OK;
}

/* Gives the handle back and reports the server's answer: what rc says about the server, and the call's result. */
static cr_mc_result_t end(cr_mc_t *mc, cr_mc_call_t *call, memcached_return_t rc)
{
    cr_mc_result_t r;
    int answered;

    switch (rc) {
    case MEMCACHED_SUCCESS:
    case MEMCACHED_STORED:
    case MEMCACHED_DELETED:
        r = CR_MC_OK;
        answered = 1;
        break;
    case MEMCACHED_NOTFOUND:
    case MEMCACHED_NOTSTORED:
    case MEMCACHED_DATA_EXISTS:
        r = CR_MC_MISS;
        answered = 1;
        break;
    default:
        r = CR_MC_FAILED;
        answered = 0;
        break;
    }
    cr_hist_observe_shared(&mc->latency, cr_monotonic_us() - call->start_us);
    give_handle(mc, call->m, !answered);
    if (!answered)
        __atomic_add_fetch(&mc->failures, 1, __ATOMIC_RELAXED);
    if (cr_breaker_report(&mc->breakers[call->server], mono_ms(), answered))
        note_change(mc, call->server);
    return r;
}

size_t cr_mc_server_of(cr_mc_t *mc, const char *key, size_t keylen)
{
    memcached_st *m = take_handle(mc);
    size_t idx;

    if (m == NULL)
        return 0;
    idx = memcached_generate_hash(m, key, keylen);
    give_handle(mc, m, 0);
    return idx < mc->num_servers ? idx : 0;
}

cr_mc_result_t cr_mc_get(cr_mc_t *mc, const char *key, size_t keylen, char **val, size_t *vallen)
{
    cr_mc_call_t call;
    cr_mc_result_t r;
    memcached_return_t rc;
    uint32_t flags;
    size_t len = 0;
    char *v;

    *val = NULL;
    *vallen = 0;
    if ((r = begin(mc, key, keylen, &call)) != CR_MC_OK)
        return r;
    v = memcached_get(call.m, key, keylen, &len, &flags, &rc);
    if (rc == MEMCACHED_SUCCESS && v == NULL)
        rc = MEMCACHED_NOTFOUND; /* an empty value: nothing corral wrote */
    if ((r = end(mc, &call, rc)) != CR_MC_OK || len > mc->max_value_bytes) {
        free(v);
        return r == CR_MC_OK ? CR_MC_MISS : r; /* an oversized value is nothing corral wrote either */
    }
    *val = v;
    *vallen = len;
    return CR_MC_OK;
}

static cr_mc_result_t store(cr_mc_t *mc, int add, const char *key, size_t keylen, const char *val, size_t vallen, uint32_t exptime_s)
{
    cr_mc_call_t call;
    cr_mc_result_t r;
    memcached_return_t rc;

    if (vallen > mc->max_value_bytes)
        return CR_MC_FAILED;
    if ((r = begin(mc, key, keylen, &call)) != CR_MC_OK)
        return r;
    rc = add ? memcached_add(call.m, key, keylen, val, vallen, exptime_s, 0) : memcached_set(call.m, key, keylen, val, vallen, exptime_s, 0);
    return end(mc, &call, rc);
}

cr_mc_result_t cr_mc_set(cr_mc_t *mc, const char *key, size_t keylen, const char *val, size_t vallen, uint32_t exptime_s)
{
    return store(mc, 0, key, keylen, val, vallen, exptime_s);
}

cr_mc_result_t cr_mc_add(cr_mc_t *mc, const char *key, size_t keylen, const char *val, size_t vallen, uint32_t exptime_s)
{
    return store(mc, 1, key, keylen, val, vallen, exptime_s);
}

cr_mc_result_t cr_mc_delete(cr_mc_t *mc, const char *key, size_t keylen)
{
    cr_mc_call_t call;
    cr_mc_result_t r;

    if ((r = begin(mc, key, keylen, &call)) != CR_MC_OK)
        return r;
    return end(mc, &call, memcached_delete(call.m, key, keylen, 0));
}

cr_mc_result_t cr_mc_incr(cr_mc_t *mc, const char *key, size_t keylen, uint64_t *out)
{
    return cr_mc_incr_by(mc, key, keylen, 1, 0, out);
}

cr_mc_result_t cr_mc_incr_by(cr_mc_t *mc, const char *key, size_t keylen, uint32_t delta, uint32_t exptime_s, uint64_t *out)
{
    cr_mc_call_t call;
    cr_mc_result_t r;
    memcached_return_t rc;
    int attempt;

    for (attempt = 0; attempt != 2; ++attempt) {
        if ((r = begin(mc, key, keylen, &call)) != CR_MC_OK)
            return r;
        rc = memcached_increment(call.m, key, keylen, delta, out);
        if ((r = end(mc, &call, rc)) != CR_MC_MISS)
            return r;
        /* absent: create it at 0 (another pod may win this add: then its value is incremented) */
        if ((r = store(mc, 1, key, keylen, "0", 1, exptime_s)) == CR_MC_FAILED || r == CR_MC_SKIPPED)
            return r;
    }
    return CR_MC_FAILED;
}
