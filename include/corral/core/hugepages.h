/*
 * hugepages.h: backing the heap with transparent huge pages.
 *
 * A cache's heap is large and read at random, so with 4 KiB pages most lookups among a million objects pay a TLB miss
 * or two. glibc (2.35 and later) can madvise its heap for transparent huge pages, but only reads that setting
 * (GLIBC_TUNABLES=glibc.malloc.hugetlb=1) when a program starts; cr_hugepages_reexec() therefore re-executes the
 * program once with it set, before anything else has happened. The process keeps its PID, arguments and descriptors.
 */
#ifndef CORRAL_HUGEPAGES_H
#define CORRAL_HUGEPAGES_H

/*
 * Re-executes /proc/self/exe with argv and the tunable added to GLIBC_TUNABLES, unless: the tunable is already set
 * (also the case after the re-execution), CORRAL_HUGEPAGES=0 is in the environment, the kernel's transparent huge
 * pages are "never" or absent, or the program runs under valgrind. Returns only when it does not re-execute (or the
 * exec failed, which is harmless: the program just runs with small pages). Call first thing in main().
 */
void cr_hugepages_reexec(char **argv);

#endif
