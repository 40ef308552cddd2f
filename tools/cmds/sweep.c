/* sweep.c: `poolprof sweep`: runs a command at several worker counts, fits Amdahl and USL to its wall times, and holds poolprof's recommendation against the measured best; its options, entry and course. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "core/fit.h"
#include "prof.h"
#include "readreport.h"
#include "session.h"

extern char **environ;

#define SWEEP_SCHEMA "poolprof.sweep/1"
#define MAX_COUNTS 32
#define MAX_WORKERS 1000000
#define MAX_REPEAT 1000
#define MAX_TIMEOUT_S 10000000
#define DEFAULT_REPEAT 3
#define DEFAULT_SEED 1
#define WITHIN 0.9 /* "within 10%": the recommended count keeps at least 90% of the best throughput */
#define PLACEHOLDER "{workers}"
#define WORKERS_ENV "POOLPROF_WORKERS"

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
    char **cmd;              /* CMD ARGS..., {workers} not yet replaced */
    char ***argv;            /* per count: cmd with {workers} replaced */
    char ***envp;            /* per count: our environment with POOLPROF_WORKERS set */
    double *wall;            /* wall[count * repeat + round], seconds */
    /* What the profile step read from the report. */
    json_t *rec;             /* the stage's recommendation object, or NULL */
    const char *rec_stage;
    int rec_workers;
    int rec_added;           /* rec_workers was not in --workers: added to the sweep */
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
};

struct point {
    int workers;
    double median, min, max, speedup, efficiency, predicted;
};

struct results {
    struct point p[MAX_COUNTS + 1];
    int have_amdahl, have_usl, have_peak;
    struct prof_amdahl amdahl;
    struct prof_usl usl;
    double peak_workers; /* absolute count */
    size_t best;
    double rec_throughput; /* median(best) / median(recommended) */
};

/* sweep_run.c: the command at one count, one run, the profile step, the timed runs. */
/* arg with every {workers} replaced by n; NULL when out of memory. */
char *sweep_subst(const char *arg, int n);
void sweep_strv_free(char **v);
/* prefix (borrowed, then copied) + cmd with {workers} replaced, NULL-terminated, every string owned. */
char **sweep_command_at(char *const *prefix, char **cmd, int n);
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
/* The recommended count joins the sweep after the last smaller count (never before the baseline). */
void sweep_add_recommended(struct sweep *w);
/* Every count once per round, in a fresh order each round. */
int sweep_timed_runs(struct sweep *w);

/* sweep_results.c: medians, speedups, the fits; the table on stdout and the JSON. */
int sweep_compute(const struct sweep *w, struct results *r); /* 0 or PROF_E* */
void sweep_print(const struct sweep *w, const struct results *r);
/* The results as schema poolprof.sweep/1 into path (temporary file + rename). 0 or PROF_E*. */
int sweep_write_json(const struct sweep *w, const struct results *r, const char *path);


/* ---- the command at one count ---------------------------------------------------- */

/* arg with every {workers} replaced by n; NULL when out of memory. */
char *sweep_subst(const char *arg, int n)
{
    char num[16];
    size_t k = 0, plen = strlen(PLACEHOLDER);
    int nlen = snprintf(num, sizeof num, "%d", n);

    for (const char *p = arg; (p = strstr(p, PLACEHOLDER)); p += plen)
        k++;
    char *out = malloc(strlen(arg) + k * (size_t)nlen + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = arg, *q; *p; p = q + plen) {
        if (!(q = strstr(p, PLACEHOLDER))) {
            strcpy(o, p);
            return out;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, num, (size_t)nlen);
        o += nlen;
    }
    *o = '\0';
    return out;
}

void sweep_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* prefix (borrowed, then copied) + cmd with {workers} replaced, NULL-terminated, every string owned. */
char **sweep_command_at(char *const *prefix, char **cmd, int n)
{
    size_t np = 0, nc = 0;

    while (prefix && prefix[np])
        np++;
    while (cmd[nc])
        nc++;
    char **v = calloc(np + nc + 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < np + nc; i++) {
        v[i] = i < np ? strdup(prefix[i]) : sweep_subst(cmd[i - np], n);
        if (!v[i]) {
            sweep_strv_free(v);
            return NULL;
        }
    }
    return v;
}

