/*
 * test_workq.c: unit tests for sidecar/core/workq.c on real h2o event loops: jobs run on pool threads and their
 * completions on the submitting loop's thread, each with its own owner (two loops at once, no order assumed within
 * one); a full queue refuses (and takes the job once there is room again); stop cancels what is queued (done still
 * called, with CR_DECLINED), lets the running job finish, and refuses new jobs. Leaks are caught under ASan.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <h2o.h>

#include "corral/core/workq.h"

void cr_test_register_workq(void);

#define TW_DEADLINE_MS 10000

/* One event loop with its h2o_multithread queue and its end of the pool. */
typedef struct {
    h2o_loop_t *loop;
    h2o_multithread_queue_t *queue;
    cr_workq_owner_t owner;
    pthread_t thread;
} tw_loop_t;

typedef struct {
    cr_workq_job_t job;
    tw_loop_t *loop;
    pthread_t ran_on;
    int ran;           /* atomic */
    int done_calls;    /* the loop's thread */
    int done_status;
    int done_on_loop;  /* done ran on the loop's thread */
    int done_owner_ok; /* done's job carried the owner it was submitted to */
    size_t *done_count;
} tw_job_t;

static void tw_loop_init(tw_loop_t *l, cr_workq_t *q)
{
    l->loop = h2o_evloop_create();
    l->queue = h2o_multithread_create_queue(l->loop);
    l->thread = pthread_self();
    cr_workq_owner_init(&l->owner, q, l->queue);
}

static void tw_loop_dispose(tw_loop_t *l)
{
    cr_workq_owner_dispose(&l->owner);
    h2o_multithread_destroy_queue(l->queue);
    free(l->queue); /* libh2o 2.2.5's evloop destroy_queue closes the pipe but does not free the queue */
    h2o_evloop_run(l->loop, 0); /* disposes of the closed pipe socket */
    h2o_evloop_destroy(l->loop);
}

static uint64_t tw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void tw_sleep_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000};
    nanosleep(&ts, NULL);
}

/* Runs the loop until *count reaches want (or the deadline). */
static void tw_run_until(tw_loop_t *l, size_t *count, size_t want)
{
    uint64_t deadline = tw_now_ms() + TW_DEADLINE_MS;
    while (*count < want && tw_now_ms() < deadline)
        h2o_evloop_run(l->loop, 10);
}

static void tw_run(cr_workq_job_t *job)
{
    tw_job_t *t = (tw_job_t *)job;
    t->ran_on = pthread_self();
    __atomic_store_n(&t->ran, 1, __ATOMIC_RELEASE);
}

static void tw_done(cr_workq_job_t *job, int status)
{
    tw_job_t *t = (tw_job_t *)job;
    ++t->done_calls;
    t->done_status = status;
    t->done_on_loop = pthread_equal(pthread_self(), t->loop->thread);
    t->done_owner_ok = job->owner == &t->loop->owner;
    ++*t->done_count;
}

static void tw_job_init(tw_job_t *t, tw_loop_t *l, size_t *done_count)
{
    memset(t, 0, sizeof(*t));
    t->loop = l;
    t->done_count = done_count;
}

/* ---- jobs off the loop, completions on it, two owners ---- */

#define TW_JOBS 64

typedef struct {
    cr_workq_t *q;
    tw_loop_t l;
    tw_job_t jobs[TW_JOBS];
    size_t done;
    int submitted_ok;
    pthread_t thread;
} tw_owner_run_t;

static void *tw_owner_main(void *arg)
{
    tw_owner_run_t *r = arg;
    size_t i;

    tw_loop_init(&r->l, r->q);
    r->submitted_ok = 1;
    for (i = 0; i != TW_JOBS; ++i) {
        tw_job_init(&r->jobs[i], &r->l, &r->done);
        if (cr_workq_submit(&r->l.owner, &r->jobs[i].job, tw_run, tw_done) != CR_OK)
            r->submitted_ok = 0;
        if (i % 8 == 7)
            h2o_evloop_run(r->l.loop, 0); /* completions may arrive while others are still being submitted */
    }
    tw_run_until(&r->l, &r->done, TW_JOBS);
    tw_loop_dispose(&r->l);
    return NULL;
}

