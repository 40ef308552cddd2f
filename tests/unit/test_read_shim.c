/* test_read_shim.c: the shim record reader on synthetic records with extension chunks: every slot read, damaged directories refused, drops named, records trimmed only when their image is over. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/read.h"
#include "format/shm.h"
#include "prof.h"
#include "synth_run.h"

TestSuite(read_shim, .init = setup, .fini = teardown);

#define HSIZE sizeof(struct prof_shm_header)
#define TSIZE sizeof(struct prof_shm_thread)
#define CSIZE sizeof(struct prof_shm_child)

/* A record as the shim leaves it: the header, then ext_used bytes of chunks (buf holds ext_bytes). */
struct rec {
    char *buf;
    struct prof_shm_header *h;
};

static uint64_t pidns_self(void)
{
    struct stat st;
    cr_assert_eq(stat("/proc/self/ns/pid", &st), 0);
    return (uint64_t)st.st_ino;
}

static struct rec rec_make(int pid, uint64_t ext_bytes)
{
    struct rec r = {calloc(1, HSIZE + ext_bytes), NULL};
    cr_assert_not_null(r.buf);
    r.h = (struct prof_shm_header *)r.buf;
    r.h->magic = PROF_SHM_MAGIC;
    r.h->version = PROF_SHM_VERSION;
    r.h->size = HSIZE;
    r.h->pid = pid;
    r.h->ppid = 1;
    r.h->start_ns = T0 + 1 * MS;
    r.h->end_ns = T0 + 900 * MS;
    r.h->end_how = PROF_END_EXIT;
    r.h->ext_bytes = ext_bytes;
    r.h->ext_why = PROF_EXT_ENV;
    r.h->pidns = pidns_self();
    snprintf(r.h->exe, sizeof r.h->exe, "/bin/fan");
    memcpy(r.h->argv, "fan", 4);
    r.h->argc = 1;
    return r;
}

/* Cut chunk j of a kind from the area, as the shim does: returns its first slot. */
static void *rec_chunk(struct rec *r, uint64_t *dir, unsigned j, size_t base, size_t elem)
{
    uint64_t need = ((uint64_t)base << j) * elem;
    need = (need + PROF_SHM_EXT_ALIGN - 1) & ~(uint64_t)(PROF_SHM_EXT_ALIGN - 1);
    cr_assert_leq(r->h->ext_used + need, r->h->ext_bytes);
    dir[j] = HSIZE + r->h->ext_used;
    r->h->ext_used += need;
    return r->buf + dir[j];
}

static struct prof_shm_thread *thread_slot(struct rec *r, size_t i)
{
    if (i < PROF_SHM_MAX_THREADS)
        return &r->h->threads[i];
    uint64_t off;
    unsigned j = prof_shm_chunk(i, PROF_SHM_MAX_THREADS, &off);
    cr_assert_neq(r->h->thread_chunks[j], 0);
    return (struct prof_shm_thread *)(r->buf + r->h->thread_chunks[j]) + off;
}

static struct prof_shm_child *child_slot(struct rec *r, size_t i)
{
    if (i < PROF_SHM_MAX_CHILDREN)
        return &r->h->children[i];
    uint64_t off;
    unsigned j = prof_shm_chunk(i, PROF_SHM_MAX_CHILDREN, &off);
    cr_assert_neq(r->h->child_chunks[j], 0);
    return (struct prof_shm_child *)(r->buf + r->h->child_chunks[j]) + off;
}

