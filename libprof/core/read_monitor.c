/* read_monitor.c: reads monitor.rec, the monitor's outside view of the tree (format/monrec.h), line by line into records. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read.h"
#include "core/run.h"
#include "format/monrec.h"
#include "format/recline.h"
#include "prof.h"


static int image_line(struct prof_rec_mon *l, struct prof_fields *f)
{
    uint64_t x = 0;
    long long ppid = -1;

    l->u.image.have_ppid = prof_field_int(f, "ppid", &ppid) == 0;
    l->u.image.ppid = (int)ppid;
    if (prof_field_u64(f, "start_ticks", &x) == 0)
        l->u.image.start_ticks = x;
    l->u.image.is_static = prof_field_u64(f, "static", &x) == 0 && x == 1;
    char *exe = prof_field(f, "exe");
    size_t n = exe ? prof_rec_unescape(exe) : 0;
    if (!(l->u.image.exe = exe ? strndup(exe, n) : strdup("")))
        return PROF_ENOMEM;
    return prof_rec_parse_list(&l->u.image.argv, &l->u.image.argc, prof_field(f, "argv")) < 0 ? PROF_ENOMEM : 0;
}

/* The figures of one per-process line; 1 when the rest of the line is malformed. */
static int process_line(struct prof_rec_mon *l, struct prof_fields *f)
{
    uint64_t x = 0;
    long long v = 0;

    switch (l->type) {
    case 'N':
    case 'E':
        return image_line(l, f);
    case 'R':
        if (prof_field_u64(f, "rss", &x) != 0)
            return 1;
        l->u.rss = x;
        return 0;
    case 'M':
        l->u.mem.pss = prof_field_u64_or0(f, "pss");
        l->u.mem.uss = prof_field_u64_or0(f, "uss");
        l->u.mem.swap = prof_field_u64_or0(f, "swap");
        return 0;
    case 'T': {
        if (prof_field_int(f, "tid", &v) != 0 || v <= 0 || v > INT_MAX)
            return 1;
        l->u.thread.tid = (int)v;
        char *name = prof_field(f, "name");
        if (name) {
            size_t n = prof_rec_unescape(name);
            n = strnlen(name, n);
            if (n > sizeof l->u.thread.name - 1)
                n = sizeof l->u.thread.name - 1;
            memcpy(l->u.thread.name, name, n);
            l->u.thread.name[n] = '\0';
            l->u.thread.have_name = 1;
        }
        l->u.thread.cpu = prof_field_u64_or0(f, "cpu");
        l->u.thread.runq = prof_field_u64_or0(f, "runq");
        l->u.thread.utime = prof_field_u64_or0(f, "utime");
        l->u.thread.stime = prof_field_u64_or0(f, "stime");
        l->u.thread.vcsw = prof_field_u64_or0(f, "vcsw");
        l->u.thread.ivcsw = prof_field_u64_or0(f, "ivcsw");
        l->u.thread.minflt = prof_field_u64_or0(f, "minflt");
        l->u.thread.majflt = prof_field_u64_or0(f, "majflt");
        if (prof_field_u64(f, "start_ticks", &x) == 0)
            l->u.thread.start_ticks = x;
        return 0;
    }
    case 'Z':
        if (prof_field_int(f, "status", &v) != 0)
            return 1;
        l->u.status = (int)v;
        return 0;
    }
    return 0; /* G: the time says it all */
}

/* One tokenised line; returns 0, 1 for a line that is malformed (counted), or PROF_ENOMEM. */
static int line(void *ctx, char type, struct prof_fields *f)
{
    struct prof_rec_monitor *mon = ctx;
    uint64_t t = 0, x = 0;
    long long pid = 0;

    if (type == 'S') {
        if (prof_field_u64(f, "interval_ms", &x) == 0 && x > 0)
            mon->interval_ms = (int)x;
        if (prof_field_u64(f, "ticks_per_sec", &x) == 0 && x > 0)
            mon->ticks_per_sec = (long)x;
        return 0;
    }
    if (type == 'C') {
        if (prof_field_u64(f, "self_cpu_ns", &x) == 0 && x > mon->self_cpu_ns)
            mon->self_cpu_ns = x;
        return 0;
    }
    if (type == 'K') {
        uint64_t busy, steal;
        if (prof_field_u64(f, "busy", &busy) != 0 || prof_field_u64(f, "steal", &steal) != 0)
            return 1;
        if (mon->nk++ == 0) {
            mon->k_busy0 = busy;
            mon->k_steal0 = steal;
        }
        mon->k_busy1 = busy;
        mon->k_steal1 = steal;
        return 0;
    }
    if (!strchr("NERMTGZ", type))
        return 0; /* unknown types are skipped by design */
    if (prof_field_u64(f, "t", &t) != 0 || prof_field_int(f, "pid", &pid) != 0 || pid <= 0 || pid > INT_MAX)
        return 1;
    struct prof_rec_mon *v = mon->lines;
    /* Doubling from 64: the count says when to grow. */
    if (mon->nlines >= 64 && !(mon->nlines & (mon->nlines - 1)))
        v = realloc(mon->lines, mon->nlines * 2 * sizeof *v);
    else if (!mon->lines)
        v = malloc(64 * sizeof *v);
    if (!v)
        return PROF_ENOMEM;
    mon->lines = v;
    struct prof_rec_mon *l = &mon->lines[mon->nlines++];
    memset(l, 0, sizeof *l);
    l->type = type;
    l->t_ns = t;
    l->pid = (int)pid;
    int r = process_line(l, f);
    if (r == 1) {
        /* The process was still seen at t, whatever the rest of the line says. */
        memset(&l->u, 0, sizeof l->u);
        l->type = '.';
    }
    return r;
}

int prof_read_monitor(struct prof_records *rec)
{
    struct prof_rec_monitor *mon = &rec->monitor;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/monitor.rec", rec->rundir);
    FILE *fp = fopen(path, "re");
    if (!fp) {
        prof_note(rec->monitor_errors, "monitor.rec: %s: figures come from the shim's records only", strerror(errno));
        return 0;
    }
    struct prof_rec_read st;
    mon->present = 1;
    int rc = prof_rec_read_lines(fp, PROF_MONREC_VERSION, line, mon, &st);
    fclose(fp);
    if (st.torn)
        prof_note(rec->monitor_notes, "monitor.rec: torn last line %ld ignored", st.torn);
    if (st.lines && !st.version_ok)
        prof_note(rec->monitor_errors, "monitor.rec: skipped: not monitor format version %d", PROF_MONREC_VERSION);
    if (st.bad)
        prof_note(rec->monitor_errors, "monitor.rec: %ld malformed lines skipped", st.bad);
    if (st.lines == 0)
        prof_note(rec->monitor_errors, "monitor.rec: empty");
    return rc;
}
