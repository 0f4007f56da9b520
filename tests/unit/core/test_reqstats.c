/*
 * test_reqstats.c: unit tests for the labelled statistics' pure pieces: the histogram's bucket choice and sums
 * (core/histogram.c), the route-name registry (core/route_slots.c: one slot per name, stable, bounded, the overflow
 * slot), and the per-request record (core/reqstats.c: begin, take, end counting route x outcome, status class,
 * latency and body bytes by coding once; the per-route totals).
 * The registry is process-wide and the overflow test fills it: it runs last in this suite, and later config loads in
 * the runner then map new names to "(other)", which nothing else checks.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/conf/config.h"
#include "corral/core/histogram.h"
#include "corral/core/reqstats.h"
#include "corral/core/route_slots.h"

void cr_test_register_reqstats(void);

static void test_hist_buckets(void)
{
    cr_hist_t h, sum;
    unsigned i;

    CU_ASSERT_EQUAL(cr_hist_bucket(0), 0);
    CU_ASSERT_EQUAL(cr_hist_bucket(500), 0); /* le is inclusive */
    CU_ASSERT_EQUAL(cr_hist_bucket(501), 1);
    CU_ASSERT_EQUAL(cr_hist_bucket(1000), 1);
    CU_ASSERT_EQUAL(cr_hist_bucket(999999), 10);
    CU_ASSERT_EQUAL(cr_hist_bucket(10000000), CR_HIST_NUM_BOUNDS - 1);
    CU_ASSERT_EQUAL(cr_hist_bucket(10000001), CR_HIST_NUM_BOUNDS); /* +Inf */
    CU_ASSERT_EQUAL(cr_hist_bucket(UINT64_MAX), CR_HIST_NUM_BOUNDS);
    for (i = 1; i != CR_HIST_NUM_BOUNDS; ++i) { /* ascending, and the texts say the same in seconds */
        CU_ASSERT(cr_hist_bounds_us[i] > cr_hist_bounds_us[i - 1]);
        CU_ASSERT_EQUAL((uint64_t)(strtod(cr_hist_bound_text[i], NULL) * 1e6 + 0.5), cr_hist_bounds_us[i]);
    }
    memset(&h, 0, sizeof(h));
    cr_hist_observe(&h, 100);
    cr_hist_observe(&h, 2000);
    cr_hist_observe_shared(&h, 20000000);
    CU_ASSERT_EQUAL(h.buckets[0], 1);
    CU_ASSERT_EQUAL(h.buckets[2], 1);
    CU_ASSERT_EQUAL(h.buckets[CR_HIST_NUM_BOUNDS], 1);
    CU_ASSERT_EQUAL(h.sum_us, 20002100);
    CU_ASSERT_EQUAL(cr_hist_count(&h), 3);
    memset(&sum, 0, sizeof(sum));
    cr_hist_add(&sum, &h);
    cr_hist_add(&sum, &h);
    CU_ASSERT_EQUAL(cr_hist_count(&sum), 6);
    CU_ASSERT_EQUAL(sum.sum_us, 2 * h.sum_us);
}

static void test_route_slots(void)
{
    unsigned a = cr_route_slot_intern("unit-a", 6), b = cr_route_slot_intern("unit-b", 6);
    CU_ASSERT_STRING_EQUAL(cr_route_slot_name(CR_ROUTE_SLOT_NONE), "(none)");
    CU_ASSERT_STRING_EQUAL(cr_route_slot_name(CR_ROUTE_SLOT_OTHER), "(other)");
    CU_ASSERT(a != CR_ROUTE_SLOT_NONE && a != CR_ROUTE_SLOT_OTHER);
    CU_ASSERT(b != a && b != CR_ROUTE_SLOT_OTHER);
    CU_ASSERT_EQUAL(cr_route_slot_intern("unit-a", 6), a); /* the same name, the same slot (a reload keeps it) */
    CU_ASSERT_EQUAL(cr_route_slot_intern("unit-axyz", 6), a); /* only len bytes count */
    CU_ASSERT_NOT_EQUAL(cr_route_slot_intern("unit-", 5), a);
    CU_ASSERT_STRING_EQUAL(cr_route_slot_name(a), "unit-a");
    CU_ASSERT(cr_route_slots_used() > b);
    CU_ASSERT_PTR_NULL(cr_route_slot_name(cr_route_slots_used()));
}

static void test_code_class(void)
{
    CU_ASSERT_EQUAL(cr_code_class(100), 0);
    CU_ASSERT_EQUAL(cr_code_class(200), 1);
    CU_ASSERT_EQUAL(cr_code_class(304), 2);
    CU_ASSERT_EQUAL(cr_code_class(499), 3);
    CU_ASSERT_EQUAL(cr_code_class(599), 4);
    CU_ASSERT_EQUAL(cr_code_class(0), CR_CODE_CLASS_NONE);
    CU_ASSERT_EQUAL(cr_code_class(600), CR_CODE_CLASS_NONE);
    CU_ASSERT_EQUAL(cr_code_class(99), CR_CODE_CLASS_NONE);
    CU_ASSERT_STRING_EQUAL(cr_code_class_names[cr_code_class(404)], "4xx");
}

