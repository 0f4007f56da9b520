/*
 * test_inval_ring.c: unit tests for sidecar/tier/inval_ring.c, the seen ring of the invalidation log.
 *
 * The since / floor rule (an entry above since refuses what it covers, since below the floor refuses everything,
 * skipped seq numbers are empty), set_floor, overflow raising the floor to the evicted seq, out-of-order and repeated
 * adds, pending publications (cover whatever since, removed by their (pod_id, local_id) coming back, forgotten on
 * request, the oldest dropped past CR_INVAL_PENDING_MAX with the floor raised to top), allocation failures (a second
 * copy of inval_ring.c whose entry copies fail on request: the floor rises, nothing is lost), and one thread adding
 * while another reads top and asks, bounded in count: an entry at or below a top a reader saw is always there.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/cache/objbuild.h"
#include "corral/tier/inval_ring.h"

void cr_test_register_inval_ring(void);

#define IR_POD 0xfeedull

/* A finished object for "a.example\n<path>" with one tag (or none when tag is NULL). */
static cr_object_t *ir_object(const char *path, const char *tag)
{
    char key[256];
    cr_object_t *obj;
    cr_str_t t;
    int n = snprintf(key, sizeof(key), "a.example\n%s", path);

    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(key));
    CU_ASSERT_FATAL((obj = cr_fill_object_new(cr_str(key, (size_t)n), 200)) != NULL);
    if (tag != NULL) {
        t = cr_str(tag, strlen(tag));
        CU_ASSERT_FATAL(cr_object_set_tags(obj, &t, 1) == CR_OK);
    }
    return cr_object_finish(obj);
}

/* An entry naming one exact path (pod, local id given); `path` must outlive its use (the ring copies it). */
static cr_inval_entry_t ir_path_entry(uint64_t pod, uint64_t local, const cr_str_t *path)
{
    cr_inval_entry_t e = {0};
    e.pod_id = pod;
    e.local_id = local;
    e.paths = path;
    e.num_paths = 1;
    return e;
}

static void test_ring_since_and_floor(void)
{
    static const cr_str_t p42 = CR_STR("/v1/users/42"), tagx = CR_STR("x");
    cr_inval_ring_t *ring = cr_inval_ring_new(8);
    cr_object_t *o42 = ir_object("/v1/users/42", NULL), *o7 = ir_object("/v1/users/7", "x"), *other = ir_object("/z", NULL);
    cr_inval_entry_t e = ir_path_entry(1, 1, &p42), t = {0};

    CU_ASSERT_FATAL(ring != NULL);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 0, o42), 0);

    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 1, &e), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 0, o42), 1); /* written before entry 1 was seen */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 1, o42), 0); /* written after */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 0, o7), 0);  /* not covered */

    t.pod_id = 1;
    t.local_id = 2;
    t.tags = &tagx;
    t.num_tags = 1;
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 3, &t), CR_OK); /* 2 skipped: proved empty */
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 3);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 2, o7), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 3, o7), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 1, o42), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 0, o42), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 100, o42), 0); /* the writer saw more than this pod */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 0, other), 0);

    /* entries up to 5 lost: nothing at or below 4 can be vouched for */
    cr_inval_ring_set_floor(ring, 5);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 5);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 5);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 4, other), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 0, other), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 5, other), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 5, o42), 0);
    /* a lower floor changes nothing; an entry at or below the floor is not kept */
    cr_inval_ring_set_floor(ring, 2);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 5);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 5);
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 4, &e), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 5);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 5, o42), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 6, &e), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 6);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 5, o42), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 6, o42), 0);
    /* a floor above top raises top with it */
    cr_inval_ring_set_floor(ring, 9);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 9);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 9, o42), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 8, o42), 1);

    cr_inval_ring_free(&ring);
    CU_ASSERT_PTR_NULL(ring);
    cr_inval_ring_free(&ring); /* NULL is fine */
    cr_object_release(&o42);
    cr_object_release(&o7);
    cr_object_release(&other);
}

