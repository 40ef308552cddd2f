/* verdicts.c: the advise step: every stage judged by the pure advice (advise.c), then the run as a whole. */
#include <stdlib.h>
#include <string.h>

#include "core/advise.h"
#include "core/stages.h"
#include "prof.h"

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
    for (size_t i = 0; i < S->n; i++) {
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
