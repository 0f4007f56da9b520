/*
 * test_object.c: unit tests for sidecar/object.c (building, lookups, cost accounting, refcounting) and the inline
 * freshness helpers of object.h, driven by a fake clock. Frees are verified by running under ASan/LSan: every test
 * drops its last reference, so a leak or a use-after-free fails the run.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "corral/object.h"

void cr_test_register_object(void);

static char *test_dup(const char *s, size_t len)
{
    char *p = malloc(len != 0 ? len : 1);
    CU_ASSERT_FATAL(p != NULL);
    if (len != 0)
        memcpy(p, s, len);
    return p;
}

static char *test_body(size_t len, char fill)
{
    char *p = malloc(len != 0 ? len : 1);
    CU_ASSERT_FATAL(p != NULL);
    memset(p, fill, len);
    return p;
}

/* Is p inside the object's header storage (some header's name or value)? */
static int test_points_into_headers(const cr_object_t *obj, const char *p)
{
    size_t i;
    for (i = 0; i != obj->num_headers; ++i)
        if (p == obj->headers[i].value.base || p == obj->headers[i].name.base)
            return 1;
    return 0;
}

static void test_object_build(void)
{
    static const char key[] = "example.com\n/a?b=1\n";
    static const int token_a, token_b;
    cr_str_t vary[] = {CR_STR("Accept-Encoding"), CR_STR("x-device")};
    cr_object_t *obj = cr_object_new(key, sizeof(key) - 1, 200);
    cr_str_t v;

    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(obj->magic, CR_OBJECT_MAGIC);
    CU_ASSERT_EQUAL(obj->refcnt, 1);
    CU_ASSERT_EQUAL(obj->status, 200);
    CU_ASSERT(obj->key.base != key);
    CU_ASSERT(cr_str_eq(obj->key, key, sizeof(key) - 1));
    CU_ASSERT_EQUAL(obj->key.base[obj->key.len], '\0');
    CU_ASSERT_EQUAL(obj->hash, cr_hash(key, sizeof(key) - 1));
    CU_ASSERT_EQUAL(obj->variant_key.len, 0);
    CU_ASSERT_EQUAL(obj->num_vary, 0);

    CU_ASSERT_EQUAL(cr_object_add_header(obj, "Content-Type", 12, "text/html", 9, &token_a), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "ETag", 4, "\"v1\"", 4, NULL), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "Last-Modified", 13, "Sun, 06 Nov 1994 08:49:37 GMT", 29, NULL), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "x-multi", 7, "one", 3, &token_b), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "X-Multi", 7, "two", 3, &token_b), CR_OK);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "x-empty", 7, "", 0, NULL), CR_OK);
    /* usable before finish too */
    CU_ASSERT(cr_str_eq(cr_object_find_header(obj, "content-type", 12), "text/html", 9));

    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary, 2, "accept-encoding:gzip\nx-device:mobile\n", 37), CR_OK);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("hello world", 11), 11);
    cr_object_set_body(obj, CR_ENC_GZIP, test_dup("gz", 2), 2);
    CU_ASSERT_EQUAL(obj->cost, 0);
    cr_object_finish(obj);

    CU_ASSERT_EQUAL(obj->num_headers, 6);
    CU_ASSERT(cr_str_eq(obj->headers[0].name, "content-type", 12));
    CU_ASSERT_EQUAL(obj->headers[0].name.base[12], '\0');
    CU_ASSERT(cr_str_eq(obj->headers[0].value, "text/html", 9));
    CU_ASSERT_EQUAL(obj->headers[0].value.base[9], '\0');
    CU_ASSERT_PTR_EQUAL(obj->headers[0].token, &token_a);
    CU_ASSERT(cr_str_eq(obj->headers[1].name, "etag", 4));
    CU_ASSERT(cr_str_eq(obj->headers[2].name, "last-modified", 13));
    CU_ASSERT(cr_str_eq(obj->headers[4].name, "x-multi", 7));
    CU_ASSERT_PTR_EQUAL(obj->headers[4].token, &token_b);
    CU_ASSERT_PTR_NULL(obj->headers[1].token);

    v = cr_object_find_header(obj, "x-multi", 7);
    CU_ASSERT(cr_str_eq(v, "one", 3)); /* the first one */
    v = cr_object_find_header(obj, "x-empty", 7);
    CU_ASSERT_PTR_NOT_NULL(v.base);
    CU_ASSERT_EQUAL(v.len, 0);
    v = cr_object_find_header(obj, "x-missing", 9);
    CU_ASSERT_PTR_NULL(v.base);
    CU_ASSERT_EQUAL(v.len, 0);
    v = cr_object_find_header(obj, "Content-Type", 12); /* names are looked up lower-case only */
    CU_ASSERT_PTR_NULL(v.base);

    CU_ASSERT(cr_str_eq(obj->etag, "\"v1\"", 4));
    CU_ASSERT_PTR_EQUAL(obj->etag.base, obj->headers[1].value.base);
    CU_ASSERT(test_points_into_headers(obj, obj->etag.base));
    CU_ASSERT(cr_str_eq(cr_object_find_header(obj, "last-modified", 13), "Sun, 06 Nov 1994 08:49:37 GMT", 29));
    CU_ASSERT_PTR_EQUAL(cr_object_find_header(obj, "last-modified", 13).base, obj->headers[2].value.base);

    CU_ASSERT_EQUAL(obj->num_vary, 2);
    CU_ASSERT(cr_str_eq(obj->vary_names[0], "accept-encoding", 15));
    CU_ASSERT(cr_str_eq(obj->vary_names[1], "x-device", 8));
    CU_ASSERT(cr_str_eq(obj->variant_key, "accept-encoding:gzip\nx-device:mobile\n", 37));

    CU_ASSERT(cr_str_eq(obj->bodies[CR_ENC_IDENTITY], "hello world", 11));
    CU_ASSERT(cr_str_eq(obj->bodies[CR_ENC_GZIP], "gz", 2));
    CU_ASSERT_PTR_NULL(obj->bodies[CR_ENC_BR].base);
    CU_ASSERT(obj->cost >= sizeof(cr_object_t) + obj->key.len + 11 + 2 + 37 + 15 + 8 + 12 + 9 + 4 + 4 + 13 + 29);

    cr_object_release(&obj);
    CU_ASSERT_PTR_NULL(obj);
}

