/* attach.c: `poolprof attach PID`: samples a running process and its descendants with ptrace and /proc, then reports as `poolprof run` does. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmds.h"
#include "monitor/machine.h"
#include "core/report.h"
#include "monitor/monitor.h"
#include "prof.h"
#include "sampler/sampler.h"
#include "session.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: poolprof attach [-o RUNDIR] [--json FILE] [--force] [--duration S] [--rate HZ]\n"
            "                       [--stacks native,python|native|python|none] [--interval MS] PID\n"
            "\n"
            "Profile the running process PID and its descendants from outside (ptrace, /proc,\n"
            "process_vm_readv) until it ends, the duration is over, or Ctrl-C; then detach, leaving\n"
            "it running as before, and merge the run into a report (terminal summary on stderr).\n"
            "\n"
            "  -o, --output RUNDIR  run directory (default ./poolprof-YYYYmmdd-HHMMSS)\n"
            "  --json FILE          also write the report (schema %s) to FILE\n"
            "  --force              reuse a non-empty RUNDIR\n"
            "  --duration S         stop after S seconds (default: until the process ends or Ctrl-C)\n"
            "  --rate HZ            sampler ticks per second, jittered +-20%% (default %d)\n"
            "  --stacks LIST        stacks to take (default native,python)\n"
            "  --interval MS        memory sampling interval in milliseconds (default %d)\n"
            "  -h, --help           this help\n"
            "\n"
            "Exit status: 0 when a report was written, 2 for bad usage or an unknown PID.\n",
            PROF_REPORT_SCHEMA, DEFAULT_RATE_HZ, DEFAULT_INTERVAL_MS);
}

static void on_stop(int sig)
{
    (void)sig;
    monitor_request_stop();
}

/* argv of a running process from /proc/PID/cmdline, NULL-terminated (static storage). */
static char **read_argv(pid_t pid)
{
    static char buf[64 * 1024];
    static char *argv[1024];
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    size_t k = 0;
    if (n > 0) {
        buf[n] = '\0';
        for (char *p = buf; p < buf + n && k < 1023; p += strlen(p) + 1)
            argv[k++] = p;
    }
    if (k == 0) {
        snprintf(buf, sizeof buf, "[pid %d]", (int)pid);
        argv[k++] = buf;
    }
    argv[k] = NULL;
    return argv;
}

