/* check_rules.c: the rules of the CI gate: the figures a rule may name, the built-in rules, the thresholds file's and the flags', and which rule decides a figure of a stage. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/check_int.h"
#include "prof.h"

/* ---- the figures a rule may name ------------------------------------------------------------------- */

/* Every figure of a report stage a rule may name (struct check_figure says what floor and measured are). */
static const struct check_figure figures[] = {
    {"wall_seconds", F_SECONDS, 1e-3, NULL},
    {"thread_seconds", F_SECONDS, 1e-3, NULL},
    {"cpu_seconds", F_SECONDS, 1e-3, NULL},
    {"user_seconds", F_SECONDS, 1e-3, NULL},
    {"system_seconds", F_SECONDS, 1e-3, NULL},
    {"runq_seconds", F_SECONDS, 1e-3, NULL},
    {"steal_seconds", F_SECONDS, 1e-3, NULL},
    {"startup_cpu_seconds", F_SECONDS, 1e-3, NULL},
    {"sleep_seconds", F_SECONDS, 1e-3, NULL},
    {"evloop_wait_seconds", F_SECONDS, 1e-3, NULL},
    {"join_wait_seconds", F_SECONDS, 1e-3, NULL},
    {"handoff_wait_seconds", F_SECONDS, 1e-3, NULL},
    {"lock.wait_seconds", F_SECONDS, 1e-3, "lock.measured"},
    {"lock.gil_wait_seconds", F_SECONDS, 1e-3, "lock.measured"},
    {"lock.wait_fraction", F_SHARE, 0, "lock.measured"},
    {"ipc.bytes", F_BYTES, 65536, "ipc.measured"},
    {"ipc.bytes_sent", F_BYTES, 65536, "ipc.measured"},
    {"ipc.bytes_received", F_BYTES, 65536, "ipc.measured"},
    {"ipc.messages", F_COUNT, 16, "ipc.measured"},
    {"ipc.seconds", F_SECONDS, 1e-3, "ipc.measured"},
    {"ipc.send_wait_seconds", F_SECONDS, 1e-3, "ipc.measured"},
    {"ipc.busy_seconds", F_SECONDS, 1e-3, "ipc.measured"},
    {"ipc.serialize_seconds", F_SECONDS, 1e-3, "ipc.measured"},
    {"ipc.fraction", F_SHARE, 0, "ipc.measured"},
    {"io.wait_seconds", F_SECONDS, 1e-3, "io.measured"},
    {"io.bytes", F_BYTES, 65536, "io.measured"},
    {"io.network_wait_seconds", F_SECONDS, 1e-3, "io.measured"},
    {"io.network_round_trips", F_COUNT, 16, "io.measured"},
    {"io.network_request_seconds", F_SECONDS, 1e-3, "io.measured"},
    {"io.disk_reads", F_COUNT, 16, "io.measured"},
    {"io.send_wait_seconds", F_SECONDS, 1e-3, "io.measured"},
    {"ctx_switches.voluntary", F_COUNT, 16, NULL},
    {"ctx_switches.involuntary", F_COUNT, 16, NULL},
    {"sleeps", F_COUNT, 16, NULL},
    {"threads", F_COUNT, 1, NULL},
    {"processes", F_COUNT, 1, NULL},
    {"rss.start_bytes", F_BYTES, 1 << 20, NULL},
    {"rss.peak_bytes", F_BYTES, 1 << 20, NULL},
    {"rss.growth_bytes", F_BYTES, 1 << 20, NULL},
    {"rss.per_worker_bytes", F_BYTES, 1 << 20, NULL},
    {"rss.leak_suspected", F_BOOL, 0, NULL},
    {"cpu_wall_ratio", F_SHARE, 0, NULL},
    {"demand_ratio", F_SHARE, 0, NULL},
    {"gil_held_share", F_SHARE, 0, NULL},
    {"recommendation", F_VERDICT, 0, NULL},
};
#define NFIGURES (sizeof figures / sizeof *figures)

