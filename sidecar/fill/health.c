/*
 * health.c: readiness and the active upstream health check (health.h).
 *
 * The check: a fresh TCP connection to upstream.url's address, "GET <path> HTTP/1.1" with Connection: close, and the
 * status line of the answer; 200-399 is a good check, anything else (connect error, timeout, another status, a
 * malformed answer) a failed one. Connect, send and receive share one deadline of upstream.health.timeout. The
 * thread sleeps on a condition variable between rounds so that cr_health_stop wakes it at once.
 *
 * The config comes from the function the server passes to cr_health_start (the current generation, retained): below
 * serve/, admin/ and server/ the config arrives only as an argument.
 * Invariants: the state changes only on the checker thread (and at a reload that removes the check, also there); a
 * change of state is logged once. Without upstream.health the upstream counts as healthy.
 * Locking: state_mutex guards `state`; wait_mutex/wait_cond the checker's sleep and `stopping`. No lock is held
 * during a check.
 *
 * The passive breaker (upstream.breaker, set once by cr_health_breaker_init before the workers start): the workers'
 * upstream clients report every result (cr_health_passive_result); `breaker.failures` connect errors or 5xx in a row
 * open it. While open, cr_health_admit refuses requests (they fail fast); recovery: with upstream.health configured,
 * the active checker's next good check closes it; without, one request is let through as a half-open probe every
 * backoff (doubled after each failed probe, up to max_backoff), and its success closes it. Each open and close is
 * logged once. The traffic workers' fast path (breaker closed, no failure in a row) reads two atomics and takes no
 * lock; `down` mirrors state.unhealthy for them. passive_mutex guards the breaker's transitions and its backoff.
 */
#include "corral/fill/health.h"
#include "corral/fill/upstream_resolver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "corral/conf/config.h"
#include "corral/core/log.h"
#include "corral/core/runtime.h"

#define CR_HEALTH_IDLE_MS 1000 /* how often a checker without upstream.health looks whether a reload added it */

static struct {
    int serving;
    int unhealthy;
    unsigned fails, goods; /* in a row */
    char last_error[160];
} state;
static pthread_mutex_t state_mutex = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t wait_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond;
static int stopping, started;
static pthread_t checker;
static cr_health_config_fn acquire_config;

