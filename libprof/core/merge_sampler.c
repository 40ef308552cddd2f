/* merge_sampler.c: the merge step's second half: the sampler's states, timelines, GIL readings, stacks and futexes onto the run's processes and threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/merge.h"
#include "core/samples.h"
#include "prof.h"

static struct prof_thread *thread_of(struct prof_process *p, int tid)
{
    if (!p)
        return NULL;
    for (size_t i = 0; i < p->nthreads; i++)
        if (p->threads[i].tid == tid)
            return &p->threads[i];
    return NULL;
}

/*
 * A thread only the sampler saw: without the shim, a thread shorter than the monitor's scan
 * (5,000 threads of ~70 us each: the sampler timed every one from the kernel's switch records).
 * Its life is not known apart from what it spent (CPU, run-queue and waits, which stage_add
 * takes when longer than the life): it is given none, at the process's start.
 */
static int sampled_thread(struct prof_process *p, int tid, struct prof_thread **out)
{
    struct prof_thread *t = PUSH(p->threads, p->nthreads);
    if (!t)
        return PROF_ENOMEM;
    t->tid = tid;
    t->start_s = t->end_s = p->start_s;
    t->ended_by = "sampler";
    *out = t;
    return 0;
}

/* The hottest lock of a process the shim did not time: the futex its threads waited on longest. */
static void hottest_from_futexes(struct prof_run *m, const struct prof_rec_sampler *R)
{
    struct prof_samples *S = m->samples;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        if (p->shim && !p->is_static)
            continue; /* the shim timed its locks exactly */
        uint64_t best_addr = 0, best_ns = 0, best_n = 0;
        /* Sum lock waits per futex address: one pass, over the few addresses seen. */
        struct { uint64_t addr, ns, n; } sum[64];
        size_t nsum = 0;
        for (size_t k = 0; k < S->nent; k++) {
            struct prof_sentry *e = &S->ent[k];
            if (e->pid != p->pid || e->state != PROF_TS_LOCK || !e->addr)
                continue;
            size_t j = 0;
            while (j < nsum && sum[j].addr != e->addr)
                j++;
            if (j == nsum) {
                if (nsum == sizeof sum / sizeof *sum)
                    continue; /* the sampler itself follows at most 16 words per process */
                sum[nsum++] = (typeof(sum[0])){e->addr, 0, 0};
            }
            sum[j].ns += e->ns;
            sum[j].n += e->n;
        }
        for (size_t j = 0; j < nsum; j++)
            if (sum[j].ns > best_ns) {
                best_ns = sum[j].ns;
                best_n = sum[j].n;
                best_addr = sum[j].addr;
            }
        if (!best_addr)
            continue;
        /* The site: the first frame outside libc of the stack that waited longest on it. */
        struct prof_sstack *top = NULL;
        uint64_t top_ns = 0;
        for (size_t k = 0; k < S->nent; k++) {
            struct prof_sentry *e = &S->ent[k];
            if (e->pid == p->pid && e->state == PROF_TS_LOCK && e->addr == best_addr && e->ns > top_ns) {
                struct prof_sstack *st = prof_samples_stack(S, e->stack);
                if (st && st->nnat) {
                    top = st;
                    top_ns = e->ns;
                }
            }
        }
        char site[PROF_SHM_SITE_BYTES] = "";
        if (top) {
            for (size_t f = 0; f < top->nnat; f++) {
                const char *path = prof_samples_module(S, top->nat[f].module);
                if (!path || prof_is_libc_module(path))
                    continue;
                snprintf(site, sizeof site, "%s (%s)", prof_frame_name(S, top, f), prof_basename(path));
                break;
            }
        }
        if (!site[0])
            snprintf(site, sizeof site, "futex 0x%llx", (unsigned long long)best_addr);
        /* Hold time: the share of ticks at which the futex word was nonzero, over the process's life. */
        double held = 0;
        for (size_t k = 0; k < R->nfutex; k++) {
            const struct prof_rec_futex *q = &R->futex[k];
            if (q->pid == p->pid && q->addr == best_addr && (int64_t)q->ticks > 0)
                held = (double)(int64_t)q->held / (double)(int64_t)q->ticks;
        }
        memset(&p->hottest, 0, sizeof p->hottest);
        snprintf(p->hottest.site, sizeof p->hottest.site, "%s", site);
        p->hottest.addr = best_addr;
        p->hottest.kind = PROF_LOCK_MUTEX;
        p->hottest.wait_ns = best_ns;
        p->hottest.contended = best_n;
        double life = p->end_s - p->start_s;
        p->hottest.hold_ns = (uint64_t)(held * (life > 0 ? life : 0) * 1e9);
        p->have_hottest = 1;
        p->hottest_from_sampler = 1;
    }
}

