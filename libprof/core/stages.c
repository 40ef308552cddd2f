/* stages.c: the stages step: overall, marker stages, thread names and process roles, each with its figures summed once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/stages.h"
#include "prof.h"

static struct prof_stage *stage_find(struct prof_stages *S, const char *source, const char *name)
{
    for (size_t i = 0; i < S->n; i++)
        if (strcmp(S->v[i]->source, source) == 0 && strcmp(S->v[i]->name, name) == 0)
            return S->v[i];
    struct prof_stage **nv = realloc(S->v, (S->n + 1) * sizeof *nv);
    if (!nv)
        return NULL;
    S->v = nv;
    struct prof_stage *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return NULL;
    }
    s->source = source;
    s->first_s = -1;
    S->v[S->n++] = s;
    return s;
}

static int stage_add_proc(struct prof_stage *s, struct prof_process *p)
{
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i] == p)
            return 0;
    struct prof_process **np = realloc(s->procs, (s->nprocs + 1) * sizeof *np);
    if (!np)
        return PROF_ENOMEM;
    s->procs = np;
    s->procs[s->nprocs++] = p;
    return 0;
}

static int stage_add(const struct prof_run *m, struct prof_stage *s, struct prof_process *p, const struct prof_thread *t)
{
    if (stage_add_proc(s, p))
        return PROF_ENOMEM;
    s->nthreads++;
    if (s->first_s < 0 || t->start_s < s->first_s)
        s->first_s = t->start_s;
    if (t->end_s > s->last_s)
        s->last_s = t->end_s;
    /*
     * A thread's life runs from the first to the last time poolprof saw it, which a short
     * thread's first and last /proc reads can miss by most of a scan; its CPU, run-queue and
     * join waits are exact (schedstat, switch records) and fit inside it. Without this, 50
     * threads each parked ~1 s on an Event ate the main thread's life: CPU/wall 1.98 for a
     * program that ran one thread.
     */
    double life = t->end_s - t->start_s,
           inside = (double)(t->c.cpu_ns + t->c.runq_ns + t->c.join_wait_ns + t->c.handoff_wait_ns) / 1e9;
    s->thread_s += life > inside ? life : inside;
    prof_counters_add(&s->sum, &t->c);
    prof_stage_ctr_add(m, s, p, t);
    s->nmonitored_threads += t->from_monitor;
    if (t->from_sampler) {
        s->nsampled_threads++;
        for (int i = 0; i < PROF_TS_COUNT; i++)
            s->smp_s[i] += (double)t->smp_ns[i] / 1e9;
        /* A free-threaded CPython's ticks hold no GIL: counted, they would dilute the share of those that do. */
        if (t->py_ticks && !p->gil_absent) {
            s->py_running_ticks += t->smp_n[PROF_TS_RUNNING];
            s->py_held_cpu += t->py_held_cpu;
        }
        s->serialize_s += (double)t->serialize_ns / 1e9;
    }
    return 0;
}

/* One process's share of a marker stage: its self time (innermost), so nested stages never count twice. */
static int stage_add_marker(const struct prof_run *m, struct prof_stage *s, struct prof_process *p,
                            const struct prof_marker *k)
{
    if (stage_add_proc(s, p))
        return PROF_ENOMEM;
    s->nthreads += (int)k->threads;
    if (k->first_begin_ns) {
        double b = prof_run_seconds(m, k->first_begin_ns);
        if (s->first_s < 0 || b < s->first_s)
            s->first_s = b;
    }
    if (k->last_end_ns && prof_run_seconds(m, k->last_end_ns) > s->last_s)
        s->last_s = prof_run_seconds(m, k->last_end_ns);
    s->thread_s += (double)k->self_ns / 1e9;
    prof_counters_add(&s->sum, &k->c);
    /*
     * The shim cannot see run-queue waits inside a marked region (schedstat is per thread,
     * not per region); on a loaded machine they would pass for waiting and turn a CPU stage
     * I/O-bound. Attribute the process's measured run-queue share of thread time to the
     * stage's self time in proportion.
     */
    double runq = 0, life = 0;
    for (size_t i = 0; i < p->nthreads; i++) {
        runq += (double)p->threads[i].c.runq_ns / 1e9;
        if (p->threads[i].end_s > p->threads[i].start_s)
            life += p->threads[i].end_s - p->threads[i].start_s;
    }
    if (life > 0)
        s->sum.runq_ns += (uint64_t)llround(fmin(1.0, runq / life) * (double)k->self_ns);
    return 0;
}

