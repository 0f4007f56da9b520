/*
 * metrics_process.c: the standard process_* series (as Prometheus client libraries name them) from /proc/self:
 * process_start_time_seconds, process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds.
 *
 * Invariants: runs on the admin thread at a scrape (a few small /proc reads and one directory walk: off the traffic
 * path); no state, no locks. A file that cannot be read or parsed leaves its series out rather than writing a wrong
 * number; nothing here fails the scrape.
 */
#include "corral/admin/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads a small file whole (NUL-terminated) into buf; its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL)
        return -1;
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* The system's boot time (btime in /proc/stat), in seconds since the epoch, or 0. */
static unsigned long long boot_time(void)
{
    char buf[8192];
    const char *p;
    if (read_small("/proc/stat", buf, sizeof(buf)) < 0 || (p = strstr(buf, "\nbtime ")) == NULL)
        return 0;
    return strtoull(p + 7, NULL, 10);
}

/* Entries in /proc/self/fd (less the one opendir holds), or -1. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            ++n;
    closedir(d);
    return n - 1;
}

void cr_metrics_write_process(cr_metrics_t *m)
{
    const char *saved = m->prefix;
    char buf[2048];
    const char *p;
    unsigned long long utime, stime, start, vsize, btime;
    long long rss;
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds = open_fds();
    struct rlimit rl;

    m->prefix = "";
    /* /proc/self/stat: "pid (comm) state ..."; comm may hold spaces and parentheses: fields count from the last ')'.
     * After it: state(3) ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24) */
    if (ticks > 0 && page > 0 && read_small("/proc/self/stat", buf, sizeof(buf)) > 0 && (p = strrchr(buf, ')')) != NULL &&
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld", &utime,
               &stime, &start, &vsize, &rss) == 5) {
        cr_metrics_single_double(m, "process_cpu_seconds_total", CR_METRIC_COUNTER, "Total user and system CPU time spent in seconds.",
                                 (double)(utime + stime) / (double)ticks);
        if ((btime = boot_time()) != 0)
            cr_metrics_single_double(m, "process_start_time_seconds", CR_METRIC_GAUGE,
                                     "Start time of the process since unix epoch in seconds.", (double)btime + (double)start / (double)ticks);
        cr_metrics_single(m, "process_virtual_memory_bytes", CR_METRIC_GAUGE, "Virtual memory size in bytes.", vsize);
        cr_metrics_single(m, "process_resident_memory_bytes", CR_METRIC_GAUGE, "Resident memory size in bytes.",
                          rss > 0 ? (uint64_t)rss * (uint64_t)page : 0);
    }
    if (fds >= 0)
        cr_metrics_single(m, "process_open_fds", CR_METRIC_GAUGE, "Number of open file descriptors.", (uint64_t)fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        cr_metrics_single(m, "process_max_fds", CR_METRIC_GAUGE, "Maximum number of open file descriptors.", (uint64_t)rl.rlim_cur);
    m->prefix = saved;
}
