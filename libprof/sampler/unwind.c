/* unwind.c: native stacks of a traced thread: a fast register + stack copy while it is stopped, unwound afterwards with libunwind's remote API and our own accessors. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libunwind.h>

#include "cfi.h"
#include "prof.h"
#include "unwind.h"

/*
 * libunwind exports the .eh_frame_hdr binary search but does not declare it
 * (it is how libunwind-ptrace finds procedure info). Same symbol that
 * libunwind-ptrace itself calls; present in libunwind 1.x for x86_64.
 */
extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip, unw_dyn_info_t *di,
                                              unw_proc_info_t *pi, int need_unwind_info, void *arg);


#define MAP_R 1u
#define MAP_W 2u
#define MAP_X 4u

/* The contents of a module's file (or of the vDSO), mapped once: the "page
 * cache" that .eh_frame, .eh_frame_hdr and code reads are served from. */
struct unw_image {
    const unsigned char *base;
    size_t size;
    int mmapped;                /* 1: munmap, 0: free (vDSO copy) */
};

/* A stretch of target addresses that a module image serves whole: [lo, lo + len) is at
 * base. Read-only, file-backed and outside RELRO: what cannot change under a reader. */
struct span {
    uint64_t lo, len;
    const unsigned char *base;
};

/* One loaded copy of an ELF object: consecutive mappings of one file starting
 * at file offset 0 (or the vDSO). Two dlopens of one file are two instances. */
struct unw_inst {
    uint32_t module;            /* path index; UINT32_MAX for the vDSO */
    uint64_t start;             /* address of the offset-0 mapping */
    uint64_t first_map;         /* index into maps of that mapping */
    int loaded;                 /* 0: not tried yet, 1: image (maybe NULL) and di resolved */
    struct unw_image img;
    int have_di;
    unw_dyn_info_t di;
    uint64_t relro_lo, relro_hi; /* written by the loader then made read-only: the file is stale there */
    /* No .eh_frame_hdr (gcc -static links without one): our own search table
     * built from .eh_frame, served to libunwind at a made-up address. */
    int32_t *synth;             /* pairs (ip - segbase, fde - segbase), sorted, + 8 bytes of padding */
    size_t synth_bytes;
    uint64_t synth_id;
    struct span span;           /* where the fast path last read its tables */
};

struct unw_map {
    uint64_t start, end, pgoff;
    uint32_t module;            /* path index, UINT32_MAX if not a file mapping */
    uint32_t inst;              /* instance index, UINT32_MAX if none */
    unsigned prot;
};

/*
 * At 100 Hz every unwind starts with cold caches and TLB, and a frame's lookups (its rule in
 * the direct-mapped table, its mapping in the sorted maps, the stack mapping of sp) each land
 * on another cache line and mostly another page: ~1000 cycles a frame before any stack word
 * is read. A thread sampled again usually sits under the same callers, and a thread caught
 * running mostly in the same stretch of code between two rule changes, so each stack keeps
 * its last unwind's rules, their extents and the mappings in one contiguous record (a cache
 * line a frame); the next unwind on that stack takes frame k from it when frame k's code
 * address lies in the extent of its rule. Stacks find their record by sp's 64 KiB block.
 */
#define MEMO_STACKS 32           /* direct-mapped; a power of two */
#define MEMO_FRAMES 31           /* with its key, a stack's memo is 2 KiB: half a page */

struct memo_frame {
    uint64_t lo, hi;             /* the rule holds for code addresses in [lo, hi) */
    uint64_t start, end, pgoff;  /* the mapping of those addresses */
    uint32_t module;
    struct prof_cfi_rule r;
} __attribute__((aligned(64)));

struct unw_memo {
    uint64_t lo, hi;             /* the stack mapping */
    uint64_t gen;                /* the maps read it was written under; 0: empty */
    uint32_t n;                  /* frames[0 .. n) hold entries, in no order */
    uint32_t next;               /* once full, the entry replaced next (round robin) */
    struct memo_frame frames[MEMO_FRAMES];
};
_Static_assert(sizeof(struct unw_memo) == 2048, "a stack's memo fills half a page");

