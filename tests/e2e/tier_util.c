/*
 * tier_util.c: the shared-tier test helpers declared in tier_util.h.
 *
 * Invariants: no global state; a config is written per corral from one template (the brief's tier keys: servers,
 * timeout 20ms, lease ttl 2s, invalidation max_delay 150ms and poll_interval 10ms); every loop is bounded by a
 * deadline or a count.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tier_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void tier_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int tier_env_start(tier_env_t *e, int n)
{
    int i;
    memset(e, 0, sizeof(*e));
    if (n > TIER_MAX_MC || harness_start_upstream(&e->up) != 0)
        return -1;
    for (i = 0; i != n; ++i) {
        if (mc_start(&e->mc[i], 0) != 0) {
            tier_env_stop(e);
            return -1;
        }
        e->n_mc = i + 1;
    }
    return 0;
}

void tier_env_stop(tier_env_t *e)
{
    int i;
    for (i = 0; i != TIER_MAX_MC; ++i)
        if (e->mc[i].pid > 0)
            mc_stop(&e->mc[i]);
    if (e->up.pid > 0)
        harness_stop(&e->up);
}

int tier_env_reset(tier_env_t *e)
{
    int i, rc = 0;
    for (i = 0; i != e->n_mc; ++i) { /* a restart, not flush_all: flushed items stay in curr_items for a while */
        if (e->mc[i].pid > 0)
            mc_stop(&e->mc[i]);
        if (mc_start(&e->mc[i], e->mc[i].port) != 0)
            rc = -1;
    }
    if (upstream_reset(&e->up) != 0)
        rc = -1;
    return rc;
}

int tier_start_corral(cr_proc_t *c, const tier_env_t *e, const int *idx, int n)
{
    char servers[512] = "", tmpl[4096];
    size_t off = 0;
    int i;
    for (i = 0; i != n; ++i)
        off += (size_t)snprintf(servers + off, sizeof(servers) - off, "%s\"127.0.0.1:%d\"", i ? ", " : "",
                                e->mc[idx != NULL ? idx[i] : i].port);
    snprintf(tmpl, sizeof(tmpl),
             "threads: 2\n"
             "listen:\n"
             "  - address: 127.0.0.1:${PORT}\n"
             "upstream:\n"
             "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
             "  max_connections: 256\n"
             "admin:\n"
             "  address: 127.0.0.1:${ADMIN_PORT}\n"
             "tier:\n"
             "  memcached:\n"
             "    servers: [%s]\n"
             "    timeout: 20ms\n"
             "  lease: { ttl: %ds }\n"
             "  invalidation: { max_delay: %dms, poll_interval: 10ms }\n"
             "routes:\n"
             "  - match: { prefix: / }\n"
             "    ttl: 60s\n",
             servers, TIER_LEASE_TTL_S, TIER_MAX_DELAY_MS);
    return harness_start_corral(c, tmpl, &e->up);
}

/* The string value of a top-level JSON field "name": "..." of the upstream's body (no escapes expected). */
static void body_string(const char *body, const char *field, char *out, size_t outsize)
{
    char needle[64];
    const char *v;
    snprintf(needle, sizeof(needle), "\"%s\": \"", field);
    v = strstr(body, needle);
    if (v == NULL) {
        out[0] = '\0';
        return;
    }
    v += strlen(needle);
    snprintf(out, outsize, "%.*s", (int)strcspn(v, "\""), v);
}

tier_class_t tier_get(const cr_proc_t *c, const char *path, tier_resp_t *out)
{
    static const char *const headers[] = {"Host: " TIER_HOST, NULL};
    tier_resp_t local;
    cr_resp_t r;
    tier_class_t cls;
    if (out == NULL)
        out = &local;
    memset(out, 0, sizeof(*out));
    out->n = -1;
    if (http_get(&r, CR_H1, url_of(c, path), headers) != 0) {
        out->status = r.status;
        resp_free(&r);
        return TIER_ERR;
    }
    out->status = r.status;
    out->ms = r.total_ms;
    resp_header(&r, "cache-status", out->cache_status, sizeof(out->cache_status));
    body_string(r.body, "version", out->version, sizeof(out->version));
    if (json_get_long(r.body, "n", &out->n) != 0)
        out->n = -1;
    resp_free(&r);
    cls = strstr(out->cache_status, "corral; hit") != NULL      ? TIER_L1_HIT
          : strstr(out->cache_status, "detail=l2-hit") != NULL ? TIER_L2_HIT
                                                                : TIER_MISS;
    return cls;
}