/* Fewer on-CPU CPython ticks than this do not give a GIL-held share worth a prediction. */
#define PROF_GIL_TICKS_MIN 20
/* A worker is busy when it did at least this share of the busiest one's CPU + I/O wait. */
#define PROF_BUSY_SHARE 0.10
/* A stage whose busiest process holds less than this share of its busy time, with other
 * programs busy beside it, is a pipeline of programs rather than one program and its helpers
 * (zstd | md5sum: zstd 97%; cat | tr | tr | sort | uniq -c: sort 68%). */
#define PROF_PIPELINE_SHARE 0.80
/* A child process that did this much CPU + I/O wait is a worker its parent feeds, not a helper. */
#define PROF_CHILD_BUSY_S 0.02

static int stage_has_pid(const struct prof_stage *s, int pid)
{
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i]->pid == pid)
            return 1;
    return 0;
}

/* A thread's working time: its life less the waits that are not work (locks and the GIL, which
 * also park idle pool threads; joins and hand-offs; IPC, where a pool worker waits for its next task). */
static double thread_busy(const struct prof_thread *t)
{
    double idle = (double)(t->c.lock_wait_ns + t->c.gil_wait_ns + t->c.join_wait_ns + t->c.handoff_wait_ns +
                           t->c.ipc_ns) / 1e9;
    double b = t->end_s - t->start_s - idle;
    double cpu = (double)t->c.cpu_ns / 1e9;
    return b > cpu ? b : cpu;
}

static double proc_busy(const struct prof_process *p)
{
    double b = 0;
    for (size_t i = 0; i < p->nthreads; i++)
        b += thread_busy(&p->threads[i]);
    return b;
}

static double sec(uint64_t ns)
{
    return (double)ns / 1e9;
}

struct span {
    double t;
    int d; /* +1 a worker starts, -1 one ends */
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->d - y->d; /* an end before a start at the same instant: a hand-over, not an overlap */
}

/* Processes ordered by role (their program), for grouping; a missing role sorts as "". */
static int role_cmp(const void *a, const void *b)
{
    const struct prof_process *x = *(const struct prof_process *const *)a, *y = *(const struct prof_process *const *)b;
    return strcmp(x->role ? x->role : "", y->role ? y->role : "");
}

/*
 * How many of these workers ran at once: the level of concurrency at which most of their
 * time was spent (the median over worker-time). Six children run one after another are one
 * worker at a time, not a pool of six; two thousand short threads two at a time are two. A
 * moment of overlap while one ends and the next starts does not count. 0: no time at all.
 */
static int concurrency_of(const double *start, const double *end, size_t n)
{
    struct span *ev = malloc(2 * n * sizeof *ev);
    double *at = calloc(n + 1, sizeof *at);
    int level = 0, result = 0;
    if (!ev || !at) {
        free(ev);
        free(at);
        return (int)n; /* no memory: as many as there were */
    }
    for (size_t i = 0; i < n; i++) {
        ev[2 * i] = (struct span){start[i], +1};
        ev[2 * i + 1] = (struct span){end[i] > start[i] ? end[i] : start[i], -1};
    }
    qsort(ev, 2 * n, sizeof *ev, span_cmp);
    double total = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        if (i > 0 && level > 0) {
            double w = (ev[i].t - ev[i - 1].t) * level;
            at[level] += w;
            total += w;
        }
        level += ev[i].d;
        if (level < 0)
            level = 0;
    }
    double acc = 0;
    for (size_t l = 1; l <= n && total > 0; l++) {
        acc += at[l];
        if (acc >= 0.5 * total) {
            result = (int)l;
            break;
        }
    }
    free(ev);
    free(at);
    return result;
}

/*
 * How the stage runs today, for the prediction's baseline: busy child processes
 * make it a process pool (the dispatcher that forked them is not a worker);
 * otherwise the busy threads of its busiest process make it a thread pool, or
 * sequential when one thread does the work. The pool's size is the concurrency it
 * achieved, not how many workers it started: children run one at a time are sequential.
 */
