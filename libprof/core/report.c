/* report.c: the report-model step: a merged, staged and judged run as one document, its summed figures named by the metric table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "core/report.h"
#include "core/report_int.h"
#include "core/stages.h"
#include "format/rundir.h"
#include "prof.h"

#ifndef POOLPROF_VERSION
#define POOLPROF_VERSION "unknown"
#endif

static json_t *jint_or_null(long long x)
{
    return x >= 0 ? json_integer(x) : json_null();
}

/* Seconds rounded to the microsecond: more digits would claim a precision no clock here has. */
static json_t *jsec(double s)
{
    return json_real((double)(long long)(s * 1e6 + (s >= 0 ? 0.5 : -0.5)) / 1e6);
}

static json_t *jratio(double x)
{
    return json_real((double)(long long)(x * 1e4 + 0.5) / 1e4);
}

static json_t *jstrings(char **v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, prof_json_text(v[i]));
    return a;
}

/* ---- the metric table's figures ---- */

static json_t *metric_value(const struct prof_metric *mt, const struct prof_counters *c)
{
    uint64_t v = mt->get(c);
    return mt->unit == PROF_METRIC_NS ? jsec((double)v / 1e9) : json_integer((json_int_t)v);
}

/* Set key ("a" or "a.b", the object a made when missing) of o. */
static void set_path(json_t *o, const char *key, json_t *v)
{
    const char *dot = strchr(key, '.');
    if (!dot) {
        json_object_set_new(o, key, v);
        return;
    }
    char head[64];
    snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
    json_t *sub = json_object_get(o, head);
    if (!json_is_object(sub)) {
        sub = json_object();
        json_object_set_new(o, head, sub);
    }
    json_object_set_new(sub, dot + 1, v);
}

/* Every figure of the table that the report shows at this level (thread or stage). */
static void metrics_json(json_t *o, const struct prof_counters *c, int stage)
{
    for (size_t i = 0; i < PROF_METRIC_COUNT_; i++) {
        const struct prof_metric *mt = &prof_metrics[i];
        const char *key = stage ? mt->stage_key : mt->thread_key;
        if (key)
            set_path(o, key, metric_value(mt, c));
    }
}

/* ---- stages ---- */

static json_t *machine_json(const struct prof_machine *mc)
{
    return json_pack("{s:i, s:i, s:f, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:b}", "usable_cpus",
                     mc->usable_cpus, "online_cpus", mc->online_cpus, "quota_cpus", mc->quota_cpus,
                     "affinity_cpus", mc->affinity_cpus, "cgroup_version", mc->cgroup_version, "physical_cores",
                     mc->physical_cores, "mem_total_bytes", (json_int_t)mc->mem_total_bytes, "mem_available_bytes",
                     (json_int_t)mc->mem_available_bytes, "cgroup_mem_limit_bytes",
                     (json_int_t)mc->cgroup_mem_limit_bytes, "nofile_limit", (json_int_t)mc->nofile_limit,
                     "clock_ticks", (json_int_t)mc->clock_ticks, "page_size", (json_int_t)mc->page_size,
                     "cpu_model", mc->cpu_model, "kernel", mc->kernel, "pmu", mc->pmu);
}

static const char *lock_kind_name(uint32_t kind)
{
    switch (kind) {
    case PROF_LOCK_MUTEX:
        return "mutex";
    case PROF_LOCK_RWLOCK:
        return "rwlock";
    case PROF_LOCK_SPIN:
        return "spinlock";
    case PROF_LOCK_SEM:
        return "semaphore";
    case PROF_LOCK_COND:
        return "condvar";
    }
    return "unknown";
}

static json_t *hottest_json(const struct prof_stage *s)
{
    const struct prof_process *p = s->hot_proc;
    if (!p)
        return json_null();
    char site[PROF_SHM_SITE_BYTES + 32];
    if (p->hottest.site[0])
        snprintf(site, sizeof site, "%s", p->hottest.site);
    else
        snprintf(site, sizeof site, "0x%llx", (unsigned long long)p->hottest.site_pc);
    json_t *o = json_pack("{s:o, s:s, s:i, s:I, s:o, s:o, s:I, s:I}", "site", prof_json_text(site), "kind",
                          lock_kind_name(p->hottest.kind), "pid", p->pid, "address", (json_int_t)p->hottest.addr,
                          "wait_seconds", jsec((double)p->hottest.wait_ns / 1e9), "hold_seconds",
                          jsec((double)p->hottest.hold_ns / 1e9), "acquisitions", (json_int_t)p->hottest.acquisitions,
                          "contended", (json_int_t)p->hottest.contended);
    if (o) /* 0 also where the lock was inferred from the sampler's futex waits: only the shim counts them */
        json_object_set_new(o, "owner_changes", json_integer((json_int_t)p->hottest.owner_changes));
    if (o && p->hottest.python_site[0])
        json_object_set_new(o, "python_site", prof_json_text(p->hottest.python_site));
    return o;
}