struct prof_unw {
    pid_t pid;
    unw_addr_space_t as;
    long pagesize;

    struct unw_map *maps;       /* sorted by start (as in /proc/PID/maps) */
    size_t nmaps;
    struct unw_inst *insts;
    size_t ninsts;
    size_t last_hit;            /* maps index of the last lookup: most reads hit the same mapping */

    /* Append-only for the life of the unwinder, so that module indices
     * already handed out stay valid across invalidations. */
    char **paths;
    size_t npaths, cappaths;

    uint64_t reload_after;       /* CLOCK_MONOTONIC ns: no lazy re-read before (a fruitless one's back-off) */
    uint64_t load_ns, loads;     /* one-off work inside unwinds: modules opened and indexed, maps re-read */
    uint64_t decode_ns, decodes; /* rules decoded from .eh_frame for the fast path (module loads apart) */
    uint64_t next_synth_id;

    /* The fast path's rules by code address (see fast_walk); cleared whenever the maps are
     * read again, as an address may then hold other code. */
    struct fast_ent *fast;
    int fast_off;                /* POOLPROF_UNWIND=libunwind: every unwind through libunwind */
    uint64_t fast_unwinds, slow_unwinds;
    /* The last fast unwind of each stack mapping (see struct unw_memo); valid while gen, the
     * count of maps reads, is what it was when the memo was written. */
    struct unw_memo *memo;       /* MEMO_STACKS of them, allocated at the first fast unwind */
    uint64_t gen;
};

#define FAST_SLOTS 2048          /* direct-mapped; a power of two */

struct fast_ent {
    uint64_t loc;
    uint64_t lo, hi;             /* state 1: the rule holds for every address in [lo, hi) */
    struct prof_cfi_rule r;
    uint8_t state;               /* 0 empty, 1 rule, 2 not describable: libunwind unwinds this stack */
};


#ifdef MADV_POPULATE_READ
#define MADV_POPULATE_READ_ MADV_POPULATE_READ
#else
#define MADV_POPULATE_READ_ 22 /* Linux 5.14 */
#endif

/* Synthetic tables live above the user address space (kernel half on
 * x86_64), 4 GiB apart: no target read can ever land there. */
#define SYNTH_BASE 0xffff800000000000ull
#define SYNTH_ADDR(id) (SYNTH_BASE + ((uint64_t)(id) << 32))

/* Per-unwind context given to libunwind as the accessors' arg. */
struct unw_ctx {
    struct prof_unw *u;
    const struct prof_unw_view *v; /* registers and stack copy */
    uint64_t stack_lo, stack_hi; /* the stack mapping (beyond the copy the stack is stale) */
    int reloaded;                /* maps re-read during this unwind already */
    struct unw_memo *memo;       /* the stack's last fast unwind, or NULL */
    /* The file-backed span the last image read came from: a first unwind through a
     * function reads its .eh_frame entry a byte at a time (~140 reads), mostly there. */
    struct span win;
};

/* ---- maps ------------------------------------------------------------- */

static uint32_t path_intern(struct prof_unw *u, const char *path)
{
    for (size_t i = 0; i < u->npaths; i++)
        if (strcmp(u->paths[i], path) == 0)
            return (uint32_t)i;
    if (u->npaths == u->cappaths) {
        size_t cap = u->cappaths ? u->cappaths * 2 : 64;
        char **p = realloc(u->paths, cap * sizeof(*p));
        if (!p)
            return UINT32_MAX;
        u->paths = p;
        u->cappaths = cap;
    }
    char *s = strdup(path);
    if (!s)
        return UINT32_MAX;
    u->paths[u->npaths] = s;
    return (uint32_t)u->npaths++;
}

static void image_release(struct unw_image *img)
{
    if (!img->base)
        return;
    if (img->mmapped)
        munmap((void *)img->base, img->size);
    else
        free((void *)img->base);
    img->base = NULL;
    img->size = 0;
}