static void stage_current(const struct prof_stage *s, struct prof_stage_figures *f)
{
    f->current_model = PROF_MODEL_SEQUENTIAL;
    f->current_workers = 1;
    if (strcmp(s->source, "marker") == 0) {
        /* The shim counts a marker's threads, not their busy time: every process and thread in it worked. */
        if (s->nprocs >= 2) {
            f->current_model = PROF_MODEL_PROCESSES;
            f->current_workers = (int)s->nprocs;
        } else if (s->nthreads >= 2) {
            f->current_model = PROF_MODEL_THREADS;
            f->current_workers = s->nthreads;
        }
        return;
    }
    double maxb = 0;
    const struct prof_process *busiest = NULL;
    for (size_t i = 0; i < s->nprocs; i++) {
        double b = proc_busy(s->procs[i]);
        if (b > maxb) {
            maxb = b;
            busiest = s->procs[i];
        }
    }
    if (!busiest)
        return;
    size_t cap = s->nprocs > busiest->nthreads ? s->nprocs : busiest->nthreads;
    double *t0 = malloc((cap ? cap : 1) * sizeof *t0), *t1 = malloc((cap ? cap : 1) * sizeof *t1);
    if (!t0 || !t1) {
        free(t0);
        free(t1);
        return; /* no memory: judged as sequential, the prediction's most cautious baseline */
    }
    /*
     * A process pool is busy processes of one program (one role): xargs's sha256sums, a pool's
     * forked workers. Busy processes of different programs (pigz | sha256sum, a client and the
     * server it started) are a pipeline or a tree, not a pool: then the busiest process's
     * threads tell how the work runs. The pool is the program with the most busy processes.
     */
    const struct prof_process **busy = malloc((s->nprocs ? s->nprocs : 1) * sizeof *busy);
    size_t nbusy = 0;
    if (!busy) {
        free(t0);
        free(t1);
        return;
    }
    for (size_t i = 0; i < s->nprocs; i++)
        if (proc_busy(s->procs[i]) >= PROF_BUSY_SHARE * maxb)
            busy[nbusy++] = s->procs[i];
    /* Sorted by role, each program's busy processes are one run: the longest run is the pool. */
    qsort(busy, nbusy, sizeof *busy, role_cmp);
    size_t pool = 0, pool_n = 0;
    for (size_t i = 0, j; i < nbusy; i = j) {
        for (j = i + 1; j < nbusy && role_cmp(&busy[i], &busy[j]) == 0; j++)
            ;
        if (j - i > pool_n)
            pool = i, pool_n = j - i;
    }
    /* Busy programs, and the busy time of all the stage's processes: a pipeline's measure. */
    size_t nprograms = 0;
    for (size_t i = 0; i < nbusy; i++)
        nprograms += i == 0 || role_cmp(&busy[i - 1], &busy[i]) != 0;
    double allb = 0;
    for (size_t i = 0; i < s->nprocs; i++)
        allb += proc_busy(s->procs[i]);
    const struct prof_process *first = nbusy ? busy[pool] : NULL;
    /* Several of one program, or one forked worker fed by its parent (a pool of one). */
    if (first && (pool_n >= 2 || (first->forked && first->ppid > 0 && stage_has_pid(s, first->ppid)))) {
        for (size_t i = 0; i < pool_n; i++)
            t0[i] = busy[pool + i]->start_s, t1[i] = busy[pool + i]->end_s;
        int at_once = concurrency_of(t0, t1, pool_n);
        free(busy);
        free(t0);
        free(t1);
        /* Processes, however many ran at once: children run one after another (xargs -P1,
         * make -j1) are a pool of one, whose parallel form is more of them at once. */
        f->current_model = PROF_MODEL_PROCESSES;
        f->current_workers = at_once >= 1 ? at_once : (int)pool_n;
        return;
    }
    free(busy);
    double maxt = 0;
    for (size_t i = 0; i < busiest->nthreads; i++)
        maxt = fmax(maxt, thread_busy(&busiest->threads[i]));
    size_t n = 0, nw = 0;
    for (size_t i = 0; i < busiest->nthreads; i++) {
        const struct prof_thread *t = &busiest->threads[i];
        if (maxt <= 0 || thread_busy(t) < PROF_BUSY_SHARE * maxt)
            continue;
        n++;
        /* A thread that mostly waited for the others (a main thread joining its helpers) is
         * not one of the workers running at once; one waiting on a lock or the GIL still is. */
        double life = t->end_s - t->start_s, idle = sec(t->c.join_wait_ns + t->c.handoff_wait_ns);
        if (life > 0 && idle > 0.5 * life)
            continue;
        t0[nw] = t->start_s, t1[nw] = t->end_s;
        nw++;
    }
    int at_once = n >= 2 && nw >= 1 ? concurrency_of(t0, t1, nw) : (int)n;
    free(t0);
    free(t1);
    if (at_once >= 2) {
        f->current_model = PROF_MODEL_THREADS;
        f->current_workers = at_once;
    } else if (nprograms >= 2 && maxb < PROF_PIPELINE_SHARE * allb) {
        /* One thread at a time in each program, and no program holds most of the work: the
         * stage is a pipeline of programs (cat | tr | sort | uniq), sequential as it runs, whose
         * parallel form is more pipelines side by side, not threads none of its programs has. */
        f->pipeline = 1;
    }
}

