/* monitor_int.h: what the monitor's files (monitor.c, scan.c, readings.c, record.c) share: the table of watched processes and threads, the descriptor budget and the record's writers. */
#ifndef POOLPROF_MONITOR_INT_H
#define POOLPROF_MONITOR_INT_H

/*
 * Private to libprof/monitor: nothing else includes it. Its names carry mon_ because the
 * monitor is a static library linked into the CLI beside the sampler and the pipeline.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "monitor/monitor.h"

/*
 * Cost model: the monitor shares a small machine with the target, so it does
 * as little as it can per wake-up. Descriptors of the files it samples often
 * (statm, smaps_rollup, per-thread stat/schedstat/status) are opened once and
 * pread at offset 0, which regenerates a /proc file without a path walk. A
 * /proc/PID directory descriptor pins the process it was opened for: once
 * that process is gone, every read through it fails, so a recycled pid is
 * never mistaken for a tracked one. New processes are found every 100 ms in the
 * children files of the tree's threads and of our own (we are a child subreaper:
 * orphans come to us), reading the stat file only of pids not seen before; the
 * whole of /proc (every process on the machine, 19% of the monitor's CPU under a
 * Python pool) is listed only where the kernel has no children files.
 */

/*
 * stat and status are re-read at least this often (in scans) even when schedstat has not moved:
 * a thread's name can be set by another thread while it sleeps.
 */
#define THR_REREAD_SCANS 10

struct mthr {
    pid_t tid;
    int fd_stat, fd_sched, fd_status;
    /* The last figures read: a thread whose schedstat has not moved did not run since, so its
     * stat and status (the costlier reads) have not moved either. */
    int have;
    unsigned skipped;         /* scans since stat and status were last read */
    unsigned long long cpu, runq, slices, utime, stime, vcsw, ivcsw, start, minflt, majflt;
    /* When its children file was last read (kids_read 0: never), and scans since. */
    int kids_read;
    unsigned kids_skipped;
    unsigned long long kids_cpu, kids_slices;
    /* schedstat as list_tree read it moments ago in this scan (fresh 1), for mon_thr_sample. */
    int fresh;
    unsigned long long fresh_cpu, fresh_runq, fresh_slices;
    char name[64 * 3 + 1];    /* escaped */
};

struct mproc {
    pid_t pid;
    int dead;                 /* a read through its descriptors failed: report G */
    int dirfd, taskfd;        /* /proc/PID and /proc/PID/task */
    int fd_statm, fd_smaps, fd_cmdline;
    uint64_t mem_last;        /* last smaps_rollup read, or when first seen */
    uint64_t mem_gap;         /* at least this long after mem_last before the next one */
    unsigned long long rss_pages;
    unsigned long long start_ticks;
    char *exe;
    char *cmd;                /* raw /proc/PID/cmdline */
    size_t cmdlen;
    struct mthr *thr;         /* sorted by tid */
    size_t nthr, cthr;
    pid_t *listed;            /* this scan's listing of its task directory, sorted (list_tree) */
    size_t nlisted, clisted;
    int have_listed;          /* listed this scan and not yet sampled */
};

/* Fields of a stat line after the command name, which may hold spaces and parentheses. */
struct statf {
    char state;
    int ppid;
    unsigned long long utime, stime, start, minflt, majflt;
    char name[64];
};

/* scan.c: the watched processes (sorted by pid), their threads, and the search for new ones. */
extern struct mproc **mon_procs;
extern size_t mon_nprocs;
struct mproc *mon_proc_find(pid_t pid, size_t *pos);
void mon_proc_free(struct mproc *p, uint64_t t, int gone);
void mon_procs_compact(uint64_t t);
/* Start tracking pid; fb: the root's stand-ins for what an exited process no longer shows. */
struct mproc *mon_proc_track(pid_t pid, unsigned long long start_ticks, uint64_t t,
                             const struct monitor_opts *fb);
void mon_proc_check_exec(struct mproc *p, uint64_t t);
void mon_proc_sample_threads(struct mproc *p, uint64_t t);
void mon_scan(int procfd, int filesfd, uint64_t t);

/* readings.c: one process's or thread's figures, through descriptors kept open while the budget allows. */
extern long mon_fd_budget, mon_fd_cached;
/* monitor_opts' counters observer hooks (NULL: none), for the scans. */
extern void (*mon_task_seen)(void *ctx, pid_t pid, pid_t tid, int born);
extern void *mon_ctr_ctx;
ssize_t mon_pread_once(int fd, char *buf, size_t cap);
void mon_close_cached(int *fd);
int mon_parse_stat(const char *buf, struct statf *s);
char *mon_read_cmdline(struct mproc *p, size_t *len);
char *mon_read_exe(int dirfd);
int mon_proc_is_static(int dirfd);
void mon_proc_sample_rss(struct mproc *p, uint64_t t);
void mon_proc_sample_mem(struct mproc *p, uint64_t t, uint64_t min_gap, size_t watched);
uint64_t mon_thread_cpu_ns(void);
int mon_read_schedstat(struct mproc *p, struct mthr *th, unsigned long long *cpu, unsigned long long *runq,
                       unsigned long long *slices);
int mon_thr_sample(struct mproc *p, struct mthr *th, uint64_t t);
void mon_out_steal(int fd, uint64_t t);

/* record.c: the lines of RUNDIR/monitor.rec. mon_rec_err: the errno that stopped recording, 0 while it goes on. */
extern int mon_rec_err;
extern long mon_ticks_per_sec, mon_page_size;
__attribute__((format(printf, 1, 2))) void mon_out(const char *fmt, ...);
void mon_out_rss(uint64_t t, pid_t pid, unsigned long long bytes);
void mon_out_flush(void);
void mon_emit_image(char type, struct mproc *p, uint64_t t, int ppid, int is_static);
int mon_record_close(void);

#endif
