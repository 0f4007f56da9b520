/*
 * test_fill_epochs.c: end-to-end tests of the fill-versus-invalidation race (issue 10, section 5), both directions:
 *  - an invalidation that covers a fill in flight wins: the fill's answer goes to its client but is not stored, so the
 *    next GET goes upstream (a write to the path, a write whose Location / Content-Location names it, a route
 *    `invalidate` template or prefix covering it, admin purges by key, prefix and tag, soft or hard, and DELETE
 *    /v1/cache);
 *  - an invalidation that does not cover it leaves it alone: 50 slow fills of distinct keys during a stream of writes
 *    to other paths are all stored (their coalesced waiters share them), and so is a fill racing a write or an admin
 *    purge of another path, prefix or tag.
 *
 * Method: the upstream's per-path settings (/__set) make the fill slow (delay=) and name the version it serves; the
 * test waits (bounded polling) until the fill has reached the upstream, changes the version, runs the invalidation,
 * checks that the fill is still in flight (so the race really happened), and then counts upstream requests: "stored"
 * means the next GET is a hit and the upstream saw one request for the path; "not stored" means it saw two and the
 * next GET got the new version.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define FE_TOKEN "fe-token"
#define FE_SLOW_MS 700
#define FE_MANY 50
#define FE_MANY_SLOW_MS 1500 /* 50 connections to set up, then writes to land, all inside every fill */
/* Bounds the writer's stream: path notes landing in a fill's slot twice during it could cost it its store
 * (inval_epoch.h), which at a few hundred writes per fill happens about once in 10^4 runs. */
#define FE_MAX_WRITES 300
#define FE_WRITES_DURING 20

static cr_proc_t up, corral;

static const char *template = "threads: 2\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "  max_connections: 128\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "  token_env: CORRAL_E2E_FE_TOKEN\n"
                              "routes:\n"
                              "  - match: { prefix: /fe/w }\n"
                              "    ttl: 60s\n"
                              "    invalidate: ['/fe/w/{id}/t', '/fe/w/{id}/p/*']\n"
                              "  - match: { prefix: / }\n"
                              "    ttl: 60s\n"
                              "    coalesce: { timeout: 20s }\n"; /* waiters outlast the slow fills, also at harness_time_scale() */

