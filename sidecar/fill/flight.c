/*
 * flight.c: single-flight cache fills shared by all threads (see flight.h for the model): the flight table, joining
 * it, the waiters and their wake-up, publication, and telling each waiter its outcome through its callback. The
 * fill itself (fetch, outcome, store, codings) is fill.c's; the layout both share is flight_int.h.
 *
 * Locking: `table->mutex` guards the hash chains, `done`, `fetched`, `has_waiters[]` and `num_waiters` of every flight
 * in the table. Nothing else takes it, and no callback or I/O runs while it is held. `waiters[i]` is touched only by
 * thread i. Fields of the fill (fetch, building, body, decision) are touched only by the owner thread until the
 * flight is published; after publication the outcome fields are read-only and `done` is 1.
 * One find per request: cr_flight_join takes the mutex once, whatever it does (wait for a store, join, insert). A
 * miss that may start a flight brings a shell (the flight's table fields, allocated before the lock; freed when it
 * joins instead), and the owner fills in the rest (cr_fill_prepare) after the lock, before the fetch: a waiter that
 * joins meanwhile touches only the shell's fields. A stale-while-revalidate hit brings none (it allocates nothing
 * when the revalidation is running); the one that starts it takes the mutex a second time, with its shell.
 * Answer order: when the object is to be stored with codings and the leader still waits, the leader is answered from
 * the finished identity-only result first, and the codings are made from the owner's zero timeout, after h2o has the
 * leader's answer (for a large body, on the worker pool, the store and the answers following on the owner's loop when
 * the job comes back; fill.c): into a copy, which is what gets stored and what every other waiter gets. The stored object always
 * holds its codings; the flight stays in the table and keeps the fill's reference until then, and a request that
 * comes meanwhile and finds no fresh object waits for the store and looks up again (CR_FLIGHT_AWAIT_STORE), so that
 * nothing but the leader's own answer comes before the store.
 * Reference counting: the table link and the running fetch share one reference (dropped at publish, or when the
 * fill is dropped); each waiter, each cross-thread message and a codings job on the worker pool holds one. The last release frees the flight, on
 * whichever thread that happens.
 * Dropping: `live_waiters` counts the waiters still linked (or joining: it is raised under the mutex, by cr_flight_do_join or
 * the leader's creation, and lowered without it when a waiter leaves: answered, timed out, or its request gone).
 * When the last one leaves a flight that is not a background revalidation and has not published, the owner (at once,
 * or from a drop-check message when the last waiter was on another thread) drops the fill if it still waits for an
 * upstream connection (cr_fetch_is_waiting): the fetch is cancelled, its queue place freed, the flight unlinked and
 * marked done without an outcome. A fill that has a connection (being made, or its request on the wire) goes on and
 * is stored for the next client, as Varnish and nginx (proxy_cache) finish a fetch they started: the upstream does
 * the work anyway, at most upstream.max_connections fills run at once, and closing connections still being made
 * would turn each cancelled request into a connect and close at the upstream (measured: 57,000 in 5 s swamped it).
 */
#include "flight_int.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct st_cr_flight_message_t {
    h2o_multithread_message_t super;
    cr_flight_t *flight; /* one reference */
    int drop_check;      /* to the owner: the last waiter left, drop the fill if it is not sent yet */
} cr_flight_message_t;

/* background revalidations started and not yet freed, process-wide (atomic): the drain on SIGTERM waits for them */
static size_t background_live;

size_t cr_flight_background_live(void)
{
    return __atomic_load_n(&background_live, __ATOMIC_ACQUIRE);
}

void cr_flight_addref(cr_flight_t *f)
{
    __atomic_fetch_add(&f->refcnt, 1, __ATOMIC_RELAXED);
}

