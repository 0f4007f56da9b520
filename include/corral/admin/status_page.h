/*
 * status_page.h: GET / on the admin listener, the live status page (status_page.c; the page itself is
 * sidecar/admin/status_page.html, embedded at build time).
 *
 * The page is public and static: it holds no figure, only the script that reads GET /v1/stats (stats_json.h), which
 * needs the token like every other /v1 path. A browser cannot send a bearer header on a plain navigation, so the
 * script takes the token from the URL fragment (/#token=..., which browsers never send to a server) or from a form
 * it shows after a 401. Without a configured token /v1/stats serves loopback clients only, as the rest of the API.
 */
#ifndef CORRAL_ADMIN_STATUS_PAGE_H
#define CORRAL_ADMIN_STATUS_PAGE_H

#include <h2o.h>

/* The page's bytes (not NUL-terminated) and their number. */
extern const char cr_status_page_html[];
size_t cr_status_page_len(void);

/* GET /: 200 with the page (text/html, no-store, a Content-Security-Policy that allows nothing from elsewhere); any
 * other method 405. */
void cr_admin_handle_status_page(h2o_req_t *req);

#endif
