/*
 * test_object_oom.c: the allocation-failure paths of sidecar/cache/object.c. The file compiles object.c a second time, with
 * malloc and realloc replaced by test_oom_malloc / test_oom_realloc (which fail on request) and every external name
 * given an oom_ prefix, so this copy lives beside the library's without touching it. A name added to object.c and not
 * renamed here makes the link fail (defined twice), never a silent mix-up.
 *
 * What is checked: a failed builder call leaves the object as it was; a finish that cannot allocate the packed block
 * leaves a complete, readable loose object whose cost counts what it holds; every such object is freed exactly (ASan
 * and LSan check that when the suite runs under them).
 */
#include <CUnit/CUnit.h>
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int test_oom_fail_at = -1; /* the allocation (0 = the next one) that fails; -1: none */

static int test_oom_fails(void)
{
    if (test_oom_fail_at < 0)
        return 0;
    return test_oom_fail_at-- == 0;
}
static void *test_oom_malloc(size_t n)
{
    return test_oom_fails() ? NULL : malloc(n);
}
static void *test_oom_realloc(void *p, size_t n)
{
    return test_oom_fails() ? NULL : realloc(p, n);
}

#define malloc(n) test_oom_malloc(n)
#define realloc(p, n) test_oom_realloc(p, n)
#define cr_object_new oom_cr_object_new
#define cr_object_add_header oom_cr_object_add_header
#define cr_object_set_vary oom_cr_object_set_vary
#define cr_object_set_tags oom_cr_object_set_tags
#define cr_object_set_body oom_cr_object_set_body
#define cr_object_finish oom_cr_object_finish
#define cr_object_find_header oom_cr_object_find_header
#define cr_object_addref oom_cr_object_addref
#define cr_object_release oom_cr_object_release
#define cr_object__loose_header_index oom_cr_object__loose_header_index
#define cr_object__loose_vary oom_cr_object__loose_vary
#define cr_object__loose_body oom_cr_object__loose_body
#include "../../../sidecar/cache/object.c"
#undef malloc
#undef realloc

void cr_test_register_object_oom(void);

static char *test_oom_dup(const char *s)
{
    size_t len = strlen(s);
    char *p = malloc(len + 1);
    CU_ASSERT_FATAL(p != NULL);
    memcpy(p, s, len + 1);
    return p;
}

static void test_object_oom_builders(void)
{
    cr_str_t vary[] = {CR_STR("x-a")}, vary2[] = {CR_STR("x-b"), CR_STR("x-c")}, tags[] = {CR_STR("t1")}, tags2[] = {CR_STR("t2")};
    cr_object_t *obj;
    size_t i;

    test_oom_fail_at = 0;
    CU_ASSERT_PTR_NULL(cr_object_new("k", 1, 200));
    CU_ASSERT_EQUAL(test_oom_fail_at, -1); /* the failure was consumed */

    obj = cr_object_new("k", 1, 200);
    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "a", 1, "1", 1, 0), CR_OK);
    /* the strings cannot grow: nothing changes; then a header that needs no allocation goes in despite the failure
     * armed for the next one */
    for (i = 0; i != 2; ++i) {
        char big[300];
        memset(big, 'v', sizeof(big));
        test_oom_fail_at = 0;
        CU_ASSERT_EQUAL(cr_object_add_header(obj, "etag", 4, big, i == 0 ? sizeof(big) : 1, 0), i == 0 ? CR_ERROR : CR_OK);
    }
    CU_ASSERT_EQUAL(obj->num_headers, 2);
    CU_ASSERT_EQUAL(test_oom_fail_at, 0); /* still armed: nothing was allocated */
    test_oom_fail_at = -1;
    for (i = 2; i != 16; ++i)
        CU_ASSERT_EQUAL(cr_object_add_header(obj, "h", 1, "v", 1, 0), CR_OK);
    test_oom_fail_at = 0; /* the index is full (16): growing it fails */
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "x", 1, "y", 1, 0), CR_ERROR);
    CU_ASSERT_EQUAL(obj->num_headers, 16);
    CU_ASSERT_EQUAL(obj->header_bytes, 4 + 7 + 14 * 4);
    CU_ASSERT(cr_str_eq(cr_object_etag(obj), "v", 1));

    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary, 1, "x-a:1\n", 6), CR_OK);
    test_oom_fail_at = 0;
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary2, 2, "x-b:2\nx-c:3\n", 12), CR_ERROR);
    CU_ASSERT_EQUAL(obj->num_vary, 1);
    CU_ASSERT(cr_str_eq(cr_object_variant_key(obj), "x-a:1\n", 6));

    CU_ASSERT_EQUAL(cr_object_set_tags(obj, tags, 1), CR_OK);
    for (i = 0; i != 3; ++i) { /* each of set_tags' three allocations failing */
        test_oom_fail_at = (int)i;
        CU_ASSERT_EQUAL(cr_object_set_tags(obj, tags2, 1), CR_ERROR);
        CU_ASSERT_EQUAL(obj->num_tags, 1);
        CU_ASSERT(cr_str_eq(obj->tags[0].name, "t1", 2));
    }
    test_oom_fail_at = -1;
    cr_object_release(&obj);
}

