/* render.c: the table of renderers, and rendering into files that readers never see half-written. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prof.h"
#include "reports/render.h"

/* Every output format, in the order `poolprof help` lists them. */
static const struct prof_renderer *const renderers[] = {
    &prof_render_terminal, &prof_render_json, &prof_render_folded, &prof_render_folded_offcpu, &prof_render_rss_csv,
    &prof_render_markdown, &prof_render_html, &prof_render_speedscope, &prof_render_trace,
};
#define NRENDERERS (sizeof renderers / sizeof *renderers)

const struct prof_renderer *prof_renderer_find(const char *name)
{
    for (size_t i = 0; name && i < NRENDERERS; i++)
        if (strcmp(renderers[i]->name, name) == 0)
            return renderers[i];
    return NULL;
}

const struct prof_renderer *prof_renderer_at(size_t i)
{
    return i < NRENDERERS ? renderers[i] : NULL;
}

int prof_render(const struct prof_renderer *rd, const struct prof_report *r, FILE *out)
{
    if (!rd || !r || !out)
        return PROF_EINVAL;
    if (rd->needs_run && !r->run)
        return PROF_ENOTSUP;
    return rd->render(r, out);
}

int prof_render_file(const struct prof_renderer *rd, const struct prof_report *r, const char *path)
{
    char tmp[PATH_MAX];
    struct stat st;

    /* A terminal, a pipe or /dev/stdout is written in place: there is nothing to rename over. */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "we");
        if (!f)
            return prof_err_from_errno(errno);
        int rc = prof_render(rd, r, f);
        if (fclose(f) != 0 && !rc)
            rc = prof_err_from_errno(errno);
        return rc;
    }
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s.%s.tmp", dl, path, slash ? slash + 1 : path) >= (int)sizeof tmp)
        return PROF_ERANGE;
    FILE *f = fopen(tmp, "we");
    if (!f)
        return prof_err_from_errno(errno);
    int rc = prof_render(rd, r, f);
    if (!rc && (fflush(f) != 0 || ferror(f)))
        rc = prof_err_from_errno(errno ? errno : EIO);
    if (fclose(f) != 0 && !rc)
        rc = prof_err_from_errno(errno ? errno : EIO);
    if (!rc && rename(tmp, path) != 0)
        rc = prof_err_from_errno(errno);
    if (rc)
        unlink(tmp);
    return rc;
}

int prof_render_rundir(struct prof_report *r, const char *rundir)
{
    char path[PATH_MAX], msg[PATH_MAX + 64];
    const struct prof_renderer *doc = NULL;

    for (size_t i = 0; i < NRENDERERS; i++) {
        const struct prof_renderer *rd = renderers[i];
        if (!rd->rundir_file)
            continue;
        if (rd == &prof_render_json) {
            doc = rd; /* last: it names what the others could not write */
            continue;
        }
        if (rd->available && !rd->available(r))
            continue;
        snprintf(path, sizeof path, "%s/%s", rundir, rd->rundir_file);
        int rc = prof_render_file(rd, r, path);
        if (rc) {
            /* The report stands without it; say so rather than lose the run. */
            snprintf(msg, sizeof msg, "%s not written: %s", rd->rundir_file, prof_strerror(rc));
            prof_report_add_error(r, msg);
        }
    }
    snprintf(path, sizeof path, "%s/%s", rundir, doc->rundir_file);
    return prof_render_file(doc, r, path);
}

const char *prof_report_exit_text(const json_t *doc, char *buf, size_t cap)
{
    const json_t *ex = json_object_get(doc, "exit");
    const json_t *sig = json_object_get(ex, "signal"), *code = json_object_get(ex, "code");
    if (json_is_integer(sig))
        snprintf(buf, cap, "killed by signal %d", (int)json_integer_value(sig));
    else if (json_is_integer(code))
        snprintf(buf, cap, "exit %d", (int)json_integer_value(code));
    else
        snprintf(buf, cap, "exit unknown");
    return buf;
}

