/* report.c: `poolprof report RUNDIR`: merge a run directory again (even one whose poolprof was killed) and render it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "prof.h"
#include "core/report.h"

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
    const struct prof_exporter *exp = prof_exporter_find(format);
    if (!exp) {
        fprintf(stderr, "poolprof: unknown format '%s' (terminal, json)\n", format);
        return 2;
    }
    json_t *report = NULL;
    int err = prof_report_from_rundir(argv[optind], &report);
    if (err < 0) {
        fprintf(stderr, "poolprof: %s: cannot read run: %s\n", argv[optind], prof_strerror(err));
        return 1;
    }
    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f || prof_exporter_json.render(report, f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "poolprof: %s: cannot write report\n", json_path);
            json_decref(report);
            return 1;
        }
    }
    err = exp->render(report, stdout);
    json_decref(report);
    return err < 0 ? 1 : 0;
}