/* The figures the advice reads that come straight from the stage's sums and the sampler. */
static void stage_time_split(const struct prof_run *m, struct prof_stage *s, double wall_s)
{
    struct prof_stage_figures *f = &s->fig;

    f->name = s->name;
    f->nprocesses = (int)s->nprocs;
    f->nthreads = s->nthreads;
    f->wall_s = wall_s;
    /* Joining a thread, or waiting for one to hand over work or a result, is idle waiting, neither
     * work nor contention: judged as if the waiter were gone. */
    double idle_s = sec(s->sum.join_wait_ns) + sec(s->sum.handoff_wait_ns);
    f->thread_s = s->thread_s - idle_s > 0 ? s->thread_s - idle_s : 0;
    f->cpu_s = sec(s->sum.cpu_ns);
    f->runq_s = sec(s->sum.runq_ns);
    f->lock_wait_s = sec(s->sum.lock_wait_ns);
    f->gil_wait_s = sec(s->sum.gil_wait_ns);
    /*
     * A thread loses stolen time only while it is the one on the vCPU, never while it waits
     * for a CPU, a lock or the GIL: the estimate is capped by the time those leave.
     */
    double unexplained = f->thread_s - f->cpu_s - f->runq_s - f->lock_wait_s - f->gil_wait_s;
    f->steal_s = fmin(f->cpu_s * m->steal_per_cpu, unexplained > 0 ? unexplained : 0);
    /*
     * IPC share: IPC time over busy time (cpu + IPC + I/O wait), not over thread time. A pool's
     * threads spend much of their life idle (joins, executor queues, the GIL, locks), and that
     * idle time would dilute the seeds' "IPC over 15% of stage latency" until it never fires;
     * the busy time is what the stage's work actually took. IPC time is wall time in the calls
     * (a worker blocked reading its next task counts), serialization CPU is not in it yet.
     */
    f->ipc_s = sec(s->sum.ipc_ns);
    s->busy_s = sec(s->sum.cpu_ns) + sec(s->sum.ipc_ns) + sec(s->sum.io_wait_ns);
    f->ipc_base_s = s->busy_s;
    f->evloop_wait_s = sec(s->sum.evloop_wait_ns);
    f->serialize_measured = s->nsampled_threads > 0;
    f->waits_sampled = s->nsampled_threads > 0 && s->nsampled_threads == s->nthreads;
    f->sampled_wait_s = s->smp_s[PROF_TS_NET] + s->smp_s[PROF_TS_DISK] + s->smp_s[PROF_TS_IPC] +
                        s->smp_s[PROF_TS_EVLOOP] + s->smp_s[PROF_TS_SLEEP] + s->smp_s[PROF_TS_OTHER];
    f->serialize_s = s->serialize_s;
    if (s->py_running_ticks >= PROF_GIL_TICKS_MIN) {
        f->gil_held_measured = 1;
        f->gil_held_share = fmin(1.0, (double)s->py_held_cpu / (double)s->py_running_ticks);
    }
    f->ipc_bytes = s->sum.ipc_bytes_sent;
    f->ipc_messages = s->sum.ipc_sends;
    f->net_wait_s = sec(s->sum.net_wait_ns);
    f->net_round_trips = s->sum.net_round_trips;
    f->net_request_s = sec(s->sum.net_request_ns);
    f->io_wait_s = sec(s->sum.io_wait_ns);
    f->disk_reads = s->sum.disk_reads;
    f->sleep_s = sec(s->sum.sleep_ns);
    f->sleeps = s->sum.sleeps;
    f->net_send_wait_s = sec(s->sum.net_send_wait_ns);
    f->ipc_send_wait_s = sec(s->sum.ipc_send_wait_ns);
    f->switches = s->sum.vcsw;
    f->startup_cpu_s = fmin(sec(s->sum.startup_cpu_ns), f->cpu_s);
}

