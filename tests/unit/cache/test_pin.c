/*
 * test_pin.c: unit tests for sidecar/cache/pin.c: pins of a hot object leave its shared refcount alone, releases balance
 * whatever the slot holds (two objects sharing a slot), cr_pin_maintain() lets go of objects that left the store or
 * went unused, and a thread's pins are its own. References that do not balance show up as a wrong refcount here and
 * as leaks or use-after-free under ASan.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdlib.h>

#include "corral/cache/pin.h"
#include "corral/cache/store.h"
#include "fixtures.h"

void cr_test_register_pin(void);

static uint32_t tp_refcnt(const cr_object_t *obj)
{
    return __atomic_load_n(&obj->refcnt, __ATOMIC_RELAXED);
}

static void test_pin_hot_object(void)
{
    cr_store_t *store = cr_store_new(1 << 20);
    cr_object_t *obj = ts_make("pin/hot", NULL, 4, 'b'), *pins[1000];
    size_t i;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_EQUAL(cr_pin_drop_all(), 0);
    CU_ASSERT_EQUAL(cr_store_insert(store, obj), CR_OK);
    CU_ASSERT_EQUAL(tp_refcnt(obj), 2); /* ours and the store's */
    for (i = 0; i != 1000; ++i) {
        pins[i] = cr_store_lookup_pinned(store, "pin/hot", 7, cr_hash("pin/hot", 7), NULL, NULL, NULL);
        CU_ASSERT_PTR_EQUAL(pins[i], obj);
    }
    /* a thousand pins out, one shared reference for all of them */
    CU_ASSERT_EQUAL(tp_refcnt(obj), 3);
    CU_ASSERT_EQUAL(cr_pin_outstanding(), 1000);
    for (i = 0; i != 1000; ++i)
        cr_pin_release(&pins[i]);
    CU_ASSERT_PTR_NULL(pins[0]);
    CU_ASSERT_EQUAL(cr_pin_outstanding(), 0);
    CU_ASSERT_EQUAL(tp_refcnt(obj), 3); /* cached for the next hit */
    CU_ASSERT_EQUAL(cr_pin_cached(), 1);

    /* still linked and used: kept by one maintenance, dropped by the next one that finds it unused */
    cr_pin_maintain();
    CU_ASSERT_EQUAL(tp_refcnt(obj), 3);
    cr_pin_maintain();
    CU_ASSERT_EQUAL(tp_refcnt(obj), 2);
    CU_ASSERT_EQUAL(cr_pin_cached(), 0);

    /* purged: the next maintenance lets go at once */
    pins[0] = cr_store_lookup_pinned(store, "pin/hot", 7, cr_hash("pin/hot", 7), NULL, NULL, NULL);
    cr_pin_release(&pins[0]);
    CU_ASSERT_EQUAL(cr_store_purge_key(store, "pin/hot", 7, cr_hash("pin/hot", 7), 0), 1);
    CU_ASSERT_EQUAL(tp_refcnt(obj), 2); /* ours and the cached one */
    cr_pin_maintain();
    CU_ASSERT_EQUAL(tp_refcnt(obj), 1);
    cr_object_release(&obj);
    cr_store_free(&store);
}

/* Two objects whose addresses map to one slot: the second one's pins are plain references while the first is out;
 * whichever way the releases come, every count balances. */
