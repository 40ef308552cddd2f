/* readreport.c: the shared report reader: run directories and report files read through libprof's pipeline, every way they can be wrong said in one line. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/pipeline.h"
#include "prof.h"
#include "readreport.h"

/* Why rundir is no run directory, before anything reads it: 0 when it may be one, else PROF_E* after one line. */
static int check_rundir(const char *rundir, const char *what)
{
    struct stat st;
    char path[PATH_MAX];

    if (stat(rundir, &st) < 0) {
        int err = errno;
        cli_msg("%s: %s", what, err == ENOENT ? "no such file or directory" : strerror(err));
        return prof_err_from_errno(err);
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_msg("%s: not a directory (a poolprof run directory is wanted)", what);
        return PROF_EINVAL;
    }
    if (snprintf(path, sizeof path, "%s/run.json", rundir) >= (int)sizeof path) {
        cli_msg("%s: path too long", what);
        return PROF_ERANGE;
    }
    if (stat(path, &st) < 0) {
        cli_msg("%s: not a poolprof run directory (no run.json)", what);
        return PROF_ENOENT;
    }
    return 0;
}

int readreport_run(const char *rundir, struct prof_report **out)
{
    int err = check_rundir(rundir, rundir);

    if (err < 0)
        return err;
    if ((err = prof_analyze(rundir, out)) < 0) {
        if (err == PROF_EFORMAT)
            cli_msg("%s: not a poolprof run directory (its run.json is not one poolprof wrote)", rundir);
        else
            cli_msg("%s: cannot read the run: %s", rundir, prof_strerror(err));
    }
    return err;
}

int readreport_doc(const char *path, const char *what, json_t **doc)
{
    struct stat st;
    int err;

    if (!what)
        what = path;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (err = check_rundir(path, what)) < 0)
        return err;
    if ((err = prof_report_read(path, doc)) < 0) {
        if (err == PROF_ENOENT)
            cli_msg("%s: no such file or directory", what);
        else if (err == PROF_EFORMAT)
            cli_msg("%s: not a poolprof report (schema %s) or run directory", what, PROF_REPORT_SCHEMA);
        else
            cli_msg("%s: cannot read: %s", what, prof_strerror(err));
    }
    return err;
}

const json_t *readreport_stage(const json_t *doc, const char *what, const char *name)
{
    const json_t *stage = prof_report_stage(doc, name);

    if (!stage) {
        char names[512];
        prof_report_stage_names(doc, names, sizeof names);
        cli_msg("%s has no stage '%s' (stages: %s)", what, name, names);
    }
    return stage;
}
