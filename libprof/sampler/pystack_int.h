/* pystack_int.h: what the CPython reader's two files share: struct prof_py, the limits it is sized by, and the remote read. */
#ifndef POOLPROF_PYSTACK_INT_H
#define POOLPROF_PYSTACK_INT_H

/*
 * Private to the reader: only pystack.c and pyopen.c include it, and its functions stay out
 * of the dynamic symbol table.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memread.h"
#include "pylayout.h"
#include "pystack.h"

#define MAX_THREADS 1024
#define SPEC_THREADS 8               /* thread states read with _PyRuntime at a guess (see prof_py_sample_since) */
#define MAX_FRAMES 256
#define WINDOW_MAX (64 * 1024)       /* the top of a thread's frame stack read in one call */

/* Interned strings: arena storage plus an open-addressing set, so equal strings share one copy. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
};

struct code_entry {
    uint64_t addr;                 /* remote PyCodeObject*; 0 = empty slot */
    uint64_t filename, name, qualname, linetable;   /* remote pointers seen when cached */
    int firstlineno;
    int firsttraceable;
    const char *func, *qual, *file;  /* interned */
    unsigned char *lt;             /* local copy of co_linetable, NULL when unreadable */
    size_t ltlen;
};

struct prof_py {
    pid_t pid;
    struct prof_mem mem;           /* its memory, read without unsharing a page (memread.c) */
    uint64_t runtime;              /* &_PyRuntime in the target */
    struct py_layout L;            /* this version's structures (pylayout.h) */
    struct py_spans sp;            /* and the byte ranges read of them */
    int from_debug_offsets;        /* L came from the target's _Py_DebugOffsets */
    uint64_t gil_base;             /* what L's GIL offsets count from: _PyRuntime or, once found, the main interpreter */
    int gil_absent;                /* a free-threaded build whose GIL was disabled at the last sample */
    int checked;                   /* a walk has found a thread state pointing back at its interpreter */
    int bad_checks;                /* walks that found one that did not */
    uint64_t code_type, unicode_type, bytes_type;   /* 0 = unknown, check skipped */

    struct arena_chunk *arena;
    const char **strset;
    size_t strset_cap, strset_n;

    struct code_entry *codes;
    size_t codes_cap, codes_n;

    struct prof_py_thread *threads;     /* MAX_THREADS */
    size_t nthreads;                    /* filled by the last sample (their frames stay for the next) */
    struct prof_py_frame *frames;       /* MAX_FRAMES per thread, allocated as threads appear */
    size_t frames_cap;

    /* Where the last walk found the interpreter and the first SPEC_THREADS thread states: read
     * again with _PyRuntime, in its system call, and used where the walk finds them again. */
    uint64_t spec_interp;
    uint64_t spec_ts[SPEC_THREADS];
    size_t nspec;
    unsigned char *spec_buf;                          /* SPEC_THREADS thread states of sp.ts_len bytes */

    unsigned char *code_hdrs;                         /* MAX_FRAMES code headers of sp.code_len bytes: scratch for read_frames */
    unsigned char window[WINDOW_MAX];                 /* the top of a thread's frame stack */
};

#pragma GCC visibility push(hidden)

/* pystack.c: every read of the target's memory goes through it (its results: above its definition). */
int pystack_rd(const struct prof_py *py, uint64_t addr, void *buf, size_t len);

#pragma GCC visibility pop

/* pystack.c: a fork's reader takes its parent's code cache (see there). 0 or PROF_ENOMEM. */
int prof_py_codes_copy(struct prof_py *py, const struct prof_py *from);

#endif
