/* record_floor.c: a preloaded library that only makes each process image a durable record of one page, as the shim's arenas do, for bench/fanout.py: what recording anything per image costs on this machine (the floor under the shim's own figures). */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
 *
 * With RECORD_FLOOR_IDENTITY set as well, the record also holds what a record must hold for a
 * report to use it, read the only way the kernel offers: the executable (/proc/self/exe), the
 * pid namespace its pid belongs to (/proc/self/ns/pid), and at the image's end its peak and
 * final RSS (/proc/self/status). Still no interposed function and no figure of the program's
 * own: the floor under a shim that records an image at all.
 */
static const char *floor_file;
static uint64_t *floor_rec;

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
                if (getenv("RECORD_FLOOR_IDENTITY")) {
                    struct stat ns;
                    rec[2] = stat("/proc/self/ns/pid", &ns) == 0 ? (uint64_t)ns.st_ino : 0;
                    ssize_t n = readlink("/proc/self/exe", (char *)&rec[8], 1024);
                    rec[3] = n > 0 ? (uint64_t)n : 0;
                    floor_rec = rec;
                }
            }
        }
    }
    close(fd);
}

/* The image's end (exit, return from main): its RSS figures, as the shim reads them. */
__attribute__((destructor)) static void floor_end(void)
{
    if (!floor_rec)
        return;
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *hwm = strstr(buf, "VmHWM:"), *rss = strstr(buf, "VmRSS:");
    floor_rec[4] = hwm ? strtoull(hwm + 6, NULL, 10) : 0;
    floor_rec[5] = rss ? strtoull(rss + 6, NULL, 10) : 0;
}

__attribute__((constructor)) static void floor_init(void)
{
    floor_file = getenv("RECORD_FLOOR_FILE");
    if (!floor_file)
        return;
    floor_claim();
}
