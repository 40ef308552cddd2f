/* rec.c: escaping for the text records of monitor.rec; safe in any context (no allocation, no locks). */
#include <string.h>
#include <stddef.h>

#include "format/monrec.h"
#include "prof.h"

static int needs_escape(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || c == '%' || c == ',' || c == '=';
}

int prof_rec_escape(char *dst, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (cap == 0)
        return PROF_ERANGE;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (needs_escape(c)) {
            if (o + 3 >= cap) {
                dst[o] = '\0';
                return PROF_ERANGE;
            }
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            if (o + 1 >= cap) {
                dst[o] = '\0';
                return PROF_ERANGE;
            }
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return (int)o;
}

int prof_rec_escape_list(char *dst, size_t cap, const char *src, size_t len)
{
    if (!cap)
        return -1;
    if (len && src[len - 1] == '\0')
        len--; /* the terminator of the last argument, not an empty argument */
    size_t o = 0;
    const char *p = src, *end = src + len;
    while (len && p <= end) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        size_t el = z ? (size_t)(z - p) : (size_t)(end - p);
        if (o) {
            if (o + 1 >= cap)
                return -1;
            dst[o++] = ',';
        }
        int r = prof_rec_escape(dst + o, cap - o, p, el);
        if (r < 0)
            return -1;
        o += (size_t)r;
        p += el + 1;
    }
    dst[o] = '\0';
    return (int)o;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

size_t prof_rec_unescape(char *s)
{
    size_t i = 0, o = 0;

    while (s[i]) {
        int hi, lo;
        if (s[i] == '%' && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            s[o++] = (char)(hi << 4 | lo);
            i += 3;
        } else {
            s[o++] = s[i++];
        }
    }
    s[o] = '\0';
    return o;
}
