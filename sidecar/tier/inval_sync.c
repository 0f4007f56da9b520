/*
 * inval_sync.c: the invalidation log's writer and reader on one thread, "corral-inval" (see inval_sync.h).
 *
 * Each round (every tier.invalidation.poll_interval, or at once when a publish wakes it):
 *   1. write the outbox: per entry, `incr` the counter, then `set` the entry under the number it got (a failed incr
 *      keeps the entry for the next round; a failed set is retried twice, then the number stays empty and the other
 *      pods see a gap, which they handle);
 *   2. read the counter; read each entry above the last one seen, in order, at most CR_SYNC_BATCH per round: add it to
 *      the ring, apply it unless this pod wrote it. An entry missing is waited for (its writer is between incr and
 *      set) for at most max_delay, then counted as a gap.
 * Gaps (inval_sync.h): the counter lower than what was seen (memcached lost it), further ahead than the ring holds,
 * an entry missing past max_delay, or the log unreachable past max_delay: the whole L1 is dropped through `apply`
 * (an entry with `everything`), the ring's floor set past the gap, and the reading goes on from the counter.
 *
 * Invariants: memcached calls on this thread only; the apply callback runs on this thread (the store locks itself).
 * Locking: `mutex` guards the outbox, `stopping` and the condition; never held across a memcached call or apply.
 */
#include "corral/tier/inval_sync.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corral/core/log.h"
#include "corral/tier/inval_ring.h"

#define CR_SYNC_BATCH 256u          /* entries read per round at most */
#define CR_SYNC_OUTBOX_MAX 1024u    /* entries waiting to be written */
#define CR_SYNC_START_ENTRIES 1024u /* recent entries read into the ring at start */
#define CR_SYNC_ENTRY_EXPIRY_S 600u /* how long an entry stays in memcached */

typedef struct st_cr_outbox_item_t {
    struct st_cr_outbox_item_t *next;
    cr_inval_entry_t *entry; /* one block (cr_inval_entry_copy) */
} cr_outbox_item_t;

struct st_cr_inval_sync_t {
    cr_tier_t *tier;
    cr_inval_apply_fn apply;
    void *ctx;
    pthread_t tid;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    cr_outbox_item_t *head, **tail; /* under mutex */
    size_t outbox_len;              /* under mutex */
    uint64_t next_local_id;         /* under mutex */
    int stopping, wake;             /* under mutex */
    /* the thread's own */
    uint64_t seen;            /* the last sequence number read (or skipped as a gap) */
    int known;                /* the counter was read at least once */
    uint64_t unreachable_since; /* monotonic ms of the first failed read of this outage, 0 when none */
    uint64_t missing_since;   /* monotonic ms since the entry seen + 1 has been missing, 0 when none */
};

/* 1 once the log was read and while it is not in a long outage: L2 values may be trusted. */
static int log_known_flag; /* atomic; one tier per process */

