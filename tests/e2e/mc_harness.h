/*
 * mc_harness.h: memcached for corral's end-to-end tests: start a real memcached (/usr/bin/memcached, or
 * $CORRAL_MEMCACHED) on 127.0.0.1, stop, freeze and thaw it by PID, and a tiny blocking client of the text protocol
 * (get, set, delete, flush_all, stats, and the key listing of `lru_crawler metadump all`; mc_client.c).
 *
 * Invariants:
 *   - memcached listens on 127.0.0.1 only (TCP, UDP off: -U 0), one worker thread, 64 MB; ports come from
 *     harness_free_port() unless the caller names one (a restart on the port it had).
 *   - every memcached is started by mc_start and stopped by PID (mc_stop: SIGTERM then SIGCONT, in case it is
 *     frozen, then SIGKILL after 5 s, always reaped); children get PR_SET_PDEATHSIG=SIGKILL and an atexit hook kills
 *     any still running, so none outlive the test binary.
 *   - every client call opens its own connection and closes it before returning; sends and receives time out after
 *     MC_IO_TIMEOUT_MS, so a frozen server costs a bounded wait and an error, never a hang.
 *   - logs (stdout+stderr of each memcached) live in one temp directory per run, removed at exit unless
 *     CORRAL_E2E_KEEP is set.
 *   - not thread-safe for mc_start/mc_stop (the child table); the client calls are (no shared state).
 */
#ifndef CORRAL_E2E_MC_HARNESS_H
#define CORRAL_E2E_MC_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#define MC_IO_TIMEOUT_MS 1000

typedef struct {
    pid_t pid;          /* 0 when not running */
    int port;           /* kept after mc_stop, so mc_start(m, m->port) restarts it where it was */
    int frozen;         /* 1 between mc_freeze and mc_thaw */
    char log_path[256]; /* stdout+stderr of the last start */
} mc_proc_t;

/* Starts memcached -l 127.0.0.1 -p PORT -U 0 -t 1 -m 64 (plus -u root when running as root, which memcached
 * demands) on port, or on a free port when port is 0, and waits up to 10 s until it accepts a connection. With port 0
 * a lost port race (address in use) is retried on new ports, at most 3 tries. m is reset first (its port kept when
 * port != 0). Returns 0, or -1 after printing the child's log. */
int mc_start(mc_proc_t *m, int port);

/* SIGTERM (and SIGCONT) by PID, wait up to 5 s, then SIGKILL; reaped. Returns the exit status as harness_stop does,
 * or -1 when m was not running. m->pid becomes 0; m->port is kept. */
int mc_stop(mc_proc_t *m);

/* SIGSTOP / SIGCONT by PID. 0 or -1 (not running, or kill failed). */
int mc_freeze(mc_proc_t *m);
int mc_thaw(mc_proc_t *m);

/* ---- text-protocol client ---- */

enum { MC_ERROR = -1, MC_NOT_FOUND = 0, MC_FOUND = 1 };

/* get key. MC_FOUND with the value's bytes in buf and its length in *len; MC_NOT_FOUND; MC_ERROR on a transport or
 * protocol error, a timeout, or a value longer than cap (then *len is its length and buf holds nothing useful). */
int mc_get(int port, const char *key, void *buf, size_t cap, size_t *len);

/* set key (flags 0) to len bytes (any bytes, CR, LF and NUL included) with exptime seconds (0: never). 0 when
 * STORED, else -1. */
int mc_set(int port, const char *key, const void *bytes, size_t len, unsigned exptime);

/* delete key. MC_FOUND (deleted), MC_NOT_FOUND, or MC_ERROR. */
int mc_delete(int port, const char *key);

/* flush_all. 0 or -1. */
int mc_flush_all(int port);

/* The value of "STAT name N" from `stats` (e.g. "curr_items", "get_hits"), or -1. */
long mc_stat(int port, const char *name);

/* mc_stat(port, "curr_items"). */
long mc_curr_items(int port);

/* Every key the server holds, from `lru_crawler metadump all` (its %XX escapes decoded). A crawl is no snapshot: it
 * can miss an item the LRU maintainer moves between queues meanwhile (seen with a fresh 300 KB item). So a crawl is
 * taken as complete when its count equals curr_items read just before and after it; after 20 crawls that never
 * agree (writes going on, or flushed or expired items still counted by curr_items) the union of what they listed is
 * returned. Busy crawlers are waited for, 5 s at most. *keys is a malloc'ed array of malloc'ed strings (free with
 * mc_free_keys), *n their number. Returns 0 or -1 (then *keys is NULL and *n 0). */
int mc_list_keys(int port, char ***keys, size_t *n);

/* How many keys mc_list_keys lists that start with prefix, or -1. */
long mc_count_prefix(int port, const char *prefix);

void mc_free_keys(char **keys, size_t n);

#endif
