/* monitor.c: watches the target's process tree from outside through /proc and appends what it sees to RUNDIR/monitor.rec. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monitor/machine.h"
#include "monitor/monitor.h"
#include "format/monrec.h"
#include "prof.h"

/*
 * Cost model: the monitor shares a small machine with the target, so it does
 * as little as it can per wake-up. Descriptors of the files it samples often
 * (statm, smaps_rollup, per-thread stat/schedstat/status) are opened once and
 * pread at offset 0, which regenerates a /proc file without a path walk. A
 * /proc/PID directory descriptor pins the process it was opened for: once
 * that process is gone, every read through it fails, so a recycled pid is
 * never mistaken for a tracked one. New processes are found every 100 ms in the
 * children files of the tree's threads and of our own (we are a child subreaper:
 * orphans come to us), reading the stat file only of pids not seen before; the
 * whole of /proc (every process on the machine, 19% of the monitor's CPU under a
 * Python pool) is listed only where the kernel has no children files.
 */

#define SCAN_NS 100000000ULL  /* tree discovery, exec detection, thread figures, flush */
#define SCAN_FULL_NS 1000000000ULL /* ...discovery and exec detection at least this often when a tracer says nothing changed */
#define GRACE_NS 2000000000ULL /* how long the rest of the tree may outlive the root */
#define MEM_EVERY 20          /* smaps_rollup is costly: at most every 20th interval (PSS moves slowly) */
/*
 * ...and its cost grows with the process's resident pages (the kernel walks every page
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

struct mthr {
    pid_t tid;
    int fd_stat, fd_sched, fd_status;
    /* The last figures read: a thread whose schedstat has not moved did not run since, so its
     * stat and status (the costlier reads) have not moved either. */
    int have;
    unsigned skipped;         /* scans since stat and status were last read */
    unsigned long long cpu, runq, slices, utime, stime, vcsw, ivcsw, start;
    /* When its children file was last read (kids_read 0: never), and scans since. */
    int kids_read;
    unsigned kids_skipped;
    unsigned long long kids_cpu, kids_slices;
    /* schedstat as list_tree read it moments ago in this scan (fresh 1), for thr_sample. */
    int fresh;
    unsigned long long fresh_cpu, fresh_runq, fresh_slices;
    char name[64 * 3 + 1];    /* escaped */
};

struct mproc {
    pid_t pid;
    int dead;                 /* a read through its descriptors failed: report G */
    int dirfd, taskfd;        /* /proc/PID and /proc/PID/task */
    int fd_statm, fd_smaps, fd_cmdline;
    uint64_t mem_last;        /* last smaps_rollup read, or when first seen */
    uint64_t mem_gap;         /* at least this long after mem_last before the next one */
    unsigned long long rss_pages;
    unsigned long long start_ticks;
    char *exe;
    char *cmd;                /* raw /proc/PID/cmdline */
    size_t cmdlen;
    struct mthr *thr;         /* sorted by tid */
    size_t nthr, cthr;
    pid_t *listed;            /* this scan's listing of its task directory, sorted (list_tree) */
    size_t nlisted, clisted;
    int have_listed;          /* listed this scan and not yet sampled */
};

static FILE *rec;
static int rec_err;
static long ticks_per_sec, page_size;
static long fd_budget, fd_cached;
static volatile sig_atomic_t pending[NSIG];

static struct mproc **procs;  /* sorted by pid */
static size_t nprocs, cprocs;
static pid_t *foreign;        /* pids known not to belong to the tree, sorted */
static size_t nforeign, cforeign;
static uint64_t *seen_files;  /* hashes of RUNDIR/proc names already looked at, sorted */
static size_t nseen_files, cseen_files;
static char *esc;             /* escape buffer, grown on demand */
static size_t esc_cap;
static char dents[32768];

uint64_t monitor_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t monitor_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t stop_requested;