/* Our environment with POOLPROF_WORKERS=n (replacing any inherited value); every string owned. */
char **sweep_environment_at(int n)
{
    size_t k = 0, count = 0;

    for (char **e = environ; *e; e++)
        count++;
    char **v = calloc(count + 2, sizeof *v);
    if (!v)
        return NULL;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, WORKERS_ENV "=", sizeof WORKERS_ENV) == 0)
            continue;
        if (!(v[k++] = strdup(*e)))
            goto fail;
    }
    if (asprintf(&v[k], "%s=%d", WORKERS_ENV, n) < 0) {
        v[k] = NULL;
        goto fail;
    }
    return v;
fail:
    sweep_strv_free(v);
    return NULL;
}

/* ---- one run --------------------------------------------------------------------- */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A stop signal that arrived while no command ran (they are blocked for the whole sweep): 0 if none. */
int sweep_pending_stop(const struct sweep *w)
{
    struct timespec zero = {0, 0};
    int sig = sigtimedwait(&w->stops, NULL, &zero);
    return sig > 0 ? sig : 0;
}

/* An output file for the command, or /dev/null; -1 with errno set. */
static int open_output(const char *keep, const char *name)
{
    char path[PATH_MAX];

    if (!keep)
        return open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (snprintf(path, sizeof path, "%s/%s", keep, name) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

/* In the child: fd onto target (a descriptor already there just loses close-on-exec). */
static void move_fd(int fd, int target)
{
    if (fd == target)
        fcntl(fd, F_SETFD, 0);
    else
        dup2(fd, target);
}

/*
 * Run argv in its own process group (so one kill() reaches whatever it
 * started, and a terminal's Ctrl-C reaches only poolprof, which then kills
 * it), stdin from /dev/null, stdout and stderr to fds. Timed from fork to
 * the exit with CLOCK_MONOTONIC. The exit is first observed without reaping
 * (WNOWAIT): the zombie keeps the group id from being reused while the
 * group is killed, which takes care of anything the command left behind.
 * Returns 0 with *o filled, or a negative PROF_E* code (fork failed).
 */
static int run_one(const struct sweep *w, char **argv, char **envp, int out_fd, int err_fd, struct outcome *o)
{
    sigset_t waitset = w->stops;
    sigaddset(&waitset, SIGCHLD);
    memset(o, 0, sizeof *o);

    if ((o->sig = sweep_pending_stop(w))) {
        o->how = RUN_STOPPED;
        return 0;
    }
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0)
        return prof_err_from_errno(errno);
    if (pid == 0) {
        setpgid(0, 0);
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in >= 0)
            move_fd(in, 0);
        move_fd(out_fd, 1);
        move_fd(err_fd, 2);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &w->oldmask, NULL);
        execvpe(argv[0], argv, envp);
        _exit(CLI_EXIT_NOTFOUND);
    }
    setpgid(pid, pid); /* as the child does: whichever runs first, the group exists before any kill */

    double deadline = w->timeout_s > 0 ? t0 + w->timeout_s : 0;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR)
            break; /* cannot happen for our own child; reap below rather than spin */
        if (si.si_pid == pid) {
            o->seconds = now_s() - t0;
            break;
        }
        struct timespec ts, *tsp = NULL;
        if (deadline > 0) {
            double left = deadline - now_s();
            if (left <= 0) {
                o->how = RUN_TIMED_OUT;
                break;
            }
            ts.tv_sec = (time_t)left;
            ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
            tsp = &ts;
        }
        int sig = sigtimedwait(&waitset, NULL, tsp);
        if (sig > 0 && sig != SIGCHLD) {
            o->how = RUN_STOPPED;
            o->sig = sig;
            break;
        }
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, &o->status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

const char *sweep_signal_name(int sig)
{
    switch (sig) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    case SIGHUP:
        return "SIGHUP";
    case SIGQUIT:
        return "SIGQUIT";
    }
    return "a signal";
}

/* "exit status 3", "killed by signal 9 (Killed)" */
static void describe_status(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "wait status 0x%x", (unsigned)status);
}

