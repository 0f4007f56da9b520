/*
 * fixtures.h: shared builders for the unit suites (tests/unit/fixtures.c).
 */
#ifndef CORRAL_TEST_FIXTURES_H
#define CORRAL_TEST_FIXTURES_H

#include "corral/cache/object.h"

/* A finished object with a small header block (content-type), an optional variant (Vary: accept-encoding with this
 * variant key, or none when NULL) and a body of `bodylen` bytes of `fill`. */
cr_object_t *ts_make(const char *key, const char *variant, size_t bodylen, char fill);

#endif
