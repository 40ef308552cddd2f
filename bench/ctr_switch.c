/* ctr_switch.c: what per-task perf counters add to a context switch: a pinned pipe ping-pong timed with 0 to 4 software counters on each side, as poolprof's observer opens them.
 *
 * usage: ctr_switch NEVENTS [GROUP]  -- 100,000 round trips (200,000 switches) between a parent
 * and its child on CPU 0; NEVENTS of context switches, migrations, minor and major faults
 * opened per task from the parent (the child's before it starts), grouped under one leader when
 * GROUP is 1. Prints the round trips' wall time. bench/RESULTS.md: "Perf counters: what they cost". */
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int open_sw(pid_t pid, unsigned long long config, int group)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = config;
    a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
    return (int)syscall(SYS_perf_event_open, &a, pid, -1, group, PERF_FLAG_FD_CLOEXEC);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int nev = argc > 1 ? atoi(argv[1]) : 0, grouped = argc > 2 && atoi(argv[2]) == 1;
    const unsigned long long config[4] = {PERF_COUNT_SW_CONTEXT_SWITCHES, PERF_COUNT_SW_CPU_MIGRATIONS,
                                          PERF_COUNT_SW_PAGE_FAULTS_MIN, PERF_COUNT_SW_PAGE_FAULTS_MAJ};
    long n = 100000;
    int ab[2], ba[2], go[2];
    char c = 'x';
    cpu_set_t one;

    if (nev < 0 || nev > 4) {
        fprintf(stderr, "usage: ctr_switch NEVENTS(0-4) [GROUP]\n");
        return 2;
    }
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0 || pipe(ab) || pipe(ba) || pipe(go)) {
        perror("ctr_switch");
        return 2;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        for (long i = 0; i < n; i++)
            if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
                _exit(3);
        _exit(0);
    }
    for (int side = 0; side < 2; side++) {
        int lead = -1;
        for (int k = 0; k < nev; k++) {
            int fd = open_sw(side ? getpid() : pid, config[k], grouped ? lead : -1);
            if (fd < 0) {
                perror("perf_event_open");
                return 2;
            }
            if (k == 0)
                lead = fd;
        }
    }
    double t = now();
    if (write(go[1], "g", 1) != 1)
        return 3;
    for (long i = 0; i < n; i++)
        if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
            return 3;
    waitpid(pid, NULL, 0);
    printf("%d events%s: %.3f s\n", nev, grouped ? " grouped" : "", now() - t);
    return 0;
}