/* Which of the stage's processes the shim measured, their interpreter, their hottest lock, their memory. */
static void stage_processes(struct prof_stage *s)
{
    struct prof_stage_figures *f = &s->fig;
    int lock_measured = s->nprocs > 0, shim_everywhere = s->nprocs > 0;
    uint64_t worker_mem = 0;
    int nworker_mem = 0, npython = 0, nno_gil = 0;

    s->hot_proc = NULL;
    for (size_t i = 0; i < s->nprocs; i++) {
        const struct prof_process *p = s->procs[i];
        if (p->python) {
            f->python = 1;
            npython++;
            nno_gil += p->gil_absent;
        }
        if (p->python_refused && !p->python_read)
            f->python_unread++;
        if ((!p->shim || p->is_static) && !p->sampled)
            lock_measured = 0;
        if (!p->shim || p->is_static)
            shim_everywhere = 0;
        if (p->have_hottest &&
            (!s->hot_proc ||
             prof_lock_kind_serializes(p->hottest.kind) > prof_lock_kind_serializes(s->hot_proc->hottest.kind) ||
             (prof_lock_kind_serializes(p->hottest.kind) == prof_lock_kind_serializes(s->hot_proc->hottest.kind) &&
              p->hottest.wait_ns > s->hot_proc->hottest.wait_ns)))
            s->hot_proc = p;
        /* What one more worker process costs is what it does not share: USS, else PSS. */
        uint64_t w = p->uss_peak ? p->uss_peak : p->pss_peak;
        if (w) {
            worker_mem += w;
            nworker_mem++;
        }
    }
    f->lock_measured = lock_measured;
    f->ipc_measured = shim_everywhere;
    /* Only where no CPython of the stage has a GIL do its threads run in parallel: one process
     * with a GIL beside free-threaded ones still takes turns on it. */
    f->gil_absent = npython > 0 && nno_gil == npython;
    /*
     * The shim counts each stage's separate waits by kind (sleeps, requests answered, file reads)
     * wherever it ran; a marker stage exists only where it did. Elsewhere each thread's voluntary
     * context switches, as /proc counts them, bound how many of its waits ended.
     */
    if (shim_everywhere || strcmp(s->source, "marker") == 0)
        f->waits_counted = PROF_WAITS_SHIM;
    else if (s->nthreads > 0 && s->nmonitored_threads == s->nthreads)
        f->waits_counted = PROF_WAITS_SWITCHES;
    else
        f->waits_counted = PROF_WAITS_UNKNOWN;
    /* A thread of a named stage is not a process: its marginal memory is not measured. */
    if (strcmp(s->source, "thread-name") != 0 && nworker_mem)
        f->per_worker_bytes = worker_mem / (uint64_t)nworker_mem;
}

/*
 * A global lock is one that is held for most of the stage's wall time while other threads
 * want it: hold over wall, not over thread time, so the figure does not drop when a busy
 * machine stretches the threads' lives with run-queue waits.
 */
static void stage_hottest_hold(struct prof_stage *s)
{
    struct prof_stage_figures *f = &s->fig;
    if (!s->hot_proc || f->wall_s <= 0 || s->nthreads < 2)
        return;
    /*
     * The shim watches a lock from its first contention on: holds before it were not
     * timed. Where that left CPU unwatched, the hold is scaled to the whole CPU at the rate
     * seen while watched (a global lock first contended after 15% of the run read 0.78
     * of the CPU instead of 0.93, and the verdict flipped).
     */
    const struct prof_process *hp = s->hot_proc;
    double hold = (double)hp->hottest.hold_ns;
    uint64_t pcpu = 0;
    for (size_t k = 0; k < hp->nthreads; k++)
        pcpu += hp->threads[k].c.cpu_ns;
    if (hp->hottest.claim_cpu_ns && pcpu > hp->hottest.claim_cpu_ns)
        hold *= (double)pcpu / (double)(pcpu - hp->hottest.claim_cpu_ns);
    f->hottest_lock_hold_fraction = fmin(1.0, hold / 1e9 / f->wall_s);
}

/* A busy child of p in the stage: a worker p feeds. */
static int pool_worker_of(const struct prof_stage *s, const struct prof_process *p, const struct prof_process *c)
{
    return c->ppid == p->pid && proc_busy(c) >= PROF_CHILD_BUSY_S && stage_has_pid(s, c->pid);
}

/*
 * A process of the stage that feeds busy children is a pool's dispatcher: its CPU is the pool's
 * overhead, less the program around the pool where the sampler's stacks tell them apart. There,
 * the workers' CPU is split too: the code the pool called for the tasks, and the pool's own loop
 * (receiving, unpickling, pickling results, sending), which is overhead, not work (issue 25).
 */
