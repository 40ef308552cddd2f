/* samprec_write.c: writes sampler.rec: its record lines, the sample buckets, and their flush with the tracer's self-report. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sampler_int.h"
#include "format/monrec.h"

/* ---- record output ------------------------------------------------------- */

void samp_out(struct prof_sampler *s, const char *fmt, ...)
{
    if (!s->rec || s->rec_err)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(s->rec, fmt, ap) < 0)
        s->rec_err = errno ? errno : EIO;
    va_end(ap);
}

void samp_flush_file(struct prof_sampler *s)
{
    if (s->rec && !s->rec_err && fflush(s->rec) != 0)
        s->rec_err = errno ? errno : EIO;
}

/* Escape into a static-per-call buffer owned by the caller. */
const char *samp_esc(char *dst, size_t cap, const char *src)
{
    if (prof_rec_escape(dst, cap, src, strlen(src)) < 0)
        dst[cap - 1] = '\0';
    return dst;
}

/* ---- sample buckets --------------------------------------------------------- */

void samp_bucket_add(struct prof_sampler *s, const struct sproc *p, struct sthr *th, enum prof_tstate st,
                     uint32_t stack, uint64_t addr, uint64_t n, uint64_t ns, uint64_t held)
{
    pid_t pid = p->pid, tid = th->tid;
    if (!n && !ns)
        return;
    th->span_bal[st] += (int64_t)ns; /* the same time, for the timeline (samp_span_interval) */
    if (s->nb * 2 >= s->capb) {
        size_t nc = s->capb ? s->capb * 2 : 1024;
        struct bucket *nbk = calloc(nc, sizeof *nbk);
        if (!nbk)
            return;
        for (size_t i = 0; i < s->capb; i++) {
            struct bucket *b = &s->buckets[i];
            if (!b->used)
                continue;
            uint64_t h = ((uint64_t)b->tid * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)b->stack << 8) ^ b->state ^ b->addr;
            size_t j = h & (nc - 1);
            while (nbk[j].used)
                j = (j + 1) & (nc - 1);
            nbk[j] = *b;
        }
        free(s->buckets);
        s->buckets = nbk;
        s->capb = nc;
    }
    uint64_t h = ((uint64_t)tid * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)stack << 8) ^ (uint64_t)st ^ addr;
    size_t j = h & (s->capb - 1);
    while (s->buckets[j].used) {
        struct bucket *b = &s->buckets[j];
        if (b->tid == tid && b->pid == pid && b->state == st && b->stack == stack && b->addr == addr) {
            b->n += n;
            b->ns += ns;
            b->held += held;
            return;
        }
        j = (j + 1) & (s->capb - 1);
    }
    struct bucket *b = &s->buckets[j];
    *b = (struct bucket){.pid = pid, .tid = tid, .state = (uint8_t)st, .stack = stack, .addr = addr, .n = n, .ns = ns, .held = held, .used = 1};
    s->nb++;
}

/* ---- the timeline: S lines ------------------------------------------------------ */

/* A new span is at least this long: a run-queue wait of a few microseconds at every tick would
 * otherwise be a line of its own. Shorter time is carried until it adds up (span_bal), so the
 * spans' time per state stays the C lines' (within this much per state at the thread's end). */
#define SPAN_MIN_NS 1000000LL

static void span_write(struct prof_sampler *s, const struct sproc *p, struct sthr *th)
{
    if (th->span_open && th->span_t1 > th->span_t0)
        samp_out(s, "S pid=%d tid=%d t0=%llu t1=%llu state=%s\n", (int)p->pid, (int)th->tid,
                 (unsigned long long)th->span_t0, (unsigned long long)th->span_t1,
                 prof_tstate_name(th->span_state));
    th->span_open = 0;
}

/* [a, b) of th in state st: extends the open span when it continues it, else closes it (a line). */
static void span_seg(struct prof_sampler *s, const struct sproc *p, struct sthr *th, enum prof_tstate st,
                     uint64_t a, uint64_t b)
{
    th->span_bal[st] -= (int64_t)(b - a);
    if (th->span_open && th->span_t1 == a && th->span_state == st) {
        th->span_t1 = b;
        return;
    }
    span_write(s, p, th);
    th->span_open = 1;
    th->span_state = (uint8_t)st;
    th->span_t0 = a;
    th->span_t1 = b;
}

