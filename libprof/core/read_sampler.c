/* read_sampler.c: reads sampler.rec (format/samprec.h): the sampler's settings and self-report, its stacks, its samples per thread and state, and its threads' timelines. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read.h"
#include "core/run.h"
#include "core/samples.h"
#include "format/monrec.h"
#include "format/recline.h"
#include "format/samprec.h"
#include "format/tstate.h"
#include "prof.h"

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

/* Append one element to a counted array (grown by 1: these lists are short). */
#define APPEND(arr, n)                                                              \
    ({                                                                              \
        __typeof__(arr) q_ = realloc((arr), ((n) + 1) * sizeof *(arr));             \
        q_ ? ((arr) = q_, memset(&(arr)[(n)], 0, sizeof *(arr)), &(arr)[(n)++]) : NULL; \
    })

/* A K line; 1 when it has no id (malformed, counted). */
static int parse_stack(struct prof_samples *S, struct prof_fields *f)
{
    struct prof_sstack st = {.id = (uint32_t)fu64(f, "id"), .serialize = -1, .pool_part = -1};
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
        if (!st.py) {
            free(st.nat);
            return PROF_ENOMEM;
        }
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
    struct prof_sstack *v = grow(S->stacks, &S->capstacks, S->nstacks, sizeof *v);
    if (!v) {
        free(st.nat);
        free(st.py);
        return PROF_ENOMEM;
    }
    S->stacks = v;
    S->stacks[S->nstacks++] = st;
    return 0;
}

static int add_entry(struct prof_samples *S, int pid, int tid, int state, uint32_t stack, uint64_t addr, uint64_t n,
                     uint64_t ns, uint64_t held)
{
    /* Entries of one thread come in runs: look back a little before appending. */
    for (size_t i = S->nent, k = 0; i > 0 && k < 64; i--, k++) {
        struct prof_sentry *e = &S->ent[i - 1];
        if (e->pid == pid && e->tid == tid && e->state == state && e->stack == stack && e->addr == addr) {
            e->n += n;
            e->ns += ns;
            e->held += held;
            return 0;
        }
    }
    struct prof_sentry *v = grow(S->ent, &S->capent, S->nent, sizeof *v);
    if (!v)
        return PROF_ENOMEM;
    S->ent = v;
    S->ent[S->nent++] = (struct prof_sentry){pid, tid, state, stack, addr, n, ns, held};
    return 0;
}

static void settings(json_t *info, struct prof_fields *f)
{
    char *why = prof_field(f, "why"), *stacks = prof_field(f, "stacks");
    if (why)
        prof_rec_unescape(why);
    json_object_set_new(info, "rate_hz", json_integer((json_int_t)fu64(f, "rate_hz")));
    char *tick = prof_field(f, "tick_hz"), *states = prof_field(f, "states");
    json_object_set_new(info, "tick_hz", json_real(tick ? strtod(tick, NULL) : (double)fu64(f, "rate_hz")));
    json_object_set_new(info, "states_from", json_string(states && strcmp(states, "switches") == 0 ? "switches" : "ticks"));
    json_object_set_new(info, "stacks", json_string(stacks ? stacks : "none"));
    json_object_set_new(info, "ptrace", json_boolean(fu64(f, "ptrace")));
    char *sched = prof_field(f, "sched");
    json_object_set_new(info, "sched", json_string(sched ? sched : "normal"));
    char *native = prof_field(f, "native");
    json_object_set_new(info, "native", json_string(native ? native : (fu64(f, "ptrace") ? "ptrace" : "none")));
    char *pscope = prof_field(f, "perf_scope");
    json_object_set_new(info, "perf_scope", json_string(pscope ? pscope : "none"));
    json_object_set_new(info, "note", why && *why ? json_string(why) : json_null());
}

#define INFO_INT(key, field) json_object_set_new(info, key, json_integer((json_int_t)fu64(f, field)))

