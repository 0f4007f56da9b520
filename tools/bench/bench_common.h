/*
 * bench_common.h: what the in-process benchmarks (bench_store.c, bench_purge.c) share: the headers of their test
 * objects (shaped like a small JSON API response), a monotonic clock in nanoseconds, a xorshift generator, and a
 * reader of this process's memory figures.
 * Header-only (static functions); no state.
 */
#ifndef CORRAL_BENCH_COMMON_H
#define CORRAL_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* A "VmRSS"-style field of /proc/self/status in KiB, or -1. */
static inline long status_kib(const char *field)
{
    char line[256];
    long v = -1;
    size_t flen = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            v = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

#endif
