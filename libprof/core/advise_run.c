/* advise_run.c: the judgments over more than one stage or over a series: the run's overall verdict from its stages', and whether its memory leaks. */

/*
 * Pure functions like the stage verdict they build on (advise.c): verdicts and
 * figures in, a verdict or a yes/no out.
 */
#include <math.h>

#include "core/advise_int.h"
#include "prof.h"

/* A stage must carry this share of the summed stage work to make the run hybrid: a dispatcher that only waits on its pool does not count. */
#define STAGE_SHARE_MIN 0.10
/* IPC time is a cost only where moving its bytes would take at least this share of it. */
#define IPC_MOVED_MIN_SHARE 0.01

/*
 * The run's predicted time when every stage runs as `model` predicts for it (-1: each stage at
 * its own verdict): a stage with no candidate of that model runs as it ran. The run's unstaged
 * rest runs as it ran; stages that overlap in time (a pipeline) are scaled to the run's wall.
 */
static double stagewise_seconds(const struct prof_stage_figures *overall, const struct prof_verdict *stages,
                                size_t nstages, int model)
{
    double staged = 0, pred = 0;
    for (size_t i = 0; i < nstages; i++) {
        double sp = model < 0 ? stages[i].predicted_speedup : 0;
        for (int k = 0; model >= 0 && k < stages[i].ncandidates; k++)
            if ((int)stages[i].candidates[k].model == model && stages[i].candidates[k].speedup > sp)
                sp = stages[i].candidates[k].speedup;
        if (sp <= TINY_S)
            sp = 1.0;
        staged += stages[i].wall_s;
        pred += stages[i].wall_s / sp;
    }
    double wall = overall->wall_s;
    if (staged > wall && staged > TINY_S) {
        pred *= wall / staged;
        staged = wall;
    }
    return wall - staged + pred;
}

/* Rule 7 (advise.c): the run's own verdict, unless stages that each carry a real share of the work want different models. */
int prof_advise_overall(const struct prof_stage_figures *overall, const struct prof_verdict *stages,
                        const double *stage_work_s, size_t nstages, const struct prof_machine *m,
                        struct prof_verdict *out)
{
    if (!overall || !m || !out || (nstages > 0 && (!stages || !stage_work_s)))
        return PROF_EINVAL;
    double sum = 0;
    for (size_t i = 0; i < nstages; i++) {
        if (adv_bad(stage_work_s[i]))
            return PROF_EINVAL;
        sum += stage_work_s[i];
    }
    int rc = prof_advise_stage(overall, m, out);
    if (rc < 0 || nstages < 2 || sum <= TINY_S)
        return rc;

    /* Which stages count: a real share of the run, and work to do. */
    size_t nsig = 0, first = 0;
    int differ = 0;
    for (size_t i = 0; i < nstages; i++) {
        if (stage_work_s[i] / sum < STAGE_SHARE_MIN || stages[i].cls == PROF_CLASS_IDLE ||
            stages[i].model == PROF_MODEL_SEQUENTIAL)
            continue;
        if (nsig++ == 0)
            first = i;
        else if (stages[i].model != stages[first].model)
            differ = 1;
    }
    if (!differ)
        return 0;
    double base = overall->ipc_base_s > TINY_S ? overall->ipc_base_s : overall->thread_s;
    double ipc_frac = overall->ipc_measured && base > TINY_S ? overall->ipc_s / base : 0;
    /* IPC time whose bytes would cost under 1% of it to move is a reader waiting on a writer
     * (a started server blocked 1.5 s on a 6-byte pipe), not a price per-stage pools would pay. */
    double moved = (double)overall->ipc_bytes * IPC_NS_PER_BYTE * 1e-9;
    if (moved < IPC_MOVED_MIN_SHARE * overall->ipc_s)
        ipc_frac = 0;
    if (ipc_frac > SEED_IPC_ABOVE && out->model != PROF_MODEL_PROCESSES && out->model != PROF_MODEL_HYBRID) {
        /* Splitting the run into per-stage pools would keep processes, and with them the IPC. */
        adv_add_reason(out, "stages want different models, but IPC is %d%% of the run's busy time, above the seeds' 15%%: pools of processes would keep paying it, so the run stays on %s",
                       adv_pct(ipc_frac), prof_model_name(out->model));
        return 0;
    }