static void test_pin_shared_slot(void)
{
    cr_object_t *objs[2048], *a = NULL, *b = NULL, *pa, *pb1, *pb2, *pb3;
    size_t i, j, n = 0;

    CU_ASSERT_EQUAL(cr_pin_drop_all(), 0);
    /* find two objects that collide: pin one, then see whether pinning another leaves the slot to it */
    for (n = 0; n != CR_ARRAY_SIZE(objs) && b == NULL; ++n) {
        objs[n] = ts_make("pin/slot", NULL, 4, 'b');
        for (j = 0; j != n && b == NULL; ++j) {
            uint32_t before;
            pa = objs[j];
            cr_pin_acquire(pa);
            before = tp_refcnt(objs[n]);
            pb1 = objs[n];
            cr_pin_acquire(pb1);
            if (tp_refcnt(objs[n]) == before + 1 && cr_pin_cached() == 1) {
                /* pb1 is a plain reference beside a busy slot: a collision */
                a = objs[j];
                b = objs[n];
            }
            cr_pin_release(&pb1);
            cr_pin_release(&pa);
            cr_pin_drop_all();
        }
    }
    CU_ASSERT_FATAL(a != NULL && b != NULL);
    CU_ASSERT_EQUAL(tp_refcnt(a), 1);
    CU_ASSERT_EQUAL(tp_refcnt(b), 1);

    pa = a;
    cr_pin_acquire(pa); /* a takes the slot */
    pb1 = b;
    cr_pin_acquire(pb1); /* busy: plain */
    CU_ASSERT_EQUAL(tp_refcnt(a), 2);
    CU_ASSERT_EQUAL(tp_refcnt(b), 2);
    cr_pin_release(&pa); /* a's count 0, cached */
    pb2 = b;
    cr_pin_acquire(pb2); /* evicts a, takes the slot */
    CU_ASSERT_EQUAL(tp_refcnt(a), 1);
    CU_ASSERT_EQUAL(tp_refcnt(b), 3);
    pb3 = b;
    cr_pin_acquire(pb3); /* counted on the slot */
    CU_ASSERT_EQUAL(tp_refcnt(b), 3);
    CU_ASSERT_EQUAL(cr_pin_outstanding(), 3);
    cr_pin_release(&pb1);
    cr_pin_release(&pb2);
    cr_pin_release(&pb3);
    CU_ASSERT_EQUAL(cr_pin_outstanding(), 0);
    CU_ASSERT_EQUAL(cr_pin_drop_all(), 0);
    CU_ASSERT_EQUAL(tp_refcnt(b), 1);
    for (i = 0; i != n; ++i)
        cr_object_release(&objs[i]);
}

/* A thread's pins are its own: another thread's table neither holds nor frees them. */
typedef struct {
    cr_object_t *obj;
    uint32_t during;
    size_t cached_at_start, left;
} tp_thread_t;

static void *tp_thread(void *p)
{
    tp_thread_t *t = p;
    cr_object_t *a = t->obj, *b = t->obj;

    t->cached_at_start = cr_pin_cached();
    cr_pin_acquire(a);
    cr_pin_acquire(b);
    t->during = tp_refcnt(t->obj);
    cr_pin_release(&a);
    cr_pin_release(&b);
    t->left = cr_pin_drop_all();
    return NULL;
}

static void test_pin_threads(void)
{
    cr_object_t *obj = ts_make("pin/thread", NULL, 4, 'b'), *mine = obj;
    tp_thread_t t = {obj, 0, 99, 99};
    pthread_t th;

    cr_pin_acquire(mine); /* the main thread's slot holds one reference */
    CU_ASSERT_EQUAL(tp_refcnt(obj), 2);
    CU_ASSERT_FATAL(pthread_create(&th, NULL, tp_thread, &t) == 0);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(t.cached_at_start, 0);
    CU_ASSERT_EQUAL(t.during, 3); /* the other thread's slot took its own */
    CU_ASSERT_EQUAL(t.left, 0);
    CU_ASSERT_EQUAL(tp_refcnt(obj), 2); /* and gave it back when it dropped everything */
    cr_pin_release(&mine);
    CU_ASSERT_EQUAL(cr_pin_drop_all(), 0);
    CU_ASSERT_EQUAL(tp_refcnt(obj), 1);
    cr_object_release(&obj);
}

void cr_test_register_pin(void)
{
    CU_pSuite suite = CU_add_suite("pin", NULL, NULL);

    CU_add_test(suite, "a hot object's pins leave its refcount alone", test_pin_hot_object);
    CU_add_test(suite, "two objects in one slot balance", test_pin_shared_slot);
    CU_add_test(suite, "pins are per thread", test_pin_threads);
}
