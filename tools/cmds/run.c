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
#include "core/machine.h"
#include "core/report.h"
#include "core/rundir.h"
#include "monitor.h"
#include "prof.h"

extern char **environ;

#define DEFAULT_INTERVAL_MS 20
#define EXIT_USAGE 2
#define EXIT_NOTFOUND 127
#define RUN_JSON_RESERVE (16 * 1024) /* far more than run.json needs, unless the command line is huge */

/*
 * Signals poolprof forwards to the target; SIGPIPE, which it ignores for
 * itself only; SIGCHLD, caught so that a child's exit wakes the monitor at
 * once (and never ignored, which would discard the exit statuses we report).
 */
static const int handled[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGCHLD};
#define NHANDLED (sizeof handled / sizeof *handled)

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
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: poolprof run [-o RUNDIR] [--json FILE] [--force] [--interval MS] -- CMD [ARGS...]\n"
            "\n"
            "Run CMD with the profiling shim preloaded into it and every descendant, watch the\n"
            "process tree from /proc, then merge the run into a report (terminal summary on stderr).\n"
            "\n"
            "  -o, --output RUNDIR  run directory (default ./poolprof-YYYYmmdd-HHMMSS)\n"
            "  --json FILE          also write the report (schema %s) to FILE\n"
            "  --force              reuse a non-empty RUNDIR (its previous run files are removed)\n"
            "  --interval MS        memory sampling interval in milliseconds (default %d)\n"
            "  -h, --help           this help\n"
            "\n"
            "poolprof exits with CMD's status (128+N when CMD was killed by signal N).\n",
            PROF_REPORT_SCHEMA, DEFAULT_INTERVAL_MS);
}

/* ---- the command ------------------------------------------------------------ */

static int is_exec_file(const char *path, int *err)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        *err = errno;
        return 0;
    }
    if (S_ISDIR(st.st_mode) || access(path, X_OK) < 0) {
        *err = EACCES;
        return 0;
    }
    return 1;
}

/* Find cmd as execvp would; 0, or the errno a shell would report (ENOENT, EACCES). */
static int resolve_command(const char *cmd, char *out, size_t cap)
{
    int err = ENOENT, seen_eacces = 0;

    if (!*cmd)
        return ENOENT;
    if (strchr(cmd, '/')) {
        if (!is_exec_file(cmd, &err))
            return err;
        snprintf(out, cap, "%s", cmd);
        return 0;
    }
    const char *path = getenv("PATH");
    char defpath[256];
    if (!path) {
        confstr(_CS_PATH, defpath, sizeof defpath);
        path = defpath;
    }
    for (const char *p = path;; p++) {
        const char *colon = strchrnul(p, ':');
        int dl = (int)(colon - p);
        char cand[PATH_MAX];
        /* An empty PATH element means the current directory. */
        if (snprintf(cand, sizeof cand, "%.*s%s%s", dl, p, dl ? "/" : "", cmd) < (int)sizeof cand) {
            if (is_exec_file(cand, &err)) {
                snprintf(out, cap, "%s", cand);
                return 0;
            }
            if (err == EACCES)
                seen_eacces = 1;
        }
        if (!*colon)
            break;
        p = colon;
    }
    return seen_eacces ? EACCES : ENOENT;
}

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

/* ---- the run directory ---------------------------------------------------- */

static const char *const run_files[] = {"run.json", "run.json.tmp", "monitor.rec", "rss.csv", "report.json"};

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;

    if (!d)
        return -1;
    while (empty && (e = readdir(d)))
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Remove what a run writes (nothing else the user keeps there); for --force and for runs that never started. */
static void rundir_clear(const char *dir)
{
    char path[PATH_MAX + 300];

    for (size_t i = 0; i < sizeof run_files / sizeof *run_files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, run_files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/proc", dir);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
        rmdir(path);
    }
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];

    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0)
        return errno;
    return 0;
}