/* A finished request (no connection: response_end_at is set, so end needs no clock), with at most one header,
 * Content-Encoding, in *h (no pool: h2o recycles pool chunks per thread, which LSan would report). */
static void fake_req(h2o_req_t *req, h2o_header_t *h, int status, size_t bytes, const char *coding, long usec)
{
    memset(req, 0, sizeof(*req));
    memset(h, 0, sizeof(*h));
    req->res.status = status;
    req->bytes_sent = bytes;
    req->timestamps.request_begin_at.tv_sec = 1000;
    req->timestamps.response_end_at.tv_sec = 1000 + usec / 1000000;
    req->timestamps.response_end_at.tv_usec = usec % 1000000;
    if (coding != NULL) {
        h->name = &H2O_TOKEN_CONTENT_ENCODING->buf;
        h->value = h2o_iovec_init(coding, strlen(coding));
        req->res.headers.entries = h;
        req->res.headers.size = 1;
    }
}

static void test_request_record(void)
{
    unsigned slot = cr_route_slot_intern("unit-rec", 8);
    cr_reqstats_t *self = cr_reqstats_self(), *sum = malloc(sizeof(*sum));
    uint64_t hits0 = self->requests[slot][CR_OUTCOME_HIT], br0 = self->body_bytes[CR_BODY_BR], gz0 = self->body_bytes[CR_BODY_GZIP],
             other0 = self->body_bytes[CR_BODY_OTHER], miss_lat0 = cr_hist_count(&self->latency[CR_OUTCOME_MISS]);
    cr_route_total_t totals[CR_ROUTE_SLOTS];
    cr_reqstat_t rs, rs2;
    h2o_req_t req, other;
    h2o_header_t h1, h2;
    size_t n, i;
    int found = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
    CU_ASSERT_PTR_EQUAL(cr_reqstats_self(), self); /* one block per thread */
    fake_req(&req, &h1, 200, 1234, "br", 1500);
    fake_req(&other, &h2, 503, 10, "GZip", 30000);

    /* take: only the request begun last, and only once */
    cr_reqstat_begin(&rs, &req);
    CU_ASSERT_PTR_NULL(cr_reqstat_take(&other));
    CU_ASSERT_PTR_EQUAL(cr_reqstat_take(&req), &rs);
    CU_ASSERT_PTR_NULL(cr_reqstat_take(&req));
    CU_ASSERT_EQUAL(rs.slot, CR_ROUTE_SLOT_NONE);
    CU_ASSERT_EQUAL(rs.outcome, CR_OUTCOME_PASS);

    cr_reqstat_route(&rs, slot);
    cr_reqstat_outcome(&rs, CR_OUTCOME_HIT);
    cr_reqstat_route(NULL, slot); /* NULL: not labelled, no crash */
    cr_reqstat_outcome(NULL, CR_OUTCOME_HIT);
    cr_reqstat_end(&rs, &req);
    cr_reqstat_end(&rs, &req); /* once */
    CU_ASSERT_EQUAL(self->requests[slot][CR_OUTCOME_HIT], hits0 + 1);
    CU_ASSERT_EQUAL(self->codes[slot][1], 1);
    CU_ASSERT_EQUAL(self->body_bytes[CR_BODY_BR], br0 + 1234);

    cr_reqstat_begin(&rs2, &other);
    cr_reqstat_route(&rs2, 100000); /* out of range: the overflow slot */
    CU_ASSERT_EQUAL(rs2.slot, CR_ROUTE_SLOT_OTHER);
    cr_reqstat_route(&rs2, slot);
    cr_reqstat_outcome(&rs2, CR_OUTCOME_MISS);
    cr_reqstat_end(&rs2, &other); /* ended without a take: the current record is cleared too */
    CU_ASSERT_PTR_NULL(cr_reqstat_take(&other));
    CU_ASSERT_EQUAL(self->codes[slot][4], 1);
    CU_ASSERT_EQUAL(self->body_bytes[CR_BODY_GZIP], gz0 + 10); /* the coding's name in any case */
    CU_ASSERT_EQUAL(self->body_bytes[CR_BODY_OTHER], other0);
    CU_ASSERT_EQUAL(cr_hist_count(&self->latency[CR_OUTCOME_MISS]), miss_lat0 + 1);

    /* the sums and the per-route totals see this thread's block */
    cr_reqstats_sum(sum);
    CU_ASSERT(sum->requests[slot][CR_OUTCOME_HIT] >= hits0 + 1);
    CU_ASSERT_PTR_NULL(sum->next);
    n = cr_reqstats_route_totals(totals, CR_ROUTE_SLOTS);
    CU_ASSERT(n >= 1 && n <= CR_ROUTE_SLOTS);
    for (i = 0; i != n; ++i)
        if (strcmp(totals[i].name, "unit-rec") == 0) {
            found = 1;
            CU_ASSERT_EQUAL(totals[i].requests, 2);
            CU_ASSERT_EQUAL(totals[i].by_outcome[CR_OUTCOME_HIT], 1);
            CU_ASSERT_EQUAL(totals[i].by_outcome[CR_OUTCOME_MISS], 1);
            CU_ASSERT_EQUAL(totals[i].by_code[1], 1);
            CU_ASSERT_EQUAL(totals[i].by_code[4], 1);
        }
    CU_ASSERT(found);
    CU_ASSERT_EQUAL(cr_reqstats_route_totals(totals, 0), n); /* how many there are, none written */
    free(sum);
}

