/* sampler_int.h: what the sampler's files share: the tracer's state (threads, processes, the sampler), its constants, and the functions they call in each other. */
#ifndef POOLPROF_SAMPLER_INT_H
#define POOLPROF_SAMPLER_INT_H

/*
 * Private to the sampler: only its own files (samprec_write.c, tree.c, events.c, states.c,
 * stacks.c, switches.c, tick.c and sampler.c) include it, and its functions stay out of the
 * dynamic symbol table.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "perfstack.h"
#include "procstate.h"
#include "pystack.h"
#include "sampler.h"
#include "unwind.h"

#define MAX_LOCK_WORDS 16
#define STOP_HIST_US 2000          /* 1 us buckets up to 2 ms, then 100 us buckets up to 100 ms */
#define STOP_HIST_N (STOP_HIST_US + 980)
#define PSTK_STACK_BYTES 16384  /* user stack copied per perf sample (perf record's default is 8 KiB) */
#define WAIT_SITES 4            /* blocked call sites remembered per thread, with their frames */
#define SW_ACC 8                /* distinct wait sites a thread's switch records are summed by between ticks */
#define SW_SITES 256            /* wait sites per process whose cause a tick has seen */
#define SW_TICK_NS 10000000ULL  /* with switch records (or every kernel copy unwound), the tracer wakes at most this often */
#define BATCH_STACKS 16         /* distinct stacks of a thread's kernel copies between two ticks */

/*
 * An executable that needs a libpython (DT_NEEDED: python3 built with a shared one) gets it
 * from the dynamic linker within a few milliseconds of its exec, and is looked at again at
 * the doubling interval until it has. Any other image could get one from a library that
 * needs it (mapped by then too: PY_LOADER_NS) or from a dlopen, which nothing announces:
 * it is looked at from PY_RETRY_LATE_NS on, doubling, rather than at 32, 64 and 128 ms too.
 * Each look reads the maps (~40 us), and a shell or a native program in the tree was looked
 * at ~8 times in its first half second: 2 ms of the tracer's 9 ms in a 0.7 s run of
 * c_parallel_cpu.
 */
#define PY_LOADER_NS 20000000ULL
#define PY_RETRY_LATE_NS 250000000ULL

/* A thread's latest kernel stack copy, kept raw until a tick uses it. */
struct pstk_copy {
    struct user_regs_struct regs;
    uint64_t sp;
    size_t len;
    unsigned char stack[PSTK_STACK_BYTES];
};

/*
 * A call site a thread blocked at, with the frames a stop found there. A later wait at the
 * same syscall, pc and sp whose return-address slots still hold the same values has the
 * same callers: its frames are these, and the thread is not stopped again (a pool worker
 * waiting for its next task, a thread waiting for the GIL, a lock in a loop).
 */
struct waitsite {
    long nr;
    uint64_t pc, sp;
    uint64_t used;                  /* tick of its latest use: the oldest is replaced */
    size_t n;                       /* frames; n - 1 slots */
    struct prof_unw_frame *fr;
    struct prof_unw_slot *slots;
};

/* Time a thread spent switched out to wait at one place (syscall return address, first argument). */
struct swacc {
    uint64_t ip, arg, ns, n;
};

