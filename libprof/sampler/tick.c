/* tick.c: one tick: each thread's figures read, its state classified and its stacks taken, added to the sample buckets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sampler_int.h"

#define PROC_SCAN_NS 50000000ULL
#define PSTK_RING_SAMPLES 32    /* ticks slowed down never leave more copies than this per CPU (a ring holds ~60) */
/*
 * With switch records, a tick only has to teach what waits at a place no tick has seen yet,
 * and re-read the exact totals: once SW_QUIET_TICKS ticks in a row saw nothing new (no wait
 * at an unknown place, no new thread or process, no lost record), the tracer wakes half as
 * often, then a quarter, and at the rate again as soon as something new appears. (An eighth,
 * 80 ms, was tried: the mixed fixture's sleep, split from its polls by place, then read up
 * to 37 ms off its own 263 ms, against at most 20 ms at a quarter.) Each
 * wake-up costs a busy CPU of this VM ~20 us before anything is read.
 */
#define SW_QUIET_TICKS 4
#define SW_QUIET_SHIFT_MAX 2    /* SW_TICK_NS << 2: 25 ticks a second when quiet */

/* ---- one tick ------------------------------------------------------------- */

static void note_lock_word(struct sproc *p, uint64_t addr)
{
    for (int k = 0; k < p->nlocks; k++)
        if (p->locks[k].addr == addr)
            return;
    if (p->nlocks < MAX_LOCK_WORDS)
        p->locks[p->nlocks++] = (struct lockword){.addr = addr};
}

/*
 * With every switch of the tree's threads recorded (none lost), a thread blocked at its last
 * tick that has no record since has not run: its figures have not moved and it waits where it
 * waited. Nothing is read (ptrace events say when it exits): on a pool of idle threads that is
 * most of a tick's reads.
 */
static int thr_idle(const struct prof_sampler *s, const struct sthr *th, int idle_ok)
{
    return s->swr && s->follow && idle_ok && th->have_base && th->classified && th->sw_tick != s->ticks &&
           th->state != PROF_TS_RUNNING && th->state != PROF_TS_RUNQ;
}

struct still_ctx {
    struct prof_sampler *s;
    struct sproc *p;
    int idle_ok;
};

/*
 * Has tid not run since the last tick (so it keeps its Python frames)? A thread blocked then
 * with no switch since, or whose schedstat has not moved: that unchanged reading is the one
 * its tick uses.
 */

static int py_still(void *ctx, pid_t tid)
{
    const struct still_ctx *c = ctx;
    struct sproc *p = c->p;
    struct sthr *th = NULL;
    for (size_t k = 0; k < p->nthr && !th; k++)
        if (p->thr[k].tid == tid && !p->thr[k].dead && !p->thr[k].exiting)
            th = &p->thr[k];
    if (!th || !th->have_base || !th->classified || th->state == PROF_TS_RUNNING || th->state == PROF_TS_RUNQ)
        return 0;
    if (thr_idle(c->s, th, c->idle_ok))
        return 1; /* its tick reads nothing either */
    uint64_t cpu, runq;
    if (samp_read_schedstat(th, &cpu, &runq) < 0 || cpu != th->cpu || runq != th->runq)
        return 0; /* it ran: its tick reads schedstat again, right before the rest of its figures */
    th->pre = 1;
    th->pre_cpu = cpu;
    th->pre_runq = runq;
    return 1;
}

/*
 * Lock words seen contended: held or not at this tick (a nonzero futex word is a held
 * lock). One read for them all (a process_vm_readv costs ~2 us warm here, ~10 at a tick:
 * the access check and the page pins): it stops at a word it cannot read, and the rest
 * are read after it.
 */
static void read_lock_words(struct sproc *p)
{
    for (int k = 0; k < p->nlocks;) {
        int vals[MAX_LOCK_WORDS];
        struct iovec l = {vals, (size_t)(p->nlocks - k) * sizeof vals[0]}, r[MAX_LOCK_WORDS];
        for (int j = k; j < p->nlocks; j++)
            r[j - k] = (struct iovec){(void *)(uintptr_t)p->locks[j].addr, sizeof vals[0]};
        ssize_t got = process_vm_readv(p->pid, &l, 1, r, (unsigned long)(p->nlocks - k), 0);
        int ok = got > 0 ? (int)((size_t)got / sizeof vals[0]) : 0;
        for (int j = 0; j < ok; j++) {
            p->locks[k + j].ticks++;
            p->locks[k + j].held += vals[j] != 0;
            p->locks_dirty = 1;
        }
        k += ok + 1;
    }
}

