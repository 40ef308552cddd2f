/* locksite.c: the per-lock table of the record: which locks were contended, their figures, and the call site that waited most, named at the process's end. */
#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <time.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "shim.h"

/*
 * The per-lock table. A lock enters h->locks[] (CAS on addr) at its first
 * contended acquisition. The fast paths look it up in a private, dense copy
 * of the addresses (lk_addr): one load when no lock was ever contended, a
 * hash and a probe or two otherwise. Mutex figures are updated by the
 * thread holding the mutex (so plain adds); other kinds use atomic adds.
 */

uintptr_t lk_addr[PROF_SHM_MAX_LOCKS];
struct lk_priv lk_priv[PROF_SHM_MAX_LOCKS];
int lk_any;
/* Set before the first entry of lk_addr is written (lk_any only after): the tables are cleared
 * in a fork child only if they were written, as a memset of 24 KB of untouched pages costs the
 * child six page faults. */
static int lk_dirty;

void shim_lock_fork_child_fast(void)
{
    if (__atomic_load_n(&lk_any, __ATOMIC_RELAXED))
        __atomic_store_n(&lk_any, 0, __ATOMIC_RELEASE);
}

void shim_lock_fork_child(void)
{
    /* The child's record starts with an empty table. */
    if (__atomic_load_n(&lk_dirty, __ATOMIC_ACQUIRE)) {
        memset(lk_addr, 0, sizeof lk_addr);
        memset(lk_priv, 0, sizeof lk_priv);
        lk_dirty = 0;
    }
    lk_any = 0;
}

static int lk_claim(const void *a, uint32_t kind)
{
    struct prof_shm_header *h = shim_hdr;
    if (!h)
        return -1;
    unsigned i = lk_hash(a);
    for (int k = 0; k < LK_PROBES; k++, i = (i + 1) % PROF_SHM_MAX_LOCKS) {
        struct prof_shm_lock *l = &h->locks[i];
        uint64_t cur = __atomic_load_n(&l->addr, __ATOMIC_ACQUIRE);
        if (cur == 0) {
            if (shim_record_room(l, sizeof *l) < 0)
                return -1; /* no disk block for the slot: the lock goes untracked */
            if (__atomic_compare_exchange_n(&l->addr, &cur, (uint64_t)(uintptr_t)a, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                l->kind = kind;
                /* Once per lock: how much of the process's CPU went by unwatched. */
                struct timespec ts;
                if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0)
                    l->claim_cpu_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
                cur = (uint64_t)(uintptr_t)a;
            }
        }
        if (cur == (uint64_t)(uintptr_t)a) {
            __atomic_store_n(&lk_dirty, 1, __ATOMIC_RELEASE);
            __atomic_store_n(&lk_addr[i], (uintptr_t)a, __ATOMIC_RELEASE);
            __atomic_store_n(&lk_any, 1, __ATOMIC_RELAXED);
            return (int)i;
        }
    }
    return -1;
}

/* Charge a contended wait to call site pc; the site with the most wait becomes site_pc. */
static void lk_site(int i, uintptr_t pc, uint64_t wait)
{
    struct lk_priv *p = &lk_priv[i];
    int j, best = 0;
    for (j = 0; j < LK_SITES; j++)
        if (p->site_pc[j] == pc || !p->site_pc[j])
            break;
    if (j == LK_SITES) {
        /* full: the least waited-on candidate gives way */
        j = 0;
        for (int k = 1; k < LK_SITES; k++)
            if (p->site_wait[k] < p->site_wait[j])
                j = k;
        p->site_wait[j] = 0;
    }
    p->site_pc[j] = pc;
    p->site_wait[j] += wait;
    for (int k = 1; k < LK_SITES; k++)
        if (p->site_wait[k] > p->site_wait[best])
            best = k;
    shim_hdr->locks[i].site_pc = p->site_pc[best];
}

void lk_contended(const void *a, uint32_t kind, uintptr_t pc, uint64_t wait)
{
    int i = lk_claim(a, kind);
    if (i < 0)
        return;
    struct prof_shm_lock *l = &shim_hdr->locks[i];
    if (kind == PROF_LOCK_MUTEX) {
        l->contended++;
        l->wait_ns += wait;
    } else {
        __atomic_fetch_add(&l->contended, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&l->wait_ns, wait, __ATOMIC_RELAXED);
        __atomic_fetch_add(&l->acquisitions, 1, __ATOMIC_RELAXED);
    }
    lk_site(i, pc, wait);
}

static char *shim_fmt_hex(char *dst, uint64_t v)
{
    char tmp[17];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    dst = shim_stpcpy(dst, "0x");
    while (n)
        *dst++ = tmp[--n];
    *dst = '\0';
    return dst;
}

/* unw_get_accessors and unw_local_addr_space are macros naming per-architecture symbols. */
#define SHIM_STR_(x) #x
#define SHIM_STR(x) SHIM_STR_(x)

