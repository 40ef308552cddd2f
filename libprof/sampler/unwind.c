/* unwind.c: native stacks of a traced thread: a fast register + stack copy while it is stopped, unwound afterwards with libunwind's remote API and our own accessors. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#include <libunwind.h>

#include "prof.h"
#include "unwind_int.h"

/*
 * libunwind exports the .eh_frame_hdr binary search but does not declare it
 * (it is how libunwind-ptrace finds procedure info). Same symbol that
 * libunwind-ptrace itself calls; present in libunwind 1.x for x86_64.
 */
extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip, unw_dyn_info_t *di,
                                              unw_proc_info_t *pi, int need_unwind_info, void *arg);

/* ---- libunwind accessors ---------------------------------------------- */

static int live_read(struct prof_unw *u, uint64_t addr, unw_word_t *val)
{
    struct iovec l = {val, sizeof(*val)}, r = {(void *)(uintptr_t)addr, sizeof(*val)};
    return process_vm_readv(u->pid, &l, 1, &r, 1, 0) == (ssize_t)sizeof(*val) ? 0 : -UNW_EINVAL;
}

static int synth_read(struct prof_unw *u, uint64_t addr, unw_word_t *val)
{
    uint64_t id = (addr - SYNTH_BASE) >> 32, off = addr & 0xffffffffu;
    for (size_t i = 0; i < u->ninsts; i++) {
        struct unw_inst *in = &u->insts[i];
        if (in->synth && in->synth_id == id) {
            if (off >= in->synth_bytes)
                return -UNW_EINVAL;
            memcpy(val, (const unsigned char *)in->synth + off, sizeof(*val)); /* padded by 8 */
            return 0;
        }
    }
    return -UNW_EINVAL;
}

/* The stretch of mapping m around addr that its image serves whole: inside the mapping and
 * the file, on addr's side of the RELRO range (addr itself is served). */
static struct span span_of(const struct unw_map *m, const struct unw_inst *in, uint64_t addr)
{
    uint64_t lo = m->start, hi = m->end;
    if (in->img.size - m->pgoff < hi - lo) /* addr is in the file, so pgoff < size */
        hi = lo + (in->img.size - m->pgoff);
    if (in->relro_lo < in->relro_hi) {
        if (in->relro_hi <= addr && in->relro_hi > lo)
            lo = in->relro_hi;
        if (in->relro_lo > addr && in->relro_lo < hi)
            hi = in->relro_lo;
    }
    return (struct span){lo, hi - lo, in->img.base + (lo - m->start + m->pgoff)};
}

static int acc_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg)
{
    (void)as;
    struct unw_ctx *c = arg;
    const struct prof_unw_view *s = c->v;
    if (write)
        return -UNW_EINVAL;
    /* A whole word inside the last span read from. */
    if (addr - c->win.lo < c->win.len && c->win.len - (addr - c->win.lo) >= sizeof(*val)) {
        memcpy(val, c->win.base + (addr - c->win.lo), sizeof(*val));
        return 0;
    }
    if (addr >= SYNTH_BASE)
        return synth_read(c->u, addr, val);
    if (addr >= s->sp && addr - s->sp <= s->len && s->len - (addr - s->sp) >= sizeof(*val)) {
        memcpy(val, s->stack + (addr - s->sp), sizeof(*val));
        return 0;
    }
    /* The rest of the stack kept changing after the copy: refuse rather than
     * splice another moment's frames into this one. */
    if (addr >= c->stack_lo && addr < c->stack_hi)
        return -UNW_EINVAL;
    struct prof_unw *u = c->u;
    struct unw_map *m = unwind_map_find(u, addr);
    if (m && m->inst != UINT32_MAX && !(m->prot & MAP_W)) {
        struct unw_inst *in = &u->insts[m->inst];
        if (!in->loaded)
            unwind_inst_load(u, in);
        uint64_t off = addr - m->start + m->pgoff;
        if (in->img.base && !(addr >= in->relro_lo && addr < in->relro_hi) && off < in->img.size &&
            in->img.size - off >= sizeof(*val)) {
            memcpy(val, in->img.base + off, sizeof(*val));
            c->win = span_of(m, in, addr);
            return 0;
        }
    }
    /* Writable or anonymous memory (a personality pointer, JIT code): read it
     * live; rare, since libunwind caches the register rules per ip. */
    if (!m)
        return -UNW_EINVAL;
    return live_read(u, addr, val);
}

