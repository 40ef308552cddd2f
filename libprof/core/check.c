/* check.c: the CI gate's decisions: what two sets of reports say about each figure of each stage under the rule that judges it, and the check document that records why. */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/check_int.h"
#include "core/fit.h"
#include "core/stats.h"
#include "prof.h"

/* Candidates within this factor of the best tie with it: the advice's own margin (advise_int.h). */
#define TIE_WITHIN 1.10

/* ---- reading the reports -------------------------------------------------------------------------- */

/* The value at a dotted path inside obj, or NULL. */
static const json_t *at_path(const json_t *obj, const char *path)
{
    char key[64];
    while (obj && *path) {
        size_t len = strcspn(path, ".");
        if (len >= sizeof key)
            return NULL;
        memcpy(key, path, len);
        key[len] = '\0';
        obj = json_object_get(obj, key);
        path += len + (path[len] == '.');
    }
    return obj;
}

/* The stage name of a report document, or NULL. */
static const json_t *stage_of(const json_t *doc, const char *name)
{
    if (strcmp(name, "overall") == 0)
        return json_object_get(doc, "overall");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "stages"), i, s) {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (n && strcmp(n, name) == 0)
            return s;
    }
    return NULL;
}

/* The figure f of stage in doc as a number (booleans 0/1): 1, or 0 when absent, null or not measured. */
static int figure_value(const json_t *doc, const char *stage, const struct check_figure *f, double *out)
{
    const json_t *s = stage_of(doc, stage);
    if (!s)
        return 0;
    if (f->measured) {
        const json_t *m = at_path(s, f->measured);
        if (json_is_false(m))
            return 0;
    }
    const json_t *v = at_path(s, f->path);
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (json_is_number(v))
        *out = json_number_value(v);
    else
        return 0;
    return isfinite(*out);
}

/* Every value of the figure on one side; how many. */
static size_t side_values(const struct prof_check_side *sd, const char *stage, const struct check_figure *f, double *out)
{
    size_t n = 0;
    for (size_t i = 0; i < sd->n; i++)
        n += (size_t)figure_value(sd->reports[i], stage, f, &out[n]);
    return n;
}

/* ---- the checks ----------------------------------------------------------------------------------- */

struct ctx {
    const struct prof_check_side *base, *cur;
    const struct prof_check_opts *o;
    int machines_differ;
    double *a, *b; /* scratch, one value per report of each side */
};

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* "+30.6%" */
static void pct(char *buf, size_t cap, double ratio)
{
    snprintf(buf, cap, "%+.1f%%", (ratio - 1.0) * 100.0);
}

/* "30.6%": how far, the direction said in words. */
static void by(char *buf, size_t cap, double ratio)
{
    snprintf(buf, cap, "%.1f%%", fabs(ratio - 1.0) * 100.0);
}

static const char *kind_name(enum prof_check_kind k)
{
    switch (k) {
    case PROF_CHECK_TIMING:
        return "timing";
    case PROF_CHECK_COUNT:
        return "count";
    case PROF_CHECK_LIMIT:
        return "limit";
    case PROF_CHECK_VERDICT:
        return "verdict";
    }
    return "?";
}

static const char *source_name(enum prof_check_source s)
{
    return s == PROF_CHECK_DEFAULT ? "default" : s == PROF_CHECK_CONFIG ? PROF_CHECK_CONFIG_FILE : "--threshold";
}

/* How the rule reads: "at most +10%", "at most 0.2", "is false", "same model, workers within 1". */
static void rule_text(const struct prof_check_rule *r, char *buf, size_t cap)
{
    switch (r->kind) {
    case PROF_CHECK_TIMING:
    case PROF_CHECK_COUNT:
        snprintf(buf, cap, "at most +%g%%", r->threshold * 100.0);
        break;
    case PROF_CHECK_LIMIT:
        if (r->op == PROF_CHECK_EQ && check_figure_find(r->figure)->type == F_BOOL)
            snprintf(buf, cap, "is %s", r->equals_bool ? "true" : "false");
        else
            snprintf(buf, cap, "%s %g", r->op == PROF_CHECK_LE ? "at most" : r->op == PROF_CHECK_GE ? "at least" : "equals",
                     r->threshold);
        break;
    case PROF_CHECK_VERDICT:
        snprintf(buf, cap, "same model, workers within %d", r->workers_step);
        break;
    }
}

