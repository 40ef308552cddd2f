/* run.c: `poolprof run`: starts a command with the shim preloaded, records it as a session, reports, and passes its exit status through. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmds.h"
#include "core/read.h"
#include "format/rundir.h"
#include "format/shm.h"
#include "monitor/monitor.h"
#include "prof.h"
#include "session.h"

extern char **environ;


/*
 * Signals poolprof forwards to the target; SIGPIPE, which it ignores for
 * itself only; SIGCHLD, caught so that a child's exit wakes the monitor at
 * once (and never ignored, which would discard the exit statuses we report).
 */
static const int handled[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGCHLD};
#define NHANDLED (sizeof handled / sizeof *handled)

/* The options, with their defaults; the table below fills them. */
static struct run run = {
    .interval_ms = DEFAULT_INTERVAL_MS,
    .sample = 1,
    .preload = 1,
    .rate_hz = DEFAULT_RATE_HZ,
    .stacks = {1, 1},
    .ctr = {.on = 1},
};

static const struct cli_opt options[] = {
    SESSION_OPTIONS,
    {"no-sample", 0, NULL, "do not run the ptrace sampler: the shim and /proc only", cli_flag_off,
     offsetof(struct run, sample), 0, 0, NULL},
    {"no-preload", 0, NULL,
     "do not preload the shim: the sampler and /proc only; the program runs exactly as it would without poolprof",
     cli_flag_off, offsetof(struct run, preload), 0, 0, NULL},
    {NULL, 0, NULL, NULL, NULL, 0, 0, 0, NULL},
};

/* What start_target() made that go() and abort() need. */
static struct {
    char **env;
    struct sigaction saved[NHANDLED];
    struct rlimit nofile;
    int go[2], ep[2];
} target;

/* ---- the command ------------------------------------------------------------ */

/* libprof.so beside the executable (build tree), else ../lib/poolprof/ (installed). */
static void find_shim(char *out, size_t cap)
{
    char self[PATH_MAX], cand[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

    out[0] = '\0';
    if (n <= 0)
        return;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return;
    *slash = '\0';
    const char *rel[] = {"/libprof.so", "/../lib/poolprof/libprof.so"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        snprintf(cand, sizeof cand, "%s%s", self, rel[i]);
        char abs[PATH_MAX];
        if (access(cand, R_OK) == 0 && realpath(cand, abs) && strlen(abs) < cap) {
            snprintf(out, cap, "%s", abs);
            return;
        }
    }
}

/* ---- process start ----------------------------------------------------------- */

/*
 * The target's environment: ours, with the shim appended to LD_PRELOAD and told where to write,
 * and how large each record's extension area may be: the user's POOLPROF_EXT_BYTES, else the default.
 */
static char **target_env(const struct run *r)
{
    size_t n = 0;
    const char *ext = getenv(PROF_ENV_EXT);
    char ext_default[32];

    snprintf(ext_default, sizeof ext_default, "%llu", (unsigned long long)PROF_SHM_EXT_DEFAULT);
    for (char **e = environ; *e; e++)
        n++;
    char **env = calloc(n + 5, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    const char *old = NULL;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "LD_PRELOAD=", 11) == 0) {
            old = *e + 11;
            if (r->shim[0])
                continue;
        }
        if (r->shim[0] && (strncmp(*e, PROF_ENV_DIR "=", sizeof PROF_ENV_DIR) == 0 ||
                           strncmp(*e, PROF_ENV_SHIM "=", sizeof PROF_ENV_SHIM) == 0 ||
                           strncmp(*e, PROF_ENV_EXT "=", sizeof PROF_ENV_EXT) == 0))
            continue;
        env[k++] = *e;
    }
    if (r->shim[0]) {
        int have = old && strstr(old, r->shim) != NULL;
        if (asprintf(&env[k++], "LD_PRELOAD=%s%s%s", old && *old ? old : "", old && *old && !have ? ":" : "",
                     have ? "" : r->shim) < 0 ||
            asprintf(&env[k++], "%s=%s", PROF_ENV_DIR, r->rundir) < 0 ||
            asprintf(&env[k++], "%s=%s", PROF_ENV_SHIM, r->shim) < 0 ||
            asprintf(&env[k++], "%s=%s", PROF_ENV_EXT, ext && *ext ? ext : ext_default) < 0)
            return NULL;
    }
    env[k] = NULL;
    return env;
}

