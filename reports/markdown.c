/* markdown.c: the report's Markdown format, for pull requests and $GITHUB_STEP_SUMMARY: the terminal summary's content as tables and lists, kept under GitHub's 1 MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "format/utf8.h"
#include "prof.h"
#include "reports/check_render.h"
#include "reports/md_escape.h"
#include "reports/render.h"

/* GitHub refuses a step summary over 1 MiB (1,048,576 bytes) whole, so a big report would show
 * nothing: stay under it with room for the headings and the line that says what was left out. */
#define MD_LIMIT 1000000
/* Notes and errors this far into them rank with the overall verdict; past it, below everything. */
#define MD_MESSAGES_MAX 100000

/* Any one string of the document shows at most this much, the command line at most twice it. */
#define MD_STRING_MAX 4096

#define ELLIPSIS "\xE2\x80\xA6" /* … */
#define TIMES "\xC3\x97" /* × */
#define DOT " \xC2\xB7 " /* a middle dot between the header's figures */

/* The parts of the document, in the order they print; each item of one is a block that fits or is left out. */
enum part { P_VERDICT, P_STAGE, P_LOCK, P_SITE, P_IPC, P_COUNTER, P_ERROR, P_NOTE, NPARTS };

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *str(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/*
 * A target's string as Markdown text (md_escape.c), '#' escaped too: a stage name ending in '#'
 * would lose it as a heading's closing sequence, and one starting a list item would make a heading.
 */
static const char *esc_char(uint32_t cp, int flag, char *buf, size_t cap)
{
    if (cp == '#')
        return "\\#";
    return prof_md_escape_char(cp, flag, buf, cap);
}

/* s escaped, cut with an ellipsis where it would pass max bytes (between two escapes, never inside one);
 * the bytes written. */
static size_t md_max(FILE *out, const char *s, size_t max)
{
    int cut;
    size_t o = prof_check_escape(out, NULL, max, s, esc_char, 0, "\\\\x%02X", &cut);
    if (cut) {
        fputs(ELLIPSIS, out);
        o += strlen(ELLIPSIS);
    }
    return o;
}

/* A target's string: one argv element or thread name of megabytes must not be the whole summary. */
static void md(FILE *out, const char *s)
{
    md_max(out, s, MD_STRING_MAX);
}

/* A list item of a target's or the recorder's sentence: a leading '-', '+' or "1. " would start a
 * list inside the item, so its marker is escaped ("45.7 s" is no marker and stays as it is). */
static void item(FILE *out, const char *s)
{
    size_t d = s ? strspn(s, "0123456789") : 0;
    fputs("- ", out);
    if (s && (s[0] == '-' || s[0] == '+')) {
        fputc('\\', out);
    } else if (s && d && (s[d] == '.' || s[d] == ')') && (s[d + 1] == ' ' || s[d + 1] == '\0')) {
        fwrite(s, 1, d, out);
        fputc('\\', out);
        s += d;
    }
    md(out, s);
    fputc('\n', out);
}

/* Seconds and bytes as the check's Markdown shows them ("412 ms", "12.3 MiB"); null is an em dash. */
static const char *fig(char *buf, size_t cap, const char *figure, const json_t *o, const char *key)
{
    prof_check_value(buf, cap, figure, json_object_get(o, key));
    return buf;
}

static const char *confidence_word(double c)
{
    return c >= 0.66 ? "high" : c >= 0.33 ? "medium" : "low";
}

/* "threads × 8" or "processes × 4, chunksize 16": a recommendation's or a candidate's pool. */
static void pool(FILE *out, const json_t *p)
{
    md(out, str(p, "model", "?"));
    fprintf(out, " " TIMES " %d", (int)num(p, "workers"));
    const json_t *chunk = json_object_get(p, "chunksize");
    if (json_is_integer(chunk))
        fprintf(out, ", chunksize %d", (int)json_integer_value(chunk));
}

/* "fetch (thread-name)"; overall alone is only its name. */
static void stage_name(FILE *out, const json_t *s)
{
    const char *src = str(s, "source", "");
    md(out, str(s, "name", "?"));
    if (src[0] && strcmp(src, "overall") != 0) {
        fputs(" (", out);
        md(out, src);
        fputc(')', out);
    }
}

/* "(GIL)" only when most of the lock wait was the GIL's, as the terminal says it. */
static const char *gil_note(const json_t *lock)
{
    if (json_is_null(json_object_get(lock, "gil")))
        return " (no GIL: free-threaded CPython)";
    double gil = num(lock, "gil_wait_seconds");
    return json_is_true(json_object_get(lock, "gil")) && gil > 0 && gil >= num(lock, "wait_seconds") ? " (GIL)" : "";
}

static void verdict_row(FILE *out, const json_t *s, int overall)
{
    const json_t *rec = json_object_get(s, "recommendation"), *seed = json_object_get(rec, "seed_rule");
    double conf = num(rec, "confidence");

    fputs(overall ? "| **" : "| ", out);
    stage_name(out, s);
    fputs(overall ? "** | " : " | ", out);
    md(out, str(s, "class", "?"));
    fprintf(out, " | %.2f | ", num(s, "cpu_wall_ratio"));
    pool(out, rec);
    fprintf(out, " | %.2f" TIMES " | %s (%.2f) | ", num(rec, "predicted_speedup"), confidence_word(conf), conf);
    pool(out, seed);
    fputs(" (", out);
    md(out, str(seed, "class", "?"));
    fputs(") |\n", out);
}

/* v with its thousands grouped ("10,018", "150,410.4"): counts run to billions. */
static const char *grouped(char *buf, size_t cap, double v, int decimals)
{
    char digits[64];
    int n = snprintf(digits, sizeof digits, "%.*f", decimals, v < 0 ? -v : v);
    size_t o = 0;
    if (n <= 0 || (size_t)n >= sizeof digits || cap < 2 * sizeof digits) { /* room for a comma every 3 digits */
        snprintf(buf, cap, "%.*f", decimals, v);
        return buf;
    }
    int whole = (int)strcspn(digits, ".");
    if (v < 0)
        buf[o++] = '-';
    for (int i = 0; i < whole; i++) {
        if (i && (whole - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    snprintf(buf + o, cap - o, "%s", digits + whole);
    return buf;
}

/* What a stage's count leaves out, in words, each after a space: a multiplexed count is an estimate, and
 * threads counted from after they began or not at all are short of the stage's whole. */
static void counter_marks(FILE *out, const json_t *c)
{
    int partial = (int)num(c, "threads_partial"), missing = (int)num(c, "threads_not_counted");
    const char *sep = " ";
    if (json_is_true(json_object_get(c, "scaled"))) {
        fputs(" ~ scaled (multiplexed: an estimate)", out);
        sep = "; ";
    }
    if (partial) {
        fprintf(out, "%s%d of %d thread%s counted from after %s began", sep, partial, (int)num(c, "threads_counted"),
                (int)num(c, "threads_counted") == 1 ? "" : "s", partial == 1 ? "it" : "they");
        sep = "; ";
    }
    if (missing)
        fprintf(out, "%s%d thread%s not counted", sep, missing, missing == 1 ? "" : "s");
}

/* A stage's perf counters as a small table after its figures (null in a report without them: nothing). */
static void stage_counters(FILE *out, const json_t *s)
{
    const json_t *a = json_object_get(s, "counters"), *c;
    char v[160], r[160];
    size_t i;
    if (json_is_null(a) && strcmp(str(s, "source", ""), "marker") == 0)
        fputs("- counters: not kept per marker stage (see its threads' stages)\n", out);
    if (!json_is_array(a))
        return;
    if (!json_array_size(a)) {
        fputs("- counters: no thread of this stage was counted\n", out);
        return;
    }
    fputs("\n| counter | count | per CPU-s | note |\n| --- | ---: | ---: | --- |\n", out);
    json_array_foreach(a, i, c) {
        const json_t *rate = json_object_get(c, "per_cpu_second");
        fputs("| ", out);
        md(out, str(c, "event", "?"));
        fprintf(out, " | %s | %s |", grouped(v, sizeof v, num(c, "value"), 0),
                json_is_number(rate) ? grouped(r, sizeof r, json_number_value(rate), 1) : PROF_CHECK_NONE);
        counter_marks(out, c);
        fputs(" |\n", out);
    }
}

/* A stage's section: the verdict's standing, its figures, then every reason the advisor gave. */
static void stage_section(FILE *out, const json_t *s)
{
    const json_t *rec = json_object_get(s, "recommendation"), *ru = json_object_get(rec, "runner_up");
    const json_t *lock = json_object_get(s, "lock"), *hot = json_object_get(lock, "hottest");
    const json_t *io = json_object_get(s, "io"), *ipc = json_object_get(s, "ipc"), *rss = json_object_get(s, "rss");
    const json_t *reasons = json_object_get(rec, "reasons"), *v;
    char a[64], b[64], c[64];
    size_t i;
    double conf = num(rec, "confidence");

    fputs("\n### ", out);
    stage_name(out, s);
    fputs("\n\n**", out);
    md(out, str(s, "class", "?"));
    fprintf(out, "**, CPU/wall %.2f, %d process%s, %d thread%s: **", num(s, "cpu_wall_ratio"), (int)num(s, "processes"),
            (int)num(s, "processes") == 1 ? "" : "es", (int)num(s, "threads"), (int)num(s, "threads") == 1 ? "" : "s");
    pool(out, rec);
    fprintf(out, "**, %.2f" TIMES " predicted\n\n", num(rec, "predicted_speedup"));
    if (json_is_object(ru)) {
        fputs("- runner-up: ", out);
        pool(out, ru);
        fprintf(out, ", %.2f" TIMES " %s\n", num(ru, "predicted_speedup"),
                json_is_true(json_object_get(rec, "tie")) ? "(a tie: within 10%, run-to-run noise)"
                                                          : "(speedups predicted over the measured run)");
    }
    fprintf(out, "- confidence: %s (%.2f): ", confidence_word(conf), conf);
    md(out, str(rec, "confidence_basis", "?"));
    if (!json_is_true(json_object_get(lock, "measured")))
        fputs("\n- lock wait: not measured (no shim in every process)", out);
    else {
        fprintf(out, "\n- lock wait %.1f%% of thread time%s: locks %s", 100 * num(lock, "wait_fraction"), gil_note(lock),
                fig(a, sizeof a, "seconds", lock, "wait_seconds"));
        /* The GIL's own wait only where there is a GIL: a C program's 0 s of it says nothing. */
        if (json_is_true(json_object_get(lock, "gil")))
            fprintf(out, ", GIL %s", fig(b, sizeof b, "seconds", lock, "gil_wait_seconds"));
    }
    if (json_is_object(hot)) {
        const char *py = str(hot, "python_site", NULL);
        fputs("; hottest lock ", out);
        md(out, py ? py : str(hot, "site", "?"));
        fputs(" (", out);
        md(out, str(hot, "kind", "?"));
        fprintf(out, ", %s waited)", fig(a, sizeof a, "seconds", hot, "wait_seconds"));
    }
    if (json_is_true(json_object_get(io, "measured")))
        fprintf(out, "\n- I/O wait %s, %s read and written\n", fig(a, sizeof a, "seconds", io, "wait_seconds"),
                fig(b, sizeof b, "bytes", io, "bytes"));
    else
        fputs("\n- I/O: not measured\n", out);
    if (json_is_true(json_object_get(ipc, "measured")))
        fprintf(out, "- IPC %s sent, %s received, in %s: %.1f%% of busy time\n", fig(a, sizeof a, "bytes", ipc, "bytes"),
                fig(c, sizeof c, "bytes", ipc, "bytes_received"), fig(b, sizeof b, "seconds", ipc, "seconds"),
                100 * num(ipc, "fraction"));
    else
        fputs("- IPC: not measured\n", out);
    fprintf(out, "- idle: joins %s, hand-offs %s, event loop %s\n", fig(a, sizeof a, "seconds", s, "join_wait_seconds"),
            fig(b, sizeof b, "seconds", s, "handoff_wait_seconds"), fig(c, sizeof c, "seconds", s, "evloop_wait_seconds"));
    const char *src = str(s, "source", "");
    if (num(rss, "peak_bytes") <= 0)
        fputs("- RSS: not sampled\n", out);
    else
        /* Memory is a process's: a stage of threads or markers shares its process's with the others. */
        fprintf(out, "- RSS%s: %s%s, peak %s%s\n",
                strcmp(src, "thread-name") == 0 || strcmp(src, "marker") == 0 ? " of its process" : "",
                num(rss, "growth_bytes") > 0 ? "+" : "", fig(a, sizeof a, "bytes", rss, "growth_bytes"),
                fig(b, sizeof b, "bytes", rss, "peak_bytes"),
                json_is_true(json_object_get(rss, "leak_suspected")) ? ", **leak suspected** (it keeps climbing)" : "");
    stage_counters(out, s);
    if (json_array_size(reasons))
        fputs("\nWhy:\n\n", out);
    json_array_foreach(reasons, i, v)
        item(out, json_string_value(v));
}

/* The stage's hottest lock: the Python code that waited on it says more than an address does. */
static void lock_row(FILE *out, const json_t *s)
{
    const json_t *hot = json_object_get(json_object_get(s, "lock"), "hottest");
    char a[64], b[64];

    fputs("| ", out);
    stage_name(out, s);
    fprintf(out, " | %d | ", (int)num(hot, "pid"));
    md(out, str(hot, "site", "?"));
    fputs(" | ", out);
    md(out, str(hot, "python_site", PROF_CHECK_NONE));
    fputs(" | ", out);
    md(out, str(hot, "kind", "?"));
    fprintf(out, " | %s | %s | %d of %d |\n", fig(a, sizeof a, "seconds", hot, "wait_seconds"),
            fig(b, sizeof b, "seconds", hot, "hold_seconds"), (int)num(hot, "contended"), (int)num(hot, "acquisitions"));
}

/* One lock of a process (processes[].locks[]): where, what, how often it was waited for and passed on. */
static void site_row(FILE *out, const json_t *p, const json_t *l)
{
    char a[64], b[64];

    fprintf(out, "| %d ", (int)num(p, "pid"));
    md(out, str(p, "name", ""));
    fputs(" | ", out);
    md(out, str(l, "site", "?"));
    fputs(" | ", out);
    md(out, str(l, "python_site", PROF_CHECK_NONE));
    fputs(" | ", out);
    md(out, str(l, "kind", "?"));
    fprintf(out, " | %d of %d | %s | %s | %d |\n", (int)num(l, "contended"), (int)num(l, "acquisitions"),
            fig(a, sizeof a, "seconds", l, "wait_seconds"), fig(b, sizeof b, "seconds", l, "hold_seconds"),
            (int)num(l, "owner_changes"));
}

static void ipc_row(FILE *out, const json_t *s)
{
    const json_t *ipc = json_object_get(s, "ipc");
    char a[64], b[64], c[64], d[64];

    fputs("| ", out);
    stage_name(out, s);
    if (!json_is_true(json_object_get(ipc, "measured"))) {
        fputs(" | not measured | | | | | |\n", out);
        return;
    }
    fprintf(out, " | %s | %s | %d | %s | %.1f%% | %s |\n", fig(a, sizeof a, "bytes", ipc, "bytes_sent"),
            fig(b, sizeof b, "bytes", ipc, "bytes_received"), (int)num(ipc, "messages"),
            fig(c, sizeof c, "seconds", ipc, "seconds"), 100 * num(ipc, "fraction"),
            fig(d, sizeof d, "seconds", ipc, "send_wait_seconds"));
}

/* One event of measurement.counters: how it was counted, by how many threads, and why not (or not as asked). */
static void counter_row(FILE *out, const json_t *c)
{
    const char *src = str(c, "source", "?"), *reason = str(c, "reason", NULL);
    int measured = json_is_true(json_object_get(c, "measured"));
    fputs("| ", out);
    md(out, str(c, "event", "?"));
    fputs(" | ", out);
    md(out, src);
    fputs(json_is_true(json_object_get(c, "default")) ? " | default set" : " | asked for", out);
    if (json_is_true(json_object_get(c, "hardware")))
        fputs(", a PMU event", out);
    if (json_is_true(json_object_get(c, "user_only")))
        fputs(", user mode only", out);
    if (json_is_true(json_object_get(c, "scaled")))
        fprintf(out, ", ~ scaled (least running %.0f%%)", 100 * num(c, "min_running_fraction"));
    fprintf(out, " | %d | %d | %d | %s", (int)num(c, "threads_counted"), (int)num(c, "threads_partial"),
            (int)num(c, "threads_not_counted"), measured ? "" : reason ? "**not counted**: " : "**not counted**");
    if (reason)
        md(out, reason);
    else if (measured)
        fputs(PROF_CHECK_NONE, out);
    fputs(" |\n", out);
}

/* The heading and the run's one-line header, then what the terminal says under it. */
static void head(FILE *out, const json_t *doc)
{
    const json_t *ms = json_object_get(doc, "measurement"), *v, *procs;
    size_t i, nproc = json_array_size(json_object_get(doc, "processes"));
    int staged = (int)num(json_object_get(doc, "overall"), "processes");

    fputs("## poolprof:", out);
    size_t shown = 0, nargs = json_array_size(json_object_get(doc, "command"));
    json_array_foreach(json_object_get(doc, "command"), i, v) {
        if (shown > 2 * MD_STRING_MAX) {
            fprintf(out, " " ELLIPSIS " (%zu more arguments)", nargs - i);
            break;
        }
        fputc(' ', out);
        shown += 1 + md_max(out, json_string_value(v), MD_STRING_MAX);
    }
    fprintf(out, "\n\nwall %.2f s" DOT, num(doc, "wall_seconds"));
    char exitbuf[48];
    fputs(prof_report_exit_text(doc, exitbuf, sizeof exitbuf), out);
    fprintf(out, DOT "%d usable CPUs" DOT "%zu process%s", (int)num(json_object_get(doc, "machine"), "usable_cpus"),
            nproc, nproc == 1 ? "" : "es");
    /* overall leaves a launcher's helpers out; say so under the count, not only in the notes */
    if (staged >= 0 && (size_t)staged < nproc)
        fprintf(out, " (%zu of them a launcher's, left out of overall)", nproc - (size_t)staged);
    fputs("\n", out);
    if (json_array_size(json_object_get(ms, "static_pids")))
        fputs("\n- static binary: the shim could not load; figures come from /proc only\n", out);
    procs = json_object_get(doc, "processes");
    json_array_foreach(procs, i, v) {
        const char *why = str(v, "python_unsupported", NULL);
        size_t j = 0, n = 0;
        if (!why)
            continue;
        /* One line per reason, however many processes of a pool share it. */
        while (j < i && strcmp(str(json_array_get(procs, j), "python_unsupported", ""), why) != 0)
            j++;
        if (j < i)
            continue;
        for (j = i; j < json_array_size(procs); j++)
            n += strcmp(str(json_array_get(procs, j), "python_unsupported", ""), why) == 0;
        if (n > 1)
            fprintf(out, "\n- pid %d and %zu more: ", (int)num(v, "pid"), n - 1);
        else
            fprintf(out, "\n- pid %d: ", (int)num(v, "pid"));
        md(out, why);
        fprintf(out, ": no Python stacks for %s\n", n > 1 ? "them" : "it");
    }
    size_t nerr = json_array_size(json_object_get(ms, "errors"));
    if (nerr)
        fprintf(out, "\n**%zu recording problem%s**: see below; some figures may be short\n", nerr, nerr == 1 ? "" : "s");
    const json_t *smp = json_object_get(ms, "sampler");
    double mon = num(ms, "monitor_cpu_seconds"), smpl = num(smp, "self_cpu_seconds"), wall = num(doc, "wall_seconds");
    if ((mon > 0 || smpl > 0) && wall > 0)
        fprintf(out, "\npoolprof's own CPU %.0f ms (monitor %.0f, sampler %.0f): %.1f%% of one CPU over the run\n",
                (mon + smpl) * 1e3, mon * 1e3, smpl * 1e3, 100.0 * (mon + smpl) / wall);
}

struct block {
    enum part part;
    size_t index; /* its place in its part: kept within a rank in document order */
    int rank;     /* smaller is kept first */
    long off, len;
};

static int by_rank(const void *a, const void *b)
{
    const struct block *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_place(const void *a, const void *b)
{
    const struct block *x = a, *y = b;
    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * How much a block matters: the overall verdict, then the first notes and errors (a run whose figures
 * are short must say so), the rest of overall (its section, hottest lock, IPC), the stages' verdicts,
 * their locks, their IPC, their sections, and the messages past MD_MESSAGES_MAX last.
 */
static int rank_of(enum part p, size_t index, long messages_before)
{
    static const int ranks[NPARTS] = {[P_VERDICT] = 3, [P_STAGE] = 6, [P_LOCK] = 4, [P_SITE] = 5, [P_IPC] = 5,
                                      [P_COUNTER] = 5, [P_NOTE] = 1, [P_ERROR] = 1};
    if (p == P_VERDICT && index == 0)
        return 0;
    if (p <= P_IPC && p != P_SITE && index == 0) /* overall's rows; a lock site's index is no stage's */
        return 2;
    if ((p == P_NOTE || p == P_ERROR) && messages_before > MD_MESSAGES_MAX)
        return 7;
    return ranks[p];
}

/* The blocks of every part, rendered into f[part]; *nb of them. */
static struct block *blocks(const json_t *doc, FILE *f[NPARTS], size_t *nb)
{
    const json_t *ms = json_object_get(doc, "measurement"), *v;
    size_t nst = 1 + json_array_size(json_object_get(doc, "stages"));
    size_t i, k, nsites = 0;
    const json_t *p, *l;
    json_array_foreach(json_object_get(doc, "processes"), i, p)
        nsites += json_array_size(json_object_get(p, "locks"));
    size_t cap = 4 * nst + nsites + json_array_size(json_object_get(ms, "counters")) +
                 json_array_size(json_object_get(ms, "notes")) + json_array_size(json_object_get(ms, "errors"));
    struct block *b = calloc(cap, sizeof *b);
    long messages = 0;
    size_t n = 0, site = 0;

    if (!b)
        return NULL;
#define BLOCK(p, idx, call)                                                                        \
    do {                                                                                           \
        b[n] = (struct block){.part = (p), .index = (idx), .off = ftell(f[p])};                    \
        call;                                                                                      \
        b[n].len = ftell(f[p]) - b[n].off;                                                         \
        b[n].rank = rank_of((p), (idx), messages);                                                 \
        if ((p) == P_NOTE || (p) == P_ERROR)                                                       \
            messages += b[n].len;                                                                  \
        n++;                                                                                       \
    } while (0)
    for (i = 0; i < nst; i++) {
        const json_t *s = i ? json_array_get(json_object_get(doc, "stages"), i - 1) : json_object_get(doc, "overall");
        BLOCK(P_VERDICT, i, verdict_row(f[P_VERDICT], s, i == 0));
        BLOCK(P_STAGE, i, stage_section(f[P_STAGE], s));
        if (json_is_object(json_object_get(json_object_get(s, "lock"), "hottest")))
            BLOCK(P_LOCK, i, lock_row(f[P_LOCK], s));
        BLOCK(P_IPC, i, ipc_row(f[P_IPC], s));
    }
    json_array_foreach(json_object_get(doc, "processes"), i, p)
        json_array_foreach(json_object_get(p, "locks"), k, l)
            BLOCK(P_SITE, site++, site_row(f[P_SITE], p, l));
    json_array_foreach(json_object_get(ms, "counters"), i, v)
        BLOCK(P_COUNTER, i, counter_row(f[P_COUNTER], v));
    /* Errors before notes (in the part order too): when both cannot fit, what went wrong matters more than how. */
    json_array_foreach(json_object_get(ms, "errors"), i, v)
        BLOCK(P_ERROR, i, item(f[P_ERROR], json_string_value(v)));
    json_array_foreach(json_object_get(ms, "notes"), i, v)
        BLOCK(P_NOTE, i, item(f[P_NOTE], json_string_value(v)));
#undef BLOCK
    *nb = n;
    return b;
}

/* Each part's heading or table head, before its first block kept. */
static void part_head(FILE *out, enum part p)
{
    static const char *const heads[NPARTS] = {
        [P_VERDICT] = "\n| stage | class | CPU/wall | verdict | speedup | confidence | seeds' rule |\n"
                      "| --- | --- | ---: | --- | ---: | --- | --- |\n",
        [P_STAGE] = "",
        [P_LOCK] = "\n### Hottest locks\n\n| stage | pid | site | Python site | kind | waited | held | contended |\n"
                   "| --- | ---: | --- | --- | --- | ---: | ---: | ---: |\n",
        [P_SITE] = "\n### Lock sites\n\n| process | site | Python site | kind | waits | waited | held | owner changes |\n"
                   "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |\n",
        [P_IPC] = "\n### IPC between the target's processes\n\n"
                  "| stage | sent | received | messages | time | of busy | send wait |\n"
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        [P_COUNTER] = "\n### Perf counters\n\n"
                      "| event | source | how | threads counted | from after their start | not counted | "
                      "why not, or not as asked |\n"
                      "| --- | --- | --- | ---: | ---: | ---: | --- |\n",
        [P_NOTE] = "\n### Measurement notes\n\n",
        [P_ERROR] = "\n### Recording problems\n\n",
    };
    fputs(heads[p], out);
}

/* One function: the blocks are chosen by rank and written in place, and the parts left out are
 * counted for the closing line, over one set of streams. */
static int render_md(const json_t *doc, FILE *out, size_t limit)
{
    static const char *const what[NPARTS] = {"verdict rows", "stage sections", "lock rows", "lock site rows", "IPC rows",
                                             "counter rows", "errors", "notes"};
    char *buf[NPARTS + 1] = {NULL};
    size_t lens[NPARTS + 1] = {0}, nb = 0, shown = 0, left[NPARTS] = {0}, kept[NPARTS] = {0};
    FILE *f[NPARTS + 1];
    struct block *b = NULL;
    int rc = 0;

    for (int k = 0; k <= NPARTS; k++)
        f[k] = open_memstream(&buf[k], &lens[k]);
    for (int k = 0; k <= NPARTS; k++)
        if (!f[k]) {
            rc = PROF_ENOMEM;
            goto out;
        }
    head(f[NPARTS], doc);
    b = blocks(doc, f, &nb);
    for (int k = 0; k <= NPARTS; k++)
        if (fflush(f[k]) != 0)
            rc = PROF_ENOMEM;
    if (!b || rc) {
        rc = PROF_ENOMEM;
        goto out;
    }
    qsort(b, nb, sizeof *b, by_rank);
    /* Room for the header, every part's heading, the footer and the left-out line. */
    size_t used = lens[NPARTS] + 2048 + strlen(str(doc, "run_dir", ""));
    for (; shown < nb; shown++) {
        if (used + (size_t)b[shown].len > limit)
            break; /* never a less important block in a more important one's place */
        used += (size_t)b[shown].len;
        kept[b[shown].part]++;
    }
    for (size_t i = shown; i < nb; i++)
        left[b[i].part]++;
    qsort(b, shown, sizeof *b, by_place);

    fwrite(buf[NPARTS], 1, lens[NPARTS], out);
    /* No stage with a contended lock: said where the lock table would be, not left to be guessed. */
    int no_locks = !kept[P_LOCK] && !left[P_LOCK];
    for (size_t i = 0; i <= shown; i++) {
        enum part p = i < shown ? b[i].part : NPARTS;
        if (no_locks && p > P_LOCK) {
            fputs("\n### Hottest locks\n\nNo contended lock was measured.\n", out);
            no_locks = 0;
        }
        if (i == shown)
            break;
        if (i == 0 || p != b[i - 1].part)
            part_head(out, p);
        fwrite(buf[p] + b[i].off, 1, (size_t)b[i].len, out);
    }
    if (shown < nb) {
        int first = 1;
        fprintf(out, "\n_Left out to keep this summary under GitHub's 1 MiB:");
        for (int k = 0; k < NPARTS; k++)
            if (left[k]) {
                fprintf(out, "%s %zu of %zu %s", first ? "" : ",", left[k], left[k] + kept[k], what[k]);
                first = 0;
            }
        fputs(". The JSON format has them all._\n", out);
    }
    fputs("\nReport: ", out);
    md(out, str(doc, "run_dir", "."));
    fputs("/report.json\n", out);
    if (ferror(out))
        rc = PROF_EIO;
out:
    for (int k = 0; k <= NPARTS; k++) {
        if (f[k])
            fclose(f[k]);
        free(buf[k]);
    }
    free(b);
    return rc;
}

static int render_markdown(const struct prof_report *r, FILE *out)
{
    if (!r || !r->doc || !out)
        return PROF_EINVAL;
    return render_md(r->doc, out, MD_LIMIT);
}

const struct prof_renderer prof_render_markdown = {
    .name = "markdown",
    .summary = "GitHub-flavoured Markdown for pull requests and $GITHUB_STEP_SUMMARY: verdicts, locks, IPC, perf counters, "
               "notes, under 1 MiB",
    .rundir_file = "report.md",
    .render = render_markdown,
};