/* A check row with its rule's fields; the caller adds what was found. */
static json_t *row_new(const char *stage, const struct prof_check_rule *r, size_t na, size_t nb)
{
    char rt[96];
    rule_text(r, rt, sizeof rt);
    /* The threshold: the allowed increase, the bound, or the workers step; a true/false limit has none. */
    int thr = !(r->kind == PROF_CHECK_LIMIT && check_figure_find(r->figure)->type == F_BOOL);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:n, s:n, s:n, s:n, s:n, s:[I,I], s:s, s:n, s:s}", "stage",
                     stage, "figure", r->figure, "kind", kind_name(r->kind), "rule", rt, "rule_source",
                     source_name(r->source), "threshold",
                     thr ? json_real(r->kind == PROF_CHECK_VERDICT ? r->workers_step : r->threshold) : json_null(),
                     "base", "current", "change", "interval", "p", "samples", (json_int_t)na, (json_int_t)nb,
                     "result", "passed", "note", "reason", "");
}

static void row_set(json_t *row, const char *result, const char *note, const char *reason)
{
    json_object_set_new(row, "result", json_string(result));
    json_object_set_new(row, "note", note ? json_string(note) : json_null());
    json_object_set_new(row, "reason", json_string(reason));
}

/* The per-check seed: the same check draws the same resamples whatever else is checked. */
static uint64_t row_seed(uint64_t seed, const char *stage, const char *figure)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ULL;
    for (const char *p = stage; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
    for (const char *p = figure; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    return h;
}

static void clamp_floor(double *x, size_t n, double floor)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] < floor)
            x[i] = floor;
}

