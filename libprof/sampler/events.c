/* events.c: the tree's ptrace events (clones, forks, execs, exits, stops) and the tracer's own interrupt stops. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sampler_int.h"

/* ---- ptrace events -------------------------------------------------------------- */

/*
 * Is tid a live thread of the thread group pid? tgkill with signal 0 checks exactly that, with
 * no signal sent and no /proc path to walk: at a clone event of 5,000 short threads the stat
 * of /proc/PID/task/TID, and for one already gone a read of its /proc status, were a fifth of
 * the tracer's CPU. (tid == pid asks whether pid is a live process's leader.)
 */
static int is_thread_of(pid_t pid, pid_t tid)
{
    return syscall(SYS_tgkill, (long)pid, (long)tid, 0L) == 0;
}

/* Tgid of a task from /proc/ID/status, or -1 when it is gone. */
static pid_t tgid_of(pid_t id)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/status", (int)id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *t = strstr(buf, "\nTgid:");
    return t ? (pid_t)atoi(t + 6) : -1;
}

/*
 * A task created at this event: its schedstat starts at 0 now, so its first tick accounts its
 * whole life rather than from that tick on (ticks that slow down when quiet come up to 40 ms
 * apart: 30 threads parked on an Event each lost that much of a 0.6 s life, and read as busy).
 * It is something new: the ticks are back at the rate, and its first comes within a period,
 * since its waits until then are at places no tick has classified for it.
 */
static struct sthr *thr_born(struct prof_sampler *s, struct sproc *p, pid_t tid)
{
    struct sthr *th = samp_thr_add(p, tid);
    if (!th)
        return NULL;
    if (!th->have_base) {
        th->have_base = 1;
        th->cpu = th->runq = 0;
        th->t = now_ns();
        th->stack_cpu = (uint64_t)-1;
        s->sw_quiet = 0;
        if (s->next_tick > th->t + s->period_ns)
            s->next_tick = th->t + s->period_ns;
    }
    th->seized = 1;
    return th;
}

void samp_new_task(struct prof_sampler *s, struct sproc *parent, pid_t id, int event)
{
    if (!parent)
        return;
    int thread = event == PTRACE_EVENT_CLONE && is_thread_of(parent->pid, id);
    if (event == PTRACE_EVENT_CLONE && !thread && !is_thread_of(id, id))
        return; /* a short-lived thread already gone (it is no process): nothing to watch */
    if (thread) {
        if (s->o.task_new)
            s->o.task_new(s->o.task_ctx, parent->pid, id, 1);
        thr_born(s, parent, id);
        return;
    }
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i]->pid == id)
            return; /* adopted from its own first stop, before this (late) fork event */
    if (s->o.task_new)
        s->o.task_new(s->o.task_ctx, id, id, 1);
    struct sproc *p = samp_proc_add(s, id, parent->pid, now_ns());
    if (!p)
        return;
    samp_proc_ident(p, parent);
    /* A short-lived pool worker must not wait a whole period for its first sample: a tick of
     * the new processes alone comes within 1 ms (samp_tick_new). */
    if (!s->next_new || s->next_new > p->born_ns + 1000000ULL)
        s->next_new = p->born_ns + 1000000ULL;
    thr_born(s, p, id);
    /* A fork of CPython is CPython until it execs, at the same addresses: its reader is the
     * parent's, copied. Any other child is looked at by the next tick (pulled close above),
     * not here, where the child waits in its first stop for this function to return. */
    if (parent->py && prof_py_fork(parent->py, id, &p->py) == 0) {
        p->gil_cond = parent->gil_cond;
        p->gil_cond_len = parent->gil_cond_len;
        p->gil_mutex = parent->gil_mutex;
        p->gil_mutex_len = parent->gil_mutex_len;
        samp_p_line(s, p, 1, NULL);
    } else if (parent->py_refused) {
        /* A fork of a CPython that cannot be read: the same image, refused for the same reason,
         * said for the child too (it was silent: no Python stacks and no refusal named). */
        samp_proc_refused(p, parent->py_refused);
        samp_p_line(s, p, 0, p->py_refused);
        p->py_due = 0;
    } else if (parent->py_exe_no == parent->gen + 1 && !parent->py_needs) {
        /* The parent's image, known not to be CPython: only a dlopen can change that. */
        samp_p_line(s, p, 0, NULL);
        p->py_exe_no = p->gen + 1;
        p->py_backoff = PY_RETRY_LATE_NS;
        p->py_due = p->born_ns + PY_RETRY_LATE_NS;
    } else {
        samp_p_line(s, p, 0, NULL);
        p->py_due = p->born_ns;
    }
}

