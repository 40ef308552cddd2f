/* unwind_maps.c: a traced process's address space as the unwinder sees it: /proc/PID/maps, its modules' images mapped once, and their unwind tables. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "prof.h"
#include "unwind_int.h"

#ifdef MADV_POPULATE_READ
#define MADV_POPULATE_READ_ MADV_POPULATE_READ
#else
#define MADV_POPULATE_READ_ 22 /* Linux 5.14 */
#endif

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

void unwind_insts_release(struct unw_inst *insts, size_t n)
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
int unwind_maps_load(struct prof_unw *u, int keep)
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
    unwind_insts_release(u->insts, u->ninsts);
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

struct unw_map *unwind_map_find(struct prof_unw *u, uint64_t addr)
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

/* An ip outside every known mapping: maybe a dlopen (or, just after an exec, libc) since
 * the last read. At most once per unwind, and for 50 ms after a re-read that did not find
 * the address, none: a garbage return address must not turn every sample into a /proc
 * read, but a library mapped a moment after the last read must not cut stacks short. */
struct unw_map *unwind_map_find_reload(struct unw_ctx *c, uint64_t addr)
{
    struct prof_unw *u = c->u;
    struct unw_map *m = unwind_map_find(u, addr);
    if (m || c->reloaded)
        return m;
    c->reloaded = 1;
    uint64_t t = mono_ns();
    if (t < u->reload_after)
        return NULL;
    int rc = unwind_maps_load(u, 1);
    c->win.len = 0; /* the image it pointed into may be gone */
    u->load_ns += mono_ns() - t;
    u->loads++;
    if (rc < 0)
        return NULL;
    if (!(m = unwind_map_find(u, addr)))
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
void unwind_inst_load(struct prof_unw *u, struct unw_inst *in)
{
    uint64_t t = mono_ns();
    in->loaded = 1;
    inst_index(u, in);
    u->load_ns += mono_ns() - t;
    u->loads++;
}
