/* test_check_render.c: the check renderers on documents whose rendering is known: golden files byte for byte, escaping per format, GitHub's caps, JUnit against its schema. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prof.h"
#include "reports/check_render.h"
#include "golden.h"

#define DATA POOLPROF_SOURCE_DIR "/tests/data"

static json_t *load(const char *name)
{
    char path[4096];
    json_error_t e;
    snprintf(path, sizeof path, DATA "/check/%s.json", name);
    json_t *doc = json_load_file(path, 0, &e);
    cr_assert_not_null(doc, "%s: %s (line %d)", path, e.text, e.line);
    return doc;
}

/* The first line where got and want part, for a failure message people can act on. */
static void golden(const char *fixture, const char *format, const char *ext)
{
    char path[4096], what[256];
    size_t glen;
    json_t *doc = load(fixture);
    char *got = golden_render(prof_check_renderer_find(format), doc, &glen);
    snprintf(path, sizeof path, DATA "/check/%s.%s", fixture, ext);
    snprintf(what, sizeof what, "%s %s", fixture, format);
    golden_compare(what, got, glen, path);
    free(got);
    json_decref(doc);
}

Test(check_render, table_order_and_names)
{
    const char *names[] = {"terminal", "json", "markdown", "junit", "github"};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_not_null(prof_check_renderer_at(i));
        cr_assert_str_eq(prof_check_renderer_at(i)->name, names[i]);
        cr_assert_eq(prof_check_renderer_find(names[i]), prof_check_renderer_at(i));
        cr_assert_not(prof_check_renderer_at(i)->needs_run, "%s must render a document alone", names[i]);
    }
    cr_assert_null(prof_check_renderer_at(5));
    cr_assert_null(prof_check_renderer_find("folded"));
    cr_assert_null(prof_check_renderer_find(NULL));
}

Test(check_render, figures_for_people)
{
    char b[64];
    json_t *v;
#define VAL(fig, json, want)                                                                   \
    do {                                                                                       \
        v = json_loads(json, JSON_DECODE_ANY, NULL);                                           \
        prof_check_value(b, sizeof b, fig, v);                                                 \
        cr_assert_str_eq(b, want, "%s %s", fig, json);                                         \
        json_decref(v);                                                                        \
    } while (0)
    VAL("wall_seconds", "1.234", "1.23 s");
    VAL("wall_seconds", "12.345", "12.3 s");
    VAL("wall_seconds", "1234.5", "1234 s");
    VAL("wall_seconds", "0.412", "412 ms");
    VAL("lock.wait_seconds", "0.000035", "35.0 \xC2\xB5s");
    VAL("cpu_seconds", "0", "0 s");
    VAL("ipc.bytes", "12897484", "12.3 MiB");
    VAL("rss.peak_bytes", "512", "512 B");
    VAL("rss_bytes", "1536", "1.50 KiB");
    VAL("lock.wait_fraction", "0.25", "25.0%");
    VAL("pool.busy_ratio", "0.5", "50.0%");
    VAL("threads", "42", "42");
    VAL("gil", "true", "true");
    VAL("recommendation", "\"threads x4\"", "threads x4");
    VAL("wall_seconds", "null", PROF_CHECK_NONE);
#undef VAL
    v = json_real(1.306);
    prof_check_change(b, sizeof b, v);
    cr_assert_str_eq(b, "+30.6%");
    json_real_set(v, 0.9996); /* -0.04%: no "-0.0%" */
    prof_check_change(b, sizeof b, v);
    cr_assert_str_eq(b, "+0.0%");
    json_real_set(v, 0.958);
    prof_check_change(b, sizeof b, v);
    cr_assert_str_eq(b, "-4.2%");
    json_real_set(v, 0.0079);
    prof_check_p(b, sizeof b, v);
    cr_assert_str_eq(b, "0.0079");
    json_real_set(v, 0.00001);
    prof_check_p(b, sizeof b, v);
    cr_assert_str_eq(b, "<0.0001");
    json_decref(v);
    v = json_pack("[f,f]", 1.21, 1.40);
    prof_check_interval(b, sizeof b, v);
    cr_assert_str_eq(b, "+21.0% to +40.0%");
    json_decref(v);
    prof_check_interval(b, sizeof b, json_null());
    cr_assert_str_eq(b, PROF_CHECK_NONE);
}

Test(check_render, markdown_matches_golden_files)
{
    golden("pass_improved", "markdown", "md");
    golden("regression", "markdown", "md");
    golden("hostile", "markdown", "md");
}

Test(check_render, github_matches_golden_files)
{
    golden("pass_improved", "github", "github");
    golden("regression", "github", "github");
    golden("hostile", "github", "github");
}