    /* Stages that want different pools: one pool for the whole run would be
     * wrong for at least one of them, so each stage runs on its own. */
    struct prof_verdict own = *out;
    out->model = PROF_MODEL_HYBRID;
    out->chunksize = 0; /* batching is each stage's own advice */
    out->nreasons = 0;
    adv_add_reason(out, "hybrid: %zu stages that each carry at least 10%% of the stages' work want different models; run each stage on its own pool",
                   nsig);
    for (size_t i = 0; i < nstages; i++) {
        if (stage_work_s[i] / sum < STAGE_SHARE_MIN || stages[i].cls == PROF_CLASS_IDLE ||
            stages[i].model == PROF_MODEL_SEQUENTIAL)
            continue;
        adv_add_reason(out, "stage %s (%s, %d%% of the stages' work) wants %s x %d",
                       stages[i].name ? stages[i].name : "?",
                       prof_class_name(stages[i].cls), adv_pct(stage_work_s[i] / sum), prof_model_name(stages[i].model),
                       stages[i].workers);
    }
    /* The hybrid's prediction: each stage at its own predicted speedup. */
    double wall = overall->wall_s;
    double t_new = stagewise_seconds(overall, stages, nstages, -1);
    out->predicted_speedup = t_new > TINY_S && wall > TINY_S ? wall / t_new : own.predicted_speedup;
    /* The hybrid candidate becomes the per-stage one; the runner-up is the best other model. */
    int h = -1;
    for (int i = 0; i < out->ncandidates; i++)
        if (out->candidates[i].model == PROF_MODEL_HYBRID)
            h = i;
    if (h < 0 && out->ncandidates < PROF_MAX_CANDIDATES)
        h = out->ncandidates++;
    if (h >= 0) {
        out->candidates[h].model = PROF_MODEL_HYBRID;
        out->candidates[h].workers = out->workers;
        out->candidates[h].chunksize = 0;
        out->candidates[h].seconds = t_new;
        out->candidates[h].speedup = out->predicted_speedup;
    }
    /* One pool for the whole run, judged the same way: each stage at that model's prediction
     * for it. The run's own figures blend the stages (an I/O stage's waits and a GIL-bound
     * stage's CPU), so their single-pool predictions could promise what no stage would give,
     * and a runner-up would read faster than the hybrid chosen over it. */
    for (int i = 0; i < out->ncandidates; i++) {
        struct prof_candidate *c = &out->candidates[i];
        if (c->model == PROF_MODEL_HYBRID)
            continue;
        double t = stagewise_seconds(overall, stages, nstages, (int)c->model);
        if (t > TINY_S && wall > TINY_S) {
            c->seconds = t;
            c->speedup = wall / t;
        }
    }
    out->runner_up = -1;
    for (int i = 0; i < out->ncandidates; i++)
        if (out->candidates[i].model != PROF_MODEL_HYBRID &&
            (out->runner_up < 0 || out->candidates[i].speedup > out->candidates[out->runner_up].speedup))
            out->runner_up = i;
    if (out->runner_up >= 0)
        adv_add_reason(out, "hybrid predicted %.2fx over the measured run, each stage at its own prediction; runner-up %s x %d at %.2fx",
                       out->predicted_speedup, prof_model_name(out->candidates[out->runner_up].model),
                       out->candidates[out->runner_up].workers, out->candidates[out->runner_up].speedup);
    else
        adv_add_reason(out, "hybrid predicted %.2fx over the measured run, each stage at its own prediction",
                       out->predicted_speedup);
    adv_add_reason(out, "the run as a whole reads as %s (CPU demand %.2f) and alone would get %s x %d; workers stay the run's own figure",
                   prof_class_name(own.cls), own.demand_ratio, prof_model_name(own.model), own.workers);
    if (out->seed.model != PROF_MODEL_HYBRID)
        adv_add_reason(out, "the seeds judge the run by its CPU/wall of %.2f alone (%s); the stages' own figures disagree with each other",
                       own.cpu_wall_ratio, prof_model_name(out->seed.model));
    adv_confidence(out, overall, m);
    return 0;
}

