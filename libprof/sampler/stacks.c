/* stacks.c: native stacks (by a stop, by a copy of a blocked thread, from its wait sites, from the kernel's copies) and their ids in sampler.rec. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "sampler_int.h"
#include "format/monrec.h"

#define STACK_END_MARGIN 1024  /* copied above a thread's outermost frame (see native_stack) */

/* ---- string interning (stacks, modules) ----------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

/* id for key (1-based); *fresh = 1 when it was new. 0 on allocation failure. */
static uint32_t strtab_intern(struct strtab *t, const char *key, int *fresh)
{
    *fresh = 0;
    if (t->n * 2 >= t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 1024;
        char **nk = calloc(nc, sizeof *nk);
        uint32_t *ni = calloc(nc, sizeof *ni);
        if (!nk || !ni) {
            free(nk);
            free(ni);
            return 0;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->keys[i])
                continue;
            size_t j = hash_str(t->keys[i]) & (nc - 1);
            while (nk[j])
                j = (j + 1) & (nc - 1);
            nk[j] = t->keys[i];
            ni[j] = t->ids[i];
        }
        free(t->keys);
        free(t->ids);
        t->keys = nk;
        t->ids = ni;
        t->cap = nc;
    }
    size_t j = hash_str(key) & (t->cap - 1);
    while (t->keys[j]) {
        if (strcmp(t->keys[j], key) == 0)
            return t->ids[j];
        j = (j + 1) & (t->cap - 1);
    }
    char *k = strdup(key);
    if (!k)
        return 0;
    t->keys[j] = k;
    t->ids[j] = (uint32_t)++t->n;
    *fresh = 1;
    return t->ids[j];
}

void samp_strtab_free(struct strtab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t->ids);
    memset(t, 0, sizeof *t);
}

/* ---- stacks ---------------------------------------------------------------------- */

static int buf_reserve(struct prof_sampler *s, size_t need)
{
    if (need <= s->bufcap)
        return 0;
    size_t nc = s->bufcap ? s->bufcap : 4096;
    while (nc < need)
        nc *= 2;
    char *n = realloc(s->buf, nc);
    if (!n)
        return -1;
    s->buf = n;
    s->bufcap = nc;
    return 0;
}

static uint32_t module_id(struct prof_sampler *s, const char *path)
{
    int fresh;
    uint32_t id = strtab_intern(&s->modules, path, &fresh);
    if (fresh) {
        char e[PATH_MAX * 3 + 1];
        samp_out(s, "L id=%u path=%s\n", id, samp_esc(e, sizeof e, path));
    }
    return id;
}

