/* shm.h: layout of a process record file, which the shim maps MAP_SHARED and updates in place. */
#ifndef POOLPROF_SHM_H
#define POOLPROF_SHM_H

/*
 * Why a shared mapping rather than write(2): the figures reach the run
 * directory the moment they are stored (the page cache is the file), so a
 * process killed by SIGKILL loses nothing it had recorded; the hot paths do
 * plain stores, no syscalls; and once mapped the descriptor is closed, so a
 * target that closes every descriptor (os.closerange, close_range) cannot
 * silence or be disturbed by the shim. The file is sparse: each page gets its
 * disk block (MADV_POPULATE_WRITE) before the shim first writes it, the header's
 * pages before the file is used at all, so a short image writes a few pages and
 * a full disk makes the shim stop recording (no file: anonymous memory; a slot
 * later: not recorded, counted in nospace_drops), never a SIGBUS in the target.
 * Where the kernel lacks MADV_POPULATE_WRITE the file is fallocate'd whole.
 *
 * No fixed table drops data (issue 27): threads and reaped children beyond the header's tables
 * go to chunks of an extension area that follows the header in the same file, reserved when the
 * file is made (ftruncate to size + ext_bytes, mapped whole; its pages get their blocks as the
 * header's do). The shim opens no descriptor while the target runs, which could take a number
 * the target expects (the lowest free one). Chunk j of a kind holds base << j slots (base: the
 * fixed table's size), so slot i >= base lives in chunk log2(i / base) at i - (base << j):
 * prof_shm_chunk(). thread_chunks[] and child_chunks[] hold each chunk's byte offset from the
 * file's start (0: not allocated); chunks are cut from ext_used upward and never move. A slot
 * whose chunk does not fit is dropped and counted (dropped_threads, dropped_children, and
 * ext_refused), and the reader names the area full, with its size. ext_bytes is 256 MiB unless
 * POOLPROF_EXT_BYTES says otherwise, at most 1/16 of the address space RLIMIT_AS leaves, and 0
 * where the file is allocated whole (tmpfs, an old kernel) or in memory: the fixed tables are
 * then the limits, named as such. Locks and stages have no extension: their tables (hash and
 * CAS claimed) keep their sizes; a full lock table keeps the most waited-on locks, and stage
 * names beyond 64 are counted in dropped_stages.
 *
 * Once the image has certainly ended (an exec, or its pid is gone from poolprof's own pid
 * namespace), `poolprof run` truncates the file to size + ext_used, so a run directory does not
 * show ext_bytes of apparent size per file; a record left untrimmed (poolprof killed) reads the
 * same. Only the owner image cuts chunks, so a process that shares the mapping without owning it
 * (a vfork or raw-clone child) writes nothing past ext_used. The mapping is MADV_RANDOM: no
 * read-around fills a large sparse file's holes.
 *
 * One record per process image, in a region of an arena file: RUNDIR/proc/<k>.arena (struct
 * prof_shm_arena below). A forked child switches to a region of its own before it returns from
 * fork(); an exec ends the image (end_how = PROF_END_EXEC) and the new image claims a new one.
 * Where no arena can be used (made or opened), an image's record is a file of its own,
 * RUNDIR/proc/<pid>-<start_ns>.rec, laid out as a region.
 *
 * Concurrency: each thread slot is written only by its own thread, except at
 * process exit when the exiting thread snapshots the survivors. Readers (the
 * merge, possibly while the target still runs) treat every field as a racy
 * snapshot; `state` is stored last with release order so a reader that sees
 * PROF_THREAD_ENDED sees the final figures.
 *
 * All times are CLOCK_MONOTONIC nanoseconds unless named otherwise.
 */
#include <stdint.h>

#define PROF_SHM_MAGIC 0x31464f52504c4f50ULL /* "POLPROF1" little-endian */
#define PROF_SHM_VERSION 5 /* 2: prof_shm_stage grew the sleep, disk-read and back-pressure figures; 3: request time in flight;
                            * 4: the extension area (ext_* and the chunk directories); 5: the first thread slot
                            * and the stage counters moved up to the first two pages */

