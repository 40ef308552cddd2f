/* lock.c: time blocked in mutexes, condition variables, rwlocks, spinlocks and joins, per thread; CPython's GIL apart. */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "sampler/pylayout.h"
#include "shim.h"

/*
 * The uncontended path is a trylock and two increments: no clock, no
 * syscall. Only a trylock that finds the lock busy pays for two vDSO clock
 * reads around the real, blocking call.
 *
 * The fallbacks run only if a lock interposer is reentered while this very
 * thread resolves the real symbols (a preloaded allocator called from dlsym):
 * they are correct but spin, and they never call dlsym.
 */

static int fallback_mutex_lock(pthread_mutex_t *m, const struct timespec *abs)
{
    int r;
    while ((r = pthread_mutex_trylock(m)) == EBUSY) {
        if (abs && shim_clock_ns(CLOCK_REALTIME) >=
                       (uint64_t)abs->tv_sec * 1000000000ull + (uint64_t)abs->tv_nsec)
            return ETIMEDOUT;
        sched_yield();
    }
    return r;
}

/* POSIX allows a condition wait to wake spuriously: that is the fallback. */
static int fallback_cond_wait(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
    sched_yield();
    return fallback_mutex_lock(m, NULL);
}

/*
 * Only for a mutex unlocked while this thread resolves the real symbols
 * (dlsym reentered through a preloaded allocator): glibc's unlock for the
 * kinds allocators use, on the public layout of pthread_mutex_t. Robust,
 * priority-inheritance and priority-protect mutexes are refused.
 */
static int fallback_mutex_unlock(pthread_mutex_t *m)
{
    struct __pthread_mutex_s *d = &m->__data;
    int kind = d->__kind & 0x7f;
    if (kind & 0x70)
        return EINVAL;
    int type = kind & 3;
    if (type == PTHREAD_MUTEX_RECURSIVE_NP) {
        if (d->__owner != gettid())
            return EPERM;
        if (--d->__count)
            return 0;
    } else if (type == PTHREAD_MUTEX_ERRORCHECK_NP) {
        if (d->__owner != gettid() || d->__lock == 0)
            return EPERM;
    }
    d->__owner = 0;
    d->__nusers--;
    int old = __atomic_exchange_n(&d->__lock, 0, __ATOMIC_RELEASE);
    if (old > 1)
        syscall(SYS_futex, &d->__lock, (d->__kind & 128) ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 1);
    return 0;
}

/*
 * A condition wait ends because another thread signalled it or because its time ran out:
 * waiting for work, a result or a tick, idle like a join, not contention for a lock someone
 * holds (a work queue's consumers would otherwise read as a program serialized on a mutex).
 * The re-take of the mutex on the way out is inside the same call and goes with it.
 */
static inline void shim_account_handoff(struct prof_shm_thread *t, uint64_t t0, int acquired)
{
    t->handoff_wait_ns += shim_mono_ns() - t0;
    if (acquired)
        t->lock_acquisitions++;
}

/* A tracked mutex was acquired by thread t (at `now`, 0: read the clock). */
static void lk_mutex_acquired(int i, struct prof_shm_thread *t, uint64_t now)
{
    struct lk_priv *p = &lk_priv[i];
    struct prof_shm_lock *l = &shim_hdr->locks[i];
    l->acquisitions++;
    if (p->owner == t->tid && p->depth) {
        p->depth++;
        return;
    }
    p->owner = t->tid;
    p->depth = 1;
    p->t_acq = now ? now : shim_mono_ns();
    if (p->last_owner != t->tid) {
        if (p->last_owner)
            l->owner_changes++;
        p->last_owner = t->tid;
    }
}

/* Thread t gives up tracked mutex i (unlock, or a condition wait releasing it): hold ends. */
static void lk_mutex_released(int i, struct prof_shm_thread *t, uint64_t now, int all)
{
    struct lk_priv *p = &lk_priv[i];
    if (p->owner != t->tid || !p->depth)
        return;
    if (!all && --p->depth)
        return;
    p->depth = 0;
    p->owner = 0;
    shim_hdr->locks[i].hold_ns += (now ? now : shim_mono_ns()) - p->t_acq;
}