/*
 * The interval [t0, t1) just accounted for th (its buckets added to span_bal): laid out as
 * spans. Which order the parts of one interval came in is not measured: the state of the span
 * before goes on first, the state the tick found comes last, the others between, so a thread
 * that changed state once between two ticks gets one boundary. With switch records the off-CPU
 * parts are the records' waits (a wait still open at the tick is the last part); without, the
 * tick's schedstat deltas. A state with less than SPAN_MIN_NS to draw (and not continuing the
 * span before) waits until it has more; what the parts leave of the interval goes to the span
 * drawn last, whose state then owes it, so the spans tile the thread's life.
 */
void samp_span_interval(struct prof_sampler *s, const struct sproc *p, struct sthr *th, uint64_t t0, uint64_t t1,
                        enum prof_tstate first, enum prof_tstate last)
{
    if (t1 <= t0)
        return; /* nothing to lay out: the time waits for the next interval */
    if (th->span_t1)
        first = (enum prof_tstate)th->span_state;
    int order[PROF_TS_COUNT], n = 0;
    order[n++] = (int)first;
    for (int k = 0; k < PROF_TS_COUNT; k++)
        if (k != (int)first && k != (int)last)
            order[n++] = k;
    if (last != first)
        order[n++] = (int)last;
    uint64_t at = t0;
    for (int i = 0; i < n && at < t1; i++) {
        int64_t b = th->span_bal[order[i]];
        int goes_on = th->span_t1 == at && th->span_state == order[i];
        if (b <= 0 || (!goes_on && b < SPAN_MIN_NS))
            continue;
        uint64_t end = (uint64_t)b >= t1 - at ? t1 : at + (uint64_t)b;
        span_seg(s, p, th, (enum prof_tstate)order[i], at, end);
        at = end;
    }
    if (at < t1) {
        enum prof_tstate st = last;
        if (th->span_t1 == at)
            st = (enum prof_tstate)th->span_state;
        else
            for (int k = 0; k < PROF_TS_COUNT; k++)
                if (th->span_bal[k] > th->span_bal[st])
                    st = (enum prof_tstate)k;
        span_seg(s, p, th, st, at, t1);
    }
}

static uint64_t hist_percentile(const uint64_t *hist, uint64_t total, double q, uint64_t max)
{
    if (!total)
        return 0; /* not a walk over 3000 cold buckets at every flush of a run without stops */
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    for (int i = 0; i <= STOP_HIST_N; i++) {
        seen += hist[i];
        if (seen > want || (seen == total && seen))
            return i == STOP_HIST_N ? max
                   : i < STOP_HIST_US ? (uint64_t)i * 1000ULL + 500ULL
                                      : (uint64_t)STOP_HIST_US * 1000ULL + (uint64_t)(i - STOP_HIST_US) * 100000ULL + 50000ULL;
    }
    return 0;
}

static void stop_percentile(const struct prof_sampler *s, double q, uint64_t *ns)
{
    *ns = hist_percentile(s->stop_hist, s->stops, q, s->stop_max);
}

static uint64_t unw_p50(const struct prof_sampler *s)
{
    if (!s->unws)
        return 0;
    uint64_t want = s->unws / 2, seen = 0;
    for (int i = 0; i <= 1000; i++) {
        seen += s->unw_hist[i];
        if (seen > want)
            return (uint64_t)i * 10 + 5;
    }
    return 0;
}

