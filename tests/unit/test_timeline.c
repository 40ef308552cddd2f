/* test_timeline.c: sampler.rec's S lines become each thread's timeline in the merged run, and the trace renderer draws it. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prof.h"
#include "format/shm.h"
#include "format/tstate.h"
#include "synth_run.h"
#include "core/pipeline.h"
#include "core/run.h"
#include "reports/render.h"

TestSuite(timeline, .init = setup, .fini = teardown);

static const struct prof_thread *thread_in(const struct prof_report *rep, int pid, int tid)
{
    const struct prof_process *p = prof_run_process(rep->run, pid);
    cr_assert_not_null(p, "no process %d", pid);
    for (size_t i = 0; i < p->nthreads; i++)
        if (p->threads[i].tid == tid)
            return &p->threads[i];
    cr_assert_fail("no thread %d in %d", tid, pid);
    return NULL;
}

/* One process (pid 900: the main thread and 901) whose sampler.rec holds spans as a flush writes them:
 * out of order between threads, split at flushes, one overlapping its neighbour (a thread known twice
 * at its exit), and a malformed one. */
static struct prof_report *analyzed(void)
{
    write_run(900, T0 + 1 * SEC, 0);
    struct prof_shm_header *h = rec_new(900, 1, T0, T0 + 1 * SEC, PROF_END_EXIT, 0, 0, "/bin/prog", 1, "prog");
    rec_thread(h, 900, "prog", T0, T0 + 1 * SEC, PROF_THREAD_ENDED, 100 * MS);
    rec_thread(h, 901, "worker", T0 + 10 * MS, T0 + 900 * MS, PROF_THREAD_ENDED, 300 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n");
    static const char smp[] =
        "V version=1\n"
        "P t=1000000000000 pid=900 ppid=1 python=0 gil=1 pyerr=\n"
        /* first flush: 0..100 ms */
        "S pid=900 tid=901 t0=1000010000000 t1=1000050000000 state=running\n"
        "S pid=900 tid=900 t0=1000000000000 t1=1000100000000 state=sync\n"
        "S pid=900 tid=901 t0=1000050000000 t1=1000100000000 state=sleep\n"
        /* second flush: the same states go on (merged), then the worker runs and exits */
        "S pid=900 tid=900 t0=1000100000000 t1=1000200000000 state=sync\n"
        "S pid=900 tid=901 t0=1000100000000 t1=1000150000000 state=sleep\n"
        "S pid=900 tid=901 t0=1000150000000 t1=1000400000000 state=running\n"
        "S pid=900 tid=901 t0=1000390000000 t1=1000420000000 state=other\n"
        "S pid=900 tid=901 t0=1000420000000 t1=1000420000000 state=running\n"
        "S pid=900 tid=901 t0=1000430000000 t1=1000440000000 state=nonsense\n";
    write_file("sampler.rec", smp, sizeof smp - 1);
    struct prof_report *rep = NULL;
    int rc = prof_analyze(dir, &rep);
    cr_assert_eq(rc, 0, "prof_analyze: %s", prof_strerror(rc));
    return rep;
}

Test(timeline, spans_are_time_ordered_clipped_and_merged)
{
    struct prof_report *rep = analyzed();
    const struct prof_thread *main_t = thread_in(rep, 900, 900), *w = thread_in(rep, 900, 901);
    cr_assert_eq(main_t->nspans, 1, "the flush-split sync spans merged: %zu", main_t->nspans);
    cr_assert_eq(main_t->spans[0].t0_ns, T0);
    cr_assert_eq(main_t->spans[0].t1_ns, T0 + 200 * MS);
    cr_assert_eq(main_t->spans[0].state, PROF_TS_SYNC);
    /* running 10..50, sleep 50..150 (merged across the flush), running 150..400, other 400..420 (clipped) */
    static const struct { uint64_t a, b; int st; } want[] = {
        {10, 50, PROF_TS_RUNNING}, {50, 150, PROF_TS_SLEEP}, {150, 400, PROF_TS_RUNNING}, {400, 420, PROF_TS_OTHER}};
    cr_assert_eq(w->nspans, 4, "worker spans: %zu", w->nspans);
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(w->spans[i].t0_ns, T0 + want[i].a * MS, "span %zu t0", i);
        cr_expect_eq(w->spans[i].t1_ns, T0 + want[i].b * MS, "span %zu t1", i);
        cr_expect_eq(w->spans[i].state, want[i].st, "span %zu state", i);
    }
    prof_report_free(rep);
}

Test(timeline, trace_format_draws_them_with_small_thread_ids)
{
    struct prof_report *rep = analyzed();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(prof_render(&prof_render_trace, rep, f), 0);
    fclose(f);
    json_error_t err;
    json_t *doc = json_loads(buf, 0, &err);
    cr_assert_not_null(doc, "not JSON: %s at %d: %s", err.text, err.position, buf);
    json_t *ev = json_object_get(doc, "traceEvents");
    cr_assert(json_is_array(ev));
    size_t i;
    json_t *e;
    int small_of_901 = 0, n_states_901 = 0;
    double running_us = 0;
    json_array_foreach(ev, i, e) {
        const char *ph = json_string_value(json_object_get(e, "ph")), *name = json_string_value(json_object_get(e, "name"));
        json_t *args = json_object_get(e, "args");
        if (strcmp(ph, "M") == 0 && strcmp(name, "thread_name") == 0 && json_integer_value(json_object_get(args, "tid")) == 901) {
            small_of_901 = (int)json_integer_value(json_object_get(e, "tid"));
            cr_assert_str_eq(json_string_value(json_object_get(args, "name")), "worker");
        }
        if (strcmp(ph, "X") == 0 && strcmp(json_string_value(json_object_get(e, "cat")), "state") == 0 &&
            json_integer_value(json_object_get(e, "tid")) == small_of_901 && small_of_901) {
            n_states_901++;
            if (strcmp(name, "running") == 0)
                running_us += json_number_value(json_object_get(e, "dur"));
        }
    }
    cr_assert_eq(small_of_901, 2, "the worker is thread 2 of its process");
    cr_assert_eq(n_states_901, 4);
    cr_assert_float_eq(running_us, 290000.0, 0.01, "running: 40 + 250 ms, got %f us", running_us);
    json_decref(doc);
    free(buf);
    prof_report_free(rep);
}
