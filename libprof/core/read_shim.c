/* read_shim.c: reads the shim's process records (arenas RUNDIR/proc/K.arena, or files RUNDIR/proc/PID-START.rec; format/shm.h), checking each before it is trusted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/read.h"
#include "core/run.h"
#include "format/rundir.h"
#include "prof.h"

static int argv_from_nul(struct prof_rec_image *im, const char *buf, size_t cap, uint32_t argc)
{
    size_t off = 0;

    for (uint32_t i = 0; i < argc && off < cap; i++) {
        size_t n = strnlen(buf + off, cap - off);
        if (off + n >= cap)
            break; /* truncated element without its NUL: the shim truncates at a NUL boundary */
        char **na = realloc(im->argv, (im->argc + 1) * sizeof *na);
        if (!na)
            return PROF_ENOMEM;
        im->argv = na;
        if (!(im->argv[im->argc] = strndup(buf + off, n)))
            return PROF_ENOMEM;
        im->argc++;
        off += n + 1;
    }
    return 0;
}

/* pread all of len bytes at off: 0, or -1 (an error, or the file ends first). */
int prof_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/*
 * Read the record header at `off`: all of it but the thread slots no thread claimed (1,024 of
 * them are four fifths of it, and a short image claims one): 85 KB read a record, not 445.
 * The slots left unread are never looked at (decode copies the claimed ones only).
 */
static int read_header(int fd, struct prof_shm_header *h, uint64_t off)
{
    const size_t head = offsetof(struct prof_shm_header, threads), tail = offsetof(struct prof_shm_header, stages);
    if (prof_pread_full(fd, h, head, off) != 0)
        return -1;
    size_t n = h->nthreads < PROF_SHM_MAX_THREADS ? h->nthreads : PROF_SHM_MAX_THREADS;
    if (n && prof_pread_full(fd, h->threads, n * sizeof h->threads[0], off + head) != 0)
        return -1;
    return prof_pread_full(fd, (char *)h + tail, sizeof *h - tail, off + tail);
}

/* Copy the slots of arr[0..n) that keep(slot) accepts into a new array of just those: counted
 * first, since most tables are nearly empty (a calloc of the whole table per image kept 71 KB
 * of empty lock and stage slots an image: 779 MB to report 10,005 images). */
#define COPY_SLOTS(dst, ndst, arr, n, keep)                                   \
    do {                                                                      \
        size_t k_ = 0;                                                        \
        for (size_t i_ = 0; i_ < (size_t)(n); i_++) {                         \
            const __typeof__(*(arr)) *slot = &(arr)[i_];                      \
            k_ += (keep) ? 1 : 0;                                             \
        }                                                                     \
        (dst) = calloc(k_ ? k_ : 1, sizeof *(dst));                           \
        if (!(dst))                                                           \
            return PROF_ENOMEM;                                               \
        for (size_t i_ = 0; i_ < (size_t)(n) && (size_t)(ndst) < k_; i_++) {  \
            const __typeof__(*(arr)) *slot = &(arr)[i_];                      \
            if (keep)                                                         \
                (dst)[(ndst)++] = *slot;                                      \
        }                                                                     \
    } while (0)

static int named(const struct prof_shm_stage *g)
{
    size_t n = strnlen(g->name, sizeof g->name);
    /* Never NUL-terminated: not a name the shim finished writing. */
    return g->name_hash && g->ready && n > 0 && n < sizeof g->name;
}

/* One kind's slots (threads or reaped children) of a checked record: where they are and how many are read. */
struct slots {
    const void *fixed;       /* the header's table */
    size_t nfixed, elem;
    const uint64_t *dir;     /* its chunk directory */
    uint32_t claimed;        /* nthreads or nchildren */
    void *all;               /* read: the fixed table's claimed slots, then each allocated chunk's */
    size_t n;
};

