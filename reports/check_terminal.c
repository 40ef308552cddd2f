/* check_terminal.c: the check's terminal format: the comparison as a table, the reasons of what failed or could not be judged, and one verdict line. */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "prof.h"
#include "reports/check_render.h"

#define CELL 160     /* bytes of one table cell, escaped */
#define STAGE_COLS 30 /* a long stage name is cut here: the reasons below print it whole */
#define FIGURE_COLS 24
enum { C_STAGE, C_FIGURE, C_BASE, C_CURRENT, C_CHANGE, C_INTERVAL, C_P, C_RESULT, NCOLS };
static const char *const heads[NCOLS] = {"stage", "figure", "base", "current", "change", "interval", "p", "result"};
static const int right[NCOLS] = {0, 0, 1, 1, 1, 0, 1, 0}; /* numbers line up on their last digit */

/*
 * s made safe for a terminal: a stage name is the program's own string and may hold escape
 * sequences that would recolour, retitle or clear the reader's terminal. Control characters
 * (C0, DEL and the C1 range, which some terminals obey in UTF-8 too) print as C escapes, a
 * backslash doubles so an escape is never ambiguous, and a malformed UTF-8 byte is \xNN.
 * Cut at cap without splitting an escape or a character.
 */
static const char *tesc_char(uint32_t cp, int flag, char *buf, size_t cap)
{
    (void)flag;
    if (cp == '\n' || cp == '\t' || cp == '\r' || cp == '\\')
        snprintf(buf, cap, "\\%c", cp == '\n' ? 'n' : cp == '\t' ? 't' : cp == '\r' ? 'r' : '\\');
    else if (cp < 0x20 || cp == 0x7f)
        snprintf(buf, cap, "\\x%02X", (unsigned)cp);
    else if (cp >= 0x80 && cp < 0xa0)
        snprintf(buf, cap, "\\u%04X", (unsigned)cp);
    else
        return NULL;
    return buf;
}

static char *tesc(char *dst, size_t cap, const char *s)
{
    prof_check_escape(NULL, dst, cap, s, tesc_char, 0, "\\x%02X", NULL);
    return dst;
}

/* Columns a UTF-8 string takes: one per character (the text here is Latin and symbols). */
static size_t cols(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* Byte offset of column col of s (its length when s is shorter). */
static size_t at_col(const char *s, size_t col)
{
    size_t i = 0, w = 0;
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && w++ == col)
            break;
    return i;
}

/* Cut s in place to at most max columns by an ellipsis in the middle: stage names that differ
 * only at their end ("worker-1", "worker-2") stay apart. */
static void cut(char *s, size_t max)
{
    size_t w = cols(s);
    if (w <= max)
        return;
    size_t tail = max / 3, head = max - tail - 1;
    size_t h = at_col(s, head), t = at_col(s, w - tail);
    memmove(s + h + 3, s + t, strlen(s + t) + 1);
    memcpy(s + h, "\xE2\x80\xA6", 3); /* … */
}

static void pad(FILE *out, const char *s, size_t width, int right_align, int last)
{
    size_t w = cols(s);
    if (right_align)
        fprintf(out, "%*s", (int)(width - w), "");
    fputs(s, out);
    if (!right_align && !last)
        fprintf(out, "%*s", (int)(width - w), "");
}

/* One row's cells, each escaped and cut to its column. */
static void cells(const json_t *c, char cell[NCOLS][CELL])
{
    const char *figure = prof_check_str(c, "figure", "");
    char v[CELL];

    cut(tesc(cell[C_STAGE], CELL, prof_check_str(c, "stage", "")), STAGE_COLS);
    cut(tesc(cell[C_FIGURE], CELL, figure), FIGURE_COLS);
    prof_check_value(v, sizeof v, figure, json_object_get(c, "base"));
    cut(tesc(cell[C_BASE], CELL, v), FIGURE_COLS);
    prof_check_value(v, sizeof v, figure, json_object_get(c, "current"));
    cut(tesc(cell[C_CURRENT], CELL, v), FIGURE_COLS);
    prof_check_change(cell[C_CHANGE], CELL, json_object_get(c, "change"));
    prof_check_interval(cell[C_INTERVAL], CELL, json_object_get(c, "interval"));
    prof_check_p(cell[C_P], CELL, json_object_get(c, "p"));
    cut(tesc(cell[C_RESULT], CELL, prof_check_str(c, "result", "?")), FIGURE_COLS);
}

