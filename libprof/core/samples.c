/* samples.c: reads the sampler's record (sampler.rec) into the merged run, and writes the folded-stack files from it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <unistd.h>

#include "prof.h"
#include "format/monrec.h"
#include "format/samprec.h"
#include "format/elfsym.h"
#include "core/model.h"
#include "sampler/procstate.h"
#include "format/recline.h"

struct sframe_py {
    char *qual, *file;
    int line;
};

struct sframe_nat {
    int module;              /* -1: anonymous */
    uint64_t off;
};

struct sstack {
    uint32_t id;
    struct sframe_nat *nat; size_t nnat;   /* innermost first */
    struct sframe_py *py; size_t npy;      /* innermost first */
    int serialize;                         /* -1 not decided yet */
    char **names;                          /* symbolised native frames, filled on demand */
};

struct smodule {
    uint32_t id;
    char *path;
    struct prof_elf *elf;
    int tried;
};

/* Aggregated samples for the folded files and the lock sites. */
struct sentry {
    int pid, tid;
    int state;
    uint32_t stack;
    uint64_t addr, n, ns;
};

struct prof_samples {
    struct sstack *stacks; size_t nstacks, capstacks;
    struct smodule *mods; size_t nmods, capmods;
    struct sentry *ent; size_t nent, capent;
};

static uint64_t fu64(struct prof_fields *f, const char *key)
{
    return prof_field_u64_or0(f, key);
}

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 64;
    void *q = realloc(p, nc * elem);
    if (!q)
        return NULL;
    *cap = nc;
    return q;
}

static struct prof_process *proc_of(struct prof_run *m, int pid)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i]->pid == pid)
            return m->procs[i];
    return NULL;
}

static struct prof_thread *thread_of(struct prof_process *p, int tid)
{
    if (!p)
        return NULL;
    for (size_t i = 0; i < p->nthreads; i++)
        if (p->threads[i].tid == tid)
            return &p->threads[i];
    return NULL;
}

static struct sstack *stack_of(struct prof_samples *S, uint32_t id)
{
    /* Ids are dense and written in order: index id - 1, when present. */
    if (id && id <= S->nstacks && S->stacks[id - 1].id == id)
        return &S->stacks[id - 1];
    for (size_t i = 0; i < S->nstacks; i++)
        if (S->stacks[i].id == id)
            return &S->stacks[i];
    return NULL;
}

static const char *module_path(const struct prof_samples *S, int id)
{
    for (size_t i = 0; i < S->nmods; i++)
        if ((int)S->mods[i].id == id)
            return S->mods[i].path;
    return NULL;
}

