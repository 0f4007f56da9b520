/*
 * purge.h: the PURGE method on the traffic port, as Varnish and nginx users send it (`curl -X PURGE URL`).
 *
 * Off unless cache.purge_from lists client networks; then a PURGE from one of them invalidates every object stored
 * for its path (every variant and query: the admin API's "keys"), through cr_invalidate (so the other pods hear of
 * it), and is answered 200 in the admin purge's JSON shape; from anywhere else it is refused with 403. Never sent
 * upstream when on.
 */
#ifndef CORRAL_SERVE_PURGE_H
#define CORRAL_SERVE_PURGE_H

#include <h2o.h>

#include "corral/conf/config.h"

/* Answers req when it is a PURGE and cfg turns the method on: returns 1 (answered), else 0 (handle it as usual). */
int cr_purge_method_try(h2o_req_t *req, const cr_config_t *cfg);

#endif
