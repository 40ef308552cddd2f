/* session.c: recording a session, shared by `poolprof run` and `poolprof attach`: the run directory, run.json, the recorders, the closing report. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/pipeline.h"
#include "core/run.h"
#include "format/rundir.h"
#include "monitor/monitor.h"
#include "prof.h"
#include "reports/render.h"
#include "sampler/sampler.h"
#include "session.h"

/* ---- the run directory ---------------------------------------------------- */

/* sweep.json too: a profile run reused by the next `sweep --keep DIR` must not show the last sweep's curve. */
static const char *const run_files[] = {"run.json", "run.json.tmp", "monitor.rec", "sampler.rec", "counters.rec", "rss.csv", "report.json",
                                         "stacks.folded", "stacks-offcpu.folded",
                                         "sweep.json"};

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

/* mkdir -p. 0 or PROF_E*. */
static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];

    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return PROF_ERANGE;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return prof_err_from_errno(errno);
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0)
        return prof_err_from_errno(errno);
    return 0;
}

/* Create (or, with --force, reuse) RUNDIR and RUNDIR/proc. 0 or PROF_E*, after one line on stderr. */
static int rundir_prepare(struct run *r)
{
    char path[PATH_MAX + 16];
    int err;

    if (r->out_dir) {
        if (snprintf(path, sizeof path, "%s%s%s", r->out_dir[0] == '/' ? "" : r->cwd,
                     r->out_dir[0] == '/' ? "" : "/", r->out_dir) >= (int)sizeof path) {
            cli_msg("-o '%s': path too long", r->out_dir);
            return PROF_ERANGE;
        }
        struct stat st;
        if (stat(path, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                cli_msg("-o '%s': not a directory", r->out_dir);
                return PROF_EEXIST;
            }
            if (!dir_is_empty(path)) {
                if (!r->force) {
                    cli_msg("-o '%s': run directory not empty (use --force to reuse it)", r->out_dir);
                    return PROF_ENOTEMPTY;
                }
                rundir_clear(path);
            }
        } else if ((err = mkdir_p(path)) < 0) {
            cli_msg("-o '%s': cannot create the run directory: %s", r->out_dir, prof_strerror(err));
            return err;
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
                cli_msg("current directory path too long");
                return PROF_ERANGE;
            }
            if (mkdir(path, 0755) == 0)
                break;
            if (errno != EEXIST || n > 1000) {
                err = errno;
                cli_msg("%s: cannot create the run directory: %s", path, strerror(err));
                return prof_err_from_errno(err);
            }
        }
        r->rundir_created = 1;
    }
    if (!realpath(path, r->rundir)) {
        err = errno;
        cli_msg("%s: %s", path, strerror(err));
        return prof_err_from_errno(err);
    }
    snprintf(path, sizeof path, "%s/proc", r->rundir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        err = errno;
        cli_msg("%s: run directory not writable: %s", r->rundir, strerror(err));
        return prof_err_from_errno(err);
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
    return json_pack("{s:i, s:i, s:f, s:i, s:i, s:i, s:I, s:I, s:I, s:o, s:I, s:I, s:s, s:s, s:b}",
                     "online_cpus", m->online_cpus, "affinity_cpus", m->affinity_cpus, "quota_cpus",
                     m->quota_cpus, "cgroup_version", m->cgroup_version, "physical_cores", m->physical_cores,
                     "usable_cpus", m->usable_cpus, "mem_total_bytes", (json_int_t)m->mem_total_bytes,
                     "mem_available_bytes", (json_int_t)m->mem_available_bytes, "cgroup_mem_limit_bytes",
                     (json_int_t)m->cgroup_mem_limit_bytes, "nofile_limit",
                     /* unlimited does not fit a JSON integer: null */
                     m->nofile_limit > (uint64_t)INT64_MAX ? json_null() : json_integer((json_int_t)m->nofile_limit),
                     "clock_ticks", (json_int_t)m->clock_ticks, "page_size", (json_int_t)m->page_size,
                     "cpu_model", m->cpu_model, "kernel", m->kernel, "pmu", m->pmu);
}

