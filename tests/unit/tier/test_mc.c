/*
 * test_mc.c: the shared tier's memcached client (tier/mc.c) against real memcached processes on 127.0.0.1: the
 * calls and their results, ketama placement (adding a server moves about 1/N of the keys, all of them to it), the
 * per-server breaker (a dead port opens it, a server started there closes it after the back-off), a frozen server
 * answering within the timeout, and the value bound.
 *
 * Invariants: every memcached started here is stopped here, by PID; ports are found free on 127.0.0.1 just before.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "corral/tier/mc.h"

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static int port_open(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    if (fd < 0)
        return 0;
    ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

/* A memcached on 127.0.0.1:port, up (accepting) when this returns a PID > 0. */
static pid_t start_memcached(int port)
{
    char portbuf[16];
    pid_t pid;
    long deadline;

    snprintf(portbuf, sizeof(portbuf), "%d", port);
    if ((pid = fork()) == 0) {
        execlp("memcached", "memcached", "-u", "root", "-l", "127.0.0.1", "-p", portbuf, "-U", "0", "-t", "1", "-m", "16",
               (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    for (deadline = now_ms() + 5000; now_ms() < deadline; usleep(10000))
        if (port_open(port))
            return pid;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* SIGSTOP is delivered asynchronously: waits until every thread of pid is stopped (state 'T' in /proc). */
static int wait_stopped(pid_t pid)
{
    long deadline = now_ms() + 2000;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    while (now_ms() < deadline) {
        char buf[512], *p;
        FILE *f = fopen(path, "r");
        size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        buf[n] = '\0';
        if ((p = strrchr(buf, ')')) != NULL && p[1] == ' ' && (p[2] == 'T' || p[2] == 't'))
            return 1;
        usleep(1000);
    }
    return 0;
}

static void stop_memcached(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static cr_mc_t *client(const int *ports, size_t n, uint64_t breaker_base_ms)
{
    char names[8][32];
    const char *servers[8];
    cr_mc_conf_t conf = {.servers = servers, .num_servers = n, .timeout_ms = 20, .handles = 2};
    size_t i;
    conf.breaker.base_ms = breaker_base_ms;
    for (i = 0; i != n; ++i) {
        snprintf(names[i], sizeof(names[i]), "127.0.0.1:%d", ports[i]);
        servers[i] = names[i];
    }
    return cr_mc_new(&conf);
}

static void test_mc_calls(void)
{
    int port = free_port();
    pid_t pid = start_memcached(port);
    cr_mc_t *mc;
    char *v = NULL;
    size_t len = 0;
    uint64_t n = 0;

    CU_ASSERT_FATAL(pid > 0);
    mc = client(&port, 1, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mc);
    CU_ASSERT_EQUAL(cr_mc_get(mc, "k1", 2, &v, &len), CR_MC_MISS);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(cr_mc_set(mc, "k1", 2, "hello\0bytes", 11, 60), CR_MC_OK);
    CU_ASSERT_EQUAL(cr_mc_get(mc, "k1", 2, &v, &len), CR_MC_OK);
    CU_ASSERT_EQUAL(len, 11);
    CU_ASSERT(v != NULL && memcmp(v, "hello\0bytes", 11) == 0);
    free(v);
    /* add: only when absent (the lease) */
    CU_ASSERT_EQUAL(cr_mc_add(mc, "k1", 2, "x", 1, 60), CR_MC_MISS);
    CU_ASSERT_EQUAL(cr_mc_add(mc, "k2", 2, "x", 1, 60), CR_MC_OK);
    CU_ASSERT_EQUAL(cr_mc_delete(mc, "k2", 2), CR_MC_OK);
    CU_ASSERT_EQUAL(cr_mc_delete(mc, "k2", 2), CR_MC_MISS);
    CU_ASSERT_EQUAL(cr_mc_add(mc, "k2", 2, "x", 1, 60), CR_MC_OK);
    /* incr: creates the counter, then counts */
    CU_ASSERT_EQUAL(cr_mc_incr(mc, "seq", 3, &n), CR_MC_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(cr_mc_incr(mc, "seq", 3, &n), CR_MC_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(cr_mc_failures(mc), 0);
    CU_ASSERT_EQUAL(cr_mc_breaker_state(mc, 0), CR_BREAKER_CLOSED);
    /* expiry seconds: rounded up, at least 1, at most 30 days */
    CU_ASSERT_EQUAL(cr_mc_expiry_s(0), 1);
    CU_ASSERT_EQUAL(cr_mc_expiry_s(1001), 2);
    CU_ASSERT_EQUAL(cr_mc_expiry_s(60000), 60);
    CU_ASSERT_EQUAL(cr_mc_expiry_s(UINT64_MAX / 2), 30u * 24 * 3600);
    cr_mc_free(&mc);
    CU_ASSERT_PTR_NULL(mc);
    stop_memcached(pid);
}

static void test_mc_value_bound(void)
{
    int port = free_port();
    pid_t pid = start_memcached(port);
    const char *servers[1];
    char name[32], *big = calloc(1, 9000), *v = NULL;
    cr_mc_conf_t conf = {.servers = servers, .num_servers = 1, .timeout_ms = 20, .max_value_bytes = 8192};
    cr_mc_t *mc, *wide;
    size_t len;

    CU_ASSERT_FATAL(pid > 0 && big != NULL);
    snprintf(name, sizeof(name), "127.0.0.1:%d", port);
    servers[0] = name;
    mc = cr_mc_new(&conf);
    conf.max_value_bytes = 0;
    wide = cr_mc_new(&conf);
    CU_ASSERT_FATAL(mc != NULL && wide != NULL);
    CU_ASSERT_EQUAL(cr_mc_set(mc, "big", 3, big, 9000, 60), CR_MC_FAILED); /* never sent */
    CU_ASSERT_EQUAL(cr_mc_set(wide, "big", 3, big, 9000, 60), CR_MC_OK);
    /* written by another client: too long for this one to take, and not the server's fault */
    CU_ASSERT_EQUAL(cr_mc_get(mc, "big", 3, &v, &len), CR_MC_MISS);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(cr_mc_breaker_state(mc, 0), CR_BREAKER_CLOSED);
    cr_mc_free(&mc);
    cr_mc_free(&wide);
    free(big);
    stop_memcached(pid);
}

/* Keys that hash to each server, with 3 servers and then a 4th added (no server needs to run for this). */
static void test_mc_ketama(void)
{
    int ports[4] = {21901, 21902, 21903, 21904};
    cr_mc_t *three = client(ports, 3, 0), *four = client(ports, 4, 0);
    size_t count[4] = {0}, moved = 0, moved_elsewhere = 0, i;
    char key[64];

    CU_ASSERT_FATAL(three != NULL && four != NULL);
    for (i = 0; i != 2000; ++i) {
        int len = snprintf(key, sizeof(key), "corral:v1:%032zx", i * 2654435761u);
        size_t a = cr_mc_server_of(three, key, (size_t)len), b = cr_mc_server_of(four, key, (size_t)len);
        CU_ASSERT(a < 3 && b < 4);
        ++count[a];
        if (a != b) {
            ++moved;
            moved_elsewhere += b != 3; /* consistent hashing: a moved key goes to the new server only */
        }
    }
    for (i = 0; i != 3; ++i)
        CU_ASSERT(count[i] > 2000 / 3 / 2); /* every server takes a fair share */
    CU_ASSERT(moved > 2000 / 4 / 2 && moved < 2000 / 4 * 2); /* about a quarter */
    CU_ASSERT_EQUAL(moved_elsewhere, 0);
    CU_ASSERT_STRING_EQUAL(cr_mc_server_name(four, 3), "127.0.0.1:21904");
    cr_mc_free(&three);
    cr_mc_free(&four);
}

static void test_mc_breaker(void)
{
    int port = free_port();
    cr_mc_t *mc = client(&port, 1, 200);
    char *v = NULL;
    size_t len, i;
    pid_t pid;
    long t0, deadline;

    CU_ASSERT_PTR_NOT_NULL_FATAL(mc);
    /* nothing listens: refused connections fail fast, five of them open the breaker, then calls are skipped */
    t0 = now_ms();
    for (i = 0; i != 5; ++i)
        CU_ASSERT_EQUAL(cr_mc_get(mc, "k", 1, &v, &len), CR_MC_FAILED);
    CU_ASSERT(now_ms() - t0 < 1000);
    CU_ASSERT_EQUAL(cr_mc_breaker_state(mc, 0), CR_BREAKER_OPEN);
    CU_ASSERT_EQUAL(cr_mc_get(mc, "k", 1, &v, &len), CR_MC_SKIPPED);
    CU_ASSERT_EQUAL(cr_mc_set(mc, "k", 1, "v", 1, 60), CR_MC_SKIPPED);
    CU_ASSERT_EQUAL(cr_mc_breaker_changes(mc), 1);
    CU_ASSERT_EQUAL(cr_mc_failures(mc), 5);
    /* the server comes up: after the back-off one probe goes through and closes the breaker */
    pid = start_memcached(port);
    CU_ASSERT_FATAL(pid > 0);
    for (deadline = now_ms() + 5000; now_ms() < deadline; usleep(20000))
        if (cr_mc_set(mc, "k", 1, "v", 1, 60) == CR_MC_OK)
            break;
    CU_ASSERT_EQUAL(cr_mc_breaker_state(mc, 0), CR_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(cr_mc_get(mc, "k", 1, &v, &len), CR_MC_OK);
    free(v);
    CU_ASSERT(cr_mc_breaker_changes(mc) >= 3); /* open, half-open, closed (a failed probe adds two) */
    /* frozen: each call gives up within the timeout's order (20 ms connect/poll), never libmemcached's seconds */
    kill(pid, SIGSTOP);
    CU_ASSERT(wait_stopped(pid));
    t0 = now_ms();
    CU_ASSERT_EQUAL(cr_mc_get(mc, "k", 1, &v, &len), CR_MC_FAILED);
    CU_ASSERT(now_ms() - t0 < 500);
    cr_mc_free(&mc);
    stop_memcached(pid);
}

void cr_test_register_mc(void)
{
    CU_pSuite suite = CU_add_suite("tier_mc", NULL, NULL);
    CU_add_test(suite, "get, set, add, delete, incr against a real memcached", test_mc_calls);
    CU_add_test(suite, "values over the bound are neither written nor taken", test_mc_value_bound);
    CU_add_test(suite, "ketama: a 4th server takes about a quarter of the keys, only to itself", test_mc_ketama);
    CU_add_test(suite, "a dead server opens its breaker; started, it closes; frozen, calls time out", test_mc_breaker);
}