static int suite_init(void)
{
    setenv("CORRAL_E2E_FE_TOKEN", FE_TOKEN, 1);
    return harness_start_pair(&up, &corral, template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* GET path: 1 when it was a hit, else 0; copies the body's "version" into ver (may be NULL). */
static int get_is_hit(const char *path, char *ver, size_t versize)
{
    long status = 0;
    int hit = harness_get_hit(&corral, path, &status, ver, versize);
    CU_ASSERT_FATAL(hit >= 0);
    CU_ASSERT_EQUAL(status, 200);
    return hit;
}

static long write_req(const char *method, const char *path_and_query)
{
    long status = harness_write(&corral, method, path_and_query);
    CU_ASSERT_FATAL(status >= 0);
    return status;
}

/* An admin request with the token; returns the status. */
static long admin(const char *method, const char *path, const char *body)
{
    char url[256];
    const char *headers[] = {"Content-Type: application/json", "Authorization: Bearer " FE_TOKEN, NULL};
    cr_resp_t r;
    long status;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", corral.admin_port, path);
    CU_ASSERT_EQUAL_FATAL(http_request(&r, CR_H1, method, url, headers, body, body != NULL ? strlen(body) : 0), 0);
    status = r.status;
    resp_free(&r);
    return status;
}

/* ---- one slow fill in a thread ---- */

typedef struct {
    char url[512];
    char version[32];
    char cache_status[256];
    long status;
    int done; /* atomic: the fill's client has its answer */
} fe_fill_t;

static void *fill_thread(void *arg)
{
    fe_fill_t *f = arg;
    cr_resp_t r;
    if (http_get(&r, CR_H1, f->url, NULL) == 0) {
        const char *v = strstr(r.body, "\"version\": \"");
        f->status = r.status;
        snprintf(f->version, sizeof(f->version), "%.*s", v != NULL ? (int)strcspn(v + 12, "\"") : 0, v != NULL ? v + 12 : "");
        resp_header(&r, "cache-status", f->cache_status, sizeof(f->cache_status));
    }
    resp_free(&r);
    __atomic_store_n(&f->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Waits (bounded) until the upstream has seen at least n requests for path. */
static long wait_upstream_count(const char *path, long n)
{
    long c = -1;
    int i;
    for (i = 0; i != 1000 && (c = upstream_count(&up, path)) < n; ++i)
        sleep_ms(5);
    return c;
}

/* The kinds of invalidation run during a fill of `path` (the fill's upstream settings in `settings`). */
typedef void (*fe_action_fn)(const char *path);

/*
 * Runs one race: a slow fill of `path` (upstream settings "version=old&delay=...&<extra>"), the action while it is in
 * flight, then checks whether the fill's answer was stored (`expect_stored`) by asking again and counting upstream
 * requests. `extra` is added to the upstream settings of both versions (e.g. a Surrogate-Key header).
 */
static void race(const char *path, const char *extra, fe_action_fn action, int expect_stored)
{
    fe_fill_t f;
    pthread_t tid;
    char settings[256], ver[32];
    int still_in_flight;
    long seen;

    memset(&f, 0, sizeof(f));
    snprintf(f.url, sizeof(f.url), "%s", url_of(&corral, path));
    snprintf(settings, sizeof(settings), "version=old&delay=%d%s%s", FE_SLOW_MS, extra[0] != '\0' ? "&" : "", extra);
    CU_ASSERT_EQUAL_FATAL(upstream_set(&up, path, settings), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tid, NULL, fill_thread, &f), 0);
    CU_ASSERT_EQUAL(wait_upstream_count(path, 1), 1); /* the fill is at the upstream */
    snprintf(settings, sizeof(settings), "version=new%s%s", extra[0] != '\0' ? "&" : "", extra);
    CU_ASSERT_EQUAL(upstream_set(&up, path, settings), 0);
    action(path);
    still_in_flight = !__atomic_load_n(&f.done, __ATOMIC_SEQ_CST);
    pthread_join(tid, NULL);
    seen = upstream_count(&up, path); /* the fill, and the write itself when it was sent to this path */
    CU_ASSERT_TRUE(still_in_flight); /* the invalidation really landed during the fill */
    CU_ASSERT_EQUAL(f.status, 200);
    CU_ASSERT_STRING_EQUAL(f.version, "old"); /* the fill's own answer goes to its client either way */
    if (expect_stored) {
        CU_ASSERT_PTR_NOT_NULL(strstr(f.cache_status, "stored"));
        CU_ASSERT_TRUE(get_is_hit(path, ver, sizeof(ver)));
        CU_ASSERT_STRING_EQUAL(ver, "old");
        CU_ASSERT_EQUAL(upstream_count(&up, path), seen);
    } else {
        CU_ASSERT_PTR_NOT_NULL(strstr(f.cache_status, "detail=invalidated"));
        CU_ASSERT_FALSE(get_is_hit(path, ver, sizeof(ver)));
        CU_ASSERT_STRING_EQUAL(ver, "new");
        CU_ASSERT_EQUAL(upstream_count(&up, path), seen + 1);
        /* and corral stores and serves the new version */
        CU_ASSERT_TRUE(get_is_hit(path, ver, sizeof(ver)));
        CU_ASSERT_STRING_EQUAL(ver, "new");
        CU_ASSERT_EQUAL(upstream_count(&up, path), seen + 1);
    }
    if (expect_stored != (strstr(f.cache_status, "stored") != NULL) || !still_in_flight)
        fprintf(stderr, "  race on %s: fill cache-status \"%s\"%s\n", path, f.cache_status, still_in_flight ? "" : " (too late)");
}

/* ---- actions that cover the filled path ---- */

static void act_put_same(const char *path)
{
    CU_ASSERT_EQUAL(write_req("PUT", path), 200);
}

static void act_delete_same(const char *path)
{
    CU_ASSERT_EQUAL(write_req("DELETE", path), 200);
}

static void act_post_location(const char *path)
{
    char w[256];
    snprintf(w, sizeof(w), "/fe/create?status=201&location=%s", path);
    CU_ASSERT_EQUAL(write_req("POST", w), 201);
}

static void act_post_content_location(const char *path)
{
    char w[256];
    snprintf(w, sizeof(w), "/fe/create?status=200&content_location=http://127.0.0.1:%d%s", corral.port, path);
    CU_ASSERT_EQUAL(write_req("POST", w), 200);
}

static void act_template_exact(const char *path)
{
    (void)path; /* /fe/w/7/t is named by the route template /fe/w/{id}/t of a write to /fe/w/7 */
    CU_ASSERT_EQUAL(write_req("PATCH", "/fe/w/7"), 200);
}

static void act_template_prefix(const char *path)
{
    (void)path; /* /fe/w/8/p/... is under /fe/w/{id}/p/ * of a write to /fe/w/8 */
    CU_ASSERT_EQUAL(write_req("PUT", "/fe/w/8"), 200);
}

static void act_admin_key(const char *path)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"keys\": [\"%s\"]}", path);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", body), 200);
}

static void act_admin_key_soft(const char *path)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"keys\": [\"%s\"], \"soft\": true}", path);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", body), 200);
}

static void act_admin_prefix(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"prefixes\": [\"/fe/pp/\"]}"), 200);
}