static void test_object_minimal(void)
{
    cr_object_t *obj = cr_object_new(NULL, 0, 404);

    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_IDENTITY, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL(obj->bodies[CR_ENC_IDENTITY].base); /* set, empty */
    cr_object_finish(obj);
    CU_ASSERT_EQUAL(obj->key.len, 0);
    CU_ASSERT_PTR_NOT_NULL(obj->key.base);
    CU_ASSERT_EQUAL(obj->num_headers, 0);
    CU_ASSERT_PTR_NULL(obj->etag.base);
    CU_ASSERT_PTR_NULL(cr_object_find_header(obj, "last-modified", 13).base);
    CU_ASSERT_PTR_NOT_NULL(obj->bodies[CR_ENC_IDENTITY].base);
    CU_ASSERT_EQUAL(obj->bodies[CR_ENC_IDENTITY].len, 0);
    CU_ASSERT_PTR_NULL(obj->bodies[CR_ENC_GZIP].base);
    CU_ASSERT_EQUAL(obj->num_vary, 0);
    CU_ASSERT_PTR_NULL(obj->vary_names);
    CU_ASSERT_EQUAL(obj->variant_key.len, 0);
    CU_ASSERT(obj->cost >= sizeof(cr_object_t));
    cr_object_release(&obj);

    /* no set_body at all: identity is still an empty, non-NULL body */
    obj = cr_object_new("k", 1, 204);
    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_PTR_NULL(obj->bodies[CR_ENC_IDENTITY].base); /* "not set yet" is visible to the builder */
    cr_object_finish(obj);
    CU_ASSERT_PTR_NOT_NULL(obj->bodies[CR_ENC_IDENTITY].base);
    CU_ASSERT_EQUAL(obj->bodies[CR_ENC_IDENTITY].len, 0);
    cr_object_release(&obj);

    /* releasing NULL is a no-op */
    cr_object_release(&obj);
    CU_ASSERT_PTR_NULL(obj);
}

