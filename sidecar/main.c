/*
 * main.c: the command line (`corral -c FILE`, `corral -t -c FILE`, `--version`, `--help`) and start-up: the
 * interposed HTTP/1.1 parser's self-check (h1_interpose.h), the config, the checks -t shares with start-up
 * (config_check.h), then the server. Exit codes: 0 ok, 1 bad configuration or start-up failure, 2 bad usage.
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/conf/config.h"
#include "corral/conf/config_check.h"
#include "corral/http/h1_interpose.h"
#include "corral/http/hpack_bound.h"
#include "corral/core/hugepages.h"
#include "corral/core/log.h"
#include "corral/core/accesslog.h"
#include "corral/core/runtime.h"
#include "corral/core/stderr_interpose.h"

#define CR_MMAP_THRESHOLD (128 * 1024) /* glibc's own starting value, kept fixed */

static void usage(FILE *fp)
{
    fprintf(fp, "Usage: corral [-t] -c FILE\n"
                "       corral --version | --help\n\n"
                "  -c, --config FILE   the YAML configuration (default: conf/corral.yaml)\n"
                "  -t, --test          check the configuration and exit (0: valid, 1: invalid)\n"
                "  -v, --version       print the version and exit\n"
                "  -h, --help          print this help and exit\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"test", no_argument, NULL, 't'},
                                             {"version", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *path = "conf/corral.yaml";
    int test_only = 0, ch, ret;
    char *admin_token = NULL;
    char errbuf[1024];
    cr_config_t *cfg;

    cr_hugepages_reexec(argv); /* first: glibc reads its malloc settings only at start */
    /* A fixed mmap threshold: glibc otherwise raises it to the size of every large block freed (up to 32 MiB), so
     * after the first evicted large object, bodies of any size come from the arenas, whose freed middles are never
     * given back: a 64 MiB cache under churn held 230 MiB of RSS (make soak), 104-130 MiB with the threshold fixed.
     * Blocks of 128 KiB and more (large bodies, big buffers) are mapped on their own and unmapped when freed. */
    mallopt(M_MMAP_THRESHOLD, CR_MMAP_THRESHOLD);

    while ((ch = getopt_long(argc, argv, "c:tvh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'v':
            printf("corral %s (libh2o %s)\n", CR_VERSION, H2O_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    {
        /* libh2o must parse HTTP/1.1 with corral's strict parser (h1_interpose.c), or framing attacks get through */
        const char *lenient = cr_h1_interpose_active();
        if (lenient != NULL) {
            fprintf(stderr, "corral: libh2o's calls of %s do not reach corral's own (the strict HTTP/1.1 parser, the HPACK bound; a libh2o linked "
                            "with -Bsymbolic or without PLT calls?); refusing to start\n", lenient);
            return 1;
        }
    }
    if (!cr_stderr_interpose_active()) /* libh2o's own stderr lines then bypass the log's rate limit */
        cr_log_warn("libh2o's writes to stderr do not reach corral's log: they are not rate-limited");
    if ((cfg = cr_config_load(path, errbuf, sizeof(errbuf))) == NULL) {
        fprintf(stderr, "%s\n", errbuf);
        if (test_only)
            fprintf(stderr, "corral: configuration file %s test failed\n", path);
        return 1;
    }
    cr_hpack_bound_set_limit(cfg->limits.request_headers);
    /* what start-up needs from files and the environment: -t checks the same, with the same messages */
    if (cr_config_check(cfg, test_only ? NULL : &admin_token, errbuf, sizeof(errbuf)) != 0) {
        fprintf(stderr, "%s\n", errbuf);
        if (test_only)
            fprintf(stderr, "corral: configuration file %s test failed\n", path);
        cr_config_free(&cfg);
        return 1;
    }
    /* the access log's destination is opened here, once (log.access is restart-only); -t opens it too, as nginx -t
     * does, so a path that cannot be written fails the check (a file that did not exist is created) */
    if (cr_accesslog_open(cfg->log.access, errbuf, sizeof(errbuf)) != 0) {
        fprintf(stderr, "%s:%u:%u: %s\n", cfg->path, cfg->log.access_pos.line ? cfg->log.access_pos.line : 1,
                cfg->log.access_pos.col ? cfg->log.access_pos.col : 1, errbuf);
        if (test_only)
            fprintf(stderr, "corral: configuration file %s test failed\n", path);
        free(admin_token);
        cr_config_free(&cfg);
        return 1;
    }
    cr_log_set_level((cr_log_level_t)cfg->log.level);
    if (test_only) {
        fprintf(stderr, "corral: configuration file %s test is successful\n", path);
        cr_config_free(&cfg);
        return 0;
    }
    cr_rt.admin_token = admin_token;
    ret = cr_server_run(cfg);
    {
        const cr_config_t *first = cfg; /* a reload may have replaced it: this was its last reference */
        cr_config_release(&first);
    }
    return ret;
}
