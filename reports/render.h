/* render.h: the renderers, one ops struct per output format, registered in one table (render.c). */
#ifndef POOLPROF_RENDER_H
#define POOLPROF_RENDER_H

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
extern const struct prof_renderer prof_render_trace;         /* trace.c: Chrome Trace Event Format timeline */

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
