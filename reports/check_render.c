/* check_render.c: the table of check renderers and what they share: figures for people, the verdict line, UTF-8 decoding. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "format/utf8.h"
#include "reports/check_render.h"

/* Every check format, in the order `poolprof help check` lists them. */
static const struct prof_renderer *const check_renderers[] = {
    &prof_check_render_terminal, &prof_check_render_json, &prof_check_render_markdown,
    &prof_check_render_junit,    &prof_check_render_github,
};
#define NCHECK (sizeof check_renderers / sizeof *check_renderers)

const struct prof_renderer *prof_check_renderer_find(const char *name)
{
    for (size_t i = 0; name && i < NCHECK; i++)
        if (strcmp(check_renderers[i]->name, name) == 0)
            return check_renderers[i];
    return NULL;
}

const struct prof_renderer *prof_check_renderer_at(size_t i)
{
    return i < NCHECK ? check_renderers[i] : NULL;
}

const char *prof_check_str(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

long long prof_check_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : json_is_real(v) ? (long long)json_real_value(v) : 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Three significant digits without an exponent: 1.23, 12.3, 123, 1234. */
static void sig3(char *buf, size_t cap, double x, const char *unit)
{
    double a = fabs(x);
    int prec = a >= 99.95 ? 0 : a >= 9.995 ? 1 : 2;
    snprintf(buf, cap, "%.*f %s", prec, x, unit);
}

static void seconds(char *buf, size_t cap, double s)
{
    double a = fabs(s);
    if (a == 0)
        snprintf(buf, cap, "0 s");
    else if (a >= 0.9995)
        sig3(buf, cap, s, "s");
    else if (a >= 0.9995e-3)
        sig3(buf, cap, s * 1e3, "ms");
    else if (a >= 0.9995e-6)
        sig3(buf, cap, s * 1e6, "\xC2\xB5s"); /* µs */
    else
        sig3(buf, cap, s * 1e9, "ns");
}

/* Binary units, as sizes of memory and pipes are counted. */
static void bytes(char *buf, size_t cap, double b)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double x = fabs(b);
    int u = 0;
    while (x >= 1023.95 && u < 5) {
        x /= 1024;
        u++;
    }
    if (!u)
        snprintf(buf, cap, "%.0f B", b);
    else
        sig3(buf, cap, b < 0 ? -x : x, unit[u]);
}

void prof_check_value(char *buf, size_t cap, const char *figure, const json_t *v)
{
    if (!cap)
        return;
    buf[0] = '\0';
    if (!figure)
        figure = "";
    if (!v || json_is_null(v)) {
        snprintf(buf, cap, "%s", PROF_CHECK_NONE);
    } else if (json_is_boolean(v)) {
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_string(v)) {
        snprintf(buf, cap, "%s", json_string_value(v));
    } else if (json_is_number(v)) {
        double x = json_number_value(v);
        if (ends_with(figure, "seconds"))
            seconds(buf, cap, x);
        else if (ends_with(figure, "bytes"))
            bytes(buf, cap, x);
        else if (ends_with(figure, "fraction") || ends_with(figure, "ratio"))
            snprintf(buf, cap, "%.1f%%", x * 100);
        else if (x == floor(x) && fabs(x) < 1e15)
            snprintf(buf, cap, "%.0f", x); /* a count */
        else
            snprintf(buf, cap, "%.4g", x);
    } else {
        /* An array or object where the schema has a scalar: shown as the document holds it. */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, cap, "%s", s ? s : PROF_CHECK_NONE);
        free(s);
    }
}

/* (ratio - 1) as a percentage, where -0.04% prints as +0.0% rather than -0.0%. */
static void percent(char *buf, size_t cap, double ratio)
{
    double pct = (ratio - 1) * 100;
    if (fabs(pct) < 0.05)
        pct = 0;
    snprintf(buf, cap, "%+.1f%%", pct);
}

void prof_check_change(char *buf, size_t cap, const json_t *ratio)
{
    if (json_is_number(ratio))
        percent(buf, cap, json_number_value(ratio));
    else
        snprintf(buf, cap, "%s", PROF_CHECK_NONE);
}

