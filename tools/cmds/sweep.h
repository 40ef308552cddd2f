/* sweep.h: what the files of `poolprof sweep` share: its options and state, one run's outcome, the results. */
#ifndef POOLPROF_TOOLS_SWEEP_H
#define POOLPROF_TOOLS_SWEEP_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>

#include "cli.h"
#include "core/advise.h"
#include "core/fit.h"
#include "counters/counters.h"
#include "format/rundir.h"

#define SWEEP_SCHEMA PROF_SWEEP_SCHEMA
#define MAX_COUNTS 32
#define MAX_WORKERS 1000000
#define MAX_REPEAT 1000
#define MAX_TIMEOUT_S 10000000
#define DEFAULT_REPEAT 3
#define DEFAULT_SEED 1
#define WITHIN 0.9 /* "within 10%": the recommended count keeps at least 90% of the best throughput */
/* The recommended count joins the sweep only up to max(ADD_FACTOR x the largest --workers count, ADD_MIN): a
 * verdict of hundreds of workers on a sweep of 1,2 would add a run nobody asked for and may not afford. */
#define ADD_FACTOR 4
#define ADD_MIN 64
#define PLACEHOLDER "{workers}"
#define MODEL_PLACEHOLDER "{model}"
#define DEFAULT_PROFILE_MODEL "sequential" /* what {model} becomes in the profile run without --model */
#define WORKERS_ENV "POOLPROF_WORKERS"

/* A profiled run's stage at a count: its counters give the memory check (core/membound.c) IPC and LLC misses. */
struct profiled {
    int workers;
    json_t *stage;           /* the report's stage object (owned: one reference) */
};

struct sweep {
    int counts[MAX_COUNTS + 1]; /* +1: the recommended count, when --workers lacks it */
    size_t ncounts;
    int repeat;
    unsigned long long seed;
    const char *stage;       /* --stage, NULL = overall */
    int profile;             /* run the profile step (not --no-profile) */
    int profile_at;          /* 0 = the first count */
    const char *json_path;
    double timeout_s;        /* 0 = no limit */
    const char *keep;        /* directory for the commands' output, NULL = /dev/null */
    int force;               /* --force: run CMD even though no argument has {workers} */
    int workers_in_cmd;      /* some argument of CMD has {workers} */
    const char *model;       /* --model: what {model} becomes before a verdict chose it, NULL = not given */
    int model_in_cmd;        /* some argument of CMD has {model} */
    const char *profile_model; /* what {model} becomes in the profile run; NULL when CMD has none */
    const char *timed_model; /* what {model} becomes in every timed run; NULL when CMD has none (as written) */
    char **cmd;              /* CMD ARGS..., {workers} and {model} not yet replaced */
    char ***argv;            /* per count: cmd with {workers} and {model} replaced */
    char ***envp;            /* per count: our environment with POOLPROF_WORKERS set */
    double *wall;            /* wall[count * repeat + round], seconds */
    /* --counters: passed to the profile run, and counted over each timed run's whole tree
     * (inherited counters opened before the command's exec). ctr_v[run][event]: the count,
     * scaled by enabled / running; ctr_ok[run] bit e: event e counted in that run. */
    const char *counters;
    size_t nctr;
    struct prof_ctr_event ctr[PROF_CTR_MAX];
    uint64_t (*ctr_v)[PROF_CTR_MAX];
    uint64_t *ctr_ok;
    /* What the profile step read from the report. */
    json_t *rec;             /* the stage's recommendation object, or NULL */
    const char *rec_stage;
    int rec_workers;
    int rec_added;           /* rec_workers was not in --workers: added to the sweep */
    int rec_limit;           /* the largest count the sweep adds: max(ADD_FACTOR x largest --workers, ADD_MIN) */
    int rec_skipped;         /* rec_workers was not in --workers and above rec_limit: not timed */
    /* Every profiled run's stage, by count: the profile step adds its own. */
    struct profiled profiled[MAX_COUNTS + 1];
    size_t nprofiled;
    /* Sigmask outside the sweep, restored in each child; the stop signals we act on. */
    sigset_t oldmask;
    sigset_t stops;
    int progress;            /* stderr is a terminal: show which run is going */
    int stopped_by;          /* the stop signal that ended the sweep, 0: none */
};

