/* test_merge.c: the merge turns synthetic run directories (run.json, monitor.rec, shim records) into the right report. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prof.h"
#include "format/shm.h"
#include "synth_run.h"
#include "core/pipeline.h"
#include "reports/render.h"

TestSuite(merge, .init = setup, .fini = teardown);

/* A marker stage slot as the shim leaves it: ready, one begin..end per thread. */
static struct prof_shm_stage *rec_stage(struct prof_shm_header *h, const char *name, uint32_t threads, uint64_t first,
                                        uint64_t last, uint64_t self_ns, uint64_t cpu_ns)
{
    struct prof_shm_stage *g = &h->stages[h->nstages++];
    g->name_hash = 0xcbf29ce484222325ull ^ (uint64_t)h->nstages;
    snprintf(g->name, sizeof g->name, "%s", name);
    g->ready = 1;
    g->threads = threads;
    g->entries = g->exits = threads;
    g->first_begin_ns = first;
    g->last_end_ns = last;
    g->self_ns = g->incl_ns = self_ns;
    g->cpu_ns = cpu_ns;
    return g;
}

static json_t *report(void)
{
    struct prof_report *rep = NULL;
    int rc = prof_analyze(dir, &rep);
    cr_assert_eq(rc, 0, "prof_analyze: %s", prof_strerror(rc));
    cr_assert_not_null(rep);
    /* What a recording leaves in the run directory beside report.json (rss.csv, the folded stacks). */
    cr_assert_eq(prof_render_rundir(rep, dir), 0);
    if (getenv("SHOW"))
        prof_render(&prof_render_json, rep, stderr);
    json_t *r = json_incref(rep->doc);
    prof_report_free(rep);
    return r;
}

static json_t *proc_by_pid(json_t *r, int pid)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "processes"), i, p)
        if (json_integer_value(json_object_get(p, "pid")) == pid)
            return p;
    cr_assert_fail("no process %d in the report", pid);
    return NULL;
}

static json_t *stage_by_name(json_t *r, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(r, "stages"), i, s)
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            return s;
    return NULL;
}

/* The terminal exporter's text for report r (free it). */
static char *terminal_text(json_t *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    cr_assert_not_null(mem);
    struct prof_report rep = {.doc = r};
    cr_assert_eq(prof_render(prof_renderer_find("terminal"), &rep, mem), 0);
    fclose(mem);
    return buf;
}

static double dget(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    cr_assert(json_is_number(v), "%s.%s is not a number", a, b ? b : "");
    return json_number_value(v);
}

static int has_string_containing(json_t *arr, const char *needle)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (strstr(json_string_value(v), needle))
            return 1;
    return 0;
}

Test(merge, killed_child_status_from_parents_children_entry)
{
    /* The parent (root) forks a worker and reaps it after SIGKILL; poolprof reaps the parent. */
    write_run(100, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(100, 1, T0 + 1 * MS, T0 + 1900 * MS, PROF_END_EXIT, 0, 0, "/usr/bin/prog", 2,
                                        "prog", "arg");
    rec_thread(h, 100, "prog", T0 + 1 * MS, T0 + 1900 * MS, PROF_THREAD_ENDED, 100 * MS);
    h->children[0] = (struct prof_shm_child){.pid = 101, .status = SIGKILL, .t_ns = T0 + 1500 * MS};
    h->nchildren = 1;
    rec_write(h, 0);
    h = rec_new(101, 100, T0 + 100 * MS, 0, PROF_END_RUNNING, 0, PROF_PROC_FORKED, "/usr/bin/prog", 2, "prog", "arg");
    rec_thread(h, 101, "prog", T0 + 100 * MS, 0, PROF_THREAD_RUNNING, 0);
    rec_write(h, 0);
    write_monitor("V version=1\n"
                  "S t=1000000000000 interval_ms=20 ticks_per_sec=100 page_size=4096\n"
                  "N t=1000002000000 pid=100 ppid=1 start_ticks=1 exe=/usr/bin/prog argv=prog,arg static=0\n"
                  "N t=1000110000000 pid=101 ppid=100 start_ticks=2 exe=/usr/bin/prog argv=prog,arg static=0\n"
                  "T t=1001400000000 pid=101 tid=101 name=prog cpu=1200000000 runq=0 slices=3 utime=1200000000 "
                  "stime=0 vcsw=1 ivcsw=2 start_ticks=2\n"
                  "G t=1001510000000 pid=101\n"
                  "Z t=1001950000000 pid=100 status=0\n");
    json_t *r = report();

    json_t *child = proc_by_pid(r, 101), *ex = json_object_get(child, "exit");
    cr_assert_str_eq(json_string_value(json_object_get(ex, "how")), "killed");
    cr_assert_eq(json_integer_value(json_object_get(ex, "signal")), SIGKILL);
    cr_assert(json_is_null(json_object_get(ex, "code")));
    cr_assert_str_eq(json_string_value(json_object_get(ex, "source")), "parent");
    cr_assert_float_eq(dget(child, "end_seconds", NULL), 1.5, 1e-6, "ended when its parent reaped it");
    cr_assert_str_eq(json_string_value(json_object_get(child, "role")), "prog (forked)"); /* the program, not its operands */
    cr_assert(json_is_true(json_object_get(child, "forked")));
    cr_assert_eq(json_integer_value(json_object_get(child, "ppid")), 100);

    json_t *parent = proc_by_pid(r, 100);
    ex = json_object_get(parent, "exit");
    cr_assert_str_eq(json_string_value(json_object_get(ex, "how")), "exited");
    cr_assert_eq(json_integer_value(json_object_get(ex, "code")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(ex, "source")), "poolprof");

    /* Two processes: one stage per role, and the worker's CPU came from the monitor alone. */
    json_t *fork_stage = stage_by_name(r, "prog (forked)"); /* the program, not its operands */
    cr_assert_not_null(fork_stage);
    cr_assert_str_eq(json_string_value(json_object_get(fork_stage, "source")), "process-role");
    cr_assert_float_eq(dget(fork_stage, "cpu_seconds", NULL), 1.2, 1e-6);
    cr_assert_not_null(stage_by_name(r, "prog"));
    cr_assert_float_eq(dget(r, "wall_seconds", NULL), 2.0, 1e-9);
    json_decref(r);
}

Test(merge, vanished_process_without_any_status)
{
    write_run(100, T0 + 1 * SEC, -1);
    write_monitor("V version=1\n"
                  "N t=1000001000000 pid=100 ppid=1 start_ticks=1 exe=/bin/x argv=x static=0\n"
                  "R t=1000500000000 pid=100 rss=1000000\n");
    json_t *r = report();
    json_t *p = proc_by_pid(r, 100), *ex = json_object_get(p, "exit");
    cr_assert_str_eq(json_string_value(json_object_get(ex, "how")), "vanished");
    cr_assert(json_is_null(json_object_get(ex, "source")));
    cr_assert_float_eq(dget(p, "end_seconds", NULL), 0.5, 1e-6, "ends when last seen");
    cr_assert(json_is_null(json_object_get(json_object_get(r, "exit"), "code")));
    json_decref(r);
}

Test(merge, shim_exit_record_when_nobody_reaped)
{
    write_run(100, T0 + 1 * SEC, -1);
    struct prof_shm_header *h = rec_new(100, 1, T0, T0 + 800 * MS, PROF_END_UNDERSCORE_EXIT, 3, 0, "/bin/x", 1, "x");
    rec_thread(h, 100, "x", T0, T0 + 800 * MS, PROF_THREAD_SNAPSHOT, 10 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *ex = json_object_get(proc_by_pid(r, 100), "exit");
    cr_assert_str_eq(json_string_value(json_object_get(ex, "how")), "exited");
    cr_assert_eq(json_integer_value(json_object_get(ex, "code")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(ex, "source")), "shim");
    json_decref(r);
}

Test(merge, exec_chain_is_one_process)
{
    /* sh -c 'python3 x.py' execs python: two shim images and the monitor's N/E lines, one pid. */
    write_run(200, T0 + 3 * SEC, 0);
    struct prof_shm_header *h =
        rec_new(200, 1, T0 + 1 * MS, T0 + 10 * MS, PROF_END_EXEC, 0, 0, "/usr/bin/dash", 3, "sh", "-c", "python3 x.py");
    rec_thread(h, 200, "sh", T0 + 1 * MS, T0 + 10 * MS, PROF_THREAD_SNAPSHOT, 2 * MS);
    rec_write(h, 0);
    h = rec_new(200, 1, T0 + 11 * MS, T0 + 2900 * MS, PROF_END_EXIT, 0, PROF_PROC_PYTHON, "/usr/bin/python3.11", 2,
                "python3", "x.py");
    rec_thread(h, 200, "python3", T0 + 11 * MS, T0 + 2900 * MS, PROF_THREAD_ENDED, 2500 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n"
                  "N t=1000005000000 pid=200 ppid=1 start_ticks=1 exe=/usr/bin/dash argv=sh,-c,python3%20x.py static=0\n"
                  "E t=1000030000000 pid=200 exe=/usr/bin/python3.11 argv=python3,x.py static=0\n"
                  "T t=1001000000000 pid=200 tid=200 name=python3 cpu=900000000 runq=0 slices=1 utime=900000000 "
                  "stime=0 vcsw=0 ivcsw=0 start_ticks=1\n"
                  "Z t=1002950000000 pid=200 status=0\n");
    json_t *r = report();
    cr_assert_eq(json_array_size(json_object_get(r, "processes")), 1);
    json_t *p = proc_by_pid(r, 200);
    json_t *chain = json_object_get(p, "exec_chain");
    cr_assert_eq(json_array_size(chain), 2, "shim and monitor images merge into sh -> python3");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(chain, 0), "exe")), "/usr/bin/dash");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(json_array_get(chain, 0), "argv"), 2)),
                     "python3 x.py");
    cr_assert_str_eq(json_string_value(json_object_get(p, "role")), "python3 x.py");
    cr_assert(json_is_true(json_object_get(p, "python")));
    cr_assert_eq(json_array_size(json_object_get(p, "threads")), 1, "exec keeps the main thread");
    json_t *t = json_array_get(json_object_get(p, "threads"), 0);
    cr_assert_float_eq(dget(t, "cpu_seconds", NULL), 2.5, 1e-6);
    cr_assert_str_eq(json_string_value(json_object_get(t, "name")), "python3");
    cr_assert_str_eq(json_string_value(json_object_get(t, "ended_by")), "shim-exit");
    /* One process: no role stages; the main thread's name is the process name: no thread stages. */
    cr_assert_eq(json_array_size(json_object_get(r, "stages")), 0);
    json_t *ov = json_object_get(r, "overall");
    cr_assert(json_is_true(json_object_get(json_object_get(ov, "lock"), "gil")));
    cr_assert_str_eq(json_string_value(json_object_get(ov, "name")), "overall");
    json_decref(r);
}

