/*
 * test_store.c: unit tests for sidecar/cache/store*.c: lookup / insert / replace, variants, exact byte accounting, CLOCK
 * eviction under a byte limit, removal by key / object / prefix, readers outliving eviction, and a multithreaded
 * stress run followed by a consistency check. Invalidation (issue 5): the tag index (a purge touches exactly the
 * tagged objects, also among 100,000; bytes stay exact with tag entries), soft purges by key / prefix / tag,
 * lookup_all, epochs and insert_if_epoch (a purge declines the fills it covers and only those), and a multithreaded
 * purge-versus-insert run checking that no fill undoes a purge that started after the fill took its epoch. Issue 11:
 * the variant cap (the oldest variant of a key gives way to a new one, counted, bytes and indexes exact). Leaks and use-after-free are caught by running under ASan/LSan,
 * data races by running under TSan.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "corral/http/invalidate.h"
#include "corral/cache/store.h"
#include "fixtures.h"

void cr_test_register_store(void);

static size_t ts_charge(const cr_object_t *obj)
{
    return obj->cost;
}

/* The store's bytes without its index (charged on its own, see cr_store_index_bytes()). */
static size_t ts_bytes(const cr_store_t *store)
{
    return cr_store_bytes(store) - cr_store_index_bytes(store);
}

static cr_object_t *ts_lookup(cr_store_t *store, const char *key, cr_variant_match_fn match, void *ctx, size_t *nv)
{
    return cr_store_lookup(store, key, strlen(key), cr_hash(key, strlen(key)), match, ctx, nv);
}

/* ctx: a NUL-terminated variant key */
static int ts_match_variant(void *ctx, const cr_object_t *obj)
{
    const char *want = ctx;
    return cr_str_eq(cr_object_variant_key(obj), want, strlen(want));
}

/* ctx: a ts_sum_t; visits every variant (never matches) and sums their charges */
typedef struct {
    size_t n;
    size_t bytes;
} ts_sum_t;

static int ts_match_sum(void *ctx, const cr_object_t *obj)
{
    ts_sum_t *sum = ctx;
    ++sum->n;
    sum->bytes += ts_charge(obj);
    return 0;
}

static void test_store_basic(void)
{
    cr_store_t *store = cr_store_new(1 << 20);
    cr_object_t *a, *a2, *got;
    size_t nv = 99;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_limit(store), 1 << 20);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(cr_store_evictions(store), 0);
    CU_ASSERT_EQUAL(cr_store_index_bytes(store), 0); /* nothing grew yet */

    CU_ASSERT_PTR_NULL(ts_lookup(store, "a", NULL, NULL, &nv));
    CU_ASSERT_EQUAL(nv, 0);

    a = ts_make("a", NULL, 100, 'a');
    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_OK);
    CU_ASSERT_EQUAL(a->refcnt, 2); /* ours + the store's */
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(a));

    got = ts_lookup(store, "a", NULL, NULL, &nv);
    CU_ASSERT_PTR_EQUAL(got, a);
    CU_ASSERT_EQUAL(nv, 1);
    CU_ASSERT_EQUAL(a->refcnt, 3);
    cr_object_release(&got);
    CU_ASSERT_PTR_NULL(ts_lookup(store, "b", NULL, NULL, NULL));
    CU_ASSERT_PTR_NULL(ts_lookup(store, "aa", NULL, NULL, NULL));

    /* inserting the same object again changes nothing */
    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_OK);
    CU_ASSERT_EQUAL(a->refcnt, 2);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);

    /* same key, same (empty) variant: replaces */
    a2 = ts_make("a", NULL, 300, 'A');
    CU_ASSERT_EQUAL(cr_store_insert(store, a2), CR_OK);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(a2));
    CU_ASSERT_EQUAL(a->refcnt, 1); /* the store dropped its reference */
    CU_ASSERT_EQUAL(a->st_linked, 0);
    got = ts_lookup(store, "a", NULL, NULL, &nv);
    CU_ASSERT_PTR_EQUAL(got, a2);
    CU_ASSERT_EQUAL(nv, 1);
    CU_ASSERT_EQUAL(cr_object_body(got, CR_ENC_IDENTITY).len, 300);
    cr_object_release(&got);

    /* remove_object of the replaced one: not linked */
    CU_ASSERT_EQUAL(cr_store_remove_object(store, a), 0);
    CU_ASSERT_EQUAL(cr_store_remove_object(store, a2), 1);
    CU_ASSERT_EQUAL(cr_store_remove_object(store, a2), 0);
    CU_ASSERT_EQUAL(a2->refcnt, 1);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    CU_ASSERT_PTR_NULL(ts_lookup(store, "a", NULL, NULL, NULL));

    /* a removed object may be inserted again */
    CU_ASSERT_EQUAL(cr_store_insert(store, a2), CR_OK);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);

    cr_object_release(&a);
    cr_object_release(&a2);
    cr_store_free(&store); /* drops the store's reference to a2, which frees it */
    CU_ASSERT_PTR_NULL(store);
    cr_store_free(&store);
}

static void test_store_variants(void)
{
    static const char *variants[] = {"accept-encoding:gzip\n", "accept-encoding:br\n", "accept-encoding:\n"};
    cr_store_t *store = cr_store_new(1 << 20);
    cr_object_t *objs[3], *other, *got, *gz2;
    ts_sum_t sum = {0, 0};
    size_t nv, i;

    CU_ASSERT_FATAL(store != NULL);
    for (i = 0; i != 3; ++i) {
        objs[i] = ts_make("k", variants[i], 10 + i, (char)('0' + i));
        CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
    }
    other = ts_make("k2", variants[0], 5, 'o');
    CU_ASSERT_EQUAL(cr_store_insert(store, other), CR_OK);
    CU_ASSERT_EQUAL(cr_store_count(store), 4);

    for (i = 0; i != 3; ++i) {
        got = ts_lookup(store, "k", ts_match_variant, (void *)variants[i], &nv);
        CU_ASSERT_PTR_EQUAL(got, objs[i]);
        CU_ASSERT(nv >= 1 && nv <= 3); /* a hit stops at its variant */
        cr_object_release(&got);
    }
    got = ts_lookup(store, "k", ts_match_variant, "accept-encoding:zstd\n", &nv);
    CU_ASSERT_PTR_NULL(got);
    CU_ASSERT_EQUAL(nv, 3);
    got = ts_lookup(store, "k", NULL, NULL, &nv); /* any variant */
    CU_ASSERT_PTR_NOT_NULL(got);
    CU_ASSERT(cr_str_eq(cr_object_key(got), "k", 1));
    CU_ASSERT_EQUAL(nv, 1); /* the first variant of the probe run */
    cr_object_release(&got);
    CU_ASSERT_PTR_NULL(ts_lookup(store, "k", ts_match_sum, &sum, &nv));
    CU_ASSERT_EQUAL(sum.n, 3);
    CU_ASSERT_EQUAL(sum.bytes, ts_charge(objs[0]) + ts_charge(objs[1]) + ts_charge(objs[2]));

    /* replacing one variant leaves the others */
    gz2 = ts_make("k", variants[0], 50, 'z');
    CU_ASSERT_EQUAL(cr_store_insert(store, gz2), CR_OK);
    CU_ASSERT_EQUAL(cr_store_count(store), 4);
    CU_ASSERT_EQUAL(objs[0]->st_linked, 0);
    got = ts_lookup(store, "k", ts_match_variant, (void *)variants[0], &nv);
    CU_ASSERT_PTR_EQUAL(got, gz2);
    CU_ASSERT(nv >= 1 && nv <= 3);
    cr_object_release(&got);
    got = ts_lookup(store, "k", ts_match_variant, (void *)variants[1], NULL);
    CU_ASSERT_PTR_EQUAL(got, objs[1]);
    cr_object_release(&got);
    got = ts_lookup(store, "k2", ts_match_variant, (void *)variants[0], &nv);
    CU_ASSERT_PTR_EQUAL(got, other);
    CU_ASSERT_EQUAL(nv, 1);
    cr_object_release(&got);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(gz2) + ts_charge(objs[1]) + ts_charge(objs[2]) + ts_charge(other));

    /* remove_key removes every variant, and only that key */
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "k", 1, cr_hash("k", 1), 0), 3);
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "k", 1, cr_hash("k", 1), 0), 0);
    CU_ASSERT_PTR_NULL(ts_lookup(store, "k", NULL, NULL, &nv));
    CU_ASSERT_EQUAL(nv, 0);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(other));
    got = ts_lookup(store, "k2", NULL, NULL, NULL);
    CU_ASSERT_PTR_EQUAL(got, other);
    cr_object_release(&got);

    for (i = 0; i != 3; ++i) {
        CU_ASSERT_EQUAL(objs[i]->refcnt, 1);
        cr_object_release(&objs[i]);
    }
    cr_object_release(&gz2);
    cr_object_release(&other);
    cr_store_free(&store);
}

/* More variants than one removal batch holds. */
static void test_store_remove_key_many(void)
{
    cr_store_t *store = cr_store_new_bounded(64 << 20, 300);
    char variant[32];
    size_t i, nv;

    CU_ASSERT_FATAL(store != NULL);
    for (i = 0; i != 300; ++i) {
        cr_object_t *obj;
        snprintf(variant, sizeof(variant), "v:%zu\n", i);
        obj = ts_make("many", variant, i, 'm');
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
    }
    CU_ASSERT_PTR_NULL(ts_lookup(store, "many", ts_match_variant, "none", &nv));
    CU_ASSERT_EQUAL(nv, 300);
    CU_ASSERT_EQUAL(cr_store_count(store), 300);
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "many", 4, cr_hash("many", 4), 0), 300);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    cr_store_free(&store);
}

