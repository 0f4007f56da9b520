/*
 * thread_blocks.c: the per-thread block cache for codec state (thread_blocks.h).
 *
 * Layout: each block carries a 16-byte header with its usable size before the bytes handed out. A thread's cache is
 * a small array of kept blocks; an allocation takes the smallest kept block that is large enough and not more than
 * twice the size (plus a page), so one huge block is not spent on small requests.
 * Invariants: the cache is thread-local (its pointer is also the pthread key's value, for the exit destructor); kept
 * bytes never pass CR_THREAD_BLOCKS_BYTES.
 */
#include "corral/core/thread_blocks.h"

#include <pthread.h>
#include <stdlib.h>

#define CR_BLOCK_HEADER 16

typedef struct st_cr_thread_blocks_t {
    void *blocks[CR_THREAD_BLOCKS_MAX]; /* the headers of kept blocks */
    size_t num_blocks, kept_bytes;
    uint64_t reused, fresh;
} cr_thread_blocks_t;

static __thread cr_thread_blocks_t *self;
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static size_t size_of(const void *header)
{
    return *(const size_t *)header;
}

static void destroy(void *p)
{
    cr_thread_blocks_t *tb = p;
    size_t i;
    for (i = 0; i != tb->num_blocks; ++i)
        free(tb->blocks[i]);
    free(tb);
    self = NULL; /* runs on the exiting thread: anything after it starts afresh */
}

static void make_key(void)
{
    (void)pthread_key_create(&key, destroy);
}

static cr_thread_blocks_t *cache(void)
{
    if (self == NULL && (self = calloc(1, sizeof(*self))) != NULL) {
        pthread_once(&key_once, make_key);
        if (pthread_setspecific(key, self) != 0) { /* no destructor would free it: keep nothing */
            free(self);
            self = NULL;
        }
    }
    return self;
}

void *cr_thread_blocks_alloc(size_t size)
{
    cr_thread_blocks_t *tb = cache();
    size_t i, best = SIZE_MAX;
    char *h;

    if (tb != NULL) {
        for (i = 0; i != tb->num_blocks; ++i) {
            size_t have = size_of(tb->blocks[i]);
            if (have >= size && have - size <= size + 4096 && (best == SIZE_MAX || have < size_of(tb->blocks[best])))
                best = i;
        }
        if (best != SIZE_MAX) {
            h = tb->blocks[best];
            tb->blocks[best] = tb->blocks[--tb->num_blocks];
            tb->kept_bytes -= size_of(h);
            ++tb->reused;
            return h + CR_BLOCK_HEADER;
        }
        ++tb->fresh;
    }
    if (size > SIZE_MAX - CR_BLOCK_HEADER || (h = malloc(CR_BLOCK_HEADER + size)) == NULL)
        return NULL;
    *(size_t *)(void *)h = size;
    return h + CR_BLOCK_HEADER;
}

void cr_thread_blocks_free(void *p)
{
    cr_thread_blocks_t *tb = self;
    char *h;

    if (p == NULL)
        return;
    h = (char *)p - CR_BLOCK_HEADER;
    if (tb != NULL && tb->num_blocks != CR_THREAD_BLOCKS_MAX && size_of(h) <= CR_THREAD_BLOCKS_BYTES - tb->kept_bytes) {
        tb->blocks[tb->num_blocks++] = h;
        tb->kept_bytes += size_of(h);
        return;
    }
    free(h);
}

void cr_thread_blocks_counts(uint64_t *reused, uint64_t *fresh)
{
    *reused = self != NULL ? self->reused : 0;
    *fresh = self != NULL ? self->fresh : 0;
}
