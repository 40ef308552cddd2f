/* procstate.h: why a thread is not running, decided from what /proc shows of it (state, current syscall, the descriptor it waits on). */
#ifndef POOLPROF_PROCSTATE_H
#define POOLPROF_PROCSTATE_H

#include <stdint.h>

#include "format/tstate.h"

/* What a descriptor refers to (from readlink /proc/PID/fd/N, and whether the
 * other end belongs to the traced tree). */
enum prof_fdkind {
    PROF_FD_UNKNOWN,
    PROF_FD_FILE,      /* regular file or block device */
    PROF_FD_NET,       /* TCP/UDP/other non-local socket */
    PROF_FD_IPC,       /* pipe or AF_UNIX socket shared with another traced process */
    PROF_FD_LOCAL,     /* pipe or AF_UNIX socket to something outside the tree */
    PROF_FD_OTHER      /* terminal, eventfd, timerfd, ... */
};

/* /proc/TID/syscall parsed. */
struct prof_syscall {
    int state;         /* 1 blocked in syscall nr; 0 "running"; -1 blocked outside a syscall */
    long nr;
    uint64_t args[6];
    uint64_t sp, pc;
};

/* Parse the text of /proc/PID/task/TID/syscall. 0 or PROF_EFORMAT. */
int prof_syscall_parse(const char *text, struct prof_syscall *out);

/* Descriptor a blocked syscall waits on, or -1 (no descriptor, or poll/select
 * whose set the caller must read: see prof_syscall_is_poll). */
int prof_syscall_fd(const struct prof_syscall *sc);

/* poll/ppoll: 1 and *nfds, *fds_addr set (the caller reads the pollfd array
 * when nfds is 1, since one descriptor is a socket timeout, not an event loop). */
int prof_syscall_is_poll(const struct prof_syscall *sc, uint64_t *fds_addr, uint64_t *nfds);

/* Classify from the state letter of /proc/TID/stat, the syscall, and what its
 * descriptor is (PROF_FD_UNKNOWN when there is none). gil: the futex address is
 * inside the process's GIL. Running versus run queue is the caller's to decide
 * from schedstat; a runnable thread (R) comes back as PROF_TS_RUNNING. */
enum prof_tstate prof_tstate_classify(char state, const struct prof_syscall *sc, enum prof_fdkind fd, int gil);

/* Kind of a descriptor from its readlink text: "socket:[N]" (unix: the inode is
 * an AF_UNIX socket), "pipe:[N]", a path... shared: another traced process has
 * the same pipe (or the tree has other processes, for a unix socket). */
enum prof_fdkind prof_fdkind_from_link(const char *link, int unix_socket, int shared);

#endif