/*
 * libunwind's local accessors, loaded on first use: the target's copy if it has one, else
 * dlopen'ed now. NULL when libunwind cannot be loaded: dladdr's names (.dynsym) stand alone.
 */
static unw_accessors_t *shim_unw_accessors(unw_addr_space_t *as)
{
    void *lib = dlopen(SHIM_LIBUNWIND_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!lib)
        lib = dlopen(SHIM_LIBUNWIND_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return NULL;
    unw_accessors_t *(*get)(unw_addr_space_t) =
        (unw_accessors_t * (*)(unw_addr_space_t)) dlsym(lib, SHIM_STR(unw_get_accessors));
    unw_addr_space_t *space = dlsym(lib, SHIM_STR(unw_local_addr_space));
    if (!get || !space)
        return NULL;
    *as = *space;
    return get(*as);
}

/*
 * libunwind's local get_proc_name reads the module's .symtab, so static
 * functions (the usual `worker`) resolve where dladdr (.dynsym only) fails.
 * Runs once per image at its end, outside the hot paths, and only where a
 * contended lock has a site to name.
 */
void shim_lock_symbolise(struct prof_shm_header *h)
{
    /* No lock entered the table: its pages are not read at all (on a sparse record each is a
     * hole the kernel would fill with zeros, a third of what a short image's end cost). */
    if (!__atomic_load_n(&lk_any, __ATOMIC_ACQUIRE))
        return;
    unw_accessors_t *acc = NULL;
    unw_addr_space_t as = NULL;
    int tried = 0;
    /* libunwind reads files and takes locks: none of that is the target's. */
    struct prof_shm_thread *self = shim_tls_slot;
    shim_tls_slot = NULL;
    for (int i = 0; i < PROF_SHM_MAX_LOCKS; i++) {
        struct prof_shm_lock *l = &h->locks[i];
        if (!__atomic_load_n(&lk_addr[i], __ATOMIC_ACQUIRE) || !l->addr || !l->contended || !l->site_pc || l->site[0])
            continue;
        if (!tried) {
            tried = 1;
            acc = shim_unw_accessors(&as);
        }
        /* pc - 1: a call that ends its function returns past it. */
        uintptr_t pc = (uintptr_t)l->site_pc;
        char name[PROF_SHM_SITE_BYTES] = "";
        unw_word_t off = 0;
        if (acc && acc->get_proc_name &&
            acc->get_proc_name(as, pc - 1, name, 96, &off, NULL) == 0)
            off += 1;
        else
            name[0] = '\0';
        const char *mod = NULL;
        Dl_info info;
        const ElfW(Sym) *sym = NULL;
        struct link_map *lm = NULL;
        if (dladdr1((void *)(pc - 1), &info, (void **)&sym, RTLD_DL_SYMENT) && info.dli_fname) {
            mod = strrchr(info.dli_fname, '/');
            mod = mod ? mod + 1 : info.dli_fname;
            /*
             * libunwind takes the nearest symbol below pc whatever its size: in a stripped
             * binary a static function would wear the name of the exported one before it.
             * Its name is dropped when the dynamic symbol at the address it names is that
             * one and ends before pc (dladdr itself matches only symbols that cover pc).
             */
            Dl_info at;
            const ElfW(Sym) *named = NULL;
            if (name[0] && off > 0 && dladdr1((void *)(pc - off), &at, (void **)&named, RTLD_DL_SYMENT) && named &&
                at.dli_sname && (uintptr_t)at.dli_saddr == pc - off && strcmp(at.dli_sname, name) == 0 &&
                named->st_size && off - 1 >= named->st_size)
                name[0] = '\0';
            if (!name[0] && sym && info.dli_sname && info.dli_saddr) {
                size_t n = strlen(info.dli_sname);
                if (n > 95)
                    n = 95;
                memcpy(name, info.dli_sname, n);
                name[n] = '\0';
                off = pc - (uintptr_t)info.dli_saddr;
            } else if (!name[0] && dladdr1((void *)(pc - 1), &info, (void **)&lm, RTLD_DL_LINKMAP) && lm) {
                off = pc - (uintptr_t)lm->l_addr; /* the module's own address, as objdump shows it */
            }
        }
        char site[PROF_SHM_SITE_BYTES + 128];
        char *p = site;
        if (name[0]) {
            p = shim_stpcpy(p, name);
            p = shim_stpcpy(p, "+");
        }
        p = shim_fmt_hex(p, off);
        if (mod) {
            p = shim_stpcpy(p, " (");
            size_t room = (size_t)(site + sizeof site - p) - 2;
            size_t n = strlen(mod);
            if (n > room)
                n = room;
            memcpy(p, mod, n);
            p += n;
            p = shim_stpcpy(p, ")");
        }
        size_t n = (size_t)(p - site);
        if (n > PROF_SHM_SITE_BYTES - 1)
            n = PROF_SHM_SITE_BYTES - 1;
        memcpy(l->site, site, n);
        l->site[n] = '\0';
    }
    dlerror();
    shim_tls_slot = self;
}