Test(check_render, terminal_matches_golden_files)
{
    golden("pass_improved", "terminal", "txt");
    golden("regression", "terminal", "txt");
    golden("hostile", "terminal", "txt");
}

Test(check_render, json_is_the_document)
{
    const char *fixtures[] = {"pass_improved", "regression", "hostile"};
    for (size_t i = 0; i < 3; i++) {
        size_t n;
        json_t *doc = load(fixtures[i]);
        char *out = golden_render(&prof_check_render_json, doc, &n);
        cr_assert(n > 0 && out[n - 1] == '\n', "%s: not newline-terminated", fixtures[i]);
        json_t *back = json_loads(out, 0, NULL);
        cr_assert(json_equal(doc, back), "%s: JSON output is not the document", fixtures[i]);
        json_decref(back);
        json_decref(doc);
        free(out);
    }
}

/* No byte of s below 0x20 but the newlines (and tabs when tabs_ok): nothing reaches a terminal raw. */
static void no_controls(const char *what, const char *s, int tabs_ok)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        cr_assert(*p >= 0x20 && *p != 0x7f ? 1 : *p == '\n' || (tabs_ok && *p == '\t'),
                  "%s: raw control byte 0x%02x at offset %td", what, *p, (const char *)p - s);
}

Test(check_render, terminal_escapes_control_characters)
{
    json_t *doc = load("hostile");
    char *out = golden_render(&prof_check_render_terminal, doc, NULL);
    no_controls("terminal", out, 0);
    cr_assert_not_null(strstr(out, "\\x1B[31mred\\x01"), "ESC and SOH as \\xNN");
    cr_assert_not_null(strstr(out, "st%25age\\n::error"), "a newline as \\n");
    cr_assert_not_null(strstr(out, "`tick`\\tTAB\\r"), "tab and CR as \\t, \\r");
    cr_assert_not_null(strstr(out, "\\u0085"), "a C1 control as \\u0085");
    cr_assert_not_null(strstr(out, "end\\\\0 wall_seconds"), "a backslash doubled");
    cr_assert_not_null(strstr(out, "label with \\x1B]0;title\\x07 and \\n newline"));
    cr_assert_not_null(strstr(out, "\ncheck: REGRESSION \xE2\x80\x94 2 regressed, 0 improved, 1 inconclusive, "
                                   "1 unmeasured, 3 passed\n"));
    free(out);
    json_decref(doc);
}

Test(check_render, markdown_escapes_keep_cells_on_one_line)
{
    json_t *doc = load("hostile");
    char *out = golden_render(&prof_check_render_markdown, doc, NULL);
    no_controls("markdown", out, 0);
    cr_assert_not_null(strstr(out, "| st%25age<br>::error::x, \"q\" &lt;b&gt;&amp;amp; \\| \\`tick\\` TAB \\\\x1B\\[31mred"));
    cr_assert_null(strstr(out, "<b>"), "raw HTML from a stage name");
    cr_assert_null(strstr(out, " | `tick`"), "a raw pipe or backtick from a stage name");
    /* Every table row has the 8 cells and 9 unescaped pipes of the header. */
    size_t rows = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != '|')
            continue;
        int pipes = 0;
        for (char *p = line; *p; p++)
            pipes += *p == '|' && (p == line || p[-1] != '\\');
        cr_assert_eq(pipes, 9, "a row's cells spilled: %s", line);
        rows++;
    }
    cr_assert_eq(rows, 2 + 7);
    free(out);
    json_decref(doc);
}

Test(check_render, github_escapes_data_and_properties)
{
    json_t *doc = load("hostile");
    char *out = golden_render(&prof_check_render_github, doc, NULL);
    no_controls("github", out, 1);
    /* In a title: % first, then CR, LF, ':' and ','. */
    cr_assert_not_null(strstr(out, "::error title=st%2525age%0A%3A%3Aerror%3A%3Ax%2C \"q\" <b>&amp; | `tick`\tTAB%0D\\x1B"));
    /* In a message: %, CR and LF only; ':' and ',' stay. */
    cr_assert_not_null(strstr(out, " regressed::reason %250A with%0Anewline, colon: and comma,"));
    cr_assert_not_null(strstr(out, "::warning title=poolprof check::warning with %25, %0D%0A, ::notice::,"));
    cr_assert_null(strstr(out, "title=st%25age"), "a raw %% in a title");
    /* Every line is one command: no stage name broke one in two. */
    int lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++)
        cr_assert(strncmp(line, "::error title=", 14) == 0 || strncmp(line, "::warning title=", 16) == 0 ||
                      strncmp(line, "::notice title=", 15) == 0,
                  "not a workflow command: %s", line);
    cr_assert_eq(lines, 2 + 1 + 2);
    free(out);
    json_decref(doc);
}

