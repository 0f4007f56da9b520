/*
 * log.c: the error log. Each line is built in a stack buffer and written with a single write(2) to stderr, so
 * lines from different threads never interleave. Lines longer than the buffer are truncated.
 *
 * Invariant: one call is one line. The formatted message is escaped here, in the one place every caller goes
 * through: a control byte (< 0x20, including CR and LF, and DEL) and a byte that is not part of valid UTF-8 are
 * written as \xNN, so no value that reaches a log line (a cache key with its internal newlines, a request path or
 * header from a client, an upstream's reason phrase) can end the line early or forge another record.
 *
 * Levels (log.h): a line under the process's level (one relaxed atomic, set from each config generation) returns
 * before anything is formatted or counted.
 *
 * Rate limit (log.h). Every line passes cr_log_limiter_admit() first, keyed by its call site: the format pointer
 * mixed with the caller's return address (cr_log_foreign: the site its interposer names). The limiter is a fixed
 * table of CR_LOG_SITES slots, open addressing, claimed once and never freed, so it needs no lock: a slot's window
 * word (window index << 32 | lines printed) moves by CAS, its suppressed count by atomic add, and the count is
 * taken for reporting with one atomic exchange, so each suppressed line is reported exactly once, by whichever
 * comes first: the site's next printed line or the flusher thread. A window only moves forward: a thread whose
 * clock reading is older than the slot's window counts its line in the slot's window. The flusher is started (once, all signals
 * blocked) by the first suppression and wakes every half window to report the sites whose window ended. A site that
 * finds no free slot within CR_LOG_PROBE probes shares the table's `shared` slot (one budget for all of them). The
 * clock is CLOCK_MONOTONIC_COARSE; the limiter itself takes `now`, so tests drive it with a fake clock.
 */
#include "corral/core/log.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CR_LOG_LINE 2048
#define CR_LOG_PROBE 32
#define CR_LOG_KEY_BUSY ((uintptr_t)1)

static cr_log_limiter_t cr_log_process_limiter;
static int cr_log_level = CR_LOG_INFO; /* atomic (relaxed) */

void cr_log_set_level(cr_log_level_t level)
{
    __atomic_store_n(&cr_log_level, (int)level, __ATOMIC_RELAXED);
}

cr_log_level_t cr_log_get_level(void)
{
    return (cr_log_level_t)__atomic_load_n(&cr_log_level, __ATOMIC_RELAXED);
}

static int level_on(cr_log_level_t level)
{
    return (int)level >= __atomic_load_n(&cr_log_level, __ATOMIC_RELAXED);
}
static pthread_once_t cr_log_flusher_once = PTHREAD_ONCE_INIT;

size_t cr_utf8_seq(const unsigned char *s, size_t len)
{
    size_t n, i;
    unsigned char lo = 0x80, hi = 0xbf;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i != n; ++i)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* Appends src[0..len) to dst at *pos (capacity cap), escaped; stops before what does not fit whole. */
static void append_escaped(char *dst, size_t *pos, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, n;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f) {
            if (*pos + 1 > cap)
                return;
            dst[(*pos)++] = (char)c;
            ++i;
        } else if (c >= 0x80 && (n = cr_utf8_seq(s + i, len - i)) != 0) {
            if (*pos + n > cap)
                return;
            for (; n != 0; --n)
                dst[(*pos)++] = (char)s[i++];
        } else {
            if (*pos + 4 > cap)
                return;
            dst[(*pos)++] = '\\';
            dst[(*pos)++] = 'x';
            dst[(*pos)++] = hex[c >> 4];
            dst[(*pos)++] = hex[c & 15];
            ++i;
        }
    }
}

/* ---- the rate limiter ---- */

