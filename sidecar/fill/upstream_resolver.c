/*
 * upstream_resolver.c: re-resolving a host-name upstream.url (upstream_resolver.h).
 *
 * Invariants: one process-wide state `R`. The address and the failure streak are written under R.mu by the resolver
 * thread (or a unit test through cr_upstream_resolver_apply) and read under it by cr_upstream_resolver_refresh,
 * which takes the mutex only when the atomic R.version moved (a new address: rare). The thread sleeps on R.cv with
 * a timeout, so stop wakes it at once. getaddrinfo runs on this thread only, never on an event loop.
 */
#include "corral/fill/upstream_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "corral/core/log.h"
#include "corral/core/resolve.h"

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stop, failing;
    char host[256];
    uint16_t port;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t version; /* atomic: bumped (under mu) each time addr changes */
} R = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    const void *a = ss->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                                               : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (inet_ntop(ss->ss_family, a, buf, (socklen_t)size) == NULL)
        snprintf(buf, size, "?");
    return buf;
}

cr_resolve_event_t cr_upstream_resolver_apply(int rc, const struct sockaddr_storage *ss, socklen_t sslen, const char *why)
{
    char before[64], after[64];
    cr_resolve_event_t ev;

    pthread_mutex_lock(&R.mu);
    if (rc != 0) {
        ev = R.failing ? CR_RESOLVE_STILL_FAILING : CR_RESOLVE_FAILED;
        R.failing = 1;
        if (ev == CR_RESOLVE_FAILED)
            cr_log_warn("upstream.url: cannot resolve \"%s\" (%s): keeping %s until it resolves again", R.host, why,
                        addr_str(&R.addr, before, sizeof(before)));
    } else {
        int changed = sslen != R.addrlen || memcmp(ss, &R.addr, sslen) != 0;
        ev = R.failing ? CR_RESOLVE_RECOVERED : changed ? CR_RESOLVE_CHANGED : CR_RESOLVE_SAME;
        if (R.failing)
            cr_log_info("upstream.url: \"%s\" resolves again (%s)", R.host, addr_str(ss, after, sizeof(after)));
        else if (changed)
            cr_log_info("upstream.url: \"%s\" now resolves to %s (was %s)", R.host, addr_str(ss, after, sizeof(after)),
                        addr_str(&R.addr, before, sizeof(before)));
        R.failing = 0;
        if (changed) {
            memcpy(&R.addr, ss, sslen);
            R.addrlen = sslen;
            __atomic_add_fetch(&R.version, 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&R.mu);
    return ev;
}

static void *resolver_main(void *arg)
{
    pthread_mutex_lock(&R.mu);
    while (!R.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += CR_UPSTREAM_RESOLVE_MS / 1000;
        while (!R.stop && pthread_cond_timedwait(&R.cv, &R.mu, &until) == 0)
            ; /* woken early without stop: wait out the interval */
        if (R.stop)
            break;
        {
            struct sockaddr_storage ss;
            socklen_t sslen = 0;
            const char *why = NULL;
            char host[sizeof(R.host)];
            uint16_t port = R.port;
            int rc;
            memcpy(host, R.host, sizeof(host));
            pthread_mutex_unlock(&R.mu); /* getaddrinfo may block for seconds: not under the mutex */
            rc = cr_resolve_host(host, port, &ss, &sslen, &why);
            (void)cr_upstream_resolver_apply(rc, &ss, sslen, why);
            pthread_mutex_lock(&R.mu);
        }
    }
    pthread_mutex_unlock(&R.mu);
    return NULL;
}

int cr_upstream_resolver_start(const cr_config_t *cfg)
{
    if (!cfg->upstream.host_is_name || R.running)
        return 0;
    pthread_mutex_lock(&R.mu);
    snprintf(R.host, sizeof(R.host), "%s", cfg->upstream.host);
    R.port = cfg->upstream.port;
    memcpy(&R.addr, &cfg->upstream.addr, cfg->upstream.addrlen);
    R.addrlen = cfg->upstream.addrlen;
    R.stop = R.failing = 0;
    pthread_mutex_unlock(&R.mu);
    if (pthread_create(&R.thread, NULL, resolver_main, NULL) != 0) {
        cr_log_error("upstream.url: cannot start the resolver thread: \"%s\" is not resolved again", cfg->upstream.host);
        return -1;
    }
    R.running = 1;
    return 0;
}

void cr_upstream_resolver_stop(void)
{
    if (!R.running)
        return;
    pthread_mutex_lock(&R.mu);
    R.stop = 1;
    pthread_cond_signal(&R.cv);
    pthread_mutex_unlock(&R.mu);
    pthread_join(R.thread, NULL);
    R.running = 0;
}

void cr_upstream_resolver_refresh(struct sockaddr_storage *ss, socklen_t *sslen, uint64_t *version)
{
    if (__atomic_load_n(&R.version, __ATOMIC_RELAXED) == *version)
        return;
    pthread_mutex_lock(&R.mu);
    memcpy(ss, &R.addr, R.addrlen);
    *sslen = R.addrlen;
    *version = __atomic_load_n(&R.version, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&R.mu);
}
