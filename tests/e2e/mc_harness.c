/*
 * mc_harness.c: the memcached processes and the text-protocol client declared in mc_harness.h.
 *
 * Invariants:
 *   - children are tracked in a fixed table; each is stopped by PID (mc_stop) and, as a safety net, killed and
 *     reaped by an atexit hook and by PR_SET_PDEATHSIG if the test binary dies first.
 *   - waits are bounded polling loops stepping 10 ms against harness_now_ms() deadlines.
 *   - a client call owns one socket from connect to close; reads go through a small per-call buffer, never past
 *     the reply being parsed (one request, one reply, then close).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mc_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MC_START_TIMEOUT_MS 10000
#define MC_STOP_TIMEOUT_MS 5000
#define MC_LIST_TIMEOUT_MS 5000
#define MC_MAX_CHILDREN 32

/* ---- children, temp directory ---- */

static pid_t mc_children[MC_MAX_CHILDREN];
static char mc_dir[128];
static int mc_atexit_done;

static void mc_cleanup_at_exit(void)
{
    int i;
    for (i = 0; i != MC_MAX_CHILDREN; ++i)
        if (mc_children[i] > 0) {
            kill(mc_children[i], SIGKILL);
            waitpid(mc_children[i], NULL, 0);
            mc_children[i] = 0;
        }
    if (mc_dir[0] != '\0' && getenv("CORRAL_E2E_KEEP") == NULL) {
        DIR *d = opendir(mc_dir);
        if (d != NULL) {
            struct dirent *e;
            char path[PATH_MAX];
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                snprintf(path, sizeof(path), "%s/%s", mc_dir, e->d_name);
                unlink(path);
            }
            closedir(d);
        }
        rmdir(mc_dir);
    }
}

static void mc_track(pid_t pid, int add)
{
    int i;
    for (i = 0; i != MC_MAX_CHILDREN; ++i)
        if (add ? mc_children[i] == 0 : mc_children[i] == pid) {
            mc_children[i] = add ? pid : 0;
            return;
        }
}

static int mc_log_path(char *out, size_t outsize)
{
    static unsigned seq;
    if (!mc_atexit_done) {
        atexit(mc_cleanup_at_exit);
        mc_atexit_done = 1;
    }
    if (mc_dir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(mc_dir, sizeof(mc_dir), "%s/corral-e2e-mc.XXXXXX", base && *base && strlen(base) < 80 ? base : "/tmp");
        if (mkdtemp(mc_dir) == NULL) {
            fprintf(stderr, "mc_harness: mkdtemp: %s\n", strerror(errno));
            mc_dir[0] = '\0';
            return -1;
        }
    }
    snprintf(out, outsize, "%s/memcached-%u.log", mc_dir, ++seq);
    return 0;
}

static void mc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int mc_decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Polls for pid's exit up to timeout_ms: its decoded status, -2 while it runs, -1 on a waitpid error. */
static int mc_wait_pid(pid_t pid, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            mc_track(pid, 0);
            return mc_decode_status(status);
        }
        if (r < 0 && errno != EINTR) {
            mc_track(pid, 0);
            return -1;
        }
        if (harness_now_ms() >= deadline)
            return -2;
        mc_sleep_ms(10);
    }
}

