/* test_sweep_unit.c: drives `poolprof sweep`'s results (tools/cmds/sweep_results.c) with synthetic timings and profiled stages: the memory check from the reports' counters. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prof.h"
#include "cmds/sweep.h"

static char *cmd[] = {"prog", "{workers}", NULL};

/* A sweep of 1, 2, 4, 8 workers, one run each, taking the given wall times. */
static void sweep_of(struct sweep *w, const double wall[4])
{
    static double walls[4];
    memset(w, 0, sizeof *w);
    w->cmd = cmd;
    w->repeat = 1;
    w->workers_in_cmd = 1;
    for (int i = 0; i < 4; i++) {
        w->counts[i] = 1 << i;
        walls[i] = wall[i];
    }
    w->ncounts = 4;
    w->wall = walls;
}

/* A report stage as poolprof run writes it: its counters, one per event, by role. */
static json_t *stage_with(double cycles, double instructions, double llc)
{
    json_t *c = json_array();
    json_array_append_new(c, json_pack("{s:s, s:s, s:i, s:n, s:b}", "event", "context-switches", "role",
                                       "context_switches", "value", 120, "per_cpu_second", "scaled", 0));
    if (cycles >= 0)
        json_array_append_new(c, json_pack("{s:s, s:s, s:f, s:n, s:b}", "event", "cycles", "role", "cycles", "value",
                                           cycles, "per_cpu_second", "scaled", 1));
    if (instructions >= 0)
        json_array_append_new(c, json_pack("{s:s, s:s, s:f, s:n, s:b}", "event", "instructions", "role",
                                           "instructions", "value", instructions, "per_cpu_second", "scaled", 1));
    if (llc >= 0)
        json_array_append_new(c, json_pack("{s:s, s:s, s:f, s:n, s:b}", "event", "LLC-load-misses", "role",
                                           "llc_misses", "value", llc, "per_cpu_second", "scaled", 0));
    json_array_append_new(c, json_pack("{s:s, s:n, s:i, s:n, s:b}", "event", "r01c2", "role", "value", 7,
                                       "per_cpu_second", "scaled", 0));
    return json_pack("{s:s, s:o}", "name", "overall", "counters", c);
}

static void profile(struct sweep *w, int workers, json_t *stage)
{
    w->profiled[w->nprofiled++] = (struct profiled){workers, stage};
}

static void unprofile(struct sweep *w)
{
    for (size_t i = 0; i < w->nprofiled; i++)
        json_decref(w->profiled[i].stage);
    w->nprofiled = 0;
}

/* The results' JSON, as --json writes it. */
static json_t *written(const struct sweep *w, const struct results *r)
{
    char path[] = "/tmp/test_sweep_unit.XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(sweep_write_json(w, r, path), 0);
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    unlink(path);
    cr_assert_not_null(doc, "%s", err.text);
    return doc;
}

Test(sweep_unit, counter_figures_from_a_stage)
{
    double ipc, mpki;
    json_t *s = stage_with(2e9, 3.6e9, 4e6);
    cr_assert_eq(sweep_counter_figures(s, &ipc, &mpki), 1);
    cr_assert_float_eq(ipc, 1.8, 1e-12);
    cr_assert_float_eq(mpki, 4e6 / 3.6e9 * 1000, 1e-12);
    json_decref(s);
    /* No LLC event: IPC alone. */
    s = stage_with(2e9, 3.6e9, -1);
    cr_assert_eq(sweep_counter_figures(s, &ipc, &mpki), 1);
    cr_assert_float_eq(mpki, -1, 0);
    json_decref(s);
    /* No PMU: software counters only, nothing made up. */
    s = stage_with(-1, -1, -1);
    cr_assert_eq(sweep_counter_figures(s, &ipc, &mpki), 0);
    cr_assert_float_eq(ipc, 0, 0);
    json_decref(s);
    /* A report from before the counters: no array at all. */
    s = json_pack("{s:s}", "name", "overall");
    cr_assert_eq(sweep_counter_figures(s, &ipc, &mpki), 0);
    json_decref(s);
}

