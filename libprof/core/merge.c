/* merge.c: the merge step: the records of every observer combined into one run: processes, exec chains, threads, exits, RSS. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/merge.h"
#include "core/samples.h"
#include "prof.h"

#define DEFAULT_INTERVAL_MS 20

/* A child reaped by a process of the tree, from a record's children[]: applied once every record is read. */
struct reaped {
    int pid, status, reaper;
    uint64_t t_ns;
};

struct merger {
    struct prof_run *m;
    struct reaped *reaped;
    size_t nreaped, capreaped;
    size_t cache;           /* index of the last process looked up: records come in runs of one pid */
    size_t runq_est;        /* shim threads whose run-queue wait was estimated (PROF_THREAD_RUNQ_EST) */
};

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = realloc(p, nc * elem);
    if (!q)
        return NULL;
    *cap = nc;
    return q;
}

static char **strv_dup(char *const *v, int n)
{
    char **d = calloc(n ? (size_t)n : 1, sizeof *d);
    for (int i = 0; d && i < n; i++)
        if (!(d[i] = strdup(v[i]))) {
            while (i-- > 0)
                free(d[i]);
            free(d);
            return NULL;
        }
    return d;
}

static struct prof_process *proc_get(struct merger *M, int pid)
{
    struct prof_run *m = M->m;

    if (M->cache < m->nprocs && m->procs[M->cache]->pid == pid)
        return m->procs[M->cache];
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i]->pid == pid) {
            M->cache = i;
            return m->procs[i];
        }
    struct prof_process *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    struct prof_process **slot = PUSH(m->procs, m->nprocs);
    if (!slot) {
        free(p);
        return NULL;
    }
    p->pid = pid;
    p->ppid = -1;
    p->exit_status = p->exit_code = p->exit_signal = -1;
    *slot = p;
    M->cache = m->nprocs - 1;
    return p;
}

static struct prof_thread *thread_get(struct prof_process *p, int tid)
{
    for (size_t i = 0; i < p->nthreads; i++)
        if (p->threads[i].tid == tid)
            return &p->threads[i];
    struct prof_thread *t = PUSH(p->threads, p->nthreads);
    if (t)
        t->tid = tid;
    return t;
}

static void seen(struct prof_process *p, uint64_t t)
{
    if (!t)
        return;
    if (!p->first_seen_ns || t < p->first_seen_ns)
        p->first_seen_ns = t;
    if (t > p->last_seen_ns)
        p->last_seen_ns = t;
}

