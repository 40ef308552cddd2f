/* events.c: libpfm4 behind the counters: its one initialisation, a name to a perf_event_attr encoding, the default set, and every event of this machine's PMUs for `poolprof counters`. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpfm4's own copy of the perf_event ABI: this file includes no <linux/perf_event.h> (the two
 * define the same structs); ladder.c and sys.c use the kernel's. */
#include <perfmon/pfmlib_perf_event.h>

#include "counters/counters.h"
#include "prof.h"

/*
 * The default set, in libpfm4's names (libpfm4 4.13's perf_events table; "perf::" keeps them
 * from matching a core PMU's event of the same name). The software ones count what the verdict
 * already reads from /proc, per thread and exactly; the hardware ones need a PMU, which most
 * VMs lack, so they join only when they open.
 */
const char *const prof_ctr_default_sw[] = {
    "perf::CONTEXT-SWITCHES",
    "perf::CPU-MIGRATIONS",
    "perf::MINOR-FAULTS",
    "perf::MAJOR-FAULTS",
    NULL,
};
const char *const prof_ctr_default_hw[] = {
    "perf::CYCLES",
    "perf::INSTRUCTIONS",
    NULL,
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;

static void lib_init_once(void)
{
    lib_rc = pfm_initialize();
}

int prof_ctr_lib_init(const char **msg)
{
    pthread_once(&lib_once, lib_init_once);
    if (lib_rc != PFM_SUCCESS) {
        if (msg)
            *msg = pfm_strerror(lib_rc);
        return PROF_ENOTSUP;
    }
    return 0;
}

int prof_ctr_encode(const char *name, struct prof_ctr_attr *a, char *fstr, size_t cap, const char **msg)
{
    const char *dummy;
    if (!msg)
        msg = &dummy;
    *msg = NULL;
    if (prof_ctr_lib_init(msg) < 0)
        return PFM_ERR_NOINIT;

    struct perf_event_attr pa;
    char *full = NULL;
    pfm_perf_encode_arg_t arg;
    memset(&pa, 0, sizeof pa);
    memset(&arg, 0, sizeof arg);
    pa.size = sizeof pa;
    arg.attr = &pa;
    arg.fstr = &full; /* libpfm4 allocates it */
    arg.size = sizeof arg;
    /* User and kernel mode by default, as perf stat counts: a thread's page faults and context
     * switches happen in the kernel. The ladder retries user-only where that is refused. */
    int rc = pfm_get_os_event_encoding(name, PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT_EXT, &arg);
    if (rc != PFM_SUCCESS) {
        free(full);
        *msg = pfm_strerror(rc);
        return rc;
    }
    memset(a, 0, sizeof *a);
    a->type = pa.type;
    a->config = pa.config;
    a->config1 = pa.config1;
    a->config2 = pa.config2;
    a->exclude_user = pa.exclude_user;
    a->exclude_kernel = pa.exclude_kernel;
    a->exclude_hv = pa.exclude_hv;
    if (fstr && cap)
        snprintf(fstr, cap, "%s", full ? full : name);
    free(full);
    return 0;
}

/* ---- the listing -------------------------------------------------------------------------- */

/*
 * A sys whose open remembers each encoding's answer: libpfm4 names one encoding many ways
 * (perf::CYCLES, perf::CPU-CYCLES, perf::PERF_COUNT_HW_CPU_CYCLES), and a core PMU's events
 * all fail alike where there is no PMU. The listing needs only yes or no, so the real
 * descriptor is closed at once and the ladder gets a placeholder its close ignores.
 */
struct probe_cache {
    const struct prof_ctr_sys *sys;
    struct probed {
        struct prof_ctr_attr a;
        int rc;
    } *e;
    size_t n, cap;
    int paranoid, paranoid_read;
};

static int same_attr(const struct prof_ctr_attr *x, const struct prof_ctr_attr *y)
{
    return x->type == y->type && x->config == y->config && x->config1 == y->config1 && x->config2 == y->config2 &&
           x->exclude_user == y->exclude_user && x->exclude_kernel == y->exclude_kernel &&
           x->exclude_hv == y->exclude_hv;
}

static int cached_encode(void *ctx, const char *name, struct prof_ctr_attr *a, char *fstr, size_t cap,
                         const char **msg)
{
    struct probe_cache *c = ctx;
    return c->sys->encode(c->sys->ctx, name, a, fstr, cap, msg);
}

static int cached_open(void *ctx, const struct prof_ctr_attr *a)
{
    struct probe_cache *c = ctx;
    for (size_t i = 0; i < c->n; i++)
        if (same_attr(&c->e[i].a, a))
            return c->e[i].rc;
    int fd = c->sys->open(c->sys->ctx, a);
    int rc = fd < 0 ? fd : 0;
    if (fd >= 0)
        c->sys->close(c->sys->ctx, fd);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        struct probed *e = realloc(c->e, cap * sizeof *e);
        if (!e)
            return rc; /* not remembered: only slower */
        c->e = e;
        c->cap = cap;
    }
    c->e[c->n].a = *a;
    c->e[c->n++].rc = rc;
    return rc;
}