static void insts_release(struct unw_inst *insts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        image_release(&insts[i].img);
        free(insts[i].synth);
    }
    free(insts);
}

static char *read_whole(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0) {
                free(buf);
                buf = NULL;
            }
            break;
        }
        n += (size_t)r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int e = errno;
    close(fd);
    errno = e;
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/*
 * Re-read /proc/PID/maps. When keep is set (a lazy reload for a suspected
 * dlopen), instances that are still mapped at the same place keep their
 * image and unwind table; after an exec (keep = 0) everything is dropped.
 */
static int maps_load(struct prof_unw *u, int keep)
{
    char path[64];
    size_t len;
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)u->pid);
    char *text = read_whole(path, &len);
    if (!text)
        return errno == ENOENT || errno == ESRCH ? PROF_ESRCH : prof_err_from_errno(errno);

    size_t nlines = 0;
    for (size_t i = 0; i < len; i++)
        nlines += text[i] == '\n';
    struct unw_map *maps = calloc(nlines + 1, sizeof(*maps));
    struct unw_inst *insts = calloc(nlines + 1, sizeof(*insts));
    if (!maps || !insts) {
        free(text);
        free(maps);
        free(insts);
        return PROF_ENOMEM;
    }

    size_t nm = 0, ni = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned long long start, end, pgoff;
        char perms[8];
        int off = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &pgoff, &off) < 4)
            continue;
        const char *name = off > 0 ? line + off : "";
        struct unw_map *m = &maps[nm];
        m->start = start;
        m->end = end;
        m->pgoff = pgoff;
        m->prot = (perms[0] == 'r' ? MAP_R : 0) | (perms[1] == 'w' ? MAP_W : 0) | (perms[2] == 'x' ? MAP_X : 0);
        m->module = UINT32_MAX;
        m->inst = UINT32_MAX;
        if (name[0] == '/') {
            m->module = path_intern(u, name);
            /* A mapping at offset 0 starts a new loaded copy; later offsets of
             * the same file continue the one before. */
            if (pgoff == 0) {
                insts[ni] = (struct unw_inst){.module = m->module, .start = start, .first_map = nm};
                m->inst = (uint32_t)ni++;
            } else if (ni > 0 && insts[ni - 1].module == m->module) {
                m->inst = (uint32_t)(ni - 1);
            }
        } else if (strcmp(name, "[vdso]") == 0) {
            insts[ni] = (struct unw_inst){.module = UINT32_MAX, .start = start, .first_map = nm};
            m->inst = (uint32_t)ni++;
        }
        nm++;
    }
    free(text);

    if (keep) {
        /* Carry over what was already read for objects that did not move. */
        for (size_t i = 0; i < ni; i++)
            for (size_t j = 0; j < u->ninsts; j++) {
                struct unw_inst *o = &u->insts[j];
                if (o->loaded && o->module == insts[i].module && o->start == insts[i].start) {
                    uint64_t fm = insts[i].first_map;
                    insts[i] = *o;
                    insts[i].first_map = fm;
                    o->img.base = NULL;
                    o->synth = NULL;
                    break;
                }
            }
    }
    insts_release(u->insts, u->ninsts);
    free(u->maps);
    u->maps = maps;
    u->nmaps = nm;
    u->insts = insts;
    u->ninsts = ni;
    u->last_hit = 0;
    u->gen++;
    if (u->fast)
        memset(u->fast, 0, FAST_SLOTS * sizeof *u->fast);
    return 0;
}

static struct unw_map *map_find(struct prof_unw *u, uint64_t addr)
{
    if (u->nmaps == 0)
        return NULL;
    struct unw_map *m = &u->maps[u->last_hit];
    if (addr >= m->start && addr < m->end)
        return m;
    size_t lo = 0, hi = u->nmaps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr < u->maps[mid].start)
            hi = mid;
        else if (addr >= u->maps[mid].end)
            lo = mid + 1;
        else {
            u->last_hit = mid;
            return &u->maps[mid];
        }
    }
    return NULL;
}

static uint64_t mono_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
}

