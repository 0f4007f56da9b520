/*
 * ratelimit_table.h: the rate limiter's buckets (issue 16): GCRA (the generic cell rate algorithm, a token bucket
 * kept as one "theoretical arrival time" per key) in a fixed-size, set-associative table shared by every worker
 * thread (ratelimit_table.c).
 *
 * A bucket is one 64-bit word: a 20-bit tag from the key's hash and the key's theoretical arrival time (TAT) in
 * microseconds modulo 2^44. A request at `now` is admitted when TAT' = max(TAT, now) + T stays within now + tau
 * (T = the interval between tokens, tau = burst * T), and TAT' is stored with one compare-and-swap. A key whose TAT
 * is not ahead of now has a full bucket, exactly like a key never seen: such words are free for any key, so eviction
 * loses nothing; only when all the ways of a set are busy is the one closest to full taken over (that key starts
 * over with a full bucket: the table fails open, never closed).
 * Invariants and locking: no lock; each word changes by CAS only (a failed CAS retries, a bounded number of times,
 * then admits). Keys sharing a set and a tag (about 1 in 2^20 of the set's keys) share a bucket. Nothing stored
 * reveals a key: only hash bits. `now` is passed in (unit tests use a fake clock).
 */
#ifndef CORRAL_SERVE_RATELIMIT_TABLE_H
#define CORRAL_SERVE_RATELIMIT_TABLE_H

#include <stdint.h>

#define CR_RL_WAYS 4u
#define CR_RL_TIME_BITS 44u
#define CR_RL_MAX_TAU_US (1ull << 42) /* tau is capped at 50 days */

typedef struct st_cr_rl_table_t {
    uint64_t *words;        /* num_sets * CR_RL_WAYS */
    uint64_t set_mask;       /* num_sets - 1; num_sets a power of two */
} cr_rl_table_t;

/* The answer for one request, for the RateLimit headers. */
typedef struct st_cr_rl_verdict_t {
    uint64_t remaining; /* tokens left after this request (0 when refused) */
    uint64_t reset_us;  /* until the bucket is full again */
    uint64_t retry_us;  /* refused: until one token is there */
} cr_rl_verdict_t;

/* The bucket math alone: `tat` the stored time (mod 2^44), now in us, interval and tau in us. Returns 1 and sets
 * *next (mod 2^44) when admitted, else 0. v gets the numbers either way. */
int cr_rl_gcra(uint64_t tat, uint64_t now_us, uint64_t interval_us, uint64_t tau_us, uint64_t *next, cr_rl_verdict_t *v);

/* Takes a token for `hash` from the table: 1 admitted, 0 refused. Any thread. */
int cr_rl_table_take(cr_rl_table_t *t, uint64_t hash, uint64_t now_us, uint64_t interval_us, uint64_t tau_us, cr_rl_verdict_t *v);

/* The process's table: 65536 sets x 4 ways = 262,144 keys in 2 MiB (static, zero pages until touched). */
cr_rl_table_t *cr_rl_table_process(void);

#endif
