/* tree.c: the traced tree: its processes and threads, found in /proc and seized, looked at for CPython, dropped when gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "format/monrec.h"
#include "sampler_int.h"
#include "prof.h"

#define PTRACE_OPTS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT)
/* Threads followed by their switch records: no clone stops (see s->lazy_threads). */
#define PTRACE_OPTS_LAZY (PTRACE_OPTS & ~PTRACE_O_TRACECLONE)

/* ---- the tree ------------------------------------------------------------- */

struct sproc *samp_proc_find(struct prof_sampler *s, pid_t pid)
{
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i]->pid == pid && !s->procs[i]->dead)
            return s->procs[i];
    return NULL;
}

struct sthr *samp_thr_find(struct prof_sampler *s, pid_t tid, struct sproc **pp)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        if (p->dead)
            continue;
        for (size_t k = 0; k < p->nthr; k++)
            if (p->thr[k].tid == tid && !p->thr[k].dead) {
                if (pp)
                    *pp = p;
                return &p->thr[k];
            }
    }
    return NULL;
}

int samp_open_task_file(pid_t pid, pid_t tid, const char *name)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/%s", (int)pid, (int)tid, name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

static void thr_close(struct sthr *th)
{
    if (th->fd_sched >= 0)
        close(th->fd_sched);
    if (th->fd_stat >= 0)
        close(th->fd_stat);
    if (th->fd_sys >= 0)
        close(th->fd_sys);
    th->fd_sched = th->fd_stat = th->fd_sys = -1;
}

/* A new zeroed thread entry of p (its array may move), or NULL. */
static struct sthr *thr_push(struct sproc *p, pid_t tid)
{
    if (p->nthr == p->capthr) {
        size_t nc = p->capthr ? p->capthr * 2 : 8;
        struct sthr *n = realloc(p->thr, nc * sizeof *n);
        if (!n)
            return NULL;
        p->thr = n;
        p->capthr = nc;
    }
    struct sthr *th = &p->thr[p->nthr++];
    memset(th, 0, sizeof *th);
    th->tid = tid;
    th->fd_sched = th->fd_stat = th->fd_sys = -1;
    th->state = th->blocked = PROF_TS_OTHER;
    return th;
}

/* A thread known from switch records alone: no /proc file opened until it is seized (5,000
 * short threads would cost 15,000 opens of files they are gone before anyone reads). */
struct sthr *samp_thr_add_lazy(struct sproc *p, pid_t tid)
{
    struct sthr *th = thr_push(p, tid);
    if (th)
        th->lazy = 1;
    return th;
}

void samp_thr_open_files(struct sproc *p, struct sthr *th)
{
    if (th->fd_sched < 0)
        th->fd_sched = samp_open_task_file(p->pid, th->tid, "schedstat");
    if (th->fd_stat < 0)
        th->fd_stat = samp_open_task_file(p->pid, th->tid, "stat");
    if (th->fd_sys < 0)
        th->fd_sys = samp_open_task_file(p->pid, th->tid, "syscall");
}

struct sthr *samp_thr_add(struct sproc *p, pid_t tid)
{
    for (size_t k = 0; k < p->nthr; k++)
        if (p->thr[k].tid == tid && !p->thr[k].dead)
            return &p->thr[k];
    struct sthr *th = thr_push(p, tid);
    if (th)
        samp_thr_open_files(p, th);
    return th;
}

void samp_waitsites_free(struct sthr *th)
{
    for (int i = 0; th->ws && i < WAIT_SITES; i++) {
        free(th->ws[i].fr);
        free(th->ws[i].slots);
    }
    free(th->ws);
    th->ws = NULL;
}

void samp_thr_gone(struct sthr *th)
{
    th->dead = 1;
    th->seized = 0;
    thr_close(th);
    samp_waitsites_free(th);
    free(th->nat);
    free(th->pcopy);
    th->nat = NULL;
    th->pcopy = NULL;
    th->nnat = 0;
    th->pstk_new = 0;
}

