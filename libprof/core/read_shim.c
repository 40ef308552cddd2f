/* read_shim.c: reads the shim's process records (RUNDIR/proc/PID-START.rec, format/shm.h), checking each before it is trusted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/read.h"
#include "core/run.h"
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

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Copy the slots of arr[0..n) that keep(slot) accepts into a new array. */
#define COPY_SLOTS(dst, ndst, arr, n, keep)                                   \
    do {                                                                      \
        (dst) = calloc((n) ? (n) : 1, sizeof *(dst));                         \
        if (!(dst))                                                           \
            return PROF_ENOMEM;                                               \
        for (size_t i_ = 0; i_ < (size_t)(n); i_++) {                         \
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

/* The header's figures and the slots in use of one checked record. */
static int decode(struct prof_rec_image *im, const struct prof_shm_header *h, const char *fname)
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
    uint32_t nt = h->nthreads < PROF_SHM_MAX_THREADS ? h->nthreads : PROF_SHM_MAX_THREADS;
    COPY_SLOTS(im->threads, im->nthreads, h->threads, nt, slot->state != PROF_THREAD_FREE && slot->tid > 0);
    uint32_t nc = h->nchildren < PROF_SHM_MAX_CHILDREN ? h->nchildren : PROF_SHM_MAX_CHILDREN;
    COPY_SLOTS(im->children, im->nchildren, h->children, nc, slot->pid > 0);
    COPY_SLOTS(im->locks, im->nlocks, h->locks, PROF_SHM_MAX_LOCKS, slot->addr && slot->contended);
    COPY_SLOTS(im->stages, im->nstages, h->stages, PROF_SHM_MAX_STAGES, named(slot));
    return 0;
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
    if ((size_t)st.st_size < sizeof *h || read_full(fd, h, sizeof *h) != 0) {
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
        else
            prof_note(errors, "proc/%s: skipped: truncated (%lld of %zu bytes)", fname, (long long)st.st_size,
                      sizeof *h);
        close(fd);
        return 0;
    }
    close(fd);
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
    struct prof_rec_image *v = realloc(rec->images, (rec->nimages + 1) * sizeof *v);
    if (!v)
        return PROF_ENOMEM;
    rec->images = v;
    struct prof_rec_image *im = &rec->images[rec->nimages++];
    int rc = decode(im, h, fname);
    if (rc == 0 && h->dropped_threads)
        prof_note(errors, "%s: %u threads beyond the record's %d slots were not recorded", fname, h->dropped_threads,
                  PROF_SHM_MAX_THREADS);
    if (rc == 0 && h->nospace_drops)
        prof_note(errors, "%s: %llu threads, children, locks or stages were not recorded: no disk space for their slots",
                  fname, (unsigned long long)h->nospace_drops);
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
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".rec") != 0)
            continue;
        rc = read_record(rec, dirfd(d), e->d_name, h);
    }
    free(h);
    closedir(d);
    return rc;
}
