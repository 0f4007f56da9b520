/*
 * test_tier_faults.c: end-to-end tests of the shared memcached tier when things go wrong, suite "tier_faults": a
 * server stopped mid-load (then restarted empty) and the server holding the invalidation log frozen (SIGSTOP, then
 * thawed) cost clients nothing, keep L1 hits while they are away, and open then close their breaker; after the log's
 * outage corral drops its L1 once ("invalidation log gap"); corrupt, truncated, foreign, other-version and other-key
 * values planted in L2 are misses; a lease holder killed mid-fill is taken over by another corral after the lease
 * ttl.
 *
 * Setup as in test_tier.c (tier_util.h): one upstream and three memcached servers for the suite, corrals per test,
 * servers flushed and upstream counts reset at the start of each test, Host: tier.test on every request. Values are
 * read and planted with the text-protocol client; the value layout checked here is README's "Value format 1".
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tier_util.h"

static tier_env_t env;

static int suite_init(void)
{
    return tier_env_start(&env, 3);
}

static int suite_cleanup(void)
{
    tier_env_stop(&env);
    return 0;
}

static void stop_clean(cr_proc_t *c)
{
    if (c->pid > 0)
        CU_ASSERT_EQUAL(harness_stop(c), 0);
}

/* How many times needle occurs in c's log so far. */
static int log_count(const cr_proc_t *c, const char *needle)
{
    char *text = harness_read_file(c->log_path), *at;
    int n = 0;
    for (at = text; at != NULL && (at = strstr(at, needle)) != NULL; at += strlen(needle))
        ++n;
    free(text);
    return n;
}

/* ---- dead and frozen servers ---- */

typedef struct {
    int requests, errors, l1_hits;
    double worst_ms;
} load_t;

/* One round of load through c: the 30 warm keys (L1 hits) and 5 new ones (misses, so L2 is asked). */
static void load_round(const cr_proc_t *c, int *next_new, load_t *l)
{
    char path[64];
    tier_resp_t r;
    int i;
    for (i = 0; i != 35; ++i) {
        tier_class_t cls;
        if (i < 30)
            snprintf(path, sizeof(path), "/t5/warm/%d", i);
        else
            snprintf(path, sizeof(path), "/t5/new/%d", (*next_new)++);
        cls = tier_get(c, path, &r);
        ++l->requests;
        l->errors += cls == TIER_ERR || r.status != 200;
        l->l1_hits += i < 30 && cls == TIER_L1_HIT;
        l->worst_ms = r.ms > l->worst_ms ? r.ms : l->worst_ms;
    }
}

/* Loads c until its log holds more than `base` lines with needle and the open-servers gauge reads gauge, or
 * timeout_ms. Returns the ms it took, or -1 on timeout. */
static long load_until(const cr_proc_t *c, int *next_new, load_t *l, const char *needle, int base, long gauge, int timeout_ms)
{
    long t0 = harness_now_ms();
    for (;;) {
        load_round(c, next_new, l);
        if (log_count(c, needle) > base && harness_metric(c, "corral_tier_breaker_open_servers") == gauge)
            return harness_now_ms() - t0;
        if (harness_now_ms() - t0 >= timeout_ms)
            return -1;
    }
}

/* L2 calls that failed or were skipped: lookups and (asynchronous) writes. */
static long l2_failures(const cr_proc_t *a)
{
    return harness_metric(a, "corral_tier_l2_errors_total") + harness_metric(a, "corral_tier_l2_set_errors_total");
}

/* One fault of server m under load through a: stop (then restart on its port) or freeze (then thaw). Until the
 * breaker has opened and the server is back, every warm key stays an L1 hit; no request fails at any time. */