static json_t *candidate_json(const struct prof_candidate *c)
{
    json_t *o = json_pack("{s:s, s:i, s:o, s:o}", "model", prof_model_name(c->model), "workers", c->workers,
                          "predicted_seconds", jsec(c->seconds), "predicted_speedup", jratio(c->speedup));
    if (o && c->chunksize > 1)
        json_object_set_new(o, "chunksize", json_integer(c->chunksize));
    return o;
}

static json_t *candidates_json(const struct prof_verdict *v)
{
    json_t *a = json_array();
    for (int i = 0; i < v->ncandidates; i++)
        json_array_append_new(a, candidate_json(&v->candidates[i]));
    return a;
}

/* The stage's own model at other worker counts, as `poolprof sweep` reads it. */
static json_t *scaling_json(const struct prof_verdict *v)
{
    if (!v->nscaling)
        return json_null();
    enum prof_model m = v->work.current_model == PROF_MODEL_SEQUENTIAL ? PROF_MODEL_THREADS : v->work.current_model;
    json_t *pts = json_array();
    for (int i = 0; i < v->nscaling; i++)
        json_array_append_new(pts, json_pack("{s:i, s:o}", "workers", v->scaling[i].workers, "predicted_speedup",
                                             jratio(v->scaling[i].speedup)));
    return json_pack("{s:s, s:i, s:o}", "model", prof_model_name(m), "measured_workers", v->work.current_workers,
                     "points", pts);
}

