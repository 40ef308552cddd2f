/* workqueue.c: one reader thread parses log records and hands them through a bounded queue to N indexing threads (or indexes them itself when run with 0). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORDS 50000
#define QUEUE_CAP 64
#define PARSE_ROUNDS 100   /* per record, in the reader */
#define INDEX_ROUNDS 300  /* per record word, in an indexer */
#define WORDS 16

struct record {
    uint64_t id;
    uint64_t word[WORDS];
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    x ^= x >> 33;
    return x;
}

/* The reader's share: turns record number i into its fields. */
static void parse(uint64_t i, struct record *r)
{
    uint64_t h = i + 1;
    r->id = i;
    for (int w = 0; w < WORDS; w++) {
        for (int k = 0; k < PARSE_ROUNDS; k++)
            h = mix(h + (uint64_t)k);
        r->word[w] = h;
    }
}

/* An indexer's share: a term signature for every word of the record. */
static uint64_t index_record(const struct record *r)
{
    uint64_t sig = r->id;
    for (int w = 0; w < WORDS; w++) {
        uint64_t t = r->word[w];
        for (int k = 0; k < INDEX_ROUNDS; k++)
            t = mix(t ^ (uint64_t)k);
        sig += t;
    }
    return sig;
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    struct record slot[QUEUE_CAP];
    int head, count, closed;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0, 0};

static void push(const struct record *r)
{
    pthread_mutex_lock(&q.lock);
    while (q.count == QUEUE_CAP)
        pthread_cond_wait(&q.not_full, &q.lock);
    q.slot[(q.head + q.count) % QUEUE_CAP] = *r;
    q.count++;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
}

static void close_queue(void)
{
    pthread_mutex_lock(&q.lock);
    q.closed = 1;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
}

/* 0 when the queue is closed and drained. */
static int pop(struct record *r)
{
    pthread_mutex_lock(&q.lock);
    while (q.count == 0 && !q.closed)
        pthread_cond_wait(&q.not_empty, &q.lock);
    if (q.count == 0) {
        pthread_mutex_unlock(&q.lock);
        return 0;
    }
    *r = q.slot[q.head];
    q.head = (q.head + 1) % QUEUE_CAP;
    q.count--;
    pthread_cond_signal(&q.not_full);
    pthread_mutex_unlock(&q.lock);
    return 1;
}

struct tally {
    uint64_t sum, n;
};

static void *indexer(void *arg)
{
    struct tally *t = arg;
    struct record r;
    while (pop(&r)) {
        t->sum += index_record(&r);
        t->n++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: workqueue INDEXERS   (0: the reader indexes each record itself)\n");
        return 2;
    }
    int n = atoi(argv[1]);
    struct tally total = {0, 0};
    struct record r;
    if (n <= 0) {
        for (uint64_t i = 0; i < RECORDS; i++) {
            parse(i, &r);
            total.sum += index_record(&r);
            total.n++;
        }
    } else {
        pthread_t *t = calloc((size_t)n, sizeof *t);
        struct tally *part = calloc((size_t)n, sizeof *part);
        for (int k = 0; k < n; k++)
            if (pthread_create(&t[k], NULL, indexer, &part[k])) {
                perror("pthread_create");
                return 1;
            }
        for (uint64_t i = 0; i < RECORDS; i++) {
            parse(i, &r);
            push(&r);
        }
        close_queue();
        for (int k = 0; k < n; k++) {
            pthread_join(t[k], NULL);
            total.sum += part[k].sum;
            total.n += part[k].n;
        }
        free(t);
        free(part);
    }
    printf("records %llu signature %016llx\n", (unsigned long long)total.n, (unsigned long long)total.sum);
    return 0;
}