/* ---- the profile step ---------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Run the command once under `poolprof run` at the profile count and keep the
 * chosen stage's recommendation. `poolprof run -o DIR` refuses an existing
 * DIR, so the run directory is a fresh name inside a mkdtemp directory (or
 * DIR/profile-run with --force under --keep). 0, or PROF_E* after one line
 * (w->stopped_by set when a stop signal ended it).
 */
int sweep_profile(struct sweep *w)
{
    char base[PATH_MAX], rundir[PATH_MAX + 32], json_path[PATH_MAX + 32], self[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    int rc = PROF_EIO, n = w->profile_at ? w->profile_at : w->counts[0];
    char **argv = NULL, **envp = NULL;
    json_t *report = NULL;
    int out_fd = -1, err_fd = -1;

    base[0] = '\0';
    if (w->keep) {
        snprintf(rundir, sizeof rundir, "%s/profile-run", w->keep);
        snprintf(json_path, sizeof json_path, "%s/profile.json", w->keep);
    } else {
        snprintf(base, sizeof base, "%s/poolprof-sweep.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(base)) {
            cli_msg("%s: cannot make a directory for the profile run: %s", base,
                    strerror(errno));
            return prof_err_from_errno(errno);
        }
        snprintf(rundir, sizeof rundir, "%s/run", base);
        snprintf(json_path, sizeof json_path, "%s/report.json", base);
    }
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0)
        self[len] = '\0';
    else
        snprintf(self, sizeof self, "%s", program_invocation_name);
    char *prefix[] = {self, "run", "-o", rundir, "--json", json_path, w->keep ? "--force" : "--", w->keep ? "--" : NULL,
                      NULL};
    argv = sweep_command_at(prefix, w->cmd, n);
    envp = sweep_environment_at(n);
    out_fd = open_output(w->keep, "profile.out");
    err_fd = open_output(w->keep, "profile.err");
    if (!argv || !envp || out_fd < 0 || err_fd < 0) {
        cli_msg("cannot prepare the profile run: %s", strerror(errno ? errno : ENOMEM));
        goto done;
    }
    if (w->progress)
        fprintf(stderr, "poolprof sweep: profiling at %d worker%s...", n, n == 1 ? "" : "s");
    struct outcome o;
    int err = run_one(w, argv, envp, out_fd, err_fd, &o);
    if (w->progress)
        fprintf(stderr, "\r\033[K");
    const char *hint = w->keep ? "" : " (--keep DIR keeps its output)";
    if (err < 0) {
        cli_msg("cannot start the profile run: %s", prof_strerror(err));
        goto done;
    }
    if (o.how == RUN_STOPPED) {
        cli_msg("stopped by %s during the profile run; the command was killed",
                sweep_signal_name(o.sig));
        w->stopped_by = o.sig;
        goto done;
    }
    if (o.how == RUN_TIMED_OUT) {
        cli_msg("the profile run at %d worker%s timed out after %g s (process group killed)%s",
                n, n == 1 ? "" : "s", w->timeout_s, hint);
        goto done;
    }
    if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0) {
        char st[96];
        describe_status(o.status, st, sizeof st);
        cli_msg("the profile run (poolprof run at %d worker%s) failed: %s%s", n,
                n == 1 ? "" : "s", st, hint);
        goto done;
    }
    if (readreport_doc(json_path, "the profile report", &report) < 0)
        goto done;
    const char *name = w->stage ? w->stage : "overall";
    const json_t *stage = readreport_stage(report, "the profile report", name);
    if (!stage)
        goto done;
    json_t *rec = json_object_get(stage, "recommendation");
    json_t *workers = json_object_get(rec, "workers");
    if (!json_is_string(json_object_get(rec, "model")) || !json_is_integer(workers) ||
        json_integer_value(workers) < 1 || json_integer_value(workers) > MAX_WORKERS) {
        cli_msg("the profile report: stage '%s' has no usable recommendation (model, workers)", name);
        goto done;
    }
    w->rec = json_incref(rec);
    w->rec_stage = name;
    w->rec_workers = (int)json_integer_value(workers);
    w->profile_at = n;
    rc = 0;
