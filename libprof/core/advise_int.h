/* advise_int.h: what the advice's files (advise.c, predict.c, advise_run.c) share: the stage's split, the I/O pool, the reasons' helpers and the constants more than one rule uses. */
#ifndef POOLPROF_ADVISE_INT_H
#define POOLPROF_ADVISE_INT_H

/*
 * Private to the advice: nothing outside advise.c, predict.c, advise_run.c and confidence.c
 * includes it, and its functions stay out of the dynamic symbol table.
 */
#include <math.h>

#include "core/advise.h"

/* Guard for divisions by a time that can legitimately be zero. */
#define TINY_S 1e-9
#define SERIAL_WAIT_ABOVE 0.3
#define SEED_IPC_ABOVE 0.15
/* Prefer the cheaper model when its prediction is within 10% of the best: within it, two models tie. */
#define CHEAPER_WITHIN 1.10
/*
 * What a process pool pays per byte it moves when the serialization was not
 * sampled: pickle.dumps + pipe write + read + pickle.loads, through a pipe to a
 * child, with this machine's Debian CPython 3.11 (bench/ipc_cost.py, bench/RESULTS.md
 * "IPC cost per byte"): 10.7 ns/byte for lists of ints (the reference workloads'
 * payload), 3.4 for floats, 0.6 for bytes. The costly common case is used: an
 * estimate that errs towards keeping data in one process.
 */
#define IPC_NS_PER_BYTE 10.0
/*
 * Memory-bound by the PMU (evidence.c, membound.c): under this many instructions per cycle with
 * over this many last-level cache misses per thousand instructions. Compute code retires 1-4
 * instructions per cycle; a miss to DRAM costs a few hundred cycles, so 10 misses per thousand
 * instructions alone can hold a core under 0.5 (docs/verdict.md, "Counters as evidence").
 */
#define MEM_IPC_BELOW 0.5
#define MEM_MPKI_ABOVE 10.0

/*
 * Which of a stage's off-CPU time overlaps across workers (predict.c adv_waits, issue 25). Only
 * separate, repeated waits do, at most as many-fold as there were of them; the rest is fixed:
 * as long on any pool as it was.
 */
struct adv_waits {
    double indep;        /* waits that overlap: requests answered, file reads, sleeps, s */
    double longest;      /* no pool finishes them sooner: the mean wait of the kind whose waits are longest, s; 0 = unbounded */
    double episodes;     /* indep / longest: how many such waits they amount to; 0 = not counted */
    double fixed;        /* off-CPU time no pool shortens, s, summed over threads; of it: */
    double backpressure; /*   sends that waited for a reader, on the network or the tree's pipes */
    double unrequested;  /*   receives and event-loop waits that followed no request of the stage's */
    double ipc;          /*   other waits on the tree's pipes and sockets (a stage that is no pool) */
    double untimed;      /*   off-CPU time no wrapped call timed (page faults, waits the shim does not see) */
};

/*
 * What the stage's counters show (evidence.c, issue 30; docs/verdict.md "Counters as evidence").
 * Derived once with the split; a figure that was not counted reads as its "not counted" value.
 */
struct adv_counters {
    double ivcsw_rate;      /* involuntary context switches (preemptions) per CPU-second */
    double migr_rate;       /* moves between CPUs per CPU-second; < 0 = not counted */
    double queued_per_switch; /* run-queue wait per preemption, s; < 0 = no run-queue figure */
    int preempted;          /* preempted as often and for as long as peers' scheduler slices make it: the CPUs were oversubscribed */
    int own;                /* ...by the stage itself: more busy workers than usable CPUs */
    int others;             /* ...by other programs: every thread of the stage fits the usable CPUs */
    int workers;            /* the stage's busy workers today, for the reasons */
    double fault_s;         /* kernel time per minor fault after fork, bounded; 0 = not counted */
    double child_faults;    /* minor faults per forked child */
    double worker_fault_s;  /* child_faults x fault_s: what each forked worker pays */
    uint64_t page_bytes;    /* the machine's page: what one fault copies at most */
    double ipc;             /* instructions per cycle; 0 = not counted */
    double llc_mpki;        /* last-level cache misses per thousand instructions; < 0 = not counted */
};

/* The figures every branch needs, derived once. */
struct split {
    int u;            /* usable CPUs */
    int c;            /* of them, CPUs that compute in parallel: one per physical core where SMT siblings share one */
    double lockgil;   /* lock + GIL wait, s */
    double serial;    /* (lock + GIL wait) / thread time */
    int serialized;   /* threads of this stage take turns on a lock or the GIL */
    double wait;      /* waits that overlap across workers (waits.indep): I/O, sleeps, s */
    struct adv_waits waits;
    double compute;   /* CPU time after start-up (the images' time before main), s */
    double ipc_frac;  /* IPC time / busy time (ipc_base_s, else thread time), 0 when not measured */
    double pool_idle; /* idle waits: a process pool's IPC and dispatcher's event loop; elsewhere readers waiting on the tree's pipes, s */
    uint64_t thread_mem; /* memory one more thread costs, 0 = unknown */
    uint64_t tasks;   /* the most waits the stage's workers can share: its separate waits where they were
                         counted, else network requests answered where the waits are mostly network; 0 = unknown */
    struct adv_counters ctr; /* what the counters show (evidence.c) */
};

