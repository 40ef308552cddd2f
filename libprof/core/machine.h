/* machine.h: the limits of the machine a run may use: CPUs (affinity, cgroup quota), cores, memory. */
#ifndef POOLPROF_MACHINE_H
#define POOLPROF_MACHINE_H

#include <stdint.h>
#include <stddef.h>

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
};

/* Read the machine's limits for the calling process. Returns 0 or PROF_E*. */
int prof_machine_read(struct prof_machine *m);

/* Pure parsers, tested with synthetic inputs. */
/* cgroup v2 cpu.max ("max 100000" or "200000 100000") -> CPUs, 0 for no limit; <0 on error. */
double prof_cgroup_v2_quota(const char *cpu_max);
/* cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us contents -> CPUs, 0 for no limit. */
double prof_cgroup_v1_quota(const char *quota_us, const char *period_us);
/*
 * The first line of /proc/stat ("cpu  user nice system idle iowait irq softirq steal ...",
 * clock ticks summed over CPUs) -> *busy (user + nice + system + irq + softirq) and *steal
 * (the hypervisor ran something else while a vCPU had work). 0 or PROF_EFORMAT; a kernel
 * without the steal column gives steal 0.
 */
int prof_stat_cpu_times(const char *stat, uint64_t *busy, uint64_t *steal);
/* usable = min(affinity, ceil(quota)) when quota > 0, at least 1. */
int prof_usable_cpus(int affinity_cpus, double quota_cpus);

#endif