static cr_log_site_t *limiter_slot(cr_log_limiter_t *lim, const cr_log_template_t *t)
{
    uintptr_t key = t->site > CR_LOG_KEY_BUSY ? t->site : CR_LOG_KEY_BUSY + 1;
    size_t i, n, home = (size_t)(((uint64_t)key * 0x9e3779b97f4a7c15ull) >> 56) % CR_LOG_SITES;

    for (n = 0, i = home; n != CR_LOG_PROBE; ++n, i = (i + 1) % CR_LOG_SITES) {
        cr_log_site_t *slot = &lim->sites[i];
        uintptr_t cur = __atomic_load_n(&slot->key, __ATOMIC_ACQUIRE), zero = 0;
        if (cur == 0 && __atomic_compare_exchange_n(&slot->key, &zero, CR_LOG_KEY_BUSY, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            slot->t = *t;
            slot->t.site = key;
            __atomic_store_n(&slot->key, key, __ATOMIC_RELEASE);
            return slot;
        }
        if (cur == 0)
            cur = zero; /* lost the race: see who claimed it */
        while (cur == CR_LOG_KEY_BUSY) { /* a claimer is writing the template: a few stores */
            sched_yield();
            cur = __atomic_load_n(&slot->key, __ATOMIC_ACQUIRE);
        }
        if (cur == key)
            return slot;
    }
    return &lim->shared;
}

int cr_log_limiter_admit(cr_log_limiter_t *lim, const cr_log_template_t *t, uint64_t now_ms, uint64_t *report,
                         const cr_log_template_t **reported)
{
    cr_log_site_t *slot = limiter_slot(lim, t);
    uint64_t win = (now_ms / CR_LOG_WINDOW_MS) & 0xffffffffu, w = __atomic_load_n(&slot->window, __ATOMIC_RELAXED);

    *report = 0;
    *reported = &slot->t;
    for (;;) {
        uint64_t next;
        if (w >> 32 > win)
            win = w >> 32; /* another thread read the clock later: its window is the current one (never go back) */
        if (w >> 32 != win)
            next = win << 32 | 1; /* a new window: this is its first line */
        else if ((w & 0xffffffffu) < CR_LOG_BURST)
            next = w + 1;
        else {
            __atomic_add_fetch(&slot->suppressed, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&lim->suppressed_total, 1, __ATOMIC_RELAXED);
            return 0;
        }
        if (__atomic_compare_exchange_n(&slot->window, &w, next, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            break;
    }
    if ((w >> 32 != win || (w & 0xffffffffu) == 0) && __atomic_load_n(&slot->suppressed, __ATOMIC_RELAXED) != 0)
        *report = __atomic_exchange_n(&slot->suppressed, 0, __ATOMIC_RELAXED);
    return 1;
}

size_t cr_log_limiter_expired(cr_log_limiter_t *lim, uint64_t now_ms, cr_log_summary_t *out, size_t max)
{
    uint64_t win = (now_ms / CR_LOG_WINDOW_MS) & 0xffffffffu;
    size_t i, n = 0;

    for (i = 0; i <= CR_LOG_SITES && n != max; ++i) {
        cr_log_site_t *slot = i == CR_LOG_SITES ? &lim->shared : &lim->sites[i];
        uint64_t got;
        if (i != CR_LOG_SITES && __atomic_load_n(&slot->key, __ATOMIC_ACQUIRE) <= CR_LOG_KEY_BUSY)
            continue;
        if (__atomic_load_n(&slot->suppressed, __ATOMIC_RELAXED) == 0 ||
            __atomic_load_n(&slot->window, __ATOMIC_RELAXED) >> 32 >= win)
            continue;
        if ((got = __atomic_exchange_n(&slot->suppressed, 0, __ATOMIC_RELAXED)) != 0) {
            out[n].t = &slot->t;
            out[n].suppressed = got;
            ++n;
        }
    }
    return n;
}

uint64_t cr_log_suppressed_total(void)
{
    return __atomic_load_n(&cr_log_process_limiter.suppressed_total, __ATOMIC_RELAXED);
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- writing ---- */

/* Writes one record: timestamp, level, "origin: " when origin is set, msg escaped. */
static void write_record(const char *level, const char *origin, const char *msg, size_t len)
{
    char buf[CR_LOG_LINE];
    struct timeval tv;
    struct tm tm;
    int n;
    size_t pos;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s] %s%s", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), level,
                 origin != NULL ? origin : "", origin != NULL ? ": " : "");
    if (n < 0 || n >= (int)sizeof(buf))
        n = 0;
    pos = (size_t)n;
    append_escaped(buf, &pos, sizeof(buf) - 1, msg, len);
    buf[pos++] = '\n';
    if (write(2, buf, pos) < 0) {
        /* nothing sensible to do when stderr is gone */
    }
}

/* "<template> (N similar lines suppressed)", at the template's level (the shared slot: "warn", no template). */
static void write_summary(const cr_log_template_t *t, uint64_t n)
{
    char msg[CR_LOG_LINE];
    size_t tl = t->tmpl != NULL ? t->tmpl_len : 0;
    int m;

    while (tl != 0 && t->tmpl[tl - 1] == '\n')
        --tl;
    if (tl > CR_LOG_LINE / 2)
        tl = CR_LOG_LINE / 2;
    m = snprintf(msg, sizeof(msg), "%.*s%s(%llu similar lines suppressed)", (int)tl, tl != 0 ? t->tmpl : "",
                 tl != 0 ? " " : "", (unsigned long long)n);
    if (m < 0)
        m = 0;
    if (m >= (int)sizeof(msg))
        m = sizeof(msg) - 1;
    write_record(t->level != NULL ? t->level : "warn", t->origin, msg, (size_t)m);
}

static void *flusher_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec half = {0, (long)CR_LOG_WINDOW_MS * 1000000 / 2};
        cr_log_summary_t out[16];
        size_t n, i;
        nanosleep(&half, NULL);
        while ((n = cr_log_limiter_expired(&cr_log_process_limiter, monotonic_ms(), out, 16)) != 0)
            for (i = 0; i != n; ++i)
                write_summary(out[i].t, out[i].suppressed);
    }
    return NULL;
}