struct sthr {
    pid_t tid;
    int fd_sched, fd_stat, fd_sys;
    int seized;         /* PTRACE_SEIZE succeeded (or auto-attached) */
    int lazy;           /* known from switch records only, not traced yet (s->lazy_threads): see switches.c */
    uint64_t rec_in;    /* lazy: switched in at rec_in and not out since (0: off CPU) */
    uint64_t rec_pre;   /* lazy: preempted at rec_pre, waiting for a CPU since (0: not) */
    uint64_t rec_cpu, rec_runq; /* lazy: on-CPU and run-queue time from its records since its last tick */
    uint64_t rec_last;  /* lazy: time of its latest record */
    int lazy_ending;    /* lazy: found gone at a tick; dropped at the next, after its last records */
    int listening;      /* in a group-stop we keep with PTRACE_LISTEN */
    int interrupting;   /* a PTRACE_INTERRUPT of ours is pending */
    int dead;
    int exiting;        /* PTRACE_EVENT_EXIT seen */
    int have_base;
    uint64_t cpu, runq, t;          /* schedstat at the last tick */
    int pre;                        /* this tick's schedstat already read (pre_cpu, pre_runq), by py_still */
    uint64_t pre_cpu, pre_runq;
    uint64_t debt;                  /* schedstat time reported beyond the wall time so far */
    enum prof_tstate state;         /* seen at the last tick */
    enum prof_tstate blocked;       /* latest blocked cause, for off-CPU time seen while running */
    uint64_t blocked_addr;
    uint32_t stack, blocked_stack;  /* latest stack; stack of the latest blocked episode */
    uint64_t stack_cpu;             /* schedstat cpu when `stack` was taken */
    int classified;                 /* `state` has been read at least once */
    struct prof_syscall sc;         /* the syscall of the current blocked episode */
    struct prof_syscall sc_wait;    /* the last blocking syscall read that was not restart_syscall */
    uint64_t stack_end;             /* a stop copies its stack up to here (0: PROF_UNW_STACK_BYTES) */
    struct prof_syscall stack_sc;   /* the syscall it was blocked in when `nat` was taken */
    int have_stack_sc;
    int cut;                        /* consecutive blocked stacks cut short (unwind stopped early) */
    uint64_t py_sig;                /* Python frames behind `stack` */
    struct prof_unw_frame *nat;     /* latest native frames (a thread that did not run keeps them) */
    size_t nnat;
    struct waitsite *ws;            /* WAIT_SITES, allocated at its first blocked stack */
    uint64_t py_n, py_held, py_held_cpu;
    int py_dirty;
    int pstk_new;                   /* a perf sample came since the last tick: it is in pcopy */
    struct pstk_copy *pcopy;
    uint64_t pstk_cpu;              /* schedstat cpu at its latest perf sample (or when first seen) */
    int pstk_own;                   /* events opened for it by tid (not inherited) */
    int pstk_fail;                  /* opening them failed (e.g. out of descriptors): stopped for its stacks */
    /* From the kernel's switch records (s->swr): the waits between two ticks, exactly. */
    int sw_open;                    /* switched out to wait at sw_start and not back yet */
    int sw_last;                    /* the type of its latest switch record (enum prof_sw_type) */
    uint64_t sw_tick;               /* the tick whose drain last held a record of it */
    uint64_t sw_start, sw_ip, sw_arg, sw_sp;   /* that wait and where it is (ip 0: not known) */
    uint64_t where_ip, where_arg, where_sp, where_t;  /* the latest switch-out sample */
    struct swacc acc[SW_ACC];       /* waits ended since the last tick, by where */
    int nacc;
    uint64_t acc_rest, acc_rest_n;  /* ... at further places (or unknown ones) */
    /* Every kernel copy unwound (s->pstk_batch): the stacks of its samples since the last tick. */
    struct { uint32_t id, n; } bst[BATCH_STACKS];
    int nbst;
    uint32_t bst_last;              /* the newest of them */
    /* Its timeline (S lines): per state, the time the buckets got and the spans have not drawn
     * yet (negative: drawn ahead); the latest span (t1 0: none yet), open until written. */
    int64_t span_bal[PROF_TS_COUNT];
    uint64_t span_t0, span_t1;
    uint8_t span_state, span_open;
};

/* What a tick found a thread waiting on at one place: later waits there are the same. */
struct swsite {
    uint64_t ip, arg, addr;
    uint8_t state, used;
};

struct lockword {
    uint64_t addr, ticks, held;
};

#define FDCACHE 16
struct fdcache {
    int fd;
    uint32_t gen;                   /* s->tree_gen when classified */
    uint64_t t;
    enum prof_fdkind kind;
    char link[48];
};

