/*
 * metrics_text.c: the Prometheus text format (version 0.0.4) writer behind GET /metrics (metrics.h): a growable
 * buffer, family headers, samples with escaped labels, histograms.
 *
 * Invariants: a cr_metrics_t belongs to one thread; nothing here locks or reads shared state. The buffer grows by
 * doubling; after a failed allocation nothing more is written and `failed` stays set. Every name gets m->prefix
 * ("corral_" unless the caller changed it, as the process_* series do).
 */
#include "corral/admin/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CR_METRICS_INITIAL_CAP 4096

void cr_metrics_init(cr_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    m->prefix = "corral_";
}

void cr_metrics_dispose(cr_metrics_t *m)
{
    free(m->base);
    cr_metrics_init(m);
}

/* Room for `more` bytes plus a NUL; 0, or -1 (and `failed`) when memory ran out. */
static int reserve(cr_metrics_t *m, size_t more)
{
    size_t need, cap;
    char *p;
    if (m->failed)
        return -1;
    need = m->len + more + 1;
    if (need <= m->cap)
        return 0;
    cap = m->cap != 0 ? m->cap : CR_METRICS_INITIAL_CAP;
    while (cap < need)
        cap *= 2;
    if ((p = realloc(m->base, cap)) == NULL) {
        m->failed = 1;
        return -1;
    }
    m->base = p;
    m->cap = cap;
    return 0;
}

static void put(cr_metrics_t *m, const char *s, size_t n)
{
    if (reserve(m, n) != 0)
        return;
    memcpy(m->base + m->len, s, n);
    m->len += n;
    m->base[m->len] = '\0';
}

static void puts_(cr_metrics_t *m, const char *s)
{
    put(m, s, strlen(s));
}

/* Appends s with backslash and newline escaped, and double quotes too when `quotes` (label values). */
static void put_escaped(cr_metrics_t *m, cr_str_t s, int quotes)
{
    size_t i, from = 0;
    for (i = 0; i != s.len; ++i) {
        const char *esc = NULL;
        if (s.base[i] == '\\')
            esc = "\\\\";
        else if (s.base[i] == '\n')
            esc = "\\n";
        else if (quotes && s.base[i] == '"')
            esc = "\\\"";
        if (esc == NULL)
            continue;
        put(m, s.base + from, i - from);
        put(m, esc, 2);
        from = i + 1;
    }
    put(m, s.base + from, s.len - from);
}

static const char *prefix_of(const cr_metrics_t *m)
{
    return m->prefix != NULL ? m->prefix : "corral_";
}

void cr_metrics_family(cr_metrics_t *m, const char *name, cr_metric_type_t type, const char *help)
{
    static const char *const types[] = {" counter\n", " gauge\n", " histogram\n"};
    puts_(m, "# HELP ");
    puts_(m, prefix_of(m));
    puts_(m, name);
    puts_(m, " ");
    put_escaped(m, cr_str(help, strlen(help)), 0);
    puts_(m, "\n# TYPE ");
    puts_(m, prefix_of(m));
    puts_(m, name);
    puts_(m, types[type]);
}

/* "<prefix><name><suffix>{labels[,extra]} " */
static void sample_head(cr_metrics_t *m, const char *name, const char *suffix, const cr_metric_label_t *labels, size_t nlabels,
                        const cr_metric_label_t *extra)
{
    size_t i;
    puts_(m, prefix_of(m));
    puts_(m, name);
    puts_(m, suffix);
    if (nlabels != 0 || extra != NULL) {
        puts_(m, "{");
        for (i = 0; i != nlabels + (extra != NULL); ++i) {
            const cr_metric_label_t *l = i < nlabels ? labels + i : extra;
            if (i != 0)
                puts_(m, ",");
            puts_(m, l->name);
            puts_(m, "=\"");
            put_escaped(m, l->value, 1);
            puts_(m, "\"");
        }
        puts_(m, "}");
    }
    puts_(m, " ");
}

static void put_u64(cr_metrics_t *m, uint64_t v)
{
    char num[32];
    put(m, num, (size_t)snprintf(num, sizeof(num), "%llu\n", (unsigned long long)v));
}

void cr_metrics_sample(cr_metrics_t *m, const char *name, const cr_metric_label_t *labels, size_t nlabels, uint64_t value)
{
    sample_head(m, name, "", labels, nlabels, NULL);
    put_u64(m, value);
}

void cr_metrics_sample_double(cr_metrics_t *m, const char *name, const cr_metric_label_t *labels, size_t nlabels, double value)
{
    char num[48];
    sample_head(m, name, "", labels, nlabels, NULL);
    put(m, num, (size_t)snprintf(num, sizeof(num), "%.17g\n", value));
}

void cr_metrics_single(cr_metrics_t *m, const char *name, cr_metric_type_t type, const char *help, uint64_t value)
{
    cr_metrics_family(m, name, type, help);
    cr_metrics_sample(m, name, NULL, 0, value);
}

void cr_metrics_single_double(cr_metrics_t *m, const char *name, cr_metric_type_t type, const char *help, double value)
{
    cr_metrics_family(m, name, type, help);
    cr_metrics_sample_double(m, name, NULL, 0, value);
}

void cr_metrics_histogram(cr_metrics_t *m, const char *name, const cr_metric_label_t *labels, size_t nlabels, const cr_hist_t *h)
{
    uint64_t cum = 0;
    char sum[48];
    unsigned i;

    for (i = 0; i != CR_HIST_NUM_BOUNDS + 1; ++i) {
        const char *le = i != CR_HIST_NUM_BOUNDS ? cr_hist_bound_text[i] : "+Inf";
        cr_metric_label_t l = {"le", cr_str(le, strlen(le))};
        cum += h->buckets[i];
        sample_head(m, name, "_bucket", labels, nlabels, &l);
        put_u64(m, cum);
    }
    sample_head(m, name, "_sum", labels, nlabels, NULL);
    put(m, sum, (size_t)snprintf(sum, sizeof(sum), "%llu.%06llu\n", (unsigned long long)(h->sum_us / 1000000),
                                 (unsigned long long)(h->sum_us % 1000000)));
    sample_head(m, name, "_count", labels, nlabels, NULL);
    put_u64(m, cum);
}
