/* test_clock.c: the shim's TSC clock against the vDSO's CLOCK_MONOTONIC: agreement, never a step back, a thread of its own. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../libprof/shim/clock.c"
#include "../../libprof/shim/proc.c" /* shim_read_file: the clocksource is read when a calibration ends */

static uint64_t vdso_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fresh(int tsc, uint64_t span_ns)
{
    shim_clock_setup(tsc);
    shim_clock_span_ns = span_ns;
    memset(&shim_clk, 0, sizeof shim_clk);
}

/*
 * Reads the shim's clock for `ms` milliseconds, each reading between two vDSO readings:
 * how far outside that bracket it ever fell (the calibration error: a few ppm of the time
 * since the last anchor), how often it stepped below the reading before it, how many
 * times the thread re-anchored. No asserts: it also runs on a thread of its own.
 */
struct walk {
    unsigned n, anchors, backsteps;
    uint64_t worst;
};

static struct walk walk(unsigned ms)
{
    struct walk w = {0};
    uint64_t start = vdso_ns(), prev = 0, last_tsc0 = shim_clk.tsc0;
    while (vdso_ns() - start < ms * 1000000ull) {
        uint64_t before = vdso_ns();
        uint64_t t = shim_mono_ns();
        uint64_t after = vdso_ns();
        w.backsteps += t < prev;
        uint64_t off = t < before ? before - t : t > after ? t - after : 0;
        if (off > w.worst)
            w.worst = off;
        if (shim_clk.tsc0 != last_tsc0) {
            w.anchors++;
            last_tsc0 = shim_clk.tsc0;
        }
        prev = t;
        w.n++;
    }
    return w;
}

/* 10 µs: a first anchor's rate is measured over 10 ms (a few ppm); preemption between the
 * bracketing reads only widens the bracket. */
#define SLACK_NS 10000u

static void check(struct walk w)
{
    cr_log_info("%u readings, %u anchors, worst %llu ns off", w.n, w.anchors, (unsigned long long)w.worst);
    cr_assert_gt(w.n, 1000);
    cr_assert_eq(w.backsteps, 0, "the clock stepped back %u times", w.backsteps);
    cr_assert_leq(w.worst, SLACK_NS, "a reading %llu ns outside its vDSO bracket", (unsigned long long)w.worst);
}

static int have_tsc_clock(void)
{
    char cs[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) {
        if (!fgets(cs, sizeof cs, f))
            cs[0] = '\0';
        fclose(f);
    }
    return strcmp(cs, "tsc\n") == 0;
}

Test(clock, tsc_follows_vdso_across_reanchors)
{
    if (!have_tsc_clock())
        cr_skip_test("the kernel's clocksource is not the TSC: the shim reads the vDSO here");
    fresh(1, 20000000ull); /* re-anchor every 20 ms: several in the walk */
    cr_assert_eq(shim_clk.span, 0);
    uint64_t a = shim_mono_ns();
    cr_assert_eq(shim_clk.span, 0, "one reading cannot calibrate");
    cr_assert_neq(a, 0);
    struct walk w = walk(150);
    check(w);
    cr_assert_neq(shim_clk.span, 0, "calibrated after 10 ms");
    cr_assert_geq(w.anchors, 4, "re-anchored every 20 ms over 150 ms: %u", w.anchors);
    double ghz = (double)(1ull << 32) / (double)shim_clk.mult;
    cr_log_info("TSC %.4f GHz", ghz);
    cr_assert(ghz > 0.1 && ghz < 20);
}

Test(clock, durations_match_vdso)
{
    if (!have_tsc_clock())
        cr_skip_test("the kernel's clocksource is not the TSC: the shim reads the vDSO here");
    fresh(1, 250000000ull);
    check(walk(15)); /* calibrates */
    cr_assert_neq(shim_clk.span, 0);
    for (int i = 0; i < 5; i++) {
        uint64_t v0 = vdso_ns(), s0 = shim_mono_ns();
        struct timespec d = {0, 30000000};
        nanosleep(&d, NULL);
        uint64_t s1 = shim_mono_ns(), v1 = vdso_ns();
        double sd = (double)(s1 - s0), vd = (double)(v1 - v0);
        /* the shim's duration lies inside the vDSO's bracket, give or take 5 µs */
        cr_assert(sd <= vd + 5000 && sd >= vd - 5000 - 2000, "shim %.0f ns, vDSO %.0f ns", sd, vd);
    }
}

Test(clock, off_reads_the_vdso)
{
    fresh(0, 250000000ull);
    for (int i = 0; i < 1000; i++) {
        uint64_t before = vdso_ns(), t = shim_mono_ns(), after = vdso_ns();
        cr_assert(t >= before && t <= after);
    }
    cr_assert_eq(shim_clk.span, 0, "the TSC path was never taken");
    cr_assert_eq(shim_clk.ref_ns, 0);
}

struct other {
    uint64_t span_at_start, span_at_end;
    struct walk w;
};

static void *other_thread(void *arg)
{
    struct other *o = arg;
    o->span_at_start = shim_clk.span;
    o->w = walk(30);
    o->span_at_end = shim_clk.span;
    return NULL;
}

Test(clock, each_thread_calibrates_itself)
{
    if (!have_tsc_clock())
        cr_skip_test("the kernel's clocksource is not the TSC: the shim reads the vDSO here");
    fresh(1, 250000000ull);
    check(walk(15));
    cr_assert_neq(shim_clk.span, 0);
    pthread_t th;
    struct other o;
    cr_assert_eq(pthread_create(&th, NULL, other_thread, &o), 0);
    pthread_join(th, NULL);
    cr_assert_eq(o.span_at_start, 0, "a new thread starts uncalibrated");
    check(o.w);
    cr_assert_neq(o.span_at_end, 0, "and calibrates on its own");
}

Test(clock, inside_a_rewrite_reads_the_vdso)
{
    if (!have_tsc_clock())
        cr_skip_test("the kernel's clocksource is not the TSC: the shim reads the vDSO here");
    fresh(1, 250000000ull);
    check(walk(15));
    /* What a signal handler sees when it interrupts shim_clock_set: an odd seq. */
    shim_clk.seq |= 1;
    struct shim_clock before = shim_clk;
    for (int i = 0; i < 100; i++) {
        uint64_t v0 = vdso_ns(), t = shim_mono_ns(), v1 = vdso_ns();
        cr_assert(t >= v0 && t <= v1, "the vDSO's own answer");
    }
    cr_assert(memcmp(&before, &shim_clk, sizeof before) == 0, "the anchor left alone");
}
