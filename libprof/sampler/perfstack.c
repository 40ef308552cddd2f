/* perfstack.c: perf events (CPU-wide, or per task and inherited) that copy user registers and stack tops or record context switches, and the rings they are read from. */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "perfstack.h"
#include "prof.h"

#define RING_PAGES 256 /* data pages per CPU (1 MiB): ~60 samples of 16 KiB between two drains */

/* The x86-64 user registers libunwind may need, in perf's bit order (enum perf_event_x86_regs). */
enum { R_AX, R_BX, R_CX, R_DX, R_SI, R_DI, R_BP, R_SP, R_IP, R_FLAGS, R_CS, R_SS, R_DS, R_ES, R_FS, R_GS,
       R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15 };
#define REGS_MASK (((1ULL << (R_IP + 1)) - 1) | (0xffULL << R_R8))
/* At a switch-out: where the thread left user mode (the syscall's return address) and its first argument. */
#define SWITCH_REGS_MASK ((1ULL << R_DI) | (1ULL << R_SP) | (1ULL << R_IP))

struct ring {
    int fd;                 /* the CPU's first event: owns the mapping, the others write into it */
    struct perf_event_mmap_page *meta;
    unsigned char *data;
    size_t size;            /* data bytes, a power of two */
};

struct task {
    pid_t tid;
    int *fds;               /* one per CPU, -1 where none */
};

struct prof_pstk {
    int ncpu;
    int *cpus;              /* online CPU numbers */
    struct ring *rings;     /* per CPU (index into cpus) */
    struct task *tasks;
    size_t ntasks, captasks;
    struct perf_event_attr attr;
    size_t pagesize;
    uint64_t lost;
    int cpuwide;            /* one event per CPU for every task on it: attach is a no-op */
    int switches;           /* context-switch records, not stack samples */
    uint64_t regs_mask;
    unsigned char *tmp;     /* a record that wraps the ring end is copied here */
    size_t tmpcap;
    struct prof_pstk_switch *sw;    /* the latest drain of switch records, in time order */
    size_t nsw, capsw;
    int walk_ring;              /* the ring rings_walk is reading */
};

