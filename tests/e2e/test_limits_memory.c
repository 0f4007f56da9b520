/*
 * test_limits_memory.c: end-to-end tests that slow readers cannot make corral hold memory in proportion to what it
 * sends them: a pass response is buffered up to limits.response_buffer, a stored object held only in the upstream's
 * gzip is decoded a window at a time as the client takes it, and a stored gzip bomb (a few hundred KB that inflate
 * to 400 MB) is never inflated for anyone: identity clients get its stored coding.
 *
 * Slow readers are raw sockets with a 4 KiB receive buffer that read nothing, or 1 KiB per 100 ms; HTTP/2 ones
 * open a window of 2^31-1 (connection and stream), so only corral's own bound keeps it from buffering. corral's
 * memory is VmRSS from /proc/<pid>/status (the harness's child is corral itself: its huge-page re-exec keeps the
 * PID), sampled every 100 ms while the readers sit there. Bounds are generous for allocator slack and tight against
 * the failures they catch (before the fixes: about 6 MB per slow pass reader, 5 MB per slow reader of a decoded
 * object, 17 MB per slow reader of the bomb). Growth over the RSS before the readers is bounded in every build, the
 * absolute RSS only without sanitizers. Each test runs for a few seconds; every socket is closed by the test.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define RESPONSE_BUFFER (256 * 1024)
#define BIG_SIZE 50000000L      /* the big pass response */
#define DECODED_SIZE 7000000L   /* the gzip object decoded for identity clients, under max_object_size */
#define BOMB_SIZE "400000000"   /* the bomb's decoded size */
#define MAX_READERS 64

/* A sanitizer build (make SANITIZE=...) builds this binary and corral alike. ASan's shadow memory and allocator make
 * absolute RSS meaningless there: only growth is bounded, with ASan's quarantine of freed blocks turned off for
 * corral (it would keep every freed buffer resident). */
#if defined(__SANITIZE_ADDRESS__)
#define CR_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CR_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CR_SANITIZED 1
#endif
#ifndef CR_SANITIZED
#define CR_SANITIZED 0
#endif

static cr_proc_t up, corral;

static const char *template = "threads: 2\n"
                              "listen:\n"
                              "  - address: 127.0.0.1:${PORT}\n"
                              "upstream:\n"
                              "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                              "  max_connections: 128\n"
                              "cache:\n"
                              "  max_object_size: 8MiB\n"
                              "limits:\n"
                              "  response_buffer: 256KiB\n"
                              "routes:\n"
                              "  - match: { prefix: /pass }\n"
                              "    cache: false\n"
                              "  - match: { prefix: / }\n"
                              "    ttl: 60s\n";

/* The test upstream's filler body (tools/test-upstream.py FILLER, repeated and cut at n). */
static const char FILLER[] = "{\"seq\":0,\"filler\":\"abcdefghijklmnopqrstuvwxyz0123456789\",\"more\":[1,2,3,4,5,6,7,8,9]}\n";

static int is_filler(const char *body, size_t len, size_t expected_len)
{
    size_t i, flen = sizeof(FILLER) - 1;
    if (len != expected_len)
        return 0;
    for (i = 0; i < len; ++i)
        if (body[i] != FILLER[i % flen])
            return 0;
    return 1;
}

static int suite_init(void)
{
    char *saved = getenv("ASAN_OPTIONS") != NULL ? strdup(getenv("ASAN_OPTIONS")) : NULL, opts[512];
    int rc;
    if (CR_SANITIZED) {
        snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0", saved != NULL ? saved : "", saved != NULL ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    rc = harness_start_pair(&up, &corral, template);
    if (CR_SANITIZED) {
        if (saved != NULL)
            setenv("ASAN_OPTIONS", saved, 1);
        else
            unsetenv("ASAN_OPTIONS");
    }
    free(saved);
    return rc;
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* corral's VmRSS in KiB, or -1. */
static long rss_kb(void)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)corral.pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len != 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A socket with a 4 KiB receive buffer (set before connecting, so the window stays small), connected to corral. */
static int slow_connect(void)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)corral.port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* HPACK literal header field without indexing, new name, no Huffman (names and values under 127 bytes). */
static size_t hpack_literal(unsigned char *out, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), o = 0;
    out[o++] = 0x00;
    out[o++] = (unsigned char)nl;
    memcpy(out + o, name, nl);
    o += nl;
    out[o++] = (unsigned char)vl;
    memcpy(out + o, value, vl);
    return o + vl;
}

