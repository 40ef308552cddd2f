/* procstate.c: the pure part of thread-state classification: /proc/TID/syscall parsing and the syscall-to-cause table (x86_64). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "prof.h"
#include "sampler/procstate.h"

int prof_syscall_parse(const char *text, struct prof_syscall *out)
{
    memset(out, 0, sizeof *out);
    if (strncmp(text, "running", 7) == 0)
        return 0;
    char *end;
    long nr = strtol(text, &end, 10);
    if (end == text)
        return PROF_EFORMAT;
    if (nr < 0) { /* "-1 sp pc": blocked, but not in a syscall (page fault, stopped) */
        out->state = -1;
        out->sp = strtoull(end, &end, 16);
        out->pc = strtoull(end, &end, 16);
        return 0;
    }
    out->state = 1;
    out->nr = nr;
    for (int i = 0; i < 6; i++) {
        const char *p = end;
        out->args[i] = strtoull(p, &end, 16);
        if (end == p)
            return PROF_EFORMAT;
    }
    out->sp = strtoull(end, &end, 16);
    out->pc = strtoull(end, &end, 16);
    return 0;
}

int prof_syscall_fd(const struct prof_syscall *sc)
{
    if (sc->state != 1)
        return -1;
    switch (sc->nr) {
    case SYS_read: case SYS_write: case SYS_pread64: case SYS_pwrite64: case SYS_readv: case SYS_writev:
    case SYS_preadv: case SYS_pwritev: case SYS_preadv2: case SYS_pwritev2:
    case SYS_recvfrom: case SYS_sendto: case SYS_recvmsg: case SYS_sendmsg: case SYS_recvmmsg:
    case SYS_sendmmsg: case SYS_connect: case SYS_accept: case SYS_accept4: case SYS_splice:
    case SYS_copy_file_range: case SYS_fsync: case SYS_fdatasync: case SYS_sync_file_range:
    case SYS_sendfile: /* out_fd */
        return (int)sc->args[0];
    default:
        return -1;
    }
}

int prof_syscall_is_poll(const struct prof_syscall *sc, uint64_t *fds_addr, uint64_t *nfds)
{
    if (sc->state != 1 || (sc->nr != SYS_poll && sc->nr != SYS_ppoll))
        return 0;
    *fds_addr = sc->args[0];
    *nfds = sc->args[1];
    return 1;
}

static enum prof_tstate from_fd(enum prof_fdkind fd)
{
    switch (fd) {
    case PROF_FD_FILE: return PROF_TS_DISK;
    case PROF_FD_NET: return PROF_TS_NET;
    case PROF_FD_IPC: return PROF_TS_IPC;
    /* A pipe or local socket to something outside the tree (a shell pipeline,
     * a local server): the program waits for its input like any I/O. */
    case PROF_FD_LOCAL: return PROF_TS_NET;
    default: return PROF_TS_OTHER;
    }
}

enum prof_tstate prof_tstate_classify(char state, const struct prof_syscall *sc, enum prof_fdkind fd, int gil)
{
    if (state == 'R' || (sc && sc->state == 0))
        return PROF_TS_RUNNING;
    if (!sc || sc->state != 1)
        return state == 'D' ? PROF_TS_DISK : PROF_TS_OTHER;
    switch (sc->nr) {
    case SYS_futex: {
        if (gil)
            return PROF_TS_GIL;
        unsigned op = (unsigned)sc->args[1] & 127; /* without FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME */
        /* glibc's mutexes sleep in FUTEX_WAIT (or the PI ops); condvars, semaphores
         * (CPython's locks) and pthread_join sleep in FUTEX_WAIT_BITSET. */
        if (op == 0 || op == 6 || op == 13)
            return PROF_TS_LOCK;
        return PROF_TS_SYNC;
    }
    case SYS_futex_waitv:
        return PROF_TS_SYNC;
    case SYS_flock: case SYS_semop: case SYS_semtimedop:
        return PROF_TS_LOCK;
    case SYS_fcntl:
        return sc->args[1] == 7 /* F_SETLKW */ || sc->args[1] == 38 /* F_OFD_SETLKW */ ? PROF_TS_LOCK : PROF_TS_OTHER;
    case SYS_wait4: case SYS_waitid:
        return PROF_TS_SYNC;
    case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2: case SYS_select: case SYS_pselect6:
        return PROF_TS_EVLOOP;
    case SYS_poll: case SYS_ppoll:
        /* One descriptor: a blocking call with a timeout (CPython's socket timeouts). */
        if (sc->args[1] == 1 && fd != PROF_FD_UNKNOWN)
            return from_fd(fd);
        return sc->args[1] == 0 ? PROF_TS_SLEEP : PROF_TS_EVLOOP;
    case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_pause: case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait:
        return PROF_TS_SLEEP;
    case SYS_open: case SYS_openat: case SYS_stat: case SYS_fstat: case SYS_lstat: case SYS_newfstatat:
    case SYS_io_getevents: case SYS_unlink: case SYS_rename: case SYS_mkdir: case SYS_getdents64:
        return PROF_TS_DISK;
    default:
        if (fd != PROF_FD_UNKNOWN)
            return from_fd(fd);
        return state == 'D' ? PROF_TS_DISK : PROF_TS_OTHER;
    }
}

enum prof_fdkind prof_fdkind_from_link(const char *link, int unix_socket, int shared)
{
    if (!link || !*link)
        return PROF_FD_UNKNOWN;
    if (strncmp(link, "socket:", 7) == 0)
        return unix_socket ? (shared ? PROF_FD_IPC : PROF_FD_LOCAL) : PROF_FD_NET;
    if (strncmp(link, "pipe:", 5) == 0)
        return shared ? PROF_FD_IPC : PROF_FD_LOCAL;
    if (link[0] == '/') {
        if (strncmp(link, "/dev/", 5) == 0 && strncmp(link, "/dev/shm/", 9) != 0)
            return strncmp(link, "/dev/sd", 7) == 0 || strncmp(link, "/dev/nvme", 9) == 0 ||
                           strncmp(link, "/dev/vd", 7) == 0
                       ? PROF_FD_FILE
                       : PROF_FD_OTHER;
        return PROF_FD_FILE;
    }
    return PROF_FD_OTHER;
}
