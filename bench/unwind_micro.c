/* unwind_micro.c: times the native unwinder on a thread spinning in a known stack: the stop window (capture) and the unwind per frame.
 * usage: unwind_micro [FIXTURE] [SAMPLES] [reader|evict]  -- FIXTURE defaults to build/tests/fixtures/known_stack, SAMPLES to 2000;
 * "reader" samples the thread blocked in read(2) instead of main (a thread stack: the full 64 KiB is copied);
 * "evict" writes 16 MiB between the copy and the unwind, as the workload does to the tracer's caches
 * between two ticks at 100 Hz: every unwind then starts with cold caches and TLB */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "prof.h"
#include "unwind.h"

static uint64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p)
{
    return v[(size_t)(p * (double)(n - 1))];
}

int main(int argc, char **argv)
{
    const char *fx = argc > 1 ? argv[1] : POOLPROF_BUILD_DIR "/tests/fixtures/known_stack";
    int N = argc > 2 ? atoi(argv[2]) : 2000;
    if (N < 10)
        N = 10;
    int out[2];
    if (pipe(out) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        execl(fx, fx, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char buf[16];
    if (read(out[0], buf, sizeof(buf)) <= 0) { /* main spins in level_c from here on */
        fprintf(stderr, "unwind_micro: %s did not start\n", fx);
        return 1;
    }
    pid_t tid = pid;
    int evict = argc > 3 && strcmp(argv[3], "evict") == 0;
    enum { EVICT_BYTES = 16 << 20 };
    unsigned char *junk = evict ? malloc(EVICT_BYTES) : NULL;
    if (evict && !junk)
        return 1;
    if (argc > 3 && strcmp(argv[3], "reader") == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d)))
            if (atoi(de->d_name) > 0 && atoi(de->d_name) != pid)
                tid = atoi(de->d_name);
        if (d)
            closedir(d);
        usleep(100000); /* let it reach read(2) */
    }
    struct prof_unw *u;
    int rc = prof_unw_open(pid, &u);
    if (rc < 0 || ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
        fprintf(stderr, "unwind_micro: %s\n", rc < 0 ? prof_strerror(rc) : strerror(errno));
        kill(pid, SIGKILL);
        return 1;
    }
    struct prof_unw_snap *snap = malloc(sizeof(*snap));
    uint64_t *cap = calloc((size_t)N, sizeof(uint64_t)), *per = calloc((size_t)N, sizeof(uint64_t));
    struct prof_unw_frame fr[PROF_UNW_MAX_FRAMES];
    size_t n = 0, frames_total = 0;
    uint64_t cold = 0, unw_total = 0;
    for (int i = 0; i < N; i++) {
        int st;
        if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0 || waitpid(tid, &st, __WALL) != tid)
            return 1;
        uint64_t t0 = now();
        rc = prof_unw_capture(u, tid, snap);
        uint64_t t1 = now();
        ptrace(PTRACE_CONT, tid, NULL, NULL);
        if (rc < 0)
            return 1;
        if (junk)
            for (size_t k = 0; k < EVICT_BYTES; k += 64)
                junk[k] = (unsigned char)(k + (size_t)i);
        uint64_t t2 = now();
        prof_unw_unwind(u, snap, fr, PROF_UNW_MAX_FRAMES, &n);
        uint64_t t3 = now();
        cap[i] = t1 - t0;
        per[i] = (t3 - t2) / (n ? n : 1);
        if (i == 0)
            cold = t3 - t2;
        else {
            unw_total += t3 - t2;
            frames_total += n;
        }
    }
    qsort(cap, (size_t)N, sizeof(uint64_t), cmp_u64);
    qsort(per + 1, (size_t)N - 1, sizeof(uint64_t), cmp_u64);
    printf("samples %d, frames/stack %zu, stack bytes copied %zu\n", N, n, snap->len);
    printf("stop window (capture): p50 %llu ns, p99 %llu ns, max %llu ns\n", (unsigned long long)pct(cap, N, 0.5),
           (unsigned long long)pct(cap, N, 0.99), (unsigned long long)cap[N - 1]);
    printf("unwind per frame (%s): mean %llu ns, p50 %llu ns, p99 %llu ns; first (cold) unwind %llu ns\n",
           evict ? "caches evicted before each unwind" : "warm", (unsigned long long)(unw_total / (frames_total ? frames_total : 1)),
           (unsigned long long)pct(per + 1, N - 1, 0.5), (unsigned long long)pct(per + 1, N - 1, 0.99),
           (unsigned long long)cold);
    prof_unw_close(u);
    kill(pid, SIGKILL);
    /* The leader is reaped only after its traced threads. */
    pid_t r;
    while ((r = waitpid(-1, NULL, __WALL)) > 0 && r != pid)
        ;
    free(snap);
    free(cap);
    free(per);
    free(junk);
    return 0;
}
