/* sampler.c: the tracer thread: seize and follow the tree with ptrace, sample thread states and stacks, write sampler.rec. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <setjmp.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sampler_int.h"
#include "prof.h"
#include "format/samprec.h"

#define TICK_SIG (SIGRTMIN + 5)
#define FLUSH_NS 100000000ULL
#define WATCHDOG_NS 1000000000ULL /* a tick the timer failed to wake is caught within this */
#define PROC_SCAN_NS 50000000ULL
#define PSTK_RING_SAMPLES 32    /* ticks slowed down never leave more copies than this per CPU (a ring holds ~60) */
#define SW_TICK_NS 10000000ULL  /* with switch records (or every kernel copy unwound), the tracer wakes at most this often */
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

static void tick_proc(struct prof_sampler *s, struct sproc *p, uint64_t t, struct prof_unw_frame *fr, int idle_ok)
{
    const struct prof_py_thread *pts = NULL;
    size_t npt = 0;
    struct still_ctx still = {s, p, idle_ok};
    if (p->py && s->o.python && prof_py_sample_since(p->py, py_still, &still, &pts, &npt) < 0)
        npt = 0;
    /*
     * Lock words seen contended: held or not at this tick (a nonzero futex word is a held
     * lock). One read for them all (a process_vm_readv costs ~2 us warm here, ~10 at a tick:
     * the access check and the page pins): it stops at a word it cannot read, and the rest
     * are read after it.
     */
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
        int pre = th->pre;
        th->pre = 0;
        if (th->dead || th->exiting) /* an exited leader stays a zombie while its threads run */
            continue;
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
            continue;
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
        /*
         * Native frames when the thread ran since its last ones; otherwise it keeps them.
         * A thread still blocked in the same call as at its last stack has not moved,
         * whatever CPU our own stop of it cost (a stop wakes it briefly): one stop per
         * blocking episode, not one per tick.
         */
        int blocked_now = st != PROF_TS_RUNNING && st != PROF_TS_RUNQ;
        int known = 0;
        size_t reuse = blocked_now && cpu != th->stack_cpu && s->o.native && s->follow ? samp_wait_site_frames(s, th, fr, &known) : 0;
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
                    samp_bucket_add(s, p->pid, th->tid, PROF_TS_RUNNING, th->bst[i].id, 0, th->bst[i].n, part);
                }
            } else {
                samp_bucket_add(s, p->pid, th->tid, PROF_TS_RUNNING, stack, 0, st == PROF_TS_RUNNING, dcpu);
            }
            samp_bucket_add(s, p->pid, th->tid, PROF_TS_RUNQ, stack, 0, st == PROF_TS_RUNQ, drunq);
            split = s->swr && off && samp_switches_split(s, p, th, tr, off, blocked, st, addr, stack);
            if (blocked)
                samp_bucket_add(s, p->pid, th->tid, st, stack, addr, 1, split ? 0 : off);
            else if (off && !split)
                samp_bucket_add(s, p->pid, th->tid, th->blocked, th->blocked_stack, th->blocked_addr, 0, off);
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
}

static void tick(struct prof_sampler *s, uint64_t t)
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

/* Until the next tick: the period, or with switch records up to 4 times it while the ticks see
 * nothing new (with kernel stack copies, no longer than their rings hold: PSTK_RING_SAMPLES). */
static uint64_t tick_period(const struct prof_sampler *s)
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

/* ---- the thread ---------------------------------------------------------------- */

/*
 * A tick signal that lands after the deadline check but before waitpid() has blocked would
 * be spent outside the wait, and the one-shot timer does not fire again: the tracer would
 * sleep until the next ptrace event (a child sampled 4.5 ms after its fork was seen so).
 * While the tracer is between the two, the handler jumps back out (tick_jmp_armed), so the
 * wait is never entered with its wake-up already spent. SA_NODEFER: the jump leaves no mask
 * to restore. Only the tracer thread takes the signal.
 */
static sigjmp_buf tick_jmp;
static volatile sig_atomic_t tick_jmp_armed;

static void on_tick_signal(int sig)
{
    (void)sig;
    if (tick_jmp_armed) {
        tick_jmp_armed = 0;
        siglongjmp(tick_jmp, 1);
    }
}

