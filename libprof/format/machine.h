/* machine.h: the machine a run may use, as run.json's "machine" object records it for the readers and the advice. */
#ifndef POOLPROF_FORMAT_MACHINE_H
#define POOLPROF_FORMAT_MACHINE_H

#include <stdint.h>

struct prof_machine {
    int online_cpus;        /* sysconf(_SC_NPROCESSORS_ONLN) */
    int affinity_cpus;      /* CPUs in sched_getaffinity of the CLI (inherited by the target) */
    double quota_cpus;      /* cgroup CPU quota in CPUs (quota/period); 0 = no quota */
    int cgroup_version;     /* 1, 2, or 0 when no cpu controller was found */
    int physical_cores;     /* distinct (package, core) among the affinity CPUs */
    int usable_cpus;        /* min(affinity, ceil(quota)), at least 1 */
    uint64_t mem_total_bytes;
    uint64_t mem_available_bytes;
    uint64_t cgroup_mem_limit_bytes; /* 0 = no limit */
    uint64_t nofile_limit;  /* RLIMIT_NOFILE soft */
    long clock_ticks;       /* sysconf(_SC_CLK_TCK) */
    long page_size;
    /* The fingerprint `poolprof check` compares before it compares times: reports from machines that
     * differ in any of these are not timed against each other. */
    char cpu_model[128];    /* /proc/cpuinfo "model name" of the first CPU ("" when none is given) */
    char kernel[65];        /* uname release */
    int pmu;                /* a hardware cycle counter opens (perf_event_open): 1, else 0 */
};

#endif
