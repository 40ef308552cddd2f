/* counters.h: named perf events (libpfm4) counted per thread of the target tree, opened from poolprof's own process. */
#ifndef POOLPROF_COUNTERS_H
#define POOLPROF_COUNTERS_H

/*
 * Why from outside: the shim opens no descriptor while the target runs (format/shm.h): a
 * descriptor takes the lowest free number, which the target may expect, and a target that
 * closes every descriptor would silence it. A counter is a descriptor. So poolprof opens one
 * counting event per thread and event with perf_event_open(pid = TID), in its own process:
 * at the tracer's fork and clone stops (before the task's first instruction), and for
 * threads found later (lazy thread following, attach, the monitor's scans) when first seen,
 * with the time it was opened recorded beside the counts. A counter of a task that has exited
 * still reads its final value, so the last read after the task is gone is its total.
 *
 * Three layers, so the decisions are testable without a kernel:
 *   events.c   libpfm4: a name to a perf_event_attr encoding (pfm_get_os_event_encoding with
 *              PFM_OS_PERF_EVENT_EXT), the default set, the list `poolprof counters` prints;
 *   ladder.c   pure: given the results of the attempts (through struct prof_ctr_sys), what to
 *              try next and, finally, the event's source and the reason it is not what was asked;
 *   sys.c      thin: the real perf_event_open, close, and /proc/sys/kernel/perf_event_paranoid;
 *   observe.c  the observer: the per-task table, reads, RUNDIR/counters.rec (format/ctrrec.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format/ctrrec.h"

#define PROF_CTR_MAX PROF_CTRREC_MAX /* events per run, the default set included */
#define PROF_CTR_NAME_BYTES 96
#define PROF_CTR_REASON_BYTES 160

/* Where an event's counts come from. */
enum prof_ctr_source {
    PROF_CTR_SRC_NONE = 0,      /* not counted: reason says why */
    PROF_CTR_SRC_PERF = 1,      /* perf_event_open with libpfm4's encoding */
    PROF_CTR_SRC_RAW = 2,       /* perf_event_open with a raw PERF_TYPE_SOFTWARE encoding (libpfm4 could not encode it) */
    PROF_CTR_SRC_PROC = 3,      /* /proc figures the monitor reads per thread (perf_event_open refused) */
};

/* What the verdict and the reports read an event as: by its encoding (type, config), never by
 * how the user spelled it. */
enum prof_ctr_role {
    PROF_CTR_ROLE_OTHER = 0,
    PROF_CTR_ROLE_CS,           /* context switches (voluntary and involuntary) */
    PROF_CTR_ROLE_MIGRATIONS,   /* moves between CPUs */
    PROF_CTR_ROLE_FAULTS,       /* page faults, minor and major */
    PROF_CTR_ROLE_MINFLT,       /* minor page faults (no I/O: copy-on-write, first touch) */
    PROF_CTR_ROLE_MAJFLT,       /* major page faults (read from disk) */
    PROF_CTR_ROLE_TASK_CLOCK,   /* on-CPU nanoseconds */
    PROF_CTR_ROLE_CYCLES,
    PROF_CTR_ROLE_INSTRUCTIONS,
    PROF_CTR_ROLE_LLC_MISSES,   /* last-level cache misses */
    PROF_CTR_ROLE_COUNT
};

/* The part of a perf_event_attr this product sets. */
struct prof_ctr_attr {
    uint32_t type;
    uint64_t config, config1, config2;
    int exclude_user;           /* count kernel mode only (libpfm4's ":u=0", ":k"): kept, not dropped */
    int exclude_kernel;         /* count user mode only */
    int exclude_hv;
};

/* One event of a run, as resolved before the target starts. */
struct prof_ctr_event {
    char name[PROF_CTR_NAME_BYTES];   /* as asked (the default set's names are libpfm4's) */
    char fstr[PROF_CTR_NAME_BYTES];   /* libpfm4's full name of what it encoded (cut to fit), "" if not
                                       * encoded by it. attr is an encoding when fstr != "" or attr.type is
                                       * PERF_TYPE_SOFTWARE (encoded raw); else all zero */
    struct prof_ctr_attr attr;
    enum prof_ctr_source source;
    enum prof_ctr_role role;
    int hardware;               /* counts on a PMU: may be multiplexed (scaled) */
    int is_default;             /* of the default set, not asked for */
    char reason[PROF_CTR_REASON_BYTES]; /* why it is not counted, or counted otherwise than asked
                                         * ("no PMU", "perf_event_paranoid=3", "EACCES: retried user-only",
                                         * "not supported by libpfm4 here"); "" when counted as asked */
};

/*
 * The system calls and libpfm4 the ladder needs, so tests can give it fakes. Each returns
 * as described; ctx is passed through.
 */
struct prof_ctr_sys {
    /* libpfm4: encode name; 0 and *a, fstr filled, or a negative PFM_ERR_* (pfmlib.h), with a
     * static message in *msg */
    int (*encode)(void *ctx, const char *name, struct prof_ctr_attr *a, char *fstr, size_t cap, const char **msg);
    /* perf_event_open(a, pid = 0, cpu = -1) disabled-free counting probe: a descriptor, or -errno */
    int (*open)(void *ctx, const struct prof_ctr_attr *a);
    void (*close)(void *ctx, int fd);
    /* /proc/sys/kernel/perf_event_paranoid, or INT32_MIN when unreadable */
    int (*paranoid)(void *ctx);
    void *ctx;
};

/* The real ones (sys.c). */
extern const struct prof_ctr_sys prof_ctr_sys_real;

