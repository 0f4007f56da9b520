/*
 * common.c: string, hash, clock and h2o-buffer helpers shared by every module. Stateless and thread-safe.
 */
#include "corral/core/common.h"

#include <h2o/memory.h>
#include <time.h>

int cr_str_ieq(cr_str_t a, const char *lower, size_t lowerlen)
{
    size_t i;
    if (a.len != lowerlen)
        return 0;
    for (i = 0; i != lowerlen; ++i) {
        char c = a.base[i];
        if (c >= 'A' && c <= 'Z')
            c += 'a' - 'A';
        if (c != lower[i])
            return 0;
    }
    return 1;
}

cr_str_t cr_str_trim_ows(cr_str_t s)
{
    while (s.len != 0 && cr_is_ows(s.base[0])) {
        ++s.base;
        --s.len;
    }
    while (s.len != 0 && cr_is_ows(s.base[s.len - 1]))
        --s.len;
    return s;
}

uint64_t cr_hash_more(uint64_t h, const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i;
    for (i = 0; i != len; ++i) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

uint64_t cr_hash(const void *p, size_t len)
{
    return cr_hash_more(CR_HASH_INIT, p, len);
}

size_t cr_i64toa(int64_t v, char *buf)
{
    char tmp[20];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        buf[len++] = '-';
    while (n != 0)
        buf[len++] = tmp[--n];
    return len;
}

uint64_t cr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int cr_buffer_append(struct st_h2o_buffer_t **buf, const void *p, size_t len)
{
    h2o_iovec_t dst = h2o_buffer_reserve(buf, len);
    if (dst.base == NULL)
        return CR_ERROR;
    memcpy(dst.base, p, len);
    (*buf)->size += len;
    return CR_OK;
}