struct sproc {
    pid_t pid, ppid;
    int dead;
    int ours;           /* a child of this process: our wait reaps it, so its status is handed over */
    int execd;
    uint64_t gen;       /* images seen (exec count): stack hashes never match across images */
    int x_pending;      /* the leader left with pthread_exit (status 0) while threads ran on: X waits */
    int x_msg;          /* the latest exit status seen for a thread of it */
    uint64_t exec_ns;   /* when its latest exec was seen: perf samples older than that are of the old image */
    uint64_t born_ns;   /* fork event time, for the attach-latency figure; 0 = found by scan */
    int sampled;
    struct sthr *thr;
    size_t nthr, capthr;
    struct prof_py *py;
    uint64_t py_due;    /* when to look for CPython in it (again); 0 = not due */
    uint64_t py_backoff;
    uint64_t py_said;   /* gen + 1 of the image its P line was written for */
    int py_gil_said;    /* the gil= its last P line said (0: a free-threaded build without its GIL) */
    char *py_refused;   /* why this image's CPython cannot be read (its P line's pyerr), or NULL */
    char *exe, *cmd;    /* the image's executable and cmdline (NUL-separated, cmdlen bytes) for its P line, or NULL */
    size_t cmdlen;
    uint64_t py_exe_no; /* gen + 1 of the image whose executable was found not to be CPython */
    int py_needs;       /* ...and that executable needs a libpython (DT_NEEDED): looked at often until mapped */
    uint64_t gil_cond, gil_cond_len, gil_mutex, gil_mutex_len;
    struct prof_unw *unw;
    struct lockword locks[MAX_LOCK_WORDS];
    struct fdcache fdc[FDCACHE];    /* descriptor kinds, by fd (see fd_kind) */
    int nlocks;
    int locks_dirty;
    struct swsite *sites;           /* SW_SITES, direct-mapped by (ip, arg); with switch records only */
};

/* One aggregated sample bucket, flushed as a C line. */
struct bucket {
    pid_t pid, tid;
    uint8_t state;
    uint32_t stack;
    uint64_t addr;
    uint64_t n, ns;
    uint64_t held; /* of n, the ticks a CPython thread ran holding its GIL */
    int used;
};

struct strtab {
    char **keys;
    uint32_t *ids;
    size_t cap, n;
};

struct fastent {
    uint64_t h;
    uint32_t id;
};

