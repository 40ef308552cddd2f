/* stage.c: prof_stage_begin/end: named, nestable regions whose time, CPU, waits and bytes are charged to a stage. */
#include <errno.h>
#include <string.h>

#include "prof.h"
#include "shim.h"

/*
 * Attribution is "self": the innermost open stage of a thread owns what the
 * thread does. Each frame keeps a segment: the clock, CPU clock and the
 * thread's counters when it last became innermost. Opening a nested stage
 * flushes the outer frame's segment into its stage; closing the nested one
 * restarts the outer segment. So every wait or byte is counted once.
 *
 * The frames live here, indexed by thread slot, not in the record: the
 * record carries only the depth and the stage indices (enough for a reader
 * to see what was open at a kill). Everything is stores and relaxed atomic
 * adds: no lock, no allocation, no syscall but the vDSO clocks.
 */

#define FRAME_UNTRACKED 0xff /* name found no slot: the frame is transparent */
#define EXACT_FIRST 4        /* entries whose CPU is always read */
#define EXACT_MEAN_NS 100000 /* stages this long on average keep reading it */

struct shim_counters {
    uint64_t lock, gil, io, io_bytes, net, ipc, ipc_sent, ipc_recv, ipc_sends, evloop, join, handoff, trips;
    uint64_t sleep, sleeps, disk_reads, net_send, ipc_send, req;
};

struct shim_frame {
    uint8_t idx;       /* into h->stages, or FRAME_UNTRACKED */
    uint8_t exact;     /* CPU clock read for this entry */
    uint64_t begin_ns; /* entry, for incl_ns */
    uint64_t seg_ns;   /* segment start (became innermost) */
    uint64_t seg_cpu;  /* CPU clock at segment start, when exact or outer exact */
    struct shim_counters snap;
};

struct shim_stage_thread {
    uint64_t entered;  /* bit i: this thread already counted in stages[i].threads */
    struct shim_frame f[PROF_SHM_STAGE_DEPTH];
};

_Static_assert(PROF_SHM_MAX_STAGES <= 64, "the per-thread entered mask is one uint64_t");
_Static_assert(PROF_SHM_MAX_STAGES < FRAME_UNTRACKED, "stage indices fit a byte");

/* Beyond the fixed table's slots, chunks mmap'd as threads need them (slots.c). */
static struct shim_stage_thread stage_priv_fixed[PROF_SHM_MAX_THREADS];
struct shim_parr shim_stage_parr = {sizeof(struct shim_stage_thread), stage_priv_fixed, {0}};

static inline void shim_counters_read(const struct prof_shm_thread *t, struct shim_counters *c)
{
    c->lock = t->lock_wait_ns;
    c->gil = t->gil_wait_ns;
    c->io = t->io_wait_ns;
    c->io_bytes = t->io_bytes;
    c->net = t->net_wait_ns;
    c->ipc = t->ipc_ns;
    c->ipc_sent = t->ipc_bytes_sent;
    c->ipc_recv = t->ipc_bytes_received;
    c->ipc_sends = t->ipc_sends;
    c->trips = t->net_round_trips;
    c->req = t->net_request_ns;
    c->evloop = t->evloop_wait_ns;
    c->join = t->join_wait_ns;
    c->handoff = t->handoff_wait_ns;
    c->sleep = t->sleep_ns;
    c->sleeps = t->sleeps;
    c->disk_reads = t->disk_reads;
    c->net_send = t->net_send_wait_ns;
    c->ipc_send = t->ipc_send_wait_ns;
}

static inline void shim_add(uint64_t *field, uint64_t v)
{
    if (v)
        __atomic_fetch_add(field, v, __ATOMIC_RELAXED);
}

static uint64_t shim_name_hash(const char *name, size_t *len)
{
    uint64_t h = 1469598103934665603ull;
    size_t n = 0;
    while (n < PROF_SHM_NAME_BYTES - 1 && name[n]) {
        h = (h ^ (unsigned char)name[n]) * 1099511628211ull;
        n++;
    }
    *len = n;
    return h ? h : 1;
}

