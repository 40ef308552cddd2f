/* cpu_standin.c: wakes HZ times a second and spins US microseconds: the tracer's CPU without touching any other process, for bench/ab.py.
 * usage: cpu_standin HZ US   (runs until killed) */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    uint64_t period = 1000000000ull / (uint64_t)atol(argv[1]), spin = (uint64_t)atol(argv[2]) * 1000ull;
    uint64_t next = now();
    for (;;) {
        next += period;
        struct timespec d = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL);
        for (uint64_t end = now() + spin; now() < end;)
            ;
    }
}