static void on_exec(struct prof_sampler *s, pid_t tid)
{
    struct sproc *p;
    struct sthr *th = samp_thr_find(s, tid, &p);
    if (!th) {
        /* The leader's tid is the pid after exec; a non-leader execing keeps only that. */
        p = samp_proc_find(s, tid);
        if (!p)
            return;
    }
    /* Every other thread is gone; the execing thread now has the pid as tid. */
    for (size_t k = 0; k < p->nthr; k++)
        if (p->thr[k].tid != p->pid && !p->thr[k].dead)
            samp_thr_gone(&p->thr[k]);
    struct sthr *lead = NULL;
    for (size_t k = 0; k < p->nthr; k++)
        if (p->thr[k].tid == p->pid && !p->thr[k].dead)
            lead = &p->thr[k];
    if (!lead)
        lead = samp_thr_add(p, p->pid);
    if (lead) {
        lead->seized = 1;
        lead->stack = lead->blocked_stack = 0;
        lead->nnat = 0; /* the old image's frames mean nothing in the new one */
        samp_waitsites_free(lead);
        lead->have_stack_sc = 0;
        lead->sc_wait.state = 0; /* the old image's calls */
        lead->stack_end = 0;     /* ...and stack */
        lead->stack_cpu = 0;
        lead->classified = 0;
        lead->pstk_new = 0;
    }
    p->execd = 1;
    p->exec_ns = now_ns();
    p->gen++;
    s->tree_gen++; /* its close-on-exec descriptors are closed */
    p->x_pending = 0; /* a thread exec'd: the leader's exit was de_thread's, not the process's */
    if (p->unw)
        prof_unw_invalidate(p->unw);
    p->nlocks = 0;
    if (p->sites)
        memset(p->sites, 0, SW_SITES * sizeof *p->sites); /* the old image's code */
    /* The old image's reader means nothing now; the new one is looked for by the next tick. */
    if (p->py) {
        prof_py_close(p->py);
        p->py = NULL;
    }
    p->gil_cond = p->gil_cond_len = p->gil_mutex = p->gil_mutex_len = 0;
    samp_proc_refused(p, NULL);
    p->py_backoff = 0;
    p->py_due = p->exec_ns;
    /* The new image's name now, while it surely runs: a short one is gone before a tick. */
    samp_proc_ident(p, NULL);
    samp_p_line(s, p, 0, NULL);
}

void samp_x_line(struct prof_sampler *s, struct sproc *p, int status)
{
    p->x_pending = 0;
    samp_out(s, "X t=%llu pid=%d status=%d\n", (unsigned long long)now_ns(), (int)p->pid, status);
    if (p->pid == s->o.root) {
        atomic_store(&s->root_status, status);
        atomic_store(&s->root_exited, 1);
    }
}

/* Does a thread of p other than tid still run (not exiting, not killed by a group exit)? */
static int threads_run_on(struct sproc *p, pid_t tid)
{
    for (size_t k = 0; k < p->nthr; k++) {
        struct sthr *o = &p->thr[k];
        if (o->dead || o->exiting || o->tid == tid)
            continue;
        char path[96], buf[2048];
        snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)p->pid, (int)o->tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        const char *st = strstr(buf, "\nState:\t"), *pnd = strstr(buf, "\nSigPnd:\t");
        if (st && (st[8] == 'Z' || st[8] == 'X'))
            continue;
        if (pnd && (strtoull(pnd + 9, NULL, 16) & (1ULL << (SIGKILL - 1))))
            continue; /* zapped by exit_group */
        return 1;
    }
    return 0;
}

/* Every thread of p traced now (threads followed by their records are seized at ticks). */
static void seize_the_rest(struct prof_sampler *s, struct sproc *p)
{
    uint64_t t = now_ns();
    for (size_t k = 0; k < p->nthr; k++)
        if (p->thr[k].lazy && !p->thr[k].dead)
            samp_lazy_tick(s, p, &p->thr[k], t, 0);
}

/*
 * The off-CPU part of an interval of dt with dcpu on a CPU and drunq waiting for one.
 * schedstat comes in lumps (run_delay lands when the thread gets a CPU, the runtime of a
 * running thread at the scheduler tick), so one interval can report more CPU + run-queue
 * time than it lasted and the next one less: the excess is owed and repaid from later
 * off-CPU time, not counted twice.
 */
uint64_t samp_off_cpu(struct sthr *th, uint64_t dt, uint64_t dcpu, uint64_t drunq)
{
    if (dt < dcpu + drunq) {
        th->debt += dcpu + drunq - dt;
        return 0;
    }
    uint64_t off = dt - dcpu - drunq, repay = off < th->debt ? off : th->debt;
    th->debt -= repay;
    return off - repay;
}

