/* monitor.h: the CLI's outside view of the target tree: /proc sampling into RUNDIR/monitor.rec, reaping, signal forwarding. */
#ifndef POOLPROF_MONITOR_MONITOR_H
#define POOLPROF_MONITOR_MONITOR_H

#include <stdint.h>
#include <sys/types.h>

struct monitor_opts {
    const char *rundir;        /* absolute; monitor.rec and proc/ live here */
    int interval_ms;           /* R lines every interval, M lines every 5th */
    pid_t root;                /* the target, a child of this process (already exec'd) */
    const char *root_exe;      /* resolved path, used when /proc no longer shows it */
    char *const *root_argv;    /* what was exec'd, same fallback */
    int root_static;
    int attached;              /* poolprof attach: the root is not our child; it ends when /proc loses it */
    uint64_t deadline_ns;      /* stop watching at this CLOCK_MONOTONIC time (0: none) */
    /* A tracer's count of the tree's clone, fork, exec and exit events (prof_sampler_tree_events),
     * or NULL. While it stands still, a scan would find nothing new: only one a second is made. */
    uint64_t (*tree_events)(void *ctx);
    void *tree_ctx;
    /* The counters observer (libprof/counters/counters.h), or NULL: told of every thread a scan
     * finds new (born 0: it was running), and polled after every scan and at the end. */
    void (*task_seen)(void *ctx, pid_t pid, pid_t tid, int born);
    void (*scanned)(void *ctx);
    void *ctr_ctx;
};

struct monitor_result {
    int root_status;           /* raw wait status of the root */
    uint64_t root_end_ns;      /* CLOCK_MONOTONIC when the root was reaped */
    int recording_error;       /* errno that stopped recording to monitor.rec, 0 if none */
};

/* Create RUNDIR/monitor.rec (O_CLOEXEC) and write its V and S lines; call before the target starts. */
int monitor_open(const char *rundir, int interval_ms);

/*
 * Watch the tree until the root has been reaped and the rest of the tree has
 * gone (at most 2 s more; survivors are left running). Returns 0; the
 * outcome is in *res. Never fails because of the target's races.
 */
int monitor_run(const struct monitor_opts *o, struct monitor_result *res);

/* Thread-safe: the sampler's wait reaped pid, a child of ours, with this raw status
 * (a tracer in our own process reaps our children): the monitor treats it as its own reap. */
void monitor_child_reaped(void *ctx, pid_t pid, int status);

/* Async-signal-safe: stop watching at the next wake-up (attach: duration over, Ctrl-C). */
void monitor_request_stop(void);

/* Async-signal-safe: ask the monitor to forward sig to the root at its next wake-up. */
void monitor_forward_signal(int sig);

/* 1 when the ELF file open on fd (or at path) has no PT_INTERP (statically linked), 0 if dynamic
 * or not ELF (e.g. a script), negative errno-style value when unreadable. */
int monitor_elf_fd_is_static(int fd);
int monitor_elf_is_static(const char *path);

/* Monotonic and wall clocks in nanoseconds. */
uint64_t monitor_now_ns(void);
uint64_t monitor_realtime_ns(void);

#endif