/* Timing and count figures: how far current moved from base, against the allowed increase. */
static int check_relative(struct ctx *c, json_t *row, const char *stage, const struct prof_check_rule *r,
                          const struct check_figure *f, size_t na, size_t nb)
{
    char reason[512], ch[32], lo[32], hi[32];
    double thr = r->threshold;
    double mb = prof_fit_median_inplace(c->a, na), mc = prof_fit_median_inplace(c->b, nb);

    json_object_set_new(row, "base", json_real(mb));
    json_object_set_new(row, "current", json_real(mc));
    clamp_floor(c->a, na, f->floor);
    clamp_floor(c->b, nb, f->floor);
    double fb = prof_fit_median_inplace(c->a, na), fc = prof_fit_median_inplace(c->b, nb);
    double ratio = fc / fb;
    json_object_set_new(row, "change", json_real(ratio));
    pct(ch, sizeof ch, ratio);

    if (r->kind == PROF_CHECK_COUNT || na < 2 || nb < 2) {
        const char *note = r->kind == PROF_CHECK_TIMING ? "single sample" : NULL;
        const char *how = note ? " with one sample on a side: no test, the ratio alone" : "";
        if (r->kind == PROF_CHECK_TIMING && c->machines_differ) {
            snprintf(reason, sizeof reason, "%s %s, but the two sides ran on different machines: not compared",
                     r->figure, ch);
            row_set(row, "inconclusive", "machines differ", reason);
        } else if (ratio > 1 + thr) {
            by(ch, sizeof ch, ratio);
            snprintf(reason, sizeof reason, "%s rose %s%s, beyond the +%g%% allowed", r->figure, ch, how, thr * 100);
            row_set(row, "regressed", note, reason);
        } else if (ratio < 1 - thr) {
            by(ch, sizeof ch, ratio);
            snprintf(reason, sizeof reason, "%s fell %s%s", r->figure, ch, how);
            row_set(row, "improved", note, reason);
        } else {
            snprintf(reason, sizeof reason, "%s %s%s, within +%g%%", r->figure, ch, how, thr * 100);
            row_set(row, "passed", note, reason);
        }
        return 0;
    }

    /* A figure at its floor on every run of both sides: nothing to test (and nothing to rank). */
    if (fb == f->floor && fc == f->floor && c->a[na - 1] == f->floor && c->b[nb - 1] == f->floor) {
        snprintf(reason, sizeof reason, "%s below %g s on every run of both sides", r->figure, f->floor);
        row_set(row, "passed", NULL, reason);
        return 0;
    }
    struct prof_comparison cmp;
    int err = prof_stats_compare(c->a, na, c->b, nb, thr, row_seed(c->o->seed, stage, r->figure), &cmp);
    if (err < 0)
        return err;
    json_object_set_new(row, "interval", json_pack("[f,f]", cmp.ci.lo, cmp.ci.hi));
    json_object_set_new(row, "p", json_real(cmp.mwu.p));
    pct(lo, sizeof lo, cmp.ci.lo);
    pct(hi, sizeof hi, cmp.ci.hi);
    if (c->machines_differ) {
        snprintf(reason, sizeof reason, "%s %s (95%% interval %s to %s), but the two sides ran on different "
                 "machines: not compared", r->figure, ch, lo, hi);
        row_set(row, "inconclusive", "machines differ", reason);
    } else if (cmp.change == PROF_CHANGE_WORSE) {
        by(ch, sizeof ch, ratio);
        snprintf(reason, sizeof reason, "%s rose %s (95%% interval %s to %s, p = %.2g), beyond the +%g%% allowed",
                 r->figure, ch, lo, hi, cmp.mwu.p, thr * 100);
        row_set(row, "regressed", NULL, reason);
    } else if (cmp.change == PROF_CHANGE_BETTER) {
        by(ch, sizeof ch, ratio);
        snprintf(reason, sizeof reason, "%s fell %s (95%% interval %s to %s, p = %.2g)", r->figure, ch, lo, hi,
                 cmp.mwu.p);
        row_set(row, "improved", NULL, reason);
    } else if (ratio > 1 + thr) {
        /* Worse than allowed by the medians, but not by the test and the interval together: the
         * runs cannot say. A wide interval around an unchanged median is no such doubt. */
        snprintf(reason, sizeof reason, "%s %s, beyond +%g%%, but the runs do not establish it (95%% interval %s "
                 "to %s, p = %.2g%s); more rounds would tell", r->figure, ch, thr * 100, lo, hi, cmp.mwu.p,
                 na < 5 || nb < 5 ? "; fewer than 5 runs a side can never reach p < 0.01" : "");
        row_set(row, "inconclusive", NULL, reason);
    } else {
        snprintf(reason, sizeof reason, "%s %s (95%% interval %s to %s), within +%g%%", r->figure, ch, lo, hi,
                 thr * 100);
        row_set(row, "passed", NULL, reason);
    }
    return 0;
}

/* Static limits: the current side's value (median, or the majority for true/false) against the bound. */
static void check_limit(struct ctx *c, json_t *row, const struct prof_check_rule *r, const struct check_figure *f,
                        size_t na, size_t nb)
{
    char reason[512];
    double vb = na ? prof_fit_median_inplace(c->a, na) : NAN, vc = prof_fit_median_inplace(c->b, nb);
    int is_bool = f->type == F_BOOL;

    if (is_bool) {
        /* The median of 0/1 values is the majority; a tie (even count) leans to true, the alarm. */
        vc = vc >= 0.5;
        vb = na ? vb >= 0.5 : NAN;
        json_object_set_new(row, "base", na ? json_boolean(vb) : json_null());
        json_object_set_new(row, "current", json_boolean(vc));
    } else {
        json_object_set_new(row, "base", num_or_null(vb));
        json_object_set_new(row, "current", json_real(vc));
    }
    double want = is_bool ? r->equals_bool : r->threshold;
    int ok_c, ok_b;
    switch (r->op) {
    case PROF_CHECK_LE:
        ok_c = vc <= want, ok_b = vb <= want;
        break;
    case PROF_CHECK_GE:
        ok_c = vc >= want, ok_b = vb >= want;
        break;
    default:
        ok_c = vc == want, ok_b = vb == want;
        break;
    }
    char rt[96], cv[64];
    rule_text(r, rt, sizeof rt);
    if (is_bool)
        snprintf(cv, sizeof cv, "%s", vc ? "true" : "false");
    else
        snprintf(cv, sizeof cv, "%.4g", vc);
    if (!ok_c) {
        snprintf(reason, sizeof reason, "%s is %s; the limit: %s%s", r->figure, cv, rt,
                 na && !ok_b ? " (the base broke it too)" : "");
        row_set(row, "regressed", NULL, reason);
    } else if (na && !ok_b) {
        snprintf(reason, sizeof reason, "%s is %s, within the limit (%s) the base broke", r->figure, cv, rt);
        row_set(row, "improved", NULL, reason);
    } else {
        snprintf(reason, sizeof reason, "%s is %s, within the limit (%s)", r->figure, cv, rt);
        row_set(row, "passed", NULL, reason);
    }
}