struct prof_sampler {
    struct prof_sampler_opts o;
    char rundir[PATH_MAX];
    pthread_t thread;
    pid_t tracer_tid;
    FILE *rec;
    int rec_err;
    atomic_int stop;
    _Atomic uint64_t tree_events; /* clone, fork, vfork, exec and exit events seen (prof_sampler_tree_events) */
    atomic_int idle;
    atomic_int root_exited;
    atomic_int root_status;
    int follow;                 /* ptrace in use */
    char note[256];
    /* start handshake */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;
    int start_err;
    /* tree */
    struct sproc **procs;
    size_t nprocs, capprocs;
    /* aggregation */
    struct bucket *buckets;
    size_t capb, nb;
    struct strtab stacks, modules;
    struct fastent *fast;       /* frame hash -> stack id, in front of `stacks` */
    size_t fast_cap, fast_n;
    /* self-report */
    uint64_t t0, ticks, late, errors, stops, unwind_frames, unwind_ns, attach_latency_max;
    uint64_t waits_reused;      /* blocked stacks taken from a wait site without a stop */
    uint64_t peeks, peeks_failed; /* blocked stacks copied without a stop (blocked_stack), and tries that stopped after all */
    uint64_t wait_stops;        /* stops taken for a blocked thread's stack (a new wait, or a site reached from new callers) */
    uint64_t unw_load_ns, unw_loads; /* one-off module loads inside unwinds, not in unwind_ns */
    uint64_t unw_decode_ns, unw_decodes; /* first decodes of rules: in unwind_ns, not in unw_hist */
    uint64_t unw_fast, unw_slow;     /* unwinds done by cached .eh_frame rules, by libunwind */
    struct prof_unw_slot slots[PROF_UNW_MAX_FRAMES]; /* of the latest unwind_snap */
    int snap_whole;             /* the latest unwind_snap reached the outermost frame */
    uint64_t stop_hist[STOP_HIST_N + 1];
    uint64_t irq_hist[STOP_HIST_N + 1], irqs;
    uint64_t unw_hist[1001];    /* per-frame unwind cost of each stack, 10 ns buckets */
    uint64_t unws;
    const char *sched;          /* the tracer thread's scheduling: "fifo", "nice" or "normal" */
    uint32_t tree_gen;          /* bumped at every process seen, gone or exec'd: cached descriptor kinds are redone */
    uint64_t stop_max;
    uint64_t seed;
    timer_t timer;              /* one-shot, re-armed only once it has fired */
    timer_t watchdog;           /* periodic, never re-armed: bounds a lost wake-up */
    int have_timer, have_watchdog;
    uint64_t armed;             /* deadline the one-shot timer is set for (0: none) */
    uint64_t next_scan;
    uint64_t next_tick;         /* pulled forward when a new process appears */
    uint64_t next_new;          /* a tick of the processes not sampled yet is due (0: none) */
    struct { pid_t tid; int status; } deferred[256]; /* events that arrived during a tick */
    size_t ndeferred;
    struct prof_unw_snap *snap;
    struct prof_pstk *pstk;     /* kernel-copied stacks (NULL: native stacks stop the thread) */
    uint64_t period_ns;         /* between ticks */
    uint64_t sample_ns;         /* between kernel stack copies (CPU time): 1/rate */
    int pstk_batch;             /* every kernel copy is unwound as it is read, the tick at most 100 Hz */
    uint64_t pstk_samples, pstk_used;
    struct prof_pstk *swr;      /* context-switch records (NULL: states from ticks alone) */
    uint64_t sw_records, sw_waits, sw_waits_known;
    uint64_t sw_lost_seen;      /* switch records lost as of the last tick */
    uint64_t sw_idle;           /* thread-ticks not read: blocked, and no switch since (self-report) */
    int sw_backoff;             /* the ticks may slow down while they see nothing new (switch records, and
                                   native stacks only from the kernel's copies, all unwound) */
    int sw_new;                 /* this tick saw something new (see SW_QUIET_TICKS) */
    unsigned sw_quiet;          /* ticks in a row that saw nothing new */
    uint32_t sw_tree_gen;       /* tree_gen at the last tick */
    struct sthr **tidx;         /* tid -> thread, rebuilt per drain of switch records */
    size_t tidx_cap;
    struct sproc **pidx;        /* pid -> live process, rebuilt with tidx */
    size_t pidx_cap;
    /*
     * Threads followed by their switch records, not by clone events (switch records open and
     * ptrace in use): PTRACE_O_TRACECLONE is off, so creating a thread stops nobody. A thread
     * the records show is timed from them, and seized at the first tick that finds it alive.
     */
    int lazy_threads;
    uint64_t lazy_seen, lazy_seized; /* threads first known from records; of them, seized at a tick */
    pid_t *sw_cur;              /* per ring (CPU): the tid its latest record switched in, 0 if it left */
    size_t sw_ncur;
    pid_t *foreign;             /* pids the records showed that are not of the tree (open addressing, 0 free) */
    size_t foreign_cap, foreign_n;
    char *buf;                  /* scratch for stack keys */
    size_t bufcap;
};

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#pragma GCC visibility push(hidden)