/* The entries target_env() allocated are the last four, when a shim is preloaded. */
static void target_env_free(char **env, const struct run *r)
{
    size_t n = 0;

    if (!env)
        return;
    while (env[n])
        n++;
    for (size_t i = r->shim[0] && n >= 4 ? n - 4 : n; i < n; i++)
        free(env[i]);
    free(env);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    /*
     * A signal the terminal generated (SI_KERNEL) went to the whole foreground
     * process group, the target included: poolprof only has to survive it.
     * One sent with kill() (si_code <= 0) was meant for the run: pass it on.
     */
    if (sig != SIGPIPE && sig != SIGCHLD && si && si->si_code <= 0)
        monitor_forward_signal(sig);
}

/*
 * Fork the target. It waits on the go pipe until run.json names it, and reports a
 * failed exec through the error pipe (close-on-exec: EOF means the exec succeeded).
 * Everything poolprof changed for itself is restored before the exec.
 */
static pid_t start_target(const struct run *r, char **env, const struct sigaction *saved,
                          const struct rlimit *nofile, const int go[2], const int ep[2])
{
    size_t argc = 0;

    for (char **a = r->cmd; *a; a++)
        argc++;
    /* execvp's fallback for a script without #!: run it with /bin/sh. Built here, not in the child. */
    char **sh_argv = calloc(argc + 2, sizeof *sh_argv);
    if (!sh_argv)
        return -1;
    sh_argv[0] = "sh";
    sh_argv[1] = (char *)r->exe;
    for (size_t i = 1; i < argc; i++)
        sh_argv[i + 1] = r->cmd[i];

    pid_t pid = fork();
    if (pid != 0) {
        free(sh_argv);
        return pid;
    }
    /* Our copy of the write end would keep the read below from ever seeing EOF if poolprof died. */
    close(go[1]);
    close(ep[0]);
    for (size_t i = 0; i < NHANDLED; i++)
        sigaction(handled[i], &saved[i], NULL);
    setrlimit(RLIMIT_NOFILE, nofile);
    char c;
    ssize_t n;
    do
        n = read(go[0], &c, 1);
    while (n < 0 && errno == EINTR);
    int err = ECANCELED;
    if (n == 1) {
        execve(r->exe, r->cmd, env);
        err = errno;
        if (err == ENOEXEC) {
            execve("/bin/sh", sh_argv, env);
            err = errno;
        }
    }
    while (write(ep[1], &err, sizeof err) < 0 && errno == EINTR)
        ;
    _exit(CLI_EXIT_NOTFOUND);
}

/* ---- the session's target ------------------------------------------------------------------------ */

