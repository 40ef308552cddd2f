/* run.h: the merged run, what the merge step builds from the records: processes, their exec chains, threads and RSS series. */
#ifndef POOLPROF_RUN_H
#define POOLPROF_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "format/ctrrec.h"
#include "format/machine.h"
#include "format/metrics.h"
#include "format/shm.h"
#include "format/tstate.h"

struct prof_samples;

/* One exec image of a process, as the shim (proc/PID-START.rec) or the monitor (N/E lines) saw it. */
struct prof_image {
    uint64_t t_ns;          /* image start (shim) or first observation (monitor) */
    char *exe;
    char **argv;
    int argc;
    int from_shim;
    int from_monitor;
    int is_static;          /* the monitor said static=1: the shim cannot load */
    int forked;             /* the shim image began with fork(), not exec */
};

struct prof_rss_sample {
    uint64_t t_ns;
    uint64_t rss;
};

struct prof_mem_sample {
    uint64_t t_ns;
    uint64_t pss, uss, swap;
};

/* A stretch of a thread's timeline in one state (format/tstate.h): [t0_ns, t1_ns), CLOCK_MONOTONIC. */
struct prof_span {
    uint64_t t0_ns, t1_ns;
    uint8_t state;          /* enum prof_tstate */
};

struct prof_thread {
    int tid;
    char name[16];
    uint64_t name_t_ns;     /* when `name` was observed: the latest non-empty name wins */
    uint64_t shim_start_ns, shim_end_ns;  /* 0 = not recorded */
    int shim_state;         /* prof_thread_state in the latest image that had the thread */
    uint64_t shim_img_ns;   /* start of that image */
    uint64_t first_sample_ns, last_sample_ns; /* monitor T lines, 0 = none */
    uint64_t start_ticks_ns; /* monitor start_ticks converted to monotonic ns, 0 = none */
    /* The monitor's first reading of the kernel's cumulative counters: what a thread that was
     * already running when the run began (attach) had spent before it, taken out again. */
    struct { uint64_t cpu, runq, utime, stime, vcsw, ivcsw; } mon_first;
    /* The figures of format/metrics.h: TASK ones are the largest reading of any source,
     * IMAGE ones the shim's, summed over the process's images. */
    struct prof_counters c;
    /* The part of c from images before the process's latest (a launcher's: bash before
     * `exec python`): cpu_ns is the cumulative CPU when the latest image began. */
    struct prof_counters before_last_img;
    int from_shim, from_monitor;
    /* The ptrace sampler (sampler.rec): time per state (format/tstate.h order), ticks seen in it. */
    int from_sampler;
    uint64_t smp_ns[PROF_TS_COUNT], smp_n[PROF_TS_COUNT];
    uint64_t py_ticks, py_held, py_held_cpu;   /* CPython: ticks seen, holding the GIL, holding it on CPU */
    uint64_t serialize_ns;                     /* on-CPU time in serializer frames (pickle, json, marshal) */
    uint64_t pool_ns, pool_called_ns;          /* on-CPU time in a process pool's machinery, in code it called */
    uint64_t pool_called_ticks, pool_called_held; /* ticks sampled running in code the pool called, holding the GIL */
    /* Its timeline (sampler.rec S lines): time order, not overlapping, adjacent spans of one state
     * merged; NULL when the sampler recorded none (no sampler, an older run). Owned by the run. */
    struct prof_span *spans;
    size_t nspans;
    /* Perf counters (counters.rec): the latest reading of each event of the run (prof_run.counters)
     * for this thread: value, enabled and running nanoseconds; ctr_mask the events counted. */
    uint64_t ctr_mask;
    int ctr_born;           /* opened before the thread's first instruction: its counts are whole */
    uint64_t ctr_open_ns;
    uint64_t ctr[PROF_CTRREC_MAX][3];
    uint64_t minflt, majflt; /* /proc stat (monitor T lines): the counters' fallback where perf is refused */
    /* Derived by the merge. */
    double start_s, end_s;
    const char *ended_by;   /* "shim-exit", "shim-snapshot", "last-sample", "process-end" */
};

