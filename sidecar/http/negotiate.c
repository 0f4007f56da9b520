/*
 * negotiate.c: what reads and writes codings in header values: the codings' names (Content-Encoding), Accept-Encoding
 * negotiation (RFC 9110 12.5.3) and compressible media type matching (a route's compress.types). Declared in
 * include/corral/http/encoding.h, beside the codecs of encoding.c, which these only name.
 *
 * Invariants: pure functions of their arguments; no allocation, no h2o; thread-safe. The one state is a per-thread
 * memo of the last Accept-Encoding value parsed (parse_accept_encoding), which changes no result, only its cost.
 */
#include "corral/http/encoding.h"

#include <string.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* ---- names ---- */

cr_str_t cr_encoding_name(cr_encoding_t enc)
{
    switch (enc) {
    case CR_ENC_IDENTITY:
        return CR_STR("identity");
    case CR_ENC_GZIP:
        return CR_STR("gzip");
    case CR_ENC_BR:
        return CR_STR("br");
    default:
        return CR_STR("");
    }
}

int cr_encoding_parse(cr_str_t content_encoding)
{
    cr_str_t v;
    if (content_encoding.base == NULL)
        return CR_ENC_IDENTITY;
    v = cr_str_trim_ows(content_encoding);
    if (v.len == 0 || cr_str_ieq(v, "identity", 8))
        return CR_ENC_IDENTITY;
    if (cr_str_ieq(v, "gzip", 4) || cr_str_ieq(v, "x-gzip", 6))
        return CR_ENC_GZIP;
    if (cr_str_ieq(v, "br", 2))
        return CR_ENC_BR;
    return -1;
}

/* ---- Accept-Encoding negotiation ---- */

/* Slots of the parsed header; a coding corral does not make maps to NEG_OTHER. */
enum { NEG_IDENTITY = CR_ENC_IDENTITY, NEG_GZIP = CR_ENC_GZIP, NEG_BR = CR_ENC_BR, NEG_STAR, NEG_SLOTS, NEG_OTHER = -1 };

/* "0", "0.", "0.5", "0.125", "1", "1.", "1.000" -> thousandths. Returns 0, or -1 when malformed. */
static int parse_qvalue(cr_str_t s, int *q)
{
    size_t i;
    int v = 0, scale = 100;

    if (s.len == 0 || (s.base[0] != '0' && s.base[0] != '1'))
        return -1;
    if (s.len > 1 && (s.base[1] != '.' || s.len > 5))
        return -1;
    for (i = 2; i < s.len; ++i) {
        if (s.base[i] < '0' || s.base[i] > '9' || (s.base[0] == '1' && s.base[i] != '0'))
            return -1;
        v += (s.base[i] - '0') * scale;
        scale /= 10;
    }
    *q = s.base[0] == '1' ? 1000 : v;
    return 0;
}

/*
 * One list member `coding [ OWS ";" OWS "q=" qvalue ]` (already trimmed of OWS). Sets *slot (NEG_OTHER for codings
 * corral ignores) and *q in thousandths. Returns 0, or -1 when the member is malformed (then it is ignored).
 */
static int parse_member(cr_str_t m, int *slot, int *q)
{
    cr_str_t coding, w;
    size_t i = 0;

    while (i != m.len && cr_is_tchar((unsigned char)m.base[i]))
        ++i;
    if (i == 0)
        return -1;
    coding = cr_str(m.base, i);
    w = cr_str_trim_ows(cr_str(m.base + i, m.len - i));
    if (w.len == 0) {
        *q = 1000;
    } else {
        if (w.base[0] != ';')
            return -1;
        w = cr_str_trim_ows(cr_str(w.base + 1, w.len - 1));
        if (w.len < 2 || lower(w.base[0]) != 'q' || w.base[1] != '=')
            return -1;
        if (parse_qvalue(cr_str(w.base + 2, w.len - 2), q) != 0)
            return -1;
    }
    if (cr_str_ieq(coding, "br", 2))
        *slot = NEG_BR;
    else if (cr_str_ieq(coding, "gzip", 4) || cr_str_ieq(coding, "x-gzip", 6))
        *slot = NEG_GZIP;
    else if (cr_str_ieq(coding, "identity", 8))
        *slot = NEG_IDENTITY;
    else if (cr_str_eq(coding, "*", 1))
        *slot = NEG_STAR;
    else
        *slot = NEG_OTHER;
    return 0;
}

