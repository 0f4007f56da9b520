/*
 * config.h: the parsed, immutable corral configuration.
 *
 * A cr_config_t is built once by cr_config_load() and never modified afterwards; reload builds a new one and swaps
 * it whole. Every string inside it is owned by the config (NUL-terminated, malloc'ed) and freed by cr_config_free().
 * Durations are milliseconds, sizes are bytes. A value of 0 for an optional duration means "not set" unless the
 * field's comment says otherwise.
 */
#ifndef CORRAL_CONFIG_H
#define CORRAL_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CR_CONFIG_MAGIC 0xc0f19001u

/* Bit set of HTTP methods a route matches. CR_METHOD_ALL when `methods` is absent. */
enum {
    CR_METHOD_GET = 1u << 0,
    CR_METHOD_HEAD = 1u << 1,
    CR_METHOD_POST = 1u << 2,
    CR_METHOD_PUT = 1u << 3,
    CR_METHOD_PATCH = 1u << 4,
    CR_METHOD_DELETE = 1u << 5,
    CR_METHOD_OPTIONS = 1u << 6,
    CR_METHOD_OTHER = 1u << 7, /* any method not named above */
    CR_METHOD_ALL = 0xffu,
};

/* Where a value was written (1-based), for messages about it found after loading (config_check.h). 0: unknown. */
typedef struct st_cr_conf_pos_t {
    unsigned line, col;
} cr_conf_pos_t;

typedef struct st_cr_listen_config_t {
    char *address;                /* as written, e.g. "127.0.0.1:8081" */
    struct sockaddr_storage addr; /* resolved numeric address */
    socklen_t addrlen;
    char *tls_certificate; /* NULL when the listener has no TLS */
    char *tls_key;
    cr_conf_pos_t tls_certificate_pos, tls_key_pos;
} cr_listen_config_t;

typedef enum en_cr_key_query_mode_t {
    CR_KEY_QUERY_ALL = 0, /* default: every parameter counts, sorted */
    CR_KEY_QUERY_NONE,    /* the query string is dropped from the key */
    CR_KEY_QUERY_LIST,    /* only the named parameters count, sorted */
} cr_key_query_mode_t;

/* How a cached route treats a request's Cookie (`cookies:`). */
typedef enum en_cr_cookies_mode_t {
    CR_COOKIES_PASS = 0, /* default: a request with Cookie is not served or stored unless the response is public/s-maxage */
    CR_COOKIES_IGNORE,   /* Cookie is stripped from fills; cached as if absent */
    CR_COOKIES_LIST,     /* only the named cookies are forwarded on fills, and they are part of the key */
} cr_cookies_mode_t;

/* Whose requests one rate-limit bucket counts (`rate_limit.by`). */
typedef enum en_cr_ratelimit_by_t {
    CR_RL_BY_NONE = 0, /* the route as a whole */
    CR_RL_BY_CLIENT,   /* the client's address */
    CR_RL_BY_HEADER,   /* a request header's value (hashed; a request without it shares one bucket) */
} cr_ratelimit_by_t;

/* A route's `rate_limit` (config_ratelimit.c; serve/ratelimit.h). rate == 0: the route has none. */
typedef struct st_cr_ratelimit_config_t {
    uint64_t rate;      /* tokens per window_ms ("100/s": 100 per 1000 ms) */
    uint64_t window_ms; /* 1000, 60000 or 3600000 */
    uint64_t burst;     /* bucket size; default: rate (one window's worth) */
    cr_ratelimit_by_t by;
    char *header;       /* CR_RL_BY_HEADER: the lower-cased name */
    int all;            /* applies_to: all (every request); 0: upstream (default: misses, passes, revalidations) */
    int cluster;        /* scope: cluster (shared through the tier's memcached); 0: pod (default) */
    uint64_t pods;      /* scope: cluster: pods sharing the limit; with memcached down each admits rate / pods */
    int serve_stale;    /* serve_stale: over the limit, answer from a stored (stale) object when there is one */
    /* derived once at load, so a request does no division and no hashing of the route's name: */
    uint64_t interval_us; /* between tokens (at least 1); for scope: cluster, this pod's share (rate / pods) */
    uint64_t tau_us;      /* burst * interval_us (burst / pods for the share, at least 1 token) */
    uint64_t name_hash;   /* cr_hash of the route's name */
    size_t header_len;
    /* scope: cluster: the fleet counts cluster_quota tokens per fixed window of cluster_window_ms (wall clock), the
     * window sized so that it holds `burst` at the configured rate (cr_rl_cluster_window), from 100 ms to the rate's
     * unit; 0 for scope: pod */
    uint64_t cluster_window_ms, cluster_quota;
} cr_ratelimit_config_t;

