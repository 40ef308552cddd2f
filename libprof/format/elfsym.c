/* elfsym.c: reads a 64-bit ELF file's symbol tables and load segments, for lookup by name and symbolisation by address. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/elfsym.h"
#include "prof.h"

#if defined(__x86_64__)
#define ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define ELF_MACHINE EM_AARCH64
#else
#define ELF_MACHINE EM_NONE
#endif

/* One symbol table inside the mapping, already bounds-checked. */
struct symtab {
    const Elf64_Sym *syms;
    size_t nsyms;
    const char *str;   /* string table */
    size_t strsz;
};

struct func {
    uint64_t addr;
    uint64_t end;      /* exclusive; size-0 symbols run to the next function */
    const char *name;  /* points into the mapping */
};

struct prof_elf {
    void *map;
    size_t mapsz;
    int dyn;
    struct symtab symtab, dynsym;
    const Elf64_Phdr *load[64];  /* PT_LOAD headers; real files have 2-6 */
    size_t nload;
    struct func *funcs;
    size_t nfuncs;
    int indexed;       /* funcs built (by the first symbolisation: lookups by name never need them) */
};

/* True when [off, off+len) lies inside a region of size total, without overflow. */
static int in_bounds(uint64_t off, uint64_t len, uint64_t total)
{
    return off <= total && len <= total - off;
}

/* Load one SHT_SYMTAB/SHT_DYNSYM section and its linked string table; malformed ones are left empty, not fatal. */
static void load_symtab(struct prof_elf *e, const Elf64_Shdr *sh, const Elf64_Shdr *shdrs, size_t shnum,
                        struct symtab *t)
{
    if (sh->sh_entsize != sizeof(Elf64_Sym) || !in_bounds(sh->sh_offset, sh->sh_size, e->mapsz))
        return;
    if (sh->sh_link >= shnum)
        return;
    const Elf64_Shdr *ss = &shdrs[sh->sh_link];
    if (ss->sh_type != SHT_STRTAB || !in_bounds(ss->sh_offset, ss->sh_size, e->mapsz) || ss->sh_size == 0)
        return;
    if (sh->sh_offset % _Alignof(Elf64_Sym))
        return;
    t->syms = (const Elf64_Sym *)((const char *)e->map + sh->sh_offset);
    t->nsyms = sh->sh_size / sizeof(Elf64_Sym);
    t->str = (const char *)e->map + ss->sh_offset;
    t->strsz = ss->sh_size;
}

/* The NUL-terminated name of a symbol, or NULL when it points outside the string table. */
static const char *sym_name(const struct symtab *t, const Elf64_Sym *s)
{
    if (s->st_name == 0 || s->st_name >= t->strsz)
        return NULL;
    const char *n = t->str + s->st_name;
    if (!memchr(n, '\0', t->strsz - s->st_name))
        return NULL;
    return n;
}

static int func_cmp(const void *a, const void *b)
{
    const struct func *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    /* Among aliases, keep the sized one first: it carries the real extent. */
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return 0;
}

/* Collect function symbols of the chosen table, sorted and deduplicated by address. */
static int index_funcs(struct prof_elf *e)
{
    const struct symtab *t = e->symtab.nsyms ? &e->symtab : &e->dynsym;
    size_t n = 0;

    if (!t->nsyms)
        return 0;
    e->funcs = malloc(t->nsyms * sizeof(*e->funcs));
    if (!e->funcs)
        return PROF_ENOMEM;
    for (size_t i = 0; i < t->nsyms; i++) {
        const Elf64_Sym *s = &t->syms[i];
        int type = ELF64_ST_TYPE(s->st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF || s->st_value == 0)
            continue;
        const char *name = sym_name(t, s);
        if (!name)
            continue;
        e->funcs[n].addr = s->st_value;
        e->funcs[n].end = s->st_size ? s->st_value + s->st_size : 0;
        e->funcs[n].name = name;
        n++;
    }
    qsort(e->funcs, n, sizeof(*e->funcs), func_cmp);
    /* Keep one entry per address; give size-0 symbols the extent up to the next function. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && e->funcs[m - 1].addr == e->funcs[i].addr)
            continue;
        e->funcs[m++] = e->funcs[i];
    }
    for (size_t i = 0; i < m; i++) {
        if (e->funcs[i].end == 0 || e->funcs[i].end < e->funcs[i].addr)
            e->funcs[i].end = i + 1 < m ? e->funcs[i + 1].addr : UINT64_MAX;
    }
    e->nfuncs = m;
    return 0;
}

/* Validate the headers of the mapped file and index it. */
static int parse(struct prof_elf *e)
{
    const Elf64_Ehdr *eh = e->map;

    if (e->mapsz < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return PROF_EFORMAT;
    if (eh->e_machine != ELF_MACHINE || (eh->e_type != ET_EXEC && eh->e_type != ET_DYN))
        return PROF_EFORMAT;
    e->dyn = eh->e_type == ET_DYN;

    if (eh->e_phnum) {
        if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
            !in_bounds(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), e->mapsz) ||
            eh->e_phoff % _Alignof(Elf64_Phdr))
            return PROF_EFORMAT;
        const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)e->map + eh->e_phoff);
        for (size_t i = 0; i < eh->e_phnum && e->nload < sizeof(e->load) / sizeof(e->load[0]); i++) {
            if (ph[i].p_type == PT_LOAD)
                e->load[e->nload++] = &ph[i];
        }
    }

    /* Section headers are optional at run time; without them there are simply no symbols. */
    if (eh->e_shnum && eh->e_shoff) {
        if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
            !in_bounds(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), e->mapsz) ||
            eh->e_shoff % _Alignof(Elf64_Shdr))
            return PROF_EFORMAT;
        const Elf64_Shdr *sh = (const Elf64_Shdr *)((const char *)e->map + eh->e_shoff);
        for (size_t i = 0; i < eh->e_shnum; i++) {
            if (sh[i].sh_type == SHT_SYMTAB && !e->symtab.nsyms)
                load_symtab(e, &sh[i], sh, eh->e_shnum, &e->symtab);
            else if (sh[i].sh_type == SHT_DYNSYM && !e->dynsym.nsyms)
                load_symtab(e, &sh[i], sh, eh->e_shnum, &e->dynsym);
        }
    }
    return 0;
}

