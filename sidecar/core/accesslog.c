/*
 * accesslog.c: the JSON access log (accesslog.h): the destination, the per-thread buffers, the h2o logger that
 * writes one line per request, and the per-request notes. The JSON text writers are in json_text.c.
 *
 * Invariants: `al_fd` is set once by cr_accesslog_open before any worker starts and never changes (-1: off). Each
 * traffic thread owns one cr_al_buf_t (thread-local, made at its first line), touched only by that thread, except
 * by cr_accesslog_flush_all after the threads are joined; `bufs` lists them (a mutex, taken once per thread when
 * its buffer is made). A buffer holds whole lines (its front may be the tail of one a socket took in part). To a pipe
 * each write(2) is of whole lines and at most PIPE_BUF bytes (atomic: never mixed with the error log's lines when
 * both share the pipe); to a regular file, one write of everything (O_APPEND).
 * After EAGAIN the thread does not write again before its next timer tick (so a stuck reader costs one write(2)
 * per tick, not per request); a line that finds the buffer full then is dropped and counted. Any other write error
 * (EPIPE, ENOSPC, EIO) drops what is buffered, counting its lines.
 * `tls_last` (thread-local) names the last request whose record its thread looked up; it is cleared when a request
 * begins and by that request's logger, so it never outlives the request's pool.
 * Locking: none per request (the log's own fd is shared, and each write(2) is of whole lines).
 */
#include "corral/core/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corral/core/histogram.h"
#include "corral/core/json_text.h"
#include "corral/core/log.h"
#include "corral/core/reqstats.h"
#include "corral/core/runtime.h"

#define CR_AL_ENV "corral.al"
/* every field escaped at its bound (6 bytes a byte) plus the fixed text: a line always fits */
#define CR_AL_MAX_LINE ((CR_ACCESSLOG_MAX_PATH + 3 * 256 + 32) * 6 + 1024)

typedef struct st_cr_al_buf_t {
    cr_thread_t *thread;
    h2o_timeout_entry_t timer;
    size_t len;
    int blocked;  /* EAGAIN since the last tick: do not write before the next */
    time_t cached_sec;
    char cached_time[20];
    char buf[CR_ACCESSLOG_BUF];
} cr_al_buf_t;

/* What the request's handlers noted; in its pool, found through req->env. */
typedef struct st_cr_al_rec_t {
    uint64_t start_us;
    uint64_t upstream_us; /* UINT64_MAX: not asked */
    h2o_iovec_t request_id;
    const cr_reqstat_t *stat; /* the metrics' record of the request (guard.c's tracker; alive until after the log) */
    uint8_t route_noted;
    uint16_t route_len; /* UINT16_MAX: no route */
    char route[CR_ACCESSLOG_MAX_ROUTE];
} cr_al_rec_t;

static int al_fd = -1;
static int al_is_socket;
static int al_chunked; /* not a regular file: writes of whole lines up to PIPE_BUF (chunk_of) */
static __thread cr_al_buf_t *tls_buf;
static pthread_mutex_t bufs_mutex = PTHREAD_MUTEX_INITIALIZER;
static cr_al_buf_t **bufs;
static size_t num_bufs;
static uint64_t al_dropped; /* atomic: also counted per thread in stats; this one is for tests and exit */

/* ---- the destination ---- */