const struct check_figure *check_figure_find(const char *path)
{
    for (size_t i = 0; path && i < NFIGURES; i++)
        if (strcmp(figures[i].path, path) == 0)
            return &figures[i];
    return NULL;
}

/* ---- rules ---------------------------------------------------------------------------------------- */

static int rule_add(struct prof_check_rules *rs, const struct prof_check_rule *r)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 16;
        struct prof_check_rule *nr = realloc(rs->r, cap * sizeof *nr);
        if (!nr)
            return PROF_ENOMEM;
        rs->r = nr;
        rs->cap = cap;
    }
    struct prof_check_rule *d = &rs->r[rs->n];
    *d = *r;
    d->stage = strdup(r->stage ? r->stage : "*");
    d->figure = strdup(r->figure);
    if (!d->stage || !d->figure) {
        free(d->stage);
        free(d->figure);
        return PROF_ENOMEM;
    }
    rs->n++;
    return 0;
}

static int relative_rule(struct prof_check_rules *rs, const char *stage, const char *figure, double thr,
                         enum prof_check_source src)
{
    const struct check_figure *f = check_figure_find(figure);
    struct prof_check_rule r = {
        .stage = (char *)stage,
        .figure = (char *)figure,
        .kind = f && f->type == F_SECONDS ? PROF_CHECK_TIMING : PROF_CHECK_COUNT,
        .threshold = thr,
        .source = src,
    };
    return rule_add(rs, &r);
}

int prof_check_rules_default(struct prof_check_rules *rs)
{
    static const struct {
        const char *figure;
        double thr;
    } defaults[] = {
        {"wall_seconds", 0.10}, {"cpu_seconds", 0.05},     {"lock.wait_seconds", 0.10}, {"ipc.bytes", 0.10},
        {"ipc.messages", 0.10}, {"rss.peak_bytes", 0.10}, {"threads", 0.25},           {"processes", 0.25},
    };
    int err;

    memset(rs, 0, sizeof *rs);
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
        if ((err = relative_rule(rs, "*", defaults[i].figure, defaults[i].thr, PROF_CHECK_DEFAULT)) < 0)
            return err;
    struct prof_check_rule v = {
        .stage = "*", .figure = "recommendation", .kind = PROF_CHECK_VERDICT, .workers_step = 1,
        .source = PROF_CHECK_DEFAULT};
    return rule_add(rs, &v);
}

void prof_check_rules_free(struct prof_check_rules *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->r[i].stage);
        free(rs->r[i].figure);
    }
    for (size_t i = 0; i < rs->nignore; i++)
        free(rs->ignore[i]);
    free(rs->r);
    free(rs->ignore);
    memset(rs, 0, sizeof *rs);
}

/* "wall_seconds, cpu_seconds, ...": the figures a rule may name, for the message about one it may not. */
static void figure_names(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NFIGURES && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", figures[i].path);
}

#define FAIL(code, ...)                                                                                           \
    do {                                                                                                          \
        snprintf(why, cap, __VA_ARGS__);                                                                          \
        return (code);                                                                                            \
    } while (0)

