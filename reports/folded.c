/* folded.c: the folded-stack renderers (flame graph input): on-CPU samples per stack, and off-CPU time per stack with the state as the leaf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run.h"
#include "core/samples.h"
#include "prof.h"
#include "reports/render.h"

/* Append frame text to a folded line; ';' and spaces would break the format. */
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
        (*buf)[(*len)++] = s[i] == ';' ? ':' : s[i] == ' ' ? '_' : s[i];
    (*buf)[*len] = '\0';
}

static int is_eval_frame(const char *name)
{
    return strstr(name, "_PyEval_EvalFrameDefault") != NULL;
}

/* Root first: native frames down to the first interpreter frame, the Python frames, then native
 * frames beyond the last interpreter frame (C code Python called, e.g. a GIL wait). */
static void fold_stack(struct prof_samples *S, struct prof_sstack *st, char **buf, size_t *len, size_t *cap)
{
    size_t first_eval = st->nnat, last_eval = st->nnat; /* indices, innermost = 0 */
    if (st->npy) {
        for (size_t i = 0; i < st->nnat; i++)
            if (is_eval_frame(prof_frame_name(S, st, i))) {
                if (last_eval == st->nnat)
                    last_eval = i;   /* innermost eval frame */
                first_eval = i;      /* outermost so far */
            }
    }
    size_t i = st->nnat;
    /* Native root part: outermost frames above the outermost eval frame. */
    for (; i > 0 && (first_eval == st->nnat || i - 1 > first_eval); i--)
        put_frame(buf, len, cap, prof_frame_name(S, st, i - 1));
    char fr[1200];
    for (size_t k = st->npy; k > 0; k--) {
        const struct prof_sframe_py *p = &st->py[k - 1];
        snprintf(fr, sizeof fr, "%s (%s:%d)", p->qual, prof_basename(p->file), p->line);
        put_frame(buf, len, cap, fr);
    }
    if (st->npy && last_eval != st->nnat)
        for (size_t k = last_eval; k > 0; k--)
            put_frame(buf, len, cap, prof_frame_name(S, st, k - 1));
}

struct fold {
    char *key;
    uint64_t count;
};

static int cmp_fold(const void *a, const void *b)
{
    return strcmp(((const struct fold *)a)->key, ((const struct fold *)b)->key);
}

/* One folded line per sample entry of the wanted kind: the process, the stack root first, [state]. */
static int fold_entries(const struct prof_run *m, int offcpu, struct fold **out, size_t *nout)
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
        char head[64];
        snprintf(head, sizeof head, "%s", p && p->comm[0] ? p->comm : "?");
        put_frame(&buf, &len, &cap, head);
        struct prof_sstack *st = prof_samples_stack(S, e->stack);
        if (st)
            fold_stack(S, st, &buf, &len, &cap);
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

int prof_folded_each(const struct prof_run *m, int offcpu, int (*fn)(void *ctx, const char *line, uint64_t count),
                     void *ctx)
{
    if (!m || !fn)
        return PROF_EINVAL;
    if (!m->samples)
        return 0; /* the sampler did not run: no stacks */
    struct fold *v;
    size_t n;
    int rc = fold_entries(m, offcpu, &v, &n);
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
    return prof_folded_each(r->run, offcpu, put_line, out);
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
    .summary = "on-CPU samples per stack, root first, in the flame-graph folded format",
    .rundir_file = "stacks.folded",
    .needs_run = 1,
    .available = have_samples,
    .render = render_oncpu,
};

const struct prof_renderer prof_render_folded_offcpu = {
    .name = "folded-offcpu",
    .summary = "off-CPU time per stack in microseconds, the state ([lock], [net], ...) as the leaf frame",
    .rundir_file = "stacks-offcpu.folded",
    .needs_run = 1,
    .available = have_samples,
    .render = render_offcpu,
};
