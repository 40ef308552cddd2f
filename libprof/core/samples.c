/* samples.c: the sampler's stacks as data: lookups, names for native frames from each module's ELF symbols (once per unique frame), freeing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/samples.h"
#include "format/elfsym.h"

struct prof_sstack *prof_samples_stack(struct prof_samples *S, uint32_t id)
{
    /* Ids are dense and written in order: index id - 1, when present. */
    if (id && id <= S->nstacks && S->stacks[id - 1].id == id)
        return &S->stacks[id - 1];
    for (size_t i = 0; i < S->nstacks; i++)
        if (S->stacks[i].id == id)
            return &S->stacks[i];
    return NULL;
}

const char *prof_samples_module(const struct prof_samples *S, int id)
{
    for (size_t i = 0; i < S->nmods; i++)
        if ((int)S->mods[i].id == id)
            return S->mods[i].path;
    return NULL;
}

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

/* A frame of a process pool's own code: the standard library's multiprocessing and concurrent.futures. */
static const char *pool_lib_at(const char *file)
{
    const char *m = strstr(file, "/multiprocessing/");
    return m ? m : strstr(file, "/concurrent/futures/");
}

/*
 * Native code a pool's own machinery runs: the interpreter, libc and the loader, poolprof's
 * shim, and the extension modules multiprocessing itself calls (its semaphores, queues,
 * shared memory, the pickler, select, struct). Anything else under a pool frame is a C
 * function the pool called as the task (zlib.compress, a hash).
 */
static int pool_native(const char *path)
{
    const char *b = prof_basename(path);
    static const char *const own[] = {"python", "libpython", "libprof", "_multiprocessing", "_posixshmem", "_queue",
                                      "_pickle", "select", "_struct", "[vdso]"};
    if (prof_is_libc_module(path))
        return 1;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strncmp(b, own[i], strlen(own[i])) == 0)
            return 1;
    return 0;
}

/*
 * Innermost frame first: the first frame of the pool's library says machinery, the first frame
 * outside the standard library (the program's own code, an installed package) says the code the
 * pool called; frames of the standard library in between (selectors under the pool's result
 * thread, random under a task) decide nothing. The standard library is the directory the pool's
 * own files are in, less its installed packages, and the interpreter's frozen modules. Only the
 * library is recognised, never a program: a task that is itself a standard-library Python
 * function reads as the pool's (a limit), a C function the pool calls directly reads as the task
 * by its native frame.
 */
enum prof_pool_part prof_stack_pool_part(struct prof_samples *S, struct prof_sstack *st)
{
    if (st->pool_part >= 0)
        return (enum prof_pool_part)st->pool_part;
    enum prof_pool_part part = PROF_POOL_NONE;
    const char *lib = NULL;
    size_t libn = 0;
    for (size_t i = 0; i < st->npy && !lib; i++) {
        const char *f = st->py[i].file ? st->py[i].file : "";
        const char *at = pool_lib_at(f);
        if (at) {
            lib = f;
            libn = (size_t)(at - f) + 1;
        }
    }
    for (size_t i = 0; lib && i < st->npy; i++) {
        const char *f = st->py[i].file ? st->py[i].file : "";
        if (pool_lib_at(f)) {
            part = PROF_POOL_MACHINERY;
            break;
        }
        int stdlib = strncmp(f, "<frozen", 7) == 0 ||
                     (strncmp(f, lib, libn) == 0 && !strstr(f + libn, "-packages/"));
        if (!stdlib) {
            part = PROF_POOL_CALLED;
            break;
        }
    }
    if (part == PROF_POOL_MACHINERY && st->nnat > 0) {
        const char *path = prof_samples_module(S, st->nat[0].module);
        if (path && !pool_native(path))
            part = PROF_POOL_CALLED;
    }
    st->pool_part = (int)part;
    return part;
}

void prof_samples_free(struct prof_samples *S)
{
    if (!S)
        return;
    for (size_t i = 0; i < S->nstacks; i++) {
        struct prof_sstack *st = &S->stacks[i];
        for (size_t k = 0; k < st->npy; k++) {
            free(st->py[k].qual);
            free(st->py[k].file);
        }
        if (st->names)
            for (size_t k = 0; k < st->nnat; k++)
                free(st->names[k]);
        free(st->names);
        free(st->nat);
        free(st->py);
    }
    for (size_t i = 0; i < S->nmods; i++) {
        free(S->mods[i].path);
        if (S->mods[i].elf)
            prof_elf_close(S->mods[i].elf);
    }
    free(S->stacks);
    free(S->mods);
    free(S->ent);
    free(S);
}

static int is_eval_frame(const char *name)
{
    return strstr(name, "_PyEval_EvalFrameDefault") != NULL;
}

int prof_stack_walk(struct prof_samples *S, struct prof_sstack *st,
                    int (*fn)(const struct prof_walk_frame *f, void *ctx), void *ctx)
{
    size_t first_eval = st->nnat, last_eval = st->nnat; /* indices, innermost = 0 */
    struct prof_walk_frame f = {0};
    int rc;

    /* The Python frames replace the interpreter's frames that ran them; without Python frames
     * (none read) the interpreter's frames are all there is, and stay. */
    if (st->npy)
        for (size_t i = 0; i < st->nnat; i++)
            if (is_eval_frame(prof_frame_name(S, st, i))) {
                if (last_eval == st->nnat)
                    last_eval = i; /* innermost eval frame */
                first_eval = i;    /* outermost so far */
            }
    size_t i = st->nnat;
    /* Native root part: outermost frames above the outermost eval frame. */
    for (; i > 0 && (first_eval == st->nnat || i - 1 > first_eval); i--) {
        f.name = prof_frame_name(S, st, i - 1);
        if ((rc = fn(&f, ctx)))
            return rc;
    }
    f.python = 1;
    for (size_t k = st->npy; k > 0; k--) {
        const struct prof_sframe_py *p = &st->py[k - 1];
        f.name = p->qual;
        f.file = p->file;
        f.line = p->line;
        if ((rc = fn(&f, ctx)))
            return rc;
    }
    f = (struct prof_walk_frame){0};
    if (st->npy && last_eval != st->nnat)
        for (size_t k = last_eval; k > 0; k--) {
            f.name = prof_frame_name(S, st, k - 1);
            if ((rc = fn(&f, ctx)))
                return rc;
        }
    return 0;
}