/* Write run.json through a temporary file, so a reader never sees half of it. 0 or PROF_E*. */
static int json_write(const struct run *r)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
    json_t *cmd = json_array();

    for (char **a = r->cmd; *a; a++)
        json_array_append_new(cmd, prof_json_text(*a));
    json_t *j = json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:{s:i, s:b}, s:o, s:o, s:b}", "format",
                          PROF_RUN_FORMAT, "poolprof_version", POOLPROF_VERSION, "command", cmd, "cwd",
                          prof_json_text(r->cwd),
                          "start_ns", (json_int_t)r->start_ns, "start_realtime_ns",
                          (json_int_t)r->start_realtime_ns, "root_pid", (json_int_t)r->root, "options",
                          "interval_ms", r->interval_ms, "preload", r->preload && r->shim[0] != '\0', "shim",
                          r->shim[0] ? prof_json_text(r->shim) : json_null(), "machine", machine_json(&r->machine),
                          "static", r->is_static);
    if (!j)
        return PROF_ENOMEM;
    json_t *opts = json_object_get(j, "options");
    json_object_set_new(opts, "sample", json_boolean(r->sample));
    json_object_set_new(opts, "rate_hz", json_integer(r->rate_hz));
    json_object_set_new(opts, "stacks", json_string(r->stacks.native && r->stacks.python ? "native,python"
                                                    : r->stacks.native                   ? "native"
                                                    : r->stacks.python                   ? "python"
                                                                                         : "none"));
    json_object_set_new(opts, "attached", json_boolean(r->attached));
    if (r->end_ns)
        json_object_set_new(j, "end_ns", json_integer((json_int_t)r->end_ns));
    if (r->done && (!r->attached || r->exit_known)) {
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
    return err ? prof_err_from_errno(err) : 0;
}

int session_exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

int session_report(const struct run *r)
{
    struct prof_report *report = NULL;
    int err = prof_analyze(r->rundir, &report);
    if (err < 0) {
        cli_msg("%s: merge failed: %s", r->rundir, prof_strerror(err));
        return err;
    }
    if ((err = prof_render_rundir(report, r->rundir)) < 0)
        cli_msg("%s/report.json: cannot write: %s", r->rundir, prof_strerror(err));
    int rc = outputs_render(&r->out, report, stderr);
    prof_report_free(report);
    return err < 0 ? err : rc;
}

int session_parse_stacks(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o;
    struct stacks *st = dst, want = {0, 0};
    char buf[64];

    if (!*value || snprintf(buf, sizeof buf, "%s", value) >= (int)sizeof buf)
        goto bad;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "native") == 0)
            want.native = 1;
        else if (strcmp(tok, "python") == 0)
            want.python = 1;
        else if (strcmp(tok, "none") != 0)
            goto bad;
    }
    *st = want;
    return 0;
bad:
    snprintf(why, cap, "wants native, python, native,python or none");
    return PROF_EINVAL;
}

int session_parse_counters(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o;
    struct session_counters *c = dst;
    const char *bad = NULL, *msg = NULL;

    if (prof_ctr_lib_init(&msg) < 0 && msg)
        cli_msg("counters: libpfm4 did not initialise (%s): software events are encoded raw", msg);
    int n = prof_ctr_resolve_list(&prof_ctr_sys_real, value, c->ev, PROF_CTR_MAX, &bad);
    if (n == PROF_ERANGE) {
        snprintf(why, cap, "at most %d events, the default set included", PROF_CTR_MAX);
        return PROF_EINVAL;
    }
    if (n < 0) {
        snprintf(why, cap, "wants comma-separated event names (poolprof counters lists them)%s%s",
                 bad ? ": bad item " : "", bad ? bad : "");
        return PROF_EINVAL;
    }
    c->asked = value;
    c->n = (size_t)n;
    c->resolved = 1;
    return 0;
}