Test(merge, thread_name_stage_spans_processes)
{
    write_run(300, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(300, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/a", 1, "a");
    rec_thread(h, 300, "a", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 10 * MS);
    struct prof_shm_thread *t = rec_thread(h, 301, "fetch", T0 + 100 * MS, T0 + 1100 * MS, PROF_THREAD_ENDED, 100 * MS);
    t->lock_wait_ns = 200 * MS;
    rec_thread(h, 302, "fetch", T0 + 200 * MS, T0 + 1200 * MS, PROF_THREAD_ENDED, 100 * MS);
    h->locks[0] = (struct prof_shm_lock){.addr = 0x1000, .contended = 5, .acquisitions = 50, .wait_ns = 200 * MS,
                                         .hold_ns = 50 * MS, .site = "worker+0x12"};
    rec_write(h, 0);
    h = rec_new(310, 300, T0 + 50 * MS, T0 + 1900 * MS, PROF_END_EXIT, 0, 0, "/bin/b", 2, "b", "--child");
    rec_thread(h, 310, "b", T0 + 50 * MS, T0 + 1900 * MS, PROF_THREAD_ENDED, 10 * MS);
    t = rec_thread(h, 311, "fetch", T0 + 300 * MS, T0 + 1800 * MS, PROF_THREAD_ENDED, 300 * MS);
    t->gil_wait_ns = 100 * MS;
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();

    json_t *s = stage_by_name(r, "fetch");
    cr_assert_not_null(s, "threads named fetch form a stage");
    cr_assert_str_eq(json_string_value(json_object_get(s, "source")), "thread-name");
    cr_assert_eq(json_integer_value(json_object_get(s, "processes")), 2);
    cr_assert_eq(json_integer_value(json_object_get(s, "threads")), 3);
    cr_assert_float_eq(dget(s, "thread_seconds", NULL), 3.5, 1e-6);
    cr_assert_float_eq(dget(s, "cpu_seconds", NULL), 0.5, 1e-6);
    cr_assert_float_eq(dget(s, "wall_seconds", NULL), 1.7, 1e-6, "first entry 0.1 s to last exit 1.8 s");
    json_t *lock = json_object_get(s, "lock");
    cr_assert_float_eq(dget(lock, "wait_seconds", NULL), 0.2, 1e-6);
    cr_assert_float_eq(dget(lock, "gil_wait_seconds", NULL), 0.1, 1e-6);
    cr_assert_float_eq(dget(lock, "wait_fraction", NULL), 0.3 / 3.5, 1e-4);
    cr_assert(json_is_true(json_object_get(lock, "measured")));
    cr_assert(json_is_false(json_object_get(lock, "gil")), "no process runs CPython");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(lock, "hottest"), "site")), "worker+0x12");
    cr_assert_not_null(stage_by_name(r, "a"), "role stage for process a");
    cr_assert_not_null(stage_by_name(r, "b --child"), "role stage for process b");
    cr_assert_null(stage_by_name(r, "b"), "a main thread's name is not a stage");
    json_t *ipc = json_object_get(s, "ipc");
    cr_assert(json_is_true(json_object_get(ipc, "measured")), "the shim ran in both processes");
    cr_assert_eq(json_integer_value(json_object_get(ipc, "bytes")), 0);
    cr_assert(json_is_string(json_object_get(json_object_get(s, "recommendation"), "model")));
    cr_assert(json_is_null(json_object_get(json_object_get(stage_by_name(r, "b --child"), "lock"), "hottest")));
    json_decref(r);
}

