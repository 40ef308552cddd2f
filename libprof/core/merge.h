/* merge.h: the merge step: the records of a run directory (read.h) combined into the merged run (run.h). */
#ifndef POOLPROF_MERGE_H
#define POOLPROF_MERGE_H

#include "core/read.h"
#include "core/run.h"

/*
 * Build *m from rec: the shim's images first, then the monitor's lines (so a thread's
 * TASK figures are the largest of both), then each process's exec chain, start, end and
 * exit, then the sampler's figures (merge_sampler.c). The run takes over the sampler's
 * stacks (rec->sampler.samples becomes NULL). 0 or PROF_ENOMEM / PROF_EINVAL; m is
 * freed with prof_run_free either way.
 */
int prof_merge(struct prof_records *rec, struct prof_run *m);

/* merge_sampler.c: the sampler's states, GIL readings, stacks and futexes onto the run's threads. */
int prof_merge_sampler(struct prof_records *rec, struct prof_run *m);

#endif
