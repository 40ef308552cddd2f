/* advise.c: the first verdict: from a stage's measured time split to a class, a pool model, a worker count and the reasons. */

/*
 * Pure functions: no /proc, no clock, no file, no printing. snprintf is used
 * only to format the reasons into the caller's verdict.
 *
 * The rules, as the README quotes them:
 *
 *  1. cpu_wall_ratio = cpu / thread time: the seeds' figure, shown beside ours.
 *     demand_ratio = (cpu + run-queue wait) / (thread time - lock wait - GIL wait).
 *     Waiting for a CPU is CPU demand (the CPUs were oversubscribed), and a
 *     thread blocked on a lock or the GIL is neither computing nor doing I/O,
 *     so that time is taken out of the denominator instead of being counted as
 *     I/O. Four CPython threads that take turns on the GIL come out cpu-bound.
 *  2. class: idle when less than 1 ms of thread time or less than 1 ms of CPU
 *     demand was measured (nothing to spread over workers); otherwise
 *     cpu-bound above 0.7 demand, io-bound below 0.4, mixed in between (the
 *     seeds' thresholds, applied to demand).
 *  3. cpu-bound: processes when the stage runs CPython (its bytecode holds the
 *     GIL) or its threads serialize: lock + GIL wait > 30% of thread time, or
 *     the hottest lock is held > 50% of thread time. Otherwise native code
 *     that does not serialize: threads (processes would add IPC for nothing).
 *     Workers = usable CPUs (affinity and cgroup quota), for processes capped
 *     at available memory / memory per worker when that is known.
 *     When the shim measured IPC above the seeds' 15% of busy time
 *     (ipc_base_s: CPU + IPC + I/O wait, which idle pool threads do not
 *     dilute; thread time when 0), a process pool would pay it on every
 *     task: threads instead. The same holds for a mixed stage's hybrid, and
 *     for a run whose stages disagree: above 15% it stays on threads.
 *  4. io-bound: wait = off-CPU time not on locks or the run queue, compute =
 *     CPU time; N = ceil(usable x (1 + wait / compute)), at least 2 x usable
 *     (the bottom of the seeds' cores x 2-4), at most 256 threads and half the
 *     open-file limit. When N before the caps exceeds 256: async (hundreds of
 *     simultaneous waits are an event loop's job), N capped at 10000.
 *  5. mixed: hybrid (decouple: the CPU part on processes, the waits on a thread
 *     pool sized as in 4), workers = the thread count. Native code that does
 *     not serialize needs no decoupling: one thread pool sized as in 4 runs
 *     both parts.
 *  6. idle: sequential, 1 worker.
 *  7. overall: the run's own verdict, unless two or more stages that each
 *     carry at least 10% of the summed stage thread time want different
 *     models (idle/sequential stages ignored): then hybrid, with the run's
 *     own worker count.
 *  8. The seeds' verdict is computed beside ours (class by cpu_wall_ratio
 *     alone, threads/processes/hybrid, CPU workers = physical cores, I/O
 *     workers = usable CPUs x 4) and a reason says why ours differs.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "advise.h"
#include "prof.h"

/* Below this much time there is nothing measurable: CPU accounting in
 * /proc/.../stat ticks at 10 ms and schedstat's nanoseconds still include
 * start-up noise of this order. */
#define IDLE_BELOW_S 0.001
/* Guard for divisions by a time that can legitimately be zero. */
#define TINY_S 1e-9
#define SERIAL_WAIT_ABOVE 0.3
#define SERIAL_HOLD_ABOVE 0.5
#define SEED_IPC_ABOVE 0.15
#define IO_THREADS_MAX 256
#define ASYNC_MAX 10000
/* A stage must carry this share of the summed stage thread time to make the run hybrid. */
#define STAGE_SHARE_MIN 0.10

const char *prof_class_name(enum prof_class c)
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

const char *prof_model_name(enum prof_model m)
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

__attribute__((format(printf, 2, 3))) static void add_reason(struct prof_verdict *v, const char *fmt, ...)
{
    /* Reasons beyond the table are dropped: the first ones carry the verdict. */
    if (v->nreasons >= PROF_MAX_REASONS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reasons[v->nreasons], PROF_REASON_BYTES, fmt, ap);
    va_end(ap);
    v->nreasons++;
}