static void test_store_accounting(void)
{
    cr_store_t *store = cr_store_new(64 << 20);
    cr_object_t *objs[500];
    char key[32];
    size_t i, expect = 0, n;

    CU_ASSERT_FATAL(store != NULL);
    for (i = 0; i != 500; ++i) {
        snprintf(key, sizeof(key), "acct/%zu", i);
        objs[i] = ts_make(key, i % 3 == 0 ? "x:1\n" : NULL, (i * 37) % 2000, 'q');
        CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
        expect += ts_charge(objs[i]);
        CU_ASSERT_EQUAL(ts_bytes(store), expect);
    }
    CU_ASSERT_EQUAL(cr_store_count(store), 500);
    CU_ASSERT_EQUAL(cr_store_evictions(store), 0);

    /* remove every 4th by key, every 7th by object */
    for (i = 0; i != 500; ++i) {
        if (i % 4 == 0) {
            cr_str_t key = cr_object_key(objs[i]);
            CU_ASSERT_EQUAL(cr_store_purge_key(store, key.base, key.len, objs[i]->hash, 0), 1);
            expect -= ts_charge(objs[i]);
        } else if (i % 7 == 0) {
            CU_ASSERT_EQUAL(cr_store_remove_object(store, objs[i]), 1);
            expect -= ts_charge(objs[i]);
        }
    }
    CU_ASSERT_EQUAL(ts_bytes(store), expect);
    n = 0;
    expect = 0;
    for (i = 0; i != 500; ++i) {
        if (objs[i]->st_linked) {
            ++n;
            expect += ts_charge(objs[i]);
        }
    }
    CU_ASSERT_EQUAL(cr_store_count(store), n);
    CU_ASSERT_EQUAL(ts_bytes(store), expect);

    CU_ASSERT_EQUAL(cr_store_clear(store), n);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    CU_ASSERT_EQUAL(cr_store_clear(store), 0);
    for (i = 0; i != 500; ++i) {
        CU_ASSERT_EQUAL(objs[i]->refcnt, 1);
        CU_ASSERT_EQUAL(objs[i]->st_linked, 0);
        cr_object_release(&objs[i]);
    }
    cr_store_free(&store);
}

static void test_store_declined(void)
{
    cr_object_t *big = ts_make("big", NULL, 5000, 'b'), *exact = ts_make("exact", NULL, 100, 'e'), *small;
    cr_store_t *store = cr_store_new(ts_charge(exact));

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_insert(store, big), CR_DECLINED);
    CU_ASSERT_EQUAL(big->refcnt, 1);
    CU_ASSERT_EQUAL(big->st_linked, 0);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    CU_ASSERT_EQUAL(cr_store_evictions(store), 0);

    /* exactly the limit fits */
    CU_ASSERT_EQUAL(cr_store_insert(store, exact), CR_OK);
    CU_ASSERT_EQUAL(ts_bytes(store), cr_store_limit(store));
    /* one more byte than the limit is declined, and the resident object stays */
    small = ts_make("exact", NULL, 101, 'e');
    CU_ASSERT_EQUAL(cr_store_insert(store, small), CR_DECLINED);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    CU_ASSERT_EQUAL(exact->st_linked, 1);
    cr_object_release(&small);
    /* a smaller one evicts it */
    small = ts_make("small", NULL, 10, 's');
    CU_ASSERT_EQUAL(cr_store_insert(store, small), CR_OK);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    CU_ASSERT_EQUAL(cr_store_evictions(store), 1);
    CU_ASSERT_EQUAL(exact->st_linked, 0);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(small));

    cr_object_release(&big);
    cr_object_release(&exact);
    cr_object_release(&small);
    cr_store_free(&store);

    store = cr_store_new(0);
    CU_ASSERT_FATAL(store != NULL);
    small = ts_make("small", NULL, 0, 's');
    CU_ASSERT_EQUAL(cr_store_insert(store, small), CR_DECLINED);
    cr_object_release(&small);
    cr_store_free(&store);
}

#define TS_STREAM 10000

static void test_store_eviction_stream(void)
{
    cr_store_t *store = cr_store_new(64 * 1024);
    cr_object_t **objs = calloc(TS_STREAM, sizeof(*objs));
    size_t i, n = 0, expect = 0, over = 0;
    char key[32];

    CU_ASSERT_FATAL(store != NULL && objs != NULL);
    for (i = 0; i != TS_STREAM; ++i) {
        snprintf(key, sizeof(key), "stream/%zu", i);
        objs[i] = ts_make(key, NULL, (i * 7919) % 1500, 's');
        CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
        if (cr_store_bytes(store) > cr_store_limit(store))
            ++over;
    }
    CU_ASSERT_EQUAL(over, 0);
    CU_ASSERT(cr_store_evictions(store) > 0);
    CU_ASSERT_EQUAL(cr_store_evictions(store) + cr_store_count(store), TS_STREAM);
    for (i = 0; i != TS_STREAM; ++i) {
        if (objs[i]->st_linked) {
            ++n;
            expect += ts_charge(objs[i]);
        }
    }
    CU_ASSERT_EQUAL(cr_store_count(store), n);
    CU_ASSERT_EQUAL(ts_bytes(store), expect);
    /* the store is kept reasonably full: eviction stops as soon as it is under the limit */
    CU_ASSERT(expect > cr_store_limit(store) / 2);
    CU_ASSERT(objs[TS_STREAM - 1]->st_linked || cr_store_count(store) > 0);

    for (i = 0; i != TS_STREAM; ++i)
        cr_object_release(&objs[i]);
    free(objs);
    cr_store_free(&store);
}

/* A key looked up between every insert survives a scan of one-hit keys; an equally old cold key does not. */
static void test_store_clock_second_chance(void)
{
    cr_object_t *hot = ts_make("hot", NULL, 100, 'h'), *cold = ts_make("cold", NULL, 100, 'c'), *got;
    cr_store_t *store = cr_store_new(ts_charge(hot) * 1000);
    size_t i, misses = 0;
    char key[32];

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_insert(store, hot), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, cold), CR_OK);
    for (i = 0; i != TS_STREAM; ++i) {
        cr_object_t *one;
        snprintf(key, sizeof(key), "one-hit/%zu", i);
        one = ts_make(key, NULL, 100, 'o');
        CU_ASSERT_EQUAL(cr_store_insert(store, one), CR_OK);
        cr_object_release(&one);
        if ((got = ts_lookup(store, "hot", NULL, NULL, NULL)) == NULL)
            ++misses;
        cr_object_release(&got);
    }
    CU_ASSERT_EQUAL(misses, 0);
    CU_ASSERT_EQUAL(hot->st_linked, 1);
    CU_ASSERT_EQUAL(cold->st_linked, 0);
    CU_ASSERT(cr_store_evictions(store) >= TS_STREAM - 1000);
    CU_ASSERT(cr_store_bytes(store) <= cr_store_limit(store));

    cr_object_release(&hot);
    cr_object_release(&cold);
    cr_store_free(&store);
}

/* Among objects nobody looks up, eviction goes oldest first (as in e2e's store bound: 200 distinct 20 KB keys
 * through room for about 50): after a stream, the first objects are gone and the last ones are all there. The
 * objects' slots are in hash order, so this holds only because eviction compares ages, not slot positions. */
static void test_store_eviction_oldest_first(void)
{
    size_t round;

    for (round = 0; round != 20; ++round) {
        cr_object_t *objs[200];
        cr_store_t *store;
        size_t i, first_gone = 0, last_kept = 0;
        char key[32];

        for (i = 0; i != 200; ++i) {
            snprintf(key, sizeof(key), "/r%zu/k%zu", round, i);
            objs[i] = ts_make(key, NULL, 20000, 'x');
            objs[i]->response_time_ms = 1000 + i; /* one per millisecond, in order */
        }
        store = cr_store_new(objs[0]->cost * 50 + objs[0]->cost / 2);
        CU_ASSERT_FATAL(store != NULL);
        for (i = 0; i != 200; ++i)
            CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
        for (i = 0; i != 10; ++i)
            first_gone += objs[i]->st_linked == 0;
        for (i = 190; i != 200; ++i)
            last_kept += objs[i]->st_linked == 1;
        CU_ASSERT_EQUAL(first_gone, 10);
        CU_ASSERT_EQUAL(last_kept, 10);
        for (i = 0; i != 200; ++i)
            cr_object_release(&objs[i]);
        cr_store_free(&store);
    }
}