/* One of CPython's GIL mutexes, once a GIL wait has named them (shim_gil_mutex_seen)? */
static inline int shim_is_gil_mutex(const pthread_mutex_t *m)
{
    const struct prof_shm_header *h = shim_hdr;
    return h && h->gil_mutex &&
           ((uintptr_t)m == __atomic_load_n(&h->gil_mutex, __ATOMIC_RELAXED) ||
            (uintptr_t)m == __atomic_load_n(&h->gil_switch_mutex, __ATOMIC_RELAXED));
}

/* The contended path of lock and timedlock: timed, and the lock enters the table. */
static __attribute__((noinline)) int shim_mutex_slow(struct prof_shm_thread *t, pthread_mutex_t *m,
                                                     const struct timespec *abs, uintptr_t pc)
{
    uint64_t t0 = shim_mono_ns();
    int r = abs ? shim_real.mutex_timedlock(m, abs) : shim_real.mutex_lock(m);
    uint64_t t1 = shim_mono_ns();
    int acquired = r == 0 || r == EOWNERDEAD;
    /* CPython's GIL hands over under these mutexes: a wait for one is a GIL wait, reported apart. */
    if (shim_is_gil_mutex(m)) {
        t->gil_wait_ns += t1 - t0;
        return r;
    }
    t->lock_wait_ns += t1 - t0;
    t->lock_contended++;
    if (!acquired)
        return r;
    t->lock_acquisitions++;
    int saved = errno;
    lk_contended(m, PROF_LOCK_MUTEX, pc, t1 - t0);
    int i = lk_lookup(m);
    if (i >= 0)
        lk_mutex_acquired(i, t, t1);
    errno = saved;
    return r;
}

SHIM_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
    int i = lk_lookup(m);
    if (SHIM_UNLIKELY(i >= 0)) {
        struct prof_shm_thread *t = shim_self();
        if (t)
            lk_mutex_released(i, t, 0, 0);
    }
    if (SHIM_UNLIKELY(!shim_real.mutex_unlock)) {
        shim_resolve();
        if (!shim_real.mutex_unlock)
            return fallback_mutex_unlock(m);
    }
    return shim_real.mutex_unlock(m);
}

SHIM_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (SHIM_UNLIKELY(!shim_real.mutex_lock)) {
        shim_resolve();
        if (!shim_real.mutex_lock)
            return fallback_mutex_lock(m, NULL);
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.mutex_lock(m);
    int r = pthread_mutex_trylock(m);
    if (SHIM_LIKELY(r != EBUSY)) {
        if (r == 0 || r == EOWNERDEAD) {
            t->lock_acquisitions++;
            int i = lk_lookup(m);
            if (SHIM_UNLIKELY(i >= 0))
                lk_mutex_acquired(i, t, 0);
        }
        return r;
    }
    return shim_mutex_slow(t, m, NULL, SHIM_CALLER());
}

SHIM_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.mutex_timedlock)) {
        shim_resolve();
        if (!shim_real.mutex_timedlock)
            return fallback_mutex_lock(m, abs);
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.mutex_timedlock(m, abs);
    int r = pthread_mutex_trylock(m);
    if (SHIM_LIKELY(r != EBUSY)) {
        if (r == 0 || r == EOWNERDEAD) {
            t->lock_acquisitions++;
            int i = lk_lookup(m);
            if (SHIM_UNLIKELY(i >= 0))
                lk_mutex_acquired(i, t, 0);
        }
        return r;
    }
    return shim_mutex_slow(t, m, abs, SHIM_CALLER());
}

/* A condition wait releases its mutex inside libc: the hold pauses; returns the table index or -1. */
static inline int lk_cond_release(pthread_mutex_t *m, struct prof_shm_thread *t, uint64_t now)
{
    int i = lk_lookup(m);
    if (SHIM_UNLIKELY(i >= 0)) {
        struct lk_priv *p = &lk_priv[i];
        if (p->owner != t->tid || !p->depth)
            return -1;
        shim_hdr->locks[i].hold_ns += now - p->t_acq;
        p->owner = 0;
    }
    return i;
}