static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg)
{
    (void)as;
    const struct user_regs_struct *r = ((struct unw_ctx *)arg)->v->regs;
    if (write)
        return -UNW_EREADONLYREG;
    switch (reg) {
    case UNW_X86_64_RAX: *val = r->rax; break;
    case UNW_X86_64_RDX: *val = r->rdx; break;
    case UNW_X86_64_RCX: *val = r->rcx; break;
    case UNW_X86_64_RBX: *val = r->rbx; break;
    case UNW_X86_64_RSI: *val = r->rsi; break;
    case UNW_X86_64_RDI: *val = r->rdi; break;
    case UNW_X86_64_RBP: *val = r->rbp; break;
    case UNW_X86_64_RSP: *val = r->rsp; break;
    case UNW_X86_64_R8: *val = r->r8; break;
    case UNW_X86_64_R9: *val = r->r9; break;
    case UNW_X86_64_R10: *val = r->r10; break;
    case UNW_X86_64_R11: *val = r->r11; break;
    case UNW_X86_64_R12: *val = r->r12; break;
    case UNW_X86_64_R13: *val = r->r13; break;
    case UNW_X86_64_R14: *val = r->r14; break;
    case UNW_X86_64_R15: *val = r->r15; break;
    case UNW_X86_64_RIP: *val = r->rip; break;
    default:
        return -UNW_EBADREG;
    }
    return 0;
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg)
{
    (void)as, (void)reg, (void)val, (void)write, (void)arg;
    return -UNW_EBADREG;
}

/* The loaded instance whose unwind table covers code address ip, or NULL. */
static struct unw_inst *inst_of_code(struct unw_ctx *c, uint64_t ip)
{
    struct unw_map *m = unwind_map_find_reload(c, ip);
    if (!m || m->inst == UINT32_MAX)
        return NULL;
    struct unw_inst *in = &c->u->insts[m->inst];
    if (!in->loaded)
        unwind_inst_load(c->u, in);
    return in->have_di && ip >= in->di.start_ip && ip < in->di.end_ip ? in : NULL;
}

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need_unwind_info,
                              void *arg)
{
    struct unw_inst *in = inst_of_code(arg, ip);
    if (!in)
        return -UNW_ENOINFO;
    return _Ux86_64_dwarf_search_unwind_table(as, ip, &in->di, pi, need_unwind_info, arg);
}

/* Only called for dynamically registered unwind info, which we never report;
 * libunwind frees the DWARF info of table lookups itself. */
static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    (void)as, (void)pi, (void)arg;
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    (void)as, (void)addr, (void)arg;
    return -UNW_ENOINFO;
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *cur, void *arg)
{
    (void)as, (void)cur, (void)arg;
    return -UNW_EINVAL;
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len, unw_word_t *off,
                             void *arg)
{
    (void)as, (void)addr, (void)buf, (void)len, (void)off, (void)arg;
    return -UNW_ENOINFO; /* names are the merge's job */
}

static unw_accessors_t accessors = {
    .find_proc_info = acc_find_proc_info,
    .put_unwind_info = acc_put_unwind_info,
    .get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
    .access_mem = acc_access_mem,
    .access_reg = acc_access_reg,
    .access_fpreg = acc_access_fpreg,
    .resume = acc_resume,
    .get_proc_name = acc_get_proc_name,
};

/* ---- the fast path ---------------------------------------------------- */

/* Frame record of an ip: module and file offset, or the raw ip outside file mappings. */
static const struct unw_map *frame_of(struct unw_ctx *c, uint64_t ip, struct prof_unw_frame *f)
{
    struct unw_map *m = unwind_map_find_reload(c, ip);
    if (m && m->module != UINT32_MAX) {
        f->module = m->module;
        f->offset = ip - m->start + m->pgoff;
    } else {
        f->module = UINT32_MAX;
        f->offset = ip;
    }
    return m;
}

