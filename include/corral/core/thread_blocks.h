/*
 * thread_blocks.h: a per-thread cache of large blocks for codec state. zlib's deflate state (~256 KiB at level 6) and
 * brotli's encoder (ring buffer and hash tables, up to megabytes) are allocated and freed on every compression. With
 * glibc's mmap threshold fixed (main.c), blocks that large are mmap'ed and munmap'ed each time, and every page of
 * them faults in again: on a 2 KB object that cost more than the compression itself. These keep a thread's freed
 * blocks for its next codec call instead.
 *
 * Invariants: a block is freed on the thread that allocated it (the one-shot encoders allocate and free within one
 * call). Each thread keeps at most CR_THREAD_BLOCKS_MAX blocks and CR_THREAD_BLOCKS_BYTES bytes; more is freed at
 * once, and what a thread keeps is freed when it exits (a pthread key's destructor). No lock: nothing is shared.
 */
#ifndef CORRAL_CORE_THREAD_BLOCKS_H
#define CORRAL_CORE_THREAD_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#define CR_THREAD_BLOCKS_MAX 64
#define CR_THREAD_BLOCKS_BYTES ((size_t)8 << 20)

/* size bytes (16-byte aligned), a kept block of this thread when one fits, else malloc'ed; NULL when out of memory. */
void *cr_thread_blocks_alloc(size_t size);
/* Keeps p (from cr_thread_blocks_alloc on this thread) for reuse, or frees it; NULL is ignored. */
void cr_thread_blocks_free(void *p);
/* This thread's counts since it started: allocations served from kept blocks, and from malloc. */
void cr_thread_blocks_counts(uint64_t *reused, uint64_t *fresh);

#endif