static int pct(double x)
{
    return x <= 0 ? 0 : (int)(x * 100.0 + 0.5);
}

static double nonneg(double x)
{
    return x > 0 ? x : 0;
}

/* A time or fraction is usable when it is a finite number >= 0 (NaN fails). */
static int bad(double x)
{
    return !(x >= 0) || isinf(x);
}

static const char *fmt_bytes(char *buf, size_t n, uint64_t b)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)b;
    int u = 0;
    while (x >= 1024.0 && u < 4) {
        x /= 1024.0;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", x, unit[u]);
    return buf;
}

static int usable_cpus(const struct prof_machine *m)
{
    if (m->usable_cpus > 0)
        return m->usable_cpus;
    if (m->affinity_cpus > 0)
        return m->affinity_cpus;
    return m->online_cpus > 0 ? m->online_cpus : 1;
}

/* Where the usable CPU count comes from, for the workers reason. */
static void cpus_origin(const struct prof_machine *m, int u, char *buf, size_t n)
{
    if (m->quota_cpus > 0 && m->affinity_cpus > 0 && u < m->affinity_cpus)
        snprintf(buf, n, " (cgroup quota %.2f CPUs of %d in the affinity mask)", m->quota_cpus, m->affinity_cpus);
    else if (m->online_cpus > 0 && m->affinity_cpus > 0 && m->affinity_cpus < m->online_cpus)
        snprintf(buf, n, " (affinity allows %d of %d online CPUs)", m->affinity_cpus, m->online_cpus);
    else
        buf[0] = '\0';
}

/* Memory a pool may use: what the kernel reports available, or the cgroup limit when lower; 0 = unknown. */
static uint64_t usable_memory(const struct prof_machine *m)
{
    uint64_t mem = m->mem_available_bytes;
    if (m->cgroup_mem_limit_bytes > 0 && (mem == 0 || m->cgroup_mem_limit_bytes < mem))
        mem = m->cgroup_mem_limit_bytes;
    return mem;
}

/* The figures every branch needs, derived once. */
struct split {
    int u;            /* usable CPUs */
    double lockgil;   /* lock + GIL wait, s */
    double serial;    /* (lock + GIL wait) / thread time */
    int serialized;   /* threads of this stage take turns on a lock or the GIL */
    double wait;      /* off-CPU, not on locks, not in the run queue: I/O and sleep, s */
    double compute;   /* CPU time, s */
    double ipc_frac;  /* IPC time / busy time (ipc_base_s, else thread time), 0 when not measured */
};

/* Size a pool for the waits: N = usable x (1 + wait / compute) (DESIGN.md). */
struct io_pool {
    double raw;       /* before floor and caps */
    enum prof_model model; /* threads, or async when raw > IO_THREADS_MAX */
    int workers;
    int floored;      /* raised to 2 x usable */
    int capped_max;   /* capped at IO_THREADS_MAX / ASYNC_MAX */
    int capped_fd;    /* capped at half the open-file limit */
};

static void size_io_pool(const struct split *s, const struct prof_machine *m, struct io_pool *p)
{
    memset(p, 0, sizeof *p);
    double compute = s->compute > TINY_S ? s->compute : TINY_S;
    p->raw = ceil(s->u * (1.0 + s->wait / compute));
    double n = p->raw;
    double top = IO_THREADS_MAX;
    p->model = PROF_MODEL_THREADS;
    if (p->raw > IO_THREADS_MAX) {
        p->model = PROF_MODEL_ASYNC;
        top = ASYNC_MAX;
    }
    if (n < 2.0 * s->u) {
        n = 2.0 * s->u;
        p->floored = 1;
    }
    if (n > top) {
        n = top;
        p->capped_max = 1;
    }
    /* Every simultaneous wait holds a descriptor (a socket, a file); leave
     * half the soft limit to the rest of the program. */
    if (m->nofile_limit > 0 && n > (double)(m->nofile_limit / 2)) {
        n = (double)(m->nofile_limit / 2);
        p->capped_fd = 1;
    }
    p->workers = n >= 1 ? (int)n : 1;
}

