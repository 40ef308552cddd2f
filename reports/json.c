/* json.c: the JSON renderer: the report document itself, indented, keys in insertion order (the check's document too). */
#include <stdio.h>
#include <jansson.h>

#include "prof.h"
#include "reports/render.h"

int prof_render_json_doc(const struct prof_report *r, FILE *out)
{
    if (!r || !r->doc || !out)
        return PROF_EINVAL;
    if (json_dumpf(r->doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) != 0)
        return PROF_EIO;
    if (fputc('\n', out) == EOF)
        return PROF_EIO;
    return 0;
}

const struct prof_renderer prof_render_json = {
    .name = "json",
    .summary = "the report document (schema " PROF_REPORT_SCHEMA ": report.schema.json beside poolprof)",
    .rundir_file = "report.json",
    .render = prof_render_json_doc,
};
