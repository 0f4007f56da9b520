/*
 * guard.c: the rapid-reset budgets, per connection and per client address (see guard.h).
 *
 * Invariants: one connection table per worker thread, touched only by that thread. It is direct-mapped on the
 * connection id; a slot is claimed by a connection's first request (which finds its address once, from h2o's cached
 * peer name) and a collision simply replaces the older entry (a connection may then get a fresh budget, never a
 * smaller one), so memory is fixed and no entry ever needs freeing.
 * The address table is one for the process, shared by every thread, direct-mapped on a seeded hash of the address
 * tag (seeded at random at start, so a client cannot pick addresses that collide with its own slot). Each slot holds
 * the tag and one 64-bit word: the window number (now / 10 s) in the high half, the cancels in that window in the
 * low half. It is written only when a request is cancelled (a compare-and-swap on the word; a slot taken by another
 * tag is replaced, racily but harmlessly: the worst case is a fresh budget), and read by every request's check with
 * relaxed loads. Windows are fixed (a new one every 10 s), so a blocked address is served again when its window
 * ends.
 * The admission handler (cr_guard_register) runs first for every traffic request, on its worker thread: it takes
 * the thread's config generation (cr_thread_config: a relaxed load and a compare unless a new one was published),
 * answers what must not reach the cache handler and returns -1 to let the next handler run for the rest. A rate limiter can
 * sit beside it as another handler.
 */
#include "corral/serve/guard.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#include "corral/core/reqstats.h"
#include "corral/core/runtime.h"
#include "corral/core/accesslog.h"
#include "corral/serve/request_id.h"
#include "corral/conf/config.h"
#include "corral/conf/generation.h"
#include "corral/http/http.h"
#include "corral/http/reqcheck.h"

#define GUARD_SLOTS 4096       /* per thread, power of two */
#define GUARD_ADDR_SLOTS 16384 /* per process, power of two: 256 KiB */

typedef struct st_cr_guard_slot_t {
    uint64_t conn_id; /* 0: empty (h2o's connection ids start at 1) */
    uint64_t window_start;
    uint64_t addr_tag;
    uint32_t cancels;
    uint32_t has_addr;
} cr_guard_slot_t;

typedef struct st_cr_guard_addr_slot_t {
    uint64_t tag;  /* atomic */
    uint64_t word; /* atomic: window << 32 | cancels; 0 when empty (window numbers are never 0) */
} cr_guard_addr_slot_t;

struct st_cr_guard_t {
    uint32_t per_connection;
    uint32_t per_address;
    cr_guard_slot_t slots[GUARD_SLOTS];
};

static cr_guard_addr_slot_t addr_slots[GUARD_ADDR_SLOTS];
static uint64_t addr_seed;
static pthread_once_t addr_seed_once = PTHREAD_ONCE_INIT;

static void init_addr_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)(uintptr_t)&seed ^ cr_now_ms();
    addr_seed = seed | 1;
}

static uint32_t clamp_budget(uint64_t v, uint32_t dflt)
{
    if (v == 0)
        return dflt;
    return v > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)v;
}

cr_guard_t *cr_guard_new_with(const cr_config_t *cfg)
{
    cr_guard_t *g = calloc(1, sizeof(cr_guard_t));
    if (g == NULL)
        return NULL;
    pthread_once(&addr_seed_once, init_addr_seed);
    g->per_connection = clamp_budget(cfg != NULL ? cfg->limits.cancels_per_connection : 0, 200);
    g->per_address = clamp_budget(cfg != NULL ? cfg->limits.cancels_per_address : 0, 1000);
    return g;
}

int cr_guard_addr_tag(const struct sockaddr *sa, uint64_t *tag)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const unsigned char *b;
    uint64_t t = 0;
    size_t i;

    switch (sa->sa_family) {
    case AF_INET:
        b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        break;
    case AF_INET6:
        b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
            b += 12;
            break;
        }
        for (i = 0; i != 8; ++i) /* the /64 */
            t = t << 8 | b[i];
        *tag = t;
        return 1;
    default:
        return 0;
    }
    /* IPv4: in ffff:ffff::/32, which no IPv6 source /64 can be (multicast) */
    *tag = 0xffffffff00000000ull | (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
    return 1;
}

static cr_guard_slot_t *slot_of(cr_guard_t *g, uint64_t conn_id)
{
    return &g->slots[(conn_id * 0x9E3779B97F4A7C15ull >> 40) & (GUARD_SLOTS - 1)];
}

static cr_guard_addr_slot_t *addr_slot_of(uint64_t tag)
{
    uint64_t h = (tag ^ addr_seed) * 0x9E3779B97F4A7C15ull;
    return &addr_slots[(h ^ h >> 29) >> 20 & (GUARD_ADDR_SLOTS - 1)];
}

static uint64_t window_of(uint64_t now)
{
    return now / CR_GUARD_WINDOW_MS + 1; /* never 0 */
}

/* Takes the slot for a connection's first request (or back from a colliding one): a fresh budget, its address. */
static void claim(cr_guard_slot_t *s, h2o_conn_t *conn, uint64_t now)
{
    struct sockaddr_storage ss;
    socklen_t len = conn->callbacks->get_peername != NULL ? conn->callbacks->get_peername(conn, (void *)&ss) : 0;
    s->conn_id = conn->id;
    s->window_start = now;
    s->cancels = 0;
    s->has_addr = len != 0 && cr_guard_addr_tag((void *)&ss, &s->addr_tag);
}

