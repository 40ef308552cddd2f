/* test_advise.c: drives the verdict functions with synthetic figures, one test per branch of the rules. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/advise.h"
#include "prof.h"

/* A 2-CPU machine with plenty of memory and no quota, like the CI VM. */
static struct prof_machine machine2(void)
{
    struct prof_machine m = {0};
    m.online_cpus = 2;
    m.affinity_cpus = 2;
    m.physical_cores = 2;
    m.usable_cpus = 2;
    m.mem_total_bytes = 8ull << 30;
    m.mem_available_bytes = 6ull << 30;
    m.nofile_limit = 1024;
    m.clock_ticks = 100;
    m.page_size = 4096;
    return m;
}

static struct prof_stage_figures stage(const char *name, double thread_s, double cpu_s)
{
    struct prof_stage_figures f = {0};
    f.name = name;
    f.nprocesses = 1;
    f.nthreads = 1;
    f.wall_s = thread_s;
    f.thread_s = thread_s;
    f.cpu_s = cpu_s;
    f.lock_measured = 1;
    return f;
}

/* Does any reason contain the text? */
static int has_reason(const struct prof_verdict *v, const char *text)
{
    for (int i = 0; i < v->nreasons; i++)
        if (strstr(v->reasons[i], text))
            return 1;
    return 0;
}

static void dump(const struct prof_verdict *v)
{
    for (int i = 0; i < v->nreasons; i++)
        cr_log_info("reason %d: %s", i, v->reasons[i]);
}

Test(advise_names, classes_and_models)
{
    cr_assert_str_eq(prof_class_name(PROF_CLASS_CPU), "cpu-bound");
    cr_assert_str_eq(prof_class_name(PROF_CLASS_IO), "io-bound");
    cr_assert_str_eq(prof_class_name(PROF_CLASS_MIXED), "mixed");
    cr_assert_str_eq(prof_class_name(PROF_CLASS_IDLE), "idle");
    cr_assert_str_eq(prof_model_name(PROF_MODEL_THREADS), "threads");
    cr_assert_str_eq(prof_model_name(PROF_MODEL_PROCESSES), "processes");
    cr_assert_str_eq(prof_model_name(PROF_MODEL_ASYNC), "async");
    cr_assert_str_eq(prof_model_name(PROF_MODEL_HYBRID), "hybrid");
    cr_assert_str_eq(prof_model_name(PROF_MODEL_SEQUENTIAL), "sequential");
}

Test(advise_stage, io_stage_gets_threads)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("fetch", 2.0, 0.1);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_geq(v.workers, 8);
    /* N = 2 x (1 + 1.9 / 0.1) = 40 */
    cr_assert_eq(v.workers, 40);
    cr_assert_float_eq(v.cpu_wall_ratio, 0.05, 1e-9);
    cr_assert_eq(v.seed.cls, PROF_CLASS_IO);
    cr_assert_eq(v.seed.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.seed.workers, 8);
    cr_assert(has_reason(&v, "the work is waiting"));
    cr_assert(has_reason(&v, "ignores the measured split"));
    cr_assert_leq(v.nreasons, PROF_MAX_REASONS);
}

Test(advise_stage, io_formula_follows_split_and_cpus)
{
    /* In an io-bound stage wait > 1.5 x compute, so the formula is always above the floor of 2 x usable. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("disk", 1.0, 0.35);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 6); /* ceil(2 x (1 + 0.65 / 0.35)) */
    m.usable_cpus = m.affinity_cpus = 1;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 3); /* ceil(1 x 2.857) */
    /* GIL and lock waits are not I/O: they leave the wait term. */
    m = machine2();
    f = stage("db", 1.0, 0.1);
    f.lock_wait_s = 0.5;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert_eq(v.workers, 10); /* 2 x (1 + 0.4 / 0.1) */
}

Test(advise_stage, io_capped_by_open_files)
{
    struct prof_machine m = machine2();
    m.nofile_limit = 64;
    struct prof_stage_figures f = stage("fetch", 2.0, 0.02); /* raw N = 2 x 100 = 200 */
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 32);
    cr_assert(has_reason(&v, "open-file limit"));
}

Test(advise_stage, io_lock_caveat)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("db", 4.0, 0.2);
    f.lock_wait_s = 1.6; /* 40% on a lock, the rest I/O */
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert(has_reason(&v, "waits on locks"));
}

Test(advise_stage, huge_wait_goes_async)
{
    struct prof_machine m = machine2();
    m.nofile_limit = 65536;
    struct prof_stage_figures f = stage("crawler", 100.0, 0.05);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert_eq(v.model, PROF_MODEL_ASYNC);
    cr_assert_eq(v.workers, 4000); /* 2 x (1 + 99.95 / 0.05) */
    cr_assert(has_reason(&v, "event loop"));

    f.cpu_s = 0.002; /* 2 x 50000 -> capped at 10000 */
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_ASYNC);
    cr_assert_eq(v.workers, 10000);

    m.nofile_limit = 1024; /* every wait holds a descriptor */
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_ASYNC);
    cr_assert_eq(v.workers, 512);
}

Test(advise_stage, cpython_single_thread_gets_processes)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("primes", 3.0, 2.95);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.workers, m.usable_cpus);
    cr_assert_eq(v.seed.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.seed.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.seed.workers, 2);
    cr_assert(has_reason(&v, "CPython"));
    cr_assert(has_reason(&v, "the work is computation"));
}

Test(advise_stage, gil_bound_threads_are_cpu_bound)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("gil", 8.0, 2.0);
    f.python = 1;
    f.nthreads = 4;
    f.wall_s = 2.0;
    f.gil_wait_s = 6.0;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.cpu_wall_ratio, 0.25, 1e-9);
    cr_assert_float_eq(v.demand_ratio, 1.0, 1e-9);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.workers, 2);
    /* The seeds read 0.25 as I/O-bound; the verdict says why it is not. */
    cr_assert_eq(v.seed.cls, PROF_CLASS_IO);
    cr_assert_eq(v.seed.model, PROF_MODEL_THREADS);
    cr_assert(has_reason(&v, "the seeds' CPU/wall of 0.25 reads as io-bound"));
    cr_assert(has_reason(&v, "thread time includes 75% GIL wait, not I/O"));
    /* No sampler: the threads kept 2 CPUs 50% busy, so the GIL's share is Amdahl's 1.0. */
    cr_assert_float_eq(v.work.serial_threads, 1.0, 1e-9);
    cr_assert_float_eq(v.predicted_speedup, 2.0, 1e-9);
    cr_assert_geq(v.runner_up, 0);
    cr_assert_float_eq(v.candidates[v.runner_up].speedup, 1.0, 1e-9);
    cr_assert(has_reason(&v, "4 threads spent 75% of their time waiting for the GIL; the work holds it 100% of its CPU time"));
    cr_assert(has_reason(&v, "threads cannot exceed 1.00x"));
    /* More threads of the same code: flat at 1.0x. */
    for (int i = 0; i < v.nscaling; i++)
        cr_assert_float_eq(v.scaling[i].speedup, 1.0, 1e-9);
}

Test(advise_stage, native_parallel_threads_get_threads)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("free-worker", 4.0, 3.9);
    f.nthreads = 2;
    f.lock_wait_s = 0.01;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, m.usable_cpus);
    cr_assert_eq(v.seed.model, PROF_MODEL_PROCESSES);
    cr_assert(has_reason(&v, "processes would add IPC for nothing"));
    cr_assert(has_reason(&v, "threads scale without IPC"));
    cr_assert_not(has_reason(&v, "not measured"));
    /* Already parallel on both CPUs: processes predict the same, and cost more. */
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-9);
    cr_assert_eq(v.candidates[v.runner_up].model, PROF_MODEL_PROCESSES);

    f.lock_measured = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert(has_reason(&v, "not measured"));
}

Test(advise_stage, native_global_lock_gets_sequential)
{
    /* Two threads that take turns on one lock held half the stage's wall: 2 s of CPU, 2 s waiting. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("locked-worker", 4.0, 2.0);
    f.nthreads = 2;
    f.lock_wait_s = 2.0;
    f.hottest_lock_hold_fraction = 0.5;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    /* Hold 0.5 x 4 s wall over 2 s CPU: the whole CPU time is under the lock. */
    cr_assert_float_eq(v.work.serial_threads, 1.0, 1e-9);
    cr_assert_float_eq(v.work.serial_processes, 1.0, 1e-9);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_eq(v.workers, 1);
    /* Threads today already take turns: no model beats them, one thread is as fast. */
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-9);
    cr_assert_geq(v.runner_up, 0);
    cr_assert(has_reason(&v, "holds one lock 100% of its CPU time"));
    cr_assert(has_reason(&v, "processes x 2 would reach 2.00x")); /* if the state can be split */
    cr_assert(has_reason(&v, "includes 50% lock wait"));
}

/*
 * The same stage on a busy host, as measured there: the threads were off CPU 0.3 s longer
 * than the shim timed them in the lock, and the sampler saw them blocked at the lock the
 * whole time. That remainder is not I/O to overlap: one thread still predicts as fast.
 * Without the sampler's causes the remainder stays a wait (the figures say nothing more).
 */
/* c_global_lock's stage as a busy host measured it (shim and schedstat figures). */
static struct prof_stage_figures locked_worker_busy_host(void)
{
    struct prof_stage_figures f = stage("locked-worker", 2.44, 1.24);
    f.nthreads = 2;
    f.wall_s = 1.22;
    f.runq_s = 0.09;
    f.lock_wait_s = 0.81;
    f.hottest_lock_hold_fraction = 1.17 / 1.22;
    return f;
}

Test(advise_stage, unexplained_off_cpu_time_is_not_work)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = locked_worker_busy_host();
    f.waits_sampled = 1;
    f.sampled_wait_s = 0.004;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.work.wait_s, 0.004, 1e-9);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_eq(v.workers, 1);

    f.waits_sampled = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_float_eq(v.work.wait_s, 2.44 - 1.24 - 0.09 - 0.81, 1e-9);

    /* Waits the sampler did see at I/O stay work, up to the remainder. */
    f.waits_sampled = 1;
    f.sampled_wait_s = 5.0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_float_eq(v.work.wait_s, 2.44 - 1.24 - 0.09 - 0.81, 1e-9);
}

/*
 * The same remainder, without the sampler, once the machine's stolen time explains it:
 * the kernel leaves a vCPU's stolen time out of the running thread's CPU and run-queue
 * figures, so it reads as off-CPU time; it is CPU the thread wanted, not a wait to overlap.
 */
