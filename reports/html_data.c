/* html_data.c: the HTML report's data block: thread lanes (decimated), stage spans, RSS tracks and flame graph trees, sized so an hour's run stays a few megabytes. */
#include <stdlib.h>
#include <string.h>

#include "core/run.h"
#include "prof.h"
#include "reports/html.h"
#include "reports/render.h"

/* The state a lane shows where the sampler saw nothing of the thread (after the PROF_TS_* states). */
#define ST_UNSAMPLED PROF_TS_COUNT
/* Segments over all lanes: ~12 bytes each in the page, so the lanes stay under ~3 MB. */
#define LANE_BUDGET 240000
/* A lane has at least this many buckets however many threads share the budget, and at most LANE_MAX. */
#define LANE_MIN 48
#define LANE_MAX 3000
/* Ticks across the run: lane times are integers of wall/TICKS (at least 1 us). */
#define TICKS 1000000.0
/* Nodes of one flame graph: a deeper Python program has tens of thousands; the smallest go. */
#define FLAME_NODES 12000
/* RSS points of one track, and tracks besides the total. */
#define RSS_POINTS 1500
#define RSS_TRACKS 6

/* Lane segments, delta-coded: [gap since the previous end, duration, state] in ticks. */
struct lane {
    json_t *seg;
    double unit_ns;     /* nanoseconds per tick */
    uint64_t t0_ns;     /* the run's start */
    uint64_t last_end;  /* ticks */
    int last_state;
    int have_last;
};

static int lane_put(struct lane *L, uint64_t a_ns, uint64_t b_ns, int state)
{
    uint64_t a = a_ns > L->t0_ns ? (uint64_t)((double)(a_ns - L->t0_ns) / L->unit_ns + 0.5) : 0;
    uint64_t b = b_ns > L->t0_ns ? (uint64_t)((double)(b_ns - L->t0_ns) / L->unit_ns + 0.5) : 0;
    if (a < L->last_end)
        a = L->last_end;
    if (b <= a)
        return 0; /* under a tick: its time is in the neighbour the merge chose */
    size_t n = json_array_size(L->seg);
    if (L->have_last && a == L->last_end && state == L->last_state && n >= 3) {
        /* adjacent and the same state: one longer segment */
        json_t *d = json_array_get(L->seg, n - 2);
        json_integer_set(d, json_integer_value(d) + (json_int_t)(b - a));
    } else if (json_array_append_new(L->seg, json_integer((json_int_t)(a - L->last_end))) ||
               json_array_append_new(L->seg, json_integer((json_int_t)(b - a))) ||
               json_array_append_new(L->seg, json_integer(state))) {
        return PROF_ENOMEM;
    }
    L->last_end = b;
    L->last_state = state;
    L->have_last = 1;
    return 0;
}

/* Spans shorter than min_ns are pooled until the pool spans min_ns, then drawn as the state that
 * had most of the pool's time: a pixel shows what the thread mostly did there, and no stretch of
 * the thread is left blank. Longer spans are drawn as they are. */
static int lane_spans(struct lane *L, const struct prof_thread *t, uint64_t min_ns)
{
    uint64_t pool[PROF_TS_COUNT + 1] = {0}, p0 = 0, p1 = 0;
    int pooled = 0, rc = 0;
    for (size_t i = 0; i < t->nspans && !rc; i++) {
        const struct prof_span *s = &t->spans[i];
        int st = s->state < PROF_TS_COUNT ? s->state : PROF_TS_OTHER;
        uint64_t d = s->t1_ns > s->t0_ns ? s->t1_ns - s->t0_ns : 0;
        if (pooled && (d >= min_ns || s->t1_ns - p0 > min_ns)) {
            int best = 0;
            for (int k = 1; k <= PROF_TS_COUNT; k++)
                best = pool[k] > pool[best] ? k : best;
            rc = lane_put(L, p0, p1, best);
            memset(pool, 0, sizeof pool);
            pooled = 0;
        }
        if (rc)
            break;
        if (d >= min_ns) {
            rc = lane_put(L, s->t0_ns, s->t1_ns, st);
            continue;
        }
        if (!pooled)
            p0 = s->t0_ns;
        pool[st] += d;
        p1 = s->t1_ns;
        pooled = 1;
    }
    if (pooled && !rc) {
        int best = 0;
        for (int k = 1; k <= PROF_TS_COUNT; k++)
            best = pool[k] > pool[best] ? k : best;
        rc = lane_put(L, p0, p1, best);
    }
    return rc;
}

