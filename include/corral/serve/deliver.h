/*
 * deliver.h: what a request that waited for a flight gets, once the flight reports its outcome (flight.h).
 *
 * cr_deliver is the cr_flight_answer_cb every waiting request registers (its context is the request's cr_lookup_t):
 * it answers from the object, passes, sends the JSON error, or looks the request up again, and writes the
 * Cache-Status text and the counters that belong to the answer. Runs on the request's own thread.
 */
#ifndef CORRAL_DELIVER_H
#define CORRAL_DELIVER_H

#include "corral/fill/flight.h"

/* cr_flight_answer_cb; `lk` is the waiting request's cr_lookup_t. */
void cr_deliver(void *lk, const cr_flight_outcome_t *outcome);

#endif