Test(advise_stage, stolen_time_is_demand_not_a_wait)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = locked_worker_busy_host();
    f.steal_s = 0.28;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.work.wait_s, 2.44 - 1.24 - 0.09 - 0.81 - 0.28, 1e-9);
    cr_assert_float_eq(v.demand_ratio, (1.24 + 0.09 + 0.28) / (2.44 - 0.81), 1e-9);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert(has_reason(&v, "run-queue wait and stolen time counted as demand"));

    /* A single CPU-bound thread that lost a fifth of its vCPU: all of it is computation. */
    f = stage("crunch", 1.0, 0.8);
    f.steal_s = 0.2;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_float_eq(v.work.wait_s, 0.0, 1e-9);
    cr_assert_float_eq(v.demand_ratio, 1.0, 1e-9);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
}

Test(advise_stage, hot_lock_hold_alone_serializes)
{
    /* Work that runs under a lock 90% of the wall: more threads would queue on it. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("holder", 2.0, 1.9);
    f.hottest_lock_hold_fraction = 0.9;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_float_eq(v.work.serial_threads, 0.9 * 2.0 / 1.9, 1e-9);
    cr_assert(has_reason(&v, "holds one lock 95% of its CPU time"));
}

Test(advise_stage, quota_below_cores)
{
    struct prof_machine m = machine2();
    m.quota_cpus = 0.5;
    m.usable_cpus = 1;
    struct prof_stage_figures f = stage("primes", 3.0, 2.9);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    /* One usable CPU: a pool of one is the program as it is. */
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_eq(v.workers, 1);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-9);
    cr_assert_eq(v.seed.workers, 2); /* the seeds count physical cores */
    cr_assert(has_reason(&v, "this run may use 1 CPU (cgroup quota 0.50 CPUs of 2 in the affinity mask)"));
    cr_assert(has_reason(&v, "the seeds count 2 physical cores"));
}

/* 4 cores with 2 SMT siblings each: computation counts cores, waits count every CPU. */
static struct prof_machine machine_smt(void)
{
    struct prof_machine m = machine2();
    m.online_cpus = m.affinity_cpus = m.usable_cpus = 8;
    m.physical_cores = 4;
    return m;
}

Test(advise_stage, smt_siblings_are_not_cores_for_cpu_work)
{
    struct prof_machine m = machine_smt();
    struct prof_stage_figures f = stage("primes", 4.0, 3.9);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.workers, 4);
    /* Amdahl over 4 cores, not 8 CPUs: the sibling's share is not claimed. */
    cr_assert_float_eq(v.predicted_speedup, 4.0, 1e-6);
    cr_assert(has_reason(&v, "one per physical core; the 8 usable CPUs are 4 cores with SMT siblings"));
    cr_assert(has_reason(&v, "poolprof sweep --workers 4,8"));
    cr_assert_eq(v.seed.workers, 4);

    /* A quota below the cores: the quota decides, and no SMT sentence. */
    m.quota_cpus = 2.0;
    m.usable_cpus = 2;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 2);
    cr_assert_not(has_reason(&v, "SMT siblings"));

    /* Affinity to the two siblings of one core: one worker. */
    m = machine_smt();
    m.affinity_cpus = m.usable_cpus = 2;
    m.physical_cores = 1;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.workers, 1);
    cr_assert(has_reason(&v, "poolprof sweep --workers 1,2"));
}

Test(advise_stage, smt_siblings_still_wait_for_io)
{
    struct prof_machine m = machine_smt();
    struct prof_stage_figures f = stage("fetch", 2.0, 0.1);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    /* N = 8 usable CPUs x (1 + 1.9 / 0.1) = 160: a waiting thread needs no core. */
    cr_assert_eq(v.workers, 160);
}

Test(advise_stage, memory_per_thread_caps_io_threads)
{
    struct prof_machine m = machine2();
    m.mem_available_bytes = 1ull << 30;
    /* 4 threads waiting 95% of the time, each holding 64 MiB: 40 threads would need 2.5 GiB. */
    struct prof_stage_figures f = stage("fetch", 8.0, 0.4);
    f.nthreads = 4;
    f.current_model = PROF_MODEL_THREADS;
    f.current_workers = 4;
    f.python = 1;
    f.per_thread_bytes = 64ull << 20;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 16); /* 1 GiB / 64 MiB, not 2 x (1 + 7.6 / 0.4) = 40 */
    cr_assert(has_reason(&v, "capped at 16 by memory: 1.0 GiB available / 64.0 MiB per thread"));

    /* A cgroup memory limit below what the kernel reports available wins here too. */
    m.cgroup_mem_limit_bytes = 512ull << 20;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 8);

    /* Unknown per-thread memory: no cap. */
    f.per_thread_bytes = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 40);
}

Test(advise_stage, requests_cap_io_threads)
{
    struct prof_machine m = machine2();
    /* One thread fetching in turn, 95% of its time waiting on the network: 2 x (1 + 7.6 / 0.4) = 40
     * threads by the waits alone; it made 30 requests. */
    struct prof_stage_figures f = stage("fetch", 8.0, 0.4);
    f.python = 1;
    f.net_wait_s = 7.5;
    f.net_round_trips = 30;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 30);
    cr_assert(has_reason(&v, "capped at 30: the requests the stage made"));

    /* Requests below the 2 x usable CPUs floor: the floor does not raise it past them. */
    f.net_round_trips = 3;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 3);

    /* Hundreds of simultaneous waits by the ratio, 60 requests: threads, not an event loop. */
    struct prof_stage_figures g = stage("crawl", 100.0, 0.2);
    g.net_wait_s = 99.0;
    g.net_round_trips = 60;
    cr_assert_eq(prof_advise_stage(&g, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 60);
    g.net_round_trips = 0; /* unknown: the ratio alone, an event loop */
    cr_assert_eq(prof_advise_stage(&g, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_ASYNC);

    /* Waits that are mostly not network (sleeps, disk): the requests do not bound them. */
    f.net_round_trips = 30;
    f.net_wait_s = 1.0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 40);
}

Test(advise_stage, usable_cpus_fallback)
{
    /* A machine struct without usable_cpus falls back to affinity, never to 0 workers. */
    struct prof_machine m = {0};
    m.affinity_cpus = 3;
    struct prof_stage_figures f = stage("native", 1.0, 0.95);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 3);
    cr_assert_eq(v.seed.workers, 3); /* no physical cores known: usable CPUs */
    m.affinity_cpus = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 1);
}

Test(advise_stage, memory_caps_processes)
{
    struct prof_machine m = machine2();
    m.usable_cpus = m.affinity_cpus = m.online_cpus = m.physical_cores = 8;
    m.mem_available_bytes = 3ull << 30;
    struct prof_stage_figures f = stage("model", 10.0, 9.8);
    f.python = 1;
    f.per_worker_bytes = 1ull << 30;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.workers, 3);
    cr_assert(has_reason(&v, "3.0 GiB of memory available / 1.0 GiB per worker"));

    /* A cgroup limit below what the kernel reports available wins. */
    m.cgroup_mem_limit_bytes = 2ull << 30;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 2);

    /* Not even one worker fits: still one (the stage runs today). */
    f.per_worker_bytes = 4ull << 30;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 1);

    /* Memory per worker unknown: no cap. */
    f.per_worker_bytes = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 8);
}

Test(advise_stage, chatty_process_pool_is_not_processes)
{
    /* A pool of 2 workers that spends its CPU pickling: 1.4 s of 3.6 s in serializer frames, 80 MB sent. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("pool", 4.0, 3.6);
    f.python = 1;
    f.nprocesses = 3;
    f.ipc_measured = 1;
    f.ipc_s = 1.2; /* 30% */
    f.ipc_bytes = 80000000;
    f.serialize_measured = 1;
    f.serialize_s = 1.4;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.work.current_model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.work.current_workers, 2);
    cr_assert_eq(v.work.ipc_estimated, 0);
    cr_assert_float_eq(v.work.ipc_s, 1.4 + 0.04, 1e-9); /* serialization + 80 MB x 0.5 ns copy */
    cr_assert_float_eq(v.work.cpu_s, 3.6 - 1.44, 1e-9);
    cr_assert(v.model == PROF_MODEL_SEQUENTIAL || v.model == PROF_MODEL_THREADS);
    cr_assert_neq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_geq(v.predicted_speedup, 0.99);
    cr_assert(has_reason(&v, "IPC is 30% of thread time"));
    cr_assert(has_reason(&v, "moving the data between processes costs 1.440 s"));

    /* Serialization not sampled: estimated from the bytes (80 MB x 10 ns = 0.8 s, 29% of the
     * work's CPU), and said to be. The seeds' 15% counts a worker's wait for its next task;
     * the cost of moving the data does not stop processes from paying off here. */
    f.serialize_measured = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.work.ipc_estimated, 1);
    cr_assert_float_eq(v.work.ipc_s, 0.8, 1e-9);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert(has_reason(&v, "above the seeds' 15%, but moving the data costs 0.800 s (estimated from 80.0 MB"));

    /* Nothing measured about IPC at all: no cost to hold processes back. */
    f.ipc_measured = 0;
    f.ipc_bytes = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
}

/* The figures of tests/workloads/chatty_pool.py 2 1 as poolprof measured them: 20000 tasks of
 * ~10 us through Pool.imap at chunksize 1, the dispatcher's feeder and result threads paying
 * a message each way per task. */
static struct prof_stage_figures chatty_pool(void)
{
    struct prof_stage_figures f = stage("pool", 2.41, 0.745);
    f.python = 1;
    f.nprocesses = 3;
    f.nthreads = 6;
    f.wall_s = 0.46;
    f.runq_s = 0.90;
    f.lock_wait_s = 0.42;
    f.gil_wait_s = 0.61;
    f.evloop_wait_s = 0.03;
    f.ipc_measured = 1;
    f.ipc_s = 0.26;
    f.ipc_base_s = 1.0;
    f.ipc_bytes = 1596430;
    f.ipc_messages = 40007;
    f.serialize_measured = 1;
    f.serialize_s = 0.433;
    f.gil_held_measured = 1;
    f.gil_held_share = 0.54;
    f.pool_dispatcher = 1;
    f.dispatcher_cpu_s = 0.348;
    return f;
}

