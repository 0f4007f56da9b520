/*
 * config.c: reads the YAML configuration (libyaml document API) into an immutable cr_config_t: loading, the
 * top-level sections (threads, listen, upstream, admin, cache, tier; limits and routes have their own files),
 * freeing, and the generation references (cr_config_retain / cr_config_release).
 *
 * Invariants:
 * - Validation is complete: a config that loads is one the server can start with, except for what needs files, the
 *   environment or the network: TLS files and the admin token are checked by config_check.c (for -t and start-up
 *   alike, with the positions recorded here), bind failures by the server.
 * - Every allocation is attached to the cr_config_t under construction the moment it is made (arrays are
 *   zero-filled and their counts set before they are filled), so any error path frees everything with
 *   cr_config_free(). The libyaml document is always deleted before returning.
 * - The first error wins: it is written to errbuf as "file:line:col: message" (1-based, from libyaml's marks: the
 *   offending node, or for a missing key the mapping that lacks it) and loading stops (yaml_read.c).
 * - No global state but the sequence counter behind cfg->seq (atomic); safe to call from any thread. refs is the only
 *   field that changes after loading (atomically).
 *
 * The files of conf/: yaml_read.c (typed YAML scalars, positions, messages), config_schema.c (allowed keys, restart
 * marks), config_limits.c, config_routes.c, config_reload.c (what a reload may change), config_check.c (files and
 * environment), route.c (picking a route).
 */
#include "config_parse.h"
#include "corral/core/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CR_CONFIG_MAX_FILE_SIZE (16u << 20)
#define CR_CONFIG_MIN_MEMORY ((size_t)1 << 20)
#define CR_CONFIG_MAX_THREADS 256
#define CR_CONFIG_MAX_CONNECTIONS 100000

/* the last cfg->seq given (cr_config_t.seq) */
static _Atomic uint64_t config_seq;

static const char *check_env_name(char *s)
{
    const char *q;
    for (q = s; *q != '\0'; ++q)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_'))
            return "an environment variable name has only letters, digits and '_'";
    return NULL;
}

/* ---- addresses ---- */

/*
 * Parses "host:port", "[v6]:port" (or, with `default_port` != 0, without ":port") into a numeric sockaddr using
 * inet_pton only; "localhost" is 127.0.0.1. With `allow_names`, any DNS-like host name is accepted and not resolved
 * (ss may then be left zeroed). Copies the bare host (no brackets) into hostbuf. Returns NULL or the reason.
 */
static const char *parse_hostport(const char *s, size_t len, uint16_t default_port, int allow_names, char *hostbuf,
                                  size_t hostbufsize, struct sockaddr_storage *ss, socklen_t *sslen, uint16_t *portout)
{
    const char *host, *hostend, *rest, *end = s + len, *pend;
    uint64_t port = default_port;
    size_t hostlen, i;
    char hbuf[INET6_ADDRSTRLEN + 1], pbuf[8];

    if (len != 0 && s[0] == '[') {
        host = s + 1;
        if ((hostend = memchr(host, ']', (size_t)(end - host))) == NULL)
            return "missing ']' after an IPv6 address";
        rest = hostend + 1;
    } else {
        host = s;
        hostend = memchr(s, ':', len);
        if (hostend == NULL)
            hostend = end;
        else if (memchr(hostend + 1, ':', (size_t)(end - hostend - 1)) != NULL)
            return "an IPv6 address must be written in brackets, e.g. [::1]:8081";
        rest = hostend;
    }
    if ((hostlen = (size_t)(hostend - host)) == 0)
        return "the host is empty";
    if (rest == end) {
        if (default_port == 0)
            return "expected host:port";
    } else {
        if (*rest != ':' || (size_t)(end - rest - 1) >= sizeof(pbuf) || rest + 1 == end)
            return "expected host:port with a numeric port";
        memcpy(pbuf, rest + 1, (size_t)(end - rest - 1));
        pbuf[end - rest - 1] = '\0';
        if (cr_conf_parse_digits(pbuf, &port, &pend) != 0 || *pend != '\0')
            return "expected host:port with a numeric port";
        if (port < 1 || port > 65535)
            return "port out of range (1..65535)";
    }
    if (hostlen >= hostbufsize)
        return "the host is too long";
    memcpy(hostbuf, host, hostlen);
    hostbuf[hostlen] = '\0';
    *portout = (uint16_t)port;

    memset(ss, 0, sizeof(*ss));
    *sslen = 0;
    if (hostlen < sizeof(hbuf)) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        memcpy(hbuf, host, hostlen);
        hbuf[hostlen] = '\0';
        if (s[0] == '[') {
            if (inet_pton(AF_INET6, hbuf, &sin6->sin6_addr) != 1)
                return "not a numeric IPv6 address inside the brackets";
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)port);
            *sslen = sizeof(*sin6);
            return NULL;
        }
        if (strcmp(hbuf, "localhost") == 0)
            strcpy(hbuf, "127.0.0.1");
        if (inet_pton(AF_INET, hbuf, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)port);
            *sslen = sizeof(*sin);
            return NULL;
        }
    } else if (s[0] == '[') {
        return "not a numeric IPv6 address inside the brackets";
    }
    if (!allow_names)
        return "the host must be a numeric IPv4 address, a bracketed IPv6 address or localhost";
    for (i = 0; i != hostlen; ++i) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return "not a valid host name";
    }
    return NULL;
}