/* Create (or, with --force, reuse) RUNDIR and RUNDIR/proc; prints its own error. 0 or -1. */
static int rundir_prepare(struct run *r)
{
    char path[PATH_MAX + 16];
    int err;

    if (r->out_dir) {
        if (snprintf(path, sizeof path, "%s%s%s", r->out_dir[0] == '/' ? "" : r->cwd,
                     r->out_dir[0] == '/' ? "" : "/", r->out_dir) >= (int)sizeof path) {
            fprintf(stderr, "poolprof: %s: path too long\n", r->out_dir);
            return -1;
        }
        struct stat st;
        if (stat(path, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                fprintf(stderr, "poolprof: %s: not a directory\n", r->out_dir);
                return -1;
            }
            if (!dir_is_empty(path)) {
                if (!r->force) {
                    fprintf(stderr, "poolprof: %s: run directory not empty (use --force to reuse it)\n",
                            r->out_dir);
                    return -1;
                }
                rundir_clear(path);
            }
        } else if ((err = mkdir_p(path)) != 0) {
            fprintf(stderr, "poolprof: %s: cannot create run directory: %s\n", r->out_dir, strerror(err));
            return -1;
        } else {
            r->rundir_created = 1;
        }
    } else {
        char stamp[64];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "poolprof-%Y%m%d-%H%M%S", &tm);
        for (int n = 1;; n++) {
            char name[96];
            if (n == 1)
                snprintf(name, sizeof name, "%s", stamp);
            else
                snprintf(name, sizeof name, "%s-%d", stamp, n);
            if (snprintf(path, sizeof path, "%s/%s", r->cwd, name) >= (int)sizeof path) {
                fprintf(stderr, "poolprof: current directory path too long\n");
                return -1;
            }
            if (mkdir(path, 0755) == 0)
                break;
            if (errno != EEXIST || n > 1000) {
                fprintf(stderr, "poolprof: %s: cannot create run directory: %s\n", path, strerror(errno));
                return -1;
            }
        }
        r->rundir_created = 1;
    }
    if (!realpath(path, r->rundir)) {
        fprintf(stderr, "poolprof: %s: %s\n", path, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/proc", r->rundir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "poolprof: %s: run directory not writable: %s\n", r->rundir, strerror(errno));
        return -1;
    }
    return 0;
}

/* The run never started: leave no half-made run directory behind. */
static void rundir_discard(struct run *r)
{
    if (!r->rundir[0])
        return;
    rundir_clear(r->rundir);
    if (r->rundir_created)
        rmdir(r->rundir);
}

/* ---- run.json ------------------------------------------------------------- */

static json_t *machine_json(const struct prof_machine *m)
{
    return json_pack("{s:i, s:i, s:f, s:i, s:i, s:i, s:I, s:I, s:I, s:o, s:I, s:I}",
                     "online_cpus", m->online_cpus, "affinity_cpus", m->affinity_cpus, "quota_cpus",
                     m->quota_cpus, "cgroup_version", m->cgroup_version, "physical_cores", m->physical_cores,
                     "usable_cpus", m->usable_cpus, "mem_total_bytes", (json_int_t)m->mem_total_bytes,
                     "mem_available_bytes", (json_int_t)m->mem_available_bytes, "cgroup_mem_limit_bytes",
                     (json_int_t)m->cgroup_mem_limit_bytes, "nofile_limit",
                     /* unlimited does not fit a JSON integer: null */
                     m->nofile_limit > (uint64_t)INT64_MAX ? json_null() : json_integer((json_int_t)m->nofile_limit),
                     "clock_ticks", (json_int_t)m->clock_ticks, "page_size", (json_int_t)m->page_size);
}

/* Write run.json through a temporary file, so a reader never sees half of it. 0 or errno. */
static int run_json_write(const struct run *r)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
    json_t *cmd = json_array();

    for (char **a = r->cmd; *a; a++)
        json_array_append_new(cmd, json_string(*a));
    json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:{s:i, s:b}, s:o, s:o, s:b}", "format",
                          PROF_RUN_FORMAT, "poolprof_version", POOLPROF_VERSION, "command", cmd, "cwd", r->cwd,
                          "start_ns", (json_int_t)r->start_ns, "start_realtime_ns",
                          (json_int_t)r->start_realtime_ns, "root_pid", (json_int_t)r->root, "options",
                          "interval_ms", r->interval_ms, "preload", r->shim[0] != '\0', "shim",
                          r->shim[0] ? json_string(r->shim) : json_null(), "machine", machine_json(&r->machine),
                          "static", r->is_static);
    if (!j)
        return ENOMEM;
    if (r->end_ns)
        json_object_set_new(j, "end_ns", json_integer((json_int_t)r->end_ns));
    if (r->done) {
        int st = r->status;
        json_object_set_new(j, "exit",
                            json_pack("{s:i, s:o, s:o}", "status", st,
                                      "code", WIFEXITED(st) ? json_integer(WEXITSTATUS(st)) : json_null(),
                                      "signal", WIFSIGNALED(st) ? json_integer(WTERMSIG(st)) : json_null()));
    }
    if (r->recording_error)
        json_object_set_new(j, "recording_error", json_string(strerror(r->recording_error)));

    snprintf(path, sizeof path, "%s/run.json", r->rundir);
    snprintf(tmp, sizeof tmp, "%s/run.json.tmp", r->rundir);
    /* No O_TRUNC: the temp file may be the reservation made below, written in place. */
    int err = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        err = errno ? errno : EIO;
        if (fd >= 0)
            close(fd);
    } else {
        if (json_dumpf(j, f, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0 || fputc('\n', f) == EOF ||
            fflush(f) != 0 || ftruncate(fd, ftello(f)) < 0)
            err = errno ? errno : EIO;
        if (fclose(f) != 0 && !err)
            err = errno ? errno : EIO;
        if (!err && rename(tmp, path) < 0)
            err = errno;
        if (err)
            unlink(tmp);
    }
    /*
     * Reserve the blocks of the final rewrite now: if the target fills the
     * disk, run.json can still say how the run ended and that recording stopped.
     */
    if (!err && !r->done) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            posix_fallocate(fd, 0, RUN_JSON_RESERVE);
            close(fd);
        }
    }
    json_decref(j);
    return err;
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

