/* sweep_results.c: `poolprof sweep`'s results: medians, speedups, the Amdahl and USL fits, whether the scaling is memory-bound, the table on stdout and the poolprof.sweep/1 JSON. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "prof.h"
#include "sweep.h"

/* The report's predicted speedup at n (recommendation.scaling.points), NaN when it has none. */
static double predicted_at(const struct sweep *w, int n)
{
    const json_t *points = json_object_get(json_object_get(w->rec, "scaling"), "points"), *p;
    size_t i;
    json_array_foreach(points, i, p) {
        const json_t *pw = json_object_get(p, "workers"), *ps = json_object_get(p, "predicted_speedup");
        if (json_is_integer(pw) && json_integer_value(pw) == n && json_is_number(ps) && isfinite(json_number_value(ps)))
            return json_number_value(ps);
    }
    return NAN;
}

int sweep_counter_figures(const json_t *stage, double *ipc, double *llc_mpki)
{
    /* The first event of each role: the report merges events of the same encoding already. */
    double cycles = -1, instructions = -1, llc = -1;
    const json_t *counters = json_object_get(stage, "counters"), *e;
    size_t i;
    json_array_foreach(counters, i, e) {
        const char *role = json_string_value(json_object_get(e, "role"));
        const json_t *value = json_object_get(e, "value");
        if (!role || !json_is_number(value) || json_number_value(value) < 0)
            continue;
        double v = json_number_value(value);
        if (strcmp(role, "cycles") == 0 && cycles < 0)
            cycles = v;
        else if (strcmp(role, "instructions") == 0 && instructions < 0)
            instructions = v;
        else if (strcmp(role, "llc_misses") == 0 && llc < 0)
            llc = v;
    }
    *ipc = 0;
    *llc_mpki = -1;
    if (!(cycles > 0) || !(instructions > 0))
        return 0;
    *ipc = instructions / cycles;
    if (llc >= 0)
        *llc_mpki = 1000.0 * llc / instructions;
    return 1;
}

/* The sweep's event with this role, counted per timed run (--counters), or -1. */
static int ctr_of(const struct sweep *w, enum prof_ctr_role role)
{
    for (size_t e = 0; e < w->nctr; e++)
        if (w->ctr[e].role == role && (w->ctr[e].source == PROF_CTR_SRC_PERF || w->ctr[e].source == PROF_CTR_SRC_RAW))
            return (int)e;
    return -1;
}

/*
 * The memory check, each count with its speedup: from the timed runs' own counts (--counters
 * with a PMU: each point's medians of cycles, instructions and LLC misses over its whole tree),
 * else from the profiled counts' reports.
 */
static void memory_check(const struct sweep *w, struct results *r)
{
    int cyc = ctr_of(w, PROF_CTR_ROLE_CYCLES), ins = ctr_of(w, PROF_CTR_ROLE_INSTRUCTIONS),
        llc = ctr_of(w, PROF_CTR_ROLE_LLC_MISSES);
    r->nmem = 0;
    for (size_t c = 0; cyc >= 0 && ins >= 0 && c < w->ncounts; c++) {
        const struct point *p = &r->p[c];
        if (!(p->ctr[cyc] > 0) || !(p->ctr[ins] > 0) || !isfinite(p->speedup))
            continue;
        double mpki = llc >= 0 && p->ctr[llc] >= 0 ? 1000.0 * p->ctr[llc] / p->ctr[ins] : -1;
        r->mem[r->nmem++] = (struct prof_membound_point){p->workers, p->ctr[ins] / p->ctr[cyc], mpki, p->speedup};
    }
    if (r->nmem >= 2) {
        prof_membound(r->mem, r->nmem, &r->membound);
        return;
    }
    r->nmem = 0;
    for (size_t i = 0; i < w->nprofiled; i++) {
        double ipc, mpki;
        if (!sweep_counter_figures(w->profiled[i].stage, &ipc, &mpki))
            continue;
        for (size_t c = 0; c < w->ncounts && r->nmem < sizeof r->mem / sizeof r->mem[0]; c++)
            if (r->p[c].workers == w->profiled[i].workers && isfinite(r->p[c].speedup))
                r->mem[r->nmem++] = (struct prof_membound_point){w->profiled[i].workers, ipc, mpki, r->p[c].speedup};
    }
    prof_membound(r->mem, r->nmem, &r->membound);
}

