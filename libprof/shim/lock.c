/* lock.c: time blocked in mutexes, semaphores and condition variables, per thread; CPython's GIL apart. */
#include <errno.h>
#include <sched.h>

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

static int fallback_sem_wait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    int saved = errno;
    while (sem_trywait(s) != 0) {
        if (errno != EAGAIN)
            return -1;
        if (abs && shim_clock_ns(clock) >=
                       (uint64_t)abs->tv_sec * 1000000000ull + (uint64_t)abs->tv_nsec) {
            errno = ETIMEDOUT;
            return -1;
        }
        sched_yield();
    }
    errno = saved;
    return 0;
}

/* POSIX allows a condition wait to wake spuriously: that is the fallback. */
static int fallback_cond_wait(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
    sched_yield();
    return fallback_mutex_lock(m, NULL);
}

static inline void shim_account(struct prof_shm_thread *t, uint64_t t0, int acquired)
{
    t->lock_wait_ns += shim_mono_ns() - t0;
    t->lock_contended++;
    if (acquired)
        t->lock_acquisitions++;
}

SHIM_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (SHIM_UNLIKELY(!shim_real.mutex_lock)) {
        shim_resolve();
        if (!shim_real.mutex_lock)
            return fallback_mutex_lock(m, NULL);
    }
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.mutex_lock(m);
    int r = pthread_mutex_trylock(m);
    if (SHIM_LIKELY(r != EBUSY)) {
        if (r == 0 || r == EOWNERDEAD)
            t->lock_acquisitions++;
        return r;
    }
    uint64_t t0 = shim_mono_ns();
    r = shim_real.mutex_lock(m);
    shim_account(t, t0, r == 0 || r == EOWNERDEAD);
    return r;
}

SHIM_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.mutex_timedlock)) {
        shim_resolve();
        if (!shim_real.mutex_timedlock)
            return fallback_mutex_lock(m, abs);
    }
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.mutex_timedlock(m, abs);
    int r = pthread_mutex_trylock(m);
    if (SHIM_LIKELY(r != EBUSY)) {
        if (r == 0 || r == EOWNERDEAD)
            t->lock_acquisitions++;
        return r;
    }
    uint64_t t0 = shim_mono_ns();
    r = shim_real.mutex_timedlock(m, abs);
    shim_account(t, t0, r == 0 || r == EOWNERDEAD);
    return r;
}

/* CPython's threading.Lock (and queue, Event, Condition built on it) waits here. */
SHIM_EXPORT int sem_wait(sem_t *s)
{
    if (SHIM_UNLIKELY(!shim_real.sem_wait)) {
        shim_resolve();
        if (!shim_real.sem_wait)
            return fallback_sem_wait(s, CLOCK_REALTIME, NULL);
    }
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.sem_wait(s);
    int saved = errno;
    if (SHIM_LIKELY(sem_trywait(s) == 0)) {
        t->lock_acquisitions++;
        return 0;
    }
    errno = saved;
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.sem_wait(s);
    shim_account(t, t0, r == 0);
    return r;
}

SHIM_EXPORT int sem_timedwait(sem_t *s, const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.sem_timedwait)) {
        shim_resolve();
        if (!shim_real.sem_timedwait)
            return fallback_sem_wait(s, CLOCK_REALTIME, abs);
    }
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.sem_timedwait(s, abs);
    int saved = errno;
    if (SHIM_LIKELY(sem_trywait(s) == 0)) {
        t->lock_acquisitions++;
        return 0;
    }
    errno = saved;
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.sem_timedwait(s, abs);
    shim_account(t, t0, r == 0);
    return r;
}

SHIM_EXPORT int sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.sem_clockwait)) {
        shim_resolve();
        if (!shim_real.sem_clockwait)
            return fallback_sem_wait(s, clock, abs);
    }
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.sem_clockwait(s, clock, abs);
    int saved = errno;
    if (SHIM_LIKELY(sem_trywait(s) == 0)) {
        t->lock_acquisitions++;
        return 0;
    }
    errno = saved;
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.sem_clockwait(s, clock, abs);
    shim_account(t, t0, r == 0);
    return r;
}

SHIM_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (SHIM_UNLIKELY(!shim_real.cond_wait)) {
        shim_resolve();
        if (!shim_real.cond_wait)
            return fallback_cond_wait(m);
    }
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.cond_wait(c, m);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.cond_wait(c, m);
    shim_account(t, t0, r == 0);
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

static inline void shim_account_cond(struct prof_shm_thread *t, uint64_t t0, int gil, int acquired)
{
    if (gil)
        t->gil_wait_ns += shim_mono_ns() - t0;
    else
        shim_account(t, t0, acquired);
}

SHIM_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                       const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.cond_timedwait)) {
        shim_resolve();
        if (!shim_real.cond_timedwait)
            return fallback_cond_wait(m);
    }
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.cond_timedwait(c, m, abs);
    uint64_t t0 = shim_mono_ns();
    /* A timed wait's clock is a condattr we cannot read: the deadline's magnitude tells. */
    int gil = shim_gil_wait(CLOCK_MONOTONIC, abs, t0);
    int r = shim_real.cond_timedwait(c, m, abs);
    shim_account_cond(t, t0, gil, r == 0 || r == ETIMEDOUT);
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
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.cond_clockwait(c, m, clock, abs);
    uint64_t t0 = shim_mono_ns();
    int gil = shim_gil_wait(clock, abs, t0);
    int r = shim_real.cond_clockwait(c, m, clock, abs);
    shim_account_cond(t, t0, gil, r == 0 || r == ETIMEDOUT);
    return r;
}
