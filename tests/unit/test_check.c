/* test_check.c: the CI gate's rules and comparisons on synthetic reports whose answer is known: a 30% slower side, equal sides, a changed verdict, a tie, broken limits, a stage on one side. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/check.h"
#include "core/stats.h"
#include "prof.h"

/* ---- synthetic reports ---- */

struct fig {
    double wall, cpu, lock_frac;
    long long ipc_bytes;
    const char *model;
    int workers;
    double speedup;        /* the verdict's predicted speedup */
    const char *alt_model; /* a candidate beside it, and its speedup */
    double alt_speedup;
    int leak;
    const char *cpu_model;
};

static json_t *stage_json(const char *name, const struct fig *f)
{
    json_t *cands = json_pack("[{s:s, s:i, s:f}]", "model", f->model, "workers", f->workers, "predicted_speedup",
                              f->speedup);
    if (f->alt_model)
        json_array_append_new(cands, json_pack("{s:s, s:i, s:f}", "model", f->alt_model, "workers", 2,
                                               "predicted_speedup", f->alt_speedup));
    return json_pack("{s:s, s:f, s:f, s:i, s:i, s:{s:f, s:f, s:b}, s:{s:I, s:I, s:b}, s:{s:I, s:b},"
                     " s:{s:s, s:i, s:f, s:o, s:{s:s, s:[]}}}",
                     "name", name, "wall_seconds", f->wall, "cpu_seconds", f->cpu, "threads", 1, "processes", 1,
                     "lock", "wait_seconds", f->lock_frac * f->wall, "wait_fraction", f->lock_frac, "measured", 1,
                     "ipc", "bytes", (json_int_t)f->ipc_bytes, "messages", (json_int_t)0, "measured", 1,
                     "rss", "peak_bytes", (json_int_t)(20 << 20), "leak_suspected", f->leak,
                     "recommendation", "model", f->model ? f->model : "threads", "workers", f->workers ? f->workers : 1,
                     "predicted_speedup", f->speedup > 0 ? f->speedup : 1.0, "candidates", cands,
                     "scaling", "model", "none", "points");
}

static json_t *report(const struct fig *f, const char *extra_stage)
{
    json_t *stages = json_array();
    if (extra_stage)
        json_array_append_new(stages, stage_json(extra_stage, f));
    return json_pack("{s:s, s:s, s:{s:s, s:i, s:s, s:b}, s:o, s:o}", "schema", "poolprof.report/1",
                     "poolprof_version", "0.1.0", "machine", "cpu_model", f->cpu_model ? f->cpu_model : "Test CPU",
                     "usable_cpus", 2, "kernel", "6.1.0", "pmu", 0, "overall", stage_json("overall", f), "stages",
                     stages);
}

/* n reports of a figure set, wall and CPU scaled by factor and jittered by +-noise (seeded). */
static void side_of(json_t **docs, size_t n, struct fig f, double factor, double noise, uint64_t *rng,
                    const char *stage)
{
    for (size_t i = 0; i < n; i++) {
        double u = (double)(prof_stats_next(rng) >> 11) / 9007199254740992.0;
        struct fig g = f;
        g.wall = f.wall * factor * (1 + noise * (2 * u - 1));
        g.cpu = f.cpu * factor * (1 + noise * (2 * u - 1));
        docs[i] = report(&g, stage);
    }
}

static json_t *compare_sides(const struct prof_check_rules *rs, json_t **a, size_t na, json_t **b, size_t nb,
                             int strict)
{
    struct prof_check_side base = {.reports = a, .n = na, .label = "A"}, cur = {.reports = b, .n = nb, .label = "B"};
    struct prof_check_opts o = {.mode = "saved", .strict = strict, .seed = 7};
    json_t *doc = NULL;
    cr_assert_eq(prof_check_compare(rs, &base, &cur, &o, &doc), 0);
    return doc;
}

static void free_docs(json_t **d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(d[i]);
}

