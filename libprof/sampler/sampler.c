/* sampler.c: the sampler's entry points and its tracer thread: setup, the loop of ticks and ptrace events, and the detach at the end. */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sampler_int.h"
#include "prof.h"
#include "format/samprec.h"

#define TICK_SIG (SIGRTMIN + 5)
#define FLUSH_NS 100000000ULL
#define WATCHDOG_NS 1000000000ULL /* a tick the timer failed to wake is caught within this */

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
    for (size_t i = 0; i < s->nprocs; i++)
        if (!s->procs[i]->dead)
            samp_lazy_finish(s, s->procs[i]);
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

/* The tracer thread's own settings: every signal blocked but the tick's, its priority, its timers. */
static void tracer_init(struct prof_sampler *s)
{
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
}

/* Seize the root (a zombie leader: its threads). Refused: /proc only, and s->note says why. */
static void seize_root(struct prof_sampler *s, struct sproc *root)
{
    int r = samp_seize(s, s->o.root);
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

/* Where native stacks and thread states come from (kernel copies, switch records, stops),
 * and the tick period that follows from them. */
static void open_sources(struct prof_sampler *s)
{
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
    /* (The switch records, opened before the root was seized: see sampler_main.) */
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
}

/* The O line: the settings the run got, and why ptrace was refused if it was. */
static void o_line(struct prof_sampler *s)
{
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
}

/* Ticks, flushes and ptrace events until prof_sampler_stop asks the thread to end. */
static void run_loop(struct prof_sampler *s)
{
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
            period = samp_tick_period(s);
            if (t - s->next_tick > period / 2)
                s->late++;
            /* The next deadline first: a fork seen during this tick may pull it closer. */
            s->next_tick += jitter(s, period);
            if (s->next_tick <= t)
                s->next_tick = t + jitter(s, period);
            samp_tick(s, t);
            /* Something new after a quiet spell: the next tick at the rate again. */
            if (s->sw_new && s->next_tick > t + s->period_ns)
                s->next_tick = t + jitter(s, s->period_ns);
            s->next_new = 0; /* the new processes were in it */
        } else if (s->next_new && t >= s->next_new) {
            samp_tick_new(s, t);
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
        if (s->next_new && s->next_new < d)
            d = s->next_new;
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
}

/* The tracer thread: set up, take the tree, tick until stopped, then detach and write the last records. */
static void *sampler_main(void *arg)
{
    struct prof_sampler *s = arg;
    tracer_init(s);

    s->t0 = now_ns();
    s->seed = s->t0 ^ ((uint64_t)getpid() << 32);
    struct sproc *root = samp_proc_add(s, s->o.root, 0, 0);
    s->follow = s->o.follow;
    /*
     * Thread states from the kernel's switch records where they are allowed: the split of
     * off-CPU time is exact rather than per tick, and a thread that has not switched since
     * the last tick need not be read. POOLPROF_SWITCHES=0 turns this off. Opened before the
     * root is seized: with them, threads are followed by their records rather than by clone
     * stops (switches.c), and the seize's options say so. POOLPROF_TRACE_CLONES=1 keeps the
     * clone stops (for comparison).
     */
    const char *swenv = getenv("POOLPROF_SWITCHES"), *tcenv = getenv("POOLPROF_TRACE_CLONES");
    if (!(swenv && strcmp(swenv, "0") == 0))
        prof_pstk_open_switches(&s->swr);
    s->lazy_threads = s->swr && s->follow && !(tcenv && strcmp(tcenv, "1") == 0);
    if (root && s->follow)
        seize_root(s, root);
    if (root) {
        samp_proc_take_threads(s, root);
        samp_proc_python(s, root);
        samp_scan_tree(s);
    }
    open_sources(s);
    o_line(s);
    pthread_mutex_lock(&s->mu);
    s->started = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);

    run_loop(s);
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
    free(s->pidx);
    free(s->foreign);
    free(s->sw_cur);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return err ? prof_err_from_errno(err) : 0;
}
