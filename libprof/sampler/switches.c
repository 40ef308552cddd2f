/* switches.c: waits from the kernel's context-switch records: the places a tick classified, and off-CPU time split among the waits between ticks. */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sampler_int.h"

/* ---- waits from the kernel's switch records ------------------------------------ */

/*
 * With switch records the tracer need not wake at the rate to split a thread's off-CPU
 * time among its waits: the kernel logs each switch-out to wait (with where the thread
 * left user mode: the syscall's return address and first argument: the descriptor, the
 * futex) and each switch-in. A tick still reads schedstat for the exact totals and
 * classifies the threads blocked at that moment, which teaches the process what each
 * place waits on; the waits that began and ended between two ticks are then attributed
 * by their place, pro rata to their length.
 */
static size_t site_slot(uint64_t ip, uint64_t arg)
{
    return (size_t)(((ip * 0x9E3779B97F4A7C15ULL) ^ (arg * 0xC2B2AE3D27D4EB4FULL)) >> 56) & (SW_SITES - 1);
}

#define SITE_PROBES 8

/* Open addressing over SITE_PROBES slots: places that hash alike must not evict each other
 * (two places of one loop sharing a slot would each forget the other at every tick).
 * 1 when the place was not known, or known to wait on something else. */
int samp_site_learn(struct sproc *p, uint64_t ip, uint64_t arg, enum prof_tstate st, uint64_t addr)
{
    if (!ip || (!p->sites && !(p->sites = calloc(SW_SITES, sizeof *p->sites))))
        return 0;
    size_t j = site_slot(ip, arg), put = j;
    for (int k = 0; k < SITE_PROBES; k++, j = (j + 1) & (SW_SITES - 1)) {
        const struct swsite *e = &p->sites[j];
        if (!e->used || (e->ip == ip && e->arg == arg)) {
            put = j;
            break;
        }
    }
    struct swsite *e = &p->sites[put];
    int news = !e->used || e->ip != ip || e->arg != arg || e->state != (uint8_t)st || e->addr != addr;
    *e = (struct swsite){.ip = ip, .arg = arg, .addr = addr, .state = (uint8_t)st, .used = 1};
    return news;
}

static int site_find(const struct sproc *p, uint64_t ip, uint64_t arg, enum prof_tstate *st, uint64_t *addr)
{
    if (!ip || !p->sites)
        return 0;
    size_t j = site_slot(ip, arg);
    for (int k = 0; k < SITE_PROBES; k++, j = (j + 1) & (SW_SITES - 1)) {
        const struct swsite *e = &p->sites[j];
        if (!e->used)
            return 0;
        if (e->ip == ip && e->arg == arg) {
            *st = (enum prof_tstate)e->state;
            *addr = e->addr;
            return 1;
        }
    }
    return 0;
}

static void acc_add(struct sthr *th, uint64_t ip, uint64_t arg, uint64_t ns)
{
    for (int i = 0; i < th->nacc; i++)
        if (th->acc[i].ip == ip && th->acc[i].arg == arg) {
            th->acc[i].ns += ns;
            th->acc[i].n++;
            return;
        }
    if (ip && th->nacc < SW_ACC)
        th->acc[th->nacc++] = (struct swacc){ip, arg, ns, 1};
    else {
        th->acc_rest += ns;
        th->acc_rest_n++;
    }
}

/* The self-report's figures for th's waits since the last tick, then forget them. A wait at
 * a place no tick has seen yet keeps the ticks at the rate (one without a place cannot be
 * learned by any tick, and does not). */
void samp_acc_done(struct prof_sampler *s, const struct sproc *p, struct sthr *th)
{
    s->sw_waits += th->acc_rest_n;
    for (int i = 0; i < th->nacc; i++) {
        enum prof_tstate c;
        uint64_t a;
        s->sw_waits += th->acc[i].n;
        if (site_find(p, th->acc[i].ip, th->acc[i].arg, &c, &a))
            s->sw_waits_known += th->acc[i].n;
        else
            s->sw_new = 1;
    }
    th->nacc = 0;
    th->acc_rest = th->acc_rest_n = 0;
}