static void test_workq_round_trip(void)
{
    cr_workq_t *q = cr_workq_new(0, 2 * TW_JOBS);
    tw_owner_run_t *runs = calloc(2, sizeof(*runs));
    size_t o, i;

    CU_ASSERT_FATAL(q != NULL && runs != NULL);
    for (o = 0; o != 2; ++o) {
        runs[o].q = q;
        CU_ASSERT_FATAL(pthread_create(&runs[o].thread, NULL, tw_owner_main, runs + o) == 0);
    }
    for (o = 0; o != 2; ++o)
        pthread_join(runs[o].thread, NULL);
    for (o = 0; o != 2; ++o) {
        CU_ASSERT(runs[o].submitted_ok);
        CU_ASSERT_EQUAL(runs[o].done, TW_JOBS);
        for (i = 0; i != TW_JOBS; ++i) {
            tw_job_t *t = &runs[o].jobs[i];
            CU_ASSERT(t->ran);
            CU_ASSERT(!pthread_equal(t->ran_on, runs[0].thread) && !pthread_equal(t->ran_on, runs[1].thread));
            CU_ASSERT_EQUAL(t->done_calls, 1);
            CU_ASSERT_EQUAL(t->done_status, CR_OK);
            CU_ASSERT(t->done_on_loop);
            CU_ASSERT(t->done_owner_ok);
        }
    }
    CU_ASSERT_EQUAL(cr_workq_refused(q), 0);
    cr_workq_free(&q);
    CU_ASSERT(q == NULL);
    free(runs);
}

/* ---- a job that holds the pool's only thread ---- */

typedef struct {
    tw_job_t t;
    cr_workq_t *q;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int started, open;
    int until_stopping; /* wait for cr_workq_stop instead of the gate */
} tw_blocker_t;

static void tw_block_run(cr_workq_job_t *job)
{
    tw_blocker_t *b = (tw_blocker_t *)job;
    uint64_t deadline = tw_now_ms() + TW_DEADLINE_MS;

    pthread_mutex_lock(&b->lock);
    b->started = 1;
    pthread_cond_broadcast(&b->cond);
    if (b->until_stopping) {
        pthread_mutex_unlock(&b->lock);
        while (!cr_workq_stopping(b->q) && tw_now_ms() < deadline)
            tw_sleep_ms(1);
    } else {
        while (!b->open)
            pthread_cond_wait(&b->cond, &b->lock);
        pthread_mutex_unlock(&b->lock);
    }
    tw_run(job);
}

static void tw_blocker_init(tw_blocker_t *b, cr_workq_t *q, tw_loop_t *l, size_t *done_count, int until_stopping)
{
    tw_job_init(&b->t, l, done_count);
    b->q = q;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->started = b->open = 0;
    b->until_stopping = until_stopping;
}

static void tw_blocker_wait_started(tw_blocker_t *b)
{
    pthread_mutex_lock(&b->lock);
    while (!b->started)
        pthread_cond_wait(&b->cond, &b->lock);
    pthread_mutex_unlock(&b->lock);
}

