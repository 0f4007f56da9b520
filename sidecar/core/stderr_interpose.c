/*
 * stderr_interpose.c: routes what libh2o writes to stderr through corral's log (log.c), so it is escaped,
 * timestamped and rate-limited like corral's own lines. libh2o 2.2.5 writes one line per unknown HTTP/2 frame
 * ("skipping frame (type:%d)"), per pooled upstream socket that misbehaves, per path it cannot normalize ...: a client
 * or an upstream could otherwise fill the disk at 11 bytes a line.
 *
 * Mechanism: the same symbol interposition as h1_interpose.c. libh2o-evloop.so calls __fprintf_chk, __vfprintf_chk,
 * fwrite and perror through its PLT (`objdump -d libh2o-evloop.so | grep -E 'call.*(printf|fwrite|perror)'`); the
 * definitions below, linked into the corral binary and exported from it (a shared library in the link references
 * them), are the ones every library then calls. Each one checks its caller: only a call whose return address lies in
 * libh2o-evloop's mapped segments and whose stream is stderr is formatted here and handed to cr_log_foreign()
 * (site: the format or text pointer, which lives in libh2o's read-only data); everything else (corral's own fprintf
 * of `-t` results, other libraries, other streams) goes unchanged to the next definition (glibc's, or a sanitizer's
 * interceptor), found once with dlsym(RTLD_NEXT). No pipe and no thread: a line is written with one write(2) before
 * the call returns, so a crash loses nothing and sanitizer reports (written by the sanitizer runtime itself) are
 * untouched. Not routed: fputc (libh2o writes single characters only in h2o_dump_memory and its configurator, which
 * corral does not use); a fragment without a newline becomes a line of its own.
 *
 * State: libh2o's address range and the next definitions, set once (pthread_once) and read-only afterwards;
 * thread-safe.
 */
#include "corral/core/stderr_interpose.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "corral/core/log.h"

#define CR_STDERR_LINE 2048

typedef int (*vfprintf_chk_fn)(FILE *, int, const char *, va_list);
typedef size_t (*fwrite_fn)(const void *, size_t, size_t, FILE *);
typedef void (*perror_fn)(const char *);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static uintptr_t h2o_lo, h2o_hi; /* libh2o-evloop's mapped segments span [h2o_lo, h2o_hi); both 0 if not loaded */
static vfprintf_chk_fn next_vfprintf_chk;
static fwrite_fn next_fwrite;
static perror_fn next_perror;

/* Exported below: declared here for -Wmissing-prototypes and to keep the signatures glibc's. */
int __fprintf_chk(FILE *fp, int flag, const char *fmt, ...);
int __vfprintf_chk(FILE *fp, int flag, const char *fmt, va_list ap);
size_t fwrite(const void *ptr, size_t size, size_t n, FILE *fp);
void perror(const char *s);

static int find_libh2o(struct dl_phdr_info *info, size_t size, void *data)
{
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    int i;
    (void)size;
    (void)data;
    if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libh2o-evloop") == NULL)
        return 0;
    for (i = 0; i != info->dlpi_phnum; ++i) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        if (info->dlpi_addr + ph->p_vaddr < lo)
            lo = info->dlpi_addr + ph->p_vaddr;
        if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
            hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    }
    if (hi > lo) {
        h2o_lo = lo;
        h2o_hi = hi;
    }
    return 1;
}

static void init(void)
{
    next_vfprintf_chk = (vfprintf_chk_fn)dlsym(RTLD_NEXT, "__vfprintf_chk");
    next_fwrite = (fwrite_fn)dlsym(RTLD_NEXT, "fwrite");
    next_perror = (perror_fn)dlsym(RTLD_NEXT, "perror");
    dl_iterate_phdr(find_libh2o, NULL);
}

static inline int in_libh2o(const void *p)
{
    return (uintptr_t)p >= h2o_lo && (uintptr_t)p < h2o_hi;
}

/* 1 when a call from `caller` to stream fp is libh2o writing to stderr. */
static int routed(const void *caller, FILE *fp)
{
    pthread_once(&once, init);
    return fp == stderr && in_libh2o(caller);
}

static int log_formatted(const char *fmt, va_list ap)
{
    char msg[CR_STDERR_LINE];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        return n;
    cr_log_foreign("libh2o", (uintptr_t)fmt, fmt, strlen(fmt), msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    return n;
}

int __vfprintf_chk(FILE *fp, int flag, const char *fmt, va_list ap)
{
    if (routed(__builtin_return_address(0), fp))
        return log_formatted(fmt, ap);
    if (next_vfprintf_chk == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return next_vfprintf_chk(fp, flag, fmt, ap);
}

int __fprintf_chk(FILE *fp, int flag, const char *fmt, ...)
{
    va_list ap;
    int ret;
    va_start(ap, fmt);
    if (routed(__builtin_return_address(0), fp))
        ret = log_formatted(fmt, ap);
    else if (next_vfprintf_chk != NULL)
        ret = next_vfprintf_chk(fp, flag, fmt, ap);
    else
        ret = -1, errno = ENOSYS;
    va_end(ap);
    return ret;
}

size_t fwrite(const void *ptr, size_t size, size_t n, FILE *fp)
{
    const void *caller = __builtin_return_address(0);
    if (routed(caller, fp)) {
        size_t len = size * n;
        int literal = in_libh2o(ptr);
        if (size != 0 && len / size != n)
            return 0;
        /* a literal of libh2o's (fprintf of a constant string becomes fwrite) names its own site; other bytes are
         * named by the call (so a buffer's address never takes a slot of its own) */
        cr_log_foreign("libh2o", literal ? (uintptr_t)ptr : (uintptr_t)caller, literal ? ptr : NULL, len, ptr, len);
        return n;
    }
    if (next_fwrite == NULL)
        return 0;
    return next_fwrite(ptr, size, n, fp);
}

void perror(const char *s)
{
    const void *caller = __builtin_return_address(0);
    if (routed(caller, stderr)) {
        char msg[CR_STDERR_LINE], err[256];
        int literal = s != NULL && in_libh2o(s);
        const char *e = strerror_r(errno, err, sizeof(err)); /* GNU: returns the string */
        int n = snprintf(msg, sizeof(msg), "%s%s%s", s != NULL ? s : "", s != NULL && *s != '\0' ? ": " : "", e);
        if (n >= 0)
            cr_log_foreign("libh2o", literal ? (uintptr_t)s : (uintptr_t)caller, literal ? s : NULL, literal ? strlen(s) : 0, msg,
                           (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
        return;
    }
    if (next_perror != NULL)
        next_perror(s);
}

int cr_stderr_interpose_active(void)
{
    pthread_once(&once, init);
    return h2o_hi != 0 && dlsym(RTLD_DEFAULT, "__fprintf_chk") == (void *)__fprintf_chk &&
           dlsym(RTLD_DEFAULT, "fwrite") == (void *)fwrite && next_vfprintf_chk != NULL && next_fwrite != NULL;
}