int cmd_attach(int argc, char **argv)
{
    static struct run run;
    struct run *r = &run;
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},   {"json", required_argument, NULL, 'j'},
        {"force", no_argument, NULL, 'f'},          {"duration", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},     {"stacks", required_argument, NULL, 's'},
        {"interval", required_argument, NULL, 'i'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double duration = 0;
    int c;

    memset(r, 0, sizeof *r);
    r->interval_ms = DEFAULT_INTERVAL_MS;
    r->sample = 1;
    r->preload = 0;
    r->attached = 1;
    r->rate_hz = DEFAULT_RATE_HZ;
    r->native = r->python = 1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:o:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'o': r->out_dir = optarg; break;
        case 'j': r->json_path = optarg; break;
        case 'f': r->force = 1; break;
        case 'd':
            duration = strtod(optarg, &end);
            if (end == optarg || *end || !(duration > 0) || duration > 1e7) {
                fprintf(stderr, "poolprof: attach: --duration wants seconds above 0, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'r':
            if (session_parse_rate("attach", optarg, &r->rate_hz) < 0)
                return EXIT_USAGE;
            break;
        case 's':
            if (session_parse_stacks("attach", optarg, &r->native, &r->python) < 0)
                return EXIT_USAGE;
            break;
        case 'i':
            if (session_parse_interval("attach", optarg, &r->interval_ms) < 0)
                return EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "poolprof: attach: option '%s' needs a value\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "poolprof: attach: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "poolprof: attach: one PID wanted (poolprof attach [options] PID)\n");
        return EXIT_USAGE;
    }
    char *end;
    long pid = strtol(argv[optind], &end, 10);
    if (end == argv[optind] || *end || pid <= 0 || pid > INT32_MAX) {
        fprintf(stderr, "poolprof: attach: '%s' is not a process id\n", argv[optind]);
        return EXIT_USAGE;
    }
    r->root = (pid_t)pid;
    if (r->root == getpid()) {
        fprintf(stderr, "poolprof: attach: %ld is poolprof itself\n", pid);
        return EXIT_USAGE;
    }
    if (kill(r->root, 0) < 0 && errno == ESRCH) {
        fprintf(stderr, "poolprof: attach: no process %ld\n", pid);
        return EXIT_USAGE;
    }
    r->cmd = read_argv(r->root);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)r->root);
    ssize_t n = readlink(path, r->exe, sizeof r->exe - 1);
    r->exe[n > 0 ? n : 0] = '\0';
    r->is_static = r->exe[0] && monitor_elf_is_static(r->exe) > 0;
    if (!getcwd(r->cwd, sizeof r->cwd)) {
        fprintf(stderr, "poolprof: cannot read the current directory: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    if (session_rundir_prepare(r) < 0)
        return EXIT_USAGE;
    prof_machine_read(&r->machine);
    int err;
    if ((err = monitor_open(r->rundir, r->interval_ms)) < 0) {
        fprintf(stderr, "poolprof: %s: run directory not writable: %s\n", r->rundir, prof_strerror(err));
        session_rundir_discard(r);
        return EXIT_USAGE;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    int stops[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++)
        sigaction(stops[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);

    r->start_realtime_ns = monitor_realtime_ns();
    r->start_ns = monitor_now_ns();
    if ((err = session_json_write(r)) != 0) {
        fprintf(stderr, "poolprof: %s: run directory not writable: %s\n", r->rundir, strerror(err));
        session_rundir_discard(r);
        return EXIT_USAGE;
    }
    struct prof_sampler *sampler = NULL;
    struct prof_sampler_opts so = {.rundir = r->rundir, .root = r->root, .rate_hz = r->rate_hz,
                                   .native = r->native, .python = r->python, .follow = 1};
    if ((err = prof_sampler_start(&so, &sampler)) < 0)
        fprintf(stderr, "poolprof: sampler not started: %s\n", prof_strerror(err));
    else if (prof_sampler_note(sampler))
        fprintf(stderr, "poolprof: %s\n", prof_sampler_note(sampler));
    fprintf(stderr, "poolprof: attached to %d (%s); Ctrl-C to stop\n", (int)r->root, r->cmd[0]);

    struct monitor_opts mo = {
        .rundir = r->rundir,
        .interval_ms = r->interval_ms,
        .root = r->root,
        .root_exe = r->exe,
        .root_argv = r->cmd,
        .root_static = r->is_static,
        .attached = 1,
        .deadline_ns = duration > 0 ? r->start_ns + (uint64_t)(duration * 1e9) : 0,
        .tree_events = prof_sampler_tree_events,
        .tree_ctx = sampler,
    };
    struct monitor_result res;
    monitor_run(&mo, &res);
    int status;
    if (sampler && prof_sampler_root_exit(sampler, &status)) {
        r->exit_known = 1;
        r->status = status;
    }
    if (sampler && (err = prof_sampler_stop(sampler)) < 0)
        fprintf(stderr, "poolprof: sampler recording stopped: %s\n", prof_strerror(err));
    r->done = 1;
    r->end_ns = monitor_now_ns();
    r->recording_error = res.recording_error;
    if ((err = session_json_write(r)) != 0)
        fprintf(stderr, "poolprof: %s/run.json: cannot rewrite: %s\n", r->rundir, strerror(err));
    fprintf(stderr, "poolprof: detached from %d\n", (int)r->root);
    session_report(r);
    return 0;
}
