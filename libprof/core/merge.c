/* merge.c: reads a run directory (run.json, monitor.rec, the shim's process records) into one model of the process tree. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prof.h"
#include "format/monrec.h"
#include "format/shm.h"
#include "core/model.h"
#include "format/recline.h"
#include "format/rundir.h"

#define DEFAULT_INTERVAL_MS 20

/* A child reaped by a process of the tree, from a record's children[]: applied once every record is read. */
struct reaped {
    int pid, status, reaper;
    uint64_t t_ns;
};

struct loader {
    struct prof_run *m;
    struct reaped *reaped;
    size_t nreaped, capreaped;
    size_t cache;           /* index of the last process looked up: records come in runs of one pid */
    long page_size;
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

/* Arrays in the model carry no capacity field: they grow by doubling from 8, so the count says when. */
static void *push(void *p, size_t n, size_t elem)
{
    if (n != 0 && (n < 8 || (n & (n - 1))))
        return p;
    return realloc(p, (n == 0 ? 8 : n * 2) * elem);
}

#define PUSH(arr, n)                                                     \
    ({                                                                   \
        __typeof__(arr) q_ = push((arr), (n), sizeof(*(arr)));           \
        q_ ? ((arr) = q_, memset(&(arr)[(n)], 0, sizeof(*(arr))), &(arr)[(n)++]) : NULL; \
    })

static void add_string(json_t *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_string(json_t *arr, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(arr, json_string(buf));
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static struct prof_process *proc_get(struct loader *L, int pid)
{
    struct prof_run *m = L->m;

    if (L->cache < m->nprocs && m->procs[L->cache]->pid == pid)
        return m->procs[L->cache];
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i]->pid == pid) {
            L->cache = i;
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
    L->cache = m->nprocs - 1;
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

/* ---- run.json ---- */

static uint64_t json_u64(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) > 0)
        return (uint64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) > 0)
        return (uint64_t)json_real_value(v);
    return 0;
}

static int load_machine(const json_t *j, struct prof_machine *mc)
{
    if (!json_is_object(j))
        return PROF_EFORMAT;
    memset(mc, 0, sizeof *mc);
    mc->online_cpus = (int)json_u64(j, "online_cpus");
    mc->affinity_cpus = (int)json_u64(j, "affinity_cpus");
    json_t *q = json_object_get(j, "quota_cpus");
    mc->quota_cpus = json_is_number(q) ? json_number_value(q) : 0;
    mc->cgroup_version = (int)json_u64(j, "cgroup_version");
    mc->physical_cores = (int)json_u64(j, "physical_cores");
    mc->usable_cpus = (int)json_u64(j, "usable_cpus");
    mc->mem_total_bytes = json_u64(j, "mem_total_bytes");
    mc->mem_available_bytes = json_u64(j, "mem_available_bytes");
    mc->cgroup_mem_limit_bytes = json_u64(j, "cgroup_mem_limit_bytes");
    mc->nofile_limit = json_u64(j, "nofile_limit");
    mc->clock_ticks = (long)json_u64(j, "clock_ticks");
    mc->page_size = (long)json_u64(j, "page_size");
    /* Without usable_cpus no worker count can be judged: the run.json is not one the CLI wrote. */
    return mc->usable_cpus > 0 ? 0 : PROF_EFORMAT;
}

static int load_run_json(struct prof_run *m)
{
    char path[PATH_MAX];
    json_error_t jerr;

    snprintf(path, sizeof path, "%s/run.json", m->rundir);
    m->run = json_load_file(path, 0, &jerr);
    if (!m->run)
        return access(path, F_OK) == 0 ? PROF_EFORMAT : PROF_ENOENT;
    const char *fmt = json_string_value(json_object_get(m->run, "format"));
    if (!json_is_object(m->run) || !fmt || strcmp(fmt, PROF_RUN_FORMAT) != 0)
        return PROF_EFORMAT;
    int rc = load_machine(json_object_get(m->run, "machine"), &m->machine);
    if (rc)
        return rc;
    m->start_ns = json_u64(m->run, "start_ns");
    m->end_ns = json_u64(m->run, "end_ns");
    m->root_pid = (int)json_u64(m->run, "root_pid");
    m->interval_ms = (int)json_u64(json_object_get(m->run, "options"), "interval_ms");
    m->ticks_per_sec = m->machine.clock_ticks;
    return 0;
}