static void fault_phase(const cr_proc_t *a, mc_proc_t *m, int freeze, int *next_new, load_t *total)
{
    load_t down = {0}, back = {0};
    int port = m->port, opened = log_count(a, "breaker open"), closed = log_count(a, "breaker closed");
    const char *what = freeze ? "frozen" : "stopped";
    long t, errs = l2_failures(a);
    int scale = harness_time_scale();
    CU_ASSERT_EQUAL(freeze ? mc_freeze(m) : mc_stop(m), 0);
    t = load_until(a, next_new, &down, "breaker open", opened, 1, 10000 * scale);
    fprintf(stderr, "    [tier] %s server: breaker open after %ld ms of load; %d requests, %d errors, %d of %d warm hits "
                    "from L1, worst %.1f ms\n",
            what, t, down.requests, down.errors, down.l1_hits, down.requests / 35 * 30, down.worst_ms);
    /* The breaker can open on the invalidation log's poll before any new key of a round hashed to this server;
     * a few more rounds send one there (failed, or skipped by the open breaker: both counted). */
    for (long t1 = harness_now_ms(); l2_failures(a) <= errs && harness_now_ms() - t1 < 5000 * scale;)
        load_round(a, next_new, &down);
    CU_ASSERT(t >= 0);
    CU_ASSERT_EQUAL(down.errors, 0);
    CU_ASSERT_EQUAL(down.l1_hits, down.requests / 35 * 30);
    CU_ASSERT(down.worst_ms < 500.0 * scale);
    CU_ASSERT(l2_failures(a) > errs);
    CU_ASSERT_EQUAL(freeze ? mc_thaw(m) : mc_start(m, port), 0);
    t = load_until(a, next_new, &back, "breaker closed", closed, 0, 10000 * scale);
    fprintf(stderr, "    [tier] %s server back: breaker closed after %ld ms; %d requests, %d errors, %d of %d warm hits "
                    "from L1\n",
            what, t, back.requests, back.errors, back.l1_hits, back.requests / 35 * 30);
    CU_ASSERT(t >= 0);
    CU_ASSERT_EQUAL(back.errors, 0);
    total->requests += down.requests + back.requests;
    total->errors += down.errors + back.errors;
    total->l1_hits += down.l1_hits + back.l1_hits;
}

static void test_dead_and_frozen_servers_cost_clients_nothing(void)
{
    cr_proc_t a;
    load_t l = {0}, after = {0};
    char path[64], seq[64];
    size_t len;
    int i, next_new = 0, log_srv = -1;
    long changes0, t0;
    CU_ASSERT_EQUAL_FATAL(tier_env_reset(&env), 0);
    CU_ASSERT_EQUAL_FATAL(tier_start_corral(&a, &env, NULL, 3), 0);
    for (i = 0; i != 30; ++i) {
        snprintf(path, sizeof(path), "/t5/warm/%d", i);
        CU_ASSERT_EQUAL(tier_get(&a, path, NULL), TIER_MISS);
    }
    CU_ASSERT_EQUAL(tier_wait_metric(&a, "corral_tier_l2_sets_total", 30, 3000), 30);
    CU_ASSERT_EQUAL(harness_metric(&a, "corral_tier_breaker_open_servers"), 0);
    changes0 = harness_metric(&a, "corral_tier_breaker_changes_total");
    /* one invalidation creates the log's counter: the server it lands on holds the log */
    CU_ASSERT_EQUAL(tier_admin_purge(&a, "{\"keys\": [\"/t5/none\"]}"), 200);
    for (t0 = harness_now_ms(); log_srv < 0 && harness_now_ms() - t0 < 2000; tier_pause_ms(10))
        for (i = 0; i != env.n_mc && log_srv < 0; ++i)
            if (mc_get(env.mc[i].port, TIER_INVAL_SEQ_KEY, seq, sizeof(seq), &len) == MC_FOUND)
                log_srv = i;
    CU_ASSERT(log_srv >= 0);
    if (log_srv < 0)
        log_srv = 0;
    load_round(&a, &next_new, &l);
    fprintf(stderr, "\n");

    /* another server stopped mid-load, then restarted empty on its port: the log is untouched, L1 stays */
    fault_phase(&a, &env.mc[(log_srv + 1) % 3], 0, &next_new, &l);
    CU_ASSERT_EQUAL(log_count(&a, "invalidation log gap"), 0);
    CU_ASSERT_EQUAL(l.l1_hits, l.requests / 35 * 30);

    /* the log's server frozen (accepts, never answers) past max_delay: L1 still serves while it is away; once it is
     * back, corral cannot know what it missed and drops its L1 (one "invalidation log gap" line), then refills */
    fault_phase(&a, &env.mc[log_srv], 1, &next_new, &l);
    for (t0 = harness_now_ms(); log_count(&a, "invalidation log gap") == 0 && harness_now_ms() - t0 < 2000;)
        load_round(&a, &next_new, &l);
    CU_ASSERT_EQUAL(log_count(&a, "invalidation log gap"), 1);
    load_round(&a, &next_new, &after); /* refills what the drop took */
    memset(&after, 0, sizeof(after));
    load_round(&a, &next_new, &after);
    CU_ASSERT_EQUAL(after.l1_hits, 30);
    CU_ASSERT_EQUAL(after.errors, 0);

    fprintf(stderr, "    [tier] in all %d requests, %d errors\n", l.requests + after.requests, l.errors + after.errors);
    CU_ASSERT_EQUAL(l.errors, 0);
    CU_ASSERT(harness_metric(&a, "corral_tier_breaker_changes_total") >= changes0 + 4);
    stop_clean(&a);
}