struct prof_lock_site {
    char site[PROF_SHM_SITE_BYTES];
    uint64_t addr, site_pc;
    uint32_t kind;
    uint64_t acquisitions, contended, wait_ns, hold_ns;
    uint64_t owner_changes;     /* acquisitions by another thread than the previous owner (mutexes; 0 for other kinds) */
    uint64_t claim_cpu_ns;      /* the process's CPU when the shim began to watch it (0: from the start, or unknown) */
    char python_site[160];      /* "qualname (file.py:line)": the Python frame the sampler saw waiting on it, or "" */
};

/* A stage marked with prof_stage_begin/end in one process, summed over its images (shm.h prof_shm_stage).
 * c holds the figures the shim counts per stage (cpu and the IMAGE waits and bytes); the rest is 0. */
struct prof_marker {
    char name[PROF_SHM_NAME_BYTES];
    uint32_t threads;
    uint64_t entries, self_ns, incl_ns;
    struct prof_counters c;
    uint64_t first_begin_ns, last_end_ns;
};

struct prof_process {
    int pid, ppid;
    struct prof_image *images;  /* exec chain, time order, consecutive duplicates merged */
    size_t nimages;
    int nrecs;                  /* proc/PID-START.rec files read for this pid */
    int shim;                   /* at least one image recorded by the shim */
    int is_static;              /* an image the monitor saw static=1 */
    int python;
    char *python_refused;       /* why its CPython is not read (a version other than 3.11), or NULL */
    int python_read;            /* the sampler read its CPython (then a refusal seen earlier no longer stands) */
    int python_version;         /* the CPython version the sampler read (313 for 3.13), 0 = none read */
    int gil_absent;             /* a free-threaded CPython running without its GIL, as its latest P line said */
    int forked;                 /* began with fork() and never exec'd */
    uint64_t first_seen_ns, last_seen_ns;
    uint64_t shim_start_ns, mon_start_ns;
    /* End evidence, in order of preference. */
    int have_z; int z_status; uint64_t z_t_ns;
    int have_x; int x_status; uint64_t x_t_ns;   /* the sampler's X line: its ptrace exit event */
    int named_by_sampler, named_by_other;      /* merge: whose images name it (the sampler's only where no other did) */
    int have_shim_exit; int shim_exit_code; uint32_t shim_end_how; uint64_t shim_end_ns;
    uint64_t shim_last_img_ns;  /* start of the latest image the shim recorded */
    uint64_t gone_ns;
    uint32_t dropped_threads, dropped_children;
    /* Threads, RSS and memory samples. */
    struct prof_thread *threads; size_t nthreads;
    struct prof_rss_sample *rss; size_t nrss;
    struct prof_mem_sample *mem; size_t nmem;
    uint64_t vm_hwm, shim_rss_end;
    struct prof_lock_site hottest;  /* hottest contended lock: serializing kinds first, then by wait */
    int have_hottest;
    /* Every lock the shim saw contended in it (the GIL's own mutexes excepted), one per address and
     * site, summed over its images; NULL when none. Owned by the run. */
    struct prof_lock_site *locks;
    size_t nlocks, locks_cap;
    struct prof_marker *markers; size_t nmarkers; /* marker stages of this process, by name */
    int sampled;                /* the sampler watched it */
    int hottest_from_sampler;   /* `hottest` was inferred from futex waits, not timed by the shim */
    /* Derived by the merge. */
    char *role;                 /* its program: last image's argv[0], options, CPython's script (80 chars), or "<parent role> (forked)" */
    char comm[16];              /* the main thread's name: the process name */
    double start_s, end_s;
    const char *exit_how;       /* "exited", "killed", "vanished" */
    const char *exit_source;    /* "poolprof", "parent", "shim", NULL */
    int exit_status;            /* raw wait status, -1 when unknown */
    int exit_code, exit_signal; /* -1 when not applicable */
    uint64_t rss_start, rss_peak, rss_end, pss_peak, uss_peak;
};

/* An event the run counted per thread (counters.rec E line, format/ctrrec.h). */
struct prof_run_counter {
    char name[96], fstr[96];
    char role[24];          /* "context_switches", "cpu_migrations", "minor_faults", ...; "" */
    char source[8];         /* perf, raw, proc, none */
    char reason[160];       /* why not counted as asked, "" */
    int hardware, is_default, user_only;
    uint64_t tasks_failed;  /* tasks it did not open for (F lines), the latest errno */
    int fail_errno;
};