/* The row of stage/figure, or NULL. */
static const json_t *row(const json_t *doc, const char *stage, const char *figure)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "checks"), i, r) {
        if (strcmp(json_string_value(json_object_get(r, "stage")), stage) == 0 &&
            strcmp(json_string_value(json_object_get(r, "figure")), figure) == 0)
            return r;
    }
    return NULL;
}

static const char *result_of(const json_t *doc, const char *stage, const char *figure)
{
    const json_t *r = row(doc, stage, figure);
    cr_assert_not_null(r, "no check of %s %s", stage, figure);
    return json_string_value(json_object_get(r, "result"));
}

static const struct fig plain = {.wall = 2.0, .cpu = 1.8, .model = "processes", .workers = 2, .speedup = 1.9};

/* ---- timing ---- */

Test(check, thirty_percent_slower_regresses_and_names_the_figure)
{
    struct prof_check_rules rs;
    json_t *a[5], *b[5];
    uint64_t rng = 1;
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    side_of(a, 5, plain, 1.0, 0.02, &rng, NULL);
    side_of(b, 5, plain, 1.3, 0.02, &rng, NULL);
    json_t *doc = compare_sides(&rs, a, 5, b, 5, 0);
    cr_assert_str_eq(result_of(doc, "overall", "wall_seconds"), "regressed");
    const json_t *r = row(doc, "overall", "wall_seconds");
    cr_assert(strstr(json_string_value(json_object_get(r, "reason")), "wall_seconds rose"));
    double lo = json_number_value(json_array_get(json_object_get(r, "interval"), 0));
    cr_assert_gt(lo, 1.10);
    cr_assert_lt(json_number_value(json_object_get(r, "p")), 0.01);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "result")), "regression");
    cr_assert_eq(json_integer_value(json_object_get(doc, "exit_status")), 1);
    /* the other way round: improvements are listed, never failures */
    json_t *back = compare_sides(&rs, b, 5, a, 5, 0);
    cr_assert_str_eq(result_of(back, "overall", "wall_seconds"), "improved");
    cr_assert_eq(json_integer_value(json_object_get(back, "exit_status")), 0);
    json_decref(doc);
    json_decref(back);
    free_docs(a, 5);
    free_docs(b, 5);
    prof_check_rules_free(&rs);
}

/* The gate's two promises, as the issue states them: equal sides pass in >= 99% of 1000 seeded
 * trials, a true 20% shift with 5 runs a side fails in >= 95%. Noise +-3% (uniform). */
Test(check, equal_sides_pass_and_a_20_percent_shift_fails_over_1000_trials)
{
    struct prof_check_rules rs;
    json_t *a[5], *b[5];
    uint64_t rng = 42;
    int passed = 0, caught = 0;
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    for (int t = 0; t < 1000; t++) {
        side_of(a, 5, plain, 1.0, 0.03, &rng, NULL);
        side_of(b, 5, plain, 1.0, 0.03, &rng, NULL);
        json_t *doc = compare_sides(&rs, a, 5, b, 5, 0);
        passed += json_integer_value(json_object_get(doc, "exit_status")) == 0;
        json_decref(doc);
        free_docs(b, 5);
        side_of(b, 5, plain, 1.2, 0.03, &rng, NULL);
        doc = compare_sides(&rs, a, 5, b, 5, 0);
        caught += strcmp(result_of(doc, "overall", "wall_seconds"), "regressed") == 0;
        json_decref(doc);
        free_docs(a, 5);
        free_docs(b, 5);
    }
    cr_log_info("equal sides passed %d of 1000; a 20%% shift was caught %d of 1000", passed, caught);
    cr_assert_geq(passed, 990, "equal sides passed %d of 1000", passed);
    cr_assert_geq(caught, 950, "a 20%% shift was caught %d of 1000", caught);
    prof_check_rules_free(&rs);
}

