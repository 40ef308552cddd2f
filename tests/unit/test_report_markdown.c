/* test_report_markdown.c: the report's Markdown format on stored report documents: golden files byte for byte, a target's hostile strings only escaped, perf counters per stage and per event, GitHub's 1 MiB kept. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prof.h"
#include "reports/render.h"
#include "golden.h"

#define DATA POOLPROF_SOURCE_DIR "/tests/data/report"
#define MIB 1048576

static json_t *load(const char *name)
{
    char path[4096];
    json_error_t e;
    snprintf(path, sizeof path, DATA "/%s.json", name);
    json_t *doc = json_load_file(path, 0, &e);
    cr_assert_not_null(doc, "%s: %s (line %d)", path, e.text, e.line);
    return doc;
}

/* The rendering of name.json is name.md byte for byte; a failure names the first line that differs. */
static void golden(const char *name)
{
    char path[4096], what[256];
    size_t glen;
    json_t *doc = load(name);
    char *got = golden_render(&prof_render_markdown, doc, &glen);
    snprintf(path, sizeof path, DATA "/%s.md", name);
    snprintf(what, sizeof what, "%s markdown", name);
    golden_compare(what, got, glen, path);
    free(got);
    json_decref(doc);
}

/* The '|' of a line that end or part cells: those not escaped by an odd run of backslashes. */
static size_t cell_bars(const char *line, size_t n)
{
    size_t bars = 0;
    for (size_t i = 0; i < n; i++) {
        if (line[i] != '|')
            continue;
        size_t bs = 0;
        while (bs < i && line[i - 1 - bs] == '\\')
            bs++;
        bars += bs % 2 == 0;
    }
    return bars;
}

/* Every table row has its head's cells, and no control character but the newline is written. */
static void tables_hold(const char *md)
{
    size_t want = 0;
    for (const char *p = md; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        for (size_t i = 0; i < n; i++)
            cr_assert(!((unsigned char)p[i] < 0x20 && p[i] != '\n') && p[i] != 0x7f,
                      "a control byte 0x%02x in \"%.*s\"", (unsigned char)p[i], (int)n, p);
        if (n && p[0] == '|') {
            size_t bars = cell_bars(p, n);
            if (!want)
                want = bars; /* the table's head */
            cr_assert_eq(bars, want, "a row of %zu bars under a head of %zu: \"%.*s\"", bars, want, (int)n, p);
        } else {
            want = 0;
        }
        p += n + (nl != NULL);
    }
}

Test(report_markdown, in_the_table_of_renderers)
{
    const struct prof_renderer *rd = prof_renderer_find("markdown");
    cr_assert_eq(rd, &prof_render_markdown);
    cr_assert_not(rd->needs_run, "markdown must render a saved report.json alone");
    cr_assert_str_eq(rd->rundir_file, "report.md");
}

Test(report_markdown, matches_golden_files)
{
    golden("lock_hold");
    golden("pipeline");
    golden("hostile");
}

Test(report_markdown, real_reports_keep_their_tables)
{
    const char *names[] = {"lock_hold", "pipeline"};
    for (size_t i = 0; i < 2; i++) {
        json_t *doc = load(names[i]);
        char *md = golden_render(&prof_render_markdown, doc, NULL);
        tables_hold(md);
        cr_assert_not_null(strstr(md, "| **overall** |"), "%s: the overall verdict row", names[i]);
        free(md);
        json_decref(doc);
    }
}