static void stage_dispatcher(const struct prof_run *m, struct prof_stage *s)
{
    struct prof_stage_figures *f = &s->fig;
    int split = 1, nworkers = 0;
    double sampled = 0;
    uint64_t wticks = 0, wheld = 0, tticks = 0, theld = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        const struct prof_process *p = s->procs[i];
        int disp = 0;
        for (size_t j = 0; j < m->nprocs && !disp; j++)
            disp = m->procs[j]->ppid == p->pid && proc_busy(m->procs[j]) >= PROF_CHILD_BUSY_S;
        if (!disp)
            continue;
        f->pool_dispatcher = 1;
        split &= p->python && p->sampled;
        /* The dispatcher's own CPU: what it pays to feed the pool and collect its results. */
        for (size_t k = 0; k < p->nthreads; k++) {
            f->dispatcher_cpu_s += sec(p->threads[k].c.cpu_ns);
            f->dispatcher_pool_cpu_s += sec(p->threads[k].pool_ns);
        }
        for (size_t j = 0; j < s->nprocs; j++) {
            const struct prof_process *c = s->procs[j];
            if (!pool_worker_of(s, p, c))
                continue;
            nworkers++;
            split &= c->python && c->sampled;
            for (size_t k = 0; k < c->nthreads; k++) {
                f->worker_cpu_s += sec(c->threads[k].c.cpu_ns);
                f->task_cpu_s += sec(c->threads[k].pool_called_ns);
                sampled += sec(c->threads[k].pool_ns + c->threads[k].pool_called_ns);
                if (c->threads[k].py_ticks && !c->gil_absent) {
                    wticks += c->threads[k].smp_n[PROF_TS_RUNNING];
                    wheld += c->threads[k].py_held_cpu;
                    tticks += c->threads[k].pool_called_ticks;
                    theld += c->threads[k].pool_called_held;
                }
            }
        }
    }
    /* Measured only where the stacks of every process of the pool were read and showed it working. */
    f->pool_split_measured = f->pool_dispatcher && split && nworkers > 0 && sampled > 0;
    if (!f->pool_split_measured)
        f->task_cpu_s = f->worker_cpu_s = f->dispatcher_pool_cpu_s = 0;
    f->dispatcher_pool_cpu_s = fmin(f->dispatcher_pool_cpu_s, f->dispatcher_cpu_s);
    f->task_cpu_s = fmin(f->task_cpu_s, f->worker_cpu_s);
    /* The workers' own GIL share: the dispatcher's reading and pickling hold it, tasks may not. */
    if (f->pool_split_measured && wticks >= PROF_GIL_TICKS_MIN) {
        f->worker_gil_measured = 1;
        f->worker_gil_held_share = fmin(1.0, (double)wheld / (double)wticks);
    }
    /* The tasks' own: the ticks that ran in the code the pool called, and held the GIL there. */
    if (f->pool_split_measured && tticks >= PROF_GIL_TICKS_MIN) {
        f->task_gil_measured = 1;
        f->task_gil_held_share = fmin(1.0, (double)theld / (double)tticks);
    }
}

/* The stage's RSS over time: the series (whether it is a leak is the advice's to say), start, peak, growth. */
static int stage_memory(const struct prof_run *m, struct prof_stage *s)
{
    int rc = prof_run_rss_series(m, s->procs, s->nprocs, &s->rss_t, &s->rss_v, &s->rss_n);
    if (rc == PROF_ENOMEM)
        return rc;
    s->rss_start = s->rss_n ? s->rss_v[0] : 0;
    s->rss_peak = 0;
    for (size_t i = 0; i < s->rss_n; i++)
        if (s->rss_v[i] > s->rss_peak)
            s->rss_peak = s->rss_v[i];
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i]->rss_peak > s->rss_peak)
            s->rss_peak = s->procs[i]->rss_peak; /* VmHWM catches a peak between two samples */
    s->rss_growth = s->rss_n && s->rss_peak > s->rss_start ? s->rss_peak - s->rss_start : 0;
    s->fig.rss_growth_bytes = s->rss_growth;
    return 0;
}

/* Everything that depends on the stage's whole set of threads and processes, for the advice. */
static int stage_finish(const struct prof_run *m, struct prof_stage *s, double wall_s)
{
    memset(&s->fig, 0, sizeof s->fig);
    stage_time_split(m, s, wall_s);
    stage_processes(s);
    stage_hottest_hold(s);
    stage_current(s, &s->fig);
    stage_dispatcher(m, s);
    prof_stage_ctr_figures(m, s);
    return stage_memory(m, s);
}

static void stage_free(struct prof_stage *s)
{
    free(s->name);
    free(s->procs);
    free(s->rss_t);
    free(s->rss_v);
}

void prof_stages_free(struct prof_stages *S)
{
    if (!S)
        return;
    for (size_t i = 0; i < S->n; i++) {
        stage_free(S->v[i]);
        free(S->v[i]);
    }
    free(S->v);
    stage_free(&S->overall);
    json_decref(S->notes);
    memset(S, 0, sizeof *S);
}

