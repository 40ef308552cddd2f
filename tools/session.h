/* session.h: recording a session, what `poolprof run` and `poolprof attach` share: the run directory, run.json, the recorders, the report at the end. */
#ifndef POOLPROF_TOOLS_SESSION_H
#define POOLPROF_TOOLS_SESSION_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"
#include "counters/counters.h"
#include "monitor/machine.h"
#include "output.h"

#define DEFAULT_INTERVAL_MS 20
#define DEFAULT_RATE_HZ 100
#define MAX_DURATION_S 10000000
#define RUN_JSON_RESERVE (16 * 1024) /* far more than run.json needs, unless the command line is huge */

struct run {
    /* Options (the option tables of run.c and attach.c write them). */
    const char *out_dir;     /* -o as given */
    struct outputs out;      /* --format, --json */
    int force;
    int interval_ms;
    int sample;              /* run the ptrace sampler (default on; --no-sample) */
    int preload;             /* preload the shim (default on; --no-preload) */
    int rate_hz;
    struct stacks {
        int native, python;  /* stacks the sampler takes (--stacks) */
    } stacks;
    double duration_s;       /* attach --duration; 0: until the root ends or a stop signal */
    /* The target. */
    char **cmd;              /* argv of the target */
    char exe[PATH_MAX];      /* resolved program */
    int is_static;
    char shim[PATH_MAX];     /* absolute path of libprof.so, "" when not found or not preloaded */
    pid_t root;
    int attached;            /* poolprof attach: the root is not our child */
    /* The session. */
    char rundir[PATH_MAX];
    int rundir_created;
    char cwd[PATH_MAX];
    struct prof_machine machine;
    uint64_t start_ns, start_realtime_ns, end_ns;
    int done;
    int status;              /* the root's wait status, when done (and, attached, exit_known) */
    int exit_known;          /* attach: the root's exit status was seen */
    int recording_error;     /* errno that stopped the monitor's recording, or 0 */
    /* Perf counters (libprof/counters/): --counters, resolved before the target starts. */
    struct session_counters {
        int on;              /* count at all (default on; --no-counters) */
        const char *asked;   /* --counters as given, NULL: the default set only */
        int resolved;
        size_t n;
        struct prof_ctr_event ev[PROF_CTR_MAX];
        struct prof_ctrs *obs; /* the observer while recording */
    } ctr;
};

/* The options `run` and `attach` share, rows of their option tables (struct run). */
#define SESSION_OPTIONS                                                                                            \
    {"output", 'o', "RUNDIR",                                                                                       \
     "run directory (default ./poolprof-YYYYmmdd-HHMMSS); it must be empty or new, unless --force",                \
     cli_string, offsetof(struct run, out_dir), 0, 0, NULL},                                                        \
    {"format", 0, "FORMAT[=PATH]",                                                                                  \
     "render the report in FORMAT (below) to PATH, '-' for standard output; without PATH, in place of the "        \
     "terminal summary on standard error; repeatable",                                                             \
     output_parse_format, offsetof(struct run, out), 0, 0, NULL},                                                   \
    {"json", 0, "FILE", "the same as --format json=FILE", output_parse_json, offsetof(struct run, out), 0, 0, NULL}, \
    {"force", 0, NULL, "reuse a non-empty RUNDIR: its previous run files are removed first", cli_flag_on,          \
     offsetof(struct run, force), 0, 0, NULL},                                                                      \
    {"interval", 0, "MS",                                                                                           \
     "RSS sampling interval in milliseconds, 1 to 60000 (default " CLI_STR(DEFAULT_INTERVAL_MS) ")", cli_int,       \
     offsetof(struct run, interval_ms), 1, 60000, "milliseconds"},                                                  \
    {"rate", 0, "HZ",                                                                                               \
     "sampler ticks per second, 1 to 10000, each jittered +-20% (default " CLI_STR(DEFAULT_RATE_HZ) ")", cli_int,   \
     offsetof(struct run, rate_hz), 1, 10000, "ticks per second"},                                                  \
    {"stacks", 0, "LIST",                                                                                           \
     "the stacks the sampler takes: native,python (the default), native, python, or none (thread states only)",    \
     session_parse_stacks, offsetof(struct run, stacks), 0, 0, NULL},                                                \
    {"counters", 0, "LIST",                                                                                         \
     "perf events to count per thread besides the default software set, comma-separated libpfm4 names "            \
     "(cycles, instructions, perf::MAJOR-FAULTS, a PMU's own events: poolprof counters lists them)",                \
     session_parse_counters, offsetof(struct run, ctr), 0, 0, NULL},                                                \
    {"no-counters", 0, NULL, "count no perf events, not even the default set", cli_flag_off,                        \
     offsetof(struct run, ctr.on), 0, 0, NULL}

/* What differs between starting the target (run) and joining it (attach). */
struct session_target {
    /* The run directory is ready: start the target, held before it runs anything of its own, and set
     * r->root; or, attached, make ready to watch it. 0 or PROF_E* (message printed). */
    int (*start)(struct run *r);
    /* The sampler holds r->root: let it go. 0, or PROF_ENOEXEC when it could not be executed
     * (message printed). */
    int (*go)(struct run *r);
    /* A failure after start: leave no target behind (kill it and reap it); NULL: nothing to do. */
    void (*abort)(struct run *r);
};

/*
 * Record a session: the run directory (created, or reused with --force), the machine,
 * run.json, the target started or joined, the monitor and the sampler until the root ends
 * (or, attached, the duration is over or a stop signal came), run.json rewritten. 0 with
 * r->done set; PROF_ENOEXEC when the target could not be executed; any other PROF_E*: nothing
 * ran, and no half-made run directory is left. Every failure is one line on stderr.
 */
int session_record(struct run *r, const struct session_target *t);

/* --counters LIST: resolved at once (libpfm4 and a probe open each), so a malformed list is a usage
 * error before anything starts; an event that cannot be counted here is not an error (said later). */
int session_parse_counters(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);

/* Resolve the events of r->ctr if not done (the default set without --counters) and say, one line
 * each, why an event is not counted as asked. 0, or PROF_E* (a line printed). */
int session_counters_resolve(struct run *r);

/* Merge the recorded run, leave its report files in RUNDIR, and render r->out (the terminal
 * summary on stderr unless a --format without PATH replaced it). 0 or the first PROF_E*. */
int session_report(const struct run *r);

/* poolprof's exit status for the target's raw wait status (128+N for signal N). */
int session_exit_code(int status);

/* Find cmd as execvp would (PATH, or a path with a slash); its path in out. 0, or PROF_ENOENT /
 * PROF_EACCES as a shell would report them, so a typo is one line before anything starts. */
int session_resolve_command(const char *cmd, char *out, size_t cap);
/* The one line for a command that cannot be run: "CMD: command not found", "CMD: permission denied". */
void session_exec_error(const char *cmd, int err);

/* rm -r dir: what a command's scratch directory held (its profile runs). */
void session_remove_tree(const char *dir);

/* The path of the poolprof executable running now, to run `poolprof run` as a child. */
void session_self(char *buf, size_t cap);

/* The option parser of --stacks native,python|native|python|none (struct stacks). */
int session_parse_stacks(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);

#endif