static void self_report(json_t *info, struct prof_fields *f)
{
    uint64_t frames = fu64(f, "unwind_frames");
    char *hz = prof_field(f, "achieved_hz");
    INFO_INT("ticks", "ticks");
    json_object_set_new(info, "achieved_hz", json_real(hz ? strtod(hz, NULL) : 0));
    INFO_INT("late_ticks", "late");
    INFO_INT("errors", "errors");
    INFO_INT("stops", "stops");
    json_object_set_new(info, "stop_p50_us", json_real((double)fu64(f, "stop_p50_ns") / 1e3));
    json_object_set_new(info, "stop_p99_us", json_real((double)fu64(f, "stop_p99_ns") / 1e3));
    json_object_set_new(info, "stop_max_us", json_real((double)fu64(f, "stop_max_ns") / 1e3));
    json_object_set_new(info, "unwind_ns_per_frame", json_real(frames ? (double)fu64(f, "unwind_ns") / (double)frames : 0));
    INFO_INT("unwind_loads", "unwind_loads");
    json_object_set_new(info, "unwind_load_seconds", json_real((double)fu64(f, "unwind_load_ns") / 1e9));
    INFO_INT("unwind_decodes", "unwind_decodes");
    json_object_set_new(info, "unwind_decode_seconds", json_real((double)fu64(f, "unwind_decode_ns") / 1e9));
    INFO_INT("unwinds_by_rules", "unwind_fast");
    INFO_INT("unwinds_by_libunwind", "unwind_libunwind");
    json_object_set_new(info, "unwind_p50_ns_per_frame", json_real((double)fu64(f, "unwind_p50_ns_per_frame")));
    json_object_set_new(info, "interrupt_to_resume_p50_us", json_real((double)fu64(f, "irq_p50_ns") / 1e3));
    json_object_set_new(info, "interrupt_to_resume_p99_us", json_real((double)fu64(f, "irq_p99_ns") / 1e3));
    json_object_set_new(info, "new_process_latency_max_ms", json_real((double)fu64(f, "attach_latency_max_ns") / 1e6));
    INFO_INT("perf_samples", "perf_samples");
    INFO_INT("perf_lost", "perf_lost");
    json_object_set_new(info, "self_cpu_seconds", json_real((double)fu64(f, "self_cpu_ns") / 1e9));
    INFO_INT("waits_reused", "waits_reused");
    INFO_INT("wait_stops", "wait_stops");
    INFO_INT("wait_peeks", "wait_peeks");
    INFO_INT("wait_peeks_failed", "wait_peeks_failed");
    INFO_INT("switch_records", "switch_records");
    INFO_INT("switch_waits", "switch_waits");
    INFO_INT("switch_waits_known", "switch_waits_known");
    INFO_INT("switch_lost", "switch_lost");
}

