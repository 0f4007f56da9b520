/*
 * test_limits_logs.c: end-to-end tests of the log's rate limit (issue 11, log floods):
 *   - 50,000 HTTP/2 frames of an unknown type (0xfa, empty, stream 0) on one connection: libh2o's own
 *     "skipping frame" line (which it writes to stderr itself) reaches corral's log as a few records, and the rest
 *     are reported as "(N similar lines suppressed)" so that printed + suppressed is exactly 50,000; corral serves on;
 *   - 300 malformed HTTP/1.1 requests: corral's own warning (one per rejected request) likewise.
 * The flood is synchronised with a PING after it (its ACK comes once every frame before it was read); the log is
 * polled (bounded) until the counts add up, since the last summary comes when the limiter's window ends.
 */
#include <CUnit/CUnit.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define REQUIRE(cond)                                                                                                          \
    do {                                                                                                                       \
        CU_ASSERT_FATAL(cond);                                                                                                 \
    } while (0)

#define FLOOD_FRAMES 50000
#define BAD_REQUESTS 300

static const char *yaml = "threads: 2\n"
                          "listen:\n"
                          "  - address: 127.0.0.1:${PORT}\n"
                          "upstream:\n"
                          "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                          "routes:\n"
                          "  - match: { prefix: /c/ }\n"
                          "    cache: true\n"
                          "    ttl: 60s\n";

static int send_all(int fd, const char *buf, size_t len)
{
    while (len != 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads frames until a PING with the ACK flag (1), EOF, or timeout_ms. Returns 1 on the ACK, else 0. */
static int wait_ping_ack(int fd, int timeout_ms)
{
    static unsigned char buf[1 << 16];
    size_t have = 0, off;
    long deadline = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        if ((n = recv(fd, buf + have, sizeof(buf) - have, 0)) <= 0)
            return 0;
        have += (size_t)n;
        for (off = 0; have - off >= 9;) {
            size_t len = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
            if (have - off < 9 + len)
                break;
            if (buf[off + 3] == 6 && (buf[off + 4] & 1) != 0)
                return 1;
            off += 9 + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (have == sizeof(buf))
            return 0; /* a frame larger than the buffer: not from corral's SETTINGS / PING */
    }
    return 0;
}

/* Lines of log that contain `line` (printed records), and the sum of N over lines that contain `summary` followed by
 * " (N similar lines suppressed)". */
static void count_lines(const char *log, const char *line, const char *summary, long *printed, long *suppressed)
{
    const char *p, *end;
    *printed = *suppressed = 0;
    for (p = log; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
        const char *s;
        end = strchr(p, '\n');
        if (end == NULL)
            end = p + strlen(p);
        if ((s = strstr(p, summary)) != NULL && s < end) {
            const char *q = strstr(s, " similar lines suppressed)");
            const char *open = q;
            while (open != NULL && open > s && open[-1] != '(')
                --open;
            if (q != NULL && q < end && open != NULL)
                *suppressed += strtol(open, NULL, 10);
        } else if ((s = strstr(p, line)) != NULL && s < end) {
            ++*printed;
        }
    }
}

static long count_all_lines(const char *log)
{
    long n = 0;
    for (; *log != '\0'; ++log)
        n += *log == '\n';
    return n;
}

/* Polls c's log (up to 8 s) until printed + suppressed lines of one kind reach want; leaves the counts and the number
 * of lines the log grew by since `lines_before`. */
static void wait_counts(const cr_proc_t *c, const char *line, const char *summary, long want, long lines_before,
                        long *printed, long *suppressed, long *grew)
{
    long deadline = harness_now_ms() + 8000;
    char *log = NULL;
    do {
        free(log);
        if ((log = harness_read_file(c->log_path)) == NULL)
            break;
        count_lines(log, line, summary, printed, suppressed);
        *grew = count_all_lines(log) - lines_before;
        if (*printed + *suppressed >= want)
            break;
        {
            struct pollfd none = {-1, 0, 0};
            poll(&none, 0, 20); /* a bounded poll of a file that another process appends to */
        }
    } while (harness_now_ms() < deadline);
    if (*printed + *suppressed != want && log != NULL)
        fprintf(stderr, "\nlog after the flood (%ld printed, %ld suppressed):\n%.4000s\n", *printed, *suppressed, log);
    free(log);
}

static long log_lines(const cr_proc_t *c)
{
    char *log = harness_read_file(c->log_path);
    long n = log != NULL ? count_all_lines(log) : -1;
    free(log);
    return n;
}

static void check_serves(const cr_proc_t *c)
{
    cr_resp_t r;
    CU_ASSERT_EQUAL(http_get(&r, CR_H2C, url_of(c, "/c/after-flood"), NULL), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
}

static void test_unknown_frames_flood(void)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    static const unsigned char ping[17] = {0, 0, 8, 6, 0, 0, 0, 0, 0, 'f', 'l', 'o', 'o', 'd', 'e', 'n', 'd'};
    cr_proc_t up, c;
    char *frames;
    long before, printed, suppressed, grew;
    size_t i;
    int fd;

    REQUIRE(harness_start_pair(&up, &c, yaml) == 0);
    check_serves(&c);
    before = log_lines(&c);
    REQUIRE((frames = calloc(FLOOD_FRAMES, 9)) != NULL);
    for (i = 0; i != FLOOD_FRAMES; ++i)
        frames[i * 9 + 3] = (char)0xfa; /* length 0, type 0xfa, flags 0, stream 0 */
    REQUIRE((fd = harness_connect(c.port)) >= 0);
    CU_ASSERT_EQUAL(send_all(fd, preface, sizeof(preface) - 1), 0);
    CU_ASSERT_EQUAL(send_all(fd, (const char *)settings, sizeof(settings)), 0);
    CU_ASSERT_EQUAL(send_all(fd, frames, (size_t)FLOOD_FRAMES * 9), 0);
    CU_ASSERT_EQUAL(send_all(fd, (const char *)ping, sizeof(ping)), 0);
    CU_ASSERT_EQUAL(wait_ping_ack(fd, 20000), 1); /* every frame was read */
    free(frames);

    wait_counts(&c, "[warn] libh2o: skipping frame (type:250)", "[warn] libh2o: skipping frame (type:%d)", FLOOD_FRAMES,
                before, &printed, &suppressed, &grew);
    CU_ASSERT_EQUAL(printed + suppressed, FLOOD_FRAMES);
    CU_ASSERT(printed >= 1);
    CU_ASSERT(suppressed >= FLOOD_FRAMES / 2);
    CU_ASSERT(grew >= 2 && grew <= 100); /* a few records, not 50,000 */
    close(fd);
    check_serves(&c);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &c), 0);
}

