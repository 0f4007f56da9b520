/*
 * bench_store.c: `make bench-store`, the L1 store's lookup-cost curve and memory figures (issue 6), measured on the
 * real store and object code (linked against build/libcorral.a).
 *
 *   build/bench_store [--quick]
 *
 * 1. Lookup cost. Stores of 1,000 / 10,000 / 100,000 / 1,000,000 small objects (a realistic API key, four headers,
 *    a 100-byte body). Single thread, keys drawn at random (xorshift) among the stored ones. Each lookup builds its key
 *    into a hot buffer and hashes it (as the handler does per request), looks it up and releases the reference. The
 *    same loop without the lookup is timed too, and subtracted: the net figure is the store's own cost. Best of 5 runs.
 * 2. Per-object overhead: what the store charges (cr_store_bytes) minus the key, header names and values, and body
 *    bytes, per object; and the same from the heap's point of view (mallinfo2 in-use bytes, which include malloc's own
 *    chunk headers and rounding).
 * 3. RSS under churn: 1,000,000 distinct keys (bodies 64..4096 bytes, uniformly random) inserted into a store bounded at
 *    64 MiB, in a forked child so nothing else lives in its heap. VmRSS (and the peak, VmHWM) from /proc/self/status.
 *
 * Prints the ratio checks: lookup cost flat within 1.2x from 1,000 to 1,000,000 objects; per-object overhead
 * at most 200 bytes; RSS <= memory * 1.1 + 32 MiB. A benchmark: it exits 0 whatever the figures (1 on a setup error).
 */
#include "corral/cache/object.h"
#include "corral/core/hugepages.h"
#include "corral/cache/pin.h"
#include "corral/cache/store.h"
#include "bench_common.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY_PREFIX "api.example.com/v1/items/"
#define KEY_PREFIX_LEN (sizeof(KEY_PREFIX) - 1)
#define KEY_SUFFIX "?limit=20&page=1"
#define KEY_SUFFIX_LEN (sizeof(KEY_SUFFIX) - 1)
#define KEY_MAX (KEY_PREFIX_LEN + 8 + KEY_SUFFIX_LEN)
#define SMALL_BODY 100

/* Writes the key of object i (fixed width, so every key has the same length and cost) into buf. */
static inline size_t make_key(char *buf, uint32_t i)
{
    static const char hex[] = "0123456789abcdef";
    int d;
    /* prefix and suffix are already in buf (set once by the caller) */
    for (d = 7; d >= 0; --d, i >>= 4)
        buf[KEY_PREFIX_LEN + d] = hex[i & 15];
    return KEY_MAX;
}

static void key_template(char *buf)
{
    memcpy(buf, KEY_PREFIX, KEY_PREFIX_LEN);
    memcpy(buf + KEY_PREFIX_LEN + 8, KEY_SUFFIX, KEY_SUFFIX_LEN);
    buf[KEY_MAX] = '\0';
}

static size_t payload_of(size_t keylen, size_t bodylen)
{
    size_t n = keylen + bodylen, i;
    for (i = 0; i != CR_ARRAY_SIZE(hdrs); ++i)
        n += strlen(hdrs[i].name) + strlen(hdrs[i].value);
    return n;
}

/* Builds, inserts and releases one object. Returns 0 or -1. */
static int put(cr_store_t *store, const char *key, size_t keylen, size_t bodylen)
{
    cr_object_t *obj;
    char *body;
    size_t i;

    if ((obj = cr_object_new(key, keylen, 200)) == NULL)
        return -1;
    for (i = 0; i != CR_ARRAY_SIZE(hdrs); ++i)
        if (cr_object_add_header(obj, hdrs[i].name, strlen(hdrs[i].name), hdrs[i].value, strlen(hdrs[i].value), 0) != CR_OK)
            goto Error;
    if ((body = malloc(bodylen)) == NULL)
        goto Error;
    memset(body, 'x', bodylen);
    cr_object_set_body(obj, CR_ENC_IDENTITY, body, bodylen);
    obj->lifetime_ms = 3600 * 1000;
    obj = cr_object_finish(obj);
    if (cr_store_insert(store, obj) != CR_OK)
        goto Error;
    cr_object_release(&obj);
    return 0;
Error:
    cr_object_release(&obj);
    return -1;
}

