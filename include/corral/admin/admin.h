/*
 * admin.h: the admin listener's handlers (health, metrics). Runs on worker 0's loop with its own h2o context.
 * Authentication: a bearer token (compared in constant time) when one is configured; otherwise only loopback
 * clients are served.
 */
#ifndef CORRAL_ADMIN_H
#define CORRAL_ADMIN_H

#include <h2o.h>

void cr_admin_register(h2o_hostconf_t *hostconf);

#endif
