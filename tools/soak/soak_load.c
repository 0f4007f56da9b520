/*
 * soak_load.c: the traffic half of `make soak` (tools/soak/soak.py starts it): keeps --concurrency libcurl transfers
 * in flight for --seconds against a corral in front of tools/test-upstream.py, and another in front of
 * tools/hostile-upstream.py, and checks every answer against the outcome its kind of request must have.
 *
 * Kinds (weights per 1000 in `mix`): hits on a hot set, misses over a key space far larger than the cache, conditional
 * GETs (304), Vary variants, writes (POST / PUT / DELETE on hot paths: write-through invalidation), admin purges (keys,
 * tags, prefixes; everything once a minute), a pass route, fault paths (the upstream resets, sends garbage, truncates,
 * hangs or is too slow: 502 or 504), client aborts (the client hangs up after the first bytes of a large answer), and
 * the hostile upstream's modes through a cached and a pass route (malformed heads 502, truncated fills 502, truncated
 * passes a transport error or 502, valid borderline answers 200 "hello"; "POISONED!" never).
 *
 * Invariants:
 *   - one thread, one curl multi handle; every transfer is its own easy handle, freed when it ends; HTTP/1.1 reuses
 *     connections, h2c prior knowledge gets a fresh connection per transfer (Debian's curl 7.88 breaks multiplexed
 *     streams on a reused prior-knowledge connection, curl issue #10634).
 *   - a truncated pass answer over h2c may end before curl saw its status (curl reports status 0 with the stream
 *     error), as tests/e2e/test_hostile_upstream.c allows.
 *   - every transfer ends as "ok" or "unexpected"; the first 30 unexpected ones are printed with what they got.
 *   - bounded: --seconds, then the transfers in flight finish (each has a 20 s timeout); memory per transfer is fixed.
 * Output: a progress line every --report seconds, then a table per kind; exit 0 when nothing was unexpected, 1 when
 * something was, 2 on a usage or setup error.
 */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum {
    K_HIT, K_MISS, K_COND, K_VARY, K_WRITE, K_PURGE, K_PASS, K_FAULT, K_ABORT, K_HOSTILE, K_COUNT
} kind_t;

static const char *kind_names[K_COUNT] = {"hit", "miss", "cond304", "vary", "write", "purge", "pass", "fault",
                                          "abort", "hostile"};
static int mix[K_COUNT] = {430, 190, 50, 60, 40, 15, 80, 15, 20, 100}; /* per 1000; --only KIND: that kind alone */

typedef enum {
    E_2XX,       /* 2xx, complete */
    E_304,       /* 304 */
    E_FAULT,     /* 502 or 504 */
    E_ABORT,     /* we hung up after the first body bytes of a 200 */
    E_HELLO,     /* 200 with the body "hello" */
    E_502,       /* 502 */
    E_502_OR_CUT /* 502, or a transport error after the head (a pass shows a truncation as a cut) */
} expect_t;

/* the hostile upstream's modes as tests/e2e/test_hostile_upstream.c classifies them */
typedef enum { BAD_HEAD, TRUNCATED, GOOD } hostile_t;
static const struct {
    const char *mode;
    hostile_t kind;
} hostile_modes[] = {
    {"te_Chunked", GOOD},         {"te_gzip_chunked", BAD_HEAD}, {"te_chunked_x", BAD_HEAD},
    {"te_identity", BAD_HEAD},    {"te_twice", BAD_HEAD},        {"te_empty", BAD_HEAD},
    {"cl_neg", BAD_HEAD},         {"cl_abc", BAD_HEAD},          {"cl_plus", BAD_HEAD},
    {"cl_huge", BAD_HEAD},        {"cl_empty", BAD_HEAD},        {"cl_list_same", GOOD},
    {"cl_list_diff", BAD_HEAD},   {"cl_lines_same", GOOD},       {"cl_lines_diff", BAD_HEAD},
    {"cl_te", BAD_HEAD},          {"status_000", BAD_HEAD},      {"status_099", BAD_HEAD},
    {"status_600", BAD_HEAD},     {"status_1000", BAD_HEAD},     {"status_20", BAD_HEAD},
    {"status_101", BAD_HEAD},     {"status_noreason_nosp", GOOD}, {"version_2", BAD_HEAD},
    {"reason_ctl", BAD_HEAD},     {"interim_100", GOOD},         {"interim_many", BAD_HEAD},
    {"head_endless", BAD_HEAD},   {"obs_fold", BAD_HEAD},        {"bare_lf", BAD_HEAD},
    {"bare_lf_one", BAD_HEAD},    {"bare_cr", BAD_HEAD},         {"nul_value", BAD_HEAD},
    {"ctl_value", BAD_HEAD},      {"space_name", BAD_HEAD},      {"space_colon", BAD_HEAD},
    {"empty_name", BAD_HEAD},     {"no_colon", BAD_HEAD},        {"chunk_no_last", TRUNCATED},
    {"chunk_mid", TRUNCATED},     {"chunk_bad", TRUNCATED},      {"chunk_hex0x", TRUNCATED},
    {"chunk_rst", TRUNCATED},     {"cl_short", TRUNCATED},       {"cl_short_rst", TRUNCATED},
    {"close_rst", TRUNCATED},     {"close_fin", GOOD},           {"http10_fin", GOOD},
    {"cl_extra", GOOD},           {"chunk_extra", GOOD},         {"conn_close_extra", GOOD},
    {"slow_chunk_no_last", TRUNCATED}, {"ok", GOOD},
    /* not cl_late, head_late, n204_late, n304_late: bytes an origin sends 300 ms after a complete answer reach the
     * next request on that connection, which no HTTP/1.1 client can tell from its answer (README, "No answer leaks");
     * under load corral reuses the connection within those 300 ms, so they poison another key by design */
};
#define N_HOSTILE (sizeof(hostile_modes) / sizeof(hostile_modes[0]))

