/*
 * test_ebr.c: unit tests for sidecar/core/ebr.c and the store's lock-free lookups built on it: a reader inside its read
 * section holds back the release of what writers unlink (and only readers that entered before the unlink do); replaced
 * keys are never missing for a lookup racing the replacement, even while the shard's table is rebuilt underneath; and
 * the store charges its growing index and gives it back. Use-after-free in the lock-free paths is caught by running
 * under ASan (make SANITIZE=address,undefined test).
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "corral/core/ebr.h"
#include "corral/cache/store.h"
#include "fixtures.h"

void cr_test_register_ebr(void);

static cr_object_t *te_lookup(cr_store_t *store, const char *key)
{
    return cr_store_lookup(store, key, strlen(key), cr_hash(key, strlen(key)), NULL, NULL, NULL);
}

/* A thread that enters a read section, says so, and stays in it until told to leave. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int entered, leave, ok;
} te_reader_t;

static void *te_reader_thread(void *arg)
{
    te_reader_t *r = arg;
    int ok = cr_ebr_enter();

    pthread_mutex_lock(&r->lock);
    r->ok = ok;
    r->entered = 1;
    pthread_cond_broadcast(&r->cond);
    while (!r->leave)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
    if (ok)
        cr_ebr_exit();
    return NULL;
}

static void te_reader_start(te_reader_t *r, pthread_t *th)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    CU_ASSERT_FATAL(pthread_create(th, NULL, te_reader_thread, r) == 0);
    pthread_mutex_lock(&r->lock);
    while (!r->entered)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
    CU_ASSERT_FATAL(r->ok == 1);
}

static void te_reader_stop(te_reader_t *r, pthread_t th)
{
    pthread_mutex_lock(&r->lock);
    r->leave = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(th, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

static void test_ebr_epochs(void)
{
    uint64_t w1, w2;

    CU_ASSERT_EQUAL(cr_ebr_enter(), 1);
    w1 = cr_ebr_advance();
    CU_ASSERT_EQUAL(cr_ebr_safe(w1), 0); /* this thread entered before w1 */
    cr_ebr_exit();
    CU_ASSERT_EQUAL(cr_ebr_safe(w1), 1);
    CU_ASSERT_EQUAL(cr_ebr_enter(), 1);
    CU_ASSERT_EQUAL(cr_ebr_safe(w1), 1); /* entered at w1 or later */
    w2 = cr_ebr_advance();
    CU_ASSERT(w2 > w1);
    CU_ASSERT_EQUAL(cr_ebr_safe(w2), 0);
    cr_ebr_exit();
    CU_ASSERT_EQUAL(cr_ebr_safe(w2), 1);
    CU_ASSERT(cr_ebr_readers() >= 1);
}

/* A reader that entered before a removal keeps the removed object's store reference alive; one that entered after
 * does not; leaving lets the next reclaim release it. */
static void test_ebr_store_defers_release(void)
{
    cr_store_t *store = cr_store_new(1 << 20);
    cr_object_t *a = ts_make("ebr/a", NULL, 10, 'b'), *b = ts_make("ebr/b", NULL, 10, 'b'), *got;
    te_reader_t early, late;
    pthread_t th_early, th_late;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, b), CR_OK);
    CU_ASSERT_EQUAL(a->refcnt, 2);

    te_reader_start(&early, &th_early);
    CU_ASSERT_EQUAL(cr_store_remove_object(store, a), 1);
    CU_ASSERT_PTR_NULL(te_lookup(store, "ebr/a")); /* gone for every lookup from now on */
    CU_ASSERT_EQUAL(a->refcnt, 2);                 /* but its store reference waits for `early` */
    CU_ASSERT_EQUAL(a->st_linked, 2);
    CU_ASSERT_EQUAL(cr_store_retired(store), 1);
    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_DECLINED); /* not while it waits */
    cr_store_reclaim(store);
    CU_ASSERT_EQUAL(a->refcnt, 2);

    /* a reader entering now cannot have seen `a`: it does not hold the release back */
    te_reader_start(&late, &th_late);
    te_reader_stop(&early, th_early);
    cr_store_reclaim(store);
    CU_ASSERT_EQUAL(a->refcnt, 1);
    CU_ASSERT_EQUAL(a->st_linked, 0);
    CU_ASSERT_EQUAL(cr_store_retired(store), 0);

    /* `late` now holds back what is removed after it entered */
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "ebr/b", 5, cr_hash("ebr/b", 5), 0), 1);
    CU_ASSERT_EQUAL(b->refcnt, 2);
    te_reader_stop(&late, th_late);
    cr_store_reclaim(store);
    CU_ASSERT_EQUAL(b->refcnt, 1);

    /* reclaimed objects may go in again */
    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_OK);
    CU_ASSERT_PTR_EQUAL((got = te_lookup(store, "ebr/a")), a);
    cr_object_release(&got);
    cr_object_release(&a);
    cr_object_release(&b);
    cr_store_free(&store);
}