/* ---- verdicts ---- */

struct verdict {
    const char *model;
    long workers;
    const json_t *rec;  /* the recommendation of a report that gave it */
    size_t votes, n;    /* how many of the side's n verdicts name its model */
};

static const json_t *rec_of(const struct prof_check_side *sd, size_t i, const char *stage)
{
    const json_t *rec = json_object_get(stage_of(sd->reports[i], stage), "recommendation");
    return json_is_string(json_object_get(rec, "model")) && json_is_integer(json_object_get(rec, "workers")) ? rec
                                                                                                             : NULL;
}

/*
 * The side's verdict for stage: the model most of its reports give (the first report's on a tie of
 * votes) and the median of those reports' workers. Counts of an I/O-bound stage vary from run to
 * run (67, 70, 72 threads) where the model does not: the runs agree on the model. n = 0 when no
 * report has a verdict.
 */
static struct verdict side_verdict(const struct prof_check_side *sd, const char *stage, double *scratch)
{
    struct verdict best = {0};
    for (size_t i = 0; i < sd->n; i++) {
        const json_t *rec = rec_of(sd, i, stage);
        if (!rec)
            continue;
        best.n++;
        const char *m = json_string_value(json_object_get(rec, "model"));
        size_t votes = 0;
        for (size_t k = 0; k < sd->n; k++) {
            const json_t *o = rec_of(sd, k, stage);
            votes += o && strcmp(json_string_value(json_object_get(o, "model")), m) == 0;
        }
        if (votes > best.votes) {
            best.model = m;
            best.votes = votes;
        }
    }
    if (!best.n)
        return best;
    size_t nw = 0;
    for (size_t i = 0; i < sd->n; i++) {
        const json_t *rec = rec_of(sd, i, stage);
        if (rec && strcmp(json_string_value(json_object_get(rec, "model")), best.model) == 0)
            scratch[nw++] = (double)json_integer_value(json_object_get(rec, "workers"));
    }
    best.workers = lround(prof_fit_median_inplace(scratch, nw));
    /* The report whose count is nearest the median speaks for the side (its candidates, its curve). */
    long gap = -1;
    for (size_t i = 0; i < sd->n; i++) {
        const json_t *rec = rec_of(sd, i, stage);
        if (!rec || strcmp(json_string_value(json_object_get(rec, "model")), best.model) != 0)
            continue;
        long d = labs((long)json_integer_value(json_object_get(rec, "workers")) - best.workers);
        if (gap < 0 || d < gap) {
            gap = d;
            best.rec = rec;
        }
    }
    return best;
}

/* The speedup rec predicts for (model, workers): on its scaling curve when that is the model's
 * (between two points, linear in log2 of the count; NAN past the last), else its candidate of that
 * model at that count; NAN when rec says nothing of it. */