static void start_flusher(void)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;

    /* the thread takes no signal (corral's main thread waits for them with sigwait) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&tid, &attr, flusher_main, NULL) != 0) {
            /* no flusher: summaries still come with each site's next printed line */
        }
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Passes t's line through the process's limiter; returns 1 when it is to be written (after any summary due). */
static int admit(const cr_log_template_t *t)
{
    const cr_log_template_t *reported;
    uint64_t report;

    if (!cr_log_limiter_admit(&cr_log_process_limiter, t, monotonic_ms(), &report, &reported)) {
        pthread_once(&cr_log_flusher_once, start_flusher);
        return 0;
    }
    if (report != 0)
        write_summary(reported, report);
    return 1;
}

static void vlog(const char *level, uintptr_t caller, const char *fmt, va_list ap)
{
    cr_log_template_t t = {(uintptr_t)fmt ^ caller * 0x9e3779b97f4a7c15ull, level, NULL, fmt, strlen(fmt)};
    char msg[CR_LOG_LINE];
    int m;

    if (!admit(&t))
        return;
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (m < 0)
        m = 0;
    if (m >= (int)sizeof(msg))
        m = sizeof(msg) - 1;
    write_record(level, NULL, msg, (size_t)m);
}

void cr_log_foreign(const char *origin, uintptr_t site, const char *tmpl, size_t tmpl_len, const char *msg, size_t len)
{
    cr_log_template_t t = {site, "warn", origin, tmpl, tmpl != NULL ? tmpl_len : 0};

    if (!level_on(CR_LOG_WARN) || !admit(&t))
        return;
    if (len != 0 && msg[len - 1] == '\n')
        --len;
    write_record("warn", origin, msg, len);
}

void cr_log_error(const char *fmt, ...)
{
    va_list ap;
    if (!level_on(CR_LOG_ERROR))
        return;
    va_start(ap, fmt);
    vlog("error", (uintptr_t)__builtin_return_address(0), fmt, ap);
    va_end(ap);
}

void cr_log_warn(const char *fmt, ...)
{
    va_list ap;
    if (!level_on(CR_LOG_WARN))
        return;
    va_start(ap, fmt);
    vlog("warn", (uintptr_t)__builtin_return_address(0), fmt, ap);
    va_end(ap);
}

void cr_log_info(const char *fmt, ...)
{
    va_list ap;
    if (!level_on(CR_LOG_INFO))
        return;
    va_start(ap, fmt);
    vlog("info", (uintptr_t)__builtin_return_address(0), fmt, ap);
    va_end(ap);
}

void cr_log_debug(const char *fmt, ...)
{
    va_list ap;
    if (!level_on(CR_LOG_DEBUG))
        return;
    va_start(ap, fmt);
    vlog("debug", (uintptr_t)__builtin_return_address(0), fmt, ap);
    va_end(ap);
}