Test(advise_stage, chatty_pool_gets_a_chunksize)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = chatty_pool();
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    /* Serialization beyond what 1.6 MB cost at 10 ns/byte ran per message: not the bytes' cost. */
    cr_assert_float_eq(v.work.ipc_s, 1596430 * 10.5e-9, 1e-9);
    cr_assert_eq(v.work.round_trips, 20003);
    /* The dispatcher's CPU less its half of the bytes' cost, paid serially. */
    cr_assert_float_eq(v.work.msg_s, 0.348 - v.work.ipc_s / 2, 1e-9);
    cr_assert_float_eq(v.work.cpu_s, 0.745 - v.work.ipc_s - v.work.msg_s, 1e-9);
    /* As it runs, the dispatcher paces the pool: today's prediction is its time. */
    cr_assert_float_eq(v.work.current_s, v.work.ipc_s / 2 + v.work.msg_s, 1e-9);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.workers, 2);
    /* Dispatcher at most 5% of a chunk's work on one worker: 0.34 s x 2 / (0.05 x 0.39 s) = 35. */
    cr_assert_eq(v.chunksize, (int)ceil(v.work.msg_s * 2 / (0.05 * v.work.cpu_s)));
    cr_assert_eq(v.chunksize, 35);
    cr_assert_gt(v.predicted_speedup, 1.4);
    cr_assert(has_reason(&v, "the pool moved 20003 tasks, a message out and one back per task (40007 sends)"));
    cr_assert(has_reason(&v, "batch the tasks: chunksize=35"));
}

Test(advise_stage, chatty_pool_chunks_keep_four_per_worker)
{
    /* The same pool with 240 tasks: chunks of 35 would leave each worker fewer than 4, so the
     * chunk shrinks to 240 / (2 x 4) = 30. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = chatty_pool();
    f.ipc_messages = 480;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.work.round_trips, 240);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.chunksize, 30);

    /* Under 200 round trips: no per-message model, no chunksize. */
    f.ipc_messages = 398;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.work.round_trips, 0);
    cr_assert_eq(v.work.msg_s, 0);
    cr_assert_eq(v.chunksize, 0);
}

/*
 * A pool already batched: 503 round trips, the dispatcher's CPU mostly per task (iterating
 * the input, collecting results), which no chunksize removes. Where batching further predicts
 * less than 10% over the same pool unbatched, the smaller change wins: no chunksize. Swept
 * over the dispatcher's CPU, since which figures land in that band depends on the model.
 */
Test(advise_stage, batching_that_buys_under_ten_percent_is_not_advised)
{
    struct prof_machine m = machine2();
    int in_band = 0, advised = 0;
    for (double disp = 0.02; disp <= 0.30; disp += 0.005) {
        struct prof_stage_figures f = chatty_pool();
        f.ipc_messages = 1007;
        f.ipc_bytes = 80000;
        f.dispatcher_cpu_s = disp;
        struct prof_verdict v;
        cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
        double plain = 0, batched = 0;
        for (int i = 0; i < v.ncandidates; i++) {
            if (v.candidates[i].model != PROF_MODEL_PROCESSES)
                continue;
            if (v.candidates[i].chunksize > 1)
                batched = v.candidates[i].speedup;
            else
                plain = fmax(plain, v.candidates[i].speedup);
        }
        if (batched > plain && batched <= 1.10 * plain) {
            in_band++;
            cr_expect_eq(v.chunksize, 0, "dispatcher %.3f s: batched %.3fx vs %.3fx unbatched", disp, batched, plain);
        }
        if (batched > 1.10 * plain && v.model == PROF_MODEL_PROCESSES)
            advised += v.chunksize > 1;
    }
    cr_assert_gt(in_band, 0, "some dispatcher CPU puts batching's gain under 10%%");
    cr_assert_gt(advised, 0, "and more of it makes batching worth advising");
}

Test(advise_stage, busy_dispatcher_with_heavy_tasks_gets_no_chunksize)
{
    /* Same messages, but each task carries 1 ms of work: the dispatcher's 17 us per task is
     * under the seeds' 15% of the pool's time, and batching is not the answer. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = chatty_pool();
    f.cpu_s = 20.0 + 0.348;
    f.thread_s = 24.0;
    f.wall_s = 10.5;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_gt(v.work.msg_s, 0);
    cr_assert_lt(v.work.msg_s, 0.15 * v.work.current_s);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.chunksize, 0);
    for (int i = 0; i < v.ncandidates; i++)
        cr_assert_eq(v.candidates[i].chunksize, 0);
    cr_assert_not(has_reason(&v, "batch the tasks"));
}

/*
 * Issue 25, class 5: a pool of near-free tasks. The figures of bench/corpus/py_card_check (40000
 * Luhn checks through Pool(4).map at chunksize 1) as poolprof measured them, with the sampler's
 * split of the pool's CPU: 0.017 s of the workers' 0.49 s ran the task, the rest was the pool's
 * loop; 0.59 s of the dispatcher's 0.77 s was the pool's machinery, the rest the program around
 * it (making the 40000 numbers). Its best, measured, is inline: 0.24 s against 1.27 s.
 */
static struct prof_stage_figures near_free_pool(void)
{
    struct prof_stage_figures f = stage("pool", 7.11, 1.258);
    f.python = 1;
    f.nprocesses = 5;
    f.nthreads = 8;
    f.wall_s = 1.27;
    f.runq_s = 3.776;
    f.lock_wait_s = 2.138;
    f.gil_wait_s = 0.563;
    f.evloop_wait_s = 0.257;
    f.ipc_measured = 1;
    f.ipc_s = 1.641;
    f.ipc_base_s = 2.902;
    f.ipc_bytes = 5559560;
    f.ipc_messages = 80009;
    f.serialize_measured = 1;
    f.serialize_s = 0.942;
    f.gil_held_measured = 1;
    f.gil_held_share = 0.59;
    f.startup_cpu_s = 0.0014;
    f.current_model = PROF_MODEL_PROCESSES;
    f.current_workers = 4;
    f.pool_dispatcher = 1;
    f.dispatcher_cpu_s = 0.7665;
    f.pool_split_measured = 1;
    f.dispatcher_pool_cpu_s = 0.593;
    f.worker_cpu_s = 0.4918;
    f.task_cpu_s = 0.0175;
    return f;
}

Test(advise_stage, chatty_pool_of_near_free_tasks_runs_inline)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = near_free_pool();
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    /* The work is the tasks' own CPU and the program around the pool, not the pool's loop. */
    cr_assert(v.work.task_measured);
    double own = 0.7665 - 0.593 - 0.0014;
    cr_assert_float_eq(v.work.own_s, own, 1e-6);
    cr_assert_float_eq(v.work.cpu_s, own + 0.0175, 1e-3); /* the processes' CPU sums to 1.258 within 0.3 ms */
    /* The pool spent more on each task than the task cost: overhead is not capped at the work. */
    cr_assert_gt(v.work.msg_s + v.work.worker_msg_s, 10 * 0.0175);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_eq(v.workers, 1);
    cr_assert_eq(v.chunksize, 0);
    /* Inline: the tasks' own CPU and the program around them, predicted faster than the measured run. */
    cr_assert_eq(v.candidates[0].model, PROF_MODEL_SEQUENTIAL);
    cr_assert_float_eq(v.candidates[0].seconds, v.work.cpu_s, 2e-3); /* and the start-up and untimed waits' share */
    cr_assert_gt(v.predicted_speedup, 1.0);
    cr_assert(has_reason(&v, "inline: the tasks cost 0.4 us each"));
    cr_assert(has_reason(&v, "run inline, the stage is predicted 0.19 s"));
    /* Neither more workers nor batched ones beat it by the 10% a change must buy. */
    for (int i = 1; i < v.ncandidates; i++)
        cr_assert_leq(v.candidates[i].speedup, 1.10 * v.predicted_speedup, "%s x %d", prof_model_name(v.candidates[i].model),
                      v.candidates[i].workers);
}

Test(advise_stage, chatty_pool_of_heavy_tasks_stays_processes)
{
    /* The same pool, each task 500 us of the workers' CPU in its own code: the pool's 27 us per
     * task is a small share, and two workers halve the work. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = near_free_pool();
    f.task_cpu_s = 20.0;
    f.worker_cpu_s = 20.0 + 0.4743;
    f.cpu_s = f.worker_cpu_s + f.dispatcher_cpu_s;
    f.thread_s = 26.0;
    f.wall_s = 11.0;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert(v.work.task_measured);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.workers, 2);
    cr_assert_gt(v.candidates[0].seconds, 20.0);
    cr_assert_gt(v.predicted_speedup * 0.9, v.candidates[0].speedup);
}

Test(advise_stage, a_pool_of_gil_releasing_tasks_can_be_threads)
{
    /* py_frame_stats: 200 frames of 2.6 MiB, each a numpy task of ~6 ms in a process pool of 2.
     * The workers held the GIL in 0.26 of their sampled ticks over 2.0 s of CPU, 1.28 s of it the
     * tasks': the tasks held it at most 0.41 of their time, so threads share the work without
     * the 553 MB of pickling. Assumed to hold it (as for bytecode tasks), they read sequential,
     * and threads x 2 was measured best. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("pool", 10.2 - 2.22 - 1.75, 2.69);
    f.python = 1;
    f.nprocesses = 3;
    f.nthreads = 5;
    f.wall_s = 2.52;
    f.runq_s = 3.37;
    f.lock_wait_s = 0.44;
    f.gil_wait_s = 0.028;
    f.evloop_wait_s = 2.21;
    f.ipc_measured = 1;
    f.ipc_s = 3.72;
    f.ipc_send_wait_s = 2.57;
    f.ipc_base_s = 6.94;
    f.ipc_bytes = 553045258;
    f.ipc_messages = 805;
    f.serialize_measured = 1;
    f.serialize_s = 1.257;
    f.gil_held_measured = 1;
    f.gil_held_share = 0.45; /* over all its processes: the dispatcher reads and pickles under the GIL */
    f.worker_gil_measured = 1;
    f.worker_gil_held_share = 0.2553;
    f.startup_cpu_s = 0.002;
    f.current_model = PROF_MODEL_PROCESSES;
    f.current_workers = 2;
    f.pool_dispatcher = 1;
    f.dispatcher_cpu_s = 0.69;
    f.pool_split_measured = 1;
    f.dispatcher_pool_cpu_s = 0.45;
    f.worker_cpu_s = 2.0;
    f.task_cpu_s = 1.284;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert(v.work.task_measured);
    cr_assert_float_eq(v.work.serial_threads, 0.2553 * 2.0 / 1.284, 1e-3);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    /* The workers held it in 0.7 of their ticks: the bound passes 1, bytecode tasks, assumed to hold it. */
    f.worker_gil_held_share = 0.7;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.work.serial_threads, 1.0, 1e-9);
    cr_assert_neq(v.model, PROF_MODEL_THREADS);
    /* Sampled in the tasks' own code (held in 0.27 of the ticks there), that share stands,
     * whatever the workers' machinery held. */
    f.task_gil_measured = 1;
    f.task_gil_held_share = 0.27;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.work.serial_threads, 0.27, 1e-9);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_str_eq(v.work.serial_source, "GIL holder sampled per tick in the code the pool's tasks ran");
    /* Bytecode tasks hold it throughout: not threads. */
    f.task_gil_held_share = 1.0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_neq(v.model, PROF_MODEL_THREADS);
}

