/*
 * test_inval_epoch.c: unit tests for sidecar/cache/inval_epoch.c, the records of invalidations that fills check before
 * they are stored: each kind of note covers what it names and nothing else (paths, path and key prefixes, tags, keys,
 * everything), notes before a snapshot never count, the path-slot rule (one note of another path in the fill's slot
 * is ignored, two are not, one of its own path always counts), ring overflow, and a threaded run of fills against
 * notes checking that no covering note is ever missed while unrelated ones rarely cost a store.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/cache/inval_epoch.h"
#include "corral/http/invalidate.h"

void cr_test_register_inval_epoch(void);

/* A finished object with this key (and path_hash = cr_path_hash(key)) carrying these comma-separated tags. */
static cr_object_t *ie_make(const char *key, const char *tags)
{
    cr_object_t *obj = cr_object_new(key, strlen(key), 200);
    cr_str_t list[8];
    size_t n = 0;

    CU_ASSERT_FATAL(obj != NULL);
    while (tags != NULL && *tags != '\0' && n != 8) {
        const char *comma = strchr(tags, ',');
        size_t len = comma != NULL ? (size_t)(comma - tags) : strlen(tags);
        list[n++] = cr_str(tags, len);
        tags += len + (comma != NULL);
    }
    CU_ASSERT_FATAL(cr_object_set_tags(obj, list, n) == CR_OK);
    cr_object_set_body(obj, CR_ENC_IDENTITY, NULL, 0);
    obj = cr_object_finish(obj);
    CU_ASSERT_FATAL(obj != NULL);
    obj->path_hash = cr_path_hash(cr_object_key(obj));
    return obj;
}

static uint64_t ie_path_hash(const char *path)
{
    return cr_path_hash_of_path(cr_str(path, strlen(path)));
}

/* Does a note made after a snapshot of obj's path cover obj? (A fresh record set each time.) */
typedef void (*ie_note_fn)(cr_inval_t *inv, const void *arg);

static int ie_covers_after(const cr_object_t *obj, ie_note_fn note, const void *arg)
{
    cr_inval_t *inv = cr_inval_new();
    cr_inval_snapshot_t snap;
    int covered;

    CU_ASSERT_FATAL(inv != NULL);
    cr_inval_snapshot(inv, obj->path_hash, &snap);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &snap, obj), 0);
    note(inv, arg);
    covered = cr_inval_covers(inv, &snap, obj);
    /* and a snapshot taken after the note does not see it */
    cr_inval_snapshot(inv, obj->path_hash, &snap);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &snap, obj), 0);
    cr_inval_free(&inv);
    CU_ASSERT_PTR_NULL(inv);
    return covered;
}

static void ie_note_path(cr_inval_t *inv, const void *arg)
{
    cr_inval_note_path(inv, ie_path_hash(arg));
}
static void ie_note_path_prefix(cr_inval_t *inv, const void *arg)
{
    cr_inval_note_path_prefix(inv, arg, strlen(arg));
}
static void ie_note_key_prefix(cr_inval_t *inv, const void *arg)
{
    cr_inval_note_key_prefix(inv, arg, strlen(arg));
}
static void ie_note_tag(cr_inval_t *inv, const void *arg)
{
    cr_inval_note_tag(inv, arg, strlen(arg));
}
static void ie_note_key(cr_inval_t *inv, const void *arg)
{
    cr_inval_note_key(inv, arg, strlen(arg));
}
static void ie_note_all(cr_inval_t *inv, const void *arg)
{
    (void)arg;
    cr_inval_note_all(inv);
}

