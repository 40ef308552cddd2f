/* check_junit.c: the check's JUnit XML format: one test case per stage and figure, for CI systems that read test reports. */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "prof.h"
#include "reports/check_render.h"

/*
 * The structure is the one Jenkins' junit-10.xsd admits (tests/data/junit.xsd states it), the
 * strictest of the published JUnit schemas that GitHub, GitLab and Jenkins readers all accept:
 * <testsuites> takes name, time, tests, failures and errors but no skipped count (the
 * <testsuite> has it), and a <testcase> has no <properties>. So each case's figures go into its
 * <system-out> as "name: value" lines (base, current, change, interval_lo, interval_hi, p,
 * threshold, rule, result), and the document's own facts into the suite's <properties>.
 *
 * Results: regressed is a <failure type="regression">, unmeasured a <skipped>. Inconclusive is
 * a <skipped> too, not a pass: the check could not tell, and a passed case would claim it did;
 * under --strict, where an inconclusive check fails the gate (exit 4), it is a
 * <failure type="inconclusive">, so the report fails exactly when poolprof check does.
 * The document holds no durations of the check itself: every time is "0".
 */

/*
 * s as XML 1.0 character data (attr: an attribute value). The five markup characters are
 * entities everywhere. In an attribute a newline, CR or tab is a character reference, else a
 * reader normalises it to a space; in text a CR is one, else it reads as a newline. Characters
 * XML 1.0 forbids even as references (other C0 controls, U+FFFE, U+FFFF) and malformed UTF-8
 * bytes print as \xNN or \uFFFE text: a parser would reject the whole report for one of them.
 */
static const char *xesc_char(uint32_t cp, int attr, char *buf, size_t cap)
{
    switch (cp) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&apos;";
    case '\r':
        return "&#13;";
    case '\n':
        return attr ? "&#10;" : NULL;
    case '\t':
        return attr ? "&#9;" : NULL;
    }
    if (cp < 0x20 || cp == 0xFFFE || cp == 0xFFFF) {
        snprintf(buf, cap, cp < 0x20 ? "\\x%02X" : "\\u%04X", (unsigned)cp);
        return buf;
    }
    return NULL;
}

static void xesc(FILE *out, const char *s, int attr)
{
    prof_check_escape(out, NULL, 0, s, xesc_char, attr, "\\x%02X", NULL);
}

/* A value as the document holds it, for machines: numbers with 12 significant digits. */
static void raw(FILE *out, const json_t *v)
{
    if (json_is_number(v))
        fprintf(out, "%.12g", json_number_value(v));
    else if (json_is_string(v))
        xesc(out, json_string_value(v), 0);
    else if (json_is_boolean(v))
        fputs(json_is_true(v) ? "true" : "false", out);
    else
        fputs("null", out);
}

static void property(FILE *out, const char *name, const json_t *v)
{
    fprintf(out, "      <property name=\"%s\" value=\"", name);
    if (json_is_string(v))
        xesc(out, json_string_value(v), 1);
    else
        raw(out, v); /* numbers, booleans and null need no escaping */
    fputs("\"/>\n", out);
}

static void figures(FILE *out, const json_t *c)
{
    const json_t *iv = json_object_get(c, "interval");
    struct { const char *name; const json_t *v; } f[] = {
        {"base", json_object_get(c, "base")},           {"current", json_object_get(c, "current")},
        {"change", json_object_get(c, "change")},       {"interval_lo", json_array_get(iv, 0)},
        {"interval_hi", json_array_get(iv, 1)},         {"p", json_object_get(c, "p")},
        {"threshold", json_object_get(c, "threshold")}, {"rule", json_object_get(c, "rule")},
        {"rule_source", json_object_get(c, "rule_source")}, {"result", json_object_get(c, "result")},
        {"note", json_object_get(c, "note")},
    };
    fputs("      <system-out>", out);
    for (size_t k = 0; k < sizeof f / sizeof *f; k++) {
        fprintf(out, "%s: ", f[k].name);
        raw(out, f[k].v);
        fputc('\n', out);
    }
    fputs("</system-out>\n", out);
}