/* Many headers: forces the header array and the string arena to grow (and rebase) several times. */
static void test_object_many_headers(void)
{
    cr_object_t *obj = cr_object_new("many", 4, 200);
    char name[32], value[300];
    size_t i;

    CU_ASSERT_FATAL(obj != NULL);
    for (i = 0; i != 500; ++i) {
        int nlen = snprintf(name, sizeof(name), "X-Header-%zu", i);
        size_t vlen = i % 257;
        memset(value, 'a' + (int)(i % 26), vlen);
        CU_ASSERT_EQUAL_FATAL(cr_object_add_header(obj, name, (size_t)nlen, value, vlen, NULL), CR_OK);
        if (i == 250)
            CU_ASSERT_EQUAL(cr_object_find_header(obj, "x-header-7", 10).len, 7);
    }
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "etag", 4, "W/\"x\"", 5, NULL), CR_OK);
    cr_object_finish(obj);
    CU_ASSERT_EQUAL(obj->num_headers, 501);
    for (i = 0; i != 500; ++i) {
        int nlen = snprintf(name, sizeof(name), "x-header-%zu", i);
        cr_str_t v = cr_object_find_header(obj, name, (size_t)nlen);
        size_t j, ok = 1;
        CU_ASSERT_EQUAL(v.len, i % 257);
        for (j = 0; j != v.len; ++j)
            ok &= v.base[j] == 'a' + (int)(i % 26);
        CU_ASSERT(ok);
        CU_ASSERT(cr_str_eq(obj->headers[i].name, name, (size_t)nlen));
    }
    CU_ASSERT(cr_str_eq(obj->etag, "W/\"x\"", 5));
    CU_ASSERT_PTR_EQUAL(obj->etag.base, obj->headers[500].value.base);
    cr_object_release(&obj);
}

/* Builds a standard object, with `grow` extra bytes added to the part selected by `what`. */
enum { GROW_KEY, GROW_NAME, GROW_VALUE, GROW_VARY_NAME, GROW_VARIANT_KEY, GROW_BODY, GROW_GZIP, GROW_BR, GROW_MAX };

static size_t test_cost_of(int what, size_t grow)
{
    char buf[4096];
    size_t base = 20, i, cost;
    cr_str_t vary[2];
    cr_object_t *obj;

    assert(base + grow <= sizeof(buf));
    memset(buf, 'x', sizeof(buf));
    obj = cr_object_new(buf, base + (what == GROW_KEY ? grow : 0), 200);
    CU_ASSERT_FATAL(obj != NULL);
    for (i = 0; i != 10; ++i)
        CU_ASSERT(cr_object_add_header(obj, buf, base + (what == GROW_NAME && i == 3 ? grow : 0), buf,
                                       base + (what == GROW_VALUE && i == 7 ? grow : 0), NULL) == CR_OK);
    vary[0] = cr_str(buf, base);
    vary[1] = cr_str(buf, base + (what == GROW_VARY_NAME ? grow : 0));
    CU_ASSERT(cr_object_set_vary(obj, vary, 2, buf, base + (what == GROW_VARIANT_KEY ? grow : 0)) == CR_OK);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_body(base + (what == GROW_BODY ? grow : 0), 'b'),
                       base + (what == GROW_BODY ? grow : 0));
    cr_object_set_body(obj, CR_ENC_GZIP, test_body(base + (what == GROW_GZIP ? grow : 0), 'g'),
                       base + (what == GROW_GZIP ? grow : 0));
    if (what == GROW_BR)
        cr_object_set_body(obj, CR_ENC_BR, test_body(grow, 'r'), grow);
    cr_object_finish(obj);
    cost = obj->cost;
    cr_object_release(&obj);
    return cost;
}

