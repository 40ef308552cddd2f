/* html_counters.c: the HTML report's perf counters: a small table in each stage's card, each thread's counts in its lane's tooltip, and a Counters section with every event, how it was counted or why not, and the threads' counts. */
#include <string.h>

#include "core/run.h"
#include "prof.h"
#include "reports/html.h"

/* Threads in the Counters section's table: past this the page would grow by the thread, and every
 * thread's counts are in its lane's tooltip and in report.json anyway. */
#define THREAD_ROWS 2000
/* Under this share of its enabled time a thread's count was multiplexed and scaled: the report's bar
 * (core/stage_counters.c), so a "~" here marks what the JSON calls scaled. */

static const char SCALED_TITLE[] = "scaled: multiplexed with other events on the PMU, a thread's count ran under "
                                   "80% of the time it was enabled and is scaled by enabled / running: an estimate";

/* v with its thousands grouped ("10,018", "150,410.4"): counts run to billions, and a reader compares
 * their sizes at a glance. */
static void grouped(FILE *out, double v, int decimals)
{
    char digits[64];
    int n = snprintf(digits, sizeof digits, "%.*f", decimals, v < 0 ? -v : v);
    if (n <= 0 || (size_t)n >= sizeof digits) {
        fprintf(out, "%.*f", decimals, v);
        return;
    }
    int whole = (int)strcspn(digits, ".");
    if (v < 0)
        fputc('-', out);
    for (int i = 0; i < whole; i++) {
        if (i && (whole - i) % 3 == 0)
            fputc(',', out);
        fputc(digits[i], out);
    }
    fputs(digits + whole, out);
}

/* The marks of a stage's count: "~" when scaled, "partial" when threads of the stage were counted
 * from after they began or not at all; each says why in its title. */
static void stage_marks(FILE *out, const json_t *c)
{
    int partial = (int)prof_html_num(c, "threads_partial"), missing = (int)prof_html_num(c, "threads_not_counted");
    int counted = (int)prof_html_num(c, "threads_counted");
    if (json_is_true(json_object_get(c, "scaled")))
        fprintf(out, "<span class=\"mark\" title=\"%s\">~</span>", SCALED_TITLE);
    if (!partial && !missing)
        return;
    fputs("<span class=\"mark\" title=\"", out);
    if (partial)
        fprintf(out, "%d of the %d thread%s counted were found running (attach, or followed late): their counts miss "
                     "their start.",
                partial, counted, counted == 1 ? "" : "s");
    if (missing)
        fprintf(out, "%s%d thread%s of the stage not counted (ended before poolprof saw %s, the open failed, or the "
                     "descriptor budget ran out): the count leaves %s out.",
                partial ? " " : "", missing, missing == 1 ? "" : "s", missing == 1 ? "it" : "them",
                missing == 1 ? "it" : "them");
    fputs("\">partial</span>", out);
}

void prof_html_stage_counters(FILE *out, const json_t *s)
{
    const json_t *a = json_object_get(s, "counters"), *c;
    size_t i;
    if (!json_is_array(a)) {
        /* null: a marker stage (the shim's per-stage figures hold no perf counts), or no counters recorded,
         * which the Counters section says once rather than every card. */
        if (strcmp(prof_html_str(s, "source"), "marker") == 0)
            fputs("<p class=\"ctrnone\">counters: not kept per marker stage (see the threads' stages)</p>\n", out);
        return;
    }
    if (!json_array_size(a)) {
        fputs("<p class=\"ctrnone\">counters: no thread of this stage was counted</p>\n", out);
        return;
    }
    fputs("<table class=\"ctr\"><thead><tr><th>counter</th><th>count</th><th>per CPU-s</th><th></th></tr></thead>"
          "<tbody>\n",
          out);
    json_array_foreach(a, i, c) {
        const json_t *rate = json_object_get(c, "per_cpu_second");
        fputs("<tr data-event=\"", out);
        prof_html_text(out, prof_html_str(c, "event"));
        fputs("\"><td title=\"", out);
        prof_html_text(out, prof_html_str(c, "role"));
        fputs("\">", out);
        prof_html_text(out, prof_html_str(c, "event"));
        fputs("</td><td>", out);
        grouped(out, prof_html_num(c, "value"), 0);
        fputs("</td><td>", out);
        if (json_is_number(rate))
            grouped(out, json_number_value(rate), 1);
        else
            fputs("<span title=\"under 1 ms of CPU: no rate\">&mdash;</span>", out);
        fputs("</td><td>", out);
        stage_marks(out, c);
        fputs("</td></tr>\n", out);
    }
    fputs("</tbody></table>\n", out);
}