done:
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    json_decref(report);
    sweep_strv_free(argv);
    sweep_strv_free(envp);
    if (base[0])
        rm_tree(base);
    return rc;
}

/* The recommended count joins the sweep after the last smaller count (never before the baseline). */
void sweep_add_recommended(struct sweep *w)
{
    for (size_t i = 0; i < w->ncounts; i++)
        if (w->counts[i] == w->rec_workers)
            return;
    size_t at = w->ncounts;
    while (at > 1 && w->counts[at - 1] > w->rec_workers)
        at--;
    memmove(&w->counts[at + 1], &w->counts[at], (w->ncounts - at) * sizeof *w->counts);
    w->counts[at] = w->rec_workers;
    w->ncounts++;
    w->rec_added = 1;
}

/* The report's predicted speedup at n (recommendation.scaling.points), NaN when it has none. */
/* ---- the sweep ----------------------------------------------------------------------- */

/* splitmix64: a fixed, portable sequence for a given seed. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Every count once per round, in a fresh order each round. -1 to go on, else the exit status. */
int sweep_timed_runs(struct sweep *w)
{
    uint64_t state = w->seed;
    int err;
    size_t order[MAX_COUNTS + 1], done = 0, total = w->ncounts * (size_t)w->repeat;

    for (int round = 0; round < w->repeat; round++) {
        for (size_t i = 0; i < w->ncounts; i++)
            order[i] = i;
        for (size_t i = w->ncounts; i > 1; i--) {
            size_t j = (size_t)(next_random(&state) % i);
            size_t t = order[i - 1];
            order[i - 1] = order[j], order[j] = t;
        }
        for (size_t k = 0; k < w->ncounts; k++) {
            size_t c = order[k];
            int n = w->counts[c];
            char out_name[64], err_name[64];
            snprintf(out_name, sizeof out_name, "w%d-r%d.out", n, round + 1);
            snprintf(err_name, sizeof err_name, "w%d-r%d.err", n, round + 1);
            int out_fd = open_output(w->keep, out_name), err_fd = out_fd < 0 ? -1 : open_output(w->keep, err_name);
            if (err_fd < 0) {
                cli_msg("%s/%s: cannot open: %s", w->keep ? w->keep : "",
                        out_fd < 0 ? out_name : err_name, strerror(errno));
                err = prof_err_from_errno(errno);
                if (out_fd >= 0)
                    close(out_fd);
                return err;
            }
            if (w->progress)
                fprintf(stderr, "\rpoolprof sweep: run %zu of %zu (%d worker%s)\033[K", done + 1, total, n,
                        n == 1 ? "" : "s");
            struct outcome o;
            err = run_one(w, w->argv[c], w->envp[c], out_fd, err_fd, &o);
            close(out_fd);
            close(err_fd);
            if (w->progress)
                fprintf(stderr, "\r\033[K");
            if (err < 0) {
                cli_msg("cannot start %s: %s", w->argv[c][0], prof_strerror(err));
                return err;
            }
            if (o.how == RUN_STOPPED) {
                cli_msg("stopped by %s at %d worker%s (repeat %d of %d); the command was killed",
                        sweep_signal_name(o.sig), n, n == 1 ? "" : "s", round + 1, w->repeat);
                w->stopped_by = o.sig;
                return PROF_EIO;
            }
            if (o.how == RUN_TIMED_OUT) {
                cli_msg("%s at %d worker%s (repeat %d of %d) timed out after %g s (process group killed)",
                        w->argv[c][0], n, n == 1 ? "" : "s", round + 1, w->repeat, w->timeout_s);
                return PROF_EIO;
            }
            if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0) {
                char st[96];
                describe_status(o.status, st, sizeof st);
                cli_msg("%s at %d worker%s (repeat %d of %d) failed: %s", w->argv[c][0], n,
                        n == 1 ? "" : "s", round + 1, w->repeat, st);
                return PROF_EIO;
            }
            w->wall[c * (size_t)w->repeat + (size_t)round] = o.seconds;
            done++;
        }
    }
    return 0;
}



