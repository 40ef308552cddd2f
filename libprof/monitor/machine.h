/* machine.h: reading the limits of the machine a run may use (CPUs, cores, memory) from /proc, sysfs and the cgroup. */
#ifndef POOLPROF_MONITOR_MACHINE_H
#define POOLPROF_MONITOR_MACHINE_H

#include <stdint.h>
#include <stddef.h>

#include "format/machine.h"


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