/* ---- proc/<pid>-<start_ns>.rec ---- */

static int argv_from_nul(struct prof_image *im, const char *buf, size_t cap, uint32_t argc)
{
    size_t off = 0;

    for (uint32_t i = 0; i < argc && off < cap; i++) {
        size_t n = strnlen(buf + off, cap - off);
        if (off + n >= cap)
            break; /* truncated element without its NUL: the shim truncates at a NUL boundary */
        char **na = realloc(im->argv, (im->argc + 1) * sizeof *na);
        if (!na)
            return PROF_ENOMEM;
        im->argv = na;
        if (!(im->argv[im->argc] = dupn(buf + off, n)))
            return PROF_ENOMEM;
        im->argc++;
        off += n + 1;
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int prof_lock_kind_serializes(uint32_t kind)
{
    return kind == PROF_LOCK_MUTEX || kind == PROF_LOCK_RWLOCK || kind == PROF_LOCK_SPIN;
}

/* Is lock (kind, wait) hotter than the current pick? A semaphore an executor parks idle workers on
 * can out-wait any mutex; it says nothing about serialization, so the kind ranks first. */
static int lock_hotter(uint32_t kind, uint64_t wait_ns, uint32_t cur_kind, uint64_t cur_wait_ns)
{
    int a = prof_lock_kind_serializes(kind), b = prof_lock_kind_serializes(cur_kind);
    if (a != b)
        return a > b;
    return wait_ns > cur_wait_ns;
}

/* Marker stages of one image, summed into the process's by name (an exec'd image may reuse a name). */
static int add_markers(struct prof_process *p, const struct prof_shm_header *h)
{
    for (int i = 0; i < PROF_SHM_MAX_STAGES; i++) {
        const struct prof_shm_stage *g = &h->stages[i];
        if (!g->name_hash || !g->ready)
            continue;
        size_t n = strnlen(g->name, sizeof g->name);
        if (n == 0 || n >= sizeof g->name)
            continue; /* never NUL-terminated: not a name the shim finished writing */
        struct prof_marker *k = NULL;
        for (size_t j = 0; j < p->nmarkers && !k; j++)
            if (strcmp(p->markers[j].name, g->name) == 0)
                k = &p->markers[j];
        if (!k) {
            if (!(k = PUSH(p->markers, p->nmarkers)))
                return PROF_ENOMEM;
            memcpy(k->name, g->name, n + 1);
        }
        k->threads += g->threads;
        k->entries += g->entries;
        k->self_ns += g->self_ns;
        k->incl_ns += g->incl_ns;
        k->cpu_ns += g->cpu_ns;
        k->lock_wait_ns += g->lock_wait_ns;
        k->gil_wait_ns += g->gil_wait_ns;
        k->io_wait_ns += g->io_wait_ns;
        k->io_bytes += g->io_bytes;
        k->net_wait_ns += g->net_wait_ns;
        k->net_round_trips += g->net_round_trips;
        k->ipc_ns += g->ipc_ns;
        k->ipc_bytes_sent += g->ipc_bytes_sent;
        k->ipc_bytes_received += g->ipc_bytes_received;
        k->ipc_sends += g->ipc_sends;
        k->evloop_wait_ns += g->evloop_wait_ns;
        k->join_wait_ns += g->join_wait_ns;
        k->handoff_wait_ns += g->handoff_wait_ns;
        if (g->first_begin_ns && (!k->first_begin_ns || g->first_begin_ns < k->first_begin_ns))
            k->first_begin_ns = g->first_begin_ns;
        k->last_end_ns = umax(k->last_end_ns, g->last_end_ns);
    }
    return 0;
}

static int add_shim_record(struct loader *L, const struct prof_shm_header *h, const char *fname)
{
    struct prof_process *p = proc_get(L, h->pid);
    if (!p)
        return PROF_ENOMEM;
    p->nrecs++;
    p->shim = 1;
    if (h->flags & PROF_PROC_PYTHON)
        p->python = 1;
    if (!p->shim_start_ns || h->start_ns < p->shim_start_ns) {
        p->shim_start_ns = h->start_ns;
        p->ppid = h->ppid; /* the first image's parent: the forker, before any reparenting */
    }
    seen(p, h->start_ns);
    seen(p, h->end_ns);
    p->vm_hwm = umax(p->vm_hwm, h->vm_hwm_bytes);
    p->dropped_threads += h->dropped_threads;
    p->dropped_children += h->dropped_children;
    if (h->dropped_threads)
        add_string(L->m->errors, "%s: %u threads beyond the record's %d slots were not recorded", fname,
                   h->dropped_threads, PROF_SHM_MAX_THREADS);

    /* The latest image decides how the process ended as far as the shim knows: an exec or a
     * kill (end_ns == 0) after an earlier image's exit means that exit no longer stands. */
    if (h->start_ns >= p->shim_last_img_ns) {
        p->shim_last_img_ns = h->start_ns;
        p->have_shim_exit = h->end_ns && (h->end_how == PROF_END_EXIT || h->end_how == PROF_END_UNDERSCORE_EXIT);
        p->shim_exit_code = h->exit_code;
        p->shim_end_ns = h->end_ns;
        p->shim_end_how = h->end_how;
        p->shim_rss_end = h->rss_end_bytes;
    }

    struct prof_image *im = PUSH(p->images, p->nimages);
    if (!im)
        return PROF_ENOMEM;
    im->t_ns = h->start_ns;
    im->from_shim = 1;
    im->forked = !!(h->flags & PROF_PROC_FORKED);
    im->exe = dupn(h->exe, strnlen(h->exe, sizeof h->exe));
    if (!im->exe || argv_from_nul(im, h->argv, sizeof h->argv, h->argc))
        return PROF_ENOMEM;

    uint32_t nt = h->nthreads < PROF_SHM_MAX_THREADS ? h->nthreads : PROF_SHM_MAX_THREADS;
    for (uint32_t i = 0; i < nt; i++) {
        const struct prof_shm_thread *s = &h->threads[i];
        if (s->state == PROF_THREAD_FREE || s->tid <= 0)
            continue;
        struct prof_thread *t = thread_get(p, s->tid);
        if (!t)
            return PROF_ENOMEM;
        t->from_shim = 1;
        if (s->start_ns && (!t->shim_start_ns || s->start_ns < t->shim_start_ns))
            t->shim_start_ns = s->start_ns;
        /* Images come in any order: keep apart what came before the latest one. */
        struct prof_counts *b = &t->before_last_img;
        if (h->start_ns > t->shim_img_ns) {
            b->cpu_ns = t->shim_cpu_ns; /* everything summed until now came before this image */
#define KEEP(name) b->name = t->name;
            PROF_SUMMED_COUNTERS(KEEP)
#undef KEEP
        } else if (h->start_ns < t->shim_img_ns) {
            b->cpu_ns = umax(b->cpu_ns, s->cpu_ns);
#define ADD(name) b->name += s->name;
            PROF_SUMMED_COUNTERS(ADD)
#undef ADD
        }
        /* State and end come from the latest image that knew the thread (exec keeps the main thread). */
        if (h->start_ns >= t->shim_img_ns) {
            t->shim_img_ns = h->start_ns;
            t->shim_state = (int)s->state;
            t->shim_end_ns = s->state == PROF_THREAD_RUNNING ? 0 : s->end_ns;
        }
        set_name(t, s->name, sizeof s->name, s->end_ns ? s->end_ns : h->start_ns);
        t->shim_cpu_ns = umax(t->shim_cpu_ns, s->cpu_ns);
        t->utime_ns = umax(t->utime_ns, s->utime_us * 1000);
        t->stime_ns = umax(t->stime_ns, s->stime_us * 1000);
        t->runq_ns = umax(t->runq_ns, s->runq_ns);
        t->vcsw = umax(t->vcsw, s->vcsw);
        t->ivcsw = umax(t->ivcsw, s->ivcsw);
#define SUM(name) t->name += s->name;
        PROF_SUMMED_COUNTERS(SUM)
#undef SUM
        t->lock_acquisitions += s->lock_acquisitions;
        t->lock_contended += s->lock_contended;
        t->net_round_trips += s->net_round_trips;
        t->net_bytes += s->net_bytes;
        seen(p, s->end_ns);
    }

    uint32_t nc = h->nchildren < PROF_SHM_MAX_CHILDREN ? h->nchildren : PROF_SHM_MAX_CHILDREN;
    for (uint32_t i = 0; i < nc; i++) {
        const struct prof_shm_child *c = &h->children[i];
        if (c->pid <= 0)
            continue;
        struct reaped *r = grow(L->reaped, &L->capreaped, L->nreaped, sizeof *r);
        if (!r)
            return PROF_ENOMEM;
        L->reaped = r;
        L->reaped[L->nreaped++] = (struct reaped){c->pid, c->status, h->pid, c->t_ns};
    }

    for (int i = 0; i < PROF_SHM_MAX_LOCKS; i++) {
        const struct prof_shm_lock *k = &h->locks[i];
        /* The GIL's own mutexes (waits on them before a GIL wait named them) are the GIL, reported apart. */
        if (!k->addr || !k->contended || k->addr == h->gil_mutex || k->addr == h->gil_switch_mutex)
            continue;
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
        p->hottest.claim_cpu_ns = k->claim_cpu_ns;
    }
    return add_markers(p, h);
}

/* Read one record; a damaged or foreign file is noted and skipped, never trusted. */
static int load_record(struct loader *L, int dirfd, const char *fname, struct prof_shm_header *h)
{
    int fd = openat(dirfd, fname, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0) {
        add_string(L->m->errors, "proc/%s: skipped: %s", fname, strerror(errno));
        return 0;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        add_string(L->m->errors, "proc/%s: skipped: not a regular file", fname);
        close(fd);
        return 0;
    }
    if ((size_t)st.st_size < sizeof *h || read_full(fd, h, sizeof *h) != 0) {
        add_string(L->m->errors, "proc/%s: skipped: truncated (%lld of %zu bytes)", fname,
                   (long long)st.st_size, sizeof *h);
        close(fd);
        return 0;
    }
    close(fd);
    if (h->magic != PROF_SHM_MAGIC) {
        add_string(L->m->errors, "proc/%s: skipped: not a poolprof process record", fname);
        return 0;
    }
    if (h->version != PROF_SHM_VERSION || h->size != sizeof *h) {
        add_string(L->m->errors, "proc/%s: skipped: record version %u size %u, expected version %d size %zu",
                   fname, h->version, h->size, PROF_SHM_VERSION, sizeof *h);
        return 0;
    }
    if (h->pid <= 0 || h->start_ns == 0) {
        add_string(L->m->errors, "proc/%s: skipped: the shim never filled the header", fname);
        return 0;
    }
    return add_shim_record(L, h, fname);
}

static int load_records(struct loader *L)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/proc", L->m->rundir);
    DIR *d = opendir(path);
    if (!d) {
        if (errno != ENOENT)
            add_string(L->m->errors, "proc/: unreadable: %s", strerror(errno));
        return 0;
    }
    struct prof_shm_header *h = malloc(sizeof *h);
    if (!h) {
        closedir(d);
        return PROF_ENOMEM;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".rec") != 0)
            continue;
        rc = load_record(L, dirfd(d), e->d_name, h);
    }
    free(h);
    closedir(d);
    return rc;
}

