/* samples.h: the sampler's stacks and per-stack samples as read from sampler.rec (read_sampler.c), and what can be asked of them (samples.c). */
#ifndef POOLPROF_SAMPLES_H
#define POOLPROF_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

struct prof_elf;

struct prof_sframe_py {
    char *qual, *file;
    int line;
};

struct prof_sframe_nat {
    int module;              /* -1: anonymous */
    uint64_t off;            /* file offset in the module (pc when anonymous) */
};

struct prof_sstack {
    uint32_t id;
    struct prof_sframe_nat *nat; size_t nnat;   /* innermost first */
    struct prof_sframe_py *py; size_t npy;      /* innermost first */
    int serialize;                              /* -1 not decided yet (prof_stack_serializes) */
    int pool_part;                              /* -1 not decided yet (prof_stack_pool_part) */
    char **names;                               /* symbolised native frames, filled on demand */
};

struct prof_smodule {
    uint32_t id;
    char *path;
    struct prof_elf *elf;
    int tried;
};

/* Samples of one thread in one state with one stack (C lines, consecutive repeats summed). */
struct prof_sentry {
    int pid, tid;
    int state;               /* enum prof_tstate */
    uint32_t stack;          /* 0: none */
    uint64_t addr, n, ns;
    uint64_t held;           /* of n, ticks the thread ran holding its CPython GIL */
};

struct prof_samples {
    struct prof_sstack *stacks; size_t nstacks, capstacks;
    struct prof_smodule *mods; size_t nmods, capmods;
    struct prof_sentry *ent; size_t nent, capent;
};

void prof_samples_free(struct prof_samples *S);

/* The stack with this id, or NULL. */
struct prof_sstack *prof_samples_stack(struct prof_samples *S, uint32_t id);
/* The path of module id, or NULL. */
const char *prof_samples_module(const struct prof_samples *S, int id);

/* Names for what the sampler recorded as module + offset, looked up in each module's ELF
 * symbols once per unique frame, at report time. */

/* Native frame i of st: "func" when the module's symbols know it, else "module+0xoff". */
const char *prof_frame_name(struct prof_samples *S, struct prof_sstack *st, size_t i);
/* One frame of a stack as the walk hands it out: a native frame (file NULL, line 0) or a
 * Python one (its function's qualified name, file and line). */
struct prof_walk_frame {
    const char *name;
    const char *file;
    int line;
    int python;
};
/* Walk st root first, Python and native frames merged: the native frames down to the first
 * interpreter frame, the Python frames in its place, then the native frames beyond the last
 * interpreter frame (C code Python called, e.g. a GIL wait). Every renderer of stacks walks
 * them this way, so a stack reads the same in each format. Stops at the first non-zero that
 * fn returns and returns it; else 0. */
int prof_stack_walk(struct prof_samples *S, struct prof_sstack *st,
                    int (*fn)(const struct prof_walk_frame *f, void *ctx), void *ctx);
/* The file name of a path. */
const char *prof_basename(const char *path);
/* libc, libpthread or the dynamic loader: frames that say where a wait is, not who waits. */
int prof_is_libc_module(const char *path);
/* Does the stack run a serializer (pickle, json, marshal, multiprocessing's transfer)? */
int prof_stack_serializes(struct prof_samples *S, struct prof_sstack *st);

/* Which part of a CPython process pool a stack runs (prof_stack_pool_part). */
enum prof_pool_part {
    PROF_POOL_NONE,      /* no pool frame on the stack: the program's own code */
    PROF_POOL_MACHINERY, /* the pool's own loop: queues, pipes, pickling, its threads */
    PROF_POOL_CALLED     /* code the pool called: the task itself and what it calls */
};
/* Is the stack in a process pool's own machinery (multiprocessing, concurrent.futures) or in
 * the code it called? Decided by the innermost frame that is not the standard library's. */
enum prof_pool_part prof_stack_pool_part(struct prof_samples *S, struct prof_sstack *st);

#endif