static void test_ring_overflow(void)
{
    static const cr_str_t paths[] = {CR_STR("/p10"), CR_STR("/p11"), CR_STR("/p12"), CR_STR("/p13"), CR_STR("/p14")};
    cr_inval_ring_t *ring = cr_inval_ring_new(3), *none = cr_inval_ring_new(0);
    cr_object_t *objs[5];
    cr_inval_entry_t e;
    size_t i;

    CU_ASSERT_FATAL(ring != NULL && none != NULL);
    for (i = 0; i != 5; ++i) {
        char p[8];
        snprintf(p, sizeof(p), "/p%zu", 10 + i);
        objs[i] = ir_object(p, NULL);
    }
    for (i = 0; i != 3; ++i) {
        e = ir_path_entry(1, i + 1, &paths[i]);
        CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 10 + i, &e), CR_OK);
    }
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 9, objs[0]), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 9, objs[4]), 0); /* nothing covers /p14 yet, and 0..9 were empty */
    e = ir_path_entry(1, 4, &paths[3]);
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 13, &e), CR_OK); /* evicts 10 */
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 10);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 13);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 9, objs[4]), 1); /* entry 10 may have covered it: cannot prove */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 10, objs[0]), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 10, objs[1]), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 12, objs[3]), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 12, objs[2]), 0);
    e = ir_path_entry(1, 5, &paths[4]);
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 14, &e), CR_OK); /* evicts 11 */
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 11);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 10, objs[0]), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 11, objs[1]), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 11, objs[2]), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 11, objs[4]), 1);

    /* a ring that holds nothing: each add is a floor */
    CU_ASSERT_EQUAL(cr_inval_ring_add(none, 5, &e), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(none), 5);
    CU_ASSERT_EQUAL(cr_inval_ring_top(none), 5);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(none, 4, objs[0]), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(none, 5, objs[4]), 0);

    cr_inval_ring_free(&ring);
    cr_inval_ring_free(&none);
    for (i = 0; i != 5; ++i)
        cr_object_release(&objs[i]);
}

static void test_ring_out_of_order(void)
{
    static const cr_str_t pa = CR_STR("/a"), pb = CR_STR("/b");
    cr_inval_ring_t *ring = cr_inval_ring_new(8);
    cr_object_t *a = ir_object("/a", NULL), *b = ir_object("/b", NULL);
    cr_inval_entry_t ea = ir_path_entry(1, 1, &pa), eb = ir_path_entry(1, 2, &pb);

    CU_ASSERT_FATAL(ring != NULL);
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 20, &ea), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 22, &eb), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 22, &eb), CR_OK); /* a re-read: nothing moves */
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 20, &ea), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 19, a), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 20, a), 0);
    /* 21 was taken as empty; an entry there now cannot be placed: the floor rises to it */
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 21, &ea), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 21);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 22);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 20, a), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 21, a), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 21, b), 1); /* entry 22 still held */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 22, b), 0);
    cr_inval_ring_free(&ring);
    cr_object_release(&a);
    cr_object_release(&b);
}

