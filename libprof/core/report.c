/* report.c: from a run directory to the report JSON: merge, stages, advice, and the files the merge leaves behind. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "prof.h"
#include "core/advise.h"
#include "core/model.h"
#include "core/report.h"

#ifndef POOLPROF_VERSION
#define POOLPROF_VERSION "unknown"
#endif

/* A stage being gathered: the threads that belong to it, summed as they are added. */
struct stage {
    char *name;
    const char *source;      /* "overall", "marker", "thread-name", "process-role" */
    struct prof_process **procs;
    size_t nprocs;
    int nthreads;
    double first_s, last_s;
    double thread_s, cpu_s, user_s, sys_s, runq_s, lock_wait_s, gil_wait_s;
    uint64_t vcsw, ivcsw;
    /* Shim figures (0 where the shim did not run). */
    double io_wait_s, net_wait_s, ipc_s, evloop_s, join_s, handoff_s;
    uint64_t io_bytes, ipc_sent, ipc_recv, ipc_sends, net_trips;
    double busy_s;           /* the IPC fraction's denominator: cpu + ipc + I/O wait */
    struct prof_stage_figures fig;
    struct prof_verdict verdict;
    uint64_t rss_start, rss_peak, rss_growth;
    int leak;
    const struct prof_process *hot_proc; /* owner of the hottest contended lock */
    /* The sampler's figures (sampler.rec), for threads it watched. */
    int nsampled_threads;
    double smp_s[PROF_TS_COUNT];
    uint64_t py_running_ticks, py_held_cpu;
    double serialize_s;
};

struct stages {
    struct stage **v;       /* pointers: a stage is held while others are added */
    size_t n;
};

static struct stage *stage_find(struct stages *S, const char *source, const char *name)
{
    for (size_t i = 0; i < S->n; i++)
        if (strcmp(S->v[i]->source, source) == 0 && strcmp(S->v[i]->name, name) == 0)
            return S->v[i];
    struct stage **nv = realloc(S->v, (S->n + 1) * sizeof *nv);
    if (!nv)
        return NULL;
    S->v = nv;
    struct stage *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return NULL;
    }
    s->source = source;
    s->first_s = -1;
    S->v[S->n++] = s;
    return s;
}

static int stage_add_proc(struct stage *s, struct prof_process *p)
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

static int stage_add(struct stage *s, struct prof_process *p, const struct prof_thread *t)
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
           inside = (double)(t->cpu_ns + t->runq_ns + t->join_wait_ns + t->handoff_wait_ns) / 1e9;
    s->thread_s += life > inside ? life : inside;
    s->cpu_s += (double)t->cpu_ns / 1e9;
    s->user_s += (double)t->utime_ns / 1e9;
    s->sys_s += (double)t->stime_ns / 1e9;
    s->runq_s += (double)t->runq_ns / 1e9;
    s->lock_wait_s += (double)t->lock_wait_ns / 1e9;
    s->gil_wait_s += (double)t->gil_wait_ns / 1e9;
    s->vcsw += t->vcsw;
    s->ivcsw += t->ivcsw;
    s->io_wait_s += (double)t->io_wait_ns / 1e9;
    s->net_wait_s += (double)t->net_wait_ns / 1e9;
    s->net_trips += t->net_round_trips;
    s->io_bytes += t->io_bytes;
    s->ipc_s += (double)t->ipc_ns / 1e9;
    s->ipc_sent += t->ipc_bytes_sent;
    s->ipc_recv += t->ipc_bytes_received;
    s->ipc_sends += t->ipc_sends;
    s->evloop_s += (double)t->evloop_wait_ns / 1e9;
    s->join_s += (double)t->join_wait_ns / 1e9;
    s->handoff_s += (double)t->handoff_wait_ns / 1e9;
    if (t->from_sampler) {
        s->nsampled_threads++;
        for (int i = 0; i < PROF_TS_COUNT; i++)
            s->smp_s[i] += (double)t->smp_ns[i] / 1e9;
        if (t->py_ticks) {
            s->py_running_ticks += t->smp_n[PROF_TS_RUNNING];
            s->py_held_cpu += t->py_held_cpu;
        }
        s->serialize_s += (double)t->serialize_ns / 1e9;
    }
    return 0;
}

/* One process's share of a marker stage: its self time (innermost), so nested stages never count twice. */
static int stage_add_marker(const struct prof_run *m, struct stage *s, struct prof_process *p,
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
    s->cpu_s += (double)k->cpu_ns / 1e9;
    /*
     * The shim cannot see run-queue waits inside a marked region (schedstat is per thread,
     * not per region); on a loaded machine they would pass for waiting and turn a CPU stage
     * I/O-bound. Attribute the process's measured run-queue share of thread time to the
     * stage's self time in proportion.
     */
    double runq = 0, life = 0;
    for (size_t i = 0; i < p->nthreads; i++) {
        runq += (double)p->threads[i].runq_ns / 1e9;
        if (p->threads[i].end_s > p->threads[i].start_s)
            life += p->threads[i].end_s - p->threads[i].start_s;
    }
    if (life > 0)
        s->runq_s += fmin(1.0, runq / life) * (double)k->self_ns / 1e9;
    s->lock_wait_s += (double)k->lock_wait_ns / 1e9;
    s->gil_wait_s += (double)k->gil_wait_ns / 1e9;
    s->io_wait_s += (double)k->io_wait_ns / 1e9;
    s->net_wait_s += (double)k->net_wait_ns / 1e9;
    s->net_trips += k->net_round_trips;
    s->io_bytes += k->io_bytes;
    s->ipc_s += (double)k->ipc_ns / 1e9;
    s->ipc_sent += k->ipc_bytes_sent;
    s->ipc_recv += k->ipc_bytes_received;
    s->ipc_sends += k->ipc_sends;
    s->evloop_s += (double)k->evloop_wait_ns / 1e9;
    s->join_s += (double)k->join_wait_ns / 1e9;
    s->handoff_s += (double)k->handoff_wait_ns / 1e9;
    return 0;
}