/* A listen/admin address: numeric only. Fails with the reason at the node. */
static int parse_address_node(cr_conf_parser_t *p, const yaml_node_t *n, const char *name, struct sockaddr_storage *ss,
                              socklen_t *sslen)
{
    char host[256];
    uint16_t port;
    const char *why;
    if (cr_conf_expect_scalar(p, n, name) != 0)
        return -1;
    if ((why = parse_hostport(cr_conf_scalar_str(n), n->data.scalar.length, 0, 0, host, sizeof(host), ss, sslen, &port)) != NULL)
        return cr_conf_fail(p, n, "%s: bad address \"%s\": %s", name, cr_conf_scalar_str(n), why);
    return 0;
}

static int sockaddr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

/* ---- sections ---- */

static int parse_listens(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    const yaml_node_item_t *it;
    size_t count, i, j;
    char path[64], name[96];

    if (cr_conf_expect_list(p, n, "listen") != 0)
        return -1;
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return cr_conf_fail(p, n, "listen: at least one listener is required");
    if ((cfg->listens = cr_conf_calloc(p, n, count, sizeof(*cfg->listens))) == NULL)
        return -1;
    cfg->num_listens = count;

    for (i = 0, it = n->data.sequence.items.start; i != count; ++i, ++it) {
        cr_listen_config_t *l = cfg->listens + i;
        cr_conf_map_t m = {cr_conf_node(p, *it), path};
        const yaml_node_t *addr, *tls;

        snprintf(path, sizeof(path), "listen[%zu]", i);
        if (cr_conf_check_mapping(p, m.node, SEC_LISTEN, path, path) != 0)
            return -1;
        if (cr_conf_opt_string(p, &m, "address", 1, NULL, &l->address) != 0)
            return -1;
        addr = cr_conf_find(p, &m, "address");
        if (parse_address_node(p, addr, cr_conf_join(name, sizeof(name), path, "address"), &l->addr, &l->addrlen) != 0)
            return -1;
        for (j = 0; j != i; ++j)
            if (sockaddr_same(&cfg->listens[j].addr, &l->addr))
                return cr_conf_fail(p, addr, "%s: duplicate listen address \"%s\" (same as listen[%zu], \"%s\")", name, l->address,
                                    j, cfg->listens[j].address);
        if ((tls = cr_conf_find(p, &m, "tls")) != NULL) {
            char tpath[80];
            cr_conf_map_t tm = {tls, tpath};
            cr_conf_join(tpath, sizeof(tpath), path, "tls");
            if (cr_conf_check_mapping(p, tls, SEC_TLS, tpath, tpath) != 0)
                return -1;
            if (cr_conf_opt_string(p, &tm, "certificate", 1, NULL, &l->tls_certificate) != 0 ||
                cr_conf_opt_string(p, &tm, "key", 1, NULL, &l->tls_key) != 0)
                return -1;
            l->tls_certificate_pos = cr_conf_pos_of(cr_conf_find(p, &tm, "certificate"));
            l->tls_key_pos = cr_conf_pos_of(cr_conf_find(p, &tm, "key"));
        }
    }
    return 0;
}

