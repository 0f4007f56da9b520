/*
 * test_thread_blocks.c: unit tests for thread_blocks.c: a freed block is handed out again on the same thread for a
 * size it fits (not for one more than twice smaller), another thread has its own blocks, the count and byte caps
 * free what is past them, and a thread's kept blocks are freed when it exits (the ASan pass's leak check would
 * report them otherwise). Blocks are writable over their whole size and 16-byte aligned.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "corral/core/thread_blocks.h"

static void counts(uint64_t *reused, uint64_t *fresh)
{
    cr_thread_blocks_counts(reused, fresh);
}

static void *reuse_on_one_thread(void *arg)
{
    uint64_t r0, f0, r, f;
    void *a, *b, *c, *blocks[CR_THREAD_BLOCKS_MAX + 4];
    size_t i;
    int *ok = arg;

    counts(&r0, &f0);
    a = cr_thread_blocks_alloc(300000);
    *ok = a != NULL && ((uintptr_t)a & 15) == 0;
    if (a != NULL)
        memset(a, 0xa5, 300000);
    cr_thread_blocks_free(a);
    b = cr_thread_blocks_alloc(250000); /* fits a (300000 <= 2 * 250000 + 4096): the same block */
    *ok = *ok && b == a;
    cr_thread_blocks_free(b);
    c = cr_thread_blocks_alloc(1000); /* far smaller: a new one, a is kept */
    *ok = *ok && c != NULL && c != a;
    cr_thread_blocks_free(c);
    counts(&r, &f);
    *ok = *ok && r - r0 == 1 && f - f0 == 2;

    /* more blocks than the cap keeps: the rest is freed (ASan would see a double free or a leak) */
    for (i = 0; i != CR_THREAD_BLOCKS_MAX + 4; ++i)
        blocks[i] = cr_thread_blocks_alloc(64 + i);
    for (i = 0; i != CR_THREAD_BLOCKS_MAX + 4; ++i)
        cr_thread_blocks_free(blocks[i]);
    /* one block over the byte cap is never kept */
    a = cr_thread_blocks_alloc(CR_THREAD_BLOCKS_BYTES + 1);
    *ok = *ok && a != NULL;
    cr_thread_blocks_free(a);
    counts(&r0, &f0);
    b = cr_thread_blocks_alloc(CR_THREAD_BLOCKS_BYTES + 1);
    counts(&r, &f);
    *ok = *ok && b != NULL && r == r0 && f == f0 + 1;
    cr_thread_blocks_free(b);
    cr_thread_blocks_free(NULL);
    return NULL; /* kept blocks are freed by the exit destructor */
}

static void test_reuse_and_caps(void)
{
    pthread_t th;
    int ok = 0;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, reuse_on_one_thread, &ok), 0);
    pthread_join(th, NULL);
    CU_ASSERT_TRUE(ok);
}

static void *keep_one(void *arg)
{
    void **out = arg;
    *out = cr_thread_blocks_alloc(4096);
    cr_thread_blocks_free(*out); /* kept by that thread, freed at its exit */
    return NULL;
}

/* In a thread of its own (the main thread's cache holds the blocks of earlier suites): is the block it gets for
 * the other thread's size a fresh one? */
static void *alloc_fresh(void *arg)
{
    int *fresh = arg;
    uint64_t r0, f0, r, f;
    void *p;
    counts(&r0, &f0);
    p = cr_thread_blocks_alloc(4096);
    counts(&r, &f);
    *fresh = p != NULL && f == f0 + 1 && r == r0;
    cr_thread_blocks_free(p);
    return NULL;
}

static void test_threads_keep_their_own(void)
{
    pthread_t th;
    void *theirs = NULL;
    int fresh = 0;

    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, keep_one, &theirs), 0);
    pthread_join(th, NULL);
    CU_ASSERT_PTR_NOT_NULL(theirs);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, alloc_fresh, &fresh), 0);
    pthread_join(th, NULL);
    CU_ASSERT_TRUE(fresh);
}

void cr_test_register_thread_blocks(void)
{
    CU_pSuite s = CU_add_suite("thread_blocks", NULL, NULL);
    CU_add_test(s, "freed blocks reused on their thread; count and byte caps; NULL", test_reuse_and_caps);
    CU_add_test(s, "each thread keeps its own blocks, freed when it exits", test_threads_keep_their_own);
}