/*
 * Most frames need only "CFA = rsp or rbp + k, return address and maybe rbp saved at CFA +
 * j": an unwind that finds such a rule (decoded by cfi.c from the module's mapped .eh_frame,
 * cached by address) for every frame is done here, a few loads a frame. libunwind's cursor
 * touches far more memory per step, and at 100 Hz every step starts with cold caches
 * (bench/unwind_micro evict). A stack with any other frame (a signal frame, an expression
 * rule, no FDE, a slot outside the copy) is unwound by libunwind, from the start.
 */

/* Local bytes [va, va + len) of instance in's image, read-only, file-backed, outside RELRO;
 * the stretch around them is kept: a module's tables are read over and over. */
static const unsigned char *inst_at(struct unw_ctx *c, struct unw_inst *in, uint64_t va, size_t len)
{
    struct span *sp = &in->span;
    if (va - sp->lo < sp->len && len <= sp->len - (va - sp->lo))
        return sp->base + (va - sp->lo);
    struct prof_unw *u = c->u;
    struct unw_map *m = unwind_map_find(u, va);
    if (!m || m->inst == UINT32_MAX || &u->insts[m->inst] != in || (m->prot & MAP_W) || len > m->end - va)
        return NULL;
    uint64_t off = va - m->start + m->pgoff;
    if (!in->img.base || off > in->img.size || len > in->img.size - off ||
        (va < in->relro_hi && va + len > in->relro_lo))
        return NULL;
    *sp = span_of(m, in, va);
    return in->img.base + off;
}

/* A whole CIE or FDE record of instance in at va (its length word first). */
static const unsigned char *record_at(struct unw_ctx *c, struct unw_inst *in, uint64_t va, size_t *len)
{
    const unsigned char *p = inst_at(c, in, va, 4);
    uint32_t l;
    if (!p)
        return NULL;
    memcpy(&l, p, 4);
    if (l == 0 || l == 0xffffffffu)
        return NULL;
    *len = (size_t)l + 4;
    return inst_at(c, in, va, *len);
}

/* The rule at code address loc, decoded from the module's .eh_frame, and the extent of its
 * row, [*row_lo, *row_hi): 0, or < 0 when libunwind must do it. */
static int rule_decode(struct unw_ctx *c, uint64_t loc, struct prof_cfi_rule *r, uint64_t *row_lo,
                       uint64_t *row_hi)
{
    struct unw_inst *in = inst_of_code(c, loc);
    if (!in)
        return PROF_ENOTSUP;
    size_t n = (size_t)in->di.u.rti.table_len * sizeof(unw_word_t) / 8;
    uint64_t seg = in->di.u.rti.segbase;
    const int32_t *tab = in->synth ? in->synth : (const int32_t *)inst_at(c, in, in->di.u.rti.table_data, n * 8);
    if (!tab || n == 0)
        return PROF_ENOTSUP;
    /* The last entry that starts at or before loc (both sorted, relative to segbase). */
    int64_t rel = (int64_t)(loc - seg);
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((int64_t)tab[2 * mid] <= rel)
            lo = mid;
        else
            hi = mid;
    }
    if ((int64_t)tab[2 * lo] > rel)
        return PROF_ENOTSUP;
    uint64_t fde_va = seg + (uint64_t)(int64_t)tab[2 * lo + 1], cie_va;
    size_t flen, clen;
    const unsigned char *fde = record_at(c, in, fde_va, &flen), *cie;
    if (!fde || prof_cfi_fde_cie(fde, flen, fde_va, &cie_va) < 0 || !(cie = record_at(c, in, cie_va, &clen)))
        return PROF_ENOTSUP;
    return prof_cfi_rule_span(cie, clen, cie_va, fde, flen, fde_va, loc, r, row_lo, row_hi);
}

