/* speedscope.c: the speedscope renderer: one sampled profile per thread over a shared frames table (https://www.speedscope.app/file-format-schema.json), on-CPU time first, then off-CPU time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "core/run.h"
#include "core/samples.h"
#include "prof.h"
#include "reports/render.h"

/*
 * Weights are the sampler's nanoseconds per stack (unit "nanoseconds" throughout), so speedscope
 * shows times. A thread's on-CPU time and its off-CPU time are two profiles, not one: speedscope
 * shows one profile at a time and sums its weights into one timeline, where a thread parked for
 * the whole run would drown the few milliseconds it ran. The off-CPU profile ("... (off-CPU)")
 * ends each stack in the state it waited in ([lock], [net], ...), as folded-offcpu does; the
 * run queue (runnable, waiting for a CPU) is in neither, as in the folded formats.
 */

/* The frames table: each distinct frame once, found again through an open-addressing hash. */
struct frames {
    json_t *arr;          /* shared.frames */
    char **keys;          /* slot -> key, NULL when free */
    size_t *idx;          /* slot -> index in arr */
    size_t cap, n;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int frames_grow(struct frames *F)
{
    size_t nc = F->cap ? F->cap * 2 : 1024;
    char **keys = calloc(nc, sizeof *keys);
    size_t *idx = calloc(nc, sizeof *idx);
    if (!keys || !idx) {
        free(keys);
        free(idx);
        return PROF_ENOMEM;
    }
    for (size_t i = 0; i < F->cap; i++) {
        if (!F->keys[i])
            continue;
        size_t s = hash(F->keys[i]) & (nc - 1);
        while (keys[s])
            s = (s + 1) & (nc - 1);
        keys[s] = F->keys[i];
        idx[s] = F->idx[i];
    }
    free(F->keys);
    free(F->idx);
    F->keys = keys;
    F->idx = idx;
    F->cap = nc;
    return 0;
}

/* The index of the frame (name, file, line) in the table, added when new; -1 when out of memory. */
static long frame_index(struct frames *F, const char *name, const char *file, int line)
{
    char key[2200];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%d", name, file ? file : "", line);
    if ((F->n + 1) * 2 > F->cap && frames_grow(F))
        return -1;
    size_t s = hash(key) & (F->cap - 1);
    for (; F->keys[s]; s = (s + 1) & (F->cap - 1))
        if (strcmp(F->keys[s], key) == 0)
            return (long)F->idx[s];
    json_t *fr = json_pack("{s:s}", "name", name);
    if (!fr || !(F->keys[s] = strdup(key))) {
        json_decref(fr);
        return -1;
    }
    if (file) {
        json_object_set_new(fr, "file", json_string(file));
        json_object_set_new(fr, "line", json_integer(line));
    }
    if (json_array_append_new(F->arr, fr)) {
        free(F->keys[s]);
        F->keys[s] = NULL;
        return -1;
    }
    F->idx[s] = F->n++;
    return (long)F->idx[s];
}

static void frames_free(struct frames *F)
{
    for (size_t i = 0; i < F->cap; i++)
        free(F->keys[i]);
    free(F->keys);
    free(F->idx);
}

struct walk {
    struct frames *F;
    json_t *stack;        /* frame indices, root first */
};

static int add_walked(const struct prof_walk_frame *f, void *ctx)
{
    struct walk *w = ctx;
    long i = frame_index(w->F, f->name, f->python ? f->file : NULL, f->line);
    if (i < 0 || json_array_append_new(w->stack, json_integer(i)))
        return PROF_ENOMEM;
    return 0;
}

/* Does entry e count in a thread's on-CPU (offcpu 0) or off-CPU (offcpu 1) profile? */
static int entry_counts(const struct prof_sentry *e, int offcpu)
{
    if (!e->ns)
        return 0;
    return offcpu ? e->state != PROF_TS_RUNNING && e->state != PROF_TS_RUNQ : e->state == PROF_TS_RUNNING;
}

/* The stack of entry e as frame indices, root first; [state] as the leaf off CPU. */
static json_t *entry_stack(struct prof_samples *S, const struct prof_sentry *e, struct frames *F, int offcpu)
{
    struct walk w = {F, json_array()};
    struct prof_sstack *st = prof_samples_stack(S, e->stack);
    int rc = 0;
    long i;

    if (!w.stack)
        return NULL;
    if (st)
        rc = prof_stack_walk(S, st, add_walked, &w);
    else if ((i = frame_index(F, "[no stack]", NULL, 0)) < 0 || json_array_append_new(w.stack, json_integer(i)))
        rc = PROF_ENOMEM;
    if (!rc && offcpu) {
        char leaf[32];
        snprintf(leaf, sizeof leaf, "[%s]", prof_tstate_name(e->state));
        if ((i = frame_index(F, leaf, NULL, 0)) < 0 || json_array_append_new(w.stack, json_integer(i)))
            rc = PROF_ENOMEM;
    }
    if (rc) {
        json_decref(w.stack);
        return NULL;
    }
    return w.stack;
}

/*
 * The profile of one thread's entries of one kind, in the sampler's order (each entry is a run of
 * consecutive samples with one stack, so the order is the thread's own, roughly in time), or NULL
 * with *rc 0 when the thread has none. *total: the weights' sum.
 */
static json_t *thread_profile(const struct prof_run *m, int pid, int tid, int offcpu, struct frames *F,
                              uint64_t *total, int *rc)
{
    struct prof_samples *S = m->samples;
    json_t *samples = NULL, *weights = NULL, *prof = NULL;
    *total = 0;
    *rc = 0;

    for (size_t k = 0; k < S->nent; k++) {
        const struct prof_sentry *e = &S->ent[k];
        if (e->pid != pid || e->tid != tid || !entry_counts(e, offcpu))
            continue;
        if (!samples && (!(samples = json_array()) || !(weights = json_array())))
            goto nomem;
        json_t *st = entry_stack(S, e, F, offcpu);
        if (!st || json_array_append_new(samples, st) || json_array_append_new(weights, json_integer((json_int_t)e->ns)))
            goto nomem;
        *total += e->ns;
    }
    if (!samples)
        return NULL;
    const struct prof_process *p = prof_run_process(m, pid);
    const struct prof_thread *t = prof_run_thread(p, tid);
    char name[128];
    snprintf(name, sizeof name, "%s %d / %s %d%s", p && p->comm[0] ? p->comm : "?", pid,
             t && t->name[0] ? t->name : "?", tid, offcpu ? " (off-CPU)" : "");
    prof = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:o}", "type", "sampled", "name", name, "unit", "nanoseconds",
                     "startValue", (json_int_t)0, "endValue", (json_int_t)*total, "samples", samples, "weights",
                     weights);
    if (!prof)
        *rc = PROF_ENOMEM;
    return prof;