/* Opens a slow reader of GET path: HTTP/1.1, or h2c with prior knowledge and windows of 2^31-1. accept_encoding may be
 * NULL (no header). Returns the socket or -1. */
static int slow_open(int h2, const char *path, const char *accept_encoding)
{
    unsigned char buf[1024];
    char authority[32];
    size_t o = 0, hb;
    int fd = slow_connect();

    if (fd < 0)
        return -1;
    snprintf(authority, sizeof(authority), "127.0.0.1:%d", corral.port); /* as libcurl sends it: the same cache key */
    if (!h2) {
        int n = snprintf((char *)buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n", path, authority,
                         accept_encoding != NULL ? "Accept-Encoding: " : "", accept_encoding != NULL ? accept_encoding : "",
                         accept_encoding != NULL ? "\r\n" : "");
        o = (size_t)n;
    } else {
        memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
        o = 24;
        /* SETTINGS: INITIAL_WINDOW_SIZE = 2^31-1 */
        o += harness_h2_frame_header(buf + o, 6, 0x4, 0, 0);
        buf[o++] = 0x00, buf[o++] = 0x04, buf[o++] = 0x7f, buf[o++] = 0xff, buf[o++] = 0xff, buf[o++] = 0xff;
        /* WINDOW_UPDATE on the connection up to 2^31-1 */
        o += harness_h2_frame_header(buf + o, 4, 0x8, 0, 0);
        buf[o++] = 0x7f, buf[o++] = 0xff, buf[o++] = 0x00, buf[o++] = 0x00;
        /* HEADERS, END_STREAM | END_HEADERS, stream 1 */
        hb = o;
        o += 9;
        o += hpack_literal(buf + o, ":method", "GET");
        o += hpack_literal(buf + o, ":scheme", "http");
        o += hpack_literal(buf + o, ":authority", authority);
        o += hpack_literal(buf + o, ":path", path);
        if (accept_encoding != NULL)
            o += hpack_literal(buf + o, "accept-encoding", accept_encoding);
        harness_h2_frame_header(buf + hb, o - hb - 9, 0x1, 0x5, 1);
    }
    if (send_all(fd, buf, o) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Opens n slow readers of path (half HTTP/1.1, half h2c), keeps them for ms milliseconds (the odd ones read 1 KiB per
 * 100 ms, the others nothing), and returns the highest VmRSS (KiB) seen meanwhile; the readers stay open in fds[]
 * for the caller to use and close. Returns -1 when a reader could not be opened.
 */
static long hold_slow_readers(int *fds, int n, const char *path, const char *accept_encoding, long ms)
{
    long peak = 0, start;
    int i;

    for (i = 0; i != n; ++i)
        if ((fds[i] = slow_open(i % 2, path, accept_encoding)) < 0)
            return -1;
    start = harness_now_ms();
    while (harness_now_ms() - start < ms) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        long r = rss_kb();
        char junk[1024];
        if (r > peak)
            peak = r;
        for (i = 1; i < n; i += 2)
            (void)recv(fds[i], junk, sizeof(junk), MSG_DONTWAIT);
        nanosleep(&ts, NULL); /* a sampling period, not synchronisation */
    }
    return peak;
}

static void close_all(int *fds, int n)
{
    int i;
    for (i = 0; i != n; ++i)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Every byte of the response (here: nothing) was received so far on fd: at least `want` bytes arrive within ms. */
static long drain_some(int fd, long want, long ms)
{
    char buf[65536];
    long got = 0, start = harness_now_ms();
    while (got < want && harness_now_ms() - start < ms) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            got += n;
        } else if (n == 0) {
            break;
        } else {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return got;
}

static void test_slow_pass_readers_are_bounded_and_fast_clients_get_every_byte(void)
{
    char path[128];
    int fds[MAX_READERS], n = 50, i;
    long base, peak, bound_kb = (long)n * RESPONSE_BUFFER / 1024 + 64 * 1024;
    cr_resp_t r;

    snprintf(path, sizeof(path), "/pass/big?size=%ld&stream=1", BIG_SIZE);
    /* warm up: one whole response, so pools and the first upstream connections exist */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), NULL), 0);
    CU_ASSERT_TRUE(is_filler(r.body, r.body_len, (size_t)BIG_SIZE));
    resp_free(&r);
    base = rss_kb();
    CU_ASSERT(base > 0);

    for (i = 0; i != MAX_READERS; ++i)
        fds[i] = -1;
    peak = hold_slow_readers(fds, n, path, NULL, 3000);
    printf("\n    50 slow pass readers: VmRSS %ld KiB before, peak %ld KiB (bound %ld KiB, %.2f MiB per reader)\n", base, peak,
           bound_kb, (double)(peak - base) / 1024.0 / n);
    CU_ASSERT(peak > 0);
    CU_ASSERT(CR_SANITIZED || peak < bound_kb);
    /* under TSan its shadow memory (about 4x what it covers) grows with the heap: 5x the allowance */
    CU_ASSERT(peak - base < ((long)n * RESPONSE_BUFFER / 1024 + 32 * 1024) * (harness_under_tsan() ? 5 : 1));

    /* while they sit there, normal clients get every byte, over HTTP/1.1 and h2c */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_TRUE(is_filler(r.body, r.body_len, (size_t)BIG_SIZE));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&corral, path), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_TRUE(is_filler(r.body, r.body_len, (size_t)BIG_SIZE));
    resp_free(&r);

    /* a slow reader was paused, not dropped: once it reads, its response keeps coming */
    CU_ASSERT(drain_some(fds[0], 4L << 20, 5000) >= 4L << 20);
    close_all(fds, n);
}