/* Intern a stack (native frames of unw, Python frames) and return its id. */
uint32_t samp_stack_id(struct prof_sampler *s, struct sproc *p, const struct prof_unw_frame *nf, size_t nn,
                       const struct prof_py_thread *pt)
{
    if (!nn && (!pt || !pt->nframes))
        return 0;
    /* Fast path: a stack seen before is found by a hash of its frames, without building its text. */
    uint64_t h = (1469598103934665603ULL ^ (uint64_t)p->pid) * 1099511628211ULL ^ p->gen;
    for (size_t i = 0; i < nn; i++) {
        h = (h ^ nf[i].module) * 1099511628211ULL;
        h = (h ^ nf[i].offset) * 1099511628211ULL;
    }
    for (size_t i = 0; pt && i < pt->nframes; i++) {
        h = (h ^ (uint64_t)(uintptr_t)pt->frames[i].qualname) * 1099511628211ULL;
        h = (h ^ (uint64_t)(uintptr_t)pt->frames[i].file) * 1099511628211ULL;
        h = (h ^ (uint64_t)(unsigned)pt->frames[i].line) * 1099511628211ULL;
    }
    h |= 1; /* 0 marks an empty slot */
    if (s->fast_cap) {
        for (size_t j = h & (s->fast_cap - 1); s->fast[j].h; j = (j + 1) & (s->fast_cap - 1))
            if (s->fast[j].h == h)
                return s->fast[j].id;
    }
    size_t len = 0;
    if (buf_reserve(s, 64 + nn * 40 + (pt ? pt->nframes * 3 * 400 : 0)) < 0)
        return 0;
    char *b = s->buf;
    len += (size_t)sprintf(b + len, "native=");
    for (size_t i = 0; i < nn; i++) {
        const char *path = nf[i].module == UINT32_MAX ? NULL : prof_unw_module_path(p->unw, nf[i].module);
        if (path)
            len += (size_t)sprintf(b + len, "%s%u.%llx", i ? "," : "", module_id(s, path),
                                   (unsigned long long)nf[i].offset);
        else
            len += (size_t)sprintf(b + len, "%s-.%llx", i ? "," : "", (unsigned long long)nf[i].offset);
    }
    len += (size_t)sprintf(b + len, " py=");
    if (pt) {
        for (size_t i = 0; i < pt->nframes; i++) {
            const struct prof_py_frame *f = &pt->frames[i];
            char raw[700], e[2100];
            int m = snprintf(raw, sizeof raw, "%s\t%s\t%d", f->qualname ? f->qualname : (f->func ? f->func : "?"),
                             f->file ? f->file : "?", f->line);
            if (m < 0)
                continue;
            if (prof_rec_escape(e, sizeof e, raw, strlen(raw)) < 0)
                continue;
            len += (size_t)sprintf(b + len, "%s%s", i ? "," : "", e);
        }
    }
    int fresh;
    uint32_t id = strtab_intern(&s->stacks, b, &fresh);
    if (fresh)
        samp_out(s, "K id=%u %s\n", id, b);
    /* The hash is per process (module ids and CPython string addresses are): keyed with the pid. */
    if (id && (s->fast_n + 1) * 2 > s->fast_cap) {
        size_t nc = s->fast_cap ? s->fast_cap * 2 : 4096;
        struct fastent *nf2 = calloc(nc, sizeof *nf2);
        if (nf2) {
            for (size_t i = 0; i < s->fast_cap; i++) {
                if (!s->fast[i].h)
                    continue;
                size_t j = s->fast[i].h & (nc - 1);
                while (nf2[j].h)
                    j = (j + 1) & (nc - 1);
                nf2[j] = s->fast[i];
            }
            free(s->fast);
            s->fast = nf2;
            s->fast_cap = nc;
        }
    }
    if (id && (s->fast_n + 1) * 2 <= s->fast_cap) {
        size_t j = h & (s->fast_cap - 1);
        while (s->fast[j].h)
            j = (j + 1) & (s->fast_cap - 1);
        s->fast[j].h = h;
        s->fast[j].id = id;
        s->fast_n++;
    }
    return id;
}

/* Interrupt to resume: the stop window plus the time the thread took to reach its stop
 * (it runs meanwhile; under CPU contention it may first wait for a CPU). */
static void note_irq(struct prof_sampler *s, uint64_t ns)
{
    uint64_t us = ns / 1000;
    uint64_t b = us < STOP_HIST_US ? us : STOP_HIST_US + (us - STOP_HIST_US) / 100;
    s->irq_hist[b < STOP_HIST_N ? b : STOP_HIST_N]++;
    s->irqs++;
}

static void note_stop(struct prof_sampler *s, uint64_t ns)
{
    s->stops++;
    uint64_t us = ns / 1000;
    uint64_t b = us < STOP_HIST_US ? us : STOP_HIST_US + (us - STOP_HIST_US) / 100;
    s->stop_hist[b < STOP_HIST_N ? b : STOP_HIST_N]++;
    if (ns > s->stop_max)
        s->stop_max = ns;
}