/*
 * A lock of a CPython process is taken from C (the interpreter, an extension's semaphore):
 * its native site says little. The sampler saw the threads that waited on its address, with
 * their Python frames; the stack that waited longest names the code: its innermost frame
 * outside the lock types' own wrappers (threading's Lock, RLock and Condition,
 * multiprocessing's SemLock), which would name the lock, not who waits on it.
 */
static const struct prof_sframe_py *waiting_frame(const struct prof_sstack *st)
{
    for (size_t i = 0; i < st->npy; i++) {
        const char *b = prof_basename(st->py[i].file ? st->py[i].file : "");
        if (strcmp(b, "threading.py") != 0 && strcmp(b, "synchronize.py") != 0)
            return &st->py[i];
    }
    return &st->py[0];
}

/* The Python code that waited longest on the lock at addr in process pid: "qualname (file.py:line)"
 * into buf, or buf left as it is when the sampler saw no Python frame waiting on it. */
static void python_site_of(struct prof_samples *S, int pid, uint64_t addr, char *buf, size_t cap)
{
    struct prof_sstack *best = NULL;
    uint64_t best_ns = 0;
    for (size_t k = 0; k < S->nent; k++) {
        struct prof_sentry *e = &S->ent[k];
        if (e->pid != pid || e->addr != addr || (e->state != PROF_TS_LOCK && e->state != PROF_TS_SYNC))
            continue;
        uint64_t ns = 0; /* this stack's wait on it, over every thread */
        for (size_t j = 0; j < S->nent; j++) {
            struct prof_sentry *f = &S->ent[j];
            if (f->pid == e->pid && f->addr == e->addr && f->stack == e->stack && f->state == e->state)
                ns += f->ns;
        }
        struct prof_sstack *st = prof_samples_stack(S, e->stack);
        if (st && st->npy && ns > best_ns) {
            best = st;
            best_ns = ns;
        }
    }
    if (best) {
        const struct prof_sframe_py *f = waiting_frame(best);
        snprintf(buf, cap, "%s (%s:%d)", f->qual, prof_basename(f->file), f->line);
    }
}

/* The hottest lock's and every listed lock's Python site, where the sampler saw code wait on them. */
static void lock_python_sites(struct prof_run *m)
{
    struct prof_samples *S = m->samples;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        if (p->have_hottest && p->hottest.addr)
            python_site_of(S, p->pid, p->hottest.addr, p->hottest.python_site, sizeof p->hottest.python_site);
        for (size_t k = 0; k < p->nlocks; k++)
            python_site_of(S, p->pid, p->locks[k].addr, p->locks[k].python_site, sizeof p->locks[k].python_site);
    }
}

/*
 * Processes the sampler watched, and the CPython it could or could not read in each. P lines
 * come in time order, one again after an exec or when a free-threaded CPython's GIL is switched
 * on or off: the latest says whether the GIL is there, as the process ended.
 */
