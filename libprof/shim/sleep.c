/* sleep.c: sleeps (nanosleep, clock_nanosleep, usleep, sleep), each timed and counted: separate timed waits, which workers could take side by side. */
#include <errno.h>
#include <unistd.h>

#include "shim.h"

/*
 * Why a sleep is counted one call at a time: 50 sleeps of 20 ms can overlap 50-fold on 50
 * workers, one sleep of 1 s cannot overlap at all, and only the count tells them apart. glibc's
 * sleep() and usleep() reach the kernel through its own internal nanosleep, never through the
 * interposed one, so each call of the program is counted once. Nothing here allocates or locks:
 * a signal handler may sleep too. errno is the real call's.
 */

static inline void shim_sleep_account(struct prof_shm_thread *t, uint64_t t0)
{
    uint64_t dt = shim_mono_ns() - t0;
    t->sleep_ns += dt;
    t->sleeps++;
}

static int raw_nanosleep(const struct timespec *req, struct timespec *rem)
{
    return (int)syscall(SYS_nanosleep, req, rem);
}

SHIM_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    shim_resolve();
    if (!shim_real.nanosleep)
        return raw_nanosleep(req, rem);
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.nanosleep(req, rem);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.nanosleep(req, rem);
    int saved = errno;
    shim_sleep_account(t, t0);
    errno = saved;
    return r;
}

/* Returns the error number itself (POSIX), not -1 and errno. */
SHIM_EXPORT int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem)
{
    shim_resolve();
    if (!shim_real.clock_nanosleep) {
        int saved = errno;
        long r = syscall(SYS_clock_nanosleep, clk, flags, req, rem);
        int e = r < 0 ? errno : 0;
        errno = saved;
        return e;
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.clock_nanosleep(clk, flags, req, rem);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.clock_nanosleep(clk, flags, req, rem);
    int saved = errno;
    shim_sleep_account(t, t0);
    errno = saved;
    return r;
}

SHIM_EXPORT int usleep(useconds_t us)
{
    shim_resolve();
    if (!shim_real.usleep) {
        struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
        return raw_nanosleep(&ts, NULL);
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.usleep(us);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.usleep(us);
    int saved = errno;
    shim_sleep_account(t, t0);
    errno = saved;
    return r;
}

SHIM_EXPORT unsigned int sleep(unsigned int s)
{
    shim_resolve();
    if (!shim_real.sleep) {
        struct timespec ts = {(time_t)s, 0}, rem = {0, 0};
        if (raw_nanosleep(&ts, &rem) != 0)
            return (unsigned int)rem.tv_sec + (rem.tv_nsec > 0);
        return 0;
    }
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.sleep(s);
    uint64_t t0 = shim_mono_ns();
    unsigned int r = shim_real.sleep(s);
    int saved = errno;
    shim_sleep_account(t, t0);
    errno = saved;
    return r;
}