static void io_pool_reason(struct prof_verdict *v, const struct split *s, const struct prof_machine *m,
                           const struct io_pool *p, const char *prefix)
{
    char tail[160] = "";
    size_t len = 0;
    if (p->floored)
        len += snprintf(tail + len, sizeof tail - len, ", raised to 2 x usable CPUs (the bottom of the seeds' cores x 2-4)");
    if (p->capped_max && len < sizeof tail)
        len += snprintf(tail + len, sizeof tail - len, ", capped at %d", p->model == PROF_MODEL_ASYNC ? ASYNC_MAX : IO_THREADS_MAX);
    if (p->capped_fd && len < sizeof tail)
        snprintf(tail + len, sizeof tail - len, ", capped at half the open-file limit of %llu",
                 (unsigned long long)m->nofile_limit);
    add_reason(v, "%s%.1f s waiting per s of CPU: %d usable CPUs x (1 + %.1f) = %.0f %s%s",
               prefix, s->compute > TINY_S ? s->wait / s->compute : 0.0, s->u,
               s->compute > TINY_S ? s->wait / s->compute : 0.0, p->raw,
               p->model == PROF_MODEL_ASYNC ? "simultaneous waits" : "threads", tail);
}

/* Process pool size for the CPU part: usable CPUs, capped by memory per worker. */
static int cpu_processes(const struct prof_stage_figures *f, const struct prof_machine *m, int u, int *mem_cap)
{
    uint64_t mem = usable_memory(m);
    *mem_cap = 0;
    if (f->per_worker_bytes > 0 && mem > 0) {
        uint64_t cap = mem / f->per_worker_bytes;
        if (cap < 1)
            cap = 1;
        if (cap < (uint64_t)u) {
            *mem_cap = (int)cap;
            return (int)cap;
        }
    }
    return u;
}

static void cpu_workers_reason(struct prof_verdict *v, const struct prof_stage_figures *f,
                               const struct prof_machine *m, int u, int mem_cap, const char *prefix)
{
    char origin[128];
    cpus_origin(m, u, origin, sizeof origin);
    if (mem_cap) {
        char a[32], b[32];
        add_reason(v, "%s%d worker%s, not one per usable CPU (%d%s): %s of memory available / %s per worker", prefix,
                   mem_cap, mem_cap == 1 ? "" : "s", u, origin, fmt_bytes(a, sizeof a, usable_memory(m)),
                   fmt_bytes(b, sizeof b, f->per_worker_bytes));
    } else {
        add_reason(v, "%s%d worker%s: one per usable CPU%s; more would only queue for a CPU", prefix, u, u == 1 ? "" : "s",
                   origin);
    }
}

/* Explain, in one sentence, why our class or model differs from the seeds'. */
static void seed_reason(struct prof_verdict *v, const struct split *s, const struct prof_stage_figures *f,
                        const struct io_pool *io)
{
    const struct prof_seed_verdict *sd = &v->seed;
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    if (sd->cls != v->cls) {
        if (v->cls == PROF_CLASS_IDLE) {
            add_reason(v, "the seeds' CPU/wall of %.2f reads as %s, but under 1 ms of CPU ran: there is no work to spread over workers",
                       v->cpu_wall_ratio, prof_class_name(sd->cls));
            return;
        }
        /* Our demand ratio is never below the seeds' figure: the gap is
         * lock/GIL wait taken out of the denominator and run-queue wait added
         * to the numerator. Name the causes that made it. */
        char causes[200] = "";
        size_t len = 0;
        if (pct(f->gil_wait_s / th) > 0)
            len += snprintf(causes + len, sizeof causes - len, "%d%% GIL wait", pct(f->gil_wait_s / th));
        if (pct(f->lock_wait_s / th) > 0 && len < sizeof causes)
            len += snprintf(causes + len, sizeof causes - len, "%s%d%% lock wait", len ? ", " : "",
                            pct(f->lock_wait_s / th));
        if (pct(f->runq_s / th) > 0 && len < sizeof causes)
            snprintf(causes + len, sizeof causes - len, "%s%d%% waiting for a CPU", len ? ", " : "",
                     pct(f->runq_s / th));
        add_reason(v, "the seeds' CPU/wall of %.2f reads as %s, but thread time includes %s, not I/O: CPU demand is %.2f",
                   v->cpu_wall_ratio, prof_class_name(sd->cls), causes[0] ? causes : "lock and run-queue waits",
                   v->demand_ratio);
        return;
    }
    if (sd->model != v->model) {
        if (v->model == PROF_MODEL_ASYNC)
            add_reason(v, "the seeds' thread pool stops at cores x 4; %.0f simultaneous waits are an event loop's job", io->raw);
        else if (v->model == PROF_MODEL_THREADS && s->ipc_frac > SEED_IPC_ABOVE)
            add_reason(v, "the seeds' CPU rule says processes, but their own 15%% IPC rule overrides it: IPC is %d%% of %s",
                       pct(s->ipc_frac), f->ipc_base_s > TINY_S ? "busy time" : "thread time");
        else if (v->model == PROF_MODEL_THREADS && sd->model == PROF_MODEL_PROCESSES)
            add_reason(v, "the seeds send CPU-bound work to processes to escape the GIL; this native code waits on locks %d%% of its time, so threads scale without IPC",
                       pct(s->serial));
        else if (v->model == PROF_MODEL_THREADS && sd->model == PROF_MODEL_HYBRID)
            add_reason(v, "the seeds decouple mixed stages; native threads that do not serialize run both parts in one pool");
        return;
    }
    if (sd->workers != v->workers) {
        if (v->cls == PROF_CLASS_CPU)
            add_reason(v, "the seeds count %d physical cores; the workers follow the CPUs this run may use (%d)%s",
                       sd->workers, s->u, v->workers < s->u ? ", then memory" : "");
        else
            add_reason(v, "the seeds' fixed cores x 4 = %d ignores the measured split of wait to compute", sd->workers);
    }
}