int sweep_compute(const struct sweep *w, struct results *r)
{
    double n[MAX_COUNTS + 1], t[MAX_COUNTS + 1];

    memset(r, 0, sizeof *r);
    for (size_t c = 0; c < w->ncounts; c++) {
        const double *x = &w->wall[c * (size_t)w->repeat];
        struct point *p = &r->p[c];
        int err = prof_fit_median(x, (size_t)w->repeat, &p->median);
        if (err < 0)
            return err;
        p->workers = w->counts[c];
        p->min = p->max = x[0];
        for (int i = 1; i < w->repeat; i++)
            p->min = fmin(p->min, x[i]), p->max = fmax(p->max, x[i]);
        n[c] = p->workers;
        t[c] = p->median;
        p->predicted = w->rec ? predicted_at(w, p->workers) : NAN;
        /* Each event's median over the point's runs, where every run counted it. */
        for (size_t e = 0; e < PROF_CTR_MAX; e++) {
            double v[MAX_REPEAT];
            int all = e < w->nctr;
            for (int i = 0; all && i < w->repeat; i++) {
                size_t k = c * (size_t)w->repeat + (size_t)i;
                all = (w->ctr_ok[k] >> e) & 1;
                v[i] = (double)w->ctr_v[k][e];
            }
            p->ctr[e] = NAN;
            if (all && prof_fit_median(v, (size_t)w->repeat, &p->ctr[e]) < 0)
                p->ctr[e] = NAN;
        }
        if (p->median < r->p[r->best].median || (p->median == r->p[r->best].median && p->workers < r->p[r->best].workers))
            r->best = c;
    }
    for (size_t c = 0; c < w->ncounts; c++) {
        struct point *p = &r->p[c];
        /* A run too quick for the clock would divide by zero: leave its speedup undefined. */
        p->speedup = p->median > 0 ? r->p[0].median / p->median : NAN;
        p->efficiency = p->speedup / ((double)p->workers / r->p[0].workers);
    }
    r->have_amdahl = prof_fit_amdahl(n, t, w->ncounts, &r->amdahl) == 0;
    r->have_usl = prof_fit_usl(n, t, w->ncounts, &r->usl) == 0;
    if (r->have_usl && prof_usl_peak(r->usl.sigma, r->usl.kappa, &r->peak_workers) == 0) {
        r->have_peak = 1;
        r->peak_workers *= r->p[0].workers;
    }
    memory_check(w, r);
    r->rec_throughput = NAN;
    if (w->rec) {
        for (size_t c = 0; c < w->ncounts; c++) {
            if (r->p[c].workers == w->rec_workers) {
                r->rec_timed = 1;
                r->rec_throughput = r->p[r->best].median / r->p[c].median;
            }
        }
    }
    return 0;
}

static const char *plural(int n)
{
    return n == 1 ? "" : "s";
}

/* Seconds with three decimals, or three significant digits under 0.1 s. */
static void fmt_s(char *buf, size_t cap, double s)
{
    snprintf(buf, cap, s < 0.1 ? "%.3g" : "%.3f", s);
}

static void fmt_2(char *buf, size_t cap, int have, double v)
{
    if (have && isfinite(v))
        snprintf(buf, cap, "%.2f", v);
    else
        snprintf(buf, cap, "-");
}

/*
 * The verdict held against what was timed, claiming only that: its model was timed only when
 * every run was given it through {model}; its count only when it is among the points. Without
 * {model} the count is compared on the program as written, and the line says so.
 */
static void print_verdict_check(const struct sweep *w, const struct results *r)
{
    const char *model = json_string_value(json_object_get(w->rec, "model"));
    const json_t *ps = json_object_get(w->rec, "predicted_speedup");
    int n = w->rec_workers;

    printf("; poolprof run recommended %s x %d", model, n);
    if (strcmp(w->rec_stage, "overall") != 0)
        printf(" for stage '%s'", w->rec_stage);
    if (json_is_number(ps))
        printf(" (predicted speedup %.2f)", json_number_value(ps));
    if (w->timed_model)
        printf(": timed as %s%s", model, r->rec_timed ? "" : " at the swept counts");
    else
        printf(": %s not measured (no " MODEL_PLACEHOLDER " in the command)", model);
    if (!r->rec_timed)
        printf("; %d worker%s not timed", n, plural(n));
    else if (w->timed_model)
        printf(", %.2f of the best throughput (within 10%%: %s)", r->rec_throughput,
               r->rec_throughput >= WITHIN ? "yes" : "no");
    else
        printf("; %d worker%s timed as written: %.2f of the best throughput (count within 10%% of the best: %s)", n,
               plural(n), r->rec_throughput, r->rec_throughput >= WITHIN ? "yes" : "no");
}

