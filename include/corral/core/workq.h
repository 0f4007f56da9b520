/*
 * workq.h: a small pool of worker threads for jobs that would block an event loop (workq.c).
 *
 * What it is for: work that costs milliseconds of CPU or waits on a blocking client, which must not run on a traffic
 * loop: gzip and brotli encoding of large fills (about 10 ms per MiB today, on the loop), then the memcached calls of
 * the shared tier. Nothing uses it yet.
 *
 * A job has two halves: `run`, called on a pool thread, then `done`, called on the thread of the event loop that
 * submitted it (its owner). Results travel back through h2o_multithread: each owner registers an
 * h2o_multithread_receiver_t on its loop's queue (cr_workq_owner_init), and a finished job is sent to it as a message,
 * so `done` runs inside that loop's h2o_evloop_run. Jobs of one owner may finish in any order.
 *
 * Invariants:
 *  - The job is the caller's memory (embed cr_workq_job_t in its own struct); the pool allocates nothing per job.
 *    From a successful submit until `done` returns, the caller must not touch or free the job; in `done` it may.
 *  - Every submitted job gets exactly one `done`: with CR_OK after `run` ran, or with CR_DECLINED when cr_workq_stop
 *    cancelled it before it started (then `run` never ran).
 *  - The queue is bounded (max_pending jobs waiting for a thread): past it, or once the pool is stopping,
 *    cr_workq_submit refuses with CR_DECLINED and nothing happened: the caller runs the job inline, on its loop.
 *  - An owner is used from its loop's thread only (submit, done, dispose); `run` must not touch the owner's loop.
 *
 * Locking: one mutex guards the queue (submit, the pool threads' pop, stop); it is never held while `run` or `done`
 * runs, nor while a message is sent. h2o's queue takes its own mutex inside h2o_multithread_send_message.
 * Threads: created by cr_workq_new, joined by cr_workq_stop. They inherit the creating thread's signal mask: create
 * the pool after the process has blocked the signals its loops handle.
 */
#ifndef CORRAL_WORKQ_H
#define CORRAL_WORKQ_H

#include <h2o.h>
#include <h2o/multithread.h>

#include "corral/core/common.h"

#define CR_WORKQ_DEFAULT_THREADS 2
/* With the shared tier: its memcached calls wait on the network (bounded by tier.memcached.timeout) beside the codings. */
#define CR_WORKQ_TIER_THREADS 4
#define CR_WORKQ_DEFAULT_MAX_PENDING 256

typedef struct st_cr_workq_t cr_workq_t;
typedef struct st_cr_workq_owner_t cr_workq_owner_t;
typedef struct st_cr_workq_job_t cr_workq_job_t;

typedef void (*cr_workq_run_fn)(cr_workq_job_t *job);
/* status: CR_OK (run ran) or CR_DECLINED (cancelled by cr_workq_stop; run never ran). */
typedef void (*cr_workq_done_fn)(cr_workq_job_t *job, int status);

struct st_cr_workq_job_t {
    h2o_multithread_message_t super; /* private: the message that carries the job back to its owner */
    cr_workq_job_t *next;            /* private: the pool's queue */
    cr_workq_owner_t *owner;
    cr_workq_run_fn run;
    cr_workq_done_fn done;
    int status;
};

/* One event loop's end of the pool. Lives as long as the loop's use of the pool (e.g. in the worker thread's
 * struct). */
struct st_cr_workq_owner_t {
    h2o_multithread_receiver_t receiver;
    cr_workq_t *workq;
    size_t in_flight; /* submitted jobs whose done has not run yet (the owner's thread only) */
};

/* Starts `threads` pool threads (0: CR_WORKQ_DEFAULT_THREADS) with a queue of at most `max_pending` waiting jobs (0:
 * CR_WORKQ_DEFAULT_MAX_PENDING). NULL when memory or a thread could not be had (nothing is left running). */
cr_workq_t *cr_workq_new(size_t threads, size_t max_pending);

/* Refuses new jobs, cancels the ones still queued (their done gets CR_DECLINED on their owner's loop), lets the
 * running ones finish (done with CR_OK), and joins the threads. Returns when no pool thread is left; the done
 * callbacks run later, when the owners' loops run. Idempotent. Any thread but a pool thread. */
void cr_workq_stop(cr_workq_t *q);

/* Has cr_workq_stop begun? A long `run` may poll it to cut its work short. Any thread. */
int cr_workq_stopping(cr_workq_t *q);

/* Stops the pool if needed and frees it; sets *q to NULL. Accepts NULL and *q == NULL. Every owner must have been
 * disposed of before. */
void cr_workq_free(cr_workq_t **q);

/* Registers `owner` on a loop's h2o_multithread queue (that loop's thread). */
void cr_workq_owner_init(cr_workq_owner_t *owner, cr_workq_t *q, h2o_multithread_queue_t *queue);
/* Unregisters it. No job of it may be in flight (in_flight == 0: after cr_workq_stop, run the loop until it is). */
void cr_workq_owner_dispose(cr_workq_owner_t *owner);

/*
 * Queues `job` to run `run` on a pool thread, then `done` on the owner's loop. Returns CR_OK, or CR_DECLINED when the
 * queue is full or the pool is stopping: then the job was not taken, and the caller runs it inline. The owner's
 * thread only.
 */
int cr_workq_submit(cr_workq_owner_t *owner, cr_workq_job_t *job, cr_workq_run_fn run, cr_workq_done_fn done);

/* Jobs refused since the start (queue full or stopping), for metrics. Any thread. */
uint64_t cr_workq_refused(cr_workq_t *q);

#endif
