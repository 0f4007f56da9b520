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
 * at start-up and refuses to start unless, for every name, dlsym(RTLD_DEFAULT) finds this file's function AND
 * libh2o-evloop has a dynamic relocation (PLT or GOT slot) naming it, already bound to this file's function when
 * the library is linked BIND_NOW as Debian's is (read with dl_iterate_phdr from its dynamic section). A -Bsymbolic
 * build, which a dlsym check alone would not reveal, has no such relocation.
 *
 * The functions keep picohttpparser 2.2.5's ABI exactly (struct phr_header is cr_h1_field_t; struct
 * phr_chunked_decoder is cr_chunked_t, same size and consume_trailer offset) and its contract: > 0 bytes of head,
 * -2 incomplete, -1 malformed (libh2o's http1.c then answers 400 with "Connection: close" and closes).
 * phr_parse_response always answers -1: only libh2o's http1client calls it, and corral does not use that client. A malformed request head is logged once (a warning
 * with the reason and the request line, never the fields, which may carry credentials; log.c escapes control
 * bytes), except the HTTP/2 connection preface, which libh2o takes over after the -1.
 *
 * The start-up check also covers h2o_hpack_parse_headers, which hpack_bound.c interposes the same way (the HTTP/2
 * header-list bound).
 *
 * No state: the parsers are pure; thread-safe.
 */
#include "corral/http/h1_interpose.h"

#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#include "corral/http/chunked.h"
#include "corral/http/h1_request.h"
#include "corral/http/hpack_bound.h"
#include "corral/core/log.h"

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
    if (r == -1 && !is_quiet_reject(buf, len)) {
        /* the request line only: the fields may carry credentials (Authorization, Cookie) */
        size_t n = 0;
        while (n != len && n != CR_H1_LOG_EXCERPT && buf[n] != '\n')
            ++n;
        cr_log_warn("client request rejected (400): %s: \"%.*s\"", error != NULL ? error : "malformed", (int)n, buf);
    }
    return r;
}

/* corral reads upstream responses with its own client (upstream.c, h1_response.c); nothing in corral uses libh2o's
 * http1client, whose only parser this is. Should anything ever reach it, no response is taken: fail closed. */
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len)
{
    *num_headers = 0;
    return -1;
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

/* ---- the start-up self-check ---- */

typedef struct st_cr_interpose_scan_t {
    const char *const *names;
    void *const *ours;
    size_t num;
    unsigned relocated; /* bit i: libh2o has a dynamic relocation naming names[i] */
    unsigned bound;     /* bit i: and its slot already holds ours (BIND_NOW, as Debian links libh2o) */
    int seen;           /* libh2o-evloop was found among the loaded objects */
    int unverifiable;   /* its relocations could not be read: rely on the dlsym check alone */
    int bind_now;       /* libh2o is linked with BIND_NOW: every slot is bound before main() */
} cr_interpose_scan_t;

#if __ELF_NATIVE_CLASS == 64
#define CR_R_SYM(info) ELF64_R_SYM(info)
#else
#define CR_R_SYM(info) ELF32_R_SYM(info)
#endif

static uintptr_t dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) p)
{
    /* glibc relocates the dynamic section's pointers in place; other loaders may leave them relative */
    return p < info->dlpi_addr ? (uintptr_t)(info->dlpi_addr + p) : (uintptr_t)p;
}

/* dl_iterate_phdr callback: in libh2o, finds the relocations (PLT or GOT) that name each phr_* function. */
static int scan_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    cr_interpose_scan_t *scan = arg;
    const ElfW(Dyn) *dyn = NULL;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Rela) *tables[2] = {NULL, NULL};
    size_t sizes[2] = {0, 0}, t, i, k;
    int i_phdr;

    if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libh2o") == NULL)
        return 0;
    scan->seen = 1;
    for (i_phdr = 0; i_phdr != info->dlpi_phnum; ++i_phdr)
        if (info->dlpi_phdr[i_phdr].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i_phdr].p_vaddr);
    if (dyn == NULL)
        return 0;
    for (; dyn->d_tag != DT_NULL; ++dyn) {
        switch (dyn->d_tag) {
        case DT_SYMTAB:
            symtab = (const ElfW(Sym) *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_STRTAB:
            strtab = (const char *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_JMPREL:
            tables[0] = (const ElfW(Rela) *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_PLTRELSZ:
            sizes[0] = dyn->d_un.d_val;
            break;
        case DT_RELA:
            tables[1] = (const ElfW(Rela) *)dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_RELASZ:
            sizes[1] = dyn->d_un.d_val;
            break;
        case DT_FLAGS:
            if ((dyn->d_un.d_val & DF_BIND_NOW) != 0)
                scan->bind_now = 1;
            break;
        case DT_FLAGS_1:
            if ((dyn->d_un.d_val & DF_1_NOW) != 0)
                scan->bind_now = 1;
            break;
        case DT_PLTREL:
            if (dyn->d_un.d_val != DT_RELA)
                scan->unverifiable = 1; /* REL relocations (i386, arm): only the dlsym check applies */
            break;
        default:
            break;
        }
    }
    if (symtab == NULL || strtab == NULL || scan->unverifiable) {
        scan->unverifiable = 1;
        return 0;
    }
    for (t = 0; t != 2; ++t) {
        for (i = 0; tables[t] != NULL && i != sizes[t] / sizeof(ElfW(Rela)); ++i) {
            const ElfW(Rela) *r = tables[t] + i;
            const char *name = strtab + symtab[CR_R_SYM(r->r_info)].st_name;
            if (CR_R_SYM(r->r_info) == 0)
                continue;
            for (k = 0; k != scan->num; ++k) {
                if (strcmp(name, scan->names[k]) != 0)
                    continue;
                scan->relocated |= 1u << k;
                if (*(void *const *)(info->dlpi_addr + r->r_offset) == scan->ours[k])
                    scan->bound |= 1u << k;
            }
        }
    }
    return 0;
}

const char *cr_h1_interpose_active(void)
{
    /* h2o_hpack_parse_headers is hpack_bound.c's (the HTTP/2 header-list bound), interposed the same way */
    static const char *const names[] = {"phr_parse_request", "phr_parse_response", "phr_parse_headers", "phr_decode_chunked",
                                        "phr_decode_chunked_is_in_data", "h2o_hpack_parse_headers"};
    void *const ours[] = {(void *)phr_parse_request, (void *)phr_parse_response, (void *)phr_parse_headers,
                          (void *)phr_decode_chunked, (void *)phr_decode_chunked_is_in_data, (void *)h2o_hpack_parse_headers};
    cr_interpose_scan_t scan = {names, ours, sizeof(names) / sizeof(names[0]), 0, 0, 0, 0, 0};
    size_t i;

    dl_iterate_phdr(scan_object, &scan);
    for (i = 0; i != scan.num; ++i) {
        /* the name must resolve to ours, and libh2o must reach it through a dynamic relocation (a PLT or GOT slot:
         * a -Bsymbolic or protected-visibility build binds its calls to its own copy, which no lookup shows) that
         * is bound to ours already or will be on first call (lazy binding) */
        if (dlsym(RTLD_DEFAULT, names[i]) != ours[i])
            return names[i];
        if (scan.seen && !scan.unverifiable && (scan.relocated & (1u << i)) == 0)
            return names[i];
        if (scan.seen && !scan.unverifiable && scan.bind_now && (scan.bound & (1u << i)) == 0)
            return names[i];
    }
    return NULL;
}