/* Slots of chunk j that are claimed: those below `claimed`. */
static size_t chunk_used(const struct slots *k, unsigned j)
{
    uint64_t base = (uint64_t)k->nfixed << j;
    return k->claimed > base ? (size_t)(k->claimed - base < base ? k->claimed - base : base) : 0;
}

/*
 * Check a kind's chunk directory against the record: every chunk whole inside the part of the
 * extension area that was handed out. 0, or -1 for a damaged or foreign directory, never trusted.
 */
static int slots_check(const struct slots *k, const struct prof_shm_header *h)
{
    uint64_t end = (uint64_t)h->size + h->ext_used;
    for (unsigned j = 0; j < PROF_SHM_EXT_CHUNKS; j++) {
        uint64_t off = k->dir[j], bytes = ((uint64_t)k->nfixed << j) * k->elem;
        if (off && (off < h->size || off % 8 || bytes > end || off > end - bytes))
            return -1;
    }
    return 0;
}

/* Read a checked kind's claimed slots: only the used part of each chunk (never the sparse rest).
 * Chunk offsets are from the record's start, at `base` in the file. */
static int slots_read(struct slots *k, int fd, uint64_t base)
{
    size_t total = k->claimed < k->nfixed ? k->claimed : k->nfixed;
    for (unsigned j = 0; j < PROF_SHM_EXT_CHUNKS; j++)
        if (k->dir[j])
            total += chunk_used(k, j);
    if (!(k->all = calloc(total ? total : 1, k->elem)))
        return PROF_ENOMEM;
    size_t n = k->claimed < k->nfixed ? k->claimed : k->nfixed;
    memcpy(k->all, k->fixed, n * k->elem);
    for (unsigned j = 0; j < PROF_SHM_EXT_CHUNKS; j++) {
        size_t used = k->dir[j] ? chunk_used(k, j) : 0;
        if (used && prof_pread_full(fd, (char *)k->all + n * k->elem, used * k->elem, base + k->dir[j]) != 0)
            return -1;
        n += used;
    }
    k->n = n;
    return 0;
}

/* The header's figures and the slots in use of one checked record (threads and children as slots_read found them). */
static int decode(struct prof_rec_image *im, const struct prof_shm_header *h, const char *fname,
                  const struct slots *threads, const struct slots *children)
{
    memset(im, 0, sizeof *im);
    im->pid = h->pid;
    im->ppid = h->ppid;
    im->flags = h->flags;
    im->end_how = h->end_how;
    im->start_ns = h->start_ns;
    im->end_ns = h->end_ns;
    im->exit_code = h->exit_code;
    im->dropped_threads = h->dropped_threads;
    im->dropped_children = h->dropped_children;
    im->vm_hwm_bytes = h->vm_hwm_bytes;
    im->rss_end_bytes = h->rss_end_bytes;
    im->gil_mutex = h->gil_mutex;
    im->gil_switch_mutex = h->gil_switch_mutex;
    if (!(im->fname = strdup(fname)) || !(im->exe = strndup(h->exe, strnlen(h->exe, sizeof h->exe))) ||
        argv_from_nul(im, h->argv, sizeof h->argv, h->argc))
        return PROF_ENOMEM;
    const struct prof_shm_thread *ts = threads->all;
    const struct prof_shm_child *cs = children->all;
    COPY_SLOTS(im->threads, im->nthreads, ts, threads->n, slot->state != PROF_THREAD_FREE && slot->tid > 0);
    COPY_SLOTS(im->children, im->nchildren, cs, children->n, slot->pid > 0);
    COPY_SLOTS(im->locks, im->nlocks, h->locks, PROF_SHM_MAX_LOCKS, slot->addr && slot->contended);
    COPY_SLOTS(im->stages, im->nstages, h->stages, PROF_SHM_MAX_STAGES, named(slot));
    return 0;
}

