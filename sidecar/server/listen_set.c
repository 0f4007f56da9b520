/*
 * listen_set.c: the traffic listeners as a reloadable set (listen_set.h).
 *
 * An entry is one listener address (with its TLS context and one accept context per worker); a set is the list of
 * entries of one generation. A set shares the entries of the addresses it keeps with the set before it, so a worker
 * tells an unchanged listener by its entry pointer and keeps its socket. Entries and sets are never freed (TLS
 * handshakes in progress point at their accept context; a reload that changes listeners is rare): every one stays
 * reachable from all_entries / all_sets.
 * Worker 0's socket of a new address is opened by the reloading thread (so a port in use fails the reload, not a
 * worker) and handed over through `first_fd` (exchanged atomically; closed by the commit when the address is removed
 * before worker 0 took it).
 *
 * Locking: set_mutex guards `current`, `pending` and the lists; `version` (atomic) counts installed sets so that a
 * worker's sync costs one relaxed load when nothing changed. Per-worker state (`workers[idx]`) is touched only by
 * that worker.
 */
#include "corral/server/listen_set.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral/conf/config_check.h"
#include "corral/core/log.h"
#include "corral/server/listeners.h"

typedef struct st_entry_t {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *address, *cert, *key; /* copies: the generation they came from may be freed */
    SSL_CTX *ssl;               /* NULL without TLS */
    h2o_accept_ctx_t *accept_ctxs; /* one per worker, filled in by the worker */
    int first_fd;               /* atomic: worker 0's socket until it takes it (-1) */
    int lock_fd;                /* the address claim (listeners.c), -1 once released */
    int removed;
    struct st_entry_t *next_all;
} entry_t;

typedef struct st_set_t {
    entry_t **entries;
    size_t n;
    struct st_set_t *next_all;
} set_t;

typedef struct st_worker_listeners_t {
    entry_t **entries;
    h2o_socket_t **socks;
    size_t n;
    uint64_t version;
} worker_listeners_t;

static pthread_mutex_t set_mutex = PTHREAD_MUTEX_INITIALIZER;
static set_t *current, *pending, *all_sets;
static entry_t *all_entries;
static uint64_t version; /* atomic */
static worker_listeners_t *workers;
static unsigned nworkers;

static int same_addr(const entry_t *e, const cr_listen_config_t *l)
{
    return e->addrlen == l->addrlen && memcmp(&e->addr, &l->addr, l->addrlen) == 0;
}

