/*
 * test_cidr.c: unit tests for cidr.c: parsing client networks and matching IPv4, IPv6 and IPv4-mapped addresses.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "corral/core/cidr.h"

static int in_nets(const char *const *nets, size_t n, const char *addr)
{
    cr_cidr_t parsed[8];
    struct sockaddr_storage ss;
    size_t i;
    memset(&ss, 0, sizeof(ss));
    for (i = 0; i != n; ++i)
        CU_ASSERT_EQUAL_FATAL(cr_cidr_parse(nets[i], parsed + i), 0);
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    return cr_cidr_list_contains(parsed, n, (struct sockaddr *)&ss);
}

static void test_cidr_parse(void)
{
    static const char *const good[] = {"10.0.0.0/8", "127.0.0.1", "0.0.0.0/0", "::1/128", "::/0", "fd00::/8", "192.168.1.128/25"};
    static const char *const bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.1.0.0/8", "::1/129", "10.0.0.0/8x", "10.0.0.0/-1",
                                      "host.example", "10.0.0", "1.2.3.4/ 8", "fd00::1/8"};
    cr_cidr_t c;
    size_t i;
    for (i = 0; i != sizeof(good) / sizeof(good[0]); ++i)
        CU_ASSERT_EQUAL(cr_cidr_parse(good[i], &c), 0);
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        CU_ASSERT_EQUAL(cr_cidr_parse(bad[i], &c), -1);
    CU_ASSERT_EQUAL(cr_cidr_parse("192.168.1.128/25", &c), 0);
    CU_ASSERT_EQUAL(c.family, AF_INET);
    CU_ASSERT_EQUAL(c.bits, 25);
}

static void test_cidr_contains(void)
{
    static const char *const v4[] = {"10.0.0.0/8", "192.168.1.128/25"}, *const v6[] = {"fd00::/8", "::1/128"}, *const all[] = {"0.0.0.0/0"};
    CU_ASSERT_TRUE(in_nets(v4, 2, "10.255.1.2"));
    CU_ASSERT_FALSE(in_nets(v4, 2, "11.0.0.1"));
    CU_ASSERT_TRUE(in_nets(v4, 2, "192.168.1.200"));
    CU_ASSERT_FALSE(in_nets(v4, 2, "192.168.1.127"));
    CU_ASSERT_TRUE(in_nets(v4, 2, "::ffff:10.1.2.3")); /* IPv4-mapped, as a dual-stack listener reports it */
    CU_ASSERT_FALSE(in_nets(v4, 2, "::1"));
    CU_ASSERT_TRUE(in_nets(v6, 2, "fd12:3456::1"));
    CU_ASSERT_TRUE(in_nets(v6, 2, "::1"));
    CU_ASSERT_FALSE(in_nets(v6, 2, "fe80::1"));
    CU_ASSERT_FALSE(in_nets(v6, 2, "10.0.0.1"));
    CU_ASSERT_TRUE(in_nets(all, 1, "203.0.113.9"));
    CU_ASSERT_FALSE(in_nets(all, 1, "2001:db8::1"));
    CU_ASSERT_FALSE(cr_cidr_list_contains(NULL, 0, NULL));
}

void cr_test_register_cidr(void)
{
    CU_pSuite s = CU_add_suite("cidr", NULL, NULL);
    CU_add_test(s, "parse: networks, and what is refused", test_cidr_parse);
    CU_add_test(s, "contains: IPv4, IPv6, IPv4-mapped", test_cidr_contains);
}
