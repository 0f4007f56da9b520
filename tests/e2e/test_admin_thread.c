/*
 * test_admin_thread.c: end-to-end tests of the admin thread (server.c): the admin listener is served by a thread of
 * its own, named corral-admin, beside the traffic workers corral-w0..corral-w<N-1> (read from /proc/<pid>/task), and
 * admin and traffic both answer; without an admin listener there is no admin thread. With one traffic worker, hits
 * are answered at their usual latency while a slow admin purge is in progress (10000 prefixes, each a scan of 2000
 * stored objects: about half a second). When the admin shared worker 0's loop, this test failed: no hit was answered
 * until the purge was done (0 hits during a 490 ms purge).
 * Processes are started by PID and stopped by PID; waits are bounded polls.
 */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define THREADS 1
#define OBJECTS 2000
#define PREFIXES 10000

static const char *with_admin = "threads: 1\n"
                                "listen:\n"
                                "  - address: 127.0.0.1:${PORT}\n"
                                "upstream:\n"
                                "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                "admin:\n"
                                "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                "routes:\n"
                                "  - match: { prefix: / }\n"
                                "    ttl: 60s\n";

static const char *without_admin = "threads: 2\n"
                                   "listen:\n"
                                   "  - address: 127.0.0.1:${PORT}\n"
                                   "upstream:\n"
                                   "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                   "routes:\n"
                                   "  - match: { prefix: / }\n"
                                   "    ttl: 60s\n";

static cr_proc_t up, corral;

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, with_admin);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* How many of pid's threads are named `name` (/proc/<pid>/task/<tid>/comm); *total gets the thread count. */
static int threads_named(pid_t pid, const char *name, int *total)
{
    char path[320], comm[64];
    struct dirent *e;
    DIR *d;
    int n = 0;
    *total = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        FILE *fp;
        if (e->d_name[0] == '.')
            continue;
        ++*total;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, e->d_name);
        if ((fp = fopen(path, "r")) == NULL)
            continue;
        if (fgets(comm, sizeof(comm), fp) != NULL) {
            comm[strcspn(comm, "\n")] = '\0';
            n += strcmp(comm, name) == 0;
        }
        fclose(fp);
    }
    closedir(d);
    return n;
}

/* The harness returns once the traffic port accepts, which the main thread's socket does before the threads run:
 * wait (at most 5 s) until the last worker has named itself; 0, or -1 on timeout. */
static int wait_for_worker(pid_t pid, int idx)
{
    char name[32];
    int total;
    long deadline = harness_now_ms() + 5000;
    snprintf(name, sizeof(name), "corral-w%d", idx);
    while (threads_named(pid, name, &total) != 1) {
        if (harness_now_ms() > deadline)
            return -1;
        poll(NULL, 0, 10);
    }
    return 0;
}

static void test_admin_thread_named(void)
{
    char name[32];
    int total, i;
    CU_ASSERT_FATAL(wait_for_worker(corral.pid, THREADS - 1) == 0);
    CU_ASSERT_EQUAL(threads_named(corral.pid, "corral-admin", &total), 1);
    for (i = 0; i != THREADS; ++i) {
        snprintf(name, sizeof(name), "corral-w%d", i);
        CU_ASSERT_EQUAL(threads_named(corral.pid, name, &total), 1);
    }
    snprintf(name, sizeof(name), "corral-w%d", THREADS);
    CU_ASSERT_EQUAL(threads_named(corral.pid, name, &total), 0);
    CU_ASSERT(total >= THREADS + 2); /* the main thread, the workers, the admin thread (libraries may add more) */
}

static void test_admin_and_traffic_answer(void)
{
    char url[128];
    cr_resp_t r;
    long status;
    int i;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", corral.admin_port);
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url, NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    for (i = 0; i != 2; ++i) {
        CU_ASSERT_EQUAL(harness_get_hit(&corral, "/admin-thread/a", &status, NULL, 0), i);
        CU_ASSERT_EQUAL(status, 200);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", corral.admin_port);
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url, NULL), 0); /* h2c too: the admin context is a full h2o context */
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strstr(r.body, "\ncorral_cache_hits_total ") != NULL);
    resp_free(&r);
    CU_ASSERT(harness_metric(&corral, "corral_cache_hits_total") >= 1);
    CU_ASSERT(harness_metric(&corral, "corral_requests_total") >= 2);
}

static void test_no_admin_no_thread(void)
{
    cr_proc_t c2;
    int total;
    long status;
    CU_ASSERT_FATAL(harness_start_corral(&c2, without_admin, &up) == 0);
    CU_ASSERT(wait_for_worker(c2.pid, 1) == 0);
    CU_ASSERT_EQUAL(threads_named(c2.pid, "corral-admin", &total), 0);
    CU_ASSERT_EQUAL(threads_named(c2.pid, "corral-w1", &total), 1);
    CU_ASSERT_EQUAL(harness_get_hit(&c2, "/admin-thread/b", &status, NULL, 0), 0);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(harness_stop(&c2), 0);
}