/* The slot of `name` in h->stages, claimed on first use; -1 when the table is full. */
static int shim_stage_slot(struct prof_shm_header *h, const char *name)
{
    size_t len;
    uint64_t hash = shim_name_hash(name, &len);
    unsigned start = (unsigned)(hash ^ (hash >> 32)) % PROF_SHM_MAX_STAGES;
    for (unsigned k = 0; k < PROF_SHM_MAX_STAGES; k++) {
        unsigned i = (start + k) % PROF_SHM_MAX_STAGES;
        struct prof_shm_stage *s = &h->stages[i];
        uint64_t cur = __atomic_load_n(&s->name_hash, __ATOMIC_ACQUIRE);
        if (cur == 0) {
            if (shim_record_room(s, sizeof *s) < 0)
                break; /* no disk block for the slot: dropped, as a full table */
            if (__atomic_compare_exchange_n(&s->name_hash, &cur, hash, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                memcpy(s->name, name, len);
                s->name[len] = '\0';
                __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
                __atomic_fetch_add(&h->nstages, 1, __ATOMIC_RELAXED);
                return (int)i;
            }
            /* lost the race: cur now holds the winner's hash */
        }
        if (cur != hash)
            continue;
        /* Same hash: wait (briefly) for the claimer's name, then compare. */
        while (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE))
            __builtin_ia32_pause();
        if (strncmp(s->name, name, len) == 0 && s->name[len] == '\0')
            return (int)i;
    }
    __atomic_fetch_add(&h->dropped_stages, 1, __ATOMIC_RELAXED);
    return -1;
}

/* Innermost tracked frame below `depth` (exclusive), or NULL. */
static inline struct shim_frame *shim_innermost(struct shim_stage_thread *p, uint32_t depth)
{
    if (depth > PROF_SHM_STAGE_DEPTH)
        depth = PROF_SHM_STAGE_DEPTH;
    while (depth > 0) {
        struct shim_frame *f = &p->f[--depth];
        if (f->idx != FRAME_UNTRACKED)
            return f;
    }
    return NULL;
}

/* Charge frame f's segment, ending now, to its stage. cpu valid only if f->exact. */
static void shim_flush(struct prof_shm_header *h, struct shim_frame *f, uint64_t now, uint64_t cpu,
                       const struct shim_counters *c)
{
    struct prof_shm_stage *s = &h->stages[f->idx];
    const struct shim_counters *o = &f->snap;
    /* A stage closed by another thread (at exit) ends on that thread's clock: a few ns
     * apart from this one's (clock.c), so a segment just begun may read as negative. */
    uint64_t self = now > f->seg_ns ? now - f->seg_ns : 0;
    uint64_t lock = c->lock - o->lock, gil = c->gil - o->gil, io = c->io - o->io;
    uint64_t ipc = c->ipc - o->ipc, ev = c->evloop - o->evloop, join = c->join - o->join;
    uint64_t handoff = c->handoff - o->handoff, sleep = c->sleep - o->sleep;
    shim_add(&s->self_ns, self);
    shim_add(&s->lock_wait_ns, lock);
    shim_add(&s->gil_wait_ns, gil);
    shim_add(&s->io_wait_ns, io);
    shim_add(&s->io_bytes, c->io_bytes - o->io_bytes);
    shim_add(&s->net_wait_ns, c->net - o->net);
    shim_add(&s->ipc_ns, ipc);
    shim_add(&s->ipc_bytes_sent, c->ipc_sent - o->ipc_sent);
    shim_add(&s->ipc_bytes_received, c->ipc_recv - o->ipc_recv);
    shim_add(&s->ipc_sends, c->ipc_sends - o->ipc_sends);
    shim_add(&s->net_round_trips, c->trips - o->trips);
    shim_add(&s->net_request_ns, c->req - o->req);
    shim_add(&s->evloop_wait_ns, ev);
    shim_add(&s->join_wait_ns, join);
    shim_add(&s->handoff_wait_ns, handoff);
    shim_add(&s->sleep_ns, sleep);
    shim_add(&s->sleeps, c->sleeps - o->sleeps);
    shim_add(&s->disk_reads, c->disk_reads - o->disk_reads);
    shim_add(&s->net_send_wait_ns, c->net_send - o->net_send);
    shim_add(&s->ipc_send_wait_ns, c->ipc_send - o->ipc_send);
    uint64_t cpu_d;
    if (f->exact) {
        cpu_d = cpu - f->seg_cpu;
        shim_add(&s->cpu_exact_ns, cpu_d);
        shim_add(&s->cpu_exact_self_ns, self);
    } else {
        uint64_t waits = lock + gil + io + ipc + ev + join + handoff + sleep;
        cpu_d = self > waits ? self - waits : 0;
    }
    shim_add(&s->cpu_ns, cpu_d);
}