/* Fewer on-CPU CPython ticks than this do not give a GIL-held share worth a prediction. */
#define PROF_GIL_TICKS_MIN 20
/* A worker is busy when it did at least this share of the busiest one's CPU + I/O wait. */
#define PROF_BUSY_SHARE 0.10
/* A child process that did this much CPU + I/O wait is a worker its parent feeds, not a helper. */
#define PROF_CHILD_BUSY_S 0.02

static int stage_has_pid(const struct stage *s, int pid)
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
    double idle = (double)(t->lock_wait_ns + t->gil_wait_ns + t->join_wait_ns + t->handoff_wait_ns + t->ipc_ns) / 1e9;
    double b = t->end_s - t->start_s - idle;
    double cpu = (double)t->cpu_ns / 1e9;
    return b > cpu ? b : cpu;
}

static double proc_busy(const struct prof_process *p)
{
    double b = 0;
    for (size_t i = 0; i < p->nthreads; i++)
        b += thread_busy(&p->threads[i]);
    return b;
}

/*
 * How the stage runs today, for the prediction's baseline: busy child processes
 * make it a process pool (the dispatcher that forked them is not a worker);
 * otherwise the busy threads of its busiest process make it a thread pool, or
 * sequential when one thread does the work.
 */
static void stage_current(const struct stage *s, struct prof_stage_figures *f)
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
    int child = 0, root = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        const struct prof_process *p = s->procs[i];
        if (proc_busy(p) < PROF_BUSY_SHARE * maxb)
            continue;
        if (p->ppid > 0 && stage_has_pid(s, p->ppid))
            child++;
        else
            root++;
    }
    if (child >= 1 || root >= 2) {
        f->current_model = PROF_MODEL_PROCESSES;
        f->current_workers = child >= 1 ? child : root;
        return;
    }
    double maxt = 0;
    for (size_t i = 0; i < busiest->nthreads; i++)
        maxt = fmax(maxt, thread_busy(&busiest->threads[i]));
    int n = 0;
    for (size_t i = 0; i < busiest->nthreads; i++)
        if (maxt > 0 && thread_busy(&busiest->threads[i]) >= PROF_BUSY_SHARE * maxt)
            n++;
    if (n >= 2) {
        f->current_model = PROF_MODEL_THREADS;
        f->current_workers = n;
    }
}

/* Figures that depend on the stage's set of processes: interpreter, lock coverage, memory. */
static int stage_finish(const struct prof_run *m, struct stage *s, double wall_s)
{
    struct prof_stage_figures *f = &s->fig;
    int measured = s->nprocs > 0;
    uint64_t worker_mem = 0;
    int nworker_mem = 0;

    memset(f, 0, sizeof *f);
    f->name = s->name;
    f->nprocesses = (int)s->nprocs;
    f->nthreads = s->nthreads;
    f->wall_s = wall_s;
    /* Joining a thread, or waiting for one to hand over work or a result, is idle waiting, neither
     * work nor contention: judged as if the waiter were gone. */
    double idle_s = s->join_s + s->handoff_s;
    f->thread_s = s->thread_s - idle_s > 0 ? s->thread_s - idle_s : 0;
    f->cpu_s = s->cpu_s;
    f->runq_s = s->runq_s;
    f->lock_wait_s = s->lock_wait_s;
    f->gil_wait_s = s->gil_wait_s;
    /*
     * A thread loses stolen time only while it is the one on the vCPU, never while it waits
     * for a CPU, a lock or the GIL: the estimate is capped by the time those leave.
     */
    double unexplained = f->thread_s - f->cpu_s - f->runq_s - f->lock_wait_s - f->gil_wait_s;
    f->steal_s = fmin(f->cpu_s * m->steal_per_cpu, unexplained > 0 ? unexplained : 0);
    s->hot_proc = NULL;
    for (size_t i = 0; i < s->nprocs; i++) {
        const struct prof_process *p = s->procs[i];
        if (p->python)
            f->python = 1;
        if ((!p->shim || p->is_static) && !p->sampled)
            measured = 0;
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
    f->lock_measured = measured;
    measured = s->nprocs > 0;
    for (size_t i = 0; i < s->nprocs; i++)
        if (!s->procs[i]->shim || s->procs[i]->is_static)
            measured = 0;
    /*
     * A global lock is one that is held for most of the stage's wall time while other threads
     * want it: hold over wall, not over thread time, so the figure does not drop when a busy
     * machine stretches the threads' lives with run-queue waits.
     */
    if (s->hot_proc && f->wall_s > 0 && s->nthreads >= 2) {
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
            pcpu += hp->threads[k].cpu_ns;
        if (hp->hottest.claim_cpu_ns && pcpu > hp->hottest.claim_cpu_ns)
            hold *= (double)pcpu / (double)(pcpu - hp->hottest.claim_cpu_ns);
        f->hottest_lock_hold_fraction = fmin(1.0, hold / 1e9 / f->wall_s);
    }
    /*
     * IPC share: IPC time over busy time (cpu + IPC + I/O wait), not over thread time. A pool's
     * threads spend much of their life idle (joins, executor queues, the GIL, locks), and that
     * idle time would dilute the seeds' "IPC over 15% of stage latency" until it never fires;
     * the busy time is what the stage's work actually took. IPC time is wall time in the calls
     * (a worker blocked reading its next task counts), serialization CPU is not in it yet.
     */
    f->ipc_measured = measured;
    f->ipc_s = s->ipc_s;
    s->busy_s = s->cpu_s + s->ipc_s + s->io_wait_s;
    f->ipc_base_s = s->busy_s;
    f->evloop_wait_s = s->evloop_s;
    f->serialize_measured = s->nsampled_threads > 0;
    f->waits_sampled = s->nsampled_threads > 0 && s->nsampled_threads == s->nthreads;
    f->sampled_wait_s = s->smp_s[PROF_TS_NET] + s->smp_s[PROF_TS_DISK] + s->smp_s[PROF_TS_IPC] +
                        s->smp_s[PROF_TS_EVLOOP] + s->smp_s[PROF_TS_SLEEP] + s->smp_s[PROF_TS_OTHER];
    f->serialize_s = s->serialize_s;
    if (s->py_running_ticks >= PROF_GIL_TICKS_MIN) {
        f->gil_held_measured = 1;
        f->gil_held_share = fmin(1.0, (double)s->py_held_cpu / (double)s->py_running_ticks);
    }
    f->ipc_bytes = s->ipc_sent;
    f->ipc_messages = s->ipc_sends;
    f->net_wait_s = s->net_wait_s;
    f->net_round_trips = s->net_trips;
    stage_current(s, f);
    for (size_t i = 0; i < s->nprocs; i++) {
        int disp = 0;
        for (size_t j = 0; j < m->nprocs && !disp; j++)
            disp = m->procs[j]->ppid == s->procs[i]->pid && proc_busy(m->procs[j]) >= PROF_CHILD_BUSY_S;
        if (!disp)
            continue;
        f->pool_dispatcher = 1;
        /* The dispatcher's own CPU: what it pays to feed the pool and collect its results. */
        for (size_t k = 0; k < s->procs[i]->nthreads; k++)
            f->dispatcher_cpu_s += (double)s->procs[i]->threads[k].cpu_ns / 1e9;
    }
    /* A thread of a named stage is not a process: its marginal memory is not measured. */
    if (strcmp(s->source, "thread-name") != 0 && nworker_mem)
        f->per_worker_bytes = worker_mem / (uint64_t)nworker_mem;

    double *t = NULL;
    uint64_t *rss = NULL;
    size_t n = 0;
    int rc = prof_run_rss_series(m, s->procs, s->nprocs, &t, &rss, &n);
    if (rc == PROF_ENOMEM)
        return rc;
    s->rss_start = n ? rss[0] : 0;
    s->rss_peak = 0;
    for (size_t i = 0; i < n; i++)
        if (rss[i] > s->rss_peak)
            s->rss_peak = rss[i];
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i]->rss_peak > s->rss_peak)
            s->rss_peak = s->procs[i]->rss_peak; /* VmHWM catches a peak between two samples */
    s->rss_growth = n && s->rss_peak > s->rss_start ? s->rss_peak - s->rss_start : 0;
    s->leak = n ? prof_rss_leak_suspected(t, rss, n) == 1 : 0;
    f->rss_growth_bytes = s->rss_growth;
    /*
     * What one more thread costs: a threaded stage's RSS growth over the threads that did the
     * work (their stacks' touched pages and the buffers each holds). A stage on one thread
     * cannot tell what a task holds from what the program keeps, and a leak is not per thread.
     */
    if (f->current_model == PROF_MODEL_THREADS && f->current_workers >= 2 && s->nprocs == 1 && !s->leak)
        f->per_thread_bytes = s->rss_growth / (uint64_t)f->current_workers;
    free(t);
    free(rss);
    return 0;
}

