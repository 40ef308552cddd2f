/* observe.c: the counters observer: one set of perf counters per task of the tree, opened and read from poolprof's own process into RUNDIR/counters.rec. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "counters/counters.h"
#include "format/ctrrec.h"
#include "format/monrec.h"
#include "prof.h"

#define READ_EVERY_NS 1000000000ull /* a live task's counts reach the file once a second */
#define OUT_BYTES 65536

struct ctask {
    pid_t pid, tid;             /* tid 0: a free slot of the hash */
    int fd[PROF_CTR_MAX];       /* -1: not open */
    uint64_t v[PROF_CTR_MAX][3]; /* last written: value, enabled, running */
    int written;                /* an R line was written */
};

struct prof_ctrs {
    pthread_mutex_t mu;
    int out;                    /* counters.rec, O_APPEND; -1 once recording stopped */
    int err;                    /* the errno that stopped it */
    char buf[OUT_BYTES];
    size_t len;
    struct prof_ctr_event ev[PROF_CTR_MAX];
    size_t n, nopen;            /* events; of them, those opened per task (perf or raw) */
    struct ctask *tab;          /* open addressing on tid; cap a power of two */
    size_t cap, used;
    long fd_budget;             /* descriptors we may still take */
    uint64_t refused;           /* tasks not counted: no descriptor left */
    uint64_t ended;             /* tasks gone before their counters could open (a short thread found late) */
    uint64_t next_read;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the file ------------------------------------------------------------------------------- */

static void out_flush(struct prof_ctrs *c)
{
    size_t off = 0;
    while (c->out >= 0 && off < c->len) {
        ssize_t w = write(c->out, c->buf + off, c->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            /* A full disk stops this recording, never the run. */
            c->err = w < 0 ? errno : EIO;
            close(c->out);
            c->out = -1;
            break;
        }
        off += (size_t)w;
    }
    c->len = 0;
}

__attribute__((format(printf, 2, 3))) static void out(struct prof_ctrs *c, const char *fmt, ...)
{
    if (c->out < 0)
        return;
    if (c->len > OUT_BYTES - 4096)
        out_flush(c);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->buf + c->len, OUT_BYTES - c->len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < OUT_BYTES - c->len)
        c->len += (size_t)n;
}

static const char *source_key(enum prof_ctr_source s)
{
    switch (s) {
    case PROF_CTR_SRC_PERF:
        return "perf";
    case PROF_CTR_SRC_RAW:
        return "raw";
    case PROF_CTR_SRC_PROC:
        return "proc";
    default:
        return "none";
    }
}

static int opened_here(const struct prof_ctr_event *e)
{
    return e->source == PROF_CTR_SRC_PERF || e->source == PROF_CTR_SRC_RAW;
}

/* ---- the task table ---------------------------------------------------------------------------- */

static size_t slot_of(const struct prof_ctrs *c, pid_t tid)
{
    size_t i = ((size_t)tid * 2654435761u) & (c->cap - 1);
    while (c->tab[i].tid && c->tab[i].tid != tid)
        i = (i + 1) & (c->cap - 1);
    return i;
}

static int grow(struct prof_ctrs *c)
{
    size_t ncap = c->cap ? c->cap * 2 : 256;
    struct ctask *nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return -1;
    struct ctask *old = c->tab;
    size_t ocap = c->cap;
    c->tab = nt;
    c->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].tid)
            c->tab[slot_of(c, old[i].tid)] = old[i];
    free(old);
    return 0;
}

static void task_close(struct prof_ctrs *c, struct ctask *k)
{
    for (size_t i = 0; i < c->n; i++)
        if (k->fd[i] >= 0) {
            close(k->fd[i]);
            k->fd[i] = -1;
            c->fd_budget++;
        }
}

/* Remove slot i, moving later members of its probe run back so lookups still find them. */
static void slot_remove(struct prof_ctrs *c, size_t i)
{
    c->tab[i].tid = 0;
    c->used--;
    for (size_t j = (i + 1) & (c->cap - 1); c->tab[j].tid; j = (j + 1) & (c->cap - 1)) {
        struct ctask k = c->tab[j];
        c->tab[j].tid = 0;
        c->tab[slot_of(c, k.tid)] = k;
    }
}