/* One element of "rules": 0 or PROF_E* with why naming it. */
static int config_rule(struct prof_check_rules *rs, const json_t *j, size_t i, char *why, size_t cap)
{
    static const char *const keys[] = {"stage", "figure", "max_increase", "max", "min", "equals", "workers_step", "off"};
    struct prof_check_rule r = {.stage = "*", .source = PROF_CHECK_CONFIG};
    const char *key;
    json_t *v;
    int judged = 0;

    if (!json_is_object(j))
        FAIL(PROF_EFORMAT, "rules[%zu]: not an object", i);
    json_object_foreach((json_t *)j, key, v) {
        size_t k = 0;
        while (k < sizeof keys / sizeof *keys && strcmp(keys[k], key) != 0)
            k++;
        if (k == sizeof keys / sizeof *keys)
            FAIL(PROF_EFORMAT, "rules[%zu]: unknown key '%.40s' (stage, figure, max_increase, max, min, equals, "
                               "workers_step, off)", i, key);
        judged += k >= 2;
    }
    v = json_object_get(j, "stage");
    if (v && (!json_is_string(v) || !*json_string_value(v)))
        FAIL(PROF_EFORMAT, "rules[%zu].stage: wants a stage name or glob", i);
    if (v)
        r.stage = (char *)json_string_value(v);
    v = json_object_get(j, "figure");
    if (!json_is_string(v))
        FAIL(PROF_EFORMAT, "rules[%zu].figure: missing (a figure such as \"wall_seconds\")", i);
    r.figure = (char *)json_string_value(v);
    const struct check_figure *f = check_figure_find(r.figure);
    if (!f) {
        char names[1024];
        figure_names(names, sizeof names);
        FAIL(PROF_EFORMAT, "rules[%zu].figure: '%.60s' is not a figure poolprof check knows (%s)", i, r.figure, names);
    }
    if (judged != 1)
        FAIL(PROF_EFORMAT, "rules[%zu]: wants exactly one of max_increase, max, min, equals, workers_step, off", i);

    if ((v = json_object_get(j, "off"))) {
        if (!json_is_true(v))
            FAIL(PROF_EFORMAT, "rules[%zu].off: wants true", i);
        r.off = 1;
        r.kind = f->type == F_VERDICT ? PROF_CHECK_VERDICT : PROF_CHECK_LIMIT;
    } else if ((v = json_object_get(j, "workers_step"))) {
        if (f->type != F_VERDICT)
            FAIL(PROF_EFORMAT, "rules[%zu].workers_step: only for the figure \"recommendation\"", i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
            FAIL(PROF_EFORMAT, "rules[%zu].workers_step: wants a non-negative integer", i);
        r.kind = PROF_CHECK_VERDICT;
        r.workers_step = (int)json_integer_value(v);
    } else if (f->type == F_VERDICT) {
        FAIL(PROF_EFORMAT, "rules[%zu]: the figure \"recommendation\" takes workers_step or off", i);
    } else if ((v = json_object_get(j, "max_increase"))) {
        if (f->type == F_BOOL)
            FAIL(PROF_EFORMAT, "rules[%zu].max_increase: %s is true or false; use equals", i, r.figure);
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100)
            FAIL(PROF_EFORMAT, "rules[%zu].max_increase: wants a fraction from 0 to 100 (0.1 allows +10%%)", i);
        r.kind = f->type == F_SECONDS ? PROF_CHECK_TIMING : PROF_CHECK_COUNT;
        r.threshold = json_number_value(v);
    } else if ((v = json_object_get(j, "equals"))) {
        r.kind = PROF_CHECK_LIMIT;
        r.op = PROF_CHECK_EQ;
        if (f->type == F_BOOL) {
            if (!json_is_boolean(v))
                FAIL(PROF_EFORMAT, "rules[%zu].equals: %s wants true or false", i, r.figure);
            r.equals_bool = json_is_true(v);
        } else {
            if (!json_is_number(v))
                FAIL(PROF_EFORMAT, "rules[%zu].equals: wants a number", i);
            r.threshold = json_number_value(v);
        }
    } else {
        int is_max = (v = json_object_get(j, "max")) != NULL;
        if (!is_max)
            v = json_object_get(j, "min");
        if (f->type == F_BOOL)
            FAIL(PROF_EFORMAT, "rules[%zu].%s: %s is true or false; use equals", i, is_max ? "max" : "min", r.figure);
        if (!json_is_number(v))
            FAIL(PROF_EFORMAT, "rules[%zu].%s: wants a number", i, is_max ? "max" : "min");
        r.kind = PROF_CHECK_LIMIT;
        r.op = is_max ? PROF_CHECK_LE : PROF_CHECK_GE;
        r.threshold = json_number_value(v);
    }
    return rule_add(rs, &r);
}