static inline void shim_seg_start(struct shim_frame *f, uint64_t now, uint64_t cpu,
                                  const struct shim_counters *c)
{
    f->seg_ns = now;
    f->seg_cpu = cpu;
    f->snap = *c;
}

static inline struct shim_stage_thread *shim_priv_of(struct prof_shm_header *h,
                                                     struct prof_shm_thread *t)
{
    size_t idx;
    return shim_thread_index(h, t, &idx) == 0 ? shim_parr_at(&shim_stage_parr, idx, 0) : NULL;
}

static void shim_stage_push(struct prof_shm_header *h, struct prof_shm_thread *t,
                            struct shim_stage_thread *p, int slot, uint64_t now, int cpu_ok,
                            uint64_t cpu_now)
{
    uint32_t depth = t->stage_depth;
    struct shim_frame *nf = &p->f[depth];
    nf->idx = FRAME_UNTRACKED;
    if (slot >= 0) {
        struct prof_shm_stage *s = &h->stages[slot];
        uint64_t n = __atomic_load_n(&s->entries, __ATOMIC_RELAXED);
        int exact = n < EXACT_FIRST ||
                    __atomic_load_n(&s->incl_ns, __ATOMIC_RELAXED) >= n * EXACT_MEAN_NS;
        struct shim_frame *outer = shim_innermost(p, depth);
        struct shim_counters c;
        shim_counters_read(t, &c);
        uint64_t cpu = cpu_now;
        if (!cpu_ok && (exact || (outer && outer->exact)))
            cpu = shim_clock_ns(CLOCK_THREAD_CPUTIME_ID);
        if (outer)
            shim_flush(h, outer, now, cpu, &c);
        nf->idx = (uint8_t)slot;
        nf->exact = (uint8_t)exact;
        nf->begin_ns = now;
        shim_seg_start(nf, now, cpu, &c);
        __atomic_fetch_add(&s->entries, 1, __ATOMIC_RELAXED);
        uint64_t zero = 0;
        if (!__atomic_load_n(&s->first_begin_ns, __ATOMIC_RELAXED))
            __atomic_compare_exchange_n(&s->first_begin_ns, &zero, now, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
        if (!(p->entered & (1ull << slot))) {
            p->entered |= 1ull << slot;
            __atomic_fetch_add(&s->threads, 1, __ATOMIC_RELAXED);
        }
    }
    t->stage_stack[depth] = nf->idx;
    __atomic_store_n(&t->stage_depth, depth + 1, __ATOMIC_RELEASE);
}

/* Pop the innermost frame of thread t. self: the caller is t's thread (its CPU clock is ours). */
static void shim_stage_pop(struct prof_shm_header *h, struct prof_shm_thread *t,
                           struct shim_stage_thread *p, uint64_t now, int self, int at_end)
{
    uint32_t depth = t->stage_depth;
    if (depth == 0)
        return;
    if (depth > PROF_SHM_STAGE_DEPTH) {
        __atomic_store_n(&t->stage_depth, depth - 1, __ATOMIC_RELEASE);
        return;
    }
    struct shim_frame *f = &p->f[depth - 1];
    if (f->idx != FRAME_UNTRACKED) {
        struct prof_shm_stage *s = &h->stages[f->idx];
        struct shim_frame *outer = shim_innermost(p, depth - 1);
        if (!self)
            f->exact = 0; /* another thread's CPU clock is out of reach: estimate */
        int need_cpu = f->exact || (self && outer && outer->exact);
        uint64_t cpu = need_cpu ? shim_clock_ns(CLOCK_THREAD_CPUTIME_ID) : 0;
        struct shim_counters c;
        shim_counters_read(t, &c);
        shim_flush(h, f, now, cpu, &c);
        __atomic_fetch_add(&s->incl_ns, now > f->begin_ns ? now - f->begin_ns : 0, __ATOMIC_RELAXED);
        __atomic_fetch_add(&s->exits, 1, __ATOMIC_RELAXED);
        if (f->exact)
            __atomic_fetch_add(&s->cpu_exact_entries, 1, __ATOMIC_RELAXED);
        if (at_end)
            __atomic_fetch_add(&s->closed_at_end, 1, __ATOMIC_RELAXED);
        uint64_t last = __atomic_load_n(&s->last_end_ns, __ATOMIC_RELAXED);
        while (last < now && !__atomic_compare_exchange_n(&s->last_end_ns, &last, now, 1,
                                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
        if (outer) {
            if (!self && outer->exact)
                outer->exact = 0;
            shim_seg_start(outer, now, cpu, &c);
        }
    }
    __atomic_store_n(&t->stage_depth, depth - 1, __ATOMIC_RELEASE);
}

PROF_API void prof_stage_begin(const char *name)
{
    struct prof_shm_thread *t = shim_self();
    struct prof_shm_header *h = shim_hdr;
    if (!t || !h || !name)
        return;
    struct shim_stage_thread *p = shim_priv_of(h, t);
    if (!p)
        return;
    int saved = errno;
    if (SHIM_UNLIKELY(!shim_fork_st.stages_used))
        __atomic_store_n(&shim_fork_st.stages_used, 1, __ATOMIC_RELAXED);
    uint32_t depth = t->stage_depth;
    if (depth >= PROF_SHM_STAGE_DEPTH) {
        __atomic_fetch_add(&h->stage_overflow, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&t->stage_depth, depth + 1, __ATOMIC_RELEASE);
    } else {
        int slot = shim_stage_slot(h, name);
        shim_stage_push(h, t, p, slot, shim_mono_ns(), 0, 0);
    }
    errno = saved;
}

PROF_API void prof_stage_end(void)
{
    struct prof_shm_thread *t = shim_self();
    struct prof_shm_header *h = shim_hdr;
    if (!t || !h)
        return;
    struct shim_stage_thread *p = shim_priv_of(h, t);
    if (!p || t->stage_depth == 0)
        return;
    int saved = errno;
    shim_stage_pop(h, t, p, shim_mono_ns(), 1, 0);
    errno = saved;
}

void shim_stage_thread_start(size_t idx)
{
    struct shim_stage_thread *p = shim_parr_at(&shim_stage_parr, idx, 0);
    /* Read first: a chunk's untouched page reads as zeros and stays unallocated. */
    if (p && p->entered)
        p->entered = 0;
}

void shim_stage_close_all(struct prof_shm_header *h, struct prof_shm_thread *t, int self, uint64_t now)
{
    struct shim_stage_thread *p = shim_priv_of(h, t);
    if (!p)
        return;
    while (t->stage_depth > 0)
        shim_stage_pop(h, t, p, now, self, 1);
}

void shim_stage_fork(struct prof_shm_header *oldh, struct prof_shm_thread *oldt, uint32_t depth,
                     struct prof_shm_header *h, struct prof_shm_thread *t, uint64_t now)
{
    struct shim_stage_thread *op = oldt ? shim_priv_of(oldh, oldt) : NULL;
    struct shim_stage_thread *p = shim_priv_of(h, t);
    if (!p)
        return;
    struct shim_stage_thread saved = {0};
    if (op)
        saved = *op;
    else
        depth = 0;
    memset(p, 0, sizeof *p);
    if (depth > PROF_SHM_STAGE_DEPTH)
        depth = PROF_SHM_STAGE_DEPTH;
    /* The child goes on inside the stages its parent had open at the fork: same names, new record,
     * from the child's start (`now`), when its thread's CPU clock read 0 (a new task's does). */
    for (uint32_t i = 0; i < depth; i++) {
        int slot = -1;
        if (saved.f[i].idx != FRAME_UNTRACKED)
            slot = shim_stage_slot(h, oldh->stages[saved.f[i].idx].name);
        shim_stage_push(h, t, p, slot, now, 1, 0);
    }
}