int session_counters_resolve(struct run *r)
{
    struct session_counters *c = &r->ctr;

    if (!c->on) {
        c->n = 0;
        return 0;
    }
    if (!c->resolved) {
        const char *bad = NULL, *msg = NULL;
        if (prof_ctr_lib_init(&msg) < 0 && msg)
            cli_msg("counters: libpfm4 did not initialise (%s): software events are encoded raw", msg);
        int n = prof_ctr_resolve_list(&prof_ctr_sys_real, NULL, c->ev, PROF_CTR_MAX, &bad);
        if (n < 0) {
            cli_msg("counters: the default set did not resolve: %s", prof_strerror(n));
            return n;
        }
        c->n = (size_t)n;
        c->resolved = 1;
    }
    /* One line per event that is not counted as asked; the report lists them all with the reason. */
    for (size_t i = 0; i < c->n; i++) {
        const struct prof_ctr_event *e = &c->ev[i];
        if (!e->reason[0])
            continue;
        if (e->source == PROF_CTR_SRC_NONE)
            cli_msg("counters: %s is not counted: %s", e->name, e->reason);
        else
            cli_msg("counters: %s: %s", e->name, e->reason);
    }
    return 0;
}

/* ---- the command to run ---------------------------------------------------------------------- */

/* 0 when path is a file we may execute, else PROF_ENOENT or PROF_EACCES (as a shell would say). */
static int exec_file(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return prof_err_from_errno(errno);
    if (S_ISDIR(st.st_mode) || access(path, X_OK) < 0)
        return PROF_EACCES;
    return 0;
}

int session_resolve_command(const char *cmd, char *out, size_t cap)
{
    int err = PROF_ENOENT, seen_eacces = 0;

    if (!*cmd)
        return PROF_ENOENT;
    if (strchr(cmd, '/')) {
        if ((err = exec_file(cmd)) < 0)
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
            if ((err = exec_file(cand)) == 0) {
                snprintf(out, cap, "%s", cand);
                return 0;
            }
            if (err == PROF_EACCES)
                seen_eacces = 1;
        }
        if (!*colon)
            break;
        p = colon;
    }
    return seen_eacces ? PROF_EACCES : PROF_ENOENT;
}

void session_exec_error(const char *cmd, int err)
{
    if (err == PROF_ENOENT)
        cli_msg("%s: command not found", cmd);
    else if (err == PROF_EACCES)
        cli_msg("%s: permission denied", cmd);
    else
        cli_msg("%s: cannot execute (%s)", cmd, prof_strerror(err));
}

/* ---- recording ------------------------------------------------------------------------------------ */

static struct prof_sampler *sampler_start(const struct run *r)
{
    struct prof_sampler *sampler = NULL;
    struct prof_sampler_opts so = {
        .rundir = r->rundir,
        .root = r->root,
        .rate_hz = r->rate_hz,
        .native = r->stacks.native,
        .python = r->stacks.python,
        .follow = 1,
        /* The root of `poolprof run` is our child: the tracer's wait may reap it for the monitor. */
        .reaped = r->attached ? NULL : monitor_child_reaped,
        .task_new = r->ctr.obs ? prof_ctrs_task : NULL,
        .task_ctx = r->ctr.obs,
    };
    int err;

    if (!r->sample)
        return NULL;
    if ((err = prof_sampler_start(&so, &sampler)) < 0)
        cli_msg("sampler not started: %s", prof_strerror(err));
    else if (prof_sampler_note(sampler))
        cli_msg("%s", prof_sampler_note(sampler));
    return sampler;
}

