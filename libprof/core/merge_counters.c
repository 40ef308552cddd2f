/* merge_counters.c: the merge step's counters: each task's perf event readings (counters.rec) onto the run's threads. */
#include <stdio.h>
#include <string.h>

#include "core/merge.h"
#include "prof.h"

/* What the monitor read in /proc for an event counted from there (source proc), or -1 for none. */
static int64_t proc_figure(const struct prof_thread *t, const char *role)
{
    if (!t->from_monitor)
        return -1;
    if (strcmp(role, "context_switches") == 0)
        return (int64_t)(t->c.vcsw + t->c.ivcsw);
    if (strcmp(role, "minor_faults") == 0)
        return (int64_t)t->minflt;
    if (strcmp(role, "major_faults") == 0)
        return (int64_t)t->majflt;
    if (strcmp(role, "page_faults") == 0)
        return (int64_t)(t->minflt + t->majflt);
    if (strcmp(role, "task_clock") == 0)
        return (int64_t)t->c.cpu_ns;
    return -1;
}

int prof_merge_counters(struct prof_records *rec, struct prof_run *m)
{
    const struct prof_rec_counters *C = &rec->counters;

    if (!C->present)
        return 0;
    m->counters_present = 1;
    m->ncounters = C->nev;
    m->counters_refused = C->refused;
    m->counters_ended = C->ended;
    for (size_t i = 0; i < C->nev; i++) {
        const struct prof_rec_ctr_event *e = &C->ev[i];
        struct prof_run_counter *k = &m->counters[i];
        snprintf(k->name, sizeof k->name, "%s", e->name);
        snprintf(k->fstr, sizeof k->fstr, "%s", e->fstr);
        snprintf(k->role, sizeof k->role, "%s", e->role);
        snprintf(k->source, sizeof k->source, "%s", e->source);
        snprintf(k->reason, sizeof k->reason, "%s", e->reason);
        k->hardware = e->hardware;
        k->is_default = e->is_default;
        k->user_only = e->user_only;
        k->tasks_failed = C->failed[i];
        k->fail_errno = C->fail_errno[i];
    }
    for (size_t j = 0; j < C->ntasks; j++) {
        const struct prof_rec_ctr_task *k = &C->tasks[j];
        /* The run's own thread, which the merge step may still fill in. */
        struct prof_thread *t = (struct prof_thread *)prof_run_thread(prof_run_process(m, k->pid), k->tid);
        if (!t) {
            m->counters_unmatched += k->have;
            continue;
        }
        if (!k->have)
            continue;
        /* A tid the same process used again (rare) is the same thread for the report: summed. */
        if (!t->ctr_mask) {
            t->ctr_born = k->born;
            t->ctr_open_ns = k->open_ns;
        }
        t->ctr_mask |= k->open_mask;
        for (size_t i = 0; i < C->nev; i++)
            for (int x = 0; x < 3; x++)
                t->ctr[i][x] += k->v[i][x];
    }
    /* Events perf_event_open refused: the monitor's /proc figures, where it has one. */
    for (size_t i = 0; i < C->nev; i++) {
        if (strcmp(C->ev[i].source, "proc") != 0)
            continue;
        for (size_t pi = 0; pi < m->nprocs; pi++)
            for (size_t ti = 0; ti < m->procs[pi]->nthreads; ti++) {
                struct prof_thread *t = &m->procs[pi]->threads[ti];
                int64_t v = proc_figure(t, C->ev[i].role);
                if (v < 0)
                    continue;
                t->ctr[i][0] = (uint64_t)v;
                t->ctr[i][1] = t->ctr[i][2] = 0;
                t->ctr_mask |= 1ull << i;
            }
    }
    if (m->counters_unmatched)
        prof_note(m->notes, "counters: %llu tasks were counted that no other record names: their counts are in no thread",
                  (unsigned long long)m->counters_unmatched);
    return 0;
}
