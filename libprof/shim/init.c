/* init.c: shim start-up: real symbols, configuration from the environment, the process record file, fork. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "format/rundir.h"
#include "shim.h"

struct shim_real shim_real;
int shim_resolved;
struct prof_shm_header *shim_hdr;
/* Beside shim_hdr: a fork child writes both, and each page it writes costs it a copy-on-write fault. */
struct shim_fork_state shim_fork_st;
int shim_active;
int shim_python;
char shim_dir[SHIM_PATH_MAX];
char shim_path[SHIM_PATH_MAX];
long shim_clk_tck; /* sysconf(_SC_CLK_TCK), read when first needed */
pthread_key_t shim_key;
static unsigned char slot_final_fixed[PROF_SHM_MAX_THREADS];
struct shim_parr shim_slot_final = {sizeof(unsigned char), slot_final_fixed, {0}};
SHIM_TLS struct prof_shm_thread *shim_tls_slot;

/*
 * Recursion guards are per thread, and nothing here takes a lock: dlsym may
 * call malloc, a preloaded allocator may call pthread_mutex_lock, which lands
 * back here. The reentered call must fall through (the lock interposers have
 * malloc-free fallbacks), never wait for the outer one.
 */
static SHIM_TLS int tls_in_resolve;
static SHIM_TLS int tls_in_init;
static int init_state; /* 0 not started, 1 running, 2 done */

void shim_resolve(void)
{
    if (__atomic_load_n(&shim_resolved, __ATOMIC_ACQUIRE) || tls_in_resolve)
        return;
    tls_in_resolve = 1;
    struct shim_real r;
#define NEXT(field, name) *(void **)&r.field = dlsym(RTLD_NEXT, name)
    NEXT(pthread_create, "pthread_create");
    NEXT(mutex_lock, "pthread_mutex_lock");
    NEXT(mutex_timedlock, "pthread_mutex_timedlock");
    NEXT(sem_wait, "sem_wait");
    NEXT(sem_timedwait, "sem_timedwait");
    NEXT(sem_clockwait, "sem_clockwait");
    NEXT(sem_trywait, "sem_trywait");
    NEXT(sem_post, "sem_post");
    /* Plain dlsym hands back the pre-2.3.2 condvar ABI, which is not the one programs link against. */
    *(void **)&r.cond_wait = dlvsym(RTLD_NEXT, "pthread_cond_wait", "GLIBC_2.3.2");
    *(void **)&r.cond_timedwait = dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
    if (!r.cond_wait)
        NEXT(cond_wait, "pthread_cond_wait");
    if (!r.cond_timedwait)
        NEXT(cond_timedwait, "pthread_cond_timedwait");
    NEXT(cond_clockwait, "pthread_cond_clockwait");
    NEXT(barrier_wait, "pthread_barrier_wait");
    NEXT(exit, "exit");
    NEXT(uexit, "_exit");
    NEXT(uExit, "_Exit");
    NEXT(execve, "execve");
    NEXT(execvpe, "execvpe");
    NEXT(fexecve, "fexecve");
    NEXT(execveat, "execveat");
    NEXT(posix_spawn, "posix_spawn");
    NEXT(posix_spawnp, "posix_spawnp");
    NEXT(wait, "wait");
    NEXT(waitpid, "waitpid");
    NEXT(wait3, "wait3");
    NEXT(wait4, "wait4");
    NEXT(waitid, "waitid");
    NEXT(sigsuspend, "sigsuspend");
    NEXT(pause, "pause");
    NEXT(sigwaitinfo, "sigwaitinfo");
    NEXT(sigtimedwait, "sigtimedwait");
    NEXT(sigwait, "sigwait");
    NEXT(libc_start_main, "__libc_start_main");
    NEXT(mutex_unlock, "pthread_mutex_unlock");
    NEXT(rw_rdlock, "pthread_rwlock_rdlock");
    NEXT(rw_wrlock, "pthread_rwlock_wrlock");
    NEXT(rw_timedrdlock, "pthread_rwlock_timedrdlock");
    NEXT(rw_timedwrlock, "pthread_rwlock_timedwrlock");
    NEXT(rw_clockrdlock, "pthread_rwlock_clockrdlock");
    NEXT(rw_clockwrlock, "pthread_rwlock_clockwrlock");
    NEXT(spin_lock, "pthread_spin_lock");
    NEXT(join, "pthread_join");
    NEXT(timedjoin, "pthread_timedjoin_np");
    NEXT(clockjoin, "pthread_clockjoin_np");
    NEXT(read, "read");
    NEXT(write, "write");
    NEXT(readv, "readv");
    NEXT(writev, "writev");
    NEXT(pread, "pread64");
    NEXT(pwrite, "pwrite64");
    NEXT(preadv, "preadv64");
    NEXT(pwritev, "pwritev64");
    NEXT(preadv2, "preadv64v2");
    NEXT(pwritev2, "pwritev64v2");
    NEXT(send, "send");
    NEXT(recv, "recv");
    NEXT(sendto, "sendto");
    NEXT(recvfrom, "recvfrom");
    NEXT(sendmsg, "sendmsg");
    NEXT(recvmsg, "recvmsg");
    NEXT(splice, "splice");
    NEXT(connect, "connect");
    NEXT(accept, "accept");
    NEXT(accept4, "accept4");
    NEXT(poll, "poll");
    NEXT(ppoll, "ppoll");
    NEXT(select, "select");
    NEXT(pselect, "pselect");
    NEXT(epoll_wait, "epoll_wait");
    NEXT(epoll_pwait, "epoll_pwait");
    NEXT(close, "close");
    NEXT(close_range, "close_range");
    NEXT(closefrom, "closefrom");
    NEXT(dup, "dup");
    NEXT(dup2, "dup2");
    NEXT(dup3, "dup3");
    NEXT(fcntl, "fcntl");
    NEXT(socket, "socket");
    NEXT(socketpair, "socketpair");
    NEXT(pipe, "pipe");
    NEXT(pipe2, "pipe2");
    NEXT(open, "open");
    NEXT(openat, "openat");
    NEXT(nanosleep, "nanosleep");
    NEXT(clock_nanosleep, "clock_nanosleep");
    NEXT(usleep, "usleep");
    NEXT(sleep, "sleep");
#undef NEXT
    /* Racing first callers store identical pointers; the flag publishes them. */
    shim_real = r;
    __atomic_store_n(&shim_resolved, 1, __ATOMIC_RELEASE);
    tls_in_resolve = 0;
}

