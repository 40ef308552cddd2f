/* check.h: the CI gate's comparison: its rules (built in, from poolprof-check.json, from flags), two sets of reports' figures held against them, and the check document (poolprof.check/1) the renderers read. */
#ifndef POOLPROF_CHECK_H
#define POOLPROF_CHECK_H

/*
 * Pure: no I/O, no clocks. The command (tools/cmds/check.c) measures or reads the reports and
 * the thresholds file; these functions decide; reports/check_*.c render the document. Every
 * random draw (the bootstrap) comes from the seed the caller passes, so a check is reproducible.
 */
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define PROF_CHECK_SCHEMA "poolprof.check/1"
#define PROF_CHECK_CONFIG_SCHEMA "poolprof.check-config/1"
#define PROF_CHECK_CONFIG_FILE "poolprof-check.json"

/* How a rule judges its figure. */
enum prof_check_kind {
    PROF_CHECK_TIMING,  /* a time: U test and bootstrap interval of the ratio of medians, beyond max_increase */
    PROF_CHECK_COUNT,   /* a deterministic figure (bytes, messages, counts): the ratio of medians, beyond max_increase */
    PROF_CHECK_LIMIT,   /* a static bound on the current side: max, min or equals */
    PROF_CHECK_VERDICT, /* the recommendation: its model, and its workers within workers_step */
};

enum prof_check_op { PROF_CHECK_LE, PROF_CHECK_GE, PROF_CHECK_EQ };

/* Where a rule came from, shown with every result it decided. */
enum prof_check_source { PROF_CHECK_DEFAULT, PROF_CHECK_CONFIG, PROF_CHECK_FLAG };

struct prof_check_rule {
    char *stage;          /* a glob (fnmatch) over stage names; "overall" is a stage */
    char *figure;         /* a dotted path into a stage ("lock.wait_fraction"), or "recommendation" */
    enum prof_check_kind kind;
    double threshold;     /* TIMING, COUNT: the allowed relative increase (0.10); LIMIT: the bound */
    enum prof_check_op op; /* LIMIT */
    int equals_bool;      /* LIMIT EQ on a boolean figure: the value wanted */
    int workers_step;     /* VERDICT: how far workers may move */
    int off;              /* the figure is not checked on the stages the rule matches */
    enum prof_check_source source;
};

struct prof_check_rules {
    struct prof_check_rule *r;
    size_t n, cap;
    char **ignore;        /* stage globs left out of the check */
    size_t nignore;
};

/* The built-in rules: wall 10%, CPU 5%, lock wait 10% (timing); IPC bytes and messages and peak
 * RSS 10%, threads and processes 25% (counts); the verdict with a workers step of 1. 0 or PROF_ENOMEM. */
int prof_check_rules_default(struct prof_check_rules *rs);

/*
 * Add the rules and ignore list of a thresholds document (poolprof-check.json, already parsed):
 *   {"schema": "poolprof.check-config/1",            (optional)
 *    "rules": [{"stage": GLOB (default "*"), "figure": PATH,
 *               one of "max_increase": FRACTION | "max": N | "min": N | "equals": BOOL|N
 *                      | "workers_step": N (figure "recommendation") | "off": true}, ...],
 *    "ignore": [GLOB, ...]}
 * 0, or PROF_EINVAL / PROF_EFORMAT with why naming the place ("rules[2].figure: 'wal_seconds' is not a
 * figure poolprof check knows").
 */
int prof_check_rules_add_config(struct prof_check_rules *rs, const json_t *cfg, char *why, size_t cap);

/* A --threshold FIGURE=FRACTION flag: a max_increase rule on every stage, over the file's "*" rules.
 * 0 or PROF_EINVAL with why filled in. */
int prof_check_rules_add_flag(struct prof_check_rules *rs, const char *arg, char *why, size_t cap);

void prof_check_rules_free(struct prof_check_rules *rs);

/* The rule that decides figure on stage: the most specific matching glob (no wildcard beats any
 * wildcard, then more literal characters), later rules winning ties; NULL when none. */
const struct prof_check_rule *prof_check_rule_for(const struct prof_check_rules *rs, const char *stage,
                                                  const char *figure);

/* One side of a comparison: its reports (poolprof.report/1 documents) and how to name it. */
struct prof_check_side {
    json_t *const *reports;
    size_t n;
    const char *label;        /* the command, or the files */
    const char *const *paths; /* the reports' paths, n of them, or NULL */
};

struct prof_check_opts {
    const char *mode;   /* "same-job" or "saved" */
    int rounds;         /* same-job: rounds run; 0 in saved mode */
    int confirm;        /* --confirm K asked */
    int strict;         /* inconclusive exits 4 */
    uint64_t seed;      /* the bootstrap's */
};

/*
 * Hold cur against base under rs: every stage of either side not ignored, every figure a rule
 * gives it, one check each, and the verdict of the whole (result, exit_status). *doc is the check
 * document (schema PROF_CHECK_SCHEMA, check.schema.json). 0, PROF_EINVAL (a side without
 * reports), PROF_ENOMEM.
 */
int prof_check_compare(const struct prof_check_rules *rs, const struct prof_check_side *base,
                       const struct prof_check_side *cur, const struct prof_check_opts *o, json_t **doc);

/* How many checks of doc regressed: whether --confirm has anything to measure again. */
size_t prof_check_regressed(const json_t *doc);

/*
 * Confirmation k of doc (1-based): again is the check of fresh rounds. A check regressed in doc
 * that did not regress again is taken as noise: passed, with a note. Counts, result and
 * exit_status are made again; doc's confirm.rounds_added grows by rounds. 0 or PROF_ENOMEM.
 */
int prof_check_confirm(json_t *doc, const json_t *again, int k, int rounds);

#endif