/* The report's predicted speedup at n (recommendation.scaling.points), NaN when it has none. */
static double predicted_at(const struct sweep *w, int n)
{
    const json_t *points = json_object_get(json_object_get(w->rec, "scaling"), "points"), *p;
    size_t i;
    json_array_foreach(points, i, p) {
        const json_t *pw = json_object_get(p, "workers"), *ps = json_object_get(p, "predicted_speedup");
        if (json_is_integer(pw) && json_integer_value(pw) == n && json_is_number(ps) && isfinite(json_number_value(ps)))
            return json_number_value(ps);
    }
    return NAN;
}

int sweep_compute(const struct sweep *w, struct results *r)
{
    double n[MAX_COUNTS + 1], t[MAX_COUNTS + 1];

    memset(r, 0, sizeof *r);
    for (size_t c = 0; c < w->ncounts; c++) {
        const double *x = &w->wall[c * (size_t)w->repeat];
        struct point *p = &r->p[c];
        int err = prof_fit_median(x, (size_t)w->repeat, &p->median);
        if (err < 0)
            return err;
        p->workers = w->counts[c];
        p->min = p->max = x[0];
        for (int i = 1; i < w->repeat; i++)
            p->min = fmin(p->min, x[i]), p->max = fmax(p->max, x[i]);
        n[c] = p->workers;
        t[c] = p->median;
        p->predicted = w->rec ? predicted_at(w, p->workers) : NAN;
        if (p->median < r->p[r->best].median || (p->median == r->p[r->best].median && p->workers < r->p[r->best].workers))
            r->best = c;
    }
    for (size_t c = 0; c < w->ncounts; c++) {
        struct point *p = &r->p[c];
        /* A run too quick for the clock would divide by zero: leave its speedup undefined. */
        p->speedup = p->median > 0 ? r->p[0].median / p->median : NAN;
        p->efficiency = p->speedup / ((double)p->workers / r->p[0].workers);
    }
    r->have_amdahl = prof_fit_amdahl(n, t, w->ncounts, &r->amdahl) == 0;
    r->have_usl = prof_fit_usl(n, t, w->ncounts, &r->usl) == 0;
    if (r->have_usl && prof_usl_peak(r->usl.sigma, r->usl.kappa, &r->peak_workers) == 0) {
        r->have_peak = 1;
        r->peak_workers *= r->p[0].workers;
    }
    if (w->rec) {
        for (size_t c = 0; c < w->ncounts; c++)
            if (r->p[c].workers == w->rec_workers)
                r->rec_throughput = r->p[r->best].median / r->p[c].median;
    }
    return 0;
}

static const char *plural(int n)
{
    return n == 1 ? "" : "s";
}

/* Seconds with three decimals, or three significant digits under 0.1 s. */
static void fmt_s(char *buf, size_t cap, double s)
{
    snprintf(buf, cap, s < 0.1 ? "%.3g" : "%.3f", s);
}

static void fmt_2(char *buf, size_t cap, int have, double v)
{
    if (have && isfinite(v))
        snprintf(buf, cap, "%.2f", v);
    else
        snprintf(buf, cap, "-");
}

