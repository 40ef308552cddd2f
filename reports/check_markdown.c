/* check_markdown.c: the check's Markdown format, for $GITHUB_STEP_SUMMARY: the verdict, the rows that need a look first, kept under GitHub's 1 MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "prof.h"
#include "reports/check_render.h"
#include "reports/md_escape.h"

/* GitHub refuses a step summary over 1 MiB (1,048,576 bytes) whole, so a big check would show
 * nothing: stay under it with room for the lines that say what was left out. */
#define MD_LIMIT 1000000
/* Warnings get at most this much of it; rows are what the summary is for. */
#define MD_WARNINGS_MAX 100000

/* Which rows come first, and are left out last: what failed, what could not be judged, then the rest. */
static int rank(const json_t *c)
{
    static const char *const order[] = {"regressed", "inconclusive", "unmeasured", "improved", "passed"};
    const char *r = prof_check_str(c, "result", "");
    for (int k = 0; k < 5; k++)
        if (strcmp(r, order[k]) == 0)
            return k;
    return 2; /* an unknown result needs a look like an unmeasured one */
}

/* One table row, and its reason as a list item when it has one worth reading. */
static void row(FILE *rows, FILE *why, const json_t *c)
{
    const char *figure = prof_check_str(c, "figure", ""), *result = prof_check_str(c, "result", "?");
    char v[256];
    int flagged = prof_check_row_flagged(c);

    fputs("| ", rows);
    prof_md_escape(rows, prof_check_str(c, "stage", ""));
    fputs(" | ", rows);
    prof_md_escape(rows, figure);
    fputs(" | ", rows);
    prof_check_value(v, sizeof v, figure, json_object_get(c, "base"));
    prof_md_escape(rows, v);
    fputs(" | ", rows);
    prof_check_value(v, sizeof v, figure, json_object_get(c, "current"));
    prof_md_escape(rows, v);
    prof_check_change(v, sizeof v, json_object_get(c, "change"));
    fprintf(rows, " | %s | ", v);
    prof_check_interval(v, sizeof v, json_object_get(c, "interval"));
    fprintf(rows, "%s | ", v);
    prof_check_p(v, sizeof v, json_object_get(c, "p"));
    fprintf(rows, "%s | %s", v, flagged ? "**" : "");
    prof_md_escape(rows, result);
    fprintf(rows, "%s |\n", flagged ? "**" : "");

    if (!flagged)
        return;
    fputs("- **", why);
    prof_md_escape(why, result);
    fputs("** ", why);
    prof_md_escape(why, prof_check_str(c, "stage", ""));
    fputc(' ', why);
    prof_md_escape(why, figure);
    fputs(": ", why);
    prof_md_escape(why, prof_check_str(c, "reason", "no reason given"));
    if (json_is_string(json_object_get(c, "note"))) {
        fputs(" (", why);
        prof_md_escape(why, prof_check_str(c, "note", ""));
        fputc(')', why);
    }
    fputc('\n', why);
}

static void head(FILE *out, const json_t *doc)
{
    const json_t *base = json_object_get(doc, "base"), *cur = json_object_get(doc, "current");
    char buf[256];

    prof_check_verdict(buf, sizeof buf, doc);
    fprintf(out, "## poolprof check: %s\n\n", buf);
    prof_check_counts(buf, sizeof buf, doc);
    fprintf(out, "**%s** \xC2\xB7 ", buf); /* a middle dot */
    prof_md_escape(out, prof_check_str(doc, "mode", "?"));
    fputs(" mode", out);
    prof_check_setup(out, doc);
    fputs("\n\nBase: ", out);
    prof_md_escape(out, prof_check_str(base, "label", PROF_CHECK_NONE));
    fputs(" \xC2\xB7 current: ", out);
    prof_md_escape(out, prof_check_str(cur, "label", PROF_CHECK_NONE));
    fputs("\n\n", out);
}

/* Ignored stages and warnings, the warnings while they fit in MD_WARNINGS_MAX. */
static void tail(FILE *out, const json_t *doc)
{
    const json_t *ignored = json_object_get(doc, "ignored_stages"), *warnings = json_object_get(doc, "warnings"), *v;
    size_t i, left = 0;
    long start = ftell(out);

    if (json_array_size(ignored)) {
        fputs("\nIgnored stages: ", out);
        json_array_foreach(ignored, i, v) {
            fputs(i ? ", " : "", out);
            prof_md_escape(out, json_string_value(v));
        }
        fputc('\n', out);
    }
    if (!json_array_size(warnings))
        return;
    fputs("\n### Warnings\n\n", out);
    json_array_foreach(warnings, i, v) {
        if (ftell(out) - start > MD_WARNINGS_MAX) {
            left = json_array_size(warnings) - i;
            break;
        }
        fputs("- ", out);
        prof_md_escape(out, json_string_value(v));
        fputc('\n', out);
    }
    if (left)
        fprintf(out, "- %zu more warnings left out (the JSON format has them all)\n", left);
}