static inline void lk_cond_reacquire(int i, struct prof_shm_thread *t)
{
    if (SHIM_LIKELY(i < 0))
        return;
    struct lk_priv *p = &lk_priv[i];
    int saved = errno;
    p->owner = t->tid;
    p->t_acq = shim_mono_ns();
    errno = saved;
}

SHIM_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (SHIM_UNLIKELY(!shim_real.cond_wait)) {
        shim_resolve();
        if (!shim_real.cond_wait)
            return fallback_cond_wait(m);
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.cond_wait(c, m);
    uint64_t t0 = shim_mono_ns();
    int i = lk_cond_release(m, t, t0);
    int r = shim_real.cond_wait(c, m);
    /* Under the GIL's switch mutex: drop_gil waiting for another thread to take the GIL. */
    if (shim_is_gil_mutex(m))
        t->gil_wait_ns += shim_mono_ns() - t0;
    else
        shim_account_handoff(t, t0, r == 0);
    lk_cond_reacquire(i, t);
    return r;
}

/*
 * CPython's take_gil() waits on its condition variable one switch interval
 * at a time (5 ms by default) with an absolute deadline, on CLOCK_MONOTONIC
 * or CLOCK_REALTIME depending on the build. In a CPython process such a
 * short timed wait is a GIL wait; the window 1-50 ms allows a tuned
 * sys.setswitchinterval and a late caller.
 */
static int shim_gil_wait(clockid_t clock, const struct timespec *abs, uint64_t now_mono)
{
    if (!shim_python || !abs)
        return 0;
    uint64_t deadline = (uint64_t)abs->tv_sec * 1000000000ull + (uint64_t)abs->tv_nsec;
    uint64_t now = now_mono;
    if (clock != CLOCK_MONOTONIC)
        now = shim_clock_ns(clock);
    else if (deadline > now_mono + 1000000000ull * 86400 * 365)
        now = shim_clock_ns(CLOCK_REALTIME); /* an epoch-based deadline: a realtime condvar */
    if (deadline <= now)
        return 0;
    uint64_t ahead = deadline - now;
    return ahead >= 1000000u && ahead <= 50000000u;
}

/*
 * The mutex a GIL wait releases is the GIL's own (take_gil's gil->mutex): remember it, once,
 * and with it the mutex of the forced switch, which sits after it in struct
 * _gil_runtime_state (pycore_gil.h: mutex, switch_cond, switch_mutex since 3.2).
 */
/* The generated layouts (all agree on this offset: tests/unit/test_pystack.c checks). */
static const struct py_layout shim_py_layouts[] = {
#include "sampler/pylayouts/py311.inc"
};

static inline void shim_gil_mutex_seen(const pthread_mutex_t *m)
{
    struct prof_shm_header *h = shim_hdr;
    if (!h || __atomic_load_n(&h->gil_mutex, __ATOMIC_RELAXED) == (uintptr_t)m)
        return;
    __atomic_store_n(&h->gil_switch_mutex, (uintptr_t)m + (uintptr_t)shim_py_layouts[0].gil_switch_mutex_from_mutex, __ATOMIC_RELAXED);
    __atomic_store_n(&h->gil_mutex, (uintptr_t)m, __ATOMIC_RELAXED);
}

static inline void shim_account_cond(struct prof_shm_thread *t, uint64_t t0, int gil, int acquired)
{
    if (gil)
        t->gil_wait_ns += shim_mono_ns() - t0;
    else
        shim_account_handoff(t, t0, acquired);
}

SHIM_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                       const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.cond_timedwait)) {
        shim_resolve();
        if (!shim_real.cond_timedwait)
            return fallback_cond_wait(m);
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.cond_timedwait(c, m, abs);
    uint64_t t0 = shim_mono_ns();
    /* A timed wait's clock is a condattr we cannot read: the deadline's magnitude tells. */
    int gil = shim_gil_wait(CLOCK_MONOTONIC, abs, t0);
    if (gil)
        shim_gil_mutex_seen(m);
    int i = lk_cond_release(m, t, t0);
    int r = shim_real.cond_timedwait(c, m, abs);
    shim_account_cond(t, t0, gil, r == 0 || r == ETIMEDOUT);
    lk_cond_reacquire(i, t);
    return r;
}

