/* terminal.c: the terminal renderer: a compact human summary of a report, readable in 80 columns. */
#include <string.h>
#include <stdio.h>
#include <jansson.h>

#include "prof.h"
#include "reports/render.h"

#define WIDTH 80

/* Was this process's CPython refused for this reason? */
static int same_refusal(const json_t *proc, const char *why)
{
    const char *other = json_string_value(json_object_get(proc, "python_unsupported"));
    return other && strcmp(other, why) == 0;
}

static double num(const json_t *o, const char *path)
{
    char key[64];
    const json_t *v = o;
    const char *p = path;

    while (v && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof key)
            return 0;
        memcpy(key, p, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        p += n + (p[n] == '.');
    }
    return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *str(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static int boolean(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

/* A stage cut from a process's threads or markers: its RSS is the whole process's. */
static int shares_process(const json_t *s)
{
    const char *src = str(s, "source", "");
    return strcmp(src, "thread-name") == 0 || strcmp(src, "marker") == 0;
}

/* "(GIL)" beside the lock wait only when most of it was the GIL's: any CPython process has a
 * GIL, and a server's Event waits or a queue's locks are not it. */
static int gil_waited(const json_t *lock)
{
    double gil = num(lock, "gil_wait_seconds"), other = num(lock, "wait_seconds");
    return boolean(lock, "gil") && gil > 0 && gil >= other;
}

/* A stage whose CPython runs without a GIL (free-threaded): the report's lock.gil is null, not false. */
static int gil_absent(const json_t *lock)
{
    return json_is_null(json_object_get(lock, "gil"));
}

static const char *bytes(char *buf, size_t n, double b)
{
    const char *unit[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    double x = b < 0 ? -b : b;
    while (x >= 1000 && u < 4) {
        x /= 1000;
        u++;
    }
    snprintf(buf, n, "%s%.*f %s", b < 0 ? "-" : "", u ? 1 : 0, x, unit[u]);
    return buf;
}

/* Bounded append: a line that would overflow is cut, never overrun. */
static void cat(char *dst, size_t cap, const char *src)
{
    size_t o = strnlen(dst, cap);
    while (*src && o + 1 < cap)
        dst[o++] = *src++;
    if (o < cap)
        dst[o] = '\0';
}

/* Copy for one terminal line: control bytes (newlines in argv) become spaces, and the cut
 * at cols bytes never splits a UTF-8 sequence. */
static const char *oneline(char *dst, size_t cap, const char *src, size_t cols)
{
    size_t n = 0;
    if (cols >= cap)
        cols = cap - 1;
    for (; src && src[n] && n < cols; n++)
        dst[n] = (unsigned char)src[n] < 0x20 || src[n] == 0x7f ? ' ' : src[n];
    if (src && src[n])
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    dst[n] = '\0';
    return dst;
}

/* A long stage name keeps its head and its tail (" (forked)" tells two roles apart). */
static const char *elide(char *dst, size_t cap, const char *src, size_t cols)
{
    size_t n = strlen(src), tail = 16;
    if (n <= cols || cols < tail + 8)
        return oneline(dst, cap, src, cols);
    const char *t = src + n - tail;
    while (t > src && ((unsigned char)*t & 0xC0) == 0x80)
        t--; /* start the tail on a character boundary */
    char head[2 * WIDTH];
    size_t tl = strlen(t);
    oneline(head, sizeof head, src, cols > tl + 3 ? cols - tl - 3 : 0);
    char tailbuf[2 * WIDTH];
    oneline(tailbuf, sizeof tailbuf, t, sizeof tailbuf - 1);
    dst[0] = '\0';
    cat(dst, cap, head);
    cat(dst, cap, "...");
    cat(dst, cap, tailbuf);
    return dst;
}

/*
 * A lock site "function+0xoff (module)" in at most cols: the module without its version and
 * ABI suffixes (_multiprocessing.cpython-311-x86_64-linux-gnu.so is _multiprocessing), then
 * elided in the middle, so the offset and the closing parenthesis stay.
 */
static const char *site_short(char *dst, size_t cap, const char *src, size_t cols)
{
    char tmp[2 * WIDTH];
    const char *open = strrchr(src, '(');
    size_t n = strlen(src);
    if (open && open > src && n > 0 && src[n - 1] == ')') {
        size_t head = (size_t)(open - src) + 1, mod = strcspn(open + 1, ".)");
        if (head + mod + 2 <= sizeof tmp) {
            memcpy(tmp, src, head + mod);
            memcpy(tmp + head + mod, ")", 2);
            src = tmp;
        }
    }
    return elide(dst, cap, src, cols);
}

/* A Python site "qualname (file.py:line)" in at most cols: the qualname gives way, the place stays. */
static const char *pysite_short(char *dst, size_t cap, const char *src, size_t cols)
{
    const char *place = strrchr(src, '(');
    size_t n = strlen(src);
    if (n <= cols || !place || place == src || (size_t)(n - (size_t)(place - src)) + 8 > cols)
        return elide(dst, cap, src, cols);
    size_t tail = n - (size_t)(place - src), head = cols - tail - 4;
    char h[2 * WIDTH];
    oneline(h, sizeof h, src, head);
    snprintf(dst, cap, "%.*s... %.*s", (int)head, h, (int)tail, place);
    return dst;
}

/* Word-wrap text at WIDTH with an indent: reasons are sentences, not columns. */
static void wrap(FILE *out, int indent, const char *text)
{
    int col = fprintf(out, "%*s", indent, ""), first = 1;

    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        int w = (int)strcspn(p, " ");
        if (!w)
            break;
        if (!first && col + 1 + w > WIDTH) {
            col = fprintf(out, "\n%*s", indent, "") - 1;
            first = 1;
        }
        if (!first) {
            fputc(' ', out);
            col++;
        }
        col += fprintf(out, "%.*s", w, p);
        first = 0;
        p += w;
    }
    fputc('\n', out);
}

/* The role's words in a sentence, or the event's own name. */
static const char *counter_label(const json_t *c)
{
    static const char *const words[][2] = {
        {"context_switches", "context switches"}, {"cpu_migrations", "migrations"}, {"minor_faults", "minor faults"},
        {"major_faults", "major faults"},         {"page_faults", "page faults"},   {"task_clock", "task-clock ns"},
        {"llc_misses", "LLC misses"},
    };
    const char *role = str(c, "role", "");
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strcmp(role, words[i][0]) == 0)
            return words[i][1];
    return str(c, "event", "?");
}

/* One line of the stage's counters that counted something: "counters: 1,204 context switches (310/CPU-s), ...". */
static void counters(FILE *out, const json_t *s)
{
    const json_t *a = json_object_get(s, "counters"), *c;
    char line[1024] = "counters:";
    size_t i, len = strlen(line), start = len;

    json_array_foreach(a, i, c)
    {
        double v = num(c, "value"), rate = num(c, "per_cpu_second");
        if (v <= 0 || len >= sizeof line - 1)
            continue;
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%s%.0f %s", len > start ? ", " : " ",
                                boolean(c, "scaled") ? "~" : "", v, counter_label(c));
        if (rate > 0 && len < sizeof line - 1)
            len += (size_t)snprintf(line + len, sizeof line - len, " (%.0f/CPU-s)", rate);
    }
    if (len > start)
        wrap(out, 2, line);
}

static void stage(FILE *out, const json_t *s)
{
    const json_t *rec = json_object_get(s, "recommendation");
    const json_t *seed = json_object_get(rec, "seed_rule");
    const json_t *lock = json_object_get(s, "lock");
    const json_t *rss = json_object_get(s, "rss");
    const json_t *reasons = json_object_get(rec, "reasons");
    char head[2 * WIDTH], name[2 * WIDTH], verdict[64], sverdict[96], b1[32], b2[32], site[64];
    const char *src = str(s, "source", "");
    int named = strcmp(src, "overall") != 0;

    elide(name, sizeof name, str(s, "name", "?"), WIDTH - (named ? strlen(src) + 3 : 0));
    head[0] = '\0';
    cat(head, sizeof head, name);
    if (named) {
        cat(head, sizeof head, " [");
        cat(head, sizeof head, src);
        cat(head, sizeof head, "]");
    }
    fprintf(out, "\n%s\n", head);
    fprintf(out, "  %-10s CPU/wall %.2f   %d proc, %d thr   lock wait %.1f%%%s%s\n", str(s, "class", "?"),
            num(s, "cpu_wall_ratio"), (int)num(s, "processes"), (int)num(s, "threads"),
            100 * num(lock, "wait_fraction"), gil_waited(lock) ? " (GIL)" : "",
            boolean(lock, "measured") ? "" : " (not measured)");
    const json_t *chunk = json_object_get(rec, "chunksize");
    char csz[32] = "";
    if (json_is_integer(chunk))
        snprintf(csz, sizeof csz, ", chunksize %d", (int)json_integer_value(chunk));
    snprintf(verdict, sizeof verdict, "%s x %d%s, %.2fx", str(rec, "model", "?"), (int)num(rec, "workers"), csz,
             num(rec, "predicted_speedup"));
    snprintf(sverdict, sizeof sverdict, "%s x %d (%s)", str(seed, "model", "?"), (int)num(seed, "workers"),
             str(seed, "class", "?"));
    if (gil_absent(lock))
        fprintf(out, "  GIL: absent (free-threaded CPython): its Python threads run in parallel\n");
    fprintf(out, "  verdict: %-28s seeds' rule: %s\n", verdict, sverdict);
    const json_t *ru = json_object_get(rec, "runner_up");
    if (json_is_object(ru))
        fprintf(out, "  runner-up: %s x %d, %.2fx   %s\n", str(ru, "model", "?"), (int)num(ru, "workers"),
                num(ru, "predicted_speedup"),
                boolean(rec, "tie") ? "(a tie: within 10%, run-to-run noise)"
                                    : "(speedups predicted over the measured run)");
    double conf = num(rec, "confidence");
    char cline[192];
    snprintf(cline, sizeof cline, "confidence: %s (%.2f): %s", conf >= 0.66 ? "high" : conf >= 0.33 ? "medium" : "low",
             conf, str(rec, "confidence_basis", "?"));
    wrap(out, 2, cline);
    /* The class, then the prediction that decided: the rest is in the JSON. */
    for (size_t i = 0; i < 2 && i < json_array_size(reasons); i++)
        wrap(out, 4, json_string_value(json_array_get(reasons, i)));
    const json_t *hot = json_object_get(lock, "hottest");
    /* The Python code that waited on it says more than the interpreter's or an extension's address. */
    const char *pysite = str(hot, "python_site", "");
    if (json_is_object(hot))
        fprintf(out, "  hottest lock: %s (%s, %.3f s waited)\n",
                pysite[0] ? pysite_short(site, sizeof site, pysite, 36) : site_short(site, sizeof site, str(hot, "site", "?"), 36),
                str(hot, "kind", "?"), num(hot, "wait_seconds"));
    const json_t *io = json_object_get(s, "io"), *ipc = json_object_get(s, "ipc");
    /* Only when measured and non-zero: a line of zeros says nothing a reader needs. */
    if (boolean(io, "measured") && (num(io, "wait_seconds") > 0 || num(io, "bytes") > 0 || num(ipc, "bytes") > 0 ||
                                    num(ipc, "seconds") > 0))
        fprintf(out, "  I/O wait %.2f s (%s)   IPC %s sent, %.2f s = %.0f%% of busy\n", num(io, "wait_seconds"),
                bytes(b1, sizeof b1, num(io, "bytes")), bytes(b2, sizeof b2, num(ipc, "bytes")), num(ipc, "seconds"),
                100 * num(ipc, "fraction"));
    if (num(s, "join_wait_seconds") > 0 || num(s, "handoff_wait_seconds") > 0 || num(s, "evloop_wait_seconds") > 0)
        fprintf(out, "  idle: joins %.2f s, hand-offs %.2f s, event loop %.2f s\n",
                num(s, "join_wait_seconds"), num(s, "handoff_wait_seconds"), num(s, "evloop_wait_seconds"));
    counters(out, s);
    if (num(rss, "peak_bytes") <= 0)
        fprintf(out, "  RSS: not sampled\n");
    else
        /* Memory is a process's: a stage of threads or markers shares its process's with the others. */
        fprintf(out, "  RSS%s: %s%s, peak %s%s\n", shares_process(s) ? " of its process" : "",
                num(rss, "growth_bytes") > 0 ? "+" : "",
                bytes(b1, sizeof b1, num(rss, "growth_bytes")), bytes(b2, sizeof b2, num(rss, "peak_bytes")),
                boolean(rss, "leak_suspected") ? " -- LEAK SUSPECTED (keeps climbing)" : "");
}

static int render_terminal(const struct prof_report *r, FILE *out)
{
    const json_t *report = r ? r->doc : NULL;
    if (!report || !out)
        return PROF_EINVAL;
    const json_t *cmd = json_object_get(report, "command");
    const json_t *mc = json_object_get(report, "machine");
    const json_t *ms = json_object_get(report, "measurement");
    char cmdline[4 * WIDTH] = "", shown[WIDTH + 1], exitbuf[48], dir[WIDTH + 1];
    size_t o = 0, i;
    json_t *v;

    json_array_foreach(cmd, i, v) {
        int w = snprintf(cmdline + o, sizeof cmdline - o, "%s%s", i ? " " : "", json_string_value(v) ? json_string_value(v) : "");
        if (w < 0 || (size_t)w >= sizeof cmdline - o) {
            o = sizeof cmdline - 1;
            break;
        }
        o += (size_t)w;
    }
    prof_report_exit_text(report, exitbuf, sizeof exitbuf);

    fprintf(out, "poolprof: %s\n", oneline(shown, sizeof shown, cmdline, WIDTH - 10));
    size_t nproc = json_array_size(json_object_get(report, "processes"));
    int staged = (int)num(json_object_get(report, "overall"), "processes");
    fprintf(out, "  wall %.2f s, %s, %d usable CPUs, %zu process%s\n", num(report, "wall_seconds"), exitbuf,
            (int)num(mc, "usable_cpus"), nproc, nproc == 1 ? "" : "es");
    /* overall leaves a launcher's helpers out; say so under the count, not only in the JSON */
    if (staged >= 0 && (size_t)staged < nproc)
        fprintf(out, "  %zu of them a launcher's, left out of overall (see measurement.notes)\n",
                nproc - (size_t)staged);
    if (json_array_size(json_object_get(ms, "static_pids")))
        fprintf(out, "  static binary: the shim could not load; figures come from /proc only\n");
    /* One line per reason, however many processes of a pool share it (one scan per reason). */
    json_t *procs = json_object_get(report, "processes");
    json_array_foreach(procs, i, v) {
        const char *why = json_string_value(json_object_get(v, "python_unsupported"));
        size_t j = 0, n = 0;
        if (!why)
            continue;
        while (j < i && !same_refusal(json_array_get(procs, j), why))
            j++;
        if (j < i)
            continue;
        for (j = i; j < json_array_size(procs); j++)
            n += same_refusal(json_array_get(procs, j), why);
        if (n == 1)
            fprintf(out, "  pid %d: %s: no Python stacks for it\n", (int)num(v, "pid"), why);
        else
            fprintf(out, "  pid %d and %zu more: %s: no Python stacks for them\n", (int)num(v, "pid"), n - 1, why);
    }
    json_t *errs = json_object_get(ms, "errors");
    if (json_array_size(errs))
        fprintf(out, "  %zu recording problems (see measurement.errors in the report)\n", json_array_size(errs));

    /* What watching cost: on a small machine every CPU-second of poolprof's is one the target could not use. */
    const json_t *smp = json_object_get(ms, "sampler");
    double mon = json_number_value(json_object_get(ms, "monitor_cpu_seconds"));
    double smpl = json_number_value(json_object_get(smp, "self_cpu_seconds"));
    double wall = num(report, "wall_seconds");
    if ((mon > 0 || smpl > 0) && wall > 0) {
        /* Wrapped like a reason: three figures of three digits each would pass the 80 columns. */
        char own[160];
        snprintf(own, sizeof own, "poolprof's own CPU %.0f ms (monitor %.0f, sampler %.0f): %.1f%% of one CPU over the run",
                 (mon + smpl) * 1e3, mon * 1e3, smpl * 1e3, 100.0 * (mon + smpl) / wall);
        wrap(out, 2, own);
    }

    stage(out, json_object_get(report, "overall"));
    json_array_foreach(json_object_get(report, "stages"), i, v)
        stage(out, v);
    fprintf(out, "\nreport: %s/report.json\n", oneline(dir, sizeof dir, str(report, "run_dir", "."), WIDTH - 20));
    return ferror(out) ? PROF_EIO : 0;
}

const struct prof_renderer prof_render_terminal = {
    .name = "terminal",
    .summary = "the human summary: run, stages, verdicts, the evidence in brief (80 columns)",
    .render = render_terminal,
};