static void stages_free(struct stages *S)
{
    for (size_t i = 0; i < S->n; i++) {
        free(S->v[i]->name);
        free(S->v[i]->procs);
        free(S->v[i]);
    }
    free(S->v);
    S->v = NULL;
    S->n = 0;
}

static int cmp_stage(const void *a, const void *b)
{
    const struct stage *x = *(struct stage *const *)a, *y = *(struct stage *const *)b;
    int sx = strcmp(x->source, "marker") == 0 ? 0 : strcmp(x->source, "thread-name") == 0 ? 1 : 2;
    int sy = strcmp(y->source, "marker") == 0 ? 0 : strcmp(y->source, "thread-name") == 0 ? 1 : 2;
    if (sx != sy)
        return sx - sy;
    if (x->first_s != y->first_s)
        return x->first_s < y->first_s ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void prune_minor_roles(const struct prof_run *m, const struct stage *overall, struct stages *S);

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
    const struct prof_process *r = NULL;
    for (size_t i = 0; i < m->nprocs && !r; i++)
        if (m->procs[i]->pid == m->root_pid)
            r = m->procs[i];
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
            cpu += p->threads[k].cpu_ns;
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
    const struct prof_counts *b = &t->before_last_img;
    if (t->start_s < t_prog)
        t->start_s = t_prog;
    uint64_t cpu = less(t->cpu_ns, b->cpu_ns);
    if (t->cpu_ns) { /* user and system time are cumulative too: the same share of each */
        t->utime_ns = (uint64_t)((double)t->utime_ns * (double)cpu / (double)t->cpu_ns);
        t->stime_ns = (uint64_t)((double)t->stime_ns * (double)cpu / (double)t->cpu_ns);
    }
    t->cpu_ns = cpu;
#define LESS(name) t->name = less(t->name, b->name);
    PROF_SUMMED_COUNTERS(LESS)
#undef LESS
}