Test(check, one_run_a_side_is_the_ratio_alone)
{
    struct prof_check_rules rs;
    struct fig slow = plain;
    slow.wall *= 1.25;
    slow.cpu *= 1.25;
    json_t *a = report(&plain, NULL), *b = report(&slow, NULL);
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    json_t *doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    const json_t *r = row(doc, "overall", "wall_seconds");
    cr_assert_str_eq(json_string_value(json_object_get(r, "result")), "regressed");
    cr_assert_str_eq(json_string_value(json_object_get(r, "note")), "single sample");
    cr_assert(json_is_null(json_object_get(r, "p")));
    cr_assert_float_eq(json_number_value(json_object_get(r, "change")), 1.25, 1e-9);
    json_decref(doc);
    json_decref(a);
    json_decref(b);
    prof_check_rules_free(&rs);
}

Test(check, other_machines_are_inconclusive_not_compared)
{
    struct prof_check_rules rs;
    struct fig other = plain;
    json_t *a[5], *b[5];
    uint64_t rng = 3;
    other.cpu_model = "Another CPU";
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    side_of(a, 5, plain, 1.0, 0.02, &rng, NULL);
    side_of(b, 5, other, 1.5, 0.02, &rng, NULL);
    json_t *doc = compare_sides(&rs, a, 5, b, 5, 0);
    cr_assert_str_eq(result_of(doc, "overall", "wall_seconds"), "inconclusive");
    cr_assert(json_is_false(json_object_get(doc, "machine_match")));
    cr_assert_str_eq(json_string_value(json_object_get(doc, "result")), "inconclusive");
    cr_assert_eq(json_integer_value(json_object_get(doc, "exit_status")), 0);
    json_decref(doc);
    doc = compare_sides(&rs, a, 5, b, 5, 1); /* --strict */
    cr_assert_eq(json_integer_value(json_object_get(doc, "exit_status")), 4);
    json_decref(doc);
    free_docs(a, 5);
    free_docs(b, 5);
    prof_check_rules_free(&rs);
}

/* ---- counts, limits ---- */

Test(check, deterministic_figures_by_ratio_with_a_floor)
{
    struct prof_check_rules rs;
    struct fig f = plain, g = plain;
    f.ipc_bytes = 10 << 20;
    g.ipc_bytes = 15 << 20;
    json_t *a = report(&f, NULL), *b = report(&g, NULL);
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    json_t *doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "ipc.bytes"), "regressed");
    json_decref(doc);
    json_decref(a);
    json_decref(b);
    /* 1 KiB to 3 KiB is below the 64 KiB floor: no alarm for a tripled nothing */
    f.ipc_bytes = 1024;
    g.ipc_bytes = 3072;
    a = report(&f, NULL);
    b = report(&g, NULL);
    doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "ipc.bytes"), "passed");
    json_decref(doc);
    json_decref(a);
    json_decref(b);
    prof_check_rules_free(&rs);
}

Test(check, static_limits_from_the_file)
{
    struct prof_check_rules rs;
    char why[512];
    json_t *cfg = json_loads("{\"rules\": [{\"stage\": \"overall\", \"figure\": \"lock.wait_fraction\", \"max\": 0.2},"
                             " {\"figure\": \"rss.leak_suspected\", \"equals\": false}]}", 0, NULL);
    struct fig f = plain, g = plain;
    f.lock_frac = 0.1;
    g.lock_frac = 0.31;
    g.leak = 1;
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    cr_assert_eq(prof_check_rules_add_config(&rs, cfg, why, sizeof why), 0, "%s", why);
    json_t *a = report(&f, NULL), *b = report(&g, NULL);
    json_t *doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "lock.wait_fraction"), "regressed");
    cr_assert_str_eq(result_of(doc, "overall", "rss.leak_suspected"), "regressed");
    cr_assert(strstr(json_string_value(json_object_get(row(doc, "overall", "lock.wait_fraction"), "reason")),
                     "at most 0.2"));
    json_decref(doc);
    /* the other way round: the base broke them, the current does not */
    doc = compare_sides(&rs, &b, 1, &a, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "lock.wait_fraction"), "improved");
    cr_assert_eq(json_integer_value(json_object_get(doc, "exit_status")), 0);
    json_decref(doc);
    json_decref(a);
    json_decref(b);
    json_decref(cfg);
    prof_check_rules_free(&rs);
}

