/* membound.c: whether a sweep's scaling stops because its workers wait on memory: instructions per cycle and last-level cache misses across worker counts (issue 30). */

/*
 * Pure: points in, a judgment and its sentence out. One run cannot show this (its IPC says how the
 * cores fared at one count, not how they fare at more), so only `poolprof sweep` calls it, with a
 * point per count a profiled run measured with a PMU.
 *
 * Workers that share the memory bandwidth and the last-level cache slow each other down: each
 * retires fewer instructions per cycle as they are added, its misses rise (the cache's share of
 * each shrinks) or stay high (it streams from DRAM at any count), and the speedup flattens while
 * the CPUs stay busy. All three must show: a falling IPC alone is also SMT siblings, a lock's spin
 * or a lower clock; flattening alone is also Amdahl's serial part.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/advise_int.h"
#include "prof.h"

/* IPC must fall by more than this from the fewest workers to the most: run-to-run IPC moves by a few percent. */
#define IPC_DROP_MIN 0.20
/* Misses "rise" by at least this factor, to at least MPKI_RISE_FLOOR per thousand instructions (fewer cost a core little). */
#define MPKI_RISE 1.2
#define MPKI_RISE_FLOOR 1.0
/* The sweep's own "within 10% of the best": the fewest workers that keep 90% of the best throughput. */
#define BEST_WITHIN 1.10
#define MAX_POINTS 64

static int by_workers(const void *a, const void *b)
{
    const struct prof_membound_point *x = a, *y = b;
    return (x->workers > y->workers) - (x->workers < y->workers);
}

/* The misses' part of the sentence: how they moved, or that they were not counted. */
static void misses_text(char *buf, size_t n, const struct prof_membound_point *lo, const struct prof_membound_point *hi)
{
    if (lo->llc_mpki < 0 || hi->llc_mpki < 0)
        snprintf(buf, n, "LLC misses were not counted");
    else if (hi->llc_mpki >= MPKI_RISE * lo->llc_mpki && hi->llc_mpki >= MPKI_RISE_FLOOR)
        snprintf(buf, n, "LLC misses rose from %.1f to %.1f per thousand instructions", lo->llc_mpki, hi->llc_mpki);
    else
        snprintf(buf, n, "LLC misses stayed at %.1f per thousand instructions (%.1f at %d worker%s)", hi->llc_mpki,
                 lo->llc_mpki, lo->workers, lo->workers == 1 ? "" : "s");
}

/* The judgment's sentence, cut at the verdict's reason length like every other reason. */
__attribute__((format(printf, 2, 3))) static void say(struct prof_membound *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

int prof_membound(const struct prof_membound_point *pts, size_t n, struct prof_membound *out)
{
    if (!out || (n > 0 && !pts))
        return PROF_EINVAL;
    memset(out, 0, sizeof *out);
    struct prof_membound_point p[MAX_POINTS];
    size_t k = 0;
    for (size_t i = 0; i < n && k < MAX_POINTS; i++) {
        const struct prof_membound_point *q = &pts[i];
        /* A point without IPC (no PMU) or without a measured speedup says nothing. */
        if (q->workers < 1 || !(q->ipc > 0) || !isfinite(q->ipc) || !(q->speedup > 0) || !isfinite(q->speedup))
            continue;
        p[k] = *q;
        if (!isfinite(p[k].llc_mpki))
            p[k].llc_mpki = -1;
        k++;
    }
    if (k < 2)
        return 0;
    qsort(p, k, sizeof p[0], by_workers);
    const struct prof_membound_point *lo = &p[0], *hi = &p[k - 1];
    if (lo->workers == hi->workers)
        return 0;
    out->judged = 1;
    out->ipc_drop = 1.0 - hi->ipc / lo->ipc;

    size_t best = 0, cap = 0;
    for (size_t i = 1; i < k; i++)
        if (p[i].speedup > p[best].speedup)
            best = i;
    while (p[cap].speedup * BEST_WITHIN < p[best].speedup)
        cap++;
    int flat = p[cap].workers < hi->workers;
    int misses = lo->llc_mpki >= 0 && hi->llc_mpki >= 0 &&
                 ((hi->llc_mpki >= MPKI_RISE * lo->llc_mpki && hi->llc_mpki >= MPKI_RISE_FLOOR) ||
                  hi->llc_mpki > MEM_MPKI_ABOVE);

    char ipc[128], miss[128], sp[96];
    int fell = out->ipc_drop > IPC_DROP_MIN;
    snprintf(ipc, sizeof ipc, "instructions per cycle %s from %.2f at %d worker%s to %.2f at %d (%+.0f%%)",
             fell ? "fell" : out->ipc_drop >= 0 ? "held" : "rose", lo->ipc, lo->workers, lo->workers == 1 ? "" : "s",
             hi->ipc, hi->workers, -out->ipc_drop * 100.0);
    misses_text(miss, sizeof miss, lo, hi);
    if (flat)
        snprintf(sp, sizeof sp, "the speedup flattened at %.2fx from %d workers (%.2fx at %d)", p[cap].speedup,
                 p[cap].workers, hi->speedup, hi->workers);
    else
        snprintf(sp, sizeof sp, "the speedup kept rising, %.2fx at %d workers", hi->speedup, hi->workers);

    if (fell && misses && flat) {
        out->memory_bound = 1;
        out->cap = p[cap].workers;
        say(out, "memory-bound: %s while %s, and %s: past %d workers, more of them wait on memory", ipc, miss, sp,
            out->cap);
    } else if (!fell) {
        say(out, "not memory-bound: %s; %s", ipc, sp);
    } else if (!flat) {
        say(out, "not memory-bound: %s, but %s", ipc, sp);
    } else {
        say(out, "not shown memory-bound: %s and %s, but %s: %s", ipc, sp, miss,
            lo->llc_mpki < 0 || hi->llc_mpki < 0 ? "memory cannot be told from a lock, SMT siblings or the clock"
                                                 : "a lock's spinning, SMT siblings or a lower clock slow the cores, not memory");
    }
    return 0;
}
