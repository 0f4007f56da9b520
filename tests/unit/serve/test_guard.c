/*
 * test_guard.c: unit tests for sidecar/serve/guard.c with fake connections and a fake clock: the per-connection budget,
 * the per-address budget summed over connections (and threads: the address table is the process's), IPv6 grouped
 * by /64 and IPv4-mapped IPv6 taken as IPv4, windows that end, and the budgets taken from the configuration.
 * The address table is process-wide, so each test uses its own addresses and its own stretch of fake time.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "corral/serve/guard.h"
#include "corral/core/runtime.h"
#include "corral/conf/config.h"

void cr_test_register_guard(void);

typedef struct st_fake_conn_t {
    h2o_conn_t super;
    struct sockaddr_storage addr;
    socklen_t addrlen;
} fake_conn_t;

static socklen_t fake_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    fake_conn_t *c = (fake_conn_t *)conn;
    memcpy(sa, &c->addr, c->addrlen);
    return c->addrlen;
}

static const h2o_conn_callbacks_t fake_callbacks = {.get_peername = fake_peername};
static uint64_t next_conn_id = 1000;

static void fake_conn(fake_conn_t *c, const char *ip)
{
    memset(c, 0, sizeof(*c));
    c->super.id = next_conn_id++;
    c->super.callbacks = &fake_callbacks;
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *sin6 = (void *)&c->addr;
        sin6->sin6_family = AF_INET6;
        CU_ASSERT_FATAL(inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1);
        c->addrlen = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (void *)&c->addr;
        sin->sin_family = AF_INET;
        CU_ASSERT_FATAL(inet_pton(AF_INET, ip, &sin->sin_addr) == 1);
        c->addrlen = sizeof(*sin);
    }
}

/* A request on c at now, cancelled. Returns what the check said (1: blocked, nothing to cancel). */
static int cancel_one(cr_guard_t *g, fake_conn_t *c, uint64_t now)
{
    cr_guard_ticket_t t;
    if (cr_guard_check(g, &c->super, now, &t))
        return 1;
    cr_guard_note_cancel(g, &t, now);
    return 0;
}

static cr_config_t test_cfg;

static cr_guard_t *guard_with(uint64_t per_conn, uint64_t per_addr)
{
    test_cfg.limits.cancels_per_connection = per_conn;
    test_cfg.limits.cancels_per_address = per_addr;
    cr_guard_t *g = cr_guard_new_with(&test_cfg);
    CU_ASSERT_FATAL(g != NULL);
    return g;
}

static void test_per_connection_budget(void)
{
    cr_guard_t *g = guard_with(5, 1000);
    fake_conn_t a, b;
    cr_guard_ticket_t t;
    uint64_t now = 1000000000000ull;
    int i;

    fake_conn(&a, "10.1.0.1");
    fake_conn(&b, "10.1.0.1");
    for (i = 0; i != 5; ++i)
        CU_ASSERT_EQUAL(cancel_one(g, &a, now + i), 0);
    CU_ASSERT_EQUAL(cr_guard_check(g, &a.super, now + 10, &t), 1);
    CU_ASSERT_EQUAL(cr_guard_check(g, &b.super, now + 10, &t), 0); /* another connection of the address */
    /* the window ends */
    CU_ASSERT_EQUAL(cr_guard_check(g, &a.super, now + CR_GUARD_WINDOW_MS, &t), 0);
    free(g);
}

static void test_per_address_budget_over_connections_and_threads(void)
{
    cr_guard_t *g1 = guard_with(100, 50), *g2 = guard_with(100, 50);
    fake_conn_t conns[10], other;
    cr_guard_ticket_t t;
    uint64_t now = 2000000000000ull; /* a window boundary: now / 10000 is whole */
    int i, j, blocked = 0;

    for (i = 0; i != 10; ++i)
        fake_conn(&conns[i], "10.2.0.7");
    fake_conn(&other, "10.2.0.8");
    /* ten connections on two threads, 5 cancels each: none over its own budget, the address at 50 */
    for (i = 0; i != 10; ++i)
        for (j = 0; j != 5; ++j)
            CU_ASSERT_EQUAL(cancel_one(i % 2 ? g1 : g2, &conns[i], now + (uint64_t)(i * 5 + j)), 0);
    for (i = 0; i != 10; ++i)
        blocked += cr_guard_check(i % 2 ? g1 : g2, &conns[i].super, now + 100, &t);
    CU_ASSERT_EQUAL(blocked, 10);
    /* a new connection from that address too; another address is not */
    fake_conn(&conns[0], "10.2.0.7");
    CU_ASSERT_EQUAL(cr_guard_check(g1, &conns[0].super, now + 100, &t), 1);
    CU_ASSERT_EQUAL(cr_guard_check(g1, &other.super, now + 100, &t), 0);
    /* the next window serves it again */
    CU_ASSERT_EQUAL(cr_guard_check(g2, &conns[1].super, now + CR_GUARD_WINDOW_MS, &t), 0);
    free(g1);
    free(g2);
}

