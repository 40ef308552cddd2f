/* confidence.c: how far a verdict can be trusted: the margin to its runner-up, the distance of its figures from the edges that decide it, and how much of the run the machine took away. */

/*
 * Pure, like the verdict it judges: figures and a verdict in, recommendation.confidence
 * and recommendation.tie out. The verdict is as strong as its weakest support, so the
 * confidence is the least of three terms, each 0 (could go either way) to 1 (clear):
 *   - margin: how much faster the verdict is predicted than the best candidate outside
 *     CHEAPER_WITHIN (10%) of it; those within it are a tie, which the choice broke by cost;
 *   - edge: how far the CPU demand sits from the seeds' 0.4 and 0.7, where the class
 *     (and with it the model) changes;
 *   - noise: the share of the threads' time spent waiting for a CPU or stolen by the
 *     hypervisor, which a loaded machine inflates and a quiet one does not (a program with
 *     more threads than CPUs queues by itself: then only stolen time counts);
 * and a run shorter than a few scheduler ticks halves it.
 */
#include <stdio.h>

#include "core/advise_int.h"
#include "prof.h"

/* A margin this wide (25%) is beyond any run-to-run noise seen on the reference workloads. */
#define MARGIN_FULL 0.25
/* CPU demand this far (0.15) from a class edge cannot cross it by noise. */
#define EDGE_FULL 0.15
/* Half the threads' time waiting for a CPU or stolen: the figures say more about the machine than the program. */
#define NOISE_ZERO 0.5
/* Shorter than this, per-thread CPU and wait figures are a handful of ticks. */
#define SHORT_RUN_S 0.2

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

void adv_confidence(struct prof_verdict *v, const struct prof_stage_figures *f, const struct prof_machine *m)
{
    /* Candidates within 10% of the verdict tie with it: which of them runs matters less than
     * the noise. The margin that measures the verdict is to the best candidate outside that band
     * (the one a wrong verdict would have been). */
    double margin = 1.0, sp = v->predicted_speedup;
    int other = -1;
    v->tie = 0;
    for (int i = 0; sp > TINY_S && i < v->ncandidates; i++) {
        const struct prof_candidate *c = &v->candidates[i];
        if (c->model == v->model)
            continue;
        if (c->speedup * CHEAPER_WITHIN >= sp)
            v->tie = 1;
        else if (other < 0 || c->speedup > v->candidates[other].speedup)
            other = i;
    }
    if (other >= 0)
        margin = clamp01((sp - v->candidates[other].speedup) / sp / MARGIN_FULL);
    double edge = 1.0;
    if (v->cls != PROF_CLASS_IDLE) {
        double d = fmin(fabs(v->demand_ratio - PROF_SEED_IO_BELOW), fabs(v->demand_ratio - PROF_SEED_CPU_ABOVE));
        edge = clamp01(d / EDGE_FULL);
    }
    /* A program with more threads than CPUs queues for them by itself: that run-queue time is
     * the program's, not a busy machine's. */
    double queued = f->steal_s + (f->nthreads <= m->usable_cpus ? f->runq_s : 0);
    double noise = 1.0;
    if (f->thread_s > TINY_S)
        noise = clamp01(1.0 - queued / f->thread_s / NOISE_ZERO);
    double c = fmin(margin, fmin(edge, noise));
    const char *weakest = c == margin ? "margin" : c == edge ? "edge" : "noise";
    if (f->wall_s < SHORT_RUN_S) {
        c *= 0.5;
        weakest = "short";
    }
    v->confidence = c;
    switch (weakest[0]) {
    case 'm':
        if (other >= 0)
            snprintf(v->confidence_basis, sizeof v->confidence_basis, "%s x %d is predicted %d%% slower",
                     prof_model_name(v->candidates[other].model), v->candidates[other].workers,
                     adv_pct((sp - v->candidates[other].speedup) / sp));
        else
            snprintf(v->confidence_basis, sizeof v->confidence_basis, "no other model is predicted slower by over 10%%");
        break;
    case 'e':
        snprintf(v->confidence_basis, sizeof v->confidence_basis, "CPU demand %.2f is %.2f from a class edge (%.1f/%.1f)",
                 v->demand_ratio,
                 fmin(fabs(v->demand_ratio - PROF_SEED_IO_BELOW), fabs(v->demand_ratio - PROF_SEED_CPU_ABOVE)),
                 PROF_SEED_IO_BELOW, PROF_SEED_CPU_ABOVE);
        break;
    case 'n':
        snprintf(v->confidence_basis, sizeof v->confidence_basis, "%d%% of the threads' time waited for a CPU or was stolen%s",
                 adv_pct(queued / f->thread_s), c < 0.66 ? ": a busy machine" : "");
        break;
    default:
        snprintf(v->confidence_basis, sizeof v->confidence_basis, "the run lasted %.2f s, a few scheduler ticks",
                 f->wall_s);
    }
}
