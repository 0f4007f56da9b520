/*
 * harness.h: helpers for corral's end-to-end tests: start and stop the test upstream (tools/test-upstream.py) and the
 * corral binary, make HTTP/1.1 and h2c requests with libcurl (one at a time or many in parallel), query the upstream's
 * control endpoints, and pick small facts out of its JSON.
 *
 * Invariants:
 *   - everything listens on and connects to 127.0.0.1 only; ports come from harness_free_port().
 *   - every child process is started by harness_start_* and stopped by PID (harness_stop); children also get
 *     PR_SET_PDEATHSIG=SIGKILL and an atexit hook kills any still running, so none outlive the test binary.
 *   - no sleeps for synchronisation: waits are bounded polling loops (10 ms steps) with explicit deadlines.
 *   - temporary files (configs, logs) live in one directory per test run, removed at exit unless CORRAL_E2E_KEEP is
 *     set in the environment; they stay readable after harness_stop until then.
 *   - a cr_resp_t is always initialised by http_request/http_parallel_get, whether the exchange completed or not;
 *     release it with resp_free (which zeroes it, so a second resp_free is harmless).
 *   - not thread-safe except where noted; call curl_global_init once before any HTTP helper (main.c does).
 *
 * Environment: CORRAL_ROOT (repository root; default: nearest ancestor of the current directory that holds
 * tools/test-upstream.py), CORRAL_BIN (default <root>/build/corral), CORRAL_E2E_KEEP (keep temp files).
 */
#ifndef CORRAL_E2E_HARNESS_H
#define CORRAL_E2E_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- process control ---- */

typedef struct {
    pid_t pid;          /* 0 when not running */
    int port;           /* main listening port */
    int admin_port;     /* corral's admin port (${ADMIN_PORT}); 0 for the upstream */
    char conf_path[256]; /* corral: the written config; upstream: empty */
    char log_path[256];  /* the child's stdout+stderr */
} cr_proc_t;

/* The repository root (see the environment note above); never NULL. */
const char *harness_repo_root(void);

/* A TCP port that was free on 127.0.0.1 a moment ago, or -1. */
int harness_free_port(void);

/* A blocking TCP connection to 127.0.0.1:port (close it), or -1. */
int harness_connect(int port);

/* Waits (polling every 10 ms) until 127.0.0.1:port accepts a connection; 0 when it does, -1 after timeout_ms. */
int harness_wait_port(int port, int timeout_ms);

/* Starts python3 tools/test-upstream.py on a free port and waits up to 10 s for "ready" or connectability.
 * Returns 0, or -1 (after printing the child's log to stderr). p is zeroed first. */
int harness_start_upstream(cr_proc_t *p);
/* The same for tools/hostile-upstream.py (broken framing by path; the same /__count, /__total, /__reset). */
int harness_start_hostile_upstream(cr_proc_t *p);
/* Starts the test upstream again on p->port (after harness_stop kept it), one attempt. 0 or -1. */
int harness_restart_upstream(cr_proc_t *p);

/* Writes yaml_template with ${PORT}, ${ADMIN_PORT} and ${UPSTREAM_PORT} substituted (fresh free ports for the first
 * two; upstream->port for the last, or 1 when upstream is NULL) to a temp file, starts $CORRAL_BIN -c FILE with
 * stdout+stderr to a log file and waits up to 10 s for the port to accept. If the child exits first, prints its log
 * and returns -1 at once (retrying with new ports, at most 3 times in all, when the log says the address was in use).
 * Returns 0 or -1. p is zeroed first. */
int harness_start_corral(cr_proc_t *p, const char *yaml_template, const cr_proc_t *upstream);

/* Starts the test upstream, then corral with yaml_template in front of it. On failure stops whatever started and
 * returns -1; else 0. For CUnit suite inits. */
int harness_start_pair(cr_proc_t *upstream, cr_proc_t *corral, const char *yaml_template);
/* Stops corral then the upstream (by PID). Returns 0 when corral exited 0 (a clean drain), else -1. For suite
 * cleanups: a crash or a sanitizer report at exit fails the suite. */
