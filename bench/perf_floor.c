/* perf_floor.c: runs a command under CPU-wide sampling events set up as poolprof's native stacks set them (user registers and stack per sample), their rings emptied unread: the target's cost of the kernel's sampling alone. */
/*
 * usage: perf_floor HZ STACK_BYTES CMD [ARGS...]
 * One cpu-clock event per CPU at HZ samples a second of CPU time, with a 1 MiB ring each,
 * handed back to the kernel unread whenever it may be half full (a full ring takes no more
 * copies, which would understate the cost): 3 times a second at 100 Hz, 32 at 1 kHz, the
 * wake-ups of a reader but as few as the ring allows. STACK_BYTES 0 samples the ip alone.
 * Exits with CMD's status (128+N when killed by signal N).
 * bench/ab.py runs it as "perffloor:HZ[:BYTES]", beside poolprof's own configurations.
 */

#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RING_PAGES 256 /* as poolprof's (libprof/sampler/perfstack.c) */

/* x86-64 ax..ip, r8..r15: poolprof's mask (libprof/sampler/perfstack.c). */
#define REGS_MASK (((1ULL << 9) - 1) | (0xffULL << 16))

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: perf_floor HZ STACK_BYTES CMD [ARGS...]\n");
        return 2;
    }
    long hz = atol(argv[1]), stack = atol(argv[2]);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (hz <= 0 || stack < 0 || ncpu <= 0) {
        fprintf(stderr, "perf_floor: bad HZ or STACK_BYTES\n");
        return 2;
    }
    struct perf_event_mmap_page **rings = calloc((size_t)ncpu, sizeof *rings);
    if (!rings) {
        perror("perf_floor: calloc");
        return 2;
    }
    for (long c = 0; c < ncpu; c++) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.size = sizeof a;
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_CPU_CLOCK;
        a.sample_period = 1000000000ULL / (uint64_t)hz;
        a.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                        (stack ? PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER : PERF_SAMPLE_IP);
        a.sample_regs_user = stack ? REGS_MASK : 0;
        a.sample_stack_user = (uint32_t)stack & ~7U;
        a.exclude_hv = 1;
        a.exclude_idle = 1;
        a.use_clockid = 1;
        a.clockid = CLOCK_MONOTONIC;
        int fd = (int)syscall(SYS_perf_event_open, &a, -1, (int)c, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "perf_floor: perf_event_open on CPU %ld: %s\n", c, strerror(errno));
            return 2;
        }
        rings[c] = mmap(NULL, (1 + RING_PAGES) * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (rings[c] == MAP_FAILED) {
            fprintf(stderr, "perf_floor: mmap: %s\n", strerror(errno));
            return 2;
        }
    }
    pid_t p = fork();
    if (p < 0) {
        perror("perf_floor: fork");
        return 2;
    }
    if (p == 0) {
        execvp(argv[3], argv + 3);
        _exit(127);
    }
    /* Half the ring's samples at HZ on a busy CPU, within 10-500 ms. */
    double per = (double)RING_PAGES * 4096 / (double)(stack + 256) / 2 / (double)hz;
    long drain_ns = per > 0.5 ? 500000000L : per < 0.01 ? 10000000L : (long)(per * 1e9);
    int st;
    for (;;) {
        pid_t w = waitpid(p, &st, WNOHANG);
        if (w == p)
            break;
        if (w < 0 && errno != EINTR)
            return 2;
        for (long c = 0; c < ncpu; c++)
            __atomic_store_n(&rings[c]->data_tail, __atomic_load_n(&rings[c]->data_head, __ATOMIC_ACQUIRE),
                             __ATOMIC_RELEASE);
        struct timespec ts = {0, drain_ns};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