/*
 * Native frames when the thread ran since its last ones; otherwise it keeps them.
 * A thread still blocked in the same call as at its last stack has not moved,
 * whatever CPU our own stop of it cost (a stop wakes it briefly): one stop per
 * blocking episode, not one per tick. 1 when it unwound new frames into th->nat.
 */
static int thr_native(struct prof_sampler *s, struct sproc *p, struct sthr *th, struct prof_unw_frame *fr, uint64_t cpu,
                      int blocked_now)
{
    int known = 0;
    size_t reuse = blocked_now && cpu != th->stack_cpu && s->o.native && s->follow
                       ? samp_wait_site_frames(s, th, fr, &known) : 0;
    /* Without a verified site, the same call with the same arguments soon after the last
     * stack (our own stop woke it) is taken to be the same wait; a known site reached
     * from other callers is not. */
    int same_wait = !known && blocked_now && th->have_stack_sc && th->stack_sc.state == 1 && th->sc.state == 1 &&
                    th->stack_sc.nr == th->sc.nr && th->stack_sc.pc == th->sc.pc && th->stack_sc.sp == th->sc.sp &&
                    memcmp(th->stack_sc.args, th->sc.args, sizeof th->sc.args) == 0 && cpu - th->stack_cpu < 2000000 &&
                    (th->cut == 0 || th->cut >= 3); /* a stack cut short (maps read too early) is retried, twice */
    int native_new = 0;
    if (s->pstk && !blocked_now && !th->pstk_fail) {
        /*
         * Running or runnable: the kernel's latest copy, taken on the thread's own CPU
         * without stopping it. A thread that ran for less than a period since keeps its
         * frames; one that ran several periods without a sample was never covered (it
         * appeared between our listing and the events' opening): it gets its own.
         */
        size_t nn;
        if (th->pstk_new && s->pstk_batch) {
            /* Unwound as they were read: the newest is the thread's stack now. */
            th->pstk_new = 0;
            th->pstk_cpu = cpu;
            th->stack = th->bst_last;
            th->stack_cpu = cpu;
            th->have_stack_sc = 0;
        } else if (th->pstk_new && (th->nat || (th->nat = malloc(PROF_UNW_MAX_FRAMES * sizeof *th->nat)))) {
            th->pstk_new = 0;
            th->pstk_cpu = cpu;
            if ((nn = samp_pstk_unwind(s, p, th, fr)) > 0) {
                memcpy(th->nat, fr, nn * sizeof *fr);
                th->nnat = nn;
                native_new = 1;
                th->stack_cpu = cpu;
                th->have_stack_sc = 0;
            }
        } else if (!th->pstk_cpu || cpu < th->pstk_cpu) {
            th->pstk_cpu = cpu;
        } else if (!th->pstk_own && cpu - th->pstk_cpu > (uint64_t)(prof_pstk_ncpu(s->pstk) + 3) * s->sample_ns) {
            if (prof_pstk_attach(s->pstk, th->tid) == 0)
                th->pstk_own = 1;
            else
                th->pstk_fail = 1;
            th->pstk_cpu = cpu;
        }
    } else {
        th->pstk_new = 0;
        if (cpu != th->stack_cpu && (reuse || (!same_wait && s->o.native && s->follow && th->seized))) {
            /* Blocked (with perf samples too: where it waits is what matters, and the kernel
             * takes no sample of a thread that is not running) or no perf events here. */
            size_t nn = reuse;
            uint64_t stops0 = s->stops;
            int woke = 0;
            if (!nn && ((blocked_now && (nn = samp_blocked_stack(s, p, th, fr, cpu, &woke)) > 0) ||
                        (!(woke && s->pstk) && (nn = samp_native_stack(s, p, th, fr)) > 0)) &&
                blocked_now) {
                samp_wait_site_keep(s, th, fr, nn);
                th->cut = s->snap_whole ? 0 : th->cut < 3 ? th->cut + 1 : 3;
            }
            if (blocked_now)
                s->wait_stops += s->stops - stops0;
            if (nn) {
                native_new = 1;
                /* A new blocking episode (its stack just taken) keeps the ticks at the rate: a
                 * wait between two slow ticks would get the thread's latest blocked stack. */
                s->sw_new |= blocked_now;
                if (!th->nat)
                    th->nat = malloc(PROF_UNW_MAX_FRAMES * sizeof *th->nat);
                if (th->nat) {
                    memcpy(th->nat, fr, nn * sizeof *fr);
                    th->nnat = nn;
                }
                th->stack_cpu = cpu;
                th->stack_sc = th->sc;
                th->have_stack_sc = blocked_now;
            }
        }
    }
    return native_new;
}