/* An open-addressing table of pointers for n entries: *tab grown to a power of two at least
 * twice n and zeroed. 0, or -1 (and *cap 0: lookups find nothing) when it cannot grow. */
static int ptab_reset(void ***tab, size_t *cap, size_t n)
{
    size_t c = 64;
    while (c < n * 2)
        c *= 2;
    if (c > *cap) {
        void **t = realloc(*tab, c * sizeof *t);
        if (!t) {
            *cap = 0;
            return -1;
        }
        *tab = t;
        *cap = c;
    }
    memset(*tab, 0, *cap * sizeof **tab);
    return 0;
}

/* tid -> live thread, open addressing over every traced thread, and pid -> live process for
 * the records of threads not known yet (lazy_threads): rebuilt per drain. */
static void tidx_build(struct prof_sampler *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nprocs; i++)
        n += s->procs[i]->dead ? 0 : s->procs[i]->nthr;
    void **t = (void **)s->tidx, **q = (void **)s->pidx;
    int tok = ptab_reset(&t, &s->tidx_cap, n), pok = ptab_reset(&q, &s->pidx_cap, s->nprocs);
    s->tidx = (struct sthr **)t;
    s->pidx = (struct sproc **)q;
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        if (p->dead)
            continue;
        for (size_t k = 0; k < p->nthr && tok == 0; k++) {
            struct sthr *th = &p->thr[k];
            if (th->dead)
                continue;
            size_t j = ((size_t)th->tid * 2654435761U) & (s->tidx_cap - 1);
            while (s->tidx[j])
                j = (j + 1) & (s->tidx_cap - 1);
            s->tidx[j] = th;
        }
        if (pok == 0) {
            size_t j = ((size_t)p->pid * 2654435761U) & (s->pidx_cap - 1);
            while (s->pidx[j])
                j = (j + 1) & (s->pidx_cap - 1);
            s->pidx[j] = p;
        }
    }
}

static struct sproc *pidx_find(struct prof_sampler *s, pid_t pid)
{
    if (!s->pidx_cap)
        return NULL;
    for (size_t j = ((size_t)pid * 2654435761U) & (s->pidx_cap - 1); s->pidx[j]; j = (j + 1) & (s->pidx_cap - 1))
        if (s->pidx[j]->pid == pid)
            return s->pidx[j];
    return NULL;
}

static struct sthr *tidx_find(struct prof_sampler *s, pid_t tid)
{
    if (!s->tidx_cap)
        return NULL;
    for (size_t j = ((size_t)tid * 2654435761U) & (s->tidx_cap - 1); s->tidx[j]; j = (j + 1) & (s->tidx_cap - 1))
        if (s->tidx[j]->tid == tid)
            return s->tidx[j];
    return NULL;
}

/* ---- threads followed by their records (s->lazy_threads) ---------------------------- */

/*
 * Why: a traced thread costs its creator a clone stop, itself a first stop, and its exit a
 * third, each a wake-up of the tracer on the target's critical path (on this VM ~40 us, most
 * of it an idle CPU leaving halt): 5,000 short threads ran 3.1x slower under the sampler than
 * alone. With CPU-wide switch records the kernel already logs every thread of the tree at
 * every switch, without stopping it: a thread is known from its first switch-in, its CPU and
 * run-queue time are read off its records (exact, its whole life however short), and a
 * thread still alive at a tick is seized then, to be sampled like any other from that tick on.
 */

static int foreign_has(const struct prof_sampler *s, pid_t pid)
{
    if (!s->foreign_cap)
        return 0;
    for (size_t j = ((size_t)pid * 2654435761U) & (s->foreign_cap - 1); s->foreign[j]; j = (j + 1) & (s->foreign_cap - 1))
        if (s->foreign[j] == pid)
            return 1;
    return 0;
}

static void foreign_add(struct prof_sampler *s, pid_t pid)
{
    if (!s->foreign_cap && !(s->foreign = calloc(s->foreign_cap = 4096, sizeof *s->foreign))) {
        s->foreign_cap = 0;
        return;
    }
    if (s->foreign_n * 2 >= s->foreign_cap) { /* forget them all: pids are reused, the cache is only a cache */
        memset(s->foreign, 0, s->foreign_cap * sizeof *s->foreign);
        s->foreign_n = 0;
    }
    size_t j = ((size_t)pid * 2654435761U) & (s->foreign_cap - 1);
    while (s->foreign[j])
        j = (j + 1) & (s->foreign_cap - 1);
    s->foreign[j] = pid;
    s->foreign_n++;
}