void sweep_print(const struct sweep *w, const struct results *r)
{
    printf("poolprof sweep: %zu count%s x %d repeat%s, interleaved; ", w->ncounts, w->ncounts == 1 ? "" : "s",
           w->repeat, plural(w->repeat));
    if (w->rec)
        printf("profiled at %d worker%s\n", w->profile_at, plural(w->profile_at));
    else
        printf("not profiled (--no-profile)\n");
    if (w->timed_model && w->rec)
        printf(MODEL_PLACEHOLDER ": %s in every timed run (poolprof run's verdict), %s in the profile run\n",
               w->timed_model, w->profile_model);
    else if (w->timed_model)
        printf(MODEL_PLACEHOLDER ": %s in every run (--model)\n", w->timed_model);
    if (!w->workers_in_cmd)
        printf("--force: no " PLACEHOLDER " in the command; the count reaches it only through " WORKERS_ENV "\n");
    if (w->rec_added)
        printf("added %d worker%s to the sweep: poolprof run recommended it and --workers did not list it\n",
               w->rec_workers, plural(w->rec_workers));
    if (w->rec_skipped)
        printf("verdict's %d workers not timed: above %d, the largest count sweep adds (%d x the largest of "
               "--workers, at least %d); list %d in --workers to time it\n",
               w->rec_workers, w->rec_limit, ADD_FACTOR, ADD_MIN, w->rec_workers);
    int any_predicted = 0;
    for (size_t c = 0; c < w->ncounts; c++)
        any_predicted |= !isnan(r->p[c].predicted);
    if (any_predicted) {
        /* The report counts workers its own way (threads or processes seen, the main one included):
         * say so when that is not the count the profiled run was given, or the columns mislead. */
        const json_t *scaling = json_object_get(w->rec, "scaling"), *mw = json_object_get(scaling, "measured_workers");
        const char *model = json_string_value(json_object_get(scaling, "model"));
        printf("predicted: poolprof run's %s%sscaling model, relative to the profiled run at %d worker%s", model ? model : "",
               model ? " " : "", w->profile_at, plural(w->profile_at));
        if (json_is_integer(mw) && json_integer_value(mw) != w->profile_at)
            printf(" (which poolprof counted as %lld)", (long long)json_integer_value(mw));
        if (w->profile_at != r->p[0].workers)
            printf("; measured speedups are relative to %d", r->p[0].workers);
        printf("\n");
    }

    printf("%-8s %-9s %-15s %-8s %-11s %-7s %-6s %s\n", "workers", "median s", "spread s", "speedup", "efficiency",
           "amdahl", "usl", "predicted");
    for (size_t c = 0; c < w->ncounts; c++) {
        const struct point *p = &r->p[c];
        double rel = (double)p->workers / r->p[0].workers;
        char med[32], lo[32], hi[32], spread[72], sp[32], ef[32], am[32], us[32], pr[32];
        fmt_s(med, sizeof med, p->median);
        fmt_s(lo, sizeof lo, p->min);
        fmt_s(hi, sizeof hi, p->max);
        snprintf(spread, sizeof spread, "%s-%s", lo, hi);
        fmt_2(sp, sizeof sp, 1, p->speedup);
        fmt_2(ef, sizeof ef, 1, p->efficiency);
        fmt_2(am, sizeof am, r->have_amdahl, prof_amdahl_speedup(r->amdahl.serial_fraction, rel));
        fmt_2(us, sizeof us, r->have_usl, prof_usl_speedup(r->usl.sigma, r->usl.kappa, rel));
        fmt_2(pr, sizeof pr, 1, p->predicted);
        if (isnan(p->predicted))
            pr[0] = '\0';
        printf("%-8d %-9s %-15s %-8s %-11s %-7s %-6s %s\n", p->workers, med, spread, sp, ef, am, us, pr);
    }
    if (r->have_amdahl && r->have_usl) {
        printf("Amdahl fit: serial fraction %.3f (rms error %.3f); USL fit: sigma %.3g, kappa %.3g, ",
               r->amdahl.serial_fraction, r->amdahl.rms_error, r->usl.sigma, r->usl.kappa);
        if (r->have_peak)
            printf("peak at N=%.0f\n", r->peak_workers);
        else
            printf("no peak (%s)\n", r->usl.kappa == 0 ? "kappa 0" : "sigma >= 1");
    } else {
        printf("Amdahl and USL fits: need at least two worker counts with measurable times\n");
    }
    if (r->membound.judged)
        printf("memory: %s\n", r->membound.reason);
    const struct point *b = &r->p[r->best];
    char med[32];
    fmt_s(med, sizeof med, b->median);
    printf("measured best: %d worker%s (median %s s)", b->workers, plural(b->workers), med);
    if (w->rec)
        print_verdict_check(w, r);
    printf("\n");
}

