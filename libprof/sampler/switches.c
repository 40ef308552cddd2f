/* switches.c: waits from the kernel's context-switch records: the places a tick classified, and off-CPU time split among the waits between ticks. */
#include <stdlib.h>
#include <string.h>

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

/* tid -> live thread, open addressing over every traced thread (rebuilt per drain). */
static void tidx_build(struct prof_sampler *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nprocs; i++)
        n += s->procs[i]->dead ? 0 : s->procs[i]->nthr;
    size_t cap = 64;
    while (cap < n * 2)
        cap *= 2;
    if (cap > s->tidx_cap) {
        struct sthr **t = realloc(s->tidx, cap * sizeof *t);
        if (!t) {
            s->tidx_cap = 0;
            return;
        }
        s->tidx = t;
        s->tidx_cap = cap;
    }
    memset(s->tidx, 0, s->tidx_cap * sizeof *s->tidx);
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        for (size_t k = 0; k < p->nthr && !p->dead; k++) {
            struct sthr *th = &p->thr[k];
            if (th->dead)
                continue;
            size_t j = ((size_t)th->tid * 2654435761U) & (s->tidx_cap - 1);
            while (s->tidx[j])
                j = (j + 1) & (s->tidx_cap - 1);
            s->tidx[j] = th;
        }
    }
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

void samp_switches_take(struct prof_sampler *s)
{
    const struct prof_pstk_switch *r;
    size_t n = prof_pstk_drain_switches(s->swr, &r);
    if (!n)
        return;
    tidx_build(s);
    for (size_t i = 0; i < n; i++) {
        struct sthr *th = tidx_find(s, r[i].tid);
        if (!th)
            continue; /* not ours (CPU-wide records see every task) */
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
        samp_bucket_add(s, p->pid, th->tid, c, stk, a, 0, part, 0);
    }
    if (w_open || left) {
        enum prof_tstate c = fb;
        uint64_t a = fb_addr;
        if (!blocked)
            site_find(p, th->sw_ip, th->sw_arg, &c, &a); /* back already; its switch-in not read yet */
        samp_bucket_add(s, p->pid, th->tid, c, stk, a, 0, left, 0);
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
