/*
 * fuzz_purge.c: the admin API's JSON purge body (purge.c), and the error answer that may quote it.
 *
 * Input: the body as POSTed. Properties beyond "no crash" (and no leak: LeakSanitizer runs with every target):
 *  - CR_OK, CR_DECLINED or CR_ERROR only; on failure the request is left zeroed and err is one line;
 *  - an accepted request holds 1..CR_PURGE_MAX_ENTRIES entries, every one non-empty, without control bytes, tags
 *    also without spaces or commas;
 *  - the error message, put in {"error": ...}, is valid JSON that cr_purge_parse reads as JSON (it then refuses it
 *    for its unknown field, not as invalid JSON).
 */
#include "fuzz_util.h"

#include "corral/admin/purgejson.h"

static void check_entries(char **v, size_t n, int is_tag)
{
    size_t i, j;
    for (i = 0; i != n; ++i) {
        FZ_CHECK(v[i] != NULL && v[i][0] != '\0');
        for (j = 0; v[i][j] != '\0'; ++j) {
            unsigned char c = (unsigned char)v[i][j];
            FZ_CHECK(c >= 0x20 && c != 0x7f);
            if (is_tag)
                FZ_CHECK(c != ' ' && c != ',');
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_purge_request_t req, zero;
    char err[512], json[2048];
    int r;

    memset(&zero, 0, sizeof(zero));
    err[0] = '\0';
    r = cr_purge_parse((const char *)data, size, &req, err, sizeof(err));
    FZ_CHECK(r == CR_OK || r == CR_DECLINED || r == CR_ERROR);
    if (r == CR_OK) {
        size_t n = req.num_keys + req.num_prefixes + req.num_tags;
        FZ_CHECK(n >= 1 && n <= CR_PURGE_MAX_ENTRIES);
        FZ_CHECK(req.soft == 0 || req.soft == 1);
        check_entries(req.keys, req.num_keys, 0);
        check_entries(req.prefixes, req.num_prefixes, 0);
        check_entries(req.tags, req.num_tags, 1);
        cr_purge_request_free(&req);
        FZ_CHECK(memcmp(&req, &zero, sizeof(req)) == 0);
    } else {
        int n;
        FZ_CHECK(memcmp(&req, &zero, sizeof(req)) == 0);
        FZ_CHECK(strlen(err) < sizeof(err) && strchr(err, '\n') == NULL);
        n = cr_purge_error_json(err, json, sizeof(json));
        if (n >= 0) {
            cr_purge_request_t again;
            char err2[512];
            FZ_CHECK((size_t)n == strlen(json));
            FZ_CHECK(cr_purge_parse(json, (size_t)n, &again, err2, sizeof(err2)) == CR_DECLINED);
            FZ_CHECK(strncmp(err2, "invalid JSON", 12) != 0);
        }
    }
    return 0;
}
