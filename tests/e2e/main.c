/*
 * main.c: the CUnit runner for the end-to-end suites. Each tests/e2e/test_<suite>.c exports cr_e2e_register_<suite>(),
 * which adds its suite; list new suites below. CORRAL_E2E_SUITE=text runs only the suites whose name contains text.
 * Exit code: failed assertions plus failed suites, capped at 255.
 *
 * Invariants: CORRAL_ROOT is set (to the repository root found from the current directory or this binary) before
 * any suite runs, so children and helpers agree on where tools/ and build/ are; curl_global_init runs exactly once.
 */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

void cr_e2e_register_smoke(void);
void cr_e2e_register_server(void);
void cr_e2e_register_cache(void);
void cr_e2e_register_store(void);
void cr_e2e_register_coalesce(void);
void cr_e2e_register_stale_if_error(void);
void cr_e2e_register_guard(void);
void cr_e2e_register_compress(void);
void cr_e2e_register_codings_offload(void);
void cr_e2e_register_invalidate(void);
void cr_e2e_register_key_safety(void);
void cr_e2e_register_hostile_upstream(void);
void cr_e2e_register_fill_epochs(void);
void cr_e2e_register_client_framing(void);
void cr_e2e_register_operations(void);
void cr_e2e_register_limits_fills(void);
void cr_e2e_register_limits_requests(void);
void cr_e2e_register_limits_variants(void);
void cr_e2e_register_limits_logs(void);
void cr_e2e_register_limits_connections(void);
void cr_e2e_register_limits_memory(void);
void cr_e2e_register_admin_thread(void);
void cr_e2e_register_lifecycle(void);
void cr_e2e_register_tier_lease(void);
void cr_e2e_register_tier(void);
void cr_e2e_register_tier_faults(void);
void cr_e2e_register_http_gaps(void);
void cr_e2e_register_rfcgaps(void);
void cr_e2e_register_status_page(void);
void cr_e2e_register_metrics(void);
void cr_e2e_register_accesslog(void);
void cr_e2e_register_ranges(void);
void cr_e2e_register_shedding(void);
void cr_e2e_register_ratelimit(void);

int main(void)
{
    unsigned failures;
    setenv("CORRAL_ROOT", harness_repo_root(), 0);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "e2e: curl_global_init failed\n");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    cr_e2e_register_smoke();
    cr_e2e_register_server();
    cr_e2e_register_cache();
    cr_e2e_register_store();
    cr_e2e_register_coalesce();
    cr_e2e_register_stale_if_error();
    cr_e2e_register_guard();
    cr_e2e_register_compress();
    cr_e2e_register_codings_offload();
    cr_e2e_register_invalidate();
    cr_e2e_register_key_safety();
    cr_e2e_register_hostile_upstream();
    cr_e2e_register_fill_epochs();
    cr_e2e_register_client_framing();
    cr_e2e_register_operations();
    cr_e2e_register_limits_fills();
    cr_e2e_register_limits_requests();
    cr_e2e_register_limits_variants();
    cr_e2e_register_limits_logs();
    cr_e2e_register_limits_connections();
    cr_e2e_register_limits_memory();
    cr_e2e_register_admin_thread();
    cr_e2e_register_lifecycle();
    cr_e2e_register_tier();
    cr_e2e_register_tier_faults();
    cr_e2e_register_http_gaps();
    cr_e2e_register_rfcgaps();
    cr_e2e_register_tier_lease();
    cr_e2e_register_status_page();
    cr_e2e_register_metrics();
    cr_e2e_register_accesslog();
    cr_e2e_register_ranges();
    cr_e2e_register_shedding();
    cr_e2e_register_ratelimit();
    if (getenv("CORRAL_E2E_SUITE") != NULL) { /* run only the suites whose name contains it */
        CU_pSuite s;
        CU_set_fail_on_inactive(CU_FALSE); /* the suites left out are not failures */
        for (s = CU_get_registry()->pSuite; s != NULL; s = s->pNext)
            CU_set_suite_active(s, strstr(s->pName, getenv("CORRAL_E2E_SUITE")) != NULL);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    if (harness_sanitizer_reports() != 0) { /* printed where they were found */
        fprintf(stderr, "e2e: %d sanitizer report(s) in corral's logs\n", harness_sanitizer_reports());
        failures += (unsigned)harness_sanitizer_reports();
    }
    CU_cleanup_registry();
    curl_global_cleanup();
    return failures > 255 ? 255 : (int)failures;
}
