/*
 * test_generation.c: unit tests for config generations (conf/generation.c, and the hold a waiting request takes in
 * serve/handler.c): publish and acquire keep the reference counts right (an old generation someone still holds
 * survives a publish and goes at its last release: ASan/LSan catch a use after free or a leak), a thread's cached
 * generation is swapped only when the counter moved, a request that waits holds its generation across a publish
 * until its pool is disposed, and threads that take the generation while another publishes many see only live
 * ones, in order (run it under SANITIZE=address,undefined and SANITIZE=thread).
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <h2o.h>

#include "corral/conf/config.h"
#include "corral/conf/generation.h"
#include "corral/core/runtime.h"
#include "corral/serve/handler.h"

void cr_test_register_generation(void);

static const cr_config_t *gen_load(unsigned threads)
{
    char yaml[256], errbuf[512];
    cr_config_t *cfg;
    int n = snprintf(yaml, sizeof(yaml), "threads: %u\nlisten:\n  - address: 127.0.0.1:8081\nupstream: { url: 'http://127.0.0.1:8080' }\n",
                     threads);
    cfg = cr_config_load_string("gen.yaml", yaml, (size_t)n, errbuf, sizeof(errbuf));
    if (cfg == NULL)
        fprintf(stderr, "\n  test_generation.c: %s\n", errbuf);
    return cfg;
}

static unsigned refs_of(const cr_config_t *cfg)
{
    return atomic_load_explicit(&((cr_config_t *)cfg)->refs, memory_order_relaxed);
}

static void test_publish_acquire(void)
{
    const cr_config_t *a = gen_load(1), *b = gen_load(2), *held, *cur;
    uint64_t g0, g1, g2;

    CU_ASSERT_FATAL(a != NULL && b != NULL);
    CU_ASSERT_PTR_NULL(cr_rt_config_acquire(&g0)); /* nothing installed yet */
    cr_rt_config_publish(a);                      /* the process takes over the loader's reference */
    CU_ASSERT_EQUAL(refs_of(a), 1);
    held = cr_rt_config_acquire(&g1);
    CU_ASSERT_PTR_EQUAL(held, a);
    CU_ASSERT_EQUAL(refs_of(a), 2);
    CU_ASSERT_EQUAL(g1, g0 + 1);

    cr_rt_config_publish(b);
    CU_ASSERT_EQUAL(refs_of(a), 1); /* still alive: this test holds it */
    CU_ASSERT_EQUAL(a->magic, CR_CONFIG_MAGIC);
    CU_ASSERT_EQUAL(a->threads, 1);
    cur = cr_rt_config_acquire(&g2);
    CU_ASSERT_PTR_EQUAL(cur, b);
    CU_ASSERT_EQUAL(g2, g1 + 1);
    CU_ASSERT_EQUAL(refs_of(b), 2);
    cr_config_release(&held); /* the last reference to a: freed here (ASan reports any later use, LSan a leak) */
    CU_ASSERT_PTR_NULL(held);
    cr_config_release(&cur);
    CU_ASSERT_EQUAL(refs_of(b), 1);

    cr_rt_config_publish(NULL); /* b's last reference */
    CU_ASSERT_PTR_NULL(cr_rt_config_acquire(NULL));
}

static void test_thread_cache(void)
{
    const cr_config_t *a = gen_load(1), *b = gen_load(2);
    cr_thread_t t;
    uint64_t before;

    CU_ASSERT_FATAL(a != NULL && b != NULL);
    memset(&t, 0, sizeof(t));
    cr_rt_config_publish(a);
    cr_thread_config_init(&t);
    CU_ASSERT_PTR_EQUAL(t.cfg, a);
    CU_ASSERT_EQUAL(refs_of(a), 2);
    before = t.cfg_generation;

    /* no publish: the cache stays, nothing is retained */
    CU_ASSERT_PTR_EQUAL(cr_thread_config(&t), a);
    CU_ASSERT_PTR_EQUAL(cr_thread_config(&t), a);
    CU_ASSERT_EQUAL(refs_of(a), 2);
    CU_ASSERT_EQUAL(t.cfg_generation, before);

    /* a publish: the thread still has a until its next request starts */
    cr_rt_config_publish(b);
    CU_ASSERT_EQUAL(refs_of(a), 1);
    CU_ASSERT_PTR_EQUAL(t.cfg, a);
    CU_ASSERT_EQUAL(t.cfg->threads, 1);
    CU_ASSERT_PTR_EQUAL(cr_thread_config(&t), b); /* swapped: a had its last reference dropped */
    CU_ASSERT_EQUAL(t.cfg_generation, before + 1);
    CU_ASSERT_EQUAL(refs_of(b), 2);
    CU_ASSERT_PTR_EQUAL(cr_thread_config(&t), b);
    CU_ASSERT_EQUAL(refs_of(b), 2);

    cr_thread_config_fini(&t);
    CU_ASSERT_PTR_NULL(t.cfg);
    CU_ASSERT_EQUAL(refs_of(b), 1);
    cr_rt_config_publish(NULL);
}

/* A request that waits on a flight holds the generation it started with (cr_lookup_hold_generation, called by the
 * handler when cr_flight_join says it waits) until its pool is disposed, across a publish and the thread's swap. */
