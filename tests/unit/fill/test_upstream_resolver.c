/*
 * test_upstream_resolver.c: CUnit suite for sidecar/fill/upstream_resolver.c (what one resolution round publishes and
 * logs: a change, the first failure of a streak only, the recovery) and core/resolve.c (a name from /etc/hosts).
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "corral/core/resolve.h"
#include "corral/fill/upstream_resolver.h"

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    memset(&ss, 0, sizeof(ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    inet_pton(AF_INET, ip, &sin->sin_addr);
    return ss;
}

static void test_rounds(void)
{
    struct sockaddr_storage a = v4("10.0.0.1", 80), b = v4("10.0.0.2", 80), mine;
    socklen_t len = sizeof(struct sockaddr_in), mylen = 0;
    uint64_t version = 0;

    memset(&mine, 0, sizeof(mine));
    CU_ASSERT_EQUAL(cr_upstream_resolver_apply(0, &a, len, NULL), CR_RESOLVE_CHANGED);
    cr_upstream_resolver_refresh(&mine, &mylen, &version);
    CU_ASSERT(mylen == len && memcmp(&mine, &a, len) == 0);
    CU_ASSERT_NOT_EQUAL(version, 0);
    CU_ASSERT_EQUAL(cr_upstream_resolver_apply(0, &a, len, NULL), CR_RESOLVE_SAME);
    /* failures keep the last good address; only the first of a streak is logged */
    CU_ASSERT_EQUAL(cr_upstream_resolver_apply(-1, NULL, 0, "Name or service not known"), CR_RESOLVE_FAILED);
    CU_ASSERT_EQUAL(cr_upstream_resolver_apply(-1, NULL, 0, "Name or service not known"), CR_RESOLVE_STILL_FAILING);
    memset(&mine, 0, sizeof(mine));
    mylen = 0;
    version = 0;
    cr_upstream_resolver_refresh(&mine, &mylen, &version);
    CU_ASSERT(mylen == len && memcmp(&mine, &a, len) == 0);
    CU_ASSERT_EQUAL(cr_upstream_resolver_apply(0, &b, len, NULL), CR_RESOLVE_RECOVERED);
    cr_upstream_resolver_refresh(&mine, &mylen, &version);
    CU_ASSERT(memcmp(&mine, &b, len) == 0);
    CU_ASSERT_EQUAL(cr_upstream_resolver_apply(0, &a, len, NULL), CR_RESOLVE_CHANGED);
    CU_ASSERT_EQUAL(cr_upstream_resolver_apply(-1, NULL, 0, "x"), CR_RESOLVE_FAILED); /* a new streak is logged again */
}

static void test_resolve_host(void)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const char *why = NULL;
    char buf[64];
    /* localhost is in every /etc/hosts (upper case: not the config's numeric shortcut, a real lookup) */
    CU_ASSERT_EQUAL_FATAL(cr_resolve_host("LOCALHOST", 8080, &ss, &len, &why), 0);
    CU_ASSERT_EQUAL(ss.ss_family, AF_INET); /* IPv4 preferred */
    CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, sizeof(buf)), "127.0.0.1");
    CU_ASSERT_EQUAL(cr_resolve_host("10.1.2.3", 80, &ss, &len, &why), 0); /* numeric works too */
}

void cr_test_register_upstream_resolver(void)
{
    CU_pSuite s = CU_add_suite("upstream_resolver", NULL, NULL);
    CU_add_test(s, "rounds: change, failure kept and logged once, recovery", test_rounds);
    CU_add_test(s, "resolve: a name from /etc/hosts, IPv4 first", test_resolve_host);
}
