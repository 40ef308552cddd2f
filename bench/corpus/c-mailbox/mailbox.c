/* mailbox.c: a dispatcher deals jobs into per-worker mailboxes that N workers poll without sleeping (or runs the jobs itself when run with 0). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define JOBS 4000
#define JOB_ROUNDS 125000

enum { EMPTY, POSTED, DONE };

struct mailbox {
    _Atomic int state;
    uint64_t job;
    uint64_t result;
} __attribute__((aligned(64)));

static struct mailbox *box;
static _Atomic int stop;

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t run_job(uint64_t job)
{
    uint64_t h = job * 0x9e3779b97f4a7c15ULL + 1;
    for (int i = 0; i < JOB_ROUNDS; i++) {
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 32;
    }
    return h;
}

static void *worker(void *arg)
{
    struct mailbox *m = arg;
    for (;;) {
        while (atomic_load_explicit(&m->state, memory_order_acquire) != POSTED) {
            if (atomic_load_explicit(&stop, memory_order_relaxed))
                return NULL;
            relax();
        }
        m->result = run_job(m->job);
        atomic_store_explicit(&m->state, DONE, memory_order_release);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mailbox WORKERS   (0: the dispatcher runs every job itself)\n");
        return 2;
    }
    int n = atoi(argv[1]);
    uint64_t sum = 0, done = 0;
    if (n <= 0) {
        for (uint64_t j = 0; j < JOBS; j++) {
            sum += run_job(j);
            done++;
        }
    } else {
        box = aligned_alloc(64, sizeof *box * (size_t)n);
        pthread_t *t = calloc((size_t)n, sizeof *t);
        for (int k = 0; k < n; k++) {
            atomic_init(&box[k].state, EMPTY);
            if (pthread_create(&t[k], NULL, worker, &box[k])) {
                perror("pthread_create");
                return 1;
            }
        }
        uint64_t next = 0;
        while (done < JOBS) {
            int idle = 1;
            for (int k = 0; k < n; k++) {
                int s = atomic_load_explicit(&box[k].state, memory_order_acquire);
                if (s == DONE) {
                    sum += box[k].result;
                    done++;
                    s = EMPTY;
                    atomic_store_explicit(&box[k].state, EMPTY, memory_order_relaxed);
                }
                if (s == EMPTY && next < JOBS) {
                    box[k].job = next++;
                    atomic_store_explicit(&box[k].state, POSTED, memory_order_release);
                    idle = 0;
                }
            }
            if (idle)
                relax();
        }
        atomic_store(&stop, 1);
        for (int k = 0; k < n; k++)
            pthread_join(t[k], NULL);
        free(t);
        free(box);
    }
    printf("jobs %llu checksum %016llx\n", (unsigned long long)done, (unsigned long long)sum);
    return 0;
}
