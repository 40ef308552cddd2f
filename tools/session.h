/* session.h: what `poolprof run` and `poolprof attach` share: the run directory, run.json, the report at the end. */
#ifndef POOLPROF_TOOLS_SESSION_H
#define POOLPROF_TOOLS_SESSION_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "monitor/machine.h"

#define DEFAULT_INTERVAL_MS 20
#define DEFAULT_RATE_HZ 100
#define EXIT_USAGE 2
#define EXIT_NOTFOUND 127
#define RUN_JSON_RESERVE (16 * 1024) /* far more than run.json needs, unless the command line is huge */

struct run {
    const char *out_dir;     /* -o as given */
    const char *json_path;
    int force;
    int interval_ms;
    char **cmd;              /* argv of the target */
    char exe[PATH_MAX];      /* resolved program */
    int is_static;
    char shim[PATH_MAX];     /* absolute path of libprof.so, "" when not found */
    char rundir[PATH_MAX];
    int rundir_created;
    char cwd[PATH_MAX];
    struct prof_machine machine;
    pid_t root;
    uint64_t start_ns, start_realtime_ns, end_ns;
    int done;
    int status;
    int recording_error;
    /* The sampler. */
    int sample;              /* run the ptrace sampler (default on; --no-sample) */
    int preload;             /* preload the shim (default on; --no-preload) */
    int rate_hz;
    int native, python;      /* stacks to take */
    int attached;            /* poolprof attach: the root is not our child */
    int exit_known;          /* attach: the root's exit status was seen */
};


/* Create (or, with --force, reuse) RUNDIR and RUNDIR/proc; prints its own error. 0 or -1. */
int session_rundir_prepare(struct run *r);
/* The run never started: leave no half-made run directory behind. */
void session_rundir_discard(struct run *r);
/* Write RUNDIR/run.json (temp file + rename). 0 or an errno value. */
int session_json_write(const struct run *r);
/* poolprof's exit status for the target's raw wait status (128+N for signal N). */
int session_exit_code(int status);
void session_report(const struct run *r);
/* Parse --interval MS (1..60000); 0 or -1 (message printed, prefixed with cmd). */
/* Find cmd as execvp would (PATH, or a path with a slash); its path in out. 0, or the errno a shell
 * would report (ENOENT, EACCES), so a typo is one line before anything starts. */
int session_resolve_command(const char *cmd, char *out, size_t cap);

int session_parse_interval(const char *cmd, const char *arg, int *ms);
/* Parse --rate HZ / --stacks LIST values; 0 or -1 (message printed, prefixed with cmd). */
int session_parse_rate(const char *cmd, const char *arg, int *rate);
int session_parse_stacks(const char *cmd, const char *arg, int *native, int *python);

#endif
