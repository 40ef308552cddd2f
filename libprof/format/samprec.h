/* samprec.h: the text format of RUNDIR/sampler.rec, what the ptrace sampler saw of every thread of the tree. */
#ifndef POOLPROF_SAMPREC_H
#define POOLPROF_SAMPREC_H

/*
 * Same grammar and escaping as monitor.rec (monrec.h): TYPE SP key=value...,
 * t= is CLOCK_MONOTONIC ns, lines flushed at least every 100 ms so a killed
 * poolprof leaves a readable file; a reader ignores a torn last line and
 * unknown keys and types.
 *
 *   V version=1
 *   O t= rate_hz= tick_hz= states=ticks|switches stacks=native,python|native|python|none ptrace=1|0
 *     native=perf|ptrace|none perf_scope=cpu|task|none why=
 *       sampler settings; tick_hz: how often the tracer wakes (states=switches: off-CPU
 *       time is split by the kernel's context-switch records, and the tick is at most 100 Hz);
 *       ptrace=0 when seizing was refused (why: one line),
 *       and the sampler fell back to /proc-only (and Python) sampling; native:
 *       where running threads' native stacks come from (perf: kernel copies at
 *       perf samples, no stop; ptrace: a stop per stack); perf_scope: CPU-wide
 *       events filtered by tid, or per-task inherited ones
 *   P t= pid= ppid= python=0|3XX gil=1|0 pyerr= exe= argv=
 *       a process the sampler watches (again after an exec, and when a free-threaded CPython's GIL is
 *       switched on or off): python the CPython version read (major * 100 + minor, 0 = none read;
 *       pyerr why, one line, where it is CPython but not readable); gil=0 a free-threaded build
 *       running without its GIL (then its GIL figures are absent, not zero); no gil= reads as 1;
 *       exe and argv (escaped as in monitor.rec's N line; empty when unread): the image's, written
 *       at its fork (the parent's) and again at its exec, so a process too short for the monitor
 *       is still known by name
 *   X t= pid= status=                       the process's exit status, from PTRACE_EVENT_EXIT
 *   L id= path=                             a module (file mapping) of native frames
 *   K id= native= py=                       a stack, defined once before first use:
 *       native: list of MOD.OFF (module id, hex file offset; MOD '-' = anonymous, OFF = pc),
 *       innermost first; frames after the first are return addresses.
 *       py: list of "qualname<TAB>file<TAB>line" elements, innermost first.
 *   C t= pid= tid= state= stack= addr= n= ns= [held=]
 *       samples since the last flush for one thread in one state with one stack:
 *       n samples (ticks at which the thread was seen in this state), ns the time
 *       they stand for. stack=0: none. addr= (hex) the futex a lock/gil wait was on.
 *       held= (only when nonzero): of the n, the ticks a CPython thread ran holding
 *       its GIL, so which code holds it is known per stack; absent = 0.
 *       state: running, runq, gil, lock, sync, net, disk, ipc, evloop, sleep, other
 *       Time per tick is exact where schedstat gives it: the on-CPU delta goes to
 *       running, the run-queue delta to runq, the rest of the interval to the
 *       blocked cause seen at the tick.
 *   S pid= tid= t0= t1= state=
 *       the thread's timeline: [t0, t1) (CLOCK_MONOTONIC ns) in one state (C lines' names), written
 *       when the span closes and at every flush (so a thread that stays in one state writes one line
 *       per flush, and a killed poolprof leaves spans up to its last flush). Adjacent spans of one
 *       state continue each other (a reader merges them). The time per state is the C lines' time
 *       of each tick interval, laid out in it: the state the interval began in first, the one it
 *       ended in last, others between (their order inside one interval is not measured); with
 *       states=switches the off-CPU parts are the switch records' waits. A new span is at least
 *       1 ms: a state's shorter time is carried until it adds up, the rest of an interval going
 *       to the span before (each state's spans sum to its C lines' time within 1 ms). Spans of one thread may overlap by a few hundred us
 *       at its exit (the switch records after its exit event name it again): a reader clips them.
 *   G t= pid= tid= n= held= held_cpu=       CPython: ticks at which the thread was
 *       seen, ticks at which it held the GIL, and of those, ticks it was on CPU (cumulative)
 *   Q t= pid= addr= ticks= held=            a futex word seen contended, read at every
 *       tick since: ticks read, ticks it was nonzero (held) (cumulative)
 *   H t= ticks= late= errors= stops= stop_p50_ns= stop_p99_ns= stop_max_ns= achieved_hz=
 *     unwind_frames= unwind_ns= attach_latency_max_ns= perf_samples= (kernel copies read)
 *     perf_used= (of those, unwound: the newest per thread at a tick that finds it running) perf_lost=
 *     self_cpu_ns=   (the tracer thread's own CPU time)
 *     waits_reused=  (blocked stacks taken without a stop: a wait at a call site already
 *                     unwound, its return-address slots unchanged)
 *     switch_records= switch_waits= switch_waits_known= switch_lost=  (states from switch
 *                     records: records of traced threads read, waits timed, waits between
 *                     ticks attributed by their place, records dropped by the kernel)
 *     unwind_load_ns= unwind_loads=  (one-off work inside unwinds, not in unwind_ns: modules
 *                     opened and their unwind tables indexed, maps re-read)
 *     switch_idle=    (thread-ticks not read at all: blocked at the last tick, with no switch
 *                     record since and none lost)
 *     unwind_p50_ns_per_frame=  (median per-frame cost of a stack's unwind, first decodes
 *                     apart; unwind_ns includes them)
 *     unwind_decode_ns= unwind_decodes=  (rules decoded from .eh_frame at an address's first
 *                     unwind: once per code address, like a module's load)
 *     unwind_fast= unwind_libunwind=  (unwinds by cached rules, by libunwind)
 *     wait_stops=     (stops taken for a blocked thread's stack)
 *     wait_peeks= wait_peeks_failed=  (blocked stacks copied without a stop at a new wait,
 *                     and tries given up: the thread ran meanwhile, or a frame needed rbp;
 *                     stopped then, unless perf samples cover it running again)
 *     threads_by_records= threads_seized_late=  (threads first known from switch records, not from a
                     clone stop: timed by their records; of them, seized at a tick that found them alive)
       self-report (cumulative; the latest line counts)
 */

#define PROF_SAMPREC_VERSION 1

#endif
