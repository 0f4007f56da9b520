/*
 * h1_interpose.c: puts corral's strict HTTP/1.1 parsers in place of the lenient picohttpparser that libh2o 2.2.5
 * bundles, by symbol interposition.
 *
 * Mechanism: libh2o-evloop.so exports phr_parse_request, phr_parse_response, phr_parse_headers, phr_decode_chunked
 * and phr_decode_chunked_is_in_data with default visibility and calls them from its own code through its PLT
 * (`objdump -d libh2o-evloop.so | grep 'phr_.*@plt'` lists the calls in http1.c, http1client.c and fastcgi.c). The
 * dynamic linker binds a PLT call to the first definition in the lookup scope, and the executable comes first, so
 * the definitions below, linked into the corral binary (and exported from it: the linker exports an executable's
 * symbol that a shared library in the link also defines), are the ones libh2o runs. Precondition: the library keeps
 * calling these functions through the PLT (built without -Bsymbolic, protected visibility or LTO inlining of them);
 * a libh2o built otherwise would silently keep its own parser, which is why main.c calls cr_h1_interpose_active()
 * at start-up and refuses to start unless every name resolves to this file's function.
 *
 * The functions keep picohttpparser 2.2.5's ABI exactly (struct phr_header is cr_h1_field_t; struct
 * phr_chunked_decoder is cr_chunked_t, same size and consume_trailer offset) and its contract: > 0 bytes of head,
 * -2 incomplete, -1 malformed (libh2o's http1.c then answers 400 with "Connection: close" and closes; its
 * http1client fails the response before acting on any header). A malformed request head is logged once (a warning
 * with the reason and the first bytes of the head; log.c escapes control bytes), except the HTTP/2 connection
 * preface, which libh2o takes over after the -1.
 *
 * No state: the parsers are pure; thread-safe.
 */
#include "corral/h1_interpose.h"

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#include "corral/chunked.h"
#include "corral/h1_request.h"
#include "corral/log.h"

/* picohttpparser.h (not installed by Debian's libh2o-evloop-dev), as libh2o 2.2.5 was compiled with it */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};

_Static_assert(sizeof(struct phr_header) == sizeof(cr_h1_field_t), "phr_header layout");
_Static_assert(offsetof(struct phr_header, name_len) == offsetof(cr_h1_field_t, name_len), "phr_header layout");
_Static_assert(offsetof(struct phr_header, value) == offsetof(cr_h1_field_t, value), "phr_header layout");
_Static_assert(offsetof(struct phr_header, value_len) == offsetof(cr_h1_field_t, value_len), "phr_header layout");
_Static_assert(sizeof(struct phr_chunked_decoder) == sizeof(cr_chunked_t), "phr_chunked_decoder size");
_Static_assert(offsetof(struct phr_chunked_decoder, consume_trailer) == offsetof(cr_chunked_t, consume_trailer),
               "phr_chunked_decoder consume_trailer");

/* the prototypes, exactly as picohttpparser.h declares them */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);
int phr_parse_response(const char *_buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);
int phr_parse_headers(const char *buf, size_t len, struct phr_header *headers, size_t *num_headers, size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);
int phr_decode_chunked_is_in_data(struct phr_chunked_decoder *decoder);

#define CR_H1_LOG_EXCERPT 96

/* libh2o answers these -1s without a 400 (http1.c handle_incoming_request): the HTTP/2 preface and a few CR/LF */
static int is_quiet_reject(const char *buf, size_t len)
{
    size_t i;
    if (len >= 12 && memcmp(buf, "PRI * HTTP/2", 12) == 0)
        return 1;
    if (len > 4)
        return 0;
    for (i = 0; i != len; ++i)
        if (buf[i] != '\r' && buf[i] != '\n')
            return 0;
    return 1;
}

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len)
{
    cr_h1_request_t req;
    const char *error = NULL;
    int r = cr_h1_parse_request(buf, len, &req, (cr_h1_field_t *)headers, num_headers, last_len, &error);

    *method = req.method;
    *method_len = req.method_len;
    *path = req.target;
    *path_len = req.target_len;
    *minor_version = req.minor_version;
    if (r == -1 && !is_quiet_reject(buf, len))
        cr_log_warn("client request rejected (400): %s: \"%.*s\"", error != NULL ? error : "malformed",
                    (int)(len < CR_H1_LOG_EXCERPT ? len : CR_H1_LOG_EXCERPT), buf);
    return r;
}

int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len)
{
    return cr_h1_parse_response(buf, len, minor_version, status, msg, msg_len, (cr_h1_field_t *)headers, num_headers, last_len,
                                NULL);
}

int phr_parse_headers(const char *buf, size_t len, struct phr_header *headers, size_t *num_headers, size_t last_len)
{
    return cr_h1_parse_fields(buf, len, (cr_h1_field_t *)headers, num_headers, last_len, NULL);
}

ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz)
{
    return cr_chunked_decode((cr_chunked_t *)decoder, buf, bufsz);
}

int phr_decode_chunked_is_in_data(struct phr_chunked_decoder *decoder)
{
    return cr_chunked_in_data((const cr_chunked_t *)decoder);
}

const char *cr_h1_interpose_active(void)
{
    static const struct {
        const char *name;
        void *ours;
    } fns[] = {{"phr_parse_request", (void *)phr_parse_request},
               {"phr_parse_response", (void *)phr_parse_response},
               {"phr_parse_headers", (void *)phr_parse_headers},
               {"phr_decode_chunked", (void *)phr_decode_chunked},
               {"phr_decode_chunked_is_in_data", (void *)phr_decode_chunked_is_in_data}};
    size_t i;
    for (i = 0; i != sizeof(fns) / sizeof(fns[0]); ++i)
        if (dlsym(RTLD_DEFAULT, fns[i].name) != fns[i].ours)
            return fns[i].name;
    return NULL;
}
