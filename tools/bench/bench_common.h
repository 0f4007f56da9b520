/*
 * bench_common.h: what the in-process benchmarks (bench_store.c, bench_purge.c) share: the headers of their test
 * objects (shaped like a small JSON API response), a monotonic clock in nanoseconds, and a xorshift generator.
 * Header-only (static functions); no state.
 */
#ifndef CORRAL_BENCH_COMMON_H
#define CORRAL_BENCH_COMMON_H

#include <stdint.h>
#include <time.h>

static const struct {
    const char *name, *value;
} hdrs[] = {
    {"content-type", "application/json"},
    {"cache-control", "public, max-age=3600"},
    {"etag", "\"5f2b9c1e-64\""},
    {"date", "Fri, 27 Nov 2026 12:00:00 GMT"},
};

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#endif
