/*
 * log.h: the error log (stderr), one line per event with an ISO-8601 UTC timestamp and a level.
 * Thread-safe: each line is formatted into a local buffer and written with one write(2).
 *
 * Rate limit: each call site (its format string and its caller) may print CR_LOG_BURST lines per CR_LOG_WINDOW_MS;
 * further lines of that site in the window are counted, not written, and reported as one line
 * "<format> (N similar lines suppressed)": before the site's next printed line, or by a background thread soon
 * after the window ends (started at the first suppression), whichever comes first. So a flood of one message
 * costs a few lines a second, and a line that happens once is never held back.
 */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

#include <stddef.h>
#include <stdint.h>

/* The length of the valid UTF-8 sequence (2..4 bytes) that starts at s, or 0 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). Shared with the access log's JSON escaping. */
size_t cr_utf8_seq(const unsigned char *s, size_t len);

/* Levels, lowest first. Lines below the process's level (log.level, default info) are not written, nor counted by the
 * rate limit. cr_log_set_level: any thread, any time (a relaxed atomic; conf/generation.c sets it from each
 * published generation, so a reload changes it). */
typedef enum en_cr_log_level_t { CR_LOG_DEBUG = 0, CR_LOG_INFO, CR_LOG_WARN, CR_LOG_ERROR } cr_log_level_t;
void cr_log_set_level(cr_log_level_t level);
cr_log_level_t cr_log_get_level(void);

void cr_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cr_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cr_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cr_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A line written by a library to stderr (stderr_interpose.c), at level warn, as "<origin>: <msg>" (one trailing
 * newline of msg dropped), under the same rate limit: `site` names the call site, `tmpl` (may be NULL; tmpl_len
 * bytes, need not be NUL-terminated, must live as long as the process) is what the suppressed line reports.
 */
void cr_log_foreign(const char *origin, uintptr_t site, const char *tmpl, size_t tmpl_len, const char *msg, size_t len);

/* ---- the rate limiter (log.c keeps one for the process; tests make their own, zero-initialised) ---- */

#define CR_LOG_BURST 20        /* lines one site may print per window */
#define CR_LOG_WINDOW_MS 1000  /* window length */
#define CR_LOG_SITES 256       /* call sites tracked one by one; the rest share one budget */

/* What a call site logs: the strings must live as long as the process (string literals). */
typedef struct st_cr_log_template_t {
    uintptr_t site; /* any value identifying the call site (0 is mapped to 1) */
    const char *level;
    const char *origin; /* "libh2o" for cr_log_foreign; NULL for corral's own lines */
    const char *tmpl;   /* the format (or NULL); tmpl_len bytes */
    size_t tmpl_len;
} cr_log_template_t;

typedef struct st_cr_log_site_t {
    uintptr_t key;         /* atomic: 0 free, 1 being claimed, else the site (claimed once, never freed) */
    cr_log_template_t t;   /* written by the claimer before key is published */
    uint64_t window;       /* atomic: window index << 32 | lines printed in that window */
    uint64_t suppressed;   /* atomic: lines not printed and not reported yet */
} cr_log_site_t;

typedef struct st_cr_log_limiter_t {
    cr_log_site_t sites[CR_LOG_SITES];
    cr_log_site_t shared; /* sites that found no free slot; its template is all zero */
    uint64_t suppressed_total; /* atomic: every line suppressed since start */
} cr_log_limiter_t;

/* Lock-free; any thread. Returns 1 when the line may be printed, 0 when it is suppressed (and counted). On 1,
 * *report is the number of the site's earlier lines suppressed and not yet reported (print that summary first, for
 * *reported, the slot's template: the shared slot has none); else 0. now_ms: any monotonic millisecond clock. */
int cr_log_limiter_admit(cr_log_limiter_t *lim, const cr_log_template_t *t, uint64_t now_ms, uint64_t *report,
                         const cr_log_template_t **reported);

/* A site's lines suppressed in windows that have ended, taken for reporting (each is handed out once). */
typedef struct st_cr_log_summary_t {
    const cr_log_template_t *t; /* the slot's template (all zero for the shared slot) */
    uint64_t suppressed;
} cr_log_summary_t;
/* Fills out[0 .. n) with the sites whose window ended before now_ms with lines suppressed (at most max; the rest stay
 * for the next call) and returns n. Lock-free; any thread. */
size_t cr_log_limiter_expired(cr_log_limiter_t *lim, uint64_t now_ms, cr_log_summary_t *out, size_t max);

/* Lines suppressed by the process's limiter since start. */
uint64_t cr_log_suppressed_total(void);

#endif