/*
 * rss.leak_suspected: memory that keeps climbing through the run rather
 * than levelling off. All of these must hold:
 *   - at least 5 samples, in time order, over a positive time span;
 *   - net growth (last sample - first) of at least 16 MiB and at least 20% of
 *     the first sample: allocator arenas, interpreter warm-up and caches
 *     commonly add a few MiB and then stop, and a few percent of a large
 *     process is noise;
 *   - the series rarely falls: the sum of all drops between consecutive
 *     samples is at most 25% of the sum of all rises. Memory that is freed
 *     and re-used is churn, not a leak;
 *   - it is still climbing at the end: the least-squares slope over the last
 *     third of the run (by time) is at least 25% of the average rate over
 *     the whole run (net growth / duration). A series that climbs and then
 *     plateaus has a flat last third, a filling cache one that slows to a few
 *     percent; a leak slows too on a loaded host (c_rss_growth beside two CPU
 *     hogs faulted its last blocks in at 42% of its average rate).
 * A fall from the series' peak to its end within the last 15% of the span is the
 * process exiting (CPython frees every object at shutdown: 288 MB gone in the
 * last 80 ms of a 1.1 s run), not churn: the series is judged up to its peak.
 */
#define LEAK_MIN_SAMPLES 5
#define LEAK_MIN_GROWTH (16ull << 20)
#define LEAK_MIN_REL_GROWTH 0.20
#define LEAK_MAX_FALL_SHARE 0.25
#define LEAK_MIN_LATE_RATE 0.25
#define LEAK_TEARDOWN_SHARE 0.15

int prof_rss_leak_suspected(const double *t, const uint64_t *rss, size_t n)
{
    if (!t || !rss)
        return PROF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (isnan(t[i]) || isinf(t[i]) || (i > 0 && t[i] < t[i - 1]))
            return PROF_EINVAL;
    if (n < LEAK_MIN_SAMPLES)
        return 0;
    size_t peak = 0;
    for (size_t i = 1; i < n; i++)
        if (rss[i] > rss[peak])
            peak = i;
    if (peak < n - 1 && t[n - 1] - t[peak] <= LEAK_TEARDOWN_SHARE * (t[n - 1] - t[0]))
        n = peak + 1;
    if (n < LEAK_MIN_SAMPLES)
        return 0;
    double span = t[n - 1] - t[0];
    if (span <= 0 || rss[n - 1] <= rss[0])
        return 0;
    uint64_t growth = rss[n - 1] - rss[0];
    if (growth < LEAK_MIN_GROWTH || (double)growth < LEAK_MIN_REL_GROWTH * (double)rss[0])
        return 0;

    double rises = 0, falls = 0;
    for (size_t i = 1; i < n; i++) {
        if (rss[i] >= rss[i - 1])
            rises += (double)(rss[i] - rss[i - 1]);
        else
            falls += (double)(rss[i - 1] - rss[i]);
    }
    if (falls > LEAK_MAX_FALL_SHARE * rises)
        return 0;

    /* The last third by time; at least two samples for a slope. */
    double cut = t[0] + span * 2.0 / 3.0;
    size_t k = 0;
    while (k < n && t[k] < cut)
        k++;
    if (k > n - 2)
        k = n - 2;
    size_t w = n - k;
    double mt = 0, mr = 0;
    for (size_t i = k; i < n; i++) {
        mt += t[i];
        mr += (double)rss[i];
    }
    mt /= (double)w;
    mr /= (double)w;
    double sxy = 0, sxx = 0;
    for (size_t i = k; i < n; i++) {
        sxy += (t[i] - mt) * ((double)rss[i] - mr);
        sxx += (t[i] - mt) * (t[i] - mt);
    }
    if (sxx <= 0)
        return 0;
    double late = sxy / sxx;
    double avg = (double)growth / span;
    return late >= LEAK_MIN_LATE_RATE * avg ? 1 : 0;
}