Test(merge, a_role_is_the_program_not_its_operands)
{
    /* xargs runs one program over three files, and a CPython parent two scripts: two roles of
     * md5sum's three processes and one each of the scripts, never one role per command line. */
    write_run(400, T0 + 3 * SEC, 0);
    struct prof_shm_header *h = rec_new(400, 1, T0, T0 + 3 * SEC, PROF_END_EXIT, 0, 0, "/usr/bin/xargs", 3, "xargs",
                                        "-n1", "md5sum");
    rec_thread(h, 400, "xargs", T0, T0 + 3 * SEC, PROF_THREAD_ENDED, 10 * MS);
    rec_write(h, 0);
    for (int i = 0; i < 3; i++) {
        char file[16];
        snprintf(file, sizeof file, "f%d", i);
        h = rec_new(401 + i, 400, T0 + (uint64_t)i * SEC, T0 + (uint64_t)(i + 1) * SEC, PROF_END_EXIT, 0, 0,
                    "/usr/bin/md5sum", 3, "md5sum", "-b", file);
        rec_thread(h, 401 + i, "md5sum", T0 + (uint64_t)i * SEC, T0 + (uint64_t)(i + 1) * SEC, PROF_THREAD_ENDED,
                   900 * MS);
        rec_write(h, 0);
    }
    h = rec_new(410, 400, T0, T0 + SEC, PROF_END_EXIT, 0, PROF_PROC_PYTHON, "/usr/bin/python3", 4, "python3", "-X",
                "dev", "etl.py");
    rec_thread(h, 410, "python3", T0, T0 + SEC, PROF_THREAD_ENDED, 900 * MS);
    rec_write(h, 0);
    h = rec_new(411, 400, T0, T0 + SEC, PROF_END_EXIT, 0, PROF_PROC_PYTHON, "/usr/bin/python3", 3, "python3",
                "load.py", "input.csv");
    rec_thread(h, 411, "python3", T0, T0 + SEC, PROF_THREAD_ENDED, 900 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *md5 = stage_by_name(r, "md5sum -b");
    cr_assert_not_null(md5, "one role for the three md5sum runs");
    cr_assert_eq(json_integer_value(json_object_get(md5, "processes")), 3);
    cr_assert_null(stage_by_name(r, "md5sum -b f0"), "the operand is not the program");
    cr_assert_not_null(stage_by_name(r, "python3 -X dev etl.py"), "CPython's script is its program");
    cr_assert_not_null(stage_by_name(r, "python3 load.py"));
    json_decref(r);
}

/* A parent waiting on N CPU-bound children of SEC each, `at_once` at a time; the overall stage. */
static json_t *children_run(int n, int at_once, json_t **report_out)
{
    uint64_t span = (uint64_t)((n + at_once - 1) / at_once) * SEC;
    write_run(500, T0 + span + 10 * MS, 0);
    struct prof_shm_header *h = rec_new(500, 1, T0, T0 + span + 10 * MS, PROF_END_EXIT, 0, 0, "/usr/bin/xargs", 2,
                                        "xargs", "burn");
    struct prof_shm_thread *t = rec_thread(h, 500, "xargs", T0, T0 + span + 10 * MS, PROF_THREAD_ENDED, 5 * MS);
    t->join_wait_ns = span;
    rec_write(h, 0);
    for (int i = 0; i < n; i++) {
        uint64_t b = T0 + 5 * MS + (uint64_t)(i / at_once) * SEC, e = b + SEC - 2 * MS;
        h = rec_new(501 + i, 500, b, e, PROF_END_EXIT, 0, 0, "/usr/bin/burn", 1, "burn");
        rec_thread(h, 501 + i, "burn", b, e, PROF_THREAD_ENDED, 950 * MS);
        rec_write(h, 0);
    }
    write_monitor("V version=1\n");
    json_t *r = report();
    *report_out = r;
    return json_object_get(r, "overall");
}

Test(merge, children_run_one_after_another_are_a_pool_of_one)
{
    /* xargs -P1 over four CPU-bound children: one worker at a time, whose parallel form is more
     * processes at once (it had read as a pool of four already running: processes x 4, 1.00x). */
    json_t *r, *o = children_run(4, 1, &r);
    json_t *cur = json_object_get(json_object_get(o, "work_model"), "current");
    cr_assert_str_eq(json_string_value(json_object_get(cur, "model")), "processes");
    cr_assert_eq(json_integer_value(json_object_get(cur, "workers")), 1);
    json_t *rec = json_object_get(o, "recommendation");
    cr_assert_str_eq(json_string_value(json_object_get(rec, "model")), "processes");
    cr_assert_eq(json_integer_value(json_object_get(rec, "workers")), 2);
    cr_assert_gt(dget(rec, "predicted_speedup", NULL), 1.6);
    json_decref(r);
}

Test(merge, children_two_at_a_time_are_a_pool_of_two)
{
    /* xargs -P2, already as many at once as the machine's two CPUs: nothing more to gain. */
    json_t *r, *o = children_run(4, 2, &r);
    json_t *cur = json_object_get(json_object_get(o, "work_model"), "current");
    cr_assert_str_eq(json_string_value(json_object_get(cur, "model")), "processes");
    cr_assert_eq(json_integer_value(json_object_get(cur, "workers")), 2);
    json_t *rec = json_object_get(o, "recommendation");
    cr_assert_str_eq(json_string_value(json_object_get(rec, "model")), "processes");
    cr_assert_eq(json_integer_value(json_object_get(rec, "workers")), 2);
    cr_assert_float_eq(dget(rec, "predicted_speedup", NULL), 1.0, 0.1);
    json_decref(r);
}

Test(merge, a_pipeline_of_two_programs_is_not_a_process_pool)
{
    /* sh -c 'compress -p 4 | sum': the compressor's four threads do the work and the checksum
     * reads its output. Two busy processes of different programs are a pipeline, not a pool of
     * two processes: the work runs on the compressor's threads. */
    write_run(700, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(700, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/sh", 3, "sh", "-c",
                                        "compress -p 4 | sum");
    struct prof_shm_thread *t = rec_thread(h, 700, "sh", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 2 * MS);
    t->join_wait_ns = 1990 * MS;
    rec_write(h, 0);
    h = rec_new(701, 700, T0 + 5 * MS, T0 + 1990 * MS, PROF_END_EXIT, 0, 0, "/usr/bin/compress", 3, "compress", "-p",
                "4");
    t = rec_thread(h, 701, "compress", T0 + 5 * MS, T0 + 1990 * MS, PROF_THREAD_ENDED, 100 * MS);
    t->join_wait_ns = 1880 * MS; /* its main thread waits for the workers */
    for (int i = 0; i < 4; i++)
        rec_thread(h, 702 + i, "compress", T0 + 10 * MS, T0 + 1980 * MS, PROF_THREAD_ENDED, 900 * MS);
    rec_write(h, 0);
    h = rec_new(710, 700, T0 + 5 * MS, T0 + 1995 * MS, PROF_END_EXIT, 0, 0, "/usr/bin/sum", 1, "sum");
    rec_thread(h, 710, "sum", T0 + 5 * MS, T0 + 1995 * MS, PROF_THREAD_ENDED, 400 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *cur = json_object_get(json_object_get(json_object_get(r, "overall"), "work_model"), "current");
    cr_assert_str_eq(json_string_value(json_object_get(cur, "model")), "threads");
    cr_assert_eq(json_integer_value(json_object_get(cur, "workers")), 4);
    json_decref(r);
}

Test(merge, many_short_threads_two_at_a_time_are_two_threads)
{
    /* Forty short-lived threads, two alive at a time (a sorter's helper threads): a pool of two. */
    write_run(600, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(600, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/usr/bin/sorter", 1, "sorter");
    struct prof_shm_thread *t = rec_thread(h, 600, "sorter", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 20 * MS);
    t->join_wait_ns = 1980 * MS; /* the main thread waits for its helpers */
    for (int i = 0; i < 40; i++) {
        uint64_t b = T0 + (uint64_t)(i / 2) * 100 * MS, e = b + 99 * MS;
        rec_thread(h, 601 + i, "sorter", b, e, PROF_THREAD_ENDED, 95 * MS);
    }
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *cur = json_object_get(json_object_get(json_object_get(r, "overall"), "work_model"), "current");
    cr_assert_str_eq(json_string_value(json_object_get(cur, "model")), "threads");
    cr_assert_eq(json_integer_value(json_object_get(cur, "workers")), 2);
    json_decref(r);
}

Test(merge, cpu_is_max_of_shim_and_monitor)
{
    write_run(400, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(400, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/c", 1, "c");
    rec_thread(h, 400, "c", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 100 * MS);
    rec_thread(h, 401, "crunch", T0 + 10 * MS, T0 + 1 * SEC, PROF_THREAD_ENDED, 500 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n"
                  "T t=1000900000000 pid=400 tid=400 name=c cpu=300000000 runq=7000000 slices=1 utime=0 stime=0 "
                  "vcsw=4 ivcsw=5 start_ticks=1\n"
                  "T t=1000900000000 pid=400 tid=401 name=crunch cpu=200000000 runq=0 slices=1 utime=0 stime=0 "
                  "vcsw=0 ivcsw=0 start_ticks=1\n");
    json_t *r = report();
    json_t *threads = json_object_get(proc_by_pid(r, 400), "threads");
    cr_assert_float_eq(dget(json_array_get(threads, 0), "cpu_seconds", NULL), 0.3, 1e-6, "monitor ahead of shim");
    cr_assert_float_eq(dget(json_array_get(threads, 0), "runq_seconds", NULL), 0.007, 1e-6);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(threads, 0), "involuntary_ctx_switches")), 5);
    cr_assert_float_eq(dget(json_array_get(threads, 1), "cpu_seconds", NULL), 0.5, 1e-6, "shim ahead of monitor");
    cr_assert_float_eq(dget(json_object_get(r, "overall"), "cpu_seconds", NULL), 0.8, 1e-6);
    json_t *crunch = stage_by_name(r, "crunch");
    cr_assert_not_null(crunch);
    cr_assert_float_eq(dget(crunch, "cpu_wall_ratio", NULL), 0.5 / 0.99, 1e-3);
    json_decref(r);
}

/*
 * Two threads alive 1 s each, 0.3 s each blocked in a mutex, 0.2 s each on a
 * run queue: the wait fraction is 0.6 s of the 1.6 s the threads had a CPU
 * or did not want one, not 0.6 of 2.0.
 */
Test(merge, lock_wait_fraction_leaves_out_run_queue_time)
{
    write_run(500, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(500, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/g", 1, "g");
    rec_thread(h, 500, "g", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * MS);
    for (int i = 0; i < 2; i++) {
        struct prof_shm_thread *t =
            rec_thread(h, 501 + i, "locked", T0 + 100 * MS, T0 + 1100 * MS, PROF_THREAD_ENDED, 500 * MS);
        t->lock_wait_ns = 300 * MS;
    }
    rec_write(h, 0);
    write_monitor("V version=1\n"
                  "T t=1001000000000 pid=500 tid=501 name=locked cpu=500000000 runq=200000000 slices=1 utime=0 "
                  "stime=0 vcsw=0 ivcsw=9 start_ticks=1\n"
                  "T t=1001000000000 pid=500 tid=502 name=locked cpu=500000000 runq=200000000 slices=1 utime=0 "
                  "stime=0 vcsw=0 ivcsw=9 start_ticks=1\n");
    json_t *r = report();
    json_t *s = stage_by_name(r, "locked");
    cr_assert_not_null(s);
    cr_assert_float_eq(dget(s, "thread_seconds", NULL), 2.0, 1e-6);
    cr_assert_float_eq(dget(s, "runq_seconds", NULL), 0.4, 1e-6);
    json_t *lock = json_object_get(s, "lock");
    cr_assert_float_eq(dget(lock, "wait_seconds", NULL), 0.6, 1e-6);
    cr_assert_float_eq(dget(lock, "wait_fraction", NULL), 0.6 / 1.6, 1e-4);
    json_decref(r);
}

/*
 * A thread alive 1 s with 0.8 s of CPU and 0.05 s on a run queue, while the machine's
 * stolen ticks were a tenth of its busy ones: 0.08 s stolen from it. With half of them
 * stolen the estimate (0.4 s) is capped by the 0.15 s nothing else explains.
 */
static json_t *steal_run(const char *k_lines)
{
    write_run(600, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(600, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/s", 1, "s");
    rec_thread(h, 600, "s", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * MS);
    rec_thread(h, 601, "crunch", T0 + 100 * MS, T0 + 1100 * MS, PROF_THREAD_ENDED, 800 * MS);
    rec_write(h, 0);
    char text[1024];
    snprintf(text, sizeof text,
             "V version=1\nS t=1000000000000 interval_ms=20 ticks_per_sec=100 page_size=4096\n%s"
             "T t=1001000000000 pid=600 tid=601 name=crunch cpu=800000000 runq=50000000 slices=1 utime=0 "
             "stime=0 vcsw=0 ivcsw=9 start_ticks=1\n",
             k_lines);
    write_monitor(text);
    return report();
}

Test(merge, stolen_time_is_charged_by_cpu_share)
{
    json_t *r = steal_run("K t=1000000000000 busy=1000 steal=50\nK t=1001500000000 busy=1200 steal=70\n");
    json_t *s = stage_by_name(r, "crunch");
    cr_assert_not_null(s);
    cr_assert_float_eq(dget(s, "steal_seconds", NULL), 0.08, 1e-6);
    cr_assert_float_eq(dget(json_object_get(json_object_get(s, "work_model"), "off_cpu_seconds"), "steal", NULL), 0.08,
                       1e-6);
    json_decref(r);
}

Test(merge, stolen_time_is_capped_by_what_nothing_else_explains)
{
    json_t *r = steal_run("K t=1000000000000 busy=1000 steal=50\nK t=1001500000000 busy=1200 steal=150\n");
    cr_assert_float_eq(dget(stage_by_name(r, "crunch"), "steal_seconds", NULL), 0.15, 1e-6);
    json_decref(r);
}

Test(merge, no_steal_without_two_readings)
{
    json_t *r = steal_run("K t=1000000000000 busy=1000 steal=50\n");
    cr_assert_float_eq(dget(stage_by_name(r, "crunch"), "steal_seconds", NULL), 0.0, 1e-9);
    json_decref(r);
}

Test(merge, torn_last_monitor_line_is_ignored)
{
    write_run(500, T0 + 1 * SEC, 0);
    write_monitor("V version=1\n"
                  "N t=1000001000000 pid=500 ppid=1 start_ticks=1 exe=/bin/d argv=d static=1\n"
                  "R t=1000100000000 pid=500 rss=1000000\n"
                  "R t=1000200000000 pid=500 rss=2000000\n"
                  "R t=1000300000000 pid=500 rss=99999");
    json_t *r = report();
    json_t *p = proc_by_pid(r, 500);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(p, "rss"), "samples")), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(p, "rss"), "peak_bytes")), 2000000);
    json_t *ms = json_object_get(r, "measurement");
    cr_assert(has_string_containing(json_object_get(ms, "notes"), "torn last line"));
    /* static=1: the report says the figures come from /proc only. */
    cr_assert(json_is_true(json_object_get(p, "static")));
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(ms, "static_pids"), 0)), 500);
    cr_assert(has_string_containing(json_object_get(ms, "notes"), "/proc only"));
    cr_assert(json_is_false(json_object_get(json_object_get(json_object_get(r, "overall"), "lock"), "measured")));
    json_decref(r);
}