/* One tokenised line after the version: 0, 1 when malformed (counted), or PROF_ENOMEM. */
static int line(void *ctx, char type, struct prof_fields *f)
{
    struct prof_rec_sampler *R = ctx;
    struct prof_samples *S = R->samples;

    switch (type) {
    case 'O':
        settings(R->info, f);
        return 0;
    case 'H':
        self_report(R->info, f);
        return 0;
    case 'P': {
        struct prof_rec_sproc *p = APPEND(R->procs, R->nprocs);
        if (!p)
            return PROF_ENOMEM;
        p->pid = (int)fu64(f, "pid");
        p->ppid = (int)fu64(f, "ppid");
        p->t_ns = fu64(f, "t");
        p->python = (int)fu64(f, "python");
        char *exe = prof_field(f, "exe");
        if (exe && *exe) {
            prof_rec_unescape(exe);
            if (!(p->exe = strdup(exe)))
                return PROF_ENOMEM;
        }
        if (prof_rec_parse_list(&p->argv, &p->argc, prof_field(f, "argv")) < 0)
            return PROF_ENOMEM;
        /* Only an explicit gil=0 says the GIL is off: a line without the key is a build with one. */
        char *gil = prof_field(f, "gil");
        p->gil_absent = gil && strcmp(gil, "0") == 0;
        char *why = prof_field(f, "pyerr");
        if (why && *why) {
            prof_rec_unescape(why);
            if (!(p->pyerr = strdup(why)))
                return PROF_ENOMEM;
        }
        return 0;
    }
    case 'X': {
        struct prof_rec_sexit *x = APPEND(R->exits, R->nexits);
        if (!x)
            return PROF_ENOMEM;
        *x = (struct prof_rec_sexit){(int)fu64(f, "pid"), (int)fu64(f, "status"), fu64(f, "t")};
        return 0;
    }
    case 'L': {
        char *pth = prof_field(f, "path");
        struct prof_smodule *v = grow(S->mods, &S->capmods, S->nmods, sizeof *v);
        if (!v)
            return PROF_ENOMEM;
        S->mods = v;
        if (!pth)
            return 0;
        prof_rec_unescape(pth);
        S->mods[S->nmods++] = (struct prof_smodule){.id = (uint32_t)fu64(f, "id"), .path = strdup(pth)};
        return 0;
    }
    case 'K':
        return parse_stack(S, f);
    case 'C': {
        char *st = prof_field(f, "state"), *addr = prof_field(f, "addr");
        int state = st ? prof_tstate_from_name(st) : -1;
        if (state < 0)
            return 1;
        return add_entry(S, (int)fu64(f, "pid"), (int)fu64(f, "tid"), state, (uint32_t)fu64(f, "stack"),
                         addr ? strtoull(addr, NULL, 16) : 0, fu64(f, "n"), fu64(f, "ns"), fu64(f, "held"));
    }
    case 'S': {
        char *st = prof_field(f, "state");
        int state = st ? prof_tstate_from_name(st) : -1;
        uint64_t t0 = fu64(f, "t0"), t1 = fu64(f, "t1");
        if (state < 0 || t1 <= t0)
            return 1;
        struct prof_rec_span *v = grow(R->spans, &R->capspans, R->nspans, sizeof *v);
        if (!v)
            return PROF_ENOMEM;
        R->spans = v;
        R->spans[R->nspans++] = (struct prof_rec_span){(int)fu64(f, "pid"), (int)fu64(f, "tid"), t0, t1, state};
        return 0;
    }
    case 'G': {
        struct prof_rec_gil *g = APPEND(R->gil, R->ngil);
        if (!g)
            return PROF_ENOMEM;
        *g = (struct prof_rec_gil){(int)fu64(f, "pid"), (int)fu64(f, "tid"), fu64(f, "n"), fu64(f, "held"),
                                   fu64(f, "held_cpu")};
        return 0;
    }
    case 'Q': {
        char *addr = prof_field(f, "addr");
        struct prof_rec_futex *q = APPEND(R->futex, R->nfutex);
        if (!q)
            return PROF_ENOMEM;
        *q = (struct prof_rec_futex){(int)fu64(f, "pid"), addr ? strtoull(addr, NULL, 16) : 0, fu64(f, "ticks"),
                                     fu64(f, "held")};
        return 0;
    }
    }
    return 0; /* X exit statuses are the monitor's to report; unknown types are skipped by design */
}

int prof_read_sampler(struct prof_records *rec)
{
    struct prof_rec_sampler *R = &rec->sampler;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sampler.rec", rec->rundir);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return 0;
    R->present = 1;
    R->samples = calloc(1, sizeof *R->samples);
    R->info = json_object();
    if (!R->samples || !R->info) {
        fclose(fp);
        return PROF_ENOMEM;
    }
    struct prof_rec_read st;
    int rc = prof_rec_read_lines(fp, PROF_SAMPREC_VERSION, line, R, &st);
    fclose(fp);
    if (st.lines && !st.version_ok)
        json_array_append_new(rec->sampler_errors, json_string("sampler.rec: skipped: not sampler format version 1"));
    if (rc == 0 && st.bad)
        prof_note(rec->sampler_errors, "sampler.rec: %ld malformed lines skipped", st.bad);
    return rc;
}