/*
 * A process the records show that no event told of: a fork by a thread not seized yet (its
 * fork raised no event). Its parent is read once per pid; a process of the tree is taken
 * as samp_scan_tree takes one, anything else is remembered as not ours.
 */
static struct sproc *adopt_unknown(struct prof_sampler *s, pid_t pid)
{
    if (foreign_has(s, pid))
        return NULL;
    pid_t pp = samp_stat_ppid(pid, NULL);
    struct sproc *par = pp > 0 ? samp_proc_find(s, pp) : NULL;
    if (!par || pid == getpid()) {
        foreign_add(s, pid);
        return NULL;
    }
    /* Records drained after a process of the tree ended: its zombie is not a new process. */
    char st = samp_task_state(pid, pid);
    if (st == 'Z' || st == 'X' || st == 0)
        return NULL;
    struct sproc *p = samp_proc_add(s, pid, pp, now_ns());
    if (!p)
        return NULL;
    samp_proc_take_threads(s, p);
    samp_proc_python(s, p);
    return p;
}

/* Threads (and processes) the records show for the first time: added before the records are
 * read, in two passes, since adding a thread may move its process's thread array (and with
 * it what tidx points to). */
static void lazy_add(struct prof_sampler *s, const struct prof_pstk_switch *r, size_t n)
{
    size_t cap = 64;
    while (cap < n * 2)
        cap *= 2;
    /* tid -> the first record of a thread not known yet, and its process */
    struct cand {
        pid_t tid;
        uint64_t t;
        struct sproc *p;
    } *c = calloc(cap, sizeof *c);
    if (!c)
        return;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].pid <= 0 || tidx_find(s, r[i].tid))
            continue;
        struct sproc *p = pidx_find(s, r[i].pid);
        if (!p) {
            if (!(p = adopt_unknown(s, r[i].pid)))
                continue;
            tidx_build(s); /* the new process, with the threads it was seized with (no lazy one added yet) */
            if (tidx_find(s, r[i].tid))
                continue;
        }
        size_t j = ((size_t)r[i].tid * 2654435761U) & (cap - 1);
        while (c[j].tid && c[j].tid != r[i].tid)
            j = (j + 1) & (cap - 1);
        if (!c[j].tid) {
            c[j] = (struct cand){r[i].tid, r[i].time, p};
            nc++;
        }
    }
    for (size_t j = 0; j < cap && nc; j++) {
        if (!c[j].tid)
            continue;
        struct sthr *th = samp_thr_add_lazy(c[j].p, c[j].tid);
        if (!th)
            continue;
        th->have_base = 1;
        th->t = c[j].t;
        th->stack_cpu = (uint64_t)-1;
        s->lazy_seen++;
        s->sw_new = 1;
        if (s->o.task_new)
            s->o.task_new(s->o.task_ctx, c[j].p->pid, c[j].tid, 0);
    }
    free(c);
    if (nc)
        tidx_build(s);
}

/* A lazy thread's own record: its time on a CPU and waiting for one. */
static void lazy_record(struct sthr *th, const struct prof_pstk_switch *e)
{
    if (e->type == PROF_SW_WHERE)
        return;
    th->rec_last = e->time;
    switch (e->type) {
    case PROF_SW_IN:
        if (th->rec_pre && e->time > th->rec_pre)
            th->rec_runq += e->time - th->rec_pre;
        th->rec_pre = 0;
        th->rec_in = e->time;
        break;
    case PROF_SW_PREEMPTED:
    case PROF_SW_WAIT:
        if (th->rec_in && e->time > th->rec_in)
            th->rec_cpu += e->time - th->rec_in;
        th->rec_in = 0;
        th->rec_pre = e->type == PROF_SW_PREEMPTED ? e->time : 0;
        break;
    default:
        break;
    }
}

