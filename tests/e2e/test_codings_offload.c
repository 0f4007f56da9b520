/*
 * test_codings_offload.c: end-to-end test that the gzip and brotli codings of a large fill are made off the event
 * loop (on the worker pool, core/workq.c), so a corral with one traffic thread keeps answering hits while they are
 * made, and that the object stored afterwards still holds both codings.
 *
 * The coding window is observed from the outside, with raw HTTP/1.1 sockets: it opens when the leader's response
 * head arrives (the leader is answered before the codings are made), and closes when a second request for the same
 * key, sent at that moment, is answered (it waits for the store, CR_FLIGHT_AWAIT_STORE). Meanwhile a keep-alive
 * connection asks for another, already stored, key over and over; the worst of those hits' latencies is the figure.
 * With the codings on the loop that worst hit waits for most of the coding (tens of ms per MiB of random text); off
 * it, a hit waits for nothing but the loop's ordinary work.
 */
#include <CUnit/CUnit.h>
#include <brotli/decode.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"

static cr_proc_t up, corral;

static const char *template = "threads: 1\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "admin:\n"
                              "  address: 127.0.0.1:${ADMIN_PORT}\n"
                              "  token_env: CORRAL_E2E_CO_TOKEN\n"
                              "routes:\n"
                              "  - match: { prefix: /big }\n"
                              "    ttl: 60s\n"
                              "    compress: true\n"
                              "  - match: { prefix: / }\n"
                              "    ttl: 60s\n";

/* 4 MiB of pseudo-random letters and digits (test-upstream.py random=1): text that compresses, slowly. */
#define BIG_SIZE (4u << 20)
#define BIG_PATH "/big/x?size=4194304&random=1"

#define CO_TOKEN "co-token"

static int suite_init(void)
{
    setenv("CORRAL_E2E_CO_TOKEN", CO_TOKEN, 1);
    return harness_start_pair(&up, &corral, template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    int eof; /* the peer closed the connection */
} conn_t;

static int conn_open(conn_t *c, const cr_proc_t *to, const char *path, const char *extra)
{
    char req[512];
    int n;
    memset(c, 0, sizeof(*c));
    if ((c->fd = harness_connect(to->port)) < 0)
        return -1;
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n", path, to->port, extra != NULL ? extra : "");
    if (write(c->fd, req, (size_t)n) != n)
        return -1;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* Reads what has arrived (nothing blocks). Returns the bytes read so far. */
static size_t conn_drain(conn_t *c)
{
    for (;;) {
        ssize_t r;
        if (c->cap - c->len < 65536) {
            c->cap = c->cap * 2 + 65536;
            c->buf = realloc(c->buf, c->cap + 1);
        }
        r = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (r == 0)
            c->eof = 1;
        if (r <= 0)
            break;
        c->len += (size_t)r;
    }
    c->buf[c->len] = '\0';
    return c->len;
}

/* Has the whole response (head and Content-Length bytes) arrived? */
static int conn_complete(const conn_t *c)
{
    const char *eoh = c->buf != NULL ? strstr(c->buf, "\r\n\r\n") : NULL, *cl;
    if (eoh == NULL)
        return 0;
    if ((cl = strcasestr(c->buf, "\r\ncontent-length:")) == NULL || cl > eoh)
        return 1;
    return c->len - (size_t)(eoh + 4 - c->buf) >= strtoul(cl + 17, NULL, 10);
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

/* Sends a GET of `path` to `to` on c and waits until its response head has arrived (the leader has its answer: the
 * codings are being made, or about to be). 0, or -1 when it did not come by `deadline`. */
static int fill_until_head(conn_t *c, const cr_proc_t *to, const char *path, long deadline)
{
    if (conn_open(c, to, path, NULL) != 0)
        return -1;
    while (conn_drain(c), strstr(c->buf, "\r\n\r\n") == NULL) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        if (harness_now_ms() >= deadline)
            return -1;
        poll(&pfd, 1, 10);
    }
    return 0;
}

/* Reads from each open connection until its response is complete, or until `deadline`. */
static void complete_all(conn_t *a, conn_t *b, long deadline)
{
    while (((!conn_complete(a) && !a->eof) || (b != NULL && !conn_complete(b) && !b->eof)) && harness_now_ms() < deadline) {
        struct pollfd pfd[2] = {{a->fd, POLLIN, 0}, {b != NULL ? b->fd : -1, POLLIN, 0}};
        poll(pfd, 2, 10);
        conn_drain(a);
        if (b != NULL)
            conn_drain(b);
    }
}

static const char *hdr(const cr_resp_t *r, const char *name, char *buf, size_t size)
{
    const char *v = resp_header(r, name, buf, size);
    return v != NULL ? v : "";
}

/* One GET of `path` on the keep-alive connection fd (blocking, with a 10 s receive timeout). Returns its latency in
 * ms, or -1 when it failed or was not a hit. */
static double hot_hit(int fd, const char *path)
{
    char req[256], buf[8192];
    size_t len = 0;
    struct timespec t0, t1;
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path, corral.port);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    for (;;) {
        const char *eoh, *cl;
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        if ((eoh = strstr(buf, "\r\n\r\n")) != NULL && (cl = strcasestr(buf, "\r\ncontent-length:")) != NULL && cl < eoh &&
            len - (size_t)(eoh + 4 - buf) >= strtoul(cl + 17, NULL, 10))
            break;
        if (len == sizeof(buf) - 1)
            return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (strstr(buf, "corral; hit") == NULL)
        return -1;
    return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static long decode(const char *ce, const char *in, size_t len, char **out)
{
    size_t cap = BIG_SIZE + 1024;
    *out = malloc(cap);
    if (*out == NULL)
        return -1;
    if (strcmp(ce, "br") == 0)
        return BrotliDecoderDecompress(len, (const uint8_t *)in, &cap, (uint8_t *)*out) == BROTLI_DECODER_RESULT_SUCCESS
                   ? (long)cap
                   : -1;
    {
        z_stream zs;
        long n;
        memset(&zs, 0, sizeof(zs));
        if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
            return -1;
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)len;
        zs.next_out = (Bytef *)*out;
        zs.avail_out = (uInt)cap;
        n = inflate(&zs, Z_FINISH) == Z_STREAM_END ? (long)zs.total_out : -1;
        inflateEnd(&zs);
        return n;
    }
}

/* The stored object holds `ce`, a hit, and it decodes to the identity body. */
static void assert_stored_coding(const char *ce, const cr_resp_t *identity)
{
    char ceb[64], cs[128], aeh[64];
    const char *headers[] = {aeh, NULL};
    char *dec = NULL;
    cr_resp_t r;
    long n;
    snprintf(aeh, sizeof(aeh), "Accept-Encoding: %s", ce);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&corral, BIG_PATH), headers, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "content-encoding", ceb, sizeof(ceb)), ce);
    CU_ASSERT_PTR_NOT_NULL(strstr(resp_header(&r, "cache-status", cs, sizeof(cs)) != NULL ? cs : "", "corral; hit"));
    CU_ASSERT(r.body_len != 0 && r.body_len < BIG_SIZE);
    n = decode(ce, r.body, r.body_len, &dec);
    CU_ASSERT(n == (long)identity->body_len && memcmp(dec, identity->body, identity->body_len) == 0);
    free(dec);
    resp_free(&r);
}

