/*
 * reqstats.c: the per-thread blocks of labelled statistics and the per-request record (reqstats.h).
 *
 * Invariants: `self` is the thread's own block, written only by that thread (relaxed loads and stores); `current`
 * points at the record of the request the thread admitted last, until it is taken or ended, so it never dangles
 * (cr_reqstat_end clears it). Locking: `lock` guards the list of blocks (`all`): taken once per thread when its block
 * is made, and by readers while they sum. The fallback block (`discard`) is written by any thread whose calloc
 * failed, with relaxed atomics, and never read.
 */
#include "corral/core/reqstats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const char *const cr_outcome_names[CR_OUTCOME_MAX] = {"pass", "hit", "miss", "stale", "collapsed", "bypass", "l2-hit"};
const char *const cr_code_class_names[CR_CODE_CLASS_MAX] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};
const char *const cr_body_encoding_names[CR_BODY_MAX] = {"identity", "gzip", "br", "other"};
const char *const cr_upstream_error_names[CR_UPSTREAM_ERR_MAX] = {"connect", "timeout", "protocol", "busy"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cr_reqstats_t *all;
static cr_reqstats_t discard;
static __thread cr_reqstats_t *self;
static __thread cr_reqstat_t *current;

#define BUMP(p, n) __atomic_store_n((p), __atomic_load_n((p), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

cr_reqstats_t *cr_reqstats_self(void)
{
    cr_reqstats_t *s = self;
    if (__builtin_expect(s != NULL, 1))
        return s;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return &discard; /* counts are lost for this thread; the next call tries again */
    pthread_mutex_lock(&lock);
    s->next = all;
    all = s;
    pthread_mutex_unlock(&lock);
    return self = s;
}

void cr_reqstat_begin(cr_reqstat_t *rs, const h2o_req_t *req)
{
    rs->req = req;
    rs->slot = CR_ROUTE_SLOT_NONE;
    rs->outcome = CR_OUTCOME_PASS;
    rs->ended = 0;
    current = rs;
}

cr_reqstat_t *cr_reqstat_take(const h2o_req_t *req)
{
    cr_reqstat_t *rs = current;
    if (rs == NULL || rs->req != req)
        return NULL;
    current = NULL;
    return rs;
}

/* The coding of the response body: its Content-Encoding header (set by corral or relayed from the upstream). Looked
 * for from the end, with a pointer compare per header (respond.c adds it last): cheaper than h2o_find_header. */
static unsigned body_encoding(const h2o_req_t *req)
{
    const h2o_header_t *e = req->res.headers.entries;
    size_t i = req->res.headers.size;
    h2o_iovec_t v;
    while (i != 0 && e[i - 1].name != &H2O_TOKEN_CONTENT_ENCODING->buf)
        --i;
    if (i == 0)
        return CR_BODY_IDENTITY;
    v = e[i - 1].value;
    if (h2o_lcstris(v.base, v.len, H2O_STRLIT("gzip")))
        return CR_BODY_GZIP;
    if (h2o_lcstris(v.base, v.len, H2O_STRLIT("br")))
        return CR_BODY_BR;
    if (h2o_lcstris(v.base, v.len, H2O_STRLIT("identity")))
        return CR_BODY_IDENTITY;
    return CR_BODY_OTHER;
}

/* Microseconds from a to b (0 when b is not after a). */
static uint64_t elapsed_us(const struct timeval *a, const struct timeval *b)
{
    int64_t us = ((int64_t)b->tv_sec - (int64_t)a->tv_sec) * 1000000 + ((int64_t)b->tv_usec - (int64_t)a->tv_usec);
    return us > 0 ? (uint64_t)us : 0;
}

void cr_reqstat_end(cr_reqstat_t *rs, h2o_req_t *req)
{
    cr_reqstats_t *s;
    const struct timeval *end;
    unsigned slot, outcome;

    if (current == rs)
        current = NULL;
    if (rs->ended)
        return;
    rs->ended = 1;
    s = cr_reqstats_self();
    slot = rs->slot < CR_ROUTE_SLOTS ? rs->slot : CR_ROUTE_SLOT_OTHER;
    outcome = rs->outcome < CR_OUTCOME_MAX ? rs->outcome : CR_OUTCOME_PASS;
    BUMP(&s->requests[slot][outcome], 1);
    BUMP(&s->codes[slot][cr_code_class(req->res.status)], 1);
    end = &req->timestamps.response_end_at;
    if (end->tv_sec == 0) /* no final send (the client left): now, from h2o's per-loop clock */
        end = h2o_get_timestamp(req->conn->ctx, NULL, NULL);
    cr_hist_observe(&s->latency[outcome], elapsed_us(&req->timestamps.request_begin_at, end));
    BUMP(&s->body_bytes[body_encoding(req)], req->bytes_sent);
}

void cr_reqstats_upstream_head(uint64_t us)
{
    cr_hist_observe(&cr_reqstats_self()->upstream_latency, us);
}

void cr_reqstats_upstream_error(unsigned kind)
{
    if (kind < CR_UPSTREAM_ERR_MAX)
        BUMP(&cr_reqstats_self()->upstream_errors[kind], 1);
}

void cr_reqstats_rate_limited(unsigned slot)
{
    BUMP(&cr_reqstats_self()->rate_limited[slot < CR_ROUTE_SLOTS ? slot : CR_ROUTE_SLOT_OTHER], 1);
}

void cr_reqstats_sum(cr_reqstats_t *out)
{
    const cr_reqstats_t *s;
    size_t i, n = sizeof(*out) / sizeof(uint64_t);

    /* every field is a uint64_t (static-asserted below): sum them as one array */
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&lock);
    for (s = all; s != NULL; s = s->next)
        for (i = 0; i != n - 1; ++i)
            ((uint64_t *)out)[i] += __atomic_load_n(&((const uint64_t *)s)[i], __ATOMIC_RELAXED);
    pthread_mutex_unlock(&lock);
}

_Static_assert(offsetof(cr_reqstats_t, next) == sizeof(cr_reqstats_t) - sizeof(void *) &&
                   sizeof(void *) == sizeof(uint64_t) && sizeof(cr_reqstats_t) % sizeof(uint64_t) == 0,
               "cr_reqstats_t is uint64_t counters followed by the list link");

size_t cr_reqstats_route_totals(cr_route_total_t *out, size_t max)
{
    cr_reqstats_t *sum = malloc(sizeof(*sum));
    unsigned n = cr_route_slots_used(), slot, k;
    size_t count = 0;

    if (sum == NULL)
        return 0;
    cr_reqstats_sum(sum);
    for (slot = 0; slot != CR_ROUTE_SLOTS; ++slot) {
        cr_route_total_t t;
        if (slot >= n && slot != CR_ROUTE_SLOT_OTHER)
            continue;
        memset(&t, 0, sizeof(t));
        t.name = cr_route_slot_name(slot);
        for (k = 0; k != CR_OUTCOME_MAX; ++k)
            t.requests += t.by_outcome[k] = sum->requests[slot][k];
        for (k = 0; k != CR_CODE_CLASS_MAX; ++k)
            t.by_code[k] = sum->codes[slot][k];
        if (t.requests == 0)
            continue;
        if (count < max)
            out[count] = t;
        ++count;
    }
    free(sum);
    return count;
}
