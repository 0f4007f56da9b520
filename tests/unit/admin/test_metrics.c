/*
 * test_metrics.c: unit tests for sidecar/admin/metrics.c: the Prometheus text writer (family and sample lines, the
 * growable buffer under many series, escaping of label values and HELP texts) and the /metrics body built from the
 * counter table (every thread's and the admin thread's counters summed; the existing series' HELP/TYPE lines).
 * Leaks are caught by running under LSan (make SANITIZE=address,undefined unit).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corral/admin/metrics.h"
#include "corral/cache/store.h"
#include "corral/core/runtime.h"

void cr_test_register_metrics(void);

static void test_metrics_format(void)
{
    cr_metrics_t m;
    cr_metrics_init(&m);
    cr_metrics_single(&m, "hits_total", CR_METRIC_COUNTER, "Hits.", 42);
    cr_metrics_single(&m, "objects", CR_METRIC_GAUGE, "Objects.", 0);
    CU_ASSERT_FALSE(m.failed);
    CU_ASSERT_STRING_EQUAL(m.base, "# HELP corral_hits_total Hits.\n# TYPE corral_hits_total counter\ncorral_hits_total 42\n"
                                   "# HELP corral_objects Objects.\n# TYPE corral_objects gauge\ncorral_objects 0\n");
    CU_ASSERT_EQUAL(m.len, strlen(m.base));
    cr_metrics_dispose(&m);
    CU_ASSERT_PTR_NULL(m.base);
    CU_ASSERT_EQUAL(m.len, 0);

    cr_metrics_init(&m); /* the largest value, and no write at all */
    CU_ASSERT_PTR_NULL(m.base);
    cr_metrics_sample(&m, "x", NULL, 0, UINT64_MAX);
    CU_ASSERT_STRING_EQUAL(m.base, "corral_x 18446744073709551615\n");
    cr_metrics_dispose(&m);
}

static void test_metrics_labels(void)
{
    cr_metrics_t m;
    cr_metric_label_t two[] = {{"route", CR_STR("api")}, {"outcome", CR_STR("hit")}};
    cr_metric_label_t nasty[] = {{"route", CR_STR("a\"b\\c\nd")}};
    cr_metric_label_t empty[] = {{"route", CR_STR("")}};
    cr_metrics_init(&m);
    cr_metrics_family(&m, "requests_total", CR_METRIC_COUNTER, "Requests.");
    cr_metrics_sample(&m, "requests_total", two, 2, 7);
    cr_metrics_sample(&m, "requests_total", nasty, 1, 1);
    cr_metrics_sample(&m, "requests_total", empty, 1, 2);
    CU_ASSERT_STRING_EQUAL(m.base, "# HELP corral_requests_total Requests.\n# TYPE corral_requests_total counter\n"
                                   "corral_requests_total{route=\"api\",outcome=\"hit\"} 7\n"
                                   "corral_requests_total{route=\"a\\\"b\\\\c\\nd\"} 1\n"
                                   "corral_requests_total{route=\"\"} 2\n");
    cr_metrics_dispose(&m);

    /* HELP escapes backslash and newline, not double quotes */
    cr_metrics_init(&m);
    cr_metrics_family(&m, "x", CR_METRIC_GAUGE, "a \"quoted\" back\\slash\nnext");
    CU_ASSERT_STRING_EQUAL(m.base, "# HELP corral_x a \"quoted\" back\\\\slash\\nnext\n# TYPE corral_x gauge\n");
    cr_metrics_dispose(&m);
}

/* Many series: the buffer grows past its first size, stays within twice what was written, and loses nothing. */
static void test_metrics_grows(void)
{
    cr_metrics_t m;
    char value[32], expect[128];
    size_t i, lines = 0, first_cap = 0;
    const char *p;
    cr_metrics_init(&m);
    cr_metrics_family(&m, "series", CR_METRIC_GAUGE, "Many series.");
    for (i = 0; i != 20000; ++i) {
        cr_metric_label_t l[] = {{"route", cr_str(value, (size_t)snprintf(value, sizeof(value), "r%zu", i))}};
        cr_metrics_sample(&m, "series", l, 1, i);
        if (first_cap == 0)
            first_cap = m.cap;
    }
    CU_ASSERT_FALSE(m.failed);
    CU_ASSERT(m.len > 20000 * 20);
    CU_ASSERT(m.cap > first_cap);
    CU_ASSERT(m.cap >= m.len + 1 && m.cap <= 2 * (m.len + 1));
    CU_ASSERT_EQUAL(strlen(m.base), m.len);
    for (p = m.base; (p = strchr(p, '\n')) != NULL; ++p)
        ++lines;
    CU_ASSERT_EQUAL(lines, 20000 + 2);
    snprintf(expect, sizeof(expect), "\ncorral_series{route=\"r19999\"} 19999\n");
    CU_ASSERT(m.len >= strlen(expect) && strcmp(m.base + m.len - strlen(expect), expect) == 0);
    CU_ASSERT(strstr(m.base, "\ncorral_series{route=\"r0\"} 0\ncorral_series{route=\"r1\"} 1\n") != NULL);
    cr_metrics_dispose(&m);
}