static int parse_stack(struct prof_samples *S, struct prof_fields *f)
{
    struct sstack st = {.id = (uint32_t)fu64(f, "id"), .serialize = -1};
    char *nat = prof_field(f, "native"), *py = prof_field(f, "py");
    if (!st.id)
        return 1;
    if (nat && *nat) {
        size_t cap = 1;
        for (char *c = nat; *c; c++)
            cap += *c == ',';
        st.nat = calloc(cap, sizeof *st.nat);
        if (!st.nat)
            return PROF_ENOMEM;
        char *save = NULL;
        for (char *tok = strtok_r(nat, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *dot = strchr(tok, '.');
            if (!dot)
                continue;
            *dot = '\0';
            st.nat[st.nnat].module = tok[0] == '-' ? -1 : atoi(tok);
            st.nat[st.nnat].off = strtoull(dot + 1, NULL, 16);
            st.nnat++;
        }
    }
    if (py && *py) {
        size_t cap = 1;
        for (char *c = py; *c; c++)
            cap += *c == ',';
        st.py = calloc(cap, sizeof *st.py);
        if (!st.py)
            return PROF_ENOMEM;
        char *save = NULL;
        for (char *tok = strtok_r(py, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            prof_rec_unescape(tok);
            char *t1 = strchr(tok, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
            if (!t2)
                continue;
            *t1 = *t2 = '\0';
            st.py[st.npy].qual = strdup(tok);
            st.py[st.npy].file = strdup(t1 + 1);
            st.py[st.npy].line = atoi(t2 + 1);
            st.npy++;
        }
    }
    struct sstack *v = grow(S->stacks, &S->capstacks, S->nstacks, sizeof *v);
    if (!v)
        return PROF_ENOMEM;
    S->stacks = v;
    S->stacks[S->nstacks++] = st;
    return 0;
}

static int add_entry(struct prof_samples *S, int pid, int tid, int state, uint32_t stack, uint64_t addr, uint64_t n,
                     uint64_t ns)
{
    /* Entries of one thread come in runs: look back a little before appending. */
    for (size_t i = S->nent, k = 0; i > 0 && k < 64; i--, k++) {
        struct sentry *e = &S->ent[i - 1];
        if (e->pid == pid && e->tid == tid && e->state == state && e->stack == stack && e->addr == addr) {
            e->n += n;
            e->ns += ns;
            return 0;
        }
    }
    struct sentry *v = grow(S->ent, &S->capent, S->nent, sizeof *v);
    if (!v)
        return PROF_ENOMEM;
    S->ent = v;
    S->ent[S->nent++] = (struct sentry){pid, tid, state, stack, addr, n, ns};
    return 0;
}

/* ---- symbols ------------------------------------------------------------------ */

static const char *basename_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Name of native frame i of st: "func" when the module's symbols know it, else "module+0xoff". */
static const char *frame_name(struct prof_samples *S, struct sstack *st, size_t i)
{
    if (!st->names) {
        st->names = calloc(st->nnat ? st->nnat : 1, sizeof *st->names);
        if (!st->names)
            return "?";
    }
    if (st->names[i])
        return st->names[i];
    const struct sframe_nat *fr = &st->nat[i];
    char buf[512];
    struct smodule *mod = NULL;
    for (size_t k = 0; k < S->nmods; k++)
        if ((int)S->mods[k].id == fr->module)
            mod = &S->mods[k];
    const char *name = NULL;
    uint64_t symoff = 0;
    if (mod) {
        if (!mod->tried) {
            mod->tried = 1;
            if (prof_elf_open(mod->path, &mod->elf) < 0)
                mod->elf = NULL;
        }
        uint64_t vaddr;
        /* Frames after the first are return addresses: look up the call instruction. */
        uint64_t off = fr->off - (i > 0 && fr->off > 0);
        if (mod->elf && prof_elf_offset_to_vaddr(mod->elf, off, &vaddr) == 0)
            prof_elf_symbolize(mod->elf, vaddr, &name, &symoff);
        if (name)
            snprintf(buf, sizeof buf, "%s", name);
        else
            snprintf(buf, sizeof buf, "%s+0x%llx", basename_of(mod->path), (unsigned long long)fr->off);
    } else {
        snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)fr->off);
    }
    st->names[i] = strdup(buf);
    return st->names[i] ? st->names[i] : "?";
}

static int is_libc_module(const char *path)
{
    const char *b = basename_of(path ? path : "");
    return strncmp(b, "libc.so", 7) == 0 || strncmp(b, "libc-", 5) == 0 || strncmp(b, "libpthread", 10) == 0 ||
           strncmp(b, "ld-linux", 8) == 0;
}

static int is_serializer(struct prof_samples *S, struct sstack *st)
{
    if (st->serialize >= 0)
        return st->serialize;
    int yes = 0;
    for (size_t i = 0; i < st->npy && !yes; i++) {
        const char *f = st->py[i].file;
        /* multiprocessing's connection and queues call the C pickler (no Python frame of its own)
         * and copy the bytes: CPU on CPU there is the pool's serialization and transfer. */
        yes = strstr(f, "/pickle.py") || strstr(f, "/copyreg.py") || strstr(f, "multiprocessing/reduction.py") ||
              strstr(f, "multiprocessing/connection.py") || strstr(f, "multiprocessing/queues.py") ||
              strstr(f, "/json/") || strstr(f, "/marshal") || strstr(st->py[i].qual, "ForkingPickler");
    }
    for (size_t i = 0; i < st->nnat && !yes; i++) {
        const char *path = module_path(S, st->nat[i].module);
        if (path && strstr(basename_of(path), "_pickle"))
            yes = 1;
        else if (path) {
            const char *n = frame_name(S, st, i);
            yes = strstr(n, "pickle") || strstr(n, "Pickle") || strstr(n, "PyMarshal") || strstr(n, "_json");
        }
    }
    st->serialize = yes;
    return yes;
}

/* ---- loading --------------------------------------------------------------------- */

static void add_hottest_from_futexes(struct prof_run *m, struct prof_samples *S, json_t *qlines)
{
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        if (p->shim && !p->is_static)
            continue; /* the shim timed its locks exactly */
        uint64_t best_addr = 0, best_ns = 0, best_n = 0;
        /* Sum lock waits per futex address: one pass, over the few addresses seen. */
        struct { uint64_t addr, ns, n; } sum[64];
        size_t nsum = 0;
        for (size_t k = 0; k < S->nent; k++) {
            struct sentry *e = &S->ent[k];
            if (e->pid != p->pid || e->state != PROF_TS_LOCK || !e->addr)
                continue;
            size_t j = 0;
            while (j < nsum && sum[j].addr != e->addr)
                j++;
            if (j == nsum) {
                if (nsum == sizeof sum / sizeof *sum)
                    continue; /* the sampler itself follows at most 16 words per process */
                sum[nsum++] = (typeof(sum[0])){e->addr, 0, 0};
            }
            sum[j].ns += e->ns;
            sum[j].n += e->n;
        }
        for (size_t j = 0; j < nsum; j++)
            if (sum[j].ns > best_ns) {
                best_ns = sum[j].ns;
                best_n = sum[j].n;
                best_addr = sum[j].addr;
            }
        if (!best_addr)
            continue;
        /* The site: the first frame outside libc of the stack that waited longest on it. */
        struct sstack *top = NULL;
        uint64_t top_ns = 0;
        for (size_t k = 0; k < S->nent; k++) {
            struct sentry *e = &S->ent[k];
            if (e->pid == p->pid && e->state == PROF_TS_LOCK && e->addr == best_addr && e->ns > top_ns) {
                struct sstack *st = stack_of(S, e->stack);
                if (st && st->nnat) {
                    top = st;
                    top_ns = e->ns;
                }
            }
        }
        char site[PROF_SHM_SITE_BYTES] = "";
        if (top) {
            for (size_t f = 0; f < top->nnat; f++) {
                const char *path = module_path(S, top->nat[f].module);
                if (!path || is_libc_module(path))
                    continue;
                snprintf(site, sizeof site, "%s (%s)", frame_name(S, top, f), basename_of(path));
                break;
            }
        }
        if (!site[0])
            snprintf(site, sizeof site, "futex 0x%llx", (unsigned long long)best_addr);
        /* Hold time: the share of ticks at which the futex word was nonzero, over the process's life. */
        double held = 0;
        size_t nq = json_array_size(qlines);
        for (size_t k = 0; k < nq; k++) {
            json_t *q = json_array_get(qlines, k);
            if (json_integer_value(json_object_get(q, "pid")) == p->pid &&
                (uint64_t)json_integer_value(json_object_get(q, "addr")) == best_addr) {
                json_int_t ticks = json_integer_value(json_object_get(q, "ticks"));
                if (ticks > 0)
                    held = (double)json_integer_value(json_object_get(q, "held")) / (double)ticks;
            }
        }
        memset(&p->hottest, 0, sizeof p->hottest);
        snprintf(p->hottest.site, sizeof p->hottest.site, "%s", site);
        p->hottest.addr = best_addr;
        p->hottest.kind = PROF_LOCK_MUTEX;
        p->hottest.wait_ns = best_ns;
        p->hottest.contended = best_n;
        double life = p->end_s - p->start_s;
        p->hottest.hold_ns = (uint64_t)(held * (life > 0 ? life : 0) * 1e9);
        p->have_hottest = 1;
        p->hottest_from_sampler = 1;
    }
}

