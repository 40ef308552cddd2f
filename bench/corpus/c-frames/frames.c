/* frames.c: steps a cellular automaton on a grid for many generations, each generation's rows shared out to a pool of N threads that meet at a barrier (or stepped by one thread when run with 0). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SIDE 256
#define GENERATIONS 3000
#define CELL_ROUNDS 6

static uint32_t *grid[2];
static int nthreads;
static pthread_barrier_t step_done;

static inline uint32_t rule(uint32_t c, uint32_t n, uint32_t s, uint32_t w, uint32_t e)
{
    uint32_t v = c ^ (n + s) ^ ((w << 7) | (w >> 25)) ^ (e * 0x9e3779b1u);
    for (int i = 0; i < CELL_ROUNDS; i++) {
        v ^= v >> 15;
        v *= 0x2c1b3c6du;
        v ^= v >> 12;
    }
    return v;
}

static void step_rows(const uint32_t *src, uint32_t *dst, int r0, int r1)
{
    for (int r = r0; r < r1; r++) {
        int up = (r + SIDE - 1) % SIDE, down = (r + 1) % SIDE;
        for (int c = 0; c < SIDE; c++) {
            int left = (c + SIDE - 1) % SIDE, right = (c + 1) % SIDE;
            dst[r * SIDE + c] = rule(src[r * SIDE + c], src[up * SIDE + c], src[down * SIDE + c],
                                     src[r * SIDE + left], src[r * SIDE + right]);
        }
    }
}

static void *band(void *arg)
{
    int k = (int)(intptr_t)arg;
    int r0 = SIDE * k / nthreads, r1 = SIDE * (k + 1) / nthreads;
    for (int g = 0; g < GENERATIONS; g++) {
        step_rows(grid[g & 1], grid[(g + 1) & 1], r0, r1);
        pthread_barrier_wait(&step_done);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: frames THREADS   (0: step on the main thread)\n");
        return 2;
    }
    nthreads = atoi(argv[1]);
    for (int b = 0; b < 2; b++)
        grid[b] = calloc(SIDE * SIDE, sizeof(uint32_t));
    for (uint32_t i = 0; i < SIDE * SIDE; i++)
        grid[0][i] = i * 2654435761u;
    if (nthreads <= 0) {
        for (int g = 0; g < GENERATIONS; g++)
            step_rows(grid[g & 1], grid[(g + 1) & 1], 0, SIDE);
    } else {
        if (nthreads > SIDE)
            nthreads = SIDE;
        pthread_barrier_init(&step_done, NULL, (unsigned)nthreads);
        pthread_t *t = calloc((size_t)nthreads, sizeof *t);
        for (int k = 0; k < nthreads; k++)
            if (pthread_create(&t[k], NULL, band, (void *)(intptr_t)k)) {
                perror("pthread_create");
                return 1;
            }
        for (int k = 0; k < nthreads; k++)
            pthread_join(t[k], NULL);
        free(t);
        pthread_barrier_destroy(&step_done);
    }
    const uint32_t *last = grid[GENERATIONS & 1];
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < SIDE * SIDE; i++)
        h = (h ^ last[i]) * 1099511628211ULL;
    printf("side %d generations %d state %016llx\n", SIDE, GENERATIONS, (unsigned long long)h);
    return 0;
}