static uint64_t umax(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static void set_name(struct prof_thread *t, const char *name, size_t cap, uint64_t when)
{
    size_t n = strnlen(name, cap);
    if (n == 0 || when < t->name_t_ns)
        return;
    if (n > sizeof t->name - 1)
        n = sizeof t->name - 1;
    memcpy(t->name, name, n);
    t->name[n] = '\0';
    t->name_t_ns = when;
}

/* ---- the shim's images ---- */

/* Is lock (kind, wait) hotter than the current pick? A semaphore an executor parks idle workers on
 * can out-wait any mutex; it says nothing about serialization, so the kind ranks first. */
static int lock_hotter(uint32_t kind, uint64_t wait_ns, uint32_t cur_kind, uint64_t cur_wait_ns)
{
    int a = prof_lock_kind_serializes(kind), b = prof_lock_kind_serializes(cur_kind);
    if (a != b)
        return a > b;
    return wait_ns > cur_wait_ns;
}

/*
 * Add a contended lock of one image to its process's table: the same address and site in another
 * image of it (a snapshot and the exit of one image, an exec of the same program) sum into one
 * row, so a site is listed once however many images recorded it.
 */
static int add_lock(struct prof_process *p, const struct prof_shm_lock *k)
{
    struct prof_lock_site *l = NULL;
    for (size_t i = 0; i < p->nlocks && !l; i++)
        if (p->locks[i].addr == k->addr && strncmp(p->locks[i].site, k->site, sizeof p->locks[i].site) == 0 &&
            (k->site[0] || p->locks[i].site_pc == k->site_pc))
            l = &p->locks[i];
    if (!l) {
        struct prof_lock_site *v = grow(p->locks, &p->locks_cap, p->nlocks, sizeof *v);
        if (!v)
            return PROF_ENOMEM;
        p->locks = v;
        l = &p->locks[p->nlocks++];
        memset(l, 0, sizeof *l);
        memcpy(l->site, k->site, sizeof l->site);
        l->site[sizeof l->site - 1] = '\0';
        l->addr = k->addr;
        l->site_pc = k->site_pc;
        l->kind = k->kind;
        l->claim_cpu_ns = k->claim_cpu_ns;
    }
    l->acquisitions += k->acquisitions;
    l->contended += k->contended;
    l->wait_ns += k->wait_ns;
    l->hold_ns += k->hold_ns;
    l->owner_changes += k->owner_changes;
    return 0;
}

/* The figures the shim counts per marker stage: CPU and the waits and bytes of the IMAGE kind. */
static void marker_counters(struct prof_counters *c, const struct prof_shm_stage *g)
{
    c->cpu_ns += g->cpu_ns;
    c->lock_wait_ns += g->lock_wait_ns;
    c->gil_wait_ns += g->gil_wait_ns;
    c->io_wait_ns += g->io_wait_ns;
    c->io_bytes += g->io_bytes;
    c->net_wait_ns += g->net_wait_ns;
    c->net_round_trips += g->net_round_trips;
    c->net_request_ns += g->net_request_ns;
    c->ipc_ns += g->ipc_ns;
    c->ipc_bytes_sent += g->ipc_bytes_sent;
    c->ipc_bytes_received += g->ipc_bytes_received;
    c->ipc_sends += g->ipc_sends;
    c->evloop_wait_ns += g->evloop_wait_ns;
    c->join_wait_ns += g->join_wait_ns;
    c->handoff_wait_ns += g->handoff_wait_ns;
    c->sleep_ns += g->sleep_ns;
    c->sleeps += g->sleeps;
    c->disk_reads += g->disk_reads;
    c->net_send_wait_ns += g->net_send_wait_ns;
    c->ipc_send_wait_ns += g->ipc_send_wait_ns;
}

/* Marker stages of one image, summed into the process's by name (an exec'd image may reuse a name). */
static int add_markers(struct prof_process *p, const struct prof_rec_image *im)
{
    for (size_t i = 0; i < im->nstages; i++) {
        const struct prof_shm_stage *g = &im->stages[i];
        struct prof_marker *k = NULL;
        for (size_t j = 0; j < p->nmarkers && !k; j++)
            if (strcmp(p->markers[j].name, g->name) == 0)
                k = &p->markers[j];
        if (!k) {
            if (!(k = PUSH(p->markers, p->nmarkers)))
                return PROF_ENOMEM;
            memcpy(k->name, g->name, strlen(g->name) + 1);
        }
        k->threads += g->threads;
        k->entries += g->entries;
        k->self_ns += g->self_ns;
        k->incl_ns += g->incl_ns;
        marker_counters(&k->c, g);
        if (g->first_begin_ns && (!k->first_begin_ns || g->first_begin_ns < k->first_begin_ns))
            k->first_begin_ns = g->first_begin_ns;
        k->last_end_ns = umax(k->last_end_ns, g->last_end_ns);
    }
    return 0;
}

/* One shim thread slot into the process's thread: TASK figures by the largest reading, IMAGE ones summed. */
static void add_shim_thread(struct prof_thread *t, const struct prof_rec_image *im, const struct prof_shm_thread *s)
{
    struct prof_counters r = {
        .cpu_ns = s->cpu_ns, .utime_ns = s->utime_us * 1000, .stime_ns = s->stime_us * 1000, .runq_ns = s->runq_ns,
        .vcsw = s->vcsw, .ivcsw = s->ivcsw, .lock_wait_ns = s->lock_wait_ns, .gil_wait_ns = s->gil_wait_ns,
        .lock_acquisitions = s->lock_acquisitions, .lock_contended = s->lock_contended, .io_wait_ns = s->io_wait_ns,
        .io_bytes = s->io_bytes, .net_wait_ns = s->net_wait_ns, .net_round_trips = s->net_round_trips,
        .net_request_ns = s->net_request_ns,
        .ipc_ns = s->ipc_ns, .ipc_bytes_sent = s->ipc_bytes_sent, .ipc_bytes_received = s->ipc_bytes_received,
        .ipc_sends = s->ipc_sends, .evloop_wait_ns = s->evloop_wait_ns, .join_wait_ns = s->join_wait_ns,
        .handoff_wait_ns = s->handoff_wait_ns, .sleep_ns = s->sleep_ns, .sleeps = s->sleeps,
        .disk_reads = s->disk_reads, .net_send_wait_ns = s->net_send_wait_ns,
        .ipc_send_wait_ns = s->ipc_send_wait_ns, .startup_cpu_ns = s->startup_cpu_ns,
    };
    t->from_shim = 1;
    if (s->start_ns && (!t->shim_start_ns || s->start_ns < t->shim_start_ns))
        t->shim_start_ns = s->start_ns;
    /* Images come in any order: keep apart what came before the latest one. Until the monitor's
     * lines are read, c.cpu_ns holds the shim's readings only. */
    struct prof_counters *b = &t->before_last_img;
    if (im->start_ns > t->shim_img_ns) {
        b->cpu_ns = t->c.cpu_ns; /* everything summed until now came before this image */
#define KEEP(field, unit, images, tk, sk, d) if (PROF_METRIC_##images == PROF_METRIC_IMAGE) b->field = t->c.field;
        PROF_METRICS(KEEP)
#undef KEEP
    } else if (im->start_ns < t->shim_img_ns) {
        b->cpu_ns = umax(b->cpu_ns, s->cpu_ns);
#define ADD(field, unit, images, tk, sk, d) if (PROF_METRIC_##images == PROF_METRIC_IMAGE) b->field += r.field;
        PROF_METRICS(ADD)
#undef ADD
    }
    /* State and end come from the latest image that knew the thread (exec keeps the main thread). */
    if (im->start_ns >= t->shim_img_ns) {
        t->shim_img_ns = im->start_ns;
        t->shim_state = (int)s->state;
        t->shim_end_ns = s->state == PROF_THREAD_RUNNING ? 0 : s->end_ns;
    }
    set_name(t, s->name, sizeof s->name, s->end_ns ? s->end_ns : im->start_ns);
#define MERGE(field, unit, images, tk, sk, d)                                                   \
    t->c.field = PROF_METRIC_##images == PROF_METRIC_TASK ? umax(t->c.field, r.field) : t->c.field + r.field;
    PROF_METRICS(MERGE)
#undef MERGE
}

static int add_image(struct merger *M, const struct prof_rec_image *im)
{
    struct prof_process *p = proc_get(M, im->pid);
    if (!p)
        return PROF_ENOMEM;
    p->nrecs++;
    p->shim = 1;
    if (im->flags & PROF_PROC_PYTHON)
        p->python = 1;
    if (!p->shim_start_ns || im->start_ns < p->shim_start_ns) {
        p->shim_start_ns = im->start_ns;
        p->ppid = im->ppid; /* the first image's parent: the forker, before any reparenting */
    }
    seen(p, im->start_ns);
    seen(p, im->end_ns);
    p->vm_hwm = umax(p->vm_hwm, im->vm_hwm_bytes);
    p->dropped_threads += im->dropped_threads;
    p->dropped_children += im->dropped_children;

    /* The latest image decides how the process ended as far as the shim knows: an exec or a
     * kill (end_ns == 0) after an earlier image's exit means that exit no longer stands. */
    if (im->start_ns >= p->shim_last_img_ns) {
        p->shim_last_img_ns = im->start_ns;
        p->have_shim_exit = im->end_ns && (im->end_how == PROF_END_EXIT || im->end_how == PROF_END_UNDERSCORE_EXIT);
        p->shim_exit_code = im->exit_code;
        p->shim_end_ns = im->end_ns;
        p->shim_end_how = im->end_how;
        p->shim_rss_end = im->rss_end_bytes;
    }

    struct prof_image *pi = PUSH(p->images, p->nimages);
    if (!pi)
        return PROF_ENOMEM;
    pi->t_ns = im->start_ns;
    pi->from_shim = 1;
    pi->forked = !!(im->flags & PROF_PROC_FORKED);
    if (!(pi->exe = strdup(im->exe)) || !(pi->argv = strv_dup(im->argv, im->argc)))
        return PROF_ENOMEM;
    pi->argc = im->argc;

    for (size_t i = 0; i < im->nthreads; i++) {
        struct prof_thread *t = thread_get(p, im->threads[i].tid);
        if (!t)
            return PROF_ENOMEM;
        add_shim_thread(t, im, &im->threads[i]);
        M->runq_est += (im->threads[i].flags & PROF_THREAD_RUNQ_EST) != 0;
        seen(p, im->threads[i].end_ns);
    }
    for (size_t i = 0; i < im->nchildren; i++) {
        const struct prof_shm_child *c = &im->children[i];
        struct reaped *r = grow(M->reaped, &M->capreaped, M->nreaped, sizeof *r);
        if (!r)
            return PROF_ENOMEM;
        M->reaped = r;
        M->reaped[M->nreaped++] = (struct reaped){c->pid, c->status, im->pid, c->t_ns};
    }
    for (size_t i = 0; i < im->nlocks; i++) {
        const struct prof_shm_lock *k = &im->locks[i];
        /* The GIL's own mutexes (waits on them before a GIL wait named them) are the GIL, reported apart. */
        if (k->addr == im->gil_mutex || k->addr == im->gil_switch_mutex)
            continue;
        if (add_lock(p, k) < 0)
            return PROF_ENOMEM;
        if (p->have_hottest && !lock_hotter(k->kind, k->wait_ns, p->hottest.kind, p->hottest.wait_ns))
            continue;
        p->have_hottest = 1;
        memcpy(p->hottest.site, k->site, sizeof p->hottest.site);
        p->hottest.site[sizeof p->hottest.site - 1] = '\0';
        p->hottest.addr = k->addr;
        p->hottest.site_pc = k->site_pc;
        p->hottest.kind = k->kind;
        p->hottest.acquisitions = k->acquisitions;
        p->hottest.contended = k->contended;
        p->hottest.wait_ns = k->wait_ns;
        p->hottest.hold_ns = k->hold_ns;
        p->hottest.owner_changes = k->owner_changes;
        p->hottest.claim_cpu_ns = k->claim_cpu_ns;
    }
    return add_markers(p, im);
}

/* ---- the monitor's lines ---- */

static uint64_t ticks_to_ns(const struct prof_run *m, uint64_t ticks)
{
    long hz = m->ticks_per_sec > 0 ? m->ticks_per_sec : 100;
    return ticks / (uint64_t)hz * 1000000000ull + ticks % (uint64_t)hz * 1000000000ull / (uint64_t)hz;
}

static int mon_image(struct prof_process *p, const struct prof_rec_mon *l)
{
    struct prof_image *im = PUSH(p->images, p->nimages);
    if (!im)
        return PROF_ENOMEM;
    im->t_ns = l->t_ns;
    im->from_monitor = 1;
    im->is_static = l->u.image.is_static;
    if (im->is_static)
        p->is_static = 1;
    if (!(im->exe = strdup(l->u.image.exe)) || !(im->argv = strv_dup(l->u.image.argv, l->u.image.argc)))
        return PROF_ENOMEM;
    im->argc = l->u.image.argc;
    return 0;
}

static void mon_start(const struct prof_run *m, struct prof_process *p, const struct prof_rec_mon *l)
{
    uint64_t t = l->t_ns;
    if (!p->mon_start_ns || t < p->mon_start_ns)
        p->mon_start_ns = t;
    if (l->u.image.have_ppid && !p->shim)
        p->ppid = l->u.image.ppid;
    if (l->u.image.start_ticks > 0) {
        /* The kernel's start time: tick-granular but not late like the observation. */
        uint64_t st = ticks_to_ns(m, l->u.image.start_ticks);
        uint64_t tick = 1000000000ull / (uint64_t)(m->ticks_per_sec > 0 ? m->ticks_per_sec : 100);
        if (st <= t && st + tick >= m->start_ns && (!p->mon_start_ns || st < p->mon_start_ns))
            p->mon_start_ns = st < m->start_ns ? m->start_ns : st;
    }
}

static int mon_thread(const struct prof_run *m, struct prof_process *p, const struct prof_rec_mon *l)
{
    struct prof_thread *th = thread_get(p, l->u.thread.tid);
    if (!th)
        return PROF_ENOMEM;
    th->from_monitor = 1;
    if (!th->first_sample_ns || l->t_ns < th->first_sample_ns) {
        th->first_sample_ns = l->t_ns;
        th->mon_first.cpu = l->u.thread.cpu;
        th->mon_first.runq = l->u.thread.runq;
        th->mon_first.utime = l->u.thread.utime;
        th->mon_first.stime = l->u.thread.stime;
        th->mon_first.vcsw = l->u.thread.vcsw;
        th->mon_first.ivcsw = l->u.thread.ivcsw;
    }
    th->last_sample_ns = umax(th->last_sample_ns, l->t_ns);
    if (l->u.thread.have_name)
        set_name(th, l->u.thread.name, sizeof l->u.thread.name, l->t_ns);
    /* Kernel counters, cumulative for the task: the same as the shim's, the largest reading wins. */
    th->c.cpu_ns = umax(th->c.cpu_ns, l->u.thread.cpu);
    th->c.runq_ns = umax(th->c.runq_ns, l->u.thread.runq);
    th->c.utime_ns = umax(th->c.utime_ns, l->u.thread.utime);
    th->c.stime_ns = umax(th->c.stime_ns, l->u.thread.stime);
    th->c.vcsw = umax(th->c.vcsw, l->u.thread.vcsw);
    th->c.ivcsw = umax(th->c.ivcsw, l->u.thread.ivcsw);
    th->minflt = umax(th->minflt, l->u.thread.minflt);
    th->majflt = umax(th->majflt, l->u.thread.majflt);
    if (l->u.thread.start_ticks > 0)
        th->start_ticks_ns = ticks_to_ns(m, l->u.thread.start_ticks);
    return 0;
}

static int mon_line(struct merger *M, const struct prof_rec_mon *l)
{
    struct prof_process *p = proc_get(M, l->pid);
    if (!p)
        return PROF_ENOMEM;
    seen(p, l->t_ns);

    switch (l->type) {
    case 'N':
        mon_start(M->m, p, l);
        return mon_image(p, l);
    case 'E':
        return mon_image(p, l);
    case 'R': {
        struct prof_rss_sample *s = PUSH(p->rss, p->nrss);
        if (!s)
            return PROF_ENOMEM;
        *s = (struct prof_rss_sample){l->t_ns, l->u.rss};
        return 0;
    }
    case 'M': {
        struct prof_mem_sample *s = PUSH(p->mem, p->nmem);
        if (!s)
            return PROF_ENOMEM;
        *s = (struct prof_mem_sample){l->t_ns, l->u.mem.pss, l->u.mem.uss, l->u.mem.swap};
        return 0;
    }
    case 'T':
        return mon_thread(M->m, p, l);
    case 'G':
        if (!p->gone_ns || l->t_ns < p->gone_ns)
            p->gone_ns = l->t_ns;
        return 0;
    case 'Z':
        p->have_z = 1;
        p->z_status = l->u.status;
        p->z_t_ns = l->t_ns;
        return 0;
    }
    return 0; /* '.': seen, nothing else */
}

/* ---- the sampler's processes ---- */

/*
 * What the sampler knows of every process it followed: its parent, birth, name and exit
 * status. Without the shim, a process shorter than the monitor's scans (xargs's md5sum, a
 * fork of 1 ms) is known from these alone; with it, they only fill what no other source has.
 */
static int smp_procs(struct merger *M, const struct prof_rec_sampler *R)
{
    for (size_t i = 0; i < R->nprocs; i++) {
        const struct prof_rec_sproc *sp = &R->procs[i];
        struct prof_process *p = proc_get(M, sp->pid);
        if (!p)
            return PROF_ENOMEM;
        seen(p, sp->t_ns);
        if (p->ppid < 0 && sp->ppid > 0)
            p->ppid = sp->ppid;
        if (!p->mon_start_ns && !p->shim)
            p->mon_start_ns = sp->t_ns;
        /* Names only where neither the shim nor the monitor gave one (their images were all
         * taken before this): one image per P line. */
        if ((!sp->exe && !sp->argc) || p->named_by_other)
            continue;
        if (p->nimages && !p->named_by_sampler) {
            p->named_by_other = 1;
            continue;
        }
        p->named_by_sampler = 1;
        struct prof_image *im = PUSH(p->images, p->nimages);
        if (!im)
            return PROF_ENOMEM;
        im->t_ns = sp->t_ns;
        if (!(im->exe = strdup(sp->exe ? sp->exe : "")) || !(im->argv = strv_dup(sp->argv, sp->argc)))
            return PROF_ENOMEM;
        im->argc = sp->argc;
    }
    for (size_t i = 0; i < R->nexits; i++) {
        const struct prof_rec_sexit *x = &R->exits[i];
        struct prof_process *p = proc_get(M, x->pid);
        if (!p)
            return PROF_ENOMEM;
        seen(p, x->t_ns);
        p->have_x = 1;
        p->x_status = x->status;
        p->x_t_ns = x->t_ns;
    }
    return 0;
}

/* ---- finishing the run ---- */

static int argv_eq(const struct prof_image *a, const struct prof_image *b)
{
    if (a->argc != b->argc)
        return 0;
    for (int i = 0; i < a->argc; i++)
        if (strcmp(a->argv[i], b->argv[i]) != 0)
            return 0;
    return 1;
}

static int image_same(const struct prof_image *a, const struct prof_image *b)
{
    /* An empty exe means the monitor could not read the link (a zombie, a race): argv decides. */
    if (a->exe && b->exe && a->exe[0] && b->exe[0] && strcmp(a->exe, b->exe) != 0)
        return 0;
    return argv_eq(a, b);
}

static void image_free(struct prof_image *im)
{
    for (int i = 0; i < im->argc; i++)
        free(im->argv[i]);
    free(im->argv);
    free(im->exe);
}

static int cmp_image(const void *a, const void *b)
{
    const struct prof_image *x = a, *y = b;
    if (x->t_ns != y->t_ns)
        return x->t_ns < y->t_ns ? -1 : 1;
    return y->from_shim - x->from_shim;
}

static int cmp_rss(const void *a, const void *b)
{
    const struct prof_rss_sample *x = a, *y = b;
    return x->t_ns < y->t_ns ? -1 : x->t_ns > y->t_ns;
}

static int cmp_mem(const void *a, const void *b)
{
    const struct prof_mem_sample *x = a, *y = b;
    return x->t_ns < y->t_ns ? -1 : x->t_ns > y->t_ns;
}

static int cmp_thread(const void *a, const void *b)
{
    const struct prof_thread *x = a, *y = b;
    return x->tid - y->tid;
}

static int cmp_proc(const void *a, const void *b)
{
    const struct prof_process *x = *(struct prof_process *const *)a, *y = *(struct prof_process *const *)b;
    if (x->start_s != y->start_s)
        return x->start_s < y->start_s ? -1 : 1;
    return x->pid - y->pid;
}

/* Both sources see the same exec chain (the monitor late, and maybe missing short images): merge in time order. */
static void merge_chain(struct prof_process *p)
{
    if (p->nimages < 2)
        return;
    qsort(p->images, p->nimages, sizeof *p->images, cmp_image);
    size_t o = 0;
    for (size_t i = 1; i < p->nimages; i++) {
        struct prof_image *cur = &p->images[o], *nx = &p->images[i];
        if (image_same(cur, nx)) {
            cur->from_shim |= nx->from_shim;
            cur->from_monitor |= nx->from_monitor;
            cur->is_static |= nx->is_static;
            cur->forked |= nx->forked;
            if ((!cur->exe || !cur->exe[0]) && nx->exe && nx->exe[0]) {
                free(cur->exe);
                cur->exe = nx->exe;
                nx->exe = NULL;
            }
            image_free(nx);
        } else {
            p->images[++o] = *nx;
        }
    }
    p->nimages = o + 1;
}

static const struct prof_image *image_at(const struct prof_process *p, uint64_t t)
{
    const struct prof_image *best = p->nimages ? &p->images[0] : NULL;
    for (size_t i = 0; i < p->nimages; i++)
        if (p->images[i].t_ns <= t)
            best = &p->images[i];
    return best;
}

static void decide_forked(struct prof_run *m, struct prof_process *p)
{
    if (p->nimages == 0)
        return;
    if (p->images[0].from_shim) {
        p->forked = p->images[0].forked && p->nimages == 1;
        return;
    }
    /* No shim: a child whose only image is its parent's image at that time forked without exec. */
    struct prof_process *pp = p->ppid > 0 ? prof_run_process(m, p->ppid) : NULL;
    if (!pp || p->nimages != 1)
        return;
    const struct prof_image *pi = image_at(pp, p->images[0].t_ns);
    p->forked = pi && image_same(pi, &p->images[0]);
}

/*
 * A process's role is its program, not its whole command line: `xargs md5sum` over six files
 * ran one program six times, not six programs. The program is argv[0] and the options (the
 * arguments that start with '-'); the operands (files, numbers, a shell's -c string) are
 * dropped. For CPython the script or `-m` module is the program too, kept with its options:
 * `python3 etl.py` and `python3 load.py` are two programs of one interpreter.
 */
static char *program_of(const struct prof_process *p)
{
    char buf[PROF_ROLE_MAX + 1];
    size_t o = 0;
    const struct prof_image *im = p->nimages ? &p->images[p->nimages - 1] : NULL;

    buf[0] = '\0';
    if (im && im->argc > 0) {
        int script = 0; /* CPython: the script or module named yet */
        for (int i = 0; i < im->argc && o < PROF_ROLE_MAX; i++) {
            const char *a = im->argv[i];
            int keep = i == 0 || a[0] == '-';
            if (p->python && !script && i > 0) {
                if (strcmp(a, "-m") == 0 && i + 1 < im->argc) {
                    keep = 1;
                } else if (i > 1 && strcmp(im->argv[i - 1], "-m") == 0) {
                    keep = script = 1;
                } else if (i > 1 && (strcmp(im->argv[i - 1], "-W") == 0 || strcmp(im->argv[i - 1], "-X") == 0)) {
                    keep = 1; /* the value of an interpreter option, not the script */
                } else if (strcmp(a, "-c") == 0) {
                    script = 1; /* the code string is the operand */
                } else if (a[0] != '-') {
                    keep = script = 1;
                }
            }
            if (!keep)
                continue;
            int w = snprintf(buf + o, sizeof buf - o, "%s%s", o ? " " : "", a);
            if (w < 0)
                break;
            o += (size_t)w;
        }
    } else if (im && im->exe && im->exe[0]) {
        snprintf(buf, sizeof buf, "%s", im->exe);
    } else {
        snprintf(buf, sizeof buf, "pid %d", p->pid);
    }
    return strdup(buf);
}

static const char *role_of(struct prof_run *m, struct prof_process *p, int depth)
{
    if (p->role)
        return p->role;
    struct prof_process *pp = p->forked && p->ppid > 0 ? prof_run_process(m, p->ppid) : NULL;
    if (pp && pp != p && depth < 64) {
        const char *pr = role_of(m, pp, depth + 1);
        size_t n = strlen(pr) + sizeof " (forked)";
        p->role = malloc(n);
        if (p->role)
            snprintf(p->role, n, "%s (forked)", pr);
    } else {
        p->role = program_of(p);
    }
    return p->role ? p->role : "";
}

static void decide_exit(struct prof_run *m, struct prof_process *p, const struct reaped *rp)
{
    int status = -1;
    uint64_t end = 0;

    if (p->have_z) {
        status = p->z_status;
        p->exit_source = "poolprof";
        end = p->z_t_ns;
    } else if (rp) {
        status = rp->status;
        p->exit_source = "parent";
        end = rp->t_ns;
    } else if (p->pid == m->root_pid && json_is_integer(json_object_get(json_object_get(m->run, "exit"), "status"))) {
        status = (int)json_integer_value(json_object_get(json_object_get(m->run, "exit"), "status"));
        p->exit_source = "poolprof";
    } else if (p->have_x && !p->have_shim_exit) {
        status = p->x_status;
        p->exit_source = "sampler";
        end = p->x_t_ns;
    }
    if (status >= 0) {
        p->exit_status = status;
        if (WIFEXITED(status)) {
            p->exit_how = "exited";
            p->exit_code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            p->exit_how = "killed";
            p->exit_signal = WTERMSIG(status);
        } else {
            p->exit_how = "vanished";
        }
    } else if (p->have_shim_exit) {
        p->exit_how = "exited";
        p->exit_code = p->shim_exit_code & 0xff;
        p->exit_source = "shim";
    } else {
        p->exit_how = "vanished";
        p->exit_source = NULL;
    }

    /* The end is the earliest sign of death: the shim's exit, the monitor losing it, the reap. */
    uint64_t cands[3] = {p->have_shim_exit ? p->shim_end_ns : 0, p->gone_ns, end};
    uint64_t e = 0;
    for (int i = 0; i < 3; i++)
        if (cands[i] && (!e || cands[i] < e))
            e = cands[i];
    if (!e)
        e = p->last_seen_ns;
    p->end_s = prof_run_seconds(m, e);
}

/* When the thread began: exact where the shim saw its start routine begin. */
static double thread_start(const struct prof_run *m, const struct prof_process *p, const struct prof_thread *t)
{
    if (t->tid == p->pid)
        return p->start_s; /* the main thread lives as long as the process */
    /* Otherwise the earlier of the first sample and the kernel's start time, which is tick-granular
     * and boot-based, so it is trusted only between the process start and the first sample. */
    uint64_t s = t->shim_start_ns;
    if (!s) {
        s = t->first_sample_ns;
        uint64_t pstart = m->start_ns + (uint64_t)(p->start_s * 1e9);
        uint64_t tick = 1000000000ull / (uint64_t)(m->ticks_per_sec > 0 ? m->ticks_per_sec : 100);
        if (t->start_ticks_ns && t->start_ticks_ns + tick >= pstart && (!s || t->start_ticks_ns < s))
            s = t->start_ticks_ns;
    }
    double start = s ? prof_run_seconds(m, s) : p->start_s;
    return start < p->start_s ? p->start_s : start;
}

/*
 * A thread the kernel started more than a tick before an attached run began brought
 * its cumulative counters along: the CPU, run-queue wait and context switches of its life
 * before. What it did in the run is what they grew by from the monitor's first reading, so an
 * idle thread of a service that has run for a day reads idle, not as a day's CPU in 3 s.
 */
static void since_run_start(const struct prof_run *m, struct prof_thread *t)
{
    uint64_t tick = 1000000000ull / (uint64_t)(m->ticks_per_sec > 0 ? m->ticks_per_sec : 100);
    if (!m->attached || !t->from_monitor || t->from_shim || !t->start_ticks_ns || t->start_ticks_ns + tick >= m->start_ns)
        return;
#define SINCE(field, first) t->c.field = t->c.field > t->mon_first.first ? t->c.field - t->mon_first.first : 0
    SINCE(cpu_ns, cpu);
    SINCE(runq_ns, runq);
    SINCE(utime_ns, utime);
    SINCE(stime_ns, stime);
    SINCE(vcsw, vcsw);
    SINCE(ivcsw, ivcsw);
#undef SINCE
}

static void finish_threads(struct prof_run *m, struct prof_process *p)
{
    for (size_t i = 0; i < p->nthreads; i++) {
        struct prof_thread *t = &p->threads[i];
        since_run_start(m, t);
        t->start_s = thread_start(m, p, t);
        if (t->shim_state == PROF_THREAD_ENDED || t->shim_state == PROF_THREAD_SNAPSHOT) {
            t->end_s = prof_run_seconds(m, umax(t->shim_end_ns, t->last_sample_ns));
            t->ended_by = t->shim_state == PROF_THREAD_ENDED ? "shim-exit" : "shim-snapshot";
        } else if (t->last_sample_ns) {
            t->end_s = prof_run_seconds(m, t->last_sample_ns);
            t->ended_by = "last-sample";
        } else {
            t->end_s = p->end_s;
            t->ended_by = "process-end";
        }
        if (t->tid == p->pid && t->end_s < p->end_s && strcmp(t->ended_by, "last-sample") == 0) {
            /* The monitor samples every interval; the main thread ran until the process ended. */
            t->end_s = p->end_s;
            t->ended_by = "process-end";
        }
        if (t->end_s < t->start_s)
            t->end_s = t->start_s;
        if (t->end_s > p->end_s)
            p->end_s = t->end_s;
    }
    qsort(p->threads, p->nthreads, sizeof *p->threads, cmp_thread);

    const struct prof_thread *main_t = NULL;
    for (size_t i = 0; i < p->nthreads; i++)
        if (p->threads[i].tid == p->pid)
            main_t = &p->threads[i];
    if (main_t && main_t->name[0]) {
        snprintf(p->comm, sizeof p->comm, "%s", main_t->name);
    } else if (p->nimages && p->images[p->nimages - 1].argc > 0) {
        const char *a0 = p->images[p->nimages - 1].argv[0], *sl = strrchr(a0, '/');
        snprintf(p->comm, sizeof p->comm, "%.15s", sl ? sl + 1 : a0);
    }
}

static void finish_rss(struct prof_process *p)
{
    qsort(p->rss, p->nrss, sizeof *p->rss, cmp_rss);
    qsort(p->mem, p->nmem, sizeof *p->mem, cmp_mem);
    p->rss_peak = p->vm_hwm;
    for (size_t i = 0; i < p->nrss; i++)
        p->rss_peak = umax(p->rss_peak, p->rss[i].rss);
    if (p->nrss) {
        p->rss_start = p->rss[0].rss;
        p->rss_end = p->rss[p->nrss - 1].rss;
        if (p->have_shim_exit && p->shim_rss_end && p->shim_end_ns >= p->rss[p->nrss - 1].t_ns)
            p->rss_end = p->shim_rss_end;
    } else if (p->have_shim_exit) {
        p->rss_end = p->shim_rss_end;
    }
    for (size_t i = 0; i < p->nmem; i++) {
        p->pss_peak = umax(p->pss_peak, p->mem[i].pss);
        p->uss_peak = umax(p->uss_peak, p->mem[i].uss);
    }
}

/* The run's span, and every process's start. */
static void finish_times(struct prof_run *m)
{
    uint64_t lo = 0, hi = 0;

    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        if (p->first_seen_ns && (!lo || p->first_seen_ns < lo))
            lo = p->first_seen_ns;
        hi = umax(hi, p->last_seen_ns);
    }
    if (!m->start_ns) {
        m->start_ns = lo;
        prof_note(m->errors, "run.json has no start_ns: the run starts at the first observation");
    }
    if (!m->end_ns) {
        m->end_ns = umax(hi, m->start_ns);
        prof_note(m->errors, "run.json has no end_ns (poolprof did not finish): the run ends at the last observation");
    }
    m->wall_s = prof_run_seconds(m, m->end_ns);
    if (m->wall_s < 0)
        m->wall_s = 0;
    if (m->interval_ms <= 0)
        m->interval_ms = DEFAULT_INTERVAL_MS;

    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        merge_chain(p);
        uint64_t s = 0;
        if (p->shim_start_ns)
            s = p->shim_start_ns;
        if (p->mon_start_ns && (!s || p->mon_start_ns < s))
            s = p->mon_start_ns;
        if (!s)
            s = p->first_seen_ns;
        p->start_s = prof_run_seconds(m, s);
        if (p->start_s < 0)
            p->start_s = 0;
    }
}