static void test_ring_pending(void)
{
    static const cr_str_t p42 = CR_STR("/v1/users/42"), pz = CR_STR("/z");
    static cr_str_t pend[CR_INVAL_PENDING_MAX + 1];
    static char pendbuf[CR_INVAL_PENDING_MAX + 1][16];
    cr_inval_ring_t *ring = cr_inval_ring_new(64);
    cr_object_t *o42 = ir_object("/v1/users/42", NULL), *oz = ir_object("/z", NULL), *first, *second, *last;
    cr_inval_entry_t mine = ir_path_entry(IR_POD, 1, &p42), theirs = ir_path_entry(IR_POD + 1, 1, &p42), e;
    size_t i;

    CU_ASSERT_FATAL(ring != NULL);
    CU_ASSERT_EQUAL(cr_inval_ring_add_pending(ring, &mine), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_num_pending(ring), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 0); /* pending entries have no seq */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 0, o42), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, UINT64_MAX, o42), 1); /* whatever since */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, UINT64_MAX, oz), 0);
    /* another pod's entry with the same local id does not settle it */
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 1, &theirs), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_num_pending(ring), 1);
    /* seen back in the log at 2: from then on it is an entry like any other */
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 2, &mine), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_num_pending(ring), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 2, o42), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 1, o42), 1);

    /* forgetting */
    e = ir_path_entry(IR_POD, 2, &pz);
    CU_ASSERT_EQUAL(cr_inval_ring_add_pending(ring, &e), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 2, oz), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_forget_pending(ring, IR_POD, 3), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_forget_pending(ring, IR_POD + 1, 2), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_forget_pending(ring, IR_POD, 2), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_num_pending(ring), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 2, oz), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 0);

    /* past CR_INVAL_PENDING_MAX: the oldest is dropped and the floor rises to top (2) */
    for (i = 0; i != CR_INVAL_PENDING_MAX + 1; ++i) {
        pend[i] = cr_str(pendbuf[i], (size_t)snprintf(pendbuf[i], sizeof(pendbuf[i]), "/pend/%zu", i));
        e = ir_path_entry(IR_POD, 100 + i, &pend[i]);
        CU_ASSERT_EQUAL(cr_inval_ring_add_pending(ring, &e), CR_OK);
        if (i + 1 == CR_INVAL_PENDING_MAX)
            CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 0);
    }
    CU_ASSERT_EQUAL(cr_inval_ring_num_pending(ring), CR_INVAL_PENDING_MAX);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(ring), 2);
    CU_ASSERT_EQUAL(cr_inval_ring_top(ring), 2);
    first = ir_object("/pend/0", NULL);
    second = ir_object("/pend/1", NULL);
    last = ir_object("/pend/1024", NULL);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 1, oz), 1); /* below the floor */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 2, oz), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 2, first), 0); /* dropped */
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 2, second), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(ring, 2, last), 1);
    /* the middle one comes back from the log: only it leaves, the order of the others is kept */
    e = ir_path_entry(IR_POD, 100 + 500, &pend[500]);
    CU_ASSERT_EQUAL(cr_inval_ring_add(ring, 3, &e), CR_OK);
    CU_ASSERT_EQUAL(cr_inval_ring_num_pending(ring), CR_INVAL_PENDING_MAX - 1);
    CU_ASSERT_EQUAL(cr_inval_ring_forget_pending(ring, IR_POD, 100 + 500), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_forget_pending(ring, IR_POD, 100 + 1), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_forget_pending(ring, IR_POD, 100 + CR_INVAL_PENDING_MAX), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_num_pending(ring), CR_INVAL_PENDING_MAX - 3);
    cr_inval_ring_free(&ring); /* frees what is pending (LSan checks) */
    cr_object_release(&o42);
    cr_object_release(&oz);
    cr_object_release(&first);
    cr_object_release(&second);
    cr_object_release(&last);
}

/* ---- allocation failures: inval_ring.c compiled a second time, its entry copies and callocs failing on request
 * (its external names get an oom_ prefix so the copy lives beside the library's) ---- */

static int ir_fail_at = -1; /* the allocation (0 = the next one) that fails; -1: none */

static int ir_fails(void)
{
    return ir_fail_at >= 0 && ir_fail_at-- == 0;
}
static cr_inval_entry_t *ir_copy(const cr_inval_entry_t *e)
{
    return ir_fails() ? NULL : cr_inval_entry_copy(e);
}
static void *ir_calloc(size_t n, size_t size)
{
    return ir_fails() ? NULL : calloc(n, size);
}