#define PROF_SHM_MAX_THREADS 1024
#define PROF_SHM_MAX_CHILDREN 512
#define PROF_SHM_MAX_LOCKS 256
#define PROF_SHM_MAX_STAGES 64
#define PROF_SHM_ARGV_BYTES 4096
#define PROF_SHM_PATH_BYTES 512
#define PROF_SHM_NAME_BYTES 64
#define PROF_SHM_SITE_BYTES 128
#define PROF_SHM_STAGE_DEPTH 8   /* nesting kept per thread; deeper begins are counted, not timed */
#define PROF_SHM_EXT_CHUNKS 24   /* chunks per kind: 1024 << 23 thread slots in the last, far beyond any area */
#define PROF_SHM_EXT_DEFAULT (256ull << 20) /* ext_bytes unless POOLPROF_EXT_BYTES says otherwise */
#define PROF_SHM_EXT_MAX (64ull << 30)   /* POOLPROF_EXT_BYTES above this is taken as this */
#define PROF_SHM_EXT_ALIGN 64    /* chunks start on this boundary (slots hold uint64_t) */

/* prof_shm_header.flags */
#define PROF_PROC_PYTHON 0x1u    /* the image runs CPython (_PyRuntime found) */
#define PROF_PROC_FORKED 0x2u    /* the image began with fork(), not exec */
#define PROF_PROC_ANON 0x4u      /* never set in a file: recording fell back to memory */

/* prof_shm_header.end_how */
enum prof_end_how {
    PROF_END_RUNNING = 0, /* still running, or killed (the reader decides by end_ns == 0) */
    PROF_END_EXIT = 1,    /* exit() / return from main: atexit ran */
    PROF_END_UNDERSCORE_EXIT = 2, /* _exit() / _Exit() */
    PROF_END_EXEC = 3,    /* the image was replaced by a successful exec */
};

/* prof_shm_header.ext_why: how ext_bytes was sized, for the reader to name the limit. */
enum prof_ext_why {
    PROF_EXT_DEFAULT = 0, /* PROF_SHM_EXT_DEFAULT */
    PROF_EXT_ENV = 1,     /* POOLPROF_EXT_BYTES */
    PROF_EXT_RLIMIT = 2,  /* capped at 1/16 of the address space RLIMIT_AS leaves */
    PROF_EXT_WHOLE = 3,   /* none: the file is allocated whole (tmpfs, or no MADV_POPULATE_WRITE) */
    PROF_EXT_NOMEM = 4,   /* none: no memory for the shim's map of the area's pages */
};

/* prof_shm_thread.flags */
#define PROF_THREAD_RUNQ_EST 0x1u /* runq_ns estimated, not read: a thread shorter than 1 ms (see libprof/shim/thread.c) */

/* prof_shm_thread.state */
enum prof_thread_state {
    PROF_THREAD_FREE = 0,
    PROF_THREAD_RUNNING = 1,
    PROF_THREAD_ENDED = 2,    /* the thread returned or called pthread_exit */
    PROF_THREAD_SNAPSHOT = 3, /* still alive when the process ended; figures taken then */
};