/* ---- verdicts ---- */

Test(check, a_changed_verdict_fails_naming_both)
{
    struct prof_check_rules rs;
    struct fig io = {.wall = 2, .cpu = 0.2, .model = "threads", .workers = 8, .speedup = 6.0};
    struct fig gil = {.wall = 2, .cpu = 1.9, .model = "processes", .workers = 2, .speedup = 1.9};
    json_t *a = report(&io, NULL), *b = report(&gil, NULL);
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    json_t *doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    const json_t *r = row(doc, "overall", "recommendation");
    cr_assert_str_eq(json_string_value(json_object_get(r, "result")), "regressed");
    const char *why = json_string_value(json_object_get(r, "reason"));
    cr_assert(strstr(why, "threads x8") && strstr(why, "processes x2"), "%s", why);
    json_decref(doc);
    json_decref(a);
    json_decref(b);
    prof_check_rules_free(&rs);
}

Test(check, a_tie_and_a_small_workers_step_pass)
{
    struct prof_check_rules rs;
    /* current says processes x2 at 1.9 but predicts threads x2 at 1.8: within 10%, a tie */
    struct fig old = {.wall = 2, .cpu = 1, .model = "threads", .workers = 2, .speedup = 1.8};
    struct fig now = {.wall = 2, .cpu = 1, .model = "processes", .workers = 2, .speedup = 1.9,
                      .alt_model = "threads", .alt_speedup = 1.8};
    json_t *a = report(&old, NULL), *b = report(&now, NULL);
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    json_t *doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "recommendation"), "passed");
    cr_assert_str_eq(json_string_value(json_object_get(row(doc, "overall", "recommendation"), "note")), "a tie");
    json_decref(doc);
    json_decref(b);
    /* the same model, one worker more: within the default step */
    now = old;
    now.workers = 3;
    b = report(&now, NULL);
    doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "recommendation"), "passed");
    json_decref(doc);
    json_decref(b);
    now.workers = 5;
    b = report(&now, NULL);
    doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "recommendation"), "regressed");
    json_decref(doc);
    json_decref(a);
    json_decref(b);
    prof_check_rules_free(&rs);
}

Test(check, a_verdict_its_own_runs_disagree_on_is_inconclusive)
{
    struct prof_check_rules rs;
    struct fig t = {.wall = 2, .cpu = 1, .model = "threads", .workers = 4, .speedup = 3};
    struct fig p = {.wall = 2, .cpu = 1, .model = "processes", .workers = 2, .speedup = 1.9};
    json_t *a[2] = {report(&t, NULL), report(&t, NULL)}, *b[2] = {report(&p, NULL), report(&t, NULL)};
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    /* current: 1 of 2 says processes, its mode by order; half is no majority */
    json_t *doc = compare_sides(&rs, a, 2, b, 2, 0);
    cr_assert_str_eq(result_of(doc, "overall", "recommendation"), "inconclusive");
    json_decref(doc);
    free_docs(a, 2);
    free_docs(b, 2);
    prof_check_rules_free(&rs);
}

/* ---- rules ---- */

