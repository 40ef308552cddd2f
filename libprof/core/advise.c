/* advise.c: the first verdict: from a stage's measured time split to a class, a pool model, a worker count and the reasons. */

/*
 * Pure functions: no /proc, no clock, no file, no printing. snprintf is used
 * only to format the reasons into the caller's verdict.
 *
 * The rules, as docs/verdict.md quotes them:
 *
 *  1. cpu_wall_ratio = cpu / thread time: the seeds' figure, shown beside ours.
 *     demand_ratio = (cpu + run-queue wait) / (thread time - lock wait - GIL wait).
 *     Waiting for a CPU is CPU demand (the CPUs were oversubscribed), and a
 *     thread blocked on a lock or the GIL is neither computing nor doing I/O,
 *     so that time is taken out of the denominator instead of being counted as
 *     I/O. Four CPython threads that take turns on the GIL come out cpu-bound.
 *  2. class: idle when less than 1 ms of thread time was measured, or less
 *     than 1 ms (or 2% of the stage's wall time) of work workers could share:
 *     CPU after the images' start-up (exec, loader, constructors: before main)
 *     plus the separate waits beyond the longest one (rule 4a); otherwise cpu-bound above 0.7 demand,
 *     io-bound below 0.4, mixed in between (the seeds' thresholds, applied to
 *     demand).
 *  3. cpu-bound: processes when the stage runs CPython (its bytecode holds the
 *     GIL) or its threads serialize: lock + GIL wait > 30% of thread time, or
 *     the hottest lock is held > 50% of thread time. Otherwise native code
 *     that does not serialize: threads (processes would add IPC for nothing).
 *     Workers = usable CPUs (affinity and cgroup quota), for processes capped
 *     at available memory / memory per worker when that is known. Preemptions
 *     that show the stage's own threads outnumbered the CPUs confirm that cap
 *     in a reason (evidence.c); it never rises above them.
 *     When the shim measured IPC above the seeds' 15% of busy time
 *     (ipc_base_s: CPU + IPC + I/O wait, which idle pool threads do not
 *     dilute; thread time when 0), a process pool would pay it on every
 *     task: threads instead. The same holds for a mixed stage's hybrid, and
 *     for a run whose stages disagree: above 15% it stays on threads.
 *  4. io-bound: wait = the separate waits (4a), compute = CPU time after
 *     start-up; N = ceil(usable x (1 + wait / compute)), at least 2 x usable
 *     (the bottom of the seeds' cores x 2-4; not where the stage's own threads
 *     were preempted as oversubscribed CPUs do, evidence.c), at most 256 threads and half the
 *     open-file limit, and at most the separate waits there were. When N
 *     before the caps exceeds 256: async (hundreds of simultaneous waits are
 *     an event loop's job), N capped at 10000.
 * 4a. Only separate, repeated waits overlap (predict.c adv_waits): requests
 *     answered, file reads, sleeps, as the shim counts them (without the shim,
 *     no more than the voluntary context switches). N of them overlap at most
 *     N-fold and none finishes sooner than its kind's mean wait; the rest of
 *     the off-CPU time (back-pressure, waits for input, untimed) and the
 *     start-up stay as long as they were in every prediction.
 *  5. mixed: hybrid (decouple: the CPU part on processes, the waits on a thread
 *     pool sized as in 4), workers = the thread count. Native code that does
 *     not serialize needs no decoupling: one thread pool sized as in 4 runs
 *     both parts.
 *  6. idle: sequential, 1 worker.
 *  7. overall: the run's own verdict, unless two or more stages that each
 *     carry at least 10% of the summed stage work (CPU + waits that are work) want different
 *     models (idle/sequential stages ignored): then hybrid, with the run's
 *     own worker count.
 *  8. The seeds' verdict is computed beside ours (class by cpu_wall_ratio
 *     alone, threads/processes/hybrid, CPU workers = physical cores, I/O
 *     workers = usable CPUs x 4) and a reason says why ours differs.
 *
 * Rule 7 is advise_run.c's, beside the memory-leak judgment over the RSS
 * series; the prediction that picks among the candidates is predict.c's.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/advise_int.h"
#include "prof.h"

/* Below this much time there is nothing measurable: CPU accounting in
 * /proc/.../stat ticks at 10 ms and schedstat's nanoseconds still include
 * start-up noise of this order. */
#define IDLE_BELOW_S 0.001
/* ...or less than this share of the stage's wall time: a launcher (make, xargs, a shell) that
 * spent 9 ms of a 1.2 s run starting its children does no work a pool of it would share; the
 * children's own stages carry the verdict. */
