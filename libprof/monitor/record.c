/* record.c: writing RUNDIR/monitor.rec: its lines, the busiest formatted by hand, and a full disk that stops the recording, never the monitor. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/monitor_int.h"
#include "format/monrec.h"
#include "prof.h"

static FILE *rec;
int mon_rec_err;
long mon_ticks_per_sec, mon_page_size;

static char *esc;             /* escape buffer, grown on demand */
static size_t esc_cap;

/* ---- output ---------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) void mon_out(const char *fmt, ...)
{
    va_list ap;

    if (!rec || mon_rec_err)
        return;
    va_start(ap, fmt);
    vfprintf(rec, fmt, ap);
    va_end(ap);
}

/*
 * The R line, written at every interval for every process (50 a second each by default):
 * formatted by hand: vfprintf took 0.55 ms of the monitor's CPU in a 0.7 s run of
 * c_parallel_cpu, against 0.9 ms for the statm reads themselves (perf, 4 runs).
 */
static char *put_u64(char *p, unsigned long long v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        *p++ = tmp[--n];
    return p;
}

void mon_out_rss(uint64_t t, pid_t pid, unsigned long long bytes)
{
    char line[80], *p = line;
    if (!rec || mon_rec_err)
        return;
    memcpy(p, "R t=", 4);
    p = put_u64(p + 4, t);
    memcpy(p, " pid=", 5);
    p = put_u64(p + 5, (unsigned long long)pid);
    memcpy(p, " rss=", 5);
    p = put_u64(p + 5, bytes);
    *p++ = '\n';
    fwrite(line, 1, (size_t)(p - line), rec);
}

/* A full disk stops recording, never the target: remember the error and write no more. */
void mon_out_flush(void)
{
    if (!rec || mon_rec_err)
        return;
    if (fflush(rec) != 0 || ferror(rec))
        mon_rec_err = errno ? errno : EIO;
}

/* Escape len bytes of s into the shared buffer; a list when sep_nul (NUL-separated -> ','). */
static const char *escape(const char *s, size_t len, int sep_nul)
{
    size_t need = len * 3 + 1;

    if (need > esc_cap) {
        char *n = realloc(esc, need);
        if (!n)
            return "";
        esc = n;
        esc_cap = need;
    }
    if (!sep_nul)
        prof_rec_escape(esc, esc_cap, s, len);
    else if (prof_rec_escape_list(esc, esc_cap, s, len) < 0)
        esc[0] = '\0';
    return esc;
}

void mon_emit_image(char type, struct mproc *p, uint64_t t, int ppid, int is_static)
{
    char exe[PATH_MAX * 3 + 1];
    const char *e = p->exe ? p->exe : "";

    prof_rec_escape(exe, sizeof exe, e, strlen(e));
    const char *argv = p->cmd ? escape(p->cmd, p->cmdlen, 1) : "";
    if (type == 'N')
        mon_out("N t=%llu pid=%d ppid=%d start_ticks=%llu exe=%s argv=%s static=%d\n", (unsigned long long)t,
            (int)p->pid, ppid, p->start_ticks, exe, argv, is_static);
    else
        mon_out("E t=%llu pid=%d exe=%s argv=%s static=%d\n", (unsigned long long)t, (int)p->pid, exe, argv,
            is_static);
}

/* ---- opening and closing ------------------------------------------------ */

int monitor_open(const char *rundir, int interval_ms)
{
    char path[PATH_MAX];

    mon_ticks_per_sec = sysconf(_SC_CLK_TCK);
    mon_page_size = sysconf(_SC_PAGESIZE);
    if (mon_ticks_per_sec <= 0)
        mon_ticks_per_sec = 100;
    if (snprintf(path, sizeof path, "%s/monitor.rec", rundir) >= (int)sizeof path)
        return PROF_ERANGE;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return prof_err_from_errno(errno);
    rec = fdopen(fd, "w");
    if (!rec) {
        close(fd);
        return PROF_ENOMEM;
    }
    /* Full buffering; mon_out_flush() empties it at least every 100 ms. */
    setvbuf(rec, NULL, _IOFBF, 1 << 16);
    mon_out("V version=%d\n", PROF_MONREC_VERSION);
    mon_out("S t=%llu interval_ms=%d ticks_per_sec=%ld page_size=%ld\n", (unsigned long long)monitor_now_ns(),
        interval_ms, mon_ticks_per_sec, mon_page_size);
    mon_out_flush();
    if (mon_rec_err)
        return prof_err_from_errno(mon_rec_err);
    return 0;
}

/* The run is over: close the record; an error fclose reports is the recording's too. */
int mon_record_close(void)
{
    if (rec && fclose(rec) != 0 && !mon_rec_err)
        mon_rec_err = errno ? errno : EIO;
    rec = NULL;
    return mon_rec_err;
}