/* No timeline: the thread's life cut in proportion to the sampler's time per state, in state
 * order (the page says the order is not known), or one unsampled stretch. */
static int lane_shares(struct lane *L, const struct prof_run *m, const struct prof_thread *t)
{
    double s0 = t->start_s > 0 ? t->start_s : 0, s1 = t->end_s > s0 ? t->end_s : s0;
    uint64_t a = m->start_ns + (uint64_t)(s0 * 1e9), life = (uint64_t)((s1 - s0) * 1e9), tot = 0;
    for (int k = 0; k < PROF_TS_COUNT; k++)
        tot += t->smp_ns[k];
    if (!tot)
        return lane_put(L, a, a + life, ST_UNSAMPLED);
    uint64_t acc = 0;
    for (int k = 0; k < PROF_TS_COUNT; k++) {
        if (!t->smp_ns[k])
            continue;
        uint64_t b = acc + t->smp_ns[k];
        int rc = lane_put(L, a + (uint64_t)((double)acc / (double)tot * (double)life),
                          a + (uint64_t)((double)b / (double)tot * (double)life), k);
        if (rc)
            return rc;
        acc = b;
    }
    return 0;
}

static size_t count_threads(const struct prof_run *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nprocs; i++)
        n += m->procs[i]->nthreads;
    return n;
}

/* One lane per thread of every process, in the order html.c writes their rows. */
static int lanes(const struct prof_run *m, json_t *data, json_t *notes)
{
    size_t nthr = count_threads(m), buckets = nthr ? LANE_BUDGET / nthr : LANE_MAX, merged = 0, approx = 0;
    buckets = buckets < LANE_MIN ? LANE_MIN : buckets > LANE_MAX ? LANE_MAX : buckets;
    uint64_t wall_ns = m->end_ns > m->start_ns ? m->end_ns - m->start_ns : 1;
    uint64_t min_ns = wall_ns / buckets;
    double unit = (double)wall_ns / TICKS < 1000 ? 1000 : (double)wall_ns / TICKS;
    json_t *arr = json_array();
    if (!arr || json_object_set_new(data, "lanes", arr) || json_object_set_new(data, "tick_ns", json_real(unit)))
        return PROF_ENOMEM;
    for (size_t i = 0; i < m->nprocs; i++)
        for (size_t j = 0; j < m->procs[i]->nthreads; j++) {
            const struct prof_thread *t = &m->procs[i]->threads[j];
            struct lane L = {.seg = json_array(), .unit_ns = unit, .t0_ns = m->start_ns};
            json_t *o = json_pack("{s:i, s:i, s:b, s:o*}", "tid", t->tid, "pid", m->procs[i]->pid, "approx",
                                  t->nspans == 0, "s", L.seg);
            if (!o || !L.seg || json_array_append_new(arr, o))
                return PROF_ENOMEM;
            int rc = t->nspans ? lane_spans(&L, t, min_ns) : lane_shares(&L, m, t);
            if (rc)
                return rc;
            merged += t->nspans > json_array_size(L.seg) / 3;
            approx += t->nspans == 0;
        }
    if (merged)
        prof_note(notes, "timeline: stretches shorter than %.3f s of %zu thread%s drawn as the state that had most of "
                         "their time (to keep the page small)",
                  (double)min_ns / 1e9, merged, merged == 1 ? "" : "s");
    if (approx)
        prof_note(notes, "timeline: %zu thread%s without a recorded timeline drawn as shares of their life by state "
                         "(the order within such a lane is not known)",
                  approx, approx == 1 ? "" : "s");
    return 0;
}

/* Where a stage ran: a marker's first begin to last end, a thread stage's threads, a process
 * stage's processes; overall is the run. */
