/* read.c: the read step's entry: every file of a run directory through its reader, in one order, and the records freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read.h"
#include "core/samples.h"
#include "prof.h"

int prof_read(const char *rundir, struct prof_records *rec)
{
    int rc;

    memset(rec, 0, sizeof *rec);
    if (!rundir)
        return PROF_EINVAL;
    rec->rundir = strdup(rundir);
    rec->shim_errors = json_array();
    rec->monitor_errors = json_array();
    rec->monitor_notes = json_array();
    rec->sampler_errors = json_array();
    rec->sweep_notes = json_array();
    rec->counters_errors = json_array();
    if (!rec->rundir || !rec->shim_errors || !rec->monitor_errors || !rec->monitor_notes || !rec->sampler_errors ||
        !rec->sweep_notes || !rec->counters_errors)
        return PROF_ENOMEM;
    if ((rc = prof_read_run(rundir, &rec->run)) != 0)
        return rc;
    /* Damaged records are listed and skipped: only memory stops the reading. */
    if ((rc = prof_read_shim(rec)) != 0 || (rc = prof_read_monitor(rec)) != 0 || (rc = prof_read_sampler(rec)) != 0 ||
        (rc = prof_read_sweep(rec)) != 0 || (rc = prof_read_counters(rec)) != 0)
        return rc;
    return 0;
}

static void strv_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void prof_records_free(struct prof_records *rec)
{
    if (!rec)
        return;
    json_decref(rec->run.doc);
    for (size_t i = 0; i < rec->nimages; i++) {
        struct prof_rec_image *im = &rec->images[i];
        free(im->fname);
        free(im->exe);
        strv_free(im->argv, im->argc);
        free(im->threads);
        free(im->children);
        free(im->locks);
        free(im->stages);
    }
    free(rec->images);
    for (size_t i = 0; i < rec->monitor.nlines; i++) {
        struct prof_rec_mon *l = &rec->monitor.lines[i];
        if (l->type == 'N' || l->type == 'E') {
            free(l->u.image.exe);
            strv_free(l->u.image.argv, l->u.image.argc);
        }
    }
    free(rec->monitor.lines);
    json_decref(rec->sampler.info);
    prof_samples_free(rec->sampler.samples);
    for (size_t i = 0; i < rec->sampler.nprocs; i++) {
        free(rec->sampler.procs[i].pyerr);
        free(rec->sampler.procs[i].exe);
        strv_free(rec->sampler.procs[i].argv, rec->sampler.procs[i].argc);
    }
    free(rec->sampler.procs);
    free(rec->sampler.exits);
    free(rec->sampler.gil);
    free(rec->sampler.futex);
    free(rec->sampler.spans);
    json_decref(rec->shim_errors);
    json_decref(rec->monitor_errors);
    json_decref(rec->monitor_notes);
    json_decref(rec->sampler_errors);
    json_decref(rec->sweep);
    json_decref(rec->sweep_notes);
    free(rec->counters.tasks);
    json_decref(rec->counters_errors);
    free(rec->rundir);
    memset(rec, 0, sizeof *rec);
}