/* Read the task's counters; write an R line when something changed (or force). */
static void task_read(struct prof_ctrs *c, struct ctask *k, uint64_t t, int force)
{
    char line[PROF_CTR_MAX * 72 + 64];
    size_t len = 0;
    int changed = force && !k->written;

    for (size_t i = 0; i < c->n; i++) {
        if (k->fd[i] < 0) {
            len += (size_t)snprintf(line + len, sizeof line - len, "%s-", i ? "," : "");
            continue;
        }
        uint64_t r[3];
        if (read(k->fd[i], r, sizeof r) == (ssize_t)sizeof r && memcmp(r, k->v[i], sizeof r) != 0) {
            memcpy(k->v[i], r, sizeof r);
            changed = 1;
        }
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%llu/%llu/%llu", i ? "," : "",
                                (unsigned long long)k->v[i][0], (unsigned long long)k->v[i][1],
                                (unsigned long long)k->v[i][2]);
    }
    if (changed) {
        out(c, "R t=%llu tid=%d v=%s\n", (unsigned long long)t, (int)k->tid, line);
        k->written = 1;
    }
}

static int task_alive(const struct ctask *k)
{
    return !(syscall(SYS_tgkill, k->pid, k->tid, 0) < 0 && errno == ESRCH);
}

/* ---- entry points ---------------------------------------------------------------------------- */

int prof_ctrs_start(const char *rundir, const struct prof_ctr_event *ev, size_t n, struct prof_ctrs **outp)
{
    char path[PATH_MAX], name[PROF_CTR_NAME_BYTES * 3 + 1], fstr[PROF_CTR_NAME_BYTES * 3 + 1],
        reason[PROF_CTR_REASON_BYTES * 3 + 1];

    *outp = NULL;
    if (n > PROF_CTR_MAX)
        return PROF_ERANGE;
    struct prof_ctrs *c = calloc(1, sizeof *c);
    if (!c)
        return PROF_ENOMEM;
    if (snprintf(path, sizeof path, "%s/%s", rundir, PROF_CTRREC_FILE) >= (int)sizeof path) {
        free(c);
        return PROF_ERANGE;
    }
    c->out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (c->out < 0) {
        int e = errno;
        free(c);
        return prof_err_from_errno(e);
    }
    pthread_mutex_init(&c->mu, NULL);
    memcpy(c->ev, ev, n * sizeof *ev);
    c->n = n;
    for (size_t i = 0; i < n; i++)
        c->nopen += opened_here(&ev[i]);
    /* A quarter of what the limit leaves: the monitor keeps three descriptors per thread too. */
    struct rlimit rl;
    c->fd_budget = 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        c->fd_budget = (long)rl.rlim_cur / 4;
    if (grow(c) < 0) {
        close(c->out);
        free(c);
        return PROF_ENOMEM;
    }
    uint64_t t = now_ns();
    out(c, "V version=%d\n", PROF_CTRREC_VERSION);
    for (size_t i = 0; i < n; i++) {
        const struct prof_ctr_event *e = &ev[i];
        prof_rec_escape(name, sizeof name, e->name, strlen(e->name));
        prof_rec_escape(fstr, sizeof fstr, e->fstr, strlen(e->fstr));
        prof_rec_escape(reason, sizeof reason, e->reason, strlen(e->reason));
        out(c,
            "E i=%zu name=%s fstr=%s type=%u config=%llu config1=%llu config2=%llu user_only=%d source=%s role=%s "
            "hw=%d default=%d reason=%s\n",
            i, name, fstr, e->attr.type, (unsigned long long)e->attr.config, (unsigned long long)e->attr.config1,
            (unsigned long long)e->attr.config2, e->attr.exclude_kernel, source_key(e->source),
            prof_ctr_role_key(e->role), e->hardware, e->is_default, reason);
    }
    out_flush(c);
    c->next_read = t + READ_EVERY_NS;
    *outp = c;
    return 0;
}

