/*
 * test_rfcgaps.c: end-to-end tests of issue 17's remaining RFC items: targeted Cache-Control (RFC 9213), the origin's
 * Date on hits, If-Modified-Since against Date, conditional misses, interim responses and a host-name upstream.
 * Each runs the real binary in front of the real test upstream, whose request count per path says whether the cache
 * answered.
 *
 * One upstream and one corral serve the suite (started in its init, stopped by PID in its cleanup); every test uses
 * its own paths.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static cr_proc_t up, corral;

static const char *config_template = "threads: 2\n"
                                     "listen:\n"
                                     "  - address: 127.0.0.1:${PORT}\n"
                                     "upstream:\n"
                                     "  url: http://127.0.0.1:${UPSTREAM_PORT}\n"
                                     "  timeout: 5s\n"
                                     "admin:\n"
                                     "  address: 127.0.0.1:${ADMIN_PORT}\n"
                                     "cache:\n"
                                     "  memory: 64MiB\n"
                                     "  targeted_cache_control: [corral-cache-control, cdn-cache-control]\n"
                                     "routes:\n"
                                     "  - match: { prefix: /pass }\n"
                                     "    cache: false\n"
                                     "  - match: { prefix: / }\n";

static int suite_init(void)
{
    return harness_start_pair(&up, &corral, config_template);
}

static int suite_cleanup(void)
{
    return harness_stop_pair(&up, &corral);
}

/* A GET through corral; r must be freed. Asserts that the exchange completed. */
static void get(cr_resp_t *r, cr_proto_t proto, const char *path, const char *const *headers)
{
    CU_ASSERT_EQUAL(http_request(r, proto, "GET", url_of(&corral, path), headers, NULL, 0), 0);
}

/* A GET's status, with the response's value of `name` copied into buf ("" when absent). */
static long get_header(const char *path, const char *const *headers, const char *name, char *buf, size_t size)
{
    cr_resp_t r;
    long status;
    get(&r, CR_H1, path, headers);
    if (resp_header(&r, name, buf, size) == NULL)
        buf[0] = '\0';
    status = r.status;
    resp_free(&r);
    return status;
}

/* RFC 9213: the first listed targeted field with a valid value governs corral's caching, replacing Cache-Control
 * (and Expires); it is not sent to clients; Cache-Control goes to clients as the origin sent it. */