static void act_admin_prefix_soft(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"prefixes\": [\"/fe/pq\"], \"soft\": true}"), 200);
}

static void act_admin_tag(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"tags\": [\"fe-tag-a\"]}"), 200);
}

static void act_admin_tag_soft(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"tags\": [\"fe-tag-b\"], \"soft\": true}"), 200);
}

static void act_admin_clear(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(admin("DELETE", "/v1/cache", NULL), 200);
}

static void test_covering_invalidations_win(void)
{
    CU_ASSERT_EQUAL(upstream_reset(&up), 0);
    race("/fe/same/put", "", act_put_same, 0);
    race("/fe/same/delete", "", act_delete_same, 0);
    race("/fe/loc/1", "", act_post_location, 0);
    race("/fe/cloc/1", "", act_post_content_location, 0);
    race("/fe/w/7/t", "", act_template_exact, 0);
    race("/fe/w/8/p/avatar", "", act_template_prefix, 0);
    race("/fe/key/1", "", act_admin_key, 0);
    race("/fe/key/2", "", act_admin_key_soft, 0);
    race("/fe/pp/1", "", act_admin_prefix, 0);
    race("/fe/pq/x/1", "", act_admin_prefix_soft, 0);
    race("/fe/tag/1", "hdr=Surrogate-Key:other%20fe-tag-a", act_admin_tag, 0);
    race("/fe/tag/2", "hdr=Surrogate-Key:fe-tag-b", act_admin_tag_soft, 0);
    race("/fe/clear/1", "", act_admin_clear, 0);
}

/* ---- actions that do not cover it ---- */

static void act_put_other(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(write_req("PUT", "/fe/unrelated"), 200);
    CU_ASSERT_EQUAL(write_req("POST", "/fe/unrelated/x?status=201&location=/fe/unrelated/y"), 201);
    CU_ASSERT_EQUAL(write_req("DELETE", "/fe/u2/a"), 200);
}

static void act_template_other(const char *path)
{
    (void)path; /* /fe/w/9, /fe/w/9/t and /fe/w/9/p/ *: not /fe/w/5/t */
    CU_ASSERT_EQUAL(write_req("PUT", "/fe/w/9"), 200);
}

static void act_admin_other_key(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"keys\": [\"/fe/other/1\", \"/fe/ok/keyX\"]}"), 200);
}

static void act_admin_other_prefix(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"prefixes\": [\"/other/\", \"/fe/ok/pfx/\"], \"soft\": true}"), 200);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"prefixes\": [\"/other/\"]}"), 200);
}

static void act_admin_other_tag(const char *path)
{
    (void)path;
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"tags\": [\"fe-tag\", \"fe-tag-okX\", \"other\"]}"), 200);
    CU_ASSERT_EQUAL(admin("POST", "/v1/purge", "{\"tags\": [\"fe-tag-o\"], \"soft\": true}"), 200);
}

static void test_other_invalidations_leave_the_fill_alone(void)
{
    CU_ASSERT_EQUAL(upstream_reset(&up), 0);
    race("/fe/ok/write", "", act_put_other, 1);
    race("/fe/w/5/t", "", act_template_other, 1);
    race("/fe/ok/key", "", act_admin_other_key, 1);
    race("/fe/ok/pfx", "", act_admin_other_prefix, 1); /* "/fe/ok/pfx/" does not cover "/fe/ok/pfx" */
    race("/fe/ok/tag", "hdr=Surrogate-Key:fe-tag-ok", act_admin_other_tag, 1);
}

/* ---- 50 fills of distinct keys while writes hit other paths ---- */

typedef struct {
    int stop; /* atomic */
    long writes, bad;
} fe_writer_t;