int prof_check_rules_add_config(struct prof_check_rules *rs, const json_t *cfg, char *why, size_t cap)
{
    const char *key;
    json_t *v;
    int err;

    if (!json_is_object(cfg))
        FAIL(PROF_EFORMAT, "not a JSON object");
    json_object_foreach((json_t *)cfg, key, v) {
        if (strcmp(key, "schema") && strcmp(key, "rules") && strcmp(key, "ignore"))
            FAIL(PROF_EFORMAT, "unknown key '%.40s' (schema, rules, ignore)", key);
    }
    v = json_object_get(cfg, "schema");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), PROF_CHECK_CONFIG_SCHEMA) != 0))
        FAIL(PROF_EFORMAT, "schema: wants \"%s\"", PROF_CHECK_CONFIG_SCHEMA);
    v = json_object_get(cfg, "rules");
    if (v && !json_is_array(v))
        FAIL(PROF_EFORMAT, "rules: wants an array of rules");
    for (size_t i = 0; v && i < json_array_size(v); i++)
        if ((err = config_rule(rs, json_array_get(v, i), i, why, cap)) < 0)
            return err;
    v = json_object_get(cfg, "ignore");
    if (v && !json_is_array(v))
        FAIL(PROF_EFORMAT, "ignore: wants an array of stage names or globs");
    for (size_t i = 0; v && i < json_array_size(v); i++) {
        const char *g = json_string_value(json_array_get(v, i));
        if (!g || !*g)
            FAIL(PROF_EFORMAT, "ignore[%zu]: wants a stage name or glob", i);
        char **ni = realloc(rs->ignore, (rs->nignore + 1) * sizeof *ni);
        if (!ni)
            return PROF_ENOMEM;
        rs->ignore = ni;
        if (!(rs->ignore[rs->nignore] = strdup(g)))
            return PROF_ENOMEM;
        rs->nignore++;
    }
    return 0;
}

int prof_check_rules_add_flag(struct prof_check_rules *rs, const char *arg, char *why, size_t cap)
{
    char name[128], *end;
    const char *eq = strchr(arg, '=');

    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof name)
        FAIL(PROF_EINVAL, "wants FIGURE=FRACTION (wall_seconds=0.2 allows +20%%)");
    snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    const struct check_figure *f = check_figure_find(name);
    if (!f || f->type == F_BOOL || f->type == F_VERDICT)
        FAIL(PROF_EINVAL, "'%s' is not a figure with a relative threshold (wall_seconds, cpu_seconds, ipc.bytes, ...)",
             name);
    double v = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !(v >= 0 && v <= 100))
        FAIL(PROF_EINVAL, "'%s' is not a fraction from 0 to 100 (0.2 allows +20%%)", eq + 1);
    return relative_rule(rs, "*", name, v, PROF_CHECK_FLAG);
}

/* How specific a glob is: a plain name beats every pattern, then more literal characters. */
static long specificity(const char *glob)
{
    long lit = 0;
    int wild = 0;
    for (const char *p = glob; *p; p++) {
        if (*p == '*' || *p == '?' || *p == '[')
            wild = 1;
        else
            lit++;
    }
    return wild ? lit : 1000000 + lit;
}

const struct prof_check_rule *prof_check_rule_for(const struct prof_check_rules *rs, const char *stage,
                                                  const char *figure)
{
    const struct prof_check_rule *best = NULL;
    long best_spec = -1;
    int best_src = -1;

    for (size_t i = 0; i < rs->n; i++) {
        const struct prof_check_rule *r = &rs->r[i];
        if (strcmp(r->figure, figure) != 0 || fnmatch(r->stage, stage, 0) != 0)
            continue;
        /* Built-in rules give way to any rule of the user's; then specificity; then the later. */
        long spec = specificity(r->stage);
        int src = r->source != PROF_CHECK_DEFAULT;
        if (src > best_src || (src == best_src && spec >= best_spec)) {
            best = r;
            best_spec = spec;
            best_src = src;
        }
    }
    return best;
}

#undef FAIL

