/* shm.h: layout of a process record file, which the shim maps MAP_SHARED and updates in place. */
#ifndef POOLPROF_SHM_H
#define POOLPROF_SHM_H

/*
 * Why a shared mapping rather than write(2): the figures reach the run
 * directory the moment they are stored (the page cache is the file), so a
 * process killed by SIGKILL loses nothing it had recorded; the hot paths do
 * plain stores, no syscalls; and once mapped the descriptor is closed, so a
 * target that closes every descriptor (os.closerange, close_range) cannot
 * silence or be disturbed by the shim. The file is fully allocated with
 * posix_fallocate before it is mapped: a full disk makes the shim stop
 * recording (it falls back to anonymous memory), never a SIGBUS in the target.
 *
 * One file per process image: RUNDIR/proc/<pid>-<start_ns>.rec. A forked
 * child switches to a file of its own before it returns from fork(); an exec
 * ends the image (end_how = PROF_END_EXEC) and the new image writes a new file.
 *
 * Concurrency: each thread slot is written only by its own thread, except at
 * process exit when the exiting thread snapshots the survivors. Readers (the
 * merge, possibly while the target still runs) treat every field as a racy
 * snapshot; `state` is stored last with release order so a reader that sees
 * PROF_THREAD_ENDED sees the final figures.
 *
 * All times are CLOCK_MONOTONIC nanoseconds unless named otherwise.
 */
#include <stdint.h>

#define PROF_SHM_MAGIC 0x31464f52504c4f50ULL /* "POLPROF1" little-endian */
#define PROF_SHM_VERSION 1

#define PROF_SHM_MAX_THREADS 1024
#define PROF_SHM_MAX_CHILDREN 512
#define PROF_SHM_MAX_LOCKS 256
#define PROF_SHM_MAX_STAGES 64
#define PROF_SHM_ARGV_BYTES 4096
#define PROF_SHM_PATH_BYTES 512
#define PROF_SHM_NAME_BYTES 64
#define PROF_SHM_SITE_BYTES 128

/* prof_shm_header.flags */
#define PROF_PROC_PYTHON 0x1u    /* the image runs CPython (_PyRuntime found) */
#define PROF_PROC_FORKED 0x2u    /* the image began with fork(), not exec */
#define PROF_PROC_ANON 0x4u      /* never set in a file: recording fell back to memory */

/* prof_shm_header.end_how */
enum prof_end_how {
    PROF_END_RUNNING = 0, /* still running, or killed (the reader decides by end_ns == 0) */
    PROF_END_EXIT = 1,    /* exit() / return from main: atexit ran */
    PROF_END_UNDERSCORE_EXIT = 2, /* _exit() / _Exit() */
    PROF_END_EXEC = 3,    /* the image was replaced by a successful exec */
};

/* prof_shm_thread.state */
enum prof_thread_state {
    PROF_THREAD_FREE = 0,
    PROF_THREAD_RUNNING = 1,
    PROF_THREAD_ENDED = 2,    /* the thread returned or called pthread_exit */
    PROF_THREAD_SNAPSHOT = 3, /* still alive when the process ended; figures taken then */
};

struct prof_shm_thread {
    uint32_t state;          /* enum prof_thread_state, stored last */
    int32_t tid;
    char name[16];           /* OS thread name (comm) at the end, or at the last update */
    uint64_t start_ns;       /* when the thread began (pthread_create'd start routine entered) */
    uint64_t end_ns;         /* when it ended or was snapshotted */
    uint64_t cpu_ns;         /* CLOCK_THREAD_CPUTIME_ID at end (cumulative for the task) */
    uint64_t utime_us;       /* getrusage(RUSAGE_THREAD) at end */
    uint64_t stime_us;
    uint64_t vcsw;           /* voluntary context switches */
    uint64_t ivcsw;          /* involuntary context switches */
    uint64_t runq_ns;        /* /proc/self/task/TID/schedstat field 2 at end (0 if unreadable) */
    /* Lock figures, accumulated by the lock interposers (0 when not measured). */
    uint64_t lock_acquisitions;
    uint64_t lock_contended;
    uint64_t lock_wait_ns;   /* time blocked acquiring locks other than the GIL */
    uint64_t gil_wait_ns;    /* time blocked waiting for a CPython GIL */
    uint64_t reserved[8];
};

/* A child this process reaped with wait*(): the only place a killed grandchild's signal is seen. */
struct prof_shm_child {
    int32_t pid;
    int32_t status;          /* raw wait status */
    uint64_t t_ns;
};

/* A lock seen contended (issue: lock contention). Keyed by address; slot claimed with CAS on addr. */
struct prof_shm_lock {
    uint64_t addr;           /* 0 = free slot */
    uint32_t kind;           /* enum prof_lock_kind, see libprof/shim */
    uint32_t pad;
    uint64_t acquisitions;
    uint64_t contended;
    uint64_t wait_ns;
    uint64_t hold_ns;
    uint64_t owner_changes;
    uint64_t site_pc;        /* return address of the hottest contended acquisition */
    char site[PROF_SHM_SITE_BYTES]; /* symbolised lazily: function name (+file:line) */
};

struct prof_shm_header {
    uint64_t magic;
    uint32_t version;
    uint32_t size;           /* bytes of the whole file */
    int32_t pid;
    int32_t ppid;
    uint32_t flags;          /* PROF_PROC_* */
    uint32_t end_how;        /* enum prof_end_how; stored before end_ns */
    uint64_t start_ns;       /* image start: shim constructor (exec) or fork return */
    uint64_t start_realtime_ns;
    uint64_t end_ns;         /* 0 while running; set last at exit or exec */
    int32_t exit_code;       /* valid for PROF_END_EXIT / PROF_END_UNDERSCORE_EXIT */
    uint32_t nthreads;       /* slots claimed (may exceed MAX_THREADS: then dropped_threads counts) */
    uint32_t nchildren;
    uint32_t dropped_threads;
    uint32_t dropped_children;
    uint32_t argc;
    uint64_t vm_hwm_bytes;   /* VmHWM at the end: the exact peak RSS */
    uint64_t rss_end_bytes;  /* VmRSS at the end */
    uint64_t reserved[8];
    char exe[PROF_SHM_PATH_BYTES];   /* readlink /proc/self/exe */
    char argv[PROF_SHM_ARGV_BYTES];  /* NUL-separated, truncated at a NUL boundary */
    struct prof_shm_child children[PROF_SHM_MAX_CHILDREN];
    struct prof_shm_lock locks[PROF_SHM_MAX_LOCKS];
    struct prof_shm_thread threads[PROF_SHM_MAX_THREADS];
};

#endif