int prof_elf_needs(const struct prof_elf *e, const char *prefix)
{
    const Elf64_Ehdr *eh = e->map;
    if (!eh->e_shnum || !eh->e_shoff)
        return 0; /* checked by parse(): the table is in bounds when present */
    const Elf64_Shdr *sh = (const Elf64_Shdr *)((const char *)e->map + eh->e_shoff);
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNAMIC || sh[i].sh_link >= eh->e_shnum ||
            !in_bounds(sh[i].sh_offset, sh[i].sh_size, e->mapsz) || sh[i].sh_offset % _Alignof(Elf64_Dyn))
            continue;
        const Elf64_Shdr *ss = &sh[sh[i].sh_link];
        if (ss->sh_type != SHT_STRTAB || !in_bounds(ss->sh_offset, ss->sh_size, e->mapsz))
            continue;
        const char *str = (const char *)e->map + ss->sh_offset;
        const Elf64_Dyn *d = (const Elf64_Dyn *)((const char *)e->map + sh[i].sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof(*d) && d[k].d_tag != DT_NULL; k++) {
            if (d[k].d_tag != DT_NEEDED || d[k].d_un.d_val >= ss->sh_size)
                continue;
            const char *n = str + d[k].d_un.d_val;
            if (strnlen(n, ss->sh_size - d[k].d_un.d_val) >= plen && strncmp(n, prefix, plen) == 0)
                return 1;
        }
    }
    return 0;
}

int prof_elf_open(const char *path, struct prof_elf **out)
{
    struct stat st;
    int fd, rc;

    if (!path || !out)
        return PROF_EINVAL;
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return prof_err_from_errno(errno);
    if (fstat(fd, &st) < 0) {
        rc = prof_err_from_errno(errno);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return PROF_EFORMAT;
    }
    struct prof_elf *e = calloc(1, sizeof(*e));
    if (!e) {
        close(fd);
        return PROF_ENOMEM;
    }
    e->mapsz = (size_t)st.st_size;
    e->map = mmap(NULL, e->mapsz, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);  /* the mapping keeps the file */
    if (e->map == MAP_FAILED) {
        rc = prof_err_from_errno(errno);
        free(e);
        return rc;
    }
    rc = parse(e);
    if (rc < 0) {
        prof_elf_close(e);
        return rc;
    }
    *out = e;
    return 0;
}

void prof_elf_close(struct prof_elf *e)
{
    if (!e)
        return;
    if (e->map && e->map != MAP_FAILED)
        munmap(e->map, e->mapsz);
    free(e->funcs);
    free(e);
}

int prof_elf_is_dyn(const struct prof_elf *e)
{
    return e && e->dyn;
}

/* Search one table for a defined symbol called name. */
static int find_in(const struct symtab *t, const char *name, uint64_t *vaddr)
{
    for (size_t i = 0; i < t->nsyms; i++) {
        const Elf64_Sym *s = &t->syms[i];
        if (s->st_shndx == SHN_UNDEF || ELF64_ST_TYPE(s->st_info) == STT_SECTION ||
            ELF64_ST_TYPE(s->st_info) == STT_FILE)
            continue;
        const char *n = sym_name(t, s);
        if (n && strcmp(n, name) == 0) {
            *vaddr = s->st_value;
            return 0;
        }
    }
    return PROF_ENOENT;
}

int prof_elf_symbol_value(const struct prof_elf *e, const char *name, uint64_t *vaddr)
{
    if (!e || !name || !vaddr)
        return PROF_EINVAL;
    /* .symtab usually holds .dynsym's entries too, but a partially stripped file may not. */
    if (find_in(&e->symtab, name, vaddr) == 0)
        return 0;
    return find_in(&e->dynsym, name, vaddr);
}

int prof_elf_offset_to_vaddr(const struct prof_elf *e, uint64_t file_off, uint64_t *vaddr)
{
    if (!e || !vaddr)
        return PROF_EINVAL;
    for (size_t i = 0; i < e->nload; i++) {
        const Elf64_Phdr *p = e->load[i];
        if (file_off >= p->p_offset && file_off - p->p_offset < p->p_filesz) {
            *vaddr = p->p_vaddr + (file_off - p->p_offset);
            return 0;
        }
    }
    return PROF_ENOENT;
}

int prof_elf_symbolize(struct prof_elf *e, uint64_t vaddr, const char **name, uint64_t *off)
{
    if (!e || !name || !off)
        return PROF_EINVAL;
    if (!e->indexed) {
        int rc = index_funcs(e);
        if (rc < 0)
            return rc;
        e->indexed = 1;
    }
    size_t lo = 0, hi = e->nfuncs;
    /* Last function whose start is <= vaddr. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->funcs[mid].addr <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return PROF_ENOENT;
    const struct func *f = &e->funcs[lo - 1];
    if (vaddr >= f->end)
        return PROF_ENOENT;
    *name = f->name;
    *off = vaddr - f->addr;
    return 0;
}