static void stage_extent(const struct prof_run *m, const json_t *s, double *t0, double *t1)
{
    const char *name = json_string_value(json_object_get(s, "name")), *src = json_string_value(json_object_get(s, "source"));
    const json_t *pids = json_object_get(s, "pids");
    double lo = 1e300, hi = -1e300;
    size_t i;
    json_t *v;
    *t0 = 0;
    *t1 = m->wall_s;
    if (!name || !src || strcmp(src, "overall") == 0)
        return;
    for (int pass = 0; pass < 2 && lo > hi; pass++)
        json_array_foreach(pids, i, v) {
            const struct prof_process *p = prof_run_process(m, (int)json_integer_value(v));
            if (!p)
                continue;
            if (pass == 0 && strcmp(src, "marker") == 0) {
                for (size_t k = 0; k < p->nmarkers; k++)
                    if (strcmp(p->markers[k].name, name) == 0 && p->markers[k].last_end_ns) {
                        double a = prof_run_seconds(m, p->markers[k].first_begin_ns);
                        double b = prof_run_seconds(m, p->markers[k].last_end_ns);
                        lo = a < lo ? a : lo;
                        hi = b > hi ? b : hi;
                    }
            } else if (pass == 0 && strcmp(src, "thread-name") == 0) {
                for (size_t k = 0; k < p->nthreads; k++)
                    if (strncmp(p->threads[k].name, name, strlen(name)) == 0 && p->threads[k].name[0]) {
                        lo = p->threads[k].start_s < lo ? p->threads[k].start_s : lo;
                        hi = p->threads[k].end_s > hi ? p->threads[k].end_s : hi;
                    }
            } else if (pass == 1 || strcmp(src, "process-role") == 0) {
                lo = p->start_s < lo ? p->start_s : lo;
                hi = p->end_s > hi ? p->end_s : hi;
            }
        }
    if (lo <= hi) {
        *t0 = lo;
        *t1 = hi;
    }
}

static int stage_spans(const struct prof_report *r, json_t *data)
{
    json_t *arr = json_array();
    if (!arr || json_object_set_new(data, "stages", arr))
        return PROF_ENOMEM;
    const json_t *stages = json_object_get(r->doc, "stages");
    for (size_t i = 0; i < json_array_size(stages); i++) {
        const json_t *s = json_array_get(stages, i);
        double a, b;
        stage_extent(r->run, s, &a, &b);
        json_t *name = prof_json_text(json_string_value(json_object_get(s, "name")));
        if (!name || json_array_append_new(arr, json_pack("{s:o, s:f, s:f}", "name", name, "t0", a, "t1", b)))
            return PROF_ENOMEM;
    }
    return 0;
}

/* One track: at most RSS_POINTS points, each the largest of its bucket (a peak is never thinned away). */
static int rss_track(json_t *arr, json_t *label, const double *t, const uint64_t *v, size_t n)
{
    json_t *tt = json_array(), *vv = json_array();
    json_t *o = json_pack("{s:o, s:o*, s:o*}", "label", label, "t", tt, "v", vv);
    if (!o || !tt || !vv || json_array_append_new(arr, o))
        return PROF_ENOMEM;
    size_t step = n / RSS_POINTS + 1;
    for (size_t i = 0; i < n; i += step) {
        size_t best = i;
        for (size_t k = i; k < i + step && k < n; k++)
            best = v[k] > v[best] ? k : best;
        if (json_array_append_new(tt, json_real(t[best])) || json_array_append_new(vv, json_integer((json_int_t)v[best])))
            return PROF_ENOMEM;
    }
    return 0;
}

static int cmp_peak(const void *a, const void *b)
{
    const struct prof_process *x = *(struct prof_process *const *)a, *y = *(struct prof_process *const *)b;
    return x->rss_peak < y->rss_peak ? 1 : x->rss_peak > y->rss_peak ? -1 : x->pid - y->pid;
}

/* The tree's total, then the processes with the highest peaks, each its own series. */
/* A process's proportional and unique set sizes (smaps_rollup, read less often than RSS) beside
 * its RSS track: PSS charges shared pages by share, USS is what its exit would free. None, none added. */
static int mem_series(json_t *track, const struct prof_run *m, const struct prof_process *p)
{
    if (!track || p->nmem < 2)
        return 0;
    json_t *tt = json_array(), *pss = json_array(), *uss = json_array();
    json_t *o = json_pack("{s:o*, s:o*, s:o*}", "t", tt, "pss", pss, "uss", uss);
    if (!o || json_object_set_new(track, "mem", o))
        return PROF_ENOMEM;
    size_t step = p->nmem / RSS_POINTS + 1;
    for (size_t i = 0; i < p->nmem; i += step) {
        const struct prof_mem_sample *s = &p->mem[i];
        if (json_array_append_new(tt, json_real(prof_run_seconds(m, s->t_ns))) ||
            json_array_append_new(pss, json_integer((json_int_t)s->pss)) ||
            json_array_append_new(uss, json_integer((json_int_t)s->uss)))
            return PROF_ENOMEM;
    }
    return 0;
}