/* Times `iters` random draws among n objects (stride > 1: only among the 1,000 keys 0, stride, 2*stride, ..., spread
 * over the whole heap; stride == 0: only among the first 1,000 keys, which were inserted first and so sit in the same
 * memory whatever n is, so that only the index around them grows with n); with
 * do_lookup 0 only the key build and hash run. ns per iteration. */
static double time_loop(cr_store_t *store, uint32_t n, uint32_t stride, size_t iters, int do_lookup, uint64_t seed, size_t *found)
{
    char key[KEY_MAX + 1];
    uint64_t s = seed, t0, acc = 0;
    size_t i, hits = 0;

    key_template(key);
    t0 = now_ns();
    for (i = 0; i != iters; ++i) {
        uint32_t idx = stride > 1    ? (uint32_t)(xorshift(&s) % 1000) * stride
                       : stride == 0 ? (uint32_t)(xorshift(&s) % CR_MIN(n, 1000))
                                     : (uint32_t)(xorshift(&s) % n);
        size_t keylen = make_key(key, idx);
        uint64_t hash = cr_hash(key, keylen);
        if (do_lookup) { /* 2: as corral's hit path, a pin of this thread (pin.h); 1: a plain reference */
            cr_object_t *obj = do_lookup == 2 ? cr_store_lookup_pinned(store, key, keylen, hash, NULL, NULL, NULL)
                                              : cr_store_lookup(store, key, keylen, hash, NULL, NULL, NULL);
            hits += obj != NULL;
            if (do_lookup == 2)
                cr_pin_release(&obj);
            else
                cr_object_release(&obj);
        } else {
            acc += hash; /* keep the hash live */
            __asm__ volatile("" : : "r"(acc) : "memory");
        }
    }
    t0 = now_ns() - t0;
    if (found != NULL)
        *found = hits;
    return (double)t0 / (double)iters;
}

typedef struct {
    uint32_t n;
    double gross_ns, base_ns, net_ns, hot_ns, first_ns;
    double charged_overhead, heap_overhead, payload;
} lookup_result_t;

static int bench_lookup(uint32_t n, size_t iters, lookup_result_t *r)
{
    char key[KEY_MAX + 1];
    struct mallinfo2 m0, m1;
    cr_store_t *store;
    uint32_t i;
    size_t found = 0;
    int run;

    memset(r, 0, sizeof(*r));
    r->n = n;
    m0 = mallinfo2();
    if ((store = cr_store_new((size_t)16 << 30)) == NULL)
        return -1;
    key_template(key);
    for (i = 0; i != n; ++i) {
        size_t keylen = make_key(key, i);
        if (put(store, key, keylen, SMALL_BODY) != 0) {
            fprintf(stderr, "bench_store: insert %u failed\n", i);
            cr_store_free(&store);
            return -1;
        }
    }
    m1 = mallinfo2();
    if (cr_store_count(store) != n) {
        fprintf(stderr, "bench_store: store holds %zu objects, expected %u (evicted %llu)\n", cr_store_count(store), n,
                (unsigned long long)cr_store_evictions(store));
        cr_store_free(&store);
        return -1;
    }
    r->payload = (double)payload_of(KEY_MAX, SMALL_BODY);
    r->charged_overhead = (double)cr_store_bytes(store) / n - r->payload;
    r->heap_overhead = (double)(m1.uordblks - m0.uordblks) / n - r->payload;

    r->gross_ns = r->base_ns = r->hot_ns = r->first_ns = 1e18;
    for (run = 0; run != 5; ++run) {
        double g, b, h;
        size_t hot_found = 0, first_found = 0;
        double f;
        time_loop(store, n, 1, iters / 10, 1, 0x9e3779b97f4a7c15ull + run, NULL); /* warm up */
        g = time_loop(store, n, 1, iters, 1, 0x2545f4914f6cdd1dull + run, &found);
        b = time_loop(store, n, 1, iters, 0, 0x2545f4914f6cdd1dull + run, NULL);
        h = time_loop(store, n, n / 1000, iters, 1, 0x2545f4914f6cdd1dull + run, &hot_found);
        f = time_loop(store, n, 0, iters, 1, 0x2545f4914f6cdd1dull + run, &first_found);
        if (found != iters || hot_found != iters || first_found != iters) {
            fprintf(stderr, "bench_store: %zu, %zu and %zu of %zu lookups found their object\n", found, hot_found, first_found,
                    iters);
            cr_store_free(&store);
            return -1;
        }
        if (g < r->gross_ns)
            r->gross_ns = g;
        if (b < r->base_ns)
            r->base_ns = b;
        if (h < r->hot_ns)
            r->hot_ns = h;
        if (f < r->first_ns)
            r->first_ns = f;
    }
    r->net_ns = r->gross_ns - r->base_ns;
    cr_store_free(&store);
    malloc_trim(0);
    return 0;
}

