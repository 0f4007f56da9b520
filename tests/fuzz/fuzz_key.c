/*
 * fuzz_key.c: cache-key and path normalization (http/key.c, core/urlpath.c): cr_key_build with each key.query rule,
 * key headers and a `cookies: [names]` list, cr_key_normalize_path, cr_urlpath_match_form and cr_key_cookie_filter.
 *
 * Input: one byte choosing the route, then "authority\npath?query\naccept-language\ncookie" (split on '\n', which no
 * valid field can hold). Properties beyond "no crash":
 *  - every result is NUL-terminated at the length returned;
 *  - normalization is idempotent: the key's own "path?query" and authority give the same key again; a normalized
 *    path normalizes to itself; an unambiguous match form is its own match form (an ambiguous one, e.g. from
 *    "%4%42", need not be: callers never cache it);
 *  - a match form starts with '/', has no empty segment, no trailing '/' (but the root), no ';' and no backslash;
 *  - a key holds exactly 1 + (key headers) + (1 with a cookie list) '\n' (one cannot be forged through a value);
 *  - the cookie filter is idempotent.
 */
#include "fuzz_util.h"

#include "corral/conf/config.h"
#include "corral/core/urlpath.h"
#include "corral/http/key.h"

static char *query_names[] = {"limit", "page"}; /* sorted, as the config leaves them */
static char *key_headers[] = {"accept-language"};
static char *cookie_names[] = {"session", "lang"};

typedef struct st_fz_headers_t {
    cr_str_t accept_language, cookie;
} fz_headers_t;

static int lookup(void *ctx, const char *lname, size_t lnamelen, cr_str_t *value)
{
    fz_headers_t *h = ctx;
    cr_str_t *v = NULL;
    if (lnamelen == 15 && memcmp(lname, "accept-language", 15) == 0)
        v = &h->accept_language;
    else if (lnamelen == 6 && memcmp(lname, "cookie", 6) == 0)
        v = &h->cookie;
    if (v == NULL || v->base == NULL)
        return 0;
    *value = *v;
    return 1;
}

static void route_for(unsigned sel, cr_route_config_t *r)
{
    memset(r, 0, sizeof(*r));
    r->key_query = (cr_key_query_mode_t[]){CR_KEY_QUERY_ALL, CR_KEY_QUERY_NONE, CR_KEY_QUERY_LIST}[sel % 3];
    if (r->key_query == CR_KEY_QUERY_LIST) {
        r->key_query_names = query_names;
        r->num_key_query_names = CR_ARRAY_SIZE(query_names);
    }
    if (sel & 4) {
        r->key_headers = key_headers;
        r->num_key_headers = 1;
    }
    if (sel & 8) {
        r->cookies = CR_COOKIES_LIST;
        r->cookie_names = cookie_names;
        r->num_cookie_names = CR_ARRAY_SIZE(cookie_names);
    }
}

static void check_match_path(cr_str_t path)
{
    static char a[4096], b[4096];
    int amb1, amb2, n1, n2, i;

    n1 = cr_urlpath_match_form(path, a, sizeof(a), &amb1);
    if (n1 < 0)
        return;
    FZ_CHECK(a[n1] == '\0' && strlen(a) == (size_t)n1);
    FZ_CHECK(n1 >= 1 && a[0] == '/');
    FZ_CHECK(n1 == 1 || a[n1 - 1] != '/');
    for (i = 0; i != n1; ++i) {
        FZ_CHECK(a[i] != ';' && a[i] != '\\');
        FZ_CHECK(!(a[i] == '/' && i + 1 < n1 && a[i + 1] == '/'));
    }
    if (amb1)
        return; /* an ambiguous path ("%4%42" gives "%4B") need not be stable: it is never cached */
    n2 = cr_urlpath_match_form(cr_str(a, (size_t)n1), b, sizeof(b), &amb2);
    FZ_CHECK(n2 == n1 && memcmp(a, b, (size_t)n1) == 0 && !amb2);
}

static void check_normalize_path(cr_str_t path)
{
    static char a[4096], b[4096];
    int n1 = cr_key_normalize_path(path, a, sizeof(a)), n2;
    if (n1 < 0)
        return;
    FZ_CHECK(a[n1] == '\0' && strlen(a) == (size_t)n1 && a[0] == '/');
    n2 = cr_key_normalize_path(cr_str(a, (size_t)n1), b, sizeof(b));
    FZ_CHECK(n2 == n1 && memcmp(a, b, (size_t)n1) == 0);
    /* with a query, cr_key_normalize_uri_path drops it first: the same result */
    n2 = cr_key_normalize_uri_path(path, b, sizeof(b));
    FZ_CHECK(n2 == n1 && memcmp(a, b, (size_t)n1) == 0);
}

static void check_key(const cr_route_config_t *r, cr_str_t authority, cr_str_t pq, fz_headers_t *h)
{
    static char a[16384], b[16384];
    int n1 = cr_key_build(r, authority, 80, pq, lookup, h, a, sizeof(a)), n2, i, newlines = 0;
    const char *nl1, *nl2;
    if (n1 < 0)
        return;
    FZ_CHECK(a[n1] == '\0' && strlen(a) == (size_t)n1);
    for (i = 0; i != n1; ++i)
        newlines += a[i] == '\n';
    FZ_CHECK(newlines == 1 + (int)r->num_key_headers + (r->cookies == CR_COOKIES_LIST));
    /* the key's authority and "path?query", built again, give the same key */
    nl1 = memchr(a, '\n', (size_t)n1);
    nl2 = memchr(nl1 + 1, '\n', (size_t)(a + n1 - (nl1 + 1)));
    if (nl2 == NULL)
        nl2 = a + n1;
    n2 = cr_key_build(r, cr_str(a, (size_t)(nl1 - a)), 80, cr_str(nl1 + 1, (size_t)(nl2 - (nl1 + 1))), lookup, h, b, sizeof(b));
    FZ_CHECK(n2 == n1 && memcmp(a, b, (size_t)n1) == 0);
}

static void check_cookie_filter(const cr_route_config_t *r, cr_str_t cookie)
{
    static char a[8192], b[8192];
    size_t n1, n2;
    if (r->cookies != CR_COOKIES_LIST || cookie.base == NULL)
        return;
    n1 = cr_key_cookie_filter(r, cookie, a, sizeof(a));
    if (n1 == SIZE_MAX)
        return;
    FZ_CHECK(n1 <= sizeof(a));
    n2 = cr_key_cookie_filter(r, cr_str(a, n1), b, sizeof(b));
    FZ_CHECK(n2 == n1 && memcmp(a, b, n1) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input_t in = {data, size};
    cr_route_config_t route;
    fz_headers_t h;
    cr_str_t authority, pq;

    route_for(fz_byte(&in), &route);
    authority = fz_next(&in, "\n");
    pq = fz_next(&in, "\n");
    h.accept_language = in.len != 0 ? fz_next(&in, "\n") : cr_str(NULL, 0);
    h.cookie = in.len != 0 ? fz_next(&in, "\n") : cr_str(NULL, 0);

    check_match_path(pq);
    check_normalize_path(pq);
    check_key(&route, authority, pq, &h);
    check_cookie_filter(&route, h.cookie);
    return 0;
}
