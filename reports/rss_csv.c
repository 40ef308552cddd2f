/* rss_csv.c: the RSS renderer: every process's resident memory over the run, one CSV row per sample. */
#include <stdio.h>
#include <stdlib.h>

#include "core/run.h"
#include "prof.h"
#include "reports/render.h"

struct csv_row {
    uint64_t t_ns;
    int pid;
    uint64_t rss;
    int64_t pss; /* -1: no M line at that time */
};

static int cmp_row(const void *a, const void *b)
{
    const struct csv_row *x = a, *y = b;
    if (x->t_ns != y->t_ns)
        return x->t_ns < y->t_ns ? -1 : 1;
    return x->pid - y->pid;
}

static int render_rss_csv(const struct prof_report *r, FILE *out)
{
    if (!r || !r->run || !out)
        return PROF_EINVAL;
    const struct prof_run *m = r->run;
    size_t n = 0, o = 0;
    for (size_t i = 0; i < m->nprocs; i++)
        n += m->procs[i]->nrss;
    struct csv_row *rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows)
        return PROF_ENOMEM;
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct prof_process *p = m->procs[i];
        size_t k = 0;
        for (size_t j = 0; j < p->nrss; j++) {
            while (k < p->nmem && p->mem[k].t_ns < p->rss[j].t_ns)
                k++;
            rows[o++] = (struct csv_row){p->rss[j].t_ns, p->pid, p->rss[j].rss,
                                         k < p->nmem && p->mem[k].t_ns == p->rss[j].t_ns ? (int64_t)p->mem[k].pss : -1};
        }
    }
    qsort(rows, o, sizeof *rows, cmp_row);
    fputs("t_seconds,pid,rss_bytes,pss_bytes\n", out);
    for (size_t i = 0; i < o; i++) {
        fprintf(out, "%.6f,%d,%llu,", prof_run_seconds(m, rows[i].t_ns), rows[i].pid, (unsigned long long)rows[i].rss);
        if (rows[i].pss >= 0)
            fprintf(out, "%lld", (long long)rows[i].pss);
        fputc('\n', out);
    }
    free(rows);
    return ferror(out) ? PROF_EIO : 0;
}

const struct prof_renderer prof_render_rss_csv = {
    .name = "rss-csv",
    .summary = "resident memory per process over time: t_seconds,pid,rss_bytes,pss_bytes",
    .rundir_file = "rss.csv",
    .needs_run = 1,
    .render = render_rss_csv,
};