/* Unwind a stack copy into fr, with the self-report's cost figures. */
static size_t unwind_snap(struct prof_sampler *s, struct sproc *p, const struct prof_unw_view *v,
                          struct prof_unw_frame *fr)
{
    uint64_t l0, l1, c0, c1, f0, f1, w0, w1, d0, d1, e0, e1;
    prof_unw_load_stats(p->unw, &l0, &c0);
    prof_unw_path_stats(p->unw, &f0, &w0);
    prof_unw_decode_stats(p->unw, &d0, &e0);
    uint64_t t1 = now_ns();
    size_t n = 0;
    if (prof_unw_unwind_view(p->unw, v, fr, s->slots, PROF_UNW_MAX_FRAMES, &n, &s->snap_whole) < 0)
        n = 0;
    uint64_t du = now_ns() - t1;
    /* A module's first use (its file opened, its unwind tables indexed) is counted apart:
     * it is paid once per module per process, not per frame. */
    prof_unw_load_stats(p->unw, &l1, &c1);
    prof_unw_path_stats(p->unw, &f1, &w1);
    prof_unw_decode_stats(p->unw, &d1, &e1);
    s->unw_load_ns += l1 - l0;
    s->unw_loads += c1 - c0;
    s->unw_fast += f1 - f0;
    s->unw_slow += w1 - w0;
    s->unw_decode_ns += d1 - d0;
    s->unw_decodes += e1 - e0;
    du = du > l1 - l0 ? du - (l1 - l0) : 0;
    s->unwind_ns += du;
    s->unwind_frames += n;
    /*
     * The per-frame distribution is of unwinding itself: a rule's first decode (its FDE
     * found and its CFA program run, ~1 us cold) is paid once per code address, like a
     * module's load, and is counted apart (unwind_decode_ns); unwind_ns includes it. A
     * short run of new code (a Python program importing) is mostly first decodes.
     */
    uint64_t dd = d1 - d0, steady = du > dd ? du - dd : 0;
    if (n) {
        uint64_t b = steady / n / 10;
        s->unw_hist[b < 1000 ? b : 1000]++;
        s->unws++;
    }
    return n;
}

/*
 * A thread's outermost frame (start_thread, _start) stays where it is for the thread's
 * life, so a whole stack says how much of it a copy needs: up to that frame, and a margin
 * for what libunwind reads there. The copy held the thread stopped: 64 KiB of a pthread's
 * stack made a stop 58-65 us here, 4 KiB 32-34. A stack not unwound to its end with a
 * copy so cut (another stack: a signal handler's, a coroutine's) is copied whole again.
 */
static void stack_end_learn(struct prof_sampler *s, struct sthr *th, size_t n)
{
    if (s->snap_whole && n >= 2 && n < PROF_UNW_MAX_FRAMES && s->slots[n - 2].addr > s->snap->sp)
        th->stack_end = s->slots[n - 2].addr + 8 + STACK_END_MARGIN;
    else if (!s->snap_whole)
        th->stack_end = 0;
}

/* Native frames of a seized thread: stop, copy, resume, then unwind. */
size_t samp_native_stack(struct prof_sampler *s, struct sproc *p, struct sthr *th, struct prof_unw_frame *fr)
{
    if (!s->o.native || !s->follow || !th->seized || th->listening)
        return 0;
    /* A vfork (or posix_spawn's CLONE_VFORK) parent stops only once its child has exec'd or
     * exited, and the child may be waiting for us: no stop is tried (interrupt_wait's bound).
     * A thread in execve is leaving its image: a stop would catch the new one against the
     * old maps (such stops held threads 30-80 us for nothing). */
    if (th->sc.state == 1 && (th->sc.nr == SYS_vfork || th->sc.nr == SYS_clone || th->sc.nr == SYS_clone3 ||
                              th->sc.nr == SYS_execve || th->sc.nr == SYS_execveat))
        return 0;
    if (!p->unw && prof_unw_open(p->pid, &p->unw) < 0) {
        p->unw = NULL;
        return 0;
    }
    uint64_t t0 = now_ns();
    if (!samp_interrupt_wait(s, th))
        return 0;
    /* Held stopped from the moment the stop was reported (the tracer runs at a higher
     * priority where allowed, so that is when the thread stopped) until it is resumed. */
    uint64_t ts = now_ns();
    int r = prof_unw_capture_to(p->unw, th->tid, s->snap, th->stack_end);
    ptrace(PTRACE_CONT, th->tid, 0, 0);
    uint64_t t1 = now_ns();
    note_stop(s, t1 - ts);
    note_irq(s, t1 - t0);
    if (r < 0) {
        s->errors++;
        return 0;
    }
    struct prof_unw_view v = {&s->snap->regs, s->snap->sp, s->snap->stack, s->snap->len, 0};
    size_t n = unwind_snap(s, p, &v, fr);
    stack_end_learn(s, th, n);
    return n;
}