static const struct fast_ent *rule_find(struct unw_ctx *c, uint64_t loc)
{
    struct prof_unw *u = c->u;
    if (!u->fast && !(u->fast = calloc(FAST_SLOTS, sizeof *u->fast)))
        return NULL;
    struct fast_ent *e = &u->fast[((loc * 0x9E3779B97F4A7C15ULL) >> 40) & (FAST_SLOTS - 1)];
    if (e->state && e->loc == loc)
        return e;
    struct prof_cfi_rule r;
    uint64_t lo = loc, hi = loc + 1, t = mono_ns(), l = u->load_ns;
    int rc = rule_decode(c, loc, &r, &lo, &hi);
    uint64_t d = mono_ns() - t, dl = u->load_ns - l;
    u->decode_ns += d > dl ? d - dl : 0;
    u->decodes++;
    /* A reload inside rule_decode cleared the table: e still points into it. */
    *e = (struct fast_ent){.loc = loc, .lo = lo, .hi = hi, .r = r, .state = rc == 0 ? 1 : 2};
    return e;
}

static int stack_word(const struct prof_unw_view *v, uint64_t addr, uint64_t *val)
{
    if (addr < v->sp || addr - v->sp > v->len || v->len - (addr - v->sp) < 8)
        return -1;
    memcpy(val, v->stack + (addr - v->sp), 8);
    return 0;
}

/* The whole unwind by cached rules, with prof_unw_unwind_slots' results: 0, or -1 when
 * libunwind must do it (frames and slots are then partly written). */
static size_t memo_slot(uint64_t sp)
{
    return (size_t)(((sp >> 16) * 0x9E3779B97F4A7C15ULL) >> 40) & (MEMO_STACKS - 1);
}

/* The memo of the stack holding sp, or NULL. */
static struct unw_memo *memo_find(struct prof_unw *u, uint64_t sp)
{
    if (!u->memo)
        return NULL;
    struct unw_memo *m = &u->memo[memo_slot(sp)];
    if (m->gen != u->gen || sp < m->lo || sp >= m->hi)
        return NULL;
    /* Its frames are read one after another, each address known only from the one before:
     * ask for them all at once. */
    for (uint32_t i = 0; i < m->n; i++)
        __builtin_prefetch(&m->frames[i]);
    return m;
}

/* The entry whose extent holds code address loc, or NULL. A thread caught at the same depth
 * as last time finds frame k at k; one a call deeper or shallower (running, then blocked in
 * a lock under the same callers) finds it elsewhere. */
static const struct memo_frame *memo_lookup(const struct unw_memo *m, size_t k, uint64_t loc)
{
    if (k < m->n && loc - m->frames[k].lo < m->frames[k].hi - m->frames[k].lo)
        return &m->frames[k];
    for (size_t i = 0; i < m->n; i++)
        if (loc - m->frames[i].lo < m->frames[i].hi - m->frames[i].lo)
            return &m->frames[i];
    return NULL;
}

/* sp's memo, now for the stack mapping [lo, hi) and empty; NULL without memory. */
static struct unw_memo *memo_claim(struct prof_unw *u, uint64_t sp, uint64_t lo, uint64_t hi)
{
    if (!u->memo) {
        if (!(u->memo = aligned_alloc(64, MEMO_STACKS * sizeof *u->memo)))
            return NULL;
        memset(u->memo, 0, MEMO_STACKS * sizeof *u->memo); /* gen 0: empty (u->gen is 1 from the first maps read on) */
    }
    struct unw_memo *m = &u->memo[memo_slot(sp)];
    m->lo = lo;
    m->hi = hi;
    m->gen = u->gen;
    m->n = m->next = 0;
    return m;
}

