/*
 * l2fill.c: the shared tier's part of a fill (see flight_int.h): before the upstream, an L2 lookup and, on a miss,
 * the key's cross-pod lease; after the publication, the L2 write of what was stored, or the lease's release.
 *
 * The lookup (one per flight, so one per key across this pod's threads, as the flight is):
 *   1. on the worker pool: get the value; a usable one ends the step (an L2 hit). Else, when the flight is shared,
 *      `add` the lease key (tier.lease.ttl): taken -> this pod fetches (and later writes the value, or "nostore");
 *      held by another pod -> read it: "nostore" means that pod's answer was not storable, go upstream at once;
 *   2. on the owner's loop: an L2 hit (fresh, not covered by an invalidation this pod knows of, no purge since the
 *      fill began) is stored in L1 and answers every waiter; a held lease makes the flight look again every
 *      tier.lease.poll_interval, for at most the lease's ttl plus one second (memcached's expiry granularity): the
 *      value appearing ends the wait, as an L2 hit; the lease gone (its holder died, or gave up) is taken over by
 *      the first pod whose `add` wins; the deadline passing goes upstream.
 *   3. anything else (no tier for this flight, the pool full, memcached down, the breaker open) fetches at once.
 * The write (after publication, never delaying it): a result stored in L1, not from L2, is encoded and `set` on the
 * pool with an expiry covering its freshness and both stale windows; the lease, when held, is deleted after it; a
 * result not stored makes the lease "nostore" so other pods stop waiting.
 *
 * Invariants: libmemcached runs only on the pool's threads (cr_l2_job_t's run); the job reads only its own fields
 * there, and the flight is touched only on its owner's loop, in `done`. A lookup job holds a reference to its
 * flight; a write job holds the object only (the flight may be gone). When the pool refuses a job (full, stopping),
 * a lookup goes upstream and a write is dropped (counted): L2 is an optimisation, never waited for.
 * Locking: none here; the flight table's mutex is not taken.
 */
#include "flight_int.h"

#include <stdlib.h>
#include <string.h>

#include "corral/core/log.h"
#include "corral/http/http.h"
#include "corral/tier/inval_ring.h"
#include "corral/tier/inval_sync.h"
#include "corral/tier/tier.h"
#include "corral/tier/tier_key.h"

#define CR_L2_NOSTORE "nostore"

typedef enum en_cr_l2_lease_t {
    L2_LEASE_NONE = 0, /* not asked, or the call failed: go upstream without one */
    L2_LEASE_TAKEN,    /* this pod holds it */
    L2_LEASE_HELD,     /* another pod holds it: wait for its value */
    L2_LEASE_NOSTORE,  /* the holder's answer was not storable: go upstream at once */
} cr_l2_lease_t;

typedef struct st_cr_l2_job_t {
    cr_workq_job_t super;
    cr_flight_t *flight; /* one reference (lookups); NULL for writes */
    /* inputs, constant while submitted */
    int want_lease;
    char vkey[CR_TIER_KEY_MAX + 1], lkey[CR_TIER_KEY_MAX + 1];
    size_t vkeylen, lkeylen;
    const char *pkey; /* the primary key (the flight's, which outlives the job) */
    size_t pkeylen;
    cr_object_t *write; /* writes: the object to encode and set (one reference) */
    uint64_t write_log_pos;
    int release_lease;   /* writes: delete the lease after the set */
    int mark_nostore;    /* writes: only set the lease to "nostore" */
    /* results, written by run */
    cr_mc_result_t get_rc;
    cr_object_t *obj; /* a decoded value (one reference) */
    uint64_t obj_log_pos;
    cr_tier_value_error_t why;
    cr_l2_lease_t lease;
} cr_l2_job_t;

/* ---- on a pool thread ---- */

/* Is a decoded value usable now (wall clock)? Fresh, and nothing this pod knows of the invalidation log covers it.
 * Its refusals are counted here. The ring and the log flag are safe from any thread (inval_ring.h, inval_sync.h). */