static double predicted_for(const json_t *rec, const char *model, long workers)
{
    const json_t *sc = json_object_get(rec, "scaling");
    const char *sm = json_string_value(json_object_get(sc, "model"));
    if (sm && strcmp(sm, model) == 0) {
        const json_t *pts = json_object_get(sc, "points");
        for (size_t i = 0; i < json_array_size(pts); i++) {
            const json_t *p = json_array_get(pts, i);
            long w = (long)json_integer_value(json_object_get(p, "workers"));
            double v = json_number_value(json_object_get(p, "predicted_speedup"));
            if (w == workers)
                return v;
            if (w > workers && i > 0) {
                const json_t *q = json_array_get(pts, i - 1);
                long w0 = (long)json_integer_value(json_object_get(q, "workers"));
                double v0 = json_number_value(json_object_get(q, "predicted_speedup"));
                if (w0 < 1 || w0 >= workers)
                    break;
                double t = (log2((double)workers) - log2((double)w0)) / (log2((double)w) - log2((double)w0));
                return v0 + t * (v - v0);
            }
        }
    }
    size_t i;
    json_t *cnd;
    json_array_foreach(json_object_get(rec, "candidates"), i, cnd) {
        const char *m = json_string_value(json_object_get(cnd, "model"));
        if (m && strcmp(m, model) == 0 && json_integer_value(json_object_get(cnd, "workers")) == workers)
            return json_number_value(json_object_get(cnd, "predicted_speedup"));
    }
    return NAN;
}

/* Whether rec, which chose its own verdict, predicts the other one within the advice's tie margin. */
static int ties_with(const json_t *rec, const struct verdict *other)
{
    double mine = json_number_value(json_object_get(rec, "predicted_speedup"));
    double theirs = predicted_for(rec, other->model, other->workers);
    return isfinite(theirs) && mine > 0 && theirs * TIE_WITHIN >= mine;
}

static void check_verdict(struct ctx *c, json_t *row, const char *stage, const struct prof_check_rule *r)
{
    char reason[512], vb[64], vc[64];
    struct verdict b = side_verdict(c->base, stage, c->a), k = side_verdict(c->cur, stage, c->b);

    json_object_set_new(row, "samples", json_pack("[I,I]", (json_int_t)b.n, (json_int_t)k.n));
    if (!b.n || !k.n) {
        snprintf(reason, sizeof reason, "no recommendation for stage in the %s reports",
                 !b.n && !k.n ? "base or current" : !b.n ? "base" : "current");
        row_set(row, "unmeasured", NULL, reason);
        return;
    }
    snprintf(vb, sizeof vb, "%s x%ld", b.model, b.workers);
    snprintf(vc, sizeof vc, "%s x%ld", k.model, k.workers);
    json_object_set_new(row, "base", json_string(vb));
    json_object_set_new(row, "current", json_string(vc));
    int moved = strcmp(b.model, k.model) != 0 || labs(b.workers - k.workers) > r->workers_step;
    if (!moved) {
        if (strcmp(vb, vc) == 0)
            snprintf(reason, sizeof reason, "the verdict stayed %s", vb);
        else
            snprintf(reason, sizeof reason, "the verdict moved from %s to %s, within %d worker%s", vb, vc,
                     r->workers_step, r->workers_step == 1 ? "" : "s");
        row_set(row, "passed", NULL, reason);
        return;
    }
    /* A side whose runs do not agree on a verdict is no yardstick: half or fewer of them say it. */
    const struct verdict *weak = b.votes * 2 <= b.n ? &b : k.votes * 2 <= k.n ? &k : NULL;
    if (weak) {
        snprintf(reason, sizeof reason, "the verdict went from %s to %s, but only %zu of the %s side's %zu runs "
                 "agree on %s", vb, vc, weak->votes, weak == &b ? "base" : "current", weak->n, weak->model);
        row_set(row, "inconclusive", "verdict not stable", reason);
        return;
    }
    if (ties_with(k.rec, &b) || ties_with(b.rec, &k)) {
        snprintf(reason, sizeof reason, "the verdict went from %s to %s, a tie: one side predicts the other's "
                 "verdict within 10%% of its own", vb, vc);
        row_set(row, "passed", "a tie", reason);
        return;
    }
    snprintf(reason, sizeof reason, "the verdict changed from %s to %s", vb, vc);
    row_set(row, "regressed", NULL, reason);
}

