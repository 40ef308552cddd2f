/* report.c: `poolprof report RUNDIR`: merge a run directory again (even one whose poolprof was killed) and render it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "prof.h"
#include "core/pipeline.h"
#include "reports/render.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: poolprof report [--format terminal|json] [--json FILE] RUNDIR\n");
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"json", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *format = "terminal", *json_path = NULL;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+hf:j:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'j':
            json_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const struct prof_renderer *rd = prof_renderer_find(format);
    if (!rd) {
        fprintf(stderr, "poolprof: unknown format '%s' (terminal, json)\n", format);
        return 2;
    }
    struct prof_report *report = NULL;
    int err = prof_analyze(argv[optind], &report);
    if (err < 0) {
        fprintf(stderr, "poolprof: %s: cannot read run: %s\n", argv[optind], prof_strerror(err));
        return 1;
    }
    if ((err = prof_render_rundir(report, argv[optind])) < 0)
        fprintf(stderr, "poolprof: %s/report.json: cannot write: %s\n", argv[optind], prof_strerror(err));
    if (json_path && (err = prof_render_file(&prof_render_json, report, json_path)) < 0) {
        fprintf(stderr, "poolprof: %s: cannot write report\n", json_path);
        prof_report_free(report);
        return 1;
    }
    err = prof_render(rd, report, stdout);
    prof_report_free(report);
    return err < 0 ? 1 : 0;
}
