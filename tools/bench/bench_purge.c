/*
 * bench_purge.c: the cost of a tag purge in a big cache, and what it does to concurrent hits (issue 5, "Benchmark":
 * in a cache of 1,000,000 small objects, a purge of one tag carrying 10,000 of them; its time, and the p99 latency of
 * concurrent hits while it runs). Measured on the real store and object code (linked against build/libcorral.a).
 *
 *   cc -std=gnu11 -O2 -Wall -Wextra -Werror -DH2O_USE_LIBUV=0 -D_GNU_SOURCE -Iinclude -o build/bench_purge \
 *      tools/bench/bench_purge.c build/libcorral.a $(pkg-config --libs libh2o-evloop libmemcached zlib libbrotlienc \
 *      libbrotlidec yaml-0.1 openssl jansson) -lpthread -lm
 *   build/bench_purge [--json FILE] [--objects N] [--reps N] [--baseline-ms MS]
 *
 * The cache. One store (cr_store_new, 2 GiB: nothing is ever evicted) holding N (1,000,000) objects shaped like the
 * ones corral stores: primary key "127.0.0.1:8081\n/items/<i>" (cr_key_build's layout), four upstream headers, a
 * 100-byte identity body, indexed by path (obj->path_hash = cr_path_hash(key), as flight.c does); objects with
 * i % 100 == 0 carry the tag "hot" and those with i % 100 == 50 the tag "warm" (N / 100 each, spread over every shard
 * since the shard is chosen by the key hash), set with cr_object_set_tags().
 *
 * A round (one per repetition of a scenario). A hit thread, pinned to the hit CPU, warms up for 50 ms, then loops:
 * draw i uniformly among the N keys, build the key and its hash (untimed, as the handler does before it looks up),
 * then, between two clock_gettime(CLOCK_MONOTONIC) reads, cr_store_lookup() + cr_object_is_fresh() +
 * cr_object_release() (the hit path's store work); each (start, duration, outcome) goes to a preallocated array, so
 * the loop neither allocates nor prints. The main thread, pinned to the purge CPU, lets it run for the baseline window
 * (--baseline-ms, 400 ms), then times cr_store_purge_tag(store, tag, taglen, soft) and stops the hit thread. Baseline
 * samples are the lookups that started and ended inside the baseline window; "during" samples are the lookups whose
 * [start, end] interval overlaps the purge's [t0, t1] at all (a lookup that waited on a shard lock the purge held, or
 * that was descheduled while the purge ran, counts). The hit loop is closed (one lookup after another), so time it
 * spends descheduled between two lookups shows in no latency: the "max gap" column adds it back, as the longest time
 * between two completed lookups (in the baseline window; or overlapping the purge, counted from its start), i.e. the
 * longest a request arriving then would wait for the hit loop. Then the purged objects are rebuilt and re-inserted
 * (for a soft purge they replace the marked ones), so every round starts from the same N objects and N / 100 tagged.
 *
 * Scenarios (--reps rounds each, 5; percentiles are over the samples of all rounds, purge times per round):
 *  - hard, split CPUs: purge "hot" with soft = 0 (unlink and free), hits on CPU A, purger on CPU B;
 *  - soft, split CPUs: purge "warm" with soft = 1 (mark CR_OBJ_INVALIDATED), same CPUs;
 *  - hard and soft, same CPU: hit thread and purger both pinned to CPU A, the worst case on a 1-core pod (the
 *    scheduler time-slices them, so a lookup may wait for the purger's whole slice).
 * CPU A and CPU B are the first two CPUs of the process's affinity mask (0 and 1 on an unrestricted machine); with
 * only one CPU allowed the split scenarios are skipped.
 *
 * Invariants it checks (on a breach it says which on stderr and exits 1, before the table): the build leaves exactly
 * N objects and no evictions; each purge returns exactly N / 100; after a hard purge the store holds N - N / 100
 * objects and none carries the tag; after a soft purge it still holds N; after the rebuild it holds N again, N / 100
 * of them tagged, still with no evictions. Latencies include the two clock reads (about 19 ns each here, tsc
 * clocksource; the same in both windows). Percentiles are nearest-rank. A benchmark: it exits 0 whatever the figures.
 * Runs in about 13 s with a peak RSS of about 1 GiB (printed).
 */
