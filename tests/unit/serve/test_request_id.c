/*
 * test_request_id.c: unit tests for request_id.c: which client ids are kept (token characters, 1..128 bytes) and
 * which are replaced (empty, too long, space, quote, backslash, control bytes, DEL, bytes over 0x7f); the generated
 * form (32 hex digits: prefix, thread, counter) is distinct for distinct threads and counters.
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "corral/serve/request_id.h"

static void test_valid(void)
{
    char long_id[CR_REQUEST_ID_MAX + 2];
    CU_ASSERT(cr_request_id_valid("abc-123", 7));
    CU_ASSERT(cr_request_id_valid("3f2504e0-4f89-11d3-9a0c-0305e82c3301", 36));
    CU_ASSERT(cr_request_id_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55)); /* traceparent */
    CU_ASSERT(cr_request_id_valid("YWJj/ZA+=", 9));
    CU_ASSERT(cr_request_id_valid("a:b@c.d_e~f!#$%&'*^`|", 21));
    memset(long_id, 'a', sizeof(long_id));
    CU_ASSERT(cr_request_id_valid(long_id, CR_REQUEST_ID_MAX));
    CU_ASSERT(!cr_request_id_valid(long_id, CR_REQUEST_ID_MAX + 1));
    CU_ASSERT(!cr_request_id_valid("", 0));
    CU_ASSERT(!cr_request_id_valid("a b", 3));
    CU_ASSERT(!cr_request_id_valid("a\"b", 3));
    CU_ASSERT(!cr_request_id_valid("a\\b", 3));
    CU_ASSERT(!cr_request_id_valid("a\tb", 3));
    CU_ASSERT(!cr_request_id_valid("a\nb", 3));
    CU_ASSERT(!cr_request_id_valid("a\0b", 3));
    CU_ASSERT(!cr_request_id_valid("a\x7f", 2));
    CU_ASSERT(!cr_request_id_valid("\xc3\xa9", 2));
    CU_ASSERT(!cr_request_id_valid("a,b", 3));
    CU_ASSERT(!cr_request_id_valid("<script>", 8));
}

static void test_format(void)
{
    char a[CR_REQUEST_ID_GEN_LEN + 1] = "", b[CR_REQUEST_ID_GEN_LEN + 1] = "", c[CR_REQUEST_ID_GEN_LEN + 1] = "";
    cr_request_id_format(a, 0x0123456789abcdefull, 1, 2);
    CU_ASSERT_STRING_EQUAL(a, "0123456789abcdef0001000000000002");
    CU_ASSERT(cr_request_id_valid(a, CR_REQUEST_ID_GEN_LEN));
    cr_request_id_format(b, 0x0123456789abcdefull, 2, 2);
    cr_request_id_format(c, 0x0123456789abcdefull, 1, 3);
    CU_ASSERT(strcmp(a, b) != 0 && strcmp(a, c) != 0 && strcmp(b, c) != 0);
    cr_request_id_format(a, ~0ull, 0xffff, 0xffffffffffffull);
    CU_ASSERT_STRING_EQUAL(a, "ffffffffffffffffffffffffffffffff");
}

void cr_test_register_request_id(void)
{
    CU_pSuite s = CU_add_suite("request_id", NULL, NULL);
    CU_add_test(s, "client ids kept or replaced", test_valid);
    CU_add_test(s, "the generated form", test_format);
}