static int rss_tracks(const struct prof_run *m, json_t *data, json_t *notes)
{
    json_t *arr = json_array();
    if (!arr || json_object_set_new(data, "rss", arr))
        return PROF_ENOMEM;
    double *t;
    uint64_t *v;
    size_t n;
    int rc = prof_run_rss_series(m, m->procs, m->nprocs, &t, &v, &n);
    if (!rc && n > 1)
        rc = rss_track(arr, json_string("all processes"), t, v, n);
    free(t);
    free(v);
    struct prof_process **by = malloc((m->nprocs + 1) * sizeof *by);
    if (!by)
        return PROF_ENOMEM;
    size_t nb = 0;
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i]->nrss > 1)
            by[nb++] = m->procs[i];
    qsort(by, nb, sizeof *by, cmp_peak);
    for (size_t i = 0; i < nb && i < RSS_TRACKS && !rc; i++) {
        rc = prof_run_rss_series(m, &by[i], 1, &t, &v, &n);
        char head[48];
        snprintf(head, sizeof head, "pid %d ", by[i]->pid);
        size_t hl = strlen(head), cl = strnlen(by[i]->comm, sizeof by[i]->comm);
        char label[sizeof head + sizeof by[i]->comm];
        memcpy(label, head, hl);
        memcpy(label + hl, by[i]->comm, cl);
        label[hl + cl] = '\0';
        json_t *lab = prof_json_text(label);
        if (!rc && n > 1) {
            rc = lab ? rss_track(arr, lab, t, v, n) : PROF_ENOMEM;
            if (!rc)
                rc = mem_series(json_array_get(arr, json_array_size(arr) - 1), m, by[i]);
        } else {
            json_decref(lab);
        }
        free(t);
        free(v);
    }
    if (nb > RSS_TRACKS)
        prof_note(notes, "RSS: the %d processes with the highest peaks have a track each; %zu more are in the total",
                  RSS_TRACKS, nb - RSS_TRACKS);
    free(by);
    return rc;
}

/* A flame graph's tree: first child, next sibling; children in first-seen order. */
struct fnode {
    uint32_t name, child, next, last;
    uint64_t value;
};

struct flame {
    struct fnode *v;
    size_t n, cap;
    json_t *names;      /* frame names, each once */
    json_t *index;      /* name -> its index in names */
    int rc;
};

static uint32_t flame_node(struct flame *F, uint32_t parent, uint32_t name)
{
    /* Lines come in byte order, so a frame's siblings come together: its last child is usually the one. */
    uint32_t c = F->v[parent].last;
    if (!(c && F->v[c].name == name))
        for (c = F->v[parent].child; c && F->v[c].name != name; c = F->v[c].next)
            ;
    if (c)
        return c;
    if (F->n == F->cap) {
        size_t nc = F->cap * 2;
        struct fnode *nv = realloc(F->v, nc * sizeof *nv);
        if (!nv)
            return 0;
        F->v = nv;
        F->cap = nc;
    }
    c = (uint32_t)F->n++;
    F->v[c] = (struct fnode){.name = name};
    if (F->v[parent].last)
        F->v[F->v[parent].last].next = c;
    else
        F->v[parent].child = c;
    F->v[parent].last = c;
    return c;
}

