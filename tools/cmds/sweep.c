/* sweep.c: `poolprof sweep`: runs a command at several worker counts, fits Amdahl and USL to its wall times, and holds poolprof's recommendation against the measured best; its options, entry and course. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "core/pipeline.h"
#include "prof.h"
#include "reports/render.h"
#include "session.h"
#include "sweep.h"

/* Signals that stop a sweep: the running command's process group is killed first. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NSTOP (sizeof stop_signals / sizeof *stop_signals)

/* ---- options ---------------------------------------------------------------------------------------- */

/* The options and the sweep's state, with the defaults; the table below fills the options. */
static struct sweep sweep = {
    .repeat = DEFAULT_REPEAT,
    .seed = DEFAULT_SEED,
    .profile = 1,
};

/* "1,2,4,8": positive integers, no duplicates, at most MAX_COUNTS (struct sweep). */
static int parse_workers(const struct cli_opt *o, const char *arg, void *dst, char *why, size_t cap)
{
    struct sweep *w = dst;
    const char *p = arg;

    (void)o;
    w->ncounts = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        char *end;
        long v = 0;
        errno = 0;
        if (*p >= '0' && *p <= '9')
            v = strtol(p, &end, 10);
        if (!(*p >= '0' && *p <= '9') || errno || end != p + len || v < 1 || v > MAX_WORKERS) {
            snprintf(why, cap, "'%.*s' is not a worker count (positive integers up to %d)", (int)(len > 40 ? 40 : len),
                     p, MAX_WORKERS);
            return PROF_EINVAL;
        }
        for (size_t i = 0; i < w->ncounts; i++) {
            if (w->counts[i] == v) {
                snprintf(why, cap, "%ld is listed twice", v);
                return PROF_EINVAL;
            }
        }
        if (w->ncounts == MAX_COUNTS) {
            snprintf(why, cap, "at most %d worker counts", MAX_COUNTS);
            return PROF_ERANGE;
        }
        w->counts[w->ncounts++] = (int)v;
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

/* The names poolprof gives its models (a report's recommendation.model): what {model} may become. */
static const char *const model_names[] = {"threads", "processes", "async", "hybrid", "sequential"};

static int parse_model(const struct cli_opt *o, const char *arg, void *dst, char *why, size_t cap)
{
    (void)o;
    for (size_t i = 0; i < sizeof model_names / sizeof *model_names; i++) {
        if (strcmp(arg, model_names[i]) == 0) {
            *(const char **)dst = model_names[i];
            return 0;
        }
    }
    snprintf(why, cap, "wants one of threads, processes, async, hybrid, sequential");
    return PROF_EINVAL;
}

/* --counters LIST: resolved now (libpfm4 and a probe each), so a bad list stops the sweep before it runs anything. */
static int parse_counters(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o, (void)dst;
    const char *bad = NULL, *msg = NULL;

    prof_ctr_lib_init(&msg);
    int n = prof_ctr_resolve_list(&prof_ctr_sys_real, value, sweep.ctr, PROF_CTR_MAX, &bad);
    if (n < 0) {
        snprintf(why, cap, "wants at most %d comma-separated event names (poolprof counters lists them)%s%s",
                 PROF_CTR_MAX, bad ? ": bad item " : "", bad ? bad : "");
        return PROF_EINVAL;
    }
    sweep.counters = value;
    sweep.nctr = (size_t)n;
    return 0;
}

static const struct cli_opt options[] = {
    {"workers", 0, "LIST",
     "worker counts, comma-separated positive integers, no duplicates, at most " CLI_STR(MAX_COUNTS)
     "; required; speedups are relative to the first",
     parse_workers, 0, 0, 0, NULL},
    {"repeat", 0, "N", "runs per count, 1 to " CLI_STR(MAX_REPEAT) " (default " CLI_STR(DEFAULT_REPEAT) ")", cli_int,
     offsetof(struct sweep, repeat), 1, MAX_REPEAT, "runs per count"},
    {"seed", 0, "N", "seed of the per-round shuffle, a non-negative integer (default " CLI_STR(DEFAULT_SEED) ")",
     cli_u64, offsetof(struct sweep, seed), 0, 0, NULL},
    {"stage", 0, "NAME", "take the recommendation of stage NAME (default overall)", cli_string,
     offsetof(struct sweep, stage), 0, 0, NULL},
    {"profile-at", 0, "N", "profile at N workers (default: the first count)", cli_int,
     offsetof(struct sweep, profile_at), 1, MAX_WORKERS, "workers"},
    {"model", 0, "NAME",
     "what " MODEL_PLACEHOLDER " in CMD becomes before a verdict chose it: in the profile run (default "
     DEFAULT_PROFILE_MODEL "), and in every run with --no-profile (required then); threads, processes, async, "
     "hybrid or sequential",
     parse_model, offsetof(struct sweep, model), 0, 0, NULL},
    {"no-profile", 0, NULL, "skip the profile step: no recommendation; excludes --stage and --profile-at",
     cli_flag_off, offsetof(struct sweep, profile), 0, 0, NULL},
    {"json", 0, "FILE", "also write the results (schema " SWEEP_SCHEMA ") to FILE", cli_output_path,
     offsetof(struct sweep, json_path), 0, 0, NULL},
    {"timeout", 0, "S", "a run, the profile run included, that takes longer than S seconds fails the sweep",
     cli_seconds, offsetof(struct sweep, timeout_s), 0, MAX_TIMEOUT_S, NULL},
    {"keep", 0, "DIR", "keep each run's stdout and stderr, and the profile run, in DIR (created if missing)",
     cli_string, offsetof(struct sweep, keep), 0, 0, NULL},
    {"counters", 0, "LIST",
     "perf events (poolprof counters lists them) for the profile run, and counted over each timed run's whole "
     "tree, the default software set included: each point's medians in the results",
     parse_counters, 0, 0, 0, NULL},
    {"force", 0, NULL,
     "run CMD even though none of its arguments has " PLACEHOLDER ": the count then reaches it only through "
     WORKERS_ENV " (without --force such a command is refused)",
     cli_flag_on, offsetof(struct sweep, force), 0, 0, NULL},
    {NULL, 0, NULL, NULL, NULL, 0, 0, 0, NULL},
};

/* ---- the sweep ------------------------------------------------------------------------------------------ */

static void noop(int sig)
{
    (void)sig;
}

/* What the options alone cannot say, and what is checked before anything runs. -1 to go on, else the exit status. */
static int check(struct sweep *w)
{
    if (w->ncounts == 0) {
        cli_msg("--workers LIST is required (poolprof sweep --workers 1,2,4 -- CMD)");
        return CLI_EXIT_USAGE;
    }
    if (!w->profile && (w->profile_at || w->stage)) {
        cli_msg("--no-profile excludes --%s", w->stage ? "stage" : "profile-at");
        return CLI_EXIT_USAGE;
    }
    /* A command line that no count changes times the same run N times over, unless the program reads the
     * environment, which cannot be seen from here: refused, unless --force says it does. */
    w->workers_in_cmd = sweep_uses(w->cmd, PLACEHOLDER);
    if (!w->workers_in_cmd && !w->force) {
        cli_msg("no " PLACEHOLDER " in the command: every count would run the same command line; put " PLACEHOLDER
                " where the program takes its worker count, or use --force if it reads " WORKERS_ENV);
        return CLI_EXIT_USAGE;
    }
    w->model_in_cmd = sweep_uses(w->cmd, MODEL_PLACEHOLDER);
    if (w->model && !w->model_in_cmd) {
        cli_msg("--model %s: the command has no " MODEL_PLACEHOLDER " for it to replace", w->model);
        return CLI_EXIT_USAGE;
    }
    if (w->model_in_cmd && !w->profile && !w->model) {
        cli_msg(MODEL_PLACEHOLDER " in the command and --no-profile: no verdict chooses the model; give --model NAME");
        return CLI_EXIT_USAGE;
    }
    if (w->model_in_cmd) {
        w->profile_model = w->model ? w->model : DEFAULT_PROFILE_MODEL;
        w->timed_model = w->profile ? NULL : w->model; /* with a profile: the verdict's, once it is known */
    }
    /* The program is looked up once, at the first count, before anything runs. */
    char *prog = sweep_subst(w->cmd[0], w->counts[0], w->profile_model), found[PATH_MAX];
    if (!prog) {
        cli_msg("out of memory");
        return CLI_EXIT_FAILED;
    }
    int err = session_resolve_command(prog, found, sizeof found);
    if (err < 0)
        session_exec_error(prog, err);
    free(prog);
    if (err < 0)
        return CLI_EXIT_NOTFOUND;
    if (w->keep && mkdir(w->keep, 0755) < 0 && errno != EEXIST) {
        cli_msg("--keep '%s': cannot create: %s", w->keep, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/*
 * Stop signals and SIGCHLD are blocked for the whole sweep and taken with
 * sigtimedwait while a command runs: no handler races a fork, and a
 * Ctrl-C between two runs is seen before the next one starts. SIGCHLD
 * gets a handler of its own so that an inherited SIG_IGN cannot make the
 * kernel reap our children before we read their status. A stop signal
 * the caller ignored (nohup, a shell's background job) stays ignored:
 * blocked, it would otherwise be kept pending and taken.
 */
static void block_signals(struct sweep *w, struct sigaction *old_chld)
{
    struct sigaction sa;
    sigset_t block;

    sigemptyset(&w->stops);
    for (size_t i = 0; i < NSTOP; i++) {
        struct sigaction cur;
        if (sigaction(stop_signals[i], NULL, &cur) == 0 && cur.sa_handler != SIG_IGN)
            sigaddset(&w->stops, stop_signals[i]);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = noop;
    sa.sa_flags = SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, old_chld);
    block = w->stops;
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &w->oldmask);
}

/*
 * With --keep the profile run stays (DIR/profile-run): the results go into it as sweep.json and its report files
 * are rendered again, so its report.json and report.html carry the sweep beside the profile it was held against.
 * 0, or PROF_E* after one line.
 */
static int sweep_into_profile_run(const struct sweep *w, const struct results *r)
{
    char rundir[PATH_MAX], path[PATH_MAX + 32];
    struct prof_report *report = NULL;

    if (snprintf(rundir, sizeof rundir, "%s/profile-run", w->keep) >= (int)sizeof rundir) {
        cli_msg("--keep '%s': path too long for the profile run's sweep.json", w->keep);
        return PROF_ERANGE;
    }
    snprintf(path, sizeof path, "%s/" PROF_RUN_SWEEP_FILE, rundir);
    int err = sweep_write_json(w, r, path);
    if (err < 0) {
        cli_msg("%s: cannot write: %s", path, prof_strerror(err));
        return err;
    }
    if ((err = prof_analyze(rundir, &report)) < 0) {
        cli_msg("%s: cannot read the profile run again: %s", rundir, prof_strerror(err));
        return err;
    }
    err = prof_render_rundir(report, rundir);
    if (err < 0)
        cli_msg("%s/report.json: cannot write: %s", rundir, prof_strerror(err));
    prof_report_free(report);
    return err;
}

/* The profile step, the command at every count, the timed runs, the results. The exit status. */
static int sweep_all(struct sweep *w)
{
    struct results res;

    if (w->profile) {
        if (sweep_profile(w) < 0)
            return w->stopped_by ? CLI_EXIT_SIGNAL + w->stopped_by : CLI_EXIT_FAILED;
        /* With {model} in the command, the timed runs are given the verdict's model: that is what is checked. */
        if (w->model_in_cmd)
            w->timed_model = json_string_value(json_object_get(w->rec, "model"));
        sweep_add_recommended(w);
    }
    w->argv = calloc(w->ncounts, sizeof *w->argv);
    w->envp = calloc(w->ncounts, sizeof *w->envp);
    w->wall = calloc(w->ncounts * (size_t)w->repeat, sizeof *w->wall);
    w->ctr_v = calloc(w->ncounts * (size_t)w->repeat, sizeof *w->ctr_v);
    w->ctr_ok = calloc(w->ncounts * (size_t)w->repeat, sizeof *w->ctr_ok);
    if (!w->argv || !w->envp || !w->wall || !w->ctr_v || !w->ctr_ok) {
        cli_msg("out of memory");
        return CLI_EXIT_FAILED;
    }
    for (size_t c = 0; c < w->ncounts; c++) {
        if (!(w->argv[c] = sweep_command_at(NULL, w->cmd, w->counts[c], w->timed_model)) ||
            !(w->envp[c] = sweep_environment_at(w->counts[c]))) {
            cli_msg("out of memory");
            return CLI_EXIT_FAILED;
        }
    }
    if (sweep_timed_runs(w) < 0)
        return w->stopped_by ? CLI_EXIT_SIGNAL + w->stopped_by : CLI_EXIT_FAILED;
    int sig = sweep_pending_stop(w);
    if (sig) {
        cli_msg("stopped by %s after the last run", sweep_signal_name(sig));
        return CLI_EXIT_SIGNAL + sig;
    }
    if (sweep_compute(w, &res) < 0) {
        cli_msg("out of memory");
        return CLI_EXIT_FAILED;
    }
    sweep_print(w, &res);
    fflush(stdout);
    if (w->json_path) {
        int err = sweep_write_json(w, &res, w->json_path);
        if (err < 0) {
            cli_msg("--json '%s': cannot write: %s", w->json_path, prof_strerror(err));
            return CLI_EXIT_FAILED;
        }
    }
    /* Without --keep the profile run is gone already; with --no-profile there is none. */
    if (w->keep && w->rec && sweep_into_profile_run(w, &res) < 0)
        return CLI_EXIT_FAILED;
    return CLI_EXIT_OK;
}

static int exec_sweep(char **args, int nargs)
{
    struct sweep *w = &sweep;
    struct sigaction old_chld;
    int rc;

    (void)nargs;
    w->cmd = args;
    if ((rc = check(w)) >= 0)
        return rc;
    w->progress = isatty(STDERR_FILENO);
    block_signals(w, &old_chld);
    rc = sweep_all(w);
    sigprocmask(SIG_SETMASK, &w->oldmask, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    for (size_t c = 0; c < w->ncounts; c++) {
        if (w->argv)
            sweep_strv_free(w->argv[c]);
        if (w->envp)
            sweep_strv_free(w->envp[c]);
    }
    free(w->argv);
    free(w->envp);
    free(w->wall);
    free(w->ctr_v);
    free(w->ctr_ok);
    json_decref(w->rec);
    for (size_t i = 0; i < w->nprofiled; i++)
        json_decref(w->profiled[i].stage);
    return rc;
}

const struct cli_cmd cmd_sweep = {
    .name = "sweep",
    .summary = "run a command at several worker counts: wall time, speedup, Amdahl and USL fits, against "
               "poolprof's recommendation",
    .usage = "--workers LIST [OPTIONS] [--] CMD [ARGS...]",
    .about = "Run CMD at each worker count, every {workers} in its arguments replaced by the count and "
             WORKERS_ENV "=N in its environment; a CMD with no {workers} in any argument is refused unless --force "
             "says the program reads " WORKERS_ENV ". Every {model} becomes the model poolprof run recommends "
             "(sequential, or --model's, in the profile run), so the verdict itself is timed; without {model}, CMD "
             "is timed as written and the recommended model is reported as not measured. The recommended count "
             "joins the sweep when it is at most " CLI_STR(ADD_FACTOR) " x the largest count, or " CLI_STR(ADD_MIN)
             " if that is more; above, it is not timed, and the output says so. Rounds run every count once, in an "
             "order shuffled per round, so drift hits all counts alike. Report the median wall time, speedup and "
             "efficiency per count, Amdahl and USL fits, and how close poolprof run's recommendation (profiled once "
             "first, at one count) comes to the best measured count. Options come before CMD: everything from the "
             "first word that is not an option, or after --, is CMD and its arguments.",
    .exits = "exit status: 0 when every run succeeded; 1 when a run failed (non-zero exit, signal, timeout), the "
             "profile step did, or the results could not be written; 2 for bad usage (a CMD without {workers} "
             "and no --force among it), an output path that cannot be written or a --keep directory that cannot be "
             "created; 127 when CMD is not found; 128+N when poolprof was stopped by signal N (the running command "
             "is killed).",
    .opts = options,
    .dst = &sweep,
    .args = CLI_ARGS_COMMAND,
    .arg_name = "CMD",
    .min_args = 1,
    .help_more = NULL,
    .exec = exec_sweep,
};