/*
 * Native frames of a blocked thread, without stopping it: while it stays blocked (in a
 * system call, or a page fault) its user stack does not change, and /proc/TID/syscall gives
 * its pc and sp. The
 * stack is copied, then the thread is checked not to have run meanwhile: still in the same
 * call at the same pc and sp, and its schedstat CPU time (which grows at every switch-out)
 * still c0, the tick's reading, taken before the copy. rbp is not known there: only a stack the rules unwind
 * without it counts. 0: not taken (the caller stops the thread). A thread's first wait
 * cost a stop of 20-50 us, most of it the copy of a stack not yet known to be short.
 */
size_t samp_blocked_stack(struct prof_sampler *s, struct sproc *p, struct sthr *th, struct prof_unw_frame *fr,
                          uint64_t c0, int *woke)
{
    char buf[256];
    struct prof_syscall a, b;
    uint64_t c1, r1;
    *woke = 0;
    b.state = -2; /* not read yet */
    if (!s->o.native || !s->follow || th->fd_sys < 0 || samp_pread_text(th->fd_sys, buf, sizeof buf) <= 0 ||
        prof_syscall_parse(buf, &a) < 0)
        return 0;
    /* Running again since the tick saw it blocked: that wait is over, and a stop now would
     * take where it runs for where it waited. Blocked outside a system call (a page fault,
     * "-1 sp pc"), its stack holds still just the same. A thread in execve is leaving its
     * image (stack and maps alike): nothing to copy. */
    *woke = a.state == 0;
    if (a.state == 0 || (a.state == 1 && (a.nr == SYS_execve || a.nr == SYS_execveat)))
        return 0;
    if (!p->unw && prof_unw_open(p->pid, &p->unw) < 0) {
        p->unw = NULL;
        return 0;
    }
    if (prof_unw_copy_blocked(p->unw, th->tid, a.pc, a.sp, s->snap, th->stack_end) < 0 ||
        samp_pread_text(th->fd_sys, buf, sizeof buf) <= 0 || prof_syscall_parse(buf, &b) < 0 || b.state != a.state ||
        b.nr != a.nr || b.pc != a.pc || b.sp != a.sp || samp_read_schedstat(th, &c1, &r1) < 0 || c1 != c0) {
        *woke = b.state == 0;
        s->peeks_failed++;
        return 0;
    }
    struct prof_unw_view v = {&s->snap->regs, s->snap->sp, s->snap->stack, s->snap->len, 1};
    size_t n = unwind_snap(s, p, &v, fr);
    if (!n) {
        s->peeks_failed++;
        return 0;
    }
    s->peeks++;
    stack_end_learn(s, th, n);
    return n;
}

/*
 * Frames of a thread blocked where it blocked before, without stopping it: same syscall,
 * pc and sp, and every return-address slot of the frames found there still holding the
 * value the unwind read (one process_vm_readv, a remote iovec per slot). 0: not known
 * (*known says whether the site was, reached from other callers then); the caller stops
 * the thread.
 */
/*
 * Whether the ns return-address slots of wait site w still hold the values its unwind read.
 * They lie between sp and the outermost frame, a few KiB: read as one span when it is short,
 * as one remote iovec per slot otherwise. process_vm_readv pins the target's pages once per
 * iovec, so a slot apiece pinned the same 2-3 pages ~30 times. perf put process_vm_readv
 * at ~18% of the tracer's samples on cpu_threads_gil, whose threads wake and wait on the
 * GIL again at the same place between most ticks.
 */
#define SLOT_SPAN_MAX (16 * 1024)