Test(advise_stage, chatty_pool_with_measured_tasks_still_gets_a_chunksize)
{
    /* tests/workloads/chatty_pool.py 2 1 with the sampler's split (the run behind
     * test_chunksize.sh): tasks of ~15 us, the pool ~20 us per task in its dispatcher and ~5 in
     * its workers, nothing around the pool. Per message the pool costs more than a task, but
     * batched the overhead falls away and two workers halve the work: processes, chunked. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = chatty_pool();
    f.pool_split_measured = 1;
    f.dispatcher_pool_cpu_s = 0.33;
    f.worker_cpu_s = 0.745 - 0.348;
    f.task_cpu_s = 0.30;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert(v.work.task_measured);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_gt(v.chunksize, 8);
    cr_assert_gt(v.predicted_speedup, 1.10 * v.candidates[0].speedup);
    cr_assert(has_reason(&v, "batch the tasks: chunksize="));
}

Test(advise_stage, gil_releasing_threads_get_threads)
{
    /* numpy-style: 4 CPython threads keep both CPUs busy (7.6 s CPU in 4 s) and rarely hold the GIL. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("matmul", 16.0, 7.6);
    f.python = 1;
    f.nthreads = 4;
    f.wall_s = 4.0;
    f.runq_s = 8.0;
    f.gil_wait_s = 0.2;
    f.gil_held_measured = 1;
    f.gil_held_share = 0.05;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_float_eq(v.work.serial_threads, 0.05, 1e-9);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 2);
    cr_assert_str_eq(v.work.serial_source, "GIL holder sampled per tick");

    /* No sampler: the parallelism the threads achieved bounds the GIL's share. */
    f.gil_held_measured = 0;
    f.gil_held_share = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.work.serial_threads, (4.0 / 7.6 - 0.5) / 0.5, 1e-9);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_str_eq(v.work.serial_source, "parallelism the threads achieved");
}

Test(advise_stage, prediction_io_threads)
{
    /* One CPython thread: 0.1 s of CPU and 1.9 s of waiting. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("fetch", 2.0, 0.1);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 40);
    /* max(0.1 s of GIL-held CPU, 2.0 s / 40) = 0.1 s: 20x over the measured 2 s. */
    cr_assert_float_eq(v.predicted_speedup, 20.0, 1e-6);
    cr_assert_geq(v.runner_up, 0);
    cr_assert_eq(v.candidates[v.runner_up].model, PROF_MODEL_PROCESSES);
    cr_assert(has_reason(&v, "threads x 40 predicted 20.00x over the measured run; runner-up processes x 2 at 2.00x"));
    /* Scaling of the stage's own code on threads: 2 workers halve it, 32 reach the GIL's floor. */
    int seen = 0;
    for (int i = 0; i < v.nscaling; i++) {
        if (v.scaling[i].workers == 2) {
            cr_assert_float_eq(v.scaling[i].speedup, 2.0, 1e-6);
            seen++;
        }
        if (v.scaling[i].workers == 32) {
            cr_assert_float_eq(v.scaling[i].speedup, 20.0, 1e-6);
            seen++;
        }
        if (i > 0)
            cr_assert_gt(v.scaling[i].workers, v.scaling[i - 1].workers);
    }
    cr_assert_eq(seen, 2);
}

Test(advise_stage, event_loop_program_gets_async)
{
    /* The program already waits in epoll most of its life: async is the cheap way to more concurrency. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("crawler", 10.0, 0.5);
    f.python = 1;
    f.evloop_wait_s = 9.0;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert_eq(v.model, PROF_MODEL_ASYNC);
    cr_assert(has_reason(&v, "already runs an event loop"));
}

Test(advise_stage, candidates_are_consistent)
{
    /* Every branch: the chosen candidate is in the list, nothing beats it by more than 10%. */
    struct prof_machine m = machine2();
    double cpus[] = {0.0004, 0.1, 0.6, 1.1, 1.9};
    for (size_t i = 0; i < sizeof cpus / sizeof *cpus; i++)
        for (int py = 0; py < 2; py++) {
            struct prof_stage_figures f = stage("s", 2.0, cpus[i]);
            f.python = py;
            struct prof_verdict v;
            cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
            cr_assert_geq(v.ncandidates, 1);
            cr_assert_gt(v.predicted_speedup, 0);
            int found = 0;
            for (int k = 0; k < v.ncandidates; k++) {
                cr_assert_leq(v.candidates[k].speedup, v.predicted_speedup * 1.10 + 1e-9);
                found |= v.candidates[k].model == v.model && v.candidates[k].workers == v.workers;
            }
            cr_assert(found);
        }
}

Test(advise_stage, runq_counts_as_cpu_demand)
{
    /* 4 native threads on 2 CPUs: half their time runnable but not running. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("oversubscribed", 8.0, 3.9);
    f.nthreads = 4;
    f.runq_s = 3.9;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.seed.cls, PROF_CLASS_MIXED);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert(has_reason(&v, "waiting for a CPU"));
}

Test(advise_stage, mixed_python_gets_hybrid)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("etl", 2.0, 1.1); /* 0.55 */
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_MIXED);
    cr_assert_eq(v.model, PROF_MODEL_HYBRID);
    cr_assert_eq(v.workers, 4); /* ceil(2 x (1 + 0.9/1.1)) = 4, the floor */
    cr_assert(has_reason(&v, "CPU part: 2 workers"));
    cr_assert(has_reason(&v, "I/O part: "));
    cr_assert_eq(v.seed.cls, PROF_CLASS_MIXED);
    cr_assert_eq(v.seed.model, PROF_MODEL_HYBRID);
    cr_assert_eq(v.seed.workers, 8);
}

Test(advise_stage, mixed_native_free_threads)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("compress-upload", 2.0, 1.0);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_MIXED);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 4);
    cr_assert(has_reason(&v, "the seeds decouple mixed stages"));
}

Test(advise_stage, idle)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("waiter", 5.0, 0.0004);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IDLE);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_eq(v.workers, 1);
    cr_assert_eq(v.seed.cls, PROF_CLASS_IO);
    cr_assert(has_reason(&v, "under 1 ms of CPU"));

    struct prof_stage_figures z = stage("empty", 0.0, 0.0);
    cr_assert_eq(prof_advise_stage(&z, &m, &v), 0);
    cr_assert_eq(v.cls, PROF_CLASS_IDLE);
    cr_assert_eq(v.workers, 1);
    cr_assert_float_eq(v.cpu_wall_ratio, 0.0, 1e-12);
}

/*
 * Issue 25: only separate, repeated waits overlap. Figures as the shim counts them in every
 * process (waits_counted SHIM), one thread, native code unless said.
 */
static struct prof_stage_figures counted(const char *name, double thread_s, double cpu_s)
{
    struct prof_stage_figures f = stage(name, thread_s, cpu_s);
    f.ipc_measured = 1;
    f.waits_counted = PROF_WAITS_SHIM;
    return f;
}

Test(advise_waits, one_long_sleep_is_idle)
{
    /* A C program sleeping 1 s once: 1.5 ms of CPU, all before main. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("sleep1", 1.003, 0.0015);
    f.startup_cpu_s = 0.00145;
    f.sleep_s = 1.0;
    f.sleeps = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IDLE);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_eq(v.workers, 1);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    cr_assert(has_reason(&v, "before main"));
    cr_assert(has_reason(&v, "one wait of 1.00 s, which no pool shortens"));
    cr_assert(has_reason(&v, "no two of its waits could overlap"));

    /* The same figures uncounted (no shim, no /proc switch counts) keep the old reading: every wait overlaps. */
    f.waits_counted = PROF_WAITS_UNKNOWN;
    f.startup_cpu_s = 0;
    f.cpu_s = 0.02;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert_gt(v.predicted_speedup, 10.0);
}

Test(advise_waits, one_long_sleep_after_real_cpu_predicts_nothing)
{
    /* python3 -c 'import time; time.sleep(5)': 20 ms of interpreter start-up after main, one 5 s sleep. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("sleep5", 5.03, 0.022);
    f.python = 1;
    f.startup_cpu_s = 0.0015;
    f.sleep_s = 5.0;
    f.sleeps = 1;
    f.disk_reads = 16;
    f.io_wait_s = 0.002;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    /* No candidate finishes the sleep sooner: the best is the 20 ms of CPU, 0.4%. */
    for (int i = 0; i < v.ncandidates; i++)
        cr_assert_leq(v.candidates[i].speedup, 1.01, "%s x %d predicts %.3fx", prof_model_name(v.candidates[i].model),
                      v.candidates[i].workers, v.candidates[i].speedup);
    cr_assert_float_eq(v.work.longest_s, 5.0, 1e-9);
    cr_assert(has_reason(&v, "one wait of 5.00 s"));
}

Test(advise_waits, separate_sleeps_overlap_at_most_so_many_fold)
{
    /* 50 sleeps of 20 ms, one after another. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("sleeps", 1.004, 0.003);
    f.startup_cpu_s = 0.0015;
    f.sleep_s = 1.0;
    f.sleeps = 50;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 50, "raw 2 x (1 + 1.0 / 0.0015) = 1336, capped at the 50 sleeps");
    cr_assert_gt(v.predicted_speedup, 1.0);
    cr_assert_leq(v.predicted_speedup, 50.0);
    cr_assert_float_eq(v.work.episodes, 50.0, 1e-9);
    cr_assert_float_eq(v.work.longest_s, 0.02, 1e-9);
    cr_assert(has_reason(&v, "capped at 50: the separate waits the stage made (0 requests answered, 0 file reads, 50 sleeps)"));
    for (int i = 0; i < v.nscaling; i++)
        cr_assert_leq(v.scaling[i].speedup, 50.0, "x%d predicts %.2f", v.scaling[i].workers, v.scaling[i].speedup);
    /* Five of them are five waits: five-fold at most. */
    f.sleeps = 5;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.workers, 5);
    cr_assert_leq(v.predicted_speedup, 5.0);
    cr_assert_gt(v.predicted_speedup, 4.0);
}

Test(advise_waits, no_pool_beats_the_longest_kind_of_wait)
{
    /* 100 file reads of 10 ms and one 1 s sleep: 2 s of waits, never done in under 1 s. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("mixed-waits", 2.05, 0.05);
    f.io_wait_s = 1.0;
    f.disk_reads = 100;
    f.sleep_s = 1.0;
    f.sleeps = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.work.longest_s, 1.0, 1e-9);
    cr_assert_float_eq(v.work.episodes, 2.0, 1e-9);
    cr_assert_leq(v.predicted_speedup, 2.05);
    /* The reads alone are 100 waits of 10 ms: a pool of 100 at most. */
    f.sleep_s = 0;
    f.sleeps = 0;
    f.thread_s = 1.05;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 42, "2 x (1 + 1.0 / 0.05)");
    cr_assert_gt(v.predicted_speedup, 10.0);
}

