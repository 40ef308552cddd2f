/* stage_counters.c: the stages step's perf counters: each thread's counts into its stage, and the figures the advice reads from them. */
#include <math.h>
#include <string.h>

#include "core/stages.h"

void prof_stage_ctr_add(const struct prof_run *m, struct prof_stage *s, const struct prof_process *p,
                        const struct prof_thread *t)
{
    s->ctr_threads++;
    for (size_t i = 0; i < m->ncounters; i++) {
        int ok;
        double running;
        uint64_t v = prof_thread_ctr_value(t, i, &ok, &running);
        if (!ok)
            continue;
        struct prof_stage_ctr *c = &s->ctr[i];
        if (!c->counted || running < c->min_running)
            c->min_running = running;
        c->counted++;
        c->value += v;
        c->partial += !t->ctr_born && strcmp(m->counters[i].source, "proc") != 0;
        c->scaled += running < PROF_CTR_SCALED_BELOW;
    }
    /* A forked worker's faults are what starting it cost: copy-on-write copies of its parent's pages. */
    if (p->forked) {
        int i = prof_run_counter_of(m, "minor_faults"), ok = 0;
        uint64_t v = i >= 0 ? prof_thread_ctr_value(t, (size_t)i, &ok, NULL) : 0;
        /* perf counts from the fork only when opened before the child ran; /proc counts from the task's creation */
        if (ok && (t->ctr_born || strcmp(m->counters[i].source, "proc") == 0)) {
            s->fork_minflt += v;
            s->fork_stime_ns += t->c.stime_ns;
        } else {
            s->fork_uncounted++;
        }
    }
}

/* Event with this role counted for every thread of the stage: its sum in *v. */
static int whole(const struct prof_run *m, const struct prof_stage *s, const char *role, uint64_t *v)
{
    int i = prof_run_counter_of(m, role);
    *v = 0;
    if (i < 0 || s->ctr_threads == 0 || s->ctr[i].counted < s->ctr_threads)
        return 0;
    *v = s->ctr[i].value;
    return 1;
}

void prof_stage_ctr_figures(const struct prof_run *m, struct prof_stage *s)
{
    struct prof_stage_figures *f = &s->fig;

    f->ivcsw = s->sum.ivcsw;
    f->migrations_measured = whole(m, s, "cpu_migrations", &f->migrations);
    int forked = 0;
    for (size_t i = 0; i < s->nprocs; i++)
        forked += s->procs[i]->forked;
    f->fork_children = forked;
    f->fork_faults_measured = forked > 0 && s->fork_uncounted == 0 && prof_run_counter_of(m, "minor_faults") >= 0;
    f->fork_minflt = f->fork_faults_measured ? s->fork_minflt : 0;
    f->fork_stime_s = f->fork_faults_measured ? (double)s->fork_stime_ns / 1e9 : 0;
    f->pmu_measured = whole(m, s, "cycles", &f->cycles) & whole(m, s, "instructions", &f->instructions);
    if (!f->pmu_measured)
        f->cycles = f->instructions = 0;
    f->llc_measured = whole(m, s, "llc_misses", &f->llc_misses);
}