/* 2,548 threads (the fixed table, chunk 0 whole, 500 of chunk 1) and 1,212 children (512 + 512 + 188). */
static struct rec rec_fanned(int pid)
{
    struct rec r = rec_make(pid, 4u << 20);
    rec_chunk(&r, r.h->child_chunks, 0, PROF_SHM_MAX_CHILDREN, CSIZE);
    rec_chunk(&r, r.h->thread_chunks, 0, PROF_SHM_MAX_THREADS, TSIZE);
    rec_chunk(&r, r.h->thread_chunks, 1, PROF_SHM_MAX_THREADS, TSIZE);
    rec_chunk(&r, r.h->child_chunks, 1, PROF_SHM_MAX_CHILDREN, CSIZE);
    r.h->nthreads = 2548;
    for (size_t i = 0; i < r.h->nthreads; i++) {
        struct prof_shm_thread *t = thread_slot(&r, i);
        t->tid = i ? 10000 + (int)i : pid;
        t->state = PROF_THREAD_ENDED;
        t->start_ns = T0 + 2 * MS;
        t->end_ns = T0 + 3 * MS;
    }
    r.h->nchildren = 1212;
    for (size_t i = 0; i < r.h->nchildren; i++) {
        struct prof_shm_child *c = child_slot(&r, i);
        c->pid = 20000 + (int)i;
        c->status = (int)(i % 256) << 8;
        c->t_ns = T0 + 5 * MS;
    }
    return r;
}

static void rec_save(struct rec *r, uint64_t len)
{
    char name[96];
    snprintf(name, sizeof name, "proc/%d-%llu.rec", r->h->pid, (unsigned long long)r->h->start_ns);
    write_file(name, r->buf, len);
    free(r->buf);
}

static off_t rec_size(int pid)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/proc/%d-%llu.rec", dir, pid, (unsigned long long)(T0 + 1 * MS));
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

static int has_error(const struct prof_records *rec, const char *needle)
{
    size_t i;
    json_t *v;
    json_array_foreach(rec->shim_errors, i, v)
        if (strstr(json_string_value(v), needle))
            return 1;
    return 0;
}

static void read_dir(struct prof_records *rec)
{
    write_run(700, T0 + 1 * SEC, 0);
    cr_assert_eq(prof_read(dir, rec), 0);
}

Test(read_shim, every_slot_of_the_chunks_is_read_trimmed_or_not)
{
    struct rec a = rec_fanned(700);
    rec_save(&a, HSIZE + a.h->ext_used); /* trimmed */
    struct rec b = rec_fanned(701);
    rec_save(&b, HSIZE + b.h->ext_bytes); /* untrimmed: the area's unused end is there, zeros */
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 2, "errors: %s", json_dumps(rec.shim_errors, 0));
    for (size_t k = 0; k < rec.nimages; k++) {
        const struct prof_rec_image *im = &rec.images[k];
        cr_assert_eq(im->nthreads, 2548);
        cr_assert_eq(im->nchildren, 1212);
        for (size_t i = 1; i < im->nthreads; i++)
            cr_assert_eq(im->threads[i].tid, 10000 + (int)i, "thread slot %zu", i);
        for (size_t i = 0; i < im->nchildren; i++) {
            cr_assert_eq(im->children[i].pid, 20000 + (int)i, "child slot %zu", i);
            cr_assert_eq(im->children[i].status, (int)(i % 256) << 8);
        }
    }
    cr_assert_eq(json_array_size(rec.shim_errors), 0, "%s", json_dumps(rec.shim_errors, 0));
    prof_records_free(&rec);
}

Test(read_shim, a_damaged_directory_or_area_is_refused_not_trusted)
{
    struct rec r = rec_fanned(710);
    r.h->thread_chunks[1] = HSIZE + r.h->ext_used; /* past what was handed out */
    rec_save(&r, HSIZE + r.h->ext_bytes);
    r = rec_fanned(711);
    r.h->child_chunks[0] = 64; /* inside the header */
    rec_save(&r, HSIZE + r.h->ext_used);
    r = rec_fanned(712);
    r.h->thread_chunks[7] = HSIZE + 8; /* a chunk 128 times the first: beyond the area */
    rec_save(&r, HSIZE + r.h->ext_bytes);
    r = rec_fanned(713);
    r.h->ext_used = r.h->ext_bytes + 4096; /* more used than there is */
    rec_save(&r, HSIZE + r.h->ext_used);
    r = rec_fanned(714);
    rec_save(&r, HSIZE + 4096); /* cut short: its chunks are not in the file */
    r = rec_fanned(715);
    r.h->thread_chunks[0] += 4; /* not aligned for its slots */
    rec_save(&r, HSIZE + r.h->ext_used);
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 0);
    size_t i;
    json_t *v;
    json_array_foreach(rec.shim_errors, i, v)
        cr_assert(strstr(json_string_value(v), "skipped: damaged"), "%s", json_string_value(v));
    cr_assert_eq(json_array_size(rec.shim_errors), 6);
    prof_records_free(&rec);
}