struct md_row {
    const json_t *check;
    size_t index; /* its place in the document: the sort keeps it within a rank */
    long row, row_len, why, why_len; /* offsets into the two streams */
};

static int by_rank(const void *a, const void *b)
{
    const struct md_row *x = a, *y = b;
    int d = rank(x->check) - rank(y->check);
    return d ? d : (x->index < y->index ? -1 : x->index > y->index);
}

static int render_md(const json_t *doc, FILE *out, size_t limit)
{
    const json_t *checks = json_object_get(doc, "checks");
    size_t n = json_array_size(checks), shown = 0, lens[4] = {0};
    char *buf[4] = {NULL};
    FILE *f[4];
    struct md_row *rows = calloc(n ? n : 1, sizeof *rows);
    int rc = 0;

    for (int k = 0; k < 4; k++)
        f[k] = open_memstream(&buf[k], &lens[k]);
    enum { HEAD, ROWS, WHY, TAIL };
    if (!rows || !f[HEAD] || !f[ROWS] || !f[WHY] || !f[TAIL]) {
        rc = PROF_ENOMEM;
        goto out;
    }
    head(f[HEAD], doc);
    tail(f[TAIL], doc);
    for (size_t i = 0; i < n; i++) {
        rows[i].check = json_array_get(checks, i);
        rows[i].index = i;
        rows[i].row = ftell(f[ROWS]);
        rows[i].why = ftell(f[WHY]);
        row(f[ROWS], f[WHY], rows[i].check);
        rows[i].row_len = ftell(f[ROWS]) - rows[i].row;
        rows[i].why_len = ftell(f[WHY]) - rows[i].why;
    }
    for (int k = 0; k < 4; k++)
        if (fflush(f[k]) != 0) {
            rc = PROF_ENOMEM;
            goto out;
        }
    qsort(rows, n, sizeof *rows, by_rank);

    /* Room for the fixed parts, the table's head, the reasons' heading and the left-out line. */
    size_t used = lens[HEAD] + lens[TAIL] + 512;
    for (; shown < n; shown++) {
        size_t cost = (size_t)(rows[shown].row_len + rows[shown].why_len);
        if (used + cost > limit)
            break; /* never a later row in an earlier one's place: passed rows go first */
        used += cost;
    }

    fwrite(buf[HEAD], 1, lens[HEAD], out);
    if (!n)
        fputs("No figures were compared.\n", out);
    else {
        fputs("| stage | figure | base | current | change | interval | p | result |\n"
              "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |\n", out);
        for (size_t i = 0; i < shown; i++)
            fwrite(buf[ROWS] + rows[i].row, 1, (size_t)rows[i].row_len, out);
    }
    int reasons = 0;
    for (size_t i = 0; i < shown; i++) {
        if (!rows[i].why_len)
            continue;
        if (!reasons++)
            fputs("\n### Reasons\n\n", out);
        fwrite(buf[WHY] + rows[i].why, 1, (size_t)rows[i].why_len, out);
    }
    fwrite(buf[TAIL], 1, lens[TAIL], out);
    if (shown < n) {
        size_t by[5] = {0};
        for (size_t i = shown; i < n; i++)
            by[rank(rows[i].check)]++;
        fprintf(out, "\n_%zu of %zu rows left out to keep this summary under GitHub's 1 MiB: "
                     "%zu passed, %zu improved, %zu unmeasured, %zu inconclusive, %zu regressed. "
                     "The JSON format has every row._\n",
                n - shown, n, by[4], by[3], by[2], by[1], by[0]);
    }
    if (ferror(out))
        rc = PROF_EIO;
out:
    for (int k = 0; k < 4; k++) {
        if (f[k])
            fclose(f[k]);
        free(buf[k]);
    }
    free(rows);
    return rc;
}

static int render_check_markdown(const struct prof_report *r, FILE *out)
{
    if (!r || !r->doc || !out)
        return PROF_EINVAL;
    return render_md(r->doc, out, MD_LIMIT);
}

const struct prof_renderer prof_check_render_markdown = {
    .name = "markdown",
    .summary = "GitHub-flavoured Markdown for $GITHUB_STEP_SUMMARY: the verdict, failed rows first, under 1 MiB",
    .render = render_check_markdown,
};