void sweep_print(const struct sweep *w, const struct results *r)
{
    printf("poolprof sweep: %zu count%s x %d repeat%s, interleaved; ", w->ncounts, w->ncounts == 1 ? "" : "s",
           w->repeat, plural(w->repeat));
    if (w->rec)
        printf("profiled at %d worker%s\n", w->profile_at, plural(w->profile_at));
    else
        printf("not profiled (--no-profile)\n");
    if (w->rec_added)
        printf("added %d worker%s to the sweep: poolprof run recommended it and --workers did not list it\n",
               w->rec_workers, plural(w->rec_workers));
    int any_predicted = 0;
    for (size_t c = 0; c < w->ncounts; c++)
        any_predicted |= !isnan(r->p[c].predicted);
    if (any_predicted) {
        /* The report counts workers its own way (threads or processes seen, the main one included):
         * say so when that is not the count the profiled run was given, or the columns mislead. */
        const json_t *scaling = json_object_get(w->rec, "scaling"), *mw = json_object_get(scaling, "measured_workers");
        const char *model = json_string_value(json_object_get(scaling, "model"));
        printf("predicted: poolprof run's %s%sscaling model, relative to the profiled run at %d worker%s", model ? model : "",
               model ? " " : "", w->profile_at, plural(w->profile_at));
        if (json_is_integer(mw) && json_integer_value(mw) != w->profile_at)
            printf(" (which poolprof counted as %lld)", (long long)json_integer_value(mw));
        if (w->profile_at != r->p[0].workers)
            printf("; measured speedups are relative to %d", r->p[0].workers);
        printf("\n");
    }

    printf("%-8s %-9s %-15s %-8s %-11s %-7s %-6s %s\n", "workers", "median s", "spread s", "speedup", "efficiency",
           "amdahl", "usl", "predicted");
    for (size_t c = 0; c < w->ncounts; c++) {
        const struct point *p = &r->p[c];
        double rel = (double)p->workers / r->p[0].workers;
        char med[32], lo[32], hi[32], spread[72], sp[32], ef[32], am[32], us[32], pr[32];
        fmt_s(med, sizeof med, p->median);
        fmt_s(lo, sizeof lo, p->min);
        fmt_s(hi, sizeof hi, p->max);
        snprintf(spread, sizeof spread, "%s-%s", lo, hi);
        fmt_2(sp, sizeof sp, 1, p->speedup);
        fmt_2(ef, sizeof ef, 1, p->efficiency);
        fmt_2(am, sizeof am, r->have_amdahl, prof_amdahl_speedup(r->amdahl.serial_fraction, rel));
        fmt_2(us, sizeof us, r->have_usl, prof_usl_speedup(r->usl.sigma, r->usl.kappa, rel));
        fmt_2(pr, sizeof pr, 1, p->predicted);
        if (isnan(p->predicted))
            pr[0] = '\0';
        printf("%-8d %-9s %-15s %-8s %-11s %-7s %-6s %s\n", p->workers, med, spread, sp, ef, am, us, pr);
    }
    if (r->have_amdahl && r->have_usl) {
        printf("Amdahl fit: serial fraction %.3f (rms error %.3f); USL fit: sigma %.3g, kappa %.3g, ",
               r->amdahl.serial_fraction, r->amdahl.rms_error, r->usl.sigma, r->usl.kappa);
        if (r->have_peak)
            printf("peak at N=%.0f\n", r->peak_workers);
        else
            printf("no peak (%s)\n", r->usl.kappa == 0 ? "kappa 0" : "sigma >= 1");
    } else {
        printf("Amdahl and USL fits: need at least two worker counts with measurable times\n");
    }
    const struct point *b = &r->p[r->best];
    char med[32];
    fmt_s(med, sizeof med, b->median);
    printf("measured best: %d worker%s (median %s s)", b->workers, plural(b->workers), med);
    if (w->rec) {
        const char *model = json_string_value(json_object_get(w->rec, "model"));
        const json_t *ps = json_object_get(w->rec, "predicted_speedup");
        printf("; poolprof run recommended %s x %d", model, w->rec_workers);
        if (strcmp(w->rec_stage, "overall") != 0)
            printf(" for stage '%s'", w->rec_stage);
        if (json_is_number(ps))
            printf(" (predicted speedup %.2f)", json_number_value(ps));
        printf(": %.2f of the best throughput (within 10%%: %s)", r->rec_throughput,
               r->rec_throughput >= WITHIN ? "yes" : "no");
    }
    printf("\n");
}