/* A finish that cannot allocate the packed block: the object stays loose, complete and counted. */
static void test_object_oom_finish(void)
{
    cr_str_t vary[] = {CR_STR("X-Tenant")}, tags[] = {CR_STR("user-1"), CR_STR("all")};
    cr_object_t *obj = cr_object_new("key", 3, 200), *finished, *ref;
    const cr_object_builder_t *b;
    size_t expect;

    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "Content-Type", 12, "text/plain", 10, 9), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "ETag", 4, "\"e\"", 3, 0), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary, 1, "x-tenant:acme\n", 14), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_tags(obj, tags, 2), CR_OK);
    cr_object_set_body(obj, CR_ENC_GZIP, test_oom_dup("gz"), 2);
    b = &cr_object_loose(obj)->b;
    expect = sizeof(cr_object_loose_t) + 3 + 1 + b->index_cap * sizeof(cr_object_hdr_t) + b->strings_cap + b->vary_bytes +
             b->tags_bytes + 2;

    test_oom_fail_at = 0;
    finished = cr_object_finish(obj);
    CU_ASSERT_EQUAL(test_oom_fail_at, -1);
    CU_ASSERT_PTR_EQUAL(finished, obj); /* not moved */
    CU_ASSERT(!cr_object_is_packed(finished));
    CU_ASSERT_EQUAL(finished->cost, expect);
    CU_ASSERT(cr_str_eq(cr_object_key(finished), "key", 3));
    CU_ASSERT_EQUAL(finished->num_headers, 2);
    CU_ASSERT(cr_str_eq(cr_object_header_name(finished, 0), "content-type", 12));
    CU_ASSERT(cr_str_eq(cr_object_header_value(finished, 0), "text/plain", 10));
    CU_ASSERT_EQUAL(cr_object_header_token(finished, 0), 9);
    CU_ASSERT(cr_str_eq(cr_object_etag(finished), "\"e\"", 3));
    CU_ASSERT(cr_str_eq(cr_object_find_header(finished, "etag", 4), "\"e\"", 3));
    CU_ASSERT(cr_str_eq(cr_object_vary_names(finished)[0], "x-tenant", 8));
    CU_ASSERT(cr_str_eq(cr_object_variant_key(finished), "x-tenant:acme\n", 14));
    CU_ASSERT_EQUAL(finished->num_tags, 2);
    CU_ASSERT_PTR_EQUAL(finished->tags[1].owner, finished);
    CU_ASSERT(cr_str_eq(finished->tags[1].name, "all", 3));
    CU_ASSERT_PTR_NOT_NULL(cr_object_body(finished, CR_ENC_IDENTITY).base); /* the empty identity body */
    CU_ASSERT_EQUAL(cr_object_body(finished, CR_ENC_IDENTITY).len, 0);
    CU_ASSERT(cr_str_eq(cr_object_body(finished, CR_ENC_GZIP), "gz", 2));
    CU_ASSERT_PTR_NULL(cr_object_body(finished, CR_ENC_BR).base);

    /* shared like any finished object; the last release frees every loose part */
    ref = finished;
    cr_object_addref(ref);
    cr_object_release(&finished);
    CU_ASSERT(cr_str_eq(cr_object_body(ref, CR_ENC_GZIP), "gz", 2));
    cr_object_release(&ref);

    /* the same object with memory to spare packs, and holds the same data */
    obj = cr_object_new("key", 3, 200);
    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "ETag", 4, "\"e\"", 3, 0), CR_OK);
    obj = cr_object_finish(obj);
    CU_ASSERT(cr_object_is_packed(obj));
    CU_ASSERT(cr_str_eq(cr_object_etag(obj), "\"e\"", 3));
    cr_object_release(&obj);
}

void cr_test_register_object_oom(void)
{
    CU_pSuite suite = CU_add_suite("object (allocation failures)", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "builder calls fail cleanly", test_object_oom_builders);
    CU_add_test(suite, "finish without memory stays loose", test_object_oom_finish);
}