nomem:
    json_decref(samples);
    json_decref(weights);
    *rc = PROF_ENOMEM;
    return NULL;
}

struct tid_key {
    int pid, tid;
};

static int cmp_tid(const void *a, const void *b)
{
    const struct tid_key *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

/* The sampled threads, by pid then tid, each once. */
static struct tid_key *sampled_threads(const struct prof_samples *S, size_t *n)
{
    struct tid_key *v = malloc((S->nent ? S->nent : 1) * sizeof *v);
    *n = 0;
    if (!v)
        return NULL;
    for (size_t k = 0; k < S->nent; k++)
        v[(*n)++] = (struct tid_key){S->ent[k].pid, S->ent[k].tid};
    qsort(v, *n, sizeof *v, cmp_tid);
    size_t u = 0;
    for (size_t i = 0; i < *n; i++)
        if (!u || cmp_tid(&v[u - 1], &v[i]) != 0)
            v[u++] = v[i];
    *n = u;
    return v;
}

/* Every thread's on-CPU profile, then every thread's off-CPU profile, into profiles; *active: the
 * on-CPU profile with the most time, the one speedscope opens on. */
static int add_profiles(const struct prof_run *m, struct frames *F, json_t *profiles, size_t *active)
{
    size_t n;
    struct tid_key *v = sampled_threads(m->samples, &n);
    uint64_t best = 0;
    int rc = v ? 0 : PROF_ENOMEM;

    for (int offcpu = 0; !rc && offcpu < 2; offcpu++)
        for (size_t i = 0; !rc && i < n; i++) {
            uint64_t total;
            json_t *p = thread_profile(m, v[i].pid, v[i].tid, offcpu, F, &total, &rc);
            if (!p)
                continue;
            if (!offcpu && total > best) {
                best = total;
                *active = json_array_size(profiles);
            }
            if (json_array_append_new(profiles, p))
                rc = PROF_ENOMEM;
        }
    free(v);
    return rc;
}

static int render_speedscope(const struct prof_report *r, FILE *out)
{
    if (!r || !r->run || !out)
        return PROF_EINVAL;
    struct frames F = {.arr = json_array()};
    json_t *profiles = json_array();
    json_t *doc = json_pack("{s:s, s:s, s:{s:o}, s:o}", "$schema", "https://www.speedscope.app/file-format-schema.json",
                            "exporter", "poolprof " POOLPROF_VERSION, "shared", "frames", F.arr, "profiles", profiles);
    size_t active = 0;
    int rc = doc ? 0 : PROF_ENOMEM;

    if (!rc && r->run->samples)
        rc = add_profiles(r->run, &F, profiles, &active);
    if (!rc) {
        const json_t *cmd = json_object_get(r->doc, "command");
        char name[256] = "poolprof";
        size_t i, len = strlen(name);
        json_t *a;
        /* Named after the command, as speedscope titles its page with it. */
        json_array_foreach(cmd, i, a) {
            if (json_is_string(a) && len + 2 < sizeof name)
                len += (size_t)snprintf(name + len, sizeof name - len, "%s%s", i ? " " : ": ", json_string_value(a));
            if (len >= sizeof name)
                len = sizeof name - 1;
        }
        json_object_set_new(doc, "name", json_string(name));
        json_object_set_new(doc, "activeProfileIndex", json_integer((json_int_t)active));
        if (json_dumpf(doc, out, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 || fputc('\n', out) == EOF)
            rc = PROF_EIO;
    }
    json_decref(doc); /* json_pack took F.arr and profiles, even when it failed */
    frames_free(&F);
    return rc;
}

/* The sampler's stacks are in the run only when the sampler ran. */
static int have_samples(const struct prof_report *r)
{
    return r->run && r->run->samples;
}

const struct prof_renderer prof_render_speedscope = {
    .name = "speedscope",
    .summary = "a speedscope file: per thread, on-CPU then off-CPU time per stack (nanoseconds)",
    .rundir_file = "profile.speedscope.json",
    .needs_run = 1,
    .available = have_samples,
    .render = render_speedscope,
};
