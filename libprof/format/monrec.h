/* monrec.h: the text format of RUNDIR/monitor.rec, what poolprof sees of the process tree from outside. */
#ifndef POOLPROF_MONREC_H
#define POOLPROF_MONREC_H

/*
 * The CLI's monitor watches the target tree through /proc (it works whether
 * or not the shim loaded, e.g. for static binaries) and appends one line per
 * observation. Lines are flushed at least every 100 ms, so a killed target or
 * a killed poolprof leaves a readable file; a reader ignores a torn last line.
 *
 * Grammar:  TYPE SP key=value { SP key=value } LF
 * Values are decimal integers or strings escaped with prof_rec_escape():
 * bytes <= 0x20, 0x7f, '%', ',' and '=' become %XX. A list (argv) is its
 * escaped elements joined by ','. Unknown keys and types are skipped.
 * t= is always CLOCK_MONOTONIC nanoseconds.
 *
 *   V version=1                                     first line
 *   N t= pid= ppid= start_ticks= exe= argv= static=0|1
 *       a process of the tree first seen (start_ticks: /proc/PID/stat field 22)
 *   E t= pid= exe= argv= static=0|1                 the process exec'd (argv changed)
 *   R t= pid= rss=                                  resident bytes (statm), every interval
 *   M t= pid= pss= uss= swap=                       from smaps_rollup, every 5th interval
 *   T t= pid= tid= name= cpu= runq= slices= utime= stime= vcsw= ivcsw= start_ticks= minflt= majflt=
 *       a thread's cumulative figures (schedstat ns; utime/stime ns from ticks; page faults
 *       from stat: the counters' /proc fallback, libprof/counters/)
 *   G t= pid=                                       the process is gone from /proc
 *   Z t= pid= status=                               reaped by poolprof (raw wait status):
 *                                                   the top-level child, or an orphan
 *                                                   (poolprof is a child subreaper)
 *   S t= interval_ms= ticks_per_sec= page_size=     monitor settings, after V
 *   K t= busy= steal=                               the machine's CPU ticks so far (/proc/stat,
 *                                                   all CPUs): user+nice+system+irq+softirq,
 *                                                   and stolen by the hypervisor; at every scan
 *   C t= self_cpu_ns=                               the monitor thread's own CPU time so
 *                                                   far (cumulative; the latest counts)
 */

#include <stddef.h>

#define PROF_MONREC_VERSION 1

/* Escape src into dst (NUL-terminated). Returns the length written, or
 * PROF_ERANGE when dst is too small (dst then holds a truncated escape). */
int prof_rec_escape(char *dst, size_t cap, const char *src, size_t len);

/* A NUL-separated list (a cmdline) of len bytes escaped element by element, joined by ','
 * (the argv= of N, E and the sampler's P lines). Returns the length written, -1 when cap is short. */
int prof_rec_escape_list(char *dst, size_t cap, const char *src, size_t len);

/* Undo prof_rec_escape in place; returns the new length. */
size_t prof_rec_unescape(char *s);

#endif
