/*
 * test_guard.c: end-to-end test of the HTTP/2 Rapid Reset guard (CVE-2023-44487).
 *
 * A raw HTTP/2 client (frames written by hand: preface, SETTINGS, then HEADERS + RST_STREAM pairs) opens and cancels
 * streams as fast as it can on one connection, each for a slow pass-through path. corral must stop sending those to
 * the upstream once the connection is over its budget, answer them 429, stay up, and keep serving other connections.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define RESETS 1000

static cr_proc_t up, corral;

static const char *template = "threads: 1\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "  max_connections: 1024\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "routes:\n"
                              "  - match: { prefix: /pass }\n"
                              "    cache: false\n";

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* HEADERS (END_STREAM | END_HEADERS) for GET path, then RST_STREAM(CANCEL). HPACK: static-table indices for :method GET
 * and :scheme http, literal values without indexing for :path (name index 4) and :authority (name index 1). */
static size_t headers_and_reset(unsigned char *buf, uint32_t stream, const char *path, const char *authority)
{
    size_t off = harness_h2_get_headers(buf, stream, path, authority);
    off += harness_h2_frame_header(buf + off, 4, 0x3, 0x0, stream);
    buf[off++] = 0;
    buf[off++] = 0;
    buf[off++] = 0;
    buf[off++] = 0x8; /* CANCEL */
    return off;
}

/* Reads and discards whatever the server sent, without blocking. */
static void drain(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len != 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EAGAIN) {
                struct pollfd pfd = {fd, POLLOUT | POLLIN, 0};
                poll(&pfd, 1, 1000);
                drain(fd);
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}


static void test_rapid_reset_is_cut_off(void)
{
    static const unsigned char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    unsigned char settings[9], *buf = malloc(RESETS * 128);
    char authority[64];
    size_t len = 0;
    int fd = harness_connect(corral.port), i;
    cr_resp_t r;
    long upstream_seen, rejected;

    CU_ASSERT_FATAL(fd >= 0 && buf != NULL);
    snprintf(authority, sizeof(authority), "127.0.0.1:%d", corral.port);
    for (i = 0; i != RESETS; ++i)
        len += headers_and_reset(buf + len, 2 * (uint32_t)i + 1, "/pass/rr?delay=2000", authority);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    CU_ASSERT_EQUAL(write_all(fd, preface, sizeof(preface) - 1), 0);
    CU_ASSERT_EQUAL(write_all(fd, settings, harness_h2_frame_header(settings, 0, 0x4, 0, 0)), 0);
    CU_ASSERT_EQUAL(write_all(fd, buf, len), 0);
    /* wait (bounded) until corral has processed every stream: accepted + rejected covers them all */
    for (i = 0; i != 500; ++i) {
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, 10);
        drain(fd);
        if (harness_metric(&corral, "corral_requests_total") >= RESETS)
            break;
    }
    close(fd);
    free(buf);

    rejected = harness_metric(&corral, "corral_guard_rejections_total");
    CU_ASSERT(rejected >= RESETS - 200 - 50);
    upstream_seen = upstream_count(&up, "/pass/rr");
    CU_ASSERT(upstream_seen <= 200 + 50);
    CU_ASSERT_EQUAL(kill(corral.pid, 0), 0);

    /* other connections are unaffected */
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&corral, "/pass/ok"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
}

void cr_e2e_register_guard(void)
{
    CU_pSuite s = CU_add_suite("rapid reset guard", suite_init, suite_cleanup);
    CU_add_test(s, "a connection that keeps cancelling streams is cut off", test_rapid_reset_is_cut_off);
}
