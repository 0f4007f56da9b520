/*
 * test_log.c: unit tests for log.c: one call is one line, whatever bytes the message holds (control bytes and
 * invalid UTF-8 escaped as \xNN, valid UTF-8 kept), and a long message is cut without splitting an escape.
 * The rate limiter (fake clock): a site prints CR_LOG_BURST lines a window, the rest are counted and handed out
 * exactly once (with the site's next printed line or as an expired summary), sites are independent, sites past the
 * table share one budget, and threads racing on one site neither print more than the burst nor lose a count. The
 * process's log: a flood from one call site writes the burst and then one summary line; libh2o's own writes to
 * stderr come out as corral records (stderr_interpose.c), and everyone else's stderr writes pass untouched.
 * stderr is redirected to a pipe for each test and restored afterwards.
 */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <h2o/memory.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "corral/core/log.h"
#include "corral/core/stderr_interpose.h"

/* Runs one cr_log_info("%s", msg) with stderr on a pipe; the line written goes to out (NUL-terminated). */
static size_t capture(const char *msg, char *out, size_t outsize)
{
    int p[2], saved = dup(2);
    ssize_t n;
    CU_ASSERT_FATAL(saved >= 0 && pipe(p) == 0);
    dup2(p[1], 2);
    cr_log_info("%s", msg);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    n = read(p[0], out, outsize - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void test_escapes(void)
{
    char out[4096];
    const char *msg;
    size_t n = capture("key a\nb\r\x01\x1b[31m\x7f caf\xc3\xa9 \xff\xc3( \xed\xa0\x80 end", out, sizeof(out));
    CU_ASSERT(n > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[info] "));
    msg = strstr(out, "[info] ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_STRING_EQUAL(msg + 7, "key a\\x0ab\\x0d\\x01\\x1b[31m\\x7f caf\xc3\xa9 \\xff\\xc3( \\xed\\xa0\\x80 end\n");
    CU_ASSERT_PTR_NULL(memchr(out, '\n', n - 1)); /* one line */
}

static void test_long_line(void)
{
    static char msg[3000], out[8192];
    size_t n, i;
    for (i = 0; i != sizeof(msg) - 1; ++i)
        msg[i] = '\n';
    n = capture(msg, out, sizeof(out));
    CU_ASSERT(n > 100 && n <= 2048);
    CU_ASSERT_EQUAL(out[n - 1], '\n');
    CU_ASSERT_PTR_NULL(memchr(out, '\n', n - 1));
    /* cut at an escape boundary: the message part is whole "\x0a" groups */
    CU_ASSERT_EQUAL((n - 1 - (size_t)(strstr(out, "[info] ") + 7 - out)) % 4, 0);
}

/* ---- the rate limiter, on a fake clock ---- */

static int admit_at(cr_log_limiter_t *lim, uintptr_t site, uint64_t now, uint64_t *report)
{
    cr_log_template_t t = {site, "warn", NULL, "tmpl %d", 7};
    const cr_log_template_t *reported;
    int ok = cr_log_limiter_admit(lim, &t, now, report, &reported);
    CU_ASSERT_PTR_NOT_NULL(reported);
    return ok;
}

static void test_limiter_window(void)
{
    static cr_log_limiter_t lim;
    cr_log_summary_t out[4];
    uint64_t report, t0 = 5 * CR_LOG_WINDOW_MS + 10;
    int i, printed = 0;

    memset(&lim, 0, sizeof(lim));
    for (i = 0; i != 100; ++i) {
        int ok = admit_at(&lim, 0x1000, t0, &report);
        printed += ok;
        CU_ASSERT_EQUAL(report, 0);
        CU_ASSERT_EQUAL(ok, i < CR_LOG_BURST); /* the first BURST lines, then none */
    }
    CU_ASSERT_EQUAL(printed, CR_LOG_BURST);
    /* another site has its own budget */
    CU_ASSERT_EQUAL(admit_at(&lim, 0x2000, t0, &report), 1);
    CU_ASSERT_EQUAL(report, 0);
    /* nothing expires inside the window */
    CU_ASSERT_EQUAL(cr_log_limiter_expired(&lim, t0 + CR_LOG_WINDOW_MS / 2, out, 4), 0);
    /* after it: the count, once */
    CU_ASSERT_EQUAL(cr_log_limiter_expired(&lim, t0 + CR_LOG_WINDOW_MS, out, 4), 1);
    CU_ASSERT_EQUAL(out[0].suppressed, 100 - CR_LOG_BURST);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out[0].t);
    CU_ASSERT_EQUAL(out[0].t->site, 0x1000);
    CU_ASSERT_STRING_EQUAL(out[0].t->tmpl, "tmpl %d");
    CU_ASSERT_STRING_EQUAL(out[0].t->level, "warn");
    CU_ASSERT_EQUAL(cr_log_limiter_expired(&lim, t0 + 5 * CR_LOG_WINDOW_MS, out, 4), 0);
    CU_ASSERT_EQUAL(lim.suppressed_total, 100 - CR_LOG_BURST);

    /* or the count comes with the site's next printed line, and then not again */
    for (i = 0; i != CR_LOG_BURST + 7; ++i)
        admit_at(&lim, 0x1000, t0 + 3 * CR_LOG_WINDOW_MS, &report);
    CU_ASSERT_EQUAL(admit_at(&lim, 0x1000, t0 + 4 * CR_LOG_WINDOW_MS, &report), 1);
    CU_ASSERT_EQUAL(report, 7);
    CU_ASSERT_EQUAL(cr_log_limiter_expired(&lim, t0 + 9 * CR_LOG_WINDOW_MS, out, 4), 0);
    /* the new window has its whole burst (the line above was its first) */
    for (i = 1, printed = 1; i != CR_LOG_BURST + 5; ++i)
        printed += admit_at(&lim, 0x1000, t0 + 4 * CR_LOG_WINDOW_MS + 1, &report);
    CU_ASSERT_EQUAL(printed, CR_LOG_BURST);
}

static void test_limiter_table_full(void)
{
    static cr_log_limiter_t lim;
    cr_log_summary_t out[CR_LOG_SITES + 1];
    uint64_t report, sum = 0;
    size_t i, n;
    int printed = 0;

    memset(&lim, 0, sizeof(lim));
    /* 4 x CR_LOG_SITES distinct sites, 3 lines each: every tracked site prints its 3, the rest share one budget */
    for (i = 0; i != 4 * CR_LOG_SITES; ++i) {
        printed += admit_at(&lim, 0x10000 + i * 64, 0, &report);
        printed += admit_at(&lim, 0x10000 + i * 64, 0, &report);
        printed += admit_at(&lim, 0x10000 + i * 64, 0, &report);
    }
    CU_ASSERT(printed <= 3 * CR_LOG_SITES + CR_LOG_BURST);
    CU_ASSERT(printed >= 3 * CR_LOG_SITES / 2); /* a table of its size holds most of them */
    n = cr_log_limiter_expired(&lim, CR_LOG_WINDOW_MS, out, CR_LOG_SITES + 1);
    for (i = 0; i != n; ++i)
        sum += out[i].suppressed;
    CU_ASSERT_EQUAL(sum + (uint64_t)printed, 3 * 4 * CR_LOG_SITES); /* nothing lost */
    CU_ASSERT(n >= 1);
    CU_ASSERT_PTR_NULL(out[n - 1].t->tmpl); /* the shared slot has no template */
}

typedef struct {
    cr_log_limiter_t *lim;
    int printed;
    uint64_t reported;
} ts_log_race_t;

static void *race_main(void *arg)
{
    ts_log_race_t *r = arg;
    uint64_t report;
    int i;
    for (i = 0; i != 20000; ++i) {
        /* two windows: each thread's count in the first may be reported with a line of the second */
        r->printed += admit_at(r->lim, 0x3000, i < 10000 ? 0 : CR_LOG_WINDOW_MS, &report);
        r->reported += report;
    }
    return NULL;
}

static void test_limiter_threads(void)
{
    static cr_log_limiter_t lim;
    ts_log_race_t r[4];
    pthread_t tid[4];
    cr_log_summary_t out[2];
    uint64_t reported = 0;
    size_t i, n;
    int printed = 0;

    memset(&lim, 0, sizeof(lim));
    for (i = 0; i != 4; ++i) {
        r[i] = (ts_log_race_t){&lim, 0, 0};
        CU_ASSERT_FATAL(pthread_create(&tid[i], NULL, race_main, &r[i]) == 0);
    }
    for (i = 0; i != 4; ++i) {
        pthread_join(tid[i], NULL);
        printed += r[i].printed;
        reported += r[i].reported;
    }
    /* threads run one after another as easily as together: some window may see fewer lines, none more */
    CU_ASSERT(printed >= CR_LOG_BURST && printed <= 2 * CR_LOG_BURST);
    n = cr_log_limiter_expired(&lim, 2 * CR_LOG_WINDOW_MS, out, 2);
    for (i = 0; i != n; ++i)
        reported += out[i].suppressed;
    CU_ASSERT_EQUAL(reported + (uint64_t)printed, 4 * 20000);
    CU_ASSERT_EQUAL(lim.suppressed_total, reported);
}

/* ---- the process's log ---- */

/* Reads what arrives on fd until `want` appears or timeout_ms passes; NUL-terminates. Returns the bytes read. */
static size_t read_until(int fd, char *out, size_t outsize, const char *want, int timeout_ms)
{
    struct timespec t0, t;
    size_t have = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out[0] = '\0';
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        long ms;
        clock_gettime(CLOCK_MONOTONIC, &t);
        ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if ((want != NULL && strstr(out, want) != NULL) || ms >= timeout_ms || have + 1 >= outsize)
            break;
        if (poll(&pfd, 1, (int)(timeout_ms - ms)) > 0) {
            ssize_t n = read(fd, out + have, outsize - 1 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            out[have] = '\0';
        }
    }
    return have;
}

static size_t count_of(const char *s, const char *what)
{
    size_t n = 0;
    for (; (s = strstr(s, what)) != NULL; ++s)
        ++n;
    return n;
}

static void test_log_flood(void)
{
    static char out[1 << 16];
    int p[2], saved = dup(2), i;
    uint64_t before = cr_log_suppressed_total();
    char want[64];

    CU_ASSERT_FATAL(saved >= 0 && pipe(p) == 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    dup2(p[1], 2);
    for (i = 0; i != 500; ++i)
        cr_log_warn("flood line %d", i); /* one call site */
    cr_log_info("another site"); /* its own budget */
    /* the flusher reports the rest once the window is over */
    snprintf(want, sizeof(want), "(%d similar lines suppressed)", 500 - CR_LOG_BURST);
    read_until(p[0], out, sizeof(out), "similar lines suppressed)\n", 3 * CR_LOG_WINDOW_MS);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    close(p[0]);
    CU_ASSERT_EQUAL(count_of(out, "[warn] flood line "), CR_LOG_BURST + 1); /* the burst and the summary */
    CU_ASSERT_EQUAL(count_of(out, "[info] another site\n"), 1);
    CU_ASSERT_EQUAL(count_of(out, "[warn] flood line %d ("), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    if (strstr(out, want) == NULL)
        fprintf(stderr, "\nwanted %s in:\n%s\n", want, out);
    CU_ASSERT_EQUAL(cr_log_suppressed_total() - before, 500 - CR_LOG_BURST);
}

static void test_libh2o_stderr_routed(void)
{
    static char out[8192];
    int p[2], saved = dup(2);

    CU_ASSERT_EQUAL(cr_stderr_interpose_active(), 1);
    CU_ASSERT_FATAL(saved >= 0 && pipe(p) == 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    dup2(p[1], 2);
    h2o_dump_memory(stderr, "AB\\n", 3);   /* libh2o's fprintf(stderr, ...): corral records */
    fwrite("plain\n", 1, 6, stderr);       /* not libh2o's: passed through as it is */
    fprintf(stderr, "fmt %d\n", 7);
    read_until(p[0], out, sizeof(out), "fmt 7\n", 1000);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    close(p[0]);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Z [warn] libh2o: 00000000\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Z [warn] libh2o:  41\n")); /* " %02x" */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nplain\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nfmt 7\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "] plain"));
}

/* log.level: lines under it are not written; the level can change at any time */
static void test_level(void)
{
    char out[4096];
    CU_ASSERT_EQUAL(cr_log_get_level(), CR_LOG_INFO);
    cr_log_set_level(CR_LOG_WARN);
    CU_ASSERT_EQUAL(capture("an info line under warn", out, sizeof(out)), 0);
    cr_log_set_level(CR_LOG_DEBUG);
    CU_ASSERT(capture("an info line under debug", out, sizeof(out)) != 0);
    CU_ASSERT(strstr(out, "[info] an info line under debug") != NULL);
    cr_log_set_level(CR_LOG_INFO);
    CU_ASSERT(capture("an info line under info", out, sizeof(out)) != 0);
}

void cr_test_register_log(void)
{
    CU_pSuite s = CU_add_suite("log", NULL, NULL);
    CU_add_test(s, "control bytes and invalid UTF-8 escaped, one line", test_escapes);
    CU_add_test(s, "a long message is cut, still one line", test_long_line);
    CU_add_test(s, "limiter: a burst a window, the rest counted and reported once", test_limiter_window);
    CU_add_test(s, "limiter: sites past the table share one budget, nothing lost", test_limiter_table_full);
    CU_add_test(s, "limiter: threads on one site", test_limiter_threads);
    CU_add_test(s, "a flood from one call site: the burst, then one summary line", test_log_flood);
    CU_add_test(s, "libh2o's stderr lines become records; other stderr writes pass through", test_libh2o_stderr_routed);
    CU_add_test(s, "log.level filters lines", test_level);
}