/* th's stack id now: its native (th->nat) and Python (pt) frames, interned again when either changed. */
static uint32_t thr_stack(struct prof_sampler *s, struct sproc *p, struct sthr *th, const struct prof_py_thread *pt,
                          int native_new)
{
    /* Python frames' strings are interned by the reader: pointers and lines identify them. */
    uint64_t sig = 1469598103934665603ULL;
    for (size_t i = 0; pt && i < pt->nframes; i++) {
        sig = (sig ^ (uint64_t)(uintptr_t)pt->frames[i].qualname) * 1099511628211ULL;
        sig = (sig ^ (uint64_t)(uintptr_t)pt->frames[i].file) * 1099511628211ULL;
        sig = (sig ^ (uint64_t)(unsigned)pt->frames[i].line) * 1099511628211ULL;
    }
    uint32_t stack = th->stack;
    if ((th->nnat || (pt && pt->nframes)) && (native_new || sig != th->py_sig || !th->stack)) {
        uint32_t id = samp_stack_id(s, p, th->nat, th->nnat, pt);
        if (id)
            stack = id;
        th->py_sig = sig;
    }
    return stack;
}

/* One thread of p at this tick: its figures since its last tick, its state and stacks, into the buckets. */
static void tick_thread(struct prof_sampler *s, struct sproc *p, struct sthr *th, struct prof_unw_frame *fr,
                        int idle_ok, const struct prof_py_thread *pts, size_t npt)
{
    int pre = th->pre;
    th->pre = 0;
    if (th->dead || th->exiting) /* an exited leader stays a zombie while its threads run */
        return;
    uint64_t cpu, runq;
    if (thr_idle(s, th, idle_ok)) {
        cpu = th->cpu;
        runq = th->runq;
        s->sw_idle++;
    } else if (pre) {
        cpu = th->pre_cpu;
        runq = th->pre_runq;
    } else if (samp_read_schedstat(th, &cpu, &runq) < 0) {
        /* Gone between the event and the read (or reaped by the parent's
         * monitor before we saw the exit): expected, not an error. */
        samp_thr_gone(th);
        return;
    }
    /* The interval is measured from this read, not from the tick's start: the
     * stops and unwinds of the threads before this one (and a preempted tracer)
     * would otherwise skew dt against dcpu, and the skew, clipped at 0 below,
     * adds up to phantom off-CPU time (12% of a spinning thread's life). */
    uint64_t tr = now_ns();
    const struct prof_py_thread *pt = NULL;
    for (size_t i = 0; i < npt; i++)
        if (pts[i].tid == th->tid)
            pt = &pts[i];
    if (!th->have_base) {
        s->sw_new = 1;
        th->have_base = 1;
        th->cpu = cpu;
        th->runq = runq;
        th->t = tr;
        th->stack_cpu = (uint64_t)-1;
        th->nacc = 0;
        th->acc_rest = th->acc_rest_n = 0;
        th->nbst = 0;
    }
    uint64_t dt = tr - th->t, dcpu = cpu - th->cpu, drunq = runq - th->runq;
    if (cpu < th->cpu)
        dcpu = 0;
    if (runq < th->runq)
        drunq = 0;
    enum prof_tstate st = th->state;
    uint64_t addr = th->blocked_addr;
    /*
     * schedstat's CPU time moves when the thread leaves a CPU (and at the scheduler's
     * tick while it runs): a thread whose figures did not move since the last tick has
     * not been switched out or in, so it is where it was, and is not read again.
     */
    int by_records = 0;
    if (dcpu || drunq || !th->classified) {
        char c = 'R';
        by_records = idle_ok && samp_states_by_records(s, p, th, &st, &addr);
        if (!by_records)
            st = samp_classify(s, p, th, &c, &addr);
        th->classified = 1;
        if (st == PROF_TS_RUNNING && c == 'R' && dcpu == 0 && drunq > 0)
            st = PROF_TS_RUNQ;
    }
    int blocked_now = st != PROF_TS_RUNNING && st != PROF_TS_RUNQ;
    int native_new = thr_native(s, p, th, fr, cpu, blocked_now);
    uint32_t stack = thr_stack(s, p, th, pt, native_new);
    th->stack = stack;
    int blocked = st != PROF_TS_RUNNING && st != PROF_TS_RUNQ;
    if (blocked && s->swr && !by_records && th->sc.state == 1 && samp_site_learn(p, th->sc.pc, th->sc.args[0], st, addr))
        s->sw_new = 1; /* what waits at this place are */
    if (pt) {
        th->py_n++;
        if (pt->holds_gil) {
            th->py_held++;
            th->py_held_cpu += st == PROF_TS_RUNNING;
        }
        th->py_dirty = 1;
    }
    uint64_t off = samp_off_cpu(th, dt, dcpu, drunq);
    /* Split before th->blocked moves on: a wait at a place no tick has seen gets the previous cause. */
    int split = 0;
    if (dt) {
        if (th->nbst) {
            /* Every kernel copy since the last tick: the CPU time split by their count. */
            uint64_t nall = 0, left = dcpu;
            for (int i = 0; i < th->nbst; i++)
                nall += th->bst[i].n;
            for (int i = 0; i < th->nbst; i++) {
                uint64_t part = i == th->nbst - 1 ? left : dcpu * th->bst[i].n / nall;
                left -= part;
                samp_bucket_add(s, p, th, PROF_TS_RUNNING, th->bst[i].id, 0, th->bst[i].n, part, 0);
            }
        } else {
            samp_bucket_add(s, p, th, PROF_TS_RUNNING, stack, 0, st == PROF_TS_RUNNING, dcpu,
                            pt && pt->holds_gil && st == PROF_TS_RUNNING);
        }
        samp_bucket_add(s, p, th, PROF_TS_RUNQ, stack, 0, st == PROF_TS_RUNQ, drunq, 0);
        split = s->swr && off && samp_switches_split(s, p, th, tr, off, blocked, st, addr, stack);
        if (blocked)
            samp_bucket_add(s, p, th, st, stack, addr, 1, split ? 0 : off, 0);
        else if (off && !split)
            samp_bucket_add(s, p, th, th->blocked, th->blocked_stack, th->blocked_addr, 0, off, 0);
        samp_span_interval(s, p, th, th->t, tr, th->state, st);
    }
    samp_acc_done(s, p, th);
    th->nbst = 0;
    if (blocked) {
        th->blocked = st;
        th->blocked_stack = stack;
        th->blocked_addr = addr;
        /* Only a lock's hold time is read from its word (the hottest lock without the shim);
         * the GIL's is known from CPython itself, and a read of the target's memory at every
         * tick is not free: it takes the target's mmap lock. */
        if (st == PROF_TS_LOCK && addr)
            note_lock_word(p, addr);
    }
    th->state = st;
    th->cpu = cpu;
    th->runq = runq;
    th->t = tr;
}