static int parse_upstream(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "upstream"};
    const yaml_node_t *urln;
    const char *url, *auth, *authend, *why;
    char host[256];
    uint64_t maxconn = cfg->upstream.max_connections;

    if (cr_conf_check_mapping(p, n, SEC_UPSTREAM, "upstream", "upstream") != 0)
        return -1;
    if (cr_conf_opt_string(p, &m, "url", 1, NULL, &cfg->upstream.url) != 0)
        return -1;
    urln = cr_conf_find(p, &m, "url");
    url = cfg->upstream.url;
    if (strncasecmp(url, "https://", 8) == 0)
        return cr_conf_fail(p, urln, "upstream.url: https is not supported for the upstream; use http:// (\"%s\")", url);
    if (strncasecmp(url, "http://", 7) != 0)
        return cr_conf_fail(p, urln, "upstream.url: must start with http:// (\"%s\")", url);
    auth = url + 7;
    authend = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(authend - auth)) != NULL)
        return cr_conf_fail(p, urln, "upstream.url: user information is not allowed (\"%s\")", url);
    if (*authend != '\0' && strcmp(authend, "/") != 0)
        return cr_conf_fail(p, urln, "upstream.url: must not have a path, query or fragment (\"%s\")", url);
    if ((why = parse_hostport(auth, (size_t)(authend - auth), 80, 1, host, sizeof(host), &cfg->upstream.addr,
                              &cfg->upstream.addrlen, &cfg->upstream.port)) != NULL)
        return cr_conf_fail(p, urln, "upstream.url: bad address in \"%s\": %s", url, why);
    if (cfg->upstream.addrlen == 0) { /* a host name: resolved now (off any loop), again while running */
        cfg->upstream.host_is_name = 1;
        if (cr_resolve_host(host, cfg->upstream.port, &cfg->upstream.addr, &cfg->upstream.addrlen, &why) != 0)
            return cr_conf_fail(p, urln, "upstream.url: cannot resolve \"%s\": %s", host, why);
    }
    if ((cfg->upstream.host = cr_conf_strdup(host, strlen(host))) == NULL)
        return cr_conf_fail(p, urln, "out of memory");

    if (cr_conf_opt_uint(p, &m, "max_connections", 1, CR_CONFIG_MAX_CONNECTIONS, &maxconn) != 0)
        return -1;
    cfg->upstream.max_connections = (size_t)maxconn;
    if (maxconn < cfg->threads) {
        /* the cap is split over the threads, each of which needs at least one connection */
        const yaml_node_t *mc = cr_conf_find(p, &m, "max_connections");
        return cr_conf_fail(p, mc != NULL ? mc : n,
                            "upstream.max_connections (%llu) is less than threads (%u): each thread needs at least one "
                            "connection; raise max_connections or lower threads",
                            (unsigned long long)maxconn, cfg->threads);
    }
    if (cr_conf_opt_duration(p, &m, "connect_timeout", 1, &cfg->upstream.connect_timeout_ms) != 0 ||
        cr_conf_opt_duration(p, &m, "timeout", 1, &cfg->upstream.timeout_ms) != 0 ||
        cr_conf_opt_duration(p, &m, "queue_timeout", 1, &cfg->upstream.queue_timeout_ms) != 0)
        return -1;
    if (cr_conf_parse_health(p, cfg, &m) != 0)
        return -1;
    return cr_conf_parse_upstream_protection(p, cfg, &m);
}

static int parse_admin(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "admin"};
    const yaml_node_t *addr, *env, *file;
    size_t i;

    if (cr_conf_check_mapping(p, n, SEC_ADMIN, "admin", "admin") != 0)
        return -1;
    if (cr_conf_opt_string(p, &m, "address", 1, NULL, &cfg->admin.address) != 0)
        return -1;
    addr = cr_conf_find(p, &m, "address");
    if (parse_address_node(p, addr, "admin.address", &cfg->admin.addr, &cfg->admin.addrlen) != 0)
        return -1;
    for (i = 0; i != cfg->num_listens; ++i)
        if (sockaddr_same(&cfg->listens[i].addr, &cfg->admin.addr))
            return cr_conf_fail(p, addr, "admin.address: \"%s\" is already used by listen[%zu]", cfg->admin.address, i);
    if ((env = cr_conf_find_key(p, &m, "token_env")) != NULL && (file = cr_conf_find_key(p, &m, "token_file")) != NULL)
        return cr_conf_fail(p, env->start_mark.index > file->start_mark.index ? env : file,
                            "admin: both token_file and token_env are set; use at most one");
    if (cr_conf_opt_string(p, &m, "token_file", 0, NULL, &cfg->admin.token_file) != 0 ||
        cr_conf_opt_string(p, &m, "token_env", 0, check_env_name, &cfg->admin.token_env) != 0)
        return -1;
    cfg->admin.token_file_pos = cr_conf_pos_of(cr_conf_find(p, &m, "token_file"));
    cfg->admin.token_env_pos = cr_conf_pos_of(cr_conf_find(p, &m, "token_env"));
    return 0;
}

