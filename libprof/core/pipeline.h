/* pipeline.h: the whole way from a run directory to its report, each step once and in order: read, merge, stages, advise, report. */
#ifndef POOLPROF_PIPELINE_H
#define POOLPROF_PIPELINE_H

#include <jansson.h>

#include "core/report.h"

/*
 * read (read.h) -> merge (merge.h) -> stages (stages.h) -> advise (advise.h) -> report (report.h).
 * No step calls back into an earlier one; this file is the only one that calls them all.
 * Loading a run writes no files: whoever wants files asks a renderer (reports/render.h).
 */

/* Analyse RUNDIR. *out owns everything the steps made; free it with prof_report_free.
 * 0, or PROF_ENOENT / PROF_EFORMAT (no run.json, or not one poolprof wrote), PROF_ENOMEM. */
int prof_analyze(const char *rundir, struct prof_report **out);
void prof_report_free(struct prof_report *r);

/*
 * The shared report reader (sweep, check): path is a report JSON file, or a run directory,
 * whose report.json is read when it has one and which is analysed otherwise. *doc is a new
 * reference. 0, PROF_ENOENT, PROF_EFORMAT (not a poolprof report), PROF_ENOMEM.
 */
int prof_report_read(const char *path, json_t **doc);

#endif