static void cached_close(void *ctx, int fd)
{
    (void)ctx, (void)fd; /* a placeholder: cached_open closed the descriptor */
}

static int cached_paranoid(void *ctx)
{
    struct probe_cache *c = ctx;
    if (!c->paranoid_read) {
        c->paranoid = c->sys->paranoid(c->sys->ctx);
        c->paranoid_read = 1;
    }
    return c->paranoid;
}

/* An event that wants a unit mask: its first one, as an example the user can pass. */
static void umask_example(int idx, const char *name, char *out, size_t cap)
{
    pfm_event_info_t ei;
    memset(&ei, 0, sizeof ei);
    ei.size = sizeof ei;
    snprintf(out, cap, "needs a unit mask (libpfm4: %s)", pfm_strerror(PFM_ERR_UMASK));
    if (pfm_get_event_info(idx, PFM_OS_PERF_EVENT_EXT, &ei) != PFM_SUCCESS)
        return;
    for (int k = 0; k < ei.nattrs; k++) {
        pfm_event_attr_info_t ai;
        memset(&ai, 0, sizeof ai);
        ai.size = sizeof ai;
        if (pfm_get_event_attr_info(idx, k, PFM_OS_PERF_EVENT_EXT, &ai) == PFM_SUCCESS && ai.type == PFM_ATTR_UMASK) {
            snprintf(out, cap, "needs a unit mask, e.g. %s:%s", name, ai.name);
            return;
        }
    }
}

/* One event of a present PMU: resolved through the ladder (its probe cached), then fn. */
static void list_one(struct prof_ctr_sys *cached, const pfm_pmu_info_t *pi, int idx, const pfm_event_info_t *ei,
                     void (*fn)(void *ctx, const struct prof_ctr_listing *l), void *ctx)
{
    struct prof_ctr_event ev;
    char name[2 * PROF_CTR_NAME_BYTES];
    char why[PROF_CTR_REASON_BYTES + PROF_CTR_NAME_BYTES];
    struct prof_ctr_listing l = {.pmu = pi->name, .name = name, .desc = ei->desc ? ei->desc : ""};

    snprintf(name, sizeof name, "%s::%s", pi->name, ei->name);
    /* Without an encoding, the PMU says what it is: libpfm4's generic perf table is mostly
     * hardware events, but its software ones encode everywhere. */
    l.hardware = pi->type != PFM_PMU_TYPE_OS_GENERIC;
    if (prof_ctr_resolve(cached, name, &ev) < 0) {
        snprintf(why, sizeof why, "a name longer than poolprof takes (%d bytes)", PROF_CTR_NAME_BYTES - 1);
        l.reason = why;
    } else {
        const char *msg = NULL;
        struct prof_ctr_attr a;
        l.available = ev.source == PROF_CTR_SRC_PERF || ev.source == PROF_CTR_SRC_RAW;
        l.reason = ev.reason;
        if (ev.fstr[0] || ev.source == PROF_CTR_SRC_RAW)
            l.hardware = ev.hardware;
        else if (cached->encode(cached->ctx, name, &a, NULL, 0, &msg) == PFM_ERR_UMASK) {
            umask_example(idx, name, why, sizeof why);
            l.reason = why;
        }
    }
    fn(ctx, &l);
}

int prof_ctr_list(const struct prof_ctr_sys *sys, void (*fn)(void *ctx, const struct prof_ctr_listing *l), void *ctx)
{
    const char *msg;
    if (prof_ctr_lib_init(&msg) < 0)
        return PROF_ENOTSUP;

    struct probe_cache cache = {.sys = sys};
    struct prof_ctr_sys cached = {cached_encode, cached_open, cached_close, cached_paranoid, &cache};
    int listed = 0;
    pfm_pmu_t p;
    pfm_for_all_pmus(p)
    {
        pfm_pmu_info_t pi;
        memset(&pi, 0, sizeof pi);
        pi.size = sizeof pi;
        /* is_present: libpfm4 detected it (CPUID on x86), which a VM may claim for a PMU the
         * hypervisor does not expose: the probe open says whether it counts. */
        if (pfm_get_pmu_info(p, &pi) != PFM_SUCCESS || !pi.is_present)
            continue;
        for (int i = pi.first_event; i != -1; i = pfm_get_event_next(i)) {
            pfm_event_info_t ei;
            memset(&ei, 0, sizeof ei);
            ei.size = sizeof ei;
            if (pfm_get_event_info(i, PFM_OS_PERF_EVENT_EXT, &ei) != PFM_SUCCESS || !ei.name)
                continue;
            list_one(&cached, &pi, i, &ei, fn, ctx);
            listed++;
        }
    }
    free(cache.e);
    return listed;
}