/* One check of stage under rule r: the row, appended to rows. */
static int check_one(struct ctx *c, json_t *rows, const char *stage, const struct prof_check_rule *r,
                     int in_base, int in_cur)
{
    const struct check_figure *f = check_figure_find(r->figure);
    size_t na = in_base ? side_values(c->base, stage, f, c->a) : 0;
    size_t nb = in_cur ? side_values(c->cur, stage, f, c->b) : 0;
    json_t *row = row_new(stage, r, na, nb);
    char reason[512];
    int err = 0;

    if (!row)
        return PROF_ENOMEM;
    if (!in_base || !in_cur) {
        snprintf(reason, sizeof reason, "the stage is only in the %s reports", in_base ? "base" : "current");
        row_set(row, "unmeasured", in_base ? "stage gone" : "new stage", reason);
    } else if (r->kind == PROF_CHECK_VERDICT) {
        check_verdict(c, row, stage, r);
    } else if (nb == 0 || (na == 0 && r->kind != PROF_CHECK_LIMIT)) {
        snprintf(reason, sizeof reason, "%s was not measured in the %s reports%s", r->figure,
                 !na && !nb ? "base or current" : !na ? "base" : "current",
                 f->measured ? " (the shim was not preloaded, or the figure's source failed)" : "");
        row_set(row, "unmeasured", NULL, reason);
    } else if (r->kind == PROF_CHECK_LIMIT) {
        check_limit(c, row, r, f, na, nb);
    } else {
        err = check_relative(c, row, stage, r, f, na, nb);
    }
    if (err < 0 || json_array_append_new(rows, row) < 0)
        return err < 0 ? err : PROF_ENOMEM;
    return 0;
}

/* ---- stages ---- */

static int ignored(const struct prof_check_rules *rs, const char *stage)
{
    for (size_t i = 0; i < rs->nignore; i++)
        if (fnmatch(rs->ignore[i], stage, 0) == 0)
            return 1;
    return 0;
}

/* The stage names of both sides, each once: overall, then the stages in the order the base
 * reports give them, then the current side's new ones. */
static json_t *stage_names(const struct prof_check_side *base, const struct prof_check_side *cur)
{
    json_t *names = json_array(), *seen = json_object();
    const struct prof_check_side *sides[] = {base, cur};

    if (!names || !seen)
        goto fail;
    json_array_append_new(names, json_string("overall"));
    json_object_set_new(seen, "overall", json_true());
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sides[s]->n; i++) {
            size_t k;
            json_t *st;
            json_array_foreach(json_object_get(sides[s]->reports[i], "stages"), k, st) {
                const char *n = json_string_value(json_object_get(st, "name"));
                if (n && !json_object_get(seen, n)) {
                    json_object_set_new(seen, n, json_true());
                    json_array_append_new(names, json_string(n));
                }
            }
        }
    }
    json_decref(seen);
    return names;
fail:
    json_decref(names);
    json_decref(seen);
    return NULL;
}

static int side_has_stage(const struct prof_check_side *sd, const char *stage)
{
    for (size_t i = 0; i < sd->n; i++)
        if (stage_of(sd->reports[i], stage))
            return 1;
    return 0;
}

/* ---- machines ---- */

static json_t *fingerprint(const json_t *report)
{
    const json_t *m = json_object_get(report, "machine");
    const char *cpu = json_string_value(json_object_get(m, "cpu_model"));
    const char *kernel = json_string_value(json_object_get(m, "kernel"));
    const json_t *pmu = json_object_get(m, "pmu");
    const char *ver = json_string_value(json_object_get(report, "poolprof_version"));
    return json_pack("{s:o, s:I, s:o, s:o, s:o}", "cpu_model", cpu ? json_string(cpu) : json_null(), "usable_cpus",
                     (json_int_t)json_integer_value(json_object_get(m, "usable_cpus")), "kernel",
                     kernel ? json_string(kernel) : json_null(), "pmu",
                     json_is_boolean(pmu) ? json_boolean(json_is_true(pmu)) : json_null(), "poolprof_version",
                     ver ? json_string(ver) : json_null());
}