/* Until the root ends (or, attached, the duration is over or a stop signal came); then run.json says how it ended. */
static void watch(struct run *r, struct prof_sampler *sampler)
{
    struct monitor_opts mo = {
        .rundir = r->rundir,
        .interval_ms = r->interval_ms,
        .root = r->root,
        .root_exe = r->exe,
        .root_argv = r->cmd,
        .root_static = r->is_static,
        .attached = r->attached,
        .deadline_ns = r->duration_s > 0 ? r->start_ns + (uint64_t)(r->duration_s * 1e9) : 0,
        .tree_events = prof_sampler_tree_events,
        .tree_ctx = sampler,
        .task_seen = r->ctr.obs ? prof_ctrs_task : NULL,
        .scanned = r->ctr.obs ? prof_ctrs_poll : NULL,
        .ctr_ctx = r->ctr.obs,
    };
    struct monitor_result res;
    int err, status;

    monitor_run(&mo, &res);
    if (!r->attached)
        r->status = res.root_status;
    else if (sampler && prof_sampler_root_exit(sampler, &status))
        r->exit_known = 1, r->status = status;
    if (sampler && (err = prof_sampler_stop(sampler)) < 0)
        cli_msg("sampler recording stopped: %s", prof_strerror(err));
    if (r->ctr.obs && (err = prof_ctrs_stop(r->ctr.obs)) < 0)
        cli_msg("counters recording stopped: %s", prof_strerror(err));
    r->ctr.obs = NULL;
    r->done = 1;
    r->end_ns = monitor_now_ns();
    r->recording_error = res.recording_error;
    if (r->recording_error)
        cli_msg("recording stopped: %s", strerror(r->recording_error));
    if ((err = json_write(r)) < 0)
        cli_msg("%s/run.json: cannot rewrite: %s", r->rundir, prof_strerror(err));
    if (r->attached)
        cli_msg("detached from %d", (int)r->root);
}

int session_record(struct run *r, const struct session_target *t)
{
    int err;

    if (!getcwd(r->cwd, sizeof r->cwd)) {
        err = errno;
        cli_msg("cannot read the current directory: %s", strerror(err));
        return prof_err_from_errno(err);
    }
    if ((err = session_counters_resolve(r)) < 0)
        return err;
    if ((err = rundir_prepare(r)) < 0)
        return err;
    prof_machine_read(&r->machine);
    if ((err = monitor_open(r->rundir, r->interval_ms)) < 0) {
        cli_msg("%s: run directory not writable: %s", r->rundir, prof_strerror(err));
        goto discard;
    }
    if ((err = t->start(r)) < 0)
        goto discard;
    /* The counters go before the target does: the root's are opened now, before its exec. */
    if ((err = prof_ctrs_start(r->rundir, r->ctr.ev, r->ctr.n, &r->ctr.obs)) < 0)
        cli_msg("%s/counters.rec: not recorded: %s", r->rundir, prof_strerror(err));
    else if (!r->attached)
        prof_ctrs_task(r->ctr.obs, r->root, r->root, 1);
    r->start_realtime_ns = monitor_realtime_ns();
    r->start_ns = monitor_now_ns();
    if ((err = json_write(r)) < 0) {
        cli_msg("%s: run directory not writable: %s", r->rundir, prof_strerror(err));
        goto abort;
    }
    /* The sampler seizes the root before it goes: nothing it does is missed. */
    struct prof_sampler *sampler = sampler_start(r);
    if ((err = t->go(r)) < 0) {
        prof_sampler_stop(sampler);
        goto abort;
    }
    watch(r, sampler);
    return 0;
abort:
    prof_ctrs_stop(r->ctr.obs);
    r->ctr.obs = NULL;
    if (t->abort)
        t->abort(r);
discard:
    rundir_discard(r);
    return err;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void session_remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void session_self(char *buf, size_t cap)
{
    ssize_t len = readlink("/proc/self/exe", buf, cap - 1);
    if (len > 0)
        buf[len] = '\0';
    else
        snprintf(buf, cap, "%s", program_invocation_name);
}
