/* trim_shim.c: after a run, cuts the shim's records of ended images to what they used: files truncated, arenas packed (format/shm.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/read.h"
#include "prof.h"

/* Whether /proc/PID/maps maps the file named `fname` (its last path component), at file offset
 * `off` (any offset when off is -1). -1 when the maps cannot be read. */
static int maps_file(pid_t pid, const char *fname, long long off)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0, flen = strlen(fname);
    int mapped = 0;
    ssize_t n;
    while (!mapped && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        unsigned long long o;
        int at = 0;
        if (sscanf(line, "%*s %*s %llx %*s %*s %n", &o, &at) < 1 || !at)
            continue;
        /* "/dir/proc/<fname>", perhaps " (deleted)": the component must be the whole name. */
        const char *p = strstr(line + at, fname);
        for (; p && !mapped; p = strstr(p + 1, fname))
            mapped = p > line + at && p[-1] == '/' && (p[flen] == '\0' || p[flen] == ' ') &&
                     (off < 0 || o == (unsigned long long)off);
    }
    int err = ferror(f);
    free(line);
    fclose(f);
    return err ? -1 : mapped;
}

/*
 * Whether nothing will write a record again: its pid is gone (exited, or killed: a record is
 * written only by its own image, and only that image cuts chunks, so a vfork or raw-clone child
 * still sharing the mapping writes below ext_used), or its image ended by exec and no process
 * maps it any more (a failed exec takes the end back). A process still in its exit, a zombie, or
 * a daemon still running keeps it whole: a write past the end would SIGBUS it. Pids of another
 * pid namespace mean other processes here: such records are kept whole. `off`: the record's
 * offset in an arena, -1 for a file of its own.
 */
static int image_over(const struct prof_shm_header *h, const char *fname, long long off, uint64_t pidns)
{
    if (h->pid <= 0 || !h->pidns || h->pidns != pidns)
        return 0;
    if (kill(h->pid, 0) != 0 && errno == ESRCH)
        return 1;
    if (h->end_how != PROF_END_EXEC || !h->end_ns)
        return 0;
    return maps_file(h->pid, fname, off) == 0;
}

/* Cut one record to its header and the used part of its extension area, if its image is over. */
static void trim_one(int dirfd, const char *fname, uint64_t pidns)
{
    /* The header's first fields say all: the rest is not read. */
    struct prof_shm_header h;
    const size_t head = offsetof(struct prof_shm_header, exe);
    int fd = openat(dirfd, fname, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && prof_pread_full(fd, &h, head, 0) == 0 &&
        h.magic == PROF_SHM_MAGIC && h.version == PROF_SHM_VERSION && h.size == sizeof h && h.ext_used <= h.ext_bytes &&
        (uint64_t)st.st_size > h.size + h.ext_used && image_over(&h, fname, -1, pidns))
        (void)!ftruncate(fd, (off_t)(h.size + h.ext_used));
    close(fd);
}

#define COPY_BUF (1 << 16)

/* Copy len bytes at `from` of fd to `to` of out through buf (COPY_BUF bytes), data only: a hole of the source stays a hole. 0 or -1. */
static int copy_data(int fd, uint64_t from, int out, uint64_t to, uint64_t len, char *buf)
{
    uint64_t pos = from, end = from + len;
    while (pos < end) {
        off_t d = lseek(fd, (off_t)pos, SEEK_DATA), e;
        if (d < 0 && errno == ENXIO)
            return 0; /* holes to the end of the file */
        if (d < 0) {
            d = (off_t)pos; /* SEEK_DATA unknown here: copy it all */
            e = (off_t)end;
        } else if ((e = lseek(fd, d, SEEK_HOLE)) < 0) {
            e = (off_t)end;
        }
        if ((uint64_t)d >= end)
            return 0;
        if ((uint64_t)e > end)
            e = (off_t)end;
        for (uint64_t p = (uint64_t)d; p < (uint64_t)e;) {
            size_t n = (uint64_t)e - p < COPY_BUF ? (size_t)((uint64_t)e - p) : COPY_BUF;
            if (prof_pread_full(fd, buf, n, p) != 0 || pwrite(out, buf, n, (off_t)(to + (p - from))) != (ssize_t)n)
                return -1;
            p += n;
        }
        pos = (uint64_t)e;
    }
    return 0;
}

/*
 * Whether region i of a live arena is over: its record's image is over, or it was never filled
 * and the process that claimed it is gone. *len: the bytes to keep (0 for an empty region);
 * *unknown: set when the region does not name its claimer yet (claimed a moment ago, or by a
 * process that died before writing its pid).
 */
static int region_over(int fd, const char *fname, const struct prof_shm_arena *a, uint64_t fsize, uint64_t i,
                       uint64_t pidns, uint64_t *len, int *unknown)
{
    struct prof_shm_header h;
    const size_t head = offsetof(struct prof_shm_header, exe);
    uint64_t off = a->page + i * a->stride;
    *len = 0;
    if (off >= fsize || fsize - off < head || prof_pread_full(fd, &h, head, off) != 0 ||
        (h.magic != PROF_SHM_MAGIC && h.pid <= 0)) {
        *unknown = 1;
        return 1;
    }
    if (h.magic != PROF_SHM_MAGIC)
        return kill(h.pid, 0) != 0 && errno == ESRCH;
    if (h.version != PROF_SHM_VERSION || h.size != sizeof h || h.ext_used > h.ext_bytes ||
        h.size + h.ext_used > a->stride)
        return 0; /* not understood: kept as it is */
    *len = h.size + h.ext_used;
    return image_over(&h, fname, (long long)off, pidns);
}