/* The first field in which two fingerprints differ (an unknown field differs from everything), or NULL. */
static const char *fingerprint_differs(const json_t *x, const json_t *y)
{
    static const char *const fields[] = {"cpu_model", "usable_cpus", "kernel", "pmu", "poolprof_version"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const json_t *a = json_object_get(x, fields[i]), *b = json_object_get(y, fields[i]);
        if (json_is_null(a) || json_is_null(b) || !json_equal(a, b))
            return fields[i];
    }
    return NULL;
}

static json_t *side_json(const struct prof_check_side *sd, json_t *fp)
{
    json_t *paths = json_array();
    for (size_t i = 0; sd->paths && i < sd->n; i++)
        json_array_append_new(paths, json_string(sd->paths[i]));
    return json_pack("{s:s, s:I, s:o, s:o}", "label", sd->label ? sd->label : "", "samples", (json_int_t)sd->n,
                     "reports", paths, "machine", fp);
}

/* ---- the whole ---- */

/* Counts, result and exit status from the rows. */
static void conclude(json_t *doc)
{
    static const char *const results[] = {"regressed", "improved", "inconclusive", "unmeasured", "passed"};
    json_int_t count[5] = {0};
    size_t i;
    json_t *row;

    json_array_foreach(json_object_get(doc, "checks"), i, row) {
        const char *res = json_string_value(json_object_get(row, "result"));
        for (size_t k = 0; res && k < 5; k++)
            count[k] += strcmp(res, results[k]) == 0;
    }
    json_t *counts = json_object();
    for (size_t k = 0; k < 5; k++)
        json_object_set_new(counts, results[k], json_integer(count[k]));
    json_object_set_new(doc, "counts", counts);
    int strict = json_is_true(json_object_get(doc, "strict"));
    const char *result = count[0] ? "regression" : count[2] ? "inconclusive" : "pass";
    int status = count[0] ? 1 : count[2] && strict ? 4 : 0;
    json_object_set_new(doc, "result", json_string(result));
    json_object_set_new(doc, "exit_status", json_integer(status));
}

int prof_check_compare(const struct prof_check_rules *rs, const struct prof_check_side *base,
                       const struct prof_check_side *cur, const struct prof_check_opts *o, json_t **doc)
{
    struct ctx c = {.base = base, .cur = cur, .o = o};
    json_t *names = NULL, *rows = NULL, *ign = NULL, *warnings = NULL, *d = NULL;
    int err = PROF_ENOMEM;

    *doc = NULL;
    if (!base || !cur || !base->n || !cur->n)
        return PROF_EINVAL;
    c.a = calloc(base->n, sizeof *c.a);
    c.b = calloc(cur->n, sizeof *c.b);
    names = stage_names(base, cur);
    rows = json_array();
    ign = json_array();
    warnings = json_array();
    if (!c.a || !c.b || !names || !rows || !ign || !warnings)
        goto done;

    /* The machines: every report of each side against the first of the base. */
    json_t *fb = fingerprint(base->reports[0]), *fc = fingerprint(cur->reports[0]);
    const struct prof_check_side *sides[] = {base, cur};
    for (size_t s = 0; s < 2 && !c.machines_differ; s++) {
        for (size_t i = 0; i < sides[s]->n && !c.machines_differ; i++) {
            json_t *fp = fingerprint(sides[s]->reports[i]);
            const char *field = fingerprint_differs(fb, fp);
            if (field) {
                char w[256];
                c.machines_differ = 1;
                snprintf(w, sizeof w, "the reports come from different machines (%s%s): time figures were not "
                         "compared", field, json_is_null(json_object_get(fp, field)) ||
                         json_is_null(json_object_get(fb, field)) ? " not recorded" : " differs");
                json_array_append_new(warnings, json_string(w));
            }
            json_decref(fp);
        }
    }
    if (base->n < 2 || cur->n < 2) {
        char w[256];
        snprintf(w, sizeof w, "%zu and %zu runs: with one run on a side, time figures are held by their ratio "
                 "alone, with no test of the noise (single sample)", base->n, cur->n);
        json_array_append_new(warnings, json_string(w));
    } else if (base->n < 5 || cur->n < 5) {
        char w[256];
        snprintf(w, sizeof w, "%zu and %zu runs: below 5 a side the U test cannot reach p < 0.01, so no time "
                 "figure can be found regressed", base->n, cur->n);
        json_array_append_new(warnings, json_string(w));
    }

    size_t i;
    json_t *nm;
    json_array_foreach(names, i, nm) {
        const char *stage = json_string_value(nm);
        if (ignored(rs, stage)) {
            json_array_append_new(ign, json_string(stage));
            continue;
        }
        int in_b = side_has_stage(base, stage), in_c = side_has_stage(cur, stage);
        /* Each figure once: the rule that decides it here, the first time a rule names it. */
        for (size_t k = 0; k < rs->n; k++) {
            const struct prof_check_rule *r = prof_check_rule_for(rs, stage, rs->r[k].figure);
            int first = 1;
            for (size_t j = 0; j < k; j++)
                first &= strcmp(rs->r[j].figure, rs->r[k].figure) != 0;
            if (!r || !first || r->off)
                continue;
            if ((err = check_one(&c, rows, stage, r, in_b, in_c)) < 0) {
                json_decref(fb);
                json_decref(fc);
                goto done;
            }
        }
    }

    d = json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:o, s:o, s:b, s:o, s:{s:i, s:i}, s:{}, s:O, s:O, s:O}",
                  "schema", PROF_CHECK_SCHEMA, "poolprof_version", POOLPROF_VERSION, "mode", o->mode, "result",
                  "pass", "exit_status", (json_int_t)0, "strict", o->strict, "base", side_json(base, fb), "current",
                  side_json(cur, fc), "machine_match", !c.machines_differ, "rounds",
                  o->rounds ? json_integer(o->rounds) : json_null(), "confirm", "asked", o->confirm, "rounds_added",
                  0, "counts", "checks", rows, "ignored_stages", ign, "warnings", warnings);
    if (!d)
        goto done;
    conclude(d);
    *doc = d;
    err = 0;