int cr_accesslog_open(const char *dest, char *err, size_t errlen)
{
    struct stat st;
    int fd;

    if (dest != NULL && strcmp(dest, "off") == 0) {
        al_fd = -1;
        return 0;
    }
    if (dest == NULL || strcmp(dest, "stdout") == 0) {
        /* a pipe, tty or device: a description of our own (/proc/self/fd/1), so O_NONBLOCK does not reach whoever
         * shares fd 1's */
        if (fstat(1, &st) != 0) {
            snprintf(err, errlen, "log.access: stdout is not open (%s)", strerror(errno));
            return -1;
        }
        if (S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode)) {
            /* a file: fd 1's own description, whose offset `>file 2>&1` shares with the error log (a description of
             * our own would write over its lines); regular files never block anyway. A socket (journald) cannot be
             * reopened: it is written with MSG_DONTWAIT */
            if ((fd = fcntl(1, F_DUPFD_CLOEXEC, 3)) == -1) {
                snprintf(err, errlen, "log.access: cannot use stdout: %s", strerror(errno));
                return -1;
            }
            al_is_socket = S_ISSOCK(st.st_mode);
        } else if ((fd = open("/proc/self/fd/1", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC)) == -1) {
            if ((fd = fcntl(1, F_DUPFD_CLOEXEC, 3)) == -1) {
                snprintf(err, errlen, "log.access: cannot use stdout: %s", strerror(errno));
                return -1;
            }
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* shared with fd 1: the best there is */
        }
        al_chunked = !S_ISREG(st.st_mode);
        al_fd = fd;
        return 0;
    }
    if ((fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644)) == -1) {
        snprintf(err, errlen, "log.access: cannot open %s: %s%s", dest, strerror(errno),
                 errno == ENXIO ? " (a FIFO with no reader)" : "");
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "log.access: cannot open %s: it is a directory", dest);
        return -1;
    }
    al_chunked = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode); /* a FIFO */
    al_fd = fd;
    return 0;
}

int cr_accesslog_on(void)
{
    return al_fd != -1;
}

uint64_t cr_accesslog_dropped(void)
{
    return __atomic_load_n(&al_dropped, __ATOMIC_RELAXED);
}

/* ---- the buffers ---- */

static void count_dropped(cr_al_buf_t *b, size_t n)
{
    uint64_t *c = &b->thread->stats.access_log_dropped;
    if (n == 0)
        return;
    __atomic_add_fetch(&al_dropped, n, __ATOMIC_RELAXED);
    __atomic_store_n(c, *c + n, __ATOMIC_RELAXED); /* CR_STAT_INC by n: only the owner (or main, after the join) */
}

/* Lines ('\n') in p[0..n). */
static size_t count_lines(const char *p, size_t n)
{
    const char *end = p + n, *q;
    size_t c = 0;
    for (; p != end && (q = memchr(p, '\n', (size_t)(end - p))) != NULL; p = q + 1)
        ++c;
    return c;
}

/* How much of buf[0..len) (whole lines) the next write takes: all of it to a regular file (O_APPEND: one write is
 * never interleaved with another's); to a pipe, whole lines up to PIPE_BUF (such a write goes in whole or not at
 * all, so a line never mixes with the error log's when both share the pipe), or one longer line alone. */
static size_t chunk_of(const char *buf, size_t len)
{
    const char *nl;
    if (!al_chunked || len <= PIPE_BUF)
        return len;
    if ((nl = memrchr(buf, '\n', PIPE_BUF)) != NULL)
        return (size_t)(nl - buf) + 1;
    nl = memchr(buf, '\n', len);
    return nl != NULL ? (size_t)(nl - buf) + 1 : len;
}

/* Writes what the buffer holds, without blocking: stops at the first write the destination does not take whole. */
static void flush(cr_al_buf_t *b)
{
    size_t off = 0;

    if (b->len == 0 || b->blocked)
        return;
    while (off != b->len) {
        size_t n = chunk_of(b->buf + off, b->len - off);
        ssize_t w = al_is_socket ? send(al_fd, b->buf + off, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(al_fd, b->buf + off, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                b->blocked = errno != EINTR; /* nothing more before the next tick */
                break;
            }
            count_dropped(b, count_lines(b->buf + off, b->len - off)); /* EPIPE, ENOSPC, EIO: it will not go */
            b->len = 0;
            return;
        }
        off += (size_t)w;
        if ((size_t)w != n) { /* took only part (a socket, a nearly full disk): the rest at the next tick */
            b->blocked = 1;
            break;
        }
    }
    memmove(b->buf, b->buf + off, b->len - off);
    b->len -= off;
}