static int fast_walk(struct unw_ctx *c, struct prof_unw_frame *frames, struct prof_unw_slot *slots, size_t cap,
                     size_t *n, int *whole)
{
    const struct prof_unw_view *v = c->v;
    uint64_t pc = v->regs->rip, sp = v->regs->rsp, bp = v->regs->rbp;
    int bp_known = !v->no_rbp;
    if (pc == 0)
        return -1;
    struct unw_memo *mo = c->memo;
    uint64_t gen = c->u->gen;
    size_t k = 0;
    for (;;) {
        if (pc == 0) { /* a null return address ends a chain */
            *whole = 1;
            break;
        }
        if (slots && k > 0)
            slots[k - 1] = (struct prof_unw_slot){sp - 8, pc};
        /* A return address is looked up at the call (it may be a function's last byte). */
        uint64_t loc = k == 0 ? pc : pc - 1;
        const struct memo_frame *mf = mo ? memo_lookup(mo, k, loc) : NULL;
        if (mf && pc - mf->start >= mf->end - mf->start)
            mf = NULL; /* a call that is its mapping's last byte: the return address lies beyond */
        struct prof_cfi_rule rule;
        const struct prof_cfi_rule *r;
        if (mf) {
            frames[k].module = mf->module;
            frames[k].offset = mf->module != UINT32_MAX ? pc - mf->start + mf->pgoff : pc;
            k++;
            if (k == cap) {
                *whole = 1;
                break;
            }
            r = &mf->r;
        } else {
            const struct unw_map *m = frame_of(c, pc, &frames[k++]);
            if (k == cap) {
                *whole = 1;
                break;
            }
            const struct fast_ent *e = rule_find(c, loc);
            if (!e || e->state != 1)
                return -1;
            rule = e->r; /* a reload inside rule_find may have cleared the table */
            r = &rule;
            if (mo && m && c->u->gen == gen) {
                /* The extent is cut to the mapping: a frame taken from here needs no lookup. */
                size_t i = mo->n < MEMO_FRAMES ? mo->n++ : mo->next++ % MEMO_FRAMES;
                mo->frames[i] = (struct memo_frame){.lo = e->lo > m->start ? e->lo : m->start,
                                                    .hi = e->hi < m->end ? e->hi : m->end,
                                                    .start = m->start, .end = m->end, .pgoff = m->pgoff,
                                                    .module = m->module, .r = rule};
            }
        }
        if (r->cfa_reg != PROF_CFI_RSP && !bp_known)
            return -1;
        uint64_t cfa = (r->cfa_reg == PROF_CFI_RSP ? sp : bp) + (uint64_t)(int64_t)r->cfa_off, ra, nbp = bp;
        if (r->ra == PROF_CFI_UNDEF) { /* the outermost frame (_start, clone3) */
            *whole = 1;
            break;
        }
        if (stack_word(v, cfa + (uint64_t)(int64_t)r->ra_off, &ra) < 0 ||
            (r->rbp == PROF_CFI_AT && stack_word(v, cfa + (uint64_t)(int64_t)r->rbp_off, &nbp) < 0) ||
            (ra == pc && cfa == sp))
            return -1;
        bp_known |= r->rbp == PROF_CFI_AT;
        pc = ra;
        sp = cfa;
        bp = nbp;
    }
    *n = k;
    return 0;
}

/* ---- signal masks ----------------------------------------------------- */

/*
 * libunwind takes its rule cache's lock with every signal blocked and gives the mask back
 * after: two sigprocmask system calls for each frame, ~250 ns of the ~330 ns a cached frame
 * cost on this project's VM. So an unwind blocks every signal once, for the whole walk;
 * while it does, the thread's mask is known, and a sigprocmask from libunwind that would
 * leave it as it is gets its answer here without entering the kernel. Every other call,
 * on any thread of the tool, is glibc's own: pthread_sigmask, errno from its result.
 */
static __thread int quiet;            /* inside an unwind: every blockable signal blocked */
static __thread int quiet_known;
static __thread uint64_t quiet_bits;  /* that mask as the kernel holds it (signals 1..64) */
static __thread sigset_t quiet_mask;

static uint64_t low_bits(const sigset_t *set)
{
    uint64_t w;
    memcpy(&w, set, sizeof w); /* glibc's sigset_t: signal n is bit n - 1 of the first word */
    return w;
}

static int quiet_begin(sigset_t *saved)
{
    sigset_t all;
    sigfillset(&all);
    if (pthread_sigmask(SIG_SETMASK, &all, saved) != 0)
        return 0;
    /* glibc never blocks its own two signals, nor the kernel SIGKILL and SIGSTOP: ask once. */
    if (!quiet_known && pthread_sigmask(SIG_BLOCK, NULL, &quiet_mask) == 0) {
        quiet_bits = low_bits(&quiet_mask);
        quiet_known = 1;
    }
    quiet = quiet_known;
    return 1;
}