static void test_rejected_requests_flood(void)
{
    cr_proc_t up, c;
    long before, printed, suppressed, grew;
    int i, sent = 0;

    REQUIRE(harness_start_pair(&up, &c, yaml) == 0);
    before = log_lines(&c);
    for (i = 0; i != BAD_REQUESTS; ++i) {
        static const char bad[] = "GET /flood\x01 HTTP/1.1\r\nHost: a\r\n\r\n";
        char buf[4096];
        int fd = harness_connect(c.port);
        if (fd < 0)
            continue;
        if (send_all(fd, bad, sizeof(bad) - 1) == 0) {
            long deadline = harness_now_ms() + 5000;
            while (harness_now_ms() < deadline) { /* corral answers 400 and closes */
                struct pollfd pfd = {fd, POLLIN, 0};
                if (poll(&pfd, 1, 50) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
                    break;
            }
            ++sent;
        }
        close(fd);
    }
    CU_ASSERT_EQUAL(sent, BAD_REQUESTS);
    wait_counts(&c, "[warn] client request rejected (400): ", "[warn] client request rejected (400): %s", BAD_REQUESTS, before,
                &printed, &suppressed, &grew);
    CU_ASSERT_EQUAL(printed + suppressed, BAD_REQUESTS);
    CU_ASSERT(printed >= 1);
    CU_ASSERT(suppressed >= 1);
    CU_ASSERT(grew >= 2 && grew <= 100);
    check_serves(&c);
    CU_ASSERT_EQUAL(harness_stop_pair(&up, &c), 0);
}

void cr_e2e_register_limits_logs(void)
{
    CU_pSuite s = CU_add_suite("limits_logs", NULL, NULL);
    CU_add_test(s, "50,000 unknown HTTP/2 frames: libh2o's line is rate-limited with a suppressed count, corral serves",
                test_unknown_frames_flood);
    CU_add_test(s, "300 malformed requests: corral's own warning is rate-limited with a suppressed count", test_rejected_requests_flood);
}
