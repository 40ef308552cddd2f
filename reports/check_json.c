/* check_json.c: the check's JSON format: the check document itself, indented, keys in insertion order. */
#include <stdio.h>
#include <jansson.h>

#include "prof.h"
#include "reports/check_render.h"

static int render_check_json(const struct prof_report *r, FILE *out)
{
    if (!r || !r->doc || !out)
        return PROF_EINVAL;
    if (json_dumpf(r->doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) != 0)
        return PROF_EIO;
    if (fputc('\n', out) == EOF)
        return PROF_EIO;
    return 0;
}

const struct prof_renderer prof_check_render_json = {
    .name = "json",
    .summary = "the check document (schema " PROF_CHECK_SCHEMA ": check.schema.json beside poolprof)",
    .render = render_check_json,
};