static double sec(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* A GIL figure: null where the stage's CPython runs without a GIL, which is no GIL waited on, not a zero wait. */
static json_t *jgil(const struct prof_stage *s, json_t *v)
{
    if (!s->fig.gil_absent)
        return v;
    json_decref(v);
    return json_null();
}

/* The stage's off-CPU time by cause, from the shim's timings, else the sampler's states. */
static json_t *off_cpu_json(const struct prof_stage *s, const char **src)
{
    const struct prof_stage_figures *f = &s->fig;
    json_t *off = json_object();
    if (f->ipc_measured) {
        /* The shim timed each wait; what it did not see (sleep, page faults) is the rest. */
        double io = sec(s->sum.io_wait_ns), net = sec(s->sum.net_wait_ns), ev = sec(s->sum.evloop_wait_ns);
        double disk = io - net > 0 ? io - net : 0;
        double known = io + f->lock_wait_s + f->gil_wait_s + f->ipc_s + ev + f->runq_s + f->steal_s;
        double off_cpu = f->thread_s - f->cpu_s;
        json_object_set_new(off, "disk", jsec(disk));
        json_object_set_new(off, "network", jsec(net));
        json_object_set_new(off, "lock", jsec(f->lock_wait_s));
        json_object_set_new(off, "gil", jgil(s, jsec(f->gil_wait_s)));
        json_object_set_new(off, "ipc", jsec(f->ipc_s));
        json_object_set_new(off, "run_queue", jsec(f->runq_s));
        json_object_set_new(off, "steal", jsec(f->steal_s));
        json_object_set_new(off, "event_loop", jsec(ev));
        json_object_set_new(off, "sleep_other", jsec(off_cpu - known > 0 ? off_cpu - known : 0));
        *src = "shim";
    } else if (s->nsampled_threads) {
        json_object_set_new(off, "disk", jsec(s->smp_s[PROF_TS_DISK]));
        json_object_set_new(off, "network", jsec(s->smp_s[PROF_TS_NET]));
        json_object_set_new(off, "lock", jsec(s->smp_s[PROF_TS_LOCK] + s->smp_s[PROF_TS_SYNC]));
        json_object_set_new(off, "gil", jgil(s, jsec(s->smp_s[PROF_TS_GIL])));
        json_object_set_new(off, "ipc", jsec(s->smp_s[PROF_TS_IPC]));
        json_object_set_new(off, "run_queue", jsec(f->runq_s));
        json_object_set_new(off, "steal", jsec(f->steal_s));
        json_object_set_new(off, "event_loop", jsec(s->smp_s[PROF_TS_EVLOOP]));
        json_object_set_new(off, "sleep_other", jsec(s->smp_s[PROF_TS_SLEEP] + s->smp_s[PROF_TS_OTHER]));
        *src = "sampler";
    } else {
        json_object_set_new(off, "run_queue", jsec(f->runq_s));
        json_object_set_new(off, "steal", jsec(f->steal_s));
        *src = "schedstat";
    }
    return off;
}

/* Which waits overlap across workers: how many separate ones, the longest, and what no pool shortens. */
static json_t *waits_json(const struct prof_work *k)
{
    static const char *const by[] = {[PROF_WAITS_UNKNOWN] = "none", [PROF_WAITS_SHIM] = "shim",
                                     [PROF_WAITS_SWITCHES] = "context-switches"};
    return json_pack("{s:s, s:o, s:o, s:o, s:o}", "counted_by", by[k->waits_counted], "separate_waits",
                     k->waits_counted == PROF_WAITS_UNKNOWN ? json_null() : jratio(k->episodes),
                     "longest_wait_seconds", jsec(k->longest_s), "unsplittable_wait_seconds", jsec(k->fixed_s),
                     "startup_cpu_seconds", jsec(k->startup_s));
}

/* What the prediction ran on: the stage's work, its off-CPU time by cause, and where each came from. */
static json_t *work_json(const struct prof_stage *s)
{
    const struct prof_verdict *v = &s->verdict;
    const struct prof_stage_figures *f = &s->fig;
    const struct prof_work *k = &v->work;
    const char *src;
    json_t *off = off_cpu_json(s, &src);
    json_t *o = json_pack("{s:{s:s, s:i}, s:o, s:o, s:o, s:s, s:{s:o, s:o, s:s}, s:o, s:b, s:I, s:I, s:o, s:I, s:o}",
                     "current", "model", prof_model_name(k->current_model), "workers", k->current_workers,
                     "work_cpu_seconds", jsec(k->cpu_s), "work_wait_seconds", jsec(k->wait_s), "off_cpu_seconds", off,
                     "off_cpu_source", src, "serial_fraction", "threads", jratio(k->serial_threads), "processes",
                     jratio(k->serial_processes), "source", k->serial_source ? k->serial_source : "none",
                     "ipc_cost_seconds", jsec(k->ipc_s), "ipc_cost_estimated", k->ipc_estimated,
                     "memory_per_worker_bytes", (json_int_t)f->per_worker_bytes, "memory_per_thread_bytes",
                     (json_int_t)f->per_thread_bytes, "predicted_current_seconds", jsec(k->current_s),
                     "task_round_trips", (json_int_t)k->round_trips, "message_cost_seconds", jsec(k->msg_s));
    if (o) {
        json_object_set_new(o, "waits", waits_json(k));
        json_object_set_new(o, "pool_split",
                            k->task_measured ? json_pack("{s:o, s:o, s:o}", "task_cpu_seconds", jsec(k->cpu_s - k->own_s),
                                                         "own_cpu_seconds", jsec(k->own_s), "worker_message_cost_seconds",
                                                         jsec(k->worker_msg_s))
                                             : json_null());
        json_object_set_new(o, "fork_fault_seconds_per_worker", jsec(k->worker_fault_s));
    }
    return o;
}

static json_t *recommendation_json(const struct prof_verdict *v)
{
    json_t *reasons = json_array();
    for (int i = 0; i < v->nreasons; i++)
        json_array_append_new(reasons, prof_json_text(v->reasons[i]));
    json_t *rec = json_pack("{s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:{s:s, s:s, s:i}}", "model",
                            prof_model_name(v->model), "workers", v->workers, "predicted_speedup",
                            jratio(v->predicted_speedup), "runner_up",
                            v->runner_up >= 0 ? candidate_json(&v->candidates[v->runner_up]) : json_null(),
                            "candidates", candidates_json(v), "scaling", scaling_json(v), "reasons", reasons,
                            "seed_rule", "class", prof_class_name(v->seed.cls), "model",
                            prof_model_name(v->seed.model), "workers", v->seed.workers);
    json_object_set_new(rec, "chunksize", v->chunksize > 1 ? json_integer(v->chunksize) : json_null());
    json_object_set_new(rec, "confidence", jratio(v->confidence));
    json_object_set_new(rec, "confidence_basis", prof_json_text(v->confidence_basis));
    json_object_set_new(rec, "tie", json_boolean(v->tie));
    return rec;
}

/* Where the figures came from: the shim's exact timings, the sampler's ticks, or both. */
static json_t *sources_json(const struct prof_stage *s)
{
    int shim = 0, plain = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        if (s->procs[i]->shim && !s->procs[i]->is_static)
            shim++;
        else
            plain++;
    }
    const char *wsrc = shim && !plain ? "shim" : shim ? "shim+sampler" : s->nsampled_threads ? "sampler" : "none";
    return json_pack("{s:s, s:s, s:s}", "cpu", "schedstat", "waits", strcmp(s->source, "marker") == 0 ? "shim" : wsrc,
                     "states", s->nsampled_threads ? "sampler" : "none");
}

