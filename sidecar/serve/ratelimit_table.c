/*
 * ratelimit_table.c: the rate limiter's GCRA buckets in one lock-free table every worker thread shares (see
 * ratelimit_table.h for the word layout, eviction and the failure mode).
 *
 * Why shared and not per thread: SO_REUSEPORT gives each client connection to one thread, so a per-thread 1/N of
 * the rate would hold one busy client to rate/N and let N clients on N threads through at the full rate each. One
 * table with a CAS per admitted request costs a few nanoseconds when the key's cache line stays on one core, and a
 * cache-line transfer when two threads take from the same key at the same moment.
 * Invariants and locking: words change only by CAS (ratelimit_table.h); no allocation, no system call.
 */
#include "corral/serve/ratelimit_table.h"

#define TIME_MASK ((1ull << CR_RL_TIME_BITS) - 1)
#define NUM_SETS (1u << 16)

static uint64_t process_words[NUM_SETS * CR_RL_WAYS] __attribute__((aligned(64)));
static cr_rl_table_t process_table = {process_words, NUM_SETS - 1};

cr_rl_table_t *cr_rl_table_process(void)
{
    return &process_table;
}

/* a - b modulo 2^44, as a signed number */
static int64_t time_diff(uint64_t a, uint64_t b)
{
    uint64_t d = (a - b) & TIME_MASK;
    return d & (1ull << (CR_RL_TIME_BITS - 1)) ? (int64_t)d - (int64_t)(1ull << CR_RL_TIME_BITS) : (int64_t)d;
}

/* How far the stored TAT is ahead of now; 0 for a full bucket (TAT past, or further ahead than any bucket can be:
 * a word left from a long time ago that the modulo made look ahead) */
static uint64_t ahead_of(uint64_t tat, uint64_t now_us, uint64_t tau_us)
{
    int64_t d = time_diff(tat, now_us);
    return d <= 0 || (uint64_t)d > tau_us ? 0 : (uint64_t)d;
}

int cr_rl_gcra(uint64_t tat, uint64_t now_us, uint64_t interval_us, uint64_t tau_us, uint64_t *next, cr_rl_verdict_t *v)
{
    uint64_t ahead = ahead_of(tat, now_us, tau_us);

    if (ahead + interval_us > tau_us) {
        v->remaining = 0;
        v->reset_us = ahead;
        v->retry_us = ahead + interval_us - tau_us;
        return 0;
    }
    *next = (now_us + ahead + interval_us) & TIME_MASK;
    v->remaining = (tau_us - ahead - interval_us) / interval_us;
    v->reset_us = ahead + interval_us;
    v->retry_us = 0;
    return 1;
}

int cr_rl_table_take(cr_rl_table_t *t, uint64_t hash, uint64_t now_us, uint64_t interval_us, uint64_t tau_us, cr_rl_verdict_t *v)
{
    uint64_t *set = t->words + (hash & t->set_mask) * CR_RL_WAYS;
    uint64_t tag = (hash >> CR_RL_TIME_BITS) << CR_RL_TIME_BITS; /* the hash's top 20 bits */
    unsigned tries, i;

    now_us &= TIME_MASK;
    if (interval_us == 0)
        interval_us = 1;
    if (tau_us > CR_RL_MAX_TAU_US)
        tau_us = CR_RL_MAX_TAU_US;
    for (tries = 0; tries != 8; ++tries) {
        uint64_t words[CR_RL_WAYS], old, next;
        unsigned victim = 0, mine = CR_RL_WAYS;
        int64_t victim_ahead = INT64_MAX;
        for (i = 0; i != CR_RL_WAYS; ++i) {
            words[i] = __atomic_load_n(&set[i], __ATOMIC_RELAXED);
            if ((words[i] & ~TIME_MASK) == tag) {
                mine = i;
                break;
            }
            if (time_diff(words[i] & TIME_MASK, now_us) < victim_ahead) {
                victim_ahead = time_diff(words[i] & TIME_MASK, now_us);
                victim = i;
            }
        }
        if (mine != CR_RL_WAYS) {
            old = words[mine];
        } else {
            mine = victim; /* a full bucket (free for anyone) or, when every way is busy, the one nearest to full */
            old = words[mine];
            words[mine] = tag | now_us; /* this key has never been seen, or was evicted: a full bucket */
        }
        if (!cr_rl_gcra(words[mine] & TIME_MASK, now_us, interval_us, tau_us, &next, v))
            return 0;
        if (__atomic_compare_exchange_n(&set[mine], &old, tag | next, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return 1;
    }
    return 1; /* heavy contention on one set: admit rather than spin */
}