Test(sweep_unit, profiled_counts_with_falling_ipc_make_it_memory_bound)
{
    /* Speedups 1, 1.9, 2.6, 2.8; IPC 1.8 -> 0.7 while LLC misses rise 2 -> 25 per thousand instructions. */
    struct sweep w;
    struct results r;
    sweep_of(&w, (double[]){2.8, 2.8 / 1.9, 2.8 / 2.6, 1.0});
    profile(&w, 1, stage_with(1e9, 1.8e9, 1.8e9 * 2 / 1000));
    profile(&w, 2, stage_with(1e9, 1.6e9, 1.6e9 * 5 / 1000));
    profile(&w, 4, stage_with(1e9, 1.0e9, 1.0e9 * 15 / 1000));
    profile(&w, 8, stage_with(1e9, 0.7e9, 0.7e9 * 25 / 1000));
    cr_assert_eq(sweep_compute(&w, &r), 0);
    cr_log_info("%s", r.membound.reason);
    cr_assert_eq(r.nmem, 4);
    cr_assert_eq(r.membound.judged, 1);
    cr_assert_eq(r.membound.memory_bound, 1);
    cr_assert_eq(r.membound.cap, 4);
    cr_assert(strstr(r.membound.reason, "instructions per cycle fell from 1.80 at 1 worker to 0.70 at 8 (-61%)"), "%s",
              r.membound.reason);
    json_t *doc = written(&w, &r);
    json_t *m = json_object_get(doc, "memory_scaling");
    cr_assert(json_is_object(m));
    cr_assert(json_is_true(json_object_get(m, "memory_bound")));
    cr_assert_eq(json_integer_value(json_object_get(m, "workers_cap")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(m, "reason")), r.membound.reason);
    cr_assert_eq(json_array_size(json_object_get(m, "points")), 4);
    json_t *p8 = json_array_get(json_object_get(m, "points"), 3);
    cr_assert_eq(json_integer_value(json_object_get(p8, "workers")), 8);
    cr_assert_float_eq(json_real_value(json_object_get(p8, "ipc")), 0.7, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(p8, "llc_mpki")), 25.0, 1e-9);
    json_decref(doc);
    unprofile(&w);
}

Test(sweep_unit, without_a_pmu_or_a_second_profiled_count_nothing_is_said)
{
    struct sweep w;
    struct results r;
    sweep_of(&w, (double[]){2.8, 1.5, 1.1, 1.0});
    /* The profile step profiles one count: one point shows no scaling. */
    profile(&w, 1, stage_with(1e9, 1.8e9, 2e6));
    cr_assert_eq(sweep_compute(&w, &r), 0);
    cr_assert_eq(r.membound.judged, 0);
    json_t *doc = written(&w, &r);
    cr_assert(json_is_null(json_object_get(doc, "memory_scaling")));
    json_decref(doc);
    unprofile(&w);
    /* Every count profiled, none with a PMU (this VM): no figures, nothing said. */
    for (int i = 0; i < 4; i++)
        profile(&w, 1 << i, stage_with(-1, -1, -1));
    cr_assert_eq(sweep_compute(&w, &r), 0);
    cr_assert_eq(r.nmem, 0);
    cr_assert_eq(r.membound.judged, 0);
    unprofile(&w);
    /* A profiled count that was not timed has no speedup to judge. */
    profile(&w, 1, stage_with(1e9, 1.8e9, 2e6));
    profile(&w, 16, stage_with(1e9, 0.5e9, 20e6));
    cr_assert_eq(sweep_compute(&w, &r), 0);
    cr_assert_eq(r.nmem, 1);
    cr_assert_eq(r.membound.judged, 0);
    unprofile(&w);
}

Test(sweep_unit, timed_runs_own_counters_make_it_memory_bound)
{
    /* --counters with a PMU: each timed run counted its whole tree; IPC 1.8 -> 0.7, LLC misses 2 -> 25
     * per thousand instructions, speedups 1, 1.9, 2.6, 2.8: the same judgment as from profiled reports. */
    struct sweep w;
    struct results r;
    static uint64_t v[4][PROF_CTR_MAX], ok[4];
    const double ipc[4] = {1.8, 1.6, 1.0, 0.7}, mpki[4] = {2, 5, 15, 25};
    sweep_of(&w, (double[]){2.8, 2.8 / 1.9, 2.8 / 2.6, 1.0});
    enum prof_ctr_role roles[3] = {PROF_CTR_ROLE_CYCLES, PROF_CTR_ROLE_INSTRUCTIONS, PROF_CTR_ROLE_LLC_MISSES};
    for (int e = 0; e < 3; e++)
        w.ctr[e] = (struct prof_ctr_event){.source = PROF_CTR_SRC_PERF, .role = roles[e], .hardware = 1};
    w.nctr = 3;
    for (int i = 0; i < 4; i++) {
        v[i][0] = 1000000000;
        v[i][1] = (uint64_t)(ipc[i] * 1e9);
        v[i][2] = (uint64_t)(ipc[i] * 1e9 * mpki[i] / 1000);
        ok[i] = 7;
    }
    w.ctr_v = v;
    w.ctr_ok = ok;
    cr_assert_eq(sweep_compute(&w, &r), 0);
    cr_assert_eq(r.nmem, 4);
    cr_assert_eq(r.membound.memory_bound, 1);
    cr_assert_eq(r.membound.cap, 4);
    cr_assert_float_eq(r.p[3].ctr[1], 0.7e9, 1);
    /* A run that did not count one of them leaves its point out. */
    ok[2] = 5;
    cr_assert_eq(sweep_compute(&w, &r), 0);
    cr_assert_eq(r.nmem, 3);
}