struct prof_shm_thread {
    uint32_t state;          /* enum prof_thread_state, stored last */
    int32_t tid;
    char name[16];           /* OS thread name (comm) at the end, or at the last update */
    uint64_t start_ns;       /* when the thread began (pthread_create'd start routine entered) */
    uint64_t end_ns;         /* when it ended or was snapshotted */
    uint64_t cpu_ns;         /* CLOCK_THREAD_CPUTIME_ID at end (cumulative for the task) */
    uint64_t utime_us;       /* getrusage(RUSAGE_THREAD) at end */
    uint64_t stime_us;
    uint64_t vcsw;           /* voluntary context switches */
    uint64_t ivcsw;          /* involuntary context switches */
    uint64_t runq_ns;        /* /proc/self/task/TID/schedstat field 2 at end (0 if unreadable; PROF_THREAD_RUNQ_EST: estimated) */
    /* Lock figures, accumulated by the lock interposers (0 when not measured). */
    uint64_t lock_acquisitions;
    uint64_t lock_contended;
    uint64_t lock_wait_ns;   /* time blocked acquiring locks other than the GIL */
    uint64_t gil_wait_ns;    /* time blocked waiting for a CPython GIL */
    uint64_t net_round_trips; /* network descriptors: a receive after a send (one request and its answer) */
    /* Blocked on a semaphore until a thread that did not hold it posted it (a queue's put, a
     * condition's notify, a future's result, a thread's end): idle, NOT in lock_wait_ns. */
    uint64_t handoff_wait_ns;
    /*
     * Waits that can and cannot be split among workers (issue 25). A sleep call and a timed disk
     * read are each one wait another worker could take at the same time; a send on a pipe or
     * socket waits for its reader to make room (back-pressure from downstream), which more
     * writers never shorten. Sleep time is in no other figure; send_wait_ns is part of
     * net_wait_ns (pipes and sockets that lead out of the tree) or ipc_ns (the tree's own).
     */
    uint64_t sleep_ns;       /* wall time in nanosleep, clock_nanosleep, usleep, sleep */
    uint64_t sleeps;         /* those calls */
    uint64_t disk_reads;     /* timed reads on regular files and block devices */
    uint64_t net_send_wait_ns; /* time in writes and sends on network descriptors (and pipes out of the tree) */
    uint64_t ipc_send_wait_ns; /* the same on the tree's own pipes and sockets */
    /* The main thread of an exec'd image: its task's CPU clock when main() began: exec, the
     * dynamic loader and constructors, which no pool divides. 0 in other threads and in forked
     * images (they never pass through main). */
    uint64_t startup_cpu_ns;
    /*
     * Appended for issue 3. Waits are wall time spent inside the call.
     * I/O = network (TCP, UDP, sockets and pipes that lead outside the tree),
     * disk (regular files, block devices); character devices (ttys, /dev/null)
     * and eventfd/epoll/timerfd are not counted. Regular-file writes land in
     * the page cache: their bytes count, their time is not measured.
     * IPC = pipes, FIFOs, socketpairs and UNIX sockets between processes of
     * the profiled tree. A poll/ppoll/select on exactly one descriptor is a
     * blocking wait on that descriptor (CPython's socket timeouts work that
     * way): its time goes to that descriptor's category, not to evloop.
     */
    uint64_t io_wait_ns;     /* network + disk: time in I/O calls (file writes untimed) */
    uint64_t io_bytes;       /* bytes moved by I/O calls, both directions */
    uint64_t io_calls;
    uint64_t net_wait_ns;    /* the network (and outside-pipe/socket) part of io_wait_ns */
    uint64_t net_bytes;      /* the network part of io_bytes */
    uint64_t ipc_ns;         /* time in IPC calls, both directions */
    uint64_t ipc_bytes_sent;
    uint64_t ipc_bytes_received;
    uint64_t ipc_calls;
    uint64_t evloop_wait_ns; /* epoll_wait/epoll_pwait, and poll/select on 0 or >= 2 descriptors */
    uint64_t evloop_calls;
    uint64_t join_wait_ns;   /* pthread_join & co: idle waiting for a thread, NOT in lock_wait_ns */
    uint64_t rwlock_rd_wait_ns; /* the read-lock part of lock_wait_ns */
    uint64_t rwlock_wr_wait_ns; /* the write-lock part of lock_wait_ns */
    uint64_t spin_wait_ns;      /* the spinlock part of lock_wait_ns (on CPU, spinning) */
    uint32_t stage_depth;    /* open stage markers (may exceed PROF_SHM_STAGE_DEPTH) */
    uint32_t flags;          /* PROF_THREAD_* below */
    uint8_t stage_stack[PROF_SHM_STAGE_DEPTH]; /* stage indices (into stages[]), outermost first */
    uint64_t ipc_sends;      /* of ipc_calls, the sends: one per message for a pool's small messages */
    /* Of the round trips, the time from each request's send to its answer's first receive: the
     * requests' time in flight, which overlaps when a loop keeps many open at once (issue 25). */
    uint64_t net_request_ns;
    uint64_t stage_reserved[2];
};

/* A child this process reaped with wait*(): the only place a killed grandchild's signal is seen. */
struct prof_shm_child {
    int32_t pid;
    int32_t status;          /* raw wait status */
    uint64_t t_ns;
};

