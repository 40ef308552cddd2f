/* thread.c: per-thread slots: claimed at pthread_create, closed at thread end, snapshotted at process end. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

/* The real start routine of each slot's thread: kept here, not malloc'd, so creation never allocates
 * (beyond the fixed table's slots, a chunk mmap'd once per 1024 << j threads). */
struct shim_tramp {
    void *(*fn)(void *);
    void *arg;
};
static struct shim_tramp tramp_fixed[PROF_SHM_MAX_THREADS];
struct shim_parr shim_tramp = {sizeof(struct shim_tramp), tramp_fixed, {0}};

static int end_done;

int shim_owner(void)
{
    struct prof_shm_header *h = __atomic_load_n(&shim_hdr, __ATOMIC_ACQUIRE);
    /* A vfork child shares our memory (and our MAP_SHARED record): it must write nothing. */
    return h && getpid() == h->pid;
}

static void *shim_thread_start(void *p)
{
    size_t idx = (size_t)(uintptr_t)p;
    /* pthread_create made both before it started us. */
    struct prof_shm_thread *t = shim_thread_at(shim_hdr, idx, 0);
    const struct shim_tramp *tr = shim_parr_at(&shim_tramp, idx, 0);
    void *(*fn)(void *) = tr->fn;
    void *arg = tr->arg;
    t->tid = gettid();
    t->start_ns = shim_mono_ns();
    shim_stage_thread_start(idx);
    __atomic_store_n(&t->state, PROF_THREAD_RUNNING, __ATOMIC_RELEASE);
    shim_tls_slot = t;
    pthread_setspecific(shim_key, t);
    return fn(arg);
}

SHIM_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                               void *arg)
{
    shim_init();
    if (SHIM_UNLIKELY(!shim_real.pthread_create))
        return EAGAIN;
    shim_self(); /* a fork child's first thread: its record first */
    struct prof_shm_header *h = __atomic_load_n(&shim_hdr, __ATOMIC_ACQUIRE);
    if (!h)
        return shim_real.pthread_create(th, attr, fn, arg);
    uint32_t idx = __atomic_fetch_add(&h->nthreads, 1, __ATOMIC_RELAXED);
    /* Every failure below lets the thread run unrecorded, counted; never a failed create. */
    struct prof_shm_thread *t = shim_thread_at(h, idx, 1);
    if (!t) {
        __atomic_fetch_add(&h->dropped_threads, 1, __ATOMIC_RELAXED);
        return shim_real.pthread_create(th, attr, fn, arg);
    }
    /* No disk block for the slot's page: the thread runs unrecorded (its slot stays FREE). */
    if (shim_record_room(t, sizeof *t) < 0)
        return shim_real.pthread_create(th, attr, fn, arg);
    if (shim_thread_slot_ready(idx) != 0) {
        __atomic_fetch_add(&h->nomem_drops, 1, __ATOMIC_RELAXED);
        return shim_real.pthread_create(th, attr, fn, arg);
    }
    struct shim_tramp *tr = shim_parr_at(&shim_tramp, idx, 0);
    tr->fn = fn;
    tr->arg = arg;
    /* On failure the slot stays FREE: readers skip it. */
    return shim_real.pthread_create(th, attr, shim_thread_start, (void *)(uintptr_t)idx);
}

static uint64_t shim_schedstat_runq(const char *path, uint64_t *cpu_ns)
{
    char buf[128];
    if (shim_read_file(path, buf, sizeof buf) <= 0)
        return 0;
    const char *p;
    uint64_t cpu = shim_parse_u64(buf, &p);
    if (cpu_ns)
        *cpu_ns = cpu;
    return shim_parse_u64(p, NULL);
}

/*
 * A thread's run-queue wait is read from /proc/thread-self/schedstat, which costs ~20 us the
 * first time a thread looks (procfs builds its directory entries): a third of a 65 us thread,
 * and 5,000 such threads ran 1.33x slower for it alone. A thread that lived less than this
 * has it estimated instead: what its life leaves after its CPU and every wait the shim timed,
 * an upper bound below 1 ms, flagged PROF_THREAD_RUNQ_EST so the report can say how many.
 */
#define SHIM_RUNQ_READ_NS 1000000ULL

static uint64_t runq_estimate(const struct prof_shm_thread *t, uint64_t now)
{
    uint64_t life = now - t->start_ns;
    uint64_t spent = t->cpu_ns + t->lock_wait_ns + t->gil_wait_ns + t->io_wait_ns + t->ipc_ns + t->evloop_wait_ns +
                     t->join_wait_ns + t->handoff_wait_ns + t->sleep_ns;
    return life > spent ? life - spent : 0;
}

