/* states.c: a thread's state from /proc: its schedstat, stat and syscall files, and what a blocked thread waits on. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sampler_int.h"

#define FD_KEEP_NS 200000000ULL         /* a descriptor's kind is kept this long from /proc only */
#define FD_KEEP_FOLLOW_NS 2000000000ULL /* ... and this long when no fork, exec or exit was seen */

/* ---- /proc reads -------------------------------------------------------------- */

ssize_t samp_pread_text(int fd, char *buf, size_t cap)
{
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, buf, cap - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

int samp_read_schedstat(struct sthr *th, uint64_t *cpu, uint64_t *runq)
{
    char buf[128];
    if (samp_pread_text(th->fd_sched, buf, sizeof buf) <= 0)
        return -1;
    /* Two decimal fields, parsed by hand: sscanf was 5% of the tracer's samples at 1 kHz. */
    const char *q = buf;
    uint64_t v[2];
    for (int i = 0; i < 2; i++) {
        while (*q == ' ')
            q++;
        if (*q < '0' || *q > '9')
            return -1;
        uint64_t x = 0;
        while (*q >= '0' && *q <= '9')
            x = x * 10 + (uint64_t)(*q++ - '0');
        v[i] = x;
    }
    *cpu = v[0];
    *runq = v[1];
    return 0;
}

static char read_state(struct sthr *th)
{
    char buf[1024];
    if (samp_pread_text(th->fd_stat, buf, sizeof buf) <= 0)
        return 0;
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : 0;
}

static int unix_inode(pid_t pid, unsigned long ino)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/net/unix", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long i;
        /* Num RefCount Protocol Flags Type St Inode Path */
        if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &i) == 1 && i == ino)
            found = 1;
    }
    fclose(f);
    return found;
}

/* Does another live process of the tree hold descriptor link (a pipe)? */
static int shared_in_tree(struct prof_sampler *s, pid_t self, const char *link)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        if (p->dead || p->pid == self)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/fd", (int)p->pid);
        DIR *d = opendir(path);
        if (!d)
            continue;
        struct dirent *e;
        int hit = 0;
        while (!hit && (e = readdir(d))) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            char fp[320], l[128];
            snprintf(fp, sizeof fp, "/proc/%d/fd/%s", (int)p->pid, e->d_name);
            ssize_t n = readlink(fp, l, sizeof l - 1);
            if (n > 0) {
                l[n] = '\0';
                hit = strcmp(l, link) == 0;
            }
        }
        closedir(d);
        if (hit)
            return 1;
    }
    return 0;
}

int samp_live_procs(struct prof_sampler *s)
{
    int n = 0;
    for (size_t i = 0; i < s->nprocs; i++)
        n += !s->procs[i]->dead;
    return n;
}

static enum prof_fdkind fd_kind(struct prof_sampler *s, struct sproc *p, int fd)
{
    if (fd < 0)
        return PROF_FD_UNKNOWN;
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)p->pid, fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 0)
        return PROF_FD_UNKNOWN;
    link[n] = '\0';
    /*
     * What a descriptor is changes only with its link (a new pipe or socket has a new inode),
     * and whether its other end is in the tree mostly when the tree changes: a fork, an exec
     * (close-on-exec) or an exit. Following by ptrace events, those are all seen, and a link
     * is classified again after one of them or 2 s; from /proc only, every 200 ms. (The
     * check of the other end reads every descriptor of every other process: 36 us a call
     * on a pool of three, 0.9 ms of a 0.8 s run at the 200 ms rate.)
     */
    uint64_t now = now_ns();
    struct fdcache *c = &p->fdc[(unsigned)fd % FDCACHE];
    uint64_t keep = s->follow ? FD_KEEP_FOLLOW_NS : FD_KEEP_NS;
    if (c->fd == fd && c->t && now - c->t < keep && (!s->follow || c->gen == s->tree_gen) &&
        strcmp(c->link, link) == 0)
        return c->kind;
    int isunix = 0, shared = 0;
    if (strncmp(link, "socket:[", 8) == 0) {
        isunix = unix_inode(p->pid, strtoul(link + 8, NULL, 10));
        /* A unix socket's peer has its own inode: any other live process of the tree counts. */
        shared = isunix && samp_live_procs(s) > 1;
    } else if (strncmp(link, "pipe:[", 6) == 0) {
        shared = shared_in_tree(s, p->pid, link);
    }
    enum prof_fdkind k = prof_fdkind_from_link(link, isunix, shared);
    if (n < (ssize_t)sizeof c->link) {
        c->fd = fd;
        c->t = now;
        c->gen = s->tree_gen;
        c->kind = k;
        memcpy(c->link, link, (size_t)n + 1);
    }
    return k;
}