#define CR_RL_CLUSTER_MIN_WINDOW_MS 100 /* scope: cluster: the shortest counting window (a batch is one memcached incr) */

/* scope: cluster: the tokens per window and the window (ms) that hold `burst` at `rate` per window_ms (see
 * config_ratelimit.c). Pure. */
void cr_rl_cluster_window(uint64_t rate, uint64_t window_ms, uint64_t burst, uint64_t *quota, uint64_t *cluster_window_ms);

typedef enum en_cr_match_kind_t {
    CR_MATCH_PREFIX = 0,
    CR_MATCH_EXACT,
} cr_match_kind_t;

typedef struct st_cr_route_config_t {
    /* match */
    cr_match_kind_t match_kind;
    char *match_path; /* the prefix or exact path, in match form (cr_urlpath_match_form: "/a/" is "/a") */
    size_t match_path_len;
    unsigned methods; /* CR_METHOD_* bits */

    /* caching */
    int cache;                  /* default 1 */
    uint64_t ttl_ms;            /* used only when the response gives no freshness; 0 = not set */
    uint64_t max_ttl_ms;        /* cap on any freshness lifetime; 0 = no cap */
    uint64_t force_ttl_ms;      /* 0 = not set; otherwise overrides no-cache/max-age=0/Pragma/expired Expires */
    int ignore_no_store;        /* with force_ttl: also override no-store and private */
    char *force_cache_control;  /* Cache-Control sent downstream when force_ttl applies; default "no-cache" */
    int heuristic_freshness;    /* allow RFC 9111 4.2.2 heuristic (10% of Last-Modified age); default 0 */
    int allow_set_cookie;       /* store responses carrying Set-Cookie; default 0 */
    uint64_t stale_while_revalidate_ms; /* 0 = not set */
    uint64_t stale_if_error_ms;         /* 0 = not set */
    uint64_t stale_if_unreachable_ms;   /* stale objects answer while the origin cannot be reached; 0: off (default 60 s) */
    uint64_t serve_stale_when_down_ms;  /* stale objects answer while the upstream is unhealthy or sheds; 0: off (default) */

    /* key */
    int key_ignore_host; /* key.host: false: the authority is left out of the key (one API under several names) */
    cr_key_query_mode_t key_query;
    char **key_query_names; /* CR_KEY_QUERY_LIST: the names, sorted ascending */
    size_t num_key_query_names;
    char **key_headers; /* lower-cased request header names that are part of the key, in config order; holds the
                           forward_headers too (appended after key.headers when not listed there) */
    size_t num_key_headers;
    char **forward_headers; /* lower-cased: unkeyed-by-default headers (http.c) that fills forward; also key headers */
    size_t num_forward_headers;
    cr_cookies_mode_t cookies;
    char **cookie_names; /* CR_COOKIES_LIST: the cookie names (case-sensitive), in config order */
    size_t num_cookie_names;

    /* coalescing */
    int coalesce;                 /* default 1 */
    uint64_t coalesce_timeout_ms; /* default 5000 */
    size_t coalesce_max_waiters;  /* default 10000 */
    uint64_t coalesce_pass_ttl_ms; /* hit-for-pass marker lifetime, default 10000 */

    /*
     * compression (issue 4). On a cached route (default on) the stored response gets a variant per enabled coding,
     * made once at store time. On a `cache: false` route it defaults to off; `compress: true` (or a mapping) there
     * means on-the-fly streaming compression of the passed-through response (cr_encoder_t).
     */
    int compress; /* default 1 on cached routes, 0 on cache: false routes */
    /* media-type patterns, lower-case (forms in encoding.h: exact, "type/" + "*", "type/" + "*+suffix", "*" + "/" +
       "*+suffix", "+suffix"); default list when absent: text, JSON, JavaScript, XML and any +json / +xml type */
    char **compress_types;
    size_t num_compress_types;
    size_t compress_min_size;    /* default 256 */
    unsigned compress_encodings; /* `encodings: [br, gzip]`: 1u << CR_ENC_GZIP | 1u << CR_ENC_BR bits; default both */
    int brotli_quality;          /* 0..11, default 5 */
    int gzip_level;              /* 1..9, default 6 */

    /* rate limit (issue 16) */
    cr_ratelimit_config_t rate_limit;

    /* write-through invalidation (issue 5) */
    char **invalidate; /* paths, prefixes ending in '*' or templates with {name} */
    size_t num_invalidate;

    /* metrics (issue 14): the `route` label. `name` as written, or by default "prefix:<path>" / "exact:<path>" (the
       match path in match form); unique among the routes. stat_slot: its slot in the process's route-name registry
       (core/route_slots.h), set when the config is loaded; the same name gets the same slot in every generation */
    char *name;
    unsigned stat_slot;

    /* where this route was defined, for messages */
    unsigned line;
} cr_route_config_t;

