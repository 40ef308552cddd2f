/* readings.c: reading one process's or thread's figures from /proc (memory, CPU, scheduling, its image), cheaply enough to share a small machine with the target. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "monitor/machine.h"
#include "monitor/monitor_int.h"
#include "format/monrec.h"

/*
 * smaps_rollup is costly (monitor.c reads it at most every MEM_EVERY intervals), and its
 * cost grows with the process's resident pages (the kernel walks every page
 * table, holding the target's mmap lock for reading): ~4 ms a read of a Python process
 * holding 250 MB here; on ipc_heavy_pool (0.75 s) the reads took 23-100 ms of the
 * monitor's CPU. A read waits until MEM_BUDGET times its cost, times the processes
 * watched, has passed since the process's last read (or since it was first seen):
 * together the reads stay within 1/MEM_BUDGET of one CPU (0.25%: every share of a CPU
 * poolprof takes lands on the target's wall time on a small machine). The cost of a read not yet
 * made is predicted from the resident pages (statm, read every interval) at the cost
 * per page the last read measured: a short-lived large process may get no reading.
 */
#define MEM_BUDGET 400
static double smaps_ns_per_page = 50.0; /* measured by every read; a guess until the first */
#define CMDLINE_MAX (256 * 1024)

/* Descriptors kept open between reads, and how many may be (the rest of the limit is for one-shot opens). */
long mon_fd_budget, mon_fd_cached;
void (*mon_task_seen)(void *ctx, pid_t pid, pid_t tid, int born);
void *mon_ctr_ctx;

/* ---- small readers ---------------------------------------------------- */

ssize_t mon_pread_once(int fd, char *buf, size_t cap)
{
    ssize_t r;

    do
        r = pread(fd, buf, cap - 1, 0);
    while (r < 0 && errno == EINTR);
    buf[r > 0 ? r : 0] = '\0';
    return r;
}

void mon_close_cached(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        mon_fd_cached--;
        *fd = -1;
    }
}

/*
 * Read rel (relative to dirfd) into buf, keeping the descriptor in *cache for
 * the next call while the descriptor budget allows. -1 when the file cannot be
 * read: the process or thread is gone, or the cached descriptor went stale.
 */
static ssize_t read_cached(int *cache, int dirfd, const char *rel, char *buf, size_t cap)
{
    if (*cache >= 0) {
        ssize_t r = mon_pread_once(*cache, buf, cap);
        if (r > 0)
            return r;
        mon_close_cached(cache);
        return -1;
    }
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = mon_pread_once(fd, buf, cap);
    if (r > 0 && mon_fd_cached < mon_fd_budget) {
        *cache = fd;
        mon_fd_cached++;
    } else {
        close(fd);
    }
    return r > 0 ? r : -1;
}

/*
 * The next space-separated unsigned number at *p (1), or 0 when there is none; *p moves past
 * it. The files read every interval are parsed by hand: sscanf and its string-file setup
 * were a seventh of the monitor's CPU under a process pool.
 */
static int next_u64(const char **p, unsigned long long *v)
{
    const char *c = *p;
    while (*c == ' ' || *c == '\n')
        c++;
    if (*c < '0' || *c > '9')
        return 0;
    unsigned long long x = 0;
    while (*c >= '0' && *c <= '9')
        x = x * 10 + (unsigned long long)(*c++ - '0');
    *v = x;
    *p = c;
    return 1;
}

/* The number after "\nKEY:" (tabs or spaces between) in a status file, into *v if there is one. */
static void status_u64(const char *buf, const char *key, unsigned long long *v)
{
    const char *c = strstr(buf, key);
    if (!c)
        return;
    c += strlen(key);
    while (*c == '\t' || *c == ' ')
        c++;
    next_u64(&c, v);
}

/* Move *p past n space-separated fields (of any form: some stat fields are negative). */
static int skip_fields(const char **p, int n)
{
    const char *c = *p;
    for (int i = 0; i < n; i++) {
        while (*c == ' ')
            c++;
        if (!*c || *c == '\n')
            return 0;
        while (*c && *c != ' ' && *c != '\n')
            c++;
    }
    *p = c;
    return 1;
}

int mon_parse_stat(const char *buf, struct statf *s)
{
    const char *l = strchr(buf, '('), *r = strrchr(buf, ')');

    if (!l || !r || r < l)
        return -1;
    size_t nl = (size_t)(r - l - 1);
    if (nl >= sizeof s->name)
        nl = sizeof s->name - 1;
    memcpy(s->name, l + 1, nl);
    s->name[nl] = '\0';
    /* 3 state, 4 ppid, 10 minflt, 12 majflt, 14 utime, 15 stime, 22 starttime */
    const char *c = r + 1;
    unsigned long long ppid;
    if (c[0] != ' ' || !c[1])
        return -1;
    s->state = c[1];
    c += 2;
    if (!next_u64(&c, &ppid) || !skip_fields(&c, 5) || !next_u64(&c, &s->minflt) || !skip_fields(&c, 1) ||
        !next_u64(&c, &s->majflt) || !skip_fields(&c, 1) || !next_u64(&c, &s->utime) || !next_u64(&c, &s->stime) ||
        !skip_fields(&c, 6) || !next_u64(&c, &s->start))
        return -1;
    s->ppid = (int)ppid;
    return 0;
}