Test(advise_waits, requests_overlap_input_nobody_asked_for_does_not)
{
    /* 40 requests answered in 2 s of network wait: a pool of 40 at most. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("fetch", 2.1, 0.1);
    f.python = 1;
    f.io_wait_s = f.net_wait_s = 2.0;
    f.net_round_trips = 40;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 40);
    cr_assert_gt(v.predicted_speedup, 10.0);
    /* The same receives with no send before them: waiting for input (a consumer, a server's next
     * client), which more workers do not make arrive sooner. */
    f.net_round_trips = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    cr_assert(has_reason(&v, "waiting for input no request of its own asked for"));
    /* ...and with under 1 ms of CPU, nothing is left to spread: idle. */
    f.cpu_s = 0.0005;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.cls, PROF_CLASS_IDLE);
}

Test(advise_waits, a_writer_blocked_on_a_full_pipe_gains_nothing_from_more_writers)
{
    /* 100 ms of CPU, then 1 s blocked writing into a pipe that leads out of the tree. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("writer", 1.1, 0.1);
    f.io_wait_s = f.net_wait_s = f.net_send_wait_s = 1.0;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    cr_assert_float_eq(v.work.wait_s, 0.0, 1e-12);
    cr_assert_float_eq(v.work.fixed_s, 1.0, 1e-9);
    cr_assert(has_reason(&v, "of sends waiting for a reader (back-pressure"));
    /* The reader is a process of the tree: the same, through IPC. */
    f.io_wait_s = f.net_wait_s = f.net_send_wait_s = 0;
    f.ipc_s = f.ipc_send_wait_s = 1.0;
    f.ipc_bytes = 1 << 20;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    cr_assert(has_reason(&v, "back-pressure"));
    /* Before issue 25 this writer's 1 s was overlapped; uncounted, it still is not I/O (IPC never was). */
    f.cpu_s = 0.0003;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.cls, PROF_CLASS_IDLE);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
}

Test(advise_waits, untimed_waits_and_start_up_are_not_work)
{
    /* `true`: 1.5 ms of CPU, 1.45 of it before main, 2.5 ms off CPU in no timed call. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("true", 0.0047, 0.0015);
    f.startup_cpu_s = 0.00145;
    f.runq_s = 0.0007;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IDLE);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    /* find blocked in stdio's own writes (no call the shim times): 25 ms of CPU, 3 s off CPU. */
    f = counted("find", 3.01, 0.025);
    f.startup_cpu_s = 0.0015;
    f.runq_s = 0.026;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    cr_assert(has_reason(&v, "off CPU where the shim timed no call"));
    for (int i = 0; i < v.ncandidates; i++)
        cr_assert_leq(v.candidates[i].speedup, 1.01);
}

Test(advise_stage, an_unread_cpython_says_which_figures_are_estimates)
{
    /* CPython 3.12 under the shim: GIL waits timed, but no GIL holder per tick and no
     * serialization sampled. The verdict stands on assumptions, and says so. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("overall", 3.3, 2.65);
    f.python = 1;
    f.nthreads = 2;
    f.gil_wait_s = 0.61;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert(!has_reason(&v, "could not be read"));
    f.python_unread = 1;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert(has_reason(&v, "its CPython could not be read in 1 of its processes (measurement.notes): the threads' serial share is parallelism the threads achieved"));
}

Test(advise_stage, free_threaded_cpython_threads_are_parallel)
{
    /* One CPython thread computing, the same figures with and without a GIL. With one, its
     * bytecode holds it: threads would take turns, processes each have their own. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("primes", 3.0, 2.95);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_float_eq(v.work.serial_threads, 1.0, 1e-9);
    cr_assert(!has_reason(&v, "free-threaded"));

    /* A free-threaded build without its GIL, and no lock held: its threads run in parallel, as
     * native ones do, and the threads x 2 that match processes x 2 cost no IPC. */
    f.gil_absent = 1;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 2);
    cr_assert_float_eq(v.work.serial_threads, 0.0, 1e-9);
    cr_assert_str_eq(v.work.serial_source, "no GIL (free-threaded CPython) and no lock held");
    cr_assert(has_reason(&v, "its CPython is a free-threaded build running without its GIL: its Python threads can run in "
                             "parallel, and their serial share is the measured lock holds alone (0%"));
    cr_assert(has_reason(&v, "CPython without a GIL that waits on locks 0% of its time"));
    cr_assert(!has_reason(&v, "releases the GIL"));
    cr_assert(!has_reason(&v, "holds the GIL"));

    /* Amdahl on the measured lock holds alone: a lock held 90% of the wall serializes them again. */
    f.nthreads = 2;
    f.hottest_lock_hold_fraction = 0.9;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.work.serial_threads, 0.9 * 3.0 / 2.95, 1e-9);
    cr_assert_float_eq(v.work.serial_threads, v.work.serial_processes, 1e-12, "no GIL term beside the lock's");
    cr_assert_str_eq(v.work.serial_source, "hold time of the hottest lock over CPU time");
    cr_assert_neq(v.model, PROF_MODEL_THREADS);
    cr_assert(has_reason(&v, "measured lock holds alone (92%: hold time of the hottest lock over CPU time)"));
}

Test(advise_stage, a_pipeline_of_programs_breaks_a_tie_toward_processes)
{
    /* cat | tr -cs | tr | sort | uniq -c: 1.0 s of native CPU in five one-thread programs, run
     * sequentially as one pipeline. Threads and processes x 2 predict the same; threads are the
     * cheaper change for one program, but none of these has threads to add: more pipelines. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("overall", 1.05, 1.0);
    f.nprocesses = 12;
    f.nthreads = 12;
    f.wall_s = 1.17;
    f.current_model = PROF_MODEL_SEQUENTIAL;
    f.current_workers = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    f.pipeline = 1;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.workers, 2);
    cr_assert(has_reason(&v, "pipeline of programs"));
}

Test(advise_waits, a_launcher_waiting_for_its_children_is_idle)
{
    /* make -j1 over 20 compressions: 1.2 s of wall, 1.17 s of it joining children (taken out of
     * thread time), 9.2 ms of CPU (1.3 ms before main), 19 ms off CPU in no timed call. Before,
     * the 32 ms left read as a 29% CPU, io-bound stage: processes x 2, 1.16x. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("make", 0.032, 0.0092);
    f.wall_s = 1.20;
    f.startup_cpu_s = 0.0013;
    f.runq_s = 0.0035;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IDLE);
    cr_assert_eq(v.model, PROF_MODEL_SEQUENTIAL);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    cr_assert(has_reason(&v, "under 2% of the stage's wall time"));
    /* The same figures over a stage of their own length are work to share. */
    f.wall_s = 0.032;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_neq(v.cls, PROF_CLASS_IDLE);
}

Test(advise_waits, switches_bound_the_waits_without_the_shim)
{
    /* Attached to a service: a named thread blocked the whole 3 s window; no wait ended. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("poller", 3.0, 0.0);
    f.waits_counted = PROF_WAITS_SWITCHES;
    f.waits_sampled = 1;
    f.sampled_wait_s = 3.0;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_IDLE);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    /* With 2 ms of CPU it is still one wait: no speedup. */
    f.cpu_s = 0.002;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.predicted_speedup, 1.0, 1e-12);
    cr_assert(has_reason(&v, "none of which ended"));
    /* A worker whose 100 waits ended: they may overlap, at most 100-fold. */
    f.switches = 100;
    f.cpu_s = 0.05;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_leq(v.workers, 100);
    cr_assert(has_reason(&v, "voluntary context switches"));
    cr_assert_gt(v.predicted_speedup, 10.0);
    cr_assert_leq(v.predicted_speedup, 100.0);
}