/* Thread scaling: T threads look up keys of one store at once (no lock is shared: see store.c); aggregate rate. */
typedef struct {
    cr_store_t *store;
    uint32_t n, stride;
    size_t iters, found;
    uint64_t seed;
    int mode; /* time_loop's do_lookup: 1 plain references, 2 pins */
} scale_arg_t;

static void *scale_thread(void *p)
{
    scale_arg_t *a = p;
    time_loop(a->store, a->n, a->stride, a->iters, a->mode, a->seed, &a->found);
    cr_pin_drop_all();
    return NULL;
}

/* Million lookups per second with `threads` threads, each doing `iters` lookups drawn as time_loop draws them (n = 1:
 * every thread looks up key 0 only, the worst case for that object's refcount line). */
static double scale_run(cr_store_t *store, uint32_t n, uint32_t stride, unsigned threads, size_t iters, int mode)
{
    pthread_t th[8];
    scale_arg_t args[8];
    uint64_t t0;
    unsigned i;

    t0 = now_ns();
    for (i = 0; i != threads; ++i) {
        args[i] = (scale_arg_t){store, n, stride, iters, 0, 0x51ed2701u * (i + 1), mode};
        if (pthread_create(&th[i], NULL, scale_thread, &args[i]) != 0)
            return 0;
    }
    for (i = 0; i != threads; ++i)
        pthread_join(th[i], NULL);
    t0 = now_ns() - t0;
    for (i = 0; i != threads; ++i)
        if (args[i].found != iters)
            return 0;
    return (double)iters * threads / ((double)t0 / 1e9) / 1e6;
}

typedef struct {
    double hot1, hot2, same1, same2, pin1, pin2;
} scale_result_t;

static int bench_scaling(uint32_t n, size_t iters, scale_result_t *r)
{
    char key[KEY_MAX + 1];
    cr_store_t *store;
    uint32_t i;
    int run;

    if ((store = cr_store_new((size_t)16 << 30)) == NULL)
        return -1;
    key_template(key);
    for (i = 0; i != n; ++i)
        if (put(store, key, make_key(key, i), SMALL_BODY) != 0) {
            cr_store_free(&store);
            return -1;
        }
    memset(r, 0, sizeof(*r));
    for (run = 0; run != 3; ++run) { /* best of 3 each */
        r->hot1 = CR_MAX(r->hot1, scale_run(store, n, n / 1000, 1, iters, 2));
        r->hot2 = CR_MAX(r->hot2, scale_run(store, n, n / 1000, 2, iters, 2));
        r->same1 = CR_MAX(r->same1, scale_run(store, 1, 1, 1, iters, 1)); /* n = 1: key 0 every time */
        r->same2 = CR_MAX(r->same2, scale_run(store, 1, 1, 2, iters, 1));
        r->pin1 = CR_MAX(r->pin1, scale_run(store, 1, 1, 1, iters, 2));
        r->pin2 = CR_MAX(r->pin2, scale_run(store, 1, 1, 2, iters, 2));
    }
    cr_store_free(&store);
    return r->hot1 > 0 && r->hot2 > 0 && r->same1 > 0 && r->same2 > 0 && r->pin1 > 0 && r->pin2 > 0 ? 0 : -1;
}

