/* thread_churn.c: creates and joins many short threads, at most usable-CPUs alive at once, each doing a fixed amount of arithmetic: bench/fanout.py's thread workload. */
/*
 * usage: thread_churn [THREADS] [WORK]   (defaults 5000 and 50000)
 * Starts THREADS threads in batches of as many as sched_getaffinity allows CPUs (each batch
 * created, then joined), thread i running WORK steps of a 64-bit LCG seeded by i. Prints
 * "threads=N alive_max=K checksum=X": X, the sum of every thread's last value, depends only
 * on THREADS and WORK (not on the CPU count or the order threads ran in), so a run that lost
 * a thread shows. Exit status 0, or 1 if a thread could not be created.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ALIVE 256

static long work;

struct slot {
    uint64_t seed;
    uint64_t out;
};

static void *run(void *p)
{
    struct slot *s = p;
    uint64_t x = s->seed;
    for (long i = 0; i < work; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    s->out = x;
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000;
    work = argc > 2 ? atol(argv[2]) : 50000;
    if (n < 1 || work < 0 || argc > 3) {
        fprintf(stderr, "usage: thread_churn [THREADS] [WORK]\n");
        return 2;
    }
    cpu_set_t set;
    int alive = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        alive = CPU_COUNT(&set);
    if (alive < 1)
        alive = 1;
    if (alive > MAX_ALIVE)
        alive = MAX_ALIVE;
    pthread_t t[MAX_ALIVE];
    struct slot s[MAX_ALIVE];
    uint64_t sum = 0;
    for (long done = 0; done < n;) {
        int k = n - done < alive ? (int)(n - done) : alive;
        for (int i = 0; i < k; i++) {
            s[i].seed = (uint64_t)(done + i);
            int e = pthread_create(&t[i], NULL, run, &s[i]);
            if (e != 0) {
                fprintf(stderr, "thread_churn: pthread_create: %s\n", strerror(e));
                return 1;
            }
        }
        for (int i = 0; i < k; i++) {
            pthread_join(t[i], NULL);
            sum += s[i].out;
        }
        done += k;
    }
    printf("threads=%ld alive_max=%d checksum=%016llx\n", n, alive, (unsigned long long)sum);
    return 0;
}
