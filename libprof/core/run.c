/* run.c: the merged run's own functions: lookup, the RSS series of a set of processes, notes, freeing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run.h"
#include "core/samples.h"
#include "format/utf8.h"
#include "prof.h"

#define DEFAULT_INTERVAL_MS 20

void prof_note(json_t *arr, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(arr, prof_json_text(buf));
}

int prof_lock_kind_serializes(uint32_t kind)
{
    return kind == PROF_LOCK_MUTEX || kind == PROF_LOCK_RWLOCK || kind == PROF_LOCK_SPIN;
}

struct prof_process *prof_run_process(const struct prof_run *m, int pid)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i]->pid == pid)
            return m->procs[i];
    return NULL;
}

const struct prof_thread *prof_run_thread(const struct prof_process *p, int tid)
{
    for (size_t i = 0; p && i < p->nthreads; i++)
        if (p->threads[i].tid == tid)
            return &p->threads[i];
    return NULL;
}

int prof_run_rss_series(const struct prof_run *m, struct prof_process *const *procs, size_t nprocs,
                        double **t, uint64_t **rss, size_t *n)
{
    uint64_t iv = (uint64_t)(m->interval_ms > 0 ? m->interval_ms : DEFAULT_INTERVAL_MS) * 1000000ull;
    uint64_t lo = UINT64_MAX, hi = 0;

    *t = NULL;
    *rss = NULL;
    *n = 0;
    for (size_t i = 0; i < nprocs; i++)
        if (procs[i]->nrss) {
            lo = procs[i]->rss[0].t_ns < lo ? procs[i]->rss[0].t_ns : lo;
            uint64_t last = procs[i]->rss[procs[i]->nrss - 1].t_ns;
            hi = last > hi ? last : hi;
        }
    if (lo == UINT64_MAX)
        return 0;
    /* Samples of one sweep carry slightly different times: bucket them by the interval, to the
     * nearest bucket. Truncating put a sample 1 ms early into the bucket before it, where the
     * next one replaced it: a leak's peak vanished, its exit fall looked like churn, and a
     * steady 270 MB climb read "no leak" in 2 runs of 12. */
    size_t nb = (size_t)((hi - lo + iv / 2) / iv) + 1;
    if (nb > 50000000)
        return PROF_ERANGE;
    uint64_t *tot = calloc(nb, sizeof *tot);
    double *tt = malloc(nb * sizeof *tt);
    unsigned char *has = calloc(nb, 1);
    if (!tot || !tt || !has) {
        free(tot);
        free(tt);
        free(has);
        return PROF_ENOMEM;
    }
    for (size_t i = 0; i < nprocs; i++) {
        const struct prof_process *p = procs[i];
        if (!p->nrss)
            continue;
        size_t k = 0;
        size_t b0 = (size_t)((p->rss[0].t_ns - lo + iv / 2) / iv), b1 = (size_t)((p->rss[p->nrss - 1].t_ns - lo + iv / 2) / iv);
        uint64_t cur = p->rss[0].rss;
        for (size_t b = b0; b <= b1; b++) {
            /* The last sample inside bucket b, else the previous value carried forward. */
            while (k < p->nrss && (p->rss[k].t_ns - lo + iv / 2) / iv <= b)
                cur = p->rss[k++].rss;
            tot[b] += cur;
            has[b] = 1;
        }
    }
    size_t o = 0;
    for (size_t b = 0; b < nb; b++)
        if (has[b]) {
            tt[o] = prof_run_seconds(m, lo + b * iv);
            tot[o] = tot[b];
            o++;
        }
    free(has);
    *t = tt;
    *rss = tot;
    *n = o;
    return 0;
}

void prof_run_free(struct prof_run *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        for (size_t k = 0; k < p->nimages; k++) {
            for (int a = 0; a < p->images[k].argc; a++)
                free(p->images[k].argv[a]);
            free(p->images[k].argv);
            free(p->images[k].exe);
        }
        free(p->images);
        for (size_t t = 0; t < p->nthreads; t++)
            free(p->threads[t].spans);
        free(p->threads);
        free(p->rss);
        free(p->mem);
        free(p->role);
        free(p->python_refused);
        free(p->markers);
        free(p->locks);
        free(p);
    }
    free(m->procs);
    free(m->rundir);
    prof_samples_free(m->samples);
    json_decref(m->sampler);
    json_decref(m->run);
    json_decref(m->sweep);
    json_decref(m->notes);
    json_decref(m->errors);
    memset(m, 0, sizeof *m);
}

json_t *prof_json_text(const char *s)
{
    if (!s)
        return json_string("");
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s), o = 0;
    char *t = malloc(3 * n + 1);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = prof_utf8_decode(s + i, n - i, &cp);
        if (len) {
            memcpy(t + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(t + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3;
            i++;
        }
    }
    t[o] = '\0';
    j = json_string(t);
    free(t);
    return j;
}


int prof_run_counter_of(const struct prof_run *m, const char *role)
{
    for (size_t i = 0; i < m->ncounters; i++)
        if (strcmp(m->counters[i].role, role) == 0 && strcmp(m->counters[i].source, "none") != 0)
            return (int)i;
    return -1;
}

uint64_t prof_thread_ctr_value(const struct prof_thread *t, size_t i, int *ok, double *running)
{
    const uint64_t *v = t->ctr[i];
    *ok = 0;
    if (running)
        *running = 1;
    if (i >= PROF_CTRREC_MAX || !(t->ctr_mask & (1ull << i)))
        return 0;
    /* enabled 0: read from /proc, or never enabled (a value of 0 then). */
    if (v[1] == 0 || v[2] >= v[1]) {
        *ok = 1;
        return v[0];
    }
    if (v[2] == 0)
        return 0; /* enabled but never on a counter: nothing is known */
    *ok = 1;
    if (running)
        *running = (double)v[2] / (double)v[1];
    return (uint64_t)((double)v[0] * (double)v[1] / (double)v[2]);
}