static json_t *stage_json(const struct prof_run *m, const struct prof_stage *s)
{
    const struct prof_verdict *v = &s->verdict;
    const struct prof_stage_figures *f = &s->fig;
    double waits = f->lock_wait_s + f->gil_wait_s;
    /*
     * Time on a run queue or on a vCPU the hypervisor took away is the machine's doing
     * (other load, more runnable threads than CPUs), not the lock's: left out, the
     * fraction reads the same on a busy host as on an idle one.
     */
    double own_s = f->thread_s - f->runq_s - f->steal_s > 0 ? f->thread_s - f->runq_s - f->steal_s : f->thread_s;
    json_t *pids = json_array();
    for (size_t i = 0; i < s->nprocs; i++)
        json_array_append_new(pids, json_integer(s->procs[i]->pid));

    json_t *o = json_object(), *lock = json_object(), *ipc = json_object(), *io = json_object();
    json_object_set_new(o, "name", prof_json_text(s->name));
    json_object_set_new(o, "source", json_string(s->source));
    json_object_set_new(o, "class", json_string(prof_class_name(v->cls)));
    json_object_set_new(o, "cpu_wall_ratio", jratio(v->cpu_wall_ratio));
    json_object_set_new(o, "demand_ratio", jratio(v->demand_ratio));
    json_object_set_new(o, "processes", json_integer(f->nprocesses));
    json_object_set_new(o, "pids", pids);
    json_object_set_new(o, "threads", json_integer(f->nthreads));
    json_object_set_new(o, "wall_seconds", jsec(f->wall_s));
    json_object_set_new(o, "thread_seconds", jsec(f->thread_s));
    json_object_set_new(o, "steal_seconds", jsec(f->steal_s));
    json_object_set_new(o, "lock", lock);
    json_object_set_new(o, "ipc", ipc);
    json_object_set_new(o, "io", io);
    json_object_set_new(ipc, "bytes", json_integer((json_int_t)s->sum.ipc_bytes_sent));
    /* cpu_seconds, user_seconds, the waits, lock.wait_seconds, ipc.bytes_sent, ctx_switches...: the table's. */
    metrics_json(o, &s->sum, 1);
    if (f->gil_absent)
        set_path(o, prof_metrics[PROF_M_gil_wait_ns].stage_key, json_null());
    json_object_set_new(lock, "wait_fraction", jratio(own_s > 0 ? waits / own_s : 0));
    json_object_set_new(lock, "gil", jgil(s, json_boolean(f->python)));
    json_object_set_new(lock, "measured", json_boolean(f->lock_measured));
    json_object_set_new(lock, "hottest", hottest_json(s));
    json_object_set_new(ipc, "busy_seconds", jsec(s->busy_s));
    json_object_set_new(ipc, "fraction", jratio(s->busy_s > 0 ? f->ipc_s / s->busy_s : 0));
    json_object_set_new(ipc, "measured", json_boolean(f->ipc_measured));
    json_object_set_new(ipc, "serialize_seconds", s->nsampled_threads ? jsec(s->serialize_s) : json_null());
    json_object_set_new(io, "measured", json_boolean(f->ipc_measured));
    json_object_set_new(o, "rss",
                        json_pack("{s:I, s:I, s:I, s:b, s:I}", "start_bytes", (json_int_t)s->rss_start, "peak_bytes",
                                  (json_int_t)s->rss_peak, "growth_bytes", (json_int_t)s->rss_growth,
                                  "leak_suspected", s->leak, "per_worker_bytes", (json_int_t)f->per_worker_bytes));
    json_object_set_new(o, "work_model", work_json(s));
    json_object_set_new(o, "recommendation", recommendation_json(v));
    json_object_set_new(o, "sources", sources_json(s));
    if (s->nsampled_threads) {
        json_t *st = json_object();
        for (int i = 0; i < PROF_TS_COUNT; i++)
            json_object_set_new(st, prof_tstate_name(i), i == PROF_TS_GIL ? jgil(s, jsec(s->smp_s[i]))
                                                                          : jsec(s->smp_s[i]));
        json_object_set_new(o, "states", st);
    } else {
        json_object_set_new(o, "states", json_null());
    }
    json_object_set_new(o, "gil_held_share",
                        jgil(s, s->py_running_ticks ? jratio(fmin(1.0, (double)s->py_held_cpu / (double)s->py_running_ticks))
                                                    : json_null()));
    json_object_set_new(o, "counters", prof_report_counters_stage(m, s));
    return o;
}

/* ---- processes and threads ---- */