static void test_store_remove_prefix(void)
{
    cr_store_t *store = cr_store_new(64 << 20);
    size_t i, expect = 0;
    char key[32];

    CU_ASSERT_FATAL(store != NULL);
    for (i = 0; i != 300; ++i) {
        cr_object_t *obj;
        snprintf(key, sizeof(key), "%s/%zu", i < 200 ? "a.com\n/img" : "b.com\n/img", i);
        obj = ts_make(key, i % 10 == 0 ? "v:1\n" : NULL, i, 'p');
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        if (i >= 200)
            expect += ts_charge(obj);
        cr_object_release(&obj);
    }
    /* the prefix itself as a key */
    {
        cr_object_t *obj = ts_make("a.com\n", NULL, 1, 'p');
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
    }
    CU_ASSERT_EQUAL(cr_store_purge_prefix(store, "a.com\n/img/1", 12, 0), 111); /* 1, 10-19, 100-199 */
    CU_ASSERT_EQUAL(cr_store_count(store), 190);
    CU_ASSERT_EQUAL(cr_store_purge_prefix(store, "a.com\n", 6, 0), 90);
    CU_ASSERT_EQUAL(cr_store_purge_prefix(store, "a.com\n", 6, 0), 0);
    CU_ASSERT_EQUAL(cr_store_purge_prefix(store, "zzz", 3, 0), 0);
    CU_ASSERT_EQUAL(cr_store_count(store), 100);
    CU_ASSERT_EQUAL(ts_bytes(store), expect);
    CU_ASSERT_PTR_NULL(ts_lookup(store, "a.com\n/img/5", NULL, NULL, NULL));
    {
        cr_object_t *got = ts_lookup(store, "b.com\n/img/250", NULL, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL(got);
        cr_object_release(&got);
    }
    /* the empty prefix matches everything */
    CU_ASSERT_EQUAL(cr_store_purge_prefix(store, "", 0, 0), 100);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    cr_store_free(&store);
}

/* An object a reader holds stays valid after eviction and is freed on the reader's release. */
static void test_store_reader_survives(void)
{
    cr_object_t *x = ts_make("held", NULL, 1000, 'H'), *held;
    cr_store_t *store = cr_store_new(ts_charge(x) * 8);
    size_t i, ok = 1;
    char key[32];

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_insert(store, x), CR_OK);
    cr_object_release(&x); /* the store holds the only reference now */
    held = ts_lookup(store, "held", NULL, NULL, NULL);
    CU_ASSERT_FATAL(held != NULL);
    for (i = 0; i != 1000 && held->st_linked; ++i) {
        cr_object_t *obj;
        snprintf(key, sizeof(key), "flood/%zu", i);
        obj = ts_make(key, NULL, 1000, 'f');
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
    }
    CU_ASSERT_EQUAL(held->st_linked, 0);
    CU_ASSERT_PTR_NULL(ts_lookup(store, "held", NULL, NULL, NULL));
    CU_ASSERT_EQUAL(cr_store_remove_object(store, held), 0);
    CU_ASSERT_EQUAL(held->refcnt, 1);
    CU_ASSERT(cr_str_eq(cr_object_find_header(held, "content-type", 12), "text/plain", 10));
    CU_ASSERT_EQUAL(cr_object_body(held, CR_ENC_IDENTITY).len, 1000);
    for (i = 0; i != 1000; ++i)
        ok &= cr_object_body(held, CR_ENC_IDENTITY).base[i] == 'H';
    CU_ASSERT(ok);
    cr_object_release(&held); /* frees it (LSan reports a leak otherwise, ASan a double free) */

    /* the same through cr_store_free: a held object outlives the store */
    held = ts_lookup(store, "flood/999", NULL, NULL, NULL);
    if (held == NULL) {
        cr_object_t *obj = ts_make("late", NULL, 10, 'l');
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
        held = ts_lookup(store, "late", NULL, NULL, NULL);
    }
    CU_ASSERT_FATAL(held != NULL);
    cr_store_free(&store);
    CU_ASSERT_EQUAL(held->refcnt, 1);
    CU_ASSERT_EQUAL(held->st_linked, 0);
    cr_object_release(&held);
}

/* Multithreaded stress: TS_MT_THREADS threads x TS_MT_OPS mixed operations on an overlapping key space. */
#define TS_MT_THREADS 4
#define TS_MT_OPS 20000
#define TS_MT_KEYS 300
#define TS_MT_VARIANTS 3

typedef struct {
    cr_store_t *store;
    unsigned seed;
    size_t bad;
} ts_mt_t;