struct prof_run {
    char *rundir;
    json_t *run;                /* run.json */
    uint64_t start_ns, end_ns;
    double wall_s;
    int root_pid;
    struct prof_machine machine;
    int interval_ms;
    int attached;               /* poolprof attach: the tree was running before the run began */
    long ticks_per_sec;
    uint64_t monitor_cpu_ns;    /* the monitor thread's own CPU (monitor.rec C lines); 0: not recorded */
    double steal_per_cpu;       /* stolen ticks over busy ticks between the first and last K lines of monitor.rec:
                                 * a task's stolen time per second of its CPU time; 0 when not recorded */
    struct prof_process **procs;
    size_t nprocs;
    json_t *sampler;            /* the sampler's settings and self-report (sampler.rec O and H lines), or NULL */
    struct prof_samples *samples; /* the sampler's stacks and per-stack samples (read_sampler.c), or NULL */
    json_t *sweep;              /* sweep.json (poolprof.sweep/1) of the sweep that profiled this run, or NULL */
    json_t *notes;              /* array of strings: how figures were obtained */
    json_t *errors;             /* array of strings: records skipped, lines ignored */
    /* Perf counters (merge_counters.c): the events; a thread's readings are in its ctr[]. */
    int counters_present;       /* counters.rec was read */
    struct prof_run_counter counters[PROF_CTRREC_MAX];
    size_t ncounters;
    uint64_t counters_refused;  /* tasks not counted: poolprof's descriptor budget ran out */
    uint64_t counters_ended;    /* tasks not counted: gone before their counters opened */
    uint64_t counters_unmatched; /* tasks counted that no other record knew (their counts are in no thread) */
};

#define PROF_ROLE_MAX 80

void prof_run_free(struct prof_run *m);

/* Seconds since the run started for a monotonic time. */
static inline double prof_run_seconds(const struct prof_run *m, uint64_t t_ns)
{
    return ((double)t_ns - (double)m->start_ns) / 1e9;
}

/* The process with this pid, or NULL. */
struct prof_process *prof_run_process(const struct prof_run *m, int pid);

/* Thread tid of process p (NULL p allowed), or NULL. */
const struct prof_thread *prof_run_thread(const struct prof_process *p, int tid);

/* A count that ran under this share of the time its event was enabled (multiplexed) is an estimate,
 * flagged `scaled` wherever it is shown. */
#define PROF_CTR_SCALED_BELOW 0.8

/* The run's counted event with this role key ("cpu_migrations", ...), or -1. */
int prof_run_counter_of(const struct prof_run *m, const char *role);

/* A thread's count of event i, a multiplexed one scaled by enabled / running. *ok is 0 when the
 * event did not count it (not open, or never scheduled), and the count is then 0. *running gets
 * running / enabled (1 where the event never shares a counter), if not NULL. */
uint64_t prof_thread_ctr_value(const struct prof_thread *t, size_t i, int *ok, double *running);

/* Total resident bytes of a set of processes over time, one point per sample
 * interval, a process counting from its first sample to its last. *t and *rss
 * are malloc'd (free both); *n may be 0. Returns 0 or PROF_ENOMEM. */
int prof_run_rss_series(const struct prof_run *m, struct prof_process *const *procs, size_t nprocs,
                        double **t, uint64_t **rss, size_t *n);

/* Append a printf-formatted string to a JSON array of notes or errors. */
void prof_note(json_t *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Locks that serialize threads (mutex, rwlock, spinlock) rank above semaphores and condvars, which
 * CPython executors use to park idle workers: 1 for the former, 0 for the rest. */
int prof_lock_kind_serializes(uint32_t kind);

/* A JSON string of text from the target (argv, a path, a thread name): jansson takes only valid
 * UTF-8, so each byte that begins no well-formed character becomes U+FFFD rather than the whole
 * value, or the object holding it, being lost. NULL reads as "". A new reference, NULL on ENOMEM. */
json_t *prof_json_text(const char *s);

#endif
