/* verdict.h: the verdict's data contract: what the merge measured for a stage, what the advice decided, and the names of its classes and models. */
#ifndef POOLPROF_VERDICT_H
#define POOLPROF_VERDICT_H

/*
 * Types and names only, no functions of the advice: code that renders a
 * verdict (report.c, the renderers) can name its class and model without
 * calling into the rules (advise.h).
 */
#include <stddef.h>
#include <stdint.h>

enum prof_class { PROF_CLASS_IDLE, PROF_CLASS_IO, PROF_CLASS_MIXED, PROF_CLASS_CPU };
enum prof_model { PROF_MODEL_SEQUENTIAL, PROF_MODEL_THREADS, PROF_MODEL_PROCESSES, PROF_MODEL_ASYNC, PROF_MODEL_HYBRID };

/* How the stage's separate waits were counted: the shim counted them by kind in every process;
 * only voluntary context switches (from /proc) bound how many ended; or nothing did. */
enum prof_waits_counted { PROF_WAITS_UNKNOWN, PROF_WAITS_SHIM, PROF_WAITS_SWITCHES };

/* The seeds' thresholds on CPU / wall. */
#define PROF_SEED_IO_BELOW 0.4
#define PROF_SEED_CPU_ABOVE 0.7

/* What the merge measured for one stage. Times in seconds; a figure that was
 * not measured is 0 and its *_measured flag says so. */
struct prof_stage_figures {
    const char *name;
    int nprocesses;          /* processes with at least one thread in the stage */
    int nthreads;            /* threads that spent time in the stage */
    int python;              /* a process of the stage runs CPython (it has a GIL) */
    int gil_absent;          /* ...and every one of them is a free-threaded build running without its GIL:
                                its Python threads run in parallel, and the GIL figures are absent */
    double wall_s;           /* first entry to last exit of the stage */
    double thread_s;         /* sum over threads of time spent in the stage */
    double cpu_s;            /* on-CPU time (user + system) */
    double runq_s;           /* runnable but waiting for a CPU (schedstat) */
    double steal_s;          /* on a vCPU the hypervisor gave to something else: in no schedstat figure;
                                estimated as cpu_s times the machine's stolen-per-busy ticks */
    int lock_measured;       /* the shim timed lock waits in every process of the stage */
    double lock_wait_s;      /* blocked on mutexes, semaphores, condvars other than the GIL */
    double gil_wait_s;       /* blocked waiting for a CPython GIL */
    double hottest_lock_hold_fraction; /* hold time of the hottest contended lock over the stage's wall time; 0 if unknown */
    int ipc_measured;
    double ipc_s;            /* time moving bytes between processes of the tree */
    double ipc_base_s;       /* denominator of the IPC share (busy time); 0 = thread_s */
    uint64_t rss_growth_bytes;
    uint64_t per_worker_bytes; /* memory one more worker costs (USS/PSS), 0 if unknown */
    uint64_t per_thread_bytes; /* memory one more thread costs: a threaded stage's RSS growth over its threads, 0 if unknown */
    /* The prediction's inputs (0 / unknown when not measured). */
    double evloop_wait_s;    /* an event loop blocked waiting (epoll/poll/select): the program runs one */
    int serialize_measured;  /* the sampler read the stage's stacks */
    double serialize_s;      /* on-CPU time in serializer frames (pickle, json, marshal) */
    int gil_held_measured;   /* the sampler read the GIL holder while the stage's CPython threads ran */
    double gil_held_share;   /* share of those on-CPU ticks that held the GIL */
    uint64_t ipc_bytes;      /* bytes sent between processes of the tree */
    uint64_t ipc_messages;   /* send calls that carried them (one per message for small pickles) */
    double net_wait_s;       /* the network part of the stage's I/O waits (shim) */
    uint64_t net_round_trips; /* requests answered on network descriptors (a receive after a send); 0 = unknown */
    double net_request_s;    /* their time in flight, send to answer, summed: / wall_s = requests open at once (Little's law) */
    int pool_dispatcher;     /* a process of the stage feeds busy child processes: its event-loop waits are the pool's */
    double dispatcher_cpu_s; /* that process's CPU time (feeding tasks, collecting results) */
    /* Where the sampler read the pool's stacks: its CPU split by what the stacks ran (issue 25). */
    int pool_split_measured; /* the sampler read the stacks of a CPython dispatcher and its workers */
    double task_cpu_s;       /* the workers' CPU in the code the pool called: what the tasks themselves cost */
    double worker_cpu_s;     /* the workers' CPU, all of it: the tasks and the pool's own loop, pickling and pipes */
    int task_gil_measured;        /* the GIL holder was sampled on enough ticks in the code the pool called */
    double task_gil_held_share;   /* ...and of those, this share held the GIL */
    int worker_gil_measured;      /* the pool's workers' GIL holder was sampled on enough ticks */
    double worker_gil_held_share; /* ...and of their on-CPU ticks, this share held their GIL */
    double dispatcher_pool_cpu_s; /* of dispatcher_cpu_s, the pool's machinery; the rest is the program around the pool */
    /* Which waits can overlap (issue 25): how many separate waits the stage made, of which kind. */
    enum prof_waits_counted waits_counted;
    double io_wait_s;        /* network + disk I/O waits (shim); the disk part is io_wait_s - net_wait_s */
    uint64_t disk_reads;     /* timed reads of files and block devices */
    double sleep_s;          /* in sleep calls */
    uint64_t sleeps;         /* sleep calls */
    double net_send_wait_s;  /* of net_wait_s, sends waiting for a reader: back-pressure */
    double ipc_send_wait_s;  /* of ipc_s, the same on the tree's own pipes and sockets */
    uint64_t switches;       /* voluntary context switches: no more waits than these ended */
    double startup_cpu_s;    /* of cpu_s, what the images spent before main(): exec, loader, constructors */
    int waits_sampled;       /* the sampler classified every thread's off-CPU time by cause */
    double sampled_wait_s;   /* ...and found this much blocked on I/O, pipes, event loops, sleep or other (not locks, GIL, joins) */
    enum prof_model current_model; /* how the stage runs today: sequential, threads or processes */
    int current_workers;     /* its busy workers; 0 = infer from nthreads / nprocesses */
    int python_unread;       /* processes of the stage whose CPython the sampler could not read (a version it does not support) */
    int pipeline;            /* run sequentially, its work spread over busy processes of several programs at once (a pipeline) */
    /* Counters (issue 30: libprof/counters/, perf events counted per thread). A figure whose
     * *_measured is 0 was not counted for every thread of the stage, and is 0. */
    uint64_t ivcsw;          /* involuntary context switches (preempted): getrusage / /proc, always measured */
    int migrations_measured;
    uint64_t migrations;     /* moves between CPUs (perf::CPU-MIGRATIONS) */
    int fork_faults_measured; /* every forked (not exec'd) child process of the stage was counted from its fork */
    int fork_children;       /* those children */
    uint64_t fork_minflt;    /* their minor page faults after the fork: copy-on-write copies and first touches */
    double fork_stime_s;     /* their kernel-mode CPU, which those faults are part of */
    int pmu_measured;        /* cycles and instructions counted (a PMU answered) */
    uint64_t cycles, instructions;
    int llc_measured;
    uint64_t llc_misses;     /* last-level cache misses */
};