static int l2_usable(cr_object_t *obj, uint64_t log_pos, uint64_t now)
{
    cr_tier_t *tier = cr_rt.tier;

    if (!cr_object_is_fresh(obj, now))
        return 0; /* L2 fills with remaining freshness only; a stale copy is the upstream's to refresh */
    if (!cr_inval_sync_log_known(tier) || cr_inval_ring_refuses(tier->ring, log_pos, obj)) {
        /* covered by an invalidation this pod knows of, or the log cannot be read: nothing proves it clean */
        cr_tier_count_refused(tier, CR_TIER_VALUE_NUM_ERRORS);
        return 0;
    }
    return 1;
}

/* Reads the key's value: on CR_MC_OK, j->obj is the decoded value when it is usable now, else NULL (j->why says why
 * it did not decode, CR_TIER_VALUE_OK when it decoded but is not usable). */
static cr_mc_result_t read_value(cr_l2_job_t *j)
{
    char *v = NULL;
    size_t vlen = 0;
    uint64_t now;
    cr_mc_result_t rc = cr_mc_get(cr_rt.tier->mc, j->vkey, j->vkeylen, &v, &vlen);

    if (rc != CR_MC_OK)
        return rc;
    now = cr_tier_wall_ms();
    if (cr_tier_value_decode(v, vlen, j->pkey, j->pkeylen, now, &j->obj, &j->why, &j->obj_log_pos) != CR_OK)
        j->obj = NULL;
    free(v);
    if (j->obj != NULL && !l2_usable(j->obj, j->obj_log_pos, now))
        cr_object_release(&j->obj);
    return rc;
}

static void run_lookup(cr_workq_job_t *job)
{
    cr_l2_job_t *j = H2O_STRUCT_FROM_MEMBER(cr_l2_job_t, super, job);
    cr_tier_t *tier = cr_rt.tier;
    char *lv = NULL;
    size_t lvlen = 0;
    char pod[24];
    int podlen;

    j->obj = NULL;
    j->why = CR_TIER_VALUE_OK;
    j->lease = L2_LEASE_NONE;
    if ((j->get_rc = read_value(j)) == CR_MC_OK && j->obj != NULL)
        return; /* an unusable value is a miss like any other: the lease follows */
    if (!j->want_lease || j->get_rc == CR_MC_FAILED || j->get_rc == CR_MC_SKIPPED)
        return;
    podlen = snprintf(pod, sizeof(pod), "%016llx", (unsigned long long)tier->pod_id);
    switch (cr_mc_add(tier->mc, j->lkey, j->lkeylen, pod, (size_t)podlen, cr_mc_expiry_s(tier->lease_ttl_ms))) {
    case CR_MC_OK:
        j->lease = L2_LEASE_TAKEN;
        /* the previous holder may have written the value and deleted its lease between the get above and this add:
         * look once more, so that its answer is used rather than fetched a second time */
        if (read_value(j) == CR_MC_OK && j->obj != NULL) {
            cr_mc_delete(tier->mc, j->lkey, j->lkeylen); /* not needed: the value is there */
            j->lease = L2_LEASE_NONE;
            j->get_rc = CR_MC_OK;
        }
        return;
    case CR_MC_MISS:
        break;
    default:
        return;
    }
    /* held: by whom, or marked "nostore" */
    j->lease = L2_LEASE_HELD;
    if (cr_mc_get(tier->mc, j->lkey, j->lkeylen, &lv, &lvlen) == CR_MC_OK && lvlen == sizeof(CR_L2_NOSTORE) - 1 &&
        memcmp(lv, CR_L2_NOSTORE, lvlen) == 0)
        j->lease = L2_LEASE_NOSTORE;
    free(lv);
}