Test(merge, truncated_and_foreign_records_are_skipped)
{
    write_run(600, T0 + 1 * SEC, 0);
    struct prof_shm_header *h = rec_new(600, 1, T0, T0 + 900 * MS, PROF_END_EXIT, 0, 0, "/bin/e", 1, "e");
    rec_thread(h, 600, "e", T0, T0 + 900 * MS, PROF_THREAD_ENDED, 100 * MS);
    h->nospace_drops = 3; /* slots whose page found no disk block: named, not silently missing */
    rec_write(h, 0);
    h = rec_new(601, 600, T0 + 5 * MS, 0, 0, 0, PROF_PROC_FORKED, "/bin/e", 1, "e");
    rec_write(h, 4096); /* cut short, e.g. a full disk before posix_fallocate */
    h = rec_new(602, 600, T0 + 6 * MS, 0, 0, 0, 0, "/bin/e", 1, "e");
    h->magic = 0xdeadbeef;
    rec_write(h, 0);
    h = rec_new(603, 600, T0 + 7 * MS, 0, 0, 0, 0, "/bin/e", 1, "e");
    h->version = 99;
    rec_write(h, 0);
    h = rec_new(604, 600, T0 + 8 * MS, 0, 0, 0, 0, "/bin/e", 1, "e");
    h->version = 1;
    rec_write(h, sizeof *h - 2048); /* an older poolprof's record: smaller, not cut short */
    write_file("proc/empty.rec", "", 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    cr_assert_eq(json_array_size(json_object_get(r, "processes")), 1);
    json_t *errs = json_object_get(json_object_get(r, "measurement"), "errors");
    cr_assert(has_string_containing(errs, "truncated"));
    cr_assert(has_string_containing(errs, "not a poolprof process record"));
    cr_assert(has_string_containing(errs, "version 99"));
    cr_assert(has_string_containing(errs, "record version 1, written by another poolprof"));
    cr_assert(has_string_containing(errs, "3 threads, children, locks or stages were not recorded: no disk space"));
    json_decref(r);
}

Test(merge, rss_growth_and_peak_from_samples_and_vm_hwm)
{
    write_run(700, T0 + 1 * SEC, 0);
    struct prof_shm_header *h = rec_new(700, 1, T0, T0 + 950 * MS, PROF_END_EXIT, 0, 0, "/bin/f", 1, "f");
    rec_thread(h, 700, "f", T0, T0 + 950 * MS, PROF_THREAD_ENDED, 100 * MS);
    h->vm_hwm_bytes = 45000000;
    h->rss_end_bytes = 44000000;
    rec_write(h, 0);
    write_monitor("V version=1\n"
                  "S t=1000000000000 interval_ms=20 ticks_per_sec=100 page_size=4096\n"
                  "R t=1000100000000 pid=700 rss=10000000\n"
                  "M t=1000100000000 pid=700 pss=9000000 uss=8000000 swap=0\n"
                  "R t=1000300000000 pid=700 rss=20000000\n"
                  "R t=1000500000000 pid=700 rss=30000000\n"
                  "R t=1000700000000 pid=700 rss=40000000\n"
                  "M t=1000700000000 pid=700 pss=39000000 uss=38000000 swap=0\n");
    json_t *r = report();
    json_t *rss = json_object_get(proc_by_pid(r, 700), "rss");
    cr_assert_eq(json_integer_value(json_object_get(rss, "start_bytes")), 10000000);
    cr_assert_eq(json_integer_value(json_object_get(rss, "peak_bytes")), 45000000, "VmHWM beats the samples");
    cr_assert_eq(json_integer_value(json_object_get(rss, "growth_bytes")), 35000000);
    cr_assert_eq(json_integer_value(json_object_get(rss, "end_bytes")), 44000000);
    cr_assert_eq(json_integer_value(json_object_get(rss, "pss_peak_bytes")), 39000000);
    json_t *orss = json_object_get(json_object_get(r, "overall"), "rss");
    cr_assert_eq(json_integer_value(json_object_get(orss, "growth_bytes")), 35000000);
    cr_assert_eq(json_integer_value(json_object_get(orss, "per_worker_bytes")), 38000000, "USS peak");
    cr_assert(json_is_boolean(json_object_get(orss, "leak_suspected")));

    char path[128], line[128];
    snprintf(path, sizeof path, "%s/rss.csv", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "rss.csv written");
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "t_seconds,pid,rss_bytes,pss_bytes\n");
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "0.100000,700,10000000,9000000\n");
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "0.300000,700,20000000,\n", "no M line at 0.3 s: empty pss");
    int rows = 2;
    while (fgets(line, sizeof line, f))
        rows++;
    fclose(f);
    cr_assert_eq(rows, 4);
    snprintf(path, sizeof path, "%s/report.json", dir);
    cr_assert_eq(access(path, R_OK), 0, "report.json written");
    json_decref(r);
}

