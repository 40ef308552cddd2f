/* sampler.h: the ptrace sampler: a thread of the CLI that follows the target tree and records why each thread is off CPU, with its stacks. */
#ifndef POOLPROF_SAMPLER_H
#define POOLPROF_SAMPLER_H

#include <stdint.h>
#include <sys/types.h>

/*
 * One tracer thread does every ptrace call (ptrace requests must come from
 * the thread that seized). It seizes every thread of the tree once with
 * PTRACE_SEIZE and follows clones, forks, vforks, execs and exits through
 * ptrace events; between events it wakes at the sampling rate (with random
 * jitter) and, for each thread: reads schedstat, stat and syscall (kept open,
 * re-read with pread) to learn its state, and takes its stacks: CPython frames
 * with process_vm_readv; native frames of running threads from the kernel's
 * copies at perf task-clock samples (perfstack.h), of blocked threads (and of
 * all where perf events are refused) by stopping the thread only long enough
 * to copy its registers and stack top. Everything goes to RUNDIR/sampler.rec
 * (samprec.h). When the thread exits, the kernel detaches whatever it still
 * traces, so no tracee is left stopped even if detaching goes wrong.
 */
struct prof_sampler;

struct prof_sampler_opts {
    const char *rundir;      /* absolute; sampler.rec is written here */
    pid_t root;              /* the process whose tree is sampled */
    int rate_hz;             /* ticks per second (jittered +-20%) */
    int native;              /* take native stacks (needs ptrace) */
    int python;              /* take CPython stacks */
    int follow;              /* seize and follow with ptrace (0: /proc only) */
    /* The tracer's wait reaps a tracee whose parent is the tracer's own process
     * (the root of `poolprof run`, orphans of a subreaper): its exit status is
     * handed over here, from the sampler thread. May be NULL. */
    void (*reaped)(void *ctx, pid_t pid, int status);
    void *reaped_ctx;
    /* A task of the tree became known, from the sampler thread: born 1 at a fork or clone stop
     * (it has not run yet), 0 when found running (a thread followed lazily). May be NULL. The
     * counters observer opens the task's counters here (libprof/counters/counters.h). */
    void (*task_new)(void *ctx, pid_t pid, pid_t tid, int born);
    void *task_ctx;
};

/* Create sampler.rec, start the thread, and return once the tree is seized
 * (or seizing failed and the sampler fell back to /proc). 0 or PROF_E*. */
int prof_sampler_start(const struct prof_sampler_opts *o, struct prof_sampler **out);

/* A one-line note for the user (e.g. why ptrace was refused), or NULL. */
const char *prof_sampler_note(const struct prof_sampler *s);

/* 1 and *status (raw wait status) once the root's exit was seen through
 * PTRACE_EVENT_EXIT, else 0. Safe from any thread. */
int prof_sampler_root_exit(struct prof_sampler *s, int *status);

/* Every traced process has gone (the sampler then idles). */
int prof_sampler_idle(struct prof_sampler *s);

/* How many clone, fork, vfork, exec and exit events of the tree the tracer has seen, or
 * UINT64_MAX when it does not follow the tree by ptrace events (/proc only). While the
 * count stands still, no thread or process of the tree has appeared, exec'd or ended.
 * Safe from any thread; sampler is a struct prof_sampler * (or NULL: UINT64_MAX). */
uint64_t prof_sampler_tree_events(void *sampler);

/* Detach from everything, write the last records, join the thread, free s.
 * Returns 0 or the PROF_E* that stopped recording. */
int prof_sampler_stop(struct prof_sampler *s);

#endif
