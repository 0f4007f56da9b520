/*
 * accesslog.h: the JSON access log (log.access: stdout, off or a file path), one line per request.
 *
 * Each line is one JSON object: time (the request's start, ISO-8601 UTC with ms), method, path (as received,
 * bounded), status (0: the client went away before any response), route (the route's label or null), cache (hit,
 * miss, stale, pass, collapsed, bypass, l2-hit, none), cache_status (corral's Cache-Status value or null), bytes
 * (body bytes sent), total_time and upstream_time (seconds; upstream_time null when the upstream was not asked by
 * this request), request_id. Every string is JSON-escaped (control bytes as \u00XX; bytes that are not UTF-8 too).
 *
 * Writing never blocks a worker and takes no lock per request: each thread formats into its own 64 KiB buffer,
 * written with one non-blocking write(2) when it is full and by a 200 ms timer on the thread's own loop, and by
 * cr_accesslog_flush_all() at exit. A line that finds no room (the destination is full or failing: EAGAIN on a pipe
 * nobody reads, ENOSPC) is dropped and counted (access_log_dropped in the thread's stats); a line is never cut.
 *
 * Per-request notes (route, upstream time) are kept in a small record in the request's pool, found through the
 * request's env (h2o_req_getenv; corral runs no FastCGI or mruby handler that would read env). Every note is a no-op
 * when the log is off.
 */
#ifndef CORRAL_ACCESSLOG_H
#define CORRAL_ACCESSLOG_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#define CR_ACCESSLOG_BUF (64 * 1024)
#define CR_ACCESSLOG_FLUSH_MS 200
#define CR_ACCESSLOG_MAX_PATH 2048  /* bytes of the path logged; longer ones end with "..." */
#define CR_ACCESSLOG_MAX_ROUTE 256

/* Opens the destination: "stdout" (default), "off", or a file path (appended to, created 0644). Main thread, once,
 * before the workers start. Returns 0, or -1 with a message ("cannot open ...: reason") in err. */
int cr_accesslog_open(const char *dest, char *err, size_t errlen);
/* Is the access log on? (one relaxed load) */
int cr_accesslog_on(void);

/* Registers the logger on the traffic path (h2o_create_logger: runs when each request is disposed). */
void cr_accesslog_register(h2o_pathconf_t *pathconf);

/* Notes, on the request's thread. begin: first handler, once (starts the clock). id: the request id (must live as
 * long as the request; token characters only, as serve/request_id.c keeps or makes them: it is written unescaped).
 * route: label NULL for "no route"; copied (bounded). upstream: the upstream's head arrived `us` microseconds after
 * the request was sent. */
void cr_accesslog_begin(h2o_req_t *req);
void cr_accesslog_note_id(h2o_req_t *req, h2o_iovec_t request_id);
/* stat: the metrics' record of the request (reqstats.h), whose outcome the line's "cache" word is; it must outlive
 * the logger's call (the guard's tracker does: its pool dispose runs after the loggers). Noted only for a request
 * admitted past the head checks, whose method is a token: the line copies such a method without escaping it. */
struct st_cr_reqstat_t;
void cr_accesslog_note_stat(h2o_req_t *req, const struct st_cr_reqstat_t *stat);
void cr_accesslog_note_route(h2o_req_t *req, const char *label, size_t len);
void cr_accesslog_note_upstream(h2o_req_t *req, uint64_t us);

/* Writes what every thread has buffered (non-blocking; what does not go is dropped and counted). After the workers
 * are joined. */
void cr_accesslog_flush_all(void);

/* ---- for tests ---- */
/* Lines dropped since start, all threads. */
uint64_t cr_accesslog_dropped(void);

#endif