/*
 * A lock of a CPython process is taken from C (the interpreter, an extension's semaphore):
 * its native site says little. The sampler saw the threads that waited on its address, with
 * their Python frames; the stack that waited longest names the code: its innermost frame
 * outside the lock types' own wrappers (threading's Lock, RLock and Condition,
 * multiprocessing's SemLock), which would name the lock, not who waits on it.
 */
static const struct sframe_py *waiting_frame(const struct sstack *st)
{
    for (size_t i = 0; i < st->npy; i++) {
        const char *b = basename_of(st->py[i].file ? st->py[i].file : "");
        if (strcmp(b, "threading.py") != 0 && strcmp(b, "synchronize.py") != 0)
            return &st->py[i];
    }
    return &st->py[0];
}

static void add_hottest_python_sites(struct prof_run *m, struct prof_samples *S)
{
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        if (!p->have_hottest || !p->hottest.addr)
            continue;
        struct sstack *best = NULL;
        uint64_t best_ns = 0;
        for (size_t k = 0; k < S->nent; k++) {
            struct sentry *e = &S->ent[k];
            if (e->pid != p->pid || e->addr != p->hottest.addr || (e->state != PROF_TS_LOCK && e->state != PROF_TS_SYNC))
                continue;
            uint64_t ns = 0; /* this stack's wait on it, over every thread */
            for (size_t j = 0; j < S->nent; j++) {
                struct sentry *f = &S->ent[j];
                if (f->pid == e->pid && f->addr == e->addr && f->stack == e->stack && f->state == e->state)
                    ns += f->ns;
            }
            struct sstack *st = stack_of(S, e->stack);
            if (st && st->npy && ns > best_ns) {
                best = st;
                best_ns = ns;
            }
        }
        if (best) {
            const struct sframe_py *f = waiting_frame(best);
            snprintf(p->hottest.python_site, sizeof p->hottest.python_site, "%s (%s:%d)", f->qual,
                     basename_of(f->file), f->line);
        }
    }
}

