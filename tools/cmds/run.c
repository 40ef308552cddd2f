/* run.c: `poolprof run`: runs a command with the shim preloaded and the /proc monitor watching, then merges and reports. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "monitor/machine.h"
#include "core/report.h"
#include "format/rundir.h"
#include "monitor/monitor.h"
#include "sampler/sampler.h"
#include "session.h"
#include "prof.h"

extern char **environ;


/*
 * Signals poolprof forwards to the target; SIGPIPE, which it ignores for
 * itself only; SIGCHLD, caught so that a child's exit wakes the monitor at
 * once (and never ignored, which would discard the exit statuses we report).
 */
static const int handled[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGCHLD};
#define NHANDLED (sizeof handled / sizeof *handled)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: poolprof run [-o RUNDIR] [--json FILE] [--force] [--interval MS] [--rate HZ]\n"
            "                    [--stacks native,python|native|python|none] [--no-sample] [--no-preload]\n"
            "                    -- CMD [ARGS...]\n"
            "\n"
            "Run CMD with the profiling shim preloaded into it and every descendant, watch the\n"
            "process tree from /proc and sample it with ptrace, then merge the run into a report\n"
            "(terminal summary on stderr).\n"
            "\n"
            "  -o, --output RUNDIR  run directory (default ./poolprof-YYYYmmdd-HHMMSS)\n"
            "  --json FILE          also write the report (schema %s) to FILE\n"
            "  --force              reuse a non-empty RUNDIR (its previous run files are removed)\n"
            "  --interval MS        memory sampling interval in milliseconds (default %d)\n"
            "  --rate HZ            sampler ticks per second, jittered +-20%% (default %d)\n"
            "  --stacks LIST        stacks the sampler takes (default native,python)\n"
            "  --no-sample          do not run the ptrace sampler (the shim and /proc only)\n"
            "  --no-preload         do not preload the shim (the sampler and /proc only)\n"
            "  -h, --help           this help\n"
            "\n"
            "poolprof exits with CMD's status (128+N when CMD was killed by signal N).\n",
            PROF_REPORT_SCHEMA, DEFAULT_INTERVAL_MS, DEFAULT_RATE_HZ);
}

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

/* The target's environment: ours, with the shim appended to LD_PRELOAD and told where to write. */
static char **target_env(const struct run *r)
{
    size_t n = 0;

    for (char **e = environ; *e; e++)
        n++;
    char **env = calloc(n + 4, sizeof *env);
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
                           strncmp(*e, PROF_ENV_SHIM "=", sizeof PROF_ENV_SHIM) == 0))
            continue;
        env[k++] = *e;
    }
    if (r->shim[0]) {
        int have = old && strstr(old, r->shim) != NULL;
        if (asprintf(&env[k++], "LD_PRELOAD=%s%s%s", old && *old ? old : "", old && *old && !have ? ":" : "",
                     have ? "" : r->shim) < 0 ||
            asprintf(&env[k++], "%s=%s", PROF_ENV_DIR, r->rundir) < 0 ||
            asprintf(&env[k++], "%s=%s", PROF_ENV_SHIM, r->shim) < 0)
            return NULL;
    }
    env[k] = NULL;
    return env;
}