static void on_timer(h2o_timeout_entry_t *entry)
{
    cr_al_buf_t *b = H2O_STRUCT_FROM_MEMBER(cr_al_buf_t, timer, entry);
    b->blocked = 0;
    flush(b);
    if (b->len != 0)
        h2o_timeout_link(b->thread->ctx.loop, cr_thread_timeout(b->thread, CR_ACCESSLOG_FLUSH_MS), &b->timer);
}

static cr_al_buf_t *thread_buf(cr_thread_t *t)
{
    cr_al_buf_t *b = tls_buf, **grown;
    if (b != NULL)
        return b;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return NULL;
    b->thread = t;
    b->timer.cb = on_timer;
    b->cached_sec = -1;
    pthread_mutex_lock(&bufs_mutex);
    if ((grown = realloc(bufs, (num_bufs + 1) * sizeof(*bufs))) != NULL) {
        bufs = grown;
        bufs[num_bufs++] = b;
    }
    pthread_mutex_unlock(&bufs_mutex);
    if (grown == NULL) {
        free(b);
        return NULL;
    }
    return tls_buf = b;
}

void cr_accesslog_flush_all(void)
{
    size_t i;
    pthread_mutex_lock(&bufs_mutex);
    for (i = 0; i != num_bufs; ++i) {
        bufs[i]->blocked = 0;
        flush(bufs[i]);
        count_dropped(bufs[i], count_lines(bufs[i]->buf, bufs[i]->len)); /* left over at exit */
        bufs[i]->len = 0;
    }
    pthread_mutex_unlock(&bufs_mutex);
}

/* ---- formatting ---- */

#define PUT(lit) (memcpy(line + pos, lit, sizeof(lit) - 1), pos += sizeof(lit) - 1)

/* A JSON string of src, bounded to max source bytes (then "..." inside the quotes). */
static void put_string(char *line, size_t *pos, size_t cap, const char *src, size_t len, size_t max)
{
    int cut = len > max;
    line[(*pos)++] = '"';
    if (cr_json_escape(line, pos, cap - 5, src, cut ? max : len) != 0)
        cut = 1;
    if (cut) {
        memcpy(line + *pos, "...", 3);
        *pos += 3;
    }
    line[(*pos)++] = '"';
}

/* corral's own Cache-Status entry of the response ("corral; ..."), or {NULL, 0} */
static h2o_iovec_t corral_cache_status(h2o_req_t *req)
{
    size_t i;
    for (i = 0; i != req->res.headers.size; ++i) {
        const h2o_header_t *h = req->res.headers.entries + i;
        /* response names are lower case: corral adds its entry under the literal name, and http/h1_response.c
         * lower-cases the upstream's */
        if (h->name->len == 12 && h->value.len >= 7 && memcmp(h->value.base, "corral;", 7) == 0 &&
            memcmp(h->name->base, "cache-status", 12) == 0)
            return h->value;
    }
    return h2o_iovec_init(NULL, 0);
}

/* The outcome word: the metrics' (serve/ decides it as it answers: reqstats.h), so a line and the
 * corral_requests_total{outcome} series always agree; "none" for a request the guard answered before admitting it
 * (400, 429, 431) and for corral's own errors after it (no Cache-Status and no upstream answer: a 502 or 504 of a
 * failed upstream, a 503, an only-if-cached 504). */
static const char *outcome_of(h2o_iovec_t cs, const cr_al_rec_t *rec, int status)
{
    if (rec == NULL || rec->stat == NULL)
        return "none";
    if (cs.base == NULL && rec->upstream_us == UINT64_MAX && rec->stat->outcome != CR_OUTCOME_HIT &&
        rec->stat->outcome != CR_OUTCOME_STALE && status >= 500)
        return "none";
    return cr_outcome_names[rec->stat->outcome < CR_OUTCOME_MAX ? rec->stat->outcome : CR_OUTCOME_PASS];
}