static int str_same(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static entry_t *find(const set_t *s, const cr_listen_config_t *l)
{
    for (size_t i = 0; s != NULL && i != s->n; ++i)
        if (same_addr(s->entries[i], l))
            return s->entries[i];
    return NULL;
}

/* A new entry for listener `index` of cfg: claimed, worker 0's socket open, TLS context made. NULL with errbuf. */
static entry_t *entry_new(const cr_config_t *cfg, size_t index, char *errbuf, size_t errbufsize)
{
    const cr_listen_config_t *l = cfg->listens + index;
    entry_t *e = calloc(1, sizeof(*e));

    if (e == NULL || (e->accept_ctxs = calloc(nworkers, sizeof(*e->accept_ctxs))) == NULL ||
        (e->address = strdup(l->address)) == NULL) {
        snprintf(errbuf, errbufsize, "out of memory");
        goto Error;
    }
    e->addr = l->addr;
    e->addrlen = l->addrlen;
    e->cert = l->tls_certificate != NULL ? strdup(l->tls_certificate) : NULL;
    e->key = l->tls_key != NULL ? strdup(l->tls_key) : NULL;
    e->first_fd = e->lock_fd = -1;
    if (l->tls_certificate != NULL) {
        if ((e->ssl = cr_config_tls_ctx_new(cfg, index, errbuf, errbufsize)) == NULL)
            goto Error;
        h2o_ssl_register_alpn_protocols(e->ssl, h2o_http2_alpn_protocols);
    }
    if ((e->lock_fd = cr_listener_claim(&l->addr, l->addrlen, l->address, "", errbuf, errbufsize)) == -2)
        goto Error;
    if ((e->first_fd = cr_listener_open(&l->addr, l->addrlen)) == -1) {
        snprintf(errbuf, errbufsize, "cannot listen on %s: %s", l->address, strerror(errno));
        goto Error;
    }
    return e;
Error:
    if (e != NULL) {
        if (e->lock_fd >= 0)
            close(e->lock_fd);
        if (e->ssl != NULL)
            SSL_CTX_free(e->ssl);
        free(e->accept_ctxs);
        free(e->address);
        free(e->cert);
        free(e->key);
        free(e);
    }
    return NULL;
}

/* The set of next's listeners, reusing base's entries for kept addresses. NULL with errbuf (new entries undone);
 * *refused (may be NULL) is set when the reason is a change that needs a restart. */
static set_t *set_build(const set_t *base, const cr_config_t *next, char *errbuf, size_t errbufsize, int *refused)
{
    set_t *s = calloc(1, sizeof(*s));
    size_t i, made = 0;
    entry_t **fresh = calloc(next->num_listens + 1, sizeof(*fresh));

    if (s == NULL || fresh == NULL || (s->entries = calloc(next->num_listens, sizeof(*s->entries))) == NULL) {
        snprintf(errbuf, errbufsize, "out of memory");
        goto Error;
    }
    for (i = 0; i != next->num_listens; ++i) {
        const cr_listen_config_t *l = next->listens + i;
        entry_t *e = find(base, l);
        if (e != NULL && (!str_same(e->cert, l->tls_certificate) || !str_same(e->key, l->tls_key))) {
            snprintf(errbuf, errbufsize,
                     "listen[%zu].tls: changing the TLS certificate or key of a listener that stays needs a restart "
                     "(or remove the listener in one reload and add it in the next)",
                     i);
            if (refused != NULL)
                *refused = 1;
            goto Error;
        }
        if (e == NULL) {
            if ((e = entry_new(next, i, errbuf, errbufsize)) == NULL)
                goto Error;
            fresh[made++] = e;
        }
        s->entries[s->n++] = e;
    }
    for (i = 0; i != made; ++i) { /* kept from now on */
        fresh[i]->next_all = all_entries;
        all_entries = fresh[i];
    }
    free(fresh);
    return s;
Error:
    for (i = 0; i != made; ++i) {
        close(fresh[i]->first_fd);
        close(fresh[i]->lock_fd);
        if (fresh[i]->ssl != NULL)
            SSL_CTX_free(fresh[i]->ssl);
        free(fresh[i]->accept_ctxs);
        free(fresh[i]->address);
        free(fresh[i]->cert);
        free(fresh[i]->key);
        free(fresh[i]);
    }
    free(fresh);
    if (s != NULL)
        free(s->entries);
    free(s);
    return NULL;
}

int cr_listen_set_init(const cr_config_t *cfg)
{
    char errbuf[1024];
    set_t *s;

    nworkers = cfg->threads;
    workers = calloc(nworkers, sizeof(*workers));
    if (workers == NULL)
        return -1;
    pthread_mutex_lock(&set_mutex);
    s = set_build(NULL, cfg, errbuf, sizeof(errbuf), NULL);
    if (s != NULL) {
        s->next_all = all_sets;
        all_sets = current = s;
        __atomic_store_n(&version, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&set_mutex);
    if (s == NULL)
        cr_log_error("%s", errbuf);
    return s != NULL ? 0 : -1;
}

static int in_set(const set_t *s, const entry_t *e)
{
    for (size_t i = 0; i != s->n; ++i)
        if (s->entries[i] == e)
            return 1;
    return 0;
}

void cr_listen_set_sync(cr_thread_t *t)
{
    worker_listeners_t *w = workers + t->idx;
    const set_t *s;
    uint64_t v;
    size_t i, j;

    if (__atomic_load_n(&version, __ATOMIC_RELAXED) == w->version)
        return;
    pthread_mutex_lock(&set_mutex);
    s = current;
    v = __atomic_load_n(&version, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&set_mutex); /* s is never freed */

    for (i = 0; i != w->n;) { /* removed listeners */
        if (in_set(s, w->entries[i])) {
            ++i;
            continue;
        }
        cr_listener_stop(&w->socks[i]);
        w->entries[i] = w->entries[w->n - 1];
        w->socks[i] = w->socks[w->n - 1];
        --w->n;
    }
    {
        entry_t **ne = realloc(w->entries, (w->n + s->n + 1) * sizeof(*ne));
        h2o_socket_t **ns = ne != NULL ? realloc(w->socks, (w->n + s->n + 1) * sizeof(*ns)) : NULL;
        if (ne != NULL)
            w->entries = ne;
        if (ns == NULL) {
            cr_log_error("worker %u: out of memory opening listeners", t->idx);
            return; /* tried again at the next loop turn */
        }
        w->socks = ns;
    }
    for (i = 0; i != s->n; ++i) { /* added listeners */
        entry_t *e = s->entries[i];
        h2o_accept_ctx_t *actx = e->accept_ctxs + t->idx;
        int fd = -1;
        for (j = 0; j != w->n && w->entries[j] != e; ++j)
            ;
        if (j != w->n)
            continue;
        if (t->idx == 0)
            fd = __atomic_exchange_n(&e->first_fd, -1, __ATOMIC_ACQ_REL);
        if (fd == -1 && (fd = cr_listener_open(&e->addr, e->addrlen)) == -1) {
            cr_log_error("worker %u: cannot listen on %s: %s", t->idx, e->address, strerror(errno));
            continue;
        }
        actx->ctx = &t->ctx;
        actx->hosts = cr_rt.globalconf.hosts;
        actx->ssl_ctx = e->ssl;
        actx->expect_proxy_line = 0;
        w->entries[w->n] = e;
        w->socks[w->n] = cr_listener_start(t, fd, actx, 1);
        ++w->n;
    }
    w->version = v;
}

void cr_listen_set_close_all(cr_thread_t *t)
{
    worker_listeners_t *w = workers + t->idx;
    for (size_t i = 0; i != w->n; ++i)
        cr_listener_stop(&w->socks[i]);
    w->n = 0;
    w->version = UINT64_MAX; /* never synced again */
}

int cr_listen_set_prepare(const cr_config_t *running, const cr_config_t *next, char *errbuf, size_t errbufsize)
{
    set_t *s;
    size_t i;
    int changed = running->num_listens != next->num_listens, refused = 0;

    for (i = 0; !changed && i != next->num_listens; ++i) {
        const cr_listen_config_t *a = running->listens + i, *b = next->listens + i;
        changed = a->addrlen != b->addrlen || memcmp(&a->addr, &b->addr, a->addrlen) != 0 ||
                  !str_same(a->tls_certificate, b->tls_certificate) || !str_same(a->tls_key, b->tls_key);
    }
    if (!changed)
        return 0;
    pthread_mutex_lock(&set_mutex);
    s = set_build(current, next, errbuf, errbufsize, &refused);
    if (s != NULL) {
        s->next_all = all_sets;
        all_sets = pending = s;
    }
    pthread_mutex_unlock(&set_mutex);
    return s != NULL ? 0 : refused ? -1 : -2;
}

void cr_listen_set_commit(void)
{
    set_t *old;
    size_t i;

    pthread_mutex_lock(&set_mutex);
    if (pending == NULL) {
        pthread_mutex_unlock(&set_mutex);
        return;
    }
    old = current;
    current = pending;
    pending = NULL;
    __atomic_add_fetch(&version, 1, __ATOMIC_RELEASE);
    for (i = 0; i != current->n; ++i)
        if (!in_set(old, current->entries[i]))
            cr_log_info("listening on %s (%s): added by a reload", current->entries[i]->address,
                        current->entries[i]->ssl != NULL ? "h2 + http/1.1 over TLS" : "http/1.1 + h2c");
    for (i = 0; i != old->n; ++i) {
        entry_t *e = old->entries[i];
        int fd;
        if (in_set(current, e))
            continue;
        e->removed = 1;
        if ((fd = __atomic_exchange_n(&e->first_fd, -1, __ATOMIC_ACQ_REL)) != -1)
            close(fd);
        if (e->lock_fd >= 0)
            close(e->lock_fd);
        e->lock_fd = -1;
        cr_log_info("listener %s removed by a reload: each thread closes its socket", e->address);
    }
    pthread_mutex_unlock(&set_mutex);
}

void cr_listen_set_log(void)
{
    pthread_mutex_lock(&set_mutex);
    for (size_t i = 0; i != current->n; ++i)
        cr_log_info("listening on %s (%s)", current->entries[i]->address,
                    current->entries[i]->ssl != NULL ? "h2 + http/1.1 over TLS" : "http/1.1 + h2c");
    pthread_mutex_unlock(&set_mutex);
}