/* The last Accept-Encoding value parsed on this thread and its slots: a client sends the same value on every
 * request, so a repeat costs one comparison. A longer value than this is parsed each time. */
#define CR_NEG_MEMO_BYTES 96
static __thread struct {
    int valid;
    size_t len;
    int listed[NEG_SLOTS];
    char value[CR_NEG_MEMO_BYTES];
} memo;

/* listed[s] for each slot: q in thousandths of the first well-formed member naming it, -1 when none does. */
static void parse_accept_encoding(cr_str_t accept_encoding, int listed[NEG_SLOTS])
{
    const char *p = accept_encoding.base, *end = p + accept_encoding.len;
    int slot, q, i;

    if (memo.valid && memo.len == accept_encoding.len && memcmp(memo.value, accept_encoding.base, memo.len) == 0) {
        memcpy(listed, memo.listed, sizeof(memo.listed));
        return;
    }
    for (i = 0; i != NEG_SLOTS; ++i)
        listed[i] = -1;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *mend = comma != NULL ? comma : end;
        cr_str_t m = cr_str_trim_ows(cr_str(p, (size_t)(mend - p)));
        if (m.len != 0 && parse_member(m, &slot, &q) == 0 && slot != NEG_OTHER && listed[slot] < 0)
            listed[slot] = q;
        p = comma != NULL ? comma + 1 : end;
    }
    if (accept_encoding.len <= sizeof(memo.value)) {
        memo.valid = 1;
        memo.len = accept_encoding.len;
        memcpy(memo.value, accept_encoding.base, accept_encoding.len);
        memcpy(memo.listed, listed, sizeof(memo.listed));
    }
}

int cr_accept_encoding_refuses(cr_str_t accept_encoding, cr_encoding_t enc)
{
    int listed[NEG_SLOTS];

    if (accept_encoding.base == NULL || (unsigned)enc >= CR_ENC_MAX)
        return 0;
    parse_accept_encoding(accept_encoding, listed);
    return listed[enc] == 0 || (listed[enc] < 0 && listed[NEG_STAR] == 0);
}

int cr_negotiate_encoding(cr_str_t accept_encoding, unsigned available)
{
    /* listed[s]: q in thousandths of the first well-formed member for slot s, -1 when not listed */
    int listed[NEG_SLOTS];
    /* rank[e]: -1 not acceptable; 0 identity implicitly acceptable (least preferred); 1..1000 the q */
    int rank[CR_ENC_MAX];
    static const cr_encoding_t preference[] = {CR_ENC_BR, CR_ENC_GZIP}; /* then identity */
    int best = -1, best_rank = -1;
    size_t i;

    if (accept_encoding.base == NULL)
        return CR_ENC_IDENTITY;
    parse_accept_encoding(accept_encoding, listed);

    for (i = 0; i != CR_ARRAY_SIZE(preference); ++i) {
        int s = (int)preference[i], eff = listed[s] >= 0 ? listed[s] : listed[NEG_STAR] >= 0 ? listed[NEG_STAR] : 0;
        rank[s] = eff > 0 ? eff : -1;
    }
    if (listed[NEG_IDENTITY] >= 0)
        rank[CR_ENC_IDENTITY] = listed[NEG_IDENTITY] > 0 ? listed[NEG_IDENTITY] : -1;
    else if (listed[NEG_STAR] >= 0)
        rank[CR_ENC_IDENTITY] = listed[NEG_STAR] > 0 ? listed[NEG_STAR] : -1;
    else
        rank[CR_ENC_IDENTITY] = 0;

    if ((available & CR_ENC_BIT(CR_ENC_IDENTITY)) == 0) {
        /* held only in other codings: any acceptable one beats decoding on the fly */
        for (i = 0; i != CR_ARRAY_SIZE(preference); ++i) {
            cr_encoding_t e = preference[i];
            if ((available & CR_ENC_BIT(e)) != 0 && rank[e] > 0 && rank[e] > best_rank) {
                best = (int)e;
                best_rank = rank[e];
            }
        }
        if (best >= 0)
            return best;
        return rank[CR_ENC_IDENTITY] >= 0 ? CR_ENC_IDENTITY : -1;
    }

    /* visit br, gzip, then identity; only a strictly higher rank replaces, so equal q keeps the preferred coding */
    for (i = 0; i != CR_ARRAY_SIZE(preference); ++i) {
        cr_encoding_t e = preference[i];
        if ((available & CR_ENC_BIT(e)) != 0 && rank[e] > 0 && rank[e] > best_rank) {
            best = (int)e;
            best_rank = rank[e];
        }
    }
    if (rank[CR_ENC_IDENTITY] >= 0 && rank[CR_ENC_IDENTITY] > best_rank)
        best = CR_ENC_IDENTITY;
    return best;
}