/* A non-empty header name, lower-cased in place. */
static const char *check_surrogate_key_header(char *s)
{
    if (s[0] == '\0')
        return "not a valid header name";
    return cr_conf_check_header_name(s);
}

static int parse_cache(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *n)
{
    cr_conf_map_t m = {n, "cache"};
    const yaml_node_t *mem, *maxobj;

    if (cr_conf_check_mapping(p, n, SEC_CACHE, "cache", "cache") != 0)
        return -1;
    if (cr_conf_opt_size(p, &m, "memory", &cfg->cache.memory) != 0 ||
        cr_conf_opt_size(p, &m, "max_object_size", &cfg->cache.max_object_size) != 0)
        return -1;
    if (cr_conf_opt_string(p, &m, "surrogate_key_header", 0, check_surrogate_key_header, &cfg->cache.surrogate_key_header) != 0 ||
        cr_conf_opt_bool(p, &m, "keep_surrogate_key", &cfg->cache.keep_surrogate_key) != 0 ||
        cr_conf_parse_purge_from(p, cfg, &m) != 0 || cr_conf_parse_targeted(p, cfg, &m) != 0)
        return -1;
    mem = cr_conf_find(p, &m, "memory");
    maxobj = cr_conf_find(p, &m, "max_object_size");
    if (cfg->cache.memory < CR_CONFIG_MIN_MEMORY)
        return cr_conf_fail(p, mem, "cache.memory: %s is out of range (at least 1MiB)", cr_conf_scalar_str(mem));
    if (maxobj == NULL) {
        /* the default must not exceed a small explicit memory */
        cfg->cache.max_object_size = CR_MIN(cfg->cache.max_object_size, cfg->cache.memory);
    } else if (cfg->cache.max_object_size == 0) {
        return cr_conf_fail(p, maxobj, "cache.max_object_size: must be greater than 0");
    } else if (cfg->cache.max_object_size > cfg->cache.memory) {
        return cr_conf_fail(p, maxobj, "cache.max_object_size: %s is out of range (at most cache.memory, %zu bytes)",
                            cr_conf_scalar_str(maxobj), cfg->cache.memory);
    }
    return 0;
}

/* tier.memcached.servers[]: "host:port", names allowed (config_tier.c) */
const char *cr_conf_check_server(char *s)
{
    char host[256];
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint16_t port;
    return parse_hostport(s, strlen(s), 0, 1, host, sizeof(host), &ss, &sslen, &port);
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CR_CONFIG_MAX_THREADS ? CR_CONFIG_MAX_THREADS : (unsigned)n;
}