static void test_decoding_for_identity_clients_is_windowed(void)
{
    char path[128], ce[64];
    int fds[MAX_READERS], n = 20, i;
    long base, peak;
    const char *gz[] = {"Accept-Encoding: gzip", NULL};
    cr_resp_t r;

    snprintf(path, sizeof(path), "/gz/a?gzip=1&size=%ld", DECODED_SIZE);
    /* stored as the upstream's gzip */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), gz), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "content-encoding", ce, sizeof(ce)) ? ce : "", "gzip");
    CU_ASSERT(r.body_len < (size_t)DECODED_SIZE / 10);
    resp_free(&r);
    /* an identity client gets it decoded, every byte */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), NULL), 0);
    CU_ASSERT_PTR_NULL(resp_header(&r, "content-encoding", ce, sizeof(ce)));
    CU_ASSERT_TRUE(is_filler(r.body, r.body_len, (size_t)DECODED_SIZE));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&corral, path), NULL), 0);
    CU_ASSERT_TRUE(is_filler(r.body, r.body_len, (size_t)DECODED_SIZE));
    resp_free(&r);
    base = rss_kb();

    for (i = 0; i != MAX_READERS; ++i)
        fds[i] = -1;
    peak = hold_slow_readers(fds, n, path, NULL, 2000);
    printf("\n    20 slow identity readers of a %ld-byte decoded object: VmRSS %ld KiB before, peak %ld KiB (%.2f MiB per reader)\n",
           DECODED_SIZE, base, peak, (double)(peak - base) / 1024.0 / n);
    CU_ASSERT(peak > 0);
    CU_ASSERT(peak - base < (long)n * 1024); /* under 1 MiB per reader (5 MB each when a piece decoded at once) */
    CU_ASSERT(drain_some(fds[0], 1L << 20, 5000) >= 1L << 20); /* decoding goes on as it reads */
    close_all(fds, n);
    CU_ASSERT_EQUAL(upstream_count(&up, "/gz/a"), 1);
}