typedef struct st_cr_config_t {
    unsigned magic;
    _Atomic unsigned refs; /* generations: see cr_config_retain(); the only field that changes after loading */
    uint64_t seq; /* 1, 2, ... in load order: no two configs of the process share one (a cache keyed by generation uses
                     this, never the pointer, which a later config may reuse); 0 for one not made by the loader */
    char *path; /* the file this was read from */

    unsigned threads; /* default: number of online CPUs */

    cr_listen_config_t *listens;
    size_t num_listens;

    struct {
        char *url;                  /* as written, e.g. "http://127.0.0.1:8080" */
        char *host;                 /* "127.0.0.1" */
        uint16_t port;              /* 8080 */
        struct sockaddr_storage addr; /* resolved numeric address (of a host name: at load; fill/upstream_resolver.h) */
        socklen_t addrlen;
        int host_is_name;           /* host is a name (not numeric, not localhost): re-resolved while running */
        size_t max_connections;     /* default 64 */
        uint64_t connect_timeout_ms; /* default 1000 */
        uint64_t timeout_ms;        /* default 30000: whole-response idle (I/O) timeout */
        uint64_t queue_timeout_ms;  /* default 5000: how long a request may wait for a free connection */
        /* upstream.health (config_lifecycle.c): the active check behind /readyz; health_path NULL: none. Reloadable
         * (fill/health.c reads the current generation every round) */
        char *health_path;            /* "/healthz": what is asked with GET */
        uint64_t health_interval_ms;  /* default 2000 */
        uint64_t health_timeout_ms;   /* default 500: connect + answer */
        unsigned health_unhealthy_after; /* default 3 failed checks in a row */
        unsigned health_healthy_after;   /* default 2 good checks in a row */
        /* upstream.max_concurrency and upstream.breaker (config_upstream.c; restart: copied once by fill/upstream.c) */
        unsigned max_concurrency;     /* limit: requests in flight to the upstream, process-wide; 0 (default): no cap */
        unsigned min_concurrency;     /* min: the adaptive limit's floor; default max(1, limit / 16) */
        int concurrency_adaptive;     /* adaptive: the cap follows upstream latency (fill/concurrency.h); default 0 */
        unsigned breaker_failures;    /* failures: connect errors or 5xx in a row that open the breaker; 0: none */
        uint64_t breaker_backoff_ms;  /* backoff: first wait before a half-open probe; default 1000 */
        uint64_t breaker_max_backoff_ms; /* max_backoff: the doubled wait's cap; default 30000 */
    } upstream;

    struct {
        char *address; /* NULL: no admin listener */
        struct sockaddr_storage addr;
        socklen_t addrlen;
        char *token_file; /* at most one of token_file / token_env */
        char *token_env;
        cr_conf_pos_t token_file_pos, token_env_pos;
    } admin;

    struct {
        size_t memory;          /* default 256 MiB */
        size_t max_object_size; /* default 8 MiB */
        char *surrogate_key_header; /* response header holding tags, lower-cased; default "surrogate-key" (issue 5) */
        int keep_surrogate_key;     /* forward that header to clients; default 0 (stripped) */
        struct st_cr_cidr_t *purge_from; /* cache.purge_from: client networks allowed to send PURGE on the traffic
                                            port; none (the default): PURGE is an ordinary method, passed upstream */
        size_t num_purge_from;
        char **targeted_cc;     /* cache.targeted_cache_control (RFC 9213), lower-case, first wins; default
                                   [cdn-cache-control]; at most CR_TARGETED_CC_MAX (config_targeted.c) */
#define CR_TARGETED_CC_MAX 4
        size_t num_targeted_cc;
        int forward_targeted;   /* cache.forward_targeted: send those fields to clients; default 0 */
    } cache;

    struct {
        char **memcached_servers; /* "host:port" */
        size_t num_memcached_servers;
        uint64_t memcached_timeout_ms; /* default 20 */
        size_t max_item_size;          /* memcached's item size (-I): default 1 MiB; larger objects stay in L1 */
        uint64_t lease_ttl_ms;         /* cross-pod fill lease; whole seconds (memcached expiry); default 2 s */
        uint64_t lease_poll_ms;        /* how often a pod waiting on another's lease looks for the value; default 5 */
        uint64_t inval_max_delay_ms;   /* the bound on cross-pod invalidation delay; default 150 */
        uint64_t inval_poll_ms;        /* how often the invalidation log is read; default 10 */
    } tier;

    /*
     * limits: bounds on what corral accepts from its peers and holds for them (README "Limits"). Every field has a
     * default and a range, both in config_limits.c's table; a value out of range is a config error.
     */
    struct {
        size_t request_headers;      /* 64 KiB: decoded request header list (names + values); longer is 431 */
        size_t request_body;         /* 16 MiB: a longer request body is 413 before more is read */
        size_t upstream_header_size; /* 64 KiB: a longer upstream response head is malformed (502) */
        size_t admin_body;           /* 1 MiB: a longer admin request body is 413 */
        size_t response_buffer;      /* 1 MiB: bytes of one response buffered for a slow client before the upstream read pauses */
        uint64_t connections;        /* 10000: client connections open at once, process-wide; more are refused */
        uint64_t streams_per_connection; /* 100: concurrent HTTP/2 streams per client connection */
        uint64_t variants_per_key;   /* 32: Vary variants stored under one key; the oldest is evicted past it */
        uint64_t queued_fills;       /* 1024 per process: requests waiting for a free upstream connection; more get 503 */
        uint64_t cancels_per_connection; /* 200 per 10 s: requests a client cancels before their answer began, per connection */
        uint64_t cancels_per_address;    /* 1000 per 10 s: the same, summed over a client address's connections */
        uint64_t header_timeout_ms;  /* 10 s: a request head, HTTP/2 frame or header block left incomplete this long closes */
    } limits;

    struct {
        char *access;     /* "stdout" (default), "off" or a file path; restart (opened once, main.c) */
        cr_conf_pos_t access_pos;
        int level;        /* cr_log_level_t: 0 debug, 1 info (default), 2 warn, 3 error; reloadable */
    } log;

    cr_route_config_t *routes;
    size_t num_routes;

    uint64_t drain_timeout_ms; /* default 10000: how long SIGTERM waits for requests and background fills (reloadable) */
} cr_config_t;