/* ---- planted values ---- */

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The CRC-32 of Value format 1: bytes 0-15, then 20 to the end. */
static uint32_t value_crc(const unsigned char *v, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, v, 16);
    return (uint32_t)crc32(crc, v + 20, (uInt)(len - 20));
}

static void put_le32(unsigned char *p, uint32_t x)
{
    p[0] = (unsigned char)x;
    p[1] = (unsigned char)(x >> 8);
    p[2] = (unsigned char)(x >> 16);
    p[3] = (unsigned char)(x >> 24);
}

/* Fetches path through a and returns the server and memcached key of the value it wrote (and the value), or -1. */
static int prime_value(const cr_proc_t *a, const char *path, char *key, unsigned char *val, size_t cap, size_t *len)
{
    static char before[4096][43];
    long n = tier_all_value_keys(&env, before, 4096);
    int srv;
    if (n < 0 || tier_get(a, path, NULL) != TIER_MISS)
        return -1;
    if ((srv = tier_wait_new_value_key(&env, before, (size_t)n, key, 3000)) < 0)
        return -1;
    if (mc_get(env.mc[srv].port, key, val, cap, len) != MC_FOUND)
        return -1;
    return srv;
}

enum { PLANT_CORRUPT, PLANT_TRUNCATED, PLANT_FOREIGN, PLANT_VERSION, PLANT_OTHER_KEY, PLANT_NONE, PLANTS };
static const char *const plant_names[] = {"corrupt", "truncated", "foreign", "version-2", "other-key", "untouched"};