static unsigned ts_rand(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static char ts_mt_fill(unsigned k, unsigned v)
{
    return (char)('a' + (k * TS_MT_VARIANTS + v) % 26);
}

/* Checks everything a reader may see without locks. */
static int ts_mt_check(const cr_object_t *obj, const char *key, unsigned k)
{
    cr_str_t body = cr_object_body(obj, CR_ENC_IDENTITY), key_of = cr_object_key(obj), variant = cr_object_variant_key(obj);
    unsigned v;
    size_t i;

    if (!cr_str_eq(key_of, key, strlen(key)) || variant.len != 4 || variant.base[0] != 'v')
        return 0;
    v = (unsigned)(variant.base[2] - '0');
    for (i = 0; i != body.len; ++i)
        if (body.base[i] != ts_mt_fill(k, v))
            return 0;
    return cr_str_eq(cr_object_find_header(obj, "content-type", 12), "text/plain", 10);
}

static void *ts_mt_thread(void *arg)
{
    ts_mt_t *t = arg;
    char key[32], variant[8], prefix[16];
    int i;

    for (i = 0; i != TS_MT_OPS; ++i) {
        unsigned r = ts_rand(&t->seed), k = (r >> 8) % TS_MT_KEYS, v = (r >> 20) % TS_MT_VARIANTS, op = r % 100;
        size_t keylen = (size_t)snprintf(key, sizeof(key), "mt/%u", k), nv;
        uint64_t hash = cr_hash(key, keylen);
        cr_object_t *obj;

        snprintf(variant, sizeof(variant), "v:%u\n", v);
        if (op < 45) {
            obj = cr_store_lookup(t->store, key, keylen, hash, op < 40 ? ts_match_variant : NULL, variant, &nv);
            if (obj != NULL) {
                if (!ts_mt_check(obj, key, k) || nv == 0 || nv > TS_MT_VARIANTS)
                    ++t->bad;
                if (op < 3)
                    cr_store_remove_object(t->store, obj);
                cr_object_release(&obj);
            }
        } else if (op < 80) {
            obj = ts_make(key, variant, ts_rand(&t->seed) % 600, ts_mt_fill(k, v));
            if (cr_store_insert(t->store, obj) != CR_OK)
                ++t->bad;
            cr_object_release(&obj);
        } else if (op < 90) {
            if (cr_store_purge_key(t->store, key, keylen, hash, 0) > TS_MT_VARIANTS)
                ++t->bad;
        } else if (op < 92) {
            snprintf(prefix, sizeof(prefix), "mt/2%u", v);
            cr_store_purge_prefix(t->store, prefix, strlen(prefix), 0);
        } else if (op < 97) {
            ts_sum_t sum = {0, 0};
            if (cr_store_lookup(t->store, key, keylen, hash, ts_match_sum, &sum, &nv) != NULL || sum.n != nv)
                ++t->bad;
        } else if (op < 99) {
            obj = ts_make(key, variant, cr_store_limit(t->store), 'x');
            if (cr_store_insert(t->store, obj) != CR_DECLINED)
                ++t->bad;
            cr_object_release(&obj);
        } else if (ts_rand(&t->seed) % 50 == 0) {
            cr_store_clear(t->store);
        } else {
            (void)cr_store_count(t->store);
            (void)cr_store_bytes(t->store);
            (void)cr_store_evictions(t->store);
        }
    }
    return NULL;
}

static void test_store_threads(void)
{
    cr_store_t *store = cr_store_new(100 * 1024);
    pthread_t threads[TS_MT_THREADS];
    ts_mt_t ctx[TS_MT_THREADS];
    ts_sum_t sum = {0, 0};
    size_t i, n;
    char key[32];

    CU_ASSERT_FATAL(store != NULL);
    for (i = 0; i != TS_MT_THREADS; ++i) {
        ctx[i].store = store;
        ctx[i].seed = 0x9e3779b9u * (unsigned)(i + 1);
        ctx[i].bad = 0;
        CU_ASSERT_FATAL(pthread_create(&threads[i], NULL, ts_mt_thread, &ctx[i]) == 0);
    }
    for (i = 0; i != TS_MT_THREADS; ++i) {
        pthread_join(threads[i], NULL);
        CU_ASSERT_EQUAL(ctx[i].bad, 0);
    }

    /* quiescent: the counters must equal what the tables hold */
    for (i = 0; i != TS_MT_KEYS; ++i) {
        size_t keylen = (size_t)snprintf(key, sizeof(key), "mt/%zu", i);
        size_t before = sum.n;
        CU_ASSERT_PTR_NULL(cr_store_lookup(store, key, keylen, cr_hash(key, keylen), ts_match_sum, &sum, &n));
        CU_ASSERT_EQUAL(sum.n - before, n);
        CU_ASSERT(n <= TS_MT_VARIANTS);
    }
    CU_ASSERT_EQUAL(cr_store_count(store), sum.n);
    CU_ASSERT_EQUAL(ts_bytes(store), sum.bytes);
    CU_ASSERT(cr_store_bytes(store) <= cr_store_limit(store));
    CU_ASSERT(cr_store_evictions(store) > 0);
    CU_ASSERT_EQUAL(cr_store_clear(store), sum.n);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    cr_store_free(&store);
}

/* ---- invalidation: tags, soft purges, epochs (issue 5) ---- */

/* ts_make with tags ("a,b,c"; NULL for none). */
/* The path part of a test key "host\npath?query": everything between the newline and the '?'. */
static int ts_same_path(void *ctx, const cr_object_t *obj)
{
    cr_str_t key = cr_object_key(obj);
    const char *path = ctx, *nl = memchr(key.base, '\n', key.len);
    size_t plen = strlen(path), rest = key.len - (size_t)(nl + 1 - key.base);
    return nl != NULL && rest >= plen && memcmp(nl + 1, path, plen) == 0 && (rest == plen || nl[1 + plen] == '?');
}

static void test_store_path_index(void)
{
    static const char *keys[] = {"h\n/a?x=1", "h\n/a?x=2", "g\n/a", "h\n/ab", "h\n/b"};
    cr_store_t *store = cr_store_new(1 << 20);
    cr_object_t *got[8];
    size_t i, n, bytes_before;
    cr_store_epoch_t epoch_a, epoch_b;
    cr_object_t *later_a, *later_b;

    CU_ASSERT_FATAL(store != NULL);
    for (i = 0; i != 5; ++i) {
        cr_object_t *obj = ts_make(keys[i], NULL, 10, 'p');
        /* "/a" and "/ab" share a path hash on purpose here: the match function must tell them apart */
        obj->path_hash = strncmp(strchr(keys[i], '\n') + 1, "/a", 2) == 0 ? 77 : 78;
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
    }
    n = cr_store_collect_path(store, 77, ts_same_path, (void *)"/a", got, 8);
    CU_ASSERT_EQUAL(n, 3);
    for (i = 0; i != CR_MIN(n, 8); ++i)
        cr_object_release(&got[i]);
    /* soft: marked, still there */
    CU_ASSERT_EQUAL(cr_store_purge_path(store, 77, ts_same_path, (void *)"/a", 1), 3);
    CU_ASSERT_EQUAL(cr_store_count(store), 5);
    cr_store_fill_epoch(store, 77, &epoch_a);
    cr_store_fill_epoch(store, 78, &epoch_b);
    bytes_before = cr_store_bytes(store);
    /* hard: the three variants of /a go, /ab (same hash) and /b stay; fills of path hash 77 in flight are declined,
     * those of 78 are not */
    CU_ASSERT_EQUAL(cr_store_purge_path(store, 77, ts_same_path, (void *)"/a", 0), 3);
    CU_ASSERT_EQUAL(cr_store_count(store), 2);
    CU_ASSERT(cr_store_bytes(store) < bytes_before);
    later_a = ts_make("h\n/a?x=3", NULL, 10, 'q');
    later_a->path_hash = 77;
    later_b = ts_make("h\n/b?x=3", NULL, 10, 'q');
    later_b->path_hash = 78;
    CU_ASSERT_EQUAL(cr_store_epoch_moved(store, &epoch_a, later_a), 1);
    CU_ASSERT_EQUAL(cr_store_insert_if_epoch(store, later_a, &epoch_a), CR_DECLINED);
    CU_ASSERT_EQUAL(cr_store_epoch_moved(store, &epoch_b, later_b), 0);
    CU_ASSERT_EQUAL(cr_store_insert_if_epoch(store, later_b, &epoch_b), CR_OK);
    CU_ASSERT_EQUAL(cr_store_remove_object(store, later_b), 1);
    cr_object_release(&later_a);
    cr_object_release(&later_b);
    CU_ASSERT_EQUAL(cr_store_collect_path(store, 77, ts_same_path, (void *)"/a", got, 8), 0);
    n = cr_store_collect_path(store, 77, ts_same_path, (void *)"/ab", got, 8);
    CU_ASSERT_EQUAL(n, 1);
    for (i = 0; i != CR_MIN(n, 8); ++i)
        cr_object_release(&got[i]);
    CU_ASSERT_EQUAL(cr_store_purge_path(store, 78, ts_same_path, (void *)"/b", 0), 1);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    cr_store_free(&store);
}

static cr_object_t *ts_make_tagged(const char *key, const char *variant, size_t bodylen, const char *tags)
{
    cr_object_t *obj = cr_object_new(key, strlen(key), 200);
    cr_str_t list[16];
    size_t n = 0;
    char *body;

    CU_ASSERT_FATAL(obj != NULL);
    CU_ASSERT_FATAL(cr_object_add_header(obj, "content-type", 12, "text/plain", 10, 0) == CR_OK);
    if (variant != NULL) {
        cr_str_t names[] = {CR_STR("accept-encoding")};
        CU_ASSERT_FATAL(cr_object_set_vary(obj, names, 1, variant, strlen(variant)) == CR_OK);
    }
    while (tags != NULL && *tags != '\0' && n != 16) {
        const char *comma = strchr(tags, ',');
        size_t len = comma != NULL ? (size_t)(comma - tags) : strlen(tags);
        list[n++] = cr_str(tags, len);
        tags += len + (comma != NULL);
    }
    CU_ASSERT_FATAL(cr_object_set_tags(obj, list, n) == CR_OK);
    CU_ASSERT_FATAL((body = malloc(bodylen + 1)) != NULL);
    memset(body, 'b', bodylen);
    cr_object_set_body(obj, CR_ENC_IDENTITY, body, bodylen);
    return cr_object_finish(obj);
}

static int ts_invalidated(const cr_object_t *obj)
{
    return (cr_object_flags(obj) & CR_OBJ_INVALIDATED) != 0;
}

static void test_store_tags(void)
{
    cr_store_t *store = cr_store_new(64 << 20);
    cr_object_t *a = ts_make_tagged("a", NULL, 10, "user-1,all"), *b = ts_make_tagged("b", NULL, 20, "user-2,all"),
                *c = ts_make_tagged("c", NULL, 30, NULL), *a2, *got;
    size_t expect;

    CU_ASSERT_FATAL(store != NULL);
    /* cr_object_set_tags drops empties and duplicates, and counts the tags in the cost */
    {
        cr_object_t *x = cr_object_new("x", 1, 200), *y = cr_object_new("x", 1, 200);
        cr_str_t tags[] = {CR_STR("t"), CR_STR(""), CR_STR("u"), CR_STR("t")};
        CU_ASSERT_FATAL(x != NULL && y != NULL);
        CU_ASSERT_EQUAL(cr_object_set_tags(x, tags, 4), CR_OK);
        CU_ASSERT_EQUAL(x->num_tags, 2);
        CU_ASSERT(cr_str_eq(x->tags[0].name, "t", 1) && cr_str_eq(x->tags[1].name, "u", 1));
        CU_ASSERT_EQUAL(x->tags[1].name.base[1], '\0');
        CU_ASSERT_PTR_EQUAL(x->tags[0].owner, x);
        CU_ASSERT_EQUAL(x->tags[0].hash, cr_hash("t", 1));
        CU_ASSERT_EQUAL(cr_object_set_tags(x, tags, 1), CR_OK); /* replaces */
        CU_ASSERT_EQUAL(x->num_tags, 1);
        x = cr_object_finish(x);
        y = cr_object_finish(y);
        CU_ASSERT_PTR_EQUAL(x->tags[0].owner, x); /* follows the object when finish moves it */
        CU_ASSERT(x->cost >= y->cost + sizeof(cr_object_tag_t) + 2);
        cr_object_release(&x);
        cr_object_release(&y);
    }

    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, b), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, c), CR_OK);
    CU_ASSERT(cr_store_tag_entries(store) >= 3 && cr_store_tag_entries(store) <= 4); /* "all" may sit in 1 or 2 shards */
    expect = ts_charge(a) + ts_charge(b) + ts_charge(c);
    CU_ASSERT_EQUAL(ts_bytes(store), expect + cr_store_tag_bytes(store));
    CU_ASSERT_EQUAL(cr_store_tag_bytes(store),
                    cr_store_tag_charge(6) * 2 + cr_store_tag_charge(3) * (cr_store_tag_entries(store) - 2));

    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "nope", 4, 0), 0);
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "user-1", 6, 0), 1);
    CU_ASSERT_EQUAL(a->st_linked, 0);
    CU_ASSERT_EQUAL(a->refcnt, 1);
    CU_ASSERT_PTR_NULL(a->tags[0].st.entry);
    CU_ASSERT_EQUAL(cr_store_count(store), 2);
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "user-1", 6, 0), 0);
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 2);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(b) + ts_charge(c) + cr_store_tag_charge(6) + cr_store_tag_charge(3));

    /* replacing an object with one sharing its tags keeps the shared entries consistent */
    a2 = ts_make_tagged("b", NULL, 25, "all,user-2,extra");
    CU_ASSERT_EQUAL(cr_store_insert(store, a2), CR_OK);
    CU_ASSERT_EQUAL(b->st_linked, 0);
    CU_ASSERT_PTR_NULL(b->tags[0].st.entry);
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 3);
    CU_ASSERT_EQUAL(ts_bytes(store),
                    ts_charge(a2) + ts_charge(c) + cr_store_tag_charge(6) + cr_store_tag_charge(3) + cr_store_tag_charge(5));
    /* a replaced object's tags are gone from the index: the tag it alone had */
    got = ts_make_tagged("b", NULL, 1, "only-old");
    CU_ASSERT_EQUAL(cr_store_insert(store, got), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, a2), CR_OK); /* back */
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "only-old", 8, 0), 0);
    cr_object_release(&got);

    /* tags are case-sensitive, exact bytes */
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "ALL", 3, 0), 0);
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "al", 2, 0), 0);
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "all", 3, 0), 1);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 0);
    CU_ASSERT_EQUAL(cr_store_tag_bytes(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(c));

    /* removal by key / object / prefix / eviction also leaves the index */
    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, b), CR_OK);
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "a", 1, cr_hash("a", 1), 0), 1);
    CU_ASSERT_EQUAL(cr_store_remove_object(store, b), 1);
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 0);
    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_OK);
    CU_ASSERT_EQUAL(cr_store_purge_prefix(store, "", 0, 0), 2);
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    cr_store_free(&store);

    store = cr_store_new(ts_charge(a) + ts_charge(b) + 4 * cr_store_tag_charge(6));
    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_insert(store, a), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, b), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, a2), CR_OK); /* replaces b; evicts a to fit */
    CU_ASSERT(cr_store_evictions(store) >= 1);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(a2) + cr_store_tag_bytes(store));
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 3);
    cr_store_free(&store);

    cr_object_release(&a);
    cr_object_release(&a2);
    cr_object_release(&b);
    cr_object_release(&c);
}

/* More members than one batch holds, spread over shards, and exactly the tagged ones go among 100,000. */
#define TS_LARGE 100000
#define TS_LARGE_TAGGED 10

