/* evidence.c: what the counters add to a verdict (issue 30): preemptions and migrations as evidence of oversubscribed CPUs, the faults a forked worker takes, and a single run's instructions per cycle and cache misses. */

/*
 * Pure, like the rest of the advice (advise.c): the stage's figures in, derived rates and
 * reasons out. docs/verdict.md ("Counters as evidence") gives the thresholds and why.
 *
 * Preemption. A thread with a CPU to itself is preempted rarely: here (2 vCPUs, Linux 6.18,
 * EEVDF, HZ=250) one spinning thread alone on its CPU took 3-6 involuntary context switches per
 * CPU-second, run bare or under poolprof. Runnable threads that outnumber the CPUs take turns
 * every scheduler slice (EEVDF's base slice is 0.75 ms x (1 + log2 CPUs, at most 8), acted on at
 * the next tick; CFS's was sched_latency / runnable tasks, at least 0.75 ms): 2 or 4 spinning
 * threads on one CPU took 255-261 per CPU-second, each waiting 3.9 ms (2 threads) or 11.5 ms (4)
 * for the CPU. The rate alone is not enough: under poolprof the sampler's and monitor's wake-ups preempt a target
 * that fills every CPU at about their rate (2 spinning threads on the 2 CPUs: 95-154 per
 * CPU-second, 552 with --rate 1000), but each such preemption is short (0.12-0.52 ms of run
 * queue per switch, against a peer's whole slice). So the CPUs count as oversubscribed when the
 * stage was preempted at least PREEMPT_PER_CPU_S times per CPU-second, PREEMPT_MIN times in
 * all, and waited at least QUEUED_PER_SWITCH_MIN_S for a CPU per preemption; and by the stage
 * itself when its busy workers outnumber the usable CPUs, by other programs when all its
 * threads fit them. The run-queue time is already CPU
 * demand (advise.c): the preemptions add none; they say how often, the run queue how long.
 */
#include <stdio.h>
#include <string.h>

#include "core/advise_int.h"

/* Half the slowest rate of peers' slices: 83 per CPU-second (CFS, 24 ms latency, 2 tasks); 250 here. */
#define PREEMPT_PER_CPU_S 50.0
/* Fewer preemptions than this are a tick's noise however short the stage (20 take a quarter second at 83/s). */
#define PREEMPT_MIN 20
/* A peer's slice, the shortest the kernel's defaults give: 0.75 ms. A profiler's or a kernel thread's wake-up is shorter. */
#define QUEUED_PER_SWITCH_MIN_S 0.00075
/*
 * Kernel time per minor fault after fork, bounded: stime also holds the children's system calls
 * (an upper bound), and it is read in clock ticks, so a few faults may read 0 s or a whole tick.
 * Here a forked child writing one byte per page of a 256 MiB heap (copy-on-write) took
 * 1.8-2.8 us a fault, first touches of fresh pages 1.8 us; no fault is cheaper than the trap and
 * a page's copy (0.5 us), and one that takes over 10 us is mostly something else.
 */
#define FAULT_S_MIN 0.5e-6
#define FAULT_S_MAX 10e-6

void adv_counters(const struct prof_stage_figures *f, const struct split *s, int workers, uint64_t page_bytes,
                  struct adv_counters *c)
{
    memset(c, 0, sizeof *c);
    c->migr_rate = -1;
    c->queued_per_switch = -1;
    c->llc_mpki = -1;
    c->workers = workers;
    c->page_bytes = page_bytes > 0 ? page_bytes : 4096;
    if (f->cpu_s > TINY_S) {
        c->ivcsw_rate = (double)f->ivcsw / f->cpu_s;
        if (f->migrations_measured)
            c->migr_rate = (double)f->migrations / f->cpu_s;
    }
    /* A preempted thread waits in the run queue; none at all is a kernel without schedstat, not a free preemption. */
    if (f->ivcsw > 0 && f->runq_s > 0)
        c->queued_per_switch = f->runq_s / (double)f->ivcsw;
    c->preempted = f->ivcsw >= PREEMPT_MIN && c->ivcsw_rate >= PREEMPT_PER_CPU_S &&
                   (c->queued_per_switch < 0 || c->queued_per_switch >= QUEUED_PER_SWITCH_MIN_S);
    c->own = c->preempted && workers > s->u;
    /* Not the stage's, where even its idle and helper threads fit the CPUs: the line confidence.c
     * draws for the run queue. Between the two (a pool's dispatcher beside one worker per CPU), neither. */
    c->others = c->preempted && !c->own && f->nthreads <= s->u;