#define IDLE_BELOW_WALL 0.02
#define SERIAL_HOLD_ABOVE 0.5
#define IO_THREADS_MAX 256
#define ASYNC_MAX 10000

void adv_add_reason(struct prof_verdict *v, const char *fmt, ...)
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

const char *adv_fmt_bytes(char *buf, size_t n, uint64_t b)
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

/* A duration for the reasons: milliseconds below a tenth of a second, else seconds. */
const char *adv_fmt_dur(char *buf, size_t n, double s)
{
    if (s < 0.1)
        snprintf(buf, n, "%.1f ms", s * 1e3);
    else
        snprintf(buf, n, "%.2f s", s);
    return buf;
}

/* A count with thousands separators ("2,400"), for the reasons. */
const char *adv_fmt_count(char *buf, size_t n, double x)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", x > 0 ? x : 0);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
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

/*
 * CPUs that add a whole CPU to a computation. SMT siblings share one core's execution units:
 * the second sibling adds a fraction of a core that depends on the code (nothing here measures
 * it), so CPU workers and their predictions count physical cores, and the reasons say how to
 * measure the rest (poolprof sweep). Waits are not computation: I/O pools still size on u.
 */
static int compute_cpus(const struct prof_machine *m, int u)
{
    if (m->physical_cores > 0 && m->affinity_cpus > m->physical_cores && m->physical_cores < u)
        return m->physical_cores;
    return u;
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

/* Then its floor and caps: 2 x usable, the thread or event-loop ceiling, descriptors, memory, requests. */
static void size_io_pool(const struct split *s, const struct prof_machine *m, struct io_pool *p)
{
    memset(p, 0, sizeof *p);
    double compute = s->compute > TINY_S ? s->compute : TINY_S;
    p->raw = ceil(s->u * (1.0 + s->wait / compute));
    double n = p->raw;
    /* More simultaneous waits than requests: the extra workers would find none to wait on. */
    if (s->tasks > 0 && n > (double)s->tasks) {
        n = (double)s->tasks;
        p->capped_tasks = 1;
    }
    double top = IO_THREADS_MAX;
    p->model = PROF_MODEL_THREADS;
    if (n > IO_THREADS_MAX) {
        p->model = PROF_MODEL_ASYNC;
        top = ASYNC_MAX;
    }
    if (n < 2.0 * s->u && !p->capped_tasks) {
        /* The floor adds threads beyond what the waits keep busy, whose CPU demand then passes the
         * usable CPUs: not where the stage's own threads already oversubscribed them (evidence.c). */
        if (s->ctr.own) {
            p->held_cpu = 1;
            p->floor = 2 * s->u;
        } else {
            n = 2.0 * s->u;
            p->floored = 1;
        }
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
    /* Each thread holds its own stack and buffers (an event loop's tasks do not: no cap there). */
    uint64_t mem = usable_memory(m);
    if (p->model == PROF_MODEL_THREADS && s->thread_mem > 0 && mem > 0 && n > (double)(mem / s->thread_mem)) {
        n = (double)(mem / s->thread_mem);
        p->capped_mem = 1;
    }
    p->workers = n >= 1 ? (int)n : 1;
}

static void io_pool_reason(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s,
                           const struct prof_machine *m, const struct io_pool *p, const char *prefix)
{
    char tail[320] = "";
    size_t len = 0;
    if (p->capped_tasks && f->waits_counted == PROF_WAITS_SHIM)
        len += snprintf(tail + len, sizeof tail - len, ", capped at %llu: the separate waits the stage made (%llu request%s answered, %llu file read%s, %llu sleep%s), which overlap at most so many-fold",
                        (unsigned long long)s->tasks, (unsigned long long)f->net_round_trips,
                        f->net_round_trips == 1 ? "" : "s", (unsigned long long)f->disk_reads,
                        f->disk_reads == 1 ? "" : "s", (unsigned long long)f->sleeps, f->sleeps == 1 ? "" : "s");
    else if (p->capped_tasks && f->waits_counted == PROF_WAITS_SWITCHES)
        len += snprintf(tail + len, sizeof tail - len, ", capped at %llu: no more of its waits ended than its %llu voluntary context switches",
                        (unsigned long long)s->tasks, (unsigned long long)f->switches);
    else if (p->capped_tasks)
        len += snprintf(tail + len, sizeof tail - len, ", capped at %llu: the requests the stage made (answers received on its network connections)",
                        (unsigned long long)s->tasks);
    if (p->floored && len < sizeof tail)
        len += snprintf(tail + len, sizeof tail - len, ", raised to 2 x usable CPUs (the bottom of the seeds' cores x 2-4)");
    if (p->capped_max && len < sizeof tail)
        len += snprintf(tail + len, sizeof tail - len, ", capped at %d", p->model == PROF_MODEL_ASYNC ? ASYNC_MAX : IO_THREADS_MAX);
    if (p->capped_fd && len < sizeof tail)
        len += snprintf(tail + len, sizeof tail - len, ", capped at half the open-file limit of %llu",
                        (unsigned long long)m->nofile_limit);
    if (p->capped_mem && len < sizeof tail) {
        char a[32], b[32];
        snprintf(tail + len, sizeof tail - len, ", capped at %d by memory: %s available / %s per thread", p->workers,
                 adv_fmt_bytes(a, sizeof a, usable_memory(m)), adv_fmt_bytes(b, sizeof b, s->thread_mem));
    }
    adv_add_reason(v, "%s%.1f s waiting per s of CPU: %d usable CPUs x (1 + %.1f) = %.0f %s%s",
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
    int all = usable_cpus(m);
    if (u < all && !mem_cap) {
        /* u is the physical cores (compute_cpus): say so, and how to measure the siblings. */
        adv_add_reason(v, "%s%d worker%s: one per physical core; the %d usable CPUs are %d cores with SMT siblings, which share a core's execution units and add a share of a core that depends on the code: measure it with poolprof sweep --workers %d,%d",
                       prefix, u, u == 1 ? "" : "s", all, u, u, all);
        return;
    }
    if (u < all)
        snprintf(origin, sizeof origin, " (physical cores; %d with SMT siblings)", all);
    else
        cpus_origin(m, u, origin, sizeof origin);
    if (mem_cap) {
        char a[32], b[32];
        adv_add_reason(v, "%s%d worker%s, not one per usable CPU (%d%s): %s of memory available / %s per worker", prefix,
                       mem_cap, mem_cap == 1 ? "" : "s", u, origin, adv_fmt_bytes(a, sizeof a, usable_memory(m)),
                       adv_fmt_bytes(b, sizeof b, f->per_worker_bytes));
    } else {
        adv_add_reason(v, "%s%d worker%s: one per usable CPU%s; more would only queue for a CPU", prefix, u, u == 1 ? "" : "s",
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
            adv_add_reason(v, "the seeds' CPU/wall of %.2f reads as %s, but under 1 ms of CPU ran%s: there is no work to spread over workers",
                           v->cpu_wall_ratio, prof_class_name(sd->cls),
                           f->waits_counted != PROF_WAITS_UNKNOWN ? " and no two of its waits could overlap" : "");
            return;
        }
        /* Our demand ratio is never below the seeds' figure: the gap is
         * lock/GIL wait taken out of the denominator and run-queue wait added
         * to the numerator. Name the causes that made it. */
        char causes[200] = "";
        size_t len = 0;
        if (adv_pct(f->gil_wait_s / th) > 0)
            len += snprintf(causes + len, sizeof causes - len, "%d%% GIL wait", adv_pct(f->gil_wait_s / th));
        if (adv_pct(f->lock_wait_s / th) > 0 && len < sizeof causes)
            len += snprintf(causes + len, sizeof causes - len, "%s%d%% lock wait", len ? ", " : "",
                            adv_pct(f->lock_wait_s / th));
        if (adv_pct(f->runq_s / th) > 0 && len < sizeof causes)
            snprintf(causes + len, sizeof causes - len, "%s%d%% waiting for a CPU", len ? ", " : "",
                     adv_pct(f->runq_s / th));
        adv_add_reason(v, "the seeds' CPU/wall of %.2f reads as %s, but thread time includes %s, not I/O: CPU demand is %.2f",
                       v->cpu_wall_ratio, prof_class_name(sd->cls), causes[0] ? causes : "lock and run-queue waits",
                       v->demand_ratio);
        return;
    }
    if (sd->model != v->model) {
        if (v->model == PROF_MODEL_ASYNC)
            adv_add_reason(v, "the seeds' thread pool stops at cores x 4; %.0f simultaneous waits are an event loop's job", io->raw);
        else if ((v->model == PROF_MODEL_THREADS || v->model == PROF_MODEL_SEQUENTIAL) && s->ipc_frac > SEED_IPC_ABOVE)
            adv_add_reason(v, "the seeds' CPU rule says processes, but their own 15%% IPC rule overrides it: IPC is %d%% of %s",
                           adv_pct(s->ipc_frac), f->ipc_base_s > TINY_S ? "busy time" : "thread time");
        else if (v->model == PROF_MODEL_SEQUENTIAL && s->u == 1 && sd->workers > 1)
            adv_add_reason(v, "the seeds count %d physical cores; this run may use 1 CPU, so their %d workers would take turns on it",
                           sd->workers, sd->workers);
        else if (v->model == PROF_MODEL_SEQUENTIAL && v->work.serial_processes >= 0.5)
            adv_add_reason(v, "the seeds send CPU-bound work to %s; this work holds one lock %d%% of its CPU time, and workers that share its state take turns on it",
                           prof_model_name(sd->model), adv_pct(v->work.serial_processes));
        else if (v->model == PROF_MODEL_SEQUENTIAL)
            adv_add_reason(v, "the seeds would run %s x %d; the prediction gives no model 10%% over one worker", prof_model_name(sd->model),
                           sd->workers);
        else if (v->model == PROF_MODEL_THREADS && sd->model == PROF_MODEL_PROCESSES)
            adv_add_reason(v, "the seeds send CPU-bound work to processes to escape the GIL; this %s waits on locks %d%% of its time, so threads scale without IPC",
                           f->python && f->gil_absent ? "CPython runs without one and" : "native code", adv_pct(s->serial));
        else if (v->model == PROF_MODEL_THREADS && sd->model == PROF_MODEL_HYBRID)
            adv_add_reason(v, "the seeds decouple mixed stages; native threads that do not serialize run both parts in one pool");
        return;
    }
    if (sd->workers != v->workers) {
        if (v->cls == PROF_CLASS_CPU)
            adv_add_reason(v, "the seeds count %d physical cores; the workers follow the CPUs this run may use (%d)%s",
                           sd->workers, s->c, v->workers < s->c ? ", then memory" : "");
        else
            adv_add_reason(v, "the seeds' fixed cores x 4 = %d ignores the measured split of wait to compute", sd->workers);
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
    return f->nprocesses < 0 || f->nthreads < 0 || adv_bad(f->wall_s) || adv_bad(f->thread_s) || adv_bad(f->cpu_s) ||
           adv_bad(f->runq_s) || adv_bad(f->steal_s) || adv_bad(f->lock_wait_s) || adv_bad(f->sampled_wait_s) || adv_bad(f->gil_wait_s) || adv_bad(f->hottest_lock_hold_fraction) ||
           adv_bad(f->ipc_s) || adv_bad(f->ipc_base_s) || adv_bad(f->evloop_wait_s) || adv_bad(f->serialize_s) || adv_bad(f->net_wait_s) ||
           adv_bad(f->io_wait_s) || adv_bad(f->sleep_s) || adv_bad(f->net_send_wait_s) || adv_bad(f->ipc_send_wait_s) ||
           adv_bad(f->startup_cpu_s) || adv_bad(f->fork_stime_s) || f->fork_children < 0 ||
           adv_bad(f->gil_held_share) || f->gil_held_share > 1.0 || f->current_workers < 0;
}

/* The figures every branch needs (struct split), derived once. */
static void derive_split(const struct prof_stage_figures *f, const struct prof_machine *m, struct split *s)
{
    *s = (struct split){0};
    s->u = usable_cpus(m);
    s->c = compute_cpus(m, s->u);
    s->thread_mem = f->per_thread_bytes;
    s->lockgil = f->lock_wait_s + f->gil_wait_s;
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    s->serial = s->lockgil / th;
    s->serialized = s->serial > SERIAL_WAIT_ABOVE || f->hottest_lock_hold_fraction > SERIAL_HOLD_ABOVE;
    /* A process pool's own idle time is neither work nor I/O: workers blocked on their next
     * task (IPC) and the dispatcher's poll loop over its workers. */
    struct prof_work cur = {0};
    adv_current_config(f, &cur);
    /* A loop that overlaps its own requests waits on them, not on a pool, even if it started a busy child. */
    int pool = cur.current_model == PROF_MODEL_PROCESSES || (f->pool_dispatcher && cur.current_model != PROF_MODEL_ASYNC);
    if (pool)
        s->pool_idle = (f->ipc_measured ? f->ipc_s : 0) + f->evloop_wait_s;
    else if (f->ipc_measured)
        /* Elsewhere a reader blocked on the tree's pipe waits for its writer to produce (a
         * pipeline's consumer for its producer): a hand-off, idle like a pool's. Its writers'
         * waits for a reader stay back-pressure, which no pool shortens. */
        s->pool_idle = adv_nonneg(f->ipc_s - f->ipc_send_wait_s);
    adv_waits(f, s->lockgil, s->pool_idle, pool, &s->waits);
    /* Busy workers that can outnumber the CPUs: an event loop's are its threads, not its requests in flight. */
    adv_counters(f, s, cur.current_model == PROF_MODEL_ASYNC ? f->nthreads : cur.current_workers,
                 m->page_size > 0 ? (uint64_t)m->page_size : 0, &s->ctr);
    s->wait = s->waits.indep;
    s->compute = f->cpu_s - fmin(f->startup_cpu_s > 0 ? f->startup_cpu_s : 0, f->cpu_s);
    if (f->waits_counted != PROF_WAITS_UNKNOWN) {
        /* N separate waits keep at most N workers waiting at once. */
        s->tasks = s->waits.episodes >= 1 ? (uint64_t)llround(s->waits.episodes) : 1;
    } else if (f->net_round_trips > 0 && f->net_wait_s >= 0.5 * s->wait) {
        /* Requests bound the useful concurrency only where the waits are theirs (not sleeps, disk). */
        s->tasks = f->net_round_trips;
    }
    s->ipc_frac = f->ipc_measured ? f->ipc_s / (f->ipc_base_s > TINY_S ? f->ipc_base_s : th) : 0;
}

/*
 * What of a stage's off-CPU time no pool shortens, in one sentence: the waits that were one
 * long wait, back-pressure, waits for input, the tree's pipes, untimed time. Empty when none.
 */
static void unsplittable_reason(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s)
{
    const struct adv_waits *w = &s->waits;
    char parts[PROF_REASON_BYTES] = "", d[32];
    size_t len = 0;
#define PART(cond, ...)                                                                                 \
    if ((cond) && len < sizeof parts)                                                                   \
        len += (size_t)snprintf(parts + len, sizeof parts - len, __VA_ARGS__);
    PART(w->indep > 0 && w->episodes < 1.5, "%sone wait of %s, which no pool shortens", len ? "; " : "", adv_fmt_dur(d, sizeof d, w->indep))
    PART(w->backpressure > 0.0005, "%s%s of sends waiting for a reader (back-pressure: more writers do not make it read faster)",
         len ? "; " : "", adv_fmt_dur(d, sizeof d, w->backpressure))
    PART(w->unrequested > 0.0005, "%s%s waiting for input no request of its own asked for", len ? "; " : "",
         adv_fmt_dur(d, sizeof d, w->unrequested))
    PART(w->ipc > 0.0005, "%s%s on pipes and sockets to processes of the tree", len ? "; " : "", adv_fmt_dur(d, sizeof d, w->ipc))
    PART(w->untimed > 0.0005 && f->waits_counted == PROF_WAITS_SHIM, "%s%s off CPU where the shim timed no call (waiting for a child, stdio's own writes, page faults)",
         len ? "; " : "", adv_fmt_dur(d, sizeof d, w->untimed))
    PART(w->untimed > 0.0005 && f->waits_counted == PROF_WAITS_SWITCHES && f->switches == 0,
         "%s%s in waits none of which ended (no voluntary context switch)", len ? "; " : "", adv_fmt_dur(d, sizeof d, w->untimed))
#undef PART
    if (len)
        adv_add_reason(v, "its waits cannot be split among workers: %s", parts);
}

/* Off-CPU time no pool shortens: the fixed waits, and the waits that were one long wait. */
static double stuck_waits(const struct split *s)
{
    return s->waits.fixed + (s->waits.indep > 0 && s->waits.episodes < 1.5 ? s->waits.indep : 0);
}

/* Work that workers could share: CPU after start-up, and separate waits beyond the longest one. */
static double spreadable_work(const struct prof_stage_figures *f, const struct split *s)
{
    double waits = f->waits_counted != PROF_WAITS_UNKNOWN && s->waits.indep > s->waits.longest
                       ? s->waits.indep - s->waits.longest
                       : 0;
    return s->compute + waits;
}

/* Nothing measurable to spread: sequential, 1 worker, and the seeds' view beside it. */
static void idle_verdict(struct prof_verdict *out, const struct prof_stage_figures *f, const struct split *s,
                         const struct io_pool *io)
{
    out->cls = PROF_CLASS_IDLE;
    adv_predict_idle(out, f, s);
    /* Below 1 ms nothing measurable ran; above it, too little of the stage's time to share. */
    const char *what = f->thread_s < IDLE_BELOW_S || spreadable_work(f, s) < IDLE_BELOW_S
                           ? "nothing measurable ran"
                           : "under 2% of the stage's wall time is work a pool could share";
    if (f->startup_cpu_s > 0.00005)
        adv_add_reason(out, "%.1f ms of CPU in %.3f s of thread time, %.1f ms of it before main (exec, loader, start-up, which every worker would repeat): %s",
                       f->cpu_s * 1e3, f->thread_s, fmin(f->startup_cpu_s, f->cpu_s) * 1e3, what);
    else
        adv_add_reason(out, "%.1f ms of CPU in %.3f s of thread time: %s", f->cpu_s * 1e3, f->thread_s, what);
    unsplittable_reason(out, f, s);
    adv_add_reason(out, "sequential, 1 worker: a pool cannot speed up work that is not there");
    seed_reason(out, s, f, io);
}

/* The class: the seeds' thresholds, on CPU demand rather than CPU / wall. */
static void classify(struct prof_verdict *out, const struct prof_stage_figures *f, const struct split *s)
{
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    /* A loop's overlapping requests are in flight far longer than its thread lived: the share of
     * thread time spent waiting is at most what was off CPU. */
    double waited = fmin(s->wait + s->waits.fixed, adv_nonneg(th - f->cpu_s));
    if (out->demand_ratio > PROF_SEED_CPU_ABOVE) {
        out->cls = PROF_CLASS_CPU;
        char lw[48] = "", rq[96] = "";
        if (adv_pct(s->serial) > 0)
            snprintf(lw, sizeof lw, ", %d%% lock/GIL wait set aside", adv_pct(s->serial));
        if (adv_pct((f->runq_s + f->steal_s) / th) > 0)
            snprintf(rq, sizeof rq, ", %d%% %s counted as demand", adv_pct((f->runq_s + f->steal_s) / th),
                     adv_pct(f->steal_s / th) > 0 ? "run-queue wait and stolen time" : "run-queue wait");
        adv_add_reason(out, "CPU %d%% of thread time%s%s: CPU demand %.2f: the work is computation", adv_pct(out->cpu_wall_ratio),
                       lw, rq, out->demand_ratio);
    } else if (out->demand_ratio < PROF_SEED_IO_BELOW) {
        out->cls = PROF_CLASS_IO;
        adv_add_reason(out, "CPU %d%% of thread time; %d%% is off-CPU waiting that is not lock, GIL or run queue (I/O, sleep): the work is waiting",
                       adv_pct(out->cpu_wall_ratio), adv_pct(waited / th));
    } else {
        out->cls = PROF_CLASS_MIXED;
        adv_add_reason(out, "CPU demand %.2f, between the seeds' 0.4 and 0.7: the stage both computes (CPU %d%% of thread time) and waits (%d%%)",
                       out->demand_ratio, adv_pct(out->cpu_wall_ratio), adv_pct(waited / th));
    }
}

/*
 * The candidates, each at the count its own formula gives, and their predicted speedups
 * (predict.c): processes one per CPU that computes, capped by memory per worker (*mem_cap says
 * at what); threads as the I/O pool sizes them, async's ceiling kept to IO_THREADS_MAX, within
 * half the open-file limit and memory. Returns whether the program runs its own event loop.
 */
static int predict_stage(struct prof_verdict *out, const struct prof_stage_figures *f, const struct prof_machine *m,
                         const struct split *s, const struct io_pool *io, int *mem_cap)
{
    int evloop = adv_predict_work(out, f, s);
    *mem_cap = 0;
    int nproc = cpu_processes(f, m, s->c, mem_cap);
    int nthr = io->model == PROF_MODEL_ASYNC ? IO_THREADS_MAX : io->workers;
    if (m->nofile_limit > 0 && nthr > (int)(m->nofile_limit / 2))
        nthr = (int)(m->nofile_limit / 2) > 0 ? (int)(m->nofile_limit / 2) : 1;
    uint64_t mem = usable_memory(m);
    if (s->thread_mem > 0 && mem > 0 && (uint64_t)nthr > mem / s->thread_mem)
        nthr = mem / s->thread_mem > 0 ? (int)(mem / s->thread_mem) : 1;
    adv_predict(out, f, s, io, nproc, nthr, evloop);
    return evloop;
}

/* How many workers, and why: the chosen model's own count and what capped it. */
static void workers_reasons(struct prof_verdict *out, const struct prof_stage_figures *f, const struct prof_machine *m,
                            const struct split *s, const struct io_pool *io, int mem_cap, int evloop)
{
    const struct prof_work *k = &out->work;
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    switch (out->model) {
    case PROF_MODEL_SEQUENTIAL:
        if (s->u == 1) {
            char origin[128];
            cpus_origin(m, s->u, origin, sizeof origin);
            adv_add_reason(out, "sequential, 1 worker: this run may use 1 CPU%s; a pool's workers would take turns on it",
                           origin);
        } else if (s->c == 1 && out->cls == PROF_CLASS_CPU) {
            adv_add_reason(out, "sequential, 1 worker: the %d usable CPUs are SMT siblings of one core, which share its execution units; what a second worker adds depends on the code: measure it with poolprof sweep --workers 1,%d",
                           s->u, s->u);
        } else if (k->task_measured && k->current_model == PROF_MODEL_PROCESSES) {
            adv_add_reason(out, "sequential, 1 worker: call the task inline, in the program's own process; a pool's feeding, pickling and pipes cost more than its workers save");
        } else if (stuck_waits(s) > 0.5 * th) {
            adv_add_reason(out, "sequential, 1 worker: its time goes to waits no pool shortens; more workers would wait beside them");
        } else {
            adv_add_reason(out, "sequential, 1 worker: more workers of this code would take turns, not run in parallel");
        }
        break;
    case PROF_MODEL_PROCESSES:
        if (adv_gil(f) && f->gil_wait_s / th <= SERIAL_WAIT_ABOVE && k->serial_threads >= 0.5)
            adv_add_reason(out, "the stage runs CPython, whose bytecode holds the GIL: threads would take turns on one CPU; processes each have their own interpreter");
        if (out->cls == PROF_CLASS_CPU)
            cpu_workers_reason(out, f, m, s->c, mem_cap, "");
        else
            io_pool_reason(out, f, s, m, io, "");
        break;
    case PROF_MODEL_THREADS:
        if (out->cls == PROF_CLASS_CPU) {
            int nogil = f->python && f->gil_absent;
            adv_add_reason(out, "%s that waits on locks %d%% of its time: %s threads that do not serialize scale on threads; processes would add IPC for nothing",
                           nogil ? "CPython without a GIL" : "native code", adv_pct(s->serial), nogil ? "Python" : "native");
            cpu_workers_reason(out, f, m, s->c, 0, "");
        } else {
            adv_add_reason(out, "threads: a waiting thread holds no CPU%s", adv_gil(f) ? " and releases the GIL" : "");
            io_pool_reason(out, f, s, m, io, "");
        }
        if (!f->lock_measured && !adv_gil(f))
            adv_add_reason(out, "lock waits were not measured in every process of the stage: a hidden global lock would stop threads from scaling");
        break;
    case PROF_MODEL_ASYNC:
        if (k->current_model == PROF_MODEL_ASYNC)
            adv_add_reason(out, "async: its event loop already overlaps its requests, %d requests open at once (%.1f s in flight over %.2f s of wall, %llu requests); its CPU, %d%% of its demand, leaves it room, and a pool of a few workers would cut that concurrency to their number",
                           k->current_workers, f->net_request_s, f->wall_s, (unsigned long long)f->net_round_trips,
                           adv_pct(out->demand_ratio));
        else
            adv_add_reason(out, evloop ? "async: the program already runs an event loop, and hundreds of simultaneous waits are its job"
                                   : "async: hundreds of simultaneous waits are an event loop's job, not a thread pool's");
        io_pool_reason(out, f, s, m, io, "");
        break;
    case PROF_MODEL_HYBRID:
        if (k->current_model == PROF_MODEL_ASYNC) {
            adv_add_reason(out, "hybrid: its event loop overlaps %d requests at once but its CPU saturates it (CPU demand %.2f): split the computation over processes, each running a loop of %d requests",
                           k->current_workers, out->demand_ratio, out->workers);
            cpu_workers_reason(out, f, m, s->c, mem_cap, "CPU part: ");
            break;
        }
        adv_add_reason(out, "hybrid: decouple the stage: the computation on processes (%s), the waits on a thread pool",
                       adv_gil(f) ? "CPython threads take turns on the GIL" : "its threads serialize on a lock");
        cpu_workers_reason(out, f, m, s->c, mem_cap, "CPU part: ");
        io_pool_reason(out, f, s, m, io, "I/O part: ");
        break;
    }
}

/* What would spoil the advice: an I/O pool queueing on locks, and IPC above the seeds' 15%. */
static void lock_ipc_reasons(struct prof_verdict *out, const struct prof_stage_figures *f, const struct split *s)
{
    const struct prof_work *k = &out->work;
    if (out->cls == PROF_CLASS_IO && s->serial > SERIAL_WAIT_ABOVE)
        adv_add_reason(out, "%d%% of thread time waits on locks: more threads will queue on them unless the locked section shrinks",
                       adv_pct(s->serial));
    if (s->ipc_frac > SEED_IPC_ABOVE && out->model != PROF_MODEL_PROCESSES && out->model != PROF_MODEL_HYBRID)
        adv_add_reason(out, "IPC is %d%% of %s, above the seeds' 15%%: a process pool would spend it copying data",
                       adv_pct(s->ipc_frac), f->ipc_base_s > TINY_S ? "busy time" : "thread time");
    else if (s->ipc_frac > SEED_IPC_ABOVE) {
        /* The seeds' rule counts time in IPC calls, a worker's wait for its next task included;
         * the prediction counts what moving the data costs. */
        char how[96];
        if (k->ipc_estimated)
            snprintf(how, sizeof how, "estimated from %.1f MB at %.1f ns/byte", (double)f->ipc_bytes / 1e6, IPC_NS_PER_BYTE);
        else
            snprintf(how, sizeof how, "%.3f s of serialization sampled, plus the copy", f->serialize_s);
        adv_add_reason(out, "IPC calls take %d%% of %s, above the seeds' 15%%, but moving the data costs %.3f s (%s), %d%% of the work's CPU: %s still predicts %.2fx",
                       adv_pct(s->ipc_frac), f->ipc_base_s > TINY_S ? "busy time" : "thread time", k->ipc_s, how,
                       adv_pct(k->ipc_s / (k->cpu_s > TINY_S ? k->cpu_s : TINY_S)), prof_model_name(out->model),
                       out->predicted_speedup);
    }
}

/*
 * One stage's verdict, in the rules' order: the split, the seeds' verdict, the I/O pool; idle,
 * or the class, the prediction, the workers' reasons and the caveats; then the scaling curve
 * and why the seeds would differ.
 */
int prof_advise_stage(const struct prof_stage_figures *f, const struct prof_machine *m, struct prof_verdict *out)
{
    if (!f || !m || !out || figures_invalid(f))
        return PROF_EINVAL;
    memset(out, 0, sizeof *out);
    out->name = f->name;
    out->wall_s = f->wall_s;
    out->runner_up = -1;

    struct split s;
    derive_split(f, m, &s);
    out->cpu_wall_ratio = f->thread_s > TINY_S ? f->cpu_s / f->thread_s : 0;
    double denom = f->thread_s - s.lockgil - s.pool_idle;
    out->demand_ratio = (f->cpu_s + f->runq_s + f->steal_s) / (denom > TINY_S ? denom : TINY_S);
    seed_verdict(m, s.u, out->cpu_wall_ratio, &out->seed);

    struct io_pool io = {0};
    size_io_pool(&s, m, &io);
    if (f->thread_s < IDLE_BELOW_S || spreadable_work(f, &s) < IDLE_BELOW_S ||
        s.compute + s.waits.indep < IDLE_BELOW_WALL * f->wall_s) {
        idle_verdict(out, f, &s, &io);
        adv_confidence(out, f, m);
        return 0;
    }
    classify(out, f, &s);
    /* Waits that no pool shortens explain the verdict first where they are most of the waiting. */
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    double stuck = stuck_waits(&s);
    int fixed_first = stuck > 0.5 * (s.waits.fixed + s.waits.indep) && stuck > 0.1 * th;
    if (fixed_first)
        unsplittable_reason(out, f, &s);
    int mem_cap;
    int evloop = predict_stage(out, f, m, &s, &io, &mem_cap);
    workers_reasons(out, f, m, &s, &io, mem_cap, evloop);
    adv_counter_reasons(out, f, &s, &io);
    lock_ipc_reasons(out, f, &s);
    if (f->python && f->gil_absent)
        adv_add_reason(out, "its CPython is a free-threaded build running without its GIL: its Python threads can run in parallel, and their serial share is the measured lock holds alone (%d%%: %s)",
                       adv_pct(out->work.serial_threads), out->work.serial_source);
    if (f->python_unread > 0)
        adv_add_reason(out, "its CPython could not be read in %d of its processes (measurement.notes): the threads' serial share is %s, and the IPC cost %s",
                       f->python_unread, out->work.serial_source ? out->work.serial_source : "not measured",
                       out->work.ipc_estimated ? "estimated from the bytes" : "not sampled either");
    if (!fixed_first && stuck > 0.1 * th)
        unsplittable_reason(out, f, &s);
    adv_scaling_curve(out, &out->work, s.c);
    seed_reason(out, &s, f, &io);
    adv_confidence(out, f, m);
    return 0;
}
