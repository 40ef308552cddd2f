/* wait.c: children this process reaps with wait*(): the only place a killed grandchild's status is seen, and the time a thread blocks waiting for one, or for a signal. */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "shim.h"

static void shim_child_reaped(pid_t pid, int status)
{
    if (pid <= 0 || !(WIFEXITED(status) || WIFSIGNALED(status)) || !shim_self() || !shim_owner())
        return;
    struct prof_shm_header *h = shim_hdr;
    uint32_t n = __atomic_fetch_add(&h->nchildren, 1, __ATOMIC_RELAXED);
    struct prof_shm_child *c = shim_child_at(h, n, 1);
    if (!c) {
        /* Beyond the fixed table and the extension area has no room for its chunk. */
        __atomic_fetch_add(&h->dropped_children, 1, __ATOMIC_RELAXED);
        return;
    }
    if (shim_record_room(c, sizeof *c) < 0)
        return; /* no disk block for it: pid stays 0, and readers skip the entry */
    c->status = status;
    c->t_ns = shim_mono_ns();
    /* pid last: a reader that sees it sees the status. */
    __atomic_store_n(&c->pid, pid, __ATOMIC_RELEASE);
}

/*
 * A thread blocked until a child ends waits for other work to finish, as pthread_join does:
 * join wait, idle, not a thread of the stage waiting on I/O (a shell or make waiting on its
 * children read as an I/O-bound parent beside the children that did the work). WNOHANG polls
 * do not block and are not timed.
 */
static inline uint64_t child_wait_begin(int options)
{
    return (options & WNOHANG) || !shim_self() ? 0 : shim_mono_ns();
}

static inline void child_wait_end(uint64_t t0)
{
    struct prof_shm_thread *t = shim_self();
    if (t0 && t)
        t->join_wait_ns += shim_mono_ns() - t0;
}

SHIM_EXPORT pid_t wait(int *status)
{
    shim_init();
    int st = 0;
    uint64_t t0 = child_wait_begin(0);
    pid_t r = shim_real.wait(&st);
    child_wait_end(t0);
    if (r > 0) {
        if (status)
            *status = st;
        int saved = errno;
        shim_child_reaped(r, st);
        errno = saved;
    }
    return r;
}

SHIM_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
    shim_init();
    int st = 0;
    uint64_t t0 = child_wait_begin(options);
    pid_t r = shim_real.waitpid(pid, &st, options);
    child_wait_end(t0);
    if (r > 0) {
        if (status)
            *status = st;
        int saved = errno;
        shim_child_reaped(r, st);
        errno = saved;
    }
    return r;
}

SHIM_EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
    shim_init();
    int st = 0;
    uint64_t t0 = child_wait_begin(options);
    pid_t r = shim_real.wait3(&st, options, ru);
    child_wait_end(t0);
    if (r > 0) {
        if (status)
            *status = st;
        int saved = errno;
        shim_child_reaped(r, st);
        errno = saved;
    }
    return r;
}

SHIM_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
    shim_init();
    int st = 0;
    uint64_t t0 = child_wait_begin(options);
    pid_t r = shim_real.wait4(pid, &st, options, ru);
    child_wait_end(t0);
    if (r > 0) {
        if (status)
            *status = st;
        int saved = errno;
        shim_child_reaped(r, st);
        errno = saved;
    }
    return r;
}

SHIM_EXPORT int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
    shim_init();
    siginfo_t local;
    siginfo_t *si = info;
    if (!si) {
        memset(&local, 0, sizeof local);
        si = &local;
    }
    uint64_t t0 = child_wait_begin(options);
    int r = shim_real.waitid(idtype, id, si, options);
    child_wait_end(t0);
    /* WNOWAIT leaves the child to be reaped (and recorded) by a later call. */
    if (r == 0 && !(options & WNOWAIT) && si->si_pid > 0) {
        int saved = errno;
        int st = -1;
        if (si->si_code == CLD_EXITED)
            st = (si->si_status & 0xff) << 8;
        else if (si->si_code == CLD_KILLED)
            st = si->si_status & 0x7f;
        else if (si->si_code == CLD_DUMPED)
            st = (si->si_status & 0x7f) | 0x80;
        if (st >= 0)
            shim_child_reaped(si->si_pid, st);
        errno = saved;
    }
    return r;
}

/*
 * Waiting for a signal is waiting for another process or thread to send it: idle, never work or
 * contention. A shell's `wait` builtin (dash) suspends until SIGCHLD rather than calling wait*:
 * where the wait can end with SIGCHLD it is a join (a child finishing), otherwise a hand-off.
 * The raw system calls stand in while the real functions are not resolved yet.
 */
static inline void signal_wait_end(uint64_t t0, int child)
{
    struct prof_shm_thread *t = shim_self();
    if (!t0 || !t)
        return;
    uint64_t dt = shim_mono_ns() - t0;
    if (child)
        t->join_wait_ns += dt;
    else
        t->handoff_wait_ns += dt;
}

static inline uint64_t signal_wait_begin(void)
{
    return shim_self() ? shim_mono_ns() : 0;
}

SHIM_EXPORT int sigsuspend(const sigset_t *mask)
{
    shim_resolve();
    if (!shim_real.sigsuspend)
        return (int)syscall(SYS_rt_sigsuspend, mask, _NSIG / 8);
    uint64_t t0 = signal_wait_begin();
    int r = shim_real.sigsuspend(mask);
    int saved = errno;
    signal_wait_end(t0, sigismember(mask, SIGCHLD) == 0);
    errno = saved;
    return r;
}

SHIM_EXPORT int pause(void)
{
    shim_resolve();
    if (!shim_real.pause)
        return (int)syscall(SYS_pause);
    uint64_t t0 = signal_wait_begin();
    int r = shim_real.pause();
    int saved = errno;
    signal_wait_end(t0, 0);
    errno = saved;
    return r;
}

SHIM_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
    shim_resolve();
    if (!shim_real.sigtimedwait)
        return (int)syscall(SYS_rt_sigtimedwait, set, info, timeout, _NSIG / 8);
    uint64_t t0 = signal_wait_begin();
    int r = shim_real.sigtimedwait(set, info, timeout);
    int saved = errno;
    signal_wait_end(t0, sigismember(set, SIGCHLD) == 1);
    errno = saved;
    return r;
}

SHIM_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
    shim_resolve();
    if (!shim_real.sigwaitinfo)
        return (int)syscall(SYS_rt_sigtimedwait, set, info, NULL, _NSIG / 8);
    uint64_t t0 = signal_wait_begin();
    int r = shim_real.sigwaitinfo(set, info);
    int saved = errno;
    signal_wait_end(t0, sigismember(set, SIGCHLD) == 1);
    errno = saved;
    return r;
}

/* Returns the error number itself (POSIX), not -1 and errno. */
SHIM_EXPORT int sigwait(const sigset_t *set, int *sig)
{
    shim_resolve();
    if (!shim_real.sigwait) {
        int saved = errno;
        long r = syscall(SYS_rt_sigtimedwait, set, NULL, NULL, _NSIG / 8);
        int e = r < 0 ? errno : 0;
        if (r >= 0)
            *sig = (int)r;
        errno = saved;
        return e;
    }
    uint64_t t0 = signal_wait_begin();
    int r = shim_real.sigwait(set, sig);
    int saved = errno;
    signal_wait_end(t0, sigismember(set, SIGCHLD) == 1);
    errno = saved;
    return r;
}