int harness_stop_pair(cr_proc_t *upstream, cr_proc_t *corral);

/* The value of a Prometheus metric on corral's admin port (GET /metrics, no token), or -1. */
long harness_metric(const cr_proc_t *corral, const char *name);

/* SIGTERM by PID, wait up to 5 s, then SIGKILL and reap. Returns the exit code (0..255), 128+N when killed by signal
 * N, or -1 when p was not running. Sets p->pid to 0; files are kept (see the invariants). */
int harness_stop(cr_proc_t *p);

/* ---- raw HTTP/2 frames (for attack and framing tests) ---- */

/* Writes a 9-byte HTTP/2 frame header for a payload of len bytes into p; returns 9. */
size_t harness_h2_frame_header(unsigned char *p, size_t len, unsigned type, unsigned flags, uint32_t stream);

/* Writes one HEADERS frame (END_STREAM | END_HEADERS) for GET path on stream: static-table :method GET and :scheme
 * http, literal :path and :authority without indexing (each at most 127 bytes). Returns the bytes written (at most
 * 9 + 6 + 254). */
size_t harness_h2_get_headers(unsigned char *buf, uint32_t stream, const char *path, const char *authority);

/* The factor (1 to 10) by which a test stretches a timing window that a slow build cannot meet: the Makefile sets
 * CORRAL_E2E_TIME_SCALE to 4 for the TSan build; 1 otherwise. */
int harness_time_scale(void);

/* 1 in the TSan build (the Makefile sets CORRAL_E2E_TSAN), where RSS includes TSan's shadow memory. */
int harness_under_tsan(void);

/* How many sanitizer reports harness_stop and harness_wait_exit found in the logs of the children they reaped (each
 * printed to stderr when found); main fails the run when there was any. */
int harness_sanitizer_reports(void);

/* Sends sig to p->pid without waiting. Returns kill()'s result (-1 when p is not running). */
int harness_kill(cr_proc_t *p, int sig);

/* Waits up to timeout_ms for p to exit by itself. Returns its status as harness_stop does, or -2 while it still runs
 * (p->pid is then kept). */
int harness_wait_exit(cr_proc_t *p, int timeout_ms);

/* Runs $CORRAL_BIN -t -c FILE for yaml (placeholders substituted as in harness_start_corral, upstream port 1),
 * bounded to 10 s. Copies its stderr (NUL-terminated, truncated to outsize-1) into out when out != NULL; stdout is
 * discarded. Returns the exit code, 128+N when killed by signal N, or -1 when it could not be run or timed out. */
int harness_run_corral_check(const char *yaml, char *out, size_t outsize);

/* The whole file as a malloc'ed NUL-terminated string (free it), or NULL. */
char *harness_read_file(const char *path);
/* How many times needle occurs in the file at path (occurrences do not overlap), or -1 when it cannot be read. */
int harness_count_in_file(const char *path, const char *needle);

/* ---- HTTP client ---- */

typedef enum { CR_H1 = 0, CR_H2C, CR_H2C_UPGRADE } cr_proto_t;

typedef struct {
    long status;       /* final status; 0 when none was received */
    char *body;        /* malloc'ed, NUL-terminated (never NULL after a request), body_len bytes before the NUL */
    size_t body_len;
    char *headers_raw; /* every header block as received, including 1xx/101 blocks and trailers; NUL-terminated */
    int http_version;  /* 10, 11 or 20; 0 when unknown */
    double total_ms;   /* wall time of the transfer */
} cr_resp_t;

/* One request on a fresh connection. headers: NULL-terminated "Name: value" list or NULL; an "Expect:" header is
 * added (disabling 100-continue) unless the list has one. body may be NULL; with a body and no Content-Type given,
 * curl sends application/x-www-form-urlencoded. HEAD uses CURLOPT_NOBODY. No content decoding; 10 s timeout; env
 * proxies ignored. Returns 0 when the exchange completed (any status), -1 on a transport error (r keeps what was
 * received, e.g. the status of a truncated response; http_last_error() says why). */
