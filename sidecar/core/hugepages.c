/*
 * hugepages.c: see hugepages.h. No state, no threads: it runs before anything else in main().
 */
#include "corral/core/hugepages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CR_HUGEPAGES_TUNABLE "glibc.malloc.hugetlb=1"

/* 1 when the kernel would give madvise'd memory huge pages ("always" or "madvise" selected). */
static int cr_hugepages_available(void)
{
    char buf[128];
    size_t n;
    FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

    if (fp == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strstr(buf, "[always]") != NULL || strstr(buf, "[madvise]") != NULL;
}

void cr_hugepages_reexec(char **argv)
{
    const char *tunables = getenv("GLIBC_TUNABLES"), *flag = getenv("CORRAL_HUGEPAGES"), *preload = getenv("LD_PRELOAD");
    char *value;
    size_t len;

    if ((tunables != NULL && strstr(tunables, "glibc.malloc.hugetlb") != NULL) || (flag != NULL && strcmp(flag, "0") == 0) ||
        (preload != NULL && strstr(preload, "vgpreload") != NULL) || !cr_hugepages_available())
        return;
    len = (tunables != NULL ? strlen(tunables) + 1 : 0) + sizeof(CR_HUGEPAGES_TUNABLE);
    if ((value = malloc(len)) == NULL)
        return;
    if (tunables != NULL && tunables[0] != '\0')
        snprintf(value, len, "%s:%s", tunables, CR_HUGEPAGES_TUNABLE);
    else
        snprintf(value, len, "%s", CR_HUGEPAGES_TUNABLE);
    if (setenv("GLIBC_TUNABLES", value, 1) == 0)
        execv("/proc/self/exe", argv);
    /* the exec failed: run on with small pages, and with the environment as it was */
    if (tunables != NULL)
        setenv("GLIBC_TUNABLES", tunables, 1);
    else
        unsetenv("GLIBC_TUNABLES");
    free(value);
}