static void shim_thread_dtor(void *unused);

/*
 * The record file is sparse: a page gets its disk block when the shim first needs to write
 * it, by MADV_POPULATE_WRITE, which fails with an error where a write would raise SIGBUS (a
 * full disk). A short image so writes a few pages, not the whole record (445 KB each, 991 MB
 * for an xargs fan-out of 1,150 images), nor its extension area. Every first write into a
 * region goes through shim_record_room; the bits say which pages of the current record already
 * have their block: a static array when the record is the header alone, else one mmap'd with
 * the record, sized to its mapping (8 KB for 256 MiB).
 */
#define ROOM_PAGES_MAX 512
static uint64_t room_bits_fixed[ROOM_PAGES_MAX / 64];
static uint64_t *room_bits = room_bits_fixed;
static size_t room_bits_bytes;  /* of an mmap'd room_bits; 0 while it is room_bits_fixed */
static size_t room_pages = ROOM_PAGES_MAX;
static size_t room_len;         /* bytes of the current record's mapping */
static const struct prof_shm_header *room_hdr;
static int room_all;      /* the whole record is allocated: anonymous memory, or fallocate'd */
static size_t room_page = 4096;

int shim_record_room(const void *p, size_t len)
{
    const struct prof_shm_header *h = __atomic_load_n(&room_hdr, __ATOMIC_ACQUIRE);
    if (room_all || !h)
        return 0;
    uintptr_t base = (uintptr_t)h, a = (uintptr_t)p;
    if (a < base || a + len > base + room_len || !len)
        return 0;   /* not in the record (another image's old mapping): nothing to reserve here */
    size_t first = (a - base) / room_page, last = (a + len - 1 - base) / room_page, i;
    for (i = first; i <= last && i < room_pages; i++)
        if (!(__atomic_load_n(&room_bits[i / 64], __ATOMIC_ACQUIRE) & (1ULL << (i % 64))))
            break;
    if (i > last)
        return 0;
    int saved = errno;
    int rc = madvise((void *)(base + first * room_page), (last - first + 1) * room_page, MADV_POPULATE_WRITE);
    errno = saved;
    if (rc != 0) {
        /* Counted in the header, once the header's own page has its block (not while the record is being set up). */
        if (__atomic_load_n(&room_bits[0], __ATOMIC_ACQUIRE) & 1)
            __atomic_fetch_add(&((struct prof_shm_header *)h)->nospace_drops, 1, __ATOMIC_RELAXED);
        return -1;
    }
    for (i = first; i <= last && i < room_pages; i++)
        __atomic_fetch_or(&room_bits[i / 64], 1ULL << (i % 64), __ATOMIC_RELEASE);
    return 0;
}

