/*
 * test_flight.c: unit tests for the flight table (sidecar/fill/flight.c) without a server: shells, find, insert and
 * unlink (hash collisions in one bucket included), joining up to max_waiters, and reference counts down to the
 * free (checked for leaks and use-after-free under ASan). The primitives are the ones cr_flight_join uses, called
 * with the table mutex held as they require, and cr_flight_join's decisions that add no waiter (cr_rt.flights points at
 * the test's table meanwhile).
 */
#include <CUnit/CUnit.h>
#include <pthread.h>

#include "../../../sidecar/fill/flight_int.h"

void cr_test_register_flight(void);

#define NTHREADS 4

static cr_thread_t fake_threads[NTHREADS];
static cr_route_config_t fake_route;

static cr_fill_req_t make_req(const char *key, uint64_t hash)
{
    cr_fill_req_t fr = {0};
    fr.route = &fake_route;
    fr.key = (char *)key;
    fr.keylen = strlen(key);
    fr.hash = hash;
    return fr;
}

static cr_flight_t *find(cr_flight_table_t *table, const char *key, uint64_t hash)
{
    cr_flight_t *f;
    pthread_mutex_lock(&table->mutex);
    f = cr_flight_do_find(table, key, strlen(key), hash);
    pthread_mutex_unlock(&table->mutex);
    return f;
}

static void setup_threads(void)
{
    unsigned i;
    for (i = 0; i != NTHREADS; ++i) {
        fake_threads[i].magic = CR_THREAD_MAGIC;
        fake_threads[i].idx = i;
    }
}

static void test_shell(void)
{
    cr_fill_req_t fr = make_req("example.com\n/a", 42);
    cr_flight_t *f;
    unsigned i;

    setup_threads();
    CU_ASSERT_FATAL((f = cr_flight_shell_new(&fake_threads[1], NTHREADS, &fr)) != NULL);
    CU_ASSERT_EQUAL(f->refcnt, 1);
    CU_ASSERT_EQUAL(f->keylen, fr.keylen);
    CU_ASSERT_EQUAL(memcmp(f->key, fr.key, fr.keylen + 1), 0);
    CU_ASSERT_PTR_NOT_EQUAL(f->key, fr.key); /* its own copy: the request's pool may go first */
    CU_ASSERT_EQUAL(f->hash, 42);
    CU_ASSERT_PTR_EQUAL(f->owner, &fake_threads[1]);
    CU_ASSERT_FALSE(f->in_table);
    CU_ASSERT_FALSE(f->background);
    CU_ASSERT_EQUAL(f->num_waiters, 0);
    CU_ASSERT_EQUAL(f->live_waiters, 0);
    for (i = 0; i != NTHREADS; ++i) {
        CU_ASSERT_FALSE(f->has_waiters[i]);
        CU_ASSERT_TRUE(h2o_linklist_is_empty(&f->waiters[i]));
    }
    cr_flight_release(&f);
    CU_ASSERT_PTR_NULL(f);
}