int http_request(cr_resp_t *r, cr_proto_t proto, const char *method, const char *url, const char *const *headers,
                 const char *body, size_t body_len);

/* http_request(r, proto, "GET", url, headers, NULL, 0). */
int http_get(cr_resp_t *r, cr_proto_t proto, const char *url, const char *const *headers);

/* n concurrent GETs of url (same headers) through one curl multi handle, at most max_conns connections (0 = no
 * limit); h2c-Upgrade requests are multiplexed (CURLPIPE_MULTIPLEX, PIPEWAIT); h2c prior-knowledge ones get a
 * connection each (a libcurl 7.88 bug, see harness.c). Bounded to 60 s in all. Every resps[i] is initialised. Returns the number of transfers that failed (0 = all completed), or -1 on a setup error. */
int http_parallel_get(cr_resp_t *resps, size_t n, cr_proto_t proto, const char *url, const char *const *headers,
                      size_t max_conns);

/* The last transport error of the calling thread's http_* calls ("" when none). */
const char *http_last_error(void);

/* Value of header name (case-insensitive) in the final header block (1xx and 101 blocks skipped); several occurrences
 * are joined with ", ". Copies it into buf (truncated to bufsize-1) and returns buf, or NULL when absent. */
const char *resp_header(const cr_resp_t *r, const char *name, char *buf, size_t bufsize);

/* How many times header name occurs in the final header block. */
int resp_header_count(const cr_resp_t *r, const char *name);

/* Frees and zeroes r. */
void resp_free(cr_resp_t *r);

/* ---- upstream control ---- */

/* Requests counted for path (no query) by the upstream, or -1 on error. */
long upstream_count(const cr_proc_t *up, const char *path);
/* All requests counted by the upstream, or -1 on error. */
long upstream_total(const cr_proc_t *up);
/* Clears the upstream's counts, log and per-path settings. 0 or -1. */
int upstream_reset(const cr_proc_t *up);
/* Replaces the per-path settings of path with query_string ("" or NULL clears them). 0 or -1. */
int upstream_set(const cr_proc_t *up, const char *path, const char *query_string);
/* The upstream's log for path (all paths when NULL) as malloc'ed JSON text (free it), or NULL. */
char *upstream_log(const cr_proc_t *up, const char *path);

/* ---- misc ---- */

/* "http://127.0.0.1:<p->port><path_and_query>" in one of 16 rotating thread-local buffers of 2048 bytes: valid until
 * 16 more url_of calls on the same thread. Do not free. */
char *url_of(const cr_proc_t *p, const char *path_and_query);
/* The same for p's admin port. */
char *admin_url_of(const cr_proc_t *p, const char *path_and_query);
/* GET /readyz on c's admin port: its status (-1 on a transport error), its body copied into body (may be NULL). */
long harness_readyz(const cr_proc_t *c, char *body, size_t bodysize);
/* Polls harness_readyz every 20 ms until it answers want, for at most 5 s (times harness_time_scale); returns the last
 * status. */
long harness_readyz_until(const cr_proc_t *c, long want, char *body, size_t bodysize);

/* A monotonic clock in milliseconds, for bounded waits. */
long harness_now_ms(void);

/* GET path through corral c over HTTP/1.1. Returns 1 when Cache-Status says hit, 0 when not, -1 on a transport error.
 * *status (may be NULL) gets the status; ver (may be NULL) the body's "version" field of the test upstream's JSON. */
int harness_get_hit(const cr_proc_t *c, const char *path, long *status, char *ver, size_t versize);

/* A write (method, body "x=1") through corral c over HTTP/1.1. Returns its status, or -1 on a transport error. */
long harness_write(const cr_proc_t *c, const char *method, const char *path_and_query);

/* Reads a number stored under field at the top level of a JSON object (e.g. "n", "count"); strings and nested values
 * are skipped, so a header named "n" inside "headers" never matches. 0 and *out set, or -1. */
int json_get_long(const char *json, const char *field, long *out);

#endif