/*
 * Who is on each CPU, for the one switch-out a record cannot name: a thread that exited reads
 * pid and tid 0 in its last record (it has left the pid tables by then), so its final time on
 * a CPU ends at the first switch-out of that CPU after its switch-in. 0 when r was that
 * nameless switch-out, now handed to its thread.
 */
static int lazy_on_cpu(struct prof_sampler *s, const struct prof_pstk_switch *r)
{
    if (r->cpu >= s->sw_ncur) {
        size_t nc = (size_t)r->cpu + 1 > 64 ? (size_t)r->cpu + 1 : 64;
        pid_t *c = realloc(s->sw_cur, nc * sizeof *c);
        if (!c)
            return r->type != PROF_SW_ENDED;
        memset(c + s->sw_ncur, 0, (nc - s->sw_ncur) * sizeof *c);
        s->sw_cur = c;
        s->sw_ncur = nc;
    }
    pid_t *cur = &s->sw_cur[r->cpu];
    if (r->type == PROF_SW_IN) {
        *cur = r->tid;
        return 1;
    }
    if (r->type != PROF_SW_ENDED) {
        if (r->type != PROF_SW_WHERE)
            *cur = 0;
        return 1;
    }
    struct sthr *th = *cur ? tidx_find(s, *cur) : NULL;
    *cur = 0;
    if (th && th->lazy) {
        struct prof_pstk_switch e = *r;
        e.type = PROF_SW_WAIT;
        lazy_record(th, &e);
    }
    return 0;
}

/* Is lazy thread th still alive? When not, it is marked ending: its last records (a task's final
 * switch-out comes after the drain that found it gone) are read at the next tick, then it is dropped. */
int samp_lazy_alive(struct prof_sampler *s, struct sproc *p, struct sthr *th)
{
    (void)s;
    if (th->lazy_ending)
        return 0;
    if (syscall(SYS_tgkill, (long)p->pid, (long)th->tid, 0L) == 0)
        return 1;
    th->lazy_ending = 1;
    return 0;
}

/* A lazy thread at a tick: its records' figures into the buckets; alive, it is seized. final:
 * its process has ended, or the sampler stops: its figures up to t, and it is dropped. */
void samp_lazy_tick(struct prof_sampler *s, struct sproc *p, struct sthr *th, uint64_t t, int final)
{
    int was_ending = th->lazy_ending || final;
    int alive = samp_lazy_alive(s, p, th);
    uint64_t tr = alive ? t : th->rec_last;
    if (tr < th->t)
        tr = th->t;
    uint64_t dcpu = th->rec_cpu, drunq = th->rec_runq;
    int on_cpu = th->rec_in != 0;
    if (alive && th->rec_in && tr > th->rec_in) {
        dcpu += tr - th->rec_in;
        th->rec_in = tr;
    }
    if (alive && th->rec_pre && tr > th->rec_pre) {
        drunq += tr - th->rec_pre;
        th->rec_pre = tr;
    }
    th->rec_cpu = th->rec_runq = 0;
    uint64_t dt = tr - th->t;
    samp_bucket_add(s, p, th, PROF_TS_RUNNING, th->stack, 0, alive && on_cpu, dcpu, 0);
    samp_bucket_add(s, p, th, PROF_TS_RUNQ, th->stack, 0, 0, drunq, 0);
    uint64_t off = samp_off_cpu(th, dt, dcpu, drunq);
    if (off && !samp_switches_split(s, p, th, tr, off, 0, PROF_TS_RUNNING, 0, th->stack))
        samp_bucket_add(s, p, th, th->blocked, th->blocked_stack, th->blocked_addr, 0, off, 0);
    samp_span_interval(s, p, th, th->t, tr, th->state, alive && on_cpu ? PROF_TS_RUNNING : th->blocked);
    samp_acc_done(s, p, th);
    th->t = tr;
    if (!alive || final) {
        if (was_ending)
            samp_thr_gone(th);
        return;
    }
    if (samp_seize(s, th->tid) != 0)
        return; /* gone meanwhile (dropped at the next tick), or traced by another: timed from records */
    th->lazy = 0;
    th->seized = 1;
    s->lazy_seized++;
    samp_thr_open_files(p, th);
    uint64_t cpu, runq;
    if (samp_read_schedstat(th, &cpu, &runq) == 0) {
        /* From here on its schedstat: the records have accounted everything before. */
        th->cpu = cpu;
        th->runq = runq;
        th->t = now_ns();
    } else {
        th->have_base = 0;
    }
    th->classified = 0;
}