/* the passive breaker (atomics read lock-free by the workers; written under passive_mutex) */
static struct {
    unsigned threshold; /* 0: no breaker */
    uint64_t backoff_ms, max_backoff_ms, cur_backoff_ms;
    unsigned fails;      /* in a row */
    int open;
    uint64_t probe_at_ms; /* open, no active check: the next half-open probe may go at this time */
    uint64_t opens, closes;
} passive;
static pthread_mutex_t passive_mutex = PTHREAD_MUTEX_INITIALIZER;
static int active_down; /* state.unhealthy, for lock-free readers */
static int active_checked; /* upstream.health is configured: it, not a probe, closes the breaker */
static uint64_t active_recover_ms; /* the least time to healthy: (healthy_after - good checks in a row) * interval */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for `events` until deadline. 0, or -1 with why set. */
static int wait_fd(int fd, short events, uint64_t deadline, uint64_t timeout_ms, char *why, size_t whysize)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        uint64_t now = mono_ms();
        int n;
        if (now >= deadline) {
            snprintf(why, whysize, "no answer within %llu ms", (unsigned long long)timeout_ms);
            return -1;
        }
        if ((n = poll(&pfd, 1, (int)(deadline - now))) > 0)
            return 0;
        if (n < 0 && errno != EINTR) {
            snprintf(why, whysize, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

/* One check. Returns 1 good, 0 failed (why says how). */
static int check_once(const cr_config_t *cfg, char *why, size_t whysize)
{
    uint64_t timeout = cfg->upstream.health_timeout_ms, deadline = mono_ms() + timeout;
    char req[1024], buf[256];
    size_t reqlen, sent = 0, got = 0;
    int fd, err = 0, ok = 0, status;
    socklen_t errlen = sizeof(err);
    char *eol;

    struct sockaddr_storage addr = cfg->upstream.addr;
    socklen_t addrlen = cfg->upstream.addrlen;
    uint64_t addr_version = 0;

    cr_upstream_resolver_refresh(&addr, &addrlen, &addr_version); /* a host name's latest address */
    if ((fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
        snprintf(why, whysize, "socket: %s", strerror(errno));
        return 0;
    }
    if (connect(fd, (const void *)&addr, addrlen) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(why, whysize, "connect: %s", strerror(errno));
            goto Exit;
        }
        if (wait_fd(fd, POLLOUT, deadline, timeout, why, whysize) != 0)
            goto Exit;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0) {
            snprintf(why, whysize, "connect: %s", strerror(err != 0 ? err : errno));
            goto Exit;
        }
    }
    {
        int v6 = strchr(cfg->upstream.host, ':') != NULL; /* an IPv6 literal goes in brackets */
        reqlen = (size_t)snprintf(req, sizeof(req),
                                  "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUser-Agent: corral-health\r\nConnection: close\r\n\r\n",
                                  cfg->upstream.health_path, v6 ? "[" : "", cfg->upstream.host, v6 ? "]" : "",
                                  (unsigned)cfg->upstream.port);
    }
    if (reqlen >= sizeof(req)) {
        snprintf(why, whysize, "the request line is too long");
        goto Exit;
    }
    while (sent != reqlen) {
        ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline, timeout, why, whysize) != 0)
                goto Exit;
        } else {
            snprintf(why, whysize, "send: %s", strerror(errno));
            goto Exit;
        }
    }
    while ((eol = memchr(buf, '\n', got)) == NULL) {
        ssize_t n;
        if (got == sizeof(buf) - 1) {
            snprintf(why, whysize, "malformed answer (no status line in %zu bytes)", got);
            goto Exit;
        }
        if ((n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            snprintf(why, whysize, "the upstream closed the connection before answering");
            goto Exit;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(fd, POLLIN, deadline, timeout, why, whysize) != 0)
                goto Exit;
        } else {
            snprintf(why, whysize, "recv: %s", strerror(errno));
            goto Exit;
        }
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 100 || status > 599) {
        snprintf(why, whysize, "malformed status line");
        goto Exit;
    }
    if (status >= 200 && status < 400)
        ok = 1;
    else
        snprintf(why, whysize, "status %d", status);
Exit:
    close(fd);
    return ok;
}

