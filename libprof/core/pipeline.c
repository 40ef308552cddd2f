/* pipeline.c: runs the steps from a run directory to its report in order, and reads back reports already written. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/advise.h"
#include "core/merge.h"
#include "core/pipeline.h"
#include "core/read.h"
#include "core/run.h"
#include "core/stages.h"
#include "prof.h"

struct analysis {
    struct prof_records rec;
    struct prof_run run;
    struct prof_stages stages;
    struct prof_report report;
};

static void analysis_free(struct analysis *a)
{
    json_decref(a->report.doc);
    prof_stages_free(&a->stages);
    prof_run_free(&a->run);
    prof_records_free(&a->rec);
    free(a);
}

int prof_analyze(const char *rundir, struct prof_report **out)
{
    int rc;

    if (!rundir || !out)
        return PROF_EINVAL;
    *out = NULL;
    struct analysis *a = calloc(1, sizeof *a);
    if (!a)
        return PROF_ENOMEM;
    if ((rc = prof_read(rundir, &a->rec)) || (rc = prof_merge(&a->rec, &a->run)) ||
        (rc = prof_stages_build(&a->run, &a->stages)) || (rc = prof_advise_stages(&a->stages, &a->run.machine)) ||
        (rc = prof_report_build(&a->run, &a->stages, &a->report))) {
        analysis_free(a);
        return rc;
    }
    /* The records are merged: only the run (and the stacks it took over) is read from here on. */
    prof_records_free(&a->rec);
    a->report.owner = a;
    *out = &a->report;
    return 0;
}

void prof_report_free(struct prof_report *r)
{
    if (!r)
        return;
    if (r->owner) {
        analysis_free(r->owner);
        return;
    }
    json_decref(r->doc);
    free(r);
}

static int read_file(const char *path, json_t **doc)
{
    json_error_t jerr;
    *doc = json_load_file(path, 0, &jerr);
    if (!*doc)
        return PROF_EFORMAT; /* the caller saw the file: it is there, but not JSON */
    const char *schema = json_string_value(json_object_get(*doc, "schema"));
    if (!schema || strcmp(schema, PROF_REPORT_SCHEMA) != 0) {
        json_decref(*doc);
        *doc = NULL;
        return PROF_EFORMAT;
    }
    return 0;
}

int prof_report_read(const char *path, json_t **doc)
{
    struct stat st;
    char file[PATH_MAX];

    if (!path || !doc)
        return PROF_EINVAL;
    *doc = NULL;
    if (stat(path, &st) != 0)
        return PROF_ENOENT;
    if (!S_ISDIR(st.st_mode))
        return read_file(path, doc);
    if (snprintf(file, sizeof file, "%s/report.json", path) >= (int)sizeof file)
        return PROF_ERANGE;
    if (stat(file, &st) == 0)
        return read_file(file, doc);
    struct prof_report *r;
    int rc = prof_analyze(path, &r);
    if (rc)
        return rc;
    *doc = json_incref(r->doc);
    prof_report_free(r);
    return 0;
}