/*
 * The image's executable and command line, for its P line: without the shim (--no-preload,
 * static binaries) a process too short for the monitor's scans is known by these alone, and
 * the report places it by them. Read from /proc at an exec (the tracee runs on meanwhile) or
 * copied from the parent at a fork (the same image, and the child waits in its first stop).
 */
void samp_proc_ident(struct sproc *p, const struct sproc *from)
{
    free(p->exe);
    free(p->cmd);
    p->exe = p->cmd = NULL;
    p->cmdlen = 0;
    if (from) {
        p->exe = from->exe ? strdup(from->exe) : NULL;
        if (from->cmd && (p->cmd = malloc(from->cmdlen)) != NULL) {
            memcpy(p->cmd, from->cmd, from->cmdlen);
            p->cmdlen = from->cmdlen;
        }
        return;
    }
    char path[64], buf[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)p->pid);
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        p->exe = strdup(buf);
    }
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)p->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, buf, 4096) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 0 && (p->cmd = malloc((size_t)n)) != NULL) {
        memcpy(p->cmd, buf, (size_t)n);
        p->cmdlen = (size_t)n;
    }
}

void samp_p_line(struct prof_sampler *s, struct sproc *p, int python, const char *why)
{
    char e[400], exe[PATH_MAX * 3 + 1], cmd[4096 * 3 + 1];
    p->py_said = p->gen + 1;
    p->py_gil_said = python ? prof_py_has_gil(p->py) : 1;
    if (!p->exe && !p->cmd)
        samp_proc_ident(p, NULL);
    if (!p->exe || prof_rec_escape(exe, sizeof exe, p->exe, strlen(p->exe)) < 0)
        exe[0] = '\0';
    if (!p->cmd || prof_rec_escape_list(cmd, sizeof cmd, p->cmd, p->cmdlen) < 0)
        cmd[0] = '\0';
    samp_out(s, "P t=%llu pid=%d ppid=%d python=%d gil=%d pyerr=%s exe=%s argv=%s\n", (unsigned long long)now_ns(),
             (int)p->pid, (int)p->ppid, python ? prof_py_version(p->py) : 0, p->py_gil_said,
             why && *why ? samp_esc(e, sizeof e, why) : "", exe, cmd);
}

/*
 * After a sample of p's CPython (rc its result): the GIL's addresses once the interpreter is
 * known (3.13 keeps the GIL in it), a P line again when a free-threaded build's GIL has been
 * switched on or off, and a layout the interpreter's own thread states contradict (a version
 * known only by _Py_DebugOffsets read as another's) named and given up, not read as empty stacks.
 */
/* Remember why p's image cannot be read: a fork of it, the same image, is refused alike. */
void samp_proc_refused(struct sproc *p, const char *why)
{
    free(p->py_refused);
    p->py_refused = why && *why ? strdup(why) : NULL;
}

void samp_proc_py_sampled(struct prof_sampler *s, struct sproc *p, int rc)
{
    if (rc == PROF_EFORMAT) {
        char why[160];
        int v = prof_py_version(p->py);
        snprintf(why, sizeof why, "CPython %d.%d is not supported (its thread states do not match the layout read)",
                 v / 100, v % 100);
        prof_py_close(p->py);
        p->py = NULL;
        p->py_due = 0;
        p->gil_cond = p->gil_cond_len = p->gil_mutex = p->gil_mutex_len = 0;
        samp_proc_refused(p, why);
        samp_p_line(s, p, 0, why);
        return;
    }
    if (rc < 0)
        return;
    if (!p->gil_cond)
        prof_py_gil_addrs(p->py, &p->gil_cond, &p->gil_cond_len, &p->gil_mutex, &p->gil_mutex_len);
    if (prof_py_has_gil(p->py) != p->py_gil_said)
        samp_p_line(s, p, 1, NULL);
}

/*
 * Look for CPython in p (its executable or a mapped libpython). Opened without Python stacks
 * too: the GIL's addresses tell a GIL wait from a lock wait, and a CPython process is judged
 * as one (its bytecode holds the GIL). A process that is not CPython, or not yet, is looked at
 * again at a doubling interval: an interpreter linked to a shared libpython is seen at its
 * exec before the dynamic linker has mapped the library, and an embedding program may load
 * it late. Never called while a tracee is held stopped: reading the maps and the ELF file
 * takes a few hundred microseconds.
 */
