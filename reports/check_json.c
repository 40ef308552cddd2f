/* check_json.c: the check's JSON format: the check document itself, written as the report's JSON format writes the report. */
#include "reports/check_render.h"

const struct prof_renderer prof_check_render_json = {
    .name = "json",
    .summary = "the check document (schema " PROF_CHECK_SCHEMA ": check.schema.json beside poolprof)",
    .render = prof_render_json_doc,
};