Test(read_shim, a_drop_is_named_with_its_limit)
{
    struct rec r = rec_make(720, 1u << 20);
    r.h->nthreads = 1;
    r.h->threads[0] = (struct prof_shm_thread){.state = PROF_THREAD_ENDED, .tid = 720};
    r.h->dropped_threads = 2953;
    r.h->ext_refused = 2953;
    rec_save(&r, HSIZE);
    r = rec_make(721, 0);
    r.h->ext_why = PROF_EXT_WHOLE;
    r.h->dropped_children = 688;
    rec_save(&r, HSIZE);
    r = rec_make(722, 256u << 20);
    r.h->ext_why = PROF_EXT_DEFAULT;
    r.h->dropped_children = 5;
    r.h->nomem_drops = 2;
    rec_save(&r, HSIZE);
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 3);
    cr_assert(has_error(&rec, "2953 threads were not recorded: the record's extension area (1 MiB, set by "
                              "POOLPROF_EXT_BYTES) is full"));
    cr_assert(has_error(&rec, "688 reaped children beyond the record's 512 slots were not recorded: it has no "
                              "extension area (the run directory's file system"));
    cr_assert(has_error(&rec, "5 reaped children were not recorded: the record's extension area (256 MiB, the default) is full"));
    cr_assert(has_error(&rec, "2 threads were not recorded: no memory for the shim's own state"));
    prof_records_free(&rec);
}

Test(read_shim, only_records_of_images_that_are_over_are_trimmed)
{
    /* A pid certainly gone: a child of ours, reaped. */
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    cr_assert_eq(waitpid(gone, NULL, 0), gone);
    struct rec r = rec_fanned(gone);
    uint64_t used = r.h->ext_used;
    rec_save(&r, HSIZE + r.h->ext_bytes);
    /* Killed (no end): its pid is gone too. */
    pid_t killed = fork();
    if (killed == 0) {
        pause();
        _exit(0);
    }
    kill(killed, SIGKILL);
    cr_assert_eq(waitpid(killed, NULL, 0), killed);
    r = rec_fanned(killed);
    r.h->end_ns = 0;
    r.h->end_how = PROF_END_RUNNING;
    rec_save(&r, HSIZE + r.h->ext_bytes);
    /* Ended, but its process is still here (in its exit, or a daemon): kept whole. */
    r = rec_fanned(getpid());
    rec_save(&r, HSIZE + r.h->ext_bytes);
    /* Gone, but its pid is of another pid namespace: kept whole. */
    pid_t other = fork();
    if (other == 0)
        _exit(0);
    cr_assert_eq(waitpid(other, NULL, 0), other);
    r = rec_fanned(other);
    r.h->pidns ^= 1;
    rec_save(&r, HSIZE + r.h->ext_bytes);

    cr_assert_eq(prof_shim_trim(dir), 0);
    cr_assert_eq(rec_size(gone), (off_t)(HSIZE + used));
    cr_assert_eq(rec_size(killed), (off_t)(HSIZE + used));
    cr_assert_eq(rec_size(getpid()), (off_t)(HSIZE + (4u << 20)));
    cr_assert_eq(rec_size(other), (off_t)(HSIZE + (4u << 20)));
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 4, "errors: %s", json_dumps(rec.shim_errors, 0));
    for (size_t k = 0; k < rec.nimages; k++)
        cr_assert_eq(rec.images[k].nthreads, 2548);
    prof_records_free(&rec);
}