done:
    free(c.a);
    free(c.b);
    json_decref(names);
    json_decref(rows);
    json_decref(ign);
    json_decref(warnings);
    return err;
}

size_t prof_check_regressed(const json_t *doc)
{
    size_t i, n = 0;
    json_t *row;
    json_array_foreach(json_object_get(doc, "checks"), i, row)
        n += strcmp(json_string_value(json_object_get(row, "result")) ?: "", "regressed") == 0;
    return n;
}

/* The row of again for the same stage and figure, or NULL. */
static const json_t *same_row(const json_t *again, const json_t *row)
{
    const char *st = json_string_value(json_object_get(row, "stage"));
    const char *fg = json_string_value(json_object_get(row, "figure"));
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(again, "checks"), i, r) {
        if (strcmp(json_string_value(json_object_get(r, "stage")), st) == 0 &&
            strcmp(json_string_value(json_object_get(r, "figure")), fg) == 0)
            return r;
    }
    return NULL;
}

int prof_check_confirm(json_t *doc, const json_t *again, int k, int rounds)
{
    size_t i;
    json_t *row;

    json_array_foreach(json_object_get(doc, "checks"), i, row) {
        if (strcmp(json_string_value(json_object_get(row, "result")) ?: "", "regressed") != 0)
            continue;
        const json_t *a = same_row(again, row);
        const char *res = a ? json_string_value(json_object_get(a, "result")) : NULL;
        if (res && strcmp(res, "regressed") == 0)
            continue;
        char note[64], reason[1024];
        snprintf(note, sizeof note, "not confirmed (confirmation %d)", k);
        snprintf(reason, sizeof reason, "%s; confirmation %d did not find it (%s): taken as noise",
                 json_string_value(json_object_get(row, "reason")), k,
                 a ? json_string_value(json_object_get(a, "reason")) : "the figure was not measured again");
        row_set(row, "passed", note, reason);
    }
    json_t *conf = json_object_get(doc, "confirm");
    json_object_set_new(conf, "rounds_added",
                        json_integer(json_integer_value(json_object_get(conf, "rounds_added")) + rounds));
    conclude(doc);
    return 0;
}
