/* advise.h: pure functions from a stage's measured figures to a verdict: class, model, workers, reasons. */
#ifndef POOLPROF_ADVISE_H
#define POOLPROF_ADVISE_H

/*
 * Nothing here reads /proc, a clock or a file: the merge measures, these
 * functions decide, and the Criterion tests drive them with synthetic figures.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/verdict.h"
#include "format/machine.h"

/* Judge one stage. Returns 0 or PROF_EINVAL (NULL argument, negative time). */
int prof_advise_stage(const struct prof_stage_figures *f, const struct prof_machine *m,
                      struct prof_verdict *out);

/* Judge the whole run: its own figures, plus the verdicts of the named stages
 * (markers, thread names, process roles). When stages that carry a real share
 * of the run want different models, the run is hybrid. */
int prof_advise_overall(const struct prof_stage_figures *overall, const struct prof_verdict *stages,
                        const double *stage_work_s, size_t nstages, const struct prof_machine *m,
                        struct prof_verdict *out);

/* Does memory keep climbing through the run rather than level off? t in
 * seconds, rss in bytes, n samples in time order. Returns 1, 0, or PROF_EINVAL. */
int prof_rss_leak_suspected(const double *t, const uint64_t *rss, size_t n);

/*
 * membound.c: does scaling stop because the workers wait on memory? One point per worker count
 * that a profiled run measured with a PMU (issue 30): instructions per cycle, last-level cache
 * misses per thousand instructions, and the measured speedup (over the sweep's first count).
 * Memory-bound when IPC falls by more than 20% from the fewest workers to the most while the
 * misses rise or stay high, and the speedup flattens: then cap is the fewest workers within 10%
 * of the best speedup, beyond which more stop paying. A point without IPC (no PMU: ipc <= 0 or
 * not finite) is left out; with fewer than two left, judged is 0 and nothing is said.
 * Returns 0, or PROF_EINVAL for a NULL argument.
 */
struct prof_membound_point {
    int workers;
    double ipc;              /* instructions per cycle; <= 0 = not counted */
    double llc_mpki;         /* last-level cache misses per thousand instructions; < 0 = not counted */
    double speedup;          /* measured, over the sweep's first count */
};
struct prof_membound {
    int judged;              /* two or more points had IPC: memory_bound and reason mean something */
    int memory_bound;
    int cap;                 /* memory-bound: more workers than this stop paying; 0 otherwise */
    double ipc_drop;         /* 1 - IPC at the most workers / IPC at the fewest */
    char reason[PROF_REASON_BYTES];
};
int prof_membound(const struct prof_membound_point *pts, size_t n, struct prof_membound *out);

/* verdicts.c: the advise step over a run's stages: every stage's verdict, then overall's.
 * Stages the program marked itself, when there are any, alone decide whether the run is
 * hybrid. 0 or PROF_E*. */
struct prof_stages;
int prof_advise_stages(struct prof_stages *S, const struct prof_machine *m);

/* prof_class_name() and prof_model_name() are the verdict's vocabulary: static inline in verdict.h. */

#endif