static void seed_verdict(const struct prof_machine *m, int u, double ratio, struct prof_seed_verdict *sd)
{
    if (ratio < PROF_SEED_IO_BELOW) {
        sd->cls = PROF_CLASS_IO;
        sd->model = PROF_MODEL_THREADS;
        sd->workers = u * 4;
    } else if (ratio > PROF_SEED_CPU_ABOVE) {
        sd->cls = PROF_CLASS_CPU;
        sd->model = PROF_MODEL_PROCESSES;
        sd->workers = m->physical_cores > 0 ? m->physical_cores : u;
    } else {
        /* Decoupled: the seeds size the I/O side of a mixed stage like an I/O stage. */
        sd->cls = PROF_CLASS_MIXED;
        sd->model = PROF_MODEL_HYBRID;
        sd->workers = u * 4;
    }
}

static int figures_invalid(const struct prof_stage_figures *f)
{
    return f->nprocesses < 0 || f->nthreads < 0 || bad(f->wall_s) || bad(f->thread_s) || bad(f->cpu_s) ||
           bad(f->runq_s) || bad(f->lock_wait_s) || bad(f->gil_wait_s) || bad(f->hottest_lock_hold_fraction) ||
           bad(f->ipc_s) || bad(f->ipc_base_s);
}

int prof_advise_stage(const struct prof_stage_figures *f, const struct prof_machine *m, struct prof_verdict *out)
{
    if (!f || !m || !out || figures_invalid(f))
        return PROF_EINVAL;
    memset(out, 0, sizeof *out);
    out->name = f->name;

    struct split s = {0};
    s.u = usable_cpus(m);
    s.lockgil = f->lock_wait_s + f->gil_wait_s;
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    s.serial = s.lockgil / th;
    s.serialized = s.serial > SERIAL_WAIT_ABOVE || f->hottest_lock_hold_fraction > SERIAL_HOLD_ABOVE;
    s.wait = nonneg(f->thread_s - f->cpu_s - f->runq_s - s.lockgil);
    s.compute = f->cpu_s;
    s.ipc_frac = f->ipc_measured ? f->ipc_s / (f->ipc_base_s > TINY_S ? f->ipc_base_s : th) : 0;

    out->cpu_wall_ratio = f->thread_s > TINY_S ? f->cpu_s / f->thread_s : 0;
    double denom = f->thread_s - s.lockgil;
    out->demand_ratio = (f->cpu_s + f->runq_s) / (denom > TINY_S ? denom : TINY_S);
    seed_verdict(m, s.u, out->cpu_wall_ratio, &out->seed);

    struct io_pool io = {0};
    if (f->thread_s < IDLE_BELOW_S || f->cpu_s + f->runq_s < IDLE_BELOW_S) {
        out->cls = PROF_CLASS_IDLE;
        out->model = PROF_MODEL_SEQUENTIAL;
        out->workers = 1;
        add_reason(out, "%.1f ms of CPU in %.3f s of thread time: nothing measurable ran", f->cpu_s * 1e3, f->thread_s);
        add_reason(out, "sequential, 1 worker: a pool cannot speed up work that is not there");
    } else if (out->demand_ratio > PROF_SEED_CPU_ABOVE) {
        out->cls = PROF_CLASS_CPU;
        char lw[48] = "", rq[64] = "";
        if (pct(s.serial) > 0)
            snprintf(lw, sizeof lw, ", %d%% lock/GIL wait set aside", pct(s.serial));
        if (pct(f->runq_s / th) > 0)
            snprintf(rq, sizeof rq, ", %d%% run-queue wait counted as demand", pct(f->runq_s / th));
        add_reason(out, "CPU %d%% of thread time%s%s: CPU demand %.2f: the work is computation", pct(out->cpu_wall_ratio),
                   lw, rq, out->demand_ratio);
        if (f->python || s.serialized) {
            int mem_cap;
            out->model = PROF_MODEL_PROCESSES;
            out->workers = cpu_processes(f, m, s.u, &mem_cap);
            if (f->gil_wait_s / th > SERIAL_WAIT_ABOVE)
                add_reason(out, "%d%% of thread time waits for the GIL: the threads take turns on one interpreter; processes each have their own",
                           pct(f->gil_wait_s / th));
            else if (f->python)
                add_reason(out, "the stage runs CPython, whose bytecode holds the GIL: threads would take turns on one CPU; processes each have their own interpreter");
            if (s.serialized && f->gil_wait_s / th <= SERIAL_WAIT_ABOVE)
                add_reason(out, "the threads serialize on a lock (%d%% of thread time waiting, hottest lock held %d%%): more threads will not run in parallel; processes do not share the lock, and if its state must be shared the lock is the limit either way",
                           pct(s.serial), pct(f->hottest_lock_hold_fraction));
            cpu_workers_reason(out, f, m, s.u, mem_cap, "");
            if (s.ipc_frac > SEED_IPC_ABOVE) {
                /* The seeds' 15% rule: a process pool pays IPC on every task. */
                out->model = PROF_MODEL_THREADS;
                out->workers = s.u;
                add_reason(out, "but IPC is %d%% of %s, above the seeds' 15%%: a process pool would spend it copying data; threads share memory (they serialize too: shared memory or zero-copy buffers would keep processes worth it)",
                           pct(s.ipc_frac), f->ipc_base_s > TINY_S ? "busy time" : "thread time");
            }
        } else {
            out->model = PROF_MODEL_THREADS;
            out->workers = s.u;
            add_reason(out, "native code that waits on locks %d%% of its time: native threads that do not serialize scale on threads; processes would add IPC for nothing",
                       pct(s.serial));
            cpu_workers_reason(out, f, m, s.u, 0, "");
            if (!f->lock_measured)
                add_reason(out, "lock waits were not measured in every process of the stage: a hidden global lock would stop threads from scaling");
        }
    } else if (out->demand_ratio < PROF_SEED_IO_BELOW) {
        out->cls = PROF_CLASS_IO;
        add_reason(out, "CPU %d%% of thread time; %d%% is off-CPU waiting that is not lock, GIL or run queue (I/O, sleep): the work is waiting",
                   pct(out->cpu_wall_ratio), pct(s.wait / th));
        size_io_pool(&s, m, &io);
        out->model = io.model;
        out->workers = io.workers;
        if (io.model == PROF_MODEL_ASYNC)
            add_reason(out, "async: hundreds of simultaneous waits are an event loop's job, not a thread pool's");
        else
            add_reason(out, "threads: a waiting thread holds no CPU%s", f->python ? " and releases the GIL" : "");
        io_pool_reason(out, &s, m, &io, "");
        if (s.serial > SERIAL_WAIT_ABOVE)
            add_reason(out, "%d%% of thread time waits on locks: more threads will queue on them unless the locked section shrinks",
                       pct(s.serial));
    } else {
        out->cls = PROF_CLASS_MIXED;
        add_reason(out, "CPU demand %.2f, between the seeds' 0.4 and 0.7: the stage both computes (CPU %d%% of thread time) and waits (%d%%)",
                   out->demand_ratio, pct(out->cpu_wall_ratio), pct(s.wait / th));
        size_io_pool(&s, m, &io);
        if (f->python || s.serialized) {
            int mem_cap;
            (void)cpu_processes(f, m, s.u, &mem_cap);
            out->model = PROF_MODEL_HYBRID;
            out->workers = io.workers;
            add_reason(out, "hybrid: decouple the stage: the computation on processes (%s), the waits on a thread pool",
                       f->python ? "CPython threads take turns on the GIL" : "its threads serialize on a lock");
            cpu_workers_reason(out, f, m, s.u, mem_cap, "CPU part: ");
            io_pool_reason(out, &s, m, &io, "I/O part: ");
            if (s.ipc_frac > SEED_IPC_ABOVE) {
                /* The seeds' 15% rule: the process half of a hybrid pays IPC on every task. */
                out->model = io.model == PROF_MODEL_ASYNC ? PROF_MODEL_ASYNC : PROF_MODEL_THREADS;
                add_reason(out, "but IPC is %d%% of %s, above the seeds' 15%%: the process half would spend it copying data; one %s pool shares memory",
                           pct(s.ipc_frac), f->ipc_base_s > TINY_S ? "busy time" : "thread time",
                           prof_model_name(out->model));
            }
        } else {
            /* Native code that runs in parallel: the thread-pool formula already
             * accounts for the compute share, so one pool serves both parts. */
            out->model = io.model == PROF_MODEL_ASYNC ? PROF_MODEL_HYBRID : PROF_MODEL_THREADS;
            out->workers = io.workers;
            add_reason(out, "threads: native code that does not serialize (lock wait %d%%) computes in parallel on threads, and a thread pool sized for the waits covers both parts",
                       pct(s.serial));
            io_pool_reason(out, &s, m, &io, "");
        }
    }
    seed_reason(out, &s, f, &io);
    return 0;
}

