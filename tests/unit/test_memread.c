/* test_memread.c: prof_mem_readv reads what process_vm_readv reads (scattered, partial at an unmapped page), and leaves a fork's copy-on-write pages shared. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memread.h"

#define PAGES 1024

static unsigned char *buf;   /* PAGES pages, each byte of page i is i & 0xff, shared with the child */
static unsigned char *edge;  /* a page whose next page is unmapped */
static pid_t child = -1;
static int go[2];

static void fork_child(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    buf = mmap(NULL, PAGES * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(buf != MAP_FAILED);
    for (int i = 0; i < PAGES; i++)
        memset(buf + (size_t)i * (size_t)pg, i & 0xff, (size_t)pg);
    edge = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(edge != MAP_FAILED);
    memset(edge, 0x5a, (size_t)pg);
    munmap(edge + pg, (size_t)pg);
    cr_assert_eq(pipe(go), 0);
    child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        char c;
        close(go[1]);
        (void)!read(go[0], &c, 1); /* until the test ends */
        _exit(0);
    }
    close(go[0]);
}

static void end_child(void)
{
    if (child > 0) {
        close(go[1]);
        waitpid(child, NULL, 0);
    }
    child = -1;
}

/* Private_Dirty of pid, kB (smaps_rollup): what a page unshared by a read adds to. */
static long private_dirty_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Private_Dirty: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

TestSuite(memread, .init = fork_child, .fini = end_child);

Test(memread, scattered_reads_match_the_childs_memory)
{
    long pg = sysconf(_SC_PAGESIZE);
    struct prof_mem m = {.pid = child};
    unsigned char a[100], b[5000], c[3];
    /* Two local buffers filled across three remote ranges, as process_vm_readv would. */
    struct iovec l[2] = {{a, sizeof a}, {b, sizeof b}};
    struct iovec r[3] = {{buf + 7 * pg + 10, 50}, {buf + 9 * pg - 20, 5000}, {buf + 200 * pg, 50}};
    cr_assert_eq(prof_mem_readv(&m, l, 2, r, 3), 5100);
    cr_assert_eq(a[0], 7);
    cr_assert_eq(a[49], 7);
    cr_assert_eq(a[50], 8);     /* the second range starts 20 bytes before page 9 */
    cr_assert_eq(a[70], 9);
    cr_assert_eq(b[0], 9);      /* ...and goes on in b where a is full */
    cr_assert_eq(b[4066], 10);
    cr_assert_eq(b[4949], 10);
    cr_assert_eq(b[4950], 200); /* the third range */
    cr_assert_eq(b[4999], 200);
    /* A range that runs into an unmapped page: read up to it, as process_vm_readv does. */
    unsigned char e[20];
    struct iovec le = {e, sizeof e}, re = {edge + pg - 10, sizeof e};
    cr_assert_eq(prof_mem_readv(&m, &le, 1, &re, 1), 10);
    cr_assert_eq(process_vm_readv(child, &le, 1, &re, 1, 0), 10);
    cr_assert_eq(e[9], 0x5a);
    /* An unmapped address: nothing read, and the error process_vm_readv gives. */
    struct iovec l2 = {c, sizeof c}, r2 = {(void *)0x10, sizeof c};
    cr_assert_eq(prof_mem_readv(&m, &l2, 1, &r2, 1), -1);
    cr_assert_eq(errno, EFAULT);
    prof_mem_close(&m);
}

Test(memread, a_forks_shared_pages_stay_shared)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t len = PAGES / 2 * (size_t)pg;
    static unsigned char dst[PAGES / 2 * 65536];
    struct iovec l = {dst, len}, r = {buf, len};
    struct prof_mem m = {.pid = child};
    long before = private_dirty_kb(child);
    cr_assert_eq(prof_mem_readv(&m, &l, 1, &r, 1), (ssize_t)len);
    long after = private_dirty_kb(child);
    cr_assert_eq(dst[len - 1], (PAGES / 2 - 1) & 0xff);
    /* Reading half the buffer left it shared: the child's private memory barely moved. */
    cr_assert_lt(after - before, (long)(len / 1024 / 4), "private dirty %ld -> %ld kB after reading %zu kB", before,
                 after, len / 1024);
    /* process_vm_readv pins: where the kernel unshares pinned pages, the same read copies them. */
    long b2 = private_dirty_kb(child);
    struct iovec r2 = {buf + len, len};
    cr_assert_eq(process_vm_readv(child, &l, 1, &r2, 1, 0), (ssize_t)len);
    long a2 = private_dirty_kb(child);
    cr_log_info("a fork's %zu kB read: /proc/PID/mem +%ld kB private, process_vm_readv +%ld kB", len / 1024,
                after - before, a2 - b2);
    prof_mem_close(&m);
}