/* ---- monitor.rec ---- */

/* Split "a,b,c" (escaped elements) into an argv of unescaped strings. */
static int parse_argv(struct prof_image *im, char *list)
{
    if (!list || !*list)
        return 0;
    for (char *s = list;;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        size_t n = prof_rec_unescape(s);
        char **na = realloc(im->argv, (im->argc + 1) * sizeof *na);
        if (!na)
            return PROF_ENOMEM;
        im->argv = na;
        if (!(im->argv[im->argc] = dupn(s, n)))
            return PROF_ENOMEM;
        im->argc++;
        if (!comma)
            break;
        s = comma + 1;
    }
    return 0;
}

static int mon_image(struct loader *L, struct prof_process *p, struct prof_fields *f, uint64_t t)
{
    struct prof_image *im = PUSH(p->images, p->nimages);
    if (!im)
        return PROF_ENOMEM;
    im->t_ns = t;
    im->from_monitor = 1;
    uint64_t st = 0;
    im->is_static = prof_field_u64(f, "static", &st) == 0 && st == 1;
    if (im->is_static)
        p->is_static = 1;
    char *exe = prof_field(f, "exe");
    if (exe) {
        size_t n = prof_rec_unescape(exe);
        im->exe = dupn(exe, n);
    } else {
        im->exe = strdup("");
    }
    if (!im->exe)
        return PROF_ENOMEM;
    (void)L;
    return parse_argv(im, prof_field(f, "argv"));
}