static void test_waiting_request_holds(void)
{
    const cr_config_t *a = gen_load(1), *b = gen_load(2);
    cr_thread_t t;
    h2o_req_t req;
    cr_lookup_t lk;

    CU_ASSERT_FATAL(a != NULL && b != NULL);
    memset(&t, 0, sizeof(t));
    memset(&req, 0, sizeof(req));
    memset(&lk, 0, sizeof(lk));
    h2o_mem_init_pool(&req.pool);
    cr_rt_config_publish(a);
    cr_thread_config_init(&t);

    /* on_req: the request borrows the thread's generation, then starts waiting */
    lk.fill.req = &req;
    lk.fill.cfg = cr_thread_config(&t);
    cr_lookup_hold_generation(&lk);
    CU_ASSERT_EQUAL(lk.holds_cfg, 1);
    CU_ASSERT_EQUAL(refs_of(a), 3); /* the process's, the thread's, the request's */
    cr_lookup_hold_generation(&lk); /* a second wait (a lookup again) takes no second reference */
    CU_ASSERT_EQUAL(refs_of(a), 3);

    /* a new generation is published and the thread moves on to it with its next request */
    cr_rt_config_publish(b);
    CU_ASSERT_PTR_EQUAL(cr_thread_config(&t), b);
    CU_ASSERT_EQUAL(refs_of(a), 1); /* only the waiting request keeps it */
    CU_ASSERT_EQUAL(lk.fill.cfg->magic, CR_CONFIG_MAGIC);
    CU_ASSERT_EQUAL(lk.fill.cfg->threads, 1); /* the answer, when it comes, is made under the old generation */

    h2o_mem_clear_pool(&req.pool); /* the request is disposed: a goes (ASan/LSan check it) */
    CU_ASSERT_EQUAL(refs_of(b), 2);
    cr_thread_config_fini(&t);
    cr_rt_config_publish(NULL);
}

/* ---- stress: readers take the generation while one thread publishes many ---- */

#define GEN_READERS 4
#define GEN_PUBLISHES 300

typedef struct {
    pthread_t tid;
    cr_thread_t t;
    int *stop;
    unsigned long swaps, reads;
    uint64_t seen; /* atomic: the counter value of the reader's cached generation, for the publisher to watch */
    int bad;
} gen_reader_t;

static void *gen_reader_main(void *arg)
{
    gen_reader_t *r = arg;
    uint64_t last = 0;

    cr_thread_config_init(&r->t);
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        const cr_config_t *cfg = cr_thread_config(&r->t), *own;
        if (r->t.cfg_generation != last) {
            if (r->t.cfg_generation < last)
                r->bad = 1; /* went back in time */
            last = r->t.cfg_generation;
            __atomic_store_n(&r->seen, last, __ATOMIC_RELAXED);
            ++r->swaps;
        }
        if (cfg == NULL || cfg->magic != CR_CONFIG_MAGIC || cfg->threads < 1 || cfg->threads > 8)
            r->bad = 1;
        /* and the way a request that outlives its call takes one: retain, use, release */
        own = cr_config_retain(cfg);
        if (own->threads != cfg->threads)
            r->bad = 1;
        cr_config_release(&own);
        /* and a direct acquire, as a thread's refresh does */
        own = cr_rt_config_acquire(NULL);
        if (own == NULL || own->magic != CR_CONFIG_MAGIC)
            r->bad = 1;
        cr_config_release(&own);
        ++r->reads;
    }
    cr_thread_config_fini(&r->t);
    return NULL;
}

static void test_stress(void)
{
    gen_reader_t readers[GEN_READERS];
    int stop = 0, i, loaded = 1;
    const cr_config_t *first = gen_load(1);

    CU_ASSERT_FATAL(first != NULL);
    cr_rt_config_publish(first);
    memset(readers, 0, sizeof(readers));
    for (i = 0; i != GEN_READERS; ++i) {
        readers[i].stop = &stop;
        CU_ASSERT_FATAL(pthread_create(&readers[i].tid, NULL, gen_reader_main, readers + i) == 0);
    }
    for (i = 0; i != GEN_PUBLISHES; ++i) {
        const cr_config_t *next = gen_load((unsigned)(i % 8) + 1);
        if (next == NULL) {
            loaded = 0;
            break;
        }
        cr_rt_config_publish(next);
        if (i % 16 == 0)
            sched_yield();
    }
    {
        /* every reader moves on to the last generation at its next "request" (bounded wait: 10 s) */
        uint64_t final_gen, waited_ms = 0;
        const cr_config_t *cur = cr_rt_config_acquire(&final_gen);
        cr_config_release(&cur);
        for (i = 0; i != GEN_READERS; ++i) {
            while (__atomic_load_n(&readers[i].seen, __ATOMIC_RELAXED) != final_gen && waited_ms < 10000) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
                ++waited_ms;
            }
            CU_ASSERT_EQUAL(__atomic_load_n(&readers[i].seen, __ATOMIC_RELAXED), final_gen);
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i != GEN_READERS; ++i) {
        pthread_join(readers[i].tid, NULL);
        CU_ASSERT_EQUAL(readers[i].bad, 0);
        CU_ASSERT(readers[i].reads > 0);
        CU_ASSERT_PTR_NULL(readers[i].t.cfg);
    }
    CU_ASSERT(loaded);
    {
        const cr_config_t *cur = cr_rt_config_acquire(NULL);
        CU_ASSERT_EQUAL(refs_of(cur), 2); /* every reader dropped its own: the process's and this one */
        cr_config_release(&cur);
    }
    cr_rt_config_publish(NULL); /* the last generation goes; every other one went at its last release (LSan) */
}

void cr_test_register_generation(void)
{
    CU_pSuite suite = CU_add_suite("generation publish and thread caches", NULL, NULL);
    CU_add_test(suite, "publish and acquire keep the counts; an old generation lives to its last release", test_publish_acquire);
    CU_add_test(suite, "a thread swaps its cached generation only when the counter moved", test_thread_cache);
    CU_add_test(suite, "a waiting request holds its generation across a publish", test_waiting_request_holds);
    CU_add_test(suite, "readers and a publisher at once", test_stress);
}
