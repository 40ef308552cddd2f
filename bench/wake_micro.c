/* wake_micro.c: the CPU cost of one bare timer wake-up on this machine, the floor under any sampler that wakes per tick. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * usage: wake_micro [HZ] [SECONDS]
 * One spinning thread per online CPU (as under a CPU-bound target), and a waker that
 * does what the sampler's tracer does between ticks and nothing else: a one-shot
 * absolute timer signalled to the thread, re-armed after it fired, breaking a
 * blocking waitpid() on a sleeping child, with the same 20 ms watchdog, at SCHED_FIFO
 * where allowed. Prints
 * "wake_us=<CPU us per wake-up> wakes=<n>": the waker's own CPU time per wake-up.
 */
static atomic_int stop;

static void *spin(void *arg)
{
    volatile unsigned long x = (unsigned long)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        for (int i = 0; i < 100000; i++)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
    return NULL;
}

static void on_sig(int sig)
{
    (void)sig;
}

static uint64_t ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int hz = argc > 1 ? atoi(argv[1]) : 1000;
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    if (hz < 1 || secs <= 0) {
        fprintf(stderr, "usage: wake_micro [HZ] [SECONDS]\n");
        return 2;
    }
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t *t = calloc((size_t)ncpu, sizeof *t);
    for (long i = 0; i < ncpu; i++)
        pthread_create(&t[i], NULL, spin, (void *)i);

    struct sched_param sp = {.sched_priority = 1};
    pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGRTMIN);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sigaction(SIGRTMIN, &sa, NULL);
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGRTMIN;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t tm;
    if (timer_create(CLOCK_MONOTONIC, &sev, &tm) != 0) {
        perror("wake_micro: timer_create");
        return 2;
    }
    /* As in the sampler: a signal landing before waitpid() blocks is lost, and a periodic
     * watchdog (never re-set, so it costs no reprogramming) ends that wait. */
    timer_t wd;
    if (timer_create(CLOCK_MONOTONIC, &sev, &wd) == 0) {
        struct itimerspec w = {{0, 20000000}, {0, 20000000}};
        timer_settime(wd, 0, &w, NULL);
    }
    uint64_t period = 1000000000ULL / (uint64_t)hz, t0 = ns(CLOCK_MONOTONIC), c0 = ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t end = t0 + (uint64_t)(secs * 1e9), d = t0, wakes = 0;
    while ((d += period) < end) {
        struct itimerspec its = {0};
        its.it_value.tv_sec = (time_t)(d / 1000000000ULL);
        its.it_value.tv_nsec = (long)(d % 1000000000ULL);
        timer_settime(tm, TIMER_ABSTIME, &its, NULL);
        int st;
        waitpid(child, &st, 0); /* broken by the signal (EINTR) */
        wakes++;
    }
    uint64_t c1 = ns(CLOCK_THREAD_CPUTIME_ID);
    atomic_store(&stop, 1);
    for (long i = 0; i < ncpu; i++)
        pthread_join(t[i], NULL);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    printf("wake_us=%.2f wakes=%llu\n", (double)(c1 - c0) / 1000.0 / (double)wakes, (unsigned long long)wakes);
    return 0;
}