static pid_t mc_spawn(int port, const char *log_path)
{
    const char *bin = getenv("CORRAL_MEMCACHED") != NULL ? getenv("CORRAL_MEMCACHED") : "/usr/bin/memcached";
    char port_s[16];
    char *argv[16];
    int argc = 0;
    pid_t parent = getpid(), pid;
    snprintf(port_s, sizeof(port_s), "%d", port);
    argv[argc++] = (char *)bin;
    argv[argc++] = "-l";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "-p";
    argv[argc++] = port_s;
    argv[argc++] = "-U";
    argv[argc++] = "0";
    argv[argc++] = "-t";
    argv[argc++] = "1";
    argv[argc++] = "-m";
    argv[argc++] = "64";
    if (geteuid() == 0) { /* memcached refuses to run as root without -u */
        argv[argc++] = "-u";
        argv[argc++] = "root";
    }
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0) {
        fprintf(stderr, "mc_harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int in, out;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        in = open("/dev/null", O_RDONLY);
        out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        closefrom(3);
        execv(bin, argv);
        dprintf(2, "mc_harness: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    mc_track(pid, 1);
    return pid;
}

static void mc_print_log(const char *path)
{
    char *text = harness_read_file(path);
    fprintf(stderr, "\n---- memcached log (%s) ----\n%s\n---- end of log ----\n", path, text != NULL ? text : "(unreadable)");
    free(text);
}

int mc_start(mc_proc_t *m, int port)
{
    int attempt;
    memset(m, 0, sizeof(*m));
    for (attempt = 0; attempt != 3; ++attempt) {
        int p = port != 0 ? port : harness_free_port();
        long deadline;
        pid_t pid;
        if (p <= 0 || mc_log_path(m->log_path, sizeof(m->log_path)) != 0)
            return -1;
        if ((pid = mc_spawn(p, m->log_path)) < 0)
            return -1;
        deadline = harness_now_ms() + MC_START_TIMEOUT_MS;
        for (;;) {
            int st = mc_wait_pid(pid, 0), fd;
            if (st != -2) {
                char *log = harness_read_file(m->log_path);
                int in_use = log != NULL && strstr(log, "in use") != NULL;
                free(log);
                if (in_use && port == 0 && attempt != 2)
                    break; /* lost the port race: another port */
                fprintf(stderr, "mc_harness: memcached on port %d exited during startup (status %d)\n", p, st);
                mc_print_log(m->log_path);
                m->port = port;
                return -1;
            }
            if ((fd = harness_connect(p)) >= 0) {
                close(fd);
                m->pid = pid;
                m->port = p;
                return 0;
            }
            if (harness_now_ms() >= deadline) {
                fprintf(stderr, "mc_harness: memcached not accepting on %d after %d ms\n", p, MC_START_TIMEOUT_MS);
                kill(pid, SIGKILL);
                mc_wait_pid(pid, MC_STOP_TIMEOUT_MS);
                mc_print_log(m->log_path);
                m->port = port;
                return -1;
            }
            mc_sleep_ms(10);
        }
    }
    return -1;
}

int mc_stop(mc_proc_t *m)
{
    int st;
    if (m == NULL || m->pid <= 0)
        return -1;
    kill(m->pid, SIGTERM);
    kill(m->pid, SIGCONT); /* a frozen process acts on the SIGTERM only once it runs */
    if ((st = mc_wait_pid(m->pid, MC_STOP_TIMEOUT_MS)) == -2) {
        fprintf(stderr, "mc_harness: memcached pid %d ignored SIGTERM for %d ms; killing it\n", (int)m->pid, MC_STOP_TIMEOUT_MS);
        kill(m->pid, SIGKILL);
        st = mc_wait_pid(m->pid, MC_STOP_TIMEOUT_MS);
    }
    m->pid = 0;
    m->frozen = 0;
    return st < 0 ? -1 : st;
}

int mc_freeze(mc_proc_t *m)
{
    if (m == NULL || m->pid <= 0 || kill(m->pid, SIGSTOP) != 0)
        return -1;
    m->frozen = 1;
    return 0;
}

int mc_thaw(mc_proc_t *m)
{
    if (m == NULL || m->pid <= 0 || kill(m->pid, SIGCONT) != 0)
        return -1;
    m->frozen = 0;
    return 0;
}

/* ---- client ---- */

typedef struct {
    int fd;
    char buf[8192];
    size_t off, len; /* unread bytes are buf[off, len) */
} mc_conn_t;

static int mc_open(mc_conn_t *c, int port)
{
    struct timeval tv = {MC_IO_TIMEOUT_MS / 1000, (MC_IO_TIMEOUT_MS % 1000) * 1000};
    c->off = c->len = 0;
    if ((c->fd = harness_connect(port)) < 0)
        return -1;
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        close(c->fd);
        return -1;
    }
    return 0;
}

static void mc_close(mc_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int mc_send(mc_conn_t *c, const void *data, size_t n)
{
    const char *p = data;
    while (n != 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int mc_fill(mc_conn_t *c)
{
    ssize_t r;
    if (c->off == c->len)
        c->off = c->len = 0;
    if (c->len == sizeof(c->buf)) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
        if (c->len == sizeof(c->buf))
            return -1; /* a line longer than the buffer */
    }
    do
        r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return -1; /* closed, error or timeout */
    c->len += (size_t)r;
    return 0;
}

/* Reads one line ending in "\r\n" into line (without it, NUL-terminated). 0 or -1. */
static int mc_read_line(mc_conn_t *c, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (c->buf + c->off));
            if (n == 0 || nl[-1] != '\r' || n > cap)
                return -1;
            memcpy(line, c->buf + c->off, n - 1);
            line[n - 1] = '\0';
            c->off += n + 1;
            return 0;
        }
        if (mc_fill(c) != 0)
            return -1;
    }
}

