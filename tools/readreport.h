/* readreport.h: the shared report reader of the commands (report, sweep; check next): a run directory or a report file, and its stages, each failure one line saying what is wrong. */
#ifndef POOLPROF_TOOLS_READREPORT_H
#define POOLPROF_TOOLS_READREPORT_H

#include <jansson.h>

#include "core/report.h"

/* Merge the run directory rundir (prof_analyze). 0, or PROF_E* after one line: "not a poolprof
 * run directory (no run.json)", "no such directory", ... */
int readreport_run(const char *rundir, struct prof_report **out);

/* The report document of path, a report JSON file or a run directory (prof_report_read); what
 * names it in messages ("the profile report"), or NULL for path itself. 0 or PROF_E* after one line. */
int readreport_doc(const char *path, const char *what, json_t **doc);

/* The stage name of doc (prof_report_stage), or NULL after one line listing the stages doc has. */
const json_t *readreport_stage(const json_t *doc, const char *what, const char *name);

#endif