/*
 * Whether any other process has the arena open or mapped: the kernel grants a write lease only
 * when none has (an image's mapping of its region holds the file open for writing until it is
 * unmapped), so a claimer between its claim and its first store, which the headers cannot show,
 * is seen too. 1 when the lease is held (the caller releases it), 0 when the arena is in use,
 * -1 when this file system or user cannot take leases. A lease break (a new opener) is signalled
 * with SIGURG, which is ignored unless handled: the opener waits until the lease is released.
 */
static int arena_lease(int fd)
{
    if (fcntl(fd, F_SETSIG, SIGURG) != 0)
        return -1;
    if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0)
        return 1;
    return errno == EAGAIN || errno == EBUSY ? 0 : -1;
}

/*
 * Pack a live arena whose images are all over into a new file (format/shm.h) and put it in the
 * arena's place: the records cut to what they used, holes kept, so the run directory's apparent
 * size is what was recorded, not a stride of 256 MiB per image. Left as it is when any image
 * may still write (a record not over, a claimer alive, or, where leases can be taken, any other
 * process with the arena open or mapped), or anything fails.
 */
static void pack_arena(int dirfd, const char *fname, uint64_t pidns)
{
    int fd = openat(dirfd, fname, O_RDWR | O_CLOEXEC | O_NOFOLLOW), out = -1;
    struct stat st;
    struct prof_shm_arena a;
    struct prof_shm_region *tab = NULL;
    char *buf = NULL;
    int leased = -1;
    char tmp[NAME_MAX + 16];
    snprintf(tmp, sizeof tmp, ".%s.pack", fname);
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || prof_pread_full(fd, &a, sizeof a, 0) != 0 ||
        a.magic != PROF_ARENA_MAGIC || a.version != PROF_SHM_VERSION || !a.stride || !prof_shm_arena_shape_ok(&a))
        goto done;
    uint64_t fsize = (uint64_t)st.st_size, claimed = a.next, n = claimed < a.capacity ? claimed : a.capacity;
    if (!(tab = calloc(n ? n : 1, sizeof *tab)))
        goto done;
    int unknown = 0;
    for (uint64_t i = 0; i < n; i++)
        if (!region_over(fd, fname, &a, fsize, i, pidns, &tab[i].len, &unknown))
            goto done;
    if (unknown) {
        /* A region claimed a moment ago names its claimer within microseconds: wait far longer,
         * once; a region that still names none is one whose claimer died first. */
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        if (fstat(fd, &st) != 0)
            goto done;
        fsize = (uint64_t)st.st_size;
        for (uint64_t i = 0; i < n; i++) {
            int again = 0;
            if (!tab[i].len && (!region_over(fd, fname, &a, fsize, i, pidns, &tab[i].len, &again) || tab[i].len))
                goto done;
        }
    }
    if ((leased = arena_lease(fd)) == 0)
        goto done;
    unlinkat(dirfd, tmp, 0);
    if (!(buf = malloc(COPY_BUF)) || (out = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
        goto done;
    uint64_t at = (sizeof a + n * sizeof *tab + a.page - 1) / a.page * a.page;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t src = a.page + i * a.stride;
        tab[i].off = tab[i].len ? at : 0;
        if (tab[i].len && copy_data(fd, src, out, at, tab[i].len, buf) != 0)
            goto fail;
        at += (tab[i].len + a.page - 1) / a.page * a.page;
    }
    struct prof_shm_arena p = a;
    p.stride = 0;
    p.capacity = 0;
    p.next = claimed;
    p.nregions = n;
    p.hint = 0;
    p.closed = 1;
    if (ftruncate(out, (off_t)at) != 0 || pwrite(out, tab, n * sizeof *tab, sizeof p) != (ssize_t)(n * sizeof *tab) ||
        pwrite(out, &p, sizeof p, 0) != (ssize_t)sizeof p)
        goto fail;
    /* Close the arena, then look at next once more: a claim made after the first look is either
     * seen here (the pack is given up) or sees `closed` and moves to the next arena. */
    struct prof_shm_arena *live = mmap(NULL, a.page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (live == MAP_FAILED)
        goto fail;
    __atomic_store_n(&live->closed, 1, __ATOMIC_SEQ_CST);
    int same = __atomic_load_n(&live->next, __ATOMIC_SEQ_CST) == claimed;
    munmap(live, a.page);
    if (same && renameat(dirfd, tmp, dirfd, fname) == 0)
        goto done;
fail:
    unlinkat(dirfd, tmp, 0);
done:
    if (leased == 1)
        fcntl(fd, F_SETLEASE, F_UNLCK);
    if (out >= 0)
        close(out);
    free(buf);
    free(tab);
    close(fd);
}

int prof_shim_trim(const char *rundir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/proc", rundir);
    struct stat ns;
    if (stat("/proc/self/ns/pid", &ns) != 0)
        return 0; /* whose pids the records name is unknown: none is trimmed */
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : prof_err_from_errno(errno);
    struct dirent *e;
    while ((e = readdir(d))) {
        int kind = prof_shim_file_kind(e->d_name);
        if (kind == PROF_SHIM_FILE_REC)
            trim_one(dirfd(d), e->d_name, (uint64_t)ns.st_ino);
        else if (kind == PROF_SHIM_FILE_ARENA)
            pack_arena(dirfd(d), e->d_name, (uint64_t)ns.st_ino);
    }
    closedir(d);
    return 0;
}