static void header(const json_t *doc, FILE *out)
{
    const json_t *base = json_object_get(doc, "base"), *cur = json_object_get(doc, "current");
    char mode[64], label[2 * CELL];

    fprintf(out, "poolprof check: %s mode", tesc(mode, sizeof mode, prof_check_str(doc, "mode", "?")));
    prof_check_setup(out, doc);
    fprintf(out, "\n  base:    %s\n", tesc(label, sizeof label, prof_check_str(base, "label", PROF_CHECK_NONE)));
    fprintf(out, "  current: %s\n\n", tesc(label, sizeof label, prof_check_str(cur, "label", PROF_CHECK_NONE)));
}

static void table(const json_t *checks, FILE *out)
{
    size_t width[NCOLS], i;
    const json_t *c;
    char cell[NCOLS][CELL];

    for (int k = 0; k < NCOLS; k++)
        width[k] = strlen(heads[k]);
    json_array_foreach(checks, i, c) {
        cells(c, cell);
        for (int k = 0; k < NCOLS; k++)
            if (cols(cell[k]) > width[k])
                width[k] = cols(cell[k]);
    }
    for (int k = 0; k < NCOLS; k++) {
        pad(out, heads[k], width[k], right[k], k == NCOLS - 1);
        fputs(k == NCOLS - 1 ? "\n" : "  ", out);
    }
    json_array_foreach(checks, i, c) {
        cells(c, cell);
        for (int k = 0; k < NCOLS; k++) {
            pad(out, cell[k], width[k], right[k], k == NCOLS - 1);
            fputs(k == NCOLS - 1 ? "\n" : "  ", out);
        }
    }
}

/* Each flagged row's reason in full, the stage uncut: the table may have cut it. */
static void reasons(const json_t *checks, FILE *out)
{
    size_t i, any = 0;
    const json_t *c;
    char stage[4 * CELL], figure[CELL], text[8 * CELL], note[2 * CELL], result[32];

    json_array_foreach(checks, i, c) {
        if (!prof_check_row_flagged(c))
            continue;
        if (!any++)
            fputc('\n', out);
        fprintf(out, "%-12s  %s %s: %s", tesc(result, sizeof result, prof_check_str(c, "result", "")),
                tesc(stage, sizeof stage, prof_check_str(c, "stage", "")),
                tesc(figure, sizeof figure, prof_check_str(c, "figure", "")),
                tesc(text, sizeof text, prof_check_str(c, "reason", "no reason given")));
        if (json_is_string(json_object_get(c, "note")))
            fprintf(out, " (%s)", tesc(note, sizeof note, prof_check_str(c, "note", "")));
        fputc('\n', out);
    }
}

static int render_check_terminal(const struct prof_report *r, FILE *out)
{
    if (!r || !r->doc || !out)
        return PROF_EINVAL;
    const json_t *doc = r->doc, *checks = json_object_get(doc, "checks"), *v;
    char buf[8 * CELL], verdict[32];
    size_t i;

    header(doc, out);
    if (json_array_size(checks))
        table(checks, out);
    else
        fputs("no figures were compared\n", out);
    reasons(checks, out);
    if (json_array_size(json_object_get(doc, "ignored_stages"))) {
        fputs("\nignored stages:", out);
        json_array_foreach(json_object_get(doc, "ignored_stages"), i, v)
            fprintf(out, "%s %s", i ? "," : "", tesc(buf, sizeof buf, json_string_value(v)));
        fputc('\n', out);
    }
    json_array_foreach(json_object_get(doc, "warnings"), i, v)
        fprintf(out, "%swarning: %s\n", i ? "" : "\n", tesc(buf, sizeof buf, json_string_value(v)));
    prof_check_verdict(verdict, sizeof verdict, doc);
    prof_check_counts(buf, sizeof buf, doc);
    fprintf(out, "\ncheck: %s \xE2\x80\x94 %s\n", verdict, buf); /* an em dash */
    return ferror(out) ? PROF_EIO : 0;
}

const struct prof_renderer prof_check_render_terminal = {
    .name = "terminal",
    .summary = "the comparison as a table, the reasons of what regressed or could not be judged, the verdict",
    .render = render_check_terminal,
};