/* The thread's last record: the notes of one request mostly come one after another, on its thread, so they skip the
 * env search. Set by cr_accesslog_begin (every request's first handler) and cleared by the logger of its request
 * (which runs for every request begun, before its pool is cleared), so it never names a disposed request's. */
static __thread struct {
    const h2o_req_t *req;
    cr_al_rec_t *rec;
} tls_last;

static cr_al_rec_t *rec_of(h2o_req_t *req, int create)
{
    h2o_iovec_t *slot;
    cr_al_rec_t *rec;
    if (tls_last.req == req)
        return tls_last.rec;
    if ((slot = h2o_req_getenv(req, H2O_STRLIT(CR_AL_ENV), create)) == NULL)
        return NULL;
    if (slot->base != NULL) {
        rec = (cr_al_rec_t *)slot->base;
        tls_last.req = req, tls_last.rec = rec;
        return rec;
    }
    if (!create)
        return NULL;
    rec = h2o_mem_alloc_pool(&req->pool, sizeof(*rec));
    tls_last.req = req, tls_last.rec = rec;
    rec->start_us = 0;
    rec->upstream_us = UINT64_MAX;
    rec->request_id = h2o_iovec_init(NULL, 0);
    rec->stat = NULL;
    rec->route_noted = 0;
    rec->route_len = UINT16_MAX;
    *slot = h2o_iovec_init((char *)rec, sizeof(*rec));
    return rec;
}

void cr_accesslog_begin(h2o_req_t *req)
{
    cr_al_rec_t *rec;
    if (al_fd == -1)
        return;
    tls_last.req = NULL; /* a new request: never an earlier one's record */
    if ((rec = rec_of(req, 1)) != NULL)
        rec->start_us = cr_monotonic_us();
}

void cr_accesslog_note_id(h2o_req_t *req, h2o_iovec_t request_id)
{
    cr_al_rec_t *rec;
    if (al_fd != -1 && (rec = rec_of(req, 1)) != NULL)
        rec->request_id = request_id;
}

void cr_accesslog_note_stat(h2o_req_t *req, const cr_reqstat_t *stat)
{
    cr_al_rec_t *rec;
    if (al_fd != -1 && (rec = rec_of(req, 1)) != NULL)
        rec->stat = stat;
}

void cr_accesslog_note_route(h2o_req_t *req, const char *label, size_t len)
{
    cr_al_rec_t *rec;
    if (al_fd == -1 || (rec = rec_of(req, 1)) == NULL)
        return;
    rec->route_noted = 1;
    if (label == NULL) {
        rec->route_len = UINT16_MAX;
        return;
    }
    if (len > sizeof(rec->route))
        len = sizeof(rec->route);
    memcpy(rec->route, label, len);
    rec->route_len = (uint16_t)len;
}