static void quiet_end(int masked, const sigset_t *saved)
{
    quiet = 0;
    if (masked)
        pthread_sigmask(SIG_SETMASK, saved, NULL);
}

__attribute__((visibility("default"))) int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    if (quiet && (!set || how == SIG_BLOCK || (how == SIG_SETMASK && (low_bits(set) & quiet_bits) == quiet_bits))) {
        if (old)
            *old = quiet_mask;
        return 0;
    }
    int e = pthread_sigmask(how, set, old);
    if (e != 0) {
        errno = e;
        return -1;
    }
    if (set)
        quiet = 0; /* the mask may have changed: no longer known */
    return 0;
}

/* ---- public API ------------------------------------------------------- */

int prof_unw_open(pid_t pid, struct prof_unw **out)
{
    if (pid <= 0 || !out)
        return PROF_EINVAL;
    struct prof_unw *u = calloc(1, sizeof(*u));
    if (!u)
        return PROF_ENOMEM;
    u->pid = pid;
    u->pagesize = sysconf(_SC_PAGESIZE);
    if (u->pagesize <= 0)
        u->pagesize = 4096;
    int rc = unwind_maps_load(u, 0);
    if (rc < 0) {
        prof_unw_close(u);
        return rc;
    }
    u->as = unw_create_addr_space(&accessors, 0);
    if (!u->as) {
        prof_unw_close(u);
        return PROF_ENOMEM;
    }
    /*
     * The register rules per ip are cached per address space: after warm-up a step needs
     * no .eh_frame lookup at all. (The per-thread policy would share one cache between
     * every process unwound on the thread, and Debian's libunwind, built without it,
     * quietly takes the global one anyway.) The cache's lock masks signals; see
     * sigprocmask below for why that costs nothing here.
     */
    unw_set_caching_policy(u->as, UNW_CACHE_GLOBAL);
    const char *e = getenv("POOLPROF_UNWIND");
    u->fast_off = e && strcmp(e, "libunwind") == 0;
    *out = u;
    return 0;
}

void prof_unw_close(struct prof_unw *u)
{
    if (!u)
        return;
    if (u->as)
        unw_destroy_addr_space(u->as);
    unwind_insts_release(u->insts, u->ninsts);
    free(u->maps);
    free(u->fast);
    free(u->memo);
    for (size_t i = 0; i < u->npaths; i++)
        free(u->paths[i]);
    free(u->paths);
    free(u);
}

void prof_unw_invalidate(struct prof_unw *u)
{
    if (!u)
        return;
    /* After an exec nothing cached may be trusted: the same addresses now
     * hold other code. A failed read (the process is gone) leaves no maps. */
    if (unwind_maps_load(u, 0) < 0) {
        unwind_insts_release(u->insts, u->ninsts);
        free(u->maps);
        u->insts = NULL;
        u->maps = NULL;
        u->ninsts = u->nmaps = 0;
        u->last_hit = 0;
    }
    /* Read at the exec event, the maps hold the binary and the loader only: the first
     * miss (libc, mapped a moment later) must re-read them at once. */
    u->reload_after = 0;
    u->gen++; /* the memos too, even when no maps could be read */
    if (u->as)
        unw_flush_cache(u->as, 0, 0);
}

int prof_unw_capture(struct prof_unw *u, pid_t tid, struct prof_unw_snap *snap)
{
    return prof_unw_capture_to(u, tid, snap, 0);
}

static int copy_stack(struct prof_unw *u, pid_t tid, struct prof_unw_snap *snap, uint64_t top);

int prof_unw_capture_to(struct prof_unw *u, pid_t tid, struct prof_unw_snap *snap, uint64_t top)
{
    if (!u || !snap)
        return PROF_EINVAL;
    if (ptrace(PTRACE_GETREGS, tid, NULL, &snap->regs) < 0)
        return errno == ESRCH ? PROF_ESRCH : PROF_EIO;
    snap->no_rbp = 0;
    return copy_stack(u, tid, snap, top);
}