int prof_run_load_samples(struct prof_run *m)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sampler.rec", m->rundir);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return 0;
    struct prof_samples *S = calloc(1, sizeof *S);
    json_t *info = json_object(), *qlines = json_array();
    if (!S || !info || !qlines) {
        free(S);
        json_decref(info);
        json_decref(qlines);
        fclose(fp);
        return PROF_ENOMEM;
    }
    m->samples = S;
    m->sampler = info;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, bad = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, fp)) > 0) {
        lineno++;
        if (line[len - 1] != '\n')
            break; /* torn last line: the sampler was writing it when it stopped */
        line[--len] = '\0';
        char type;
        struct prof_fields f;
        if (!len || prof_rec_tokenize(line, &type, &f) != 0) {
            bad += len > 0;
            continue;
        }
        if (lineno == 1) {
            if (type != 'V' || fu64(&f, "version") != PROF_SAMPREC_VERSION) {
                json_array_append_new(m->errors, json_string("sampler.rec: skipped: not sampler format version 1"));
                break;
            }
            continue;
        }
        switch (type) {
        case 'O': {
            char *why = prof_field(&f, "why"), *stacks = prof_field(&f, "stacks");
            if (why)
                prof_rec_unescape(why);
            json_object_set_new(info, "rate_hz", json_integer((json_int_t)fu64(&f, "rate_hz")));
            char *tick = prof_field(&f, "tick_hz"), *states = prof_field(&f, "states");
            json_object_set_new(info, "tick_hz", json_real(tick ? strtod(tick, NULL) : (double)fu64(&f, "rate_hz")));
            json_object_set_new(info, "states_from", json_string(states && strcmp(states, "switches") == 0 ? "switches" : "ticks"));
            json_object_set_new(info, "stacks", json_string(stacks ? stacks : "none"));
            json_object_set_new(info, "ptrace", json_boolean(fu64(&f, "ptrace")));
            char *sched = prof_field(&f, "sched");
            json_object_set_new(info, "sched", json_string(sched ? sched : "normal"));
            char *native = prof_field(&f, "native");
            json_object_set_new(info, "native", json_string(native ? native : (fu64(&f, "ptrace") ? "ptrace" : "none")));
            char *pscope = prof_field(&f, "perf_scope");
            json_object_set_new(info, "perf_scope", json_string(pscope ? pscope : "none"));
            json_object_set_new(info, "note", why && *why ? json_string(why) : json_null());
            break;
        }
        case 'P': {
            struct prof_process *p = proc_of(m, (int)fu64(&f, "pid"));
            if (p) {
                p->sampled = 1;
                char *why = prof_field(&f, "pyerr");
                if (fu64(&f, "python") == 311)
                    p->python = 1;
                else if (why && *why && !p->python_refused) {
                    prof_rec_unescape(why);
                    p->python_refused = strdup(why);
                }
            }
            break;
        }
        case 'L': {
            char *pth = prof_field(&f, "path");
            struct smodule *v = grow(S->mods, &S->capmods, S->nmods, sizeof *v);
            if (!v || !pth) {
                rc = v ? 0 : PROF_ENOMEM;
                break;
            }
            S->mods = v;
            prof_rec_unescape(pth);
            S->mods[S->nmods++] = (struct smodule){.id = (uint32_t)fu64(&f, "id"), .path = strdup(pth)};
            break;
        }
        case 'K':
            rc = parse_stack(S, &f);
            if (rc == 1)
                bad++, rc = 0;
            break;
        case 'C': {
            char *st = prof_field(&f, "state"), *addr = prof_field(&f, "addr");
            int state = st ? prof_tstate_from_name(st) : -1;
            if (state < 0) {
                bad++;
                break;
            }
            int pid = (int)fu64(&f, "pid"), tid = (int)fu64(&f, "tid");
            uint64_t n = fu64(&f, "n"), ns = fu64(&f, "ns");
            struct prof_thread *t = thread_of(proc_of(m, pid), tid);
            if (t) {
                t->from_sampler = 1;
                t->smp_ns[state] += ns;
                t->smp_n[state] += n;
            }
            rc = add_entry(S, pid, tid, state, (uint32_t)fu64(&f, "stack"), addr ? strtoull(addr, NULL, 16) : 0, n, ns);
            break;
        }
        case 'G': {
            struct prof_thread *t = thread_of(proc_of(m, (int)fu64(&f, "pid")), (int)fu64(&f, "tid"));
            if (t) {
                t->py_ticks = fu64(&f, "n");
                t->py_held = fu64(&f, "held");
                t->py_held_cpu = fu64(&f, "held_cpu");
            }
            break;
        }
        case 'Q': {
            char *addr = prof_field(&f, "addr");
            json_array_append_new(qlines, json_pack("{s:I, s:I, s:I, s:I}", "pid", (json_int_t)fu64(&f, "pid"), "addr",
                                                    (json_int_t)(addr ? strtoull(addr, NULL, 16) : 0), "ticks",
                                                    (json_int_t)fu64(&f, "ticks"), "held", (json_int_t)fu64(&f, "held")));
            break;
        }
        case 'H': {
            uint64_t frames = fu64(&f, "unwind_frames");
            char *hz = prof_field(&f, "achieved_hz");
            json_object_set_new(info, "ticks", json_integer((json_int_t)fu64(&f, "ticks")));
            json_object_set_new(info, "achieved_hz", json_real(hz ? strtod(hz, NULL) : 0));
            json_object_set_new(info, "late_ticks", json_integer((json_int_t)fu64(&f, "late")));
            json_object_set_new(info, "errors", json_integer((json_int_t)fu64(&f, "errors")));
            json_object_set_new(info, "stops", json_integer((json_int_t)fu64(&f, "stops")));
            json_object_set_new(info, "stop_p50_us", json_real((double)fu64(&f, "stop_p50_ns") / 1e3));
            json_object_set_new(info, "stop_p99_us", json_real((double)fu64(&f, "stop_p99_ns") / 1e3));
            json_object_set_new(info, "stop_max_us", json_real((double)fu64(&f, "stop_max_ns") / 1e3));
            json_object_set_new(info, "unwind_ns_per_frame",
                                json_real(frames ? (double)fu64(&f, "unwind_ns") / (double)frames : 0));
            json_object_set_new(info, "unwind_loads", json_integer((json_int_t)fu64(&f, "unwind_loads")));
            json_object_set_new(info, "unwind_load_seconds", json_real((double)fu64(&f, "unwind_load_ns") / 1e9));
            json_object_set_new(info, "unwind_decodes", json_integer((json_int_t)fu64(&f, "unwind_decodes")));
            json_object_set_new(info, "unwind_decode_seconds", json_real((double)fu64(&f, "unwind_decode_ns") / 1e9));
            json_object_set_new(info, "unwinds_by_rules", json_integer((json_int_t)fu64(&f, "unwind_fast")));
            json_object_set_new(info, "unwinds_by_libunwind", json_integer((json_int_t)fu64(&f, "unwind_libunwind")));
            json_object_set_new(info, "unwind_p50_ns_per_frame", json_real((double)fu64(&f, "unwind_p50_ns_per_frame")));
            json_object_set_new(info, "interrupt_to_resume_p50_us", json_real((double)fu64(&f, "irq_p50_ns") / 1e3));
            json_object_set_new(info, "interrupt_to_resume_p99_us", json_real((double)fu64(&f, "irq_p99_ns") / 1e3));
            json_object_set_new(info, "new_process_latency_max_ms",
                                json_real((double)fu64(&f, "attach_latency_max_ns") / 1e6));
            json_object_set_new(info, "perf_samples", json_integer((json_int_t)fu64(&f, "perf_samples")));
            json_object_set_new(info, "perf_lost", json_integer((json_int_t)fu64(&f, "perf_lost")));
            json_object_set_new(info, "self_cpu_seconds", json_real((double)fu64(&f, "self_cpu_ns") / 1e9));
            json_object_set_new(info, "waits_reused", json_integer((json_int_t)fu64(&f, "waits_reused")));
            json_object_set_new(info, "wait_stops", json_integer((json_int_t)fu64(&f, "wait_stops")));
            json_object_set_new(info, "wait_peeks", json_integer((json_int_t)fu64(&f, "wait_peeks")));
            json_object_set_new(info, "wait_peeks_failed", json_integer((json_int_t)fu64(&f, "wait_peeks_failed")));
            json_object_set_new(info, "switch_records", json_integer((json_int_t)fu64(&f, "switch_records")));
            json_object_set_new(info, "switch_waits", json_integer((json_int_t)fu64(&f, "switch_waits")));
            json_object_set_new(info, "switch_waits_known", json_integer((json_int_t)fu64(&f, "switch_waits_known")));
            json_object_set_new(info, "switch_lost", json_integer((json_int_t)fu64(&f, "switch_lost")));
            break;
        }
        default:
            break; /* P/X and unknown types: X exit statuses are the monitor's to report */
        }
    }
    free(line);
    fclose(fp);
    if (rc)
        goto out;
    if (bad)
        json_array_append_new(m->errors, json_sprintf("sampler.rec: %ld malformed lines skipped", bad));

    /* Serialization CPU per thread: on-CPU samples in serializer frames. */
    for (size_t k = 0; k < S->nent; k++) {
        struct sentry *e = &S->ent[k];
        if (e->state != PROF_TS_RUNNING || !e->ns)
            continue;
        struct sstack *st = stack_of(S, e->stack);
        if (!st || !is_serializer(S, st))
            continue;
        struct prof_thread *t = thread_of(proc_of(m, e->pid), e->tid);
        if (t)
            t->serialize_ns += e->ns;
    }
    /*
     * Where the shim did not run (--no-preload, static binaries, attach), the sampler's
     * per-state times stand in for the shim's exact waits. Idle waits on condvars,
     * semaphores and children (sync) are treated like joins: neither work nor contention.
     */
    for (size_t i = 0; i < m->nprocs; i++) {
        struct prof_process *p = m->procs[i];
        for (size_t k = 0; k < p->nthreads; k++) {
            struct prof_thread *t = &p->threads[k];
            /* The sampler's on-CPU time is schedstat's, to each thread's exit stop: where the
             * monitor's last reading came before the end (the process reaped first), it is more. */
            if (t->from_sampler && t->smp_ns[PROF_TS_RUNNING] > t->cpu_ns)
                t->cpu_ns = t->smp_ns[PROF_TS_RUNNING];
        }
        if (p->shim && !p->is_static)
            continue;
        for (size_t k = 0; k < p->nthreads; k++) {
            struct prof_thread *t = &p->threads[k];
            if (!t->from_sampler)
                continue;
            t->lock_wait_ns = t->smp_ns[PROF_TS_LOCK];
            t->gil_wait_ns = t->smp_ns[PROF_TS_GIL];
            t->net_wait_ns = t->smp_ns[PROF_TS_NET];
            t->io_wait_ns = t->smp_ns[PROF_TS_NET] + t->smp_ns[PROF_TS_DISK];
            t->ipc_ns = t->smp_ns[PROF_TS_IPC];
            t->evloop_wait_ns = t->smp_ns[PROF_TS_EVLOOP];
            t->join_wait_ns = t->smp_ns[PROF_TS_SYNC];
        }
    }
    add_hottest_from_futexes(m, S, qlines);
    add_hottest_python_sites(m, S);