enum run_end { RUN_EXITED, RUN_TIMED_OUT, RUN_STOPPED };

struct outcome {
    enum run_end how;
    int status;      /* wait status, RUN_EXITED */
    int sig;         /* the signal that stopped poolprof, RUN_STOPPED */
    double seconds;  /* fork to exit, RUN_EXITED */
    uint64_t ctr[PROF_CTR_MAX]; /* --counters: the tree's count of each event */
    uint64_t ctr_ok;            /* bit e: event e counted */
};

struct point {
    int workers;
    double median, min, max, speedup, efficiency, predicted;
    double ctr[PROF_CTR_MAX];  /* --counters: each event's median over the point's runs; NaN when not counted */
};

struct results {
    struct point p[MAX_COUNTS + 1];
    int have_amdahl, have_usl, have_peak;
    struct prof_amdahl amdahl;
    struct prof_usl usl;
    double peak_workers; /* absolute count */
    size_t best;
    int rec_timed;         /* the recommended count is among the points */
    double rec_throughput; /* median(best) / median(recommended); NaN when that count was not timed */
    /* Whether the scaling is memory-bound: the profiled counts whose stage counted cycles and
     * instructions (a PMU), with their timed speedups; membound.judged is 0 with fewer than two. */
    struct prof_membound_point mem[MAX_COUNTS + 1];
    size_t nmem;
    struct prof_membound membound;
};

/* sweep_run.c: the command at one count, one run, the profile step, the timed runs. */
/* arg with every {workers} replaced by n and every {model} by model (left as it is when model is NULL);
 * NULL when out of memory. */
char *sweep_subst(const char *arg, int n, const char *model);
/* Whether some word of the NULL-terminated cmd contains placeholder. */
int sweep_uses(char *const *cmd, const char *placeholder);
void sweep_strv_free(char **v);
/* prefix (borrowed, then copied) + cmd with {workers} and {model} replaced, NULL-terminated, every string owned. */
char **sweep_command_at(char *const *prefix, char **cmd, int n, const char *model);
/* Our environment with POOLPROF_WORKERS=n (replacing any inherited value); every string owned. */
char **sweep_environment_at(int n);
/* A stop signal that arrived while no command ran (they are blocked for the whole sweep): 0 if none. */
int sweep_pending_stop(const struct sweep *w);
const char *sweep_signal_name(int sig);
/*
 * The steps of a sweep: 0, or PROF_E* after the one line that says why (a run that failed is
 * PROF_EIO); w->stopped_by is set when a stop signal ended the step.
 * The profile step: poolprof run once, the chosen stage's recommendation kept.
 */
int sweep_profile(struct sweep *w);
/* The recommended count joins the sweep after the last smaller count (never before the baseline), unless it is
 * above w->rec_limit (then w->rec_skipped). */
void sweep_add_recommended(struct sweep *w);
/* Every count once per round, in a fresh order each round. */
int sweep_timed_runs(struct sweep *w);

/* sweep_results.c: medians, speedups, the fits; the table on stdout and the JSON. */
int sweep_compute(const struct sweep *w, struct results *r); /* 0 or PROF_E* */
/* A report stage's instructions per cycle and LLC misses per thousand instructions, from its
 * `counters` (the events' role keys): 1, or 0 when it counted no cycles and instructions (no
 * PMU; nothing is made up). *llc_mpki is -1 when LLC misses were not counted. */
int sweep_counter_figures(const json_t *stage, double *ipc, double *llc_mpki);
void sweep_print(const struct sweep *w, const struct results *r);
/* The results as schema poolprof.sweep/1 into path (temporary file + rename). 0 or PROF_E*. */
int sweep_write_json(const struct sweep *w, const struct results *r, const char *path);

#endif