static void test_find_insert_unlink(void)
{
    cr_flight_table_t *table = cr_flight_table_new(NTHREADS);
    cr_fill_req_t a = make_req("example.com\n/a", 7), b = make_req("example.com\n/b", 7 + CR_FLIGHT_TABLE_BUCKETS),
                  c = make_req("example.com\n/c", 7);
    cr_flight_t *fa, *fb, *fc;

    setup_threads();
    CU_ASSERT_FATAL(table != NULL);
    CU_ASSERT_EQUAL(table->nthreads, NTHREADS);
    CU_ASSERT_PTR_NULL(find(table, a.key, a.hash));
    CU_ASSERT_FATAL((fa = cr_flight_shell_new(&fake_threads[0], NTHREADS, &a)) != NULL);
    CU_ASSERT_FATAL((fb = cr_flight_shell_new(&fake_threads[1], NTHREADS, &b)) != NULL);
    CU_ASSERT_FATAL((fc = cr_flight_shell_new(&fake_threads[2], NTHREADS, &c)) != NULL);

    pthread_mutex_lock(&table->mutex);
    cr_flight_do_insert(table, fa);
    cr_flight_do_insert(table, fb); /* same bucket, other hash */
    cr_flight_do_insert(table, fc); /* same bucket and hash, other key */
    pthread_mutex_unlock(&table->mutex);
    CU_ASSERT_TRUE(fa->in_table && fb->in_table && fc->in_table);
    CU_ASSERT_PTR_EQUAL(find(table, a.key, a.hash), fa);
    CU_ASSERT_PTR_EQUAL(find(table, b.key, b.hash), fb);
    CU_ASSERT_PTR_EQUAL(find(table, c.key, c.hash), fc);
    CU_ASSERT_PTR_NULL(find(table, a.key, b.hash)); /* the hash must match too */
    CU_ASSERT_PTR_NULL(find(table, "example.com\n/", a.hash)); /* a prefix is another key */
    CU_ASSERT_PTR_NULL(find(table, "example.com\n/d", a.hash));

    /* unlinking from the middle, the head and the tail of the chain keeps the others */
    pthread_mutex_lock(&table->mutex);
    cr_flight_do_unlink(table, fb);
    pthread_mutex_unlock(&table->mutex);
    CU_ASSERT_FALSE(fb->in_table);
    CU_ASSERT_PTR_NULL(find(table, b.key, b.hash));
    CU_ASSERT_PTR_EQUAL(find(table, a.key, a.hash), fa);
    CU_ASSERT_PTR_EQUAL(find(table, c.key, c.hash), fc);
    pthread_mutex_lock(&table->mutex);
    cr_flight_do_unlink(table, fc);
    cr_flight_do_unlink(table, fa);
    pthread_mutex_unlock(&table->mutex);
    CU_ASSERT_PTR_NULL(find(table, a.key, a.hash));
    CU_ASSERT_PTR_NULL(find(table, c.key, c.hash));

    /* a key inserted again after its flight left is a new flight */
    pthread_mutex_lock(&table->mutex);
    cr_flight_do_insert(table, fb);
    pthread_mutex_unlock(&table->mutex);
    CU_ASSERT_PTR_EQUAL(find(table, b.key, b.hash), fb);
    pthread_mutex_lock(&table->mutex);
    cr_flight_do_unlink(table, fb);
    pthread_mutex_unlock(&table->mutex);

    cr_flight_release(&fa);
    cr_flight_release(&fb);
    cr_flight_release(&fc);
    pthread_mutex_destroy(&table->mutex);
    free(table);
}

static void test_join_and_refcounts(void)
{
    cr_fill_req_t fr = make_req("example.com\n/a", 99);
    cr_flight_table_t *table = cr_flight_table_new(NTHREADS);
    cr_flight_t *f, *refs[3];
    unsigned i;

    setup_threads();
    fake_route.coalesce_max_waiters = 3;
    CU_ASSERT_FATAL(table != NULL);
    CU_ASSERT_FATAL((f = cr_flight_shell_new(&fake_threads[0], NTHREADS, &fr)) != NULL);
    pthread_mutex_lock(&table->mutex);
    cr_flight_do_insert(table, f);
    CU_ASSERT_EQUAL(cr_flight_do_join(f, &fake_threads[0], &fr), CR_OK);
    CU_ASSERT_EQUAL(cr_flight_do_join(f, &fake_threads[2], &fr), CR_OK);
    CU_ASSERT_EQUAL(cr_flight_do_join(f, &fake_threads[2], &fr), CR_OK);
    CU_ASSERT_EQUAL(cr_flight_do_join(f, &fake_threads[3], &fr), CR_DECLINED); /* max_waiters: nothing changes */
    pthread_mutex_unlock(&table->mutex);
    CU_ASSERT_EQUAL(f->num_waiters, 3);
    CU_ASSERT_EQUAL(f->live_waiters, 3);
    CU_ASSERT_EQUAL(f->refcnt, 4); /* the fill's and one per waiter */
    CU_ASSERT_TRUE(f->has_waiters[0]);
    CU_ASSERT_FALSE(f->has_waiters[1]);
    CU_ASSERT_TRUE(f->has_waiters[2]);
    CU_ASSERT_FALSE(f->has_waiters[3]);

    /* a message in transit holds one more */
    cr_flight_addref(f);
    CU_ASSERT_EQUAL(f->refcnt, 5);

    /* publication unlinks and drops the fill's reference; the waiters' references keep it alive */
    pthread_mutex_lock(&table->mutex);
    cr_flight_do_unlink(table, f);
    pthread_mutex_unlock(&table->mutex);
    for (i = 0; i != 3; ++i)
        refs[i] = f;
    cr_flight_release(&f); /* the fill's */
    CU_ASSERT_EQUAL(refs[0]->refcnt, 4);
    f = refs[0];
    cr_flight_release(&f); /* the message's */
    cr_flight_release(&refs[0]);
    cr_flight_release(&refs[1]);
    CU_ASSERT_EQUAL(refs[2]->refcnt, 1);
    CU_ASSERT_PTR_NULL(refs[0]);
    cr_flight_release(&refs[2]); /* the last: freed (ASan would see a leak otherwise) */
    CU_ASSERT_PTR_NULL(refs[2]);
    cr_flight_release(&refs[2]); /* NULL is accepted */
    pthread_mutex_destroy(&table->mutex);
    free(table);
}