static void test_store_tags_large(void)
{
    cr_store_t *store = cr_store_new((size_t)512 << 20);
    cr_object_t **objs = calloc(TS_LARGE, sizeof(*objs));
    size_t i, expect = 0, n, step = TS_LARGE / TS_LARGE_TAGGED;
    char key[32], tags[32];

    CU_ASSERT_FATAL(store != NULL && objs != NULL);
    for (i = 0; i != TS_LARGE; ++i) {
        snprintf(key, sizeof(key), "big/%zu", i);
        /* every object has a 5-byte group tag; every step-th one also "hot10" (also 5 bytes) */
        snprintf(tags, sizeof(tags), i % step == 7 ? "g%04zu,hot10" : "g%04zu", i % 1000);
        objs[i] = ts_make_tagged(key, NULL, i % 64, tags);
        CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
        expect += ts_charge(objs[i]);
    }
    CU_ASSERT_EQUAL(cr_store_count(store), TS_LARGE);
    CU_ASSERT_EQUAL(cr_store_evictions(store), 0);
    n = cr_store_tag_entries(store);
    CU_ASSERT(n >= 1001 && n <= 1001 * 64);
    CU_ASSERT_EQUAL(cr_store_tag_bytes(store), n * cr_store_tag_charge(5));
    CU_ASSERT_EQUAL(ts_bytes(store), expect + cr_store_tag_bytes(store));

    /* soft first: exactly the tagged ones are marked */
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "hot10", 5, 1), TS_LARGE_TAGGED);
    n = 0;
    for (i = 0; i != TS_LARGE; ++i)
        n += ts_invalidated(objs[i]) != (i % step == 7);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(cr_store_count(store), TS_LARGE);

    /* hard: exactly the tagged ones go */
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "hot10", 5, 0), TS_LARGE_TAGGED);
    n = 0;
    for (i = 0; i != TS_LARGE; ++i) {
        n += objs[i]->st_linked != (i % step != 7);
        if (!objs[i]->st_linked)
            expect -= ts_charge(objs[i]);
    }
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(cr_store_count(store), TS_LARGE - TS_LARGE_TAGGED);
    CU_ASSERT_EQUAL(ts_bytes(store), expect + cr_store_tag_bytes(store));
    CU_ASSERT_EQUAL(cr_store_tag_bytes(store), cr_store_tag_entries(store) * cr_store_tag_charge(5));
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "hot10", 5, 0), 0);

    /* a group of 100 (more than a batch), over many shards */
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "g0123", 5, 0), 100);
    for (i = 123; i < TS_LARGE; i += 1000)
        CU_ASSERT_EQUAL(objs[i]->st_linked, 0);
    CU_ASSERT_EQUAL(cr_store_count(store), TS_LARGE - TS_LARGE_TAGGED - 100);

    CU_ASSERT_EQUAL(cr_store_clear(store), TS_LARGE - TS_LARGE_TAGGED - 100);
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    for (i = 0; i != TS_LARGE; ++i) {
        CU_ASSERT_EQUAL(objs[i]->refcnt, 1);
        cr_object_release(&objs[i]);
    }
    free(objs);
    cr_store_free(&store);
}

static void test_store_soft(void)
{
    cr_store_t *store = cr_store_new(64 << 20);
    cr_object_t *v1 = ts_make_tagged("h\n/u/1", "v:1\n", 10, "t"), *v2 = ts_make_tagged("h\n/u/1", "v:2\n", 10, NULL),
                *o = ts_make_tagged("h\n/u/2", NULL, 10, "t"), *p = ts_make_tagged("h\n/p/1", NULL, 10, NULL), *got, *fresh;
    size_t bytes;

    CU_ASSERT_FATAL(store != NULL);
    v1->lifetime_ms = v2->lifetime_ms = o->lifetime_ms = p->lifetime_ms = 60000;
    v1->response_time_ms = v2->response_time_ms = o->response_time_ms = p->response_time_ms = 1000;
    p->flags |= CR_OBJ_FORCED; /* before it is shared */
    CU_ASSERT_EQUAL(cr_store_insert(store, v1), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, v2), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, o), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(store, p), CR_OK);
    bytes = cr_store_bytes(store);
    CU_ASSERT(cr_object_is_fresh(v1, 2000));

    /* key: every variant, stays linked and findable, now stale */
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "h\n/u/1", 6, cr_hash("h\n/u/1", 6), 1), 2);
    CU_ASSERT(ts_invalidated(v1) && ts_invalidated(v2) && !ts_invalidated(o) && !ts_invalidated(p));
    CU_ASSERT(!cr_object_is_fresh(v1, 2000) && !cr_object_is_fresh(v2, 2000) && cr_object_is_fresh(o, 2000));
    CU_ASSERT_EQUAL(cr_store_count(store), 4);
    CU_ASSERT_EQUAL(ts_bytes(store), bytes);
    got = ts_lookup(store, "h\n/u/1", ts_match_variant, "v:1\n", NULL);
    CU_ASSERT_PTR_EQUAL(got, v1);
    cr_object_release(&got);
    /* soft again counts them again and changes nothing */
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "h\n/u/1", 6, cr_hash("h\n/u/1", 6), 1), 2);
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "h\n/u/9", 6, cr_hash("h\n/u/9", 6), 1), 0);
    /* the other flags survive the atomic OR */
    CU_ASSERT_EQUAL(cr_object_invalidate(v1), 0);

    /* prefix */
    CU_ASSERT_EQUAL(cr_store_purge_prefix(store, "h\n/p/", 5, 1), 1);
    CU_ASSERT(ts_invalidated(p) && (cr_object_flags(p) & CR_OBJ_FORCED) != 0 && !ts_invalidated(o));
    /* tag */
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "t", 1, 1), 2);
    CU_ASSERT(ts_invalidated(o));
    CU_ASSERT_EQUAL(cr_store_count(store), 4);
    CU_ASSERT_EQUAL(ts_bytes(store), bytes);

    /* a refreshed object replaces a soft-purged one and is fresh */
    fresh = ts_make_tagged("h\n/u/2", NULL, 10, "t");
    fresh->lifetime_ms = 60000;
    fresh->response_time_ms = 1000;
    CU_ASSERT_EQUAL(cr_store_insert(store, fresh), CR_OK);
    got = ts_lookup(store, "h\n/u/2", NULL, NULL, NULL);
    CU_ASSERT_PTR_EQUAL(got, fresh);
    CU_ASSERT(cr_object_is_fresh(got, 2000));
    cr_object_release(&got);

    /* hard purges remove soft-purged objects like any other */
    CU_ASSERT_EQUAL(cr_store_purge_tag(store, "t", 1, 0), 2);
    CU_ASSERT_EQUAL(cr_store_purge_prefix(store, "h\n", 2, 0), 2);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);

    cr_object_release(&v1);
    cr_object_release(&v2);
    cr_object_release(&o);
    cr_object_release(&p);
    cr_object_release(&fresh);
    cr_store_free(&store);
}

static int ts_match_any(void *ctx, const cr_object_t *obj)
{
    (void)ctx;
    (void)obj;
    return 1;
}

/* The variant cap: 100 variants of one key (tagged, path-indexed) into a store capped at 32 leave the 32 linked last,
 * count 68 variant evictions (not memory evictions), keep bytes and the tag and path indexes exact, and a replaced
 * variant counts as new. */
static void test_store_variant_cap(void)
{
    enum { CAP = 32, N = 100 };
    cr_store_t *store = cr_store_new_bounded(64 << 20, CAP);
    cr_object_t *objs[N + 2], *other, *out[N], *got, *v80;
    char variant[32];
    size_t i, n, nv, kept_bytes = 0;
    size_t tag_bytes;
    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_variants_per_key(store), CAP);
    other = ts_make_tagged("other", NULL, 7, "t");
    CU_ASSERT_EQUAL(cr_store_insert(store, other), CR_OK);
    for (i = 0; i != N; ++i) {
        snprintf(variant, sizeof(variant), "v:%zu\n", i);
        objs[i] = ts_make_tagged("k", variant, i, "t,k-tag");
        objs[i]->path_hash = 42;
        CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
        CU_ASSERT(cr_store_count(store) <= CAP + 1);
    }
    cr_store_reclaim(store); /* no lookup runs: every evicted variant's store reference goes */
    /* tag entries are per shard: "t" has one in each shard holding a member ("other" and "k" may share one) */
    CU_ASSERT(cr_store_tag_entries(store) == 2 || cr_store_tag_entries(store) == 3);
    tag_bytes = cr_store_tag_charge(1) * (cr_store_tag_entries(store) - 1) + cr_store_tag_charge(5);
    CU_ASSERT_EQUAL(cr_store_retired(store), 0);
    CU_ASSERT_EQUAL(cr_store_count(store), CAP + 1);
    CU_ASSERT_EQUAL(cr_store_variant_evictions(store), N - CAP);
    CU_ASSERT_EQUAL(cr_store_evictions(store), 0);
    for (i = 0; i != N; ++i) {
        int kept = i >= N - CAP;
        snprintf(variant, sizeof(variant), "v:%zu\n", i);
        got = ts_lookup(store, "k", ts_match_variant, variant, &nv);
        CU_ASSERT_PTR_EQUAL(got, kept ? objs[i] : NULL);
        CU_ASSERT(nv >= 1 && nv <= CAP);
        CU_ASSERT_EQUAL(objs[i]->refcnt, kept ? 3 : 1); /* ours (+ the store's + the lookup's) */
        CU_ASSERT_EQUAL(objs[i]->st_linked, kept);
        if (kept)
            kept_bytes += ts_charge(objs[i]);
        cr_object_release(&got);
    }
    CU_ASSERT_EQUAL(ts_bytes(store), kept_bytes + ts_charge(other) + tag_bytes);
    CU_ASSERT_EQUAL(cr_store_tag_bytes(store), tag_bytes);
    CU_ASSERT_PTR_NULL(ts_lookup(store, "k", ts_match_variant, "none", &nv));
    CU_ASSERT_EQUAL(nv, CAP); /* a miss walks the cap, not 100 */
    CU_ASSERT_EQUAL(cr_store_lookup_all(store, "k", 1, cr_hash("k", 1), out, N), CAP);
    for (i = 0; i != CAP; ++i)
        cr_object_release(&out[i]);
    CU_ASSERT_EQUAL(cr_store_collect_tag(store, "k-tag", 5, out, N), CAP);
    for (i = 0; i != CAP; ++i)
        cr_object_release(&out[i]);
    CU_ASSERT_EQUAL(cr_store_collect_path(store, 42, ts_match_any, NULL, out, N), CAP);
    for (i = 0; i != CAP; ++i)
        cr_object_release(&out[i]);

    /* a new copy of a kept variant replaces it (no eviction) and is then the newest: the next two new variants evict
     * v:68 and v:69, the oldest */
    v80 = ts_make_tagged("k", "v:80\n", 80, "t,k-tag");
    CU_ASSERT_EQUAL(cr_store_insert(store, v80), CR_OK);
    CU_ASSERT_EQUAL(cr_store_variant_evictions(store), N - CAP);
    CU_ASSERT_NOT_EQUAL(objs[80]->st_linked, 1);
    for (i = N; i != N + 2; ++i) {
        snprintf(variant, sizeof(variant), "v:%zu\n", i);
        objs[i] = ts_make_tagged("k", variant, i, "t,k-tag");
        CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
    }
    cr_store_reclaim(store);
    CU_ASSERT_EQUAL(cr_store_variant_evictions(store), N - CAP + 2);
    CU_ASSERT_EQUAL(cr_store_count(store), CAP + 1);
    CU_ASSERT_EQUAL(objs[N - CAP]->st_linked, 0);
    CU_ASSERT_EQUAL(objs[N - CAP + 1]->st_linked, 0);
    CU_ASSERT_EQUAL(objs[N - CAP + 2]->st_linked, 1);
    CU_ASSERT_EQUAL(v80->st_linked, 1);
    got = ts_lookup(store, "k", ts_match_variant, "v:80\n", NULL);
    CU_ASSERT_PTR_EQUAL(got, v80);
    cr_object_release(&got);
    n = cr_store_lookup_all(store, "k", 1, cr_hash("k", 1), out, N);
    CU_ASSERT_EQUAL(n, CAP);
    kept_bytes = 0;
    for (i = 0; i != CR_MIN(n, (size_t)N); ++i) {
        kept_bytes += ts_charge(out[i]);
        cr_object_release(&out[i]);
    }
    CU_ASSERT_EQUAL(ts_bytes(store), kept_bytes + ts_charge(other) + tag_bytes);

    /* a purge of the key takes the cap's worth, and only them */
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "k", 1, cr_hash("k", 1), 0), CAP);
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    CU_ASSERT_EQUAL(ts_bytes(store), ts_charge(other) + cr_store_tag_charge(1));
    for (i = 0; i != N + 2; ++i)
        cr_object_release(&objs[i]);
    cr_object_release(&v80);
    cr_object_release(&other);
    cr_store_free(&store);

    /* cap 1: one variant per key; cr_store_new() and a 0 cap take the default */
    store = cr_store_new_bounded(1 << 20, 1);
    CU_ASSERT_FATAL(store != NULL);
    for (i = 0; i != 3; ++i) {
        snprintf(variant, sizeof(variant), "v:%zu\n", i);
        objs[i] = ts_make("one", variant, 1, 'o');
        CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
    }
    CU_ASSERT_EQUAL(cr_store_count(store), 1);
    CU_ASSERT_EQUAL(cr_store_variant_evictions(store), 2);
    got = ts_lookup(store, "one", NULL, NULL, &nv);
    CU_ASSERT_PTR_EQUAL(got, objs[2]);
    CU_ASSERT_EQUAL(nv, 1);
    cr_object_release(&got);
    for (i = 0; i != 3; ++i)
        cr_object_release(&objs[i]);
    cr_store_free(&store);
    store = cr_store_new(1 << 20);
    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_variants_per_key(store), CR_STORE_VARIANTS_PER_KEY_DEFAULT);
    cr_store_free(&store);
    store = cr_store_new_bounded(1 << 20, 0);
    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_variants_per_key(store), CR_STORE_VARIANTS_PER_KEY_DEFAULT);
    cr_store_free(&store);
}

