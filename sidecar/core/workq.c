/*
 * workq.c: the worker pool of workq.h.
 *
 * The queue is an intrusive FIFO (job->next) of at most max_pending jobs, under q->lock; pool threads wait on
 * q->cond. A pool thread pops a job, runs it with no lock held, and sends it to its owner's receiver
 * (h2o_multithread_send_message), whose callback (on the owner's loop) calls done. cr_workq_stop sets `stopping` and
 * takes every queued job out under the same lock hold, so a job is either popped by a thread (it runs, done gets
 * CR_OK) or cancelled (done gets CR_DECLINED), never both; it then sends the cancelled ones and joins the threads.
 *
 * Invariants: `num_pending` is the queue's length; `stopping` only goes 0 -> 1, under the lock (read without it by
 * cr_workq_stopping, an atomic load); owner->in_flight is touched on the owner's thread only (submit, receiver).
 */
#include "corral/core/workq.h"

#include <pthread.h>
#include <stdlib.h>

#define CR_WORKQ_MAGIC 0x3071e7a5u

struct st_cr_workq_t {
    unsigned magic;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    cr_workq_job_t *head, **tail; /* under lock */
    size_t num_pending, max_pending; /* num_pending under lock */
    int stopping;                    /* written under lock; atomic */
    int joined;                      /* cr_workq_stop's caller only */
    uint64_t refused;                /* atomic */
    size_t num_threads;
    pthread_t threads[];
};

static void *pool_main(void *arg)
{
    cr_workq_t *q = arg;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        cr_workq_job_t *job;
        while (q->head == NULL && !q->stopping)
            pthread_cond_wait(&q->cond, &q->lock);
        if (q->head == NULL)
            break; /* stopping, and nothing left: stop took the rest */
        job = q->head;
        if ((q->head = job->next) == NULL)
            q->tail = &q->head;
        --q->num_pending;
        pthread_mutex_unlock(&q->lock);

        job->next = NULL;
        job->run(job);
        job->status = CR_OK;
        h2o_multithread_send_message(&job->owner->receiver, &job->super);

        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

cr_workq_t *cr_workq_new(size_t threads, size_t max_pending)
{
    cr_workq_t *q;
    size_t i;

    if (threads == 0)
        threads = CR_WORKQ_DEFAULT_THREADS;
    if (max_pending == 0)
        max_pending = CR_WORKQ_DEFAULT_MAX_PENDING;
    if ((q = calloc(1, sizeof(*q) + threads * sizeof(q->threads[0]))) == NULL)
        return NULL;
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        free(q);
        return NULL;
    }
    if (pthread_cond_init(&q->cond, NULL) != 0) {
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
    }
    q->magic = CR_WORKQ_MAGIC;
    q->tail = &q->head;
    q->max_pending = max_pending;
    for (i = 0; i != threads; ++i) {
        if (pthread_create(&q->threads[i], NULL, pool_main, q) != 0)
            break;
        pthread_setname_np(q->threads[i], "corral-workq");
    }
    q->num_threads = i;
    if (i != threads) {
        cr_workq_free(&q); /* joins those that started */
        return NULL;
    }
    return q;
}

void cr_workq_stop(cr_workq_t *q)
{
    cr_workq_job_t *cancelled;
    size_t i;

    CR_CHECK_OBJ_NOTNULL(q, CR_WORKQ_MAGIC);
    if (q->joined)
        return;
    pthread_mutex_lock(&q->lock);
    __atomic_store_n(&q->stopping, 1, __ATOMIC_RELEASE);
    cancelled = q->head;
    q->head = NULL;
    q->tail = &q->head;
    q->num_pending = 0;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);

    while (cancelled != NULL) {
        cr_workq_job_t *job = cancelled;
        cancelled = job->next;
        job->next = NULL;
        job->status = CR_DECLINED;
        h2o_multithread_send_message(&job->owner->receiver, &job->super);
    }
    for (i = 0; i != q->num_threads; ++i)
        pthread_join(q->threads[i], NULL);
    q->joined = 1;
}

int cr_workq_stopping(cr_workq_t *q)
{
    CR_CHECK_OBJ_NOTNULL(q, CR_WORKQ_MAGIC);
    return __atomic_load_n(&q->stopping, __ATOMIC_ACQUIRE);
}

void cr_workq_free(cr_workq_t **qp)
{
    cr_workq_t *q = *qp;

    if (q == NULL)
        return;
    *qp = NULL;
    cr_workq_stop(q);
    assert(q->head == NULL && q->num_pending == 0);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    q->magic = 0;
    free(q);
}

uint64_t cr_workq_refused(cr_workq_t *q)
{
    CR_CHECK_OBJ_NOTNULL(q, CR_WORKQ_MAGIC);
    return __atomic_load_n(&q->refused, __ATOMIC_RELAXED);
}

/* On the owner's loop: the jobs that came back (ran or were cancelled). */
static void on_jobs_back(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    cr_workq_owner_t *owner = H2O_STRUCT_FROM_MEMBER(cr_workq_owner_t, receiver, receiver);

    while (!h2o_linklist_is_empty(messages)) {
        cr_workq_job_t *job = H2O_STRUCT_FROM_MEMBER(cr_workq_job_t, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        assert(job->owner == owner && owner->in_flight != 0);
        --owner->in_flight;
        job->done(job, job->status); /* may free the job */
    }
}

void cr_workq_owner_init(cr_workq_owner_t *owner, cr_workq_t *q, h2o_multithread_queue_t *queue)
{
    CR_CHECK_OBJ_NOTNULL(q, CR_WORKQ_MAGIC);
    owner->workq = q;
    owner->in_flight = 0;
    h2o_multithread_register_receiver(queue, &owner->receiver, on_jobs_back);
}

void cr_workq_owner_dispose(cr_workq_owner_t *owner)
{
    assert(owner->in_flight == 0);
    h2o_multithread_unregister_receiver(owner->receiver.queue, &owner->receiver);
    owner->workq = NULL;
}

int cr_workq_submit(cr_workq_owner_t *owner, cr_workq_job_t *job, cr_workq_run_fn run, cr_workq_done_fn done)
{
    cr_workq_t *q = owner->workq;

    CR_CHECK_OBJ_NOTNULL(q, CR_WORKQ_MAGIC);
    assert(run != NULL && done != NULL);
    job->super = (h2o_multithread_message_t){{NULL, NULL}};
    job->next = NULL;
    job->owner = owner;
    job->run = run;
    job->done = done;
    job->status = CR_OK;

    pthread_mutex_lock(&q->lock);
    if (q->stopping || q->num_pending >= q->max_pending) {
        pthread_mutex_unlock(&q->lock);
        __atomic_add_fetch(&q->refused, 1, __ATOMIC_RELAXED);
        return CR_DECLINED;
    }
    ++owner->in_flight; /* before the job can come back: a pool thread may finish it before we return */
    *q->tail = job;
    q->tail = &job->next;
    ++q->num_pending;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return CR_OK;
}