/* Where the charged overhead comes from: a finished object shaped like the benchmark's, taken apart by the sizes of
 * the parts of its block (object.h / object.c: struct, body table, key NUL, header index, NULs, alignment). */
static void overhead_breakdown(void)
{
    char key[KEY_MAX + 1], *body;
    size_t nh = CR_ARRAY_SIZE(hdrs), ovh, parts, bodies = 0, st = sizeof(((cr_object_t *)0)->st) + 2, i;
    cr_object_t *obj;
    int e;

    key_template(key);
    if ((obj = cr_object_new(key, make_key(key, 0), 200)) == NULL)
        return;
    for (i = 0; i != nh; ++i)
        if (cr_object_add_header(obj, hdrs[i].name, strlen(hdrs[i].name), hdrs[i].value, strlen(hdrs[i].value), 0) != CR_OK)
            goto Exit;
    if ((body = malloc(SMALL_BODY)) == NULL)
        goto Exit;
    memset(body, 'x', SMALL_BODY);
    cr_object_set_body(obj, CR_ENC_IDENTITY, body, SMALL_BODY);
    obj = cr_object_finish(obj);
    for (e = 0; e != CR_ENC_MAX; ++e)
        bodies += cr_object_body(obj, (cr_encoding_t)e).base != NULL;
    ovh = obj->cost - payload_of(KEY_MAX, SMALL_BODY);
    parts = sizeof(cr_object_t) + bodies * sizeof(cr_str_t) + 1 + nh * (sizeof(cr_object_hdr_t) + 2);
    printf("   charged overhead = %zu B object struct (%zu B of it the store's links and bits) + %zu B body table (%zu body)\n"
           "                    + %zu B key NUL + %zu x (%zu B header index entry + 2 NULs) + %zu B alignment\n"
           "   = %zu B object (%s layout) with %zu headers, + the store's index (its tables' growth, charged as it happens)\n",
           sizeof(cr_object_t), st, bodies * sizeof(cr_str_t), bodies, (size_t)1, nh, sizeof(cr_object_hdr_t),
           ovh > parts ? ovh - parts : 0, ovh, cr_object_is_packed(obj) ? "packed" : "loose", nh);
Exit:
    cr_object_release(&obj);
}

typedef struct {
    size_t keys, count, bytes, limit;
    uint64_t evictions;
    long rss_kib, hwm_kib, base_rss_kib;
    double seconds;
} churn_result_t;

static int churn(size_t keys, size_t limit, churn_result_t *r)
{
    char key[KEY_MAX + 1];
    cr_store_t *store;
    uint64_t s = 0x853c49e6748fea9bull, t0;
    size_t i;

    memset(r, 0, sizeof(*r));
    r->keys = keys;
    r->limit = limit;
    r->base_rss_kib = status_kib("VmRSS");
    if ((store = cr_store_new(limit)) == NULL)
        return -1;
    key_template(key);
    t0 = now_ns();
    for (i = 0; i != keys; ++i) {
        size_t keylen = make_key(key, (uint32_t)i);
        size_t bodylen = 64 + (size_t)(xorshift(&s) % (4096 - 64 + 1));
        if (put(store, key, keylen, bodylen) != 0) {
            fprintf(stderr, "bench_store: churn insert %zu failed\n", i);
            return -1;
        }
    }
    r->seconds = (double)(now_ns() - t0) / 1e9;
    r->count = cr_store_count(store);
    r->bytes = cr_store_bytes(store);
    r->evictions = cr_store_evictions(store);
    r->rss_kib = status_kib("VmRSS");
    r->hwm_kib = status_kib("VmHWM");
    cr_store_free(&store);
    return 0;
}