static void test_store_lookup_all(void)
{
    cr_store_t *store = cr_store_new(64 << 20);
    cr_object_t *objs[3], *out[4];
    size_t i, n, seen = 0;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_store_lookup_all(store, "k", 1, cr_hash("k", 1), out, 4), 0);
    CU_ASSERT_EQUAL(cr_store_lookup_all(store, "k", 1, cr_hash("k", 1), NULL, 0), 0);
    for (i = 0; i != 3; ++i) {
        char v[8];
        snprintf(v, sizeof(v), "v:%zu\n", i);
        objs[i] = ts_make_tagged("k", v, i, "t");
        CU_ASSERT_EQUAL(cr_store_insert(store, objs[i]), CR_OK);
    }
    {
        cr_object_t *other = ts_make_tagged("k2", NULL, 1, NULL);
        CU_ASSERT_EQUAL(cr_store_insert(store, other), CR_OK);
        cr_object_release(&other);
    }
    n = cr_store_lookup_all(store, "k", 1, cr_hash("k", 1), out, 4);
    CU_ASSERT_EQUAL(n, 3);
    for (i = 0; i != n; ++i) {
        seen |= (size_t)1 << (cr_object_variant_key(out[i]).base[2] - '0');
        CU_ASSERT_EQUAL(out[i]->refcnt, 3);
        CU_ASSERT_EQUAL(out[i]->st_referenced, 0); /* inspection does not count as a hit */
        cr_object_release(&out[i]);
    }
    CU_ASSERT_EQUAL(seen, 7);
    /* fewer slots than variants: the count is still the total */
    CU_ASSERT_EQUAL(cr_store_lookup_all(store, "k", 1, cr_hash("k", 1), out, 2), 3);
    cr_object_release(&out[0]);
    cr_object_release(&out[1]);
    for (i = 0; i != 3; ++i) {
        CU_ASSERT_EQUAL(objs[i]->refcnt, 2);
        cr_object_release(&objs[i]);
    }
    cr_store_free(&store);
}

/* An object for the epoch tests: key, tags, and path_hash as corral sets it. */
static cr_object_t *ts_make_pathed(const char *key, size_t bodylen, const char *tags)
{
    cr_object_t *obj = ts_make_tagged(key, NULL, bodylen, tags);
    obj->path_hash = cr_path_hash(cr_object_key(obj));
    return obj;
}

static void ts_epoch(cr_store_t *store, const char *key, cr_store_epoch_t *out)
{
    cr_store_fill_epoch(store, cr_path_hash(cr_str(key, strlen(key))), out);
}

/* Purges what `what` says while a fill of `key` (tags `tags`) is "in flight"; returns what its insert returned. */
static int ts_fill_around(cr_store_t *store, const char *key, const char *tags, void (*what)(cr_store_t *))
{
    cr_store_epoch_t e;
    cr_object_t *obj;
    int ret, moved;

    ts_epoch(store, key, &e);
    what(store);
    obj = ts_make_pathed(key, 10, tags);
    moved = cr_store_epoch_moved(store, &e, obj);
    ret = cr_store_insert_if_epoch(store, obj, &e);
    CU_ASSERT_EQUAL(moved, ret == CR_DECLINED);
    if (ret == CR_OK) {
        CU_ASSERT_EQUAL(cr_store_remove_object(store, obj), 1);
    } else {
        CU_ASSERT_EQUAL(obj->st_linked, 0);
    }
    cr_object_release(&obj);
    return ret;
}

static int ts_same_path_any(void *ctx, const cr_object_t *obj)
{
    cr_str_t p = cr_inval_key_path(cr_object_key(obj));
    return cr_str_eq(p, ctx, strlen(ctx));
}

static void ts_purge_path_a(cr_store_t *s)
{
    cr_store_purge_path(s, cr_path_hash_of_path(CR_STR("/a")), ts_same_path_any, (void *)"/a", 0);
}
static void ts_purge_path_b_soft(cr_store_t *s)
{
    cr_store_purge_path(s, cr_path_hash_of_path(CR_STR("/b")), ts_same_path_any, (void *)"/b", 1);
}
static void ts_purge_key_a(cr_store_t *s)
{
    cr_store_purge_key(s, "h\n/a", 4, cr_hash("h\n/a", 4), 0);
}
static void ts_purge_pfx_v1(cr_store_t *s)
{
    cr_store_purge_path_prefix(s, "/v1/", 4, 0);
}
static void ts_purge_pfx_v1_soft(cr_store_t *s)
{
    cr_store_purge_path_prefix(s, "/v1/", 4, 1);
}
static void ts_purge_keypfx_h(cr_store_t *s)
{
    cr_store_purge_prefix(s, "h\n/v", 4, 0);
}
static void ts_purge_tag_t(cr_store_t *s)
{
    cr_store_purge_tag(s, "t", 1, 0);
}
static void ts_purge_tag_t_soft(cr_store_t *s)
{
    cr_store_purge_tag(s, "t", 1, 1);
}
static void ts_purge_clear(cr_store_t *s)
{
    cr_store_clear(s);
}
static int ts_any(void *ctx, const cr_object_t *obj)
{
    (void)ctx;
    (void)obj;
    return 0;
}
static void ts_purge_if_nothing(cr_store_t *s)
{
    cr_store_purge_if(s, ts_any, NULL, 0);
}
static void ts_not_an_invalidation(cr_store_t *s)
{
    /* inserts, replacements, remove_object and eviction are not invalidations */
    cr_object_t *o = ts_make_pathed("h\n/a", 10, "t"), *o2 = ts_make_pathed("h\n/a", 20, "t");
    CU_ASSERT_EQUAL(cr_store_insert(s, o), CR_OK);
    CU_ASSERT_EQUAL(cr_store_insert(s, o2), CR_OK);
    CU_ASSERT_EQUAL(cr_store_remove_object(s, o2), 1);
    cr_object_release(&o);
    cr_object_release(&o2);
}

