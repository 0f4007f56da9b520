/*
 * test_admin_thread.c: end-to-end tests of the admin thread (server.c): the admin listener is served by a thread of
 * its own, named corral-admin, beside the traffic workers corral-w0..corral-w<N-1> (read from /proc/<pid>/task), and
 * admin and traffic both answer; without an admin listener there is no admin thread. A slow admin request that would
 * stall a shared loop could not be built honestly here (an O(objects) purge needs far more objects than an e2e test
 * can store quickly), so the separation is shown by the threads themselves.
 * Processes are started by PID and stopped by PID; waits are bounded polls.
 */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define THREADS 3

static const char *with_admin = "threads: 3\n"
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

void cr_e2e_register_admin_thread(void)
{
    CU_pSuite s = CU_add_suite("admin thread", suite_init, suite_cleanup);
    if (s == NULL)
        return;
    CU_add_test(s, "the admin listener has its own named thread", test_admin_thread_named);
    CU_add_test(s, "admin and traffic both answer", test_admin_and_traffic_answer);
    CU_add_test(s, "no admin listener, no admin thread", test_no_admin_no_thread);
}