/* Forget the previous record's page bits (a fork child's inherited copy): no record is current. */
static void shim_room_reset(void)
{
    __atomic_store_n(&room_hdr, NULL, __ATOMIC_RELEASE);
    if (room_bits_bytes)
        munmap(room_bits, room_bits_bytes);
    room_bits = room_bits_fixed;
    room_bits_bytes = 0;
    room_pages = ROOM_PAGES_MAX;
    memset(room_bits_fixed, 0, sizeof room_bits_fixed);
    room_all = 0;
    room_len = 0;
}

/* Bits for a mapping of `size` bytes: 0, or -1 when there is no memory for them. */
static int shim_room_size(size_t size)
{
    size_t pages = (size + room_page - 1) / room_page;
    if (pages <= ROOM_PAGES_MAX)
        return 0;
    size_t bytes = (pages + 63) / 64 * sizeof(uint64_t);
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    room_bits = m;
    room_bits_bytes = bytes;
    room_pages = pages;
    return 0;
}

/* POOLPROF_EXT_BYTES, read once at start-up (a fork child's record is sized as its parent's). */
static uint64_t ext_env_bytes = PROF_SHM_EXT_DEFAULT;
static uint32_t ext_env_why = PROF_EXT_DEFAULT;

static int arena_off; /* POOLPROF_ARENA=0: a file per image, as before arenas (for A/B measurements) */

static void shim_ext_env(void)
{
    const char *a = getenv(PROF_ENV_ARENA);
    arena_off = a && a[0] == '0' && !a[1];
    const char *v = getenv(PROF_ENV_EXT);
    if (!v || *v < '0' || *v > '9')
        return;
    const char *end;
    uint64_t n = shim_parse_u64(v, &end);
    if (*end)
        return;
    ext_env_bytes = n < PROF_SHM_EXT_MAX ? n : PROF_SHM_EXT_MAX;
    ext_env_why = PROF_EXT_ENV;
}

/*
 * The extension area for a new record: POOLPROF_EXT_BYTES or the default, at most 1/16 of the
 * address space a finite RLIMIT_AS leaves (the mapping must not make a `ulimit -v` target's own
 * allocations fail), whole pages.
 */
static uint64_t shim_ext_bytes(uint32_t *why)
{
    uint64_t ext = ext_env_bytes;
    *why = ext_env_why;
    struct rlimit rl;
    if (ext && getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        char buf[4096];
        uint64_t vm = 0;
        if (shim_read_file("/proc/self/status", buf, sizeof buf) > 0)
            vm = shim_status_field(buf, "VmSize") * 1024u;
        uint64_t room = (uint64_t)rl.rlim_cur > vm ? ((uint64_t)rl.rlim_cur - vm) / 16 : 0;
        if (!vm)
            room = 0; /* its use unknown: no headroom to speak of */
        if (ext > room) {
            ext = room;
            *why = PROF_EXT_RLIMIT;
        }
    }
    return ext / room_page * room_page;
}

/* Block file systems whose holes read as zeros without allocating: ext4 (and ext2/3), XFS, Btrfs. */
static int shim_sparse_fs(int fd)
{
    struct statfs st;
    if (fstatfs(fd, &st) != 0)
        return 0;
    switch ((unsigned long)st.f_type) {
    case 0xEF53UL:      /* EXT4_SUPER_MAGIC */
    case 0x58465342UL:  /* XFS_SUPER_MAGIC */
    case 0x9123683EUL:  /* BTRFS_SUPER_MAGIC */
        return 1;
    default:
        return 0;
    }
}

/* The pages every record writes from its start: the header with exe and argv, the stage counters, the main thread's slot. */
static int shim_record_room_first(struct prof_shm_header *h)
{
    return shim_record_room(h, offsetof(struct prof_shm_header, threads) + sizeof h->threads[0]) == 0;
}

/* Where a record goes: a region of an arena (stride: the region's bytes), or a file of its own (stride 0). */
struct shim_place {
    int fd;
    uint64_t off;
    uint64_t stride;
    uint64_t grow_to; /* an arena: the end of the run of regions this claim grows the file to */
};

/*
 * Give the file room for a record of `size` bytes at the place: a file of its own is cut to it;
 * an arena is grown by an allocation of the page before grow_to (the whole region when `whole`),
 * which never shrinks the file as an ftruncate racing another image's could. Where the file
 * already reaches past the region (a claim before this one grew it for a run of regions), there
 * is nothing to do: one image in SHIM_ARENA_GROW pays for the allocation, the others for an fstat.
 */