/* Exits the sampler thread reaped for us (see monitor_child_reaped). */
static pthread_mutex_t handed_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { pid_t pid; int status; uint64_t t; } handed[256];
static size_t nhanded;

void monitor_child_reaped(void *ctx, pid_t pid, int status)
{
    (void)ctx;
    pthread_mutex_lock(&handed_mu);
    if (nhanded < sizeof handed / sizeof *handed)
        handed[nhanded++] = (typeof(handed[0])){pid, status, monitor_now_ns()};
    pthread_mutex_unlock(&handed_mu);
}

void monitor_request_stop(void)
{
    stop_requested = 1;
}

/* Attach: the root is someone else's child; it has ended once it is gone or a zombie. */
static int root_ended(pid_t root)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)root);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 1;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ' || rp[2] == 'X')
        return 1;
    if (rp[2] != 'Z')
        return 0;
    /* A zombie leader (main called pthread_exit) while other threads run on: not ended. */
    snprintf(path, sizeof path, "/proc/%d/task", (int)root);
    DIR *d = opendir(path);
    if (!d)
        return 1;
    int live = 0;
    struct dirent *e;
    while (!live && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || atoi(e->d_name) == (int)root)
            continue;
        char tp[300];
        snprintf(tp, sizeof tp, "/proc/%d/task/%s/stat", (int)root, e->d_name);
        int tfd = open(tp, O_RDONLY | O_CLOEXEC);
        ssize_t tn = tfd >= 0 ? read(tfd, buf, sizeof buf - 1) : -1;
        if (tfd >= 0)
            close(tfd);
        if (tn <= 0)
            continue;
        buf[tn] = '\0';
        char *tr = strrchr(buf, ')');
        live = tr && tr[1] == ' ' && tr[2] != 'Z' && tr[2] != 'X';
    }
    closedir(d);
    return !live;
}

void monitor_forward_signal(int sig)
{
    if (sig > 0 && sig < NSIG)
        pending[sig] = 1;
}

/* ---- output ---------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static void out(const char *fmt, ...)
{
    va_list ap;

    if (!rec || rec_err)
        return;
    va_start(ap, fmt);
    vfprintf(rec, fmt, ap);
    va_end(ap);
}

/*
 * The R line, written at every interval for every process (50 a second each by default):
 * formatted by hand: vfprintf took 0.55 ms of the monitor's CPU in a 0.7 s run of
 * c_parallel_cpu, against 0.9 ms for the statm reads themselves (perf, 4 runs).
 */
static char *put_u64(char *p, unsigned long long v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        *p++ = tmp[--n];
    return p;
}

static void out_rss(uint64_t t, pid_t pid, unsigned long long bytes)
{
    char line[80], *p = line;
    if (!rec || rec_err)
        return;
    memcpy(p, "R t=", 4);
    p = put_u64(p + 4, t);
    memcpy(p, " pid=", 5);
    p = put_u64(p + 5, (unsigned long long)pid);
    memcpy(p, " rss=", 5);
    p = put_u64(p + 5, bytes);
    *p++ = '\n';
    fwrite(line, 1, (size_t)(p - line), rec);
}

/* A full disk stops recording, never the target: remember the error and write no more. */
static void out_flush(void)
{
    if (!rec || rec_err)
        return;
    if (fflush(rec) != 0 || ferror(rec))
        rec_err = errno ? errno : EIO;
}

/* Escape len bytes of s into the shared buffer; a list when sep_nul (NUL-separated -> ','). */
static const char *escape(const char *s, size_t len, int sep_nul)
{
    size_t need = len * 3 + 1;

    if (need > esc_cap) {
        char *n = realloc(esc, need);
        if (!n)
            return "";
        esc = n;
        esc_cap = need;
    }
    if (!sep_nul) {
        prof_rec_escape(esc, esc_cap, s, len);
        return esc;
    }
    if (len && s[len - 1] == '\0')
        len--; /* the terminator of the last argument, not an empty argument */
    size_t o = 0;
    const char *p = s, *end = s + len;
    while (p <= end && len) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        size_t el = z ? (size_t)(z - p) : (size_t)(end - p);
        if (o)
            esc[o++] = ',';
        int r = prof_rec_escape(esc + o, esc_cap - o, p, el);
        if (r < 0)
            break;
        o += (size_t)r;
        p += el + 1;
    }
    esc[o] = '\0';
    return esc;
}

