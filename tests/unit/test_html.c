/* test_html.c: the HTML renderer's escapers, and an hour's run of many threads and stacks rendered under 5 MB with a lane for every thread. */
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

/* 120 threads switching state every 100 ms for an hour, 30 000 distinct Python stacks. */
static struct prof_run *hour(void)
{
    struct prof_run *m = calloc(1, sizeof *m);
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
    json_t *doc = json_pack("{s:[s], s:f, s:{s:s, s:s, s:{s:s, s:i}}, s:[], s:[], s:{}}", "command", "python3", "wall_seconds",
                            3600.0, "overall", "name", "overall", "source", "overall", "recommendation", "model",
                            "processes", "workers", 4, "stages", "processes", "measurement");
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
    size_t lanes = 0;
    for (const char *p = buf; (p = strstr(p, "data-tid=\"")); p++)
        lanes++;
    cr_assert_eq(lanes, NPROC * NTHR, "a lane for each of %d threads, got %zu", NPROC * NTHR, lanes);
    cr_assert(strstr(buf, "on-CPU flame graph: ") != NULL, "the flame graph's cap is noted");
    cr_assert(strstr(buf, "timeline: stretches shorter than") != NULL, "the lanes' merge is noted");
    free(buf);
    json_decref(doc);
}