SHIM_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                       const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.cond_clockwait)) {
        shim_resolve();
        if (!shim_real.cond_clockwait)
            return fallback_cond_wait(m);
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.cond_clockwait(c, m, clock, abs);
    uint64_t t0 = shim_mono_ns();
    int gil = shim_gil_wait(clock, abs, t0);
    if (gil)
        shim_gil_mutex_seen(m);
    int i = lk_cond_release(m, t, t0);
    int r = shim_real.cond_clockwait(c, m, clock, abs);
    shim_account_cond(t, t0, gil, r == 0 || r == ETIMEDOUT);
    lk_cond_reacquire(i, t);
    return r;
}

/* Read and write acquisitions are timed apart: a write-heavy rwlock serializes like a mutex. */
static int fallback_rwlock(pthread_rwlock_t *l, int wr)
{
    int r;
    while ((r = wr ? pthread_rwlock_trywrlock(l) : pthread_rwlock_tryrdlock(l)) == EBUSY)
        sched_yield();
    return r;
}

static __attribute__((noinline)) int shim_rwlock_slow(struct prof_shm_thread *t, pthread_rwlock_t *l,
                                                      int wr, int which, clockid_t clock,
                                                      const struct timespec *abs, uintptr_t pc)
{
    uint64_t t0 = shim_mono_ns();
    int r;
    if (which == 0)
        r = wr ? shim_real.rw_wrlock(l) : shim_real.rw_rdlock(l);
    else if (which == 1)
        r = wr ? shim_real.rw_timedwrlock(l, abs) : shim_real.rw_timedrdlock(l, abs);
    else
        r = wr ? shim_real.rw_clockwrlock(l, clock, abs) : shim_real.rw_clockrdlock(l, clock, abs);
    uint64_t dt = shim_mono_ns() - t0;
    t->lock_wait_ns += dt;
    if (wr)
        t->rwlock_wr_wait_ns += dt;
    else
        t->rwlock_rd_wait_ns += dt;
    t->lock_contended++;
    if (r == 0) {
        t->lock_acquisitions++;
        int saved = errno;
        lk_contended(l, PROF_LOCK_RWLOCK, pc, dt);
        errno = saved;
    }
    return r;
}

#define SHIM_RWLOCK(fname, field, wr, which, params, args, clock, abs)                   \
    SHIM_EXPORT int fname params                                                         \
    {                                                                                    \
        if (SHIM_UNLIKELY(!shim_real.field)) {                                           \
            shim_resolve();                                                              \
            if (!shim_real.field)                                                        \
                return fallback_rwlock(l, wr);                                           \
        }                                                                                \
        struct prof_shm_thread *t = shim_self();                                       \
        if (!t)                                                                          \
            return shim_real.field args;                                                 \
        int r = wr ? pthread_rwlock_trywrlock(l) : pthread_rwlock_tryrdlock(l);          \
        if (SHIM_LIKELY(r != EBUSY)) {                                                   \
            if (r == 0) {                                                                \
                t->lock_acquisitions++;                                                  \
                lk_fast_other(l);                                                        \
            }                                                                            \
            return r;                                                                    \
        }                                                                                \
        return shim_rwlock_slow(t, l, wr, which, clock, abs, SHIM_CALLER());             \
    }

SHIM_RWLOCK(pthread_rwlock_rdlock, rw_rdlock, 0, 0, (pthread_rwlock_t * l), (l), 0, NULL)
SHIM_RWLOCK(pthread_rwlock_wrlock, rw_wrlock, 1, 0, (pthread_rwlock_t * l), (l), 0, NULL)
SHIM_RWLOCK(pthread_rwlock_timedrdlock, rw_timedrdlock, 0, 1,
            (pthread_rwlock_t * l, const struct timespec *abs), (l, abs), 0, abs)