/* The extension area as the record's header describes it: "256 MiB (the default)". */
static const char *ext_desc(const struct prof_shm_header *h, char *buf, size_t cap)
{
    static const char *const why[] = {
        [PROF_EXT_DEFAULT] = "the default",
        [PROF_EXT_ENV] = "set by " PROF_ENV_EXT,
        [PROF_EXT_RLIMIT] = "1/16 of the address space RLIMIT_AS left",
    };
    const char *w = h->ext_why < sizeof why / sizeof *why && why[h->ext_why] ? why[h->ext_why] : "?";
    if (h->ext_bytes >= (1ull << 20))
        snprintf(buf, cap, "%.4g MiB, %s", (double)h->ext_bytes / (1 << 20), w);
    else
        snprintf(buf, cap, "%llu bytes, %s", (unsigned long long)h->ext_bytes, w);
    return buf;
}

/* Why a record has no extension area, so its fixed tables were the limits. */
static const char *no_ext_why(const struct prof_shm_header *h)
{
    switch (h->ext_why) {
    case PROF_EXT_ENV:
        return PROF_ENV_EXT "=0";
    case PROF_EXT_RLIMIT:
        return "RLIMIT_AS left no address space for it";
    case PROF_EXT_WHOLE:
        return "the run directory's file system or kernel cannot keep a record sparse (tmpfs; before Linux 5.14)";
    case PROF_EXT_NOMEM:
        return "no memory for the shim's map of it";
    default:
        return "?";
    }
}

/* Name what the record could not hold, and why: the limit reached, with its size. */
static void note_drops(json_t *errors, const char *fname, const struct prof_shm_header *h)
{
    char d[96];
    const char *what[2] = {"threads", "reaped children"};
    uint32_t n[2] = {h->dropped_threads, h->dropped_children};
    int fixed[2] = {PROF_SHM_MAX_THREADS, PROF_SHM_MAX_CHILDREN};
    for (int i = 0; i < 2; i++) {
        if (!n[i])
            continue;
        if (h->ext_bytes)
            prof_note(errors, "%s: %u %s were not recorded: the record's extension area (%s) is full", fname, n[i],
                      what[i], ext_desc(h, d, sizeof d));
        else
            prof_note(errors, "%s: %u %s beyond the record's %d slots were not recorded: it has no extension area (%s)",
                      fname, n[i], what[i], fixed[i], no_ext_why(h));
    }
    if (h->nomem_drops)
        prof_note(errors, "%s: %u threads were not recorded: no memory for the shim's own state of their slots", fname,
                  h->nomem_drops);
    if (h->nospace_drops)
        prof_note(errors, "%s: %llu threads, children, locks or stages were not recorded: no disk space for their slots",
                  fname, (unsigned long long)h->nospace_drops);
}

