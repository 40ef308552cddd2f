/* shim.h: private interface shared by the files of the LD_PRELOAD shim: its state, the real symbols, small helpers. */
#ifndef POOLPROF_SHIM_H
#define POOLPROF_SHIM_H

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/poll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "format/shm.h"

/* Interposers must win symbol lookup although the library is built -fvisibility=hidden. */
#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHIM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SHIM_TLS __thread __attribute__((tls_model("initial-exec")))
/*
 * What one file of the shim defines for others: -fvisibility=hidden covers definitions, not
 * extern declarations, so these say it themselves and their users address them directly.
 */
#define SHIM_HIDDEN __attribute__((visibility("hidden")))
/* The interposer's caller: the lock's call site. A macro, so it is read in the interposer itself. */
#define SHIM_CALLER() ((uintptr_t)__builtin_return_address(0))

#define SHIM_PATH_MAX 4096

/* The next definition of every interposed symbol, resolved once (dlsym RTLD_NEXT). */
struct shim_real {
    int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    int (*mutex_lock)(pthread_mutex_t *);
    int (*mutex_timedlock)(pthread_mutex_t *, const struct timespec *);
    int (*sem_wait)(sem_t *);
    int (*sem_timedwait)(sem_t *, const struct timespec *);
    int (*sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
    int (*sem_trywait)(sem_t *);
    int (*sem_post)(sem_t *);
    int (*cond_wait)(pthread_cond_t *, pthread_mutex_t *);
    int (*cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
    int (*cond_clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
    int (*barrier_wait)(pthread_barrier_t *);
    void (*exit)(int);
    void (*uexit)(int);
    void (*uExit)(int);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*execveat)(int, const char *, char *const[], char *const[], int);
    int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                       const posix_spawnattr_t *, char *const[], char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                        const posix_spawnattr_t *, char *const[], char *const[]);
    pid_t (*wait)(int *);
    pid_t (*waitpid)(pid_t, int *, int);
    pid_t (*wait3)(int *, int, struct rusage *);
    pid_t (*wait4)(pid_t, int *, int, struct rusage *);
    int (*waitid)(idtype_t, id_t, siginfo_t *, int);
    int (*sigsuspend)(const sigset_t *);
    int (*pause)(void);
    int (*sigwaitinfo)(const sigset_t *, siginfo_t *);
    int (*sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *);
    int (*sigwait)(const sigset_t *, int *);
    int (*libc_start_main)(int (*)(int, char **, char **), int, char **, void (*)(void),
                           void (*)(void), void (*)(void), void *);
    /* issue 3: locks */
    int (*mutex_unlock)(pthread_mutex_t *);
    int (*rw_rdlock)(pthread_rwlock_t *);
    int (*rw_wrlock)(pthread_rwlock_t *);
    int (*rw_timedrdlock)(pthread_rwlock_t *, const struct timespec *);
    int (*rw_timedwrlock)(pthread_rwlock_t *, const struct timespec *);
    int (*rw_clockrdlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
    int (*rw_clockwrlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
    int (*spin_lock)(pthread_spinlock_t *);
    int (*join)(pthread_t, void **);
    int (*timedjoin)(pthread_t, void **, const struct timespec *);
    int (*clockjoin)(pthread_t, void **, clockid_t, const struct timespec *);
    /* issue 3: I/O and IPC */
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    ssize_t (*preadv)(int, const struct iovec *, int, off_t);
    ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
    ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
    ssize_t (*pwritev2)(int, const struct iovec *, int, off_t, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    int (*close)(int);
    int (*close_range)(unsigned int, unsigned int, int);
    void (*closefrom)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*socket)(int, int, int);
    int (*socketpair)(int, int, int, int[2]);
    int (*pipe)(int[2]);
    int (*pipe2)(int[2], int);
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    /* issue 25: sleeps */
    int (*nanosleep)(const struct timespec *, struct timespec *);
    int (*clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
    int (*usleep)(useconds_t);
    unsigned int (*sleep)(unsigned int);
};

extern struct shim_real shim_real;
extern int shim_resolved;                 /* shim_real is complete (acquire) */
extern struct prof_shm_header *shim_hdr;  /* NULL: inert, or not initialised yet */
extern int shim_active;                   /* POOLPROF_DIR set: follow execs */
extern int shim_python;                   /* this image runs CPython */
extern char shim_dir[SHIM_PATH_MAX];      /* POOLPROF_DIR */
extern char shim_path[SHIM_PATH_MAX];     /* POOLPROF_SHIM (or our own path) */
extern long shim_clk_tck;
extern pthread_key_t shim_key;            /* destructor records a thread's end */
/*
 * The shim's own state per thread slot, indexed as the record's slots are: a static array for
 * the fixed table's PROF_SHM_MAX_THREADS, then chunks mmap'd on demand, chunk j holding
 * PROF_SHM_MAX_THREADS << j (format/shm.h, prof_shm_chunk). Never malloc: fork children and
 * signal handlers reach these.
 */
struct shim_parr {
    size_t elem;          /* bytes per slot */
    void *fixed;          /* PROF_SHM_MAX_THREADS of them */
    char *chunk[PROF_SHM_EXT_CHUNKS];
};
extern SHIM_HIDDEN struct shim_parr shim_slot_final; /* unsigned char: 1 once the slot's final figures are taken */
extern SHIM_HIDDEN struct shim_parr shim_tramp;      /* thread.c: each slot's start routine */
extern SHIM_HIDDEN struct shim_parr shim_stage_parr; /* stage.c: each slot's open stages */
extern SHIM_TLS struct prof_shm_thread *shim_tls_slot;

/* init.c */
void shim_resolve(void);
void shim_init(void);
/* A record of our own for process `pid` (file, else anonymous memory); NULL if even that fails. */
struct prof_shm_header *shim_record_map(pid_t pid, uint64_t start_ns);
/* What a fork child needs to make its record on first need (init.c): together, so a fork writes
 * one page of it. */
struct shim_fork_state {
    int pending;                   /* 1: a fork child without its record yet; 2: being made */
    int stages_used;               /* stage markers were ever used (stage.c): depth must be read */
    struct prof_shm_header *old;   /* the parent's record, still mapped in the child */
    struct prof_shm_thread *oldt;  /* the forking thread's slot in it */
    uint32_t depth;                /* the stages it had open at the fork */
    pid_t pid;                     /* the child: a vfork child of it shares this memory, and makes none */
    uint64_t ns;                   /* when the child began */
} __attribute__((aligned(64)));
extern struct shim_fork_state shim_fork_st;
struct prof_shm_thread *shim_fork_record(void);
/*
 * The calling thread's slot, for an interposer about to record: a fork child's record is made
 * here first. NULL: record nothing (inert, a vfork child, a thread the shim did not start).
 */
static inline struct prof_shm_thread *shim_self(void)
{
    struct prof_shm_thread *t = shim_tls_slot;
    if (SHIM_UNLIKELY(!t) && SHIM_UNLIKELY(__atomic_load_n(&shim_fork_st.pending, __ATOMIC_RELAXED) == 1))
        t = shim_fork_record();
    return t;
}
/* Before the first write of [p, p+len) in the record: 0 when its pages have their disk blocks (or
 * p is not in the record), -1 when the disk has no room (counted in nospace_drops: skip the write). */
int shim_record_room(const void *p, size_t len);

/* slots.c */
/* Slot idx of the record: in the fixed table, or in its extension chunk, cut on first use when
 * alloc. NULL when the chunk is absent, or did not fit (counted in ext_refused). */
struct prof_shm_thread *shim_thread_at(struct prof_shm_header *h, size_t idx, int alloc);
struct prof_shm_child *shim_child_at(struct prof_shm_header *h, size_t idx, int alloc);
/* The index of thread slot t of record h: 0, or -1 when t is not one of its slots. */
int shim_thread_index(const struct prof_shm_header *h, const struct prof_shm_thread *t, size_t *idx);
/* Slot idx of a per-slot array, its chunk mmap'd on first use when alloc; NULL when absent or not mappable. */
void *shim_parr_at(struct shim_parr *a, size_t idx, int alloc);
/* A new thread's slot idx: its entries of every per-slot array exist. 0, or -1 (no memory). */
int shim_thread_slot_ready(size_t idx);
/* fork child: the per-slot arrays start over with the child's empty record. */
void shim_slots_fork_child(void);

/* thread.c */
void shim_thread_fill_self(struct prof_shm_thread *t, uint64_t now);
/* The process ends (exit, _exit, exec): snapshot the survivors, store end_how then end_ns. Once. */
void shim_proc_end(uint32_t how);
/* An exec failed: the image lives on, undo shim_proc_end. */
void shim_proc_end_undo(void);
/* A forked child starts a new image: its end is still to come. */
void shim_proc_end_reset(void);
/* 1 when called in the process that owns shim_hdr (not a vfork child or raw clone). */
int shim_owner(void);

/* stage.c */
/* A thread's slot is (re)claimed: forget any stage state a previous user of the index left. */
void shim_stage_thread_start(size_t idx);
/* Close every stage the thread of slot `t` has open (thread or process end). self: t is ours. */
void shim_stage_close_all(struct prof_shm_header *h, struct prof_shm_thread *t, int self, uint64_t now);
/* fork child: carry the forking thread's open stages into the child's new record (slot 0). */
void shim_stage_fork(struct prof_shm_header *oldh, struct prof_shm_thread *oldt, uint32_t depth,
                     struct prof_shm_header *h, struct prof_shm_thread *t, uint64_t now);

/* locksite.c */
/* fork child, before its record: no lock is in the table (lookups find none). */
void shim_lock_fork_child_fast(void);
/* Its record made: the tables start empty. */
void shim_lock_fork_child(void);
/* Process end: name each lock's hottest call site (libunwind). Not for vfork/raw fork children. */
void shim_lock_symbolise(struct prof_shm_header *h);

/*
 * The per-lock table (locksite.c), which lock.c and sem.c fill: its lookup is on their
 * fast paths, so it is inline here; the table itself and the contended path are locksite.c's.
 */
#define LK_PROBES 8
#define LK_SITES 4

struct lk_priv {
    int32_t owner;        /* tid holding it (mutex), 0 if none seen */
    int32_t last_owner;
    uint32_t depth;       /* recursive levels held by owner */
    uint64_t t_acq;
    uintptr_t site_pc[LK_SITES];
    uint64_t site_wait[LK_SITES];
};

extern SHIM_HIDDEN uintptr_t lk_addr[PROF_SHM_MAX_LOCKS]; /* private, dense copy of the table's addresses */
extern SHIM_HIDDEN struct lk_priv lk_priv[PROF_SHM_MAX_LOCKS];
extern SHIM_HIDDEN int lk_any; /* 1 once any lock entered the table */

static inline unsigned lk_hash(const void *a)
{
    uint64_t x = (uint64_t)(uintptr_t)a;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return (unsigned)(x >> 40) % PROF_SHM_MAX_LOCKS;
}

static inline int lk_lookup(const void *a)
{
    if (SHIM_LIKELY(!__atomic_load_n(&lk_any, __ATOMIC_RELAXED)))
        return -1;
    unsigned i = lk_hash(a);
    for (int k = 0; k < LK_PROBES; k++, i = (i + 1) % PROF_SHM_MAX_LOCKS) {
        uintptr_t v = __atomic_load_n(&lk_addr[i], __ATOMIC_ACQUIRE);
        if (v == (uintptr_t)a)
            return (int)i;
        if (!v)
            return -1;
    }
    return -1;
}

/* A contended acquisition of lock a, waited `wait` ns at call site pc: the lock enters the table. */
SHIM_HIDDEN void lk_contended(const void *a, uint32_t kind, uintptr_t pc, uint64_t wait);

/* An uncontended acquisition of a non-mutex lock: counted if the lock is in the table; its index, or -1. */
static inline int lk_fast_other(const void *a)
{
    int i = lk_lookup(a);
    if (SHIM_UNLIKELY(i >= 0))
        __atomic_fetch_add(&shim_hdr->locks[i].acquisitions, 1, __ATOMIC_RELAXED);
    return i;
}

/* sem.c */
void shim_sem_fork_child(void);

/* io.c */
/* RUNDIR/proc has a record of process `pid`: it belongs to the profiled tree. */
int shim_pid_in_tree(pid_t pid);

/* exec.c */
void shim_exec_prepare(void);

/* exit.c */
void shim_note_exit_code(int code);

/* proc.c: /proc readers and formatting without malloc or stdio (fork child, exit, exec paths). */
ssize_t shim_read_file(const char *path, char *buf, size_t cap);
char *shim_fmt_u64(char *dst, uint64_t v);
char *shim_stpcpy(char *dst, const char *src);
uint64_t shim_parse_u64(const char *s, const char **end);
/* Value of a "Key:   123" line of a /proc status file, 0 if absent. */
uint64_t shim_status_field(const char *buf, const char *key);
/* fn(dfd, name, number, arg) for each all-digit entry of directory `dir` (a raw getdents64 on the
 * stack: opendir would malloc, and this runs in fork children and at exits) until fn returns
 * nonzero; that value, or 0. */
int shim_each_numeric(const char *dir, int (*fn)(int dfd, const char *name, uint64_t num, void *arg), void *arg);
/* Does process `pid`'s environment (as it was exec'd) hold the entry `kv` ("NAME=value")? */
int shim_environ_has(pid_t pid, const char *kv);
/* Append the children of every thread of `pid` to v[*n..cap) (/proc/PID/task/TID/children). */
void shim_children_of(pid_t pid, pid_t *v, size_t *n, size_t cap);
/* The parent of `pid` from /proc/PID/stat, 0 if it cannot be read. */
pid_t shim_ppid_of(pid_t pid);

/* The shim's own descriptor work bypasses its interposers: raw system calls, errno set as usual. */
static inline int shim_sys_open(const char *path, int flags, int mode)
{
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static inline ssize_t shim_sys_read(int fd, void *buf, size_t n)
{
    return (ssize_t)syscall(SYS_read, fd, buf, n);
}

static inline int shim_sys_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

extern int shim_notsc;

static inline uint64_t shim_clock_ns(clockid_t c)
{
    struct timespec ts;
    /* Where rdtsc faults (PR_SET_TSC) the vDSO's clock_gettime faults too: ask the kernel. */
    if (SHIM_UNLIKELY(shim_notsc))
        syscall(SYS_clock_gettime, c, &ts);
    else
        clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * CLOCK_MONOTONIC in nanoseconds, from the TSC where the kernel's clock is the TSC
 * (clock.c): per thread, a TSC anchor, the vDSO reading it stands for, and the rate
 * measured against the vDSO. span 0: not calibrated yet, the slow path reads the vDSO.
 */
#if defined(__x86_64__)
#define SHIM_RDTSC() __builtin_ia32_rdtsc()
#else
#define SHIM_RDTSC() 0ull /* shim_clock_setup never turns the TSC on here */
#endif
struct shim_clock {
    uint64_t seq;                   /* odd while the slow path rewrites the rest; bumped by each rewrite */
    uint64_t tsc0, ns0, span, mult; /* mult: ns per TSC tick, 32.32 fixed point */
    uint64_t ref_tsc, ref_ns;       /* the last vDSO reading: where the next rate is measured from */
};
extern int shim_tsc_ok;
extern uint64_t shim_clock_span_ns;
extern SHIM_TLS struct shim_clock shim_clk;
void shim_clock_setup(int tsc);
uint64_t shim_mono_slow(void);

static inline uint64_t shim_mono_ns(void)
{
    if (SHIM_LIKELY(shim_tsc_ok)) {
        /* A signal handler's own timed call may re-anchor between our loads: seq tells. */
        uint64_t seq = shim_clk.seq;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        uint64_t d = SHIM_RDTSC() - shim_clk.tsc0;
        if (SHIM_LIKELY(d < shim_clk.span && !(seq & 1))) {
            uint64_t v = shim_clk.ns0 + (uint64_t)(((unsigned __int128)d * shim_clk.mult) >> 32);
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
            if (SHIM_LIKELY(shim_clk.seq == seq))
                return v;
        }
        return shim_mono_slow();
    }
    return shim_clock_ns(CLOCK_MONOTONIC);
}

#endif