    if (f->fork_faults_measured && f->fork_children > 0 && f->fork_minflt > 0) {
        double per = adv_nonneg(f->fork_stime_s) / (double)f->fork_minflt;
        c->fault_s = per < FAULT_S_MIN ? FAULT_S_MIN : per > FAULT_S_MAX ? FAULT_S_MAX : per;
        c->child_faults = (double)f->fork_minflt / f->fork_children;
        c->worker_fault_s = c->child_faults * c->fault_s;
    }
    if (f->pmu_measured && f->cycles > 0 && f->instructions > 0) {
        c->ipc = (double)f->instructions / (double)f->cycles;
        if (f->llc_measured)
            c->llc_mpki = 1000.0 * (double)f->llc_misses / (double)f->instructions;
    }
}

/* The verdict's CPU workers: what the cap at usable CPUs applies to, 0 when it runs none (an I/O pool, async). */
static int cpu_workers(const struct prof_verdict *v, const struct split *s)
{
    switch (v->model) {
    case PROF_MODEL_SEQUENTIAL:
        return 1;
    case PROF_MODEL_PROCESSES:
        return v->workers;
    case PROF_MODEL_HYBRID:
        return s->c; /* its processes, one per CPU that computes (predict.c) */
    case PROF_MODEL_THREADS:
        return v->cls == PROF_CLASS_CPU ? v->workers : 0;
    case PROF_MODEL_ASYNC:
        return 0;
    }
    return 0;
}

/* Preempted as the stage's own oversubscription shows it: the figures, and what it capped or confirms. */
static void preempt_reason(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s,
                           const struct io_pool *io)
{
    const struct adv_counters *c = &s->ctr;
    char n[32], queued[96] = "", mig[64] = "", tail[160];
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    if (c->migr_rate >= 0)
        snprintf(mig, sizeof mig, ", migrated %.0f times per CPU-second", c->migr_rate);
    if (c->queued_per_switch >= 0)
        snprintf(queued, sizeof queued, ", waited %.1f ms for a CPU each time (%d%% of thread time)",
                 c->queued_per_switch * 1e3, adv_pct(f->runq_s / th));
    if (!c->own) {
        adv_add_reason(v, "preempted %.0f times per CPU-second (%s in %.2f s of CPU)%s%s, though its %d busy worker%s fit the %d usable CPU%s: other programs ran on them; the figures describe a busy machine as much as the program",
                       c->ivcsw_rate, adv_fmt_count(n, sizeof n, (double)f->ivcsw), f->cpu_s, mig, queued, c->workers,
                       c->workers == 1 ? "" : "s", s->u, s->u == 1 ? "" : "s");
        return;
    }
    int w = cpu_workers(v, s);
    if (io->held_cpu && w == 0)
        snprintf(tail, sizeof tail, "its I/O pool stays at %d thread%s, keeping its CPU demand within them, not the %d of 2 x usable CPUs",
                 io->workers, io->workers == 1 ? "" : "s", io->floor);
    else if (w > 0)
        snprintf(tail, sizeof tail, "%s%d %s, one per usable CPU at most: the evidence confirms the cap",
                 v->model == PROF_MODEL_HYBRID ? "hybrid's " : "", w,
                 v->model == PROF_MODEL_HYBRID ? "processes" : w == 1 ? "worker" : "workers");
    else if (v->model == PROF_MODEL_ASYNC)
        snprintf(tail, sizeof tail, "async runs its CPU part on one thread per loop");
    else
        snprintf(tail, sizeof tail, "its I/O pool of %d threads is sized to keep its CPU demand within them", v->workers);
    adv_add_reason(v, "its %d busy workers were preempted %.0f times per CPU-second (%s in %.2f s of CPU)%s%s: its runnable threads outnumbered the %d usable CPU%s; %s",
                   c->workers, c->ivcsw_rate, adv_fmt_count(n, sizeof n, (double)f->ivcsw), f->cpu_s, mig, queued, s->u,
                   s->u == 1 ? "" : "s", tail);
}

void adv_counter_reasons(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s,
                         const struct io_pool *io)
{
    const struct adv_counters *c = &s->ctr;
    /* Others' preemptions count only where their length is known: a profiler's own wake-ups are short. */
    if (c->own || (c->others && c->queued_per_switch >= 0))
        preempt_reason(v, f, s, io);
    /*
     * One run's cache misses. At MEM_MPKI_ABOVE misses per thousand instructions, each a few hundred
     * cycles from DRAM, the misses alone can hold a core under MEM_IPC_BELOW instructions per cycle
     * (compute code retires 1-4): the cores mostly wait on memory, which every worker shares. Whether
     * more workers would wait longer is scaling, which one run cannot show: a reason, not a cap.
     */
    if (c->ipc > 0 && c->ipc < MEM_IPC_BELOW && c->llc_mpki > MEM_MPKI_ABOVE)
        adv_add_reason(v, "%.2f instructions per cycle with %.1f last-level cache misses per thousand instructions: the stage looks memory-bound, and workers share the memory bandwidth, so they may scale below this prediction; one run cannot show it: poolprof sweep measures it",
                       c->ipc, c->llc_mpki);
}
