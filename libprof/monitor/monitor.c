/* monitor.c: the monitor's loop and entry points: it samples and scans the target's tree on its own clock, reaps, forwards signals and decides when watching ends. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monitor/monitor_int.h"

#define SCAN_NS 100000000ULL  /* tree discovery, exec detection, thread figures, flush */
#define SCAN_FULL_NS 1000000000ULL /* ...discovery and exec detection at least this often when a tracer says nothing changed */
#define GRACE_NS 2000000000ULL /* how long the rest of the tree may outlive the root */
#define MEM_EVERY 20          /* smaps_rollup is costly: at most every 20th interval (PSS moves slowly) */

static volatile sig_atomic_t pending[NSIG];

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
        struct mproc *p = mon_rec_err ? NULL : mon_proc_find(pid, NULL);
        mon_out("Z t=%llu pid=%d status=%d\n", (unsigned long long)handed[i].t, (int)pid, handed[i].status);
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
        else if (next <= mon_nprocs)
            r0 = waitid(P_PID, (id_t)mon_procs[next - 1]->pid, &si, WEXITED | WNOHANG | WNOWAIT | __WNOTHREAD);
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
        struct mproc *p = mon_rec_err ? NULL : mon_proc_find(pid, NULL);
        if (p)
            mon_proc_sample_threads(p, t);
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
        mon_out("Z t=%llu pid=%d status=%d\n", (unsigned long long)t, (int)pid, status);
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
    mon_fd_budget = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        mon_fd_budget = (long)rl.rlim_cur;
    mon_fd_budget -= 64; /* for one-shot opens, the record file and the merge */

    mon_task_seen = o->task_seen;
    mon_ctr_ctx = o->ctr_ctx;
    int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/proc", o->rundir);
    int filesfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    int statfd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    uint64_t t = monitor_now_ns();
    mon_out_steal(statfd, t);
    mon_proc_track(o->root, 0, t, o);
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
        if (mon_rec_err) {
            if (root_done)
                break;
            next_sample = next_scan = t + SCAN_NS; /* only reaping and forwarding remain */
        } else {
            if (t >= next_sample) {
                size_t watched = 0;
                for (size_t i = 0; i < mon_nprocs; i++)
                    watched += !mon_procs[i]->dead;
                for (size_t i = 0; i < mon_nprocs; i++) {
                    mon_proc_sample_rss(mon_procs[i], t);
                    if (!mon_procs[i]->dead)
                        mon_proc_sample_mem(mon_procs[i], t, interval * MEM_EVERY, watched);
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
                        mon_scan(procfd, filesfd, t);
                    scanned_events = ev;
                    scanned_t = t;
                }
                for (size_t i = 0; i < mon_nprocs; i++) {
                    if (mon_procs[i]->dead)
                        continue;
                    if (!still)
                        mon_proc_check_exec(mon_procs[i], t);
                    else if (mon_procs[i]->nlisted)
                        mon_procs[i]->have_listed = 1;
                    mon_proc_sample_threads(mon_procs[i], t);
                }
                mon_out_steal(statfd, t);
                if (o->scanned)
                    o->scanned(o->ctr_ctx);
                mon_out("C t=%llu self_cpu_ns=%llu\n", (unsigned long long)t, (unsigned long long)mon_thread_cpu_ns());
                mon_out_flush();
                if (t >= next_scan)
                    deadline_advance(&next_scan, SCAN_NS, t);
            }
            mon_procs_compact(t);
            if (root_done && (mon_nprocs == 0 || t >= res->root_end_ns + GRACE_NS))
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
    while (mon_nprocs)
        mon_proc_free(mon_procs[--mon_nprocs], t, 0);
    mon_out_steal(statfd, monitor_now_ns());
    mon_out("C t=%llu self_cpu_ns=%llu\n", (unsigned long long)monitor_now_ns(), (unsigned long long)mon_thread_cpu_ns());
    mon_out_flush();
    if (statfd >= 0)
        close(statfd);
    res->recording_error = mon_record_close();
    if (procfd >= 0)
        close(procfd);
    if (filesfd >= 0)
        close(filesfd);
    return 0;
}
