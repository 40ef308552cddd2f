/* render.h: the renderers, one ops struct per output format, registered in one table (render.c). */
#ifndef POOLPROF_RENDER_H
#define POOLPROF_RENDER_H

#include <stdint.h>
#include <stdio.h>

#include "core/report.h"

/*
 * A renderer turns the report model into one format. It reads the report document, and,
 * when needs_run is set, the merged run behind it (stacks, RSS series, timelines): a report
 * read back from a JSON file has no run, and those formats cannot be rendered from it.
 */
struct prof_renderer {
    const char *name;        /* what --format takes */
    const char *summary;     /* one line for poolprof help */
    const char *rundir_file; /* the file a recording leaves in RUNDIR in this format, or NULL */
    int needs_run;           /* reads r->run, not only r->doc */
    /* Is there anything to render? (folded stacks need the sampler's records.) NULL: always. */
    int (*available)(const struct prof_report *r);
    int (*render)(const struct prof_report *r, FILE *out); /* 0 or PROF_E* */
};

extern const struct prof_renderer prof_render_terminal;      /* terminal.c */
extern const struct prof_renderer prof_render_json;          /* json.c */
extern const struct prof_renderer prof_render_folded;        /* folded.c: on-CPU stacks */
extern const struct prof_renderer prof_render_folded_offcpu; /* folded.c: off-CPU time per stack */
extern const struct prof_renderer prof_render_rss_csv;       /* rss_csv.c */
extern const struct prof_renderer prof_render_markdown;      /* markdown.c: for pull requests and CI summaries */
extern const struct prof_renderer prof_render_html;          /* html.c: one self-contained page */
extern const struct prof_renderer prof_render_speedscope;    /* speedscope.c: per-thread profiles for speedscope */
extern const struct prof_renderer prof_render_trace;         /* trace.c: Chrome Trace Event Format timeline */

struct prof_run;
/* The folded stacks of the folded formats, each line once, in byte order: fn(ctx,
 * "stage;comm-PID;thread-TID;root;...;leaf", samples (on-CPU) or microseconds (off-CPU)), the stage
 * named from doc (NULL: overall). Frames hold no ';'. Stops at fn's first non-zero return, which it
 * returns; 0 or PROF_E* otherwise (0 and no call without the sampler's stacks). */
int prof_folded_each(const struct prof_run *m, const json_t *doc, int offcpu,
                     int (*fn)(void *ctx, const char *line, uint64_t count), void *ctx);

/* How a report's run ended, from its "exit" object: "killed by signal N", "exit N" or "exit unknown"
 * (after an attach), in buf; buf. The words every format that shows it uses. */
const char *prof_report_exit_text(const json_t *doc, char *buf, size_t cap);

/* The JSON format's render: r->doc indented, keys in insertion order; the check's json format writes its
 * document with it too. */
int prof_render_json_doc(const struct prof_report *r, FILE *out);

/* The renderer named name, or NULL. */
const struct prof_renderer *prof_renderer_find(const char *name);
/* The i-th renderer of the table (for help), NULL past the last. */
const struct prof_renderer *prof_renderer_at(size_t i);

/* Render to out; PROF_ENOTSUP when the format needs the run and r has none. */
int prof_render(const struct prof_renderer *rd, const struct prof_report *r, FILE *out);

/* Render into path through a temporary file beside it, renamed over path only when every
 * write succeeded: readers never see half a file. 0 or PROF_E*. */
int prof_render_file(const struct prof_renderer *rd, const struct prof_report *r, const char *path);

/* Leave the run directory's own report files (each renderer's rundir_file that has
 * something to render): the report document last, so a file that could not be written
 * is named in its measurement.errors. 0 or the first PROF_E* (report.json's own). */
int prof_render_rundir(struct prof_report *r, const char *rundir);

#endif