static void test_store_epochs(void)
{
    cr_store_t *store = cr_store_new(64 << 20);
    cr_object_t *obj, *other;
    cr_store_epoch_t e, e2;
    size_t i;
    char key[32];

    CU_ASSERT_FATAL(store != NULL);
    /* each purge declines the fills it covers, soft purges too, even when nothing is stored */
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/a", NULL, ts_purge_path_a), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/a?x=1", NULL, ts_purge_path_a), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "g\n/a", NULL, ts_purge_path_a), CR_DECLINED); /* paths span authorities */
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/b", NULL, ts_purge_path_b_soft), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/a", NULL, ts_purge_key_a), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/v1/users/1", NULL, ts_purge_pfx_v1), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/v1/", NULL, ts_purge_pfx_v1_soft), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/v2/x", NULL, ts_purge_keypfx_h), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/x", "u,t", ts_purge_tag_t), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/x", "t", ts_purge_tag_t_soft), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/x", NULL, ts_purge_clear), CR_DECLINED);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/x", NULL, ts_purge_if_nothing), CR_DECLINED); /* a predicate: all */
    /* and leaves the others alone */
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/ab", NULL, ts_purge_path_a), CR_OK);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/b", NULL, ts_purge_path_a), CR_OK);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/a?x=1", NULL, ts_purge_key_a), CR_OK);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/v1", NULL, ts_purge_pfx_v1), CR_OK);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/v2/users/1", NULL, ts_purge_pfx_v1_soft), CR_OK);
    CU_ASSERT_EQUAL(ts_fill_around(store, "g\n/v2/x", NULL, ts_purge_keypfx_h), CR_OK);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/x", "tt,u", ts_purge_tag_t), CR_OK);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/x", NULL, ts_purge_tag_t_soft), CR_OK);
    CU_ASSERT_EQUAL(ts_fill_around(store, "h\n/a", "t", ts_not_an_invalidation), CR_OK);

    /* a purge of a path before the fill began does not count; one after it does, until a new epoch is taken */
    ts_purge_path_a(store);
    ts_epoch(store, "h\n/a", &e);
    obj = ts_make_pathed("h\n/a", 10, "t");
    CU_ASSERT_EQUAL(cr_store_epoch_moved(store, &e, obj), 0);
    ts_purge_path_a(store);
    CU_ASSERT_EQUAL(cr_store_insert_if_epoch(store, obj, &e), CR_DECLINED);
    CU_ASSERT_EQUAL(obj->refcnt, 1);
    CU_ASSERT_EQUAL(cr_store_count(store), 0);
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 0);
    ts_epoch(store, "h\n/a", &e2);
    CU_ASSERT_EQUAL(cr_store_insert_if_epoch(store, obj, &e2), CR_OK);
    CU_ASSERT_EQUAL(obj->st_linked, 1);
    /* unrelated path purges, many of them, leave a fill alone (the rare slot mate aside) */
    ts_epoch(store, "h\n/zzz", &e);
    for (i = 0; i != 200; ++i) {
        snprintf(key, sizeof(key), "/other/%zu", i);
        if (cr_inval_slot_of(cr_path_hash_of_path(cr_str(key, strlen(key)))) !=
            cr_inval_slot_of(cr_path_hash_of_path(CR_STR("/zzz"))))
            cr_store_purge_path(store, cr_path_hash_of_path(cr_str(key, strlen(key))), ts_same_path_any, key, 0);
    }
    other = ts_make_pathed("h\n/zzz", 1, NULL);
    CU_ASSERT_EQUAL(cr_store_insert_if_epoch(store, other, &e), CR_OK);
    /* a replacement under an epoch taken before a purge of its path: declined, the old object stays purged */
    cr_object_release(&other);
    ts_epoch(store, "h\n/zzz", &e);
    cr_store_purge_path(store, cr_path_hash_of_path(CR_STR("/zzz")), ts_same_path_any, (void *)"/zzz", 0);
    other = ts_make_pathed("h\n/zzz", 2, NULL);
    CU_ASSERT_EQUAL(cr_store_insert_if_epoch(store, other, &e), CR_DECLINED);
    CU_ASSERT_PTR_NULL(cr_store_lookup(store, "h\n/zzz", 6, cr_hash("h\n/zzz", 6), NULL, NULL, NULL));
    /* the oversize rule still applies */
    cr_object_release(&other);
    ts_epoch(store, "h\n/zzz", &e);
    other = ts_make_pathed("h\n/zzz", (size_t)64 << 20, NULL);
    CU_ASSERT_EQUAL(cr_store_insert_if_epoch(store, other, &e), CR_DECLINED);
    CU_ASSERT_EQUAL(cr_store_epoch_moved(store, &e, other), 0);
    cr_object_release(&other);
    cr_object_release(&obj);
    cr_store_free(&store);

    /* eviction is not an invalidation */
    store = cr_store_new(4096);
    CU_ASSERT_FATAL(store != NULL);
    ts_epoch(store, "h\n/zzz", &e);
    for (i = 0; i != 100; ++i) {
        snprintf(key, sizeof(key), "h\n/evict/%zu", i);
        obj = ts_make_pathed(key, 500, "t");
        CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
        cr_object_release(&obj);
    }
    CU_ASSERT(cr_store_evictions(store) > 0);
    other = ts_make_pathed("h\n/zzz", 1, "t");
    CU_ASSERT_EQUAL(cr_store_epoch_moved(store, &e, other), 0);
    cr_object_release(&other);
    cr_store_free(&store);
}

/*
 * Purges versus fills. TS_PF_FILLERS threads fill like flight.c would: take the key's epoch, read how many purges
 * have started (s0), "fetch", then insert_if_epoch. One purger thread runs purges that cover every filler object
 * (tag, key prefix, path prefix, the path of every filler key one after another, hard and soft, and clear), counting each as started before and completed after it runs. Checked:
 *  - a fill that sees a purge completed which started after its epoch read (completed > s0 before inserting) is
 *    always declined;
 *  - once a purge that started after a stored fill's epoch read has completed, that object is unlinked or marked
 *    invalidated (each filler checks its recent objects as soon as it sees such a completion, through lookup_all);
 *  - at the end, every filler object still linked either was filled after the last purge started (s0 == final) or
 *    was soft-purged: no purge was undone by a fill that raced it.
 * Readers look up, check tags and flags, and remove stale objects, to shake the index.
 */
#define TS_PF_FILLERS 3
#define TS_PF_FILLS 4000
#define TS_PF_KEYS 200
#define TS_PF_PURGES 400

#define TS_PF_RING 16

static size_t ts_pf_started, ts_pf_completed; /* atomic */
static int ts_pf_done;                         /* atomic */

typedef struct {
    cr_store_t *store;
    unsigned seed;
    size_t bad, stored, declined, checked;
    cr_object_t **objs; /* every object this filler stored, referenced */
    size_t *s0s;
    size_t n;
    size_t ring[TS_PF_RING]; /* indexes into objs of stored objects not checked yet */
    size_t nring;
    size_t seen; /* atomic: the completed count of the filler's last ring check, SIZE_MAX once it is done */
} ts_pf_filler_t;

static ts_pf_filler_t ts_pf_ctx[TS_PF_FILLERS];

/* 1 when obj is linked (found by lookup_all under the shard lock) and not invalidated. */
static int ts_pf_live(cr_store_t *store, cr_object_t *obj)
{
    cr_object_t *all[4];
    size_t n = cr_store_lookup_all(store, cr_object_key(obj).base, cr_object_key(obj).len, obj->hash, all, 4), i;
    int live = 0;

    for (i = 0; i != CR_MIN(n, 4); ++i) {
        if (all[i] == obj && !ts_invalidated(obj))
            live = 1;
        cr_object_release(&all[i]);
    }
    return live;
}

/* Checks (and retires) the ring's objects for which a purge that started after their epoch read has completed. */
static void ts_pf_check_ring(ts_pf_filler_t *f)
{
    size_t completed = __atomic_load_n(&ts_pf_completed, __ATOMIC_SEQ_CST), i = 0;

    while (i != f->nring) {
        size_t idx = f->ring[i];
        if (completed > f->s0s[idx]) {
            if (ts_pf_live(f->store, f->objs[idx]))
                ++f->bad;
            ++f->checked;
            f->ring[i] = f->ring[--f->nring];
        } else {
            ++i;
        }
    }
    __atomic_store_n(&f->seen, completed, __ATOMIC_SEQ_CST);
}


static void *ts_pf_filler(void *arg)
{
    ts_pf_filler_t *f = arg;
    char key[32], tags[16];
    int i;

    for (i = 0; i != TS_PF_FILLS; ++i) {
        unsigned r = ts_rand(&f->seed), k = r % TS_PF_KEYS;
        size_t keylen = (size_t)snprintf(key, sizeof(key), "pf/%u", k), s0, c1;
        uint64_t path_hash = cr_path_hash(cr_str(key, keylen));
        cr_store_epoch_t epoch;
        cr_object_t *obj;
        int ret;

        cr_store_fill_epoch(f->store, path_hash, &epoch);
        s0 = __atomic_load_n(&ts_pf_started, __ATOMIC_SEQ_CST);
        snprintf(tags, sizeof(tags), "TT,k%u", k % 7);
        obj = ts_make_tagged(key, (r >> 16) % 2 ? "v:1\n" : "v:2\n", (r >> 8) % 200, tags); /* the "fetch" */
        obj->path_hash = path_hash;
        c1 = __atomic_load_n(&ts_pf_completed, __ATOMIC_SEQ_CST);
        ret = cr_store_insert_if_epoch(f->store, obj, &epoch);
        if (ret == CR_OK) {
            ++f->stored;
            if (c1 > s0)
                ++f->bad; /* a purge started after the epoch read and completed before the insert */
            f->objs[f->n] = obj;
            f->s0s[f->n] = s0;
            if (f->nring == TS_PF_RING)
                f->ring[0] = f->ring[--f->nring]; /* drop the oldest-ish unchecked one */
            f->ring[f->nring++] = f->n++;
        } else {
            ++f->declined;
            if (ret != CR_DECLINED)
                ++f->bad;
            cr_object_release(&obj);
        }
        ts_pf_check_ring(f);
    }
    /* a loaded machine may run every fill before the purger starts: the last ring is checked against every purge */
    while (__atomic_load_n(&ts_pf_completed, __ATOMIC_SEQ_CST) != TS_PF_PURGES) {
        ts_pf_check_ring(f);
        sched_yield();
    }
    ts_pf_check_ring(f);
    __atomic_store_n(&f->seen, SIZE_MAX, __ATOMIC_SEQ_CST);
    return NULL;
}

