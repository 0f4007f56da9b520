/*
 * breaker.h: a circuit breaker for one memcached server of the shared tier (breaker.c), a pure state machine on a
 * clock the caller gives (ms, any monotonic origin).
 *
 *   CLOSED    every request allowed; `failures` consecutive failures (default 5) open it.
 *   OPEN      nothing allowed until the back-off has passed: the base (default 1 s) when it opens from CLOSED,
 *             doubled on each failed probe, never over the cap (default 30 s).
 *   HALF_OPEN entered by the first cr_breaker_allow after the back-off; that caller gets the one probe, every other
 *             caller is refused until the probe reports. A success closes it (back-off back to the base, failure
 *             count 0); a failure reopens it with the doubled back-off.
 *
 * Contract: every request cr_breaker_allow let through is reported exactly once with cr_breaker_report. A report
 * while OPEN (a request let through before it opened) changes nothing. A report while HALF_OPEN with the probe out
 * is taken as the probe's answer (a late answer from before the opening counts in its stead: with timeouts of tens
 * of ms and a back-off of at least the base this does not happen in practice, and it is the server's answer anyway).
 *
 * State changes: cr_breaker_allow (OPEN -> HALF_OPEN) and cr_breaker_report (the others) tell their caller when they
 * changed the state, exactly once per change, so the caller logs it once and sets its metric.
 *
 * Thread safety: a mutex inside; any thread may call any function (the worker pool's threads share a server's
 * breaker). Not on the hit path: only L2 requests pass here. cr_breaker_init before any use, cr_breaker_dispose after.
 */
#ifndef CORRAL_TIER_BREAKER_H
#define CORRAL_TIER_BREAKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CR_BREAKER_DEFAULT_FAILURES 5u
#define CR_BREAKER_DEFAULT_BASE_MS 1000u
#define CR_BREAKER_DEFAULT_CAP_MS 30000u

typedef enum en_cr_breaker_state_t { CR_BREAKER_CLOSED = 0, CR_BREAKER_OPEN, CR_BREAKER_HALF_OPEN } cr_breaker_state_t;

typedef struct st_cr_breaker_conf_t {
    unsigned failures; /* consecutive failures that open a closed breaker; 0 means the default */
    uint64_t base_ms;  /* the first back-off; 0 means the default */
    uint64_t cap_ms;   /* the longest back-off; 0 means the default; raised to base_ms if smaller */
} cr_breaker_conf_t;

typedef struct st_cr_breaker_t {
    pthread_mutex_t mutex;
    cr_breaker_conf_t conf;    /* defaults filled in */
    cr_breaker_state_t state;  /* under mutex */
    unsigned failures;         /* consecutive failures while CLOSED */
    uint64_t backoff_ms;       /* the back-off of the current or next opening */
    uint64_t reopen_at;        /* OPEN: the clock value from which a probe is allowed */
    bool probe_out;            /* HALF_OPEN: the probe was let through and has not reported */
} cr_breaker_t;

/* A closed breaker; conf may be NULL for all defaults. */
void cr_breaker_init(cr_breaker_t *b, const cr_breaker_conf_t *conf);
void cr_breaker_dispose(cr_breaker_t *b);

/* May a request go to the server at `now`? Sets *changed (if not NULL) to whether this call changed the state
 * (OPEN -> HALF_OPEN; that caller is the probe). */
bool cr_breaker_allow(cr_breaker_t *b, uint64_t now, bool *changed);

/* Reports the outcome of a request cr_breaker_allow let through. Returns whether the state changed. */
bool cr_breaker_report(cr_breaker_t *b, uint64_t now, bool ok);

cr_breaker_state_t cr_breaker_state(cr_breaker_t *b);

/* The back-off the breaker is in (OPEN) or would use when it next opens, in ms. */
uint64_t cr_breaker_backoff_ms(cr_breaker_t *b);

/* "closed", "open", "half-open": for logs and metric labels. */
const char *cr_breaker_state_name(cr_breaker_state_t s);

#endif
