/* output.h: the report outputs a command was asked for (--format FORMAT[=PATH], --json PATH): checked when parsed, rendered at the end. */
#ifndef POOLPROF_TOOLS_OUTPUT_H
#define POOLPROF_TOOLS_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include "cli.h"
#include "core/report.h"

#define OUTPUTS_MAX 16

struct output {
    const struct prof_renderer *rd;
    const char *path; /* NULL: the command's own stream (in place of the terminal summary); "-": stdout */
};

struct outputs {
    struct output o[OUTPUTS_MAX];
    size_t n;
    /* The renderer table the formats come from, its first entry the summary in place of none:
     * NULL for the report's (prof_renderer_at); check gives its own (prof_check_renderer_at). */
    const struct prof_renderer *(*table)(size_t i);
};

/* Option parsers (struct outputs): --format FORMAT[=PATH], and --json PATH, the same as --format json=PATH.
 * A PATH that cannot be written is refused here, before anything runs. */
int output_parse_format(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);
int output_parse_json(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);

/*
 * Render every output of out; when none of them went to the command's own stream
 * (no PATH, or '-' when that stream is stdout), the terminal summary goes there. One line for each output that could not be
 * written; 0 or the first PROF_E*.
 */
int outputs_render(const struct outputs *out, const struct prof_report *r, FILE *stream);

/* The formats of the report's renderer table, one line each, for poolprof help. */
void outputs_help(FILE *out);
/* The same for another table (check's). */
void outputs_help_table(FILE *out, const struct prof_renderer *(*table)(size_t i));

#endif