/* Most wait first; then more contended acquisitions, then the address, so equal waits list the same way every time. */
static int lock_by_wait(const void *a, const void *b)
{
    const struct prof_lock_site *x = *(const struct prof_lock_site *const *)a, *y = *(const struct prof_lock_site *const *)b;
    if (x->wait_ns != y->wait_ns)
        return x->wait_ns > y->wait_ns ? -1 : 1;
    if (x->contended != y->contended)
        return x->contended > y->contended ? -1 : 1;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static json_t *lock_json(const struct prof_lock_site *l)
{
    char site[PROF_SHM_SITE_BYTES + 32];
    if (l->site[0])
        snprintf(site, sizeof site, "%s", l->site);
    else
        snprintf(site, sizeof site, "0x%llx", (unsigned long long)l->site_pc);
    json_t *o = json_pack("{s:o, s:s, s:I, s:I, s:I, s:o, s:o, s:I}", "site", prof_json_text(site), "kind",
                          lock_kind_name(l->kind), "address", (json_int_t)l->addr, "acquisitions",
                          (json_int_t)l->acquisitions, "contended", (json_int_t)l->contended, "wait_seconds",
                          jsec((double)l->wait_ns / 1e9), "hold_seconds", jsec((double)l->hold_ns / 1e9),
                          "owner_changes", (json_int_t)l->owner_changes);
    if (o && l->python_site[0])
        json_object_set_new(o, "python_site", prof_json_text(l->python_site));
    return o;
}

/* The process's contended locks, most wait first, at most PROF_REPORT_MAX_LOCKS (measurement_json names the cut). */
static json_t *locks_json(const struct prof_process *p)
{
    json_t *a = json_array();
    const struct prof_lock_site **v = p->nlocks ? malloc(p->nlocks * sizeof *v) : NULL;
    if (!a || (p->nlocks && !v)) {
        free(v);
        json_decref(a);
        return NULL;
    }
    for (size_t i = 0; i < p->nlocks; i++)
        v[i] = &p->locks[i];
    qsort(v, p->nlocks, sizeof *v, lock_by_wait);
    for (size_t i = 0; i < p->nlocks && i < PROF_REPORT_MAX_LOCKS; i++)
        json_array_append_new(a, lock_json(v[i]));
    free(v);
    return a;
}

/* gil_absent: its process is a free-threaded CPython without a GIL, so it waited on none. */
static json_t *thread_json(const struct prof_run *m, const struct prof_thread *t, int gil_absent)
{
    json_t *o = json_object();
    json_object_set_new(o, "tid", json_integer(t->tid));
    json_object_set_new(o, "name", prof_json_text(t->name));
    json_object_set_new(o, "start_seconds", jsec(t->start_s));
    json_object_set_new(o, "end_seconds", jsec(t->end_s));
    json_object_set_new(o, "ended_by", json_string(t->ended_by));
    json_object_set_new(o, "wall_seconds", jsec(t->end_s - t->start_s));
    metrics_json(o, &t->c, 0);
    if (gil_absent)
        set_path(o, prof_metrics[PROF_M_gil_wait_ns].thread_key, json_null());
    json_object_set_new(o, "sources", json_pack("{s:b, s:b}", "shim", t->from_shim, "monitor", t->from_monitor));
    json_object_set_new(o, "counters", prof_report_counters_thread(m, t));
    json_object_set_new(o, "counters_from_start", t->ctr_mask ? json_boolean(t->ctr_born) : json_null());
    return o;
}

static json_t *process_json(const struct prof_run *m, const struct prof_process *p)
{
    const struct prof_image *last = p->nimages ? &p->images[p->nimages - 1] : NULL;
    json_t *chain = json_array(), *threads = json_array();

    for (size_t i = 0; i < p->nimages; i++) {
        const struct prof_image *im = &p->images[i];
        json_array_append_new(chain, json_pack("{s:o, s:o, s:o, s:b, s:b}", "exe", prof_json_text(im->exe), "argv",
                                               jstrings(im->argv, im->argc), "start_seconds",
                                               jsec(prof_run_seconds(m, im->t_ns)), "shim", im->from_shim,
                                               "static", im->is_static));
    }
    for (size_t i = 0; i < p->nthreads; i++)
        json_array_append_new(threads, thread_json(m, &p->threads[i], p->gil_absent));

    json_t *o = json_object();
    json_object_set_new(o, "pid", json_integer(p->pid));
    json_object_set_new(o, "ppid", jint_or_null(p->ppid > 0 ? p->ppid : -1));
    json_object_set_new(o, "role", prof_json_text(p->role));
    json_object_set_new(o, "name", prof_json_text(p->comm));
    json_object_set_new(o, "argv", last ? jstrings(last->argv, last->argc) : json_array());
    json_object_set_new(o, "exe", prof_json_text(last && last->exe ? last->exe : ""));
    json_object_set_new(o, "exec_chain", chain);
    json_object_set_new(o, "forked", json_boolean(p->forked));
    json_object_set_new(o, "shim", json_boolean(p->shim));
    json_object_set_new(o, "static", json_boolean(p->is_static));
    json_object_set_new(o, "python", json_boolean(p->python));
    /* A CPython has its GIL unless the sampler read a free-threaded build running without it. */
    json_object_set_new(o, "gil", !p->python ? json_null() : json_string(p->gil_absent ? "absent" : "present"));
    json_object_set_new(o, "python_version", p->python_version > 0 ? json_sprintf("%d.%d", p->python_version / 100,
                                                                                 p->python_version % 100)
                                                                   : json_null());
    /* Named whether or not the shim also saw CPython: its frames are missing either way. */
    json_object_set_new(o, "python_unsupported",
                        !p->python_read && p->python_refused ? json_string(p->python_refused) : json_null());
    json_object_set_new(o, "start_seconds", jsec(p->start_s));
    json_object_set_new(o, "end_seconds", jsec(p->end_s));
    json_object_set_new(o, "wall_seconds", jsec(p->end_s - p->start_s));
    json_object_set_new(o, "exit",
                        json_pack("{s:s, s:o, s:o, s:o, s:o}", "how", p->exit_how, "status",
                                  jint_or_null(p->exit_status), "code", jint_or_null(p->exit_code), "signal",
                                  jint_or_null(p->exit_signal), "source",
                                  p->exit_source ? json_string(p->exit_source) : json_null()));
    json_object_set_new(o, "rss",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "samples", (json_int_t)p->nrss,
                                  "start_bytes", (json_int_t)p->rss_start, "peak_bytes", (json_int_t)p->rss_peak,
                                  "end_bytes", (json_int_t)p->rss_end, "growth_bytes",
                                  (json_int_t)(p->nrss && p->rss_peak > p->rss_start ? p->rss_peak - p->rss_start : 0),
                                  "vm_hwm_bytes", (json_int_t)p->vm_hwm, "pss_peak_bytes", (json_int_t)p->pss_peak,
                                  "uss_peak_bytes", (json_int_t)p->uss_peak));
    json_object_set_new(o, "locks", locks_json(p));
    json_object_set_new(o, "threads", threads);
    return o;
}