static void test_planted_values_are_misses(void)
{
    static unsigned char val[1 << 20], other[1 << 20];
    static const char foreign[] = "{\"not\": \"a corral value\"}\r\nEND\r\n";
    cr_proc_t a, b;
    char key[43], okey[43], path[64];
    size_t len, olen;
    int kind;
    CU_ASSERT_EQUAL_FATAL(tier_env_reset(&env), 0);
    CU_ASSERT_EQUAL_FATAL(tier_start_corral(&a, &env, NULL, 3), 0);
    if (tier_start_corral(&b, &env, NULL, 3) != 0) {
        stop_clean(&a);
        CU_FAIL_FATAL("corral B did not start");
    }
    for (kind = 0; kind != PLANTS; ++kind) {
        tier_resp_t r;
        tier_class_t cls;
        long refused;
        int srv;
        snprintf(path, sizeof(path), "/t6/%s", plant_names[kind]);
        srv = prime_value(&a, path, key, val, sizeof(val), &len);
        if (srv < 0 || len <= 20) { /* (not FATAL: the corrals are stopped below) */
            CU_FAIL("no value of 20 bytes or more appeared in L2 after a miss through A");
            break;
        }
        /* what corral wrote is Value format 1: magic, version 1, its own length, a CRC that checks */
        CU_ASSERT(memcmp(val, "CRTV", 4) == 0 && val[4] == 1 && val[5] == 0);
        CU_ASSERT(le32(val + 8) == len && le32(val + 12) == 0);
        CU_ASSERT_EQUAL(le32(val + 16), value_crc(val, len));
        switch (kind) {
        case PLANT_CORRUPT:
            val[20 + (len - 20) / 2] ^= 0x20;
            break;
        case PLANT_TRUNCATED:
            len -= len / 3;
            break;
        case PLANT_FOREIGN:
            memcpy(val, foreign, sizeof(foreign));
            len = sizeof(foreign);
            break;
        case PLANT_VERSION: /* a well-formed value of another format version, its CRC made right */
            val[4] = 2;
            put_le32(val + 16, value_crc(val, len));
            break;
        case PLANT_OTHER_KEY: /* a valid value of another primary key, under this key */
            snprintf(path, sizeof(path), "/t6/%s-source", plant_names[kind]);
            if (prime_value(&a, path, okey, other, sizeof(other), &olen) < 0) {
                CU_FAIL("no value appeared in L2 for the source path");
                olen = len;
                memset(other, 0, olen); /* planted anyway: zeros, a foreign value */
            }
            memcpy(val, other, olen);
            len = olen;
            snprintf(path, sizeof(path), "/t6/%s", plant_names[kind]);
            break;
        }
        if (kind != PLANT_NONE)
            CU_ASSERT_EQUAL(mc_set(env.mc[srv].port, key, val, len, 0), 0);
        refused = harness_metric(&b, "corral_tier_values_refused_total");
        cls = tier_get(&b, path, &r);
        CU_ASSERT_EQUAL(r.status, 200);
        if (kind == PLANT_NONE) { /* the control: untouched, it is an L2 hit */
            CU_ASSERT_EQUAL(cls, TIER_L2_HIT);
            CU_ASSERT_EQUAL(upstream_count(&env.up, path), 1);
            CU_ASSERT_EQUAL(harness_metric(&b, "corral_tier_values_refused_total"), refused);
            continue;
        }
        if (cls != TIER_MISS)
            fprintf(stderr, "\n    [tier] planted %s value: B answered \"%s\"\n", plant_names[kind], r.cache_status);
        CU_ASSERT_EQUAL(cls, TIER_MISS);
        CU_ASSERT_EQUAL(r.n, 2); /* the upstream's second answer for this path, not the planted one */
        CU_ASSERT_EQUAL(upstream_count(&env.up, path), 2);
        CU_ASSERT(tier_wait_metric(&b, "corral_tier_values_refused_total", refused + 1, 1000) >= refused + 1);
        if (harness_metric(&b, "corral_tier_values_refused_total") != refused + 1)
            fprintf(stderr, "\n    [tier] planted %s value: refused counter %ld -> %ld\n", plant_names[kind], refused,
                    harness_metric(&b, "corral_tier_values_refused_total"));
    }
    stop_clean(&a);
    stop_clean(&b);
}

/* ---- a lease holder killed mid-fill ---- */

typedef struct {
    const cr_proc_t *c;
    tier_class_t cls;
    tier_resp_t r;
} bg_get_t;

static void *bg_get(void *arg)
{
    bg_get_t *g = arg;
    g->cls = tier_get(g->c, "/t7/slow", &g->r);
    return NULL;
}