out:
    json_decref(qlines);
    return rc < 0 ? rc : 0;
}

void prof_samples_free(struct prof_samples *S)
{
    if (!S)
        return;
    for (size_t i = 0; i < S->nstacks; i++) {
        struct sstack *st = &S->stacks[i];
        for (size_t k = 0; k < st->npy; k++) {
            free(st->py[k].qual);
            free(st->py[k].file);
        }
        if (st->names)
            for (size_t k = 0; k < st->nnat; k++)
                free(st->names[k]);
        free(st->names);
        free(st->nat);
        free(st->py);
    }
    for (size_t i = 0; i < S->nmods; i++) {
        free(S->mods[i].path);
        if (S->mods[i].elf)
            prof_elf_close(S->mods[i].elf);
    }
    free(S->stacks);
    free(S->mods);
    free(S->ent);
    free(S);
}

/* ---- folded stacks --------------------------------------------------------------- */

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
static void fold_stack(struct prof_samples *S, struct sstack *st, char **buf, size_t *len, size_t *cap)
{
    size_t first_eval = st->nnat, last_eval = st->nnat; /* indices, innermost = 0 */
    if (st->npy) {
        for (size_t i = 0; i < st->nnat; i++)
            if (is_eval_frame(frame_name(S, st, i))) {
                if (last_eval == st->nnat)
                    last_eval = i;   /* innermost eval frame */
                first_eval = i;      /* outermost so far */
            }
    }
    size_t i = st->nnat;
    /* Native root part: outermost frames above the outermost eval frame. */
    for (; i > 0 && (first_eval == st->nnat || i - 1 > first_eval); i--)
        put_frame(buf, len, cap, frame_name(S, st, i - 1));
    char fr[1200];
    for (size_t k = st->npy; k > 0; k--) {
        const struct sframe_py *p = &st->py[k - 1];
        snprintf(fr, sizeof fr, "%s (%s:%d)", p->qual, basename_of(p->file), p->line);
        put_frame(buf, len, cap, fr);
    }
    if (st->npy && last_eval != st->nnat)
        for (size_t k = last_eval; k > 0; k--)
            put_frame(buf, len, cap, frame_name(S, st, k - 1));
}

