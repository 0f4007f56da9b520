/*
 * test_config_log.c: unit tests for the `log` section (config_log.c): defaults (stdout, info), every level, the
 * access destinations allowed and refused with their positions, unknown keys, and the reload check (log.access is
 * restart-only, log.level is not).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/conf/config.h"

#define LOG_HEAD "listen:\n  - address: 127.0.0.1:8081\nupstream: { url: 'http://127.0.0.1:8080' }\n"

static char err[1024];

static cr_config_t *load_log(const char *section)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), LOG_HEAD "%s", section);
    err[0] = '\0';
    return cr_config_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));
}

static void test_defaults_and_levels(void)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    cr_config_t *cfg = load_log("");
    char section[128];
    int i;

    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_STRING_EQUAL(cfg->log.access, "stdout");
    CU_ASSERT_EQUAL(cfg->log.level, 1);
    cr_config_free(&cfg);
    for (i = 0; i != 4; ++i) {
        snprintf(section, sizeof(section), "log: { level: %s, access: off }\n", names[i]);
        cfg = load_log(section);
        CU_ASSERT_FATAL(cfg != NULL);
        CU_ASSERT_EQUAL(cfg->log.level, i);
        CU_ASSERT_STRING_EQUAL(cfg->log.access, "off");
        cr_config_free(&cfg);
    }
    cfg = load_log("log:\n  access: /var/log/corral/access.log\n");
    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_STRING_EQUAL(cfg->log.access, "/var/log/corral/access.log");
    CU_ASSERT_EQUAL(cfg->log.access_pos.line, 5);
    CU_ASSERT_EQUAL(cfg->log.access_pos.col, 11);
    cr_config_free(&cfg);
}

static void expect_log_error(const char *section, const char *prefix, const char *needle)
{
    cr_config_t *cfg = load_log(section);
    int ok = cfg == NULL && strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n  test_config_log.c: %s: expected \"%s...%s\", got \"%s\"\n", section, prefix, needle, err);
    CU_ASSERT(ok);
    cr_config_free(&cfg);
}

static void test_errors(void)
{
    expect_log_error("log:\n  level: verbose\n", "t.yaml:5:10: ", "one of debug, info, warn, error");
    expect_log_error("log:\n  level: INFO\n", "t.yaml:5:10: ", "one of debug");
    expect_log_error("log:\n  access: relative.log\n", "t.yaml:5:11: ", "stdout, off, or a file path");
    expect_log_error("log:\n  access: \"/a b\"\n", "t.yaml:5:11: ", "without spaces or control characters");
    expect_log_error("log:\n  access: [a]\n", "t.yaml:5:11: ", "");
    expect_log_error("log:\n  format: json\n", "t.yaml:5:3: ", "unknown key \"format\" in log (allowed there: access, level)");
    expect_log_error("log: stdout\n", "t.yaml:4:6: ", "");
}

static void test_reload(void)
{
    cr_config_t *a = load_log("log: { access: /tmp/a.log, level: info }\n"), *b = load_log("log: { access: /tmp/a.log, level: error }\n"),
                *c = load_log("log: { access: /tmp/b.log }\n");
    char msg[256];

    CU_ASSERT_FATAL(a != NULL && b != NULL && c != NULL);
    CU_ASSERT_EQUAL(cr_config_reload_check(a, b, msg, sizeof(msg)), 0); /* log.level may change */
    CU_ASSERT_NOT_EQUAL(cr_config_reload_check(a, c, msg, sizeof(msg)), 0);
    CU_ASSERT(strstr(msg, "log.access") != NULL);
    cr_config_free(&a);
    cr_config_free(&b);
    cr_config_free(&c);
}

void cr_test_register_config_log(void)
{
    CU_pSuite s = CU_add_suite("config_log", NULL, NULL);
    CU_add_test(s, "defaults, levels, destinations", test_defaults_and_levels);
    CU_add_test(s, "bad values at their position", test_errors);
    CU_add_test(s, "reload: log.access needs a restart, log.level does not", test_reload);
}