static int shim_record_grow(const struct shim_place *pl, size_t size, int whole)
{
    if (!pl->stride)
        return ftruncate(pl->fd, (off_t)size);
    if (whole)
        return fallocate(pl->fd, 0, (off_t)pl->off, (off_t)pl->stride);
    struct stat st;
    if (fstat(pl->fd, &st) == 0 && (uint64_t)st.st_size >= pl->off + pl->stride)
        return 0;
    return fallocate(pl->fd, 0, (off_t)(pl->grow_to - room_page), (off_t)room_page);
}

/* Map `size` bytes at the place shared, made current for shim_record_room; MAP_FAILED if not. */
static void *shim_record_mmap(const struct shim_place *pl, size_t size, int whole)
{
    void *map = MAP_FAILED;
    if (shim_record_grow(pl, size, whole) == 0)
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, pl->fd, (off_t)pl->off);
    if (map != MAP_FAILED) {
        /* No read-around: the shim touches only the pages it reserves, and on a large sparse file
         * (ext4 with large folios, Linux 6.x) the first fault otherwise fills megabytes of holes
         * with zeros, 1.4 ms per record instead of 10 us. */
        int saved = errno;
        madvise(map, size, MADV_RANDOM);
        errno = saved;
        room_len = size;
        __atomic_store_n(&room_hdr, map, __ATOMIC_RELEASE);
    }
    return map;
}

/*
 * The record, mapped: sparse with its extension area where the file system and kernel allow it,
 * else the header alone, allocated whole. Its header's first pages have their blocks.
 * MAP_FAILED when it cannot be made (the caller tries a file of its own, then memory).
 */
static void *shim_record_file(const struct shim_place *pl, uint64_t *ext, uint32_t *why)
{
    const size_t hsize = sizeof(struct prof_shm_header);
    /* Only where reading a hole costs no block (its page comes zero-filled from the page
     * cache) may the shim scan slots it never wrote: on tmpfs a read of a hole allocates,
     * and on a full one raises SIGBUS. Elsewhere the whole record up front, as before. */
    int whole = !shim_sparse_fs(pl->fd), grown_whole = whole;
    /* An arena's region holds what its stride leaves after the header. */
    uint64_t fit = pl->stride > hsize ? (pl->stride - hsize) / room_page * room_page : 0;
    if (pl->stride && *ext > fit)
        *ext = fit;
    if (whole || (*ext && shim_room_size(hsize + *ext) != 0)) {
        *why = whole ? PROF_EXT_WHOLE : PROF_EXT_NOMEM;
        *ext = 0;
    }
    size_t size = hsize + *ext;
    void *map = shim_record_mmap(pl, size, whole);
    if (map == MAP_FAILED)
        return map;
    if (!whole) {
        int saved = errno;
        int probe = madvise(map, room_page, MADV_POPULATE_WRITE);
        /* A kernel before 5.14 has no MADV_POPULATE_WRITE: the header alone, allocated whole. */
        whole = probe != 0 && errno == EINVAL;
        errno = saved;
        if (probe == 0)
            __atomic_fetch_or(&room_bits[0], 1ULL, __ATOMIC_RELEASE); /* the first page has its block */
        if (whole && *ext) {
            munmap(map, size);
            shim_room_reset();
            *ext = 0;
            *why = PROF_EXT_WHOLE;
            size = hsize;
            if ((map = shim_record_mmap(pl, size, 0)) == MAP_FAILED)
                return map;
        }
    }
    if (whole && pl->stride)
        room_all = grown_whole || fallocate(pl->fd, 0, (off_t)pl->off, (off_t)size) == 0;
    else if (whole)
        room_all = posix_fallocate(pl->fd, 0, (off_t)size) == 0;
    if ((whole && !room_all) || (!whole && !shim_record_room_first(map))) {
        munmap(map, size);
        return MAP_FAILED;
    }
    return map;
}

/* RUNDIR/proc/<k>.arena, or with `tmp` the name an image makes it under before linking it there. */
static void shim_arena_path(char *path, unsigned k, pid_t tmp)
{
    char *p = shim_stpcpy(shim_stpcpy(path, shim_dir), tmp ? "/proc/." : "/proc/");
    p = shim_stpcpy(shim_fmt_u64(p, k), ".arena");
    if (tmp)
        shim_fmt_u64(shim_stpcpy(p, "."), (uint64_t)tmp);
}