Test(advise_waits, a_process_pools_own_idling_is_not_fixed)
{
    /* A pool of 2 workers: their IPC is waiting for the next task, not a wait to keep. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = counted("pool", 4.0, 3.0);
    f.python = 1;
    f.nprocesses = 3;
    f.nthreads = 3;
    f.ipc_s = 0.9;
    f.ipc_send_wait_s = 0.1;
    f.current_model = PROF_MODEL_PROCESSES;
    f.current_workers = 2;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_float_eq(v.work.fixed_s, 0.1, 1e-9, "only what is neither CPU, the pool's IPC nor a counted wait");
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
}

Test(advise_stage, invalid)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("x", 1.0, 0.5);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(NULL, &m, &v), PROF_EINVAL);
    cr_assert_eq(prof_advise_stage(&f, NULL, &v), PROF_EINVAL);
    cr_assert_eq(prof_advise_stage(&f, &m, NULL), PROF_EINVAL);
    f.cpu_s = -1;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), PROF_EINVAL);
    f.cpu_s = NAN;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), PROF_EINVAL);
    f.cpu_s = 0.5;
    f.gil_wait_s = -0.1;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), PROF_EINVAL);
    f.gil_wait_s = 0;
    f.sleep_s = NAN;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), PROF_EINVAL);
    f.sleep_s = 0;
    f.startup_cpu_s = -0.001;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), PROF_EINVAL);
}

/* The seeds' two-stage pipeline: fetch on threads, transform on processes. */
static void pipeline(struct prof_verdict st[2], double share[2], const struct prof_machine *m,
                     double fetch_s, double transform_s)
{
    struct prof_stage_figures fetch = stage("fetch", fetch_s, fetch_s * 0.05);
    fetch.python = 1;
    fetch.nthreads = 2;
    struct prof_stage_figures transform = stage("transform", transform_s, transform_s * 0.97);
    transform.python = 1;
    transform.nprocesses = 2;
    transform.nthreads = 2;
    cr_assert_eq(prof_advise_stage(&fetch, m, &st[0]), 0);
    cr_assert_eq(prof_advise_stage(&transform, m, &st[1]), 0);
    cr_assert_eq(st[0].model, PROF_MODEL_THREADS);
    cr_assert_eq(st[1].model, PROF_MODEL_PROCESSES);
    share[0] = fetch_s;
    share[1] = transform_s;
}

Test(advise_overall, hybrid_from_two_stages)
{
    struct prof_machine m = machine2();
    struct prof_verdict st[2];
    double share[2];
    pipeline(st, share, &m, 1.2, 4.5);
    struct prof_stage_figures all = stage("overall", 6.0, 4.5);
    all.python = 1;
    all.nprocesses = 3;
    all.nthreads = 5;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_overall(&all, st, share, 2, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_HYBRID);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    struct prof_verdict own;
    cr_assert_eq(prof_advise_stage(&all, &m, &own), 0);
    cr_assert_eq(v.workers, own.workers);
    cr_assert(has_reason(&v, "stage fetch (io-bound, 21% of the stages' work) wants threads x"));
    cr_assert(has_reason(&v, "stage transform (cpu-bound, 79% of the stages' work) wants processes x 2"));
    /* Each stage at its own prediction beats the run as one pool, which is the runner-up. */
    cr_assert_gt(v.predicted_speedup, 1.0);
    cr_assert_geq(v.runner_up, 0);
    cr_assert_neq(v.candidates[v.runner_up].model, PROF_MODEL_HYBRID);
    cr_assert(has_reason(&v, "hybrid predicted"));
}

Test(advise_overall, a_single_pool_runner_up_is_judged_stage_by_stage)
{
    /* The demo's shape: an I/O stage and a GIL-bound CPU stage. The run's own figures, read as
     * one mostly waiting thread, promised one pool of threads 6.35x against the hybrid's 2.15x
     * (the demo printed "hybrid x 20, 2.07x" over "runner-up: threads x 20, 5.42x"). Threads
     * cannot speed up the CPU stage: a single pool is predicted stage by stage, like the
     * hybrid, and so never above it. */
    struct prof_machine m = machine2();
    struct prof_verdict st[2];
    double share[2];
    pipeline(st, share, &m, 0.66, 0.17);
    /* the run as one thread that mostly waits: its own figures promise threads a lot */
    struct prof_stage_figures all = stage("overall", 1.27, 0.2);
    all.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_overall(&all, st, share, 2, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_HYBRID);
    cr_assert_geq(v.runner_up, 0);
    cr_assert_leq(v.candidates[v.runner_up].speedup, v.predicted_speedup, "runner-up %s at %.2fx over hybrid %.2fx",
                  prof_model_name(v.candidates[v.runner_up].model), v.candidates[v.runner_up].speedup,
                  v.predicted_speedup);
    for (int i = 0; i < v.ncandidates; i++)
        cr_assert_leq(v.candidates[i].speedup, v.predicted_speedup + 1e-9);
}

Test(advise_overall, a_reader_idle_on_a_pipe_is_no_ipc_cost)
{
    /* Two stages wanting different models, and IPC 27% of the run's busy time. When the IPC moved
     * 80 MB, per-stage pools of processes would pay it: the run stays on threads. When it was a
     * started server blocked 1.5 s on a 6-byte pipe, nothing is paid: hybrid, as the stages say. */
    struct prof_machine m = machine2();
    struct prof_verdict st[2];
    double share[2];
    pipeline(st, share, &m, 1.2, 4.5);
    struct prof_stage_figures all = stage("overall", 6.0, 1.2);
    all.python = 1;
    all.nthreads = 20;
    all.io_wait_s = 2.0;
    all.ipc_measured = 1;
    all.ipc_s = 1.5;
    all.ipc_base_s = 5.5;
    all.ipc_bytes = 80000000;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_overall(&all, st, share, 2, &m, &v), 0);
    dump(&v);
    cr_assert_neq(v.model, PROF_MODEL_HYBRID);
    cr_assert(has_reason(&v, "pools of processes would keep paying it"));
    all.ipc_bytes = 6;
    cr_assert_eq(prof_advise_overall(&all, st, share, 2, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_HYBRID);
}

Test(advise_overall, tiny_disagreeing_stage_is_ignored)
{
    struct prof_machine m = machine2();
    struct prof_verdict st[2];
    double share[2];
    pipeline(st, share, &m, 0.2, 4.5); /* fetch carries 4% */
    struct prof_stage_figures all = stage("overall", 4.8, 4.4);
    all.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_overall(&all, st, share, 2, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.workers, 2);
}

Test(advise_overall, idle_stage_is_ignored_and_agreeing_stages_keep_own)
{
    struct prof_machine m = machine2();
    struct prof_verdict st[3];
    double share[3] = {3.0, 3.0, 3.0};
    struct prof_stage_figures a = stage("a", 3.0, 2.9), b = stage("b", 3.0, 2.8), idle = stage("main", 3.0, 0.0);
    a.python = b.python = 1;
    cr_assert_eq(prof_advise_stage(&a, &m, &st[0]), 0);
    cr_assert_eq(prof_advise_stage(&b, &m, &st[1]), 0);
    cr_assert_eq(prof_advise_stage(&idle, &m, &st[2]), 0);
    cr_assert_eq(st[2].model, PROF_MODEL_SEQUENTIAL);
    struct prof_stage_figures all = stage("overall", 9.0, 5.7);
    all.python = 1;
    all.lock_wait_s = 3.0; /* the main thread joins */
    struct prof_verdict v;
    cr_assert_eq(prof_advise_overall(&all, st, share, 3, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
}

Test(advise_overall, no_stages_is_own_verdict)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures all = stage("overall", 2.0, 0.1);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_overall(&all, NULL, NULL, 0, &m, &v), 0);
    cr_assert_eq(v.cls, PROF_CLASS_IO);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
}

Test(advise_overall, invalid)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures all = stage("overall", 2.0, 0.1);
    struct prof_verdict st[1] = {{0}}, v;
    double share[1] = {-1.0};
    cr_assert_eq(prof_advise_overall(NULL, st, share, 1, &m, &v), PROF_EINVAL);
    cr_assert_eq(prof_advise_overall(&all, NULL, share, 1, &m, &v), PROF_EINVAL);
    cr_assert_eq(prof_advise_overall(&all, st, NULL, 1, &m, &v), PROF_EINVAL);
    cr_assert_eq(prof_advise_overall(&all, st, share, 1, NULL, &v), PROF_EINVAL);
    cr_assert_eq(prof_advise_overall(&all, st, share, 1, &m, NULL), PROF_EINVAL);
    cr_assert_eq(prof_advise_overall(&all, st, share, 1, &m, &v), PROF_EINVAL);
}

#define MIB (1ull << 20)

Test(rss_leak, linear_growth)
{
    /* c_rss_growth: 8 MiB every 10 ms, sampled every 20 ms. */
    double t[21];
    uint64_t rss[21];
    for (int i = 0; i < 21; i++) {
        t[i] = 0.02 * i;
        rss[i] = 2 * MIB + (uint64_t)i * 16 * MIB;
    }
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 21), 1);
}

Test(rss_leak, noisy_linear_growth)
{
    double t[30];
    uint64_t rss[30];
    for (int i = 0; i < 30; i++) {
        t[i] = 0.1 * i;
        rss[i] = 50 * MIB + (uint64_t)i * 4 * MIB + ((i % 3 == 0) ? 0 : MIB); /* small dips every third sample */
    }
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 30), 1);
}

Test(rss_leak, leak_that_slows_under_load)
{
    /* c_rss_growth (8 MiB more every 10 ms, never freed) beside two CPU hogs: the last
     * blocks faulted in at 42% of the run's average rate. Still climbing: a leak. */
    const double t[45] = {
        0.003607, 0.023612, 0.043611, 0.067067, 0.083607, 0.103602, 0.123595, 0.143605, 0.163599, 0.183603,
        0.203601, 0.223598, 0.243586, 0.263582, 0.283584, 0.303597, 0.323586, 0.343584, 0.363584, 0.384846,
        0.403590, 0.423603, 0.443611, 0.463636, 0.483635, 0.503612, 0.523628, 0.543629, 0.566049, 0.585417,
        0.603624, 0.623618, 0.643604, 0.663607, 0.683614, 0.703622, 0.723660, 0.743624, 0.763742, 0.783617,
        0.803628, 0.823593, 0.843668, 0.863639, 0.883588};
    const uint64_t rss[45] = {
        16384, 16240640, 27074560, 35467264, 43859968, 52600832, 62832640, 69156864, 78594048, 87703552,
        99180544, 111001600, 119394304, 127787008, 136179712, 149524480, 161357824, 169750528, 178143232,
        192491520, 203321344, 211714048, 220106752, 228499456, 236892160, 245284864, 253677568, 262070272,
        274137088, 286343168, 290123776, 299950080, 310919168, 313524224, 315265024, 317411328, 319586304,
        320819200, 322174976, 324345856, 328560640, 329748480, 332644352, 335269888, 337539072};
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 45), 1);
}

Test(rss_leak, plateau)
{
    double t[30];
    uint64_t rss[30];
    for (int i = 0; i < 30; i++) {
        t[i] = 0.1 * i;
        rss[i] = 20 * MIB + (uint64_t)(i < 12 ? i : 12) * 25 * MIB;
    }
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 30), 0);
}

Test(rss_leak, levelling_off)
{
    /* Growth that slows like a filling cache: the last third grows at well under half the average rate. */
    double t[40];
    uint64_t rss[40];
    for (int i = 0; i < 40; i++) {
        t[i] = 0.05 * i;
        rss[i] = 10 * MIB + (uint64_t)(400.0 * MIB * (1.0 - exp(-i / 6.0)));
    }
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 40), 0);
}

Test(rss_leak, grow_then_free)
{
    double t[20];
    uint64_t rss[20];
    for (int i = 0; i < 20; i++) {
        t[i] = 0.1 * i;
        rss[i] = 20 * MIB + (uint64_t)(i < 10 ? i : 19 - i) * 30 * MIB;
    }
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 20), 0);

    /* Freed most of it near the end, still above the start: churn, not a leak. */
    for (int i = 0; i < 20; i++)
        rss[i] = 20 * MIB + (uint64_t)(i < 15 ? i * 20 : 100) * MIB;
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 20), 0);
}

Test(rss_leak, a_leak_freed_as_the_process_exits)
{
    /* A CPython loop memoising every result: 3.7 MiB more every 20 ms for 1.04 s, then the
     * interpreter's shutdown frees it all in the last 80 ms (py_enrich_events). A leak. */
    double t[57];
    uint64_t rss[57];
    for (int i = 0; i < 57; i++) {
        t[i] = 0.02 * i;
        rss[i] = i < 53 ? 12 * MIB + (uint64_t)i * 37 * MIB / 10 : (uint64_t)(57 - i) * 60 * MIB;
    }
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 57), 1);
    /* Freed at half time and kept low to the end: not a teardown, not a leak. */
    for (int i = 28; i < 57; i++)
        rss[i] = 20 * MIB;
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 57), 0);
}

Test(rss_leak, sawtooth_churn)
{
    /* Allocate 100 MiB, free 90, repeat: net growth, but it keeps falling. */
    double t[40];
    uint64_t rss[40];
    uint64_t base = 20 * MIB;
    for (int i = 0; i < 40; i++) {
        t[i] = 0.05 * i;
        rss[i] = base + (i % 2 ? 100 * MIB : 0);
        if (i % 2)
            base += 10 * MIB;
    }
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 40), 0);
}