/* Reads one line ending in "\n" (metadump's own lines have no CR; a CR before the LF is dropped) into line. 0 or -1. */
static int mc_read_line_lf(mc_conn_t *c, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (c->buf + c->off));
            if (n != 0 && nl[-1] == '\r')
                --n;
            if (n >= cap)
                return -1;
            memcpy(line, c->buf + c->off, n);
            line[n] = '\0';
            c->off = (size_t)(nl + 1 - c->buf);
            return 0;
        }
        if (mc_fill(c) != 0)
            return -1;
    }
}

/* Reads exactly n bytes into out (NULL: discard). 0 or -1. */
static int mc_read_exact(mc_conn_t *c, void *out, size_t n)
{
    char *o = out;
    while (n != 0) {
        size_t k;
        if (c->off == c->len && mc_fill(c) != 0)
            return -1;
        k = c->len - c->off < n ? c->len - c->off : n;
        if (o != NULL) {
            memcpy(o, c->buf + c->off, k);
            o += k;
        }
        c->off += k;
        n -= k;
    }
    return 0;
}

static int mc_key_ok(const char *key)
{
    size_t i, n = strlen(key);
    if (n == 0 || n > 250)
        return 0;
    for (i = 0; i != n; ++i)
        if ((unsigned char)key[i] <= ' ' || key[i] == 0x7f)
            return 0;
    return 1;
}

int mc_get(int port, const char *key, void *buf, size_t cap, size_t *len)
{
    mc_conn_t c;
    char cmd[300], line[600], name[260];
    unsigned flags;
    unsigned long long n;
    int rc = MC_ERROR;
    *len = 0;
    if (!mc_key_ok(key) || mc_open(&c, port) != 0)
        return MC_ERROR;
    snprintf(cmd, sizeof(cmd), "get %s\r\n", key);
    if (mc_send(&c, cmd, strlen(cmd)) != 0 || mc_read_line(&c, line, sizeof(line)) != 0)
        goto done;
    if (strcmp(line, "END") == 0) {
        rc = MC_NOT_FOUND;
        goto done;
    }
    if (sscanf(line, "VALUE %259s %u %llu", name, &flags, &n) != 3 || strcmp(name, key) != 0)
        goto done;
    *len = (size_t)n;
    if (n > cap)
        goto done;
    if (mc_read_exact(&c, buf, (size_t)n) != 0 || mc_read_line(&c, line, sizeof(line)) != 0 || line[0] != '\0' ||
        mc_read_line(&c, line, sizeof(line)) != 0 || strcmp(line, "END") != 0)
        goto done;
    rc = MC_FOUND;
done:
    mc_close(&c);
    return rc;
}

int mc_set(int port, const char *key, const void *bytes, size_t len, unsigned exptime)
{
    mc_conn_t c;
    char cmd[320], line[128];
    int rc = -1;
    if (!mc_key_ok(key) || mc_open(&c, port) != 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "set %s 0 %u %zu\r\n", key, exptime, len);
    if (mc_send(&c, cmd, strlen(cmd)) == 0 && mc_send(&c, bytes, len) == 0 && mc_send(&c, "\r\n", 2) == 0 &&
        mc_read_line(&c, line, sizeof(line)) == 0 && strcmp(line, "STORED") == 0)
        rc = 0;
    mc_close(&c);
    return rc;
}

int mc_delete(int port, const char *key)
{
    mc_conn_t c;
    char cmd[300], line[128];
    int rc = MC_ERROR;
    if (!mc_key_ok(key) || mc_open(&c, port) != 0)
        return MC_ERROR;
    snprintf(cmd, sizeof(cmd), "delete %s\r\n", key);
    if (mc_send(&c, cmd, strlen(cmd)) == 0 && mc_read_line(&c, line, sizeof(line)) == 0)
        rc = strcmp(line, "DELETED") == 0 ? MC_FOUND : strcmp(line, "NOT_FOUND") == 0 ? MC_NOT_FOUND : MC_ERROR;
    mc_close(&c);
    return rc;
}

