/*
 * admin.h: the admin listener's handler (health, metrics, purge, inspect: admin.c routes to each). It runs on the
 * admin thread, with its own loop and h2o context (server.c), never on a traffic worker. Authentication: a bearer
 * token (compared in constant time) when one is configured; otherwise only loopback clients are served.
 */
#ifndef CORRAL_ADMIN_H
#define CORRAL_ADMIN_H

#include <h2o.h>

void cr_admin_register(h2o_hostconf_t *hostconf);

#endif
