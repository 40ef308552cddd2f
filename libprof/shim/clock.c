/* clock.c: the shim's CLOCK_MONOTONIC read from the TSC, calibrated per thread against the vDSO, where the kernel's own clock is the TSC. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "shim.h"

/*
 * Every timed wrapper reads the clock twice and a stage marker pair twice: at
 * 24 ns a vDSO clock_gettime here, that was half of a marker pair's cost. A
 * bare rdtsc is 10 ns. Where the kernel keeps CLOCK_MONOTONIC on the TSC
 * (current_clocksource "tsc": it found the TSC constant and in step across
 * CPUs) the shim reads the TSC and converts it with a rate it measured against
 * the vDSO itself, so its figures stay CLOCK_MONOTONIC nanoseconds, comparable
 * with the monitor's and the sampler's.
 *
 * Per thread, no lock and no shared write: a thread's first readings come from
 * the vDSO, and the first one is its calibration base. Once CAL_MIN_NS have
 * passed, the rate is measured over that stretch (two reading pairs ~25 ns
 * apart in 10 ms: a few ppm) and the thread goes on from the TSC; every
 * shim_clock_span_ns it takes one vDSO reading again, measures the rate over the
 * span just ended (following NTP's slewing) and re-anchors there. A
 * re-anchor never steps back: it anchors at the later of the vDSO reading and
 * what the old rate says, so a duration across it is never negative (the
 * excess is a span's rate error, under a microsecond in test_clock, and the
 * next span's rate comes from vDSO readings alone). A signal handler whose wrapped call lands
 * inside a rewrite gets the vDSO's answer and leaves the anchor alone; one that
 * re-anchors between the loads of an interrupted reading bumps seq, and the
 * interrupted reading starts over.
 */

#define CAL_MIN_NS 10000000ull /* calibrate over at least 10 ms */

int shim_tsc_ok;
int shim_notsc; /* rdtsc faults here: no TSC, no vDSO clock */
uint64_t shim_clock_span_ns = 250000000ull;
SHIM_TLS struct shim_clock shim_clk;

void shim_clock_setup(int tsc)
{
#if defined(__x86_64__)
    /* A process started with rdtsc made to fault (PR_SET_TSC survives fork and exec). */
    int mode = 0;
    int saved = errno;
    if (syscall(SYS_prctl, PR_GET_TSC, &mode, 0, 0, 0) == 0 && mode == PR_TSC_SIGSEGV) {
        tsc = 0;
        __atomic_store_n(&shim_notsc, 1, __ATOMIC_RELAXED);
    }
    errno = saved;
    __atomic_store_n(&shim_tsc_ok, tsc, __ATOMIC_RELAXED);
#else
    (void)tsc;
#endif
}

/*
 * A thread that makes rdtsc fault (PR_SET_TSC, PR_TSC_SIGSEGV: record-and-replay
 * debuggers, sandboxes) must never have the shim execute one, nor the vDSO's
 * clock_gettime, which reads the TSC too: from before the call on, every thread of the
 * process asks the kernel. glibc's prctl is this same syscall.
 */
SHIM_EXPORT int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_TSC && a2 == PR_TSC_SIGSEGV) {
        __atomic_store_n(&shim_notsc, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&shim_tsc_ok, 0, __ATOMIC_SEQ_CST);
    }
    return (int)syscall(SYS_prctl, option, a2, a3, a4, a5);
}

/*
 * A vDSO reading paired with the TSC: the midpoint of the TSC before and after. A pair
 * that a preemption or an interrupt split is worth nothing: up to three tries, the
 * tightest kept (a clean pair spans ~60 ticks here).
 */
static uint64_t shim_clock_pair(uint64_t *tsc)
{
    uint64_t best_ns = 0, best_width = UINT64_MAX;
    for (int i = 0; i < 3 && best_width > 2000; i++) {
        uint64_t a = SHIM_RDTSC();
        uint64_t ns = shim_clock_ns(CLOCK_MONOTONIC);
        uint64_t b = SHIM_RDTSC();
        if (b - a < best_width) {
            best_width = b - a;
            best_ns = ns;
            *tsc = a + (b - a) / 2;
        }
    }
    return best_ns;
}

/* The anchor's rewrite, bracketed by seq: what a signal handler sees of it is flagged. */
static void shim_clock_set(struct shim_clock *c, uint64_t ref_tsc, uint64_t ref_ns, uint64_t tsc0,
                           uint64_t ns0, uint64_t mult, uint64_t span)
{
    c->seq++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    c->ref_tsc = ref_tsc;
    c->ref_ns = ref_ns;
    c->tsc0 = tsc0;
    c->ns0 = ns0;
    c->mult = mult;
    c->span = span;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    c->seq++;
}

/*
 * Is the kernel's CLOCK_MONOTONIC on the TSC (current_clocksource "tsc": it found the TSC
 * constant and in step across CPUs)? Read once per process, when a thread's first calibration
 * ends: an image that lives less than that (most of a fan-out's) never pays for the read.
 */
static int tsc_source; /* 0: not read yet; 1: the TSC; -1: another clock */

static int shim_tsc_source_ok(void)
{
    int v = __atomic_load_n(&tsc_source, __ATOMIC_RELAXED);
    if (!v) {
        char cs[32];
        int saved = errno;
        v = shim_read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource", cs, sizeof cs) > 0 &&
                    strcmp(cs, "tsc\n") == 0
                ? 1
                : -1;
        errno = saved;
        __atomic_store_n(&tsc_source, v, __ATOMIC_RELAXED);
    }
    return v > 0;
}

uint64_t shim_mono_slow(void)
{
    struct shim_clock *c = &shim_clk;
    if (c->seq & 1) /* a signal handler's call inside our own rewrite: leave it be */
        return shim_clock_ns(CLOCK_MONOTONIC);
    uint64_t tsc = 0, ns = shim_clock_pair(&tsc), mult = 0;
    if (c->ref_ns && tsc > c->ref_tsc && ns > c->ref_ns) {
        uint64_t dns = ns - c->ref_ns;
        if (!c->span && dns < CAL_MIN_NS)
            return ns; /* still calibrating: the vDSO's answer */
        if (!c->span && !shim_tsc_source_ok()) {
            __atomic_store_n(&shim_tsc_ok, 0, __ATOMIC_RELAXED); /* the vDSO from now on, every thread */
            return ns;
        }
        /* ns per tick, 32.32 fixed point */
        mult = (uint64_t)(((unsigned __int128)dns << 32) / (tsc - c->ref_tsc));
    }
    /* The first reading, a TSC or clock that did not advance, or a TSC outside 100 MHz-20 GHz
     * (not one to trust): a new base, and the vDSO until it is calibrated. */
    if (mult < (1ull << 32) / 20 || mult > (1ull << 32) * 10) {
        uint64_t out = c->ns0 > ns ? c->ns0 : ns;
        shim_clock_set(c, tsc, ns, c->tsc0, c->ns0, c->mult, 0);
        return out;
    }
    uint64_t out = ns;
    if (c->span) {
        uint64_t said = c->ns0 + (uint64_t)(((unsigned __int128)(tsc - c->tsc0) * c->mult) >> 32);
        if (said > out)
            out = said;
    }
    shim_clock_set(c, tsc, ns, tsc, out, mult, (uint64_t)(((unsigned __int128)shim_clock_span_ns << 32) / mult));
    return out;
}