static int flame_line(void *ctx, const char *line, uint64_t count)
{
    struct flame *F = ctx;
    uint32_t at = 0;
    char frame[1280];
    F->v[0].value += count;
    for (const char *p = line; *p;) {
        size_t len = strcspn(p, ";");
        snprintf(frame, sizeof frame, "%.*s", (int)len, p);
        p += len + (p[len] == ';');
        json_t *ix = json_object_get(F->index, frame);
        uint32_t name;
        if (ix) {
            name = (uint32_t)json_integer_value(ix);
        } else {
            name = (uint32_t)json_array_size(F->names);
            json_t *s = prof_json_text(frame);
            if (!s || json_array_append_new(F->names, s) || json_object_set_new_nocheck(F->index, frame, json_integer(name)))
                return F->rc = PROF_ENOMEM;
        }
        at = flame_node(F, at, name);
        if (!at)
            return F->rc = PROF_ENOMEM;
        F->v[at].value += count;
    }
    return 0;
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Preorder [depth, name, value] of the nodes worth at least keep; a node below it takes its subtree along. */
static int flame_emit(const struct flame *F, json_t *flat, uint32_t at, int depth, uint64_t keep, size_t *left)
{
    for (uint32_t c = F->v[at].child; c; c = F->v[c].next) {
        if (F->v[c].value < keep || !*left)
            continue;
        (*left)--;
        if (json_array_append_new(flat, json_integer(depth)) || json_array_append_new(flat, json_integer(F->v[c].name)) ||
            json_array_append_new(flat, json_integer((json_int_t)F->v[c].value)))
            return PROF_ENOMEM;
        int rc = flame_emit(F, flat, c, depth + 1, keep, left);
        if (rc)
            return rc;
    }
    return 0;
}

static int flame(const struct prof_run *m, const json_t *doc, int offcpu, json_t *data, json_t *notes)
{
    struct flame F = {.cap = 1024, .names = json_array(), .index = json_object()};
    F.v = calloc(F.cap, sizeof *F.v);
    F.n = 1; /* the root: all samples */
    json_t *flat = json_array();
    int rc = !F.v || !F.names || !F.index || !flat ? PROF_ENOMEM : 0;
    if (!rc)
        rc = prof_folded_each(m, doc, offcpu, flame_line, &F);
    uint64_t keep = 0;
    if (!rc && F.n - 1 > FLAME_NODES) {
        /* The FLAME_NODES-th largest value is the bar: the graph keeps its widest frames. */
        uint64_t *vals = malloc((F.n - 1) * sizeof *vals);
        if (!vals) {
            rc = PROF_ENOMEM;
        } else {
            for (size_t i = 1; i < F.n; i++)
                vals[i - 1] = F.v[i].value;
            qsort(vals, F.n - 1, sizeof *vals, cmp_u64_desc);
            keep = vals[FLAME_NODES - 1];
            free(vals);
            prof_note(notes, "%s flame graph: %zu frames, the %d widest drawn (frames under %.3f%% of its total left out)",
                      offcpu ? "off-CPU" : "on-CPU", F.n - 1, FLAME_NODES,
                      F.v[0].value ? 100.0 * (double)keep / (double)F.v[0].value : 0.0);
        }
    }
    size_t left = FLAME_NODES;
    if (!rc)
        rc = flame_emit(&F, flat, 0, 0, keep, &left);
    json_t *o = json_pack("{s:o*, s:o*, s:I, s:s}", "names", F.names, "nodes", flat, "total", (json_int_t)F.v[0].value,
                          "unit", offcpu ? "us" : "samples");
    F.names = flat = NULL; /* o owns them now, or they are freed */
    if (!rc && (!o || json_object_set_new(data, offcpu ? "offcpu" : "oncpu", o)))
        rc = PROF_ENOMEM;
    else if (rc)
        json_decref(o);
    json_decref(F.index);
    free(F.v);
    return rc;
}

int prof_html_data(const struct prof_report *r, json_t *notes, json_t **data)
{
    const struct prof_run *m = r->run;
    json_t *d = json_pack("{s:f}", "wall", m->wall_s), *names = json_array();
    if (d && names && !json_object_set_new(d, "states", names)) {
        for (int k = 0; k < PROF_TS_COUNT; k++)
            json_array_append_new(names, json_string(prof_tstate_name(k)));
        json_array_append_new(names, json_string("not sampled"));
    } else {
        json_decref(d);
        d = NULL;
    }
    int rc = d ? 0 : PROF_ENOMEM;
    if (!rc)
        rc = lanes(m, d, notes);
    if (!rc)
        rc = stage_spans(r, d);
    if (!rc)
        rc = rss_tracks(m, d, notes);
    if (!rc)
        rc = flame(m, r->doc, 0, d, notes);
    if (!rc)
        rc = flame(m, r->doc, 1, d, notes);
    /* The sweep's curve is drawn from the report's own figures: the table beside it shows the same numbers. */
    const json_t *sweep = json_object_get(r->doc, "sweep");
    if (!rc && json_is_object(sweep) && json_object_set(d, "sweep", (json_t *)sweep))
        rc = PROF_ENOMEM;
    if (rc) {
        json_decref(d);
        d = NULL;
    }
    *data = d;
    return rc;
}
