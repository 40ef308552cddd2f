/* record_floor.c: a preloaded library that only makes each process image a durable record of one page, as the shim's arenas do, for bench/fanout.py: what recording anything per image costs on this machine (the floor under the shim's own figures). */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/*
 * RECORD_FLOOR_FILE names a file whose first page holds a claim counter (the benchmark makes it
 * a page of zeros). Each exec'd image, at its start (the shim makes a fork child's record only
 * when the child first records something, which a child that only moves descriptors and execs
 * never does; xargs', make's and a shell's children are such): open the file, claim a one-page region by an atomic add on the counter, give the region its block
 * (fallocate: the file grows, never shrinks), map it shared, populate it (a full disk fails here,
 * never later as SIGBUS), store its pid and start time, close the descriptor. No figure at the
 * end, no /proc read, no interposed function: the least a record that survives SIGKILL and a
 * full disk costs.
 */
static const char *floor_file;

static void floor_claim(void)
{
    int fd = open(floor_file, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    uint64_t *ctr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ctr != MAP_FAILED) {
        uint64_t idx = __atomic_fetch_add(ctr, 1, __ATOMIC_SEQ_CST);
        munmap(ctr, 4096);
        off_t off = (off_t)(1 + idx) * 4096;
        if (fallocate(fd, 0, off, 4096) == 0) {
            uint64_t *rec = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
            if (rec != MAP_FAILED && madvise(rec, 4096, MADV_POPULATE_WRITE) == 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                rec[0] = (uint64_t)getpid();
                rec[1] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
            }
        }
    }
    close(fd);
}

__attribute__((constructor)) static void floor_init(void)
{
    floor_file = getenv("RECORD_FLOOR_FILE");
    if (!floor_file)
        return;
    floor_claim();
}
