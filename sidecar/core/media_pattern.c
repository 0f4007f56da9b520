/*
 * media_pattern.c: the syntax of a media-type pattern (cr_media_pattern_check, media_pattern.h). One copy, used by
 * the config loader to reject a bad compress.types entry and by http/negotiate.c's matcher's tests.
 * Pure string code: no state, no locks.
 */
#include "corral/core/media_pattern.h"

#include <string.h>

#include "corral/core/common.h"

/* Whether [s, end) is a non-empty run of tchars without '*'; `allow_plus` admits '+' (as in "svg+xml"). */
static int plain_token(const char *s, const char *end, int allow_plus)
{
    if (s == end)
        return 0;
    for (; s != end; ++s)
        if (!cr_is_tchar((unsigned char)*s) || *s == '*' || (!allow_plus && *s == '+'))
            return 0;
    return 1;
}

const char *cr_media_pattern_check(const char *pat)
{
    static const char why[] = "expected a media type like application/json, text/* or */*+json";
    const char *slash, *end = pat + strlen(pat);

    if (pat[0] == '+')
        return plain_token(pat + 1, end, 0) ? NULL : why;
    if ((slash = strchr(pat, '/')) == NULL)
        return why;
    if (slash - pat == 1 && pat[0] == '*') {
        /* any type: only with a suffix */
        return slash[1] == '*' && slash[2] == '+' && plain_token(slash + 3, end, 0) ? NULL : why;
    }
    if (!plain_token(pat, slash, 1))
        return why;
    if (slash[1] == '*') {
        if (slash[2] == '\0')
            return NULL;
        return slash[2] == '+' && plain_token(slash + 3, end, 0) ? NULL : why;
    }
    return plain_token(slash + 1, end, 1) ? NULL : why;
}
