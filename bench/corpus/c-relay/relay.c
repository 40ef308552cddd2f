/* relay.c: a producer process renders sensor readings as text lines into a pipe and a consumer process parses and scores them; N such pairs split the readings (seq: one process does both). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define READINGS 1100000
#define RENDER_ROUNDS 40
#define SCORE_ROUNDS 160

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* The producer's share: one reading as a text line. */
static int render(uint64_t i, char *line, size_t cap)
{
    uint64_t h = i;
    for (int k = 0; k < RENDER_ROUNDS; k++)
        h = mix(h + (uint64_t)k);
    unsigned station = (unsigned)(h % 997), sensor = (unsigned)((h >> 12) % 64);
    long milli = (long)((h >> 24) % 200000) - 100000;
    return snprintf(line, cap, "%llu,st%03u,s%02u,%ld.%03ld,%llx\n", (unsigned long long)i, station, sensor,
                    milli / 1000, labs(milli % 1000), (unsigned long long)(h >> 40));
}

/* The consumer's share: parse a line back and score it. */
static uint64_t score(const char *line)
{
    char *p;
    uint64_t id = strtoull(line, &p, 10);
    unsigned station = 0, sensor = 0;
    long whole = 0, frac = 0;
    unsigned long long tag = 0;
    if (sscanf(p, ",st%u,s%u,%ld.%ld,%llx", &station, &sensor, &whole, &frac, &tag) != 5) {
        fprintf(stderr, "relay: bad line %s", line);
        exit(1);
    }
    uint64_t v = id ^ ((uint64_t)station << 20) ^ ((uint64_t)sensor << 40) ^ (uint64_t)(whole * 1000 + frac) ^ tag;
    for (int k = 0; k < SCORE_ROUNDS; k++)
        v = mix(v ^ (uint64_t)k);
    return v;
}

static uint64_t lo_of(int k, int n) { return (uint64_t)READINGS * (uint64_t)k / (uint64_t)n; }

static void produce(int fd, uint64_t lo, uint64_t hi)
{
    FILE *out = fdopen(fd, "w");
    char line[128];
    for (uint64_t i = lo; i < hi; i++) {
        render(i, line, sizeof line);
        fputs(line, out);
    }
    if (fclose(out))
        _exit(1);
}

static uint64_t consume(int fd)
{
    FILE *in = fdopen(fd, "r");
    char line[128];
    uint64_t sum = 0;
    while (fgets(line, sizeof line, in))
        sum += score(line);
    fclose(in);
    return sum;
}

static pid_t spawn(void)
{
    pid_t p = fork();
    if (p < 0) {
        perror("fork");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "seq") && argc < 3)) {
        fprintf(stderr, "usage: relay seq | relay pairs N\n");
        return 2;
    }
    uint64_t sum = 0;
    if (!strcmp(argv[1], "seq")) {
        char line[128];
        for (uint64_t i = 0; i < READINGS; i++) {
            render(i, line, sizeof line);
            sum += score(line);
        }
    } else {
        int n = atoi(argv[2]);
        if (n < 1)
            n = 1;
        int *results = calloc((size_t)n, sizeof *results);
        pid_t *pids = calloc(2 * (size_t)n, sizeof *pids);
        for (int k = 0; k < n; k++) {
            int data[2], res[2];
            if (pipe(data) || pipe(res)) {
                perror("pipe");
                return 1;
            }
            if ((pids[2 * k] = spawn()) == 0) {
                close(data[0]);
                close(res[0]);
                close(res[1]);
                produce(data[1], lo_of(k, n), lo_of(k + 1, n));
                _exit(0);
            }
            if ((pids[2 * k + 1] = spawn()) == 0) {
                close(data[1]);
                close(res[0]);
                uint64_t s = consume(data[0]);
                _exit(write(res[1], &s, sizeof s) == (ssize_t)sizeof s ? 0 : 1);
            }
            close(data[0]);
            close(data[1]);
            close(res[1]);
            results[k] = res[0];
        }
        for (int k = 0; k < n; k++) {
            uint64_t s;
            if (read(results[k], &s, sizeof s) != (ssize_t)sizeof s) {
                fprintf(stderr, "relay: no result from pair %d\n", k);
                return 1;
            }
            sum += s;
        }
        for (int k = 0; k < 2 * n; k++) {
            int st;
            if (waitpid(pids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
                fprintf(stderr, "relay: a child failed\n");
                return 1;
            }
        }
        free(results);
        free(pids);
    }
    printf("readings %d score %016llx\n", READINGS, (unsigned long long)sum);
    return 0;
}
