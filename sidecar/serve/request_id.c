/*
 * request_id.c: X-Request-Id, kept when valid or generated (request_id.h).
 *
 * Invariants: the process prefix is drawn once (pthread_once, getrandom; a clock-and-address mix when getrandom
 * fails); each thread formats its first 20 digits (prefix and thread index: a thread's index never changes) once;
 * the counter is thread-local, so ids need no lock and are unique per (thread, counter). The header is
 * changed in place (one value) or, when the request had none, added by cr_request_id_add; a request never leaves
 * with two X-Request-Id lines.
 */
#include "corral/serve/request_id.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static uint64_t prefix;
static pthread_once_t prefix_once = PTHREAD_ONCE_INIT;
static __thread uint64_t counter;
static __thread char thread_prefix[20]; /* the prefix and thread digits of this thread's ids, made at its first */
static __thread int thread_prefix_set;

static void init_prefix(void)
{
    uint64_t p = 0;
    if (getrandom(&p, sizeof(p), 0) != (ssize_t)sizeof(p)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        p = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)&p * 0x9e3779b97f4a7c15ull;
    }
    prefix = p;
}

int cr_request_id_valid(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > CR_REQUEST_ID_MAX)
        return 0;
    for (i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
        case '^': case '_': case '`': case '|': case '~': case '/': case '=': case ':': case '@':
            continue;
        default:
            return 0;
        }
    }
    return 1;
}

static void put_hex(char *out, uint64_t v, unsigned digits)
{
    static const char hex[] = "0123456789abcdef";
    while (digits != 0) {
        out[--digits] = hex[v & 15];
        v >>= 4;
    }
}

void cr_request_id_format(char *out, uint64_t pfx, unsigned thread, uint64_t count)
{
    put_hex(out, pfx, 16);
    put_hex(out + 16, thread & 0xffffu, 4);
    put_hex(out + 20, count & 0xffffffffffffull, 12);
}

h2o_iovec_t cr_request_id_take(h2o_req_t *req, unsigned thread, int *to_add)
{
    ssize_t first = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1), more;
    char *id;

    if (first != -1) {
        h2o_iovec_t v = req->headers.entries[first].value;
        more = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), first);
        if (more == -1 && cr_request_id_valid(v.base, v.len))
            return v;
        while (more != -1) { /* several lines: none is trusted; the generated one replaces them all */
            h2o_delete_header(&req->headers, more);
            more = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), first);
        }
    }
    if (!thread_prefix_set) {
        char full[CR_REQUEST_ID_GEN_LEN];
        pthread_once(&prefix_once, init_prefix);
        cr_request_id_format(full, prefix, thread, 0);
        memcpy(thread_prefix, full, sizeof(thread_prefix));
        thread_prefix_set = 1;
    }
    id = h2o_mem_alloc_pool(&req->pool, CR_REQUEST_ID_GEN_LEN);
    memcpy(id, thread_prefix, 20);
    put_hex(id + 20, ++counter & 0xffffffffffffull, 12);
    if (first != -1) {
        req->headers.entries[first].value = h2o_iovec_init(id, CR_REQUEST_ID_GEN_LEN);
        return req->headers.entries[first].value;
    }
    *to_add = 1;
    return h2o_iovec_init(id, CR_REQUEST_ID_GEN_LEN);
}

void cr_request_id_add(h2o_req_t *req, h2o_iovec_t id)
{
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-request-id"), 0, NULL, id.base, id.len);
}