/* overall, thread names that differ from their process's name, and process roles when there are several processes. */
static int build_stages(const struct prof_run *m, struct stage *overall, struct stages *S)
{
    int rc;
    const struct prof_process *root;
    double t_prog = launcher_end(m, &root);
    size_t nlaunch = 0;
    for (size_t i = 0; i < m->nprocs; i++)
        nlaunch += launcher_helper(m->procs[i], root, t_prog);

    memset(overall, 0, sizeof *overall);
    overall->name = strdup("overall");
    overall->source = "overall";
    overall->first_s = -1;
    if (!overall->name)
        return PROF_ENOMEM;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        struct stage *role = NULL;
        /* A launcher's helper is in no stage (it is still listed among the processes). */
        if (launcher_helper(p, root, t_prog))
            continue;
        /* A process belongs to overall and to its role even when no thread of it was seen (RSS only). */
        if ((rc = stage_add_proc(overall, p)))
            return rc;
        if (m->nprocs - nlaunch > 1 &&
            (!(role = stage_find(S, "process-role", p->role)) || (rc = stage_add_proc(role, p))))
            return role ? rc : PROF_ENOMEM;
        for (size_t k = 0; k < p->nthreads; k++) {
            /* The root's life before its program began, and what its earlier images did, were the launcher's. */
            struct prof_thread t = p->threads[k];
            if (t_prog > 0 && p == root)
                thread_from_last_image(&t, t_prog);
            if ((rc = stage_add(overall, p, &t)))
                return rc;
            if (t.name[0] && strcmp(t.name, p->comm) != 0) {
                struct stage *s = stage_find(S, "thread-name", t.name);
                if (!s || (rc = stage_add(s, p, &t)))
                    return s ? rc : PROF_ENOMEM;
            }
            if (role && (rc = stage_add(role, p, &t)))
                return rc;
        }
        for (size_t k = 0; k < p->nmarkers; k++) {
            struct stage *s = stage_find(S, "marker", p->markers[k].name);
            if (!s || (rc = stage_add_marker(m, s, p, &p->markers[k])))
                return s ? rc : PROF_ENOMEM;
        }
    }
    qsort(S->v, S->n, sizeof *S->v, cmp_stage);
    /* Said where it changes something a reader would notice. */
    if (t_prog > 0 && (nlaunch || t_prog >= 0.01 * m->wall_s) && m->notes)
        json_array_append_new(m->notes, json_sprintf("a launcher ran before the program: its %zu processes and the "
                                                     "root's first %.3f s, until it exec'd the program, are left out "
                                                     "of overall",
                                                     nlaunch, t_prog));
    if ((rc = stage_finish(m, overall, m->wall_s - t_prog)))
        return rc;
    for (size_t i = 0; i < S->n; i++) {
        struct stage *s = S->v[i];
        double wall = s->last_s - (s->first_s > 0 ? s->first_s : 0);
        if ((rc = stage_finish(m, s, wall > 0 ? wall : 0)))
            return rc;
    }
    prune_minor_roles(m, overall, S);
    return 0;
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

static void prune_minor_roles(const struct prof_run *m, const struct stage *overall, struct stages *S)
{
    size_t kept = 0, roles = 0, dropped = 0;

    for (size_t i = 0; i < S->n; i++) {
        struct stage *s = S->v[i];
        if (strcmp(s->source, "process-role") != 0)
            continue;
        roles++;
        if (s->cpu_s >= PROF_ROLE_MIN_SHARE * overall->cpu_s || s->thread_s >= PROF_ROLE_MIN_SHARE * overall->thread_s)
            kept++;
    }
    for (size_t i = 0; i < S->n;) {
        struct stage *s = S->v[i];
        int minor = strcmp(s->source, "process-role") == 0 &&
                    (kept < 2 || (s->cpu_s < PROF_ROLE_MIN_SHARE * overall->cpu_s &&
                                  s->thread_s < PROF_ROLE_MIN_SHARE * overall->thread_s));
        if (!minor) {
            i++;
            continue;
        }
        free(s->name);
        free(s->procs);
        free(s);
        memmove(&S->v[i], &S->v[i + 1], (S->n - i - 1) * sizeof *S->v);
        S->n--;
        dropped++;
    }
    if (dropped && m->notes)
        json_array_append_new(m->notes,
                              kept < 2 ? json_sprintf("%zu process roles not reported as stages: fewer than two carry "
                                                      "%d%% of the run's CPU or thread time",
                                                      roles, (int)(PROF_ROLE_MIN_SHARE * 100))
                                       : json_sprintf("%zu minor process roles (under %d%% of the run's CPU and thread "
                                                      "time each) not reported as stages; they count in overall",
                                                      dropped, (int)(PROF_ROLE_MIN_SHARE * 100)));
}

static int judge(const struct prof_run *m, struct stage *overall, struct stages *S)
{
    int rc;
    struct prof_verdict *v = calloc(S->n ? S->n : 1, sizeof *v);
    double *ts = calloc(S->n ? S->n : 1, sizeof *ts);

    if (!v || !ts) {
        free(v);
        free(ts);
        return PROF_ENOMEM;
    }
    size_t nmarkers = 0, n = 0;
    for (size_t i = 0; i < S->n; i++)
        nmarkers += strcmp(S->v[i]->source, "marker") == 0;
    for (size_t i = 0; i < S->n; i++) {
        if ((rc = prof_advise_stage(&S->v[i]->fig, &m->machine, &S->v[i]->verdict)))
            goto out;
        /* Stages the program marked itself are its own split of the work: when there are any, they
         * alone decide whether the run is hybrid (thread names and roles cut across them). */
        if (nmarkers && strcmp(S->v[i]->source, "marker") != 0)
            continue;
        v[n] = S->v[i]->verdict;
        /* Weighed by their work, not thread time: a dispatcher's idle pool threads carry none. */
        ts[n++] = S->v[i]->verdict.work.cpu_s + S->v[i]->verdict.work.wait_s;
    }
    rc = prof_advise_overall(&overall->fig, v, ts, n, &m->machine, &overall->verdict);
out:
    free(v);
    free(ts);
    return rc;
}

/* ---- JSON ---- */

static json_t *jint_or_null(long long x)
{
    return x >= 0 ? json_integer(x) : json_null();
}

/* Seconds rounded to the microsecond: more digits would claim a precision no clock here has. */
static json_t *jsec(double s)
{
    return json_real((double)(long long)(s * 1e6 + (s >= 0 ? 0.5 : -0.5)) / 1e6);
}

static json_t *jratio(double x)
{
    return json_real((double)(long long)(x * 1e4 + 0.5) / 1e4);
}