#include "corral/http/invalidate.h"
#include "corral/cache/object.h"
#include "corral/cache/store.h"
#include "bench_common.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define AUTHORITY "127.0.0.1:8081\n/items/"
#define AUTHORITY_LEN (sizeof(AUTHORITY) - 1)
#define KEY_MAX (AUTHORITY_LEN + 10)
#define BODY_LEN 100
#define TAG_EVERY 100 /* one object in TAG_EVERY carries "hot", another one "warm" */
#define HOT_PHASE 0
#define WARM_PHASE 50
#define STORE_LIMIT ((size_t)2 << 30)
#define SAMPLE_CAP ((size_t)8 << 20) /* lookups recorded per round (96 MiB of arrays) */
#define WARMUP_NS 50000000ull

enum { OUT_FRESH = 0, OUT_STALE = 1, OUT_MISS = 2 };

/* Writes object i's key into buf (AUTHORITY already there) and returns its length. */
static inline size_t make_key(char *buf, uint32_t i)
{
    char digits[10];
    size_t n = 0, k;
    do {
        digits[n++] = (char)('0' + i % 10);
        i /= 10;
    } while (i != 0);
    for (k = 0; k != n; ++k)
        buf[AUTHORITY_LEN + k] = digits[n - 1 - k];
    buf[AUTHORITY_LEN + n] = '\0';
    return AUTHORITY_LEN + n;
}

/* Builds object i as flight.c would (path tag last, after the upstream's tags) and inserts it. Returns 0 or -1. */
static int put(cr_store_t *store, uint32_t i, uint64_t now_ms)
{
    char key[KEY_MAX + 1];
    size_t keylen, h, ntags = 0;
    cr_str_t tags[2];
    cr_object_t *obj;
    char *body;

    memcpy(key, AUTHORITY, AUTHORITY_LEN);
    keylen = make_key(key, i);
    if ((obj = cr_object_new(key, keylen, 200)) == NULL)
        return -1;
    for (h = 0; h != CR_ARRAY_SIZE(hdrs); ++h)
        if (cr_object_add_header(obj, hdrs[h].name, strlen(hdrs[h].name), hdrs[h].value, strlen(hdrs[h].value), 0) != CR_OK)
            goto Error;
    if (i % TAG_EVERY == HOT_PHASE)
        tags[ntags++] = CR_STR("hot");
    else if (i % TAG_EVERY == WARM_PHASE)
        tags[ntags++] = CR_STR("warm");
    obj->path_hash = cr_path_hash(cr_str(key, keylen)); /* the store's path index, as flight.c sets it */
    if (ntags != 0 && cr_object_set_tags(obj, tags, ntags) != CR_OK)
        goto Error;
    if ((body = malloc(BODY_LEN)) == NULL)
        goto Error;
    memset(body, 'x', BODY_LEN);
    cr_object_set_body(obj, CR_ENC_IDENTITY, body, BODY_LEN);
    obj->response_time_ms = now_ms;
    obj->lifetime_ms = 3600 * 1000;
    obj = cr_object_finish(obj);
    if (obj->num_tags != ntags || cr_store_insert(store, obj) != CR_OK)
        goto Error;
    cr_object_release(&obj);
    return 0;
Error:
    cr_object_release(&obj);
    return -1;
}

static int pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* One round's hit thread. */
typedef struct {
    cr_store_t *store;
    uint32_t nobj;
    int cpu;
    uint64_t seed;
    uint64_t *start; /* SAMPLE_CAP each */
    uint32_t *dur;
    uint8_t *out;
    size_t n;     /* samples recorded; read after join */
    int overflow; /* the arrays filled up */
    int pin_err;
    int ready; /* atomic: warm-up done, recording */
    int stop;  /* atomic: set by the main thread after the purge */
} hitter_t;