Test(report_markdown, hostile_strings_appear_only_escaped)
{
    json_t *doc = load("hostile");
    char *md = golden_render(&prof_render_markdown, doc, NULL);

    tables_hold(md);
    /* No HTML of the target's: every '<' written is the renderer's own <br>. */
    for (const char *p = md; (p = strchr(p, '<')); p++)
        cr_assert_eq(strncmp(p, "<br>", 4), 0, "raw '<' at \"%.20s\"", p);
    cr_assert_null(strstr(md, "<script"));
    cr_assert_null(strstr(md, "<img"));
    cr_assert_not_null(strstr(md, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    cr_assert_not_null(strstr(md, "&amp;amp;"), "'&' of the target's is an entity");
    /* Every backtick escaped: no code span can open on the target's text. */
    for (const char *p = md; (p = strchr(p, '`')); p++)
        cr_assert(p > md && p[-1] == '\\' && (p - 1 == md || p[-2] != '\\'), "a bare backtick at \"%.20s\"", p - 2);
    cr_assert_not_null(strstr(md, "\\`rm -rf /\\`"));
    /* ANSI escapes and the OSC link are shown as bytes, not sent to whatever renders them. */
    cr_assert_not_null(strstr(md, "\\\\x1B\\[31mred"));
    cr_assert_not_null(strstr(md, "\\\\x1B\\]8;;http://x\\\\x07link"));
    cr_assert_not_null(strstr(md, "\\\\x7F DEL and \\\\x85 NEL"));
    /* A newline in a stage name stays in its cell and its heading. */
    cr_assert_not_null(strstr(md, "| hold\\|er &lt;script&gt;x&lt;/script&gt;<br>\\\\x1B\\[2Jclear (thread-name) |"));
    cr_assert_not_null(strstr(md, "### hold\\|er "));
    /* A heading's closing '#' and a reason's list marker are the target's text, not Markdown. */
    cr_assert_not_null(strstr(md, "### \\`wait\\`er \\# (thread-name)\n"));
    cr_assert_not_null(strstr(md, "\n- \\- a reason "));
    cr_assert_not_null(strstr(md, "\n- 1\\. looks like a list"));
    cr_assert_not_null(strstr(md, "\n- 12\\) paren list"));
    cr_assert_not_null(strstr(md, "\n- \\+ plus first"));
    free(md);
    json_decref(doc);
}

/* The row of a stage's counters table or of the Perf counters table that starts with cells, or NULL. */
static const char *row(const char *md, const char *cells)
{
    char want[512];
    snprintf(want, sizeof want, "\n| %s |", cells);
    const char *p = strstr(md, want);
    return p ? p + 1 : NULL;
}

Test(report_markdown, counters_per_stage_and_per_event_with_reasons)
{
    json_t *doc = load("pipeline");
    char *md = golden_render(&prof_render_markdown, doc, NULL);

    tables_hold(md);
    /* Each stage's section has its counts as report.json holds them, per CPU-second beside them. */
    const char *overall = strstr(md, "\n### overall\n"), *next = strstr(overall + 1, "\n### ");
    const char *cs = row(overall, "perf::CONTEXT-SWITCHES | 366 | 718.8");
    cr_assert(cs && cs < next, "overall's context switches in its own section");
    cr_assert_not_null(row(md, "perf::MINOR-FAULTS | 131 | 51,052.2"), "thousands grouped");
    /* Every event is listed; one not counted says why, in the run's words. */
    const char *events = strstr(md, "\n### Perf counters\n");
    cr_assert_not_null(events);
    cr_assert_not_null(strstr(events, "| cycles | none | asked for, a PMU event | 0 | 0 | 4 | **not counted**: no PMU counts "
                                      "it here (perf\\_event\\_open: ENOENT) |\n"));
    cr_assert_not_null(strstr(events, "| perf::CONTEXT-SWITCHES | perf | default set | 4 | 0 | 0 | \xE2\x80\x94 |\n"));
    free(md);
    json_decref(doc);

    /* A multiplexed count, threads counted late or not at all, a stage none of whose threads was counted. */
    doc = load("hostile");
    md = golden_render(&prof_render_markdown, doc, NULL);
    cr_assert_not_null(row(md, "cycles | 4,812,345 | 2,097,796,425.5 | ~ scaled (multiplexed: an estimate); 1 of 2 "
                               "threads counted from after it began; 1 thread not counted"));
    cr_assert_not_null(row(md, "cycles | 1,204,567 | \xE2\x80\x94 | ~ scaled (multiplexed: an estimate); 1 of 1 thread "
                               "counted from after it began"),
                       "under 1 ms of CPU: no rate");
    cr_assert_not_null(strstr(md, "\n- counters: no thread of this stage was counted\n"));
    /* The event's name and its reason are the user's strings: escaped in every table, markup never. */
    cr_assert_not_null(row(md, "raw\\|&lt;b&gt;\\`ev\\`&lt;/b&gt;\\\\x1B\\[31m \\# | 12 | 5,231.0"));
    cr_assert_not_null(strstr(md, "| EACCES: retried user-only &lt;i&gt;\\|&lt;/i&gt; |\n"), "a counted event's reason");
    cr_assert_not_null(row(md, "- dash<br>newline | none | asked for | 0 | 0 | 3 | **not counted**: not supported by "
                               "libpfm4 here (event \\`not\\` found) \\| &lt;script&gt;"));
    free(md);
    json_decref(doc);

    /* A marker stage keeps no counts (null), said in its section; a report from before counters says nothing. */
    doc = load("lock_hold");
    json_t *st = json_array_get(json_object_get(doc, "stages"), 0);
    json_object_set_new(st, "source", json_string("marker"));
    json_object_set_new(st, "counters", json_null());
    md = golden_render(&prof_render_markdown, doc, NULL);
    cr_assert_not_null(strstr(md, "\n- counters: not kept per marker stage (see its threads' stages)\n"));
    cr_assert_null(strstr(md, "| counter |"));
    cr_assert_null(strstr(md, "### Perf counters"));
    free(md);
    json_decref(doc);
}

Test(report_markdown, every_note_and_error_is_listed)
{
    json_t *doc = load("hostile");
    char *md = golden_render(&prof_render_markdown, doc, NULL);
    const json_t *ms = json_object_get(doc, "measurement");

    cr_assert_not_null(strstr(md, "**3 recording problems**"));
    cr_assert_not_null(strstr(md, "\n### Recording problems\n\n- pid 7: record truncated at \\`slot\\` 3<br>second line\n"));
    cr_assert_not_null(strstr(md, "\n### Measurement notes\n\n- note with \\| pipe and &lt;b&gt;html&lt;/b&gt;\n"));
    size_t items = 0;
    for (const char *p = strstr(md, "### Recording problems"); p && (p = strstr(p, "\n- ")); p++)
        items++;
    cr_assert_eq(items, json_array_size(json_object_get(ms, "notes")) + json_array_size(json_object_get(ms, "errors")));
    free(md);
    json_decref(doc);
}

Test(report_markdown, a_document_missing_everything_still_renders)
{
    json_t *doc = json_object();
    char *md = golden_render(&prof_render_markdown, doc, NULL);
    cr_assert_not_null(strstr(md, "## poolprof:"));
    cr_assert_not_null(strstr(md, "exit unknown"));
    cr_assert_not_null(strstr(md, "| **?** |"), "a missing figure is a '?', not a crash");
    tables_hold(md);
    free(md);
    json_decref(doc);
}

/* 3,000 stages of long names and 20,000 errors: far past 1 MiB in full. */
static json_t *huge(void)
{
    json_t *doc = load("pipeline");
    json_t *stages = json_object_get(doc, "stages"), *one = json_deep_copy(json_array_get(stages, 1));
    json_t *errors = json_object_get(json_object_get(doc, "measurement"), "errors");
    char name[600];

    json_array_clear(stages);
    for (int i = 0; i < 3000; i++) {
        json_t *s = json_deep_copy(one);
        memset(name, 'n', sizeof name - 1);
        snprintf(name, 32, "stage %d |", i);
        name[strlen(name)] = 'n';
        name[sizeof name - 1] = '\0';
        json_object_set_new(s, "name", json_string(name));
        json_array_append_new(stages, s);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "pid %d: record %d truncated <slot>", 1000 + i, i);
        json_array_append_new(errors, json_string(name));
    }
    json_decref(one);
    return doc;
}

Test(report_markdown, a_huge_report_stays_under_a_mebibyte_and_says_what_it_left_out)
{
    json_t *doc = huge();
    size_t n;
    char *md = golden_render(&prof_render_markdown, doc, &n);

    cr_assert_lt(n, MIB, "%zu bytes: GitHub would refuse the summary", n);
    cr_assert_gt(n, MIB / 2, "%zu bytes: the room was not used", n);
    tables_hold(md);
    /* The run, the overall verdict and the first errors stay; what went is counted. */
    cr_assert_not_null(strstr(md, "| **overall** |"));
    cr_assert_not_null(strstr(md, "**20000 recording problems**"));
    cr_assert_not_null(strstr(md, "\n- pid 1000: record 0 truncated &lt;slot&gt;\n"));
    cr_assert_not_null(strstr(md, "\n### overall\n"), "the overall section ranks above the stages'");
    const char *left = strstr(md, "\n_Left out to keep this summary under GitHub's 1 MiB:");
    cr_assert_not_null(left);
    cr_assert_not_null(strstr(left, "of 3001 stage sections"));
    cr_assert_not_null(strstr(left, "of 20000 errors"));
    cr_assert_not_null(strstr(left, "The JSON format has them all._\n"));
    cr_assert_not_null(strstr(md, "/report.json\n"), "the footer stays");
    free(md);
    json_decref(doc);
}

Test(report_markdown, megabyte_strings_are_cut_not_the_whole_summary)
{
    json_t *doc = load("pipeline");
    json_t *cmd = json_object_get(doc, "command");
    size_t big = 2 * MIB, n;
    char *s = malloc(big + 1);

    memset(s, '|', big); /* each escapes to two bytes */
    s[big] = '\0';
    json_object_set_new(json_array_get(json_object_get(doc, "stages"), 0), "name", json_string(s));
    json_array_set_new(cmd, 0, json_string(s));
    for (int i = 0; i < 100000; i++)
        json_array_append_new(cmd, json_string("arg"));
    char *md = golden_render(&prof_render_markdown, doc, &n);
    cr_assert_lt(n, MIB, "%zu bytes", n);
    tables_hold(md);
    cr_assert_not_null(strstr(md, "\\|\xE2\x80\xA6 (process-role) |"), "the stage name is cut with an ellipsis");
    cr_assert_not_null(strstr(md, " more arguments)\n"), "the command line says how much it left out");
    cr_assert_not_null(strstr(md, "| **overall** |"));
    free(md);
    free(s);
    json_decref(doc);
}