static void run_write(cr_workq_job_t *job)
{
    cr_l2_job_t *j = H2O_STRUCT_FROM_MEMBER(cr_l2_job_t, super, job);
    cr_tier_t *tier = cr_rt.tier;
    uint64_t now = cr_tier_wall_ms();
    char *v = NULL;
    size_t vlen = 0;
    int rc;

    if (j->mark_nostore) {
        /* the lease stays as long as it would have, now saying "go upstream" */
        cr_mc_set(tier->mc, j->lkey, j->lkeylen, CR_L2_NOSTORE, sizeof(CR_L2_NOSTORE) - 1, cr_mc_expiry_s(tier->lease_ttl_ms));
        return;
    }
    switch (rc = cr_tier_value_encode(j->write, now, j->write_log_pos, tier->max_value_bytes, &v, &vlen)) {
    case CR_OK:
        if (cr_mc_set(tier->mc, j->vkey, j->vkeylen, v, vlen, cr_mc_expiry_s(cr_tier_value_ttl_ms(j->write, now))) == CR_MC_OK)
            CR_TIER_COUNT(tier, l2_sets);
        else
            CR_TIER_COUNT(tier, l2_set_errors);
        free(v);
        break;
    case CR_TIER_VALUE_TOO_BIG:
        CR_TIER_COUNT(tier, l2_too_big);
        break;
    default:
        break; /* unfit (past use, a marker) or no memory: nothing to share */
    }
    if (j->release_lease) {
        if (rc == CR_OK)
            cr_mc_delete(tier->mc, j->lkey, j->lkeylen);
        else
            cr_mc_set(tier->mc, j->lkey, j->lkeylen, CR_L2_NOSTORE, sizeof(CR_L2_NOSTORE) - 1, cr_mc_expiry_s(tier->lease_ttl_ms));
    }
}

/* ---- on the owner's loop ---- */

static void on_write_done(cr_workq_job_t *job, int status)
{
    cr_l2_job_t *j = H2O_STRUCT_FROM_MEMBER(cr_l2_job_t, super, job);
    if (status != CR_OK)
        CR_TIER_COUNT(cr_rt.tier, l2_set_errors); /* cancelled by the pool's stop */
    cr_object_release(&j->write);
    free(j);
}

static void submit_lookup(cr_flight_t *f);

static void l2_answer(cr_flight_t *f, cr_object_t *obj)
{
    f->result = obj;
    f->outcome = OUTCOME_SERVE_ALL;
    f->l2_hit = 1;
    if (cr_store_insert_if_epoch(cr_rt.store, obj, &f->epoch) == CR_OK) {
        f->stored = 1;
        CR_STAT_INC(f->owner->stats, stored);
    } else {
        f->not_stored_reason = cr_store_epoch_moved(cr_rt.store, &f->epoch, obj) ? "invalidated" : "too-large";
    }
    CR_TIER_COUNT(cr_rt.tier, l2_hits);
    cr_flight_publish(f); /* drops the fill's reference */
}

/* The fetch begins now, after the tier step (which may have waited on a lease): what it answers reflects every
 * invalidation applied so far, so its store epoch and log position are taken again here. An invalidation that landed
 * during the tier step made the L2 copy unusable; it does not make the upstream's answer unstorable. */
static void go_upstream(cr_flight_t *f)
{
    cr_store_fill_epoch(cr_rt.store, cr_path_hash(cr_str(f->key, f->keylen)), &f->epoch);
    f->log_pos = cr_inval_ring_top(cr_rt.tier->ring);
    cr_fill_fetch(f->owner, f);
}

static void on_lease_timer(h2o_timeout_entry_t *entry)
{
    cr_flight_t *f = H2O_STRUCT_FROM_MEMBER(cr_flight_t, l2_timer, entry);
    submit_lookup(f);
}