/* A finite number, or null (jansson has no NaN). */
static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *results_json(const struct sweep *w, const struct results *r)
{
    json_t *o = json_object(), *cmd = json_array(), *points = json_array();

    for (char **a = w->cmd; *a; a++)
        json_array_append_new(cmd, json_string(*a));
    for (size_t c = 0; c < w->ncounts; c++) {
        const struct point *p = &r->p[c];
        json_t *walls = json_array();
        for (int i = 0; i < w->repeat; i++)
            json_array_append_new(walls, json_real(w->wall[c * (size_t)w->repeat + (size_t)i]));
        json_t *pt = json_object();
        json_object_set_new(pt, "workers", json_integer(p->workers));
        json_object_set_new(pt, "wall_seconds", walls);
        json_object_set_new(pt, "median_seconds", jnum(p->median));
        json_object_set_new(pt, "min_seconds", jnum(p->min));
        json_object_set_new(pt, "max_seconds", jnum(p->max));
        json_object_set_new(pt, "speedup", jnum(p->speedup));
        json_object_set_new(pt, "efficiency", jnum(p->efficiency));
        json_object_set_new(pt, "predicted_speedup", jnum(p->predicted));
        json_array_append_new(points, pt);
    }
    json_object_set_new(o, "schema", json_string(SWEEP_SCHEMA));
    json_object_set_new(o, "command", cmd);
    json_object_set_new(o, "repeat", json_integer(w->repeat));
    json_object_set_new(o, "seed", json_integer((json_int_t)w->seed));
    json_object_set_new(o, "points", points);
    json_object_set_new(o, "amdahl", r->have_amdahl ? json_pack("{s:o, s:o}", "serial_fraction",
                                                                 jnum(r->amdahl.serial_fraction), "rms_error",
                                                                 jnum(r->amdahl.rms_error))
                                                     : json_null());
    json_object_set_new(o, "usl", r->have_usl ? json_pack("{s:o, s:o, s:o, s:o}", "sigma", jnum(r->usl.sigma), "kappa",
                                                          jnum(r->usl.kappa), "peak_workers",
                                                          r->have_peak ? jnum(r->peak_workers) : json_null(),
                                                          "rms_error", jnum(r->usl.rms_error))
                                               : json_null());
    json_object_set_new(o, "best", json_pack("{s:i, s:o}", "workers", r->p[r->best].workers, "median_seconds",
                                             jnum(r->p[r->best].median)));
    if (w->rec) {
        const json_t *ps = json_object_get(w->rec, "predicted_speedup");
        json_t *rec = json_object();
        json_object_set_new(rec, "stage", json_string(w->rec_stage));
        json_object_set_new(rec, "model", json_incref(json_object_get(w->rec, "model")));
        json_object_set_new(rec, "workers", json_integer(w->rec_workers));
        json_object_set_new(rec, "predicted_speedup", json_is_number(ps) ? jnum(json_number_value(ps)) : json_null());
        json_object_set_new(rec, "throughput_vs_best", jnum(r->rec_throughput));
        json_object_set_new(rec, "within_10_percent", json_boolean(r->rec_throughput >= WITHIN));
        json_object_set_new(rec, "profiled_workers", json_integer(w->profile_at));
        const json_t *scaling = json_object_get(w->rec, "scaling"), *mw = json_object_get(scaling, "measured_workers");
        const json_t *sm = json_object_get(scaling, "model");
        json_object_set_new(rec, "scaling_model", json_is_string(sm) ? json_incref((json_t *)sm) : json_null());
        json_object_set_new(rec, "measured_workers", json_is_integer(mw) ? json_incref((json_t *)mw) : json_null());
        json_object_set_new(rec, "added_to_sweep", json_boolean(w->rec_added));
        json_object_set_new(o, "recommendation", rec);
    } else {
        json_object_set_new(o, "recommendation", json_null());
    }
    return o;
}

/* Temp file + rename: a reader never sees half a file, a failed write leaves the old one. */
static int write_json(const char *path, const json_t *o)
{
    char tmp[PATH_MAX];

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return PROF_EINVAL;
    errno = 0;
    FILE *fp = fopen(tmp, "we");
    int failed = !fp || json_dumpf(o, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) != 0 ||
                 fputc('\n', fp) == EOF || ferror(fp);
    int e = failed ? prof_err_from_errno(errno ? errno : EIO) : 0;
    if (fp && fclose(fp) != 0 && !e)
        e = prof_err_from_errno(errno ? errno : EIO);
    if (!e && rename(tmp, path) != 0)
        e = prof_err_from_errno(errno);
    if (e)
        unlink(tmp);
    return e;
}

int sweep_write_json(const struct sweep *w, const struct results *r, const char *path)
{
    json_t *o = results_json(w, r);
    int err = o ? write_json(path, o) : PROF_ENOMEM;
    json_decref(o);
    return err;
}

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

