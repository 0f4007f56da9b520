/*
 * test_objbuild.c: unit tests for the part of sidecar/cache/objbuild.c that fill.c runs on the worker pool:
 * cr_fill_object_coded_copy makes, on another thread, a finished copy of a finished (shared) object with its gzip
 * and br bodies, leaving the source as it was; a body the route does not compress gets a copy without codings.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "corral/cache/objbuild.h"

void cr_test_register_objbuild(void);

#define TO_BODY_LEN (256u << 10)

typedef struct {
    const cr_route_config_t *route;
    const cr_object_t *src;
    cr_object_t *out;
} to_job_t;

static void *to_run(void *arg)
{
    to_job_t *j = arg;
    j->out = cr_fill_object_coded_copy(j->route, j->src);
    return NULL;
}

/* A finished object with a text body of TO_BODY_LEN bytes (compressible) and a header. */
static cr_object_t *to_object(const char *ctype)
{
    cr_object_t *obj = cr_fill_object_new(cr_str(H2O_STRLIT("example.com\n/x")), 200);
    char *body = malloc(TO_BODY_LEN);
    size_t i;
    CU_ASSERT_FATAL(obj != NULL && body != NULL);
    for (i = 0; i != TO_BODY_LEN; ++i)
        body[i] = "corral compresses text "[i % 23];
    CU_ASSERT_EQUAL(cr_object_add_header(obj, H2O_STRLIT("content-type"), ctype, strlen(ctype), 0), CR_OK);
    cr_object_set_body(obj, CR_ENC_IDENTITY, body, TO_BODY_LEN);
    return cr_object_finish(obj);
}

static cr_object_t *to_coded_on_a_thread(const cr_route_config_t *route, const cr_object_t *src)
{
    to_job_t j = {route, src, NULL};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, to_run, &j), 0);
    pthread_join(t, NULL);
    return j.out;
}

static void test_coded_copy_on_another_thread(void)
{
    char *types[] = {"text/*"};
    cr_route_config_t route;
    cr_object_t *src = to_object("text/plain"), *copy;
    cr_str_t id, gz;
    uLongf n = TO_BODY_LEN;
    unsigned char *dec = malloc(TO_BODY_LEN);
    z_stream zs;

    memset(&route, 0, sizeof(route));
    route.compress = 1;
    route.compress_types = types;
    route.num_compress_types = 1;
    route.compress_min_size = 256;
    route.compress_encodings = CR_ENC_BIT(CR_ENC_GZIP) | CR_ENC_BIT(CR_ENC_BR);
    route.brotli_quality = 5;
    route.gzip_level = 6;
    cr_object_addref(src); /* shared, as the stored result is */

    copy = to_coded_on_a_thread(&route, src);
    CU_ASSERT_FATAL(copy != NULL);
    CU_ASSERT(copy != src);
    CU_ASSERT(copy->cost != 0); /* finished */
    id = cr_object_body(copy, CR_ENC_IDENTITY);
    CU_ASSERT(id.len == TO_BODY_LEN && memcmp(id.base, cr_object_body(src, CR_ENC_IDENTITY).base, TO_BODY_LEN) == 0);
    CU_ASSERT(id.base != cr_object_body(src, CR_ENC_IDENTITY).base); /* its own bodies */
    CU_ASSERT_PTR_NOT_NULL(cr_object_body(copy, CR_ENC_BR).base);
    gz = cr_object_body(copy, CR_ENC_GZIP);
    CU_ASSERT_FATAL(gz.base != NULL && gz.len < TO_BODY_LEN);
    memset(&zs, 0, sizeof(zs));
    CU_ASSERT_FATAL(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK);
    zs.next_in = (Bytef *)gz.base;
    zs.avail_in = (uInt)gz.len;
    zs.next_out = dec;
    zs.avail_out = (uInt)n;
    CU_ASSERT_EQUAL(inflate(&zs, Z_FINISH), Z_STREAM_END);
    CU_ASSERT(zs.total_out == TO_BODY_LEN && memcmp(dec, id.base, TO_BODY_LEN) == 0);
    inflateEnd(&zs);
    CU_ASSERT_STRING_EQUAL(cr_object_find_header(copy, H2O_STRLIT("content-type")).base, "text/plain");
    /* the source is as it was: no codings, two references */
    CU_ASSERT_PTR_NULL(cr_object_body(src, CR_ENC_BR).base);
    CU_ASSERT_PTR_NULL(cr_object_body(src, CR_ENC_GZIP).base);
    CU_ASSERT_EQUAL(src->refcnt, 2);
    cr_object_release(&copy);

    /* a type the route does not compress: a finished copy without codings */
    {
        cr_object_t *extra = src; /* the reference taken above */
        cr_object_release(&extra);
    }
    cr_object_release(&src);
    src = to_object("image/png");
    copy = to_coded_on_a_thread(&route, src);
    CU_ASSERT_FATAL(copy != NULL);
    CU_ASSERT_EQUAL(cr_object_body(copy, CR_ENC_IDENTITY).len, TO_BODY_LEN);
    CU_ASSERT_PTR_NULL(cr_object_body(copy, CR_ENC_BR).base);
    CU_ASSERT_PTR_NULL(cr_object_body(copy, CR_ENC_GZIP).base);
    cr_object_release(&copy);
    cr_object_release(&src);
    free(dec);
}

void cr_test_register_objbuild(void)
{
    CU_pSuite s = CU_add_suite("objbuild", NULL, NULL);
    CU_add_test(s, "coded copy on another thread", test_coded_copy_on_another_thread);
}
