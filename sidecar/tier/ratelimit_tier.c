/*
 * ratelimit_tier.c: fleet-wide rate limits through memcached (see ratelimit_tier.h for the counting, the batches, the
 * borrowing bound and the fallback).
 *
 * Invariants: an entry's window and key change together when a new window (or key) claims it, by a CAS on the
 * window; a grant is added only while the entry still holds the job's key and window, so tokens of one window never
 * reach the next. `fetching` keeps one batch in flight per entry. Locking: none; atomics only (relaxed: counts, not
 * publication of memory). memcached is called on the worker pool only.
 */
#include "corral/tier/ratelimit_tier.h"

#include <stdio.h>
#include <stdlib.h>

#include "corral/core/log.h"
#include "corral/core/workq.h"
#include "corral/tier/mc.h"
#include "corral/tier/tier.h"

#define NUM_ENTRIES 4096u
#define RETRY_DOWN_MS 1000u

typedef struct st_rl_entry_t {
    uint64_t key, window; /* every field: __atomic builtins only */
    int64_t tokens;
    unsigned fetching, exhausted;
} __attribute__((aligned(64))) rl_entry_t;

typedef struct st_rl_job_t {
    cr_workq_job_t super; /* first: the pool hands it back as this */
    rl_entry_t *entry;
    uint64_t key, window, name_hash, quota, batch, window_ms, submitted_ms;
    int64_t granted;
    int failed;
} rl_job_t;

static rl_entry_t entries[NUM_ENTRIES];
static uint64_t down_until_ms; /* memcached failed: shares until then */
static int down_logged;

static uint64_t batch_of(const cr_ratelimit_config_t *rl)
{
    uint64_t b = rl->cluster_quota / (40 * rl->pods);
    return b != 0 ? b : 1;
}

uint64_t cr_rl_cluster_grant(uint64_t total, uint64_t batch, uint64_t quota)
{
    /* the batch took [total - batch, total): the part under the quota is ours */
    if (total <= quota)
        return batch;
    return total - batch >= quota ? 0 : quota - (total - batch);
}

static void run_incr(cr_workq_job_t *_job)
{
    rl_job_t *j = (rl_job_t *)_job;
    char key[96];
    int len = snprintf(key, sizeof(key), "corral:v1:rl:%016llx:%016llx:%llu", (unsigned long long)j->name_hash,
                       (unsigned long long)j->key, (unsigned long long)j->window);
    uint64_t total = 0, keep_ms = 2 * j->window_ms < 2000 ? 2000 : 2 * j->window_ms; /* memcached's clock ticks in s */

    if (cr_mc_incr_by(cr_rt.tier->mc, key, (size_t)len, (uint32_t)j->batch, cr_mc_expiry_s(keep_ms), &total) != CR_MC_OK) {
        j->failed = 1;
        return;
    }
    j->granted = (int64_t)cr_rl_cluster_grant(total, j->batch, j->quota);
}

static void on_incr_done(cr_workq_job_t *_job, int status)
{
    rl_job_t *j = (rl_job_t *)_job;
    rl_entry_t *e = j->entry;
    int ours = __atomic_load_n(&e->window, __ATOMIC_RELAXED) == j->window && __atomic_load_n(&e->key, __ATOMIC_RELAXED) == j->key;

    if (status == CR_OK && j->failed) {
        __atomic_store_n(&down_until_ms, j->submitted_ms + RETRY_DOWN_MS, __ATOMIC_RELAXED); /* the callers' clock */
        if (__atomic_exchange_n(&down_logged, 1, __ATOMIC_RELAXED) == 0)
            cr_log_warn("rate_limit scope: cluster: memcached did not answer; each pod admits its share (rate / pods) "
                        "until it does");
    } else if (status == CR_OK) {
        if (__atomic_load_n(&down_logged, __ATOMIC_RELAXED) && __atomic_exchange_n(&down_logged, 0, __ATOMIC_RELAXED))
            cr_log_info("rate_limit scope: cluster: memcached answers again; limits are fleet-wide again");
        if (ours) {
            __atomic_add_fetch(&e->tokens, j->granted, __ATOMIC_RELAXED);
            if (j->granted < (int64_t)j->batch)
                __atomic_store_n(&e->exhausted, 1, __ATOMIC_RELAXED);
        }
    }
    if (ours)
        __atomic_store_n(&e->fetching, 0, __ATOMIC_RELAXED);
    free(j);
}

static void fetch(cr_thread_t *t, rl_entry_t *e, const cr_ratelimit_config_t *rl, uint64_t hash, uint64_t w, uint64_t now_ms)
{
    rl_job_t *j;
    unsigned idle = 0;

    if (__atomic_load_n(&e->fetching, __ATOMIC_RELAXED) || __atomic_load_n(&e->exhausted, __ATOMIC_RELAXED) ||
        !__atomic_compare_exchange_n(&e->fetching, &idle, 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    if ((j = calloc(1, sizeof(*j))) != NULL) {
        j->entry = e;
        j->key = hash;
        j->window = w;
        j->name_hash = rl->name_hash;
        j->quota = rl->cluster_quota;
        j->batch = batch_of(rl);
        j->window_ms = rl->cluster_window_ms;
        j->submitted_ms = now_ms;
        if (cr_workq_submit(&t->workq_owner, &j->super, run_incr, on_incr_done) == CR_OK)
            return;
        free(j); /* the pool is full or stopping: borrowing stops at one batch, then 429 until a batch comes */
    }
    __atomic_store_n(&e->fetching, 0, __ATOMIC_RELAXED);
}

int cr_rl_cluster_take(cr_thread_t *t, const cr_ratelimit_config_t *rl, uint64_t hash, uint64_t now_ms, uint64_t *remaining,
                       uint64_t *retry_ms)
{
    rl_entry_t *e = &entries[hash & (NUM_ENTRIES - 1)];
    uint64_t w = now_ms / rl->cluster_window_ms, ew, window_end_ms = (w + 1) * rl->cluster_window_ms;
    int64_t batch = (int64_t)batch_of(rl), bal;

    if (cr_rt.tier == NULL || t->workq_owner.workq == NULL || now_ms < __atomic_load_n(&down_until_ms, __ATOMIC_RELAXED))
        return -1;
    ew = __atomic_load_n(&e->window, __ATOMIC_RELAXED);
    if (ew != w || __atomic_load_n(&e->key, __ATOMIC_RELAXED) != hash) {
        if (ew >= w || !__atomic_compare_exchange_n(&e->window, &ew, w, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return -1; /* another key holds the slot in this window (or claims it right now) */
        __atomic_store_n(&e->key, hash, __ATOMIC_RELAXED);
        __atomic_store_n(&e->tokens, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&e->exhausted, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&e->fetching, 0, __ATOMIC_RELAXED); /* a job for the old window is dropped when it ends */
    }
    bal = __atomic_sub_fetch(&e->tokens, 1, __ATOMIC_RELAXED);
    if (bal < 0 && (bal < -batch || __atomic_load_n(&e->exhausted, __ATOMIC_RELAXED))) {
        __atomic_add_fetch(&e->tokens, 1, __ATOMIC_RELAXED);
        fetch(t, e, rl, hash, w, now_ms);
        *remaining = 0;
        *retry_ms = __atomic_load_n(&e->exhausted, __ATOMIC_RELAXED) ? window_end_ms - now_ms : 1;
        return 0;
    }
    if (bal < batch / 2 + 1)
        fetch(t, e, rl, hash, w, now_ms);
    *remaining = bal > 0 ? (uint64_t)bal : 0;
    *retry_ms = 0;
    return 1;
}