/* A record created and never sized (its process killed in between) is named for what it is, not as truncated data. */
Test(read_shim, an_empty_record_is_named_as_its_process_ending_early)
{
    write_file("proc/720-1000.rec", "", 0);
    struct rec r = rec_fanned(721);
    rec_save(&r, 4096); /* cut inside the header */
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 0);
    cr_assert_eq(json_array_size(rec.shim_errors), 2, "%s", json_dumps(rec.shim_errors, 0));
    size_t i;
    json_t *v;
    int empty = 0, cut = 0;
    json_array_foreach(rec.shim_errors, i, v) {
        empty += strstr(json_string_value(v), "720-1000.rec: skipped: empty: its process ended while creating it") != NULL;
        cut += strstr(json_string_value(v), "skipped: truncated") != NULL;
    }
    cr_assert_eq(empty, 1, "%s", json_dumps(rec.shim_errors, 0));
    cr_assert_eq(cut, 1, "%s", json_dumps(rec.shim_errors, 0));
    prof_records_free(&rec);
}

/* ---- arenas: many images' records in one file (format/shm.h) ---------------------------------------- */

#define PAGE 4096u
#define STRIDE ((HSIZE + (4u << 20) + PAGE - 1) / PAGE * PAGE)

static int arena_fd(const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "%s/proc/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    return fd;
}

/* A live arena of n regions: regs[i] a record (saved with its used part), or NULL with claimer[i]
 * the pid its claimer wrote (0: none yet). */
static void arena_save(const char *name, struct rec *regs, const int *claimer, uint64_t n)
{
    int fd = arena_fd(name);
    struct prof_shm_arena a = {.magic = PROF_ARENA_MAGIC, .version = PROF_SHM_VERSION, .page = PAGE,
                               .stride = STRIDE, .capacity = 1000, .next = n};
    cr_assert_eq(pwrite(fd, &a, sizeof a, 0), (ssize_t)sizeof a);
    for (uint64_t i = 0; i < n; i++) {
        off_t off = (off_t)(PAGE + i * STRIDE);
        if (regs[i].buf) {
            size_t len = HSIZE + regs[i].h->ext_used;
            cr_assert_eq(pwrite(fd, regs[i].buf, len, off), (ssize_t)len);
            free(regs[i].buf);
        } else if (claimer[i]) {
            cr_assert_eq(pwrite(fd, &claimer[i], sizeof(int), off + (off_t)offsetof(struct prof_shm_header, pid)),
                         (ssize_t)sizeof(int));
        }
    }
    cr_assert_eq(ftruncate(fd, (off_t)(PAGE + n * STRIDE)), 0);
    close(fd);
}

static struct prof_shm_arena arena_head(const char *name, off_t *size)
{
    int fd = arena_fd(name);
    struct prof_shm_arena a;
    struct stat st;
    cr_assert_eq(pread(fd, &a, sizeof a, 0), (ssize_t)sizeof a);
    cr_assert_eq(fstat(fd, &st), 0);
    *size = st.st_size;
    close(fd);
    return a;
}

static pid_t pid_gone(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    cr_assert_eq(waitpid(p, NULL, 0), p);
    return p;
}

static void expect_two_fanned(void)
{
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 2, "errors: %s", json_dumps(rec.shim_errors, 0));
    for (size_t k = 0; k < rec.nimages; k++) {
        cr_assert_eq(rec.images[k].nthreads, 2548);
        cr_assert_eq(rec.images[k].nchildren, 1212);
    }
    cr_assert(has_error(&rec, "0.arena: 2 of 4 records were never filled"), "%s", json_dumps(rec.shim_errors, 0));
    prof_records_free(&rec);
}

/* Regions read one by one, empty ones named; once every image is over, the arena is packed to what was used and reads the same. */
Test(read_shim, an_arena_is_read_by_region_and_packed_once_its_images_are_over)
{
    struct rec regs[4] = {rec_fanned(pid_gone()), {0}, {0}, rec_fanned(pid_gone())};
    uint64_t used = regs[0].h->ext_used;
    int claimer[4] = {0, 0, pid_gone(), 0}; /* region 1 names no claimer; region 2's claimer died before filling it */
    arena_save("0.arena", regs, claimer, 4);
    expect_two_fanned();

    cr_assert_eq(prof_shim_trim(dir), 0);
    off_t size;
    struct prof_shm_arena a = arena_head("0.arena", &size);
    cr_assert_eq(a.magic, PROF_ARENA_MAGIC);
    cr_assert_eq(a.stride, 0, "packed");
    cr_assert_eq(a.nregions, 4);
    uint64_t rec_pages = (HSIZE + used + PAGE - 1) / PAGE * PAGE;
    cr_assert_eq((uint64_t)size, PAGE + 2 * rec_pages, "a page of header and table, then the two records cut to their use");
    expect_two_fanned();
    /* Packed again: nothing changes. */
    cr_assert_eq(prof_shim_trim(dir), 0);
    off_t again;
    arena_head("0.arena", &again);
    cr_assert_eq(again, size);
}