static void test_inval_kinds(void)
{
    cr_object_t *a = ie_make("h:80\n/v1/users/42?page=2\naccept-language:fr", "user-42,list"), *plain = ie_make("h:80\n/a", NULL);

    CU_ASSERT_STRING_EQUAL(cr_inval_key_path(cr_object_key(a)).base, "/v1/users/42?page=2\naccept-language:fr");
    CU_ASSERT_EQUAL(cr_inval_key_path(cr_object_key(a)).len, strlen("/v1/users/42"));
    /* its own path, and nothing else */
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_path, "/v1/users/42"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_path, "/v1/users/43"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_path, "/v1/users/4"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_path, "/v1/users"));
    /* path prefixes: bytes of the normalized path, never of the authority or the query */
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_path_prefix, "/v1/users/"));
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_path_prefix, "/v1/users/4"));
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_path_prefix, "/v1/users/42"));
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_path_prefix, "/"));
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_path_prefix, ""));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_path_prefix, "/v1/users/42?"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_path_prefix, "/v1/users/420"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_path_prefix, "/other/"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_path_prefix, "/v2"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_path_prefix, "h:80"));
    CU_ASSERT_FALSE(ie_covers_after(plain, ie_note_path_prefix, "/ab"));
    CU_ASSERT_TRUE(ie_covers_after(plain, ie_note_path_prefix, "/a"));
    /* key prefixes: bytes of the whole key */
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_key_prefix, "h:80\n/v1/"));
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_key_prefix, "h"));
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_key_prefix, ""));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_key_prefix, "g:80\n"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_key_prefix, "/v1/"));
    /* tags: exact bytes, arriving with the response */
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_tag, "user-42"));
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_tag, "list"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_tag, "user-4"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_tag, "user-420"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_tag, "User-42"));
    CU_ASSERT_FALSE(ie_covers_after(plain, ie_note_tag, "user-42"));
    /* one key */
    CU_ASSERT_TRUE(ie_covers_after(plain, ie_note_key, "h:80\n/a"));
    CU_ASSERT_FALSE(ie_covers_after(plain, ie_note_key, "h:80\n/a?x"));
    CU_ASSERT_FALSE(ie_covers_after(plain, ie_note_key, "h:80\n/"));
    CU_ASSERT_FALSE(ie_covers_after(a, ie_note_key, "h:80\n/a"));
    /* everything */
    CU_ASSERT_TRUE(ie_covers_after(a, ie_note_all, NULL));
    CU_ASSERT_TRUE(ie_covers_after(plain, ie_note_all, NULL));
    cr_object_release(&a);
    cr_object_release(&plain);
}

static void test_inval_before_and_after(void)
{
    cr_inval_t *inv = cr_inval_new();
    cr_object_t *a = ie_make("h\n/a", "t");
    cr_inval_snapshot_t s0, s1;
    int i;

    CU_ASSERT_FATAL(inv != NULL);
    /* notes made before the snapshot never count, whatever they cover */
    cr_inval_note_path(inv, ie_path_hash("/a"));
    cr_inval_note_tag(inv, "t", 1);
    cr_inval_note_all(inv);
    cr_inval_snapshot(inv, a->path_hash, &s0);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &s0, a), 0);
    /* unrelated coarse notes, up to a full ring of them, are walked and ignored */
    for (i = 0; i != CR_INVAL_RING; ++i)
        cr_inval_note_tag(inv, i % 2 ? "u" : "tt", i % 2 ? 1 : 2);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &s0, a), 0);
    /* one more: the ring no longer holds everything since s0, so s0 cannot tell any more */
    cr_inval_note_path_prefix(inv, "/b", 2);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &s0, a), 1);
    cr_inval_snapshot(inv, a->path_hash, &s1);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &s1, a), 0);
    /* once covered, covered for good */
    cr_inval_note_tag(inv, "t", 1);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &s1, a), 1);
    for (i = 0; i != 2 * CR_INVAL_RING; ++i)
        cr_inval_note_tag(inv, "u", 1);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &s1, a), 1);
    cr_object_release(&a);
    cr_inval_free(&inv);
    cr_inval_free(&inv); /* NULL is fine */
}

/* Finds a path other than `path` whose notes go to the same slot (/c/N for the smallest such N). */
static void ie_slot_mate(const char *path, char *out, size_t outsize)
{
    size_t want = cr_inval_slot_of(ie_path_hash(path));
    unsigned n;
    for (n = 0; n != 100u * CR_INVAL_SLOTS; ++n) {
        snprintf(out, outsize, "/c/%u", n);
        if (strcmp(out, path) != 0 && cr_inval_slot_of(ie_path_hash(out)) == want)
            return;
    }
    CU_FAIL_FATAL("no path shares the slot");
}