struct prof_seed_verdict {
    enum prof_class cls;     /* by cpu_wall_ratio alone, with the seeds' thresholds */
    enum prof_model model;   /* <0.4 threads, >0.7 processes, otherwise hybrid */
    int workers;             /* CPU: physical cores; I/O: usable CPUs x 4 (the top of the seeds' 2-4) */
};

#define PROF_MAX_REASONS 10
#define PROF_REASON_BYTES 320
#define PROF_MAX_CANDIDATES 6
#define PROF_MAX_SCALING 12

/* One way to run the stage, with its predicted speedup over the measured run. */
struct prof_candidate {
    enum prof_model model;
    int workers;             /* hybrid: the thread count (its processes are the usable CPUs) */
    int chunksize;           /* processes: tasks per message to use; 0 = as the pool runs today */
    double seconds;          /* predicted time of the stage's work */
    double speedup;          /* measured-run time / predicted time, both from the same model */
};

/* The model the prediction ran on: the stage's work, independent of how it ran. */
struct prof_work {
    double cpu_s;            /* CPU the work needs wherever it runs (IPC overhead taken out) */
    double wait_s;           /* waits that overlap across workers: I/O, sleep */
    double serial_threads;   /* share of cpu_s that runs one thread at a time under threads (GIL, global lock) */
    double serial_processes; /* the same under processes (a global lock's shared state; not the GIL) */
    const char *serial_source; /* where serial_threads came from, for the report */
    double ipc_s;            /* what a process pool pays to move the stage's data (serialize + copy) */
    int ipc_estimated;       /* ipc_s is an estimate from bytes, not a measured serialization time */
    uint64_t round_trips;    /* a CPython process pool's task messages (a task out, its result back) */
    double msg_s;            /* the dispatcher's CPU beyond its share of the serialization: its cost per message, paid serially */
    double worker_msg_s;     /* the workers' CPU in the pool's own loop beyond their share of the serialization: per message, in parallel */
    double own_s;            /* of cpu_s, the program around a pool, in its dispatcher: one thread in every model */
    int task_measured;       /* cpu_s is the tasks' own CPU (the sampler's stacks) plus own_s, the pool's overhead taken out */
    int chunk;               /* tasks per message the prediction assumes (1: as today) */
    enum prof_model current_model;
    int current_workers;
    double current_s;        /* the model's time for the measured configuration */
    /* Which waits overlap (issue 25): wait_s holds only separate, repeated ones. */
    enum prof_waits_counted waits_counted;
    double episodes;         /* the separate waits wait_s amounts to (wait_s / longest_s): they overlap at most so many-fold; 0 = not counted */
    double longest_s;        /* no pool finishes the waits sooner: the mean wait of the kind whose waits are longest; 0 = unbounded */
    double fixed_s;          /* off-CPU time, summed over threads, that no pool shortens: back-pressure, waits for input, untimed waits */
    double startup_s;        /* CPU before main(): paid as it was, whatever the pool (not in cpu_s) */
    int loops;
    int forked_now;          /* forked workers today, counted from their fork: their faults are in cpu_s already */               /* async: event loops the CPU runs on, one per process of the stage today (at most the CPUs); 0/1 = one */
    double worker_fault_s;   /* processes and hybrid: the kernel time each forked worker spends on the minor faults a
                                forked child of the stage took (copy-on-write, first touches); 0 = not counted (issue 30) */
};