/* Read the whole cmdline (it may exceed a page) into a new buffer. */
char *mon_read_cmdline(struct mproc *p, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);

    *len = 0;
    if (!buf)
        return NULL;
    if (p->fd_cmdline < 0) {
        p->fd_cmdline = openat(p->dirfd, "cmdline", O_RDONLY | O_CLOEXEC);
        if (p->fd_cmdline >= 0)
            mon_fd_cached++;
    }
    if (p->fd_cmdline < 0) {
        free(buf);
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= CMDLINE_MAX)
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = pread(p->fd_cmdline, buf + n, cap - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

char *mon_read_exe(int dirfd)
{
    char buf[PATH_MAX];
    ssize_t n = readlinkat(dirfd, "exe", buf, sizeof buf - 1);

    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

/* ---- ELF ----------------------------------------------------------------- */

int monitor_elf_fd_is_static(int fd)
{
    unsigned char id[EI_NIDENT];
    uint64_t phoff;
    unsigned phnum, phentsize;

    if (pread(fd, id, sizeof id, 0) != (ssize_t)sizeof id || memcmp(id, ELFMAG, SELFMAG) != 0)
        return 0; /* not ELF: a script, whose interpreter is what runs */
    if (id[EI_DATA] != ELFDATA2LSB)
        return 0;
    if (id[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
            return -EIO;
        phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
        if (phentsize < sizeof(Elf64_Phdr))
            return 0;
    } else if (id[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr eh;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
            return -EIO;
        phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
        if (phentsize < sizeof(Elf32_Phdr))
            return 0;
    } else {
        return 0;
    }
    if (phnum == 0 || phnum > 4096)
        return 0;
    size_t sz = (size_t)phnum * phentsize;
    unsigned char *ph = malloc(sz);
    if (!ph)
        return -ENOMEM;
    int interp = 0;
    if (pread(fd, ph, sz, (off_t)phoff) != (ssize_t)sz) {
        free(ph);
        return -EIO;
    }
    for (unsigned i = 0; i < phnum && !interp; i++) {
        uint32_t type;
        memcpy(&type, ph + (size_t)i * phentsize, sizeof type); /* p_type leads both layouts */
        interp = type == PT_INTERP;
    }
    free(ph);
    return !interp;
}

int monitor_elf_is_static(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = monitor_elf_fd_is_static(fd);
    close(fd);
    return r;
}

int mon_proc_is_static(int dirfd)
{
    int fd = openat(dirfd, "exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int r = monitor_elf_fd_is_static(fd);
    close(fd);
    return r > 0;
}

void mon_proc_sample_rss(struct mproc *p, uint64_t t)
{
    char buf[256];
    unsigned long long size, res;

    if (read_cached(&p->fd_statm, p->dirfd, "statm", buf, sizeof buf) < 0) {
        p->dead = 1;
        return;
    }
    /* size 0: the address space is gone (the process is exiting or a zombie). */
    const char *c = buf;
    if (next_u64(&c, &size) && next_u64(&c, &res) && size > 0) {
        p->rss_pages = res;
        mon_out_rss(t, p->pid, res * (unsigned long long)mon_page_size);
    }
}

uint64_t mon_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void mon_proc_sample_mem(struct mproc *p, uint64_t t, uint64_t min_gap, size_t watched)
{
    char buf[4096];
    unsigned long long v, pss = 0, pc = 0, pd = 0, swap = 0;
    int have = 0;

    /* Not before the read's predicted cost has been earned. */
    double predicted = (double)p->rss_pages * smaps_ns_per_page * MEM_BUDGET * (double)(watched ? watched : 1);
    if (t < p->mem_last + p->mem_gap || (double)(t - p->mem_last) < predicted)
        return;
    uint64_t c0 = mon_thread_cpu_ns();
    int r = read_cached(&p->fd_smaps, p->dirfd, "smaps_rollup", buf, sizeof buf);
    uint64_t cost = mon_thread_cpu_ns() - c0;
    if (r >= 0 && p->rss_pages > 1000) /* a small process's cost is mostly fixed */
        smaps_ns_per_page = (double)cost / (double)p->rss_pages;
    uint64_t gap = cost * MEM_BUDGET * (watched ? watched : 1);
    p->mem_last = t;
    p->mem_gap = gap > min_gap ? gap : min_gap;
    if (r < 0)
        return;
    for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (sscanf(l, "Pss: %llu kB", &v) == 1)
            pss = v, have = 1;
        else if (sscanf(l, "Private_Clean: %llu kB", &v) == 1)
            pc = v;
        else if (sscanf(l, "Private_Dirty: %llu kB", &v) == 1)
            pd = v;
        else if (sscanf(l, "Swap: %llu kB", &v) == 1)
            swap = v;
    }
    if (have)
        mon_out("M t=%llu pid=%d pss=%llu uss=%llu swap=%llu\n", (unsigned long long)t, (int)p->pid, pss * 1024,
            (pc + pd) * 1024, swap * 1024);
}

int mon_read_schedstat(struct mproc *p, struct mthr *th, unsigned long long *cpu, unsigned long long *runq,
                       unsigned long long *slices)
{
    char rel[48], buf[128];
    snprintf(rel, sizeof rel, "task/%d/schedstat", (int)th->tid);
    *cpu = *runq = *slices = 0;
    if (read_cached(&th->fd_sched, p->dirfd, rel, buf, sizeof buf) <= 0)
        return -1;
    const char *c = buf;
    if (next_u64(&c, cpu) && next_u64(&c, runq))
        next_u64(&c, slices);
    return 0;
}

/* One thread's cumulative figures; -1 when it is gone. */
int mon_thr_sample(struct mproc *p, struct mthr *th, uint64_t t)
{
    char rel[48], buf[4096];
    struct statf st;
    unsigned long long cpu = 0, runq = 0, slices = 0, vcsw = 0, ivcsw = 0;

    /*
     * schedstat first: when its run count has not moved the thread has not been on a CPU since
     * the last scan, and the line is the last one again (51 mostly idle threads: the monitor's
     * CPU fell from 12 to 8 ms a second). A read that fails is a thread gone either way.
     */
    int sched = 0;
    if (th->fresh) {
        th->fresh = 0;
        cpu = th->fresh_cpu, runq = th->fresh_runq, slices = th->fresh_slices;
    } else {
        sched = mon_read_schedstat(p, th, &cpu, &runq, &slices);
    }
    if (sched == 0 && th->have && slices == th->slices && cpu == th->cpu && runq == th->runq &&
        ++th->skipped < THR_REREAD_SCANS)
        goto emit;
    snprintf(rel, sizeof rel, "task/%d/stat", (int)th->tid);
    if (read_cached(&th->fd_stat, p->dirfd, rel, buf, sizeof buf) < 0 || mon_parse_stat(buf, &st) < 0)
        return -1;
    snprintf(rel, sizeof rel, "task/%d/status", (int)th->tid);
    if (read_cached(&th->fd_status, p->dirfd, rel, buf, sizeof buf) > 0) {
        status_u64(buf, "\nvoluntary_ctxt_switches:", &vcsw);
        status_u64(buf, "\nnonvoluntary_ctxt_switches:", &ivcsw);
    }
    unsigned long long tick_ns = 1000000000ULL / (unsigned long long)mon_ticks_per_sec;
    prof_rec_escape(th->name, sizeof th->name, st.name, strlen(st.name));
    th->have = sched == 0;
    th->skipped = 0;
    th->cpu = cpu;
    th->runq = runq;
    th->slices = slices;
    th->utime = st.utime * tick_ns;
    th->stime = st.stime * tick_ns;
    th->vcsw = vcsw;
    th->ivcsw = ivcsw;
    th->start = st.start;
    th->minflt = st.minflt;
    th->majflt = st.majflt;
emit:
    mon_out("T t=%llu pid=%d tid=%d name=%s cpu=%llu runq=%llu slices=%llu utime=%llu stime=%llu vcsw=%llu "
        "ivcsw=%llu start_ticks=%llu minflt=%llu majflt=%llu\n",
        (unsigned long long)t, (int)p->pid, (int)th->tid, th->name, th->cpu, th->runq, th->slices, th->utime,
        th->stime, th->vcsw, th->ivcsw, th->start, th->minflt, th->majflt);
    return 0;
}

/*
 * The machine's busy and stolen CPU ticks so far (/proc/stat's first line), at every scan.
 * On a VM the kernel leaves stolen time out of a task's CPU and run-queue figures
 * (paravirt steal accounting), so a thread whose vCPU the host took away looks off CPU
 * for no reason the tree shows; the report charges stages their share. One pread of a
 * 1.2 KiB file at 10 Hz (~10 us each here).
 */
void mon_out_steal(int fd, uint64_t t)
{
    char buf[256];
    uint64_t busy, steal;
    if (fd >= 0 && mon_pread_once(fd, buf, sizeof buf) > 0 && prof_stat_cpu_times(buf, &busy, &steal) == 0)
        mon_out("K t=%llu busy=%llu steal=%llu\n", (unsigned long long)t, (unsigned long long)busy,
            (unsigned long long)steal);
}