int cr_guard_check(cr_guard_t *g, h2o_conn_t *conn, uint64_t now, cr_guard_ticket_t *ticket)
{
    cr_guard_slot_t *s = slot_of(g, conn->id);

    if (s->conn_id != conn->id)
        claim(s, conn, now);
    ticket->conn_id = conn->id;
    ticket->addr_tag = s->addr_tag;
    ticket->has_addr = (int)s->has_addr;
    if (now - s->window_start >= CR_GUARD_WINDOW_MS) {
        s->window_start = now;
        s->cancels = 0;
    } else if (s->cancels >= g->per_connection) {
        return 1;
    }
    if (s->has_addr) {
        cr_guard_addr_slot_t *a = addr_slot_of(s->addr_tag);
        uint64_t word = __atomic_load_n(&a->word, __ATOMIC_RELAXED);
        if ((uint32_t)word >= g->per_address && word >> 32 == window_of(now) &&
            __atomic_load_n(&a->tag, __ATOMIC_RELAXED) == s->addr_tag)
            return 1;
    }
    return 0;
}

static void note_address_cancel(uint64_t tag, uint64_t now)
{
    cr_guard_addr_slot_t *a = addr_slot_of(tag);
    uint64_t win = window_of(now), word, next;

    if (__atomic_load_n(&a->tag, __ATOMIC_RELAXED) != tag) {
        /* another address had it: this one's count starts here */
        __atomic_store_n(&a->tag, tag, __ATOMIC_RELAXED);
        __atomic_store_n(&a->word, win << 32 | 1, __ATOMIC_RELAXED);
        return;
    }
    word = __atomic_load_n(&a->word, __ATOMIC_RELAXED);
    do {
        if (word >> 32 != win)
            next = win << 32 | 1;
        else if ((uint32_t)word == UINT32_MAX)
            return;
        else
            next = word + 1;
    } while (!__atomic_compare_exchange_n(&a->word, &word, next, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

void cr_guard_note_cancel(cr_guard_t *g, const cr_guard_ticket_t *ticket, uint64_t now)
{
    cr_guard_slot_t *s = slot_of(g, ticket->conn_id);

    if (s->conn_id != ticket->conn_id || now - s->window_start >= CR_GUARD_WINDOW_MS) {
        s->conn_id = ticket->conn_id;
        s->window_start = now;
        s->cancels = 0;
        s->addr_tag = ticket->addr_tag;
        s->has_addr = (uint32_t)ticket->has_addr;
    }
    if (s->cancels != UINT32_MAX)
        ++s->cancels;
    if (ticket->has_addr)
        note_address_cancel(ticket->addr_tag, now);
}

/* ------------------------------------------------------------------------------------------------------------------------ */
/* the admission handler */

typedef struct st_cr_req_tracker_t {
    cr_thread_t *thread;
    h2o_req_t *req;
    cr_guard_ticket_t guard;
    cr_reqstat_t stat; /* the request's metrics labels, set by the cache handler, counted at dispose */
} cr_req_tracker_t;

/* Runs when the request is disposed: ends its in-flight count, and notes a cancellation (the client went away
 * before any response began: an HTTP/2 RST_STREAM or a closed connection) for the rapid-reset guard. */
static void on_request_dispose(void *p)
{
    cr_req_tracker_t *tr = p;
    --tr->thread->inflight;
    cr_reqstat_end(&tr->stat, tr->req);
    if (tr->req->res.status == 0)
        cr_guard_note_cancel(tr->thread->guard, &tr->guard, h2o_now(tr->thread->ctx.loop));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    cr_thread_t *t = cr_thread_of(req);
    const cr_config_t *cfg = cr_thread_config(t); /* swapped here first when a new generation was published */
    cr_req_tracker_t *tracker;
    cr_guard_ticket_t guard;
    h2o_iovec_t id;
    int add_id = 0;

    CR_STAT_INC(t->stats, requests);
    cr_accesslog_begin(req); /* the clock: every answer below gets its access-log line */
    if (cr_reqcheck_size(req, cfg->limits.request_headers) != CR_OK) /* first: nothing of an oversized head is read */
        return 0;
    id = cr_request_id_take(req, t->idx, &add_id); /* after the size check: it may change a header */
    cr_accesslog_note_id(req, id);
    if (cr_guard_check(t->guard, req->conn, h2o_now(t->ctx.loop), &guard)) {
        CR_STAT_INC(t->stats, guard_rejections);
        cr_send_json_error(req, 429, "Too Many Requests", "too_many_cancellations",
                           "this connection or client address cancelled too many requests; try again later");
        return 0;
    }
    if (cr_reqcheck(req) != CR_OK) /* a head unsafe to forward or key on: answered 400 */
        return 0;
    if (add_id) /* forwarded with every upstream request made for this one */
        cr_request_id_add(req, id);
    ++t->inflight;
    tracker = h2o_mem_alloc_shared(&req->pool, sizeof(*tracker), on_request_dispose);
    tracker->thread = t;
    tracker->req = req;
    tracker->guard = guard;
    cr_reqstat_begin(&tracker->stat, req);
    cr_accesslog_note_stat(req, &tracker->stat); /* the access log's cache word is the metrics' outcome */
    return -1; /* admitted: the next handler answers */
}

void cr_guard_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
}
