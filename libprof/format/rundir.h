/* rundir.h: what a run directory holds, shared by the CLI that writes it and the merge that reads it. */
#ifndef POOLPROF_RUNDIR_H
#define POOLPROF_RUNDIR_H

/*
 * RUNDIR/
 *   run.json        written by the CLI before the target starts, rewritten
 *                   (temp file + rename) when it ends. Keys:
 *                     "format": "poolprof.run/1"
 *                     "poolprof_version": string
 *                     "command": [argv...]        what the user asked to run
 *                     "cwd": string
 *                     "start_ns", "end_ns":       CLOCK_MONOTONIC (end_ns absent or 0
 *                                                 while running / if poolprof died)
 *                     "start_realtime_ns":        wall clock at start_ns
 *                     "root_pid":                 pid of the target
 *                     "exit": {"status": raw wait status, "code": int|null,
 *                              "signal": int|null}          (absent while running)
 *                     "options": {"interval_ms": int, "preload": bool, "attached": bool, ...}
 *                     "shim": absolute path of libprof.so that was preloaded
 *                     "machine": the prof_machine fields, see machine.h
 *   monitor.rec     the monitor's observations (format: monrec.h)
 *   proc/           one binary record per process image (format: shm.h),
 *                   named <pid>-<start_ns>.rec
 *   rss.csv         written by the merge: t_seconds,pid,rss_bytes[,pss_bytes]
 *   report.json     written by the merge (schema poolprof.report/1: report.schema.json, which the build writes beside
 *                   the poolprof executable from libprof/format/report.schema.in.json and format/metrics.h)
 *   sweep.json      only in the profile run `poolprof sweep --keep DIR` keeps (DIR/profile-run): the sweep's
 *                   results, the document of its --json (schema poolprof.sweep/1, docs/poolprof-sweep.md), which
 *                   the report carries as its `sweep` member
 *
 * The shim learns where to write from the environment, set by the CLI:
 *   POOLPROF_DIR    absolute path of RUNDIR (required: without it the shim is inert)
 *   POOLPROF_SHIM   absolute path of libprof.so (re-injected into LD_PRELOAD at exec
 *                   when the target scrubs its environment, e.g. env -i)
 *   POOLPROF_EXT_BYTES  size of each record's extension area (shm.h), decimal bytes; the
 *                   CLI passes the user's value on, else sets the default. Not re-injected:
 *                   a scrubbed environment gets the default.
 */

#define PROF_RUN_FORMAT "poolprof.run/1"
#define PROF_RUN_SWEEP_FILE "sweep.json"
#define PROF_SWEEP_SCHEMA "poolprof.sweep/1"
#define PROF_ENV_DIR "POOLPROF_DIR"
#define PROF_ENV_SHIM "POOLPROF_SHIM"
#define PROF_ENV_EXT "POOLPROF_EXT_BYTES"
#define PROF_ENV_ARENA "POOLPROF_ARENA" /* "0": a record file per image, not arenas */
#define PROF_ENV_TSC "POOLPROF_TSC" /* "0": the shim reads the vDSO clock, not the TSC */

#endif
