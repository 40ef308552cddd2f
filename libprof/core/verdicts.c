/* verdicts.c: the advise step: every stage judged by the pure advice (advise.c), then the run as a whole. */
#include <stdlib.h>
#include <string.h>

#include "core/advise.h"
#include "core/stages.h"
#include "prof.h"

/*
 * Whether the stage's memory keeps climbing, and so what one more thread costs: a threaded
 * stage's RSS growth over the threads that did the work (their stacks' touched pages and
 * the buffers each holds). A stage on one thread cannot tell what a task holds from what the
 * program keeps, and a leak is not per thread.
 */
static void judge_memory(struct prof_stage *s)
{
    struct prof_stage_figures *f = &s->fig;
    s->leak = s->rss_n ? prof_rss_leak_suspected(s->rss_t, s->rss_v, s->rss_n) == 1 : 0;
    if (f->current_model == PROF_MODEL_THREADS && f->current_workers >= 2 && s->nprocs == 1 && !s->leak)
        f->per_thread_bytes = s->rss_growth / (uint64_t)f->current_workers;
}

int prof_advise_stages(struct prof_stages *S, const struct prof_machine *m)
{
    int rc;
    struct prof_verdict *v = calloc(S->n ? S->n : 1, sizeof *v);
    double *ts = calloc(S->n ? S->n : 1, sizeof *ts);

    if (!v || !ts) {
        free(v);
        free(ts);
        return PROF_ENOMEM;
    }
    size_t nmarkers = 0, n = 0;
    for (size_t i = 0; i < S->n; i++)
        nmarkers += strcmp(S->v[i]->source, "marker") == 0;
    judge_memory(&S->overall);
    for (size_t i = 0; i < S->n; i++) {
        judge_memory(S->v[i]);
        if ((rc = prof_advise_stage(&S->v[i]->fig, m, &S->v[i]->verdict)))
            goto out;
        /* Stages the program marked itself are its own split of the work: when there are any, they
         * alone decide whether the run is hybrid (thread names and roles cut across them). */
        if (nmarkers && strcmp(S->v[i]->source, "marker") != 0)
            continue;
        v[n] = S->v[i]->verdict;
        /* Weighed by their work, not thread time: a dispatcher's idle pool threads carry none. */
        ts[n++] = S->v[i]->verdict.work.cpu_s + S->v[i]->verdict.work.wait_s;
    }
    rc = prof_advise_overall(&S->overall.fig, v, ts, n, m, &S->overall.verdict);
out:
    free(v);
    free(ts);
    return rc;
}