/* ---- how it was measured ---- */

/* Was q's CPython left unread for this reason? */
static int unread_because(const struct prof_process *q, const char *why)
{
    return !q->python_read && q->python_refused && strcmp(q->python_refused, why) == 0;
}

static json_t *measurement_json(const struct prof_run *m, const struct prof_stages *S)
{
    json_t *shim = json_array(), *st = json_array(), *none = json_array();
    json_t *notes = json_deep_copy(m->notes);

    json_array_extend(notes, S->notes);
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct prof_process *p = m->procs[i];
        if (p->is_static)
            json_array_append_new(st, json_integer(p->pid));
        else if (p->shim)
            json_array_append_new(shim, json_integer(p->pid));
        else
            json_array_append_new(none, json_integer(p->pid));
        if (p->is_static)
            json_array_append_new(notes, json_sprintf("pid %d (%.80s) is statically linked: the shim could not "
                                                      "load; its figures come from /proc only",
                                                      p->pid, p->role));
    }
    /* A CPython the sampler could not read, once per reason: what falls back to estimates. */
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct prof_process *p = m->procs[i];
        if (p->python_read || !p->python_refused)
            continue;
        /* An earlier process with the same reason has said it (one scan per reason, not per process). */
        size_t j = 0, n = 0;
        while (j < i && !unread_because(m->procs[j], p->python_refused))
            j++;
        if (j < i)
            continue;
        for (j = i; j < m->nprocs; j++)
            n += unread_because(m->procs[j], p->python_refused);
        json_array_append_new(notes, json_sprintf("python_unsupported: %s (%zu process%s, pid %d first): no Python "
                                                      "frames in its stacks, no GIL holder per tick, no serialization "
                                                      "or pool split from them; those figures are estimates",
                                                      p->python_refused, n, n == 1 ? "" : "es", p->pid));
    }
    /* Free-threaded CPythons without their GIL, in one note: their GIL figures are null, not 0. */
    size_t nfree = 0;
    int first_free = 0;
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i]->gil_absent && !nfree++)
            first_free = m->procs[i]->pid;
    if (nfree)
        json_array_append_new(notes, json_sprintf("gil_absent: free-threaded CPython without its GIL (%zu process%s, "
                                                  "pid %d first): GIL figures absent",
                                                  nfree, nfree == 1 ? "" : "es", first_free));
    /* Locks past the cap, in one note naming it: a list cut short must say so. */
    size_t ncut = 0, cut_sites = 0;
    uint64_t cut_ns = 0;
    int first_cut = 0;
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct prof_process *p = m->procs[i];
        if (p->nlocks <= PROF_REPORT_MAX_LOCKS)
            continue;
        if (!ncut++)
            first_cut = p->pid;
        uint64_t all = 0, kept = 0;
        const struct prof_lock_site **v = malloc(p->nlocks * sizeof *v);
        for (size_t k = 0; k < p->nlocks; k++) {
            all += p->locks[k].wait_ns;
            if (v)
                v[k] = &p->locks[k];
        }
        if (v) {
            qsort(v, p->nlocks, sizeof *v, lock_by_wait);
            for (size_t k = 0; k < PROF_REPORT_MAX_LOCKS; k++)
                kept += v[k]->wait_ns;
            free(v);
        } else {
            kept = all; /* no memory to rank them: the sites are still counted, their wait not */
        }
        cut_sites += p->nlocks - PROF_REPORT_MAX_LOCKS;
        cut_ns += all - kept;
    }
    if (ncut)
        json_array_append_new(notes, json_sprintf("locks: at most %d per process listed (PROF_REPORT_MAX_LOCKS), most "
                                                  "wait first: %zu process%s had more (pid %d first); %zu lock "
                                                  "site%s with %.3f s of wait left out",
                                                  PROF_REPORT_MAX_LOCKS, ncut, ncut == 1 ? "" : "es", first_cut,
                                                  cut_sites, cut_sites == 1 ? "" : "s", (double)cut_ns / 1e9));
    if (json_array_size(none))
        json_array_append_new(notes, json_string("processes listed under no_shim_pids ran without the shim "
                                                 "(it exec'd too briefly, or failed to load): figures from /proc only"));
    if (m->counters_refused)
        json_array_append_new(notes, json_sprintf("counters: %llu task%s not counted: poolprof's descriptor budget "
                                                  "(a quarter of its RLIMIT_NOFILE) ran out",
                                                  (unsigned long long)m->counters_refused,
                                                  m->counters_refused == 1 ? " was" : "s were"));
    if (m->counters_ended)
        json_array_append_new(notes, json_sprintf("counters: %llu task%s ended before poolprof could open %s counters "
                                                  "(threads found after they began, from switch records or a scan, "
                                                  "that lived only microseconds): counted in no event",
                                                  (unsigned long long)m->counters_ended,
                                                  m->counters_ended == 1 ? "" : "s",
                                                  m->counters_ended == 1 ? "its" : "their"));
    json_t *opts = json_object_get(m->run, "options");
    json_t *preload = json_object_get(opts, "preload");
    json_t *shim_path = json_object_get(m->run, "shim");
    return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "sample_interval_ms", m->interval_ms,
                     "counters", prof_report_counters_run(m, S),
                     "monitor_cpu_seconds", m->monitor_cpu_ns ? json_real((double)m->monitor_cpu_ns / 1e9) : json_null(),
                     "sampler", m->sampler ? json_deep_copy(m->sampler) : json_null(), "preload",
                     json_is_boolean(preload) ? json_incref(preload) : json_null(), "shim",
                     json_is_string(shim_path) ? json_incref(shim_path) : json_null(), "shim_pids", shim,
                     "static_pids", st, "no_shim_pids", none, "notes", notes, "errors", json_deep_copy(m->errors));
}