static void tw_blocker_open(tw_blocker_t *b)
{
    pthread_mutex_lock(&b->lock);
    b->open = 1;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void tw_blocker_dispose(tw_blocker_t *b)
{
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
}

static void test_workq_queue_full(void)
{
    cr_workq_t *q = cr_workq_new(1, 2);
    tw_loop_t l;
    tw_blocker_t b;
    tw_job_t jobs[3];
    size_t done = 0, i;

    CU_ASSERT_FATAL(q != NULL);
    tw_loop_init(&l, q);
    tw_blocker_init(&b, q, &l, &done, 0);
    CU_ASSERT_EQUAL_FATAL(cr_workq_submit(&l.owner, &b.t.job, tw_block_run, tw_done), CR_OK);
    tw_blocker_wait_started(&b); /* the only thread is taken: the queue is empty */
    for (i = 0; i != 3; ++i)
        tw_job_init(&jobs[i], &l, &done);
    CU_ASSERT_EQUAL(cr_workq_submit(&l.owner, &jobs[0].job, tw_run, tw_done), CR_OK);
    CU_ASSERT_EQUAL(cr_workq_submit(&l.owner, &jobs[1].job, tw_run, tw_done), CR_OK);
    CU_ASSERT_EQUAL(cr_workq_submit(&l.owner, &jobs[2].job, tw_run, tw_done), CR_DECLINED); /* 2 waiting: full */
    CU_ASSERT_EQUAL(cr_workq_refused(q), 1);
    CU_ASSERT_EQUAL(l.owner.in_flight, 3);

    tw_blocker_open(&b);
    tw_run_until(&l, &done, 3);
    CU_ASSERT_EQUAL(done, 3);
    CU_ASSERT(b.t.ran && b.t.done_status == CR_OK && b.t.done_calls == 1);
    for (i = 0; i != 2; ++i)
        CU_ASSERT(jobs[i].ran && jobs[i].done_status == CR_OK && jobs[i].done_calls == 1 && jobs[i].done_on_loop);
    CU_ASSERT(!jobs[2].ran && jobs[2].done_calls == 0); /* refused: untouched */

    /* there is room again: the refused job is taken now */
    CU_ASSERT_EQUAL(cr_workq_submit(&l.owner, &jobs[2].job, tw_run, tw_done), CR_OK);
    tw_run_until(&l, &done, 4);
    CU_ASSERT(jobs[2].ran && jobs[2].done_status == CR_OK && jobs[2].done_calls == 1);
    CU_ASSERT_EQUAL(l.owner.in_flight, 0);

    tw_loop_dispose(&l);
    cr_workq_free(&q);
    tw_blocker_dispose(&b);
}

#define TW_QUEUED 5

static void test_workq_stop_pending(void)
{
    cr_workq_t *q = cr_workq_new(1, 8);
    tw_loop_t l;
    tw_blocker_t b;
    tw_job_t jobs[TW_QUEUED + 1];
    size_t done = 0, i;

    CU_ASSERT_FATAL(q != NULL);
    tw_loop_init(&l, q);
    tw_blocker_init(&b, q, &l, &done, 1);
    CU_ASSERT_EQUAL_FATAL(cr_workq_submit(&l.owner, &b.t.job, tw_block_run, tw_done), CR_OK);
    tw_blocker_wait_started(&b);
    for (i = 0; i != TW_QUEUED + 1; ++i)
        tw_job_init(&jobs[i], &l, &done);
    for (i = 0; i != TW_QUEUED; ++i)
        CU_ASSERT_EQUAL(cr_workq_submit(&l.owner, &jobs[i].job, tw_run, tw_done), CR_OK);
    CU_ASSERT(!cr_workq_stopping(q));

    /* the blocker runs until it sees the stop, which has taken the queued jobs out by then */
    cr_workq_stop(q);
    CU_ASSERT(cr_workq_stopping(q));
    CU_ASSERT_EQUAL(cr_workq_submit(&l.owner, &jobs[TW_QUEUED].job, tw_run, tw_done), CR_DECLINED);
    cr_workq_stop(q); /* idempotent */

    tw_run_until(&l, &done, TW_QUEUED + 1);
    CU_ASSERT_EQUAL(done, TW_QUEUED + 1);
    CU_ASSERT(b.t.ran && b.t.done_status == CR_OK && b.t.done_calls == 1 && b.t.done_on_loop);
    for (i = 0; i != TW_QUEUED; ++i)
        CU_ASSERT(!jobs[i].ran && jobs[i].done_calls == 1 && jobs[i].done_status == CR_DECLINED && jobs[i].done_on_loop);
    CU_ASSERT(!jobs[TW_QUEUED].ran && jobs[TW_QUEUED].done_calls == 0);
    CU_ASSERT_EQUAL(l.owner.in_flight, 0);

    tw_loop_dispose(&l);
    cr_workq_free(&q);
    tw_blocker_dispose(&b);
}

void cr_test_register_workq(void)
{
    CU_pSuite suite = CU_add_suite("workq", NULL, NULL);

    CU_add_test(suite, "jobs run on the pool, completions on their owner's loop", test_workq_round_trip);
    CU_add_test(suite, "a full queue refuses", test_workq_queue_full);
    CU_add_test(suite, "stop with jobs pending", test_workq_stop_pending);
}
