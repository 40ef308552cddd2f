/* check_render.h: the renderers of a `poolprof check` result document (schema poolprof.check/1), and the helpers they share. */
#ifndef POOLPROF_CHECK_RENDER_H
#define POOLPROF_CHECK_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "reports/render.h"

#define PROF_CHECK_SCHEMA "poolprof.check/1"

/*
 * Each takes a struct prof_report whose doc is a check document (libprof/format/check.schema.json)
 * and whose run is NULL, so prof_render() and prof_render_file() serve them unchanged. They read
 * the document only: a document read back from a file renders the same.
 */
extern const struct prof_renderer prof_check_render_terminal; /* check_terminal.c */
extern const struct prof_renderer prof_check_render_json;     /* check_json.c */
extern const struct prof_renderer prof_check_render_markdown; /* check_markdown.c */
extern const struct prof_renderer prof_check_render_junit;    /* check_junit.c */
extern const struct prof_renderer prof_check_render_github;   /* check_github.c */

/* The check renderer named name (what `poolprof check --format` takes), or NULL. */
const struct prof_renderer *prof_check_renderer_find(const char *name);
/* The i-th check renderer (terminal, json, markdown, junit, github), NULL past the last. */
const struct prof_renderer *prof_check_renderer_at(size_t i);

/* What a missing figure shows: one em dash in every format, the terminal too (it is UTF-8). */
#define PROF_CHECK_NONE "\xE2\x80\x94"

/* ", 5 rounds, 5 + 5 samples, machines match[, 2 confirmed with 10 more rounds][, strict]": how the
 * check was made, after its mode, in the terminal's and the Markdown's first line. */
void prof_check_setup(FILE *out, const json_t *doc);

/* A string member of o, or dflt when it is missing or not a string. */
const char *prof_check_str(const json_t *o, const char *key, const char *dflt);
/* An integer member of o, or 0. */
long long prof_check_int(const json_t *o, const char *key);

/* A figure's value for people, by the figure's name: "1.23 s", "412 ms", "12.3 MiB", "25.0%",
 * "1234", "true", "threads x4"; null is PROF_CHECK_NONE. Strings are copied raw (each
 * format escapes what it prints). Always NUL-terminated. */
void prof_check_value(char *buf, size_t cap, const char *figure, const json_t *v);
/* A change ratio as a signed percentage ("+30.6%", "-4.2%", "+0.0%"); null: PROF_CHECK_NONE. */
void prof_check_change(char *buf, size_t cap, const json_t *ratio);
/* The interval of the ratio as "+21.0% to +40.0%"; anything but two numbers: PROF_CHECK_NONE. */
void prof_check_interval(char *buf, size_t cap, const json_t *interval);
/* A p value with 2 significant digits ("0.0079", "0.5", "<0.0001"); null: PROF_CHECK_NONE. */
void prof_check_p(char *buf, size_t cap, const json_t *p);

/* "PASS", "REGRESSION" or "INCONCLUSIVE" for the document's result (upper case of an unknown one). */
void prof_check_verdict(char *buf, size_t cap, const json_t *doc);
/* "1 regressed, 0 improved, 1 inconclusive, 1 unmeasured, 9 passed" from the document's counts. */
void prof_check_counts(char *buf, size_t cap, const json_t *doc);

/* Does this check row need a reader's attention (regressed, inconclusive or unmeasured)? */
int prof_check_row_flagged(const json_t *check);

/* A format's escape of one character cp: NULL to print it as it is, else what to print in its
 * place (buf, of cap bytes, is there to build it in). flag is the caller's (attribute or text). */
typedef const char *(*prof_check_esc_fn)(uint32_t cp, int flag, char *buf, size_t cap);

/*
 * s through esc, one UTF-8 character at a time; a byte that begins no well-formed character
 * prints as bad (a printf format of one unsigned, "\\x%02X"). Written to out (at most cap bytes,
 * 0: no limit), or, out NULL, into dst (at most cap - 1 bytes and a NUL); cut between two pieces,
 * never inside one, and *cut (when given) says whether it was. The bytes written.
 */
size_t prof_check_escape(FILE *out, char *dst, size_t cap, const char *s, prof_check_esc_fn esc, int flag,
                         const char *bad, int *cut);

#endif
