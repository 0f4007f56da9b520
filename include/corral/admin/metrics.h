/*
 * metrics.h: the Prometheus text format (version 0.0.4) writer, into a growable buffer (admin/metrics_text.c), and
 * the /metrics body (admin/metrics.c, admin/metrics_process.c).
 *
 * The writer appends "# HELP"/"# TYPE" lines for a family and one line per sample; every name gets m->prefix,
 * "corral_" by default (the process_* series set it to ""). A sample takes an optional label set
 * (cr_metric_label_t[]): label values are escaped as the format says (backslash, double quote and newline as \\, \"
 * and \n), HELP texts likewise (backslash and newline). A histogram (core/histogram.h) is written as its cumulative
 * _bucket{le=...} samples, _sum in seconds and _count, after one family header of type histogram.
 *
 * Memory: the buffer starts small and doubles, so it holds at most twice what was written; there is no size limit
 * and no assert on size. When memory runs out the writer stops writing and sets `failed` (the caller answers 500).
 *
 * Invariants: a cr_metrics_t belongs to one thread; nothing here locks. cr_metrics_write_all reads other threads'
 * counters with relaxed loads only (cr_stats_sum, cr_reqstats_sum).
 */
#ifndef CORRAL_METRICS_H
#define CORRAL_METRICS_H

#include <h2o.h>
#include "corral/core/common.h"
#include "corral/core/histogram.h"
#include "corral/core/stats.h"

typedef struct st_cr_metric_label_t {
    const char *name; /* a label name: [a-zA-Z_][a-zA-Z0-9_]*, written as it is */
    cr_str_t value;   /* any bytes; escaped */
} cr_metric_label_t;

typedef struct st_cr_metrics_t {
    char *base; /* malloc'ed; NULL until the first write */
    size_t len, cap;
    int failed;         /* out of memory: the text is incomplete */
    const char *prefix; /* of every name written: "corral_" after cr_metrics_init (NULL also means that) */
} cr_metrics_t;

void cr_metrics_init(cr_metrics_t *m);
/* Frees the buffer; *m is empty again. */
void cr_metrics_dispose(cr_metrics_t *m);

/* "# HELP corral_<name> <help>\n# TYPE corral_<name> counter|gauge|histogram\n" */
void cr_metrics_family(cr_metrics_t *m, const char *name, cr_metric_type_t type, const char *help);
/* "corral_<name>{l1="v1",...} <value>\n" (no braces without labels). labels may be NULL when nlabels is 0. */
void cr_metrics_sample(cr_metrics_t *m, const char *name, const cr_metric_label_t *labels, size_t nlabels, uint64_t value);
/* The same with a floating-point value ("%.17g"). */
void cr_metrics_sample_double(cr_metrics_t *m, const char *name, const cr_metric_label_t *labels, size_t nlabels, double value);
/* A family with one unlabelled sample. */
void cr_metrics_single(cr_metrics_t *m, const char *name, cr_metric_type_t type, const char *help, uint64_t value);
void cr_metrics_single_double(cr_metrics_t *m, const char *name, cr_metric_type_t type, const char *help, double value);
/* One histogram's samples (after cr_metrics_family(..., CR_METRIC_HISTOGRAM, ...)): name_bucket{labels,le="..."}
 * cumulative for every bound and +Inf, name_sum{labels} in seconds, name_count{labels}. */
void cr_metrics_histogram(cr_metrics_t *m, const char *name, const cr_metric_label_t *labels, size_t nlabels, const cr_hist_t *h);

/* The process_* series (no corral_ prefix) from /proc/self: start time, CPU seconds, resident and virtual memory,
 * open and maximum file descriptors. A figure /proc cannot give is left out. admin/metrics_process.c. */
void cr_metrics_write_process(cr_metrics_t *m);

/* Every series of /metrics: the counter table (stats.h) summed over the threads, the labelled series
 * (core/reqstats.h), the process-wide series (connections, upstream, store, config, build), the shared tier's, and
 * the process_* ones. */
void cr_metrics_write_all(cr_metrics_t *m);

/* GET /metrics: writes cr_metrics_write_all into a buffer that the request's pool frees, and sends it (500 when
 * memory ran out). */
void cr_admin_send_metrics(h2o_req_t *req);

#endif