/* Fills cfg from the document root. Returns 0, or -1 with the error reported. */
static int parse_root(cr_conf_parser_t *p, cr_config_t *cfg, const yaml_node_t *root)
{
    cr_conf_map_t m = {root, ""};
    const yaml_node_t *n;
    uint64_t threads = default_threads();

    cfg->threads = (unsigned)threads;
    cfg->upstream.max_connections = 64;
    cfg->upstream.connect_timeout_ms = 1000;
    cfg->upstream.timeout_ms = 30000;
    cfg->upstream.queue_timeout_ms = 5000;
    cfg->cache.memory = (size_t)256 << 20;
    cfg->cache.max_object_size = (size_t)8 << 20;
    if ((cfg->cache.surrogate_key_header = cr_conf_strdup("surrogate-key", 13)) == NULL ||
        cr_conf_set_targeted_defaults(cfg) != 0)
        return cr_conf_fail_at(p, 1, 1, "out of memory");
    cfg->tier.memcached_timeout_ms = 20;
    cfg->tier.max_item_size = (size_t)1 << 20;
    cfg->tier.lease_ttl_ms = 2000;
    cfg->tier.lease_poll_ms = 5;
    cfg->tier.inval_max_delay_ms = 150;
    cfg->tier.inval_poll_ms = 10;
    cr_conf_set_limit_defaults(cfg);
    cr_conf_set_lifecycle_defaults(cfg);
    if (cr_conf_set_log_defaults(cfg) != 0)
        return cr_conf_fail_at(p, 1, 1, "out of memory");

    if (root == NULL)
        return cr_conf_fail_at(p, 1, 1, "missing required key \"listen\" at the top level (the file is empty)");
    if (root->type != YAML_MAPPING_NODE)
        return cr_conf_fail(p, root, "the configuration must be a mapping, found %s", cr_conf_node_kind(root));
    if (cr_conf_check_mapping(p, root, SEC_TOP, "the top level", "the top level") != 0)
        return -1;
    if (cr_conf_opt_uint(p, &m, "threads", 1, CR_CONFIG_MAX_THREADS, &threads) != 0)
        return -1;
    cfg->threads = (unsigned)threads;
    if ((n = cr_conf_find(p, &m, "listen")) == NULL)
        return cr_conf_fail_missing(p, &m, "listen");
    if (parse_listens(p, cfg, n) != 0)
        return -1;
    if ((n = cr_conf_find(p, &m, "upstream")) == NULL)
        return cr_conf_fail_missing(p, &m, "upstream");
    if (parse_upstream(p, cfg, n) != 0)
        return -1;
    if ((n = cr_conf_find(p, &m, "admin")) != NULL && parse_admin(p, cfg, n) != 0)
        return -1;
    if ((n = cr_conf_find(p, &m, "cache")) != NULL && parse_cache(p, cfg, n) != 0)
        return -1;
    if ((n = cr_conf_find(p, &m, "tier")) != NULL && cr_conf_parse_tier(p, cfg, n) != 0)
        return -1;
    if ((n = cr_conf_find(p, &m, "limits")) != NULL && cr_conf_parse_limits(p, cfg, n) != 0)
        return -1;
    if ((n = cr_conf_find(p, &m, "routes")) != NULL && cr_conf_parse_routes(p, cfg, n) != 0)
        return -1;
    if ((n = cr_conf_find(p, &m, "log")) != NULL && cr_conf_parse_log(p, cfg, n) != 0)
        return -1;
    return cr_conf_parse_drain_timeout(p, cfg, &m);
}

/* ---- public API ---- */

cr_config_t *cr_config_load_string(const char *name, const char *yaml, size_t len, char *errbuf, size_t errbufsize)
{
    cr_conf_parser_t p = {name != NULL ? name : "<string>", NULL, errbuf, errbufsize};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    const yaml_node_t *extra_root;
    cr_config_t *cfg = NULL;
    int have_doc = 0;

    if (errbuf != NULL && errbufsize != 0)
        errbuf[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        cr_conf_fail_at(&p, 1, 1, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        cr_conf_fail_yaml(&p, &parser, yaml, len);
        goto Exit;
    }
    have_doc = 1;
    p.doc = &doc;

    /* a second document would be silently ignored: refuse it */
    if (!yaml_parser_load(&parser, &extra)) {
        cr_conf_fail_yaml(&p, &parser, yaml, len);
        goto Exit;
    }
    if ((extra_root = yaml_document_get_root_node(&extra)) != NULL) {
        cr_conf_fail_at(&p, extra_root->start_mark.line + 1, extra_root->start_mark.column + 1,
                        "only one YAML document is allowed in a configuration file");
        yaml_document_delete(&extra);
        goto Exit;
    }
    yaml_document_delete(&extra);

    if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
        cr_conf_fail_at(&p, 1, 1, "out of memory");
        goto Exit;
    }
    cfg->magic = CR_CONFIG_MAGIC;
    cfg->refs = 1;
    cfg->seq = atomic_fetch_add_explicit(&config_seq, 1, memory_order_relaxed) + 1;
    if ((cfg->path = cr_conf_strdup(p.name, strlen(p.name))) == NULL) {
        cr_conf_fail_at(&p, 1, 1, "out of memory");
        cr_config_free(&cfg);
        goto Exit;
    }
    if (parse_root(&p, cfg, yaml_document_get_root_node(&doc)) != 0)
        cr_config_free(&cfg);

Exit:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return cfg;
}