int prof_unw_copy_blocked(struct prof_unw *u, pid_t tid, uint64_t pc, uint64_t sp, struct prof_unw_snap *snap,
                          uint64_t top)
{
    if (!u || !snap)
        return PROF_EINVAL;
    memset(&snap->regs, 0, sizeof snap->regs);
    snap->regs.rip = pc;
    snap->regs.rsp = sp;
    snap->no_rbp = 1;
    return copy_stack(u, tid, snap, top);
}

/* snap->regs.rsp up to top (see prof_unw_capture_to) into snap->stack. */
static int copy_stack(struct prof_unw *u, pid_t tid, struct prof_unw_snap *snap, uint64_t top)
{
    snap->tid = tid;
    snap->sp = snap->regs.rsp;
    snap->len = 0;

    /*
     * One remote iovec per page: process_vm_readv stops at the first element
     * it cannot read, so the copy ends exactly at the top of the stack's
     * mapping without knowing where that is (no /proc read here: the thread
     * is stopped while we work).
     */
    uint64_t page = (uint64_t)u->pagesize;
    struct iovec remote[PROF_UNW_STACK_BYTES / 4096 + 2];
    size_t nr = 0, want = PROF_UNW_STACK_BYTES;
    /* Not known yet: the end of the mapping sp lies in, as last read (no /proc read while
     * the thread is stopped). A pthread's stack ends a few KiB above its first frame, where
     * the memory above may well be readable: 64 KiB were copied for a thread using 2. */
    if (!top) {
        const struct unw_map *m = unwind_map_find(u, snap->sp);
        if (m)
            top = m->end;
    }
    if (top > snap->sp && top - snap->sp < want)
        want = (size_t)(top - snap->sp);
    size_t cap = want;
    uint64_t a = snap->sp;
    while (want > 0 && nr < sizeof(remote) / sizeof(remote[0])) {
        uint64_t chunk = page - (a & (page - 1));
        if (chunk > want)
            chunk = want;
        remote[nr].iov_base = (void *)(uintptr_t)a;
        remote[nr].iov_len = chunk;
        nr++;
        a += chunk;
        want -= chunk;
    }
    struct iovec local = {snap->stack, cap - want};
    ssize_t r = process_vm_readv(tid, &local, 1, remote, nr, 0);
    if (r < 0) {
        if (errno == ESRCH)
            return PROF_ESRCH;
        /* An unreadable sp: the pc alone is still a sample. */
        return errno == EFAULT ? 0 : PROF_EIO;
    }
    snap->len = (size_t)r;
    return 0;
}

int prof_unw_unwind(struct prof_unw *u, const struct prof_unw_snap *snap, struct prof_unw_frame *frames,
                    size_t cap, size_t *n)
{
    return prof_unw_unwind_slots(u, snap, frames, NULL, cap, n, NULL);
}

static int unwind_walk(struct prof_unw *u, const struct prof_unw_view *v, struct prof_unw_frame *frames,
                       struct prof_unw_slot *slots, size_t cap, size_t *n, int *whole);

int prof_unw_unwind_slots(struct prof_unw *u, const struct prof_unw_snap *snap, struct prof_unw_frame *frames,
                          struct prof_unw_slot *slots, size_t cap, size_t *n, int *whole)
{
    if (!snap)
        return PROF_EINVAL;
    struct prof_unw_view v = {&snap->regs, snap->sp, snap->stack, snap->len, snap->no_rbp};
    return prof_unw_unwind_view(u, &v, frames, slots, cap, n, whole);
}

int prof_unw_unwind_view(struct prof_unw *u, const struct prof_unw_view *v, struct prof_unw_frame *frames,
                         struct prof_unw_slot *slots, size_t cap, size_t *n, int *whole)
{
    int whole_ = 0;
    if (!whole)
        whole = &whole_;
    *whole = 0;
    if (!u || !v || !v->regs || (!v->stack && v->len) || !frames || !n || cap == 0)
        return PROF_EINVAL;
    *n = 0;
    return unwind_walk(u, v, frames, slots, cap, n, whole);
}

/* prof_unw_unwind_slots' walk: 0 with *n >= 1, or PROF_ENOTSUP with *n = 0 for a view
 * without rbp that the rules alone do not unwind (libunwind would take rbp as 0). */