void prof_check_interval(char *buf, size_t cap, const json_t *interval)
{
    const json_t *lo = json_array_get(interval, 0), *hi = json_array_get(interval, 1);
    if (json_array_size(interval) != 2 || !json_is_number(lo) || !json_is_number(hi)) {
        snprintf(buf, cap, "%s", PROF_CHECK_NONE);
        return;
    }
    char a[32], b[32];
    percent(a, sizeof a, json_number_value(lo));
    percent(b, sizeof b, json_number_value(hi));
    snprintf(buf, cap, "%s to %s", a, b);
}

void prof_check_p(char *buf, size_t cap, const json_t *p)
{
    if (!json_is_number(p))
        snprintf(buf, cap, "%s", PROF_CHECK_NONE);
    else if (json_number_value(p) < 0.0001)
        snprintf(buf, cap, "<0.0001");
    else
        snprintf(buf, cap, "%.2g", json_number_value(p));
}

void prof_check_verdict(char *buf, size_t cap, const json_t *doc)
{
    const char *r = prof_check_str(doc, "result", "unknown");
    size_t i = 0;
    if (!cap)
        return;
    for (; r[i] && i + 1 < cap; i++)
        buf[i] = (char)toupper((unsigned char)r[i]);
    buf[i] = '\0';
}

void prof_check_setup(FILE *out, const json_t *doc)
{
    const json_t *rounds = json_object_get(doc, "rounds"), *confirm = json_object_get(doc, "confirm");
    const json_t *base = json_object_get(doc, "base"), *cur = json_object_get(doc, "current");

    if (json_is_integer(rounds))
        fprintf(out, ", %lld rounds", (long long)json_integer_value(rounds));
    fprintf(out, ", %lld + %lld samples, machines %s", prof_check_int(base, "samples"), prof_check_int(cur, "samples"),
            json_is_true(json_object_get(doc, "machine_match")) ? "match" : "differ");
    if (prof_check_int(confirm, "asked") > 0)
        fprintf(out, ", %lld confirmed with %lld more rounds", prof_check_int(confirm, "asked"),
                prof_check_int(confirm, "rounds_added"));
    if (json_is_true(json_object_get(doc, "strict")))
        fputs(", strict", out);
}

void prof_check_counts(char *buf, size_t cap, const json_t *doc)
{
    const json_t *c = json_object_get(doc, "counts");
    snprintf(buf, cap, "%lld regressed, %lld improved, %lld inconclusive, %lld unmeasured, %lld passed",
             prof_check_int(c, "regressed"), prof_check_int(c, "improved"), prof_check_int(c, "inconclusive"),
             prof_check_int(c, "unmeasured"), prof_check_int(c, "passed"));
}

int prof_check_row_flagged(const json_t *check)
{
    const char *r = prof_check_str(check, "result", "");
    return strcmp(r, "regressed") == 0 || strcmp(r, "inconclusive") == 0 || strcmp(r, "unmeasured") == 0;
}

size_t prof_check_escape(FILE *out, char *dst, size_t cap, const char *s, prof_check_esc_fn esc, int flag,
                         const char *bad, int *cut)
{
    size_t o = 0, n = s ? strlen(s) : 0;
    char buf[16];

    if (cut)
        *cut = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = prof_utf8_decode(s + i, n - i, &cp);
        const char *piece;
        if (!len) {
            snprintf(buf, sizeof buf, bad, (unsigned)(unsigned char)s[i]);
            piece = buf;
            len = 1;
        } else {
            piece = esc(cp, flag, buf, sizeof buf);
        }
        size_t plen = piece ? strlen(piece) : len;
        if (!piece)
            piece = s + i;
        /* Into dst, cap counts the NUL; to out, cap 0 is no limit. */
        if (out ? cap && o + plen > cap : o + plen + 1 > cap) {
            if (cut)
                *cut = 1;
            break;
        }
        if (out)
            fwrite(piece, 1, plen, out);
        else
            memcpy(dst + o, piece, plen);
        o += plen;
        i += len;
    }
    if (!out && cap)
        dst[o] = '\0';
    return o;
}