/*
 * A thread in its exit stop: its time since its last tick, which no later tick reads. Without
 * the shim nothing else has it: the tracer's own wait may reap the process before the monitor
 * reads its figures again (up to 100 ms of a process's CPU), and ticks that slow down when
 * quiet come up to 40 ms apart. The off-CPU part goes where the tick would have put it.
 */
static void thr_final(struct prof_sampler *s, struct sproc *p, struct sthr *th)
{
    uint64_t cpu, runq;
    if (!th->have_base || th->exiting || samp_read_schedstat(th, &cpu, &runq) < 0)
        return;
    uint64_t tr = now_ns(), dt = tr > th->t ? tr - th->t : 0;
    uint64_t dcpu = cpu > th->cpu ? cpu - th->cpu : 0, drunq = runq > th->runq ? runq - th->runq : 0;
    samp_bucket_add(s, p, th, PROF_TS_RUNNING, th->stack, 0, 0, dcpu, 0);
    samp_bucket_add(s, p, th, PROF_TS_RUNQ, th->stack, 0, 0, drunq, 0);
    uint64_t off = samp_off_cpu(th, dt, dcpu, drunq);
    if (off && !(s->swr && samp_switches_split(s, p, th, tr, off, 0, PROF_TS_RUNNING, 0, th->stack)))
        samp_bucket_add(s, p, th, th->blocked, th->blocked_stack, th->blocked_addr, 0, off, 0);
    samp_span_interval(s, p, th, th->t, tr, th->state, th->state);
    th->cpu += dcpu;
    th->runq += drunq;
    th->t = tr;
}

/* Handle one wait status of a tracee. Returns 1 if it was our own
 * PTRACE_INTERRUPT stop (left stopped for the caller), else 0. */
int samp_handle_status(struct prof_sampler *s, pid_t tid, int st, int mine)
{
    int event = WIFSTOPPED(st) ? (unsigned)st >> 16 : 0;
    if (WIFEXITED(st) || WIFSIGNALED(st) || (event && event != PTRACE_EVENT_STOP))
        atomic_fetch_add(&s->tree_events, 1);
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
        struct sproc *lp = samp_proc_find(s, tid);
        if (lp && lp->ours && s->o.reaped)
            s->o.reaped(s->o.reaped_ctx, tid, st);
        samp_tid_gone(s, tid);
        return 0;
    }
    if (!WIFSTOPPED(st))
        return 0;
    int sig = WSTOPSIG(st);
    struct sproc *p = NULL;
    struct sthr *th = samp_thr_find(s, tid, &p);
    unsigned long msg = 0;
    if (!th) {
        /*
         * A task whose creator's clone/fork event we have not handled yet (waits come in
         * any order): adopt it now from /proc, or a child that forks and exits at once
         * would lose its exit status.
         */
        pid_t tg = tgid_of(tid);
        if (tg == tid) {
            struct sproc *par = samp_proc_find(s, samp_stat_ppid(tid, NULL));
            if (par)
                samp_new_task(s, par, tid, PTRACE_EVENT_FORK);
        } else if (tg > 0) {
            struct sproc *own = samp_proc_find(s, tg);
            if (own)
                thr_born(s, own, tid);
        }
        th = samp_thr_find(s, tid, &p);
    }
    switch (event) {
    /* The tracee is let go first: our bookkeeping need not hold it stopped. */
    case PTRACE_EVENT_CLONE:
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg) < 0)
            msg = 0;
        ptrace(PTRACE_CONT, tid, 0, 0);
        if (msg)
            samp_new_task(s, p, (pid_t)msg, event);
        return 0;
    case PTRACE_EVENT_EXEC:
        ptrace(PTRACE_CONT, tid, 0, 0);
        on_exec(s, tid);
        return 0;
    case PTRACE_EVENT_EXIT:
        /* Still alive here: learn whether its parent is us (then our wait will reap it). */
        if (p && tid == p->pid)
            p->ours = samp_stat_ppid(p->pid, NULL) == getpid();
        if (p && ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg) == 0) {
            if (th) {
                thr_final(s, p, th);
                th->exiting = 1;
            }
            /* Threads followed by their records may not be known yet (one that has not run
             * yet has no record): whether any runs on is asked of /proc, and they are taken. */
            if (s->lazy_threads && tid == p->pid && msg == 0)
                samp_proc_take_threads(s, p);
            if (tid == p->pid && msg == 0 && threads_run_on(p, tid)) {
                /* A zombie leader: main called pthread_exit (or exit_group(0) whose
                 * other threads are not killed yet). The process's status is that of
                 * the thread that ends it; status 0 is kept in case none reports. */
                p->x_pending = 1;
                p->x_msg = 0;
                /* That thread must be traced to report it: threads followed by their
                 * records are seized now, not at a tick. */
                if (s->lazy_threads)
                    seize_the_rest(s, p);
            } else if (tid == p->pid || (p->x_pending && !threads_run_on(p, tid))) {
                samp_x_line(s, p, (int)msg);
            } else if (p->x_pending) {
                p->x_msg = (int)msg;
            }
        }
        ptrace(PTRACE_CONT, tid, 0, 0);
        return 0;
    case PTRACE_EVENT_STOP:
        if (!th) {
            /* A new thread or child reporting in before its parent's event: keep it running. */
            ptrace(PTRACE_CONT, tid, 0, 0);
            return 0;
        }
        if (th->interrupting && (sig == SIGTRAP || sig == 0)) {
            th->interrupting = 0;
            if (mine)
                return 1;
            ptrace(PTRACE_CONT, tid, 0, 0);
            return 0;
        }
        if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
            /* A group-stop (the user's ^Z, a SIGSTOP): the tracee stays stopped, as without us. */
            th->listening = 1;
            ptrace(PTRACE_LISTEN, tid, 0, 0);
            return 0;
        }
        th->listening = 0;
        ptrace(PTRACE_CONT, tid, 0, 0);
        return 0;
    default:
        /* Signal-delivery-stop: the target's own signal, delivered unchanged. */
        if (th)
            th->listening = 0;
        ptrace(PTRACE_CONT, tid, 0, (void *)(long)sig);
        return 0;
    }
}