Test(check_render, github_is_silent_when_all_passed)
{
    json_t *doc = load("pass_improved");
    json_t *first = json_array_get(json_object_get(doc, "checks"), 0);
    json_object_set_new(first, "result", json_string("passed"));
    size_t n;
    char *out = golden_render(&prof_check_render_github, doc, &n);
    cr_assert_eq(n, 0, "annotations for a check that passed: %s", out);
    free(out);
    json_decref(doc);
}

/* A document of n checks: the first n_reg regressed, then n_inc inconclusive, n_unm unmeasured, the rest passed. */
static json_t *big(size_t n, size_t n_reg, size_t n_inc, size_t n_unm, size_t name_len)
{
    json_t *doc = load("regression"), *checks = json_array();
    char stage[4096];
    cr_assert(name_len < sizeof stage - 32);
    for (size_t i = 0; i < n; i++) {
        const char *res = i < n_reg ? "regressed" : i < n_reg + n_inc ? "inconclusive"
                                                 : i < n_reg + n_inc + n_unm ? "unmeasured" : "passed";
        snprintf(stage, sizeof stage, "%0*zu", (int)name_len, i);
        json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:[f,f], s:f, s:[i,i], s:s, s:n, s:s?}",
            "stage", stage, "figure", "wall_seconds", "kind", "timing", "rule", "at most +10%",
            "rule_source", "default", "threshold", 0.1, "base", 1.0, "current", 1.3, "change", 1.3,
            "interval", 1.2, 1.4, "p", 0.0079, "samples", 5, 5, "result", res, "note",
            "reason", strcmp(res, "passed") ? "wall_seconds rose 30.0%, beyond the +10% allowed" : NULL));
    }
    json_object_set_new(doc, "checks", checks);
    json_object_set_new(doc, "counts", json_pack("{s:I, s:i, s:I, s:I, s:I}", "regressed", (json_int_t)n_reg,
        "improved", 0, "inconclusive", (json_int_t)n_inc, "unmeasured", (json_int_t)n_unm,
        "passed", (json_int_t)(n - n_reg - n_inc - n_unm)));
    return doc;
}

static size_t count_prefix(const char *s, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    for (const char *p = s; p; p = strchr(p, '\n')) {
        p += *p == '\n';
        n += strncmp(p, prefix, pl) == 0;
        if (!*p)
            break;
    }
    return n;
}

Test(check_render, github_shows_ten_of_each_kind)
{
    /* 30 regressed, 25 inconclusive + 20 unmeasured + 1 document warning = 46 warnings. */
    json_t *doc = big(20000, 30, 25, 20, 8);
    char *out = golden_render(&prof_check_render_github, doc, NULL);
    cr_assert_eq(count_prefix(out, "::error "), 10);
    cr_assert_eq(count_prefix(out, "::warning "), 10);
    cr_assert_not_null(strstr(out, "::notice title=poolprof check::20 more errors and 36 more warnings left out"));
    cr_assert_eq(count_prefix(out, "::notice "), 1);
    free(out);
    json_decref(doc);
}

/* The number before " of N rows left out", or 0 when nothing was. */
static size_t left_out(const char *md)
{
    const char *p = strstr(md, "\n_");
    size_t n = 0;
    return p && strstr(p, "rows left out") && sscanf(p + 2, "%zu", &n) == 1 ? n : 0;
}

Test(check_render, markdown_stays_under_a_mebibyte_dropping_passed_rows_first)
{
    json_t *doc = big(20000, 30, 25, 20, 8);
    size_t n;
    char *out = golden_render(&prof_check_render_markdown, doc, &n);
    cr_assert(n <= 1000000, "%zu bytes", n);
    size_t shown = count_prefix(out, "| ") - 2, dropped = left_out(out);
    cr_assert(shown > 1000 && shown < 20000, "%zu rows shown", shown);
    cr_assert_eq(shown + dropped, 20000, "%zu shown + %zu said left out", shown, dropped);
    /* Every flagged row is there, and every one left out passed. */
    cr_assert_eq(count_prefix(out, "- **regressed**"), 30);
    cr_assert_eq(count_prefix(out, "- **inconclusive**"), 25);
    cr_assert_eq(count_prefix(out, "- **unmeasured**"), 20);
    char want[128];
    snprintf(want, sizeof want, "%zu passed, 0 improved, 0 unmeasured, 0 inconclusive, 0 regressed.", dropped);
    cr_assert_not_null(strstr(out, want), "left-out line: want \"%s\"", want);
    free(out);
    json_decref(doc);
}

