/* sem.c: time blocked in semaphores, told apart as lock waits, hand-offs from another thread and joins, per thread. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/*
 * As for mutexes (lock.c): an uncontended take is a trywait and a few increments, the clock
 * is read only around a wait that blocks, and the fallbacks below run only while this very
 * thread resolves the real symbols.
 */

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

/*
 * fork child: the pending signals counted in the parent are its own. A semaphore the two
 * share (multiprocessing's) is taken in the parent too, and the child's copy of the count
 * would make its next wait there a hand-off. Between fork and the child's code: no allocation.
 */
/* Set before the first post is counted: a fork child clears the table only if the parent wrote
 * it (a memset of untouched pages costs a fork child a page fault each). */
static int sem_dirty;

void shim_sem_fork_child(void)
{
    if (__atomic_load_n(&sem_dirty, __ATOMIC_ACQUIRE)) {
        memset(sem_signalled, 0, sizeof sem_signalled);
        sem_dirty = 0;
    }
}

static inline uint64_t *sem_signal_slot(const sem_t *s)
{
    return &sem_signalled[lk_hash(s) % SEM_SIGNALLED];
}

/* A post by a thread that does not hold s (join: a sentinel's, ending its thread): one more
 * pending signal; another address's count gives way. */
static inline void sem_signal_posted(const sem_t *s, int join)
{
    if (SHIM_UNLIKELY(!__atomic_load_n(&sem_dirty, __ATOMIC_RELAXED)))
        __atomic_store_n(&sem_dirty, 1, __ATOMIC_RELEASE);
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

/* The uncontended take every sem_*wait tries first: 1 when it took the semaphore (errno kept either way). */
static inline int sem_wait_fast(struct prof_shm_thread *t, sem_t *s)
{
    int saved = errno;
    if (SHIM_LIKELY(shim_real.sem_trywait(s) == 0)) {
        t->lock_acquisitions++;
        sem_took_fast(t, s);
        return 1;
    }
    errno = saved;
    return 0;
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
    if (r != 0 && errno == ETIMEDOUT) {
        /* A timed wait that ran out (Event.wait(0.03), a lock's acquire(timeout=)): nobody
         * handed anything over, and nothing was taken; a tick of a polling loop, not contention. */
        t->handoff_wait_ns += t1 - t0;
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
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.sem_wait(s);
    if (sem_wait_fast(t, s))
        return 0;
    return shim_sem_slow(t, s, 0, 0, NULL, SHIM_CALLER());
}

SHIM_EXPORT int sem_timedwait(sem_t *s, const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.sem_timedwait)) {
        shim_resolve();
        if (!shim_real.sem_timedwait)
            return fallback_sem_wait(s, CLOCK_REALTIME, abs);
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.sem_timedwait(s, abs);
    if (sem_wait_fast(t, s))
        return 0;
    return shim_sem_slow(t, s, 1, 0, abs, SHIM_CALLER());
}

SHIM_EXPORT int sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    if (SHIM_UNLIKELY(!shim_real.sem_clockwait)) {
        shim_resolve();
        if (!shim_real.sem_clockwait)
            return fallback_sem_wait(s, clock, abs);
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.sem_clockwait(s, clock, abs);
    if (sem_wait_fast(t, s))
        return 0;
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
    struct prof_shm_thread *t = shim_self();
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
    struct prof_shm_thread *t = shim_self();
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