/*
 * Open arena k, made now if it does not exist: filled under a name of this image's own, then
 * linked under the arena's, so no image ever sees an arena half made (a link that finds one
 * made by another image first opens that one). Its stride is this image's extension area as
 * POOLPROF_EXT_BYTES (or the default) says, and the header alone where records are allocated
 * whole. A descriptor, or -1.
 */
static int shim_arena_open(unsigned k)
{
    char path[SHIM_PATH_MAX + 64], tmp[SHIM_PATH_MAX + 96];
    shim_arena_path(path, k, 0);
    int fd = shim_sys_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    shim_arena_path(tmp, k, getpid());
    int t = shim_sys_open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (t < 0)
        return -1;
    const size_t hsize = sizeof(struct prof_shm_header);
    uint64_t ext = shim_sparse_fs(t) ? ext_env_bytes / room_page * room_page : 0;
    struct prof_shm_arena a = {
        .magic = PROF_ARENA_MAGIC,
        .version = PROF_SHM_VERSION,
        .page = (uint32_t)room_page,
        .stride = (hsize + ext + room_page - 1) / room_page * room_page,
    };
    a.capacity = PROF_ARENA_BYTES / a.stride ? PROF_ARENA_BYTES / a.stride : 1;
    /* Written, not stored through a mapping: on a full disk the write fails where a store would
     * raise SIGBUS. The whole page, so every block of it is allocated (a file system of 1 KiB
     * blocks has four a page) before images store into it through their mappings. */
    static const char zeros[4096];
    /* Arenas grow by fallocate: where the file system has none (NFS before 4.2, some FUSE), the
     * arena says so (PROF_ARENA_NONE) and every image makes a file of its own, rather than each
     * claiming a region it cannot use. */
    if (fallocate(t, 0, 0, (off_t)room_page) != 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
        a.stride = a.capacity = 0;
        a.closed = PROF_ARENA_NONE;
    }
    int ok = syscall(SYS_pwrite64, t, &a, sizeof a, 0) == (long)sizeof a;
    for (size_t at = sizeof a; ok && at < room_page;) {
        size_t n = room_page - at < sizeof zeros ? room_page - at : sizeof zeros;
        ok = syscall(SYS_pwrite64, t, zeros, n, (off_t)at) == (long)n;
        at += n;
    }
    ok = ok && (link(tmp, path) == 0 || errno == EEXIST);
    unlink(tmp);
    shim_sys_close(t);
    return ok ? shim_sys_open(path, O_RDWR | O_CLOEXEC, 0) : -1;
}

#define SHIM_ARENA_GROW 64

/* The arena this image tries first: the one it (or the image it forked from) last claimed in. */
static unsigned arena_first;

/*
 * Claim a region of the first arena with room and map this image's record there; MAP_FAILED
 * when no arena can be used (the caller makes a file of its own). A region claimed but not
 * filled (no room for its pages) stays empty, which the reader names.
 */