/* prof_shm_lock.kind */
enum prof_lock_kind {
    PROF_LOCK_MUTEX = 1,     /* pthread_mutex_lock / timedlock: hold time measured */
    PROF_LOCK_RWLOCK = 2,    /* pthread_rwlock_*: wait only (read and write waits both) */
    PROF_LOCK_SPIN = 3,      /* pthread_spin_lock: wait only */
    PROF_LOCK_SEM = 4,       /* sem_*wait: hold time from a take to the taker's post, less its GIL waits (threading.Lock) */
    PROF_LOCK_COND = 5,      /* condition variable (not the GIL): wait only */
};

/*
 * A lock seen contended (issue: lock contention). Keyed by address; slot claimed with CAS on addr.
 * A lock enters the table on its first contended acquisition; from then on every acquisition
 * of it is counted (acquisitions), and for mutexes the hold time (acquire to unlock, outermost
 * level for recursive mutexes) and owner changes (acquired by another thread than the previous
 * owner). wait_ns and contended cover the contended acquisitions after it entered the table,
 * including the first. site_pc: return address in the caller of the lock function, the one of
 * (up to 4 tracked) call sites with the most wait; site: "function+0xoff (module)" filled at
 * process end (libunwind, reads .symtab so static functions resolve), "" if not resolved.
 */
struct prof_shm_lock {
    uint64_t addr;           /* 0 = free slot */
    uint32_t kind;           /* enum prof_lock_kind, see libprof/shim */
    uint32_t pad;
    uint64_t acquisitions;
    uint64_t contended;
    uint64_t wait_ns;
    uint64_t hold_ns;
    uint64_t owner_changes;
    uint64_t claim_cpu_ns;   /* process CPU time when it entered the table (its first contention):
                              * acquisitions and holds before that were not seen */
    uint64_t site_pc;        /* return address of the hottest contended acquisition */
    char site[PROF_SHM_SITE_BYTES]; /* symbolised lazily: function name (+file:line) */
};

/*
 * A stage marked with prof_stage_begin/end in this process image (issue 3). Slot claimed by CAS
 * of name_hash (FNV-1a of the name, never 0), then name written, then `ready` stored (release):
 * readers skip slots with ready == 0. The same name in several processes is one stage for the merge.
 *
 * Attribution is "self" (innermost): while a thread has stages open, everything it does is
 * charged to the innermost one; an outer stage's figures exclude the time spent in stages nested
 * in it. self_ns summed over a thread's stages never exceeds its wall time. incl_ns is the
 * inclusive begin-to-end time (counted in every open stage; a stage nested in itself counts twice).
 * The wait and byte fields are deltas of the thread's own counters (prof_shm_thread) taken while
 * the stage was innermost, so they use the same definitions.
 *
 * CPU: CLOCK_THREAD_CPUTIME_ID costs ~200 ns here, so it is read only for entries of a stage whose
 * mean incl duration is >= 100 us or still unknown (its first 4 entries); other entries get
 * cpu = self time - (lock + gil + io + ipc + evloop + join + hand-off waits and sleeps) inside, an
 * upper bound (it also counts run-queue wait and waits the shim does not time). cpu_exact_entries tells how many are exact;
 * cpu_exact_ns / cpu_exact_self_ns is the measured CPU ratio of the exact ones.
 */