static int sampled_processes(struct prof_run *m, const struct prof_rec_sampler *R)
{
    /* Every process of a P line is in the run: the merge took the ones only the sampler saw
     * from its P and X lines (merge.c, smp_procs). */
    for (size_t i = 0; i < R->nprocs; i++) {
        const struct prof_rec_sproc *sp = &R->procs[i];
        struct prof_process *p = prof_run_process(m, sp->pid);
        if (!p)
            continue;
        p->sampled = 1;
        p->gil_absent = sp->python > 0 && sp->gil_absent;
        /* The P lines are in time order and the last one stands: a CPython read after one refused
         * (an exec) is read; one refused after it was opened (its thread states contradicted the
         * layout at the first walk) yielded no stacks, and its refusal stands. */
        if (sp->python > 0) {
            p->python = p->python_read = 1;
            p->python_version = sp->python;
        } else if (sp->pyerr) {
            p->python_read = 0;
            if (!p->python_refused && !(p->python_refused = strdup(sp->pyerr)))
                return PROF_ENOMEM;
        }
    }
    return 0;
}

/*
 * Where the shim did not run (--no-preload, static binaries, attach), the sampler's
 * per-state times stand in for the shim's exact waits; where it ran, they fill in the pipe
 * waits it could not see. Idle waits on condvars,
 * semaphores and children (sync) are treated like joins: neither work nor contention.
 */
static void states_for_waits(struct prof_run *m)
{
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        for (size_t k = 0; k < p->nthreads; k++) {
            struct prof_thread *t = &p->threads[k];
            /* The sampler's on-CPU time is schedstat's, to each thread's exit stop: where the
             * monitor's last reading came before the end (the process reaped first), it is more. */
            if (t->from_sampler && t->smp_ns[PROF_TS_RUNNING] > t->c.cpu_ns)
                t->c.cpu_ns = t->smp_ns[PROF_TS_RUNNING];
        }
        if (p->shim && !p->is_static) {
            /* The shim times the pipe calls a program makes, not the ones libc makes for it
             * (stdio's buffer refills call read inside libc, where no preload sees them): a
             * pipeline's consumer blocked in fread on its producer is waiting on the tree's
             * pipe all the same, and the sampler saw it there. */
            for (size_t k = 0; k < p->nthreads; k++) {
                struct prof_thread *t = &p->threads[k];
                if (t->from_sampler && t->smp_ns[PROF_TS_IPC] > t->c.ipc_ns)
                    t->c.ipc_ns = t->smp_ns[PROF_TS_IPC];
            }
            continue;
        }
        for (size_t k = 0; k < p->nthreads; k++) {
            struct prof_thread *t = &p->threads[k];
            if (!t->from_sampler)
                continue;
            t->c.lock_wait_ns = t->smp_ns[PROF_TS_LOCK];
            t->c.gil_wait_ns = t->smp_ns[PROF_TS_GIL];
            t->c.net_wait_ns = t->smp_ns[PROF_TS_NET];
            t->c.io_wait_ns = t->smp_ns[PROF_TS_NET] + t->smp_ns[PROF_TS_DISK];
            t->c.ipc_ns = t->smp_ns[PROF_TS_IPC];
            t->c.evloop_wait_ns = t->smp_ns[PROF_TS_EVLOOP];
            t->c.join_wait_ns = t->smp_ns[PROF_TS_SYNC];
        }
    }
}

static int span_cmp(const void *a, const void *b)
{
    const struct prof_span *x = a, *y = b;
    if (x->t0_ns != y->t0_ns)
        return x->t0_ns < y->t0_ns ? -1 : 1;
    return x->t1_ns < y->t1_ns ? -1 : x->t1_ns > y->t1_ns;
}

/* One thread's spans in time order, not overlapping (a later one starts where the one before
 * ends: the sampler may know a thread twice for a moment at its exit), adjacent ones of one
 * state merged (the sampler starts a new line at every flush). */
static void timeline_tidy(struct prof_thread *t)
{
    qsort(t->spans, t->nspans, sizeof *t->spans, span_cmp);
    size_t w = 0;
    for (size_t i = 0; i < t->nspans; i++) {
        struct prof_span sp = t->spans[i];
        if (w) {
            struct prof_span *prev = &t->spans[w - 1];
            if (sp.t0_ns < prev->t1_ns)
                sp.t0_ns = prev->t1_ns;
            if (sp.t1_ns <= sp.t0_ns)
                continue;
            if (sp.state == prev->state && sp.t0_ns == prev->t1_ns) {
                prev->t1_ns = sp.t1_ns;
                continue;
            }
        }
        t->spans[w++] = sp;
    }
    t->nspans = w;
}