static json_t *jstrings(char **v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *machine_json(const struct prof_machine *mc)
{
    return json_pack("{s:i, s:i, s:f, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "usable_cpus",
                     mc->usable_cpus, "online_cpus", mc->online_cpus, "quota_cpus", mc->quota_cpus,
                     "affinity_cpus", mc->affinity_cpus, "cgroup_version", mc->cgroup_version, "physical_cores",
                     mc->physical_cores, "mem_total_bytes", (json_int_t)mc->mem_total_bytes, "mem_available_bytes",
                     (json_int_t)mc->mem_available_bytes, "cgroup_mem_limit_bytes",
                     (json_int_t)mc->cgroup_mem_limit_bytes, "nofile_limit", (json_int_t)mc->nofile_limit,
                     "clock_ticks", (json_int_t)mc->clock_ticks, "page_size", (json_int_t)mc->page_size);
}

static const char *lock_kind_name(uint32_t kind)
{
    switch (kind) {
    case PROF_LOCK_MUTEX:
        return "mutex";
    case PROF_LOCK_RWLOCK:
        return "rwlock";
    case PROF_LOCK_SPIN:
        return "spinlock";
    case PROF_LOCK_SEM:
        return "semaphore";
    case PROF_LOCK_COND:
        return "condvar";
    }
    return "unknown";
}

static json_t *hottest_json(const struct stage *s)
{
    const struct prof_process *p = s->hot_proc;
    if (!p)
        return json_null();
    char site[PROF_SHM_SITE_BYTES + 32];
    if (p->hottest.site[0])
        snprintf(site, sizeof site, "%s", p->hottest.site);
    else
        snprintf(site, sizeof site, "0x%llx", (unsigned long long)p->hottest.site_pc);
    json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:o, s:o, s:I, s:I}", "site", site, "kind",
                     lock_kind_name(p->hottest.kind), "pid", p->pid, "address",
                     (json_int_t)p->hottest.addr, "wait_seconds", jsec((double)p->hottest.wait_ns / 1e9),
                     "hold_seconds", jsec((double)p->hottest.hold_ns / 1e9), "acquisitions",
                     (json_int_t)p->hottest.acquisitions, "contended", (json_int_t)p->hottest.contended);
    if (o && p->hottest.python_site[0])
        json_object_set_new(o, "python_site", json_string(p->hottest.python_site));
    return o;
}

static json_t *candidate_json(const struct prof_candidate *c)
{
    json_t *o = json_pack("{s:s, s:i, s:o, s:o}", "model", prof_model_name(c->model), "workers", c->workers,
                          "predicted_seconds", jsec(c->seconds), "predicted_speedup", jratio(c->speedup));
    if (o && c->chunksize > 1)
        json_object_set_new(o, "chunksize", json_integer(c->chunksize));
    return o;
}

static json_t *candidates_json(const struct prof_verdict *v)
{
    json_t *a = json_array();
    for (int i = 0; i < v->ncandidates; i++)
        json_array_append_new(a, candidate_json(&v->candidates[i]));
    return a;
}

/* The stage's own model at other worker counts, as `poolprof sweep` reads it. */
static json_t *scaling_json(const struct prof_verdict *v)
{
    if (!v->nscaling)
        return json_null();
    enum prof_model m = v->work.current_model == PROF_MODEL_SEQUENTIAL ? PROF_MODEL_THREADS : v->work.current_model;
    json_t *pts = json_array();
    for (int i = 0; i < v->nscaling; i++)
        json_array_append_new(pts, json_pack("{s:i, s:o}", "workers", v->scaling[i].workers, "predicted_speedup",
                                             jratio(v->scaling[i].speedup)));
    return json_pack("{s:s, s:i, s:o}", "model", prof_model_name(m), "measured_workers", v->work.current_workers,
                     "points", pts);
}

/* What the prediction ran on: the stage's work, its off-CPU time by cause, and where each came from. */
static json_t *work_json(const struct stage *s)
{
    const struct prof_verdict *v = &s->verdict;
    const struct prof_stage_figures *f = &s->fig;
    const struct prof_work *k = &v->work;
    json_t *off = json_object();
    const char *src;
    if (f->ipc_measured) {
        /* The shim timed each wait; what it did not see (sleep, page faults) is the rest. */
        double disk = s->io_wait_s - s->net_wait_s > 0 ? s->io_wait_s - s->net_wait_s : 0;
        double known = s->io_wait_s + f->lock_wait_s + f->gil_wait_s + f->ipc_s + s->evloop_s + f->runq_s + f->steal_s;
        double off_cpu = f->thread_s - f->cpu_s;
        json_object_set_new(off, "disk", jsec(disk));
        json_object_set_new(off, "network", jsec(s->net_wait_s));
        json_object_set_new(off, "lock", jsec(f->lock_wait_s));
        json_object_set_new(off, "gil", jsec(f->gil_wait_s));
        json_object_set_new(off, "ipc", jsec(f->ipc_s));
        json_object_set_new(off, "run_queue", jsec(f->runq_s));
        json_object_set_new(off, "steal", jsec(f->steal_s));
        json_object_set_new(off, "event_loop", jsec(s->evloop_s));
        json_object_set_new(off, "sleep_other", jsec(off_cpu - known > 0 ? off_cpu - known : 0));
        src = "shim";
    } else if (s->nsampled_threads) {
        json_object_set_new(off, "disk", jsec(s->smp_s[PROF_TS_DISK]));
        json_object_set_new(off, "network", jsec(s->smp_s[PROF_TS_NET]));
        json_object_set_new(off, "lock", jsec(s->smp_s[PROF_TS_LOCK] + s->smp_s[PROF_TS_SYNC]));
        json_object_set_new(off, "gil", jsec(s->smp_s[PROF_TS_GIL]));
        json_object_set_new(off, "ipc", jsec(s->smp_s[PROF_TS_IPC]));
        json_object_set_new(off, "run_queue", jsec(f->runq_s));
        json_object_set_new(off, "steal", jsec(f->steal_s));
        json_object_set_new(off, "event_loop", jsec(s->smp_s[PROF_TS_EVLOOP]));
        json_object_set_new(off, "sleep_other", jsec(s->smp_s[PROF_TS_SLEEP] + s->smp_s[PROF_TS_OTHER]));
        src = "sampler";
    } else {
        json_object_set_new(off, "run_queue", jsec(f->runq_s));
        json_object_set_new(off, "steal", jsec(f->steal_s));
        src = "schedstat";
    }
    return json_pack("{s:{s:s, s:i}, s:o, s:o, s:o, s:s, s:{s:o, s:o, s:s}, s:o, s:b, s:I, s:I, s:o, s:I, s:o}", "current", "model",
                     prof_model_name(k->current_model), "workers", k->current_workers, "work_cpu_seconds",
                     jsec(k->cpu_s), "work_wait_seconds", jsec(k->wait_s), "off_cpu_seconds", off,
                     "off_cpu_source", src, "serial_fraction", "threads", jratio(k->serial_threads), "processes",
                     jratio(k->serial_processes), "source", k->serial_source ? k->serial_source : "none",
                     "ipc_cost_seconds", jsec(k->ipc_s), "ipc_cost_estimated", k->ipc_estimated,
                     "memory_per_worker_bytes", (json_int_t)f->per_worker_bytes, "memory_per_thread_bytes",
                     (json_int_t)f->per_thread_bytes, "predicted_current_seconds",
                     jsec(k->current_s), "task_round_trips", (json_int_t)k->round_trips, "message_cost_seconds",
                     jsec(k->msg_s));
}