static void tick_proc(struct prof_sampler *s, struct sproc *p, uint64_t t, struct prof_unw_frame *fr, int idle_ok)
{
    const struct prof_py_thread *pts = NULL;
    size_t npt = 0;
    struct still_ctx still = {s, p, idle_ok};
    if (p->py && s->o.python) {
        int rc = prof_py_sample_since(p->py, py_still, &still, &pts, &npt);
        samp_proc_py_sampled(s, p, rc);
        if (rc < 0)
            npt = 0;
    } else if (p->py && (!p->gil_cond || prof_py_free_threaded(p->py))) {
        /* No Python stacks, but GIL waits are still told from others: a GIL kept in the
         * interpreter (3.13+) is found by a look at it, and a free-threaded build's GIL
         * switch followed. */
        samp_proc_py_sampled(s, p, prof_py_peek(p->py));
    }
    read_lock_words(p);
    if (!p->sampled) {
        p->sampled = 1;
        /* A child forked during this tick (its event handled while a sibling
         * was stopped) is born after t: it is sampled now, latency ~0. */
        uint64_t lat = t > p->born_ns ? t - p->born_ns : 0;
        if (p->born_ns && lat > s->attach_latency_max)
            s->attach_latency_max = lat;
    }
    for (size_t k = 0; k < p->nthr; k++) {
        struct sthr *th = &p->thr[k];
        if (th->lazy && !th->dead)
            samp_lazy_tick(s, p, th, t, 0);
        else
            tick_thread(s, p, th, fr, idle_ok, pts, npt);
    }
}