int cr_inval_sync_log_known(const cr_tier_t *tier)
{
    (void)tier;
    return __atomic_load_n(&log_known_flag, __ATOMIC_ACQUIRE);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads the counter. CR_MC_OK with *top, CR_MC_MISS (absent: 0), or a failure. */
static cr_mc_result_t read_top(cr_inval_sync_t *s, uint64_t *top)
{
    char *v = NULL, buf[32];
    size_t len = 0;
    cr_mc_result_t r = cr_mc_get(s->tier->mc, CR_INVAL_SEQ_KEY, sizeof(CR_INVAL_SEQ_KEY) - 1, &v, &len);
    char *end;

    *top = 0;
    if (r != CR_MC_OK)
        return r;
    /* memcached keeps an incr'ed counter as decimal text, possibly padded with spaces */
    if (len == 0 || len >= sizeof(buf)) {
        free(v);
        return CR_MC_FAILED;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    free(v);
    errno = 0;
    *top = strtoull(buf, &end, 10);
    while (*end == ' ')
        ++end;
    return errno == 0 && *end == '\0' ? CR_MC_OK : CR_MC_FAILED;
}

/* Drops this pod's L1 and vouches only for what comes after `top`: the log cannot prove what was missed. */
static void gap(cr_inval_sync_t *s, uint64_t top, const char *why)
{
    cr_inval_entry_t all = {.everything = 1};

    cr_log_warn("tier: invalidation log gap (%s): dropping this pod's cache, reading on from entry %" PRIu64, why, top + 1);
    CR_TIER_COUNT(s->tier, inval_gaps);
    s->apply(s->ctx, &all);
    cr_inval_ring_set_floor(s->tier->ring, top);
    s->seen = top;
    s->missing_since = 0;
}

/* Reads entry seq. CR_MC_OK with *e (free it), CR_MC_MISS (absent, or not an entry: skip it), or a failure. */
static cr_mc_result_t read_entry(cr_inval_sync_t *s, uint64_t seq, cr_inval_entry_t **e, int *absent)
{
    char key[CR_INVAL_KEY_MAX + 1], *v = NULL;
    size_t keylen = cr_inval_entry_key(seq, key, sizeof(key)), len = 0;
    cr_tier_value_error_t why;
    cr_mc_result_t r = cr_mc_get(s->tier->mc, key, keylen, &v, &len);

    *e = NULL;
    *absent = r == CR_MC_MISS;
    if (r != CR_MC_OK)
        return r;
    if (cr_inval_entry_decode(v, len, e, &why) != CR_OK) {
        cr_tier_count_refused(s->tier, why);
        *e = NULL;
        r = CR_MC_MISS; /* a foreign or corrupt entry: a hole the ring's floor must cover */
    }
    free(v);
    return r;
}

/* At start: the counter, and the most recent entries into the ring (not applied: this pod's L1 is empty). */
static void load_start(cr_inval_sync_t *s)
{
    uint64_t top, seq, from;
    cr_mc_result_t r = read_top(s, &top);

    if (r != CR_MC_OK && r != CR_MC_MISS)
        return; /* not known yet: the rounds retry */
    from = top > CR_SYNC_START_ENTRIES ? top - CR_SYNC_START_ENTRIES : 0;
    cr_inval_ring_set_floor(s->tier->ring, from);
    for (seq = from + 1; seq <= top; ++seq) {
        cr_inval_entry_t *e;
        int absent;
        if (read_entry(s, seq, &e, &absent) == CR_MC_OK) {
            cr_inval_ring_add(s->tier->ring, seq, e);
            free(e);
        } else {
            cr_inval_ring_set_floor(s->tier->ring, seq); /* unread: nothing older than it is vouched for */
        }
    }
    s->seen = top;
    s->known = 1;
    __atomic_store_n(&log_known_flag, 1, __ATOMIC_RELEASE);
}

static void write_outbox(cr_inval_sync_t *s)
{
    for (;;) {
        cr_outbox_item_t *item;
        char key[CR_INVAL_KEY_MAX + 1], *v = NULL;
        size_t vlen = 0, keylen;
        uint64_t seq;
        int attempt, rc;

        pthread_mutex_lock(&s->mutex);
        item = s->head;
        pthread_mutex_unlock(&s->mutex);
        if (item == NULL)
            return;
        if ((rc = cr_inval_entry_encode(item->entry, &v, &vlen)) == CR_TIER_VALUE_TOO_BIG) {
            /* over the entry's bounds (more than 4096 items, an item over 8 KiB, 256 KiB in all): the other pods drop
             * everything instead, which covers whatever it named; same ids, so its pending copy here is read back */
            cr_inval_entry_t all = {.pod_id = item->entry->pod_id, .local_id = item->entry->local_id,
                                    .wall_ms = item->entry->wall_ms, .everything = 1};
            cr_log_warn("tier: an invalidation is too large for the log; the other pods are told to drop everything");
            rc = cr_inval_entry_encode(&all, &v, &vlen);
        }
        if (rc != CR_OK)
            return; /* no memory: next round */
        if (cr_mc_incr(s->tier->mc, CR_INVAL_SEQ_KEY, sizeof(CR_INVAL_SEQ_KEY) - 1, &seq) != CR_MC_OK) {
            CR_TIER_COUNT(s->tier, inval_publish_errors);
            free(v);
            return; /* the log is unreachable: the entry waits */
        }
        keylen = cr_inval_entry_key(seq, key, sizeof(key));
        for (attempt = 0; attempt != 3; ++attempt)
            if (cr_mc_set(s->tier->mc, key, keylen, v, vlen, CR_SYNC_ENTRY_EXPIRY_S) == CR_MC_OK)
                break;
        if (attempt == 3)
            CR_TIER_COUNT(s->tier, inval_publish_errors); /* its number stays empty: the readers' gap */
        else
            CR_TIER_COUNT(s->tier, inval_published);
        free(v);
        pthread_mutex_lock(&s->mutex);
        s->head = item->next;
        if (s->head == NULL)
            s->tail = &s->head;
        --s->outbox_len;
        pthread_mutex_unlock(&s->mutex);
        free(item->entry);
        free(item);
    }
}

static void note_unreachable(cr_inval_sync_t *s, uint64_t now)
{
    if (s->unreachable_since == 0)
        s->unreachable_since = now;
    if (now - s->unreachable_since > s->tier->inval_max_delay_ms)
        __atomic_store_n(&log_known_flag, 0, __ATOMIC_RELEASE); /* L2 values are refused until it is read again */
}

static void read_log(cr_inval_sync_t *s)
{
    uint64_t now = mono_ms(), top, seq;
    cr_mc_result_t r;
    unsigned n;

    if (!s->known) {
        load_start(s);
        if (!s->known) {
            note_unreachable(s, now);
            return;
        }
    }
    if ((r = read_top(s, &top)) != CR_MC_OK && r != CR_MC_MISS) {
        note_unreachable(s, now);
        return;
    }
    if (s->unreachable_since != 0) {
        int long_outage = now - s->unreachable_since > s->tier->inval_max_delay_ms;
        s->unreachable_since = 0;
        if (long_outage)
            gap(s, top > s->seen ? top : s->seen, "the log was unreachable for longer than max_delay");
        __atomic_store_n(&log_known_flag, 1, __ATOMIC_RELEASE);
    }
    if (top < s->seen) {
        gap(s, top, "the log's counter went back: memcached lost it");
        return;
    }
    if (top - s->seen > CR_SYNC_START_ENTRIES) {
        gap(s, top, "this pod fell too far behind the log");
        return;
    }
    for (n = 0, seq = s->seen + 1; seq <= top && n != CR_SYNC_BATCH; ++seq, ++n) {
        cr_inval_entry_t *e;
        int absent;
        if ((r = read_entry(s, seq, &e, &absent)) != CR_MC_OK) {
            if (!absent && r != CR_MC_MISS) {
                note_unreachable(s, now);
                return;
            }
            if (absent) {
                /* its writer may be between incr and set: wait for it, up to max_delay */
                if (s->missing_since == 0)
                    s->missing_since = now;
                if (now - s->missing_since <= s->tier->inval_max_delay_ms)
                    return;
            }
            gap(s, seq, absent ? "an entry never appeared" : "an entry could not be read");
            continue;
        }
        s->missing_since = 0;
        cr_inval_ring_add(s->tier->ring, seq, e);
        if (e->pod_id != s->tier->pod_id) {
            uint64_t wall = cr_tier_wall_ms(), delay = wall > e->wall_ms ? wall - e->wall_ms : 0, max;
            s->apply(s->ctx, e);
            CR_TIER_COUNT(s->tier, inval_applied);
            cr_hist_observe_shared(&s->tier->counters.inval_delay, delay * 1000);
            max = __atomic_load_n(&s->tier->counters.inval_delay_ms_max, __ATOMIC_RELAXED);
            if (delay > max)
                __atomic_store_n(&s->tier->counters.inval_delay_ms_max, delay, __ATOMIC_RELAXED);
        }
        free(e);
        s->seen = seq;
    }
}

static void *sync_main(void *arg)
{
    cr_inval_sync_t *s = arg;

    pthread_setname_np(pthread_self(), "corral-inval");
    for (;;) {
        struct timespec until;
        int stopping;

        write_outbox(s);
        read_log(s);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(s->tier->inval_poll_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(s->tier->inval_poll_ms / 1000) + until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        pthread_mutex_lock(&s->mutex);
        while (!s->stopping && !s->wake && pthread_cond_timedwait(&s->cond, &s->mutex, &until) != ETIMEDOUT)
            ;
        s->wake = 0;
        stopping = s->stopping;
        pthread_mutex_unlock(&s->mutex);
        if (stopping)
            break;
    }
    write_outbox(s); /* one last try: what a draining pod invalidated should reach the others */
    return NULL;
}

cr_inval_sync_t *cr_inval_sync_start(cr_tier_t *tier, cr_inval_apply_fn apply, void *ctx)
{
    cr_inval_sync_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->tier = tier;
    s->apply = apply;
    s->ctx = ctx;
    s->tail = &s->head;
    pthread_mutex_init(&s->mutex, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->tid, NULL, sync_main, s) != 0) {
        pthread_mutex_destroy(&s->mutex);
        pthread_cond_destroy(&s->cond);
        free(s);
        return NULL;
    }
    return s;
}

void cr_inval_sync_stop(cr_inval_sync_t **sp)
{
    cr_inval_sync_t *s = *sp;
    cr_outbox_item_t *item;

    *sp = NULL;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mutex);
    s->stopping = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mutex);
    pthread_join(s->tid, NULL);
    while ((item = s->head) != NULL) {
        s->head = item->next;
        free(item->entry);
        free(item);
    }
    pthread_mutex_destroy(&s->mutex);
    pthread_cond_destroy(&s->cond);
    free(s);
}