static void test_a_stored_gzip_bomb_is_sent_in_its_coding(void)
{
    const char *path = "/bomb/a?bomb=" BOMB_SIZE;
    const char *gz[] = {"Accept-Encoding: gzip", NULL}, *id[] = {"Accept-Encoding: identity", NULL},
               *refuse[] = {"Accept-Encoding: gzip;q=0", NULL};
    char ce[64], vary[128], cs[256];
    int fds[MAX_READERS], n = 20, i;
    long base, peak;
    cr_resp_t stored, r;

    /* the upstream makes the bomb once per size: made here, straight from it, so corral's fill below is quick (a fill
     * slower than the route's coalesce timeout would also send its leader upstream, a second time) */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&up, "/bomb/warm?bomb=" BOMB_SIZE), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);

    CU_ASSERT_EQUAL(http_get(&stored, CR_H1, url_of(&corral, path), gz), 0);
    CU_ASSERT_EQUAL(stored.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&stored, "content-encoding", ce, sizeof(ce)) ? ce : "", "gzip");
    CU_ASSERT(stored.body_len > 100000 && stored.body_len < 1000000);

    /* no Accept-Encoding, and "identity": the stored gzip as it is, from the cache */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "content-encoding", ce, sizeof(ce)) ? ce : "", "gzip");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "vary", vary, sizeof(vary)) ? vary : "", "accept-encoding");
    CU_ASSERT_PTR_NOT_NULL(strstr(resp_header(&r, "cache-status", cs, sizeof(cs)) ? cs : "", "hit"));
    CU_ASSERT_TRUE(r.body_len == stored.body_len && memcmp(r.body, stored.body, r.body_len) == 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(&corral, path), id), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "content-encoding", ce, sizeof(ce)) ? ce : "", "gzip");
    CU_ASSERT_TRUE(r.body_len == stored.body_len && memcmp(r.body, stored.body, r.body_len) == 0);
    resp_free(&r);
    /* a client that refuses gzip by name is told so */
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), refuse), 0);
    CU_ASSERT_EQUAL(r.status, 406);
    resp_free(&r);

    base = rss_kb();
    for (i = 0; i != MAX_READERS; ++i)
        fds[i] = -1;
    peak = hold_slow_readers(fds, n, path, NULL, 2000);
    printf("\n    20 slow identity readers of a stored gzip bomb (%zu bytes, " BOMB_SIZE
           " decoded): VmRSS %ld KiB before, peak %ld KiB\n",
           stored.body_len, base, peak);
    CU_ASSERT(peak > 0);
    CU_ASSERT(CR_SANITIZED || peak < 100 * 1024);
    CU_ASSERT(peak - base < (long)n * 1024);
    /* what a reader gets is the stored coding, not more */
    CU_ASSERT(drain_some(fds[0], (long)stored.body_len, 5000) >= (long)stored.body_len);
    close_all(fds, n);
    resp_free(&stored);
    if (upstream_count(&up, "/bomb/a") != 1) {
        char *log = upstream_log(&up, "/bomb/a");
        fprintf(stderr, "upstream log of /bomb/a: %s\n", log != NULL ? log : "(none)");
        free(log);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/bomb/a"), 1);
}

/* Content-Encoding: gzip on bytes that are not gzip: stored as received, and sent as received (decoding would fail
 * mid-body), to identity clients too. */
static void test_a_corrupt_stored_coding_is_sent_as_received(void)
{
    const char *path = "/bomb/corrupt?size=3000&hdr=Content-Encoding:gzip";
    const char *gz[] = {"Accept-Encoding: gzip", NULL};
    char ce[64];
    cr_resp_t first, r;

    CU_ASSERT_EQUAL(http_get(&first, CR_H1, url_of(&corral, path), gz), 0);
    CU_ASSERT_EQUAL(first.status, 200);
    CU_ASSERT_TRUE(is_filler(first.body, first.body_len, 3000));
    CU_ASSERT_EQUAL(http_get(&r, CR_H1, url_of(&corral, path), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "content-encoding", ce, sizeof(ce)) ? ce : "", "gzip");
    CU_ASSERT_TRUE(is_filler(r.body, r.body_len, 3000));
    resp_free(&r);
    resp_free(&first);
    CU_ASSERT_EQUAL(upstream_count(&up, "/bomb/corrupt"), 1);
}

void cr_e2e_register_limits_memory(void)
{
    CU_pSuite s = CU_add_suite("limits memory", suite_init, suite_cleanup);
    /* the pass test last: memory it frees stays resident and would hide the others' growth */
    CU_add_test(s, "decoding for identity clients goes a window at a time", test_decoding_for_identity_clients_is_windowed);
    CU_add_test(s, "a stored gzip bomb is sent in its coding, never inflated", test_a_stored_gzip_bomb_is_sent_in_its_coding);
    CU_add_test(s, "a corrupt stored coding is sent as received", test_a_corrupt_stored_coding_is_sent_as_received);
    CU_add_test(s, "slow pass readers stay within response_buffer; fast clients get every byte",
                test_slow_pass_readers_are_bounded_and_fast_clients_get_every_byte);
}
