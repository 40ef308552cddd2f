/* report_counters.c: the report's perf counters: which events were counted and how (measurement.counters), per thread and per stage. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/report_int.h"

static json_t *jstr_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *jround(double x, double scale)
{
    return json_real(round(x * scale) / scale);
}

json_t *prof_report_counters_run(const struct prof_run *m, const struct prof_stages *S)
{
    json_t *a = json_array();
    const struct prof_stage *all = &S->overall;

    for (size_t i = 0; i < m->ncounters; i++) {
        const struct prof_run_counter *k = &m->counters[i];
        const struct prof_stage_ctr *c = &all->ctr[i];
        int none = strcmp(k->source, "none") == 0;
        char reason[320];
        snprintf(reason, sizeof reason, "%s", k->reason);
        /* Counted nowhere although it resolved: say why in the event's own words. */
        if (!none && c->counted == 0 && !reason[0])
            snprintf(reason, sizeof reason, "%s",
                     strcmp(k->source, "proc") == 0 ? "no thread was read in /proc"
                     : k->tasks_failed           ? "it opened for no task of the tree"
                                                 : "no task of the tree was counted");
        if (k->tasks_failed) {
            size_t n = strlen(reason);
            snprintf(reason + n, sizeof reason - n, "%sdid not open for %llu task%s (%s)", n ? "; " : "",
                     (unsigned long long)k->tasks_failed, k->tasks_failed == 1 ? "" : "s", strerrorname_np(k->fail_errno)
                                                                                       ? strerrorname_np(k->fail_errno)
                                                                                       : "error");
        }
        int measured = !none && c->counted > 0;
        json_array_append_new(
            a, json_pack("{s:s, s:o, s:o, s:s, s:b, s:b, s:b, s:b, s:b, s:o, s:i, s:i, s:i, s:o}", "event", k->name,
                         "fstr", jstr_or_null(k->fstr), "role", jstr_or_null(k->role), "source", k->source, "hardware",
                         k->hardware, "default", k->is_default, "user_only", k->user_only, "measured", measured,
                         "scaled", c->scaled > 0, "min_running_fraction",
                         measured ? jround(c->min_running, 1e4) : json_null(), "threads_counted", c->counted,
                         "threads_partial", c->partial, "threads_not_counted",
                         all->ctr_threads > c->counted ? all->ctr_threads - c->counted : 0, "reason",
                         jstr_or_null(reason)));
    }
    return a;
}

json_t *prof_report_counters_thread(const struct prof_run *m, const struct prof_thread *t)
{
    if (!t->ctr_mask)
        return json_null();
    json_t *o = json_object();
    for (size_t i = 0; i < m->ncounters; i++) {
        int ok;
        uint64_t v = prof_thread_ctr_value(t, i, &ok, NULL);
        if (ok)
            json_object_set_new(o, m->counters[i].name, json_integer((json_int_t)v));
    }
    return o;
}

json_t *prof_report_counters_stage(const struct prof_run *m, const struct prof_stage *s)
{
    if (!m->counters_present || strcmp(s->source, "marker") == 0)
        return json_null();
    json_t *a = json_array();
    double cpu_s = s->fig.cpu_s;
    for (size_t i = 0; i < m->ncounters; i++) {
        const struct prof_stage_ctr *c = &s->ctr[i];
        if (!c->counted)
            continue;
        const struct prof_run_counter *k = &m->counters[i];
        json_array_append_new(
            a, json_pack("{s:s, s:o, s:I, s:o, s:b, s:i, s:i, s:i}", "event", k->name, "role", jstr_or_null(k->role),
                         "value", (json_int_t)c->value, "per_cpu_second",
                         cpu_s > 1e-3 ? jround((double)c->value / cpu_s, 10) : json_null(), "scaled",
                         c->min_running < PROF_CTR_SCALED_BELOW, "threads_counted", c->counted, "threads_partial", c->partial,
                         "threads_not_counted", s->ctr_threads > c->counted ? s->ctr_threads - c->counted : 0));
    }
    return a;
}
