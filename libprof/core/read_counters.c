/* read_counters.c: reads counters.rec, the perf event counts poolprof took per task (format/ctrrec.h), into records. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read.h"
#include "core/run.h"
#include "format/ctrrec.h"
#include "format/monrec.h"
#include "format/recline.h"
#include "prof.h"

/* Copy an escaped field's value, unescaped and cut to cap. */
static void field_str(struct prof_fields *f, const char *key, char *dst, size_t cap)
{
    char *v = prof_field(f, key);
    dst[0] = '\0';
    if (!v)
        return;
    size_t n = prof_rec_unescape(v);
    n = strnlen(v, n);
    if (n > cap - 1)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int event_line(struct prof_rec_counters *C, struct prof_fields *f)
{
    uint64_t i = 0, x = 0;
    if (prof_field_u64(f, "i", &i) != 0 || i != C->nev || i >= PROF_CTRREC_MAX)
        return 1;
    struct prof_rec_ctr_event *e = &C->ev[C->nev++];
    memset(e, 0, sizeof *e);
    field_str(f, "name", e->name, sizeof e->name);
    field_str(f, "fstr", e->fstr, sizeof e->fstr);
    field_str(f, "role", e->role, sizeof e->role);
    field_str(f, "source", e->source, sizeof e->source);
    field_str(f, "reason", e->reason, sizeof e->reason);
    if (prof_field_u64(f, "type", &x) == 0)
        e->type = (uint32_t)x;
    e->config = prof_field_u64_or0(f, "config");
    e->user_only = prof_field_u64_or0(f, "user_only") == 1;
    e->hardware = prof_field_u64_or0(f, "hw") == 1;
    e->is_default = prof_field_u64_or0(f, "default") == 1;
    return 0;
}

/* The latest task with this tid (a tid reused after an X line is a new task). */
static struct prof_rec_ctr_task *task_of(struct prof_rec_counters *C, int tid)
{
    for (size_t i = C->ntasks; i-- > 0;)
        if (C->tasks[i].tid == tid)
            return &C->tasks[i];
    return NULL;
}

/* "V/E/R,V/E/R,-,..." into the task's values; 1 when malformed. */
static int values(struct prof_rec_ctr_task *k, size_t nev, char *s)
{
    for (size_t i = 0; i < nev; i++) {
        if (!s || !*s)
            return 1;
        char *end = strchr(s, ',');
        if (end)
            *end = '\0';
        if (strcmp(s, "-") != 0) {
            unsigned long long v, e, r;
            if (sscanf(s, "%llu/%llu/%llu", &v, &e, &r) != 3)
                return 1;
            k->v[i][0] = v, k->v[i][1] = e, k->v[i][2] = r;
        }
        s = end ? end + 1 : NULL;
    }
    k->have = 1;
    return 0;
}

/* One tokenised line: 0, 1 when malformed, or PROF_ENOMEM. */
static int line(void *ctx, char type, struct prof_fields *f)
{
    struct prof_rec_counters *C = ctx;
    uint64_t t = 0, x = 0;
    long long pid = 0, tid = 0;

    switch (type) {
    case 'E':
        return event_line(C, f);
    case 'L': {
        const char *what = prof_field(f, "what");
        uint64_t *n = what && strcmp(what, "ended") == 0 ? &C->ended : &C->refused;
        if (prof_field_u64(f, "tasks", &x) == 0 && x > *n)
            *n = x;
        return 0;
    }
    case 'O': {
        if (prof_field_u64(f, "t", &t) != 0 || prof_field_int(f, "pid", &pid) != 0 ||
            prof_field_int(f, "tid", &tid) != 0 || pid <= 0 || pid > INT_MAX || tid <= 0 || tid > INT_MAX)
            return 1;
        struct prof_rec_ctr_task *k = C->tasks;
        if (C->ntasks >= 64 && !(C->ntasks & (C->ntasks - 1)))
            k = realloc(C->tasks, C->ntasks * 2 * sizeof *k);
        else if (!C->tasks)
            k = malloc(64 * sizeof *k);
        if (!k)
            return PROF_ENOMEM;
        C->tasks = k;
        k = &C->tasks[C->ntasks++];
        memset(k, 0, sizeof *k);
        k->pid = (int)pid;
        k->tid = (int)tid;
        k->open_ns = t;
        k->born = prof_field_u64_or0(f, "born") == 1;
        k->open_mask = prof_field_u64_or0(f, "open");
        return 0;
    }
    case 'F':
        if (prof_field_u64(f, "i", &x) != 0 || x >= C->nev)
            return 1;
        C->failed[x]++;
        C->fail_errno[x] = (int)prof_field_u64_or0(f, "err");
        return 0;
    case 'R':
    case 'X': {
        if (prof_field_u64(f, "t", &t) != 0 || prof_field_int(f, "tid", &tid) != 0)
            return 1;
        struct prof_rec_ctr_task *k = task_of(C, (int)tid);
        if (!k || k->gone_ns)
            return 1;
        if (type == 'X') {
            k->gone_ns = t;
            return 0;
        }
        return values(k, C->nev, prof_field(f, "v"));
    }
    }
    return 0; /* unknown types are skipped by design */
}

int prof_read_counters(struct prof_records *rec)
{
    struct prof_rec_counters *C = &rec->counters;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", rec->rundir, PROF_CTRREC_FILE);
    FILE *fp = fopen(path, "re");
    if (!fp) {
        /* Older runs and --no-counters have none: the report says no counters were recorded. */
        if (errno != ENOENT)
            prof_note(rec->counters_errors, "%s: %s: no counters", PROF_CTRREC_FILE, strerror(errno));
        return 0;
    }
    struct prof_rec_read st;
    int rc = prof_rec_read_lines(fp, PROF_CTRREC_VERSION, line, C, &st);
    fclose(fp);
    C->present = st.version_ok;
    if (st.lines && !st.version_ok)
        prof_note(rec->counters_errors, "%s: skipped: not counters format version %d", PROF_CTRREC_FILE,
                  PROF_CTRREC_VERSION);
    if (st.bad)
        prof_note(rec->counters_errors, "%s: %ld malformed lines skipped", PROF_CTRREC_FILE, st.bad);
    return rc;
}
