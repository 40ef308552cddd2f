/* test_metrics.c: every figure of the metric table (format/metrics.h) is filled by a reader and reaches the report's JSON, at each level, and the schema. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "core/pipeline.h"
#include "core/run.h"
#include "format/metrics.h"
#include "prof.h"
#include "synth_run.h"

TestSuite(metrics, .init = setup, .fini = teardown);

/* obj["a"]["b"] for key "a.b", obj["a"] for "a". */
static json_t *at(json_t *obj, const char *key)
{
    char head[64];
    const char *dot = strchr(key, '.');
    if (!dot)
        return json_object_get(obj, key);
    snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
    return json_object_get(json_object_get(obj, head), dot + 1);
}

/* The schema of key "a.b" (or "a") inside object schema o, and whether o requires it. */
static json_t *schema_at(json_t *o, const char *key, int *required)
{
    char head[64];
    const char *dot = strchr(key, '.');
    if (dot) {
        snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
        o = json_object_get(json_object_get(o, "properties"), head);
        key = dot + 1;
    }
    size_t i;
    json_t *v;
    *required = 0;
    json_array_foreach(json_object_get(o, "required"), i, v)
        *required |= strcmp(json_string_value(v), key) == 0;
    return json_object_get(json_object_get(o, "properties"), key);
}

static void check_value(const struct prof_metric *mt, json_t *v, uint64_t want, const char *where)
{
    cr_assert_not_null(v, "%s: %s not in the report", mt->field, where);
    if (mt->unit == PROF_METRIC_NS) {
        cr_assert(json_is_real(v), "%s: %s is not seconds", mt->field, where);
        cr_assert(fabs(json_real_value(v) - (double)want / 1e9) < 1e-6, "%s: %s = %g, want %g", mt->field, where,
                  json_real_value(v), (double)want / 1e9);
    } else {
        cr_assert(json_is_integer(v), "%s: %s is not an integer", mt->field, where);
        cr_assert_eq((uint64_t)json_integer_value(v), want, "%s: %s", mt->field, where);
    }
}

static void check_schema(const struct prof_metric *mt, json_t *obj_schema, const char *key)
{
    int required;
    json_t *p = schema_at(obj_schema, key, &required);
    cr_assert_not_null(p, "%s: %s not in the schema", mt->field, key);
    cr_assert(required, "%s: %s not required by the schema", mt->field, key);
    const char *type = mt->unit == PROF_METRIC_NS ? "number" : "integer";
    json_t *t = json_object_get(p, "type");
    if (prof_metric_may_be_null((enum prof_metric_id)(mt - prof_metrics))) {
        /* A figure absent where what it measures does not exist (the GIL of a free-threaded CPython). */
        cr_assert(json_is_array(t) && json_array_size(t) == 2, "%s: %s admits no null", mt->field, key);
        cr_assert_str_eq(json_string_value(json_array_get(t, 0)), type);
        cr_assert_str_eq(json_string_value(json_array_get(t, 1)), "null");
    } else {
        cr_assert_str_eq(json_string_value(t), type);
    }
    cr_assert_str_eq(json_string_value(json_object_get(p, "description")), mt->description);
}

/*
 * One process with one thread whose shim record and monitor line set every field they have
 * to a distinct non-zero value. Then every figure of the table must have been filled (a line
 * added without its reader reads 0), show in the thread's JSON under thread_key and in
 * overall under stage_key with the same value (one thread: the stage's sum is its figure),
 * and sit in the generated schema at both places with the table's type and description.
 */
Test(metrics, every_figure_has_a_reader_and_reaches_the_json_and_the_schema)
{
    write_run(500, T0 + 2 * SEC, 0);
    struct prof_shm_header *h = rec_new(500, 1, T0, T0 + 2 * SEC, PROF_END_EXIT, 0, 0, "/bin/prog", 1, "prog");
    struct prof_shm_thread *t = rec_thread(h, 500, "prog", T0, T0 + 2 * SEC, PROF_THREAD_ENDED, 0);
    /* Every counter of the slot, from cpu_ns through stage_reserved, gets its own value. */
    uint64_t *first = &t->cpu_ns, *last = (uint64_t *)&t->stage_depth;
    for (uint64_t *p = first, k = 1; p < last; p++, k++)
        *p = k * 1000003;
    uint64_t *more = &t->ipc_sends;
    *more = 977;
    t->net_request_ns = 991; /* after the stage stack too */
    rec_write(h, 0);
    write_monitor("V version=1\nS t=1 interval_ms=20 ticks_per_sec=100 page_size=4096\n"
                  "N t=1000000000001 pid=500 ppid=1 exe=/bin/prog argv=prog static=0\n"
                  "T t=1000000000002 pid=500 tid=500 name=prog cpu=5 runq=6 slices=1 utime=7 stime=8 vcsw=9 ivcsw=10\n");

    struct prof_report *rep;
    int rc = prof_analyze(dir, &rep);
    cr_assert_eq(rc, 0, "prof_analyze: %s", prof_strerror(rc));
    cr_assert_eq(rep->run->nprocs, 1);
    const struct prof_thread *th = &rep->run->procs[0]->threads[0];
    json_t *jthread = json_array_get(json_object_get(json_array_get(json_object_get(rep->doc, "processes"), 0), "threads"), 0);
    json_t *joverall = json_object_get(rep->doc, "overall");

    char path[512];
    json_error_t err;
    snprintf(path, sizeof path, "%s/report.schema.json", POOLPROF_BUILD_DIR);
    json_t *schema = json_load_file(path, 0, &err);
    cr_assert_not_null(schema, "%s: %s", path, err.text);
    json_t *defs = json_object_get(schema, "$defs");

    for (size_t i = 0; i < PROF_METRIC_COUNT_; i++) {
        const struct prof_metric *mt = &prof_metrics[i];
        uint64_t v = mt->get(&th->c);
        cr_assert_neq(v, 0, "%s: no reader filled it", mt->field);
        cr_assert(mt->thread_key || mt->stage_key, "%s: reported nowhere", mt->field);
        if (mt->thread_key) {
            check_value(mt, at(jthread, mt->thread_key), v, mt->thread_key);
            check_schema(mt, json_object_get(defs, "thread"), mt->thread_key);
        }
        if (mt->stage_key) {
            check_value(mt, at(joverall, mt->stage_key), v, mt->stage_key);
            check_schema(mt, json_object_get(defs, "stage"), mt->stage_key);
        }
    }
    json_decref(schema);
    prof_report_free(rep);
}

/* The table's keys are unique at each level, and its rows name their own fields. */
Test(metrics, keys_are_unique)
{
    for (size_t i = 0; i < PROF_METRIC_COUNT_; i++)
        for (size_t k = i + 1; k < PROF_METRIC_COUNT_; k++) {
            const struct prof_metric *a = &prof_metrics[i], *b = &prof_metrics[k];
            cr_assert(!(a->thread_key && b->thread_key && strcmp(a->thread_key, b->thread_key) == 0), "%s", a->thread_key);
            cr_assert(!(a->stage_key && b->stage_key && strcmp(a->stage_key, b->stage_key) == 0), "%s", a->stage_key);
            cr_assert_str_neq(a->field, b->field);
        }
}