static const char *fault_queries[] = {"fail=reset", "fail=garbage", "fail=truncate", "fail=hang", "delay=3000"};
#define N_FAULTS (sizeof(fault_queries) / sizeof(fault_queries[0]))

typedef struct {
    kind_t kind;
    expect_t expect;
    char url[320];
    char what[400];  /* method, url and protocol, for the report */
    char post[128];
    struct curl_slist *headers;
    size_t body_len;
    char body_head[16]; /* the first bytes of the body */
    int poisoned;       /* "POISONED!" seen in the body */
    char tail[16];      /* the last bytes seen, to find "POISONED!" across writes */
    size_t tail_len;
} xfer_t;

static struct {
    int port, admin_port, hostile_port;
    double seconds, report_s;
    int concurrency;
    unsigned long cold_keys;
} opt = {0, 0, 0, 60, 30, 48, 10000000UL};

static unsigned long long sent[K_COUNT], ok[K_COUNT], bad[K_COUNT];
static unsigned printed;
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static unsigned long below(unsigned long n)
{
    return (unsigned long)(rnd() % n);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    xfer_t *x = userp;
    size_t n = size * nmemb;
    if (x->body_len < sizeof(x->body_head) - 1) {
        size_t room = sizeof(x->body_head) - 1 - x->body_len;
        memcpy(x->body_head + x->body_len, data, n < room ? n : room);
    }
    /* look for the marker in (previous tail + this piece) without keeping the body */
    char probe[16 + 64];
    size_t head = n < 48 ? n : 48;
    memcpy(probe, x->tail, x->tail_len);
    memcpy(probe + x->tail_len, data, head);
    if (memmem(probe, x->tail_len + head, "POISONED!", 9) != NULL || memmem(data, n, "POISONED!", 9) != NULL)
        x->poisoned = 1;
    size_t keep = n < 8 ? n : 8;
    if (x->tail_len + keep > 8) {
        size_t drop = x->tail_len + keep - 8;
        memmove(x->tail, x->tail + drop, x->tail_len - drop);
        x->tail_len -= drop;
    }
    memcpy(x->tail + x->tail_len, data + n - keep, keep);
    x->tail_len += keep;
    x->body_len += n;
    if (x->kind == K_ABORT && x->body_len > 0)
        return 0; /* hang up mid-response */
    return n;
}

