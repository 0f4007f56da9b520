/*
 * urlpath.h: the match form of a request path, what routes are matched on (conf/route.c) and what the config holds
 * its route paths in (conf/config_routes.c).
 *
 * Pure functions: no allocation, no locks, no global state. Output goes to the caller's buffer only.
 */
#ifndef CORRAL_URLPATH_H
#define CORRAL_URLPATH_H

#include "corral/core/common.h"

/*
 * The form of a path (up to '?') that routes are matched on (see urlpath.c): escapes of unreserved bytes, '/' and ';'
 * decoded, ";params" dropped from each segment, empty and "." segments dropped, no trailing '/', case kept.
 * *ambiguous (may be NULL) is set to 1 when an upstream could read the path in more than one way ("..", a backslash,
 * an invalid or double escape, an encoded control byte): callers must not cache such requests. Returns the length,
 * or -1 when the path does not start with '/', holds a control byte or a space, or does not fit.
 */
int cr_urlpath_match_form(cr_str_t path, char *buf, size_t bufsize, int *ambiguous);

#endif
