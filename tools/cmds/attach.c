/* attach.c: `poolprof attach PID`: joins a running process and its descendants, records them as a session from outside, detaches and reports as `poolprof run` does. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmds.h"
#include "monitor/monitor.h"
#include "prof.h"
#include "session.h"

/* The options, with their defaults; the table below fills them. */
static struct run run = {
    .interval_ms = DEFAULT_INTERVAL_MS,
    .sample = 1,
    .preload = 0,
    .attached = 1,
    .rate_hz = DEFAULT_RATE_HZ,
    .stacks = {1, 1},
    .ctr = {.on = 1},
};

static const struct cli_opt options[] = {
    SESSION_OPTIONS,
    {"duration", 0, "S", "stop after S seconds (default: when the process ends, or at Ctrl-C)", cli_seconds,
     offsetof(struct run, duration_s), 0, MAX_DURATION_S, NULL},
    {NULL, 0, NULL, NULL, NULL, 0, 0, 0, NULL},
};

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

/* Stop signals end the watch, never the target; the monitor keeps descriptors open per thread. */
static int attach_start(struct run *r)
{
    (void)r;
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
    return 0;
}

static int attach_go(struct run *r)
{
    cli_msg("attached to %d (%s); Ctrl-C to stop", (int)r->root, r->cmd[0]);
    return 0;
}

static const struct session_target attach_target = {attach_start, attach_go, NULL};

static int exec_attach(char **args, int nargs)
{
    struct run *r = &run;
    char *end, path[64];

    (void)nargs;
    long pid = strtol(args[0], &end, 10);
    if (end == args[0] || *end || pid <= 0 || pid > INT32_MAX) {
        cli_msg("'%s' is not a process id", args[0]);
        return CLI_EXIT_USAGE;
    }
    r->root = (pid_t)pid;
    if (r->root == getpid()) {
        cli_msg("%ld is poolprof itself", pid);
        return CLI_EXIT_USAGE;
    }
    if (kill(r->root, 0) < 0 && errno == ESRCH) {
        cli_msg("no process %ld", pid);
        return CLI_EXIT_USAGE;
    }
    r->cmd = read_argv(r->root);
    snprintf(path, sizeof path, "/proc/%d/exe", (int)r->root);
    ssize_t n = readlink(path, r->exe, sizeof r->exe - 1);
    r->exe[n > 0 ? n : 0] = '\0';
    r->is_static = r->exe[0] && monitor_elf_is_static(r->exe) > 0;
    if (session_record(r, &attach_target) < 0)
        return CLI_EXIT_USAGE;
    return session_report(r) < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

const struct cli_cmd cmd_attach = {
    .name = "attach",
    .summary = "profile a running process and its descendants, then detach and report",
    .usage = "[OPTIONS] PID [OPTIONS]",
    .about = "Profile the running process PID and its descendants from outside (ptrace, /proc, process_vm_readv; "
             "no shim) until it ends, the --duration is over, or Ctrl-C; then detach, leaving it running as it "
             "was, and merge the run into a report: the terminal summary on standard error. Options may come "
             "before or after PID. Every output path and the run directory are checked before poolprof attaches.",
    .exits = "exit status: 0 when the report was written; 1 when the run could not be merged or an output "
             "written; 2 for bad usage, an output path that cannot be written, a RUNDIR not empty without "
             "--force, PID not a process id, no such process or poolprof's own PID, all checked before "
             "poolprof attaches.",
    .opts = options,
    .dst = &run,
    .args = CLI_ARGS_LIST,
    .arg_name = "PID",
    .min_args = 1,
    .max_args = 1,
    .help_more = outputs_help,
    .exec = exec_attach,
};
