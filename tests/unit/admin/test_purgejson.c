/*
 * test_purge.c: unit tests for sidecar/admin/purgejson.c: admin purge bodies (valid forms, every validation error with the
 * field it names, syntax errors with line and column, the entry limit, all-or-nothing results) and the JSON answers.
 * Leaks are caught by running under LSan (make SANITIZE=address,undefined unit).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/admin/purgejson.h"

void cr_test_register_purge(void);

static char err[512];

static int parse(const char *body, cr_purge_request_t *req)
{
    err[0] = 'x';
    err[1] = '\0';
    return cr_purge_parse(body, strlen(body), req, err, sizeof(err));
}

/* Asserts that `body` is refused with CR_DECLINED, an untouched (zeroed) request and a message containing needle. */
static void check_bad(const char *body, const char *needle, int srcline)
{
    cr_purge_request_t req;
    int r = parse(body, &req);
    int ok = r == CR_DECLINED && strstr(err, needle) != NULL && req.keys == NULL && req.prefixes == NULL && req.tags == NULL &&
             req.num_keys == 0 && req.num_prefixes == 0 && req.num_tags == 0 && req.soft == 0;
    size_t i;
    for (i = 0; err[i] != '\0'; ++i) /* one line, no control byte (fuzz_purge found jansson's raw "near" text) */
        ok = ok && (unsigned char)err[i] >= 0x20 && err[i] != 0x7f;
    if (!ok)
        fprintf(stderr, "\n  test_purge.c:%d: %s: expected \"%s\", got %d \"%s\"\n", srcline, body, needle, r, err);
    CU_ASSERT(ok);
    cr_purge_request_free(&req);
}
#define EXPECT_BAD(body, needle) check_bad((body), (needle), __LINE__)

static void test_purge_valid(void)
{
    cr_purge_request_t req;

    CU_ASSERT_EQUAL_FATAL(parse("{\"keys\": [\"/v1/users/42\"], \"prefixes\": [\"/v1/users/\"], "
                                "\"tags\": [\"user-42\"], \"soft\": false}",
                                &req),
                          CR_OK);
    CU_ASSERT_EQUAL(err[0], '\0');
    CU_ASSERT_EQUAL(req.num_keys, 1);
    CU_ASSERT_STRING_EQUAL(req.keys[0], "/v1/users/42");
    CU_ASSERT_EQUAL(req.num_prefixes, 1);
    CU_ASSERT_STRING_EQUAL(req.prefixes[0], "/v1/users/");
    CU_ASSERT_EQUAL(req.num_tags, 1);
    CU_ASSERT_STRING_EQUAL(req.tags[0], "user-42");
    CU_ASSERT_EQUAL(req.soft, 0);
    cr_purge_request_free(&req);
    CU_ASSERT_PTR_NULL(req.keys);
    CU_ASSERT_EQUAL(req.num_keys, 0);
    cr_purge_request_free(&req); /* a zeroed request is fine */
    cr_purge_request_free(NULL);

    /* fields are optional; one non-empty list is enough; escapes and UTF-8 come through */
    CU_ASSERT_EQUAL_FATAL(parse("  {\"tags\": [\"a\", \"b\\u00e9\", \"a\"], \"soft\": true, \"keys\": []}\n", &req), CR_OK);
    CU_ASSERT_EQUAL(req.num_tags, 3);
    CU_ASSERT_STRING_EQUAL(req.tags[1], "b\xc3\xa9");
    CU_ASSERT_EQUAL(req.num_keys, 0);
    CU_ASSERT_PTR_NULL(req.keys);
    CU_ASSERT_EQUAL(req.soft, 1);
    cr_purge_request_free(&req);

    CU_ASSERT_EQUAL_FATAL(parse("{\"prefixes\":[\"/\"]}", &req), CR_OK);
    CU_ASSERT_EQUAL(req.num_prefixes, 1);
    CU_ASSERT_STRING_EQUAL(req.prefixes[0], "/");
    cr_purge_request_free(&req);

    /* the length is honoured: the tail is not read */
    {
        const char body[] = "{\"keys\":[\"/a\"]}garbage";
        CU_ASSERT_EQUAL_FATAL(cr_purge_parse(body, 15, &req, err, sizeof(err)), CR_OK);
        CU_ASSERT_STRING_EQUAL(req.keys[0], "/a");
        cr_purge_request_free(&req);
        CU_ASSERT_EQUAL(cr_purge_parse(body, sizeof(body) - 1, &req, err, sizeof(err)), CR_DECLINED);
        /* no error buffer */
        CU_ASSERT_EQUAL(cr_purge_parse(body, sizeof(body) - 1, &req, NULL, 0), CR_DECLINED);
    }
}