/*
 * The tick timer is one-shot and set again only after it has fired (or to pull it
 * closer): on this project's VM, re-setting a pending timer costs two clock-event
 * reprograms, ~10 us, and doubled the tracer's CPU per tick at 1 kHz.
 */
void samp_arm(struct prof_sampler *s, uint64_t deadline)
{
    if (!s->have_timer)
        return;
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(deadline / 1000000000ULL);
    its.it_value.tv_nsec = (long)(deadline % 1000000000ULL);
    if (timer_settime(s->timer, TIMER_ABSTIME, &its, NULL) == 0)
        s->armed = deadline;
}

/* A periodic signal once a second, in case the tick timer could not be set (see on_tick_signal
 * for the race it used to cover, at 12 wake-ups a second). */
static void arm_watchdog(struct prof_sampler *s)
{
    uint64_t w = WATCHDOG_NS;
    struct itimerspec its = {0};
    its.it_value.tv_sec = its.it_interval.tv_sec = (time_t)(w / 1000000000ULL);
    its.it_value.tv_nsec = its.it_interval.tv_nsec = (long)(w % 1000000000ULL);
    if (s->have_watchdog)
        timer_settime(s->watchdog, 0, &its, NULL);
}

/*
 * Wait for a tracee's status until d (or sleep to it when nothing is traced). 1 and the
 * status when one came; 0 when the deadline passed, the tick signal came, or nothing is
 * traced. The tick signal during the wait (or just before it) jumps out of it. The wait
 * inside only looks (WNOWAIT): a status taken there could be lost to the jump, and a tracee
 * whose stop nobody handles stays stopped for good. It is taken after, outside.
 */
static int wait_until(const struct prof_sampler *s, uint64_t d, pid_t *tid, int *st)
{
    if (sigsetjmp(tick_jmp, 0) != 0)
        return 0;
    tick_jmp_armed = 1;
    siginfo_t si;
    si.si_pid = 0;
    int r = -1;
    /* A timer that fired before the line above has passed d: seen here, no wait. */
    if (now_ns() < d) {
        r = s->follow ? waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WNOWAIT | __WALL | __WNOTHREAD) : -1;
        if (r < 0) {
            struct timespec ts = {(time_t)(d / 1000000000ULL), (long)(d % 1000000000ULL)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
    }
    tick_jmp_armed = 0;
    return r == 0 && si.si_pid > 0 && (*tid = waitpid(si.si_pid, st, WNOHANG | __WALL | __WNOTHREAD)) > 0;
}

static uint64_t jitter(struct prof_sampler *s, uint64_t period)
{
    s->seed = s->seed * 6364136223846793005ULL + 1442695040888963407ULL;
    double u = (double)(s->seed >> 11) / (double)(1ULL << 53); /* [0, 1) */
    return (uint64_t)((double)period * (0.8 + 0.4 * u));
}

static int any_seized(struct prof_sampler *s)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        if (p->dead)
            continue;
        for (size_t k = 0; k < p->nthr; k++)
            if (!p->thr[k].dead && p->thr[k].seized)
                return 1;
    }
    return 0;
}

/* Stop every tracee and detach it, re-delivering a signal it was stopped for.
 * Bounded: what is left when the deadline passes is released by the kernel
 * when this thread exits. */
static void detach_all(struct prof_sampler *s)
{
    if (!s->follow)
        return;
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        for (size_t k = 0; k < p->nthr && !p->dead; k++) {
            struct sthr *th = &p->thr[k];
            if (th->dead || !th->seized)
                continue;
            if (ptrace(PTRACE_INTERRUPT, th->tid, 0, 0) < 0)
                th->seized = 0;
        }
    }
    uint64_t deadline = now_ns() + 500000000ULL;
    samp_arm(s, now_ns() + 20000000ULL);
    while (any_seized(s) && now_ns() < deadline) {
        int st;
        pid_t tid = waitpid(-1, &st, __WALL | __WNOTHREAD);
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            struct sproc *lp = samp_proc_find(s, tid);
            if (lp && lp->ours && s->o.reaped)
                s->o.reaped(s->o.reaped_ctx, tid, st);
            samp_tid_gone(s, tid);
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        int sig = WSTOPSIG(st), event = (unsigned)st >> 16;
        unsigned long msg = 0;
        struct sproc *p = NULL;
        struct sthr *th = samp_thr_find(s, tid, &p);
        if ((event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE) &&
            ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg) == 0 && msg) {
            /* The new task is attached too: it will report a stop, and we detach it then. */
            samp_new_task(s, p, (pid_t)msg, event);
        }
        int inject = event == 0 ? sig : 0;
        if (event == PTRACE_EVENT_STOP && (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) &&
            th && !th->interrupting)
            inject = 0; /* group-stop: detaching leaves it stopped, as the user asked */
        ptrace(PTRACE_DETACH, tid, 0, (void *)(long)inject);
        if (th)
            th->seized = 0;
    }
}