/* Closes an open breaker (logged once). Any thread. */
static void passive_close(const char *why)
{
    if (!__atomic_load_n(&passive.open, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&passive_mutex);
    if (passive.open) {
        passive.fails = 0;
        passive.cur_backoff_ms = passive.backoff_ms;
        ++passive.closes;
        __atomic_store_n(&passive.open, 0, __ATOMIC_RELAXED);
        cr_log_info("upstream breaker: closed (%s): requests go to the upstream again", why);
    }
    pthread_mutex_unlock(&passive_mutex);
}

/* Counts one check's result and logs a change of state. On the checker thread. */
static void note_result(const cr_config_t *cfg, int good, const char *why)
{
    pthread_mutex_lock(&state_mutex);
    if (good) {
        state.fails = 0;
        ++state.goods;
        if (state.unhealthy && state.goods >= cfg->upstream.health_healthy_after) {
            state.unhealthy = 0;
            cr_log_info("upstream health: GET %s answered %u times in a row: healthy again, /readyz answers 200",
                        cfg->upstream.health_path, state.goods);
        }
        if (!state.unhealthy)
            passive_close("the active health check passed");
    } else {
        state.goods = 0;
        ++state.fails;
        snprintf(state.last_error, sizeof(state.last_error), "%s", why);
        if (!state.unhealthy && state.fails >= cfg->upstream.health_unhealthy_after) {
            state.unhealthy = 1;
            cr_log_warn("upstream health: GET %s failed %u times in a row (%s): unhealthy, /readyz answers 503",
                        cfg->upstream.health_path, state.fails, why);
        }
    }
    __atomic_store_n(&active_recover_ms,
                     (uint64_t)(state.unhealthy ? cfg->upstream.health_healthy_after - state.goods : 1) * cfg->upstream.health_interval_ms,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&active_down, state.unhealthy, __ATOMIC_RELAXED);
    __atomic_store_n(&active_checked, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&state_mutex);
}

/* No check configured (any more): the upstream counts as healthy. */
static void note_unchecked(void)
{
    pthread_mutex_lock(&state_mutex);
    if (state.unhealthy)
        cr_log_info("upstream health: no longer checked (upstream.health removed): /readyz no longer depends on it");
    state.unhealthy = 0;
    state.fails = state.goods = 0;
    __atomic_store_n(&active_down, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&active_checked, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&state_mutex);
}

static void *checker_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "corral-health");
    pthread_mutex_lock(&wait_mutex);
    while (!stopping) {
        const cr_config_t *cfg;
        uint64_t interval = CR_HEALTH_IDLE_MS;
        struct timespec until;
        pthread_mutex_unlock(&wait_mutex);
        if ((cfg = acquire_config()) != NULL && cfg->upstream.health_path != NULL) {
            char why[160] = "";
            int good = check_once(cfg, why, sizeof(why));
            note_result(cfg, good, why);
            interval = cfg->upstream.health_interval_ms;
        } else {
            note_unchecked();
        }
        cr_config_release(&cfg);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(interval / 1000);
        until.tv_nsec += (long)(interval % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            ++until.tv_sec;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&wait_mutex);
        while (!stopping && pthread_cond_timedwait(&wait_cond, &wait_mutex, &until) == 0)
            ; /* woken without stopping: a spurious wake-up, sleep on */
    }
    pthread_mutex_unlock(&wait_mutex);
    return NULL;
}

int cr_health_start(cr_health_config_fn acquire)
{
    acquire_config = acquire;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wait_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&checker, NULL, checker_main, NULL) != 0)
        return -1;
    started = 1;
    return 0;
}

void cr_health_stop(void)
{
    if (!started)
        return;
    pthread_mutex_lock(&wait_mutex);
    stopping = 1;
    pthread_cond_broadcast(&wait_cond);
    pthread_mutex_unlock(&wait_mutex);
    pthread_join(checker, NULL);
    started = 0;
}

void cr_health_set_serving(int serving)
{
    pthread_mutex_lock(&state_mutex);
    state.serving = serving;
    pthread_mutex_unlock(&state_mutex);
}

int cr_health_ready(const char **reason, char *detail, size_t detailsize)
{
    int ready = 0;
    pthread_mutex_lock(&state_mutex);
    if (cr_rt.stopping) {
        *reason = "draining";
        snprintf(detail, detailsize, "corral is draining (SIGTERM): it accepts no new connections");
    } else if (!state.serving) {
        *reason = "starting";
        snprintf(detail, detailsize, "the listeners are not all up yet");
    } else if (state.unhealthy) {
        *reason = "upstream_unhealthy";
        snprintf(detail, detailsize, "the upstream's health check failed %u times in a row: %s", state.fails, state.last_error);
    } else if (__atomic_load_n(&passive.open, __ATOMIC_RELAXED)) {
        *reason = "upstream_unhealthy";
        snprintf(detail, detailsize, "the upstream breaker is open: %u connect errors or 5xx answers in a row",
                 passive.threshold);
    } else {
        *reason = "ready";
        detail[0] = '\0';
        ready = 1;
    }
    pthread_mutex_unlock(&state_mutex);
    return ready;
}

int cr_health_upstream_healthy(void)
{
    int healthy;
    pthread_mutex_lock(&state_mutex);
    healthy = !state.unhealthy;
    pthread_mutex_unlock(&state_mutex);
    return healthy && !__atomic_load_n(&passive.open, __ATOMIC_RELAXED);
}