Test(check_render, markdown_drops_flagged_rows_when_they_alone_are_too_many)
{
    /* 20,000 regressed rows with 100-character stage names: over 1 MiB before any passed one. */
    json_t *doc = big(20000, 20000, 0, 0, 100);
    size_t n;
    char *out = golden_render(&prof_check_render_markdown, doc, &n);
    cr_assert(n <= 1000000, "%zu bytes", n);
    size_t shown = count_prefix(out, "| ") - 2, dropped = left_out(out);
    cr_assert(dropped > 0 && shown + dropped == 20000, "%zu shown, %zu left out", shown, dropped);
    cr_assert_eq(count_prefix(out, "- **regressed**"), shown, "a shown row without its reason");
    char want[128];
    snprintf(want, sizeof want, "0 passed, 0 improved, 0 unmeasured, 0 inconclusive, %zu regressed.", dropped);
    cr_assert_not_null(strstr(out, want), "left-out line: want \"%s\"", want);
    free(out);
    json_decref(doc);
}

/* Render doc as JUnit into a file and validate it with xmllint against tests/data/junit.xsd. */
static void junit_valid(const char *what, json_t *doc)
{
    char path[] = "/tmp/check_junit_XXXXXX", cmd[8192];
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    struct prof_report r = {.doc = doc};
    cr_assert_eq(prof_render(&prof_check_render_junit, &r, f), 0);
    fclose(f);
    snprintf(cmd, sizeof cmd, "xmllint --noout --schema '%s/junit.xsd' '%s' 2>/dev/null", DATA, path);
    int rc = system(cmd);
    if (rc != 0)
        cr_log_error("%s: xmllint exited %d on %s (xmllint is in libxml2-utils: scripts/setup.sh)", what, rc, path);
    else
        unlink(path);
    cr_assert_eq(rc, 0, "%s: JUnit output does not validate against tests/data/junit.xsd", what);
}

Test(check_render, junit_validates_against_the_schema)
{
    const char *fixtures[] = {"pass_improved", "regression", "hostile"};
    for (size_t i = 0; i < 3; i++) {
        json_t *doc = load(fixtures[i]);
        junit_valid(fixtures[i], doc);
        json_object_set_new(doc, "strict", json_true());
        junit_valid(fixtures[i], doc);
        json_decref(doc);
    }
    json_t *doc = big(2000, 30, 25, 20, 8);
    junit_valid("2000 rows", doc);
    json_decref(doc);
}

Test(check_render, junit_escapes_and_counts)
{
    json_t *doc = load("hostile");
    char *out = golden_render(&prof_check_render_junit, doc, NULL);
    no_controls("junit", out, 1);
    cr_assert_not_null(strstr(out, "<testcase classname=\"poolprof.check.st%25age&#10;::error::x, &quot;q&quot; "
                                   "&lt;b&gt;&amp;amp; | `tick`&#9;TAB&#13;\\x1B[31mred\\x01 ]]&gt;"));
    cr_assert_not_null(strstr(out, "\\uFFFE end"), "U+FFFE is no XML 1.0 character");
    cr_assert_not_null(strstr(out, "name=\"weird|fig,ure:%&#10;&lt;x&gt;\""));
    cr_assert_not_null(strstr(out, "value=\"cur &lt;&amp;&gt; &quot;q&quot; &apos;a&apos;\""));
    cr_assert_null(strstr(out, "<b>"));
    cr_assert_null(strstr(out, "]]>"), "a CDATA end outside a CDATA section");
    cr_assert_not_null(strstr(out, "<testsuites name=\"poolprof check\" tests=\"7\" failures=\"2\" errors=\"0\" time=\"0\">"));
    cr_assert_not_null(strstr(out, "<testsuite name=\"poolprof check\" tests=\"7\" failures=\"2\" errors=\"0\" skipped=\"2\" time=\"0\">"));
    cr_assert_eq(count_prefix(out, "      <failure message="), 2);
    cr_assert_eq(count_prefix(out, "      <skipped message="), 2);
    free(out);
    /* Under --strict the inconclusive check fails the gate, and the report with it. */
    json_object_set_new(doc, "strict", json_true());
    out = golden_render(&prof_check_render_junit, doc, NULL);
    cr_assert_not_null(strstr(out, "tests=\"7\" failures=\"3\" errors=\"0\" skipped=\"1\""));
    cr_assert_not_null(strstr(out, "type=\"inconclusive\">"));
    free(out);
    json_decref(doc);
}