static void *hitter_main(void *arg)
{
    hitter_t *h = arg;
    char key[KEY_MAX + 1];
    uint64_t s = h->seed, warm_end, now_ms = cr_now_ms();
    size_t n = 0;
    int recording = 0;

    h->pin_err = pin_self(h->cpu);
    memcpy(key, AUTHORITY, AUTHORITY_LEN);
    warm_end = now_ns() + WARMUP_NS;
    while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
        uint32_t i = (uint32_t)(xorshift(&s) % h->nobj);
        size_t keylen = make_key(key, i);
        uint64_t hash = cr_hash(key, keylen), t0, t1;
        cr_object_t *obj;
        uint8_t outcome;

        t0 = now_ns();
        obj = cr_store_lookup(h->store, key, keylen, hash, NULL, NULL, NULL);
        if (obj != NULL) {
            outcome = cr_object_is_fresh(obj, now_ms) ? OUT_FRESH : OUT_STALE;
            cr_object_release(&obj);
        } else {
            outcome = OUT_MISS;
        }
        t1 = now_ns();

        if (!recording) {
            if (t1 >= warm_end) {
                recording = 1;
                __atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
            }
            continue;
        }
        if (n == SAMPLE_CAP) {
            h->overflow = 1;
            continue;
        }
        h->start[n] = t0;
        h->dur[n] = t1 - t0 > UINT32_MAX ? UINT32_MAX : (uint32_t)(t1 - t0);
        h->out[n] = outcome;
        ++n;
    }
    h->n = n;
    return NULL;
}

/* A growable array of latencies (ns). */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} lat_vec_t;

static int lat_push(lat_vec_t *l, uint32_t x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : (size_t)1 << 20;
        uint32_t *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    size_t n;
    uint32_t p50, p99, p999, max;
} lat_stats_t;

/* Nearest rank on a sorted vector: the smallest sample with at least permille / 1000 of the samples at or below it. */
static uint32_t rank_of(const lat_vec_t *l, size_t permille)
{
    size_t k = (l->n * permille + 999) / 1000;
    return l->v[k != 0 ? k - 1 : 0];
}

/* Sorts l and reads its percentiles. */
static lat_stats_t lat_stats(lat_vec_t *l)
{
    lat_stats_t st = {l->n, 0, 0, 0, 0};
    if (l->n == 0)
        return st;
    qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
    st.p50 = rank_of(l, 500);
    st.p99 = rank_of(l, 990);
    st.p999 = rank_of(l, 999);
    st.max = l->v[l->n - 1];
    return st;
}

#define MAX_REPS 50

