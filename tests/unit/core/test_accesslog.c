/*
 * test_accesslog.c: unit tests for the access log's formatting (accesslog.c): JSON escaping (quotes, backslash,
 * every control byte, DEL, valid UTF-8 kept, invalid bytes as \u00XX, nothing cut inside an escape when the buffer
 * is short), checked by decoding the output with a small strict JSON-string reader here; and the per-second time
 * string (json_text.c).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "corral/core/accesslog.h"
#include "corral/core/json_text.h"

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes the body of a JSON string (no quotes) the way a strict reader must see it: every byte < 0x20 and every
 * unescaped '"' is an error (-1); \u00XX becomes the byte XX (what the escaper writes for one byte). Returns the
 * decoded length. */
static long json_decode(const char *s, size_t len, unsigned char *out)
{
    size_t i = 0, n = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"')
            return -1;
        if (c != '\\') {
            out[n++] = c;
            ++i;
            continue;
        }
        if (i + 1 >= len)
            return -1;
        switch (s[i + 1]) {
        case '"': case '\\': case '/':
            out[n++] = (unsigned char)s[i + 1];
            i += 2;
            break;
        case 'u':
            if (i + 6 > len || s[i + 2] != '0' || s[i + 3] != '0' || hexval(s[i + 4]) < 0 || hexval(s[i + 5]) < 0)
                return -1;
            out[n++] = (unsigned char)(hexval(s[i + 4]) * 16 + hexval(s[i + 5]));
            i += 6;
            break;
        default:
            return -1;
        }
    }
    return (long)n;
}

static void test_escape_every_byte(void)
{
    unsigned char in[256], back[256];
    char out[256 * 6];
    size_t pos = 0, i;
    for (i = 0; i != 256; ++i)
        in[i] = (unsigned char)i;
    CU_ASSERT_EQUAL(cr_json_escape(out, &pos, sizeof(out), (const char *)in, sizeof(in)), 0);
    /* lone bytes >= 0x80 are not UTF-8: escaped one by one, so decoding gives back all 256 */
    CU_ASSERT_EQUAL(json_decode(out, pos, back), 256);
    CU_ASSERT_EQUAL(memcmp(in, back, 256), 0);
    CU_ASSERT(memchr(out, '\n', pos) == NULL);
    CU_ASSERT(memchr(out, 0x7f, pos) == NULL);
}

static void test_escape_forms(void)
{
    char out[128];
    size_t pos = 0;
    const char *in = "a\"b\\c\n\t\x01\x7f\xc3\xa9\xe2\x80\xa8\xff\xc0\xaf";
    CU_ASSERT_EQUAL(cr_json_escape(out, &pos, sizeof(out), in, strlen(in)), 0);
    out[pos] = '\0';
    /* quotes and backslash, controls and DEL as \u00XX, valid UTF-8 (é, U+2028) kept, invalid (0xff, overlong
     * 0xc0 0xaf) escaped byte by byte */
    CU_ASSERT_STRING_EQUAL(out, "a\\\"b\\\\c\\u000a\\u0009\\u0001\\u007f\xc3\xa9\xe2\x80\xa8\\u00ff\\u00c0\\u00af");
}

static void test_escape_short_buffer(void)
{
    char out[16];
    size_t cap, pos;
    /* whatever the room, the output stops before an escape or a UTF-8 sequence that would not fit whole */
    for (cap = 0; cap != sizeof(out); ++cap) {
        unsigned char back[16];
        pos = 0;
        int rc = cr_json_escape(out, &pos, cap, "x\"\x01\xc3\xa9y", 6);
        CU_ASSERT(pos <= cap);
        CU_ASSERT(json_decode(out, pos, back) >= 0);
        CU_ASSERT_EQUAL(rc, pos == 1 + 2 + 6 + 2 + 1 ? 0 : -1);
    }
}

/* The plain-run scan reads 8 bytes at a time: a byte that must be escaped, at any offset of a long plain run, is
 * still escaped (and DEL or 0x80.. right after the last plain byte of a word too). */
static void test_escape_byte_in_long_run(void)
{
    static const unsigned char specials[] = {0x00, 0x1f, '"', '\\', 0x7f, 0x80, 0xff, 0x0a};
    unsigned char in[40], dec[64];
    char out[40 * 6 + 1];
    size_t k, at;
    int ok = 1;
    for (k = 0; k != sizeof(specials); ++k)
        for (at = 0; at != sizeof(in); ++at) {
            size_t pos = 0, i;
            long n;
            for (i = 0; i != sizeof(in); ++i)
                in[i] = (const unsigned char[]){0x20, 0x7e, 'a', 0x5d, 0x23, 0x5b, 0x21}[i % 7]; /* plain: the edges */
            in[at] = specials[k];
            if (cr_json_escape(out, &pos, sizeof(out), (const char *)in, sizeof(in)) != 0 ||
                (n = json_decode(out, pos, dec)) != (long)sizeof(in) || memcmp(dec, in, sizeof(in)) != 0 ||
                pos == sizeof(in)) /* the special byte took more than one byte of output */
                ok = 0;
        }
    CU_ASSERT(ok);
}

static void test_time_string(void)
{
    char s[20];
    cr_json_fmt_second(s, 0);
    CU_ASSERT_STRING_EQUAL(s, "1970-01-01T00:00:00");
    cr_json_fmt_second(s, 1796236252); /* 2026-12-02T18:30:52Z */
    CU_ASSERT_STRING_EQUAL(s, "2026-12-02T18:30:52");
    cr_json_fmt_second(s, 951782400); /* a leap day */
    CU_ASSERT_STRING_EQUAL(s, "2000-02-29T00:00:00");
}

void cr_test_register_accesslog(void)
{
    CU_pSuite s = CU_add_suite("accesslog", NULL, NULL);
    CU_add_test(s, "every byte escapes and decodes back", test_escape_every_byte);
    CU_add_test(s, "quotes, controls, UTF-8 kept, invalid bytes escaped", test_escape_forms);
    CU_add_test(s, "a short buffer never cuts an escape", test_escape_short_buffer);
    CU_add_test(s, "a byte to escape anywhere in a long plain run", test_escape_byte_in_long_run);
    CU_add_test(s, "the time string", test_time_string);
}