/*
 * Reads and validates `path`. On success returns a new config. On failure returns NULL and writes one message of the
 * form "file:line:col: message" (no trailing newline) into errbuf. Unknown keys, wrong types, out-of-range values,
 * duplicate listeners and unresolvable addresses are all errors.
 */
cr_config_t *cr_config_load(const char *path, char *errbuf, size_t errbufsize);

/* Same as cr_config_load but from a buffer; `name` is used in messages in place of the file name. */
cr_config_t *cr_config_load_string(const char *name, const char *yaml, size_t len, char *errbuf, size_t errbufsize);

/* Frees a config and everything it owns, whatever its reference count; *cfg is set to NULL. Accepts NULL. */
void cr_config_free(cr_config_t **cfg);

/*
 * Config generations. A loaded config is one generation and starts with one reference, the loader's. A request, a
 * flight or a background fill that keeps a config past the call that handed it over takes a reference and drops it
 * when done, so a reload can install a new generation while the old one lives on until its last user finishes.
 * Both are atomic and take no lock; release frees the config at zero and sets *cfg to NULL. Accept NULL.
 */
const cr_config_t *cr_config_retain(const cr_config_t *cfg);
void cr_config_release(const cr_config_t **cfg);

/*
 * Whether `next` can replace `running` without a restart: returns 0 when every key that the server copies once at
 * start (marked "(restart)" in the README's configuration reference: threads, listen, upstream, admin, cache.memory
 * and every limit but request_headers) is the same in both, else -1 with one line in errbuf naming the first such key
 * that differs, e.g. "listen: changing listeners needs a restart (1 now, 2 in the new configuration)". Routes and the
 * other keys may change. The reload itself is conf/reload.c.
 */
int cr_config_reload_check(const cr_config_t *running, const cr_config_t *next, char *errbuf, size_t errbufsize);
/* The same; with listeners_live, `listen` is not compared (the server opens and closes listeners itself). */
int cr_config_reload_check_ex(const cr_config_t *running, const cr_config_t *next, int listeners_live, char *errbuf,
                              size_t errbufsize);

/* "30s", "1500ms", "5m", "1h" -> milliseconds. A bare number is seconds. Returns 0 on success, -1 on a bad value. */
int cr_parse_duration_ms(const char *s, uint64_t *out);
/* "256MiB", "8MiB", "512KiB", "1GiB", "100B"; also KB/MB/GB as powers of 1000. A bare number is bytes. */
int cr_parse_size(const char *s, size_t *out);


/* Method name -> CR_METHOD_* bit (CR_METHOD_OTHER for unknown tokens). */
unsigned cr_method_bit(const char *name, size_t len);

#endif
