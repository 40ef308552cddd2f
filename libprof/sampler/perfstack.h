/* perfstack.h: native stack snapshots taken by the kernel (perf events) instead of by stopping the thread. */
#ifndef POOLPROF_PERFSTACK_H
#define POOLPROF_PERFSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/*
 * A ptrace stop costs the target far more than its window: the interrupt, the
 * stop, the tracer's wake-up and the resume are each a cross-CPU wake-up,
 * which in a VM is an exit to the hypervisor (measured: 10-15% of a 2-thread
 * CPU-bound program at 1 kHz, whatever the copy size). A task-clock perf event
 * with PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER makes the kernel copy the
 * user registers and the top of the user stack from the timer interrupt of the
 * thread's own CPU: nothing is stopped, nothing is woken.
 *
 * Two layouts. Where CPU-wide events are allowed (CAP_PERFMON, or
 * perf_event_paranoid <= 0), one cpu-clock event per CPU samples whatever task
 * runs there and the caller keeps only its tracees' samples: no event is switched
 * with a thread. Elsewhere, one task-clock event per CPU per attached task,
 * inherited by every thread and process it creates afterwards (per-task inherited
 * events cannot share one buffer, per-CPU ones can), all events of a CPU writing
 * to that CPU's ring; its period counts the thread's own CPU time. Either way a
 * thread that did not run takes no sample (it keeps its last stack), and the rings
 * are drained at the sampler's ticks.
 */
struct prof_pstk;

struct prof_pstk_sample {
    pid_t pid, tid;
    uint64_t time;                  /* CLOCK_MONOTONIC ns */
    struct user_regs_struct regs;   /* the user registers perf reports (others 0) */
    uint64_t sp;                    /* address of stack[0] */
    const unsigned char *stack;     /* valid during the callback only */
    size_t len;
};

enum prof_pstk_scope {
    PROF_PSTK_CPU,  /* CPU-wide where allowed, else per task */
    PROF_PSTK_TASK, /* per task, inherited */
};

/* period_ns: CPU time between samples; stack_bytes: copied per sample (rounded to 8).
 * 0, PROF_ENOTSUP (no perf events here) or PROF_EACCES (refused: perf_event_paranoid, seccomp). */
int prof_pstk_open(uint64_t period_ns, uint32_t stack_bytes, enum prof_pstk_scope scope, struct prof_pstk **out);

/*
 * Context switches instead of stacks: one CPU-wide event per CPU (CAP_PERFMON or
 * perf_event_paranoid <= 0, else PROF_EACCES) that records every switch of every task
 * with its time, and at each switch-out where the task left user mode. From these a
 * thread's waits are known to the nanosecond without waking anyone at the rate.
 */
int prof_pstk_open_switches(struct prof_pstk **out);

enum prof_sw_type {
    PROF_SW_WHERE,      /* about to switch out: ip (after the syscall instruction) and arg0 (rdi) */
    PROF_SW_WAIT,       /* switched out to wait (not runnable) */
    PROF_SW_PREEMPTED,  /* switched out still runnable */
    PROF_SW_IN,         /* switched in */
    PROF_SW_ENDED,      /* a task switched out for the last time: it had exited, and its ids read 0
                         * (the one that ran there is the last switched in on that cpu) */
};

struct prof_pstk_switch {
    pid_t pid, tid;
    uint64_t time;      /* CLOCK_MONOTONIC ns */
    uint64_t ip, arg0;  /* PROF_SW_WHERE */
    uint64_t sp;        /* PROF_SW_WHERE: the user stack pointer (with ip, which wait site) */
    uint32_t seq;       /* order within the drain among equal times */
    uint16_t cpu;       /* index of the ring (CPU) it was read from */
    uint8_t type;
};

/* Read every switch record written since the last call, of every task, in time order
 * (valid until the next call). Returns how many. */
size_t prof_pstk_drain_switches(struct prof_pstk *ps, const struct prof_pstk_switch **out);

/* 1 if the events are CPU-wide (samples of any task: the caller filters by tid). */
int prof_pstk_cpuwide(const struct prof_pstk *ps);

/* Sample tid on every CPU, and every thread and process it creates from now on (a no-op
 * with CPU-wide events, which sample it already).
 * 0, PROF_ESRCH (gone), PROF_EACCES or PROF_EIO. Attaching a task twice only duplicates samples.
 * The events stay open until prof_pstk_close even after tid exits: closing an event
 * ends the copies its descendants inherited. */
int prof_pstk_attach(struct prof_pstk *ps, pid_t tid);

/* Hand every sample written since the last call to fn, oldest first per CPU.
 * Returns the number of samples. */
size_t prof_pstk_drain(struct prof_pstk *ps, void (*fn)(void *ctx, const struct prof_pstk_sample *smp), void *ctx);

/* CPUs with a ring (a thread's samples may come from any of them). */
int prof_pstk_ncpu(const struct prof_pstk *ps);

/* Records the kernel dropped because a ring was full. */
uint64_t prof_pstk_lost(const struct prof_pstk *ps);

void prof_pstk_close(struct prof_pstk *ps);

#endif
