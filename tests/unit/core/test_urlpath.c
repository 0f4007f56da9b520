/*
 * test_urlpath.c: unit tests for sidecar/core/urlpath.c (the match form of paths that routes are matched on). These
 * cases were the "match form of paths" test of test_key.c before the code moved out of http/key.c.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/core/common.h"
#include "corral/core/urlpath.h"

static void check_match(const char *in, const char *expect, int expect_ambiguous, int line)
{
    char buf[256];
    int amb = -1, n = cr_urlpath_match_form(cr_str(in, strlen(in)), buf, sizeof(buf), &amb);
    int ok = expect == NULL ? n == -1 : (n >= 0 && strcmp(buf, expect) == 0 && amb == expect_ambiguous);
    if (!ok)
        fprintf(stderr, "\n  test_urlpath.c:%d: \"%s\": expected \"%s\" (%d), got \"%s\" (%d)\n", line, in, expect ? expect : "(-1)",
                expect_ambiguous, n >= 0 ? buf : "(-1)", amb);
    CU_ASSERT(ok);
}
#define EXPECT_MATCH(in, expect, amb) check_match((in), (expect), (amb), __LINE__)

static void test_match_path(void)
{
    EXPECT_MATCH("/private", "/private", 0);
    EXPECT_MATCH("//private", "/private", 0);
    EXPECT_MATCH("/private/", "/private", 0);
    EXPECT_MATCH("/private//", "/private", 0);
    EXPECT_MATCH("/private;x", "/private", 0);
    EXPECT_MATCH("/private;x/", "/private", 0);
    EXPECT_MATCH("/private;x=1/a;y", "/private/a", 0);
    EXPECT_MATCH("/private%3Bx", "/private", 0);
    EXPECT_MATCH("/private%2F", "/private", 0);
    EXPECT_MATCH("/private%2f", "/private", 0);
    EXPECT_MATCH("/a%2Fb", "/a/b", 0);
    EXPECT_MATCH("/%70rivate", "/private", 0);
    EXPECT_MATCH("/private/.", "/private", 0);
    EXPECT_MATCH("/./private", "/private", 0);
    EXPECT_MATCH("/private/.;x", "/private", 0);
    EXPECT_MATCH("/PRIVATE", "/PRIVATE", 0); /* case is kept */
    EXPECT_MATCH("/a%20b%e9", "/a%20b%E9", 0);
    EXPECT_MATCH("/private?x=1", "/private", 0);
    EXPECT_MATCH("/", "/", 0);
    EXPECT_MATCH("//", "/", 0);
    EXPECT_MATCH("/;x", "/", 0);
    /* ambiguous: "..", backslashes, invalid or double escapes, encoded control bytes */
    EXPECT_MATCH("/public/..;/private", "/private", 1);
    EXPECT_MATCH("/a/../private", "/private", 1);
    EXPECT_MATCH("/a%2F..%2Fprivate", "/private", 1);
    EXPECT_MATCH("/a/%2E%2E/private", "/private", 1);
    EXPECT_MATCH("/../private", "/private", 1);
    EXPECT_MATCH("/private\\x", "/private/x", 1);
    EXPECT_MATCH("/private%5Cx", "/private/x", 1);
    EXPECT_MATCH("/%2570rivate", "/%2570rivate", 1);
    EXPECT_MATCH("/private%zz", "/private%zz", 1);
    EXPECT_MATCH("/private/%252%42", "/private/%252B", 1); /* decoding made "%25" + 2 hex (found by fuzz_key) */
    EXPECT_MATCH("/private%2", "/private%2", 1);
    EXPECT_MATCH("/private%00", "/private%00", 1);
    EXPECT_MATCH("/a%C0%AFprivate", "/a%C0%AFprivate", 1); /* overlong UTF-8 '/' */
    EXPECT_MATCH("/a\xc0\xafprivate", "/a\xc0\xafprivate", 1);
    EXPECT_MATCH("/caf%C3%A9", "/caf%C3%A9", 0);
    EXPECT_MATCH("/private#x", "/private#x", 1);
    EXPECT_MATCH("/private%23x", "/private%23x", 0); /* an escaped '#' is part of the name */
    EXPECT_MATCH("/100%25", "/100%25", 0); /* "%25" not followed by an escape is plain '%' */
    /* malformed */
    EXPECT_MATCH("", NULL, 0);
    EXPECT_MATCH("private", NULL, 0);
    EXPECT_MATCH("/a b", NULL, 0);
    EXPECT_MATCH("/a\nb", NULL, 0);
    {
        char buf[5];
        CU_ASSERT_EQUAL(cr_urlpath_match_form(CR_STR("/abc"), buf, sizeof(buf), NULL), 4);
        CU_ASSERT_EQUAL(cr_urlpath_match_form(CR_STR("/abc"), buf, sizeof(buf) - 1, NULL), -1);
    }
}

void cr_test_register_urlpath(void)
{
    CU_pSuite s = CU_add_suite("urlpath", NULL, NULL);
    CU_add_test(s, "match form of paths", test_match_path);
}