int mc_flush_all(int port)
{
    mc_conn_t c;
    char line[128];
    int rc = -1;
    if (mc_open(&c, port) != 0)
        return -1;
    if (mc_send(&c, "flush_all\r\n", 11) == 0 && mc_read_line(&c, line, sizeof(line)) == 0 && strcmp(line, "OK") == 0)
        rc = 0;
    mc_close(&c);
    return rc;
}

long mc_stat(int port, const char *name)
{
    mc_conn_t c;
    char line[512];
    long v = -1;
    size_t nlen = strlen(name);
    int i;
    if (mc_open(&c, port) != 0)
        return -1;
    if (mc_send(&c, "stats\r\n", 7) == 0) {
        for (i = 0; i != 1000 && mc_read_line(&c, line, sizeof(line)) == 0; ++i) {
            if (strcmp(line, "END") == 0)
                break;
            if (strncmp(line, "STAT ", 5) == 0 && strncmp(line + 5, name, nlen) == 0 && line[5 + nlen] == ' ')
                v = atol(line + 6 + nlen);
        }
    }
    mc_close(&c);
    return v;
}

long mc_curr_items(int port)
{
    return mc_stat(port, "curr_items");
}

static int hexval(char h)
{
    return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

/* The key of a metadump line "key=<escaped> exp=...", decoded; malloc'ed or NULL. */
static char *metadump_key(const char *line)
{
    const char *s = line + 4, *end = strchr(s, ' ');
    char *out, *o;
    if (end == NULL)
        end = s + strlen(s);
    if ((out = o = malloc((size_t)(end - s) + 1)) == NULL)
        return NULL;
    while (s < end) {
        if (*s == '%' && end - s >= 3 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

void mc_free_keys(char **keys, size_t n)
{
    size_t i;
    if (keys == NULL)
        return;
    for (i = 0; i != n; ++i)
        free(keys[i]);
    free(keys);
}

/* One metadump. 0 with the keys, 1 when the crawler was busy (try again), -1 on an error. */
static int metadump_once(int port, char ***keys, size_t *n)
{
    mc_conn_t c;
    char line[1024];
    size_t cap = 0;
    int rc = -1, lines;
    *keys = NULL;
    *n = 0;
    if (mc_open(&c, port) != 0)
        return -1;
    if (mc_send(&c, "lru_crawler metadump all\r\n", 26) != 0)
        goto done;
    for (lines = 0; lines != 10000000; ++lines) {
        if (mc_read_line_lf(&c, line, sizeof(line)) != 0)
            goto done;
        if (strcmp(line, "END") == 0) {
            rc = 0;
            goto done;
        }
        if (strncmp(line, "BUSY", 4) == 0 || strstr(line, "try again") != NULL) {
            rc = 1;
            goto done;
        }
        if (strncmp(line, "key=", 4) != 0)
            goto done; /* ERROR, CLIENT_ERROR, or something unexpected */
        if (*n == cap) {
            char **k = realloc(*keys, (cap = cap ? cap * 2 : 64) * sizeof(*k));
            if (k == NULL)
                goto done;
            *keys = k;
        }
        if (((*keys)[*n] = metadump_key(line)) == NULL)
            goto done;
        ++*n;
    }
done:
    mc_close(&c);
    if (rc != 0) {
        mc_free_keys(*keys, *n);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

int mc_list_keys(int port, char ***keys, size_t *n)
{
    long deadline = harness_now_ms() + MC_LIST_TIMEOUT_MS;
    for (;;) {
        int rc = metadump_once(port, keys, n);
        if (rc <= 0)
            return rc;
        if (harness_now_ms() >= deadline)
            return -1;
        mc_sleep_ms(10);
    }
}

long mc_count_prefix(int port, const char *prefix)
{
    char **keys;
    size_t n, i, plen = strlen(prefix);
    long count = 0;
    if (mc_list_keys(port, &keys, &n) != 0)
        return -1;
    for (i = 0; i != n; ++i)
        if (strncmp(keys[i], prefix, plen) == 0)
            ++count;
    mc_free_keys(keys, n);
    return count;
}