static void test_killed_lease_holder_is_taken_over(void)
{
    cr_proc_t a, b;
    bg_get_t ga = {0}, gb = {0};
    pthread_t ta, tb;
    static char lval[65536];
    char vkey[43], lkey[64];
    size_t llen;
    long t0, leases = 0, count_at_kill;
    int i, lease_found = 0, scale = harness_time_scale();
    CU_ASSERT_EQUAL_FATAL(tier_env_reset(&env), 0);
    CU_ASSERT_EQUAL_FATAL(tier_start_corral(&a, &env, NULL, 3), 0);
    if (tier_start_corral(&b, &env, NULL, 3) != 0) {
        stop_clean(&a);
        CU_FAIL_FATAL("corral B did not start");
    }
    upstream_set(&env.up, "/t7/slow", "delay=5000");
    ga.c = &a;
    gb.c = &b;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ta, NULL, bg_get, &ga), 0);
    for (i = 0; i != 300 && upstream_count(&env.up, "/t7/slow") < 1; ++i)
        tier_pause_ms(10);
    CU_ASSERT_EQUAL(upstream_count(&env.up, "/t7/slow"), 1);
    /* A holds the lease (README: corral:v1:lease: + the value key's digits) while it fetches */
    CU_ASSERT_EQUAL(tier_expected_key(TIER_HOST "\n/t7/slow", strlen(TIER_HOST "\n/t7/slow"), vkey), 0);
    snprintf(lkey, sizeof(lkey), "%slease:%s", TIER_VALUE_PREFIX, vkey + strlen(TIER_VALUE_PREFIX));
    for (i = 0; i != env.n_mc; ++i) {
        leases += mc_count_prefix(env.mc[i].port, TIER_VALUE_PREFIX "lease:");
        lease_found += mc_get(env.mc[i].port, lkey, lval, sizeof(lval), &llen) == MC_FOUND;
    }
    CU_ASSERT_EQUAL(leases, 1);
    CU_ASSERT_EQUAL(lease_found, 1);
    upstream_set(&env.up, "/t7/slow", "delay=0"); /* A's fetch keeps the 5 s it was given; a new one is quick */
    t0 = harness_now_ms();
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tb, NULL, bg_get, &gb), 0);
    tier_pause_ms(300);
    count_at_kill = upstream_count(&env.up, "/t7/slow");
    CU_ASSERT_EQUAL(count_at_kill, 1); /* B waits for the lease holder instead of fetching */
    CU_ASSERT_EQUAL(harness_kill(&a, SIGKILL), 0);
    CU_ASSERT_EQUAL(harness_wait_exit(&a, 5000), 128 + SIGKILL);
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);
    fprintf(stderr, "\n    [tier] lease holder killed: B answered %ld after %ld ms (%s), upstream %ld\n", gb.r.status,
            harness_now_ms() - t0, gb.r.cache_status, upstream_count(&env.up, "/t7/slow"));
    CU_ASSERT_EQUAL(gb.cls, TIER_MISS);
    CU_ASSERT_EQUAL(gb.r.status, 200);
    CU_ASSERT_EQUAL(gb.r.n, 2);
    CU_ASSERT_EQUAL(upstream_count(&env.up, "/t7/slow"), 2);
    /* taken over once the lease expired: not before (memcached expires a 2 s item 1 to 2 s after), not much later */
    CU_ASSERT(gb.r.ms >= (TIER_LEASE_TTL_S - 1) * 1000.0 - 300);
    CU_ASSERT(gb.r.ms < (TIER_LEASE_TTL_S * 1000.0 + 1500) * scale);
    stop_clean(&b);
}

void cr_e2e_register_tier_faults(void)
{
    CU_pSuite s = CU_add_suite("tier_faults", suite_init, suite_cleanup);
    CU_add_test(s, "a stopped and a frozen server: no client errors, breaker opens and closes",
                test_dead_and_frozen_servers_cost_clients_nothing);
    CU_add_test(s, "corrupt, truncated, foreign, other-version and other-key values are misses", test_planted_values_are_misses);
    CU_add_test(s, "a lease holder killed mid-fill is taken over after the lease ttl", test_killed_lease_holder_is_taken_over);
}