static void test_purge_invalid(void)
{
    /* syntax, with jansson's line and column */
    EXPECT_BAD("", "invalid JSON at line 1, column 0");
    EXPECT_BAD("{\"keys\": [\"/a\"", "invalid JSON at line 1");
    EXPECT_BAD("{\n  \"keys\": [\"/a\",]\n}", "invalid JSON at line 2, column");
    EXPECT_BAD("{\"keys\": [\"/a\"]} {}", "invalid JSON");
    EXPECT_BAD("{\"\\\nu]}", "invalid escape near"); /* jansson quotes the bytes near the error, LF included */
    EXPECT_BAD("{\"keys\": [\"/a\"], \"keys\": [\"/b\"]}", "duplicate");
    EXPECT_BAD("{\"keys\": [\"a\\u0000b\"]}", "invalid JSON");
    EXPECT_BAD("{\"keys\": [\"\xff\"]}", "invalid JSON");
    /* shape */
    EXPECT_BAD("[\"/a\"]", "the body must be a JSON object");
    EXPECT_BAD("{}", "nothing to purge");
    EXPECT_BAD("{\"keys\": [], \"tags\": [], \"soft\": true}", "nothing to purge");
    EXPECT_BAD("{\"soft\": true}", "nothing to purge");
    /* unknown fields, named (control bytes masked, long names cut) */
    EXPECT_BAD("{\"keys\": [\"/a\"], \"key\": [\"/b\"]}", "unknown field \"key\"");
    EXPECT_BAD("{\"Keys\": [\"/a\"]}", "unknown field \"Keys\"");
    EXPECT_BAD("{\"a\\nb\": 1}", "unknown field \"a?b\"");
    EXPECT_BAD("{\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\": 1}",
               "unknown field \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\"");
    /* wrong types */
    EXPECT_BAD("{\"keys\": \"/a\"}", "keys: must be an array of strings");
    EXPECT_BAD("{\"prefixes\": {\"a\": 1}}", "prefixes: must be an array of strings");
    EXPECT_BAD("{\"tags\": null}", "tags: must be an array of strings");
    EXPECT_BAD("{\"keys\": [\"/a\", 42]}", "keys[1]: must be a string");
    EXPECT_BAD("{\"prefixes\": [[\"/a\"]]}", "prefixes[0]: must be a string");
    EXPECT_BAD("{\"tags\": [\"a\", null]}", "tags[1]: must be a string");
    EXPECT_BAD("{\"keys\": [\"/a\"], \"soft\": 1}", "soft: must be true or false");
    EXPECT_BAD("{\"keys\": [\"/a\"], \"soft\": \"true\"}", "soft: must be true or false");
    EXPECT_BAD("{\"keys\": [\"/a\"], \"soft\": null}", "soft: must be true or false");
    /* bad members */
    EXPECT_BAD("{\"keys\": [\"\"]}", "keys[0]: must not be empty");
    EXPECT_BAD("{\"keys\": [\"/a\"], \"prefixes\": [\"/b\", \"\"]}", "prefixes[1]: must not be empty");
    EXPECT_BAD("{\"keys\": [\"/a\\nb\"]}", "keys[0]: must not contain control characters");
    EXPECT_BAD("{\"tags\": [\"ok\", \"a b\"]}", "tags[1]: must not contain spaces or commas");
    EXPECT_BAD("{\"tags\": [\"a,b\"]}", "tags[0]: must not contain spaces or commas");
    EXPECT_BAD("{\"tags\": [\"a\\tb\"]}", "tags[0]: must not contain control characters");
    /* a valid list does not rescue an invalid one: nothing is returned */
    EXPECT_BAD("{\"keys\": [\"/a\", \"/b\"], \"tags\": [1]}", "tags[0]: must be a string");
}