/* Initialise libpfm4 once (thread-safe, idempotent). 0, or PROF_ENOTSUP with *msg when it
 * cannot initialise (the ladder then encodes software events raw). */
int prof_ctr_lib_init(const char **msg);

/* libpfm4's encoding of name (events.c; prof_ctr_sys_real.encode without ctx): initialises libpfm4
 * if needed, counts user and kernel mode unless the name's modifiers say otherwise. 0, or a
 * negative PFM_ERR_* with a static message in *msg. */
int prof_ctr_encode(const char *name, struct prof_ctr_attr *a, char *fstr, size_t cap, const char **msg);

/* perf_event_open of a for one task (sys.c, for the observer), in the group whose leader is the
 * descriptor group (-1: a leader of its own): counting from now, pid = tid,
 * cpu = -1, no inherit, close-on-exec, read_format TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING
 * (the probe's attr on another task). A descriptor, or -errno. */
int prof_ctr_sys_open_task(const struct prof_ctr_attr *a, pid_t tid, int group);

/* The same with inherit: the process pid and every task it creates from now on, summed (a task's
 * count joins when it exits). For `poolprof sweep`'s timed runs: the tree's totals per run. */
int prof_ctr_sys_open_tree(const struct prof_ctr_attr *a, pid_t pid);

/*
 * Resolve one event name through the fallback ladder (pure given sys):
 *   1. libpfm4's encoding; a name it does not know may be a generic software event, encoded
 *      raw (PERF_TYPE_SOFTWARE); else not counted, "not supported by libpfm4 here";
 *   2. a probe open on poolprof itself: EACCES/EPERM retries user-only ("EACCES: retried
 *      user-only"), then names perf_event_paranoid; ENOENT, ENODEV or EOPNOTSUPP on a hardware
 *      event is "no PMU"; a software event refused falls back to /proc figures where the monitor
 *      has them (context switches, faults, migrations, task clock), else not counted.
 * Fills *ev (name, fstr, attr, source, role, hardware, reason). Returns 0 (ev says whether it
 * is counted), or PROF_EINVAL for an empty or too long name.
 */
int prof_ctr_resolve(const struct prof_ctr_sys *sys, const char *name, struct prof_ctr_event *ev);

/* The role of an encoding (pure). */
enum prof_ctr_role prof_ctr_role_of(const struct prof_ctr_attr *a);

/* Whether an encoding counts on a PMU, so may be multiplexed (pure): PERF_TYPE_HARDWARE,
 * HW_CACHE, RAW, and a PMU's dynamic type (>= PERF_TYPE_MAX); software, tracepoint and
 * breakpoint events are not. */
int prof_ctr_hardware_of(const struct prof_ctr_attr *a);

/* The role's short key for reports ("context_switches", "cpu_migrations", "minor_faults", ...;
 * "" for OTHER). */
const char *prof_ctr_role_key(enum prof_ctr_role r);

/* The default set's names (software events, always on), then the hardware ones added when a
 * PMU answers. NULL-terminated. */
extern const char *const prof_ctr_default_sw[];
extern const char *const prof_ctr_default_hw[];

/*
 * Resolve the run's events: the default set (hardware ones only if they open) plus the
 * comma-separated list asked for (NULL or blank: none; items trimmed), duplicates (same
 * encoding (type, config, config1, config2), or the same name) merged: a default event asked
 * for is the asked one in the default's place (its name and modifiers, is_default 0); of two
 * asked, the first stays. Returns the number of events in ev[] (at most cap), or PROF_EINVAL with
 * *bad naming the item that is malformed (empty, too long), or PROF_ERANGE when more than cap
 * (*bad: the first item that did not fit). *bad is static text for a message (not thread-safe).
 */
int prof_ctr_resolve_list(const struct prof_ctr_sys *sys, const char *asked, struct prof_ctr_event *ev, size_t cap,
                          const char **bad);

/*
 * `poolprof counters`: call fn for each event libpfm4 knows on this machine's PMUs that are
 * present (and its generic perf:: table), with whether it opens here and why not: each through
 * prof_ctr_resolve, the probe open done once per encoding. The listing's strings last until fn
 * returns. Returns the number listed, or PROF_ENOTSUP when libpfm4 cannot initialise.
 */
struct prof_ctr_listing {
    const char *pmu;            /* libpfm4's PMU name ("perf", "perf_raw", "intel_skl", ...) */
    const char *name;           /* the name to pass to --counters */
    const char *desc;           /* libpfm4's description */
    int hardware;
    int available;              /* it opens here */
    const char *reason;         /* why not, or "" */
};
int prof_ctr_list(const struct prof_ctr_sys *sys, void (*fn)(void *ctx, const struct prof_ctr_listing *l), void *ctx);

/* ---- the observer (observe.c) -------------------------------------------------------- */

struct prof_ctrs;

/* Create RUNDIR/counters.rec with the events' E lines; call before the target starts. n may be 0
 * (nothing counted, the file still says so). 0 or PROF_E*. */
int prof_ctrs_start(const char *rundir, const struct prof_ctr_event *ev, size_t n, struct prof_ctrs **out);

/* Thread-safe: a task of the tree exists (a tracer's fork or clone stop, a scan); open its
 * counters if not open yet. born: 1 when the task has not run yet (its counts are whole). */
void prof_ctrs_task(void *c, pid_t pid, pid_t tid, int born);

/* Read every open counter, write what changed, close those of tasks that are gone (after their
 * final read). Called by the monitor at each scan and once at the end. */
void prof_ctrs_poll(void *c);

/* Final reads, close everything, finish the file, free c. 0 or the PROF_E* that stopped recording. */
int prof_ctrs_stop(struct prof_ctrs *c);

#endif