int prof_advise_overall(const struct prof_stage_figures *overall, const struct prof_verdict *stages,
                        const double *stage_thread_s, size_t nstages, const struct prof_machine *m,
                        struct prof_verdict *out)
{
    if (!overall || !m || !out || (nstages > 0 && (!stages || !stage_thread_s)))
        return PROF_EINVAL;
    double sum = 0;
    for (size_t i = 0; i < nstages; i++) {
        if (bad(stage_thread_s[i]))
            return PROF_EINVAL;
        sum += stage_thread_s[i];
    }
    int rc = prof_advise_stage(overall, m, out);
    if (rc < 0 || nstages < 2 || sum <= TINY_S)
        return rc;

    /* Which stages count: a real share of the run, and work to do. */
    size_t nsig = 0, first = 0;
    int differ = 0;
    for (size_t i = 0; i < nstages; i++) {
        if (stage_thread_s[i] / sum < STAGE_SHARE_MIN || stages[i].cls == PROF_CLASS_IDLE ||
            stages[i].model == PROF_MODEL_SEQUENTIAL)
            continue;
        if (nsig++ == 0)
            first = i;
        else if (stages[i].model != stages[first].model)
            differ = 1;
    }
    if (!differ)
        return 0;
    double base = overall->ipc_base_s > TINY_S ? overall->ipc_base_s : overall->thread_s;
    double ipc_frac = overall->ipc_measured && base > TINY_S ? overall->ipc_s / base : 0;
    if (ipc_frac > SEED_IPC_ABOVE && out->model != PROF_MODEL_PROCESSES && out->model != PROF_MODEL_HYBRID) {
        /* Splitting the run into per-stage pools would keep processes, and with them the IPC. */
        add_reason(out, "stages want different models, but IPC is %d%% of the run's busy time, above the seeds' 15%%: pools of processes would keep paying it, so the run stays on %s",
                   pct(ipc_frac), prof_model_name(out->model));
        return 0;
    }