typedef struct {
    const char *name;
    const char *tag;
    int soft;
    int hit_cpu, purge_cpu;
    size_t reps;
    double purge_ms[MAX_REPS];
    size_t purged[MAX_REPS];
    size_t during_lookups[MAX_REPS];
    uint64_t base_gap_ns[MAX_REPS];  /* longest time between two completed lookups inside the baseline window */
    uint64_t purge_gap_ns[MAX_REPS]; /* the same, for the gaps overlapping the purge (counted from t0 at most) */
    size_t during_fresh, during_stale, during_miss;
    lat_vec_t base, during;
    lat_stats_t base_st, during_st;
} scenario_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(const double *v, size_t n)
{
    double tmp[MAX_REPS];
    memcpy(tmp, v, n * sizeof(*v));
    qsort(tmp, n, sizeof(*tmp), cmp_double);
    return n % 2 != 0 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static uint64_t max_of(const uint64_t *v, size_t n)
{
    uint64_t m = 0;
    size_t i;
    for (i = 0; i != n; ++i)
        m = CR_MAX(m, v[i]);
    return m;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Re-inserts the objects of one tag class (phase) so the store is back to its initial N objects. */
static int rebuild(cr_store_t *store, uint32_t nobj, uint32_t phase)
{
    uint64_t now_ms = cr_now_ms();
    uint32_t i;
    for (i = phase; i < nobj; i += TAG_EVERY)
        if (put(store, i, now_ms) != 0)
            return -1;
    return 0;
}

static int run_round(cr_store_t *store, uint32_t nobj, size_t tagged, scenario_t *sc, size_t rep, uint64_t baseline_ns, hitter_t *h)
{
    pthread_t th;
    uint64_t tb, t0, t1, prev_end = 0, base_gap = 0, purge_gap = 0;
    size_t purged, i, during = 0, taglen = strlen(sc->tag);
    int err;

    if ((err = pin_self(sc->purge_cpu)) != 0) {
        fprintf(stderr, "bench_purge: pinning the purger to CPU %d: %s\n", sc->purge_cpu, strerror(err));
        return -1;
    }
    h->cpu = sc->hit_cpu;
    h->seed = 0x9e3779b97f4a7c15ull * (rep + 1) + (uint64_t)sc->soft;
    h->n = 0;
    h->overflow = h->pin_err = 0;
    h->ready = h->stop = 0;
    if ((err = pthread_create(&th, NULL, hitter_main, h)) != 0) {
        fprintf(stderr, "bench_purge: pthread_create: %s\n", strerror(err));
        return -1;
    }
    while (!__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE))
        sleep_ns(1000000);
    tb = now_ns();
    sleep_ns(baseline_ns);
    t0 = now_ns();
    purged = cr_store_purge_tag(store, sc->tag, taglen, sc->soft);
    t1 = now_ns();
    __atomic_store_n(&h->stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);

    if (h->pin_err != 0) {
        fprintf(stderr, "bench_purge: pinning the hit thread to CPU %d: %s\n", sc->hit_cpu, strerror(h->pin_err));
        return -1;
    }
    if (h->overflow) {
        fprintf(stderr, "bench_purge: more than %zu lookups in one round: lower --baseline-ms\n", SAMPLE_CAP);
        return -1;
    }
    for (i = 0; i != h->n; ++i) {
        uint64_t s = h->start[i], e = s + h->dur[i];
        /* gaps between consecutive completions: inside the baseline window, or overlapping the purge */
        if (prev_end >= tb && e < t0)
            base_gap = CR_MAX(base_gap, e - prev_end);
        else if (prev_end <= t1 && e >= t0)
            purge_gap = CR_MAX(purge_gap, e - (prev_end < t0 ? t0 : prev_end));
        prev_end = e;
        if (s >= tb && e < t0) {
            if (lat_push(&sc->base, h->dur[i]) != 0)
                return -1;
        } else if (s <= t1 && e >= t0) {
            if (lat_push(&sc->during, h->dur[i]) != 0)
                return -1;
            ++during;
            if (h->out[i] == OUT_FRESH)
                ++sc->during_fresh;
            else if (h->out[i] == OUT_STALE)
                ++sc->during_stale;
            else
                ++sc->during_miss;
        }
    }
    if (prev_end < t1) /* stopped between lookups: the wait from the last completion to the purge's end, at least */
        purge_gap = CR_MAX(purge_gap, t1 - (prev_end < t0 ? t0 : prev_end));
    sc->base_gap_ns[rep] = base_gap;
    sc->purge_gap_ns[rep] = purge_gap;
    sc->purge_ms[rep] = (double)(t1 - t0) / 1e6;
    sc->purged[rep] = purged;
    sc->during_lookups[rep] = during;

    /* the invariants, then back to the initial state */
    if (purged != tagged) {
        fprintf(stderr, "bench_purge: %s purge of \"%s\" returned %zu, expected %zu\n", sc->soft ? "soft" : "hard", sc->tag,
                purged, tagged);
        return -1;
    }
    if (cr_store_count(store) != (sc->soft ? nobj : nobj - tagged) ||
        (!sc->soft && cr_store_collect_tag(store, sc->tag, taglen, NULL, 0) != 0)) {
        fprintf(stderr, "bench_purge: after the %s purge the store holds %zu objects, %zu tagged \"%s\"\n",
                sc->soft ? "soft" : "hard", cr_store_count(store), cr_store_collect_tag(store, sc->tag, taglen, NULL, 0), sc->tag);
        return -1;
    }
    if (rebuild(store, nobj, strcmp(sc->tag, "hot") == 0 ? HOT_PHASE : WARM_PHASE) != 0 || cr_store_count(store) != nobj ||
        cr_store_collect_tag(store, sc->tag, taglen, NULL, 0) != tagged || cr_store_evictions(store) != 0) {
        fprintf(stderr, "bench_purge: rebuilding \"%s\" failed (%zu objects, %llu evictions)\n", sc->tag, cr_store_count(store),
                (unsigned long long)cr_store_evictions(store));
        return -1;
    }
    return 0;
}

static json_t *stats_json(const lat_stats_t *st)
{
    return json_pack("{sI sI sI sI sI}", "lookups", (json_int_t)st->n, "p50_ns", (json_int_t)st->p50, "p99_ns", (json_int_t)st->p99,
                     "p999_ns", (json_int_t)st->p999, "max_ns", (json_int_t)st->max);
}

static int write_json(const char *path, uint32_t nobj, size_t tagged, size_t bytes, size_t tag_entries, uint64_t build_ns,
                      long hwm_kib, uint64_t baseline_ns, scenario_t *scs, size_t nsc)
{
    json_t *root, *arr;
    size_t i, r;
    int ret;

    if ((arr = json_array()) == NULL)
        return -1;
    for (i = 0; i != nsc; ++i) {
        scenario_t *sc = &scs[i];
        json_t *each = json_array(), *purged = json_array(), *dl = json_array(), *gaps = json_array();
        size_t total_during = 0;
        double mn = sc->purge_ms[0], mx = sc->purge_ms[0];
        for (r = 0; r != sc->reps; ++r) {
            json_array_append_new(each, json_real(sc->purge_ms[r]));
            json_array_append_new(purged, json_integer((json_int_t)sc->purged[r]));
            json_array_append_new(dl, json_integer((json_int_t)sc->during_lookups[r]));
            json_array_append_new(gaps, json_integer((json_int_t)sc->purge_gap_ns[r]));
            total_during += sc->during_lookups[r];
            mn = CR_MIN(mn, sc->purge_ms[r]);
            mx = CR_MAX(mx, sc->purge_ms[r]);
        }
        json_array_append_new(
            arr, json_pack("{ss ss sb si si sI"         /* identity */
                           " s{sf sf sf so} so"         /* purge_ms, purged */
                           " s{sI sI sI sI so} so so"   /* during_purge, the two latency windows */
                           " s{sI sI so}}",             /* max_gap_ns */
                           "name", sc->name, "tag", sc->tag, "soft", sc->soft, "hit_cpu", sc->hit_cpu, "purge_cpu",
                           sc->purge_cpu, "reps", (json_int_t)sc->reps,
                           "purge_ms", "median", median_of(sc->purge_ms, sc->reps), "min", mn, "max", mx, "each", each,
                           "purged", purged,
                           "during_purge", "lookups", (json_int_t)total_during, "fresh_hits", (json_int_t)sc->during_fresh,
                           "stale_hits", (json_int_t)sc->during_stale, "misses", (json_int_t)sc->during_miss, "lookups_each", dl,
                           "latency_baseline", stats_json(&sc->base_st), "latency_during_purge", stats_json(&sc->during_st),
                           "max_gap_ns", "baseline", (json_int_t)max_of(sc->base_gap_ns, sc->reps), "during_purge",
                           (json_int_t)max_of(sc->purge_gap_ns, sc->reps), "during_purge_each", gaps));
    }
    root = json_pack("{ss sI sI sI sI sf sI sI so}", "bench", "purge", "objects", (json_int_t)nobj, "tagged", (json_int_t)tagged,
                     "bytes", (json_int_t)bytes, "tag_entries", (json_int_t)tag_entries, "build_s", (double)build_ns / 1e9,
                     "peak_rss_kib", (json_int_t)hwm_kib, "baseline_ms_per_round", (json_int_t)(baseline_ns / 1000000u),
                     "scenarios", arr);
    if (root == NULL)
        return -1;
    ret = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) == 0 ? 0 : -1;
    json_decref(root);
    return ret;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_purge [--json FILE] [--objects N] [--reps N (1..%d)] [--baseline-ms MS]\n", MAX_REPS);
}

