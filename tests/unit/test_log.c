/*
 * test_log.c: unit tests for log.c: one call is one line, whatever bytes the message holds (control bytes and
 * invalid UTF-8 escaped as \xNN, valid UTF-8 kept), and a long message is cut without splitting an escape.
 * stderr is redirected to a pipe for each test and restored afterwards.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "corral/log.h"

/* Runs one cr_log_info("%s", msg) with stderr on a pipe; the line written goes to out (NUL-terminated). */
static size_t capture(const char *msg, char *out, size_t outsize)
{
    int p[2], saved = dup(2);
    ssize_t n;
    CU_ASSERT_FATAL(saved >= 0 && pipe(p) == 0);
    dup2(p[1], 2);
    cr_log_info("%s", msg);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    n = read(p[0], out, outsize - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void test_escapes(void)
{
    char out[4096];
    const char *msg;
    size_t n = capture("key a\nb\r\x01\x1b[31m\x7f caf\xc3\xa9 \xff\xc3( \xed\xa0\x80 end", out, sizeof(out));
    CU_ASSERT(n > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[info] "));
    msg = strstr(out, "[info] ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_STRING_EQUAL(msg + 7, "key a\\x0ab\\x0d\\x01\\x1b[31m\\x7f caf\xc3\xa9 \\xff\\xc3( \\xed\\xa0\\x80 end\n");
    CU_ASSERT_PTR_NULL(memchr(out, '\n', n - 1)); /* one line */
}

static void test_long_line(void)
{
    static char msg[3000], out[8192];
    size_t n, i;
    for (i = 0; i != sizeof(msg) - 1; ++i)
        msg[i] = '\n';
    n = capture(msg, out, sizeof(out));
    CU_ASSERT(n > 100 && n <= 2048);
    CU_ASSERT_EQUAL(out[n - 1], '\n');
    CU_ASSERT_PTR_NULL(memchr(out, '\n', n - 1));
    /* cut at an escape boundary: the message part is whole "\x0a" groups */
    CU_ASSERT_EQUAL((n - 1 - (size_t)(strstr(out, "[info] ") + 7 - out)) % 4, 0);
}

void cr_test_register_log(void)
{
    CU_pSuite s = CU_add_suite("log", NULL, NULL);
    CU_add_test(s, "control bytes and invalid UTF-8 escaped, one line", test_escapes);
    CU_add_test(s, "a long message is cut, still one line", test_long_line);
}