static int cmp_stage(const void *a, const void *b)
{
    const struct prof_stage *x = *(struct prof_stage *const *)a, *y = *(struct prof_stage *const *)b;
    int sx = strcmp(x->source, "marker") == 0 ? 0 : strcmp(x->source, "thread-name") == 0 ? 1 : 2;
    int sy = strcmp(y->source, "marker") == 0 ? 0 : strcmp(y->source, "thread-name") == 0 ? 1 : 2;
    if (sx != sy)
        return sx - sy;
    if (x->first_s != y->first_s)
        return x->first_s < y->first_s ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* A launcher runs for at most this long before its program, and each of its helpers uses less CPU than this. */
#define PROF_LAUNCHER_MAX_S 1.0
#define PROF_LAUNCHER_HELPER_CPU_S 0.05

/* Did p come and go before the program began (launcher_end's t_prog): the launcher's? */
static int launcher_helper(const struct prof_process *p, const struct prof_process *root, double t_prog)
{
    return t_prog > 0 && p != root && p->end_s <= t_prog;
}

/*
 * A launcher (pyenv's shims: env, bash and 40 short helpers; env; a wrapper script that
 * ends in exec) runs before the program: the root process execs its last image at t_prog,
 * after helpers that came and went. That time and those processes are the launcher's, not
 * the program's: 0.11 s of bash CPU made a pyenv-launched io_fetch_seq read CPU/wall 0.10
 * instead of 0.04 and get threads x 18 instead of x 40. Returns t_prog (run seconds), or 0
 * when there is no launcher: the root never exec'd, exec'd late (more than
 * PROF_LAUNCHER_MAX_S in, or past half the run), or something that ended before its last
 * exec used enough CPU to be work (a script's step before `exec python`). CPU, not life: one
 * of pyenv's subshells lives 107 ms, waiting for the helpers it runs.
 */
static double launcher_end(const struct prof_run *m, const struct prof_process **root)
{
    const struct prof_process *r = prof_run_process(m, m->root_pid);
    *root = r;
    if (!r || r->nimages < 2)
        return 0;
    double t = prof_run_seconds(m, r->images[r->nimages - 1].t_ns);
    if (t <= 0 || t > PROF_LAUNCHER_MAX_S || t > 0.5 * m->wall_s)
        return 0;
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct prof_process *p = m->procs[i];
        if (!launcher_helper(p, r, t))
            continue;
        uint64_t cpu = 0;
        for (size_t k = 0; k < p->nthreads; k++)
            cpu += p->threads[k].c.cpu_ns;
        if ((double)cpu / 1e9 >= PROF_LAUNCHER_HELPER_CPU_S)
            return 0;
    }
    return t;
}