void shim_thread_fill_self(struct prof_shm_thread *t, uint64_t now)
{
    t->cpu_ns = shim_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        t->utime_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
        t->stime_us = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
        t->vcsw = (uint64_t)ru.ru_nvcsw;
        t->ivcsw = (uint64_t)ru.ru_nivcsw;
    }
    if (t->start_ns && now > t->start_ns && now - t->start_ns < SHIM_RUNQ_READ_NS) {
        t->runq_ns = runq_estimate(t, now);
        t->flags |= PROF_THREAD_RUNQ_EST;
    } else {
        t->runq_ns = shim_schedstat_runq("/proc/thread-self/schedstat", NULL);
    }
    char name[16] = {0};
    prctl(PR_GET_NAME, name, 0, 0, 0);
    memcpy(t->name, name, sizeof t->name);
    t->name[sizeof t->name - 1] = '\0';
    t->end_ns = now;
}

/* Another live thread, seen from /proc at process end. */
static void shim_thread_fill_other(struct prof_shm_thread *t, pid_t tid, uint64_t now, int fresh)
{
    char path[64], buf[2048];
    char *base = shim_stpcpy(path, "/proc/self/task/");
    base = shim_fmt_u64(base, (uint64_t)tid);

    shim_stpcpy(base, "/stat");
    if (shim_read_file(path, buf, sizeof buf) > 0) {
        const char *p = strrchr(buf, ')');
        /* Fields after the comm: 3 state ... 14 utime 15 stime ... 22 starttime. */
        uint64_t f[23] = {0};
        int field = 3;
        if (p) {
            p++;
            while (*p && field <= 22) {
                while (*p == ' ')
                    p++;
                if (field == 3) {
                    while (*p && *p != ' ')
                        p++;
                } else {
                    f[field] = shim_parse_u64(p, &p);
                    while (*p && *p != ' ')
                        p++;
                }
                field++;
            }
            if (!shim_clk_tck) {
                long hz = sysconf(_SC_CLK_TCK);
                shim_clk_tck = hz > 0 ? hz : 100;
            }
            uint64_t tck = (uint64_t)shim_clk_tck;
            t->utime_us = f[14] * 1000000u / tck;
            t->stime_us = f[15] * 1000000u / tck;
            if (fresh && field > 22) {
                /* Boot-time ticks; never earlier than this image. */
                uint64_t st = f[22] * (1000000000u / tck);
                t->start_ns = st > shim_hdr->start_ns ? st : shim_hdr->start_ns;
            }
        }
    }
    shim_stpcpy(base, "/schedstat");
    uint64_t cpu = 0;
    t->runq_ns = shim_schedstat_runq(path, &cpu);
    t->cpu_ns = cpu;
    shim_stpcpy(base, "/status");
    if (shim_read_file(path, buf, sizeof buf) > 0) {
        t->vcsw = shim_status_field(buf, "voluntary_ctxt_switches");
        t->ivcsw = shim_status_field(buf, "nonvoluntary_ctxt_switches");
    }
    shim_stpcpy(base, "/comm");
    char comm[32];
    ssize_t n = shim_read_file(path, comm, sizeof comm);
    if (n > 0) {
        if (comm[n - 1] == '\n')
            comm[--n] = '\0';
        size_t len = (size_t)n < sizeof t->name - 1 ? (size_t)n : sizeof t->name - 1;
        memcpy(t->name, comm, len);
        t->name[len] = '\0';
    }
    t->end_ns = now;
}

/* The latest slot of `tid`, whatever its state (tids are reused: the latest wins). */
static struct prof_shm_thread *shim_slot_of(struct prof_shm_header *h, pid_t tid, size_t *idx)
{
    uint32_t n = __atomic_load_n(&h->nthreads, __ATOMIC_ACQUIRE);
    for (uint32_t i = n; i-- > 0;) {
        struct prof_shm_thread *t = shim_thread_at(h, i, 0);
        if (t && t->tid == tid && __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) != PROF_THREAD_FREE) {
            *idx = i;
            return t;
        }
    }
    return NULL;
}