void samp_tick(struct prof_sampler *s, uint64_t t)
{
    static struct prof_unw_frame fr[PROF_UNW_MAX_FRAMES];
    s->ticks++;
    if (s->pstk)
        prof_pstk_drain(s->pstk, samp_on_pstk, s);
    if (s->swr)
        samp_switches_take(s);
    if (!s->follow && t >= s->next_scan) {
        /* Without ptrace events, threads and children are found by looking. */
        for (size_t i = 0; i < s->nprocs; i++) {
            struct sproc *p = s->procs[i];
            if (p->dead)
                continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d", (int)p->pid);
            if (access(path, F_OK) < 0) {
                samp_proc_gone(s, p);
                continue;
            }
            samp_proc_take_threads(s, p);
        }
        samp_scan_tree(s);
        s->next_scan = t + PROC_SCAN_NS;
    }
    /* A lost switch record could be a thread's wake-up: then every thread is read. */
    uint64_t lost = prof_pstk_lost(s->swr);
    int idle_ok = lost == s->sw_lost_seen;
    s->sw_lost_seen = lost;
    /* Lost records may have been a new thread's: with threads followed by their records, look. */
    if (!idle_ok && s->lazy_threads)
        for (size_t i = 0; i < s->nprocs; i++)
            if (!s->procs[i]->dead)
                samp_proc_take_threads(s, s->procs[i]);
    s->sw_new = !idle_ok || s->tree_gen != s->sw_tree_gen;
    s->sw_tree_gen = s->tree_gen;
    for (size_t i = 0; i < s->nprocs; i++)
        if (!s->procs[i]->dead && s->procs[i]->py_due && t >= s->procs[i]->py_due)
            samp_proc_python(s, s->procs[i]);
    for (size_t i = 0; i < s->nprocs; i++)
        if (!s->procs[i]->dead)
            tick_proc(s, s->procs[i], t, fr, idle_ok);
    s->sw_quiet = s->sw_new ? 0 : s->sw_quiet + 1;
    samp_handle_deferred(s);
}

/*
 * A tick of the processes not sampled yet: a short-lived pool worker must not wait a whole
 * period for its first sample, and the rest need not be read again for it. (A whole tick pulled
 * in for each new process read every process's CPython stacks: Pool(2, maxtasksperchild=1)
 * over 200 tasks had three times the ticks of its period, and the tracer took a third of a CPU.)
 */
void samp_tick_new(struct prof_sampler *s, uint64_t t)
{
    static struct prof_unw_frame fr[PROF_UNW_MAX_FRAMES];
    s->next_new = 0;
    if (s->pstk) /* the kernel's stack copies: a new process's running stack without a stop */
        prof_pstk_drain(s->pstk, samp_on_pstk, s);
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        if (p->dead || p->sampled)
            continue;
        if (p->py_due && t >= p->py_due)
            samp_proc_python(s, p);
        tick_proc(s, p, t, fr, 0);
    }
    samp_handle_deferred(s);
}

/* Until the next tick: the period, or with switch records up to 4 times it while the ticks see
 * nothing new (with kernel stack copies, no longer than their rings hold: PSTK_RING_SAMPLES). */
uint64_t samp_tick_period(const struct prof_sampler *s)
{
    uint64_t p = s->period_ns, cap = SW_TICK_NS << SW_QUIET_SHIFT_MAX;
    if (!s->sw_backoff)
        return p;
    if (s->pstk && cap > PSTK_RING_SAMPLES * s->sample_ns)
        cap = PSTK_RING_SAMPLES * s->sample_ns;
    for (unsigned k = s->sw_quiet / SW_QUIET_TICKS; k && p * 2 <= cap; k--)
        p *= 2;
    return p;
}