static uint64_t less(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Thread t as its process's latest image saw it: from t_prog on, without its earlier images' figures. */
static void thread_from_last_image(struct prof_thread *t, double t_prog)
{
    const struct prof_counters *b = &t->before_last_img;
    if (t->start_s < t_prog)
        t->start_s = t_prog;
    uint64_t cpu = less(t->c.cpu_ns, b->cpu_ns);
    if (t->c.cpu_ns) { /* user and system time are cumulative too: the same share of each */
        t->c.utime_ns = (uint64_t)((double)t->c.utime_ns * (double)cpu / (double)t->c.cpu_ns);
        t->c.stime_ns = (uint64_t)((double)t->c.stime_ns * (double)cpu / (double)t->c.cpu_ns);
    }
    t->c.cpu_ns = cpu;
    /* The CPU clock at the program's main() counts the launcher's images too: theirs is gone from cpu. */
    t->c.startup_cpu_ns = less(t->c.startup_cpu_ns, b->cpu_ns);
#define LESS(field, unit, images, tk, sk, d) \
    if (PROF_METRIC_##images == PROF_METRIC_IMAGE) t->c.field = less(t->c.field, b->field);
    PROF_METRICS(LESS)
#undef LESS
}

/*
 * Process roles exist to compare the parts of a tree. Launchers and helpers
 * (a pyenv shim's dozens of bash and readlink processes, `sh -c`) carry
 * nothing worth a verdict and drown the ones that matter, so a role is kept
 * only when it holds at least PROF_ROLE_MIN_SHARE of the run's CPU or thread
 * time; and when fewer than two roles are left, none is kept: one role is
 * the overall stage again.
 */
#define PROF_ROLE_MIN_SHARE 0.05

static int role_minor(const struct prof_stage *s, const struct prof_stage *overall)
{
    return s->sum.cpu_ns < PROF_ROLE_MIN_SHARE * overall->sum.cpu_ns &&
           s->thread_s < PROF_ROLE_MIN_SHARE * overall->thread_s;
}

static void prune_minor_roles(struct prof_stages *S)
{
    size_t kept = 0, roles = 0, dropped = 0;

    for (size_t i = 0; i < S->n; i++) {
        struct prof_stage *s = S->v[i];
        if (strcmp(s->source, "process-role") != 0)
            continue;
        roles++;
        kept += !role_minor(s, &S->overall);
    }
    for (size_t i = 0; i < S->n;) {
        struct prof_stage *s = S->v[i];
        int minor = strcmp(s->source, "process-role") == 0 && (kept < 2 || role_minor(s, &S->overall));
        if (!minor) {
            i++;
            continue;
        }
        stage_free(s);
        free(s);
        memmove(&S->v[i], &S->v[i + 1], (S->n - i - 1) * sizeof *S->v);
        S->n--;
        dropped++;
    }
    if (dropped)
        json_array_append_new(S->notes,
                              kept < 2 ? json_sprintf("%zu process roles not reported as stages: fewer than two carry "
                                                      "%d%% of the run's CPU or thread time",
                                                      roles, (int)(PROF_ROLE_MIN_SHARE * 100))
                                       : json_sprintf("%zu minor process roles (under %d%% of the run's CPU and thread "
                                                      "time each) not reported as stages; they count in overall",
                                                      dropped, (int)(PROF_ROLE_MIN_SHARE * 100)));
}

/* One process into overall, its role, its named threads' stages and its marker stages. */
static int add_process(const struct prof_run *m, struct prof_stages *S, struct prof_process *p, int roles,
                       const struct prof_process *root, double t_prog)
{
    struct prof_stage *role = NULL;
    int rc;

    /* A process belongs to overall and to its role even when no thread of it was seen (RSS only). */
    if ((rc = stage_add_proc(&S->overall, p)))
        return rc;
    if (roles && (!(role = stage_find(S, "process-role", p->role)) || (rc = stage_add_proc(role, p))))
        return role ? rc : PROF_ENOMEM;
    for (size_t k = 0; k < p->nthreads; k++) {
        /* The root's life before its program began, and what its earlier images did, were the launcher's. */
        struct prof_thread t = p->threads[k];
        if (t_prog > 0 && p == root)
            thread_from_last_image(&t, t_prog);
        if ((rc = stage_add(m, &S->overall, p, &t)))
            return rc;
        if (t.name[0] && strcmp(t.name, p->comm) != 0) {
            struct prof_stage *s = stage_find(S, "thread-name", t.name);
            if (!s || (rc = stage_add(m, s, p, &t)))
                return s ? rc : PROF_ENOMEM;
        }
        if (role && (rc = stage_add(m, role, p, &t)))
            return rc;
    }
    for (size_t k = 0; k < p->nmarkers; k++) {
        struct prof_stage *s = stage_find(S, "marker", p->markers[k].name);
        if (!s || (rc = stage_add_marker(m, s, p, &p->markers[k])))
            return s ? rc : PROF_ENOMEM;
    }
    return 0;
}

/* overall, thread names that differ from their process's name, and process roles when there are several processes. */
int prof_stages_build(const struct prof_run *m, struct prof_stages *S)
{
    int rc;
    const struct prof_process *root;

    memset(S, 0, sizeof *S);
    S->overall.name = strdup("overall");
    S->overall.source = "overall";
    S->overall.first_s = -1;
    S->notes = json_array();
    if (!S->overall.name || !S->notes)
        return PROF_ENOMEM;
    double t_prog = launcher_end(m, &root);
    size_t nlaunch = 0;
    for (size_t i = 0; i < m->nprocs; i++)
        nlaunch += launcher_helper(m->procs[i], root, t_prog);
    for (size_t i = 0; i < m->nprocs; i++) {
        /* A launcher's helper is in no stage (it is still listed among the processes). */
        if (launcher_helper(m->procs[i], root, t_prog))
            continue;
        if ((rc = add_process(m, S, m->procs[i], m->nprocs - nlaunch > 1, root, t_prog)))
            return rc;
    }
    qsort(S->v, S->n, sizeof *S->v, cmp_stage);
    /* Said where it changes something a reader would notice. */
    if (t_prog > 0 && (nlaunch || t_prog >= 0.01 * m->wall_s))
        json_array_append_new(S->notes, json_sprintf("a launcher ran before the program: its %zu processes and the "
                                                     "root's first %.3f s, until it exec'd the program, are left out "
                                                     "of overall",
                                                     nlaunch, t_prog));
    if ((rc = stage_finish(m, &S->overall, m->wall_s - t_prog)))
        return rc;
    for (size_t i = 0; i < S->n; i++) {
        struct prof_stage *s = S->v[i];
        double wall = s->last_s - (s->first_s > 0 ? s->first_s : 0);
        if ((rc = stage_finish(m, s, wall > 0 ? wall : 0)))
            return rc;
    }
    prune_minor_roles(S);
    return 0;
}
