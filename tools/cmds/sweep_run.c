/* sweep_run.c: `poolprof sweep`'s runs: the command at one count, one run in its own process group, the profile step, the interleaved timed runs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "prof.h"
#include "readreport.h"
#include "session.h"
#include "sweep.h"

extern char **environ;

/* ---- the command at one count ---------------------------------------------------- */

/* arg with the placeholders replaced into out (when not NULL); the length of the result. */
static size_t subst_into(char *out, const char *arg, const char *num, const char *model)
{
    size_t k = 0, wlen = strlen(PLACEHOLDER), mlen = strlen(MODEL_PLACEHOLDER);

    for (const char *p = arg; *p;) {
        const char *rep = NULL;
        size_t skip = 1;
        if (strncmp(p, PLACEHOLDER, wlen) == 0)
            rep = num, skip = wlen;
        else if (model && strncmp(p, MODEL_PLACEHOLDER, mlen) == 0)
            rep = model, skip = mlen;
        if (rep) {
            size_t rlen = strlen(rep);
            if (out)
                memcpy(out + k, rep, rlen);
            k += rlen;
        } else {
            if (out)
                out[k] = *p;
            k++;
        }
        p += skip;
    }
    if (out)
        out[k] = '\0';
    return k;
}

char *sweep_subst(const char *arg, int n, const char *model)
{
    char num[16];

    snprintf(num, sizeof num, "%d", n);
    char *out = malloc(subst_into(NULL, arg, num, model) + 1);
    if (out)
        subst_into(out, arg, num, model);
    return out;
}

int sweep_uses(char *const *cmd, const char *placeholder)
{
    for (; *cmd; cmd++)
        if (strstr(*cmd, placeholder))
            return 1;
    return 0;
}

void sweep_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* prefix (borrowed, then copied) + cmd with {workers} and {model} replaced, NULL-terminated, every string owned. */
char **sweep_command_at(char *const *prefix, char **cmd, int n, const char *model)
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
        v[i] = i < np ? strdup(prefix[i]) : sweep_subst(cmd[i - np], n, model);
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

/* "1 worker", "4 workers", or "4 workers as threads" when {model} became threads: how messages name a run. */
static void describe_run(int n, const char *model, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d worker%s%s%s", n, n == 1 ? "" : "s", model ? " as " : "", model ? model : "");
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
/*
 * The run's counters: every event poolprof opens itself (perf or raw), on the command's process
 * with inherit, before its exec (the child waits on go[0]), so each count is the whole tree's.
 * fds[e] -1 where the event did not open.
 */
static void tree_counters_open(const struct sweep *w, pid_t pid, int *fds)
{
    for (size_t e = 0; e < w->nctr; e++) {
        const struct prof_ctr_event *ev = &w->ctr[e];
        fds[e] = ev->source == PROF_CTR_SRC_PERF || ev->source == PROF_CTR_SRC_RAW ? prof_ctr_sys_open_tree(&ev->attr, pid)
                                                                                   : -1;
        if (fds[e] < 0)
            fds[e] = -1;
    }
}

/* After the tree is reaped: every task's count has joined its parent's. */
static void tree_counters_read(const struct sweep *w, int *fds, struct outcome *o)
{
    for (size_t e = 0; e < w->nctr; e++) {
        uint64_t v[3];
        if (fds[e] < 0)
            continue;
        if (read(fds[e], v, sizeof v) == (ssize_t)sizeof v && (v[2] > 0 || v[1] == 0)) {
            o->ctr[e] = v[2] && v[2] < v[1] ? (uint64_t)((double)v[0] * (double)v[1] / (double)v[2]) : v[0];
            o->ctr_ok |= 1ull << e;
        }
        close(fds[e]);
    }
}

static int run_one(const struct sweep *w, char **argv, char **envp, int out_fd, int err_fd, struct outcome *o)
{
    sigset_t waitset = w->stops;
    sigaddset(&waitset, SIGCHLD);
    memset(o, 0, sizeof *o);

    if ((o->sig = sweep_pending_stop(w))) {
        o->how = RUN_STOPPED;
        return 0;
    }
    /* With counters the child waits for them on a pipe; without, nothing is added to the run. */
    int go[2] = {-1, -1}, fds[PROF_CTR_MAX];
    if (w->nctr && pipe2(go, O_CLOEXEC) < 0)
        return prof_err_from_errno(errno);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (go[0] >= 0)
            close(go[0]), close(go[1]);
        return prof_err_from_errno(e);
    }
    if (pid == 0) {
        if (go[0] >= 0) {
            char c;
            close(go[1]);
            while (read(go[0], &c, 1) < 0 && errno == EINTR)
                ;
        }
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
    if (go[0] >= 0) {
        tree_counters_open(w, pid, fds);
        close(go[0]);
        close(go[1]); /* EOF: the child goes on */
    }

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
    if (go[0] >= 0)
        tree_counters_read(w, fds, o);
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
    session_self(self, sizeof self);
    char *prefix[12] = {self, "run", "-o", rundir, "--json", json_path};
    size_t np = 6;
    if (w->counters) {
        prefix[np++] = "--counters";
        prefix[np++] = (char *)w->counters;
    }
    if (w->keep)
        prefix[np++] = "--force";
    prefix[np++] = "--";
    argv = sweep_command_at(prefix, w->cmd, n, w->profile_model);
    envp = sweep_environment_at(n);
    out_fd = open_output(w->keep, "profile.out");
    err_fd = open_output(w->keep, "profile.err");
    if (!argv || !envp || out_fd < 0 || err_fd < 0) {
        cli_msg("cannot prepare the profile run: %s", strerror(errno ? errno : ENOMEM));
        goto done;
    }
    char at[96];
    describe_run(n, w->profile_model, at, sizeof at);
    if (w->progress)
        fprintf(stderr, "poolprof sweep: profiling at %s...", at);
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
        cli_msg("the profile run at %s timed out after %g s (process group killed)%s", at, w->timeout_s, hint);
        goto done;
    }
    if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0) {
        char st[96];
        describe_status(o.status, st, sizeof st);
        cli_msg("the profile run (poolprof run at %s) failed: %s%s", at, st, hint);
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
    /* Its counters, for the memory check once the timed runs give this count a speedup. */
    if (w->nprofiled < sizeof w->profiled / sizeof w->profiled[0])
        w->profiled[w->nprofiled++] = (struct profiled){n, json_incref((json_t *)stage)};
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
        session_remove_tree(base);
    return rc;
}