/* The /metrics body: the table's counters summed over the workers and the admin thread, then the process-wide
 * series, with the HELP and TYPE lines the e2e tests and dashboards know. */
static void test_metrics_body(void)
{
    cr_thread_t threads[2], admin;
    cr_runtime_t saved = cr_rt;
    cr_metrics_t m;
    memset(threads, 0, sizeof(threads));
    memset(&admin, 0, sizeof(admin));
    threads[0].stats.requests = 3;
    threads[1].stats.requests = 4;
    admin.stats.header_timeouts = 5;
    threads[1].stats.fills_dropped = 1;
    cr_rt.threads = threads;
    cr_rt.nthreads = 2;
    cr_rt.admin_thread = &admin;
    cr_rt.store = cr_store_new_bounded(1 << 20, 16);
    CU_ASSERT_FATAL(cr_rt.store != NULL);
    cr_rt.started_at_ms = cr_now_ms();
    cr_rt.connections_open = 9;

    cr_metrics_init(&m);
    cr_metrics_write_all(&m);
    CU_ASSERT_FALSE(m.failed);
    CU_ASSERT(strstr(m.base, "# HELP corral_requests_total Requests received on the traffic listeners.\n"
                             "# TYPE corral_requests_total counter\ncorral_requests_total 7\n") == m.base);
    CU_ASSERT(strstr(m.base, "\ncorral_header_timeouts_total 5\n") != NULL);
    CU_ASSERT(strstr(m.base, "# HELP corral_fills_dropped_total Fills cancelled before they were sent upstream: every "
                             "waiter had gone.\n# TYPE corral_fills_dropped_total counter\ncorral_fills_dropped_total 1\n") != NULL);
    CU_ASSERT(strstr(m.base, "# HELP corral_client_connections Client connections open (limits.connections).\n"
                             "# TYPE corral_client_connections gauge\ncorral_client_connections 9\n") != NULL);
    CU_ASSERT(strstr(m.base, "# TYPE corral_store_limit_bytes gauge\ncorral_store_limit_bytes 1048576\n") != NULL);
    CU_ASSERT(strstr(m.base, "# HELP corral_uptime_seconds Seconds since start.\n# TYPE corral_uptime_seconds gauge\n"
                             "corral_uptime_seconds 0\n") != NULL);
    /* the labelled families, the config and build series, process_* */
    CU_ASSERT(strstr(m.base, "\n# TYPE corral_route_requests_total counter\ncorral_route_requests_total{route=\"(none)\",outcome=\"pass\"} ") != NULL);
    CU_ASSERT(strstr(m.base, "\n# TYPE corral_request_duration_seconds histogram\n") != NULL);
    CU_ASSERT(strstr(m.base, "\ncorral_response_body_bytes_total{encoding=\"br\"} ") != NULL);
    CU_ASSERT(strstr(m.base, "\n# TYPE corral_upstream_response_seconds histogram\n") != NULL);
    CU_ASSERT(strstr(m.base, "\ncorral_upstream_failures_total{kind=\"timeout\"} ") != NULL);
    CU_ASSERT(strstr(m.base, "\ncorral_config_reloads_total{result=\"failed\"} 0\n") != NULL);
    CU_ASSERT(strstr(m.base, "\ncorral_build_info{version=\"" CR_VERSION "\"} 1\n") != NULL);
    CU_ASSERT(strstr(m.base, "\nprocess_open_fds ") != NULL);
    /* every table row once */
    {
        size_t i;
        char needle[128];
        for (i = 0; i != cr_stats_num_descs; ++i) {
            snprintf(needle, sizeof(needle), "\n# TYPE corral_%s counter\n", cr_stats_descs[i].name);
            CU_ASSERT(strstr(m.base, needle) != NULL);
        }
    }
    cr_metrics_dispose(&m);
    cr_store_free(&cr_rt.store);
    cr_rt = saved;
}

