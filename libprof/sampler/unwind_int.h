/* unwind_int.h: what the unwinder's two files share: the process's maps, module instances and caches (struct prof_unw), the per-unwind context, and the maps' functions. */
#ifndef POOLPROF_UNWIND_INT_H
#define POOLPROF_UNWIND_INT_H

/*
 * Private to the unwinder: only unwind.c and unwind_maps.c include it, and its functions
 * stay out of the dynamic symbol table.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <libunwind.h>

#include "cfi.h"
#include "unwind.h"

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

static inline uint64_t mono_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
}

#pragma GCC visibility push(hidden)

/* unwind_maps.c: the maps read again, looked up, and modules' tables loaded. */
void unwind_insts_release(struct unw_inst *insts, size_t n);
int unwind_maps_load(struct prof_unw *u, int keep);
struct unw_map *unwind_map_find(struct prof_unw *u, uint64_t addr);
struct unw_map *unwind_map_find_reload(struct unw_ctx *c, uint64_t addr);
void unwind_inst_load(struct prof_unw *u, struct unw_inst *in);

#pragma GCC visibility pop

#endif
