/*
 * config_reload.c: what a reload may change (cr_config_reload_check). A new generation replaces the running one
 * in place only when every key the server copies once at start is the same in both; those keys are the ones
 * marked "restart" in config_schema.c and config_limits.c (and "(restart)" in the README's configuration
 * reference and conf/corral-full.yaml).
 *
 * The reload itself is conf/reload.c. This only compares two loaded configs; it does not look at
 * files (a TLS certificate rewritten under the same path, or a new token in the same token file, is not seen).
 *
 * Invariants: pure; reads both configs, writes only errbuf. No state, no locks.
 */
#include "config_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int refuse(char *errbuf, size_t errbufsize, const char *fmt, ...)
{
    va_list ap;
    if (errbuf != NULL && errbufsize != 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errbufsize, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Same string, NULL (absent) equal only to NULL. */
static int str_same(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* Same numeric address (the loader zero-fills a sockaddr before it writes one, so the bytes compare). */
static int addr_same(const struct sockaddr_storage *a, socklen_t alen, const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

int cr_config_reload_check(const cr_config_t *running, const cr_config_t *next, char *errbuf, size_t errbufsize)
{
    return cr_config_reload_check_ex(running, next, 0, errbuf, errbufsize);
}

int cr_config_reload_check_ex(const cr_config_t *running, const cr_config_t *next, int listeners_live, char *errbuf,
                              size_t errbufsize)
{
    const char *key, *why;
    size_t i;

    CR_CHECK_OBJ_NOTNULL(running, CR_CONFIG_MAGIC);
    CR_CHECK_OBJ_NOTNULL(next, CR_CONFIG_MAGIC);
    if (errbuf != NULL && errbufsize != 0)
        errbuf[0] = '\0';

    if (running->threads != next->threads)
        return refuse(errbuf, errbufsize,
                      "threads: changing the number of threads needs a restart (%u now, %u in the new configuration)",
                      running->threads, next->threads);

    /* listeners are opened once, in order, by every thread; TLS contexts are made from the files at start (unless
     * the server follows listener changes: listeners_live, server/listen_set.c, which has rules of its own) */
    if (!listeners_live && running->num_listens != next->num_listens)
        return refuse(errbuf, errbufsize, "listen: changing listeners needs a restart (%zu now, %zu in the new configuration)",
                      running->num_listens, next->num_listens);
    for (i = 0; !listeners_live && i != running->num_listens; ++i) {
        const cr_listen_config_t *a = running->listens + i, *b = next->listens + i;
        if (!addr_same(&a->addr, a->addrlen, &b->addr, b->addrlen))
            return refuse(errbuf, errbufsize,
                          "listen[%zu].address: changing listeners needs a restart (\"%s\" now, \"%s\" in the new configuration)",
                          i, a->address, b->address);
        if (!str_same(a->tls_certificate, b->tls_certificate) || !str_same(a->tls_key, b->tls_key))
            return refuse(errbuf, errbufsize, "listen[%zu].tls: changing a listener's TLS certificate or key needs a restart", i);
    }

    /* each thread's upstream copies these when it is made (upstream.c cr_upstream_init) */
    if (!str_same(running->upstream.host, next->upstream.host) || running->upstream.port != next->upstream.port ||
        (!running->upstream.host_is_name && /* a name's address moves with DNS: its resolver follows it */
         !addr_same(&running->upstream.addr, running->upstream.addrlen, &next->upstream.addr, next->upstream.addrlen)))
        return refuse(errbuf, errbufsize,
                      "upstream.url: changing the upstream needs a restart (\"%s\" now, \"%s\" in the new configuration)",
                      running->upstream.url, next->upstream.url);
    if (running->upstream.max_connections != next->upstream.max_connections)
        return refuse(errbuf, errbufsize,
                      "upstream.max_connections: changing it needs a restart (each thread's share is set at start)");
    if (running->upstream.max_concurrency != next->upstream.max_concurrency ||
        running->upstream.min_concurrency != next->upstream.min_concurrency ||
        running->upstream.concurrency_adaptive != next->upstream.concurrency_adaptive)
        return refuse(errbuf, errbufsize, "upstream.max_concurrency: changing it needs a restart (the limiter is made at start)");
    if (running->upstream.breaker_failures != next->upstream.breaker_failures ||
        running->upstream.breaker_backoff_ms != next->upstream.breaker_backoff_ms ||
        running->upstream.breaker_max_backoff_ms != next->upstream.breaker_max_backoff_ms)
        return refuse(errbuf, errbufsize, "upstream.breaker: changing it needs a restart (the breaker is set up at start)");
    if (running->upstream.connect_timeout_ms != next->upstream.connect_timeout_ms ||
        running->upstream.timeout_ms != next->upstream.timeout_ms ||
        running->upstream.queue_timeout_ms != next->upstream.queue_timeout_ms)
        return refuse(errbuf, errbufsize, "upstream.%s: changing it needs a restart (each thread's upstream copies it at start)",
                      running->upstream.connect_timeout_ms != next->upstream.connect_timeout_ms ? "connect_timeout"
                      : running->upstream.timeout_ms != next->upstream.timeout_ms               ? "timeout"
                                                                                                : "queue_timeout");

    /* the admin listener is opened and its token read once (server.c, main.c) */
    if ((running->admin.address == NULL) != (next->admin.address == NULL) ||
        (running->admin.address != NULL &&
         !addr_same(&running->admin.addr, running->admin.addrlen, &next->admin.addr, next->admin.addrlen)))
        return refuse(errbuf, errbufsize, "admin.address: changing the admin listener needs a restart");
    if (!str_same(running->admin.token_file, next->admin.token_file) || !str_same(running->admin.token_env, next->admin.token_env))
        return refuse(errbuf, errbufsize, "admin.%s: changing the admin token's source needs a restart (it is read once at start)",
                      !str_same(running->admin.token_file, next->admin.token_file) ? "token_file" : "token_env");

    if (running->cache.memory != next->cache.memory)
        return refuse(errbuf, errbufsize, "cache.memory: resizing the cache needs a restart (the store is sized once, at start)");

    if ((key = cr_conf_limits_restart_diff(running, next, &why)) != NULL)
        return refuse(errbuf, errbufsize, "limits.%s: changing it needs a restart (%s)", key, why);

    /* the tier's client, pool threads and invalidation thread are made once (server.c) */
    {
        int same = running->tier.num_memcached_servers == next->tier.num_memcached_servers &&
                   running->tier.memcached_timeout_ms == next->tier.memcached_timeout_ms &&
                   running->tier.max_item_size == next->tier.max_item_size && running->tier.lease_ttl_ms == next->tier.lease_ttl_ms &&
                   running->tier.lease_poll_ms == next->tier.lease_poll_ms &&
                   running->tier.inval_max_delay_ms == next->tier.inval_max_delay_ms &&
                   running->tier.inval_poll_ms == next->tier.inval_poll_ms;
        size_t i;
        for (i = 0; same && i != running->tier.num_memcached_servers; ++i)
            same = strcmp(running->tier.memcached_servers[i], next->tier.memcached_servers[i]) == 0;
        if (!same)
            return refuse(errbuf, errbufsize, "tier: changing the shared tier needs a restart (its client is made once, at start)");
    }
    /* the access log's destination is opened once (main.c); log.level may change (generation.c applies it) */
    if (!str_same(running->log.access, next->log.access))
        return refuse(errbuf, errbufsize, "log.access: changing the access log's destination needs a restart (it is opened once, at start)");
    return 0;
}