#define cr_inval_entry_copy ir_copy
#define calloc ir_calloc
#define cr_inval_ring_new oom_cr_inval_ring_new
#define cr_inval_ring_free oom_cr_inval_ring_free
#define cr_inval_ring_add oom_cr_inval_ring_add
#define cr_inval_ring_set_floor oom_cr_inval_ring_set_floor
#define cr_inval_ring_top oom_cr_inval_ring_top
#define cr_inval_ring_floor oom_cr_inval_ring_floor
#define cr_inval_ring_add_pending oom_cr_inval_ring_add_pending
#define cr_inval_ring_forget_pending oom_cr_inval_ring_forget_pending
#define cr_inval_ring_num_pending oom_cr_inval_ring_num_pending
#define cr_inval_ring_refuses oom_cr_inval_ring_refuses
#include "../../../sidecar/tier/inval_ring.c"
#undef cr_inval_entry_copy
#undef calloc
#undef cr_inval_ring_new
#undef cr_inval_ring_free
#undef cr_inval_ring_add
#undef cr_inval_ring_set_floor
#undef cr_inval_ring_top
#undef cr_inval_ring_floor
#undef cr_inval_ring_add_pending
#undef cr_inval_ring_forget_pending
#undef cr_inval_ring_num_pending
#undef cr_inval_ring_refuses

static void test_ring_oom(void)
{
    static const cr_str_t pa = CR_STR("/a");
    cr_inval_entry_t ea = ir_path_entry(IR_POD, 1, &pa);
    cr_object_t *a = ir_object("/a", NULL), *b = ir_object("/b", NULL);
    cr_inval_ring_t *ring;

    ir_fail_at = 0;
    CU_ASSERT_PTR_NULL(oom_cr_inval_ring_new(4)); /* the ring */
    ir_fail_at = 1;
    CU_ASSERT_PTR_NULL(oom_cr_inval_ring_new(4)); /* its slots */
    CU_ASSERT_FATAL((ring = oom_cr_inval_ring_new(4)) != NULL);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_add(ring, 5, &ea), CR_OK);
    /* an entry that cannot be copied: the floor rises to its seq instead of losing it */
    ir_fail_at = 0;
    CU_ASSERT_EQUAL(oom_cr_inval_ring_add(ring, 7, &ea), CR_ERROR);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_floor(ring), 7);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_top(ring), 7);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_refuses(ring, 6, b), 1);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_refuses(ring, 7, a), 0);
    /* a pending one that cannot be copied: the floor rises to top */
    CU_ASSERT_EQUAL(oom_cr_inval_ring_add(ring, 9, &ea), CR_OK);
    ir_fail_at = 0;
    CU_ASSERT_EQUAL(oom_cr_inval_ring_add_pending(ring, &ea), CR_ERROR);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_num_pending(ring), 0);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_floor(ring), 9);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_refuses(ring, 8, b), 1);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_refuses(ring, 9, a), 0);
    ir_fail_at = -1;
    CU_ASSERT_EQUAL(oom_cr_inval_ring_add_pending(ring, &ea), CR_OK);
    CU_ASSERT_EQUAL(oom_cr_inval_ring_refuses(ring, 9, a), 1);
    oom_cr_inval_ring_free(&ring);
    cr_object_release(&a);
    cr_object_release(&b);
}

/* ---- one thread adds, another reads top and asks ---- */

#define IR_N 2000u

typedef struct st_ir_race_t {
    cr_inval_ring_t *ring;
    cr_object_t *objs[IR_N + 1]; /* objs[s] carries tag "t<s>", which only entry s names */
    cr_str_t tags[IR_N + 1];
    char tagbuf[IR_N + 1][8];
    pthread_barrier_t start;
    int done;              /* atomic: the adder finished */
    size_t add_errors;     /* the adder's */
    size_t missing, extra; /* the reader's failures: an entry at or below a seen top absent, one above since refusing */
    size_t backwards;
    size_t asked;          /* atomic: the adder waits (bounded) for the reader to ask between two adds */
} ir_race_t;

