/* test_merge_locks.c: every contended lock of a process reaches processes[].locks[] from synthetic shim records: order, owner changes, images summed, the GIL left out, the cap named. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
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
#include "core/report.h"

TestSuite(merge_locks, .init = setup, .fini = teardown);

static json_t *report(void)
{
    struct prof_report *rep = NULL;
    int rc = prof_analyze(dir, &rep);
    cr_assert_eq(rc, 0, "prof_analyze: %s", prof_strerror(rc));
    json_t *r = json_incref(rep->doc);
    prof_report_free(rep);
    return r;
}

static json_t *locks_of(json_t *r, int pid)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "processes"), i, p)
        if (json_integer_value(json_object_get(p, "pid")) == pid)
            return json_object_get(p, "locks");
    cr_assert_fail("no process %d in the report", pid);
    return NULL;
}

static long long iget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "%s is not an integer", k);
    return json_integer_value(v);
}

static double dget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_number(v), "%s is not a number", k);
    return json_number_value(v);
}

Test(merge_locks, every_contended_lock_is_listed_most_wait_first_without_the_gil)
{
    write_run(700, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(700, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/l", 1, "l");
    rec_thread(h, 700, "l", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * SEC);
    h->gil_mutex = 0x7000;
    h->locks[0] = (struct prof_shm_lock){.addr = 0x2000, .kind = PROF_LOCK_SEM, .contended = 40, .acquisitions = 40,
                                         .wait_ns = 1500 * MS, .site = "executor_queue_get"};
    h->locks[1] = (struct prof_shm_lock){.addr = 0x3000, .kind = PROF_LOCK_MUTEX, .contended = 9, .acquisitions = 90,
                                         .wait_ns = 100 * MS, .hold_ns = 300 * MS, .owner_changes = 17,
                                         .site = "worker_update"};
    h->locks[2] = (struct prof_shm_lock){.addr = 0x7000, .kind = PROF_LOCK_MUTEX, .contended = 30, .acquisitions = 600,
                                         .wait_ns = 900 * MS, .site = "take_gil+0x58 (python3)"};
    h->locks[3] = (struct prof_shm_lock){.addr = 0x4000, .kind = PROF_LOCK_MUTEX, .contended = 2, .acquisitions = 5,
                                         .wait_ns = 0, .site_pc = 0x1234};
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *l = locks_of(r, 700);

    cr_assert_eq(json_array_size(l), 3, "the GIL's mutex is the GIL, not a lock site: %zu", json_array_size(l));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "site")), "executor_queue_get");
    json_t *w = json_array_get(l, 1);
    cr_assert_str_eq(json_string_value(json_object_get(w, "site")), "worker_update");
    cr_assert_str_eq(json_string_value(json_object_get(w, "kind")), "mutex");
    cr_assert_eq(iget(w, "owner_changes"), 17);
    cr_assert_eq(iget(w, "contended"), 9);
    cr_assert_eq(iget(w, "acquisitions"), 90);
    cr_assert_eq(iget(w, "address"), 0x3000);
    cr_assert_float_eq(dget(w, "wait_seconds"), 0.1, 1e-9);
    cr_assert_float_eq(dget(w, "hold_seconds"), 0.3, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 2), "site")), "0x1234",
                     "an unsymbolised site is its return address");

    /* The hottest is the serializing lock, and carries its owner changes too. */
    json_t *hot = json_object_get(json_object_get(json_object_get(r, "overall"), "lock"), "hottest");
    cr_assert_eq(iget(hot, "owner_changes"), 17);
    json_decref(r);
}

Test(merge_locks, a_lock_in_two_images_of_a_process_is_one_row_summed)
{
    write_run(710, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(710, 1, T0, 0, 0, 0, 0, "/bin/sh", 1, "sh");
    rec_thread(h, 710, "sh", T0, T0 + SEC, PROF_THREAD_ENDED, SEC / 2);
    h->locks[0] = (struct prof_shm_lock){.addr = 0x5000, .kind = PROF_LOCK_MUTEX, .contended = 3, .acquisitions = 10,
                                         .wait_ns = 30 * MS, .owner_changes = 4, .site = "f+0x1 (a)"};
    rec_write(h, 0);
    h = rec_new(710, 1, T0 + SEC, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/l", 1, "l");
    rec_thread(h, 710, "l", T0 + SEC, T0 + 2 * SEC, PROF_THREAD_ENDED, SEC / 2);
    h->locks[0] = (struct prof_shm_lock){.addr = 0x5000, .kind = PROF_LOCK_MUTEX, .contended = 5, .acquisitions = 20,
                                         .wait_ns = 50 * MS, .owner_changes = 6, .site = "f+0x1 (a)"};
    h->locks[1] = (struct prof_shm_lock){.addr = 0x5000, .kind = PROF_LOCK_MUTEX, .contended = 1, .acquisitions = 1,
                                         .wait_ns = 1 * MS, .site = "g+0x2 (b)"};
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *l = locks_of(r, 710);

    cr_assert_eq(json_array_size(l), 2, "same address and site: one row; another site: its own");
    json_t *a = json_array_get(l, 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "site")), "f+0x1 (a)");
    cr_assert_eq(iget(a, "contended"), 8);
    cr_assert_eq(iget(a, "acquisitions"), 30);
    cr_assert_eq(iget(a, "owner_changes"), 10);
    cr_assert_float_eq(dget(a, "wait_seconds"), 0.08, 1e-9);
    json_decref(r);
}

Test(merge_locks, past_the_cap_the_locks_left_out_are_named)
{
    int n = PROF_REPORT_MAX_LOCKS + 8;
    write_run(720, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(720, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/l", 1, "l");
    rec_thread(h, 720, "l", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 1 * SEC);
    for (int i = 0; i < n; i++) {
        h->locks[i] = (struct prof_shm_lock){.addr = 0x1000 + 0x40 * (uint64_t)i, .kind = PROF_LOCK_MUTEX,
                                             .contended = 1, .acquisitions = 1, .wait_ns = (uint64_t)(i + 1) * MS};
        snprintf(h->locks[i].site, sizeof h->locks[i].site, "site%d", i);
    }
    rec_write(h, 0);
    write_monitor("V version=1\n");
    json_t *r = report();
    json_t *l = locks_of(r, 720);

    cr_assert_eq(json_array_size(l), PROF_REPORT_MAX_LOCKS);
    char want[32];
    snprintf(want, sizeof want, "site%d", n - 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "site")), want, "most wait first");
    /* Left out: the 8 with 1..8 ms of wait, 36 ms in all. */
    json_t *notes = json_object_get(json_object_get(r, "measurement"), "notes"), *v;
    size_t i;
    int named = 0;
    json_array_foreach(notes, i, v) {
        const char *s = json_string_value(v);
        if (strstr(s, "at most 32 per process") && strstr(s, "8 lock sites with 0.036 s of wait left out") &&
            strstr(s, "pid 720"))
            named = 1;
    }
    cr_assert(named, "the cap and what it cut are named in measurement.notes");
    json_decref(r);
}