cr_config_t *cr_config_load(const char *path, char *errbuf, size_t errbufsize)
{
    cr_conf_parser_t p = {path, NULL, errbuf, errbufsize};
    FILE *fp;
    char *buf = NULL, *nbuf;
    size_t len = 0, cap = 0, n;
    cr_config_t *cfg = NULL;

    if ((fp = fopen(path, "rb")) == NULL) {
        cr_conf_fail_at(&p, 1, 1, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CR_CONFIG_MAX_FILE_SIZE) {
                cr_conf_fail_at(&p, 1, 1, "file too large (more than %u bytes)", CR_CONFIG_MAX_FILE_SIZE);
                goto Exit;
            }
            cap = cap == 0 ? 8192 : cap * 2;
            if ((nbuf = realloc(buf, cap)) == NULL) {
                cr_conf_fail_at(&p, 1, 1, "out of memory");
                goto Exit;
            }
            buf = nbuf;
        }
        n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0) {
            if (ferror(fp)) {
                cr_conf_fail_at(&p, 1, 1, "read error: %s", strerror(errno));
                goto Exit;
            }
            break;
        }
    }
    cfg = cr_config_load_string(path, buf != NULL ? buf : "", len, errbuf, errbufsize);

Exit:
    fclose(fp);
    free(buf);
    return cfg;
}

static void free_strv(char **v, size_t n)
{
    size_t i;
    if (v == NULL)
        return;
    for (i = 0; i != n; ++i)
        free(v[i]);
    free(v);
}

void cr_config_free(cr_config_t **cfgp)
{
    cr_config_t *cfg;
    size_t i;

    if (cfgp == NULL || (cfg = *cfgp) == NULL)
        return;
    CR_CHECK_OBJ_NOTNULL(cfg, CR_CONFIG_MAGIC);
    for (i = 0; i != cfg->num_listens; ++i) {
        free(cfg->listens[i].address);
        free(cfg->listens[i].tls_certificate);
        free(cfg->listens[i].tls_key);
    }
    free(cfg->listens);
    free(cfg->upstream.url);
    free(cfg->upstream.host);
    free(cfg->upstream.health_path);
    free(cfg->admin.address);
    free(cfg->admin.token_file);
    free(cfg->admin.token_env);
    free(cfg->cache.surrogate_key_header);
    free(cfg->cache.purge_from);
    free_strv(cfg->cache.targeted_cc, cfg->cache.num_targeted_cc);
    free(cfg->log.access);
    free_strv(cfg->tier.memcached_servers, cfg->tier.num_memcached_servers);
    for (i = 0; i != cfg->num_routes; ++i) {
        cr_route_config_t *r = cfg->routes + i;
        free(r->match_path);
        free(r->name);
        free(r->force_cache_control);
        free(r->rate_limit.header);
        free_strv(r->key_query_names, r->num_key_query_names);
        free_strv(r->key_headers, r->num_key_headers);
        free_strv(r->forward_headers, r->num_forward_headers);
        free_strv(r->cookie_names, r->num_cookie_names);
        free_strv(r->compress_types, r->num_compress_types);
        free_strv(r->invalidate, r->num_invalidate);
    }
    free(cfg->routes);
    free(cfg->path);
    cfg->magic = 0;
    free(cfg);
    *cfgp = NULL;
}

const cr_config_t *cr_config_retain(const cr_config_t *cfg)
{
    if (cfg != NULL) {
        CR_CHECK_OBJ_NOTNULL(cfg, CR_CONFIG_MAGIC);
        unsigned before = atomic_fetch_add_explicit(&((cr_config_t *)cfg)->refs, 1, memory_order_relaxed);
        assert(before != 0); /* retaining a freed generation */
    }
    return cfg;
}

void cr_config_release(const cr_config_t **cfgp)
{
    cr_config_t *cfg;

    if (cfgp == NULL || (cfg = (cr_config_t *)*cfgp) == NULL)
        return;
    *cfgp = NULL;
    CR_CHECK_OBJ_NOTNULL(cfg, CR_CONFIG_MAGIC);
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        cr_config_free(&cfg);
}
