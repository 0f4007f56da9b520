/*
 * http_date.c: RFC 9110 5.6.7 HTTP-dates (declared in policy.h): parsing the IMF-fixdate and the obsolete RFC 850
 * and asctime forms, and writing IMF-fixdate.
 *
 * Invariants: pure functions, no allocation, no global state but constant name tables, no timegm/TZ (the civil
 * calendar is computed here): reentrant and thread-safe. Input is a borrowed cr_str_t, never read past its length;
 * anything malformed or out of range is refused (-1), never guessed.
 */
#include "corral/http/policy.h"

/* --- HTTP-date ---------------------------------------------------------------------------------------------------- */

static const char *const wkday_names[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const weekday_names[7] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m /* 1..12 */)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (y >= 1970, m 1..12, d valid): whole years, then months. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t days = (y - 1970) * 365;
    int i;

    /* leap days in [1970, y): count of multiples of 4, minus 100, plus 400, each relative to year 0 */
    days += ((y - 1) / 4 - 1969 / 4) - ((y - 1) / 100 - 1969 / 100) + ((y - 1) / 400 - 1969 / 400);
    for (i = 1; i < m; ++i)
        days += days_in_month(y, i);
    return days + d - 1;
}

/* Reads exactly n digits at s[*pos]; returns the value or -1. */
static int read_digits(cr_str_t s, size_t *pos, size_t n)
{
    int v = 0;
    size_t i;
    if (s.len - *pos < n)
        return -1;
    for (i = 0; i != n; ++i) {
        char c = s.base[*pos + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *pos += n;
    return v;
}

/* Expects the literal `lit` at s[*pos] (exact case); returns 0 and advances, or -1. */
static int expect(cr_str_t s, size_t *pos, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len - *pos < n || memcmp(s.base + *pos, lit, n) != 0)
        return -1;
    *pos += n;
    return 0;
}

/* Reads a three-letter month name; returns 1..12 or -1. */
static int read_month(cr_str_t s, size_t *pos)
{
    int i;
    if (s.len - *pos < 3)
        return -1;
    for (i = 0; i != 12; ++i) {
        if (memcmp(s.base + *pos, month_names[i], 3) == 0) {
            *pos += 3;
            return i + 1;
        }
    }
    return -1;
}

/* Reads "HH:MM:SS" into seconds of the day (a leap second 60 is accepted and rolls over); returns -1 when invalid. */
static int64_t read_time_of_day(cr_str_t s, size_t *pos)
{
    int h, m, sec;
    if ((h = read_digits(s, pos, 2)) < 0 || expect(s, pos, ":") != 0 || (m = read_digits(s, pos, 2)) < 0 ||
        expect(s, pos, ":") != 0 || (sec = read_digits(s, pos, 2)) < 0)
        return -1;
    if (h > 23 || m > 59 || sec > 60)
        return -1;
    return (int64_t)h * 3600 + m * 60 + sec;
}

/* Validates the calendar fields and produces ms; returns 0 or -1 (pre-epoch dates are not representable). */
static int make_time(int64_t year, int month, int day, int64_t tod, uint64_t *ms)
{
    if (year < 1970 || day < 1 || day > days_in_month(year, month))
        return -1;
    *ms = ((uint64_t)days_from_civil(year, month, day) * 86400 + (uint64_t)tod) * 1000;
    return 0;
}

/* Matches one of the 7 `names` at s[0] (exact case); returns the length matched or 0. */
static size_t match_day_name(cr_str_t s, const char *const *names)
{
    size_t i;
    for (i = 0; i != 7; ++i) {
        const char *n = names[i];
        size_t len = strlen(n);
        if (s.len >= len && memcmp(s.base, n, len) == 0)
            return len;
    }
    return 0;
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
static int parse_imf_fixdate(cr_str_t s, uint64_t *ms)
{
    size_t pos = 0;
    int day, month, year;
    int64_t tod;

    if (match_day_name(s, wkday_names) != 3)
        return -1;
    pos = 3;
    if (expect(s, &pos, ", ") != 0 || (day = read_digits(s, &pos, 2)) < 0 || expect(s, &pos, " ") != 0 ||
        (month = read_month(s, &pos)) < 0 || expect(s, &pos, " ") != 0 || (year = read_digits(s, &pos, 4)) < 0 ||
        expect(s, &pos, " ") != 0 || (tod = read_time_of_day(s, &pos)) < 0 || expect(s, &pos, " GMT") != 0 ||
        pos != s.len)
        return -1;
    return make_time(year, month, day, tod, ms);
}

/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years 70-99 are 19xx, 00-69 are 20xx. */
static int parse_rfc850(cr_str_t s, uint64_t *ms)
{
    size_t pos = match_day_name(s, weekday_names);
    int day, month, year;
    int64_t tod;

    if (pos == 0)
        return -1;
    if (expect(s, &pos, ", ") != 0 || (day = read_digits(s, &pos, 2)) < 0 || expect(s, &pos, "-") != 0 ||
        (month = read_month(s, &pos)) < 0 || expect(s, &pos, "-") != 0 || (year = read_digits(s, &pos, 2)) < 0 ||
        expect(s, &pos, " ") != 0 || (tod = read_time_of_day(s, &pos)) < 0 || expect(s, &pos, " GMT") != 0 ||
        pos != s.len)
        return -1;
    year += year < 70 ? 2000 : 1900;
    return make_time(year, month, day, tod, ms);
}

/* asctime: "Sun Nov  6 08:49:37 1994" (day is two digits or a space and one digit) */
static int parse_asctime(cr_str_t s, uint64_t *ms)
{
    size_t pos = 0;
    int day, month, year;
    int64_t tod;

    if (match_day_name(s, wkday_names) != 3)
        return -1;
    pos = 3;
    if (expect(s, &pos, " ") != 0 || (month = read_month(s, &pos)) < 0 || expect(s, &pos, " ") != 0)
        return -1;
    if (pos < s.len && s.base[pos] == ' ') {
        ++pos;
        day = read_digits(s, &pos, 1);
    } else {
        day = read_digits(s, &pos, 2);
    }
    if (day < 0 || expect(s, &pos, " ") != 0 || (tod = read_time_of_day(s, &pos)) < 0 || expect(s, &pos, " ") != 0 ||
        (year = read_digits(s, &pos, 4)) < 0 || pos != s.len)
        return -1;
    return make_time(year, month, day, tod, ms);
}

int cr_http_date_parse(cr_str_t s, uint64_t *ms)
{
    uint64_t v;

    assert(ms != NULL);
    if (s.base == NULL)
        return -1;
    s = cr_str_trim_ows(s);
    if (parse_imf_fixdate(s, &v) != 0 && parse_rfc850(s, &v) != 0 && parse_asctime(s, &v) != 0)
        return -1;
    *ms = v;
    return 0;
}

static char *put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

void cr_http_date_format(uint64_t ms, char *buf)
{
    /* dates past 9999-12-31T23:59:59Z are clamped so the output is always 29 characters */
    static const uint64_t max_s = 253402300799ull;
    uint64_t secs = ms / 1000, days, tod;
    int64_t year = 1970;
    int month = 1;
    char *p = buf;

    assert(buf != NULL);
    if (secs > max_s)
        secs = max_s;
    days = secs / 86400;
    tod = secs % 86400;

    memcpy(p, wkday_names[(days + 4) % 7], 3); /* 1970-01-01 was a Thursday */
    p += 3;
    while (days >= (uint64_t)(is_leap(year) ? 366 : 365)) {
        days -= is_leap(year) ? 366 : 365;
        ++year;
    }
    while (days >= (uint64_t)days_in_month(year, month)) {
        days -= (uint64_t)days_in_month(year, month);
        ++month;
    }
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, (unsigned)days + 1);
    *p++ = ' ';
    memcpy(p, month_names[month - 1], 3);
    p += 3;
    *p++ = ' ';
    p = put2(p, (unsigned)(year / 100));
    p = put2(p, (unsigned)(year % 100));
    *p++ = ' ';
    p = put2(p, (unsigned)(tod / 3600));
    *p++ = ':';
    p = put2(p, (unsigned)(tod / 60 % 60));
    *p++ = ':';
    p = put2(p, (unsigned)(tod % 60));
    memcpy(p, " GMT", 5); /* with the NUL */
}