static void test_hits_are_served_while_a_large_fill_is_coded(void)
{
    const long deadline = harness_now_ms() + 60000L * harness_time_scale();
    /* the coding on the loop: about 40 ms per MiB of random text here (brotli at quality 5 and gzip at level 6 on
     * 4 MiB: 150 ms or more, measured on a shared 2-core machine); off it a hit waits for the loop's ordinary work,
     * such as writing the leader's 4 MiB, a few ms at most. 60 ms is well below the first, well above the second. */
    const double bound_ms = 60.0 * harness_time_scale();
    conn_t leader, waiter;
    cr_resp_t identity;
    double worst = 0;
    int hot, hits = 0, head_seen = 0, window_closed = 0;
    char cs[128];

    CU_ASSERT_EQUAL_FATAL(harness_get_hit(&corral, "/hot?size=200", NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_get_hit(&corral, "/hot?size=200", NULL, NULL, 0), 1);
    hot = harness_connect(corral.port);
    CU_ASSERT_FATAL(hot >= 0);
    {
        struct timeval tv = {10, 0};
        setsockopt(hot, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    CU_ASSERT_FATAL(hot_hit(hot, "/hot?size=200") >= 0);

    waiter.fd = -1;
    waiter.buf = NULL;
    CU_ASSERT_EQUAL_FATAL(conn_open(&leader, &corral, BIG_PATH, NULL), 0);
    while (!window_closed && harness_now_ms() < deadline) {
        double ms;
        conn_drain(&leader);
        if (!head_seen) {
            struct pollfd pfd = {leader.fd, POLLIN, 0};
            if (strstr(leader.buf, "\r\n\r\n") == NULL) {
                poll(&pfd, 1, 5);
                continue;
            }
            /* the leader has its answer: the codings are being made (or about to be) */
            head_seen = 1;
            CU_ASSERT_EQUAL_FATAL(conn_open(&waiter, &corral, BIG_PATH, "Accept-Encoding: br, gzip\r\n"), 0);
        }
        if (conn_drain(&waiter) != 0 && strstr(waiter.buf, "\r\n\r\n") != NULL) {
            window_closed = 1; /* the copy with the codings is stored */
            break;
        }
        ms = hot_hit(hot, "/hot?size=200");
        if (ms < 0) {
            CU_FAIL("a hit on the keep-alive connection failed or was not a hit");
            break;
        }
        ++hits;
        if (ms > worst)
            worst = ms;
    }
    fprintf(stderr, "\n    codings window: %d hits, worst %.1f ms (bound %.0f ms)\n", hits, worst, bound_ms);
    CU_ASSERT(head_seen && window_closed);
    CU_ASSERT(hits >= 1);
    CU_ASSERT(worst < bound_ms);

    /* both answers complete: the leader's identity (stored), the waiter's br from the stored copy */
    complete_all(&leader, &waiter, deadline);
    CU_ASSERT(conn_complete(&leader) && conn_complete(&waiter));
    CU_ASSERT(strncmp(leader.buf, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(leader.buf, "fwd=uri-miss; stored"));
    CU_ASSERT(strncmp(waiter.buf, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strcasestr(waiter.buf, "\r\ncontent-encoding: br\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(waiter.buf, "corral; hit"));
    conn_close(&leader);
    conn_close(&waiter);
    close(hot);

    /* the stored object holds gzip and br, each decoding to the identity body */
    CU_ASSERT_EQUAL(http_request(&identity, CR_H1, "GET", url_of(&corral, BIG_PATH), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(identity.status, 200);
    CU_ASSERT_EQUAL(identity.body_len, BIG_SIZE);
    CU_ASSERT_PTR_NOT_NULL(strstr(resp_header(&identity, "cache-status", cs, sizeof(cs)) != NULL ? cs : "", "corral; hit"));
    assert_stored_coding("br", &identity);
    assert_stored_coding("gzip", &identity);
    resp_free(&identity);
    CU_ASSERT_EQUAL(upstream_count(&up, "/big/x"), 1);
}

/* A purge that lands while the codings are made (on the pool) wins, as it did when they were made on the loop: the
 * leader was told "stored" (it was answered first), but the copy with the codings is not stored (the fill's epoch
 * moved), so the request that comes after the purge gets the upstream's new answer, and so does the next one. The
 * coding of 4 MiB takes about 250 ms; the purge, a few. */
static void test_a_purge_during_the_codings_wins(void)
{
    const char *path = "/big/purged", *p = "/big/purged?size=4194304&random=1";
    const long deadline = harness_now_ms() + 60000L * harness_time_scale();
    const char *auth[] = {"Content-Type: application/json", "Authorization: Bearer " CO_TOKEN, NULL};
    const char *body = "{\"prefixes\": [\"/big/purged\"]}";
    char url[128], v[16], cs[128];
    conn_t leader, waiter;
    cr_resp_t r;

    upstream_set(&up, path, "hdr=X-Version:1");
    CU_ASSERT_EQUAL_FATAL(fill_until_head(&leader, &corral, p, deadline), 0);
    upstream_set(&up, path, "hdr=X-Version:2");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/purge", corral.admin_port);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "POST", url, auth, body, strlen(body)), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(conn_open(&waiter, &corral, p, "Accept-Encoding: br, gzip\r\n"), 0);
    complete_all(&leader, &waiter, deadline);
    CU_ASSERT(conn_complete(&leader) && conn_complete(&waiter));
    CU_ASSERT_PTR_NOT_NULL(strcasestr(leader.buf, "\r\nx-version: 1\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(leader.buf, "fwd=uri-miss; stored"));
    CU_ASSERT(strncmp(waiter.buf, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strcasestr(waiter.buf, "\r\nx-version: 2\r\n"));
    conn_close(&leader);
    conn_close(&waiter);

    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&corral, p), NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(hdr(&r, "x-version", v, sizeof(v)), "2");
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&r, "cache-status", cs, sizeof(cs)), "corral; hit"));
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, path), 2);
    upstream_set(&up, path, "");
}

/* SIGTERM while a fill's codings are being made on the pool: the worker drains (its job comes back, the copy is
 * stored and the flight published), the pool stops after it, and corral exits 0 with no sanitizer report (main.c
 * counts those in every corral log). The leader's answer is read to its end meanwhile. */
static void test_sigterm_while_coding(void)
{
    const long deadline = harness_now_ms() + 60000L * harness_time_scale();
    cr_proc_t up2 = {0}, c2 = {0};
    conn_t leader;
    int st = -2;

    CU_ASSERT_EQUAL_FATAL(harness_start_pair(&up2, &c2, template), 0);
    CU_ASSERT_EQUAL(fill_until_head(&leader, &c2, "/big/term?size=4194304&random=1", deadline), 0);
    CU_ASSERT_EQUAL(harness_kill(&c2, SIGTERM), 0);
    while (leader.fd >= 0 && (st = harness_wait_exit(&c2, 10)) == -2 && harness_now_ms() < deadline)
        conn_drain(&leader);
    CU_ASSERT_EQUAL(st, 0);
    complete_all(&leader, NULL, deadline); /* what was sent before the exit */
    CU_ASSERT(conn_complete(&leader));
    conn_close(&leader);
    harness_stop_pair(&up2, &c2);
}

void cr_e2e_register_codings_offload(void)
{
    CU_pSuite s = CU_add_suite("codings_offload", suite_init, suite_cleanup);
    CU_add_test(s, "hits are served while a large fill is coded", test_hits_are_served_while_a_large_fill_is_coded);
    CU_add_test(s, "a purge during the codings wins", test_a_purge_during_the_codings_wins);
    CU_add_test(s, "SIGTERM while a fill is coded", test_sigterm_while_coding);
}
