/* session.c: the run directory, run.json and the closing report, shared by `poolprof run` and `poolprof attach`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "reports/render.h"
#include "format/rundir.h"
#include "prof.h"
#include "session.h"

/* ---- the run directory ---------------------------------------------------- */

static const char *const run_files[] = {"run.json", "run.json.tmp", "monitor.rec", "sampler.rec", "rss.csv", "report.json",
                                         "stacks.folded", "stacks-offcpu.folded"};

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
int session_rundir_prepare(struct run *r)
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
void session_rundir_discard(struct run *r)
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
int session_json_write(const struct run *r)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
    json_t *cmd = json_array();

    for (char **a = r->cmd; *a; a++)
        json_array_append_new(cmd, json_string(*a));
    json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:{s:i, s:b}, s:o, s:o, s:b}", "format",
                          PROF_RUN_FORMAT, "poolprof_version", POOLPROF_VERSION, "command", cmd, "cwd", r->cwd,
                          "start_ns", (json_int_t)r->start_ns, "start_realtime_ns",
                          (json_int_t)r->start_realtime_ns, "root_pid", (json_int_t)r->root, "options",
                          "interval_ms", r->interval_ms, "preload", r->preload && r->shim[0] != '\0', "shim",
                          r->shim[0] ? json_string(r->shim) : json_null(), "machine", machine_json(&r->machine),
                          "static", r->is_static);
    if (!j)
        return ENOMEM;
    json_t *opts = json_object_get(j, "options");
    json_object_set_new(opts, "sample", json_boolean(r->sample));
    json_object_set_new(opts, "rate_hz", json_integer(r->rate_hz));
    json_object_set_new(opts, "stacks", json_string(r->native && r->python ? "native,python" : r->native ? "native"
                                                    : r->python ? "python" : "none"));
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
    return err;
}

int session_exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

/* Merge the run directory, leave its report files, and render: --json file, terminal summary on stderr. */
void session_report(const struct run *r)
{
    struct prof_report *report = NULL;
    int err = prof_analyze(r->rundir, &report);
    if (err < 0) {
        fprintf(stderr, "poolprof: %s: merge failed: %s\n", r->rundir, prof_strerror(err));
        return;
    }
    if ((err = prof_render_rundir(report, r->rundir)) < 0)
        fprintf(stderr, "poolprof: %s/report.json: cannot write: %s\n", r->rundir, prof_strerror(err));
    if (r->json_path && (err = prof_render_file(&prof_render_json, report, r->json_path)) < 0)
        fprintf(stderr, "poolprof: %s: cannot write report: %s\n", r->json_path, prof_strerror(err));
    if (prof_render(&prof_render_terminal, report, stderr) < 0)
        fprintf(stderr, "poolprof: cannot render the summary\n");
    prof_report_free(report);
}

int session_parse_interval(const char *cmd, const char *arg, int *ms)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || v < 1 || v > 60000) {
        fprintf(stderr, "poolprof: %s: --interval wants milliseconds between 1 and 60000, not '%s'\n", cmd, arg);
        return -1;
    }
    *ms = (int)v;
    return 0;
}

int session_parse_rate(const char *cmd, const char *arg, int *rate)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || v < 1 || v > 10000) {
        fprintf(stderr, "poolprof: %s: --rate wants samples per second between 1 and 10000, not '%s'\n", cmd, arg);
        return -1;
    }
    *rate = (int)v;
    return 0;
}

int session_parse_stacks(const char *cmd, const char *arg, int *native, int *python)
{
    *native = *python = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", arg);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "native") == 0)
            *native = 1;
        else if (strcmp(tok, "python") == 0)
            *python = 1;
        else if (strcmp(tok, "none") != 0) {
            fprintf(stderr, "poolprof: %s: --stacks wants native, python, native,python or none, not '%s'\n", cmd, arg);
            return -1;
        }
    }
    return 0;
}

/* ---- the command to run ---- */

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

int session_resolve_command(const char *cmd, char *out, size_t cap)
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