/* Runs churn() in a child (a clean heap, its own VmHWM) and reads its result back through a pipe. */
static int churn_in_child(size_t keys, size_t limit, churn_result_t *r)
{
    int fds[2], status;
    pid_t pid;
    ssize_t got;

    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    if ((pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        churn_result_t cr;
        int rc = churn(keys, limit, &cr);
        close(fds[0]);
        if (rc == 0 && write(fds[1], &cr, sizeof(cr)) != (ssize_t)sizeof(cr))
            rc = -1;
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    got = read(fds[0], r, sizeof(*r));
    close(fds[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof(*r))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static const uint32_t sizes[] = {1000, 10000, 100000, 1000000};
    lookup_result_t res[CR_ARRAY_SIZE(sizes)];
    churn_result_t ch;
    scale_result_t sc;
    size_t iters = 2000000, churn_keys = 1000000, limit = (size_t)64 << 20, i;
    double lo = 1e18, hi = 0, first_lo = 1e18, first_hi = 0, max_overhead = 0, rss_bound;
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    char model[256] = "?";
    FILE *f;

    cr_hugepages_reexec(argv); /* the heap as corral runs it */
    if (quick)
        iters = 500000;
    if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
        char line[512];
        while (fgets(line, sizeof(line), f) != NULL) {
            char *colon;
            if (strncmp(line, "model name", 10) == 0 && (colon = strchr(line, ':')) != NULL) {
                snprintf(model, sizeof(model), "%s", colon + 2);
                model[strcspn(model, "\n")] = '\0';
                break;
            }
        }
        fclose(f);
    }
    printf("bench_store: corral L1 store, single thread, %ld CPUs online, %s\n", sysconf(_SC_NPROCESSORS_ONLN), model);
    printf("heap: %s\n", getenv("GLIBC_TUNABLES") != NULL && strstr(getenv("GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1") != NULL
                              ? "transparent huge pages (glibc.malloc.hugetlb=1, as corral runs)"
                              : "small pages (transparent huge pages unavailable or CORRAL_HUGEPAGES=0)");
    printf("objects: key %zu B, %zu headers, body %d B: payload %zu B (key + header names and values + body)\n\n",
           (size_t)KEY_MAX, CR_ARRAY_SIZE(hdrs), SMALL_BODY, payload_of(KEY_MAX, SMALL_BODY));

    /* the churn first, in a child: the parent's heap is still small */
    if (churn_in_child(churn_keys, limit, &ch) != 0) {
        fprintf(stderr, "bench_store: the churn run failed\n");
        return 1;
    }

    printf("1. lookup cost (%zu lookups per run, best of 5). \"lookup\": random keys among all the stored ones;\n"
           "   \"key+hash\": the same loop without the lookup (building the key and hashing it, as the handler does);\n"
           "   \"hot-1k spread\": only 1,000 keys, spread over the whole heap (every n/1000-th inserted);\n"
           "   \"hot-1k index\": only the first 1,000 keys inserted: the same objects in the same memory at every n, so\n"
           "   what changes with n is the index around them alone\n", iters);
    printf("%10s %10s %10s %8s %14s %13s %18s %16s\n", "objects", "lookup ns", "key+hash", "net ns", "hot-1k spread",
           "hot-1k index", "charged ovh B/obj", "heap ovh B/obj");
    for (i = 0; i != CR_ARRAY_SIZE(sizes); ++i) {
        if (bench_lookup(sizes[i], iters, &res[i]) != 0) {
            fprintf(stderr, "bench_store: lookup run for %u objects failed\n", sizes[i]);
            return 1;
        }
        printf("%10u %10.1f %10.1f %8.1f %14.1f %13.1f %18.1f %16.1f\n", res[i].n, res[i].gross_ns, res[i].base_ns,
               res[i].net_ns, res[i].hot_ns, res[i].first_ns, res[i].charged_overhead, res[i].heap_overhead);
        fflush(stdout);
        if (res[i].gross_ns < lo)
            lo = res[i].gross_ns;
        if (res[i].gross_ns > hi)
            hi = res[i].gross_ns;
        first_lo = CR_MIN(first_lo, res[i].first_ns);
        first_hi = CR_MAX(first_hi, res[i].first_ns);
        if (res[i].charged_overhead > max_overhead)
            max_overhead = res[i].charged_overhead;
    }

    overhead_breakdown();

    printf("\n2. churn: %zu distinct keys (bodies 64..4096 B) into cache.memory = %zu MiB, in a child process\n", ch.keys,
           ch.limit >> 20);
    printf("   %.2f s, %.0f inserts/s; at the end %zu objects, %zu bytes charged, %llu evictions\n", ch.seconds,
           ch.keys / ch.seconds, ch.count, ch.bytes, (unsigned long long)ch.evictions);
    printf("   VmRSS %.1f MiB at the end (peak VmHWM %.1f MiB; %.1f MiB before the first insert)\n", ch.rss_kib / 1024.0,
           ch.hwm_kib / 1024.0, ch.base_rss_kib / 1024.0);

    if (bench_scaling(100000, iters, &sc) != 0) {
        fprintf(stderr, "bench_store: the thread scaling run failed\n");
        return 1;
    }
    printf("\n3. thread scaling: lookups of 1 and 2 threads at once on one store of 100000 objects (best of 3), "
           "Mlookups/s in all\n");
    printf("   1,000 hot keys, pinned (as corral's hits): 1 thread %.2f, 2 threads %.2f (%.2fx)\n", sc.hot1, sc.hot2,
           sc.hot2 / sc.hot1);
    printf("   one key only, pinned (as corral's hits):   1 thread %.2f, 2 threads %.2f (%.2fx)\n", sc.pin1, sc.pin2,
           sc.pin2 / sc.pin1);
    printf("   one key only, plain references:            1 thread %.2f, 2 threads %.2f (%.2fx; both threads write the "
           "object's refcount)\n", sc.same1, sc.same2, sc.same2 / sc.same1);

    rss_bound = ch.limit * 1.1 / 1048576.0 + 32;
    printf("\nchecks (issue 6):\n");
    printf("  lookup cost flat within 1.2x from 1,000 to 1,000,000 objects, the index's own cost (hot-1k index): 1M/1k = "
           "%.2fx, max/min = %.2fx -> %s\n",
           res[3].first_ns / res[0].first_ns, first_hi / first_lo, first_hi / first_lo <= 1.2 ? "PASS" : "FAIL");
    printf("    (memory, not the index: 1,000 keys spread over the heap 1M/1k = %.2fx; random keys among all of them "
           "%.2fx: a\n     million objects are %.0f MiB, so a random one is a DRAM access; net of key+hash %.2fx)\n",
           res[3].hot_ns / res[0].hot_ns, hi / lo, res[3].n * (res[3].charged_overhead + res[3].payload) / 1048576.0,
           res[3].net_ns / res[0].net_ns);
    printf("  per-object overhead <= 200 B (charged by the store): max %.1f B -> %s   (heap-measured at 1M: %.1f B)\n",
           max_overhead, max_overhead <= 200 ? "PASS" : "FAIL", res[3].heap_overhead);
    printf("  RSS <= memory * 1.1 + 32 MiB = %.1f MiB: VmRSS %.1f MiB -> %s   (peak VmHWM %.1f MiB -> %s)\n", rss_bound,
           ch.rss_kib / 1024.0, ch.rss_kib / 1024.0 <= rss_bound ? "PASS" : "FAIL", ch.hwm_kib / 1024.0,
           ch.hwm_kib / 1024.0 <= rss_bound ? "PASS" : "FAIL");
    return 0;
}
