/* report.h: the report model, the last step: the report document (schema poolprof.report/1) and the merged run it came from, what renderers read. */
#ifndef POOLPROF_REPORT_H
#define POOLPROF_REPORT_H

#include <stddef.h>
#include <jansson.h>

#define PROF_REPORT_SCHEMA "poolprof.report/1"
/* processes[].locks[] lists at most this many of a process's contended locks, most wait first;
 * measurement.notes names the cap when a process had more. */
#define PROF_REPORT_MAX_LOCKS 32

struct prof_run;
struct prof_stages;

/*
 * doc is the report as a document: the run, its stages with their figures and verdicts,
 * its processes and threads, how it was measured (report.schema.json beside the poolprof executable). The
 * metric table (format/metrics.h) names and describes every summed figure in it. Renderers
 * of figures and verdicts read doc only, so a report read back from a file renders the
 * same; renderers of what the document does not hold (stacks, series, timelines) read run.
 */
struct prof_report {
    json_t *doc;
    const struct prof_run *run;   /* NULL for a report read back from a file */
    void *owner;                  /* what the pipeline made on the way (pipeline.c), freed with the report */
};

/* The report-model step: the document of a merged, staged and judged run. r->run = m.
 * 0 or PROF_ENOMEM. */
int prof_report_build(const struct prof_run *m, const struct prof_stages *S, struct prof_report *r);

/* Add a line to the document's measurement.errors (a file a renderer could not write). */
void prof_report_add_error(struct prof_report *r, const char *msg);

/* A stage of a report document by name ("overall" or a stages[] name), or NULL. */
const json_t *prof_report_stage(const json_t *doc, const char *name);

/* "overall, fetch, transform": the stage names a report offers, for an error message. */
void prof_report_stage_names(const json_t *doc, char *buf, size_t cap);

#endif