static int read_mem(pid_t pid, uint64_t addr, void *dst, size_t len)
{
    struct iovec l = {dst, len}, r = {(void *)(uintptr_t)addr, len};
    return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -1;
}

static int in_range(uint64_t a, uint64_t base, uint64_t len)
{
    return len && a >= base && a < base + len;
}

/* Blocked cause of a thread from its stat and syscall files. */
enum prof_tstate samp_classify(struct prof_sampler *s, struct sproc *p, struct sthr *th, char *statep,
                               uint64_t *addr)
{
    char buf[256];
    struct prof_syscall sc;
    *addr = 0;
    /* syscall first: "running" settles it, and stat (the costlier read) is only for blocked threads. */
    if (samp_pread_text(th->fd_sys, buf, sizeof buf) <= 0 || prof_syscall_parse(buf, &sc) < 0) {
        *statep = read_state(th);
        return prof_tstate_classify(*statep, NULL, PROF_FD_UNKNOWN, 0);
    }
    if (sc.state == 0) {
        *statep = 'R';
        th->sc = sc;
        return PROF_TS_RUNNING;
    }
    char state = *statep = read_state(th);
    /*
     * A sleep, poll or timed futex wait that a stop of ours (PTRACE_INTERRUPT for a stack)
     * broke is resumed by the kernel as restart_syscall, at the same pc and sp: still the same
     * wait. Matched against the last blocking call read, not th->sc: the stop's wake-up may
     * have been seen in between (a switch-in record makes th->sc "running"), and the holder of
     * a mutex asleep for a second was then put down as "other" from the stop on.
     */
    if (sc.state == 1 && sc.nr == SYS_restart_syscall && th->sc_wait.state == 1 && th->sc_wait.pc == sc.pc &&
        th->sc_wait.sp == sc.sp)
        sc = th->sc_wait;
    else if (sc.state == 1 && sc.nr != SYS_restart_syscall)
        th->sc_wait = sc;
    /* Still in the same blocking call as at the last look (woken by our stop, or a spurious
     * wake-up): the same cause, without reading descriptors again. */
    if (sc.state == 1 && th->sc.state == 1 && sc.nr == th->sc.nr && sc.pc == th->sc.pc && sc.sp == th->sc.sp &&
        memcmp(sc.args, th->sc.args, sizeof sc.args) == 0 && th->state != PROF_TS_RUNNING &&
        th->state != PROF_TS_RUNQ && (state == 'S' || state == 'D')) {
        *addr = th->blocked_addr;
        return th->blocked;
    }
    th->sc = sc;
    enum prof_fdkind fk = PROF_FD_UNKNOWN;
    int gil = 0;
    uint64_t fds, nfds;
    if (sc.state == 1 && sc.nr == SYS_futex) {
        *addr = sc.args[0];
        gil = in_range(sc.args[0], p->gil_cond, p->gil_cond_len) || in_range(sc.args[0], p->gil_mutex, p->gil_mutex_len);
    } else if (prof_syscall_is_poll(&sc, &fds, &nfds)) {
        if (nfds == 1) {
            int pfd[2];
            if (read_mem(p->pid, fds, pfd, sizeof pfd) == 0)
                fk = fd_kind(s, p, pfd[0]);
        }
    } else {
        fk = fd_kind(s, p, prof_syscall_fd(&sc));
    }
    return prof_tstate_classify(state, &sc, fk, gil);
}
