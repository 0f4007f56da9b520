/*
 * main.c: the CUnit runner for every unit suite. Each tests/unit/test_<module>.c exports cr_test_register_<module>(),
 * which adds its suite. The exit code is the number of failed assertions plus failed suites (0 = all passed).
 */
#include <CUnit/Basic.h>
#include <stdio.h>

void cr_test_register_common(void);
void cr_test_register_log(void);
void cr_test_register_chunked(void);
void cr_test_register_h1_response(void);
void cr_test_register_h1_request(void);
void cr_test_register_config(void);
void cr_test_register_route(void);
void cr_test_register_config_reload(void);
void cr_test_register_generation(void);
void cr_test_register_key(void);
void cr_test_register_urlpath(void);
void cr_test_register_cidr(void);
void cr_test_register_policy(void);
void cr_test_register_targeted_cc(void);
void cr_test_register_upstream_resolver(void);
void cr_test_register_object(void);
void cr_test_register_object_oom(void);
void cr_test_register_objbuild(void);
void cr_test_register_store(void);
void cr_test_register_inval_epoch(void);
void cr_test_register_ebr(void);
void cr_test_register_workq(void);
void cr_test_register_pin(void);
void cr_test_register_invalidate(void);
void cr_test_register_purge(void);
void cr_test_register_encoding(void);
void cr_test_register_http(void);
void cr_test_register_guard(void);
void cr_test_register_ratelimit(void);
void cr_test_register_stats(void);
void cr_test_register_metrics(void);
void cr_test_register_stats_json(void);
void cr_test_register_reqstats(void);
void cr_test_register_outcome(void);
void cr_test_register_flight(void);
void cr_test_register_value(void);
void cr_test_register_tier_key(void);
void cr_test_register_mc(void);
void cr_test_register_breaker(void);
void cr_test_register_inval_log(void);
void cr_test_register_inval_ring(void);
void cr_test_register_accesslog(void);
void cr_test_register_request_id(void);
void cr_test_register_key_memo(void);
void cr_test_register_thread_blocks(void);
void cr_test_register_config_log(void);
void cr_test_register_range(void);
void cr_test_register_concurrency(void);
void cr_test_register_config_upstream(void);

int main(void)
{
    unsigned failures;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    cr_test_register_common();
    cr_test_register_log();
    cr_test_register_chunked();
    cr_test_register_h1_response();
    cr_test_register_h1_request();
    cr_test_register_config();
    cr_test_register_route();
    cr_test_register_config_reload();
    cr_test_register_generation();
    cr_test_register_key();
    cr_test_register_urlpath();
    cr_test_register_cidr();
    cr_test_register_policy();
    cr_test_register_targeted_cc();
    cr_test_register_upstream_resolver();
    cr_test_register_object();
    cr_test_register_object_oom();
    cr_test_register_objbuild();
    cr_test_register_inval_epoch();
    cr_test_register_store();
    cr_test_register_ebr();
    cr_test_register_workq();
    cr_test_register_pin();
    cr_test_register_invalidate();
    cr_test_register_purge();
    cr_test_register_encoding();
    cr_test_register_http();
    cr_test_register_guard();
    cr_test_register_ratelimit();
    cr_test_register_stats();
    cr_test_register_metrics();
    cr_test_register_outcome();
    cr_test_register_flight();
    cr_test_register_value();
    cr_test_register_tier_key();
    cr_test_register_mc();
    cr_test_register_breaker();
    cr_test_register_inval_log();
    cr_test_register_inval_ring();
    cr_test_register_accesslog();
    cr_test_register_request_id();
    cr_test_register_key_memo();
    cr_test_register_thread_blocks();
    cr_test_register_config_log();
    cr_test_register_range();
    cr_test_register_concurrency();
    cr_test_register_config_upstream();
    cr_test_register_reqstats(); /* late: it fills the process-wide route-name registry */
    cr_test_register_stats_json(); /* after it: its 3000-route config would fill the registry first */
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures > 255 ? 255 : (int)failures;
}
