/* ledger.c: posts a batch of transactions to shared accounts, every posting made under one book-wide lock, in threads, forked processes or one loop. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ACCOUNTS 4096
#define TXNS 1200000
#define CHECK_ROUNDS 24  /* per transaction, outside the lock */
#define POST_ROUNDS 240  /* per transaction, inside the lock */

struct book {
    pthread_mutex_t lock;
    uint64_t balance[ACCOUNTS];
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Checks a transaction's signature: independent of the book. */
static uint64_t check(uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < CHECK_ROUNDS; i++)
        h = mix(h + (uint64_t)i);
    return h;
}

/* Posts one transaction: fee computation and the balance update, under the book lock. */
static void post(struct book *b, uint64_t h)
{
    pthread_mutex_lock(&b->lock);
    uint64_t amount = h;
    for (int i = 0; i < POST_ROUNDS; i++)
        amount = mix(amount ^ (uint64_t)i);
    b->balance[h % ACCOUNTS] += amount >> 20;
    pthread_mutex_unlock(&b->lock);
}

static void post_range(struct book *b, uint64_t lo, uint64_t hi)
{
    for (uint64_t id = lo; id < hi; id++)
        post(b, check(id));
}

struct span {
    struct book *book;
    uint64_t lo, hi;
};

static void *clerk(void *arg)
{
    struct span *s = arg;
    post_range(s->book, s->lo, s->hi);
    return NULL;
}

static uint64_t lo_of(int k, int n) { return (uint64_t)TXNS * (uint64_t)k / (uint64_t)n; }

static void run_threads(struct book *b, int n)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    struct span *s = calloc((size_t)n, sizeof *s);
    for (int k = 0; k < n; k++) {
        s[k] = (struct span){b, lo_of(k, n), lo_of(k + 1, n)};
        if (pthread_create(&t[k], NULL, clerk, &s[k])) {
            perror("pthread_create");
            exit(1);
        }
    }
    for (int k = 0; k < n; k++)
        pthread_join(t[k], NULL);
    free(t);
    free(s);
}

/* Each child keeps its own book for its share and sends the balances back; the parent adds them up. */
static void run_processes(struct book *b, int n)
{
    int *fds = calloc((size_t)n, sizeof *fds);
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    for (int k = 0; k < n; k++) {
        int p[2];
        if (pipe(p)) {
            perror("pipe");
            exit(1);
        }
        pids[k] = fork();
        if (pids[k] < 0) {
            perror("fork");
            exit(1);
        }
        if (pids[k] == 0) {
            close(p[0]);
            post_range(b, lo_of(k, n), lo_of(k + 1, n));
            const char *src = (const char *)b->balance;
            size_t left = sizeof b->balance;
            while (left) {
                ssize_t w = write(p[1], src, left);
                if (w <= 0)
                    _exit(1);
                src += w;
                left -= (size_t)w;
            }
            _exit(0);
        }
        close(p[1]);
        fds[k] = p[0];
    }
    memset(b->balance, 0, sizeof b->balance);
    for (int k = 0; k < n; k++) {
        uint64_t part[ACCOUNTS];
        char *dst = (char *)part;
        size_t left = sizeof part;
        while (left) {
            ssize_t r = read(fds[k], dst, left);
            if (r <= 0) {
                fprintf(stderr, "ledger: short read from child %d\n", k);
                exit(1);
            }
            dst += r;
            left -= (size_t)r;
        }
        close(fds[k]);
        for (int a = 0; a < ACCOUNTS; a++)
            b->balance[a] += part[a];
    }
    for (int k = 0; k < n; k++) {
        int st;
        if (waitpid(pids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "ledger: child %d failed\n", k);
            exit(1);
        }
    }
    free(fds);
    free(pids);
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "seq") && argc < 3)) {
        fprintf(stderr, "usage: ledger seq | ledger threads N | ledger procs N\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 1;
    if (n < 1)
        n = 1;
    static struct book b = {.lock = PTHREAD_MUTEX_INITIALIZER};
    if (!strcmp(argv[1], "seq"))
        post_range(&b, 0, TXNS);
    else if (!strcmp(argv[1], "threads"))
        run_threads(&b, n);
    else if (!strcmp(argv[1], "procs"))
        run_processes(&b, n);
    else {
        fprintf(stderr, "ledger: unknown mode %s\n", argv[1]);
        return 2;
    }
    uint64_t digest = 0, total = 0;
    for (int a = 0; a < ACCOUNTS; a++) {
        digest = mix(digest ^ b.balance[a]);
        total += b.balance[a];
    }
    printf("accounts %d transactions %d total %016llx digest %016llx\n", ACCOUNTS, TXNS,
           (unsigned long long)total, (unsigned long long)digest);
    return 0;
}