Test(rss_leak, small_growth)
{
    double t[10];
    uint64_t rss[10];
    for (int i = 0; i < 10; i++) {
        t[i] = i;
        rss[i] = 30 * MIB + (uint64_t)i * MIB; /* 9 MiB: below 16 MiB */
    }
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 10), 0);
    for (int i = 0; i < 10; i++)
        rss[i] = 1024 * MIB + (uint64_t)i * 10 * MIB; /* 90 MiB of 1 GiB: below 20% */
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 10), 0);
}

Test(rss_leak, too_few_samples)
{
    double t[4] = {0, 1, 2, 3};
    uint64_t rss[4] = {10 * MIB, 100 * MIB, 200 * MIB, 300 * MIB};
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 4), 0);
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 0), 0);
}

Test(rss_leak, zero_span_and_uneven_sampling)
{
    double t[6] = {1, 1, 1, 1, 1, 1};
    uint64_t rss[6] = {10 * MIB, 50 * MIB, 90 * MIB, 130 * MIB, 170 * MIB, 210 * MIB};
    cr_assert_eq(prof_rss_leak_suspected(t, rss, 6), 0);
    /* Only the last sample falls in the last third: the slope uses the last two. */
    double u[6] = {0, 0.1, 0.2, 0.3, 0.4, 3.0};
    cr_assert_eq(prof_rss_leak_suspected(u, rss, 6), 0); /* 40 MiB in 2.6 s after 160 MiB in 0.4 s: levelled */
    rss[5] = 900 * MIB;
    cr_assert_eq(prof_rss_leak_suspected(u, rss, 6), 1);
}

Test(rss_leak, invalid)
{
    double t[5] = {0, 1, 2, 3, 4};
    uint64_t rss[5] = {0};
    cr_assert_eq(prof_rss_leak_suspected(NULL, rss, 5), PROF_EINVAL);
    cr_assert_eq(prof_rss_leak_suspected(t, NULL, 5), PROF_EINVAL);
    double back[5] = {0, 1, 3, 2, 4};
    cr_assert_eq(prof_rss_leak_suspected(back, rss, 5), PROF_EINVAL);
    double nan_t[5] = {0, 1, NAN, 3, 4};
    cr_assert_eq(prof_rss_leak_suspected(nan_t, rss, 5), PROF_EINVAL);
}

/* ---- confidence and ties (confidence.c) ---- */

Test(confidence, native_cpu_work_is_clear_and_its_models_tie)
{
    /* Native CPU work, nothing waiting for a CPU: 2 workers is clear; threads or processes of
     * it are predicted alike, a tie the terminal says, not a low confidence. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("w", 2.0, 1.98);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.tie, 1);
    cr_assert_geq(v.confidence, 0.66, "confidence %.2f: %s", v.confidence, v.confidence_basis);
}

Test(confidence, gil_bound_python_is_clear_and_no_tie)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("w", 2.0, 1.98);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_eq(v.tie, 0);
    cr_assert_geq(v.confidence, 0.66, "confidence %.2f: %s", v.confidence, v.confidence_basis);
}

Test(confidence, demand_at_a_class_edge_is_low)
{
    /* CPU demand 0.69, a hair under the 0.7 that makes a stage CPU-bound: the class, and with it
     * the model, could flip between two runs. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("w", 2.0, 1.38);
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_lt(v.confidence, 0.33, "confidence %.2f: %s", v.confidence, v.confidence_basis);
    cr_assert(strstr(v.confidence_basis, "class edge"), "%s", v.confidence_basis);
}

Test(confidence, a_busy_machine_lowers_it)
{
    /* 40% of the threads' time waiting for a CPU: the machine, not the program, shaped the figures. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("w", 2.0, 1.2);
    f.runq_s = 0.8;
    f.python = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_lt(v.confidence, 0.33, "confidence %.2f: %s", v.confidence, v.confidence_basis);
    cr_assert(strstr(v.confidence_basis, "busy machine"), "%s", v.confidence_basis);
}

Test(confidence, a_tie_goes_to_the_model_the_program_runs)
{
    /* Native children run one at a time (a process pool of one): threads and processes of the
     * work tie, and the program's own model wins it, the same way every run. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("w", 2.0, 1.98);
    f.nprocesses = 4;
    f.current_model = PROF_MODEL_PROCESSES;
    f.current_workers = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES, "got %s", prof_model_name(v.model));
    cr_assert_eq(v.workers, 2);
    cr_assert_eq(v.tie, 1);
}

/*
 * An asyncio crawler as the shim measures it (issue 25, class 4): one thread, 2000 requests
 * answered, each open 0.15 s (300 s in flight over 1 s of wall: 300 at once, by Little's law),
 * yet the loop blocked only 0.8 s in epoll and the sockets' own calls 20 ms. It started its
 * server as a child, which makes it look like a pool's dispatcher.
 */
static struct prof_stage_figures overlapping_loop(double cpu_s)
{
    struct prof_stage_figures f = stage("crawl", 1.0, cpu_s);
    f.python = 1;
    f.waits_counted = PROF_WAITS_SHIM;
    f.pool_dispatcher = 1;
    f.evloop_wait_s = 0.95 - cpu_s;
    f.net_wait_s = 0.02;
    f.io_wait_s = 0.02;
    f.net_round_trips = 2000;
    f.net_request_s = 300.0;
    f.current_model = PROF_MODEL_SEQUENTIAL;
    f.current_workers = 1;
    return f;
}

Test(advise_stage, loop_that_overlaps_requests_keeps_async_at_its_concurrency)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = overlapping_loop(0.15);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_ASYNC, "got %s x %d", prof_model_name(v.model), v.workers);
    cr_assert_geq(v.workers, 300, "async cut to %d of the 300 requests it kept open", v.workers);
    cr_assert_eq(v.work.current_model, PROF_MODEL_ASYNC);
    cr_assert_eq(v.work.current_workers, 300);
    cr_assert(has_reason(&v, "300 requests open at once"));
    /* Nothing a few workers of a pool can do with 2000 requests of 0.15 s: no candidate of them wins. */
    for (int i = 0; i < v.ncandidates; i++)
        if (v.candidates[i].model == PROF_MODEL_THREADS || v.candidates[i].model == PROF_MODEL_PROCESSES)
            cr_assert_lt(v.candidates[i].speedup, v.predicted_speedup);
}

Test(advise_stage, loop_whose_cpu_saturates_it_splits_the_cpu_not_the_concurrency)
{
    struct prof_machine m = machine2();
    /* The same requests in flight, but the loop computed 85% of its time: more concurrency finds no idle CPU. */
    struct prof_stage_figures f = overlapping_loop(0.85);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_neq(v.model, PROF_MODEL_ASYNC);
    cr_assert_eq(v.model, PROF_MODEL_HYBRID, "got %s x %d", prof_model_name(v.model), v.workers);
    /* Each process runs a loop as large: the CPU part is split, the concurrency is not cut. */
    cr_assert_geq(v.workers, 300);
}

Test(advise_stage, requests_one_at_a_time_are_no_overlapping_loop)
{
    struct prof_machine m = machine2();
    /* A loop that awaited each of its 40 requests in turn: 0.9 s in flight over 1 s, under one at once. */
    struct prof_stage_figures f = overlapping_loop(0.05);
    f.net_round_trips = 40;
    f.net_request_s = 0.9;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_neq(v.work.current_model, PROF_MODEL_ASYNC);
    cr_assert_leq(v.workers, 40);
}

/* ---- counters as evidence (evidence.c, predict.c, membound.c: issue 30) ---- */

/* Native CPU work on 4 threads that took turns on one usable CPU: each waited 3 s in the run queue. */
static struct prof_stage_figures four_on_one(uint64_t ivcsw)
{
    struct prof_stage_figures f = stage("crunch", 4.0, 1.0);
    f.nthreads = 4;
    f.wall_s = 1.0;
    f.runq_s = 3.0;
    f.ivcsw = ivcsw;
    f.migrations_measured = 1;
    f.migrations = 31;
    return f;
}

Test(counters, preempted_threads_confirm_the_cap_at_usable_cpus)
{
    struct prof_machine m = machine2();
    m.usable_cpus = m.affinity_cpus = 1;
    struct prof_stage_figures f = four_on_one(250);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_CPU);
    cr_assert_eq(v.workers, 1);
    cr_assert(has_reason(&v, "its 4 busy workers were preempted 250 times per CPU-second (250 in 1.00 s of CPU), migrated 31 times per CPU-second, waited 12.0 ms for a CPU each time (75% of thread time): its runnable threads outnumbered the 1 usable CPU; 1 worker, one per usable CPU at most: the evidence confirms the cap"));

    /* On 2 CPUs the same threads get threads x 2: the cap, confirmed, is 2. */
    m = machine2();
    f.ivcsw = 500;
    f.cpu_s = 2.0;
    f.runq_s = 2.0;
    f.wall_s = 1.0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 2);
    cr_assert(has_reason(&v, "preempted 250 times per CPU-second"));
    cr_assert(has_reason(&v, "outnumbered the 2 usable CPUs; 2 workers, one per usable CPU at most: the evidence confirms the cap"));
}

Test(counters, a_thread_with_a_cpu_to_itself_is_no_evidence)
{
    struct prof_machine m = machine2();
    m.usable_cpus = m.affinity_cpus = 1;
    struct prof_stage_figures f = four_on_one(5);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.workers, 1);
    cr_assert_not(has_reason(&v, "preempted"));
    cr_assert_not(has_reason(&v, "per CPU-second"));
    /* Past the rate but under 20 switches in all: a short stage's handful. */
    f = four_on_one(19);
    f.cpu_s = 0.05;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_not(has_reason(&v, "preempted"));
}

Test(counters, short_preemptions_are_a_profilers_not_oversubscription)
{
    /* 2 threads on the 2 CPUs, preempted 120 times per CPU-second for 0.12 ms each: the sampler's
     * wake-ups, as measured under poolprof here; a peer's slice is 0.75 ms at least. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("spin", 2.0, 1.97);
    f.nthreads = 2;
    f.wall_s = 1.0;
    f.ivcsw = 240;
    f.runq_s = 0.0288;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_not(has_reason(&v, "preempted"));
    /* The same rate, each preemption a whole slice of 4 ms, though 2 workers fit 2 CPUs: the machine's. */
    f.runq_s = 0.96;
    f.thread_s = 2.96;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert(has_reason(&v, "though its 2 busy workers fit the 2 usable CPUs: other programs ran on them"));
    cr_assert_not(has_reason(&v, "outnumbered"));
    cr_assert_eq(v.workers, 2);
    /* A process pool of 2 workers whose dispatcher ran beside them: neither its own workers
     * outnumbered the CPUs nor did other programs alone take them; nothing is said. */
    f.nprocesses = 3;
    f.nthreads = 3;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.work.current_workers, 2);
    cr_assert_not(has_reason(&v, "preempted"));
}