/* Route names from the config: defaults from the match (and methods), and the same name gets the same slot in
 * another generation whatever its position, so counters survive a reload. */
static void test_config_names(void)
{
    static const char a[] = "listen: [{ address: '127.0.0.1:8081' }]\nupstream: { url: 'http://127.0.0.1:8080' }\nroutes:\n"
                            "  - match: { prefix: /v1/users/, methods: [HEAD, GET] }\n"
                            "  - match: { exact: /v1/health }\n"
                            "  - match: { prefix: /v1/posts }\n    name: posts\n";
    static const char b[] = "listen: [{ address: '127.0.0.1:8081' }]\nupstream: { url: 'http://127.0.0.1:8080' }\nroutes:\n"
                            "  - match: { prefix: /v2/posts }\n    name: posts\n"
                            "  - match: { prefix: /new }\n"
                            "  - match: { exact: /v1/health }\n";
    char err[256];
    cr_config_t *ca = cr_config_load_string("a.yaml", a, sizeof(a) - 1, err, sizeof(err)),
                *cb = cr_config_load_string("b.yaml", b, sizeof(b) - 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
    CU_ASSERT_STRING_EQUAL(ca->routes[0].name, "prefix:/v1/users GET,HEAD"); /* match form; methods in a fixed order */
    CU_ASSERT_STRING_EQUAL(ca->routes[1].name, "exact:/v1/health");
    CU_ASSERT_STRING_EQUAL(ca->routes[2].name, "posts");
    CU_ASSERT_EQUAL(cb->routes[0].stat_slot, ca->routes[2].stat_slot); /* "posts" moved and changed its match */
    CU_ASSERT_EQUAL(cb->routes[2].stat_slot, ca->routes[1].stat_slot);
    CU_ASSERT_NOT_EQUAL(cb->routes[1].stat_slot, ca->routes[0].stat_slot);
    CU_ASSERT_STRING_EQUAL(cr_route_slot_name(ca->routes[0].stat_slot), "prefix:/v1/users GET,HEAD");
    cr_config_free(&ca);
    cr_config_free(&cb);
}

/* Past CR_ROUTE_SLOTS_MAX names, every new one shares "(other)"; known names keep their slots. */
static void test_route_slots_overflow(void)
{
    unsigned a = cr_route_slot_intern("unit-a", 6), i, last = 0;
    char name[32];
    for (i = 0; i != CR_ROUTE_SLOTS_MAX + 10; ++i) {
        unsigned s = cr_route_slot_intern(name, (size_t)snprintf(name, sizeof(name), "unit-many-%u", i));
        CU_ASSERT(s <= CR_ROUTE_SLOT_OTHER);
        last = s;
    }
    CU_ASSERT_EQUAL(last, CR_ROUTE_SLOT_OTHER);
    CU_ASSERT_EQUAL(cr_route_slots_used(), CR_ROUTE_SLOTS_MAX + 1);
    CU_ASSERT_EQUAL(cr_route_slot_intern("unit-a", 6), a);
    CU_ASSERT_EQUAL(cr_route_slot_intern("unit-never-seen", 15), CR_ROUTE_SLOT_OTHER);
}

void cr_test_register_reqstats(void)
{
    CU_pSuite suite = CU_add_suite("reqstats", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "histogram buckets and sums", test_hist_buckets);
    CU_add_test(suite, "route-name registry", test_route_slots);
    CU_add_test(suite, "status classes", test_code_class);
    CU_add_test(suite, "the per-request record", test_request_record);
    CU_add_test(suite, "route names from the config keep their slots", test_config_names);
    CU_add_test(suite, "route-name registry overflow (fills it: last)", test_route_slots_overflow);
}