static int exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
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
        case 'i': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 60000) {
                fprintf(stderr, "poolprof: run: --interval wants milliseconds between 1 and 60000, not '%s'\n",
                        optarg);
                usage(stderr);
                return EXIT_USAGE;
            }
            r->interval_ms = (int)v;
            break;
        }
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
    if ((rc = parse_args(r, argc, argv)) >= 0)
        return rc;
    if (!r->cmd[0]) {
        fprintf(stderr, "poolprof: run: no command given (poolprof run [options] -- CMD [ARGS...])\n");
        return EXIT_NOTFOUND;
    }
    int err = resolve_command(r->cmd[0], r->exe, sizeof r->exe);
    if (err) {
        print_exec_error(r->cmd[0], err);
        return EXIT_NOTFOUND;
    }
    r->is_static = monitor_elf_is_static(r->exe) > 0;
    if (!getcwd(r->cwd, sizeof r->cwd)) {
        fprintf(stderr, "poolprof: cannot read the current directory: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    find_shim(r->shim, sizeof r->shim);
    if (!r->shim[0])
        fprintf(stderr, "poolprof: libprof.so not found beside poolprof: measuring from /proc only\n");
    if (rundir_prepare(r) < 0)
        return EXIT_USAGE;
    prof_machine_read(&r->machine);
    char **env = target_env(r);
    if (!env) {
        fprintf(stderr, "poolprof: out of memory\n");
        rundir_discard(r);
        return EXIT_USAGE;
    }
    if ((err = monitor_open(r->rundir, r->interval_ms)) < 0) {
        fprintf(stderr, "poolprof: %s: run directory not writable: %s\n", r->rundir, prof_strerror(err));
        target_env_free(env, r);
        rundir_discard(r);
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
        rundir_discard(r);
        return EXIT_USAGE;
    }
    r->root = start_target(r, env, saved, &nofile, go, ep);
    if (r->root < 0) {
        fprintf(stderr, "poolprof: fork: %s\n", strerror(errno));
        target_env_free(env, r);
        rundir_discard(r);
        return EXIT_USAGE;
    }
    close(go[0]);
    close(ep[1]);
    target_env_free(env, r);
    r->start_realtime_ns = monitor_realtime_ns();
    r->start_ns = monitor_now_ns();
    if ((err = run_json_write(r)) != 0) {
        fprintf(stderr, "poolprof: %s: run directory not writable: %s\n", r->rundir, strerror(err));
        kill(r->root, SIGKILL);
        waitpid(r->root, NULL, 0);
        rundir_discard(r);
        return EXIT_USAGE;
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
        waitpid(r->root, NULL, 0);
        rundir_discard(r);
        return EXIT_NOTFOUND;
    }

    struct monitor_opts mo = {
        .rundir = r->rundir,
        .interval_ms = r->interval_ms,
        .root = r->root,
        .root_exe = r->exe,
        .root_argv = r->cmd,
        .root_static = r->is_static,
    };
    struct monitor_result res;
    monitor_run(&mo, &res);
    r->done = 1;
    r->status = res.root_status;
    r->end_ns = monitor_now_ns();
    r->recording_error = res.recording_error;
    int code = exit_code_of(r->status);
    if (r->recording_error)
        fprintf(stderr, "poolprof: recording stopped: %s\n", strerror(r->recording_error));
    if ((err = run_json_write(r)) != 0)
        fprintf(stderr, "poolprof: %s/run.json: cannot rewrite: %s\n", r->rundir, strerror(err));

    json_t *report = NULL;
    err = prof_report_from_rundir(r->rundir, &report);
    if (err < 0) {
        fprintf(stderr, "poolprof: %s: merge failed: %s\n", r->rundir, prof_strerror(err));
        return code;
    }
    if (r->json_path) {
        FILE *f = fopen(r->json_path, "we");
        int bad = !f;
        if (f) {
            bad = prof_exporter_json.render(report, f) < 0;
            bad |= fclose(f) != 0;
        }
        if (bad)
            fprintf(stderr, "poolprof: %s: cannot write report\n", r->json_path);
    }
    if (prof_exporter_terminal.render(report, stderr) < 0)
        fprintf(stderr, "poolprof: cannot render the summary\n");
    json_decref(report);
    return code;
}
