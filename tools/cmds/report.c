/* report.c: `poolprof report RUNDIR`: merges a run directory again (even one whose poolprof was killed) and renders it in the formats asked for. */
#include <stddef.h>
#include <stdio.h>

#include "cmds.h"
#include "core/pipeline.h"
#include "output.h"
#include "prof.h"
#include "readreport.h"
#include "reports/render.h"

/* The options; the table below fills them. */
static struct outputs outputs;

static const struct cli_opt options[] = {
    {"format", 0, "FORMAT[=PATH]",
     "render the report in FORMAT (below) to PATH, '-' for standard output; without PATH, to standard output "
     "in place of the terminal summary; repeatable",
     output_parse_format, 0, 0, 0, NULL},
    {"json", 0, "FILE", "the same as --format json=FILE", output_parse_json, 0, 0, 0, NULL},
    {NULL, 0, NULL, NULL, NULL, 0, 0, 0, NULL},
};

static int exec_report(char **args, int nargs)
{
    struct prof_report *report = NULL;
    const char *rundir = args[0];

    (void)nargs;
    if (readreport_run(rundir, &report) < 0)
        return CLI_EXIT_FAILED;
    /* A run directory we may not write (someone else's) is still reported. */
    int err = prof_render_rundir(report, rundir);
    if (err < 0)
        cli_msg("%s/report.json: cannot write: %s", rundir, prof_strerror(err));
    err = outputs_render(&outputs, report, stdout);
    prof_report_free(report);
    return err < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

const struct cli_cmd cmd_report = {
    .name = "report",
    .summary = "merge a run directory again and render its report",
    .usage = "[OPTIONS] RUNDIR [OPTIONS]",
    .about = "Merge the records of the run directory RUNDIR again (also one whose poolprof or target was "
             "killed), rewrite its report files (report.json, rss.csv, stacks.folded, stacks-offcpu.folded, report.md) and "
             "render the report: by default the terminal summary, on standard output. Options may come before "
             "or after RUNDIR.",
    .exits = "exit status: 0 when the report was rendered; 1 when RUNDIR is not a readable poolprof run "
             "directory or an output could not be written; 2 for bad usage, an unknown format, an output path "
             "that cannot be written, or no RUNDIR.",
    .opts = options,
    .dst = &outputs,
    .args = CLI_ARGS_LIST,
    .arg_name = "RUNDIR",
    .min_args = 1,
    .max_args = 1,
    .help_more = outputs_help,
    .exec = exec_report,
};
