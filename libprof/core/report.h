/* report.h: from a run directory to a report (schema poolprof.report/1), and the renderers of a report. */
#ifndef POOLPROF_REPORT_H
#define POOLPROF_REPORT_H

#include <stdio.h>
#include <jansson.h>

#define PROF_REPORT_SCHEMA "poolprof.report/1"

/* Merge RUNDIR (run.json, monitor.rec, the proc/ records) into the model, judge it
 * (advise), and build the report. Also writes RUNDIR/rss.csv and
 * RUNDIR/report.json. Returns 0 or PROF_E*; *out is a new reference. */
int prof_report_from_rundir(const char *rundir, json_t **out);

/* Renderers read the report JSON only: one ops struct per format. */
struct prof_exporter {
    const char *name;
    int (*render)(const json_t *report, FILE *out); /* 0 or PROF_E* */
};

extern const struct prof_exporter prof_exporter_json;     /* the report itself, indented */
extern const struct prof_exporter prof_exporter_terminal; /* the human summary poolprof prints on stderr */

/* Look an exporter up by name; NULL when unknown. */
const struct prof_exporter *prof_exporter_find(const char *name);

#endif