static int wait_site_slots_hold(struct prof_sampler *s, struct sthr *th, const struct waitsite *w, size_t ns)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t k = 0; k < ns; k++) {
        if (!w->slots[k].addr)
            return 0;
        if (w->slots[k].addr < lo)
            lo = w->slots[k].addr;
        if (w->slots[k].addr + 8 > hi)
            hi = w->slots[k].addr + 8;
    }
    if (hi - lo <= SLOT_SPAN_MAX && hi - lo <= sizeof s->snap->stack) {
        /* The span, into the stop buffer (free between stops). */
        unsigned char *buf = s->snap->stack;
        struct iovec loc = {buf, hi - lo}, rem = {(void *)(uintptr_t)lo, hi - lo};
        if (process_vm_readv(th->tid, &loc, 1, &rem, 1, 0) != (ssize_t)(hi - lo))
            return 0;
        for (size_t k = 0; k < ns; k++) {
            uint64_t v;
            memcpy(&v, buf + (w->slots[k].addr - lo), sizeof v);
            if (v != w->slots[k].value)
                return 0;
        }
        return 1;
    }
    uint64_t vals[PROF_UNW_MAX_FRAMES];
    struct iovec rem[PROF_UNW_MAX_FRAMES];
    for (size_t k = 0; k < ns; k++) {
        rem[k].iov_base = (void *)(uintptr_t)w->slots[k].addr;
        rem[k].iov_len = sizeof vals[0];
    }
    struct iovec loc = {vals, ns * sizeof vals[0]};
    if (process_vm_readv(th->tid, &loc, 1, rem, ns, 0) != (ssize_t)(ns * sizeof vals[0]))
        return 0;
    for (size_t k = 0; k < ns; k++)
        if (vals[k] != w->slots[k].value)
            return 0;
    return 1;
}

size_t samp_wait_site_frames(struct prof_sampler *s, struct sthr *th, struct prof_unw_frame *fr, int *known)
{
    *known = 0;
    if (!th->ws || th->sc.state != 1)
        return 0;
    for (int i = 0; i < WAIT_SITES; i++) {
        struct waitsite *w = &th->ws[i];
        if (!w->n || w->nr != th->sc.nr || w->pc != th->sc.pc || w->sp != th->sc.sp)
            continue;
        *known = 1;
        size_t ns = w->n - 1;
        if (ns && !wait_site_slots_hold(s, th, w, ns))
            continue; /* the same site reached from other callers: maybe another entry */
        w->used = s->ticks;
        memcpy(fr, w->fr, w->n * sizeof *fr);
        s->waits_reused++;
        return w->n;
    }
    return 0;
}

/* Remember the frames a stop just found for the wait th->sc, if the stop caught the thread
 * still in it (same sp; pc after the syscall, or on it when the kernel rewound it for the
 * restart). The slots are those of the unwind that produced fr (s->slots). */
void samp_wait_site_keep(struct prof_sampler *s, struct sthr *th, const struct prof_unw_frame *fr, size_t n)
{
    /* A stack cut short (an unreadable frame, maps not yet read) is not one to reuse. */
    if (th->sc.state != 1 || n == 0 || !s->snap_whole || s->snap->regs.rsp != th->sc.sp ||
        (s->snap->regs.rip != th->sc.pc && s->snap->regs.rip + 2 != th->sc.pc))
        return;
    if (!th->ws && !(th->ws = calloc(WAIT_SITES, sizeof *th->ws)))
        return;
    /* An empty entry, else the least recently used (the same site reached from two
     * callers, as a loop that waits under one function then another, keeps both). */
    struct waitsite *w = &th->ws[0];
    for (int i = 0; i < WAIT_SITES && w->n; i++)
        if (!th->ws[i].n || th->ws[i].used < w->used)
            w = &th->ws[i];
    struct prof_unw_frame *nf = realloc(w->fr, n * sizeof *nf);
    if (nf)
        w->fr = nf;
    struct prof_unw_slot *nsl = n > 1 ? realloc(w->slots, (n - 1) * sizeof *nsl) : w->slots;
    if (nsl)
        w->slots = nsl;
    if (!nf || !nsl) {
        w->n = 0;
        return;
    }
    memcpy(w->fr, fr, n * sizeof *fr);
    if (n > 1)
        memcpy(w->slots, s->slots, (n - 1) * sizeof *nsl);
    w->nr = th->sc.nr;
    w->pc = th->sc.pc;
    w->sp = th->sc.sp;
    w->used = s->ticks;
    w->n = n;
}