int main(int argc, char **argv)
{
    const char *json_path = NULL;
    uint32_t nobj = 1000000, i;
    size_t reps = 5, tagged, nsc = 0, s, r, bytes, tag_entries;
    uint64_t baseline_ns = 400000000ull, t, build_ns, now_ms;
    int cpus[2], ncpus = 0, c, argi;
    scenario_t scs[4];
    cr_store_t *store;
    hitter_t h;
    cpu_set_t allowed;
    long hwm;

    for (argi = 1; argi < argc; ++argi) {
        if (strcmp(argv[argi], "--json") == 0 && argi + 1 < argc) {
            json_path = argv[++argi];
        } else if (strcmp(argv[argi], "--objects") == 0 && argi + 1 < argc) {
            long v = strtol(argv[++argi], NULL, 10);
            if (v < TAG_EVERY || v > 100000000) {
                usage();
                return 1;
            }
            nobj = (uint32_t)v;
        } else if (strcmp(argv[argi], "--reps") == 0 && argi + 1 < argc) {
            long v = strtol(argv[++argi], NULL, 10);
            if (v < 1 || v > MAX_REPS) {
                usage();
                return 1;
            }
            reps = (size_t)v;
        } else if (strcmp(argv[argi], "--baseline-ms") == 0 && argi + 1 < argc) {
            long v = strtol(argv[++argi], NULL, 10);
            if (v < 10 || v > 10000) {
                usage();
                return 1;
            }
            baseline_ns = (uint64_t)v * 1000000u;
        } else {
            usage();
            return 1;
        }
    }
    if (nobj % TAG_EVERY != 0) {
        fprintf(stderr, "bench_purge: --objects must be a multiple of %d\n", TAG_EVERY);
        return 1;
    }
    tagged = nobj / TAG_EVERY;

    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        perror("bench_purge: sched_getaffinity");
        return 1;
    }
    for (c = 0; c < CPU_SETSIZE && ncpus != 2; ++c)
        if (CPU_ISSET(c, &allowed))
            cpus[ncpus++] = c;

    /* the cache */
    memset(&h, 0, sizeof(h));
    if ((store = cr_store_new(STORE_LIMIT)) == NULL || (h.start = malloc(SAMPLE_CAP * sizeof(*h.start))) == NULL ||
        (h.dur = malloc(SAMPLE_CAP * sizeof(*h.dur))) == NULL || (h.out = malloc(SAMPLE_CAP)) == NULL) {
        fprintf(stderr, "bench_purge: out of memory\n");
        return 1;
    }
    /* touch the sample arrays now, so page faults land neither in the baseline nor in the purge window */
    memset(h.start, 0, SAMPLE_CAP * sizeof(*h.start));
    memset(h.dur, 0, SAMPLE_CAP * sizeof(*h.dur));
    memset(h.out, 0, SAMPLE_CAP);
    h.store = store;
    h.nobj = nobj;
    if (pin_self(cpus[ncpus - 1]) != 0)
        fprintf(stderr, "bench_purge: could not pin the builder (continuing)\n");
    t = now_ns();
    now_ms = cr_now_ms();
    for (i = 0; i != nobj; ++i) {
        if (put(store, i, now_ms) != 0) {
            fprintf(stderr, "bench_purge: insert %u failed\n", i);
            return 1;
        }
    }
    build_ns = now_ns() - t;
    bytes = cr_store_bytes(store);
    tag_entries = cr_store_tag_entries(store);
    if (cr_store_count(store) != nobj || cr_store_evictions(store) != 0 ||
        cr_store_collect_tag(store, "hot", 3, NULL, 0) != tagged || cr_store_collect_tag(store, "warm", 4, NULL, 0) != tagged) {
        fprintf(stderr, "bench_purge: the store holds %zu objects (%llu evicted), expected %u\n", cr_store_count(store),
                (unsigned long long)cr_store_evictions(store), nobj);
        return 1;
    }

    printf("bench_purge: corral L1 store, %u objects (key \"127.0.0.1:8081\\n/items/<i>\", %zu headers, %d-byte body, "
           "indexed by path),\n%zu tagged \"hot\" and %zu tagged \"warm\"; %zu bytes charged, %zu tag index entries; built in %.2f s\n",
           nobj, CR_ARRAY_SIZE(hdrs), BODY_LEN, tagged, tagged, bytes, tag_entries,
           (double)build_ns / 1e9);
    printf("%zu rounds per scenario, %llu ms of baseline per round; CPUs used: %d", reps, (unsigned long long)(baseline_ns / 1000000u),
           cpus[0]);
    if (ncpus == 2)
        printf(" and %d\n", cpus[1]);
    else
        printf(" only (one CPU allowed: the split scenarios are skipped)\n");
    fflush(stdout);

    memset(scs, 0, sizeof(scs));
    if (ncpus == 2) {
        scs[nsc++] = (scenario_t){.name = "hard, split CPUs", .tag = "hot", .soft = 0, .hit_cpu = cpus[0], .purge_cpu = cpus[1]};
        scs[nsc++] = (scenario_t){.name = "soft, split CPUs", .tag = "warm", .soft = 1, .hit_cpu = cpus[0], .purge_cpu = cpus[1]};
    }
    scs[nsc++] = (scenario_t){.name = "hard, same CPU", .tag = "hot", .soft = 0, .hit_cpu = cpus[0], .purge_cpu = cpus[0]};
    scs[nsc++] = (scenario_t){.name = "soft, same CPU", .tag = "warm", .soft = 1, .hit_cpu = cpus[0], .purge_cpu = cpus[0]};

    for (s = 0; s != nsc; ++s) {
        scs[s].reps = reps;
        for (r = 0; r != reps; ++r)
            if (run_round(store, nobj, tagged, &scs[s], r, baseline_ns, &h) != 0)
                return 1;
        scs[s].base_st = lat_stats(&scs[s].base);
        scs[s].during_st = lat_stats(&scs[s].during);
    }
    hwm = status_kib("VmHWM");

    printf("\n%-17s %4s %4s | %-27s %7s | %-8s %9s %8s %8s %9s %10s %10s\n", "scenario", "hit", "purg", "purge ms: median (min..max)",
           "purged", "window", "lookups", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "max gap ns");
    for (s = 0; s != nsc; ++s) {
        scenario_t *sc = &scs[s];
        double mn = sc->purge_ms[0], mx = sc->purge_ms[0];
        char pm[64];
        for (r = 1; r != sc->reps; ++r) {
            mn = CR_MIN(mn, sc->purge_ms[r]);
            mx = CR_MAX(mx, sc->purge_ms[r]);
        }
        snprintf(pm, sizeof(pm), "%.2f (%.2f..%.2f)", median_of(sc->purge_ms, sc->reps), mn, mx);
        printf("%-17s %4d %4d | %-27s %7zu | %-8s %9zu %8u %8u %9u %10u %10llu\n", sc->name, sc->hit_cpu, sc->purge_cpu, pm,
               sc->purged[0], "baseline", sc->base_st.n, sc->base_st.p50, sc->base_st.p99, sc->base_st.p999, sc->base_st.max,
               (unsigned long long)max_of(sc->base_gap_ns, sc->reps));
        printf("%-17s %4s %4s | %-27s %7s | %-8s %9zu %8u %8u %9u %10u %10llu\n", "", "", "", "", "", "purge", sc->during_st.n,
               sc->during_st.p50, sc->during_st.p99, sc->during_st.p999, sc->during_st.max,
               (unsigned long long)max_of(sc->purge_gap_ns, sc->reps));
    }
    printf("\nper round (purge ms / lookups overlapping it):\n");
    for (s = 0; s != nsc; ++s) {
        scenario_t *sc = &scs[s];
        printf("  %-17s", sc->name);
        for (r = 0; r != sc->reps; ++r)
            printf(" %7.2f/%-6zu", sc->purge_ms[r], sc->during_lookups[r]);
        printf("   (during: %zu fresh, %zu stale, %zu missed)\n", sc->during_fresh, sc->during_stale, sc->during_miss);
    }
    printf("(max gap: the longest time between two completed lookups, inside the baseline window or overlapping the purge,\n"
           " counted from the purge's start: what a request arriving then would wait for the hit loop, descheduled or not)\n");
    printf("\npeak RSS %.1f MiB\n", hwm / 1024.0);

    if (json_path != NULL) {
        if (write_json(json_path, nobj, tagged, bytes, tag_entries, build_ns, hwm, baseline_ns, scs,
                       nsc) != 0) {
            fprintf(stderr, "bench_purge: could not write %s\n", json_path);
            return 1;
        }
        printf("wrote %s\n", json_path);
    }

    for (s = 0; s != nsc; ++s) {
        free(scs[s].base.v);
        free(scs[s].during.v);
    }
    free(h.start);
    free(h.dur);
    free(h.out);
    cr_store_free(&store);
    return 0;
}