static void *shim_arena_map(uint64_t *ext, uint32_t *why)
{
    struct prof_shm_arena *first = MAP_FAILED;
    void *map = MAP_FAILED;
    for (unsigned k = arena_first; k < PROF_ARENA_MAX; k++) {
        int fd = shim_arena_open(k);
        if (fd < 0)
            break;
        struct prof_shm_arena *a = mmap(NULL, room_page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (a == MAP_FAILED) {
            shim_sys_close(fd);
            break;
        }
        /* Another poolprof's arena (or another page size), or one saying this file system cannot
         * hold arenas: not this image's to write. A packed one (stride 0) is full. */
        if (a->magic != PROF_ARENA_MAGIC || a->version != PROF_SHM_VERSION || a->page != room_page ||
            !prof_shm_arena_shape_ok(a) || (!a->stride && a->closed == PROF_ARENA_NONE)) {
            munmap(a, room_page);
            shim_sys_close(fd);
            break;
        }
        uint64_t stride = a->stride, cap = stride ? a->capacity : 0;
        uint64_t idx = cap ? __atomic_fetch_add(&a->next, 1, __ATOMIC_SEQ_CST) : cap;
        /* Closed by the packer: its last look at next may have missed this claim. */
        if (idx < cap && __atomic_load_n(&a->closed, __ATOMIC_SEQ_CST))
            idx = cap;
        if (idx >= cap) {
            /* Full. Arena 0 keeps a hint of the newest one, so a new image does not try each in turn. */
            uint64_t hint = __atomic_load_n(&a->hint, __ATOMIC_ACQUIRE);
            if (k == 0) {
                first = a;
                if (hint > k + 1 && hint < PROF_ARENA_MAX)
                    k = (unsigned)hint - 1;
            } else {
                munmap(a, room_page);
            }
            shim_sys_close(fd);
            continue;
        }
        if (a != first)
            munmap(a, room_page);
        if (first != MAP_FAILED) {
            uint64_t h = __atomic_load_n(&first->hint, __ATOMIC_RELAXED);
            while (h < k && !__atomic_compare_exchange_n(&first->hint, &h, k, 1, __ATOMIC_ACQ_REL,
                                                         __ATOMIC_RELAXED))
                ;
        }
        arena_first = k;
        /* The file grows a run of SHIM_ARENA_GROW regions at a time (never past the arena's capacity). */
        uint64_t run_end = (idx / SHIM_ARENA_GROW + 1) * SHIM_ARENA_GROW;
        struct shim_place pl = {fd, room_page + idx * stride, stride,
                                room_page + (run_end < cap ? run_end : cap) * stride};
        map = shim_record_file(&pl, ext, why);
        shim_sys_close(fd);
        break;
    }
    if (first != MAP_FAILED)
        munmap(first, room_page);
    return map;
}

struct prof_shm_header *shim_record_map(pid_t pid, uint64_t start_ns)
{
    void *map = MAP_FAILED;
    int pg = getpagesize(); /* the loader's own figure: sysconf would fault in a page of libc's data */
    if (pg > 0)
        room_page = (size_t)pg;
    shim_room_reset();
    uint32_t why;
    uint64_t ext = shim_ext_bytes(&why);
    int saved = errno;
    if (!arena_off)
        map = shim_arena_map(&ext, &why);
    if (map == MAP_FAILED) {
        char path[SHIM_PATH_MAX + 64];
        char *p = shim_stpcpy(path, shim_dir);
        p = shim_stpcpy(p, "/proc/");
        p = shim_fmt_u64(p, (uint64_t)pid);
        p = shim_stpcpy(p, "-");
        p = shim_fmt_u64(p, start_ns);
        shim_stpcpy(p, ".rec");
        shim_room_reset();
        ext = shim_ext_bytes(&why);
        int fd = shim_sys_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            struct shim_place pl = {fd, 0, 0, 0};
            map = shim_record_file(&pl, &ext, &why);
            shim_sys_close(fd);
            if (map == MAP_FAILED)
                unlink(path);
        }
    }
    errno = saved;
    uint32_t flags = 0;
    if (map == MAP_FAILED) {
        shim_room_reset();
        ext = 0;
        map = mmap(NULL, sizeof(struct prof_shm_header), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED)
            return NULL;
        room_len = sizeof(struct prof_shm_header);
        room_all = 1;
        flags = PROF_PROC_ANON;
    }
    struct prof_shm_header *h = map;
    h->version = PROF_SHM_VERSION;
    h->size = (uint32_t)sizeof *h;
    h->pid = pid;
    h->flags = flags;
    h->start_ns = start_ns;
    /* The wall clock when the image began: a fork child's record is made after its start. */
    uint64_t rt = shim_clock_ns(CLOCK_REALTIME), mono = shim_mono_ns();
    h->start_realtime_ns = mono > start_ns && rt > mono - start_ns ? rt - (mono - start_ns) : rt;
    h->ext_bytes = ext;
    h->ext_why = why;
    struct stat ns;
    saved = errno;
    h->pidns = stat("/proc/self/ns/pid", &ns) == 0 ? (uint64_t)ns.st_ino : 0;
    errno = saved;
    return h;
}

/* The whole mapping of record h (header and extension area), for munmap. */
static size_t shim_record_len(const struct prof_shm_header *h)
{
    return sizeof *h + (size_t)h->ext_bytes;
}

static void shim_claim_main(struct prof_shm_header *h, uint64_t now)
{
    struct prof_shm_thread *t = &h->threads[0];
    t->tid = gettid();
    t->start_ns = now;
    h->nthreads = 1;
    __atomic_store_n(&t->state, PROF_THREAD_RUNNING, __ATOMIC_RELEASE);
    shim_tls_slot = t;
}

/*
 * A fork child's record is made when the child first needs one, not at fork: most children of a
 * shell, make or xargs only move descriptors and exec, and the exec'd image's record stands for the
 * process from then on (its CPU clock and rusage count the child's time before the exec too). Making
 * a record at every fork cost a fork-and-exec child about 200 us here: the arena claim, two pages
 * populated, and copy-on-write faults on the shim's state. Until then the child records nothing
 * (shim_hdr and its slot are NULL); every interposer that would record asks shim_self(), which
 * makes the record first, as do the exit paths, wait*() and fork itself. A SIGKILLed child loses
 * nothing it stored, as it stored nothing; its status is its reaper's.
 */