/* A histogram: cumulative buckets with le last among the labels, _sum in seconds, _count; the family's TYPE. */
static void test_metrics_histogram(void)
{
    cr_metrics_t m;
    cr_hist_t h;
    cr_metric_label_t l = {"outcome", CR_STR("hit")};
    const char *p;
    unsigned lines = 0;

    memset(&h, 0, sizeof(h));
    cr_hist_observe(&h, 400);     /* 0.0005 */
    cr_hist_observe(&h, 1000);    /* 0.001 */
    cr_hist_observe(&h, 3000000); /* 5 */
    cr_hist_observe(&h, 60000000); /* +Inf */
    cr_metrics_init(&m);
    cr_metrics_family(&m, "x_seconds", CR_METRIC_HISTOGRAM, "X.");
    cr_metrics_histogram(&m, "x_seconds", &l, 1, &h);
    CU_ASSERT_FALSE(m.failed);
    CU_ASSERT(strstr(m.base, "# HELP corral_x_seconds X.\n# TYPE corral_x_seconds histogram\n"
                             "corral_x_seconds_bucket{outcome=\"hit\",le=\"0.0005\"} 1\n"
                             "corral_x_seconds_bucket{outcome=\"hit\",le=\"0.001\"} 2\n"
                             "corral_x_seconds_bucket{outcome=\"hit\",le=\"0.0025\"} 2\n") == m.base);
    CU_ASSERT(strstr(m.base, "\ncorral_x_seconds_bucket{outcome=\"hit\",le=\"2.5\"} 2\n"
                             "corral_x_seconds_bucket{outcome=\"hit\",le=\"5\"} 3\n") != NULL);
    CU_ASSERT(strstr(m.base, "\ncorral_x_seconds_bucket{outcome=\"hit\",le=\"+Inf\"} 4\n"
                             "corral_x_seconds_sum{outcome=\"hit\"} 63.001400\n"
                             "corral_x_seconds_count{outcome=\"hit\"} 4\n") != NULL);
    for (p = m.base; (p = strchr(p, '\n')) != NULL; ++p)
        ++lines;
    CU_ASSERT_EQUAL(lines, 2 + CR_HIST_NUM_BOUNDS + 1 + 2);
    cr_metrics_dispose(&m);

    /* no labels: only le */
    cr_metrics_init(&m);
    cr_metrics_histogram(&m, "y_seconds", NULL, 0, &h);
    CU_ASSERT(strstr(m.base, "corral_y_seconds_bucket{le=\"0.0005\"} 1\n") == m.base);
    CU_ASSERT(strstr(m.base, "\ncorral_y_seconds_count 4\n") != NULL);
    cr_metrics_dispose(&m);
}

/* Floating-point samples, the prefix, and the process_* series (this process has a /proc/self). */
static void test_metrics_double_and_process(void)
{
    cr_metrics_t m;
    cr_metrics_init(&m);
    cr_metrics_single_double(&m, "d", CR_METRIC_GAUGE, "D.", 0.25);
    CU_ASSERT_STRING_EQUAL(m.base, "# HELP corral_d D.\n# TYPE corral_d gauge\ncorral_d 0.25\n");
    cr_metrics_dispose(&m);

    cr_metrics_init(&m);
    cr_metrics_write_process(&m);
    CU_ASSERT_FALSE(m.failed);
    CU_ASSERT_STRING_EQUAL(m.prefix, "corral_"); /* restored */
    CU_ASSERT(strstr(m.base, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ") != NULL);
    CU_ASSERT(strstr(m.base, "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ") != NULL);
    CU_ASSERT(strstr(m.base, "\nprocess_resident_memory_bytes ") != NULL);
    CU_ASSERT(strstr(m.base, "\nprocess_virtual_memory_bytes ") != NULL);
    CU_ASSERT(strstr(m.base, "\nprocess_open_fds ") != NULL);
    CU_ASSERT(strstr(m.base, "\nprocess_max_fds ") != NULL);
    CU_ASSERT(strstr(m.base, "corral_") == NULL);
    {
        const char *p = strstr(m.base, "\nprocess_start_time_seconds ");
        double start = p != NULL ? strtod(p + strlen("\nprocess_start_time_seconds "), NULL) : 0;
        CU_ASSERT(start > 1.6e9 && start < (double)time(NULL) + 1);
        p = strstr(m.base, "\nprocess_open_fds ");
        CU_ASSERT(p != NULL && atol(p + 18) >= 3);
    }
    cr_metrics_dispose(&m);
}

void cr_test_register_metrics(void)
{
    CU_pSuite suite = CU_add_suite("metrics", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "family and sample lines", test_metrics_format);
    CU_add_test(suite, "labels and HELP are escaped", test_metrics_labels);
    CU_add_test(suite, "many series grow the buffer", test_metrics_grows);
    CU_add_test(suite, "the /metrics body", test_metrics_body);
    CU_add_test(suite, "histograms", test_metrics_histogram);
    CU_add_test(suite, "floating-point samples and process_*", test_metrics_double_and_process);
}