static json_t *stage_json(const struct stage *s)
{
    const struct prof_verdict *v = &s->verdict;
    const struct prof_stage_figures *f = &s->fig;
    double waits = f->lock_wait_s + f->gil_wait_s;
    /*
     * Time on a run queue or on a vCPU the hypervisor took away is the machine's doing
     * (other load, more runnable threads than CPUs), not the lock's: left out, the
     * fraction reads the same on a busy host as on an idle one.
     */
    double own_s = f->thread_s - f->runq_s - f->steal_s > 0 ? f->thread_s - f->runq_s - f->steal_s : f->thread_s;
    json_t *pids = json_array(), *reasons = json_array();

    for (size_t i = 0; i < s->nprocs; i++)
        json_array_append_new(pids, json_integer(s->procs[i]->pid));
    for (int i = 0; i < v->nreasons; i++)
        json_array_append_new(reasons, json_string(v->reasons[i]));

    json_t *lock = json_pack("{s:o, s:o, s:o, s:b, s:b, s:o}", "wait_seconds", jsec(f->lock_wait_s),
                             "gil_wait_seconds", jsec(f->gil_wait_s), "wait_fraction",
                             jratio(own_s > 0 ? waits / own_s : 0), "gil", f->python, "measured",
                             f->lock_measured, "hottest", hottest_json(s));
    json_t *ipc = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:b, s:o}", "bytes", (json_int_t)s->ipc_sent, "bytes_sent",
                            (json_int_t)s->ipc_sent, "bytes_received", (json_int_t)s->ipc_recv, "messages",
                            (json_int_t)s->ipc_sends, "seconds",
                            jsec(f->ipc_s), "busy_seconds", jsec(s->busy_s), "fraction",
                            jratio(s->busy_s > 0 ? f->ipc_s / s->busy_s : 0), "measured", f->ipc_measured,
                            "serialize_seconds", s->nsampled_threads ? jsec(s->serialize_s) : json_null());
    json_t *io = json_pack("{s:o, s:I, s:o, s:I, s:b}", "wait_seconds", jsec(s->io_wait_s), "bytes",
                           (json_int_t)s->io_bytes, "network_wait_seconds", jsec(s->net_wait_s), "network_round_trips",
                           (json_int_t)s->net_trips, "measured", f->ipc_measured);
    json_t *rss = json_pack("{s:I, s:I, s:I, s:b, s:I}", "start_bytes", (json_int_t)s->rss_start, "peak_bytes",
                            (json_int_t)s->rss_peak, "growth_bytes", (json_int_t)s->rss_growth, "leak_suspected",
                            s->leak, "per_worker_bytes", (json_int_t)f->per_worker_bytes);
    json_t *rec = json_pack("{s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:{s:s, s:s, s:i}}", "model",
                            prof_model_name(v->model), "workers", v->workers, "predicted_speedup",
                            jratio(v->predicted_speedup), "runner_up",
                            v->runner_up >= 0 ? candidate_json(&v->candidates[v->runner_up]) : json_null(),
                            "candidates", candidates_json(v), "scaling", scaling_json(v), "reasons", reasons,
                            "seed_rule", "class", prof_class_name(v->seed.cls), "model",
                            prof_model_name(v->seed.model), "workers", v->seed.workers);
    json_object_set_new(rec, "chunksize", v->chunksize > 1 ? json_integer(v->chunksize) : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "source", json_string(s->source));
    json_object_set_new(o, "class", json_string(prof_class_name(v->cls)));
    json_object_set_new(o, "cpu_wall_ratio", jratio(v->cpu_wall_ratio));
    json_object_set_new(o, "demand_ratio", jratio(v->demand_ratio));
    json_object_set_new(o, "processes", json_integer(f->nprocesses));
    json_object_set_new(o, "pids", pids);
    json_object_set_new(o, "threads", json_integer(f->nthreads));
    json_object_set_new(o, "wall_seconds", jsec(f->wall_s));
    json_object_set_new(o, "thread_seconds", jsec(f->thread_s));
    json_object_set_new(o, "cpu_seconds", jsec(f->cpu_s));
    json_object_set_new(o, "user_seconds", jsec(s->user_s));
    json_object_set_new(o, "system_seconds", jsec(s->sys_s));
    json_object_set_new(o, "runq_seconds", jsec(f->runq_s));
    json_object_set_new(o, "steal_seconds", jsec(f->steal_s));
    json_object_set_new(o, "lock", lock);
    json_object_set_new(o, "ipc", ipc);
    json_object_set_new(o, "io", io);
    json_object_set_new(o, "evloop_wait_seconds", jsec(s->evloop_s));
    json_object_set_new(o, "join_wait_seconds", jsec(s->join_s));
    json_object_set_new(o, "handoff_wait_seconds", jsec(s->handoff_s));
    json_object_set_new(o, "rss", rss);
    json_object_set_new(o, "ctx_switches",
                        json_pack("{s:I, s:I}", "voluntary", (json_int_t)s->vcsw, "involuntary", (json_int_t)s->ivcsw));
    json_object_set_new(o, "work_model", work_json(s));
    json_object_set_new(o, "recommendation", rec);
    /* Where the figures came from: the shim's exact timings, the sampler's ticks, or both. */
    int shim = 0, plain = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        if (s->procs[i]->shim && !s->procs[i]->is_static)
            shim++;
        else
            plain++;
    }
    const char *wsrc = shim && !plain ? "shim" : shim ? "shim+sampler" : s->nsampled_threads ? "sampler" : "none";
    json_object_set_new(o, "sources", json_pack("{s:s, s:s, s:s}", "cpu", "schedstat", "waits",
                                                strcmp(s->source, "marker") == 0 ? "shim" : wsrc, "states",
                                                s->nsampled_threads ? "sampler" : "none"));
    if (s->nsampled_threads) {
        json_t *st = json_object();
        for (int i = 0; i < PROF_TS_COUNT; i++)
            json_object_set_new(st, prof_tstate_name(i), jsec(s->smp_s[i]));
        json_object_set_new(o, "states", st);
    } else {
        json_object_set_new(o, "states", json_null());
    }
    json_object_set_new(o, "gil_held_share",
                        s->py_running_ticks ? jratio(fmin(1.0, (double)s->py_held_cpu / (double)s->py_running_ticks))
                                            : json_null());
    return o;
}