Test(merge, steady_climb_is_a_leak_and_plateau_is_not)
{
    /* 320 MB over 2 s, sampled every 20 ms, never freed. */
    write_run(800, T0 + 2100 * MS, 0);
    size_t cap = 200 * 64, o = 0;
    char *mon = malloc(cap);
    o += (size_t)snprintf(mon + o, cap - o, "V version=1\nS t=%llu interval_ms=20 ticks_per_sec=100 page_size=4096\n",
                          T0);
    for (int i = 0; i <= 100; i++)
        o += (size_t)snprintf(mon + o, cap - o, "R t=%llu pid=800 rss=%llu\n", T0 + (unsigned long long)i * 20 * MS,
                              5000000ull + (unsigned long long)i * 3200000ull);
    write_monitor(mon);
    json_t *r = report();
    json_t *orss = json_object_get(json_object_get(r, "overall"), "rss");
    cr_assert_eq(json_integer_value(json_object_get(orss, "growth_bytes")), 320000000);
    cr_assert(json_is_true(json_object_get(orss, "leak_suspected")));
    json_decref(r);

    o = (size_t)snprintf(mon, cap, "V version=1\n");
    for (int i = 0; i <= 100; i++)
        o += (size_t)snprintf(mon + o, cap - o, "R t=%llu pid=800 rss=%llu\n", T0 + (unsigned long long)i * 20 * MS,
                              i < 10 ? 5000000ull + (unsigned long long)i * 30000000ull : 305000000ull);
    write_monitor(mon);
    free(mon);
    r = report();
    orss = json_object_get(json_object_get(r, "overall"), "rss");
    cr_assert(json_is_false(json_object_get(orss, "leak_suspected")), "levels off after startup");
    json_decref(r);
}

Test(merge, a_jittered_climb_keeps_its_peak_and_its_exit_fall_is_no_churn)
{
    /* 266 MB over 0.32 s, sampled every 20 ms, then CPython's shutdown frees it in the last two
     * samples; the first fall's sample came 20 us early, as the monitor's do (a real run: 0.381613
     * s, then 0.401591). Bucketed by truncation, it fell into the peak's bucket and replaced it,
     * so the fall seemed to start a sample earlier: longer than an exit's, churn, "no leak". */
    write_run(801, T0 + 400 * MS, 0);
    size_t cap = 64 * 64, o = 0;
    char *mon = malloc(cap);
    o += (size_t)snprintf(mon + o, cap - o, "V version=1\nS t=%llu interval_ms=20 ticks_per_sec=100 page_size=4096\n",
                          T0);
    for (int i = 0; i <= 18; i++) {
        /* Every sample 22 us late but the first of the fall, on time: 22 us early against the rest. */
        unsigned long long t = T0 + (unsigned long long)i * 20 * MS + (i == 17 ? 0 : 22000ull);
        unsigned long long rss = i <= 16 ? 2000000ull + (unsigned long long)i * 16600000ull : (i == 17 ? 245000000ull : 110000000ull);
        o += (size_t)snprintf(mon + o, cap - o, "R t=%llu pid=801 rss=%llu\n", t, rss);
    }
    write_monitor(mon);
    free(mon);
    json_t *r = report();
    json_t *orss = json_object_get(json_object_get(r, "overall"), "rss");
    cr_assert(json_is_true(json_object_get(orss, "leak_suspected")));
    json_decref(r);
}

Test(merge, report_shape_has_the_reference_fields)
{
    write_run(900, T0 + 1 * SEC, 0);
    write_monitor("V version=1\n"
                  "N t=1000001000000 pid=900 ppid=1 start_ticks=1 exe=/bin/g argv=g static=0\n"
                  "T t=1000900000000 pid=900 tid=900 name=g cpu=850000000 runq=0 slices=1 utime=850000000 "
                  "stime=0 vcsw=0 ivcsw=0 start_ticks=1\n"
                  "Z t=1000990000000 pid=900 status=0\n");
    json_t *r = report();
    cr_assert_str_eq(json_string_value(json_object_get(r, "schema")), PROF_REPORT_SCHEMA);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "machine"), "usable_cpus")), 2);
    json_t *ov = json_object_get(r, "overall");
    const char *need[] = {"name", "class", "cpu_wall_ratio", "lock", "ipc", "rss", "recommendation"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        cr_assert_not_null(json_object_get(ov, need[i]), "overall.%s", need[i]);
    cr_assert(json_is_number(json_object_get(json_object_get(ov, "lock"), "wait_fraction")));
    cr_assert(json_is_boolean(json_object_get(json_object_get(ov, "lock"), "gil")));
    cr_assert(json_object_get(json_object_get(ov, "lock"), "hottest") != NULL);
    cr_assert(json_is_integer(json_object_get(json_object_get(ov, "ipc"), "bytes")));
    cr_assert(json_is_number(json_object_get(json_object_get(ov, "ipc"), "fraction")));
    cr_assert(json_is_integer(json_object_get(json_object_get(ov, "rss"), "growth_bytes")));
    cr_assert(json_is_string(json_object_get(json_object_get(ov, "recommendation"), "model")));
    cr_assert(json_is_integer(json_object_get(json_object_get(ov, "recommendation"), "workers")));
    cr_assert_str_eq(json_string_value(json_object_get(ov, "class")), "cpu-bound");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "exit"), "code")), 0);

    /* Both exporters render it; the terminal one stays within 80 columns. */
    char *buf = terminal_text(r);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        cr_assert_leq(strlen(line), 80, "line too wide: %s", line);
    free(buf);
    cr_assert_eq(prof_renderer_find("json"), &prof_render_json);
    cr_assert_null(prof_renderer_find("yaml"));
    /* A report read back from a file has no run: what needs one says so instead of guessing. */
    struct prof_report doc_only = {.doc = r};
    FILE *null = fopen("/dev/null", "w");
    cr_assert_eq(prof_render(&prof_render_folded, &doc_only, null), PROF_ENOTSUP);
    fclose(null);
    json_decref(r);
}

Test(merge, missing_or_bad_run_json_is_an_error)
{
    struct prof_report *r = (struct prof_report *)1;
    cr_assert_eq(prof_analyze(dir, &r), PROF_ENOENT);
    cr_assert_null(r);
    write_file("run.json", "{\"format\": \"something/else\"}", 28);
    cr_assert_eq(prof_analyze(dir, &r), PROF_EFORMAT);
    write_file("run.json", "{not json", 9);
    cr_assert_eq(prof_analyze(dir, &r), PROF_EFORMAT);
    cr_assert_eq(prof_analyze(NULL, &r), PROF_EINVAL);
}