Test(check, the_most_specific_rule_wins)
{
    struct prof_check_rules rs;
    char why[512];
    json_t *cfg = json_loads("{\"rules\": ["
                             "{\"stage\": \"load\", \"figure\": \"wall_seconds\", \"max_increase\": 0.5},"
                             "{\"stage\": \"lo*\", \"figure\": \"wall_seconds\", \"max_increase\": 0.3},"
                             "{\"stage\": \"*\", \"figure\": \"wall_seconds\", \"max_increase\": 0.2},"
                             "{\"stage\": \"l*\", \"figure\": \"wall_seconds\", \"max_increase\": 0.25}]}",
                             0, NULL);
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    cr_assert_eq(prof_check_rules_add_config(&rs, cfg, why, sizeof why), 0, "%s", why);
    cr_assert_float_eq(prof_check_rule_for(&rs, "load", "wall_seconds")->threshold, 0.5, 1e-12);
    cr_assert_float_eq(prof_check_rule_for(&rs, "loader", "wall_seconds")->threshold, 0.3, 1e-12);
    cr_assert_float_eq(prof_check_rule_for(&rs, "last", "wall_seconds")->threshold, 0.25, 1e-12);
    cr_assert_float_eq(prof_check_rule_for(&rs, "overall", "wall_seconds")->threshold, 0.2, 1e-12);
    /* the file's rule for all stages beats the default; the default holds where the file says nothing */
    cr_assert_float_eq(prof_check_rule_for(&rs, "overall", "cpu_seconds")->threshold, 0.05, 1e-12);
    /* a flag beats the file's "*" rule, not its named ones */
    cr_assert_eq(prof_check_rules_add_flag(&rs, "wall_seconds=0.4", why, sizeof why), 0);
    cr_assert_float_eq(prof_check_rule_for(&rs, "overall", "wall_seconds")->threshold, 0.4, 1e-12);
    cr_assert_float_eq(prof_check_rule_for(&rs, "load", "wall_seconds")->threshold, 0.5, 1e-12);
    json_decref(cfg);
    prof_check_rules_free(&rs);
}

Test(check, a_bad_thresholds_file_says_where)
{
    static const struct {
        const char *cfg, *want;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{\"rule\": []}", "unknown key 'rule'"},
        {"{\"schema\": \"poolprof.check-config/9\"}", "schema"},
        {"{\"rules\": [{\"figure\": \"wal_seconds\", \"max\": 1}]}", "rules[0].figure: 'wal_seconds'"},
        {"{\"rules\": [{\"figure\": \"wall_seconds\", \"max\": 1, \"min\": 0}]}", "rules[0]: wants exactly one"},
        {"{\"rules\": [{\"figure\": \"wall_seconds\"}]}", "rules[0]: wants exactly one"},
        {"{\"rules\": [{\"figure\": \"wall_seconds\", \"max_increase\": -1}]}", "rules[0].max_increase"},
        {"{\"rules\": [{\"figure\": \"rss.leak_suspected\", \"max\": 1}]}", "use equals"},
        {"{\"rules\": [{\"figure\": \"wall_seconds\", \"workers_step\": 1}]}", "only for the figure"},
        {"{\"rules\": [{\"figure\": \"recommendation\", \"max\": 1}]}", "takes workers_step or off"},
        {"{\"rules\": [{\"figure\": \"cpu_seconds\", \"maximum\": 1}]}", "unknown key 'maximum'"},
        {"{\"ignore\": [\"\"]}", "ignore[0]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct prof_check_rules rs;
        char why[1400];
        json_t *cfg = json_loads(bad[i].cfg, 0, NULL);
        cr_assert_not_null(cfg);
        cr_assert_eq(prof_check_rules_default(&rs), 0);
        cr_assert_lt(prof_check_rules_add_config(&rs, cfg, why, sizeof why), 0, "%s accepted", bad[i].cfg);
        cr_assert(strstr(why, bad[i].want), "%s: '%s' lacks '%s'", bad[i].cfg, why, bad[i].want);
        json_decref(cfg);
        prof_check_rules_free(&rs);
    }
}

Test(check, stages_on_one_side_ignored_stages_and_off_rules)
{
    struct prof_check_rules rs;
    char why[512];
    json_t *cfg = json_loads("{\"rules\": [{\"stage\": \"overall\", \"figure\": \"cpu_seconds\", \"off\": true}],"
                             " \"ignore\": [\"warm*\"]}", 0, NULL);
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    cr_assert_eq(prof_check_rules_add_config(&rs, cfg, why, sizeof why), 0, "%s", why);
    json_t *a = report(&plain, "parse"), *b = report(&plain, "warmup");
    json_t *doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "parse", "wall_seconds"), "unmeasured");
    cr_assert_null(row(doc, "warmup", "wall_seconds"));
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(doc, "ignored_stages"), 0)), "warmup");
    cr_assert_null(row(doc, "overall", "cpu_seconds"));
    cr_assert_not_null(row(doc, "parse", "cpu_seconds"));
    /* unmeasured warns, it does not fail */
    cr_assert_eq(json_integer_value(json_object_get(doc, "exit_status")), 0);
    json_decref(doc);
    json_decref(a);
    json_decref(b);
    json_decref(cfg);
    prof_check_rules_free(&rs);
}