static uint64_t ticks_to_ns(const struct prof_run *m, uint64_t ticks)
{
    long hz = m->ticks_per_sec > 0 ? m->ticks_per_sec : 100;
    return ticks / (uint64_t)hz * 1000000000ull + ticks % (uint64_t)hz * 1000000000ull / (uint64_t)hz;
}

/* One parsed line; returns 0, 1 for a line that is malformed (counted), or PROF_ENOMEM. */
static int mon_line(struct loader *L, char type, struct prof_fields *f)
{
    struct prof_run *m = L->m;
    uint64_t t = 0, x = 0;
    long long pid = 0;

    if (type == 'S') {
        if (prof_field_u64(f, "interval_ms", &x) == 0 && x > 0)
            m->interval_ms = (int)x;
        if (prof_field_u64(f, "ticks_per_sec", &x) == 0 && x > 0)
            m->ticks_per_sec = (long)x;
        if (prof_field_u64(f, "page_size", &x) == 0 && x > 0)
            L->page_size = (long)x;
        return 0;
    }
    if (type == 'C') {
        if (prof_field_u64(f, "self_cpu_ns", &x) == 0 && x > m->monitor_cpu_ns)
            m->monitor_cpu_ns = x;
        return 0;
    }
    if (type == 'K') {
        uint64_t busy, steal;
        if (prof_field_u64(f, "busy", &busy) != 0 || prof_field_u64(f, "steal", &steal) != 0)
            return 1;
        if (m->nk++ == 0) {
            m->k_busy0 = busy;
            m->k_steal0 = steal;
        }
        m->k_busy1 = busy;
        m->k_steal1 = steal;
        return 0;
    }
    if (!strchr("NERMTGZ", type))
        return 0; /* unknown types are skipped by design */
    if (prof_field_u64(f, "t", &t) != 0 || prof_field_int(f, "pid", &pid) != 0 || pid <= 0 || pid > INT_MAX)
        return 1;
    struct prof_process *p = proc_get(L, (int)pid);
    if (!p)
        return PROF_ENOMEM;
    seen(p, t);

    switch (type) {
    case 'N': {
        long long ppid = -1;
        if (!p->mon_start_ns || t < p->mon_start_ns)
            p->mon_start_ns = t;
        if (prof_field_int(f, "ppid", &ppid) == 0 && !p->shim)
            p->ppid = (int)ppid;
        if (prof_field_u64(f, "start_ticks", &x) == 0 && x > 0) {
            /* The kernel's start time: tick-granular but not late like the observation. */
            uint64_t st = ticks_to_ns(m, x);
            uint64_t tick = 1000000000ull / (uint64_t)(m->ticks_per_sec > 0 ? m->ticks_per_sec : 100);
            if (st <= t && st + tick >= m->start_ns && (!p->mon_start_ns || st < p->mon_start_ns))
                p->mon_start_ns = st < m->start_ns ? m->start_ns : st;
        }
        return mon_image(L, p, f, t);
    }
    case 'E':
        return mon_image(L, p, f, t);
    case 'R': {
        if (prof_field_u64(f, "rss", &x) != 0)
            return 1;
        struct prof_rss_sample *s = PUSH(p->rss, p->nrss);
        if (!s)
            return PROF_ENOMEM;
        s->t_ns = t;
        s->rss = x;
        return 0;
    }
    case 'M': {
        struct prof_mem_sample *s = PUSH(p->mem, p->nmem);
        if (!s)
            return PROF_ENOMEM;
        s->t_ns = t;
        s->pss = prof_field_u64_or0(f, "pss");
        s->uss = prof_field_u64_or0(f, "uss");
        s->swap = prof_field_u64_or0(f, "swap");
        return 0;
    }
    case 'T': {
        long long tid = 0;
        if (prof_field_int(f, "tid", &tid) != 0 || tid <= 0 || tid > INT_MAX)
            return 1;
        struct prof_thread *th = thread_get(p, (int)tid);
        if (!th)
            return PROF_ENOMEM;
        th->from_monitor = 1;
        if (!th->first_sample_ns || t < th->first_sample_ns)
            th->first_sample_ns = t;
        th->last_sample_ns = umax(th->last_sample_ns, t);
        char *name = prof_field(f, "name");
        if (name) {
            size_t n = prof_rec_unescape(name);
            set_name(th, name, n, t);
        }
        th->mon_cpu_ns = umax(th->mon_cpu_ns, prof_field_u64_or0(f, "cpu"));
        th->runq_ns = umax(th->runq_ns, prof_field_u64_or0(f, "runq"));
        th->utime_ns = umax(th->utime_ns, prof_field_u64_or0(f, "utime"));
        th->stime_ns = umax(th->stime_ns, prof_field_u64_or0(f, "stime"));
        th->vcsw = umax(th->vcsw, prof_field_u64_or0(f, "vcsw"));
        th->ivcsw = umax(th->ivcsw, prof_field_u64_or0(f, "ivcsw"));
        if (prof_field_u64(f, "start_ticks", &x) == 0 && x > 0)
            th->start_ticks_ns = ticks_to_ns(m, x);
        return 0;
    }
    case 'G':
        if (!p->gone_ns || t < p->gone_ns)
            p->gone_ns = t;
        return 0;
    case 'Z': {
        long long st = 0;
        if (prof_field_int(f, "status", &st) != 0)
            return 1;
        p->have_z = 1;
        p->z_status = (int)st;
        p->z_t_ns = t;
        return 0;
    }
    }
    return 0;
}