/* The S lines onto their threads: each thread's timeline (run.h prof_thread.spans). */
static int timelines(struct prof_run *m, const struct prof_rec_sampler *R)
{
    struct prof_thread *t = NULL;
    int pid = -1, tid = -1, rc;
    for (size_t k = 0; k < R->nspans; k++) {
        const struct prof_rec_span *r = &R->spans[k];
        if (r->pid != pid || r->tid != tid || !t) {
            /* Lines of one thread come in runs: the lookup only when the thread changes. */
            struct prof_process *p = prof_run_process(m, r->pid);
            pid = r->pid;
            tid = r->tid;
            t = thread_of(p, r->tid);
            if (!t && p && (rc = sampled_thread(p, r->tid, &t)) != 0)
                return rc;
            if (!t)
                continue;
        }
        struct prof_span *sp = PUSH(t->spans, t->nspans);
        if (!sp)
            return PROF_ENOMEM;
        *sp = (struct prof_span){r->t0_ns, r->t1_ns, (uint8_t)r->state};
    }
    for (size_t i = 0; i < m->nprocs; i++)
        for (size_t j = 0; j < m->procs[i]->nthreads; j++)
            if (m->procs[i]->threads[j].nspans)
                timeline_tidy(&m->procs[i]->threads[j]);
    return 0;
}

int prof_merge_sampler(struct prof_records *rec, struct prof_run *m)
{
    struct prof_rec_sampler *R = &rec->sampler;
    int rc;

    m->samples = R->samples;
    R->samples = NULL;
    m->sampler = json_incref(R->info);
    if ((rc = sampled_processes(m, R)) != 0)
        return rc;
    struct prof_samples *S = m->samples;
    for (size_t k = 0; k < S->nent; k++) {
        const struct prof_sentry *e = &S->ent[k];
        struct prof_process *p = prof_run_process(m, e->pid);
        struct prof_thread *t = thread_of(p, e->tid);
        if (!t && p && (rc = sampled_thread(p, e->tid, &t)) != 0)
            return rc;
        if (t) {
            t->from_sampler = 1;
            t->smp_ns[e->state] += e->ns;
            t->smp_n[e->state] += e->n;
        }
    }
    if ((rc = timelines(m, R)) != 0)
        return rc;
    for (size_t k = 0; k < R->ngil; k++) {
        const struct prof_rec_gil *g = &R->gil[k];
        struct prof_thread *t = thread_of(prof_run_process(m, g->pid), g->tid);
        if (t) {
            t->py_ticks = g->n;
            t->py_held = g->held;
            t->py_held_cpu = g->held_cpu;
        }
    }
    /* Serialization CPU per thread: on-CPU samples in serializer frames; and a process pool's
     * machinery apart from the code it called (the task), which the stages sum per role. */
    for (size_t k = 0; k < S->nent; k++) {
        const struct prof_sentry *e = &S->ent[k];
        if (e->state != PROF_TS_RUNNING || !e->ns)
            continue;
        struct prof_sstack *st = prof_samples_stack(S, e->stack);
        struct prof_thread *t = st ? thread_of(prof_run_process(m, e->pid), e->tid) : NULL;
        if (!t)
            continue;
        if (prof_stack_serializes(S, st))
            t->serialize_ns += e->ns;
        enum prof_pool_part part = prof_stack_pool_part(S, st);
        if (part == PROF_POOL_MACHINERY)
            t->pool_ns += e->ns;
        else if (part == PROF_POOL_CALLED) {
            t->pool_called_ns += e->ns;
            t->pool_called_ticks += e->n;
            t->pool_called_held += e->held;
        }
    }
    states_for_waits(m);
    hottest_from_futexes(m, R);
    lock_python_sites(m);
    return 0;
}