/* Builds {"keys": [...nk...], "tags": [...nt...]} */
static char *make_body(size_t nk, size_t nt)
{
    size_t cap = 64 + (nk + nt) * 16, len = 0, i;
    char *b = malloc(cap);

    CU_ASSERT_FATAL(b != NULL);
    len += (size_t)snprintf(b + len, cap - len, "{\"keys\": [");
    for (i = 0; i != nk; ++i)
        len += (size_t)snprintf(b + len, cap - len, "%s\"/k/%zu\"", i == 0 ? "" : ",", i);
    len += (size_t)snprintf(b + len, cap - len, "], \"tags\": [");
    for (i = 0; i != nt; ++i)
        len += (size_t)snprintf(b + len, cap - len, "%s\"t%zu\"", i == 0 ? "" : ",", i);
    snprintf(b + len, cap - len, "]}");
    return b;
}

static void test_purge_limit(void)
{
    cr_purge_request_t req;
    char *body = make_body(6000, 4000);

    CU_ASSERT_EQUAL_FATAL(parse(body, &req), CR_OK);
    CU_ASSERT_EQUAL(req.num_keys, 6000);
    CU_ASSERT_EQUAL(req.num_tags, 4000);
    CU_ASSERT_STRING_EQUAL(req.keys[5999], "/k/5999");
    CU_ASSERT_STRING_EQUAL(req.tags[3999], "t3999");
    cr_purge_request_free(&req);
    free(body);

    body = make_body(6000, 4001);
    EXPECT_BAD(body, "tags: too many entries (at most 10000");
    free(body);
    body = make_body(10001, 0);
    EXPECT_BAD(body, "keys: too many entries");
    free(body);
}

static void test_purge_answers(void)
{
    cr_purge_counts_t c = {1, 2, 3, 12345};
    char buf[256], small[8];
    const char *want = "{\"purged\": {\"keys\": 1, \"prefixes\": 2, \"tags\": 3, \"objects\": 12345}, \"soft\": false}";
    int n;

    n = cr_purge_result_json(&c, 0, buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, (int)strlen(want));
    CU_ASSERT_STRING_EQUAL(buf, want);
    n = cr_purge_result_json(&c, 1, buf, sizeof(buf));
    CU_ASSERT(n > 0 && strstr(buf, "\"soft\": true}") != NULL);
    CU_ASSERT_EQUAL(cr_purge_result_json(&c, 0, buf, strlen(want)), -1);
    CU_ASSERT_EQUAL(cr_purge_result_json(&c, 0, buf, strlen(want) + 1), (int)strlen(want));
    CU_ASSERT_EQUAL(cr_purge_result_json(&c, 0, NULL, 0), -1);

    n = cr_purge_error_json("unknown field \"a\\b\" \xc3\xa9", buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "{\"error\": \"unknown field \\\"a\\\\b\\\" \\u00E9\"}");
    CU_ASSERT_EQUAL(n, (int)strlen(buf));
    /* invalid UTF-8 is masked rather than dropped */
    CU_ASSERT(cr_purge_error_json("bad \xff byte", buf, sizeof(buf)) > 0);
    CU_ASSERT_STRING_EQUAL(buf, "{\"error\": \"bad ? byte\"}");
    CU_ASSERT_EQUAL(cr_purge_error_json("a long message", small, sizeof(small)), -1);

    /* a parse error message round-trips into a JSON answer */
    {
        cr_purge_request_t req;
        CU_ASSERT_EQUAL(parse("{\"k\\u00E9y\": 1}", &req), CR_DECLINED);
        CU_ASSERT(cr_purge_error_json(err, buf, sizeof(buf)) > 0);
        CU_ASSERT_STRING_EQUAL(buf, "{\"error\": \"unknown field \\\"k\\u00E9y\\\" (allowed: keys, prefixes, tags, soft)\"}");
    }
}

void cr_test_register_purge(void)
{
    CU_pSuite suite = CU_add_suite("purge", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "valid bodies", test_purge_valid);
    CU_add_test(suite, "invalid bodies name the field", test_purge_invalid);
    CU_add_test(suite, "entry limit", test_purge_limit);
    CU_add_test(suite, "JSON answers", test_purge_answers);
}