/* Writers replace one key over and over and churn other keys of the same shard (so its table is rebuilt, grown and
 * shrunk underneath) while readers look the key up: every lookup must find a whole object of that key. */
#define TE_RACE_ROUNDS 20000
#define TE_RACE_READERS 3

typedef struct {
    cr_store_t *store;
    volatile int *stop;
    size_t lookups, misses, wrong;
} te_race_t;

static void *te_race_reader(void *arg)
{
    te_race_t *t = arg;

    while (!__atomic_load_n(t->stop, __ATOMIC_ACQUIRE)) {
        cr_object_t *obj = te_lookup(t->store, "race/hot");
        ++t->lookups;
        if (obj == NULL) {
            ++t->misses;
            continue;
        }
        if (!cr_str_eq(cr_object_key(obj), "race/hot", 8) || cr_object_body(obj, CR_ENC_IDENTITY).len != 32 ||
            cr_object_body(obj, CR_ENC_IDENTITY).base[31] != 'b')
            ++t->wrong;
        cr_object_release(&obj);
    }
    return NULL;
}

static void test_ebr_replace_never_misses(void)
{
    cr_store_t *store = cr_store_new(64 << 20);
    pthread_t th[TE_RACE_READERS];
    te_race_t ctx[TE_RACE_READERS];
    volatile int stop = 0;
    cr_object_t *obj;
    size_t i, total = 0;
    uint64_t hot_shard = cr_hash("race/hot", 8) >> 58;
    char key[32];
    unsigned other = 0;

    CU_ASSERT_FATAL(store != NULL);
    obj = ts_make("race/hot", NULL, 32, 'b');
    CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
    cr_object_release(&obj);
    for (i = 0; i != TE_RACE_READERS; ++i) {
        ctx[i] = (te_race_t){store, &stop, 0, 0, 0};
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, te_race_reader, &ctx[i]) == 0);
    }
    for (i = 0; i != TE_RACE_ROUNDS; ++i) {
        obj = ts_make("race/hot", NULL, 32, 'b');
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
        /* another key of the same shard; every 500 rounds, drop them all (the table shrinks) */
        do {
            snprintf(key, sizeof(key), "race/o%u", other++);
        } while (cr_hash(key, strlen(key)) >> 58 != hot_shard);
        obj = ts_make(key, NULL, 16, 'b');
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
        if (i % 500 == 499)
            cr_store_purge_prefix(store, "race/o", 6, 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i != TE_RACE_READERS; ++i) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(ctx[i].misses, 0);
        CU_ASSERT_EQUAL(ctx[i].wrong, 0);
        total += ctx[i].lookups;
    }
    CU_ASSERT(total > 0);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    cr_store_reclaim(store);
    CU_ASSERT_EQUAL(cr_store_retired(store), 0);
    cr_store_free(&store);
}

/* The index is charged as it grows and given back as the key table shrinks. */
static void test_ebr_index_charged(void)
{
    cr_store_t *store = cr_store_new(256 << 20);
    size_t i, costs = 0, grown;
    char key[32];

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_index_bytes(store), 0);
    for (i = 0; i != 20000; ++i) {
        cr_object_t *obj;
        snprintf(key, sizeof(key), "idx/%zu", i);
        obj = ts_make(key, NULL, 8, 'b');
        costs += obj->cost;
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
    }
    grown = cr_store_index_bytes(store);
    /* 20000 objects over 64 shards: each key table holds 2..4 slots per object beyond its 16 initial ones */
    CU_ASSERT(grown >= 2 * 20000 * sizeof(void *) - 64 * 16 * sizeof(void *));
    CU_ASSERT(grown <= 4 * 20000 * sizeof(void *));
    CU_ASSERT_EQUAL(cr_store_bytes(store), costs + grown);
    CU_ASSERT_EQUAL(cr_store_clear(store), 20000);
    CU_ASSERT_EQUAL(cr_store_index_bytes(store), 0); /* no path or tag index was used; key tables back to 16 */
    CU_ASSERT_EQUAL(cr_store_bytes(store), 0);
    cr_store_free(&store);
}

void cr_test_register_ebr(void)
{
    CU_pSuite suite = CU_add_suite("ebr", NULL, NULL);

    CU_add_test(suite, "epochs and safety", test_ebr_epochs);
    CU_add_test(suite, "store: readers hold back releases", test_ebr_store_defers_release);
    CU_add_test(suite, "store: replaced key never missing, tables rebuilt underneath", test_ebr_replace_never_misses);
    CU_add_test(suite, "store: index charged and given back", test_ebr_index_charged);
}