#define PY_RETRY_MIN_NS 2000000ULL
#define PY_RETRY_MAX_NS 1000000000ULL
/* PY_LOADER_NS and PY_RETRY_LATE_NS, which new_task uses too, are in sampler_int.h with why. */
void samp_proc_python(struct prof_sampler *s, struct sproc *p)
{
    char why[160] = "";
    if (p->py) {
        prof_py_close(p->py);
        p->py = NULL;
    }
    p->py_due = 0;
    /* Once the image's executable is known not to be CPython, only a libpython mapped since
     * can change that: the maps say so without opening any ELF file. */
    int known = p->py_exe_no == p->gen + 1, needs = 0;
    int r = known && prof_py_libpython_mapped(p->pid) == 0 ? PROF_ENOENT
                                                           : prof_py_probe(p->pid, &p->py, &needs, why, sizeof why);
    if (!known)
        p->py_needs = needs;
    if (r == 0)
        prof_py_gil_addrs(p->py, &p->gil_cond, &p->gil_cond_len, &p->gil_mutex, &p->gil_mutex_len);
    else
        p->gil_cond = p->gil_cond_len = p->gil_mutex = p->gil_mutex_len = 0;
    /* A refusal is said even where this image's P line was written already (a fork's, at its
     * birth, before its parent's CPython was known): it was lost there. */
    int newly_refused = r == PROF_ENOTSUP && !p->py_refused;
    if (r == PROF_ENOTSUP)
        samp_proc_refused(p, why);
    if (r == PROF_ENOENT) {
        uint64_t t = now_ns(), image = p->execd ? p->exec_ns : p->born_ns;
        p->py_exe_no = p->gen + 1;
        p->py_backoff = !p->py_backoff ? PY_RETRY_MIN_NS
                        : p->py_backoff * 2 < PY_RETRY_MAX_NS ? p->py_backoff * 2 : PY_RETRY_MAX_NS;
        if (!p->py_needs && t > image + PY_LOADER_NS && p->py_backoff < PY_RETRY_LATE_NS)
            p->py_backoff = PY_RETRY_LATE_NS;
        p->py_due = t + p->py_backoff;
    }
    /* One P line per image, and one more when a later look finds CPython. */
    if (r == 0 || newly_refused || p->py_said != p->gen + 1)
        samp_p_line(s, p, r == 0, r == PROF_ENOTSUP ? why : NULL);
}