static void test_targeted_cache_control(void)
{
    char v[256];
    int i;

    /* Cache-Control says no-store, CDN-Cache-Control says cache for an hour: stored */
    for (i = 0; i != 2; ++i) {
        cr_resp_t r;
        get(&r, i == 0 ? CR_H1 : CR_H2C, "/tcc/cdn?cc=no-store&hdr=CDN-Cache-Control:max-age%3D3600", NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NULL(resp_header(&r, "cdn-cache-control", v, sizeof(v)));
        CU_ASSERT(resp_header(&r, "cache-control", v, sizeof(v)) != NULL && strcmp(v, "no-store") == 0);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/tcc/cdn"), 1);

    /* the reverse: Cache-Control allows an hour, the targeted field forbids storing */
    for (i = 0; i != 2; ++i)
        CU_ASSERT_EQUAL(get_header("/tcc/nostore?cc=max-age%3D3600&hdr=CDN-Cache-Control:no-store", NULL, "cache-control", v,
                                   sizeof(v)), 200);
    CU_ASSERT_EQUAL(upstream_count(&up, "/tcc/nostore"), 2);

    /* an Expires in the future is ignored as well when a targeted field applies */
    for (i = 0; i != 2; ++i)
        CU_ASSERT_EQUAL(get_header("/tcc/expires?expires=Thu,%2001%20Jan%202099%2000:00:00%20GMT&hdr=CDN-Cache-Control:private",
                                   NULL, "expires", v, sizeof(v)), 200);
    CU_ASSERT_EQUAL(upstream_count(&up, "/tcc/expires"), 2);

    /* the first field of the list wins, whatever the order of the lines */
    for (i = 0; i != 2; ++i)
        CU_ASSERT_EQUAL(get_header("/tcc/order?cc=no-store&hdr=CDN-Cache-Control:no-store&hdr=Corral-Cache-Control:max-age%3D3600",
                                   NULL, "corral-cache-control", v, sizeof(v)), 200);
    CU_ASSERT_EQUAL(v[0], '\0');
    CU_ASSERT_EQUAL(upstream_count(&up, "/tcc/order"), 1);

    /* an invalid targeted field is ignored as a whole: the next one, here none, so Cache-Control (no-store) */
    for (i = 0; i != 2; ++i)
        CU_ASSERT_EQUAL(get_header("/tcc/invalid?cc=no-store&hdr=Corral-Cache-Control:max-age%3D3600,", NULL, "cache-control", v,
                                   sizeof(v)), 200);
    CU_ASSERT_EQUAL(upstream_count(&up, "/tcc/invalid"), 2);
    /* an invalid first field falls through to the valid second one */
    for (i = 0; i != 2; ++i)
        CU_ASSERT_EQUAL(get_header("/tcc/fallthrough?cc=no-store&hdr=Corral-Cache-Control:max-age%3D%22x&"
                                   "hdr=CDN-Cache-Control:max-age%3D3600",
                                   NULL, "cache-control", v, sizeof(v)), 200);
    CU_ASSERT_EQUAL(upstream_count(&up, "/tcc/fallthrough"), 1);

    /* passed (uncached route): the field is not forwarded either */
    CU_ASSERT_EQUAL(get_header("/pass/tcc?hdr=CDN-Cache-Control:max-age%3D60", NULL, "cdn-cache-control", v, sizeof(v)), 200);
    CU_ASSERT_EQUAL(v[0], '\0');
}

/* A 304 refreshes an object whose freshness came from a targeted field: the field still counts (stored, not sent).
 * The stored response is stale at once (CDN-Cache-Control: max-age=0, Cache-Control: no-store); the 304 brings
 * CDN-Cache-Control: max-age=3600 and Cache-Control: no-store again; the next request is a hit. */
static void test_targeted_cache_control_survives_a_304(void)
{
    const char *path = "/tcc/refresh?etag=%22v1%22&cc=no-store&hdr=CDN-Cache-Control:max-age%3D0&"
                       "hdr304=CDN-Cache-Control:max-age%3D3600";
    char v[256];
    CU_ASSERT_EQUAL(get_header(path, NULL, "cdn-cache-control", v, sizeof(v)), 200);
    CU_ASSERT_EQUAL(get_header(path, NULL, "cdn-cache-control", v, sizeof(v)), 200); /* revalidated: 304 upstream */
    CU_ASSERT_EQUAL(v[0], '\0');
    CU_ASSERT_EQUAL(get_header(path, NULL, "cache-status", v, sizeof(v)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(v, "hit"));
    CU_ASSERT_EQUAL(upstream_count(&up, "/tcc/refresh"), 2);
}

/* cache.targeted_cache_control is checked: a standard header, a bad name, more than four. forward_targeted: true
 * sends the field on. */
static void test_targeted_cache_control_config(void)
{
    static const char *base = "listen: [{address: 127.0.0.1:${PORT}}]\nupstream: {url: http://127.0.0.1:${UPSTREAM_PORT}}\n";
    char yaml[1024], err[1024];
    cr_proc_t c2;
    cr_resp_t r;
    char v[256];

    snprintf(yaml, sizeof(yaml), "%scache: {targeted_cache_control: [cache-control]}\n", base);
    CU_ASSERT_NOT_EQUAL(harness_run_corral_check(yaml, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "targeted"));
    snprintf(yaml, sizeof(yaml), "%scache: {targeted_cache_control: [a, b, c, d, e]}\n", base);
    CU_ASSERT_NOT_EQUAL(harness_run_corral_check(yaml, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "at most 4"));
    snprintf(yaml, sizeof(yaml), "%scache: {targeted_cache_control: [\"bad name\"]}\n", base);
    CU_ASSERT_NOT_EQUAL(harness_run_corral_check(yaml, err, sizeof(err)), 0);
    snprintf(yaml, sizeof(yaml), "%scache: {targeted_cache_control: [], forward_targeted: true}\n", base);
    CU_ASSERT_EQUAL(harness_run_corral_check(yaml, err, sizeof(err)), 0);

    snprintf(yaml, sizeof(yaml), "%scache: {forward_targeted: true}\nroutes: [{match: {prefix: /}}]\n", base);
    CU_ASSERT_EQUAL_FATAL(harness_start_corral(&c2, yaml, &up), 0);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, "/tcc/fwd?cc=no-store&hdr=CDN-Cache-Control:max-age%3D60"), NULL,
                                 NULL, 0), 0);
    CU_ASSERT(resp_header(&r, "cdn-cache-control", v, sizeof(v)) != NULL && strcmp(v, "max-age=60") == 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_request(&r, CR_H1, "GET", url_of(&c2, "/tcc/fwd?cc=no-store&hdr=CDN-Cache-Control:max-age%3D60"), NULL,
                                 NULL, 0), 0);
    CU_ASSERT(resp_header(&r, "cdn-cache-control", v, sizeof(v)) != NULL && strcmp(v, "max-age=60") == 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/tcc/fwd"), 1);
    CU_ASSERT_EQUAL(harness_stop(&c2), 0);
}

/* An IMF-fixdate `ago` seconds in the past, URL-encoded for the upstream's date= (spaces as %20) into q, and plain
 * into plain (each at least 64 bytes). */
static void date_ago(int ago, char *q, char *plain)
{
    time_t t = time(NULL) - ago;
    struct tm tm;
    char *p;
    gmtime_r(&t, &tm);
    strftime(plain, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    for (p = q; *plain != '\0'; ++plain)
        p += *plain == ' ' ? (size_t)sprintf(p, "%%20") : (size_t)(*p = *plain, 1);
    *p = '\0';
}

/* RFC 9110 6.6.1 / RFC 9111 5.1: a stored response keeps the origin's Date; a hit sends that Date (exactly one Date
 * line) with the computed Age, on HTTP/1.1 and HTTP/2, for a full response and for a 304 made from the cache; a passed
 * response keeps it too. */
static void test_hit_keeps_the_origin_date(void)
{
    static const char *const inm[] = {"If-None-Match: \"d1\"", NULL};
    static const cr_proto_t protos[] = {CR_H1, CR_H2C};
    char q[128], plain[64], path[256], v[128], age[32];
    int i;

    date_ago(30, q, plain);
    snprintf(path, sizeof(path), "/date/hit?cc=max-age%%3D3600&etag=%%22d1%%22&date=%s", q);
    for (i = 0; i != 5; ++i) { /* a miss, then hits on both protocols, then 304s from the cache */
        cr_resp_t r;
        get(&r, protos[i % 2], path, i >= 3 ? inm : NULL);
        CU_ASSERT_EQUAL(r.status, i >= 3 ? 304 : 200);
        CU_ASSERT_EQUAL(resp_header_count(&r, "date"), 1);
        CU_ASSERT(resp_header(&r, "date", v, sizeof(v)) != NULL && strcmp(v, plain) == 0);
        if (strcmp(v, plain) != 0)
            fprintf(stderr, "\n  Date: got \"%s\", want \"%s\" (request %d)\n", v, plain, i);
        CU_ASSERT(resp_header(&r, "age", age, sizeof(age)) != NULL && atoi(age) >= 29);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/date/hit"), 1);
    for (i = 0; i != 2; ++i) { /* a 206 from the stored response: its Date as well */
        static const char *const range[] = {"Range: bytes=0-9", NULL};
        cr_resp_t r;
        get(&r, protos[i], path, range);
        CU_ASSERT_EQUAL(r.status, 206);
        CU_ASSERT_EQUAL(resp_header_count(&r, "date"), 1);
        CU_ASSERT(resp_header(&r, "date", v, sizeof(v)) != NULL && strcmp(v, plain) == 0);
        resp_free(&r);
    }

    /* stored only gzip'ed by the origin, decoded on the fly for a client that accepts no coding */
    snprintf(path, sizeof(path), "/date/gz?cc=max-age%%3D3600&gzip=1&size=100000&date=%s", q);
    for (i = 0; i != 4; ++i) {
        cr_resp_t r;
        get(&r, protos[i % 2], path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(r.body_len, 100000);
        CU_ASSERT_PTR_NULL(resp_header(&r, "content-encoding", v, sizeof(v)));
        CU_ASSERT_EQUAL(resp_header_count(&r, "date"), 1);
        CU_ASSERT(resp_header(&r, "date", v, sizeof(v)) != NULL && strcmp(v, plain) == 0);
        if (strcmp(v, plain) != 0)
            fprintf(stderr, "\n  Date: got \"%s\", want \"%s\" (gz request %d)\n", v, plain, i);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/date/gz"), 1);

    /* passed (uncached route): the origin's Date too, once */
    snprintf(path, sizeof(path), "/pass/date?date=%s", q);
    for (i = 0; i != 2; ++i) {
        cr_resp_t r;
        get(&r, protos[i], path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(resp_header_count(&r, "date"), 1);
        CU_ASSERT(resp_header(&r, "date", v, sizeof(v)) != NULL && strcmp(v, plain) == 0);
        resp_free(&r);
    }
}

/* RFC 9111 4.3.2 / RFC 9110 13.1.3: If-Modified-Since against a stored response without Last-Modified is compared
 * with its Date. The origin's Date is 60 s ago: an If-Modified-Since of now is 304, one of two minutes ago is 200. */
static void test_if_modified_since_uses_date_without_last_modified(void)
{
    char q[128], d_old[64], d_now[64], d_before[64], path[256], ims_now[96], ims_before[96];
    const char *h_now[] = {ims_now, NULL}, *h_before[] = {ims_before, NULL};
    cr_resp_t r;

    date_ago(60, q, d_old);
    date_ago(0, path, d_now); /* path is a scratch buffer here */
    date_ago(120, path, d_before);
    snprintf(ims_now, sizeof(ims_now), "If-Modified-Since: %s", d_now);
    snprintf(ims_before, sizeof(ims_before), "If-Modified-Since: %s", d_before);
    snprintf(path, sizeof(path), "/ims/date?cc=max-age%%3D3600&date=%s", q);
    get(&r, CR_H1, path, NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    get(&r, CR_H1, path, h_now);
    CU_ASSERT_EQUAL(r.status, 304);
    resp_free(&r);
    get(&r, CR_H2C, path, h_now);
    CU_ASSERT_EQUAL(r.status, 304);
    resp_free(&r);
    get(&r, CR_H1, path, h_before);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(r.body_len > 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/ims/date"), 1);
}

/* A conditional miss (nothing stored) goes upstream with its validators, and the upstream's 304 comes back as it is;
 * nothing is stored from it: the next plain GET is a miss that stores the full response, after which conditional
 * requests are answered 304 from the cache. */
static void test_conditional_miss_forwards_validators(void)
{
    static const char *const inm[] = {"If-None-Match: \"c1\"", NULL},
                             *const ims[] = {"If-Modified-Since: Sun, 06 Nov 2022 08:49:37 GMT", NULL};
    char v[256];
    char *log;
    cr_resp_t r;

    get(&r, CR_H1, "/cond/etag?cc=max-age%3D3600&etag=%22c1%22", inm);
    CU_ASSERT_EQUAL(r.status, 304);
    CU_ASSERT(resp_header(&r, "cache-status", v, sizeof(v)) != NULL && strstr(v, "detail=conditional") != NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/etag"), 1);
    log = upstream_log(&up, "/cond/etag");
    CU_ASSERT(log != NULL && strstr(log, "if-none-match") != NULL && strstr(log, "c1") != NULL);
    free(log);
    get(&r, CR_H2C, "/cond/etag?cc=max-age%3D3600&etag=%22c1%22", NULL); /* the 304 was not stored: a miss */
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(r.body_len > 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/etag"), 2);
    get(&r, CR_H1, "/cond/etag?cc=max-age%3D3600&etag=%22c1%22", inm); /* now stored: 304 from the cache */
    CU_ASSERT_EQUAL(r.status, 304);
    CU_ASSERT(resp_header(&r, "cache-status", v, sizeof(v)) != NULL && strstr(v, "hit") != NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/etag"), 2);

    /* If-Modified-Since the same way; a validator that does not match gets the full 200, which is not stored */
    get(&r, CR_H1, "/cond/ims?cc=max-age%3D3600&lm=Sun,%2006%20Nov%202022%2008:49:37%20GMT", ims);
    CU_ASSERT_EQUAL(r.status, 304);
    resp_free(&r);
    get(&r, CR_H1, "/cond/nomatch?cc=max-age%3D3600&etag=%22other%22", inm);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    get(&r, CR_H1, "/cond/nomatch?cc=max-age%3D3600&etag=%22other%22", NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/ims"), 1);
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/nomatch"), 2);
}

static void *plain_get_thread(void *arg)
{
    cr_resp_t *r = arg;
    (void)http_request(r, CR_H1, "GET", url_of(&corral, "/cond/herd?cc=max-age%3D3600&etag=%22h1%22&delay=800"), NULL, NULL, 0);
    return NULL;
}

/* A conditional miss while a fill for the key runs joins that fill (it never leads one): the upstream is asked
 * once, and the conditional request gets its 304 from the stored object. */
static void test_conditional_miss_joins_a_running_fill(void)
{
    static const char *const inm[] = {"If-None-Match: \"h1\"", NULL};
    cr_resp_t plain, r;
    pthread_t th;
    int i;

    memset(&plain, 0, sizeof(plain));
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, plain_get_thread, &plain), 0);
    for (i = 0; i != 500 && upstream_count(&up, "/cond/herd") < 1; ++i) /* bounded: 5 s */
        poll(NULL, 0, 10);
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/herd"), 1);
    get(&r, CR_H1, "/cond/herd?cc=max-age%3D3600&etag=%22h1%22&delay=800", inm);
    CU_ASSERT_EQUAL(r.status, 304);
    resp_free(&r);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(plain.status, 200);
    resp_free(&plain);
    CU_ASSERT_EQUAL(upstream_count(&up, "/cond/herd"), 1);
}

/* Interim responses (100, 102, 103) from the origin: libh2o 2.2.5 has no API to send an informational response to a
 * client (h2o_send_informational came with 2.3), so corral validates them, drops them and sends the final response
 * alone; nothing of an interim response is stored or reused. A malformed interim response is a bad head (502). */
static void test_interim_responses_are_dropped_and_never_stored(void)
{
    static const cr_proto_t protos[] = {CR_H1, CR_H2C, CR_H1};
    char v[256];
    int i;

    for (i = 0; i != 3; ++i) {
        cr_resp_t r;
        get(&r, protos[i], "/interim/a?cc=max-age%3D3600&interim=100&interim=102&interim=103", NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(r.body_len > 0);
        CU_ASSERT_PTR_NULL(strstr(r.headers_raw, " 103"));
        CU_ASSERT_PTR_NULL(strstr(r.headers_raw, " 102"));
        CU_ASSERT_PTR_NULL(resp_header(&r, "x-interim", v, sizeof(v)));
        CU_ASSERT_PTR_NULL(resp_header(&r, "link", v, sizeof(v)));
        if (i != 0)
            CU_ASSERT(resp_header(&r, "cache-status", v, sizeof(v)) != NULL && strstr(v, "hit") != NULL);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/interim/a"), 1);
    /* passed (uncached route): dropped too */
    {
        cr_resp_t r;
        get(&r, CR_H2C, "/pass/interim?interim=103", NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NULL(resp_header(&r, "x-interim", v, sizeof(v)));
        resp_free(&r);
    }
    /* a malformed interim response: 502, nothing stored (the next request asks again) */
    for (i = 0; i != 2; ++i) {
        cr_resp_t r;
        get(&r, CR_H1, "/interim/bad?cc=max-age%3D3600&interim_bad=1", NULL);
        CU_ASSERT_EQUAL(r.status, 502);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/interim/bad"), 2);
}

/* upstream.url with a host name: resolved at load (off the loops) and by the resolver thread afterwards. "LOCALHOST"
 * is a real lookup (/etc/hosts; only the lower-case spelling is the config's numeric shortcut). A name that does not
 * resolve is a config error with the reason. */
static void test_upstream_host_name(void)
{
    char yaml[512], err[1024];
    cr_proc_t c2;
    cr_resp_t r;
    int i;

    snprintf(yaml, sizeof(yaml), "listen: [{address: 127.0.0.1:${PORT}}]\nupstream: {url: \"http://LOCALHOST:%d\"}\n"
                                 "routes: [{match: {prefix: /}}]\n",
             up.port);
    CU_ASSERT_EQUAL_FATAL(harness_start_corral(&c2, yaml, &up), 0);
    for (i = 0; i != 2; ++i) {
        CU_ASSERT_EQUAL(http_request(&r, i == 0 ? CR_H1 : CR_H2C, "GET", url_of(&c2, "/name/a?cc=max-age%3D60"), NULL, NULL, 0), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(upstream_count(&up, "/name/a"), 1);
    CU_ASSERT_EQUAL(harness_stop(&c2), 0);
    CU_ASSERT_EQUAL(harness_count_in_file(c2.log_path, "cannot resolve"), 0);

    CU_ASSERT_NOT_EQUAL(harness_run_corral_check("listen: [{address: 127.0.0.1:${PORT}}]\n"
                                                 "upstream: {url: \"http://corral-test.invalid:8080\"}\n",
                                                 err, sizeof(err)),
                        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot resolve \"corral-test.invalid\""));
    CU_ASSERT_NOT_EQUAL(harness_run_corral_check("listen: [{address: 127.0.0.1:${PORT}}]\n"
                                                 "upstream: {url: \"http://bad_name!:8080\"}\n",
                                                 err, sizeof(err)),
                        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a valid host name"));
}

void cr_e2e_register_rfcgaps(void)
{
    CU_pSuite s = CU_add_suite("rfcgaps", suite_init, suite_cleanup);
    CU_add_test(s, "targeted Cache-Control: the first valid listed field governs, and is not forwarded",
                test_targeted_cache_control);
    CU_add_test(s, "targeted Cache-Control: still counts after a 304", test_targeted_cache_control_survives_a_304);
    CU_add_test(s, "targeted Cache-Control: config checks, forward_targeted", test_targeted_cache_control_config);
    CU_add_test(s, "Date: a hit sends the origin's Date, once, with its Age", test_hit_keeps_the_origin_date);
    CU_add_test(s, "If-Modified-Since: compared with Date when there is no Last-Modified",
                test_if_modified_since_uses_date_without_last_modified);
    CU_add_test(s, "a conditional miss forwards its validators; a 304 is passed back, never stored",
                test_conditional_miss_forwards_validators);
    CU_add_test(s, "a conditional miss joins a running fill", test_conditional_miss_joins_a_running_fill);
    CU_add_test(s, "interim responses: validated, dropped, never stored", test_interim_responses_are_dropped_and_never_stored);
    CU_add_test(s, "upstream.url: a host name, resolved off the loops", test_upstream_host_name);
}
