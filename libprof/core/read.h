/* read.h: the read step: a run directory decoded into records (run.json, the shim's images, monitor and sampler lines), nothing merged or decided. */
#ifndef POOLPROF_READ_H
#define POOLPROF_READ_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "format/ctrrec.h"
#include "format/machine.h"
#include "format/shm.h"

/* run.json (format/rundir.h). */
struct prof_rec_run {
    json_t *doc;
    uint64_t start_ns, end_ns;  /* 0 when absent (poolprof did not finish) */
    int root_pid;
    int interval_ms;            /* options.interval_ms, 0 when absent */
    int attached;               /* options.attached: poolprof attach, to processes already running */
    struct prof_machine machine;
};

/* One process image as the shim recorded it (proc/PID-START.rec): the header's figures and the
 * slots in use. A damaged or foreign file never becomes one: it is named in the errors. */
struct prof_rec_image {
    char *fname;
    int pid, ppid;
    uint32_t flags, end_how;
    uint64_t start_ns, end_ns;
    int exit_code;
    uint32_t dropped_threads, dropped_children;
    uint64_t vm_hwm_bytes, rss_end_bytes;
    uint64_t gil_mutex, gil_switch_mutex;
    char *exe;
    char **argv;
    int argc;
    struct prof_shm_thread *threads; size_t nthreads;   /* claimed slots with a tid */
    struct prof_shm_child *children; size_t nchildren;  /* reaped children with a pid */
    struct prof_shm_lock *locks; size_t nlocks;         /* contended locks */
    struct prof_shm_stage *stages; size_t nstages;      /* marker stages with a finished name */
};

/* One per-process line of monitor.rec (format/monrec.h), in file order. */
struct prof_rec_mon {
    char type;         /* N E R M T G Z, or '.': a line whose t and pid were read but nothing else */
    uint64_t t_ns;
    int pid;
    union {
        struct {       /* N, E */
            int have_ppid, ppid;
            uint64_t start_ticks;
            int is_static;
            char *exe;          /* NULL: absent */
            char **argv;
            int argc;
        } image;
        uint64_t rss;  /* R */
        struct { uint64_t pss, uss, swap; } mem; /* M */
        struct {       /* T */
            int tid;
            int have_name;
            char name[16];
            uint64_t cpu, runq, utime, stime, vcsw, ivcsw, start_ticks;
            uint64_t minflt, majflt;
        } thread;
        int status;    /* Z */
    } u;
};

struct prof_rec_monitor {
    int present;                /* monitor.rec was read (a version this reader knows) */
    int interval_ms;            /* S line, 0 when absent */
    long ticks_per_sec;         /* S line, 0 when absent */
    uint64_t self_cpu_ns;       /* the largest C line: the monitor thread's own CPU */
    uint64_t k_busy0, k_steal0, k_busy1, k_steal1; /* the first and last K lines */
    int nk;
    struct prof_rec_mon *lines; size_t nlines;
};

/* sampler.rec (format/samprec.h). Stacks and samples are the struct prof_samples of samples.h. */
struct prof_rec_sproc {         /* P line */
    int pid, ppid;
    uint64_t t_ns;
    char *exe;                  /* NULL when the line has none */
    char **argv;
    int argc;
    int python;                 /* the version it reads (311), 0 */
    int gil_absent;             /* gil=0: a free-threaded CPython running without its GIL */
    char *pyerr;                /* why not, or NULL */
};
struct prof_rec_sexit {         /* X line: a process's exit status, from its ptrace exit event */
    int pid, status;
    uint64_t t_ns;
};
struct prof_rec_gil {           /* G line (cumulative: the last one per thread counts) */
    int pid, tid;
    uint64_t n, held, held_cpu;
};
struct prof_rec_futex {         /* Q line */
    int pid;
    uint64_t addr, ticks, held;
};
struct prof_rec_span {          /* S line: a stretch of a thread's timeline in one state */
    int pid, tid;
    uint64_t t0_ns, t1_ns;
    int state;                  /* enum prof_tstate */
};
struct prof_rec_sampler {
    int present;                /* sampler.rec exists */
    json_t *info;               /* settings and self-report (O and H lines) */
    struct prof_samples *samples;
    struct prof_rec_sproc *procs; size_t nprocs;
    struct prof_rec_sexit *exits; size_t nexits;
    struct prof_rec_gil *gil; size_t ngil;
    struct prof_rec_futex *futex; size_t nfutex;
    struct prof_rec_span *spans; size_t nspans, capspans;   /* in file order */
};