static void testcase(FILE *out, const json_t *c, int strict)
{
    const char *result = prof_check_str(c, "result", "");
    const char *reason = prof_check_str(c, "reason", NULL);
    int regressed = strcmp(result, "regressed") == 0, inconclusive = strcmp(result, "inconclusive") == 0;

    fputs("    <testcase classname=\"poolprof.check.", out);
    xesc(out, prof_check_str(c, "stage", ""), 1);
    fputs("\" name=\"", out);
    xesc(out, prof_check_str(c, "figure", ""), 1);
    fputs("\" time=\"0\">\n", out);
    if (regressed || (inconclusive && strict)) {
        fputs("      <failure message=\"", out);
        xesc(out, reason ? reason : result, 1);
        fprintf(out, "\" type=\"%s\">", regressed ? "regression" : "inconclusive");
        xesc(out, reason ? reason : result, 0);
        fputs("\nrule: ", out);
        xesc(out, prof_check_str(c, "rule", ""), 0);
        fputs(" (", out);
        xesc(out, prof_check_str(c, "rule_source", ""), 0);
        fputs(")</failure>\n", out);
    } else if (inconclusive || strcmp(result, "unmeasured") == 0) {
        fputs("      <skipped message=\"", out);
        xesc(out, result, 1);
        if (reason) {
            fputs(": ", out);
            xesc(out, reason, 1);
        }
        fputs("\"/>\n", out);
    }
    figures(out, c);
    fputs("    </testcase>\n", out);
}

static int render_check_junit(const struct prof_report *r, FILE *out)
{
    if (!r || !r->doc || !out)
        return PROF_EINVAL;
    const json_t *doc = r->doc, *checks = json_object_get(doc, "checks"), *c, *v;
    const json_t *base = json_object_get(doc, "base"), *cur = json_object_get(doc, "current");
    int strict = json_is_true(json_object_get(doc, "strict"));
    size_t i, failures = 0, skipped = 0, n = json_array_size(checks);

    json_array_foreach(checks, i, c) {
        const char *res = prof_check_str(c, "result", "");
        if (strcmp(res, "regressed") == 0 || (strict && strcmp(res, "inconclusive") == 0))
            failures++;
        else if (strcmp(res, "unmeasured") == 0 || strcmp(res, "inconclusive") == 0)
            skipped++;
    }
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    fprintf(out, "<testsuites name=\"poolprof check\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" time=\"0\">\n", n,
            failures);
    fprintf(out, "  <testsuite name=\"poolprof check\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"0\">\n",
            n, failures, skipped);
    fputs("    <properties>\n", out);
    property(out, "result", json_object_get(doc, "result"));
    property(out, "exit_status", json_object_get(doc, "exit_status"));
    property(out, "mode", json_object_get(doc, "mode"));
    property(out, "strict", json_object_get(doc, "strict"));
    property(out, "machine_match", json_object_get(doc, "machine_match"));
    property(out, "base.label", json_object_get(base, "label"));
    property(out, "base.samples", json_object_get(base, "samples"));
    property(out, "current.label", json_object_get(cur, "label"));
    property(out, "current.samples", json_object_get(cur, "samples"));
    property(out, "poolprof_version", json_object_get(doc, "poolprof_version"));
    fputs("    </properties>\n", out);
    json_array_foreach(checks, i, c)
        testcase(out, c, strict);
    /* What concerns no one case: the stages left out and the document's warnings. */
    const json_t *ignored = json_object_get(doc, "ignored_stages"), *warnings = json_object_get(doc, "warnings");
    if (json_array_size(ignored) || json_array_size(warnings)) {
        fputs("    <system-out>", out);
        json_array_foreach(ignored, i, v) {
            fputs("ignored stage: ", out);
            xesc(out, json_string_value(v), 0);
            fputc('\n', out);
        }
        json_array_foreach(warnings, i, v) {
            fputs("warning: ", out);
            xesc(out, json_string_value(v), 0);
            fputc('\n', out);
        }
        fputs("</system-out>\n", out);
    }
    fputs("  </testsuite>\n</testsuites>\n", out);
    return ferror(out) ? PROF_EIO : 0;
}

const struct prof_renderer prof_check_render_junit = {
    .name = "junit",
    .summary = "JUnit XML: a test case per stage and figure, regressions as failures (tests/data/junit.xsd)",
    .render = render_check_junit,
};