long tier_admin_purge(const cr_proc_t *c, const char *json)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    char url[128];
    cr_resp_t r;
    long status;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/purge", c->admin_port);
    status = http_request(&r, CR_H1, "POST", url, headers, json, strlen(json)) == 0 ? r.status : -1;
    resp_free(&r);
    return status;
}

long tier_wait_metric(const cr_proc_t *c, const char *name, long target, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms, v;
    for (;;) {
        v = harness_metric(c, name);
        if (v >= target || harness_now_ms() >= deadline)
            return v;
        tier_pause_ms(10);
    }
}

int tier_is_value_key(const char *key)
{
    size_t i, plen = strlen(TIER_VALUE_PREFIX);
    if (strncmp(key, TIER_VALUE_PREFIX, plen) != 0 || strlen(key) != plen + 32)
        return 0;
    for (i = plen; key[i] != '\0'; ++i)
        if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
            return 0;
    return 1;
}

long tier_value_keys(int port, char (*keys)[43], size_t cap)
{
    char **all;
    size_t n, i;
    long count = 0;
    if (mc_list_keys(port, &all, &n) != 0)
        return -1;
    for (i = 0; i != n; ++i)
        if (tier_is_value_key(all[i])) {
            if (keys != NULL && (size_t)count < cap)
                memcpy(keys[count], all[i], 43);
            ++count;
        }
    mc_free_keys(all, n);
    return count;
}

long tier_all_value_keys(const tier_env_t *e, char (*keys)[43], size_t cap)
{
    long total = 0;
    int i;
    for (i = 0; i != e->n_mc; ++i) {
        long k;
        if (e->mc[i].pid <= 0 || e->mc[i].frozen)
            continue;
        if ((k = tier_value_keys(e->mc[i].port, keys != NULL && (size_t)total < cap ? keys + total : NULL,
                                 (size_t)total < cap ? cap - (size_t)total : 0)) < 0)
            return -1;
        total += k;
    }
    return total;
}

int tier_server_of(const tier_env_t *e, const char *key)
{
    static char buf[1 << 20];
    int i;
    for (i = 0; i != e->n_mc; ++i) {
        size_t len;
        if (e->mc[i].pid > 0 && !e->mc[i].frozen && mc_get(e->mc[i].port, key, buf, sizeof(buf), &len) == MC_FOUND)
            return i;
    }
    return -1;
}

int tier_wait_new_value_key(const tier_env_t *e, char (*before)[43], size_t nbefore, char *key, int timeout_ms)
{
    static char now[4096][43];
    long deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        long n = tier_all_value_keys(e, now, 4096), i;
        size_t j;
        for (i = 0; i < n && i < 4096; ++i) {
            for (j = 0; j != nbefore && strcmp(before[j], now[i]) != 0; ++j)
                ;
            if (j == nbefore) {
                memcpy(key, now[i], 43);
                return tier_server_of(e, key);
            }
        }
        if (harness_now_ms() >= deadline)
            return -1;
        tier_pause_ms(10);
    }
}

int tier_expected_key(const char *pk, size_t pklen, char out[43])
{
    char path[] = "/tmp/corral-tier-pk.XXXXXX", cmd[128], line[256];
    int fd = mkstemp(path), rc = -1;
    FILE *p;
    if (fd < 0)
        return -1;
    if (write(fd, pk, pklen) != (ssize_t)pklen) {
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
    if ((p = popen(cmd, "r")) != NULL) {
        if (fgets(line, sizeof(line), p) != NULL && strlen(line) >= 32) {
            snprintf(out, 43, "%s%.32s", TIER_VALUE_PREFIX, line);
            rc = 0;
        }
        pclose(p);
    }
    unlink(path);
    return rc;
}
