/*
 * status_page.c: GET / on the admin listener (status_page.h): sends sidecar/admin/status_page.html, which the
 * assembler embeds into the binary (.incbin) when this file is compiled, so the page is edited as HTML and the
 * binary needs no file at run time. The path is relative to the directory the compiler runs in: the repository root,
 * as the Makefile (and tests/fuzz/fuzz.mk) build; the Makefile also rebuilds this object when the page changes.
 *
 * Invariants: the page is constant and public (it holds no figure; its script reads /v1/stats with the token). It is
 * sent with a Content-Security-Policy that allows only its own inline script and style and fetches to its own
 * origin, so no external asset can load, and no frame may embed it. Runs on the admin thread; no state, no locks.
 */
#include "corral/admin/status_page.h"

#include "corral/http/json_error.h"
#include "admin_internal.h"

__asm__(".section .rodata\n"
        ".global cr_status_page_html\n"
        ".type cr_status_page_html, @object\n"
        ".balign 16\n"
        "cr_status_page_html:\n"
        ".incbin \"sidecar/admin/status_page.html\"\n"
        "cr_status_page_html_end:\n"
        ".byte 0\n"
        ".global cr_status_page_html_size\n"
        ".type cr_status_page_html_size, @object\n"
        ".balign 8\n"
        "cr_status_page_html_size:\n"
        ".quad cr_status_page_html_end - cr_status_page_html\n"
        ".previous\n");

extern const uint64_t cr_status_page_html_size;

size_t cr_status_page_len(void)
{
    return (size_t)cr_status_page_html_size;
}

#define CR_STATUS_PAGE_CSP                                                                                             \
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "  \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

void cr_admin_handle_status_page(h2o_req_t *req)
{
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        cr_send_json_error(req, 405, "Method Not Allowed", "method_not_allowed", "use GET");
        return;
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                          H2O_STRLIT(CR_STATUS_PAGE_CSP));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL, H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL, H2O_STRLIT("no-referrer"));
    cr_admin_send_text(req, "text/html; charset=utf-8", (char *)cr_status_page_html, cr_status_page_len());
}
