/* stages.h: the stages step: the merged run cut into the parts that are judged on their own (overall, markers, thread names, process roles). */
#ifndef POOLPROF_STAGES_H
#define POOLPROF_STAGES_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/verdict.h"
#include "core/run.h"

/*
 * A stage, built once: the threads (or marker entries) that belong to it, their figures
 * summed by the metric table (format/metrics.h), what the sampler saw of them, and the
 * figures the advice reads (fig). The advise step fills verdict.
 */
struct prof_stage {
    char *name;
    const char *source;      /* "overall", "marker", "thread-name", "process-role" */
    struct prof_process **procs;
    size_t nprocs;
    int nthreads;
    double first_s, last_s;
    double thread_s;         /* the threads' lives (marker: self time), before idle waits are taken out */
    struct prof_counters sum; /* the metric table's figures, summed over the stage's threads or markers */
    double busy_s;           /* the IPC fraction's denominator: cpu + ipc + I/O wait */
    /* The sampler's figures (sampler.rec), for threads it watched. */
    int nsampled_threads;
    int nmonitored_threads;  /* threads the monitor read (their voluntary context switches are known) */
    double smp_s[PROF_TS_COUNT];
    uint64_t py_running_ticks, py_held_cpu;
    double serialize_s;
    /* Memory: the summed RSS series (prof_run_rss_series), its start, peak and growth. */
    double *rss_t;
    uint64_t *rss_v;
    size_t rss_n;
    uint64_t rss_start, rss_peak, rss_growth;
    int leak;                /* the advise step's: does the series keep climbing */
    const struct prof_process *hot_proc; /* owner of the hottest contended lock */
    /* Perf counters (stage_counters.c): each event of the run over the stage's threads. */
    struct prof_stage_ctr {
        uint64_t value;      /* summed; a multiplexed count scaled by enabled / running */
        int counted;         /* threads it counted */
        int partial;         /* of them, opened after the thread began (lazy following, attach) */
        int scaled;          /* of them, ran under 80% of the time it was enabled (multiplexed) */
        double min_running;  /* the least running / enabled of them (1 for software events) */
    } ctr[PROF_CTRREC_MAX];
    int ctr_threads;         /* threads the counters could have counted (not marker stages) */
    uint64_t fork_minflt;    /* forked (never exec'd) processes' threads: their minor faults... */
    uint64_t fork_stime_ns;  /* ...and kernel CPU */
    int fork_uncounted;      /* ...threads of them without a whole minor-fault count */
    struct prof_stage_figures fig;       /* what the advice reads */
    struct prof_verdict verdict;         /* what the advice said (the advise step) */
};

struct prof_stages {
    struct prof_stage overall;
    struct prof_stage **v;   /* markers, then thread names, then process roles; each by first start */
    size_t n;
    json_t *notes;           /* how the run was cut: a launcher left out, minor roles not reported */
};

/* Cut the run into stages and gather each one's figures. 0 or PROF_ENOMEM; S is freed
 * with prof_stages_free either way. m must outlive S (stages point at its processes). */
int prof_stages_build(const struct prof_run *m, struct prof_stages *S);
void prof_stages_free(struct prof_stages *S);

/* stage_counters.c, for stages.c: a thread's counts into its stage; the advice's counter figures. */
void prof_stage_ctr_add(const struct prof_run *m, struct prof_stage *s, const struct prof_process *p,
                        const struct prof_thread *t);
void prof_stage_ctr_figures(const struct prof_run *m, struct prof_stage *s);

#endif