    /* Stages that want different pools: one pool for the whole run would be
     * wrong for at least one of them, so each stage runs on its own. */
    struct prof_verdict own = *out;
    out->model = PROF_MODEL_HYBRID;
    out->nreasons = 0;
    add_reason(out, "hybrid: %zu stages that each carry at least 10%% of the stage thread time want different models; run each stage on its own pool",
               nsig);
    for (size_t i = 0; i < nstages; i++) {
        if (stage_thread_s[i] / sum < STAGE_SHARE_MIN || stages[i].cls == PROF_CLASS_IDLE ||
            stages[i].model == PROF_MODEL_SEQUENTIAL)
            continue;
        add_reason(out, "stage %s (%s, %d%% of stage thread time) wants %s x %d",
                   stages[i].name ? stages[i].name : "?",
                   prof_class_name(stages[i].cls), pct(stage_thread_s[i] / sum), prof_model_name(stages[i].model),
                   stages[i].workers);
    }
    add_reason(out, "the run as a whole reads as %s (CPU demand %.2f) and alone would get %s x %d; workers stay the run's own figure",
               prof_class_name(own.cls), own.demand_ratio, prof_model_name(own.model), own.workers);
    if (out->seed.model != PROF_MODEL_HYBRID)
        add_reason(out, "the seeds judge the run by its CPU/wall of %.2f alone (%s); the stages' own figures disagree with each other",
                   own.cpu_wall_ratio, prof_model_name(out->seed.model));
    return 0;
}