static int perf_open(struct perf_event_attr *a, pid_t pid, int cpu)
{
    return (int)syscall(SYS_perf_event_open, a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/* The online CPUs, from /sys (an event per CPU the task may run on). */
static int online_cpus(int **out)
{
    long n = sysconf(_SC_NPROCESSORS_CONF);
    if (n < 1)
        n = 1;
    int *c = calloc((size_t)n + 1, sizeof *c);
    if (!c)
        return PROF_ENOMEM;
    int k = 0;
    FILE *f = fopen("/sys/devices/system/cpu/online", "re");
    if (f) {
        int a, b;
        char sep;
        while (fscanf(f, "%d", &a) == 1) {
            b = a;
            if (fscanf(f, "%c", &sep) == 1 && sep == '-') {
                if (fscanf(f, "%d", &b) != 1)
                    break;
                if (fscanf(f, "%c", &sep) != 1)
                    sep = '\n';
            }
            for (int i = a; i <= b && k < n; i++)
                c[k++] = i;
            if (sep != ',')
                break;
        }
        fclose(f);
    }
    if (k == 0)
        for (k = 0; k < n; k++)
            c[k] = k;
    *out = c;
    return k;
}

static int err_of(int e)
{
    switch (e) {
    case ESRCH: return PROF_ESRCH;
    case EACCES: case EPERM: return PROF_EACCES;
    case ENOENT: case ENODEV: case ENOSYS: case EOPNOTSUPP: case EINVAL: return PROF_ENOTSUP;
    case ENOMEM: case EMFILE: case ENFILE: return PROF_ENOMEM;
    default: return PROF_EIO;
    }
}

static int ring_map(struct prof_pstk *ps, struct ring *r, int fd);

/* Unmap and close a CPU's ring (its owning event with it). */
static void ring_unmap(struct prof_pstk *ps, struct ring *r)
{
    if (r->meta)
        munmap(r->meta, (RING_PAGES + 1) * ps->pagesize);
    if (r->fd >= 0)
        close(r->fd);
    *r = (struct ring){.fd = -1};
}

static int cpuwide_open(struct prof_pstk *ps)
{
    struct perf_event_attr a = ps->attr;
    if (!ps->switches)
        a.config = PERF_COUNT_SW_CPU_CLOCK;
    a.inherit = 0;
    for (int i = 0; i < ps->ncpu; i++) {
        int fd = perf_open(&a, -1, ps->cpus[i]);
        int r = fd < 0 ? err_of(errno) : ring_map(ps, &ps->rings[i], fd);
        if (r < 0) {
            if (fd >= 0)
                close(fd);
            for (int k = 0; k < i; k++)
                ring_unmap(ps, &ps->rings[k]);
            return r;
        }
    }
    return 0;
}

/* A handle with one (unmapped) ring slot per online CPU. */
static int pstk_new(struct prof_pstk **out)
{
    struct prof_pstk *ps = calloc(1, sizeof *ps);
    if (!ps)
        return PROF_ENOMEM;
    ps->pagesize = (size_t)sysconf(_SC_PAGESIZE);
    int n = online_cpus(&ps->cpus);
    if (n < 0) {
        free(ps);
        return n;
    }
    ps->ncpu = n;
    ps->rings = calloc((size_t)n, sizeof *ps->rings);
    if (!ps->rings) {
        prof_pstk_close(ps);
        return PROF_ENOMEM;
    }
    for (int i = 0; i < n; i++)
        ps->rings[i].fd = -1;
    *out = ps;
    return 0;
}

int prof_pstk_open(uint64_t period_ns, uint32_t stack_bytes, enum prof_pstk_scope scope, struct prof_pstk **out)
{
    if (!out || period_ns == 0 || stack_bytes < 8)
        return PROF_EINVAL;
    *out = NULL;
    struct prof_pstk *ps;
    int rc = pstk_new(&ps);
    if (rc < 0)
        return rc;
    ps->regs_mask = REGS_MASK;
    struct perf_event_attr *a = &ps->attr;
    a->size = sizeof *a;
    a->type = PERF_TYPE_SOFTWARE;
    a->config = PERF_COUNT_SW_TASK_CLOCK;
    a->sample_period = period_ns;
    a->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
    a->sample_regs_user = REGS_MASK;
    a->sample_stack_user = stack_bytes & ~7U;
    a->inherit = 1;
    a->use_clockid = 1;
    a->clockid = CLOCK_MONOTONIC;
    a->exclude_hv = 1;
    a->exclude_idle = 1;
    /* Nobody polls the rings (wakeup_events, watermark left 0): the sampler reads them at its ticks. */
    /* Probe on ourselves: tells "no perf events" and "refused" apart before any target is touched. */
    int fd = perf_open(a, 0, -1);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        a->exclude_kernel = 1; /* perf_event_paranoid 2: user-mode samples are still allowed */
        fd = perf_open(a, 0, -1);
    }
    if (fd < 0) {
        int r = err_of(errno);
        prof_pstk_close(ps);
        return r;
    }
    close(fd);
    /*
     * One event per CPU for every task that runs there, where allowed (CAP_PERFMON or
     * perf_event_paranoid <= 0): nothing is switched when a thread leaves or takes a CPU.
     * Per-task events are scheduled out and in with their thread, and each switch
     * re-arms the event's timer; on this project's VM that made a 1 kHz profile of a
     * 2-thread CPU-bound program 2% slower than the CPU-wide layout. Samples of other
     * tasks are dropped unread by the caller (it knows which tids it traces).
     */
    if (scope == PROF_PSTK_CPU && cpuwide_open(ps) == 0)
        ps->cpuwide = 1;
    *out = ps;
    return 0;
}

int prof_pstk_open_switches(struct prof_pstk **out)
{
    if (!out)
        return PROF_EINVAL;
    *out = NULL;
    struct prof_pstk *ps;
    int rc = pstk_new(&ps);
    if (rc < 0)
        return rc;
    ps->switches = 1;
    ps->regs_mask = SWITCH_REGS_MASK;
    struct perf_event_attr *a = &ps->attr;
    a->size = sizeof *a;
    a->type = PERF_TYPE_SOFTWARE;
    /* A sample at every switch-out (its registers say where the thread waits), and the
     * switch records themselves (in, out, out while still runnable). */
    a->config = PERF_COUNT_SW_CONTEXT_SWITCHES;
    a->sample_period = 1;
    a->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER;
    a->sample_regs_user = SWITCH_REGS_MASK;
    a->context_switch = 1;
    a->sample_id_all = 1;
    a->use_clockid = 1;
    a->clockid = CLOCK_MONOTONIC;
    a->exclude_hv = 1;
    /*
     * CPU-wide only. The switch happens in the kernel, so exclude_kernel (all that
     * perf_event_paranoid 2 allows per task) would drop every sample; and per-task
     * events are themselves switched at each switch they would record.
     */
    if ((rc = cpuwide_open(ps)) < 0) {
        prof_pstk_close(ps);
        return rc;
    }
    ps->cpuwide = 1;
    *out = ps;
    return 0;
}

static int ring_map(struct prof_pstk *ps, struct ring *r, int fd)
{
    size_t len = (RING_PAGES + 1) * ps->pagesize;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return err_of(errno);
    r->fd = fd;
    r->meta = m;
    r->data = (unsigned char *)m + ps->pagesize;
    r->size = RING_PAGES * ps->pagesize;
    return 0;
}

int prof_pstk_attach(struct prof_pstk *ps, pid_t tid)
{
    if (!ps || tid <= 0)
        return PROF_EINVAL;
    if (ps->cpuwide)
        return 0;
    if (ps->ntasks == ps->captasks) {
        size_t nc = ps->captasks ? ps->captasks * 2 : 16;
        struct task *nt = realloc(ps->tasks, nc * sizeof *nt);
        if (!nt)
            return PROF_ENOMEM;
        ps->tasks = nt;
        ps->captasks = nc;
    }
    int *fds = malloc((size_t)ps->ncpu * sizeof *fds);
    if (!fds)
        return PROF_ENOMEM;
    int opened = 0, err = 0;
    for (int i = 0; i < ps->ncpu; i++) {
        fds[i] = perf_open(&ps->attr, tid, ps->cpus[i]);
        if (fds[i] < 0) {
            err = err_of(errno);
            if (err == PROF_ESRCH)
                break;
            continue; /* an offline CPU: the others still sample */
        }
        struct ring *r = &ps->rings[i];
        int rr = r->fd < 0 ? ring_map(ps, r, fds[i]) : (ioctl(fds[i], PERF_EVENT_IOC_SET_OUTPUT, r->fd) < 0 ? err_of(errno) : 0);
        if (rr < 0) {
            close(fds[i]);
            fds[i] = -1;
            err = rr;
            continue;
        }
        opened++;
    }
    if (!opened || err == PROF_ESRCH) {
        for (int i = 0; i < ps->ncpu; i++)
            if (fds[i] >= 0 && ps->rings[i].fd != fds[i])
                close(fds[i]);
        free(fds);
        return err ? err : PROF_EIO;
    }
    ps->tasks[ps->ntasks++] = (struct task){.tid = tid, .fds = fds};
    return 0;
}

/* Copy n bytes at ring offset off (mod size) into dst. */
static void ring_copy(const struct ring *r, uint64_t off, void *dst, size_t n)
{
    size_t o = (size_t)(off & (r->size - 1));
    size_t first = r->size - o < n ? r->size - o : n;
    memcpy(dst, r->data + o, first);
    if (first < n)
        memcpy((unsigned char *)dst + first, r->data, n - first);
}

static void regs_of(const uint64_t *v, uint64_t mask, struct user_regs_struct *u)
{
    memset(u, 0, sizeof *u);
    /* v holds the masked registers in bit order. */
    uint64_t g[R_R15 + 1] = {0};
    int j = 0;
    for (int b = 0; b <= R_R15; b++)
        if (mask & (1ULL << b))
            g[b] = v[j++];
    u->rax = g[R_AX]; u->rbx = g[R_BX]; u->rcx = g[R_CX]; u->rdx = g[R_DX];
    u->rsi = g[R_SI]; u->rdi = g[R_DI]; u->rbp = g[R_BP]; u->rsp = g[R_SP];
    u->rip = g[R_IP]; u->r8 = g[R_R8]; u->r9 = g[R_R9]; u->r10 = g[R_R10];
    u->r11 = g[R_R11]; u->r12 = g[R_R12]; u->r13 = g[R_R13]; u->r14 = g[R_R14]; u->r15 = g[R_R15];
}

/* Parse one PERF_RECORD_SAMPLE body (after the header) of len bytes. 0 if usable. */
static int parse_sample(const unsigned char *b, size_t len, uint64_t mask, struct prof_pstk_sample *smp)
{
    size_t nregs = (size_t)__builtin_popcountll(mask);
    size_t need = 8 + 8 + 8; /* pid/tid, time, regs abi */
    if (len < need)
        return -1;
    uint32_t pt[2];
    memcpy(pt, b, 8);
    smp->pid = (pid_t)pt[0];
    smp->tid = (pid_t)pt[1];
    memcpy(&smp->time, b + 8, 8);
    uint64_t abi;
    memcpy(&abi, b + 16, 8);
    size_t o = 24;
    if (abi == PERF_SAMPLE_REGS_ABI_NONE)
        return -1; /* no user context (a kernel thread) */
    if (abi != PERF_SAMPLE_REGS_ABI_64 || len < o + nregs * 8 + (mask == REGS_MASK ? 8 : 0))
        return -1; /* a 32-bit task: not unwound */
    uint64_t v[32];
    memcpy(v, b + o, nregs * 8);
    o += nregs * 8;
    regs_of(v, mask, &smp->regs);
    smp->sp = smp->regs.rsp;
    smp->stack = NULL;
    smp->len = 0;
    if (mask != REGS_MASK)
        return 0; /* switch-out samples copy no stack */
    uint64_t size;
    memcpy(&size, b + o, 8);
    o += 8;
    if (size) {
        if (len < o + size + 8)
            return -1;
        uint64_t dyn;
        memcpy(&dyn, b + o + size, 8);
        smp->stack = b + o;
        smp->len = dyn < size ? (size_t)dyn : (size_t)size;
    }
    return 0;
}

/* Hand every whole record written since the last walk to fn, ring by ring, and free the space. */
static void rings_walk(struct prof_pstk *ps,
                       void (*fn)(struct prof_pstk *ps, const struct perf_event_header *h, const unsigned char *body,
                                  size_t blen, void *ctx),
                       void *ctx)
{
    for (int i = 0; i < ps->ncpu; i++) {
        struct ring *r = &ps->rings[i];
        if (!r->meta)
            continue;
        ps->walk_ring = i;
        uint64_t head = __atomic_load_n(&r->meta->data_head, __ATOMIC_ACQUIRE);
        uint64_t tail = r->meta->data_tail;
        while (tail + sizeof(struct perf_event_header) <= head) {
            struct perf_event_header h;
            ring_copy(r, tail, &h, sizeof h);
            if (h.size < sizeof h || tail + h.size > head)
                break;
            size_t blen = h.size - sizeof h;
            uint64_t boff = tail + sizeof h;
            const unsigned char *body;
            size_t o = (size_t)(boff & (r->size - 1));
            if (o + blen <= r->size) {
                body = r->data + o;
            } else {
                if (ps->tmpcap < blen) {
                    unsigned char *t = realloc(ps->tmp, blen);
                    if (!t) {
                        tail += h.size;
                        continue;
                    }
                    ps->tmp = t;
                    ps->tmpcap = blen;
                }
                ring_copy(r, boff, ps->tmp, blen);
                body = ps->tmp;
            }
            if (h.type == PERF_RECORD_LOST && blen >= 16) {
                uint64_t n;
                memcpy(&n, body + 8, 8);
                ps->lost += n;
            } else {
                fn(ps, &h, body, blen, ctx);
            }
            tail += h.size;
        }
        __atomic_store_n(&r->meta->data_tail, tail, __ATOMIC_RELEASE);
    }
}

struct stack_walk {
    void (*fn)(void *ctx, const struct prof_pstk_sample *smp);
    void *ctx;
    size_t got;
};

static void on_stack_record(struct prof_pstk *ps, const struct perf_event_header *h, const unsigned char *body,
                            size_t blen, void *ctx)
{
    struct stack_walk *w = ctx;
    struct prof_pstk_sample smp;
    if (h->type != PERF_RECORD_SAMPLE || parse_sample(body, blen, ps->regs_mask, &smp) < 0)
        return;
    w->got++;
    if (w->fn)
        w->fn(w->ctx, &smp);
}

size_t prof_pstk_drain(struct prof_pstk *ps, void (*fn)(void *ctx, const struct prof_pstk_sample *smp), void *ctx)
{
    if (!ps || ps->switches)
        return 0;
    struct stack_walk w = {fn, ctx, 0};
    rings_walk(ps, on_stack_record, &w);
    return w.got;
}

static void sw_push(struct prof_pstk *ps, const struct prof_pstk_switch *e)
{
    if (ps->nsw == ps->capsw) {
        size_t nc = ps->capsw ? ps->capsw * 2 : 1024;
        struct prof_pstk_switch *n = realloc(ps->sw, nc * sizeof *n);
        if (!n) {
            ps->lost++;
            return;
        }
        ps->sw = n;
        ps->capsw = nc;
    }
    ps->sw[ps->nsw] = *e;
    ps->sw[ps->nsw].seq = (uint32_t)ps->nsw;
    ps->nsw++;
}

/* The pid, tid and time that sample_id_all appends (TID | TIME), len bytes from b. */
static int parse_id(const unsigned char *b, size_t len, struct prof_pstk_switch *e)
{
    if (len < 16)
        return -1;
    uint32_t pt[2];
    memcpy(pt, b, 8);
    e->pid = (pid_t)pt[0];
    e->tid = (pid_t)pt[1];
    memcpy(&e->time, b + 8, 8);
    return 0;
}

static void on_switch_record(struct prof_pstk *ps, const struct perf_event_header *h, const unsigned char *body,
                             size_t blen, void *ctx)
{
    (void)ctx;
    struct prof_pstk_switch e = {0};
    if (h->type == PERF_RECORD_SAMPLE) {
        struct prof_pstk_sample smp;
        if (parse_sample(body, blen, ps->regs_mask, &smp) < 0)
            return; /* a kernel thread */
        e.pid = smp.pid;
        e.tid = smp.tid;
        e.time = smp.time;
        e.type = PROF_SW_WHERE;
        e.ip = smp.regs.rip;
        e.arg0 = smp.regs.rdi;
        e.sp = smp.regs.rsp;
    } else if (h->type == PERF_RECORD_SWITCH || h->type == PERF_RECORD_SWITCH_CPU_WIDE) {
        size_t skip = h->type == PERF_RECORD_SWITCH_CPU_WIDE ? 8 : 0; /* next_prev_pid, next_prev_tid */
        if (blen < skip || parse_id(body + skip, blen - skip, &e) < 0)
            return;
        e.type = !(h->misc & PERF_RECORD_MISC_SWITCH_OUT)          ? PROF_SW_IN
                 : (h->misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT) ? PROF_SW_PREEMPTED
                                                                   : PROF_SW_WAIT;
    } else {
        return;
    }
    e.cpu = (uint16_t)ps->walk_ring;
    if (e.tid <= 0) {
        /* The idle task, or a task that exited: after its exit its ids read 0, so its last
         * switch-out is known only by the CPU it left (CPU-wide rings: one per CPU). */
        if (e.type != PROF_SW_WAIT && e.type != PROF_SW_PREEMPTED)
            return;
        e.type = PROF_SW_ENDED;
        e.tid = e.pid = 0;
    }
    sw_push(ps, &e);
}

static int sw_cmp(const void *a, const void *b)
{
    const struct prof_pstk_switch *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t prof_pstk_drain_switches(struct prof_pstk *ps, const struct prof_pstk_switch **out)
{
    *out = NULL;
    if (!ps || !ps->switches)
        return 0;
    ps->nsw = 0;
    rings_walk(ps, on_switch_record, NULL);
    /* A thread that moved CPU left one ring and entered another: time order, not ring order. */
    qsort(ps->sw, ps->nsw, sizeof *ps->sw, sw_cmp);
    *out = ps->sw;
    return ps->nsw;
}

int prof_pstk_cpuwide(const struct prof_pstk *ps)
{
    return ps ? ps->cpuwide : 0;
}

int prof_pstk_ncpu(const struct prof_pstk *ps)
{
    return ps ? ps->ncpu : 0;
}

uint64_t prof_pstk_lost(const struct prof_pstk *ps)
{
    return ps ? ps->lost : 0;
}

void prof_pstk_close(struct prof_pstk *ps)
{
    if (!ps)
        return;
    for (size_t k = 0; k < ps->ntasks; k++) {
        for (int i = 0; i < ps->ncpu; i++)
            if (ps->tasks[k].fds[i] >= 0 && (!ps->rings || ps->rings[i].fd != ps->tasks[k].fds[i]))
                close(ps->tasks[k].fds[i]);
        free(ps->tasks[k].fds);
    }
    free(ps->tasks);
    if (ps->rings) {
        for (int i = 0; i < ps->ncpu; i++)
            ring_unmap(ps, &ps->rings[i]);
    }
    free(ps->rings);
    free(ps->cpus);
    free(ps->tmp);
    free(ps->sw);
    free(ps);
}
