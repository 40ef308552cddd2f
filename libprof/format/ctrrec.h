/* ctrrec.h: the text format of RUNDIR/counters.rec, the perf event counts of the tree's threads (libprof/counters/). */
#ifndef POOLPROF_CTRREC_H
#define POOLPROF_CTRREC_H

/*
 * poolprof opens the counters itself, one set per thread of the tree (counters.h says why
 * not the shim), reads them once a second and when a task ends, and appends what changed, so a killed
 * target or poolprof leaves a readable file, short of the last second; a reader ignores
 * a torn last line. The grammar is monitor.rec's (monrec.h): TYPE SP key=value ... LF, strings
 * escaped with prof_rec_escape(), t= CLOCK_MONOTONIC nanoseconds.
 *
 *   V version=1                                      first line
 *   E i= name= fstr= type= config= config1= config2= user_only=0|1 source= role= hw=0|1 default=0|1 reason=
 *       event i of the run, as resolved before the target started: source perf|raw|proc|none
 *       (counters.h enum prof_ctr_source), role its key ("" for none), reason why it is not
 *       counted as asked ("" when it is); one line per event, in order, before any task line
 *   O t= pid= tid= born=0|1 open=MASK                counters opened for a task: born 1 when it had
 *       not run yet (a tracer's fork or clone stop, the root before its exec), so its counts are
 *       whole; open the events (bit i) that opened
 *   F t= pid= tid= i= err=                           event i did not open for the task (errno)
 *   R t= tid= v=V/ENA/RUN,...                       the task's counts so far, one item per event
 *       in E order: the count and the nanoseconds the event was enabled and running (running <
 *       enabled: multiplexed, the count scales to V * ENA / RUN); "-" for an event not open for it.
 *       Written once a second when a count changed, and once more when the task is gone
 *   X t= tid=                                        the task is gone: its last R lines are final
 *   L t= what=descriptors|ended tasks=               tasks not counted so far (the latest line of each
 *       kind counts): descriptors, poolprof's budget for them ran out; ended, the task was gone
 *       when its counters were to open (a short thread found after it ended)
 */

#define PROF_CTRREC_VERSION 1
#define PROF_CTRREC_FILE "counters.rec"
#define PROF_CTRREC_MAX 16 /* events per run: an R line has at most so many items */

#endif