static int ts_pf_same_path(void *ctx, const cr_object_t *obj)
{
    cr_str_t p = cr_inval_key_path(cr_object_key(obj));
    return cr_str_eq(p, ctx, strlen(ctx));
}

static void *ts_pf_purger(void *arg)
{
    cr_store_t *store = arg;
    unsigned seed = 12345;
    size_t j;
    int i;

    for (i = 0; i != TS_PF_PURGES; ++i) {
        unsigned op = ts_rand(&seed) % 9;
        char key[32];
        size_t k;
        __atomic_add_fetch(&ts_pf_started, 1, __ATOMIC_SEQ_CST);
        if (op >= 5 && op <= 6) { /* what writes do: one path after another, here every filler key's */
            for (k = 0; k != TS_PF_KEYS; ++k) {
                size_t keylen = (size_t)snprintf(key, sizeof(key), "pf/%zu", k);
                cr_store_purge_path(store, cr_path_hash(cr_str(key, keylen)), ts_pf_same_path, key, op == 6);
            }
        } else if (op == 7)
            cr_store_purge_path_prefix(store, "pf/", 3, 0);
        else if (op == 8)
            cr_store_purge_path_prefix(store, "pf", 2, 1);
        else if (op == 0)
            cr_store_purge_tag(store, "TT", 2, 0);
        else if (op == 1)
            cr_store_purge_tag(store, "TT", 2, 1);
        else if (op == 2)
            cr_store_purge_prefix(store, "pf/", 3, 0);
        else if (op == 3)
            cr_store_purge_prefix(store, "pf/", 3, 1);
        else
            cr_store_clear(store);
        __atomic_add_fetch(&ts_pf_completed, 1, __ATOMIC_SEQ_CST);
        /* let every filler check its objects against this purge before the next one can clean up after it */
        for (j = 0; j != TS_PF_FILLERS; ++j)
            while (__atomic_load_n(&ts_pf_ctx[j].seen, __ATOMIC_SEQ_CST) < (size_t)i + 1)
                sched_yield();
    }
    return NULL;
}

static void *ts_pf_reader(void *arg)
{
    ts_pf_filler_t *t = arg;
    char key[32];

    while (!__atomic_load_n(&ts_pf_done, __ATOMIC_ACQUIRE)) {
        unsigned r = ts_rand(&t->seed), k = r % TS_PF_KEYS;
        size_t keylen = (size_t)snprintf(key, sizeof(key), "pf/%u", k), i;
        cr_object_t *obj = cr_store_lookup(t->store, key, keylen, cr_hash(key, keylen), NULL, NULL, NULL), *all[4];
        if (obj != NULL) {
            if (obj->num_tags != 2 || !cr_str_eq(obj->tags[0].name, "TT", 2) || !cr_str_eq(cr_object_key(obj), key, keylen))
                ++t->bad;
            if ((cr_object_flags(obj) & CR_OBJ_INVALIDATED) != 0 && r % 4 == 0)
                cr_store_remove_object(t->store, obj); /* a stale object found useless */
            cr_object_release(&obj);
        }
        if (r % 16 == 0) {
            size_t n = cr_store_lookup_all(t->store, key, keylen, cr_hash(key, keylen), all, 4);
            for (i = 0; i != CR_MIN(n, 4); ++i)
                cr_object_release(&all[i]);
            if (n > 2)
                ++t->bad;
        }
        if (r % 64 == 1)
            cr_store_purge_key(t->store, key, keylen, cr_hash(key, keylen), r % 128 == 1);
    }
    return NULL;
}

static void test_store_purge_threads(void)
{
    cr_store_t *store = cr_store_new(256 * 1024);
    pthread_t fillers[TS_PF_FILLERS], purger, reader;
    ts_pf_filler_t *ctx = ts_pf_ctx, rctx;
    size_t i, j, final, bad_end = 0, linked = 0, stored = 0, declined = 0, checked = 0, sum = 0, nobj = 0;
    char key[32];

    CU_ASSERT_FATAL(store != NULL);
    ts_pf_started = ts_pf_completed = 0;
    ts_pf_done = 0;
    memset(&rctx, 0, sizeof(rctx));
    rctx.store = store;
    rctx.seed = 777;
    for (i = 0; i != TS_PF_FILLERS; ++i) {
        memset(&ctx[i], 0, sizeof(ctx[i]));
        ctx[i].store = store;
        ctx[i].seed = 0x9e3779b9u * (unsigned)(i + 3);
        ctx[i].objs = calloc(TS_PF_FILLS, sizeof(*ctx[i].objs));
        ctx[i].s0s = calloc(TS_PF_FILLS, sizeof(*ctx[i].s0s));
        CU_ASSERT_FATAL(ctx[i].objs != NULL && ctx[i].s0s != NULL);
    }
    CU_ASSERT_FATAL(pthread_create(&reader, NULL, ts_pf_reader, &rctx) == 0);
    for (i = 0; i != TS_PF_FILLERS; ++i)
        CU_ASSERT_FATAL(pthread_create(&fillers[i], NULL, ts_pf_filler, &ctx[i]) == 0);
    CU_ASSERT_FATAL(pthread_create(&purger, NULL, ts_pf_purger, store) == 0);
    for (i = 0; i != TS_PF_FILLERS; ++i)
        pthread_join(fillers[i], NULL);
    pthread_join(purger, NULL);
    __atomic_store_n(&ts_pf_done, 1, __ATOMIC_RELEASE);
    pthread_join(reader, NULL);
    cr_store_reclaim(store); /* no lookup runs any more: what waited for readers is released */
    CU_ASSERT_EQUAL(cr_store_retired(store), 0);

    final = __atomic_load_n(&ts_pf_started, __ATOMIC_SEQ_CST);
    CU_ASSERT_EQUAL(final, TS_PF_PURGES);
    CU_ASSERT_EQUAL(rctx.bad, 0);
    for (i = 0; i != TS_PF_FILLERS; ++i) {
        CU_ASSERT_EQUAL(ctx[i].bad, 0);
        checked += ctx[i].checked;
        stored += ctx[i].stored;
        declined += ctx[i].declined;
        for (j = 0; j != ctx[i].n; ++j) {
            cr_object_t *obj = ctx[i].objs[j];
            if (obj->st_linked == 1) {
                ++linked;
                if (ctx[i].s0s[j] != final && !ts_invalidated(obj))
                    ++bad_end;
            }
        }
    }
    CU_ASSERT_EQUAL(bad_end, 0);
    CU_ASSERT(stored > 0);
    CU_ASSERT(checked > 0);
    CU_ASSERT_EQUAL(stored + declined, TS_PF_FILLERS * TS_PF_FILLS);

    /* quiescent accounting, tags included: every tag here is 2 bytes long */
    for (i = 0; i != TS_PF_KEYS; ++i) {
        ts_sum_t s = {0, 0};
        size_t keylen = (size_t)snprintf(key, sizeof(key), "pf/%zu", i);
        CU_ASSERT_PTR_NULL(cr_store_lookup(store, key, keylen, cr_hash(key, keylen), ts_match_sum, &s, NULL));
        sum += s.bytes;
        nobj += s.n;
    }
    CU_ASSERT_EQUAL(cr_store_count(store), nobj);
    CU_ASSERT(linked <= nobj);
    CU_ASSERT_EQUAL(cr_store_tag_bytes(store), cr_store_tag_entries(store) * cr_store_tag_charge(2));
    CU_ASSERT_EQUAL(ts_bytes(store), sum + cr_store_tag_bytes(store));
    CU_ASSERT(cr_store_bytes(store) <= cr_store_limit(store));
    CU_ASSERT_EQUAL(cr_store_clear(store), nobj);
    CU_ASSERT_EQUAL(ts_bytes(store), 0);
    CU_ASSERT_EQUAL(cr_store_tag_entries(store), 0);

    for (i = 0; i != TS_PF_FILLERS; ++i) {
        for (j = 0; j != ctx[i].n; ++j)
            cr_object_release(&ctx[i].objs[j]);
        free(ctx[i].objs);
        free(ctx[i].s0s);
    }
    cr_store_free(&store);
}

void cr_test_register_store(void)
{
    CU_pSuite suite = CU_add_suite("store", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "insert, lookup, replace", test_store_basic);
    CU_add_test(suite, "variants and remove_key", test_store_variants);
    CU_add_test(suite, "remove_key beyond one batch", test_store_remove_key_many);
    CU_add_test(suite, "byte accounting is exact", test_store_accounting);
    CU_add_test(suite, "declined when oversize", test_store_declined);
    CU_add_test(suite, "eviction keeps bytes under the limit", test_store_eviction_stream);
    CU_add_test(suite, "CLOCK second chance", test_store_clock_second_chance);
    CU_add_test(suite, "eviction goes oldest first among unreferenced objects", test_store_eviction_oldest_first);
    CU_add_test(suite, "remove_prefix", test_store_remove_prefix);
    CU_add_test(suite, "reader survives eviction", test_store_reader_survives);
    CU_add_test(suite, "threads", test_store_threads);
    CU_add_test(suite, "tags: index and hard purge", test_store_tags);
    CU_add_test(suite, "tags: 10 tagged among 100,000", test_store_tags_large);
    CU_add_test(suite, "soft purges", test_store_soft);
    CU_add_test(suite, "lookup_all", test_store_lookup_all);
    CU_add_test(suite, "variant cap: the oldest variant of a key gives way, counted, bytes exact", test_store_variant_cap);
    CU_add_test(suite, "path index: purge and collect every variant of a path", test_store_path_index);
    CU_add_test(suite, "epochs and insert_if_epoch", test_store_epochs);
    CU_add_test(suite, "threads: purges versus fills", test_store_purge_threads);
}