/* The state letter of /proc/PID/task/TID/stat, or 0. */
char samp_task_state(pid_t pid, pid_t tid)
{
    char buf[1024];
    int fd = samp_open_task_file(pid, tid, "stat");
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : 0;
}

static void *sampler_main(void *arg)
{
    struct prof_sampler *s = arg;
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, TICK_SIG);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    s->tracer_tid = (pid_t)syscall(SYS_gettid);
    /*
     * A tracee is held stopped until the tracer resumes it: if the tracer waits for a CPU
     * behind the target's own threads, so does the stopped thread. Run above them where
     * allowed (the tracer sleeps between ticks and the kernel's real-time throttling bounds
     * it regardless), else at a better nice level.
     */
    struct sched_param sp = {.sched_priority = 1};
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0)
        s->sched = "fifo";
    else if (setpriority(PRIO_PROCESS, (id_t)s->tracer_tid, -10) == 0)
        s->sched = "nice";
    else
        s->sched = "normal";
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = TICK_SIG;
    sev._sigev_un._tid = s->tracer_tid;
    s->have_timer = timer_create(CLOCK_MONOTONIC, &sev, &s->timer) == 0;
    s->have_watchdog = s->have_timer && timer_create(CLOCK_MONOTONIC, &sev, &s->watchdog) == 0;

    s->t0 = now_ns();
    s->seed = s->t0 ^ ((uint64_t)getpid() << 32);
    struct sproc *root = samp_proc_add(s, s->o.root, 0, 0);
    s->follow = s->o.follow;
    if (root && s->follow) {
        int r = samp_seize(s->o.root);
        /* A zombie leader (main called pthread_exit) cannot be seized, its threads can. */
        int zombie = r == -EPERM && samp_task_state(s->o.root, s->o.root) == 'Z';
        if (zombie) {
            struct sthr *th = samp_thr_add(root, s->o.root);
            if (th)
                th->exiting = 1;
            root->x_pending = 1; /* the status comes with the last thread's exit */
            samp_proc_take_threads(s, root);
            if (any_seized(s))
                r = 0;
        }
        if (r < 0) {
            s->follow = 0;
            snprintf(s->note, sizeof s->note,
                     "ptrace refused for pid %d (%s): sampling from /proc only, without native stacks or following by events",
                     (int)s->o.root,
                     r == -EPERM ? "not permitted: another tracer, or ptrace_scope/permissions" : strerror(-r));
        } else if (!zombie) {
            struct sthr *th = samp_thr_add(root, s->o.root);
            if (th)
                th->seized = 1;
        }
    }
    if (root) {
        samp_proc_take_threads(s, root);
        samp_proc_python(s, root);
        samp_scan_tree(s);
    }
    s->period_ns = 1000000000ULL / (uint64_t)(s->o.rate_hz > 0 ? s->o.rate_hz : 100);
    s->sample_ns = s->period_ns;
    /*
     * Native stacks of running threads from the kernel's copies where perf events are
     * allowed (no stop at all); blocked threads, and everything where they are not, are
     * stopped for the copy. POOLPROF_NATIVE=ptrace forces the stops (for comparison).
     */
    const char *nsrc = getenv("POOLPROF_NATIVE");
    const char *scope = getenv("POOLPROF_PERF_SCOPE"); /* "task": per-task events even where CPU-wide ones are allowed */
    if (s->o.native && s->follow && !(nsrc && strcmp(nsrc, "ptrace") == 0) &&
        prof_pstk_open(s->period_ns, PSTK_STACK_BYTES,
                       scope && strcmp(scope, "task") == 0 ? PROF_PSTK_TASK : PROF_PSTK_CPU, &s->pstk) == 0) {
        samp_pstk_cover(s);
        int any = 0;
        for (size_t i = 0; i < s->nprocs && !any; i++)
            for (size_t k = 0; k < s->procs[i]->nthr && !any; k++)
                any = s->procs[i]->thr[k].pstk_own;
        if (!any) {
            prof_pstk_close(s->pstk);
            s->pstk = NULL;
        }
    }
    /*
     * Thread states from the kernel's switch records where they are allowed: the split of
     * off-CPU time is exact rather than per tick, and a thread that has not switched since
     * the last tick need not be read. POOLPROF_SWITCHES=0 turns this off.
     */
    const char *swenv = getenv("POOLPROF_SWITCHES");
    if (!(swenv && strcmp(swenv, "0") == 0))
        prof_pstk_open_switches(&s->swr);
    /*
     * Native stacks alone with kernel copies, above 100 Hz or with switch records: every copy
     * in the rings is unwound at a tick of at most 100 Hz, rather than the newest at each of
     * `rate` ticks: the same unwinds, a tenth of the wake-ups, and ticks free to slow down
     * while nothing new happens (SW_QUIET_TICKS). POOLPROF_NATIVE_BATCH=0 turns this off.
     */
    const char *benv = getenv("POOLPROF_NATIVE_BATCH");
    if (s->pstk && !s->o.python && (s->period_ns < SW_TICK_NS || s->swr) && !(benv && strcmp(benv, "0") == 0)) {
        s->pstk_batch = 1;
        if (s->period_ns < SW_TICK_NS)
            s->period_ns = SW_TICK_NS;
    }
    /* Thread states alone from switch records: the tracer wakes at most 100 times a second
     * whatever the rate (each wake-up costs a busy CPU of this VM ~15-20 us). Stacks taken by
     * stops, and CPython frames (read at ticks), keep the tick at the rate. */
    if (s->swr && !s->o.native && !s->o.python && s->period_ns < SW_TICK_NS)
        s->period_ns = SW_TICK_NS;
    s->sw_backoff = s->swr && !s->o.python && (!s->o.native || s->pstk_batch);
    samp_out(s, "O t=%llu rate_hz=%d tick_hz=%.1f states=%s sched=%s stacks=%s ptrace=%d native=%s perf_scope=%s why=",
             (unsigned long long)now_ns(), s->o.rate_hz, 1e9 / (double)s->period_ns, s->swr ? "switches" : "ticks", s->sched,
             s->o.native && s->o.python ? "native,python" : s->o.native ? "native" : s->o.python ? "python" : "none", s->follow,
             !s->o.native || !s->follow ? "none" : s->pstk ? "perf" : "ptrace",
             !s->pstk ? "none" : prof_pstk_cpuwide(s->pstk) ? "cpu" : "task");
    if (s->note[0]) {
        char e[800];
        samp_out(s, "%s", samp_esc(e, sizeof e, s->note));
    }
    samp_out(s, "\n");
    samp_flush_file(s);
    pthread_mutex_lock(&s->mu);
    s->started = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);

    uint64_t period = s->period_ns;
    arm_watchdog(s);
    uint64_t t = now_ns();
    s->next_tick = t + jitter(s, period);
    uint64_t next_flush = t + FLUSH_NS;
    while (!atomic_load(&s->stop)) {
        t = now_ns();
        int ticked = 0;
        if (t >= s->next_tick) {
            ticked = 1;
            period = tick_period(s);
            if (t - s->next_tick > period / 2)
                s->late++;
            /* The next deadline first: a fork seen during this tick may pull it closer. */
            s->next_tick += jitter(s, period);
            if (s->next_tick <= t)
                s->next_tick = t + jitter(s, period);
            tick(s, t);
            /* Something new after a quiet spell: the next tick at the rate again. */
            if (s->sw_new && s->next_tick > t + s->period_ns)
                s->next_tick = t + jitter(s, s->period_ns);
        }
        /* At a tick, flush too when the next tick would come after the flush is due: slowed
         * ticks then carry every flush, and no wake-up is a flush's alone. */
        if (t >= next_flush || (ticked && s->next_tick > next_flush)) {
            samp_flush_records(s, t);
            next_flush = t + FLUSH_NS;
        }
        atomic_store(&s->idle, samp_live_procs(s) == 0);
        /* A flush waits for the tick after it when that is near: a wake-up of its own costs as much as a tick's. */
        uint64_t d = s->next_tick <= next_flush + FLUSH_NS / 2 ? s->next_tick : next_flush;
        /*
         * Already due (the tick overran, or a fork pulled the next one into the past): go
         * round again rather than arm a timer whose signal would arrive before waitpid()
         * blocks, which the watchdog alone would end (a 19 ms late child was seen so).
         */
        if (now_ns() >= d)
            continue;
        /* Woken early by a ptrace event, the timer is still set for d: leave it. Set for
         * anything else (fired, a deadline pulled closer, or a stop's bound in interrupt_wait
         * that would only wake us for nothing), set it for d. */
        if (s->armed != d)
            samp_arm(s, d);
        if (atomic_load(&s->stop))
            break;
        int st;
        pid_t tid;
        if (wait_until(s, d, &tid, &st))
            samp_handle_status(s, tid, st, 0);
    }
    detach_all(s);
    prof_pstk_close(s->pstk);
    s->pstk = NULL;
    prof_pstk_close(s->swr);
    s->swr = NULL;
    if (s->have_timer)
        timer_delete(s->timer);
    if (s->have_watchdog)
        timer_delete(s->watchdog);
    samp_flush_records(s, now_ns());
    return NULL;
}