/* Fork the target, held on the go pipe, with poolprof's signals and limits in place. 0 or PROF_E*. */
static int run_start(struct run *r)
{
    int err;

    if (!(target.env = target_env(r))) {
        cli_msg("out of memory");
        return PROF_ENOMEM;
    }
    /* Signals: handled only where the user did not ignore them (nohup stays nohup). */
    for (size_t i = 0; i < NHANDLED; i++) {
        sigaction(handled[i], NULL, &target.saved[i]);
        if (target.saved[i].sa_handler == SIG_IGN && handled[i] != SIGCHLD)
            continue;
        struct sigaction sa = {0};
        sa.sa_sigaction = on_signal;
        sa.sa_flags = SA_SIGINFO | SA_RESTART | (handled[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
        sigemptyset(&sa.sa_mask);
        if (handled[i] == SIGPIPE) /* a closed stderr must not kill poolprof before it reports the status */
            sa.sa_handler = SIG_IGN, sa.sa_flags = 0;
        sigaction(handled[i], &sa, NULL);
    }
    /* Orphaned descendants come to us, so their exit status is seen (Z lines). */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    /* The monitor keeps descriptors open per thread; the target gets the limit it had. */
    struct rlimit raised;
    getrlimit(RLIMIT_NOFILE, &target.nofile);
    raised = target.nofile;
    raised.rlim_cur = raised.rlim_max;
    setrlimit(RLIMIT_NOFILE, &raised);

    if (pipe2(target.go, O_CLOEXEC) < 0 || pipe2(target.ep, O_CLOEXEC) < 0) {
        err = errno;
        cli_msg("pipe: %s", strerror(err));
        target_env_free(target.env, r);
        return prof_err_from_errno(err);
    }
    r->root = start_target(r, target.env, target.saved, &target.nofile, target.go, target.ep);
    err = errno;
    target_env_free(target.env, r);
    if (r->root < 0) {
        cli_msg("fork: %s", strerror(err));
        return prof_err_from_errno(err);
    }
    close(target.go[0]);
    close(target.ep[1]);
    return 0;
}

/* Let the target exec, and learn whether the exec worked. 0 or PROF_ENOEXEC. */
static int run_go(struct run *r)
{
    int exec_err = 0;
    ssize_t n;

    while (write(target.go[1], "g", 1) < 0 && errno == EINTR)
        ;
    close(target.go[1]);
    do
        n = read(target.ep[0], &exec_err, sizeof exec_err);
    while (n < 0 && errno == EINTR);
    close(target.ep[0]);
    if (n == (ssize_t)sizeof exec_err) {
        session_exec_error(r->cmd[0], prof_err_from_errno(exec_err));
        return PROF_ENOEXEC;
    }
    return 0;
}

static void run_abort(struct run *r)
{
    kill(r->root, SIGKILL);
    waitpid(r->root, NULL, 0);
}

static const struct session_target run_target = {run_start, run_go, run_abort};

/* ---- the command ------------------------------------------------------------------------------------ */

static int exec_run(char **args, int nargs)
{
    struct run *r = &run;

    if (nargs == 0) {
        /* 127, as for a command that is not there (tests/integration/test_bad_input.sh). */
        cli_msg("no command given (usage: poolprof run [OPTIONS] [--] CMD [ARGS...])");
        return CLI_EXIT_NOTFOUND;
    }
    r->cmd = args;
    int err = session_resolve_command(r->cmd[0], r->exe, sizeof r->exe);
    if (err < 0) {
        session_exec_error(r->cmd[0], err);
        return CLI_EXIT_NOTFOUND;
    }
    r->is_static = monitor_elf_is_static(r->exe) > 0;
    if (r->preload) {
        find_shim(r->shim, sizeof r->shim);
        if (!r->shim[0])
            cli_msg("libprof.so not found beside poolprof: measuring from /proc only");
    }
    err = session_record(r, &run_target);
    if (err == PROF_ENOEXEC)
        return CLI_EXIT_NOTFOUND;
    if (err < 0)
        return CLI_EXIT_USAGE;
    /* The records of ended images shed their extension areas' unused size before the report
     * reads them; a poolprof killed before this leaves them whole, and as readable. */
    if (r->shim[0])
        prof_shim_trim(r->rundir);
    session_report(r);
    return session_exit_code(r->status);
}

const struct cli_cmd cmd_run = {
    .name = "run",
    .summary = "run a command under the profiler and report a verdict per stage",
    .usage = "[OPTIONS] [--] CMD [ARGS...]",
    .about = "Run CMD with the profiling shim preloaded into it and every descendant, watch the process tree "
             "from /proc and sample it with ptrace, then merge the run into a report: the terminal summary on "
             "standard error when CMD has ended. Options come before CMD: everything from the first word that "
             "is not an option, or after --, is CMD and its arguments. Every output path and the run directory "
             "are checked before CMD starts.",
    .exits = "exit status: CMD's own; 128+N when CMD was killed by signal N; 127 when CMD is not found or cannot "
             "be executed (or none is given); 2 for bad usage, an output path that cannot be written or a "
             "RUNDIR not empty without --force, all checked before CMD starts.",
    .opts = options,
    .dst = &run,
    .args = CLI_ARGS_COMMAND,
    .arg_name = "CMD",
    .min_args = 0, /* exec_run answers a missing CMD with 127 */
    .help_more = outputs_help,
    .exec = exec_run,
};