static int parse_seed(const struct cli_opt *o, const char *arg, void *dst, char *why, size_t cap)
{
    char *end;

    (void)o;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || *end || !(*arg >= '0' && *arg <= '9')) {
        snprintf(why, cap, "wants a non-negative integer");
        return PROF_EINVAL;
    }
    *(unsigned long long *)dst = v;
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
     parse_seed, offsetof(struct sweep, seed), 0, 0, NULL},
    {"stage", 0, "NAME", "take the recommendation of stage NAME (default overall)", cli_string,
     offsetof(struct sweep, stage), 0, 0, NULL},
    {"profile-at", 0, "N", "profile at N workers (default: the first count)", cli_int,
     offsetof(struct sweep, profile_at), 1, MAX_WORKERS, "workers"},
    {"no-profile", 0, NULL, "skip the profile step: no recommendation; excludes --stage and --profile-at",
     cli_flag_off, offsetof(struct sweep, profile), 0, 0, NULL},
    {"json", 0, "FILE", "also write the results (schema " SWEEP_SCHEMA ") to FILE", cli_output_path,
     offsetof(struct sweep, json_path), 0, 0, NULL},
    {"timeout", 0, "S", "a run, the profile run included, that takes longer than S seconds fails the sweep",
     cli_seconds, offsetof(struct sweep, timeout_s), 0, MAX_TIMEOUT_S, NULL},
    {"keep", 0, "DIR", "keep each run's stdout and stderr, and the profile run, in DIR (created if missing)",
     cli_string, offsetof(struct sweep, keep), 0, 0, NULL},
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
    /* The program is looked up once, at the first count, before anything runs. */
    char *prog = sweep_subst(w->cmd[0], w->counts[0]), found[PATH_MAX];
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

/* The profile step, the command at every count, the timed runs, the results. The exit status. */
static int sweep_all(struct sweep *w)
{
    struct results res;

    if (w->profile) {
        if (sweep_profile(w) < 0)
            return w->stopped_by ? CLI_EXIT_SIGNAL + w->stopped_by : CLI_EXIT_FAILED;
        sweep_add_recommended(w);
    }
    w->argv = calloc(w->ncounts, sizeof *w->argv);
    w->envp = calloc(w->ncounts, sizeof *w->envp);
    w->wall = calloc(w->ncounts * (size_t)w->repeat, sizeof *w->wall);
    if (!w->argv || !w->envp || !w->wall) {
        cli_msg("out of memory");
        return CLI_EXIT_FAILED;
    }
    for (size_t c = 0; c < w->ncounts; c++) {
        if (!(w->argv[c] = sweep_command_at(NULL, w->cmd, w->counts[c])) ||
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
    json_decref(w->rec);
    return rc;
}

const struct cli_cmd cmd_sweep = {
    .name = "sweep",
    .summary = "run a command at several worker counts: wall time, speedup, Amdahl and USL fits, against "
               "poolprof's recommendation",
    .usage = "--workers LIST [OPTIONS] [--] CMD [ARGS...]",
    .about = "Run CMD at each worker count, every {workers} in its arguments replaced by the count and "
             WORKERS_ENV "=N in its environment. Rounds run every count once, in an order shuffled per round, so "
             "drift hits all counts alike. Report the median wall time, speedup and efficiency per count, Amdahl "
             "and USL fits, and how close poolprof run's recommendation (profiled once first, at one count) comes "
             "to the best measured count. Options come before CMD: everything from the first word that is not an "
             "option, or after --, is CMD and its arguments.",
    .exits = "exit status: 0 when every run succeeded; 1 when a run failed (non-zero exit, signal, timeout), the "
             "profile step did, or the results could not be written; 2 for bad usage, an output path that cannot "
             "be written or a --keep directory that cannot be created; 127 when CMD is not found; 128+N when "
             "poolprof was stopped by signal N (the running command is killed).",
    .opts = options,
    .dst = &sweep,
    .args = CLI_ARGS_COMMAND,
    .arg_name = "CMD",
    .min_args = 1,
    .help_more = NULL,
    .exec = exec_sweep,
};