/* A finite number, or null (jansson has no NaN). */
static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* What of the recommendation was timed: its model (through {model}), its count, and how the count did. */
static json_t *verdict_check_json(const struct sweep *w, const struct results *r)
{
    json_t *v = json_object();

    json_object_set_new(v, "model", json_incref(json_object_get(w->rec, "model")));
    json_object_set_new(v, "model_timed", json_boolean(w->timed_model != NULL));
    json_object_set_new(v, "workers", json_integer(w->rec_workers));
    json_object_set_new(v, "workers_timed", json_boolean(r->rec_timed));
    json_object_set_new(v, "workers_limit", json_integer(w->rec_limit));
    json_object_set_new(v, "throughput_vs_best", jnum(r->rec_throughput));
    json_object_set_new(v, "within_10_percent", r->rec_timed ? json_boolean(r->rec_throughput >= WITHIN) : json_null());
    return v;
}

/* The memory check: null unless two or more timed counts were profiled with a PMU. */
static json_t *memory_json(const struct results *r)
{
    if (!r->membound.judged)
        return json_null();
    json_t *o = json_object(), *points = json_array();
    for (size_t i = 0; i < r->nmem; i++)
        json_array_append_new(points, json_pack("{s:i, s:o, s:o, s:o}", "workers", r->mem[i].workers, "ipc",
                                                jnum(r->mem[i].ipc), "llc_mpki",
                                                r->mem[i].llc_mpki >= 0 ? jnum(r->mem[i].llc_mpki) : json_null(),
                                                "speedup", jnum(r->mem[i].speedup)));
    json_object_set_new(o, "memory_bound", json_boolean(r->membound.memory_bound));
    json_object_set_new(o, "workers_cap", r->membound.memory_bound ? json_integer(r->membound.cap) : json_null());
    json_object_set_new(o, "ipc_drop", jnum(r->membound.ipc_drop));
    json_object_set_new(o, "reason", json_string(r->membound.reason));
    json_object_set_new(o, "points", points);
    return o;
}