/* ---- the sweep that profiled the run ---- */

/* o[key] rounded like the report's other figures (seconds: scale 1e6, ratios and speedups: 1e4; scale 0: as it is,
 * for fitted parameters whose small digits still move the curve), or null when the sweep had none (it writes null
 * for what it could not measure). */
static json_t *jfig(const json_t *o, const char *key, double scale)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return json_null();
    if (scale == 0)
        return json_real(json_number_value(v));
    double x = json_number_value(v) * scale;
    return json_real((double)(long long)(x + (x >= 0 ? 0.5 : -0.5)) / scale);
}

static json_t *jcopy(const json_t *o, const char *key, int (*is)(const json_t *))
{
    const json_t *v = json_object_get(o, key);
    return v && is(v) ? json_deep_copy(v) : json_null();
}

static int is_string(const json_t *v) { return json_is_string(v); }
static int is_integer(const json_t *v) { return json_is_integer(v); }
static int is_boolean(const json_t *v) { return json_is_boolean(v); }
static int is_strings(const json_t *v)
{
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s)
        if (!json_is_string(s))
            return 0;
    return json_is_array(v);
}

/* The recommendation the sweep held against its timed runs: the count, and whether it was among them. */
static json_t *sweep_rec_json(const json_t *sw)
{
    const json_t *rec = json_object_get(sw, "recommendation"), *vc = json_object_get(sw, "verdict_check");
    if (!json_is_object(rec))
        return json_null();
    const json_t *w = json_object_get(rec, "workers");
    int measured = 0;
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(sw, "points"), i, p)
        measured |= json_is_integer(w) && json_equal(json_object_get(p, "workers"), w);
    return json_pack("{s:o, s:o, s:o, s:b, s:o, s:o, s:o}", "stage", jcopy(rec, "stage", is_string), "model",
                     jcopy(rec, "model", is_string), "workers", jcopy(rec, "workers", is_integer), "measured", measured,
                     "model_measured", jcopy(vc, "model_timed", is_boolean), "throughput_vs_best",
                     jfig(rec, "throughput_vs_best", 1e4), "within_10_percent",
                     jcopy(rec, "within_10_percent", is_boolean));
}