/* ---- small readers ---------------------------------------------------- */

static ssize_t pread_once(int fd, char *buf, size_t cap)
{
    ssize_t r;

    do
        r = pread(fd, buf, cap - 1, 0);
    while (r < 0 && errno == EINTR);
    buf[r > 0 ? r : 0] = '\0';
    return r;
}

static void close_cached(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        fd_cached--;
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
        ssize_t r = pread_once(*cache, buf, cap);
        if (r > 0)
            return r;
        close_cached(cache);
        return -1;
    }
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = pread_once(fd, buf, cap);
    if (r > 0 && fd_cached < fd_budget) {
        *cache = fd;
        fd_cached++;
    } else {
        close(fd);
    }
    return r > 0 ? r : -1;
}

/* Fields of a stat line after the command name, which may hold spaces and parentheses. */
struct statf {
    char state;
    int ppid;
    unsigned long long utime, stime, start;
    char name[64];
};

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

static int parse_stat(const char *buf, struct statf *s)
{
    const char *l = strchr(buf, '('), *r = strrchr(buf, ')');

    if (!l || !r || r < l)
        return -1;
    size_t nl = (size_t)(r - l - 1);
    if (nl >= sizeof s->name)
        nl = sizeof s->name - 1;
    memcpy(s->name, l + 1, nl);
    s->name[nl] = '\0';
    /* 3 state, 4 ppid, 14 utime, 15 stime, 22 starttime */
    const char *c = r + 1;
    unsigned long long ppid;
    if (c[0] != ' ' || !c[1])
        return -1;
    s->state = c[1];
    c += 2;
    if (!next_u64(&c, &ppid) || !skip_fields(&c, 9) || !next_u64(&c, &s->utime) || !next_u64(&c, &s->stime) ||
        !skip_fields(&c, 6) || !next_u64(&c, &s->start))
        return -1;
    s->ppid = (int)ppid;
    return 0;
}