/* An ip outside every known mapping: maybe a dlopen (or, just after an exec, libc) since
 * the last read. At most once per unwind, and for 50 ms after a re-read that did not find
 * the address, none: a garbage return address must not turn every sample into a /proc
 * read, but a library mapped a moment after the last read must not cut stacks short. */
static struct unw_map *map_find_reload(struct unw_ctx *c, uint64_t addr)
{
    struct prof_unw *u = c->u;
    struct unw_map *m = map_find(u, addr);
    if (m || c->reloaded)
        return m;
    c->reloaded = 1;
    uint64_t t = mono_ns();
    if (t < u->reload_after)
        return NULL;
    int rc = maps_load(u, 1);
    c->win.len = 0; /* the image it pointed into may be gone */
    u->load_ns += mono_ns() - t;
    u->loads++;
    if (rc < 0)
        return NULL;
    if (!(m = map_find(u, addr)))
        u->reload_after = t + 50000000ULL;
    return m;
}

/* ---- module images and unwind tables ---------------------------------- */

static int image_open(struct prof_unw *u, struct unw_inst *in, struct unw_image *img)
{
    const struct unw_map *m = &u->maps[in->first_map];
    if (in->module == UINT32_MAX) {
        /* The vDSO is a complete ELF image in memory, never on disk: copy it once. */
        size_t size = m->end - m->start;
        unsigned char *buf = malloc(size);
        if (!buf)
            return PROF_ENOMEM;
        struct iovec l = {buf, size}, r = {(void *)(uintptr_t)m->start, size};
        if (process_vm_readv(u->pid, &l, 1, &r, 1, 0) != (ssize_t)size) {
            free(buf);
            return PROF_EIO;
        }
        *img = (struct unw_image){buf, size, 0};
        return 0;
    }
    /* map_files names the very inode that is mapped (even if deleted or
     * replaced on disk since); /proc/PID/root/... covers other mount
     * namespaces when map_files is not permitted. */
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "/proc/%d/map_files/%llx-%llx", (int)u->pid, (unsigned long long)m->start,
             (unsigned long long)m->end);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(p, sizeof(p), "/proc/%d/root%s", (int)u->pid, u->paths[in->module]);
        fd = open(p, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        fd = open(u->paths[in->module], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return prof_err_from_errno(errno);
    struct stat st;
    void *base = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return PROF_EIO;
    *img = (struct unw_image){base, (size_t)st.st_size, 1};
    return 0;
}

static int synth_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* Build the binary search table .eh_frame_hdr would have held: walk every
 * CIE/FDE of .eh_frame (found through the section headers). */
static void synth_build(struct prof_unw *u, struct unw_inst *in, uint64_t bias)
{
    const unsigned char *b = in->img.base;
    size_t size = in->img.size;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b;
    if (!eh->e_shoff || eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
        (size - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum || eh->e_shstrndx >= eh->e_shnum)
        return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(b + eh->e_shoff), *ef = NULL;
    const Elf64_Shdr *str = &sh[eh->e_shstrndx];
    if (str->sh_offset > size || size - str->sh_offset < str->sh_size)
        return;
    for (unsigned i = 0; i < eh->e_shnum && !ef; i++)
        if (sh[i].sh_type == SHT_PROGBITS && sh[i].sh_name < str->sh_size &&
            strncmp((const char *)b + str->sh_offset + sh[i].sh_name, ".eh_frame", str->sh_size - sh[i].sh_name) ==
                0)
            ef = &sh[i];
    if (!ef || ef->sh_offset > size || size - ef->sh_offset < ef->sh_size || ef->sh_size < 8)
        return;

    const unsigned char *sec = b + ef->sh_offset, *end = sec + ef->sh_size;
    uint64_t secaddr = bias + ef->sh_addr; /* also the table's segbase */
    size_t cap = 256, n = 0;
    int32_t *t = malloc(cap * 8 + 8);
    /* The CIE of the previous FDE: consecutive FDEs usually share one. */
    const unsigned char *cie_at = NULL;
    unsigned char fde_enc = DW_EH_PE_omit;
    for (const unsigned char *p = sec; t && end - p >= 4;) {
        uint32_t len32;
        memcpy(&len32, p, 4);
        if (len32 == 0 || len32 == 0xffffffffu) /* terminator, or 64-bit DWARF (not emitted on x86_64) */
            break;
        const unsigned char *rec = p + 4, *next = rec + len32;
        if (len32 > (size_t)(end - rec) || len32 < 4)
            break;
        uint32_t id;
        memcpy(&id, rec, 4);
        const unsigned char *q = rec + 4;
        if (id == 0)
            goto skip;
        {
            /* ld merges identical CIEs, so an FDE's CIE may be far before it. */
            if (id > (size_t)(rec - sec) || (size_t)(end - (rec - id)) < 8)
                goto skip;
            const unsigned char *cie = rec - id;
            if (cie != cie_at) {
                cie_at = cie;
                fde_enc = prof_cfi_cie_fde_enc(cie, end);
            }
            if (fde_enc == DW_EH_PE_omit)
                goto skip;
            uint64_t pc;
            if (prof_cfi_read_enc(&q, next, fde_enc, secaddr + (uint64_t)(q - sec), &pc) < 0 || pc == 0)
                goto skip;
            int64_t ipo = (int64_t)(pc - secaddr), fo = (int64_t)(p - sec);
            if (ipo < INT32_MIN || ipo > INT32_MAX)
                goto skip;
            if (n == cap) {
                int32_t *nt = realloc(t, cap * 2 * 8 + 8);
                if (!nt) {
                    free(t);
                    t = NULL;
                    break;
                }
                t = nt;
                cap *= 2;
            }
            t[2 * n] = (int32_t)ipo;
            t[2 * n + 1] = (int32_t)fo;
            n++;
        }
    skip:
        p = next;
    }
    if (!t || n == 0) {
        free(t);
        return;
    }
    qsort(t, n, 8, synth_cmp);
    memset(&t[2 * n], 0, 8);
    in->synth = t;
    in->synth_bytes = n * 8;
    in->synth_id = ++u->next_synth_id;
    in->di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    in->di.u.rti.segbase = secaddr;
    in->di.u.rti.table_data = SYNTH_ADDR(in->synth_id);
    in->di.u.rti.table_len = n * 8 / sizeof(unw_word_t);
    in->have_di = 1;
}

/* Resolve an instance once: its image, load bias, RELRO range and the
 * .eh_frame_hdr search table (as target addresses, served back to libunwind
 * from the image by access_mem), else one built from .eh_frame. Without
 * either have_di stays 0 and libunwind falls back to frame pointers. */
static void inst_index(struct prof_unw *u, struct unw_inst *in)
{
    if (image_open(u, in, &in->img) < 0)
        return;
    const unsigned char *b = in->img.base;
    size_t size = in->img.size;
    if (size < sizeof(Elf64_Ehdr))
        return;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_machine != EM_X86_64 || eh->e_phentsize != sizeof(Elf64_Phdr) ||
        eh->e_phoff > size || (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
        return;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(b + eh->e_phoff);
    const Elf64_Phdr *first = NULL, *hdr = NULL, *relro = NULL;
    uint64_t lo = UINT64_MAX, hi = 0, page = (uint64_t)u->pagesize;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) {
            if (!first || ph[i].p_offset < first->p_offset)
                first = &ph[i];
            if (ph[i].p_vaddr < lo)
                lo = ph[i].p_vaddr;
            if (ph[i].p_vaddr + ph[i].p_memsz > hi)
                hi = ph[i].p_vaddr + ph[i].p_memsz;
        } else if (ph[i].p_type == PT_GNU_EH_FRAME) {
            hdr = &ph[i];
        } else if (ph[i].p_type == PT_GNU_RELRO) {
            relro = &ph[i];
        }
    }
    if (!first || first->p_offset >= page)
        return;
    /* The offset-0 mapping holds the first PT_LOAD's page: that fixes the bias
     * (0 for ET_EXEC, the load address for PIE and shared objects). */
    uint64_t bias = in->start - (first->p_vaddr & ~(page - 1));
    if (relro) {
        in->relro_lo = bias + relro->p_vaddr;
        in->relro_hi = in->relro_lo + relro->p_memsz;
    }
    memset(&in->di, 0, sizeof(in->di));
    in->di.start_ip = bias + lo;
    in->di.end_ip = bias + hi;
    const unsigned char *h = hdr && hdr->p_offset <= size && size - hdr->p_offset >= 4 ? b + hdr->p_offset : NULL;
    size_t s1 = h ? prof_cfi_enc_size(h[1]) : SIZE_MAX, s2 = h ? prof_cfi_enc_size(h[2]) : SIZE_MAX;
    if (!h || h[0] != 1 /* version */ || h[3] != (DW_EH_PE_datarel | DW_EH_PE_sdata4) || s1 == SIZE_MAX ||
        s2 == 0 || s2 == SIZE_MAX || hdr->p_offset + 4 + s1 + s2 > size) {
        synth_build(u, in, bias);
        return;
    }
    uint64_t fde_count = 0;
    if (s2 == 8)
        memcpy(&fde_count, h + 4 + s1, 8);
    else if (s2 == 4) {
        uint32_t v;
        memcpy(&v, h + 4 + s1, 4);
        fde_count = v;
    } else {
        uint16_t v;
        memcpy(&v, h + 4 + s1, 2);
        fde_count = v;
    }
    if (fde_count == 0 || fde_count > (size - hdr->p_offset) / 8)
        return;
    in->di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    in->di.u.rti.name_ptr = 0;
    /* For the search table, "data-relative" means relative to .eh_frame_hdr. */
    in->di.u.rti.segbase = bias + hdr->p_vaddr;
    in->di.u.rti.table_data = bias + hdr->p_vaddr + 4 + s1 + s2;
    in->di.u.rti.table_len = fde_count * 8 / sizeof(unw_word_t);
    in->have_di = 1;
    /*
     * Fault in the search table and the .eh_frame after it (to the end of their segment)
     * now: otherwise each first touch of a page is a fault inside some later unwind, which
     * at 100 Hz is most of what the few unwinds cost. Older kernels lack the advice: no harm.
     */
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || hdr->p_offset < ph[i].p_offset ||
            hdr->p_offset >= ph[i].p_offset + ph[i].p_filesz || ph[i].p_offset + ph[i].p_filesz > size)
            continue;
        uint64_t from = hdr->p_offset & ~(page - 1), to = ph[i].p_offset + ph[i].p_filesz;
        madvise((void *)(b + from), (size_t)(to - from), MADV_POPULATE_READ_);
        break;
    }
}

/* Load a module's unwind tables once, timed apart from the unwinds that need them. */
static void inst_load(struct prof_unw *u, struct unw_inst *in)
{
    uint64_t t = mono_ns();
    in->loaded = 1;
    inst_index(u, in);
    u->load_ns += mono_ns() - t;
    u->loads++;
}

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
    struct unw_map *m = map_find(u, addr);
    if (m && m->inst != UINT32_MAX && !(m->prot & MAP_W)) {
        struct unw_inst *in = &u->insts[m->inst];
        if (!in->loaded)
            inst_load(u, in);
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
    struct unw_map *m = map_find_reload(c, ip);
    if (!m || m->inst == UINT32_MAX)
        return NULL;
    struct unw_inst *in = &c->u->insts[m->inst];
    if (!in->loaded)
        inst_load(c->u, in);
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
    struct unw_map *m = map_find_reload(c, ip);
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
    struct unw_map *m = map_find(u, va);
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
    int rc = maps_load(u, 0);
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
    insts_release(u->insts, u->ninsts);
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
    if (maps_load(u, 0) < 0) {
        insts_release(u->insts, u->ninsts);
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
        const struct unw_map *m = map_find(u, snap->sp);
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
    } else if ((sm = map_find_reload(&c, v->sp))) {
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
