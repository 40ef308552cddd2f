/* scan.c: finding the target tree's processes and threads in /proc, and the table of those watched. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/monitor_int.h"

struct mproc **mon_procs;  /* sorted by pid */
size_t mon_nprocs;
static size_t cprocs;

static pid_t *foreign;        /* pids known not to belong to the tree, sorted */
static size_t nforeign, cforeign;
static uint64_t *seen_files;  /* hashes of RUNDIR/proc names already looked at, sorted */
static size_t nseen_files, cseen_files;
static char dents[32768];

/* ---- process table ---------------------------------------------------- */

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

static int has_pid(const pid_t *v, size_t n, pid_t pid)
{
    return n && bsearch(&pid, v, n, sizeof pid, cmp_pid) != NULL;
}

static int cmp_tid(const void *a, const void *b)
{
    return cmp_pid(&((const struct mthr *)a)->tid, &((const struct mthr *)b)->tid);
}

struct mproc *mon_proc_find(pid_t pid, size_t *pos)
{
    size_t lo = 0, hi = mon_nprocs;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (mon_procs[mid]->pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return lo < mon_nprocs && mon_procs[lo]->pid == pid ? mon_procs[lo] : NULL;
}

static void thr_close(struct mthr *t)
{
    mon_close_cached(&t->fd_stat);
    mon_close_cached(&t->fd_sched);
    mon_close_cached(&t->fd_status);
}

static void proc_forget_threads(struct mproc *p)
{
    for (size_t i = 0; i < p->nthr; i++)
        thr_close(&p->thr[i]);
    p->nthr = 0;
}

/* Free p (the caller removes it from the table); G when it is gone rather than left running. */
void mon_proc_free(struct mproc *p, uint64_t t, int gone)
{
    if (gone)
        mon_out("G t=%llu pid=%d\n", (unsigned long long)t, (int)p->pid);
    proc_forget_threads(p);
    free(p->thr);
    free(p->listed);
    mon_close_cached(&p->fd_statm);
    mon_close_cached(&p->fd_smaps);
    mon_close_cached(&p->fd_cmdline);
    mon_close_cached(&p->taskfd);
    mon_close_cached(&p->dirfd);
    free(p->exe);
    free(p->cmd);
    free(p);
}

/* Remove the processes marked dead. */
void mon_procs_compact(uint64_t t)
{
    size_t o = 0;

    for (size_t i = 0; i < mon_nprocs; i++) {
        if (mon_procs[i]->dead)
            mon_proc_free(mon_procs[i], t, 1);
        else
            mon_procs[o++] = mon_procs[i];
    }
    mon_nprocs = o;
}

/*
 * Start tracking pid, whose stat said start_ticks. Opens /proc/PID and checks
 * that it is still the same process. fallback_* stand in for what a process
 * that already exited no longer shows (only the root has them).
 */
struct mproc *mon_proc_track(pid_t pid, unsigned long long start_ticks, uint64_t t,
                             const struct monitor_opts *fb)
{
    char path[64], buf[1024];
    struct statf st;
    size_t pos;

    if (mon_proc_find(pid, &pos))
        return NULL;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return NULL;
    int sfd = openat(dirfd, "stat", O_RDONLY | O_CLOEXEC);
    ssize_t r = sfd >= 0 ? mon_pread_once(sfd, buf, sizeof buf) : -1;
    if (sfd >= 0)
        close(sfd);
    if (r <= 0 || mon_parse_stat(buf, &st) < 0 || (fb == NULL && st.start != start_ticks)) {
        close(dirfd);
        return NULL; /* gone, or the pid was recycled since the listing */
    }
    struct mproc *p = calloc(1, sizeof *p);
    if (!p) {
        close(dirfd);
        return NULL;
    }
    if (mon_nprocs == cprocs) {
        size_t nc = cprocs ? cprocs * 2 : 16;
        struct mproc **np = realloc(mon_procs, nc * sizeof *np);
        if (!np) {
            free(p);
            close(dirfd);
            return NULL;
        }
        mon_procs = np;
        cprocs = nc;
    }
    mon_fd_cached++;
    p->pid = pid;
    p->dirfd = dirfd;
    p->mem_last = t; /* a first read waits for its predicted cost like the others */
    p->taskfd = p->fd_statm = p->fd_smaps = p->fd_cmdline = -1;
    p->start_ticks = st.start;
    p->exe = mon_read_exe(dirfd);
    p->cmd = mon_read_cmdline(p, &p->cmdlen);
    int is_static = mon_proc_is_static(dirfd);
    if (fb) {
        /* The root may already be a zombie, whose exe and cmdline read empty. */
        if (!p->exe && fb->root_exe)
            p->exe = strdup(fb->root_exe);
        if ((!p->cmd || p->cmdlen == 0) && fb->root_argv) {
            size_t n = 0;
            for (char *const *a = fb->root_argv; *a; a++)
                n += strlen(*a) + 1;
            free(p->cmd);
            p->cmd = malloc(n ? n : 1);
            p->cmdlen = 0;
            for (char *const *a = fb->root_argv; p->cmd && *a; a++) {
                memcpy(p->cmd + p->cmdlen, *a, strlen(*a) + 1);
                p->cmdlen += strlen(*a) + 1;
            }
            is_static = fb->root_static;
        }
    }
    memmove(mon_procs + pos + 1, mon_procs + pos, (mon_nprocs - pos) * sizeof *mon_procs);
    mon_procs[pos] = p;
    mon_nprocs++;
    mon_emit_image('N', p, t, st.ppid, is_static);
    return p;
}

/* Has the process exec'd since last seen? Then its image changed: E, and per-image descriptors are renewed. */
void mon_proc_check_exec(struct mproc *p, uint64_t t)
{
    char *exe = mon_read_exe(p->dirfd);
    size_t len;
    char *cmd;

    if (!exe)
        return; /* exited (zombie) or gone: the scan decides */
    cmd = mon_read_cmdline(p, &len);
    if (!cmd || len == 0) {
        free(exe);
        free(cmd);
        return;
    }
    int changed = !p->exe || strcmp(exe, p->exe) != 0 || len != p->cmdlen || memcmp(cmd, p->cmd, len) != 0;
    if (!changed) {
        free(exe);
        free(cmd);
        return;
    }
    free(p->exe);
    free(p->cmd);
    p->exe = exe;
    p->cmd = cmd;
    p->cmdlen = len;
    /* smaps_rollup holds the mm of the image it was opened on. */
    mon_close_cached(&p->fd_smaps);
    p->mem_gap = 0; /* the new image's memory: read as soon as its predicted cost allows */
    mon_close_cached(&p->fd_statm);
    proc_forget_threads(p);
    mon_emit_image('E', p, t, 0, mon_proc_is_static(p->dirfd));
}

/* The tracked thread tid of p (its table is sorted by tid), or NULL. */
static struct mthr *thr_find(struct mproc *p, pid_t tid)
{
    struct mthr key = {.tid = tid};
    return bsearch(&key, p->thr, p->nthr, sizeof *p->thr, cmp_tid);
}

/* Append pid to a growing list. 0, or -1 out of memory. */
static int pid_push(pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        pid_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = pid;
    return 0;
}

/* Append every numeric entry of the directory open on dfd to *v. */
static int list_numeric(int dfd, pid_t **v, size_t *n, size_t *cap)
{
    *n = 0;
    if (lseek(dfd, 0, SEEK_SET) < 0)
        return -1;
    for (;;) {
        ssize_t r = getdents64(dfd, dents, sizeof dents);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -1 : 0;
        for (ssize_t off = 0; off < r;) {
            struct dirent64 *d = (struct dirent64 *)(dents + off);
            off += d->d_reclen;
            const char *s = d->d_name;
            if (*s < '1' || *s > '9')
                continue;
            long val = 0;
            for (; *s >= '0' && *s <= '9'; s++)
                val = val * 10 + (*s - '0');
            if (*s)
                continue;
            if (pid_push(v, n, cap, (pid_t)val) < 0)
                return -1;
        }
    }
}

/* Append the pids in a children file ("pid pid ... "). */
static void add_children(int dirfd, const char *rel, pid_t **v, size_t *n, size_t *cap)
{
    char buf[4096];
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t r = mon_pread_once(fd, buf, sizeof buf);
    close(fd);
    for (char *s = buf, *e; r > 0 && *s; s = e) {
        long val = strtol(s, &e, 10);
        if (e == s)
            break;
        if (val > 0 && pid_push(v, n, cap, (pid_t)val) < 0)
            return;
    }
}

/*
 * The processes that may belong to the tree: our children and the tracked processes' own,
 * from /proc/PID/task/TID/children (a process is listed under the thread that forked it,
 * or another thread of its parent once that one ended). -1: no children files here.
 */
static int list_tree(pid_t **v, size_t *n, size_t *cap)
{
    static pid_t *tids;
    static size_t ctids;
    size_t ntids;
    *n = 0;
    int selffd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (selffd < 0)
        return -1;
    int tfd = openat(selffd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char rel[64];
    int rc = tfd >= 0 && list_numeric(tfd, &tids, &ntids, &ctids) == 0 && ntids ? 0 : -1;
    if (rc == 0) {
        snprintf(rel, sizeof rel, "task/%d/children", (int)tids[0]);
        rc = faccessat(selffd, rel, R_OK, 0) == 0 ? 0 : -1;
    }
    for (size_t k = 0; rc == 0 && k < ntids; k++) {
        snprintf(rel, sizeof rel, "task/%d/children", (int)tids[k]);
        add_children(selffd, rel, v, n, cap);
    }
    if (tfd >= 0)
        close(tfd);
    close(selffd);
    if (rc < 0)
        return -1;
    /* The tracked processes themselves: listed (so not taken for gone) and looked into. */
    for (size_t i = 0; i < mon_nprocs; i++)
        if (pid_push(v, n, cap, mon_procs[i]->pid) < 0)
            return -1;
    /*
     * Then every listed process's children, and theirs: a shell that system() started and the
     * command it forked are both new at one scan (the command may be gone by the next).
     * Each pid is looked into once; gone ones fail to open and are dropped.
     */
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        pid_t pid = (*v)[i];
        int dup = 0;
        for (size_t j = 0; j < w && !dup; j++)
            dup = (*v)[j] == pid;
        if (dup)
            continue;
        /*
         * A tracked process is listed through its own task directory descriptor (pinned to it:
         * a recycled pid reads as gone), and the listing is kept for its thread figures.
         */
        char path[64];
        struct mproc *p = mon_proc_find(pid, NULL);
        int fd = -1;
        if (p && !p->dead) {
            if (p->taskfd < 0 && (p->taskfd = openat(p->dirfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
                mon_fd_cached++;
            fd = p->taskfd;
        } else if (!p) {
            snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
            fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (fd < 0)
            continue; /* gone: not listed, so a tracked one is marked dead */
        if (list_numeric(fd, &tids, &ntids, &ctids) < 0 || ntids == 0) {
            if (!p)
                close(fd);
            continue; /* gone since the open: a live process has a thread */
        }
        (*v)[w++] = pid; /* i >= w: this slot was read already */
        {
            int ended = 0;
            if (p) {
                qsort(tids, ntids, sizeof *tids, cmp_pid);
                for (size_t k = 0; k < p->nthr && !ended; k++)
                    ended = bsearch(&p->thr[k].tid, tids, ntids, sizeof *tids, cmp_pid) == NULL;
                if (ntids > p->clisted) {
                    pid_t *nl = realloc(p->listed, ntids * sizeof *nl);
                    if (nl) {
                        p->listed = nl;
                        p->clisted = ntids;
                    }
                }
                if (ntids <= p->clisted) {
                    memcpy(p->listed, tids, ntids * sizeof *tids);
                    p->nlisted = ntids;
                    p->have_listed = 1;
                }
            }
            for (size_t k = 0; k < ntids; k++) {
                /*
                 * A tracked thread that has not been on a CPU since its children file was last
                 * read has forked nothing since. Its list grows without it only when another
                 * thread of the process ends: the orphans go to the first live thread, the
                 * leader (always read), else a sibling (all are read when one we knew ended).
                 */
                struct mthr *th = p && !ended && tids[k] != pid ? thr_find(p, tids[k]) : NULL;
                unsigned long long cpu, runq, slices;
                if (th && mon_read_schedstat(p, th, &cpu, &runq, &slices) == 0) {
                    th->fresh = 1;
                    th->fresh_cpu = cpu, th->fresh_runq = runq, th->fresh_slices = slices;
                    /* A thread on a CPU all along keeps its run count; its CPU time moves at
                     * every scheduler tick. At least every THR_REREAD_SCANS scans, read anyway. */
                    if (th->kids_read && th->kids_slices == slices && th->kids_cpu == cpu &&
                        ++th->kids_skipped < THR_REREAD_SCANS)
                        continue;
                    th->kids_read = 1;
                    th->kids_skipped = 0;
                    th->kids_slices = slices;
                    th->kids_cpu = cpu;
                }
                snprintf(path, sizeof path, "%d/children", (int)tids[k]);
                add_children(fd, path, v, n, cap);
            }
        }
        if (!p)
            close(fd);
    }
    *n = w;
    return 0;
}

void mon_proc_sample_threads(struct mproc *p, uint64_t t)
{
    static pid_t *tids;
    static size_t ctids;
    size_t ntids;

    if (p->taskfd < 0) {
        p->taskfd = openat(p->dirfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (p->taskfd < 0)
            return;
        mon_fd_cached++;
    }
    if (p->have_listed) {
        /* Listed a moment ago by list_tree, sorted. */
        p->have_listed = 0;
        if (p->nlisted > ctids) {
            pid_t *nv = realloc(tids, p->nlisted * sizeof *nv);
            if (!nv)
                return;
            tids = nv;
            ctids = p->nlisted;
        }
        memcpy(tids, p->listed, p->nlisted * sizeof *tids);
        ntids = p->nlisted;
    } else {
        if (list_numeric(p->taskfd, &tids, &ntids, &ctids) < 0)
            return;
        qsort(tids, ntids, sizeof *tids, cmp_pid);
    }

    /* Merge the sorted listing with the sorted table: keep, open, or close. */
    struct mthr *nt = malloc((ntids ? ntids : 1) * sizeof *nt);
    if (!nt)
        return;
    size_t i = 0, k = 0;
    for (size_t j = 0; j < ntids; j++) {
        while (i < p->nthr && p->thr[i].tid < tids[j])
            thr_close(&p->thr[i++]);
        if (i < p->nthr && p->thr[i].tid == tids[j])
            nt[k++] = p->thr[i++];
        else {
            nt[k++] = (struct mthr){.tid = tids[j], .fd_stat = -1, .fd_sched = -1, .fd_status = -1};
            if (mon_task_seen)
                mon_task_seen(mon_ctr_ctx, p->pid, tids[j], 0);
        }
    }
    while (i < p->nthr)
        thr_close(&p->thr[i++]);
    free(p->thr);
    p->thr = nt;
    p->cthr = p->nthr = k;

    size_t o = 0;
    for (size_t j = 0; j < p->nthr; j++) {
        if (mon_thr_sample(p, &p->thr[j], t) < 0)
            thr_close(&p->thr[j]);
        else
            p->thr[o++] = p->thr[j];
    }
    p->nthr = o;
}

/* ---- discovery ---------------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Pids that wrote a record file we had not seen: they belong to the tree whoever their parent is. */
static size_t proc_files_new(int dfd, pid_t **v, size_t *cap)
{
    size_t n = 0, added = 0;

    if (dfd < 0 || lseek(dfd, 0, SEEK_SET) < 0)
        return 0;
    for (;;) {
        ssize_t r = getdents64(dfd, dents, sizeof dents);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t off = 0; off < r;) {
            struct dirent64 *d = (struct dirent64 *)(dents + off);
            off += d->d_reclen;
            char *end;
            long pid = strtol(d->d_name, &end, 10);
            if (pid <= 0 || *end != '-')
                continue;
            uint64_t h = hash_name(d->d_name);
            if (nseen_files && bsearch(&h, seen_files, nseen_files, sizeof h, cmp_u64))
                continue;
            if (nseen_files + added == cseen_files) {
                size_t nc = cseen_files ? cseen_files * 2 : 64;
                uint64_t *ns = realloc(seen_files, nc * sizeof *ns);
                if (!ns)
                    continue;
                seen_files = ns;
                cseen_files = nc;
            }
            /* Appended past the sorted part, so bsearch above does not see them until the sort below. */
            seen_files[nseen_files + added++] = h;
            if (n == *cap) {
                size_t nc = *cap ? *cap * 2 : 16;
                pid_t *nv = realloc(*v, nc * sizeof *nv);
                if (!nv)
                    continue;
                *v = nv;
                *cap = nc;
            }
            (*v)[n++] = (pid_t)pid;
        }
    }
    nseen_files += added;
    if (added)
        qsort(seen_files, nseen_files, sizeof *seen_files, cmp_u64);
    qsort(*v, n, sizeof **v, cmp_pid);
    return n;
}

struct cand {
    pid_t pid, ppid;
    unsigned long long start;
    int forced;
};

/* List /proc, drop processes that are gone, adopt new descendants, refresh images and threads. */
void mon_scan(int procfd, int filesfd, uint64_t t)
{
    static pid_t *list, *forced, *nforeign_v;
    static size_t clist, cforced, cnforeign;
    static struct cand *cands;
    static size_t ccands;
    size_t nlist, nforced, ncand = 0, nnf = 0;
    pid_t self = getpid();

    nforced = proc_files_new(filesfd, &forced, &cforced);
    if (list_tree(&list, &nlist, &clist) == 0) {
        /* Processes the shim announced (RUNDIR/proc) whatever their parent. */
        for (size_t j = 0; j < nforced; j++) {
            char path[32];
            snprintf(path, sizeof path, "/proc/%d", (int)forced[j]);
            if (access(path, F_OK) != 0)
                continue;
            if (pid_push(&list, &nlist, &clist, forced[j]) < 0)
                break;
        }
    } else if (list_numeric(procfd, &list, &nlist, &clist) < 0) {
        return;
    }
    qsort(list, nlist, sizeof *list, cmp_pid);
    size_t w = 0; /* a process is in its parent's list and in ours: once */
    for (size_t j = 0; j < nlist; j++)
        if (!w || list[w - 1] != list[j])
            list[w++] = list[j];
    nlist = w;

    if (cnforeign < nlist) {
        pid_t *n = realloc(nforeign_v, nlist * sizeof *n);
        if (!n)
            return;
        nforeign_v = n;
        cnforeign = nlist;
    }
    for (size_t i = 0; i < mon_nprocs; i++)
        mon_procs[i]->dead = 1;
    for (size_t j = 0; j < nlist; j++) {
        pid_t pid = list[j];
        struct mproc *p = mon_proc_find(pid, NULL);
        if (p) {
            p->dead = 0;
            continue;
        }
        if (pid == self)
            continue;
        int is_forced = has_pid(forced, nforced, pid);
        if (!is_forced && has_pid(foreign, nforeign, pid)) {
            nforeign_v[nnf++] = pid;
            continue;
        }
        char path[64], buf[1024];
        struct statf st;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t r = mon_pread_once(fd, buf, sizeof buf);
        close(fd);
        if (r <= 0 || mon_parse_stat(buf, &st) < 0)
            continue;
        if (ncand == ccands) {
            size_t nc = ccands ? ccands * 2 : 256;
            struct cand *n = realloc(cands, nc * sizeof *n);
            if (!n)
                continue;
            cands = n;
            ccands = nc;
        }
        cands[ncand++] = (struct cand){pid, st.ppid, st.start, is_forced};
    }
    mon_procs_compact(t);

    /* A child may be listed before its parent (pid wrap): repeat until nothing more joins. */
    int changed = 1;
    while (changed) {
        changed = 0;
        for (size_t i = 0; i < ncand; i++) {
            struct cand *c = &cands[i];
            if (c->pid == 0)
                continue;
            if (c->forced || c->ppid == self || mon_proc_find(c->ppid, NULL)) {
                mon_proc_track(c->pid, c->start, t, NULL);
                c->pid = 0;
                changed = 1;
            }
        }
    }
    for (size_t i = 0; i < ncand; i++)
        if (cands[i].pid)
            nforeign_v[nnf++] = cands[i].pid;
    qsort(nforeign_v, nnf, sizeof *nforeign_v, cmp_pid);
    /* Pids not listed this time have exited: the new set replaces the old one. */
    pid_t *sv = foreign;
    size_t sc = cforeign;
    foreign = nforeign_v;
    cforeign = cnforeign;
    nforeign = nnf;
    nforeign_v = sv;
    cnforeign = sc;
}