/*
 * The child of fork(): it must stop writing its parent's (shared) record before fork() returns.
 * Runs between fork and the child's code: no malloc, no stdio, and as few stores as can be (each
 * page of the shim's state it writes is a copy-on-write fault).
 */
static void shim_atfork_child(void)
{
    struct prof_shm_header *old = shim_hdr;
    if (!old)
        return;
    struct prof_shm_thread *oldt = shim_tls_slot;
    shim_fork_st.old = old;
    shim_fork_st.oldt = oldt;
    /* Read from the parent's record only where stages were used: a page of it not mapped in the
     * child yet costs a fault. */
    shim_fork_st.depth = oldt && shim_fork_st.stages_used ? oldt->stage_depth : 0;
    shim_fork_st.pid = getpid();
    shim_fork_st.ns = shim_mono_ns();
    shim_lock_fork_child_fast();
    shim_tls_slot = NULL;
    __atomic_store_n(&shim_hdr, NULL, __ATOMIC_RELEASE);
    __atomic_store_n(&shim_fork_st.pending, 1, __ATOMIC_RELEASE);
}

struct prof_shm_thread *shim_fork_record(void)
{
    int expected = 1;
    if (getpid() != shim_fork_st.pid ||
        !__atomic_compare_exchange_n(&shim_fork_st.pending, &expected, 2, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return shim_tls_slot; /* a vfork child, or a signal handler's call while the record is made */
    int saved = errno;
    struct prof_shm_header *old = shim_fork_st.old;
    uint64_t now = shim_fork_st.ns;
    struct prof_shm_header *h = shim_record_map(shim_fork_st.pid, now);
    if (h) {
        h->ppid = old->pid;
        h->flags |= PROF_PROC_FORKED | (old->flags & PROF_PROC_PYTHON);
        memcpy(h->exe, old->exe, sizeof h->exe);
        memcpy(h->argv, old->argv, sizeof h->argv);
        h->argc = old->argc;
        h->gil_mutex = old->gil_mutex; /* the same address space: the same interpreter */
        h->gil_switch_mutex = old->gil_switch_mutex;
        shim_proc_end_reset();
        shim_claim_main(h, now);
        shim_lock_fork_child();
        shim_sem_fork_child();
        shim_stage_fork(old, shim_fork_st.oldt, shim_fork_st.depth, h, shim_tls_slot, now);
        shim_slots_fork_child();
        __atomic_store_n(&h->magic, PROF_SHM_MAGIC, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&shim_hdr, h, __ATOMIC_RELEASE);
    munmap(old, shim_record_len(old));
    /* The thread-end destructor needs a non-NULL value; it reads shim_tls_slot, never this. */
    if (h)
        pthread_setspecific(shim_key, h);
    __atomic_store_n(&shim_fork_st.pending, 0, __ATOMIC_RELEASE);
    errno = saved;
    return shim_tls_slot;
}

/* A child that forks before it made its record makes it now: its own children's records name it. */
static void shim_atfork_prepare(void)
{
    if (SHIM_UNLIKELY(__atomic_load_n(&shim_fork_st.pending, __ATOMIC_ACQUIRE)))
        shim_fork_record();
}

/* The arguments the dynamic loader passes every constructor (glibc does): the image's argv as
 * exec'd, which /proc/self/cmdline would read back (at ~12 us for a new process's first look). */
static int ctor_argc;
static char **ctor_argv;

/* argv as /proc/self/cmdline has it: NUL-separated, at most cap - 1 bytes; its length. */
static ssize_t shim_ctor_cmdline(char *buf, size_t cap)
{
    size_t len = 0;
    for (int i = 0; i < ctor_argc && ctor_argv[i]; i++) {
        size_t n = strlen(ctor_argv[i]) + 1;
        if (len + n > cap - 1)
            n = cap - 1 - len;
        memcpy(buf + len, ctor_argv[i], n);
        len += n;
        if (len >= cap - 1)
            break;
    }
    return (ssize_t)len;
}

static void shim_fill_identity(struct prof_shm_header *h)
{
    ssize_t n = readlink("/proc/self/exe", h->exe, sizeof h->exe - 1);
    h->exe[n > 0 ? n : 0] = '\0';

    char buf[PROF_SHM_ARGV_BYTES];
    /* Initialised from an interposer before the constructor ran (another library's constructor
     * took a lock): /proc has the same bytes. */
    ssize_t len = ctor_argv ? shim_ctor_cmdline(buf, sizeof buf) : shim_read_file("/proc/self/cmdline", buf, sizeof buf);
    if (len < 0)
        len = 0;
    /* shim_read_file keeps one byte for a NUL: a full buffer means truncated, cut at the last NUL. */
    if ((size_t)len >= sizeof buf - 1) {
        while (len > 0 && buf[len - 1] != '\0')
            len--;
    }
    uint32_t argc = 0;
    for (ssize_t i = 0; i < len; i++)
        argc += buf[i] == '\0';
    memcpy(h->argv, buf, (size_t)len);
    h->argc = argc;
}

static int shim_copy_env(char *dst, size_t cap, const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v || strlen(v) >= cap)
        return -1;
    strcpy(dst, v);
    return 0;
}

/*
 * CPython's runtime state, which every CPython image exports (from the executable or libpython):
 * a weak reference the loader binds at start-up (-z now), NULL where no object of the program
 * defines it. dlsym(RTLD_DEFAULT) would say the same, but a failed lookup formats a dlerror()
 * message, a malloc and a gettext lookup in every image that is not Python.
 */
extern const char _PyRuntime __attribute__((weak, visibility("default")));

void shim_init(void)
{
    if (SHIM_LIKELY(__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == 2))
        return;
    shim_resolve();
    if (tls_in_init || tls_in_resolve)
        return;
    int expected = 0;
    if (!__atomic_compare_exchange_n(&init_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return; /* another thread is on it; meanwhile this one passes through */
    tls_in_init = 1;
    int saved = errno;

    if (shim_copy_env(shim_dir, sizeof shim_dir - 64, PROF_ENV_DIR) == 0) {
        shim_ext_env();
        if (shim_copy_env(shim_path, sizeof shim_path, PROF_ENV_SHIM) != 0) {
            Dl_info info;
            if (dladdr((void *)shim_init, &info) && info.dli_fname && info.dli_fname[0] == '/' &&
                strlen(info.dli_fname) < sizeof shim_path)
                strcpy(shim_path, info.dli_fname);
        }
        if (shim_path[0]) {
            shim_exec_prepare();
            shim_active = 1;
        }
    }
    if (shim_active) {
        /* The TSC stands in for CLOCK_MONOTONIC only where the kernel keeps that clock on it:
         * clock.c asks which clock that is when a thread's first calibration ends. */
        const char *tsc_env = getenv(PROF_ENV_TSC);
        shim_clock_setup(!tsc_env || strcmp(tsc_env, "0") != 0);
        uint64_t now = shim_mono_ns();
        struct prof_shm_header *h = shim_record_map(getpid(), now);
        if (h && pthread_key_create(&shim_key, shim_thread_dtor) == 0) {
            h->ppid = getppid();
            shim_fill_identity(h);
            /* Both Pythons export it: Debian's from the executable, pyenv's from libpython3.11.so. */
            if (&_PyRuntime != NULL) {
                h->flags |= PROF_PROC_PYTHON;
                shim_python = 1;
            }
            shim_claim_main(h, now);
            pthread_setspecific(shim_key, h);
            pthread_atfork(shim_atfork_prepare, NULL, shim_atfork_child);
            __atomic_store_n(&h->magic, PROF_SHM_MAGIC, __ATOMIC_RELEASE);
            __atomic_store_n(&shim_hdr, h, __ATOMIC_RELEASE);
        }
    }
    errno = saved;
    tls_in_init = 0;
    __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
}

/* A thread's end, however it comes (return, pthread_exit, cancellation): TSD destructors run for all three. */
static void shim_thread_dtor(void *unused)
{
    (void)unused;
    struct prof_shm_thread *t = shim_tls_slot;
    struct prof_shm_header *h = shim_hdr;
    if (!t || !h)
        return;
    shim_tls_slot = NULL;
    size_t idx;
    unsigned char *final;
    if (shim_thread_index(h, t, &idx) != 0 || !(final = shim_parr_at(&shim_slot_final, idx, 0)))
        return;
    if (__atomic_exchange_n(final, 1, __ATOMIC_ACQ_REL))
        return; /* the process-end snapshot took it first */
    int saved = errno;
    uint64_t now = shim_mono_ns();
    shim_stage_close_all(h, t, 1, now);
    shim_thread_fill_self(t, now);
    __atomic_store_n(&t->state, PROF_THREAD_ENDED, __ATOMIC_RELEASE);
    errno = saved;
}

__attribute__((constructor(101))) static void shim_ctor(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc > 0 && argv) {
        ctor_argc = argc;
        ctor_argv = argv;
    }
    shim_init();
}