static int unwind_walk(struct prof_unw *u, const struct prof_unw_view *v, struct prof_unw_frame *frames,
                       struct prof_unw_slot *slots, size_t cap, size_t *n, int *whole)
{
    struct unw_ctx c = {.u = u, .v = v};
    /* A thread started after the maps were read has a stack they do not list: read them again. */
    struct unw_map *sm = NULL;
    if (!u->fast_off && (c.memo = memo_find(u, v->sp))) {
        c.stack_lo = c.memo->lo;
        c.stack_hi = c.memo->hi;
    } else if ((sm = unwind_map_find_reload(&c, v->sp))) {
        c.stack_lo = sm->start;
        c.stack_hi = sm->end;
        if (!u->fast_off)
            c.memo = memo_claim(u, v->sp, sm->start, sm->end);
    } else {
        /*
         * Still unknown (re-read too recently): treat the usual thread-stack span around sp
         * as stale, but never a mapping we know, such as libc, which glibc often places just
         * above the thread stacks (its unwind tables read as "stale stack" cut every stack
         * of such a thread at its first frame).
         */
        c.stack_lo = v->sp > 65536 ? v->sp - 65536 : 0;
        c.stack_hi = v->sp + 8 * 1024 * 1024;
        for (size_t i = 0; i < u->nmaps; i++) {
            const struct unw_map *m = &u->maps[i];
            if (m->start >= v->sp && m->start < c.stack_hi)
                c.stack_hi = m->start;
            if (m->end <= v->sp && m->end > c.stack_lo)
                c.stack_lo = m->end;
        }
    }

    if (!u->fast_off && fast_walk(&c, frames, slots, cap, n, whole) == 0) {
        u->fast_unwinds++;
        return 0;
    }
    *whole = 0;
    if (v->no_rbp) {
        *n = 0;
        return PROF_ENOTSUP;
    }
    u->slow_unwinds++;
    sigset_t saved;
    int masked = quiet_begin(&saved);
    size_t k = 0;
    int step = 0;
    unw_cursor_t cur;
    if (unw_init_remote(&cur, u->as, &c) < 0)
        goto out;
    do {
        unw_word_t ip, sp;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0)
            break;
        if (ip == 0) {
            step = 0; /* a null return address ends a chain too */
            break;
        }
        /* x86-64: the caller's sp is the callee's CFA, and the return address sat just below
         * it (a signal frame's ip comes from elsewhere: its slot will not match, which only
         * costs a stop). */
        if (slots && k > 0)
            slots[k - 1] = (struct prof_unw_slot){
                unw_get_reg(&cur, UNW_REG_SP, &sp) == 0 ? (uint64_t)sp - 8 : 0, (uint64_t)ip};
        /* Frames after the first hold return addresses, kept raw. */
        frame_of(&c, ip, &frames[k++]);
    } while (k < cap && (step = unw_step(&cur)) > 0);
    /* unw_step is 0 at the outermost frame (its return address undefined in the CFI, as
     * in _start and clone3), negative where it could not go on. */
    *whole = k > 0 && (k == cap || step == 0);
out:
    quiet_end(masked, &saved);
    if (k == 0) {
        frame_of(&c, v->regs->rip, &frames[0]);
        k = 1;
    }
    *n = k;
    return 0;
}

void prof_unw_load_stats(const struct prof_unw *u, uint64_t *ns, uint64_t *n)
{
    *ns = u ? u->load_ns : 0;
    *n = u ? u->loads : 0;
}

void prof_unw_decode_stats(const struct prof_unw *u, uint64_t *ns, uint64_t *n)
{
    *ns = u ? u->decode_ns : 0;
    *n = u ? u->decodes : 0;
}

void prof_unw_path_stats(const struct prof_unw *u, uint64_t *fast, uint64_t *slow)
{
    *fast = u ? u->fast_unwinds : 0;
    *slow = u ? u->slow_unwinds : 0;
}

const char *prof_unw_module_path(const struct prof_unw *u, uint32_t module)
{
    if (!u || module >= u->npaths)
        return NULL;
    return u->paths[module];
}