static void pick(xfer_t *x, CURL *e)
{
    unsigned long r = below(1000), acc = 0;
    int k;
    for (k = 0; k < K_COUNT - 1; k++) {
        acc += (unsigned long)mix[k];
        if (r < acc)
            break;
    }
    x->kind = (kind_t)k;
    x->expect = E_2XX;
    const char *method = "GET";
    unsigned long hot = below(400);
    switch (x->kind) {
    case K_HIT: /* a hot set that fits the cache many times over: mostly hits */
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/c/hot/%lu?size=%lu&hdr=Surrogate-Key:t%lu", opt.port, hot,
                 200 + hot * 97 % 30000, hot % 16);
        if (below(3) == 0)
            curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip, br: a compressed variant, decoded by curl */
        break;
    case K_MISS: /* keys from a space far larger than the cache: misses, stores and evictions */
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/c/cold/%lu?size=%lu", opt.port, below(opt.cold_keys),
                 1000 + below(60000));
        break;
    case K_COND:
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/c/etag/%lu?etag=%%22e%lu%%22", opt.port, hot % 100,
                 hot % 100);
        {
            char h[64];
            snprintf(h, sizeof(h), "If-None-Match: \"e%lu\"", hot % 100);
            x->headers = curl_slist_append(x->headers, h);
        }
        x->expect = E_304;
        break;
    case K_VARY: {
        char h[64];
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/v/%lu?vary=accept-language", opt.port, hot % 20);
        snprintf(h, sizeof(h), "Accept-Language: l%lu", below(48));
        x->headers = curl_slist_append(x->headers, h);
        break;
    }
    case K_WRITE: {
        static const char *methods[] = {"POST", "PUT", "DELETE"};
        method = methods[below(3)];
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/c/hot/%lu", opt.port, hot);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "DELETE") != 0) {
            snprintf(x->post, sizeof(x->post), "{\"n\": %lu}", hot);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->post);
        }
        break;
    }
    case K_PURGE: {
        static double last_all;
        double t = now_s();
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/v1/purge", opt.admin_port);
        if (last_all == 0)
            last_all = t;
        if (t - last_all >= 60) {
            last_all = t;
            snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/v1/cache", opt.admin_port);
            method = "DELETE";
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
            break;
        }
        method = "POST";
        unsigned long r2 = below(10);
        if (r2 < 6)
            snprintf(x->post, sizeof(x->post), "{\"keys\": [\"/c/hot/%lu\"]}", hot);
        else if (r2 < 8)
            snprintf(x->post, sizeof(x->post), "{\"tags\": [\"t%lu\"], \"soft\": %s}", hot % 16,
                     below(2) ? "true" : "false");
        else
            snprintf(x->post, sizeof(x->post), "{\"prefixes\": [\"/c/cold/%lu\"]}", below(10));
        x->headers = curl_slist_append(x->headers, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->post);
        break;
    }
    case K_PASS:
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/p/%lu?size=%lu", opt.port, below(1000),
                 100 + below(200000));
        break;
    case K_FAULT:
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/f/%lu?%s", opt.port, below(opt.cold_keys),
                 fault_queries[below(N_FAULTS)]);
        x->expect = E_FAULT;
        break;
    case K_ABORT:
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/%s/big/%lu?size=%lu", opt.port,
                 below(2) ? "p" : "c/cold", below(opt.cold_keys), 1000000 + below(3000000));
        x->expect = E_ABORT;
        break;
    case K_HOSTILE: {
        unsigned long m = below(N_HOSTILE);
        int cached = below(2) == 0;
        snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/%s/%s/%lu", opt.hostile_port, cached ? "cache" : "pass",
                 hostile_modes[m].mode, below(cached ? 5000 : 1000000));
        switch (hostile_modes[m].kind) {
        case GOOD:
            x->expect = E_HELLO;
            break;
        case BAD_HEAD:
            x->expect = E_502;
            break;
        case TRUNCATED:
            x->expect = cached ? E_502 : E_502_OR_CUT;
            break;
        }
        break;
    }
    case K_COUNT:
        break;
    }
    int h2 = below(10) < 3;
    if (h2) {
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    snprintf(x->what, sizeof(x->what), "%s %s over %s", method, x->url, h2 ? "h2c" : "HTTP/1.1");
}

static void start_one(CURLM *m)
{
    xfer_t *x = calloc(1, sizeof(*x));
    CURL *e = curl_easy_init();
    if (x == NULL || e == NULL) {
        fprintf(stderr, "soak_load: out of memory\n");
        exit(2);
    }
    pick(x, e);
    sent[x->kind]++;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (x->headers != NULL)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_multi_add_handle(m, e);
}