/* Everything a run directory holds, decoded. Notes and errors are kept per file, in the
 * order the files are read, for the merge to carry into the run. */
/* counters.rec (format/ctrrec.h): the run's events and each task's last counts. */
struct prof_rec_ctr_event {     /* E line */
    char name[96], fstr[96], role[24], source[8], reason[160];
    uint32_t type;
    uint64_t config;
    int user_only, hardware, is_default;
};
struct prof_rec_ctr_task {      /* an O line and what followed it for that task */
    int pid, tid;
    int born;                   /* opened before the task ran: its counts are whole */
    uint64_t open_ns, gone_ns;  /* gone_ns 0: no X line (alive at the end, or the file stops) */
    uint64_t open_mask;         /* events open for it (bit i) */
    uint64_t v[PROF_CTRREC_MAX][3]; /* the latest R line: value, enabled ns, running ns */
    int have;                   /* an R line was read */
};
struct prof_rec_counters {
    int present;                /* counters.rec was read (a version this reader knows) */
    struct prof_rec_ctr_event ev[PROF_CTRREC_MAX];
    size_t nev;
    struct prof_rec_ctr_task *tasks; size_t ntasks;   /* file order */
    uint64_t refused;           /* L what=descriptors: tasks not counted */
    uint64_t ended;             /* L what=ended: tasks gone before their counters opened */
    uint64_t failed[PROF_CTRREC_MAX]; /* F lines per event */
    int fail_errno[PROF_CTRREC_MAX];  /* the latest F line's errno per event */
};

struct prof_records {
    char *rundir;
    struct prof_rec_run run;
    struct prof_rec_image *images; size_t nimages;
    struct prof_rec_monitor monitor;
    struct prof_rec_sampler sampler;
    struct prof_rec_counters counters;
    json_t *shim_errors, *monitor_errors, *monitor_notes, *sampler_errors;
    json_t *sweep;              /* sweep.json, checked (read_sweep.c), or NULL */
    json_t *sweep_notes;        /* why a sweep.json was ignored */
    json_t *counters_errors;    /* counters.rec lines skipped */
};

/* Read RUNDIR into *rec. 0, or PROF_E* when run.json is missing or malformed (PROF_ENOENT,
 * PROF_EFORMAT) or memory runs out; damaged records are skipped and listed in the errors. */
int prof_read(const char *rundir, struct prof_records *rec);
void prof_records_free(struct prof_records *rec);

/* The readers, one per file; prof_read calls them in this order. */
int prof_read_run(const char *rundir, struct prof_rec_run *out);
int prof_read_shim(struct prof_records *rec);
int prof_read_monitor(struct prof_records *rec);
int prof_read_sampler(struct prof_records *rec);
/* sweep.json when there is one; one that is not a poolprof.sweep/1 the report can draw is noted, not read. */
int prof_read_sweep(struct prof_records *rec);
int prof_read_counters(struct prof_records *rec);

/*
 * After a run: cut each shim record whose image is certainly over (its pid is gone, or it ended
 * by exec) to its header and the used part of its extension area (format/shm.h), so a run
 * directory does not show 256 MiB of apparent size per file. Records it cannot judge stay whole
 * and read the same. 0, or PROF_E* when RUNDIR/proc cannot be listed.
 */
int prof_shim_trim(const char *rundir);

/* What a file of RUNDIR/proc is: a record file (<pid>-<start>.rec), an arena (<k>.arena), or 0 (anything else, a file being made included). */
enum { PROF_SHIM_FILE_REC = 1, PROF_SHIM_FILE_ARENA = 2 };
int prof_shim_file_kind(const char *name);

/* pread all of len bytes at off: 0, or -1 (an error, or the file ends first). */
int prof_pread_full(int fd, void *buf, size_t len, uint64_t off);


#endif