/* Tokenise one line in place: TYPE SP key=value { SP key=value }. Values stay escaped until used. */
static int load_monitor(struct loader *L)
{
    struct prof_run *m = L->m;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/monitor.rec", m->rundir);
    FILE *fp = fopen(path, "re");
    if (!fp) {
        add_string(m->errors, "monitor.rec: %s: figures come from the shim's records only", strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, bad = 0;
    int rc = 0, version_ok = 0;

    while (rc == 0 && (len = getline(&line, &cap, fp)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') {
            /* The monitor appends whole lines; a line without LF is the one being written when it stopped. */
            add_string(m->notes, "monitor.rec: torn last line %ld ignored", lineno);
            break;
        }
        line[--len] = '\0';
        if (len == 0)
            continue;
        char type;
        struct prof_fields f;
        if (prof_rec_tokenize(line, &type, &f) != 0) {
            bad++;
            continue;
        }
        if (lineno == 1) {
            uint64_t v = 0;
            if (type != 'V' || prof_field_u64(&f, "version", &v) != 0 || v != PROF_MONREC_VERSION) {
                add_string(m->errors, "monitor.rec: skipped: not monitor format version %d", PROF_MONREC_VERSION);
                break;
            }
            version_ok = 1;
            continue;
        }
        int r = mon_line(L, type, &f);
        if (r == 1)
            bad++;
        else if (r < 0)
            rc = r;
    }
    if (bad)
        add_string(m->errors, "monitor.rec: %ld malformed lines skipped", bad);
    if (lineno == 0)
        add_string(m->errors, "monitor.rec: empty");
    (void)version_ok;
    free(line);
    fclose(fp);
    return rc;
}

/* ---- finishing the model ---- */

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

static struct prof_process *find_proc(struct prof_run *m, int pid)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i]->pid == pid)
            return m->procs[i];
    return NULL;
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
    struct prof_process *pp = p->ppid > 0 ? find_proc(m, p->ppid) : NULL;
    if (!pp || p->nimages != 1)
        return;
    const struct prof_image *pi = image_at(pp, p->images[0].t_ns);
    p->forked = pi && image_same(pi, &p->images[0]);
}