/* Stop tid with PTRACE_INTERRUPT and wait for that stop. 1 if stopped (the
 * caller must PTRACE_CONT), 0 if it went away or could not be stopped. */
/*
 * A thread that cannot reach the stop (a vfork parent waits, uninterruptibly, for a child
 * that is itself in its first ptrace stop until we let it go; a disk wait in D state) must
 * not hold the tracer: the wait ends at INTERRUPT_WAIT_NS, the tick timer armed for it.
 * The stop, when it comes, is let go by handle_status (th->interrupting). Until this bound,
 * an unlucky tick waited for a vfork parent for good (test_sampler's spawn_tree, 1 in 5).
 */
#define INTERRUPT_WAIT_NS 10000000ULL
int samp_interrupt_wait(struct prof_sampler *s, struct sthr *th)
{
    uint64_t t = now_ns(), deadline = t + INTERRUPT_WAIT_NS;
    /* Within a tick the first stop arms the timer; the next ones find it armed in time. */
    if (!s->armed || s->armed <= t || s->armed > deadline)
        samp_arm(s, deadline);
    if (ptrace(PTRACE_INTERRUPT, th->tid, 0, 0) < 0)
        return 0;
    th->interrupting = 1;
    for (;;) {
        int st;
        pid_t r = waitpid(th->tid, &st, __WALL);
        if (r < 0) {
            if (errno != EINTR || !s->have_timer)
                return 0;
            t = now_ns();
            if (t >= deadline)
                return 0;
            if (s->armed <= t) /* the signal was the timer's, set for an earlier stop: ours again */
                samp_arm(s, deadline);
            continue;
        }
        if (WIFSTOPPED(st) && ((unsigned)st >> 16) == PTRACE_EVENT_STOP && WSTOPSIG(st) == SIGTRAP) {
            th->interrupting = 0;
            return 1;
        }
        /*
         * Another event came first (a clone, an exec, an exit, a signal). Handling it here
         * would change the thread and process tables under the tick that called us (new
         * threads, a re-opened CPython reader): keep it for after the tick. The thread
         * waits in that stop until then; our interrupt stays pending and is let go later.
         */
        if (s->ndeferred < sizeof s->deferred / sizeof *s->deferred) {
            s->deferred[s->ndeferred].tid = r;
            s->deferred[s->ndeferred].status = st;
            s->ndeferred++;
        } else {
            samp_handle_status(s, r, st, 0); /* cannot happen in practice: one per stop, 256 slots */
        }
        return 0;
    }
}

/* Events kept back during a tick (see interrupt_wait). */
void samp_handle_deferred(struct prof_sampler *s)
{
    for (size_t i = 0; i < s->ndeferred; i++)
        samp_handle_status(s, s->deferred[i].tid, s->deferred[i].status, 0);
    s->ndeferred = 0;
}