void cr_accesslog_note_upstream(h2o_req_t *req, uint64_t us)
{
    cr_al_rec_t *rec;
    if (al_fd == -1 || (rec = rec_of(req, 0)) == NULL)
        return;
    rec->upstream_us = us;
}

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    cr_thread_t *t;
    cr_al_buf_t *b;
    cr_al_rec_t *rec;
    h2o_iovec_t cs;
    char line[CR_AL_MAX_LINE];
    size_t pos = 0, cap = sizeof(line);
    time_t sec = req->timestamps.request_begin_at.tv_sec;

    if (al_fd == -1)
        return;
    rec = rec_of(req, 0);
    if (tls_last.req == req) /* its pool is cleared next */
        tls_last.req = NULL, tls_last.rec = NULL;
    t = cr_thread_of(req);
    if ((b = thread_buf(t)) == NULL)
        return;
    if (h2o_timeval_is_null(&req->timestamps.request_begin_at))
        sec = req->processed_at.at.tv_sec;
    if (sec != b->cached_sec) {
        cr_json_fmt_second(b->cached_time, sec);
        b->cached_sec = sec;
    }
    PUT("{\"time\":\"");
    memcpy(line + pos, b->cached_time, 19);
    pos += 19;
    {
        unsigned ms = (unsigned)((h2o_timeval_is_null(&req->timestamps.request_begin_at) ? req->processed_at.at.tv_usec
                                                                                      : req->timestamps.request_begin_at.tv_usec) / 1000);
        line[pos++] = '.';
        line[pos++] = (char)('0' + ms / 100 % 10);
        line[pos++] = (char)('0' + ms / 10 % 10);
        line[pos++] = (char)('0' + ms % 10);
    }
    PUT("Z\",\"method\":");
    if (rec != NULL && rec->stat != NULL && req->input.method.len <= 32) {
        /* an admitted request's method passed the token check (h1_request.c, reqcheck.c): no byte to escape */
        line[pos++] = '"';
        memcpy(line + pos, req->input.method.base, req->input.method.len);
        pos += req->input.method.len;
        line[pos++] = '"';
    } else {
        put_string(line, &pos, cap, req->input.method.base, req->input.method.len, 32);
    }
    PUT(",\"path\":");
    put_string(line, &pos, cap, req->input.path.base, req->input.path.len, CR_ACCESSLOG_MAX_PATH);
    PUT(",\"status\":");
    pos += cr_json_put_u64(line + pos, (uint64_t)(req->res.status > 0 ? req->res.status : 0));
    PUT(",\"route\":");
    if (rec != NULL && rec->route_len != UINT16_MAX)
        put_string(line, &pos, cap, rec->route, rec->route_len, CR_ACCESSLOG_MAX_ROUTE);
    else
        PUT("null");
    cs = corral_cache_status(req);
    PUT(",\"cache\":\"");
    {
        const char *o = outcome_of(cs, rec, req->res.status);
        size_t n = strlen(o);
        memcpy(line + pos, o, n);
        pos += n;
    }
    PUT("\",\"cache_status\":");
    if (cs.base != NULL)
        put_string(line, &pos, cap, cs.base, cs.len, 256);
    else
        PUT("null");
    PUT(",\"bytes\":");
    pos += cr_json_put_u64(line + pos, req->bytes_sent);
    PUT(",\"total_time\":");
    pos += cr_json_put_seconds(line + pos, rec != NULL && rec->start_us != 0 ? cr_monotonic_us() - rec->start_us : 0);
    PUT(",\"upstream_time\":");
    if (rec != NULL && rec->upstream_us != UINT64_MAX)
        pos += cr_json_put_seconds(line + pos, rec->upstream_us);
    else
        PUT("null");
    PUT(",\"request_id\":");
    if (rec != NULL && rec->request_id.base != NULL && rec->request_id.len <= 256) {
        /* valid ids are token characters (serve/request_id.h), none of which JSON escapes: copied as they are */
        line[pos++] = '"';
        memcpy(line + pos, rec->request_id.base, rec->request_id.len);
        pos += rec->request_id.len;
        line[pos++] = '"';
    } else
        PUT("null");
    PUT("}\n");

    if (b->len + pos > sizeof(b->buf)) {
        flush(b);
        if (b->len + pos > sizeof(b->buf)) {
            count_dropped(b, 1);
            goto arm;
        }
    }
    memcpy(b->buf + b->len, line, pos);
    b->len += pos;
arm:
    if (!h2o_timeout_is_linked(&b->timer))
        h2o_timeout_link(t->ctx.loop, cr_thread_timeout(t, CR_ACCESSLOG_FLUSH_MS), &b->timer);
}

void cr_accesslog_register(h2o_pathconf_t *pathconf)
{
    h2o_logger_t *logger = h2o_create_logger(pathconf, sizeof(*logger));
    logger->log_access = on_log_access;
}
