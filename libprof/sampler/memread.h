/* memread.h: reading a traced process's memory without disturbing it (see memread.c). */
#ifndef POOLPROF_MEMREAD_H
#define POOLPROF_MEMREAD_H

#include <sys/types.h>
#include <sys/uio.h>

/* One process's memory: /proc/PID/mem opened at the first read (zeroed: not opened yet). */
struct prof_mem {
    pid_t pid;
    int fd;      /* valid when opened */
    int opened;  /* 1: fd is open; -1: it could not be (process_vm_readv then) */
};

/* What process_vm_readv(m->pid, local, nl, remote, nr, 0) returns, read so that no page of the
 * target is unshared: bytes read, stopping at the first remote range that fails; -1 and errno
 * when nothing could be read. pid may be any task of the process (a thread's tid). */
ssize_t prof_mem_readv(struct prof_mem *m, const struct iovec *local, unsigned long nl, const struct iovec *remote,
                       unsigned long nr);
/* Forget the descriptor: after an exec it reads the old image's memory (or nothing). */
void prof_mem_close(struct prof_mem *m);

#endif