Test(merge, marker_stage_spans_processes_with_ipc_and_io)
{
    write_run(400, T0 + 5 * SEC, 0);
    struct prof_shm_header *h = rec_new(400, 1, T0, T0 + 5 * SEC, PROF_END_EXIT, 0, PROF_PROC_PYTHON, "/usr/bin/python3",
                                        2, "python3", "pipe.py");
    struct prof_shm_thread *t = rec_thread(h, 400, "python3", T0, T0 + 5 * SEC, PROF_THREAD_ENDED, 300 * MS);
    t->ipc_bytes_sent = 5000000;
    t->ipc_ns = 20 * MS;
    rec_thread(h, 401, "python3", T0 + 100 * MS, T0 + 1200 * MS, PROF_THREAD_ENDED, 10 * MS);
    /* fetch: waits on the network, 38 requests answered; a lock wait inside it is not I/O. */
    struct prof_shm_stage *g = rec_stage(h, "mk-fetch", 2, T0 + 100 * MS, T0 + 1100 * MS, 2 * SEC, 20 * MS);
    g->io_wait_ns = g->net_wait_ns = 1900 * MS;
    g->net_round_trips = 38;
    g->io_bytes = 60000;
    g->lock_wait_ns = 50 * MS;
    /* transform in the parent too (its share of the pool's tasks). */
    g = rec_stage(h, "mk-transform", 1, T0 + 1200 * MS, T0 + 2 * SEC, 1 * SEC, 950 * MS);
    g->ipc_ns = 10 * MS;
    g->ipc_bytes_sent = 1000;
    g->ipc_bytes_received = 3000000;
    rec_write(h, 0);
    h = rec_new(410, 400, T0 + 1100 * MS, T0 + 4500 * MS, PROF_END_EXIT, 0, PROF_PROC_PYTHON | PROF_PROC_FORKED,
                "/usr/bin/python3", 2, "python3", "pipe.py");
    rec_thread(h, 410, "python3", T0 + 1100 * MS, T0 + 4500 * MS, PROF_THREAD_ENDED, 2 * SEC);
    g = rec_stage(h, "mk-transform", 1, T0 + 1300 * MS, T0 + 4 * SEC, 2 * SEC, 1900 * MS);
    g->ipc_ns = 30 * MS;
    g->ipc_bytes_sent = 2000000;
    g->ipc_bytes_received = 4000000;
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();

    json_t *tr = stage_by_name(r, "mk-transform");
    cr_assert_not_null(tr, "a marker name is a stage");
    cr_assert_str_eq(json_string_value(json_object_get(tr, "source")), "marker");
    cr_assert_eq(json_integer_value(json_object_get(tr, "processes")), 2, "one stage across both processes");
    cr_assert_eq(json_integer_value(json_object_get(tr, "threads")), 2);
    cr_assert_float_eq(dget(tr, "thread_seconds", NULL), 3.0, 1e-6, "self time summed over processes");
    cr_assert_float_eq(dget(tr, "cpu_seconds", NULL), 2.85, 1e-6);
    cr_assert_float_eq(dget(tr, "wall_seconds", NULL), 2.8, 1e-6, "first begin 1.2 s to last end 4.0 s");
    json_t *ipc = json_object_get(tr, "ipc");
    cr_assert_eq(json_integer_value(json_object_get(ipc, "bytes")), 2001000, "bytes that crossed: those sent");
    cr_assert_eq(json_integer_value(json_object_get(ipc, "bytes_sent")), 2001000);
    cr_assert_eq(json_integer_value(json_object_get(ipc, "bytes_received")), 7000000);
    cr_assert_float_eq(dget(ipc, "seconds", NULL), 0.04, 1e-6);
    cr_assert_float_eq(dget(ipc, "fraction", NULL), 0.04 / (2.85 + 0.04), 1e-4, "IPC over busy time");
    cr_assert(json_is_true(json_object_get(ipc, "measured")));
    cr_assert_str_eq(json_string_value(json_object_get(tr, "class")), "cpu-bound");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(tr, "recommendation"), "model")), "processes");

    json_t *fe = stage_by_name(r, "mk-fetch");
    cr_assert_not_null(fe);
    cr_assert_eq(json_integer_value(json_object_get(fe, "processes")), 1);
    json_t *io = json_object_get(fe, "io");
    cr_assert_float_eq(dget(io, "wait_seconds", NULL), 1.9, 1e-6);
    cr_assert_float_eq(dget(io, "network_wait_seconds", NULL), 1.9, 1e-6);
    cr_assert_eq(json_integer_value(json_object_get(io, "bytes")), 60000);
    cr_assert_float_eq(dget(json_object_get(fe, "lock"), "wait_seconds", NULL), 0.05, 1e-6);
    cr_assert_str_eq(json_string_value(json_object_get(fe, "class")), "io-bound");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(fe, "recommendation"), "model")), "threads");

    json_t *ov = json_object_get(r, "overall");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ov, "recommendation"), "model")), "hybrid",
                     "marker stages that want different models make the run hybrid");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(ov, "ipc"), "bytes")), 5000000,
                 "overall IPC comes from the threads' own counters");
    json_decref(r);
}