static int finish(struct merger *M)
{
    struct prof_run *m = M->m;

    finish_times(m);
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        const struct reaped *rp = NULL;
        /* A reap before the process began is an earlier holder of a recycled pid. */
        for (size_t k = 0; k < M->nreaped; k++)
            if (M->reaped[k].pid == p->pid && M->reaped[k].reaper != p->pid &&
                prof_run_seconds(m, M->reaped[k].t_ns) >= p->start_s)
                rp = &M->reaped[k];
        decide_forked(m, p);
        decide_exit(m, p, rp);
        if (p->end_s < p->start_s)
            p->end_s = p->start_s;
        finish_threads(m, p);
        finish_rss(p);
    }
    for (size_t i = 0; i < m->nprocs; i++)
        if (!role_of(m, m->procs[i], 0))
            return PROF_ENOMEM;
    qsort(m->procs, m->nprocs, sizeof *m->procs, cmp_proc);
    return 0;
}

/* Append every string of src to dst. */
static void carry(json_t *dst, const json_t *src)
{
    size_t i;
    json_t *v;
    json_array_foreach(src, i, v)
        json_array_append(dst, v);
}

int prof_merge(struct prof_records *rec, struct prof_run *m)
{
    struct merger M = {.m = m};
    int rc = 0;

    memset(m, 0, sizeof *m);
    if (!rec)
        return PROF_EINVAL;
    m->rundir = strdup(rec->rundir);
    m->notes = json_array();
    m->errors = json_array();
    if (!m->rundir || !m->notes || !m->errors)
        return PROF_ENOMEM;
    m->run = json_incref(rec->run.doc);
    m->sweep = json_incref(rec->sweep);
    m->machine = rec->run.machine;
    m->start_ns = rec->run.start_ns;
    m->end_ns = rec->run.end_ns;
    m->root_pid = rec->run.root_pid;
    m->attached = rec->run.attached;
    m->interval_ms = rec->monitor.interval_ms > 0 ? rec->monitor.interval_ms : rec->run.interval_ms;
    m->ticks_per_sec = rec->monitor.ticks_per_sec > 0 ? rec->monitor.ticks_per_sec : rec->run.machine.clock_ticks;
    m->monitor_cpu_ns = rec->monitor.self_cpu_ns;

    carry(m->errors, rec->shim_errors);
    for (size_t i = 0; rc == 0 && i < rec->nimages; i++)
        rc = add_image(&M, &rec->images[i]);
    carry(m->errors, rec->monitor_errors);
    carry(m->notes, rec->monitor_notes);
    for (size_t i = 0; rc == 0 && i < rec->monitor.nlines; i++)
        rc = mon_line(&M, &rec->monitor.lines[i]);
    if (rc == 0 && rec->sampler.present)
        rc = smp_procs(&M, &rec->sampler);
    if (rc == 0)
        rc = finish(&M);
    if (rc == 0 && M.runq_est)
        prof_note(m->notes, "run-queue wait of %zu threads and short processes that lived under 1 ms estimated, not read: "
                  "what their life leaves after their CPU and timed waits (reading it costs ~20 us a thread)", M.runq_est);
    free(M.reaped);
    if (rc)
        return rc;
    const struct prof_rec_monitor *k = &rec->monitor;
    if (k->nk >= 2 && k->k_busy1 > k->k_busy0 && k->k_steal1 >= k->k_steal0)
        m->steal_per_cpu = (double)(k->k_steal1 - k->k_steal0) / (double)(k->k_busy1 - k->k_busy0);
    carry(m->errors, rec->sampler_errors);
    carry(m->notes, rec->sweep_notes);
    carry(m->errors, rec->counters_errors);
    if ((rc = prof_merge_counters(rec, m)) != 0)
        return rc;
    return rec->sampler.present ? prof_merge_sampler(rec, m) : 0;
}
