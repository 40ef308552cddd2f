/* test_rec.c: monitor.rec value escaping survives a round trip for every byte, and never leaks a separator. */
#include <criterion/criterion.h>
#include <string.h>

#include "format/monrec.h"
#include "prof.h"

static void round_trip(const char *src, size_t len)
{
    char esc[3 * 512 + 1];
    int n = prof_rec_escape(esc, sizeof esc, src, len);

    cr_assert_geq(n, 0, "escape failed");
    cr_assert_eq((size_t)n, strlen(esc));
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)esc[i];
        cr_assert(c > 0x20 && c != 0x7f && c != ',' && c != '=', "separator 0x%02x leaked at %d", c, i);
        if (c == '%')
            cr_assert(i + 2 < n, "dangling escape");
    }
    cr_assert_eq(prof_rec_unescape(esc), len);
    cr_assert(memcmp(esc, src, len) == 0, "round trip changed the bytes");
}

Test(rec, every_byte_round_trips)
{
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    round_trip(all, sizeof all); /* NUL included: the length, not the terminator, carries it */
}

Test(rec, ordinary_text_is_unchanged)
{
    char esc[64];
    cr_assert_eq(prof_rec_escape(esc, sizeof esc, "python3", 7), 7);
    cr_assert_str_eq(esc, "python3");
}

Test(rec, separators_are_escaped)
{
    char esc[64];
    const char *s = "a b,c=d%e\n";
    cr_assert_eq(prof_rec_escape(esc, sizeof esc, s, strlen(s)), 20);
    cr_assert_str_eq(esc, "a%20b%2Cc%3Dd%25e%0A");
    round_trip(s, strlen(s));
}

Test(rec, utf8_and_thread_names)
{
    round_trip("Ünïcödé-fetch", strlen("Ünïcödé-fetch"));
    round_trip("", 0);
    round_trip("%%%", 3);
}

Test(rec, too_small_buffer_is_range_error)
{
    char esc[4];
    cr_assert_eq(prof_rec_escape(esc, sizeof esc, "abcdef", 6), PROF_ERANGE);
    cr_assert_eq(strlen(esc), 3, "the truncated escape is still NUL-terminated");
    cr_assert_eq(prof_rec_escape(esc, sizeof esc, " ", 1), 3);
    cr_assert_eq(prof_rec_escape(esc, 3, " ", 1), PROF_ERANGE, "an escape is never split");
    cr_assert_eq(prof_rec_escape(esc, 0, "a", 1), PROF_ERANGE);
}

Test(rec, malformed_escapes_pass_through)
{
    char s1[] = "100%", s2[] = "%zz%4", s3[] = "%41%42";
    cr_assert_eq(prof_rec_unescape(s1), 4);
    cr_assert_str_eq(s1, "100%");
    cr_assert_eq(prof_rec_unescape(s2), 5);
    cr_assert_str_eq(s2, "%zz%4");
    cr_assert_eq(prof_rec_unescape(s3), 2);
    cr_assert_str_eq(s3, "AB");
}
