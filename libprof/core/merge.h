/* merge.h: the merge step: the records of a run directory (read.h) combined into the merged run (run.h). */
#ifndef POOLPROF_MERGE_H
#define POOLPROF_MERGE_H

#include "core/read.h"
#include <stdlib.h>
#include <string.h>

#include "core/run.h"

/* Arrays in the run carry no capacity field: they grow by doubling from 8, so the count says when. */
static inline void *prof_run_push(void *p, size_t n, size_t elem)
{
    if (n != 0 && (n < 8 || (n & (n - 1))))
        return p;
    return realloc(p, (n == 0 ? 8 : n * 2) * elem);
}

#define PUSH(arr, n)                                                     \
    ({                                                                   \
        __typeof__(arr) q_ = prof_run_push((arr), (n), sizeof(*(arr)));           \
        q_ ? ((arr) = q_, memset(&(arr)[(n)], 0, sizeof(*(arr))), &(arr)[(n)++]) : NULL; \
    })

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

/* merge_counters.c: the perf counters' readings onto the run's threads. */
int prof_merge_counters(struct prof_records *rec, struct prof_run *m);

#endif