void cr_health_breaker_init(unsigned failures, uint64_t backoff_ms, uint64_t max_backoff_ms)
{
    pthread_mutex_lock(&passive_mutex);
    passive.threshold = failures;
    passive.backoff_ms = passive.cur_backoff_ms = backoff_ms != 0 ? backoff_ms : 1000;
    passive.max_backoff_ms = max_backoff_ms >= passive.backoff_ms ? max_backoff_ms : passive.backoff_ms;
    pthread_mutex_unlock(&passive_mutex);
}

int cr_health_admit(uint64_t now_ms)
{
    uint64_t at;
    if (__atomic_load_n(&active_down, __ATOMIC_RELAXED))
        return 0;
    if (!__atomic_load_n(&passive.open, __ATOMIC_RELAXED))
        return 1;
    if (__atomic_load_n(&active_checked, __ATOMIC_RELAXED))
        return 0; /* the active check closes it */
    /* half-open: one request per backoff goes through; the one that wins the exchange is the probe */
    at = __atomic_load_n(&passive.probe_at_ms, __ATOMIC_RELAXED);
    if (now_ms < at)
        return 0;
    return __atomic_compare_exchange_n(&passive.probe_at_ms, &at, now_ms + __atomic_load_n(&passive.cur_backoff_ms, __ATOMIC_RELAXED),
                                       0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

uint64_t cr_health_retry_after_ms(uint64_t now_ms)
{
    int open = __atomic_load_n(&passive.open, __ATOMIC_RELAXED);
    uint64_t at;

    if (__atomic_load_n(&active_checked, __ATOMIC_RELAXED) && (open || __atomic_load_n(&active_down, __ATOMIC_RELAXED)))
        return __atomic_load_n(&active_recover_ms, __ATOMIC_RELAXED);
    if (!open)
        return 0;
    at = __atomic_load_n(&passive.probe_at_ms, __ATOMIC_RELAXED);
    return at > now_ms ? at - now_ms : 0;
}

void cr_health_passive_result(int ok, uint64_t now_ms)
{
    if (__atomic_load_n(&passive.threshold, __ATOMIC_RELAXED) == 0)
        return;
    if (ok) {
        if (__atomic_load_n(&passive.fails, __ATOMIC_RELAXED) == 0 && !__atomic_load_n(&passive.open, __ATOMIC_RELAXED))
            return; /* the fast path: nothing to change */
        pthread_mutex_lock(&passive_mutex);
        __atomic_store_n(&passive.fails, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&passive_mutex);
        passive_close("a request to the upstream succeeded");
        return;
    }
    pthread_mutex_lock(&passive_mutex);
    __atomic_store_n(&passive.fails, passive.fails + 1, __ATOMIC_RELAXED);
    if (passive.open) {
        /* a failed probe (or a request that started before the breaker opened): the next probe waits longer */
        if (now_ms + passive.cur_backoff_ms >= passive.probe_at_ms) {
            passive.cur_backoff_ms = passive.cur_backoff_ms * 2 < passive.max_backoff_ms ? passive.cur_backoff_ms * 2
                                                                                        : passive.max_backoff_ms;
            __atomic_store_n(&passive.probe_at_ms, now_ms + passive.cur_backoff_ms, __ATOMIC_RELAXED);
        }
    } else if (passive.fails >= passive.threshold) {
        ++passive.opens;
        passive.cur_backoff_ms = passive.backoff_ms;
        __atomic_store_n(&passive.probe_at_ms, now_ms + passive.cur_backoff_ms, __ATOMIC_RELAXED);
        __atomic_store_n(&passive.open, 1, __ATOMIC_RELAXED);
        cr_log_warn("upstream breaker: open after %u connect errors or 5xx answers in a row: requests fail fast (or get "
                    "a stale copy), /readyz answers 503 until %s",
                    passive.fails, __atomic_load_n(&active_checked, __ATOMIC_RELAXED) ? "the active health check passes"
                                                                                   : "a half-open probe succeeds");
    }
    pthread_mutex_unlock(&passive_mutex);
}

void cr_health_breaker_stats(int *open, uint64_t *opens)
{
    pthread_mutex_lock(&passive_mutex);
    *open = passive.open;
    *opens = passive.opens;
    pthread_mutex_unlock(&passive_mutex);
}