static void on_lookup_done(cr_workq_job_t *job, int status)
{
    cr_l2_job_t *j = H2O_STRUCT_FROM_MEMBER(cr_l2_job_t, super, job);
    cr_flight_t *f = j->flight;
    cr_tier_t *tier = cr_rt.tier;
    uint64_t now = h2o_now(f->owner->ctx.loop);
    int waited = f->lease_deadline != 0;
    cr_l2_lease_t lease = j->lease;
    cr_object_t *obj = j->obj;

    f->l2_job = NULL;
    if (status != CR_OK) {
        /* cancelled by the pool's stop: the upstream answers */
        free(j);
        go_upstream(f);
        cr_flight_release(&f); /* the job's */
        return;
    }
    if (j->get_rc == CR_MC_FAILED || j->get_rc == CR_MC_SKIPPED)
        CR_TIER_COUNT(tier, l2_errors);
    if (j->get_rc == CR_MC_OK && obj == NULL && j->why != CR_TIER_VALUE_OK)
        cr_tier_count_refused(tier, j->why);
    if (obj != NULL) {
        obj->path_hash = cr_path_hash(cr_object_key(obj));
        if (cr_store_epoch_moved(cr_rt.store, &f->epoch, obj))
            cr_object_release(&obj); /* purged here since the fill began: ask the upstream */
    }
    if (obj != NULL) {
        if (waited)
            CR_TIER_COUNT(tier, lease_served);
        free(j);
        l2_answer(f, obj);
        cr_flight_release(&f);
        return;
    }
    if (!waited)
        CR_TIER_COUNT(tier, l2_misses);
    free(j);
    switch (lease) {
    case L2_LEASE_TAKEN:
        f->lease_held = 1;
        CR_TIER_COUNT(tier, leases_taken);
        go_upstream(f);
        break;
    case L2_LEASE_HELD:
        if (!waited) {
            CR_TIER_COUNT(tier, lease_waits);
            f->lease_deadline = now + tier->lease_ttl_ms + 1000;
        }
        if (now < f->lease_deadline) {
            f->l2_timer.cb = on_lease_timer;
            h2o_timeout_link(f->owner->ctx.loop, cr_thread_timeout(f->owner, tier->lease_poll_ms), &f->l2_timer);
            break; /* the job's reference becomes the timer's */
        }
        /* waited long enough */
        __attribute__((fallthrough));
    case L2_LEASE_NOSTORE:
        if (waited || lease == L2_LEASE_NOSTORE)
            CR_TIER_COUNT(tier, lease_gave_up);
        __attribute__((fallthrough));
    case L2_LEASE_NONE:
        go_upstream(f);
        break;
    }
    if (!h2o_timeout_is_linked(&f->l2_timer))
        cr_flight_release(&f);
}

/* Submits the lookup (or a look again at another pod's lease). The flight's reference for the job is the caller's:
 * the first submit takes a new one, a resubmit from the timer reuses the timer's. */
static void submit_lookup(cr_flight_t *f)
{
    cr_l2_job_t *j = calloc(1, sizeof(*j));

    if (j == NULL)
        goto Upstream;
    j->flight = f;
    j->want_lease = f->in_table; /* a private fill leads no herd: other pods need not wait for it */
    j->pkey = f->key;
    j->pkeylen = f->keylen;
    if ((j->vkeylen = cr_tier_key(f->key, f->keylen, j->vkey)) == 0 || (j->lkeylen = cr_tier_lease_key(f->key, f->keylen, j->lkey)) == 0 ||
        cr_workq_submit(&f->owner->workq_owner, &j->super, run_lookup, on_lookup_done) != CR_OK) {
        free(j);
        goto Upstream;
    }
    f->l2_job = j;
    return;

Upstream:
    CR_TIER_COUNT(cr_rt.tier, l2_errors);
    go_upstream(f);
    cr_flight_release(&f);
}

int cr_l2_begin(cr_thread_t *t, cr_flight_t *f)
{
    if (cr_rt.tier == NULL || t->workq_owner.workq == NULL)
        return CR_DECLINED;
    cr_flight_addref(f); /* the job's (then the timer's, between looks) */
    submit_lookup(f);
    return CR_OK;
}

/* Queues a write job for `obj` (NULL: only the lease's no-store marker). */
static void submit_write(cr_flight_t *f, cr_object_t *obj)
{
    cr_tier_t *tier = cr_rt.tier;
    cr_l2_job_t *j = calloc(1, sizeof(*j));

    if (j == NULL)
        goto Drop;
    if ((j->vkeylen = cr_tier_key(f->key, f->keylen, j->vkey)) == 0 ||
        (j->lkeylen = cr_tier_lease_key(f->key, f->keylen, j->lkey)) == 0)
        goto Drop;
    if (obj != NULL) {
        cr_object_addref(obj);
        j->write = obj;
        j->write_log_pos = f->log_pos;
        j->release_lease = f->lease_held;
    } else {
        j->mark_nostore = 1;
    }
    if (cr_workq_submit(&f->owner->workq_owner, &j->super, run_write, on_write_done) == CR_OK)
        return;
    cr_object_release(&j->write);
Drop:
    free(j);
    CR_TIER_COUNT(tier, l2_set_errors);
}

void cr_l2_on_publish(cr_flight_t *f)
{
    if (cr_rt.tier == NULL || f->owner->workq_owner.workq == NULL)
        return;
    if (f->stored && !f->l2_hit && f->result != NULL && !f->result_is_stale)
        submit_write(f, f->result);
    else if (f->lease_held)
        submit_write(f, NULL);
    f->lease_held = 0;
}
