/* walltime.c: runs a command and writes its own wall time, from fork to exit, to a file: the workload's time without the profiler's start and report. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * usage: walltime OUTFILE CMD [ARGS...]
 * Writes "<ns>\n" to OUTFILE and exits with CMD's status (128+N if killed by signal N).
 * bench/sampler_overhead.py puts it innermost in every configuration, so that the
 * plain run and the profiled one time the same thing: the target itself.
 */
int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: walltime OUTFILE CMD [ARGS...]\n");
        return 2;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "walltime: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "walltime: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 2;
    clock_gettime(CLOCK_MONOTONIC, &b);
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec)) < 0 ||
        fclose(f) != 0) {
        fprintf(stderr, "walltime: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