/* RUNDIR/sweep.json (read_sweep.c checked its shape) as the report's `sweep`: what the HTML report draws. */
static json_t *sweep_json(const json_t *sw)
{
    if (!sw)
        return json_null();
    json_t *points = json_array();
    size_t i;
    const json_t *p, *am = json_object_get(sw, "amdahl"), *usl = json_object_get(sw, "usl");
    json_array_foreach(json_object_get(sw, "points"), i, p)
        json_array_append_new(points, json_pack("{s:o, s:o, s:o, s:o}", "workers", jcopy(p, "workers", is_integer),
                                                "median_seconds", jfig(p, "median_seconds", 1e6), "speedup",
                                                jfig(p, "speedup", 1e4), "efficiency", jfig(p, "efficiency", 1e4)));
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "file", PROF_RUN_SWEEP_FILE, "command",
                     jcopy(sw, "command", is_strings), "repeat", jcopy(sw, "repeat", is_integer), "timed_model",
                     jcopy(sw, "timed_model", is_string), "points", points, "amdahl",
                     json_is_object(am) ? json_pack("{s:o, s:o}", "serial_fraction", jfig(am, "serial_fraction", 0),
                                                    "rms_error", jfig(am, "rms_error", 1e6))
                                        : json_null(),
                     "usl",
                     json_is_object(usl) ? json_pack("{s:o, s:o, s:o, s:o}", "sigma", jfig(usl, "sigma", 0), "kappa",
                                                     jfig(usl, "kappa", 0), "peak_workers",
                                                     jfig(usl, "peak_workers", 1e2), "rms_error",
                                                     jfig(usl, "rms_error", 1e6))
                                         : json_null(),
                     "best_workers", jcopy(json_object_get(sw, "best"), "workers", is_integer), "recommended",
                     sweep_rec_json(sw));
}

static json_t *exit_json(const struct prof_run *m)
{
    json_t *e = json_object_get(m->run, "exit");
    json_t *o = json_object();
    const char *keys[] = {"status", "code", "signal"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(e, keys[i]);
        json_object_set_new(o, keys[i], json_is_integer(v) ? json_incref(v) : json_null());
    }
    return o;
}

int prof_report_build(const struct prof_run *m, const struct prof_stages *S, struct prof_report *out)
{
    json_t *r = json_object(), *stages = json_array(), *procs = json_array();
    json_t *cmd = json_object_get(m->run, "command"), *cwd = json_object_get(m->run, "cwd");
    json_t *ver = json_object_get(m->run, "poolprof_version");

    out->doc = NULL;
    out->run = m;
    if (!r || !stages || !procs) {
        json_decref(r);
        json_decref(stages);
        json_decref(procs);
        return PROF_ENOMEM;
    }
    for (size_t i = 0; i < S->n; i++)
        json_array_append_new(stages, stage_json(m, S->v[i]));
    for (size_t i = 0; i < m->nprocs; i++)
        json_array_append_new(procs, process_json(m, m->procs[i]));
    json_object_set_new(r, "schema", json_string(PROF_REPORT_SCHEMA));
    json_object_set_new(r, "poolprof_version", json_string(POOLPROF_VERSION));
    json_object_set_new(r, "recorded_by", json_is_string(ver) ? json_incref(ver) : json_null());
    json_object_set_new(r, "command", json_is_array(cmd) ? json_deep_copy(cmd) : json_array());
    json_object_set_new(r, "cwd", json_is_string(cwd) ? json_incref(cwd) : json_null());
    json_object_set_new(r, "run_dir", prof_json_text(m->rundir));
    json_object_set_new(r, "root_pid", m->root_pid > 0 ? json_integer(m->root_pid) : json_null());
    uint64_t rt = 0;
    json_t *rtv = json_object_get(m->run, "start_realtime_ns");
    if (json_is_integer(rtv) && json_integer_value(rtv) > 0)
        rt = (uint64_t)json_integer_value(rtv);
    json_object_set_new(r, "start_realtime_ns", rt ? json_integer((json_int_t)rt) : json_null());
    json_object_set_new(r, "wall_seconds", jsec(m->wall_s));
    json_object_set_new(r, "exit", exit_json(m));
    json_object_set_new(r, "machine", machine_json(&m->machine));
    json_object_set_new(r, "measurement", measurement_json(m, S));
    json_object_set_new(r, "overall", stage_json(m, &S->overall));
    json_object_set_new(r, "stages", stages);
    json_object_set_new(r, "processes", procs);
    json_object_set_new(r, "sweep", sweep_json(m->sweep));
    out->doc = r;
    return 0;
}

void prof_report_add_error(struct prof_report *r, const char *msg)
{
    json_t *errors = json_object_get(json_object_get(r->doc, "measurement"), "errors");
    if (json_is_array(errors))
        json_array_append_new(errors, json_string(msg));
}

const json_t *prof_report_stage(const json_t *doc, const char *name)
{
    if (strcmp(name, "overall") == 0)
        return json_object_get(doc, "overall");
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(doc, "stages"), i, s) {
        const char *sn = json_string_value(json_object_get(s, "name"));
        if (sn && strcmp(sn, name) == 0)
            return s;
    }
    return NULL;
}

void prof_report_stage_names(const json_t *doc, char *names, size_t cap)
{
    size_t len = (size_t)snprintf(names, cap, "overall");
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(doc, "stages"), i, s) {
        const char *sn = json_string_value(json_object_get(s, "name"));
        if (!sn)
            continue;
        if (len + strlen(sn) + 8 >= cap) {
            snprintf(names + len, cap - len, ", ...");
            break;
        }
        len += (size_t)snprintf(names + len, cap - len, ", %s", sn);
    }
}
