/* test_html.c: the HTML renderer's escapers, an hour's run of many threads, stacks and counters rendered under 5 MB with a lane for every thread, and the counters' thread table capped with its names escaped. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run.h"
#include "core/samples.h"
#include "prof.h"
#include "reports/html.h"
#include "reports/render.h"

static char *text_of(const char *s)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    prof_html_text(f, s);
    fclose(f);
    return buf;
}

Test(html, text_escapes_markup_quotes_controls_and_bad_utf8)
{
    char *got = text_of("<a href=\"x\" t='y'>&\x1b[31m\n\x7f caf\xc3\xa9 cut\xe2\x82");
    cr_assert_str_eq(got, "&lt;a href=&quot;x&quot; t=&#39;y&#39;&gt;&amp;&#x241B;[31m&#x240A;&#x2421; caf\xc3\xa9 "
                          "cut\xEF\xBF\xBD\xEF\xBF\xBD");
    free(got);
    /* an overlong '<' (C0 BC) is not UTF-8: it must not come back as '<' */
    got = text_of("\xc0\xbcscript");
    cr_assert_str_eq(got, "\xEF\xBF\xBD\xEF\xBF\xBDscript");
    free(got);
}

Test(html, json_block_cannot_close_its_element)
{
    json_t *v = json_pack("{s:s}", "a", "</script><!--&\xe2\x80\xa8");
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cr_assert_eq(prof_html_json(f, v), 0);
    fclose(f);
    cr_assert_str_eq(buf, "{\"a\":\"\\u003c/script\\u003e\\u003c!--\\u0026\\u2028\"}");
    free(buf);
    json_decref(v);
    json_t *s = prof_json_text("bad\xe2\x82");
    cr_assert_str_eq(json_string_value(s), "bad\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(s);
}

#define HOUR_NS 3600000000000ull
#define NPROC 20
#define NTHR 6  /* per process: 120 threads */
#define SPAN_NS 100000000ull
#define NSTACKS 30000

/* The default set's four events, named as the run lists them, and a thread's counts of them (i + 1) * base. */
static void default_counters(struct prof_run *m)
{
    const char *names[] = {"perf::CONTEXT-SWITCHES", "perf::CPU-MIGRATIONS", "perf::MINOR-FAULTS", "perf::MAJOR-FAULTS"};
    m->counters_present = 1;
    m->ncounters = 4;
    for (size_t i = 0; i < 4; i++) {
        snprintf(m->counters[i].name, sizeof m->counters[i].name, "%s", names[i]);
        snprintf(m->counters[i].source, sizeof m->counters[i].source, "perf");
    }
}

static void count(struct prof_thread *t, size_t nev, uint64_t base)
{
    t->ctr_born = 1;
    for (size_t i = 0; i < nev; i++) {
        t->ctr_mask |= 1ull << i;
        t->ctr[i][0] = (i + 1) * base;
    }
}

/* 120 threads switching state every 100 ms for an hour, 30 000 distinct Python stacks, each thread counted. */
static struct prof_run *hour(void)
{
    struct prof_run *m = calloc(1, sizeof *m);
    default_counters(m);
    m->start_ns = 1000;
    m->end_ns = m->start_ns + HOUR_NS;
    m->wall_s = 3600;
    m->interval_ms = 20;
    m->nprocs = NPROC;
    m->procs = calloc(NPROC, sizeof *m->procs);
    for (int i = 0; i < NPROC; i++) {
        struct prof_process *p = m->procs[i] = calloc(1, sizeof *p);
        p->pid = 1000 + i;
        snprintf(p->comm, sizeof p->comm, "worker%d", i);
        p->role = strdup("python3 work.py");
        p->end_s = 3600;
        p->nthreads = NTHR;
        p->threads = calloc(NTHR, sizeof *p->threads);
        for (int j = 0; j < NTHR; j++) {
            struct prof_thread *t = &p->threads[j];
            t->tid = p->pid * 10 + j;
            snprintf(t->name, sizeof t->name, "t%d", j);
            t->end_s = 3600;
            count(t, m->ncounters, 123456789);
            t->nspans = HOUR_NS / SPAN_NS;
            t->spans = malloc(t->nspans * sizeof *t->spans);
            for (size_t k = 0; k < t->nspans; k++)
                t->spans[k] = (struct prof_span){m->start_ns + k * SPAN_NS, m->start_ns + (k + 1) * SPAN_NS,
                                                 (uint8_t)((k * 7 + j) % PROF_TS_COUNT)};
        }
        p->nrss = HOUR_NS / 20000000ull;
        p->rss = malloc(p->nrss * sizeof *p->rss);
        for (size_t k = 0; k < p->nrss; k++)
            p->rss[k] = (struct prof_rss_sample){m->start_ns + k * 20000000ull, 100000000ull + k * 100};
        p->rss_peak = p->rss[p->nrss - 1].rss;
    }
    struct prof_samples *S = m->samples = calloc(1, sizeof *S);
    S->nstacks = S->nent = NSTACKS;
    S->stacks = calloc(NSTACKS, sizeof *S->stacks);
    S->ent = calloc(NSTACKS, sizeof *S->ent);
    for (int i = 0; i < NSTACKS; i++) {
        struct prof_sstack *st = &S->stacks[i];
        st->id = (uint32_t)i + 1;
        st->npy = 3;
        st->py = calloc(3, sizeof *st->py);
        char q[64];
        for (int k = 0; k < 3; k++) {
            snprintf(q, sizeof q, k == 0 ? "leaf_%d" : k == 1 ? "mid_%d" : "main", k == 0 ? i : i % 300);
            st->py[k] = (struct prof_sframe_py){strdup(q), strdup("/srv/work.py"), 10 + k};
        }
        S->ent[i] = (struct prof_sentry){.pid = 1000 + i % NPROC, .tid = (1000 + i % NPROC) * 10, .state = PROF_TS_RUNNING,
                                         .stack = st->id, .n = 1 + (uint64_t)(i % 5), .ns = 1000000};
    }
    return m;
}

Test(html, an_hours_run_stays_under_5_MB_with_every_thread)
{
    struct prof_run *m = hour();
    json_t *doc = json_pack("{s:[s], s:f, s:{s:s, s:s, s:{s:s, s:i}}, s:[], s:[], s:{s:[{s:s, s:s, s:b}]}}", "command",
                            "python3", "wall_seconds", 3600.0, "overall", "name", "overall", "source", "overall",
                            "recommendation", "model", "processes", "workers", 4, "stages", "processes", "measurement",
                            "counters", "event", "perf::CONTEXT-SWITCHES", "source", "perf", "measured", 1);
    struct prof_report r = {.doc = doc, .run = m};
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cr_assert_eq(prof_render(&prof_render_html, &r, f), 0);
    fclose(f);
    if (getenv("HTML_OUT")) {
        FILE *o = fopen(getenv("HTML_OUT"), "w");
        fwrite(buf, 1, n, o);
        fclose(o);
    }
    cr_assert_lt(n, 5000000, "an hour's page is %zu bytes", n);
    size_t lanes = 0, rows = 0;
    for (const char *p = buf; (p = strstr(p, "data-lane=\"")); p++)
        lanes++;
    for (const char *p = strstr(buf, "class=\"ctr-threads\""); p && (p = strstr(p, "<tr data-pid=")); p++)
        rows++;
    cr_assert_eq(lanes, NPROC * NTHR, "a lane for each of %d threads, got %zu", NPROC * NTHR, lanes);
    cr_assert_eq(rows, NPROC * NTHR, "a counters row for each of %d threads, got %zu", NPROC * NTHR, rows);
    cr_assert(strstr(buf, "; counters: perf::CONTEXT-SWITCHES 123,456,789, perf::CPU-MIGRATIONS 246,913,578") != NULL,
              "a lane's tooltip has its thread's counts");
    cr_assert(strstr(buf, "on-CPU flame graph: ") != NULL, "the flame graph's cap is noted");
    cr_assert(strstr(buf, "timeline: stretches shorter than") != NULL, "the lanes' merge is noted");
    free(buf);
    json_decref(doc);
}

/* 2,100 threads, counted by an event whose name is markup and by a multiplexed one: the thread table stops at
 * 2,000 rows and says where the rest are; the name is text wherever it appears; a scaled count is marked. */
Test(html, counters_thread_table_is_capped_and_names_are_text)
{
    const char *evil = "<img src=x onerror=\"alert(1)\">";
    struct prof_run *m = calloc(1, sizeof *m);
    m->start_ns = 1000;
    m->end_ns = 2000000000;
    m->wall_s = 2;
    m->counters_present = 1;
    m->ncounters = 2;
    snprintf(m->counters[0].name, sizeof m->counters[0].name, "%s", evil);
    snprintf(m->counters[0].source, sizeof m->counters[0].source, "raw");
    snprintf(m->counters[1].name, sizeof m->counters[1].name, "cycles");
    snprintf(m->counters[1].source, sizeof m->counters[1].source, "perf");
    m->nprocs = 1;
    m->procs = calloc(1, sizeof *m->procs);
    struct prof_process *p = m->procs[0] = calloc(1, sizeof *p);
    p->pid = 100;
    p->nthreads = 2100;
    p->threads = calloc(p->nthreads, sizeof *p->threads);
    for (size_t j = 0; j < p->nthreads; j++) {
        struct prof_thread *t = &p->threads[j];
        t->tid = 100 + (int)j;
        t->end_s = 2;
        count(t, 2, 1000);
        /* cycles on a PMU shared with other events: running a quarter of its enabled time, scaled by 4 */
        t->ctr[1][1] = 400;
        t->ctr[1][2] = 100;
        t->ctr_born = j > 0;
    }
    json_t *doc = json_pack("{s:[s], s:f, s:{s:s, s:s, s:{s:s, s:i}}, s:[], s:[], s:{s:[{s:s, s:s, s:b, s:s}]}}",
                            "command", "x", "wall_seconds", 2.0, "overall", "name", "overall", "source", "overall",
                            "recommendation", "model", "threads", "workers", 1, "stages", "processes", "measurement",
                            "counters", "event", evil, "source", "none", "measured", 0, "reason", "<b>no</b>");
    struct prof_report r = {.doc = doc, .run = m};
    char *buf = NULL;
    size_t n = 0, rows = 0;
    FILE *f = open_memstream(&buf, &n);
    cr_assert_eq(prof_render(&prof_render_html, &r, f), 0);
    fclose(f);
    for (const char *q = strstr(buf, "class=\"ctr-threads\""); q && (q = strstr(q, "<tr data-pid=")); q++)
        rows++;
    cr_assert_eq(rows, 2000, "the thread table stops at 2,000 rows, got %zu", rows);
    cr_assert(strstr(buf, "100 more threads counted: their counts are in each lane's tooltip and in report.json.") != NULL);
    cr_assert_null(strstr(buf, "<img"), "the event's name is never markup");
    cr_assert_null(strstr(buf, "<b>no"), "nor is its reason");
    cr_assert(strstr(buf, "<th>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</th>") != NULL, "a column named as text");
    cr_assert(strstr(buf, "<td class=\"reason\">not counted: &lt;b&gt;no&lt;/b&gt;</td>") != NULL, "the reason as text");
    cr_assert(strstr(buf, "<td>8,000 <span class=\"mark\" title=\"scaled: ") != NULL, "a scaled count marked: 2,000 x 4");
    cr_assert(strstr(buf, "(tid 100): 0.000 s to 2.000 s, not sampled; counters: &lt;img src=x onerror=&quot;alert(1)&quot;&gt; "
                          "1,000, cycles ~8,000 (counted from when poolprof first saw it running)\"") != NULL,
              "the first lane's tooltip: its counts, the scaled one marked, counted late");
    free(buf);
    json_decref(doc);
}
