/* html.h: what the HTML renderer's two files share: the escapers for target strings and the page's data block. */
#ifndef POOLPROF_HTML_H
#define POOLPROF_HTML_H

#include <stdio.h>
#include <jansson.h>

#include "core/report.h"

struct prof_thread;

/*
 * A string from the target (argv, a thread name, a path, a Python function) as HTML text or as
 * an attribute value (quoted with "): & < > " ' become references, control bytes (an ANSI escape,
 * a newline in argv) their visible Control Pictures (U+241B for ESC), bytes that are not UTF-8
 * U+FFFD. The same text is safe in both contexts, so there is one escaper, not two to keep apart.
 */
void prof_html_text(FILE *out, const char *s);
/* The same for at most n bytes of s. */
void prof_html_textn(FILE *out, const char *s, size_t n);


/*
 * The data the page's script draws from: the timeline's lanes (one per thread, in the order
 * prof_html_lanes walks them), stage spans, RSS tracks and the two flame graphs. Notes on what
 * was merged or cut to keep the page small go to notes (an array of strings).
 * 0 or PROF_ENOMEM.
 */
int prof_html_data(const struct prof_report *r, json_t *notes, json_t **data);

/* The perf counters (html_counters.c): a stage's table inside its card (s: overall or stages[]); a
 * thread's counts appended to its lane's tooltip (text for a title attribute); the Counters section,
 * every event of measurement.counters with how it was counted or why not, and the threads' counts. */
/* A figure of a report object by dotted path ("lock.wait_seconds"): the number (0 when absent) or the
 * string ("" when absent); html.c's, shared with html_counters.c. */
double prof_html_num(const json_t *o, const char *path);
const char *prof_html_str(const json_t *o, const char *path);

void prof_html_stage_counters(FILE *out, const json_t *s);
void prof_html_thread_counters(FILE *out, const struct prof_run *m, const struct prof_thread *t);
void prof_html_counters(FILE *out, const json_t *doc, const struct prof_run *m);

/* Write a JSON value inside <script type="application/json">: compact, ASCII only, with < > &
 * as \u escapes, so no string in it can close the element or open a comment. */
int prof_html_json(FILE *out, const json_t *v);

#endif
