/* report_int.h: the parts of the report model built outside report.c (the perf counters' objects, report_counters.c). */
#ifndef POOLPROF_REPORT_INT_H
#define POOLPROF_REPORT_INT_H

#include <jansson.h>

#include "core/run.h"
#include "core/stages.h"

/* measurement.counters: every event of the run, counted or not, with why not. [] when none was recorded. */
json_t *prof_report_counters_run(const struct prof_run *m, const struct prof_stages *S);

/* processes[].threads[].counters: {event: count} of the events that counted the thread, or null. */
json_t *prof_report_counters_thread(const struct prof_run *m, const struct prof_thread *t);

/* A stage's counters: [{event, role, value, per_cpu_second, ...}], or null for a marker stage
 * (counted per thread, not per marker entry) and a run without counters. */
json_t *prof_report_counters_stage(const struct prof_run *m, const struct prof_stage *s);

#endif
