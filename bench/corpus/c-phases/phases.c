/* phases.c: a batch job in three marked stages: read and parse a records file, price every record on N threads, write the priced file (0: price on the main thread). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRICE_ROUNDS 300

/* Stage markers from the profiler's preloaded library when it is there; nothing otherwise. */
static void (*stage_begin)(const char *);
static void (*stage_end)(void);

static void begin(const char *name)
{
    if (stage_begin)
        stage_begin(name);
}

static void end(void)
{
    if (stage_end)
        stage_end();
}

struct rec {
    uint64_t id, qty, base;
    uint64_t price;
};

static struct rec *recs;
static size_t nrecs;
static int nthreads;

static uint64_t price_of(const struct rec *r)
{
    uint64_t h = r->id * 0x9e3779b97f4a7c15ULL ^ r->qty ^ (r->base << 17);
    for (int i = 0; i < PRICE_ROUNDS; i++) {
        h ^= h >> 31;
        h *= 0xd6e8feb86659fd93ULL;
        h ^= h >> 32;
    }
    return r->base * r->qty + (h % 1000);
}

static void *pricer(void *arg)
{
    int k = (int)(intptr_t)arg;
    size_t lo = nrecs * (size_t)k / (size_t)nthreads, hi = nrecs * (size_t)(k + 1) / (size_t)nthreads;
    begin("compute"); /* markers are per thread: the pricing threads are in the stage too */
    for (size_t i = lo; i < hi; i++)
        recs[i].price = price_of(&recs[i]);
    end();
    return NULL;
}

static void read_records(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 16;
    recs = malloc(cap * sizeof *recs);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (nrecs == cap)
            recs = realloc(recs, (cap *= 2) * sizeof *recs);
        struct rec *r = &recs[nrecs];
        char *p = line;
        r->id = strtoull(p, &p, 10);
        r->qty = strtoull(p, &p, 10);
        r->base = strtoull(p, &p, 10);
        nrecs++;
    }
    fclose(f);
}

static uint64_t write_records(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    uint64_t h = 1469598103934665603ULL;
    char line[256];
    for (size_t i = 0; i < nrecs; i++) {
        int n = snprintf(line, sizeof line, "%llu\t%llu\t%llu.%02llu\n", (unsigned long long)recs[i].id,
                         (unsigned long long)recs[i].qty, (unsigned long long)(recs[i].price / 100),
                         (unsigned long long)(recs[i].price % 100));
        for (int j = 0; j < n; j++)
            h = (h ^ (unsigned char)line[j]) * 1099511628211ULL;
        fwrite(line, 1, (size_t)n, f);
    }
    if (fclose(f)) {
        perror(path);
        exit(1);
    }
    return h;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: phases IN OUT THREADS   (THREADS 0: price on the main thread)\n");
        return 2;
    }
    *(void **)&stage_begin = dlsym(RTLD_DEFAULT, "prof_stage_begin");
    *(void **)&stage_end = dlsym(RTLD_DEFAULT, "prof_stage_end");
    nthreads = atoi(argv[3]);

    begin("read");
    read_records(argv[1]);
    end();

    begin("compute");
    if (nthreads <= 0) {
        for (size_t i = 0; i < nrecs; i++)
            recs[i].price = price_of(&recs[i]);
    } else {
        pthread_t *t = calloc((size_t)nthreads, sizeof *t);
        for (int k = 0; k < nthreads; k++)
            if (pthread_create(&t[k], NULL, pricer, (void *)(intptr_t)k)) {
                perror("pthread_create");
                return 1;
            }
        for (int k = 0; k < nthreads; k++)
            pthread_join(t[k], NULL);
        free(t);
    }
    end();

    begin("write");
    uint64_t h = write_records(argv[2]);
    end();

    printf("records %zu digest %016llx\n", nrecs, (unsigned long long)h);
    return 0;
}