/* p has ended (or the sampler stops): the records of its lazy threads read now, while p is
 * still in the tables; the last of its threads were gone before any tick read them. */
void samp_lazy_finish(struct prof_sampler *s, struct sproc *p)
{
    if (!s->lazy_threads || !s->swr)
        return;
    samp_switches_take(s);
    uint64_t t = now_ns();
    for (size_t k = 0; k < p->nthr; k++)
        if (p->thr[k].lazy && !p->thr[k].dead)
            samp_lazy_tick(s, p, &p->thr[k], t, 1);
}

void samp_switches_take(struct prof_sampler *s)
{
    const struct prof_pstk_switch *r;
    size_t n = prof_pstk_drain_switches(s->swr, &r);
    if (!n)
        return;
    tidx_build(s);
    if (s->lazy_threads)
        lazy_add(s, r, n);
    for (size_t i = 0; i < n; i++) {
        if (s->lazy_threads && !lazy_on_cpu(s, &r[i]))
            continue;
        struct sthr *th = tidx_find(s, r[i].tid);
        if (!th)
            continue; /* not ours (CPU-wide records see every task) */
        if (th->lazy)
            lazy_record(th, &r[i]);
        s->sw_records++;
        th->sw_tick = s->ticks;
        if (r[i].type != PROF_SW_WHERE)
            th->sw_last = r[i].type;
        switch (r[i].type) {
        case PROF_SW_WHERE:
            th->where_ip = r[i].ip;
            th->where_arg = r[i].arg0;
            th->where_sp = r[i].sp;
            th->where_t = r[i].time;
            break;
        case PROF_SW_WAIT:
            th->sw_open = 1;
            th->sw_start = r[i].time;
            /* The sample is written just before the record of the same switch. */
            th->sw_ip = th->where_t && r[i].time - th->where_t < 100000 ? th->where_ip : 0;
            th->sw_arg = th->sw_ip ? th->where_arg : 0;
            th->sw_sp = th->sw_ip ? th->where_sp : 0;
            break;
        case PROF_SW_IN:
            if (th->sw_open && r[i].time > th->sw_start && th->have_base) {
                /* Only the part after the thread's last tick: the part before was accounted then. */
                uint64_t from = th->sw_start > th->t ? th->sw_start : th->t;
                if (r[i].time > from)
                    acc_add(th, th->sw_ip, th->sw_arg, r[i].time - from);
            }
            th->sw_open = 0;
            break;
        default:
            break;
        }
    }
}

/*
 * Split off (ns) of th's interval ending at tr among its waits since the last tick, by
 * the switch records: each wait's cause is what a tick saw at its place; the wait still
 * going on is the one classified now (st, addr, when blocked). 0 when the records say
 * nothing about this interval (the caller attributes off as without them).
 */
int samp_switches_split(struct prof_sampler *s, struct sproc *p, struct sthr *th, uint64_t tr, uint64_t off,
                        int blocked, enum prof_tstate st, uint64_t addr, uint32_t stack)
{
    uint64_t w_open = 0;
    if (th->sw_open) {
        uint64_t from = th->sw_start > th->t ? th->sw_start : th->t;
        w_open = tr > from ? tr - from : 0;
    }
    uint64_t total = w_open + th->acc_rest;
    for (int i = 0; i < th->nacc; i++)
        total += th->acc[i].ns;
    if (!total)
        return 0;
    /* A wait whose place no tick has seen yet: the latest cause known for the thread. */
    enum prof_tstate fb = blocked ? st : th->blocked;
    uint64_t fb_addr = blocked ? addr : th->blocked_addr;
    uint32_t stk = blocked ? stack : th->blocked_stack;
    uint64_t left = off;
    for (int i = 0; i <= th->nacc; i++) {
        uint64_t w = i < th->nacc ? th->acc[i].ns : th->acc_rest;
        if (!w)
            continue;
        enum prof_tstate c = fb;
        uint64_t a = fb_addr;
        if (i < th->nacc)
            site_find(p, th->acc[i].ip, th->acc[i].arg, &c, &a);
        uint64_t part = (uint64_t)((double)off * (double)w / (double)total);
        if (part > left)
            part = left;
        left -= part;
        samp_bucket_add(s, p, th, c, stk, a, 0, part, 0);
    }
    if (w_open || left) {
        enum prof_tstate c = fb;
        uint64_t a = fb_addr;
        if (!blocked)
            site_find(p, th->sw_ip, th->sw_arg, &c, &a); /* back already; its switch-in not read yet */
        samp_bucket_add(s, p, th, c, stk, a, 0, left, 0);
    }
    return 1;
}

