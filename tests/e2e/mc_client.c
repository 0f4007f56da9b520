/*
 * mc_client.c: the blocking memcached text-protocol client declared in mc_harness.h (get, set, delete, flush_all,
 * stats, and the key listing of `lru_crawler metadump all`).
 *
 * Invariants:
 *   - a call owns one socket from connect to close (one request, one reply, then close); sends and receives time out
 *     after MC_IO_TIMEOUT_MS (SO_SNDTIMEO / SO_RCVTIMEO), so a frozen server costs a bounded wait and an error.
 *   - replies are read through a small per-call buffer and never trusted: a length over the caller's buffer, a line
 *     without its CR LF or over the line buffer, or anything unexpected is an error.
 *   - no global state: the calls are thread-safe.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mc_harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MC_LIST_TIMEOUT_MS 5000
#define MC_LIST_TRIES 20 /* crawls that disagree with curr_items before the union of them is returned */

static void mc_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

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

/* Reads one line into line (NUL-terminated, without its end). strict: it must end in "\r\n", as protocol lines do;
 * else "\n" will do (metadump's own lines have no CR) and a CR before it is dropped. 0 or -1. */
static int mc_read_line_any(mc_conn_t *c, char *line, size_t cap, int strict)
{
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (c->buf + c->off));
            int cr = n != 0 && nl[-1] == '\r';
            if ((strict && !cr) || n - cr >= cap)
                return -1;
            memcpy(line, c->buf + c->off, n - cr);
            line[n - cr] = '\0';
            c->off += n + 1;
            return 0;
        }
        if (mc_fill(c) != 0)
            return -1;
    }
}

#define mc_read_line(c, line, cap) mc_read_line_any((c), (line), (cap), 1)
#define mc_read_line_lf(c, line, cap) mc_read_line_any((c), (line), (cap), 0)

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

/* Adds to (*acc, *nacc) the keys of k it lacks, taking them over; frees k and the rest. 0 or -1. */
static int merge_keys(char ***acc, size_t *nacc, char **k, size_t nk)
{
    size_t i, j;
    char **grown = realloc(*acc, (*nacc + nk + 1) * sizeof(*grown));
    if (grown == NULL) {
        mc_free_keys(k, nk);
        return -1;
    }
    *acc = grown;
    for (i = 0; i != nk; ++i) {
        for (j = 0; j != *nacc && strcmp(grown[j], k[i]) != 0; ++j)
            ;
        if (j == *nacc)
            grown[(*nacc)++] = k[i];
        else
            free(k[i]);
    }
    free(k);
    return 0;
}

int mc_list_keys(int port, char ***keys, size_t *n)
{
    long deadline = harness_now_ms() + MC_LIST_TIMEOUT_MS;
    char **acc = NULL;
    size_t nacc = 0;
    int complete_tries = 0;
    *keys = NULL;
    *n = 0;
    for (;;) {
        char **k;
        size_t nk;
        long before = mc_curr_items(port), after;
        int rc = metadump_once(port, &k, &nk);
        after = mc_curr_items(port);
        if (rc < 0 || before < 0 || after < 0) {
            mc_free_keys(acc, nacc);
            return -1;
        }
        if (rc == 0 && (long)nk == before && before == after) { /* agrees with curr_items: complete */
            mc_free_keys(acc, nacc);
            *keys = k;
            *n = nk;
            return 0;
        }
        if (rc == 0 && (merge_keys(&acc, &nacc, k, nk) != 0 || ++complete_tries == MC_LIST_TRIES)) {
            *keys = acc; /* the union of what the crawls saw (NULL after an allocation failure) */
            *n = nacc;
            return acc != NULL ? 0 : -1;
        }
        if (harness_now_ms() >= deadline) {
            mc_free_keys(acc, nacc);
            return -1;
        }
        mc_pause_ms(10);
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
