/* lock.c: time blocked in mutexes, semaphores and condition variables, per thread; CPython's GIL apart. */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "py311_offsets.h"
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

/*
 * Only while this thread resolves the real symbols (dlsym reentered through a preloaded
 * allocator). sem_trywait and sem_post have no other public entry, so these follow glibc's
 * own (since 2.21, 64-bit atomics): the low word of the first 8 bytes is the value, the high
 * word the number of waiters, then the private flag.
 */
struct glibc_new_sem {
    uint64_t data;
    int private;
    int pad;
};

static int fallback_sem_trywait(sem_t *s)
{
    struct glibc_new_sem *n = (struct glibc_new_sem *)s;
    uint64_t d = __atomic_load_n(&n->data, __ATOMIC_RELAXED);
    while ((uint32_t)d != 0)
        if (__atomic_compare_exchange_n(&n->data, &d, d - 1, 1, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return 0;
    errno = EAGAIN;
    return -1;
}

static int fallback_sem_post(sem_t *s)
{
    struct glibc_new_sem *n = (struct glibc_new_sem *)s;
    uint64_t d = __atomic_load_n(&n->data, __ATOMIC_RELAXED);
    do {
        if ((uint32_t)d == SEM_VALUE_MAX) {
            errno = EOVERFLOW;
            return -1;
        }
    } while (!__atomic_compare_exchange_n(&n->data, &d, d + 1, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (d >> 32)
        syscall(SYS_futex, &n->data, FUTEX_WAKE | n->private, 1); /* the value word; private is 0 or FUTEX_PRIVATE_FLAG */
    return 0;
}

static int fallback_sem_wait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    int saved = errno;
    while (fallback_sem_trywait(s) != 0) {
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

static inline void shim_account(struct prof_shm_thread *t, uint64_t t0, int acquired)
{
    t->lock_wait_ns += shim_mono_ns() - t0;
    t->lock_contended++;
    if (acquired)
        t->lock_acquisitions++;
}

/*
 * The per-lock table. A lock enters h->locks[] (CAS on addr) at its first
 * contended acquisition. The fast paths look it up in a private, dense copy
 * of the addresses (lk_addr): one load when no lock was ever contended, a
 * hash and a probe or two otherwise. Mutex figures are updated by the
 * thread holding the mutex (so plain adds); other kinds use atomic adds.
 */
#define LK_PROBES 8
#define LK_SITES 4

struct lk_priv {
    int32_t owner;        /* tid holding it (mutex), 0 if none seen */
    int32_t last_owner;
    uint32_t depth;       /* recursive levels held by owner */
    uint64_t t_acq;
    uintptr_t site_pc[LK_SITES];
    uint64_t site_wait[LK_SITES];
};

static uintptr_t lk_addr[PROF_SHM_MAX_LOCKS];
static struct lk_priv lk_priv[PROF_SHM_MAX_LOCKS];
static int lk_any;

void shim_lock_fork_child(void)
{
    /* The child's record starts with an empty table. */
    memset(lk_addr, 0, sizeof lk_addr);
    memset(lk_priv, 0, sizeof lk_priv);
    lk_any = 0;
}

static inline unsigned lk_hash(const void *a)
{
    uint64_t x = (uint64_t)(uintptr_t)a;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return (unsigned)(x >> 40) % PROF_SHM_MAX_LOCKS;
}

static inline int lk_lookup(const void *a)
{
    if (SHIM_LIKELY(!__atomic_load_n(&lk_any, __ATOMIC_RELAXED)))
        return -1;
    unsigned i = lk_hash(a);
    for (int k = 0; k < LK_PROBES; k++, i = (i + 1) % PROF_SHM_MAX_LOCKS) {
        uintptr_t v = __atomic_load_n(&lk_addr[i], __ATOMIC_ACQUIRE);
        if (v == (uintptr_t)a)
            return (int)i;
        if (!v)
            return -1;
    }
    return -1;
}

static int lk_claim(const void *a, uint32_t kind)
{
    struct prof_shm_header *h = shim_hdr;
    if (!h)
        return -1;
    unsigned i = lk_hash(a);
    for (int k = 0; k < LK_PROBES; k++, i = (i + 1) % PROF_SHM_MAX_LOCKS) {
        struct prof_shm_lock *l = &h->locks[i];
        uint64_t cur = __atomic_load_n(&l->addr, __ATOMIC_ACQUIRE);
        if (cur == 0) {
            if (__atomic_compare_exchange_n(&l->addr, &cur, (uint64_t)(uintptr_t)a, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                l->kind = kind;
                /* Once per lock: how much of the process's CPU went by unwatched. */
                struct timespec ts;
                if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0)
                    l->claim_cpu_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
                cur = (uint64_t)(uintptr_t)a;
            }
        }
        if (cur == (uint64_t)(uintptr_t)a) {
            __atomic_store_n(&lk_addr[i], (uintptr_t)a, __ATOMIC_RELEASE);
            __atomic_store_n(&lk_any, 1, __ATOMIC_RELAXED);
            return (int)i;
        }
    }
    return -1;
}

/* Charge a contended wait to call site pc; the site with the most wait becomes site_pc. */
static void lk_site(int i, uintptr_t pc, uint64_t wait)
{
    struct lk_priv *p = &lk_priv[i];
    int j, best = 0;
    for (j = 0; j < LK_SITES; j++)
        if (p->site_pc[j] == pc || !p->site_pc[j])
            break;
    if (j == LK_SITES) {
        /* full: the least waited-on candidate gives way */
        j = 0;
        for (int k = 1; k < LK_SITES; k++)
            if (p->site_wait[k] < p->site_wait[j])
                j = k;
        p->site_wait[j] = 0;
    }
    p->site_pc[j] = pc;
    p->site_wait[j] += wait;
    for (int k = 1; k < LK_SITES; k++)
        if (p->site_wait[k] > p->site_wait[best])
            best = k;
    shim_hdr->locks[i].site_pc = p->site_pc[best];
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

static void lk_contended(const void *a, uint32_t kind, uintptr_t pc, uint64_t wait)
{
    int i = lk_claim(a, kind);
    if (i < 0)
        return;
    struct prof_shm_lock *l = &shim_hdr->locks[i];
    if (kind == PROF_LOCK_MUTEX) {
        l->contended++;
        l->wait_ns += wait;
    } else {
        __atomic_fetch_add(&l->contended, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&l->wait_ns, wait, __ATOMIC_RELAXED);
        __atomic_fetch_add(&l->acquisitions, 1, __ATOMIC_RELAXED);
    }
    lk_site(i, pc, wait);
}

/* An uncontended acquisition of a non-mutex lock: counted if the lock is in the table; its index, or -1. */
static inline int lk_fast_other(const void *a)
{
    int i = lk_lookup(a);
    if (SHIM_UNLIKELY(i >= 0))
        __atomic_fetch_add(&shim_hdr->locks[i].acquisitions, 1, __ATOMIC_RELAXED);
    return i;
}

#define SHIM_CALLER() ((uintptr_t)__builtin_return_address(0))

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
        struct prof_shm_thread *t = shim_tls_slot;
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
    struct prof_shm_thread *t = shim_tls_slot;
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
    struct prof_shm_thread *t = shim_tls_slot;
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

/*
 * A semaphore is a lock when the thread that took it posts it, and a signal when another
 * thread posts it (a queue's put, a condition's notify, a future's result, a thread's end):
 * a wait for a signal is idle waiting for a hand-off, not contention. Each thread keeps the
 * semaphores it took last (a ring: one long held while eight others come and go is
 * forgotten, and its post then reads as a signal); a post of one it does not hold counts a
 * pending signal for the semaphore in a small table keyed by address, and each take uses
 * one up: a blocked waiter that takes one was handed off to, and a take that did not block
 * consumes it too, so a later wake by the holder's post is not mistaken for a signal.
 * No locks, no allocation: sem_post may be called from a signal handler.
 *
 * One semaphore a thread does hold is a join in disguise: CPython's Thread takes its
 * thread-state lock as its very first semaphore (threading's _bootstrap_inner) and the
 * interpreter posts it as the thread ends, which is what Thread.join waits for. In a CPython
 * process a thread's first take (not the main thread's: its first is an import lock) is
 * such a sentinel, and a wait ended by its post is join wait.
 *
 * A semaphore in the lock table also gets its hold time, taking to posting by the same
 * thread, less the time that thread waited for a GIL meanwhile: a CPython thread holding a
 * threading.Lock while it waits for the GIL makes others wait on the lock (a convoy), which
 * processes, each with its own GIL, would not. That hold is the serial share a lock imposes.
 */
#define SEM_HELD 8
#define SEM_SIGNALLED 256
struct sem_hold {
    const sem_t *s;
    uint64_t t_acq;  /* 0: not in the lock table when taken, not timed */
    uint64_t gil_acq; /* the taker's GIL wait then */
};
static SHIM_TLS struct sem_hold sem_held[SEM_HELD];
static SHIM_TLS unsigned sem_held_next, sem_takes;
static SHIM_TLS const sem_t *sem_sentinel; /* this thread's thread-state lock, kept apart from the ring */
/* address << 16 | SEM_JOIN if the pending signals end a thread | pending signals; 0: none */
static uint64_t sem_signalled[SEM_SIGNALLED];
#define SEM_JOIN 0x8000ULL
#define SEM_COUNT 0x7fffULL

static inline uint64_t *sem_signal_slot(const sem_t *s)
{
    return &sem_signalled[lk_hash(s) % SEM_SIGNALLED];
}

/* A post by a thread that does not hold s (join: a sentinel's, ending its thread): one more
 * pending signal; another address's count gives way. */
static inline void sem_signal_posted(const sem_t *s, int join)
{
    uint64_t *slot = sem_signal_slot(s), key = (uint64_t)(uintptr_t)s << 16;
    uint64_t old = __atomic_load_n(slot, __ATOMIC_RELAXED), nv;
    do
        nv = ((old & ~0xffffULL) == key ? old + ((old & SEM_COUNT) < SEM_COUNT) : key | 1) | (join ? SEM_JOIN : 0);
    while (!__atomic_compare_exchange_n(slot, &old, nv, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* s was taken: use up one of its pending signals. 0: there was none; 1: a hand-off; 2: a join. */
static inline int sem_signal_taken(const sem_t *s)
{
    uint64_t *slot = sem_signal_slot(s), key = (uint64_t)(uintptr_t)s << 16;
    uint64_t old = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    while ((old & ~0xffffULL) == key && (old & SEM_COUNT))
        if (__atomic_compare_exchange_n(slot, &old, (old & SEM_COUNT) == 1 ? 0 : old - 1, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return old & SEM_JOIN ? 2 : 1;
    return 0;
}

/* Thread t took s; i: its index in the lock table (-1: not there); now: the clock if read. */
static inline void sem_took(const struct prof_shm_thread *t, const sem_t *s, int i, uint64_t now)
{
    if (SHIM_UNLIKELY(++sem_takes == 1) && shim_python && t->tid != shim_hdr->pid) {
        sem_sentinel = s;
        return;
    }
    struct sem_hold *h = &sem_held[sem_held_next++ % SEM_HELD];
    h->s = s;
    h->t_acq = i >= 0 ? (now ? now : shim_mono_ns()) : 0;
    h->gil_acq = t->gil_wait_ns;
}

/* An uncontended take: counted, and noted, if the semaphore is in the table; a pending signal is used up. */
static inline void sem_took_fast(const struct prof_shm_thread *t, const sem_t *s)
{
    int i = lk_fast_other(s);
    sem_signal_taken(s);
    sem_took(t, s, i, 0);
}

/* The blocking path of the sem_*wait family: timed, and the semaphore enters the table. */
static __attribute__((noinline)) int shim_sem_slow(struct prof_shm_thread *t, sem_t *s, int which,
                                                   clockid_t clock, const struct timespec *abs,
                                                   uintptr_t pc)
{
    uint64_t t0 = shim_mono_ns();
    int r = which == 0 ? shim_real.sem_wait(s)
            : which == 1 ? shim_real.sem_timedwait(s, abs)
                         : shim_real.sem_clockwait(s, clock, abs);
    uint64_t t1 = shim_mono_ns();
    int signalled = r == 0 ? sem_signal_taken(s) : 0;
    if (signalled) {
        if (signalled == 2)
            t->join_wait_ns += t1 - t0;
        else
            t->handoff_wait_ns += t1 - t0;
        sem_took(t, s, -1, 0);
        return r;
    }
    t->lock_wait_ns += t1 - t0;
    t->lock_contended++;
    if (r == 0) {
        t->lock_acquisitions++;
        int saved = errno;
        lk_contended(s, PROF_LOCK_SEM, pc, t1 - t0);
        sem_took(t, s, lk_lookup(s), t1);
        errno = saved;
    }
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
    if (SHIM_LIKELY(shim_real.sem_trywait(s) == 0)) {
        t->lock_acquisitions++;
        sem_took_fast(t, s);
        return 0;
    }
    errno = saved;
    return shim_sem_slow(t, s, 0, 0, NULL, SHIM_CALLER());
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
    if (SHIM_LIKELY(shim_real.sem_trywait(s) == 0)) {
        t->lock_acquisitions++;
        sem_took_fast(t, s);
        return 0;
    }
    errno = saved;
    return shim_sem_slow(t, s, 1, 0, abs, SHIM_CALLER());
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
    if (SHIM_LIKELY(shim_real.sem_trywait(s) == 0)) {
        t->lock_acquisitions++;
        sem_took_fast(t, s);
        return 0;
    }
    errno = saved;
    return shim_sem_slow(t, s, 2, clock, abs, SHIM_CALLER());
}

/* CPython's non-blocking acquire (every threading.Lock acquire tries it first): the taker is noted. */
SHIM_EXPORT int sem_trywait(sem_t *s)
{
    if (SHIM_UNLIKELY(!shim_real.sem_trywait)) {
        shim_resolve();
        if (!shim_real.sem_trywait)
            return fallback_sem_trywait(s);
    }
    int r = shim_real.sem_trywait(s);
    struct prof_shm_thread *t = shim_tls_slot;
    if (r == 0 && t)
        sem_took_fast(t, s);
    return r;
}

SHIM_EXPORT int sem_post(sem_t *s)
{
    if (SHIM_UNLIKELY(!shim_real.sem_post)) {
        shim_resolve();
        if (!shim_real.sem_post)
            return fallback_sem_post(s);
    }
    struct prof_shm_thread *t = shim_tls_slot;
    if (t) {
        int held = 0, sentinel = s == sem_sentinel;
        if (sentinel)
            sem_sentinel = NULL;
        for (unsigned k = 0; k < SEM_HELD && !sentinel; k++)
            if (sem_held[k].s == s) {
                struct sem_hold *h = &sem_held[k];
                int i = h->t_acq ? lk_lookup(s) : -1;
                if (i >= 0) {
                    uint64_t hold = shim_mono_ns() - h->t_acq, gil = t->gil_wait_ns - h->gil_acq;
                    __atomic_fetch_add(&shim_hdr->locks[i].hold_ns, hold > gil ? hold - gil : 0, __ATOMIC_RELAXED);
                }
                h->s = NULL;
                held = 1;
                break;
            }
        /* Counted before the post, so the waiter it wakes finds it. */
        if (!held)
            sem_signal_posted(s, sentinel);
    }
    return shim_real.sem_post(s);
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
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t)
        return shim_real.cond_wait(c, m);
    uint64_t t0 = shim_mono_ns();
    int i = lk_cond_release(m, t, t0);
    int r = shim_real.cond_wait(c, m);
    /* Under the GIL's switch mutex: drop_gil waiting for another thread to take the GIL. */
    if (shim_is_gil_mutex(m))
        t->gil_wait_ns += shim_mono_ns() - t0;
    else
        shim_account(t, t0, r == 0);
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
static inline void shim_gil_mutex_seen(const pthread_mutex_t *m)
{
    struct prof_shm_header *h = shim_hdr;
    if (!h || __atomic_load_n(&h->gil_mutex, __ATOMIC_RELAXED) == (uintptr_t)m)
        return;
    __atomic_store_n(&h->gil_switch_mutex, (uintptr_t)m + PY311_GIL_SWITCH_MUTEX_FROM_MUTEX, __ATOMIC_RELAXED);
    __atomic_store_n(&h->gil_mutex, (uintptr_t)m, __ATOMIC_RELAXED);
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
    struct prof_shm_thread *t = shim_tls_slot;
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
        struct prof_shm_thread *t = shim_tls_slot;                                       \
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
    struct prof_shm_thread *t = shim_tls_slot;
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

/* Waiting for another thread to finish is idle, not contention: join_wait_ns, never lock_wait_ns. */
SHIM_EXPORT int pthread_join(pthread_t th, void **ret)
{
    shim_resolve();
    struct prof_shm_thread *t = shim_tls_slot;
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
    struct prof_shm_thread *t = shim_tls_slot;
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
    struct prof_shm_thread *t = shim_tls_slot;
    if (!shim_real.clockjoin)
        return ENOSYS;
    if (!t)
        return shim_real.clockjoin(th, ret, clock, abs);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.clockjoin(th, ret, clock, abs);
    t->join_wait_ns += shim_mono_ns() - t0;
    return r;
}

static char *shim_fmt_hex(char *dst, uint64_t v)
{
    char tmp[17];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    dst = shim_stpcpy(dst, "0x");
    while (n)
        *dst++ = tmp[--n];
    *dst = '\0';
    return dst;
}

/*
 * libunwind's local get_proc_name reads the module's .symtab, so static
 * functions (the usual `worker`) resolve where dladdr (.dynsym only) fails.
 * Runs once per image at its end, outside the hot paths.
 */
void shim_lock_symbolise(struct prof_shm_header *h)
{
    unw_accessors_t *acc = NULL;
    /* libunwind reads files and takes locks: none of that is the target's. */
    struct prof_shm_thread *self = shim_tls_slot;
    shim_tls_slot = NULL;
    for (int i = 0; i < PROF_SHM_MAX_LOCKS; i++) {
        struct prof_shm_lock *l = &h->locks[i];
        if (!l->addr || !l->contended || !l->site_pc || l->site[0])
            continue;
        if (!acc)
            acc = unw_get_accessors(unw_local_addr_space);
        /* pc - 1: a call that ends its function returns past it. */
        uintptr_t pc = (uintptr_t)l->site_pc;
        char name[PROF_SHM_SITE_BYTES] = "";
        unw_word_t off = 0;
        if (acc && acc->get_proc_name &&
            acc->get_proc_name(unw_local_addr_space, pc - 1, name, 96, &off, NULL) == 0)
            off += 1;
        else
            name[0] = '\0';
        const char *mod = NULL;
        Dl_info info;
        const ElfW(Sym) *sym = NULL;
        struct link_map *lm = NULL;
        if (dladdr1((void *)(pc - 1), &info, (void **)&sym, RTLD_DL_SYMENT) && info.dli_fname) {
            mod = strrchr(info.dli_fname, '/');
            mod = mod ? mod + 1 : info.dli_fname;
            /*
             * libunwind takes the nearest symbol below pc whatever its size: in a stripped
             * binary a static function would wear the name of the exported one before it.
             * Its name is dropped when the dynamic symbol at the address it names is that
             * one and ends before pc (dladdr itself matches only symbols that cover pc).
             */
            Dl_info at;
            const ElfW(Sym) *named = NULL;
            if (name[0] && off > 0 && dladdr1((void *)(pc - off), &at, (void **)&named, RTLD_DL_SYMENT) && named &&
                at.dli_sname && (uintptr_t)at.dli_saddr == pc - off && strcmp(at.dli_sname, name) == 0 &&
                named->st_size && off - 1 >= named->st_size)
                name[0] = '\0';
            if (!name[0] && sym && info.dli_sname && info.dli_saddr) {
                size_t n = strlen(info.dli_sname);
                if (n > 95)
                    n = 95;
                memcpy(name, info.dli_sname, n);
                name[n] = '\0';
                off = pc - (uintptr_t)info.dli_saddr;
            } else if (!name[0] && dladdr1((void *)(pc - 1), &info, (void **)&lm, RTLD_DL_LINKMAP) && lm) {
                off = pc - (uintptr_t)lm->l_addr; /* the module's own address, as objdump shows it */
            }
        }
        char site[PROF_SHM_SITE_BYTES + 128];
        char *p = site;
        if (name[0]) {
            p = shim_stpcpy(p, name);
            p = shim_stpcpy(p, "+");
        }
        p = shim_fmt_hex(p, off);
        if (mod) {
            p = shim_stpcpy(p, " (");
            size_t room = (size_t)(site + sizeof site - p) - 2;
            size_t n = strlen(mod);
            if (n > room)
                n = room;
            memcpy(p, mod, n);
            p += n;
            p = shim_stpcpy(p, ")");
        }
        size_t n = (size_t)(p - site);
        if (n > PROF_SHM_SITE_BYTES - 1)
            n = PROF_SHM_SITE_BYTES - 1;
        memcpy(l->site, site, n);
        l->site[n] = '\0';
    }
    dlerror();
    shim_tls_slot = self;
}