void prof_ctrs_task(void *cv, pid_t pid, pid_t tid, int born)
{
    struct prof_ctrs *c = cv;
    if (!c || tid <= 0 || !c->nopen)
        return;
    pthread_mutex_lock(&c->mu);
    if ((c->used + 1) * 2 > c->cap && grow(c) < 0)
        goto done;
    size_t s = slot_of(c, tid);
    if (c->tab[s].tid) {
        /* Known. Its pid may have been reused by a new task of the same number after the old one
         * ended between two scans; then the old counts are final and the new task starts afresh. */
        if (c->tab[s].pid == pid || task_alive(&c->tab[s]))
            goto done;
        uint64_t t = now_ns();
        task_read(c, &c->tab[s], t, 1);
        out(c, "X t=%llu tid=%d\n", (unsigned long long)t, (int)tid);
        task_close(c, &c->tab[s]);
        slot_remove(c, s);
        s = slot_of(c, tid);
    }
    if (c->fd_budget < (long)c->nopen) {
        c->refused++;
        out(c, "L t=%llu what=descriptors tasks=%llu\n", (unsigned long long)now_ns(), (unsigned long long)c->refused);
        goto done;
    }
    struct ctask *k = &c->tab[s];
    memset(k, 0, sizeof *k);
    k->pid = pid;
    k->tid = tid;
    c->used++;
    uint64_t mask = 0, t = now_ns();
    int sw_lead = -1;
    for (size_t i = 0; i < PROF_CTR_MAX; i++)
        k->fd[i] = -1;
    for (size_t i = 0; i < c->n; i++) {
        if (!opened_here(&c->ev[i]))
            continue;
        /*
         * Software events go in one group: the kernel then switches them in and out together,
         * which cost a pinned ping-pong 1.4 us a context switch with four of them instead of
         * 2.0 us apart (bench/ctr_switch.c). Hardware events stay apart: a group of more than the
         * PMU's counters would never be scheduled, and each is scaled on its own.
         */
        int group = c->ev[i].hardware ? -1 : sw_lead;
        int fd = prof_ctr_sys_open_task(&c->ev[i].attr, tid, group);
        if (fd == -ESRCH) {
            /* Not a refusal: the task ended before we got to it. Counted once, not per event. */
            c->ended++;
            out(c, "L t=%llu what=ended tasks=%llu\n", (unsigned long long)t, (unsigned long long)c->ended);
            break;
        }
        if (fd < 0) {
            out(c, "F t=%llu pid=%d tid=%d i=%zu err=%d\n", (unsigned long long)t, (int)pid, (int)tid, i, -fd);
            continue;
        }
        k->fd[i] = fd;
        if (!c->ev[i].hardware && sw_lead < 0)
            sw_lead = fd;
        c->fd_budget--;
        mask |= 1ull << i;
    }
    if (mask)
        out(c, "O t=%llu pid=%d tid=%d born=%d open=%llu\n", (unsigned long long)t, (int)pid, (int)tid, born ? 1 : 0,
            (unsigned long long)mask);
    else {
        task_close(c, k);
        /* Gone already, or refused: nothing to keep (the F lines say why). */
        slot_remove(c, s);
    }
done:
    pthread_mutex_unlock(&c->mu);
}

/* Under the lock: tasks gone get their final counts; every second, the live ones' counts. */
static void poll_locked(struct prof_ctrs *c, int all)
{
    uint64_t t = now_ns();
    int periodic = all || t >= c->next_read;

    for (size_t i = 0; i < c->cap; i++) {
        struct ctask *k = &c->tab[i];
        if (!k->tid)
            continue;
        /* Alive first, then read: a task found gone has stopped counting, so this read is its last. */
        int alive = task_alive(k);
        if (alive && !periodic)
            continue;
        task_read(c, k, t, !alive);
        if (alive)
            continue;
        out(c, "X t=%llu tid=%d\n", (unsigned long long)t, (int)k->tid);
        task_close(c, k);
        slot_remove(c, i);
        i--; /* the removal may have moved a later task into slot i */
    }
    if (periodic)
        c->next_read = t + READ_EVERY_NS;
    out_flush(c);
}

void prof_ctrs_poll(void *cv)
{
    struct prof_ctrs *c = cv;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    poll_locked(c, 0);
    pthread_mutex_unlock(&c->mu);
}

int prof_ctrs_stop(struct prof_ctrs *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    poll_locked(c, 1);
    for (size_t i = 0; i < c->cap; i++)
        if (c->tab[i].tid)
            task_close(c, &c->tab[i]);
    out_flush(c);
    int err = c->err ? prof_err_from_errno(c->err) : 0;
    if (c->out >= 0)
        close(c->out);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    free(c->tab);
    free(c);
    return err;
}