/* cr_flight_join's decisions that leave the request not waiting (no waiter, no loop needed): one find under the
 * mutex, and the counts it leaves. */
static void test_join_declines(void)
{
    cr_fill_req_t fr = make_req("example.com\n/j", 1234), other = make_req("example.com\n/k", 1234);
    cr_flight_table_t *table = cr_flight_table_new(NTHREADS), *saved = cr_rt.flights;
    cr_thread_t *t = &fake_threads[1];
    cr_flight_t *f;

    setup_threads();
    CU_ASSERT_FATAL(table != NULL);
    cr_rt.flights = table;
    memset(&t->stats, 0, sizeof(t->stats));

    /* nothing in flight: waiting for a store declines (a fill or revalidation would start one: that needs a loop) */
    CU_ASSERT_EQUAL(cr_flight_join(t, &fr, NULL, CR_FLIGHT_AWAIT_STORE, 1), CR_DECLINED);
    CU_ASSERT_EQUAL(t->stats.misses, 0);

    /* a flight that has not fetched its answer yet: no store to wait for, and a revalidation is already running */
    CU_ASSERT_FATAL((f = cr_flight_shell_new(&fake_threads[0], NTHREADS, &fr)) != NULL);
    pthread_mutex_lock(&table->mutex);
    cr_flight_do_insert(table, f);
    pthread_mutex_unlock(&table->mutex);
    CU_ASSERT_EQUAL(cr_flight_join(t, &fr, NULL, CR_FLIGHT_AWAIT_STORE, 1), CR_DECLINED);
    CU_ASSERT_EQUAL(cr_flight_join(t, &fr, NULL, CR_FLIGHT_REVALIDATE, 1), CR_DECLINED);
    CU_ASSERT_EQUAL(f->num_waiters, 0);
    CU_ASSERT_EQUAL(f->refcnt, 1);
    /* another key in the same hash: not this flight */
    CU_ASSERT_EQUAL(cr_flight_join(t, &other, NULL, CR_FLIGHT_AWAIT_STORE, 1), CR_DECLINED);

    /* at max_waiters, a fill or refill that would join declines and counts a miss (the caller passes) */
    fake_route.coalesce_max_waiters = 0;
    CU_ASSERT_EQUAL(cr_flight_join(t, &fr, NULL, CR_FLIGHT_FILL, 1), CR_DECLINED);
    CU_ASSERT_EQUAL(t->stats.misses, 1);
    CU_ASSERT_EQUAL(cr_flight_join(t, &fr, NULL, CR_FLIGHT_REFILL, 1), CR_DECLINED);
    CU_ASSERT_EQUAL(t->stats.misses, 2);
    /* in its codings window too: a full flight sends a refill by, and a revalidation serves the stale copy */
    f->fetched = 1;
    CU_ASSERT_EQUAL(cr_flight_join(t, &fr, NULL, CR_FLIGHT_REFILL, 1), CR_DECLINED);
    CU_ASSERT_EQUAL(t->stats.misses, 3);
    CU_ASSERT_EQUAL(cr_flight_join(t, &fr, NULL, CR_FLIGHT_REVALIDATE, 1), CR_DECLINED);
    CU_ASSERT_EQUAL(cr_flight_join(t, &fr, NULL, CR_FLIGHT_AWAIT_STORE, 0), CR_DECLINED);
    CU_ASSERT_EQUAL(t->stats.misses, 3);
    CU_ASSERT_EQUAL(f->num_waiters, 0);
    CU_ASSERT_EQUAL(f->live_waiters, 0);
    CU_ASSERT_EQUAL(f->refcnt, 1);
    CU_ASSERT_PTR_EQUAL(find(table, fr.key, fr.hash), f); /* nothing else was inserted */

    pthread_mutex_lock(&table->mutex);
    cr_flight_do_unlink(table, f);
    pthread_mutex_unlock(&table->mutex);
    cr_flight_release(&f);
    cr_rt.flights = saved;
    pthread_mutex_destroy(&table->mutex);
    free(table);
}

void cr_test_register_flight(void)
{
    CU_pSuite s = CU_add_suite("flight table", NULL, NULL);
    CU_add_test(s, "shell: key copy, owner, empty waiter lists", test_shell);
    CU_add_test(s, "find, insert, unlink, one bucket shared", test_find_insert_unlink);
    CU_add_test(s, "join up to max_waiters, references down to the free", test_join_and_refcounts);
    CU_add_test(s, "cr_flight_join: the decisions that leave a request not waiting", test_join_declines);
}
