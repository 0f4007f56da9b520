/*
 * health.h: readiness (GET /readyz) and the active upstream health check behind it (upstream.health, issue 14/16).
 *
 * Ready means: every listener is up (the server says so once its workers have started them), the process is not
 * draining (cr_rt.stopping), and, when upstream.health is configured, the upstream has not failed
 * `unhealthy_after` checks in a row (it is healthy again after `healthy_after` good checks in a row). The checker is
 * one thread of its own (corral-health), off the workers' loops: it asks GET <path> of the upstream every
 * `interval` with a blocking socket bounded by `timeout`, and logs each change of state once. It reads the current
 * config generation every round, so a reload may add, change or remove the check.
 *
 * Locking: the state is one mutex-guarded struct in health.c, read by the admin thread (never a traffic worker).
 */
#ifndef CORRAL_HEALTH_H
#define CORRAL_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "corral/conf/config.h"

/* Returns the current config generation, retained (the checker releases it), or NULL. */
typedef const cr_config_t *(*cr_health_config_fn)(void);

/* Starts the checker thread (after the signal mask is set: it inherits it); it takes the config from `acquire` every
 * round. 0, or -1 when it cannot start. */
int cr_health_start(cr_health_config_fn acquire);
/* Stops and joins it (bounded by one check's timeout). Harmless when not started. */
void cr_health_stop(void);
/* The server: every listener is up (1), or not yet (0). */
void cr_health_set_serving(int serving);
/* 1 when ready; else 0 with a short reason code ("starting", "draining", "upstream_unhealthy") in *reason and a
 * sentence in detail (NUL-terminated, truncated to detailsize - 1). Any thread. */
int cr_health_ready(const char **reason, char *detail, size_t detailsize);
/* 1 while the upstream is taken as healthy (also when no check is configured), else 0: the active check failed, or
 * the passive breaker is open. Any thread. */
int cr_health_upstream_healthy(void);

/* The passive breaker (upstream.breaker, issue 16; see health.c): set once at start, before the workers run;
 * failures 0: no breaker. */
void cr_health_breaker_init(unsigned failures, uint64_t backoff_ms, uint64_t max_backoff_ms);
/* May a request go to the upstream now (monotonic ms)? 0 while the active check says unhealthy or the breaker is open,
 * except for the one half-open probe per backoff. Lock-free: the workers call it for every fill and pass. */
int cr_health_admit(uint64_t now_ms);
/* One upstream result: ok 0 for a connect error (refused, connect timeout, closed before any answer) or a 5xx head,
 * 1 for any other head. Lock-free while the breaker is closed and nothing failed. */
void cr_health_passive_result(int ok, uint64_t now_ms);
/* While requests fail fast (the upstream is unhealthy or the breaker open): the least time (ms) until one may go to
 * the upstream again, at monotonic now_ms: the good checks still needed times upstream.health.interval, or the wait
 * for the breaker's next half-open probe; 0 when nothing is known (or the upstream is admitted). Lock-free, any
 * thread. */
uint64_t cr_health_retry_after_ms(uint64_t now_ms);
/* Whether the breaker is open now, and how often it opened since start. Any thread. */
void cr_health_breaker_stats(int *open, uint64_t *opens);

#endif
