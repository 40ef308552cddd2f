/* symbols.c: names for the sampler's native frames (module + file offset), from each module's ELF symbols, once per unique frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/samples.h"
#include "format/elfsym.h"

const char *prof_basename(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

const char *prof_frame_name(struct prof_samples *S, struct prof_sstack *st, size_t i)
{
    if (!st->names) {
        st->names = calloc(st->nnat ? st->nnat : 1, sizeof *st->names);
        if (!st->names)
            return "?";
    }
    if (st->names[i])
        return st->names[i];
    const struct prof_sframe_nat *fr = &st->nat[i];
    char buf[512];
    struct prof_smodule *mod = NULL;
    for (size_t k = 0; k < S->nmods; k++)
        if ((int)S->mods[k].id == fr->module)
            mod = &S->mods[k];
    const char *name = NULL;
    uint64_t symoff = 0;
    if (mod) {
        if (!mod->tried) {
            mod->tried = 1;
            if (prof_elf_open(mod->path, &mod->elf) < 0)
                mod->elf = NULL;
        }
        uint64_t vaddr;
        /* Frames after the first are return addresses: look up the call instruction. */
        uint64_t off = fr->off - (i > 0 && fr->off > 0);
        if (mod->elf && prof_elf_offset_to_vaddr(mod->elf, off, &vaddr) == 0)
            prof_elf_symbolize(mod->elf, vaddr, &name, &symoff);
        if (name)
            snprintf(buf, sizeof buf, "%s", name);
        else
            snprintf(buf, sizeof buf, "%s+0x%llx", prof_basename(mod->path), (unsigned long long)fr->off);
    } else {
        snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)fr->off);
    }
    st->names[i] = strdup(buf);
    return st->names[i] ? st->names[i] : "?";
}

int prof_is_libc_module(const char *path)
{
    const char *b = prof_basename(path ? path : "");
    return strncmp(b, "libc.so", 7) == 0 || strncmp(b, "libc-", 5) == 0 || strncmp(b, "libpthread", 10) == 0 ||
           strncmp(b, "ld-linux", 8) == 0;
}

int prof_stack_serializes(struct prof_samples *S, struct prof_sstack *st)
{
    if (st->serialize >= 0)
        return st->serialize;
    int yes = 0;
    for (size_t i = 0; i < st->npy && !yes; i++) {
        const char *f = st->py[i].file;
        /* multiprocessing's connection and queues call the C pickler (no Python frame of its own)
         * and copy the bytes: CPU on CPU there is the pool's serialization and transfer. */
        yes = strstr(f, "/pickle.py") || strstr(f, "/copyreg.py") || strstr(f, "multiprocessing/reduction.py") ||
              strstr(f, "multiprocessing/connection.py") || strstr(f, "multiprocessing/queues.py") ||
              strstr(f, "/json/") || strstr(f, "/marshal") || strstr(st->py[i].qual, "ForkingPickler");
    }
    for (size_t i = 0; i < st->nnat && !yes; i++) {
        const char *path = prof_samples_module(S, st->nat[i].module);
        if (path && strstr(prof_basename(path), "_pickle"))
            yes = 1;
        else if (path) {
            const char *n = prof_frame_name(S, st, i);
            yes = strstr(n, "pickle") || strstr(n, "Pickle") || strstr(n, "PyMarshal") || strstr(n, "_json");
        }
    }
    st->serialize = yes;
    return yes;
}