/* ---- compressible media types ---- */

/* Case-insensitive equality of a str and a NUL-free pattern piece of known length. */
static int piece_ieq(cr_str_t a, const char *b, size_t blen)
{
    size_t i;
    if (a.len != blen)
        return 0;
    for (i = 0; i != blen; ++i)
        if (lower(a.base[i]) != lower(b[i]))
            return 0;
    return 1;
}

/* Whether `sub` (a subtype) ends with `suffix` ("+json") and has at least one character before it. */
static int has_suffix(cr_str_t sub, const char *suffix, size_t suffixlen)
{
    return sub.len > suffixlen && piece_ieq(cr_str(sub.base + sub.len - suffixlen, suffixlen), suffix, suffixlen);
}

static int pattern_matches(cr_str_t type, cr_str_t sub, const char *pat)
{
    const char *slash;
    size_t plen = strlen(pat);

    if (pat[0] == '+')
        return has_suffix(sub, pat, plen);
    if ((slash = strchr(pat, '/')) == NULL)
        return 0;
    if (!(slash - pat == 1 && pat[0] == '*') && !piece_ieq(type, pat, (size_t)(slash - pat)))
        return 0;
    ++slash;
    if (slash[0] == '*') {
        if (slash[1] == '\0')
            return pat[0] != '*'; /* "type/" + "*"; a bare "*" + "/" + "*" is not a valid pattern */
        return slash[1] == '+' && has_suffix(sub, slash + 1, strlen(slash + 1));
    }
    return pat[0] != '*' && piece_ieq(sub, slash, strlen(slash));
}

int cr_media_type_compressible(cr_str_t content_type, char *const *patterns, size_t num_patterns)
{
    cr_str_t ct, type, sub;
    size_t i = 0, j;

    if (content_type.base == NULL)
        return 0;
    ct = cr_str_trim_ows(content_type);
    while (i != ct.len && cr_is_tchar((unsigned char)ct.base[i]))
        ++i;
    if (i == 0 || i == ct.len || ct.base[i] != '/')
        return 0;
    type = cr_str(ct.base, i);
    j = ++i;
    while (i != ct.len && cr_is_tchar((unsigned char)ct.base[i]))
        ++i;
    if (i == j)
        return 0;
    sub = cr_str(ct.base + j, i - j);
    while (i != ct.len && cr_is_ows(ct.base[i]))
        ++i;
    if (i != ct.len && ct.base[i] != ';')
        return 0;
    for (i = 0; i != num_patterns; ++i)
        if (patterns[i] != NULL && pattern_matches(type, sub, patterns[i]))
            return 1;
    return 0;
}
