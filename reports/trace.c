/* trace.c: the trace renderer: the merged run as a Chrome Trace Event Format document (Perfetto, chrome://tracing), written as a stream. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run.h"
#include "format/tstate.h"
#include "prof.h"
#include "reports/render.h"

/*
 * Tracks. Perfetto draws small thread ids best, so every tid is remapped per process: the
 * process's threads in the run's order get 1, 2, ... (the main thread, tid == pid, is 1), and
 * the real tid is in the thread_name event's args. After them come the process's own tracks,
 * which hold one event each so they never need to nest: its role (its lifetime) and one per
 * marker stage.
 *
 * Times: ts and dur in microseconds from the run's start (run.json start_ns), as JSON numbers.
 *
 * Stages: a thread-name stage's extent is each thread's life (one X event on the thread's own
 * track, stretched to cover the thread's sampled spans so the states nest inside it); a
 * process-role stage's is the process's life; a marker stage's is its first begin to its
 * last end in that process (the shim keeps no per-entry times, so the entries themselves are
 * not drawn). No flow events: the run does not pair an IPC writer with its reader (the shim
 * and the sampler time each side's waits, not which process the bytes went to).
 *
 * Perf counters: a thread's counts (its latest reading of each event, as report.json's
 * processes[].threads[].counters) go into the args of its life's X event, "counters": {event: count}
 * with "counters_from_start", where Perfetto's and chrome://tracing's selection panels show them
 * beside the thread's stage; and into its thread_name event's args, the one event every thread has
 * (a thread with no measurable life has no X event), for tools that read the file. Neither viewer
 * shows a metadata event's args, and counter events ("ph":"C") would not serve: both viewers make
 * them tracks of the process (the tid is ignored) named by event and arg, and poolprof has one
 * reading per thread, its total at the end, so a thread's count would be a lone step on a track it
 * shares with its siblings, drawn as if it were a level reached at that instant.
 *
 * Streaming: every event is printed as it is made, from the run's arrays; nothing is built
 * in memory, so a long run's trace costs its file, not a tree.
 */

struct tw {
    FILE *out;
    const struct prof_run *m;
    int first;  /* no event written yet (no comma before it) */
};

