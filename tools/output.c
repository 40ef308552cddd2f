/* output.c: --format FORMAT[=PATH] and --json PATH for run, attach and report: the renderer table's formats, each path checked before the target starts. */
#include <stdio.h>
#include <string.h>

#include "output.h"
#include "prof.h"
#include "reports/render.h"

static const struct prof_renderer *(*table_of(const struct outputs *out))(size_t)
{
    return out->table ? out->table : prof_renderer_at;
}

/* "terminal, json, folded, ...": the renderer table's names. */
static void format_names(const struct outputs *out, char *buf, size_t cap)
{
    const struct prof_renderer *(*at)(size_t) = table_of(out);
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; at(i) && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", at(i)->name);
}

static const struct prof_renderer *format_find(const struct outputs *out, const char *name)
{
    const struct prof_renderer *(*at)(size_t) = table_of(out);
    for (size_t i = 0; at(i); i++)
        if (strcmp(at(i)->name, name) == 0)
            return at(i);
    return NULL;
}

static int add(struct outputs *out, const struct prof_renderer *rd, const char *path, char *why, size_t cap)
{
    if (out->n == OUTPUTS_MAX) {
        snprintf(why, cap, "at most %d outputs", OUTPUTS_MAX);
        return PROF_ERANGE;
    }
    if (path && strcmp(path, "-") != 0) {
        for (size_t i = 0; i < out->n; i++) {
            if (out->o[i].path && strcmp(out->o[i].path, path) == 0) {
                snprintf(why, cap, "%s is already the output of format %s", path, out->o[i].rd->name);
                return PROF_EEXIST;
            }
        }
        int err = cli_check_writable(path, why, cap);
        if (err < 0)
            return err;
    }
    out->o[out->n].rd = rd;
    out->o[out->n].path = path;
    out->n++;
    return 0;
}

int output_parse_format(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o;
    char name[64], names[256];
    const char *eq = strchr(value, '=');
    size_t len = eq ? (size_t)(eq - value) : strlen(value);

    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), value);
    const struct prof_renderer *rd = len < sizeof name ? format_find(dst, name) : NULL;
    if (!rd) {
        format_names(dst, names, sizeof names);
        snprintf(why, cap, "unknown format '%s' (formats: %s)", name, names);
        return PROF_EINVAL;
    }
    if (eq && !eq[1]) {
        snprintf(why, cap, "no PATH after '=' (FORMAT=PATH, '-' for standard output)");
        return PROF_EINVAL;
    }
    return add(dst, rd, eq ? eq + 1 : NULL, why, cap);
}

int output_parse_json(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o;
    if (!*value) {
        snprintf(why, cap, "wants a file ('-' for standard output)");
        return PROF_EINVAL;
    }
    return add(dst, &prof_render_json, value, why, cap);
}

/* Render to a stream. Standard error that cannot be written (closed, a pipe whose reader left)
 * is no failure of the command: it is where the message saying so would go. */
static int render_stream(const struct prof_renderer *rd, const struct prof_report *r, FILE *f)
{
    int err = prof_render(rd, r, f);
    if (fflush(f) != 0 && !err)
        err = PROF_EIO;
    return f == stderr ? 0 : err;
}

int outputs_render(const struct outputs *out, const struct prof_report *r, FILE *stream)
{
    int first = 0, replaced = 0;

    for (size_t i = 0; i < out->n; i++) {
        const struct output *o = &out->o[i];
        const char *where = !o->path ? (stream == stdout ? "standard output" : "standard error")
                            : strcmp(o->path, "-") == 0 ? "standard output" : o->path;
        int err;
        if (o->rd->available && !o->rd->available(r))
            cli_msg("--format %s: nothing was recorded for it (the sampler did not run): %s is empty", o->rd->name,
                    where);
        if (!o->path || (strcmp(o->path, "-") == 0 && stream == stdout)) {
            replaced = 1; /* the command's own stream: in place of the summary */
            err = render_stream(o->rd, r, stream);
        } else if (strcmp(o->path, "-") == 0) {
            err = render_stream(o->rd, r, stdout);
        } else {
            err = prof_render_file(o->rd, r, o->path);
        }
        if (err < 0) {
            cli_msg("--format %s: cannot write %s: %s", o->rd->name, where, prof_strerror(err));
            if (!first)
                first = err;
        }
    }
    if (!replaced) {
        int err = render_stream(table_of(out)(0), r, stream);
        if (err < 0) {
            cli_msg("cannot write the summary: %s", prof_strerror(err));
            if (!first)
                first = err;
        }
    }
    return first;
}

void outputs_help(FILE *out)
{
    outputs_help_table(out, prof_renderer_at);
}

void outputs_help_table(FILE *out, const struct prof_renderer *(*table)(size_t i))
{
    fprintf(out, "formats (--format FORMAT[=PATH]; PATH '-' is standard output):\n");
    for (size_t i = 0; table(i); i++) {
        const struct prof_renderer *rd = table(i);

        cli_wrap(out, rd->summary, 18, fprintf(out, "  %-15s ", rd->name));
    }
}