/* An image still running (or a claimer alive that has not filled its region) keeps the arena live and whole. */
Test(read_shim, an_arena_with_an_image_running_is_left_whole)
{
    struct rec regs[2] = {rec_fanned(pid_gone()), rec_fanned(getpid())};
    int none[2] = {0, 0};
    arena_save("0.arena", regs, none, 2);
    struct rec one[1] = {{0}};
    int alive[1] = {getpid()};
    arena_save("1.arena", one, alive, 1);
    cr_assert_eq(prof_shim_trim(dir), 0);
    off_t size;
    cr_assert_eq(arena_head("0.arena", &size).stride, STRIDE);
    cr_assert_eq((uint64_t)size, PAGE + 2 * STRIDE);
    cr_assert_eq(arena_head("1.arena", &size).stride, STRIDE);
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 2, "errors: %s", json_dumps(rec.shim_errors, 0));
    cr_assert(has_error(&rec, "1.arena: 1 of 1 records were never filled"));
    prof_records_free(&rec);
}

/* A damaged or foreign arena is named and skipped, never trusted. */
Test(read_shim, a_damaged_arena_is_named_and_skipped)
{
    struct prof_shm_arena a = {.magic = PROF_ARENA_MAGIC, .version = PROF_SHM_VERSION, .page = PAGE, .stride = 0,
                               .nregions = 1000000};
    write_file("proc/0.arena", &a, sizeof a);
    a.nregions = 0;
    a.version = PROF_SHM_VERSION + 1;
    write_file("proc/1.arena", &a, sizeof a);
    write_file("proc/2.arena", "not an arena at all, just text", 30);
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 0);
    cr_assert(has_error(&rec, "0.arena: skipped: damaged"), "%s", json_dumps(rec.shim_errors, 0));
    cr_assert(has_error(&rec, "1.arena: skipped: 0 records of version"));
    cr_assert(has_error(&rec, "2.arena: skipped: not a poolprof arena"));
    prof_records_free(&rec);
}

/* Every record over, but a process still has the arena mapped (a claimer between its claim and
 * its first store, which no header shows): the write lease is refused and the arena left live;
 * once that process is gone, it is packed. */
Test(read_shim, an_arena_another_process_maps_is_not_packed)
{
    struct rec regs[2] = {rec_fanned(pid_gone()), rec_fanned(pid_gone())};
    int none[2] = {0, 0};
    arena_save("0.arena", regs, none, 2);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t holder = fork();
    if (holder == 0) {
        int fd = arena_fd("0.arena");
        void *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
        close(fd);
        (void)!write(ready[1], m == MAP_FAILED ? "n" : "y", 1);
        pause();
        _exit(0);
    }
    char c = 0;
    cr_assert_eq(read(ready[0], &c, 1), 1);
    cr_assert_eq(c, 'y');
    cr_assert_eq(prof_shim_trim(dir), 0);
    off_t size;
    cr_assert_eq(arena_head("0.arena", &size).stride, STRIDE, "mapped by another process: left live");
    kill(holder, SIGKILL);
    cr_assert_eq(waitpid(holder, NULL, 0), holder);
    cr_assert_eq(prof_shim_trim(dir), 0);
    cr_assert_eq(arena_head("0.arena", &size).stride, 0, "packed once nobody maps it");
    struct prof_records rec;
    read_dir(&rec);
    cr_assert_eq(rec.nimages, 2, "errors: %s", json_dumps(rec.shim_errors, 0));
    prof_records_free(&rec);
}