void cr_inval_sync_publish(cr_inval_sync_t *s, const cr_inval_entry_t *e)
{
    cr_inval_entry_t tmp = *e, *copy;
    cr_outbox_item_t *item, *dropped = NULL;

    tmp.pod_id = s->tier->pod_id;
    tmp.wall_ms = cr_tier_wall_ms();
    pthread_mutex_lock(&s->mutex);
    tmp.local_id = ++s->next_local_id;
    pthread_mutex_unlock(&s->mutex);
    /* pending first: from now on this pod's own L2 reads honour it, before the log has it */
    cr_inval_ring_add_pending(s->tier->ring, &tmp);
    if ((copy = cr_inval_entry_copy(&tmp)) == NULL || (item = malloc(sizeof(*item))) == NULL) {
        free(copy);
        CR_TIER_COUNT(s->tier, inval_publish_errors);
        return;
    }
    item->next = NULL;
    item->entry = copy;
    pthread_mutex_lock(&s->mutex);
    if (s->outbox_len == CR_SYNC_OUTBOX_MAX) {
        dropped = s->head;
        s->head = dropped->next;
        if (s->head == NULL)
            s->tail = &s->head;
        --s->outbox_len;
    }
    *s->tail = item;
    s->tail = &item->next;
    ++s->outbox_len;
    s->wake = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mutex);
    if (dropped != NULL) {
        CR_TIER_COUNT(s->tier, inval_publish_errors);
        free(dropped->entry);
        free(dropped);
    }
}