void prof_html_thread_counters(FILE *out, const struct prof_run *m, const struct prof_thread *t)
{
    if (!t->ctr_mask)
        return;
    const char *sep = "; counters: ";
    for (size_t i = 0; i < m->ncounters; i++) {
        int ok;
        double running;
        uint64_t v = prof_thread_ctr_value(t, i, &ok, &running);
        if (!ok)
            continue;
        fputs(sep, out);
        sep = ", ";
        prof_html_textn(out, m->counters[i].name, strnlen(m->counters[i].name, sizeof m->counters[i].name));
        fputs(running < PROF_CTR_SCALED_BELOW ? " ~" : " ", out);
        grouped(out, (double)v, 0);
    }
    /* /proc's figures count from the task's creation whenever they are read; perf's only from its open. */
    if (!t->ctr_born)
        fputs(" (counted from when poolprof first saw it running)", out);
}

/* How an event was counted, in words: its source, whether asked for, and what the kernel allowed; one not
 * counted has only what it is (its reason is the next cell's). */
static void how(FILE *out, const json_t *c)
{
    const char *src = prof_html_str(c, "source");
    const char *words = strcmp(src, "perf") == 0   ? "perf_event_open, "
                        : strcmp(src, "raw") == 0  ? "perf_event_open (a raw software encoding), "
                        : strcmp(src, "proc") == 0 ? "/proc (perf_event_open refused), "
                                                   : "";
    fputs(words, out);
    fputs(json_is_true(json_object_get(c, "default")) ? "default set" : "asked for", out);
    if (json_is_true(json_object_get(c, "hardware")))
        fputs(", a PMU event", out);
    if (json_is_true(json_object_get(c, "user_only")))
        fputs(", user mode only", out);
    if (json_is_true(json_object_get(c, "scaled")))
        fprintf(out, ", <span class=\"mark\" title=\"%s\">~</span> scaled (least running %.0f%%)", SCALED_TITLE,
                100 * prof_html_num(c, "min_running_fraction"));
}

/* Every event of measurement.counters: the ones not counted first say why, so an event that was asked for
 * and is missing from the stages' tables is explained here. */
static void events(FILE *out, const json_t *list)
{
    size_t i;
    const json_t *c;
    fputs("<table class=\"ctr-events\"><thead><tr><th>event</th><th>source</th><th>how</th><th>threads counted</th>"
          "<th>from after their start</th><th>not counted</th><th>why not, or not as asked</th></tr></thead><tbody>\n",
          out);
    json_array_foreach(list, i, c) {
        int measured = json_is_true(json_object_get(c, "measured"));
        const char *reason = prof_html_str(c, "reason");
        fputs(measured ? "<tr data-event=\"" : "<tr class=\"notcounted\" data-event=\"", out);
        prof_html_text(out, prof_html_str(c, "event"));
        fputs("\"><td><code>", out);
        prof_html_text(out, prof_html_str(c, "event"));
        fputs("</code>", out);
        if (*prof_html_str(c, "role") && strcmp(prof_html_str(c, "role"), prof_html_str(c, "event")) != 0) {
            fputs(" <small>", out);
            prof_html_text(out, prof_html_str(c, "role"));
            fputs("</small>", out);
        }
        fputs("</td><td>", out);
        prof_html_text(out, prof_html_str(c, "source"));
        fputs("</td><td>", out);
        how(out, c);
        fprintf(out, "</td><td>%d</td><td>%d</td><td>%d</td><td class=\"reason\">", (int)prof_html_num(c, "threads_counted"),
                (int)prof_html_num(c, "threads_partial"), (int)prof_html_num(c, "threads_not_counted"));
        if (!measured)
            fputs("not counted", out);
        if (*reason) {
            fputs(measured ? "" : ": ", out);
            prof_html_text(out, reason);
        } else if (measured) {
            fputs("&mdash;", out);
        }
        fputs("</td></tr>\n", out);
    }
    fputs("</tbody></table>\n", out);
}