/* A JSON string: jansson's escaping; a name that is not UTF-8 has its other bytes as '?'. */
static void jstr(FILE *out, const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (!j) {
        char buf[256];
        size_t i = 0;
        for (; s[i] && i < sizeof buf - 1; i++)
            buf[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
        buf[i] = '\0';
        j = json_string(buf);
    }
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    fputs(d ? d : "\"\"", out);
    free(d);
    json_decref(j);
}

/* A time for ts or dur: a JSON number whatever the run's figures (a non-finite one would not be). */
static double fin(double v)
{
    return isfinite(v) ? v : 0.0;
}

static double us_of_ns(const struct prof_run *m, uint64_t t_ns)
{
    return ((double)t_ns - (double)m->start_ns) / 1e3;
}

/* Opens an event: {"ph":..,"name":..,"cat":..,"pid":..,"tid":..,"ts":..; the caller adds the rest and "}". */
static void ev(struct tw *w, const char *ph, const char *name, const char *cat, int pid, int tid, double ts_us)
{
    fputs(w->first ? "\n" : ",\n", w->out);
    w->first = 0;
    fprintf(w->out, "{\"ph\":\"%s\",\"name\":", ph);
    jstr(w->out, name);
    if (cat)
        fprintf(w->out, ",\"cat\":\"%s\"", cat);
    fprintf(w->out, ",\"pid\":%d,\"tid\":%d,\"ts\":%.3f", pid, tid, fin(ts_us));
}

/* ,"counters":{event: count, ...},"counters_from_start":bool inside an args object, for a thread some
 * event counted (the values report.json has: multiplexed counts scaled); nothing for one none did. */
static void thread_counters(struct tw *w, const struct prof_thread *t)
{
    const struct prof_run *m = w->m;
    if (!t || !t->ctr_mask)
        return;
    size_t n = 0;
    fputs(",\"counters\":{", w->out);
    for (size_t i = 0; i < m->ncounters; i++) {
        int ok;
        uint64_t v = prof_thread_ctr_value(t, i, &ok, NULL);
        if (!ok)
            continue;
        if (n++)
            fputc(',', w->out);
        jstr(w->out, m->counters[i].name);
        fprintf(w->out, ":%llu", (unsigned long long)v);
    }
    fprintf(w->out, "},\"counters_from_start\":%s", t->ctr_born ? "true" : "false");
}

/* A track's name; real_tid and t (a thread's) add its tid and counters, 0 and NULL for a process's own tracks. */
static void meta(struct tw *w, const char *what, int pid, int tid, const char *name, int real_tid, const struct prof_thread *t)
{
    ev(w, "M", what, NULL, pid, tid, 0);
    fputs(",\"args\":{\"name\":", w->out);
    jstr(w->out, name);
    if (real_tid)
        fprintf(w->out, ",\"tid\":%d", real_tid);
    thread_counters(w, t);
    fputs("}}", w->out);
}

static void complete(struct tw *w, const char *name, const char *cat, int pid, int tid, double t0_us, double t1_us)
{
    ev(w, "X", name, cat, pid, tid, t0_us);
    fprintf(w->out, ",\"dur\":%.3f", fin(t1_us > t0_us ? t1_us - t0_us : 0.0));
}

static const char *proc_name(const struct prof_process *p, char *buf, size_t cap)
{
    if (p->role && *p->role)
        return p->role;
    if (p->comm[0])
        return p->comm;
    snprintf(buf, cap, "pid %d", p->pid);
    return buf;
}

/* One thread: its name, its life (the thread-name stage) and its states. */
static void thread_events(struct tw *w, const struct prof_process *p, const struct prof_thread *t, int tid)
{
    const struct prof_run *m = w->m;
    char buf[32];
    const char *name = t->name[0] ? t->name : (snprintf(buf, sizeof buf, "tid %d", t->tid), buf);
    meta(w, "thread_name", p->pid, tid, name, t->tid, t);
    double a = t->start_s * 1e6, b = t->end_s * 1e6;
    if (t->nspans) {
        double s0 = us_of_ns(m, t->spans[0].t0_ns), s1 = us_of_ns(m, t->spans[t->nspans - 1].t1_ns);
        a = s0 < a ? s0 : a;
        b = s1 > b ? s1 : b;
    }
    if (b > a) {
        complete(w, name, "stage", p->pid, tid, a, b);
        fputs(",\"args\":{\"stage\":", w->out);
        jstr(w->out, name);
        fprintf(w->out, ",\"source\":\"thread-name\",\"tid\":%d", t->tid);
        thread_counters(w, t);
        fputs("}}", w->out);
    }
    for (size_t k = 0; k < t->nspans; k++) {
        const struct prof_span *sp = &t->spans[k];
        const char *st = prof_tstate_name((enum prof_tstate)sp->state);
        complete(w, st, "state", p->pid, tid, us_of_ns(m, sp->t0_ns), us_of_ns(m, sp->t1_ns));
        fprintf(w->out, ",\"args\":{\"state\":\"%s\"}}", st);
    }
}

/* The process's instants: its start (fork), each exec'd image, its exit with the status. */
static void process_instants(struct tw *w, const struct prof_process *p)
{
    ev(w, "i", "fork", "process", p->pid, 1, p->start_s * 1e6);
    fprintf(w->out, ",\"s\":\"p\",\"args\":{\"pid\":%d,\"ppid\":%d}}", p->pid, p->ppid);
    for (size_t k = 0; k < p->nimages; k++) {
        const struct prof_image *im = &p->images[k];
        if (im->forked)
            continue; /* a forked copy of its parent's image: the fork above */
        ev(w, "i", "exec", "process", p->pid, 1, us_of_ns(w->m, im->t_ns));
        fputs(",\"s\":\"p\",\"args\":{\"exe\":", w->out);
        jstr(w->out, im->exe);
        fputs(",\"argv\":[", w->out);
        for (int a = 0; a < im->argc; a++) {
            if (a)
                fputc(',', w->out);
            jstr(w->out, im->argv[a]);
        }
        fputs("]}}", w->out);
    }
    ev(w, "i", "exit", "process", p->pid, 1, p->end_s * 1e6);
    fputs(",\"s\":\"p\",\"args\":{\"how\":", w->out);
    jstr(w->out, p->exit_how ? p->exit_how : "unknown");
    fprintf(w->out, ",\"status\":%d,\"code\":%d,\"signal\":%d}}", p->exit_status, p->exit_code, p->exit_signal);
}

/* Resident memory as a counter track of the process: its own RSS readings. */
static void process_rss(struct tw *w, const struct prof_process *p)
{
    for (size_t k = 0; k < p->nrss; k++) {
        ev(w, "C", "rss", "memory", p->pid, 1, us_of_ns(w->m, p->rss[k].t_ns));
        fprintf(w->out, ",\"args\":{\"rss_bytes\":%llu}}", (unsigned long long)p->rss[k].rss);
    }
}

/* Its own tracks after its threads': the process-role stage and the marker stages. */
static void process_stages(struct tw *w, const struct prof_process *p, int tid)
{
    char buf[32], track[PROF_SHM_NAME_BYTES + 16];
    const char *name = proc_name(p, buf, sizeof buf);
    meta(w, "thread_name", p->pid, tid, "process", 0, NULL);
    complete(w, name, "stage", p->pid, tid, p->start_s * 1e6, p->end_s * 1e6);
    fputs(",\"args\":{\"stage\":", w->out);
    jstr(w->out, name);
    fputs(",\"source\":\"process-role\"}}", w->out);
    for (size_t k = 0; k < p->nmarkers; k++) {
        const struct prof_marker *mk = &p->markers[k];
        if (!mk->first_begin_ns || mk->last_end_ns <= mk->first_begin_ns)
            continue;
        tid++;
        snprintf(track, sizeof track, "marker %s", mk->name);
        meta(w, "thread_name", p->pid, tid, track, 0, NULL);
        complete(w, mk->name, "stage", p->pid, tid, us_of_ns(w->m, mk->first_begin_ns), us_of_ns(w->m, mk->last_end_ns));
        fputs(",\"args\":{\"stage\":", w->out);
        jstr(w->out, mk->name);
        fprintf(w->out, ",\"source\":\"marker\",\"entries\":%llu,\"extent\":\"first begin to last end\"}}",
                (unsigned long long)mk->entries);
    }
}

static int render_trace(const struct prof_report *r, FILE *out)
{
    if (!r || !r->run || !out)
        return PROF_EINVAL;
    struct tw w = {.out = out, .m = r->run, .first = 1};
    const struct prof_run *m = r->run;
    fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"clock\":\"microseconds since the run's start\"},"
          "\"traceEvents\":[",
          out);
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct prof_process *p = m->procs[i];
        char buf[32];
        meta(&w, "process_name", p->pid, 1, proc_name(p, buf, sizeof buf), 0, NULL);
        /* The main thread is 1 wherever it is in the list; the others follow in the run's order. */
        int next = 2;
        for (size_t j = 0; j < p->nthreads; j++)
            thread_events(&w, p, &p->threads[j], p->threads[j].tid == p->pid ? 1 : next++);
        process_instants(&w, p);
        process_rss(&w, p);
        process_stages(&w, p, next);
    }
    fputs("\n]}\n", out);
    return ferror(out) ? PROF_EIO : 0;
}

const struct prof_renderer prof_render_trace = {
    .name = "trace",
    .summary = "timeline in the Chrome Trace Event Format (Perfetto, chrome://tracing): thread states, stages, RSS, "
               "process events, each thread's perf counters",
    .rundir_file = "trace.json",
    .needs_run = 1,
    .render = render_trace,
};