/* The recommended count joins the sweep after the last smaller count (never before the baseline), unless it is
 * above w->rec_limit (then w->rec_skipped). */
void sweep_add_recommended(struct sweep *w)
{
    int largest = 0;
    for (size_t i = 0; i < w->ncounts; i++)
        largest = w->counts[i] > largest ? w->counts[i] : largest;
    /* In long long: ADD_FACTOR x a count up to MAX_WORKERS fits no int. */
    long long limit = (long long)ADD_FACTOR * largest;
    w->rec_limit = limit > ADD_MIN ? (limit > MAX_WORKERS ? MAX_WORKERS : (int)limit) : ADD_MIN;
    for (size_t i = 0; i < w->ncounts; i++)
        if (w->counts[i] == w->rec_workers)
            return;
    if (w->rec_workers > w->rec_limit) {
        w->rec_skipped = 1;
        return;
    }
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
            char at[96];
            describe_run(n, w->timed_model, at, sizeof at);
            if (w->progress)
                fprintf(stderr, "\rpoolprof sweep: run %zu of %zu (%s)\033[K", done + 1, total, at);
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
                cli_msg("stopped by %s at %s (repeat %d of %d); the command was killed", sweep_signal_name(o.sig), at,
                        round + 1, w->repeat);
                w->stopped_by = o.sig;
                return PROF_EIO;
            }
            if (o.how == RUN_TIMED_OUT) {
                cli_msg("%s at %s (repeat %d of %d) timed out after %g s (process group killed)", w->argv[c][0], at,
                        round + 1, w->repeat, w->timeout_s);
                return PROF_EIO;
            }
            if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0) {
                char st[96];
                describe_status(o.status, st, sizeof st);
                cli_msg("%s at %s (repeat %d of %d) failed: %s", w->argv[c][0], at, round + 1, w->repeat, st);
                return PROF_EIO;
            }
            w->wall[c * (size_t)w->repeat + (size_t)round] = o.seconds;
            memcpy(w->ctr_v[c * (size_t)w->repeat + (size_t)round], o.ctr, sizeof o.ctr);
            w->ctr_ok[c * (size_t)w->repeat + (size_t)round] = o.ctr_ok;
            done++;
        }
    }
    return 0;
}

