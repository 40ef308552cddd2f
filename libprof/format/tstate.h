/* tstate.h: the thread states of sampler.rec (C lines' state=), shared by the sampler that writes them and the reader. */
#ifndef POOLPROF_TSTATE_H
#define POOLPROF_TSTATE_H

/* The states a sample can record (samprec.h spells them with prof_tstate_name). */
enum prof_tstate {
    PROF_TS_RUNNING,   /* on CPU */
    PROF_TS_RUNQ,      /* runnable, waiting for a CPU */
    PROF_TS_GIL,       /* futex wait on a CPython GIL's condvar or mutex */
    PROF_TS_LOCK,      /* futex wait of a mutex (FUTEX_WAIT, FUTEX_LOCK_PI), flock, SysV semop */
    PROF_TS_SYNC,      /* condvar, semaphore, join or child wait: idle until someone signals */
    PROF_TS_NET,       /* blocked on a network socket */
    PROF_TS_DISK,      /* blocked on a file or in uninterruptible sleep */
    PROF_TS_IPC,       /* blocked on a pipe or local socket to another process of the tree */
    PROF_TS_EVLOOP,    /* epoll/poll/select over several descriptors: an event loop */
    PROF_TS_SLEEP,     /* nanosleep, pause, sigsuspend */
    PROF_TS_OTHER,
    PROF_TS_COUNT
};

const char *prof_tstate_name(enum prof_tstate s);
/* The state named s, or -1. */
int prof_tstate_from_name(const char *s);

#endif