static void test_object_cost(void)
{
    static const size_t grows[] = {1, 7, 100, 1000, 3000};
    size_t base_cost = test_cost_of(GROW_MAX, 0), g;
    int what;

    /* 10 headers x (20 + 20), key 20, 2 vary names x 20, variant key 20, two bodies x 20: all counted */
    CU_ASSERT(base_cost >= sizeof(cr_object_t) + 20 + 10 * 40 + 10 * sizeof(cr_object_header_t) + 2 * 20 +
                               2 * sizeof(cr_str_t) + 20 + 2 * 20);
    CU_ASSERT_EQUAL(test_cost_of(GROW_MAX, 0), base_cost); /* deterministic */
    for (what = 0; what != GROW_MAX; ++what) {
        for (g = 0; g != CR_ARRAY_SIZE(grows); ++g) {
            size_t c = test_cost_of(what, grows[g]);
            CU_ASSERT(c >= base_cost + grows[g]);
            /* and not wildly more: cost reflects what is allocated, not some capacity rounding of the whole */
            CU_ASSERT(c <= base_cost + grows[g] + 64);
        }
    }
}

static void test_object_replace_parts(void)
{
    cr_str_t vary1[] = {CR_STR("a"), CR_STR("b")}, vary2[] = {CR_STR("C")};
    cr_object_t *obj = cr_object_new("k", 1, 200);

    CU_ASSERT_FATAL(obj != NULL);
    /* setting a body or Vary twice frees the first (ASan would report the leak) */
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("first", 5), 5);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("second", 6), 6);
    cr_object_set_body(obj, CR_ENC_BR, test_dup("br1", 3), 3);
    cr_object_set_body(obj, CR_ENC_BR, test_dup("br22", 4), 4);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary1, 2, "a:1\nb:2\n", 8), CR_OK);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary2, 1, "c:3\n", 4), CR_OK);
    cr_object_finish(obj);
    CU_ASSERT(cr_str_eq(obj->bodies[CR_ENC_IDENTITY], "second", 6));
    CU_ASSERT(cr_str_eq(obj->bodies[CR_ENC_BR], "br22", 4));
    CU_ASSERT_EQUAL(obj->num_vary, 1);
    CU_ASSERT(cr_str_eq(obj->vary_names[0], "c", 1));
    CU_ASSERT(cr_str_eq(obj->variant_key, "c:3\n", 4));
    cr_object_release(&obj);

    /* an unfinished object can be released (error paths in the handler) */
    obj = cr_object_new("unfinished", 10, 200);
    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_EQUAL(cr_object_add_header(obj, "a", 1, "b", 1, NULL), CR_OK);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("body", 4), 4);
    CU_ASSERT_EQUAL(cr_object_set_vary(obj, vary1, 2, "a:1\nb:2\n", 8), CR_OK);
    cr_object_release(&obj);
    CU_ASSERT_PTR_NULL(obj);
}

static void test_object_refcount(void)
{
    cr_object_t *obj = cr_object_new("rc", 2, 200), *r1, *r2;

    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("payload", 7), 7);
    cr_object_finish(obj);
    r1 = obj;
    cr_object_addref(r1);
    r2 = obj;
    cr_object_addref(r2);
    CU_ASSERT_EQUAL(obj->refcnt, 3);
    cr_object_release(&r1);
    CU_ASSERT_PTR_NULL(r1);
    CU_ASSERT_EQUAL(obj->refcnt, 2);
    cr_object_release(&obj);
    CU_ASSERT_PTR_NULL(obj);
    /* still readable through the last reference */
    CU_ASSERT_EQUAL(r2->refcnt, 1);
    CU_ASSERT(cr_str_eq(r2->bodies[CR_ENC_IDENTITY], "payload", 7));
    cr_object_release(&r2); /* frees: ASan/LSan report a leak or a double free otherwise */
    CU_ASSERT_PTR_NULL(r2);
}

#define TEST_RC_THREADS 4
#define TEST_RC_ITERS 50000

static void *test_refcount_thread(void *arg)
{
    cr_object_t *obj = arg;
    int i;
    for (i = 0; i != TEST_RC_ITERS; ++i) {
        cr_object_t *ref = obj;
        cr_object_addref(ref);
        if (ref->bodies[CR_ENC_IDENTITY].len != 4)
            abort();
        cr_object_release(&ref);
    }
    cr_object_release(&obj); /* the reference the main thread gave this thread */
    return NULL;
}