static json_t *thread_json(const struct prof_thread *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "tid", json_integer(t->tid));
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "start_seconds", jsec(t->start_s));
    json_object_set_new(o, "end_seconds", jsec(t->end_s));
    json_object_set_new(o, "ended_by", json_string(t->ended_by));
    json_object_set_new(o, "wall_seconds", jsec(t->end_s - t->start_s));
    json_object_set_new(o, "cpu_seconds", jsec((double)t->cpu_ns / 1e9));
    json_object_set_new(o, "user_seconds", jsec((double)t->utime_ns / 1e9));
    json_object_set_new(o, "system_seconds", jsec((double)t->stime_ns / 1e9));
    json_object_set_new(o, "runq_seconds", jsec((double)t->runq_ns / 1e9));
    json_object_set_new(o, "voluntary_ctx_switches", json_integer((json_int_t)t->vcsw));
    json_object_set_new(o, "involuntary_ctx_switches", json_integer((json_int_t)t->ivcsw));
    json_object_set_new(o, "lock_wait_seconds", jsec((double)t->lock_wait_ns / 1e9));
    json_object_set_new(o, "gil_wait_seconds", jsec((double)t->gil_wait_ns / 1e9));
    json_object_set_new(o, "lock_acquisitions", json_integer((json_int_t)t->lock_acquisitions));
    json_object_set_new(o, "lock_contended", json_integer((json_int_t)t->lock_contended));
    json_object_set_new(o, "io_wait_seconds", jsec((double)t->io_wait_ns / 1e9));
    json_object_set_new(o, "io_bytes", json_integer((json_int_t)t->io_bytes));
    json_object_set_new(o, "network_wait_seconds", jsec((double)t->net_wait_ns / 1e9));
    json_object_set_new(o, "ipc_seconds", jsec((double)t->ipc_ns / 1e9));
    json_object_set_new(o, "ipc_bytes_sent", json_integer((json_int_t)t->ipc_bytes_sent));
    json_object_set_new(o, "ipc_bytes_received", json_integer((json_int_t)t->ipc_bytes_received));
    json_object_set_new(o, "evloop_wait_seconds", jsec((double)t->evloop_wait_ns / 1e9));
    json_object_set_new(o, "join_wait_seconds", jsec((double)t->join_wait_ns / 1e9));
    json_object_set_new(o, "handoff_wait_seconds", jsec((double)t->handoff_wait_ns / 1e9));
    json_object_set_new(o, "sources", json_pack("{s:b, s:b}", "shim", t->from_shim, "monitor", t->from_monitor));
    return o;
}

static json_t *process_json(const struct prof_run *m, const struct prof_process *p)
{
    const struct prof_image *last = p->nimages ? &p->images[p->nimages - 1] : NULL;
    json_t *chain = json_array(), *threads = json_array();

    for (size_t i = 0; i < p->nimages; i++) {
        const struct prof_image *im = &p->images[i];
        json_array_append_new(chain, json_pack("{s:s, s:o, s:o, s:b, s:b}", "exe", im->exe ? im->exe : "", "argv",
                                               jstrings(im->argv, im->argc), "start_seconds",
                                               jsec(prof_run_seconds(m, im->t_ns)), "shim", im->from_shim,
                                               "static", im->is_static));
    }
    for (size_t i = 0; i < p->nthreads; i++)
        json_array_append_new(threads, thread_json(&p->threads[i]));

    json_t *o = json_object();
    json_object_set_new(o, "pid", json_integer(p->pid));
    json_object_set_new(o, "ppid", jint_or_null(p->ppid > 0 ? p->ppid : -1));
    json_object_set_new(o, "role", json_string(p->role));
    json_object_set_new(o, "name", json_string(p->comm));
    json_object_set_new(o, "argv", last ? jstrings(last->argv, last->argc) : json_array());
    json_object_set_new(o, "exe", json_string(last && last->exe ? last->exe : ""));
    json_object_set_new(o, "exec_chain", chain);
    json_object_set_new(o, "forked", json_boolean(p->forked));
    json_object_set_new(o, "shim", json_boolean(p->shim));
    json_object_set_new(o, "static", json_boolean(p->is_static));
    json_object_set_new(o, "python", json_boolean(p->python));
    json_object_set_new(o, "python_unsupported",
                        !p->python && p->python_refused ? json_string(p->python_refused) : json_null());
    json_object_set_new(o, "start_seconds", jsec(p->start_s));
    json_object_set_new(o, "end_seconds", jsec(p->end_s));
    json_object_set_new(o, "wall_seconds", jsec(p->end_s - p->start_s));
    json_object_set_new(o, "exit",
                        json_pack("{s:s, s:o, s:o, s:o, s:o}", "how", p->exit_how, "status",
                                  jint_or_null(p->exit_status), "code", jint_or_null(p->exit_code), "signal",
                                  jint_or_null(p->exit_signal),
                                  "source", p->exit_source ? json_string(p->exit_source) : json_null()));
    json_object_set_new(o, "rss",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "samples", (json_int_t)p->nrss,
                                  "start_bytes", (json_int_t)p->rss_start, "peak_bytes", (json_int_t)p->rss_peak,
                                  "end_bytes", (json_int_t)p->rss_end, "growth_bytes",
                                  (json_int_t)(p->nrss && p->rss_peak > p->rss_start ? p->rss_peak - p->rss_start : 0),
                                  "vm_hwm_bytes", (json_int_t)p->vm_hwm, "pss_peak_bytes", (json_int_t)p->pss_peak,
                                  "uss_peak_bytes", (json_int_t)p->uss_peak));
    json_object_set_new(o, "threads", threads);
    return o;
}