/* ---- stacks copied by the kernel (perfstack.h) ------------------------------ */

/* Unwind a kernel copy of a thread's registers and stack top into fr (0 frames if p cannot be unwound). */
static size_t copy_unwind(struct prof_sampler *s, struct sproc *p, const struct user_regs_struct *regs,
                          uint64_t sp, const unsigned char *stack, size_t len, struct prof_unw_frame *fr)
{
    if (!p->unw && prof_unw_open(p->pid, &p->unw) < 0) {
        p->unw = NULL;
        return 0;
    }
    /* Unwound where the kernel's copy lies (the ring, or the thread's kept copy): 16 KiB
     * copied again per sample took a quarter as much CPU as the unwinding itself. */
    struct prof_unw_view v = {regs, sp, stack, len, 0};
    s->pstk_used++;
    return unwind_snap(s, p, &v, fr);
}

/* A perf sample: kept raw as the thread's latest (the newest wins). Only a tick that
 * finds the thread running unwinds it, once, however many samples came meanwhile. */
void samp_on_pstk(void *ctx, const struct prof_pstk_sample *smp)
{
    struct prof_sampler *s = ctx;
    struct sproc *p = NULL;
    struct sthr *th = samp_thr_find(s, smp->tid, &p);
    if (th)
        s->pstk_samples++;
    /* Unknown (its event not handled yet), exiting, or taken before its process's
     * latest exec (the frames belong to the old image): dropped. */
    if (!th || !p || p->pid != smp->pid || th->exiting || smp->time < p->exec_ns || !smp->len)
        return;
    if (s->pstk_batch) {
        /* Ticks slower than the samples: every copy is unwound now, each standing for a
         * sample period of the thread's CPU (split at the tick by count). */
        static struct prof_unw_frame bf[PROF_UNW_MAX_FRAMES];
        size_t nn = copy_unwind(s, p, &smp->regs, smp->sp, smp->stack, smp->len, bf);
        uint32_t id = nn ? samp_stack_id(s, p, bf, nn, NULL) : 0;
        if (!id)
            return;
        int i = 0;
        while (i < th->nbst && th->bst[i].id != id)
            i++;
        if (i == th->nbst) {
            if (th->nbst == BATCH_STACKS)
                i = BATCH_STACKS - 1; /* more distinct stacks in one tick than kept: the last slot takes them */
            else
                th->bst[th->nbst++] = (__typeof__(th->bst[0])){id, 0};
        }
        th->bst[i].n++;
        th->bst_last = id;
        th->pstk_new = 1;
        return;
    }
    if (!th->pcopy && !(th->pcopy = malloc(sizeof *th->pcopy)))
        return;
    struct pstk_copy *c = th->pcopy;
    c->regs = smp->regs;
    c->sp = smp->sp;
    c->len = smp->len < sizeof c->stack ? smp->len : sizeof c->stack;
    memcpy(c->stack, smp->stack, c->len);
    th->pstk_new = 1;
}

/* Unwind a thread's kept kernel copy into fr. */
size_t samp_pstk_unwind(struct prof_sampler *s, struct sproc *p, struct sthr *th, struct prof_unw_frame *fr)
{
    const struct pstk_copy *c = th->pcopy;
    return copy_unwind(s, p, &c->regs, c->sp, c->stack, c->len, fr);
}

/* Sample every thread known now; their later threads and children inherit the events. */
void samp_pstk_cover(struct prof_sampler *s)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        for (size_t k = 0; k < p->nthr && !p->dead; k++) {
            struct sthr *th = &p->thr[k];
            if (th->dead || th->pstk_own)
                continue;
            if (prof_pstk_attach(s->pstk, th->tid) == 0)
                th->pstk_own = 1;
            else
                th->pstk_fail = 1;
        }
    }
}