static void test_object_refcount_threads(void)
{
    pthread_t threads[TEST_RC_THREADS];
    cr_object_t *obj = cr_object_new("mt", 2, 200);
    int i;

    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("data", 4), 4);
    cr_object_finish(obj);
    for (i = 0; i != TEST_RC_THREADS; ++i) {
        cr_object_addref(obj);
        CU_ASSERT_FATAL(pthread_create(&threads[i], NULL, test_refcount_thread, obj) == 0);
    }
    for (i = 0; i != TEST_RC_THREADS; ++i)
        pthread_join(threads[i], NULL);
    CU_ASSERT_EQUAL(obj->refcnt, 1);
    cr_object_release(&obj);

    /* the last release happening on a worker thread frees there */
    obj = cr_object_new("mt2", 3, 200);
    CU_ASSERT_FATAL(obj != NULL);
    cr_object_set_body(obj, CR_ENC_IDENTITY, test_dup("data", 4), 4);
    cr_object_finish(obj);
    for (i = 0; i != TEST_RC_THREADS; ++i) {
        cr_object_addref(obj);
        CU_ASSERT_FATAL(pthread_create(&threads[i], NULL, test_refcount_thread, obj) == 0);
    }
    cr_object_release(&obj);
    for (i = 0; i != TEST_RC_THREADS; ++i)
        pthread_join(threads[i], NULL);
}

static void test_object_freshness(void)
{
    uint64_t t0 = 1700000000000ull; /* fake clock */
    cr_object_t *obj = cr_object_new("fresh", 5, 200);

    CU_ASSERT_FATAL(obj != NULL);
    cr_object_finish(obj);
    obj->response_time_ms = t0;
    obj->initial_age_ms = 5000;
    obj->lifetime_ms = 60000;

    CU_ASSERT_EQUAL(cr_object_age_ms(obj, t0), 5000);
    CU_ASSERT_EQUAL(cr_object_age_ms(obj, t0 + 1234), 6234);
    CU_ASSERT_EQUAL(cr_object_age_ms(obj, t0 - 1000), 5000); /* clock went backwards: no negative residence */
    CU_ASSERT(cr_object_is_fresh(obj, t0));
    CU_ASSERT(cr_object_is_fresh(obj, t0 + 54999)); /* age 59999 < 60000 */
    CU_ASSERT(!cr_object_is_fresh(obj, t0 + 55000)); /* age == lifetime: stale */
    CU_ASSERT(!cr_object_is_fresh(obj, t0 + 3600000));

    obj->flags = CR_OBJ_NO_CACHE;
    CU_ASSERT(!cr_object_is_fresh(obj, t0));
    obj->flags = CR_OBJ_INVALIDATED;
    CU_ASSERT(!cr_object_is_fresh(obj, t0));
    obj->flags = CR_OBJ_MUST_REVALIDATE | CR_OBJ_FORCED;
    CU_ASSERT(cr_object_is_fresh(obj, t0));

    obj->flags = 0;
    obj->lifetime_ms = 0; /* stored stale */
    CU_ASSERT(!cr_object_is_fresh(obj, t0));
    obj->initial_age_ms = 0;
    CU_ASSERT(!cr_object_is_fresh(obj, t0));
    cr_object_release(&obj);
}

void cr_test_register_object(void)
{
    CU_pSuite suite = CU_add_suite("object", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "build", test_object_build);
    CU_add_test(suite, "minimal", test_object_minimal);
    CU_add_test(suite, "many headers", test_object_many_headers);
    CU_add_test(suite, "cost counts every part", test_object_cost);
    CU_add_test(suite, "replace parts", test_object_replace_parts);
    CU_add_test(suite, "refcount", test_object_refcount);
    CU_add_test(suite, "refcount threads", test_object_refcount_threads);
    CU_add_test(suite, "freshness (fake clock)", test_object_freshness);
}