Test(counters, oversubscribed_io_pool_is_not_raised_past_its_cpu_demand)
{
    /* Native threads that compute twice what they wait: 2 x (1 + 1.0 / 2.0) = 3 threads keep the
     * 2 CPUs busy; the floor of 2 x usable would make it 4, whose demand passes them. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("mix", 3.2, 2.0);
    f.nthreads = 6;
    f.wall_s = 1.0;
    f.runq_s = 0.2;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.cls, PROF_CLASS_MIXED);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 4);
    cr_assert(has_reason(&v, "raised to 2 x usable CPUs"));
    /* Preempted 75 times per CPU-second, 1.3 ms each: its own 6 threads oversubscribed the CPUs. */
    f.ivcsw = 150;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_THREADS);
    cr_assert_eq(v.workers, 3);
    cr_assert_not(has_reason(&v, "raised to 2 x usable CPUs"));
    cr_assert(has_reason(&v, "preempted 75 times per CPU-second"));
    cr_assert(has_reason(&v, "its I/O pool stays at 3 threads, keeping its CPU demand within them, not the 4 of 2 x usable CPUs"));
}

/* A CPython pool of 2 forked workers, each busy 1 s, its dispatcher blocked on their pipes. */
static struct prof_stage_figures forked_pool(uint64_t minflt, double stime_s)
{
    struct prof_stage_figures f = stage("pool", 3.0, 2.0);
    f.nprocesses = 3;
    f.nthreads = 3;
    f.python = 1;
    f.wall_s = 1.0;
    f.ipc_measured = 1;
    f.ipc_s = 1.0;
    f.fork_faults_measured = 1;
    f.fork_children = 2;
    f.fork_minflt = minflt;
    f.fork_stime_s = stime_s;
    return f;
}

static const struct prof_candidate *candidate(const struct prof_verdict *v, enum prof_model model)
{
    for (int i = 0; i < v->ncandidates; i++)
        if (v->candidates[i].model == model && v->candidates[i].chunksize == 0)
            return &v->candidates[i];
    cr_assert_fail("no %s candidate", prof_model_name(model));
    return NULL;
}

Test(counters, fork_faults_stay_in_the_work_and_charge_only_more_workers)
{
    /* Two forked workers today, 10,000 faults each at 2 us: in the measured work (a fault may be a
     * task's own first touch), so processes x 2, as today, pays nothing more. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = forked_pool(20000, 0.04);
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.model, PROF_MODEL_PROCESSES);
    cr_assert_float_eq(v.work.worker_fault_s, 0.02, 1e-12);
    cr_assert_eq(v.work.forked_now, 2);
    cr_assert_float_eq(v.work.cpu_s, 2.0, 1e-12);
    cr_assert_float_eq(candidate(&v, PROF_MODEL_PROCESSES)->seconds, 1.0, 1e-12);
    cr_assert_float_eq(candidate(&v, PROF_MODEL_SEQUENTIAL)->seconds, 2.0, 1e-12);
    cr_assert_not(has_reason(&v, "minor faults"));

    /* Not counted: the same predictions, and no fault figure. */
    f.fork_faults_measured = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_float_eq(v.work.worker_fault_s, 0, 1e-12);
    cr_assert_float_eq(candidate(&v, PROF_MODEL_SEQUENTIAL)->seconds, 2.0, 1e-12);
    cr_assert_float_eq(candidate(&v, PROF_MODEL_PROCESSES)->seconds, 1.0, 1e-12);
    cr_assert_not(has_reason(&v, "minor faults"));
}

Test(counters, fork_faults_charge_each_worker_beyond_todays)
{
    /* One forked worker today, busy 2 s; it took 400,000 faults at 2 us (0.8 s) after its fork.
     * Processes x 2 starts one more, which pays them too: 0.8 s over the 2 CPUs, on top of the 1 s
     * the work takes on two. */
    struct prof_machine m = machine2();
    struct prof_stage_figures f = forked_pool(400000, 0.8);
    f.nprocesses = 2;
    f.nthreads = 2;
    f.fork_children = 1;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.work.forked_now, 1);
    cr_assert_float_eq(v.work.worker_fault_s, 0.8, 1e-12);
    const struct prof_candidate *p = candidate(&v, PROF_MODEL_PROCESSES);
    cr_assert_eq(p->workers, 2);
    struct prof_stage_figures g = f;
    g.fork_faults_measured = 0;
    struct prof_verdict w;
    cr_assert_eq(prof_advise_stage(&g, &m, &w), 0);
    cr_assert_float_eq(p->seconds - candidate(&w, PROF_MODEL_PROCESSES)->seconds, 0.4, 1e-9);
    cr_assert(has_reason(&v, "each forked worker took 400,000 minor faults after the fork (1.5 GiB of pages copied on write or first touched), 0.80 s of kernel time at 2.00 us a fault: charged to processes x 2"),
              "no fault reason");

    /* A fault's cost is bounded: 1 s of children's kernel time over 1,000 faults is mostly system calls, 10 us a fault at most. */
    f = forked_pool(1000, 1.0);
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_float_eq(v.work.worker_fault_s, 500 * 10e-6, 1e-12);
}

Test(counters, one_run_that_looks_memory_bound_says_so_without_a_cap)
{
    struct prof_machine m = machine2();
    struct prof_stage_figures f = stage("stream", 2.0, 1.98);
    f.nthreads = 2;
    f.wall_s = 1.0;
    f.pmu_measured = 1;
    f.cycles = 1000000000;
    f.instructions = 350000000;
    f.llc_measured = 1;
    f.llc_misses = 7000000;
    struct prof_verdict v;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    dump(&v);
    cr_assert_eq(v.workers, 2);
    cr_assert(has_reason(&v, "0.35 instructions per cycle with 20.0 last-level cache misses per thousand instructions: the stage looks memory-bound"));
    cr_assert(has_reason(&v, "one run cannot show it"));
    /* Compute-bound code at 1.6 instructions per cycle: nothing to say. */
    f.instructions = 1600000000;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_not(has_reason(&v, "memory-bound"));
    /* No LLC figure: IPC alone does not say memory. */
    f.instructions = 350000000;
    f.llc_measured = 0;
    f.llc_misses = 0;
    cr_assert_eq(prof_advise_stage(&f, &m, &v), 0);
    cr_assert_not(has_reason(&v, "memory-bound"));
}

Test(membound, falling_ipc_rising_misses_and_a_flat_speedup_cap_the_workers)
{
    /* Given out of order: the function sorts by workers. */
    struct prof_membound_point p[] = {
        {8, 0.7, 25.0, 2.8},
        {1, 1.8, 2.0, 1.0},
        {4, 1.0, 15.0, 2.6},
        {2, 1.6, 5.0, 1.9},
    };
    struct prof_membound r;
    cr_assert_eq(prof_membound(p, 4, &r), 0);
    cr_log_info("%s", r.reason);
    cr_assert_eq(r.judged, 1);
    cr_assert_eq(r.memory_bound, 1);
    cr_assert_eq(r.cap, 4);
    cr_assert_float_eq(r.ipc_drop, 1.0 - 0.7 / 1.8, 1e-12);
    cr_assert_str_eq(r.reason, "memory-bound: instructions per cycle fell from 1.80 at 1 worker to 0.70 at 8 (-61%) while LLC misses rose from 2.0 to 25.0 per thousand instructions, and the speedup flattened at 2.60x from 4 workers (2.80x at 8): past 4 workers, more of them wait on memory");
}

Test(membound, linear_scaling_with_flat_ipc_is_not_memory_bound)
{
    struct prof_membound_point p[] = {
        {1, 1.80, 2.0, 1.0},
        {2, 1.78, 2.1, 1.98},
        {4, 1.77, 2.2, 3.9},
        {8, 1.75, 2.3, 7.7},
    };
    struct prof_membound r;
    cr_assert_eq(prof_membound(p, 4, &r), 0);
    cr_log_info("%s", r.reason);
    cr_assert_eq(r.judged, 1);
    cr_assert_eq(r.memory_bound, 0);
    cr_assert_eq(r.cap, 0);
    cr_assert_str_eq(r.reason, "not memory-bound: instructions per cycle held from 1.80 at 1 worker to 1.75 at 8 (-3%); the speedup kept rising, 7.70x at 8 workers");
}

Test(membound, falling_ipc_alone_is_not_enough)
{
    struct prof_membound r;
    /* IPC fell 40% but the speedup kept up: the cores still did more together. */
    struct prof_membound_point rising[] = {{1, 1.5, 2.0, 1.0}, {8, 0.9, 12.0, 7.0}};
    cr_assert_eq(prof_membound(rising, 2, &r), 0);
    cr_assert_eq(r.memory_bound, 0);
    cr_assert(strstr(r.reason, "but the speedup kept rising, 7.00x at 8 workers"), "%s", r.reason);
    /* IPC fell and the speedup flattened, but the misses stayed low: something other than memory. */
    struct prof_membound_point lowmiss[] = {{1, 1.5, 0.5, 1.0}, {2, 1.2, 0.5, 1.8}, {4, 0.9, 0.55, 1.9}};
    cr_assert_eq(prof_membound(lowmiss, 3, &r), 0);
    cr_assert_eq(r.memory_bound, 0);
    cr_assert(strstr(r.reason, "LLC misses stayed at 0.6 per thousand instructions (0.5 at 1 worker)"), "%s", r.reason);
    /* ...or were not counted: memory cannot be told from the rest. */
    struct prof_membound_point nollc[] = {{1, 1.5, -1, 1.0}, {2, 1.2, -1, 1.8}, {4, 0.9, -1, 1.9}};
    cr_assert_eq(prof_membound(nollc, 3, &r), 0);
    cr_assert_eq(r.memory_bound, 0);
    cr_assert(strstr(r.reason, "LLC misses were not counted"), "%s", r.reason);
}

Test(membound, without_a_pmu_nothing_is_said)
{
    struct prof_membound r;
    struct prof_membound_point nopmu[] = {{1, 0, -1, 1.0}, {2, 0, -1, 1.9}, {4, 1.2, 3.0, 3.5}};
    cr_assert_eq(prof_membound(nopmu, 3, &r), 0);
    cr_assert_eq(r.judged, 0);
    cr_assert_eq(r.memory_bound, 0);
    cr_assert_str_eq(r.reason, "");
    cr_assert_eq(prof_membound(NULL, 0, &r), 0);
    cr_assert_eq(r.judged, 0);
    cr_assert_eq(prof_membound(nopmu, 3, NULL), PROF_EINVAL);
    cr_assert_eq(prof_membound(NULL, 2, &r), PROF_EINVAL);
}