/* The syscall of a wait site th's stack was taken at, at the place its latest switch-out
 * sample gives (pc and sp, as /proc's syscall file has them). 1 and *nr, or 0. */
static int wait_site_of(const struct sthr *th, long *nr)
{
    for (int i = 0; th->ws && th->sw_ip && i < WAIT_SITES; i++)
        if (th->ws[i].n && th->ws[i].pc == th->sw_ip && th->ws[i].sp == th->sw_sp) {
            *nr = th->ws[i].nr;
            return 1;
        }
    return 0;
}

/*
 * With every switch recorded (none lost), a thread's state now follows from its records,
 * without the two /proc reads of classify(): one that has not switched since a tick saw it
 * on a CPU (or runnable) is still there; one whose latest record is a switch-in runs; one
 * preempted waits for a CPU (the caller tells runnable from running by schedstat, as after
 * classify); one switched out to wait at a place a tick has classified waits on what waits
 * there. Anything else (a wait at a new place, or at no known place) is read and classified,
 * which is what teaches the places. With native stacks a wait is taken from the records only
 * at a place where a stack of the thread was taken before (the switch-out sample's pc and sp
 * are a wait site's): its stack is that site's if the callers' slots agree. Any other blocked
 * thread is read: its syscall (number, pc, sp, arguments) tells a new wait from the one its
 * stack is of. The records are as of the drain at the tick's start: a thread taken for
 * running may have blocked since, and is seen so at the next tick.
 */
int samp_states_by_records(struct prof_sampler *s, const struct sproc *p, struct sthr *th, enum prof_tstate *st,
                           uint64_t *addr)
{
    long nr = -1;
    /* Stacks by ptrace stops: a thread taken for running is stopped for its stack, so one that
     * blocked again since the records were drained would cost a stop its wait site spares. */
    if (!s->swr || !s->follow || !th->classified || (s->o.native && !s->pstk))
        return 0;
    int moved = th->sw_tick == s->ticks;
    if (!moved && (th->state == PROF_TS_RUNNING || th->state == PROF_TS_RUNQ))
        *st = th->state == PROF_TS_RUNQ ? PROF_TS_RUNNING : th->state; /* runnable: from schedstat again */
    else if (moved && (th->sw_last == PROF_SW_IN || th->sw_last == PROF_SW_PREEMPTED))
        *st = PROF_TS_RUNNING;
    else if (moved && th->sw_last == PROF_SW_WAIT && th->sw_open && (!s->o.native || wait_site_of(th, &nr)) &&
             site_find(p, th->sw_ip, th->sw_arg, st, addr))
        ;
    else
        return 0;
    if (*st == PROF_TS_RUNNING) {
        *addr = 0;
        th->sc.state = 0; /* as classify() has it for a running thread */
    } else if (nr >= 0) {
        /* The wait site's call, at the place the switch-out sample gives: its stack is then
         * that site's frames when its return-address slots still hold the same callers
         * (wait_site_frames), else taken by a stop, as after classify(). Of the arguments
         * only the first is known: a later classify() finds this wait new, never the same. */
        th->sc = (struct prof_syscall){.state = 1, .nr = nr, .pc = th->sw_ip, .sp = th->sw_sp};
        th->sc.args[0] = th->sw_arg;
        th->sc.args[1] = ~0ULL;
        th->sc_wait = th->sc;
    } else {
        th->sc.state = -1; /* the syscall was not read: the next classify() compares with nothing */
    }
    return 1;
}
