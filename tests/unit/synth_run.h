/* synth_run.h: synthetic run directories for the unit tests: run.json, monitor.rec and shim records with known figures. */
#ifndef POOLPROF_TEST_SYNTH_RUN_H
#define POOLPROF_TEST_SYNTH_RUN_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format/shm.h"

#define T0 1000000000000ull /* run start, CLOCK_MONOTONIC ns */
#define MS 1000000ull
#define SEC 1000000000ull

static char dir[64];

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void setup(void)
{
    char path[128];
    strcpy(dir, "/tmp/poolprof-merge-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/proc", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
}

static inline void teardown(void)
{
    if (dir[0] && !getenv("KEEP"))
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* run.json as the CLI writes it; exit_status < 0 leaves "exit" out (poolprof died). */
static inline void write_run(int root_pid, uint64_t end_ns, int exit_status)
{
    char path[128];
    json_t *machine = json_pack("{s:i, s:i, s:f, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "online_cpus", 2,
                                "affinity_cpus", 2, "quota_cpus", 0.0, "cgroup_version", 1, "physical_cores", 2,
                                "usable_cpus", 2, "mem_total_bytes", (json_int_t)4000000000,
                                "mem_available_bytes", (json_int_t)3000000000, "cgroup_mem_limit_bytes",
                                (json_int_t)0, "nofile_limit", (json_int_t)1024, "clock_ticks", (json_int_t)100,
                                "page_size", (json_int_t)4096);
    json_t *run = json_pack("{s:s, s:s, s:[s, s], s:s, s:I, s:I, s:I, s:i, s:{s:i, s:b}, s:s, s:o}", "format",
                            "poolprof.run/1", "poolprof_version", "0.1.0", "command", "prog", "arg", "cwd", "/tmp",
                            "start_ns", (json_int_t)T0, "end_ns", (json_int_t)end_ns, "start_realtime_ns",
                            (json_int_t)1700000000000000000ll, "root_pid", root_pid, "options", "interval_ms", 20,
                            "preload", 1, "shim", "/x/libprof.so", "machine", machine);
    if (exit_status >= 0) {
        json_t *ex = json_object();
        json_object_set_new(ex, "status", json_integer(exit_status));
        json_object_set_new(ex, "code", WIFEXITED(exit_status) ? json_integer(WEXITSTATUS(exit_status)) : json_null());
        json_object_set_new(ex, "signal", WIFSIGNALED(exit_status) ? json_integer(WTERMSIG(exit_status)) : json_null());
        json_object_set_new(run, "exit", ex);
    }
    snprintf(path, sizeof path, "%s/run.json", dir);
    cr_assert_eq(json_dump_file(run, path, 0), 0);
    json_decref(run);
}

static inline void write_file(const char *name, const void *buf, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static inline void write_monitor(const char *text)
{
    write_file("monitor.rec", text, strlen(text));
}

static inline struct prof_shm_header *rec_new(int pid, int ppid, uint64_t start, uint64_t end, uint32_t end_how,
                                       int exit_code, uint32_t flags, const char *exe, int argc, ...)
{
    struct prof_shm_header *h = calloc(1, sizeof *h);
    cr_assert_not_null(h);
    h->magic = PROF_SHM_MAGIC;
    h->version = PROF_SHM_VERSION;
    h->size = sizeof *h;
    h->pid = pid;
    h->ppid = ppid;
    h->flags = flags;
    h->end_how = end_how;
    h->start_ns = start;
    h->end_ns = end;
    h->exit_code = exit_code;
    snprintf(h->exe, sizeof h->exe, "%s", exe);
    va_list ap;
    va_start(ap, argc);
    size_t o = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = va_arg(ap, const char *);
        memcpy(h->argv + o, a, strlen(a) + 1);
        o += strlen(a) + 1;
    }
    va_end(ap);
    h->argc = (uint32_t)argc;
    return h;
}

static inline struct prof_shm_thread *rec_thread(struct prof_shm_header *h, int tid, const char *name, uint64_t start,
                                          uint64_t end, uint32_t state, uint64_t cpu_ns)
{
    struct prof_shm_thread *t = &h->threads[h->nthreads++];
    t->tid = tid;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->start_ns = start;
    t->end_ns = end;
    t->cpu_ns = cpu_ns;
    t->utime_us = cpu_ns / 1000;
    t->state = state;
    return t;
}

static inline void rec_write(struct prof_shm_header *h, size_t len)
{
    char name[96];
    snprintf(name, sizeof name, "proc/%d-%llu.rec", h->pid, (unsigned long long)h->start_ns);
    write_file(name, h, len ? len : sizeof *h);
    free(h);
}

#endif
