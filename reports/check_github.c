/* check_github.c: the check's GitHub Actions format: workflow commands that annotate the run with what regressed and what could not be judged. */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "prof.h"
#include "reports/check_render.h"

/* GitHub shows at most 10 error and 10 warning annotations of a step and drops the rest
 * silently: past that, one notice says how many were left out instead. */
#define GH_MAX 10
#define GH_IMPROVED_NAMED 10

/*
 * s escaped as a workflow command's data (message) or, when prop, as a property value (title),
 * by the rules of GitHub's toolkit (escapeData, escapeProperty): '%', CR and LF as %25, %0D and
 * %0A, and in a property ':' and ',' as %3A and %2C too, else a ',' would start the next property
 * and a "::" end the properties. Other control characters would reach the job log raw (an
 * escape sequence recolours it): they print as \xNN, as do malformed UTF-8 bytes.
 */
static const char *gesc_char(uint32_t cp, int prop, char *buf, size_t cap)
{
    switch (cp) {
    case '%':
        return "%25";
    case '\r':
        return "%0D";
    case '\n':
        return "%0A";
    case ':':
        return prop ? "%3A" : NULL;
    case ',':
        return prop ? "%2C" : NULL;
    }
    if ((cp < 0x20 && cp != '\t') || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
        snprintf(buf, cap, "\\x%02X", (unsigned)cp);
        return buf;
    }
    return NULL;
}

static void gesc(FILE *out, const char *s, int prop)
{
    prof_check_escape(out, NULL, 0, s, gesc_char, prop, "\\x%02X", NULL);
}

/* ::LEVEL title=STAGE FIGURE RESULT::REASON (NOTE) */
static void row(FILE *out, const char *level, const json_t *c)
{
    const char *stage = prof_check_str(c, "stage", ""), *figure = prof_check_str(c, "figure", "");
    const char *result = prof_check_str(c, "result", "");

    fprintf(out, "::%s title=", level);
    gesc(out, stage, 1);
    fputc(' ', out);
    gesc(out, figure, 1);
    fputc(' ', out);
    gesc(out, result, 1);
    fputs("::", out);
    if (json_is_string(json_object_get(c, "reason"))) {
        gesc(out, prof_check_str(c, "reason", ""), 0);
    } else {
        gesc(out, stage, 0);
        fputc(' ', out);
        gesc(out, figure, 0);
        fputc(' ', out);
        gesc(out, result, 0);
        fputs(", rule ", out);
        gesc(out, prof_check_str(c, "rule", PROF_CHECK_NONE), 0);
    }
    if (json_is_string(json_object_get(c, "note"))) {
        fputs(" (", out);
        gesc(out, prof_check_str(c, "note", ""), 0);
        fputc(')', out);
    }
    fputc('\n', out);
}

/* One notice naming the improved figures, the first GH_IMPROVED_NAMED of them. */
static void improved(FILE *out, const json_t *checks)
{
    size_t i, n = 0;
    const json_t *c;
    char change[32];

    json_array_foreach(checks, i, c) {
        if (strcmp(prof_check_str(c, "result", ""), "improved") != 0)
            continue;
        if (!n)
            fputs("::notice title=poolprof check::improved: ", out);
        if (n < GH_IMPROVED_NAMED) {
            fputs(n ? "; " : "", out);
            gesc(out, prof_check_str(c, "stage", ""), 0);
            fputc(' ', out);
            gesc(out, prof_check_str(c, "figure", ""), 0);
            prof_check_change(change, sizeof change, json_object_get(c, "change"));
            fputc(' ', out);
            gesc(out, change, 0); /* "-25.0%": a '%' is data too */
        }
        n++;
    }
    if (n > GH_IMPROVED_NAMED)
        fprintf(out, "; and %zu more", n - GH_IMPROVED_NAMED);
    if (n)
        fputc('\n', out);
}

static int render_check_github(const struct prof_report *r, FILE *out)
{
    if (!r || !r->doc || !out)
        return PROF_EINVAL;
    const json_t *doc = r->doc, *checks = json_object_get(doc, "checks"), *c, *w;
    size_t i, errors = 0, warnings = 0;

    json_array_foreach(checks, i, c) {
        if (strcmp(prof_check_str(c, "result", ""), "regressed") == 0 && errors++ < GH_MAX)
            row(out, "error", c);
    }
    /* The document's warnings first: "the machines differ" explains the rows after it. */
    json_array_foreach(json_object_get(doc, "warnings"), i, w) {
        if (warnings++ < GH_MAX) {
            fputs("::warning title=poolprof check::", out);
            gesc(out, json_string_value(w), 0);
            fputc('\n', out);
        }
    }
    json_array_foreach(checks, i, c) {
        if (prof_check_row_flagged(c) && strcmp(prof_check_str(c, "result", ""), "regressed") != 0 &&
            warnings++ < GH_MAX)
            row(out, "warning", c);
    }
    if (errors > GH_MAX || warnings > GH_MAX) {
        size_t e = errors > GH_MAX ? errors - GH_MAX : 0, wl = warnings > GH_MAX ? warnings - GH_MAX : 0;
        fprintf(out, "::notice title=poolprof check::%zu more errors and %zu more warnings left out "
                     "(GitHub shows %d of each); the terminal and JSON formats list every row\n",
                e, wl, GH_MAX);
    }
    improved(out, checks);
    return ferror(out) ? PROF_EIO : 0;
}

const struct prof_renderer prof_check_render_github = {
    .name = "github",
    .summary = "GitHub Actions annotations: an error per regressed figure, a warning per one not judged (10 of each)",
    .render = render_check_github,
};