static void test_inval_path_slots(void)
{
    cr_inval_t *inv = cr_inval_new();
    cr_object_t *a = ie_make("h\n/a", NULL);
    cr_inval_snapshot_t snap;
    char mate[32], mate2[32];
    size_t i, distinct = 0;

    CU_ASSERT_FATAL(inv != NULL);
    ie_slot_mate("/a", mate, sizeof(mate));
    ie_slot_mate(mate, mate2, sizeof(mate2));
    if (strcmp(mate2, "/a") == 0)
        snprintf(mate2, sizeof(mate2), "%s", mate);
    /* one note of another path in the same slot is told apart by its fragment */
    cr_inval_snapshot(inv, a->path_hash, &snap);
    cr_inval_note_path(inv, ie_path_hash(mate));
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &snap, a), 0);
    /* two are not (the second could hide one of /a): a false non-store, never a false store */
    cr_inval_note_path(inv, ie_path_hash(mate2));
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &snap, a), 1);
    /* a note of /a after one of its mate: covered */
    cr_inval_snapshot(inv, a->path_hash, &snap);
    cr_inval_note_path(inv, ie_path_hash(mate));
    cr_inval_note_path(inv, ie_path_hash("/a"));
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &snap, a), 1);
    /* the mate's note last, after /a's: covered too (two notes) */
    cr_inval_snapshot(inv, a->path_hash, &snap);
    cr_inval_note_path(inv, ie_path_hash("/a"));
    cr_inval_note_path(inv, ie_path_hash(mate));
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &snap, a), 1);
    /* /a noted twice: covered */
    cr_inval_snapshot(inv, a->path_hash, &snap);
    cr_inval_note_path(inv, ie_path_hash("/a"));
    cr_inval_note_path(inv, ie_path_hash("/a"));
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &snap, a), 1);
    /* notes of paths in other slots never count */
    cr_inval_snapshot(inv, a->path_hash, &snap);
    for (i = 0; i != 1000; ++i) {
        char p[32];
        snprintf(p, sizeof(p), "/d/%zu", i);
        if (cr_inval_slot_of(ie_path_hash(p)) == cr_inval_slot_of(a->path_hash))
            continue;
        ++distinct;
        cr_inval_note_path(inv, ie_path_hash(p));
        cr_inval_note_path(inv, ie_path_hash(p));
    }
    CU_ASSERT(distinct > 990);
    CU_ASSERT_EQUAL(cr_inval_covers(inv, &snap, a), 0);
    cr_object_release(&a);
    cr_inval_free(&inv);
}

/*
 * Fills versus notes, on threads. Each fill waits for a few notes between its snapshot and its check. Objects k
 * (0 .. IE_KEYS-1) have key "h\n/p/<k/10>/<k>" and tags "t<k%7>" and
 * "all-p". The noter thread makes notes of random kinds, some covering some objects (path, path prefix "/p/<j>/",
 * tag, key, everything) and some covering none ("/q/..." paths and prefixes, tag "none"), and counts, per target,
 * how many it started (before the note) and completed (after it). A filler takes a snapshot, then reads S, the number
 * of covering notes started (as a sum over the counters that cover its object); later it reads C, the number
 * completed, and then checks. If C > S, a covering note started after the snapshot and completed before the check:
 * the check must say "covered" (no false store). If the check says "covered" while no covering note was started from
 * before the snapshot to after the check, that is a false non-store; they must be rare.
 */
#define IE_KEYS 20
#define IE_FILLERS 3
#define IE_MAX_FILLS 200000 /* per filler; they stop when the noter is done */
#define IE_NOTES 60000      /* at least; then on until the fillers made IE_MIN_FILLS fills (at most IE_MAX_NOTES) */
#define IE_MIN_FILLS 20000
#define IE_MAX_NOTES 3000000

typedef struct {
    uint64_t path[IE_KEYS], key[IE_KEYS], prefix[IE_KEYS / 10], tag[7], all; /* atomic */
} ie_counts_t;

static ie_counts_t ie_started, ie_completed;
static cr_inval_t *ie_inv;
static cr_object_t *ie_objs[IE_KEYS];
static int ie_noter_done;     /* atomic */
static uint64_t ie_notes_made; /* atomic: notes completed so far */
static uint64_t ie_fills_made; /* atomic: fills checked so far */
#define IE_WINDOW 6 /* notes a fill waits for between its snapshot and its check (bounded) */