static json_t *measurement_json(const struct prof_run *m)
{
    json_t *shim = json_array(), *st = json_array(), *none = json_array();
    json_t *notes = json_deep_copy(m->notes);

    for (size_t i = 0; i < m->nprocs; i++) {
        const struct prof_process *p = m->procs[i];
        if (p->is_static)
            json_array_append_new(st, json_integer(p->pid));
        else if (p->shim)
            json_array_append_new(shim, json_integer(p->pid));
        else
            json_array_append_new(none, json_integer(p->pid));
        if (p->is_static) {
            char buf[256];
            snprintf(buf, sizeof buf,
                     "pid %d (%.80s) is statically linked: the shim could not load; its figures come from /proc only",
                     p->pid, p->role);
            json_array_append_new(notes, json_string(buf));
        }
    }
    if (json_array_size(none)) {
        json_array_append_new(notes, json_string("processes listed under no_shim_pids ran without the shim "
                                                 "(it exec'd too briefly, or failed to load): figures from /proc only"));
    }
    json_t *opts = json_object_get(m->run, "options");
    json_t *preload = json_object_get(opts, "preload");
    json_t *shim_path = json_object_get(m->run, "shim");
    return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "sample_interval_ms", m->interval_ms,
                     "monitor_cpu_seconds", m->monitor_cpu_ns ? json_real((double)m->monitor_cpu_ns / 1e9) : json_null(),
                     "sampler", m->sampler ? json_deep_copy(m->sampler) : json_null(), "preload",
                     json_is_boolean(preload) ? json_incref(preload) : json_null(), "shim",
                     json_is_string(shim_path) ? json_incref(shim_path) : json_null(), "shim_pids", shim,
                     "static_pids", st, "no_shim_pids", none, "notes", notes, "errors", json_deep_copy(m->errors));
}

static json_t *exit_json(const struct prof_run *m)
{
    json_t *e = json_object_get(m->run, "exit");
    json_t *o = json_object();
    const char *keys[] = {"status", "code", "signal"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(e, keys[i]);
        json_object_set_new(o, keys[i], json_is_integer(v) ? json_incref(v) : json_null());
    }
    return o;
}

static json_t *build_json(const struct prof_run *m, const struct stage *overall, const struct stages *S)
{
    json_t *r = json_object(), *stages = json_array(), *procs = json_array();
    json_t *cmd = json_object_get(m->run, "command"), *cwd = json_object_get(m->run, "cwd");
    json_t *ver = json_object_get(m->run, "poolprof_version");

    for (size_t i = 0; i < S->n; i++)
        json_array_append_new(stages, stage_json(S->v[i]));
    for (size_t i = 0; i < m->nprocs; i++)
        json_array_append_new(procs, process_json(m, m->procs[i]));
    json_object_set_new(r, "schema", json_string(PROF_REPORT_SCHEMA));
    json_object_set_new(r, "poolprof_version", json_string(POOLPROF_VERSION));
    json_object_set_new(r, "recorded_by", json_is_string(ver) ? json_incref(ver) : json_null());
    json_object_set_new(r, "command", json_is_array(cmd) ? json_deep_copy(cmd) : json_array());
    json_object_set_new(r, "cwd", json_is_string(cwd) ? json_incref(cwd) : json_null());
    json_object_set_new(r, "run_dir", json_string(m->rundir));
    json_object_set_new(r, "root_pid", m->root_pid > 0 ? json_integer(m->root_pid) : json_null());
    uint64_t rt = 0;
    json_t *rtv = json_object_get(m->run, "start_realtime_ns");
    if (json_is_integer(rtv) && json_integer_value(rtv) > 0)
        rt = (uint64_t)json_integer_value(rtv);
    json_object_set_new(r, "start_realtime_ns", rt ? json_integer((json_int_t)rt) : json_null());
    json_object_set_new(r, "wall_seconds", jsec(m->wall_s));
    json_object_set_new(r, "exit", exit_json(m));
    json_object_set_new(r, "machine", machine_json(&m->machine));
    json_object_set_new(r, "measurement", measurement_json(m));
    json_object_set_new(r, "overall", stage_json(overall));
    json_object_set_new(r, "stages", stages);
    json_object_set_new(r, "processes", procs);
    return r;
}

static int write_report(const char *rundir, const json_t *r)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/report.json", rundir);
    snprintf(tmp, sizeof tmp, "%s/.report.json.tmp", rundir);
    FILE *fp = fopen(tmp, "we");
    int failed = fp && json_dumpf(r, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) != 0;
    return prof_file_commit(fp, failed, tmp, path);
}

int prof_report_from_rundir(const char *rundir, json_t **out)
{
    struct prof_run m;
    struct stage overall;
    struct stages S = {0};
    int rc;

    if (!rundir || !out)
        return PROF_EINVAL;
    *out = NULL;
    memset(&overall, 0, sizeof overall);
    if ((rc = prof_run_load(rundir, &m)))
        goto out;
    if ((rc = prof_run_write_folded(&m)))
        json_array_append_new(m.errors, json_sprintf("folded stacks not written: %s", prof_strerror(rc)));
    if ((rc = prof_run_write_rss_csv(&m)))
        /* The report stands without the CSV; say so rather than lose the run. */
        json_array_append_new(m.errors, json_sprintf("rss.csv not written: %s", prof_strerror(rc)));
    if ((rc = build_stages(&m, &overall, &S)) || (rc = judge(&m, &overall, &S)))
        goto out;
    json_t *r = build_json(&m, &overall, &S);
    if (!r) {
        rc = PROF_ENOMEM;
        goto out;
    }
    if ((rc = write_report(rundir, r))) {
        json_decref(r);
        goto out;
    }
    *out = r;
out:
    free(overall.name);
    free(overall.procs);
    stages_free(&S);
    prof_run_free(&m);
    return rc;
}