static json_t *results_json(const struct sweep *w, const struct results *r)
{
    json_t *o = json_object(), *cmd = json_array(), *points = json_array();

    for (char **a = w->cmd; *a; a++)
        json_array_append_new(cmd, json_string(*a));
    for (size_t c = 0; c < w->ncounts; c++) {
        const struct point *p = &r->p[c];
        json_t *walls = json_array();
        for (int i = 0; i < w->repeat; i++)
            json_array_append_new(walls, json_real(w->wall[c * (size_t)w->repeat + (size_t)i]));
        json_t *pt = json_object();
        json_object_set_new(pt, "workers", json_integer(p->workers));
        json_object_set_new(pt, "wall_seconds", walls);
        json_object_set_new(pt, "median_seconds", jnum(p->median));
        json_object_set_new(pt, "min_seconds", jnum(p->min));
        json_object_set_new(pt, "max_seconds", jnum(p->max));
        json_object_set_new(pt, "speedup", jnum(p->speedup));
        json_object_set_new(pt, "efficiency", jnum(p->efficiency));
        json_object_set_new(pt, "predicted_speedup", jnum(p->predicted));
        if (w->nctr) {
            json_t *ctr = json_array();
            for (size_t e = 0; e < w->nctr; e++)
                if (!isnan(p->ctr[e]))
                    json_array_append_new(ctr, json_pack("{s:s, s:o, s:o}", "event", w->ctr[e].name, "role",
                                                         *prof_ctr_role_key(w->ctr[e].role)
                                                             ? json_string(prof_ctr_role_key(w->ctr[e].role))
                                                             : json_null(),
                                                         "median", json_real(p->ctr[e])));
            json_object_set_new(pt, "counters", ctr);
        }
        json_array_append_new(points, pt);
    }
    json_object_set_new(o, "schema", json_string(SWEEP_SCHEMA));
    json_object_set_new(o, "command", cmd);
    json_object_set_new(o, "workers_in_command", json_boolean(w->workers_in_cmd));
    json_object_set_new(o, "timed_model", w->timed_model ? json_string(w->timed_model) : json_null());
    json_object_set_new(o, "repeat", json_integer(w->repeat));
    json_object_set_new(o, "seed", json_integer((json_int_t)w->seed));
    json_object_set_new(o, "points", points);
    json_object_set_new(o, "amdahl", r->have_amdahl ? json_pack("{s:o, s:o}", "serial_fraction",
                                                                 jnum(r->amdahl.serial_fraction), "rms_error",
                                                                 jnum(r->amdahl.rms_error))
                                                     : json_null());
    json_object_set_new(o, "usl", r->have_usl ? json_pack("{s:o, s:o, s:o, s:o}", "sigma", jnum(r->usl.sigma), "kappa",
                                                          jnum(r->usl.kappa), "peak_workers",
                                                          r->have_peak ? jnum(r->peak_workers) : json_null(),
                                                          "rms_error", jnum(r->usl.rms_error))
                                               : json_null());
    json_object_set_new(o, "best", json_pack("{s:i, s:o}", "workers", r->p[r->best].workers, "median_seconds",
                                             jnum(r->p[r->best].median)));
    json_object_set_new(o, "memory_scaling", memory_json(r));
    if (w->rec) {
        const json_t *ps = json_object_get(w->rec, "predicted_speedup");
        json_t *rec = json_object();
        json_object_set_new(rec, "stage", json_string(w->rec_stage));
        json_object_set_new(rec, "model", json_incref(json_object_get(w->rec, "model")));
        json_object_set_new(rec, "workers", json_integer(w->rec_workers));
        json_object_set_new(rec, "predicted_speedup", json_is_number(ps) ? jnum(json_number_value(ps)) : json_null());
        json_object_set_new(rec, "throughput_vs_best", jnum(r->rec_throughput));
        /* The recommendation as a whole (model and count) is within 10% only when both were timed. */
        json_object_set_new(rec, "within_10_percent", w->timed_model && r->rec_timed
                                                          ? json_boolean(r->rec_throughput >= WITHIN)
                                                          : json_null());
        json_object_set_new(rec, "profiled_workers", json_integer(w->profile_at));
        json_object_set_new(rec, "profiled_model", w->profile_model ? json_string(w->profile_model) : json_null());
        const json_t *scaling = json_object_get(w->rec, "scaling"), *mw = json_object_get(scaling, "measured_workers");
        const json_t *sm = json_object_get(scaling, "model");
        json_object_set_new(rec, "scaling_model", json_is_string(sm) ? json_incref((json_t *)sm) : json_null());
        json_object_set_new(rec, "measured_workers", json_is_integer(mw) ? json_incref((json_t *)mw) : json_null());
        json_object_set_new(rec, "added_to_sweep", json_boolean(w->rec_added));
        json_object_set_new(o, "recommendation", rec);
        json_object_set_new(o, "verdict_check", verdict_check_json(w, r));
    } else {
        json_object_set_new(o, "recommendation", json_null());
        json_object_set_new(o, "verdict_check", json_null());
    }
    return o;
}

/* Temp file + rename: a reader never sees half a file, a failed write leaves the old one. */
static int write_json(const char *path, const json_t *o)
{
    char tmp[PATH_MAX];

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return PROF_EINVAL;
    errno = 0;
    FILE *fp = fopen(tmp, "we");
    int failed = !fp || json_dumpf(o, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) != 0 ||
                 fputc('\n', fp) == EOF || ferror(fp);
    int e = failed ? prof_err_from_errno(errno ? errno : EIO) : 0;
    if (fp && fclose(fp) != 0 && !e)
        e = prof_err_from_errno(errno ? errno : EIO);
    if (!e && rename(tmp, path) != 0)
        e = prof_err_from_errno(errno);
    if (e)
        unlink(tmp);
    return e;
}

int sweep_write_json(const struct sweep *w, const struct results *r, const char *path)
{
    json_t *o = results_json(w, r);
    int err = o ? write_json(path, o) : PROF_ENOMEM;
    json_decref(o);
    return err;
}