SHIM_RWLOCK(pthread_rwlock_timedwrlock, rw_timedwrlock, 1, 1,
            (pthread_rwlock_t * l, const struct timespec *abs), (l, abs), 0, abs)
SHIM_RWLOCK(pthread_rwlock_clockrdlock, rw_clockrdlock, 0, 2,
            (pthread_rwlock_t * l, clockid_t clock, const struct timespec *abs), (l, clock, abs),
            clock, abs)
SHIM_RWLOCK(pthread_rwlock_clockwrlock, rw_clockwrlock, 1, 2,
            (pthread_rwlock_t * l, clockid_t clock, const struct timespec *abs), (l, clock, abs),
            clock, abs)

/* A spinning wait is on CPU: counted as lock wait (it is serialization) and in spin_wait_ns apart. */
SHIM_EXPORT int pthread_spin_lock(pthread_spinlock_t *l)
{
    if (SHIM_UNLIKELY(!shim_real.spin_lock)) {
        shim_resolve();
        if (!shim_real.spin_lock) {
            while (pthread_spin_trylock(l) == EBUSY)
                __builtin_ia32_pause();
            return 0;
        }
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.spin_lock(l);
    int r = pthread_spin_trylock(l);
    if (SHIM_LIKELY(r != EBUSY)) {
        if (r == 0) {
            t->lock_acquisitions++;
            lk_fast_other((const void *)l);
        }
        return r;
    }
    uint64_t t0 = shim_mono_ns();
    r = shim_real.spin_lock(l);
    uint64_t dt = shim_mono_ns() - t0;
    t->lock_wait_ns += dt;
    t->spin_wait_ns += dt;
    t->lock_contended++;
    t->lock_acquisitions++;
    int saved = errno;
    lk_contended((const void *)l, PROF_LOCK_SPIN, SHIM_CALLER(), dt);
    errno = saved;
    return r;
}

/*
 * A barrier waits for the other threads to arrive, a step of work handed round, not a lock
 * anyone holds: hand-off wait, idle. Untimed, it read as off-CPU time no call explained, and
 * 32 threads meeting at a barrier each step looked like a program waiting on I/O.
 */
SHIM_EXPORT int pthread_barrier_wait(pthread_barrier_t *b)
{
    if (SHIM_UNLIKELY(!shim_real.barrier_wait)) {
        shim_resolve();
        if (!shim_real.barrier_wait)
            return ENOSYS; /* no libc defines a program's barrier without it */
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.barrier_wait(b);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.barrier_wait(b);
    t->handoff_wait_ns += shim_mono_ns() - t0;
    return r;
}

/* Waiting for another thread to finish is idle, not contention: join_wait_ns, never lock_wait_ns. */
SHIM_EXPORT int pthread_join(pthread_t th, void **ret)
{
    shim_resolve();
    struct prof_shm_thread *t = shim_self();
    if (!shim_real.join)
        return pthread_clockjoin_np(th, ret, CLOCK_MONOTONIC, NULL);
    if (!t)
        return shim_real.join(th, ret);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.join(th, ret);
    t->join_wait_ns += shim_mono_ns() - t0;
    return r;
}

SHIM_EXPORT int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *abs)
{
    shim_resolve();
    struct prof_shm_thread *t = shim_self();
    if (!shim_real.timedjoin)
        return ENOSYS;
    if (!t)
        return shim_real.timedjoin(th, ret, abs);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.timedjoin(th, ret, abs);
    t->join_wait_ns += shim_mono_ns() - t0;
    return r;
}

SHIM_EXPORT int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clock,
                                     const struct timespec *abs)
{
    shim_resolve();
    struct prof_shm_thread *t = shim_self();
    if (!shim_real.clockjoin)
        return ENOSYS;
    if (!t)
        return shim_real.clockjoin(th, ret, clock, abs);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.clockjoin(th, ret, clock, abs);
    t->join_wait_ns += shim_mono_ns() - t0;
    return r;
}