/* A thread's counts, one column per event that counted some thread: the threads side by side show which
 * of a stage's threads switched, migrated or faulted. */
static void threads(FILE *out, const struct prof_run *m)
{
    size_t cols[PROF_CTRREC_MAX], ncols = 0, rows = 0, left = 0;
    for (size_t i = 0; i < m->ncounters; i++) {
        int any = 0;
        for (size_t p = 0; p < m->nprocs && !any; p++)
            for (size_t j = 0; j < m->procs[p]->nthreads && !any; j++)
                prof_thread_ctr_value(&m->procs[p]->threads[j], i, &any, NULL);
        if (any)
            cols[ncols++] = i;
    }
    if (!ncols)
        return;
    fputs("<h3>Threads</h3>\n<table class=\"ctr-threads\"><thead><tr><th>pid</th><th>tid</th><th>thread</th>", out);
    for (size_t k = 0; k < ncols; k++) {
        fputs("<th>", out);
        prof_html_textn(out, m->counters[cols[k]].name, strnlen(m->counters[cols[k]].name, sizeof m->counters[cols[k]].name));
        fputs("</th>", out);
    }
    fputs("<th>from start</th></tr></thead><tbody>\n", out);
    for (size_t p = 0; p < m->nprocs; p++) {
        const struct prof_process *pr = m->procs[p];
        for (size_t j = 0; j < pr->nthreads; j++) {
            const struct prof_thread *t = &pr->threads[j];
            if (!t->ctr_mask)
                continue;
            if (rows == THREAD_ROWS) {
                left++;
                continue;
            }
            rows++;
            fprintf(out, "<tr data-pid=\"%d\" data-tid=\"%d\"><td>%d</td><td>%d</td><td>", pr->pid, t->tid, pr->pid, t->tid);
            prof_html_textn(out, t->name, strnlen(t->name, sizeof t->name));
            fputs("</td>", out);
            for (size_t k = 0; k < ncols; k++) {
                int ok;
                double running;
                uint64_t v = prof_thread_ctr_value(t, cols[k], &ok, &running);
                fputs("<td>", out);
                if (!ok)
                    fputs("<span title=\"not counted for this thread\">&mdash;</span>", out);
                else
                    grouped(out, (double)v, 0);
                if (ok && running < PROF_CTR_SCALED_BELOW)
                    fprintf(out, " <span class=\"mark\" title=\"%s\">~</span>", SCALED_TITLE);
                fputs("</td>", out);
            }
            fputs(t->ctr_born ? "<td>yes</td></tr>\n"
                              : "<td title=\"opened when poolprof first saw it running: perf's counts miss its start "
                                "(/proc's do not)\">no</td></tr>\n",
                  out);
        }
    }
    fputs("</tbody></table>\n", out);
    if (left)
        fprintf(out, "<p class=\"note\">%zu more thread%s counted: %s counts are in %s lane's tooltip and in "
                     "report.json.</p>\n",
                left, left == 1 ? "" : "s", left == 1 ? "its" : "their", left == 1 ? "its" : "each");
}

void prof_html_counters(FILE *out, const json_t *doc, const struct prof_run *m)
{
    const json_t *list = json_object_get(json_object_get(doc, "measurement"), "counters");
    fputs("<section id=\"counters\"><h2>Counters</h2>\n", out);
    if (!json_array_size(list)) {
        fputs("<p class=\"none\">No perf counters recorded (--no-counters, or a run older than them).</p></section>\n", out);
        return;
    }
    fputs("<p class=\"note\">Counted per thread with perf_event_open from poolprof's own process (the default software "
          "set and those asked for with --counters); a stage's count is its threads' sum, per CPU-second of its CPU "
          "time. <span class=\"mark\">~</span> marks a count multiplexed on the PMU and scaled (an estimate); "
          "<span class=\"mark\">partial</span> a stage some of whose threads were counted from after they began, or "
          "not at all.</p>\n",
          out);
    events(out, list);
    threads(out, m);
    fputs("</section>\n", out);
}