/* The rest of read_record, on a record whose header was read whole: the record is `fsize` bytes at `base` of fd. */
static int read_checked(struct prof_records *rec, int fd, uint64_t base, uint64_t fsize, const char *fname,
                        const struct prof_shm_header *h)
{
    json_t *errors = rec->shim_errors;
    if (h->magic != PROF_SHM_MAGIC) {
        prof_note(errors, "proc/%s: skipped: not a poolprof process record", fname);
        return 0;
    }
    if (h->version != PROF_SHM_VERSION || h->size != sizeof *h) {
        prof_note(errors, "proc/%s: skipped: record version %u size %u, written by another poolprof (this one reads "
                          "version %d size %zu): record the run again",
                  fname, h->version, h->size, PROF_SHM_VERSION, sizeof *h);
        return 0;
    }
    if (h->pid <= 0 || h->start_ns == 0) {
        prof_note(errors, "proc/%s: skipped: the shim never filled the header", fname);
        return 0;
    }
    struct slots threads = {h->threads, PROF_SHM_MAX_THREADS, sizeof h->threads[0], h->thread_chunks, h->nthreads,
                            NULL, 0};
    struct slots children = {h->children, PROF_SHM_MAX_CHILDREN, sizeof h->children[0], h->child_chunks,
                             h->nchildren, NULL, 0};
    /* The handed-out part of the extension area lies in the area and in the file (trimmed or not). */
    if (h->ext_bytes > PROF_SHM_EXT_MAX || h->ext_used > h->ext_bytes || h->size + h->ext_used > fsize ||
        slots_check(&threads, h) != 0 || slots_check(&children, h) != 0) {
        prof_note(errors, "proc/%s: skipped: damaged: its extension area (%llu of %llu bytes used, file %llu bytes) "
                          "or a chunk of it lies outside the record",
                  fname, (unsigned long long)h->ext_used, (unsigned long long)h->ext_bytes,
                  (unsigned long long)fsize);
        return 0;
    }
    errno = 0;
    int rc = slots_read(&threads, fd, base);
    if (rc == 0)
        rc = slots_read(&children, fd, base);
    if (rc == -1) {
        prof_note(errors, "proc/%s: skipped: its extension area cannot be read: %s", fname,
                  errno ? strerror(errno) : "cut short");
        rc = 0;
    } else if (rc == 0) {
        struct prof_rec_image *v = realloc(rec->images, (rec->nimages + 1) * sizeof *v);
        if (!v) {
            rc = PROF_ENOMEM;
        } else {
            rec->images = v;
            struct prof_rec_image *im = &rec->images[rec->nimages++];
            rc = decode(im, h, fname, &threads, &children);
            if (rc == 0)
                note_drops(errors, fname, h);
        }
    }
    free(threads.all);
    free(children.all);
    return rc;
}

/* Read and check one record: a damaged or foreign file is noted and skipped, never trusted. */
static int read_record(struct prof_records *rec, int dirfd, const char *fname, struct prof_shm_header *h)
{
    json_t *errors = rec->shim_errors;
    int fd = openat(dirfd, fname, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0) {
        prof_note(errors, "proc/%s: skipped: %s", fname, strerror(errno));
        return 0;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        prof_note(errors, "proc/%s: skipped: not a regular file", fname);
        close(fd);
        return 0;
    }
    if ((size_t)st.st_size < sizeof *h || read_header(fd, h, 0) != 0) {
        /* A record of another poolprof version has another size: say that, not "truncated". */
        struct {
            uint64_t magic;
            uint32_t version, size;
        } pre;
        if (pread(fd, &pre, sizeof pre, 0) == (ssize_t)sizeof pre && pre.magic == PROF_SHM_MAGIC &&
            pre.version != PROF_SHM_VERSION)
            prof_note(errors, "proc/%s: skipped: record version %u, written by another poolprof (this one reads "
                              "version %d): record the run again",
                      fname, pre.version, PROF_SHM_VERSION);
        else if (st.st_size == 0)
            /* Created, never sized: its process was killed between the two (a pool's terminate()
             * reaching a worker in the middle of its fork). It had recorded nothing. */
            prof_note(errors, "proc/%s: skipped: empty: its process ended while creating it, before recording anything",
                      fname);
        else
            prof_note(errors, "proc/%s: skipped: truncated (%lld of %zu bytes)", fname, (long long)st.st_size,
                      sizeof *h);
        close(fd);
        return 0;
    }
    int rc = read_checked(rec, fd, 0, (uint64_t)st.st_size, fname, h);
    close(fd);
    return rc;
}

/* Whether `name` ends with `suffix` after at least one character of its own (a name beginning
 * with '.' is a file being made, never a record). */
static int name_ends(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n > m && name[0] != '.' && strcmp(name + n - m, suffix) == 0;
}

int prof_shim_file_kind(const char *name)
{
    return name_ends(name, ".rec") ? PROF_SHIM_FILE_REC : name_ends(name, ".arena") ? PROF_SHIM_FILE_ARENA : 0;
}

