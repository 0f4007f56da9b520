/*
 * fixtures.c: objects the store, EBR and pin suites build alike (see fixtures.h). Test code only; CUnit's fatal
 * asserts stop the test on an allocation failure.
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>

#include "fixtures.h"

/* A finished object with a small header block, an optional variant and a body of `bodylen` bytes of `fill`. */
cr_object_t *ts_make(const char *key, const char *variant, size_t bodylen, char fill)
{
    cr_object_t *obj = cr_object_new(key, strlen(key), 200);
    char *body;

    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_FATAL(cr_object_add_header(obj, "content-type", 12, "text/plain", 10, 0) == CR_OK);
    if (variant != NULL) {
        cr_str_t names[] = {CR_STR("accept-encoding")};
        CU_ASSERT_FATAL(cr_object_set_vary(obj, names, 1, variant, strlen(variant)) == CR_OK);
    }
    CU_ASSERT_FATAL((body = malloc(bodylen + 1)) != NULL);
    memset(body, fill, bodylen);
    cr_object_set_body(obj, CR_ENC_IDENTITY, body, bodylen);
    return cr_object_finish(obj);
}