struct fold {
    char *key;
    uint64_t count;
};

static int cmp_fold(const void *a, const void *b)
{
    return strcmp(((const struct fold *)a)->key, ((const struct fold *)b)->key);
}

static int write_folded(const struct prof_run *m, int offcpu)
{
    struct prof_samples *S = m->samples;
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/%s", m->rundir, offcpu ? "stacks-offcpu.folded" : "stacks.folded");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct fold *v = NULL;
    size_t n = 0, capv = 0;
    char *buf = NULL;
    size_t cap = 0;
    for (size_t k = 0; k < S->nent; k++) {
        struct sentry *e = &S->ent[k];
        int on = e->state == PROF_TS_RUNNING;
        if (offcpu ? (on || e->state == PROF_TS_RUNQ || !e->ns) : (!on || !e->n))
            continue;
        size_t len = 0;
        if (buf)
            buf[0] = '\0';
        const struct prof_process *p = proc_of((struct prof_run *)m, e->pid);
        char head[64];
        snprintf(head, sizeof head, "%s", p && p->comm[0] ? p->comm : "?");
        put_frame(&buf, &len, &cap, head);
        struct sstack *st = stack_of(S, e->stack);
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
        struct fold *nv = grow(v, &capv, n, sizeof *nv);
        if (!nv)
            break;
        v = nv;
        v[n].key = strdup(buf);
        v[n].count = offcpu ? e->ns / 1000 : e->n;
        if (v[n].key)
            n++;
    }
    free(buf);
    qsort(v, n, sizeof *v, cmp_fold);
    FILE *f = fopen(tmp, "we");
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        uint64_t c = v[i].count;
        while (j + 1 < n && strcmp(v[j + 1].key, v[i].key) == 0)
            c += v[++j].count;
        if (f && c && fprintf(f, "%s %llu\n", v[i].key, (unsigned long long)c) < 0)
            failed = 1;
        i = j;
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
    return prof_file_commit(f, failed, tmp, path);
}

int prof_run_write_folded(const struct prof_run *m)
{
    if (!m->samples)
        return 0;
    int rc = write_folded(m, 0);
    int rc2 = write_folded(m, 1);
    return rc ? rc : rc2;
}
