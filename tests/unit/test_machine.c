/* test_machine.c: the cgroup quota parsers and the usable-CPU rule, with synthetic file contents. */
#include <criterion/criterion.h>

#include "monitor/machine.h"
#include "prof.h"

Test(cgroup_v2, no_limit)
{
    cr_expect_eq(prof_cgroup_v2_quota("max 100000\n"), 0);
    cr_expect_eq(prof_cgroup_v2_quota("max"), 0);
}

Test(cgroup_v2, quota_over_period)
{
    cr_expect_float_eq(prof_cgroup_v2_quota("200000 100000\n"), 2.0, 1e-12);
    cr_expect_float_eq(prof_cgroup_v2_quota("150000 100000"), 1.5, 1e-12);
    cr_expect_float_eq(prof_cgroup_v2_quota("50000 100000"), 0.5, 1e-12);
    cr_expect_float_eq(prof_cgroup_v2_quota("25000 50000"), 0.5, 1e-12);
}

Test(cgroup_v2, period_defaults_to_100ms)
{
    cr_expect_float_eq(prof_cgroup_v2_quota("300000"), 3.0, 1e-12);
}

Test(cgroup_v2, malformed)
{
    cr_expect_lt(prof_cgroup_v2_quota(""), 0);
    cr_expect_lt(prof_cgroup_v2_quota("lots 100000"), 0);
    cr_expect_lt(prof_cgroup_v2_quota("100000 0"), 0);
    cr_expect_lt(prof_cgroup_v2_quota("100000 x"), 0);
    cr_expect_lt(prof_cgroup_v2_quota("max x"), 0);
    cr_expect_lt(prof_cgroup_v2_quota(NULL), 0);
}

Test(cgroup_v1, no_quota)
{
    cr_expect_eq(prof_cgroup_v1_quota("-1\n", "100000\n"), 0);
    /* the period does not matter when there is no quota */
    cr_expect_eq(prof_cgroup_v1_quota("-1", NULL), 0);
}

Test(cgroup_v1, quota_over_period)
{
    cr_expect_float_eq(prof_cgroup_v1_quota("200000\n", "100000\n"), 2.0, 1e-12);
    cr_expect_float_eq(prof_cgroup_v1_quota("50000", "100000"), 0.5, 1e-12);
    cr_expect_float_eq(prof_cgroup_v1_quota(" 75000 ", " 50000 "), 1.5, 1e-12);
}

Test(cgroup_v1, malformed)
{
    cr_expect_lt(prof_cgroup_v1_quota("", "100000"), 0);
    cr_expect_lt(prof_cgroup_v1_quota("abc", "100000"), 0);
    cr_expect_lt(prof_cgroup_v1_quota("100000", "0"), 0);
    cr_expect_lt(prof_cgroup_v1_quota("100000", "12x"), 0);
    cr_expect_lt(prof_cgroup_v1_quota(NULL, "100000"), 0);
}

Test(usable_cpus, affinity_without_quota)
{
    cr_expect_eq(prof_usable_cpus(4, 0), 4);
    cr_expect_eq(prof_usable_cpus(1, 0), 1);
}

Test(usable_cpus, quota_rounds_up)
{
    cr_expect_eq(prof_usable_cpus(8, 1.5), 2);
    cr_expect_eq(prof_usable_cpus(8, 0.5), 1);
    cr_expect_eq(prof_usable_cpus(8, 2.0), 2);
    /* 3 CPUs expressed as an inexact ratio must not become 4 */
    cr_expect_eq(prof_usable_cpus(8, 300000.0 / 100000.0), 3);
}

Test(usable_cpus, affinity_caps_quota)
{
    cr_expect_eq(prof_usable_cpus(2, 8), 2);
    cr_expect_eq(prof_usable_cpus(2, 2.5), 2);
}

Test(usable_cpus, at_least_one)
{
    cr_expect_eq(prof_usable_cpus(0, 0), 1);
    cr_expect_eq(prof_usable_cpus(-3, 0.1), 1);
}

Test(machine_read, this_machine_is_consistent)
{
    struct prof_machine m;

    cr_assert_eq(prof_machine_read(&m), 0);
    cr_expect_geq(m.online_cpus, 1);
    cr_expect_geq(m.affinity_cpus, 1);
    cr_expect_leq(m.affinity_cpus, m.online_cpus);
    cr_expect_geq(m.physical_cores, 1);
    cr_expect_leq(m.physical_cores, m.affinity_cpus);
    cr_expect_geq(m.usable_cpus, 1);
    cr_expect_leq(m.usable_cpus, m.affinity_cpus);
    cr_expect_eq(m.usable_cpus, prof_usable_cpus(m.affinity_cpus, m.quota_cpus));
    cr_expect_geq(m.quota_cpus, 0);
    cr_expect_gt(m.mem_total_bytes, 0);
    cr_expect_leq(m.mem_available_bytes, m.mem_total_bytes);
    cr_expect_gt(m.clock_ticks, 0);
    cr_expect_gt(m.page_size, 0);
    cr_expect_gt(m.nofile_limit, 0);
    cr_expect_eq(prof_machine_read(NULL), PROF_EINVAL);
}

Test(proc_stat, busy_and_steal_ticks)
{
    uint64_t busy = 0, steal = 0;
    cr_assert_eq(prof_stat_cpu_times("cpu  1838013 5 449132 3217569 3084 7 3227 142483 0 0\ncpu0 1 2 3 4\n", &busy,
                                     &steal), 0);
    cr_expect_eq(busy, 1838013 + 5 + 449132 + 7 + 3227, "user + nice + system + irq + softirq; idle and iowait out");
    cr_expect_eq(steal, 142483);
}

Test(proc_stat, old_kernel_without_steal)
{
    uint64_t busy = 0, steal = 9;
    cr_assert_eq(prof_stat_cpu_times("cpu  100 0 50 1000\n", &busy, &steal), 0);
    cr_expect_eq(busy, 150);
    cr_expect_eq(steal, 0);
}

Test(proc_stat, malformed)
{
    uint64_t busy, steal;
    cr_expect_lt(prof_stat_cpu_times("", &busy, &steal), 0);
    cr_expect_lt(prof_stat_cpu_times("cpu0 1 2 3 4", &busy, &steal), 0, "a per-CPU line is not the total");
    cr_expect_lt(prof_stat_cpu_times("cpu  1 2", &busy, &steal), 0);
    cr_expect_lt(prof_stat_cpu_times(NULL, &busy, &steal), 0);
}
