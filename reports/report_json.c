/* report_json.c: the JSON exporter: the report itself, indented, keys in insertion order. */
#include <stdio.h>
#include <jansson.h>

#include "prof.h"
#include "core/report.h"

static int render_json(const json_t *report, FILE *out)
{
    if (!report || !out)
        return PROF_EINVAL;
    if (json_dumpf(report, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) != 0)
        return PROF_EIO;
    if (fputc('\n', out) == EOF)
        return PROF_EIO;
    return 0;
}

const struct prof_exporter prof_exporter_json = {
    .name = "json",
    .render = render_json,
};