/* The entries target_env() allocated are the last three, when a shim is preloaded. */
static void target_env_free(char **env, const struct run *r)
{
    size_t n = 0;

    if (!env)
        return;
    while (env[n])
        n++;
    for (size_t i = r->shim[0] && n >= 3 ? n - 3 : n; i < n; i++)
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

static void print_exec_error(const char *cmd, int err)
{
    if (err == ENOENT)
        fprintf(stderr, "poolprof: %s: command not found\n", cmd);
    else if (err == EACCES || err == EPERM)
        fprintf(stderr, "poolprof: %s: permission denied\n", cmd);
    else
        fprintf(stderr, "poolprof: %s: cannot execute: %s\n", cmd, strerror(err));
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
    _exit(EXIT_NOTFOUND);
}

/* ---- cmd_run ------------------------------------------------------------------ */

static int parse_args(struct run *r, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"json", required_argument, NULL, 'j'},
        {"force", no_argument, NULL, 'f'},        {"interval", required_argument, NULL, 'i'},
        {"no-sample", no_argument, NULL, 'S'},    {"no-preload", no_argument, NULL, 'P'},
        {"rate", required_argument, NULL, 'r'},   {"stacks", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            r->out_dir = optarg;
            break;
        case 'j':
            r->json_path = optarg;
            break;
        case 'f':
            r->force = 1;
            break;
        case 'i':
            if (session_parse_interval("run", optarg, &r->interval_ms) < 0) {
                usage(stderr);
                return EXIT_USAGE;
            }
            break;
        case 'S':
            r->sample = 0;
            break;
        case 'P':
            r->preload = 0;
            break;
        case 'r':
            if (session_parse_rate("run", optarg, &r->rate_hz) < 0)
                return EXIT_USAGE;
            break;
        case 's':
            if (session_parse_stacks("run", optarg, &r->native, &r->python) < 0)
                return EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "poolprof: run: option '%s' needs a value\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        default:
            if (optopt)
                fprintf(stderr, "poolprof: run: unknown option '-%c'\n", optopt);
            else
                fprintf(stderr, "poolprof: run: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    r->cmd = argv + optind;
    return -1;
}

int cmd_run(int argc, char **argv)
{
    static struct run run; /* PATH_MAX buffers: keep them off the stack */
    struct run *r = &run;
    int rc;

    memset(r, 0, sizeof *r);
    r->interval_ms = DEFAULT_INTERVAL_MS;
    r->sample = r->preload = 1;
    r->rate_hz = DEFAULT_RATE_HZ;
    r->native = r->python = 1;
    if ((rc = parse_args(r, argc, argv)) >= 0)
        return rc;
    if (!r->cmd[0]) {
        fprintf(stderr, "poolprof: run: no command given (poolprof run [options] -- CMD [ARGS...])\n");
        return EXIT_NOTFOUND;
    }
    int err = session_resolve_command(r->cmd[0], r->exe, sizeof r->exe);
    if (err) {
        print_exec_error(r->cmd[0], err);
        return EXIT_NOTFOUND;
    }
    r->is_static = monitor_elf_is_static(r->exe) > 0;
    if (!getcwd(r->cwd, sizeof r->cwd)) {
        fprintf(stderr, "poolprof: cannot read the current directory: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    if (r->preload)
        find_shim(r->shim, sizeof r->shim);
    if (!r->shim[0] && r->preload)
        fprintf(stderr, "poolprof: libprof.so not found beside poolprof: measuring from /proc only\n");
    if (session_rundir_prepare(r) < 0)
        return EXIT_USAGE;
    prof_machine_read(&r->machine);
    char **env = target_env(r);
    if (!env) {
        fprintf(stderr, "poolprof: out of memory\n");
        session_rundir_discard(r);
        return EXIT_USAGE;
    }
    if ((err = monitor_open(r->rundir, r->interval_ms)) < 0) {
        fprintf(stderr, "poolprof: %s: run directory not writable: %s\n", r->rundir, prof_strerror(err));
        target_env_free(env, r);
        session_rundir_discard(r);
        return EXIT_USAGE;
    }

    /* Signals: handled only where the user did not ignore them (nohup stays nohup). */
    struct sigaction saved[NHANDLED];
    for (size_t i = 0; i < NHANDLED; i++) {
        sigaction(handled[i], NULL, &saved[i]);
        if (saved[i].sa_handler == SIG_IGN && handled[i] != SIGCHLD)
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
    struct rlimit nofile, raised;
    getrlimit(RLIMIT_NOFILE, &nofile);
    raised = nofile;
    raised.rlim_cur = raised.rlim_max;
    setrlimit(RLIMIT_NOFILE, &raised);

    int go[2], ep[2];
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
        fprintf(stderr, "poolprof: pipe: %s\n", strerror(errno));
        target_env_free(env, r);
        session_rundir_discard(r);
        return EXIT_USAGE;
    }
    r->root = start_target(r, env, saved, &nofile, go, ep);
    if (r->root < 0) {
        fprintf(stderr, "poolprof: fork: %s\n", strerror(errno));
        target_env_free(env, r);
        session_rundir_discard(r);
        return EXIT_USAGE;
    }
    close(go[0]);
    close(ep[1]);
    target_env_free(env, r);
    r->start_realtime_ns = monitor_realtime_ns();
    r->start_ns = monitor_now_ns();
    if ((err = session_json_write(r)) != 0) {
        fprintf(stderr, "poolprof: %s: run directory not writable: %s\n", r->rundir, strerror(err));
        kill(r->root, SIGKILL);
        waitpid(r->root, NULL, 0);
        session_rundir_discard(r);
        return EXIT_USAGE;
    }
    /* The sampler seizes the target while it waits for go: nothing it does is missed. */
    struct prof_sampler *sampler = NULL;
    if (r->sample) {
        struct prof_sampler_opts so = {.rundir = r->rundir, .root = r->root, .rate_hz = r->rate_hz,
                                       .native = r->native, .python = r->python, .follow = 1,
                                       .reaped = monitor_child_reaped};
        if ((err = prof_sampler_start(&so, &sampler)) < 0)
            fprintf(stderr, "poolprof: sampler not started: %s\n", prof_strerror(err));
        else if (prof_sampler_note(sampler))
            fprintf(stderr, "poolprof: %s\n", prof_sampler_note(sampler));
    }
    /* Go, and learn whether the exec worked. */
    while (write(go[1], "g", 1) < 0 && errno == EINTR)
        ;
    close(go[1]);
    int exec_err = 0;
    ssize_t n;
    do
        n = read(ep[0], &exec_err, sizeof exec_err);
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof exec_err) {
        print_exec_error(r->cmd[0], exec_err);
        prof_sampler_stop(sampler);
        waitpid(r->root, NULL, 0);
        session_rundir_discard(r);
        return EXIT_NOTFOUND;
    }

    struct monitor_opts mo = {
        .rundir = r->rundir,
        .interval_ms = r->interval_ms,
        .root = r->root,
        .root_exe = r->exe,
        .root_argv = r->cmd,
        .root_static = r->is_static,
        .tree_events = prof_sampler_tree_events,
        .tree_ctx = sampler,
    };
    struct monitor_result res;
    monitor_run(&mo, &res);
    if (sampler && (err = prof_sampler_stop(sampler)) < 0)
        fprintf(stderr, "poolprof: sampler recording stopped: %s\n", prof_strerror(err));
    r->done = 1;
    r->status = res.root_status;
    r->end_ns = monitor_now_ns();
    r->recording_error = res.recording_error;
    int code = session_exit_code(r->status);
    if (r->recording_error)
        fprintf(stderr, "poolprof: recording stopped: %s\n", strerror(r->recording_error));
    if ((err = session_json_write(r)) != 0)
        fprintf(stderr, "poolprof: %s/run.json: cannot rewrite: %s\n", r->rundir, strerror(err));

    session_report(r);
    return code;
}