/* Size a pool for the waits: N = usable x (1 + wait / compute) (DESIGN.md). */
struct io_pool {
    double raw;       /* before floor and caps */
    enum prof_model model; /* threads, or async when raw > IO_THREADS_MAX */
    int workers;
    int floored;      /* raised to 2 x usable */
    int capped_max;   /* capped at IO_THREADS_MAX / ASYNC_MAX */
    int capped_fd;    /* capped at half the open-file limit */
    int capped_mem;   /* capped at available memory / memory per thread */
    int capped_tasks; /* capped at the requests the stage made */
    int held_cpu;     /* not raised to 2 x usable: its own threads already oversubscribed the CPUs (evidence.c) */
    int floor;        /* ...the count the floor would have given */
};

#pragma GCC visibility push(hidden)

/* advise.c: append one reason to the verdict (printf format). */
__attribute__((format(printf, 2, 3))) void adv_add_reason(struct prof_verdict *v, const char *fmt, ...);

/* advise.c: figures for the reasons: "12.3 MiB"; "4.5 ms" below a tenth of a second, else "1.23 s"; "2,400". */
const char *adv_fmt_bytes(char *buf, size_t n, uint64_t b);
const char *adv_fmt_dur(char *buf, size_t n, double s);
const char *adv_fmt_count(char *buf, size_t n, double x);

/* A share as a whole percentage, for the reasons. */
static inline int adv_pct(double x)
{
    return x <= 0 ? 0 : (int)(x * 100.0 + 0.5);
}

/* A difference of times, never below zero. */
static inline double adv_nonneg(double x)
{
    return x > 0 ? x : 0;
}

/* A time or fraction is usable when it is a finite number >= 0 (NaN fails). */
static inline int adv_bad(double x)
{
    return !(x >= 0) || isinf(x);
}

/* Do the stage's CPython threads take turns on a GIL? Not where every CPython of the stage is a
 * free-threaded build running without one: its Python threads run in parallel like native ones. */
static inline int adv_gil(const struct prof_stage_figures *f)
{
    return f->python && !f->gil_absent;
}

/* predict.c: requests kept open at once when the stage's event loop overlaps them, else 0. */
double adv_loop_inflight(const struct prof_stage_figures *f);
/* predict.c: how the stage runs today, and which of its off-CPU time is work (the split needs them too). */
void adv_current_config(const struct prof_stage_figures *f, struct prof_work *k);
double adv_work_waits(const struct prof_stage_figures *f, double residual);
double adv_off_cpu_rest(const struct prof_stage_figures *f, double lockgil, double idle);
/* predict.c: which off-CPU time overlaps across workers and which is fixed. pool: the stage is a
 * process pool (or feeds one), whose IPC and event-loop waits are its own idling, in pool_idle. */
void adv_waits(const struct prof_stage_figures *f, double lockgil, double pool_idle, int pool, struct adv_waits *w);

/* predict.c: an idle stage's prediction: its work, and one sequential candidate at 1.0x. */
void adv_predict_idle(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s);

/* predict.c: the work the prediction runs on and the measured run's time in its model (v->work).
 * Returns 1 when the program waits in its own event loop (async is then cheap), else 0. */
int adv_predict_work(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s);

/* predict.c: the candidates (nproc processes, nthr threads, the I/O pool's count for async and
 * hybrid), the choice, and the reasons for it: sets the verdict's model, workers, chunksize and
 * predicted speedup. After adv_predict_work. */
void adv_predict(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s,
                 const struct io_pool *io, int nproc, int nthr, int evloop);

/* evidence.c: what the counters show (s->ctr), from the figures, the usable CPUs (s->u) and the
 * stage's busy workers today. */
void adv_counters(const struct prof_stage_figures *f, const struct split *s, int workers, uint64_t page_bytes,
                  struct adv_counters *c);
/* evidence.c: the reasons the counters give: oversubscription (and what it capped or confirms), a
 * single run that looks memory-bound. After the workers' reasons. */
void adv_counter_reasons(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s,
                         const struct io_pool *io);

/* predict.c: the stage's own model at other worker counts (v->scaling). */
void adv_scaling_curve(struct prof_verdict *v, const struct prof_work *k, int u);
/* confidence.c: recommendation.confidence, its weakest support, and whether the runner-up ties. */
void adv_confidence(struct prof_verdict *v, const struct prof_stage_figures *f, const struct prof_machine *m);

#pragma GCC visibility pop

#endif