/* 1 when the transfer got what its kind must get */
static int judge(const xfer_t *x, CURLcode res, long status)
{
    if (x->poisoned)
        return 0;
    switch (x->expect) {
    case E_2XX:
        return res == CURLE_OK && status >= 200 && status < 300;
    case E_304:
        return res == CURLE_OK && status == 304;
    case E_FAULT:
        return res == CURLE_OK && (status == 502 || status == 504);
    case E_ABORT:
        return res == CURLE_WRITE_ERROR && status == 200;
    case E_HELLO:
        return res == CURLE_OK && status == 200 && x->body_len == 5 && memcmp(x->body_head, "hello", 5) == 0;
    case E_502:
        return res == CURLE_OK && status == 502;
    case E_502_OR_CUT:
        if (res == CURLE_OK)
            return status == 502;
        return (status == 200 || status == 0) && (res == CURLE_PARTIAL_FILE || res == CURLE_RECV_ERROR || res == CURLE_HTTP2 ||
                                 res == CURLE_HTTP2_STREAM || res == CURLE_GOT_NOTHING);
    }
    return 0;
}

static void finish(CURLM *m, CURL *e, CURLcode res)
{
    xfer_t *x = NULL;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (judge(x, res, status)) {
        ok[x->kind]++;
    } else {
        bad[x->kind]++;
        if (printed++ < 30)
            printf("soak_load: unexpected [%s] %s: status %ld, curl %d (%s), body %zu bytes \"%.*s\"%s\n",
                   kind_names[x->kind], x->what, status, (int)res, curl_easy_strerror(res), x->body_len,
                   (int)strnlen(x->body_head, sizeof(x->body_head)), x->body_head,
                   x->poisoned ? ", POISONED!" : "");
    }
    curl_multi_remove_handle(m, e);
    curl_easy_cleanup(e);
    curl_slist_free_all(x->headers);
    free(x);
}

static unsigned long long total(const unsigned long long *v)
{
    unsigned long long s = 0;
    for (int k = 0; k < K_COUNT; k++)
        s += v[k];
    return s;
}

static void usage(void)
{
    fprintf(stderr, "usage: soak_load --port N --admin-port N --hostile-port N [--seconds S] [--concurrency N] "
                    "[--report S] [--seed N] [--only KIND]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *a = argv[i], *v = argv[++i];
        if (strcmp(a, "--port") == 0)
            opt.port = atoi(v);
        else if (strcmp(a, "--admin-port") == 0)
            opt.admin_port = atoi(v);
        else if (strcmp(a, "--hostile-port") == 0)
            opt.hostile_port = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            opt.seconds = atof(v);
        else if (strcmp(a, "--concurrency") == 0)
            opt.concurrency = atoi(v);
        else if (strcmp(a, "--report") == 0)
            opt.report_s = atof(v);
        else if (strcmp(a, "--seed") == 0)
            rng_state = strtoull(v, NULL, 10) | 1;
        else if (strcmp(a, "--only") == 0) {
            int k, found = -1;
            for (k = 0; k < K_COUNT; k++)
                if (strcmp(v, kind_names[k]) == 0)
                    found = k;
            if (found < 0)
                usage();
            for (k = 0; k < K_COUNT; k++)
                mix[k] = k == found ? 1000 : 0;
        }
        else
            usage();
    }
    if (opt.port <= 0 || opt.admin_port <= 0 || opt.hostile_port <= 0 || opt.concurrency <= 0 || opt.seconds <= 0 ||
        opt.report_s <= 0)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)opt.concurrency * 2);
    double start = now_s(), next_report = start + opt.report_s;
    unsigned long long last_total = 0;
    int running = 0, in_flight = 0;
    for (;;) {
        double t = now_s();
        int sending = t - start < opt.seconds;
        while (sending && in_flight < opt.concurrency) {
            start_one(m);
            in_flight++;
        }
        if (!sending && in_flight == 0)
            break;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                finish(m, msg->easy_handle, msg->data.result);
                in_flight--;
            }
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
        if (t >= next_report) {
            unsigned long long done = total(ok) + total(bad);
            printf("soak_load: t=%4.0fs requests %llu (%.0f/s), unexpected %llu\n", t - start, done,
                   (double)(done - last_total) / opt.report_s, total(bad));
            last_total = done;
            next_report += opt.report_s;
        }
    }
    double took = now_s() - start;
    printf("soak_load: %-8s %10s %10s %10s\n", "kind", "sent", "as-meant", "unexpected");
    for (int k = 0; k < K_COUNT; k++)
        printf("soak_load: %-8s %10llu %10llu %10llu\n", kind_names[k], sent[k], ok[k], bad[k]);
    printf("soak_load: total    %10llu %10llu %10llu in %.0f s (%.0f requests/s)\n", total(sent), total(ok), total(bad),
           took, (double)total(sent) / took);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return total(bad) == 0 ? 0 : 1;
}