/* ---- --confirm ---- */

Test(check, an_unconfirmed_regression_passes_a_confirmed_one_fails)
{
    struct prof_check_rules rs;
    json_t *a[5], *b[5], *c[5];
    uint64_t rng = 9;
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    side_of(a, 5, plain, 1.0, 0.02, &rng, NULL);
    side_of(b, 5, plain, 1.3, 0.02, &rng, NULL);
    side_of(c, 5, plain, 1.0, 0.02, &rng, NULL);
    json_t *doc = compare_sides(&rs, a, 5, b, 5, 0);
    cr_assert_gt(prof_check_regressed(doc), 0);
    json_t *again = compare_sides(&rs, a, 5, c, 5, 0); /* the fresh rounds find nothing */
    cr_assert_eq(prof_check_confirm(doc, again, 1, 5), 0);
    cr_assert_str_eq(result_of(doc, "overall", "wall_seconds"), "passed");
    cr_assert_eq(json_integer_value(json_object_get(doc, "exit_status")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "confirm"), "rounds_added")), 5);
    json_decref(doc);
    json_decref(again);
    doc = compare_sides(&rs, a, 5, b, 5, 0);
    again = compare_sides(&rs, a, 5, b, 5, 0); /* found again */
    prof_check_confirm(doc, again, 1, 5);
    cr_assert_str_eq(result_of(doc, "overall", "wall_seconds"), "regressed");
    cr_assert_eq(json_integer_value(json_object_get(doc, "exit_status")), 1);
    json_decref(doc);
    json_decref(again);
    free_docs(a, 5);
    free_docs(b, 5);
    free_docs(c, 5);
    prof_check_rules_free(&rs);
}

/* An I/O-bound stage's count moves run to run on a plateau of its curve: 67 and 109 threads
 * predict the same speedup, read between the curve's points (64 and 128). */
Test(check, counts_on_the_plateau_of_the_curve_tie)
{
    struct prof_check_rules rs;
    struct fig a_f = {.wall = 1, .cpu = 0.05, .model = "threads", .workers = 67, .speedup = 14.33};
    struct fig b_f = a_f;
    b_f.workers = 109;
    json_t *a = report(&a_f, NULL), *b = report(&b_f, NULL);
    json_t *curve = json_pack("{s:s, s:[{s:i, s:f}, {s:i, s:f}, {s:i, s:f}]}", "model", "threads", "points", "workers",
                              32, "predicted_speedup", 7.9, "workers", 64, "predicted_speedup", 14.2, "workers", 128,
                              "predicted_speedup", 14.33);
    json_object_set(json_object_get(json_object_get(b, "overall"), "recommendation"), "scaling", curve);
    cr_assert_eq(prof_check_rules_default(&rs), 0);
    json_t *doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "recommendation"), "passed");
    json_decref(doc);
    /* at 16 threads the curve predicts about 4x: no tie with 14x, a regression */
    json_object_set_new(json_object_get(json_object_get(a, "overall"), "recommendation"), "workers",
                        json_integer(16));
    json_t *p = json_object_get(curve, "points");
    json_array_insert_new(p, 0, json_pack("{s:i, s:f}", "workers", 8, "predicted_speedup", 2.0));
    doc = compare_sides(&rs, &a, 1, &b, 1, 0);
    cr_assert_str_eq(result_of(doc, "overall", "recommendation"), "regressed");
    json_decref(doc);
    json_decref(curve);
    json_decref(a);
    json_decref(b);
    prof_check_rules_free(&rs);
}