/* Read the whole cmdline (it may exceed a page) into a new buffer. */
static char *read_cmdline(struct mproc *p, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);

    *len = 0;
    if (!buf)
        return NULL;
    if (p->fd_cmdline < 0) {
        p->fd_cmdline = openat(p->dirfd, "cmdline", O_RDONLY | O_CLOEXEC);
        if (p->fd_cmdline >= 0)
            fd_cached++;
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

static char *read_exe(int dirfd)
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

static int proc_is_static(int dirfd)
{
    int fd = openat(dirfd, "exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int r = monitor_elf_fd_is_static(fd);
    close(fd);
    return r > 0;
}

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

static struct mproc *proc_find(pid_t pid, size_t *pos)
{
    size_t lo = 0, hi = nprocs;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (procs[mid]->pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return lo < nprocs && procs[lo]->pid == pid ? procs[lo] : NULL;
}

static void thr_close(struct mthr *t)
{
    close_cached(&t->fd_stat);
    close_cached(&t->fd_sched);
    close_cached(&t->fd_status);
}

static void proc_forget_threads(struct mproc *p)
{
    for (size_t i = 0; i < p->nthr; i++)
        thr_close(&p->thr[i]);
    p->nthr = 0;
}

/* Free p (the caller removes it from the table); G when it is gone rather than left running. */
static void proc_free(struct mproc *p, uint64_t t, int gone)
{
    if (gone)
        out("G t=%llu pid=%d\n", (unsigned long long)t, (int)p->pid);
    proc_forget_threads(p);
    free(p->thr);
    free(p->listed);
    close_cached(&p->fd_statm);
    close_cached(&p->fd_smaps);
    close_cached(&p->fd_cmdline);
    close_cached(&p->taskfd);
    close_cached(&p->dirfd);
    free(p->exe);
    free(p->cmd);
    free(p);
}

/* Remove the processes marked dead. */
static void procs_compact(uint64_t t)
{
    size_t o = 0;

    for (size_t i = 0; i < nprocs; i++) {
        if (procs[i]->dead)
            proc_free(procs[i], t, 1);
        else
            procs[o++] = procs[i];
    }
    nprocs = o;
}

static void emit_image(char type, struct mproc *p, uint64_t t, int ppid, int is_static)
{
    char exe[PATH_MAX * 3 + 1];
    const char *e = p->exe ? p->exe : "";

    prof_rec_escape(exe, sizeof exe, e, strlen(e));
    const char *argv = p->cmd ? escape(p->cmd, p->cmdlen, 1) : "";
    if (type == 'N')
        out("N t=%llu pid=%d ppid=%d start_ticks=%llu exe=%s argv=%s static=%d\n", (unsigned long long)t,
            (int)p->pid, ppid, p->start_ticks, exe, argv, is_static);
    else
        out("E t=%llu pid=%d exe=%s argv=%s static=%d\n", (unsigned long long)t, (int)p->pid, exe, argv,
            is_static);
}

/*
 * Start tracking pid, whose stat said start_ticks. Opens /proc/PID and checks
 * that it is still the same process. fallback_* stand in for what a process
 * that already exited no longer shows (only the root has them).
 */
static struct mproc *proc_track(pid_t pid, unsigned long long start_ticks, uint64_t t,
                                const struct monitor_opts *fb)
{
    char path[64], buf[1024];
    struct statf st;
    size_t pos;

    if (proc_find(pid, &pos))
        return NULL;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return NULL;
    int sfd = openat(dirfd, "stat", O_RDONLY | O_CLOEXEC);
    ssize_t r = sfd >= 0 ? pread_once(sfd, buf, sizeof buf) : -1;
    if (sfd >= 0)
        close(sfd);
    if (r <= 0 || parse_stat(buf, &st) < 0 || (fb == NULL && st.start != start_ticks)) {
        close(dirfd);
        return NULL; /* gone, or the pid was recycled since the listing */
    }
    struct mproc *p = calloc(1, sizeof *p);
    if (!p) {
        close(dirfd);
        return NULL;
    }
    if (nprocs == cprocs) {
        size_t nc = cprocs ? cprocs * 2 : 16;
        struct mproc **np = realloc(procs, nc * sizeof *np);
        if (!np) {
            free(p);
            close(dirfd);
            return NULL;
        }
        procs = np;
        cprocs = nc;
    }
    fd_cached++;
    p->pid = pid;
    p->dirfd = dirfd;
    p->mem_last = t; /* a first read waits for its predicted cost like the others */
    p->taskfd = p->fd_statm = p->fd_smaps = p->fd_cmdline = -1;
    p->start_ticks = st.start;
    p->exe = read_exe(dirfd);
    p->cmd = read_cmdline(p, &p->cmdlen);
    int is_static = proc_is_static(dirfd);
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
    memmove(procs + pos + 1, procs + pos, (nprocs - pos) * sizeof *procs);
    procs[pos] = p;
    nprocs++;
    emit_image('N', p, t, st.ppid, is_static);
    return p;
}

/* Has the process exec'd since last seen? Then its image changed: E, and per-image descriptors are renewed. */
static void proc_check_exec(struct mproc *p, uint64_t t)
{
    char *exe = read_exe(p->dirfd);
    size_t len;
    char *cmd;

    if (!exe)
        return; /* exited (zombie) or gone: the scan decides */
    cmd = read_cmdline(p, &len);
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
    close_cached(&p->fd_smaps);
    p->mem_gap = 0; /* the new image's memory: read as soon as its predicted cost allows */
    close_cached(&p->fd_statm);
    proc_forget_threads(p);
    emit_image('E', p, t, 0, proc_is_static(p->dirfd));
}

static void proc_sample_rss(struct mproc *p, uint64_t t)
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
        out_rss(t, p->pid, res * (unsigned long long)page_size);
    }
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void proc_sample_mem(struct mproc *p, uint64_t t, uint64_t min_gap, size_t watched)
{
    char buf[4096];
    unsigned long long v, pss = 0, pc = 0, pd = 0, swap = 0;
    int have = 0;

    /* Not before the read's predicted cost has been earned. */
    double predicted = (double)p->rss_pages * smaps_ns_per_page * MEM_BUDGET * (double)(watched ? watched : 1);
    if (t < p->mem_last + p->mem_gap || (double)(t - p->mem_last) < predicted)
        return;
    uint64_t c0 = thread_cpu_ns();
    int r = read_cached(&p->fd_smaps, p->dirfd, "smaps_rollup", buf, sizeof buf);
    uint64_t cost = thread_cpu_ns() - c0;
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
        out("M t=%llu pid=%d pss=%llu uss=%llu swap=%llu\n", (unsigned long long)t, (int)p->pid, pss * 1024,
            (pc + pd) * 1024, swap * 1024);
}

/*
 * stat and status are re-read at least this often (in scans) even when schedstat has not moved:
 * a thread's name can be set by another thread while it sleeps.
 */
#define THR_REREAD_SCANS 10

static int read_schedstat(struct mproc *p, struct mthr *th, unsigned long long *cpu, unsigned long long *runq,
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

/* The tracked thread tid of p (its table is sorted by tid), or NULL. */
static struct mthr *thr_find(struct mproc *p, pid_t tid)
{
    struct mthr key = {.tid = tid};
    return bsearch(&key, p->thr, p->nthr, sizeof *p->thr, cmp_tid);
}

/* One thread's cumulative figures; -1 when it is gone. */
static int thr_sample(struct mproc *p, struct mthr *th, uint64_t t)
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
        sched = read_schedstat(p, th, &cpu, &runq, &slices);
    }
    if (sched == 0 && th->have && slices == th->slices && cpu == th->cpu && runq == th->runq &&
        ++th->skipped < THR_REREAD_SCANS)
        goto emit;
    snprintf(rel, sizeof rel, "task/%d/stat", (int)th->tid);
    if (read_cached(&th->fd_stat, p->dirfd, rel, buf, sizeof buf) < 0 || parse_stat(buf, &st) < 0)
        return -1;
    snprintf(rel, sizeof rel, "task/%d/status", (int)th->tid);
    if (read_cached(&th->fd_status, p->dirfd, rel, buf, sizeof buf) > 0) {
        status_u64(buf, "\nvoluntary_ctxt_switches:", &vcsw);
        status_u64(buf, "\nnonvoluntary_ctxt_switches:", &ivcsw);
    }
    unsigned long long tick_ns = 1000000000ULL / (unsigned long long)ticks_per_sec;
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
emit:
    out("T t=%llu pid=%d tid=%d name=%s cpu=%llu runq=%llu slices=%llu utime=%llu stime=%llu vcsw=%llu "
        "ivcsw=%llu start_ticks=%llu\n",
        (unsigned long long)t, (int)p->pid, (int)th->tid, th->name, th->cpu, th->runq, th->slices, th->utime,
        th->stime, th->vcsw, th->ivcsw, th->start);
    return 0;
}

/* Append every numeric entry of the directory open on dfd to *v. */
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
    ssize_t r = pread_once(fd, buf, sizeof buf);
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
    for (size_t i = 0; i < nprocs; i++)
        if (pid_push(v, n, cap, procs[i]->pid) < 0)
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
        struct mproc *p = proc_find(pid, NULL);
        int fd = -1;
        if (p && !p->dead) {
            if (p->taskfd < 0 && (p->taskfd = openat(p->dirfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
                fd_cached++;
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
                if (th && read_schedstat(p, th, &cpu, &runq, &slices) == 0) {
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

static void proc_sample_threads(struct mproc *p, uint64_t t)
{
    static pid_t *tids;
    static size_t ctids;
    size_t ntids;

    if (p->taskfd < 0) {
        p->taskfd = openat(p->dirfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (p->taskfd < 0)
            return;
        fd_cached++;
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
        else
            nt[k++] = (struct mthr){.tid = tids[j], .fd_stat = -1, .fd_sched = -1, .fd_status = -1};
    }
    while (i < p->nthr)
        thr_close(&p->thr[i++]);
    free(p->thr);
    p->thr = nt;
    p->cthr = p->nthr = k;

    size_t o = 0;
    for (size_t j = 0; j < p->nthr; j++) {
        if (thr_sample(p, &p->thr[j], t) < 0)
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
static void scan(int procfd, int filesfd, uint64_t t)
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
    for (size_t i = 0; i < nprocs; i++)
        procs[i]->dead = 1;
    for (size_t j = 0; j < nlist; j++) {
        pid_t pid = list[j];
        struct mproc *p = proc_find(pid, NULL);
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
        ssize_t r = pread_once(fd, buf, sizeof buf);
        close(fd);
        if (r <= 0 || parse_stat(buf, &st) < 0)
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
    procs_compact(t);

    /* A child may be listed before its parent (pid wrap): repeat until nothing more joins. */
    int changed = 1;
    while (changed) {
        changed = 0;
        for (size_t i = 0; i < ncand; i++) {
            struct cand *c = &cands[i];
            if (c->pid == 0)
                continue;
            if (c->forced || c->ppid == self || proc_find(c->ppid, NULL)) {
                proc_track(c->pid, c->start, t, NULL);
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

/* ---- reaping ---------------------------------------------------------------- */

/*
 * Reap every exited child: the root and orphans reparented to us (we are a
 * child subreaper). waitid(WNOWAIT) first, so a tracked zombie's final thread
 * figures can still be read before it disappears.
 */
static void reap(const struct monitor_opts *o, struct monitor_result *res, int *root_done, uint64_t t)
{
    pthread_mutex_lock(&handed_mu);
    for (size_t i = 0; i < nhanded; i++) {
        pid_t pid = handed[i].pid;
        struct mproc *p = rec_err ? NULL : proc_find(pid, NULL);
        out("Z t=%llu pid=%d status=%d\n", (unsigned long long)handed[i].t, (int)pid, handed[i].status);
        if (p)
            p->dead = 1;
        if (pid == o->root && !o->attached) {
            res->root_status = handed[i].status;
            res->root_end_ns = handed[i].t;
            *root_done = 1;
        }
    }
    nhanded = 0;
    pthread_mutex_unlock(&handed_mu);
    size_t next = 0; /* per-pid pass, once P_ALL shows a tracee's ptrace stop */
    for (;;) {
        siginfo_t si;
        si.si_pid = 0;
        /*
         * The sampler thread traces our children, and a tracer in the parent's own
         * thread group makes the parent see their ptrace stops too: look without
         * consuming (WNOWAIT) and take only exits, never a stop that is the tracer's.
         */
        int r0;
        if (next == 0)
            r0 = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WNOTHREAD);
        else if (next <= nprocs)
            r0 = waitid(P_PID, (id_t)procs[next - 1]->pid, &si, WEXITED | WNOHANG | WNOWAIT | __WNOTHREAD);
        else
            return;
        if (r0 < 0) {
            if (errno == EINTR)
                continue;
            if (next == 0)
                return;
            next++;
            continue;
        }
        if (si.si_pid == 0 || (si.si_code != CLD_EXITED && si.si_code != CLD_KILLED && si.si_code != CLD_DUMPED)) {
            if (next == 0 && si.si_pid == 0)
                return;
            next++;
            continue;
        }
        pid_t pid = si.si_pid;
        struct mproc *p = rec_err ? NULL : proc_find(pid, NULL);
        if (p)
            proc_sample_threads(p, t);
        int status;
        pid_t r;
        /* A zombie: this wait can only return its exit. */
        do
            r = waitpid(pid, &status, WNOHANG | __WNOTHREAD);
        while (r < 0 && errno == EINTR);
        if (r != pid) {
            if (next == 0)
                return;
            next++;
            continue;
        }
        out("Z t=%llu pid=%d status=%d\n", (unsigned long long)t, (int)pid, status);
        if (p)
            p->dead = 1;
        if (pid == o->root) {
            res->root_status = status;
            res->root_end_ns = t;
            *root_done = 1;
        }
    }
}

static void forward_signals(pid_t root, int root_done)
{
    static const int sigs[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};

    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        if (!pending[sigs[i]])
            continue;
        pending[sigs[i]] = 0;
        if (!root_done)
            kill(root, sigs[i]);
    }
}

/* ---- entry points --------------------------------------------------------- */

int monitor_open(const char *rundir, int interval_ms)
{
    char path[PATH_MAX];

    ticks_per_sec = sysconf(_SC_CLK_TCK);
    page_size = sysconf(_SC_PAGESIZE);
    if (ticks_per_sec <= 0)
        ticks_per_sec = 100;
    if (snprintf(path, sizeof path, "%s/monitor.rec", rundir) >= (int)sizeof path)
        return PROF_ERANGE;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return prof_err_from_errno(errno);
    rec = fdopen(fd, "w");
    if (!rec) {
        close(fd);
        return PROF_ENOMEM;
    }
    /* Full buffering; out_flush() empties it at least every 100 ms. */
    setvbuf(rec, NULL, _IOFBF, 1 << 16);
    out("V version=%d\n", PROF_MONREC_VERSION);
    out("S t=%llu interval_ms=%d ticks_per_sec=%ld page_size=%ld\n", (unsigned long long)monitor_now_ns(),
        interval_ms, ticks_per_sec, page_size);
    out_flush();
    if (rec_err)
        return prof_err_from_errno(rec_err);
    return 0;
}

/*
 * The machine's busy and stolen CPU ticks so far (/proc/stat's first line), at every scan.
 * On a VM the kernel leaves stolen time out of a task's CPU and run-queue figures
 * (paravirt steal accounting), so a thread whose vCPU the host took away looks off CPU
 * for no reason the tree shows; the report charges stages their share. One pread of a
 * 1.2 KiB file at 10 Hz (~10 us each here).
 */
static void out_steal(int fd, uint64_t t)
{
    char buf[256];
    uint64_t busy, steal;
    if (fd >= 0 && pread_once(fd, buf, sizeof buf) > 0 && prof_stat_cpu_times(buf, &busy, &steal) == 0)
        out("K t=%llu busy=%llu steal=%llu\n", (unsigned long long)t, (unsigned long long)busy,
            (unsigned long long)steal);
}

static void deadline_advance(uint64_t *next, uint64_t period, uint64_t now)
{
    *next += period;
    if (*next <= now) /* we overran (a slow /proc read, a stopped machine): skip, do not burst */
        *next = now + period;
}

int monitor_run(const struct monitor_opts *o, struct monitor_result *res)
{
    char path[PATH_MAX];
    uint64_t interval = (uint64_t)o->interval_ms * 1000000ULL;
    int root_done = 0, final_scan = 0;

    memset(res, 0, sizeof *res);
    struct rlimit rl;
    fd_budget = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        fd_budget = (long)rl.rlim_cur;
    fd_budget -= 64; /* for one-shot opens, the record file and the merge */

    int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/proc", o->rundir);
    int filesfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    int statfd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    uint64_t t = monitor_now_ns();
    out_steal(statfd, t);
    proc_track(o->root, 0, t, o);
    uint64_t next_sample = t, next_scan = t + SCAN_NS;
    uint64_t scanned_events = UINT64_MAX, scanned_t = 0;

    for (;;) {
        t = monitor_now_ns();
        if (stop_requested || (o->deadline_ns && t >= o->deadline_ns))
            break;
        if (!o->attached)
            forward_signals(o->root, root_done);
        int was_done = root_done;
        reap(o, res, &root_done, t);
        if (o->attached && !root_done && root_ended(o->root)) {
            root_done = 1;
            res->root_end_ns = t;
        }
        if (rec_err) {
            if (root_done)
                break;
            next_sample = next_scan = t + SCAN_NS; /* only reaping and forwarding remain */
        } else {
            if (t >= next_sample) {
                size_t watched = 0;
                for (size_t i = 0; i < nprocs; i++)
                    watched += !procs[i]->dead;
                for (size_t i = 0; i < nprocs; i++) {
                    proc_sample_rss(procs[i], t);
                    if (!procs[i]->dead)
                        proc_sample_mem(procs[i], t, interval * MEM_EVERY, watched);
                }
                deadline_advance(&next_sample, interval, t);
            }
            /* When the root ends, look at once for descendants it left behind (now our children). */
            if (root_done && !was_done)
                final_scan = 1;
            if (t >= next_scan || final_scan) {
                /*
                 * The tracer follows every clone, fork, exec and exit: while it has seen none
                 * since the last scan, listing the tree and every image again (a quarter of
                 * the monitor's CPU) would find what is known, and the thread lists stand.
                 */
                uint64_t ev = o->tree_events ? o->tree_events(o->tree_ctx) : UINT64_MAX;
                int still = !final_scan && ev != UINT64_MAX && ev == scanned_events && t < scanned_t + SCAN_FULL_NS;
                final_scan = 0;
                if (!still) {
                    if (procfd >= 0)
                        scan(procfd, filesfd, t);
                    scanned_events = ev;
                    scanned_t = t;
                }
                for (size_t i = 0; i < nprocs; i++) {
                    if (procs[i]->dead)
                        continue;
                    if (!still)
                        proc_check_exec(procs[i], t);
                    else if (procs[i]->nlisted)
                        procs[i]->have_listed = 1;
                    proc_sample_threads(procs[i], t);
                }
                out_steal(statfd, t);
                out("C t=%llu self_cpu_ns=%llu\n", (unsigned long long)t, (unsigned long long)thread_cpu_ns());
                out_flush();
                if (t >= next_scan)
                    deadline_advance(&next_scan, SCAN_NS, t);
            }
            procs_compact(t);
            if (root_done && (nprocs == 0 || t >= res->root_end_ns + GRACE_NS))
                break;
        }
        uint64_t d = next_sample < next_scan ? next_sample : next_scan;
        if (o->deadline_ns && o->deadline_ns < d)
            d = o->deadline_ns;
        struct timespec ts = {(time_t)(d / 1000000000ULL), (long)(d % 1000000000ULL)};
        /* EINTR (a signal to forward) just wakes us early. */
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }

    /* Survivors are left running; their last state is already in the file. */
    while (nprocs)
        proc_free(procs[--nprocs], t, 0);
    out_steal(statfd, monitor_now_ns());
    out("C t=%llu self_cpu_ns=%llu\n", (unsigned long long)monitor_now_ns(), (unsigned long long)thread_cpu_ns());
    out_flush();
    if (statfd >= 0)
        close(statfd);
    if (rec && fclose(rec) != 0 && !rec_err)
        rec_err = errno ? errno : EIO;
    rec = NULL;
    res->recording_error = rec_err;
    if (procfd >= 0)
        close(procfd);
    if (filesfd >= 0)
        close(filesfd);
    return 0;
}