void cr_flight_release(cr_flight_t **fp)
{
    cr_flight_t *f = *fp;
    *fp = NULL;
    if (f == NULL)
        return;
    CR_CHECK_OBJ_NOTNULL(f, CR_FLIGHT_MAGIC);
    if (__atomic_sub_fetch(&f->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    assert(!f->in_table);
    cr_fill_dispose(f);
    if (f->background)
        __atomic_sub_fetch(&background_live, 1, __ATOMIC_ACQ_REL);
    f->magic = 0;
    free(f); /* has_waiters, waiters and key are in the same block (cr_flight_shell_new) */
}

cr_flight_table_t *cr_flight_table_new(unsigned nthreads)
{
    cr_flight_table_t *table = calloc(1, sizeof(*table));
    if (table == NULL)
        return NULL;
    pthread_mutex_init(&table->mutex, NULL);
    table->nthreads = nthreads;
    return table;
}

cr_flight_t *cr_flight_shell_new(cr_thread_t *owner, unsigned nthreads, const cr_fill_req_t *fr)
{
    size_t size = sizeof(cr_flight_t) + nthreads * sizeof(h2o_linklist_t) + nthreads + fr->keylen + 1;
    cr_flight_t *f = calloc(1, size);
    unsigned i;

    if (f == NULL)
        return NULL;
    f->magic = CR_FLIGHT_MAGIC;
    f->refcnt = 1;
    f->waiters = (h2o_linklist_t *)(f + 1);
    f->has_waiters = (unsigned char *)(f->waiters + nthreads);
    f->key = (char *)(f->has_waiters + nthreads);
    for (i = 0; i != nthreads; ++i)
        h2o_linklist_init_anchor(&f->waiters[i]);
    memcpy(f->key, fr->key, fr->keylen);
    f->key[fr->keylen] = '\0';
    f->keylen = fr->keylen;
    f->hash = fr->hash;
    f->owner = owner;
    return f;
}

cr_flight_t *cr_flight_do_find(cr_flight_table_t *table, const char *key, size_t keylen, uint64_t hash)
{
    cr_flight_t *f;
    for (f = table->buckets[hash & (CR_FLIGHT_TABLE_BUCKETS - 1)]; f != NULL; f = f->hash_next)
        if (f->hash == hash && f->keylen == keylen && memcmp(f->key, key, keylen) == 0)
            return f;
    return NULL;
}

void cr_flight_do_insert(cr_flight_table_t *table, cr_flight_t *f)
{
    cr_flight_t **slot = &table->buckets[f->hash & (CR_FLIGHT_TABLE_BUCKETS - 1)];
    f->hash_next = *slot;
    *slot = f;
    f->in_table = 1;
}

void cr_flight_do_unlink(cr_flight_table_t *table, cr_flight_t *f)
{
    cr_flight_t **slot = &table->buckets[f->hash & (CR_FLIGHT_TABLE_BUCKETS - 1)];
    while (*slot != f)
        slot = &(*slot)->hash_next;
    *slot = f->hash_next;
    f->hash_next = NULL;
    f->in_table = 0;
}

void cr_flight_mark_fetched(cr_flight_t *f)
{
    pthread_mutex_lock(&cr_rt.flights->mutex);
    f->fetched = 1;
    pthread_mutex_unlock(&cr_rt.flights->mutex);
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* waiters */

static void send_message(cr_flight_t *f, unsigned thread_idx, int drop_check)
{
    cr_flight_message_t *msg = malloc(sizeof(*msg));
    assert(msg != NULL);
    msg->super = (h2o_multithread_message_t){{NULL, NULL}};
    cr_flight_addref(f);
    msg->flight = f;
    msg->drop_check = drop_check;
    h2o_multithread_send_message(&cr_rt.threads[thread_idx].flight_receiver, &msg->super);
}

/* Owner thread: the last waiter left. Drops the fill while it still waits for an upstream connection (see the top of
 * the file); otherwise leaves it running. */
static void drop_if_waiting(cr_flight_t *f)
{
    cr_flight_table_t *table = cr_rt.flights;
    int drop = 0;

    if (f->background || !cr_fetch_is_waiting(&f->fetch))
        return;
    pthread_mutex_lock(&table->mutex);
    if (!f->done && __atomic_load_n(&f->live_waiters, __ATOMIC_ACQUIRE) == 0) {
        if (f->in_table)
            cr_flight_do_unlink(table, f);
        __atomic_store_n(&f->done, 1, __ATOMIC_RELAXED);
        drop = 1;
    }
    pthread_mutex_unlock(&table->mutex);
    if (!drop)
        return; /* someone joined meanwhile */
    cr_fetch_cancel(&f->fetch); /* frees its queue place; no callback follows */
    cr_l2_on_publish(f);        /* no answer: a lease it held says "nostore", so other pods stop waiting */
    CR_STAT_INC(f->owner->stats, fills_dropped);
    cr_flight_release(&f); /* the fill's */
}

/* A waiter of `f` on thread t stopped waiting (answered, timed out, or its request is gone). */
static void waiter_left(cr_flight_t *f, cr_thread_t *t)
{
    if (__atomic_sub_fetch(&f->live_waiters, 1, __ATOMIC_ACQ_REL) != 0 || f->background ||
        __atomic_load_n(&f->done, __ATOMIC_RELAXED))
        return;
    if (t == f->owner)
        drop_if_waiting(f);
    else
        send_message(f, f->owner->idx, 1);
}

static void waiter_detach(cr_waiter_t *w)
{
    if (h2o_timeout_is_linked(&w->timer))
        h2o_timeout_unlink(&w->timer);
    if (h2o_linklist_is_linked(&w->link)) {
        h2o_linklist_unlink(&w->link);
        waiter_left(w->flight, w->thread);
    }
}

static void on_waiter_dispose(void *p)
{
    cr_waiter_t *w = p;
    waiter_detach(w);
    cr_flight_release(&w->flight);
}

/* Tells a detached waiter its outcome. */
static void answer_waiter(cr_waiter_t *w)
{
    cr_flight_t *f = w->flight;
    cr_flight_outcome_t o = {CR_FLIGHT_SERVE};

    o.is_leader = w->is_leader;
    if (w->is_leader)
        o.upstream_us = f->fetch.head_after_us;
    if (w->after_fetch) {
        /* it came after the answer was fetched (while the codings were made): it is answered as if it had come
         * after the store, by the same lookup (a hit, stale, no-cache, ...) */
        o.answer = CR_FLIGHT_LOOKUP_AGAIN;
        w->fr->on_answer(w->fr->ctx, &o);
        return;
    }
    switch (f->outcome) {
    case OUTCOME_SERVE_ALL:
        o.obj = f->result;
        if (f->result_is_stale) {
            o.answer = CR_FLIGHT_SERVE_STALE;
            o.reason = f->stale_detail;
        } else {
            o.shared = 1;
            o.stored = f->stored;
            o.l2_hit = f->l2_hit;
            o.reason = f->not_stored_reason;
        }
        break;
    case OUTCOME_SERVE_LEADER:
        o.reason = f->not_stored_reason;
        if (w->is_leader)
            o.obj = f->result;
        else
            o.answer = CR_FLIGHT_PASS;
        break;
    case OUTCOME_PASS_ALL:
        o.answer = CR_FLIGHT_PASS;
        o.reason = "too-large";
        break;
    case OUTCOME_ERROR:
        o.answer = CR_FLIGHT_ERROR;
        o.error_status = f->error_status;
        o.error_code = f->error_code;
        o.error_msg = f->error_msg;
        break;
    case OUTCOME_NONE:
        assert(!"flight published without an outcome");
        return;
    }
    w->fr->on_answer(w->fr->ctx, &o);
}

/* Answers every waiter of this thread; runs on thread t. */
static void answer_thread_waiters(cr_thread_t *t, cr_flight_t *f)
{
    h2o_linklist_t *anchor = &f->waiters[t->idx];
    while (!h2o_linklist_is_empty(anchor)) {
        cr_waiter_t *w = H2O_STRUCT_FROM_MEMBER(cr_waiter_t, link, anchor->next);
        waiter_detach(w); /* the waiter's reference is dropped when its request is disposed */
        answer_waiter(w);
    }
}

static void on_flight_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    cr_thread_t *t = H2O_STRUCT_FROM_MEMBER(cr_thread_t, flight_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        cr_flight_message_t *msg = H2O_STRUCT_FROM_MEMBER(cr_flight_message_t, super.link, messages->next);
        h2o_linklist_unlink(&msg->super.link);
        if (msg->drop_check)
            drop_if_waiting(msg->flight);
        else
            answer_thread_waiters(t, msg->flight);
        cr_flight_release(&msg->flight);
        free(msg);
    }
}

void cr_flight_thread_init(cr_thread_t *t)
{
    h2o_multithread_register_receiver(t->ctx.queue, &t->flight_receiver, on_flight_messages);
}

void cr_flight_publish(cr_flight_t *f)
{
    cr_flight_table_t *table = cr_rt.flights;
    unsigned i, n = table->nthreads;
    unsigned char *notify = alloca(n);

    assert(f->outcome != OUTCOME_NONE);
    cr_l2_on_publish(f); /* the L2 write, or the lease's release: queued on the pool, never waited for */
    pthread_mutex_lock(&table->mutex);
    if (f->in_table)
        cr_flight_do_unlink(table, f);
    __atomic_store_n(&f->done, 1, __ATOMIC_RELAXED);
    memcpy(notify, f->has_waiters, n);
    pthread_mutex_unlock(&table->mutex);

    for (i = 0; i != n; ++i) {
        if (!notify[i])
            continue;
        if (i == f->owner->idx)
            answer_thread_waiters(f->owner, f);
        else
            send_message(f, i, 0);
    }
    cr_flight_release(&f);
}

/* The leader's waiter if it still waits (it may have gone away, or passed after its coalesce timeout). It was
 * linked first on the owner's list, so this is one step. */
cr_waiter_t *cr_flight_find_leader(cr_flight_t *f)
{
    h2o_linklist_t *anchor = &f->waiters[f->owner->idx], *node;
    for (node = anchor->next; node != anchor; node = node->next) {
        cr_waiter_t *w = H2O_STRUCT_FROM_MEMBER(cr_waiter_t, link, node);
        if (w->is_leader)
            return w;
    }
    return NULL;
}

void cr_flight_answer_leader_first(cr_flight_t *f, cr_waiter_t *w)
{
    cr_flight_outcome_t o = {CR_FLIGHT_SERVE};

    waiter_detach(w); /* its reference is dropped when its request is disposed */
    o.obj = f->result;
    o.is_leader = 1;
    o.upstream_us = f->fetch.head_after_us;
    o.codings_pending = 1;
    o.stored = 1; /* the copy with codings will be (the result is stored already, marked so) */
    w->fr->on_answer(w->fr->ctx, &o);
}

static void on_waiter_timeout(h2o_timeout_entry_t *entry)
{
    cr_waiter_t *w = H2O_STRUCT_FROM_MEMBER(cr_waiter_t, timer, entry);
    cr_flight_outcome_t o = {CR_FLIGHT_TIMEOUT};

    waiter_detach(w);
    CR_STAT_INC(w->thread->stats, coalesce_timeouts);
    o.is_leader = w->is_leader;
    w->fr->on_answer(w->fr->ctx, &o);
}

/* Registers fr->req as a waiter of `f` (the caller holds the waiter's reference). Before the fetch starts: its
 * callbacks may run synchronously. */
static void add_waiter(cr_thread_t *t, cr_flight_t *f, cr_fill_req_t *fr, int is_leader, int after_fetch)
{
    cr_waiter_t *w = h2o_mem_alloc_shared(&fr->req->pool, sizeof(*w), on_waiter_dispose);
    memset(w, 0, sizeof(*w));
    w->flight = f;
    w->fr = fr;
    w->thread = t;
    w->is_leader = is_leader;
    w->after_fetch = after_fetch;
    w->timer.cb = on_waiter_timeout;
    h2o_linklist_insert(&f->waiters[t->idx], &w->link);
    /* coalesce.timeout sends waiters upstream on their own; the leader waits for its own fetch, which its timeouts
     * bound (upstream connect and I/O, the tier's calls and lease wait): cut off, it would fetch a second time while
     * its first fetch went on to be stored */
    if (!is_leader)
        h2o_timeout_link(t->ctx.loop, cr_thread_timeout(t, fr->route->coalesce_timeout_ms), &w->timer);
}

int cr_flight_do_join(cr_flight_t *f, cr_thread_t *t, const cr_fill_req_t *fr)
{
    if (f->num_waiters >= fr->route->coalesce_max_waiters)
        return CR_DECLINED;
    ++f->num_waiters;
    __atomic_add_fetch(&f->live_waiters, 1, __ATOMIC_ACQ_REL);
    f->has_waiters[t->idx] = 1;
    cr_flight_addref(f); /* the waiter's */
    return CR_OK;
}

/* The leader's own waiter on a new flight (not shared yet, or inserted under the mutex just now). */
static void lead(cr_thread_t *t, cr_flight_t *f)
{
    f->num_waiters = 1;
    f->live_waiters = 1;
    f->has_waiters[t->idx] = 1;
    cr_flight_addref(f); /* the waiter's */
}

int cr_flight_join(cr_thread_t *t, cr_fill_req_t *fr, cr_object_t *stale, cr_flight_mode_t mode, int shared)
{
    cr_flight_table_t *table = cr_rt.flights;
    int await_first = mode != CR_FLIGHT_FILL, uses_table = await_first || shared;
    cr_flight_t *f = NULL, *shell = NULL;
    enum { GO_ON, JOINED, JOINED_AFTER_FETCH, FULL, INSERTED } r = GO_ON;

    if (uses_table) {
        /* a miss brings its shell (NULL when out of memory: it can still join). A stale hit served while it
         * revalidates does not: it usually finds the revalidation running, and its hit allocates nothing */
        if (shared && (mode == CR_FLIGHT_FILL || mode == CR_FLIGHT_REFILL))
            shell = cr_flight_shell_new(t, table->nthreads, fr);
    Locked:
        pthread_mutex_lock(&table->mutex);
        f = cr_flight_do_find(table, fr->key, fr->keylen, fr->hash);
        if (f != NULL && f->fetched && await_first) {
            /* a fresher answer is being stored this moment: wait for it, then look up again */
            if (cr_flight_do_join(f, t, fr) == CR_OK)
                r = JOINED_AFTER_FETCH;
            else if (shared && mode == CR_FLIGHT_REFILL)
                r = FULL; /* as the join below would be */
        }
        if (r == GO_ON && mode != CR_FLIGHT_AWAIT_STORE) {
            if (mode == CR_FLIGHT_REVALIDATE) {
                if (f == NULL && shell != NULL) {
                    shell->background = 1;
                    __atomic_add_fetch(&background_live, 1, __ATOMIC_ACQ_REL);
                    cr_flight_do_insert(table, shell);
                    r = INSERTED;
                }
            } else if (shared || mode == CR_FLIGHT_JOIN) {
                if (f != NULL) {
                    if (cr_flight_do_join(f, t, fr) == CR_OK)
                        r = f->fetched ? JOINED_AFTER_FETCH : JOINED;
                    else
                        r = FULL;
                } else if (shell != NULL && mode != CR_FLIGHT_JOIN) {
                    lead(t, shell);
                    cr_flight_do_insert(table, shell);
                    r = INSERTED;
                }
            }
        }
        pthread_mutex_unlock(&table->mutex);
        if (mode == CR_FLIGHT_REVALIDATE && r == GO_ON && f == NULL && shell == NULL &&
            (shell = cr_flight_shell_new(t, table->nthreads, fr)) != NULL)
            goto Locked; /* it starts the revalidation: once more, with a shell (taken only by the one that starts it) */
        if (r != INSERTED)
            cr_flight_release(&shell);
    }

    switch (r) {
    case JOINED:
    case JOINED_AFTER_FETCH:
        add_waiter(t, f, fr, 0, r == JOINED_AFTER_FETCH);
        if (r == JOINED_AFTER_FETCH)
            return CR_AGAIN; /* counted by its second lookup */
        CR_STAT_INC(t->stats, misses);
        return CR_OK;
    case FULL:
        CR_STAT_INC(t->stats, misses);
        return CR_DECLINED;
    case INSERTED:
        f = shell;
        if (cr_fill_prepare(f, fr, stale) != CR_OK) {
            /* others may have joined it already: they hear the same as the leader */
            int background = f->background;
            f->outcome = OUTCOME_ERROR;
            f->error_status = 503;
            f->error_code = "no_memory";
            snprintf(f->error_msg, sizeof(f->error_msg), "%s", "out of memory");
            if (!background) {
                add_waiter(t, f, fr, 1, 0);
                CR_STAT_INC(t->stats, misses);
            }
            cr_flight_publish(f); /* may free it */
            return background ? CR_DECLINED : CR_OK;
        }
        if (f->background) {
            cr_fill_start(t, f);
            return CR_DECLINED;
        }
        add_waiter(t, f, fr, 1, 0);
        CR_STAT_INC(t->stats, misses);
        cr_fill_start(t, f);
        return CR_OK;
    case GO_ON:
        break;
    }

    if (mode == CR_FLIGHT_AWAIT_STORE || mode == CR_FLIGHT_REVALIDATE || mode == CR_FLIGHT_JOIN)
        return CR_DECLINED;
    /* a private fill, or a shared one for which there was no memory for a shell */
    if ((f = cr_flight_shell_new(t, table->nthreads, fr)) == NULL || cr_fill_prepare(f, fr, stale) != CR_OK) {
        cr_flight_release(&f);
        CR_STAT_INC(t->stats, misses);
        return CR_ERROR;
    }
    lead(t, f);
    add_waiter(t, f, fr, 1, 0);
    CR_STAT_INC(t->stats, misses);
    cr_fill_start(t, f);
    return CR_OK;
}