/* The slow admin request, sent on a raw socket from its own thread (the harness's HTTP helpers are not thread-safe). */
typedef struct {
    int port;
    char *body;
    size_t body_len;
    int status;              /* the purge's HTTP status, 0 when none was read */
    volatile int sent;       /* the whole request is written */
    volatile int done;       /* the response has arrived (or the exchange failed) */
    long sent_ms, done_ms;
} slow_purge_t;

static void *slow_purge_main(void *arg)
{
    slow_purge_t *p = arg;
    char head[256], resp[4096];
    size_t off = 0;
    ssize_t n;
    int fd = harness_connect(p->port), len;
    if (fd < 0)
        goto out;
    len = snprintf(head, sizeof(head),
                   "POST /v1/purge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   p->body_len);
    if (write(fd, head, (size_t)len) != len)
        goto out;
    while (off < p->body_len && (n = write(fd, p->body + off, p->body_len - off)) > 0)
        off += (size_t)n;
    p->sent_ms = harness_now_ms();
    __atomic_store_n(&p->sent, 1, __ATOMIC_SEQ_CST);
    off = 0;
    while (off < sizeof(resp) - 1 && (n = read(fd, resp + off, sizeof(resp) - 1 - off)) > 0) {
        off += (size_t)n;
        resp[off] = '\0';
        if (strstr(resp, "\r\n\r\n") != NULL && strstr(resp, "\"purged\"") != NULL)
            break;
    }
    resp[off] = '\0';
    if (off > 12 && strncmp(resp, "HTTP/1.1 ", 9) == 0)
        p->status = atoi(resp + 9);
out:
    p->done_ms = harness_now_ms();
    __atomic_store_n(&p->sent, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_hits_during_slow_admin_request(void)
{
    slow_purge_t p;
    pthread_t th;
    char path[64];
    size_t cap = (size_t)PREFIXES * 32 + 64, i;
    long status, during = 0, worst = 0, purge_ms;
    int hits_before = 0;

    for (i = 0; i != OBJECTS; ++i) { /* stored objects: every prefix of the purge scans them all */
        snprintf(path, sizeof(path), "/slow-admin/%zu", i);
        CU_ASSERT_FATAL(harness_get_hit(&corral, path, &status, NULL, 0) == 0);
    }
    hits_before = harness_get_hit(&corral, "/slow-admin/1", &status, NULL, 0);
    CU_ASSERT_EQUAL(hits_before, 1);

    memset(&p, 0, sizeof(p));
    p.port = corral.admin_port;
    p.body = malloc(cap);
    CU_ASSERT_FATAL(p.body != NULL);
    p.body_len = (size_t)snprintf(p.body, cap, "{\"prefixes\": [");
    for (i = 0; i != PREFIXES; ++i) /* none matches: the objects stay, and so does the cost of each scan */
        p.body_len += (size_t)snprintf(p.body + p.body_len, cap - p.body_len, "%s\"/nomatch-%zu/\"", i ? "," : "", i);
    p.body_len += (size_t)snprintf(p.body + p.body_len, cap - p.body_len, "]}");
    CU_ASSERT_FATAL(pthread_create(&th, NULL, slow_purge_main, &p) == 0);
    while (!__atomic_load_n(&p.sent, __ATOMIC_SEQ_CST))
        poll(NULL, 0, 1);
    while (!__atomic_load_n(&p.done, __ATOMIC_SEQ_CST)) {
        long start = harness_now_ms(), took;
        int hit = harness_get_hit(&corral, "/slow-admin/1", &status, NULL, 0);
        took = harness_now_ms() - start;
        if (__atomic_load_n(&p.done, __ATOMIC_SEQ_CST))
            break; /* this one may have waited for the purge's end: it does not count */
        CU_ASSERT_EQUAL(hit, 1);
        ++during;
        if (took > worst)
            worst = took;
    }
    pthread_join(th, NULL);
    free(p.body);
    purge_ms = p.done_ms - p.sent_ms;
    printf("\n    purge of %d prefixes over %d objects: %ld ms; %ld hits answered meanwhile, the slowest in %ld ms\n",
           PREFIXES, OBJECTS, purge_ms, during, worst);
    CU_ASSERT_EQUAL(p.status, 200);
    CU_ASSERT(purge_ms >= 100); /* slow enough to show something */
    CU_ASSERT(during >= 5);
    CU_ASSERT(worst <= 50 + purge_ms / 4);
}

void cr_e2e_register_admin_thread(void)
{
    CU_pSuite s = CU_add_suite("admin thread", suite_init, suite_cleanup);
    if (s == NULL)
        return;
    CU_add_test(s, "the admin listener has its own named thread", test_admin_thread_named);
    CU_add_test(s, "admin and traffic both answer", test_admin_and_traffic_answer);
    CU_add_test(s, "no admin listener, no admin thread", test_no_admin_no_thread);
    CU_add_test(s, "hits are answered while a slow admin request runs", test_hits_during_slow_admin_request);
}
