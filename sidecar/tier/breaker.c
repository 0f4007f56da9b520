/*
 * breaker.c: the circuit breaker of one memcached server (see breaker.h for the states, the contract and the
 * thread-safety rule: every function takes b->mutex, held only for a few comparisons).
 *
 * Invariants (under the mutex):
 *  - CLOSED: failures < conf.failures; probe_out false; backoff_ms == conf.base_ms.
 *  - OPEN: reopen_at == the clock at opening + backoff_ms (saturated); probe_out false.
 *  - HALF_OPEN: at most one probe out; the back-off of the next opening is min(2 * backoff_ms, cap).
 *  - conf.base_ms <= backoff_ms <= conf.cap_ms always.
 */
#include "corral/tier/breaker.h"

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void cr_breaker_init(cr_breaker_t *b, const cr_breaker_conf_t *conf)
{
    pthread_mutex_init(&b->mutex, NULL);
    b->conf.failures = conf != NULL && conf->failures != 0 ? conf->failures : CR_BREAKER_DEFAULT_FAILURES;
    b->conf.base_ms = conf != NULL && conf->base_ms != 0 ? conf->base_ms : CR_BREAKER_DEFAULT_BASE_MS;
    b->conf.cap_ms = conf != NULL && conf->cap_ms != 0 ? conf->cap_ms : CR_BREAKER_DEFAULT_CAP_MS;
    if (b->conf.cap_ms < b->conf.base_ms)
        b->conf.cap_ms = b->conf.base_ms;
    b->state = CR_BREAKER_CLOSED;
    b->failures = 0;
    b->backoff_ms = b->conf.base_ms;
    b->reopen_at = 0;
    b->probe_out = false;
}

void cr_breaker_dispose(cr_breaker_t *b)
{
    pthread_mutex_destroy(&b->mutex);
}

static void breaker_open(cr_breaker_t *b, uint64_t now)
{
    b->state = CR_BREAKER_OPEN;
    b->reopen_at = sat_add(now, b->backoff_ms);
    b->probe_out = false;
}

bool cr_breaker_allow(cr_breaker_t *b, uint64_t now, bool *changed)
{
    bool allow = false, chg = false;

    pthread_mutex_lock(&b->mutex);
    switch (b->state) {
    case CR_BREAKER_CLOSED:
        allow = true;
        break;
    case CR_BREAKER_OPEN:
        if (now >= b->reopen_at) {
            b->state = CR_BREAKER_HALF_OPEN;
            b->probe_out = true;
            allow = chg = true;
        }
        break;
    case CR_BREAKER_HALF_OPEN:
        if (!b->probe_out)
            b->probe_out = allow = true;
        break;
    }
    pthread_mutex_unlock(&b->mutex);
    if (changed != NULL)
        *changed = chg;
    return allow;
}

bool cr_breaker_report(cr_breaker_t *b, uint64_t now, bool ok)
{
    bool chg = false;

    pthread_mutex_lock(&b->mutex);
    switch (b->state) {
    case CR_BREAKER_CLOSED:
        if (ok) {
            b->failures = 0;
        } else if (++b->failures >= b->conf.failures) {
            b->failures = 0;
            breaker_open(b, now);
            chg = true;
        }
        break;
    case CR_BREAKER_OPEN:
        break; /* a request let through before the opening: it changes nothing */
    case CR_BREAKER_HALF_OPEN:
        if (!b->probe_out)
            break; /* no probe out: an answer from before the opening */
        if (ok) {
            b->state = CR_BREAKER_CLOSED;
            b->failures = 0;
            b->backoff_ms = b->conf.base_ms;
            b->probe_out = false;
        } else {
            b->backoff_ms = b->backoff_ms > b->conf.cap_ms / 2 ? b->conf.cap_ms : b->backoff_ms * 2;
            breaker_open(b, now);
        }
        chg = true;
        break;
    }
    pthread_mutex_unlock(&b->mutex);
    return chg;
}

cr_breaker_state_t cr_breaker_state(cr_breaker_t *b)
{
    pthread_mutex_lock(&b->mutex);
    cr_breaker_state_t s = b->state;
    pthread_mutex_unlock(&b->mutex);
    return s;
}

uint64_t cr_breaker_backoff_ms(cr_breaker_t *b)
{
    pthread_mutex_lock(&b->mutex);
    uint64_t ms = b->backoff_ms;
    pthread_mutex_unlock(&b->mutex);
    return ms;
}

const char *cr_breaker_state_name(cr_breaker_state_t s)
{
    switch (s) {
    case CR_BREAKER_CLOSED:
        return "closed";
    case CR_BREAKER_OPEN:
        return "open";
    case CR_BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "unknown";
}