struct sproc *samp_proc_add(struct prof_sampler *s, pid_t pid, pid_t ppid, uint64_t born)
{
    struct sproc *p = samp_proc_find(s, pid);
    if (p)
        return p;
    if (s->nprocs == s->capprocs) {
        size_t nc = s->capprocs ? s->capprocs * 2 : 16;
        struct sproc **n = realloc(s->procs, nc * sizeof *n);
        if (!n)
            return NULL;
        s->procs = n;
        s->capprocs = nc;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pid = pid;
    p->ppid = ppid;
    p->born_ns = born;
    s->procs[s->nprocs++] = p;
    s->tree_gen++;
    return p;
}

void samp_proc_gone(struct prof_sampler *s, struct sproc *p)
{
    p->dead = 1;
    s->tree_gen++;
    for (size_t k = 0; k < p->nthr; k++)
        if (!p->thr[k].dead)
            samp_thr_gone(&p->thr[k]);
    if (p->py) {
        prof_py_close(p->py);
        p->py = NULL;
    }
    if (p->unw) {
        prof_unw_close(p->unw);
        p->unw = NULL;
    }
    free(p->sites);
    free(p->exe);
    free(p->cmd);
    p->exe = p->cmd = NULL;
    free(p->py_refused);
    p->py_refused = NULL;
    p->sites = NULL;
}

/* A thread is gone: drop it, and the process when it was its last. */
void samp_tid_gone(struct prof_sampler *s, pid_t tid)
{
    struct sproc *p;
    struct sthr *th = samp_thr_find(s, tid, &p);
    if (!th)
        return;
    samp_thr_gone(th);
    int alive = 0;
    for (size_t k = 0; k < p->nthr; k++)
        alive |= !p->thr[k].dead && (!p->thr[k].lazy || samp_lazy_alive(s, p, &p->thr[k]));
    if (!alive) {
        samp_lazy_finish(s, p);
        if (p->x_pending) /* no thread reported the status that ended it */
            samp_x_line(s, p, p->x_msg);
        samp_proc_gone(s, p);
    }
}

int samp_seize(const struct prof_sampler *s, pid_t tid)
{
    long opts = s->lazy_threads ? PTRACE_OPTS_LAZY : PTRACE_OPTS;
    if (ptrace(PTRACE_SEIZE, tid, 0, (void *)opts) == 0)
        return 0;
    return -errno;
}

static int list_tasks(pid_t pid, pid_t **v, size_t *n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    *n = 0;
    *v = NULL;
    if (!d)
        return -errno;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            pid_t *nv = realloc(*v, cap * sizeof *nv);
            if (!nv)
                break;
            *v = nv;
        }
        (*v)[(*n)++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return 0;
}

/* Take every thread of pid under watch (seizing them when following). Threads
 * may appear and vanish meanwhile: list again until nothing new shows up. */
void samp_proc_take_threads(struct prof_sampler *s, struct sproc *p)
{
    for (int round = 0; round < 8; round++) {
        pid_t *v;
        size_t n;
        if (list_tasks(p->pid, &v, &n) < 0) {
            free(v);
            return;
        }
        int fresh = 0;
        for (size_t i = 0; i < n; i++) {
            int known = 0;
            for (size_t k = 0; k < p->nthr; k++)
                known |= p->thr[k].tid == v[i] && !p->thr[k].dead;
            if (known)
                continue; /* a lazy thread is seized by its own tick */
            struct sthr *th = samp_thr_add(p, v[i]);
            if (!th)
                continue;
            fresh = 1;
            /* Found running (attach, a thread missed by events): counted from now. */
            if (s->o.task_new)
                s->o.task_new(s->o.task_ctx, p->pid, v[i], 0);
            if (s->follow) {
                int r = samp_seize(s, v[i]);
                th->seized = r == 0;
                if (r < 0 && samp_task_state(p->pid, v[i]) == 'Z') {
                    th->exiting = 1;
                    if (v[i] == p->pid)
                        p->x_pending = 1; /* the status comes with the last thread's exit */
                }
                /* EPERM on an already-traced thread (a debugger, or a clone we
                 * were about to hear of) is not an error: /proc still works. */
            }
        }
        free(v);
        if (!fresh)
            return;
    }
}

pid_t samp_stat_ppid(pid_t pid, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')'); /* a name may hold ')' and spaces */
    if (!rp)
        return -1;
    int ppid = -1;
    char st;
    if (sscanf(rp + 1, " %c %d", &st, &ppid) != 2)
        return -1;
    if (start) {
        char *q = rp + 2;
        for (int f = 3; f < 22 && q; f++)
            q = strchr(q + 1, ' ');
        *start = q ? strtoull(q + 1, NULL, 10) : 0;
    }
    return (pid_t)ppid;
}

/* Find processes of the tree that no event told us of (attach to a running
 * program, /proc-only mode, forks by threads we could not seize). */
void samp_scan_tree(struct prof_sampler *s)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    pid_t self = getpid();
    for (int again = 1; again;) {
        again = 0;
        rewinddir(d);
        while ((e = readdir(d))) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            pid_t pid = (pid_t)atoi(e->d_name);
            if (pid == self || samp_proc_find(s, pid))
                continue;
            pid_t pp = samp_stat_ppid(pid, NULL);
            if (pp <= 0 || !samp_proc_find(s, pp))
                continue;
            struct sproc *p = samp_proc_add(s, pid, pp, 0);
            if (!p)
                continue;
            samp_proc_take_threads(s, p);
            samp_proc_python(s, p);
            again = 1; /* its own children may be listed before it */
        }
    }
    closedir(d);
}