Test(merge, join_wait_is_idle_not_lock_nor_work)
{
    write_run(500, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(500, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/j", 1, "j");
    struct prof_shm_thread *t = rec_thread(h, 500, "j", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 50 * MS);
    t->join_wait_ns = 1900 * MS;
    rec_thread(h, 501, "j", T0 + 50 * MS, T0 + 1950 * MS, PROF_THREAD_ENDED, 1850 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();

    json_t *ov = json_object_get(r, "overall");
    cr_assert_float_eq(dget(ov, "join_wait_seconds", NULL), 1.9, 1e-6);
    cr_assert_float_eq(dget(ov, "thread_seconds", NULL), 2.0, 1e-6, "3.9 s alive, less the 1.9 s joining");
    cr_assert_float_eq(dget(json_object_get(ov, "lock"), "wait_seconds", NULL), 0, 1e-9, "a join is not a lock wait");
    cr_assert_str_eq(json_string_value(json_object_get(ov, "class")), "cpu-bound",
                     "1.9 s of CPU in 2.0 s of non-idle thread time (3.9 s with the join would read mixed)");
    cr_assert_gt(dget(ov, "cpu_wall_ratio", NULL), 0.9);
    json_decref(r);
}

Test(merge, hottest_lock_prefers_a_mutex_over_a_semaphore)
{
    write_run(600, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(600, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/l", 1, "l");
    rec_thread(h, 600, "l", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * SEC);
    h->locks[0] = (struct prof_shm_lock){.addr = 0x2000, .kind = PROF_LOCK_SEM, .contended = 40, .acquisitions = 40,
                                         .wait_ns = 1500 * MS, .site = "executor_queue_get"};
    h->locks[1] = (struct prof_shm_lock){.addr = 0x3000, .kind = PROF_LOCK_MUTEX, .contended = 9, .acquisitions = 90,
                                         .wait_ns = 100 * MS, .hold_ns = 300 * MS, .site = "worker_update"};
    h->locks[2] = (struct prof_shm_lock){.addr = 0x4000, .kind = PROF_LOCK_COND, .contended = 3, .acquisitions = 3,
                                         .wait_ns = 1800 * MS, .site = "cond_idle"};
    rec_write(h, 0);
    /* Another process whose only contended lock is a semaphore with far more wait. */
    h = rec_new(610, 600, T0 + 10 * MS, T0 + 1900 * MS, PROF_END_EXIT, 0, 0, "/bin/m", 1, "m");
    rec_thread(h, 610, "m", T0 + 10 * MS, T0 + 1900 * MS, PROF_THREAD_ENDED, 1 * SEC);
    h->locks[0] = (struct prof_shm_lock){.addr = 0x5000, .kind = PROF_LOCK_SEM, .contended = 80, .acquisitions = 80,
                                         .wait_ns = 1800 * MS, .site = "other_sem"};
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();

    json_t *hot = json_object_get(json_object_get(json_object_get(r, "overall"), "lock"), "hottest");
    cr_assert(json_is_object(hot));
    cr_assert_str_eq(json_string_value(json_object_get(hot, "site")), "worker_update");
    cr_assert_eq(json_integer_value(json_object_get(hot, "pid")), 600);
    cr_assert_str_eq(json_string_value(json_object_get(hot, "kind")), "mutex");
    hot = json_object_get(json_object_get(stage_by_name(r, "m"), "lock"), "hottest");
    cr_assert(json_is_object(hot), "a semaphore is still reported when it is all there is");
    cr_assert_str_eq(json_string_value(json_object_get(hot, "site")), "other_sem");
    cr_assert_str_eq(json_string_value(json_object_get(hot, "kind")), "semaphore");
    json_decref(r);
}

Test(merge, the_gils_own_mutexes_are_never_the_hottest_lock)
{
    /* Waits on the GIL's mutexes before a GIL wait named them entered the table as a mutex's. */
    write_run(620, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(620, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, PROF_PROC_PYTHON,
                                        "/usr/bin/python3", 1, "python3");
    rec_thread(h, 620, "python3", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * SEC);
    h->gil_mutex = 0x7000;
    h->gil_switch_mutex = 0x7058;
    h->locks[0] = (struct prof_shm_lock){.addr = 0x7000, .kind = PROF_LOCK_MUTEX, .contended = 30, .acquisitions = 600,
                                         .wait_ns = 20 * MS, .site = "take_gil+0x58 (python3)"};
    h->locks[1] = (struct prof_shm_lock){.addr = 0x7058, .kind = PROF_LOCK_MUTEX, .contended = 5, .acquisitions = 400,
                                         .wait_ns = 1 * MS, .site = "drop_gil+0x20 (python3)"};
    h->locks[2] = (struct prof_shm_lock){.addr = 0x9000, .kind = PROF_LOCK_SEM, .contended = 31, .acquisitions = 31,
                                         .wait_ns = 700 * MS, .site = "0x2e17 (_multiprocessing.cpython-311-x86_64-linux-gnu.so)"};
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *hot = json_object_get(json_object_get(json_object_get(r, "overall"), "lock"), "hottest");
    cr_assert(json_is_object(hot));
    cr_assert_str_eq(json_string_value(json_object_get(hot, "kind")), "semaphore");

    /* The terminal names its module short and keeps the closing parenthesis. */
    char *buf = terminal_text(r);
    cr_assert(strstr(buf, "hottest lock: 0x2e17 (_multiprocessing) (semaphore, 0.700 s waited)"), "%s", buf);
    free(buf);
    json_decref(r);
}

Test(merge, handoff_waits_are_idle_like_joins_not_lock_waits)
{
    /* A 2 s process: a worker computing 1 s and waiting 0.2 s on a lock, and a main thread
     * that spent 1.5 s waiting on its queue for the worker's results. */
    write_run(630, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(630, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/h", 1, "h");
    struct prof_shm_thread *m = rec_thread(h, 630, "h", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 100 * MS);
    m->handoff_wait_ns = 1500 * MS;
    struct prof_shm_thread *w = rec_thread(h, 631, "worker", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * SEC);
    w->lock_wait_ns = 200 * MS;
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *ov = json_object_get(r, "overall");
    cr_assert_float_eq(dget(ov, "handoff_wait_seconds", NULL), 1.5, 1e-6);
    cr_assert_float_eq(dget(ov, "lock", "wait_seconds"), 0.2, 1e-6);
    /* thread time: 4 s of life, less the 1.5 s hand-off */
    cr_assert_float_eq(dget(ov, "thread_seconds", NULL), 2.5, 1e-6);
    cr_assert_float_eq(dget(stage_by_name(r, "worker"), "handoff_wait_seconds", NULL), 0.0, 1e-9);
    char *buf = terminal_text(r);
    cr_assert(strstr(buf, "idle: joins 0.00 s, hand-offs 1.50 s, event loop 0.00 s"), "%s", buf);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        cr_assert_leq(strlen(line), 80, "line too wide: %s", line);
    free(buf);
    json_decref(r);
}

Test(merge, a_python_processs_hottest_lock_is_named_by_the_code_that_waited)
{
    /* The shim timed a semaphore taken in an extension; the sampler saw two stacks wait on its
     * address, the longer through SemLock.__enter__ in Queue.get. */
    write_run(640, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(640, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, PROF_PROC_PYTHON,
                                        "/usr/bin/python3", 1, "python3");
    rec_thread(h, 640, "python3", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * SEC);
    rec_thread(h, 641, "python3", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * SEC);
    h->locks[0] = (struct prof_shm_lock){.addr = 0x9000, .kind = PROF_LOCK_SEM, .contended = 20, .acquisitions = 40,
                                         .wait_ns = 300 * MS, .site = "0x2e17 (_multiprocessing.so)"};
    rec_write(h, 0);
    write_monitor("V version=1\n");
    const char *smp = "V version=1\n"
                      "P t=1000000000000 pid=640 ppid=1 python=311 pyerr=\n"
                      "K id=1 native= py=SemLock.__enter__%09/usr/lib/python3.11/multiprocessing/synchronize.py%0995,"
                      "Queue.get%09/usr/lib/python3.11/multiprocessing/queues.py%09102,worker%09pool.py%09114\n"
                      "K id=2 native= py=put_back%09app.py%0940\n"
                      "C t=1001000000000 pid=640 tid=640 state=sync stack=1 addr=9000 n=20 ns=200000000\n"
                      "C t=1001000000000 pid=640 tid=641 state=sync stack=1 addr=9000 n=5 ns=50000000\n"
                      "C t=1001000000000 pid=640 tid=641 state=sync stack=2 addr=9000 n=12 ns=120000000\n";
    write_file("sampler.rec", smp, strlen(smp));
    json_t *r = report();
    json_t *hot = json_object_get(json_object_get(json_object_get(r, "overall"), "lock"), "hottest");
    cr_assert(json_is_object(hot));
    cr_assert_str_eq(json_string_value(json_object_get(hot, "python_site")), "Queue.get (queues.py:102)");
    cr_assert_str_eq(json_string_value(json_object_get(hot, "site")), "0x2e17 (_multiprocessing.so)");
    char *buf = terminal_text(r);
    cr_assert(strstr(buf, "hottest lock: Queue.get (queues.py:102) (semaphore, 0.300 s waited)"), "%s", buf);
    free(buf);
    json_decref(r);
}

/* A root that execs its program at 150 ms after short helpers (pyenv's shims); a helper of HELPER_MS. */
static json_t *launched_run(int helper_ms)
{
    write_run(700, T0 + 2 * SEC, 0);
    struct prof_shm_header *h =
        rec_new(700, 1, T0, T0 + 150 * MS, PROF_END_EXEC, 0, 0, "/usr/bin/bash", 2, "bash", "/root/.pyenv/shims/python3");
    /* bash read its helpers' output from pipes for 100 ms; CPU is cumulative across the exec */
    rec_thread(h, 700, "bash", T0, T0 + 150 * MS, PROF_THREAD_SNAPSHOT, 10 * MS)->ipc_ns = 100 * MS;
    rec_write(h, 0);
    h = rec_new(700, 1, T0 + 150 * MS, T0 + 2 * SEC, PROF_END_EXIT, 0, PROF_PROC_PYTHON, "/usr/bin/python3.11", 2,
                "python3", "x.py");
    rec_thread(h, 700, "python3", T0 + 150 * MS, T0 + 2 * SEC, PROF_THREAD_ENDED, 1810 * MS);
    rec_write(h, 0);
    for (int i = 0; i < 10; i++) {
        uint64_t s0 = T0 + (uint64_t)(10 + 12 * i) * MS, life = (uint64_t)(i == 0 ? helper_ms : 5) * MS;
        h = rec_new(710 + i, 700, s0, s0 + life, PROF_END_EXIT, 0, 0, "/usr/bin/readlink", 1, "readlink");
        rec_thread(h, 710 + i, "readlink", s0, s0 + life, PROF_THREAD_ENDED, life / 2);
        rec_write(h, 0);
    }
    write_monitor("V version=1\n");
    return report();
}

Test(merge, a_launchers_helpers_and_time_are_left_out_of_overall)
{
    json_t *r = launched_run(5);
    json_t *ov = json_object_get(r, "overall");
    cr_assert_eq(json_integer_value(json_object_get(ov, "processes")), 1, "the ten helpers are the launcher's");
    cr_assert_float_eq(dget(ov, "wall_seconds", NULL), 1.85, 1e-6);
    cr_assert_float_eq(dget(ov, "thread_seconds", NULL), 1.85, 1e-6);
    cr_assert_float_eq(dget(ov, "cpu_seconds", NULL), 1.8, 1e-6, "bash's 10 ms before the exec are the launcher's");
    cr_assert_float_eq(dget(ov, "ipc", "seconds"), 0.0, 1e-9, "and so are its pipe reads");
    cr_assert(has_string_containing(json_object_get(json_object_get(r, "measurement"), "notes"), "launcher"));
    cr_assert_eq(json_array_size(json_object_get(r, "processes")), 11, "every process is still listed");
    json_decref(r);
}

Test(merge, a_step_that_ran_before_the_last_exec_is_work_not_a_launcher)
{
    /* `prep; exec python3 x.py`: one process before the exec ran 120 ms, 60 ms of it on CPU. */
    json_t *r = launched_run(120);
    json_t *ov = json_object_get(r, "overall");
    cr_assert_eq(json_integer_value(json_object_get(ov, "processes")), 11);
    cr_assert_float_eq(dget(ov, "wall_seconds", NULL), 2.0, 1e-6);
    cr_assert(!has_string_containing(json_object_get(json_object_get(r, "measurement"), "notes"), "launcher"));
    json_decref(r);
}

/*
 * python3.13t with four threads, each 0.95 s on CPU and 0.95 s waiting for one of the two CPUs:
 * CPU-bound Python running in parallel. The sampler's P lines say first that the GIL is P1 (gil=1|0)
 * and then, later, P2: the last one stands. Its G lines say the threads held the GIL on held_cpu
 * of their 95 on-CPU ticks each.
 */
static json_t *free_threaded_run(int p1, int p2, int held_cpu)
{
    write_run(800, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(800, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, PROF_PROC_PYTHON,
                                        "/usr/bin/python3.13t", 2, "python3.13t", "burn.py");
    rec_thread(h, 800, "python3.13t", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 20 * MS)->join_wait_ns = 1970 * MS;
    for (int i = 0; i < 4; i++)
        rec_thread(h, 801 + i, "python3.13t", T0 + 10 * MS, T0 + 1990 * MS, PROF_THREAD_ENDED, 950 * MS)->runq_ns =
            950 * MS;
    rec_write(h, 0);
    write_monitor("V version=1\n");
    char smp[2048];
    int o = snprintf(smp, sizeof smp,
                     "V version=1\n"
                     "P t=1000000000000 pid=800 ppid=1 python=313 gil=%d pyerr=\n"
                     "P t=1000005000000 pid=800 ppid=1 python=313 gil=%d pyerr=\n",
                     p1, p2);
    for (int i = 0; i < 4; i++)
        o += snprintf(smp + o, sizeof smp - o,
                      "C t=1001990000000 pid=800 tid=%d state=running stack=0 n=95 ns=950000000\n"
                      "C t=1001990000000 pid=800 tid=%d state=runq stack=0 n=95 ns=950000000\n"
                      "G t=1001990000000 pid=800 tid=%d n=190 held=%d held_cpu=%d\n",
                      801 + i, 801 + i, 801 + i, held_cpu, held_cpu);
    write_file("sampler.rec", smp, (size_t)o);
    return report();
}

Test(merge, a_free_threaded_cpython_without_its_gil_has_no_gil_figures_and_parallel_threads)
{
    /* The GIL switched off after start (gil=1, then gil=0), and no tick held it. */
    json_t *r = free_threaded_run(1, 0, 0);
    json_t *p = proc_by_pid(r, 800);
    cr_assert_str_eq(json_string_value(json_object_get(p, "gil")), "absent");
    cr_assert_str_eq(json_string_value(json_object_get(p, "python_version")), "3.13");
    json_t *th = json_array_get(json_object_get(p, "threads"), 1);
    cr_assert(json_is_null(json_object_get(th, "gil_wait_seconds")), "a thread's GIL wait is absent, not 0");

    /* Every GIL figure of the stage is absent, not 0: no GIL was there to wait on or hold. */
    json_t *ov = json_object_get(r, "overall"), *lock = json_object_get(ov, "lock");
    cr_assert(json_is_null(json_object_get(lock, "gil")));
    cr_assert(json_is_null(json_object_get(lock, "gil_wait_seconds")));
    cr_assert(json_is_null(json_object_get(ov, "gil_held_share")), "0 of 380 ticks held no GIL that exists");
    cr_assert(json_is_null(json_object_get(json_object_get(ov, "states"), "gil")));
    json_t *wm = json_object_get(ov, "work_model");
    cr_assert(json_is_null(json_object_get(json_object_get(wm, "off_cpu_seconds"), "gil")));
    cr_assert(json_is_number(json_object_get(lock, "wait_seconds")), "lock waits are still measured");
    json_t *notes = json_object_get(json_object_get(r, "measurement"), "notes");
    cr_assert(has_string_containing(notes, "gil_absent: free-threaded CPython without its GIL (1 process, pid 800 first): "
                                           "GIL figures absent"));

    /* Four CPU-bound Python threads without a GIL or a lock: already parallel, so threads. */
    json_t *rec = json_object_get(ov, "recommendation");
    cr_assert_str_eq(json_string_value(json_object_get(ov, "class")), "cpu-bound");
    cr_assert_str_eq(json_string_value(json_object_get(rec, "model")), "threads");
    cr_assert_float_eq(dget(json_object_get(wm, "serial_fraction"), "threads", NULL), 0.0, 1e-9);
    cr_assert(has_string_containing(json_object_get(rec, "reasons"),
                                    "free-threaded build running without its GIL: its Python threads can run in parallel"));
    char *buf = terminal_text(r);
    cr_assert(strstr(buf, "GIL: absent (free-threaded CPython)"), "%s", buf);
    free(buf);
    json_decref(r);
}

Test(merge, a_gil_switched_on_at_run_time_is_present_and_serializes_the_threads)
{
    /* The same program whose GIL was switched on (gil=0, then gil=1) and held on every tick. */
    json_t *r = free_threaded_run(0, 1, 95);
    json_t *p = proc_by_pid(r, 800);
    cr_assert_str_eq(json_string_value(json_object_get(p, "gil")), "present");
    cr_assert(json_is_number(json_object_get(json_array_get(json_object_get(p, "threads"), 1), "gil_wait_seconds")));
    json_t *ov = json_object_get(r, "overall"), *lock = json_object_get(ov, "lock");
    cr_assert(json_is_true(json_object_get(lock, "gil")));
    cr_assert(json_is_number(json_object_get(lock, "gil_wait_seconds")));
    cr_assert_float_eq(dget(ov, "gil_held_share", NULL), 1.0, 1e-9);
    cr_assert(!has_string_containing(json_object_get(json_object_get(r, "measurement"), "notes"), "gil_absent"));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ov, "recommendation"), "model")), "processes");
    char *buf = terminal_text(r);
    cr_assert(!strstr(buf, "GIL: absent"), "%s", buf);
    free(buf);
    json_decref(r);
}

/*
 * A CPython opened by its _Py_DebugOffsets whose thread states then contradicted them: the
 * sampler's first P line says it read 3.99, the next refuses it. No stack was read, so the
 * refusal stands (the last P line), in the process, the notes and the stage's reasons.
 */
Test(merge, a_cpython_refused_after_it_was_opened_stays_refused)
{
    write_run(820, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(820, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, PROF_PROC_PYTHON,
                                        "/usr/bin/python3.99", 2, "python3.99", "burn.py");
    rec_thread(h, 820, "python3.99", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 20 * MS)->join_wait_ns = 1970 * MS;
    for (int i = 0; i < 2; i++)
        rec_thread(h, 821 + i, "python3.99", T0 + 10 * MS, T0 + 1990 * MS, PROF_THREAD_ENDED, 950 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n");
    static const char smp[] =
        "V version=1\n"
        "P t=1000000000000 pid=820 ppid=1 python=399 gil=1 pyerr=\n"
        "P t=1000030000000 pid=820 ppid=1 python=0 gil=1 "
        "pyerr=CPython%203.99%20is%20not%20supported%20(its%20thread%20states%20do%20not%20match%20the%20layout%20read)\n";
    write_file("sampler.rec", smp, sizeof smp - 1);
    json_t *r = report();
    const char *why = "CPython 3.99 is not supported (its thread states do not match the layout read)";
    cr_assert_str_eq(json_string_value(json_object_get(proc_by_pid(r, 820), "python_unsupported")), why);
    json_t *notes = json_object_get(json_object_get(r, "measurement"), "notes");
    cr_assert(has_string_containing(notes, "python_unsupported: CPython 3.99 is not supported"));
    json_t *rec = json_object_get(json_object_get(r, "overall"), "recommendation");
    cr_assert(has_string_containing(json_object_get(rec, "reasons"), "its CPython could not be read in 1 of its processes"));
    json_decref(r);
}

/*
 * Without the shim, a short-lived process the monitor's scans missed is known to the sampler
 * alone: its P lines (one per image: its fork's with the parent's name, its exec's with its
 * own) and its X line. It is in the report, named by its latest image, ended by its exit event.
 */
Test(merge, processes_only_the_sampler_saw_are_in_the_report)
{
    write_run(830, T0 + 1 * SEC, 0);
    struct prof_shm_header *h = rec_new(830, 1, T0, T0 + 900 * MS, PROF_END_EXIT, 0, 0, "/bin/sh", 1, "sh");
    rec_thread(h, 830, "sh", T0, T0 + 900 * MS, PROF_THREAD_ENDED, 10 * MS);
    rec_write(h, 0);
    write_monitor("V version=1\n");
    static const char smp[] = "V version=1\n"
                              "P t=1000000000000 pid=830 ppid=1 python=0 gil=1 pyerr=\n"
                              "P t=1000010000000 pid=831 ppid=830 python=0 gil=1 pyerr= exe=/bin/sh argv=sh\n"
                              "P t=1000020000000 pid=832 ppid=830 python=0 gil=1 pyerr= exe=/bin/sh argv=sh\n"
                              "P t=1000030000000 pid=831 ppid=830 python=0 gil=1 pyerr= exe=/usr/bin/md5sum argv=md5sum,a%20b\n"
                              "X t=1000040000000 pid=831 status=0\n"
                              "X t=1000050000000 pid=832 status=2304\n";
    write_file("sampler.rec", smp, sizeof smp - 1);
    json_t *r = report();
    cr_assert_eq(json_array_size(json_object_get(r, "processes")), 3);
    json_t *p831 = proc_by_pid(r, 831), *p832 = proc_by_pid(r, 832);
    cr_assert_eq(json_integer_value(json_object_get(p831, "ppid")), 830);
    cr_assert_str_eq(json_string_value(json_object_get(p831, "exe")), "/usr/bin/md5sum");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(p831, "argv"), 1)), "a b");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p832, "exit"), "source")), "sampler");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(p832, "exit"), "code")), 9);
    /* The top-level child: its status is poolprof's own (it reaped it), not the exit event's. */
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(proc_by_pid(r, 830), "exit"), "source")), "poolprof");
    json_t *errs = json_object_get(json_object_get(r, "measurement"), "errors");
    cr_assert(!has_string_containing(errs, "seen only by the sampler"));
    json_decref(r);
}