struct prof_shm_stage {
    uint64_t name_hash;      /* 0 = free */
    uint32_t ready;          /* name valid */
    uint32_t threads;        /* distinct threads of this image that entered it */
    char name[PROF_SHM_NAME_BYTES]; /* NUL-terminated, truncated to 63 bytes */
    uint64_t entries;        /* begins (entries still open at the end were closed there) */
    uint64_t exits;          /* ends, including the closes at thread/process end */
    uint64_t closed_at_end;  /* of exits: closed because the thread or process ended inside */
    uint64_t self_ns;        /* wall time while innermost, summed over threads */
    uint64_t incl_ns;        /* wall time begin..end, summed over entries */
    uint64_t cpu_ns;         /* exact + estimated CPU while innermost */
    uint64_t cpu_exact_entries;
    uint64_t cpu_exact_ns;   /* the measured part of cpu_ns */
    uint64_t cpu_exact_self_ns; /* self_ns of the exactly measured entries */
    uint64_t lock_wait_ns;
    uint64_t gil_wait_ns;
    uint64_t io_wait_ns;
    uint64_t io_bytes;
    uint64_t net_wait_ns;
    uint64_t ipc_ns;
    uint64_t ipc_bytes_sent;
    uint64_t ipc_bytes_received;
    uint64_t evloop_wait_ns;
    uint64_t join_wait_ns;
    uint64_t first_begin_ns; /* CLOCK_MONOTONIC */
    uint64_t last_end_ns;
    uint64_t ipc_sends;
    uint64_t net_round_trips;
    uint64_t handoff_wait_ns;
    uint64_t sleep_ns;       /* the thread's figures of the same names, while innermost */
    uint64_t sleeps;
    uint64_t disk_reads;
    uint64_t net_send_wait_ns;
    uint64_t ipc_send_wait_ns;
    uint64_t net_request_ns; /* the thread's figure of the same name, while innermost */
};

struct prof_shm_header {
    uint64_t magic;
    uint32_t version;
    uint32_t size;           /* bytes of this header; the extension area follows it */
    int32_t pid;
    int32_t ppid;
    uint32_t flags;          /* PROF_PROC_* */
    uint32_t end_how;        /* enum prof_end_how; stored before end_ns */
    uint64_t start_ns;       /* image start: shim constructor (exec) or fork return */
    uint64_t start_realtime_ns;
    uint64_t end_ns;         /* 0 while running; set last at exit or exec */
    int32_t exit_code;       /* valid for PROF_END_EXIT / PROF_END_UNDERSCORE_EXIT */
    uint32_t nthreads;       /* slots claimed, the extension's included (dropped ones too) */
    uint32_t nchildren;      /* the same for reaped children */
    uint32_t dropped_threads;
    uint32_t dropped_children;
    uint32_t argc;
    uint64_t vm_hwm_bytes;   /* VmHWM at the end: the exact peak RSS */
    uint64_t rss_end_bytes;  /* VmRSS at the end */
    uint64_t gil_mutex;      /* CPython's GIL mutex, once a GIL wait has named it (its waits are GIL waits); else 0 */
    uint64_t gil_switch_mutex; /* ...and the mutex of its forced switch (drop_gil waits under it for a taker) */
    uint64_t nospace_drops;  /* slots (threads, children, locks, stages) not recorded: no disk block for their page */
    /* The extension area (issue 27), right after the header: see the top of this file. */
    uint64_t ext_bytes;      /* its size: the file is size + ext_bytes (size + ext_used once trimmed) */
    uint64_t ext_used;       /* bytes of it handed to chunks; never above ext_bytes */
    uint32_t ext_why;        /* enum prof_ext_why */
    uint32_t ext_refused;    /* slots dropped because their chunk did not fit in the area */
    uint32_t nomem_drops;    /* threads not recorded: no memory for the shim's own state of their slots */
    uint32_t ext_pad;
    uint64_t pidns;          /* inode of the image's pid namespace (0: unknown): pids are its pids */
    uint64_t thread_chunks[PROF_SHM_EXT_CHUNKS]; /* thread slots >= PROF_SHM_MAX_THREADS: file offsets, 0 = none */
    uint64_t child_chunks[PROF_SHM_EXT_CHUNKS];  /* reaped children >= PROF_SHM_MAX_CHILDREN: the same */
    uint64_t reserved[4];
    char exe[PROF_SHM_PATH_BYTES];   /* readlink /proc/self/exe */
    char argv[PROF_SHM_ARGV_BYTES];  /* NUL-separated, truncated at a NUL boundary */
    /* Everything above and the first thread slot fill the record's first two pages: what every
     * image writes gets its blocks in one call (version 5; it took four pages and three calls). */
    uint32_t nstages;        /* stage slots claimed (approximate; scan all with name_hash != 0) */
    uint32_t dropped_stages; /* begins whose name found no free slot (table full) */
    uint64_t stage_overflow; /* begins beyond PROF_SHM_STAGE_DEPTH: counted here, not timed */
    uint64_t header_reserved2[6];
    struct prof_shm_thread threads[PROF_SHM_MAX_THREADS];
    struct prof_shm_stage stages[PROF_SHM_MAX_STAGES];
    struct prof_shm_child children[PROF_SHM_MAX_CHILDREN];
    struct prof_shm_lock locks[PROF_SHM_MAX_LOCKS];
};