int prof_sampler_start(const struct prof_sampler_opts *o, struct prof_sampler **out_s)
{
    struct prof_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return PROF_ENOMEM;
    s->o = *o;
    snprintf(s->rundir, sizeof s->rundir, "%s", o->rundir);
    s->o.rundir = s->rundir;
    s->snap = malloc(sizeof *s->snap);
    if (!s->snap) {
        free(s);
        return PROF_ENOMEM;
    }
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/sampler.rec", o->rundir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || !(s->rec = fdopen(fd, "w"))) {
        int e = prof_err_from_errno(errno);
        if (fd >= 0)
            close(fd);
        free(s->snap);
        free(s);
        return e;
    }
    setvbuf(s->rec, NULL, _IOFBF, 1 << 16);
    samp_out(s, "V version=%d\n", PROF_SAMPREC_VERSION);

    struct sigaction sa = {0};
    sa.sa_handler = on_tick_signal; /* no SA_RESTART: the signal must break waitpid */
    sa.sa_flags = SA_NODEFER;       /* its handler may jump out (on_tick_signal) */
    sigemptyset(&sa.sa_mask);
    sigaction(TICK_SIG, &sa, NULL);
    /* Only the sampler thread takes the tick signal. */
    sigset_t ts;
    sigemptyset(&ts);
    sigaddset(&ts, TICK_SIG);
    pthread_sigmask(SIG_BLOCK, &ts, NULL);

    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
        fclose(s->rec);
        free(s->snap);
        free(s);
        return PROF_ENOMEM;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->started)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    *out_s = s;
    return 0;
}