void samp_flush_records(struct prof_sampler *s, uint64_t t)
{
    for (size_t i = 0; i < s->capb; i++) {
        struct bucket *b = &s->buckets[i];
        if (!b->used)
            continue;
        /* held= only where a CPython thread ran holding its GIL: which code holds it, per stack. */
        if (b->held)
            samp_out(s, "C t=%llu pid=%d tid=%d state=%s stack=%u addr=%llx n=%llu ns=%llu held=%llu\n",
                     (unsigned long long)t, (int)b->pid, (int)b->tid, prof_tstate_name(b->state), b->stack,
                     (unsigned long long)b->addr, (unsigned long long)b->n, (unsigned long long)b->ns,
                     (unsigned long long)b->held);
        else
            samp_out(s, "C t=%llu pid=%d tid=%d state=%s stack=%u addr=%llx n=%llu ns=%llu\n", (unsigned long long)t,
                     (int)b->pid, (int)b->tid, prof_tstate_name(b->state), b->stack, (unsigned long long)b->addr,
                     (unsigned long long)b->n, (unsigned long long)b->ns);
        b->used = 0;
    }
    s->nb = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *p = s->procs[i];
        for (size_t k = 0; k < p->nthr; k++) {
            struct sthr *th = &p->thr[k];
            span_write(s, p, th); /* every span open so far is on disk with this flush */
            if (!th->py_dirty)
                continue;
            th->py_dirty = 0;
            samp_out(s, "G t=%llu pid=%d tid=%d n=%llu held=%llu held_cpu=%llu\n", (unsigned long long)t, (int)p->pid,
                     (int)th->tid, (unsigned long long)th->py_n, (unsigned long long)th->py_held,
                     (unsigned long long)th->py_held_cpu);
        }
        /* Drop ended threads: thread churn must not make every lookup slower. */
        size_t w = 0;
        for (size_t k = 0; k < p->nthr; k++)
            if (!p->thr[k].dead)
                p->thr[w++] = p->thr[k];
        p->nthr = w;
        if (p->locks_dirty) {
            p->locks_dirty = 0;
            for (int k = 0; k < p->nlocks; k++)
                samp_out(s, "Q t=%llu pid=%d addr=%llx ticks=%llu held=%llu\n", (unsigned long long)t, (int)p->pid,
                         (unsigned long long)p->locks[k].addr, (unsigned long long)p->locks[k].ticks,
                         (unsigned long long)p->locks[k].held);
        }
    }
    /* The tracer's own CPU time (this runs on the tracer thread): what sampling costs the machine. */
    struct timespec cts;
    uint64_t self_cpu = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cts) == 0
                            ? (uint64_t)cts.tv_sec * 1000000000ULL + (uint64_t)cts.tv_nsec : 0;
    uint64_t p50, p99;
    stop_percentile(s, 0.5, &p50);
    stop_percentile(s, 0.99, &p99);
    double el = (double)(t - s->t0) / 1e9;
    samp_out(s, "H t=%llu ticks=%llu late=%llu errors=%llu stops=%llu stop_p50_ns=%llu stop_p99_ns=%llu stop_max_ns=%llu "
           "achieved_hz=%.1f unwind_frames=%llu unwind_ns=%llu unwind_p50_ns_per_frame=%llu irq_p50_ns=%llu irq_p99_ns=%llu "
           "attach_latency_max_ns=%llu perf_samples=%llu perf_used=%llu perf_lost=%llu self_cpu_ns=%llu waits_reused=%llu "
           "switch_records=%llu switch_waits=%llu switch_waits_known=%llu switch_lost=%llu unwind_load_ns=%llu unwind_loads=%llu "
           "switch_idle=%llu unwind_fast=%llu unwind_libunwind=%llu wait_stops=%llu wait_peeks=%llu wait_peeks_failed=%llu "
           "unwind_decode_ns=%llu unwind_decodes=%llu threads_by_records=%llu threads_seized_late=%llu\n",
        (unsigned long long)t, (unsigned long long)s->ticks, (unsigned long long)s->late,
        (unsigned long long)s->errors, (unsigned long long)s->stops, (unsigned long long)p50,
        (unsigned long long)p99, (unsigned long long)s->stop_max, el > 0 ? (double)s->ticks / el : 0.0,
        (unsigned long long)s->unwind_frames, (unsigned long long)s->unwind_ns, (unsigned long long)unw_p50(s),
        (unsigned long long)hist_percentile(s->irq_hist, s->irqs, 0.5, s->stop_max),
        (unsigned long long)hist_percentile(s->irq_hist, s->irqs, 0.99, s->stop_max),
        (unsigned long long)s->attach_latency_max, (unsigned long long)s->pstk_samples,
        (unsigned long long)s->pstk_used, (unsigned long long)prof_pstk_lost(s->pstk), (unsigned long long)self_cpu,
        (unsigned long long)s->waits_reused, (unsigned long long)s->sw_records, (unsigned long long)s->sw_waits,
        (unsigned long long)s->sw_waits_known, (unsigned long long)prof_pstk_lost(s->swr),
        (unsigned long long)s->unw_load_ns, (unsigned long long)s->unw_loads, (unsigned long long)s->sw_idle,
        (unsigned long long)s->unw_fast, (unsigned long long)s->unw_slow, (unsigned long long)s->wait_stops,
        (unsigned long long)s->peeks, (unsigned long long)s->peeks_failed, (unsigned long long)s->unw_decode_ns,
        (unsigned long long)s->unw_decodes, (unsigned long long)s->lazy_seen, (unsigned long long)s->lazy_seized);
    samp_flush_file(s);
}
