/* folded.c: the folded-stack renderers (flame graph input): on-CPU samples per stack, and off-CPU time per stack with the state as the leaf, each under stage;process;thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "core/run.h"
#include "core/samples.h"
#include "prof.h"
#include "reports/render.h"

/* Append frame text to a folded line; ';', spaces and line ends would break the format. */
static void put_frame(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 2 >= *cap) {
        size_t nc = (*cap + n + 2) * 2;
        char *b = realloc(*buf, nc);
        if (!b)
            return;
        *buf = b;
        *cap = nc;
    }
    if (*len)
        (*buf)[(*len)++] = ';';
    for (size_t i = 0; i < n; i++)
        (*buf)[(*len)++] = s[i] == ';' ? ':' : s[i] == ' ' || s[i] == '\n' || s[i] == '\r' ? '_' : s[i];
    (*buf)[*len] = '\0';
}

struct line {
    char **buf;
    size_t *len, *cap;
};

/* A walked frame onto the line: Python frames as "qualname (file.py:line)". */
static int put_walked(const struct prof_walk_frame *f, void *ctx)
{
    struct line *l = ctx;
    char fr[1200];
    if (f->python) {
        snprintf(fr, sizeof fr, "%s (%s:%d)", f->name, prof_basename(f->file), f->line);
        put_frame(l->buf, l->len, l->cap, fr);
    } else {
        put_frame(l->buf, l->len, l->cap, f->name);
    }
    return 0;
}

/*
 * The stage a thread's samples are filed under: its thread-name stage when it has one, else its
 * process's role when roles are stages, else overall. The sampler's entries carry no time, so a
 * sample cannot be placed inside a marker's begin..end: markers are not used here.
 */
static const char *thread_stage(const json_t *doc, const struct prof_process *p, const struct prof_thread *t)
{
    const char *role = NULL;
    size_t i;
    json_t *s;

    json_array_foreach(json_object_get(doc, "stages"), i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *src = json_string_value(json_object_get(s, "source"));
        if (!name || !src)
            continue;
        if (t && t->name[0] && strcmp(t->name, p->comm) != 0 && strcmp(src, "thread-name") == 0 &&
            strcmp(name, t->name) == 0)
            return name;
        if (p && p->role && strcmp(src, "process-role") == 0 && strcmp(name, p->role) == 0)
            role = name;
    }
    return role ? role : "overall";
}

struct fold {
    char *key;
    uint64_t count;
};

static int cmp_fold(const void *a, const void *b)
{
    return strcmp(((const struct fold *)a)->key, ((const struct fold *)b)->key);
}

/* One folded line per sample entry of the wanted kind: stage, process "comm-pid", thread "name-tid" (the
 * names perf's stackcollapse gives them), the stack root first, [state]. */
static int fold_entries(const struct prof_run *m, const json_t *doc, int offcpu, struct fold **out, size_t *nout)
{
    struct prof_samples *S = m->samples;
    struct fold *v = NULL;
    size_t n = 0, capv = 0;
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;

    for (size_t k = 0; k < S->nent; k++) {
        struct prof_sentry *e = &S->ent[k];
        int on = e->state == PROF_TS_RUNNING;
        if (offcpu ? (on || e->state == PROF_TS_RUNQ || !e->ns) : (!on || !e->n))
            continue;
        size_t len = 0;
        if (buf)
            buf[0] = '\0';
        const struct prof_process *p = prof_run_process(m, e->pid);
        const struct prof_thread *t = prof_run_thread(p, e->tid);
        char head[64];
        put_frame(&buf, &len, &cap, thread_stage(doc, p, t));
        snprintf(head, sizeof head, "%s-%d", p && p->comm[0] ? p->comm : "?", e->pid);
        put_frame(&buf, &len, &cap, head);
        snprintf(head, sizeof head, "%s-%d", t && t->name[0] ? t->name : "?", e->tid);
        put_frame(&buf, &len, &cap, head);
        struct prof_sstack *st = prof_samples_stack(S, e->stack);
        struct line l = {&buf, &len, &cap};
        if (st)
            prof_stack_walk(S, st, put_walked, &l);
        else
            put_frame(&buf, &len, &cap, "[no stack]");
        if (offcpu) {
            snprintf(head, sizeof head, "[%s]", prof_tstate_name(e->state));
            put_frame(&buf, &len, &cap, head);
        }
        if (!buf)
            continue;
        if (n == capv) {
            size_t nc = capv ? capv * 2 : 64;
            struct fold *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = PROF_ENOMEM;
                break;
            }
            v = nv;
            capv = nc;
        }
        v[n].key = strdup(buf);
        v[n].count = offcpu ? e->ns / 1000 : e->n;
        if (v[n].key)
            n++;
    }
    free(buf);
    *out = v;
    *nout = n;
    return rc;
}

int prof_folded_each(const struct prof_run *m, const json_t *doc, int offcpu,
                     int (*fn)(void *ctx, const char *line, uint64_t count), void *ctx)
{
    if (!m || !fn)
        return PROF_EINVAL;
    if (!m->samples)
        return 0; /* the sampler did not run: no stacks */
    struct fold *v;
    size_t n;
    int rc = fold_entries(m, doc, offcpu, &v, &n);
    qsort(v, n, sizeof *v, cmp_fold);
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        uint64_t c = v[i].count;
        while (j + 1 < n && strcmp(v[j + 1].key, v[i].key) == 0)
            c += v[++j].count;
        if (c && !rc)
            rc = fn(ctx, v[i].key, c);
        i = j;
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
    return rc;
}

static int put_line(void *ctx, const char *line, uint64_t count)
{
    return fprintf(ctx, "%s %llu\n", line, (unsigned long long)count) < 0 ? PROF_EIO : 0;
}

static int render_folded_kind(const struct prof_report *r, FILE *out, int offcpu)
{
    if (!r || !r->run || !out)
        return PROF_EINVAL;
    return prof_folded_each(r->run, r->doc, offcpu, put_line, out);
}

static int render_oncpu(const struct prof_report *r, FILE *out)
{
    return render_folded_kind(r, out, 0);
}

static int render_offcpu(const struct prof_report *r, FILE *out)
{
    return render_folded_kind(r, out, 1);
}

/* The sampler's stacks are in the run only when the sampler ran. */
static int have_samples(const struct prof_report *r)
{
    return r->run && r->run->samples;
}

const struct prof_renderer prof_render_folded = {
    .name = "folded",
    .summary = "on-CPU samples per stack as stage;process;thread;frames COUNT, root first (flamegraph.pl input)",
    .rundir_file = "stacks.folded",
    .needs_run = 1,
    .available = have_samples,
    .render = render_oncpu,
};

const struct prof_renderer prof_render_folded_offcpu = {
    .name = "folded-offcpu",
    .summary = "off-CPU microseconds per stack under stage;process;thread, the state ([lock], [net], ...) as the leaf",
    .rundir_file = "stacks-offcpu.folded",
    .needs_run = 1,
    .available = have_samples,
    .render = render_offcpu,
};