const char *prof_sampler_note(const struct prof_sampler *s)
{
    return s->note[0] ? s->note : NULL;
}

int prof_sampler_root_exit(struct prof_sampler *s, int *status)
{
    if (!atomic_load(&s->root_exited))
        return 0;
    *status = atomic_load(&s->root_status);
    return 1;
}

int prof_sampler_idle(struct prof_sampler *s)
{
    return atomic_load(&s->idle);
}

uint64_t prof_sampler_tree_events(void *sampler)
{
    struct prof_sampler *s = sampler;
    return s && s->follow ? atomic_load(&s->tree_events) : UINT64_MAX;
}

int prof_sampler_stop(struct prof_sampler *s)
{
    if (!s)
        return 0;
    atomic_store(&s->stop, 1);
    pthread_kill(s->thread, TICK_SIG);
    pthread_join(s->thread, NULL);
    int err = s->rec_err;
    if (s->rec && fclose(s->rec) != 0 && !err)
        err = errno ? errno : EIO;
    for (size_t i = 0; i < s->nprocs; i++) {
        samp_proc_gone(s, s->procs[i]);
        free(s->procs[i]->thr);
        free(s->procs[i]);
    }
    free(s->procs);
    free(s->buckets);
    samp_strtab_free(&s->stacks);
    free(s->fast);
    samp_strtab_free(&s->modules);
    free(s->snap);
    free(s->buf);
    free(s->tidx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return err ? prof_err_from_errno(err) : 0;
}