struct prof_verdict {
    const char *name;        /* the stage's name (borrowed from the figures) */
    enum prof_class cls;
    double cpu_wall_ratio;   /* cpu_s / thread_s: the seeds' figure */
    double demand_ratio;     /* (cpu_s + runq_s) / (thread_s - lock and GIL waits): what class is judged on */
    enum prof_model model;
    int workers;
    int chunksize;           /* processes: batch this many tasks per message (map/imap chunksize); 0 = no advice */
    struct prof_seed_verdict seed;
    int nreasons;
    char reasons[PROF_MAX_REASONS][PROF_REASON_BYTES];
    /* The prediction (predict.c): every candidate, the chosen one's speedup, the runner-up. */
    double wall_s;           /* the stage's measured wall time (borrowed from the figures) */
    double predicted_speedup;
    struct prof_candidate candidates[PROF_MAX_CANDIDATES];
    int ncandidates;
    int runner_up;           /* index into candidates, -1 when there is none */
    struct prof_work work;
    /* How far it can be trusted (confidence.c): 0 could go either way .. 1 clear; the weakest
     * support in words; a tie when the runner-up is predicted within 10% of it. */
    double confidence;
    char confidence_basis[96];
    int tie;
    /* The stage's own model at other worker counts: what `poolprof sweep` would measure. */
    int nscaling;
    struct { int workers; double speedup; } scaling[PROF_MAX_SCALING];
};

/* The verdict's vocabulary, as reports print it. */

/* "cpu-bound", "io-bound", "mixed", "idle" */
static inline const char *prof_class_name(enum prof_class c)
{
    switch (c) {
    case PROF_CLASS_IDLE:
        return "idle";
    case PROF_CLASS_IO:
        return "io-bound";
    case PROF_CLASS_MIXED:
        return "mixed";
    case PROF_CLASS_CPU:
        return "cpu-bound";
    }
    return "unknown";
}

/* "threads", "processes", ... */
static inline const char *prof_model_name(enum prof_model m)
{
    switch (m) {
    case PROF_MODEL_SEQUENTIAL:
        return "sequential";
    case PROF_MODEL_THREADS:
        return "threads";
    case PROF_MODEL_PROCESSES:
        return "processes";
    case PROF_MODEL_ASYNC:
        return "async";
    case PROF_MODEL_HYBRID:
        return "hybrid";
    }
    return "unknown";
}

#endif