/*
 * rss.leak_suspected: memory that keeps climbing through the run rather
 * than levelling off. All of these must hold:
 *   - at least 5 samples, in time order, over a positive time span;
 *   - net growth (last sample - first) of at least 16 MiB and at least 20% of
 *     the first sample: allocator arenas, interpreter warm-up and caches
 *     commonly add a few MiB and then stop, and a few percent of a large
 *     process is noise;
 *   - the series rarely falls: the sum of all drops between consecutive
 *     samples is at most 25% of the sum of all rises. Memory that is freed
 *     and re-used is churn, not a leak;
 *   - it is still climbing at the end: the least-squares slope over the last
 *     third of the run (by time) is at least 50% of the average rate over
 *     the whole run (net growth / duration). A series that climbs and then
 *     plateaus has a flat last third.
 */
#define LEAK_MIN_SAMPLES 5
#define LEAK_MIN_GROWTH (16ull << 20)
#define LEAK_MIN_REL_GROWTH 0.20
#define LEAK_MAX_FALL_SHARE 0.25
#define LEAK_MIN_LATE_RATE 0.50

int prof_rss_leak_suspected(const double *t, const uint64_t *rss, size_t n)
{
    if (!t || !rss)
        return PROF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (isnan(t[i]) || isinf(t[i]) || (i > 0 && t[i] < t[i - 1]))
            return PROF_EINVAL;
    if (n < LEAK_MIN_SAMPLES)
        return 0;
    double span = t[n - 1] - t[0];
    if (span <= 0 || rss[n - 1] <= rss[0])
        return 0;
    uint64_t growth = rss[n - 1] - rss[0];
    if (growth < LEAK_MIN_GROWTH || (double)growth < LEAK_MIN_REL_GROWTH * (double)rss[0])
        return 0;

    double rises = 0, falls = 0;
    for (size_t i = 1; i < n; i++) {
        if (rss[i] >= rss[i - 1])
            rises += (double)(rss[i] - rss[i - 1]);
        else
            falls += (double)(rss[i - 1] - rss[i]);
    }
    if (falls > LEAK_MAX_FALL_SHARE * rises)
        return 0;

    /* The last third by time; at least two samples for a slope. */
    double cut = t[0] + span * 2.0 / 3.0;
    size_t k = 0;
    while (k < n && t[k] < cut)
        k++;
    if (k > n - 2)
        k = n - 2;
    size_t w = n - k;
    double mt = 0, mr = 0;
    for (size_t i = k; i < n; i++) {
        mt += t[i];
        mr += (double)rss[i];
    }
    mt /= (double)w;
    mr /= (double)w;
    double sxy = 0, sxx = 0;
    for (size_t i = k; i < n; i++) {
        sxy += (t[i] - mt) * ((double)rss[i] - mr);
        sxx += (t[i] - mt) * (t[i] - mt);
    }
    if (sxx <= 0)
        return 0;
    double late = sxy / sxx;
    double avg = (double)growth / span;
    return late >= LEAK_MIN_LATE_RATE * avg ? 1 : 0;
}