static uint64_t ie_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static uint64_t ie_relevant(const ie_counts_t *c, unsigned k)
{
    return ie_load(&c->path[k]) + ie_load(&c->key[k]) + ie_load(&c->prefix[k / 10]) + ie_load(&c->tag[k % 7]) + ie_load(&c->all);
}

static unsigned ie_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 8;
}

static void *ie_noter(void *arg)
{
    unsigned seed = 4242;
    char buf[64];
    int i;

    (void)arg;
    for (i = 0; i != IE_MAX_NOTES && (i < IE_NOTES || __atomic_load_n(&ie_fills_made, __ATOMIC_SEQ_CST) < IE_MIN_FILLS); ++i) {
        unsigned r = ie_rand(&seed), op = r % 16, k = (r >> 4) % IE_KEYS;
        uint64_t *s = NULL, *c = NULL;
        int spin;
        /* keep pace with the fillers (bounded: a filler waiting for notes never holds the noter up for long) */
        for (spin = 0; spin != 1000 && __atomic_load_n(&ie_notes_made, __ATOMIC_SEQ_CST) >
                                           4 * __atomic_load_n(&ie_fills_made, __ATOMIC_SEQ_CST) + 256;
             ++spin)
            sched_yield();
        switch (op) {
        case 0: case 1: case 2: case 3: /* a covering path */
            s = &ie_started.path[k], c = &ie_completed.path[k];
            break;
        case 4:
            s = &ie_started.prefix[k / 10], c = &ie_completed.prefix[k / 10];
            break;
        case 5:
            s = &ie_started.tag[k % 7], c = &ie_completed.tag[k % 7];
            break;
        case 6:
            s = &ie_started.key[k], c = &ie_completed.key[k];
            break;
        case 7:
            if (k == 0)
                s = &ie_started.all, c = &ie_completed.all;
            break;
        }
        if (s != NULL)
            __atomic_add_fetch(s, 1, __ATOMIC_SEQ_CST);
        switch (op) {
        case 0: case 1: case 2: case 3:
            snprintf(buf, sizeof(buf), "/p/%u/%u", k / 10, k);
            cr_inval_note_path(ie_inv, ie_path_hash(buf));
            break;
        case 4:
            snprintf(buf, sizeof(buf), "/p/%u/", k / 10);
            cr_inval_note_path_prefix(ie_inv, buf, strlen(buf));
            break;
        case 5:
            snprintf(buf, sizeof(buf), "t%u", k % 7);
            cr_inval_note_tag(ie_inv, buf, strlen(buf));
            break;
        case 6:
            snprintf(buf, sizeof(buf), "h\n/p/%u/%u", k / 10, k);
            cr_inval_note_key(ie_inv, buf, strlen(buf));
            break;
        case 7:
            if (k == 0)
                cr_inval_note_all(ie_inv);
            break;
        case 8:
            cr_inval_note_path_prefix(ie_inv, "/q/", 3);
            break;
        case 9:
            cr_inval_note_tag(ie_inv, "none", 4);
            break;
        default: /* unrelated paths, the common case */
            snprintf(buf, sizeof(buf), "/q/%u", r % 100000);
            cr_inval_note_path(ie_inv, ie_path_hash(buf));
            break;
        }
        if (c != NULL)
            __atomic_add_fetch(c, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&ie_notes_made, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&ie_noter_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

typedef struct {
    unsigned seed;
    long bad, must, quiet, false_nonstores, fills;
} ie_filler_t;

static void *ie_filler(void *arg)
{
    ie_filler_t *f = arg;
    int i;

    for (i = 0; i != IE_MAX_FILLS && !__atomic_load_n(&ie_noter_done, __ATOMIC_SEQ_CST); ++i) {
        unsigned k = ie_rand(&f->seed) % IE_KEYS;
        const cr_object_t *obj = ie_objs[k];
        cr_inval_snapshot_t snap;
        uint64_t done_before = ie_relevant(&ie_completed, k), before = ie_relevant(&ie_started, k), started, completed, after,
                 made;
        int covered, spin;

        cr_inval_snapshot(ie_inv, obj->path_hash, &snap);
        started = ie_relevant(&ie_started, k);
        /* the "fetch": let a few notes land in between */
        made = __atomic_load_n(&ie_notes_made, __ATOMIC_SEQ_CST);
        for (spin = 0; spin != 100000 && __atomic_load_n(&ie_notes_made, __ATOMIC_SEQ_CST) < made + IE_WINDOW &&
                       !__atomic_load_n(&ie_noter_done, __ATOMIC_SEQ_CST);
             ++spin)
            sched_yield();
        completed = ie_relevant(&ie_completed, k);
        covered = cr_inval_covers(ie_inv, &snap, obj);
        after = ie_relevant(&ie_started, k);
        ++f->fills;
        __atomic_add_fetch(&ie_fills_made, 1, __ATOMIC_SEQ_CST);
        if (completed > started) {
            ++f->must;
            if (!covered)
                ++f->bad; /* a covering note came and went during the fill, and the fill would be stored */
        }
        if (done_before == before && after == before) { /* no covering note in progress or started meanwhile */
            ++f->quiet;
            f->false_nonstores += covered;
        }
    }
    return NULL;
}

static void test_inval_threads(void)
{
    pthread_t noter, fillers[IE_FILLERS];
    ie_filler_t ctx[IE_FILLERS];
    long bad = 0, must = 0, quiet = 0, fns = 0, fills = 0;
    unsigned k;
    char key[64], tags[32];
    int i;

    memset(&ie_started, 0, sizeof(ie_started));
    memset(&ie_completed, 0, sizeof(ie_completed));
    ie_noter_done = 0;
    ie_notes_made = 0;
    ie_fills_made = 0;
    CU_ASSERT_FATAL((ie_inv = cr_inval_new()) != NULL);
    for (k = 0; k != IE_KEYS; ++k) {
        snprintf(key, sizeof(key), "h\n/p/%u/%u", k / 10, k);
        snprintf(tags, sizeof(tags), "t%u,all-p", k % 7);
        ie_objs[k] = ie_make(key, tags);
    }
    for (i = 0; i != IE_FILLERS; ++i) {
        memset(&ctx[i], 0, sizeof(ctx[i]));
        ctx[i].seed = 0x9e3779b9u * (unsigned)(i + 1);
        CU_ASSERT_FATAL(pthread_create(&fillers[i], NULL, ie_filler, &ctx[i]) == 0);
    }
    CU_ASSERT_FATAL(pthread_create(&noter, NULL, ie_noter, NULL) == 0);
    pthread_join(noter, NULL);
    for (i = 0; i != IE_FILLERS; ++i) {
        pthread_join(fillers[i], NULL);
        bad += ctx[i].bad;
        must += ctx[i].must;
        quiet += ctx[i].quiet;
        fns += ctx[i].false_nonstores;
        fills += ctx[i].fills;
    }
    if (bad != 0 || fns * 20 > quiet || must * 10 <= fills)
        fprintf(stderr, "\n  inval threads: %ld fills, %ld raced a covering note (%ld missed), %ld quiet (%ld not stored)\n", fills,
                must, bad, quiet, fns);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(fills >= IE_MIN_FILLS);
    CU_ASSERT(quiet > 0);
    CU_ASSERT(must * 10 > fills); /* the race was run: many fills saw a covering note come and go */
    CU_ASSERT(fns * 20 <= quiet); /* unrelated notes cost under 5% of the quiet fills their store */
    for (k = 0; k != IE_KEYS; ++k)
        cr_object_release(&ie_objs[k]);
    cr_inval_free(&ie_inv);
}

void cr_test_register_inval_epoch(void)
{
    CU_pSuite suite = CU_add_suite("inval_epoch", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "each kind of note covers what it names and nothing else", test_inval_kinds);
    CU_add_test(suite, "notes before the snapshot, a full ring, overflow", test_inval_before_and_after);
    CU_add_test(suite, "path slots: one note of a slot mate is told apart, two are not", test_inval_path_slots);
    CU_add_test(suite, "threads: fills versus notes, no covering note missed", test_inval_threads);
}
