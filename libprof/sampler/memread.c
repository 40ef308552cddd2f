/* memread.c: reads of a traced process's memory through /proc/PID/mem, which never unshares its copy-on-write pages. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "memread.h"

/*
 * Why not process_vm_readv: it pins the pages it reads, and pinning an anonymous page a fork
 * still shares makes the kernel unshare it first (a copy, and a TLB flush on every CPU the
 * process runs on). Every page the sampler read of a forked CPython worker (frames, code
 * objects, strings) so became a private copy in the worker and in its parent: reading 2 MB of
 * a fork's memory made 2 MB of it private, against none through /proc/PID/mem (this kernel,
 * tests/unit/test_memread.c). A read through the file takes the pages without pinning them.
 * CPython's structures are read so (pystack.c); the unwinders' few stack pages and the lock
 * words still go through process_vm_readv.
 */
static int mem_fd(struct prof_mem *m)
{
    if (m->opened == 0) {
        char path[48];
        snprintf(path, sizeof path, "/proc/%d/mem", (int)m->pid);
        m->fd = open(path, O_RDONLY | O_CLOEXEC);
        m->opened = m->fd >= 0 ? 1 : -1;
    }
    return m->opened == 1 ? m->fd : -1;
}

void prof_mem_close(struct prof_mem *m)
{
    if (m->opened == 1)
        close(m->fd);
    m->opened = 0;
    m->fd = -1;
}

ssize_t prof_mem_readv(struct prof_mem *m, const struct iovec *local, unsigned long nl, const struct iovec *remote,
                       unsigned long nr)
{
    int fd = mem_fd(m);
    if (fd < 0)
        return process_vm_readv(m->pid, local, nl, remote, nr, 0);
    /* The local buffers are filled in order across the remote ranges, as process_vm_readv does. */
    size_t li = 0, loff = 0, total = 0;
    for (unsigned long ri = 0; ri < nr; ri++) {
        size_t want = remote[ri].iov_len, got = 0;
        while (got < want && li < nl) {
            size_t room = local[li].iov_len - loff, n = want - got < room ? want - got : room;
            ssize_t r = pread(fd, (char *)local[li].iov_base + loff, n,
                              (off_t)((uintptr_t)remote[ri].iov_base + got));
            if (r <= 0) {
                if (r < 0 && total == 0 && got == 0) {
                    int e = errno == EIO ? EFAULT : errno; /* an unmapped address: as process_vm_readv says it */
                    errno = e;
                    return -1;
                }
                return (ssize_t)(total + got);
            }
            got += (size_t)r;
            loff += (size_t)r;
            if (loff == local[li].iov_len) {
                li++;
                loff = 0;
            }
            if ((size_t)r < n)
                return (ssize_t)(total + got);
        }
        total += got;
        if (got < want)
            break;
    }
    return (ssize_t)total;
}