/* Final figures of one live thread, unless its own end already took them. */
static void shim_snapshot_one(struct prof_shm_header *h, pid_t tid, pid_t self, uint64_t now)
{
    size_t idx;
    struct prof_shm_thread *t = NULL;
    int fresh = 0;
    if (tid == self && shim_tls_slot) {
        t = shim_tls_slot;
        if (shim_thread_index(h, t, &idx) != 0)
            return;
    } else {
        t = shim_slot_of(h, tid, &idx);
        /* Already ended: a thread between its TSD destructors and its last breath. */
        if (t && __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) != PROF_THREAD_RUNNING)
            return;
    }
    if (!t) {
        /* A thread we did not see start (created before us, or by raw clone). */
        idx = __atomic_fetch_add(&h->nthreads, 1, __ATOMIC_RELAXED);
        if (!(t = shim_thread_at(h, idx, 1))) {
            __atomic_fetch_add(&h->dropped_threads, 1, __ATOMIC_RELAXED);
            return;
        }
        if (shim_record_room(t, sizeof *t) < 0)
            return;
        if (shim_thread_slot_ready(idx) != 0) {
            __atomic_fetch_add(&h->nomem_drops, 1, __ATOMIC_RELAXED);
            return;
        }
        t->tid = tid;
        fresh = 1;
    }
    unsigned char *final = shim_parr_at(&shim_slot_final, idx, 0);
    if (!final || __atomic_exchange_n(final, 1, __ATOMIC_ACQ_REL))
        return;
    shim_stage_close_all(h, t, tid == self, now);
    if (tid == self) {
        if (fresh)
            t->start_ns = h->start_ns;
        shim_thread_fill_self(t, now);
    } else {
        shim_thread_fill_other(t, tid, now, fresh);
    }
    __atomic_store_n(&t->state, PROF_THREAD_SNAPSHOT, __ATOMIC_RELEASE);
}

struct snapshot_walk {
    struct prof_shm_header *h;
    pid_t self;
    uint64_t now;
};

static int shim_snapshot_task(int dfd, const char *name, uint64_t tid, void *arg)
{
    (void)dfd;
    (void)name;
    const struct snapshot_walk *w = arg;
    if ((pid_t)tid != w->self)
        shim_snapshot_one(w->h, (pid_t)tid, w->self, w->now);
    return 0;
}

/* The threads alive now, into their slots; `alone`: the kernel said this is the only one (the
 * listing of /proc/self/task is then skipped: four system calls of a short image's ~45). */
static void shim_snapshot_threads(struct prof_shm_header *h, uint64_t now, int alone)
{
    pid_t self = gettid();
    shim_snapshot_one(h, self, self, now);
    if (alone)
        return;
    struct snapshot_walk w = {h, self, now};
    shim_each_numeric("/proc/self/task", shim_snapshot_task, &w);
}

void shim_proc_end(uint32_t how)
{
    if (!shim_owner())
        return;
    if (__atomic_exchange_n(&end_done, 1, __ATOMIC_ACQ_REL))
        return;
    struct prof_shm_header *h = shim_hdr;
    int saved = errno;
    char buf[4096];
    int alone = 0;
    if (shim_read_file("/proc/self/status", buf, sizeof buf) > 0) {
        h->vm_hwm_bytes = shim_status_field(buf, "VmHWM") * 1024u;
        h->rss_end_bytes = shim_status_field(buf, "VmRSS") * 1024u;
        /* Only this thread runs: none can be created before this returns. */
        alone = shim_status_field(buf, "Threads") == 1;
    }
    shim_snapshot_threads(h, shim_mono_ns(), alone);
    shim_lock_symbolise(h);
    __atomic_store_n(&h->end_how, how, __ATOMIC_RELEASE);
    __atomic_store_n(&h->end_ns, shim_mono_ns(), __ATOMIC_RELEASE);
    errno = saved;
}

void shim_proc_end_reset(void)
{
    __atomic_store_n(&end_done, 0, __ATOMIC_RELEASE);
}

void shim_proc_end_undo(void)
{
    struct prof_shm_header *h = shim_hdr;
    if (!shim_owner())
        return;
    __atomic_store_n(&h->end_ns, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&h->end_how, PROF_END_RUNNING, __ATOMIC_RELEASE);
    uint32_t n = __atomic_load_n(&h->nthreads, __ATOMIC_ACQUIRE);
    /* Only the failed exec's snapshot made SNAPSHOT slots: those threads still run. */
    for (uint32_t i = 0; i < n; i++) {
        struct prof_shm_thread *t = shim_thread_at(h, i, 0);
        unsigned char *final = shim_parr_at(&shim_slot_final, i, 0);
        if (!t || !final || __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) != PROF_THREAD_SNAPSHOT)
            continue;
        t->end_ns = 0;
        __atomic_store_n(&t->state, PROF_THREAD_RUNNING, __ATOMIC_RELEASE);
        __atomic_store_n(final, 0, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&end_done, 0, __ATOMIC_RELEASE);
}