/*
 * An arena: many images' records in one file, so an image costs no file of its own. Creating a
 * file costs an inode, and ext4's inode allocation scans groups for one not deleted recently:
 * 0.7 ms a file on this project's VM once a few thousand records had been deleted, half of what
 * a short `true` cost under the shim (issue 27). Page 0 holds this header; region i of a live
 * arena starts at page * (1 + i * stride / page) and is a record as above (header, then its
 * extension area), the stride fixed by the image that made the arena. An image claims a region
 * by fetch-and-add on `next` (claims at or past `capacity`, or that then see `closed`, found it
 * full: the image tries arena k + 1). Unless the file already reaches past its region, the image
 * fallocates the last page of its run of 64 regions (where records are allocated whole, its whole
 * region), which grows the file and never shrinks it, whatever the order of the claims. The
 * region's pid is the first field its image stores, so a region not filled yet names the process
 * that may still fill it (none for a few microseconds after the claim); a region whose header has
 * no magic was claimed by an image that ended (or fell back to memory) before filling it.
 *
 * Once every image in an arena has ended (and every process that claimed a region and never
 * filled it is gone, and the kernel grants a write lease: no other process has it open or
 * mapped), `poolprof run` packs it: a new file whose header has
 * stride 0 and is followed by a table of nregions (offset, length) pairs, each record cut to
 * size + ext_used and starting on a page; holes stay holes. It replaces the arena by rename, so
 * a reader sees one or the other whole.
 */
#define PROF_ARENA_MAGIC 0x414e4552414c4f50ULL /* "POLARENA" little-endian */
#define PROF_ARENA_BYTES (4ull << 40)          /* a live arena's regions span at most this */
#define PROF_ARENA_MAX 4096                    /* arenas per run directory the shim tries */

struct prof_shm_arena {
    uint64_t magic;
    uint32_t version;   /* PROF_SHM_VERSION: the regions' record format */
    uint32_t page;      /* regions start on multiples of this */
    uint64_t stride;    /* bytes per region, a multiple of page; 0 once packed */
    uint64_t capacity;  /* regions of a live arena */
    uint64_t next;      /* regions claimed (may pass capacity: those claims found it full) */
    uint64_t nregions;  /* packed: the entries of the table that follows this header */
    uint64_t hint;      /* arena 0: the newest arena with room, so a new image does not try each in turn */
    uint64_t closed;    /* set by the packer before its last look at next: a claim that sees it moves on;
                         * PROF_ARENA_NONE with stride 0: the file system cannot grow an arena
                         * (no fallocate), every image makes a record file of its own */
};
#define PROF_ARENA_NONE 2

/* Whether an arena's page and stride make sense: a page a power of two from 512, a live
 * arena's stride whole pages that hold a header. The one check of the shim, reader and packer. */
static inline int prof_shm_arena_shape_ok(const struct prof_shm_arena *a)
{
    return a->page >= 512 && !(a->page & (a->page - 1)) &&
           (!a->stride || (a->stride % a->page == 0 && a->stride >= sizeof(struct prof_shm_header)));
}

struct prof_shm_region {
    uint64_t off;       /* from the file's start */
    uint64_t len;       /* 0: a region claimed but never filled */
};

/*
 * Slot i >= base (base: a fixed table's size, a power of two) of a kind: its chunk j, and in
 * *off its index within the chunk, which holds base << j slots. The one mapping of an index to
 * a chunk, for the shim and the reader.
 */
static inline unsigned prof_shm_chunk(uint64_t i, uint64_t base, uint64_t *off)
{
    unsigned j = (unsigned)(63 - __builtin_clzll(i)) - (unsigned)__builtin_ctzll(base);
    *off = i - (base << j);
    return j;
}

#endif