static char *join_argv(const struct prof_process *p)
{
    char buf[PROF_ROLE_MAX + 1];
    size_t o = 0;
    const struct prof_image *im = p->nimages ? &p->images[p->nimages - 1] : NULL;

    buf[0] = '\0';
    if (im && im->argc > 0) {
        for (int i = 0; i < im->argc && o < PROF_ROLE_MAX; i++) {
            int w = snprintf(buf + o, sizeof buf - o, "%s%s", i ? " " : "", im->argv[i]);
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
    struct prof_process *pp = p->forked && p->ppid > 0 ? find_proc(m, p->ppid) : NULL;
    if (pp && pp != p && depth < 64) {
        const char *pr = role_of(m, pp, depth + 1);
        size_t n = strlen(pr) + sizeof " (forked)";
        p->role = malloc(n);
        if (p->role)
            snprintf(p->role, n, "%s (forked)", pr);
    } else {
        p->role = join_argv(p);
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

static void finish_threads(struct prof_run *m, struct prof_process *p)
{
    for (size_t i = 0; i < p->nthreads; i++) {
        struct prof_thread *t = &p->threads[i];
        if (t->tid == p->pid) {
            t->start_s = p->start_s; /* the main thread lives as long as the process */
        } else {
            /* The shim saw the start routine begin: exact. Otherwise the earlier of the first
             * sample and the kernel's start time, which is tick-granular and boot-based, so it
             * is trusted only between the process start and the first sample. */
            uint64_t s = t->shim_start_ns;
            if (!s) {
                s = t->first_sample_ns;
                uint64_t pstart = m->start_ns + (uint64_t)(p->start_s * 1e9);
                uint64_t tick = 1000000000ull / (uint64_t)(m->ticks_per_sec > 0 ? m->ticks_per_sec : 100);
                if (t->start_ticks_ns && t->start_ticks_ns + tick >= pstart && (!s || t->start_ticks_ns < s))
                    s = t->start_ticks_ns;
            }
            t->start_s = s ? prof_run_seconds(m, s) : p->start_s;
            if (t->start_s < p->start_s)
                t->start_s = p->start_s;
        }
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
        t->cpu_ns = umax(t->shim_cpu_ns, t->mon_cpu_ns);
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

static int finish(struct loader *L)
{
    struct prof_run *m = L->m;
    uint64_t lo = 0, hi = 0;

    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        if (p->first_seen_ns && (!lo || p->first_seen_ns < lo))
            lo = p->first_seen_ns;
        hi = umax(hi, p->last_seen_ns);
    }
    if (!m->start_ns) {
        m->start_ns = lo;
        add_string(m->errors, "run.json has no start_ns: the run starts at the first observation");
    }
    if (!m->end_ns) {
        m->end_ns = umax(hi, m->start_ns);
        add_string(m->errors, "run.json has no end_ns (poolprof did not finish): the run ends at the last observation");
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
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        const struct reaped *rp = NULL;
        /* A reap before the process began is an earlier holder of a recycled pid. */
        for (size_t k = 0; k < L->nreaped; k++)
            if (L->reaped[k].pid == p->pid && L->reaped[k].reaper != p->pid &&
                prof_run_seconds(m, L->reaped[k].t_ns) >= p->start_s)
                rp = &L->reaped[k];
        decide_forked(m, p);
        decide_exit(m, p, rp);
        if (p->end_s < p->start_s)
            p->end_s = p->start_s;
        finish_threads(m, p);
        finish_rss(p);
        if (p->dropped_children)
            add_string(m->errors, "pid %d: %u reaped children beyond %d slots were not recorded", p->pid,
                       p->dropped_children, PROF_SHM_MAX_CHILDREN);
    }
    for (size_t i = 0; i < m->nprocs; i++)
        if (!role_of(m, m->procs[i], 0))
            return PROF_ENOMEM;
    qsort(m->procs, m->nprocs, sizeof *m->procs, cmp_proc);
    return 0;
}

double prof_run_seconds(const struct prof_run *m, uint64_t t_ns)
{
    return ((double)t_ns - (double)m->start_ns) / 1e9;
}

int prof_run_load(const char *rundir, struct prof_run *m)
{
    struct loader L = {.m = m, .page_size = 4096};
    int rc;

    memset(m, 0, sizeof *m);
    if (!rundir)
        return PROF_EINVAL;
    m->rundir = strdup(rundir);
    m->notes = json_array();
    m->errors = json_array();
    if (!m->rundir || !m->notes || !m->errors)
        return PROF_ENOMEM;
    if ((rc = load_run_json(m)) != 0)
        return rc;
    if ((rc = load_records(&L)) == 0 && (rc = load_monitor(&L)) == 0)
        rc = finish(&L);
    if (m->nk >= 2 && m->k_busy1 > m->k_busy0 && m->k_steal1 >= m->k_steal0)
        m->steal_per_cpu = (double)(m->k_steal1 - m->k_steal0) / (double)(m->k_busy1 - m->k_busy0);
    if (rc == 0)
        rc = prof_run_load_samples(m);
    free(L.reaped);
    return rc;
}

void prof_run_free(struct prof_run *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        for (size_t k = 0; k < p->nimages; k++)
            image_free(&p->images[k]);
        free(p->images);
        free(p->threads);
        free(p->rss);
        free(p->mem);
        free(p->role);
        free(p->python_refused);
        free(p->markers);
        free(p);
    }
    free(m->procs);
    free(m->rundir);
    prof_samples_free(m->samples);
    json_decref(m->sampler);
    json_decref(m->run);
    json_decref(m->notes);
    json_decref(m->errors);
    memset(m, 0, sizeof *m);
}

/* ---- RSS series and rss.csv ---- */

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
            hi = umax(hi, procs[i]->rss[procs[i]->nrss - 1].t_ns);
        }
    if (lo == UINT64_MAX)
        return 0;
    /* Samples of one sweep carry slightly different times: bucket them by the interval. */
    size_t nb = (size_t)((hi - lo) / iv) + 1;
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
        size_t b0 = (size_t)((p->rss[0].t_ns - lo) / iv), b1 = (size_t)((p->rss[p->nrss - 1].t_ns - lo) / iv);
        uint64_t cur = p->rss[0].rss;
        for (size_t b = b0; b <= b1; b++) {
            /* The last sample inside bucket b, else the previous value carried forward. */
            while (k < p->nrss && (p->rss[k].t_ns - lo) / iv <= b)
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

int prof_run_write_rss_csv(const struct prof_run *m)
{
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

    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/rss.csv", m->rundir);
    snprintf(tmp, sizeof tmp, "%s/.rss.csv.tmp", m->rundir);
    FILE *fp = fopen(tmp, "we");
    if (!fp) {
        int e = prof_err_from_errno(errno);
        free(rows);
        return e;
    }
    fputs("t_seconds,pid,rss_bytes,pss_bytes\n", fp);
    for (size_t i = 0; i < o; i++) {
        fprintf(fp, "%.6f,%d,%llu,", prof_run_seconds(m, rows[i].t_ns), rows[i].pid,
                (unsigned long long)rows[i].rss);
        if (rows[i].pss >= 0)
            fprintf(fp, "%lld", (long long)rows[i].pss);
        fputc('\n', fp);
    }
    free(rows);
    return prof_file_commit(fp, 0, tmp, path);
}

int prof_file_commit(FILE *fp, int failed, const char *tmp, const char *path)
{
    int e = 0;
    if (!fp || failed || ferror(fp))
        e = prof_err_from_errno(errno ? errno : EIO);
    if (fp && fclose(fp) != 0 && !e)
        e = prof_err_from_errno(errno ? errno : EIO);
    if (!e && rename(tmp, path) != 0)
        e = prof_err_from_errno(errno);
    if (e)
        unlink(tmp);
    return e;
}