static void *writer_thread(void *arg)
{
    static const char *const methods[] = {"PUT", "POST", "DELETE", "PATCH"};
    fe_writer_t *w = arg;
    long i;
    for (i = 0; i != FE_MAX_WRITES && !__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST); ++i) {
        char path[64];
        cr_resp_t r;
        snprintf(path, sizeof(path), "/fe/wr/%ld?status=%d", i, i % 3 == 0 ? 204 : 200);
        if (http_request(&r, CR_H1, methods[i % 4], url_of(&corral, path), NULL, "x=1", 3) != 0 || r.status < 200 || r.status >= 300)
            ++w->bad;
        resp_free(&r);
        __atomic_add_fetch(&w->writes, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void test_many_fills_during_other_writes_are_stored(void)
{
    static fe_fill_t fills[FE_MANY];
    static fe_fill_t waiters[FE_MANY];
    pthread_t tids[FE_MANY], wtids[FE_MANY], wtid;
    fe_writer_t w = {0, 0, 0};
    long writes_during, total = -1;
    int i, done_early = 0, stored = 0, hits = 0, once = 0, shared = 0;
    char path[64];

    CU_ASSERT_EQUAL(upstream_reset(&up), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&wtid, NULL, writer_thread, &w), 0);
    for (i = 0; i != FE_MANY; ++i) {
        memset(&fills[i], 0, sizeof(fills[i]));
        snprintf(fills[i].url, sizeof(fills[i].url), "http://127.0.0.1:%d/fe/many/%d?delay=%d", corral.port, i,
                 FE_MANY_SLOW_MS * harness_time_scale());
        CU_ASSERT_EQUAL_FATAL(pthread_create(&tids[i], NULL, fill_thread, &fills[i]), 0);
    }
    /* every fill reaches the upstream; writes go on meanwhile */
    for (i = 0; i != 1000; ++i) {
        long n = 0;
        int k;
        char *log = upstream_log(&up, NULL);
        for (k = 0; log != NULL && k != FE_MANY; ++k) {
            char needle[64];
            snprintf(needle, sizeof(needle), "\"/fe/many/%d?", k);
            n += strstr(log, needle) != NULL;
        }
        free(log);
        if ((total = n) == FE_MANY)
            break;
        sleep_ms(5);
    }
    CU_ASSERT_EQUAL(total, FE_MANY);
    /* a second client per key joins each fill in flight */
    for (i = 0; i != FE_MANY; ++i) {
        memset(&waiters[i], 0, sizeof(waiters[i]));
        snprintf(waiters[i].url, sizeof(waiters[i].url), "%s", fills[i].url);
        CU_ASSERT_EQUAL_FATAL(pthread_create(&wtids[i], NULL, fill_thread, &waiters[i]), 0);
    }
    writes_during = __atomic_load_n(&w.writes, __ATOMIC_SEQ_CST);
    /* let more writes land while every fill is still waiting for its upstream answer, then stop the writer */
    for (i = 0; i != 500 && __atomic_load_n(&w.writes, __ATOMIC_SEQ_CST) < writes_during + FE_WRITES_DURING; ++i)
        sleep_ms(2);
    __atomic_store_n(&w.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(wtid, NULL);
    for (i = 0; i != FE_MANY; ++i)
        done_early += __atomic_load_n(&fills[i].done, __ATOMIC_SEQ_CST);
    writes_during = w.writes - writes_during;
    for (i = 0; i != FE_MANY; ++i) {
        pthread_join(tids[i], NULL);
        pthread_join(wtids[i], NULL);
    }

    CU_ASSERT_EQUAL(done_early, 0);
    CU_ASSERT(writes_during >= FE_WRITES_DURING); /* writes landed while all 50 fills were in flight */
    CU_ASSERT_EQUAL(w.bad, 0);
    for (i = 0; i != FE_MANY; ++i) {
        CU_ASSERT_EQUAL(fills[i].status, 200);
        stored += strstr(fills[i].cache_status, "stored") != NULL;
        if (strstr(fills[i].cache_status, "stored") == NULL)
            fprintf(stderr, "  /fe/many/%d: \"%s\"\n", i, fills[i].cache_status);
        CU_ASSERT_EQUAL(waiters[i].status, 200);
        shared += strstr(waiters[i].cache_status, "collapsed") != NULL || strstr(waiters[i].cache_status, "hit") != NULL;
        snprintf(path, sizeof(path), "/fe/many/%d?delay=%d", i, FE_MANY_SLOW_MS * harness_time_scale());
        hits += get_is_hit(path, NULL, 0);
        snprintf(path, sizeof(path), "/fe/many/%d", i);
        once += upstream_count(&up, path) == 1;
    }
    fprintf(stderr, "  %ld writes (%ld once all fills were at the upstream); %d of %d stored, %d hits, %d fetched once\n", w.writes,
            writes_during, stored, FE_MANY, hits, once);
    CU_ASSERT_EQUAL(stored, FE_MANY);
    CU_ASSERT_EQUAL(shared, FE_MANY); /* the waiters got the fills' answers, no request of their own */
    CU_ASSERT_EQUAL(hits, FE_MANY);
    CU_ASSERT_EQUAL(once, FE_MANY);
    snprintf(path, sizeof(path), "/fe/many/0?delay=%d", FE_MANY_SLOW_MS * harness_time_scale());
    CU_ASSERT_TRUE(get_is_hit(path, NULL, 0)); /* still serving */
}

void cr_e2e_register_fill_epochs(void)
{
    CU_pSuite s = CU_add_suite("fill_epochs", suite_init, suite_cleanup);
    CU_add_test(s, "an invalidation covering a fill in flight wins", test_covering_invalidations_win);
    CU_add_test(s, "an invalidation of something else leaves the fill alone", test_other_invalidations_leave_the_fill_alone);
    CU_add_test(s, "50 fills of distinct keys during writes to other paths are all stored",
                test_many_fills_during_other_writes_are_stored);
}