/* Region i of an arena whose header is `a`, in a file of fsize bytes: its place, len 0 when it holds nothing. */
static int arena_region(int fd, const struct prof_shm_arena *a, uint64_t fsize, uint64_t i, struct prof_shm_region *r)
{
    if (a->stride) {
        r->off = a->page + i * a->stride;
        r->len = r->off < fsize ? (fsize - r->off < a->stride ? fsize - r->off : a->stride) : 0;
        return 0;
    }
    if (prof_pread_full(fd, r, sizeof *r, sizeof *a + i * sizeof *r) != 0)
        return -1;
    return r->off > fsize || r->len > fsize - r->off ? -1 : 0;
}

/* Read every record of one arena (format/shm.h): live (regions at a stride) or packed (a table of regions). */
static int read_arena(struct prof_records *rec, int dirfd, const char *fname, struct prof_shm_header *h)
{
    json_t *errors = rec->shim_errors;
    int fd = openat(dirfd, fname, O_RDONLY | O_CLOEXEC);
    struct stat st;
    struct prof_shm_arena a;
    if (fd < 0) {
        prof_note(errors, "proc/%s: skipped: %s", fname, strerror(errno));
        return 0;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || prof_pread_full(fd, &a, sizeof a, 0) != 0 ||
        a.magic != PROF_ARENA_MAGIC) {
        prof_note(errors, "proc/%s: skipped: not a poolprof arena of process records", fname);
        close(fd);
        return 0;
    }
    uint64_t fsize = (uint64_t)st.st_size, n = a.stride ? (a.next < a.capacity ? a.next : a.capacity) : a.nregions;
    if (a.version != PROF_SHM_VERSION) {
        prof_note(errors, "proc/%s: skipped: %llu records of version %u, written by another poolprof (this one reads "
                          "version %d): record the run again",
                  fname, (unsigned long long)n, a.version, PROF_SHM_VERSION);
        close(fd);
        return 0;
    }
    if (!prof_shm_arena_shape_ok(&a) || (!a.stride && n > (fsize - sizeof a) / sizeof(struct prof_shm_region))) {
        prof_note(errors, "proc/%s: skipped: damaged: its header (page %u, stride %llu, %llu regions) does not fit "
                          "its %llu bytes",
                  fname, a.page, (unsigned long long)a.stride, (unsigned long long)n, (unsigned long long)fsize);
        close(fd);
        return 0;
    }
    int rc = 0;
    uint64_t empty = 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        char name[NAME_MAX + 32];
        snprintf(name, sizeof name, "%s#%llu", fname, (unsigned long long)i);
        struct prof_shm_region r;
        if (arena_region(fd, &a, fsize, i, &r) != 0) {
            prof_note(errors, "proc/%s: skipped: damaged: its region table runs outside the file", name);
            break;
        }
        if (r.len < sizeof *h || read_header(fd, h, r.off) != 0 || h->magic == 0) {
            empty++;
            continue;
        }
        rc = read_checked(rec, fd, r.off, r.len, name, h);
    }
    if (empty)
        prof_note(errors, "proc/%s: %llu of %llu records were never filled: their processes ended while making them "
                          "(or kept them in memory, the disk full), before recording anything",
                  fname, (unsigned long long)empty, (unsigned long long)n);
    close(fd);
    return rc;
}

int prof_read_shim(struct prof_records *rec)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/proc", rec->rundir);
    DIR *d = opendir(path);
    if (!d) {
        if (errno != ENOENT)
            prof_note(rec->shim_errors, "proc/: unreadable: %s", strerror(errno));
        return 0;
    }
    struct prof_shm_header *h = malloc(sizeof *h);
    if (!h) {
        closedir(d);
        return PROF_ENOMEM;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        int kind = prof_shim_file_kind(e->d_name);
        if (kind == PROF_SHIM_FILE_REC)
            rc = read_record(rec, dirfd(d), e->d_name, h);
        else if (kind == PROF_SHIM_FILE_ARENA)
            rc = read_arena(rec, dirfd(d), e->d_name, h);
    }
    free(h);
    closedir(d);
    return rc;
}