static void test_ipv6_by_64(void)
{
    cr_guard_t *g = guard_with(100, 10);
    fake_conn_t a, b, c;
    cr_guard_ticket_t t;
    uint64_t now = 3000000000000ull;
    int i;

    fake_conn(&a, "2001:db8:1:2::1");
    fake_conn(&b, "2001:db8:1:2:ffff:eeee:dddd:cccc"); /* same /64 */
    fake_conn(&c, "2001:db8:1:3::1");                  /* next /64 */
    for (i = 0; i != 5; ++i) {
        CU_ASSERT_EQUAL(cancel_one(g, &a, now + i), 0);
        CU_ASSERT_EQUAL(cancel_one(g, &b, now + i), 0);
    }
    CU_ASSERT_EQUAL(cr_guard_check(g, &a.super, now + 20, &t), 1);
    CU_ASSERT_EQUAL(cr_guard_check(g, &b.super, now + 20, &t), 1);
    CU_ASSERT_EQUAL(cr_guard_check(g, &c.super, now + 20, &t), 0);
    free(g);
}

static void test_address_tags(void)
{
    fake_conn_t v4, mapped, v6a, v6b;
    uint64_t t4, tm, t6a, t6b;

    fake_conn(&v4, "192.0.2.9");
    fake_conn(&mapped, "::ffff:192.0.2.9");
    fake_conn(&v6a, "2001:db8::1");
    fake_conn(&v6b, "2001:db8::2");
    CU_ASSERT_EQUAL(cr_guard_addr_tag((void *)&v4.addr, &t4), 1);
    CU_ASSERT_EQUAL(cr_guard_addr_tag((void *)&mapped.addr, &tm), 1);
    CU_ASSERT_EQUAL(cr_guard_addr_tag((void *)&v6a.addr, &t6a), 1);
    CU_ASSERT_EQUAL(cr_guard_addr_tag((void *)&v6b.addr, &t6b), 1);
    CU_ASSERT_EQUAL(t4, tm);
    CU_ASSERT_EQUAL(t6a, t6b);
    CU_ASSERT_NOT_EQUAL(t4, t6a);
    v4.addr.ss_family = AF_UNIX;
    CU_ASSERT_EQUAL(cr_guard_addr_tag((void *)&v4.addr, &t4), 0);
}

static void test_defaults_without_config(void)
{
    cr_guard_t *g = cr_guard_new_with(NULL); /* no config: 200 per connection */
    fake_conn_t a;
    cr_guard_ticket_t t;
    uint64_t now = 4000000000000ull;
    int i;

    CU_ASSERT_FATAL(g != NULL);
    fake_conn(&a, "10.4.0.1");
    for (i = 0; i != 200; ++i)
        CU_ASSERT_EQUAL(cancel_one(g, &a, now), 0);
    CU_ASSERT_EQUAL(cr_guard_check(g, &a.super, now, &t), 1);
    free(g);
}

void cr_test_register_guard(void)
{
    CU_pSuite s = CU_add_suite("guard", NULL, NULL);
    CU_add_test(s, "per-connection budget", test_per_connection_budget);
    CU_add_test(s, "per-address budget summed over connections and threads", test_per_address_budget_over_connections_and_threads);
    CU_add_test(s, "IPv6 counted by /64", test_ipv6_by_64);
    CU_add_test(s, "address tags: IPv4, mapped IPv4, IPv6 /64, other families", test_address_tags);
    CU_add_test(s, "default budgets without a configuration", test_defaults_without_config);
}