/* samprec_write.c: record lines, the sample buckets and their flush. */
void samp_out(struct prof_sampler *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void samp_flush_file(struct prof_sampler *s);
const char *samp_esc(char *dst, size_t cap, const char *src);
void samp_bucket_add(struct prof_sampler *s, const struct sproc *p, struct sthr *th, enum prof_tstate st,
                     uint32_t stack, uint64_t addr, uint64_t n, uint64_t ns, uint64_t held);
void samp_span_interval(struct prof_sampler *s, const struct sproc *p, struct sthr *th, uint64_t t0, uint64_t t1,
                        enum prof_tstate first, enum prof_tstate last);
void samp_flush_records(struct prof_sampler *s, uint64_t t);

/* tree.c: the tree's processes and threads. */
struct sproc *samp_proc_find(struct prof_sampler *s, pid_t pid);
struct sthr *samp_thr_find(struct prof_sampler *s, pid_t tid, struct sproc **pp);
int samp_open_task_file(pid_t pid, pid_t tid, const char *name);
struct sthr *samp_thr_add(struct sproc *p, pid_t tid);
void samp_waitsites_free(struct sthr *th);
void samp_thr_gone(struct sthr *th);
void samp_p_line(struct prof_sampler *s, struct sproc *p, int python, const char *why);
void samp_proc_ident(struct sproc *p, const struct sproc *from);
void samp_proc_py_sampled(struct prof_sampler *s, struct sproc *p, int rc);
void samp_proc_refused(struct sproc *p, const char *why);
void samp_proc_python(struct prof_sampler *s, struct sproc *p);
struct sproc *samp_proc_add(struct prof_sampler *s, pid_t pid, pid_t ppid, uint64_t born);
void samp_proc_gone(struct prof_sampler *s, struct sproc *p);
void samp_tid_gone(struct prof_sampler *s, pid_t tid);
int samp_seize(const struct prof_sampler *s, pid_t tid);
struct sthr *samp_thr_add_lazy(struct sproc *p, pid_t tid);
void samp_thr_open_files(struct sproc *p, struct sthr *th);
void samp_lazy_tick(struct prof_sampler *s, struct sproc *p, struct sthr *th, uint64_t t, int final);
void samp_lazy_finish(struct prof_sampler *s, struct sproc *p);
int samp_lazy_alive(struct prof_sampler *s, struct sproc *p, struct sthr *th);
void samp_proc_take_threads(struct prof_sampler *s, struct sproc *p);
pid_t samp_stat_ppid(pid_t pid, unsigned long long *start);
void samp_scan_tree(struct prof_sampler *s);

/* events.c: ptrace events and the tracer's interrupt stops. */
void samp_new_task(struct prof_sampler *s, struct sproc *parent, pid_t id, int event);
void samp_x_line(struct prof_sampler *s, struct sproc *p, int status);
uint64_t samp_off_cpu(struct sthr *th, uint64_t dt, uint64_t dcpu, uint64_t drunq);
int samp_handle_status(struct prof_sampler *s, pid_t tid, int st, int mine);
int samp_interrupt_wait(struct prof_sampler *s, struct sthr *th);
void samp_handle_deferred(struct prof_sampler *s);

/* states.c: thread states from /proc. */
ssize_t samp_pread_text(int fd, char *buf, size_t cap);
int samp_read_schedstat(struct sthr *th, uint64_t *cpu, uint64_t *runq);
int samp_live_procs(struct prof_sampler *s);
enum prof_tstate samp_classify(struct prof_sampler *s, struct sproc *p, struct sthr *th, char *statep,
                               uint64_t *addr);

/* stacks.c: native stacks and their ids. */
void samp_strtab_free(struct strtab *t);
uint32_t samp_stack_id(struct prof_sampler *s, struct sproc *p, const struct prof_unw_frame *nf, size_t nn,
                       const struct prof_py_thread *pt);
size_t samp_native_stack(struct prof_sampler *s, struct sproc *p, struct sthr *th, struct prof_unw_frame *fr);
size_t samp_blocked_stack(struct prof_sampler *s, struct sproc *p, struct sthr *th, struct prof_unw_frame *fr,
                          uint64_t c0, int *woke);
size_t samp_wait_site_frames(struct prof_sampler *s, struct sthr *th, struct prof_unw_frame *fr, int *known);
void samp_wait_site_keep(struct prof_sampler *s, struct sthr *th, const struct prof_unw_frame *fr, size_t n);
void samp_on_pstk(void *ctx, const struct prof_pstk_sample *smp);
size_t samp_pstk_unwind(struct prof_sampler *s, struct sproc *p, struct sthr *th, struct prof_unw_frame *fr);
void samp_pstk_cover(struct prof_sampler *s);

/* switches.c: waits from the kernel's switch records. */
int samp_site_learn(struct sproc *p, uint64_t ip, uint64_t arg, enum prof_tstate st, uint64_t addr);
void samp_acc_done(struct prof_sampler *s, const struct sproc *p, struct sthr *th);
void samp_switches_take(struct prof_sampler *s);
int samp_switches_split(struct prof_sampler *s, struct sproc *p, struct sthr *th, uint64_t tr, uint64_t off,
                        int blocked, enum prof_tstate st, uint64_t addr, uint32_t stack);
int samp_states_by_records(struct prof_sampler *s, const struct sproc *p, struct sthr *th, enum prof_tstate *st,
                           uint64_t *addr);

/* tick.c: one tick. */
void samp_tick(struct prof_sampler *s, uint64_t t);
void samp_tick_new(struct prof_sampler *s, uint64_t t);
uint64_t samp_tick_period(const struct prof_sampler *s);

/* sampler.c: the tracer thread. */
void samp_arm(struct prof_sampler *s, uint64_t deadline);
char samp_task_state(pid_t pid, pid_t tid);

#pragma GCC visibility pop

#endif