static void *ir_adder(void *arg)
{
    ir_race_t *r = arg;
    uint64_t s;
    pthread_barrier_wait(&r->start);
    for (s = 1; s <= IR_N; ++s) {
        cr_inval_entry_t e = {0};
        e.pod_id = 2;
        e.local_id = s;
        e.tags = &r->tags[s];
        e.num_tags = 1;
        size_t seen = __atomic_load_n(&r->asked, __ATOMIC_RELAXED), k;
        if (cr_inval_ring_add(r->ring, s, &e) != CR_OK)
            ++r->add_errors;
        for (k = 0; k != 100000 && __atomic_load_n(&r->asked, __ATOMIC_RELAXED) == seen; ++k)
            ; /* let the reader in between (bounded: it may have stopped) */
    }
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Asks at most 200000 times, and waits (yielding) at most 10^7 times for the adder to start. */
static void *ir_reader(void *arg)
{
    ir_race_t *r = arg;
    uint64_t last = 0;
    size_t i, waits = 0;
    pthread_barrier_wait(&r->start);
    for (i = 0; i != 200000;) {
        int done = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);
        uint64_t top = cr_inval_ring_top(r->ring), s;
        if (top < last)
            ++r->backwards;
        last = top;
        if (top == 0) {
            if (++waits == 10000000)
                break;
            sched_yield();
            continue;
        }
        s = top - 1 - (i % (top < 16 ? top : 16)); /* an entry s + 1 <= top: it was added before top moved */
        if (cr_inval_ring_refuses(r->ring, s, r->objs[s + 1]) != 1)
            ++r->missing;
        if (cr_inval_ring_refuses(r->ring, s + 1, r->objs[s + 1]) != 0)
            ++r->extra;
        __atomic_store_n(&r->asked, __atomic_load_n(&r->asked, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
        ++i;
        if (done && top == IR_N)
            break;
    }
    return NULL;
}

static void test_ring_two_threads(void)
{
    ir_race_t *r = calloc(1, sizeof(*r));
    pthread_t adder, reader;
    size_t s;

    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL((r->ring = cr_inval_ring_new(IR_N)) != NULL);
    for (s = 1; s <= IR_N; ++s) {
        char path[16];
        r->tags[s] = cr_str(r->tagbuf[s], (size_t)snprintf(r->tagbuf[s], sizeof(r->tagbuf[s]), "t%zu", s));
        snprintf(path, sizeof(path), "/o%zu", s);
        r->objs[s] = ir_object(path, r->tagbuf[s]);
    }
    CU_ASSERT_FATAL(pthread_barrier_init(&r->start, NULL, 2) == 0);
    CU_ASSERT_FATAL(pthread_create(&reader, NULL, ir_reader, r) == 0);
    CU_ASSERT_FATAL(pthread_create(&adder, NULL, ir_adder, r) == 0);
    pthread_join(adder, NULL);
    pthread_join(reader, NULL);
    pthread_barrier_destroy(&r->start);
    CU_ASSERT_EQUAL(r->add_errors, 0);
    CU_ASSERT_EQUAL(r->missing, 0);
    CU_ASSERT_EQUAL(r->extra, 0);
    CU_ASSERT_EQUAL(r->backwards, 0);
    CU_ASSERT(r->asked > 0);
    CU_ASSERT_EQUAL(cr_inval_ring_top(r->ring), IR_N);
    CU_ASSERT_EQUAL(cr_inval_ring_floor(r->ring), 0);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(r->ring, 0, r->objs[1]), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(r->ring, IR_N - 1, r->objs[IR_N]), 1);
    CU_ASSERT_EQUAL(cr_inval_ring_refuses(r->ring, IR_N, r->objs[IR_N]), 0);
    cr_inval_ring_free(&r->ring);
    for (s = 1; s <= IR_N; ++s)
        cr_object_release(&r->objs[s]);
    free(r);
}

void cr_test_register_inval_ring(void)
{
    CU_pSuite suite = CU_add_suite("tier inval ring", NULL, NULL);

    CU_add_test(suite, "since and floor: what refuses, what does not", test_ring_since_and_floor);
    CU_add_test(suite, "overflow raises the floor to the evicted seq", test_ring_overflow);
    CU_add_test(suite, "repeated and out-of-order adds", test_ring_out_of_order);
    CU_add_test(suite, "pending publications", test_ring_pending);
    CU_add_test(suite, "allocation failures raise the floor", test_ring_oom);
    CU_add_test(suite, "one thread adds while another asks", test_ring_two_threads);
}
